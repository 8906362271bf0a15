#!/usr/bin/env bash
# udp_live_test.sh: the UDP ingest end to end over a real kernel network path.
#
# Two network namespaces made here, joined by a veth pair: the daemon runs in one and reads
# its veth end through DPDK's net_af_packet; the CLI runs in the other and sends real UDP
# (`mediabatch send --udp`) to 192.0.2.1 (TEST-NET-1, only inside these namespaces). The
# kernel has no neighbour entry, so it must learn the daemon's MAC from our ARP reply. The
# ZeroMQ sockets are ipc:// (they work across namespaces); results come back on PUB.
# The port has two rx queues (the kernel's packet fanout spreads flows over them), so two rx
# threads share the work and must both close on the drain.
# Checks: every request answered OK (single- and multi-datagram), the metrics show the ARP
# reply and the UDP requests; then mediabatch-perf --transport udp runs 2 s of closed-loop
# load with every request OK and none missing; SIGTERM drains to exit 0. Needs root; skips
# otherwise.
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log"; exit 1; }

daemon=${MB_DAEMON:?set MB_DAEMON to the mediabatchd binary}
cli=${MB_CLI:?set MB_CLI to the mediabatch binary}
perf=${MB_PERF:?set MB_PERF to the mediabatch-perf binary}
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces and a veth pair"
command -v ip >/dev/null || skip "needs iproute2 (ip)"

tag=mb$$
nsd=${tag}d nsc=${tag}c
tmp=$(mktemp -d)
pid=

cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	ip netns del "$nsd" 2>/dev/null
	ip netns del "$nsc" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$nsd" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$nsc" || fail "ip netns add $nsc"
ip -n "$nsd" link add "${tag}a" type veth peer name "${tag}b" netns "$nsc" ||
	skip "cannot create a veth pair here"
ip -n "$nsd" link set lo up
ip -n "$nsd" link set "${tag}a" up
ip -n "$nsc" link set lo up
ip -n "$nsc" addr add 192.0.2.2/24 dev "${tag}b"
ip -n "$nsc" link set "${tag}b" up

cat >"$tmp/mb.yaml" <<YAML
service:
  ingest: ipc://$tmp/router
  publish: ipc://$tmp/pub
  metrics: 127.0.0.1:7402
  drain_timeout_ms: 5000
eal:
  memory_mb: 256
udp:
  reassembly_timeout_ms: 1000
  buffer_mb: 16
  ports:
    - device: net_af_packet0,iface=${tag}a,qpairs=2
      address: 192.0.2.1
      rx_queues: 2
YAML

ip netns exec "$nsd" "$daemon" --config "$tmp/mb.yaml" >"$tmp/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	grep -q " ready " "$tmp/daemon.log" && break
	kill -0 "$pid" 2>/dev/null || fail "the daemon exited at start"
	sleep 0.05
done
grep -q " ready " "$tmp/daemon.log" || fail "the daemon did not get ready in 10 s"

send() { # args for `mediabatch send`; must exit 0
	local out
	out=$(ip netns exec "$nsc" timeout 60 "$cli" send --udp 192.0.2.1:7000 \
		--publish "ipc://$tmp/pub" --wait-ms 10000 "$@" 2>&1) || fail "send $*: $out"
	echo "$out" | sed 's/^/  /'
}

echo "single-datagram request (identity):"
send --model identity --tensor 1x100 --tenant 5
echo "3 s of audio in 69 datagrams each, 5 requests, 2 at a time (logmel):"
send --model logmel --tone 440 --seconds 3 --count 5 --concurrency 2 --tenant 5 --id 100
echo "small datagrams (200 bytes): 236 per request (identity):"
send --model identity --tensor 8x1000 --datagram 200 --count 3 --tenant 6 --id 200

metrics=$(ip netns exec "$nsd" bash -c \
	'exec 3<>/dev/tcp/127.0.0.1/7402 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3') ||
	fail "cannot read /metrics"
value() { echo "$metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
arp=$(value mediabatch_rx_arp_replies_total)
logmel=$(value 'mediabatch_requests_total{model="logmel",transport="udp"}')
identity=$(value 'mediabatch_requests_total{model="identity",transport="udp"}')
queued=$(value 'mediabatch_rx_requests_total{outcome="queued"}')
echo "metrics: arp replies $arp, udp requests logmel $logmel identity $identity, queued $queued"
echo "$metrics" | grep -E '^mediabatch_rx_(poll_busy_ms_total|nic_dropped_total)' | sed 's/^/  /'
[ "$(echo "$metrics" | grep -c '^mediabatch_rx_poll_busy_ms_total{queue="port0/q[01]"}')" = 2 ] ||
	fail "expected two rx queues in the metrics"
[ "${arp:-0}" -ge 1 ] || fail "no ARP reply counted"
[ "$logmel" = 5 ] || fail "expected 5 logmel UDP requests, got '$logmel'"
[ "$identity" = 4 ] || fail "expected 4 identity UDP requests, got '$identity'"
[ "$queued" = 9 ] || fail "expected 9 queued, got '$queued'"
# every UDP request has one outcome: the four add up to the UDP requests
outcomes=0
for o in queued refused expired cancelled; do
	v=$(value "mediabatch_rx_requests_total{outcome=\"$o\"}")
	[ -n "$v" ] || fail "no mediabatch_rx_requests_total{outcome=\"$o\"}"
	outcomes=$((outcomes + v))
done
[ "$outcomes" = $((logmel + identity)) ] ||
	fail "rx_requests_total outcomes add up to $outcomes, not the $((logmel + identity)) UDP requests"

# A reload while serving (SIGHUP): each rx thread takes its new rate limiter before its next
# request; the load below runs through them (tenant 9 stays unlimited).
printf 'tenants:\n  limits:\n    - {tenant: 77, rate: 1}\n' >>"$tmp/mb.yaml"
kill -HUP "$pid"
for _ in $(seq 1 100); do
	grep -q "SIGHUP: reloaded" "$tmp/daemon.log" && break
	sleep 0.1
done
grep -q "SIGHUP: reloaded" "$tmp/daemon.log" || fail "SIGHUP: no reload in the log"
echo "SIGHUP: reloaded (new tenant limits posted to both rx threads)"

echo "mediabatch-perf over UDP, closed loop, 8 outstanding, 2 s (identity:3,logmel:1):"
perf_out=$(ip netns exec "$nsc" timeout 60 "$perf" --transport udp --endpoint 192.0.2.1:7000 \
	--publish "ipc://$tmp/pub" --metrics off --outstanding 8 --duration 2 --warmup 0.5 \
	--mix identity:3,logmel:1 --tenant 9 --quiet --json "$tmp/perf.json" 2>&1) ||
	fail "mediabatch-perf --transport udp: $perf_out"
echo "$perf_out" | sed 's/^/  /' | head -12
python3 - "$tmp/perf.json" <<'PY' || fail "mediabatch-perf's JSON: not every request OK"
import json, sys
r = json.load(open(sys.argv[1]))
runs = r["runs"] if "runs" in r else [r]
ok = sum(x["status"].get("OK", 0) for x in runs)
bad = sum(v for x in runs for k, v in x["status"].items() if k != "OK")
missing = sum(x["missing"] for x in runs)
print("  perf JSON: %d OK, %d other, %d missing" % (ok, bad, missing))
sys.exit(0 if ok > 0 and bad == 0 and missing == 0 else 1)
PY

# Frames the kernel drops on a full socket ring count as missed (net_af_packet's PMD does not
# count them): the daemon stopped (SIGSTOP), 3000 datagrams to another port (wrong_port) in
# bursts of 100 (the rings hold 512 frames each), then SIGCONT: every datagram is either
# read (wrong_port) or missed.
metric() {
	ip netns exec "$nsd" bash -c \
		'exec 3<>/dev/tcp/127.0.0.1/7402 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
		awk -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'
}
missed0=$(metric 'mediabatch_rx_nic_dropped_total{port="port0",reason="missed"}')
wrong0=$(metric 'mediabatch_rx_dropped_total{reason="wrong_port"}')
kill -STOP "$pid"
ip netns exec "$nsc" python3 - <<'PY' || { kill -CONT "$pid"; fail "the sender failed"; }
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for burst in range(30):
    for i in range(100):
        s.sendto(b"MBQ1" + bytes(60), ("192.0.2.1", 7001))
    time.sleep(0.01)
PY
sleep 0.2
kill -CONT "$pid"
sleep 0.5
missed=$(($(metric 'mediabatch_rx_nic_dropped_total{port="port0",reason="missed"}') - missed0))
wrong=$(($(metric 'mediabatch_rx_dropped_total{reason="wrong_port"}') - wrong0))
echo "3000 datagrams while stopped: $wrong read (wrong_port), $missed missed (kernel drops)"
[ "$missed" -gt 0 ] || fail "no kernel drop counted as missed"
# none lost uncounted; the kernel may count a frame its fanout moved to the other queue's
# socket as a drop of the first as well (seen once: 3001), hence a little slack above
[ $((missed + wrong)) -ge 3000 ] && [ $((missed + wrong)) -le 3010 ] ||
	fail "read $wrong + missed $missed is not the 3000 sent"

kill -TERM "$pid"
for _ in $(seq 1 200); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$pid" 2>/dev/null && fail "the daemon did not stop within 10 s of SIGTERM"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "daemon exit status $rc after SIGTERM (expected 0: clean drain)"
grep -q "clean drain" "$tmp/daemon.log" || fail "no clean drain in the log"
echo "PASS"
