/*
 * cuda_clap.cu: CLAP's audio tower (HTSAT, a Swin transformer over the log-mel as an image) on a
 * CUDA device, step for step as clap.c and nn.c (mb_nn_swin_forward, mb_nn_patch_merge)
 * compute it on the CPU (see there), on the transformer module (cuda_tf_internal.h).
 *
 * Per item, as its upload lands (the host stages item i + 1 into pinned memory while the
 * device works on item i):
 *   repeat_pad  PCM (s16 or f32) -> float, repeated whole floor(480000 / n) times, zeros to
 *               480000, then reflect-padded by 512 at both ends (clap.c's load_audio)
 *   frames      [1001 x 1024] = padded[t * 480 + k] * hann[k], in double
 *   cuFFT D2Z   1024 points, 1001 frames in one call -> [1001 x 513] complex double
 *   mel_db      [1001 x mels] = 10 log10(max(sum_k filters[m][k] |X_t[k]|^2, 1e-10)), then
 *               batch_norm folded (x scale + shift), all in double as clap.c, rounded to F32
 *   mel2img     bicubic (align_corners, A = -0.75, clamped) of the 1001 frames to
 *               spec * spec / mels, the chunks stacked along frequency: [spec x spec] F32
 *   patches     im2col of patch_embed's conv2d (kernel patch, stride patch_stride) into the
 *               big region, in the GEMM precision, the item's rows after the previous item's
 * Then over the batch, the items' tokens stacked ([n * grid^2 x E] rows), as the CPU:
 *   embed       one GEMM -> x F32, + bias, LayerNorm (eps 1e-5) in place
 *   stages      Swin blocks, each:
 *                 a = LN1(x) gathered in window order (the grid rolled by -shift, cut into
 *                     windows of window^2 tokens: one kernel, nn.c's window_source())
 *                 qkv = a Wqkv^T (one GEMM, F32), split into heads per window (+ bias)
 *                 s = q k^T / sqrt(dh) (strided-batched over every window and head, F32)
 *                 p = softmax(s + bias[head] + mask) (mask: -100 between tokens of different
 *                     regions of the rolled grid when shift > 0, HF's attn_mask), written in
 *                     the precision over the start of its F32 row
 *                 o = p v (strided-batched), merged heads -> a
 *                 y = a Wo^T (F32, window order); x[window_source(part)] += y[part] + bo
 *                 a = LN2(x); h = GELU(a W1^T + b1); x += h W2^T; x += b2
 *               and after every stage but the last, patch merging: the 2 x 2 groups gathered
 *               into [rows / 4 x 4d] F32 (order (y, x), (y + 1, x), (y, x + 1), (y + 1, x + 1)),
 *               LayerNorm (eps 1e-5), 4d -> 2d without bias -> x
 *   head        LayerNorm (eps 1e-5), the mean over the tokens (double sums), linear -> ReLU
 *               -> linear (both F32: n x (hidden x proj + proj^2) MACs, nothing beside the
 *               encoder, and the embedding loses no bits to them), L2-normalised (x /
 *               max(|x|, 1e-12), the norm summed in double)
 *   embeddings  downloaded through pinned memory into each item's out.
 *
 * Why a double-precision FFT: clap.c computes the power spectrum in double because on pure
 * tones it spans 200 dB, beyond what a float FFT resolves (its round-off floor is about
 * 140 dB under the peak); the dB values of the quietest bins would then be the float FFT's
 * noise, not the signal's, and those values enter the encoder unclamped (there is no
 * whisper-like "max - 8" floor). One D2Z of 1001 x 1024 points is a few MFLOP in double: it
 * costs nothing next to the encoder.
 *
 * Memory: a run's device buffers (activations, the front end's padded/frames/spectrum/mel/
 * image, the PCM, the pooled, hidden and embedding vectors) are one allocation for exactly its
 * n items, made from the device's pool on the run's stream at its start and freed on it at its
 * end (mb_cuda_clap_parts(): the same list gives the service its figures). The activations
 * are sized for stage 0 and reused by every later, smaller stage. A worker (struct
 * mb_tf_worker, cuda_common_internal.h) keeps its context (cuBLAS workspace), its cuFFT plan
 * with the work area we allocate for it (the plan made without auto-allocation, so the size is
 * cuFFT's own, learned once at load), and pinned host staging grown to its largest batch and
 * kept.
 *
 * Owns: the net's store (weights, position biases, front-end tables); a worker's context,
 * cuFFT plan and work area, pinned buffers; a run's allocation for the run. Threads:
 * create/destroy a net on the main thread; a worker and its runs on the worker's thread.
 */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_check_internal.h"
#include "cuda_common_internal.h"
#include "cuda_tf_internal.h"

#define N_FFT MB_CUDA_CLAP_N_FFT
#define BINS MB_CUDA_CLAP_BINS
#define HOP MB_CUDA_CLAP_HOP
#define PAD (N_FFT / 2)
#define FRAMES MB_CUDA_CLAP_FRAMES
#define MAX_SAMPLES MB_CUDA_CLAP_SAMPLES
#define MIN_SAMPLES MB_CUDA_CLAP_MIN_SAMPLES
#define PADDED MB_CUDA_CLAP_PADDED
#define MAX_STAGES MB_CUDA_CLAP_MAX_STAGES
#define MAX_NT (MB_CUDA_CLAP_MAX_WINDOW * MB_CUDA_CLAP_MAX_WINDOW)
#define LN_EPS 1e-5f /* patch_embed.norm, downsample.norm, norm: nn.LayerNorm's default */
/* the window softmax: one warp per row of at most MAX_NT scores, WSM_WARPS rows a block */
#define WSM_WARPS 4
#define WSM_PER (MAX_NT / 32)
#define L2_THREADS 256

static_assert(FRAMES == 1 + MAX_SAMPLES / HOP && PADDED == MAX_SAMPLES + 2 * PAD &&
		      (FRAMES - 1) * HOP + N_FFT <= PADDED,
	      "clap's front end sizes");
static_assert(sizeof(cufftDoubleComplex) == 2 * sizeof(double), "the spectrum part's size");
static_assert(MAX_NT % 32 == 0, "the window softmax's rows");

/* One Swin block on the device. */
struct swin {
	struct mb_tf_block tf;
	const float *bias; /* [heads x nt x nt] F32 */
	uint32_t shift, res;
};

struct mb_cuda_clap {
	struct mb_tf_store *store;
	struct mb_cuda_clap_sizes z;
	uint32_t grid, hidden, t_out, blocks;
	/* the front end */
	const double *hann, *filters, *bn_scale, *bn_shift, *coef;
	const uint32_t *lo, *hi;
	const int32_t *src;
	/* the encoder */
	const void *pe_w; /* [E x patch^2] in the precision */
	const float *pe_b, *pe_g, *pe_nb;
	struct swin *blk;					/* [blocks] */
	const float *merge_g[MAX_STAGES], *merge_b[MAX_STAGES]; /* [4d] */
	const void *merge_red[MAX_STAGES];			/* [2d x 4d] in the precision */
	const float *norm_g, *norm_b, *l1_b, *l2_b;
	const void *l1_w, *l2_w; /* F32 */
	size_t fft_work;	 /* a worker's cuFFT work area, as cuFFT sized it at load */
};

struct mb_cuda_clap_worker {
	struct mb_tf_worker tf; /* pin_in: slots of MAX_SAMPLES * 4 bytes; pin_out: of [proj] */
};

/* A run's device buffers: pointers into its one allocation. */
struct run_mem {
	float *x;		  /* [n * grid^2 x E] F32 at stage 0 */
	void *a, *q, *k, *v;	  /* as x, in the precision */
	float *big;		  /* mb_cuda_clap_big_item() bytes per item */
	float *padded;		  /* [PADDED] */
	double *frames;		  /* [FRAMES x N_FFT] */
	cufftDoubleComplex *spec; /* [FRAMES x BINS] */
	float *mel;		  /* [FRAMES x mels] */
	float *img;		  /* [spec x spec] */
	uint8_t *in;		  /* n slots of MAX_SAMPLES * 4 bytes */
	float *pooled;		  /* [n x hidden] */
	float *h1, *emb;	  /* [n x proj] */
};

namespace
{

/*
 * The row in its grid of the token at row @p part of the window order (nn.c's
 * window_source): the token (y, x) of the grid rolled by -shift, i.e. the original's
 * ((y + shift) % res, (x + shift) % res), sits in window (y / ws, x / ws) at (y % ws, x % ws).
 */
__device__ __forceinline__ uint32_t
window_source(uint32_t part, uint32_t res, uint32_t ws, uint32_t shift)
{
	const uint32_t nt = ws * ws, nwx = res / ws, win = part / nt, t = part % nt;
	const uint32_t y = win / nwx * ws + t / ws, x = win % nwx * ws + t % ws;

	return ((y + shift) % res) * res + (x + shift) % res;
}

/* The region (0..2) of coordinate @p c of a rolled axis (nn.c's region_of: HF's slices). */
__device__ __forceinline__ uint32_t
region_of(uint32_t c, uint32_t res, uint32_t ws, uint32_t shift)
{
	return c < res - ws ? 0 : c < res - shift ? 1 : 2;
}

/* ---- the front end (one item) ---- */

/* out [PADDED]: the n samples repeated whole, zeros to MAX_SAMPLES, reflected by PAD */
__global__ void
repeat_pad(const void *in, int s16, uint32_t n, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const int64_t filled = (int64_t)n * (MAX_SAMPLES / n);
	int64_t j;

	if (i >= PADDED)
		return;
	j = (int64_t)i - PAD;
	if (j < 0)
		j = -j; /* numpy's "reflect": a[-i] = a[i] */
	else if (j >= (int64_t)MAX_SAMPLES)
		j = 2 * ((int64_t)MAX_SAMPLES - 1) - j;
	out[i] = j >= filled ? 0.0f : pcm_sample(in, s16, j % n);
}

/* frames [FRAMES x N_FFT] = padded[t * HOP + k] * hann[k], double */
__global__ void
frames_window(const float *padded, const double *hann, double *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)FRAMES * N_FFT)
		return;
	out[i] = (double)padded[(i / N_FFT) * HOP + i % N_FFT] * hann[i % N_FFT];
}

/*
 * out [FRAMES x mels] = 10 log10(max(filters . |X|^2, 1e-10)) * scale + shift, in double as
 * clap.c (the sum over each filter's non-zero bins in order; no fused multiply-adds, as a
 * baseline x86-64 build of clap.c has none), rounded to F32.
 */
__global__ void
mel_db(const cufftDoubleComplex *spec, const double *filters, const uint32_t *lo,
       const uint32_t *hi, const double *scale, const double *shift, uint32_t mels, float *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t t, m;
	double acc = 0.0;

	if (i >= (size_t)FRAMES * mels)
		return;
	t = (uint32_t)(i / mels);
	m = (uint32_t)(i % mels);
	for (uint32_t k = lo[m]; k < hi[m]; k++) {
		cufftDoubleComplex c = spec[(size_t)t * BINS + k];
		double power = __dadd_rn(__dmul_rn(c.x, c.x), __dmul_rn(c.y, c.y));

		acc = __dadd_rn(acc, __dmul_rn(filters[(size_t)m * BINS + k], power));
	}
	acc = __dmul_rn(10.0, log10(fmax(acc, 1e-10)));
	out[i] = (float)__dadd_rn(__dmul_rn(acc, scale[m]), shift[m]);
}

/* img [spec x spec]: the frames interpolated to t_out, chunks of spec frames stacked */
__global__ void
mel2img(const float *mel, const int32_t *src, const double *coef, uint32_t mels, uint32_t spec,
	uint32_t t_out, float *img)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t t, m, chunk, cx;
	double v = 0.0;

	if (i >= (size_t)t_out * mels)
		return;
	t = (uint32_t)(i / mels);
	m = (uint32_t)(i % mels);
	chunk = t / spec;
	cx = t % spec;
	for (int j = 0; j < 4; j++) {
		int32_t f = src[t] + j;

		f = f < 0 ? 0 : f > (int32_t)FRAMES - 1 ? (int32_t)FRAMES - 1 : f;
		/* clap.c's c0 s0 + c1 s1 + c2 s2 + c3 s3, left to right, no fused multiply-add */
		v = __dadd_rn(
			v, __dmul_rn(coef[(size_t)t * 4 + j], (double)mel[(size_t)f * mels + m]));
	}
	img[((size_t)chunk * mels + m) * spec + cx] = (float)v;
}

/* col [g^2 x P^2] of one item's image: col[oy * g + ox][ky * P + kx], zero outside */
template <typename S>
__global__ void
patches(const float *img, uint32_t spec, uint32_t g, uint32_t P, uint32_t stride, int32_t pad,
	S *col)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t w = P * P;
	uint32_t row, kk;
	int32_t y, x;

	if (i >= (size_t)g * g * w)
		return;
	row = (uint32_t)(i / w);
	kk = (uint32_t)(i % w);
	y = (int32_t)((row / g) * stride + kk / P) - pad;
	x = (int32_t)((row % g) * stride + kk % P) - pad;
	col[i] = to_s<S>(y < 0 || y >= (int32_t)spec || x < 0 || x >= (int32_t)spec
				 ? 0.0f
				 : img[(size_t)y * spec + x]);
}

/* ---- the Swin block's own kernels ---- */

/*
 * One block per row r of the window order (item r / res^2, part r % res^2): LayerNorm of x's
 * row window_source(part) of the item, into y[r] in S (cuda_tf.cu's ln_rows, gathered: the
 * same ln_row()).
 */
template <typename S>
__global__ void
__launch_bounds__(LN_THREADS)
	ln_windows(const float *x, uint32_t d, uint32_t res, uint32_t ws, uint32_t shift,
		   const float *g, const float *b, float eps, S *y)
{
	__shared__ float sh[32];
	const uint32_t grid = res * res, part = blockIdx.x % grid;
	const size_t item = blockIdx.x / grid;

	ln_row<S>(x + (item * grid + window_source(part, res, ws, shift)) * d, d, g, b, eps,
		  y + (size_t)blockIdx.x * d, sh);
}

/*
 * One warp per row of nt F32 scores s [groups*heads x nt x nt] (group = a window of an item):
 * softmax(s + bias[head] + mask), written in S over the row's start. Row r: attention batch
 * r / nt = window * heads + head, query token r % nt; the window's place in its item's grid
 * is (window % nw) in rows of nwx windows. The mask (-100 where the query's and the key's
 * regions of the rolled grid differ, nn.c's) only when shift > 0.
 */
template <typename S>
__global__ void
__launch_bounds__(WSM_WARPS * 32)
	window_softmax(float *s, size_t rows, uint32_t nt, uint32_t heads, uint32_t nw,
		       uint32_t nwx, uint32_t ws, uint32_t res, uint32_t shift, const float *bias)
{
	const size_t r = (size_t)blockIdx.x * WSM_WARPS + threadIdx.x / 32;
	const uint32_t lane = threadIdx.x % 32;
	size_t b;
	uint32_t i, head, win, y0, x0, li = 0;
	float *row, v[WSM_PER], m = -INFINITY, sum = 0.0f, inv;
	const float *brow;
	S *out;

	if (r >= rows) /* the same for every lane of the warp */
		return;
	b = r / nt;
	i = (uint32_t)(r % nt);
	head = (uint32_t)(b % heads);
	win = (uint32_t)((b / heads) % nw);
	y0 = win / nwx * ws;
	x0 = win % nwx * ws;
	row = s + r * nt;
	out = reinterpret_cast<S *>(row);
	brow = bias + ((size_t)head * nt + i) * nt;
	if (shift > 0)
		li = region_of(y0 + i / ws, res, ws, shift) * 3 +
		     region_of(x0 + i % ws, res, ws, shift);
#pragma unroll
	for (int k = 0; k < WSM_PER; k++) {
		uint32_t c = lane + 32 * k;

		v[k] = -INFINITY;
		if (c < nt) {
			float e = row[c] + brow[c];

			if (shift > 0 && region_of(y0 + c / ws, res, ws, shift) * 3 +
							 region_of(x0 + c % ws, res, ws, shift) !=
						 li)
				e += -100.0f;
			v[k] = e;
			m = fmaxf(m, e);
		}
	}
	/* every lane's reads of the row are done before any lane gets the max (its value
	 * depends on all of them): the writes below cannot overtake a read */
	for (int o = 16; o > 0; o >>= 1)
		m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
#pragma unroll
	for (int k = 0; k < WSM_PER; k++) {
		uint32_t c = lane + 32 * k;

		if (c < nt) {
			v[k] = expf(v[k] - m);
			sum += v[k];
		}
	}
	for (int o = 16; o > 0; o >>= 1)
		sum += __shfl_xor_sync(0xffffffffu, sum, o);
	inv = 1.0f / sum;
	/* the S-typed writes go over the F32 row the lanes read: the shuffles above already
	 * order every read before them; the barrier says so, whatever later edits do (the
	 * whole warp is here: a row past the end returns the whole warp early) */
	__syncwarp();
#pragma unroll
	for (int k = 0; k < WSM_PER; k++) {
		uint32_t c = lane + 32 * k;

		if (c < nt)
			out[c] = to_s<S>(v[k] * inv);
	}
}

/* x[item][window_source(part)] += y[r] + b, r = item * res^2 + part (each x row once) */
__global__ void
window_add(float *x, const float *y, const float *b, size_t rows, uint32_t d, uint32_t res,
	   uint32_t ws, uint32_t shift)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t grid = res * res;
	size_t r, item;
	uint32_t c, part;

	if (i >= rows * d)
		return;
	r = i / d;
	c = (uint32_t)(i % d);
	item = r / grid;
	part = (uint32_t)(r % grid);
	x[(item * grid + window_source(part, res, ws, shift)) * d + c] += y[i] + b[c];
}

/* tmp [out_rows x 4d]: each 2 x 2 group of x [.. x res x res x d] in nn.c's order */
__global__ void
merge_gather(const float *x, size_t out_rows, uint32_t res, uint32_t d, float *tmp)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t oh = res / 2, w = 4 * d;
	size_t orow, item;
	uint32_t q, part, c, rem, oy, ox;

	if (i >= out_rows * w)
		return;
	orow = i / w;
	q = (uint32_t)(i % w);
	part = q / d; /* 0 (y, x), 1 (y + 1, x), 2 (y, x + 1), 3 (y + 1, x + 1) */
	c = q % d;
	item = orow / ((size_t)oh * oh);
	rem = (uint32_t)(orow % ((size_t)oh * oh));
	oy = rem / oh;
	ox = rem % oh;
	tmp[i] = x[((item * res + 2 * oy + part % 2) * res + 2 * ox + part / 2) * d + c];
}

/* x[r][c] = max(x[r][c] + b[c], 0) (clap.c's: NaN -> 0) */
__global__ void
bias_relu(float *x, size_t rows, uint32_t cols, const float *b)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	float v;

	if (i >= rows * cols)
		return;
	v = x[i] + b[i % cols];
	x[i] = v > 0.0f ? v : 0.0f;
}

/* one block per row of cols: x / max(|x|, 1e-12), the norm summed in double (clap.c's) */
__global__ void
__launch_bounds__(L2_THREADS) l2_rows(float *x, uint32_t cols)
{
	__shared__ double sh[L2_THREADS];
	float *row = x + (size_t)blockIdx.x * cols;
	double acc = 0.0;
	float scale;

	for (uint32_t c = threadIdx.x; c < cols; c += L2_THREADS)
		acc += (double)row[c] * row[c];
	sh[threadIdx.x] = acc;
	__syncthreads();
	for (unsigned int s = L2_THREADS / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	scale = (float)(1.0 / fmax(sqrt(sh[0]), 1e-12));
	for (uint32_t c = threadIdx.x; c < cols; c += L2_THREADS)
		row[c] *= scale;
}

} /* namespace */

/* ---- the net ---- */

extern "C" void
mb_cuda_clap_destroy(struct mb_cuda_clap **np)
{
	if (np == NULL || *np == NULL)
		return;
	mb_tf_store_destroy(&(*np)->store);
	free((*np)->blk);
	delete *np;
	*np = NULL;
}

extern "C" size_t
mb_cuda_clap_bytes(const struct mb_cuda_clap *net)
{
	return mb_tf_store_bytes(net->store);
}

/* The sizes the kernels and the layout take; 0 or -1 with @p err. */
static int
check_sizes(const struct mb_cuda_clap_desc *d, uint32_t *blocks, char *err, size_t err_len)
{
	const struct mb_cuda_clap_sizes *z = &d->z;
	uint32_t g, bi = 0;

	*blocks = 0;
	if (z->stages < 1 || z->stages > MAX_STAGES || z->embed < 1 || z->window < 1 ||
	    z->window > MB_CUDA_CLAP_MAX_WINDOW || z->patch < 1 || z->stride < 1 ||
	    z->patch < z->stride || z->mels < 1 || z->spec < z->mels || z->spec % z->mels != 0 ||
	    z->spec % z->stride != 0 || z->proj < 1 ||
	    (uint64_t)z->spec * (z->spec / z->mels) < FRAMES ||
	    ((uint64_t)z->embed << (z->stages - 1)) > MB_TF_MAX_D) {
		seterr(err, err_len,
		       "clap of E %u, %u stages, window %u, patch %u / %u, spec %u, %u mels, "
		       "projection %u: beyond the CUDA path (window <= %u, hidden <= %d)",
		       z->embed, z->stages, z->window, z->patch, z->stride, z->spec, z->mels,
		       z->proj, MB_CUDA_CLAP_MAX_WINDOW, MB_TF_MAX_D);
		return -1;
	}
	g = z->spec / z->stride;
	for (uint32_t s = 0; s < z->stages; s++) {
		const uint32_t res = g >> s, dim = z->embed << s;

		if ((res << s) != g || res < z->window || res % z->window != 0 ||
		    (s + 1 < z->stages && 4 * dim > MB_TF_MAX_D) || z->depths[s] < 1) {
			seterr(err, err_len,
			       "clap stage %u: a grid of %u x %u in windows of %u, width %u, %u "
			       "blocks: beyond the CUDA path (whole windows; 4 x width <= %d)",
			       s, res, res, z->window, dim, z->depths[s], MB_TF_MAX_D);
			return -1;
		}
		for (uint32_t b = 0; b < z->depths[s]; b++, bi++) {
			const struct mb_cuda_swin_host *h = &d->blocks[bi];

			if (h->tf.d != dim || h->tf.heads != z->heads[s] || h->tf.ff != z->ff[s] ||
			    h->shift >= z->window || h->bias == NULL) {
				seterr(err, err_len,
				       "clap stage %u block %u: d %u, %u heads, ffn %u, shift %u; "
				       "the stage says %u, %u, %u (shift < %u)",
				       s, b, h->tf.d, h->tf.heads, h->tf.ff, h->shift, dim,
				       z->heads[s], z->ff[s], z->window);
				return -1;
			}
		}
	}
	*blocks = bi;
	return 0;
}

static int
upload(struct mb_cuda_clap *c, const struct mb_cuda_clap_desc *d, char *err, size_t err_len)
{
	const struct mb_cuda_clap_sizes *z = &d->z;
	const uint32_t mels = z->mels, nt = z->window * z->window;
	const uint32_t pe_rows[1] = {z->embed}, proj_rows[1] = {z->proj};
	struct mb_tf_store *st;
	uint32_t bi = 0;
	int rc;

	if ((rc = mb_tf_store_create(d->device, d->prec, &c->store, err, err_len)) < 0)
		return rc;
	st = c->store;
	if ((rc = mb_tf_store_raw(st, d->hann, sizeof(double) * N_FFT, (const void **)&c->hann, err,
				  err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->filters, sizeof(double) * mels * BINS,
				  (const void **)&c->filters, err, err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->lo, sizeof(uint32_t) * mels, (const void **)&c->lo, err,
				  err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->hi, sizeof(uint32_t) * mels, (const void **)&c->hi, err,
				  err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->bn_scale, sizeof(double) * mels,
				  (const void **)&c->bn_scale, err, err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->bn_shift, sizeof(double) * mels,
				  (const void **)&c->bn_shift, err, err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->src, sizeof(int32_t) * c->t_out, (const void **)&c->src,
				  err, err_len)) < 0 ||
	    (rc = mb_tf_store_raw(st, d->coef, sizeof(double) * 4 * c->t_out,
				  (const void **)&c->coef, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(st, &d->pe_w, pe_rows, 1, z->patch * z->patch, -1, &c->pe_w,
				     err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->pe_b, z->embed, &c->pe_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->pe_g, z->embed, &c->pe_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->pe_nb, z->embed, &c->pe_nb, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->norm_g, c->hidden, &c->norm_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->norm_b, c->hidden, &c->norm_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(st, &d->l1_w, proj_rows, 1, c->hidden, MB_TF_F32, &c->l1_w,
				     err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->l1_b, z->proj, &c->l1_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(st, &d->l2_w, proj_rows, 1, z->proj, MB_TF_F32, &c->l2_w, err,
				     err_len)) < 0 ||
	    (rc = mb_tf_store_f32(st, d->l2_b, z->proj, &c->l2_b, err, err_len)) < 0)
		return rc;
	for (uint32_t s = 0; s < z->stages; s++) {
		const uint32_t dim = z->embed << s, red_rows[1] = {2 * dim};

		for (uint32_t b = 0; b < z->depths[s]; b++, bi++) {
			const struct mb_cuda_swin_host *h = &d->blocks[bi];

			c->blk[bi].shift = h->shift;
			c->blk[bi].res = c->grid >> s;
			if ((rc = mb_tf_block_upload(st, &h->tf, &c->blk[bi].tf, err, err_len)) <
				    0 ||
			    (rc = mb_tf_store_f32(st, h->bias, (size_t)z->heads[s] * nt * nt,
						  &c->blk[bi].bias, err, err_len)) < 0)
				return rc;
		}
		if (s + 1 == z->stages)
			break;
		if ((rc = mb_tf_store_f32(st, d->merges[s].ln_g, 4 * dim, &c->merge_g[s], err,
					  err_len)) < 0 ||
		    (rc = mb_tf_store_f32(st, d->merges[s].ln_b, 4 * dim, &c->merge_b[s], err,
					  err_len)) < 0 ||
		    (rc = mb_tf_store_matrix(st, &d->merges[s].red, red_rows, 1, 4 * dim, -1,
					     &c->merge_red[s], err, err_len)) < 0)
			return rc;
	}
	return 0;
}

extern "C" int
mb_cuda_clap_create(const struct mb_cuda_clap_desc *d, struct mb_cuda_clap **out, char *err,
		    size_t err_len)
{
	struct mb_cuda_clap *c;
	uint32_t blocks;
	int rc;

	*out = NULL;
	if ((rc = check_sizes(d, &blocks, err, err_len)) < 0)
		return rc;
	c = new (std::nothrow) mb_cuda_clap();
	if (c == NULL || (c->blk = (struct swin *)calloc(blocks, sizeof(*c->blk))) == NULL) {
		delete c;
		seterr(err, err_len, "out of memory");
		return -1;
	}
	c->z = d->z;
	c->blocks = blocks;
	c->grid = d->z.spec / d->z.stride;
	c->hidden = d->z.embed << (d->z.stages - 1);
	c->t_out = d->z.spec * (d->z.spec / d->z.mels);
	if ((rc = upload(c, d, err, err_len)) < 0 ||
	    (rc = mb_tf_fft_work(d->device, N_FFT, CUFFT_D2Z, FRAMES, &c->fft_work, err, err_len)) <
		    0) {
		mb_cuda_clap_destroy(&c);
		return rc;
	}
	*out = c;
	return 0;
}

extern "C" void
mb_cuda_clap_mem_of(const struct mb_cuda_clap *net, struct mb_tf_mem *out)
{
	mb_cuda_clap_mem(&net->z, mb_tf_store_prec(net->store), net->fft_work, out);
}

/* ---- a worker ---- */

extern "C" void
mb_cuda_clap_worker_destroy(struct mb_cuda_clap_worker **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	mb_tf_worker_fini(&(*wp)->tf);
	delete *wp;
	*wp = NULL;
}

extern "C" int
mb_cuda_clap_worker_create(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker **out,
			   char *err, size_t err_len)
{
	struct mb_cuda_clap_worker *w = new (std::nothrow) mb_cuda_clap_worker();
	int rc;

	*out = NULL;
	if (w == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	if ((rc = mb_tf_worker_init(&w->tf, net->store, err, err_len)) < 0 ||
	    (rc = mb_tf_worker_fft(&w->tf, N_FFT, CUFFT_D2Z, FRAMES, net->fft_work, err, err_len)) <
		    0) {
		mb_cuda_clap_worker_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Item @p i: stage, upload, its image, and its patch columns into big (queued on @p s). */
static int
front_end(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker *w, const struct run_mem *m,
	  const struct mb_cuda_audio_item *it, uint32_t i, cudaStream_t s, char *err,
	  size_t err_len)
{
	const struct mb_cuda_clap_sizes *z = &net->z;
	const size_t bytes = (size_t)it->samples * (it->pcm_s16 ? 2 : 4);
	const size_t cells = (size_t)FRAMES * z->mels, pixels = (size_t)net->t_out * z->mels;
	const size_t cols = (size_t)net->grid * net->grid * z->patch * z->patch;
	const int32_t pad = (int32_t)(z->patch - z->stride) / 2;
	uint8_t *pin = (uint8_t *)w->tf.pin_in + (size_t)i * MAX_SAMPLES * 4;
	uint8_t *dev = m->in + (size_t)i * MAX_SAMPLES * 4;
	const enum mb_tf_prec prec = mb_tf_ctx_prec(w->tf.ctx);

	if (it->samples < MIN_SAMPLES || it->samples > MAX_SAMPLES) {
		seterr(err, err_len, "item %u: %u samples, expected %u..%u", i, it->samples,
		       MIN_SAMPLES, MAX_SAMPLES);
		return -1;
	}
	/* slot i's last reader was the previous run, which ended with a synchronisation */
	memcpy(pin, it->payload, bytes);
	CUDA_OK(cudaMemcpyAsync(dev, pin, bytes, cudaMemcpyHostToDevice, s));
	repeat_pad<<<grid_of(PADDED), THREADS, 0, s>>>(dev, it->pcm_s16, it->samples, m->padded);
	frames_window<<<grid_of((size_t)FRAMES * N_FFT), THREADS, 0, s>>>(m->padded, net->hann,
									  m->frames);
	CUDA_OK(cudaGetLastError());
	FFT_OK(cufftExecD2Z(w->tf.fft, m->frames, m->spec));
	mel_db<<<grid_of(cells), THREADS, 0, s>>>(m->spec, net->filters, net->lo, net->hi,
						  net->bn_scale, net->bn_shift, z->mels, m->mel);
	mel2img<<<grid_of(pixels), THREADS, 0, s>>>(m->mel, net->src, net->coef, z->mels, z->spec,
						    net->t_out, m->img);
	CUDA_OK(cudaGetLastError());
	WITH_S(prec, patches<S><<<grid_of(cols), THREADS, 0, s>>>(m->img, z->spec, net->grid,
								  z->patch, z->stride, pad,
								  (S *)m->big + (size_t)i * cols));
	CUDA_OK(cudaGetLastError());
	return 0;
}

/* One Swin block over the n items' res x res grids in x (in place). */
static int
swin_forward(const struct mb_cuda_clap *net, struct mb_tf_ctx *ctx, const struct swin *b,
	     const struct run_mem *m, uint32_t n, char *err, size_t err_len)
{
	const uint32_t d = b->tf.d, heads = b->tf.heads, dh = d / heads, ff = b->tf.ff;
	const uint32_t ws = net->z.window, nt = ws * ws, res = b->res, nwx = res / ws;
	const size_t rows = (size_t)n * res * res, groups = rows / nt, scores = rows * heads;
	const enum mb_tf_prec prec = mb_tf_ctx_prec(ctx);
	const uint32_t widen = prec == MB_TF_F32 ? 1 : 2;
	cudaStream_t s = (cudaStream_t)mb_tf_ctx_stream(ctx);
	int rc;

	/* attention: a = LN1(x) in window order; qkv = a Wqkv^T (F32, in big); heads */
	WITH_S(prec, ln_windows<S>
	       <<<(unsigned int)rows, LN_THREADS, 0, s>>>(m->x, d, res, ws, b->shift, b->tf.ln1_g,
							  b->tf.ln1_b, b->tf.eps, (S *)m->a));
	CUDA_OK(cudaGetLastError());
	if ((rc = mb_tf_linear(ctx, (uint32_t)rows, 3 * d, d, m->a, d, prec, b->tf.wqkv, prec, 1.0f,
			       0.0f, m->big, 3 * d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_split_heads(ctx, m->big, b->tf.bqkv, rows, nt, d, heads, m->q, m->k, m->v,
				    err, err_len)) < 0 ||
	    (rc = mb_tf_attn_scores(ctx, m->q, m->k, (uint32_t)(groups * heads), nt, dh,
				    1.0f / sqrtf((float)dh), m->big, err, err_len)) < 0)
		return rc;
	WITH_S(prec, window_softmax<S>
	       <<<(unsigned int)((scores + WSM_WARPS - 1) / WSM_WARPS), WSM_WARPS * 32, 0, s>>>(
		       m->big, scores, nt, heads, nwx * nwx, nwx, ws, res, b->shift, b->bias));
	CUDA_OK(cudaGetLastError());
	/* o = p v (into q's buffer), merged into a; y = a Wo^T (F32, big); x += y + bo */
	if ((rc = mb_tf_attn_apply(ctx, m->big, m->v, (uint32_t)(groups * heads), nt, dh, m->q, err,
				   err_len)) < 0 ||
	    (rc = mb_tf_merge_heads(ctx, m->q, rows, nt, d, heads, m->a, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, (uint32_t)rows, d, d, m->a, d, prec, b->tf.wo, prec, 1.0f, 0.0f,
			       m->big, d, 1, err, err_len)) < 0)
		return rc;
	window_add<<<grid_of(rows * d), THREADS, 0, s>>>(m->x, m->big, b->tf.bo, rows, d, res, ws,
							 b->shift);
	CUDA_OK(cudaGetLastError());

	/* MLP: a = LN2(x); h = GELU(a W1^T + b1) (in big); x += h W2^T + b2 */
	if ((rc = mb_tf_layernorm(ctx, m->x, (uint32_t)rows, d, b->tf.ln2_g, b->tf.ln2_b, b->tf.eps,
				  m->a, 0, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, (uint32_t)rows, ff, d, m->a, d, prec, b->tf.w1, prec, 1.0f,
			       0.0f, m->big, ff, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_gelu(ctx, m->big, rows, ff, b->tf.b1, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, (uint32_t)rows, d, ff, m->big, ff * widen, prec, b->tf.w2, prec,
			       1.0f, 1.0f, m->x, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, m->x, rows, d, b->tf.b2, 0, NULL, 0, err, err_len)) < 0)
		return rc;
	return 0;
}

/* Stage @p st's patch merging: x [n res^2 x d] -> [n (res/2)^2 x 2d], in place. */
static int
merge_forward(const struct mb_cuda_clap *net, struct mb_tf_ctx *ctx, uint32_t st,
	      const struct run_mem *m, uint32_t n, char *err, size_t err_len)
{
	const uint32_t res = net->grid >> st, d = net->z.embed << st;
	const size_t out_rows = (size_t)n * (res / 2) * (res / 2);
	const enum mb_tf_prec prec = mb_tf_ctx_prec(ctx);
	cudaStream_t s = (cudaStream_t)mb_tf_ctx_stream(ctx);
	int rc;

	merge_gather<<<grid_of(out_rows * 4 * d), THREADS, 0, s>>>(m->x, out_rows, res, d, m->big);
	CUDA_OK(cudaGetLastError());
	if ((rc = mb_tf_layernorm(ctx, m->big, (uint32_t)out_rows, 4 * d, net->merge_g[st],
				  net->merge_b[st], LN_EPS, m->a, 0, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, (uint32_t)out_rows, 2 * d, 4 * d, m->a, 4 * d, prec,
			       net->merge_red[st], prec, 1.0f, 0.0f, m->x, 2 * d, 1, err,
			       err_len)) < 0)
		return rc;
	return 0;
}

/* The batch on the run's allocation at @p base (carved from @p parts); all queued on @p s,
 * the embeddings in tf.pin_out once the stream is done. */
static int
run_batch(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker *w,
	  const struct mb_cuda_audio_item *items, uint32_t n, const struct mb_tf_part *parts,
	  void *base, cudaStream_t s, char *err, size_t err_len)
{
	const struct mb_cuda_clap_sizes *z = &net->z;
	struct mb_tf_ctx *ctx = w->tf.ctx;
	const enum mb_tf_prec prec = mb_tf_ctx_prec(ctx);
	const uint32_t g = net->grid, E = z->embed, P = z->proj, hid = net->hidden;
	const uint32_t last = g >> (z->stages - 1), tokens = last * last;
	const size_t rows = (size_t)n * g * g;
	void *at[MB_CUDA_CLAP_PARTS];
	struct run_mem m;
	uint32_t bi = 0;
	int rc;

	mb_tf_carve(base, parts, MB_CUDA_CLAP_PARTS, n, at);
	m.x = (float *)at[MB_TF_PART_X];
	m.a = at[MB_TF_PART_A];
	m.q = at[MB_TF_PART_Q];
	m.k = at[MB_TF_PART_K];
	m.v = at[MB_TF_PART_V];
	m.big = (float *)at[MB_TF_PART_BIG];
	m.padded = (float *)at[MB_CUDA_CLAP_PART_PADDED];
	m.frames = (double *)at[MB_CUDA_CLAP_PART_FRAMES];
	m.spec = (cufftDoubleComplex *)at[MB_CUDA_CLAP_PART_SPEC];
	m.mel = (float *)at[MB_CUDA_CLAP_PART_MEL];
	m.img = (float *)at[MB_CUDA_CLAP_PART_IMG];
	m.in = (uint8_t *)at[MB_CUDA_CLAP_PART_IN];
	m.pooled = (float *)at[MB_CUDA_CLAP_PART_POOLED];
	m.h1 = (float *)at[MB_CUDA_CLAP_PART_H1];
	m.emb = (float *)at[MB_CUDA_CLAP_PART_EMB];
	FFT_OK(cufftSetStream(w->tf.fft, s));
	for (uint32_t i = 0; i < n; i++)
		if ((rc = front_end(net, w, &m, &items[i], i, s, err, err_len)) < 0)
			return rc;

	/* patch_embed, every item at once: the columns at the start of big */
	if ((rc = mb_tf_linear(ctx, (uint32_t)rows, E, z->patch * z->patch, m.big,
			       z->patch * z->patch, prec, net->pe_w, prec, 1.0f, 0.0f, m.x, E, 1,
			       err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, m.x, rows, E, net->pe_b, 0, NULL, 0, err, err_len)) < 0 ||
	    (rc = mb_tf_layernorm(ctx, m.x, (uint32_t)rows, E, net->pe_g, net->pe_nb, LN_EPS, m.x,
				  1, err, err_len)) < 0)
		return rc;

	for (uint32_t st = 0; st < z->stages; st++) {
		for (uint32_t b = 0; b < z->depths[st]; b++)
			if ((rc = swin_forward(net, ctx, &net->blk[bi++], &m, n, err, err_len)) < 0)
				return rc;
		if (st + 1 < z->stages &&
		    (rc = merge_forward(net, ctx, st, &m, n, err, err_len)) < 0)
			return rc;
	}

	/* head: norm (F32, into big), the mean, the projection (F32), L2 */
	if ((rc = mb_tf_layernorm(ctx, m.x, n * tokens, hid, net->norm_g, net->norm_b, LN_EPS,
				  m.big, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_mean_tokens(ctx, m.big, n, tokens, hid, m.pooled, err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, n, P, hid, m.pooled, hid, MB_TF_F32, net->l1_w, MB_TF_F32, 1.0f,
			       0.0f, m.h1, P, 1, err, err_len)) < 0)
		return rc;
	bias_relu<<<grid_of((size_t)n * P), THREADS, 0, s>>>(m.h1, n, P, net->l1_b);
	CUDA_OK(cudaGetLastError());
	if ((rc = mb_tf_linear(ctx, n, P, P, m.h1, P, MB_TF_F32, net->l2_w, MB_TF_F32, 1.0f, 0.0f,
			       m.emb, P, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, m.emb, n, P, net->l2_b, 0, NULL, 0, err, err_len)) < 0)
		return rc;
	l2_rows<<<n, L2_THREADS, 0, s>>>(m.emb, P);
	CUDA_OK(cudaGetLastError());
	CUDA_OK(cudaMemcpyAsync(w->tf.pin_out, m.emb, (size_t)n * P * sizeof(float),
				cudaMemcpyDeviceToHost, s));
	return 0;
}

extern "C" int
mb_cuda_clap_run(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker *w,
		 const struct mb_cuda_audio_item *items, uint32_t n, void *stream, char *err,
		 size_t err_len)
{
	struct mb_tf_part parts[MB_CUDA_CLAP_PARTS];
	void *base;
	int rc;

	if (n == 0)
		return 0;
	if (n > 65535) { /* mb_tf_mean_tokens()' grid.y: before any work */
		seterr(err, err_len, "a clap batch of %u items: at most 65535", n);
		return -1;
	}
	mb_cuda_clap_parts(&net->z, mb_tf_ctx_prec(w->tf.ctx), parts);
	if ((rc = mb_tf_worker_begin(&w->tf, stream, n, (size_t)MAX_SAMPLES * 4, net->z.proj, parts,
				     MB_CUDA_CLAP_PARTS, &base, err, err_len)) < 0)
		return rc;
	rc = run_batch(net, w, items, n, parts, base, (cudaStream_t)mb_tf_ctx_stream(w->tf.ctx),
		       err, err_len);
	/* the embeddings' download is waited for with the free */
	if ((rc = mb_tf_worker_end(&w->tf, &base, rc, err, err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		memcpy(items[i].out, w->tf.pin_out + (size_t)i * net->z.proj,
		       (size_t)net->z.proj * sizeof(float));
	return 0;
}
