#!/usr/bin/env bash
# Installs the Debian packages in .ci/packages.txt that this machine lacks
# (as root; nothing to do when all are there) and the Go modules. Shared by
# `make up` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# make cross builds the arm64 guest (Apple silicon) from Debian's arm64
# packages, which apt lists only for a foreign architecture it knows.
update=
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	dpkg --add-architecture arm64
	update=1
fi
pkgs=$(grep -v '^\s*#' .ci/packages.txt | xargs)
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done | xargs)
if [ -n "$missing" ] || [ -n "$update" ]; then
	apt-get update -qq
fi
if [ -n "$missing" ]; then
	apt-get install -y -qq --no-install-recommends $missing
fi

export PATH=/usr/local/go/bin:$PATH
go version
go mod download
