#!/usr/bin/env bash
# run-target.sh: one short, bounded run of a libFuzzer target, as suite `fuzz` runs it.
#
#   run-target.sh FUZZER SEEDS WORKDIR SECONDS RUNS MAX_LEN [DICT]
#
# Runs FUZZER over the checked-in seed corpus SEEDS (read only: new inputs go to
# WORKDIR/corpus, emptied first, so every run starts from the same seeds) for at most
# SECONDS seconds or RUNS executions, whichever comes first, with a fixed seed. Any crash,
# failed check, sanitizer report, leak, timeout (10 s per input) or memory blow-up
# (2 GiB) fails it: the input is saved as WORKDIR/crash-* (or leak-*, timeout-*, oom-*),
# reproducible with `FUZZER WORKDIR/crash-...`. Exit 0 only for a clean run.
set -uo pipefail

if [ $# -lt 6 ]; then
	echo "usage: $0 FUZZER SEEDS WORKDIR SECONDS RUNS MAX_LEN [DICT]" >&2
	exit 2
fi
fuzzer=$1 seeds=$2 work=$3 seconds=$4 runs=$5 max_len=$6 dict=${7:-}

rm -rf "$work/corpus"
mkdir -p "$work/corpus" || exit 1
rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*

args=(-seed=1 -max_total_time="$seconds" -runs="$runs" -max_len="$max_len" -timeout=10
	-rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1
	-artifact_prefix="$work/")
[ -n "$dict" ] && args+=(-dict="$dict")

# UBSan reports are fatal (the build also says -fno-sanitize-recover); leaks are checked
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"

echo "$fuzzer ${args[*]} $work/corpus $seeds"
"$fuzzer" "${args[@]}" "$work/corpus" "$seeds"
rc=$?
# libFuzzer's own default for a finding is 77, which meson would read as a skip
if [ "$rc" -eq 77 ]; then
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
		[ -e "$f" ] && echo "finding saved: $f (reproduce: $fuzzer $f)"
	done
fi
exit "$rc"
