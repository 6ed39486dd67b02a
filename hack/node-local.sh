#!/usr/bin/env bash
# node-local.sh - a REAL Kubernetes node beside hack/k8s-local.sh's control plane:
# Debian's containerd 1.6 + runc + containernetworking-plugins and a kubelet built
# from the Go module proxy (hack/k8s-local.sh build). Pods really run.
#
#   node-local.sh start   join a node to the control plane in $K8S_LOCAL_STATE
#                         (started with hack/k8s-local.sh start); prints the node name
#   node-local.sh stop    stop it and undo every host change (below)
#   node-local.sh status
#
# Usually driven by `k8s-local.sh start --full --node` and `k8s-local.sh stop`.
# Needs root, cgroup v1 (cgroup v2 works too) and the Debian packages containerd,
# runc, containernetworking-plugins and busybox-static. One real node per host.
#
# Isolation, so that stop leaves the host as it found it:
#   - containerd and kubelet run in a private mount namespace with tmpfs over /run,
#     /var/lib and /var/log: every mount they make (overlay rootfs, netns, volumes,
#     kubelet's rshared root) and every fixed path (/run/containerd, /var/lib/cni,
#     /var/lib/kubelet/device-plugins, /var/log/containers) vanishes with them;
#     their own root, state, socket, config, CNI config and kubelet root live in
#     $K8S_LOCAL_STATE/node;
#   - every process (containerd, shims, kubelet, pods) lives in the cgroup
#     /$NODE_CGROUP (pods under kubelet's cgroupRoot); stop kills what is left there
#     and removes the cgroups;
#   - kubelet sets kernel.panic, kernel.panic_on_oops, vm.overcommit_memory,
#     vm.panic_on_oom and kernel.keys.* and the CNI bridge sets net.ipv4.ip_forward:
#     start saves them, stop restores them;
#   - the CNI bridge ($NODE_BRIDGE) is deleted; kubelet's iptables chains are off
#     (makeIPTablesUtilChains: false) and the bridge has no masquerading; stop still
#     removes any KUBE-/CNI- chain that was not there before.
# No kube-proxy and no cluster DNS: pods cannot reach Services or the API by name.
# The sandbox ("pause") image is Debian's static busybox sleeping, imported into
# containerd at start (no registry needed).
#
# Environment (defaults in brackets):
#   K8S_LOCAL_STATE [${TMPDIR:-/tmp}/skiff-k8s]  the control plane's state dir
#   K8S_LOCAL_CACHE  where hack/k8s-local.sh build put kubelet
#   NODE_NAME [localhost]  NODE_TAINT [none], e.g. skiff.dev/real-node=true:NoSchedule
#   NODE_POD_CIDR [10.213.0.0/24]  NODE_BRIDGE [skiff0]  NODE_CGROUP [skiff-node]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="${K8S_VERSION:-1.35.4}"
CACHE="${K8S_LOCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff/k8s}"
STATE="${K8S_LOCAL_STATE:-${TMPDIR:-/tmp}/skiff-k8s}"
N="$STATE/node"
KUBELET="$CACHE/kubernetes-v$K8S_VERSION/kubelet"
KUBECTL="$CACHE/kubernetes-v$K8S_VERSION/kubectl"
# "localhost": the apiserver reaches kubelets by their Hostname address first
# (hack/k8s-local.sh), and kubelet listens on 127.0.0.1 only
NODE_NAME="${NODE_NAME:-localhost}"
NODE_TAINT="${NODE_TAINT:-}"
POD_CIDR="${NODE_POD_CIDR:-10.213.0.0/24}"
BRIDGE="${NODE_BRIDGE:-skiff0}"
CG="${NODE_CGROUP:-skiff-node}"
CNI_BIN="${NODE_CNI_BIN:-/usr/lib/cni}"
PAUSE_IMAGE="skiff.local/pause:1"
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

log() { printf '[node-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# cgroup hierarchies: v1 has one directory per controller, v2 one unified tree
cgroup_dirs() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo /sys/fs/cgroup; return; fi
  local d
  for d in /sys/fs/cgroup/*/; do
    d="${d%/}"
    [[ "$(basename "$d")" == unified ]] && continue
    [[ -f "$d/cgroup.procs" ]] && echo "$d"
  done
}
# the hierarchy that tracks every process of the node
track_dir() { if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo "/sys/fs/cgroup/$CG"; else echo "/sys/fs/cgroup/pids/$CG"; fi; }
# cgroup_pids [SUBDIR]: the processes in the node's cgroup tree (or a subtree)
cgroup_pids() { { find "$(track_dir)${1:+/$1}" -name cgroup.procs -exec cat {} + 2>/dev/null || true; } | sort -u; }

# ---------------------------------------------------------------- start
check_host() {
  [[ "$(id -u)" == 0 ]] || die "a real node needs root"
  local b
  for b in containerd containerd-shim-runc-v2 runc ctr unshare nsenter ip openssl; do
    command -v "$b" >/dev/null || die "$b not found: apt-get install containerd runc util-linux iproute2 openssl"
  done
  for b in bridge host-local loopback; do [[ -x "$CNI_BIN/$b" ]] || die "$CNI_BIN/$b missing: apt-get install containernetworking-plugins"; done
  [[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || die "/bin/busybox missing: apt-get install busybox-static"
  [[ -x "$KUBELET" ]] || die "$KUBELET missing: run 'hack/k8s-local.sh build' first"
  [[ -f "$STATE/kubeconfig" && -f "$STATE/pki/ca.key" ]] || die "no control plane in $STATE: run 'hack/k8s-local.sh start --full' first"
  case "$(realpath -m "$N")/" in
    /run/*|/var/run/*|/var/lib/*|/var/log/*) die "K8S_LOCAL_STATE must not be under /run, /var/lib or /var/log (hidden from the node)" ;;
  esac
  [[ -f "$N/pids/node" ]] && die "$N already runs a node; run '$0 stop' first"
  local pids; pids="$(cgroup_pids)"
  [[ -z "$pids" ]] || die "cgroup $CG already has processes (another real node on this host?): one real node per host"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "network interface $BRIDGE exists (another real node?); stop it first"
  return 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }

save_host() {
  local s
  : > "$N/saved/sysctl"
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")" >> "$N/saved/sysctl"; done
  iptables_chains > "$N/saved/iptables" || true
}

# "TABLE CHAIN" for every iptables chain (empty when iptables is absent)
iptables_chains() {
  command -v iptables-save >/dev/null || return 0
  iptables-save 2>/dev/null | awk '/^\*/{t=substr($1,2)} /^:/{print t, substr($1,2)}'
}

gen_identity() {
  local d="$N/pki"; mkdir -p "$d"
  ( cd "$d"
    openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj "/O=system:nodes/CN=system:node:$NODE_NAME" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > node.ext
    openssl x509 -req -in node.csr -CA "$STATE/pki/ca.crt" -CAkey "$STATE/pki/ca.key" -CAcreateserial \
      -out node.crt -days 3650 -extfile node.ext 2>/dev/null
    chmod 600 node.key )
  local server b64="base64 -w0"
  server="$(sed -n 's/^ *server: //p' "$STATE/kubeconfig" | head -1)"
  cat > "$N/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority-data: $($b64 < "$STATE/pki/ca.crt")}
users:
- name: node
  user: {client-certificate-data: $($b64 < "$d/node.crt"), client-key-data: $($b64 < "$d/node.key")}
contexts:
- name: local
  context: {cluster: local, user: node}
current-context: local
EOF
  chmod 600 "$N/kubelet.kubeconfig"
  # the apiserver authorizes with RBAC only: give the nodes group the system:node role
  "$KUBECTL" --kubeconfig="$STATE/kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "skiff:local-nodes"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}]
EOF
}

write_configs() {
  mkdir -p "$N/cni/conf" "$N/cni/ipam" "$N/certs.d" "$N/kubelet" "$N/logs" "$N/volume-plugins"
  # restrict_oom_score_adj: this VM may lack CAP_SYS_RESOURCE, and runc then fails
  # with "can't get final child's PID from pipe: EOF" when asked to lower oom_score_adj
  cat > "$N/containerd.toml" <<EOF
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$N/containerd.sock"
[ttrpc]
  address = "$N/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$N/cni/conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$N/certs.d"
EOF
  local gw="${POD_CIDR%.*}.1"
  cat > "$N/cni/conf/10-skiff.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "skiff",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$N/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$gw"}]]}},
    {"type": "loopback"}
  ]
}
EOF
  printf 'nameserver 127.0.0.1\n' > "$N/resolv.conf"
  KUBELET_PORT="$(free_port 10250)"
  local taints=""
  [[ -n "$NODE_TAINT" ]] && taints="--register-with-taints=$NODE_TAINT"
  echo "$taints" > "$N/taints"
  cat > "$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$STATE/pki/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: "unix://$N/containerd.sock"
cgroupDriver: cgroupfs
cgroupRoot: /$CG
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: "$N/resolv.conf"
podLogsDir: "$N/pod-logs"
volumePluginDir: "$N/volume-plugins"
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
nodeStatusUpdateFrequency: 5s
EOF
}

# a runnable OCI image archive: Debian's static busybox, entrypoint "sleep forever"
make_pause_archive() {
  local d; d="$(mktemp -d "$N/pause.XXXXXX")"
  mkdir -p "$d/rootfs/bin" "$d/oci/blobs/sha256"
  cp /bin/busybox "$d/rootfs/bin/busybox"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d/rootfs" -cf "$d/layer.tar" .
  local layer lsize cfg csize man msize
  layer="$(sha256sum < "$d/layer.tar" | cut -d' ' -f1)"; lsize="$(stat -c %s "$d/layer.tar")"
  mv "$d/layer.tar" "$d/oci/blobs/sha256/$layer"
  printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/bin/busybox","sleep","2147483647"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(go_arch)" "$layer" > "$d/config.json"
  cfg="$(sha256sum < "$d/config.json" | cut -d' ' -f1)"; csize="$(stat -c %s "$d/config.json")"
  mv "$d/config.json" "$d/oci/blobs/sha256/$cfg"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cfg" "$csize" "$layer" "$lsize" > "$d/manifest.json"
  man="$(sha256sum < "$d/manifest.json" | cut -d' ' -f1)"; msize="$(stat -c %s "$d/manifest.json")"
  mv "$d/manifest.json" "$d/oci/blobs/sha256/$man"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
    "$man" "$msize" "$PAUSE_IMAGE" > "$d/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci/oci-layout"
  tar -C "$d/oci" -cf "$N/pause.tar" .
  rm -rf "$d"
}
go_arch() { case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac; }

make_cgroups() {
  local d
  for d in $(cgroup_dirs); do
    mkdir -p "$d/$CG/runtime"
    if [[ -f "$d/cpuset.cpus" ]]; then   # v1 cpuset: children start empty
      cat "$d/cpuset.cpus" > "$d/$CG/cpuset.cpus"; cat "$d/cpuset.mems" > "$d/$CG/cpuset.mems"
      cat "$d/cpuset.cpus" > "$d/$CG/runtime/cpuset.cpus"; cat "$d/cpuset.mems" > "$d/$CG/runtime/cpuset.mems"
    fi
  done
}

# inner: runs in the private mount namespace (see cmd_start); $1 = kubelet port
cmd_inner() {
  echo $$ > "$(track_dir)/runtime/cgroup.procs"
  mount -t tmpfs -o mode=755 skiff-node-run /run
  mount -t tmpfs -o mode=755 skiff-node-var-lib /var/lib
  mount -t tmpfs -o mode=755 skiff-node-var-log /var/log
  containerd --config "$N/containerd.toml" > "$N/logs/containerd.log" 2>&1 < /dev/null &
  echo $! > "$N/pids/containerd"
  local i
  for ((i = 0; i < 150; i++)); do
    ctr --address "$N/containerd.sock" version >/dev/null 2>&1 && break
    kill -0 "$(cat "$N/pids/containerd")" 2>/dev/null || { echo "containerd exited" >&2; exit 1; }
    sleep 0.2
  done
  ctr --address "$N/containerd.sock" -n k8s.io images import "$N/pause.tar" > "$N/logs/pause-import.log" 2>&1 || { cat "$N/logs/pause-import.log" >&2; exit 1; }
  # shellcheck disable=SC2046
  "$KUBELET" --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" --root-dir="$N/kubelet" \
    --hostname-override="$NODE_NAME" $(cat "$N/taints") \
    > "$N/logs/kubelet.log" 2>&1 < /dev/null &
  echo $! > "$N/pids/kubelet"
  wait
}

cmd_start() {
  check_host
  local t0=$SECONDS
  rm -rf "$N"; mkdir -p "$N/pids" "$N/saved"
  echo "$NODE_NAME" > "$N/name"
  echo "$CG" > "$N/cgroup"; echo "$BRIDGE" > "$N/bridge"
  save_host
  gen_identity
  write_configs
  make_pause_archive
  make_cgroups
  # setsid: the node outlives this shell; unshare: a private mount namespace
  setsid unshare --mount --propagation private -- bash "$0" _inner > "$N/logs/inner.log" 2>&1 < /dev/null &
  echo $! > "$N/pids/node"
  local k="$KUBECTL --kubeconfig=$STATE/kubeconfig" end=$((SECONDS + 90))
  until $k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; do
    if ! kill -0 "$(cat "$N/pids/node")" 2>/dev/null || ((SECONDS > end)); then
      tail -n 20 "$N/logs/inner.log" "$N/logs/containerd.log" "$N/logs/kubelet.log" >&2 2>/dev/null || true
      cmd_stop >/dev/null 2>&1 || true
      die "node $NODE_NAME did not become Ready (logs were in $N/logs)"
    fi
    sleep 0.3
  done
  log "node $NODE_NAME Ready after $((SECONDS - t0))s (containerd socket $N/containerd.sock, registry hosts dir $N/certs.d)"
  echo "$NODE_NAME"
}

# ---------------------------------------------------------------- stop
cmd_stop() {
  [[ -d "$N" ]] || { log "no node in $N"; return 0; }
  [[ -f "$N/cgroup" ]] && CG="$(cat "$N/cgroup")"
  [[ -f "$N/bridge" ]] && BRIDGE="$(cat "$N/bridge")"
  local t0=$SECONDS name=""
  [[ -f "$N/name" ]] && name="$(cat "$N/name")"
  # kubelet first, so that it does not restart what is killed next
  stop_pid kubelet TERM 10
  # then every container (kubelet puts pods in $CG/kubepods), containerd, the rest
  kill_cgroup_tree kubepods
  stop_pid containerd TERM 10
  kill_cgroup_tree
  remove_cgroups
  ip link del "$BRIDGE" >/dev/null 2>&1 || true
  restore_host
  if [[ -n "$name" && -f "$STATE/kubeconfig" && -x "$KUBECTL" ]]; then
    "$KUBECTL" --kubeconfig="$STATE/kubeconfig" delete node "$name" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$N"
  log "node stopped and host restored in $((SECONDS - t0))s"
}

stop_pid() { # stop_pid NAME SIGNAL TIMEOUT_S: signal a recorded process if it still is ours
  local f="$N/pids/$1" pid i
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"; rm -f "$f"
  in_cgroup "$pid" || return 0
  kill -s "$2" "$pid" 2>/dev/null || true
  for ((i = 0; i < $3 * 10; i++)); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
in_cgroup() { [[ -r /proc/$1/cgroup ]] && grep -q ":/$CG\(/\|$\)" "/proc/$1/cgroup"; }

kill_cgroup_tree() { # kill_cgroup_tree [SUBDIR]
  local i pids p
  for ((i = 0; i < 50; i++)); do
    pids="$(cgroup_pids "${1:-}")"
    [[ -z "$pids" ]] && return 0
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    sleep 0.1
  done
  log "WARNING: processes left in cgroup $CG: $(cgroup_pids | tr '\n' ' ')"
}

remove_cgroups() {
  local d
  # kubelet also creates its tree in the hybrid layout's unified hierarchy
  for d in $(cgroup_dirs) /sys/fs/cgroup/unified; do
    [[ -d "$d/$CG" ]] || continue
    # deepest first
    find "$d/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    if [[ -d "$d/$CG" ]]; then log "WARNING: could not remove $d/$CG"; fi
  done
}

restore_host() {
  local line
  if [[ -f "$N/saved/sysctl" ]]; then
    while IFS= read -r line; do sysctl -q -w "$line" >/dev/null 2>&1 || log "WARNING: could not restore $line"; done < "$N/saved/sysctl"
  fi
  if [[ -f "$N/saved/iptables" ]]; then
    local t c
    iptables_chains | grep -E ' (KUBE-|CNI-)' | grep -vxFf "$N/saved/iptables" | while read -r t c; do
      # remove the rules that jump to the chain, then the chain
      iptables -t "$t" -S | grep -- "-j $c\( \|$\)" | sed 's/^-A /-D /' | while read -r rule; do
        eval "iptables -t $t $rule" || true
      done
      iptables -t "$t" -F "$c" 2>/dev/null || true
      iptables -t "$t" -X "$c" 2>/dev/null || log "WARNING: could not remove iptables chain $t/$c"
    done || true
  fi
}

cmd_status() {
  [[ -f "$N/pids/node" ]] || { echo "no node"; return 1; }
  echo "node $(cat "$N/name"): processes $(cgroup_pids | wc -l) in cgroup $CG"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  _inner) cmd_inner ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 2 ;;
esac
