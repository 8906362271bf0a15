/*
 * worker.c: a worker thread of a device: admitted batch in, answered requests out.
 *
 * Per batch: drop what must not run (cancelled by the client, past its deadline, or the
 * service is aborting) and refund those items' units at once; run the rest; answer every
 * item; push them to the egress; then release the units the batch still holds. Scratch
 * per model (worker_init) and the model item array are set up once per thread, so a batch
 * allocates nothing but the models' results.
 *
 * The watchdog (mb_worker_abandon_if_hung(), another thread) sees how long the current
 * run() has taken through run_since_ns; the batch belongs to whoever moves run_state out of
 * RUNNING first: the worker when run() returns, or the watchdog, which then answers it.
 */
#include "mb_worker.h"

#include <errno.h>
#include <inttypes.h>
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
};

enum { RUN_IDLE, RUN_RUNNING, RUN_ABANDONING, RUN_ABANDONED };

/* run_guarded()'s answer when the watchdog took the batch over while run() ran */
#define ABANDONED 2

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
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
	if (w->scratch == NULL || w->broken == NULL || w->items == NULL || w->reclaim == NULL) {
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
			mb_request_answer(r, MB_STATUS_CANCELLED, "cancelled by the client");
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
 * open, run as the one probe when half-open. A batch whose run() fails counts as a failure;
 * items that fail on their own (bad media) do not.
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
	rc = m->desc->run(m->states[w->o.device->index], mb);
	if (rc > 0) /* not -errno: still a failure, never mistaken for REJECTED */
		rc = -EIO;
	if (br != NULL)
		mb_breaker_report(br, v, rc == 0);
	return rc;
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
	for (uint32_t i = 0; i < b->n; i++)
		free(w->items[i].result);
	/* tagged, not written: the egress may still be sending the parked answer */
	for (uint32_t i = 0; i < w->n_reclaim; i++)
		mb_results_push(w->o.results, MB_REQ_RECLAIM_TAG(w->reclaim[i]));
	mb_sem_release(dev->units, b->units);
	mb_device_batch_put(dev, b);
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
	};
	const char *broken =
		m->index < w->o.n_models && w->broken[m->index].on ? w->broken[m->index].why : NULL;
	bool hung = atomic_load_explicit(&m->hung, memory_order_acquire);
	uint64_t start, end;
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
		for (uint32_t i = 0; i < b->n; i++) {
			struct mb_request *r = b->items[i];
			struct mb_model_item *it = &w->items[i];

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
			} else if (rc != 0 || it->failed) {
				mb_request_answer(r, MB_STATUS_MODEL_ERROR, "%s: %s", m->desc->name,
						  rc != 0 ? "the batch failed on the device"
							  : it->reason);
				free(it->result);
			} else {
				mb_request_response_base(&r->hdr, &r->resp);
				r->resp.status = MB_STATUS_OK;
				r->resp.result_type = it->result_type;
				r->resp.rows = it->rows;
				r->resp.cols = it->cols;
				r->resp.result_len = it->result_len;
				r->result = it->result;
				r->result_len = it->result_len;
				r->done_ns = end;
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
