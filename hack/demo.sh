#!/usr/bin/env bash
# demo.sh: the main job end to end on this machine.
#   connected side: seed an "upstream" registry, skiff build a signed package
#   air-gapped side: verify, start the embedded registry, load, install into a
#   local control plane, upgrade, roll back, uninstall.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
skiff="$root/bin/skiff"
[[ -x $skiff ]] || make build
log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-demo.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  K8S_LOCAL_STATE="$work/k8s" bash "$root/hack/k8s-local.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM
export OTEL_TRACES_EXPORTER=none SKIFF_TRUST_DIR="$work/trust"

free_port() { local p=$1; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; return 1; }

log "control plane (cached build under ~/.cache/skiff/k8s)"
bash hack/k8s-local.sh build
export KUBECONFIG="$(K8S_LOCAL_STATE="$work/k8s" bash hack/k8s-local.sh start --full)"

log "connected side: an upstream registry with the demo's images"
up=$(free_port 15999)
"$skiff" registry serve --addr "127.0.0.1:$up" --root "$work/upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$up/v2/"
go run ./hack/seed --registry "127.0.0.1:$up" \
  --repo demo/tools:1.0 --repo demo/web:1.0 --repo demo/web:2.0 --repo demo/migrate:1.0 \
  --repo demo/widget:1.0 --repo demo/cache:1.0 --repo demo/report:1.0 --repo demo/agent:1.0 >/dev/null
mirror=(--registry-mirror "127.0.0.1:15999=127.0.0.1:$up")

log "skiff keygen + build (signed)"
"$skiff" keygen --name "$work/release"
"$skiff" build -f examples/demo/skiff.yaml --output-file "$work/demo-1.0.0.skiff" --sign-key "$work/release.key" "${mirror[@]}"
"$skiff" build -f examples/demo/skiff.yaml --output-file "$work/demo-1.1.0.skiff" --sign-key "$work/release.key" "${mirror[@]}" \
  --version 1.1.0 --set web.image.tag=2.0

log "air-gapped side: trust the key, inspect, verify"
"$skiff" trust add "$work/release.pub"
"$skiff" inspect "$work/demo-1.0.0.skiff"
"$skiff" verify "$work/demo-1.0.0.skiff"

log "embedded registry + load"
reg=$(free_port 5000)
"$skiff" registry serve --addr "127.0.0.1:$reg" --root "$work/registry" >"$work/registry.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$reg/v2/"
"$skiff" load "$work/demo-1.0.0.skiff" --registry "127.0.0.1:$reg/airgap"
"$skiff" load "$work/demo-1.0.0.skiff" --registry "127.0.0.1:$reg/airgap"   # second load: nothing moves

log "install, upgrade, rollback"
"$skiff" install "$work/demo-1.0.0.skiff" --name demo -n demo --registry "127.0.0.1:$reg/airgap" --timeout 2m
kubectl=("$HOME/.cache/skiff/k8s/kubernetes-v1.35.4/kubectl")
"${kubectl[@]}" get deploy,sts,ds,cronjob -A -l app.kubernetes.io/managed-by!=none -o wide | grep -v kube-system || true
log "an image no image: field names, mapped by imageValues, set to the site registry by digest"
"${kubectl[@]}" get deploy demo-web-web -n demo-web -o jsonpath='{.spec.template.spec.containers[0].env[0].value}{"\n"}'
"$skiff" upgrade "$work/demo-1.1.0.skiff" --name demo -n demo --registry "127.0.0.1:$reg/airgap" --timeout 2m
"$skiff" history demo -n demo
"$skiff" rollback demo 1 -n demo --timeout 2m
"$skiff" list -A
"$skiff" uninstall demo -n demo
log "done: build → verify → load → install → upgrade → rollback → uninstall"
