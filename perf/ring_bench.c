/*
 * ring_bench.c: what struct mb_ring adds to DPDK's rte_ring, measured in the same run.
 *
 * For each case the same work runs on a raw rte_ring and on an mb_ring created with the same
 * flags: burst 32, pointers, TSC cycles per object. Runs alternate raw / ours and the median
 * of each is reported, so a noisy neighbour hits both sides alike. The ratio ours/raw is the
 * figure of merit; the target (issue #2) is at most 1.10.
 *
 * Cases:
 *   1 thread   enqueue 32 then dequeue 32 on one thread (cycles per object for the pair)
 *   2 threads  a producer and a consumer on two CPUs (cycles per object handed over);
 *              SP/SC and MP-HTS/SC
 *
 * Usage: ring_bench [--quick] [--runs N]     (needs 2 CPUs for the 2-thread cases)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "mb_eal.h"
#include "mb_bench.h"
#include "mb_env.h"
#include "mb_ring.h"

#define BURST 32
#define RING_SIZE 2048

enum impl { RAW, OURS };

struct ring_pair {
	struct rte_ring *raw;
	struct mb_ring *ours;
};

static __rte_always_inline unsigned int
enq(enum impl which, struct ring_pair *rp, void *const *objs, unsigned int n)
{
	return which == RAW ? rte_ring_enqueue_burst(rp->raw, objs, n, NULL)
			    : mb_ring_enqueue_burst(rp->ours, objs, n);
}

static __rte_always_inline unsigned int
deq(enum impl which, struct ring_pair *rp, void **objs, unsigned int n)
{
	return which == RAW ? rte_ring_dequeue_burst(rp->raw, objs, n, NULL)
			    : mb_ring_dequeue_burst(rp->ours, objs, n);
}

/* The loops are duplicated per implementation through this always-inline body, so the
 * compiler specialises each (no branch on `which` inside the timed loop). */
static inline __attribute__((always_inline)) double
one_thread_body(enum impl which, struct ring_pair *rp, uint64_t iters)
{
	void *objs[BURST];
	uint64_t t0, t1;

	for (int i = 0; i < BURST; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	t0 = rte_rdtsc_precise();
	for (uint64_t i = 0; i < iters; i++) {
		enq(which, rp, objs, BURST);
		deq(which, rp, objs, BURST);
	}
	t1 = rte_rdtsc_precise();
	return (double)(t1 - t0) / (double)(iters * BURST);
}

static double __attribute__((noinline)) one_thread_raw(struct ring_pair *rp, uint64_t iters)
{
	return one_thread_body(RAW, rp, iters);
}

static double __attribute__((noinline)) one_thread_ours(struct ring_pair *rp, uint64_t iters)
{
	return one_thread_body(OURS, rp, iters);
}

struct two_ctx {
	enum impl which;
	struct ring_pair *rp;
	uint64_t objects;
	int cpu;
	atomic_int *start;
	uint64_t cycles;
};

static void
pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static inline __attribute__((always_inline)) void
producer_body(struct two_ctx *c)
{
	void *objs[BURST];
	uint64_t sent = 0;

	for (int i = 0; i < BURST; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	while (atomic_load_explicit(c->start, memory_order_acquire) == 0)
		rte_pause();
	while (sent < c->objects) {
		unsigned int n = enq(c->which, c->rp, objs, BURST);

		if (n == 0)
			rte_pause();
		sent += n;
	}
}

static inline __attribute__((always_inline)) void
consumer_body(struct two_ctx *c)
{
	void *objs[BURST];
	uint64_t got = 0, t0;

	atomic_store_explicit(c->start, 1, memory_order_release);
	t0 = rte_rdtsc_precise();
	while (got < c->objects) {
		unsigned int n = deq(c->which, c->rp, objs, BURST);

		if (n == 0)
			rte_pause();
		got += n;
	}
	c->cycles = rte_rdtsc_precise() - t0;
}

static void *__attribute__((noinline)) producer_raw(void *arg)
{
	struct two_ctx *c = arg;

	pin(c->cpu);
	c->which = RAW;
	producer_body(c);
	return NULL;
}

static void *__attribute__((noinline)) producer_ours(void *arg)
{
	struct two_ctx *c = arg;

	pin(c->cpu);
	c->which = OURS;
	producer_body(c);
	return NULL;
}

static void __attribute__((noinline)) consumer_raw(struct two_ctx *c)
{
	c->which = RAW;
	consumer_body(c);
}

static void __attribute__((noinline)) consumer_ours(struct two_ctx *c)
{
	c->which = OURS;
	consumer_body(c);
}

static double
two_threads(enum impl which, struct ring_pair *rp, uint64_t objects, int cpu_prod, int cpu_cons)
{
	atomic_int start = 0;
	struct two_ctx prod = {.rp = rp, .objects = objects, .cpu = cpu_prod, .start = &start};
	struct two_ctx cons = {.rp = rp, .objects = objects, .cpu = cpu_cons, .start = &start};
	pthread_t th;

	pin(cpu_cons);
	pthread_create(&th, NULL, which == RAW ? producer_raw : producer_ours, &prod);
	if (which == RAW)
		consumer_raw(&cons);
	else
		consumer_ours(&cons);
	pthread_join(th, NULL);
	return (double)cons.cycles / (double)objects;
}

static int
make_pair(struct ring_pair *rp, const char *name, enum mb_ring_sync prod)
{
	struct mb_ring_opts o;
	char raw_name[32];
	unsigned int flags = RING_F_EXACT_SZ | RING_F_SC_DEQ |
			     (prod == MB_RING_SYNC_ST ? RING_F_SP_ENQ : RING_F_MP_HTS_ENQ);
	int rc;

	snprintf(raw_name, sizeof(raw_name), "raw_%s", name);
	rp->raw = rte_ring_create(raw_name, RING_SIZE, 0, flags);
	if (rp->raw == NULL)
		return -ENOMEM;
	mb_ring_opts_init(&o);
	o.name = name;
	o.capacity = RING_SIZE;
	o.numa_node = 0;
	o.prod_sync = prod;
	o.cons_sync = MB_RING_SYNC_ST;
	rc = mb_ring_create(&o, &rp->ours);
	if (rc < 0)
		rte_ring_free(rp->raw);
	return rc;
}

static void
free_pair(struct ring_pair *rp)
{
	rte_ring_free(rp->raw);
	mb_ring_destroy(&rp->ours);
}

struct result {
	const char *name;
	double raw, ours;
};

int
main(int argc, char **argv)
{
	struct mb_eal_opts eo;
	struct ring_pair sp, hts;
	struct result res[3];
	int runs = 9, n_res = 0, ncpu;
	uint64_t iters = 2000000, objects = 20000000;
	bool quick = false, miss = false;
	cpu_set_t mine;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--runs N]\n", argv[0]);
			return 2;
		}
	}
	if (quick) {
		runs = 3;
		iters = 20000;
		objects = 200000;
	}
	if (runs < 1 || runs > 101) {
		fprintf(stderr, "--runs must be 1..101\n");
		return 2;
	}
	mb_eal_opts_init(&eo);
	eo.name = "ring_bench";
	if (mb_eal_init(&eo) != 0)
		return 1;
	if (make_pair(&sp, "bench_sp", MB_RING_SYNC_ST) < 0 ||
	    make_pair(&hts, "bench_hts", MB_RING_SYNC_MT_HTS) < 0) {
		fprintf(stderr, "ring creation failed\n");
		return 1;
	}
	sched_getaffinity(0, sizeof(mine), &mine);
	ncpu = CPU_COUNT(&mine);

	{
		double raw[101], ours[101];

		for (int r = 0; r < runs; r++) {
			raw[r] = one_thread_raw(&sp, iters);
			ours[r] = one_thread_ours(&sp, iters);
		}
		res[n_res++] =
			(struct result){"1 thread   SP/SC   enq+deq", mb_bench_median(raw, runs),
					mb_bench_median(ours, runs)};
	}
	if (ncpu >= 2) {
		int c0 = -1, c1 = -1;

		for (int c = 0; c < CPU_SETSIZE && c1 < 0; c++)
			if (CPU_ISSET(c, &mine))
				*(c0 < 0 ? &c0 : &c1) = c;
		for (int k = 0; k < 2; k++) {
			struct ring_pair *rp = k == 0 ? &sp : &hts;
			double raw[101], ours[101];

			for (int r = 0; r < runs; r++) {
				raw[r] = two_threads(RAW, rp, objects, c0, c1);
				ours[r] = two_threads(OURS, rp, objects, c0, c1);
			}
			res[n_res++] = (struct result){k == 0 ? "2 threads  SP/SC   handoff"
							      : "2 threads  HTS/SC  handoff",
						       mb_bench_median(raw, runs),
						       mb_bench_median(ours, runs)};
		}
	}

	printf("ring handoff: TSC cycles per object, burst %d, median of %d interleaved runs\n",
	       BURST, runs);
	printf("%-30s %12s %12s %8s\n", "case", "rte_ring", "mb_ring", "ratio");
	for (int i = 0; i < n_res; i++) {
		double ratio = res[i].ours / res[i].raw;

		printf("%-30s %12.2f %12.2f %8.3f\n", res[i].name, res[i].raw, res[i].ours, ratio);
		if (ratio > 1.10)
			miss = true;
	}
	if (ncpu < 2)
		printf("(2-thread cases skipped: this process may use %d CPU)\n", ncpu);
	printf("target: ratio <= 1.10 ... %s%s\n", miss ? "MISSED" : "met",
	       quick ? " (quick run: too short to judge)" : "");
	free_pair(&sp);
	free_pair(&hts);
	mb_eal_fini();
	return 0;
}
