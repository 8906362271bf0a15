/*
 * loadgen.c: random streams, arrivals, distributions and the model mix (mb_loadgen.h).
 *
 * The generator is xoshiro256** (Blackman and Vigna), seeded by running splitmix64 over the
 * seed, as its authors recommend; uniform doubles take its top 53 bits. Exponential gaps are
 * -ln(1 - u) / rate (inverse transform; 1 - u is never 0). Normals come from Box-Muller,
 * one per call (the second value is dropped to keep the stream simple to reason about).
 * With a replay (--media), the model is drawn as always and the request is the replay's next
 * file for that model (mb_replay.h), so the seed still fixes the sequence of models.
 *
 * Owns nothing beyond the structs the caller passes. One thread per object.
 */
#include "mb_loadgen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_replay.h"
#include "mediabatch/client.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
mb_rng_seed(struct mb_rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t
mb_rng_next(struct mb_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
mb_rng_uniform(struct mb_rng *r)
{
	return (double)(mb_rng_next(r) >> 11) * 0x1.0p-53;
}

double
mb_rng_exponential(struct mb_rng *r, double rate)
{
	return -log1p(-mb_rng_uniform(r)) / rate;
}

double
mb_rng_normal(struct mb_rng *r)
{
	double u1 = 1.0 - mb_rng_uniform(r), u2 = mb_rng_uniform(r); /* u1 in (0, 1] */

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void
mb_arrivals_init(struct mb_arrivals *a, uint64_t seed, double rate, double t0)
{
	mb_rng_seed(&a->rng, seed);
	a->rate = rate;
	a->next = t0 + mb_rng_exponential(&a->rng, rate);
}

double
mb_arrivals_next(struct mb_arrivals *a)
{
	double t = a->next;

	a->next += mb_rng_exponential(&a->rng, a->rate);
	return t;
}

/* ---- distributions ---- */

/* Parse "X" or "X,Y" of positive finite numbers; returns how many were read, or -1. */
static int
parse_numbers(const char *s, double *x, double *y)
{
	char *end;

	*x = strtod(s, &end);
	if (end == s || !isfinite(*x) || *x <= 0)
		return -1;
	if (*end == '\0')
		return 1;
	if (*end != ',')
		return -1;
	s = end + 1;
	*y = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(*y) || *y <= 0)
		return -1;
	return 2;
}

int
mb_dist_parse(const char *spec, struct mb_dist *out, char *err, size_t err_len)
{
	const char *colon = strchr(spec, ':');
	double x = 0, y = 0;
	int n;

	if (colon == NULL || strncmp(spec, "fixed:", 6) == 0) {
		n = parse_numbers(colon ? colon + 1 : spec, &x, &y);
		if (n != 1 || x > 3600)
			goto bad;
		*out = (struct mb_dist){MB_DIST_FIXED, x, x};
		return 0;
	}
	n = parse_numbers(colon + 1, &x, &y);
	if (strncmp(spec, "uniform:", 8) == 0) {
		if (n != 2 || y < x || y > 3600)
			goto bad;
		*out = (struct mb_dist){MB_DIST_UNIFORM, x, y};
		return 0;
	}
	if (strncmp(spec, "lognormal:", 10) == 0) {
		if (n != 2 || x > 3600 || y > 5)
			goto bad;
		*out = (struct mb_dist){MB_DIST_LOGNORMAL, x, y};
		return 0;
	}
bad:
	snprintf(err, err_len,
		 "'%s': want SECONDS, fixed:SECONDS, uniform:LO,HI (0 < LO <= HI <= 3600) or "
		 "lognormal:MEDIAN,SIGMA (0 < MEDIAN <= 3600, 0 < SIGMA <= 5)",
		 spec);
	return -EINVAL;
}

double
mb_dist_sample(const struct mb_dist *d, struct mb_rng *r)
{
	switch (d->kind) {
	case MB_DIST_UNIFORM:
		return d->a + (d->b - d->a) * mb_rng_uniform(r);
	case MB_DIST_LOGNORMAL:
		return d->a * exp(d->b * mb_rng_normal(r));
	case MB_DIST_FIXED:
	default:
		return d->a;
	}
}

void
mb_dist_format(const struct mb_dist *d, char *buf, size_t len)
{
	switch (d->kind) {
	case MB_DIST_UNIFORM:
		snprintf(buf, len, "uniform:%g,%g", d->a, d->b);
		break;
	case MB_DIST_LOGNORMAL:
		snprintf(buf, len, "lognormal:%g,%g", d->a, d->b);
		break;
	case MB_DIST_FIXED:
	default:
		snprintf(buf, len, "fixed:%g", d->a);
		break;
	}
}

/* ---- the mix ---- */

static const struct {
	const char *name;
	enum mb_media_kind kind;
	double max_seconds;
	uint32_t rate;
} g_known[] = {
	{"identity", MB_KIND_TENSOR, 0, 0},
	{"logmel", MB_KIND_AUDIO, 30, MB_LOADGEN_RATE},
	{"whisper", MB_KIND_AUDIO, 30, MB_LOADGEN_RATE},
	{"clap", MB_KIND_AUDIO, 10, 48000}, /* gpu/mb_models.h MB_CLAP_SAMPLE_RATE */
	{"videomae", MB_KIND_VIDEO, 0, 0},
};

int
mb_mix_parse(const char *spec, struct mb_mix *out, char *err, size_t err_len)
{
	const char *p = spec;

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		const char *end = strchr(p, ','), *colon;
		size_t len = end ? (size_t)(end - p) : strlen(p), name_len;
		struct mb_mix_entry *e;
		char item[64];

		if (len == 0 || len >= sizeof(item))
			goto bad;
		memcpy(item, p, len);
		item[len] = '\0';
		if (out->n == MB_MIX_MAX) {
			snprintf(err, err_len, "--mix: at most %d models", MB_MIX_MAX);
			return -EINVAL;
		}
		e = &out->e[out->n];
		colon = strchr(item, ':');
		name_len = colon ? (size_t)(colon - item) : len;
		if (name_len == 0 || name_len > MB_PROTO_MODEL_LEN)
			goto bad;
		memcpy(e->model, item, name_len);
		e->model[name_len] = '\0';
		e->weight = 1;
		if (colon != NULL) {
			char *wend;

			e->weight = strtod(colon + 1, &wend);
			if (wend == colon + 1 || *wend != '\0' || !isfinite(e->weight) ||
			    e->weight <= 0 || e->weight > 1e6)
				goto bad;
		}
		for (int i = 0; i < out->n; i++)
			if (strcmp(out->e[i].model, e->model) == 0) {
				snprintf(err, err_len, "--mix: model '%s' given twice", e->model);
				return -EINVAL;
			}
		e->kind = MB_KIND_TENSOR;
		for (size_t k = 0; k < sizeof(g_known) / sizeof(g_known[0]); k++)
			if (strcmp(g_known[k].name, e->model) == 0) {
				e->kind = g_known[k].kind;
				e->max_seconds = g_known[k].max_seconds;
				e->rate = g_known[k].rate;
			}
		out->total += e->weight;
		out->n++;
		p += len;
		if (*p == ',')
			p++;
		if (end != NULL && *p == '\0')
			goto bad;
	}
	if (out->n == 0)
		goto bad;
	return 0;
bad:
	snprintf(err, err_len,
		 "--mix '%s': want MODEL[:WEIGHT],... (names of 1..16 characters, weights > 0 "
		 "and <= 1e6)",
		 spec);
	return -EINVAL;
}

int
mb_mix_pick(const struct mb_mix *m, struct mb_rng *r)
{
	double x = mb_rng_uniform(r) * m->total;

	for (int i = 0; i < m->n; i++) {
		if (x < m->e[i].weight)
			return i;
		x -= m->e[i].weight;
	}
	return m->n - 1; /* rounding at the top end */
}

/* ---- requests ---- */

int
mb_loadgen_init(struct mb_loadgen *lg, const struct mb_mix *mix, const struct mb_dist *seconds,
		uint32_t payload_bytes, uint32_t tenant, uint32_t timeout_ms, uint64_t seed)
{
	if (payload_bytes < 4 || payload_bytes > 4u * 65535 || payload_bytes % 4)
		return -EINVAL;
	lg->mix = *mix;
	lg->seconds = *seconds;
	lg->payload_bytes = payload_bytes;
	lg->tenant = tenant;
	lg->timeout_ms = timeout_ms;
	lg->replay = NULL;
	lg->payload = NULL;
	lg->file = -1;
	/* a stream of its own, apart from the arrivals seeded from the same --seed */
	mb_rng_seed(&lg->rng, seed ^ UINT64_C(0x6d65646961626174));
	return 0;
}

void
mb_loadgen_set_replay(struct mb_loadgen *lg, struct mb_replay *replay)
{
	lg->replay = replay;
}

int
mb_loadgen_next(struct mb_loadgen *lg, uint64_t id, struct mb_request_hdr *h)
{
	int i = mb_mix_pick(&lg->mix, &lg->rng);
	const struct mb_mix_entry *e = &lg->mix.e[i];
	double s;
	uint32_t samples, file;

	lg->payload = NULL;
	lg->file = -1;
	if (lg->replay != NULL) {
		lg->payload = mb_replay_next(lg->replay, i, lg->tenant, id, h, &file);
		lg->file = file;
		h->timeout_ms = lg->timeout_ms;
		return i;
	}
	switch (e->kind) {
	case MB_KIND_AUDIO:
		s = mb_dist_sample(&lg->seconds, &lg->rng);
		if (s < MB_LOADGEN_MIN_SECONDS)
			s = MB_LOADGEN_MIN_SECONDS;
		if (s > e->max_seconds)
			s = e->max_seconds;
		samples = (uint32_t)lround(s * e->rate);
		mb_client_audio_hdr(h, e->model, lg->tenant, id, MB_MEDIA_PCM_S16LE, e->rate,
				    samples * 2);
		break;
	case MB_KIND_VIDEO:
		mb_client_video_hdr(h, e->model, lg->tenant, id, MB_LOADGEN_VIDEO_FRAMES,
				    MB_LOADGEN_VIDEO_SIDE, MB_LOADGEN_VIDEO_SIDE);
		break;
	case MB_KIND_TENSOR:
	default:
		mb_client_tensor_hdr(h, e->model, lg->tenant, id, 1,
				     (uint16_t)(lg->payload_bytes / 4));
		break;
	}
	h->timeout_ms = lg->timeout_ms;
	return i;
}

size_t
mb_loadgen_max_payload(const struct mb_loadgen *lg, enum mb_media_kind kind)
{
	size_t max = 0;

	for (int i = 0; i < lg->mix.n; i++) {
		size_t b = 0;

		if (lg->mix.e[i].kind != kind)
			continue;
		if (kind == MB_KIND_AUDIO)
			b = (size_t)lround(lg->mix.e[i].max_seconds * lg->mix.e[i].rate) * 2;
		else if (kind == MB_KIND_VIDEO)
			b = (size_t)MB_LOADGEN_VIDEO_FRAMES * MB_LOADGEN_VIDEO_SIDE *
			    MB_LOADGEN_VIDEO_SIDE * 3;
		else
			b = lg->payload_bytes;
		if (b > max)
			max = b;
	}
	return max;
}
