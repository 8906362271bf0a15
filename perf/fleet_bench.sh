#!/usr/bin/env bash
# fleet_bench.sh: mediabatch-perf against one, two and three daemons on this machine
# (identity, closed loop, 64 outstanding, 1 KiB tensors), and the fleet client's own cost.
#
# Three daemons on loopback; in each round, alternating so that drift hits every case:
#   plain    --endpoint EP1            the single-daemon client (one DEALER)
#   fleet1   --endpoint EP1 --fleet    the fleet client with one daemon
#   fleet2   --endpoint EP1,EP2
#   fleet3   --endpoint EP1,EP2,EP3
# Prints, per case, the median throughput over the rounds, its ratio to plain (fleet1/plain
# is the fleet client's overhead), p99, and each daemon's share of the answers (from the
# report's "fleet" object). The daemons share the machine's cores with each other and with
# the load generator: on 2 cores more daemons cannot add throughput, and the table shows
# what a fleet costs and how evenly it spreads, not how it scales on real nodes.
#
# usage: perf/fleet_bench.sh [--build DIR] [--rounds N] [--duration S] [--quick]
# Traffic goes to 127.0.0.1 only; every run is bounded by `timeout`.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
rounds=3
duration=5
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--duration) duration=$2; shift ;;
	--quick) rounds=1 duration=1 ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--build DIR] [--rounds N] [--duration S] [--quick]" >&2; exit 2 ;;
	esac
	shift
done
for p in mediabatchd mediabatch-perf; do
	[ -x "$build/$p" ] || { echo "fleet_bench: $build/$p is missing: build first" >&2; exit 2; }
done
py=/usr/bin/python3
[ -x "$py" ] || py=python3
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

read -r -a ports < <($py -c '
import socket
s = [socket.socket() for _ in range(9)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
eps=()
for i in 0 1 2; do
	cat >"$tmp/d$i.yaml" <<YAML
service:
  ingest: tcp://127.0.0.1:${ports[$((3 * i))]}
  publish: tcp://127.0.0.1:${ports[$((3 * i + 1))]}
  metrics: 127.0.0.1:${ports[$((3 * i + 2))]}
weights_dir: $build/weights
devices:
  cuda: {mode: "off"}
YAML
	"$build/mediabatchd" --config "$tmp/d$i.yaml" >"$tmp/d$i.log" 2>&1 &
	pids+=($!)
	eps+=("tcp://127.0.0.1:${ports[$((3 * i))]}")
done
for i in 0 1 2; do
	for _ in $(seq 1 300); do
		$py -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${ports[$((3 * i + 2))]}/v2/models/identity/ready', timeout=1)" 2>/dev/null && break
		sleep 0.1
	done
done

run() { # CASE ARGS...: one measured run, its JSON in $tmp/CASE.ROUND.json
	local name=$1 r=$2
	shift 2
	timeout $((duration + 60)) "$build/mediabatch-perf" "$@" --outstanding 64 --payload 1024 \
		--duration "$duration" --warmup 1 --quiet --json "$tmp/$name.$r.json" >/dev/null 2>"$tmp/$name.$r.err" ||
		echo "fleet_bench: $name round $r failed: $(tail -2 "$tmp/$name.$r.err")" >&2
}
for r in $(seq 1 "$rounds"); do
	run plain "$r" --endpoint "${eps[0]}"
	run fleet1 "$r" --endpoint "${eps[0]}" --fleet
	run fleet2 "$r" --endpoint "${eps[0]},${eps[1]}"
	run fleet3 "$r" --endpoint "${eps[0]},${eps[1]},${eps[2]}"
done

$py - "$tmp" "$rounds" "$duration" <<'PY'
import json, os, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
cases = ["plain", "fleet1", "fleet2", "fleet3"]
res = {}
for c in cases:
    tp, p99, shares = [], [], []
    for r in range(1, rounds + 1):
        f = os.path.join(d, "%s.%d.json" % (c, r))
        if not os.path.exists(f):
            continue
        j = json.load(open(f))
        run = j["runs"][0]
        tp.append(run["ok_rps"])
        p99.append(run["latency_ms"]["p99"])
        fl = j.get("fleet")
        if fl:
            a = [x["answered"] for x in fl["daemons"]]
            shares.append([x / sum(a) for x in a] if sum(a) else a)
    res[c] = (statistics.median(tp) if tp else None, statistics.median(p99) if p99 else None,
              shares)
base = res["plain"][0]
print("fleet_bench: identity, closed loop, 64 outstanding, 1 KiB; %d round(s) of %s s; "
      "medians" % (rounds, sys.argv[3]))
print("%-8s %12s %8s %10s  %s" % ("case", "OK req/s", "ratio", "p99 ms", "shares (per daemon)"))
for c in cases:
    tp, p99, shares = res[c]
    if tp is None:
        print("%-8s %12s" % (c, "n/a"))
        continue
    sh = ""
    if shares:
        sh = " ".join("%.3f" % statistics.median(s[i] for s in shares)
                      for i in range(len(shares[0])))
    print("%-8s %12.1f %8.3f %10.3f  %s" % (c, tp, tp / base if base else float("nan"),
                                            p99, sh))
PY
