/**
 * @file
 * What mediabatch-perf sends and when: a seeded random generator, Poisson arrival times,
 * the model mix (`identity:3,logmel:1`), media length distributions
 * (`fixed:2`, `uniform:0.5,10`, `lognormal:2,0.6`), and the request headers built from them.
 *
 * Everything is deterministic for a given seed: the same seed gives the same arrival
 * schedule and the same sequence of (model, media length) whatever the service does.
 * Arrivals and request contents draw from separate streams, so a closed-loop and an
 * open-loop run with one seed send the same requests in the same order.
 *
 * Threads: each object belongs to one thread; no shared state.
 */
#ifndef MB_LOADGEN_H
#define MB_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

/** xoshiro256** seeded through splitmix64. */
struct mb_rng {
	uint64_t s[4];
};

void mb_rng_seed(struct mb_rng *r, uint64_t seed);
uint64_t mb_rng_next(struct mb_rng *r);
/** Uniform in [0, 1), 53 random bits. */
double mb_rng_uniform(struct mb_rng *r);
/** Exponential with mean 1 / @p rate (rate > 0). */
double mb_rng_exponential(struct mb_rng *r, double rate);
/** Standard normal (Box-Muller). */
double mb_rng_normal(struct mb_rng *r);

/**
 * A Poisson process: arrival times whose gaps are exponential with mean 1 / rate, so the
 * count in any window of length T has mean and variance rate * T.
 */
struct mb_arrivals {
	struct mb_rng rng;
	double rate; /**< per second */
	double next; /**< time of the next arrival, seconds on the caller's clock */
};

/** Start a process of @p rate per second (> 0) at time @p t0; the first arrival follows. */
void mb_arrivals_init(struct mb_arrivals *a, uint64_t seed, double rate, double t0);

/** Time of the next arrival, then advance. */
double mb_arrivals_next(struct mb_arrivals *a);

/** A distribution of seconds of media. */
enum mb_dist_kind {
	MB_DIST_FIXED,	   /**< a */
	MB_DIST_UNIFORM,   /**< uniform in [a, b] */
	MB_DIST_LOGNORMAL, /**< median a, sigma b (of the underlying normal) */
};

struct mb_dist {
	enum mb_dist_kind kind;
	double a, b;
};

/**
 * Parse "S", "fixed:S", "uniform:LO,HI" or "lognormal:MEDIAN,SIGMA" (seconds, > 0).
 * Returns 0, or -EINVAL with a message in @p err.
 */
int mb_dist_parse(const char *spec, struct mb_dist *out, char *err, size_t err_len);

/** Draw one value. */
double mb_dist_sample(const struct mb_dist *d, struct mb_rng *r);

/** Write the canonical spec ("lognormal:2,0.6") into @p buf. */
void mb_dist_format(const struct mb_dist *d, char *buf, size_t len);

/** What media a model is sent. */
enum mb_media_kind {
	MB_KIND_TENSOR, /**< F32 tensor of --payload bytes (identity, unknown models) */
	MB_KIND_AUDIO,	/**< PCM_S16LE mono 16 kHz, length from the distribution */
	MB_KIND_VIDEO,	/**< RGB24 16 x 224 x 224 */
	MB_KIND_COUNT,
};

#define MB_MIX_MAX 16

struct mb_mix_entry {
	char model[MB_PROTO_MODEL_LEN + 1];
	double weight;
	enum mb_media_kind kind;
	double max_seconds; /**< audio: longest clip the model takes (lengths are clamped) */
	uint32_t rate;	    /**< audio: its sample rate (Hz; clap 48000, the others 16000) */
};

struct mb_mix {
	int n;
	double total;
	struct mb_mix_entry e[MB_MIX_MAX];
};

/**
 * Parse "MODEL[:WEIGHT],..." (weights > 0, default 1; at most MB_MIX_MAX models; no model
 * twice). The built-in models get their media (identity: tensor; logmel, whisper: audio up
 * to 30 s; clap: 48 kHz audio up to 10 s; videomae: video); other names get a tensor.
 * Returns 0, or -EINVAL with a message in @p err.
 */
int mb_mix_parse(const char *spec, struct mb_mix *out, char *err, size_t err_len);

/** Index of a model drawn by weight. */
int mb_mix_pick(const struct mb_mix *m, struct mb_rng *r);

/** Shortest audio a built-in audio model accepts (400 samples at 16 kHz). */
#define MB_LOADGEN_MIN_SECONDS 0.025
#define MB_LOADGEN_RATE 16000 /* audio models' but clap's (mb_mix_entry.rate) */
#define MB_LOADGEN_VIDEO_FRAMES 16
#define MB_LOADGEN_VIDEO_SIDE 224

struct mb_replay; /* mb_replay.h */

/** The request stream: mix, lengths, fixed fields. */
struct mb_loadgen {
	struct mb_mix mix;
	struct mb_dist seconds;
	uint32_t payload_bytes; /**< tensors: a multiple of 4, 4..262140 */
	uint32_t tenant;
	uint32_t timeout_ms;
	struct mb_rng rng;
	/** --media: the files every request carries (borrowed), or NULL (generated media) */
	struct mb_replay *replay;
	/** after mb_loadgen_next(): the request's payload when it is a file, else NULL */
	const void *payload;
	/** after mb_loadgen_next(): the index of that file in replay->files, else -1 */
	int64_t file;
};

/**
 * Fill @p lg (@p mix and @p seconds copied) with its content stream seeded from @p seed.
 * Returns 0, or -EINVAL for a payload that is not a multiple of 4 in 4..262140.
 */
int mb_loadgen_init(struct mb_loadgen *lg, const struct mb_mix *mix, const struct mb_dist *seconds,
		    uint32_t payload_bytes, uint32_t tenant, uint32_t timeout_ms, uint64_t seed);

/**
 * Make every request carry a file of @p replay (borrowed; loaded for this mix), chosen by
 * mb_replay_next(), instead of generated media. The mix still draws the model.
 */
void mb_loadgen_set_replay(struct mb_loadgen *lg, struct mb_replay *replay);

/**
 * Draw the next request into @p hdr (@p id as request_id); returns the mix index of its
 * model. Its payload is lg->payload when that is not NULL (a file of the replay, lg->file
 * its index); otherwise the first hdr->payload_len bytes of a buffer of
 * mb_loadgen_max_payload(lg, kind) bytes for the model's media kind.
 */
int mb_loadgen_next(struct mb_loadgen *lg, uint64_t id, struct mb_request_hdr *hdr);

/** Longest payload of media @p kind that mb_loadgen_next() can ask for (0 if none). */
size_t mb_loadgen_max_payload(const struct mb_loadgen *lg, enum mb_media_kind kind);

#endif /* MB_LOADGEN_H */
