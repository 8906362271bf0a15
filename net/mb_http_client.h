/**
 * @file
 * An HTTP and HTTPS GET client for the daemon's operator endpoint (service.metrics:
 * /metrics, /v2/models, ...), on libcurl's easy API. What the tools use to reach an endpoint
 * secured as docs/operating.md ("http:") says: https with http.tls_cert, a bearer token for
 * /metrics with http.token_file. `mediabatch models` and `send --audio` (app/mediabatch) and
 * mediabatch-perf's --metrics (perf/scrape.c) link it. Internal: not part of libmediabatch,
 * which stays free of libcurl.
 *
 * An endpoint is written HOST:PORT (plain HTTP), http://HOST:PORT, https://HOST:PORT or
 * [IPV6]:PORT (also after a scheme); HOST is an IPv4 address or a name. The endpoint is
 * reached directly, never through a proxy of the environment (http_proxy, https_proxy).
 * Failures come back as -errno with a text in the user's terms: which URL, what happened,
 * and which option helps (--metrics-cacert for an untrusted certificate,
 * --metrics-token-file for a 401).
 *
 * Threads: libcurl's process-wide setup (curl_global_init(), not thread-safe itself) is done
 * once, under pthread_once(), by mb_http_client_global_init(), which mb_http_client_create()
 * calls; a program that uses libcurl elsewhere too calls it from main before starting
 * threads. After that, clients may be created, used and destroyed in any thread; one client
 * is used by one thread at a time. Requests never raise signals (CURLOPT_NOSIGNAL). For a
 * HOST that is a name, libcurl resolves it on a short-lived thread of its own.
 */
#ifndef MB_HTTP_CLIENT_H
#define MB_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest HOST of an endpoint (a DNS name's limit). */
#define MB_HTTP_HOST_MAX 253
/** Longest token file (as the daemon's http.token_file). */
#define MB_HTTP_TOKEN_MAX 4096
/** Default bound on an answer's body. */
#define MB_HTTP_BODY_MAX (8u << 20)
/** Default timeout of one GET, connection and TLS handshake included. */
#define MB_HTTP_TIMEOUT_MS 5000

/** The forms mb_http_endpoint_parse() accepts, for usage texts and messages. */
#define MB_HTTP_ENDPOINT_FORMS "HOST:PORT, http://HOST:PORT, https://HOST:PORT or [IPV6]:PORT"

/** A parsed endpoint. */
struct mb_http_endpoint {
	bool tls;			 /**< https:// */
	bool ipv6;			 /**< host is an IPv6 address (written in brackets) */
	char host[MB_HTTP_HOST_MAX + 1]; /**< without brackets */
	uint16_t port;			 /**< 1..65535 */
};

/**
 * Parse @p s (borrowed) into *@p ep. Returns 0, or -EINVAL with a message in @p err that
 * names @p s, what is wrong with it and the accepted forms (MB_HTTP_ENDPOINT_FORMS).
 */
int mb_http_endpoint_parse(const char *s, struct mb_http_endpoint *ep, char *err, size_t err_len);

/** The base URL of @p ep in @p buf: "https://[::1]:7402" (cut to @p len). */
void mb_http_endpoint_url(const struct mb_http_endpoint *ep, char *buf, size_t len);

/**
 * Read a bearer token from @p path by the rules of the daemon's http.token_file: a regular
 * file of at most MB_HTTP_TOKEN_MAX bytes, trailing whitespace and newlines ignored, the rest
 * printable ASCII without spaces, not empty. @p what names the option in messages (e.g.
 * "--metrics-token-file"). Returns 0 with the token in *@p token (malloc'd, NUL-terminated;
 * the caller frees it with mb_http_token_free()), or -errno with a message naming @p what
 * and @p path in @p err (*@p token then NULL).
 */
int mb_http_token_read(const char *path, const char *what, char **token, char *err, size_t err_len);

/** Wipe and free a token of mb_http_token_read(); NULL is fine; *@p token becomes NULL. */
void mb_http_token_free(char **token);

/** How to reach an endpoint. The strings are borrowed for mb_http_client_create() only. */
struct mb_http_client_opts {
	/** HOST:PORT and the other forms of mb_http_endpoint_parse() */
	const char *endpoint;
	/** a file holding the bearer token sent with every GET; NULL: none */
	const char *token_file;
	/** https: trust the CA certificates (PEM) of this file, not the system's; NULL: the
	 * system's */
	const char *cacert;
	/** per GET, connection and TLS handshake included (default MB_HTTP_TIMEOUT_MS) */
	int timeout_ms;
	/** a longer body fails the GET (default MB_HTTP_BODY_MAX) */
	size_t max_body;
	/** the options that give endpoint, token_file and cacert, named in messages (default
	 * "--metrics-endpoint", "--metrics-token-file", "--metrics-cacert") */
	const char *endpoint_flag, *token_flag, *cacert_flag;
};

/** Fill @p o with the defaults (no endpoint, token or CA file). */
void mb_http_client_opts_init(struct mb_http_client_opts *o);

/**
 * libcurl's process-wide setup, once (pthread_once); later calls return the first's result.
 * Returns 0 or -ENOMEM.
 */
int mb_http_client_global_init(void);

struct mb_http_client;

/**
 * A client for the endpoint of @p o: parses it, reads the token file, checks that the CA
 * file can be read; connects at the first GET (later GETs reuse the connection when the
 * server keeps it open). Returns 0 with *@p out (free it with mb_http_client_destroy()), or
 * -errno with a message naming the option and the value in @p err: -EINVAL for a bad
 * endpoint or token file, the open() error of an unreadable file, -ENOMEM.
 */
int mb_http_client_create(const struct mb_http_client_opts *o, struct mb_http_client **out,
			  char *err, size_t err_len);

/** Close @p *c's connection, wipe its token, free it; NULL is fine; *@p c becomes NULL. */
void mb_http_client_destroy(struct mb_http_client **c);

/** The endpoint's base URL ("https://127.0.0.1:7402"), for messages; owned by @p c. */
const char *mb_http_client_url(const struct mb_http_client *c);

/**
 * GET @p path (borrowed; starts with '/') from the endpoint, with the token if any.
 * Returns the HTTP status (a 404 or a 503 too) and stores the body in *@p body (malloc'd,
 * NUL-terminated, the caller frees it) and its length in *@p len (@p len may be NULL).
 * Otherwise *@p body is NULL and the return is -errno, with a message in @p err that names
 * the URL:
 *  -EACCES       401: the endpoint wants a token (--metrics-token-file), or another one
 *  -ECONNREFUSED cannot connect (nothing listens there)
 *  -EHOSTUNREACH the host name does not resolve, or the network does not reach it
 *  -ETIMEDOUT    no complete answer within the timeout
 *  -EPROTO       TLS failed (handshake, an untrusted certificate: --metrics-cacert), or the
 *                answer was not HTTP (an https endpoint asked over http://)
 *  -EFBIG        the body is longer than max_body
 *  -EINVAL       a bad @p path, or a CA file with no certificate libcurl can use
 *  -ENOMEM, -EIO anything else libcurl reports (its message in @p err)
 */
int mb_http_client_get(struct mb_http_client *c, const char *path, char **body, size_t *len,
		       char *err, size_t err_len);

#endif /* MB_HTTP_CLIENT_H */
