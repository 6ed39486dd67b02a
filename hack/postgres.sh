#!/usr/bin/env bash
# postgres.sh start|stop: a throwaway PostgreSQL server on 127.0.0.1 for
# the hub's tests. State lives in $SKIFF_POSTGRES_STATE (default
# ${TMPDIR:-/tmp}/skiff-postgres). `start` prints a connection URL
# (postgres://skiff@127.0.0.1:PORT/skiff?sslmode=disable) on stdout, or
# fails when no PostgreSQL server binaries are installed (Debian package
# postgresql). As root, the server runs as the postgres user.
set -euo pipefail
state="${SKIFF_POSTGRES_STATE:-${TMPDIR:-/tmp}/skiff-postgres}"
log() { printf '[postgres %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bin=""
for d in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent)")" /usr/lib/postgresql/*/bin; do
  if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then bin="$d"; fi
done
[[ -n "$bin" ]] || { log "no PostgreSQL server found: apt-get install postgresql"; exit 1; }

as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  mkdir -p "$state"
  [[ "$(id -u)" == 0 ]] && chown postgres "$state"
  if [[ ! -f "$state/data/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$state/data" -U skiff --auth=trust --no-sync >"$state/initdb.log" 2>&1 ||
      { cat "$state/initdb.log" >&2; exit 1; }
  fi
  port=""
  for p in $(seq 25432 25452); do
    if as_owner "$bin/pg_ctl" -D "$state/data" -l "$state/server.log" -w -t 30 \
      -o "-h 127.0.0.1 -p $p -k $state -F" start >/dev/null 2>&1; then
      port=$p
      break
    fi
  done
  [[ -n "$port" ]] || { cat "$state/server.log" >&2; log "could not start PostgreSQL"; exit 1; }
  echo "$port" >"$state/port"
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U skiff skiff 2>/dev/null || true
  echo "postgres://skiff@127.0.0.1:$port/skiff?sslmode=disable"
  ;;
stop)
  if [[ -f "$state/data/postmaster.pid" ]]; then
    as_owner "$bin/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
