/*
 * hist_test.c: mediabatch-perf's log-bucketed histogram: exact small values, percentiles of
 * known distributions within the documented precision (0.39%), against an exact sort of
 * random data, bucket geometry, merge, the u64 extremes and the CDF.
 */
#include <math.h>
#include <stdlib.h>

#include "mb_hist.h"
#include "mb_test.h"

/* Exact nearest-rank percentile of sorted @v (n values). */
static uint64_t
exact_pct(const uint64_t *v, size_t n, double q)
{
	/* q * n exactly, for the q used here (at most two decimals) */
	size_t rank = (size_t)((llround(q * 100) * (long long)n + 9999) / 10000);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
within(uint64_t got, uint64_t want)
{
	double rel = want ? fabs((double)got - (double)want) / (double)want : (double)got;
	bool ok = rel <= MB_HIST_REL_PRECISION;

	if (!ok)
		printf("\n    got %llu, want %llu (rel %.5f)", (unsigned long long)got,
		       (unsigned long long)want, rel);
	return ok;
}

static void
test_small_values_exact(void)
{
	struct mb_hist *h;

	CU_ASSERT_FATAL(mb_hist_create(&h) == 0);
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 50), 0); /* empty */
	for (uint64_t v = 0; v < 128; v++)
		mb_hist_record(h, v);
	CU_ASSERT_EQUAL(h->count, 128);
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 50), 63);	 /* rank 64 */
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 90), 115); /* rank ceil(115.2) = 116 */
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 99), 126); /* rank ceil(126.72) = 127 */
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 100), 127);
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 0), 0);
	CU_ASSERT_DOUBLE_EQUAL(mb_hist_mean(h), 63.5, 1e-12);
	mb_hist_reset(h);
	mb_hist_record_n(h, 7, 1000);
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 0.1), 7);
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 99.9), 7);
	mb_hist_destroy(&h);
	CU_ASSERT_PTR_NULL(h);
	mb_hist_destroy(&h); /* NULL accepted */
}

static void
test_uniform_million(void)
{
	struct mb_hist *h;

	CU_ASSERT_FATAL(mb_hist_create(&h) == 0);
	for (uint64_t v = 1; v <= 1000000; v++)
		mb_hist_record(h, v);
	/* nearest rank of 1..N: percentile q is exactly q% of N */
	CU_ASSERT(within(mb_hist_percentile(h, 50), 500000));
	CU_ASSERT(within(mb_hist_percentile(h, 90), 900000));
	CU_ASSERT(within(mb_hist_percentile(h, 99), 990000));
	CU_ASSERT(within(mb_hist_percentile(h, 99.9), 999000));
	CU_ASSERT(within(mb_hist_percentile(h, 0.01), 100));
	CU_ASSERT_EQUAL(mb_hist_percentile(h, 100), 1000000); /* max is exact */
	CU_ASSERT_EQUAL(h->min, 1);
	CU_ASSERT_DOUBLE_EQUAL(mb_hist_mean(h), 500000.5, 1e-6);
	/* the CDF at a bucket's edge is the fraction below it, to a bucket's width */
	CU_ASSERT_DOUBLE_EQUAL(mb_hist_cdf_at(h, 500000), 0.5, 0.5 * MB_HIST_REL_PRECISION * 2);
	CU_ASSERT_DOUBLE_EQUAL(mb_hist_cdf_at(h, 2000000), 1.0, 1e-12);
	mb_hist_destroy(&h);
}

/* Log-uniform random values over 1..1e12 against the exact percentiles of a sorted copy. */
static void
test_random_against_sort(void)
{
	enum { N = 200000 };
	static const double qs[] = {0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
	uint64_t *v = malloc(N * sizeof(*v)), seed = 12345;
	struct mb_hist *h;
	int bad = 0;

	CU_ASSERT_FATAL(v != NULL && mb_hist_create(&h) == 0);
	for (int i = 0; i < N; i++) {
		double u = (double)(mb_test_rand(&seed) >> 11) * 0x1.0p-53;

		v[i] = (uint64_t)pow(10.0, 12.0 * u);
		mb_hist_record(h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		bad += !within(mb_hist_percentile(h, qs[i]), exact_pct(v, N, qs[i]));
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(h->min, v[0]);
	CU_ASSERT_EQUAL(h->max, v[N - 1]);
	mb_hist_destroy(&h);
	free(v);
}

static void
test_bucket_geometry(void)
{
	int bad = 0;

	for (unsigned int i = 0; i < MB_HIST_BUCKETS; i++) {
		uint64_t low = mb_hist_bucket_low(i), w = mb_hist_bucket_width(i);

		bad += mb_hist_bucket_of(low) != i;
		bad += mb_hist_bucket_of(low + (w - 1)) != i;
		if (i + 1 < MB_HIST_BUCKETS)
			bad += low + w != mb_hist_bucket_low(i + 1); /* contiguous */
		if (low >= MB_HIST_SUB)
			bad += (double)w / (double)low > 1.0 / MB_HIST_SUB; /* <= 1/128 wide */
		else
			bad += w != 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(UINT64_MAX), MB_HIST_BUCKETS - 1);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(0), 0);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(128), 128);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(255), 255);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(256), 256);
	CU_ASSERT_EQUAL(mb_hist_bucket_of(257), 256); /* width 2 from 256 on */
}

static void
test_merge_and_extremes(void)
{
	struct mb_hist *a, *b, *all;
	uint64_t seed = 99;

	CU_ASSERT_FATAL(mb_hist_create(&a) == 0 && mb_hist_create(&b) == 0 &&
			mb_hist_create(&all) == 0);
	for (int i = 0; i < 10000; i++) {
		uint64_t x = mb_test_rand(&seed) % 5000000;

		mb_hist_record(i % 2 ? a : b, x);
		mb_hist_record(all, x);
	}
	mb_hist_merge(a, b);
	CU_ASSERT_EQUAL(a->count, all->count);
	CU_ASSERT_EQUAL(a->min, all->min);
	CU_ASSERT_EQUAL(a->max, all->max);
	CU_ASSERT_EQUAL(mb_hist_percentile(a, 99), mb_hist_percentile(all, 99));
	CU_ASSERT_DOUBLE_EQUAL(mb_hist_mean(a), mb_hist_mean(all), 1e-6);
	mb_hist_reset(a);
	mb_hist_record(a, UINT64_MAX);
	mb_hist_record(a, 1);
	CU_ASSERT_EQUAL(mb_hist_percentile(a, 100), UINT64_MAX);
	CU_ASSERT_EQUAL(mb_hist_percentile(a, 50), 1);
	CU_ASSERT(within(mb_hist_percentile(a, 51), UINT64_MAX)); /* top bucket, no overflow */
	mb_hist_destroy(&a);
	mb_hist_destroy(&b);
	mb_hist_destroy(&all);
}

static const struct mb_test_case cases[] = {
	{"values below 128 are exact; empty; one repeated value", test_small_values_exact},
	{"uniform 1..1e6: p50 p90 p99 p99.9 within 0.39%, exact max and mean",
	 test_uniform_million},
	{"200000 log-uniform values: every percentile within 0.39% of the exact sort",
	 test_random_against_sort},
	{"buckets contiguous, each at most 1/128 of its lower bound wide", test_bucket_geometry},
	{"merge equals recording together; u64 extremes", test_merge_and_extremes},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"perf histogram", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("hist_test", suites);
}
