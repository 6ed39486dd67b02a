#!/usr/bin/env bash
# bench/install.sh: `skiff install` of a large chart against `helm install`
# of the same relocated chart, on a local control plane (kwok nodes), in
# interleaved rounds, and the ratio skiff / helm. The chart is generated
# here (bench/chartgen: 135 objects and 10 CRDs with sizeable schemas,
# shaped like kube-prometheus-stack; nothing third-party is vendored), its
# 12 images are seeded into a registry on 127.0.0.1, and the package is
# built and loaded once. Each round then times, on a fresh namespace with
# no CRDs left from the previous round:
#
#   skiff install PKG --registry SITE/airgap        (images already loaded)
#   helm install REL CHART.tgz --wait=watcher       (the chart skiff load
#                                                    pushed, relocated, pulled
#                                                    to a file beforehand)
#
# Both wait for readiness the same way (Helm's status watcher: skiff
# installs charts through the Helm SDK with it). It writes its table into
# bench/README.md between the bench-install:begin/end markers.
#
#   bash bench/install.sh                 # 5 rounds
#   BENCH_ROUNDS=1 BENCH_WRITE=0 bash bench/install.sh
#
# Settings (environment):
#   BENCH_ROUNDS=5        interleaved rounds (medians are reported)
#   BENCH_WRITE=1         update bench/README.md (0: print only)
#   BENCH_PROFILE=DIR     also write skiff's CPU profile of each round there
#                         and execution trace (SKIFF_CPUPROFILE, SKIFF_TRACE)
#   BENCH_TOOLS=~/.cache/skiff/bench-tools  where helm is installed with
#                         `go install` from the Go module proxy
#   SKIFF_TEST_KUBECONFIG a running control plane to use (default: start
#                         one with hack/k8s-local.sh, kwok nodes only)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${BENCH_ROUNDS:-5}
tools=${BENCH_TOOLS:-$HOME/.cache/skiff/bench-tools}
# the Helm skiff is built with (go.mod), so both sides run the same engine
helm_v=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)
log() { printf '[bench-install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

make -s build
skiff="$root/bin/skiff"
helm_dir="$tools/helm-$helm_v"
if [[ ! -x "$helm_dir/helm" ]]; then
  log "installing helm $helm_v"
  (cd "$tools" 2>/dev/null || mkdir -p "$tools"; GOBIN="$helm_dir" CGO_ENABLED=0 go install "helm.sh/helm/v4/cmd/helm@$helm_v")
fi
helm="$helm_dir/helm"

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-install.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n "${started_k8s:-}" ]]; then K8S_LOCAL_STATE="$work/k8s" bash hack/k8s-local.sh stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM
export OTEL_TRACES_EXPORTER=none SKIFF_TRUST_DIR="$work/trust"
free_port() { local p=$1; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; return 1; }

if [[ -z "${SKIFF_TEST_KUBECONFIG:-}" ]]; then
  bash hack/k8s-local.sh build
  started_k8s=1
  KUBECONFIG="$(K8S_LOCAL_STATE="$work/k8s" bash hack/k8s-local.sh start --full | tail -1)"
else
  KUBECONFIG=$SKIFF_TEST_KUBECONFIG
fi
export KUBECONFIG
# the control plane's own kubectl (hack/k8s-local.sh caches it), else PATH's
kubectl=("$(ls -d "$HOME"/.cache/skiff/k8s/kubernetes-*/kubectl 2>/dev/null | tail -1)")
[[ -x "${kubectl[0]}" ]] || kubectl=(kubectl)

log "the chart, its images and the package"
go run ./bench/chartgen -out "$work/spec/chart" -image-prefix quay.io/bench
up=$(free_port 15990)
"$skiff" registry serve --addr "127.0.0.1:$up" --root "$work/upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$up/v2/"
repos=()
for img in $(go run ./bench/chartgen -print-images -image-prefix bench); do repos+=(--repo "$img"); done
go run ./hack/seed --registry "127.0.0.1:$up" --base-kib 64 --layer-kib 16 "${repos[@]}" >/dev/null
cat > "$work/spec/skiff.yaml" <<EOF
apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: big, version: 1.0.0}
platforms: [linux/amd64]
charts:
  - {name: big, path: chart}
EOF
# signed and trusted, as on a site: install verifies it each time
"$skiff" keygen --name "$work/release" >/dev/null 2>&1
"$skiff" trust add "$work/release.pub" >/dev/null
"$skiff" build -f "$work/spec/skiff.yaml" --output-file "$work/big.skiff" --sign-key "$work/release.key" \
  --registry-mirror "quay.io=127.0.0.1:$up" >/dev/null 2>&1
site=$(free_port 15000)
"$skiff" registry serve --addr "127.0.0.1:$site" --root "$work/site" >"$work/site.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$site/v2/"
"$skiff" load "$work/big.skiff" --registry "127.0.0.1:$site/airgap" >/dev/null
# the relocated chart skiff load pushed, as a file for helm
"$helm" pull "oci://127.0.0.1:$site/airgap/charts/big" --version 1.0.0 --plain-http -d "$work" >/dev/null
chart_tgz="$work/big-1.0.0.tgz"
objects=$("$helm" template x "$chart_tgz" --include-crds | grep -c '^kind:')
crds=$(go run ./bench/chartgen -out "$work/count" >/dev/null && ls "$work/count/crds" | wc -l)
crd_names=$(for f in "$work"/count/crds/*.yaml; do awk '/^  name:/ {print $2; exit}' "$f"; done)

results="$work/results.tsv"
: > "$results"
now() { date +%s.%N; }
# clean: no release, namespace or CRD left from a round (not timed)
clean() { # clean NS
  "${kubectl[@]}" delete namespace "$1" --ignore-not-found --wait=true >/dev/null
  # shellcheck disable=SC2086
  "${kubectl[@]}" delete crd $crd_names --ignore-not-found --wait=true >/dev/null
  "${kubectl[@]}" delete clusterrole,clusterrolebinding -l app.kubernetes.io/part-of=big --ignore-not-found >/dev/null
}
run_skiff() { # run_skiff ROUND
  local ns="bench-skiff-$1" t0 t1 prof=()
  [[ -n "${BENCH_PROFILE:-}" ]] && { mkdir -p "$BENCH_PROFILE"; prof=(env "SKIFF_CPUPROFILE=$BENCH_PROFILE/skiff-install-$1.pprof" "SKIFF_TRACE=$BENCH_PROFILE/skiff-install-$1.trace"); }
  t0=$(now)
  "${prof[@]}" "$skiff" install "$work/big.skiff" --name big -n "$ns" --registry "127.0.0.1:$site/airgap" \
    --timeout 5m >"$work/skiff-$1.log" 2>&1 || { cat "$work/skiff-$1.log" >&2; return 1; }
  t1=$(now)
  printf 'skiff\t%s\t%s\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" >> "$results"
  "$skiff" uninstall big -n "$ns" >/dev/null 2>&1
  clean "$ns"
}
run_helm() { # run_helm ROUND
  local ns="bench-helm-$1" t0 t1
  t0=$(now)
  "$helm" install big "$chart_tgz" -n "$ns" --create-namespace --wait=watcher --timeout 5m >"$work/helm-$1.log" 2>&1 || { cat "$work/helm-$1.log" >&2; return 1; }
  t1=$(now)
  printf 'helm\t%s\t%s\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" >> "$results"
  "$helm" uninstall big -n "$ns" --wait >/dev/null 2>&1
  clean "$ns"
}

for r in $(seq "$rounds"); do clean "bench-skiff-$r"; clean "bench-helm-$r"; done   # an interrupted run's
log "$rounds rounds: skiff install and helm install of $objects objects ($crds CRDs)"
for r in $(seq "$rounds"); do
  if ((r % 2)); then run_skiff "$r"; run_helm "$r"; else run_helm "$r"; run_skiff "$r"; fi
  log "round $r: $(awk -F'\t' -v r="$r" '$2 == r {printf "%s %.2f s  ", $1, $3}' "$results")"
done

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit; if (NR % 2) printf "%.2f\n", a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
med() { awk -F'\t' -v t="$1" '$1 == t {print $3}' "$results" | median; }
ratio=$(awk -F'\t' '$1 == "skiff" {s[$2] = $3} $1 == "helm" {h[$2] = $3} END {for (r in s) if (r in h && h[r] > 0) printf "%.2f\n", s[r] / h[r]}' "$results" | median)
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
table="$work/table.md"
{
  echo "Written by \`bench/install.sh\` on $(date -u +%Y-%m-%d) (UTC): $cpu, $(nproc) cores, Linux $(uname -r);"
  echo "$(go version | cut -d' ' -f3), helm $helm_v (the version skiff is built with), Kubernetes $("${kubectl[@]}" version -o json | awk -F'"' '/gitVersion/ {v = $4} END {print v}') with kwok nodes."
  echo "Chart: bench/chartgen, $objects objects of which $crds CRDs; $rounds interleaved rounds, medians;"
  echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: numbers are noisy, ratios less so)."
  echo
  echo "| workload | skiff install | helm install | skiff / helm |"
  echo "|---|---|---|---|"
  echo "| install and wait for readiness | $(med skiff) s | $(med helm) s | **${ratio}×** |"
} > "$table"
cat "$table"
if [[ "${BENCH_WRITE:-1}" == 1 ]]; then
  awk -v t="$table" '
    /<!-- bench-install:begin -->/ {print; while ((getline l < t) > 0) print l; skip = 1; next}
    /<!-- bench-install:end -->/ {skip = 0}
    !skip {print}' bench/README.md > "$work/README.md"
  cp "$work/README.md" bench/README.md
  log "bench/README.md updated"
fi
