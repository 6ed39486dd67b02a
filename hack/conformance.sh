#!/usr/bin/env bash
# conformance.sh: run the OCI distribution-spec conformance suite against
# a `skiff hub serve` on 127.0.0.1. The suite is built from the Go module
# proxy (a pinned version; the main module does not depend on it) and
# runs as a user with write permission on the "conformance" owner.
# Prints the suite's summary and "N passed, N failed"; exits non-zero on
# any failure. Results (junit.xml, report.html) land in $OCI_RESULTS_DIR
# (default: a temporary directory, removed at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE_VERSION=v0.0.0-20260831232431-97274622c111
state="$(mktemp -d "${TMPDIR:-/tmp}/skiff-conformance.XXXXXX")"
pid=""
cleanup() {
  local rc=$?
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$state"
  exit $rc
}
trap cleanup EXIT INT TERM
log() { printf '[conformance %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "building skiff and the conformance suite ($SUITE_VERSION)"
# static, as make build does; the agent's real-node test then reuses this
# build's cache (its image is made from a static skiff)
CGO_ENABLED=0 go build -o "$state/skiff" ./cmd/skiff
GOBIN="$state" GOFLAGS=-mod=mod go install "github.com/opencontainers/distribution-spec/conformance@$SUITE_VERSION"

export OTEL_TRACES_EXPORTER=none
pass="conformance-$RANDOM-$RANDOM"
SKIFF_PASSWORD="$pass" "$state/skiff" hub user add --root "$state/hub" tester >/dev/null
"$state/skiff" hub user grant --root "$state/hub" conformance tester write >/dev/null
"$state/skiff" hub serve --root "$state/hub" --addr 127.0.0.1:0 --addr-file "$state/addr" --allow-unsigned 2>"$state/hub.log" &
pid=$!
for _ in $(seq 100); do [[ -s "$state/addr" ]] && break; sleep 0.1; done
[[ -s "$state/addr" ]] || { cat "$state/hub.log" >&2; log "the hub did not start"; exit 1; }
addr="$(cat "$state/addr")"
log "hub on $addr"

results="${OCI_RESULTS_DIR:-$state/results}"
# distribution v3 stores sha256 content only: the sha512 data tests are
# off unless OCI_DATA_SHA512=true is set.
export OCI_DATA_SHA512="${OCI_DATA_SHA512:-false}"
set +e
(
  cd "$state"
  OCI_REGISTRY="$addr" OCI_TLS=disabled \
  OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2 \
  OCI_USERNAME=tester OCI_PASSWORD="$pass" \
  OCI_RESULTS_DIR="$results" OCI_LOG=error \
  "$state/conformance"
) >"$state/out.txt" 2>&1
rc=$?
set -e
cat "$state/out.txt"
count() { sed -n "/OCI Conformance Result/,\$ s/^ *$1\.*: *\([0-9]*\)\$/\1/p" "$state/out.txt" | head -1; }
echo "conformance: $(count Pass) passed, $(count FAIL) failed, $(count Skip) skipped"
exit $rc
