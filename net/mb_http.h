/**
 * @file
 * The HTTP endpoint for operators: /metrics (Prometheus text), /healthz (the process is up)
 * and /readyz (it is ready for work: models loaded, sockets bound, not draining).
 *
 * Served by libmicrohttpd on a thread of this module's own, started by mb_http_start()
 * (called from the daemon's main) and joined by mb_http_stop(). Only GET (and HEAD) on those
 * three paths; anything else is 404 or 405. Rendering reads the metrics registry, which is
 * safe from any thread.
 *
 * Hardened for an endpoint that anyone on the network can reach:
 * - every connection has a deadline, @c timeout_ms after it was accepted, that no amount of
 *   trickled bytes extends; past it the server closes it (and a short idle timeout closes a
 *   silent one sooner);
 * - at most @c max_connections open at once, and @c max_connections_per_ip from one source
 *   address; a connection over either limit is answered 503 (plain HTTP; with TLS it is
 *   closed) and closed at once;
 * - optional TLS (@c tls_cert and @c tls_key, PEM files read at start);
 * - optional bearer token for /metrics (@c token_file): without `Authorization: Bearer
 *   <token>` it is 401 with `WWW-Authenticate: Bearer`; /healthz and /readyz stay open for
 *   probes.
 * Refusals are counted in mediabatch_http_refused_total{reason=...}: "unauthorized",
 * "timeout" (closed at its deadline), "connection_limit", "per_ip_limit". Open connections
 * are the gauge mediabatch_http_connections.
 */
#ifndef MB_HTTP_H
#define MB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_metrics.h"

/** Fill @p why (@p len bytes) and return false when not ready. Called on the HTTP thread. */
typedef bool (*mb_http_ready_fn)(void *ctx, char *why, size_t len);

/** Defaults of the limits below (a field left 0 takes these). */
#define MB_HTTP_MAX_CONNECTIONS 512
#define MB_HTTP_MAX_CONNECTIONS_PER_IP 32
#define MB_HTTP_TIMEOUT_MS 15000

struct mb_http_opts {
	const char *hostport;	    /**< "127.0.0.1:7402" (see mb_config_parse_hostport()) */
	struct mb_metrics *metrics; /**< borrowed, must outlive the endpoint */
	mb_http_ready_fn ready;
	void *ctx;
	/** PEM certificate (chain) file; NULL or "" for plain HTTP. Borrowed for the call: the
	 *  file is read by mb_http_start(). Needs @c tls_key too. */
	const char *tls_cert;
	const char *tls_key; /**< PEM private key file (unencrypted); borrowed for the call */
	/** File holding the bearer token for /metrics (trailing whitespace trimmed); NULL or ""
	 *  for none. Borrowed for the call: read by mb_http_start(). */
	const char *token_file;
	uint32_t max_connections;	 /**< open at once; 0: MB_HTTP_MAX_CONNECTIONS */
	uint32_t max_connections_per_ip; /**< from one address; 0: MB_HTTP_MAX_CONNECTIONS_PER_IP */
	uint32_t timeout_ms; /**< a connection's whole life from accept; 0: MB_HTTP_TIMEOUT_MS */
};

struct mb_http;

/**
 * Start serving. Returns 0; or -errno with the reason in @p err: a bad address, the port in
 * use (the message names the endpoint), a TLS or token file that cannot be read or is not
 * valid (the message names the file and the reason: -EINVAL for bad content, the open's
 * errno otherwise).
 */
int mb_http_start(const struct mb_http_opts *opts, struct mb_http **out, char *err, size_t err_len);

/** Stop serving (joins the thread, closes every connection) and free; NULL accepted. */
void mb_http_stop(struct mb_http **http);

/** The port actually bound. */
unsigned int mb_http_port(const struct mb_http *http);

#endif /* MB_HTTP_H */
