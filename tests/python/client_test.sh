#!/usr/bin/env bash
# client_test.sh (meson test python/client, suite e2e): the Python client package
# (clients/python) installed the way a user installs it, then its unit tests run with that
# interpreter against real mediabatchd processes ($MB_DAEMON) that the tests start on free
# loopback ports: plaintext and CURVE.
#
# A virtual environment over Debian's python3 (with its python3-zmq and python3-numpy:
# --system-site-packages), `pip install --no-build-isolation --no-index` (offline, with
# Debian's setuptools and wheel). The package is built from a copy of clients/python so
# that the build leaves nothing in the source tree; everything lives under one temporary
# directory, removed at the end.
#
# Environment: MB_DAEMON (the daemon), MB_SOURCE_ROOT (the repository); MB_PYTHON to use
# another interpreter than /usr/bin/python3.
set -euo pipefail

: "${MB_DAEMON:?MB_DAEMON is not set (run through meson test python/client)}"
: "${MB_SOURCE_ROOT:?MB_SOURCE_ROOT is not set (run through meson test python/client)}"
python=${MB_PYTHON:-/usr/bin/python3}

fail() {
	echo "python/client: $*" >&2
	exit 1
}

[ -x "$python" ] || fail "$python not found (deploy/install-deps.sh installs python3)"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
	fail "$python has no venv/ensurepip: install python3-venv (deploy/install-deps.sh)"
"$python" -c 'import zmq, numpy' 2>/dev/null ||
	fail "$python cannot import zmq and numpy: install python3-zmq python3-numpy (deploy/install-deps.sh)"
"$python" -c 'import setuptools, wheel' 2>/dev/null ||
	fail "$python has no setuptools/wheel: install python3-setuptools python3-wheel (deploy/install-deps.sh)"

tmp=$(mktemp -d /tmp/mb-python-client-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# the package's sources, without what an earlier in-tree `pip install` may have left
mkdir "$tmp/src"
tar -C "$MB_SOURCE_ROOT/clients/python" --exclude=build --exclude='*.egg-info' \
	--exclude=__pycache__ -cf - . | tar -C "$tmp/src" -xf -

echo "python/client: venv and pip install ($("$python" --version))"
timeout 120 "$python" -m venv --system-site-packages "$tmp/venv"
timeout 120 "$tmp/venv/bin/pip" install --no-build-isolation --no-index \
	--disable-pip-version-check --no-cache-dir -q "$tmp/src" ||
	fail "pip install of clients/python failed"

# the installed package, not the sources: the tests run from the copy, whose package is
# under src/ and so not importable from there
cd "$tmp/src"
installed=$("$tmp/venv/bin/python" -c 'import mediabatch; print(mediabatch.__file__)')
case "$installed" in
"$tmp/venv/"*) echo "python/client: testing $installed" ;;
*) fail "mediabatch imports from $installed, not from the venv" ;;
esac

# the tests' own temporary files (daemon configs and logs, keys) under $tmp too
export TMPDIR="$tmp"
export PYTHONDONTWRITEBYTECODE=1
timeout -k 10 240 "$tmp/venv/bin/python" -m unittest discover -s tests -t tests -v
