/**
 * @file
 * Private to the CUDA sources of gpu/ (C++, nvcc): what they would otherwise each write again.
 *
 * The kernels' helpers: the elementwise launch shape (THREADS, grid_of()), the conversion of an
 * F32 value to the GEMM precision (to_s<S>(), WITH_S()), block reductions, one LayerNorm row
 * (cuda_tf.cu's ln_rows and cuda_clap.cu's ln_windows are this row over different rows) and a
 * PCM sample's value. No kernels here (one in a header would be compiled into every file that
 * includes it): a kernel two files share is one file's, behind a host function (logmel's
 * framing and floor, cuda_nets_internal.h; the mean over the tokens, cuda_tf_internal.h). The
 * shared memory a helper uses is its kernel's, passed in. gpu/emulated converts this header as
 * it converts the .cu files (gpu/meson.build: mb_cuda_headers), so the warp reductions below
 * become its one-operation butterflies there.
 *
 * A transformer network's worker (struct mb_tf_worker, defined in cuda_tf.cu): what every
 * worker of whisper, videomae and clap holds (its context, optionally a cuFFT plan of its own
 * with the work area the net sized at load, pinned host staging grown to the largest batch and
 * kept) and the frame of a run (begin: the stream, the staging, the run's one allocation; end:
 * that allocation freed whatever happened).
 *
 * Threads: the helpers have no state. A worker belongs to one worker thread.
 */
#ifndef MB_CUDA_COMMON_INTERNAL_H
#define MB_CUDA_COMMON_INTERNAL_H

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_tf_internal.h"

/* ---- the kernels' helpers ---- */

/* elementwise kernels: threads per block; grid_of(n) blocks cover n values, one a thread */
#define THREADS 256
/* LayerNorm: one block per row of at most MB_TF_MAX_D values, LN_PER a thread */
#define LN_THREADS 128
#define LN_PER (MB_TF_MAX_D / LN_THREADS)

static_assert(MB_TF_MAX_D % LN_THREADS == 0, "LayerNorm's row");

/* run the statement(s) with S the C++ type of precision @p prec */
#define WITH_S(prec, ...)                                                                          \
	do {                                                                                       \
		switch (prec) {                                                                    \
		case MB_TF_F16: {                                                                  \
			using S = __half;                                                          \
			__VA_ARGS__;                                                               \
		} break;                                                                           \
		case MB_TF_BF16: {                                                                 \
			using S = __nv_bfloat16;                                                   \
			__VA_ARGS__;                                                               \
		} break;                                                                           \
		default: {                                                                         \
			using S = float;                                                           \
			__VA_ARGS__;                                                               \
		} break;                                                                           \
		}                                                                                  \
	} while (0)

namespace
{

inline unsigned int
grid_of(size_t n)
{
	return (unsigned int)((n + THREADS - 1) / THREADS);
}

/* @p v in S, rounded to nearest even */
template <typename S> __device__ __forceinline__ S to_s(float v);
template <>
__device__ __forceinline__ float
to_s<float>(float v)
{
	return v;
}
template <>
__device__ __forceinline__ __half
to_s<__half>(float v)
{
	return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16
to_s<__nv_bfloat16>(float v)
{
	return __float2bfloat16_rn(v);
}

/* the sum (max) over the block of every thread's @p v, in every thread; @p sh: 32 floats */
template <int NT>
__device__ __forceinline__ float
block_sum(float v, float *sh)
{
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	__syncthreads(); /* sh may still be read by an earlier call */
	if (lane == 0)
		sh[warp] = v;
	__syncthreads();
	v = lane < NT / 32 ? sh[lane] : 0.0f;
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

template <int NT>
__device__ __forceinline__ float
block_max(float v, float *sh)
{
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	__syncthreads();
	if (lane == 0)
		sh[warp] = v;
	__syncthreads();
	v = lane < NT / 32 ? sh[lane] : -INFINITY;
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

/*
 * LayerNorm of @p row (@p d F32 values) into @p out in S, by a block of LN_THREADS threads:
 * (x - mean) / sqrt(var + eps) * g + b, F32 statistics, biased variance (as torch). @p sh: the
 * kernel's 32 floats of shared memory.
 */
template <typename S>
__device__ __forceinline__ void
ln_row(const float *row, uint32_t d, const float *g, const float *b, float eps, S *out, float *sh)
{
	float v[LN_PER], sum = 0.0f, sq = 0.0f, mean, var, inv;

#pragma unroll
	for (int i = 0; i < LN_PER; i++) {
		uint32_t c = threadIdx.x + i * LN_THREADS;

		v[i] = c < d ? row[c] : 0.0f;
		sum += v[i];
	}
	mean = block_sum<LN_THREADS>(sum, sh) / (float)d;
#pragma unroll
	for (int i = 0; i < LN_PER; i++) {
		uint32_t c = threadIdx.x + i * LN_THREADS;
		float t = v[i] - mean;

		if (c < d)
			sq += t * t;
	}
	var = block_sum<LN_THREADS>(sq, sh) / (float)d;
	inv = 1.0f / sqrtf(var + eps);
#pragma unroll
	for (int i = 0; i < LN_PER; i++) {
		uint32_t c = threadIdx.x + i * LN_THREADS;

		if (c < d)
			out[c] = to_s<S>((v[i] - mean) * inv * g[c] + b[c]);
	}
}

/* sample @p j of PCM @p in: S16LE (@p s16) / 32768, or F32LE as it is */
__device__ __forceinline__ float
pcm_sample(const void *in, int s16, int64_t j)
{
	if (s16) {
		const uint8_t *p = (const uint8_t *)in;

		return (float)(int16_t)(p[2 * j] | p[2 * j + 1] << 8) / 32768.0f;
	}
	return ((const float *)in)[j];
}

} /* namespace */

/* ---- a transformer network's worker ---- */

/*
 * What a worker of whisper, videomae or clap holds, from its create to its destroy. Zeroed
 * before mb_tf_worker_init() (a value-initialised worker); mb_tf_worker_fini() frees whatever
 * was made, so a failed init is undone by it.
 */
struct mb_tf_worker {
	int device;
	struct mb_tf_ctx *ctx;
	cufftHandle fft; /* whisper's and clap's STFT (mb_tf_worker_fft()), when fft_made */
	bool fft_made;
	void *fft_area; /* the plan's work area, the net's fft_work bytes (NULL when 0) */
	uint32_t cap;	/* items the pinned staging holds */
	void *pin_in;	/* cap slots of the run's in_item bytes */
	float *pin_out; /* cap slots of the run's out_item floats */
};

/** The context, on the store's device in its precision. 0, or negative with @p err. */
int mb_tf_worker_init(struct mb_tf_worker *w, const struct mb_tf_store *store, char *err,
		      size_t err_len);

/** Destroy the context (waiting for its work), the plan, the work area and the staging. */
void mb_tf_worker_fini(struct mb_tf_worker *w);

/**
 * A plan of @p batch @p n-point transforms of @p type that leaves its work area to us, and
 * none allocated: *@p ws, the work area it wants on CUDA device @p device (made current). A
 * net learns it at load, so that the service is told each worker's device memory.
 */
int mb_tf_fft_work(int device, int n, cufftType type, int batch, size_t *ws, char *err,
		   size_t err_len);

/**
 * The worker's own plan of that shape, with a work area of the @p fft_work bytes the net
 * learnt at load (mb_tf_fft_work(); more is an error: the service was told fft_work).
 */
int mb_tf_worker_fft(struct mb_tf_worker *w, int n, cufftType type, int batch, size_t fft_work,
		     char *err, size_t err_len);

/**
 * Start a run of @p n items (n > 0) on @p stream (NULL: the context's own): the context
 * begun on it, the stream waited for (it may carry others' work; nothing of ours reads the
 * staging after this), the pinned staging grown to @p n slots of @p in_item bytes in and
 * @p out_item floats out (grown when a larger batch first arrives, then kept), and the run's
 * allocation of mb_tf_parts_bytes(@p parts, @p k, @p n) from the pool: *@p base. 0, or
 * negative with @p err (nothing to end then).
 */
int mb_tf_worker_begin(struct mb_tf_worker *w, void *stream, uint32_t n, size_t in_item,
		       size_t out_item, const struct mb_tf_part *parts, uint32_t k, void **base,
		       char *err, size_t err_len);

/**
 * End the run begun by mb_tf_worker_begin() whose batch returned @p rc: *@p base freed after
 * the work queued on the stream, whatever happened, and the stream waited for. @p rc when it
 * is negative (its @p err kept), else the free's result.
 */
int mb_tf_worker_end(struct mb_tf_worker *w, void **base, int rc, char *err, size_t err_len);

#endif /* MB_CUDA_COMMON_INTERNAL_H */
