#!/usr/bin/env bash
# demo.sh: a local 4-node shoal cluster, one node per network namespace, the
# way the integration tests build it, running nginx with 8 replicas on real
# containers, for trying shoal by hand.
#
#   scripts/demo.sh        tear down any previous demo, then: start containerd
#                          and a registry holding an nginx image built from this
#                          machine's nginx, start node-01..node-04 (node-01
#                          inits the swarm, the others join it as workers),
#                          create the service nginx with 8 replicas and show
#                          where its tasks run
#   scripts/demo.sh down   remove all of it: the service, the daemons, their
#                          containers, containerd, the registry, the
#                          namespaces and /tmp/shoal-demo
#
# Topology: a bridge in its own namespace shdemo-lan (nothing in the root
# namespace), and hosts on it, each a namespace with eth0 on 10.77.0.0/24:
# shdemo-registry (10.77.0.10, the registry on port 5000, plain HTTP) and
# shdemo-node-0N (10.77.0.1N). Each daemon keeps its data in
# /tmp/shoal-demo/node-0N, listens on /tmp/shoal-demo/node-0N.sock and logs to
# /tmp/shoal-demo/node-0N.log. All nodes share one containerd, each in a
# containerd namespace of its own (node-0N): the containerd already running
# at /run/containerd/containerd.sock if it answers, or else the demo's own,
# which keeps everything under /tmp/shoal-demo/containerd.
#
# Environment:
#   SHOAL_BIN               the shoal binary (default bin/shoal, from `make build`)
#   IMAGECTL_BIN            the image helper (default bin/imagectl; built with go
#                           when missing) that builds and pushes the nginx image
#                           and does HTTP GETs inside the demo's hosts
#   SHOAL_DEMO_CONTAINERD   the socket of a containerd to use if it answers
#                           (default /run/containerd/containerd.sock), or
#                           "private" to always start the demo's own
#   SHOAL_DEMO_DAEMON_ARGS  more arguments for every `shoal daemon`
# Needs root, ip (iproute2), nsenter (util-linux), containerd and ctr
# (containerd), runc, docker-registry and nginx (nginx-light): `make deps`.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHOAL_BIN=${SHOAL_BIN:-$ROOT/bin/shoal}
IMAGECTL=${IMAGECTL_BIN:-$ROOT/bin/imagectl}
IMAGECTL_PKG=./integration/imagetest/internal/imagectl
DEMO_DIR=/tmp/shoal-demo
NS_PREFIX=shdemo- # not the tests' prefix, so their sweeper leaves the demo alone
LAN_NS=${NS_PREFIX}lan
NODES=(node-01 node-02 node-03 node-04)
MANAGER=${NODES[0]} # inits the swarm; the others join it as workers
SUBNET_PREFIX=10.77.0. # node-0N gets 10.77.0.1N
READY_TIMEOUT=30       # seconds for a daemon, containerd or the registry to answer
JOIN_TIMEOUT=30        # seconds for all nodes to show up Ready
CONVERGE_TIMEOUT=120   # seconds for the service to run all its replicas
DRAIN_TIMEOUT=30       # seconds for the nodes to remove their containers at `down`
EXTRA_ARGS=()
read -r -a EXTRA_ARGS <<<"${SHOAL_DEMO_DAEMON_ARGS:-}"

# The registry host and what it serves.
REGISTRY_HOST=registry
REGISTRY_IP=${SUBNET_PREFIX}10
REGISTRY=$REGISTRY_IP:5000
REGISTRY_DIR=$DEMO_DIR/registry
SERVICE=nginx
REPLICAS=8
IMAGE=$REGISTRY/nginx:latest

# containerd: the one to reuse if it answers, and the demo's own.
REUSE_CONTAINERD=${SHOAL_DEMO_CONTAINERD:-/run/containerd/containerd.sock}
CONTAINERD_DIR=$DEMO_DIR/containerd
PRIVATE_SOCK=$CONTAINERD_DIR/containerd.sock
# The socket of the containerd the demo uses; `up` writes it to this file
# for `down`.
CONTAINERD_SOCK=
CONTAINERD_FILE=$DEMO_DIR/containerd.address

log() { printf 'demo: %s\n' "$*" >&2; }
SETTING_UP=
die() {
	log "$*"
	[[ -z $SETTING_UP ]] || log "what was set up stays for a look; scripts/demo.sh down removes it"
	exit 1
}

host_ns() { echo "${NS_PREFIX}$1"; }
node_ip() { echo "${SUBNET_PREFIX}$((10 + 10#${1#node-}))"; }
node_sock() { echo "unix://$DEMO_DIR/$1.sock"; }

# shoal_on NODE ARGS...: run the CLI against NODE's daemon.
shoal_on() {
	local node=$1
	shift
	"$SHOAL_BIN" -H "$(node_sock "$node")" "$@"
}

# on_host HOST COMMAND...: run a command in the network namespace of a demo
# host, where the LAN (and on a node, its tasks' bridge) is.
on_host() {
	local host=$1
	shift
	nsenter --net="/var/run/netns/$(host_ns "$host")" -- "$@"
}

# ctr_ns NS ARGS...: ctr on the demo's containerd, in containerd namespace NS.
ctr_ns() {
	local ns=$1
	shift
	ctr --address "$CONTAINERD_SOCK" --namespace "$ns" --timeout 30s "$@"
}

ns_exists() { [[ -e /var/run/netns/$1 ]]; }

# ---------------------------------------------------------------------------
# Processes

# demo_pid NAME PATTERN: the PID in $DEMO_DIR/NAME.pid, if that process is
# still the demo's (its command line contains PATTERN; a PID can be reused
# after a reboot or a crash).
demo_pid() {
	local pidfile=$DEMO_DIR/$1.pid pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
	echo "$pid"
}

daemon_pid() { demo_pid "$1" "--data-dir $DEMO_DIR/$1 "; }
containerd_pid() { demo_pid containerd "--config $CONTAINERD_DIR/config.toml"; }
registry_pid() { demo_pid registry "serve $REGISTRY_DIR/config.yml"; }

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

# stop_pid WHAT PID: SIGTERM, then SIGKILL if it still runs after 15s.
stop_pid() {
	local what=$1 pid=$2
	log "stopping $what (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone 15 "$pid"; then
		log "$what still runs 15s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone 5 "$pid" || log "$what (pid $pid) outlived SIGKILL"
	fi
}

# start_bg NAME HOST COMMAND...: run a command in the background on a demo
# host (HOST "" for the root namespace), in a session of its own so that it
# outlives this script and its terminal; its output goes to
# $DEMO_DIR/NAME.log, its PID to $DEMO_DIR/NAME.pid.
start_bg() {
	local name=$1 host=$2
	shift 2
	if [[ -n $host ]]; then
		set -- nsenter --net="/var/run/netns/$(host_ns "$host")" -- "$@"
	fi
	setsid "$@" >"$DEMO_DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$DEMO_DIR/$name.pid"
}

# wait_for NAME SECONDS CHECK...: poll CHECK until it succeeds; fail, with
# the tail of NAME's log, if the process in NAME.pid exits or time runs out.
wait_for() {
	local name=$1 timeout=$2 deadline pid
	shift 2
	deadline=$((SECONDS + timeout))
	pid=$(<"$DEMO_DIR/$name.pid")
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$DEMO_DIR/$name.log" >&2 || true
			die "$name exited; its log is above and in $DEMO_DIR/$name.log"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "$DEMO_DIR/$name.log" >&2 || true
			die "$name did not answer within ${timeout}s; its log is above"
		fi
		sleep 0.2
	done
	log "$name is up (pid $pid)"
}

# ---------------------------------------------------------------------------
# Network: the LAN and its hosts

make_lan() {
	log "LAN: bridge br0 in netns $LAN_NS, subnet ${SUBNET_PREFIX}0/24"
	ip netns add "$LAN_NS"
	ip -n "$LAN_NS" link set lo up
	ip -n "$LAN_NS" link add br0 type bridge stp_state 0
	ip -n "$LAN_NS" link set br0 up
}

# make_host HOST IP: a netns with lo and eth0 = IP/24, plugged into the
# bridge.
make_host() {
	local host=$1 ip=$2 ns port
	ns=$(host_ns "$host")
	port=v-$host # the bridge's end of the veth, in the LAN's netns
	log "host $host: $ip in netns $ns"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$LAN_NS" link add "$port" type veth peer name eth0 netns "$ns"
	ip -n "$LAN_NS" link set "$port" master br0 up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# delete_host HOST: kill whatever still runs on the host (it was started
# there by hand), then delete its netns.
delete_host() {
	local ns pids
	ns=$(host_ns "$1")
	ns_exists "$ns" || return 0
	mapfile -t pids < <(ip netns pids "$ns")
	if ((${#pids[@]} > 0)); then
		log "killing what still runs in $ns: ${pids[*]}"
		kill -KILL "${pids[@]}" 2>/dev/null || true
		wait_gone 10 "${pids[@]}" || log "processes ${pids[*]} outlived SIGKILL"
	fi
	ip netns del "$ns"
}

# ---------------------------------------------------------------------------
# containerd

containerd_answers() {
	[[ -S $1 ]] && ctr --address "$1" --connect-timeout 2s --timeout 5s version >/dev/null 2>&1
}

# use_containerd: the containerd already running at $REUSE_CONTAINERD if it
# answers, else the demo's own; sets CONTAINERD_SOCK and records it.
use_containerd() {
	if [[ $REUSE_CONTAINERD != private ]] && containerd_answers "$REUSE_CONTAINERD"; then
		CONTAINERD_SOCK=$REUSE_CONTAINERD
		log "containerd: using the one that answers at $CONTAINERD_SOCK"
	else
		start_containerd
		CONTAINERD_SOCK=$PRIVATE_SOCK
	fi
	echo "$CONTAINERD_SOCK" >"$CONTAINERD_FILE"
}

# start_containerd: the demo's own containerd, with its root, state, socket
# and log under $CONTAINERD_DIR, and only the plugins shoal needs (no CRI).
start_containerd() {
	mkdir -p "$CONTAINERD_DIR"
	cat >"$CONTAINERD_DIR/config.toml" <<EOF
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$PRIVATE_SOCK"

[ttrpc]
  address = "$PRIVATE_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"
EOF
	log "containerd: starting the demo's own at $PRIVATE_SOCK"
	start_bg containerd "" containerd --config "$CONTAINERD_DIR/config.toml"
	wait_for containerd "$READY_TIMEOUT" containerd_answers "$PRIVATE_SOCK"
}

# clean_namespace NS: delete everything the demo left in a containerd
# namespace: tasks (killed), containers with their snapshots, images,
# leases, content, other snapshots, then the namespace and its cgroup.
clean_namespace() {
	local ns=$1 ids id
	# (grep -q could quit before ctr has written all, and fail the pipe.)
	ctr --address "$CONTAINERD_SOCK" namespaces ls -q 2>/dev/null | grep -x -- "$ns" >/dev/null || return 0
	mapfile -t ids < <(ctr_ns "$ns" tasks ls -q)
	for id in "${ids[@]}"; do
		ctr_ns "$ns" tasks rm --force "$id" >/dev/null 2>&1 || log "containerd namespace $ns: could not delete task $id"
	done
	mapfile -t ids < <(ctr_ns "$ns" containers ls -q)
	((${#ids[@]} == 0)) || ctr_ns "$ns" containers rm "${ids[@]}" || true
	mapfile -t ids < <(ctr_ns "$ns" leases ls -q)
	((${#ids[@]} == 0)) || ctr_ns "$ns" leases rm "${ids[@]}" >/dev/null || true
	mapfile -t ids < <(ctr_ns "$ns" images ls -q)
	((${#ids[@]} == 0)) || ctr_ns "$ns" images rm --sync "${ids[@]}" >/dev/null || true
	mapfile -t ids < <(ctr_ns "$ns" content ls -q)
	((${#ids[@]} == 0)) || ctr_ns "$ns" content rm "${ids[@]}" >/dev/null || true
	# A snapshot goes only after its children: a few rounds, leaves first.
	for _ in 1 2 3 4 5; do
		mapfile -t ids < <(ctr_ns "$ns" snapshots ls | awk 'NR > 1 { print $1 }')
		((${#ids[@]} > 0)) || break
		ctr_ns "$ns" snapshots rm "${ids[@]}" >/dev/null 2>&1 || true
	done
	ctr --address "$CONTAINERD_SOCK" --timeout 30s namespaces rm --cgroup "$ns" >/dev/null ||
		log "containerd namespace $ns is not empty; see: ctr --address $CONTAINERD_SOCK -n $ns containers ls"
}

# node_containers: how many containers the nodes whose daemons run still
# have (a dead daemon removes nothing).
node_containers() {
	local node n=0 ids
	for node in "${NODES[@]}"; do
		daemon_pid "$node" >/dev/null || continue
		mapfile -t ids < <(ctr_ns "$node" containers ls -q 2>/dev/null)
		n=$((n + ${#ids[@]}))
	done
	echo "$n"
}

# stop_containerd: clean the demo's namespaces in the demo's containerd, and
# stop that containerd if it is the demo's own. A demo containerd that died
# is started again first, for it to clean up the containers it left.
stop_containerd() {
	local node pid shim shims
	[[ -f $CONTAINERD_FILE ]] && CONTAINERD_SOCK=$(<"$CONTAINERD_FILE")
	if [[ -z $CONTAINERD_SOCK && -f $CONTAINERD_DIR/config.toml ]]; then
		CONTAINERD_SOCK=$PRIVATE_SOCK # set up, but not recorded yet
	fi
	[[ -n $CONTAINERD_SOCK ]] || return 0
	if [[ $CONTAINERD_SOCK == "$PRIVATE_SOCK" ]] && ! containerd_answers "$PRIVATE_SOCK" &&
		[[ -f $CONTAINERD_DIR/config.toml ]]; then
		log "containerd: the demo's own does not answer; starting it again to clean up"
		(start_bg containerd "" containerd --config "$CONTAINERD_DIR/config.toml" &&
			wait_for containerd "$READY_TIMEOUT" containerd_answers "$PRIVATE_SOCK") ||
			log "containerd: it did not start; its containers may outlive the demo"
	fi
	if containerd_answers "$CONTAINERD_SOCK"; then
		for node in "${NODES[@]}"; do
			clean_namespace "$node"
		done
	fi
	if pid=$(containerd_pid); then
		stop_pid containerd "$pid"
	fi
	# The shims of the demo containerd's containers, had any survived.
	mapfile -t shims < <(grep -lzxF -- "$PRIVATE_SOCK" /proc/[0-9]*/cmdline 2>/dev/null)
	for shim in "${shims[@]}"; do
		pid=${shim#/proc/}
		pid=${pid%/cmdline}
		if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */containerd-shim* ]]; then
			log "killing containerd shim $pid"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for node in "${NODES[@]}"; do
		rmdir "/run/containerd/runc/$node" 2>/dev/null || true # runc's state, once empty
		remove_cgroups "$node"
	done
}

# remove_cgroups NS: the cgroups of a containerd namespace (/NS in each
# hierarchy), once empty. ctr's namespaces rm --cgroup removes them, but
# not from the unified hierarchy of a hybrid cgroup v1 machine.
remove_cgroups() {
	local cg
	for cg in "/sys/fs/cgroup/$1" /sys/fs/cgroup/*/"$1"; do
		if [[ -d $cg ]]; then
			rmdir "$cg" 2>/dev/null || log "cgroup $cg is not empty; it stays"
		fi
	done
}

# ---------------------------------------------------------------------------
# The registry and the nginx image

# imagectl: build the image helper when it is missing.
ensure_imagectl() {
	[[ -x $IMAGECTL ]] && return 0
	command -v go >/dev/null || die "no image helper at $IMAGECTL and no go to build it: run make demo (or set IMAGECTL_BIN)"
	log "building $IMAGECTL"
	(cd "$ROOT" && go build -o "$IMAGECTL" "$IMAGECTL_PKG")
}

registry_answers() { on_host "$REGISTRY_HOST" "$IMAGECTL" get -timeout 1s "http://$REGISTRY/v2/"; }

# start_registry: Debian's docker-registry on the registry host, plain HTTP
# on $REGISTRY, its storage under $REGISTRY_DIR.
start_registry() {
	mkdir -p "$REGISTRY_DIR"
	cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY
  secret: shoal-demo
EOF
	log "registry: starting docker-registry at $REGISTRY on host $REGISTRY_HOST"
	start_bg registry "$REGISTRY_HOST" docker-registry serve "$REGISTRY_DIR/config.yml"
	wait_for registry "$READY_TIMEOUT" registry_answers
}

# push_nginx: build the nginx image from this machine's nginx and the
# libraries it links, and push it from the registry host (the registry is
# on the LAN only).
push_nginx() {
	local layout=$DEMO_DIR/images/nginx digest
	log "building the nginx image from this machine's /usr/sbin/nginx"
	"$IMAGECTL" build nginx "$layout" >/dev/null
	digest=$(on_host "$REGISTRY_HOST" "$IMAGECTL" push -timeout 2m "$layout" "$IMAGE")
	log "pushed $IMAGE ($digest)"
}

# ---------------------------------------------------------------------------
# Nodes, swarm and service

# start_daemon NODE: `shoal daemon` on the node's host, with its own
# containerd namespace, pulling from the demo registry over plain HTTP.
start_daemon() {
	local node=$1
	start_bg "$node" "$node" "$SHOAL_BIN" daemon --data-dir "$DEMO_DIR/$node" -H "$(node_sock "$node")" \
		--hostname "$node" --containerd-socket "$CONTAINERD_SOCK" --containerd-namespace "$node" \
		--insecure-registry "$REGISTRY" "${EXTRA_ARGS[@]}"
}

wait_all_ready() {
	local deadline=$((SECONDS + JOIN_TIMEOUT)) ready
	while :; do
		ready=$(shoal_on "$MANAGER" node ls 2>/dev/null | grep -c ' Ready ' || true)
		((ready >= ${#NODES[@]})) && return 0
		if ((SECONDS >= deadline)); then
			log "only $ready of ${#NODES[@]} nodes are Ready after ${JOIN_TIMEOUT}s; see $DEMO_DIR/node-0N.log"
			return 0
		fi
		sleep 0.5
	done
}

# a_task [NODE...]: "NODE TASK-ID ADDRESS" of one running task of the
# service, on the first of the nodes that has one, from the labels that
# shoal's executor puts on its containers.
a_task() {
	local node id info addr
	for node in "$@"; do
		for id in $(ctr_ns "$node" tasks ls 2>/dev/null | awk '$3 == "RUNNING" { print $1 }'); do
			info=$(ctr_ns "$node" containers info "$id" 2>/dev/null) || continue
			addr=$(grep -oE '"shoal\.address": *"[0-9.]+"' <<<"$info" | grep -oE '[0-9.]{7,}') || continue
			echo "$node $id $addr"
			return 0
		done
	done
	return 1
}

# stop_node NODE: leave the swarm and stop the daemon.
stop_node() {
	local node=$1 pid
	pid=$(daemon_pid "$node") || return 0
	# Leaving the swarm stops the node's tasks, so that no container outlives
	# the demo; a broken daemon must not hold the teardown up.
	timeout 10 "$SHOAL_BIN" -H "$(node_sock "$node")" swarm leave --force >/dev/null 2>&1 ||
		log "$node did not leave the swarm cleanly; stopping it anyway"
	stop_pid "$node" "$pid"
}

# stop_nodes: remove the service, wait for the nodes to remove its
# containers, then stop all nodes at once.
stop_nodes() {
	local node deadline bg=()
	if daemon_pid "$MANAGER" >/dev/null &&
		timeout 10 "$SHOAL_BIN" -H "$(node_sock "$MANAGER")" service rm "$SERVICE" >/dev/null 2>&1; then
		log "removed the service $SERVICE; waiting for its containers to go"
		[[ -f $CONTAINERD_FILE ]] && CONTAINERD_SOCK=$(<"$CONTAINERD_FILE")
		deadline=$((SECONDS + DRAIN_TIMEOUT))
		while [[ -n $CONTAINERD_SOCK ]] && (($(node_containers) > 0)); do
			if ((SECONDS >= deadline)); then
				log "containers still run ${DRAIN_TIMEOUT}s after service rm; they go with the namespaces"
				break
			fi
			sleep 0.2
		done
	fi
	for node in "${NODES[@]}"; do
		stop_node "$node" &
		bg+=($!)
	done
	wait "${bg[@]}" || true
}

stop_registry() {
	local pid
	if pid=$(registry_pid); then
		stop_pid registry "$pid"
	fi
}

# ---------------------------------------------------------------------------
# down and up

# unmount_all: detach what is still mounted below $DEMO_DIR, deepest first:
# the task network namespaces a killed daemon left pinned in its data dir,
# containerd's snapshots.
unmount_all() {
	local mp mps
	mapfile -t mps < <(awk -v dir="$DEMO_DIR/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	for mp in "${mps[@]}"; do
		umount --lazy "$mp" || log "could not unmount $mp"
	done
}

down() {
	local node registry
	stop_nodes
	# The registry serves nothing that is needed from here on.
	stop_registry &
	registry=$!
	stop_containerd
	wait "$registry" || true
	for node in "${NODES[@]}" "$REGISTRY_HOST"; do
		delete_host "$node"
	done
	if ns_exists "$LAN_NS"; then
		ip netns del "$LAN_NS"
	fi
	unmount_all
	rm -rf "$DEMO_DIR"
}

up() {
	[[ -x $SHOAL_BIN ]] || die "no shoal binary at $SHOAL_BIN: run make build (or set SHOAL_BIN)"
	local tool node manager=$MANAGER manager_ip token task id addr
	for tool in containerd ctr runc docker-registry; do
		command -v "$tool" >/dev/null || die "needs $tool: make deps"
	done
	manager_ip=$(node_ip "$manager")

	down
	mkdir -p "$DEMO_DIR"
	SETTING_UP=1
	trap 'log "setting up failed; what was set up stays for a look; scripts/demo.sh down removes it"' ERR

	ensure_imagectl
	use_containerd
	make_lan
	make_host "$REGISTRY_HOST" "$REGISTRY_IP"
	start_registry
	push_nginx

	for node in "${NODES[@]}"; do
		make_host "$node" "$(node_ip "$node")"
		start_daemon "$node"
	done
	for node in "${NODES[@]}"; do
		wait_for "$node" "$READY_TIMEOUT" shoal_on "$node" version
	done

	shoal_on "$manager" swarm init --advertise-addr "$manager_ip"
	token=$(shoal_on "$manager" swarm join-token -q worker)
	for node in "${NODES[@]:1}"; do
		log "$node joins as a worker"
		shoal_on "$node" swarm join --token "$token" "$manager_ip:2377"
	done
	wait_all_ready

	echo
	echo "\$ shoal service create --name $SERVICE --replicas $REPLICAS $IMAGE"
	shoal_on "$manager" service create --name "$SERVICE" --replicas "$REPLICAS" \
		--timeout "${CONVERGE_TIMEOUT}s" "$IMAGE" ||
		die "the service did not converge; see shoal -H $(node_sock "$manager") service ps $SERVICE and $DEMO_DIR/node-0N.log"
	trap - ERR
	SETTING_UP=

	echo
	echo "\$ shoal node ls"
	shoal_on "$manager" node ls
	echo
	echo "\$ shoal service ps $SERVICE"
	shoal_on "$manager" service ps "$SERVICE"

	# One task, asked for its page from its node (a task's address is on its
	# node's bridge, reachable from that node's host only).
	echo
	if task=$(a_task "${NODES[@]:1}" "$manager"); then
		read -r node id addr <<<"$task"
		echo "GET a task from its node: ${id:0:12} runs on $node at $addr"
		echo "\$ nsenter --net=/var/run/netns/$(host_ns "$node") -- $IMAGECTL get http://$addr/"
		on_host "$node" "$IMAGECTL" get -timeout 5s "http://$addr/" ||
			log "no answer from $addr; the task's log: $DEMO_DIR/$node/executor/logs/$id.log"
	else
		log "found no running task to GET"
	fi

	cat <<EOM

The demo cluster runs: $manager ($manager_ip) is the manager, the others are
workers. The service $SERVICE runs $REPLICAS replicas of $IMAGE,
pulled from the registry on host $REGISTRY_HOST ($REGISTRY_IP).

Point the CLI at a node (node and service commands need the manager, $manager):
  export SHOAL_HOST=$(node_sock "$manager")
  $SHOAL_BIN service scale $SERVICE=3
or name the node each time:
  $SHOAL_BIN -H $(node_sock node-02) info

Run something on a node's host:  nsenter --net=/var/run/netns/$(host_ns node-02) -- ip addr
  (curl, if installed, works there too, as does bash's /dev/tcp)
A node's containers:             ctr --address $CONTAINERD_SOCK -n node-02 tasks ls
Logs:                            $DEMO_DIR/node-0N.log, $DEMO_DIR/node-0N/executor/logs/,
                                 $DEMO_DIR/registry.log$([[ $CONTAINERD_SOCK == "$PRIVATE_SOCK" ]] && echo ", $DEMO_DIR/containerd.log")
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
