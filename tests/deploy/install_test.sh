#!/usr/bin/env bash
# install_test.sh: mediabatch as an operator installs it (docs/operating.md, "Running under
# systemd"): `meson install` into a staging root, placeholder weights written by the
# installed mediabatch-weights into a weights_dir of their own, the installed daemon started
# with a config file the way deploy/mediabatchd.service starts it (--check first), a whisper
# request answered OK through the installed CLI (so the weights were found), the unit's
# ExecReload reloads it, SIGTERM drains to exit 0. Then the unit file itself, pointed at the staged binaries, must pass
# `systemd-analyze verify` without a single warning, and so must deploy/mediabatchd-zmq.service
# (the unprivileged ZeroMQ-only unit). Traffic: 127.0.0.1 only.
set -u

fail() { echo "FAIL: $*"; [ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log"; exit 1; }

build=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}
src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
tmp=$(mktemp -d)
pid=
# meson install rewrites the build's install log (what `meson uninstall` removes) even with
# --destdir: keep the operator's, and put it back.
log=$build/meson-logs/install-log.txt
[ -f "$log" ] && cp -p "$log" "$tmp/install-log.saved"
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	if [ -f "$tmp/install-log.saved" ]; then
		cp -p "$tmp/install-log.saved" "$log"
	else
		rm -f "$log"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

meson install -C "$build" --no-rebuild --destdir "$tmp/root" --quiet >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }
bin=$tmp/root/usr/local/bin
for b in mediabatchd mediabatch mediabatch-weights mediabatch-perf; do
	[ -x "$bin/$b" ] || fail "meson install did not install $b"
done
# the reference configuration --help points at, installed and valid
ref=$(LD_LIBRARY_PATH="$tmp/root/usr/local/lib/x86_64-linux-gnu" "$bin/mediabatchd" --help |
	grep -A1 -- '--config FILE' | grep -o '/[^ )]*mediabatch.yaml')
[ -n "$ref" ] || fail "mediabatchd --help names no reference configuration"
[ -s "$tmp/root$ref" ] || fail "--help names $ref, but meson install did not install it"
cmp -s "$tmp/root$ref" "$src/deploy/mediabatch.yaml" || fail "$ref is not deploy/mediabatch.yaml"
echo "reference configuration: $ref installed"
# the man pages (docs/man: help2man on each program's --help), where help2man was found at
# setup (deploy/install-deps.sh installs it; the meson summary says "man pages: no" without)
man1=$tmp/root/usr/local/share/man/man1
if [ -d "$build/docs/man" ] && ls "$build/docs/man"/*.1 >/dev/null 2>&1; then
	command -v man >/dev/null || fail "man missing (man-db) to render the installed man pages"
	for b in mediabatchd mediabatch mediabatch-weights mediabatch-perf; do
		[ -s "$man1/$b.1" ] || fail "meson install did not install the man page $man1/$b.1"
		page=$(MANWIDTH=100 man --warnings -l "$man1/$b.1" 2>"$tmp/man.err") ||
			fail "man -l $b.1: $(cat "$tmp/man.err")"
		[ ! -s "$tmp/man.err" ] || fail "man -l $b.1 warns: $(cat "$tmp/man.err")"
		# NAME, then "PROGRAM - what it is" on the next line; SYNOPSIS from its usage lines
		echo "$page" | grep -A1 '^NAME$' | grep -Eq "^ +$b +- +[a-z]" ||
			fail "man page $b.1 has no NAME section naming $b: $(echo "$page" | head -8)"
		echo "$page" | grep -A1 '^SYNOPSIS$' | grep -Eq "^ +$b( |$)" ||
			fail "man page $b.1 has no SYNOPSIS of $b"
	done
	echo "man pages: mediabatchd.1 mediabatch.1 mediabatch-weights.1 mediabatch-perf.1 installed and render"
else
	echo "man pages: not built (help2man was not found at setup), not checked"
fi
"$bin/mediabatch-weights" --out "$tmp/weights" >/dev/null || fail "mediabatch-weights --out"
[ -s "$tmp/weights/whisper/model.safetensors" ] && [ -s "$tmp/weights/whisper/config.json" ] || fail "no whisper checkpoint written"

read -r p1 p2 p3 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
cat >"$tmp/mediabatch.yaml" <<YAML
service:
  ingest: tcp://127.0.0.1:$p1
  publish: tcp://127.0.0.1:$p2
  metrics: 127.0.0.1:$p3
weights_dir: $tmp/weights
devices:
  cuda: {mode: "off"}
YAML
"$bin/mediabatchd" --config "$tmp/mediabatch.yaml" --check >"$tmp/check.log" 2>&1 ||
	{ cat "$tmp/check.log"; fail "--check refused the config"; }
"$bin/mediabatchd" --config "$tmp/mediabatch.yaml" >"$tmp/daemon.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 300); do
	if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$p3/readyz', timeout=1)" 2>/dev/null; then
		ready=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || fail "the installed daemon exited during start-up"
	sleep 0.1
done
[ "$ready" -eq 1 ] || fail "the installed daemon not ready after 30 s"
out=$("$bin/mediabatch" send --endpoint "tcp://127.0.0.1:$p1" --model whisper --tone 440 2>&1) ||
	fail "whisper through the installed CLI: $out"
echo "$out" | grep -q "whisper: OK " || fail "whisper not answered OK: $out"
# the unit's ExecReload, as systemd runs it (MAINPID in its environment): a reload
reload_cmd=$(sed -n 's/^ExecReload=//p' "$src/deploy/mediabatchd.service")
[ -n "$reload_cmd" ] || fail "the unit has no ExecReload"
MAINPID=$pid eval "$reload_cmd" || fail "ExecReload ($reload_cmd) failed"
for _ in $(seq 1 100); do
	grep -q "SIGHUP: reloaded" "$tmp/daemon.log" && break
	sleep 0.1
done
grep -q "SIGHUP: reloaded" "$tmp/daemon.log" || fail "ExecReload did not reload the daemon"
echo "the unit's ExecReload: the daemon reloaded its config"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc, not 0"
echo "installed daemon: started with --check, whisper OK, drained to exit 0"

if ! command -v systemd-analyze >/dev/null; then
	fail "systemd-analyze missing (deploy/install-deps.sh installs systemd)"
fi
sed -e "s|/usr/local/bin/|$bin/|g" -e "s|/etc/mediabatch/mediabatch.yaml|$tmp/mediabatch.yaml|g" \
	"$src/deploy/mediabatchd.service" >"$tmp/mediabatchd.service"
grep -q "$bin/mediabatchd --config $tmp/mediabatch.yaml" "$tmp/mediabatchd.service" ||
	fail "the unit's ExecStart is not the installed daemon with /etc/mediabatch/mediabatch.yaml"
verify=$(systemd-analyze verify "$tmp/mediabatchd.service" 2>&1)
[ $? -eq 0 ] && [ -z "$verify" ] || fail "systemd-analyze verify deploy/mediabatchd.service: $verify"
echo "deploy/mediabatchd.service: systemd-analyze verify clean"
# the root unit's hardening: what DPDK cannot mind, and none of what can block /dev/vfio,
# hugepages, AF_PACKET or sysfs (the unit's comment says why)
for k in NoNewPrivileges=yes ProtectHome=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
	ProtectControlGroups=yes ProtectHostname=yes RestrictNamespaces=yes RestrictSUIDSGID=yes \
	LockPersonality=yes SystemCallArchitectures=native; do
	grep -qx "$k" "$tmp/mediabatchd.service" || fail "deploy/mediabatchd.service lacks $k"
done
for k in PrivateDevices DeviceAllow ProtectClock ProtectKernelTunables RestrictAddressFamilies \
	CapabilityBoundingSet DynamicUser User; do
	! grep -q "^$k=" "$tmp/mediabatchd.service" || fail "deploy/mediabatchd.service sets $k, which can block DPDK"
done

# the ZeroMQ-only unit: unprivileged, hardened, the same daemon and the same notify protocol
sed -e "s|/usr/local/bin/|$bin/|g" -e "s|/etc/mediabatch/mediabatch.yaml|$tmp/mediabatch.yaml|g" \
	"$src/deploy/mediabatchd-zmq.service" >"$tmp/mediabatchd-zmq.service"
grep -q "$bin/mediabatchd --config $tmp/mediabatch.yaml" "$tmp/mediabatchd-zmq.service" ||
	fail "the ZeroMQ unit's ExecStart is not the installed daemon with /etc/mediabatch/mediabatch.yaml"
for k in Type=notify NotifyAccess=main DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
	ProtectHome=yes PrivateTmp=yes "CapabilityBoundingSet=" \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" \
	SystemCallFilter=@system-service SystemCallErrorNumber=EPERM UMask=0077 ProtectProc=invisible; do
	grep -qx "$k" "$tmp/mediabatchd-zmq.service" || fail "deploy/mediabatchd-zmq.service lacks $k"
done
grep -q "^WatchdogSec=" "$src/deploy/mediabatchd.service" || fail "deploy/mediabatchd.service has no WatchdogSec"
verify=$(systemd-analyze verify "$tmp/mediabatchd-zmq.service" 2>&1)
[ $? -eq 0 ] && [ -z "$verify" ] || fail "systemd-analyze verify deploy/mediabatchd-zmq.service: $verify"
echo "deploy/mediabatchd-zmq.service: systemd-analyze verify clean"
# ProcSubset=pid would hide /proc/stat, which /metrics reads (process_start_time_seconds)
! grep -q "^ProcSubset=" "$tmp/mediabatchd-zmq.service" ||
	fail "deploy/mediabatchd-zmq.service sets ProcSubset: core/procstat.c reads /proc/stat"
# One name for the ZeroMQ unit: it is installed as the header says, and the docs' drop-in
# (systemctl edit) and credential path name that unit, not the file's name.
unit=$(sed -n 's|^# Install: cp deploy/mediabatchd-zmq.service /etc/systemd/system/\([^ ]*\.service\).*|\1|p' \
	"$src/deploy/mediabatchd-zmq.service")
[ "$unit" = mediabatchd.service ] ||
	fail "deploy/mediabatchd-zmq.service's header installs it as '$unit', not mediabatchd.service"
wrong=$(grep -nE 'credentials/mediabatchd-zmq|(systemctl [a-z-]+|journalctl -u) mediabatchd-zmq' \
	"$src/docs/operating.md" "$src/deploy/mediabatchd-zmq.service")
[ -z "$wrong" ] || fail "the ZeroMQ unit is installed as $unit, but these name it mediabatchd-zmq: $wrong"
for f in "$src/docs/operating.md" "$src/deploy/mediabatchd-zmq.service"; do
	grep -qF "/run/credentials/$unit/server.key_secret" "$f" ||
		fail "${f#"$src/"}: no credential path /run/credentials/$unit/server.key_secret"
	grep -qF "systemctl edit ${unit%.service}" "$f" || fail "${f#"$src/"}: no 'systemctl edit ${unit%.service}'"
done
echo "deploy/mediabatchd-zmq.service: installed as $unit, as docs/operating.md's CURVE steps say"
