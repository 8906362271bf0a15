/**
 * @file
 * Private to gpu/: the built-in model logmel on a CUDA device (cuda_nets.cu), behind plain C;
 * and what perf/model_bench measures of every model's CUDA code (cuda_bench.cu, and the GEMMs
 * that the transformer networks whisper, videomae and clap issue: their CUDA path is
 * cuda_tf_internal.h's).
 *
 * A net (struct mb_cuda_net) is the model's constant device data: the Hann window and mel
 * filterbank. A scratch (struct mb_cuda_scratch) belongs to one worker thread: a CUDA stream
 * for host-to-device copies and one for compute (so item i+1's upload overlaps item i's
 * kernels), a cuFFT plan bound to the compute stream, device buffers sized for the model's
 * largest item, and pinned host staging buffers, all allocated once at worker start.
 *
 * mb_cuda_net_run() runs a batch item by item: the payload is copied into pinned staging,
 * uploaded on the copy stream, converted and run on the compute stream (cuFFT STFT, kernels
 * of our own for the rest), and the result comes back through pinned memory into the
 * caller's buffer. Numerics follow the CPU reference (models/mel.c) step for step, in FP32.
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

/* the values are enum mb_gpu_kind's (models/gpu_internal.h) */
enum mb_cuda_net_kind {
	MB_CUDA_LOGMEL = 0,
};

/** Constant inputs of a net, host memory, borrowed for the call. */
struct mb_cuda_net_desc {
	enum mb_cuda_net_kind kind;
	int device;	      /**< CUDA ordinal */
	const float *window;  /**< 400 (periodic Hann) */
	const float *filters; /**< n_mels x 201, dense */
	int n_mels;	      /**< 80 */
	uint32_t max_samples; /**< longest item */
};

/** One item of a batch. */
struct mb_cuda_item {
	const void *payload; /**< host */
	uint32_t payload_len;
	int pcm_s16;	  /**< 1 PCM_S16LE, 0 PCM_F32LE */
	uint32_t samples; /**< audio samples */
	void *out;	  /**< host, result bytes as the CPU model writes them */
	uint32_t out_len;
};

struct mb_cuda_net;
struct mb_cuda_scratch;

/** Upload a net. Returns 0, or a negative value with the CUDA error in @p err. */
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

/*
 * Two steps of logmel's that whisper's front end (cuda_whisper.cu) takes as they are, both
 * queued on @p stream (a cudaStream_t); 0, or a negative CUDA error with @p err.
 */

/** @p out [frames x 400] = padded[t * 160 + k] * window[k]: the STFT's frames, windowed. */
int mb_cuda_stft_frames(const float *padded, const float *window, uint32_t frames, float *out,
			void *stream, char *err, size_t err_len);

/**
 * The log-mel's floor, in place: x = (max(x, m - 8) + 4) / 4 over @p n values, m their max
 * (kept in *@p max, device memory).
 */
int mb_cuda_mel_floor(float *x, size_t n, float *max, void *stream, char *err, size_t err_len);

/*
 * Perf only (perf/model_bench): where a run's device time goes. With timing enabled, each
 * scratch created afterwards records CUDA events around every item's upload (copy stream)
 * and every item's compute (compute stream, from the moment its upload is waited for to its
 * result's download), for the first MB_CUDA_TIMED_ITEMS items of a run. The service never
 * enables it. Threads: enable/take from any thread (the totals sit behind a mutex);
 * mb_cuda_layers_time on one thread at a time per device.
 */
#define MB_CUDA_TIMED_ITEMS 64

struct mb_cuda_timing {
	uint64_t runs, items;
	double upload_ms;  /**< sum of the items' upload times (copy stream) */
	double compute_ms; /**< sum of the items' compute + result download times */
	double span_ms;	   /**< sum over runs: first upload's start to last item's end */
};

/** Turn timing on or off for scratches created from now on; clears the totals. */
void mb_cuda_timing_enable(int on);

/** The totals since the last call (or enable), then clears them. */
void mb_cuda_timing_take(struct mb_cuda_timing *t);

/*
 * Perf only: the library layers of a built-in model run alone, for comparing the model's
 * achieved FLOP/s with what cuFFT reaches on the same shapes without our glue. The layers:
 * logmel's STFT (cuFFT R2C, 400 points, one per frame). Inputs are random, in FP32.
 */
struct mb_cuda_layers {
	double flop_per_item; /**< the FFT's 2.5 N log2 N per frame */
	/** per item, the layers as the model runs them: one item at a time, the STFT in calls
	 * of 256 frames */
	double ms_as_run;
	/** per item, @p batch items per call: an FFT plan of exactly the batch's frames */
	double ms_best;
};

/**
 * Time the layers of @p kind for items of @p samples, the model's longest item being
 * @p max_samples, in batches of @p batch. 0, or negative with @p err.
 */
int mb_cuda_layers_time(int device, enum mb_cuda_net_kind kind, uint32_t samples,
			uint32_t max_samples, uint32_t batch, struct mb_cuda_layers *out, char *err,
			size_t err_len);

/*
 * Perf only: the GEMMs a transformer network's run issues (cuda_tf.cu records them while
 * recording is on), and cuBLAS running exactly those GEMMs alone (cuda_bench.cu), so that
 * model_bench can set the network's achieved TFLOP/s against cuBLAS' on the same shapes.
 */
#define MB_CUDA_GEMMS_MAX 32

/** One GEMM shape as cuBLAS was called (column-major), and how often. */
struct mb_cuda_gemm {
	int32_t transa, transb; /**< 1: CUBLAS_OP_T */
	int32_t m, n, k, lda, ldb, ldc;
	int64_t stride_a, stride_b, stride_c; /**< strided-batched only */
	int32_t batch;			      /**< 1: cublasGemmEx */
	int32_t a_type, b_type, c_type;	      /**< cudaDataType_t */
	float alpha, beta;
	uint32_t count; /**< calls of exactly this shape */
};

struct mb_cuda_gemm_list {
	uint32_t n;
	uint32_t dropped; /**< calls of shapes beyond MB_CUDA_GEMMS_MAX (none expected) */
	double flop;	  /**< 2 m n k batch over every call, the dropped ones included */
	struct mb_cuda_gemm v[MB_CUDA_GEMMS_MAX];
};

/** Record every GEMM from now on (on; clears the list) or stop (off). Any thread. */
void mb_cuda_gemm_record(int on);

/** The list since recording began or the last take, then clears it. */
void mb_cuda_gemm_take(struct mb_cuda_gemm_list *out);

/**
 * cuBLAS alone on CUDA device @p device: every GEMM of @p l, @p count times each as
 * recorded, on random inputs of the recorded types, one stream, timed with CUDA events (one
 * untimed pass, then as many passes as fit in about 100 ms, at least 3): @p ms per pass.
 * 0, or negative with @p err.
 */
int mb_cuda_gemms_time(int device, const struct mb_cuda_gemm_list *l, double *ms, char *err,
		       size_t err_len);

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
