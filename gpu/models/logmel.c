/*
 * logmel.c: Whisper's log-mel front end alone (mel.c, 80 bins), no weights.
 *
 * For PCM mono at 16 kHz, 400 samples (25 ms) .. 30 s: F32 [samples/160 x 80], frame-major.
 * The steps, exactly as Whisper computes them, are in mel_internal.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu_internal.h"
#include "mb_models.h"
#include "mel_internal.h"

#define N_MELS 80
#define MIN_SAMPLES MB_MEL_N_FFT
#define MAX_SAMPLES (MB_LOGMEL_MAX_SECONDS * MB_MEL_SAMPLE_RATE)

static int
logmel_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	return mb_mel_check_audio("logmel", hdr, MIN_SAMPLES, MAX_SAMPLES, reason, reason_len);
}

struct logmel_state {
	struct mb_mel *mel;
	void *gpu; /* the front end on a CUDA device, or NULL */
};

struct logmel_worker {
	struct mb_mel_scratch *cpu;
	void *gpu;
};

static void
logmel_unload(void *state)
{
	struct logmel_state *s = state;

	if (s == NULL)
		return;
	mb_models_gpu_unload(&s->gpu);
	mb_mel_destroy(&s->mel);
	free(s);
}

static int
logmel_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct logmel_state *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	rc = mb_mel_create(N_MELS, &s->mel);
	if (rc < 0)
		snprintf(reason, reason_len, "cannot set up the %d-point FFT: out of memory",
			 MB_MEL_N_FFT);
	if (rc == 0 && args->device >= 0)
		rc = mb_models_gpu_load(MB_GPU_LOGMEL, args->device, s->mel, MAX_SAMPLES, NULL,
					NULL, 0, &s->gpu, reason, reason_len);
	if (rc < 0) {
		logmel_unload(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int
logmel_worker_init(void *state, int device, void **worker)
{
	const struct logmel_state *s = state;
	struct logmel_worker *w = calloc(1, sizeof(*w));
	int rc = 0;

	if (w == NULL)
		return -ENOMEM;
	if (device >= 0)
		rc = mb_models_gpu_worker_init(s->gpu, &w->gpu);
	else if ((w->cpu = mb_mel_scratch_create(MAX_SAMPLES)) == NULL)
		rc = -ENOMEM;
	if (rc < 0) {
		free(w);
		return rc;
	}
	*worker = w;
	return 0;
}

static void
logmel_worker_fini(void *state, void *worker)
{
	struct logmel_worker *w = worker;

	(void)state;
	if (w == NULL)
		return;
	mb_models_gpu_worker_fini(&w->gpu);
	mb_mel_scratch_destroy(&w->cpu);
	free(w);
}

static uint32_t
shape(const struct mb_model_item *it, uint16_t *rows, uint16_t *cols, uint16_t *type)
{
	uint32_t n = mb_proto_media_length(it->hdr);

	if (n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = (uint16_t)(n / MB_MEL_HOP);
	*cols = N_MELS;
	*type = MB_RESULT_F32;
	return (uint32_t)*rows * N_MELS * sizeof(float);
}

static int
logmel_run(void *state, struct mb_model_batch *batch)
{
	const struct logmel_state *s = state;
	struct logmel_worker *lw = batch->worker;
	struct mb_mel_scratch *w;

	if (lw == NULL)
		return -EINVAL;
	if (batch->device >= 0)
		return mb_models_gpu_run(s->gpu, lw->gpu, batch, shape);
	w = lw->cpu;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t n = mb_proto_media_length(it->hdr);
		uint32_t frames = n / MB_MEL_HOP;
		size_t bytes = (size_t)frames * N_MELS * sizeof(float);

		if (n < MIN_SAMPLES || n > MAX_SAMPLES) { /* check() ran; defend anyway */
			mb_model_item_fail(it, "audio length out of range");
			continue;
		}
		it->result = batch->alloc_result(batch, bytes);
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		mb_mel_compute(s->mel, w, it, n, it->result);
		it->result_len = (uint32_t)bytes;
		it->result_type = MB_RESULT_F32;
		it->rows = (uint16_t)frames;
		it->cols = N_MELS;
	}
	return 0;
}

const struct mb_model_desc mb_model_logmel = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "logmel",
	.summary = "Whisper's log-mel front end: 16 kHz mono audio -> [samples/160 x 80]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.devices = MB_MODELS_DEVICES,
	.base_units = 1,
	.item_units_per_second = 0.05,
	.max_batch = 16,
	.max_delay_us = 2000,
	.queue_limit = 1024,
	.default_timeout_ms = 30000,
	.check = logmel_check,
	.load = logmel_load,
	.worker_init = logmel_worker_init,
	.worker_fini = logmel_worker_fini,
	.run = logmel_run,
	.unload = logmel_unload,
};
