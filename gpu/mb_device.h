/**
 * @file
 * Devices, the models served on them, batches, and the workers that run batches.
 *
 * struct mb_model is a model as the service runs it: its descriptor (model.h), the settings
 * in effect (descriptor defaults overridden by the config), its queue from the front door
 * to the batcher, and the count of items waiting.
 *
 * struct mb_device is where batches run: a capacity in units guarded by a weighted FIFO
 * semaphore (VRAM admission: a batch may run only when base_units + its items' costs are
 * free), a run queue of admitted batches, and a pool of batch objects. The CPU device
 * (index 0) is the one this build has; CUDA devices come with the GPU work.
 *
 * A worker (mb_worker_run(), a thread body started by the daemon) takes admitted batches
 * from its device's run queue. Before starting a batch it answers items that were cancelled
 * or whose deadline passed (CANCELLED, TIMEOUT) and refunds their units; it runs the rest
 * with the model, answers each item, hands them to the egress through the results ring,
 * and only then releases the batch's units.
 *
 * Ownership: a batch and its requests belong to whichever thread dequeued them.
 */
#ifndef MB_DEVICE_H
#define MB_DEVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "mediabatch/model.h"

#include "mb_breaker.h"
#include "mb_cancel.h"
#include "mb_idle.h"
#include "mb_metrics.h"
#include "mb_request.h"
#include "mb_ring.h"
#include "mb_sem.h"

/** A model as the service runs it. */
struct mb_model {
	uint32_t index;
	const struct mb_model_desc *desc;
	bool enabled;
	char disabled_reason[MB_PROTO_REASON_MAX];
	/* settings in effect */
	uint32_t max_batch;
	uint32_t max_delay_us;
	uint32_t queue_limit;
	uint32_t default_timeout_ms;
	uint32_t base_units;
	double item_units_per_second;
	/* state from desc->load() on the CPU device */
	void *state;
	bool loaded;		  /**< load() succeeded: unload() is owed */
	struct mb_plugin *plugin; /**< the plugin that serves it, or NULL (built-in) */
	/* stands in for a plugin that failed to load: its name only, so requests for it are
	 * answered UNAVAILABLE with the reason rather than UNKNOWN_MODEL */
	struct mb_model_desc failed_desc;
	char failed_name[MB_PROTO_MODEL_LEN + 1];
	/* circuit breakers, indexed by device index (NULL: none; workers then run everything) */
	struct mb_breaker *breakers;
	/* front door -> batcher */
	struct mb_ring *queue;
	atomic_uint queued; /**< accepted, not yet in a batch (front door adds, batcher takes) */
	/* metrics */
	struct mb_metric *m_batch_size;
};

/** Units one item costs on @p model (ceil of item_units_per_second x media seconds). */
uint32_t mb_model_item_cost(const struct mb_model *model, const struct mb_request_hdr *hdr);

/** A batch: requests of one model, admitted (or waiting to be) onto one device. */
struct mb_batch {
	struct mb_model *model;
	uint32_t n;
	uint64_t units; /**< base + item costs: what the ticket asks for / holds */
	struct mb_sem_ticket ticket;
	uint64_t formed_ns;
	TAILQ_ENTRY(mb_batch) link; /**< the batcher's list of batches awaiting admission */
	struct mb_request *items[]; /**< capacity: the device's batch_capacity */
};

TAILQ_HEAD(mb_batch_list, mb_batch);

struct mb_device_opts {
	int index;		 /**< the response's device field */
	const char *name;	 /**< "cpu0": metrics label, logs; copied */
	uint64_t units;		 /**< capacity */
	uint32_t batch_capacity; /**< largest batch (max of the models' max_batch) */
	uint32_t n_batches;	 /**< batch objects in the pool */
	int numa_node;
};

struct mb_device {
	int index;
	char name[16];
	struct mb_sem *units;
	struct mb_ring *run;  /**< admitted batches (batcher -> workers) */
	struct mb_ring *free; /**< batch objects not in use */
	uint32_t batch_capacity;
	uint32_t n_batches;
	void *batch_mem;
	atomic_bool producer_done; /**< the batcher will push no more batches */
};

/** Create a device (needs EAL: its rings). Returns 0, -EINVAL or -ENOMEM. */
int mb_device_create(const struct mb_device_opts *opts, struct mb_device **out);

/** Free a device; every batch must be back in its pool. NULL accepted. */
void mb_device_destroy(struct mb_device **dev);

/** A free batch object, or NULL if all are in use. Any thread. */
struct mb_batch *mb_device_batch_get(struct mb_device *dev);

/** Return a batch object. Any thread. */
void mb_device_batch_put(struct mb_device *dev, struct mb_batch *b);

struct mb_worker_opts {
	struct mb_device *device;
	struct mb_model **models; /**< borrowed; index = model index */
	uint32_t n_models;
	struct mb_ring *results; /**< answered requests -> egress */
	struct mb_cancel *abort; /**< cancelled: answer what has not started CANCELLED */
	struct mb_idle_opts idle;
	struct mb_metric *m_admission_wait; /**< histogram, seconds (may be NULL) */
};

struct mb_worker;

/** Create a worker (does not start a thread). Returns 0, -EINVAL or -ENOMEM. */
int mb_worker_create(const struct mb_worker_opts *opts, struct mb_worker **out);

/** Free a worker after its thread returned. NULL accepted. */
void mb_worker_destroy(struct mb_worker **w);

/**
 * Thread body: set up each model's per-worker scratch, then run batches until the device's
 * producer is done and its run queue is empty. Returns 0 (or the first worker_init error,
 * after which the worker still runs batches of the other models).
 */
int mb_worker_run(struct mb_worker *w);

/** Batches run, and items answered, by this worker so far. Any thread. */
uint64_t mb_worker_batches(const struct mb_worker *w);

/**
 * Push @p req to @p results, retrying while the ring is full (it is sized for every request
 * in flight, so that would be a sizing bug: logged once). Any producer thread.
 */
void mb_results_push(struct mb_ring *results, struct mb_request *req);

#endif /* MB_DEVICE_H */
