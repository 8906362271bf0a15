/*
 * videomae.c: a VideoMAE-shaped video classifier on the CPU.
 *
 * RGB24, exactly 16 frames of 224 x 224 ([frame][row][column][r, g, b] bytes):
 *   normalise: x = (v / 255 - mean[c]) / std[c], ImageNet mean (0.485, 0.456, 0.406) and std
 *     (0.229, 0.224, 0.225), as VideoMAE's preprocessing does;
 *   tubelet embedding: conv3d 3 -> 768, kernel = stride = 2 x 16 x 16: 8 x 14 x 14 = 1568
 *     tubelets of 1536 values each (im2col), one SGEMM [1568 x 1536] x [1536 x 768] + bias;
 *   mean over the 1568 tubelets -> [768]; linear 768 -> 400 (Kinetics-400's classes);
 *   softmax; the top 5 (ties: lower class first).
 * Output: top-5 pairs (u32 class, f32 score), rows 5, cols 2.
 *
 * Weights (Hugging Face VideoMAE's names for these two layers):
 *   videomae.embeddings.patch_embeddings.projection.{weight [768, 3, 2, 16, 16], bias [768]}
 *   classifier.{weight [400, 768], bias [400]}
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "mb_models.h"
#include "nn_internal.h"

#define F MB_VIDEOMAE_FRAMES
#define S MB_VIDEOMAE_SIZE
#define TT MB_VIDEOMAE_TUBELET_T
#define P MB_VIDEOMAE_PATCH
#define DIM MB_VIDEOMAE_DIM
#define CLASSES MB_VIDEOMAE_CLASSES
#define TOPK MB_VIDEOMAE_TOPK
#define TOKENS MB_VIDEOMAE_TOKENS
#define PDIM MB_VIDEOMAE_PATCH_DIM
#define GRID (S / P)

enum { WE, BE, WH, BH, N_TENSORS };

static const struct mb_weights_spec specs[N_TENSORS] = {
	[WE] = {"videomae.embeddings.patch_embeddings.projection.weight", 5, {DIM, 3, TT, P, P}},
	[BE] = {"videomae.embeddings.patch_embeddings.projection.bias", 1, {DIM}},
	[WH] = {"classifier.weight", 2, {CLASSES, DIM}},
	[BH] = {"classifier.bias", 1, {CLASSES}},
};

const struct mb_builtin_weights mb_videomae_weights = {"videomae", specs, N_TENSORS};

static const float g_mean[3] = {0.485f, 0.456f, 0.406f};
static const float g_std[3] = {0.229f, 0.224f, 0.225f};

struct videomae_state {
	float *w[N_TENSORS];
	void *gpu;	   /* the net on a CUDA device, or NULL */
	float lut[3][256]; /* normalised value of each byte per channel */
};

struct videomae_worker {
	void *gpu;     /* CUDA worker scratch (device >= 0); the rest is for the CPU */
	float *col;    /* [TOKENS x PDIM] */
	float *tokens; /* [TOKENS x DIM] */
	float pooled[DIM];
	float logits[CLASSES];
};

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

static void
videomae_unload(void *state)
{
	struct videomae_state *s = state;

	if (s == NULL)
		return;
	mb_models_gpu_unload(&s->gpu);
	for (int i = 0; i < N_TENSORS; i++)
		free(s->w[i]);
	free(s);
}

static int
videomae_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct videomae_state *s;
	int rc;

	if (args->weights_path == NULL) {
		snprintf(reason, reason_len, "no weights file (models[].weights)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = mb_weights_load(args->weights_path, specs, N_TENSORS, s->w, reason, reason_len);
	if (rc == 0 && args->device >= 0) {
		uint64_t numel[N_TENSORS];

		for (int i = 0; i < N_TENSORS; i++)
			numel[i] = mb_weights_spec_numel(&specs[i]);
		rc = mb_models_gpu_load(MB_GPU_VIDEOMAE, args->device, NULL, 0, s->w, numel,
					N_TENSORS, &s->gpu, reason, reason_len);
	}
	if (rc < 0) {
		videomae_unload(s);
		return rc;
	}
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++)
			s->lut[c][v] = ((float)v / 255.0f - g_mean[c]) / g_std[c];
	mb_nn_init();
	*state = s;
	return 0;
}

static void
videomae_worker_fini(void *state, void *worker)
{
	struct videomae_worker *w = worker;

	(void)state;
	if (w == NULL)
		return;
	mb_models_gpu_worker_fini(&w->gpu);
	free(w->col);
	free(w->tokens);
	free(w);
}

static int
videomae_worker_init(void *state, int device, void **worker)
{
	struct videomae_worker *w = calloc(1, sizeof(*w));

	const struct videomae_state *s = state;
	int rc;

	if (w == NULL)
		return -ENOMEM;
	if (device >= 0) {
		if ((rc = mb_models_gpu_worker_init(s->gpu, &w->gpu)) < 0) {
			free(w);
			return rc;
		}
		*worker = w;
		return 0;
	}
	w->col = malloc(sizeof(float) * TOKENS * PDIM);
	w->tokens = malloc(sizeof(float) * TOKENS * DIM);
	if (w->col == NULL || w->tokens == NULL) {
		videomae_worker_fini(state, w);
		return -ENOMEM;
	}
	*worker = w;
	return 0;
}

/* col[token][((c * 2 + dt) * 16 + dy) * 16 + dx]: the conv3d weight's [3][2][16][16] order */
static void
tubelets(const struct videomae_state *s, const uint8_t *rgb, float *col)
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
								    dx] = s->lut[c][px[dx * 3 + c]];
					}
			}
}

static void
classify(const struct videomae_state *s, struct videomae_worker *w, const uint8_t *rgb,
	 uint8_t *out)
{
	double sum = 0.0;
	float max = -INFINITY;
	bool taken[CLASSES] = {false};

	tubelets(s, rgb, w->col);
	mb_nn_linear(w->col, TOKENS, PDIM, s->w[WE], s->w[BE], DIM, w->tokens);
	for (int c = 0; c < DIM; c++) {
		double acc = 0.0;

		for (int t = 0; t < TOKENS; t++)
			acc += w->tokens[(size_t)t * DIM + c];
		w->pooled[c] = (float)(acc / TOKENS);
	}
	mb_nn_linear(w->pooled, 1, DIM, s->w[WH], s->w[BH], CLASSES, w->logits);
	for (int k = 0; k < CLASSES; k++)
		max = fmaxf(max, w->logits[k]);
	for (int k = 0; k < CLASSES; k++)
		sum += exp((double)(w->logits[k] - max));
	for (int r = 0; r < TOPK; r++) {
		int best = -1;
		uint32_t cls;
		float score;

		for (int k = 0; k < CLASSES; k++)
			if (!taken[k] && (best < 0 || w->logits[k] > w->logits[best]))
				best = k;
		taken[best] = true;
		cls = (uint32_t)best;
		score = (float)(exp((double)(w->logits[best] - max)) / sum);
		memcpy(out + 8 * r, &cls, 4);
		memcpy(out + 8 * r + 4, &score, 4);
	}
}

static uint32_t
shape(const struct mb_model_item *it, uint16_t *rows, uint16_t *cols, uint16_t *type)
{
	if (it->hdr->frames != F || it->hdr->height != S || it->hdr->width != S ||
	    it->payload_len != (uint32_t)F * S * S * 3)
		return 0;
	*rows = TOPK;
	*cols = 2;
	*type = MB_RESULT_TOPK;
	return TOPK * 8;
}

static int
videomae_run(void *state, struct mb_model_batch *batch)
{
	const struct videomae_state *s = state;
	struct videomae_worker *w = batch->worker;

	if (w == NULL)
		return -EINVAL;
	if (batch->device >= 0)
		return mb_models_gpu_run(s->gpu, w->gpu, batch, shape);
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];

		if (it->hdr->frames != F || it->hdr->height != S || it->hdr->width != S ||
		    it->payload_len != (uint32_t)F * S * S * 3) {
			mb_model_item_fail(it, "not 16 frames of 224x224 RGB24");
			continue;
		}
		it->result = batch->alloc_result(batch, TOPK * 8);
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		classify(s, w, it->payload, it->result);
		it->result_len = TOPK * 8;
		it->result_type = MB_RESULT_TOPK;
		it->rows = TOPK;
		it->cols = 2;
	}
	return 0;
}

const struct mb_model_desc mb_model_videomae = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "videomae",
	.summary = "VideoMAE-shaped classifier: 16 x 224x224 RGB24 -> top-5 of 400 classes",
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
	.worker_init = videomae_worker_init,
	.worker_fini = videomae_worker_fini,
	.run = videomae_run,
	.unload = videomae_unload,
};
