/*
 * scrape.c: HTTP GET of /metrics and a Prometheus text reader (mb_scrape.h).
 *
 * The GET is HTTP/1.0, so the server closes the connection after the body and the reader
 * reads to EOF; every wait is a poll() against one deadline. The reader matches a metric
 * name at the start of a line followed by '{' or ' ', so `x_sum` never matches `x`, and
 * parses the label set (quoted values with \\, \" and \n escapes) to filter on label=value
 * pairs. A histogram is read as its cumulative buckets by "le", added up over the matching
 * label sets (which must share one layout, as every label set of one daemon histogram
 * does); the quantile estimate follows Prometheus' bucketQuantile (promql/quantile.go).
 *
 * Owns only what it returns (the body). Reentrant.
 */
#include "mb_scrape.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (8u << 20)

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for @events on @fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		long left = ms_left(deadline);
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int
parse_hostport(const char *hostport, struct sockaddr_in *a)
{
	const char *colon = strrchr(hostport, ':');
	char host[64];
	char *end;
	long port;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int
mb_scrape_get(const char *hostport, const char *path, int timeout_ms, char **body)
{
	struct sockaddr_in a;
	struct timespec deadline;
	char req[256], *buf = NULL, *b;
	size_t got = 0, cap = 0;
	int fd, rc, status = 0;

	*body = NULL;
	rc = parse_hostport(hostport, &a);
	if (rc < 0)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		rc = wait_fd(fd, POLLOUT, &deadline);
		if (rc < 0)
			goto out;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			rc = -err;
			goto out;
		}
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
		 hostport);
	for (size_t sent = 0, n = strlen(req); sent < n;) {
		ssize_t w;

		rc = wait_fd(fd, POLLOUT, &deadline);
		if (rc < 0)
			goto out;
		w = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (w > 0)
			sent += (size_t)w;
	}
	for (;;) {
		ssize_t r;

		if (got + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nbuf;

			if (ncap > MAX_BODY + 4096 + 1)
				ncap = MAX_BODY + 4096 + 1;
			if (got + 1 >= ncap)
				break; /* cut at the limit */
			nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		rc = wait_fd(fd, POLLIN, &deadline);
		if (rc < 0)
			goto out;
		r = recv(fd, buf + got, cap - got - 1, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		got += (size_t)r;
	}
	if (buf == NULL || (buf[got] = '\0', sscanf(buf, "HTTP/1.%*d %d", &status) != 1)) {
		rc = -EPROTO;
		goto out;
	}
	b = strstr(buf, "\r\n\r\n");
	b = b ? b + 4 : buf + got;
	memmove(buf, b, strlen(b) + 1);
	*body = buf;
	buf = NULL;
	rc = status;
out:
	free(buf);
	close(fd);
	return rc;
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
