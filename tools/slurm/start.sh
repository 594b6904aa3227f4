#!/usr/bin/env bash
# Starts a single-node Slurm on this machine as plain background processes (no systemd):
# its own munged, slurmctld and slurmd, everything (config, key, state, logs, pid files)
# under DIR. For trying deploy/slurm/hone.sbatch and for tests/slurm; not a production
# set-up (root runs everything, no accounting database, no cgroups).
#
#   tools/slurm/start.sh DIR        # DIR is created if missing
#   export SLURM_CONF=DIR/slurm.conf
#   sbatch --overcommit -N 1 -n 4 deploy/slurm/hone.sbatch CONFIG ...
#   tools/slurm/stop.sh DIR
#
# Ports: the first free pair from 16817 upwards (HONE_SLURM_PORT to pick), so that it
# does not collide with a system Slurm or another instance. Stop with tools/slurm/stop.sh,
# which ends exactly the processes named in DIR's pid files.
set -euo pipefail

dir=${1:?usage: start.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for tool in munged slurmctld slurmd sinfo scontrol; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
  command -v "$tool" >/dev/null 2>&1 || { echo "start.sh: $tool not found (tools/install-deps.sh installs slurm-wlm and munge)" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "start.sh: run as root (slurmd runs jobs as their submitting user)" >&2
  exit 2
fi
for pidfile in munged.pid slurmctld.pid slurmd.pid; do
  if [ -s "$dir/$pidfile" ] && kill -0 "$(cat "$dir/$pidfile")" 2>/dev/null; then
    echo "start.sh: $dir already runs a Slurm ($pidfile); stop it with tools/slurm/stop.sh $dir" >&2
    exit 1
  fi
done

mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"

# munge: a private key and socket. munged insists that the key is readable by its owner only.
if [ ! -s "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"

# Free when nothing accepts a connection on it (bash's /dev/tcp: no extra tools needed).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${HONE_SLURM_PORT:-16817}
while ! { port_free "$port" && port_free $((port + 1)); }; do port=$((port + 2)); done

node=$(hostname -s)
cpus=$(nproc)
memory=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 ))
cat > "$dir/slurm.conf" <<CONF
# Written by tools/slurm/start.sh: one node, everything under $dir.
ClusterName=hone
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# Jobs are requeue-able (sbatch --requeue; scontrol requeue).
JobRequeue=1
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
# srun --mpi=pmix: keep the PMIx client directories under DIR too (default: /tmp).
mkdir -p "$dir/pmix"
echo "PMIxCliTmpDirBase=$dir/pmix" > "$dir/mpi.conf"
export SLURM_CONF=$dir/slurm.conf

# -i: ignore state from an earlier instance in this directory (jobs, node states).
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"

for _ in $(seq 1 100); do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -1)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "${state:-}" != idle ]; then
  echo "start.sh: node $node is '${state:-unknown}' after 20 s; logs in $dir/log" >&2
  exit 1
fi
echo "export SLURM_CONF=$SLURM_CONF"
