#!/usr/bin/env bash
# fleet_test.sh: the fleet suite (issue 18). Five daemons, each in a network namespace of its
# own, and the client in a sixth, all joined by a bridge in a seventh namespace: nothing of
# this touches the host's own network. Addresses are 192.0.2.0/24 (TEST-NET-1), only
# inside these namespaces: daemons 192.0.2.11-15, the client 192.0.2.2. The client's
# namespace gets a hosts file (/etc/netns/NS/hosts, which `ip netns exec` mounts as its
# /etc/hosts): mediabatch.fleet names daemons 1-3, mediabatch.grow daemons 1 and 2 (daemon 5
# is added to it mid-run). Daemon 4 is slowed on purpose: its identity waits 8 ms for every
# batch to fill (max_batch 256, max_delay_us 8000).
#
# fleet_client (tests/fleet/fleet_client.c) runs the cases in the client's namespace. Then
# every daemon still running must drain to exit 0. Needs root; skips otherwise.
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/d*.log; do [ -f "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -20; done
	exit 1
}

daemon=${MB_DAEMON:?set MB_DAEMON to the mediabatchd binary}
client=${MB_FLEET_CLIENT:?set MB_FLEET_CLIENT to the fleet_client binary}
weights=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}/weights
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "needs iproute2 (ip)"

tag=mbf$$
br=${tag}br cl=${tag}c
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for i in 1 2 3 4 5; do ip netns del "${tag}d$i" 2>/dev/null; done
	ip netns del "$cl" 2>/dev/null
	ip netns del "$br" 2>/dev/null
	rm -rf "/etc/netns/$cl" "$tmp"
}
trap cleanup EXIT

ip netns add "$br" 2>/dev/null || skip "cannot create network namespaces here"
ip -n "$br" link add br0 type bridge || skip "cannot create a bridge here"
ip -n "$br" link set br0 up
join() { # NS ADDRESS: a veth from NS to the bridge
	local ns=$1 addr=$2 n=$3
	ip netns add "$ns" || fail "ip netns add $ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth0 type veth peer name "p$n" netns "$br" || fail "veth for $ns"
	ip -n "$br" link set "p$n" master br0
	ip -n "$br" link set "p$n" up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}
join "$cl" 192.0.2.2 0
for i in 1 2 3 4 5; do join "${tag}d$i" "192.0.2.1$i" "$i"; done

mkdir -p "/etc/netns/$cl"
hosts=/etc/netns/$cl/hosts
cat >"$hosts" <<HOSTS
127.0.0.1 localhost
192.0.2.11 mediabatch.fleet
192.0.2.12 mediabatch.fleet
192.0.2.13 mediabatch.fleet
192.0.2.11 mediabatch.grow
192.0.2.12 mediabatch.grow
HOSTS

for i in 1 2 3 4 5; do
	slow=
	[ "$i" -eq 4 ] && slow='models:
  - name: identity
    max_batch: 256
    max_delay_us: 8000'
	cat >"$tmp/d$i.yaml" <<YAML
service:
  ingest: tcp://192.0.2.1$i:7400
  publish: tcp://192.0.2.1$i:7401
  metrics: 192.0.2.1$i:7402
  drain_timeout_ms: 10000
weights_dir: $weights
devices:
  cuda: {mode: "off"}
$slow
YAML
	ip netns exec "${tag}d$i" "$daemon" --config "$tmp/d$i.yaml" >"$tmp/d$i.log" 2>&1 &
	pids+=($!)
done
for i in 1 2 3 4 5; do
	ok=0
	for _ in $(seq 1 300); do
		if ip netns exec "$cl" python3 -c "import urllib.request; urllib.request.urlopen('http://192.0.2.1$i:7402/v2/models/identity/ready', timeout=1)" 2>/dev/null; then
			ok=1
			break
		fi
		kill -0 "${pids[$((i - 1))]}" 2>/dev/null || fail "daemon $i exited at start"
		sleep 0.1
	done
	[ "$ok" -eq 1 ] || fail "daemon $i not ready after 30 s"
done
echo "five daemons ready in their namespaces"

MB_FLEET_NAME=tcp://mediabatch.fleet:7400 \
MB_FLEET_LIST=tcp://192.0.2.11:7400,tcp://192.0.2.12:7400,tcp://192.0.2.13:7400 \
MB_FLEET_SLOW=tcp://192.0.2.11:7400,tcp://192.0.2.14:7400 \
MB_FLEET_ADD=tcp://mediabatch.grow:7400 \
MB_FLEET_HOSTS=$hosts \
MB_FLEET_ADDLINE="192.0.2.15 mediabatch.grow" \
MB_FLEET_PIDS="${pids[0]},${pids[1]},${pids[2]}" \
	timeout 300 ip netns exec "$cl" "$client"
rc=$?
[ "$rc" -eq 0 ] || fail "fleet_client: $rc failure(s)"

# daemon 1 was killed and 2 drained by the chaos case; 2 must have exited 0 on its own
wait "${pids[1]}"
rc=$?
[ "$rc" -eq 0 ] || fail "the drained daemon 2 exited $rc, not 0"
for i in 3 4 5; do
	p=${pids[$((i - 1))]}
	kill -TERM "$p"
	wait "$p"
	rc=$?
	[ "$rc" -eq 0 ] || fail "daemon $i: SIGTERM: exit $rc, not 0"
done
pids=()
echo "the drained daemon and the rest exited 0"
