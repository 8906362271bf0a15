/*
 * scrape.c: HTTP GET of /metrics and a Prometheus text reader (mb_scrape.h).
 *
 * The GET is HTTP/1.0, so the server closes the connection after the body and the reader
 * reads to EOF; every wait is a poll() against one deadline. The reader matches a metric
 * name at the start of a line followed by '{' or ' ', so `x_sum` never matches `x`.
 *
 * Owns only what it returns (the body). Reentrant.
 */
#include "mb_scrape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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

int
mb_scrape_sum(const char *text, const char *name, double *sum)
{
	size_t n = strlen(name);
	int found = 0;

	*sum = 0;
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');

		if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '{')) {
			const char *v = p + n;
			char *end;
			double x;

			if (*v == '{') {
				v = strchr(v, '}');
				if (v == NULL || (eol != NULL && v > eol))
					goto next;
				v++;
			}
			x = strtod(v, &end);
			if (end != v) {
				*sum += x;
				found++;
			}
		}
	next:
		p = eol ? eol + 1 : NULL;
	}
	return found;
}
