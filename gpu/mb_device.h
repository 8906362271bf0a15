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
 * free), a run queue of admitted batches, and a pool of batch objects. The service numbers
 * its devices: index 0 is the CPU device (cpu0), index 1 + k the k-th CUDA device it uses
 * (cudaN, N its CUDA ordinal). A model is served on the devices in its mask
 * (MB_DEVICE_BIT(index)), with one state from load() per device, and the batcher routes
 * each batch to one of them (mb_batcher.h).
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
#include "mb_topo.h"

/** Most devices one service runs: the CPU device and up to MB_DEVICES_MAX - 1 GPUs. */
#define MB_DEVICES_MAX 17
/** A device's bit in a model's device mask. */
#define MB_DEVICE_BIT(index) (1u << (index))

/** A model as the service runs it. */
struct mb_model {
	uint32_t index;
	const struct mb_model_desc *desc;
	bool enabled;
	bool off_by_config; /**< disabled on purpose (enabled: false), not by a failure */
	char disabled_reason[MB_PROTO_REASON_MAX];
	/* settings in effect; these four change live (SIGHUP), so other threads load them
	 * atomically, once per decision */
	_Atomic uint32_t max_batch;
	_Atomic uint32_t max_delay_us;
	_Atomic uint32_t queue_limit;
	_Atomic uint32_t default_timeout_ms;
	uint32_t max_batch_start, queue_limit_start; /* the live values' ceilings */
	uint32_t base_units;
	double item_units_per_second;
	/**
	 * The watchdog: a batch whose run() takes longer than this is presumed hung (0: never).
	 * Then the model is disabled: @c hung is set (after @c hung_reason), and its requests
	 * are answered UNAVAILABLE with that reason until the daemon restarts.
	 */
	uint32_t run_timeout_ms;
	atomic_bool hung;
	char hung_reason[MB_PROTO_REASON_MAX];
	/* where it is served: load() succeeded on these devices (unload() is owed on each) */
	uint32_t devices;	      /**< mask of MB_DEVICE_BIT(device index) */
	void *states[MB_DEVICES_MAX]; /**< desc->load()'s state, by device index */
	uint64_t capacity;	      /**< the most units one of its devices has */
	int numa_node;		      /**< where its queue lives (MB_NUMA_ANY: anywhere) */
	struct mb_plugin *plugin;     /**< the plugin that serves it, or NULL (built-in) */
	/* stands in for a plugin that failed to load: its name only, so requests for it are
	 * answered UNAVAILABLE with the reason rather than UNKNOWN_MODEL */
	struct mb_model_desc failed_desc;
	char failed_name[MB_PROTO_MODEL_LEN + 1];
	/* circuit breakers, indexed by device index (NULL: none; workers then run everything);
	 * only those of devices in the mask are initialised */
	struct mb_breaker *breakers;
	/* front door -> batcher */
	struct mb_ring *queue;
	atomic_uint queued; /**< accepted, not yet in a batch (front door adds, batcher takes) */
	/* metrics */
	struct mb_metric *m_batch_size;
	struct mb_metric *m_closed[MB_CLOSE_COUNT]; /**< batches closed, by reason (batcher) */
};

/** Units one item costs on @p model (ceil of item_units_per_second x media seconds). */
uint32_t mb_model_item_cost(const struct mb_model *model, const struct mb_request_hdr *hdr);

/**
 * True when @p model has breakers and the breaker of every device that serves it is open
 * (its requests are then answered UNAVAILABLE at once). Any thread.
 */
bool mb_model_unavailable(const struct mb_model *model);

/** A batch: requests of one model, admitted (or waiting to be) onto one device. */
struct mb_batch {
	struct mb_model *model;
	struct mb_device *device; /**< the device whose pool it came from, and where it runs */
	uint32_t n;
	uint64_t units; /**< base + item costs: what the ticket asks for / holds */
	struct mb_sem_ticket ticket;
	uint64_t formed_ns;
	uint8_t close_reason;	    /**< enum mb_close_reason */
	TAILQ_ENTRY(mb_batch) link; /**< the batcher's list of batches awaiting admission */
	struct mb_request *items[]; /**< capacity: the device's batch_capacity */
};

TAILQ_HEAD(mb_batch_list, mb_batch);

struct mb_device_opts {
	int index;		 /**< the response's device field, 0..MB_DEVICES_MAX-1 */
	bool gpu;		 /**< a CUDA device (false: the CPU device) */
	int cuda;		 /**< with gpu: its CUDA ordinal */
	const char *name;	 /**< "cpu0", "cuda1": metrics label, logs; copied */
	uint64_t units;		 /**< capacity */
	uint32_t batch_capacity; /**< largest batch (max of the models' max_batch) */
	uint32_t n_batches;	 /**< batch objects in the pool */
	int numa_node;		 /**< its memory and workers (MB_NUMA_ANY: anywhere) */
};

struct mb_device {
	int index;
	int cuda; /**< CUDA ordinal, -1 on the CPU device */
	int numa_node;
	uint64_t capacity; /**< units */
	char name[16];
	struct mb_sem *units;
	struct mb_ring *run;  /**< admitted batches (batcher -> workers) */
	struct mb_ring *free; /**< batch objects not in use */
	uint32_t batch_capacity;
	uint32_t n_batches;
	void *batch_mem;
	atomic_bool producer_done; /**< the batcher will push no more batches */
};

/** Create a device (needs EAL: its rings). Returns 0, -EINVAL or -ENOMEM. Any index may be
 * created more than once in a process (ring names are made unique). */
int mb_device_create(const struct mb_device_opts *opts, struct mb_device **out);

/** Free a device; every batch must be back in its pool. NULL accepted. */
void mb_device_destroy(struct mb_device **dev);

/** A free batch object, or NULL if all are in use. Any thread. */
struct mb_batch *mb_device_batch_get(struct mb_device *dev);

/** Return a batch object. Any thread. */
void mb_device_batch_put(struct mb_device *dev, struct mb_batch *b);

struct mb_worker_opts {
	struct mb_device *device;
	/* where the thread runs: bound to the device's NUMA node when both are known (may be
	 * NULL: not bound) */
	const struct mb_topo *topo;
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
 * Thread body: bind to the device's NUMA node; on a CUDA device make it the thread's current
 * device and create the thread's stream (handed to run() as batch->stream); set up each
 * served model's per-worker scratch; then run batches until the device's producer is done
 * and its run queue is empty. Returns 0, or the first set-up error: a model whose
 * worker_init failed, or every model when the CUDA device could not be attached, has its
 * batches on this worker answered MODEL_ERROR with the reason (the worker keeps draining).
 */
int mb_worker_run(struct mb_worker *w);

/** Batches run, and items answered, by this worker so far. Any thread. */
uint64_t mb_worker_batches(const struct mb_worker *w);

/**
 * The watchdog's check of one worker; one caller at a time (any thread). If the batch this
 * worker is running has been inside its model's run() longer than the model's
 * run_timeout_ms, the worker is abandoned: its thread is left in run(); each of the batch's
 * requests is answered MODEL_ERROR with the reason (in @p why too) and pushed to the egress,
 * ZeroMQ ones marked MB_REQ_PARKED (sent, but kept with their payload, which run() may still
 * read); the batch keeps its device units. Should run() ever return, that thread hands the
 * parked requests back (MB_REQ_RECLAIM_TAG), releases the units and returns from
 * mb_worker_run(). Returns the model of the abandoned batch, or NULL when nothing was
 * abandoned.
 */
struct mb_model *mb_worker_abandon_if_hung(struct mb_worker *w, uint64_t now_ns, char *why,
					   size_t why_len);

/** True once mb_worker_abandon_if_hung() abandoned this worker. Any thread. */
bool mb_worker_abandoned(const struct mb_worker *w);

/**
 * Push @p req to @p results, retrying while the ring is full (it is sized for every request
 * in flight, so that would be a sizing bug: logged once). Any producer thread.
 */
void mb_results_push(struct mb_ring *results, struct mb_request *req);

#endif /* MB_DEVICE_H */
