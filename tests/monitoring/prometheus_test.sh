#!/usr/bin/env bash
# Hone's exporter scraped by a real Prometheus server (Debian's `prometheus`), with the
# configuration and rules of deploy/prometheus and the Grafana dashboard of deploy/grafana:
#   * promtool checks the committed config and rules, and runs the rules' unit tests;
#   * a single-process job and an mpirun job (1 controller + 1/1/1 workers) are scraped;
#   * check_prometheus.py then asks the HTTP API for the reward series (a sample for every
#     step, equal to metrics.jsonl), the recording rules, hone_worker_up of the mpirun job,
#     that every metric the dashboard and the rules name is one the exporter served, and
#     that docs/monitoring.md lists every family served.
# Every process started here is stopped by its PID. Usage: prometheus_test.sh HONE_BINARY
set -euo pipefail
hone=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for tool in prometheus promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found: run tools/install-deps.sh"; exit 1; }
done
work=$(mktemp -d)
prometheus_pid=""
cleanup() {
  [ -n "$prometheus_pid" ] && kill "$prometheus_pid" 2>/dev/null && wait "$prometheus_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }

echo "== promtool on the committed files"
promtool check config "$root/deploy/prometheus/prometheus.yml" || fail "promtool check config"
promtool check rules "$root"/deploy/prometheus/rules/{recording,alerts}.yml || fail "promtool check rules"
promtool test rules "$root/deploy/prometheus/rules/rules_test.yml" || fail "promtool test rules"

# Ports below the kernel's ephemeral range (32768+): Prometheus scrapes a port before the
# job listens there, and a connect from an ephemeral port can take the very port it aims at.
free_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()'
}
web_port=$(free_port); single_port=$(free_port); mpi_port=$(free_port)
while [ "$mpi_port" = "$single_port" ] || [ "$mpi_port" = "$web_port" ]; do mpi_port=$(free_port); done

# The committed config, scraping both jobs ten times a second so that every step (about a
# second each) is seen; rules evaluated every second.
cp -r "$root/deploy/prometheus/rules" "$work/rules"
sed -e 's/scrape_interval: 15s/scrape_interval: 100ms\n  scrape_timeout: 100ms/' \
    -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' \
    -e "s/\"127.0.0.1:9464\"/\"127.0.0.1:$single_port\", \"127.0.0.1:$mpi_port\"/" \
    "$root/deploy/prometheus/prometheus.yml" > "$work/prometheus.yml"
promtool check config "$work/prometheus.yml" >/dev/null || fail "the test's prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$web_port" >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!

echo "== a model to train (SFT on arithmetic), exporter on :$single_port"
echo "seed: 1" > "$work/config.yaml"
data="--config $work/config.yaml data.dataset=arithmetic data.prompt_template=raw data.val_size=16
      data.arithmetic.num_examples=2000"
"$hone" sft $data model.init_config="$root/configs/models/arith_tiny.json" trainer.total_steps=40 \
  trainer.sft_batch_size=32 optim.lr=3e-3 trainer.output_dir="$work/sft" \
  metrics.port="$single_port" trainer.run_name=sft metrics.linger_s=1 >"$work/sft.log" 2>&1 || fail "hone sft"
grpo="model.path=$work/sft/final data.train_batch_size=8 rollout.n=8 rollout.max_new_tokens=32 metrics.linger_s=2"

echo "== single-process job, exporter on :$single_port"
"$hone" train $data $grpo trainer.total_steps=6 trainer.val_every=3 eval.limit=8 eval.k=[1,4] eval.n=4 \
  metrics.port="$single_port" trainer.run_name=single trainer.output_dir="$work/single" >"$work/single.log" 2>&1 ||
  fail "single-process hone train"
grep -q "serving Prometheus metrics on http://127.0.0.1:$single_port/metrics" "$work/single.log" ||
  fail "no exporter line in the job's output"

echo "== mpirun job (placement 1/1/1), exporter on :$mpi_port"
mpirun --oversubscribe -np 4 "$hone" train $data $grpo trainer.total_steps=3 rpc.health_interval_s=0.2 \
  metrics.port="$mpi_port" trainer.run_name=mpi trainer.output_dir="$work/mpi" >"$work/mpi.log" 2>&1 ||
  fail "hone train under mpirun"

echo "== queries"
python3 "$(dirname "$0")/check_prometheus.py" --prometheus "http://127.0.0.1:$web_port" \
  --metrics-log "$work/single/metrics.jsonl" --run single --mpi-run mpi \
  --names-from "$root/deploy/grafana/hone-dashboard.json" "$root/deploy/prometheus/rules/alerts.yml" \
  "$root/deploy/prometheus/rules/recording.yml" --docs "$root/docs/monitoring.md" --sft-run sft || fail "queries"
echo "PASS"
