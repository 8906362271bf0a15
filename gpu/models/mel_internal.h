/**
 * @file
 * Private to gpu/models: Whisper's log-mel front end, shared by logmel, whisper and clap.
 *
 * PCM mono 16 kHz -> F32 [frames x n_mels], frames = samples / 160:
 *   1. centred frames: reflect-pad n_fft/2 = 200 samples at both ends, hop 160, n_fft 400;
 *   2. periodic Hann window (0.5 - 0.5 cos(2 pi n / 400));
 *   3. power spectrum |rfft|^2, 201 bins;
 *   4. n_mels filters over 0..8 kHz, Slaney mel scale and Slaney area normalisation, built
 *      the way librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels) does;
 *   5. log10(max(x, 1e-10)), clamp from below at (max over the clip) - 8, then (x + 4) / 4;
 *   6. the last STFT frame is dropped.
 * Whisper uses n_mels = 80 (large-v3: 128); clap uses 64 with everything else the same.
 *
 * Threads: create/destroy on the main thread (FFTW's planner is not thread-safe); a scratch
 * per worker thread; mb_mel_compute() and mb_mel_compute_f32() from any thread with its own
 * scratch.
 */
#ifndef MB_MEL_INTERNAL_H
#define MB_MEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/model.h"

#define MB_MEL_SAMPLE_RATE 16000
#define MB_MEL_N_FFT 400
#define MB_MEL_HOP 160
#define MB_MEL_PAD (MB_MEL_N_FFT / 2)
#define MB_MEL_BINS (MB_MEL_N_FFT / 2 + 1)
#define MB_MEL_MAX_MELS 128

struct mb_mel {
	void *plan; /* fftwf_plan */
	int n_mels;
	float window[MB_MEL_N_FFT];
	float filters[MB_MEL_MAX_MELS][MB_MEL_BINS]; /* dense; only [lo, hi) is non-zero */
	int lo[MB_MEL_MAX_MELS], hi[MB_MEL_MAX_MELS];
};

struct mb_mel_scratch;

/** Build the window, filterbank and FFT plan. Returns 0, -EINVAL or -ENOMEM. */
int mb_mel_create(int n_mels, struct mb_mel **out);
void mb_mel_destroy(struct mb_mel **mel);

/** Scratch for clips of up to @p max_samples. Returns NULL when out of memory. */
struct mb_mel_scratch *mb_mel_scratch_create(uint32_t max_samples);
void mb_mel_scratch_destroy(struct mb_mel_scratch **s);

/**
 * Log-mel of @p n samples of @p it's payload (PCM_S16LE or PCM_F32LE; n <= the scratch's
 * max, n >= 400) into @p out: F32 [n / 160 x n_mels], frame-major.
 */
void mb_mel_compute(const struct mb_mel *mel, struct mb_mel_scratch *s,
		    const struct mb_model_item *it, uint32_t n, float *out);

/** @p n samples of @p it's payload (PCM_S16LE or PCM_F32LE) as floats into @p x. */
void mb_mel_samples(const struct mb_model_item *it, uint32_t n, float *x);

/** Floats of scratch mb_mel_compute_f32() needs for @p n samples. */
size_t mb_mel_f32_scratch(uint32_t n);

/**
 * As mb_mel_compute(), from @p n float samples @p x (n >= 400; copied, not changed) into
 * @p out: F32 [n / 160 x n_mels]. @p scratch: mb_mel_f32_scratch(n) floats, 64-byte
 * aligned, the caller's (no allocation here). Threads: any, each with its own scratch.
 */
void mb_mel_compute_f32(const struct mb_mel *mel, const float *x, uint32_t n, float *scratch,
			float *out);

/**
 * The usual audio check for a model called @p model: 16 kHz, @p min_samples..@p max_samples
 * samples. Returns 0, or -1 with a reason naming the field and the limits.
 */
int mb_mel_check_audio(const char *model, const struct mb_request_hdr *hdr, uint32_t min_samples,
		       uint32_t max_samples, char *reason, size_t reason_len);

#endif /* MB_MEL_INTERNAL_H */
