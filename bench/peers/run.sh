#!/usr/bin/env bash
# Write → visible-on-every-node latency of etcd, Consul, Serf and patina, each
# as a local cluster on loopback: first without delay (to check the harness
# against figures measured before on this machine), then through the bench/wan
# emulator with the 17-region RTT matrix. One run, one table, one JSON file.
#
#   bench/peers/run.sh                      # everything (~20 min after the first Consul build)
#   bench/peers/run.sh -systems etcd,serf   # extra flags go to peersbench (see -help)
#
# Installs Debian's etcd-server and serf (apt), builds Consul v1.20.0 from the
# Go module proxy once (~7 min on an idle 2-core machine; cached in
# $PATINA_BENCH_CACHE, default ~/.cache/patina-bench), builds patina, the
# emulator and the harness, and runs the harness. Every process it starts is
# stopped at exit, by PID. Results: bench/peers/results.json, the table on
# stdout and in $WORK/table.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${PATINA_BENCH_CACHE:-$HOME/.cache/patina-bench}
WORK=${WORK:-$(mktemp -d /tmp/patina-peers.XXXXXX)}
CONSUL_VERSION=v1.20.0
mkdir -p "$CACHE" "$WORK/bin"
PIDS=$WORK/pids
: >"$PIDS"
HARNESS=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n "$HARNESS" ]] && kill -0 "$HARNESS" 2>/dev/null; then
		kill -TERM "$HARNESS" 2>/dev/null || true
		for _ in $(seq 1 60); do kill -0 "$HARNESS" 2>/dev/null || break; sleep 0.5; done
		kill -KILL "$HARNESS" 2>/dev/null || true
	fi
	# Whatever the harness left (it stops its own children; this is for a crash).
	local left=""
	while read -r pid _; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			left="$left $pid"
		fi
	done <"$PIDS"
	if [[ -n "$left" ]]; then
		sleep 3
		for pid in $left; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
	fi
	exit "$rc"
}
trap cleanup EXIT INT TERM

step() { echo "== $*" >&2; }

# 1. Peers from Debian.
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null || ! command -v serf >/dev/null; then
	step "apt: etcd-server etcd-client serf"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client serf >/dev/null
fi

# 2. Consul from the Go module proxy, once. Its go.mod replaces its nested
# modules with directories a module zip does not have: drop the replaces, and
# pin troubleshoot to v0.7.1 (the proxy refuses v0.7.2). troubleshoot is only
# used by `consul troubleshoot`, not by the agent.
if ! [[ -x "$CACHE/consul" ]] || ! "$CACHE/consul" version | grep -q "Consul $CONSUL_VERSION"; then
	step "building consul $CONSUL_VERSION into $CACHE/consul (several minutes)"
	GOFLAGS=-mod=mod go mod download "github.com/hashicorp/consul@$CONSUL_VERSION"
	rm -rf "$CACHE/consul-src"
	cp -r "$(go env GOMODCACHE)/github.com/hashicorp/consul@$CONSUL_VERSION" "$CACHE/consul-src"
	chmod -R u+w "$CACHE/consul-src"
	(
		cd "$CACHE/consul-src"
		for m in api envoyextensions proto-public sdk troubleshoot; do
			go mod edit -dropreplace="github.com/hashicorp/consul/$m"
		done
		go mod edit -require=github.com/hashicorp/consul/troubleshoot@v0.7.1
		GOFLAGS=-mod=mod go build -o "$CACHE/consul.tmp" .
	)
	mv "$CACHE/consul.tmp" "$CACHE/consul"
fi

# 3. patina, the emulator, the patina launcher with --advertise-addr, the harness.
step "building patina, wan, patinaagent, peersbench"
(cd "$ROOT" && go build -o "$WORK/bin/patina" ./cmd/patina && go build -o "$WORK/bin/wan" ./bench/wan/cmd/wan)
(cd "$ROOT/bench/peers/patinaagent" && go build -o "$WORK/bin/patinaagent" .)
(cd "$ROOT/bench/peers" && go build -o "$WORK/bin/peersbench" ./cmd/peersbench)

# 4. Run. The harness (and its observers' clocks) run at nice -10; it starts
# the systems at nice 0 under their own uids and the emulator at real-time
# priority.
step "running (work dir $WORK; load average $(cut -d' ' -f1-3 /proc/loadavg))"
cd "$ROOT/bench/peers"
nice -n -10 "$WORK/bin/peersbench" -work "$WORK" -pidfile "$PIDS" \
	-etcd "$(command -v etcd)" -serf "$(command -v serf)" -consul "$CACHE/consul" \
	-patina "$WORK/bin/patina" -patinaagent "$WORK/bin/patinaagent" -wan "$WORK/bin/wan" \
	-rtt "$ROOT/netsim/rtt_ms.csv" -out "$ROOT/bench/peers/results.json" -md "$WORK/table.md" "$@" &
HARNESS=$!
wait "$HARNESS"
HARNESS=""
echo "results: $ROOT/bench/peers/results.json, table: $WORK/table.md, logs: $WORK" >&2
