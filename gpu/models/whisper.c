/*
 * whisper.c: Whisper's front end and convolutional stem on the CPU.
 *
 * PCM 16 kHz mono, 400 samples .. 30 s. The log-mel (mel.c, 80 bins: Whisper's exactly), then
 *   conv1: conv1d 80 -> C, kernel 3, stride 1, padding 1, GELU    [frames x C]
 *   conv2: conv1d C -> C, kernel 3, stride 2, padding 1, GELU     [ceil(frames/2) x C]
 * with C = 384 (whisper-tiny's d_model), as openai-whisper's AudioEncoder starts. Output
 * F32 [ceil(frames/2) x 384] (frames = samples / 160; 1500 x 384 for 30 s).
 *
 * Weights (safetensors, openai-whisper's names): encoder.conv1.weight [384, 80, 3],
 * encoder.conv1.bias [384], encoder.conv2.weight [384, 384, 3], encoder.conv2.bias [384].
 * Placeholder weights make the output deterministic and meaningless.
 *
 * Batches: items run in chunks of up to CHUNK items and about CHUNK_FRAMES frames in all, in
 * batch order (an item that would overflow the chunk starts the next one). Each item's
 * log-mel goes to its own (padded) rows of one array, and each convolution is one im2col +
 * SGEMM over the whole chunk (nn_internal.h, mb_nn_conv1d_stack()): one packing of the
 * weights per chunk instead of per item, which pays for short clips; a 10 s clip's GEMMs
 * (M = 1000 and 500) are already as fast per row as larger ones. An item's result is
 * bit-for-bit the same whatever else is in its batch.
 *
 * Per worker: one scratch sized for one chunk (at least one 30 s clip), so a batch of any
 * size allocates only its results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu_internal.h"
#include "mb_models.h"
#include "mel_internal.h"
#include "nn_internal.h"

#define C MB_WHISPER_C
#define MELS MB_WHISPER_MELS
#define MIN_SAMPLES MB_MEL_N_FFT
#define MAX_SAMPLES (MB_WHISPER_MAX_SECONDS * MB_MEL_SAMPLE_RATE)
#define MAX_FRAMES (MAX_SAMPLES / MB_MEL_HOP)
#define CHUNK 8			/* items per GEMM at most (perf/RESULTS.md, 2026-11-23) */
#define CHUNK_FRAMES MAX_FRAMES /* frames per GEMM at most; >= MAX_FRAMES */
/* rows of a chunk, padded (mb_nn_pad()): conv1's in and out, then conv2's out */
#define ROWS1 (CHUNK_FRAMES + CHUNK * MB_NN_MAX_BLOCK)
#define ROWS2 (ROWS1 / 2 + CHUNK * MB_NN_MAX_BLOCK)
_Static_assert(CHUNK_FRAMES >= MAX_FRAMES, "the longest clip fits a chunk");

enum { W1, B1, W2, B2, N_TENSORS };

static const struct mb_weights_spec specs[N_TENSORS] = {
	[W1] = {"encoder.conv1.weight", 3, {C, MELS, 3}},
	[B1] = {"encoder.conv1.bias", 1, {C}},
	[W2] = {"encoder.conv2.weight", 3, {C, C, 3}},
	[B2] = {"encoder.conv2.bias", 1, {C}},
};

const struct mb_builtin_weights mb_whisper_weights = {"whisper", specs, N_TENSORS};

struct whisper_state {
	struct mb_mel *mel;
	float *w[N_TENSORS];
	void *gpu; /* the net on a CUDA device, or NULL */
};

struct whisper_worker {
	void *gpu; /* CUDA worker scratch (device >= 0); the rest is for the CPU */
	struct mb_mel_scratch *mel;
	float *x;   /* [ROWS1 x 80]: the chunk's log-mels */
	float *col; /* im2col, the larger of the two convolutions */
	float *h;   /* [ROWS1 x C]: conv1's output, then conv2's before bias and GELU */
};

static int
whisper_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	return mb_mel_check_audio("whisper", hdr, MIN_SAMPLES, MAX_SAMPLES, reason, reason_len);
}

static void
whisper_unload(void *state)
{
	struct whisper_state *s = state;

	if (s == NULL)
		return;
	mb_models_gpu_unload(&s->gpu);
	mb_mel_destroy(&s->mel);
	for (int i = 0; i < N_TENSORS; i++)
		free(s->w[i]);
	free(s);
}

static int
gpu_load(struct whisper_state *s, int device, char *reason, size_t reason_len)
{
	uint64_t numel[N_TENSORS];

	for (int i = 0; i < N_TENSORS; i++)
		numel[i] = mb_weights_spec_numel(&specs[i]);
	return mb_models_gpu_load(MB_GPU_WHISPER, device, s->mel, MAX_SAMPLES, s->w, numel,
				  N_TENSORS, &s->gpu, reason, reason_len);
}

static int
whisper_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct whisper_state *s;
	int rc;

	if (args->weights_path == NULL) {
		snprintf(reason, reason_len, "no weights file (models[].weights)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = mb_weights_load(args->weights_path, specs, N_TENSORS, s->w, reason, reason_len);
	if (rc == 0 && (rc = mb_mel_create(MELS, &s->mel)) < 0)
		snprintf(reason, reason_len, "out of memory for the FFT");
	if (rc == 0 && args->device >= 0)
		rc = gpu_load(s, args->device, reason, reason_len);
	if (rc < 0) {
		whisper_unload(s);
		return rc;
	}
	mb_nn_init();
	*state = s;
	return 0;
}

static void
whisper_worker_fini(void *state, void *worker)
{
	struct whisper_worker *w = worker;

	(void)state;
	if (w == NULL)
		return;
	mb_models_gpu_worker_fini(&w->gpu);
	mb_mel_scratch_destroy(&w->mel);
	free(w->x);
	free(w->col);
	free(w->h);
	free(w);
}

static int
whisper_worker_init(void *state, int device, void **worker)
{
	struct whisper_worker *w = calloc(1, sizeof(*w));
	size_t col1 = (size_t)ROWS1 * MELS * 3, col2 = (size_t)ROWS2 * C * 3;

	const struct whisper_state *s = state;
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
	w->mel = mb_mel_scratch_create(MAX_SAMPLES);
	w->x = malloc(sizeof(float) * ROWS1 * MELS);
	w->col = malloc(sizeof(float) * (col1 > col2 ? col1 : col2));
	w->h = malloc(sizeof(float) * ROWS1 * C);
	if (w->mel == NULL || w->x == NULL || w->col == NULL || w->h == NULL) {
		whisper_worker_fini(state, w);
		return -ENOMEM;
	}
	*worker = w;
	return 0;
}

static uint32_t
shape(const struct mb_model_item *it, uint16_t *rows, uint16_t *cols, uint16_t *type)
{
	uint32_t n = mb_proto_media_length(it->hdr);

	if (n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = (uint16_t)mb_nn_conv_out(n / MB_MEL_HOP, 3, 2, 1);
	*cols = C;
	*type = MB_RESULT_F32;
	return (uint32_t)*rows * C * sizeof(float);
}

/* Both convolutions over a chunk whose log-mels are in w->x: item i's rows to out[i]. */
static void
stem(const struct whisper_state *s, struct whisper_worker *w, const uint32_t *frames, uint32_t n,
     float *const *out)
{
	mb_nn_conv1d_stack(w->x, frames, n, MELS, s->w[W1], s->w[B1], C, 3, 1, 1, 1, w->col, w->h,
			   NULL);
	/* conv2's GEMM writes over its own input (h), which im2col has copied by then */
	mb_nn_conv1d_stack(w->h, frames, n, C, s->w[W2], s->w[B2], C, 3, 2, 1, 1, w->col, w->h,
			   out);
}

static int
whisper_run(void *state, struct mb_model_batch *batch)
{
	const struct whisper_state *s = state;
	struct whisper_worker *w = batch->worker;
	uint32_t i = 0;

	if (w == NULL)
		return -EINVAL;
	if (batch->device >= 0)
		return mb_models_gpu_run(s->gpu, w->gpu, batch, shape);
	while (i < batch->n_items) {
		uint32_t frames[CHUNK], n = 0, rows = 0;
		float *out[CHUNK];

		for (; i < batch->n_items && n < CHUNK; i++) {
			struct mb_model_item *it = &batch->items[i];
			uint32_t len = mb_proto_media_length(it->hdr);
			uint32_t t = len / MB_MEL_HOP, t_out = mb_nn_conv_out(t, 3, 2, 1);
			size_t bytes = (size_t)t_out * C * sizeof(float);

			if (len < MIN_SAMPLES || len > MAX_SAMPLES) { /* check() ran; defend */
				mb_model_item_fail(it, "audio length out of range");
				continue;
			}
			if (rows + mb_nn_pad(t) > ROWS1)
				break; /* it opens the next chunk (n > 0: it fits alone) */
			it->result = batch->alloc_result(batch, bytes);
			if (it->result == NULL) {
				mb_model_item_fail(it, "out of memory for the result");
				continue;
			}
			mb_mel_compute(s->mel, w->mel, it, len, w->x + (size_t)rows * MELS);
			it->result_len = (uint32_t)bytes;
			it->result_type = MB_RESULT_F32;
			it->rows = (uint16_t)t_out;
			it->cols = C;
			frames[n] = t;
			out[n++] = it->result;
			rows += mb_nn_pad(t);
		}
		if (n > 0)
			stem(s, w, frames, n, out);
	}
	return 0;
}

const struct mb_model_desc mb_model_whisper = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "whisper",
	.summary = "Whisper log-mel + conv stem: 16 kHz mono audio -> [frames/2 x 384]",
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
	.worker_init = whisper_worker_init,
	.worker_fini = whisper_worker_fini,
	.run = whisper_run,
	.unload = whisper_unload,
};
