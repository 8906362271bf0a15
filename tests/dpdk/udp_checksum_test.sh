#!/usr/bin/env bash
# udp_checksum_test.sh: the NIC's UDP checksum verdict honoured on the UDP ingest path.
#
# The daemon runs in a network namespace made here, on DPDK's net_tap: a TAP interface in
# that namespace, which the kernel sends to. net_tap offers the UDP checksum offload (it
# checks in software and flags the mbuf as a NIC would), so the daemon enables it and says
# so at start. From the same namespace (192.0.2.2 on the TAP; 192.0.2.1 is the daemon's,
# only inside the namespace): the CLI's request (the kernel's checksum) is queued; then raw
# datagrams of one identity request each, with a right checksum, a wrong one, and none (0,
# allowed over IPv4): the wrong one is dropped as bad_checksum and never queued, the others
# are queued. Needs root and /dev/net/tun; skips otherwise.
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log"; exit 1; }

daemon=${MB_DAEMON:?set MB_DAEMON to the mediabatchd binary}
cli=${MB_CLI:?set MB_CLI to the mediabatch binary}
pysrc=${MB_PY_SRC:?set MB_PY_SRC to clients/python/src}
[ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace and a TAP interface"
command -v ip >/dev/null || skip "needs iproute2 (ip)"
[ -c /dev/net/tun ] || skip "needs /dev/net/tun for net_tap"

ns=mbck$$
tap=mbck$$t
tmp=$(mktemp -d)
pid=

cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns" 2>/dev/null || skip "cannot create network namespaces here"
ip -n "$ns" link set lo up

cat >"$tmp/mb.yaml" <<YAML
service:
  ingest: ipc://$tmp/router
  publish: ipc://$tmp/pub
  metrics: 127.0.0.1:7402
  drain_timeout_ms: 5000
eal:
  memory_mb: 256
udp:
  ports:
    - device: net_tap0,iface=$tap
      address: 192.0.2.1
YAML

ip netns exec "$ns" "$daemon" --config "$tmp/mb.yaml" >"$tmp/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	grep -q " ready " "$tmp/daemon.log" && break
	kill -0 "$pid" 2>/dev/null || fail "the daemon exited at start"
	sleep 0.05
done
grep -q " ready " "$tmp/daemon.log" || fail "the daemon did not get ready in 10 s"
grep -q "UDP checksums checked by the NIC" "$tmp/daemon.log" ||
	fail "the start does not say that the port checks UDP checksums"
ip -n "$ns" addr add 192.0.2.2/24 dev "$tap" || fail "ip addr add on $tap"
ip -n "$ns" link set "$tap" up || fail "ip link set $tap up"

metric() {
	ip netns exec "$ns" bash -c \
		'exec 3<>/dev/tcp/127.0.0.1/7402 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
		awk -v k="$1" '$1 == k { print $2 }'
}
queued() { metric 'mediabatch_rx_requests_total{outcome="queued"}'; }
bad() { metric 'mediabatch_rx_dropped_total{reason="bad_checksum"}'; }
wait_for() { # $1: function, $2: value; up to 5 s
	for _ in $(seq 1 50); do
		[ "$($1)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

out=$(ip netns exec "$ns" timeout 60 "$cli" send --udp 192.0.2.1:7000 --publish "ipc://$tmp/pub" \
	--wait-ms 10000 --model identity --tensor 1x100 --tenant 5 2>&1) || fail "send: $out"
echo "  $out"
wait_for queued 1 || fail "the CLI's request: queued $(queued), expected 1"

# one raw datagram per argument: a whole identity request (F32 1x4), its UDP checksum right,
# wrong or none (0)
raw() {
	ip netns exec "$ns" python3 - "$pysrc/mediabatch/protocol.py" "$@" <<'PY' ||
import importlib.util, socket, struct, sys

# the client's protocol module alone (the package wants pyzmq)
spec = importlib.util.spec_from_file_location("protocol", sys.argv.pop(1))
protocol = importlib.util.module_from_spec(spec)
sys.modules["protocol"] = protocol
spec.loader.exec_module(protocol)
Media, RequestHeader = protocol.Media, protocol.RequestHeader

def fold(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for i, kind in enumerate(sys.argv[1:]):
    payload = struct.pack("<4f", 1, 2, 3, 4)
    data = RequestHeader(request_id=500 + i, tenant_id=5, model="identity", media=Media.F32,
                         frames=1, height=4, payload_len=len(payload)).encode() + payload
    n = 8 + len(data)
    pseudo = socket.inet_aton("192.0.2.2") + socket.inet_aton("192.0.2.1") + struct.pack("!BBH", 0, 17, n)
    ck = fold(pseudo + struct.pack("!HHHH", 40000, 7000, n, 0) + data) or 0xFFFF
    ck = {"right": ck, "wrong": ck ^ 0x5A5A, "none": 0}[kind]
    s.sendto(struct.pack("!HHHH", 40000, 7000, n, ck) + data, ("192.0.2.1", 0))
PY
		fail "the raw sender failed"
}

raw right
wait_for queued 2 || fail "a right checksum: queued $(queued), expected 2"
raw wrong
wait_for bad 1 || fail "a wrong checksum: bad_checksum $(bad), expected 1"
raw none
wait_for queued 3 || fail "no checksum (0): queued $(queued), expected 3"
[ "$(bad)" = 1 ] || fail "bad_checksum $(bad) at the end, expected 1"
echo "right and no checksum queued, the wrong one dropped as bad_checksum"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "the daemon exited $rc after SIGTERM"
echo "PASS"
