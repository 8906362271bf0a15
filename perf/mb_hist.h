/**
 * @file
 * A log-bucketed latency histogram in the manner of HdrHistogram: fixed memory, O(1)
 * record, percentiles with a stated relative precision.
 *
 * Values are unsigned 64-bit integers (mediabatch-perf records nanoseconds). A value below
 * 2^MB_HIST_SUB_BITS (128) has a bucket of its own and is reported exactly. Above that,
 * each power of two [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket is at most
 * 1/128 of its lower bound wide; a percentile is reported as its bucket's midpoint (clamped
 * to the exact min and max), which is within 1/256 (0.39%) of the true value of the sample
 * at that rank. The whole u64 range is covered (7,424 buckets, 58 KiB); min, max, count and
 * mean are exact.
 *
 * Percentiles use the nearest-rank definition: percentile q (0 < q <= 100) is the smallest
 * recorded value v such that at least q% of the values are <= v; q = 100 is the max.
 *
 * Threads: a histogram belongs to one thread at a time; no internal locking.
 */
#ifndef MB_HIST_H
#define MB_HIST_H

#include <stdint.h>

#define MB_HIST_SUB_BITS 7
#define MB_HIST_SUB (1u << MB_HIST_SUB_BITS)
#define MB_HIST_BUCKETS ((64 - MB_HIST_SUB_BITS + 1) * MB_HIST_SUB)
/** Worst relative error of a reported percentile (midpoint of a 1/128-wide bucket). */
#define MB_HIST_REL_PRECISION (1.0 / (2.0 * MB_HIST_SUB))

struct mb_hist {
	uint64_t count;
	uint64_t min, max;
	long double sum;
	uint64_t buckets[MB_HIST_BUCKETS];
};

/** Allocate an empty histogram. Returns 0 or -ENOMEM. Free with mb_hist_destroy(). */
int mb_hist_create(struct mb_hist **out);

/** Free @p h and set *@p h to NULL. NULL accepted. */
void mb_hist_destroy(struct mb_hist **h);

/** Empty @p h. */
void mb_hist_reset(struct mb_hist *h);

/** Record @p value once. */
void mb_hist_record(struct mb_hist *h, uint64_t value);

/** Record @p value @p n times. */
void mb_hist_record_n(struct mb_hist *h, uint64_t value, uint64_t n);

/** Add every value of @p src into @p dst. */
void mb_hist_merge(struct mb_hist *dst, const struct mb_hist *src);

/**
 * Percentile @p q (0 < q <= 100; smaller q are taken as the min) by nearest rank, within
 * MB_HIST_REL_PRECISION of the exact value. 0 for an empty histogram.
 */
uint64_t mb_hist_percentile(const struct mb_hist *h, double q);

/** Exact mean (0 when empty). */
double mb_hist_mean(const struct mb_hist *h);

/** Fraction of recorded values <= @p value, to the resolution of the buckets. */
double mb_hist_cdf_at(const struct mb_hist *h, uint64_t value);

/** Bucket index of @p value (exposed for tests). */
unsigned int mb_hist_bucket_of(uint64_t value);

/** Smallest value in bucket @p i, and its width (1 for the exact buckets). */
uint64_t mb_hist_bucket_low(unsigned int i);
uint64_t mb_hist_bucket_width(unsigned int i);

#endif /* MB_HIST_H */
