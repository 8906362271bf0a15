/*
 * audio.c: audio files to the service's PCM16 payloads (mb_audio.h).
 *
 * libsndfile opens the file and names its container and encoding; its samples are read as
 * floats (integer formats normalised to [-1, 1) by libsndfile, float formats as stored) in
 * blocks of BLOCK_FRAMES frames and averaged over the channels into one mono buffer at the
 * file's rate. libsoxr then resamples that buffer in one call (soxr_oneshot, SOXR_HQ: 20-bit
 * precision, linear phase, one thread), and the floats become 16-bit PCM: x * 32768 rounded
 * to nearest and clipped, the inverse of libsndfile's scaling, so a 16-bit file sent at its
 * own rate keeps its exact samples. No dither: the same file always gives the same bytes.
 *
 * Bounds are checked from the header before any decoding (MB_AUDIO_MAX_FRAMES samples per
 * channel, the caller's byte limit at the target rate), so a huge or lying header costs
 * nothing. Owns nothing between calls; the clip's buffer belongs to the caller.
 */
#include "mb_audio.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>
#include <soxr.h>

#define BLOCK_FRAMES 4096
/* a mixed-down sample beyond this is clipped before resampling (keeps infinities out) */
#define SAMPLE_LIMIT 16.0f

/* libsndfile's names of the container and the encoding of @format. */
static void
format_name(int format, char *buf, size_t len)
{
	SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK};
	SF_FORMAT_INFO sub = {.format = format & SF_FORMAT_SUBMASK};
	const char *m = "unknown container", *s = "unknown encoding";

	if (sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof(major)) == 0 && major.name)
		m = major.name;
	if (sf_command(NULL, SFC_GET_FORMAT_INFO, &sub, sizeof(sub)) == 0 && sub.name)
		s = sub.name;
	snprintf(buf, len, "%s, %s", m, s);
}

/* Open @path for reading and check its header; the handle, or NULL with *rc and a message. */
static SNDFILE *
open_checked(const char *path, struct mb_audio_info *info, int *rc, char *err, size_t err_len)
{
	SF_INFO sfi = {0};
	struct stat st;
	SNDFILE *sf;

	memset(info, 0, sizeof(*info));
	if (stat(path, &st) != 0) {
		*rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		*rc = -EISDIR;
		snprintf(err, err_len, "%s: is a directory, not an audio file", path);
		return NULL;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0) {
		*rc = -ENODATA;
		snprintf(err, err_len, "%s: empty file (0 bytes)", path);
		return NULL;
	}
	if (access(path, R_OK) != 0) {
		*rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return NULL;
	}
	sf = sf_open(path, SFM_READ, &sfi);
	if (sf == NULL) {
		*rc = -EINVAL;
		snprintf(err, err_len, "%s: not an audio file libsndfile can read: %s", path,
			 sf_strerror(NULL));
		return NULL;
	}
	format_name(sfi.format, info->format, sizeof(info->format));
	info->rate = sfi.samplerate > 0 ? (uint32_t)sfi.samplerate : 0;
	info->channels = sfi.channels > 0 ? (uint32_t)sfi.channels : 0;
	info->frames = sfi.frames > 0 ? (uint64_t)sfi.frames : 0;
	*rc = 0;
	if (sfi.samplerate <= 0 || (uint32_t)sfi.samplerate > MB_AUDIO_MAX_RATE) {
		*rc = -EINVAL;
		snprintf(err, err_len, "%s: sample rate %d Hz (%s): want 1..%u", path,
			 sfi.samplerate, info->format, MB_AUDIO_MAX_RATE);
	} else if (sfi.channels < 1 || sfi.channels > MB_AUDIO_MAX_CHANNELS) {
		*rc = -EINVAL;
		snprintf(err, err_len, "%s: %d channels (%s): want 1..%d", path, sfi.channels,
			 info->format, MB_AUDIO_MAX_CHANNELS);
	} else if (sfi.frames <= 0) {
		*rc = -ENODATA;
		snprintf(err, err_len, "%s: holds no audio (0 samples; %s)", path, info->format);
	} else if ((uint64_t)sfi.frames > MB_AUDIO_MAX_FRAMES) {
		*rc = -EFBIG;
		snprintf(err, err_len,
			 "%s: %" PRIu64 " samples per channel (%.0f s at %d Hz): longer than the "
			 "%" PRIu64 " this reads",
			 path, (uint64_t)sfi.frames, (double)sfi.frames / sfi.samplerate,
			 sfi.samplerate, MB_AUDIO_MAX_FRAMES);
	}
	if (*rc < 0) {
		sf_close(sf);
		return NULL;
	}
	return sf;
}

int
mb_audio_probe(const char *path, struct mb_audio_info *info, char *err, size_t err_len)
{
	int rc;
	SNDFILE *sf = open_checked(path, info, &rc, err, err_len);

	if (sf != NULL)
		sf_close(sf);
	return rc;
}

int
mb_audio_read(const char *path, struct mb_audio_clip *out, char *err, size_t err_len)
{
	struct mb_audio_info info;
	int rc;
	SNDFILE *sf = open_checked(path, &info, &rc, err, err_len);
	float *block = NULL, *mono = NULL;
	uint64_t got = 0, cap = 0;
	uint32_t ch = info.channels;

	memset(out, 0, sizeof(*out));
	if (sf == NULL)
		return rc;
	block = malloc(sizeof(float) * BLOCK_FRAMES * ch);
	if (block == NULL)
		goto nomem;
	while (got < info.frames) {
		sf_count_t want = (sf_count_t)(info.frames - got < BLOCK_FRAMES ? info.frames - got
										: BLOCK_FRAMES);
		sf_count_t n;

		/* grown as samples come (a header may promise more than the file holds) */
		if (got + (uint64_t)want > cap) {
			uint64_t c = cap ? cap * 2 : UINT64_C(1) << 16;
			float *m;

			if (c > info.frames)
				c = info.frames;
			m = realloc(mono, sizeof(float) * c);
			if (m == NULL)
				goto nomem;
			mono = m;
			cap = c;
		}
		n = sf_readf_float(sf, block, want);

		for (sf_count_t i = 0; i < n; i++) {
			float sum = 0;

			for (uint32_t c = 0; c < ch; c++) {
				float v = block[(size_t)i * ch + c];

				sum += isnan(v) ? 0.0f : v;
			}
			sum /= (float)ch;
			mono[got + (uint64_t)i] = sum > SAMPLE_LIMIT	? SAMPLE_LIMIT
						  : sum < -SAMPLE_LIMIT ? -SAMPLE_LIMIT
									: sum;
		}
		got += n > 0 ? (uint64_t)n : 0;
		if (n < want)
			break;
	}
	if (sf_error(sf) != SF_ERR_NO_ERROR) {
		rc = -EIO;
		snprintf(err, err_len, "%s: decoding failed after %" PRIu64 " samples: %s", path,
			 got, sf_strerror(sf));
		goto fail;
	}
	if (got == 0) {
		rc = -ENODATA;
		snprintf(err, err_len, "%s: holds no audio (0 samples decoded; %s)", path,
			 info.format);
		goto fail;
	}
	free(block);
	sf_close(sf);
	info.frames = got;
	out->info = info;
	out->mono = mono;
	return 0;
nomem:
	rc = -ENOMEM;
	snprintf(err, err_len, "%s: out of memory for %" PRIu64 " samples", path, info.frames);
fail:
	free(block);
	free(mono);
	sf_close(sf);
	return rc;
}

void
mb_audio_clip_fini(struct mb_audio_clip *c)
{
	if (c == NULL)
		return;
	free(c->mono);
	memset(c, 0, sizeof(*c));
}

uint64_t
mb_audio_resampled_length(uint64_t frames, uint32_t from, uint32_t to)
{
	if (from == 0)
		return 0;
	if (from == to)
		return frames;
	/* exact for every length this module reads: frames < 2^27, rates < 2^20 */
	return (frames * to + from / 2) / from;
}

/* Check that @frames at @from Hz fit @max_bytes as @width-byte PCM at @rate; 0 or -errno +
 * message. */
static int
check_size(const char *what, uint64_t frames, uint32_t from, uint32_t rate, uint32_t width,
	   uint64_t max_bytes, uint64_t *n, char *err, size_t err_len)
{
	if (rate < 1 || rate > MB_AUDIO_MAX_RATE) {
		snprintf(err, err_len, "%s: target rate %u Hz: want 1..%u", what, rate,
			 MB_AUDIO_MAX_RATE);
		return -EINVAL;
	}
	if (max_bytes == 0 || max_bytes > MB_AUDIO_MAX_BYTES)
		max_bytes = MB_AUDIO_MAX_BYTES;
	*n = mb_audio_resampled_length(frames, from, rate);
	if (*n == 0) {
		snprintf(err, err_len,
			 "%s: %" PRIu64 " samples at %u Hz leave no sample at %u Hz (too short)",
			 what, frames, from, rate);
		return -ENODATA;
	}
	if (*n * width > max_bytes) {
		snprintf(err, err_len,
			 "%s: %.2f s of audio is %" PRIu64 " bytes of %s PCM at %u Hz, over "
			 "the limit of %" PRIu64 " bytes",
			 what, (double)frames / from, *n * width,
			 width == 4 ? "32-bit float" : "16-bit", rate, max_bytes);
		return -EFBIG;
	}
	return 0;
}

/* @p n samples as little-endian F32, exactly. */
static void
put_f32le(const float *src, uint64_t n, uint8_t *b)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &src[i], 4);
		b[4 * i] = (uint8_t)(u & 0xff);
		b[4 * i + 1] = (uint8_t)((u >> 8) & 0xff);
		b[4 * i + 2] = (uint8_t)((u >> 16) & 0xff);
		b[4 * i + 3] = (uint8_t)(u >> 24);
	}
}

/* @p n samples as little-endian 16-bit PCM: scaled by 32768, clipped, NaN as 0. */
static void
put_s16le(const float *src, uint64_t n, uint8_t *b)
{
	for (uint64_t i = 0; i < n; i++) {
		float x = src[i] * 32768.0f;
		int32_t s;

		if (!(x < 32767.0f))
			s = x > 0 ? 32767 : 0; /* NaN: 0 */
		else if (x < -32768.0f)
			s = -32768;
		else
			s = (int32_t)lrintf(x);
		b[2 * i] = (uint8_t)((uint32_t)s & 0xff);
		b[2 * i + 1] = (uint8_t)(((uint32_t)s >> 8) & 0xff);
	}
}

int
mb_audio_to_pcm(const struct mb_audio_clip *c, const char *what, uint32_t rate, bool f32,
		uint64_t max_bytes, uint8_t **pcm, uint32_t *len, char *err, size_t err_len)
{
	const uint32_t width = f32 ? 4 : 2;
	uint64_t n;
	float *res = NULL;
	const float *src = c->mono;
	uint8_t *b;
	int rc = check_size(what, c->info.frames, c->info.rate, rate, width, max_bytes, &n, err,
			    err_len);

	*pcm = NULL;
	*len = 0;
	if (rc < 0)
		return rc;
	b = malloc((size_t)n * width);
	if (b == NULL) {
		snprintf(err, err_len, "%s: out of memory for %" PRIu64 " samples", what, n);
		return -ENOMEM;
	}
	if (rate != c->info.rate) {
		soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
		soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
		soxr_runtime_spec_t rt = soxr_runtime_spec(1);
		size_t idone = 0, odone = 0;
		soxr_error_t e;

		res = malloc(sizeof(float) * (size_t)n);
		if (res == NULL) {
			free(b);
			snprintf(err, err_len, "%s: out of memory for %" PRIu64 " samples", what,
				 n);
			return -ENOMEM;
		}
		e = soxr_oneshot(c->info.rate, rate, 1, c->mono, (size_t)c->info.frames, &idone,
				 res, (size_t)n, &odone, &io, &q, &rt);
		if (e != NULL) {
			free(res);
			free(b);
			snprintf(err, err_len, "%s: resampling %u Hz to %u Hz failed: %s", what,
				 c->info.rate, rate, e);
			return -EIO;
		}
		/* soxr gives round(frames * ratio); pad a shortfall, should it ever be one */
		for (size_t i = odone; i < n; i++)
			res[i] = 0;
		src = res;
	}
	if (f32)
		put_f32le(src, n, b);
	else
		put_s16le(src, n, b);
	free(res);
	*pcm = b;
	*len = (uint32_t)(n * width);
	return 0;
}

int
mb_audio_to_pcm16(const struct mb_audio_clip *c, const char *what, uint32_t rate,
		  uint64_t max_bytes, uint8_t **pcm, uint32_t *len, char *err, size_t err_len)
{
	return mb_audio_to_pcm(c, what, rate, false, max_bytes, pcm, len, err, err_len);
}

int
mb_audio_load_pcm16(const char *path, uint32_t rate, uint64_t max_bytes, uint8_t **pcm,
		    uint32_t *len, struct mb_audio_info *info, char *err, size_t err_len)
{
	return mb_audio_load_pcm(path, rate, false, max_bytes, pcm, len, info, err, err_len);
}

int
mb_audio_load_pcm(const char *path, uint32_t rate, bool f32, uint64_t max_bytes, uint8_t **pcm,
		  uint32_t *len, struct mb_audio_info *info, char *err, size_t err_len)
{
	struct mb_audio_info probe;
	struct mb_audio_clip clip;
	uint64_t n;
	int rc;

	*pcm = NULL;
	*len = 0;
	rc = mb_audio_probe(path, &probe, err, err_len);
	if (rc == 0)
		rc = check_size(path, probe.frames, probe.rate, rate, f32 ? 4 : 2, max_bytes, &n,
				err, err_len);
	if (rc == 0)
		rc = mb_audio_read(path, &clip, err, err_len);
	if (rc < 0)
		return rc;
	rc = mb_audio_to_pcm(&clip, path, rate, f32, max_bytes, pcm, len, err, err_len);
	if (info != NULL)
		*info = clip.info;
	mb_audio_clip_fini(&clip);
	return rc;
}
