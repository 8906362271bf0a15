/*
 * reactor_test.c: pollers round robin and MB_POLLER_DONE, sleeping only when every poller
 * is idle, wake_at deadlines, no lost wakeup from producers on other threads (rings that
 * share the reactor's doorbell), stop and watched fds/sockets ending a long sleep, the round
 * clock (TSC-derived and virtual), and option limits.
 *
 * Every reactor runs on a thread of its own and is joined with a deadline (join_within()):
 * a reactor that hangs fails its test with a message instead of hanging CI. Pollers run on
 * the reactor's thread and only record what they see; the test thread asserts after the
 * join (CUnit is not thread-safe).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <zmq.h>

#include "mb_env.h"
#include "mb_reactor.h"
#include "mb_ring.h"
#include "mb_test.h"
#include "mb_tsan.h"

/* ---- running a reactor on its own thread, with a deadline ---- */

struct runner {
	struct mb_reactor *r;
	pthread_t th;
	int rc;
	int done; /* set (atomically) once mb_reactor_run() returned */
};

static void *
run_thread(void *arg)
{
	struct runner *rn = arg;

	rn->rc = mb_reactor_run(rn->r);
	__atomic_store_n(&rn->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
start(struct runner *rn, struct mb_reactor *r)
{
	memset(rn, 0, sizeof(*rn));
	rn->r = r;
	rn->rc = -1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&rn->th, NULL, run_thread, rn), 0);
}

/*
 * Join the reactor's thread if mb_reactor_run() returns within @p seconds; returns whether it
 * did. If not, the reactor is stopped and joined (the test fails on the false). One that
 * ignores even mb_reactor_stop() ends the program with a message: its pollers' state lives
 * on the test's stack, so it can be neither left running nor destroyed.
 */
static bool
join_within(struct runner *rn, double seconds, const char *what)
{
	bool ok = mb_test_wait_flag(&rn->done, seconds);

	if (!ok) {
		fprintf(stderr,
			"\n    %s: mb_reactor_run() still running after %.0f s: stopping it\n",
			what, seconds);
		mb_reactor_stop(rn->r);
		if (!mb_test_wait_flag(&rn->done, 10.0)) {
			fprintf(stderr,
				"    %s: the reactor ignores mb_reactor_stop() too: giving up\n",
				what);
			fflush(NULL);
			_exit(100);
		}
	}
	pthread_join(rn->th, NULL);
	return ok;
}

static struct mb_reactor *
make(const char *name, enum mb_idle_mode mode, uint32_t spin_polls, uint64_t max_sleep_ns)
{
	struct mb_reactor_opts o;
	struct mb_reactor *r = NULL;

	mb_reactor_opts_init(&o);
	o.name = name;
	o.idle.mode = mode;
	o.idle.spin_polls = spin_polls;
	o.max_sleep_ns = max_sleep_ns;
	CU_ASSERT_EQUAL(mb_reactor_create(&o, &r), 0);
	return r;
}

static struct mb_reactor_stats
stats_of(const struct mb_reactor *r)
{
	struct mb_reactor_stats s;

	mb_reactor_stats(r, &s);
	return s;
}

/*
 * Wait (up to 10 s) until the reactor has begun its @p n-th sleep and is still announced on
 * its doorbell, then 50 ms more so that it is inside zmq_poll() (it bumps the count between
 * its re-check round and the poll).
 */
static bool
asleep(struct mb_reactor *r, uint64_t n)
{
	for (int i = 0; i < 10000; i++) {
		if (stats_of(r).sleeps >= n && atomic_load(&mb_reactor_doorbell(r)->waiters) > 0) {
			mb_env_sleep_ns(50 * MB_NS_PER_MS);
			return true;
		}
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	return false;
}

static double
secs_since(uint64_t t0_ns)
{
	return (double)(mb_env_now_ns() - t0_ns) * 1e-9;
}

/* ---- 1. round robin, DONE, names ---- */

#define RR_POLLERS 20
#define RR_CALLS (RR_POLLERS * (RR_POLLERS + 1) / 2) /* poller i is called i + 1 times */

struct rr {
	int log[2 * RR_CALLS]; /* poller ids in call order; room to see extra calls */
	unsigned int n_log;
	unsigned int calls[RR_POLLERS];
};

struct rr_arg {
	struct rr *rr;
	int id;
};

static int
rr_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct rr_arg *a = arg;
	struct rr *rr = a->rr;

	(void)r;
	(void)now_ns;
	if (rr->n_log < sizeof(rr->log) / sizeof(rr->log[0]))
		rr->log[rr->n_log] = a->id;
	rr->n_log++;
	if (++rr->calls[a->id] == (unsigned int)a->id + 1)
		return MB_POLLER_DONE;
	return a->id % 2; /* odd pollers report work, even ones are idle */
}

static void
test_round_robin(void)
{
	struct mb_reactor *r = make("rr", MB_IDLE_SLEEP, 64, 100 * MB_NS_PER_MS);
	struct rr rr = {{0}, 0, {0}};
	struct rr_arg args[RR_POLLERS];
	char name[16], full[RR_POLLERS * 8] = "", buf[256], small[10];
	struct mb_reactor_stats s;
	struct runner rn;
	unsigned int pos = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (int i = 0; i < RR_POLLERS; i++) {
		args[i] = (struct rr_arg){&rr, i};
		snprintf(name, sizeof(name), "rr%d", i);
		CU_ASSERT_EQUAL(mb_reactor_add_poller(r, name, rr_poll, &args[i]), 0);
		snprintf(full + strlen(full), sizeof(full) - strlen(full), "%s%s", i ? ", " : "",
			 name);
	}
	CU_ASSERT_STRING_EQUAL(mb_reactor_name(r), "rr");
	CU_ASSERT_EQUAL(mb_reactor_pollers(r, buf, sizeof(buf)), RR_POLLERS);
	CU_ASSERT_STRING_EQUAL(buf, full); /* "rr0, rr1, ..., rr19", in the order added */
	/* a short buffer: truncated, terminated, a prefix of the whole list */
	memset(small, 'x', sizeof(small));
	CU_ASSERT_EQUAL(mb_reactor_pollers(r, small, sizeof(small)), RR_POLLERS);
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_EQUAL(strncmp(small, full, sizeof(small) - 1), 0);

	start(&rn, r);
	CU_ASSERT_TRUE_FATAL(join_within(&rn, 30.0, "round robin"));
	CU_ASSERT_EQUAL(rn.rc, 0);

	/* Round k calls every poller not yet done (i >= k), in the order they were added; poller
	 * i returned DONE on its (i + 1)-th call and was never called again. */
	CU_ASSERT_EQUAL(rr.n_log, RR_CALLS);
	for (int k = 0; k < RR_POLLERS; k++)
		for (int i = k; i < RR_POLLERS && pos < rr.n_log; i++, pos++)
			if (rr.log[pos] != i) {
				CU_FAIL("a poller was called out of round-robin order");
				printf("\n    round %d: call %u was poller %d, expected %d\n", k,
				       pos, rr.log[pos], i);
				k = RR_POLLERS;
				break;
			}
	for (int i = 0; i < RR_POLLERS; i++)
		CU_ASSERT_EQUAL(rr.calls[i], (unsigned int)i + 1);
	s = stats_of(r);
	CU_ASSERT_EQUAL(s.rounds, RR_POLLERS);
	/* rounds 0..18 each had an odd poller that was not yet done (19); round 19 had none */
	CU_ASSERT_EQUAL(s.busy_rounds, RR_POLLERS - 1);
	CU_ASSERT_EQUAL(s.sleeps, 0); /* never more than 64 idle rounds in a row */
	mb_reactor_destroy(&r);
	CU_ASSERT_PTR_NULL(r);
	mb_reactor_destroy(&r); /* NULL is accepted */
}

/* ---- 2. sleep only when every poller is idle; wake_at ---- */

#define IDLE_BUSY_ROUNDS 2000u
#define TIMER_NS (20 * MB_NS_PER_MS)

struct idle_test {
	unsigned int busy_left; /* rounds the busy poller still reports work */
	uint64_t busy_calls;
	uint64_t max_sleeps_busy; /* stats.sleeps as the busy poller saw it */
	uint64_t deadline;	  /* the timer asked wake_at(deadline) */
	uint64_t sleeps_at_ask;
	uint64_t early_calls; /* timer calls with now < deadline */
	uint64_t fired_now, fired_real, sleeps_at_fire;
	bool finished;
};

static int
busy_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct idle_test *t = arg;
	uint64_t sleeps = stats_of(r).sleeps;

	(void)now_ns;
	if (t->finished)
		return MB_POLLER_DONE;
	if (t->busy_left == 0)
		return 0;
	t->busy_left--;
	t->busy_calls++;
	if (sleeps > t->max_sleeps_busy)
		t->max_sleeps_busy = sleeps;
	return 1;
}

static int
idle_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct idle_test *t = arg;

	(void)r;
	(void)now_ns;
	return t->finished ? MB_POLLER_DONE : 0;
}

static int
timer_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct idle_test *t = arg;

	if (t->finished)
		return MB_POLLER_DONE;
	if (t->busy_left > 0)
		return 0;
	if (t->deadline == 0) {
		/* the first idle round: ask to be called again 20 ms from now */
		t->deadline = now_ns + TIMER_NS;
		t->sleeps_at_ask = stats_of(r).sleeps;
		mb_reactor_wake_at(r, t->deadline);
		return 0;
	}
	if (now_ns < t->deadline) {
		t->early_calls++;
		mb_reactor_wake_at(r, t->deadline); /* asked again in every round, as documented */
		return 0;
	}
	t->fired_now = now_ns;
	t->fired_real = mb_env_now_ns();
	t->sleeps_at_fire = stats_of(r).sleeps;
	t->finished = true;
	return 1; /* work: the next round (everyone DONE) follows at once, with no sleep */
}

static void
test_sleep_only_when_all_idle(void)
{
	/* a 10 s max sleep: only the wake_at deadline can end the sleep in time */
	struct mb_reactor *r = make("idle", MB_IDLE_SLEEP, 4, 10 * MB_NS_PER_S);
	struct idle_test t = {.busy_left = IDLE_BUSY_ROUNDS};
	struct mb_reactor_stats s;
	struct runner rn;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "idle0", idle_poll, &t), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "timer", timer_poll, &t), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "busy", busy_poll, &t), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "idle1", idle_poll, &t), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "idle2", idle_poll, &t), 0);
	start(&rn, r);
	CU_ASSERT_TRUE_FATAL(join_within(&rn, 30.0, "sleep only when idle"));
	s = stats_of(r);

	/* One busy poller among four idle ones: no sleep in 2000 rounds (spin_polls is 4). */
	CU_ASSERT_EQUAL(t.busy_calls, IDLE_BUSY_ROUNDS);
	CU_ASSERT_EQUAL(t.max_sleeps_busy, 0);
	CU_ASSERT(s.busy_rounds >= IDLE_BUSY_ROUNDS);
	/* All idle: it slept, and slept until the deadline rather than spinning or napping:
	 * a few rounds per sleep (4 idle rounds and the re-check), a few sleeps at most. */
	CU_ASSERT(t.sleeps_at_fire > t.sleeps_at_ask);
	CU_ASSERT(t.sleeps_at_fire - t.sleeps_at_ask <= 10);
	CU_ASSERT(t.early_calls <= 100);
	/* Called at the deadline: not before it (the round clock may lead CLOCK_MONOTONIC by
	 * a TSC extrapolation error, 1 ms is generous), not much after it. */
	CU_ASSERT(t.fired_now >= t.deadline);
	CU_ASSERT(t.fired_real + MB_NS_PER_MS >= t.deadline);
	CU_ASSERT(t.fired_real < t.deadline + 500 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(s.wakeups, 0); /* nothing rang: the sleeps ended by their timeout */
	/* the 20 ms wait is idle time; the busy rounds are busy time */
	CU_ASSERT((double)s.idle_tsc / (double)rte_get_tsc_hz() >= 0.015);
	CU_ASSERT(s.busy_tsc > 0);
	printf("\n    %lu early calls, %lu sleeps, called %.2f ms after the deadline\n",
	       (unsigned long)t.early_calls, (unsigned long)(t.sleeps_at_fire - t.sleeps_at_ask),
	       ((double)t.fired_real - (double)t.deadline) * 1e-6);
	mb_reactor_destroy(&r);
}

struct count_poll {
	unsigned int left; /* idle calls before DONE */
	uint64_t max_sleeps;
};

static int
count_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct count_poll *c = arg;
	uint64_t sleeps = stats_of(r).sleeps;

	(void)now_ns;
	if (sleeps > c->max_sleeps)
		c->max_sleeps = sleeps;
	if (c->left == 0)
		return MB_POLLER_DONE;
	c->left--;
	return 0;
}

static void
test_spin_and_yield_never_sleep(void)
{
	const enum mb_idle_mode modes[] = {MB_IDLE_SPIN, MB_IDLE_YIELD};

	for (unsigned int m = 0; m < 2; m++) {
		/* 5000 idle rounds with spin_polls 4: a sleeping reactor would sleep ~1000 times
		 * (and, with no wake_at, each for the full 10 s) */
		struct mb_reactor *r = make("nosleep", modes[m], 4, 10 * MB_NS_PER_S);
		struct count_poll c = {.left = 5000};
		struct runner rn;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "count", count_poll, &c), 0);
		start(&rn, r);
		CU_ASSERT_TRUE(join_within(&rn, 30.0, "spin/yield"));
		CU_ASSERT_EQUAL(c.left, 0);
		CU_ASSERT_EQUAL(c.max_sleeps, 0);
		CU_ASSERT_EQUAL(stats_of(r).sleeps, 0);
		CU_ASSERT_EQUAL(stats_of(r).rounds, 5001);
		CU_ASSERT_EQUAL(stats_of(r).busy_rounds, 0);
		mb_reactor_destroy(&r);
	}
}

/*
 * A poller that asks to run again at once (wake_at(now)) during the re-check round, just
 * after a sleep that the bell ended: the reactor must not sleep then, and must count
 * neither a sleep nor a doorbell wakeup that it did not have. Each cycle: the reactor
 * sleeps (10 s), the test rings, the poller asks wake_at(now) in the next re-check.
 */
#define DUE_CYCLES 20

struct due_test {
	int cycle; /* atomic: cycles done */
	uint64_t rings_seen;
	bool pending;
};

static int
due_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct due_test *d = arg;
	struct mb_doorbell *bell = mb_reactor_doorbell(r);
	uint64_t rings = atomic_load(&bell->rings);
	int cycle = __atomic_load_n(&d->cycle, __ATOMIC_RELAXED);

	if (cycle == DUE_CYCLES)
		return MB_POLLER_DONE;
	if (rings != d->rings_seen) { /* the test rang: a sleep ended */
		d->rings_seen = rings;
		d->pending = true;
	}
	if (d->pending && atomic_load(&bell->waiters) > 0) { /* the re-check round */
		mb_reactor_wake_at(r, now_ns);
		d->pending = false;
		__atomic_store_n(&d->cycle, cycle + 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static void
test_due_at_recheck(void)
{
	struct mb_reactor *r = make("due", MB_IDLE_SLEEP, 4, 10 * MB_NS_PER_S);
	struct mb_doorbell *bell;
	struct due_test d = {0};
	struct mb_reactor_stats s;
	struct runner rn;
	int rung = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	bell = mb_reactor_doorbell(r);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "due", due_poll, &d), 0);
	start(&rn, r);
	for (int i = 0; i < DUE_CYCLES; i++) {
		bool slept = false;

		/* in cycle i, asleep (announced, and still so 20 ms later): ring */
		for (int t = 0; t < 1000 && !slept; t++) {
			if (__atomic_load_n(&d.cycle, __ATOMIC_ACQUIRE) == i &&
			    atomic_load(&bell->waiters) > 0) {
				mb_env_sleep_ns(20 * MB_NS_PER_MS);
				slept = __atomic_load_n(&d.cycle, __ATOMIC_ACQUIRE) == i &&
					atomic_load(&bell->waiters) > 0;
			} else {
				mb_env_sleep_ns(MB_NS_PER_MS);
			}
		}
		if (!slept)
			break;
		mb_doorbell_ring(bell);
		rung++;
	}
	CU_ASSERT_EQUAL(rung, DUE_CYCLES);
	CU_ASSERT_TRUE(join_within(&rn, 30.0, "due at the re-check"));
	s = stats_of(r);
	printf("\n    %d cycles, %lu sleeps, %lu doorbell wakeups, %lu rings\n", d.cycle,
	       (unsigned long)s.sleeps, (unsigned long)s.wakeups,
	       (unsigned long)atomic_load(&bell->rings));
	CU_ASSERT_EQUAL(d.cycle, DUE_CYCLES);
	CU_ASSERT_EQUAL(atomic_load(&bell->rings), DUE_CYCLES);
	/* it slept DUE_CYCLES times, each ended by a ring; the re-checks that found a poller
	 * due were no sleeps */
	CU_ASSERT_EQUAL(s.sleeps, DUE_CYCLES);
	CU_ASSERT_EQUAL(s.wakeups, DUE_CYCLES);
	mb_reactor_destroy(&r);
}

/* ---- 3. no lost wakeup: producers on other threads, rings on the reactor's doorbell ---- */

#define STRESS_PRODUCERS 4 /* most */
#ifdef MB_HAVE_TSAN
#define STRESS_ITEMS 100000u /* per producer; TSan is several times slower */
#define PINGPONG_ITEMS 20000u
#else
#define STRESS_ITEMS 200000u
#define PINGPONG_ITEMS 50000u
#endif
#define STRESS_BURST 64
/* A producer waits this long for the reactor to drain its ring. The reactor sleeps for up
 * to 10 s: only a lost wakeup (with every other producer waiting too) gets near it. */
#define STRESS_WAIT_NS (3 * MB_NS_PER_S)

struct stress {
	unsigned int producers;
	uint64_t items;		 /* per producer */
	unsigned int burst_max;	 /* items per burst: 1..burst_max */
	unsigned int wait_every; /* wait for the drain after 1 burst in wait_every */
	struct mb_ring *rings[STRESS_PRODUCERS];
	_Atomic uint64_t consumed[STRESS_PRODUCERS]; /* by the reactor; producers wait on it */
	uint64_t last[STRESS_PRODUCERS];	     /* reactor thread: last item id per ring */
	uint8_t *seen;				     /* reactor thread: deliveries per item */
	uint64_t order_errors, bad_ids;		     /* reactor thread */
	atomic_uint stalls;			     /* drain waits that hit STRESS_WAIT_NS */
	atomic_uint full_stalls;      /* enqueues that found the ring full for 20 s */
	atomic_bool abort;	      /* set on a stall: every producer gives up */
	_Atomic uint64_t drain_waits; /* producer waits for a drain */
};

struct stress_arg {
	struct stress *s;
	unsigned int id;
};

/* The poller for ring @c id: drain a burst; DONE once all of its producer's items are in. */
static int
drain_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct stress_arg *a = arg;
	struct stress *s = a->s;
	uint64_t consumed = atomic_load_explicit(&s->consumed[a->id], memory_order_relaxed);
	void *objs[STRESS_BURST];
	unsigned int n;

	(void)r;
	(void)now_ns;
	if (consumed == s->items)
		return MB_POLLER_DONE;
	n = mb_ring_dequeue_burst(s->rings[a->id], objs, STRESS_BURST);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t id = (uint64_t)(uintptr_t)objs[i] - 1;

		if (id / s->items != a->id) {
			s->bad_ids++;
			continue;
		}
		if (s->seen[id] < UINT8_MAX)
			s->seen[id]++;
		if (id + 1 <= s->last[a->id])
			s->order_errors++;
		s->last[a->id] = id + 1;
	}
	atomic_store_explicit(&s->consumed[a->id], consumed + n, memory_order_release);
	return (int)n;
}

static bool
drained(struct stress *s, unsigned int id, uint64_t sent)
{
	return atomic_load_explicit(&s->consumed[id], memory_order_acquire) >= sent;
}

/*
 * Wait until the reactor has taken all @p sent items of producer @p id: spin a little
 * first, so that the next burst often follows the drain closely and lands while the
 * reactor is on its way to sleep (its idle rounds, announcement and re-check); then yield,
 * then poll every 20 us. False after STRESS_WAIT_NS.
 */
static bool
wait_drained(struct stress *s, unsigned int id, uint64_t sent)
{
	uint64_t deadline;

	for (int i = 0; i < 20000; i++)
		if (drained(s, id, sent))
			return true;
	for (int i = 0; i < 100; i++) {
		if (drained(s, id, sent))
			return true;
		sched_yield();
	}
	deadline = mb_env_now_ns() + STRESS_WAIT_NS;
	while (!drained(s, id, sent)) {
		if (mb_env_now_ns() > deadline)
			return false;
		mb_env_sleep_ns(20 * MB_NS_PER_US);
	}
	return true;
}

static void
spin(uint64_t *rng, uint64_t max)
{
	for (uint64_t n = mb_test_rand(rng) % max; n > 0; n--)
		atomic_signal_fence(memory_order_seq_cst);
}

static void *
stress_producer(void *arg)
{
	struct stress_arg *a = arg;
	struct stress *s = a->s;
	uint64_t rng = 0x9e3779b97f4a7c15u * (a->id + 1), sent = 0;
	uintptr_t batch[STRESS_BURST];

	while (sent < s->items && !atomic_load(&s->abort)) {
		unsigned int n = 1 + (unsigned int)(mb_test_rand(&rng) % s->burst_max), done = 0;
		uint64_t full_deadline = mb_env_now_ns() + 20 * MB_NS_PER_S;
		unsigned int pause = (unsigned int)(mb_test_rand(&rng) % (2 * s->wait_every));

		if (n > s->items - sent)
			n = (unsigned int)(s->items - sent);
		for (unsigned int i = 0; i < n; i++) /* 1-based: no NULL pointer */
			batch[i] = (uintptr_t)(a->id * s->items + sent + i + 1);
		while (done < n) {
			unsigned int k = mb_ring_enqueue_burst(
				s->rings[a->id], (void *const *)&batch[done], n - done);

			done += k;
			if (k == 0 && mb_env_now_ns() > full_deadline) {
				atomic_fetch_add(&s->full_stalls, 1); /* the reactor stopped */
				atomic_store(&s->abort, true);
				return NULL;
			}
			if (k == 0)
				sched_yield();
		}
		sent += n;
		/*
		 * Pauses, so that the reactor runs out of work and sleeps often. After one burst
		 * in wait_every, wait until the reactor has drained this ring, then publish the
		 * next burst after a random pause (mostly 0 to ~10 us), so that it lands anywhere
		 * on the reactor's way to sleep. With one producer that waits every time
		 * (ping-pong), each lost wakeup stalls it; with several, the last one's ring is
		 * often all that can wake the reactor. Else a short sleep or spin of random length.
		 */
		if (pause < 2) {
			atomic_fetch_add_explicit(&s->drain_waits, 1, memory_order_relaxed);
			if (!wait_drained(s, a->id, sent)) {
				atomic_fetch_add(&s->stalls, 1);
				atomic_store(&s->abort, true);
				return NULL;
			}
			/* log-uniform, 0 to ~10 us: every point of the reactor's way to sleep;
			 * now and then 50 to 200 us, so that it does get to sleep */
			if (mb_test_rand(&rng) % 8 == 0)
				mb_env_sleep_ns(50 * MB_NS_PER_US +
						mb_test_rand(&rng) % (150 * MB_NS_PER_US));
			else
				spin(&rng, 2u << (mb_test_rand(&rng) % 15));
		} else if (pause % 2 == 0) {
			mb_env_sleep_ns(mb_test_rand(&rng) % (100 * MB_NS_PER_US));
		} else {
			spin(&rng, 1024);
		}
	}
	return NULL;
}

static void
run_stress(uint32_t spin_polls, unsigned int producers, uint64_t items, unsigned int burst_max,
	   unsigned int wait_every)
{
	const uint64_t total = (uint64_t)producers * items;
	struct mb_reactor *r = make("stress", MB_IDLE_SLEEP, spin_polls, 10 * MB_NS_PER_S);
	struct stress_arg args[STRESS_PRODUCERS];
	pthread_t threads[STRESS_PRODUCERS];
	struct stress s = {
		.producers = producers,
		.items = items,
		.burst_max = burst_max,
		.wait_every = wait_every,
	};
	struct mb_reactor_stats st;
	uint64_t missing = 0, dup = 0, t0;
	struct runner rn;
	bool joined;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FATAL(producers <= STRESS_PRODUCERS && burst_max <= STRESS_BURST);
	s.seen = calloc(total, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.seen);
	for (unsigned int p = 0; p < producers; p++) {
		struct mb_ring_opts o;
		char name[32];

		snprintf(name, sizeof(name), "reactor_s%u_%u", spin_polls, p);
		mb_ring_opts_init(&o);
		o.name = name;
		o.capacity = 1024;
		o.doorbell = mb_reactor_doorbell(r);
		CU_ASSERT_EQUAL_FATAL(mb_ring_create(&o, &s.rings[p]), 0);
		CU_ASSERT_PTR_EQUAL(mb_ring_doorbell(s.rings[p]), mb_reactor_doorbell(r));
		args[p] = (struct stress_arg){&s, p};
		snprintf(name, sizeof(name), "drain%u", p);
		CU_ASSERT_EQUAL(mb_reactor_add_poller(r, name, drain_poll, &args[p]), 0);
	}
	t0 = mb_env_now_ns();
	start(&rn, r);
	for (unsigned int p = 0; p < producers; p++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[p], NULL, stress_producer, &args[p]),
				      0);
	for (unsigned int p = 0; p < producers; p++)
		pthread_join(threads[p], NULL); /* bounded: a stall aborts them all */
	if (atomic_load(&s.abort)) {
		fprintf(stderr,
			"\n    stress: a producer stalled (%u drain waits over %.0f s, "
			"%u full rings): stopping the reactor\n",
			atomic_load(&s.stalls), (double)STRESS_WAIT_NS * 1e-9,
			atomic_load(&s.full_stalls));
		mb_reactor_stop(r);
	}
	joined = join_within(&rn, 30.0, "stress");
	CU_ASSERT_TRUE(joined);
	st = stats_of(r);
	printf("\n    %u producer(s), spin_polls %u: %.2f s, %lu rounds, %lu sleeps, %lu doorbell "
	       "wakeups, "
	       "%lu re-checks busy, %lu drain waits\n",
	       producers, spin_polls, secs_since(t0), (unsigned long)st.rounds,
	       (unsigned long)st.sleeps, (unsigned long)st.wakeups, (unsigned long)st.rechecks_busy,
	       (unsigned long)atomic_load(&s.drain_waits));

	/* A lost wakeup leaves the reactor asleep (10 s) while every producer waits for it. */
	CU_ASSERT_EQUAL(atomic_load(&s.stalls), 0);
	CU_ASSERT_EQUAL(atomic_load(&s.full_stalls), 0);
	for (uint64_t i = 0; i < total; i++) {
		if (s.seen[i] == 0)
			missing++;
		else if (s.seen[i] > 1)
			dup++;
	}
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(dup, 0);
	CU_ASSERT_EQUAL(s.bad_ids, 0);
	CU_ASSERT_EQUAL(s.order_errors, 0); /* each ring is FIFO */
	for (unsigned int p = 0; p < producers; p++)
		CU_ASSERT_EQUAL(atomic_load(&s.consumed[p]), items);
	/* The sleep path really was exercised, many times... */
	CU_ASSERT(st.sleeps >= 200);
	CU_ASSERT(st.wakeups >= 200);
	/* ...and every sleep was ended by the doorbell: none lasted its 10 s. */
	CU_ASSERT_EQUAL(st.sleeps, st.wakeups);
	for (unsigned int p = 0; p < producers; p++)
		mb_ring_destroy(&s.rings[p]);
	free(s.seen);
	mb_reactor_destroy(&r);
}

static void
test_stress_spin0(void)
{
	run_stress(0, STRESS_PRODUCERS, STRESS_ITEMS, STRESS_BURST, 2);
}

static void
test_stress_spin64(void)
{
	run_stress(64, STRESS_PRODUCERS, STRESS_ITEMS, STRESS_BURST, 2);
}

/* One producer that waits for every burst to be drained: each lost wakeup is a stall. */
static void
test_pingpong_spin0(void)
{
	run_stress(0, 1, PINGPONG_ITEMS, 4, 1);
}

static void
test_pingpong_spin64(void)
{
	run_stress(64, 1, PINGPONG_ITEMS, 4, 1);
}

/* ---- 4. stop from another thread ---- */

static int
forever_idle(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	(void)r;
	(void)now_ns;
	atomic_fetch_add_explicit((_Atomic uint64_t *)arg, 1, memory_order_relaxed);
	return 0;
}

static void
test_stop_ends_a_long_sleep(void)
{
	struct mb_reactor *r = make("stop", MB_IDLE_SLEEP, 4, 10 * MB_NS_PER_S);
	_Atomic uint64_t calls = 0;
	struct runner rn;
	uint64_t t0;
	double took;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "idle", forever_idle, &calls), 0);
	start(&rn, r);
	CU_ASSERT_TRUE(asleep(r, 1));
	t0 = mb_env_now_ns();
	mb_reactor_stop(r);
	/* It sleeps for up to 10 s: only the stop's ring can end it this soon. */
	CU_ASSERT_TRUE(join_within(&rn, 20.0, "stop"));
	took = secs_since(t0);
	CU_ASSERT(took < 2.0);
	CU_ASSERT_EQUAL(rn.rc, 0);
	CU_ASSERT(atomic_load(&calls) > 0);
	CU_ASSERT_EQUAL(stats_of(r).sleeps, 1);
	CU_ASSERT_EQUAL(stats_of(r).wakeups, 1);
	printf("\n    stopped %.2f ms after mb_reactor_stop()\n", took * 1e3);
	mb_reactor_destroy(&r);
}

/* ---- 5. watched fd and ZeroMQ socket ---- */

struct watch_test {
	int pipe_rd;
	void *zsock;
	char pipe_buf[16], zmq_buf[16];
	int pipe_got, zmq_got; /* set atomically by the pollers */
};

static int
pipe_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct watch_test *w = arg;
	ssize_t n;

	(void)r;
	(void)now_ns;
	if (__atomic_load_n(&w->pipe_got, __ATOMIC_RELAXED))
		return MB_POLLER_DONE;
	n = read(w->pipe_rd, w->pipe_buf, sizeof(w->pipe_buf) - 1);
	if (n <= 0)
		return 0;
	__atomic_store_n(&w->pipe_got, 1, __ATOMIC_RELEASE);
	return (int)n;
}

static int
zsock_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct watch_test *w = arg;
	int n;

	(void)r;
	(void)now_ns;
	if (__atomic_load_n(&w->zmq_got, __ATOMIC_RELAXED))
		return MB_POLLER_DONE;
	n = zmq_recv(w->zsock, w->zmq_buf, sizeof(w->zmq_buf) - 1, ZMQ_DONTWAIT);
	if (n < 0)
		return 0;
	__atomic_store_n(&w->zmq_got, 1, __ATOMIC_RELEASE);
	return 1;
}

static void
test_watch_wakes(void)
{
	struct mb_reactor *r = make("watch", MB_IDLE_SLEEP, 4, 10 * MB_NS_PER_S);
	struct watch_test w = {0};
	void *ctx = zmq_ctx_new(), *peer;
	int fds[2];
	struct runner rn;
	uint64_t t0, sleeps;
	double pipe_s = -1, zmq_s = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	w.pipe_rd = fds[0];
	w.zsock = zmq_socket(ctx, ZMQ_PAIR);
	peer = zmq_socket(ctx, ZMQ_PAIR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.zsock);
	CU_ASSERT_PTR_NOT_NULL_FATAL(peer);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(w.zsock, "inproc://reactor-watch"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_connect(peer, "inproc://reactor-watch"), 0);
	CU_ASSERT_EQUAL(mb_reactor_watch(r, NULL, fds[0]), 0);
	CU_ASSERT_EQUAL(mb_reactor_watch(r, w.zsock, -1), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "pipe", pipe_poll, &w), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "zmq", zsock_poll, &w), 0);
	start(&rn, r);

	/* Asleep for up to 10 s: data on the pipe wakes it, and its poller reads it. */
	CU_ASSERT_TRUE(asleep(r, 1));
	sleeps = stats_of(r).sleeps; /* the sleep it is in now */
	t0 = mb_env_now_ns();
	CU_ASSERT_EQUAL(write(fds[1], "ping", 4), 4);
	if (mb_test_wait_flag(&w.pipe_got, 5.0))
		pipe_s = secs_since(t0);
	/* Asleep again (the next sleep): a message on the watched socket wakes it. */
	CU_ASSERT_TRUE(asleep(r, sleeps + 1));
	t0 = mb_env_now_ns();
	CU_ASSERT_EQUAL(zmq_send(peer, "hello", 5, 0), 5);
	if (mb_test_wait_flag(&w.zmq_got, 5.0))
		zmq_s = secs_since(t0);

	CU_ASSERT_TRUE(join_within(&rn, 20.0, "watch"));
	CU_ASSERT(pipe_s >= 0 && pipe_s < 2.0);
	CU_ASSERT(zmq_s >= 0 && zmq_s < 2.0);
	CU_ASSERT_STRING_EQUAL(w.pipe_buf, "ping");
	CU_ASSERT_STRING_EQUAL(w.zmq_buf, "hello");
	CU_ASSERT(stats_of(r).sleeps >= 2);
	CU_ASSERT_EQUAL(stats_of(r).wakeups, 0); /* woken by the watched fds, not the bell */
	printf("\n    pipe: woken in %.2f ms, zmq: %.2f ms\n", pipe_s * 1e3, zmq_s * 1e3);
	mb_reactor_destroy(&r);
	zmq_close(peer);
	zmq_close(w.zsock);
	zmq_ctx_term(ctx);
	close(fds[0]);
	close(fds[1]);
}

/* ---- 6. the round clock ---- */

#define CLOCK_POLLERS 3
#define CLOCK_RUN_NS (300 * MB_NS_PER_MS)
#define CLOCK_AHEAD_NS (2 * MB_NS_PER_MS) /* the round clock may lead by at most this */
#define CLOCK_LAG_NS (5 * MB_NS_PER_MS)

struct clock_test {
	uint64_t start, round_now, prev_now;
	uint64_t samples, backwards, not_round, not_now, lagging, max_ahead, max_lag;
	uint64_t phase_rounds;
	bool finished;
};

static int
clock_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct clock_test *c = arg;
	uint64_t real = mb_env_now_ns();

	c->samples++;
	if (now_ns != mb_reactor_now(r))
		c->not_now++;
	if (now_ns > real && now_ns - real > c->max_ahead)
		c->max_ahead = now_ns - real;
	if (real > now_ns && real - now_ns > c->max_lag)
		c->max_lag = real - now_ns;
	if (real > now_ns + CLOCK_LAG_NS)
		c->lagging++;
	return 0;
}

/* The first poller of each round: the round's time, and the phases (busy, then idle). */
static int
clock_lead(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct clock_test *c = arg;

	if (c->finished)
		return MB_POLLER_DONE;
	if (c->start == 0)
		c->start = now_ns;
	if (now_ns < c->prev_now)
		c->backwards++;
	c->prev_now = c->round_now = now_ns;
	clock_poll(arg, r, now_ns);
	if (now_ns - c->start >= CLOCK_RUN_NS) {
		c->finished = true;
		return 1;
	}
	/* 20 ms phases: busy (no sleep), then idle with a wake_at 3 ms ahead (short sleeps) */
	if ((now_ns - c->start) / (20 * MB_NS_PER_MS) % 2 == 0)
		return 1;
	mb_reactor_wake_at(r, now_ns + 3 * MB_NS_PER_MS);
	return 0;
}

static int
clock_follow(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct clock_test *c = arg;

	if (c->finished)
		return MB_POLLER_DONE;
	if (now_ns != c->round_now)
		c->not_round++;
	return clock_poll(arg, r, now_ns);
}

static void
test_round_clock(void)
{
	struct mb_reactor *r = make("clock", MB_IDLE_SLEEP, 16, 10 * MB_NS_PER_S);
	struct clock_test c = {0};
	struct mb_reactor_stats s;
	struct runner rn;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "lead", clock_lead, &c), 0);
	for (int i = 1; i < CLOCK_POLLERS; i++)
		CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "follow", clock_follow, &c), 0);
	start(&rn, r);
	CU_ASSERT_TRUE_FATAL(join_within(&rn, 30.0, "round clock"));
	s = stats_of(r);
	printf("\n    %lu samples, %lu rounds, %lu sleeps; round clock ahead by <= %.3f ms, "
	       "behind by <= %.3f ms, %lu samples > %.0f ms behind\n",
	       (unsigned long)c.samples, (unsigned long)s.rounds, (unsigned long)s.sleeps,
	       (double)c.max_ahead * 1e-6, (double)c.max_lag * 1e-6, (unsigned long)c.lagging,
	       (double)CLOCK_LAG_NS * 1e-6);
	CU_ASSERT(c.samples > 1000);
	CU_ASSERT(s.sleeps > 0); /* the idle phases slept (and the clock resynced after) */
	CU_ASSERT_EQUAL(c.backwards, 0);
	CU_ASSERT_EQUAL(c.not_round, 0); /* every poller of a round got the same time */
	CU_ASSERT_EQUAL(c.not_now, 0);	 /* mb_reactor_now() is that time */
	/* Never ahead of CLOCK_MONOTONIC by more than a TSC extrapolation error; behind it only
	 * by the time since the round began, which preemption (2 loaded cores) may stretch in
	 * a few samples, not in 1 %. */
	CU_ASSERT(c.max_ahead <= CLOCK_AHEAD_NS);
	CU_ASSERT(c.lagging * 100 < c.samples);
	mb_reactor_destroy(&r);
}

/* With the virtual clock, pollers see exactly the virtual time, and a sleep towards a
 * wake_at ends when the clock is advanced past it. */
#define VT0 (1000 * MB_NS_PER_S)
#define VT_STEP (5 * MB_NS_PER_S)

struct vclock_test {
	uint64_t round_now, first_now, deadline, fired_now, waiting_calls, bad_now, not_round;
	int fired;
	bool finished;
};

static int
vclock_timer(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct vclock_test *v = arg;

	v->round_now = now_ns;
	if (v->finished)
		return MB_POLLER_DONE;
	if (v->deadline == 0) {
		v->first_now = now_ns;
		v->deadline = now_ns + VT_STEP;
	}
	if (now_ns < v->deadline) {
		v->waiting_calls++;
		if (now_ns != VT0)
			v->bad_now++;
		mb_reactor_wake_at(r, v->deadline);
		return 0;
	}
	v->fired_now = now_ns;
	v->finished = true;
	__atomic_store_n(&v->fired, 1, __ATOMIC_RELEASE);
	return 1;
}

/* After the timer in each round: the same time, which is mb_reactor_now()'s too. */
static int
vclock_follow(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	struct vclock_test *v = arg;

	if (now_ns != v->round_now || now_ns != mb_reactor_now(r))
		v->not_round++;
	return v->finished ? MB_POLLER_DONE : 0;
}

static void
test_round_clock_virtual(void)
{
	struct mb_reactor *r;
	struct vclock_test v = {0};
	struct runner rn;
	bool early = false;

	mb_env_clock_use_virtual(VT0);
	r = make("vclock", MB_IDLE_SLEEP, 4, 10 * MB_NS_PER_S);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "timer", vclock_timer, &v), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "follow", vclock_follow, &v), 0);
	start(&rn, r);
	/* Virtual time stands still: it sleeps (in real slices of 1 ms), again and again, and
	 * the timer does not fire. */
	CU_ASSERT_TRUE(asleep(r, 20));
	early = __atomic_load_n(&v.fired, __ATOMIC_ACQUIRE) != 0;
	mb_env_clock_advance(VT_STEP);
	CU_ASSERT_TRUE(mb_test_wait_flag(&v.fired, 10.0));
	CU_ASSERT_TRUE(join_within(&rn, 20.0, "virtual clock"));
	mb_env_clock_use_real();

	CU_ASSERT_FALSE(early);
	CU_ASSERT_EQUAL(v.first_now, VT0);
	CU_ASSERT_EQUAL(v.fired_now, VT0 + VT_STEP); /* exactly the virtual time */
	CU_ASSERT_EQUAL(v.bad_now, 0);
	CU_ASSERT_EQUAL(v.not_round, 0);
	CU_ASSERT(v.waiting_calls >= 20);
	mb_reactor_destroy(&r);
}

/* ---- 7. options and limits ---- */

static int
noop_poll(void *arg, struct mb_reactor *r, uint64_t now_ns)
{
	(void)arg;
	(void)r;
	(void)now_ns;
	return MB_POLLER_DONE;
}

static void
test_options_and_limits(void)
{
	struct mb_reactor_opts o;
	struct mb_reactor *r = (struct mb_reactor *)&o; /* must be reset to NULL on failure */
	int fds[2];
	char buf[512];

	mb_reactor_opts_init(&o);
	CU_ASSERT_EQUAL(o.idle.mode, MB_IDLE_SLEEP);
	CU_ASSERT_EQUAL(o.idle.spin_polls, 64);
	CU_ASSERT_EQUAL(o.max_sleep_ns, 100 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(o.cpu, -1);
	CU_ASSERT_PTR_NULL(o.name);

	o.idle.mode = (enum mb_idle_mode)7;
	CU_ASSERT_EQUAL(mb_reactor_create(&o, &r), -EINVAL);
	CU_ASSERT_PTR_NULL(r);
	o.idle.mode = (enum mb_idle_mode) - 1;
	CU_ASSERT_EQUAL(mb_reactor_create(&o, &r), -EINVAL);
	CU_ASSERT_PTR_NULL(r);

	/* no name: "reactor"; a long one is cut, not overrun */
	o.idle.mode = MB_IDLE_YIELD;
	CU_ASSERT_EQUAL_FATAL(mb_reactor_create(&o, &r), 0);
	CU_ASSERT_STRING_EQUAL(mb_reactor_name(r), "reactor");
	CU_ASSERT_EQUAL(mb_reactor_pollers(r, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	mb_reactor_destroy(&r);
	o.name = "a-reactor-name-much-longer-than-any-buffer-for-it";
	CU_ASSERT_EQUAL_FATAL(mb_reactor_create(&o, &r), 0);
	CU_ASSERT(strlen(mb_reactor_name(r)) > 0);
	CU_ASSERT_EQUAL(strncmp(mb_reactor_name(r), o.name, strlen(mb_reactor_name(r))), 0);

	for (int i = 0; i < MB_REACTOR_MAX_POLLERS; i++)
		CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "p", noop_poll, NULL), 0);
	CU_ASSERT_EQUAL(mb_reactor_add_poller(r, "one-too-many", noop_poll, NULL), -ENOSPC);
	CU_ASSERT_EQUAL(mb_reactor_pollers(r, buf, sizeof(buf)), MB_REACTOR_MAX_POLLERS);

	CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	for (int i = 0; i < MB_REACTOR_MAX_WATCHES; i++)
		CU_ASSERT_EQUAL(mb_reactor_watch(r, NULL, fds[i % 2]), 0);
	CU_ASSERT_EQUAL(mb_reactor_watch(r, NULL, fds[0]), -ENOSPC);
	CU_ASSERT_EQUAL(mb_reactor_run(r), 0); /* every poller DONE in the first round */
	CU_ASSERT_EQUAL(stats_of(r).rounds, 1);
	mb_reactor_destroy(&r);
	CU_ASSERT_PTR_NULL(r);
	close(fds[0]);
	close(fds[1]);
}

static int
suite_init(void)
{
	mb_test_eal_up("reactor_test"); /* rings need EAL; the TSC rate comes from it too */
	return 0;
}

static const struct mb_test_case unit_cases[] = {
	{"options, defaults and limits", test_options_and_limits},
	{"20 pollers round robin, DONE, names", test_round_robin},
	{"sleeps only when every poller is idle; wake_at", test_sleep_only_when_all_idle},
	{"spin and yield modes never sleep", test_spin_and_yield_never_sleep},
	{"a poller due at the re-check: no sleep, no phantom wakeup", test_due_at_recheck},
	{"mb_reactor_stop ends a 10 s sleep", test_stop_ends_a_long_sleep},
	{"a watched pipe and ZeroMQ socket wake a 10 s sleep", test_watch_wakes},
	{"round clock: monotonic, one per round, near CLOCK_MONOTONIC", test_round_clock},
	{"round clock: exactly the virtual time", test_round_clock_virtual},
	{NULL, NULL},
};

static const struct mb_test_case stress_cases[] = {
	{"4 producers, shared doorbell, spin_polls 0: all once, no lost wakeup", test_stress_spin0},
	{"4 producers, shared doorbell, spin_polls 64: all once, no lost wakeup",
	 test_stress_spin64},
	{"ping-pong, spin_polls 0: no lost wakeup", test_pingpong_spin0},
	{"ping-pong, spin_polls 64: no lost wakeup", test_pingpong_spin64},
	{NULL, NULL},
};

static const struct mb_test_suite unit_suite = {"reactor", suite_init, NULL, unit_cases};
static const struct mb_test_suite stress_suite = {"reactor stress", NULL, NULL, stress_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&unit_suite, &stress_suite, NULL};
	int rc = mb_test_main("reactor_test", suites);

	mb_test_eal_down();
	return rc;
}
