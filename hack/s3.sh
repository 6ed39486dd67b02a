#!/usr/bin/env bash
# s3.sh - a real S3 server (SeaweedFS) on 127.0.0.1 for the hub's S3 storage
# tests, built from the Go module proxy (no downloaded binaries).
#
#   s3.sh build   build weed (cached in $SKIFF_S3_CACHE/seaweedfs-VERSION/weed;
#                 skipped when it exists). SeaweedFS's go.mod has a replace
#                 directive, so `go install` refuses it: a wrapper module
#                 requires it and copies its replace directives (~3 min).
#   s3.sh start   build if needed, start `weed server` with its S3 gateway on
#                 free ports of 127.0.0.1, one identity with an access and a
#                 secret key (anonymous and wrongly signed requests get 403),
#                 and one empty bucket. Prints on stdout the URL the tests read
#                 from SKIFF_TEST_S3_URL:
#                   http://ACCESS_KEY:SECRET_KEY@127.0.0.1:PORT/BUCKET
#   s3.sh stop    stop the server this state dir started and remove the dir
#
# Environment (defaults in brackets):
#   SEAWEEDFS_VERSION [v0.0.0-20261109003541-7506e5f91cd6]  a module version of
#                 github.com/seaweedfs/seaweedfs
#   SKIFF_S3_CACHE [${XDG_CACHE_HOME:-$HOME/.cache}/skiff]  where weed is kept
#   SKIFF_S3_STATE [${TMPDIR:-/tmp}/skiff-s3]  config, data, log, pid
#
# Stop by hand: kill "$(cat "$SKIFF_S3_STATE/weed.pid")"
set -euo pipefail

VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
CACHE="${SKIFF_S3_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff}"
STATE="${SKIFF_S3_STATE:-${TMPDIR:-/tmp}/skiff-s3}"
BIN="$CACHE/seaweedfs-$VERSION/weed"
BUCKET=skiff-test
REGION=us-east-1

log() { printf '[s3 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# quiet CMD...: run CMD, show its output only when it fails
quiet() { local out; if ! out="$("$@" 2>&1)"; then printf '%s\n' "$out" >&2; return 1; fi; }

cmd_build() {
  [[ -x "$BIN" ]] && { log "weed $VERSION cached"; return; }
  command -v go >/dev/null || die "go not found"
  export GOWORK=off   # the wrapper module must not be pulled into a caller's go.work
  local t0=$SECONDS w gomod
  w="$(mktemp -d)"
  log "building weed $VERSION (github.com/seaweedfs/seaweedfs has replace directives: using a wrapper module)"
  gomod="$(go mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "cannot download github.com/seaweedfs/seaweedfs@$VERSION"
  {
    printf 'module local/seaweedfsbuild\n\n%s\n\nrequire github.com/seaweedfs/seaweedfs %s\n\n' "$(grep -m1 '^go ' "$gomod")" "$VERSION"
    # Its replace directives that name a module version (not a local path).
    grep -E '^replace [^ ]+( v[^ ]+)? => [^ ./][^ ]* v[^ ]+\s*$' "$gomod" || true
  } >"$w/go.mod"
  ( cd "$w"
    quiet go get "github.com/seaweedfs/seaweedfs/weed@$VERSION"
    mkdir -p "$BIN.tmp"
    go build -trimpath -ldflags "-s -w" -o "$BIN.tmp/weed" github.com/seaweedfs/seaweedfs/weed )
  mv "$BIN.tmp/weed" "$BIN"; rm -rf "$BIN.tmp" "$w"
  log "weed built in $((SECONDS - t0))s: $BIN"
}

running() { [[ -f "$STATE/weed.pid" ]] && kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_ports N: N free ports (each with its gRPC port, +10000, free too)
free_ports() {
  local n=$1 p=$((20000 + RANDOM % 20000)) got=0
  while ((got < n)); do
    if ! port_in_use "$p" && ! port_in_use $((p + 10000)); then echo "$p"; got=$((got + 1)); fi
    p=$((p + 1))
  done
}

cmd_start() {
  running && die "$STATE already has a running server; run '$0 stop' first"
  cmd_build
  command -v curl >/dev/null || die "curl not found (apt-get install curl)"
  local t0=$SECONDS ak sk master volume filer s3
  mkdir -p "$STATE/data"
  chmod 700 "$STATE"
  ak="skiff$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  sk="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
  cat >"$STATE/s3.json" <<EOF
{"identities": [{"name": "skiff-test", "credentials": [{"accessKey": "$ak", "secretKey": "$sk"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  chmod 600 "$STATE/s3.json"
  local ports; mapfile -t ports < <(free_ports 4)
  master=${ports[0]} volume=${ports[1]} filer=${ports[2]} s3=${ports[3]}
  echo "master:$master volume:$volume filer:$filer s3:$s3" >"$STATE/ports"
  # setsid: the server must outlive this shell and ignore its signals.
  # Every listener on 127.0.0.1; no telemetry, no Iceberg/Lance listeners,
  # sockets in the state dir.
  setsid "$BIN" server -dir="$STATE/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$master" -master.telemetry=false -master.volumeSizeLimitMB=64 \
    -volume.port="$volume" -volume.max=0 -volume.minFreeSpace=0 \
    -filer -filer.port="$filer" -filer.localSocket="$STATE/filer.sock" \
    -s3 -s3.port="$s3" -s3.config="$STATE/s3.json" -s3.localSocket="$STATE/s3.sock" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false \
    >"$STATE/weed.log" 2>&1 </dev/null &
  echo $! >"$STATE/weed.pid"
  local url="http://127.0.0.1:$s3" code=""
  # Up when a signed request to create the bucket succeeds.
  while ((SECONDS - t0 < 120)); do
    code="$(curl -s -o "$STATE/create-bucket.out" -w '%{http_code}' -X PUT --user "$ak:$sk" \
      --aws-sigv4 "aws:amz:$REGION:s3" "$url/$BUCKET" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && break
    running || break
    sleep 0.2
  done
  if [[ "$code" != 200 ]]; then
    tail -n 30 "$STATE/weed.log" >&2 || true
    cat "$STATE/create-bucket.out" >&2 2>/dev/null || true
    cmd_stop
    die "weed did not answer a signed CreateBucket (last HTTP status ${code:-none}); log above"
  fi
  log "weed S3 on $url, bucket $BUCKET, up in $((SECONDS - t0))s (log: $STATE/weed.log)"
  echo "http://$ak:$sk@127.0.0.1:$s3/$BUCKET"
}

cmd_stop() {
  if running; then
    local pid; pid="$(cat "$STATE/weed.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # weed puts a unix socket beside each gRPC port (PORT+10000) in /tmp,
  # whatever its flags say: remove this server's.
  local sp
  if [[ -f "$STATE/ports" ]]; then
    for sp in $(cat "$STATE/ports"); do rm -f "/tmp/seaweedfs-${sp%%:*}-grpc-$((${sp#*:} + 10000)).sock"; done
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
build) cmd_build ;;
start) cmd_start ;;
stop) cmd_stop ;;
*) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
