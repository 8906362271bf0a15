/*
 * mel.c: Whisper's log-mel front end on the CPU (FFTW, single precision), shared by the
 * logmel, whisper and clap models (see mel_internal.h for the steps).
 *
 * The FFT plan is made once (FFTW's planner is not thread-safe) with FFTW_ESTIMATE, so every
 * run uses the same algorithm and results are bit-for-bit deterministic. Workers execute it
 * with their own aligned buffers (fftwf_execute_dft_r2c is thread-safe): a struct
 * mb_mel_scratch, or a part of a caller's 64-byte aligned float scratch
 * (mb_mel_compute_f32(), for a model that pads the audio itself: whisper).
 */
#include "mel_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#define F_MAX 8000.0

struct mb_mel_scratch {
	float *in;	    /* N_FFT, FFTW-aligned */
	fftwf_complex *out; /* N_BINS, FFTW-aligned */
	float *padded;	    /* max_samples + 2 * PAD */
	uint32_t max_samples;
	float power[MB_MEL_BINS];
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
build_filters(struct mb_mel *s)
{
	double mel_f[MB_MEL_MAX_MELS + 2];
	const double mel_max = hz_to_mel(F_MAX);
	const int n_mels = s->n_mels;

	for (int i = 0; i < n_mels + 2; i++)
		mel_f[i] = mel_to_hz(mel_max * i / (n_mels + 1));
	for (int m = 0; m < n_mels; m++) {
		double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);

		s->lo[m] = MB_MEL_BINS;
		s->hi[m] = 0;
		for (int k = 0; k < MB_MEL_BINS; k++) {
			double f = (double)k * MB_MEL_SAMPLE_RATE / MB_MEL_N_FFT;
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

int
mb_mel_create(int n_mels, struct mb_mel **out)
{
	struct mb_mel *s;
	float *in;
	fftwf_complex *fo;
	int rc = -ENOMEM;

	*out = NULL;
	if (n_mels < 1 || n_mels > MB_MEL_MAX_MELS)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	in = fftwf_malloc(sizeof(float) * MB_MEL_N_FFT);
	fo = fftwf_malloc(sizeof(fftwf_complex) * MB_MEL_BINS);
	if (s == NULL || in == NULL || fo == NULL)
		goto fail;
	s->n_mels = n_mels;
	s->plan = fftwf_plan_dft_r2c_1d(MB_MEL_N_FFT, in, fo, FFTW_ESTIMATE);
	if (s->plan == NULL)
		goto fail;
	for (int n = 0; n < MB_MEL_N_FFT; n++)
		s->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / MB_MEL_N_FFT));
	build_filters(s);
	fftwf_free(in);
	fftwf_free(fo);
	*out = s;
	return 0;
fail:
	fftwf_free(in);
	fftwf_free(fo);
	free(s);
	return rc;
}

void
mb_mel_destroy(struct mb_mel **mp)
{
	if (mp == NULL || *mp == NULL)
		return;
	if ((*mp)->plan != NULL)
		fftwf_destroy_plan((*mp)->plan);
	free(*mp);
	*mp = NULL;
}

struct mb_mel_scratch *
mb_mel_scratch_create(uint32_t max_samples)
{
	struct mb_mel_scratch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->max_samples = max_samples;
	w->in = fftwf_malloc(sizeof(float) * MB_MEL_N_FFT);
	w->out = fftwf_malloc(sizeof(fftwf_complex) * MB_MEL_BINS);
	w->padded = malloc(sizeof(float) * (max_samples + 2 * MB_MEL_PAD));
	if (w->in == NULL || w->out == NULL || w->padded == NULL)
		mb_mel_scratch_destroy(&w);
	return w;
}

void
mb_mel_scratch_destroy(struct mb_mel_scratch **wp)
{
	struct mb_mel_scratch *w;

	if (wp == NULL || *wp == NULL)
		return;
	w = *wp;
	fftwf_free(w->in);
	fftwf_free(w->out);
	free(w->padded);
	free(w);
	*wp = NULL;
}

void
mb_mel_samples(const struct mb_model_item *it, uint32_t n, float *x)
{
	if (it->hdr->media == MB_MEDIA_PCM_S16LE) {
		const uint8_t *p = it->payload;

		for (uint32_t i = 0; i < n; i++)
			x[i] = (float)(int16_t)(p[2 * i] | p[2 * i + 1] << 8) / 32768.0f;
	} else {
		memcpy(x, it->payload, sizeof(float) * n);
	}
}

/* Reflect-pad the @p n samples at padded[PAD..] by PAD at both ends (numpy's "reflect"). */
static void
reflect_pad(float *padded, uint32_t n)
{
	float *x = padded + MB_MEL_PAD;

	for (int i = 1; i <= MB_MEL_PAD; i++) {
		x[-i] = x[i];
		x[n - 1 + i] = x[n - 1 - i];
	}
}

/*
 * Steps 2..6 over @p frames frames of reflect-padded samples: the FFT through @p in and
 * @p out (aligned as the plan's arrays were), the power spectrum in @p power.
 */
static void
logmel_frames(const struct mb_mel *s, const float *padded, uint32_t frames, float *in,
	      fftwf_complex *out, float *power, float *mel)
{
	const int n_mels = s->n_mels;
	float max = -INFINITY;

	for (uint32_t t = 0; t < frames; t++) {
		const float *frame = padded + (size_t)t * MB_MEL_HOP;
		float *row = mel + (size_t)t * n_mels;

		for (int i = 0; i < MB_MEL_N_FFT; i++)
			in[i] = frame[i] * s->window[i];
		fftwf_execute_dft_r2c(s->plan, in, out);
		for (int k = 0; k < MB_MEL_BINS; k++)
			power[k] = out[k][0] * out[k][0] + out[k][1] * out[k][1];
		for (int m = 0; m < n_mels; m++) {
			float acc = 0.0f;

			for (int k = s->lo[m]; k < s->hi[m]; k++)
				acc += s->filters[m][k] * power[k];
			row[m] = log10f(fmaxf(acc, 1e-10f));
			if (row[m] > max)
				max = row[m];
		}
	}
	for (size_t i = 0; i < (size_t)frames * n_mels; i++)
		mel[i] = (fmaxf(mel[i], max - 8.0f) + 4.0f) / 4.0f;
}

void
mb_mel_compute(const struct mb_mel *s, struct mb_mel_scratch *w, const struct mb_model_item *it,
	       uint32_t n, float *mel)
{
	mb_mel_samples(it, n, w->padded + MB_MEL_PAD);
	reflect_pad(w->padded, n);
	logmel_frames(s, w->padded, n / MB_MEL_HOP, w->in, w->out, w->power, mel);
}

/* @p floats rounded up to whole 64-byte lines, so that each part of a scratch is aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

size_t
mb_mel_f32_scratch(uint32_t n)
{
	return lines((size_t)n + 2 * MB_MEL_PAD) + lines(MB_MEL_N_FFT) + lines(2 * MB_MEL_BINS) +
	       lines(MB_MEL_BINS);
}

void
mb_mel_compute_f32(const struct mb_mel *s, const float *x, uint32_t n, float *scratch, float *mel)
{
	float *padded = scratch;
	float *in = padded + lines((size_t)n + 2 * MB_MEL_PAD);
	float *out = in + lines(MB_MEL_N_FFT);
	float *power = out + lines(2 * MB_MEL_BINS);

	memcpy(padded + MB_MEL_PAD, x, sizeof(float) * n);
	reflect_pad(padded, n);
	/* in and out are 64-byte aligned, as the fftwf_malloc() arrays the plan was made with
	 * (new-array execution needs the same alignment) */
	logmel_frames(s, padded, n / MB_MEL_HOP, in, (fftwf_complex *)out, power, mel);
}

int
mb_mel_check_audio(const char *model, const struct mb_request_hdr *hdr, uint32_t min_samples,
		   uint32_t max_samples, char *reason, size_t reason_len)
{
	uint32_t samples = mb_proto_media_length(hdr);

	if (hdr->sample_rate != MB_MEL_SAMPLE_RATE) {
		snprintf(reason, reason_len,
			 "sample_rate: %u Hz, but %s needs %d Hz mono audio (resample first)",
			 hdr->sample_rate, model, MB_MEL_SAMPLE_RATE);
		return -1;
	}
	if (samples < min_samples) {
		snprintf(reason, reason_len,
			 "payload_len: %u bytes, %u samples of audio; %s needs at least %u (%u ms)",
			 hdr->payload_len, samples, model, min_samples, min_samples / 16);
		return -1;
	}
	if (samples > max_samples) {
		snprintf(reason, reason_len,
			 "payload_len: %.2f s of audio, %s takes at most %u s (%u samples)",
			 (double)samples / MB_MEL_SAMPLE_RATE, model,
			 max_samples / MB_MEL_SAMPLE_RATE, max_samples);
		return -1;
	}
	return 0;
}
