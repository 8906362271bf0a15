/**
 * @file
 * The HTTP endpoint for operators: /metrics (Prometheus text), /healthz (the process is up)
 * and /readyz (it is ready for work: models loaded, sockets bound, not draining).
 *
 * Served by libmicrohttpd on its own internal thread, started by mb_http_start() (called
 * from the daemon's main). Only GET (and HEAD) on those three paths; anything else is 404
 * or 405. Rendering reads the metrics registry, which is safe from any thread.
 */
#ifndef MB_HTTP_H
#define MB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "mb_metrics.h"

/** Fill @p why (@p len bytes) and return false when not ready. Called on the HTTP thread. */
typedef bool (*mb_http_ready_fn)(void *ctx, char *why, size_t len);

struct mb_http_opts {
	const char *hostport;	    /**< "127.0.0.1:7402" (see mb_config_parse_hostport()) */
	struct mb_metrics *metrics; /**< borrowed */
	mb_http_ready_fn ready;
	void *ctx;
};

struct mb_http;

/**
 * Start serving. Returns 0; or -errno with the reason in @p err (bad address, port in
 * use: the message names the endpoint).
 */
int mb_http_start(const struct mb_http_opts *opts, struct mb_http **out, char *err, size_t err_len);

/** Stop serving and free; NULL accepted. */
void mb_http_stop(struct mb_http **http);

/** The port actually bound. */
unsigned int mb_http_port(const struct mb_http *http);

#endif /* MB_HTTP_H */
