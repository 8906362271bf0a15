#!/usr/bin/env bash
# weights_deps_test.sh: mediabatch-weights, a tool that only writes and checks files, links
# nothing of the server (it links the layout library, gpu/mb_layout.h, alone). Its shared
# libraries (ldd: what the loader maps, the libraries' own included) must hold no DPDK
# (librte_*), hwloc, ZeroMQ, CUDA (cuBLAS, cuDNN, cuFFT, the runtime), OpenBLAS or FFTW,
# and its symbols (nm, the static and the dynamic table) none of CUDA's or DPDK's, nor the
# project's CUDA glue (mb_cuda_*). Fails, naming each one found, if any is there.
#
#   weights_deps_test.sh PROGRAM        (meson passes the built mediabatch-weights)
set -u
fail() { echo "FAIL: $*"; exit 1; }
bin=${1:-${MB_WEIGHTS:-}}
[ -n "$bin" ] || fail "usage: $0 PROGRAM (or MB_WEIGHTS=PROGRAM)"
[ -x "$bin" ] || fail "$bin: not an executable"
command -v ldd >/dev/null || fail "ldd not found"
command -v nm >/dev/null || fail "nm not found"

libs=$(ldd "$bin") || fail "ldd $bin failed"
bad_libs=$(printf '%s\n' "$libs" |
	grep -E '(^|[[:space:]/])lib(rte_[^ ]*|hwloc|zmq|czmq|cublas|cublasLt|cudnn[^ ]*|cufft|cudart|cuda|openblas|fftw3f)\.so' |
	awk '{print $1}')

syms=$( (nm "$bin" 2>/dev/null; nm -D "$bin" 2>/dev/null) | awk 'NF >= 2 {print $NF}' |
	sed 's/@.*//' | sort -u)
[ -n "$syms" ] || fail "nm found no symbols in $bin (stripped?): cannot check them"
bad_syms=$(printf '%s\n' "$syms" | grep -Ei '^_*rte_|cuda|cublas|cudnn|cufft')

rc=0
if [ -n "$bad_libs" ]; then
	echo "FAIL: $bin links libraries of the server:"
	printf '  %s\n' $bad_libs
	rc=1
fi
if [ -n "$bad_syms" ]; then
	echo "FAIL: $bin has CUDA or DPDK symbols ($(printf '%s\n' "$bad_syms" | wc -l) of them), such as:"
	printf '%s\n' "$bad_syms" | head -n 10 | sed 's/^/  /'
	rc=1
fi
[ $rc -eq 0 ] || exit 1
echo "ok: $bin links none of DPDK, hwloc, ZeroMQ, CUDA, OpenBLAS or FFTW, and has no CUDA or DPDK symbols"
