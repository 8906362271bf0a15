/**
 * @file
 * Admission: the checks a request passes before it may enter its model's queue.
 *
 * Both ingest paths (the ZeroMQ front door and each UDP rx queue) ask the same question of
 * every decoded request, in this order, and the first check that fails answers it:
 *
 * - model: one of the served models, by name (UNKNOWN_MODEL, naming those served);
 * - the model is enabled, not disabled by the watchdog (hung), and not refused by the
 *   circuit breakers of every device that serves it (UNAVAILABLE, with the reason);
 * - media: one the model accepts, then the model's own check() (BAD_REQUEST);
 * - device units: base_units + the item's cost fit the model's largest device (TOO_LARGE);
 * - queue_limit: fewer than queue_limit requests of the model wait (OVERLOADED);
 * - tenant rate: a token from the caller thread's own rate limiter (OVERLOADED).
 *
 * On OK the request has its model (req->model), its deadline (arrival + its timeout_ms, or
 * the model's default_timeout_ms) and its cost_units, and it counts against its model's
 * queue_limit (struct mb_model.queued) until the batcher takes it; a caller that then fails
 * to enqueue it gives the count back with mb_admission_undo(). Every request that reaches a
 * check is counted once in mediabatch_requests_total{model,transport} (the "_unknown" row
 * for a model not served) and marked req->counted. The reasons name the field or limit
 * (docs/protocol.md); tests and docs match on them.
 *
 * Hot path: any number of threads at once, no alloc, no locks. After create, everything
 * here is read-only; a check touches only the model's atomics (queued, the live settings,
 * hung, its breakers' state), the caller's rate limiter and the counters.
 */
#ifndef MB_ADMISSION_H
#define MB_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "mb_device.h"
#include "mb_metrics.h"
#include "mb_model_rt.h"
#include "mb_ratelimit.h"
#include "mb_request.h"

/** Transports with a column of their own in the request counters (enum mb_transport). */
#define MB_ADMISSION_TRANSPORTS 2
/** Longest list of served models, with its terminating NUL. */
#define MB_ADMISSION_SERVED_MAX 256

struct mb_admission_opts {
	/** Borrowed for the admission's life; models[i]->index must be i. */
	struct mb_model **models;
	uint32_t n_models;
	/**
	 * Devices by device index, NULL where there is none (0..n_devices-1; the array is
	 * copied, the devices borrowed): a model's mask names them, reasons name them.
	 */
	struct mb_device **devices;
	uint32_t n_devices; /**< <= MB_DEVICES_MAX */
	/** The served models ("identity, logmel") named by UNKNOWN_MODEL; copied, or NULL. */
	const char *served;
	/** The breakers' settings, named in the UNAVAILABLE reason of an open breaker. */
	uint32_t breaker_failures, breaker_cooldown_ms;
	/**
	 * mediabatch_requests_total series by [model index][enum mb_transport], n_models + 1
	 * rows, the last one "_unknown"; the pointers are copied, the series borrowed (they
	 * live as long as their registry). NULL: nothing is counted.
	 */
	struct mb_metric *(*requests)[MB_ADMISSION_TRANSPORTS];
	/**
	 * mediabatch_rate_limited_total series by model index (n_models of them): requests
	 * answered OVERLOADED because their tenant was over its rate limit. Copied pointers,
	 * borrowed series; NULL: not counted.
	 */
	struct mb_metric **rate_limited;
	int numa_node; /**< where the admission's tables live (MB_NUMA_ANY: anywhere) */
};

struct mb_admission;

/** Defaults: no models, no devices, nothing served, no counters, any NUMA node. */
void mb_admission_opts_init(struct mb_admission_opts *opts);

/**
 * Create an admission over @p opts's models and devices (setup, one thread). Returns 0 and
 * sets @p out (free with mb_admission_destroy()); -EINVAL for a missing model or
 * descriptor, a model whose index is not its place, more than MB_DEVICES_MAX devices or a
 * served list of MB_ADMISSION_SERVED_MAX bytes or more; -ENOMEM.
 */
int mb_admission_create(const struct mb_admission_opts *opts, struct mb_admission **out);

/** Free an admission (no check may be running) and set *@p a to NULL; NULL is accepted. */
void mb_admission_destroy(struct mb_admission **a);

/**
 * The model called @p name (NUL-terminated; borrowed for the call), or NULL: a scan of the
 * models' names in one small table. Any thread; no alloc, no locks.
 */
struct mb_model *mb_admission_find(const struct mb_admission *a, const char *name);

/**
 * Hot path: any thread (each with its own @p limits), no alloc, no locks.
 *
 * Decide whether @p req may be queued (see the file comment). @p limits is the calling
 * thread's rate limiter and @p req the caller's request, both borrowed for the call.
 * Returns MB_STATUS_OK, or the status of the first check that failed with its reason in
 * @p reason (@p len bytes, truncated to fit): UNKNOWN_MODEL, UNAVAILABLE, BAD_REQUEST,
 * TOO_LARGE or OVERLOADED. Sets req->counted, and req->model once the model is known; on OK
 * also req->deadline_ns and req->cost_units.
 */
enum mb_status mb_admission_check(struct mb_admission *a, struct mb_ratelimit *limits,
				  struct mb_request *req, char *reason, size_t len);

/**
 * Take back an admission that said OK for a request that was not queued after all: its
 * model's queued count drops by one and its deadline is cleared (no latency is recorded
 * for it). Any thread. A request that was not admitted is a bug (logged, abort()).
 */
void mb_admission_undo(struct mb_admission *a, struct mb_request *req);

#endif /* MB_ADMISSION_H */
