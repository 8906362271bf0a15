/*
 * scrape.c: GET of /metrics and a Prometheus text reader (mb_scrape.h).
 *
 * The GET is one mb_http_client (net/mb_http_client.h, libcurl) per scrape, made with the
 * process's token and CA file (mb_scrape_set_auth()) and destroyed after it: a scrape is
 * four times a second at most, and a client of its own keeps the scraper thread and main
 * apart. The reader matches a metric name at the start of a line followed by '{' or ' ', so
 * `x_sum` never matches `x`, and parses the label set (quoted values with \\, \" and \n
 * escapes) to filter on label=value pairs. A histogram is read as its cumulative buckets by
 * "le", added up over the matching label sets (which must share one layout, as every label
 * set of one daemon histogram does); the quantile estimate follows Prometheus'
 * bucketQuantile (promql/quantile.go).
 *
 * Owns only what it returns (the body) and the two paths of mb_scrape_set_auth(), written
 * before any thread scrapes and only read after. Reentrant.
 */
#include "mb_scrape.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_http_client.h"

#define MAX_BODY (8u << 20)

/* mb_scrape_set_auth()'s files; "" for none */
static char g_token_file[PATH_MAX], g_cacert[PATH_MAX];

int
mb_scrape_set_auth(const char *token_file, const char *cacert, char *err, size_t err_len)
{
	char *token = NULL;
	struct stat st;
	int rc, fd;

	g_token_file[0] = g_cacert[0] = '\0';
	if ((token_file != NULL && strlen(token_file) >= sizeof(g_token_file)) ||
	    (cacert != NULL && strlen(cacert) >= sizeof(g_cacert))) {
		snprintf(err, err_len, "%s: the path is too long",
			 cacert != NULL && strlen(cacert) >= sizeof(g_cacert)
				 ? "--metrics-cacert"
				 : "--metrics-token-file");
		return -ENAMETOOLONG;
	}
	if (token_file != NULL) {
		rc = mb_http_token_read(token_file, "--metrics-token-file", &token, err, err_len);
		if (rc < 0)
			return rc;
		mb_http_token_free(&token);
	}
	if (cacert != NULL) {
		fd = open(cacert, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, err_len, "--metrics-cacert '%s': cannot read it: %s", cacert,
				 strerror(-rc));
			return rc;
		}
		rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -EINVAL;
		close(fd);
		if (rc < 0) {
			snprintf(err, err_len, "--metrics-cacert '%s': not a regular file", cacert);
			return rc;
		}
	}
	if (mb_http_client_global_init() < 0) {
		snprintf(err, err_len, "libcurl's setup failed (out of memory)");
		return -ENOMEM;
	}
	snprintf(g_token_file, sizeof(g_token_file), "%s", token_file ? token_file : "");
	snprintf(g_cacert, sizeof(g_cacert), "%s", cacert ? cacert : "");
	return 0;
}

int
mb_scrape_fetch(const char *endpoint, const char *path, int timeout_ms, char **body, char *err,
		size_t err_len)
{
	struct mb_http_client_opts o;
	struct mb_http_client *c;
	char scratch[512];
	int rc;

	*body = NULL;
	if (err == NULL || err_len == 0) {
		err = scratch;
		err_len = sizeof(scratch);
	}
	mb_http_client_opts_init(&o);
	o.endpoint = endpoint;
	o.token_file = g_token_file[0] ? g_token_file : NULL;
	o.cacert = g_cacert[0] ? g_cacert : NULL;
	o.timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	o.max_body = MAX_BODY;
	o.endpoint_flag = "--metrics";
	rc = mb_http_client_create(&o, &c, err, err_len);
	if (rc < 0)
		return rc;
	rc = mb_http_client_get(c, path, body, NULL, err, err_len);
	mb_http_client_destroy(&c);
	return rc;
}

int
mb_scrape_get(const char *endpoint, const char *path, int timeout_ms, char **body)
{
	return mb_scrape_fetch(endpoint, path, timeout_ms, body, NULL, 0);
}

/* ---- the Prometheus text reader ---- */

#define LABEL_VALUE_MAX 256

/* Pairs in @labels (name, value, ..., NULL): 0..MB_SCRAPE_LABELS_MAX, or -EINVAL. */
static int
count_pairs(const char *const *labels)
{
	int n = 0;

	if (labels == NULL)
		return 0;
	while (labels[2 * n] != NULL) {
		if (labels[2 * n + 1] == NULL || n == MB_SCRAPE_LABELS_MAX)
			return -EINVAL;
		n++;
	}
	return n;
}

struct sample {
	double value;
	bool match;  /* the line carries every wanted pair */
	bool has_le; /* and an "le" label, copied into le */
	char le[48];
};

static const char *
line_end(const char *p)
{
	const char *e = strchr(p, '\n');

	return e ? e : p + strlen(p);
}

/*
 * Whether the line [p, eol) is a sample of @name: "name value" or "name{labels} value", the
 * labels `label="escaped value"` separated by commas (a trailing comma allowed). On true,
 * *s holds the value, whether the @n_pairs pairs of @labels are all there, and "le".
 * Comments, other metrics and malformed lines give false.
 */
static bool
parse_sample(const char *p, const char *eol, const char *name, size_t n, const char *const *labels,
	     int n_pairs, struct sample *s)
{
	unsigned int found = 0;
	char *end;

	if (strncmp(p, name, n) != 0 || (p[n] != ' ' && p[n] != '{'))
		return false;
	p += n;
	s->has_le = false;
	if (*p == '{') {
		p++;
		for (;;) {
			char v[LABEL_VALUE_MAX];
			const char *ln;
			size_t ll, vl = 0;
			bool too_long = false;

			while (p < eol && (*p == ' ' || *p == ','))
				p++;
			if (p >= eol)
				return false;
			if (*p == '}') {
				p++;
				break;
			}
			for (ln = p; p < eol && (isalnum((unsigned char)*p) || *p == '_'); p++)
				;
			ll = (size_t)(p - ln);
			while (p < eol && *p == ' ')
				p++;
			if (ll == 0 || p >= eol || *p++ != '=')
				return false;
			while (p < eol && *p == ' ')
				p++;
			if (p >= eol || *p++ != '"')
				return false;
			for (;;) {
				char c;

				if (p >= eol)
					return false;
				c = *p++;
				if (c == '"')
					break;
				if (c == '\\') {
					if (p >= eol)
						return false;
					c = *p++;
					if (c == 'n')
						c = '\n';
				}
				if (vl + 1 < sizeof(v))
					v[vl++] = c;
				else
					too_long = true; /* equals no wanted value */
			}
			v[vl] = '\0';
			if (too_long)
				continue;
			for (int i = 0; i < n_pairs; i++)
				if (strlen(labels[2 * i]) == ll &&
				    strncmp(labels[2 * i], ln, ll) == 0 &&
				    strcmp(labels[2 * i + 1], v) == 0)
					found |= 1u << i;
			if (ll == 2 && strncmp(ln, "le", 2) == 0 && vl < sizeof(s->le)) {
				memcpy(s->le, v, vl + 1);
				s->has_le = true;
			}
		}
	}
	s->match = found == (1u << n_pairs) - 1;
	s->value = strtod(p, &end);
	return end != p && end <= eol;
}

int
mb_scrape_sum_labels(const char *text, const char *name, const char *const *labels, double *sum)
{
	int n_pairs = count_pairs(labels), found = 0;
	size_t n = strlen(name);

	*sum = 0;
	if (n_pairs < 0)
		return n_pairs;
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = line_end(p);
		struct sample s;

		if (parse_sample(p, eol, name, n, labels, n_pairs, &s) && s.match) {
			*sum += s.value;
			found++;
		}
		p = *eol ? eol + 1 : eol;
	}
	return found;
}

int
mb_scrape_sum(const char *text, const char *name, double *sum)
{
	return mb_scrape_sum_labels(text, name, NULL, sum);
}

int
mb_scrape_hist(const char *text, const char *name, const char *const *labels,
	       struct mb_scrape_hist *h)
{
	char bucket[256], sum[256], count[256];
	int n_pairs = count_pairs(labels), per_le[MB_SCRAPE_BUCKETS_MAX] = {0};
	size_t nb, ns, nc;

	memset(h, 0, sizeof(*h));
	if (n_pairs < 0)
		return n_pairs;
	if (snprintf(bucket, sizeof(bucket), "%s_bucket", name) >= (int)sizeof(bucket))
		return -EINVAL;
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	nb = strlen(bucket);
	ns = strlen(sum);
	nc = strlen(count);
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = line_end(p);
		struct sample s;

		if (parse_sample(p, eol, bucket, nb, labels, n_pairs, &s)) {
			char *end;
			double le;
			int i;

			if (!s.match)
				goto next;
			le = s.has_le ? strtod(s.le, &end) : NAN;
			if (!s.has_le || end == s.le || *end != '\0' || isnan(le))
				return -EPROTO;
			for (i = 0; i < h->n && h->le[i] < le; i++)
				;
			if (i == h->n || h->le[i] != le) {
				if (h->n == MB_SCRAPE_BUCKETS_MAX)
					return -ENOBUFS;
				memmove(&h->le[i + 1], &h->le[i],
					(size_t)(h->n - i) * sizeof(h->le[0]));
				memmove(&h->cum[i + 1], &h->cum[i],
					(size_t)(h->n - i) * sizeof(h->cum[0]));
				memmove(&per_le[i + 1], &per_le[i],
					(size_t)(h->n - i) * sizeof(int));
				h->le[i] = le;
				h->cum[i] = 0;
				per_le[i] = 0;
				h->n++;
			}
			h->cum[i] += s.value;
			per_le[i]++;
		} else if (parse_sample(p, eol, sum, ns, labels, n_pairs, &s)) {
			if (s.match)
				h->sum += s.value;
		} else if (parse_sample(p, eol, count, nc, labels, n_pairs, &s)) {
			if (s.match) {
				h->count += s.value;
				h->series++;
			}
		}
	next:
		p = *eol ? eol + 1 : eol;
	}
	for (int i = 0; i < h->n; i++)
		if (per_le[i] != h->series)
			return -EPROTO; /* a bound some label sets lack, or buckets without _count
					 */
	return h->series;
}

int
mb_scrape_hist_delta(const struct mb_scrape_hist *end, const struct mb_scrape_hist *start,
		     struct mb_scrape_hist *d)
{
	struct mb_scrape_hist out = *end;

	if (start->series > 0 || start->n > 0) {
		if (start->n != end->n)
			return -EPROTO;
		for (int i = 0; i < end->n; i++) {
			if (start->le[i] != end->le[i])
				return -EPROTO;
			out.cum[i] -= start->cum[i];
			if (out.cum[i] < 0)
				return -ERANGE;
		}
		out.sum -= start->sum;
		out.count -= start->count;
		if (out.count < 0)
			return -ERANGE;
	}
	*d = out;
	return 0;
}

double
mb_scrape_hist_quantile(const struct mb_scrape_hist *h, double q)
{
	double cum[MB_SCRAPE_BUCKETS_MAX], top = 0, rank, lo, in, below;
	int last = h->n - 1, b;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	if (h->n < 2 || !(isinf(h->le[last]) && h->le[last] > 0))
		return NAN;
	for (int i = 0; i <= last; i++) {
		top = h->cum[i] > top ? h->cum[i] : top; /* monotonic, as Prometheus makes it */
		cum[i] = top;
	}
	if (!(cum[last] > 0))
		return NAN;
	rank = q * cum[last];
	for (b = 0; b < last && cum[b] < rank; b++)
		;
	if (b == last)
		return h->le[last - 1]; /* in the +Inf bucket: the highest finite bound */
	if (b == 0 && h->le[0] <= 0)
		return h->le[0];
	lo = 0;
	below = 0;
	if (b > 0) {
		lo = h->le[b - 1];
		below = cum[b - 1];
	}
	in = cum[b] - below;
	rank -= below;
	return in > 0 ? lo + (h->le[b] - lo) * (rank / in) : lo;
}
