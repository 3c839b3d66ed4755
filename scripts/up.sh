#!/usr/bin/env bash
# `make up`: start Berth and run the bundled hello image.
# Until the VM driver lands this runs the engine natively (Linux, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
BERTH_HOME=${BERTH_HOME:-$HOME/.berth}
sock=$BERTH_HOME/run/docker.sock
mkdir -p "$BERTH_HOME/logs"
if ! DOCKER_HOST=unix://$sock "$BIN/berth" version >/dev/null 2>&1; then
	nohup "$BIN/berth-agent" --root "$BERTH_HOME/native" --host "unix://$sock" \
		>>"$BERTH_HOME/logs/agent.log" 2>&1 &
	for _ in $(seq 100); do
		DOCKER_HOST=unix://$sock "$BIN/berth" version >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
DOCKER_HOST=unix://$sock "$BIN/berth" version
echo
# The bundled hello image (make hello): load it, run it.
if command -v docker >/dev/null 2>&1; then
	DOCKER_HOST=unix://$sock docker load -q -i "$BIN/hello.tar"
	DOCKER_HOST=unix://$sock docker run --rm berth/hello
else
	echo "(no docker CLI on PATH: skipping the hello image)"
fi
echo "Berth is up. Use it with:  export DOCKER_HOST=unix://$sock"
