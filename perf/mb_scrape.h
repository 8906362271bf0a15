/**
 * @file
 * Reading mediabatchd's /metrics: a GET over http or https, with a bearer token when the
 * daemon wants one (net/mb_http_client.h, libcurl), and readers for the Prometheus text
 * format: the sum of one metric's samples (over all its label sets, or over those that carry
 * given labels), a histogram's cumulative buckets by "le", the difference of two scrapes of
 * one histogram, and a quantile estimated from its buckets the way Prometheus'
 * histogram_quantile() does.
 *
 * Threads: mb_scrape_set_auth() from main before any thread scrapes; every other function is
 * reentrant, and a scrape blocks its caller for at most the timeout.
 */
#ifndef MB_SCRAPE_H
#define MB_SCRAPE_H

#include <stddef.h>

/**
 * The token file and the CA file of every later scrape of this process (mediabatch-perf's
 * --metrics-token-file and --metrics-cacert; copied). NULL: no token; the system's CAs. The
 * token file is read at each scrape (so a rotated token is picked up) and once here, to
 * check it. Returns 0, or -errno with a message naming the option and the file in @p err (a
 * missing or unreadable file, an empty or malformed token, a path too long). Also does
 * libcurl's global setup. Not thread-safe: call it before any thread scrapes.
 */
int mb_scrape_set_auth(const char *token_file, const char *cacert, char *err, size_t err_len);

/**
 * GET @p path from @p endpoint (HOST:PORT, http://HOST:PORT, https://HOST:PORT or
 * [IPV6]:PORT, as mb_http_endpoint_parse() reads it), with mb_scrape_set_auth()'s token and
 * CA file, waiting at most @p timeout_ms for everything (connection and TLS included).
 * On success returns the HTTP status and stores a malloc'd, NUL-terminated body in
 * *@p body (the caller frees it). Otherwise *@p body is NULL and the return is -EINVAL for a
 * bad @p endpoint, -EACCES for a 401 (no token, or not the daemon's), -EFBIG for a body over
 * 8 MiB, -ECONNREFUSED, -ETIMEDOUT, -EPROTO (TLS failed, or no HTTP answer), or another
 * -errno of mb_http_client_get(); its message, which names the URL and the option that
 * helps, in @p err (NULL: not wanted).
 */
int mb_scrape_fetch(const char *endpoint, const char *path, int timeout_ms, char **body, char *err,
		    size_t err_len);

/** mb_scrape_fetch() without the message. */
int mb_scrape_get(const char *endpoint, const char *path, int timeout_ms, char **body);

/**
 * Sum of every sample of metric @p name in Prometheus text @p text: lines "name value" and
 * "name{labels} value" (not "name_suffix ..."). Returns the number of samples found (0 if
 * none, *@p sum then 0).
 */
int mb_scrape_sum(const char *text, const char *name, double *sum);

/** Most label=value pairs one call of mb_scrape_sum_labels() or mb_scrape_hist() filters on. */
#define MB_SCRAPE_LABELS_MAX 8

/**
 * Like mb_scrape_sum(), over the samples whose label set contains every pair of @p labels
 * (borrowed): a NULL-terminated array "name", "value", "name", "value", ..., NULL; NULL or
 * an empty array matches every sample. Values are compared unescaped (\\, \", \n), so
 * `model="a\"b"` matches the value a"b; the order of the labels on the line does not matter.
 * Returns the number of samples added up (0 if none, *@p sum then 0), or -EINVAL for more
 * than MB_SCRAPE_LABELS_MAX pairs or an odd array.
 */
int mb_scrape_sum_labels(const char *text, const char *name, const char *const *labels,
			 double *sum);

/** Most distinct "le" bounds mb_scrape_hist() collects (the daemon's histograms have 19). */
#define MB_SCRAPE_BUCKETS_MAX 64

/** A Prometheus histogram as scraped (or the difference of two scrapes). */
struct mb_scrape_hist {
	int n;				   /**< buckets, by le ascending */
	double le[MB_SCRAPE_BUCKETS_MAX];  /**< upper bounds; +Inf last in a whole histogram */
	double cum[MB_SCRAPE_BUCKETS_MAX]; /**< cumulative count of observations <= le[i] */
	double sum;			   /**< NAME_sum */
	double count;			   /**< NAME_count */
	int series;			   /**< label sets added up (NAME_count samples) */
};

/**
 * Collect histogram @p name (the base name: NAME_bucket, NAME_sum, NAME_count are read)
 * from @p text over the label sets that carry every pair of @p labels (as for
 * mb_scrape_sum_labels()), adding up the buckets of equal "le" across those label sets
 * (e.g. every model's, when @p labels pins only the stage). Fills *@p h (zeroed first).
 * Returns the number of label sets found (0: no such histogram), -EINVAL for bad
 * @p labels, -ENOBUFS for more than MB_SCRAPE_BUCKETS_MAX distinct bounds, -EPROTO when the
 * label sets do not share one bucket layout (a bound present in some and not in others) or a
 * bucket has no parsable "le".
 */
int mb_scrape_hist(const char *text, const char *name, const char *const *labels,
		   struct mb_scrape_hist *h);

/**
 * *@p d = *@p end - *@p start (bucket by bucket, sum and count): what was observed between
 * two scrapes. A @p start with no series (the histogram appeared in between) counts as
 * zero. Returns 0, -EPROTO when the bucket layouts differ, -ERANGE when a count went down
 * (the daemon restarted in between). @p d may be @p end.
 */
int mb_scrape_hist_delta(const struct mb_scrape_hist *end, const struct mb_scrape_hist *start,
			 struct mb_scrape_hist *d);

/**
 * Quantile @p q (0..1) of @p h estimated from its cumulative buckets as Prometheus'
 * histogram_quantile() does: find the bucket holding rank q x count(+Inf), interpolate
 * linearly inside it (the first bucket starts at 0 when its bound is positive); a rank in
 * the +Inf bucket gives the highest finite bound. Buckets are made monotonic first.
 * NAN when there is no +Inf bucket, fewer than two buckets, or no observation.
 */
double mb_scrape_hist_quantile(const struct mb_scrape_hist *h, double q);

#endif /* MB_SCRAPE_H */
