/*
 * env_test.c: the clock (real and virtual), deadline waits, and NUMA-placed allocation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <rte_memory.h>

#include "mb_env.h"
#include "mb_test.h"

static void
test_real_clock_monotonic(void)
{
	uint64_t a, b;

	mb_env_clock_use_real();
	CU_ASSERT_FALSE(mb_env_clock_is_virtual());
	a = mb_env_now_ns();
	for (int i = 0; i < 1000; i++) {
		b = mb_env_now_ns();
		CU_ASSERT(b >= a);
		a = b;
	}
	CU_ASSERT(a > 0);
}

static void
test_virtual_clock(void)
{
	mb_env_clock_use_virtual(1000);
	CU_ASSERT_TRUE(mb_env_clock_is_virtual());
	CU_ASSERT_EQUAL(mb_env_now_ns(), 1000);
	CU_ASSERT_EQUAL(mb_env_now_ns(), 1000); /* does not move by itself */
	mb_env_clock_advance(500);
	CU_ASSERT_EQUAL(mb_env_now_ns(), 1500);
	CU_ASSERT_EQUAL(mb_env_clock_set(2000), 0);
	CU_ASSERT_EQUAL(mb_env_now_ns(), 2000);
	CU_ASSERT_EQUAL(mb_env_clock_set(1999), -EINVAL); /* never backwards */
	CU_ASSERT_EQUAL(mb_env_now_ns(), 2000);
	mb_env_clock_use_real();
	CU_ASSERT_EQUAL(mb_env_clock_set(5000), -EPERM);
}

static void
test_deadline_in(void)
{
	mb_env_clock_use_virtual(100);
	CU_ASSERT_EQUAL(mb_env_deadline_in(50), 150);
	CU_ASSERT_EQUAL(mb_env_deadline_in(UINT64_MAX), MB_DEADLINE_NONE);
	CU_ASSERT_EQUAL(mb_env_deadline_in(UINT64_MAX - 100), MB_DEADLINE_NONE);
	mb_env_clock_use_real();
}

struct waiter {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	uint64_t deadline;
	int rc;
	int done;
	int signalled;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;
	int rc = 0;

	pthread_mutex_lock(&w->mtx);
	while (!w->signalled && rc == 0)
		rc = mb_env_cond_wait_until(&w->cv, &w->mtx, w->deadline);
	w->rc = rc;
	pthread_mutex_unlock(&w->mtx);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
test_cond_wait_virtual_deadline(void)
{
	struct waiter w = {.mtx = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(mb_env_cond_init(&w.cv), 0);
	mb_env_clock_use_virtual(MB_NS_PER_S);
	w.deadline = mb_env_deadline_in(10 * MB_NS_PER_S);
	pthread_create(&th, NULL, wait_thread, &w);
	/* Virtual time stands still: the waiter must still be waiting after real time passes. */
	CU_ASSERT_FALSE(mb_test_wait_flag(&w.done, 0.05));
	mb_env_clock_advance(9 * MB_NS_PER_S);
	CU_ASSERT_FALSE(mb_test_wait_flag(&w.done, 0.05));
	mb_env_clock_advance(MB_NS_PER_S);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 5.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.rc, -ETIMEDOUT);
	pthread_cond_destroy(&w.cv);
	mb_env_clock_use_real();
}

static void
test_cond_wait_signalled(void)
{
	struct waiter w = {.mtx = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(mb_env_cond_init(&w.cv), 0);
	w.deadline = MB_DEADLINE_NONE;
	pthread_create(&th, NULL, wait_thread, &w);
	pthread_mutex_lock(&w.mtx);
	w.signalled = 1;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mtx);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 5.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.rc, 0);
	pthread_cond_destroy(&w.cv);
}

static void
test_cond_wait_past_deadline(void)
{
	pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;

	CU_ASSERT_EQUAL_FATAL(mb_env_cond_init(&cv), 0);
	pthread_mutex_lock(&mtx);
	CU_ASSERT_EQUAL(mb_env_cond_wait_until(&cv, &mtx, mb_env_now_ns() - 1), -ETIMEDOUT);
	pthread_mutex_unlock(&mtx);
	pthread_cond_destroy(&cv);
}

static void
test_zalloc_libc(void)
{
	struct mb_env_alloc_stats before, after;
	unsigned char *p;

	mb_env_alloc_stats(&before);
	p = mb_env_zalloc(1000, MB_NUMA_ANY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL_FATAL(p[i], 0);
	memset(p, 0xab, 1000);
	mb_env_free(p);
	mb_env_free(NULL);
	mb_env_alloc_stats(&after);
	CU_ASSERT_EQUAL(after.allocs - before.allocs, 1);
	CU_ASSERT_EQUAL(after.frees - before.frees, 1);
}

static void
test_zalloc_rejects(void)
{
	struct mb_env_alloc_stats before, after;

	mb_env_alloc_stats(&before);
	CU_ASSERT_PTR_NULL(mb_env_zalloc(0, MB_NUMA_ANY));
	CU_ASSERT_PTR_NULL(mb_env_zalloc(16, -7));
	CU_ASSERT_PTR_NULL(mb_env_zalloc(SIZE_MAX, MB_NUMA_ANY));
	mb_env_alloc_stats(&after);
	CU_ASSERT_EQUAL(after.failures - before.failures, 3);
	CU_ASSERT_EQUAL(after.allocs, before.allocs);
}

static void
test_fault_injection(void)
{
	void *a, *b, *c;

	mb_env_alloc_fail_nth(2);
	a = mb_env_zalloc(8, MB_NUMA_ANY);
	b = mb_env_zalloc(8, MB_NUMA_ANY);
	c = mb_env_zalloc(8, MB_NUMA_ANY);
	CU_ASSERT_PTR_NOT_NULL(a);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_PTR_NOT_NULL(c); /* fails once only */
	mb_env_free(a);
	mb_env_free(c);
	mb_env_alloc_fail_nth(1);
	mb_env_alloc_fail_nth(0); /* cancelled */
	a = mb_env_zalloc(8, MB_NUMA_ANY);
	CU_ASSERT_PTR_NOT_NULL(a);
	mb_env_free(a);
}

static void
test_zalloc_dpdk_heap(void)
{
	unsigned char *p, *q;

	mb_test_eal_up("env_test");
	p = mb_env_zalloc(4096, 0); /* node 0 exists on every machine */
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
	CU_ASSERT_PTR_NOT_NULL(rte_mem_virt2memseg(p, NULL)); /* DPDK's heap now */
	CU_ASSERT_EQUAL(p[0], 0);
	CU_ASSERT_EQUAL(p[4095], 0);
	q = mb_env_zalloc(64, 1000); /* no such socket */
	CU_ASSERT_PTR_NULL(q);
	mb_env_free(p);
	mb_test_eal_down();
}

static const struct mb_test_case clock_cases[] = {
	{"real clock is monotonic", test_real_clock_monotonic},
	{"virtual clock moves only when told", test_virtual_clock},
	{"deadline_in saturates", test_deadline_in},
	{"cond wait ends at a virtual deadline", test_cond_wait_virtual_deadline},
	{"cond wait returns when signalled", test_cond_wait_signalled},
	{"cond wait past its deadline returns at once", test_cond_wait_past_deadline},
	{NULL, NULL},
};

static const struct mb_test_case alloc_cases[] = {
	{"zalloc from libc before EAL", test_zalloc_libc},
	{"zalloc rejects bad sizes and nodes", test_zalloc_rejects},
	{"fault injection fails the n-th allocation once", test_fault_injection},
	{"zalloc from DPDK's heap once EAL is up", test_zalloc_dpdk_heap},
	{NULL, NULL},
};

static const struct mb_test_suite clock_suite = {"env clock", NULL, NULL, clock_cases};
static const struct mb_test_suite alloc_suite = {"env alloc", NULL, NULL, alloc_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&clock_suite, &alloc_suite, NULL};

	return mb_test_main("env_test", suites);
}
