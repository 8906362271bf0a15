/*
 * logmel.c: Whisper's log-mel front end alone (mel.c, 80 bins), no weights.
 *
 * For PCM mono at 16 kHz, 400 samples (25 ms) .. 30 s: F32 [samples/160 x 80], frame-major.
 * The steps, exactly as Whisper computes them, are in mel_internal.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "mb_models.h"
#include "mel_internal.h"

#define N_MELS 80
#define MIN_SAMPLES MB_MEL_N_FFT
#define MAX_SAMPLES (30 * MB_MEL_SAMPLE_RATE)

static int
logmel_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	return mb_mel_check_audio("logmel", hdr, MIN_SAMPLES, MAX_SAMPLES, reason, reason_len);
}

static int
logmel_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct mb_mel *mel;
	int rc;

	if (args->device >= 0) {
		snprintf(reason, reason_len, "logmel runs on the CPU device only in this build");
		return -ENOTSUP;
	}
	rc = mb_mel_create(N_MELS, &mel);
	if (rc < 0) {
		snprintf(reason, reason_len, "cannot set up the %d-point FFT: out of memory",
			 MB_MEL_N_FFT);
		return rc;
	}
	*state = mel;
	return 0;
}

static int
logmel_worker_init(void *state, int device, void **worker)
{
	(void)state;
	(void)device;
	*worker = mb_mel_scratch_create(MAX_SAMPLES);
	return *worker != NULL ? 0 : -ENOMEM;
}

static void
logmel_worker_fini(void *state, void *worker)
{
	struct mb_mel_scratch *w = worker;

	(void)state;
	mb_mel_scratch_destroy(&w);
}

static int
logmel_run(void *state, struct mb_model_batch *batch)
{
	const struct mb_mel *mel = state;
	struct mb_mel_scratch *w = batch->worker;

	if (w == NULL)
		return -EINVAL;
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
		mb_mel_compute(mel, w, it, n, it->result);
		it->result_len = (uint32_t)bytes;
		it->result_type = MB_RESULT_F32;
		it->rows = (uint16_t)frames;
		it->cols = N_MELS;
	}
	return 0;
}

static void
logmel_unload(void *state)
{
	struct mb_mel *mel = state;

	mb_mel_destroy(&mel);
}

const struct mb_model_desc mb_model_logmel = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "logmel",
	.summary = "Whisper's log-mel front end: 16 kHz mono audio -> [samples/160 x 80]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.devices = MB_MODEL_ON_CPU,
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
