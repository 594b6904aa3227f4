#!/usr/bin/env python3
"""Checks what a real Prometheus server scraped from Hone's exporter (prometheus_test.sh).

* hone_reward_mean of the single-process run has a sample for every step of its
  metrics.jsonl, equal to that step's reward_mean (joined on the hone_step sample of the
  same scrape);
* the recording rule hone:reward_mean:avg_5m was evaluated and lies within the rewards;
* hone_worker_up of the mpirun run has one series per worker (rollout, reward, trainer),
  each 1 in its last sample;
* every hone_* metric named in the dashboard and the rule files is one the exporter served,
  and every hone_* family served is documented.
"""
import argparse
import json
import re
import sys
import time
import urllib.parse
import urllib.request


def api(base, path, **params):
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def raw_samples(base, selector, window="1h"):
    """{timestamp: value} of the one series that `selector` names."""
    result = api(base, "query", query=f"{selector}[{window}]")["result"]
    if len(result) != 1:
        raise AssertionError(f"{selector}: expected one series, got {len(result)}: {result}")
    return {float(t): float(v) for t, v in result[0]["values"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--metrics-log", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--mpi-run", required=True)
    ap.add_argument("--names-from", nargs="+", required=True)
    ap.add_argument("--docs", required=True, help="the page that must list every served hone_* family")
    ap.add_argument("--sft-run", required=True, help="run label of the hone sft job")
    a = ap.parse_args()
    failures = []

    # Prometheus ingests the last scrapes and evaluates the rules within a few seconds.
    deadline = time.time() + 30
    while True:
        try:
            recorded = api(a.prometheus, "query", query=f'hone:reward_mean:avg_5m{{run="{a.run}"}}')["result"]
            ups = api(a.prometheus, "query", query=f'hone_worker_up{{run="{a.mpi_run}"}}[1h]')["result"]
            if recorded and len(ups) >= 3:
                break
        except OSError:
            pass
        if time.time() > deadline:
            break
        time.sleep(0.5)

    steps = [json.loads(line) for line in open(a.metrics_log) if line.strip()]
    expected = {int(s["step"]): s["reward_mean"] for s in steps}
    step_samples = raw_samples(a.prometheus, f'hone_step{{run="{a.run}"}}')
    reward_samples = raw_samples(a.prometheus, f'hone_reward_mean{{run="{a.run}"}}')
    seen = {}
    for t, step in step_samples.items():
        if t in reward_samples:
            seen.setdefault(int(step), set()).add(reward_samples[t])
    print(f"steps in metrics.jsonl: {sorted(expected)}; steps scraped: {sorted(seen)} "
          f"({len(reward_samples)} reward samples)")
    if sorted(seen) != sorted(expected):
        failures.append(f"reward series has samples for steps {sorted(seen)}, metrics.jsonl has {sorted(expected)}")
    for step, values in seen.items():
        want = expected.get(step)
        if want is None or len(values) != 1 or abs(next(iter(values)) - want) > 1e-9 * max(1.0, abs(want)):
            failures.append(f"step {step}: Prometheus has reward {sorted(values)}, metrics.jsonl {want}")

    if not recorded:
        failures.append("the recording rule hone:reward_mean:avg_5m has no value")
    else:
        value = float(recorded[0]["value"][1])
        lo, hi = min(expected.values()), max(expected.values())
        print(f"hone:reward_mean:avg_5m = {value:.4f} (rewards {lo:.4f}..{hi:.4f})")
        if not lo - 1e-9 <= value <= hi + 1e-9:
            failures.append(f"hone:reward_mean:avg_5m = {value} outside the rewards [{lo}, {hi}]")

    roles = sorted(r["metric"]["role"] for r in ups)
    print(f"hone_worker_up of the mpirun run: {roles}")
    if roles != ["reward", "rollout", "trainer"]:
        failures.append(f"hone_worker_up of the mpirun run has roles {roles}, expected one each")
    for r in ups:
        last = float(r["values"][-1][1])
        if last != 1:
            failures.append(f"hone_worker_up{r['metric']} last sample is {last}")

    served = set(api(a.prometheus, "label/__name__/values"))
    named = set()
    for path in a.names_from:
        named |= set(re.findall(r"\bhone_[a-z0-9_]+", open(path).read()))
    missing = sorted(named - served)
    print(f"{len(named)} hone_* metrics named in the dashboard and rules; {len(served)} names served")
    if missing:
        failures.append(f"named in the dashboard or rules but never served: {missing}")

    sft_loss = api(a.prometheus, "query", query=f'hone_sft_loss{{run="{a.sft_run}"}}[1h]')["result"]
    print(f"hone_sft_loss samples of the SFT run: {len(sft_loss[0]['values']) if sft_loss else 0}")
    if not sft_loss:
        failures.append(f"no hone_sft_loss series of the hone sft run '{a.sft_run}'")

    documented = set(re.findall(r"\bhone_[a-z0-9_]+", open(a.docs).read()))
    undocumented = sorted(n for n in served if n.startswith("hone_") and n not in documented)
    if undocumented:
        failures.append(f"served but not in {a.docs}: {undocumented}")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
