/*
 * cuda_whisper.cu: Whisper's encoder on a CUDA device, step for step as whisper.c computes it
 * on the CPU (see there), on the transformer module (cuda_tf_internal.h).
 *
 * Per item, as its upload lands (the host stages item i + 1 into pinned memory while the
 * device works on item i):
 *   pad30       PCM (s16 or f32) -> float, zero-padded to 480000 samples, then reflect-padded
 *               by 200 at both ends over the padded signal (mel.c's mb_mel_compute_f32 on
 *               whisper.c's padded buffer: the end reflects the zeros)
 *   frames      [3000 x 400] = padded[t * 160 + k] * hann[k] (the last STFT frame dropped)
 *   cuFFT R2C   400 points, 3000 frames in one call -> [3000 x 201]
 *   mel         [3000 x n_mels] = log10(max(sum_k filters[m][k] |X_t[k]|^2, 1e-10)), the sum
 *               over each filter's non-zero bins in order, as mel.c
 *   max, clamp  (max(x, max over the item - 8) + 4) / 4
 * Then over the batch, the items stacked:
 *   conv1       im2col (k 3, pad 1) [n*3000 x 3 n_mels] + GEMM -> [n*3000 x d], + b, GELU
 *   conv2       im2col (k 3, stride 2, pad 1) [n*1500 x 3d] + GEMM -> x [n*1500 x d], + b,
 *               GELU, + embed_positions
 *   layers x mb_tf_block_forward
 *   layer_norm  -> F32 [n*1500 x d], downloaded through pinned memory into each item's out.
 *
 * The im2col columns and the conv1 output live in the activations' big region (the blocks
 * have not started), so the stem costs no memory of its own beyond the log-mel.
 *
 * The framing and the floor (max, clamp) are logmel's own steps (cuda_nets.cu:
 * mb_cuda_stft_frames(), mb_cuda_mel_floor()).
 *
 * Memory: a run's device buffers (activations, the front end's padded/frames/spectrum, the
 * PCM, the log-mel and its maxima) are one allocation for exactly its n items, made from the
 * device's pool on the run's stream at its start and freed on it at its end
 * (mb_cuda_whisper_parts(): the same list gives the service its figures). A worker keeps what
 * does not depend on n (struct mb_tf_worker, cuda_common_internal.h): its context (cuBLAS
 * workspace) and its cuFFT plan with the work area we allocate for it (the plan made without
 * auto-allocation, so the size is cuFFT's own, learned once at load); and pinned host staging
 * and per-item events, grown to its largest batch and kept.
 *
 * Owns: the net's store (weights, window, filterbank); a worker's context, cuFFT plan and
 * work area, pinned buffers and events; a run's allocation for the run. Threads:
 * create/destroy a net on the main thread; a worker and its runs on the worker's thread.
 */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_check_internal.h"
#include "cuda_common_internal.h"
#include "cuda_nets_internal.h"
#include "cuda_tf_internal.h"

#define N_FFT MB_CUDA_WHISPER_N_FFT
#define HOP 160
#define PAD MB_CUDA_WHISPER_PAD
#define BINS MB_CUDA_WHISPER_BINS
#define T_POS MB_CUDA_WHISPER_T
#define FRAMES MB_CUDA_WHISPER_FRAMES
#define MAX_SAMPLES MB_CUDA_WHISPER_SAMPLES /* 30 s */
#define PADDED MB_CUDA_WHISPER_PADDED
#define LN_EPS 1e-5f

static_assert(FRAMES == 2 * T_POS && MAX_SAMPLES == FRAMES * HOP, "whisper's sizes");
static_assert(N_FFT == 400 && HOP == 160, "logmel's frames (mb_cuda_stft_frames())");
static_assert(sizeof(cufftComplex) == 2 * sizeof(float), "the spectrum part's size");

struct mb_cuda_whisper {
	struct mb_tf_store *store;
	uint32_t d, layers, heads, ffn, n_mels;
	const void *conv1_w, *conv2_w; /* [d x 3 n_mels], [d x 3d] in the precision */
	const float *conv1_b, *conv2_b, *pos, *lnf_g, *lnf_b;
	const float *window, *filters;
	const int *lo, *hi;
	struct mb_tf_block *blocks;
	size_t fft_work; /* a worker's cuFFT work area, as cuFFT sized it at load */
};

struct mb_cuda_whisper_worker {
	/* pin_in: slots of MAX_SAMPLES * 4 bytes; pin_out: slots of [1500 x d] */
	struct mb_tf_worker tf;
	cudaEvent_t *down; /* [n_down]: item i's result is in tf.pin_out */
	uint32_t n_down;
};

/* A run's device buffers: pointers into its one allocation. */
struct run_mem {
	struct mb_tf_acts A;
	float *padded;	    /* [PADDED] */
	float *frames;	    /* [FRAMES x 400] */
	cufftComplex *spec; /* [FRAMES x 201] */
	uint8_t *in;	    /* n slots of MAX_SAMPLES * 4 bytes */
	float *mel;	    /* [n x FRAMES x n_mels] */
	float *max;	    /* [n] */
};

namespace
{

/* ---- kernels ---- */

/* out [PADDED]: the n samples, zeros to MAX_SAMPLES, reflected by PAD at both ends */
__global__ void
pad30(const void *in, int s16, uint32_t n, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	int64_t src;

	if (i >= PADDED)
		return;
	src = (int64_t)i - PAD;
	if (src < 0)
		src = -src;
	else if (src >= (int64_t)MAX_SAMPLES)
		src = 2 * ((int64_t)MAX_SAMPLES - 1) - src;
	out[i] = src >= (int64_t)n ? 0.0f : pcm_sample(in, s16, src);
}

/* out [FRAMES x n_mels] = log10(max(filters . |X|^2, 1e-10)), as mel.c */
__global__ void
mel_rows(const cufftComplex *spec, const float *filters, const int *lo, const int *hi,
	 uint32_t n_mels, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t t, m;
	float acc = 0.0f;

	if (i >= (size_t)FRAMES * n_mels)
		return;
	t = (uint32_t)(i / n_mels);
	m = (uint32_t)(i % n_mels);
	for (int k = lo[m]; k < hi[m]; k++) {
		cufftComplex c = spec[(size_t)t * BINS + k];

		acc += filters[m * BINS + k] * (c.x * c.x + c.y * c.y);
	}
	out[i] = log10f(fmaxf(acc, 1e-10f));
}

} /* namespace */

/* ---- the net ---- */

extern "C" void
mb_cuda_whisper_destroy(struct mb_cuda_whisper **np)
{
	if (np == NULL || *np == NULL)
		return;
	mb_tf_store_destroy(&(*np)->store);
	free((*np)->blocks);
	delete *np;
	*np = NULL;
}

extern "C" size_t
mb_cuda_whisper_bytes(const struct mb_cuda_whisper *net)
{
	return mb_tf_store_bytes(net->store);
}

static int
upload(struct mb_cuda_whisper *w, const struct mb_cuda_whisper_desc *d, char *err, size_t err_len)
{
	const uint32_t c1_rows[1] = {d->d}, c2_rows[1] = {d->d};
	int rc;

	if ((rc = mb_tf_store_create(d->device, d->prec, &w->store, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(w->store, &d->conv1_w, c1_rows, 1, 3 * d->n_mels, -1,
				     &w->conv1_w, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(w->store, &d->conv2_w, c2_rows, 1, 3 * d->d, -1, &w->conv2_w,
				     err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->conv1_b, d->d, &w->conv1_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->conv2_b, d->d, &w->conv2_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->pos, (size_t)T_POS * d->d, &w->pos, err, err_len)) <
		    0 ||
	    (rc = mb_tf_store_f32(w->store, d->lnf_g, d->d, &w->lnf_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->lnf_b, d->d, &w->lnf_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->window, N_FFT, &w->window, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(w->store, d->filters, (size_t)d->n_mels * BINS, &w->filters, err,
				  err_len)) < 0 ||
	    (rc = mb_tf_store_raw(w->store, d->lo, sizeof(int) * d->n_mels, (const void **)&w->lo,
				  err, err_len)) < 0 ||
	    (rc = mb_tf_store_raw(w->store, d->hi, sizeof(int) * d->n_mels, (const void **)&w->hi,
				  err, err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < d->layers; i++)
		if ((rc = mb_tf_block_upload(w->store, &d->blocks[i], &w->blocks[i], err,
					     err_len)) < 0)
			return rc;
	return 0;
}

extern "C" int
mb_cuda_whisper_create(const struct mb_cuda_whisper_desc *d, struct mb_cuda_whisper **out,
		       char *err, size_t err_len)
{
	struct mb_cuda_whisper *w;
	int rc;

	*out = NULL;
	if (d->n_mels == 0 || d->n_mels > 128 || d->layers == 0) {
		seterr(err, err_len, "whisper of %u mel bins and %u layers", d->n_mels, d->layers);
		return -1;
	}
	w = new (std::nothrow) mb_cuda_whisper();
	if (w == NULL ||
	    (w->blocks = (struct mb_tf_block *)calloc(d->layers, sizeof(*w->blocks))) == NULL) {
		delete w;
		seterr(err, err_len, "out of memory");
		return -1;
	}
	w->d = d->d;
	w->layers = d->layers;
	w->heads = d->heads;
	w->ffn = d->ffn;
	w->n_mels = d->n_mels;
	if ((rc = upload(w, d, err, err_len)) < 0 ||
	    (rc = mb_tf_fft_work(d->device, N_FFT, CUFFT_R2C, FRAMES, &w->fft_work, err, err_len)) <
		    0) {
		mb_cuda_whisper_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

extern "C" void
mb_cuda_whisper_mem_of(const struct mb_cuda_whisper *net, struct mb_tf_mem *out)
{
	mb_cuda_whisper_mem(net->d, net->heads, net->ffn, net->n_mels, mb_tf_store_prec(net->store),
			    net->fft_work, out);
}

/* ---- a worker ---- */

/* the per-item events of grow_events(), none */
static void
free_events(struct mb_cuda_whisper_worker *w)
{
	for (uint32_t i = 0; i < w->n_down; i++)
		if (w->down[i] != NULL)
			cudaEventDestroy(w->down[i]);
	free(w->down);
	w->down = NULL;
	w->n_down = 0;
}

extern "C" void
mb_cuda_whisper_worker_destroy(struct mb_cuda_whisper_worker **wp)
{
	struct mb_cuda_whisper_worker *w;

	if (wp == NULL || *wp == NULL)
		return;
	w = *wp;
	mb_tf_worker_fini(&w->tf);
	free_events(w);
	delete w;
	*wp = NULL;
}

extern "C" int
mb_cuda_whisper_worker_create(const struct mb_cuda_whisper *net,
			      struct mb_cuda_whisper_worker **out, char *err, size_t err_len)
{
	struct mb_cuda_whisper_worker *w = new (std::nothrow) mb_cuda_whisper_worker();
	int rc;

	*out = NULL;
	if (w == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	if ((rc = mb_tf_worker_init(&w->tf, net->store, err, err_len)) < 0 ||
	    (rc = mb_tf_worker_fft(&w->tf, N_FFT, CUFFT_R2C, FRAMES, net->fft_work, err, err_len)) <
		    0) {
		mb_cuda_whisper_worker_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

/* An event for each of @p n items: grown when a larger batch first arrives, then kept (the
 * run began with a synchronisation, so nothing queued records the old). */
static int
grow_events(struct mb_cuda_whisper_worker *w, uint32_t n, char *err, size_t err_len)
{
	if (n <= w->n_down)
		return 0;
	free_events(w);
	w->down = (cudaEvent_t *)calloc(n, sizeof(*w->down));
	if (w->down == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	w->n_down = n; /* free_events() destroys the ones made (calloc: the rest NULL) */
	for (uint32_t i = 0; i < n; i++) {
		cudaError_t e = cudaEventCreateWithFlags(&w->down[i], cudaEventDisableTiming);

		if (e != cudaSuccess) { /* none kept: the next run makes them all again */
			seterr(err, err_len, "cudaEventCreateWithFlags: %s (%s)",
			       cudaGetErrorString(e), cudaGetErrorName(e));
			free_events(w);
			return -(int)e;
		}
	}
	return 0;
}

/* Item @p i: stage, upload and take its log-mel into m->mel + i (all queued on @p s). */
static int
front_end(const struct mb_cuda_whisper *net, struct mb_cuda_whisper_worker *w,
	  const struct run_mem *m, const struct mb_cuda_audio_item *it, uint32_t i, cudaStream_t s,
	  char *err, size_t err_len)
{
	const size_t bytes = (size_t)it->samples * (it->pcm_s16 ? 2 : 4);
	const size_t cells = (size_t)FRAMES * net->n_mels;
	uint8_t *pin = (uint8_t *)w->tf.pin_in + (size_t)i * MAX_SAMPLES * 4;
	uint8_t *dev = m->in + (size_t)i * MAX_SAMPLES * 4;
	float *mel = m->mel + (size_t)i * cells;
	int rc;

	if (it->samples < N_FFT || it->samples > MAX_SAMPLES) {
		seterr(err, err_len, "item %u: %u samples, expected %d..%u", i, it->samples, N_FFT,
		       MAX_SAMPLES);
		return -1;
	}
	/* slot i's last reader was the previous run, which ended with a synchronisation */
	memcpy(pin, it->payload, bytes);
	CUDA_OK(cudaMemcpyAsync(dev, pin, bytes, cudaMemcpyHostToDevice, s));
	pad30<<<grid_of(PADDED), THREADS, 0, s>>>(dev, it->pcm_s16, it->samples, m->padded);
	if ((rc = mb_cuda_stft_frames(m->padded, net->window, FRAMES, m->frames, s, err, err_len)) <
	    0)
		return rc;
	FFT_OK(cufftExecR2C(w->tf.fft, m->frames, m->spec));
	mel_rows<<<grid_of(cells), THREADS, 0, s>>>(m->spec, net->filters, net->lo, net->hi,
						    net->n_mels, mel);
	return mb_cuda_mel_floor(mel, cells, m->max + i, s, err, err_len);
}

/* The batch on the run's allocation at @p base (carved from @p parts); all queued on @p s. */
static int
run_batch(const struct mb_cuda_whisper *net, struct mb_cuda_whisper_worker *w,
	  const struct mb_cuda_audio_item *items, uint32_t n, const struct mb_tf_part *parts,
	  void *base, cudaStream_t s, char *err, size_t err_len)
{
	const uint32_t d = net->d, nm = net->n_mels;
	struct mb_tf_ctx *ctx = w->tf.ctx;
	const enum mb_tf_prec prec = mb_tf_ctx_prec(ctx);
	const size_t rows = (size_t)n * T_POS;
	void *at[MB_CUDA_WHISPER_PARTS];
	struct run_mem m;
	struct mb_tf_acts *A = &m.A;
	size_t col;
	float *h1;
	int rc;

	if ((rc = grow_events(w, n, err, err_len)) < 0)
		return rc;
	mb_tf_carve(base, parts, MB_CUDA_WHISPER_PARTS, n, at);
	if ((rc = mb_tf_acts_bind(A, at, parts, n, T_POS, d, net->heads, net->ffn, prec, err,
				  err_len)) < 0)
		return rc;
	m.padded = (float *)at[MB_CUDA_WHISPER_PART_PADDED];
	m.frames = (float *)at[MB_CUDA_WHISPER_PART_FRAMES];
	m.spec = (cufftComplex *)at[MB_CUDA_WHISPER_PART_SPEC];
	m.in = (uint8_t *)at[MB_CUDA_WHISPER_PART_IN];
	m.mel = (float *)at[MB_CUDA_WHISPER_PART_MEL];
	m.max = (float *)at[MB_CUDA_WHISPER_PART_MAX];
	FFT_OK(cufftSetStream(w->tf.fft, s));
	for (uint32_t i = 0; i < n; i++)
		if ((rc = front_end(net, w, &m, &items[i], i, s, err, err_len)) < 0)
			return rc;

	/* the stem, every item at once: columns at the start of big, conv1's output after
	 * (256-byte aligned: the part's fixed MB_TF_ALIGN bytes) */
	col = ((size_t)n * mb_cuda_whisper_col_item(d, nm, prec) + MB_TF_ALIGN - 1) &
	      ~(size_t)(MB_TF_ALIGN - 1);
	h1 = (float *)((uint8_t *)A->big + col);
	if ((rc = mb_tf_im2col3(ctx, m.mel, n, FRAMES, nm, 1, FRAMES, A->big, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, n * FRAMES, d, 3 * nm, A->big, 3 * nm, prec, net->conv1_w, prec,
			       1.0f, 0.0f, h1, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, h1, (size_t)n * FRAMES, d, net->conv1_b, 1, NULL, 0, err,
				 err_len)) < 0 ||
	    (rc = mb_tf_im2col3(ctx, h1, n, FRAMES, d, 2, T_POS, A->big, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, (uint32_t)rows, d, 3 * d, A->big, 3 * d, prec, net->conv2_w,
			       prec, 1.0f, 0.0f, A->x, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, A->x, rows, d, net->conv2_b, 1, net->pos, T_POS, err,
				 err_len)) < 0)
		return rc;

	for (uint32_t l = 0; l < net->layers; l++)
		if ((rc = mb_tf_block_forward(ctx, &net->blocks[l], A, n, err, err_len)) < 0)
			return rc;

	/* the final LayerNorm, F32, into big; down through pinned memory item by item, each
	 * item copied out on the host while the next one's download runs */
	if ((rc = mb_tf_layernorm(ctx, A->x, (uint32_t)rows, d, net->lnf_g, net->lnf_b, LN_EPS,
				  A->big, 1, err, err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const size_t off = (size_t)i * T_POS * d;

		CUDA_OK(cudaMemcpyAsync(w->tf.pin_out + off, A->big + off,
					(size_t)T_POS * d * sizeof(float), cudaMemcpyDeviceToHost,
					s));
		CUDA_OK(cudaEventRecord(w->down[i], s));
	}
	for (uint32_t i = 0; i < n; i++) {
		CUDA_OK(cudaEventSynchronize(w->down[i]));
		memcpy(items[i].out, w->tf.pin_out + (size_t)i * T_POS * d,
		       (size_t)T_POS * d * sizeof(float));
	}
	return 0;
}

extern "C" int
mb_cuda_whisper_run(const struct mb_cuda_whisper *net, struct mb_cuda_whisper_worker *w,
		    const struct mb_cuda_audio_item *items, uint32_t n, void *stream, char *err,
		    size_t err_len)
{
	struct mb_tf_part parts[MB_CUDA_WHISPER_PARTS];
	void *base;
	int rc;

	if (n == 0)
		return 0;
	mb_cuda_whisper_parts(net->d, net->heads, net->ffn, net->n_mels, mb_tf_ctx_prec(w->tf.ctx),
			      parts);
	if ((rc = mb_tf_worker_begin(&w->tf, stream, n, (size_t)MAX_SAMPLES * 4,
				     (size_t)T_POS * net->d, parts, MB_CUDA_WHISPER_PARTS, &base,
				     err, err_len)) < 0)
		return rc;
	rc = run_batch(net, w, items, n, parts, base, (cudaStream_t)mb_tf_ctx_stream(w->tf.ctx),
		       err, err_len);
	return mb_tf_worker_end(&w->tf, &base, rc, err, err_len);
}
