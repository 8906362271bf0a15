/*
 * cuda_nets.cu: the built-in models logmel and clap on a CUDA device (see
 * cuda_nets_internal.h). The transformer networks (whisper, videomae) have their own CUDA
 * path on the transformer module: cuda_tf.cu, cuda_whisper.cu, cuda_videomae.cu.
 *
 * Per audio item (logmel, clap), all on the scratch's compute stream:
 *   pcm_to_padded   PCM (s16 or f32) -> float, reflect-padded by 200 at both ends
 *   frames_window   [frames x 400] = padded[t * 160 + k] * hann[k]
 *   cuFFT R2C       400-point, in calls of 256 frames -> [frames x 201] complex
 *   power_mel       [n_mels x frames] = log10(max(filters . |X|^2, 1e-10)), channel-major
 *   reduce_max + clamp_scale   (max(x, max - 8) + 4) / 4
 *   logmel: transpose to [frames x 80]; clap: cuDNN conv (NCHW, H = 1) + bias_gelu per
 *   layer, row_mean, cuBLAS SGEMV, l2_normalise.
 *
 * Numerics: FP32 throughout, FMA math (no TF32) in cuDNN, cuBLAS' default FP32 math;
 * reductions that the CPU code does in double are done in double here too.
 *
 * Overlap: item i + 1's payload is staged in pinned memory and uploaded on the copy stream
 * while item i computes; device input buffers are double-buffered. Nothing is allocated
 * per batch.
 */
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>

#include "cuda_check_internal.h"
#include "cuda_nets_internal.h"

#define N_FFT 400
#define HOP 160
#define PAD 200
#define BINS 201
#define MAX_W 8
/* The STFT runs in calls of FFT_CHUNK frames, so an item's FFT work follows its own length
 * (at most FFT_CHUNK - 1 frames more), not the longest item's. */
#define FFT_CHUNK 256

struct mb_cuda_net {
	enum mb_cuda_net_kind kind;
	int device;
	int n_mels;
	uint32_t max_samples;
	float *window;	 /* [400] */
	float *filters;	 /* [n_mels x 201] */
	float *w[MAX_W]; /* unused entries NULL: destroy frees all MAX_W */
};

struct mb_cuda_scratch {
	const struct mb_cuda_net *net;
	cudaStream_t copy, compute;
	cudaEvent_t uploaded[2];
	cublasHandle_t blas;
	cudnnHandle_t dnn;
	cudnnTensorDescriptor_t xd, yd;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cufftHandle fft;
	bool fft_made;
	uint32_t max_frames;
	uint32_t fft_frames; /* max_frames rounded up to FFT_CHUNK: d_frames, d_spec rows */
	size_t in_cap, out_cap;
	void *pin_in[2], *pin_out; /* pinned host staging */
	void *d_in[2];		   /* raw payload on the device */
	float *d_x;		   /* padded samples / normalised video */
	float *d_frames;	   /* [frames x 400] */
	cufftComplex *d_spec;	   /* [frames x 201] */
	float *d_a, *d_b;	   /* activations, channel-major */
	float *d_vec, *d_out;
	float *d_max;
	void *d_ws;
	size_t ws_cap;
	/* perf only (mb_cuda_timing_enable before the scratch is made): per item, upload
	 * start/end on the copy stream and compute start/end on the compute stream */
	bool timed;
	cudaEvent_t up0[MB_CUDA_TIMED_ITEMS], up1[MB_CUDA_TIMED_ITEMS];
	cudaEvent_t c0[MB_CUDA_TIMED_ITEMS], c1[MB_CUDA_TIMED_ITEMS];
};

static std::mutex g_timing_mu;
static bool g_timing_on;
static struct mb_cuda_timing g_timing;

static unsigned int
blocks(size_t n, unsigned int threads)
{
	return (unsigned int)((n + threads - 1) / threads);
}

/* ---- kernels ---- */

__global__ void
pcm_to_padded(const void *in, int s16, uint32_t n, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	int64_t src;

	if (i >= (size_t)n + 2 * PAD)
		return;
	src = (int64_t)i - PAD;
	if (src < 0)
		src = -src;
	else if (src >= (int64_t)n)
		src = 2 * ((int64_t)n - 1) - src;
	if (s16) {
		const uint8_t *p = (const uint8_t *)in;
		int16_t v = (int16_t)(p[2 * src] | p[2 * src + 1] << 8);

		out[i] = (float)v / 32768.0f;
	} else {
		out[i] = ((const float *)in)[src];
	}
}

__global__ void
frames_window(const float *padded, const float *window, uint32_t frames, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)frames * N_FFT)
		return;
	out[i] = padded[(i / N_FFT) * HOP + i % N_FFT] * window[i % N_FFT];
}

/* [n_mels x frames] = log10(max(sum_k filters[m][k] |X_t[k]|^2, 1e-10)) */
__global__ void
power_mel(const cufftComplex *spec, const float *filters, int n_mels, uint32_t frames, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t m, t;
	float acc = 0.0f;

	if (i >= (size_t)frames * n_mels)
		return;
	m = (uint32_t)(i / frames);
	t = (uint32_t)(i % frames);
	for (int k = 0; k < BINS; k++) {
		cufftComplex c = spec[(size_t)t * BINS + k];
		float f = filters[m * BINS + k];

		if (f != 0.0f)
			acc += f * (c.x * c.x + c.y * c.y);
	}
	out[(size_t)m * frames + t] = log10f(fmaxf(acc, 1e-10f));
}

__global__ void
reduce_max(const float *x, size_t n, float *out)
{
	__shared__ float best[1024];
	float v = -INFINITY;

	for (size_t i = threadIdx.x; i < n; i += blockDim.x)
		v = fmaxf(v, x[i]);
	best[threadIdx.x] = v;
	__syncthreads();
	for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			best[threadIdx.x] = fmaxf(best[threadIdx.x], best[threadIdx.x + s]);
		__syncthreads();
	}
	if (threadIdx.x == 0)
		*out = best[0];
}

__global__ void
clamp_scale(float *x, size_t n, const float *max)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		x[i] = (fmaxf(x[i], *max - 8.0f) + 4.0f) / 4.0f;
}

/* x[c][t] = gelu(x[c][t] + b[c]), exact (erf) GELU */
__global__ void
bias_gelu(float *x, const float *b, uint32_t channels, uint32_t t_len)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	float v;

	if (i >= (size_t)channels * t_len)
		return;
	v = x[i] + b[i / t_len];
	x[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
}

/* [rows x cols] -> [cols x rows] */
__global__ void
transpose(const float *in, uint32_t rows, uint32_t cols, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)rows * cols)
		return;
	out[(i % cols) * rows + i / cols] = in[i];
}

/* out[r] = mean over the row of x[r][0..cols) (+ b[r] if b), accumulated in double */
__global__ void
row_mean(const float *x, uint32_t rows, uint32_t cols, const float *b, float *out)
{
	uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
	double acc = 0.0;

	if (r >= rows)
		return;
	for (uint32_t c = 0; c < cols; c++)
		acc += x[(size_t)r * cols + c];
	out[r] = (float)(acc / cols) + (b != NULL ? b[r] : 0.0f);
}

/* one block: x /= max(|x|, 1e-12) */
__global__ void
l2_normalise(float *x, uint32_t n)
{
	__shared__ double sum[256];
	double s = 0.0;
	float scale;

	for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
		s += (double)x[i] * x[i];
	sum[threadIdx.x] = s;
	__syncthreads();
	for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
		if (threadIdx.x < k)
			sum[threadIdx.x] += sum[threadIdx.x + k];
		__syncthreads();
	}
	scale = (float)(1.0 / fmax(sqrt(sum[0]), 1e-12));
	for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
		x[i] *= scale;
}

/* ---- host side ---- */

extern "C" int
mb_cuda_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, char *err, size_t err_len)
{
	size_t f = 0, t = 0;

	CUDA_OK(cudaSetDevice(device));
	CUDA_OK(cudaMemGetInfo(&f, &t));
	*free_bytes = f;
	*total_bytes = t;
	return 0;
}

extern "C" void
mb_cuda_net_destroy(struct mb_cuda_net **np)
{
	struct mb_cuda_net *n;

	if (np == NULL || *np == NULL)
		return;
	n = *np;
	cudaSetDevice(n->device);
	cudaFree(n->window);
	cudaFree(n->filters);
	/* all of them: one whose upload failed after its cudaMalloc is set too */
	for (uint32_t i = 0; i < MAX_W; i++)
		cudaFree(n->w[i]);
	delete n;
	*np = NULL;
}

static int
upload(const void *host, size_t bytes, float **dev, char *err, size_t err_len)
{
	CUDA_OK(cudaMalloc((void **)dev, bytes));
	CUDA_OK(cudaMemcpy(*dev, host, bytes, cudaMemcpyHostToDevice));
	return 0;
}

static int
net_create(const struct mb_cuda_net_desc *d, struct mb_cuda_net *n, char *err, size_t err_len)
{
	int rc;

	CUDA_OK(cudaSetDevice(d->device));
	if ((rc = upload(d->window, N_FFT * sizeof(float), &n->window, err, err_len)) < 0 ||
	    (rc = upload(d->filters, (size_t)d->n_mels * BINS * sizeof(float), &n->filters, err,
			 err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < d->n_w; i++)
		if ((rc = upload(d->w[i], d->w_numel[i] * sizeof(float), &n->w[i], err, err_len)) <
		    0)
			return rc;
	/* cudaMemcpy from pageable memory may return before its DMA lands, and the workers'
	 * streams are non-blocking (no implicit order with the legacy stream): wait here */
	CUDA_OK(cudaStreamSynchronize(cudaStreamLegacy));
	return 0;
}

extern "C" int
mb_cuda_net_create(const struct mb_cuda_net_desc *d, struct mb_cuda_net **out, char *err,
		   size_t err_len)
{
	struct mb_cuda_net *n;
	int rc;

	*out = NULL;
	if (d->n_w > MAX_W) {
		seterr(err, err_len, "too many weight tensors (%u)", d->n_w);
		return -1;
	}
	n = new (std::nothrow) mb_cuda_net();
	if (n == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	n->kind = d->kind;
	n->device = d->device;
	n->n_mels = d->n_mels;
	n->max_samples = d->max_samples;
	rc = net_create(d, n, err, err_len);
	if (rc < 0) {
		mb_cuda_net_destroy(&n);
		return rc;
	}
	*out = n;
	return 0;
}

extern "C" void
mb_cuda_scratch_destroy(struct mb_cuda_scratch **sp)
{
	struct mb_cuda_scratch *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	cudaSetDevice(s->net->device);
	if (s->compute != NULL)
		cudaStreamSynchronize(s->compute);
	if (s->copy != NULL)
		cudaStreamSynchronize(s->copy);
	if (s->fft_made)
		cufftDestroy(s->fft);
	if (s->xd != NULL)
		cudnnDestroyTensorDescriptor(s->xd);
	if (s->yd != NULL)
		cudnnDestroyTensorDescriptor(s->yd);
	if (s->wd != NULL)
		cudnnDestroyFilterDescriptor(s->wd);
	if (s->cd != NULL)
		cudnnDestroyConvolutionDescriptor(s->cd);
	if (s->dnn != NULL)
		cudnnDestroy(s->dnn);
	if (s->blas != NULL)
		cublasDestroy(s->blas);
	for (int i = 0; i < 2; i++) {
		cudaFreeHost(s->pin_in[i]);
		cudaFree(s->d_in[i]);
		if (s->uploaded[i] != NULL)
			cudaEventDestroy(s->uploaded[i]);
	}
	cudaFreeHost(s->pin_out);
	cudaFree(s->d_x);
	cudaFree(s->d_frames);
	cudaFree(s->d_spec);
	cudaFree(s->d_a);
	cudaFree(s->d_b);
	cudaFree(s->d_vec);
	cudaFree(s->d_out);
	cudaFree(s->d_max);
	cudaFree(s->d_ws);
	for (int i = 0; i < MB_CUDA_TIMED_ITEMS; i++) {
		cudaEvent_t *ev[4] = {&s->up0[i], &s->up1[i], &s->c0[i], &s->c1[i]};

		for (int k = 0; k < 4; k++)
			if (*ev[k] != NULL)
				cudaEventDestroy(*ev[k]);
	}
	if (s->copy != NULL)
		cudaStreamDestroy(s->copy);
	if (s->compute != NULL)
		cudaStreamDestroy(s->compute);
	delete s;
	*sp = NULL;
}

static int
scratch_create(struct mb_cuda_scratch *s, char *err, size_t err_len)
{
	const struct mb_cuda_net *n = s->net;
	size_t act, x_len;

	CUDA_OK(cudaSetDevice(n->device));
	CUDA_OK(cudaStreamCreateWithFlags(&s->copy, cudaStreamNonBlocking));
	CUDA_OK(cudaStreamCreateWithFlags(&s->compute, cudaStreamNonBlocking));
	for (int i = 0; i < 2; i++)
		CUDA_OK(cudaEventCreateWithFlags(&s->uploaded[i], cudaEventDisableTiming));
	BLAS_OK(cublasCreate(&s->blas));
	BLAS_OK(cublasSetStream(s->blas, s->compute));
	DNN_OK(cudnnCreate(&s->dnn));
	DNN_OK(cudnnSetStream(s->dnn, s->compute));
	DNN_OK(cudnnCreateTensorDescriptor(&s->xd));
	DNN_OK(cudnnCreateTensorDescriptor(&s->yd));
	DNN_OK(cudnnCreateFilterDescriptor(&s->wd));
	DNN_OK(cudnnCreateConvolutionDescriptor(&s->cd));
	DNN_OK(cudnnSetConvolutionMathType(s->cd, CUDNN_FMA_MATH));
	s->max_frames = n->max_samples / HOP;
	s->in_cap = (size_t)n->max_samples * 4; /* F32 is the larger encoding */
	/* 384 values per frame: more than logmel's 80 and clap's widest (128 channels x frames,
	 * 256 x frames / 2) need */
	s->out_cap = (size_t)s->max_frames * 384 * sizeof(float);
	act = (size_t)s->max_frames * 384;
	x_len = (size_t)n->max_samples + 2 * PAD;
	s->fft_frames = (s->max_frames + FFT_CHUNK - 1) / FFT_CHUNK * FFT_CHUNK;
	FFT_OK(cufftPlan1d(&s->fft, N_FFT, CUFFT_R2C, FFT_CHUNK));
	s->fft_made = true;
	FFT_OK(cufftSetStream(s->fft, s->compute));
	CUDA_OK(cudaMalloc((void **)&s->d_frames, (size_t)s->fft_frames * N_FFT * sizeof(float)));
	CUDA_OK(cudaMalloc((void **)&s->d_spec,
			   (size_t)s->fft_frames * BINS * sizeof(cufftComplex)));
	/* rows past an item's frames are transformed but never read: zero, not garbage; on the
	 * compute stream, so it is ordered before the first item's frames (plain cudaMemset runs
	 * on the legacy stream, which non-blocking streams ignore) */
	CUDA_OK(cudaMemsetAsync(s->d_frames, 0, (size_t)s->fft_frames * N_FFT * sizeof(float),
				s->compute));
	for (int i = 0; i < 2; i++) {
		CUDA_OK(cudaMallocHost(&s->pin_in[i], s->in_cap));
		CUDA_OK(cudaMalloc(&s->d_in[i], s->in_cap));
	}
	CUDA_OK(cudaMallocHost(&s->pin_out, s->out_cap));
	CUDA_OK(cudaMalloc((void **)&s->d_x, x_len * sizeof(float)));
	CUDA_OK(cudaMalloc((void **)&s->d_a, act * sizeof(float)));
	CUDA_OK(cudaMalloc((void **)&s->d_b, act * sizeof(float)));
	CUDA_OK(cudaMalloc((void **)&s->d_vec, 1024 * sizeof(float)));
	CUDA_OK(cudaMalloc((void **)&s->d_out, s->out_cap));
	CUDA_OK(cudaMalloc((void **)&s->d_max, sizeof(float)));
	s->ws_cap = 64u << 20;
	CUDA_OK(cudaMalloc(&s->d_ws, s->ws_cap));
	{
		std::lock_guard<std::mutex> lock(g_timing_mu);

		if (!g_timing_on)
			return 0;
	}
	/* events left NULL by a failure here are skipped by destroy() */
	for (int i = 0; i < MB_CUDA_TIMED_ITEMS; i++) {
		CUDA_OK(cudaEventCreate(&s->up0[i]));
		CUDA_OK(cudaEventCreate(&s->up1[i]));
		CUDA_OK(cudaEventCreate(&s->c0[i]));
		CUDA_OK(cudaEventCreate(&s->c1[i]));
	}
	s->timed = true;
	return 0;
}

extern "C" int
mb_cuda_scratch_create(const struct mb_cuda_net *net, struct mb_cuda_scratch **out, char *err,
		       size_t err_len)
{
	struct mb_cuda_scratch *s = new (std::nothrow) mb_cuda_scratch();
	int rc;

	*out = NULL;
	if (s == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	s->net = net;
	rc = scratch_create(s, err, err_len);
	if (rc < 0) {
		mb_cuda_scratch_destroy(&s);
		return rc;
	}
	*out = s;
	return 0;
}

/*
 * y = conv(x, w) with the scratch's descriptors as set. The algorithm is implicit GEMM under
 * FMA math; should this cuDNN not support it for a shape, the first FMA algorithm of cuDNN's
 * heuristics whose workspace fits is used instead (the numerics stay FP32 FMA).
 */
static int
conv_forward(struct mb_cuda_scratch *s, const float *x, const float *w, float *y, char *err,
	     size_t err_len)
{
	cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	const float one = 1.0f, zero = 0.0f;
	cudnnStatus_t st;
	size_t ws = 0;
	int got = 0;

	st = cudnnGetConvolutionForwardWorkspaceSize(s->dnn, s->xd, s->wd, s->cd, s->yd,
						     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &ws);
	if (st == CUDNN_STATUS_SUCCESS && ws <= s->ws_cap) {
		st = cudnnConvolutionForward(s->dnn, &one, s->xd, x, s->wd, w, s->cd,
					     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, s->d_ws, ws,
					     &zero, s->yd, y);
		if (st == CUDNN_STATUS_SUCCESS)
			return 0;
		if (st != CUDNN_STATUS_NOT_SUPPORTED) {
			seterr(err, err_len, "cudnnConvolutionForward (implicit GEMM): %s",
			       cudnnGetErrorString(st));
			return -1000 - (int)st;
		}
	}
	DNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(
		s->dnn, s->xd, s->wd, s->cd, s->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
	for (int i = 0; i < got; i++) {
		if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].mathType != CUDNN_FMA_MATH ||
		    perf[i].memory > s->ws_cap)
			continue;
		st = cudnnConvolutionForward(s->dnn, &one, s->xd, x, s->wd, w, s->cd, perf[i].algo,
					     s->d_ws, perf[i].memory, &zero, s->yd, y);
		if (st == CUDNN_STATUS_SUCCESS)
			return 0;
	}
	seterr(err, err_len,
	       "cuDNN runs this convolution with no FMA algorithm in %zu bytes of workspace "
	       "(implicit GEMM wanted %zu)",
	       s->ws_cap, ws);
	return -1;
}

/* y [1, cout, 1, t_out] = conv1d(x [1, cin, 1, t]) (k 3, padding 1), then bias + GELU */
static int
conv1d(struct mb_cuda_scratch *s, const float *x, uint32_t t, uint32_t cin, const float *w,
       const float *b, uint32_t cout, uint32_t stride, float *y, uint32_t *t_out, char *err,
       size_t err_len)
{
	int n, c, h, wd, rc;

	DNN_OK(cudnnSetTensor4dDescriptor(s->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)cin,
					  1, (int)t));
	DNN_OK(cudnnSetFilter4dDescriptor(s->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)cout,
					  (int)cin, 1, 3));
	DNN_OK(cudnnSetConvolution2dDescriptor(s->cd, 0, 1, 1, (int)stride, 1, 1,
					       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	/* again after the descriptor is set, so no TF32 (FMA, like the CPU reference) */
	DNN_OK(cudnnSetConvolutionMathType(s->cd, CUDNN_FMA_MATH));
	DNN_OK(cudnnGetConvolution2dForwardOutputDim(s->cd, s->xd, s->wd, &n, &c, &h, &wd));
	DNN_OK(cudnnSetTensor4dDescriptor(s->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, wd));
	if ((rc = conv_forward(s, x, w, y, err, err_len)) < 0)
		return rc;
	bias_gelu<<<blocks((size_t)cout * wd, 256), 256, 0, s->compute>>>(y, b, cout, (uint32_t)wd);
	CUDA_OK(cudaGetLastError());
	*t_out = (uint32_t)wd;
	return 0;
}

/* the log-mel of item @p it into s->d_a: [n_mels x frames], channel-major */
static int
logmel(struct mb_cuda_scratch *s, const void *d_in, const struct mb_cuda_item *it, char *err,
       size_t err_len)
{
	const struct mb_cuda_net *n = s->net;
	uint32_t frames = it->samples / HOP;
	size_t cells = (size_t)frames * n->n_mels;

	pcm_to_padded<<<blocks((size_t)it->samples + 2 * PAD, 256), 256, 0, s->compute>>>(
		d_in, it->pcm_s16, it->samples, s->d_x);
	frames_window<<<blocks((size_t)frames * N_FFT, 256), 256, 0, s->compute>>>(
		s->d_x, n->window, frames, s->d_frames);
	CUDA_OK(cudaGetLastError());
	/* FFT_CHUNK frames a call; rows past this item's frames are stale and never read */
	for (uint32_t f = 0; f < frames; f += FFT_CHUNK)
		FFT_OK(cufftExecR2C(s->fft, s->d_frames + (size_t)f * N_FFT,
				    s->d_spec + (size_t)f * BINS));
	power_mel<<<blocks(cells, 256), 256, 0, s->compute>>>(s->d_spec, n->filters, n->n_mels,
							      frames, s->d_a);
	reduce_max<<<1, 1024, 0, s->compute>>>(s->d_a, cells, s->d_max);
	clamp_scale<<<blocks(cells, 256), 256, 0, s->compute>>>(s->d_a, cells, s->d_max);
	CUDA_OK(cudaGetLastError());
	return 0;
}

static int
run_audio(struct mb_cuda_scratch *s, const void *d_in, const struct mb_cuda_item *it, char *err,
	  size_t err_len)
{
	const struct mb_cuda_net *n = s->net;
	uint32_t t1 = it->samples / HOP, t2, t3, t;
	const float one = 1.0f;
	int rc;

	if ((rc = logmel(s, d_in, it, err, err_len)) < 0)
		return rc;
	switch (n->kind) {
	case MB_CUDA_LOGMEL:
		transpose<<<blocks((size_t)t1 * n->n_mels, 256), 256, 0, s->compute>>>(
			s->d_a, (uint32_t)n->n_mels, t1, s->d_out);
		break;
	case MB_CUDA_CLAP:
		if ((rc = conv1d(s, s->d_a, t1, 64, n->w[0], n->w[1], 128, 1, s->d_b, &t, err,
				 err_len)) < 0 ||
		    (rc = conv1d(s, s->d_b, t, 128, n->w[2], n->w[3], 256, 2, s->d_a, &t2, err,
				 err_len)) < 0 ||
		    (rc = conv1d(s, s->d_a, t2, 256, n->w[4], n->w[5], 256, 2, s->d_b, &t3, err,
				 err_len)) < 0)
			return rc;
		row_mean<<<1, 256, 0, s->compute>>>(s->d_b, 256, t3, NULL, s->d_vec);
		CUDA_OK(cudaMemcpyAsync(s->d_out, n->w[7], 512 * sizeof(float),
					cudaMemcpyDeviceToDevice, s->compute));
		/* proj.weight [512 x 256] row-major is [256 x 512] column-major: y = W x + b */
		BLAS_OK(cublasSgemv(s->blas, CUBLAS_OP_T, 256, 512, &one, n->w[6], 256, s->d_vec, 1,
				    &one, s->d_out, 1));
		l2_normalise<<<1, 256, 0, s->compute>>>(s->d_out, 512);
		break;
	default:
		seterr(err, err_len, "not an audio model");
		return -1;
	}
	CUDA_OK(cudaGetLastError());
	return 0;
}

/* Stage item @p i in pinned buffer @p slot and start its upload on the copy stream. */
static int
stage(struct mb_cuda_scratch *s, const struct mb_cuda_item *items, uint32_t i, int slot, char *err,
      size_t err_len)
{
	const struct mb_cuda_item *it = &items[i];
	bool timed = s->timed && i < MB_CUDA_TIMED_ITEMS;

	if (it->payload_len > s->in_cap) {
		seterr(err, err_len, "item of %u bytes, staging holds %zu", it->payload_len,
		       s->in_cap);
		return -1;
	}
	memcpy(s->pin_in[slot], it->payload, it->payload_len);
	if (timed)
		CUDA_OK(cudaEventRecord(s->up0[i], s->copy));
	CUDA_OK(cudaMemcpyAsync(s->d_in[slot], s->pin_in[slot], it->payload_len,
				cudaMemcpyHostToDevice, s->copy));
	if (timed)
		CUDA_OK(cudaEventRecord(s->up1[i], s->copy));
	CUDA_OK(cudaEventRecord(s->uploaded[slot], s->copy));
	return 0;
}

/* Add a finished run's event times to the totals (timed scratches only). */
static int
take_times(struct mb_cuda_scratch *s, uint32_t n, char *err, size_t err_len)
{
	struct mb_cuda_timing t = {};
	float ms;

	n = n < MB_CUDA_TIMED_ITEMS ? n : MB_CUDA_TIMED_ITEMS;
	for (uint32_t i = 0; i < n; i++) {
		CUDA_OK(cudaEventElapsedTime(&ms, s->up0[i], s->up1[i]));
		t.upload_ms += ms;
		CUDA_OK(cudaEventElapsedTime(&ms, s->c0[i], s->c1[i]));
		t.compute_ms += ms;
	}
	CUDA_OK(cudaEventElapsedTime(&ms, s->up0[0], s->c1[n - 1]));
	std::lock_guard<std::mutex> lock(g_timing_mu);
	g_timing.runs++;
	g_timing.items += n;
	g_timing.upload_ms += t.upload_ms;
	g_timing.compute_ms += t.compute_ms;
	g_timing.span_ms += ms;
	return 0;
}

extern "C" void
mb_cuda_timing_enable(int on)
{
	std::lock_guard<std::mutex> lock(g_timing_mu);

	g_timing_on = on != 0;
	g_timing = {};
}

extern "C" void
mb_cuda_timing_take(struct mb_cuda_timing *t)
{
	std::lock_guard<std::mutex> lock(g_timing_mu);

	*t = g_timing;
	g_timing = {};
}

/*
 * Items run one after another on the compute stream. While item i computes, the host copies
 * item i + 1 into the other pinned buffer and the copy stream uploads it, so the next item's
 * input is on the device when item i's result comes back.
 */
extern "C" int
mb_cuda_net_run(const struct mb_cuda_net *net, struct mb_cuda_scratch *s,
		const struct mb_cuda_item *items, uint32_t n, char *err, size_t err_len)
{
	int rc;

	if (n == 0)
		return 0;
	CUDA_OK(cudaSetDevice(net->device));
	/* a run that failed half-way may have left work queued that reads the staging */
	CUDA_OK(cudaStreamSynchronize(s->copy));
	CUDA_OK(cudaStreamSynchronize(s->compute));
	if ((rc = stage(s, items, 0, 0, err, err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const struct mb_cuda_item *it = &items[i];
		int slot = (int)(i % 2);
		size_t out_bytes = it->out_len;
		bool timed = s->timed && i < MB_CUDA_TIMED_ITEMS;

		if (it->samples < N_FFT || it->samples > net->max_samples ||
		    it->out_len > s->out_cap) {
			seterr(err, err_len, "item %u: %u samples out of range", i, it->samples);
			return -1;
		}
		CUDA_OK(cudaStreamWaitEvent(s->compute, s->uploaded[slot], 0));
		if (timed)
			CUDA_OK(cudaEventRecord(s->c0[i], s->compute));
		if ((rc = run_audio(s, s->d_in[slot], it, err, err_len)) < 0)
			return rc;
		CUDA_OK(cudaMemcpyAsync(s->pin_out, s->d_out, out_bytes, cudaMemcpyDeviceToHost,
					s->compute));
		if (timed)
			CUDA_OK(cudaEventRecord(s->c1[i], s->compute));
		/* the other slot's last reader (item i - 1) finished at the previous item's
		 * synchronisation: item i + 1 may be staged into it while item i computes */
		if (i + 1 < n && (rc = stage(s, items, i + 1, 1 - slot, err, err_len)) < 0)
			return rc;
		CUDA_OK(cudaStreamSynchronize(s->compute));
		memcpy(it->out, s->pin_out, it->out_len);
	}
	CUDA_OK(cudaStreamSynchronize(s->copy));
	if (s->timed)
		return take_times(s, n, err, err_len);
	return 0;
}
