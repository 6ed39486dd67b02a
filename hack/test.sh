#!/usr/bin/env bash
# test.sh: run every test against real components. Builds (cached) and starts
# a local control plane (etcd, kube-apiserver, controller-manager, scheduler,
# kwok), Debian's docker-registry, PostgreSQL and an S3 server (SeaweedFS,
# hack/s3.sh) on 127.0.0.1, runs `go test ./...`, and stops what it
# started. Reuses SKIFF_TEST_KUBECONFIG / SKIFF_TEST_DOCKER_REGISTRY /
# SKIFF_TEST_POSTGRES_URL / SKIFF_TEST_S3_URL when they are already set.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

state="$(mktemp -d "${TMPDIR:-/tmp}/skiff-test.XXXXXX")"
cleanup() {
  local rc=$?
  if [[ -n "${started_k8s:-}" ]]; then K8S_LOCAL_STATE="$state/k8s" bash "$here/hack/k8s-local.sh" stop >/dev/null 2>&1 || true; fi
  if [[ -n "${started_pg:-}" ]]; then SKIFF_POSTGRES_STATE="$pg_state" bash "$here/hack/postgres.sh" stop >/dev/null 2>&1 || true; fi
  if [[ -n "${started_s3:-}" ]]; then SKIFF_S3_STATE="$state/s3" bash "$here/hack/s3.sh" stop >/dev/null 2>&1 || true; fi
  if [[ -n "${started_reg:-}" ]]; then SKIFF_DOCKER_REGISTRY_STATE="$state/registry" bash "$here/hack/docker-registry.sh" stop >/dev/null 2>&1 || true; fi
  rm -rf "$state"
  exit $rc
}
trap cleanup EXIT INT TERM

if [[ -z "${SKIFF_TEST_KUBECONFIG:-}" ]]; then
  bash hack/k8s-local.sh build
  # A real node (containerd, runc, kubelet) beside the kwok one, as root: the
  # real-node tier runs pods there. It is tainted, so that only pods that
  # tolerate it (and can really run) land on it. In CI it must start.
  node=()
  if [[ "$(id -u)" == 0 || -n "${CI:-}" ]]; then node=(--node); fi
  started_k8s=1   # before start: a half-started control plane is stopped too
  if ! SKIFF_TEST_KUBECONFIG="$(K8S_LOCAL_STATE="$state/k8s" NODE_TAINT=skiff.dev/real-node=true:NoSchedule \
    bash hack/k8s-local.sh start --full "${node[@]}")"; then
    # one real node per host: outside CI another make test may hold it
    if [[ -n "${CI:-}" || ${#node[@]} == 0 ]]; then exit 1; fi
    log "the real node did not start (another one on this host?): its tests are skipped"
    K8S_LOCAL_STATE="$state/k8s" bash hack/k8s-local.sh stop >/dev/null 2>&1 || true
    node=()
    SKIFF_TEST_KUBECONFIG="$(K8S_LOCAL_STATE="$state/k8s" bash hack/k8s-local.sh start --full)"
  fi
  export SKIFF_TEST_KUBECONFIG
  if ((${#node[@]})); then export SKIFF_TEST_NODE="$state/k8s/node"; else log "no real node: its tests are skipped"; fi
fi
if [[ -z "${SKIFF_TEST_DOCKER_REGISTRY:-}" ]]; then
  SKIFF_TEST_DOCKER_REGISTRY="$(SKIFF_DOCKER_REGISTRY_STATE="$state/registry" bash hack/docker-registry.sh start)"
  started_reg=1
  export SKIFF_TEST_DOCKER_REGISTRY
fi
if [[ -z "${SKIFF_TEST_POSTGRES_URL:-}" ]]; then
  # The hub's PostgreSQL tests. Outside CI they are skipped when no server
  # can start; in CI ($CI set) that fails the run, as for every other tier
  # (control plane, registries, Chromium): the tests themselves fail in CI
  # when what they need is missing.
  pg_state="$(mktemp -d "${TMPDIR:-/tmp}/skiff-postgres.XXXXXX")"
  if SKIFF_TEST_POSTGRES_URL="$(SKIFF_POSTGRES_STATE="$pg_state" bash hack/postgres.sh start)"; then
    started_pg=1
    export SKIFF_TEST_POSTGRES_URL
  elif [[ -n "${CI:-}" ]]; then
    log "PostgreSQL did not start: CI must run the hub's PostgreSQL tests (see hack/postgres.sh)"
    exit 1
  else
    log "PostgreSQL did not start: the hub's PostgreSQL tests are skipped"
    unset SKIFF_TEST_POSTGRES_URL
  fi
fi
if [[ -z "${SKIFF_TEST_S3_URL:-}" ]]; then
  # The hub's S3 storage tests, against a real S3 server: SeaweedFS built
  # from the Go module proxy (hack/s3.sh; minutes the first time, then
  # cached under ~/.cache/skiff). Outside CI they are skipped when it
  # cannot be built or started; in CI that fails the run.
  started_s3=1   # before start: a half-started server is stopped too
  if SKIFF_TEST_S3_URL="$(SKIFF_S3_STATE="$state/s3" bash hack/s3.sh start)"; then
    export SKIFF_TEST_S3_URL
  elif [[ -n "${CI:-}" ]]; then
    log "the S3 server (SeaweedFS) did not build or start: CI must run the hub's S3 storage tests (see hack/s3.sh)"
    exit 1
  else
    log "the S3 server (SeaweedFS) did not build or start: the hub's S3 storage tests are skipped"
    unset SKIFF_TEST_S3_URL
  fi
fi
log "control plane: $SKIFF_TEST_KUBECONFIG; docker-registry: $SKIFF_TEST_DOCKER_REGISTRY; S3: ${SKIFF_TEST_S3_URL:+$(sed 's#//[^@]*@#//#' <<<"$SKIFF_TEST_S3_URL")}"
export OTEL_TRACES_EXPORTER=none
# The hub against the OCI distribution-spec conformance suite (< 1 min).
conformance_rc=0
bash hack/conformance.sh || conformance_rc=$?
# Every step runs even when an earlier one fails, and the summary is
# printed in every case (set -e would stop at the first failure).
vet_rc=0
go vet ./... || vet_rc=$?
# -race unless GOTESTFLAGS says otherwise (GOTESTFLAGS= runs without it).
set +e
go test -count=1 -timeout 40m ${GOTESTFLAGS--race} ./... 2>&1 | tee "$state/go-test.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -c '^ok ' "$state/go-test.log" || true)
failed=$(grep -c '^FAIL' "$state/go-test.log" || true)
log "packages: $passed passed, $failed failed"
if [[ "$rc" != 0 ]]; then
  grep -E '^(--- FAIL|FAIL|panic:|WARNING: DATA RACE)' "$state/go-test.log" | sed 's/^/  /' >&2 || true
fi
if [[ "$vet_rc" != 0 ]]; then log "go vet failed"; [[ "$rc" != 0 ]] || rc=$vet_rc; fi
if [[ "$conformance_rc" != 0 ]]; then log "OCI conformance of the hub failed (hack/conformance.sh)"; [[ "$rc" != 0 ]] || rc=$conformance_rc; fi
[[ "$rc" == 0 ]] && log "all tests passed" || log "FAILED (exit $rc)"
exit "$rc"
