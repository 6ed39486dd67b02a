#!/usr/bin/env bash
# bench/run.sh: skiff build and load side by side with crane, oras, regctl
# and skopeo, on the same images from a registry on 127.0.0.1, in
# interleaved rounds, and the ratios skiff / crane. It writes its table
# into bench/README.md (between the bench:begin/end markers) with the date
# and the machine. Data is generated here (hack/seed) and deleted
# afterwards; nothing is committed.
#
#   bash bench/run.sh                      # 1000 MiB, both data sets, 3 rounds
#   BENCH_ROUNDS=1 BENCH_DATA=random BENCH_TOOLS_ONLY="crane" bash bench/run.sh
#
# Settings (environment):
#   BENCH_IMAGES=20 BENCH_BASE_KIB=204800 BENCH_LAYER_KIB=40960  the package
#   BENCH_DATA="random files"  data sets: random bytes (labelled as
#       uncompressed layers) and tar layers of the real files under
#       BENCH_FILES_ROOT (/usr), uncompressed; "files-gzip" gzips them
#   BENCH_ROUNDS=3             interleaved rounds (medians are reported)
#   BENCH_SCALE_LAYER_KIB=153600  a second, larger package (200 MiB + 20 ×
#       this) measured once for skiff's peak memory; 0 skips it
#   BENCH_WRITE=1              update bench/README.md (0: print only)
#   BENCH_TOOLS=~/.cache/skiff/bench-tools  where crane, oras and regctl
#       are installed with `go install` from the Go module proxy
# skopeo comes from Debian (apt-get install skopeo); without it, its
# column stays empty.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${BENCH_IMAGES:-20}
base=${BENCH_BASE_KIB:-204800}
own=${BENCH_LAYER_KIB:-40960}
rounds=${BENCH_ROUNDS:-3}
datasets=${BENCH_DATA:-random files}
scale=${BENCH_SCALE_LAYER_KIB:-153600}
tools=${BENCH_TOOLS:-$HOME/.cache/skiff/bench-tools}
crane_v=v0.22.1 oras_v=v1.3.6 regctl_v=v0.11.7

command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)"; exit 1; }
make -s build
skiff="$root/bin/skiff"

# crane, oras and regctl, each at a fixed version, from the Go module proxy.
install_tool() { # install_tool NAME PACKAGE VERSION
  local dir="$tools/$1-$3"
  if [[ ! -x "$dir/$1" ]]; then
    echo "installing $1 $3" >&2
    GOBIN="$dir" GOFLAGS=-mod=mod go install "$2@$3" >&2
  fi
  echo "$dir/$1"
}
crane=$(install_tool crane github.com/google/go-containerregistry/cmd/crane "$crane_v")
oras=$(install_tool oras oras.land/oras/cmd/oras "$oras_v")
regctl=$(install_tool regctl github.com/regclient/regclient/cmd/regctl "$regctl_v")
skopeo=$(command -v skopeo || true)
skopeo_v="not installed"
[[ -z "$skopeo" ]] || skopeo_v=$(skopeo --version | cut -d' ' -f3)
all_tools="skiff skiff-nosbom crane crane+fsync oras regctl skopeo"
[[ -n "$skopeo" ]] || { echo "skopeo is not installed (apt-get install skopeo): its column stays empty" >&2; all_tools=${all_tools/ skopeo/}; }
run_tools=${BENCH_TOOLS_ONLY:-$all_tools}

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
export OTEL_TRACES_EXPORTER=none SKIFF_TRUST_DIR="$work/trust" HOME_BENCH="$work/home"
mkdir -p "$HOME_BENCH"
free_port() { local p=$1; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
wait_http() { for _ in $(seq 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
start_registry() { # start_registry FIRST_PORT ROOT: sets reg_port and reg_pid
  reg_port=$(free_port "$1")
  "$skiff" registry serve --addr "127.0.0.1:$reg_port" --root "$2" >/dev/null 2>&1 &
  reg_pid=$!
  pids+=("$reg_pid")
  wait_http "http://127.0.0.1:$reg_port/v2/"
}
results="$work/results.tsv"
: > "$results"
# measure DATASET WORKLOAD TOOL ROUND CMD...: wall seconds and peak RSS.
# Dirty pages of the previous run are flushed first (not timed), so every
# tool starts from the same state; a tool's own unsynced writes are not.
measure() {
  local ds=$1 wl=$2 tool=$3 round=$4; shift 4
  sync
  if ! /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err"; then
    echo "FAILED: $tool $wl ($ds)" >&2; cat "$work/err" >&2; return 1
  fi
  read -r secs kib < "$work/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" "$wl" "$tool" "$round" "$secs" "$kib" >> "$results"
  printf '  %-8s %-6s %-13s round %s: %6s s %6d MiB\n' "$ds" "$wl" "$tool" "$round" "$secs" $((kib / 1024)) >&2
}
# Per-image commands of the tools that copy one image per call.
cat > "$work/one.sh" <<'EOS'
#!/usr/bin/env bash
# one.sh TOOL VERB SRC DST N: copy images 1..N, one call each, sequentially.
set -euo pipefail
tool=$1 verb=$2 src=$3 dst=$4 n=$5
for i in $(seq 1 "$n"); do
  case "$tool/$verb" in
    oras/pull) "$ORAS" copy --from-plain-http "$src/bench/app$i:1.0" --to-oci-layout "$dst:app$i" ;;
    oras/load) "$ORAS" copy --from-oci-layout "$src:app$i" --to-plain-http "$dst/o/app$i:1.0" ;;
    regctl/pull) HOME=$HOME_BENCH "$REGCTL" image copy "$src/bench/app$i:1.0" "ocidir://$dst:app$i" ;;
    regctl/load) HOME=$HOME_BENCH "$REGCTL" image copy "ocidir://$src:app$i" "$dst/r/app$i:1.0" ;;
    skopeo/pull) skopeo copy -q --preserve-digests --src-tls-verify=false "docker://$src/bench/app$i:1.0" "oci:$dst:app$i" ;;
    skopeo/load) skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$src:app$i" "docker://$dst/s/app$i:1.0" ;;
  esac
done
EOS
export ORAS="$oras" REGCTL="$regctl"

seed_pkg() { # seed_pkg DATASET OWN_KIB PORT: pushes the images, writes the skiff.yaml
  local ds=$1 ownk=$2 port=$3 args=() i
  for i in $(seq 1 "$n"); do args+=(--repo "bench/app$i:1.0"); done
  local data=(--data random)
  case "$ds" in
    files) data=(--data files --files-root "${BENCH_FILES_ROOT:-/usr}") ;;
    files-gzip) data=(--data files --files-root "${BENCH_FILES_ROOT:-/usr}" --gzip) ;;
  esac
  go run ./hack/seed --registry "127.0.0.1:$port" --base-kib "$base" --layer-kib "$ownk" "${data[@]}" "${args[@]}" >/dev/null
  mkdir -p "$work/pkg"
  { echo "apiVersion: skiff.dev/v1alpha1"; echo "kind: Package"; echo "metadata: {name: bench, version: 1.0.0}"; echo "images:"
    for i in $(seq 1 "$n"); do echo "  - 127.0.0.1:$port/bench/app$i:1.0"; done; } > "$work/pkg/skiff.yaml"
}

pull() { # pull TOOL DATASET ROUND PORT OUT
  local tool=$1 ds=$2 r=$3 up=$4 out=$5 refs=() i
  for i in $(seq 1 "$n"); do refs+=("127.0.0.1:$up/bench/app$i:1.0"); done
  case "$tool" in
    skiff) measure "$ds" build skiff "$r" "$skiff" build -f "$work/pkg" --output-file "$out.skiff" --progress none ;;
    skiff-nosbom) measure "$ds" build skiff-nosbom "$r" "$skiff" build -f "$work/pkg" --output-file "$out.skiff" --progress none --no-sbom ;;
    crane) measure "$ds" build crane "$r" "$crane" pull --insecure "${refs[@]}" "$out.tar" ;;
    crane+fsync) measure "$ds" build crane+fsync "$r" env OUT="$out.tar" bash -c '"$@" && sync "$OUT"' _ "$crane" pull --insecure "${refs[@]}" "$out.tar" ;;
    oras | regctl | skopeo) measure "$ds" build "$tool" "$r" bash "$work/one.sh" "$tool" pull "127.0.0.1:$up" "$out" "$n" ;;
  esac
}

load() { # load TOOL DATASET ROUND SRC: into a fresh, empty registry
  local tool=$1 ds=$2 r=$3 src=$4
  start_registry 16100 "$work/reg"
  local dst="127.0.0.1:$reg_port" pid=$reg_pid
  HOME=$HOME_BENCH "$regctl" registry set --tls disabled "$dst" >/dev/null
  case "$tool" in
    skiff | skiff-nosbom) measure "$ds" load skiff "$r" "$skiff" load "$src" --registry "$dst/a" --insecure-skip-signature --progress none ;;
    crane) measure "$ds" load crane "$r" "$crane" push --insecure --index "$src" "$dst/c/bench:1.0" ;;
    oras | regctl | skopeo) measure "$ds" load "$tool" "$r" bash "$work/one.sh" "$tool" load "$src" "$dst" "$n" ;;
  esac
  if [[ "$tool" == skiff && "$r" == 1 ]]; then
    measure "$ds" reload skiff "$r" "$skiff" load "$src" --registry "$dst/a" --insecure-skip-signature --progress none
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work/reg"
}

# rotate WORDS... ROUND: the words in an order shuffled for each round (the
# same for the same round), so that no tool always runs first, last or
# after the same other tool.
rotate() { local r=${!#}; printf '%s\n' "${@:1:$#-1}" | shuf --random-source=<(yes "$((r * 2654435761 % 4294967296))"); }

for ds in $datasets; do
  start_registry 16000 "$work/up"
  up=$reg_port uppid=$reg_pid
  HOME=$HOME_BENCH "$regctl" registry set --tls disabled "127.0.0.1:$up" >/dev/null
  echo "== $ds: seeding $n images, base $((base / 1024)) MiB + $((own / 1024)) MiB each" >&2
  seed_pkg "$ds" "$own" "$up"
  for r in $(seq 1 "$rounds"); do
    for tool in $(rotate $run_tools "$r"); do
      rm -rf "$work/out"; mkdir -p "$work/out"
      pull "$tool" "$ds" "$r" "$up" "$work/out/$tool"
      if [[ "$tool" == skiff ]]; then
        echo "  archive: $(du -m "$work/out/skiff.skiff" | cut -f1) MiB" >&2
      fi
    done
  done
  # Load sources, made once (not timed): skiff's archive, crane's OCI
  # layout of all images, the others' layouts.
  rm -rf "$work/out" "$work/src"; mkdir -p "$work/src"
  refs=(); for i in $(seq 1 "$n"); do refs+=("127.0.0.1:$up/bench/app$i:1.0"); done
  "$skiff" build -f "$work/pkg" --output-file "$work/src/skiff.skiff" --progress none >/dev/null
  for tool in $run_tools; do
    case "$tool" in
      crane) "$crane" pull --insecure --format oci "${refs[@]}" "$work/src/crane" >/dev/null 2>&1 ;;
      oras | regctl | skopeo) bash "$work/one.sh" "$tool" pull "127.0.0.1:$up" "$work/src/$tool" "$n" >/dev/null 2>&1 ;;
    esac
  done
  for r in $(seq 1 "$rounds"); do
    for tool in $(rotate $run_tools "$r"); do
      case "$tool" in
        skiff-nosbom | crane+fsync) continue ;; # build-only variants
        skiff) load skiff "$ds" "$r" "$work/src/skiff.skiff" ;;
        *) load "$tool" "$ds" "$r" "$work/src/$tool" ;;
      esac
    done
  done
  rm -rf "$work/src"
  kill "$uppid"; wait "$uppid" 2>/dev/null || true
  rm -rf "$work/up"
done

# Peak memory at a larger size: skiff only, once.
if [[ "$scale" != 0 ]]; then
  start_registry 16000 "$work/up"
  up=$reg_port uppid=$reg_pid
  total=$(((base + n * scale) / 1024))
  echo "== scale: $total MiB" >&2
  seed_pkg random "$scale" "$up"
  measure "scale-$total" build skiff 1 "$skiff" build -f "$work/pkg" --output-file "$work/scale.skiff" --progress none
  kill "$uppid"; wait "$uppid" 2>/dev/null || true
  rm -rf "$work/up"
  load skiff "scale-$total" 1 "$work/scale.skiff"
  rm -f "$work/scale.skiff"
fi

# The report: medians per data set, workload and tool; ratios to crane
# are medians of the per-round ratios (rounds are interleaved, so a round's
# tools ran under the same conditions).
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
cell() { awk -F'\t' -v d="$1" -v w="$2" -v t="$3" -v c="$4" '$1 == d && $2 == w && $3 == t {print $c}' "$results" | median; }
ratio() { # ratio DATASET WORKLOAD TOOL BASE: median over rounds of TOOL / BASE
  awk -F'\t' -v d="$1" -v w="$2" -v t="$3" -v b="$4" '$1 == d && $2 == w && $3 == t {a[$4] = $5} $1 == d && $2 == w && $3 == b {c[$4] = $5}
    END {for (r in a) if (r in c && c[r] > 0) printf "%.2f\n", a[r] / c[r]}' "$results" | median
}
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
fs=$(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $2}')
table="$work/table.md"
{
  echo "Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d) (UTC): $cpu, $(nproc) cores, $mem, Linux $(uname -r), $fs;"
  echo "$(go version | cut -d' ' -f3), crane $crane_v, oras $oras_v, regctl $regctl_v, skopeo $skopeo_v."
  echo "$n images, base $((base / 1024)) MiB + $((own / 1024)) MiB each; $rounds interleaved rounds, medians;"
  echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: numbers are noisy, ratios less so)."
  echo
  echo "| data | workload | skiff | skiff --no-sbom | crane | crane + fsync | oras | regctl | skopeo | skiff / crane | skiff --no-sbom / crane | skiff / (crane + fsync) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for ds in $datasets; do
    for wl in build load; do
      row="| $ds | $wl |"
      for tool in skiff skiff-nosbom crane crane+fsync oras regctl skopeo; do
        v=$(cell "$ds" "$wl" "$tool" 5)
        row="$row ${v:+$v s} |"
      done
      a=$(ratio "$ds" "$wl" skiff crane); b=$(ratio "$ds" "$wl" skiff-nosbom crane); c=$(ratio "$ds" "$wl" skiff crane+fsync)
      row="$row ${a:+**$a×**} | ${b:+**$b×**} | ${c:+$c×} |"
      echo "$row"
    done
    v=$(cell "$ds" reload skiff 5)
    [[ -n "$v" ]] && echo "| $ds | reload (nothing changed) | $v s | | | | | | | | | |"
  done
  echo
  echo "Peak RSS of skiff (MiB):"
  echo
  echo "| package | build | load |"
  echo "|---|---|---|"
  for ds in $datasets $(awk -F'\t' '$1 ~ /^scale-/ {print $1}' "$results" | sort -u); do
    b=$(cell "$ds" build skiff 6); l=$(cell "$ds" load skiff 6)
    b=${b%.*} l=${l%.*} # a median of two may end in .50
    echo "| $ds | $(( ${b:-0} / 1024 )) | $(( ${l:-0} / 1024 )) |"
  done
} > "$table"
cat "$table"
if [[ "${BENCH_WRITE:-1}" == 1 ]]; then
  awk -v t="$table" '
    /<!-- bench:begin -->/ {print; while ((getline l < t) > 0) print l; skip = 1; next}
    /<!-- bench:end -->/ {skip = 0}
    !skip {print}' bench/README.md > "$work/README.md"
  cp "$work/README.md" bench/README.md
  echo "bench/README.md updated" >&2
fi
