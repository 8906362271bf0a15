/*
 * batcher.c: per-model lanes, batch forming, admission tickets, deadlines, cancels, drain.
 *
 * All state here belongs to the batcher thread. Other threads reach it only through the
 * model rings (requests in), the shared doorbell (wake up), the request's cancel flag with
 * the cancel generation counter (the front door), and the tickets' notify callback (a
 * worker released units). The loop: take in new requests; if the cancel generation moved,
 * sweep for cancelled items; every sweep_ns sweep for expired ones; move granted batches to
 * the run queue; form new batches; sleep until the next batch is due (or a ring wakes us).
 */
#include "mb_batcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mb_batch.h"
#include "mb_breaker.h"
#include "mb_env.h"
#include "mb_join.h"
#include "mb_metrics.h"
#include "mb_request.h"
#include "mb_sem.h"

#define MB_LOG_MODULE "batcher"
#include "mb_log.h"

#define INTAKE_BURST 64

struct lane {
	struct mb_request_list q;
	uint32_t n;
};

struct mstate {
	struct mb_model *m;
	struct lane prio, normal;
	struct mb_batch_list pending; /* awaiting admission, in ticket order */
	uint32_t n_pending;
};

struct mb_batcher {
	struct mb_batcher_opts o;
	struct mstate *ms;
	struct mb_idle idle;
	unsigned int seen_cancel_gen;
	uint64_t next_sweep;
	bool finished; /* drained or aborted: the devices' producer is done */
};

void
mb_batcher_opts_init(struct mb_batcher_opts *o)
{
	memset(o, 0, sizeof(*o));
	mb_idle_opts_init(&o->idle);
	o->max_pending = 2;
	o->sweep_ns = 5 * MB_NS_PER_MS;
}

void
mb_batcher_wake(void *bell)
{
	mb_doorbell_ring_slow(bell);
}

static void
ticket_granted(struct mb_sem_ticket *t, void *bell)
{
	(void)t;
	mb_doorbell_ring(bell);
}

int
mb_batcher_create(const struct mb_batcher_opts *o, struct mb_batcher **out)
{
	struct mb_batcher *b;

	*out = NULL;
	if (o->devices == NULL || o->n_devices == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < o->n_devices; i++)
		if (o->devices[i] == NULL)
			return -EINVAL;
	if (o->models == NULL || o->n_models == 0 || o->results == NULL || o->bell == NULL ||
	    o->drain == NULL || o->abort == NULL || o->ingest_closed == NULL ||
	    o->cancel_gen == NULL || o->max_pending == 0 || o->sweep_ns == 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->o = *o;
	b->ms = calloc(o->n_models, sizeof(*b->ms));
	if (b->ms == NULL || mb_idle_init(&b->idle, &o->idle) < 0) {
		free(b->ms);
		free(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->n_models; i++) {
		b->ms[i].m = o->models[i];
		TAILQ_INIT(&b->ms[i].prio.q);
		TAILQ_INIT(&b->ms[i].normal.q);
		TAILQ_INIT(&b->ms[i].pending);
	}
	*out = b;
	return 0;
}

void
mb_batcher_destroy(struct mb_batcher **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	free((*bp)->ms);
	free(*bp);
	*bp = NULL;
}

/* ---- helpers ---- */

static void
lane_remove(struct mstate *s, struct lane *l, struct mb_request *r)
{
	TAILQ_REMOVE(&l->q, r, link);
	l->n--;
	atomic_fetch_sub_explicit(&s->m->queued, 1, memory_order_release);
}

static uint32_t
us_since(uint64_t from, uint64_t now)
{
	return now > from ? (uint32_t)((now - from) / 1000) : 0;
}

/* Should @r leave now rather than run? Answers it if so. */
static bool
must_leave(struct mb_request *r, uint64_t now, bool aborting)
{
	if (mb_request_cancelled(r))
		mb_request_answer(r, MB_STATUS_CANCELLED, "%s", mb_request_cancel_reason(r));
	else if (now >= r->deadline_ns)
		mb_request_answer(r, MB_STATUS_TIMEOUT, "deadline passed after %u us in queue",
				  us_since(r->arrival_ns, now));
	else if (aborting)
		mb_request_answer(r, MB_STATUS_CANCELLED, "the service is stopping; not run");
	else
		return false;
	return true;
}

/* A request of several windows (mb_join.h) is queued as its windows. */
static void
split(struct mb_batcher *b, struct mstate *s, struct lane *l, struct mb_request *r)
{
	struct mb_request *kids[MB_JOIN_MAX_WINDOWS];

	if (mb_join_split(r, s->m, kids) < 0) {
		atomic_fetch_sub_explicit(&s->m->queued, r->windows, memory_order_release);
		mb_request_answer(r, MB_STATUS_MODEL_ERROR,
				  "out of memory splitting %u windows of %s", r->windows,
				  s->m->desc->name);
		mb_results_push(b->o.results, r);
		return;
	}
	for (uint32_t i = 0; i < r->windows; i++) {
		TAILQ_INSERT_TAIL(&l->q, kids[i], link);
		l->n++;
	}
}

static void
intake(struct mb_batcher *b, struct mstate *s, unsigned int *work)
{
	void *objs[INTAKE_BURST];
	unsigned int n;

	while ((n = mb_ring_dequeue_burst(s->m->queue, objs, INTAKE_BURST)) != 0) {
		for (unsigned int i = 0; i < n; i++) {
			struct mb_request *r = objs[i];
			struct lane *l = (r->hdr.flags & MB_FLAG_PRIORITY) ? &s->prio : &s->normal;

			if (r->windows > 1) {
				split(b, s, l, r);
				continue;
			}
			TAILQ_INSERT_TAIL(&l->q, r, link);
			l->n++;
		}
		*work += n;
	}
}

static void
sweep_lane(struct mb_batcher *b, struct mstate *s, struct lane *l, uint64_t now, bool aborting)
{
	struct mb_request *r, *next;

	for (r = TAILQ_FIRST(&l->q); r != NULL; r = next) {
		next = TAILQ_NEXT(r, link);
		if (must_leave(r, now, aborting)) {
			lane_remove(s, l, r);
			mb_results_push(b->o.results, r);
		}
	}
}

/* Take items that must leave out of a batch awaiting admission; refund their units. */
static void
sweep_pending(struct mb_batcher *b, struct mstate *s, uint64_t now, bool aborting)
{
	struct mb_batch *bt, *next;

	for (bt = TAILQ_FIRST(&s->pending); bt != NULL; bt = next) {
		struct mb_device *dev = bt->device;
		uint64_t refund = 0;
		uint32_t kept = 0;
		int rc;

		next = TAILQ_NEXT(bt, link);
		for (uint32_t i = 0; i < bt->n; i++) {
			struct mb_request *r = bt->items[i];

			if (must_leave(r, now, aborting)) {
				refund += r->cost_units;
				mb_results_push(b->o.results, r);
			} else {
				bt->items[kept++] = r;
			}
		}
		bt->n = kept;
		if (kept != 0) {
			if (refund != 0 &&
			    mb_sem_ticket_reduce(dev->units, &bt->ticket, refund) == 0)
				bt->units -= refund;
			continue;
		}
		/* Empty: withdraw the ticket (or give back what it was granted). */
		rc = mb_sem_ticket_cancel(dev->units, &bt->ticket);
		if (rc == -EALREADY)
			mb_sem_release(dev->units, bt->ticket.units);
		TAILQ_REMOVE(&s->pending, bt, link);
		s->n_pending--;
		mb_device_batch_put(dev, bt);
	}
}

static void
push_run(struct mb_batch *bt)
{
	void *p = bt;

	/* The run ring holds every batch object, so it cannot be full. */
	if (mb_ring_enqueue_burst(bt->device->run, &p, 1) != 1) {
		MB_LOG(ERR, "run queue full: sizing bug");
		abort();
	}
}

static void
fail_batch(struct mb_batcher *b, struct mb_batch *bt, int err)
{
	struct mb_device *dev = bt->device;

	for (uint32_t i = 0; i < bt->n; i++) {
		struct mb_request *r = bt->items[i];

		if (err == -ESHUTDOWN)
			mb_request_answer(r, MB_STATUS_UNAVAILABLE,
					  "device %s is closed: the service is stopping",
					  dev->name);
		else
			mb_request_answer(r, MB_STATUS_TOO_LARGE,
					  "the batch needs %lu units, device %s has %lu",
					  (unsigned long)bt->units, dev->name,
					  (unsigned long)dev->capacity);
		mb_results_push(b->o.results, r);
	}
	mb_device_batch_put(dev, bt);
}

/* What routing weighs for one device; larger is better, compared field by field. */
struct route_key {
	bool closed;  /* the model's breaker on it is not open */
	bool now;     /* the batch would be admitted at once */
	bool near;    /* on the model queue's NUMA node (or either is unplaced) */
	int64_t room; /* free units less those already waiting */
};

static bool
better(const struct route_key *a, const struct route_key *b)
{
	if (a->closed != b->closed)
		return a->closed;
	if (a->now != b->now)
		return a->now;
	if (a->near != b->near)
		return a->near;
	return a->room > b->room;
}

/* The device for @p m's next batch, whose first item needs @p need units (with the base);
 * NULL when no device of its mask is large enough. */
static struct mb_device *
route(const struct mb_batcher *b, const struct mb_model *m, uint64_t need)
{
	struct mb_device *best = NULL;
	struct route_key best_key = {0};

	for (uint32_t i = 0; i < b->o.n_devices; i++) {
		struct mb_device *d = b->o.devices[i];
		struct route_key k;
		struct mb_sem_stats st;

		if (!(m->devices & MB_DEVICE_BIT(d->index)) || d->capacity < need)
			continue;
		mb_sem_stats(d->units, &st);
		k.closed = m->breakers == NULL || !mb_breaker_rejecting(&m->breakers[d->index]);
		k.now = st.waiters == 0 && st.capacity - st.in_use >= need;
		k.near = m->numa_node < 0 || d->numa_node < 0 || m->numa_node == d->numa_node;
		k.room = (int64_t)(st.capacity - st.in_use) - (int64_t)st.waiting_units;
		if (best == NULL || better(&k, &best_key)) {
			best = d;
			best_key = k;
		}
	}
	return best;
}

/* No device can take @p r (its mask is empty, or every device is too small for it). */
static void
unroutable(struct mb_batcher *b, struct mstate *s, struct lane *l, struct mb_request *r)
{
	lane_remove(s, l, r);
	if (s->m->devices == 0)
		mb_request_answer(r, MB_STATUS_UNAVAILABLE, "model %s has no device to run on",
				  s->m->desc->name);
	else
		mb_request_answer(r, MB_STATUS_TOO_LARGE,
				  "it needs %lu units with the batch's base; no device serving %s "
				  "has that many",
				  (unsigned long)(s->m->base_units + r->cost_units),
				  s->m->desc->name);
	mb_results_push(b->o.results, r);
}

/* Move granted batches (in ticket order) to the run queue. */
static void
admit(struct mb_batcher *b, struct mstate *s, unsigned int *work)
{
	struct mb_batch *bt;

	while ((bt = TAILQ_FIRST(&s->pending)) != NULL) {
		int rc = mb_sem_ticket_poll(&bt->ticket);

		if (rc == -EINPROGRESS)
			break;
		TAILQ_REMOVE(&s->pending, bt, link);
		s->n_pending--;
		(*work)++;
		if (rc == 0)
			push_run(bt);
		else
			fail_batch(b, bt, rc);
	}
}

static uint64_t
oldest_arrival(const struct mstate *s)
{
	const struct mb_request *p = TAILQ_FIRST(&s->prio.q), *n = TAILQ_FIRST(&s->normal.q);

	if (p == NULL)
		return n ? n->arrival_ns : UINT64_MAX;
	if (n == NULL)
		return p->arrival_ns;
	return p->arrival_ns < n->arrival_ns ? p->arrival_ns : n->arrival_ns;
}

static bool
due(const struct mstate *s, uint64_t now, bool flush)
{
	uint32_t waiting = s->prio.n + s->normal.n;

	if (waiting == 0)
		return false;
	if (waiting >= s->m->max_batch || flush)
		return true;
	/* Not now - oldest: a request stamped after @p now was read (by another thread, or
	 * later in this round) would wrap that subtraction and leave at once. */
	return now >= oldest_arrival(s) + (uint64_t)s->m->max_delay_us * MB_NS_PER_US;
}

/* Form one batch; false if there is no batch object free on the chosen device. */
static bool
form(struct mb_batcher *b, struct mstate *s, bool flushing)
{
	uint32_t waiting = s->prio.n + s->normal.n;
	struct mb_model *m = s->m;
	struct lane *first = s->prio.n ? &s->prio : &s->normal;
	struct mb_request *head = TAILQ_FIRST(&first->q);
	struct mb_device *dev;
	struct mb_batch *bt;
	uint64_t units = m->base_units;
	uint32_t limit;
	int rc;

	if (head == NULL)
		return false;
	dev = route(b, m, m->base_units + head->cost_units);
	if (dev == NULL) {
		unroutable(b, s, first, head);
		return true;
	}
	bt = mb_device_batch_get(dev);
	if (bt == NULL)
		return false;
	limit = m->max_batch; /* one load: it may change live */
	if (limit > dev->batch_capacity)
		limit = dev->batch_capacity;
	bt->model = m;
	while (bt->n < limit) {
		struct lane *l = s->prio.n ? &s->prio : &s->normal;
		struct mb_request *r = TAILQ_FIRST(&l->q);

		if (r == NULL)
			break;
		if (units + r->cost_units > dev->capacity && bt->n != 0)
			break; /* full by units: the rest wait for the next batch */
		lane_remove(s, l, r);
		bt->items[bt->n++] = r;
		units += r->cost_units;
	}
	bt->units = units;
	bt->formed_ns = mb_env_now_ns(); /* not the round's: the stage stamps need the moment */
	bt->close_reason = flushing					? MB_CLOSE_DRAIN
			   : waiting >= m->max_batch || bt->n < waiting ? MB_CLOSE_FULL
									: MB_CLOSE_DEADLINE;
	if (m->m_closed[bt->close_reason] != NULL)
		mb_metric_add(m->m_closed[bt->close_reason], 1);
	mb_sem_ticket_init(&bt->ticket, ticket_granted, b->o.bell);
	rc = mb_sem_enqueue(dev->units, &bt->ticket, units);
	if (rc == 0) {
		push_run(bt);
	} else if (rc == -EINPROGRESS) {
		TAILQ_INSERT_TAIL(&s->pending, bt, link);
		s->n_pending++;
	} else {
		fail_batch(b, bt, rc);
	}
	return true;
}

static bool
empty(const struct mb_batcher *b)
{
	for (uint32_t i = 0; i < b->o.n_models; i++) {
		const struct mstate *s = &b->ms[i];

		if (s->prio.n || s->normal.n || s->n_pending || mb_ring_count(s->m->queue))
			return false;
	}
	return true;
}

/* Recheck before sleeping: anything that the doorbell announces. */
static bool
news(void *arg)
{
	struct mb_batcher *b = arg;

	if (atomic_load_explicit(b->o.cancel_gen, memory_order_acquire) != b->seen_cancel_gen ||
	    mb_cancel_is_cancelled(b->o.drain) ||
	    atomic_load_explicit(b->o.ingest_closed, memory_order_acquire))
		return true;
	for (uint32_t i = 0; i < b->o.n_models; i++) {
		const struct mstate *s = &b->ms[i];
		const struct mb_batch *bt = TAILQ_FIRST(&s->pending);

		if (mb_ring_count(s->m->queue) != 0 ||
		    (bt != NULL && mb_sem_ticket_poll(&bt->ticket) != -EINPROGRESS))
			return true;
	}
	return false;
}

/* When the next batch falls due (or the next sweep), for the sleep. */
static uint64_t
next_due(const struct mb_batcher *b)
{
	uint64_t t = UINT64_MAX;
	bool holds = false;

	for (uint32_t i = 0; i < b->o.n_models; i++) {
		const struct mstate *s = &b->ms[i];
		uint64_t oldest = oldest_arrival(s);

		holds = holds || oldest != UINT64_MAX || s->n_pending != 0;

		if (oldest != UINT64_MAX && s->n_pending < b->o.max_pending) {
			uint64_t at = oldest + (uint64_t)s->m->max_delay_us * MB_NS_PER_US;

			if (at < t)
				t = at;
		}
	}
	/* the sweep for expired items only while something waits: an idle batcher sleeps */
	if (holds && b->next_sweep < t)
		t = b->next_sweep;
	return t;
}

int
mb_batcher_poll(struct mb_batcher *b, uint64_t now, uint64_t *wake_at)
{
	bool aborting, flushing, closed, sweep;
	unsigned int gen, work = 0;

	if (b->finished)
		return MB_POLLER_DONE;
	aborting = mb_cancel_is_cancelled(b->o.abort);
	flushing = aborting || mb_cancel_is_cancelled(b->o.drain);
	closed = atomic_load_explicit(b->o.ingest_closed, memory_order_acquire);
	gen = atomic_load_explicit(b->o.cancel_gen, memory_order_acquire);
	sweep = now >= b->next_sweep || gen != b->seen_cancel_gen || aborting;
	b->seen_cancel_gen = gen;
	if (sweep)
		b->next_sweep = now + b->o.sweep_ns;
	for (uint32_t i = 0; i < b->o.n_models; i++) {
		struct mstate *s = &b->ms[i];

		intake(b, s, &work);
		if (sweep) {
			sweep_lane(b, s, &s->prio, now, aborting);
			sweep_lane(b, s, &s->normal, now, aborting);
			sweep_pending(b, s, now, aborting);
		}
		admit(b, s, &work);
		while (!aborting && s->n_pending < b->o.max_pending && due(s, now, flushing)) {
			if (!form(b, s, flushing))
				break;
			work++;
		}
	}
	if (flushing && closed && empty(b)) {
		b->finished = true;
		for (uint32_t i = 0; i < b->o.n_devices; i++) {
			atomic_store_explicit(&b->o.devices[i]->producer_done, true,
					      memory_order_release);
			mb_ring_wake(b->o.devices[i]->run);
		}
		return MB_POLLER_DONE;
	}
	if (wake_at != NULL) {
		uint64_t t = flushing ? now + MB_NS_PER_MS /* keep checking how the drain goes */
				      : next_due(b);

		if (t < *wake_at)
			*wake_at = t;
	}
	return (int)(work > INT32_MAX ? INT32_MAX : work);
}

int
mb_batcher_run(struct mb_batcher *b)
{
	for (;;) {
		uint64_t now = mb_env_now_ns(), wake = UINT64_MAX;
		int work = mb_batcher_poll(b, now, &wake);

		if (work == MB_POLLER_DONE)
			break;
		mb_idle_account(&b->idle, (unsigned int)work);
		if (work != 0)
			continue;
		mb_idle_pause(&b->idle, b->o.bell, news, b, wake > now ? wake - now : 0);
	}
	return 0;
}
