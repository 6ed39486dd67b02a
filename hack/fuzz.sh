#!/usr/bin/env bash
# fuzz.sh [TIME [REGEXP]]: run every fuzz target in the module (or those
# whose name matches REGEXP) for TIME each (default 20s), one at a time,
# and print the executions of each.
#
# Two settings keep the executions counted and spent on fuzzing:
# - Each new interesting input is minimized for at most FUZZMINIMIZE calls
#   (default 2000x; Go's default is 60s). Minimizing costs O(n^2) calls in
#   the input's length, and its calls are reported only when it ends, so
#   with the 60 s default a target whose inputs are kilobytes (archives,
#   backups, exports) spent the whole run minimizing and showed a handful
#   of executions (FuzzVerifyReader: 9 in 20 s, while it ran ~8,000/s).
# - Temporary files go to a private directory on /dev/shm when it is
#   there (tmpfs): FuzzRestore writes a hub directory per input, and on a
#   disk its fsyncs, not the parser, set the pace (here ~300 against
#   ~2,700 executions/s under the same load).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-20s}"
only="${2:-.}"
minimize="${FUZZMINIMIZE:-2000x}"
log="$(mktemp)"
tmp=""
if [[ -d /dev/shm && -w /dev/shm ]]; then
  tmp="$(mktemp -d /dev/shm/skiff-fuzz.XXXXXX)"
fi
TIMEFORMAT='%U %S'
trap 'rm -f "$log" "$log.cpu"; [[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT
summary=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | grep -E "$only" | sort -u); do
    echo "== $pkg $f ($t)"
    # CPU seconds (user+sys, coordinator and workers) as well as wall
    # time: on a shared machine the executions follow the CPU it got.
    { time (TMPDIR="${tmp:-${TMPDIR:-/tmp}}" go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" \
      -fuzzminimizetime "$minimize" 2>&1 | tee "$log"); } 2>"$log.cpu"
    # The last progress line carries the total: "fuzz: elapsed: 20s, execs: N (R/sec), ...".
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    cpu=$(awk '{printf "%.1f", $1 + $2}' "$log.cpu" 2>/dev/null || echo 0)
    rate=$(awk -v n="${execs:-0}" -v c="$cpu" 'BEGIN { if (c > 0) printf "%d", n / c; else print "?" }')
    summary+=("$(printf '%12s execs %7s CPU-s %8s execs/CPU-s  load %-6s %s %s' "${execs:-?}" "$cpu" "$rate" \
      "$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?)" "$pkg" "$f")")
  done
done
echo "== executions in $t per target, the CPU seconds they took (a run alone on $(nproc) CPUs has"
echo "   $(nproc) CPU-s per second), and the load average after each run"
printf '%s\n' "${summary[@]}"
