/*
 * emulated_test.c (suite "emu", test gpu/emulated): the built-in models' CUDA code against
 * their CPU reference on a machine without a GPU. It is tests/gpu/cuda_models_test.c itself
 * (included below: its cases, inputs, batches, precisions, tolerances and device-memory
 * checks, unchanged), linked not against the CUDA runtime but against a host emulation of
 * it (emu.cpp) and the networks' .cu sources turned into C++ at build time (gen.py), with
 * gpu/'s C code built again with MB_HAVE_CUDA on (meson.build here). So every kernel of
 * cuda_nets.cu, cuda_tf.cu, cuda_whisper.cu, cuda_videomae.cu and cuda_clap.cu runs as
 * written, thread by thread, on device 0 of the emulation, and what comes out must agree
 * with the CPU within the tolerances a real GPU is held to.
 *
 * Beyond the numbers it fails on what the emulation finds (a second suite, run last): device
 * work on one stream touching memory another stream used with nothing ordering the two, a
 * kernel given a pointer into no allocation, asynchronous work on the legacy stream, and
 * anything (allocation, stream, event, handle, plan, pool) still held once every model is
 * unloaded. Reads of memory nothing wrote come out as NaN (cuda_models_test.c checks every
 * value is finite), overruns fault on a guard page, and a block whose threads race between
 * barriers gives results that differ from the CPU's: those fail the first suite.
 *
 * What it cannot see: timing, cuBLAS' and cuFFT's own numerics (OpenBLAS and a double FFT
 * stand in), races between blocks or with the host (blocks run one after another, every
 * call is done when it returns), and the GPU's memory model. docs/development.md, "GPU".
 */
#include "emu_api.h"

/* cuda_models_test.c's main() is not ours: renamed, declared, never called */
int cuda_models_main(void);
#define main cuda_models_main
#include "../cuda_models_test.c"
#undef main

/* ---- what the emulation found ---- */

static void
test_emulation(void)
{
	struct mb_emu_stats st;

	mb_emu_stats(&st);
	printf("\n    %llu launches (%llu on fibers, %llu thread switches), %llu GEMMs, %llu FFTs, "
	       "%llu copies, %llu runs carved",
	       (unsigned long long)st.launches, (unsigned long long)st.fiber_launches,
	       (unsigned long long)st.resumes, (unsigned long long)st.gemms,
	       (unsigned long long)st.ffts, (unsigned long long)st.copies,
	       (unsigned long long)st.carved);
	/* it ran the CUDA code at all: kernels, barriers, GEMMs, FFTs, guarded runs */
	CU_ASSERT(st.launches > 0);
	CU_ASSERT(st.fiber_launches > 0);
	CU_ASSERT(st.gemms > 0);
	CU_ASSERT(st.ffts > 0);
	CU_ASSERT(st.carved > 0);
	/* each one printed on stderr as it was found */
	CU_ASSERT_EQUAL(st.hazards, 0);
	CU_ASSERT_EQUAL(st.wild, 0);
	CU_ASSERT_EQUAL(st.legacy_work, 0);
}

static void
test_released(void)
{
	struct mb_emu_stats st;

	mb_emu_stats(&st);
	printf("\n    held after every unload: %llu device and %llu pinned allocations, %llu "
	       "streams, %llu events, %llu cuBLAS handles, %llu cuFFT plans, %llu pools",
	       (unsigned long long)st.device_allocs, (unsigned long long)st.pinned_allocs,
	       (unsigned long long)st.streams, (unsigned long long)st.events,
	       (unsigned long long)st.blas_handles, (unsigned long long)st.fft_plans,
	       (unsigned long long)st.pools);
	CU_ASSERT_EQUAL(st.device_allocs, 0);
	CU_ASSERT_EQUAL(st.pinned_allocs, 0);
	CU_ASSERT_EQUAL(st.streams, 0);
	CU_ASSERT_EQUAL(st.events, 0);
	CU_ASSERT_EQUAL(st.blas_handles, 0);
	CU_ASSERT_EQUAL(st.fft_plans, 0);
	CU_ASSERT_EQUAL(st.pools, 0);
}

static const struct mb_test_case emu_cases[] = {
	{"no cross-stream hazard, wild pointer or legacy-stream work", test_emulation},
	{"every device resource given back", test_released},
	{NULL, NULL},
};

static const struct mb_test_suite emu_suite = {"the emulation's own checks", NULL, NULL, emu_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, &emu_suite, NULL};

	/* device 0 is the emulation's: the probe must find it (as cuda_models_test's main) */
	if (mb_gpu_probe(&g_probe) != 1) {
		fprintf(stderr, "the emulated CUDA device was not found: %s\n", g_probe.reason);
		return 99;
	}
	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_emulated_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return 99;
	return mb_test_main("emulated_test", suites);
}
