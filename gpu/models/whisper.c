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
 * Per worker: one scratch sized for 30 s, so a batch allocates only its results.
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
	float *x;   /* [MAX_FRAMES x 80] */
	float *col; /* im2col, the larger of the two convolutions */
	float *h;   /* [MAX_FRAMES x C] */
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
	size_t col1 = (size_t)MAX_FRAMES * MELS * 3, col2 = (size_t)(MAX_FRAMES / 2 + 1) * C * 3;

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
	w->x = malloc(sizeof(float) * MAX_FRAMES * MELS);
	w->col = malloc(sizeof(float) * (col1 > col2 ? col1 : col2));
	w->h = malloc(sizeof(float) * MAX_FRAMES * C);
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

static int
whisper_run(void *state, struct mb_model_batch *batch)
{
	const struct whisper_state *s = state;
	struct whisper_worker *w = batch->worker;

	if (w == NULL)
		return -EINVAL;
	if (batch->device >= 0)
		return mb_models_gpu_run(s->gpu, w->gpu, batch, shape);
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t n = mb_proto_media_length(it->hdr);
		uint32_t frames = n / MB_MEL_HOP, out = mb_nn_conv_out(frames, 3, 2, 1);
		size_t bytes = (size_t)out * C * sizeof(float);

		if (n < MIN_SAMPLES || n > MAX_SAMPLES) { /* check() ran; defend anyway */
			mb_model_item_fail(it, "audio length out of range");
			continue;
		}
		it->result = batch->alloc_result(batch, bytes);
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		mb_mel_compute(s->mel, w->mel, it, n, w->x);
		mb_nn_conv1d(w->x, frames, MELS, s->w[W1], s->w[B1], C, 3, 1, 1, 1, w->col, w->h);
		mb_nn_conv1d(w->h, frames, C, s->w[W2], s->w[B2], C, 3, 2, 1, 1, w->col,
			     it->result);
		it->result_len = (uint32_t)bytes;
		it->result_type = MB_RESULT_F32;
		it->rows = (uint16_t)out;
		it->cols = C;
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
