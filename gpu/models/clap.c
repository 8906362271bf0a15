/*
 * clap.c: a CLAP-style audio embedding on the CPU.
 *
 * PCM 16 kHz mono, 400 samples .. 10 s:
 *   log-mel, 64 bins: Whisper's front end (mel.c: n_fft 400, hop 160, periodic Hann, Slaney
 *     mel 0-8 kHz, log10, clamp to max-8, (x+4)/4) with 64 filters instead of 80;
 *   conv1: conv1d  64 -> 128, k3 s1 p1, GELU
 *   conv2: conv1d 128 -> 256, k3 s2 p1, GELU
 *   conv3: conv1d 256 -> 256, k3 s2 p1, GELU
 *   mean over time -> [256]; linear 256 -> 512; L2-normalise (x / max(|x|, 1e-12)).
 * Output F32 [1 x 512]. (LAION-CLAP's audio branch is an HTSAT transformer over a 48 kHz
 * mel; this is the small convolutional stand-in the design calls for, at 16 kHz.)
 *
 * Weights: audio.conv{1,2,3}.{weight,bias}, audio.proj.{weight,bias} (see specs below).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu_internal.h"
#include "mb_models.h"
#include "mel_internal.h"
#include "nn_internal.h"

#define MELS MB_CLAP_MELS
#define C1 MB_CLAP_C1
#define C2 MB_CLAP_C2
#define C3 MB_CLAP_C3
#define DIM MB_CLAP_DIM
#define MIN_SAMPLES MB_MEL_N_FFT
#define MAX_SAMPLES (MB_CLAP_MAX_SECONDS * MB_MEL_SAMPLE_RATE)
#define MAX_FRAMES (MAX_SAMPLES / MB_MEL_HOP)

enum { W1, B1, W2, B2, W3, B3, WP, BP, N_TENSORS };

static const struct mb_weights_spec specs[N_TENSORS] = {
	[W1] = {"audio.conv1.weight", 3, {C1, MELS, 3}}, [B1] = {"audio.conv1.bias", 1, {C1}},
	[W2] = {"audio.conv2.weight", 3, {C2, C1, 3}},	 [B2] = {"audio.conv2.bias", 1, {C2}},
	[W3] = {"audio.conv3.weight", 3, {C3, C2, 3}},	 [B3] = {"audio.conv3.bias", 1, {C3}},
	[WP] = {"audio.proj.weight", 2, {DIM, C3}},	 [BP] = {"audio.proj.bias", 1, {DIM}},
};

const struct mb_builtin_weights mb_clap_weights = {"clap", specs, N_TENSORS};

struct clap_state {
	struct mb_mel *mel;
	float *w[N_TENSORS];
	void *gpu; /* the net on a CUDA device, or NULL */
};

struct clap_worker {
	void *gpu; /* CUDA worker scratch (device >= 0); the rest is for the CPU */
	struct mb_mel_scratch *mel;
	float *x, *h1, *h2, *h3; /* [frames x 64], [frames x C1], [.. x C2], [.. x C3] */
	float *col;
	float pooled[C3];
};

static int
clap_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	return mb_mel_check_audio("clap", hdr, MIN_SAMPLES, MAX_SAMPLES, reason, reason_len);
}

static void
clap_unload(void *state)
{
	struct clap_state *s = state;

	if (s == NULL)
		return;
	mb_models_gpu_unload(&s->gpu);
	mb_mel_destroy(&s->mel);
	for (int i = 0; i < N_TENSORS; i++)
		free(s->w[i]);
	free(s);
}

static int
gpu_load(struct clap_state *s, int device, char *reason, size_t reason_len)
{
	uint64_t numel[N_TENSORS];

	for (int i = 0; i < N_TENSORS; i++)
		numel[i] = mb_weights_spec_numel(&specs[i]);
	return mb_models_gpu_load(MB_GPU_CLAP, device, s->mel, MAX_SAMPLES, s->w, numel, N_TENSORS,
				  &s->gpu, reason, reason_len);
}

static int
clap_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct clap_state *s;
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
		clap_unload(s);
		return rc;
	}
	mb_nn_init();
	*state = s;
	return 0;
}

static void
clap_worker_fini(void *state, void *worker)
{
	struct clap_worker *w = worker;

	(void)state;
	if (w == NULL)
		return;
	mb_models_gpu_worker_fini(&w->gpu);
	mb_mel_scratch_destroy(&w->mel);
	free(w->x);
	free(w->h1);
	free(w->h2);
	free(w->h3);
	free(w->col);
	free(w);
}

static int
clap_worker_init(void *state, int device, void **worker)
{
	struct clap_worker *w = calloc(1, sizeof(*w));

	const struct clap_state *s = state;
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
	w->h1 = malloc(sizeof(float) * MAX_FRAMES * C1);
	w->h2 = malloc(sizeof(float) * (MAX_FRAMES / 2 + 1) * C2);
	w->h3 = malloc(sizeof(float) * (MAX_FRAMES / 4 + 1) * C3);
	/* the largest im2col: conv1 frames x 192 or conv2 frames/2 x 384 */
	w->col = malloc(sizeof(float) * (MAX_FRAMES / 2 + 1) * C1 * 3 * 2);
	if (w->mel == NULL || w->x == NULL || w->h1 == NULL || w->h2 == NULL || w->h3 == NULL ||
	    w->col == NULL) {
		clap_worker_fini(state, w);
		return -ENOMEM;
	}
	*worker = w;
	return 0;
}

static void
embed(const struct clap_state *s, struct clap_worker *w, const struct mb_model_item *it, uint32_t n,
      float *out)
{
	uint32_t t1 = n / MB_MEL_HOP, t2 = mb_nn_conv_out(t1, 3, 2, 1);
	uint32_t t3 = mb_nn_conv_out(t2, 3, 2, 1);
	double norm = 0.0;
	float scale;

	mb_mel_compute(s->mel, w->mel, it, n, w->x);
	mb_nn_conv1d(w->x, t1, MELS, s->w[W1], s->w[B1], C1, 3, 1, 1, 1, w->col, w->h1);
	mb_nn_conv1d(w->h1, t1, C1, s->w[W2], s->w[B2], C2, 3, 2, 1, 1, w->col, w->h2);
	mb_nn_conv1d(w->h2, t2, C2, s->w[W3], s->w[B3], C3, 3, 2, 1, 1, w->col, w->h3);
	for (uint32_t c = 0; c < C3; c++) {
		double acc = 0.0;

		for (uint32_t t = 0; t < t3; t++)
			acc += w->h3[(size_t)t * C3 + c];
		w->pooled[c] = (float)(acc / t3);
	}
	mb_nn_linear(w->pooled, 1, C3, s->w[WP], s->w[BP], DIM, out);
	for (int i = 0; i < DIM; i++)
		norm += (double)out[i] * out[i];
	scale = (float)(1.0 / fmax(sqrt(norm), 1e-12));
	for (int i = 0; i < DIM; i++)
		out[i] *= scale;
}

static uint32_t
shape(const struct mb_model_item *it, uint16_t *rows, uint16_t *cols, uint16_t *type)
{
	uint32_t n = mb_proto_media_length(it->hdr);

	if (n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = 1;
	*cols = DIM;
	*type = MB_RESULT_F32;
	return DIM * sizeof(float);
}

static int
clap_run(void *state, struct mb_model_batch *batch)
{
	const struct clap_state *s = state;
	struct clap_worker *w = batch->worker;

	if (w == NULL)
		return -EINVAL;
	if (batch->device >= 0)
		return mb_models_gpu_run(s->gpu, w->gpu, batch, shape);
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t n = mb_proto_media_length(it->hdr);

		if (n < MIN_SAMPLES || n > MAX_SAMPLES) {
			mb_model_item_fail(it, "audio length out of range");
			continue;
		}
		it->result = batch->alloc_result(batch, DIM * sizeof(float));
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		embed(s, w, it, n, it->result);
		it->result_len = DIM * sizeof(float);
		it->result_type = MB_RESULT_F32;
		it->rows = 1;
		it->cols = DIM;
	}
	return 0;
}

const struct mb_model_desc mb_model_clap = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "clap",
	.summary = "CLAP-style audio embedding: 16 kHz mono audio (<= 10 s) -> [1 x 512]",
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
	.worker_init = clap_worker_init,
	.worker_fini = clap_worker_fini,
	.run = clap_run,
	.unload = clap_unload,
};
