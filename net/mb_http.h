/**
 * @file
 * The HTTP endpoint for operators: /metrics (Prometheus text), /healthz (the process is up)
 * and /readyz (it is ready for work: models loaded, sockets bound, not draining); and, after
 * KServe's Open Inference Protocol (v2), model metadata and readiness in JSON when
 * @c models is set: /v2/models (the list), /v2/models/{name} (its metadata) and
 * /v2/models/{name}/ready (200 ready, 503 not, with the reason; 404 for a model not served).
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
 * - optional TLS (@c tls_cert and @c tls_key, PEM files read at start), TLS 1.2 and 1.3
 *   only (GnuTLS's NORMAL priorities less the older versions);
 * - optional bearer token (@c token_file) for /metrics and the model metadata (/v2/models,
 *   /v2/models/{name}: limits, devices, weights' paths, failure reasons): without
 *   `Authorization: Bearer <token>` they are 401 with `WWW-Authenticate: Bearer`; the probes
 *   stay open (/healthz, /readyz, /v2/health/live, /v2/health/ready and
 *   /v2/models/{name}/ready: balancers and orchestrators read them without a secret).
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

/**
 * The /v2/models answers (see the file comment): @p name NULL for the list; else the model's
 * metadata, or its readiness when @p ready. Set *@p body (malloc'd, JSON; the caller frees it
 * with free()), *@p len and *@p status (200; 503 not ready; 404 no such model, the body then
 * lists those served when @p may_list: false for a readiness probe without the bearer token
 * that guards the metadata). Returns 0, or -ENOMEM. Called on the HTTP thread: it may read
 * only what other threads do not change, or change atomically. @p name is borrowed for the
 * call.
 */
typedef int (*mb_http_models_fn)(void *ctx, const char *name, bool ready, bool may_list,
				 char **body, size_t *len, int *status);

/** Longest model name in a /v2 path (the protocol's is 16). */
#define MB_HTTP_MODEL_NAME_MAX 64

/** Defaults of the limits below (a field left 0 takes these). */
#define MB_HTTP_MAX_CONNECTIONS 512
#define MB_HTTP_MAX_CONNECTIONS_PER_IP 32
#define MB_HTTP_TIMEOUT_MS 15000

struct mb_http_opts {
	const char *hostport;	    /**< "127.0.0.1:7402" (see mb_config_parse_hostport()) */
	struct mb_metrics *metrics; /**< borrowed, must outlive the endpoint */
	mb_http_ready_fn ready;
	/** /healthz and /v2/health/live: 503 with @c why while it returns false (NULL: always
	 *  live while the endpoint answers). Same signature and thread as @c ready. */
	mb_http_ready_fn live;
	mb_http_models_fn models; /**< NULL: no /v2 paths (404) */
	void *ctx;		  /**< for @c ready and @c models */
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

/**
 * What mb_http_start() checks of @p opts' files, without listening or starting a thread
 * (--check): the TLS pair given whole or not at all, each file readable and of the right
 * form, the pair set up by libmicrohttpd and GnuTLS as the start sets it up (a key that is
 * not the certificate's is refused with the same message), the token not empty. Only the
 * file fields of @p opts are read. Returns 0, or -errno with the same reason mb_http_start()
 * would give. What is read is wiped before it returns.
 */
int mb_http_check_files(const struct mb_http_opts *opts, char *err, size_t err_len);

/** Stop serving (joins the thread, closes every connection) and free; NULL accepted. */
void mb_http_stop(struct mb_http **http);

/** The port actually bound. */
unsigned int mb_http_port(const struct mb_http *http);

#endif /* MB_HTTP_H */
