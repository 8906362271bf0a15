/*
 * http_test.c (e2e): the operator HTTP endpoint (net/http.c) against hostile and careless
 * clients. 300 connections from one address trickling a header line a second, reconnecting
 * when cut: scrapes of /metrics from another address keep succeeding, and every trickler the
 * server took is cut at its deadline although it keeps sending. Per-address and total
 * connection limits refuse with a 503 that names the limit, and are counted. TLS with a
 * certificate made here with GnuTLS (plain HTTP to that port gets no answer; TLS 1.0 and 1.1
 * clients, GnuTLS's and `openssl s_client`'s, fail their handshake; a missing, invalid or
 * mismatched certificate or key stops the daemon with exit 2 and a message naming the file,
 * and --check refuses it first with the same message). The bearer token: 401 without it or
 * with a wrong one on /metrics and the model metadata, the probes open; a token file that is
 * empty or missing is exit 2. Our own tools against an endpoint with both: `mediabatch
 * models` over https with --metrics-cacert and --metrics-token-file (and without either, or
 * over plain http, a message that says what to give), mediabatch-perf's server-side figures
 * with --metrics https://..., --metrics-cacert and --metrics-token-file (and without the
 * token, a 401 said on stderr). --check warns of an endpoint off loopback without the token
 * or TLS (never bound here).
 *
 * Every loop is bounded in count and in time. Clients bind to 127.0.0.x to be another
 * source address (all of 127.0.0.0/8 is loopback on Linux).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "mb_e2e.h"
#include "mb_test.h"

static void
nap(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

/* A TCP connection from @p src (an address of 127.0.0.0/8) to 127.0.0.1:@p port, or -1. */
static int
connect_from(const char *src, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &a.sin_addr);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons((uint16_t)port);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read until EOF, an error or 5 s; NUL-terminated. Returns the bytes read. */
static size_t
read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	double deadline = mb_e2e_now() + 5;

	while (got < len - 1 && mb_e2e_now() < deadline) {
		ssize_t n = read(fd, buf + got, len - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

/*
 * GET @p path from @p src over plain HTTP/1.0 with an optional extra header line; the whole
 * response (status line, headers, body) in @p resp. Returns the status, or -1.
 */
static int
get_from(const char *src, int port, const char *path, const char *header, char *resp, size_t len)
{
	char req[512];
	int fd = connect_from(src, port), status = -1;

	resp[0] = '\0';
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s\r\n", path,
		 header ? header : "", header ? "\r\n" : "");
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		read_all(fd, resp, len);
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
	close(fd);
	return status;
}

static char g_resp[1 << 20];

/* ---- 300 trickling connections ---- */

#define SLOW_CONNS 300
#define SLOW_RUN_S 10.0
#define SLOW_TIMEOUT_S 3.0 /* http.timeout_ms below */
#define SCRAPES 10

struct slow {
	int fd;
	double opened, next_line, retry_at;
	int lines;
};

/* One slow connection has news (data or a close): 1 if it was refused with a 503, 0 if it
 * was closed without an answer (cut), -1 if nothing happened after all. */
static int
slow_event(struct slow *s)
{
	char buf[1024];
	ssize_t n = recv(s->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	if (n > 0) {
		buf[n] = '\0';
		return strncmp(buf, "HTTP/1.1 503", 12) == 0 ? 1 : 0;
	}
	return 0;
}

static void
test_slow_clients(void)
{
	static struct slow s[SLOW_CONNS];
	struct mb_daemon d;
	int refused = 0, cut = 0, early = 0, late = 0, scrapes_ok = 0, scrapes = 0;
	double min_life = 1e9, max_life = 0, worst_scrape = 0, next_scrape, end;
	struct pollfd pfd[SLOW_CONNS];
	int idx[SLOW_CONNS];
	double v;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "http:\n  timeout_ms: 3000\n", NULL), 0);
	for (int i = 0; i < SLOW_CONNS; i++) {
		s[i].fd = -1;
		s[i].retry_at = 0;
	}
	next_scrape = mb_e2e_now() + 0.5;
	end = mb_e2e_now() + SLOW_RUN_S;
	while (mb_e2e_now() < end) {
		double now = mb_e2e_now();
		int n = 0;

		for (int i = 0; i < SLOW_CONNS; i++) {
			struct slow *c = &s[i];

			if (c->fd < 0 && now >= c->retry_at) {
				static const char first[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";

				c->fd = connect_from("127.0.0.3", d.port_http);
				c->opened = now;
				c->next_line = now + 1.0;
				c->lines = 0;
				c->retry_at = now + 1.0;
				if (c->fd >= 0 &&
				    send(c->fd, first, strlen(first), MSG_NOSIGNAL) < 0) {
					close(c->fd);
					c->fd = -1;
				}
			}
			if (c->fd >= 0 && now >= c->next_line) {
				char line[64];
				int k = snprintf(line, sizeof(line), "X-Slow-%d: %d\r\n", i,
						 c->lines++);

				/* a failed send is a cut: the poll below sees it */
				(void)send(c->fd, line, (size_t)k, MSG_NOSIGNAL | MSG_DONTWAIT);
				c->next_line += 1.0;
			}
			if (c->fd >= 0) {
				pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
				idx[n++] = i;
			}
		}
		poll(pfd, (nfds_t)n, 50);
		now = mb_e2e_now();
		for (int k = 0; k < n; k++) {
			struct slow *c = &s[idx[k]];
			double life = now - c->opened;
			int ev;

			if (pfd[k].revents == 0 || (ev = slow_event(c)) < 0)
				continue;
			if (ev == 1) {
				refused++;
			} else {
				cut++;
				min_life = life < min_life ? life : min_life;
				max_life = life > max_life ? life : max_life;
				early += life < SLOW_TIMEOUT_S - 0.5;
				late += life > SLOW_TIMEOUT_S + 2.0;
			}
			close(c->fd);
			c->fd = -1;
			c->retry_at = now + 1.0;
		}
		if (now >= next_scrape && scrapes < SCRAPES) {
			double t0 = mb_e2e_now(), took;
			int st = get_from("127.0.0.1", d.port_http, "/metrics", NULL, g_resp,
					  sizeof(g_resp));

			took = mb_e2e_now() - t0;
			worst_scrape = took > worst_scrape ? took : worst_scrape;
			scrapes_ok += st == 200 && took < 2.0 &&
				      strstr(g_resp, "mediabatch_http_connections") != NULL;
			scrapes++;
			next_scrape += 0.9;
		}
	}
	for (int i = 0; i < SLOW_CONNS; i++)
		if (s[i].fd >= 0)
			close(s[i].fd);
	printf("\n  300 trickling connections for %.0f s: %d refused (503), %d cut after "
	       "%.2f .. %.2f s (timeout %.1f s); scrapes %d/%d ok, slowest %.3f s\n",
	       SLOW_RUN_S, refused, cut, min_life, max_life, SLOW_TIMEOUT_S, scrapes_ok, scrapes,
	       worst_scrape);
	CU_ASSERT_EQUAL(scrapes, SCRAPES);
	CU_ASSERT_EQUAL(scrapes_ok, SCRAPES);
	/* 32 per address (the default) were taken, the rest refused at once */
	CU_ASSERT(refused >= SLOW_CONNS - 32);
	/* each taken one was cut at its deadline, not before, not much after */
	CU_ASSERT(cut >= 32);
	CU_ASSERT_EQUAL(early, 0);
	CU_ASSERT_EQUAL(late, 0);

	CU_ASSERT_EQUAL(
		get_from("127.0.0.1", d.port_http, "/metrics", NULL, g_resp, sizeof(g_resp)), 200);
	v = mb_metric_value_of(g_resp, "mediabatch_http_refused_total{reason=\"timeout\"}");
	CU_ASSERT(v >= cut);
	v = mb_metric_value_of(g_resp, "mediabatch_http_refused_total{reason=\"per_ip_limit\"}");
	CU_ASSERT(v >= refused);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30.0), 0);
}

/* ---- connection limits ---- */

/* After the server had time to act: 1 if @p fd got a 503 naming @p limit, 0 if it is still
 * open with nothing to read, -1 otherwise. */
static int
refused_or_open(int fd, const char *limit)
{
	char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (strncmp(buf, "HTTP/1.1 503", 12) == 0 && strstr(buf, limit) != NULL)
		return 1;
	fprintf(stderr, "unexpected answer: %s\n", buf);
	return -1;
}

static void
test_connection_limits(void)
{
	struct mb_daemon d;
	int a[6], b[2], c, open_a = 0, refused_a = 0, status = -1;
	double deadline;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "http:\n  max_connections: 6\n"
					      "  max_connections_per_ip: 4\n",
					      NULL),
			      0);
	/* six idle connections from one address: four taken, two refused */
	for (int i = 0; i < 6; i++)
		a[i] = connect_from("127.0.0.4", d.port_http);
	nap(1.0);
	for (int i = 0; i < 6; i++) {
		int r = a[i] >= 0 ? refused_or_open(a[i], "http.max_connections_per_ip = 4") : -1;

		CU_ASSERT_EQUAL(r, i < 4 ? 0 : 1);
		open_a += r == 0;
		refused_a += r == 1;
	}
	CU_ASSERT_EQUAL(open_a, 4);
	CU_ASSERT_EQUAL(refused_a, 2);
	/* another address still gets in, up to the total of 6 */
	for (int i = 0; i < 2; i++)
		b[i] = connect_from("127.0.0.5", d.port_http);
	nap(0.5);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(b[i] >= 0 ? refused_or_open(b[i], "") : -1, 0);
	/* and now the total is reached, for anyone */
	c = connect_from("127.0.0.6", d.port_http);
	nap(0.5);
	CU_ASSERT_EQUAL(c >= 0 ? refused_or_open(c, "http.max_connections = 6") : -1, 1);
	CU_ASSERT_EQUAL(
		get_from("127.0.0.1", d.port_http, "/healthz", NULL, g_resp, sizeof(g_resp)), 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "http.max_connections = 6"));

	for (int i = 0; i < 6; i++)
		if (a[i] >= 0)
			close(a[i]);
	for (int i = 0; i < 2; i++)
		if (b[i] >= 0)
			close(b[i]);
	if (c >= 0)
		close(c);
	/* the server notices the closes at once: served again, and only this scrape is open
	 * (a close and a scrape seen in one pass are counted before the close is done) */
	deadline = mb_e2e_now() + 3;
	while (mb_e2e_now() < deadline) {
		status = get_from("127.0.0.1", d.port_http, "/metrics", NULL, g_resp,
				  sizeof(g_resp));
		if (status == 200 && mb_metric_value_of(g_resp, "mediabatch_http_connections") == 1)
			break;
		nap(0.05);
	}
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_EQUAL(mb_metric_value_of(
				g_resp, "mediabatch_http_refused_total{reason=\"per_ip_limit\"}"),
			2);
	CU_ASSERT(mb_metric_value_of(
			  g_resp, "mediabatch_http_refused_total{reason=\"connection_limit\"}") >=
		  2);
	CU_ASSERT_EQUAL(mb_metric_value_of(g_resp, "mediabatch_http_connections"), 1);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30.0), 0);
}

/* ---- bearer token ---- */

static const char *
temp_file(char *path, size_t len, const char *text, mode_t mode)
{
	int fd;

	snprintf(path, len, "/tmp/mb_http_test_XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fchmod(fd, mode) != 0) {
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

static void
test_token(void)
{
	char token[64], yaml[256];
	struct mb_daemon d;
	static const char *const wrong[] = {
		"Authorization: Bearer nope", "Authorization: Bearer s3cret-token-x", /* longer */
		"Authorization: Bearer s3cret-toke",				      /* a prefix */
		"Authorization: Basic czNjcmV0LXRva2Vu", /* another scheme */
	};

	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(token, sizeof(token), "s3cret-token\n", 0640));
	snprintf(yaml, sizeof(yaml), "http:\n  token_file: \"%s\"\n", token);
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "readable by group or others"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "a token of 12 characters is easily "
							 "guessed: use 32 or more"));

	CU_ASSERT_EQUAL(
		get_from("127.0.0.1", d.port_http, "/metrics", NULL, g_resp, sizeof(g_resp)), 401);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "WWW-Authenticate: Bearer"));
	CU_ASSERT_PTR_NULL(strstr(g_resp, "mediabatch_"));
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/metrics", wrong[i], g_resp,
					 sizeof(g_resp)),
				401);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "WWW-Authenticate: Bearer"));
	}
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/metrics",
				 "Authorization: Bearer s3cret-token", g_resp, sizeof(g_resp)),
			200);
	CU_ASSERT_EQUAL(mb_metric_value_of(
				g_resp, "mediabatch_http_refused_total{reason=\"unauthorized\"}"),
			5);
	/* the scheme is case-insensitive (RFC 9110) */
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/metrics",
				 "authorization: bearer s3cret-token", g_resp, sizeof(g_resp)),
			200);
	/* probes need no token */
	CU_ASSERT_EQUAL(
		get_from("127.0.0.1", d.port_http, "/healthz", NULL, g_resp, sizeof(g_resp)), 200);
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/readyz", NULL, g_resp, sizeof(g_resp)),
			200);
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/v2/health/ready", NULL, g_resp,
				 sizeof(g_resp)),
			200);
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/v2/models/identity/ready", NULL,
				 g_resp, sizeof(g_resp)),
			200);
	/* a probe of an unknown name: 404, but the models served are metadata, listed only
	 * with the token */
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/v2/models/nosuch/ready", NULL, g_resp,
				 sizeof(g_resp)),
			404);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "'nosuch' is not served here"));
	CU_ASSERT_PTR_NULL(strstr(g_resp, "identity"));
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/v2/models/nosuch/ready", wrong[0],
				 g_resp, sizeof(g_resp)),
			404);
	CU_ASSERT_PTR_NULL(strstr(g_resp, "identity"));
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/v2/models/nosuch/ready",
				 "Authorization: Bearer s3cret-token", g_resp, sizeof(g_resp)),
			404);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "\"identity\""));
	/* the model metadata (limits, devices, weights' paths) needs it, as /metrics: 401 in
	 * JSON without it or with a wrong one, 200 with it */
	for (int i = 0; i < 2; i++) {
		const char *path = i ? "/v2/models/identity" : "/v2/models";

		CU_ASSERT_EQUAL(
			get_from("127.0.0.1", d.port_http, path, NULL, g_resp, sizeof(g_resp)),
			401);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "WWW-Authenticate: Bearer"));
		CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "{\"error\": \"unauthorized: "));
		CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "http.token_file"));
		CU_ASSERT_PTR_NULL(strstr(g_resp, "\"identity\""));
		CU_ASSERT_EQUAL(
			get_from("127.0.0.1", d.port_http, path, wrong[0], g_resp, sizeof(g_resp)),
			401);
		CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, path,
					 "Authorization: Bearer s3cret-token", g_resp,
					 sizeof(g_resp)),
				200);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "\"identity\""));
	}
	CU_ASSERT_EQUAL(get_from("127.0.0.1", d.port_http, "/metrics",
				 "Authorization: Bearer s3cret-token", g_resp, sizeof(g_resp)),
			200);
	CU_ASSERT_EQUAL(mb_metric_value_of(
				g_resp, "mediabatch_http_refused_total{reason=\"unauthorized\"}"),
			9);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30.0), 0);
	unlink(token);
}

/* ---- a daemon of our own: the harness polls /readyz over plain HTTP ---- */

struct own {
	pid_t pid;
	int port;
	char ingest[64]; /* its ZeroMQ ROUTER */
	char config[64], log[64];
};

static const char *
own_log(const struct own *o)
{
	static char buf[65536];
	FILE *f = fopen(o->log, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Start mediabatchd with @p yaml (the harness's cpu-only devices added); do not wait. */
static int
own_spawn(struct own *o, const char *yaml)
{
	static const char cpu_only[] = "\ndevices:\n  cuda: {mode: \"off\"}\n";
	char ingest[64], publish[64], metrics[64];
	const char *bin = getenv("MB_DAEMON");
	int ports[3], fd, lfd;

	memset(o, 0, sizeof(*o));
	if (bin == NULL || mb_e2e_free_ports(ports, 3) < 0)
		return -1;
	o->port = ports[2];
	snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%d", ports[0]);
	snprintf(o->ingest, sizeof(o->ingest), "%s", ingest);
	snprintf(publish, sizeof(publish), "tcp://127.0.0.1:%d", ports[1]);
	snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", ports[2]);
	snprintf(o->config, sizeof(o->config), "/tmp/mb_http_cfg_XXXXXX");
	snprintf(o->log, sizeof(o->log), "/tmp/mb_http_log_XXXXXX");
	fd = mkstemp(o->config);
	lfd = mkstemp(o->log);
	if (fd < 0 || lfd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml) ||
	    write(fd, cpu_only, strlen(cpu_only)) != (ssize_t)strlen(cpu_only))
		return -1;
	close(fd);
	fflush(NULL);
	o->pid = fork();
	if (o->pid < 0)
		return -1;
	if (o->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execl(bin, bin, "--config", o->config, "--ingest", ingest, "--publish", publish,
		      "--metrics", metrics, (char *)NULL);
		_exit(127);
	}
	close(lfd);
	return 0;
}

/* Wait up to @p seconds for an exit; its status (128 + signal), or -1 after killing it. */
static int
own_wait(struct own *o, double seconds)
{
	double deadline = mb_e2e_now() + seconds;
	int status;

	while (o->pid > 0 && mb_e2e_now() < deadline) {
		if (waitpid(o->pid, &status, WNOHANG) == o->pid) {
			o->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		nap(0.02);
	}
	if (o->pid > 0) {
		fprintf(stderr, "mediabatchd did not exit in %.0f s; log:\n%s\n", seconds,
			own_log(o));
		kill(o->pid, SIGKILL);
		waitpid(o->pid, NULL, 0);
		o->pid = 0;
	}
	return -1;
}

static void
own_cleanup(struct own *o)
{
	unlink(o->config);
	unlink(o->log);
}

/* Start a daemon that must refuse to: its exit status, its log in @p log. */
static int
expect_refusal(const char *yaml, char *log, size_t len)
{
	struct own o;
	int rc;

	if (own_spawn(&o, yaml) < 0)
		return -1;
	rc = own_wait(&o, 30.0);
	snprintf(log, len, "%s", own_log(&o));
	own_cleanup(&o);
	/* refused cleanly: no sanitizer report (a leak on the way out) */
	CU_ASSERT_PTR_NULL(strstr(log, "Sanitizer"));
	return rc;
}

/* --check on @p yaml (plus the CPU device) must refuse it (exit 2) with @p reason and
 * @p path in its output, as the start does: it reads the HTTP endpoint's files too. */
static void
expect_check_refusal(const char *yaml, const char *path, const char *reason)
{
	char cfg[64], text[1024], out[4096];
	const char *args[] = {"--config", cfg, "--check", NULL};

	snprintf(text, sizeof(text), "%sdevices:\n  cuda: {mode: \"off\"}\n", yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(cfg, sizeof(cfg), text, 0600));
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(args, out, sizeof(out)), 2);
	if (strstr(out, reason) == NULL || strstr(out, path) == NULL)
		printf("\n    --check said: %s", out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, reason));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, path));
	unlink(cfg);
}

/* mediabatchd --check on @p yaml (plus the CPU device) and @p flags (NULL-terminated, may be
 * NULL); its output in @p out, its exit status returned. Nothing is bound. */
static int
check_with(const char *yaml, const char *const *flags, char *out, size_t len)
{
	char cfg[64], text[1024];
	const char *args[8] = {"--config", cfg, "--check"};
	int n = 3, rc;

	snprintf(text, sizeof(text), "%sdevices:\n  cuda: {mode: \"off\"}\n", yaml);
	if (temp_file(cfg, sizeof(cfg), text, 0600) == NULL)
		return -1;
	for (int i = 0; flags != NULL && flags[i] != NULL && n < 7; i++)
		args[n++] = flags[i];
	args[n] = NULL;
	rc = mb_e2e_daemon_cmd(args, out, len);
	unlink(cfg);
	return rc;
}

/* The lines of @p out that hold @p what. */
static int
lines_with(const char *out, const char *what)
{
	int n = 0;

	for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* An empty or missing token file stops the start with exit 2 (a configuration error), and
 * --check says so first, with the same message; with the endpoint off it is not read. */
static void
test_bad_token_file(void)
{
	static char log[65536];
	char empty[64], yaml[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(empty, sizeof(empty), " \n\n", 0600));
	snprintf(yaml, sizeof(yaml), "http:\n  token_file: \"%s\"\n", empty);
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, empty));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "empty"));
	expect_check_refusal(yaml, empty, "empty");
	unlink(empty);
	/* one that is not there: a configuration error too (exit 2), at the start as at --check */
	snprintf(yaml, sizeof(yaml), "http:\n  token_file: \"/nonexistent/token\"\n");
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "http.token_file '/nonexistent/token'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, strerror(ENOENT)));
	expect_check_refusal(yaml, "/nonexistent/token", strerror(ENOENT));
	/* with the endpoint off its files are not read, by the start nor by --check */
	{
		const char *off[] = {"--metrics", "off", NULL};

		CU_ASSERT_EQUAL(check_with(yaml, off, log, sizeof(log)), 0);
	}
}

/* ---- TLS ---- */

struct pem {
	char cert[4096], key[4096];
};

/* A self-signed ECDSA certificate for "localhost" and 127.0.0.1 and its key, in PEM. */
static int
make_cert(struct pem *p)
{
	static const unsigned char loopback[4] = {127, 0, 0, 1};
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
	unsigned char serial[8];
	time_t now = time(NULL);
	int rc = -1;

	for (size_t i = 0; i < sizeof(serial); i++)
		serial[i] = (unsigned char)((uint64_t)now >> (8 * i)) | (i == 0 ? 1 : 0);
	serial[7] &= 0x7f;
	if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9) <
		    0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
						 GNUTLS_FSAN_SET) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, loopback, 4,
						 GNUTLS_FSAN_APPEND) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c) < 0 ||
	    gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
					      &k) < 0)
		goto out;
	if (c.size >= sizeof(p->cert) || k.size >= sizeof(p->key))
		goto out;
	memcpy(p->cert, c.data, c.size);
	p->cert[c.size] = '\0';
	memcpy(p->key, k.data, k.size);
	p->key[k.size] = '\0';
	rc = 0;
out:
	gnutls_free(c.data);
	gnutls_free(k.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

/*
 * GET https://localhost:@p port@p path, trusting only @p ca (and checking the name
 * "localhost" against it). The response in @p resp; its status, or -1 (the reason in @p
 * resp).
 */
static int
tls_get_prio(int port, const char *path, const char *ca, const char *prio, char *resp, size_t len)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t ca_d = {(unsigned char *)ca, (unsigned int)strlen(ca)};
	gnutls_session_t s = NULL;
	int fd = connect_from("127.0.0.1", port), rc, status = -1;
	double deadline = mb_e2e_now() + 5;
	char req[256];
	size_t got = 0;

	resp[0] = '\0';
	if (fd < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_trust_mem(cred, &ca_d, GNUTLS_X509_FMT_PEM) != 1 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    (prio != NULL ? gnutls_priority_set_direct(s, prio, NULL)
			  : gnutls_set_default_priority(s)) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9) < 0) {
		snprintf(resp, len, "GnuTLS client setup failed");
		goto out;
	}
	gnutls_session_set_verify_cert(s, "localhost", 0);
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 5000);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc) && mb_e2e_now() < deadline);
	if (rc < 0) {
		snprintf(resp, len, "handshake: %s", gnutls_strerror(rc));
		goto out;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (gnutls_record_send(s, req, strlen(req)) != (ssize_t)strlen(req)) {
		snprintf(resp, len, "send failed");
		goto out;
	}
	while (got < len - 1 && mb_e2e_now() < deadline) {
		ssize_t n = gnutls_record_recv(s, resp + got, len - 1 - got);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			break; /* the end (with or without close_notify) */
		got += (size_t)n;
	}
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	close(fd);
	return status;
}

static int
tls_get(int port, const char *path, const char *ca, char *resp, size_t len)
{
	return tls_get_prio(port, path, ca, NULL, resp, len);
}

/*
 * `openssl s_client -connect 127.0.0.1:@p port -@p version -cipher @p ciphers` (with
 * @SECLEVEL=0, so that the client side allows TLS 1.0 and 1.1, and CBC), its input empty:
 * its exit status (0 after a handshake), -1 when it ran past 15 s, 127 when openssl is not
 * installed.
 */
static int
openssl_s_client_with(int port, const char *version, const char *ciphers)
{
	char connect[32], flag[16];
	double deadline = mb_e2e_now() + 15;
	int st;
	pid_t pid;

	snprintf(connect, sizeof(connect), "127.0.0.1:%d", port);
	snprintf(flag, sizeof(flag), "-%s", version);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("openssl", "openssl", "s_client", "-connect", connect, flag, "-cipher",
		       ciphers, (char *)NULL);
		_exit(127);
	}
	while (mb_e2e_now() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nap(0.02);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* As openssl_s_client_with(), with every cipher offered. */
static int
openssl_s_client(int port, const char *version)
{
	return openssl_s_client_with(port, version, "DEFAULT:@SECLEVEL=0");
}

/*
 * Start a daemon of our own with @p yaml, its endpoint https with the certificate @p ca (PEM),
 * and wait until /readyz answers 200 over TLS. 0, or -1 after printing why and its log
 * (nothing left running).
 */
static int
own_start_tls(struct own *o, const char *yaml, const char *ca)
{
	int status = -1;
	bool spawned = false;

	/* a port taken between finding it free and binding it: try again (as the harness) */
	for (int tries = 0; tries < 5 && !spawned; tries++) {
		double deadline = mb_e2e_now() + 30; /* sanitizer builds start slowly */

		if (own_spawn(o, yaml) < 0)
			return -1;
		while (mb_e2e_now() < deadline && status != 200) {
			int wst;

			if (waitpid(o->pid, &wst, WNOHANG) == o->pid) {
				o->pid = 0;
				break;
			}
			status = tls_get(o->port, "/readyz", ca, g_resp, sizeof(g_resp));
			if (status != 200)
				nap(0.05);
		}
		spawned = o->pid > 0 || strstr(own_log(o), "Address already in use") == NULL;
		if (!spawned)
			own_cleanup(o);
	}
	if (status != 200) {
		fprintf(stderr, "no TLS /readyz (%s); log:\n%s\n", g_resp, own_log(o));
		if (o->pid > 0)
			kill(o->pid, SIGKILL);
		own_wait(o, 30.0);
		own_cleanup(o);
		return -1;
	}
	return 0;
}

static void
test_tls(void)
{
	static struct pem p, other;
	char cert[64], key[64], other_key[64], junk[64], yaml[512];
	static char log[65536];
	struct own o;

	CU_ASSERT_EQUAL_FATAL(make_cert(&p), 0);
	CU_ASSERT_EQUAL_FATAL(make_cert(&other), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(cert, sizeof(cert), p.cert, 0644));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(key, sizeof(key), p.key, 0600));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(other_key, sizeof(other_key), other.key, 0600));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(junk, sizeof(junk), "not a certificate\n", 0644));

	snprintf(yaml, sizeof(yaml), "http:\n  tls_cert: \"%s\"\n  tls_key: \"%s\"\n", cert, key);
	CU_ASSERT_EQUAL_FATAL(own_start_tls(&o, yaml, p.cert), 0);

	CU_ASSERT_EQUAL(tls_get(o.port, "/metrics", p.cert, g_resp, sizeof(g_resp)), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_resp, "mediabatch_http_connections"));
	/* another certificate as the only trust anchor: the handshake fails */
	CU_ASSERT_EQUAL(tls_get(o.port, "/healthz", other.cert, g_resp, sizeof(g_resp)), -1);
	/* plain HTTP to the TLS port gets no HTTP answer */
	CU_ASSERT_EQUAL(get_from("127.0.0.1", o.port, "/healthz", NULL, g_resp, sizeof(g_resp)),
			-1);
	CU_ASSERT_EQUAL(tls_get(o.port, "/healthz", p.cert, g_resp, sizeof(g_resp)), 200);
	/* TLS 1.2 and 1.3 only: a client that offers nothing newer than 1.1 fails its
	 * handshake (GnuTLS's defaults would take 1.0 and 1.1) */
	{
		static const char *const vers[] = {"TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"};

		for (int i = 0; i < 4; i++) {
			char prio[64];
			int st;

			snprintf(prio, sizeof(prio), "NORMAL:-VERS-ALL:+VERS-%s", vers[i]);
			st = tls_get_prio(o.port, "/healthz", p.cert, prio, g_resp, sizeof(g_resp));
			if (st != (i < 2 ? -1 : 200))
				printf("\n    a %s client: %d %s", vers[i], st, g_resp);
			CU_ASSERT_EQUAL(st, i < 2 ? -1 : 200);
		}
	}
	/* the same with OpenSSL's client, where installed */
	if (openssl_s_client(o.port, "tls1_2") == 127) {
		printf("\n  (no openssl: s_client not tried)");
	} else {
		CU_ASSERT_EQUAL(openssl_s_client(o.port, "tls1_2"), 0);
		CU_ASSERT_EQUAL(openssl_s_client(o.port, "tls1_1"), 1);
		CU_ASSERT_EQUAL(openssl_s_client(o.port, "tls1"), 1);
		/* TLS 1.2: forward secrecy and AEAD only (CBC with SHA-1 was taken) */
		CU_ASSERT_EQUAL(openssl_s_client_with(o.port, "tls1_2",
						      "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"),
				1);
		CU_ASSERT_EQUAL(
			openssl_s_client_with(o.port, "tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
			0);
	}
	kill(o.pid, SIGTERM);
	CU_ASSERT_EQUAL(own_wait(&o, 30.0), 0);
	own_cleanup(&o);

	/* a certificate or a key that is not there, one that is not PEM, a key of another
	 * pair: configuration errors, exit 2 at the start, and --check says so first */
	snprintf(yaml, sizeof(yaml),
		 "http:\n  tls_cert: \"/nonexistent/cert.pem\"\n  tls_key: \"%s\"\n", key);
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "http.tls_cert '/nonexistent/cert.pem'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, strerror(ENOENT)));
	expect_check_refusal(yaml, "http.tls_cert '/nonexistent/cert.pem'", strerror(ENOENT));

	snprintf(yaml, sizeof(yaml),
		 "http:\n  tls_cert: \"%s\"\n  tls_key: \"/nonexistent/key.pem\"\n", cert);
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "http.tls_key '/nonexistent/key.pem'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, strerror(ENOENT)));
	expect_check_refusal(yaml, "http.tls_key '/nonexistent/key.pem'", strerror(ENOENT));

	snprintf(yaml, sizeof(yaml), "http:\n  tls_cert: \"%s\"\n  tls_key: \"%s\"\n", junk, key);
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, junk));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "not a PEM certificate"));
	expect_check_refusal(yaml, junk, "not a PEM certificate");

	snprintf(yaml, sizeof(yaml), "http:\n  tls_cert: \"%s\"\n  tls_key: \"%s\"\n", cert,
		 other_key);
	CU_ASSERT_EQUAL(expect_refusal(yaml, log, sizeof(log)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, cert));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, other_key));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "TLS does not start"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "do not match"));
	printf("\n  mismatched key: %s",
	       strstr(log, "mediabatchd: ") ? strstr(log, "mediabatchd: ") : log);
	/* --check sets the pair up as the start does, and refuses it with the same words */
	expect_check_refusal(yaml, other_key, "TLS does not start");
	expect_check_refusal(yaml, cert, "The certificate and the given key do not match");

	unlink(cert);
	unlink(key);
	unlink(other_key);
	unlink(junk);
}

/* ---- exposure ---- */

/*
 * An HTTP endpoint off loopback ("*", 0.0.0.0 or an address) without the token or without
 * TLS: --check prints one WARNING line saying what is exposed and which keys fix it; none on
 * loopback, with both, or with the endpoint off. Only --check: nothing is bound.
 */
static void
test_exposure_warning(void)
{
	static struct pem p;
	static char out[16384];
	char cert[64], key[64], token[64], yaml[1024];
	const char *star[] = {"--metrics", "*:7402", NULL}, *off[] = {"--metrics", "off", NULL};
	static const char warn[] = "WARNING: the HTTP endpoint ";

	CU_ASSERT_EQUAL_FATAL(make_cert(&p), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(cert, sizeof(cert), p.cert, 0644));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(key, sizeof(key), p.key, 0600));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(token, sizeof(token), "exp0sed\n", 0600));

	/* neither token nor TLS, on every interface */
	CU_ASSERT_EQUAL(check_with("service:\n  metrics: \"*:7402\"\n", NULL, out, sizeof(out)), 0);
	if (strstr(out, warn) != NULL)
		printf("\n  %.*s\n", (int)strcspn(strstr(out, warn), "\n"), strstr(out, warn));
	CU_ASSERT_EQUAL(lines_with(out, warn), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "mediabatchd: WARNING: the HTTP endpoint *:7402 "
					   "(service.metrics) is not loopback and has neither a "
					   "bearer token nor TLS"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "/metrics and the models' metadata"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "set http.token_file, and http.tls_cert with "
					   "http.tls_key"));
	/* the flag counts as the key does */
	CU_ASSERT_EQUAL(check_with("", star, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 1);
	/* a token without TLS: it travels in clear */
	snprintf(yaml, sizeof(yaml), "service:\n  metrics: 0.0.0.0:7402\nhttp:\n  token_file: %s\n",
		 token);
	CU_ASSERT_EQUAL(check_with(yaml, NULL, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "0.0.0.0:7402 (service.metrics) is not loopback and "
					   "has no TLS: the bearer token of http.token_file "
					   "travels in clear"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "set http.tls_cert and http.tls_key"));
	/* TLS without a token: anyone reads it */
	snprintf(yaml, sizeof(yaml),
		 "service:\n  metrics: 10.1.2.3:7402\nhttp:\n  tls_cert: %s\n  tls_key: %s\n", cert,
		 key);
	CU_ASSERT_EQUAL(check_with(yaml, NULL, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "10.1.2.3:7402 (service.metrics) is not loopback and "
					   "has no bearer token"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "set http.token_file"));
	/* both: no warning; nor on loopback, nor with the endpoint off */
	snprintf(yaml, sizeof(yaml),
		 "service:\n  metrics: \"*:7402\"\nhttp:\n  tls_cert: %s\n  tls_key: %s\n"
		 "  token_file: %s\n",
		 cert, key, token);
	CU_ASSERT_EQUAL(check_with(yaml, NULL, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 0);
	CU_ASSERT_EQUAL(check_with("service:\n  metrics: 127.0.0.2:7402\n", NULL, out, sizeof(out)),
			0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 0);
	CU_ASSERT_EQUAL(check_with("service:\n  metrics: localhost:7402\n", NULL, out, sizeof(out)),
			0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 0);
	CU_ASSERT_EQUAL(check_with("service:\n  metrics: \"*:7402\"\n", off, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(lines_with(out, warn), 0);
	unlink(cert);
	unlink(key);
	unlink(token);
}

/* ---- our tools against a secured endpoint ---- */

/* Run mediabatch-perf (MB_PERF) with @p args (NULL-terminated); its stdout and stderr in
 * @p out. Its exit status, or -1. */
static int
run_perf(const char *const *args, char *out, size_t len)
{
	out[0] = '\0';
	if (getenv("MB_PERF") == NULL) {
		printf("\n    MB_PERF is not set (run through meson test)");
		return -1;
	}
	return mb_e2e_perf(args, out, len);
}

/* The file at @p path (at most @p len - 1 bytes), NUL-terminated. */
static const char *
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Whether the first "stages" of a mediabatch-perf JSON report (the first run's) is an object. */
static bool
json_has_stages(const char *json)
{
	const char *s = strstr(json, "\"stages\": ");

	return s != NULL && s[strlen("\"stages\": ")] == '{';
}

static void
test_tools_secured(void)
{
	static struct pem p;
	static char out[1 << 16], json_text[1 << 16];
	char cert[64], key[64], token[64], json[64], yaml[512], https[64], plain[64];
	struct own o;
	int fd;

	CU_ASSERT_EQUAL_FATAL(make_cert(&p), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(cert, sizeof(cert), p.cert, 0644));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(key, sizeof(key), p.key, 0600));
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp_file(token, sizeof(token), "t00ls-token\n", 0600));
	snprintf(json, sizeof(json), "/tmp/mb_http_json_XXXXXX");
	fd = mkstemp(json);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	snprintf(yaml, sizeof(yaml),
		 "http:\n  tls_cert: \"%s\"\n  tls_key: \"%s\"\n  token_file: \"%s\"\n", cert, key,
		 token);
	CU_ASSERT_EQUAL_FATAL(own_start_tls(&o, yaml, p.cert), 0);
	snprintf(https, sizeof(https), "https://127.0.0.1:%d", o.port);
	snprintf(plain, sizeof(plain), "127.0.0.1:%d", o.port);

	/* mediabatch models over https, trusting the daemon's (self-signed) certificate, with
	 * the token (the metadata needs it) */
	{
		const char *args[] = {"models", "--metrics-endpoint",	https, "--metrics-cacert",
				      cert,	"--metrics-token-file", token, NULL};

		CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "identity "));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "logmel "));
		CU_ASSERT_PTR_NULL(strstr(out, "(no metadata)"));
	}
	/* ... and without it: the 401, said with what to give */
	{
		const char *args[] = {
			"models", "--metrics-endpoint", https, "--metrics-cacert", cert, NULL};

		CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "401"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "--metrics-token-file"));
		CU_ASSERT_PTR_NULL(strstr(out, "identity "));
		printf("\n  models without the token: %s", out);
	}
	/* without --metrics-cacert: the certificate is not trusted, said with what to give */
	{
		const char *args[] = {"models", "--metrics-endpoint", https, NULL};

		CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "certificate"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "--metrics-cacert"));
		printf("\n  models without --metrics-cacert: %s", out);
	}
	/* plain HTTP to the https endpoint: no HTTP answer, and how to write it */
	{
		const char *args[] = {"models", "--metrics-endpoint", plain, NULL};

		CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "https://HOST:PORT"));
		printf("  models over http: %s", out);
	}
	/* a malformed endpoint is a usage error naming the forms */
	{
		const char *args[] = {"models", "--metrics-endpoint", "tcp://127.0.0.1:1", NULL};

		CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 2);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "https://HOST:PORT"));
	}

	/* mediabatch-perf: the server's stages from /metrics over https, with the token */
	{
		const char *args[] = {"--endpoint",
				      o.ingest,
				      "--metrics",
				      https,
				      "--metrics-cacert",
				      cert,
				      "--metrics-token-file",
				      token,
				      "--outstanding",
				      "4",
				      "--duration",
				      "1",
				      "--warmup",
				      "0",
				      "--drain",
				      "2",
				      "--json",
				      json,
				      "--quiet",
				      NULL};

		CU_ASSERT_EQUAL(run_perf(args, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "server time per request"));
		CU_ASSERT_PTR_NULL(strstr(out, "no /metrics"));
		CU_ASSERT_PTR_NULL(strstr(out, "--metrics:"));
		slurp(json, json_text, sizeof(json_text));
		CU_ASSERT_PTR_NOT_NULL(strstr(json_text, "\"metrics\": {"));
		CU_ASSERT(json_has_stages(json_text));
		if (!json_has_stages(json_text))
			printf("\n  perf with the token:\n%s\n%s", out, json_text);
	}
	/* without the token: the 401 is said at once; the report has no server-side figures */
	{
		const char *args[] = {
			"--endpoint",	 o.ingest, "--metrics",	 https, "--metrics-cacert", cert,
			"--outstanding", "4",	   "--duration", "1",	"--warmup",	    "0",
			"--drain",	 "2",	   "--json",	 json,	"--quiet",	    NULL};

		CU_ASSERT_EQUAL(run_perf(args, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "401"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "--metrics-token-file"));
		printf("\n  perf without the token: %.300s", out);
		slurp(json, json_text, sizeof(json_text));
		CU_ASSERT_PTR_NOT_NULL(strstr(json_text, "\"metrics\": null"));
		CU_ASSERT(!json_has_stages(json_text));
	}
	/* a token file that is not there: a usage error naming it, nothing run */
	{
		const char *args[] = {
			"--endpoint",	      o.ingest,	 "--metrics", https, "--metrics-token-file",
			"/nonexistent/token", "--quiet", NULL};

		CU_ASSERT_EQUAL(run_perf(args, out, sizeof(out)), 2);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "--metrics-token-file '/nonexistent/token'"));
	}

	kill(o.pid, SIGTERM);
	CU_ASSERT_EQUAL(own_wait(&o, 30.0), 0);
	own_cleanup(&o);
	unlink(cert);
	unlink(key);
	unlink(token);
	unlink(json);
}

static const struct mb_test_case cases[] = {
	{"300 trickling connections: scrapes go on, each cut at its deadline", test_slow_clients},
	{"per-address and total limits: 503 naming the limit, counted", test_connection_limits},
	{"bearer token: 401 without or wrong, 200 right, probes open", test_token},
	{"an empty or missing token file: exit 2 at the start and at --check", test_bad_token_file},
	{"TLS: 1.2 and 1.3 served, 1.0, 1.1 and plain HTTP not; a bad pair is exit 2, --check too",
	 test_tls},
	{"mediabatch models and mediabatch-perf over https with a token", test_tools_secured},
	{"--check warns of an HTTP endpoint off loopback without a token or TLS",
	 test_exposure_warning},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e http", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	signal(SIGPIPE, SIG_IGN);
	return mb_test_main("e2e_http", suites);
}
