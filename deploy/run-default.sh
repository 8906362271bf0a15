#!/usr/bin/env bash
# run-default.sh: build mediabatch and start the daemon on its embedded default
# (CPU device, ZeroMQ ROUTER tcp://127.0.0.1:7400, PUB tcp://127.0.0.1:7401, metrics on
# 127.0.0.1:7402, no NIC, no GPU). Extra arguments go to the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/build.ninja ]; then
	meson setup build
fi
meson compile -C build

if [ ! -x build/mediabatchd ]; then
	cat >&2 <<'MSG'
run-default: the build succeeded, but this tree has no daemon yet (build/mediabatchd):
mediabatch is being built bottom-up and the daemon arrives with the end-to-end work.
What exists and how to test it: README.md, "Status" and "Quick start".
MSG
	exit 1
fi
exec build/mediabatchd "$@"
