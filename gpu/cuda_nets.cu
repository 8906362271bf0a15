/*
 * cuda_nets.cu: the built-in model logmel on a CUDA device (see cuda_nets_internal.h). The
 * transformer networks (whisper, videomae, clap) have their own CUDA path on the transformer
 * module: cuda_tf.cu, cuda_whisper.cu, cuda_videomae.cu, cuda_clap.cu.
 *
 * Per audio item, all on the scratch's compute stream:
 *   pcm_to_padded   PCM (s16 or f32) -> float, reflect-padded by 200 at both ends
 *   frames_window   [frames x 400] = padded[t * 160 + k] * hann[k]
 *   cuFFT R2C       400-point, in calls of 256 frames -> [frames x 201] complex
 *   power_mel       [n_mels x frames] = log10(max(filters . |X|^2, 1e-10)), channel-major
 *   reduce_max + clamp_scale   (max(x, max - 8) + 4) / 4
 *   transpose       to [frames x n_mels], the result's layout
 *
 * Numerics: FP32 throughout, as the CPU code.
 *
 * Overlap: item i + 1's payload is staged in pinned memory and uploaded on the copy stream
 * while item i computes; device input buffers are double-buffered. Nothing is allocated
 * per batch.
 *
 * The framing and the log-mel's floor are whisper's too (cuda_whisper.cu calls them:
 * mb_cuda_stft_frames(), mb_cuda_mel_floor()).
 */
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_check_internal.h"
#include "cuda_common_internal.h"
#include "cuda_nets_internal.h"

#define N_FFT 400
#define HOP 160
#define PAD 200
#define BINS 201
/* The STFT runs in calls of FFT_CHUNK frames, so an item's FFT work follows its own length
 * (at most FFT_CHUNK - 1 frames more), not the longest item's. */
#define FFT_CHUNK 256

struct mb_cuda_net {
	enum mb_cuda_net_kind kind;
	int device;
	int n_mels;
	uint32_t max_samples;
	float *window;	/* [400] */
	float *filters; /* [n_mels x 201] */
};

struct mb_cuda_scratch {
	const struct mb_cuda_net *net;
	cudaStream_t copy, compute;
	cudaEvent_t uploaded[2];
	cufftHandle fft;
	bool fft_made;
	uint32_t max_frames;
	uint32_t fft_frames; /* max_frames rounded up to FFT_CHUNK: d_frames, d_spec rows */
	size_t in_cap, out_cap;
	void *pin_in[2], *pin_out; /* pinned host staging */
	void *d_in[2];		   /* raw payload on the device */
	float *d_x;		   /* padded samples */
	float *d_frames;	   /* [frames x 400] */
	cufftComplex *d_spec;	   /* [frames x 201] */
	float *d_a;		   /* the log-mel [n_mels x frames], channel-major */
	float *d_out;		   /* [frames x n_mels] */
	float *d_max;
	/* perf only (mb_cuda_timing_enable before the scratch is made): per item, upload
	 * start/end on the copy stream and compute start/end on the compute stream */
	bool timed;
	cudaEvent_t up0[MB_CUDA_TIMED_ITEMS], up1[MB_CUDA_TIMED_ITEMS];
	cudaEvent_t c0[MB_CUDA_TIMED_ITEMS], c1[MB_CUDA_TIMED_ITEMS];
};

static std::mutex g_timing_mu;
static bool g_timing_on;
static struct mb_cuda_timing g_timing;

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
	out[i] = pcm_sample(in, s16, src);
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

/* [rows x cols] -> [cols x rows] */
__global__ void
transpose(const float *in, uint32_t rows, uint32_t cols, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)rows * cols)
		return;
	out[(i % cols) * rows + i / cols] = in[i];
}

/* ---- host side ---- */

extern "C" int
mb_cuda_stft_frames(const float *padded, const float *window, uint32_t frames, float *out,
		    void *stream, char *err, size_t err_len)
{
	frames_window<<<grid_of((size_t)frames * N_FFT), THREADS, 0, (cudaStream_t)stream>>>(
		padded, window, frames, out);
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_cuda_mel_floor(float *x, size_t n, float *max, void *stream, char *err, size_t err_len)
{
	reduce_max<<<1, 1024, 0, (cudaStream_t)stream>>>(x, n, max);
	clamp_scale<<<grid_of(n), THREADS, 0, (cudaStream_t)stream>>>(x, n, max);
	CUDA_OK(cudaGetLastError());
	return 0;
}

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
	if (d->kind != MB_CUDA_LOGMEL || d->n_mels <= 0 || d->window == NULL ||
	    d->filters == NULL) {
		seterr(err, err_len, "CUDA net of kind %d: only logmel's front end is here",
		       (int)d->kind);
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
	cudaFree(s->d_out);
	cudaFree(s->d_max);
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
	s->max_frames = n->max_samples / HOP;
	s->in_cap = (size_t)n->max_samples * 4; /* F32 is the larger encoding */
	act = (size_t)s->max_frames * (size_t)n->n_mels;
	s->out_cap = act * sizeof(float);
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
	CUDA_OK(cudaMalloc((void **)&s->d_out, s->out_cap));
	CUDA_OK(cudaMalloc((void **)&s->d_max, sizeof(float)));
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

/* the log-mel of item @p it into s->d_a: [n_mels x frames], channel-major */
static int
logmel(struct mb_cuda_scratch *s, const void *d_in, const struct mb_cuda_item *it, char *err,
       size_t err_len)
{
	const struct mb_cuda_net *n = s->net;
	uint32_t frames = it->samples / HOP;
	size_t cells = (size_t)frames * n->n_mels;
	int rc;

	pcm_to_padded<<<grid_of((size_t)it->samples + 2 * PAD), THREADS, 0, s->compute>>>(
		d_in, it->pcm_s16, it->samples, s->d_x);
	if ((rc = mb_cuda_stft_frames(s->d_x, n->window, frames, s->d_frames, s->compute, err,
				      err_len)) < 0)
		return rc;
	/* FFT_CHUNK frames a call; rows past this item's frames are stale and never read */
	for (uint32_t f = 0; f < frames; f += FFT_CHUNK)
		FFT_OK(cufftExecR2C(s->fft, s->d_frames + (size_t)f * N_FFT,
				    s->d_spec + (size_t)f * BINS));
	power_mel<<<grid_of(cells), THREADS, 0, s->compute>>>(s->d_spec, n->filters, n->n_mels,
							      frames, s->d_a);
	return mb_cuda_mel_floor(s->d_a, cells, s->d_max, s->compute, err, err_len);
}

/* logmel's result of item @p it into s->d_out: [frames x n_mels] */
static int
run_audio(struct mb_cuda_scratch *s, const void *d_in, const struct mb_cuda_item *it, char *err,
	  size_t err_len)
{
	const struct mb_cuda_net *n = s->net;
	uint32_t frames = it->samples / HOP;
	int rc;

	if ((rc = logmel(s, d_in, it, err, err_len)) < 0)
		return rc;
	transpose<<<grid_of((size_t)frames * n->n_mels), THREADS, 0, s->compute>>>(
		s->d_a, (uint32_t)n->n_mels, frames, s->d_out);
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
