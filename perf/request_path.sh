#!/usr/bin/env bash
# request_path.sh: the request path's benchmarks (issue 14), each against a baseline measured
# in the same run on this machine:
#
#   1. identity closed loop (perf/identity_bench: one DEALER, 64 outstanding, 1 KiB payloads,
#      every reply checked) against a raw single-threaded ZeroMQ ROUTER echo, medians of
#      --runs alternating runs, under each placement side by side: every stage on one thread
#      (single: what the embedded default picks on a small machine) and one thread per stage
#      (per-stage). Bar: >= 0.85 of the echo. Also the server CPU per request of both.
#   2. open loop at half the echo's peak rate (mediabatch-perf --rate, Poisson arrivals,
#      latency from each request's intended send time): identity's p99 against its
#      max_delay_us + 1 ms (500 us + 1 ms with the default config), with the stage breakdown
#      from /metrics; and first the same generator at the same rate against the raw echo
#      (identity_bench --echo-only), whose p99 is the machine's and the generator's own
#      tail: the daemon's p99 is also given as its excess over the echo's.
#   3. mixed closed loop (identity:3, logmel:1, 64 outstanding): this build's daemon against a
#      baseline daemon (--baseline PATH: e.g. the mediabatchd of an older commit, built in a
#      worktree), alternating, medians of --runs; "no worse than before" means a ratio >= 1
#      within this machine's noise. Skipped without --baseline.
#
# usage: perf/request_path.sh [--build DIR] [--baseline PATH] [--runs N] [--quick]
# Every step runs under `timeout`; traffic goes to 127.0.0.1 only. Results and the command
# are recorded in perf/RESULTS.md by hand.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
baseline=""
runs=3
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--baseline) baseline=$2; shift ;;
	--runs) runs=$2; shift ;;
	--quick) quick=1 ;;
	-h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--build DIR] [--baseline PATH] [--runs N] [--quick]" >&2; exit 2 ;;
	esac
	shift
done
for p in perf/identity_bench mediabatch-perf mediabatchd; do
	if [ ! -x "$build/$p" ]; then
		echo "request_path: $build/$p is missing: build first" >&2
		exit 2
	fi
done
if [ "$quick" -eq 1 ]; then
	ib=(--requests 5000 --runs 1) dur=2 runs=1
else
	ib=(--runs "$runs") dur=8
fi

tmp=$(mktemp -d /tmp/mb_request_path_XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { printf 'request_path: %s\n' "$*" >&2; }

# A free loopback TCP port (the kernel picks it; a race with another program is possible
# and shows as a daemon that does not start).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start DAEMON [ARGS...]: start a daemon on free ports and wait for /readyz
start() {
	local bin=$1
	shift
	p1=$(free_port) p2=$(free_port) p3=$(free_port)
	# identity and logmel only: the weighted models need weight files an older build may lack
	printf 'devices:\n  cuda: {mode: "off"}\nmodels:\n  - {name: whisper, enabled: false}\n  - {name: clap, enabled: false}\n  - {name: videomae, enabled: false}\n' >"$tmp/cfg.yaml"
	"$bin" --config "$tmp/cfg.yaml" --ingest "tcp://127.0.0.1:$p1" --publish "tcp://127.0.0.1:$p2" \
		--metrics "127.0.0.1:$p3" --log-level warning "$@" >"$tmp/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$p3/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$tmp/daemon.log" >&2
	stop
	return 1
}
stop() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=""
}
json() { # json FILE EXPR: a field of mediabatch-perf's JSON (python3)
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=d['runs'][-1]; print($2)" "$1"
}

# ---- 1. identity closed loop, both placements ----
declare -A ratio echo_rps mb_rps
for place in single per-stage; do
	log "identity_bench ${ib[*]} --placement $place"
	if ! timeout 600 "$build/perf/identity_bench" "${ib[@]}" --placement "$place" \
		--daemon "$build/mediabatchd" >"$tmp/ib-$place.txt" 2>"$tmp/ib-$place.err"; then
		cat "$tmp/ib-$place.txt" "$tmp/ib-$place.err" >&2
	fi
	echo "== identity closed loop, placement $place"
	cat "$tmp/ib-$place.txt"
	ratio[$place]=$(awk '/^throughput ratio/ { sub(";", "", $6); print $6 }' "$tmp/ib-$place.txt")
	echo_rps[$place]=$(awk '/^raw ZeroMQ echo/ { print $4 }' "$tmp/ib-$place.txt")
	mb_rps[$place]=$(awk '/^mediabatchd identity/ { print $3 }' "$tmp/ib-$place.txt")
done

# ---- 2. open loop at half the echo's peak ----
peak=${echo_rps[single]:-0}
rate=$(awk -v p="$peak" 'BEGIN { printf "%d", p / 2 }')
echo_p99=n/a
if [ "$rate" -gt 0 ]; then
	# the same generator against the raw echo at the same rate: the tail of the machine and
	# of the generator alone (no server work but ZeroMQ's)
	log "mediabatch-perf --rate $rate against the raw echo"
	"$build/perf/identity_bench" --echo-only $((dur + 30)) >"$tmp/echo.ep" 2>"$tmp/echo.err" &
	echo_pid=$!
	for _ in $(seq 50); do [ -s "$tmp/echo.ep" ] && break; sleep 0.1; done
	if [ -s "$tmp/echo.ep" ]; then
		timeout 120 "$build/mediabatch-perf" --endpoint "$(head -1 "$tmp/echo.ep")" \
			--metrics off --rate "$rate" --duration "$dur" --warmup 1 --quiet \
			--json "$tmp/open-echo.json" >"$tmp/open-echo.txt" 2>&1
		echo "== open loop at $rate req/s against the raw echo (the baseline)"
		grep -E '^(throughput|latency|generator)' "$tmp/open-echo.txt"
		echo_p99=$(json "$tmp/open-echo.json" "r['latency_ms']['p99']" 2>/dev/null || echo n/a)
	fi
	kill -TERM "$echo_pid" 2>/dev/null
	wait "$echo_pid" 2>/dev/null
fi
if [ "$rate" -gt 0 ] && start "$build/mediabatchd"; then
	log "mediabatch-perf --rate $rate (half the echo's $peak req/s)"
	timeout 120 "$build/mediabatch-perf" --endpoint "tcp://127.0.0.1:$p1" \
		--metrics "127.0.0.1:$p3" --rate "$rate" --duration "$dur" --warmup 1 --quiet \
		--json "$tmp/open.json" >"$tmp/open.txt" 2>&1
	stop
	echo "== open loop at $rate req/s (half the echo's peak of $peak req/s)"
	cat "$tmp/open.txt"
	p99=$(json "$tmp/open.json" "r['latency_ms']['p99']" 2>/dev/null || echo n/a)
	echo "identity p99 $p99 ms; bar: max_delay_us (500 us) + 1 ms = 1.5 ms ... $(awk -v p="$p99" 'BEGIN { print (p != "n/a" && p <= 1.5) ? "met" : "MISSED" }')"
	echo "the raw echo's p99 through the same generator at the same rate: $echo_p99 ms; the daemon's p99 above it: $(awk -v p="$p99" -v e="$echo_p99" 'BEGIN { if (p == "n/a" || e == "n/a") print "n/a"; else printf "%.3f ms (%s 1.5 ms)", p - e, (p - e <= 1.5) ? "within" : "over" }')"
else
	echo "== open loop: not run (no echo peak, or the daemon did not start)"
fi

# ---- 3. mixed identity + logmel: this build vs a baseline daemon ----
if [ -n "$baseline" ]; then
	: >"$tmp/mixed.txt"
	for i in $(seq "$runs"); do
		for who in baseline ours; do
			bin=$build/mediabatchd
			[ "$who" = baseline ] && bin=$baseline
			start "$bin" || continue
			timeout 120 "$build/mediabatch-perf" --endpoint "tcp://127.0.0.1:$p1" \
				--metrics "127.0.0.1:$p3" --mix identity:3,logmel:1 --outstanding 64 \
				--duration "$dur" --warmup 1 --quiet --json "$tmp/mixed-$who-$i.json" \
				>/dev/null 2>&1
			stop
			echo "$who $(json "$tmp/mixed-$who-$i.json" "r['throughput_rps'], r['latency_ms']['p99']" | tr -d '(),')" >>"$tmp/mixed.txt"
		done
	done
	echo "== mixed identity:3 logmel:1, closed loop 64 outstanding, medians of $runs alternating runs"
	awk '
		{ n[$1]++; t[$1, n[$1]] = $2; l[$1, n[$1]] = $3 }
		function med(a, who, k,   v, i, j, x) {
			for (i = 1; i <= k; i++) v[i] = a[who, i]
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
			return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
		}
		END {
			tb = med(t, "baseline", n["baseline"]); to = med(t, "ours", n["ours"])
			lb = med(l, "baseline", n["baseline"]); lo = med(l, "ours", n["ours"])
			printf "%-10s %12s %10s\n", "", "req/s", "p99 ms"
			printf "%-10s %12.0f %10.3f\n", "baseline", tb, lb
			printf "%-10s %12.0f %10.3f\n", "ours", to, lo
			printf "throughput ratio (ours / baseline): %.3f; p99 ratio: %.3f\n", to / tb, lo / lb
		}' "$tmp/mixed.txt"
fi

echo "== summary"
for place in single per-stage; do
	echo "identity closed loop, placement $place: echo ${echo_rps[$place]:-n/a} req/s, mediabatchd ${mb_rps[$place]:-n/a} req/s, ratio ${ratio[$place]:-n/a} (bar 0.85)"
done
