/*
 * logmel.c: Whisper's log-mel front end on the CPU (FFTW, single precision).
 *
 * For PCM mono at 16 kHz, exactly as Whisper computes it:
 *   1. centred frames: reflect-pad n_fft/2 = 200 samples at both ends, hop 160, n_fft 400;
 *   2. periodic Hann window (0.5 - 0.5 cos(2 pi n / 400));
 *   3. power spectrum |rfft|^2, 201 bins;
 *   4. 80 mel filters over 0..8 kHz, Slaney mel scale and Slaney area normalisation, built
 *      the way librosa.filters.mel does;
 *   5. log10(max(x, 1e-10)), clamp from below at (max over the clip) - 8, then (x + 4) / 4;
 *   6. the last STFT frame is dropped: frames = samples / 160.
 * Output: F32 [frames x 80], frame-major.
 *
 * The FFT plan is made once at load (FFTW's planner is not thread-safe) with FFTW_ESTIMATE,
 * so every run uses the same algorithm and results are bit-for-bit deterministic. Workers
 * execute it with their own aligned buffers (fftwf_execute_dft_r2c is thread-safe).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "mb_models.h"

#define SAMPLE_RATE 16000
#define N_FFT 400
#define HOP 160
#define PAD (N_FFT / 2)
#define N_BINS (N_FFT / 2 + 1)
#define N_MELS 80
#define F_MAX 8000.0
#define MIN_SAMPLES N_FFT
#define MAX_SAMPLES (30 * SAMPLE_RATE)

struct logmel_state {
	fftwf_plan plan;
	float window[N_FFT];
	float filters[N_MELS][N_BINS]; /* dense, but only [lo, hi) is non-zero */
	int lo[N_MELS], hi[N_MELS];
};

struct logmel_worker {
	float *in;	    /* N_FFT, FFTW-aligned */
	fftwf_complex *out; /* N_BINS, FFTW-aligned */
	float *padded;	    /* MAX_SAMPLES + 2 * PAD */
	float power[N_BINS];
};

/* Slaney's mel scale (librosa's default, htk=False). */
static double
hz_to_mel(double f)
{
	const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0;
	const double min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27.0;

	return f < min_log_hz ? f / f_sp : min_log_mel + log(f / min_log_hz) / logstep;
}

static double
mel_to_hz(double m)
{
	const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0;
	const double min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27.0;

	return m < min_log_mel ? f_sp * m : min_log_hz * exp(logstep * (m - min_log_mel));
}

static void
build_filters(struct logmel_state *s)
{
	double mel_f[N_MELS + 2];
	const double mel_max = hz_to_mel(F_MAX);

	for (int i = 0; i < N_MELS + 2; i++)
		mel_f[i] = mel_to_hz(mel_max * i / (N_MELS + 1));
	for (int m = 0; m < N_MELS; m++) {
		double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);

		s->lo[m] = N_BINS;
		s->hi[m] = 0;
		for (int k = 0; k < N_BINS; k++) {
			double f = (double)k * SAMPLE_RATE / N_FFT;
			double lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
			double upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
			double w = fmax(0.0, fmin(lower, upper)) * enorm;

			s->filters[m][k] = (float)w;
			if (w > 0.0) {
				if (k < s->lo[m])
					s->lo[m] = k;
				s->hi[m] = k + 1;
			}
		}
		if (s->lo[m] > s->hi[m])
			s->lo[m] = s->hi[m] = 0;
	}
}

static int
logmel_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	uint32_t samples = mb_proto_media_length(hdr);

	if (hdr->sample_rate != SAMPLE_RATE) {
		snprintf(reason, reason_len,
			 "sample_rate: %u Hz, but logmel needs %d Hz mono audio (resample first)",
			 hdr->sample_rate, SAMPLE_RATE);
		return -1;
	}
	if (samples < MIN_SAMPLES) {
		snprintf(reason, reason_len,
			 "payload_len: %u samples of audio, logmel needs at least %d (25 ms)",
			 samples, MIN_SAMPLES);
		return -1;
	}
	if (samples > MAX_SAMPLES) {
		snprintf(reason, reason_len,
			 "payload_len: %.2f s of audio, logmel takes at most 30 s (%d samples)",
			 (double)samples / SAMPLE_RATE, MAX_SAMPLES);
		return -1;
	}
	return 0;
}

static int
logmel_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct logmel_state *s;
	float *in;
	fftwf_complex *out;

	if (args->device >= 0) {
		snprintf(reason, reason_len, "logmel runs on the CPU device only in this build");
		return -ENOTSUP;
	}
	s = calloc(1, sizeof(*s));
	in = fftwf_malloc(sizeof(float) * N_FFT);
	out = fftwf_malloc(sizeof(fftwf_complex) * N_BINS);
	if (s == NULL || in == NULL || out == NULL) {
		snprintf(reason, reason_len, "out of memory");
		goto fail;
	}
	s->plan = fftwf_plan_dft_r2c_1d(N_FFT, in, out, FFTW_ESTIMATE);
	if (s->plan == NULL) {
		snprintf(reason, reason_len, "FFTW could not plan a %d-point real FFT", N_FFT);
		goto fail;
	}
	for (int n = 0; n < N_FFT; n++)
		s->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / N_FFT));
	build_filters(s);
	fftwf_free(in);
	fftwf_free(out);
	*state = s;
	return 0;
fail:
	fftwf_free(in);
	fftwf_free(out);
	free(s);
	return -ENOMEM;
}

static int
logmel_worker_init(void *state, int device, void **worker)
{
	struct logmel_worker *w = calloc(1, sizeof(*w));

	(void)state;
	(void)device;
	if (w == NULL)
		return -ENOMEM;
	w->in = fftwf_malloc(sizeof(float) * N_FFT);
	w->out = fftwf_malloc(sizeof(fftwf_complex) * N_BINS);
	w->padded = malloc(sizeof(float) * (MAX_SAMPLES + 2 * PAD));
	if (w->in == NULL || w->out == NULL || w->padded == NULL) {
		fftwf_free(w->in);
		fftwf_free(w->out);
		free(w->padded);
		free(w);
		return -ENOMEM;
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
	fftwf_free(w->in);
	fftwf_free(w->out);
	free(w->padded);
	free(w);
}

/* Samples as floats in [-1, 1), reflect-padded by PAD at both ends (numpy's "reflect"). */
static void
load_padded(const struct mb_model_item *it, uint32_t n, float *padded)
{
	float *x = padded + PAD;

	if (it->hdr->media == MB_MEDIA_PCM_S16LE) {
		const uint8_t *p = it->payload;

		for (uint32_t i = 0; i < n; i++)
			x[i] = (float)(int16_t)(p[2 * i] | p[2 * i + 1] << 8) / 32768.0f;
	} else {
		memcpy(x, it->payload, sizeof(float) * n);
	}
	for (int i = 1; i <= PAD; i++) {
		x[-i] = x[i];
		x[n - 1 + i] = x[n - 1 - i];
	}
}

static void
compute(const struct logmel_state *s, struct logmel_worker *w, const struct mb_model_item *it,
	uint32_t n, float *mel)
{
	uint32_t frames = n / HOP;
	float max = -INFINITY;

	load_padded(it, n, w->padded);
	for (uint32_t t = 0; t < frames; t++) {
		const float *frame = w->padded + (size_t)t * HOP;
		float *row = mel + (size_t)t * N_MELS;

		for (int i = 0; i < N_FFT; i++)
			w->in[i] = frame[i] * s->window[i];
		fftwf_execute_dft_r2c(s->plan, w->in, w->out);
		for (int k = 0; k < N_BINS; k++)
			w->power[k] = w->out[k][0] * w->out[k][0] + w->out[k][1] * w->out[k][1];
		for (int m = 0; m < N_MELS; m++) {
			float acc = 0.0f;

			for (int k = s->lo[m]; k < s->hi[m]; k++)
				acc += s->filters[m][k] * w->power[k];
			row[m] = log10f(fmaxf(acc, 1e-10f));
			if (row[m] > max)
				max = row[m];
		}
	}
	for (size_t i = 0; i < (size_t)frames * N_MELS; i++)
		mel[i] = (fmaxf(mel[i], max - 8.0f) + 4.0f) / 4.0f;
}

static int
logmel_run(void *state, struct mb_model_batch *batch)
{
	const struct logmel_state *s = state;
	struct logmel_worker *w = batch->worker;

	if (w == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t n = mb_proto_media_length(it->hdr);
		uint32_t frames = n / HOP;
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
		compute(s, w, it, n, it->result);
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
	struct logmel_state *s = state;

	if (s == NULL)
		return;
	fftwf_destroy_plan(s->plan);
	free(s);
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
