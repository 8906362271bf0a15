/*
 * reactor.c: pollers run round robin on one thread; one clock read per round; one doorbell.
 *
 * Everything but the stop flag and the counters belongs to the reactor's thread once it
 * runs. See mb_reactor.h for the round and the sleep handshake.
 */
#include "mb_reactor.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_pause.h>
#include <zmq.h>

#include "mb_env.h"

#define MB_LOG_MODULE "reactor"
#include "mb_log.h"

#define NAME_LEN 24
#define DEFAULT_MAX_SLEEP_NS (100 * MB_NS_PER_MS)
/* The TSC is re-anchored to CLOCK_MONOTONIC this often (one clock_gettime per period). */
#define RESYNC_NS (10 * MB_NS_PER_MS)
/* Under the virtual clock a sleep lasts at most this much real time, so an advance is seen. */
#define VIRTUAL_SLEEP_NS MB_NS_PER_MS

struct poller {
	mb_poller_fn fn;
	void *arg;
	bool done;
	char name[NAME_LEN];
};

/* TSC -> CLOCK_MONOTONIC ns: anchored at a (tsc, ns) pair, re-anchored every RESYNC_NS. */
struct tsc_clock {
	uint64_t anchor_tsc, anchor_ns;
	double ns_per_tsc;
	uint64_t resync_tsc; /* cycles between anchors */
	uint64_t last_ns;    /* never goes back */
};

struct mb_reactor {
	struct mb_reactor_opts o;
	char name[NAME_LEN];
	struct poller pollers[MB_REACTOR_MAX_POLLERS];
	uint32_t n_pollers, n_done;
	/* what a sleep waits on: [0] the doorbell's eventfd, then the watched fds and the
	 * ZMQ_FD of each watched ZeroMQ socket (zsock[i] set: checked with ZMQ_EVENTS first) */
	struct pollfd watch[MB_REACTOR_MAX_WATCHES + 1];
	void *zsock[MB_REACTOR_MAX_WATCHES + 1];
	uint32_t n_watch;
	struct mb_doorbell bell;
	struct tsc_clock clk;
	uint64_t now_ns;     /* this round's */
	uint64_t wake_at;    /* earliest wake_at of the last round */
	uint32_t spin_limit; /* idle rounds before sleeping, adapted (spin_paid()) */
	atomic_bool stop;
	_Atomic uint64_t rounds, busy_rounds, busy_tsc, idle_tsc, sleeps, wakeups, rechecks_busy;
};

static inline void
bump(_Atomic uint64_t *c, uint64_t n)
{
	/* one writer: a relaxed load and store, no locked instruction */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

void
mb_reactor_opts_init(struct mb_reactor_opts *o)
{
	memset(o, 0, sizeof(*o));
	mb_idle_opts_init(&o->idle);
	o->idle.spin_polls = 64;
	o->max_sleep_ns = DEFAULT_MAX_SLEEP_NS;
	o->cpu = -1;
}

static void
clock_init(struct tsc_clock *c)
{
	uint64_t hz = rte_get_tsc_hz(); /* 0 before the EAL: measure it */
	struct timespec ts = {0, 2 * 1000 * 1000};

	if (hz == 0) {
		uint64_t t0 = rte_rdtsc(), n0 = mb_env_now_ns();

		nanosleep(&ts, NULL);
		hz = (uint64_t)((double)(rte_rdtsc() - t0) * 1e9 /
				(double)(mb_env_now_ns() - n0 + 1));
		if (hz == 0)
			hz = 1000000000u;
	}
	c->ns_per_tsc = 1e9 / (double)hz;
	c->resync_tsc = (uint64_t)((double)RESYNC_NS / c->ns_per_tsc);
	c->anchor_tsc = rte_rdtsc();
	c->anchor_ns = mb_env_now_ns();
	c->last_ns = c->anchor_ns;
}

/* The round's time: one TSC read; CLOCK_MONOTONIC once per RESYNC_NS. */
static inline uint64_t
clock_now(struct tsc_clock *c, uint64_t tsc)
{
	uint64_t ns;

	if (mb_env_clock_is_virtual())
		return mb_env_now_ns();
	if (tsc - c->anchor_tsc >= c->resync_tsc) {
		/* a fresh TSC beside the clock read: the round's may be from before a sleep's
		 * re-check, and pairing it with a later time would run the clock ahead */
		ns = mb_env_now_ns();
		tsc = rte_rdtsc();
		/* correct the rate by what this period measured, smoothed */
		if (ns > c->anchor_ns && tsc > c->anchor_tsc)
			c->ns_per_tsc = 0.9 * c->ns_per_tsc + 0.1 * ((double)(ns - c->anchor_ns) /
								     (double)(tsc - c->anchor_tsc));
		c->anchor_tsc = tsc;
		c->anchor_ns = ns;
	} else {
		ns = c->anchor_ns + (uint64_t)((double)(tsc - c->anchor_tsc) * c->ns_per_tsc);
	}
	if (ns < c->last_ns)
		ns = c->last_ns;
	c->last_ns = ns;
	return ns;
}

int
mb_reactor_create(const struct mb_reactor_opts *o, struct mb_reactor **out)
{
	struct mb_reactor *r;
	int rc;

	*out = NULL;
	if ((unsigned)o->idle.mode > MB_IDLE_SLEEP)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->o = *o;
	if (r->o.max_sleep_ns == 0)
		r->o.max_sleep_ns = DEFAULT_MAX_SLEEP_NS;
	snprintf(r->name, sizeof(r->name), "%s", o->name != NULL ? o->name : "reactor");
	r->o.name = r->name;
	rc = mb_doorbell_init(&r->bell);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->watch[0] = (struct pollfd){.fd = mb_doorbell_fd(&r->bell), .events = POLLIN};
	r->n_watch = 1;
	clock_init(&r->clk);
	r->now_ns = r->clk.last_ns;
	*out = r;
	return 0;
}

void
mb_reactor_destroy(struct mb_reactor **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	mb_doorbell_fini(&(*rp)->bell);
	free(*rp);
	*rp = NULL;
}

int
mb_reactor_add_poller(struct mb_reactor *r, const char *name, mb_poller_fn fn, void *arg)
{
	struct poller *p;

	if (r->n_pollers == MB_REACTOR_MAX_POLLERS)
		return -ENOSPC;
	p = &r->pollers[r->n_pollers++];
	p->fn = fn;
	p->arg = arg;
	p->done = false;
	snprintf(p->name, sizeof(p->name), "%s", name != NULL ? name : "poller");
	return 0;
}

int
mb_reactor_watch(struct mb_reactor *r, void *zsock, int fd)
{
	size_t len = sizeof(fd);

	if (r->n_watch == MB_REACTOR_MAX_WATCHES + 1)
		return -ENOSPC;
	/* a ZeroMQ socket: its ZMQ_FD turns readable when the socket has news (commands), to
	 * be confirmed with ZMQ_EVENTS before sleeping (libzmq's edge-triggered contract) */
	if (zsock != NULL && zmq_getsockopt(zsock, ZMQ_FD, &fd, &len) != 0)
		return -EINVAL;
	r->zsock[r->n_watch] = zsock;
	r->watch[r->n_watch++] = (struct pollfd){.fd = fd, .events = POLLIN};
	return 0;
}

struct mb_doorbell *
mb_reactor_doorbell(struct mb_reactor *r)
{
	return &r->bell;
}

void
mb_reactor_wake_at(struct mb_reactor *r, uint64_t at_ns)
{
	if (at_ns < r->wake_at)
		r->wake_at = at_ns;
}

uint64_t
mb_reactor_now(const struct mb_reactor *r)
{
	return r->now_ns;
}

void
mb_reactor_stop(struct mb_reactor *r)
{
	atomic_store_explicit(&r->stop, true, memory_order_release);
	mb_doorbell_ring_slow(&r->bell);
}

const char *
mb_reactor_name(const struct mb_reactor *r)
{
	return r->name;
}

uint32_t
mb_reactor_pollers(const struct mb_reactor *r, char *buf, size_t len)
{
	size_t off = 0;

	if (len != 0)
		buf[0] = '\0';
	for (uint32_t i = 0; i < r->n_pollers && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", r->pollers[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	return r->n_pollers;
}

/* One round: every poller that is not done, once. Returns the work done. */
static uint64_t
round_once(struct mb_reactor *r, uint64_t tsc)
{
	uint64_t work = 0;

	r->now_ns = clock_now(&r->clk, tsc);
	r->wake_at = UINT64_MAX;
	for (uint32_t i = 0; i < r->n_pollers; i++) {
		struct poller *p = &r->pollers[i];
		int n;

		if (p->done)
			continue;
		n = p->fn(p->arg, r, r->now_ns);
		if (n == MB_POLLER_DONE) {
			p->done = true;
			r->n_done++;
			MB_LOG(DEBUG, "%s: poller %s done", r->name, p->name);
		} else if (n > 0) {
			work += (uint64_t)n;
		}
	}
	bump(&r->rounds, 1);
	return work;
}

/* Sleep until a ring, a watched socket, the earliest wake_at or max_sleep_ns. */
static void
sleep_now(struct mb_reactor *r, uint64_t tsc)
{
	uint64_t timeout_ns = r->o.max_sleep_ns;
	struct timespec ts;

	mb_doorbell_prepare(&r->bell);
	/* The re-check: a producer that published before the prepare is seen by this round;
	 * one that publishes after it sees the waiter and rings. */
	if (round_once(r, tsc) != 0 || r->n_done == r->n_pollers ||
	    atomic_load_explicit(&r->stop, memory_order_acquire)) {
		mb_doorbell_cancel(&r->bell);
		bump(&r->rechecks_busy, 1);
		return;
	}
	if (r->wake_at != UINT64_MAX)
		timeout_ns = r->wake_at > r->now_ns ? r->wake_at - r->now_ns : 0;
	if (timeout_ns > r->o.max_sleep_ns)
		timeout_ns = r->o.max_sleep_ns;
	if (mb_env_clock_is_virtual() && timeout_ns > VIRTUAL_SLEEP_NS)
		timeout_ns = VIRTUAL_SLEEP_NS;
	if (timeout_ns == 0) {
		/* a poller is due already (its wake_at passed during the re-check): no sleep */
		mb_doorbell_cancel(&r->bell);
		return;
	}
	/*
	 * A watched ZeroMQ socket that already holds input would not wake the poll (its fd
	 * signals commands, not messages): ZMQ_EVENTS first, which also re-arms the fd. This
	 * is what zmq_poll() does, without its second pass and per-socket passes after the
	 * wake: a sleep costs one ZMQ_EVENTS per socket and one ppoll().
	 */
	for (uint32_t i = 1; i < r->n_watch; i++) {
		int ev = 0;
		size_t len = sizeof(ev);

		if (r->zsock[i] != NULL &&
		    zmq_getsockopt(r->zsock[i], ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN)) {
			mb_doorbell_cancel(&r->bell);
			bump(&r->rechecks_busy, 1);
			return;
		}
	}
	bump(&r->sleeps, 1);
	ts.tv_sec = (time_t)(timeout_ns / MB_NS_PER_S);
	ts.tv_nsec = (long)(timeout_ns % MB_NS_PER_S);
	r->watch[0].revents = 0;
	if (ppoll(r->watch, r->n_watch, &ts, NULL) < 0 && errno != EINTR)
		MB_LOG_ONCE(WARNING, "%s: ppoll: %s", r->name, strerror(errno));
	if (r->watch[0].revents & POLLIN)
		bump(&r->wakeups, 1);
	mb_doorbell_drain(&r->bell);
}

/*
 * How many idle rounds to spin before sleeping, adapted (MB_IDLE_SLEEP): when work came
 * while spinning, spinning paid and the limit grows back (up to idle.spin_polls); when the
 * spin ended in a sleep anyway, it only burnt a core another thread (the producer, on a
 * small machine) could have used, and the limit halves.
 */
static inline void
spin_paid(struct mb_reactor *r, bool paid)
{
	uint64_t more = (uint64_t)r->spin_limit * 2 + 1;

	if (paid)
		r->spin_limit = more < r->o.idle.spin_polls ? (uint32_t)more : r->o.idle.spin_polls;
	else
		r->spin_limit /= 2;
}

int
mb_reactor_run(struct mb_reactor *r)
{
	uint32_t idle_rounds = 0;
	uint64_t tsc = rte_rdtsc();

	r->spin_limit = r->o.idle.spin_polls;
	while (r->n_done < r->n_pollers && !atomic_load_explicit(&r->stop, memory_order_acquire)) {
		uint64_t start = tsc, work = round_once(r, start), end = rte_rdtsc();

		if (work != 0) {
			bump(&r->busy_rounds, 1);
			bump(&r->busy_tsc, end - start);
			if (idle_rounds != 0)
				spin_paid(r, true);
			idle_rounds = 0;
			tsc = end;
			continue;
		}
		if (idle_rounds < UINT32_MAX)
			idle_rounds++;
		if (r->o.idle.mode == MB_IDLE_SPIN || idle_rounds <= r->spin_limit ||
		    (r->wake_at != UINT64_MAX && r->wake_at <= r->now_ns)) {
			/* a poller due now (its wake_at passed) runs again rather than sleep */
			rte_pause();
		} else if (r->o.idle.mode == MB_IDLE_YIELD) {
			sched_yield();
		} else {
			spin_paid(r, false);
			sleep_now(r, end);
			idle_rounds = 0;
		}
		tsc = rte_rdtsc();
		bump(&r->idle_tsc, tsc - start);
	}
	return 0;
}

void
mb_reactor_stats(const struct mb_reactor *r, struct mb_reactor_stats *out)
{
	struct mb_reactor *m = (struct mb_reactor *)r; /* atomics need a non-const lvalue */

	out->rounds = atomic_load_explicit(&m->rounds, memory_order_relaxed);
	out->busy_rounds = atomic_load_explicit(&m->busy_rounds, memory_order_relaxed);
	out->busy_tsc = atomic_load_explicit(&m->busy_tsc, memory_order_relaxed);
	out->idle_tsc = atomic_load_explicit(&m->idle_tsc, memory_order_relaxed);
	out->sleeps = atomic_load_explicit(&m->sleeps, memory_order_relaxed);
	out->wakeups = atomic_load_explicit(&m->wakeups, memory_order_relaxed);
	out->rechecks_busy = atomic_load_explicit(&m->rechecks_busy, memory_order_relaxed);
}
