#!/usr/bin/env bash
# `make up`: start Berth (`berth start`: the VM with the configured driver,
# QEMU by default) and run the bundled hello image through the forwarded
# docker socket. BERTH_DRIVER=native runs the engine on this host instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
args=()
if [ -n "${BERTH_DRIVER:-}" ]; then args+=(--driver "$BERTH_DRIVER"); fi
# berth start returns once the engine answers and prints the DOCKER_HOST.
eval "$("$BIN/berth" start "${args[@]}")"
export DOCKER_HOST
echo
"$BIN/berth" status || true
echo
if command -v docker >/dev/null 2>&1; then
	# The VM loads berth/hello on its first boot; the native engine, or a
	# machine made before the image was bundled, gets it from bin/hello.tar.
	for _ in $(seq 50); do
		docker image inspect berth/hello >/dev/null 2>&1 && break
		sleep 0.2
	done
	docker image inspect berth/hello >/dev/null 2>&1 || docker load -q -i "$BIN/hello.tar"
	docker run --rm berth/hello
else
	echo "(no docker CLI on PATH: berth run instead)"
	"$BIN/berth" run --rm berth/hello
fi
echo "Berth is up. Use it with:  export DOCKER_HOST=$DOCKER_HOST   (or: docker context use $("$BIN/berth" status --json | sed -n 's/.*"dockerContext": "\(.*\)".*/\1/p'))"
