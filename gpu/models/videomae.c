/*
 * videomae.c: VideoMAE video classification, as Hugging Face's
 * VideoMAEForVideoClassification computes it, from a published checkpoint (e.g.
 * MCG-NJU/videomae-base-finetuned-kinetics) loaded as it is.
 *
 * Input: RGB24, exactly 16 frames of 224 x 224 ([frame][row][column][r, g, b] bytes).
 *   normalise   x = (v * rescale - mean[c]) / std[c] (a table of 3 x 256 values): the
 *               checkpoint's preprocessor_config.json (rescale_factor, image_mean,
 *               image_std, do_rescale, do_normalize, as Hugging Face's
 *               VideoMAEImageProcessor applies them), or without one ImageNet's mean
 *               (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) after / 255
 *               (videomae_layout.c reads them);
 *   embed       conv3d 3 -> d, kernel = stride = 2 x 16 x 16: 8 x 14 x 14 = 1568 tokens in
 *               (t, y, x) order, as im2col + one SGEMM over every clip of the batch; plus
 *               the fixed sinusoid table (HF get_sinusoid_encoding_table(1568, d): not in
 *               the checkpoint, built here in float64 and kept as F32);
 *   encoder     `layers` pre-LN blocks (mb_nn_block_forward, all clips at once): attention
 *               with q and v biases and none on k, exact GELU MLP; LayerNorm eps from
 *               config.json's layer_norm_eps (default 1e-12);
 *   head        mean over the 1568 tokens, fc_norm (LayerNorm, eps 1e-5: HF builds it as
 *               nn.LayerNorm(hidden_size), torch's default eps, not layer_norm_eps), then
 *               the classifier d -> classes;
 *   result      softmax, top-k (k = 5, or classes if fewer), ties by the lower class id:
 *               pairs (u32 class, f32 score), rows k, cols 2 (mb_videomae_topk()).
 *
 * Sizes: d from the patch projection's shape, layers by counting, ffn from
 * intermediate.dense, classes from the classifier, heads from config.json's
 * num_attention_heads, else the published head count for d (small 384/6, base 768/12,
 * large 1024/16, huge 1280/16), else d / 64. config.json's hidden_size, num_hidden_layers
 * and intermediate_size must agree with the tensors; num_frames, image_size, patch_size,
 * tubelet_size and num_channels other than the published fine-tuned checkpoints' are
 * refused for now, as is a hidden_act other than "gelu". All that, and the tensors' names,
 * is videomae_layout.c's (the checkpoints' layout, which tools link without this file).
 *
 * Labels: config.json's id2label, kept at load (mb_videomae_label()).
 *
 * On a CUDA device the same steps run in cuda_videomae.cu (on the transformer module,
 * cuda_tf_internal.h), the GEMMs at the net's precision (models[].precision); the logits come
 * back to the host, where the result is made exactly as on the CPU (top-k, or the logits of a
 * window part). A run there allocates its batch's device memory for exactly its clips and
 * frees it at its end; gpu_bytes reports those bytes from the same formula
 * (mb_cuda_videomae_mem()).
 *
 * Owns: what init() keeps in net->extra (normalisation table, position table, labels).
 * Threads: as model.h; a loaded net is read-only.
 */
#include "videomae_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "mb_build_config.h"
#include "mb_models.h"
#include "mb_request.h"
#include "nn_internal.h"

#if MB_HAVE_CUDA
#include "cuda_tf_internal.h"
#endif

#define F MB_VIDEOMAE_IN_FRAMES
#define S MB_VIDEOMAE_IN_SIZE
#define TT MB_VIDEOMAE_IN_TUBELET
#define P MB_VIDEOMAE_IN_PATCH
#define TOKENS MB_VIDEOMAE_IN_TOKENS
#define GRID (S / P)
#define PDIM (3 * TT * P * P) /* values of one tubelet: 1536 */

/* HF's fc_norm is nn.LayerNorm(hidden_size): torch's default eps */
#define FC_NORM_EPS 1e-5f

/* tensors of one encoder layer, in specs order (videomae_layout.c) */
enum {
	L_LN1_W,
	L_LN1_B,
	L_Q_W,
	L_Q_B,
	L_K_W,
	L_V_W,
	L_V_B,
	L_O_W,
	L_O_B,
	L_LN2_W,
	L_LN2_B,
	L_FC1_W,
	L_FC1_B,
	L_FC2_W,
	L_FC2_B,
	L_N,
};
_Static_assert(L_N == MB_VIDEOMAE_LAYER_TENSORS, "one encoder layer's tensors");

/* w[] index of the embedding, of layer i's tensor j, and of the head's */
#define W_EMB_W 0
#define W_EMB_B 1
#define W_LAYER(i, j) (2 + (i)*L_N + (j))
#define W_HEAD(layers, j) (2 + (layers)*L_N + (j)) /* fc_norm w, b; classifier w, b */

/* what init() keeps */
struct videomae_extra {
	float lut[3][256]; /* normalised value of each byte per channel */
	float *pos;	   /* [TOKENS x d] */
	char **labels;	   /* [classes], entries NULL where config.json has none */
	uint32_t classes;
};

/* ---- what a loaded net keeps ---- */

static void
fini(struct mb_net *net)
{
	struct videomae_extra *x = net->extra;

	if (x == NULL)
		return;
	if (x->labels != NULL)
		for (uint32_t i = 0; i < x->classes; i++)
			free(x->labels[i]);
	free(x->labels);
	free(x->pos);
	free(x);
	net->extra = NULL;
}

static int
init(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	const struct mb_videomae_dims *dm = net->dims;
	struct videomae_extra *x = calloc(1, sizeof(*x));
	size_t pos_bytes = ((size_t)TOKENS * dm->d * sizeof(float) + 63) & ~(size_t)63;

	if (x == NULL)
		goto oom;
	net->extra = x;
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++)
			x->lut[c][v] =
				(float)(((double)v * dm->rescale - dm->mean[c]) / dm->std[c]);
	/* HF get_sinusoid_encoding_table(1568, d): pos / 10000^(2 (j / 2) / d), sin on even j,
	 * cos on odd j, in float64, then F32 */
	x->pos = aligned_alloc(64, pos_bytes);
	if (x->pos == NULL)
		goto oom;
	for (uint32_t p = 0; p < TOKENS; p++)
		for (uint32_t j = 0; j < dm->d; j++) {
			double a = (double)p / pow(10000.0, 2.0 * (double)(j / 2) / (double)dm->d);

			x->pos[(size_t)p * dm->d + j] = (float)(j % 2 == 0 ? sin(a) : cos(a));
		}
	x->classes = dm->classes;
	if (mb_ckpt_has_config(ck)) {
		x->labels = calloc(dm->classes, sizeof(*x->labels));
		if (x->labels == NULL)
			goto oom;
		for (uint32_t i = 0; i < dm->classes; i++) {
			const char *l = mb_ckpt_label(ck, i);

			if (l != NULL && (x->labels[i] = strdup(l)) == NULL)
				goto oom;
		}
	}
	return 0;
oom:
	snprintf(reason, reason_len, "out of memory for videomae's tables");
	return -ENOMEM;
}

const struct mb_videomae_dims *
mb_videomae_dims_of(const struct mb_net *net)
{
	return net->dims;
}

const char *
mb_videomae_label(const struct mb_net *net, uint32_t id)
{
	const struct videomae_extra *x = net->extra;

	if (x == NULL || x->labels == NULL || id >= x->classes)
		return NULL;
	return x->labels[id];
}

/* ---- forward ---- */

uint32_t
mb_videomae_topk_k(uint32_t classes)
{
	return classes < MB_VIDEOMAE_TOPK_MAX ? classes : MB_VIDEOMAE_TOPK_MAX;
}

static inline float
key_of(float v)
{
	return isnan(v) ? -INFINITY : v;
}

/* whether class a ranks above class b: higher logit, then lower id */
static inline int
above(const float *l, uint32_t a, uint32_t b)
{
	float x = key_of(l[a]), y = key_of(l[b]);

	return x > y || (x == y && a < b);
}

void
mb_videomae_topk(const float *logits, uint32_t classes, void *out)
{
	uint32_t k = mb_videomae_topk_k(classes), prev = 0;
	float max = -INFINITY;
	double sum = 0.0;
	uint8_t *o = out;

	for (uint32_t c = 0; c < classes; c++)
		max = fmaxf(max, key_of(logits[c]));
	if (isfinite(max))
		for (uint32_t c = 0; c < classes; c++)
			sum += exp((double)key_of(logits[c]) - (double)max);
	for (uint32_t r = 0; r < k; r++) {
		uint32_t best = UINT32_MAX;
		float score = 0.0f;

		/* the best class ranked below the previous pick */
		for (uint32_t c = 0; c < classes; c++)
			if ((r == 0 || above(logits, prev, c)) &&
			    (best == UINT32_MAX || above(logits, c, best)))
				best = c;
		prev = best;
		if (sum > 0.0)
			score = (float)(exp((double)key_of(logits[best]) - (double)max) / sum);
		memcpy(o + 8 * r, &best, 4);
		memcpy(o + 8 * r + 4, &score, 4);
	}
}

/* floats rounded up to whole cache lines, so every part of the scratch stays aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

static void
block_of(const struct mb_net *net, uint32_t i, struct mb_nn_block *b)
{
	const struct mb_videomae_dims *dm = net->dims;
	float *const *w = net->w + W_LAYER(i, 0);

	*b = (struct mb_nn_block){
		.d = dm->d,
		.heads = dm->heads,
		.ff = dm->ffn,
		.eps = (float)dm->eps,
		.ln1_g = w[L_LN1_W],
		.ln1_b = w[L_LN1_B],
		.wq = w[L_Q_W],
		.bq = w[L_Q_B],
		.wk = w[L_K_W],
		.bk = NULL,
		.wv = w[L_V_W],
		.bv = w[L_V_B],
		.wo = w[L_O_W],
		.bo = w[L_O_B],
		.ln2_g = w[L_LN2_W],
		.ln2_b = w[L_LN2_B],
		.w1 = w[L_FC1_W],
		.b1 = w[L_FC1_B],
		.w2 = w[L_FC2_W],
		.b2 = w[L_FC2_B],
	};
}

size_t
mb_videomae_scratch(const struct mb_net *net, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct mb_nn_block b = {.d = dm->d, .heads = dm->heads, .ff = dm->ffn};
	size_t rows = (size_t)n * TOKENS, col = rows * PDIM, blk;

	blk = mb_nn_block_scratch(&b, n, TOKENS);
	/* tokens, pooled, then the im2col columns or the blocks' scratch (one after the other) */
	return lines(rows * dm->d) + lines((size_t)n * dm->d) + lines(col > blk ? col : blk);
}

/* col[token][((c * 2 + dt) * 16 + dy) * 16 + dx]: the conv3d weight's [3][2][16][16] order */
static void
tubelets(const struct videomae_extra *x, const uint8_t *rgb, float *col)
{
	for (int t = 0; t < F / TT; t++)
		for (int gy = 0; gy < GRID; gy++)
			for (int gx = 0; gx < GRID; gx++) {
				float *row = col + (size_t)((t * GRID + gy) * GRID + gx) * PDIM;

				for (int dt = 0; dt < TT; dt++)
					for (int dy = 0; dy < P; dy++) {
						const uint8_t *px =
							rgb + (((size_t)(t * TT + dt) * S +
								(size_t)(gy * P + dy)) *
								       S +
							       (size_t)gx * P) *
								      3;

						for (int dx = 0; dx < P; dx++)
							for (int c = 0; c < 3; c++)
								row[((c * TT + dt) * P + dy) * P +
								    dx] = x->lut[c][px[dx * 3 + c]];
					}
			}
}

void
mb_videomae_logits(const struct mb_net *net, float *scratch, const uint8_t *const *clips,
		   uint32_t n, float *logits)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct videomae_extra *x = net->extra;
	const uint32_t d = dm->d, rows = n * TOKENS;
	float *tok = scratch;				     /* [rows x d] */
	float *pooled = tok + lines((size_t)rows * d);	     /* [n x d] */
	float *work = pooled + lines((size_t)n * d);	     /* im2col, then blocks' */
	float *const *head = net->w + W_HEAD(dm->layers, 0); /* fc_norm w, b; cls w, b */

	/* embedding: every clip's tubelets, one GEMM, plus the position table */
	for (uint32_t i = 0; i < n; i++)
		tubelets(x, clips[i], work + (size_t)i * TOKENS * PDIM);
	mb_nn_linear(work, rows, PDIM, net->w[W_EMB_W], net->w[W_EMB_B], d, tok);
	for (uint32_t i = 0; i < n; i++) {
		float *t = tok + (size_t)i * TOKENS * d;

		for (size_t j = 0; j < (size_t)TOKENS * d; j++)
			t[j] += x->pos[j];
	}

	/* encoder: every clip at once */
	for (uint32_t l = 0; l < dm->layers; l++) {
		struct mb_nn_block b;

		block_of(net, l, &b);
		mb_nn_block_forward(&b, tok, n, TOKENS, work);
	}

	/* head: mean over the tokens, fc_norm, classifier */
	for (uint32_t i = 0; i < n; i++) {
		const float *t = tok + (size_t)i * TOKENS * d;
		double *acc = (double *)work; /* d doubles: the blocks are done with work */

		for (uint32_t c = 0; c < d; c++)
			acc[c] = 0.0;
		for (uint32_t r = 0; r < TOKENS; r++)
			for (uint32_t c = 0; c < d; c++)
				acc[c] += t[(size_t)r * d + c];
		for (uint32_t c = 0; c < d; c++)
			pooled[(size_t)i * d + c] = (float)(acc[c] / TOKENS);
	}
	mb_nn_layernorm(pooled, n, d, head[0], head[1], FC_NORM_EPS, pooled);
	mb_nn_linear(pooled, n, d, head[2], head[3], dm->classes, logits);
}

/* ---- the lifecycle's hooks ---- */

static uint32_t
shape(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows, uint16_t *cols,
      uint16_t *type)
{
	const struct mb_videomae_dims *dm = net->dims;
	uint32_t k = mb_videomae_topk_k(dm->classes);

	if (it->hdr->frames != F || it->hdr->height != S || it->hdr->width != S ||
	    it->payload_len != MB_VIDEOMAE_CLIP_BYTES)
		return 0;
	if (it->hdr->reserved & MB_HDR_WINDOW_PART) {
		/* one clip of several: its logits, for the join's mean (multi-clip testing) */
		*rows = 1;
		*cols = (uint16_t)dm->classes;
		*type = MB_RESULT_F32;
		return dm->classes * (uint32_t)sizeof(float);
	}
	*rows = (uint16_t)k;
	*cols = 2;
	*type = MB_RESULT_TOPK;
	return 8 * k;
}

static size_t
cpu_scratch(const struct mb_net *net, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;

	/* the clips' pointers live in the scratch too: 2 floats per pointer are 8 bytes */
	return mb_videomae_scratch(net, n) + lines((size_t)n * dm->classes) + lines((size_t)n * 2);
}

/* Each item's result from the batch's @p logits [n x classes] (both devices). */
static void
results(const struct mb_net *net, const float *logits, struct mb_model_item *const *items,
	uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;

	for (uint32_t i = 0; i < n; i++)
		if (items[i]->hdr->reserved & MB_HDR_WINDOW_PART)
			memcpy(items[i]->result, logits + (size_t)i * dm->classes,
			       (size_t)dm->classes * sizeof(float));
		else
			mb_videomae_topk(logits + (size_t)i * dm->classes, dm->classes,
					 items[i]->result);
}

static int
cpu_run(const struct mb_net *net, float *scratch, struct mb_model_item *const *items, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;
	float *logits = scratch + mb_videomae_scratch(net, n);
	const uint8_t **clips = (const uint8_t **)(logits + lines((size_t)n * dm->classes));

	_Static_assert(sizeof(void *) <= 2 * sizeof(float), "a pointer in two floats");
	for (uint32_t i = 0; i < n; i++)
		clips[i] = items[i]->payload;
	mb_videomae_logits(net, scratch, clips, n, logits);
	results(net, logits, items, n);
	return 0;
}

/* ---- on a CUDA device (cuda_videomae.cu) ---- */

#if MB_HAVE_CUDA

_Static_assert((int)MB_NET_F32 == (int)MB_TF_F32 && (int)MB_NET_F16 == (int)MB_TF_F16 &&
		       (int)MB_NET_BF16 == (int)MB_TF_BF16,
	       "one numbering of the precisions");

/* A CUDA worker: the device side's, and the batch's clips as it takes them. */
struct gpu_worker {
	struct mb_cuda_videomae_worker *w;
	const uint8_t **clips;
	uint32_t cap;
};

static int
gpu_load(struct mb_net *net, int device, enum mb_net_precision prec, char *reason,
	 size_t reason_len)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct videomae_extra *x = net->extra;
	float *const *head = net->w + W_HEAD(dm->layers, 0);
	struct mb_tf_block_host *blocks = calloc(dm->layers, sizeof(*blocks));
	struct mb_cuda_videomae_desc desc = {
		.device = device,
		.prec = (enum mb_tf_prec)prec,
		.d = dm->d,
		.layers = dm->layers,
		.heads = dm->heads,
		.ffn = dm->ffn,
		.classes = dm->classes,
		.emb_w = net->w[W_EMB_W],
		.emb_b = net->w[W_EMB_B],
		.pos = x->pos,
		.lut = &x->lut[0][0],
		.fcn_g = head[0],
		.fcn_b = head[1],
		.cls_w = head[2],
		.cls_b = head[3],
		.blocks = blocks,
	};
	struct mb_cuda_videomae *g = NULL;
	int rc;

	if (blocks == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < dm->layers; i++) {
		struct mb_nn_block b;

		block_of(net, i, &b);
		blocks[i] = (struct mb_tf_block_host){
			.d = b.d,
			.heads = b.heads,
			.ff = b.ff,
			.eps = b.eps,
			.ln1_g = b.ln1_g,
			.ln1_b = b.ln1_b,
			.wq = b.wq,
			.bq = b.bq,
			.wk = b.wk,
			.bk = b.bk,
			.wv = b.wv,
			.bv = b.bv,
			.wo = b.wo,
			.bo = b.bo,
			.ln2_g = b.ln2_g,
			.ln2_b = b.ln2_b,
			.w1 = b.w1,
			.b1 = b.b1,
			.w2 = b.w2,
			.b2 = b.b2,
		};
	}
	rc = mb_cuda_videomae_create(&desc, &g, reason, reason_len);
	free(blocks);
	if (rc < 0)
		return -EIO;
	net->gpu = g;
	return 0;
}

static void
gpu_unload(struct mb_net *net)
{
	struct mb_cuda_videomae *g = net->gpu;

	mb_cuda_videomae_destroy(&g);
	net->gpu = NULL;
}

static int
gpu_worker_init(const struct mb_net *net, void **worker, char *reason, size_t reason_len)
{
	struct gpu_worker *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	if (mb_cuda_videomae_worker_create(net->gpu, &gw->w, reason, reason_len) < 0) {
		free(gw);
		return -EIO;
	}
	*worker = gw;
	return 0;
}

static void
gpu_worker_fini(const struct mb_net *net, void *worker)
{
	struct gpu_worker *gw = worker;

	(void)net;
	mb_cuda_videomae_worker_destroy(&gw->w);
	free(gw->clips);
	free(gw);
}

static int
gpu_run(const struct mb_net *net, void *worker, struct mb_model_item *const *items, uint32_t n,
	void *stream, char *reason, size_t reason_len)
{
	struct gpu_worker *gw = worker;
	const float *logits = NULL;

	if (n > gw->cap) { /* only when a larger batch first arrives */
		const uint8_t **v = realloc(gw->clips, sizeof(*v) * n);

		if (v == NULL) {
			snprintf(reason, reason_len, "out of memory");
			return -ENOMEM;
		}
		gw->clips = v;
		gw->cap = n;
	}
	for (uint32_t i = 0; i < n; i++)
		gw->clips[i] = items[i]->payload;
	if (mb_cuda_videomae_run(net->gpu, gw->w, gw->clips, n, stream, &logits, reason,
				 reason_len) < 0)
		return -EIO;
	results(net, logits, items, n);
	return 0;
}

/* The figures the run's allocation is sized by (cuda_tf_internal.h: one formula for both). */
static int
gpu_bytes(const struct mb_net *net, uint64_t *worker, uint64_t *batch, uint64_t *item)
{
	struct mb_tf_mem m;

	mb_cuda_videomae_mem_of(net->gpu, &m);
	*worker = m.worker;
	*batch = m.batch;
	*item = m.item;
	return 0;
}

#endif /* MB_HAVE_CUDA */

const struct mb_net_def mb_videomae_net = {
	.layout = &mb_videomae_layout,
	.name = "videomae",
	.sizes = mb_videomae_sizes,
	.init = init,
	.fini = fini,
	.shape = shape,
	.cpu_scratch = cpu_scratch,
	.cpu_run = cpu_run,
#if MB_HAVE_CUDA
	.gpu_load = gpu_load,
	.gpu_unload = gpu_unload,
	.gpu_worker_init = gpu_worker_init,
	.gpu_worker_fini = gpu_worker_fini,
	.gpu_run = gpu_run,
	.gpu_bytes = gpu_bytes,
#endif
};

/* ---- the model.h descriptor ---- */

static int
videomae_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	if (hdr->frames != F || hdr->height != S || hdr->width != S) {
		snprintf(reason, reason_len,
			 "frames/height/width: %u x %u x %u, but videomae takes exactly %d frames "
			 "of %dx%d RGB24 (frames=%d, height=%d, width=%d)",
			 hdr->frames, hdr->height, hdr->width, F, S, S, F, S, S);
		return -1;
	}
	return 0;
}

static int
videomae_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	return mb_net_load(&mb_videomae_net, args, state, reason, reason_len);
}

const struct mb_model_desc mb_model_videomae = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "videomae",
	.summary = "VideoMAE video classification: 16 RGB24 frames of 224x224 -> top-5 (class, "
		   "score)",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_RGB24),
	.devices = MB_MODELS_DEVICES,
	.base_units = 5,
	.item_units_per_second = 1.0, /* one 16-frame clip counts as one second: 1 unit */
	.max_batch = 4,
	.max_delay_us = 5000,
	.queue_limit = 256,
	.default_timeout_ms = 60000,
	.check = videomae_check,
	.load = videomae_load,
	.worker_init = mb_net_worker_init,
	.worker_fini = mb_net_worker_fini,
	.run = mb_net_run,
	.unload = mb_net_unload,
};
