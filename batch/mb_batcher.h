/**
 * @file
 * The batcher: turns each model's queue of requests into batches and gets them admitted
 * onto the device.
 *
 * One batcher thread serves every model (each model keeps its own queue, lanes and
 * settings); all model queues share one doorbell so the thread sleeps when there is nothing
 * to do. For each model:
 *
 * - requests arrive from the front door on the model's ring and wait in two lanes,
 *   PRIORITY first, then normal, each in arrival order;
 * - a batch goes out when max_batch items wait, or when the oldest has waited max_delay_us,
 *   or at once while draining;
 * - it is routed to one device of the model's mask (struct mb_model.devices): a device
 *   whose circuit breaker for the model is closed before one whose breaker is open; then
 *   one where the batch would be admitted at once (no ticket waiting, the first item's
 *   units free); then one on the model queue's NUMA node; then the most free units (less
 *   the units already waiting); then the lowest index. A device too small for the first
 *   item is never chosen;
 * - it takes up to max_batch items (priority first) as long as base_units + their costs
 *   fit that device;
 * - a batch then asks the device's semaphore for its units (FIFO-fair, non-blocking ticket)
 *   and goes to the run queue when granted; at most max_pending batches per model wait;
 * - an item past its deadline is answered TIMEOUT and never run; an item the client
 *   cancelled is answered CANCELLED; if it sits in a batch that waits for admission it
 *   leaves the batch and the batch asks for fewer units.
 *
 * Shutdown, through the cancellation tree: when @c drain is cancelled the batcher flushes
 * (every waiting item is batched at once) and returns once the front door has closed ingest
 * and nothing is left; when @c abort is cancelled it answers everything it holds CANCELLED
 * and returns as soon as ingest is closed. Either way it then marks every device's producer
 * done and wakes the workers.
 *
 * Threads: mb_batcher_run() is a thread body (the daemon starts the thread); everything
 * else is called by the thread that built the pipeline.
 */
#ifndef MB_BATCHER_H
#define MB_BATCHER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mb_cancel.h"
#include "mb_device.h"
#include "mb_doorbell.h"
#include "mb_idle.h"
#include "mb_model_rt.h"
#include "mb_reactor.h"
#include "mb_ring.h"

struct mb_batcher_opts {
	struct mb_model **models; /**< borrowed; each has its queue ring (consumer: us) */
	uint32_t n_models;
	struct mb_device **devices; /**< borrowed; a model's mask names them by their index */
	uint32_t n_devices;
	struct mb_ring *results;  /**< answered requests -> egress */
	struct mb_doorbell *bell; /**< the doorbell of every model queue; rung on news */
	struct mb_idle_opts idle;
	struct mb_cancel *drain;	  /**< cancelled: flush and finish */
	struct mb_cancel *abort;	  /**< cancelled: answer all CANCELLED and finish */
	const atomic_bool *ingest_closed; /**< the front door will queue nothing more */
	const atomic_uint *cancel_gen;	  /**< bumped when the front door flags a cancel */
	uint32_t max_pending;		  /**< batches per model awaiting admission, >= 1 */
	uint64_t sweep_ns;		  /**< how often queues are swept for expired items */
};

struct mb_batcher;

/** Defaults for the tunables: max_pending 2, sweep every 5 ms, sleep idle policy. */
void mb_batcher_opts_init(struct mb_batcher_opts *opts);

/** Create a batcher. Returns 0, -EINVAL (missing pieces) or -ENOMEM. */
int mb_batcher_create(const struct mb_batcher_opts *opts, struct mb_batcher **out);

/** Free a batcher after its thread returned. NULL accepted. */
void mb_batcher_destroy(struct mb_batcher **b);

/**
 * Poller (mb_reactor.h): one pass over every model at time @p now: intake, sweeps,
 * admission, batch forming. Returns the work done (0: nothing), or MB_POLLER_DONE once the
 * shutdown described above is over (the devices' producer is then marked done). Lowers
 * *@p wake_at (if not NULL) to when the next batch falls due or the next sweep is.
 * Called by one thread at a time.
 */
int mb_batcher_poll(struct mb_batcher *b, uint64_t now, uint64_t *wake_at);

/** Thread body (the batcher alone on a thread, with its idle policy on o.bell): polls until
 * done; returns 0 after the shutdown described above. */
int mb_batcher_run(struct mb_batcher *b);

/** The doorbell callback for the cancellation tree and the semaphore: wake the batcher. */
void mb_batcher_wake(void *bell);

#endif /* MB_BATCHER_H */
