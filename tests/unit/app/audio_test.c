/*
 * audio_test.c: mb_audio (app/common/), the CLI's and mediabatch-perf's audio reader. Files
 * are written here with libsndfile itself: a 44.1 kHz stereo float WAV, a 22.05 kHz FLAC and
 * a 44.1 kHz Ogg/Vorbis of a 440 Hz tone, loaded as 16 kHz (and 48 kHz) mono PCM16 and
 * checked for their length (duration x rate, within 2 samples), their frequency (upward zero
 * crossings, within 1%, and the DFT peak) and their level (the mix-down is the channels'
 * mean); a 16 kHz 16-bit file sent at its own rate keeps its exact samples; clipping; and
 * every refusal (missing, empty, not audio, a directory, no samples, too short, too long for
 * the byte limit, a bad target rate) with a message that names the file.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sndfile.h>

#include "mb_audio.h"
#include "mb_test.h"

static const char *g_dir;

static const char *
path_of(const char *name)
{
	static char buf[8][512];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", g_dir, name);
	return p;
}

/*
 * Write @seconds of a tone of @hz at @rate into @path as @format with @channels channels:
 * channel c carries amplitude amp[c] (so the mono mean is their mean). 0 or -1.
 */
static int
write_tone(const char *path, int format, int rate, int channels, const double *amp, double hz,
	   double seconds)
{
	SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
	sf_count_t n = (sf_count_t)llround(seconds * rate);
	float *buf = malloc(sizeof(float) * (size_t)n * (size_t)channels);
	SNDFILE *sf;
	sf_count_t w;

	if (buf == NULL || !sf_format_check(&info)) {
		free(buf);
		return -1;
	}
	for (sf_count_t i = 0; i < n; i++)
		for (int c = 0; c < channels; c++)
			buf[i * channels + c] = (float)(amp[c] * sin(2 * M_PI * hz * i / rate));
	sf = sf_open(path, SFM_WRITE, &info);
	if (sf == NULL) {
		printf("\n    cannot write %s: %s", path, sf_strerror(NULL));
		free(buf);
		return -1;
	}
	w = sf_writef_float(sf, buf, n);
	sf_close(sf);
	free(buf);
	return w == n ? 0 : -1;
}

static int16_t
sample(const uint8_t *pcm, uint64_t i)
{
	return (int16_t)(uint16_t)(pcm[2 * i] | pcm[2 * i + 1] << 8);
}

/* Frequency from upward zero crossings of @n samples at @rate, leaving out 5% at each end. */
static double
crossing_hz(const uint8_t *pcm, uint64_t n, uint32_t rate)
{
	uint64_t lo = n / 20, hi = n - n / 20, first = 0, last = 0, count = 0;

	for (uint64_t i = lo + 1; i < hi; i++)
		if (sample(pcm, i - 1) < 0 && sample(pcm, i) >= 0) {
			if (count == 0)
				first = i;
			last = i;
			count++;
		}
	return count > 1 ? (double)(count - 1) * rate / (double)(last - first) : 0;
}

/* DFT power of the samples at @hz (a single bin, Goertzel), normalised by n^2. */
static double
power_at(const uint8_t *pcm, uint64_t n, uint32_t rate, double hz)
{
	double w = 2 * M_PI * hz / rate, re = 0, im = 0;

	for (uint64_t i = 0; i < n; i++) {
		re += sample(pcm, i) * cos(w * (double)i);
		im -= sample(pcm, i) * sin(w * (double)i);
	}
	return (re * re + im * im) / ((double)n * (double)n);
}

/* The frequency of the highest DFT bin between 200 and 1000 Hz, in 1 Hz steps. */
static double
peak_hz(const uint8_t *pcm, uint64_t n, uint32_t rate)
{
	double best = 0, best_hz = 0;

	for (double hz = 200; hz <= 1000; hz += 1) {
		double p = power_at(pcm, n, rate, hz);

		if (p > best) {
			best = p;
			best_hz = hz;
		}
	}
	return best_hz;
}

/* Root mean square in [-1, 1) units over the middle 90%. */
static double
rms(const uint8_t *pcm, uint64_t n)
{
	double s = 0;
	uint64_t lo = n / 20, hi = n - n / 20;

	for (uint64_t i = lo; i < hi; i++)
		s += (sample(pcm, i) / 32768.0) * (sample(pcm, i) / 32768.0);
	return sqrt(s / (double)(hi - lo));
}

/* Load @path at @rate and check length, frequency (440 Hz within 1%) and RMS. */
static void
check_tone(const char *path, uint32_t rate, double seconds, double amp)
{
	uint8_t *pcm = NULL;
	uint32_t len = 0;
	struct mb_audio_info info;
	char err[512] = "";
	int rc = mb_audio_load_pcm16(path, rate, 0, &pcm, &len, &info, err, sizeof(err));
	uint64_t n = len / 2;
	double expect = seconds * rate, hz, peak;

	CU_ASSERT_EQUAL_FATAL(rc, 0);
	if (rc != 0) {
		printf("\n    %s", err);
		return;
	}
	hz = crossing_hz(pcm, n, rate);
	peak = peak_hz(pcm, n, rate);
	printf("\n    %s (%s, %u Hz, %u ch) at %u Hz: %llu samples (expect %.0f), %.2f Hz by "
	       "crossings, DFT peak %.0f Hz, RMS %.4f (expect %.4f)",
	       strrchr(path, '/') + 1, info.format, info.rate, info.channels, rate,
	       (unsigned long long)n, expect, hz, peak, rms(pcm, n), amp / sqrt(2));
	CU_ASSERT(fabs((double)n - expect) <= 2);
	CU_ASSERT(fabs(hz - 440) <= 4.4);
	CU_ASSERT(fabs(peak - 440) <= 4.4);
	/* a pure tone: the power at 440 Hz dwarfs that at 880 Hz and at 300 Hz */
	CU_ASSERT(power_at(pcm, n, rate, 440) > 1000 * power_at(pcm, n, rate, 880));
	CU_ASSERT(power_at(pcm, n, rate, 440) > 1000 * power_at(pcm, n, rate, 300));
	CU_ASSERT(fabs(rms(pcm, n) - amp / sqrt(2)) <= 0.02 * amp);
	free(pcm);
}

static void
test_wav_float_stereo_44100(void)
{
	/* left 0.8, right 0.2: the mono mean has amplitude 0.5 */
	const double amp[2] = {0.8, 0.2};
	const char *p = path_of("tone44k_stereo_float.wav");

	CU_ASSERT_FATAL(write_tone(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, amp, 440, 1.5) ==
			0);
	check_tone(p, 16000, 1.5, 0.5);
	check_tone(p, 48000, 1.5, 0.5);
}

static void
test_flac_22050(void)
{
	const double amp[1] = {0.6};
	const char *p = path_of("tone22k.flac");

	CU_ASSERT_FATAL(write_tone(p, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 1, amp, 440, 1.0) ==
			0);
	check_tone(p, 16000, 1.0, 0.6);
}

static void
test_ogg_vorbis(void)
{
	const double amp[2] = {0.5, 0.5};
	const char *p = path_of("tone44k.ogg");
	SF_INFO probe = {
		.samplerate = 44100, .channels = 2, .format = SF_FORMAT_OGG | SF_FORMAT_VORBIS};

	if (!sf_format_check(&probe)) {
		printf("\n    this libsndfile has no Ogg/Vorbis: not checked");
		return;
	}
	CU_ASSERT_FATAL(write_tone(p, SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, amp, 440, 1.0) ==
			0);
	/* lossy: the length and the frequency hold; the level within Vorbis' error */
	check_tone(p, 16000, 1.0, 0.5);
}

/* A 16 kHz 16-bit mono file sent at 16 kHz: the very samples, byte for byte. */
static void
test_same_rate_exact(void)
{
	SF_INFO info = {
		.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
	const char *p = path_of("exact16k.wav");
	short s[1000];
	uint8_t *pcm = NULL;
	uint32_t len = 0;
	char err[512];
	SNDFILE *sf;
	uint64_t x = 12345;

	for (int i = 0; i < 1000; i++)
		s[i] = (short)(mb_test_rand(&x) >> 48);
	s[0] = -32768;
	s[1] = 32767;
	sf = sf_open(p, SFM_WRITE, &info);
	CU_ASSERT_FATAL(sf != NULL);
	CU_ASSERT_EQUAL(sf_writef_short(sf, s, 1000), 1000);
	sf_close(sf);
	CU_ASSERT_EQUAL_FATAL(mb_audio_load_pcm16(p, 16000, 0, &pcm, &len, NULL, err, sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(len, 2000);
	for (int i = 0; i < 1000 && len == 2000; i++)
		if (sample(pcm, (uint64_t)i) != s[i]) {
			CU_FAIL("a sample changed");
			printf("\n    sample %d: %d, wrote %d", i, sample(pcm, (uint64_t)i), s[i]);
			break;
		}
	free(pcm);
}

/* f32: a float file's samples at its own rate exactly, resampled ones as the 16-bit path
 * rounds them, and the byte limit counted in four-byte samples. */
static void
test_f32(void)
{
	SF_INFO info = {
		.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
	const char *p = path_of("exact16k_f32.wav");
	float f[1000], got;
	uint8_t *pcm = NULL, *p16 = NULL;
	uint32_t len = 0, len16 = 0;
	char err[512];
	SNDFILE *sf;
	uint64_t x = 777;
	int off = 0;

	for (int i = 0; i < 1000; i++)
		f[i] = (float)((double)(mb_test_rand(&x) >> 11) / 0x1p53 - 0.5) * 1.5f;
	sf = sf_open(p, SFM_WRITE, &info);
	CU_ASSERT_FATAL(sf != NULL);
	CU_ASSERT_EQUAL(sf_writef_float(sf, f, 1000), 1000);
	sf_close(sf);
	CU_ASSERT_EQUAL_FATAL(
		mb_audio_load_pcm(p, 16000, true, 0, &pcm, &len, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(len, 4000);
	for (int i = 0; i < 1000 && len == 4000; i++) {
		memcpy(&got, pcm + 4 * i, 4); /* little-endian host */
		if (got != f[i]) {
			CU_FAIL("a sample changed");
			printf("\n    sample %d: %.9g, wrote %.9g", i, got, f[i]);
			break;
		}
	}
	free(pcm);
	/* resampled: the 16-bit path is the float path rounded */
	CU_ASSERT_EQUAL_FATAL(
		mb_audio_load_pcm(p, 48000, true, 0, &pcm, &len, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_audio_load_pcm16(p, 48000, 0, &p16, &len16, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(len, 2 * len16);
	for (uint32_t i = 0; i < len16 / 2 && len == 2 * len16; i++) {
		float v;

		memcpy(&v, pcm + 4 * i, 4);
		v = fminf(fmaxf(v * 32768.0f, -32768.0f), 32767.0f);
		off += fabsf(v - (float)sample(p16, i)) > 0.5f;
	}
	CU_ASSERT_EQUAL(off, 0);
	free(pcm);
	free(p16);
	/* the limit counts four bytes a sample: 1000 samples fit 4000 bytes, not 3999 */
	pcm = NULL;
	CU_ASSERT_EQUAL(mb_audio_load_pcm(p, 16000, true, 3999, &pcm, &len, NULL, err, sizeof(err)),
			-EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "4000 bytes of 32-bit float PCM"));
	CU_ASSERT_PTR_NULL(pcm);
}

/* Float samples beyond [-1, 1] clip; NaN reads as silence. */
static void
test_clipping(void)
{
	SF_INFO info = {
		.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
	const char *p = path_of("clip.wav");
	float f[5] = {2.0f, -2.0f, NAN, 0.5f, -1.0f};
	uint8_t *pcm = NULL;
	uint32_t len = 0;
	char err[512];
	SNDFILE *sf = sf_open(p, SFM_WRITE, &info);

	CU_ASSERT_FATAL(sf != NULL);
	CU_ASSERT_EQUAL(sf_writef_float(sf, f, 5), 5);
	sf_close(sf);
	CU_ASSERT_EQUAL_FATAL(mb_audio_load_pcm16(p, 8000, 0, &pcm, &len, NULL, err, sizeof(err)),
			      0);
	CU_ASSERT_EQUAL_FATAL(len, 10);
	CU_ASSERT_EQUAL(sample(pcm, 0), 32767);
	CU_ASSERT_EQUAL(sample(pcm, 1), -32768);
	CU_ASSERT_EQUAL(sample(pcm, 2), 0);
	CU_ASSERT_EQUAL(sample(pcm, 3), 16384);
	CU_ASSERT_EQUAL(sample(pcm, 4), -32768);
	free(pcm);
}

static void
test_lengths(void)
{
	CU_ASSERT_EQUAL(mb_audio_resampled_length(44100, 44100, 16000), 16000);
	CU_ASSERT_EQUAL(mb_audio_resampled_length(882, 44100, 16000), 320);
	CU_ASSERT_EQUAL(mb_audio_resampled_length(5512, 44100, 16000), 2000); /* 1999.82 */
	CU_ASSERT_EQUAL(mb_audio_resampled_length(1, 44100, 16000), 0);
	CU_ASSERT_EQUAL(mb_audio_resampled_length(3, 16000, 48000), 9);
	CU_ASSERT_EQUAL(mb_audio_resampled_length(7, 22050, 22050), 7);
	CU_ASSERT_EQUAL(mb_audio_resampled_length(MB_AUDIO_MAX_FRAMES, 8000, MB_AUDIO_MAX_RATE),
			MB_AUDIO_MAX_FRAMES * 125);
}

/* Expect @rc from loading @path at @rate within @max_bytes, with @words in the message. */
static void
expect_refusal(const char *path, uint32_t rate, uint64_t max_bytes, int rc, const char *words)
{
	uint8_t *pcm = (uint8_t *)"x";
	uint32_t len = 7;
	char err[512] = "";
	int got = mb_audio_load_pcm16(path, rate, max_bytes, &pcm, &len, NULL, err, sizeof(err));

	printf("\n    %d: %s", got, err);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT(pcm == NULL && len == 0);
	CU_ASSERT(strstr(err, path) != NULL);
	CU_ASSERT(strstr(err, words) != NULL);
}

static void
test_refusals(void)
{
	const double amp[1] = {0.5};
	const char *empty = path_of("empty.wav"), *text = path_of("notes.txt");
	const char *nodata = path_of("nodata.wav"), *one = path_of("one.wav");
	const char *tone = path_of("tone8k.wav");
	SF_INFO info = {
		.samplerate = 44100, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
	FILE *f;
	SNDFILE *sf;
	short s = 100;

	expect_refusal(path_of("missing.wav"), 16000, 0, -ENOENT, "No such file");
	expect_refusal(g_dir, 16000, 0, -EISDIR, "directory");
	f = fopen(empty, "w");
	CU_ASSERT_FATAL(f != NULL);
	fclose(f);
	expect_refusal(empty, 16000, 0, -ENODATA, "empty");
	f = fopen(text, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "these are notes, not audio; libsndfile cannot tell what they are\n");
	fclose(f);
	expect_refusal(text, 16000, 0, -EINVAL, "not an audio file");
	/* a WAV header and no samples */
	sf = sf_open(nodata, SFM_WRITE, &info);
	CU_ASSERT_FATAL(sf != NULL);
	sf_close(sf);
	expect_refusal(nodata, 16000, 0, -ENODATA, "no audio");
	/* one sample at 44.1 kHz is nothing at 16 kHz */
	sf = sf_open(one, SFM_WRITE, &info);
	CU_ASSERT_FATAL(sf != NULL);
	CU_ASSERT_EQUAL(sf_writef_short(sf, &s, 1), 1);
	sf_close(sf);
	expect_refusal(one, 16000, 0, -ENODATA, "too short");
	/* 2 s at 8 kHz is 64000 bytes at 16 kHz: over a 50000-byte limit, fine under 64000 */
	CU_ASSERT_FATAL(
		write_tone(tone, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, amp, 440, 2.0) == 0);
	expect_refusal(tone, 16000, 50000, -EFBIG, "over the limit of 50000 bytes");
	expect_refusal(tone, 0, 0, -EINVAL, "target rate 0 Hz");
	expect_refusal(tone, MB_AUDIO_MAX_RATE + 1, 0, -EINVAL, "target rate");
	{
		uint8_t *pcm = NULL;
		uint32_t len = 0;
		char err[256];

		CU_ASSERT_EQUAL(
			mb_audio_load_pcm16(tone, 16000, 64000, &pcm, &len, NULL, err, sizeof(err)),
			0);
		CU_ASSERT_EQUAL(len, 64000);
		free(pcm);
	}
}

/* The clip API: a read, then two rates from one decoding; fini is idempotent. */
static void
test_clip_two_rates(void)
{
	const double amp[2] = {0.3, 0.3};
	const char *p = path_of("tone32k.wav");
	struct mb_audio_clip c;
	struct mb_audio_info info;
	uint8_t *a = NULL, *b = NULL;
	uint32_t la = 0, lb = 0;
	char err[512];

	CU_ASSERT_FATAL(write_tone(p, SF_FORMAT_WAV | SF_FORMAT_PCM_24, 32000, 2, amp, 440, 0.5) ==
			0);
	CU_ASSERT_EQUAL_FATAL(mb_audio_probe(p, &info, err, sizeof(err)), 0);
	CU_ASSERT(info.rate == 32000 && info.channels == 2 && info.frames == 16000);
	CU_ASSERT(strstr(info.format, "WAV") != NULL && strstr(info.format, "24 bit") != NULL);
	CU_ASSERT_EQUAL_FATAL(mb_audio_read(p, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.info.frames, 16000);
	CU_ASSERT_EQUAL(mb_audio_to_pcm16(&c, p, 16000, 0, &a, &la, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(mb_audio_to_pcm16(&c, p, 48000, 0, &b, &lb, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(la, 8000 * 2);
	CU_ASSERT_EQUAL(lb, 24000 * 2);
	CU_ASSERT(fabs(crossing_hz(a, la / 2, 16000) - 440) <= 4.4);
	CU_ASSERT(fabs(crossing_hz(b, lb / 2, 48000) - 440) <= 4.4);
	mb_audio_clip_fini(&c);
	CU_ASSERT(c.mono == NULL);
	mb_audio_clip_fini(&c);
	mb_audio_clip_fini(NULL);
	free(a);
	free(b);
}

static int
suite_init(void)
{
	g_dir = mb_test_temp_dir();
	return 0;
}

static const struct mb_test_case cases[] = {
	{"44.1 kHz stereo float WAV at 16 and 48 kHz: length, 440 Hz, mix-down level",
	 test_wav_float_stereo_44100},
	{"22.05 kHz FLAC at 16 kHz: length, 440 Hz", test_flac_22050},
	{"44.1 kHz Ogg/Vorbis at 16 kHz: length, 440 Hz", test_ogg_vorbis},
	{"16 kHz 16-bit at its own rate: the exact samples", test_same_rate_exact},
	{"clipping and NaN", test_clipping},
	{"32-bit float PCM: exact at the file's rate, the 16-bit path rounded from it, the limit",
	 test_f32},
	{"resampled lengths", test_lengths},
	{"refusals: missing, directory, empty, not audio, no samples, too short, too long, rate",
	 test_refusals},
	{"one decoding, two rates; clip lifecycle", test_clip_two_rates},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"mb_audio", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("audio_test", suites);
}
