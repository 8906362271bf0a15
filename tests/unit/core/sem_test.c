/*
 * sem_test.c: the weighted FIFO semaphore.
 *
 * Unit cases pin down each rule; the stress cases run 8 threads acquiring random amounts
 * and check the invariants: units in use never exceed capacity, grants follow arrival order,
 * everyone finishes, a large request is not starved, and close wakes every waiter.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_env.h"
#include "mb_sem.h"
#include "mb_test.h"

static struct mb_sem *
make(uint64_t cap)
{
	struct mb_sem_opts o = {.capacity = cap};
	struct mb_sem *s = NULL;

	CU_ASSERT_EQUAL(mb_sem_create(&o, &s), 0);
	return s;
}

static void
test_try_acquire_release(void)
{
	struct mb_sem *s = make(16);
	struct mb_sem_stats st;

	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 5), 0);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 11), 0);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 1), -EAGAIN);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 17), -E2BIG);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 16);
	CU_ASSERT_EQUAL(st.peak_in_use, 16);
	mb_sem_release(s, 5);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 5), 0);
	mb_sem_release(s, 16);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 0);
	CU_ASSERT_EQUAL(st.grants, 3);
	CU_ASSERT_EQUAL(mb_sem_acquire(s, 16), 0); /* free: no wait */
	CU_ASSERT_EQUAL(mb_sem_acquire(s, 17), -E2BIG);
	mb_sem_release(s, 16);
	mb_sem_destroy(&s);
	CU_ASSERT_PTR_NULL(s);
	mb_sem_destroy(&s);
}

static void
test_fifo_no_overtaking(void)
{
	struct mb_sem *s = make(10);
	struct mb_sem_ticket big, small;

	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 6), 0); /* 4 free */
	mb_sem_ticket_init(&big, NULL, NULL);
	mb_sem_ticket_init(&small, NULL, NULL);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &big, 8), -EINPROGRESS);
	/* 4 units are free, but a small request must not overtake the queued large one. */
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 1), -EAGAIN);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &small, 1), -EINPROGRESS);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&small), -EINPROGRESS);
	mb_sem_release(s, 6); /* 10 free: big (8) then small (1) both fit, in order */
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&big), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&small), 0);
	CU_ASSERT(big.grant_seq < small.grant_seq);
	CU_ASSERT(big.seq < small.seq);
	mb_sem_release(s, 9);
	mb_sem_destroy(&s);
}

struct notified {
	int count;
	struct mb_sem_ticket *last;
};

static void
on_notify(struct mb_sem_ticket *t, void *arg)
{
	struct notified *n = arg;

	n->count++;
	n->last = t;
}

static void
test_ticket_lifecycle(void)
{
	struct mb_sem *s = make(4);
	struct mb_sem_ticket a, b, c;
	struct notified n = {0};
	struct mb_sem_stats st;

	mb_sem_ticket_init(&a, on_notify, &n);
	mb_sem_ticket_init(&b, on_notify, &n);
	mb_sem_ticket_init(&c, on_notify, &n);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&a), -EINVAL); /* never queued */
	CU_ASSERT_EQUAL(mb_sem_ticket_cancel(s, &a), -EINVAL);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &a, 4), 0); /* granted at once: no notify */
	CU_ASSERT_EQUAL(n.count, 0);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &b, 3), -EINPROGRESS);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &b, 3), -EBUSY); /* already pending */
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &c, 1), -EINPROGRESS);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.waiters, 2);
	CU_ASSERT_EQUAL(st.waiting_units, 4);
	/* Withdraw b: c is now at the head but 0 units are free. */
	CU_ASSERT_EQUAL(mb_sem_ticket_cancel(s, &b), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&c), -EINPROGRESS);
	mb_sem_release(s, 4);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&c), 0);
	CU_ASSERT_EQUAL(n.count, 1);
	CU_ASSERT_PTR_EQUAL(n.last, &c);
	CU_ASSERT_EQUAL(mb_sem_ticket_cancel(s, &c), -EALREADY); /* caller holds the units */
	mb_sem_release(s, 1);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 0);
	CU_ASSERT_EQUAL(st.cancels, 1);
	CU_ASSERT_EQUAL(st.waiters, 0);
	mb_sem_destroy(&s);
}

struct acq {
	struct mb_sem *s;
	uint64_t n;
	uint64_t deadline;
	int rc;
	int done;
};

static void *
acquire_thread(void *arg)
{
	struct acq *a = arg;

	a->rc = mb_sem_acquire_until(a->s, a->n, a->deadline);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
wait_waiters(struct mb_sem *s, uint64_t n)
{
	struct mb_sem_stats st;

	for (int i = 0; i < 5000; i++) {
		mb_sem_stats(s, &st);
		if (st.waiters == n)
			return;
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	CU_FAIL("waiters never queued");
}

static void
test_deadline_virtual(void)
{
	struct mb_sem *s = make(4);
	struct acq a = {.n = 4}, b = {.n = 1};
	pthread_t ta, tb;
	struct mb_sem_stats st;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	a.s = b.s = s;
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 3), 0); /* 1 free */
	a.deadline = mb_env_deadline_in(2 * MB_NS_PER_S);
	b.deadline = MB_DEADLINE_NONE;
	pthread_create(&ta, NULL, acquire_thread, &a);
	wait_waiters(s, 1);
	pthread_create(&tb, NULL, acquire_thread, &b); /* queued behind a, though 1 is free */
	wait_waiters(s, 2);
	CU_ASSERT_FALSE(mb_test_wait_flag(&a.done, 0.05));
	mb_env_clock_advance(2 * MB_NS_PER_S); /* a's deadline passes */
	CU_ASSERT_TRUE(mb_test_wait_flag(&a.done, 10.0));
	pthread_join(ta, NULL);
	CU_ASSERT_EQUAL(a.rc, -ETIMEDOUT);
	/* a left the head: b (1 unit) fits and is granted without any release. */
	CU_ASSERT_TRUE(mb_test_wait_flag(&b.done, 10.0));
	pthread_join(tb, NULL);
	CU_ASSERT_EQUAL(b.rc, 0);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 4);
	CU_ASSERT_EQUAL(st.timeouts, 1);
	mb_sem_release(s, 4);
	mb_env_clock_use_real();
	mb_sem_destroy(&s);
}

static void
test_resize(void)
{
	struct mb_sem *s = make(16);
	struct mb_sem_ticket big, mid;
	struct mb_sem_stats st;

	mb_sem_ticket_init(&big, NULL, NULL);
	mb_sem_ticket_init(&mid, NULL, NULL);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 12), 0);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &big, 14), -EINPROGRESS);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &mid, 6), -EINPROGRESS);
	/* The device lost memory: capacity 8. big can never fit; held units are kept. */
	CU_ASSERT_EQUAL(mb_sem_resize(s, 8), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&big), -E2BIG);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&mid), -EINPROGRESS);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 12); /* over capacity until released: nothing granted */
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 1), -EAGAIN);
	mb_sem_release(s, 6); /* in use 6 of 8: mid (6) still does not fit */
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&mid), -EINPROGRESS);
	mb_sem_release(s, 6); /* 0 of 8 */
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&mid), 0);
	CU_ASSERT_EQUAL(mb_sem_resize(s, 32), 0);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 26), 0);
	mb_sem_release(s, 32);
	mb_sem_destroy(&s);
}

static void
test_zero_capacity_then_grow(void)
{
	struct mb_sem *s = make(0);
	struct mb_sem_ticket t;

	mb_sem_ticket_init(&t, NULL, NULL);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &t, 1), -E2BIG);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &t, 0), 0); /* zero units always fit */
	CU_ASSERT_EQUAL(mb_sem_resize(s, 2), 0);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &t, 2), 0);
	mb_sem_release(s, 2);
	mb_sem_destroy(&s);
}

static void
test_close(void)
{
	struct mb_sem *s = make(2);
	struct mb_sem_ticket t;
	struct notified n = {0};

	mb_sem_ticket_init(&t, on_notify, &n);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 2), 0);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &t, 1), -EINPROGRESS);
	mb_sem_close(s);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&t), -ESHUTDOWN);
	CU_ASSERT_EQUAL(n.count, 1);
	CU_ASSERT_EQUAL(mb_sem_ticket_cancel(s, &t), -ESHUTDOWN);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 1), -ESHUTDOWN);
	CU_ASSERT_EQUAL(mb_sem_acquire(s, 1), -ESHUTDOWN);
	CU_ASSERT_EQUAL(mb_sem_resize(s, 4), -ESHUTDOWN);
	mb_sem_release(s, 2); /* still allowed */
	mb_sem_close(s);      /* idempotent */
	mb_sem_destroy(&s);
}

static void
test_ticket_reduce(void)
{
	struct mb_sem *s = make(10);
	struct mb_sem_ticket big, next;
	struct mb_sem_stats st;

	mb_sem_ticket_init(&big, NULL, NULL);
	mb_sem_ticket_init(&next, NULL, NULL);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, 6), 0); /* 4 free */
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &big, 7), -EINPROGRESS);
	CU_ASSERT_EQUAL(mb_sem_enqueue(s, &next, 1), -EINPROGRESS);
	CU_ASSERT_EQUAL(mb_sem_ticket_reduce(s, &big, 8), -EINVAL);
	/* An item left the waiting batch: it now asks for 4, which fits, keeping its place. */
	CU_ASSERT_EQUAL(mb_sem_ticket_reduce(s, &big, 3), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&big), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&next), -EINPROGRESS);
	/* Granted: a refund releases units, and the next in line gets them. */
	CU_ASSERT_EQUAL(mb_sem_ticket_reduce(s, &big, 1), 0);
	CU_ASSERT_EQUAL(mb_sem_ticket_poll(&next), 0);
	mb_sem_stats(s, &st);
	CU_ASSERT_EQUAL(st.in_use, 6 + 3 + 1);
	CU_ASSERT_EQUAL(big.units, 3);
	mb_sem_release(s, 6 + 3 + 1);
	mb_sem_destroy(&s);
}

static void
test_over_release_aborts(void)
{
	pid_t pid;
	int status = 0;

	printf("\n    (a child process over-releases; its abort message below is expected)\n");
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct mb_sem_opts o = {.capacity = 4};
		struct mb_sem *s;

		mb_sem_create(&o, &s);
		mb_sem_try_acquire(s, 1);
		mb_sem_release(s, 2); /* a bug: must abort, never go negative */
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CU_ASSERT_TRUE(WIFSIGNALED(status));
	if (WIFSIGNALED(status))
		CU_ASSERT_EQUAL(WTERMSIG(status), SIGABRT);
}

/* ---- stress ---- */

#define THREADS 8
#define CAPACITY 16
#define ROUNDS 3000

struct shared {
	struct mb_sem *s;
	atomic_long shadow; /* units held, as the threads see it */
	atomic_long max_shadow;
	atomic_int violations;
};

struct record {
	uint64_t seq, grant_seq;
};

struct worker {
	struct shared *sh;
	unsigned int id;
	uint64_t rng;
	struct record *log;
	unsigned int logged;
	int errors;
};

static void
hold(struct shared *sh, uint64_t n)
{
	long now = atomic_fetch_add(&sh->shadow, (long)n) + (long)n;
	long max = atomic_load(&sh->max_shadow);

	if (now > CAPACITY)
		atomic_fetch_add(&sh->violations, 1);
	while (now > max && !atomic_compare_exchange_weak(&sh->max_shadow, &max, now))
		;
	if ((n & 1) == 0)
		sched_yield(); /* hold for a while, sometimes */
	atomic_fetch_sub(&sh->shadow, (long)n);
}

static void *
ticket_worker(void *arg)
{
	struct worker *w = arg;

	for (unsigned int r = 0; r < ROUNDS; r++) {
		struct mb_sem_ticket t;
		uint64_t n = 1 + mb_test_rand(&w->rng) % CAPACITY;
		int rc;

		mb_sem_ticket_init(&t, NULL, NULL);
		rc = mb_sem_enqueue(w->sh->s, &t, n);
		while (rc == -EINPROGRESS) {
			sched_yield();
			rc = mb_sem_ticket_poll(&t);
		}
		if (rc != 0) {
			w->errors++;
			continue;
		}
		w->log[w->logged++] = (struct record){t.seq, t.grant_seq};
		hold(w->sh, n);
		mb_sem_release(w->sh->s, n);
	}
	return NULL;
}

static int
by_seq(const void *a, const void *b)
{
	const struct record *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
test_stress_capacity_and_fifo(void)
{
	struct shared sh = {0};
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct record *all;
	unsigned int total = 0, out_of_order = 0;
	struct mb_sem_stats st;

	sh.s = make(CAPACITY);
	for (unsigned int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.sh = &sh, .id = i, .rng = 0x9e3779b97f4a7c15ull * (i + 1)};
		w[i].log = calloc(ROUNDS, sizeof(struct record));
		pthread_create(&th[i], NULL, ticket_worker, &w[i]);
	}
	all = calloc((size_t)THREADS * ROUNDS, sizeof(*all));
	for (unsigned int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].errors, 0);
		CU_ASSERT_EQUAL(w[i].logged, ROUNDS); /* everyone finished every round */
		memcpy(&all[total], w[i].log, w[i].logged * sizeof(*all));
		total += w[i].logged;
		free(w[i].log);
	}
	/* FIFO: sorted by arrival, grants are strictly increasing. */
	qsort(all, total, sizeof(*all), by_seq);
	for (unsigned int i = 1; i < total; i++)
		if (all[i].grant_seq <= all[i - 1].grant_seq)
			out_of_order++;
	CU_ASSERT_EQUAL(out_of_order, 0);
	CU_ASSERT_EQUAL(atomic_load(&sh.violations), 0);
	CU_ASSERT(atomic_load(&sh.max_shadow) <= CAPACITY);
	mb_sem_stats(sh.s, &st);
	CU_ASSERT_EQUAL(st.in_use, 0);
	CU_ASSERT(st.peak_in_use <= CAPACITY);
	CU_ASSERT_EQUAL(st.grants, (uint64_t)THREADS * ROUNDS);
	printf("\n    %u grants in arrival order, peak %lu/%d units\n", total,
	       (unsigned long)st.peak_in_use, CAPACITY);
	free(all);
	mb_sem_destroy(&sh.s);
}

struct small_stream {
	struct mb_sem *s;
	atomic_int *stop;
	unsigned long grants;
};

static void *
small_streamer(void *arg)
{
	struct small_stream *ss = arg;

	while (!atomic_load(ss->stop)) {
		if (mb_sem_acquire(ss->s, 1) != 0)
			break;
		ss->grants++;
		sched_yield();
		mb_sem_release(ss->s, 1);
	}
	return NULL;
}

static void
test_stress_large_not_starved(void)
{
	struct mb_sem *s = make(CAPACITY);
	struct small_stream ss[THREADS - 1];
	pthread_t th[THREADS - 1];
	atomic_int stop = 0;
	struct mb_sem_ticket big;
	int rc;

	for (unsigned int i = 0; i < THREADS - 1; i++) {
		ss[i] = (struct small_stream){s, &stop, 0};
		pthread_create(&th[i], NULL, small_streamer, &ss[i]);
	}
	mb_env_sleep_ns(20 * MB_NS_PER_MS); /* the small stream is flowing */
	mb_sem_ticket_init(&big, NULL, NULL);
	rc = mb_sem_enqueue(s, &big, CAPACITY); /* needs every unit */
	while (rc == -EINPROGRESS) {
		sched_yield();
		rc = mb_sem_ticket_poll(&big);
	}
	CU_ASSERT_EQUAL(rc, 0);
	/*
	 * Every request that arrived before the big one was granted before it, and none that
	 * arrived after: its grant number equals its arrival number.
	 */
	CU_ASSERT_EQUAL(big.grant_seq, big.seq);
	CU_ASSERT(big.seq > 10); /* the small stream really was flowing */
	mb_sem_release(s, CAPACITY);
	atomic_store(&stop, 1);
	for (unsigned int i = 0; i < THREADS - 1; i++)
		pthread_join(th[i], NULL);
	mb_sem_destroy(&s);
}

struct blocking_worker {
	struct shared *sh;
	uint64_t rng;
	unsigned int granted, timed_out;
	int errors;
};

static void *
blocking_worker(void *arg)
{
	struct blocking_worker *w = arg;

	for (unsigned int r = 0; r < ROUNDS / 3; r++) {
		uint64_t n = 1 + mb_test_rand(&w->rng) % CAPACITY;
		uint64_t wait_ns = (mb_test_rand(&w->rng) % 2000) * MB_NS_PER_US;
		int rc = mb_sem_acquire_until(w->sh->s, n, mb_env_deadline_in(wait_ns));

		if (rc == -ETIMEDOUT) {
			w->timed_out++;
			continue;
		}
		if (rc != 0) {
			w->errors++;
			continue;
		}
		w->granted++;
		hold(w->sh, n);
		mb_sem_release(w->sh->s, n);
	}
	return NULL;
}

static void
test_stress_blocking_deadlines(void)
{
	struct shared sh = {0};
	struct blocking_worker w[THREADS];
	pthread_t th[THREADS];
	unsigned long granted = 0, timed_out = 0;
	struct mb_sem_stats st;

	sh.s = make(CAPACITY);
	for (unsigned int i = 0; i < THREADS; i++) {
		w[i] = (struct blocking_worker){.sh = &sh, .rng = 0x51ed2701ull * (i + 3)};
		pthread_create(&th[i], NULL, blocking_worker, &w[i]);
	}
	for (unsigned int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].errors, 0);
		CU_ASSERT_EQUAL(w[i].granted + w[i].timed_out, ROUNDS / 3);
		granted += w[i].granted;
		timed_out += w[i].timed_out;
	}
	CU_ASSERT_EQUAL(atomic_load(&sh.violations), 0);
	mb_sem_stats(sh.s, &st);
	CU_ASSERT_EQUAL(st.in_use, 0);
	CU_ASSERT_EQUAL(st.waiters, 0); /* timed-out waiters left the queue */
	CU_ASSERT_EQUAL(st.grants, granted);
	CU_ASSERT_EQUAL(st.timeouts, timed_out);
	CU_ASSERT(granted > 0);
	printf("\n    %lu granted, %lu timed out, peak %lu/%d units\n", granted, timed_out,
	       (unsigned long)st.peak_in_use, CAPACITY);
	mb_sem_destroy(&sh.s);
}

static void
test_stress_close_wakes_all(void)
{
	struct mb_sem *s = make(CAPACITY);
	struct acq a[THREADS];
	pthread_t th[THREADS];

	CU_ASSERT_EQUAL(mb_sem_try_acquire(s, CAPACITY), 0);
	for (unsigned int i = 0; i < THREADS; i++) {
		a[i] = (struct acq){.s = s, .n = 1 + i % CAPACITY, .deadline = MB_DEADLINE_NONE};
		pthread_create(&th[i], NULL, acquire_thread, &a[i]);
	}
	wait_waiters(s, THREADS);
	mb_sem_close(s);
	for (unsigned int i = 0; i < THREADS; i++) {
		CU_ASSERT_TRUE(mb_test_wait_flag(&a[i].done, 10.0));
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(a[i].rc, -ESHUTDOWN);
	}
	mb_sem_release(s, CAPACITY);
	mb_sem_destroy(&s);
}

static const struct mb_test_case unit_cases[] = {
	{"try_acquire, release, E2BIG", test_try_acquire_release},
	{"FIFO: small requests never overtake a queued large one", test_fifo_no_overtaking},
	{"tickets: enqueue, poll, notify, cancel", test_ticket_lifecycle},
	{"acquire_until ends at a virtual deadline and yields its place", test_deadline_virtual},
	{"resize: shrink fails oversized waiters, never revokes", test_resize},
	{"zero capacity, then grow", test_zero_capacity_then_grow},
	{"close fails waiters and later acquires", test_close},
	{"reduce a ticket: pending keeps its place, granted refunds", test_ticket_reduce},
	{"releasing more than held aborts", test_over_release_aborts},
	{NULL, NULL},
};

static const struct mb_test_case stress_cases[] = {
	{"8 threads, random n: capacity never exceeded, FIFO grants",
	 test_stress_capacity_and_fifo},
	{"blocking acquires with random deadlines: capacity kept, queue clean",
	 test_stress_blocking_deadlines},
	{"a full-capacity request is not starved by a small stream", test_stress_large_not_starved},
	{"close wakes every blocked thread", test_stress_close_wakes_all},
	{NULL, NULL},
};

static const struct mb_test_suite unit_suite = {"sem", NULL, NULL, unit_cases};
static const struct mb_test_suite stress_suite = {"sem stress", NULL, NULL, stress_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&unit_suite, &stress_suite, NULL};

	return mb_test_main("sem_test", suites);
}
