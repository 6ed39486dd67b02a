#!/usr/bin/env bash
# k8s-local.sh - build (cached) and run a REAL Kubernetes control plane on 127.0.0.1,
# for integration tests, with binaries built from the Go module proxy only
# (no Docker, no dl.k8s.io / setup-envtest downloads).
#
#   k8s-local.sh build [DIR]    build etcd, kube-apiserver, kube-controller-manager,
#                               kube-scheduler, kubectl, kubelet and kwok into DIR (default $K8S_LOCAL_CACHE;
#                               pass the same K8S_LOCAL_CACHE to start/assets)
#                               (skipped when the binaries for these versions exist)
#   k8s-local.sh start [--full] start etcd + kube-apiserver; with --full (or
#                               K8S_LOCAL_FULL=1) also kube-controller-manager,
#                               kube-scheduler and kwok with one fake node, so that
#                               Deployments really become Available.
#   k8s-local.sh start --full --node   also a REAL node (hack/node-local.sh: containerd,
#                               runc, kubelet; needs root): pods really run. The kwok nodes
#                               are then tainted unless the real node is (NODE_TAINT).
#                               The LAST line on stdout is the kubeconfig path.
#   k8s-local.sh stop           stop exactly the processes this state dir started
#                               (PIDs in $K8S_LOCAL_STATE/pids) and the real node if any
#                               (restoring the host), then remove the state dir
#                               unless K8S_LOCAL_KEEP_STATE=1
#   k8s-local.sh status         show the recorded processes
#   k8s-local.sh assets         print a directory usable as KUBEBUILDER_ASSETS
#                               (etcd, kube-apiserver, kubectl) for controller-runtime envtest
#
# Everything listens on 127.0.0.1 only. kube-controller-manager and kube-scheduler
# run with --secure-port=0 (no listener); kwok runs without --node-port/--server-address
# (no listener). Pod/Service IPs in the API are fake values: nothing routes them.
#
# Environment (defaults in brackets):
#   K8S_VERSION [1.35.4]  ETCD_VERSION [3.6.16]  KWOK_VERSION [0.8.0]
#   K8S_LOCAL_CACHE [${XDG_CACHE_HOME:-$HOME/.cache}/k8s-local]  where binaries go
#   K8S_LOCAL_STATE [${TMPDIR:-/tmp}/k8s-local]   pki, etcd data, logs, pids, kubeconfig
#   K8S_LOCAL_APISERVER_PORT [first free from 16443]  K8S_LOCAL_ETCD_PORT [first free from 12379]
#   K8S_LOCAL_NODES [1]  number of kwok fake nodes with --full (0: none)
#   K8S_LOCAL_REAL_NODE [0]  1: same as --node; NODE_NAME, NODE_TAINT: see hack/node-local.sh
#   K8S_LOCAL_MINIMAL [0]  1: build only etcd, kube-apiserver, kubectl (envtest-style; no --full)
#   GOMODCACHE / GOCACHE: the usual Go caches; keep them between CI runs to speed up builds.
#
# Stop instructions: `k8s-local.sh stop` (same K8S_LOCAL_STATE). By hand:
#   for f in "$K8S_LOCAL_STATE"/pids/*; do kill "$(cat "$f")"; done
set -euo pipefail

[[ "${1:-}" == build && -n "${2:-}" ]] && K8S_LOCAL_CACHE="$2"
K8S_VERSION="${K8S_VERSION:-1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
CACHE="${K8S_LOCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff/k8s}"
STATE="${K8S_LOCAL_STATE:-${TMPDIR:-/tmp}/skiff-k8s}"
NODES="${K8S_LOCAL_NODES:-1}"

K8S_BIN="$CACHE/kubernetes-v$K8S_VERSION"
ETCD_BIN="$CACHE/etcd-v$ETCD_VERSION"
KWOK_BIN="$CACHE/kwok-v$KWOK_VERSION"
ASSETS="$CACHE/assets-k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION"

log() { printf '[k8s-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- build
build_etcd() {
  [[ -x "$ETCD_BIN/etcd" ]] && { log "etcd v$ETCD_VERSION cached"; return; }
  local w; w="$(mktemp -d)"
  log "building etcd v$ETCD_VERSION (go.etcd.io/etcd/server/v3 has replace directives: using a wrapper module)"
  ( cd "$w"
    printf 'module local/etcdbuild\n\ngo 1.25\n' > go.mod
    quiet go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    mkdir -p "$ETCD_BIN.tmp"
    go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN.tmp/etcd" go.etcd.io/etcd/server/v3 )
  rm -rf "$w" "$ETCD_BIN"; mv "$ETCD_BIN.tmp" "$ETCD_BIN"
}

build_kubernetes() {
  local all=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet) comps=() c
  [[ "${K8S_LOCAL_MINIMAL:-0}" == 1 ]] && all=(kube-apiserver kubectl)
  # build only what is missing (kubelet came later than the others)
  for c in "${all[@]}"; do [[ -x "$K8S_BIN/$c" ]] || comps+=("$c"); done
  ((${#comps[@]})) || { log "kubernetes v$K8S_VERSION cached"; return; }
  local w gomod minor staging
  w="$(mktemp -d)"
  log "building kubernetes v$K8S_VERSION: ${comps[*]} (wrapper module replacing staging modules)"
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "cannot download k8s.io/kubernetes@v$K8S_VERSION"
  staging="v0.${K8S_VERSION#*.}"      # 1.35.4 -> v0.35.4
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  {
    printf 'module local/k8sbuild\n\ngo 1.25\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "\t"$1" => "$1" "v}'
    printf ')\n'
  } > "$w/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${comps[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$w/tools.go"
  local v="v$K8S_VERSION" ld
  # version stamping: without it the binaries report v0.0.0-master, which breaks
  # Helm kubeVersion constraints and kubectl version skew checks
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  ( cd "$w"
    quiet go mod tidy
    mkdir -p "$K8S_BIN.tmp"
    local pkgs=(); for c in "${comps[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go build -trimpath -ldflags "$ld" -o "$K8S_BIN.tmp/" "${pkgs[@]}" )
  mkdir -p "$K8S_BIN"; mv "$K8S_BIN.tmp"/* "$K8S_BIN/"; rm -rf "$w" "$K8S_BIN.tmp"
}

build_kwok() {
  [[ -x "$KWOK_BIN/kwok" && -f "$KWOK_BIN/stages.yaml" ]] && { log "kwok v$KWOK_VERSION cached"; return; }
  log "building kwok v$KWOK_VERSION (go install works: no replace directives)"
  mkdir -p "$KWOK_BIN.tmp"
  GOBIN="$KWOK_BIN.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  # the kwok binary needs Stage objects in its --config; take kwokctl's defaults
  local dir; dir="$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  local f first=1
  for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml; do
    [[ $first == 1 ]] || echo '---'; first=0
    cat "$dir/kustomize/$f"
  done > "$KWOK_BIN.tmp/stages.yaml"
  rm -rf "$KWOK_BIN"; mv "$KWOK_BIN.tmp" "$KWOK_BIN"
}

make_assets() {
  mkdir -p "$ASSETS"
  ln -sf "$ETCD_BIN/etcd" "$ASSETS/etcd"
  ln -sf "$K8S_BIN/kube-apiserver" "$ASSETS/kube-apiserver"
  ln -sf "$K8S_BIN/kubectl" "$ASSETS/kubectl"
}

# quiet CMD...: run CMD, show its output only when it fails
quiet() { local out; if ! out="$("$@" 2>&1)"; then printf '%s\n' "$out" >&2; return 1; fi; }

cmd_build() {
  command -v go >/dev/null || die "go not found"
  export GOWORK=off   # the wrapper modules must not be pulled into a caller's go.work
  local t0=$SECONDS
  build_etcd; build_kubernetes
  [[ "${K8S_LOCAL_MINIMAL:-0}" == 1 ]] || build_kwok
  make_assets
  log "build done in $((SECONDS - t0))s; binaries under $CACHE"
}

# ---------------------------------------------------------------- start
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }

gen_pki() {
  local d="$STATE/pki"; mkdir -p "$d"
  [[ -f "$d/admin.crt" ]] && return
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  ( cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=k8s-local-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=k8s-local-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile admin.ext 2>/dev/null
    # kube-apiserver -> kubelet (logs, exec, port-forward) on a real node
    openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 3650 -extfile admin.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    printf '%s,k8s-local-admin,k8s-local-admin,"system:masters"\n' "$(openssl rand -hex 16)" > tokens.csv
    chmod 600 ./*.key tokens.csv )
}

write_kubeconfig() {
  local d="$STATE/pki" b64="base64 -w0"
  cat > "$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: k8s-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 < "$d/ca.crt")
users:
- name: k8s-local-admin
  user:
    client-certificate-data: $($b64 < "$d/admin.crt")
    client-key-data: $($b64 < "$d/admin.key")
contexts:
- name: k8s-local
  context: {cluster: k8s-local, user: k8s-local-admin}
current-context: k8s-local
EOF
  chmod 600 "$STATE/kubeconfig"
}

# spawn NAME BINARY ARGS... : run in background, log to $STATE/logs/NAME.log, PID to $STATE/pids/NAME
spawn() {
  local name=$1; shift
  # env -u: etcd maps every ETCD_* variable to a flag (ETCD_VERSION would become --version)
  nohup env -u ETCD_VERSION "$@" > "$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/$name"
  log "started $name pid $!"
}

wait_for() { # wait_for DESC TIMEOUT_S PROCNAME CMD... ; fails early if PROCNAME died
  local desc=$1 t=$2 proc=$3 end=$((SECONDS + $2)); shift 3
  while ((SECONDS < end)); do
    "$@" >/dev/null 2>&1 && return 0
    if [[ -f "$STATE/pids/$proc" && ! -d /proc/$(cat "$STATE/pids/$proc") ]]; then
      tail -n 20 "$STATE/logs/$proc.log" >&2 || true
      die "$proc exited while waiting for $desc (log: $STATE/logs/$proc.log)"
    fi
    sleep 0.2
  done
  die "timed out after ${t}s waiting for $desc (logs in $STATE/logs)"
}

apicurl() { curl -fsS --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" "https://127.0.0.1:$APISERVER_PORT$1"; }

cmd_start() {
  local full="${K8S_LOCAL_FULL:-0}" real="${K8S_LOCAL_REAL_NODE:-0}" a
  for a in "$@"; do
    case "$a" in
      --full) full=1 ;;
      --node) real=1 ;;
      *) die "unknown option $a" ;;
    esac
  done
  [[ $real == 1 && $full == 0 ]] && die "--node needs --full (a scheduler and controllers)"
  for b in "$ETCD_BIN/etcd" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kubectl"; do
    [[ -x "$b" ]] || die "$b missing: run '$0 build' first"
  done
  if [[ $full == 1 ]]; then
    for b in "$K8S_BIN/kube-controller-manager" "$K8S_BIN/kube-scheduler" "$KWOK_BIN/kwok"; do
      [[ -x "$b" ]] || die "$b missing: run '$0 build' (without K8S_LOCAL_MINIMAL=1) first"
    done
  fi
  if [[ -d "$STATE/pids" ]] && ls "$STATE/pids"/* >/dev/null 2>&1; then
    die "$STATE already has running processes; run '$0 stop' first"
  fi
  local t0=$SECONDS
  mkdir -p "$STATE/logs" "$STATE/pids"
  gen_pki
  ETCD_PORT="${K8S_LOCAL_ETCD_PORT:-$(free_port 12379)}"
  local peer; peer="$(free_port $((ETCD_PORT + 1)))"
  APISERVER_PORT="${K8S_LOCAL_APISERVER_PORT:-$(free_port 16443)}"

  spawn etcd "$ETCD_BIN/etcd" --name=k8s-local --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$peer" --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
    --initial-cluster="k8s-local=http://127.0.0.1:$peer" \
    --unsafe-no-fsync --quota-backend-bytes=4294967296 --log-level=warn
  wait_for etcd 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  spawn kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --cert-dir="$STATE/pki/generated" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --client-ca-file="$STATE/pki/ca.crt" --token-auth-file="$STATE/pki/tokens.csv" \
    --kubelet-client-certificate="$STATE/pki/kubelet-client.crt" --kubelet-client-key="$STATE/pki/kubelet-client.key" \
    --kubelet-preferred-address-types=Hostname,InternalIP,ExternalIP \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$STATE/pki/sa.pub" --service-account-signing-key-file="$STATE/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --profiling=false \
    --endpoint-reconciler-type=none
  wait_for kube-apiserver 90 kube-apiserver apicurl /readyz
  write_kubeconfig
  log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT after $((SECONDS - t0))s"

  if [[ $full == 1 ]]; then
    spawn kube-controller-manager "$K8S_BIN/kube-controller-manager" \
      --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
      --bind-address=127.0.0.1 --secure-port=0 \
      --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/ca.crt" \
      --cluster-signing-cert-file="$STATE/pki/ca.crt" --cluster-signing-key-file="$STATE/pki/ca.key" \
      --use-service-account-credentials=false --profiling=false \
      --flex-volume-plugin-dir="$STATE/flexvolume"
    spawn kube-scheduler "$K8S_BIN/kube-scheduler" \
      --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
      --bind-address=127.0.0.1 --secure-port=0 --profiling=false
    spawn kwok "$KWOK_BIN/kwok" --kubeconfig="$STATE/kubeconfig" --config="$KWOK_BIN/stages.yaml" \
      --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=10.255.0.1
    local k="$K8S_BIN/kubectl --kubeconfig=$STATE/kubeconfig" i taints=""
    # with an untainted real node, pods must not land on fake nodes
    [[ $real == 1 && -z "${NODE_TAINT:-}" ]] && taints="taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]"
    for ((i = 0; i < NODES; i++)); do
      $k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
spec: {$taints}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
    done
    ((NODES > 0)) && wait_for "kwok nodes Ready" 60 kwok $k wait --for=condition=Ready node -l type=kwok --timeout=1s
    wait_for "default ServiceAccount" 60 kube-controller-manager $k -n default get serviceaccount default
    log "controller-manager, scheduler, kwok ($NODES node) ready after $((SECONDS - t0))s"
    if [[ $real == 1 ]]; then
      K8S_LOCAL_STATE="$STATE" K8S_LOCAL_CACHE="$CACHE" K8S_VERSION="$K8S_VERSION" \
        bash "$(dirname "$0")/node-local.sh" start >/dev/null || die "the real node did not start"
    fi
  fi
  echo "$STATE/kubeconfig"
}

# ---------------------------------------------------------------- stop / status
cmd_stop() {
  [[ -d "$STATE/pids" ]] || { log "nothing recorded in $STATE/pids"; return 0; }
  if [[ -d "$STATE/node" ]]; then
    K8S_LOCAL_STATE="$STATE" K8S_LOCAL_CACHE="$CACHE" K8S_VERSION="$K8S_VERSION" \
      bash "$(dirname "$0")/node-local.sh" stop || log "WARNING: stopping the real node failed"
  fi
  # TERM the clients first (in parallel), then kube-apiserver, etcd last
  stop_group kwok kube-scheduler kube-controller-manager
  stop_group kube-apiserver
  stop_group etcd
  if [[ "${K8S_LOCAL_KEEP_STATE:-0}" != 1 ]]; then rm -rf "$STATE"; fi
}

stop_group() {
  local name f pid pids=() names=()
  for name in "$@"; do
    f="$STATE/pids/$name"; [[ -f "$f" ]] || continue
    pid="$(cat "$f")"; rm -f "$f"
    # only signal the PID if it is still the process we started (guards against PID reuse)
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$STATE"; then
      kill "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
  done
  local i j
  for i in "${!pids[@]}"; do
    for ((j = 0; j < 100; j++)); do [[ -d /proc/${pids[$i]} ]] || break; sleep 0.1; done
    if [[ -d /proc/${pids[$i]} ]]; then
      log "${names[$i]} (${pids[$i]}) did not exit after TERM, sending KILL"
      kill -9 "${pids[$i]}" 2>/dev/null || true
    fi
    log "stopped ${names[$i]} (${pids[$i]})"
  done
}

cmd_status() {
  local f
  for f in "$STATE"/pids/*; do
    [[ -f "$f" ]] || continue
    if [[ -d /proc/$(cat "$f") ]]; then echo "$(basename "$f") $(cat "$f") running"; else echo "$(basename "$f") $(cat "$f") dead"; fi
  done
}

case "${1:-}" in
  build) cmd_build ;;
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  assets) make_assets; echo "$ASSETS" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 2 ;;
esac
