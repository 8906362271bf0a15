/**
 * @file
 * Private to gpu/models: the glue between the load/worker/run of logmel and its CUDA
 * implementation (cuda_nets_internal.h). In a build without CUDA every call answers -ENOTSUP
 * with a reason, so the model compiles the same either way. (The networks on the shared
 * lifecycle, whisper, videomae and clap, reach CUDA through net.c's hooks instead:
 * net_internal.h.)
 *
 * Threads: as model.h: load/unload on the main thread, the rest on the worker's thread.
 */
#ifndef MB_MODELS_GPU_INTERNAL_H
#define MB_MODELS_GPU_INTERNAL_H

#include <stdint.h>

#include "mediabatch/model.h"

#include "mb_build_config.h"
#include "mel_internal.h"

/* the values are enum mb_cuda_net_kind's */
enum mb_gpu_kind {
	MB_GPU_LOGMEL = 0,
};

/** MB_MODEL_ON_CPU, plus MB_MODEL_ON_CUDA when this build has CUDA. */
#define MB_MODELS_DEVICES (MB_MODEL_ON_CPU | (MB_HAVE_CUDA ? MB_MODEL_ON_CUDA : 0))

/**
 * Upload a model to CUDA device @p device: @p mel (audio models, else NULL) and the longest
 * item in samples. @p w, @p numel, @p n_w: weight tensors, which no model here has any more
 * (clap's CUDA path took them): n_w must be 0 (-EINVAL otherwise). Returns 0 with the net in
 * @p net, or -errno with @p reason.
 */
int mb_models_gpu_load(enum mb_gpu_kind kind, int device, const struct mb_mel *mel,
		       uint32_t max_samples, float *const *w, const uint64_t *numel, uint32_t n_w,
		       void **net, char *reason, size_t reason_len);
void mb_models_gpu_unload(void **net);

/** Per worker thread: streams, handles, buffers. 0 or -errno. */
int mb_models_gpu_worker_init(void *net, void **scratch);
void mb_models_gpu_worker_fini(void **scratch);

/** What one item's result looks like: fills rows, cols, result type; returns its bytes. */
typedef uint32_t (*mb_gpu_shape_fn)(const struct mb_model_item *it, uint16_t *rows, uint16_t *cols,
				    uint16_t *result_type);

/**
 * Run @p batch on the device: allocate each item's result (shape from @p shape, 0 bytes =
 * the item is refused), upload, compute, download. 0, or -EIO when the batch failed.
 */
int mb_models_gpu_run(void *net, void *scratch, struct mb_model_batch *batch,
		      mb_gpu_shape_fn shape);

#endif /* MB_MODELS_GPU_INTERNAL_H */
