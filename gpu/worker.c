/*
 * worker.c: a worker thread of a device: admitted batch in, answered requests out.
 *
 * Per batch: drop what must not run (cancelled by the client, past its deadline, or the
 * service is aborting) and refund those items' units at once; run the rest; answer every
 * item; push them to the egress; then release the units the batch still holds. Scratch
 * per model (worker_init) and the model item array are set up once per thread, so a batch
 * allocates nothing but the models' results.
 *
 * What run() returns is checked before it is answered OK (check_result()): a result must be
 * one that docs/protocol.md lets a client read (a known type whose rows, cols and result_len
 * agree) and lie inside what batch->alloc_result() gave, which the worker records per batch
 * (struct result_alloc). Anything else is answered MODEL_ERROR with what was wrong, and
 * nothing past an allocation is ever sent. Results not sent are freed after the batch. Failed
 * batches, failed items and refused results are logged, a few lines per model and worker
 * per minute (struct log_limit), so a failing model cannot flood the log.
 *
 * The watchdog (mb_worker_abandon_if_hung(), another thread) sees how long the current
 * run() has taken through run_since_ns; the batch belongs to whoever moves run_state out of
 * RUNNING first: the worker when run() returns, or the watchdog, which then answers it.
 */
#include "mb_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_batch.h"
#include "mb_breaker.h"
#include "mb_cancel.h"
#include "mb_device.h"
#include "mb_env.h"
#include "mb_gpu_probe.h"
#include "mb_metrics.h"
#include "mb_model_rt.h"
#include "mb_request.h"
#include "mb_ring.h"
#include "mb_sem.h"
#include "mb_topo.h"

#define MB_LOG_MODULE "worker"
#include "mb_log.h"

/* One allocation of alloc_result() during the current run(). */
struct result_alloc {
	void *p;      /* NULL once an answer took it */
	size_t bytes; /* as asked for */
};

/* Lines logged about one model's failures on one worker: LOG_BURST per LOG_WINDOW_NS, then a
 * count of those held back when the next window opens (or the worker ends). */
#define LOG_BURST 10
#define LOG_WINDOW_NS (60 * MB_NS_PER_S)

struct log_limit {
	uint64_t since_ns; /* the window's start (0: none yet) */
	uint32_t lines;	   /* logged in it */
	uint64_t held;	   /* not logged in it */
};

struct mb_worker {
	struct mb_worker_opts o;
	struct mb_idle idle;
	void *stream; /* CUDA devices: this thread's stream */
	struct broken {
		bool on;
		char why[200];
	} * broken;		     /* per model: its worker set-up failed, and why */
	void **scratch;		     /* per model */
	struct mb_model_item *items; /* batch_capacity */
	_Atomic uint64_t batches;
	/* the watchdog's view of run(): see the file comment */
	_Atomic int run_state;
	_Atomic uint64_t run_since_ns;	  /* when the current run() began; it names the run */
	_Atomic uint64_t run_limit_ns;	  /* its model's run_timeout_ms (0: none) */
	struct mb_batch *_Atomic running; /* read by the watchdog only once it owns the run */
	atomic_bool abandoned;
	struct mb_request **reclaim; /* batch_capacity: what the watchdog parked */
	uint32_t n_reclaim;	     /* written before RUN_ABANDONED, read after */
	/* alloc_result()'s record of the current run(); the lock in case run() allocates from
	 * threads of its own */
	pthread_mutex_t alloc_lock;
	struct result_alloc *allocs;
	uint32_t n_allocs, cap_allocs;
	uint32_t alloc_cursor; /* where the next lookup starts: results come in order */
	int run_rc;	       /* what run() returned for the batch (before run_guarded's -EIO) */
	/* a run() that returned 0 reports to its breaker once its results are checked */
	struct mb_breaker *br_pending;
	enum mb_breaker_verdict br_verdict;
	struct log_limit *limits; /* per model */
};

enum { RUN_IDLE, RUN_RUNNING, RUN_ABANDONING, RUN_ABANDONED };

/* run_guarded()'s answer when the watchdog took the batch over while run() ran */
#define ABANDONED 2

/* batch->alloc_result: malloc(), recorded with its size for check_result(). */
static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	struct mb_worker *w = batch->alloc_ctx;
	void *p = malloc(bytes != 0 ? bytes : 1);

	if (p == NULL)
		return NULL;
	pthread_mutex_lock(&w->alloc_lock);
	if (w->n_allocs == w->cap_allocs) {
		uint32_t cap = w->cap_allocs <= UINT32_MAX / 2 ? w->cap_allocs * 2 : 0;
		struct result_alloc *a =
			cap != 0 ? realloc(w->allocs, (size_t)cap * sizeof(*a)) : NULL;

		if (a == NULL) {
			pthread_mutex_unlock(&w->alloc_lock);
			free(p);
			return NULL;
		}
		w->allocs = a;
		w->cap_allocs = cap;
	}
	w->allocs[w->n_allocs++] = (struct result_alloc){.p = p, .bytes = bytes};
	pthread_mutex_unlock(&w->alloc_lock);
	return p;
}

/* The record of allocation @p p (not NULL) of this run(), or NULL: not one of them, or one
 * an answer already took. Starts where the last lookup stopped: O(1) for results in order. */
static struct result_alloc *
find_alloc(struct mb_worker *w, const void *p)
{
	for (uint32_t k = 0, j = w->alloc_cursor; k < w->n_allocs; k++, j++) {
		if (j >= w->n_allocs)
			j = 0;
		if (w->allocs[j].p == p) {
			w->alloc_cursor = j + 1;
			return &w->allocs[j];
		}
	}
	return NULL;
}

/*
 * After the batch's answers: free the results of its @p n items that no answer took (failed
 * items, refused results, a failed batch), each once, and only allocations of this run(): a
 * pointer from elsewhere is its owner's, and an allocation no item points to is the model's
 * own (it may have freed it). The record is empty again.
 */
static void
release_results(struct mb_worker *w, uint32_t n)
{
	w->alloc_cursor = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct result_alloc *a;

		if (w->items[i].result != NULL && (a = find_alloc(w, w->items[i].result)) != NULL) {
			free(a->p);
			a->p = NULL;
		}
	}
	w->n_allocs = 0;
	w->alloc_cursor = 0;
}

int
mb_worker_create(const struct mb_worker_opts *o, struct mb_worker **out)
{
	struct mb_worker *w;

	*out = NULL;
	if (o->device == NULL || o->results == NULL || o->models == NULL)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->o = *o;
	w->scratch = calloc(o->n_models ? o->n_models : 1, sizeof(void *));
	w->broken = calloc(o->n_models ? o->n_models : 1, sizeof(*w->broken));
	w->items = calloc(o->device->batch_capacity, sizeof(*w->items));
	w->reclaim = calloc(o->device->batch_capacity, sizeof(*w->reclaim));
	pthread_mutex_init(&w->alloc_lock, NULL);
	w->cap_allocs = o->device->batch_capacity ? o->device->batch_capacity : 1;
	w->allocs = calloc(w->cap_allocs, sizeof(*w->allocs));
	w->limits = calloc(o->n_models ? o->n_models : 1, sizeof(*w->limits));
	if (w->scratch == NULL || w->broken == NULL || w->items == NULL || w->reclaim == NULL ||
	    w->allocs == NULL || w->limits == NULL) {
		mb_worker_destroy(&w);
		return -ENOMEM;
	}
	if (mb_idle_init(&w->idle, &o->idle) < 0) {
		mb_worker_destroy(&w);
		return -EINVAL;
	}
	*out = w;
	return 0;
}

void
mb_worker_destroy(struct mb_worker **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	free((*wp)->broken);
	free((*wp)->scratch);
	free((*wp)->items);
	free((*wp)->reclaim);
	free((*wp)->allocs);
	free((*wp)->limits);
	pthread_mutex_destroy(&(*wp)->alloc_lock);
	free(*wp);
	*wp = NULL;
}

uint64_t
mb_worker_batches(const struct mb_worker *w)
{
	return atomic_load_explicit(&((struct mb_worker *)w)->batches, memory_order_relaxed);
}

static uint32_t
us_between(uint64_t from_ns, uint64_t to_ns)
{
	uint64_t us = to_ns > from_ns ? (to_ns - from_ns) / 1000 : 0;

	return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Answer the items that must not run; keep the rest in order. Returns how many remain. */
static uint32_t
weed(struct mb_worker *w, struct mb_batch *b, uint64_t now)
{
	struct mb_device *dev = w->o.device;
	bool aborting = w->o.abort != NULL && mb_cancel_is_cancelled(w->o.abort);
	uint64_t refund = 0;
	uint32_t kept = 0;

	for (uint32_t i = 0; i < b->n; i++) {
		struct mb_request *r = b->items[i];

		if (mb_request_cancelled(r))
			mb_request_answer(r, MB_STATUS_CANCELLED, "%s",
					  mb_request_cancel_reason(r));
		else if (now >= r->deadline_ns)
			mb_request_answer(r, MB_STATUS_TIMEOUT,
					  "deadline passed after %u us waiting; not run",
					  us_between(r->arrival_ns, now));
		else if (aborting)
			mb_request_answer(r, MB_STATUS_CANCELLED,
					  "the service is stopping; not run");
		else {
			b->items[kept++] = r;
			continue;
		}
		refund += r->cost_units;
		mb_results_push(w->o.results, r);
	}
	if (refund != 0) {
		mb_sem_release(dev->units, refund);
		b->units -= refund;
	}
	b->n = kept;
	return kept;
}

/* run_guarded()'s answer when the breaker refused the batch (models return 0 or -errno). */
#define REJECTED 1

/* Run the model under the watchdog's eye; ABANDONED if the watchdog took the batch. */
static int
run_watched(struct mb_worker *w, struct mb_batch *b, struct mb_model_batch *mb,
	    int (*run)(struct mb_worker *, struct mb_batch *, struct mb_model_batch *))
{
	int rc;

	atomic_store_explicit(&w->running, b, memory_order_relaxed);
	atomic_store_explicit(&w->run_limit_ns, (uint64_t)b->model->run_timeout_ms * MB_NS_PER_MS,
			      memory_order_relaxed);
	atomic_store_explicit(&w->run_since_ns, mb_env_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&w->run_state, RUN_RUNNING, memory_order_release);
	rc = run(w, b, mb);
	for (;;) {
		int expect = RUN_RUNNING;

		if (atomic_compare_exchange_strong_explicit(&w->run_state, &expect, RUN_IDLE,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			atomic_store_explicit(&w->run_since_ns, 0, memory_order_relaxed);
			return rc;
		}
		if (expect == RUN_ABANDONED)
			return ABANDONED;
		sched_yield(); /* RUN_ABANDONING: the watchdog is answering the batch */
	}
}

/*
 * Run the batch under its (model, device) breaker: refused at once while the breaker is
 * open, run as the one probe when half-open. A batch whose run() fails counts as a failure
 * at once; one whose run() returned 0 is reported by report_checked() once its results are
 * checked (a malformed result is the model's fault: the batch counts as failed). Items
 * the model failed on their own (bad media) do not count.
 */
static int
run_guarded(struct mb_worker *w, struct mb_batch *b, struct mb_model_batch *mb)
{
	struct mb_model *m = b->model;
	struct mb_breaker *br = m->breakers != NULL ? &m->breakers[w->o.device->index] : NULL;
	enum mb_breaker_verdict v = MB_BREAKER_ALLOW;
	int rc;

	if (br != NULL && (v = mb_breaker_check(br)) == MB_BREAKER_REJECT)
		return REJECTED;
	rc = w->run_rc = m->desc->run(m->states[w->o.device->index], mb);
	if (rc > 0) /* not -errno: still a failure, never mistaken for REJECTED */
		rc = -EIO;
	if (br != NULL && rc != 0)
		mb_breaker_report(br, v, false);
	else if (br != NULL) {
		w->br_pending = br;
		w->br_verdict = v;
	}
	return rc;
}

/* The breaker's report for a run() that returned 0, now that its results are checked. */
static void
report_checked(struct mb_worker *w, bool success)
{
	if (w->br_pending != NULL)
		mb_breaker_report(w->br_pending, w->br_verdict, success);
	w->br_pending = NULL;
}

/* run() returned after the watchdog answered its batch: drop what it made, hand the parked
 * requests back to be recycled, release the units, and leave (the worker was replaced). */
static void
take_back(struct mb_worker *w, struct mb_batch *b)
{
	struct mb_device *dev = w->o.device;

	MB_LOG(WARNING,
	       "device %s: a run of model %s returned after the watchdog gave up on it; "
	       "its worker thread exits",
	       dev->name, b->model->desc->name);
	report_checked(w, true); /* it returned 0, late: its results are not looked at */
	release_results(w, b->n);
	/* tagged, not written: the egress may still be sending the parked answer */
	for (uint32_t i = 0; i < w->n_reclaim; i++)
		mb_results_push(w->o.results, MB_REQ_RECLAIM_TAG(w->reclaim[i]));
	mb_sem_release(dev->units, b->units);
	mb_device_batch_put(dev, b);
}

/* The offset of the first byte of @p s that is not well-formed UTF-8 (RFC 3629), or -1. */
static int64_t
utf8_bad_at(const uint8_t *s, uint32_t n)
{
	uint32_t i = 0;

	while (i < n) {
		uint32_t c = s[i], len, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (n - i < len)
			return i;
		for (uint32_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return -1;
}

/*
 * Whether the result run() left in @p it (not failed) may be answered OK: what
 * docs/protocol.md ("Response header") lets a receiver read, and include/mediabatch/model.h
 * asks of a model. F32: result_len is rows x cols x 4; top-k: cols 2 and result_len rows x 8;
 * text: well-formed UTF-8; type 0 (none) or an unknown type: never. A result of bytes must
 * be an allocation of this run()'s batch->alloc_result() (one item's), at least result_len
 * bytes; a result of no bytes may be NULL. (Sizes have no other limit: rows and cols are
 * u16 and result_len u32 on the wire.) true with its record in @p slot (NULL for a NULL
 * result), or false with the reason in @p why.
 */
static bool
check_result(struct mb_worker *w, const struct mb_model_item *it, struct result_alloc **slot,
	     char *why, size_t why_len)
{
	uint64_t want;
	int64_t bad;

	*slot = NULL;
	switch (it->result_type) {
	case MB_RESULT_NONE:
		if (it->result == NULL && it->result_len == 0 && it->rows == 0 && it->cols == 0)
			snprintf(why, why_len, "the model returned no result for this item");
		else
			snprintf(why, why_len,
				 "the model returned result_type 0 (none) with rows %u, cols %u "
				 "and result_len %" PRIu32 ": no result",
				 it->rows, it->cols, it->result_len);
		return false;
	case MB_RESULT_F32:
		want = (uint64_t)it->rows * it->cols * 4;
		if (want == it->result_len)
			break;
		snprintf(why, why_len,
			 "the model returned an F32 result of %u x %u (%" PRIu64
			 " bytes) with result_len %" PRIu32,
			 it->rows, it->cols, want, it->result_len);
		return false;
	case MB_RESULT_TOPK:
		want = (uint64_t)it->rows * 8;
		if (it->cols == 2 && want == it->result_len)
			break;
		snprintf(why, why_len,
			 "the model returned a top-k result of %u pairs (%" PRIu64
			 " bytes) with cols %u and result_len %" PRIu32 " (top-k: cols 2, rows x 8 "
			 "bytes)",
			 it->rows, want, it->cols, it->result_len);
		return false;
	case MB_RESULT_TEXT:
		break;
	default:
		snprintf(why, why_len,
			 "the model returned result_type %u, not one of 1 (F32), 2 (top-k), 3 "
			 "(text)",
			 it->result_type);
		return false;
	}
	if (it->result == NULL) {
		if (it->result_len == 0)
			return true;
		snprintf(why, why_len, "the model returned a NULL result with result_len %" PRIu32,
			 it->result_len);
		return false;
	}
	if ((*slot = find_alloc(w, it->result)) == NULL) {
		snprintf(why, why_len,
			 "the model returned a result that batch->alloc_result() did not allocate "
			 "in this run() (or one that another item returned too)");
		return false;
	}
	if (it->result_len > (*slot)->bytes) {
		snprintf(why, why_len,
			 "the model returned result_len %" PRIu32
			 " for a result of %zu bytes from alloc_result()",
			 it->result_len, (*slot)->bytes);
		return false;
	}
	if (it->result_type == MB_RESULT_TEXT &&
	    (bad = utf8_bad_at(it->result, it->result_len)) >= 0) {
		snprintf(why, why_len,
			 "the model returned a text result that is not UTF-8 (byte %" PRId64
			 " of %" PRIu32 ")",
			 bad, it->result_len);
		return false;
	}
	return true;
}

/* Report the lines model @p i held back in its window, if any (before a new one opens). */
static void
log_held(struct mb_worker *w, uint32_t i, uint64_t now)
{
	struct log_limit *l = &w->limits[i];

	if (l->held != 0)
		MB_LOG(WARNING,
		       "model %s on device %s: %" PRIu64 " more failed batches or items not logged "
		       "in the last %" PRIu64 " s",
		       w->o.models[i]->desc->name, w->o.device->name, l->held,
		       (now - l->since_ns) / MB_NS_PER_S);
	l->held = 0;
}

/* Whether to log one more failure of model @p m: LOG_BURST lines per LOG_WINDOW_NS. */
static bool
log_allowed(struct mb_worker *w, const struct mb_model *m, uint64_t now)
{
	struct log_limit *l;

	if (m->index >= w->o.n_models)
		return true;
	l = &w->limits[m->index];
	if (l->since_ns == 0 || now - l->since_ns >= LOG_WINDOW_NS) {
		log_held(w, m->index, now);
		l->since_ns = now != 0 ? now : 1;
		l->lines = 0;
	}
	if (l->lines < LOG_BURST) {
		l->lines++;
		return true;
	}
	l->held++;
	return false;
}

/* run()'s return code in words, for the reason of a failed batch. */
static void
describe_rc(int rc, char *out, size_t len)
{
	if (rc < 0)
		snprintf(out, len, "run() returned %d: %s", rc, strerror(-rc));
	else
		snprintf(out, len, "run() returned %d, not 0 or -errno", rc);
}

static void
run_batch(struct mb_worker *w, struct mb_batch *b)
{
	struct mb_model *m = b->model;
	struct mb_device *dev = w->o.device;
	struct mb_model_batch mb = {
		.items = w->items,
		.device = dev->cuda,
		.stream = w->stream,
		.worker = w->scratch[m->index],
		.alloc_result = alloc_result,
		.alloc_ctx = w,
	};
	const char *broken =
		m->index < w->o.n_models && w->broken[m->index].on ? w->broken[m->index].why : NULL;
	bool hung = atomic_load_explicit(&m->hung, memory_order_acquire);
	uint64_t start, end;
	char why[MB_PROTO_REASON_MAX], rc_why[96] = "";
	uint32_t malformed = 0;
	bool ran;
	int rc;

	if (w->o.m_admission_wait != NULL && b->ticket.grant_ns >= b->ticket.enqueue_ns)
		mb_metric_observe(w->o.m_admission_wait,
				  (double)(b->ticket.grant_ns - b->ticket.enqueue_ns) / 1e9);
	start = mb_env_now_ns();
	if (weed(w, b, start) != 0) {
		mb.n_items = b->n;
		for (uint32_t i = 0; i < b->n; i++) {
			struct mb_request *r = b->items[i];

			memset(&w->items[i], 0, sizeof(w->items[i]));
			w->items[i].hdr = &r->hdr;
			w->items[i].payload = r->payload;
			w->items[i].payload_len = r->payload_len;
		}
		rc = broken != NULL || hung ? -EIO : run_watched(w, b, &mb, run_guarded);
		if (rc == ABANDONED) {
			take_back(w, b);
			return;
		}
		end = mb_env_now_ns();
		/* refused by the breaker, no worker state, or the model hung before: the model
		 * never ran the batch */
		ran = broken == NULL && !hung && rc != REJECTED;
		if (ran && m->m_batch_size != NULL)
			mb_metric_observe(m->m_batch_size, (double)b->n);
		if (ran && rc != 0) {
			describe_rc(w->run_rc, rc_why, sizeof(rc_why));
			if (log_allowed(w, m, end))
				MB_LOG(ERR,
				       "model %s on device %s: a batch of %u failed (%s); "
				       "its requests are answered MODEL_ERROR",
				       m->desc->name, dev->name, b->n, rc_why);
		}
		for (uint32_t i = 0; i < b->n; i++) {
			struct mb_request *r = b->items[i];
			struct mb_model_item *it = &w->items[i];
			struct result_alloc *slot;

			if (hung) {
				mb_request_answer(r, MB_STATUS_UNAVAILABLE, "%s", m->hung_reason);
			} else if (rc == REJECTED) {
				mb_request_answer(r, MB_STATUS_UNAVAILABLE,
						  "model %s on device %s: circuit open after "
						  "repeated failed batches; retry later",
						  m->desc->name, dev->name);
			} else if (broken != NULL) {
				mb_request_answer(r, MB_STATUS_MODEL_ERROR,
						  "%s: cannot run on device %s: %s", m->desc->name,
						  dev->name, broken);
			} else if (rc != 0) {
				mb_request_answer(r, MB_STATUS_MODEL_ERROR,
						  "%s: the batch failed on device %s (%s)",
						  m->desc->name, dev->name, rc_why);
			} else if (it->failed) {
				it->reason[sizeof(it->reason) - 1] = '\0';
				if (it->reason[0] == '\0')
					snprintf(it->reason, sizeof(it->reason),
						 "the model failed this item without a reason");
				mb_request_answer(r, MB_STATUS_MODEL_ERROR, "%s: %s", m->desc->name,
						  it->reason);
				if (log_allowed(w, m, end))
					MB_LOG_REQ(WARNING, r->hdr.request_id, r->hdr.tenant_id,
						   "model %s on device %s: the model failed the "
						   "item: %s",
						   m->desc->name, dev->name, it->reason);
			} else if (!check_result(w, it, &slot, why, sizeof(why))) {
				malformed++;
				mb_request_answer(r, MB_STATUS_MODEL_ERROR, "%s: %s", m->desc->name,
						  why);
				if (log_allowed(w, m, end))
					MB_LOG_REQ(ERR, r->hdr.request_id, r->hdr.tenant_id,
						   "model %s on device %s: a malformed result "
						   "answered MODEL_ERROR: %s",
						   m->desc->name, dev->name, why);
			} else {
				if (slot != NULL)
					slot->p = NULL; /* the request's now */
				mb_request_response_base(&r->hdr, &r->resp);
				r->resp.status = MB_STATUS_OK;
				r->resp.result_type = it->result_type;
				r->resp.rows = it->rows;
				r->resp.cols = it->cols;
				r->resp.result_len = it->result_len;
				r->result = it->result;
				r->result_len = it->result_len;
				r->done_ns = end;
				it->result = NULL; /* for release_results(): sent, not freed */
			}
			if (ran) { /* PROTOCOL.md: 0 and MB_DEVICE_NONE if never run */
				r->closed_ns = b->formed_ns;
				r->admitted_ns = b->ticket.grant_ns;
				r->close_reason = b->close_reason;
				r->start_ns = start;
				r->resp.queue_us = us_between(r->arrival_ns, start);
				r->resp.compute_us = us_between(start, end);
				r->resp.batch_size = (uint16_t)b->n;
				r->resp.device = (uint16_t)dev->index;
			}
		}
		report_checked(w, malformed == 0);
		release_results(w, b->n); /* the results no answer took */
		/* one ring operation for the batch: at most one wakeup of the egress */
		mb_results_push_burst(w->o.results, b->items, b->n);
		atomic_fetch_add_explicit(&w->batches, 1, memory_order_relaxed);
	}
	/* The results are with the egress: now the units go back. */
	mb_sem_release(dev->units, b->units);
	mb_device_batch_put(dev, b);
}

static bool
done(struct mb_worker *w)
{
	return atomic_load_explicit(&w->o.device->producer_done, memory_order_acquire) &&
	       mb_ring_count(w->o.device->run) == 0;
}

/* Note why model @p i cannot run on this worker; its batches are answered MODEL_ERROR. */
static void
mark_broken(struct mb_worker *w, uint32_t i, const char *why)
{
	if (w->broken[i].on)
		return;
	w->broken[i].on = true;
	snprintf(w->broken[i].why, sizeof(w->broken[i].why), "%s", why);
}

/* Bind to the device's node, attach to the CUDA device, set up every served model. */
static int
set_up(struct mb_worker *w)
{
	struct mb_device *dev = w->o.device;
	char why[256] = "";
	int first_err = 0, rc;

	if (w->o.topo != NULL && dev->numa_node >= 0) {
		if ((rc = mb_topo_bind_thread_node(w->o.topo, dev->numa_node)) < 0)
			MB_LOG(WARNING, "device %s: worker not bound to NUMA node %d: %s",
			       dev->name, dev->numa_node, strerror(-rc));
		else
			(void)mb_topo_bind_memory(w->o.topo, dev->numa_node);
	}
	if (dev->cuda >= 0 &&
	    (first_err = mb_gpu_thread_attach(dev->cuda, &w->stream, why, sizeof(why))) < 0) {
		MB_LOG(ERR, "device %s: worker cannot attach: %s; its batches fail", dev->name,
		       why);
		for (uint32_t i = 0; i < w->o.n_models; i++)
			mark_broken(w, i, why);
		return first_err;
	}
	for (uint32_t i = 0; i < w->o.n_models; i++) {
		struct mb_model *m = w->o.models[i];

		if (!m->enabled || !(m->devices & MB_DEVICE_BIT(dev->index)) ||
		    m->desc->worker_init == NULL)
			continue;
		rc = m->desc->worker_init(m->states[dev->index], dev->cuda, &w->scratch[i]);
		if (rc < 0) {
			snprintf(why, sizeof(why), "worker set-up failed: %s", strerror(-rc));
			MB_LOG(ERR, "model %s on %s: %s", m->desc->name, dev->name, why);
			mark_broken(w, i, why);
			w->scratch[i] = NULL;
			if (first_err == 0)
				first_err = rc;
		}
	}
	return first_err;
}

int
mb_worker_run(struct mb_worker *w)
{
	struct mb_device *dev = w->o.device;
	int first_err = set_up(w);

	while (!done(w) && !atomic_load_explicit(&w->abandoned, memory_order_acquire)) {
		void *b;

		if (mb_ring_dequeue_burst_wait(dev->run, &b, 1, &w->idle,
					       mb_env_deadline_in(100 * MB_NS_PER_MS)) == 1)
			run_batch(w, b);
	}
	for (uint32_t i = 0; i < w->o.n_models; i++) {
		struct mb_model *m = w->o.models[i];

		log_held(w, i, mb_env_now_ns());
		if (w->scratch[i] != NULL && m->desc->worker_fini != NULL)
			m->desc->worker_fini(m->states[dev->index], w->scratch[i]);
		w->scratch[i] = NULL;
	}
	if (w->stream != NULL) {
		mb_gpu_thread_detach(w->stream);
		w->stream = NULL;
	}
	return first_err;
}

bool
mb_worker_abandoned(const struct mb_worker *w)
{
	return atomic_load_explicit(&((struct mb_worker *)w)->abandoned, memory_order_acquire);
}

struct mb_model *
mb_worker_abandon_if_hung(struct mb_worker *w, uint64_t now, char *why, size_t why_len)
{
	uint64_t since = atomic_load_explicit(&w->run_since_ns, memory_order_relaxed);
	uint64_t limit = atomic_load_explicit(&w->run_limit_ns, memory_order_relaxed);
	struct mb_device *dev = w->o.device;
	int expect = RUN_RUNNING;
	struct mb_batch *b;
	struct mb_model *m;

	/* Only the worker's own fields until the run is ours: the batch may be back in its
	 * pool and being refilled by the batcher. */
	if (since == 0 || limit == 0 || now < since || now - since < limit)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(&w->run_state, &expect, RUN_ABANDONING,
						     memory_order_acq_rel, memory_order_acquire))
		return NULL; /* not running: it just returned */
	if (atomic_load_explicit(&w->run_since_ns, memory_order_relaxed) != since) {
		/* another run began between the two looks: not the one that was late */
		atomic_store_explicit(&w->run_state, RUN_RUNNING, memory_order_release);
		return NULL;
	}
	limit = atomic_load_explicit(&w->run_limit_ns, memory_order_relaxed); /* this run's */
	if (now - since < limit) {
		atomic_store_explicit(&w->run_state, RUN_RUNNING, memory_order_release);
		return NULL;
	}
	b = atomic_load_explicit(&w->running, memory_order_relaxed);
	m = b->model;
	snprintf(why, why_len,
		 "model %s: a batch on device %s has run for %" PRIu64 " ms, past its "
		 "run_timeout_ms (%u ms): presumed hung; its worker was replaced and the model is "
		 "disabled until the daemon restarts",
		 m->desc->name, dev->name, (now - since) / MB_NS_PER_MS, m->run_timeout_ms);
	w->n_reclaim = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct mb_request *r = b->items[i];

		mb_request_answer(r, MB_STATUS_MODEL_ERROR, "%s", why);
		r->start_ns = since;
		r->resp.queue_us = us_between(r->arrival_ns, since);
		r->resp.compute_us = us_between(since, now);
		r->resp.batch_size = (uint16_t)b->n;
		r->resp.device = (uint16_t)dev->index;
		/* A ZeroMQ payload is freed with its request: keep both until run() returns. A
		 * UDP payload lives in its rx queue's fixed buffers: the request goes back now. */
		if (r->release == NULL) {
			r->abandoned = MB_REQ_PARKED;
			w->reclaim[w->n_reclaim++] = r;
		}
		mb_results_push(w->o.results, r);
	}
	atomic_store_explicit(&w->abandoned, true, memory_order_release);
	atomic_store_explicit(&w->run_state, RUN_ABANDONED, memory_order_release);
	return m;
}
