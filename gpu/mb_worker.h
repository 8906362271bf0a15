/**
 * @file
 * Workers: the threads that run a device's admitted batches.
 *
 * A worker (mb_worker_run(), a thread body started by the daemon) takes admitted batches
 * from its device's run queue (mb_device.h). Before starting a batch it answers items that
 * were cancelled or whose deadline passed (CANCELLED, TIMEOUT) and refunds their units; it
 * runs the rest with the model (mb_model_rt.h), answers each item, hands them to the egress
 * through the results ring (mb_results_push(), mb_request.h), and only then releases the
 * batch's units. An item's result is checked before it is answered OK (the rules are
 * include/mediabatch/model.h's): a malformed one is answered MODEL_ERROR with what was
 * wrong and never sent. Failed batches (with run()'s return code), failed items and refused
 * results are logged, at most 10 lines a minute per model on each worker, then a count.
 *
 * Ownership: a batch and its requests belong to whichever thread dequeued them.
 */
#ifndef MB_WORKER_H
#define MB_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_idle.h"

struct mb_cancel;
struct mb_device;
struct mb_metric;
struct mb_model;
struct mb_ring;
struct mb_topo;

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

#endif /* MB_WORKER_H */
