#!/usr/bin/env bash
# Build mediabatch and run every test, the way CI does (.ci/run calls this through the
# README's test command):
#
#   style        clang-format --dry-run on every C file (.clang-format)
#   build/       debugoptimized, warnings as errors: suites unit, e2e, dpdk, gpu, perf, faults,
#                fleet (five daemons in network namespaces; skips with its reason where not root),
#                container (the image built with debootstrap and podman and its daemon asked;
#                minutes when cold; skips with its reason where it cannot run);
#                then e2e again with every stage on a thread of its own (MB_E2E_PLACEMENT:
#                the harness starts each daemon with --placement; single for the others,
#                per-stage under ThreadSanitizer)
#                (dpdk: UDP ingest on net_pcap, and live over a veth pair in network
#                 namespaces, which skips with its reason where not root)
#                (gpu skips with its reason where there is no GPU; perf runs each benchmark
#                 with --quick so they cannot rot: no timing is asserted)
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer on: suites
#                unit, e2e, dpdk and faults (the daemon itself runs instrumented and must exit
#                leak-free)
#   build-tsan/  ThreadSanitizer: suites concurrency (the multi-threaded stress programs), e2e,
#                dpdk and faults (the daemon itself runs instrumented: any report ends it, and the
#                harness fails the test at once with the daemon's log). libzmq is not
#                instrumented: tests/tsan.supp leaves its internals out, and the one buffer
#                it hands between threads for us carries an annotation (core/mb_tsan.h)
#   build-fuzz/  clang (CC=clang), ASan+UBSan, libFuzzer: suite fuzz runs each fuzz target
#                of tests/fuzz/ for a fixed short time over its checked-in corpus; any
#                crash, failed check, sanitizer report or leak fails it (docs/development.md,
#                "Fuzzing")
#
# Options: --quick  plain build only (no sanitizer builds)
# Ends with one line "N passed, N failed, N skipped" and exits non-zero if anything failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

quick=0
for arg in "$@"; do
	case "$arg" in
	--quick) quick=1 ;;
	*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
	esac
done

jobs=$(nproc 2>/dev/null || echo 2)
passed=0 failed=0 skipped=0
failures=()

section() { printf '\n=== %s ===\n' "$*"; }

# configure DIR [meson options...]: set up a build dir, or re-apply options to an existing one.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@"
	fi
}

# count DIR NAME: add the results in DIR's meson test log to the totals, and name each failed
# test among the failures (CI shows only the end of this output).
count() {
	local log="$1/meson-logs/testlog.json" p f s
	[ -f "$log" ] || return 0
	read -r p f s < <(python3 - "$log" <<'EOF'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
EOF
)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	local name
	while IFS= read -r name; do
		[ -n "$name" ] && failures+=("$2: $name")
	done < <(python3 - "$log" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP"):
        print("%s %s (%.0f s)" % (r.get("name"), r.get("result"), r.get("duration") or 0))
EOF
)
}

# run NAME DIR SUITES...: build DIR and run the suites, verbose (CUnit summaries shown).
run() {
	local name=$1 dir=$2
	shift 2
	local suites=()
	for s in "$@"; do suites+=(--suite "$s"); done
	section "$name: build ($dir)"
	if ! meson compile -C "$dir"; then
		failures+=("$name: build failed")
		failed=$((failed + 1))
		return
	fi
	section "$name: tests (${*})"
	rm -f "$dir/meson-logs/testlog.json"
	if ! meson test -C "$dir" "${suites[@]}" --num-processes "$jobs" --verbose \
		--print-errorlogs; then
		failures+=("$name: tests failed (see $dir/meson-logs/testlog.txt)")
	fi
	count "$dir" "$name"
}

section "style: clang-format"
bad=()
while IFS= read -r f; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find core net batch gpu tests perf -name '*.[ch]')
if [ "${#bad[@]}" -eq 0 ]; then
	echo "all C files formatted"
	passed=$((passed + 1))
else
	printf 'needs clang-format -i: %s\n' "${bad[@]}"
	failures+=("style: ${#bad[@]} file(s) not formatted")
	failed=$((failed + 1))
fi

configure build -Dwerror=true
# The e2e suite runs under both placements of the polled stages (docs/design.md): every
# poller on one thread (what the embedded default picks on a small machine), and one thread
# per stage; the harness passes MB_E2E_PLACEMENT to each daemon it starts as --placement.
MB_E2E_PLACEMENT=single run "plain" build unit e2e dpdk gpu emu perf faults fleet container
MB_E2E_PLACEMENT=per-stage run "plain, placement per-stage" build e2e

if [ "$quick" -eq 0 ]; then
	configure build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dwerror=true
	MB_E2E_PLACEMENT=single run "asan+ubsan" build-asan unit e2e dpdk faults
	configure build-tsan -Db_sanitize=thread -Db_lundef=false -Dwerror=true
	MB_E2E_PLACEMENT=per-stage run "tsan" build-tsan concurrency e2e dpdk faults
	# The fuzz targets need clang: a build-fuzz/ made with another compiler is made again.
	# -Wno-format-nonliteral: clang's -Wformat=2 also flags vsnprintf() in va_list helpers
	# that have no format attribute, which gcc does not.
	if [ -f build-fuzz/build.ninja ] && ! grep -q '^ command = clang ' build-fuzz/build.ninja; then
		rm -rf build-fuzz
	fi
	CC=clang configure build-fuzz -Dfuzz=enabled -Db_sanitize=address,undefined \
		-Db_lundef=false "-Dc_args=-fno-sanitize-recover=all -Wno-format-nonliteral" \
		-Dwerror=true
	run "fuzz" build-fuzz fuzz
fi

section "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "${#failures[@]}" -eq 0 ]
