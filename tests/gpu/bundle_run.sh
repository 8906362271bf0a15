#!/usr/bin/env bash
# run.sh of a gpu bundle (made by tests/gpu/bundle.sh, which copies this file into the bundle):
# runs the gpu test suite and the GPU benchmark on a machine that has an NVIDIA driver and
# CUDA's libraries but none of mediabatch's other dependencies. From the repository root:
#
#   bash .gpu-bundle/run.sh [options] [all|tests|bench|preflight|TEST...]
#
#   all        (default) preflight, every test of the suite, the benchmark, then the daemon
#   tests      preflight, then every test of the suite
#   bench      preflight, then the benchmark (perf/model_bench --device 0)
#   daemon     preflight, then the daemon under load: mediabatchd on the GPU, a closed-loop
#              burst of each model through mediabatch-perf (every request answered once, OK;
#              the GPU's units in use never above its capacity; drained, exit 0), then the
#              same on a daemon with CUDA off (the CPU device), and both throughputs side by
#              side (daemon.txt, daemon-*.log, daemon-*.csv)
#   preflight  only the checks: nvidia-smi, where CUDA's libraries are, ldd of every program
#   TEST...    preflight, then the named tests (e.g. gpu/serve)
#
#   --out DIR            logs (default $OUT if set, else ./gpu-results): summary.txt, one
#                        <test>.log per test (gpu/serve -> gpu-serve.log), model_bench.log,
#                        the daemon step's daemon.txt and daemon-*.{log,txt,csv,yaml}
#   --pack, --no-pack    --pack: the logs are written elsewhere and, at the end, DIR gets only
#                        summary.txt, daemon.txt and logs.tar.gz (all of them): the device
#                        tool brings back at most 8 files. Default: --pack when $OUT is set
#                        and --out is not given
#   --bench-args "ARGS"  model_bench's arguments after --device 0 (default "--runs 3"; an
#                        ARGS with --device replaces --device 0)
#   --bench-timeout S    the benchmark's time limit (default 300)
#   --daemon-size SIZE   the networks' size for the daemon step: published (default:
#                        whisper-base, clap-htsat-unfused, videomae-base placeholders, written
#                        here) or tiny (the build's test-size placeholders: seconds, not figures)
#   --daemon-seconds S   each burst's measured window (default 5, after 2 s of warm-up)
#   --daemon-models LIST the models to load (default logmel,whisper,clap,videomae)
#   --daemon-cuda MODE   the GPU daemon's devices.cuda.mode (default required); off runs the
#                        step's mechanics where there is no GPU (both daemons then on the CPU)
#   --budget S           stop starting programs, and cut their time limits, so that the whole
#                        run ends within S seconds (default 570: under a 10-minute command)
#   --cuda-libs DIR      look for CUDA's libraries in DIR first (repeatable; also
#                        $MB_CUDA_LIB_PATH, colon-separated)
#   --work DIR           where the payload is unpacked (default /tmp/mediabatch-gpu-<sum>)
#
# Each test runs as `meson test` would run it: same program, arguments, environment (the
# bundle's copies in place of the build dir's), working directory and time limit; exit 77 is
# SKIP. Exit status: 0 when no test failed and the benchmark, if run, exited 0; 1 otherwise, a
# test that skips where nvidia-smi lists a GPU counting as failed; 2 on a usage or bundle error.
set -uo pipefail
shopt -s nullglob

if [ -z "${EPOCHREALTIME:-}" ]; then
	echo "run.sh: needs bash 5 or later (EPOCHREALTIME)" >&2
	exit 2
fi
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
R=${MB_REPO_ROOT:-$(cd "$bundle/.." && pwd)}
start=$(now)

out_dir=${OUT:-./gpu-results}
pack=""
bench_args="--runs 3"
bench_timeout=300
daemon_size=published
daemon_seconds=5
daemon_models=logmel,whisper,clap,videomae
daemon_cuda=required
budget=570
work=""
cuda_dirs_opt=()
what=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out_dir=${2:?--out needs a directory}; pack=${pack:-0}; shift 2 ;;
	--pack) pack=1; shift ;;
	--no-pack) pack=0; shift ;;
	--bench-args) bench_args=${2?--bench-args needs a string}; shift 2 ;;
	--bench-timeout) bench_timeout=${2:?--bench-timeout needs seconds}; shift 2 ;;
	--daemon-size) daemon_size=${2:?--daemon-size needs published or tiny}; shift 2 ;;
	--daemon-seconds) daemon_seconds=${2:?--daemon-seconds needs seconds}; shift 2 ;;
	--daemon-models) daemon_models=${2:?--daemon-models needs a list}; shift 2 ;;
	--daemon-cuda) daemon_cuda=${2:?--daemon-cuda needs required, auto or off}; shift 2 ;;
	--budget) budget=${2:?--budget needs seconds}; shift 2 ;;
	--cuda-libs) cuda_dirs_opt+=("${2:?--cuda-libs needs a directory}"); shift 2 ;;
	--work) work=${2:?--work needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) what+=("$1"); shift ;;
	esac
done
[ "${#what[@]}" -eq 0 ] && what=(all)
case "$bench_timeout$budget$daemon_seconds" in *[!0-9]*)
	echo "run.sh: --bench-timeout, --budget and --daemon-seconds take whole seconds" >&2; exit 2 ;;
esac
case "$daemon_size" in published | tiny) ;; *)
	echo "run.sh: --daemon-size takes published or tiny, not '$daemon_size'" >&2; exit 2 ;;
esac
case "$daemon_cuda" in required | auto | off) ;; *)
	echo "run.sh: --daemon-cuda takes required, auto or off, not '$daemon_cuda'" >&2; exit 2 ;;
esac
if [ "$daemon_seconds" -lt 1 ] || [[ ! $daemon_models =~ ^[a-z0-9_-]+(,[a-z0-9_-]+)*$ ]]; then
	echo "run.sh: --daemon-seconds takes 1 or more; --daemon-models a comma-separated list" >&2
	exit 2
fi

mkdir -p "$out_dir" || exit 2
out_dir=$(cd "$out_dir" && pwd)
if [ -z "$pack" ]; then
	pack=0
	[ -n "${OUT:-}" ] && pack=1
fi
final_dir=""
if [ "$pack" -eq 1 ]; then
	# everything is written in a directory of its own, then packed into DIR at exit
	final_dir=$out_dir
	out_dir=$(mktemp -d "${TMPDIR:-/tmp}/mediabatch-gpu-logs.XXXXXX") || exit 2
	pack_logs() {
		local f
		[ -f "$out_dir/daemon.txt" ] && cp "$out_dir/daemon.txt" "$final_dir/daemon.txt"
		cp "$summary" "$out_dir/summary.txt" 2>/dev/null
		if tar -C "$out_dir" -czf "$final_dir/logs.tar.gz" . 2>/dev/null; then
			rm -rf "$out_dir"
		else
			echo "run.sh: could not write $final_dir/logs.tar.gz; the logs stay in $out_dir" >&2
		fi
	}
	trap pack_logs EXIT
	# A command killed at the device tool's limit (SIGKILL) runs no trap: the summary goes
	# straight to DIR, and the logs are packed there again after every step (snapshot).
	snapshot() {
		cp "$summary" "$out_dir/summary.txt" 2>/dev/null
		[ -f "$out_dir/daemon.txt" ] && cp "$out_dir/daemon.txt" "$final_dir/daemon.txt"
		tar -C "$out_dir" -czf "$final_dir/logs.tar.gz.part" . 2>/dev/null &&
			mv -f "$final_dir/logs.tar.gz.part" "$final_dir/logs.tar.gz"
	}
	summary=$final_dir/summary.txt
else
	snapshot() { :; }
	summary=$out_dir/summary.txt
fi
: >"$summary"

# ---- output: every line to stdout and summary.txt, stamped with the time and elapsed time

elapsed() { awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%d", b - a}'; }
say() {
	local line
	line="[$(date +%H:%M:%S) +$(elapsed)s] $*"
	printf '%s\n' "$line"
	printf '%s\n' "$line" >>"$summary"
}
# block CMD...: CMD's output, indented, to stdout and summary.txt
block() { "$@" 2>&1 | sed 's/^/    /' | tee -a "$summary"; }
section() { say "=== $* ==="; }

# ---- the bundle: checksum, unpack, the tests' description

section "bundle $bundle"
for f in payload.tar.gz payload.sha256 tests.sh cuda-libs.txt; do
	if [ ! -f "$bundle/$f" ]; then
		say "ERROR: $bundle/$f is missing: rebuild the bundle (tests/gpu/bundle.sh) and carry all of it"
		exit 2
	fi
done
[ -f "$bundle/MANIFEST.txt" ] && block sed -n '1,6p' "$bundle/MANIFEST.txt"
if ! (cd "$bundle" && sha256sum --quiet -c payload.sha256) >/dev/null 2>&1; then
	say "ERROR: payload.tar.gz does not match payload.sha256 (truncated or stale copy?)"
	exit 2
fi
sum=$(cut -c1-12 "$bundle/payload.sha256")
B=${work:-${TMPDIR:-/tmp}/mediabatch-gpu-$sum}
if [ -f "$B/.unpacked-$sum" ]; then
	say "payload (sha256 $sum...) already unpacked in $B"
else
	if [ -d "$B" ] && [ -n "$(ls -A "$B")" ]; then
		stamps=("$B"/.unpacked-*)
		if [ "${#stamps[@]}" -eq 0 ] && [ ! -d "$B/build" ]; then
			say "ERROR: $B is not empty and holds no unpacked bundle; not touching it (--work)"
			exit 2
		fi
		rm -rf "$B"
	fi
	if ! { mkdir -p "$B" && tar -C "$B" -xzf "$bundle/payload.tar.gz"; }; then
		say "ERROR: cannot unpack payload.tar.gz into $B"
		exit 2
	fi
	touch "$B/.unpacked-$sum"
	say "payload (sha256 $sum...) unpacked in $B: $(du -sh "$B" | cut -f1)"
fi
[ -f "$R/meson.build" ] || say "WARNING: $R does not look like the repository root" \
	"(no meson.build); paths into the source tree will not resolve (set MB_REPO_ROOT)"

t_cmd=() t_env=() t_timeout=300 t_workdir="" t_protocol=exitcode mb_tests=() mb_suite=""
# shellcheck source=/dev/null
. "$bundle/tests.sh"
say "suite $mb_suite: ${mb_tests[*]}"

# What to run.
run_tests=() run_bench=0 run_daemon=0
for w in "${what[@]}"; do
	case "$w" in
	all) run_tests+=("${mb_tests[@]}"); run_bench=1 run_daemon=1 ;;
	tests) run_tests+=("${mb_tests[@]}") ;;
	bench) run_bench=1 ;;
	daemon) run_daemon=1 ;;
	preflight) ;;
	*)
		if ! mb_test "$w"; then
			say "ERROR: no test '$w' in the bundle; it has: ${mb_tests[*]}"
			exit 2
		fi
		run_tests+=("$w")
		;;
	esac
done

# ---- preflight: the machine, the driver, CUDA's libraries, every program's libraries

section "machine"
block uname -srm
[ -r /etc/os-release ] && block sed -n 's/^PRETTY_NAME=//p' /etc/os-release
block sh -c 'ldd --version | head -n 1'
say "$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) memory"

section "nvidia-smi"
gpus=0
if command -v nvidia-smi >/dev/null; then
	block timeout 30 nvidia-smi
	block timeout 30 nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv
	gpus=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
else
	say "nvidia-smi: not found (no NVIDIA driver utilities on this machine)"
fi

section "CUDA libraries"
mapfile -t need < <(grep -v '^#' "$bundle/cuda-libs.txt" | sed '/^$/d')
# Loaded by name at run time: the driver (by cudart), cuDNN's sub-libraries (by libcudnn),
# NVRTC (by cuDNN's runtime-compiled engines). Reported, not required.
optional=(libcuda.so.1)
if printf '%s\n' "${need[@]}" | grep -q '^libcudnn\.so\.9$'; then
	optional+=(libcudnn_graph.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 libcudnn_adv.so.9
		libcudnn_heuristic.so.9 libcudnn_engines_precompiled.so.9
		libcudnn_engines_runtime_compiled.so.9 libnvrtc.so.13)
fi
wanted=("${need[@]}" "${optional[@]}")

# Where to look: given dirs, CUDA toolkits, the system, /opt, Python packages (pip's nvidia-*
# wheels keep them in site-packages/nvidia/*/lib). Directories of stub and forward-compat
# libraries are never used.
roots=()
IFS=: read -r -a env_dirs <<<"${MB_CUDA_LIB_PATH:-}"
explicit=() # given directories: searched first, always on the path, never filtered
for d in "${cuda_dirs_opt[@]}" "${env_dirs[@]}"; do
	[ -n "$d" ] || continue
	if [ -d "$d" ]; then
		d=$(cd "$d" && pwd -P)
		explicit+=("$d")
		roots+=("$d:1")
	else
		say "WARNING: --cuda-libs/MB_CUDA_LIB_PATH directory $d does not exist"
	fi
done
is_explicit() { printf '%s\n' "${explicit[@]}" | grep -qxF -- "$1"; }
# the caller's LD_LIBRARY_PATH (NVIDIA's container images put the driver's libraries on it)
IFS=: read -r -a caller_dirs <<<"${LD_LIBRARY_PATH:-}"
for d in /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib "${caller_dirs[@]}" \
	/usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
	[ -n "$d" ] && [ -d "$d" ] && roots+=("$d:1")
done
roots+=(/usr/lib/x86_64-linux-gnu:1 /lib/x86_64-linux-gnu:1 /usr/local/lib:8 /usr/lib/python3:6
	/opt:10)
if command -v python3 >/dev/null; then
	for d in $(timeout 10 python3 -c 'import site; print(*site.getsitepackages(), site.getusersitepackages())' 2>/dev/null); do
		[ -d "$d" ] && roots+=("$d:5")
	done
fi
for d in /root/.local/lib/python3*/site-packages; do [ -d "$d" ] && roots+=("$d:5"); done

find_args=()
for n in "${wanted[@]}"; do find_args+=(-o -name "$n"); done
found=$(mktemp)
looked=()
for r in "${roots[@]}"; do
	dir=${r%:*} depth=${r##*:}
	[ -d "$dir" ] || continue
	looked+=("$dir")
	timeout 30 find -H "$dir" -maxdepth "$depth" \( -false "${find_args[@]}" \) \
		\( -type f -o -type l \) -print 2>/dev/null >>"$found" || true
done
# ldconfig's cache: the loader's own search (the driver's libcuda.so.1 usually is there)
ldconfig -p 2>/dev/null | awk '$NF ~ /^\// {print $NF}' |
	grep -F -f <(printf '/%s\n' "${wanted[@]}") >>"$found" || true
# "DIR<tab>NAME", DIR without symlinks, each once; never stub or forward-compat libraries
hits=()
while read -r p; do
	[ -e "$p" ] || continue
	d=$(cd "$(dirname "$p")" 2>/dev/null && pwd -P) || continue
	if ! is_explicit "$d"; then
		case "$d/" in */stubs/* | */compat/*) continue ;; esac
	fi
	hits+=("$d"$'\t'"${p##*/}")
done <"$found"
rm -f "$found"
mapfile -t hits < <(printf '%s\n' "${hits[@]}" | awk 'NF && !seen[$0]++')

# Per library, the directory that holds the most of the needed ones wins (cuBLAS and
# cuBLASLt must come from the same release), then the first found.
declare -A where=() score=()
for h in "${hits[@]}"; do
	d=${h%$'\t'*} n=${h#*$'\t'}
	for x in "${need[@]}"; do [ "$x" = "$n" ] && score[$d]=$((${score[$d]:-0} + 1)); done
done
for d in "${explicit[@]}"; do score[$d]=$((${score[$d]:-0} + 100)); done
system_dir() {
	case "$1" in /lib | /usr/lib | /lib64 | /usr/lib64 | /lib/x86_64-linux-gnu | /usr/lib/x86_64-linux-gnu) return 0 ;; esac
	return 1
}
for n in "${wanted[@]}"; do
	best="" bs=-1
	for h in "${hits[@]}"; do
		d=${h%$'\t'*}
		[ "${h#*$'\t'}" = "$n" ] || continue
		if [ "${score[$d]:-0}" -gt "$bs" ]; then best=$d bs=${score[$d]:-0}; fi
	done
	[ -n "$best" ] && where[$n]=$best
done

missing=() cuda_path=()
for n in "${wanted[@]}"; do
	kind=needed
	printf '%s\n' "${need[@]}" | grep -qx -- "$n" || kind=optional
	if [ -n "${where[$n]:-}" ]; then
		say "  $n ($kind): ${where[$n]}"
		d=${where[$n]}
		if ! system_dir "$d" && ! printf '%s\n' "${cuda_path[@]}" | grep -qx -- "$d"; then
			cuda_path+=("$d")
		fi
	else
		say "  $n ($kind): NOT FOUND"
		[ "$kind" = needed ] && missing+=("$n")
	fi
done
# the directories that hold more of the needed libraries first
mapfile -t cuda_path < <(for d in "${cuda_path[@]}"; do printf '%d\t%s\n' "${score[$d]:-0}" "$d"; done |
	sort -s -t $'\t' -k1,1nr | cut -f2-)
if [ "${#missing[@]}" -gt 0 ]; then
	say "MISSING CUDA libraries: ${missing[*]}"
	say "  looked in (find, bounded depth) ${looked[*]}, and ldconfig's cache"
	say "  pass the directory that holds them with --cuda-libs DIR; programs that need them will not run"
fi
[ -z "${where[libcuda.so.1]:-}" ] &&
	say "no libcuda.so.1 (NVIDIA driver) found: the GPU tests will skip, the benchmark will stop"

libpath=$B/lib
for d in "${explicit[@]}"; do libpath+=:$d; done
for d in "${cuda_path[@]}"; do is_explicit "$d" || libpath+=:$d; done
libpath+=${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
say "LD_LIBRARY_PATH for the programs: $libpath (after each test's own)"

section "DPDK"
pmds=$(cat "$bundle/dpdk-plugin-dir.txt" 2>/dev/null || true)
if [ -z "$pmds" ]; then
	say "EAL has no plugin directory compiled in"
elif [ -d "$pmds" ]; then
	say "WARNING: $pmds exists here: EAL will load every plugin in it (they need this machine's DPDK)"
else
	say "$pmds: absent, as expected (EAL skips it; the gpu suite needs no DPDK driver)"
fi

section "libraries of each program"
ldso=""
for l in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
	[ -x "$l" ] && ldso=$l && break
done
declare -A prog_missing=()
# unresolved PROGRAM: the libraries PROGRAM needs that the loader cannot find, one per line
unresolved() {
	if [ -n "$ldso" ]; then
		LD_TRACE_LOADED_OBJECTS=1 "$ldso" --library-path "$libpath:$(dirname "$1")" "$1" 2>&1
	else
		LD_LIBRARY_PATH="$libpath:$(dirname "$1")" ldd "$1" 2>&1
	fi | awk '/not found/ {print $1}' | sort -u
}
mapfile -t programs < <(cd "$B" && find build -type f \( -perm -u+x -o -name '*.so*' \) | sort)
for p in "${programs[@]}"; do
	nf=$(unresolved "$B/$p" | paste -sd ' ' -)
	if [ -n "$nf" ]; then
		prog_missing[$p]=$nf
		say "  $p: NOT FOUND: $nf"
	fi
done
for p in "${programs[@]}"; do
	[ -z "${prog_missing[$p]:-}" ] && say "  $p: every library resolves"
done
# cuDNN's sub-libraries are loaded by name when a model first runs: check theirs too
for n in "${optional[@]}"; do
	case "$n" in libcudnn_*) ;; *) continue ;; esac
	[ -n "${where[$n]:-}" ] || continue
	nf=$(unresolved "${where[$n]}/$n" | paste -sd ' ' -)
	[ -n "$nf" ] && say "  $n: NOT FOUND: $nf"
done

# ---- the placeholder weights the daemon reads beside its binary

needs_weights=$run_daemon # the daemon step's tiny size reads them too
for t in "${run_tests[@]}"; do
	mb_test "$t" && printf '%s\n' "${t_env[@]}" | grep -q '^MB_DAEMON=' && needs_weights=1
done
if [ "$needs_weights" -eq 1 ] && [ -x "$B/build/mediabatch-weights" ]; then
	section "placeholder weights"
	if [ -n "${prog_missing[build/mediabatch-weights]:-}" ]; then
		say "cannot run mediabatch-weights (missing ${prog_missing[build/mediabatch-weights]})"
	elif LD_LIBRARY_PATH=$libpath "$B/build/mediabatch-weights" --out "$B/build/weights" \
		>"$B/weights.log" 2>&1; then
		if [ -s "$bundle/weights.sha256" ]; then
			if (cd "$B/build" && sha256sum --quiet -c "$bundle/weights.sha256") >/dev/null 2>&1; then
				say "written to $B/build/weights, the same bytes as the build's"
			else
				say "WARNING: written to $B/build/weights but they differ from the build's"
			fi
		else
			say "written to $B/build/weights"
		fi
	else
		say "mediabatch-weights failed:"
		block cat "$B/weights.log"
	fi
fi

# ---- running

declare -a results=()
failed=0
remaining() { awk -v a="$start" -v b="$(now)" -v t="$budget" 'BEGIN {printf "%d", t - (b - a)}'; }
duration() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# limit WANT: WANT seconds, cut to what is left of the budget (0: no time left)
limit() {
	local left
	left=$(($(remaining) - 5))
	[ "$left" -lt 0 ] && left=0
	if [ "$1" -gt "$left" ]; then echo "$left"; else echo "$1"; fi
}

# run_one NAME LOG TIMEOUT WORKDIR PROGRAM-REL -- ENV... -- CMD...: run, log, record the result
run_one() {
	local name=$1 log=$2 want=$3 wd=$4 rel=$5 t0 rc lim status reason dur
	shift 5
	local envs=() cmd=()
	shift # --
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	cmd=("$@")
	if [ -n "${prog_missing[$rel]:-}" ]; then
		status=FAIL reason="not run: missing ${prog_missing[$rel]}"
		printf 'not run: the loader cannot find %s\n' "${prog_missing[$rel]}" >"$log"
		say "FAIL $name: $reason"
		results+=("FAIL  $name  -  $reason")
		failed=$((failed + 1))
		return
	fi
	lim=$(limit "$want")
	if [ "$lim" -le 0 ]; then
		say "FAIL $name: not run: no time left of the ${budget} s budget"
		results+=("FAIL  $name  -  not run: no time left of the ${budget} s budget")
		printf 'not run: no time left of the %s s budget\n' "$budget" >"$log"
		failed=$((failed + 1))
		return
	fi
	[ "$lim" -lt "$want" ] && say "$name: time limit cut from $want s to $lim s (budget)"
	say "start $name (limit $lim s) -> $log"
	local marker f
	marker=$(mktemp)
	{
		echo "# $name"
		echo "# cwd: $wd"
		echo "# command: ${cmd[*]}"
		echo "# env: ${envs[*]}"
		echo "# time limit: $lim s; started $(date '+%F %T')"
		echo
	} >"$log"
	t0=$(now)
	(cd "$wd" && exec timeout -k 10 "$lim" env "${envs[@]}" "${cmd[@]}") >>"$log" 2>&1 </dev/null
	rc=$?
	dur=$(duration "$t0")
	printf '\n# exit status %d after %s s\n' "$rc" "$dur" >>"$log"
	# A test that starts daemons (MB_DAEMON) has them log to /tmp/mb_e2e_log_*: keep the tails
	# of those written while it ran (on a shared machine, another run's may be among them).
	if printf '%s\n' "${envs[@]}" | grep -q '^MB_DAEMON='; then
		while read -r f; do
			[ -s "$f" ] || continue
			printf '\n# ---- daemon log %s (last 200 lines)\n' "$f" >>"$log"
			tail -n 200 "$f" >>"$log"
		done < <(find /tmp -maxdepth 1 -name 'mb_e2e_log_*' -newer "$marker" 2>/dev/null | sort)
	fi
	rm -f "$marker"
	reason=""
	case "$rc" in
	0) status=PASS ;;
	77) status=SKIP reason=$(grep -m1 '^SKIP' "$log" | sed 's/^SKIP:* *//' | cut -c1-300) ;;
	124) status=FAIL reason="TIMEOUT after $lim s" ;;
	*)
		status=FAIL reason="exit $rc"
		[ "$rc" -gt 128 ] && reason+=" (signal $((rc - 128)))"
		[ "$rc" -eq 137 ] && awk -v d="$dur" -v l="$lim" 'BEGIN {exit !(d >= l)}' &&
			reason="TIMEOUT after $lim s (killed)"
		;;
	esac
	if [ "$status" = FAIL ]; then
		failed=$((failed + 1))
		say "FAIL $name ${dur}s: $reason; last lines of $log:"
		block tail -n 25 "$log"
	else
		say "$status $name ${dur}s${reason:+: $reason}"
	fi
	results+=("$status  $name  ${dur}s  $reason")
	snapshot
}

if [ "${#run_tests[@]}" -gt 0 ]; then
	section "tests: ${run_tests[*]}"
	for t in "${run_tests[@]}"; do
		mb_test "$t"
		rel=${t_cmd[0]#"$B"/}
		# a program the test starts (MB_DAEMON, MB_CLI, ...) counts as the test's own
		for e in "${t_env[@]}"; do
			v=${e#*=}
			[[ $v == "$B"/* ]] || continue
			v=${v#"$B"/}
			[ -n "${prog_missing[$v]:-}" ] && [ -z "${prog_missing[$rel]:-}" ] &&
				prog_missing[$rel]=${prog_missing[$v]}
		done
		envs=("${t_env[@]}")
		# meson prepends the test's LD_LIBRARY_PATH; ours (the bundle, CUDA) follows it
		ld=""
		for i in "${!envs[@]}"; do
			if [[ ${envs[$i]} == LD_LIBRARY_PATH=* ]]; then
				ld=${envs[$i]#LD_LIBRARY_PATH=}
				unset 'envs[i]'
			fi
		done
		envs+=("LD_LIBRARY_PATH=${ld:+$ld:}$libpath")
		envs+=("MALLOC_PERTURB_=${MALLOC_PERTURB_:-$((RANDOM % 255 + 1))}")
		[ "$t_protocol" = exitcode ] || say "note: $t uses protocol $t_protocol; only its exit code is read"
		run_one "$t" "$out_dir/${t//\//-}.log" "$t_timeout" "$t_workdir" "$rel" -- "${envs[@]}" -- "${t_cmd[@]}"
	done
fi

bench_rc=0
if [ "$run_bench" -eq 1 ]; then
	# shellcheck disable=SC2206 # word splitting of the arguments is intended
	args=($bench_args)
	[[ " $bench_args " == *" --device"* ]] || args=(--device 0 "${args[@]}")
	section "benchmark: model_bench ${args[*]}"
	nfail=$failed
	run_one model_bench "$out_dir/model_bench.log" "$bench_timeout" "$B/build" build/perf/model_bench \
		-- "LD_LIBRARY_PATH=$libpath" -- "$B/build/perf/model_bench" "${args[@]}"
	if [ "$failed" -gt "$nfail" ]; then
		bench_rc=1
		failed=$nfail # the benchmark is not a test; reported on its own below
		first=$(grep -m1 '^model_bench: ' "$out_dir/model_bench.log")
		[ -n "$first" ] && results[-1]+=": $first"
	else
		block grep -v '^#' "$out_dir/model_bench.log"
	fi
fi

# ---- the daemon under load: mediabatchd on the GPU, then on the CPU device, each model in turn

# http_get PORT PATH: GET http://127.0.0.1:PORT/PATH through bash's /dev/tcp (no curl there);
# the response, headers first; status 1 when nothing listens
http_get() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&"$fd"
	timeout 10 cat <&"$fd"
	exec {fd}>&-
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# metric TEXT NAME{LABELS}: the value of that series in a /metrics text (empty when absent)
metric() { awk -v k="$2" '$1 == k {print $2; exit}' <<<"$1"; }
# devices TEXT: the device labels of the capacity gauge (cpu0, cuda0, ...)
devices() { sed -n 's/^mediabatch_vram_units_capacity{device="\([^"]*\)"}.*/\1/p' <<<"$1"; }
# batches TEXT: "DEVICE=N ..." batches admitted per device so far
batches() {
	local d out=""
	for d in $(devices "$1"); do
		out+="$d=$(metric "$1" "mediabatch_admission_wait_seconds_count{device=\"$d\"}") "
	done
	echo "${out% }"
}

daemon_rc=0
d_pid="" d_base=0 d_log=""
declare -A d_rps=() d_p50=() d_p99=() d_ok=() d_where=() d_units=()

# d_fail MSG: the step fails, with a reason
d_fail() {
	say "FAIL daemon: $*"
	results+=("FAIL  daemon  -  $*")
	daemon_rc=1
}

# d_start LABEL MODE [NETS]: a daemon with devices.cuda.mode MODE on free loopback ports, the
# models of --daemon-models (identity too), NETS (YAML keys) added to the networks' entries;
# 0 once its /readyz answers 200
d_start() {
	local label=$1 mode=$2 nets=${3:-} cfg=$out_dir/daemon-$1.yaml p m lim t0
	d_log=$out_dir/daemon-$label.log
	d_base=0
	for p in $(seq 17400 3 17997); do
		if port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)); then
			d_base=$p
			break
		fi
	done
	if [ "$d_base" -eq 0 ]; then
		d_fail "$label: no three free loopback ports in 17400..17999"
		return 1
	fi
	{
		echo "# written by run.sh's daemon step"
		echo "weights_dir: $d_weights"
		echo "devices:"
		echo "  cuda: {mode: $mode}"
		echo "models:"
		for m in logmel whisper clap videomae; do
			if [[ ",$daemon_models," == *",$m,"* ]]; then
				if [ "$m" != logmel ] && [ -n "$nets" ]; then
					echo "  - {name: $m, $nets}"
				else
					echo "  - {name: $m}"
				fi
			else
				echo "  - {name: $m, enabled: false}"
			fi
		done
	} >"$cfg"
	lim=$(limit 180)
	say "start daemon $label (devices.cuda.mode $mode; ports $d_base..$((d_base + 2)); ready within $lim s) -> $d_log"
	LD_LIBRARY_PATH=$libpath "$B/build/mediabatchd" --config "$cfg" --log-level info \
		--ingest "tcp://127.0.0.1:$d_base" --publish "tcp://127.0.0.1:$((d_base + 1))" \
		--metrics "127.0.0.1:$((d_base + 2))" >"$d_log" 2>&1 </dev/null &
	d_pid=$!
	t0=$(now)
	while :; do
		if ! kill -0 "$d_pid" 2>/dev/null; then
			wait "$d_pid"
			d_fail "$label: mediabatchd exited ($?) before it was ready; last lines of $d_log:"
			block tail -n 15 "$d_log"
			d_pid=""
			return 1
		fi
		if http_get $((d_base + 2)) /readyz 2>/dev/null | head -n 1 | grep -q ' 200'; then
			break
		fi
		if awk -v a="$t0" -v b="$(now)" -v l="$lim" 'BEGIN {exit !(b - a > l)}'; then
			d_fail "$label: not ready within $lim s; last lines of $d_log:"
			block tail -n 15 "$d_log"
			d_stop "$label"
			return 1
		fi
		sleep 0.5
	done
	say "daemon $label ready after $(duration "$t0") s:"
	block grep -E 'device (cuda|cpu)[0-9]+|GPU|placement|ready' "$d_log"
	return 0
}

# d_stop LABEL: SIGTERM, the drain, exit status 0 expected
d_stop() {
	local rc i
	[ -n "$d_pid" ] || return 0
	kill -TERM "$d_pid" 2>/dev/null
	for i in $(seq 120); do
		kill -0 "$d_pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$d_pid" 2>/dev/null; then
		kill -KILL "$d_pid" 2>/dev/null
		wait "$d_pid" 2>/dev/null
		d_fail "$1: mediabatchd did not exit within 60 s of SIGTERM (killed)"
	else
		wait "$d_pid"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			d_fail "$1: mediabatchd exited $rc after SIGTERM (0 is a clean drain); see $d_log"
		else
			say "daemon $1 drained and exited 0: $(grep -m1 'stopped:' "$d_log" | sed 's/.*mediabatchd: //')"
		fi
	fi
	d_pid=""
	snapshot
}

# d_burst LABEL MODEL OUTSTANDING WANT SECONDS: a closed loop of MODEL for SECONDS after 2 s
# of warm-up; checks and records it. WANT: the device kind its batches must be admitted on
# (cuda or cpu)
d_burst() {
	local label=$1 m=$2 k=$3 want=$4 secs=$5 base=$out_dir/daemon-$1-$2 lim rc before after row
	local sent resp missing stray perr ok rps p50 p99 umax ucap n_want n_other d v
	lim=$(limit $((secs + 2 + 180)))
	if [ "$lim" -le 0 ]; then
		d_fail "$label $m: not run: no time left of the ${budget} s budget"
		return
	fi
	before=$(http_get $((d_base + 2)) /metrics 2>/dev/null)
	timeout -k 5 "$lim" env LD_LIBRARY_PATH="$libpath" "$B/build/mediabatch-perf" \
		--endpoint "tcp://127.0.0.1:$d_base" --metrics "127.0.0.1:$((d_base + 2))" \
		--mix "$m" --outstanding "$k" --duration "$secs" --warmup 2 \
		--drain 180 --timeout-ms 180000 --quiet --csv "$base.csv" >"$base.txt" 2>&1
	rc=$?
	after=$(http_get $((d_base + 2)) /metrics 2>/dev/null)
	if [ "$rc" -ne 0 ] || [ ! -s "$base.csv" ]; then
		d_fail "$label $m: mediabatch-perf exited $rc; last lines of $base.txt:"
		block tail -n 10 "$base.txt"
		return
	fi
	# the CSV's one row, by its header's names
	row=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) h[$i] = i; next}
		NR == 2 {print $h["sent"], $h["responses"], $h["missing"], $h["stray"], $h["proto_errors"],
			$h["status_OK"], $h["ok_rps"], $h["latency_p50_ms"], $h["latency_p99_ms"],
			($h["units_in_use_max"] == "" ? "-" : $h["units_in_use_max"]),
			($h["units_capacity"] == "" ? "-" : $h["units_capacity"])}' "$base.csv")
	read -r sent resp missing stray perr ok rps p50 p99 umax ucap <<<"$row"
	# batches admitted per device during the burst (the admission histogram's counts)
	n_want=0 n_other=0
	for d in $(devices "$after"); do
		v=$(($(metric "$after" "mediabatch_admission_wait_seconds_count{device=\"$d\"}") -
			$(metric "$before" "mediabatch_admission_wait_seconds_count{device=\"$d\"}")))
		if [[ $d == "$want"* ]]; then n_want=$((n_want + v)); else n_other=$((n_other + v)); fi
	done
	rps=$(awk -v v="$rps" 'BEGIN {printf "%.1f", v}')
	p50=$(awk -v v="$p50" 'BEGIN {printf "%.1f", v}') p99=$(awk -v v="$p99" 'BEGIN {printf "%.1f", v}')
	d_rps[$label,$m]=$rps d_p50[$label,$m]=$p50 d_p99[$label,$m]=$p99
	d_where[$label,$m]="$want $n_want, other $n_other"
	d_units[$label,$m]="$umax/$ucap"
	say "daemon $label $m: $rps req/s OK, p50 $p50 ms, p99 $p99 ms; sent $sent, answered $resp, OK $ok, missing $missing, stray $stray; batches on $want* $n_want, elsewhere $n_other; units in use (sampled) max $umax of $ucap"
	block grep -E '^(throughput|requests|latency|batch size|stages|admission|  *(stage|queue|admission|dispatch|compute|egress|all stages) )' "$base.txt"
	if [ "${sent:-0}" -eq 0 ]; then
		d_fail "$label $m: nothing was sent"
	elif [ "$resp" -ne "$sent" ] || [ "$missing" -ne 0 ] || [ "$stray" -ne 0 ] || [ "$perr" -ne 0 ]; then
		d_fail "$label $m: not every request answered once (sent $sent, answered $resp, missing $missing, stray $stray, protocol errors $perr)"
	elif [ "$ok" -ne "$sent" ]; then
		d_fail "$label $m: $((sent - ok)) of $sent answered but not OK (see $base.txt)"
	fi
	if [ "$n_want" -eq 0 ] || [ "$n_other" -ne 0 ]; then
		d_fail "$label $m: its batches were admitted $n_want time(s) on $want* and $n_other elsewhere"
	fi
	if [ "$umax" != - ] && awk -v u="$umax" -v c="$ucap" 'BEGIN {exit !(u > c)}'; then
		d_fail "$label $m: units in use $umax above the capacity $ucap"
	fi
	d_ok[$label,$m]=1
}

# d_peaks LABEL: every device's peak units against its capacity, from /metrics
d_peaks() {
	local text d peak cap
	text=$(http_get $((d_base + 2)) /metrics 2>/dev/null)
	for d in $(devices "$text"); do
		peak=$(metric "$text" "mediabatch_vram_units_peak{device=\"$d\"}")
		cap=$(metric "$text" "mediabatch_vram_units_capacity{device=\"$d\"}")
		say "daemon $1 $d: peak units in use $peak of $cap"
		if awk -v u="${peak:-0}" -v c="${cap:-0}" 'BEGIN {exit !(u > c)}'; then
			d_fail "$1 $d: peak units in use $peak above the capacity $cap"
		fi
	done
}

if [ "$run_daemon" -eq 1 ]; then
	section "daemon: mediabatchd under a burst of each model (${daemon_models//,/ }), GPU then CPU"
	IFS=, read -r -a d_list <<<"$daemon_models"
	for p in build/mediabatchd build/mediabatch-perf build/mediabatch-weights; do
		if [ ! -x "$B/$p" ]; then
			d_fail "$p is not in the bundle (rebuild it with tests/gpu/bundle.sh)"
		elif [ -n "${prog_missing[$p]:-}" ]; then
			d_fail "$p cannot load: missing ${prog_missing[$p]}"
		fi
	done
	d_weights=$B/build/weights
	if [ "$daemon_rc" -eq 0 ] && [ "$daemon_size" = published ]; then
		d_weights=$B/weights-published
		for spec in whisper:whisper-base clap:clap-htsat-unfused videomae:videomae-base; do
			m=${spec%%:*} size=${spec#*:}
			[[ ",$daemon_models," == *",$m,"* ]] || continue
			if [ -f "$d_weights/.$size" ]; then
				say "placeholder weights $m $size: already in $d_weights/$m"
				continue
			fi
			t0=$(now)
			lim=$(limit 300)
			if [ "$lim" -le 0 ]; then # timeout 0 would mean no limit at all
				d_fail "mediabatch-weights --size $size $m: not run, no time left of the ${budget} s budget"
				continue
			fi
			if LD_LIBRARY_PATH=$libpath timeout "$lim" "$B/build/mediabatch-weights" \
				--out "$d_weights" --size "$size" --stamp "$d_weights/.$size" "$m" \
				>>"$out_dir/daemon-weights.log" 2>&1; then
				say "placeholder weights $m $size written in $(duration "$t0") s: $(du -sh "$d_weights/$m" | cut -f1)"
			else
				d_fail "mediabatch-weights --size $size $m failed (see daemon-weights.log)"
			fi
		done
	fi
	if [ "$daemon_rc" -eq 0 ]; then
		gpu_want=cuda
		[ "$daemon_cuda" = off ] && gpu_want=cpu
		[ "$daemon_cuda" = off ] && say "--daemon-cuda off: the 'gpu' daemon runs on the CPU too (checking the step, not the GPU)"
		# The GPU: 64 outstanding, the models' own batch sizes. The CPU device: as many
		# outstanding as it has workers (half the CPUs; logmel 64), the networks one item per batch
		# (batching pays little there, perf/RESULTS.md; a batch of 8 whisper-base items
		# would keep one worker busy for 14 s while the others idle), over twice the window
		# (a videomae-base clip takes seconds, and the window must see answers).
		cpu_k=$(($(nproc) / 2))
		[ "$cpu_k" -lt 1 ] && cpu_k=1
		for spec in "gpu:$daemon_cuda:64:$gpu_want:$daemon_seconds:" \
			"cpu:off:$cpu_k:cpu:$((2 * daemon_seconds)):max_batch: 1"; do
			IFS=: read -r label mode k want secs nets <<<"$spec"
			d_start "$label" "$mode" "$nets" || continue
			for m in "${d_list[@]}"; do
				# logmel keeps its batches on both: 64 outstanding
				d_burst "$label" "$m" "$([ "$m" = logmel ] && echo 64 || echo "$k")" "$want" "$secs"
				snapshot
			done
			d_peaks "$label"
			d_stop "$label"
		done
	fi
	{
		echo "daemon step: --daemon-size $daemon_size, --daemon-seconds $daemon_seconds, devices.cuda.mode $daemon_cuda"
		echo "closed loops through mediabatch-perf after 2 s of warm-up: the gpu daemon 64 outstanding for $daemon_seconds s, the cpu daemon ${cpu_k:-?} (its workers; the networks max_batch 1; logmel 64) for $((2 * daemon_seconds)) s"
		printf '%-10s %12s %12s %8s %22s %22s %14s\n' model "gpu req/s" "cpu req/s" "gpu/cpu" \
			"gpu p50/p99 ms" "cpu p50/p99 ms" "gpu units max"
		for m in "${d_list[@]}"; do
			g=${d_rps[gpu,$m]:-} c=${d_rps[cpu,$m]:-}
			x=$(awk -v g="${g:-0}" -v c="${c:-0}" 'BEGIN {if (g > 0 && c > 0) printf "%.1f", g / c; else print "-"}')
			printf '%-10s %12s %12s %8s %22s %22s %14s\n' "$m" "${g:--}" "${c:--}" "$x" \
				"${d_p50[gpu,$m]:--}/${d_p99[gpu,$m]:--}" "${d_p50[cpu,$m]:--}/${d_p99[cpu,$m]:--}" \
				"${d_units[gpu,$m]:--}"
		done
	} >"$out_dir/daemon.txt"
	block cat "$out_dir/daemon.txt"
	if [ "$daemon_rc" -eq 0 ]; then
		say "PASS daemon: every request answered once and OK, units within capacity, both drained"
		results+=("PASS  daemon  -  every request answered once, OK; units within capacity")
	fi
fi

section "summary"
skips=0 gpu_skips=0
for r in "${results[@]}"; do
	say "  $r"
	[[ $r == SKIP* ]] && skips=$((skips + 1))
done
if [ "$gpus" -gt 0 ] && [ "$skips" -gt 0 ]; then
	gpu_skips=$skips
	say "WARNING: nvidia-smi lists $gpus GPU(s), yet $skips test(s) skipped: they did not run on the GPU"
fi
if [ -n "${where[libcuda.so.1]:-}" ] && cat "$out_dir"/*.log 2>/dev/null | grep -q 'InsufficientDriver\|driver version is insufficient'; then
	say "the NVIDIA driver is older than the CUDA runtime the programs are built with (CUDA 13 needs a 580 or later driver)"
	for c in /usr/local/cuda*/compat; do
		[ -e "$c/libcuda.so.1" ] && say "  forward-compatibility driver libraries found: try --cuda-libs $c"
	done
fi
[ "${#missing[@]}" -gt 0 ] && say "MISSING CUDA libraries: ${missing[*]} (not found in ${looked[*]}, ldconfig)"
[ -z "${where[libcuda.so.1]:-}" ] && say "no NVIDIA driver (libcuda.so.1) found on this machine"
logs=("$out_dir"/*)
if [ -n "$final_dir" ]; then
	say "logs (packed into $final_dir/logs.tar.gz after every step and at exit; summary.txt and daemon.txt beside it): ${logs[*]##*/}"
else
	say "logs in $out_dir: ${logs[*]##*/}"
fi
problems=()
[ "$failed" -gt 0 ] && problems+=("$failed test(s) failed")
[ "$gpu_skips" -gt 0 ] && problems+=("$gpu_skips test(s) skipped on a machine with a GPU")
[ "$bench_rc" -ne 0 ] && problems+=("the benchmark failed")
[ "$daemon_rc" -ne 0 ] && problems+=("the daemon step failed")
[ "${#missing[@]}" -gt 0 ] && problems+=("CUDA libraries missing")
[ "${#prog_missing[@]}" -gt 0 ] && problems+=("$(printf '%s\n' "${!prog_missing[@]}" | wc -l) program(s) cannot load")
if [ "${#problems[@]}" -eq 0 ]; then
	say "RESULT: OK (${#run_tests[@]} test(s) run, $skips skipped$([ "$run_bench" -eq 1 ] && echo ', benchmark ran')$([ "$run_daemon" -eq 1 ] && echo ', daemon step passed'))"
	exit 0
fi
msg=$(printf '%s; ' "${problems[@]}")
say "RESULT: FAILED: ${msg%; }"
exit 1
