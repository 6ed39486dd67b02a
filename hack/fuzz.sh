#!/usr/bin/env bash
# fuzz.sh [TIME]: run every fuzz target in the module for TIME each (default 20s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-20s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
summary=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f ($t)"
    go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" 2>&1 | tee "$log"
    # The last progress line carries the total: "fuzz: elapsed: 20s, execs: N (R/sec), ...".
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    summary+=("$(printf '%12s execs  %s %s' "${execs:-?}" "$pkg" "$f")")
  done
done
echo "== executions in $t per target"
printf '%s\n' "${summary[@]}"
