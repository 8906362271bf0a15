#!/usr/bin/env bash
# long-run.sh: run one fuzz target for many executions on every core, then measure how much
# of its parser the corpus it built covers (docs/development.md, "Fuzzing").
#
#   tests/fuzz/long-run.sh [options] TARGET [EXECUTIONS]
#
#   TARGET       proto, udp, config, wav or weights (tests/fuzz/TARGET_fuzz.c)
#   EXECUTIONS   in total over all jobs (default 100000000); each of the J jobs runs
#                EXECUTIONS / J of them
#   -j N         jobs and workers (default: the number of CPUs)
#   -t SECONDS   stop each job after this long even if it has not done its share
#                (default 3600)
#   -w DIR       work directory (default build-fuzz/tests/fuzz/TARGET-long): the corpus it
#                grows (WORK/corpus, emptied first unless --resume), the jobs' logs
#                (WORK/fuzz-N.log), findings (WORK/crash-*, leak-*, timeout-*, oom-*), the
#                coverage profile and WORK/summary.txt
#   --resume     keep WORK/corpus from an earlier run instead of starting from the seeds
#   --no-coverage  skip the coverage build and report
#
# Builds what it needs (only this target): build-fuzz/ (clang, ASan+UBSan, as
# tests/run-all.sh configures it) and build-fuzz-cov/ (the same with clang's source-based
# coverage, -fprofile-instr-generate -fcoverage-mapping). After the run, the coverage build
# replays the seeds and the grown corpus once (-runs=0) and llvm-cov reports the line and
# branch coverage of the parser's source files (llvm-profdata and llvm-cov: Debian package
# llvm-14, in deploy/install-deps.sh).
#
# Prints, and writes to WORK/summary.txt: executions, wall time, exec/s, the coverage
# libFuzzer saw at the start and at the end (cov: edges, ft: features), corpus growth,
# findings, and the llvm-cov table. Exits 1 if a job found something.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
max_time=3600
work=""
resume=0
coverage=1
target=""
total=100000000

while [ $# -gt 0 ]; do
	case "$1" in
	-j) jobs=$2; shift 2 ;;
	-t) max_time=$2; shift 2 ;;
	-w) work=$2; shift 2 ;;
	--resume) resume=1; shift ;;
	--no-coverage) coverage=0; shift ;;
	-h|--help) sed -n '2,31p' "$0"; exit 0 ;;
	-*) echo "long-run.sh: unknown option $1" >&2; exit 2 ;;
	*)
		if [ -z "$target" ]; then target=$1; else total=$1; fi
		shift ;;
	esac
done

# parser sources each target covers; max input length as suite fuzz uses it
case "$target" in
proto) sources=(net/proto.c); max_len=128 ;;
udp) sources=(net/udp_wire.c net/reasm.c net/proto.c); max_len=4096 ;;
config) sources=(core/config.c); max_len=16384 ;;
wav) sources=(app/mediabatch/main.c); max_len=4096 ;;
weights) sources=(gpu/weights.c); max_len=4096 ;;
*) echo "usage: $0 [-j N] [-t SECONDS] [-w DIR] [--resume] [--no-coverage] TARGET [EXECUTIONS]" >&2
   echo "TARGET: proto, udp, config, wav or weights" >&2
   exit 2 ;;
esac
case "$total" in
''|*[!0-9]*) echo "long-run.sh: EXECUTIONS must be a number, not '$total'" >&2; exit 2 ;;
esac

cd "$root" || exit 1
# coverage-instrumented programs that meson runs (its compiler checks, a regeneration) write
# a profile; only the replay below keeps one
export LLVM_PROFILE_FILE=/dev/null
fuzz_dir=build-fuzz
cov_dir=build-fuzz-cov
work=${work:-$fuzz_dir/tests/fuzz/$target-long}
seeds=$root/tests/fuzz/corpus/$target
dict=$root/tests/fuzz/dict/$target.dict
exe_rel=tests/fuzz/${target}_fuzz

clang_major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
find_llvm() {
	local t
	for t in "$1-$clang_major" "/usr/lib/llvm-$clang_major/bin/$1" "$1"; do
		if command -v "$t" >/dev/null 2>&1; then
			echo "$t"
			return 0
		fi
	done
	return 1
}

# setup DIR [extra meson options]: a clang build dir with ASan+UBSan and the fuzz targets
setup() {
	local dir=$1
	shift
	[ -f "$dir/build.ninja" ] && return 0
	CC=clang meson setup "$dir" -Dfuzz=enabled -Db_sanitize=address,undefined \
		-Db_lundef=false "$@" >/dev/null || {
		echo "long-run.sh: cannot configure $dir (clang and libclang-rt-14-dev installed?)" >&2
		exit 1
	}
}

setup "$fuzz_dir" "-Dc_args=-fno-sanitize-recover=all -Wno-format-nonliteral"
ninja -C "$fuzz_dir" "$exe_rel" >/dev/null || { echo "long-run.sh: build failed" >&2; exit 1; }
if [ "$coverage" -eq 1 ]; then
	profdata=$(find_llvm llvm-profdata) && llvmcov=$(find_llvm llvm-cov) || {
		echo "long-run.sh: llvm-profdata/llvm-cov not found (Debian: llvm-$clang_major)" >&2
		exit 1
	}
	covflags="-fprofile-instr-generate -fcoverage-mapping"
	setup "$cov_dir" "-Dc_args=-fno-sanitize-recover=all -Wno-format-nonliteral $covflags" \
		"-Dc_link_args=$covflags"
	ninja -C "$cov_dir" "$exe_rel" >/dev/null || {
		echo "long-run.sh: coverage build failed" >&2
		exit 1
	}
fi

mkdir -p "$work" || exit 1
work=$(cd "$work" && pwd)
if [ "$resume" -eq 0 ]; then
	rm -rf "$work/corpus"
fi
mkdir -p "$work/corpus"
rm -f "$work"/fuzz-*.log "$work"/*.profraw "$work/summary.txt"
rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*
corpus_before=$(find "$work/corpus" -type f | wc -l)
per_job=$(((total + jobs - 1) / jobs))

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"

echo "long-run: $target, $total executions: $jobs jobs of $per_job, at most $max_time s each"
echo "long-run: work in $work"
start=$(date +%s.%N)
(cd "$work" && "$root/$fuzz_dir/$exe_rel" -jobs="$jobs" -workers="$jobs" -runs="$per_job" \
	-max_total_time="$max_time" -max_len="$max_len" -dict="$dict" -timeout=10 \
	-rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$work/" "$work/corpus" "$seeds" >"$work/jobs.log" 2>&1)
fuzz_rc=$?
end=$(date +%s.%N)

# the jobs' final statistics
stats=$(python3 - "$work" "$start" "$end" <<'EOF'
import glob, re, sys
work, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
execs = new = 0
init_cov = init_ft = None
done_cov = done_ft = 0
for log in sorted(glob.glob(work + "/fuzz-*.log")):
    text = open(log, errors="replace").read()
    m = re.search(r"stat::number_of_executed_units:\s+(\d+)", text)
    execs += int(m.group(1)) if m else 0
    m = re.search(r"stat::new_units_added:\s+(\d+)", text)
    new += int(m.group(1)) if m else 0
    m = re.search(r"INITED cov: (\d+) ft: (\d+)", text)
    if m and (init_cov is None or int(m.group(1)) < init_cov):
        init_cov, init_ft = int(m.group(1)), int(m.group(2))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", text)
    if cov:
        done_cov = max(done_cov, int(cov[-1][0]))
        done_ft = max(done_ft, int(cov[-1][1]))
wall = end - start
print(execs, "%.0f" % wall, "%.0f" % (execs / wall if wall > 0 else 0), new, init_cov or 0,
      init_ft or 0, done_cov, done_ft)
EOF
)
read -r execs wall rate new init_cov init_ft done_cov done_ft <<<"$stats"
corpus_after=$(find "$work/corpus" -type f | wc -l)
findings=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
	-o -name 'oom-*' \) | wc -l)

{
	echo "target:      $target (${sources[*]})"
	echo "executions:  $execs ($jobs jobs, asked for $total)"
	echo "wall time:   $wall s"
	echo "exec/s:      $rate (all jobs together)"
	echo "coverage:    cov $init_cov -> $done_cov edges, ft $init_ft -> $done_ft features" \
		"(libFuzzer's counters: the first job's start -> the best job's end)"
	echo "corpus:      $corpus_before -> $corpus_after inputs in $work/corpus" \
		"($new added by the jobs)"
	echo "findings:    $findings (crash-*, leak-*, timeout-*, oom-* in $work)"
} | tee "$work/summary.txt"

if [ "$coverage" -eq 1 ]; then
	# replay the seeds and the corpus once, instrumented for coverage
	(cd "$work" && LLVM_PROFILE_FILE="$work/cov-%p.profraw" \
		"$root/$cov_dir/$exe_rel" -runs=0 -max_len="$max_len" "$work/corpus" "$seeds" \
		>"$work/coverage-replay.log" 2>&1)
	"$profdata" merge -sparse "$work"/cov-*.profraw -o "$work/cov.profdata" &&
		{
			echo "llvm-cov report (seeds + corpus, replayed once):"
			# the table's rows for the parser's files (the target's own are left out)
			(cd "$root" && "$llvmcov" report "$root/$cov_dir/$exe_rel" \
				-instr-profile="$work/cov.profdata" "${sources[@]}") |
				grep -E "^(Filename|-+$)|(^|/)($(IFS='|'; echo "${sources[*]}")) "
			if [ "$target" = wav ]; then
				# the CLI's main.c is mostly not the reader: its function alone
				(cd "$root" && "$llvmcov" report -show-functions \
					"$root/$cov_dir/$exe_rel" -instr-profile="$work/cov.profdata" \
					"$root/app/mediabatch/main.c" | grep -E "^Name|load_wav|read_file")
			fi
		} | tee -a "$work/summary.txt"
fi

if [ "$fuzz_rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
	echo "long-run: the jobs found something (exit $fuzz_rc): see $work/fuzz-*.log" |
		tee -a "$work/summary.txt"
	exit 1
fi
exit 0
