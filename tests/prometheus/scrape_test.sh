#!/usr/bin/env bash
# scrape_test.sh: a real Prometheus server scrapes a real mediabatchd with the alert rules
# of deploy/prometheus/ loaded, every second. The daemon (CPU only, free loopback ports)
# serves 20 identity requests from the CLI; then Prometheus must see the target up,
# mediabatch_model_ready{model="identity"} 1, the process_* figures, the 20 OK responses,
# and every rule group evaluated with health "ok". The daemon is stopped (SIGTERM: exit 0)
# and Prometheus must then see up == 0 and MediabatchDown pending (its for: is 1m, longer
# than this test; pending proves the rule evaluates on the real series).
# Skips (77) without prometheus or curl. Every wait has a deadline; the whole under 120 s.
set -u

daemon=${MB_DAEMON:?set MB_DAEMON to the mediabatchd binary}
cli=${MB_CLI:?set MB_CLI to the mediabatch binary}
src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
rules=$src/deploy/prometheus/mediabatch-rules.yml
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

for t in prometheus curl; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t not found (deploy/install-deps.sh installs it)"
		exit 77
	fi
done

tmp=$(mktemp -d)
dpid=
ppid_=
start=$(date +%s)
cleanup() {
	[ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
	[ -n "$ppid_" ] && kill -TERM "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$tmp/daemon.log" ] && tail -n 30 "$tmp/daemon.log" | sed 's/^/  daemon: /'
	[ -f "$tmp/prometheus.log" ] && tail -n 30 "$tmp/prometheus.log" | sed 's/^/  prometheus: /'
	exit 1
}

read -r p1 p2 p3 p4 < <($py -c '
import socket
s = [socket.socket() for _ in range(4)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
prom=http://127.0.0.1:$p4

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.25 s until it succeeds.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s) + secs))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within $secs s"
		sleep 0.25
	done
}

# query PROMQL: the first sample's value of an instant query ("" when none).
query() {
	curl -s --max-time 2 -G "$prom/api/v1/query" --data-urlencode "query=$1" |
		$py -c 'import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
query_is() { [ "$(query "$1")" = "$2" ]; }
query_present() { [ -n "$(query "$1")" ]; }
query_ge() { $py -c 'import sys; v = sys.argv[1]; sys.exit(0 if v and float(v) >= float(sys.argv[2]) else 1)' "$(query "$1")" "$2"; }

# every rule of every group evaluated, and healthy
rules_ok() {
	curl -s --max-time 2 "$prom/api/v1/rules" | $py -c 'import json, sys
try:
    g = json.load(sys.stdin)["data"]["groups"]
except Exception:
    sys.exit(1)
rules = [r for x in g for r in x["rules"]]
bad = [(r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"]
if len(g) < 2 or not rules or bad:
    print("rules not all ok:", len(g), "groups", bad, file=sys.stderr)
    sys.exit(1)'
}
target_health() {
	curl -s --max-time 2 "$prom/api/v1/targets" | $py -c 'import json, sys
try:
    t = json.load(sys.stdin)["data"]["activeTargets"]
    print(t[0]["health"] if len(t) == 1 else "")
except Exception:
    print("")'
}
target_is() { [ "$(target_health)" = "$1" ]; }
alert_state() {
	curl -s --max-time 2 "$prom/api/v1/alerts" | $py -c 'import json, sys
try:
    a = [x for x in json.load(sys.stdin)["data"]["alerts"]
         if x["labels"].get("alertname") == sys.argv[1]]
    print(a[0]["state"] if a else "")
except Exception:
    print("")' "$1"
}
alert_active() { case "$(alert_state "$1")" in pending | firing) return 0 ;; *) return 1 ;; esac; }

# ---- the daemon ----
cat >"$tmp/mediabatch.yaml" <<YAML
weights_dir: $(dirname "$daemon")/weights
devices:
  cuda: {mode: "off"}
YAML
"$daemon" --ingest "tcp://127.0.0.1:$p1" --publish "tcp://127.0.0.1:$p2" \
	--metrics "127.0.0.1:$p3" --config "$tmp/mediabatch.yaml" >"$tmp/daemon.log" 2>&1 &
dpid=$!
daemon_ready() {
	kill -0 "$dpid" 2>/dev/null || fail "mediabatchd exited during start-up"
	[ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p3/readyz")" = 200 ]
}
wait_for 30 "mediabatchd ready (/readyz)" daemon_ready
curl -s --max-time 2 "http://127.0.0.1:$p3/metrics" | grep -q '^mediabatch_model_ready{model="identity"} 1$' ||
	fail "/metrics has no mediabatch_model_ready{model=\"identity\"} 1"
out=$(timeout 30 "$cli" send --endpoint "tcp://127.0.0.1:$p1" --tensor 2x2 --model identity \
	--count 20 2>&1) || fail "mediabatch send: $out"
echo "daemon on 127.0.0.1:$p1, metrics on :$p3; 20 identity requests sent"

# ---- Prometheus ----
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: mediabatch
    static_configs:
      - targets: ["127.0.0.1:$p3"]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$p4" >"$tmp/prometheus.log" 2>&1 &
ppid_=$!
prom_ready() {
	kill -0 "$ppid_" 2>/dev/null || fail "prometheus exited during start-up"
	curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$prom/-/ready" | grep -q 200
}
wait_for 30 "prometheus ready" prom_ready
prometheus --version 2>&1 | head -n 1

wait_for 20 "the target up in /api/v1/targets" target_is up
wait_for 10 "up{job=\"mediabatch\"} == 1" query_is 'up{job="mediabatch"}' 1
wait_for 10 "mediabatch_model_ready{model=\"identity\"} == 1" \
	query_is 'mediabatch_model_ready{job="mediabatch",model="identity"}' 1
for m in process_resident_memory_bytes process_virtual_memory_bytes process_open_fds \
	process_max_fds process_cpu_seconds_total process_start_time_seconds; do
	wait_for 10 "$m present" query_present "$m{job=\"mediabatch\"}"
done
query_ge 'process_resident_memory_bytes{job="mediabatch"}' 1 || fail "process_resident_memory_bytes is 0"
query_ge "process_start_time_seconds{job=\"mediabatch\"}" "$((start - 5))" ||
	fail "process_start_time_seconds is before this test started"
wait_for 10 "20 OK identity responses" \
	query_ge 'sum(mediabatch_responses_total{job="mediabatch",model="identity",status="OK"})' 20
wait_for 10 "every rule evaluated with health ok" rules_ok
# MediabatchAbsent (absent(up{job="mediabatch"})) may be pending before the first scrape; with
# the target there it must not be (its firing case is in mediabatch-rules.test.yml).
absent_inactive() { ! alert_active MediabatchAbsent; }
wait_for 5 "MediabatchAbsent inactive while the target is scraped" absent_inactive
echo "prometheus: target up, identity ready, process_* present, 20 OK, rules healthy, MediabatchAbsent inactive"

# ---- the daemon stops: up goes 0, MediabatchDown evaluates ----
kill -TERM "$dpid"
deadline=$(($(date +%s) + 30))
while kill -0 "$dpid" 2>/dev/null; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "mediabatchd still running 30 s after SIGTERM"
	sleep 0.1
done
wait "$dpid"
rc=$?
dpid=
[ "$rc" -eq 0 ] || fail "mediabatchd: SIGTERM, exit $rc, not 0"
wait_for 20 "the target down in /api/v1/targets" target_is down
wait_for 10 "up{job=\"mediabatch\"} == 0" query_is 'up{job="mediabatch"}' 0
wait_for 10 "MediabatchDown pending or firing" alert_active MediabatchDown
wait_for 5 "every rule still healthy" rules_ok
echo "daemon stopped (exit 0): up == 0, MediabatchDown $(alert_state MediabatchDown)"
echo "done in $(($(date +%s) - start)) s"
