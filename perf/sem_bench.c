/*
 * sem_bench.c: the weighted FIFO semaphore against the textbook baseline, a counter under a
 * pthread mutex with a condition variable, measured in the same run.
 *
 * The baseline is what one writes without FIFO fairness: waiters re-check under the mutex
 * after every broadcast, so a large request can starve. Ours queues tickets and hands units
 * over in order. The price of fairness shows up under contention; uncontended, both are one
 * lock and unlock per call.
 *
 * Cases (nanoseconds per acquire+release pair, median of interleaved runs):
 *   uncontended   one thread, acquire(1) + release(1)
 *   contended     T threads, capacity 16, each acquires 1..8 units at random, releases
 *
 * Usage: sem_bench [--quick] [--runs N] [--threads T]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_bench.h"
#include "mb_env.h"
#include "mb_sem.h"

#define CAPACITY 16

/* ---- baseline: mutex + condvar counter ---- */

struct base_sem {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	uint64_t avail;
};

static void
base_acquire(struct base_sem *s, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	while (s->avail < n)
		pthread_cond_wait(&s->cv, &s->lock);
	s->avail -= n;
	pthread_mutex_unlock(&s->lock);
}

static void
base_release(struct base_sem *s, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	s->avail += n;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

/* ---- harness ---- */

enum impl { BASE, OURS };

struct ctx {
	enum impl which;
	struct base_sem *base;
	struct mb_sem *ours;
	uint64_t ops;
	uint64_t rng;
	atomic_int *go;
};

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *
worker(void *arg)
{
	struct ctx *c = arg;

	while (!atomic_load_explicit(c->go, memory_order_acquire))
		;
	for (uint64_t i = 0; i < c->ops; i++) {
		uint64_t n = 1 + xorshift(&c->rng) % 8;

		if (c->which == BASE) {
			base_acquire(c->base, n);
			base_release(c->base, n);
		} else {
			mb_sem_acquire(c->ours, n);
			mb_sem_release(c->ours, n);
		}
	}
	return NULL;
}

static double
uncontended(enum impl which, uint64_t ops)
{
	struct base_sem base = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, CAPACITY};
	struct mb_sem_opts o = {.capacity = CAPACITY};
	struct mb_sem *ours;
	double t0, t1;

	mb_sem_create(&o, &ours);
	t0 = mb_bench_now();
	for (uint64_t i = 0; i < ops; i++) {
		if (which == BASE) {
			base_acquire(&base, 1);
			base_release(&base, 1);
		} else {
			mb_sem_acquire(ours, 1);
			mb_sem_release(ours, 1);
		}
	}
	t1 = mb_bench_now();
	mb_sem_destroy(&ours);
	return (t1 - t0) * 1e9 / (double)ops;
}

static double
contended(enum impl which, int threads, uint64_t ops_per_thread)
{
	struct base_sem base = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, CAPACITY};
	struct mb_sem_opts o = {.capacity = CAPACITY};
	struct mb_sem *ours;
	struct ctx c[64];
	pthread_t th[64];
	atomic_int go = 0;
	double t0, t1;

	mb_sem_create(&o, &ours);
	for (int i = 0; i < threads; i++) {
		c[i] = (struct ctx){which, &base, ours, ops_per_thread, 0x9e3779b9ull * (i + 1),
				    &go};
		pthread_create(&th[i], NULL, worker, &c[i]);
	}
	t0 = mb_bench_now();
	atomic_store_explicit(&go, 1, memory_order_release);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = mb_bench_now();
	mb_sem_destroy(&ours);
	return (t1 - t0) * 1e9 / (double)(ops_per_thread * (uint64_t)threads);
}

int
main(int argc, char **argv)
{
	int runs = 7, threads = 4;
	uint64_t ops = 2000000, cops = 200000;
	double base[101], ours[101], b_unc, o_unc, b_con, o_con;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			runs = 3;
			ops = 20000;
			cops = 5000;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--runs N] [--threads T]\n", argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 101 || threads < 2 || threads > 64) {
		fprintf(stderr, "--runs must be 1..101 and --threads 2..64\n");
		return 2;
	}
	for (int r = 0; r < runs; r++) {
		base[r] = uncontended(BASE, ops);
		ours[r] = uncontended(OURS, ops);
	}
	b_unc = mb_bench_median(base, runs);
	o_unc = mb_bench_median(ours, runs);
	for (int r = 0; r < runs; r++) {
		base[r] = contended(BASE, threads, cops);
		ours[r] = contended(OURS, threads, cops);
	}
	b_con = mb_bench_median(base, runs);
	o_con = mb_bench_median(ours, runs);

	printf("semaphore acquire+release: ns per pair, median of %d interleaved runs\n", runs);
	printf("%-42s %12s %12s %8s\n", "case", "mutex+cond", "mb_sem", "ratio");
	printf("%-42s %12.1f %12.1f %8.3f\n", "uncontended, 1 thread, n=1", b_unc, o_unc,
	       o_unc / b_unc);
	{
		char name[64];

		snprintf(name, sizeof(name), "contended, %d threads, n=1..8 of %d", threads,
			 CAPACITY);
		printf("%-42s %12.1f %12.1f %8.3f\n", name, b_con, o_con, o_con / b_con);
	}
	printf("(baseline is unfair: a large request can starve; mb_sem grants in FIFO order)\n");
	return 0;
}
