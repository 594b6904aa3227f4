#!/usr/bin/env bash
# Stops the Slurm that tools/slurm/start.sh DIR started: slurmd, slurmctld, munged, each
# by the PID in its pid file under DIR (never by process name: other Slurm or munge
# daemons on the machine are left alone). SIGTERM, then SIGKILL after 10 s.
#   tools/slurm/stop.sh DIR
set -uo pipefail
dir=${1:?usage: stop.sh DIR}
for name in slurmd slurmctld munged; do
  pidfile=$dir/$name.pid
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  case "$pid" in '' | *[!0-9]*) continue ;; esac
  # Only a process that still runs the named program: a stale pid file may name a reused PID.
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    rm -f "$pidfile"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$pidfile"
done
exit 0
