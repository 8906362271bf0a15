/**
 * @file
 * Private to gpu/: the built-in models on a CUDA device (cuda_nets.cu), behind plain C.
 *
 * A net (struct mb_cuda_net) is one model's constant device data: weights uploaded once,
 * the Hann window and mel filterbank for the audio models. A scratch (struct
 * mb_cuda_scratch) belongs to one worker thread: a CUDA stream for host-to-device copies
 * and one for compute (so item i+1's upload overlaps item i's kernels), cuBLAS, cuDNN and
 * cuFFT handles bound to the compute stream, device buffers sized for the model's largest
 * item, and pinned host staging buffers, all allocated once at worker start.
 *
 * mb_cuda_net_run() runs a batch item by item: the payload is copied into pinned staging,
 * uploaded on the copy stream, converted and run on the compute stream (cuFFT STFT, cuDNN
 * convolutions, cuBLAS projections, kernels of our own for the rest), and the result comes
 * back through pinned memory into the caller's buffer. Numerics follow the CPU reference
 * (models/ in C) step for step, in FP32 (no TF32: cuDNN and cuBLAS are set to FMA math).
 *
 * Threads: create/destroy a net on the main thread; a scratch and runs on its worker thread.
 */
#ifndef MB_CUDA_NETS_INTERNAL_H
#define MB_CUDA_NETS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mb_cuda_net_kind {
	MB_CUDA_LOGMEL = 0,
	MB_CUDA_WHISPER,
	MB_CUDA_CLAP,
	MB_CUDA_VIDEOMAE,
};

/** Constant inputs of a net, host memory, borrowed for the call. */
struct mb_cuda_net_desc {
	enum mb_cuda_net_kind kind;
	int device;		 /**< CUDA ordinal */
	const float *window;	 /**< audio: 400 (periodic Hann) */
	const float *filters;	 /**< audio: n_mels x 201, dense */
	int n_mels;		 /**< audio: 80 or 64 */
	uint32_t max_samples;	 /**< audio: longest item */
	const float *const *w;	 /**< weights in the CPU model's order (mb_models.h specs) */
	const uint64_t *w_numel; /**< element count of each */
	uint32_t n_w;
};

/** One item of a batch. */
struct mb_cuda_item {
	const void *payload; /**< host */
	uint32_t payload_len;
	int pcm_s16;	  /**< audio: 1 PCM_S16LE, 0 PCM_F32LE */
	uint32_t samples; /**< audio samples (0 for video) */
	void *out;	  /**< host, result bytes as the CPU model writes them */
	uint32_t out_len;
};

struct mb_cuda_net;
struct mb_cuda_scratch;

/** Upload a net. Returns 0, or a negative value with the CUDA/cuDNN error in @p err. */
int mb_cuda_net_create(const struct mb_cuda_net_desc *desc, struct mb_cuda_net **out, char *err,
		       size_t err_len);
void mb_cuda_net_destroy(struct mb_cuda_net **net);

/** Streams, handles, device and pinned buffers for one worker thread. */
int mb_cuda_scratch_create(const struct mb_cuda_net *net, struct mb_cuda_scratch **out, char *err,
			   size_t err_len);
void mb_cuda_scratch_destroy(struct mb_cuda_scratch **s);

/** Run @p n items; 0, or a negative value with the error in @p err (the batch failed). */
int mb_cuda_net_run(const struct mb_cuda_net *net, struct mb_cuda_scratch *s,
		    const struct mb_cuda_item *items, uint32_t n, char *err, size_t err_len);

/**
 * Free and total memory of @p device in bytes (cudaMemGetInfo). Returns 0 or a negative
 * CUDA error with the reason.
 */
int mb_cuda_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, char *err,
		     size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* MB_CUDA_NETS_INTERNAL_H */
