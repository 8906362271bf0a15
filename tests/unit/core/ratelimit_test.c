/*
 * ratelimit_test.c: token buckets on the virtual clock, the per-key table, and concurrent
 * takes (never more than the bucket allows).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <rte_malloc.h>

#include "mb_env.h"
#include "mb_ratelimit.h"
#include "mb_test.h"

static void
test_bucket_burst_and_refill(void)
{
	struct mb_tb tb;
	uint64_t retry = 0;

	mb_env_clock_use_virtual(10 * MB_NS_PER_S);
	CU_ASSERT_EQUAL_FATAL(mb_tb_init(&tb, 100.0, 5), 0); /* 100/s: one per 10 ms */
	CU_ASSERT_EQUAL(mb_tb_available(&tb), 5);	     /* starts full */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), 0);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, &retry), -EAGAIN);
	CU_ASSERT_EQUAL(retry, 10 * MB_NS_PER_MS);
	mb_env_clock_advance(9 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, &retry), -EAGAIN);
	CU_ASSERT_EQUAL(retry, 1 * MB_NS_PER_MS);
	mb_env_clock_advance(1 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), 0);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), -EAGAIN);
	/* A long idle refills to the burst, not beyond. */
	mb_env_clock_advance(10 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_tb_available(&tb), 5);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 5, NULL), 0);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), -EAGAIN);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 6, NULL), -E2BIG);
	/* A refused take takes nothing. */
	mb_env_clock_advance(30 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 4, NULL), -EAGAIN);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 3, NULL), 0);
	mb_env_clock_use_real();
}

static void
test_bucket_fractional_and_unlimited(void)
{
	struct mb_tb tb;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	CU_ASSERT_EQUAL_FATAL(mb_tb_init(&tb, 0.5, 1), 0); /* one every 2 s */
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), 0);
	mb_env_clock_advance(1999 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), -EAGAIN);
	mb_env_clock_advance(1 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(mb_tb_take(&tb, 1, NULL), 0);

	CU_ASSERT_EQUAL_FATAL(mb_tb_init(&tb, 0.0, 0), 0); /* unlimited */
	for (int i = 0; i < 100000; i++)
		CU_ASSERT_EQUAL_FATAL(mb_tb_take(&tb, 1000, NULL), 0);

	CU_ASSERT_EQUAL(mb_tb_init(&tb, -1.0, 1), -EINVAL);
	CU_ASSERT_EQUAL(mb_tb_init(&tb, 1e-4, 1), -EINVAL);
	CU_ASSERT_EQUAL(mb_tb_init(&tb, 2e9, 1), -EINVAL);
	CU_ASSERT_EQUAL(mb_tb_init(&tb, 10.0, 0), -EINVAL);
	CU_ASSERT_EQUAL(mb_tb_init(&tb, 10.0, 2000000), -EINVAL);
	mb_env_clock_use_real();
}

/* Concurrent takes on a frozen virtual clock: exactly `burst` succeed in total. */
struct taker {
	struct mb_tb *tb;
	struct mb_ratelimit *rl;
	int ok;
};

static void *
take_many(void *arg)
{
	struct taker *t = arg;

	for (int i = 0; i < 20000; i++)
		if ((t->rl ? mb_ratelimit_take(t->rl, 7, 1, NULL) : mb_tb_take(t->tb, 1, NULL)) ==
		    0)
			t->ok++;
	return NULL;
}

static void
test_bucket_concurrent(void)
{
	struct mb_tb tb;
	struct taker t[6];
	pthread_t th[6];
	int total = 0;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	CU_ASSERT_EQUAL_FATAL(mb_tb_init(&tb, 1000.0, 777), 0);
	for (int i = 0; i < 6; i++) {
		t[i] = (struct taker){.tb = &tb};
		pthread_create(&th[i], NULL, take_many, &t[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		total += t[i].ok;
	}
	CU_ASSERT_EQUAL(total, 777);
	mb_env_clock_use_real();
}

static struct mb_ratelimit *
table(uint32_t max_keys, double rate, uint32_t burst)
{
	struct mb_ratelimit_opts o;
	struct mb_ratelimit *rl = NULL;

	mb_ratelimit_opts_init(&o);
	o.max_keys = max_keys;
	o.default_rate = rate;
	o.default_burst = burst;
	CU_ASSERT_EQUAL(mb_ratelimit_create(&o, &rl), 0);
	return rl;
}

static void
test_table_per_key(void)
{
	struct mb_ratelimit *rl;
	struct mb_ratelimit_stats st;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	rl = table(16, 10.0, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
	CU_ASSERT_EQUAL(mb_ratelimit_set(rl, 42, 1000.0, 100), 0);
	/* Tenant 42 has its own generous limit... */
	for (int i = 0; i < 100; i++)
		CU_ASSERT_EQUAL_FATAL(mb_ratelimit_take(rl, 42, 1, NULL), 0);
	CU_ASSERT_EQUAL(mb_ratelimit_take(rl, 42, 1, NULL), -EAGAIN);
	/* ...tenants 1 and 2 get the default, each its own bucket. */
	CU_ASSERT_EQUAL(mb_ratelimit_take(rl, 1, 2, NULL), 0);
	CU_ASSERT_EQUAL(mb_ratelimit_take(rl, 1, 1, NULL), -EAGAIN);
	CU_ASSERT_EQUAL(mb_ratelimit_take(rl, 2, 2, NULL), 0);
	mb_ratelimit_stats(rl, &st);
	CU_ASSERT_EQUAL(st.keys, 3);
	CU_ASSERT_EQUAL(st.allowed, 102);
	CU_ASSERT_EQUAL(st.limited, 2);
	CU_ASSERT_EQUAL(st.overflow_takes, 0);
	CU_ASSERT_EQUAL(mb_ratelimit_set(rl, 5, -3.0, 1), -EINVAL);
	mb_ratelimit_destroy(&rl);
	CU_ASSERT_PTR_NULL(rl);
	mb_ratelimit_destroy(&rl);
	mb_env_clock_use_real();
}

static void
test_table_bounded(void)
{
	struct mb_ratelimit *rl;
	struct mb_ratelimit_stats st;
	int shared_ok = 0;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	rl = table(4, 1.0, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
	for (uint64_t k = 100; k < 104; k++)
		CU_ASSERT_EQUAL(mb_ratelimit_take(rl, k, 1, NULL), 0);
	CU_ASSERT_EQUAL(mb_ratelimit_set(rl, 999, 5.0, 1), -ENOSPC);
	/* Invented keys beyond max_keys share one overflow bucket: 3 tokens among them all. */
	for (uint64_t k = 1000; k < 2000; k++)
		if (mb_ratelimit_take(rl, k, 1, NULL) == 0)
			shared_ok++;
	CU_ASSERT_EQUAL(shared_ok, 3);
	mb_ratelimit_stats(rl, &st);
	CU_ASSERT_EQUAL(st.keys, 4);
	CU_ASSERT_EQUAL(st.overflow_takes, 1000);
	/* Known keys keep their own buckets. */
	CU_ASSERT_EQUAL(mb_ratelimit_take(rl, 100, 2, NULL), 0);
	mb_ratelimit_destroy(&rl);
	mb_env_clock_use_real();
}

static void
test_table_concurrent(void)
{
	struct mb_ratelimit *rl;
	struct taker t[4];
	pthread_t th[4];
	int total = 0;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	rl = table(64, 100.0, 250);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct taker){.rl = rl};
		pthread_create(&th[i], NULL, take_many, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += t[i].ok;
	}
	CU_ASSERT_EQUAL(total, 250); /* key 7 inserted once, by whichever thread came first */
	mb_ratelimit_destroy(&rl);
	mb_env_clock_use_real();
}

static void
test_table_options(void)
{
	struct mb_ratelimit_opts o;
	struct mb_ratelimit *rl = NULL;

	mb_ratelimit_opts_init(&o);
	o.max_keys = 0;
	CU_ASSERT_EQUAL(mb_ratelimit_create(&o, &rl), -EINVAL);
	mb_ratelimit_opts_init(&o);
	o.default_rate = 5.0;
	o.default_burst = 0;
	CU_ASSERT_EQUAL(mb_ratelimit_create(&o, &rl), -EINVAL);
	CU_ASSERT_PTR_NULL(rl);
}

/* Bytes allocated from the DPDK heap, all sockets. */
static uint64_t
heap_allocated(void)
{
	uint64_t sum = 0;

	for (int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats(s, &st) == 0)
			sum += st.heap_allocsz_bytes;
	}
	return sum;
}

static void
test_table_heap_estimate(void)
{
	/* --check adds this figure up for tenants.max_tenants: it must be what a table really
	 * takes (within 2%: allocation headers and alignment), at sizes on both sides of a
	 * power of two */
	const uint32_t sizes[] = {1000, 65536, 65537, 300000};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct mb_ratelimit_opts o;
		struct mb_ratelimit *rl = NULL;
		uint64_t before = heap_allocated(), took;
		double est = (double)mb_ratelimit_heap_bytes(sizes[i]);

		mb_ratelimit_opts_init(&o);
		o.max_keys = sizes[i];
		CU_ASSERT_EQUAL_FATAL(mb_ratelimit_create(&o, &rl), 0);
		took = heap_allocated() - before;
		if (est < 0.98 * (double)took || est > 1.02 * (double)took)
			printf("\n  max_keys %u: estimate %.0f bytes, the table took %" PRIu64,
			       sizes[i], est, took);
		CU_ASSERT(est >= 0.98 * (double)took && est <= 1.02 * (double)took);
		mb_ratelimit_destroy(&rl);
	}
}

static int
suite_init(void)
{
	mb_test_eal_up("ratelimit_test");
	return 0;
}

static const struct mb_test_case bucket_cases[] = {
	{"burst, refill, retry hint, no partial take", test_bucket_burst_and_refill},
	{"fractional rates, unlimited, option ranges", test_bucket_fractional_and_unlimited},
	{"6 threads on one bucket take exactly the burst", test_bucket_concurrent},
	{NULL, NULL},
};

static const struct mb_test_case table_cases[] = {
	{"per-key limits and the default", test_table_per_key},
	{"bounded: invented keys share an overflow bucket", test_table_bounded},
	{"4 threads on one new key take exactly the burst", test_table_concurrent},
	{"option checks", test_table_options},
	{"the heap estimate --check uses is what a table takes", test_table_heap_estimate},
	{NULL, NULL},
};

static const struct mb_test_suite bucket_suite = {"token bucket", NULL, NULL, bucket_cases};
static const struct mb_test_suite table_suite = {"rate limit table", suite_init, NULL, table_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&bucket_suite, &table_suite, NULL};
	int rc = mb_test_main("ratelimit_test", suites);

	mb_test_eal_down();
	return rc;
}
