/**
 * @file
 * The host emulation of CUDA (emu.cpp) as the test program sees it: what the emulation
 * counted and what it found. Plain C, so that the C test reads it.
 */
#ifndef MB_EMU_API_H
#define MB_EMU_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mb_emu_stats {
	/* work done */
	uint64_t launches;	 /**< kernel launches */
	uint64_t fiber_launches; /**< of them, thread by thread on fibers (barriers, shuffles) */
	uint64_t resumes;	 /**< fiber switches into a thread */
	uint64_t gemms;		 /**< cuBLAS calls (a strided batch counts once) */
	uint64_t ffts;		 /**< cuFFT executions */
	uint64_t copies;	 /**< cudaMemcpy* and cudaMemset* calls */
	uint64_t carved;	 /**< run allocations carved into guarded parts */
	/* what it found (each one also printed to stderr as it happens) */
	uint64_t hazards;     /**< device work that touched memory another stream had used,
			       * with nothing ordering the two (event, synchronisation) */
	uint64_t wild;	      /**< kernel pointer arguments into no device or pinned allocation */
	uint64_t legacy_work; /**< asynchronous work queued on the legacy (NULL) stream */
	/* what is still held (0 after every model is unloaded) */
	uint64_t device_allocs, pinned_allocs, streams, events, blas_handles, fft_plans, pools;
};

/** The counters since the program started. Main thread. */
void mb_emu_stats(struct mb_emu_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MB_EMU_API_H */
