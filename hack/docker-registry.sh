#!/usr/bin/env bash
# docker-registry.sh runs Debian's docker-registry (distribution 2.8) on
# loopback for integration tests.
#
#   hack/docker-registry.sh start   # prints host:port
#   hack/docker-registry.sh stop
#   hack/docker-registry.sh status
#
# Use it as:
#   export SKIFF_TEST_DOCKER_REGISTRY=$(hack/docker-registry.sh start)
#   go test ./internal/oci/...
#   hack/docker-registry.sh stop
#
# State (config, storage, pid, log) lives in $SKIFF_DOCKER_REGISTRY_STATE
# (default: ${TMPDIR:-/tmp}/skiff-docker-registry). The registry listens on
# 127.0.0.1 only, with filesystem storage, deletes enabled and no auth.
set -euo pipefail

state="${SKIFF_DOCKER_REGISTRY_STATE:-${TMPDIR:-/tmp}/skiff-docker-registry}"
bin=/usr/bin/docker-registry
pidfile="$state/registry.pid"
addrfile="$state/addr"

die() {
	echo "docker-registry.sh: $*" >&2
	exit 1
}

running() {
	[[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ensure_binary() {
	[[ -x "$bin" ]] && return
	if [[ "$(id -u)" != 0 ]]; then
		die "$bin not found: run 'sudo apt-get install -y docker-registry'"
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends docker-registry >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends docker-registry >&2; } ||
		die "cannot install docker-registry: check the apt sources"
	# The package's service is not wanted: we run our own instance.
	[[ -x "$bin" ]] || die "$bin still missing after install"
}

free_port() {
	local port=15000
	while ((port < 15100)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
		port=$((port + 1))
	done
	die "no free port in 15000-15099"
}

start() {
	if running; then
		cat "$addrfile"
		return
	fi
	ensure_binary
	mkdir -p "$state/storage"
	local port addr
	port="$(free_port)"
	addr="127.0.0.1:$port"
	cat >"$state/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $addr
  secret: skiff-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
	# setsid: the registry must outlive this shell and ignore its signals.
	setsid "$bin" serve "$state/config.yml" >"$state/registry.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	echo "$addr" >"$addrfile"
	local i
	for i in $(seq 1 100); do
		if curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null; then
			echo "$addr"
			return
		fi
		running || break
		sleep 0.1
	done
	echo "docker-registry.sh: registry did not come up; log:" >&2
	cat "$state/registry.log" >&2 || true
	stop
	exit 1
}

stop() {
	if running; then
		local pid
		pid="$(cat "$pidfile")"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -rf "$state"
}

status() {
	if running; then
		cat "$addrfile"
	else
		echo "docker-registry.sh: not running" >&2
		exit 1
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
