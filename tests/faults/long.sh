#!/usr/bin/env bash
# The fault suite's long form: each program of the meson suite `faults`, one at a time, with
# MB_FAULTS_SECONDS set, then one table of what ran and what held.
#
#   tests/faults/long.sh [--build DIR] [--seconds S] [--repeat R] [TEST...]
#
#   --build DIR   a configured build directory (default: build); it is compiled first
#   --seconds S   how long each case runs (default 120): cases 1, 5 and 6 keep their load up
#                 for S seconds; cases 2, 3 and 4 repeat for S seconds (a fresh daemon for
#                 each run of 2 and 3; 4 kills client after client on one daemon)
#   --repeat R    at least R runs of the repeated cases (MB_FAULTS_REPEAT; default: their
#                 short-form counts, 10, 20 and 1; 3, 6 and 1 under a sanitizer)
#   TEST...       meson test names (default: the whole suite), e.g. faults/overload
#
# The whole run takes about 6 x S seconds (six tests, one case each) plus start-up.
# Each case prints a line "FAULTS-SUMMARY|case|seconds|runs|requests|exactly once|RSS MiB
# warm>end (peak)|fds|threads|notes"; the table below is made of them. The full output is
# kept in DIR/meson-logs/faults-long-<UTC time>.txt. Exits non-zero if a program failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

build=build seconds=120 repeat="" tests=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	-*) echo "usage: $0 [--build DIR] [--seconds S] [--repeat R] [TEST...]" >&2; exit 2 ;;
	*) tests+=("$1"); shift ;;
	esac
done
case "$seconds" in
'' | *[!0-9]*) echo "$0: --seconds takes a whole number of seconds" >&2; exit 2 ;;
esac
if [ ! -f "$build/build.ninja" ]; then
	echo "$0: $build is not a configured build directory (meson setup $build)" >&2
	exit 2
fi

meson compile -C "$build" >/dev/null || { echo "$0: the build failed" >&2; exit 1; }

export MB_FAULTS_SECONDS=$seconds
[ -n "$repeat" ] && export MB_FAULTS_REPEAT=$repeat
# meson's limits are for the short form: stretch them to twice S, plus a margin for
# start-up, the last run of a repeated case, the drains and the checks
mult=$(( (2 * seconds + 300) / 150 + 1 ))
log="$build/meson-logs/faults-long-$(date -u +%Y%m%d-%H%M%S).txt"
selection=(--suite faults)
[ "${#tests[@]}" -gt 0 ] && selection=("${tests[@]}")

echo "fault suite, long form: MB_FAULTS_SECONDS=$seconds${repeat:+ MB_FAULTS_REPEAT=$repeat}," \
	"build $build, $(nproc) CPUs; output in $log"
start=$(date +%s)
meson test -C "$build" --no-rebuild "${selection[@]}" --num-processes 1 \
	--timeout-multiplier "$mult" --verbose >"$log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))

# each test's result line (meson repeats the failed ones in its summary: once each)
grep -E '^ *[0-9]+/[0-9]+ .*(OK|FAIL|TIMEOUT|SKIP)' "$log" | awk '!seen[$4]++' | sed 's/^ */  /'
echo
printf '%-36s %8s %5s %11s %6s %-24s %-20s %-16s %s\n' case seconds runs requests once \
	"RSS MiB warm>end" fds threads notes
grep -h '^FAULTS-SUMMARY|' "$log" | while IFS='|' read -r _ name secs runs reqs once rss fds thr notes; do
	printf '%-36s %8s %5s %11s %6s %-24s %-20s %-16s %s\n' "$name" "$secs" "$runs" "$reqs" \
		"$once" "$rss" "$fds" "$thr" "$notes"
done
echo
echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(
	git diff --quiet 2>/dev/null || echo ' + uncommitted changes'): took ${took} s;" \
	"meson test exit status $rc"
exit "$rc"
