/*
 * clap.c: the CLAP audio tower on the CPU, as Hugging Face's ClapModel.get_audio_features()
 * (ClapAudioModelWithProjection + F.normalize) computes it for the unfused model, from a
 * published checkpoint (laion/clap-htsat-unfused) loaded as it is.
 *
 * One item is PCM 48 kHz mono, 25 ms .. 10 s (1200 .. 480000 samples; longer audio is cut
 * into 10 s windows by the service and their embeddings averaged, registry.c). The front
 * end is ClapFeatureExtractor's for the unfused checkpoints (preprocessor_config.json:
 * truncation "rand_trunc", padding "repeatpad"), for clips of at most 10 s:
 *
 *   repeatpad  a clip of n < 480000 samples is repeated floor(480000 / n) times, whole, and
 *              zero-padded to 480000 (np.tile, then np.pad); 480000 samples stay as they
 *              are; S16LE is x / 32768;
 *   STFT       centred frames (reflect padding of 512 at both ends), hop 480, n_fft 1024,
 *              periodic Hann window: 1001 frames; |rfft|^2 in double precision (a radix-2
 *              FFT here: the power spectrum spans 200 dB on pure tones, beyond float);
 *   mel        64 triangular filters over 50 .. 14000 Hz on the Slaney mel scale with
 *              Slaney area normalisation (HF's mel_filter_bank(norm="slaney",
 *              mel_scale="slaney"), as librosa), 10 log10(max(x, 1e-10)) dB (top_db none).
 *
 * Then ClapAudioEncoder (HTSAT, a Swin transformer over the spectrogram as an image):
 *
 *   batch_norm   BatchNorm2d over the mel bins with its running statistics (eps 1e-5);
 *   mel2img      bicubic interpolation (align_corners, A = -0.75, edges clamped) of the 1001
 *                frames to spec_size * freq_ratio = 1024 (freq_ratio = spec_size / mels =
 *                4), then the 4 time chunks of 256 frames stacked along frequency: a 256 x
 *                256 image, row = chunk * 64 + mel bin, column = frame in the chunk;
 *   patch_embed  conv2d 1 -> E, kernel patch_size, stride patch_stride (4, 4), then
 *                LayerNorm (eps 1e-5): 64 x 64 tokens;
 *   stages       Swin blocks (nn.c mb_nn_swin_forward: windows of window_size, shifted by
 *                window / 2 in every odd block unless the grid is one window, relative
 *                position bias, LayerNorm eps layer_norm_eps, exact GELU MLP) and a patch
 *                merging after every stage but the last (dims E, 2E, 4E, 8E);
 *   norm         LayerNorm (eps 1e-5), mean over the tokens: [hidden = 8E];
 *   projection   linear hidden -> P, ReLU, linear P -> P; L2-normalised (x / max(|x|,
 *                1e-12)): F32 [1 x P].
 *
 * Sizes come from the checkpoint: E and patch_size from patch_embed.proj, the mel bins from
 * batch_norm, stages and depths by counting blocks, heads per stage and window_size from the
 * relative position tables' shapes, the MLP width per stage from intermediate.dense, P from
 * audio_projection.linear1. config.json's audio_config (a ClapModel's) or the file itself (a
 * ClapAudioModelWithProjection's) gives spec_size (default 256), patch_stride ([4, 4]) and
 * layer_norm_eps (1e-5), and what else it says must agree with the tensors; the fused model
 * (enable_fusion) is refused. Presets: "tiny" (a test size, not published: E 32, depths
 * [2, 2, 2, 2]) and "clap-htsat-unfused" (E 96, depths [2, 2, 6, 2], heads [4, 8, 16, 32]).
 * All that, and the tensors' names below, is clap_layout.c's (the checkpoints' layout, which
 * tools link without this file).
 *
 * Tensor names: ClapModel and ClapAudioModelWithProjection save the same ones
 * ("audio_model.audio_encoder.*", "audio_projection.*"); the text tower of a ClapModel
 * checkpoint, the relative_position_index buffers and num_batches_tracked are not read.
 *
 * A batch: the front end and patch embedding item by item, then each block, merging, the
 * final norm and the projection once over the tokens of all items stacked (attention per
 * item, window and head). All in the worker's float scratch (net.c): no allocation here.
 *
 * On a CUDA device the same steps run in cuda_clap.cu (on the transformer module,
 * cuda_tf_internal.h): the front end item by item (the STFT by cuFFT in double precision, as
 * here), the rest over the batch's tokens stacked the same way, the GEMMs at the net's
 * precision (models[].precision; the projection's in F32); this file hands it the sizes, the
 * front end's tables and the tensors at load (the expanded position biases included) and each
 * batch's items at run. There a run allocates its batch's device memory for exactly its items
 * and frees it at its end; gpu_bytes reports those bytes (and what a worker keeps) from the
 * same formula (mb_cuda_clap_mem()).
 *
 * The lifecycle is net.c's (net_internal.h); this file is the def, its layout (mb_clap_layout)
 * apart.
 */
#include "clap_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "mb_build_config.h"
#include "mb_models.h"
#include "net_internal.h"
#include "nn_internal.h"

#if MB_HAVE_CUDA
#include "cuda_tf_internal.h"
#endif

#define SAMPLE_RATE MB_CLAP_SAMPLE_RATE
#define N_FFT MB_CLAP_N_FFT
#define HALF (N_FFT / 2)     /* the complex FFT's size */
#define BINS (N_FFT / 2 + 1) /* 513 */
#define HOP MB_CLAP_HOP
#define F_MIN MB_CLAP_F_MIN
#define F_MAX MB_CLAP_F_MAX
#define MAX_SAMPLES (MB_CLAP_MAX_SECONDS * SAMPLE_RATE) /* 480000 */
#define MIN_SAMPLES (SAMPLE_RATE / 40)			/* 25 ms */
#define FRAMES MB_CLAP_FRAMES				/* 1001 */
#define BN_EPS 1e-5
#define LN_EPS_TORCH 1e-5f /* patch_embed.norm, downsample.norm, norm: nn.LayerNorm's default */

#define MAX_STAGES MB_CLAP_MAX_STAGES

/* tensors, in clap_specs() order (clap_layout.c): the stem, 17 per block, 3 per merging, the
 * final norm, the projection */
enum { PE_W, PE_B, PE_NG, PE_NB, BN_W, BN_B, BN_RM, BN_RV, N_STEM };
enum {
	B_LN1_G,
	B_LN1_B,
	B_TABLE,
	B_Q_W,
	B_Q_B,
	B_K_W,
	B_K_B,
	B_V_W,
	B_V_B,
	B_O_W,
	B_O_B,
	B_LN2_G,
	B_LN2_B,
	B_FC1_W,
	B_FC1_B,
	B_FC2_W,
	B_FC2_B,
	N_BLOCK
};
enum { M_RED, M_NG, M_NB, N_MERGE };
enum { H_NG, H_NB, H_L1_W, H_L1_B, H_L2_W, H_L2_B, N_HEAD };

/* What a loaded clap keeps besides its tensors. */
struct clap_extra {
	/* the front end, in double precision */
	double window[N_FFT];		 /* periodic Hann */
	double tw_re[BINS], tw_im[BINS]; /* exp(-2 pi i k / N_FFT), k <= N_FFT / 2 */
	uint16_t bitrev[HALF];		 /* the complex FFT's input order */
	double *fb;			 /* [mels][BINS], non-zero in [lo, hi) */
	uint32_t *lo, *hi;		 /* [mels] */
	double *bn_scale, *bn_shift;	 /* [mels]: batch_norm folded */
	uint32_t t_out;			 /* frames after mel2img's interpolation */
	int32_t *src;			 /* [t_out]: the first of 4 source frames */
	double *coef;			 /* [t_out][4] bicubic weights */
	uint32_t ratio;			 /* freq_ratio */
	/* the encoder */
	float *bias;				 /* every block's expanded position bias */
	struct mb_nn_swin *blk;			 /* every block, stage by stage */
	const float *merge[MAX_STAGES][N_MERGE]; /* stage s's patch merging (s < stages - 1) */
	const float *head[N_HEAD];
};

static int
clap_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	uint32_t samples = mb_proto_media_length(hdr);

	if (hdr->sample_rate != SAMPLE_RATE) {
		snprintf(reason, reason_len,
			 "sample_rate: %u Hz, but clap needs %u Hz mono audio (resample first)",
			 hdr->sample_rate, SAMPLE_RATE);
		return -1;
	}
	if (samples < MIN_SAMPLES) {
		snprintf(reason, reason_len,
			 "payload_len: %u bytes, %u samples of audio; clap needs at least %u (%u "
			 "ms at "
			 "%u Hz)",
			 hdr->payload_len, samples, MIN_SAMPLES, MIN_SAMPLES * 1000 / SAMPLE_RATE,
			 SAMPLE_RATE);
		return -1;
	}
	if (samples > MAX_SAMPLES) {
		snprintf(reason, reason_len,
			 "payload_len: %.2f s of audio, clap takes at most %u s (%u samples at %u "
			 "Hz)",
			 (double)samples / SAMPLE_RATE, MB_CLAP_MAX_SECONDS, MAX_SAMPLES,
			 SAMPLE_RATE);
		return -1;
	}
	return 0;
}

/* ---- load-time state ---- */

static void
clap_fini(struct mb_net *net)
{
	struct clap_extra *x = net->extra;

	if (x == NULL)
		return;
	free(x->fb);
	free(x->lo);
	free(x->hi);
	free(x->bn_scale);
	free(x->bn_shift);
	free(x->src);
	free(x->coef);
	free(x->bias);
	free(x->blk);
	free(x);
	net->extra = NULL;
}

/* Slaney's mel scale (librosa's and HF's mel_scale="slaney"). */
static double
hz_to_mel(double f)
{
	return f < 1000.0 ? 3.0 * f / 200.0 : 15.0 + log(f / 1000.0) * 27.0 / log(6.4);
}

static double
mel_to_hz(double m)
{
	return m < 15.0 ? 200.0 * m / 3.0 : 1000.0 * exp(log(6.4) / 27.0 * (m - 15.0));
}

/* HF's mel_filter_bank(BINS, mels, 50, 14000, 48000, norm="slaney", mel_scale="slaney") */
static int
build_filters(struct clap_extra *x, uint32_t mels)
{
	const double lo = hz_to_mel(F_MIN), hi = hz_to_mel(F_MAX);
	double *f = malloc(sizeof(double) * (mels + 2));

	if (f == NULL)
		return -ENOMEM;

	for (uint32_t i = 0; i < mels + 2; i++)
		f[i] = mel_to_hz(i == mels + 1 ? hi : lo + (hi - lo) * i / (mels + 1));
	for (uint32_t m = 0; m < mels; m++) {
		double enorm = 2.0 / (f[m + 2] - f[m]);

		x->lo[m] = BINS;
		x->hi[m] = 0;
		for (uint32_t k = 0; k < BINS; k++) {
			double fk = (double)k * (SAMPLE_RATE / 2) / (BINS - 1);
			double down = (fk - f[m]) / (f[m + 1] - f[m]);
			double up = (f[m + 2] - fk) / (f[m + 2] - f[m + 1]);
			double w = fmax(0.0, fmin(down, up)) * enorm;

			x->fb[(size_t)m * BINS + k] = w;
			if (w > 0.0) {
				if (k < x->lo[m])
					x->lo[m] = k;
				x->hi[m] = k + 1;
			}
		}
		if (x->lo[m] > x->hi[m])
			x->lo[m] = x->hi[m] = 0;
	}
	free(f);
	return 0;
}

/* PyTorch's bicubic weights (A = -0.75) of offset @p t in [0, 1). */
static void
cubic_weights(double t, double *c)
{
	const double a = -0.75;
	double x;

	x = t + 1.0; /* 1 < x < 2 */
	c[0] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
	x = t; /* |x| <= 1 */
	c[1] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
	x = 1.0 - t;
	c[2] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
	x = 2.0 - t;
	c[3] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
}

static int
init_front_end(struct mb_net *net, struct clap_extra *x)
{
	const struct mb_clap_dims *D = net->dims;
	float *const *w = net->w;
	const uint32_t mels = D->mels;
	uint32_t bits = 0;

	for (uint32_t n = 0; n < N_FFT; n++)
		x->window[n] = 0.5 - 0.5 * cos(2.0 * M_PI * n / N_FFT);
	for (uint32_t k = 0; k < BINS; k++) {
		x->tw_re[k] = cos(2.0 * M_PI * k / N_FFT);
		x->tw_im[k] = -sin(2.0 * M_PI * k / N_FFT);
	}
	while ((1u << bits) < HALF)
		bits++;
	for (uint32_t i = 0; i < HALF; i++) {
		uint32_t r = 0;

		for (uint32_t b = 0; b < bits; b++)
			r |= ((i >> b) & 1u) << (bits - 1 - b);
		x->bitrev[i] = (uint16_t)r;
	}
	x->fb = calloc((size_t)mels * BINS, sizeof(double));
	x->lo = calloc(mels, sizeof(uint32_t));
	x->hi = calloc(mels, sizeof(uint32_t));
	x->bn_scale = calloc(mels, sizeof(double));
	x->bn_shift = calloc(mels, sizeof(double));
	x->ratio = D->spec / D->mels;
	x->t_out = D->spec * x->ratio;
	x->src = calloc(x->t_out, sizeof(int32_t));
	x->coef = calloc((size_t)x->t_out * 4, sizeof(double));
	if (x->fb == NULL || x->lo == NULL || x->hi == NULL || x->bn_scale == NULL ||
	    x->bn_shift == NULL || x->src == NULL || x->coef == NULL)
		return -ENOMEM;
	if (build_filters(x, mels) < 0)
		return -ENOMEM;
	/* (x - mean) / sqrt(var + eps) * weight + bias = x * scale + shift */
	for (uint32_t m = 0; m < mels; m++) {
		double scale = (double)w[BN_W][m] / sqrt((double)w[BN_RV][m] + BN_EPS);

		x->bn_scale[m] = scale;
		x->bn_shift[m] = (double)w[BN_B][m] - (double)w[BN_RM][m] * scale;
	}
	/* interpolate(..., mode="bicubic", align_corners=True) from FRAMES to t_out frames
	 * (t_out == FRAMES: the identity, as HF then skips it) */
	for (uint32_t t = 0; t < x->t_out; t++) {
		double *c = x->coef + (size_t)t * 4;

		if (x->t_out == FRAMES) {
			x->src[t] = (int32_t)t - 1;
			c[0] = c[2] = c[3] = 0.0;
			c[1] = 1.0;
		} else {
			double real = (double)(FRAMES - 1) / (x->t_out - 1) * t;
			double fl = floor(real);

			x->src[t] = (int32_t)fl - 1;
			cubic_weights(real - fl, c);
		}
	}
	return 0;
}

static int
clap_init(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	const struct mb_clap_dims *D = net->dims;
	struct clap_extra *x;
	uint32_t blocks = 0, k = N_STEM, bi = 0;
	size_t bias_floats = 0, off = 0;

	(void)ck;
	for (uint32_t s = 0; s < D->stages; s++) {
		blocks += D->depths[s];
		bias_floats += (size_t)D->depths[s] * D->heads[s] * D->window * D->window *
			       D->window * D->window;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		goto oom;
	net->extra = x;
	x->blk = calloc(blocks, sizeof(*x->blk));
	x->bias = malloc(sizeof(float) * bias_floats);
	if (x->blk == NULL || x->bias == NULL || init_front_end(net, x) < 0)
		goto oom;
	/* walk the tensors in clap_specs() order */
	for (uint32_t s = 0; s < D->stages; s++) {
		const uint32_t d = mb_clap_dim_of(D, s), res = mb_clap_grid_of(D) >> s;

		for (uint32_t b = 0; b < D->depths[s]; b++, bi++, k += N_BLOCK) {
			float *const *w = net->w + k;
			float *bias = x->bias + off;

			mb_nn_swin_bias(w[B_TABLE], D->window, D->heads[s], bias);
			off += (size_t)D->heads[s] * D->window * D->window * D->window * D->window;
			x->blk[bi] = (struct mb_nn_swin){
				.d = d,
				.heads = D->heads[s],
				.ff = D->ff[s],
				.h = res,
				.w = res,
				.window = D->window,
				/* HF: no shift when the grid is a single window */
				.shift = b % 2 == 1 && res > D->window ? D->window / 2 : 0,
				.eps = D->eps,
				.ln1_g = w[B_LN1_G],
				.ln1_b = w[B_LN1_B],
				.wq = w[B_Q_W],
				.bq = w[B_Q_B],
				.wk = w[B_K_W],
				.bk = w[B_K_B],
				.wv = w[B_V_W],
				.bv = w[B_V_B],
				.wo = w[B_O_W],
				.bo = w[B_O_B],
				.bias = bias,
				.ln2_g = w[B_LN2_G],
				.ln2_b = w[B_LN2_B],
				.w1 = w[B_FC1_W],
				.b1 = w[B_FC1_B],
				.w2 = w[B_FC2_W],
				.b2 = w[B_FC2_B],
			};
		}
		if (s + 1 < D->stages) {
			for (uint32_t j = 0; j < N_MERGE; j++)
				x->merge[s][j] = net->w[k + j];
			k += N_MERGE;
		}
	}
	for (uint32_t j = 0; j < N_HEAD; j++)
		x->head[j] = net->w[k + j];
	if (k + N_HEAD != net->specs.n) { /* clap_specs() and this walk disagree: a bug */
		fprintf(stderr, "clap: %u tensors walked, %u listed\n", k + N_HEAD, net->specs.n);
		abort();
	}
	return 0;
oom:
	snprintf(reason, reason_len, "out of memory");
	return -ENOMEM;
}

/* ---- run ---- */

static uint32_t
clap_shape(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows, uint16_t *cols,
	   uint16_t *type)
{
	const struct mb_clap_dims *D = net->dims;
	uint32_t n = mb_proto_media_length(it->hdr);

	if ((it->hdr->media != MB_MEDIA_PCM_S16LE && it->hdr->media != MB_MEDIA_PCM_F32LE) ||
	    it->hdr->sample_rate != SAMPLE_RATE || n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = 1;
	*cols = (uint16_t)D->proj;
	*type = MB_RESULT_F32;
	return D->proj * (uint32_t)sizeof(float);
}

/* @p floats rounded up to whole 64-byte lines: every part of the scratch stays aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

/*
 * The scratch of a batch of @p n: the tokens of every item (the widest: stage 0's), then
 * one region used first by the front end (one item at a time), then by the blocks and
 * mergings, then by the head.
 */
struct layout {
	size_t act;				  /* n x grid^2 x embed */
	size_t padded, fft, mel, img, col, front; /* the front end's parts */
	size_t blocks;				  /* the largest block's or merging's */
	size_t head;				  /* norm, pooled, projection */
};

static void
layout_of(const struct mb_net *net, uint32_t n, struct layout *L)
{
	const struct mb_clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	const size_t g = mb_clap_grid_of(D), hid = mb_clap_hidden_of(D),
		     last = g >> (D->stages - 1);
	uint32_t bi = 0;

	L->act = lines((size_t)n * g * g * D->embed);
	L->padded = lines(MAX_SAMPLES + N_FFT);
	L->fft = lines(2 * (2 * HALF + BINS)); /* doubles: z[HALF] complex, power[BINS] */
	L->mel = lines((size_t)FRAMES * D->mels);
	L->img = lines((size_t)D->spec * D->spec);
	L->col = lines(g * g * D->patch * D->patch);
	L->front = L->padded + L->fft + L->mel + L->img + L->col;
	L->blocks = 0;
	for (uint32_t s = 0; s < D->stages; s++) {
		size_t need = mb_nn_swin_scratch(&x->blk[bi], n);

		if (need > L->blocks)
			L->blocks = need;
		bi += D->depths[s];
		/* a merging: tmp of n x res^2 x width */
		need = (size_t)n * (g >> s) * (g >> s) * mb_clap_dim_of(D, s);
		if (need > L->blocks)
			L->blocks = need;
	}
	L->blocks = lines(L->blocks);
	L->head = lines((size_t)n * last * last * hid) + lines((size_t)n * hid) +
		  2 * lines((size_t)n * D->proj);
}

static size_t
clap_cpu_scratch(const struct mb_net *net, uint32_t n)
{
	struct layout L;
	size_t region;

	layout_of(net, n, &L);
	region = L.front > L.blocks ? L.front : L.blocks;
	return L.act + (region > L.head ? region : L.head);
}

/* In place: the DFT of the HALF complex values (re, im interleaved) in @p z. */
static void
fft_half(const struct clap_extra *x, double *z)
{
	for (uint32_t i = 0; i < HALF; i++) {
		uint32_t j = x->bitrev[i];

		if (j > i) {
			double r = z[2 * i], m = z[2 * i + 1];

			z[2 * i] = z[2 * j];
			z[2 * i + 1] = z[2 * j + 1];
			z[2 * j] = r;
			z[2 * j + 1] = m;
		}
	}
	for (uint32_t len = 2; len <= HALF; len *= 2) {
		const uint32_t step = N_FFT / len; /* exp(-2 pi i j / len) = tw[j * step] */

		for (uint32_t i = 0; i < HALF; i += len)
			for (uint32_t j = 0; j < len / 2; j++) {
				double wr = x->tw_re[j * step], wi = x->tw_im[j * step];
				double *a = z + 2 * (i + j), *b = z + 2 * (i + j + len / 2);
				double br = b[0] * wr - b[1] * wi, bim = b[0] * wi + b[1] * wr;

				b[0] = a[0] - br;
				b[1] = a[1] - bim;
				a[0] += br;
				a[1] += bim;
			}
	}
}

/* |rfft(frame * window)|^2 of the N_FFT samples at @p in into @p power [BINS]. */
static void
power_spectrum(const struct clap_extra *x, const float *in, double *z, double *power)
{
	for (uint32_t n = 0; n < HALF; n++) {
		z[2 * n] = in[2 * n] * x->window[2 * n];
		z[2 * n + 1] = in[2 * n + 1] * x->window[2 * n + 1];
	}
	fft_half(x, z);
	/* the real DFT from the half-size complex one: X[k] = E[k] + W^k O[k] */
	for (uint32_t k = 0; k <= HALF; k++) {
		uint32_t a = k % HALF, b = (HALF - k) % HALF;
		double ar = z[2 * a], ai = z[2 * a + 1], br = z[2 * b], bi = -z[2 * b + 1];
		double er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
		double orr = 0.5 * (ai - bi), oi = -0.5 * (ar - br); /* (A - B) / 2i */
		double xr = er + x->tw_re[k] * orr - x->tw_im[k] * oi;
		double xi = ei + x->tw_re[k] * oi + x->tw_im[k] * orr;

		power[k] = xr * xr + xi * xi;
	}
}

/* One item's samples, repeat-padded to 10 s, reflect-padded by N_FFT / 2 into @p padded. */
static void
load_audio(const struct mb_model_item *it, float *padded)
{
	const uint32_t n = mb_proto_media_length(it->hdr), pad = N_FFT / 2;
	float *a = padded + pad;
	uint32_t filled;

	if (it->hdr->media == MB_MEDIA_PCM_S16LE) {
		const uint8_t *p = it->payload;

		for (uint32_t i = 0; i < n; i++)
			a[i] = (float)(int16_t)(p[2 * i] | p[2 * i + 1] << 8) / 32768.0f;
	} else {
		memcpy(a, it->payload, sizeof(float) * n);
	}
	/* repeatpad: floor(MAX / n) whole copies (np.tile), then zeros */
	filled = n * (MAX_SAMPLES / n);
	for (uint32_t i = n; i < filled; i += n)
		memcpy(a + i, a, sizeof(float) * n);
	memset(a + filled, 0, sizeof(float) * (MAX_SAMPLES - filled));
	for (uint32_t i = 1; i <= pad; i++) { /* numpy's "reflect" */
		a[-(int32_t)i] = a[i];
		a[MAX_SAMPLES - 1 + i] = a[MAX_SAMPLES - 1 - i];
	}
}

/*
 * The front end and patch embedding of one item into @p tokens [grid^2 x embed], using
 * @p region (the layout's front end parts).
 */
static void
embed_item(const struct mb_net *net, const struct layout *L, float *region,
	   const struct mb_model_item *it, float *tokens)
{
	const struct mb_clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	float *const *w = net->w;
	float *padded = region, *mel = padded + L->padded + L->fft, *img = mel + L->mel;
	float *col = img + L->img;
	double *z = (double *)(padded + L->padded), *power = z + 2 * HALF;
	const uint32_t mels = D->mels, g = mb_clap_grid_of(D), P = D->patch, S = D->stride;
	const int32_t pad = (int32_t)(D->patch - D->stride) / 2;

	/* log-mel in dB, batch-normalised: mel [FRAMES x mels] */
	load_audio(it, padded);
	for (uint32_t t = 0; t < FRAMES; t++) {
		float *row = mel + (size_t)t * mels;

		power_spectrum(x, padded + (size_t)t * HOP, z, power);
		for (uint32_t m = 0; m < mels; m++) {
			const double *fb = x->fb + (size_t)m * BINS;
			double acc = 0.0;

			for (uint32_t k = x->lo[m]; k < x->hi[m]; k++)
				acc += fb[k] * power[k];
			acc = 10.0 * log10(fmax(acc, 1e-10));
			row[m] = (float)(acc * x->bn_scale[m] + x->bn_shift[m]);
		}
	}
	/* mel2img: frames interpolated to t_out, chunks of spec frames stacked */
	for (uint32_t t = 0; t < x->t_out; t++) {
		const double *c = x->coef + (size_t)t * 4;
		const uint32_t chunk = t / D->spec, cx = t % D->spec;
		const float *src[4];

		for (int j = 0; j < 4; j++) {
			int32_t f = x->src[t] + j;

			f = f < 0 ? 0 : f > (int32_t)FRAMES - 1 ? (int32_t)FRAMES - 1 : f;
			src[j] = mel + (size_t)f * mels;
		}
		for (uint32_t m = 0; m < mels; m++)
			img[(size_t)(chunk * mels + m) * D->spec + cx] =
				(float)(c[0] * src[0][m] + c[1] * src[1][m] + c[2] * src[2][m] +
					c[3] * src[3][m]);
	}
	/* patch_embed: im2col [g^2 x P^2], one GEMM, LayerNorm */
	for (uint32_t oy = 0; oy < g; oy++)
		for (uint32_t ox = 0; ox < g; ox++) {
			float *row = col + ((size_t)oy * g + ox) * P * P;

			for (uint32_t ky = 0; ky < P; ky++) {
				int32_t y = (int32_t)(oy * S + ky) - pad;

				for (uint32_t kx = 0; kx < P; kx++) {
					int32_t xx = (int32_t)(ox * S + kx) - pad;

					row[ky * P + kx] = y < 0 || y >= (int32_t)D->spec ||
									   xx < 0 ||
									   xx >= (int32_t)D->spec
								   ? 0.0f
								   : img[(size_t)y * D->spec + xx];
				}
			}
		}
	mb_nn_linear(col, g * g, P * P, w[PE_W], w[PE_B], D->embed, tokens);
	mb_nn_layernorm(tokens, g * g, D->embed, w[PE_NG], w[PE_NB], LN_EPS_TORCH, tokens);
}

static int
clap_cpu_run(const struct mb_net *net, float *scratch, struct mb_model_item *const *items,
	     uint32_t n)
{
	const struct mb_clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	const uint32_t g = mb_clap_grid_of(D), hid = mb_clap_hidden_of(D), P = D->proj;
	float *act = scratch, *region;
	float *normed, *pooled, *h1, *h2;
	uint32_t bi = 0, last;
	struct layout L;

	layout_of(net, n, &L);
	region = act + L.act;
	for (uint32_t i = 0; i < n; i++)
		embed_item(net, &L, region, items[i], act + (size_t)i * g * g * D->embed);
	for (uint32_t s = 0; s < D->stages; s++) {
		const uint32_t res = g >> s, d = mb_clap_dim_of(D, s);

		for (uint32_t b = 0; b < D->depths[s]; b++)
			mb_nn_swin_forward(&x->blk[bi++], act, n, region);
		if (s + 1 < D->stages)
			mb_nn_patch_merge(act, n, res, res, d, x->merge[s][M_NG], x->merge[s][M_NB],
					  LN_EPS_TORCH, x->merge[s][M_RED], region, act);
	}
	/* norm, the mean over the tokens, the projection, L2 */
	last = g >> (D->stages - 1);
	normed = region;
	pooled = normed + lines((size_t)n * last * last * hid);
	h1 = pooled + lines((size_t)n * hid);
	h2 = h1 + lines((size_t)n * P);
	mb_nn_layernorm(act, n * last * last, hid, x->head[H_NG], x->head[H_NB], LN_EPS_TORCH,
			normed);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t c = 0; c < hid; c++) {
			const float *col = normed + (size_t)i * last * last * hid + c;
			double acc = 0.0;

			for (uint32_t t = 0; t < last * last; t++)
				acc += col[(size_t)t * hid];
			pooled[(size_t)i * hid + c] = (float)(acc / (last * last));
		}
	mb_nn_linear(pooled, n, hid, x->head[H_L1_W], x->head[H_L1_B], P, h1);
	for (size_t j = 0; j < (size_t)n * P; j++)
		h1[j] = h1[j] > 0.0f ? h1[j] : 0.0f;
	mb_nn_linear(h1, n, P, x->head[H_L2_W], x->head[H_L2_B], P, h2);
	for (uint32_t i = 0; i < n; i++) {
		const float *e = h2 + (size_t)i * P;
		float *out = items[i]->result;
		double norm = 0.0;
		float scale;

		for (uint32_t j = 0; j < P; j++)
			norm += (double)e[j] * e[j];
		scale = (float)(1.0 / fmax(sqrt(norm), 1e-12));
		for (uint32_t j = 0; j < P; j++)
			out[j] = e[j] * scale;
	}
	return 0;
}

/* ---- on a CUDA device (cuda_clap.cu) ---- */

#if MB_HAVE_CUDA

_Static_assert((int)MB_NET_F32 == (int)MB_TF_F32 && (int)MB_NET_F16 == (int)MB_TF_F16 &&
		       (int)MB_NET_BF16 == (int)MB_TF_BF16,
	       "one numbering of the precisions");
_Static_assert(MB_CUDA_CLAP_MAX_STAGES == MAX_STAGES && MB_CUDA_CLAP_N_FFT == N_FFT &&
		       MB_CUDA_CLAP_BINS == BINS && MB_CUDA_CLAP_HOP == HOP &&
		       MB_CUDA_CLAP_SAMPLES == MAX_SAMPLES &&
		       MB_CUDA_CLAP_MIN_SAMPLES == MIN_SAMPLES && MB_CUDA_CLAP_FRAMES == FRAMES,
	       "clap.c and cuda_clap.cu: one set of sizes");

/* A CUDA worker: the device side's, and the batch's items as it takes them. */
struct clap_gpu_worker {
	struct mb_cuda_clap_worker *w;
	struct mb_cuda_audio_item *items;
	uint32_t cap;
};

static int
clap_gpu_load(struct mb_net *net, int device, enum mb_net_precision prec, char *reason,
	      size_t reason_len)
{
	const struct mb_clap_dims *D = net->dims;
	struct clap_extra *x = net->extra;
	float *const *w = net->w;
	uint32_t blocks = 0;
	struct mb_cuda_swin_host *blk;
	struct mb_cuda_clap_merge_host merges[MAX_STAGES];
	struct mb_cuda_clap_desc desc = {
		.device = device,
		.prec = (enum mb_tf_prec)prec,
		.z =
			{
				.embed = D->embed,
				.stages = D->stages,
				.window = D->window,
				.patch = D->patch,
				.stride = D->stride,
				.spec = D->spec,
				.mels = D->mels,
				.proj = D->proj,
			},
		.hann = x->window,
		.filters = x->fb,
		.lo = x->lo,
		.hi = x->hi,
		.bn_scale = x->bn_scale,
		.bn_shift = x->bn_shift,
		.src = x->src,
		.coef = x->coef,
		.pe_w = w[PE_W],
		.pe_b = w[PE_B],
		.pe_g = w[PE_NG],
		.pe_nb = w[PE_NB],
		.merges = merges,
		.norm_g = x->head[H_NG],
		.norm_b = x->head[H_NB],
		.l1_w = x->head[H_L1_W],
		.l1_b = x->head[H_L1_B],
		.l2_w = x->head[H_L2_W],
		.l2_b = x->head[H_L2_B],
	};
	struct mb_cuda_clap *g = NULL;
	int rc;

	for (uint32_t s = 0; s < D->stages; s++) {
		desc.z.depths[s] = D->depths[s];
		desc.z.heads[s] = D->heads[s];
		desc.z.ff[s] = D->ff[s];
		blocks += D->depths[s];
		if (s + 1 < D->stages)
			merges[s] = (struct mb_cuda_clap_merge_host){
				.ln_g = x->merge[s][M_NG],
				.ln_b = x->merge[s][M_NB],
				.red = x->merge[s][M_RED],
			};
	}
	blk = calloc(blocks, sizeof(*blk));
	if (blk == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < blocks; i++) {
		const struct mb_nn_swin *b = &x->blk[i];

		blk[i] = (struct mb_cuda_swin_host){
			.tf =
				{
					.d = b->d,
					.heads = b->heads,
					.ff = b->ff,
					.eps = b->eps,
					.ln1_g = b->ln1_g,
					.ln1_b = b->ln1_b,
					.wq = b->wq,
					.bq = b->bq,
					.wk = b->wk,
					.bk = b->bk,
					.wv = b->wv,
					.bv = b->bv,
					.wo = b->wo,
					.bo = b->bo,
					.ln2_g = b->ln2_g,
					.ln2_b = b->ln2_b,
					.w1 = b->w1,
					.b1 = b->b1,
					.w2 = b->w2,
					.b2 = b->b2,
				},
			.bias = b->bias,
			.shift = b->shift,
		};
	}
	desc.blocks = blk;
	rc = mb_cuda_clap_create(&desc, &g, reason, reason_len);
	free(blk);
	if (rc < 0)
		return -EIO;
	net->gpu = g;
	/* the device has the expanded position biases, as it has the tensors (which net.c
	 * frees next): x->blk's pointers into both are not followed on a CUDA device */
	free(x->bias);
	x->bias = NULL;
	return 0;
}

static void
clap_gpu_unload(struct mb_net *net)
{
	struct mb_cuda_clap *g = net->gpu;

	mb_cuda_clap_destroy(&g);
	net->gpu = NULL;
}

static int
clap_gpu_worker_init(const struct mb_net *net, void **worker, char *reason, size_t reason_len)
{
	struct clap_gpu_worker *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	if (mb_cuda_clap_worker_create(net->gpu, &gw->w, reason, reason_len) < 0) {
		free(gw);
		return -EIO;
	}
	*worker = gw;
	return 0;
}

static void
clap_gpu_worker_fini(const struct mb_net *net, void *worker)
{
	struct clap_gpu_worker *gw = worker;

	(void)net;
	mb_cuda_clap_worker_destroy(&gw->w);
	free(gw->items);
	free(gw);
}

static int
clap_gpu_run(const struct mb_net *net, void *worker, struct mb_model_item *const *items, uint32_t n,
	     void *stream, char *reason, size_t reason_len)
{
	struct clap_gpu_worker *gw = worker;

	if (n > gw->cap) { /* only when a larger batch first arrives */
		struct mb_cuda_audio_item *v = realloc(gw->items, sizeof(*v) * n);

		if (v == NULL) {
			snprintf(reason, reason_len, "out of memory");
			return -ENOMEM;
		}
		gw->items = v;
		gw->cap = n;
	}
	for (uint32_t i = 0; i < n; i++)
		gw->items[i] = (struct mb_cuda_audio_item){
			.payload = items[i]->payload,
			.samples = mb_proto_media_length(items[i]->hdr),
			.pcm_s16 = items[i]->hdr->media == MB_MEDIA_PCM_S16LE,
			.out = items[i]->result,
		};
	if (mb_cuda_clap_run(net->gpu, gw->w, gw->items, n, stream, reason, reason_len) < 0)
		return -EIO;
	return 0;
}

/* The figures the run's allocation is sized by (cuda_tf_internal.h: one formula for both). */
static int
clap_gpu_bytes(const struct mb_net *net, uint64_t *worker, uint64_t *batch, uint64_t *item)
{
	struct mb_tf_mem m;

	mb_cuda_clap_mem_of(net->gpu, &m);
	*worker = m.worker;
	*batch = m.batch;
	*item = m.item;
	return 0;
}

#endif /* MB_HAVE_CUDA */

const struct mb_net_def mb_clap_net = {
	.layout = &mb_clap_layout,
	.name = "clap",
	.sizes = mb_clap_sizes,
	.init = clap_init,
	.fini = clap_fini,
	.shape = clap_shape,
	.cpu_scratch = clap_cpu_scratch,
	.cpu_run = clap_cpu_run,
#if MB_HAVE_CUDA
	.gpu_load = clap_gpu_load,
	.gpu_unload = clap_gpu_unload,
	.gpu_worker_init = clap_gpu_worker_init,
	.gpu_worker_fini = clap_gpu_worker_fini,
	.gpu_run = clap_gpu_run,
	.gpu_bytes = clap_gpu_bytes,
#endif
};

static int
clap_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	return mb_net_load(&mb_clap_net, args, state, reason, reason_len);
}

const struct mb_model_desc mb_model_clap = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "clap",
	.summary = "CLAP audio embedding (HTSAT): 48 kHz mono audio (<= 10 s) -> [1 x 512]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.devices = MB_MODELS_DEVICES,
	.base_units = 2,
	.item_units_per_second = 0.1,
	.max_batch = 16,
	.max_delay_us = 5000,
	.queue_limit = 1024,
	.default_timeout_ms = 30000,
	.check = clap_check,
	.load = clap_load,
	.worker_init = mb_net_worker_init,
	.worker_fini = mb_net_worker_fini,
	.run = mb_net_run,
	.unload = mb_net_unload,
};
