#!/usr/bin/env bash
# demo.sh: a local 4-node shoal cluster, one node per network namespace, the
# way the integration tests build it, for trying shoal by hand.
#
#   scripts/demo.sh        tear down any previous demo, then start node-01..node-04:
#                          node-01 inits the swarm, the others join it as workers
#   scripts/demo.sh down   stop the daemons, delete the namespaces and /tmp/shoal-demo
#
# Topology: a bridge in its own namespace shdemo-lan (nothing in the root
# namespace), and hosts shdemo-node-0N with eth0 = 10.77.0.1N/24 on it. Each
# daemon keeps its data in /tmp/shoal-demo/node-0N and listens on
# /tmp/shoal-demo/node-0N.sock; its log is /tmp/shoal-demo/node-0N.log.
#
# Environment: SHOAL_BIN (default bin/shoal, from `make build`) and
# SHOAL_DEMO_DAEMON_ARGS (more arguments for every `shoal daemon`).
# Needs root, ip (iproute2) and nsenter (util-linux).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHOAL_BIN=${SHOAL_BIN:-$ROOT/bin/shoal}
DEMO_DIR=/tmp/shoal-demo
NS_PREFIX=shdemo- # not the tests' prefix, so their sweeper leaves the demo alone
LAN_NS=${NS_PREFIX}lan
NODES=(node-01 node-02 node-03 node-04)
SUBNET_PREFIX=10.77.0. # node-0N gets 10.77.0.1N
READY_TIMEOUT=30       # seconds for a daemon to answer on its socket
JOIN_TIMEOUT=30        # seconds for all nodes to show up Ready
EXTRA_ARGS=()
read -r -a EXTRA_ARGS <<<"${SHOAL_DEMO_DAEMON_ARGS:-}"

log() { printf 'demo: %s\n' "$*" >&2; }
SETTING_UP=
die() {
	log "$*"
	[[ -z $SETTING_UP ]] || log "what was set up stays for a look; scripts/demo.sh down removes it"
	exit 1
}

node_ns() { echo "${NS_PREFIX}$1"; }
node_ip() { echo "${SUBNET_PREFIX}$((10 + 10#${1#node-}))"; }
node_sock() { echo "unix://$DEMO_DIR/$1.sock"; }

# shoal_on NODE ARGS...: run the CLI against NODE's daemon.
shoal_on() {
	local node=$1
	shift
	"$SHOAL_BIN" -H "$(node_sock "$node")" "$@"
}

ns_exists() { [[ -e /var/run/netns/$1 ]]; }

# demo_pid NODE: the daemon's PID from its pid file, if that process is still
# this demo's daemon (a PID can be reused after a reboot or a crash).
demo_pid() {
	local pidfile=$DEMO_DIR/$1.pid pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "--data-dir $DEMO_DIR/$1 " || return 1
	echo "$pid"
}

# wait_gone SECONDS PID...: wait until none of the processes runs.
wait_gone() {
	local deadline=$((SECONDS + $1)) pid
	shift
	for pid in "$@"; do
		while kill -0 "$pid" 2>/dev/null; do
			((SECONDS < deadline)) || return 1
			sleep 0.1
		done
	done
}

down() {
	local node ns pid pids
	for node in "${NODES[@]}"; do
		ns=$(node_ns "$node")
		if pid=$(demo_pid "$node"); then
			# Leaving the swarm stops the node's tasks, so that no container
			# outlives the demo; a broken daemon must not hold the teardown up.
			timeout 10 "$SHOAL_BIN" -H "$(node_sock "$node")" swarm leave --force >/dev/null 2>&1 ||
				log "$node did not leave the swarm cleanly; stopping it anyway"
			log "stopping $node (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			if ! wait_gone 15 "$pid"; then
				log "$node still runs 15s after SIGTERM; sending SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		if ns_exists "$ns"; then
			# Whatever else still runs on the demo host was started there by hand.
			mapfile -t pids < <(ip netns pids "$ns")
			if ((${#pids[@]} > 0)); then
				log "killing what still runs in $ns: ${pids[*]}"
				kill -KILL "${pids[@]}" 2>/dev/null || true
				wait_gone 10 "${pids[@]}" || log "processes ${pids[*]} outlived SIGKILL"
			fi
			ip netns del "$ns"
		fi
	done
	if ns_exists "$LAN_NS"; then
		ip netns del "$LAN_NS"
	fi
	rm -rf "$DEMO_DIR"
}

make_lan() {
	log "LAN: bridge br0 in netns $LAN_NS, subnet ${SUBNET_PREFIX}0/24"
	ip netns add "$LAN_NS"
	ip -n "$LAN_NS" link set lo up
	ip -n "$LAN_NS" link add br0 type bridge stp_state 0
	ip -n "$LAN_NS" link set br0 up
}

# make_host NODE: a netns with lo and eth0, plugged into the bridge.
make_host() {
	local node=$1 ns ip port
	ns=$(node_ns "$node")
	ip=$(node_ip "$node")
	port=p${node#node-}
	log "host $node: $ip in netns $ns"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$LAN_NS" link add "$port" type veth peer name eth0 netns "$ns"
	ip -n "$LAN_NS" link set "$port" master br0 up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# start_daemon NODE: run `shoal daemon` on the node's host, in the background,
# in a session of its own so that it outlives this script and its terminal.
start_daemon() {
	local node=$1
	setsid nsenter --net="/var/run/netns/$(node_ns "$node")" -- \
		"$SHOAL_BIN" daemon --data-dir "$DEMO_DIR/$node" -H "$(node_sock "$node")" \
		--hostname "$node" "${EXTRA_ARGS[@]}" \
		>"$DEMO_DIR/$node.log" 2>&1 </dev/null &
	echo $! >"$DEMO_DIR/$node.pid"
}

wait_ready() {
	local node=$1 deadline=$((SECONDS + READY_TIMEOUT)) pid
	pid=$(<"$DEMO_DIR/$node.pid")
	until shoal_on "$node" version >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$DEMO_DIR/$node.log" >&2 || true
			die "the daemon of $node exited; its log is above and in $DEMO_DIR/$node.log"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "$DEMO_DIR/$node.log" >&2 || true
			die "$node did not answer on $(node_sock "$node") within ${READY_TIMEOUT}s; its log is above"
		fi
		sleep 0.2
	done
	log "$node is up (pid $pid)"
}

wait_all_ready() {
	local deadline=$((SECONDS + JOIN_TIMEOUT)) ready
	while :; do
		ready=$(shoal_on node-01 node ls 2>/dev/null | grep -c ' Ready ' || true)
		((ready >= ${#NODES[@]})) && return 0
		if ((SECONDS >= deadline)); then
			log "only $ready of ${#NODES[@]} nodes are Ready after ${JOIN_TIMEOUT}s; see $DEMO_DIR/node-0N.log"
			return 0
		fi
		sleep 0.5
	done
}

up() {
	[[ -x $SHOAL_BIN ]] || die "no shoal binary at $SHOAL_BIN: run make build (or set SHOAL_BIN)"
	local node manager=${NODES[0]} manager_ip token
	manager_ip=$(node_ip "$manager")

	down
	mkdir -p "$DEMO_DIR"
	SETTING_UP=1
	trap 'log "setting up failed; what was set up stays for a look; scripts/demo.sh down removes it"' ERR

	make_lan
	for node in "${NODES[@]}"; do
		make_host "$node"
		start_daemon "$node"
	done
	for node in "${NODES[@]}"; do
		wait_ready "$node"
	done

	shoal_on "$manager" swarm init --advertise-addr "$manager_ip"
	token=$(shoal_on "$manager" swarm join-token -q worker)
	for node in "${NODES[@]:1}"; do
		log "$node joins as a worker"
		shoal_on "$node" swarm join --token "$token" "$manager_ip:2377"
	done
	wait_all_ready
	trap - ERR
	SETTING_UP=

	echo
	shoal_on "$manager" node ls
	cat <<EOM

The demo cluster runs: $manager ($manager_ip) is the manager, the others are workers.

Point the CLI at a node (node and service commands need the manager, $manager):
  export SHOAL_HOST=$(node_sock node-02)
  $SHOAL_BIN info
or name the node each time:
  $SHOAL_BIN -H $(node_sock "$manager") node ls

Run something on a node's host:  nsenter --net=/var/run/netns/$(node_ns node-02) -- ip addr
Daemon logs:                     $DEMO_DIR/node-0N.log
Tear down:                       scripts/demo.sh down
EOM
}

main() {
	((EUID == 0)) || die "needs root (network namespaces): sudo $0 ${*:-}"
	command -v ip >/dev/null || die "needs ip (Debian package iproute2): make deps"
	command -v nsenter >/dev/null || die "needs nsenter (Debian package util-linux): make deps"
	case ${1:-up} in
	up) up ;;
	down)
		down
		log "demo torn down"
		;;
	*) die "usage: $0 [up|down]" ;;
	esac
}

main "$@"
