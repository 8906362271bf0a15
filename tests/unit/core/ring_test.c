/*
 * ring_test.c: creation errors, FIFO bursts, backpressure, waiting (doorbell, deadline,
 * wake), and multi-producer/multi-consumer stress: every item delivered exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mb_env.h"
#include "mb_ring.h"
#include "mb_test.h"

static struct mb_ring *
make(const char *name, unsigned int cap, enum mb_ring_sync prod, enum mb_ring_sync cons)
{
	struct mb_ring_opts o;
	struct mb_ring *r = NULL;

	mb_ring_opts_init(&o);
	o.name = name;
	o.capacity = cap;
	o.numa_node = 0;
	o.prod_sync = prod;
	o.cons_sync = cons;
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), 0);
	return r;
}

static void
test_create_errors(void)
{
	struct mb_ring_opts o;
	struct mb_ring *r = NULL, *dup = NULL;

	mb_ring_opts_init(&o);
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), -EINVAL); /* no name */
	o.name = "a-name-that-is-far-too-long-for-dpdk";
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), -EINVAL);
	o.name = "zero";
	o.capacity = 0;
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), -EINVAL);
	o.capacity = (1u << 30) + 1;
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), -EINVAL);
	o.capacity = 8;
	o.prod_sync = (enum mb_ring_sync)17;
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), -EINVAL);
	o.prod_sync = MB_RING_SYNC_ST;
	o.numa_node = 4096;
	CU_ASSERT(mb_ring_create(&o, &r) < 0); /* no such node */
	CU_ASSERT_PTR_NULL(r);
	o.numa_node = MB_NUMA_ANY;
	o.name = "twice";
	CU_ASSERT_EQUAL_FATAL(mb_ring_create(&o, &r), 0);
	CU_ASSERT_EQUAL(mb_ring_create(&o, &dup), -EEXIST);
	CU_ASSERT_PTR_NULL(dup);
	CU_ASSERT_STRING_EQUAL(mb_ring_name(r), "twice");
	CU_ASSERT_EQUAL(mb_ring_numa_node(r), MB_NUMA_ANY);
	mb_ring_destroy(&r);
	CU_ASSERT_PTR_NULL(r);
	mb_ring_destroy(&r);
	/* The name is free again. */
	CU_ASSERT_EQUAL(mb_ring_create(&o, &r), 0);
	mb_ring_destroy(&r);
}

static void
test_fifo_and_backpressure(void)
{
	struct mb_ring *r = make("fifo", 1000, MB_RING_SYNC_ST, MB_RING_SYNC_ST);
	uintptr_t in[1200], out[1200];
	unsigned int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mb_ring_capacity(r), 1000); /* exact, not a power of two */
	for (uintptr_t i = 0; i < 1200; i++)
		in[i] = i + 1;
	n = mb_ring_enqueue_burst(r, (void *const *)in, 1200);
	CU_ASSERT_EQUAL(n, 1000); /* the rest stay with the caller */
	CU_ASSERT_EQUAL(mb_ring_count(r), 1000);
	CU_ASSERT_EQUAL(mb_ring_free_count(r), 0);
	CU_ASSERT_EQUAL(mb_ring_enqueue_burst(r, (void *const *)&in[1000], 1), 0);
	n = mb_ring_dequeue_burst(r, (void **)out, 32);
	CU_ASSERT_EQUAL(n, 32);
	n += mb_ring_dequeue_burst(r, (void **)&out[32], 2000);
	CU_ASSERT_EQUAL(n, 1000);
	for (unsigned int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL_FATAL(out[i], i + 1);
	CU_ASSERT_EQUAL(mb_ring_dequeue_burst(r, (void **)out, 32), 0);
	mb_ring_destroy(&r);
}

struct waiter {
	struct mb_ring *ring;
	struct mb_idle idle;
	uint64_t deadline;
	unsigned int got;
	void *objs[8];
	int done;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->got = mb_ring_dequeue_burst_wait(w->ring, w->objs, 8, &w->idle, w->deadline);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
start_waiter(struct waiter *w, pthread_t *th, struct mb_ring *r, uint64_t deadline)
{
	struct mb_idle_opts o = {
		.mode = MB_IDLE_SLEEP, .spin_polls = 16, .sleep_ns = 60 * MB_NS_PER_S};

	memset(w, 0, sizeof(*w));
	w->ring = r;
	w->deadline = deadline;
	mb_idle_init(&w->idle, &o);
	pthread_create(th, NULL, wait_thread, w);
}

/* Wait until the waiter has announced itself on the doorbell, then a little longer so it is
 * most likely inside its sleep (it re-checks the ring once after announcing). */
static bool
asleep(struct mb_ring *r)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&mb_ring_doorbell(r)->waiters) > 0) {
			mb_env_sleep_ns(50 * MB_NS_PER_MS);
			return true;
		}
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	return false;
}

static void
test_wait_woken_by_enqueue(void)
{
	struct mb_ring *r = make("bell", 64, MB_RING_SYNC_ST, MB_RING_SYNC_ST);
	struct mb_idle_stats s;
	struct waiter w;
	pthread_t th;
	void *item = (void *)0x42;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	start_waiter(&w, &th, r, MB_DEADLINE_NONE);
	CU_ASSERT_TRUE(asleep(r));
	CU_ASSERT_EQUAL(mb_ring_enqueue_burst(r, &item, 1), 1);
	/* It sleeps for up to 60 s: only the doorbell can wake it this soon. */
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 10.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.got, 1);
	CU_ASSERT_PTR_EQUAL(w.objs[0], item);
	mb_idle_stats(&w.idle, &s);
	/* Every sleep it took was ended by the bell (if the enqueue raced its final re-check
	 * it never slept at all, which is just as correct). */
	CU_ASSERT_EQUAL(s.sleeps, s.bell_wakeups);
	CU_ASSERT(s.sleeps <= 1);
	mb_ring_destroy(&r);
}

static void
test_wait_woken_by_wake(void)
{
	struct mb_ring *r = make("wake", 64, MB_RING_SYNC_ST, MB_RING_SYNC_ST);
	struct waiter w;
	pthread_t th;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	start_waiter(&w, &th, r, MB_DEADLINE_NONE);
	CU_ASSERT_TRUE(asleep(r));
	mb_ring_wake(r);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 10.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.got, 0);
	mb_ring_destroy(&r);
}

static void
test_wait_deadline_virtual(void)
{
	struct mb_ring *r = make("deadline", 64, MB_RING_SYNC_ST, MB_RING_SYNC_ST);
	struct waiter w;
	pthread_t th;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	mb_env_clock_use_virtual(MB_NS_PER_S);
	start_waiter(&w, &th, r, mb_env_deadline_in(5 * MB_NS_PER_S));
	CU_ASSERT_FALSE(mb_test_wait_flag(&w.done, 0.1)); /* virtual time stands still */
	mb_env_clock_advance(5 * MB_NS_PER_S);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 10.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.got, 0);
	mb_env_clock_use_real();
	mb_ring_destroy(&r);
}

/* ---- stress: P producers, C consumers, every item exactly once ---- */

#define PER_PRODUCER 200000u

struct stress {
	struct mb_ring *ring;
	unsigned int producers;
	atomic_uint producers_done;
	_Atomic uint64_t consumed;
	uint64_t total;
	_Atomic uint8_t *seen; /* per item: times delivered */
	atomic_uint order_errors;
};

struct prod_arg {
	struct stress *s;
	unsigned int id;
};

static void *
stress_producer(void *arg)
{
	struct prod_arg *pa = arg;
	struct stress *s = pa->s;
	uintptr_t batch[32];
	uint64_t next = 0;

	while (next < PER_PRODUCER) {
		unsigned int n = 0, done = 0;

		while (n < 32 && next + n < PER_PRODUCER) {
			/* item id, 1-based so no pointer is NULL */
			batch[n] = (uintptr_t)(pa->id * PER_PRODUCER + next + n + 1);
			n++;
		}
		while (done < n) {
			unsigned int k = mb_ring_enqueue_burst(s->ring, (void *const *)&batch[done],
							       n - done);

			if (k == 0)
				sched_yield(); /* full: backpressure */
			done += k;
		}
		next += n;
	}
	atomic_fetch_add(&s->producers_done, 1);
	return NULL;
}

static void *
stress_consumer(void *arg)
{
	struct stress *s = arg;
	struct mb_idle_opts o = {
		.mode = MB_IDLE_SLEEP, .spin_polls = 64, .sleep_ns = 50 * MB_NS_PER_MS};
	struct mb_idle idle;
	uint64_t last[16] = {0}; /* per producer: last item seen (single consumer only) */
	void *objs[32];

	mb_idle_init(&idle, &o);
	for (;;) {
		unsigned int n = mb_ring_dequeue_burst_wait(s->ring, objs, 32, &idle,
							    mb_env_deadline_in(50 * MB_NS_PER_MS));

		for (unsigned int i = 0; i < n; i++) {
			uint64_t id = (uint64_t)(uintptr_t)objs[i] - 1;
			unsigned int p = (unsigned int)(id / PER_PRODUCER);

			atomic_fetch_add_explicit(&s->seen[id], 1, memory_order_relaxed);
			if (id + 1 <= last[p] && last[p] != 0)
				atomic_fetch_add(&s->order_errors, 1);
			last[p] = id + 1;
		}
		atomic_fetch_add(&s->consumed, n);
		if (atomic_load(&s->consumed) >= s->total)
			return NULL;
		if (n == 0 && atomic_load(&s->producers_done) == s->producers &&
		    mb_ring_count(s->ring) == 0)
			return NULL;
	}
}

static void
run_stress(const char *name, unsigned int producers, unsigned int consumers, enum mb_ring_sync prod,
	   enum mb_ring_sync cons, unsigned int cap)
{
	struct stress s = {0};
	struct prod_arg pa[8];
	pthread_t pt[8], ct[8];
	uint64_t dup = 0, missing = 0;

	s.ring = make(name, cap, prod, cons);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.ring);
	s.producers = producers;
	s.total = (uint64_t)producers * PER_PRODUCER;
	s.seen = calloc(s.total, 1);
	for (unsigned int i = 0; i < consumers; i++)
		pthread_create(&ct[i], NULL, stress_consumer, &s);
	for (unsigned int i = 0; i < producers; i++) {
		pa[i] = (struct prod_arg){&s, i};
		pthread_create(&pt[i], NULL, stress_producer, &pa[i]);
	}
	for (unsigned int i = 0; i < producers; i++)
		pthread_join(pt[i], NULL);
	for (unsigned int i = 0; i < consumers; i++)
		pthread_join(ct[i], NULL);
	for (uint64_t i = 0; i < s.total; i++) {
		if (s.seen[i] == 0)
			missing++;
		else if (s.seen[i] > 1)
			dup++;
	}
	CU_ASSERT_EQUAL(atomic_load(&s.consumed), s.total);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(dup, 0);
	if (consumers == 1) /* one consumer sees each producer's items in order */
		CU_ASSERT_EQUAL(atomic_load(&s.order_errors), 0);
	free((void *)s.seen);
	mb_ring_destroy(&s.ring);
}

static void
test_stress_spsc(void)
{
	run_stress("st_spsc", 1, 1, MB_RING_SYNC_ST, MB_RING_SYNC_ST, 256);
}

static void
test_stress_mpsc_hts(void)
{
	run_stress("st_mpsc", 4, 1, MB_RING_SYNC_MT_HTS, MB_RING_SYNC_ST, 256);
}

static void
test_stress_mpmc_hts(void)
{
	run_stress("st_mpmc_hts", 4, 3, MB_RING_SYNC_MT_HTS, MB_RING_SYNC_MT_HTS, 128);
}

static void
test_stress_mpmc_rts(void)
{
	run_stress("st_mpmc_rts", 3, 2, MB_RING_SYNC_MT_RTS, MB_RING_SYNC_MT_RTS, 128);
}

static int
suite_init(void)
{
	mb_test_eal_up("ring_test");
	return 0;
}

static const struct mb_test_case unit_cases[] = {
	{"creation errors and unique names", test_create_errors},
	{"FIFO bursts, exact capacity, backpressure", test_fifo_and_backpressure},
	{"a sleeping consumer is woken by an enqueue", test_wait_woken_by_enqueue},
	{"mb_ring_wake interrupts a wait", test_wait_woken_by_wake},
	{"a wait ends at its (virtual) deadline", test_wait_deadline_virtual},
	{NULL, NULL},
};

static const struct mb_test_case stress_cases[] = {
	{"1 producer, 1 consumer: all once, in order", test_stress_spsc},
	{"4 producers (HTS), 1 consumer: all once, per-producer order", test_stress_mpsc_hts},
	{"4 producers, 3 consumers (HTS): all once", test_stress_mpmc_hts},
	{"3 producers, 2 consumers (RTS): all once", test_stress_mpmc_rts},
	{NULL, NULL},
};

static const struct mb_test_suite unit_suite = {"ring", suite_init, NULL, unit_cases};
static const struct mb_test_suite stress_suite = {"ring stress", NULL, NULL, stress_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&unit_suite, &stress_suite, NULL};
	int rc = mb_test_main("ring_test", suites);

	mb_test_eal_down();
	return rc;
}
