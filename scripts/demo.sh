#!/usr/bin/env bash
# demo.sh: what `make demo` runs. A playground (three managers and a worker,
# each a shoal daemon in a network namespace of its own, see `shoal
# playground --help`) running nginx with 8 replicas. Any playground already
# up in the default directory is removed first.
#
#   SHOAL_BIN  the shoal binary (default bin/shoal, from `make build`)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHOAL=${SHOAL_BIN:-$ROOT/bin/shoal}
[[ -x $SHOAL ]] || { echo "demo: no shoal binary at $SHOAL: run make build" >&2; exit 1; }
((EUID == 0)) || { echo "demo: needs root (network namespaces): sudo make demo" >&2; exit 1; }

run() {
	printf '\n$ %s\n' "shoal $*"
	"$SHOAL" "$@"
}

if "$SHOAL" playground ls >/dev/null 2>&1; then
	echo "demo: removing the playground that is up" >&2
	"$SHOAL" playground down
fi
run playground up --managers 3 --workers 1
eval "$("$SHOAL" playground env node-01)"
run service create --name nginx --replicas 8 --timeout 2m nginx
run node ls
run service ps nginx
cat <<EOM

The dashboard: http://10.77.0.11:8080/ (from this machine; every node serves one at its address)
The CLI talks to node-01 with: eval \$($SHOAL playground env node-01)
Kill the leader and watch:     $SHOAL playground kill node-01; $SHOAL -H unix:///run/shoal-playground/node-02.sock raft status
Tear it down:                  $SHOAL playground down   (or: make demo-down)
EOM
