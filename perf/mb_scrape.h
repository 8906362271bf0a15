/**
 * @file
 * Reading mediabatchd's /metrics: a minimal HTTP/1.0 GET over a TCP socket (the daemon's
 * libmicrohttpd is a server library only) and a reader for the Prometheus text format that
 * adds up the samples of one metric over all its label sets.
 *
 * Threads: every function is reentrant; a scrape blocks its caller for at most the timeout.
 */
#ifndef MB_SCRAPE_H
#define MB_SCRAPE_H

#include <stddef.h>

/**
 * GET http://@p hostport@p path (hostport "HOST:PORT", HOST an IPv4 address or
 * "localhost"), waiting at most @p timeout_ms for connect, send and the whole answer.
 * On success returns the HTTP status and stores a malloc'd, NUL-terminated body in
 * *@p body (the caller frees it); answers longer than 8 MiB are cut there.
 * Returns -EINVAL for a bad @p hostport, -ETIMEDOUT, -EPROTO for a reply that is not HTTP,
 * or another -errno from the socket calls.
 */
int mb_scrape_get(const char *hostport, const char *path, int timeout_ms, char **body);

/**
 * Sum of every sample of metric @p name in Prometheus text @p text: lines "name value" and
 * "name{labels} value" (not "name_suffix ..."). Returns the number of samples found (0 if
 * none, *@p sum then 0).
 */
int mb_scrape_sum(const char *text, const char *name, double *sum);

#endif /* MB_SCRAPE_H */
