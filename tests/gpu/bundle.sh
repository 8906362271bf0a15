#!/usr/bin/env bash
# Build a self-contained bundle of the gpu test suite and the GPU benchmark, to carry to a GPU
# machine that lacks our dependencies (DPDK, ZeroMQ, hwloc, CUnit, OpenBLAS, FFTW, ...):
#
#   tests/gpu/bundle.sh [--build DIR] [--out DIR] [--suite SUITE] [--no-compile]
#
#   --build DIR   CUDA-enabled meson build dir (default build; set up if missing, then compiled)
#   --no-compile  take the build dir as it is (a test that runs inside meson test does)
#   --out DIR     the bundle (default .gpu-bundle at the repository root, ignored by git)
#   --suite NAME  the meson suite to carry (default mediabatch:gpu)
#   (relative directories are taken from the repository root)
#
# The bundle holds:
#   run.sh          runs the suite and the benchmark there (bash .gpu-bundle/run.sh --help)
#   payload.tar.gz  the build dir's part (build/...: each test's program, every file its env
#                   points to, perf/model_bench, mediabatch-weights), stripped, and lib/: every
#                   shared library they need, from ldd, less glibc, libgcc_s, libstdc++ and
#                   CUDA's (libcuda, cudart, cuBLAS, cuDNN, cuFFT, NVRTC, nvJitLink), which
#                   the GPU machine provides
#   tests.sh        the tests as `meson introspect --tests` gives them (command, env, timeout),
#                   every path into the build dir rewritten to the unpacked payload ($B/build)
#                   and every path into the source tree to the repository root ($R)
#   cuda-libs.txt   the CUDA libraries the programs need (run.sh looks for them on the GPU machine)
#   MANIFEST.txt    what is inside, where it came from, sizes
#
# Not carried: the placeholder weights (run.sh regenerates them with mediabatch-weights, same
# seed, same bytes, checked against the sums recorded here), and DPDK's plugin directory
# (the gpu suite's EAL set-up needs no driver: no PCI, no UDP ports, so no mbuf pool; EAL
# skips a plugin directory that does not exist).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

build=build
out=.gpu-bundle
suite=mediabatch:gpu
compile=1
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--suite) suite=${2:?--suite needs a name}; shift 2 ;;
	--no-compile) compile=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bundle.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

say() { printf 'bundle.sh: %s\n' "$*"; }
die() { printf 'bundle.sh: %s\n' "$*" >&2; exit 1; }

for tool in meson python3 ldd strip tar gzip sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is needed"
done

# 1. A CUDA-enabled build, compiled.
if [ ! -f "$build/build.ninja" ]; then
	say "setting up $build"
	meson setup "$build"
fi
build=$(cd "$build" && pwd)
if ! grep -q '^#define MB_HAVE_CUDA 1' "$build/mb_build_config.h" 2>/dev/null; then
	meson configure "$build" | grep -i cuda >&2 || true
	die "$build is not a CUDA build (MB_HAVE_CUDA is not 1 in mb_build_config.h): the gpu" \
		"suite would only skip. Install the CUDA toolkit at /usr/local/cuda (or pass" \
		"-Dcudatoolkit=DIR) and reconfigure with -Dcuda=enabled."
fi
if [ "$compile" -eq 1 ]; then
	say "compiling $build"
	meson compile -C "$build"
fi

# 2. The bundle directory, refreshed. Refuse to empty a directory that is not one of ours.
case "$out" in /*) ;; *) out="$root/$out" ;; esac
if [ -e "$out" ] && [ ! -f "$out/MANIFEST.txt" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
	die "$out exists and is not a bundle (no MANIFEST.txt); not touching it"
fi
rm -rf "$out"
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/mb-gpu-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build" "$stage/lib"

# 3. The suite's tests from meson: tests.sh, and the build files they use (F file, D dir).
meson introspect "$build" --tests >"$stage/tests.json"
python3 - "$stage/tests.json" "$build" "$root" "$suite" "$out/tests.sh" >"$stage/files" <<'EOF'
import json, os, re, shlex, sys, time

tests_json, build, src, suite, out = sys.argv[1:]
tests = [t for t in json.load(open(tests_json)) if suite in t["suite"]]
if not tests:
    sys.exit("bundle.sh: no test in suite %s" % suite)
# A path into the build dir (tried first: it is usually inside the source tree) or the
# source tree, ending where a path ends in a command line or an env value.
pat = re.compile("(%s|%s)(?=/|$|:|;|,|\\s)" % (re.escape(build), re.escape(src)))
token = re.compile(re.escape(build) + r"(?:/[^:;,\s=\"']*)?")
files = set()


def word(s):
    """A bash word that expands to s with the build dir as $B/build, the tree as $R."""
    parts, last = [], 0
    for m in pat.finditer(s):
        if m.start() > last:
            parts.append(shlex.quote(s[last:m.start()]))
        parts.append('"$B"/build' if m.group(1) == build else '"$R"')
        last = m.end()
    if last < len(s):
        parts.append(shlex.quote(s[last:]))
    return "".join(parts) or "''"


def note(s):
    for p in token.findall(s):
        p = p.rstrip("/")
        if os.path.isfile(p):
            files.add("F " + p)
        elif os.path.isdir(p):
            files.add("D " + p)


lines = [
    "# Generated by tests/gpu/bundle.sh from `meson introspect --tests` of %s" % build,
    "# on %s; do not edit. $B is the unpacked payload (the build dir is $B/build)," % time.strftime("%Y-%m-%d %H:%M"),
    "# $R the repository root. mb_test NAME sets t_cmd, t_env, t_timeout, t_workdir, t_protocol.",
    "mb_suite=%s" % shlex.quote(suite),
    "mb_tests=(%s)" % " ".join(shlex.quote(t["name"]) for t in tests),
    "mb_test() {",
    "\tcase $1 in",
]
for t in tests:
    for a in t["cmd"]:
        note(a)
    for v in (t.get("env") or {}).values():
        note(v)
    timeout = t.get("timeout") or 300
    workdir = t.get("workdir")
    lines += [
        "\t%s)" % shlex.quote(t["name"]),
        "\t\tt_cmd=(%s)" % " ".join(word(a) for a in t["cmd"]),
        "\t\tt_env=(%s)" % " ".join(word("%s=%s" % kv) for kv in (t.get("env") or {}).items()),
        "\t\tt_timeout=%d" % int(timeout),
        "\t\tt_workdir=%s" % (word(workdir) if workdir else '"$B"/build'),
        "\t\tt_protocol=%s" % shlex.quote(t.get("protocol", "exitcode")),
        "\t\t;;",
    ]
    if t.get("protocol", "exitcode") != "exitcode":
        print("bundle.sh: note: %s uses protocol %s; run.sh reads its exit code only"
              % (t["name"], t["protocol"]), file=sys.stderr)
lines += ["\t*) return 1 ;;", "\tesac", "}"]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(sorted(files)))
EOF
{
	echo "F $build/perf/model_bench"
	echo "F $build/mediabatch-weights"
	echo "F $build/mediabatchd"       # run.sh's daemon step
	echo "F $build/mediabatch-perf"
} >>"$stage/files"

# Copy a build file to the same place under stage/build, stripped if it is ELF.
copy_built() {
	local src=$1 rel=${1#"$build"/}
	mkdir -p "$stage/build/$(dirname "$rel")"
	if head -c 4 "$src" | grep -q 'ELF'; then
		strip --strip-unneeded -o "$stage/build/$rel" "$src"
	else
		cp -p "$src" "$stage/build/$rel"
	fi
	echo "$src" >>"$stage/programs"
}
: >"$stage/programs"
while read -r kind path; do
	[ -e "$path" ] || die "missing $path (built?)"
	if [ "$kind" = F ]; then
		copy_built "$path"
	else # a directory an env value names (LD_LIBRARY_PATH): its shared objects
		mkdir -p "$stage/build/${path#"$build"/}"
		for so in "$path"/*.so "$path"/*.so.*; do
			[ -f "$so" ] && copy_built "$so"
		done
	fi
done < <(sort -u "$stage/files")
sort -u -o "$stage/programs" "$stage/programs"

# 4. Shared libraries: ldd's closure of every program, less what the GPU machine provides.
provided='^(linux-vdso|ld-linux|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|libgcc_s|libstdc\+\+)\.so'
cuda='^(libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libcufft[a-z]*|libnvrtc[a-z-]*|libnvJitLink)\.so'
: >"$stage/libs"
: >"$stage/cuda"
while read -r prog; do
	if ! out_ldd=$(ldd "$prog" 2>&1); then
		die "ldd $prog failed: $out_ldd"
	fi
	if grep -q 'not found' <<<"$out_ldd"; then
		die "$prog has unresolved libraries here:"$'\n'"$(grep 'not found' <<<"$out_ldd")"
	fi
	awk '/=>/ && $3 ~ /^\// {print $1, $3}' <<<"$out_ldd" | while read -r soname path; do
		if [[ $soname =~ $cuda ]]; then
			echo "$soname" >>"$stage/cuda"
		elif ! [[ $soname =~ $provided ]]; then
			echo "$soname $path" >>"$stage/libs"
		fi
	done
done <"$stage/programs"
sort -u -o "$stage/libs" "$stage/libs"
sort -u "$stage/cuda" >"$out/cuda-libs.txt"
# (Debian's libraries are stripped already: copied as they are.)
while read -r soname path; do
	cp -L "$path" "$stage/lib/$soname"
done <"$stage/libs"

# DPDK's plugin directory, as EAL has it compiled in (reported by run.sh; not carried).
eal=$(awk '$1 ~ /^librte_eal\.so/ {print $2; exit}' "$stage/libs")
pmds=""
if [ -n "$eal" ]; then
	pmds=$(strings -a "$eal" 2>/dev/null | sed -n 's/^DPDK_PLUGIN_PATH=//p' | head -n 1 || true)
fi

# 5. The payload, run.sh, checksums, the manifest.
# (the published layout's directories, weights/MODEL/: what the daemon reads when they exist)
(cd "$build" && find weights -mindepth 2 -maxdepth 2 -type f | LC_ALL=C sort | xargs -r sha256sum) \
	>"$out/weights.sha256" 2>/dev/null || true
tar -C "$stage" -czf "$out/payload.tar.gz" --owner=0 --group=0 --numeric-owner build lib
(cd "$out" && sha256sum payload.tar.gz >payload.sha256)
cp "$root/tests/gpu/bundle_run.sh" "$out/run.sh"
chmod +x "$out/run.sh"
[ -n "$pmds" ] && printf '%s\n' "$pmds" >"$out/dpdk-plugin-dir.txt"

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)
{
	echo "mediabatch gpu bundle: suite $suite"
	echo "built $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)" \
		"($(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'))"
	echo "from $root at $commit${dirty:+ (with uncommitted changes)}, build dir $build"
	echo "tests: $(sed -n 's/^mb_tests=(\(.*\))$/\1/p' "$out/tests.sh")"
	echo "CUDA libraries expected on the GPU machine: $(tr '\n' ' ' <"$out/cuda-libs.txt")"
	echo "DPDK plugin dir (not carried; EAL skips it when absent): ${pmds:-none}"
	echo
	echo "build files (stripped; bytes):"
	(cd "$stage" && find build -type f -printf '  %-48p %10s\n' | sort)
	echo
	echo "libraries (bytes; from):"
	while read -r soname path; do
		printf '  lib/%-44s %10s  %s\n' "$soname" "$(stat -c %s "$stage/lib/$soname")" "$(readlink -f "$path")"
	done <"$stage/libs"
	echo
	printf 'unpacked %s bytes; payload.tar.gz %s bytes\n' \
		"$(du -sb "$stage/build" "$stage/lib" | awk '{s += $1} END {print s}')" \
		"$(stat -c %s "$out/payload.tar.gz")"
} >"$out/MANIFEST.txt"

nprog=$(find "$stage/build" -type f | wc -l)
nlib=$(wc -l <"$stage/libs")
say "$out: $nprog build files, $nlib libraries; $(du -sh "$out" | cut -f1) in all" \
	"(unpacked $(du -shc "$stage/build" "$stage/lib" | tail -n 1 | cut -f1))"
say "CUDA libraries the GPU machine must provide: $(tr '\n' ' ' <"$out/cuda-libs.txt")"
say "on the GPU machine, from the repository root: bash ${out#"$root"/}/run.sh [all|tests|bench|preflight|TEST...]"
