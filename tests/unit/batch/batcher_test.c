/*
 * batcher_test.c: the batcher's policy on the virtual clock: batches at max_batch or
 * max_delay, priority first, sized to the device's units, admission in FIFO order,
 * TIMEOUT and CANCELLED (also out of a batch waiting for admission, with its units
 * refunded), flush on drain, CANCELLED on abort, and the thread's exit.
 *
 * Each case builds a device, a model queue, a results ring and a batcher thread; the test
 * plays the front door (pushes requests) and the workers (takes batches off the run queue).
 * The routing cases build two devices and check which one each batch goes to: by free
 * units, by the model's device mask, around an open breaker, by NUMA node, by size, and
 * what happens to an item no device can take.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mb_batch.h"
#include "mb_batcher.h"
#include "mb_breaker.h"
#include "mb_env.h"
#include "mb_sem.h"
#include "mb_test.h"

#define UNITS 16
#define N_REQ 64

static const struct mb_model_desc g_desc = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "fake",
};

struct rig {
	struct mb_doorbell bell;
	struct mb_model model;
	struct mb_model *models[1];
	struct mb_device *dev;
	struct mb_device *dev2; /* routing cases: a second device (index 1) */
	struct mb_device *devs[2];
	struct mb_breaker breakers[MB_DEVICES_MAX];
	bool with_breakers;
	struct mb_ring *results;
	struct mb_cancel *drain, *abort;
	atomic_bool ingest_closed;
	atomic_uint cancel_gen;
	struct mb_batcher *batcher;
	pthread_t thread;
	bool running;
	bool manual; /* no thread: the test calls mb_batcher_poll() itself */
	struct mb_request req[N_REQ];
	int next;
};

static int g_rig_seq;

static void *
batcher_main(void *arg)
{
	mb_batcher_run(arg);
	return NULL;
}

/* Two devices for the routing cases (0 for a single-device rig). */
struct two {
	uint64_t units[2];
	int numa[2];
	uint32_t mask; /* the model's devices */
	int model_numa;
	bool breakers;
};

static void rig_up_two(struct rig *r, uint32_t max_batch, uint32_t max_delay_us,
		       uint32_t base_units, const struct two *two);

static void
rig_up(struct rig *r, uint32_t max_batch, uint32_t max_delay_us, uint32_t base_units)
{
	rig_up_two(r, max_batch, max_delay_us, base_units, NULL);
}

static bool g_manual; /* the next rig_up*() starts no thread */

static void
rig_up_two(struct rig *r, uint32_t max_batch, uint32_t max_delay_us, uint32_t base_units,
	   const struct two *two)
{
	struct mb_ring_opts ro;
	struct mb_device_opts dopts = {.index = 0,
				       .name = "test0",
				       .units = UNITS,
				       .batch_capacity = 16,
				       .n_batches = 16,
				       .numa_node = MB_NUMA_ANY};
	struct mb_batcher_opts bo;
	char qname[32], rname[32];

	memset(r, 0, sizeof(*r));
	mb_env_clock_use_virtual(MB_NS_PER_S);
	CU_ASSERT_EQUAL_FATAL(mb_doorbell_init(&r->bell), 0);
	++g_rig_seq;
	if (two != NULL)
		dopts.units = two->units[0];
	CU_ASSERT_EQUAL_FATAL(mb_device_create(&dopts, &r->dev), 0);
	r->devs[0] = r->dev;
	if (two != NULL) {
		dopts.index = 1;
		dopts.name = "test1";
		dopts.units = two->units[1];
		CU_ASSERT_EQUAL_FATAL(mb_device_create(&dopts, &r->dev2), 0);
		r->devs[1] = r->dev2;
		/* the node the batcher sees (this machine may have one node: memory stays anywhere)
		 */
		r->dev->numa_node = two->numa[0];
		r->dev2->numa_node = two->numa[1];
	}
	snprintf(qname, sizeof(qname), "bq%d", g_rig_seq);
	snprintf(rname, sizeof(rname), "br%d", g_rig_seq);
	mb_ring_opts_init(&ro);
	ro.name = qname;
	ro.capacity = 128;
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	ro.doorbell = &r->bell;
	r->model.desc = &g_desc;
	r->model.enabled = true;
	r->model.max_batch = max_batch;
	r->model.max_delay_us = max_delay_us;
	r->model.queue_limit = 128;
	r->model.base_units = base_units;
	r->model.devices = two != NULL ? two->mask : MB_DEVICE_BIT(0);
	r->model.numa_node = two != NULL ? two->model_numa : MB_NUMA_ANY;
	if (two != NULL && two->breakers) {
		struct mb_breaker_opts bro;

		mb_breaker_opts_init(&bro);
		bro.failure_threshold = 1;
		bro.cooldown_ns = 3600 * MB_NS_PER_S; /* the virtual clock stands still anyway */
		for (int d = 0; d < 2; d++)
			CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&r->breakers[d], &bro), 0);
		r->model.breakers = r->breakers;
		r->with_breakers = true;
	}
	CU_ASSERT_EQUAL_FATAL(mb_ring_create(&ro, &r->model.queue), 0);
	r->models[0] = &r->model;
	ro.name = rname;
	ro.doorbell = NULL;
	ro.capacity = 256;
	CU_ASSERT_EQUAL_FATAL(mb_ring_create(&ro, &r->results), 0);
	mb_cancel_create(NULL, &r->drain);
	mb_cancel_create(NULL, &r->abort);
	mb_batcher_opts_init(&bo);
	bo.models = r->models;
	bo.n_models = 1;
	bo.devices = r->devs;
	bo.n_devices = two != NULL ? 2 : 1;
	bo.results = r->results;
	bo.bell = &r->bell;
	bo.drain = r->drain;
	bo.abort = r->abort;
	bo.ingest_closed = &r->ingest_closed;
	bo.cancel_gen = &r->cancel_gen;
	bo.idle.spin_polls = 8;
	CU_ASSERT_EQUAL_FATAL(mb_batcher_create(&bo, &r->batcher), 0);
	r->manual = g_manual;
	if (r->manual)
		return;
	pthread_create(&r->thread, NULL, batcher_main, r->batcher);
	r->running = true;
}

/* As the front door: a request of @cost units, deadline @timeout_ns from now, pushed. */
static struct mb_request *
push(struct rig *r, uint32_t cost, uint64_t timeout_ns, bool priority)
{
	struct mb_request *q = &r->req[r->next++];
	void *p = q;

	memset(q, 0, sizeof(*q));
	q->hdr.request_id = (uint64_t)r->next;
	q->hdr.flags = priority ? MB_FLAG_PRIORITY : 0;
	strcpy(q->hdr.model, "fake");
	q->arrival_ns = mb_env_now_ns();
	q->deadline_ns = q->arrival_ns + timeout_ns;
	q->cost_units = cost;
	atomic_fetch_add(&r->model.queued, 1);
	CU_ASSERT_EQUAL(mb_ring_enqueue_burst(r->model.queue, &p, 1), 1);
	return q;
}

/* As a worker of @dev: its next admitted batch, waiting up to @seconds of real time. */
static struct mb_batch *
take_batch_from(struct mb_device *dev, double seconds)
{
	for (int i = 0; i < (int)(seconds * 1000); i++) {
		void *b;

		if (mb_ring_dequeue_burst(dev->run, &b, 1) == 1)
			return b;
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	return NULL;
}

static struct mb_batch *
take_batch(struct rig *r, double seconds)
{
	return take_batch_from(r->dev, seconds);
}

static void
finish_batch(struct rig *r, struct mb_batch *b)
{
	(void)r;
	mb_sem_release(b->device->units, b->units);
	mb_device_batch_put(b->device, b);
}

static struct mb_request *
take_answer(struct rig *r, double seconds)
{
	for (int i = 0; i < (int)(seconds * 1000); i++) {
		void *q;

		if (mb_ring_dequeue_burst(r->results, &q, 1) == 1)
			return q;
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	return NULL;
}

static void
rig_down(struct rig *r)
{
	if (r->running) {
		mb_cancel_cancel(r->abort);
		mb_cancel_cancel(r->drain);
		atomic_store(&r->ingest_closed, true);
		mb_batcher_wake(&r->bell);
		pthread_join(r->thread, NULL);
	}
	if (r->manual) {
		int i;

		mb_cancel_cancel(r->abort);
		mb_cancel_cancel(r->drain);
		atomic_store(&r->ingest_closed, true);
		for (i = 0; i < 1000; i++)
			if (mb_batcher_poll(r->batcher, mb_env_now_ns(), NULL) == MB_POLLER_DONE)
				break;
		CU_ASSERT(i < 1000);
	}
	CU_ASSERT_TRUE(atomic_load(&r->dev->producer_done));
	if (r->dev2 != NULL)
		CU_ASSERT_TRUE(atomic_load(&r->dev2->producer_done));
	/* Whatever the batcher still pushed: play the worker's part. */
	for (struct mb_batch *b; (b = take_batch(r, 0.001)) != NULL;)
		finish_batch(r, b);
	for (struct mb_batch *b; r->dev2 != NULL && (b = take_batch_from(r->dev2, 0.001)) != NULL;)
		finish_batch(r, b);
	while (take_answer(r, 0.001) != NULL)
		;
	mb_batcher_destroy(&r->batcher);
	mb_cancel_destroy(&r->drain);
	mb_cancel_destroy(&r->abort);
	mb_ring_destroy(&r->results);
	mb_ring_destroy(&r->model.queue);
	mb_device_destroy(&r->dev);
	mb_device_destroy(&r->dev2);
	for (int d = 0; r->with_breakers && d < 2; d++)
		mb_breaker_fini(&r->breakers[d]);
	mb_doorbell_fini(&r->bell);
	mb_env_clock_use_real();
}

static void
test_full_batch_goes_at_once(void)
{
	struct rig r;
	struct mb_batch *b;

	rig_up(&r, 4, 1000000, 1);
	for (int i = 0; i < 4; i++)
		push(&r, 0, 10 * MB_NS_PER_S, false);
	b = take_batch(&r, 5.0); /* no virtual time passes: max_batch alone sends it */
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 4);
	CU_ASSERT_EQUAL(b->units, 1);
	for (uint32_t i = 0; i < b->n; i++)
		CU_ASSERT_EQUAL(b->items[i]->hdr.request_id, i + 1); /* arrival order */
	CU_ASSERT_EQUAL(atomic_load(&r.model.queued), 0);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
test_partial_batch_waits_for_delay(void)
{
	struct rig r;
	struct mb_batch *b;

	rig_up(&r, 8, 2000, 1); /* 2 ms */
	for (int i = 0; i < 3; i++)
		push(&r, 0, 10 * MB_NS_PER_S, false);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.1)); /* the clock stands still: it waits */
	mb_env_clock_advance(1999 * MB_NS_PER_US);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.05));
	mb_env_clock_advance(1 * MB_NS_PER_US);
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 3);
	finish_batch(&r, b);
	rig_down(&r);
}

/*
 * A request stamped after the batcher's poll read its clock (another thread, or later in
 * the same reactor round) still waits max_delay_us: the age of the oldest is not computed
 * as now - arrival, which wrapped and sent a batch of one at once.
 */
static void
test_stamp_after_poll_clock_waits(void)
{
	struct rig r;
	uint64_t now0, wake = UINT64_MAX, at;
	struct mb_request *q;
	struct mb_batch *b;

	g_manual = true;
	rig_up(&r, 8, 2000, 1); /* 2 ms */
	g_manual = false;
	now0 = mb_env_now_ns(); /* what the poll read */
	mb_env_clock_advance(1 * MB_NS_PER_US);
	q = push(&r, 0, 10 * MB_NS_PER_S, false); /* stamped 1 us later */
	at = q->arrival_ns;
	CU_ASSERT(at > now0);
	CU_ASSERT(mb_batcher_poll(r.batcher, now0, &wake) >= 0);
	CU_ASSERT_EQUAL(mb_ring_count(r.dev->run), 0); /* it waits */
	CU_ASSERT(wake <= at + 2000 * MB_NS_PER_US);
	CU_ASSERT(mb_batcher_poll(r.batcher, at + 1999 * MB_NS_PER_US, NULL) >= 0);
	CU_ASSERT_EQUAL(mb_ring_count(r.dev->run), 0);
	CU_ASSERT(mb_batcher_poll(r.batcher, at + 2000 * MB_NS_PER_US, NULL) > 0);
	b = take_batch(&r, 0.001);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 1);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
test_priority_lane_first(void)
{
	struct rig r;
	struct mb_batch *b;

	/* The clock stands still until all five are queued, so the order is decided by the
	 * lanes alone; then max_delay sends them, priority first. */
	rig_up(&r, 4, 1000, 1);
	push(&r, 0, 10 * MB_NS_PER_S, false); /* 1 */
	push(&r, 0, 10 * MB_NS_PER_S, false); /* 2 */
	push(&r, 0, 10 * MB_NS_PER_S, true);  /* 3, priority */
	push(&r, 0, 10 * MB_NS_PER_S, false); /* 4: a full batch of 4 goes now... */
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(b->n, 4);
	CU_ASSERT_EQUAL(b->items[0]->hdr.request_id, 3); /* ...with the priority one first */
	CU_ASSERT_EQUAL(b->items[1]->hdr.request_id, 1);
	CU_ASSERT_EQUAL(b->items[2]->hdr.request_id, 2);
	CU_ASSERT_EQUAL(b->items[3]->hdr.request_id, 4);
	finish_batch(&r, b);
	push(&r, 0, 10 * MB_NS_PER_S, false); /* 5 */
	push(&r, 0, 10 * MB_NS_PER_S, false); /* 6 */
	push(&r, 0, 10 * MB_NS_PER_S, true);  /* 7, priority */
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.05));
	mb_env_clock_advance(MB_NS_PER_MS);
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(b->n, 3);
	CU_ASSERT_EQUAL(b->items[0]->hdr.request_id, 7);
	CU_ASSERT_EQUAL(b->items[1]->hdr.request_id, 5);
	CU_ASSERT_EQUAL(b->items[2]->hdr.request_id, 6);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
test_batches_sized_to_units_and_admitted_fifo(void)
{
	struct rig r;
	struct mb_batch *a, *b;
	struct mb_sem_stats st;

	rig_up(&r, 8, 1000, 1);
	for (int i = 0; i < 4; i++)
		push(&r, 5, 10 * MB_NS_PER_S, false); /* 1 + 3 x 5 = 16 fits, a 4th does not */
	mb_env_clock_advance(MB_NS_PER_MS);
	a = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->n, 3);
	CU_ASSERT_EQUAL(a->units, 16);
	/* The 4th forms its own batch, which must wait: every unit is held. */
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.1));
	mb_sem_stats(r.dev->units, &st);
	CU_ASSERT_EQUAL(st.in_use, 16);
	CU_ASSERT_EQUAL(st.waiters, 1);
	CU_ASSERT_EQUAL(st.waiting_units, 6);
	finish_batch(&r, a); /* units back: the waiting batch is granted and sent */
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 1);
	CU_ASSERT_EQUAL(b->items[0]->hdr.request_id, 4);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
test_expired_item_timeout(void)
{
	struct rig r;
	struct mb_request *q, *ok;
	struct mb_batch *b;

	rig_up(&r, 8, 1000000, 1); /* 1 s delay: nothing goes out by itself */
	q = push(&r, 0, 10 * MB_NS_PER_MS, false);
	ok = push(&r, 0, 10 * MB_NS_PER_S, false);
	mb_env_clock_advance(20 * MB_NS_PER_MS);
	CU_ASSERT_PTR_EQUAL(take_answer(&r, 5.0), q);
	CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_TIMEOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "deadline passed"));
	CU_ASSERT_EQUAL(atomic_load(&r.model.queued), 1);
	mb_env_clock_advance(MB_NS_PER_S);
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 1); /* never run: only the other one */
	CU_ASSERT_PTR_EQUAL(b->items[0], ok);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
flag_cancel(struct rig *r, struct mb_request *q)
{
	atomic_store(&q->cancel, true);
	atomic_fetch_add(&r->cancel_gen, 1);
	mb_batcher_wake(&r->bell);
}

static void
test_cancel_queued(void)
{
	struct rig r;
	struct mb_request *a, *b;
	struct mb_batch *bt;

	rig_up(&r, 8, 1000000, 1);
	a = push(&r, 0, 10 * MB_NS_PER_S, false);
	b = push(&r, 0, 10 * MB_NS_PER_S, false);
	flag_cancel(&r, a);
	CU_ASSERT_PTR_EQUAL(take_answer(&r, 5.0), a);
	CU_ASSERT_EQUAL(a->resp.status, MB_STATUS_CANCELLED);
	mb_env_clock_advance(MB_NS_PER_S);
	bt = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bt);
	CU_ASSERT_EQUAL(bt->n, 1);
	CU_ASSERT_PTR_EQUAL(bt->items[0], b);
	finish_batch(&r, bt);
	rig_down(&r);
}

static void
test_cancel_out_of_waiting_batch_refunds(void)
{
	struct rig r;
	struct mb_request *a, *b;
	struct mb_batch *bt;
	struct mb_sem_stats st;

	rig_up(&r, 8, 1000, 1);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(r.dev->units, UNITS), 0); /* the device is full */
	a = push(&r, 3, 10 * MB_NS_PER_S, false);
	b = push(&r, 3, 10 * MB_NS_PER_S, false);
	mb_env_clock_advance(MB_NS_PER_MS);
	for (int i = 0; i < 1000; i++) { /* until the batch (1 + 3 + 3) waits for admission */
		mb_sem_stats(r.dev->units, &st);
		if (st.waiters == 1)
			break;
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	CU_ASSERT_EQUAL(st.waiting_units, 7);
	flag_cancel(&r, a);
	CU_ASSERT_PTR_EQUAL(take_answer(&r, 5.0), a);
	CU_ASSERT_EQUAL(a->resp.status, MB_STATUS_CANCELLED);
	mb_sem_stats(r.dev->units, &st);
	CU_ASSERT_EQUAL(st.waiting_units, 4); /* a's 3 units refunded, its place kept */
	mb_sem_release(r.dev->units, UNITS);
	bt = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bt);
	CU_ASSERT_EQUAL(bt->n, 1);
	CU_ASSERT_PTR_EQUAL(bt->items[0], b);
	CU_ASSERT_EQUAL(bt->units, 4);
	finish_batch(&r, bt);
	mb_sem_stats(r.dev->units, &st);
	CU_ASSERT_EQUAL(st.in_use, 0);
	rig_down(&r);
}

static void
test_drain_flushes_then_exits(void)
{
	struct rig r;
	struct mb_batch *b;

	rig_up(&r, 8, 1000000, 1);
	for (int i = 0; i < 3; i++)
		push(&r, 0, 10 * MB_NS_PER_S, false);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.05));
	mb_cancel_cancel(r.drain); /* flush now, without waiting for the delay */
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->n, 3);
	finish_batch(&r, b);
	CU_ASSERT_FALSE(atomic_load(&r.dev->producer_done)); /* ingest still open */
	atomic_store(&r.ingest_closed, true);
	mb_batcher_wake(&r.bell);
	pthread_join(r.thread, NULL);
	r.running = false;
	CU_ASSERT_TRUE(atomic_load(&r.dev->producer_done));
	rig_down(&r);
}

static void
test_abort_answers_everything(void)
{
	struct rig r;
	struct mb_request *q[4];
	struct mb_sem_stats st;
	int cancelled = 0;

	rig_up(&r, 2, 1000, 1);
	CU_ASSERT_EQUAL(mb_sem_try_acquire(r.dev->units, UNITS), 0);
	for (int i = 0; i < 4; i++)
		q[i] = push(&r, 1, 10 * MB_NS_PER_S, false);
	mb_env_clock_advance(MB_NS_PER_MS);
	mb_env_sleep_ns(50 * MB_NS_PER_MS); /* some batches now wait for admission */
	mb_cancel_cancel(r.abort);
	mb_cancel_cancel(r.drain);
	atomic_store(&r.ingest_closed, true);
	mb_batcher_wake(&r.bell);
	pthread_join(r.thread, NULL);
	r.running = false;
	for (struct mb_request *a; (a = take_answer(&r, 0.5)) != NULL;)
		if (a->resp.status == MB_STATUS_CANCELLED)
			cancelled++;
	CU_ASSERT_EQUAL(cancelled, 4);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.01));
	mb_sem_stats(r.dev->units, &st);
	CU_ASSERT_EQUAL(st.waiters, 0);
	CU_ASSERT_EQUAL(st.in_use, UNITS); /* only what the test itself holds */
	mb_sem_release(r.dev->units, UNITS);
	(void)q;
	rig_down(&r);
}

/* ---- routing across devices ---- */

static void
push_n(struct rig *r, int n, uint32_t cost)
{
	for (int i = 0; i < n; i++)
		push(r, cost, 10 * MB_NS_PER_S, false);
}

static void
test_route_to_device_with_room(void)
{
	const struct two two = {.units = {UNITS, UNITS},
				.numa = {MB_NUMA_ANY, MB_NUMA_ANY},
				.mask = MB_DEVICE_BIT(0) | MB_DEVICE_BIT(1),
				.model_numa = MB_NUMA_ANY};
	struct rig r;
	struct mb_batch *b;

	rig_up_two(&r, 4, 1000000, 1, &two);
	/* device 0 is full (the test holds its units): the batch goes to device 1 */
	CU_ASSERT_EQUAL_FATAL(mb_sem_try_acquire(r.dev->units, UNITS), 0);
	push_n(&r, 4, 1);
	b = take_batch_from(r.dev2, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_EQUAL(b->device, r.dev2);
	CU_ASSERT_EQUAL(b->n, 4);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02));
	/* device 0 frees up while device 1 still runs the first batch: device 0 has more room */
	mb_sem_release(r.dev->units, UNITS);
	push_n(&r, 4, 1);
	struct mb_batch *b2 = take_batch(&r, 5.0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
	CU_ASSERT_PTR_EQUAL(b2->device, r.dev);
	finish_batch(&r, b);
	finish_batch(&r, b2);
	/* both free and alike: the lower index */
	push_n(&r, 4, 1);
	b = take_batch(&r, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_EQUAL(b->device, r.dev);
	finish_batch(&r, b);
	rig_down(&r);
}

static void
test_route_only_to_model_devices(void)
{
	const struct two two = {.units = {UNITS, UNITS},
				.numa = {MB_NUMA_ANY, MB_NUMA_ANY},
				.mask = MB_DEVICE_BIT(1),
				.model_numa = MB_NUMA_ANY};
	struct rig r;

	rig_up_two(&r, 2, 1000000, 1, &two);
	for (int k = 0; k < 3; k++) {
		struct mb_batch *b;

		push_n(&r, 2, 1);
		b = take_batch_from(r.dev2, 5.0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		CU_ASSERT_EQUAL(b->n, 2);
		finish_batch(&r, b);
	}
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02)); /* never device 0, free as it is */
	rig_down(&r);
}

static void
test_route_around_open_breaker(void)
{
	const struct two two = {.units = {UNITS, UNITS},
				.numa = {MB_NUMA_ANY, MB_NUMA_ANY},
				.mask = MB_DEVICE_BIT(0) | MB_DEVICE_BIT(1),
				.model_numa = MB_NUMA_ANY,
				.breakers = true};
	struct rig r;
	struct mb_batch *b;

	rig_up_two(&r, 2, 1000000, 1, &two);
	/* one failed batch on device 0 opens its breaker (threshold 1) */
	mb_breaker_report(&r.breakers[0], mb_breaker_check(&r.breakers[0]), false);
	CU_ASSERT_TRUE_FATAL(mb_breaker_rejecting(&r.breakers[0]));
	CU_ASSERT_FALSE(mb_model_unavailable(&r.model)); /* device 1 still serves it */
	push_n(&r, 2, 1);
	b = take_batch_from(r.dev2, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02));
	finish_batch(&r, b);
	/* with device 1 open as well, the model is unavailable everywhere */
	mb_breaker_report(&r.breakers[1], mb_breaker_check(&r.breakers[1]), false);
	CU_ASSERT_TRUE(mb_model_unavailable(&r.model));
	rig_down(&r);
}

static void
test_route_prefers_model_numa_node(void)
{
	const struct two two = {.units = {UNITS, UNITS},
				.numa = {0, 1},
				.mask = MB_DEVICE_BIT(0) | MB_DEVICE_BIT(1),
				.model_numa = 1};
	struct rig r;
	struct mb_batch *b;
	uint64_t held;

	rig_up_two(&r, 2, 1000000, 1, &two);
	push_n(&r, 2, 1);
	b = take_batch_from(r.dev2, 5.0); /* node 1, though device 0 comes first */
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02));
	/* the near device is full: a device that admits now beats a near one that would wait */
	held = UNITS - b->units;
	CU_ASSERT_EQUAL_FATAL(mb_sem_try_acquire(r.dev2->units, held), 0);
	push_n(&r, 2, 1);
	struct mb_batch *b2 = take_batch(&r, 5.0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
	CU_ASSERT_PTR_EQUAL(b2->device, r.dev);
	finish_batch(&r, b);
	finish_batch(&r, b2);
	mb_sem_release(r.dev2->units, held);
	rig_down(&r);
}

static void
test_route_by_size(void)
{
	const struct two two = {.units = {4, UNITS},
				.numa = {MB_NUMA_ANY, MB_NUMA_ANY},
				.mask = MB_DEVICE_BIT(0) | MB_DEVICE_BIT(1),
				.model_numa = MB_NUMA_ANY};
	struct rig r;
	struct mb_batch *b;
	struct mb_request *a, *big;

	rig_up_two(&r, 1, 1000000, 1, &two);
	/* 1 + 8 units: only device 1 is large enough, though device 0 is free */
	push(&r, 8, 10 * MB_NS_PER_S, false);
	b = take_batch_from(r.dev2, 5.0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->units, 9);
	finish_batch(&r, b);
	/* 1 + 16 units: no device has that many */
	big = push(&r, 16, 10 * MB_NS_PER_S, false);
	a = take_answer(&r, 5.0);
	CU_ASSERT_PTR_EQUAL_FATAL(a, big);
	CU_ASSERT_EQUAL(a->resp.status, MB_STATUS_TOO_LARGE);
	CU_ASSERT_EQUAL(atomic_load(&r.model.queued), 0);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02));
	CU_ASSERT_PTR_NULL(take_batch_from(r.dev2, 0.02));
	rig_down(&r);
}

static void
test_no_device_answers_unavailable(void)
{
	const struct two two = {.units = {UNITS, UNITS},
				.numa = {MB_NUMA_ANY, MB_NUMA_ANY},
				.mask = 0,
				.model_numa = MB_NUMA_ANY};
	struct rig r;
	struct mb_request *q, *a;

	rig_up_two(&r, 1, 1000000, 1, &two);
	q = push(&r, 1, 10 * MB_NS_PER_S, false);
	a = take_answer(&r, 5.0);
	CU_ASSERT_PTR_EQUAL_FATAL(a, q);
	CU_ASSERT_EQUAL(a->resp.status, MB_STATUS_UNAVAILABLE);
	CU_ASSERT_PTR_NULL(take_batch(&r, 0.02));
	CU_ASSERT_PTR_NULL(take_batch_from(r.dev2, 0.02));
	rig_down(&r);
}

static int
suite_init(void)
{
	mb_test_eal_up("batcher_test");
	return 0;
}

static const struct mb_test_case cases[] = {
	{"max_batch items go at once", test_full_batch_goes_at_once},
	{"a partial batch waits exactly max_delay_us", test_partial_batch_waits_for_delay},
	{"a request stamped after the poll's clock still waits", test_stamp_after_poll_clock_waits},
	{"the priority lane goes first", test_priority_lane_first},
	{"batches fit the device's units; admission in order",
	 test_batches_sized_to_units_and_admitted_fifo},
	{"an expired item is answered TIMEOUT and never run", test_expired_item_timeout},
	{"a cancelled queued item is answered CANCELLED", test_cancel_queued},
	{"cancel out of a batch awaiting admission refunds its units",
	 test_cancel_out_of_waiting_batch_refunds},
	{"drain flushes at once; exit after ingest closes", test_drain_flushes_then_exits},
	{"abort answers everything CANCELLED, holds no units", test_abort_answers_everything},
	{"routing: to the device with room, then the lower index", test_route_to_device_with_room},
	{"routing: only to the model's devices", test_route_only_to_model_devices},
	{"routing: around an open breaker", test_route_around_open_breaker},
	{"routing: the model's NUMA node, unless only another admits now",
	 test_route_prefers_model_numa_node},
	{"routing: a device large enough; TOO_LARGE when none is", test_route_by_size},
	{"routing: a model with no device is answered UNAVAILABLE",
	 test_no_device_answers_unavailable},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"batcher", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	int rc = mb_test_main("batcher_test", suites);

	mb_test_eal_down();
	return rc;
}
