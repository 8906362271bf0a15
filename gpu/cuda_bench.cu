/*
 * cuda_bench.cu: perf only. The library layers of a built-in model, run alone on random
 * inputs (see mb_cuda_layers_time in cuda_nets_internal.h), so that perf/model_bench can
 * set the model's achieved FLOP/s against what cuFFT, cuDNN and cuBLAS reach on the same
 * shapes without the model's own kernels, copies and synchronisation.
 *
 * Layers, per item of `frames` = samples / 160 STFT frames:
 *   logmel    cuFFT R2C 400 x frames
 *   clap      FFT; conv1d 64->128 k3 s1; 128->256 k3 s2; 256->256 k3 s2; linear 256->512
 * The transformer networks (whisper, videomae) are measured by their GEMMs instead
 * (mb_cuda_gemms_time, at the end): exactly the GEMMs a run of the network issued, as
 * cuda_tf.cu recorded them, run by cuBLAS alone.
 * Each is timed with CUDA events on one stream: one untimed call, then as many calls as fit
 * in about 100 ms (3 at least), averaged.
 *
 * "As run" is what the model does: one item per call, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
 * with FMA math, SGEMV heads, the STFT in calls of FFT_CHUNK (256) frames. "Best" is
 * `batch` items per call, the fastest algorithm cudnnFindConvolutionForwardAlgorithm reports
 * under FMA math (no TF32, so the numerics stay those of the CPU reference), SGEMM heads and
 * an FFT plan of exactly the batch's frames.
 */
#include <cmath>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check_internal.h"
#include "cuda_nets_internal.h"

#define N_FFT 400
#define FFT_CHUNK 256 /* as cuda_nets.cu */
#define BINS 201
#define HOP 160
#define WS_CAP (512u << 20)
#define TARGET_MS 100.0

struct bench_ctx {
	cudaStream_t stream;
	cudaEvent_t t0, t1;
	cudnnHandle_t dnn;
	cublasHandle_t blas;
	cudnnTensorDescriptor_t xd, yd;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	void *ws;
};

/* a convolution: 1-D as NCHW with H = 1 (nd 4), or 3-D as NCDHW (nd 5) */
struct conv_layer {
	int nd;
	int cin, cout;
	int in[3];  /* spatial input size (1-D: 1, t) */
	int k[3];   /* kernel */
	int pad[3]; /* per spatial dimension */
	int stride[3];
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

/* ---- convolutions ---- */

struct conv_run {
	const float *x, *w;
	float *y;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
};

static int
conv_call(struct bench_ctx *c, void *arg, char *err, size_t err_len)
{
	const struct conv_run *r = (const struct conv_run *)arg;
	const float one = 1.0f, zero = 0.0f;

	DNN_OK(cudnnConvolutionForward(c->dnn, &one, c->xd, r->x, c->wd, r->w, c->cd, r->algo,
				       c->ws, r->ws, &zero, c->yd, r->y));
	return 0;
}

static void
packed_strides(int nd, const int *dim, int *str)
{
	str[nd - 1] = 1;
	for (int i = nd - 2; i >= 0; i--)
		str[i] = str[i + 1] * dim[i + 1];
}

/*
 * Time @p L on @p n items: the model's algorithm (best false) or cuDNN's fastest FMA one.
 * Returns 0 with the mean ms per call, the FLOP of one item, the algorithm used.
 */
static int
time_conv(struct bench_ctx *c, const struct conv_layer *L, int n, bool best, double *ms,
	  double *flop, int *algo, char *err, size_t err_len)
{
	int sp = L->nd - 2, xdim[5], xstr[5], wdim[5], ydim[5], ystr[5], dil[3] = {1, 1, 1};
	size_t xn = 1, wn = 1, yn = 1, out_sp = 1, k_sp = 1;
	struct conv_run r = {};
	int rc = 0;

	xdim[0] = n;
	xdim[1] = L->cin;
	wdim[0] = L->cout;
	wdim[1] = L->cin;
	for (int i = 0; i < sp; i++) {
		xdim[2 + i] = L->in[i];
		wdim[2 + i] = L->k[i];
		k_sp *= (size_t)L->k[i];
	}
	packed_strides(L->nd, xdim, xstr);
	DNN_OK(cudnnSetTensorNdDescriptor(c->xd, CUDNN_DATA_FLOAT, L->nd, xdim, xstr));
	DNN_OK(cudnnSetFilterNdDescriptor(c->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, L->nd, wdim));
	DNN_OK(cudnnSetConvolutionNdDescriptor(c->cd, sp, L->pad, L->stride, dil,
					       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	DNN_OK(cudnnSetConvolutionMathType(c->cd, CUDNN_FMA_MATH));
	DNN_OK(cudnnGetConvolutionNdForwardOutputDim(c->cd, c->xd, c->wd, L->nd, ydim));
	packed_strides(L->nd, ydim, ystr);
	DNN_OK(cudnnSetTensorNdDescriptor(c->yd, CUDNN_DATA_FLOAT, L->nd, ydim, ystr));
	for (int i = 0; i < L->nd; i++) {
		xn *= (size_t)xdim[i];
		wn *= (size_t)wdim[i];
		yn *= (size_t)ydim[i];
	}
	for (int i = 2; i < L->nd; i++)
		out_sp *= (size_t)ydim[i];
	*flop = 2.0 * L->cin * (double)k_sp * L->cout * (double)out_sp;
	r.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
	if ((rc = alloc_random(c, xn, (float **)&r.x, err, err_len)) < 0 ||
	    (rc = alloc_random(c, wn, (float **)&r.w, err, err_len)) < 0)
		goto out;
	if (cudaMalloc((void **)&r.y, yn * sizeof(float)) != cudaSuccess) {
		seterr(err, err_len, "cudaMalloc of %zu bytes for a convolution's output",
		       yn * sizeof(float));
		rc = -1;
		goto out;
	}
	if (best) {
		cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
		int got = 0;
		bool found = false;
		cudnnStatus_t st;

		st = cudnnFindConvolutionForwardAlgorithm(c->dnn, c->xd, c->wd, c->cd, c->yd,
							  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
							  perf);
		if (st != CUDNN_STATUS_SUCCESS) {
			seterr(err, err_len, "cudnnFindConvolutionForwardAlgorithm: %s",
			       cudnnGetErrorString(st));
			rc = -1;
			goto out;
		}
		for (int i = 0; i < got && !found; i++) /* sorted fastest first */
			if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_CAP &&
			    perf[i].mathType == CUDNN_FMA_MATH) {
				r.algo = perf[i].algo;
				found = true;
			}
		if (!found) {
			seterr(err, err_len, "cuDNN found no FMA algorithm for a %d-D convolution",
			       sp);
			rc = -1;
			goto out;
		}
	}
	*algo = (int)r.algo;
	{
		cudnnStatus_t st = cudnnGetConvolutionForwardWorkspaceSize(
			c->dnn, c->xd, c->wd, c->cd, c->yd, r.algo, &r.ws);

		if (st != CUDNN_STATUS_SUCCESS || r.ws > WS_CAP) {
			seterr(err, err_len, "algorithm %d wants %zu bytes of workspace (%s)",
			       (int)r.algo, r.ws, cudnnGetErrorString(st));
			rc = -1;
			goto out;
		}
	}
	rc = time_calls(c, conv_call, &r, ms, err, err_len);
out:
	cudaStreamSynchronize(c->stream);
	cudaFree((void *)r.x);
	cudaFree((void *)r.w);
	cudaFree(r.y);
	return rc;
}

/* ---- projection heads ---- */

struct head_run {
	int in, out, n;
	bool gemm;
	const float *w, *x;
	float *y;
};

static int
head_call(struct bench_ctx *c, void *arg, char *err, size_t err_len)
{
	const struct head_run *r = (const struct head_run *)arg;
	const float one = 1.0f;

	/* W [out x in] row-major is [in x out] column-major: y = W x + y (bias as in the model) */
	if (r->gemm)
		BLAS_OK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, r->out, r->n, r->in, &one,
				    r->w, r->in, r->x, r->in, &one, r->y, r->out));
	else
		for (int i = 0; i < r->n; i++)
			BLAS_OK(cublasSgemv(c->blas, CUBLAS_OP_T, r->in, r->out, &one, r->w, r->in,
					    r->x + (size_t)i * r->in, 1, &one,
					    r->y + (size_t)i * r->out, 1));
	return 0;
}

static int
time_head(struct bench_ctx *c, int in, int out, int n, bool gemm, double *ms, double *flop,
	  char *err, size_t err_len)
{
	struct head_run r = {in, out, n, gemm, NULL, NULL, NULL};
	int rc;

	*flop = 2.0 * in * out;
	if ((rc = alloc_random(c, (size_t)in * out, (float **)&r.w, err, err_len)) < 0 ||
	    (rc = alloc_random(c, (size_t)in * n, (float **)&r.x, err, err_len)) < 0 ||
	    (rc = alloc_random(c, (size_t)out * n, &r.y, err, err_len)) < 0)
		goto out;
	rc = time_calls(c, head_call, &r, ms, err, err_len);
out:
	cudaStreamSynchronize(c->stream);
	cudaFree((void *)r.w);
	cudaFree((void *)r.x);
	cudaFree(r.y);
	return rc;
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
	if (c->xd != NULL)
		cudnnDestroyTensorDescriptor(c->xd);
	if (c->yd != NULL)
		cudnnDestroyTensorDescriptor(c->yd);
	if (c->wd != NULL)
		cudnnDestroyFilterDescriptor(c->wd);
	if (c->cd != NULL)
		cudnnDestroyConvolutionDescriptor(c->cd);
	if (c->dnn != NULL)
		cudnnDestroy(c->dnn);
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
	CUDA_OK(cudaMalloc(&c->ws, WS_CAP));
	DNN_OK(cudnnCreate(&c->dnn));
	DNN_OK(cudnnSetStream(c->dnn, c->stream));
	BLAS_OK(cublasCreate(&c->blas));
	BLAS_OK(cublasSetStream(c->blas, c->stream));
	DNN_OK(cudnnCreateTensorDescriptor(&c->xd));
	DNN_OK(cudnnCreateTensorDescriptor(&c->yd));
	DNN_OK(cudnnCreateFilterDescriptor(&c->wd));
	DNN_OK(cudnnCreateConvolutionDescriptor(&c->cd));
	return 0;
}

static struct conv_layer
conv1d(int cin, int cout, int t, int stride)
{
	struct conv_layer L = {};

	L.nd = 4;
	L.cin = cin;
	L.cout = cout;
	L.in[0] = 1;
	L.in[1] = t;
	L.k[0] = 1;
	L.k[1] = 3;
	L.pad[1] = 1;
	L.stride[0] = 1;
	L.stride[1] = stride;
	return L;
}

static const char *
algo_name(int a)
{
	static const char *const names[] = {
		"implicit-gemm", "precomp-gemm", "gemm",     "direct",
		"fft",		 "fft-tiling",	 "winograd", "winograd-nonfused"};

	return a >= 0 && a < (int)(sizeof(names) / sizeof(names[0])) ? names[a] : "?";
}

static int
layers_time(struct bench_ctx *c, enum mb_cuda_net_kind kind, uint32_t samples, uint32_t max_samples,
	    uint32_t batch, struct mb_cuda_layers *out, char *err, size_t err_len)
{
	struct conv_layer convs[3];
	int n_convs = 0, head_in = 0, head_out = 0, algo;
	uint32_t frames = samples / HOP;
	double ms, flop;
	size_t used = 0;
	int rc;

	if (frames == 0 || samples > max_samples) {
		seterr(err, err_len, "%u samples: out of range (longest %u)", samples, max_samples);
		return -1;
	}
	out->fft_flop_per_item = 2.5 * N_FFT * log2((double)N_FFT) * frames;
	out->flop_per_item += out->fft_flop_per_item;
	if ((rc = time_fft(c, frames, FFT_CHUNK, &ms, err, err_len)) < 0)
		return rc;
	out->ms_as_run += ms;
	if ((rc = time_fft(c, frames * batch, 0, &ms, err, err_len)) < 0)
		return rc;
	out->ms_best += ms / batch;
	switch (kind) {
	case MB_CUDA_CLAP:
		convs[n_convs++] = conv1d(64, 128, (int)frames, 1);
		convs[n_convs++] = conv1d(128, 256, (int)frames, 2);
		convs[n_convs++] = conv1d(256, 256, (int)(frames + 1) / 2, 2);
		head_in = 256;
		head_out = 512;
		break;
	default:
		break;
	}
	for (int i = 0; i < n_convs; i++) {
		if ((rc = time_conv(c, &convs[i], 1, false, &ms, &flop, &algo, err, err_len)) < 0)
			return rc;
		out->ms_as_run += ms;
		out->flop_per_item += flop;
		if ((rc = time_conv(c, &convs[i], (int)batch, true, &ms, &flop, &algo, err,
				    err_len)) < 0)
			return rc;
		out->ms_best += ms / batch;
		used += (size_t)snprintf(out->best_algos + used, sizeof(out->best_algos) - used,
					 "%s%s", i > 0 ? "," : "", algo_name(algo));
		if (used >= sizeof(out->best_algos))
			used = sizeof(out->best_algos) - 1;
	}
	if (head_in > 0) {
		if ((rc = time_head(c, head_in, head_out, 1, false, &ms, &flop, err, err_len)) < 0)
			return rc;
		out->ms_as_run += ms;
		out->flop_per_item += flop;
		if ((rc = time_head(c, head_in, head_out, (int)batch, true, &ms, &flop, err,
				    err_len)) < 0)
			return rc;
		out->ms_best += ms / batch;
	}
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

#define BLAS_WS (32u << 20) /* as cuda_tf.cu */

static int
gemms_time(struct bench_ctx *c, const struct mb_cuda_gemm_list *l, double *ms, char *err,
	   size_t err_len)
{
	struct gemms_run r = {l, NULL, NULL, NULL};
	size_t na = 4, nb = 4, nc = 4; /* bytes */
	int rc, type;

	/* the model's cuBLAS settings: no TF32, no reduced-precision reductions, 32 MiB */
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
	 * precision but for videomae's small F32 classifier); C is read as F32 only (beta 1) */
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
