#!/usr/bin/env bash
# compare.sh: run the baselines and mediabatch's own figures side by side on this machine and
# print ONE table of ratios (ours / baseline, both measured in this run):
#
#   identity end to end (identity_bench, and mediabatch-perf's closed loop) vs a raw ZeroMQ
#       DEALER/ROUTER echo answering with the same sizes (1 KiB requests, 64 outstanding)
#   mb_ring (ring_bench, 2 threads SP/SC, burst 32) vs DPDK's own dpdk-test
#       ring_perf_autotest (two cores, SP/SC bulk of 32), cycles per object
#   the micro-benchmarks' in-run ratios: ring_bench (mb_ring vs rte_ring), sem_bench (mb_sem
#       vs mutex+condvar), identity_bench (mediabatchd vs the echo)
#   dpdk-testpmd --forward-mode=rxonly vs mediabatch's UDP ingest: taken from
#       build/perf/ingest_bench: one UDP rx core vs dpdk-testpmd rxonly (Mpps)
#
# usage: perf/compare.sh [--quick] [--build DIR]
#   --quick     short runs (the test suite's "perf" suite uses it; under a minute)
#   --build DIR the meson build directory (default: build/ beside this script's parent)
# Every step runs under `timeout`; the whole script takes a few minutes at most (--quick:
# well under one). Traffic goes to 127.0.0.1 only. Exit 0 when every row of ours was
# measured, 1 when one of our programs failed (rows for baselines that are missing say n/a).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--build) build=$2; shift ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--quick] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done

for p in perf/ring_bench perf/sem_bench perf/identity_bench mediabatch-perf mediabatchd; do
	if [ ! -x "$build/$p" ]; then
		echo "compare: $build/$p is missing: build first (meson setup build && meson compile -C build)" >&2
		exit 2
	fi
done

tmp=$(mktemp -d /tmp/mb_compare_XXXXXX)
daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
rows=()
# row NAME BASELINE OURS UNIT BETTER(higher|lower): the ratio is computed here
row() {
	local ratio
	ratio=$(awk -v b="$2" -v o="$3" 'BEGIN { if (b > 0) printf "%.3f", o / b; else print "n/a" }')
	rows+=("$1|$2|$3|$4|$ratio|$5")
}
row_na() { rows+=("$1|-|-|-|n/a|$2"); }
log() { printf 'compare: %s\n' "$*" >&2; }

if [ "$quick" -eq 1 ]; then
	ib_args=(--quick) rb_args=(--quick) sb_args=(--quick) perf_s=1 limit=40
else
	ib_args=(--runs 5) rb_args=(--runs 9) sb_args=(--runs 7) perf_s=5 limit=180
fi

# ---- identity_bench: mediabatchd identity vs the raw ZeroMQ echo ----
log "identity_bench ${ib_args[*]}"
if timeout "$limit" "$build/perf/identity_bench" "${ib_args[@]}" --daemon "$build/mediabatchd" \
	>"$tmp/identity.txt" 2>&1; then
	echo_rps=$(awk '/^raw ZeroMQ echo/ { print $4 }' "$tmp/identity.txt")
	mb_rps=$(awk '/^mediabatchd identity/ { print $3 }' "$tmp/identity.txt")
	row "identity_bench: mediabatchd identity vs raw ZeroMQ echo" "$echo_rps" "$mb_rps" "req/s" higher
else
	cat "$tmp/identity.txt" >&2
	row_na "identity_bench: mediabatchd identity vs raw ZeroMQ echo" "FAILED"
	echo_rps=0
	failed=1
fi

# ---- mediabatch-perf closed loop against a daemon of our own, same sizes as the echo ----
read -r p_in p_pub p_http < <(python3 - <<'EOF'
import socket
s = [socket.socket() for _ in range(3)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
EOF
)
"$build/mediabatchd" --ingest "tcp://127.0.0.1:$p_in" --publish "tcp://127.0.0.1:$p_pub" \
	--metrics "127.0.0.1:$p_http" --log-level warning >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
ready=0
for _ in $(seq 1 150); do
	if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$p_http/readyz', timeout=1)" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ "$ready" -eq 1 ]; then
	log "mediabatch-perf --outstanding 64 --payload 1024 --duration $perf_s"
	if timeout "$limit" "$build/mediabatch-perf" --endpoint "tcp://127.0.0.1:$p_in" \
		--metrics "127.0.0.1:$p_http" --outstanding 64 --payload 1024 --mix identity \
		--duration "$perf_s" --warmup 0.5 --drain 5 --quiet --json "$tmp/perf.json" \
		>"$tmp/perf.txt" 2>&1; then
		perf_rps=$(python3 -c "import json; print(json.load(open('$tmp/perf.json'))['runs'][0]['throughput_rps'])")
		row "mediabatch-perf: identity closed loop vs raw ZeroMQ echo" "$echo_rps" "$perf_rps" "req/s" higher
	else
		cat "$tmp/perf.txt" >&2
		row_na "mediabatch-perf: identity closed loop vs raw ZeroMQ echo" "FAILED"
		failed=1
	fi
else
	cat "$tmp/daemon.log" >&2
	row_na "mediabatch-perf: identity closed loop vs raw ZeroMQ echo" "FAILED (daemon not ready)"
	failed=1
fi
kill -TERM "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null
daemon_pid=""

# ---- ring_bench, and DPDK's ring_perf_autotest as the outside baseline ----
log "ring_bench ${rb_args[*]}"
if timeout "$limit" "$build/perf/ring_bench" "${rb_args[@]}" >"$tmp/ring.txt" 2>&1; then
	while IFS='|' read -r name raw ours; do
		row "ring_bench: mb_ring vs rte_ring, $name" "$raw" "$ours" "cycles/obj" lower
	done < <(awk '/^(1 thread|2 threads)/ { n = $1; for (i = 2; i <= NF - 3; i++) n = n " " $i;
		print n "|" $(NF-2) "|" $(NF-1) }' "$tmp/ring.txt")
	ours_2t=$(awk '/^2 threads +SP\/SC/ { print $(NF-1) }' "$tmp/ring.txt")
else
	cat "$tmp/ring.txt" >&2
	row_na "ring_bench: mb_ring vs rte_ring" "FAILED"
	failed=1
	ours_2t=""
fi
if command -v dpdk-test >/dev/null 2>&1; then
	lcores=0
	[ "$(nproc)" -ge 2 ] && lcores=0,1
	log "dpdk-test ring_perf_autotest (-l $lcores)"
	if DPDK_TEST=ring_perf_autotest timeout "$limit" dpdk-test --no-huge --no-pci -m 256 \
		-l "$lcores" --file-prefix "mbcompare-$$" --log-level=lib.eal:error \
		>"$tmp/dpdk.txt" 2>&1 </dev/null; then
		dpdk_2t=$(awk '/two physical cores/ { sec = 1 } sec && /legacy APIs: SP\/SC: bulk \(size: 32\)/ { print $NF; exit }' "$tmp/dpdk.txt")
		if [ -n "$dpdk_2t" ] && [ -n "$ours_2t" ]; then
			row "mb_ring (ring_bench) vs dpdk-test ring_perf_autotest, 2 cores SP/SC 32" "$dpdk_2t" "$ours_2t" "cycles/obj" lower
		else
			row_na "mb_ring (ring_bench) vs dpdk-test ring_perf_autotest" "n/a (no 2-core figure: needs 2 CPUs)"
		fi
	else
		tail -5 "$tmp/dpdk.txt" >&2
		row_na "mb_ring (ring_bench) vs dpdk-test ring_perf_autotest" "n/a (dpdk-test failed)"
	fi
else
	row_na "mb_ring (ring_bench) vs dpdk-test ring_perf_autotest" "n/a (dpdk-test not installed: dpdk-dev)"
fi

# ---- sem_bench ----
log "sem_bench ${sb_args[*]}"
if timeout "$limit" "$build/perf/sem_bench" "${sb_args[@]}" >"$tmp/sem.txt" 2>&1; then
	while IFS='|' read -r name base ours; do
		row "sem_bench: mb_sem vs mutex+condvar, $name" "$base" "$ours" "ns/pair" lower
	done < <(awk '/^(uncontended|contended)/ { n = $1; for (i = 2; i <= NF - 3; i++) n = n " " $i;
		print n "|" $(NF-2) "|" $(NF-1) }' "$tmp/sem.txt")
else
	cat "$tmp/sem.txt" >&2
	row_na "sem_bench: mb_sem vs mutex+condvar" "FAILED"
	failed=1
fi

# ---- UDP ingest vs dpdk-testpmd rxonly on the same net_pcap capture (perf/ingest_bench) ----
if [ -x "$build/perf/ingest_bench" ]; then
	if [ "$quick" -eq 1 ]; then ingest_args=(--quick); else ingest_args=(--no-context); fi
	log "ingest_bench ${ingest_args[*]}"
	if timeout "$limit" "$build/perf/ingest_bench" "${ingest_args[@]}" >"$tmp/ingest.txt" 2>&1; then
		base=$(awk '/^dpdk-testpmd rxonly:/ { print $3; exit }' "$tmp/ingest.txt")
		ours=$(awk '/^mediabatch UDP ingest: .* Mpps/ { print $4; exit }' "$tmp/ingest.txt")
		if [ -n "$base" ] && [ -n "$ours" ]; then
			row "UDP ingest, 1 rx core, vs dpdk-testpmd rxonly (net_pcap, 1 KiB)" "$base" "$ours" "Mpps" higher
		else
			cat "$tmp/ingest.txt" >&2
			row_na "UDP ingest vs dpdk-testpmd --forward-mode=rxonly" "n/a (ingest_bench printed no rates)"
		fi
	else
		cat "$tmp/ingest.txt" >&2
		row_na "UDP ingest vs dpdk-testpmd --forward-mode=rxonly" "FAILED (ingest_bench)"
		failed=1
	fi
else
	row_na "UDP ingest vs dpdk-testpmd --forward-mode=rxonly" "n/a (build/perf/ingest_bench not built)"
fi

# ---- the table ----
printf '\nmediabatch vs baselines on %s (%s CPUs), %s, %s\n' "$(hostname)" "$(nproc)" \
	"$(date -u +%Y-%m-%dT%H:%MZ)" "$([ "$quick" -eq 1 ] && echo "--quick: too short to judge" || echo "full runs")"
printf '%-72s %12s %12s %-10s %8s  %s\n' "comparison" "baseline" "ours" "unit" "ratio" "better"
for r in "${rows[@]}"; do
	IFS='|' read -r name base ours unit ratio better <<<"$r"
	printf '%-72s %12s %12s %-10s %8s  %s\n' "$name" "$base" "$ours" "$unit" "$ratio" "$better"
done
printf 'ratio = ours / baseline, both measured in this run; "better" says which way is good.\n'
exit "$failed"
