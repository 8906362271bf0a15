/**
 * @file
 * The service: every piece of the request path put together, and the front door's policy
 * (routing, model checks, rate limits, queue limits, deadlines) in one place.
 *
 *   front door (ZeroMQ) --submit--> model queue --> batcher --> device run queue --> workers
 *        ^                                                                            |
 *        +------------------------------ results ring <------------------------------+
 *
 * service_create() builds everything on the main thread (EAL must be up) and binds the
 * sockets; the daemon then starts the polled threads (reactors) and the compute workers
 * with the *_thread() bodies below, marks itself ready, and on a signal calls service_drain(),
 * later perhaps service_abort(), and joins the threads (the front door last returns once every
 * accepted request is answered).
 */
#ifndef MB_SERVICE_H
#define MB_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_config.h"

struct mb_service;

/**
 * Build the pipeline from @p cfg (borrowed for the service's life). Returns 0; or -errno with
 * a message for the user in @p err (config names no such model, endpoint in use, ...).
 */
int service_create(const struct mb_config *cfg, struct mb_service **out, char *err, size_t err_len);

/** Free everything; threads must have been joined. NULL accepted. */
void service_destroy(struct mb_service **svc);

/** Check that @p cfg's model entries name models of this build; message in @p err. */
int service_check_models(const struct mb_config *cfg, char *err, size_t err_len);

/**
 * For --check (@p running NULL) and a reload (@p running: the service): load every model that
 * @p cfg enables as the daemon would on the CPU (its plugin, its weights file), then unload
 * it; at a reload, skip the models @p running serves from the same weights path and plugin
 * (it loaded them at its start), so a reload that changes neither loads nothing. Returns 0,
 * or -EINVAL with each model that failed and why in @p err (which the daemon would start
 * with that model disabled).
 */
int service_check_load(const struct mb_config *cfg, const struct mb_service *running, char *err,
		       size_t err_len);

/**
 * The security in force under @p cfg, checked as a start would (the server's key read,
 * every client key file of the allow-list read; with @p http_files and the HTTP endpoint on,
 * its TLS pair and token file read and checked too, as --check and the daemon's start want):
 * a line for --check and the start-up log in @p buf. Returns 0, or -errno with the reason in
 * @p buf (-ENOMEM, or a file that is missing, unreadable, insecure or malformed: a
 * configuration error).
 */
int service_check_security(const struct mb_config *cfg, bool http_files, char *buf, size_t len);

/**
 * Whether the HTTP endpoint (service.metrics) is exposed: bound to an address that is not
 * loopback ("*" and 0.0.0.0 included) without a bearer token (http.token_file) or without
 * TLS (http.tls_cert, http.tls_key). Returns 1 with what is exposed and the keys that fix it
 * in @p buf (one line, for a WARNING at --check and at start), else 0 with @p buf empty.
 */
int service_check_http_exposure(const struct mb_config *cfg, char *buf, size_t len);

/**
 * Model keys the file sets where they do nothing: precision on a model that is not a built-in
 * network, weights on a built-in model that reads none, max_windows on a model that takes no
 * windows. Returns how many, with each named ("models[0] (identity): precision applies to
 * the built-in networks (whisper, videomae, clap) only; ignored; ...") in @p buf (one line,
 * for a WARNING at --check and at start), else 0 with @p buf empty.
 */
int service_check_model_keys(const struct mb_config *cfg, char *buf, size_t len);

/**
 * For --check: the devices this configuration would serve on here (devices.cpu,
 * devices.cuda against the GPUs found), described in @p buf. Returns 0, or 1 with the
 * reason in @p buf when on this host the start would stop (devices.cuda.mode required
 * without a usable GPU, a devices.cuda.gpus entry that does not exist: exit 1) or start with
 * every model disabled (devices.cpu.serve never and no GPU in use): this host's state, not
 * an error of the file, which can be checked on another machine than the one it is for.
 */
int service_check_devices(const struct mb_config *cfg, char *buf, size_t len);

/**
 * For --check: what the start certainly takes from the DPDK heap (request objects, the
 * tenants' rate-limit tables, the UDP mbufs: a lower bound, described in @p buf). Returns
 * -ENOMEM when that is more than eal.memory_mb (without eal.args), else 0.
 */
int service_check_heap(const struct mb_config *cfg, char *buf, size_t len);

/**
 * For --check: the placement this configuration would get on this machine (see
 * mb_placement.h), described in @p buf. Returns 0 or -errno (described too).
 */
int service_check_placement(const struct mb_config *cfg, char *buf, size_t len);

/**
 * The polled threads (reactors, mb_reactor.h), as the placement made them: the front door
 * with egress, the batcher and the UDP rx queues run as pollers on them. The daemon starts
 * one thread per reactor with service_reactor_thread(service_reactor_arg(svc, i)); each
 * returns when its pollers are done (the drain is over). The front door's reactor is the
 * one that returns last in a drain: the daemon waits for it.
 */
uint32_t service_reactors(const struct mb_service *svc);
void *service_reactor_arg(struct mb_service *svc, uint32_t i);
/** Reactor @p i's thread name ("mb-poll0", "mb-rx1"; at most 15 characters). */
void service_reactor_name(const struct mb_service *svc, uint32_t i, char *buf, size_t len);
uint32_t service_frontdoor_reactor(const struct mb_service *svc);
void *service_reactor_thread(void *reactor_slot);

/** Thread body of a compute worker (arg from service_worker_arg()). */
void *service_worker_thread(void *worker_slot);

/** Workers the service built, and the argument for worker @p i's thread. */
uint32_t service_workers(const struct mb_service *svc);

/**
 * The watchdog, from the main thread's loop: a worker whose batch has run past its model's
 * run_timeout_ms is abandoned (mb_worker_abandon_if_hung()), the model disabled, and a
 * replacement worker created in a new slot at the end. Returns how many slots were added:
 * the caller starts their threads (service_workers() counts them).
 */
uint32_t service_watch(struct mb_service *svc);

/** True when worker slot @p i was abandoned in a hung run(): do not wait for its thread. */
bool service_worker_left(const struct mb_service *svc, uint32_t i);
void *service_worker_arg(struct mb_service *svc, uint32_t i);
/** Worker @p i's thread name ("mb-cpu0-w0", "mb-cuda1-w0"; at most 15 characters). */
void service_worker_name(const struct mb_service *svc, uint32_t i, char *buf, size_t len);

/** UDP rx queues (0 without udp.ports); each is a poller on a reactor. */
uint32_t service_udp_queues(const struct mb_service *svc);

/** Mark ready (after every thread started) or not. */
void service_set_ready(struct mb_service *svc, bool ready);

/**
 * The main loop's tick (every turn of it, at least every 100 ms): note which polled
 * threads have run a round since the last tick, and say whether the service is live: false,
 * with the reason in @p why, when a polled thread (not finished) or the main loop itself
 * has not turned for service.liveness_ms. /healthz says the same (503 "not live: ...").
 * Main thread.
 */
bool service_tick(struct mb_service *svc, uint64_t now, char *why, size_t len);

/** Begin the drain: refuse new work, flush, finish what is queued. Idempotent. */
void service_drain(struct mb_service *svc);

/** Stop hard: answer everything not yet running CANCELLED. Idempotent. */
void service_abort(struct mb_service *svc);

/** Requests accepted and not yet answered. */
uint32_t service_inflight(const struct mb_service *svc);

/**
 * Apply a reloaded configuration @p cfg (loaded and checked by the caller) to the running
 * service: the tenants' rate limits and each model's max_batch, max_delay_us, queue_limit
 * and default_timeout_ms. All or nothing: max_batch and queue_limit may not exceed the
 * values the daemon started with. Returns 0 with what was applied in @p msg, or -errno with
 * the reason (nothing applied). Main thread; counted in mediabatch_config_reloads_total.
 */
int service_reload(struct mb_service *svc, const struct mb_config *cfg, char *msg, size_t len);

/** Count a reload that failed before service_reload() (the file did not load). */
void service_reload_failed(struct mb_service *svc);

/** One line for the start-up log: endpoints, models, device. */
void service_describe(const struct mb_service *svc, char *buf, size_t len);

#endif /* MB_SERVICE_H */
