#!/bin/bash
# Run a benchmark with its processes' autogroups (and PostgreSQL's) at a high priority, on a
# machine shared with other work (see benchmarks/README.md, "A shared machine").
#
# With sched_autogroup_enabled=1 (most Linux kernels), `nice` only orders processes within
# one session's autogroup: every session's autogroup gets an equal share of the CPU, whatever
# the nice value of its processes, so `nice -n 19 pytest` in another session does not leave
# the CPU to a benchmark. This sets the autogroup nice value (root only for values below 0)
# of the benchmark, of every process it starts in a new session (gunicorn), and of the
# PostgreSQL server and its backends for the duration of the run (restored afterwards).
#
# usage: setsid -w benchmarks/boost.sh -15 .venv/bin/python benchmarks/bench_pages.py
#        (setsid: a session of its own, so that only the benchmark's autogroup is changed)
set -u
level=$1; shift
echo "$level" > /proc/self/autogroup
postmaster=$(pgrep -o -x postgres || true)
if [ -n "$postmaster" ]; then
  pg_before=$(awk '{print $3}' "/proc/$postmaster/autogroup")
  echo "$level" > "/proc/$postmaster/autogroup"
fi
"$@" &
main=$!
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
# PostgreSQL's backends call setsid() when they start: each has an autogroup of its own at
# nice 0, not the postmaster's. They are raised too (the raw COPY's as well as the app's, so
# the ratio stays fair), and put back at the end.
declare -A backend_before=()
boost_backends() {
  local p
  [ -n "$postmaster" ] || return 0
  for p in $(pgrep -P "$postmaster"); do
    [ -n "${backend_before[$p]:-}" ] && continue
    backend_before[$p]=$(awk '{print $3}' "/proc/$p/autogroup" 2>/dev/null) || continue
    { echo "$level" > "/proc/$p/autogroup"; } 2>/dev/null
  done
}
while kill -0 "$main" 2>/dev/null; do
  for p in $(descendants "$main"); do
    grep -q "nice $level\$" "/proc/$p/autogroup" 2>/dev/null \
      || { echo "$level" > "/proc/$p/autogroup"; } 2>/dev/null
  done
  boost_backends
  sleep 0.3
done
if [ -n "$postmaster" ]; then echo "$pg_before" > "/proc/$postmaster/autogroup"; fi
for p in "${!backend_before[@]}"; do
  { echo "${backend_before[$p]}" > "/proc/$p/autogroup"; } 2>/dev/null || true
done
wait "$main"
