#!/usr/bin/env bash
# demo.sh: the main job end to end on this machine.
#   connected side: seed an "upstream" registry, skiff build a signed package
#   air-gapped side: verify, start the embedded registry, load, install into a
#   local control plane, upgrade, roll back, uninstall.
# As root, the cluster has a real node (hack/node-local.sh: containerd, runc,
# kubelet) and no fake one: the pods really run, pulled from the embedded
# registry. Without root (or when the node cannot start) it falls back to
# kwok's fake node and says so.
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
real=0
if [[ "$(id -u)" == 0 ]] && KUBECONFIG="$(K8S_LOCAL_STATE="$work/k8s" K8S_LOCAL_NODES=0 bash hack/k8s-local.sh start --full --node)"; then
  real=1
  log "a real node runs the pods (containerd + runc + kubelet, no fake nodes)"
else
  K8S_LOCAL_STATE="$work/k8s" bash hack/k8s-local.sh stop >/dev/null 2>&1 || true
  log "NO REAL NODE (needs root, containerd, runc, containernetworking-plugins): kwok's fake node only simulates the pods"
  KUBECONFIG="$(K8S_LOCAL_STATE="$work/k8s" bash hack/k8s-local.sh start --full)"
fi
export KUBECONFIG

log "connected side: an upstream registry with the demo's images"
up=$(free_port 15999)
"$skiff" registry serve --addr "127.0.0.1:$up" --root "$work/upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$up/v2/"
seed=(); [[ $real == 1 ]] && seed=(--runnable)   # images made of busybox, that really run
go run ./hack/seed "${seed[@]}" --registry "127.0.0.1:$up" \
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
if [[ $real == 1 ]]; then
  log "node mirror configuration: the node pulls from the embedded registry, upstream names too"
  "$skiff" registry mirror-config --registry "127.0.0.1:$reg/airgap" --plain-http --upstream 127.0.0.1:15999 \
    --format containerd --output-dir "$work/k8s/node/certs.d"
fi

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
if [[ $real == 1 ]]; then
  kill "${pids[0]}"   # the connected side's registry is gone: everything comes from the site registry
  log "a pod nobody relocated, named by its upstream name: pulled through the node mirror"
  "${kubectl[@]}" -n demo-web run upstream-name --image=127.0.0.1:15999/demo/web:2.0 --restart=Never >/dev/null
  "${kubectl[@]}" -n demo-web wait --for=condition=Ready pod/upstream-name --timeout=60s >/dev/null
  log "pods running on the real node, from the embedded registry (127.0.0.1:$reg)"
else
  log "pods on kwok's FAKE node (no real node here: nothing really runs)"
fi
"${kubectl[@]}" -n demo-web rollout status deployment/demo-web-web --timeout=60s >/dev/null
# running pods (not those still terminating after the rollback), with the image the runtime pulled
"${kubectl[@]}" get pods -A --field-selector=status.phase=Running -o go-template='{{printf "%-10s %-30s %-12s %-6s %s\n" "NAMESPACE" "POD" "NODE" "READY" "IMAGE (as the runtime reports it)"}}{{range $p := .items}}{{if not $p.metadata.deletionTimestamp}}{{range $p.status.containerStatuses}}{{printf "%-10s %-30s %-12s %-6v %s\n" $p.metadata.namespace $p.metadata.name $p.spec.nodeName .ready (or .imageID .image)}}{{end}}{{end}}{{end}}' \
  | grep -v '^kube-system'
[[ $real == 1 ]] && "${kubectl[@]}" -n demo-web delete pod upstream-name --wait=false >/dev/null
"$skiff" uninstall demo -n demo
log "done: build → verify → load → install → upgrade → rollback → uninstall"
