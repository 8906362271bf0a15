#!/usr/bin/env bash
# bundle_test.sh (suite perf): the GPU bundle (tests/gpu/bundle.sh) made from this build and
# its run.sh run here, so that a borrowed GPU machine's few minutes are not spent on a broken
# script. There is no GPU here: the daemon step runs with --daemon-cuda off (both daemons on
# the CPU device) at the test size, which exercises everything but CUDA itself: the payload
# unpacks and its programs load, the placeholder weights are the build's bytes, the daemons
# start on free loopback ports, mediabatch-perf drives each model, the checks pass on a good
# run and FAIL on a bad one (a model nobody serves), each daemon drains and exits 0, and with
# $OUT set only summary.txt, daemon.txt and logs.tar.gz are left there (the device tool
# brings back at most 8 files).
#
# Needs MB_BUILD_ROOT and MB_SOURCE_ROOT (meson sets them); skips (77) on a build without
# CUDA, which bundle.sh refuses.
set -uo pipefail

build=${MB_BUILD_ROOT:?MB_BUILD_ROOT: the meson build dir}
src=${MB_SOURCE_ROOT:?MB_SOURCE_ROOT: the source tree}
if ! grep -q '^#define MB_HAVE_CUDA 1' "$build/mb_build_config.h" 2>/dev/null; then
	echo "SKIP: $build is not a CUDA build: tests/gpu/bundle.sh refuses it"
	exit 77
fi

tmp=$(mktemp -d /tmp/mb_bundle_test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
check() { # check WHAT COMMAND...: ok or FAIL
	if "${@:2}"; then
		echo "ok: $1"
	else
		echo "FAIL: $1"
		failed=$((failed + 1))
	fi
}
has() { grep -q -- "$2" "$1"; }

echo "== bundle.sh --no-compile"
if ! "$src/tests/gpu/bundle.sh" --build "$build" --out "$tmp/bundle" --no-compile \
	>"$tmp/bundle.log" 2>&1; then
	cat "$tmp/bundle.log"
	echo "FAIL: bundle.sh"
	exit 1
fi
tail -n 3 "$tmp/bundle.log"
for f in run.sh payload.tar.gz tests.sh MANIFEST.txt weights.sha256; do
	check "the bundle has $f" test -s "$tmp/bundle/$f"
done
check "the weights' sums cover the published layout" has "$tmp/bundle/weights.sha256" 'weights/whisper/model.safetensors'
check "mediabatchd and mediabatch-perf are in the payload" \
	sh -c "tar tzf '$tmp/bundle/payload.tar.gz' | grep -qx 'build/mediabatchd' &&
		tar tzf '$tmp/bundle/payload.tar.gz' | grep -qx 'build/mediabatch-perf'"

run() { # run OUTDIR ARGS...: run.sh as on the GPU machine, $OUT set; the status
	local o=$1
	shift
	mkdir -p "$o"
	OUT=$o MB_REPO_ROOT=$src timeout 600 bash "$tmp/bundle/run.sh" --work "$tmp/work" "$@" \
		>"$o.log" 2>&1
}

echo "== run.sh: gpu/device-probe and the daemon step (logmel, clap), CUDA off"
run "$tmp/good" --daemon-cuda off --daemon-size tiny --daemon-seconds 1 \
	--daemon-models logmel,clap gpu/device-probe daemon
rc=$?
grep -E '^\[.*(PASS|SKIP|FAIL|RESULT|daemon (gpu|cpu) )' "$tmp/good.log" | cut -c1-200
check "run.sh exits 0 (got $rc)" test "$rc" -eq 0
check "\$OUT holds only summary.txt, daemon.txt and logs.tar.gz" \
	test "$(cd "$tmp/good" && ls | tr '\n' ' ')" = "daemon.txt logs.tar.gz summary.txt "
check "the summary says RESULT: OK" has "$tmp/good/summary.txt" 'RESULT: OK'
check "gpu/device-probe ran (SKIP without a GPU, PASS with one)" \
	grep -qE '(PASS|SKIP) gpu/device-probe' "$tmp/good/summary.txt"
check "the daemon step passed" has "$tmp/good/summary.txt" 'PASS daemon: every request answered once'
for m in logmel clap; do
	check "daemon.txt has $m's throughput on both daemons" \
		awk -v m="$m" '$1 == m && $2 + 0 > 0 && $3 + 0 > 0 {f = 1} END {exit !f}' "$tmp/good/daemon.txt"
	check "$m: every request answered once, on both daemons" \
		test "$(grep -c "daemon \(gpu\|cpu\) $m: .*missing 0, stray 0" "$tmp/good/summary.txt")" -eq 2
done
check "both daemons drained and exited 0" \
	test "$(grep -c 'daemon \(gpu\|cpu\) drained and exited 0' "$tmp/good/summary.txt")" -eq 2
mkdir -p "$tmp/logs"
tar -C "$tmp/logs" -xzf "$tmp/good/logs.tar.gz"
for f in summary.txt daemon.txt daemon-gpu.log daemon-cpu.log daemon-gpu-logmel.csv \
	daemon-cpu-clap.txt gpu-device-probe.log; do
	check "logs.tar.gz has $f" test -s "$tmp/logs/$f"
done

echo "== run.sh killed with SIGKILL mid-run (the device tool's limit): \$OUT keeps the summary and the logs of the steps done"
mkdir -p "$tmp/killed"
OUT=$tmp/killed MB_REPO_ROOT=$src setsid bash "$tmp/bundle/run.sh" --work "$tmp/work" \
	--daemon-cuda off --daemon-size tiny --daemon-seconds 30 --daemon-models logmel \
	gpu/device-probe daemon >"$tmp/killed.log" 2>&1 &
pid=$!
for _ in $(seq 600); do # until the daemon step has started its first burst (60 s at most)
	grep -q 'start daemon gpu\|daemon gpu logmel\|mediabatch-perf' "$tmp/killed.log" 2>/dev/null && break
	sleep 0.1
done
sleep 1
kill -KILL -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "the summary is in \$OUT after a SIGKILL (it was written there only at exit)" \
	grep -qE '(PASS|SKIP) gpu/device-probe' "$tmp/killed/summary.txt"
mkdir -p "$tmp/klogs"
check "logs.tar.gz in \$OUT has the steps done before the SIGKILL" \
	sh -c "tar -C '$tmp/klogs' -xzf '$tmp/killed/logs.tar.gz' && test -s '$tmp/klogs/gpu-device-probe.log'"

echo "== run.sh: a model nobody serves must fail the step"
run "$tmp/bad" --no-pack --out "$tmp/bad" --daemon-cuda off --daemon-size tiny \
	--daemon-seconds 1 --daemon-models logmel,nosuchmodel daemon
rc=$?
grep -E '^\[.*(FAIL|RESULT)' "$tmp/bad.log" | cut -c1-200
check "run.sh exits 1 (got $rc)" test "$rc" -eq 1
check "the failure names the model and the answers" \
	grep -q 'FAIL daemon: gpu nosuchmodel: .* answered but not OK' "$tmp/bad/summary.txt"
check "logmel still passed its checks" \
	grep -q 'daemon gpu logmel: .*missing 0, stray 0' "$tmp/bad/summary.txt"
check "--no-pack leaves the logs in --out" test -s "$tmp/bad/daemon-gpu-nosuchmodel.csv"
check "the summary says RESULT: FAILED" has "$tmp/bad/summary.txt" 'RESULT: FAILED: the daemon step failed'

if [ "$failed" -ne 0 ]; then
	echo "$failed check(s) failed; run.sh's output:"
	tail -n 60 "$tmp/good.log" "$tmp/bad.log"
	exit 1
fi
echo "all checks passed"
