/**
 * @file
 * Perf only (perf/model_bench): figures about the built-in models' CUDA code that the service
 * never asks for. In a build without CUDA each call answers -ENOTSUP (and a reason).
 *
 *   mb_models_gpu_timing_*  per-item upload and compute times of CUDA runs, from CUDA events
 *                           (struct mb_cuda_timing), for the copy/compute overlap
 *   mb_models_gpu_layers    a model's library layers (cuFFT) run alone on the same shapes
 *                           (struct mb_cuda_layers), for its achieved FLOP/s (logmel)
 *   mb_models_gpu_gemm_*    the GEMMs a transformer network's run issued (whisper, videomae)
 *   mb_models_gpu_gemms_time  cuBLAS running exactly those GEMMs alone
 *   mb_models_gpu_pool      the memory pool the networks' runs allocate from on a device
 *
 * Threads: any one thread at a time.
 */
#ifndef MB_MODELS_PERF_H
#define MB_MODELS_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_nets_internal.h"
#include "cuda_tf_internal.h"

/** Time the items of CUDA workers set up from now on (on) or not (off); clears the totals. */
int mb_models_gpu_timing_enable(bool on);

/** The totals since the last call or enable, then clears them. 0 or -ENOTSUP. */
int mb_models_gpu_timing_take(struct mb_cuda_timing *t);

/**
 * Time @p model's library layers on CUDA device @p device for items of @p samples (audio;
 * ignored for videomae) in batches of @p batch. 0, -EINVAL for a model without such layers
 * (identity, plugins), -ENOTSUP without CUDA, -EIO with the CUDA error; @p reason says which.
 */
int mb_models_gpu_layers(const char *model, int device, uint32_t samples, uint32_t batch,
			 struct mb_cuda_layers *out, char *reason, size_t reason_len);

/** Record the shape of every GEMM the networks issue from now on (on; clears) or stop. */
int mb_models_gpu_gemm_record(bool on);

/** The GEMMs recorded since recording began or the last take. 0 or -ENOTSUP. */
int mb_models_gpu_gemm_take(struct mb_cuda_gemm_list *l);

/**
 * cuBLAS alone running every GEMM of @p l (as often as recorded) on CUDA device @p device:
 * @p ms for the whole list. 0, -ENOTSUP without CUDA, -EIO with the CUDA error in @p reason.
 */
int mb_models_gpu_gemms_time(int device, const struct mb_cuda_gemm_list *l, double *ms,
			     char *reason, size_t reason_len);

/**
 * The memory pool that whisper's and videomae's runs allocate their batches from on CUDA
 * device @p device (struct mb_tf_pool_stats: what it holds and what runs hold of it, now and
 * at most). With @p reset, first give its free pages back to the driver and reset the high
 * marks, so that the next run's figures are that run's alone. 0, -ENOENT when no worker of
 * theirs holds a pool there, -ENOTSUP without CUDA, -EIO with the CUDA error in @p reason.
 */
int mb_models_gpu_pool(int device, bool reset, struct mb_tf_pool_stats *out, char *reason,
		       size_t reason_len);

#endif /* MB_MODELS_PERF_H */
