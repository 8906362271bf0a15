/*
 * whisper.c: the Whisper audio encoder, as Hugging Face's WhisperEncoder (and
 * openai-whisper's AudioEncoder, the same network) computes it, from checkpoints as they are
 * published (WhisperForConditionalGeneration's "model.encoder.*", WhisperModel's
 * "encoder.*"; the decoder's tensors are ignored).
 *
 * One item is PCM 16 kHz mono, 400 samples .. 30 s. As WhisperFeatureExtractor does, the
 * audio is zero-padded to 30 s (480000 samples) and its log-mel taken over all of it
 * (mel.c: 3000 frames x n_mels, the max - 8 clamp over the 3000 frames); then
 *
 *   conv1   conv1d n_mels -> d, kernel 3, padding 1, GELU          [3000 x d]
 *   conv2   conv1d d -> d, kernel 3, stride 2, padding 1, GELU     [1500 x d]
 *   + embed_positions [1500 x d] (a stored tensor)
 *   layers x pre-LN block (nn.c): self_attn_layer_norm, self-attention (q, v and out with
 *           bias, k without; heads of d / heads columns, scale 1/sqrt(head_dim)), residual;
 *           final_layer_norm, fc1 d -> ffn, GELU, fc2 ffn -> d, residual
 *   layer_norm                                                     [1500 x d], F32
 *
 * LayerNorm eps 1e-5 and GELU the exact (erf) one, as the published configs say.
 *
 * Sizes come from the checkpoint: d and n_mels from conv1.weight, layers from the layers
 * present, ffn from fc1.weight, heads from config.json's encoder_attention_heads (else
 * d / 64: every published size has heads of 64); what config.json also says is checked
 * against the tensors. The presets are the published encoders plus "tiny", a small test
 * size that is not one of them. All that is whisper_layout.c's (the checkpoints' layout,
 * which tools link without this file).
 *
 * A batch: the front end and conv stem item by item, then each block once over the tokens
 * of all items stacked (one GEMM per projection for the batch; attention per item and head),
 * then the final LayerNorm straight into each item's result. All in the worker's float
 * scratch (net.c), the FFT's arrays included: no allocation per batch here.
 *
 * On a CUDA device the same steps run in cuda_whisper.cu (on the transformer module,
 * cuda_tf_internal.h), every item's log-mel by cuFFT and the rest batched the same way, the
 * GEMMs at the net's precision (models[].precision); this file hands it the sizes and tensors
 * at load and each batch's items at run. There a run allocates its batch's device memory for
 * exactly its items and frees it at its end; gpu_bytes reports those bytes (and what a worker
 * keeps) from the same formula (mb_cuda_whisper_mem()).
 *
 * The lifecycle is net.c's (net_internal.h); this file is the def, its layout
 * (mb_whisper_layout) apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "mb_build_config.h"
#include "mb_models.h"
#include "mel_internal.h"
#include "net_internal.h"
#include "nn_internal.h"
#include "whisper_internal.h"

#if MB_HAVE_CUDA
#include "cuda_tf_internal.h"
#endif

#define T_POS MB_WHISPER_POSITIONS
#define FRAMES (2 * T_POS)		  /* mel frames of 30 s */
#define MAX_SAMPLES (FRAMES * MB_MEL_HOP) /* 30 s: 480000 */
#define MIN_SAMPLES MB_MEL_N_FFT
#define LN_EPS 1e-5f

/* tensors: the stem, then N_LAYER per layer, then the final LayerNorm */
enum { CONV1_W, CONV1_B, CONV2_W, CONV2_B, POS, N_STEM };
/* one layer's, in whisper_specs() order (whisper_layout.c) */
enum {
	K_W,
	V_W,
	V_B,
	Q_W,
	Q_B,
	O_W,
	O_B,
	LN1_G,
	LN1_B,
	FC1_W,
	FC1_B,
	FC2_W,
	FC2_B,
	LN2_G,
	LN2_B,
	N_LAYER
};
#define LAYER(i, j) (N_STEM + (i)*N_LAYER + (j))
#define LNF_G(D) (N_STEM + (D)->layers * N_LAYER)
#define LNF_B(D) (LNF_G(D) + 1)

/* What a loaded whisper keeps besides its tensors. */
struct whisper_extra {
	struct mb_mel *mel;
	struct mb_nn_block blk[]; /* one per layer, pointing into net->w */
};

static int
whisper_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	return mb_mel_check_audio("whisper", hdr, MIN_SAMPLES, MAX_SAMPLES, reason, reason_len);
}

/* ---- load-time state ---- */

static void
whisper_fini(struct mb_net *net)
{
	struct whisper_extra *x = net->extra;

	if (x == NULL)
		return;
	mb_mel_destroy(&x->mel);
	free(x);
	net->extra = NULL;
}

static int
whisper_init(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	const struct mb_whisper_dims *D = net->dims;
	struct whisper_extra *x;

	(void)ck;
	x = calloc(1, sizeof(*x) + sizeof(x->blk[0]) * D->layers);
	if (x == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	net->extra = x;
	if (mb_mel_create((int)D->n_mels, &x->mel) < 0) {
		snprintf(reason, reason_len, "out of memory for the FFT");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < D->layers; i++) {
		float *const *w = net->w + LAYER(i, 0);

		x->blk[i] = (struct mb_nn_block){
			.d = D->d,
			.heads = D->heads,
			.ff = D->ffn,
			.eps = LN_EPS,
			.ln1_g = w[LN1_G],
			.ln1_b = w[LN1_B],
			.wq = w[Q_W],
			.bq = w[Q_B],
			.wk = w[K_W],
			.bk = NULL, /* k_proj has no bias */
			.wv = w[V_W],
			.bv = w[V_B],
			.wo = w[O_W],
			.bo = w[O_B],
			.ln2_g = w[LN2_G],
			.ln2_b = w[LN2_B],
			.w1 = w[FC1_W],
			.b1 = w[FC1_B],
			.w2 = w[FC2_W],
			.b2 = w[FC2_B],
		};
	}
	return 0;
}

/* ---- run ---- */

static uint32_t
whisper_shape(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows,
	      uint16_t *cols, uint16_t *type)
{
	const struct mb_whisper_dims *D = net->dims;
	uint32_t n = mb_proto_media_length(it->hdr);

	if ((it->hdr->media != MB_MEDIA_PCM_S16LE && it->hdr->media != MB_MEDIA_PCM_F32LE) ||
	    n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = T_POS;
	*cols = (uint16_t)D->d;
	*type = MB_RESULT_F32;
	return T_POS * D->d * (uint32_t)sizeof(float);
}

/* @p floats rounded up to whole 64-byte lines: every part of the scratch stays aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

/*
 * The scratch of a batch of @p n: the activations of every item [n x 1500 x d], then one
 * region used first by the stem (one item at a time) and then by the blocks.
 */
struct layout {
	size_t act;				/* n x 1500 x d */
	size_t audio, mel_scratch, mel, h, col; /* the stem's parts, from offset act */
	size_t stem, blocks;			/* the region's two uses */
};

static void
layout_of(const struct mb_net *net, uint32_t n, struct layout *L)
{
	const struct mb_whisper_dims *D = net->dims;
	const struct whisper_extra *x = net->extra;
	size_t col1 = (size_t)FRAMES * D->n_mels * 3, col2 = (size_t)T_POS * D->d * 3;

	L->act = lines((size_t)n * T_POS * D->d);
	L->audio = lines(MAX_SAMPLES);
	L->mel_scratch = lines(mb_mel_f32_scratch(MAX_SAMPLES));
	L->mel = lines((size_t)FRAMES * D->n_mels);
	L->h = lines((size_t)FRAMES * D->d);
	L->col = lines(col1 > col2 ? col1 : col2);
	L->stem = L->audio + L->mel_scratch + L->mel + L->h + L->col;
	L->blocks = D->layers ? mb_nn_block_scratch(&x->blk[0], n, T_POS) : 0;
}

static size_t
whisper_cpu_scratch(const struct mb_net *net, uint32_t n)
{
	struct layout L;

	layout_of(net, n, &L);
	return L.act + (L.stem > L.blocks ? L.stem : L.blocks);
}

/* The log-mel of one item padded to 30 s, the conv stem and the positions, into @p out. */
static void
stem(const struct mb_net *net, const struct layout *L, float *region,
     const struct mb_model_item *it, float *out)
{
	const struct mb_whisper_dims *D = net->dims;
	const struct whisper_extra *x = net->extra;
	float *const *w = net->w;
	float *audio = region, *mel_scratch = audio + L->audio;
	float *mel = mel_scratch + L->mel_scratch, *h = mel + L->mel, *col = h + L->h;
	uint32_t n = mb_proto_media_length(it->hdr);
	const size_t tokens = (size_t)T_POS * D->d;

	mb_mel_samples(it, n, audio);
	memset(audio + n, 0, sizeof(float) * (MAX_SAMPLES - n));
	mb_mel_compute_f32(x->mel, audio, MAX_SAMPLES, mel_scratch, mel);
	mb_nn_conv1d(mel, FRAMES, D->n_mels, w[CONV1_W], w[CONV1_B], D->d, 3, 1, 1, 1, col, h);
	mb_nn_conv1d(h, FRAMES, D->d, w[CONV2_W], w[CONV2_B], D->d, 3, 2, 1, 1, col, out);
	for (size_t i = 0; i < tokens; i++)
		out[i] += w[POS][i];
}

static int
whisper_cpu_run(const struct mb_net *net, float *scratch, struct mb_model_item *const *items,
		uint32_t n)
{
	const struct mb_whisper_dims *D = net->dims;
	const struct whisper_extra *x = net->extra;
	const size_t tokens = (size_t)T_POS * D->d;
	float *act = scratch, *region;
	struct layout L;

	layout_of(net, n, &L);
	region = act + L.act;
	for (uint32_t i = 0; i < n; i++)
		stem(net, &L, region, items[i], act + i * tokens);
	for (uint32_t l = 0; l < D->layers; l++)
		mb_nn_block_forward(&x->blk[l], act, n, T_POS, region);
	for (uint32_t i = 0; i < n; i++)
		mb_nn_layernorm(act + i * tokens, T_POS, D->d, net->w[LNF_G(D)], net->w[LNF_B(D)],
				LN_EPS, items[i]->result);
	return 0;
}

/* ---- on a CUDA device (cuda_whisper.cu) ---- */

#if MB_HAVE_CUDA

_Static_assert((int)MB_NET_F32 == (int)MB_TF_F32 && (int)MB_NET_F16 == (int)MB_TF_F16 &&
		       (int)MB_NET_BF16 == (int)MB_TF_BF16,
	       "one numbering of the precisions");

/* A CUDA worker: the device side's, and the batch's items as it takes them. */
struct whisper_gpu_worker {
	struct mb_cuda_whisper_worker *w;
	struct mb_cuda_audio_item *items;
	uint32_t cap;
};

static int
whisper_gpu_load(struct mb_net *net, int device, enum mb_net_precision prec, char *reason,
		 size_t reason_len)
{
	const struct mb_whisper_dims *D = net->dims;
	const struct whisper_extra *x = net->extra;
	float *const *w = net->w;
	struct mb_tf_block_host *blocks = calloc(D->layers, sizeof(*blocks));
	struct mb_cuda_whisper_desc desc = {
		.device = device,
		.prec = (enum mb_tf_prec)prec,
		.d = D->d,
		.layers = D->layers,
		.heads = D->heads,
		.ffn = D->ffn,
		.n_mels = D->n_mels,
		.conv1_w = w[CONV1_W],
		.conv1_b = w[CONV1_B],
		.conv2_w = w[CONV2_W],
		.conv2_b = w[CONV2_B],
		.pos = w[POS],
		.lnf_g = w[LNF_G(D)],
		.lnf_b = w[LNF_B(D)],
		.blocks = blocks,
		.window = x->mel->window,
		.filters = &x->mel->filters[0][0],
		.lo = x->mel->lo,
		.hi = x->mel->hi,
	};
	struct mb_cuda_whisper *g = NULL;
	int rc;

	if (blocks == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < D->layers; i++) {
		const struct mb_nn_block *b = &x->blk[i];

		blocks[i] = (struct mb_tf_block_host){
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
		};
	}
	rc = mb_cuda_whisper_create(&desc, &g, reason, reason_len);
	free(blocks);
	if (rc < 0)
		return -EIO;
	net->gpu = g;
	return 0;
}

static void
whisper_gpu_unload(struct mb_net *net)
{
	struct mb_cuda_whisper *g = net->gpu;

	mb_cuda_whisper_destroy(&g);
	net->gpu = NULL;
}

static int
whisper_gpu_worker_init(const struct mb_net *net, void **worker, char *reason, size_t reason_len)
{
	struct whisper_gpu_worker *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	if (mb_cuda_whisper_worker_create(net->gpu, &gw->w, reason, reason_len) < 0) {
		free(gw);
		return -EIO;
	}
	*worker = gw;
	return 0;
}

static void
whisper_gpu_worker_fini(const struct mb_net *net, void *worker)
{
	struct whisper_gpu_worker *gw = worker;

	(void)net;
	mb_cuda_whisper_worker_destroy(&gw->w);
	free(gw->items);
	free(gw);
}

static int
whisper_gpu_run(const struct mb_net *net, void *worker, struct mb_model_item *const *items,
		uint32_t n, void *stream, char *reason, size_t reason_len)
{
	struct whisper_gpu_worker *gw = worker;

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
	if (mb_cuda_whisper_run(net->gpu, gw->w, gw->items, n, stream, reason, reason_len) < 0)
		return -EIO;
	return 0;
}

/* The figures the run's allocation is sized by (cuda_tf_internal.h: one formula for both). */
static int
whisper_gpu_bytes(const struct mb_net *net, uint64_t *worker, uint64_t *batch, uint64_t *item)
{
	struct mb_tf_mem m;

	mb_cuda_whisper_mem_of(net->gpu, &m);
	*worker = m.worker;
	*batch = m.batch;
	*item = m.item;
	return 0;
}

#endif /* MB_HAVE_CUDA */

const struct mb_net_def mb_whisper_net = {
	.layout = &mb_whisper_layout,
	.name = "whisper",
	.sizes = mb_whisper_sizes,
	.init = whisper_init,
	.fini = whisper_fini,
	.shape = whisper_shape,
	.cpu_scratch = whisper_cpu_scratch,
	.cpu_run = whisper_cpu_run,
#if MB_HAVE_CUDA
	.gpu_load = whisper_gpu_load,
	.gpu_unload = whisper_gpu_unload,
	.gpu_worker_init = whisper_gpu_worker_init,
	.gpu_worker_fini = whisper_gpu_worker_fini,
	.gpu_run = whisper_gpu_run,
	.gpu_bytes = whisper_gpu_bytes,
#endif
};

static int
whisper_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	return mb_net_load(&mb_whisper_net, args, state, reason, reason_len);
}

const struct mb_model_desc mb_model_whisper = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "whisper",
	.summary = "Whisper audio encoder: 16 kHz mono audio (<= 30 s) -> [1500 x d]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.devices = MB_MODELS_DEVICES,
	.base_units = 5,
	.item_units_per_second = 0.1,
	.max_batch = 8,
	.max_delay_us = 5000,
	.queue_limit = 512,
	.default_timeout_ms = 60000,
	.check = whisper_check,
	.load = whisper_load,
	.worker_init = mb_net_worker_init,
	.worker_fini = mb_net_worker_fini,
	.run = mb_net_run,
	.unload = mb_net_unload,
};
