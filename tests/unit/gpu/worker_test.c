/*
 * worker_test.c: a worker thread on the CPU device with a scripted model: it runs admitted
 * batches, answers each item with the device's timings, drops cancelled and expired items
 * before starting (refunding their units), turns a model failure into MODEL_ERROR, releases
 * every unit after the results are with the egress, and exits when the producer is done.
 * It hands the model the state loaded for its device; a model whose worker set-up failed,
 * or every model on a CUDA device the worker cannot attach to, gets MODEL_ERROR with the
 * reason while the worker keeps draining. What run() returns is checked before it is answered
 * OK: a malformed result (its type, shape and length disagree, it is not run()'s own
 * allocation or is longer than it, an item left untouched) is answered MODEL_ERROR with what
 * was wrong, nothing is read past an allocation (run this under ASan), and every item's
 * result no answer took is freed, once. Failed batches, failed items and refused results are
 * logged, a few lines per model per minute.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mb_batch.h"
#include "mb_breaker.h"
#include "mb_cancel.h"
#include "mb_device.h"
#include "mb_env.h"
#include "mb_log.h"
#include "mb_model_rt.h"
#include "mb_request.h"
#include "mb_ring.h"
#include "mb_sem.h"
#include "mb_test.h"
#include "mb_worker.h"

static int g_fail_batch;     /* run() returns this (an error) */
static atomic_int g_hold;    /* run() waits while this is 1 (a hung model) */
static atomic_int g_holding; /* run() is waiting */
static int g_fail_item = -1; /* this item index fails */
static int g_runs, g_items_seen;
static void *g_state_seen;
static int g_device_seen;
static int g_state_token; /* its address is the state "loaded" on the test's device */

static int
scripted_run(void *state, struct mb_model_batch *b)
{
	g_state_seen = state;
	g_device_seen = b->device;
	g_runs++;
	atomic_store(&g_holding, atomic_load(&g_hold));
	while (atomic_load(&g_hold))
		mb_env_sleep_ns(MB_NS_PER_MS);
	atomic_store(&g_holding, 0);
	g_items_seen += (int)b->n_items;
	if (g_fail_batch)
		return g_fail_batch;
	for (uint32_t i = 0; i < b->n_items; i++) {
		float *v;

		if ((int)i == g_fail_item) {
			mb_model_item_fail(&b->items[i], "scripted failure");
			continue;
		}
		v = b->alloc_result(b, sizeof(float));
		*v = (float)b->items[i].payload_len;
		b->items[i].result = v;
		b->items[i].result_len = sizeof(float);
		b->items[i].result_type = MB_RESULT_F32;
		b->items[i].rows = b->items[i].cols = 1;
	}
	return 0;
}

static const struct mb_model_desc g_desc = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "scripted",
	.run = scripted_run,
};

static int
failing_init(void *state, int device, void **worker)
{
	(void)state;
	(void)device;
	*worker = NULL;
	return -ENOMEM;
}

static const struct mb_model_desc g_desc_bad_init = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "badinit",
	.worker_init = failing_init,
	.run = scripted_run,
};

struct rig {
	struct mb_device *dev;
	struct mb_ring *results;
	struct mb_model model;
	struct mb_model *models[1];
	struct mb_cancel *abort;
	struct mb_worker *w;
	pthread_t thread;
	struct mb_request req[8];
};

static int g_seq;

static void *
worker_main(void *arg)
{
	mb_worker_run(arg);
	return NULL;
}

static void rig_up_on(struct rig *r, const struct mb_model_desc *desc, int cuda);

static void
rig_up(struct rig *r)
{
	rig_up_on(r, &g_desc, -1);
}

/* A worker on a device of index 0: the CPU (cuda -1), or CUDA ordinal @cuda. */
static void
rig_up_on(struct rig *r, const struct mb_model_desc *desc, int cuda)
{
	struct mb_device_opts d = {.name = "t0",
				   .units = 16,
				   .batch_capacity = 8,
				   .n_batches = 4,
				   .numa_node = MB_NUMA_ANY};
	struct mb_ring_opts ro;
	struct mb_worker_opts wo = {0};
	char name[32];

	memset(r, 0, sizeof(*r));
	d.index = 0;
	d.gpu = cuda >= 0;
	d.cuda = cuda;
	++g_seq;
	CU_ASSERT_EQUAL_FATAL(mb_device_create(&d, &r->dev), 0);
	mb_ring_opts_init(&ro);
	snprintf(name, sizeof(name), "wres%d", g_seq);
	ro.name = name;
	ro.capacity = 64;
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	CU_ASSERT_EQUAL_FATAL(mb_ring_create(&ro, &r->results), 0);
	r->model.desc = desc;
	r->model.enabled = true;
	r->model.devices = MB_DEVICE_BIT(0);
	r->model.states[0] = &g_state_token;
	r->models[0] = &r->model;
	mb_cancel_create(NULL, &r->abort);
	wo.device = r->dev;
	wo.models = r->models;
	wo.n_models = 1;
	wo.results = r->results;
	wo.abort = r->abort;
	mb_idle_opts_init(&wo.idle);
	CU_ASSERT_EQUAL_FATAL(mb_worker_create(&wo, &r->w), 0);
	pthread_create(&r->thread, NULL, worker_main, r->w);
}

/* As the batcher: a batch of @n items (each @cost units; base 1), admitted and queued. */
static void
submit(struct rig *r, int n, uint32_t cost)
{
	struct mb_batch *b = mb_device_batch_get(r->dev);
	void *p = b;

	b->model = &r->model;
	b->units = 1;
	for (int i = 0; i < n; i++) {
		struct mb_request *q = &r->req[i];

		memset(q, 0, sizeof(*q));
		q->hdr.request_id = (uint64_t)i;
		q->payload_len = 100 + (uint32_t)i;
		q->cost_units = cost;
		q->arrival_ns = mb_env_now_ns();
		q->deadline_ns = q->arrival_ns + 10 * MB_NS_PER_S;
		b->items[b->n++] = q;
		b->units += cost;
	}
	mb_sem_ticket_init(&b->ticket, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(mb_sem_enqueue(r->dev->units, &b->ticket, b->units), 0);
	CU_ASSERT_EQUAL(mb_ring_enqueue_burst(r->dev->run, &p, 1), 1);
}

static struct mb_request *
answer(struct rig *r)
{
	for (int i = 0; i < 5000; i++) {
		void *q;

		if (mb_ring_dequeue_burst(r->results, &q, 1) == 1)
			return q;
		mb_env_sleep_ns(MB_NS_PER_MS);
	}
	return NULL;
}

static uint64_t
in_use(struct rig *r)
{
	struct mb_sem_stats st;

	mb_sem_stats(r->dev->units, &st);
	return st.in_use;
}

static void rig_down_joined(struct rig *r);

static void
rig_down(struct rig *r)
{
	atomic_store(&r->dev->producer_done, true);
	mb_ring_wake(r->dev->run);
	pthread_join(r->thread, NULL); /* the worker exits once the producer is done */
	rig_down_joined(r);
}

static void
rig_down_joined(struct rig *r)
{
	mb_worker_destroy(&r->w);
	mb_cancel_destroy(&r->abort);
	mb_ring_destroy(&r->results);
	mb_device_destroy(&r->dev);
	g_fail_batch = 0;
	g_fail_item = -1;
}

static void
test_runs_and_answers(void)
{
	struct rig r;

	rig_up(&r);
	g_runs = g_items_seen = 0;
	submit(&r, 3, 2);
	for (int i = 0; i < 3; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_OK);
		CU_ASSERT_EQUAL(q->resp.batch_size, 3);
		CU_ASSERT_EQUAL(q->resp.device, r.dev->index);
		CU_ASSERT_EQUAL(*(float *)q->result, (float)q->payload_len);
		CU_ASSERT(q->start_ns >= q->arrival_ns);
		free(q->result);
	}
	CU_ASSERT_EQUAL(g_runs, 1);
	CU_ASSERT_PTR_EQUAL(g_state_seen, &g_state_token); /* the state of its device */
	CU_ASSERT_EQUAL(g_device_seen, -1);		   /* the CPU device */
	for (int i = 0; i < 1000 && in_use(&r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(&r), 0); /* every unit back */
	CU_ASSERT_EQUAL(mb_worker_batches(r.w), 1);
	rig_down(&r);
}

static void
test_cancelled_and_expired_never_run(void)
{
	struct rig r;
	int cancelled = 0, timeout = 0, ok = 0;

	rig_up(&r);
	g_runs = g_items_seen = 0;
	/* Hold the run: build the batch by hand with one cancelled and one expired item. */
	{
		struct mb_batch *b = mb_device_batch_get(r.dev);
		void *p = b;

		b->model = &r.model;
		b->units = 1;
		for (int i = 0; i < 3; i++) {
			struct mb_request *q = &r.req[i];

			memset(q, 0, sizeof(*q));
			q->cost_units = 4;
			q->arrival_ns = mb_env_now_ns();
			q->deadline_ns = i == 1 ? q->arrival_ns : q->arrival_ns + 10 * MB_NS_PER_S;
			b->items[b->n++] = q;
			b->units += 4;
		}
		atomic_store(&r.req[0].cancel, true);
		mb_sem_ticket_init(&b->ticket, NULL, NULL);
		CU_ASSERT_EQUAL(mb_sem_enqueue(r.dev->units, &b->ticket, b->units), 0);
		mb_ring_enqueue_burst(r.dev->run, &p, 1);
	}
	for (int i = 0; i < 3; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		cancelled += q->resp.status == MB_STATUS_CANCELLED;
		timeout += q->resp.status == MB_STATUS_TIMEOUT;
		if (q->resp.status == MB_STATUS_OK) {
			ok++;
			CU_ASSERT_EQUAL(q->resp.batch_size, 1);
		}
		free(q->result);
	}
	CU_ASSERT(cancelled == 1 && timeout == 1 && ok == 1);
	CU_ASSERT_EQUAL(g_items_seen, 1); /* the model saw only the one that could run */
	for (int i = 0; i < 1000 && in_use(&r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(&r), 0);
	rig_down(&r);
}

static void
test_model_failures(void)
{
	struct rig r;

	rig_up(&r);
	g_fail_item = 1;
	submit(&r, 2, 0);
	for (int i = 0; i < 2; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		if (q->hdr.request_id == 1) {
			CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_MODEL_ERROR);
			CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "scripted failure"));
		} else {
			CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_OK);
		}
		free(q->result);
	}
	g_fail_item = -1;
	g_fail_batch = -EIO;
	submit(&r, 2, 0);
	for (int i = 0; i < 2; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_MODEL_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason,
					      "scripted: the batch failed on device t0 "
					      "(run() returned -5: Input/output error)"));
		CU_ASSERT_PTR_NULL(q->result);
	}
	for (int i = 0; i < 1000 && in_use(&r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(&r), 0);
	rig_down(&r);
}

static void
test_abort_cancels_unstarted(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	mb_cancel_cancel(r.abort);
	submit(&r, 1, 1);
	q = answer(&r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_CANCELLED);
	CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "stopping"));
	rig_down(&r);
}

/* Answers of @n items that must all be MODEL_ERROR with @why; the model never ran. */
static void
expect_model_errors(struct rig *r, int n, const char *why)
{
	for (int i = 0; i < n; i++) {
		struct mb_request *q = answer(r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_MODEL_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, why));
		CU_ASSERT_PTR_NULL(q->result);
		/* never run (PROTOCOL.md): no timings, no batch, no device */
		CU_ASSERT_EQUAL(q->resp.queue_us, 0);
		CU_ASSERT_EQUAL(q->resp.compute_us, 0);
		CU_ASSERT_EQUAL(q->resp.batch_size, 0);
		CU_ASSERT_EQUAL(q->resp.device, MB_DEVICE_NONE);
	}
	CU_ASSERT_EQUAL(g_runs, 0);
	for (int i = 0; i < 1000 && in_use(r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(r), 0);
}

/* Answers of @n items of a batch that ran: all MODEL_ERROR with @why. */
static void
expect_model_errors_ran(struct rig *r, int n, const char *why)
{
	for (int i = 0; i < n; i++) {
		struct mb_request *q = answer(r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_MODEL_ERROR);
		if (strstr(q->reason, why) == NULL)
			printf("\n    \"%s\" lacks \"%s\"", q->reason, why);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, why));
		CU_ASSERT_PTR_NULL(q->result);
		CU_ASSERT_EQUAL(q->resp.batch_size, n);
	}
	for (int i = 0; i < 1000 && in_use(r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(r), 0);
}

static void
test_worker_init_failure(void)
{
	struct rig r;

	rig_up_on(&r, &g_desc_bad_init, -1);
	g_runs = 0;
	submit(&r, 2, 1);
	expect_model_errors(&r, 2, "badinit: cannot run on device t0: worker set-up failed");
	submit(&r, 1, 1); /* and again: the worker keeps answering */
	expect_model_errors(&r, 1, "worker set-up failed");
	rig_down(&r);
}

static void
test_cuda_attach_failure(void)
{
	struct rig r;

	/* no machine has CUDA ordinal 200: the attach fails with or without a GPU or CUDA */
	rig_up_on(&r, &g_desc, 200);
	g_runs = 0;
	submit(&r, 3, 1);
	expect_model_errors(&r, 3, "scripted: cannot run on device t0: ");
	rig_down(&r);
}

static void
test_breaker_open_never_runs(void)
{
	struct mb_breaker_opts bo;
	struct mb_breaker br;
	struct rig r;

	mb_breaker_opts_init(&bo);
	bo.failure_threshold = 1;
	bo.cooldown_ns = 60 * MB_NS_PER_S;
	CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&br, &bo), 0);
	mb_breaker_report(&br, mb_breaker_check(&br), false); /* one failure opens it */
	CU_ASSERT_EQUAL_FATAL(mb_breaker_state(&br), MB_BREAKER_OPEN);
	rig_up(&r);
	r.model.breakers = &br; /* before the first batch: the worker reads it per batch */
	g_runs = 0;
	submit(&r, 2, 1);
	for (int i = 0; i < 2; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_UNAVAILABLE);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "circuit open"));
		CU_ASSERT_EQUAL(q->resp.queue_us, 0);
		CU_ASSERT_EQUAL(q->resp.compute_us, 0);
		CU_ASSERT_EQUAL(q->resp.batch_size, 0);
		CU_ASSERT_EQUAL(q->resp.device, MB_DEVICE_NONE);
	}
	CU_ASSERT_EQUAL(g_runs, 0);
	for (int i = 0; i < 1000 && in_use(&r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(&r), 0);
	rig_down(&r);
	mb_breaker_fini(&br);
}

/*
 * The watchdog: a run() past the model's run_timeout_ms is taken over. Its requests are
 * answered MODEL_ERROR and parked (their payloads may still be read), the units stay held;
 * when run() returns at last, the parked requests come back tagged for recycling, the units
 * are released and the abandoned worker's thread exits.
 */
static void
test_watchdog_takes_over_a_hung_run(void)
{
	struct rig r;
	char why[256] = "";
	void *back[2];
	int n = 0;

	rig_up(&r);
	r.model.run_timeout_ms = 1000;
	atomic_store(&g_hold, 1);
	submit(&r, 2, 1);
	for (int i = 0; i < 5000 && !atomic_load(&g_holding); i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_FATAL(atomic_load(&g_holding));
	/* not late yet: left alone */
	CU_ASSERT_PTR_NULL(mb_worker_abandon_if_hung(r.w, mb_env_now_ns(), why, sizeof(why)));
	mb_env_sleep_ns(1100 * MB_NS_PER_MS);
	CU_ASSERT_PTR_EQUAL(mb_worker_abandon_if_hung(r.w, mb_env_now_ns(), why, sizeof(why)),
			    &r.model);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "past its run_timeout_ms (1000 ms): presumed hung"));
	CU_ASSERT_TRUE(mb_worker_abandoned(r.w));
	for (int i = 0; i < 2; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_FALSE(MB_REQ_IS_RECLAIM(q));
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_MODEL_ERROR);
		CU_ASSERT_EQUAL(q->abandoned, MB_REQ_PARKED);
		CU_ASSERT_EQUAL(q->resp.batch_size, 2);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "presumed hung"));
	}
	/* once taken over, not again */
	CU_ASSERT_PTR_NULL(mb_worker_abandon_if_hung(r.w, mb_env_now_ns(), why, sizeof(why)));
	CU_ASSERT_EQUAL(in_use(&r), 3); /* the stuck run still holds its units */
	atomic_store(&g_hold, 0);	/* run() returns at last */
	for (int i = 0; i < 5000 && n < 2; i++)
		if (mb_ring_dequeue_burst(r.results, &back[n], 1) == 1)
			n++;
		else
			mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_TRUE(MB_REQ_IS_RECLAIM(back[i]));
		CU_ASSERT_PTR_EQUAL(MB_REQ_UNTAG(back[i]), &r.req[i]);
	}
	for (int i = 0; i < 1000 && in_use(&r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(&r), 0);
	CU_ASSERT_EQUAL(pthread_join(r.thread, NULL), 0); /* it left without the producer done */
	rig_down_joined(&r);
}

/* ---- what run() returns, checked ---- */

/* What bad_run() does with each item (g_mode[item index]). */
enum mode {
	GOOD,	     /* F32 [1 x 1] */
	LONG_LEN,    /* F32 2 x 2 in 16 bytes, result_len 20 */
	LONG_ROWS,   /* F32 3 x 2 with result_len 16 */
	PAST_ALLOC,  /* F32 2 x 2, result_len 16, but alloc_result() gave 8 bytes */
	BAD_TYPE,    /* result_type 99 */
	NULL_RESULT, /* F32 2 x 2, result_len 16, result NULL */
	NULL_SHAPED, /* F32 2 x 2, result NULL, result_len 0 */
	UNTOUCHED,   /* neither filled nor failed */
	NONE_BYTES,  /* result_type 0 with a 4-byte result */
	TOPK_COLS,   /* top-k of 2 pairs with cols 3 */
	FOREIGN,     /* a result from malloc(), not alloc_result() */
	SHARED,	     /* the result of the item before it (GOOD) once more */
	TEXT_OK,     /* UTF-8 text */
	TEXT_BAD,    /* text that is not UTF-8 */
	FAIL_EMPTY,  /* failed with an empty reason */
	FAIL_RESULT, /* a result allocated, then the item failed */
	STRAY,	     /* an allocation run() frees itself (for no item), then GOOD */
	EMPTY_F32,   /* F32 0 x 0, no bytes: an empty result */
	FAIL_REASON, /* failed with a reason */
};

static enum mode g_mode[8];
static void *g_foreign; /* FOREIGN's result: the test frees it */

static int
bad_run(void *state, struct mb_model_batch *b)
{
	(void)state;
	for (uint32_t i = 0; i < b->n_items; i++) {
		struct mb_model_item *it = &b->items[i];
		float *v;

		switch (g_mode[i]) {
		case UNTOUCHED:
			continue;
		case FAIL_EMPTY:
			it->failed = 1;
			continue;
		case FAIL_REASON:
			mb_model_item_fail(it, "item failed on purpose");
			continue;
		case FAIL_RESULT:
			it->result = b->alloc_result(b, 16);
			mb_model_item_fail(it, "failed after its result was allocated");
			continue;
		case NULL_RESULT:
		case NULL_SHAPED:
			it->result_type = MB_RESULT_F32;
			it->rows = it->cols = 2;
			it->result_len = g_mode[i] == NULL_RESULT ? 16 : 0;
			continue;
		case SHARED: {
			const struct mb_model_item *prev = &b->items[i - 1];

			it->result = prev->result;
			it->result_len = prev->result_len;
			it->result_type = prev->result_type;
			it->rows = prev->rows;
			it->cols = prev->cols;
			continue;
		}
		case EMPTY_F32:
			it->result_type = MB_RESULT_F32;
			continue;
		case TEXT_OK:
		case TEXT_BAD: {
			const char *t =
				g_mode[i] == TEXT_OK ? "h\xc3\xa9llo \xe2\x82\xac" : "ab\xc3(";

			it->result = b->alloc_result(b, strlen(t));
			memcpy(it->result, t, strlen(t));
			it->result_len = (uint32_t)strlen(t);
			it->result_type = MB_RESULT_TEXT;
			continue;
		}
		case STRAY:
			free(b->alloc_result(b, 64)); /* the model's own: not freed again */
			break;
		default:
			break;
		}
		if (g_mode[i] == FOREIGN)
			v = g_foreign = malloc(16);
		else
			v = b->alloc_result(b, g_mode[i] == PAST_ALLOC ? 8 : 16);
		memset(v, 0, g_mode[i] == PAST_ALLOC ? 8 : 16);
		it->result = v;
		it->result_type = MB_RESULT_F32;
		it->rows = it->cols = 2;
		it->result_len = 16;
		switch (g_mode[i]) {
		case GOOD:
		case STRAY:
			it->rows = it->cols = 1;
			it->result_len = 4;
			break;
		case LONG_LEN:
			it->result_len = 20;
			break;
		case LONG_ROWS:
			it->rows = 3;
			break;
		case BAD_TYPE:
			it->result_type = 99;
			break;
		case NONE_BYTES:
			it->result_type = MB_RESULT_NONE;
			it->result_len = 4;
			break;
		case TOPK_COLS:
			it->result_type = MB_RESULT_TOPK;
			it->cols = 3;
			break;
		default:
			break;
		}
	}
	return 0;
}

static const struct mb_model_desc g_desc_bad = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "mylin",
	.run = bad_run,
};

static char *g_log;
static size_t g_log_len;
static FILE *g_log_stream;

static void
capture_start(void)
{
	g_log_stream = open_memstream(&g_log, &g_log_len);
	mb_log_set_stream(g_log_stream);
}

/* Stop capturing (after the worker's thread ended); the text stays until the next start. */
static const char *
capture_stop(void)
{
	mb_log_set_stream(NULL);
	fclose(g_log_stream);
	return g_log;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Run one batch whose items do @modes; each answer must be @status with @why in its reason
 * (OK: the result as the model made it). */
static void
expect_batch(struct rig *r, const enum mode *modes, int n, const int *status,
	     const char *const *why)
{
	struct mb_request *got[8] = {0};

	memcpy(g_mode, modes, (size_t)n * sizeof(*modes));
	submit(r, n, 0);
	for (int i = 0; i < n; i++) {
		struct mb_request *q = answer(r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_FATAL(q->hdr.request_id < (uint64_t)n);
		got[q->hdr.request_id] = q;
	}
	for (int i = 0; i < n; i++) {
		struct mb_request *q = got[i];

		if (q->resp.status != status[i] || strstr(q->reason, why[i]) == NULL)
			printf("\n    item %d: status %u, reason \"%s\"; expected %d, \"%s\"", i,
			       q->resp.status, q->reason, status[i], why[i]);
		CU_ASSERT_EQUAL(q->resp.status, status[i]);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, why[i]));
		CU_ASSERT_EQUAL(q->resp.batch_size, n); /* it ran */
		if (status[i] != MB_STATUS_OK) {
			CU_ASSERT_PTR_NULL(q->result);
			CU_ASSERT_EQUAL(q->resp.result_type, MB_RESULT_TEXT);
			CU_ASSERT_EQUAL(q->resp.result_len, strlen(q->reason));
		} else {
			CU_ASSERT_EQUAL(q->resp.result_len, q->result_len);
		}
		if (status[i] == MB_STATUS_OK) /* (not one sent unchecked: it may be shared) */
			free(q->result);
		q->result = NULL;
	}
	for (int i = 0; i < 1000 && in_use(r) != 0; i++)
		mb_env_sleep_ns(MB_NS_PER_MS);
	CU_ASSERT_EQUAL(in_use(r), 0);
}

static void
test_malformed_results_refused(void)
{
	static const enum mode b1[] = {GOOD,	 LONG_LEN,    LONG_ROWS,   PAST_ALLOC,
				       BAD_TYPE, NULL_RESULT, NULL_SHAPED, UNTOUCHED};
	static const int s1[] = {MB_STATUS_OK,		MB_STATUS_MODEL_ERROR,
				 MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR,
				 MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR,
				 MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR};
	static const char *const w1[] = {
		"",
		"mylin: the model returned an F32 result of 2 x 2 (16 bytes) with result_len 20",
		"mylin: the model returned an F32 result of 3 x 2 (24 bytes) with result_len 16",
		("mylin: the model returned result_len 16 for a result of 8 bytes from "
		 "alloc_result()"),
		"mylin: the model returned result_type 99, not one of 1 (F32), 2 (top-k), 3 (text)",
		"mylin: the model returned a NULL result with result_len 16",
		"mylin: the model returned an F32 result of 2 x 2 (16 bytes) with result_len 0",
		"mylin: the model returned no result for this item",
	};
	static const enum mode b2[] = {NONE_BYTES, TOPK_COLS, FOREIGN,	GOOD,
				       SHARED,	   TEXT_OK,   TEXT_BAD, EMPTY_F32};
	static const int s2[] = {
		MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR, MB_STATUS_OK,
		MB_STATUS_MODEL_ERROR, MB_STATUS_OK,	      MB_STATUS_MODEL_ERROR, MB_STATUS_OK};
	static const char *const w2[] = {
		"mylin: the model returned result_type 0 (none) with rows 2, cols 2 and "
		"result_len 4",
		"mylin: the model returned a top-k result of 2 pairs (16 bytes) with cols 3 and "
		"result_len 16",
		"mylin: the model returned a result that batch->alloc_result() did not allocate",
		"",
		"mylin: the model returned a result that batch->alloc_result() did not allocate",
		"",
		"mylin: the model returned a text result that is not UTF-8 (byte 2 of 4)",
		"",
	};
	static const enum mode b3[] = {FAIL_EMPTY, FAIL_RESULT, STRAY, FAIL_REASON};
	static const int s3[] = {MB_STATUS_MODEL_ERROR, MB_STATUS_MODEL_ERROR, MB_STATUS_OK,
				 MB_STATUS_MODEL_ERROR};
	static const char *const w3[] = {
		"mylin: the model failed this item without a reason",
		"mylin: failed after its result was allocated",
		"",
		"mylin: item failed on purpose",
	};
	const char *log;
	struct rig r;

	capture_start();
	rig_up_on(&r, &g_desc_bad, -1);
	expect_batch(&r, b1, 8, s1, w1);
	expect_batch(&r, b2, 8, s2, w2);
	free(g_foreign);
	g_foreign = NULL;
	expect_batch(&r, b3, 4, s3, w3);
	rig_down(&r);
	log = capture_stop();
	/* each refusal is logged with the request, the model and the device: the first 10 of
	 * the 15 failed items, then a count at the worker's end */
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "request 1 tenant 0: model mylin on device t0: a "
					   "malformed result answered MODEL_ERROR: the model "
					   "returned an F32 result of 2 x 2 (16 bytes) with "
					   "result_len 20"));
	CU_ASSERT_EQUAL(count(log, "malformed result answered MODEL_ERROR"), 10);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "model mylin on device t0: 5 more failed batches or "
					   "items not logged"));
	free(g_log);
	g_log = NULL;
}

/*
 * A malformed result is the model's fault: its batch counts as failed toward the breaker, as
 * a failed run() does. Items the model failed on its own (bad media) do not count.
 */
static void
test_malformed_results_open_breaker(void)
{
	static const enum mode own[] = {GOOD, FAIL_REASON};
	static const int own_s[] = {MB_STATUS_OK, MB_STATUS_MODEL_ERROR};
	static const char *const own_w[] = {"", "mylin: item failed on purpose"};
	static const enum mode bad[] = {GOOD, LONG_LEN};
	static const int bad_s[] = {MB_STATUS_OK, MB_STATUS_MODEL_ERROR};
	static const char *const bad_w[] = {"", "result_len 20"};
	static const enum mode none[] = {UNTOUCHED};
	static const int none_s[] = {MB_STATUS_MODEL_ERROR};
	static const char *const none_w[] = {"mylin: the model returned no result for this item"};
	struct mb_breaker_opts bo;
	struct mb_breaker br;
	struct mb_breaker_stats st;
	struct rig r;

	mb_breaker_opts_init(&bo);
	bo.failure_threshold = 2;
	bo.cooldown_ns = 60 * MB_NS_PER_S;
	CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&br, &bo), 0);
	capture_start();
	rig_up_on(&r, &g_desc_bad, -1);
	r.model.breakers = &br;
	for (int i = 0; i < 3; i++) /* the model's own item failures: never counted */
		expect_batch(&r, own, 2, own_s, own_w);
	mb_breaker_stats(&br, &st);
	CU_ASSERT_EQUAL(st.consecutive_failures, 0);
	CU_ASSERT_EQUAL(mb_breaker_state(&br), MB_BREAKER_CLOSED);
	expect_batch(&r, bad, 2, bad_s, bad_w);
	mb_breaker_stats(&br, &st);
	CU_ASSERT_EQUAL(st.consecutive_failures, 1);
	CU_ASSERT_EQUAL(mb_breaker_state(&br), MB_BREAKER_CLOSED);
	expect_batch(&r, none, 1, none_s, none_w); /* the second in a row opens it */
	CU_ASSERT_EQUAL(mb_breaker_state(&br), MB_BREAKER_OPEN);
	g_mode[0] = GOOD;
	submit(&r, 1, 0);
	{
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL(q->resp.status, MB_STATUS_UNAVAILABLE);
		CU_ASSERT_PTR_NOT_NULL(strstr(q->reason, "circuit open"));
	}
	rig_down(&r);
	capture_stop();
	free(g_log);
	g_log = NULL;
	mb_breaker_fini(&br);
}

/* A text and an F32 result of the GOOD and TEXT_OK kinds come out as the model made them. */
static void
test_good_results_pass(void)
{
	static const enum mode m[] = {GOOD, TEXT_OK, EMPTY_F32};
	struct mb_request *got[3] = {0};
	struct rig r;

	rig_up_on(&r, &g_desc_bad, -1);
	memcpy(g_mode, m, sizeof(m));
	submit(&r, 3, 0);
	for (int i = 0; i < 3; i++) {
		struct mb_request *q = answer(&r);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		got[q->hdr.request_id] = q;
	}
	CU_ASSERT_EQUAL(got[0]->resp.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(got[0]->resp.result_type, MB_RESULT_F32);
	CU_ASSERT_EQUAL(got[0]->result_len, 4);
	CU_ASSERT_EQUAL(got[1]->resp.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(got[1]->resp.result_type, MB_RESULT_TEXT);
	CU_ASSERT_EQUAL_FATAL(got[1]->result_len, 10);
	CU_ASSERT_EQUAL(memcmp(got[1]->result, "h\xc3\xa9llo \xe2\x82\xac", 10), 0);
	CU_ASSERT_EQUAL(got[2]->resp.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(got[2]->resp.result_len, 0);
	CU_ASSERT_PTR_NULL(got[2]->result);
	for (int i = 0; i < 3; i++)
		free(got[i]->result);
	rig_down(&r);
}

/* A failed batch: the reason has the device and run()'s return code; it is logged. A failing
 * model's lines are limited: 10 a minute per worker, then a count of those held back. */
static void
test_failures_logged_and_limited(void)
{
	const char *log;
	struct rig r;

	capture_start();
	rig_up(&r);
	g_fail_batch = -EIO;
	submit(&r, 1, 0);
	expect_model_errors_ran(&r, 1,
				"scripted: the batch failed on device t0 (run() returned -5: "
				"Input/output error)");
	g_fail_batch = 7;
	submit(&r, 1, 0);
	expect_model_errors_ran(&r, 1,
				"scripted: the batch failed on device t0 (run() returned 7, not 0 "
				"or -errno)");
	g_fail_batch = 0;
	g_fail_item = 0;
	for (int i = 0; i < 20; i++) {
		submit(&r, 1, 0);
		expect_model_errors_ran(&r, 1, "scripted: scripted failure");
	}
	rig_down(&r);
	log = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "model scripted on device t0: a batch of 1 failed "
					   "(run() returned -5: Input/output error); its "
					   "requests are answered MODEL_ERROR"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "(run() returned 7, not 0 or -errno)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "request 0 tenant 0: model scripted on device t0: "
					   "the model failed the item: scripted failure"));
	CU_ASSERT_EQUAL(count(log, "the model failed the item: scripted failure"), 8);
	/* at the worker's end, what the window held back */
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "model scripted on device t0: 12 more failed batches "
					   "or items not logged in the last "));
	free(g_log);
	g_log = NULL;
}

static int
suite_init(void)
{
	mb_test_eal_up("worker_test");
	return 0;
}

static const struct mb_test_case cases[] = {
	{"runs a batch, answers each item, releases the units", test_runs_and_answers},
	{"cancelled and expired items are answered, never run",
	 test_cancelled_and_expired_never_run},
	{"an item or a whole batch failing gives MODEL_ERROR", test_model_failures},
	{"after abort, unstarted work is CANCELLED", test_abort_cancels_unstarted},
	{"a model whose worker set-up failed gets MODEL_ERROR", test_worker_init_failure},
	{"a CUDA device the worker cannot attach to fails its batches", test_cuda_attach_failure},
	{"an open breaker: UNAVAILABLE, never run, no run fields", test_breaker_open_never_runs},
	{"the watchdog takes over a hung run; the run's return gives the requests back",
	 test_watchdog_takes_over_a_hung_run},
	{"malformed results are answered MODEL_ERROR with what was wrong, never sent",
	 test_malformed_results_refused},
	{"a malformed result counts toward the breaker, the model's own item failures do not",
	 test_malformed_results_open_breaker},
	{"F32, text and empty results the protocol allows are sent as made",
	 test_good_results_pass},
	{"failed batches and items are logged with the reason, a few lines a minute",
	 test_failures_logged_and_limited},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"worker", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	int rc = mb_test_main("worker_test", suites);

	mb_test_eal_down();
	return rc;
}
