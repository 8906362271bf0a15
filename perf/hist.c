/*
 * hist.c: the log-bucketed histogram of mb_hist.h.
 *
 * Bucket layout: index = value for value < 128 (exact). For value >= 128 with its leading
 * bit at position e (7..63), the 7 bits below the leading bit select one of 128 sub-buckets:
 * index = (e - 6) * 128 + ((value >> (e - 7)) - 128). Bucket i covers
 * [low, low + width) with width = 2^(e - 7), so width / low <= 1/128 and the midpoint is
 * within 1/256 of every value in it. Recording is a count-leading-zeros, a shift and an add.
 *
 * Owns nothing but its counters. One thread at a time.
 */
#include "mb_hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int
mb_hist_create(struct mb_hist **out)
{
	struct mb_hist *h = malloc(sizeof(*h));

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;
	mb_hist_reset(h);
	*out = h;
	return 0;
}

void
mb_hist_destroy(struct mb_hist **h)
{
	if (h == NULL || *h == NULL)
		return;
	free(*h);
	*h = NULL;
}

void
mb_hist_reset(struct mb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned int
mb_hist_bucket_of(uint64_t v)
{
	unsigned int e, shift;

	if (v < MB_HIST_SUB)
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v);
	shift = e - MB_HIST_SUB_BITS;
	return (e - MB_HIST_SUB_BITS + 1) * MB_HIST_SUB +
	       (unsigned int)((v >> shift) - MB_HIST_SUB);
}

uint64_t
mb_hist_bucket_low(unsigned int i)
{
	unsigned int block = i / MB_HIST_SUB, sub = i % MB_HIST_SUB;

	if (block == 0)
		return i;
	return ((uint64_t)MB_HIST_SUB + sub) << (block - 1);
}

uint64_t
mb_hist_bucket_width(unsigned int i)
{
	unsigned int block = i / MB_HIST_SUB;

	return block == 0 ? 1 : (uint64_t)1 << (block - 1);
}

void
mb_hist_record_n(struct mb_hist *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	h->buckets[mb_hist_bucket_of(v)] += n;
	h->count += n;
	h->sum += (long double)v * (long double)n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
mb_hist_record(struct mb_hist *h, uint64_t v)
{
	mb_hist_record_n(h, v, 1);
}

void
mb_hist_merge(struct mb_hist *dst, const struct mb_hist *src)
{
	if (src->count == 0)
		return;
	for (unsigned int i = 0; i < MB_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* Midpoint of bucket i, clamped to what was actually recorded. */
static uint64_t
representative(const struct mb_hist *h, unsigned int i)
{
	uint64_t low = mb_hist_bucket_low(i), w = mb_hist_bucket_width(i);
	uint64_t mid = low + w / 2; /* [low, low + w - 1]: within w / 2 of every value */

	if (mid < h->min)
		mid = h->min;
	if (mid > h->max)
		mid = h->max;
	return mid;
}

uint64_t
mb_hist_percentile(const struct mb_hist *h, double q)
{
	uint64_t rank, seen = 0;
	long double x;

	if (h->count == 0)
		return 0;
	if (q >= 100.0)
		return h->max;
	if (!(q > 0.0))
		return h->min;
	/* nearest rank: ceil(q/100 * count), at least 1. q is decimal (99.9, 0.01) and not exact
	 * in binary: take off a relative 1e-12 so 0.01% of 1e6 is rank 100, not 101 */
	x = (long double)q / 100.0L * (long double)h->count;
	rank = (uint64_t)ceill(x - x * 1e-12L);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned int i = 0; i < MB_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return representative(h, i);
	}
	return h->max; /* not reached: the buckets add up to count */
}

double
mb_hist_mean(const struct mb_hist *h)
{
	return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

double
mb_hist_cdf_at(const struct mb_hist *h, uint64_t value)
{
	unsigned int last = mb_hist_bucket_of(value);
	uint64_t seen = 0;

	if (h->count == 0)
		return 0.0;
	for (unsigned int i = 0; i <= last; i++)
		seen += h->buckets[i];
	return (double)seen / (double)h->count;
}
