#!/usr/bin/env bash
# deps.sh: install the Debian packages that shoal's build and integration
# tests need (or, with "runtime", those a node needs), but only those that
# are missing; apt-get update runs only then.
set -euo pipefail

packages=(
	iproute2                    # ip, bridge: test hosts in network namespaces
	util-linux                  # nsenter: run daemons on test hosts
	iptables                    # CNI portmap
	protobuf-compiler           # protoc: make generate
	protoc-gen-go               # make generate
	protoc-gen-go-grpc          # make generate
	containerd                  # the executor's container runtime
	runc                        # containerd's OCI runtime
	containernetworking-plugins # CNI bridge, host-local, loopback, portmap in /usr/lib/cni
	nginx-light                 # the nginx binary that test images are built from
	docker-registry             # the registry that integration tests push test images to
	chromium                    # headless browser of the dashboard's integration test
	systemd                     # systemd-analyze: checks the unit that make install writes
)
# `deps.sh runtime`: only what a node needs to run tasks (make install).
if [[ "${1:-}" == runtime ]]; then
	packages=(containerd runc containernetworking-plugins iptables)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#packages[@]} packages are installed"
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
echo "deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
