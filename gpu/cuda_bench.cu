/*
 * cuda_bench.cu: perf only. The library layers of a built-in model, run alone on random
 * inputs (see mb_cuda_layers_time in cuda_nets_internal.h), so that perf/model_bench can
 * set the model's achieved FLOP/s against what cuFFT reaches on the same shapes without the
 * model's own kernels, copies and synchronisation.
 *
 * Layers, per item of `frames` = samples / 160 STFT frames:
 *   logmel    cuFFT R2C 400 x frames
 * The transformer networks (whisper, videomae, clap) are measured by their GEMMs instead
 * (mb_cuda_gemms_time, at the end): exactly the GEMMs a run of the network issued, as
 * cuda_tf.cu recorded them, run by cuBLAS alone (clap's Swin attention included: its
 * windows' strided-batched GEMMs go through the same recorder; clap issues 6 shapes a stage,
 * one a merging, the patch embedding's and the projection's 2: 30 for its 4 stages, within
 * the list's MB_CUDA_GEMMS_MAX).
 * Each is timed with CUDA events on one stream: one untimed call, then as many calls as fit
 * in about 100 ms (3 at least), averaged.
 *
 * "As run" is what the model does: one item per call, the STFT in calls of FFT_CHUNK (256)
 * frames. "Best" is `batch` items per call, an FFT plan of exactly the batch's frames.
 */
#include <cmath>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check_internal.h"
#include "cuda_nets_internal.h"
#include "cuda_tf_internal.h"

#define N_FFT 400
#define FFT_CHUNK 256 /* as cuda_nets.cu */
#define BINS 201
#define HOP 160
#define BLAS_WS ((size_t)MB_TF_BLAS_WS) /* as cuda_tf.cu */
#define TARGET_MS 100.0

struct bench_ctx {
	cudaStream_t stream;
	cudaEvent_t t0, t1;
	cublasHandle_t blas;
	void *ws; /* BLAS_WS: the cuBLAS workspace */
};

/* fill with values in [-1, 1) from a hash of the index */
__global__ void
fill_random(float *p, size_t n, uint32_t seed)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t h;

	if (i >= n)
		return;
	h = (uint32_t)i * 2654435761u ^ seed;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	p[i] = (float)(h & 0xffffff) / 8388608.0f - 1.0f;
}

static int
alloc_random(struct bench_ctx *c, size_t n, float **p, char *err, size_t err_len)
{
	CUDA_OK(cudaMalloc((void **)p, n * sizeof(float)));
	fill_random<<<(unsigned int)((n + 255) / 256), 256, 0, c->stream>>>(*p, n, (uint32_t)n);
	CUDA_OK(cudaGetLastError());
	return 0;
}

/* Set when a call was timed: its mean time in ms. */
typedef int (*bench_call)(struct bench_ctx *c, void *arg, char *err, size_t err_len);

static int
time_calls(struct bench_ctx *c, bench_call call, void *arg, double *ms, char *err, size_t err_len)
{
	float once, all;
	int reps, rc;

	if ((rc = call(c, arg, err, err_len)) < 0) /* warm-up: plans, kernels' first load */
		return rc;
	CUDA_OK(cudaEventRecord(c->t0, c->stream));
	if ((rc = call(c, arg, err, err_len)) < 0)
		return rc;
	CUDA_OK(cudaEventRecord(c->t1, c->stream));
	CUDA_OK(cudaEventSynchronize(c->t1));
	CUDA_OK(cudaEventElapsedTime(&once, c->t0, c->t1));
	reps = once > 0 ? (int)(TARGET_MS / once) : 200;
	reps = reps < 3 ? 3 : reps > 200 ? 200 : reps;
	CUDA_OK(cudaEventRecord(c->t0, c->stream));
	for (int r = 0; r < reps; r++)
		if ((rc = call(c, arg, err, err_len)) < 0)
			return rc;
	CUDA_OK(cudaEventRecord(c->t1, c->stream));
	CUDA_OK(cudaEventSynchronize(c->t1));
	CUDA_OK(cudaEventElapsedTime(&all, c->t0, c->t1));
	*ms = all / reps;
	return 0;
}

/* ---- the STFT ---- */

struct fft_run {
	cufftHandle plan;
	uint32_t per_call, calls;
	float *in;
	cufftComplex *out;
};

static int
fft_call(struct bench_ctx *c, void *arg, char *err, size_t err_len)
{
	struct fft_run *r = (struct fft_run *)arg;

	(void)c;
	for (uint32_t i = 0; i < r->calls; i++)
		FFT_OK(cufftExecR2C(r->plan, r->in + (size_t)i * r->per_call * N_FFT,
				    r->out + (size_t)i * r->per_call * BINS));
	return 0;
}

/* @p transforms 400-point R2C frames, in calls of @p per_call (0: all in one call). */
static int
time_fft(struct bench_ctx *c, uint32_t transforms, uint32_t per_call, double *ms, char *err,
	 size_t err_len)
{
	struct fft_run r = {};
	bool planned = false;
	int rc;

	r.per_call = per_call == 0 ? transforms : per_call;
	r.calls = (transforms + r.per_call - 1) / r.per_call;
	transforms = r.calls * r.per_call;

	if ((rc = alloc_random(c, (size_t)transforms * N_FFT, &r.in, err, err_len)) < 0)
		goto out;
	if (cudaMalloc((void **)&r.out, (size_t)transforms * BINS * sizeof(cufftComplex)) !=
	    cudaSuccess) {
		seterr(err, err_len, "cudaMalloc for %u FFT outputs", transforms);
		rc = -1;
		goto out;
	}
	if (cufftPlan1d(&r.plan, N_FFT, CUFFT_R2C, (int)r.per_call) != CUFFT_SUCCESS ||
	    cufftSetStream(r.plan, c->stream) != CUFFT_SUCCESS) {
		seterr(err, err_len, "cufftPlan1d of %u transforms failed", transforms);
		rc = -1;
		planned = true; /* cufftDestroy of a failed plan is harmless */
		goto out;
	}
	planned = true;
	rc = time_calls(c, fft_call, &r, ms, err, err_len);
out:
	cudaStreamSynchronize(c->stream);
	if (planned)
		cufftDestroy(r.plan);
	cudaFree(r.in);
	cudaFree(r.out);
	return rc;
}

/* ---- per model ---- */

static void
ctx_destroy(struct bench_ctx *c)
{
	if (c->stream != NULL)
		cudaStreamSynchronize(c->stream);
	if (c->blas != NULL)
		cublasDestroy(c->blas);
	if (c->t0 != NULL)
		cudaEventDestroy(c->t0);
	if (c->t1 != NULL)
		cudaEventDestroy(c->t1);
	cudaFree(c->ws);
	if (c->stream != NULL)
		cudaStreamDestroy(c->stream);
}

static int
ctx_create(struct bench_ctx *c, int device, char *err, size_t err_len)
{
	CUDA_OK(cudaSetDevice(device));
	CUDA_OK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
	CUDA_OK(cudaEventCreate(&c->t0));
	CUDA_OK(cudaEventCreate(&c->t1));
	CUDA_OK(cudaMalloc(&c->ws, BLAS_WS));
	BLAS_OK(cublasCreate(&c->blas));
	BLAS_OK(cublasSetStream(c->blas, c->stream));
	return 0;
}

static int
layers_time(struct bench_ctx *c, enum mb_cuda_net_kind kind, uint32_t samples, uint32_t max_samples,
	    uint32_t batch, struct mb_cuda_layers *out, char *err, size_t err_len)
{
	uint32_t frames = samples / HOP;
	double ms;
	int rc;

	if (kind != MB_CUDA_LOGMEL) {
		seterr(err, err_len, "CUDA kind %d: only logmel has library layers", (int)kind);
		return -1;
	}
	if (frames == 0 || samples > max_samples) {
		seterr(err, err_len, "%u samples: out of range (longest %u)", samples, max_samples);
		return -1;
	}
	out->flop_per_item = 2.5 * N_FFT * log2((double)N_FFT) * frames;
	if ((rc = time_fft(c, frames, FFT_CHUNK, &ms, err, err_len)) < 0)
		return rc;
	out->ms_as_run = ms;
	if ((rc = time_fft(c, frames * batch, 0, &ms, err, err_len)) < 0)
		return rc;
	out->ms_best = ms / batch;
	return 0;
}

extern "C" int
mb_cuda_layers_time(int device, enum mb_cuda_net_kind kind, uint32_t samples, uint32_t max_samples,
		    uint32_t batch, struct mb_cuda_layers *out, char *err, size_t err_len)
{
	struct bench_ctx c = {};
	int rc;

	memset(out, 0, sizeof(*out));
	if (batch == 0 || batch > 1024) {
		seterr(err, err_len, "batch %u: 1..1024", batch);
		return -1;
	}
	rc = ctx_create(&c, device, err, err_len);
	if (rc == 0)
		rc = layers_time(&c, kind, samples, max_samples, batch, out, err, err_len);
	ctx_destroy(&c);
	return rc;
}

/* ---- the transformer networks' GEMMs, alone ---- */

/* fill @p n values of type @p T with values in [-1, 1) from a hash of the index */
template <typename T>
__global__ void
fill_typed(T *p, size_t n, uint32_t seed)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t h;

	if (i >= n)
		return;
	h = (uint32_t)i * 2654435761u ^ seed;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	p[i] = (T)((float)(h & 0xffffff) / 8388608.0f - 1.0f);
}

static size_t
type_size(int t)
{
	return t == CUDA_R_32F ? 4 : 2;
}

/* elements a column-major operand of rows x cols with leading dimension ld spans, batched */
static size_t
span(int rows, int cols, int ld, int64_t stride, int batch)
{
	(void)rows;
	return (size_t)(batch - 1) * (size_t)stride + (size_t)ld * (size_t)cols;
}

static int
fill_any(struct bench_ctx *c, void *p, size_t n, int type, char *err, size_t err_len)
{
	unsigned int g = (unsigned int)((n + 255) / 256);

	if (type == CUDA_R_16F)
		fill_typed<__half><<<g, 256, 0, c->stream>>>((__half *)p, n, (uint32_t)n);
	else if (type == CUDA_R_16BF)
		fill_typed<__nv_bfloat16>
			<<<g, 256, 0, c->stream>>>((__nv_bfloat16 *)p, n, (uint32_t)n);
	else
		fill_typed<float><<<g, 256, 0, c->stream>>>((float *)p, n, (uint32_t)n);
	CUDA_OK(cudaGetLastError());
	return 0;
}

struct gemms_run {
	const struct mb_cuda_gemm_list *l;
	void *a, *b, *c;
};

static int
gemms_call(struct bench_ctx *c, void *arg, char *err, size_t err_len)
{
	const struct gemms_run *r = (const struct gemms_run *)arg;

	for (uint32_t i = 0; i < r->l->n; i++) {
		const struct mb_cuda_gemm *g = &r->l->v[i];
		cublasOperation_t ta = g->transa ? CUBLAS_OP_T : CUBLAS_OP_N;
		cublasOperation_t tb = g->transb ? CUBLAS_OP_T : CUBLAS_OP_N;

		for (uint32_t k = 0; k < g->count; k++) {
			if (g->batch == 1)
				BLAS_OK(cublasGemmEx(c->blas, ta, tb, g->m, g->n, g->k, &g->alpha,
						     r->a, (cudaDataType_t)g->a_type, g->lda, r->b,
						     (cudaDataType_t)g->b_type, g->ldb, &g->beta,
						     r->c, (cudaDataType_t)g->c_type, g->ldc,
						     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
			else
				BLAS_OK(cublasGemmStridedBatchedEx(
					c->blas, ta, tb, g->m, g->n, g->k, &g->alpha, r->a,
					(cudaDataType_t)g->a_type, g->lda, g->stride_a, r->b,
					(cudaDataType_t)g->b_type, g->ldb, g->stride_b, &g->beta,
					r->c, (cudaDataType_t)g->c_type, g->ldc, g->stride_c,
					g->batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		}
	}
	return 0;
}

static int
gemms_time(struct bench_ctx *c, const struct mb_cuda_gemm_list *l, double *ms, char *err,
	   size_t err_len)
{
	struct gemms_run r = {l, NULL, NULL, NULL};
	size_t na = 4, nb = 4, nc = 4; /* bytes */
	int rc, type;

	/* the model's cuBLAS settings: no TF32, no reduced-precision reductions, its workspace */
	BLAS_OK(cublasSetMathMode(
		c->blas, (cublasMath_t)(CUBLAS_DEFAULT_MATH |
					CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
	BLAS_OK(cublasSetWorkspace(c->blas, c->ws, BLAS_WS));
	for (uint32_t i = 0; i < l->n; i++) {
		const struct mb_cuda_gemm *g = &l->v[i];
		size_t a = span(g->transa ? g->k : g->m, g->transa ? g->m : g->k, g->lda,
				g->stride_a, g->batch) *
			   type_size(g->a_type);
		size_t b = span(g->transb ? g->n : g->k, g->transb ? g->k : g->n, g->ldb,
				g->stride_b, g->batch) *
			   type_size(g->b_type);
		size_t cc = span(g->m, g->n, g->ldc, g->stride_c, g->batch) * type_size(g->c_type);

		na = a > na ? a : na;
		nb = b > nb ? b : nb;
		nc = cc > nc ? cc : nc;
	}
	rc = -1;
	if (cudaMalloc(&r.a, na) != cudaSuccess || cudaMalloc(&r.b, nb) != cudaSuccess ||
	    cudaMalloc(&r.c, nc) != cudaSuccess) {
		(void)cudaGetLastError();
		seterr(err, err_len, "cudaMalloc of %zu + %zu + %zu bytes for the GEMMs failed", na,
		       nb, nc);
		goto out;
	}
	/* random inputs in the type most of the list reads (a network's GEMMs all read its
	 * precision but for videomae's small F32 classifier and clap's F32 projection); C is
	 * read as F32 only (beta 1) */
	type = CUDA_R_32F;
	for (uint32_t i = 0; i < l->n; i++)
		if (l->v[i].a_type != CUDA_R_32F)
			type = l->v[i].a_type;
	if ((rc = fill_any(c, r.a, na / type_size(type), type, err, err_len)) < 0 ||
	    (rc = fill_any(c, r.b, nb / type_size(type), type, err, err_len)) < 0 ||
	    (rc = fill_any(c, r.c, nc / 4, CUDA_R_32F, err, err_len)) < 0)
		goto out;
	if (rc == 0)
		rc = time_calls(c, gemms_call, &r, ms, err, err_len);
out:
	cudaStreamSynchronize(c->stream);
	cudaFree(r.a);
	cudaFree(r.b);
	cudaFree(r.c);
	return rc;
}

extern "C" int
mb_cuda_gemms_time(int device, const struct mb_cuda_gemm_list *l, double *ms, char *err,
		   size_t err_len)
{
	struct bench_ctx c = {};
	int rc;

	*ms = 0;
	if (l->n == 0) {
		seterr(err, err_len, "no GEMMs recorded");
		return -1;
	}
	rc = ctx_create(&c, device, err, err_len);
	if (rc == 0)
		rc = gemms_time(&c, l, ms, err, err_len);
	ctx_destroy(&c);
	return rc;
}
