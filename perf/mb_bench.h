/**
 * @file
 * Small helpers shared by the benchmark programs: wall time and medians.
 */
#ifndef MB_BENCH_H
#define MB_BENCH_H

#include <stdlib.h>
#include <time.h>

static inline double
mb_bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int
mb_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/** Median of @p n values; sorts @p v in place. */
static inline double
mb_bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), mb_bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* MB_BENCH_H */
