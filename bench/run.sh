#!/usr/bin/env bash
# bench/run.sh: build and load a ~1 GB package of 20 images with shared base
# layers from a registry on 127.0.0.1, and do the same with skopeo for
# comparison. Prints wall time, peak RSS and sizes. Data is generated here
# (hack/seed) and deleted afterwards; nothing is committed.
#   BENCH_IMAGES=20 BENCH_BASE_KIB=204800 BENCH_LAYER_KIB=40960 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${BENCH_IMAGES:-20}
base=${BENCH_BASE_KIB:-204800}
own=${BENCH_LAYER_KIB:-40960}
make -s build
skiff="$root/bin/skiff"
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM
export OTEL_TRACES_EXPORTER=none SKIFF_TRUST_DIR="$work/trust"
free_port() { local p=$1; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
measure() { # measure LABEL CMD...: wall seconds and peak RSS via /usr/bin/time
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  read -r secs kib < "$work/time"
  printf '%-34s %8s s %8d MiB\n' "$label" "$secs" $((kib / 1024))
}
command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)"; exit 1; }

up=$(free_port 16000)
"$skiff" registry serve --addr "127.0.0.1:$up" --root "$work/up" >/dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$up/v2/"
args=(); for i in $(seq 1 "$n"); do args+=(--repo "bench/app$i:1.0"); done
go run ./hack/seed --registry "127.0.0.1:$up" --base-kib "$base" --layer-kib "$own" "${args[@]}" >/dev/null
mkdir -p "$work/pkg"
{ echo "apiVersion: skiff.dev/v1alpha1"; echo "kind: Package"; echo "metadata: {name: bench, version: 1.0.0}"; echo "images:"
  for i in $(seq 1 "$n"); do echo "  - 127.0.0.1:$up/bench/app$i:1.0"; done; } > "$work/pkg/skiff.yaml"
echo "== $n images, shared base $((base / 1024)) MiB + $((own / 1024)) MiB each"
measure "skiff build" "$skiff" build -f "$work/pkg" -o "$work/bench.skiff" --progress none
echo "   archive: $(du -m "$work/bench.skiff" | cut -f1) MiB"
if [[ "${BENCH_SKOPEO:-1}" == 1 ]] && command -v skopeo >/dev/null; then
  cat > "$work/skopeo.sh" <<EOS
for i in \$(seq 1 $n); do skopeo copy -q --src-tls-verify=false docker://127.0.0.1:$up/bench/app\$i:1.0 oci:$work/skopeo-layout:app\$i; done
EOS
  measure "skopeo copy (to OCI layout)" bash "$work/skopeo.sh"
  echo "   layout: $(du -sm "$work/skopeo-layout" | cut -f1) MiB"
fi
measure "skiff verify" "$skiff" verify "$work/bench.skiff" --insecure-skip-signature
reg=$(free_port 16100)
"$skiff" registry serve --addr "127.0.0.1:$reg" --root "$work/reg" >/dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$reg/v2/"
measure "skiff load (empty registry)" "$skiff" load "$work/bench.skiff" --registry "127.0.0.1:$reg/a" --insecure-skip-signature --progress none
measure "skiff load (again: 0 bytes)" "$skiff" load "$work/bench.skiff" --registry "127.0.0.1:$reg/a" --insecure-skip-signature --progress none
if [[ "${BENCH_SKOPEO:-1}" == 1 ]] && command -v skopeo >/dev/null; then
  cat > "$work/skopeo-push.sh" <<EOS
for i in \$(seq 1 $n); do skopeo copy -q --dest-tls-verify=false oci:$work/skopeo-layout:app\$i docker://127.0.0.1:$reg/s/app\$i:1.0; done
EOS
  measure "skopeo copy (layout to registry)" bash "$work/skopeo-push.sh"
fi
