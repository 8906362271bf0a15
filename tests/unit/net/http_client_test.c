/*
 * http_client_test.c: the tools' HTTP(S) client (net/mb_http_client.h). Endpoints: every
 * accepted form, and each refusal naming the value and the forms. Token files by the
 * daemon's rules (trailing whitespace ignored, empty and non-printable refused, naming the
 * file). GETs against a stand-in server on 127.0.0.1 run by a thread here: the path and the
 * bearer token sent, a 404 passed through, a 401 said in terms of --metrics-token-file, a
 * body over the bound refused; and the failures a user meets: nothing listening, no answer
 * in time, an answer that is not HTTP, https to a plain server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_http_client.h"
#include "mb_test.h"

static const char *g_dir; /* mb_test_temp_dir() */
static char g_err[2048];

/* ---- endpoints ---- */

static void
expect_ok(const char *s, bool tls, const char *host, unsigned int port, const char *url)
{
	struct mb_http_endpoint ep;
	char u[300];

	g_err[0] = '\0';
	CU_ASSERT_EQUAL_FATAL(mb_http_endpoint_parse(s, &ep, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(ep.tls, tls);
	CU_ASSERT_STRING_EQUAL(ep.host, host);
	CU_ASSERT_EQUAL(ep.port, port);
	mb_http_endpoint_url(&ep, u, sizeof(u));
	CU_ASSERT_STRING_EQUAL(u, url);
}

static void
expect_bad(const char *s, const char *why)
{
	struct mb_http_endpoint ep;

	g_err[0] = '\0';
	CU_ASSERT_EQUAL(mb_http_endpoint_parse(s, &ep, g_err, sizeof(g_err)), -EINVAL);
	if (s[0] != '\0')
		CU_ASSERT_PTR_NOT_NULL(strstr(g_err, s));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, MB_HTTP_ENDPOINT_FORMS));
	if (why != NULL && strstr(g_err, why) == NULL) {
		printf("\n    '%s': '%s' lacks '%s'", s, g_err, why);
		CU_FAIL("the reason is not named");
	}
}

static void
test_endpoints(void)
{
	expect_ok("127.0.0.1:7402", false, "127.0.0.1", 7402, "http://127.0.0.1:7402");
	expect_ok("http://127.0.0.1:7402", false, "127.0.0.1", 7402, "http://127.0.0.1:7402");
	expect_ok("https://127.0.0.1:7402", true, "127.0.0.1", 7402, "https://127.0.0.1:7402");
	expect_ok("HTTPS://metrics.example-1.net:443", true, "metrics.example-1.net", 443,
		  "https://metrics.example-1.net:443");
	expect_ok("localhost:1", false, "localhost", 1, "http://localhost:1");
	expect_ok("[::1]:7402", false, "::1", 7402, "http://[::1]:7402");
	expect_ok("https://[fe80::1:2]:65535", true, "fe80::1:2", 65535,
		  "https://[fe80::1:2]:65535");
	expect_ok("http://127.0.0.1:7402/", false, "127.0.0.1", 7402, "http://127.0.0.1:7402");

	expect_bad("", "empty");
	expect_bad("nohost", "no :PORT");
	expect_bad("127.0.0.1", "no :PORT");
	expect_bad("127.0.0.1:", "is not a port number");
	expect_bad("127.0.0.1:0", "port 0 is not 1..65535");
	expect_bad("127.0.0.1:65536", "port 65536 is not 1..65535");
	expect_bad("127.0.0.1:-1", "is not a port number");
	expect_bad("127.0.0.1: 80", "is not a port number");
	expect_bad("127.0.0.1:80x", "is not a port number");
	expect_bad("http://127.0.0.1:7402/metrics", "no path");
	expect_bad("ftp://127.0.0.1:21", "neither http:// nor https://");
	expect_bad("tcp://127.0.0.1:7400", "neither http:// nor https://");
	expect_bad("::1:7402", "in brackets");
	expect_bad("[::1]7402", "no :PORT");
	expect_bad("[::1", "no ']'");
	expect_bad("[]:80", "no IPv6 address");
	expect_bad("[127.0.0.1]:80", "is not an IPv6 address");
	expect_bad(":7402", "no HOST");
	expect_bad("https://:7402", "no HOST");
	expect_bad("my host:80", "not an IPv4 address or a host name");
	expect_bad("user@host:80", "not an IPv4 address or a host name");
}

/* ---- token files ---- */

static const char *
file_with(const char *name, const char *text, size_t len)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

static void
expect_token(const char *text, const char *want)
{
	const char *path = file_with("tok", text, strlen(text));
	char *t = (char *)1;

	CU_ASSERT_EQUAL_FATAL(
		mb_http_token_read(path, "--metrics-token-file", &t, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(t, want);
	mb_http_token_free(&t);
	CU_ASSERT_PTR_NULL(t);
}

static void
expect_token_refused(const char *text, size_t len, int rc, const char *why)
{
	const char *path = file_with("bad", text, len);
	char *t = (char *)1;

	CU_ASSERT_EQUAL(mb_http_token_read(path, "--metrics-token-file", &t, g_err, sizeof(g_err)),
			rc);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--metrics-token-file"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, path));
	if (strstr(g_err, why) == NULL) {
		printf("\n    '%s' lacks '%s'", g_err, why);
		CU_FAIL("the reason is not named");
	}
}

static void
test_token_files(void)
{
	static char big[MB_HTTP_TOKEN_MAX + 2];
	char dir[512], *t = (char *)1;

	expect_token("s3cret-token\n", "s3cret-token");
	expect_token("s3cret-token", "s3cret-token");
	expect_token("tok~!#$%&'()*+,-./:;<=>?@[]^_`{|}\r\n\t \n\n",
		     "tok~!#$%&'()*+,-./:;<=>?@[]^_`{|}");
	expect_token("eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo\n",
		     "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo");

	expect_token_refused("", 0, -EINVAL, "empty");
	expect_token_refused(" \n\n", 3, -EINVAL, "empty");
	expect_token_refused("two words\n", 10, -EINVAL, "printable ASCII");
	expect_token_refused("tab\there", 8, -EINVAL, "offset 3");
	expect_token_refused("ctl\x01", 4, -EINVAL, "printable ASCII");
	expect_token_refused("caf\xc3\xa9", 5, -EINVAL, "printable ASCII");
	expect_token_refused("nul\0x", 5, -EINVAL, "printable ASCII");
	memset(big, 'a', sizeof(big) - 1);
	expect_token_refused(big, sizeof(big) - 1, -EINVAL, "more than the 4096");

	snprintf(dir, sizeof(dir), "%s/nosuch", g_dir);
	CU_ASSERT_EQUAL(mb_http_token_read(dir, "--metrics-token-file", &t, g_err, sizeof(g_err)),
			-ENOENT);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, dir));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, strerror(ENOENT)));
	CU_ASSERT_EQUAL(mb_http_token_read(g_dir, "--metrics-token-file", &t, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not a regular file"));
	/* a FIFO: refused at once, not a wait in open() for a writer (it hung) */
	snprintf(dir, sizeof(dir), "%s/fifo", g_dir);
	CU_ASSERT_EQUAL_FATAL(mkfifo(dir, 0600), 0);
	CU_ASSERT_EQUAL(mb_http_token_read(dir, "--metrics-token-file", &t, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not a regular file"));
	unlink(dir);
	mb_http_token_free(&t); /* NULL is fine */
}

/* ---- clients ---- */

static void
test_create_errors(void)
{
	struct mb_http_client_opts o;
	struct mb_http_client *c = (struct mb_http_client *)1;
	char missing[512];

	snprintf(missing, sizeof(missing), "%s/absent.pem", g_dir);
	mb_http_client_opts_init(&o);
	CU_ASSERT_EQUAL(o.timeout_ms, MB_HTTP_TIMEOUT_MS);
	CU_ASSERT_EQUAL(o.max_body, MB_HTTP_BODY_MAX);
	o.endpoint = "tcp://127.0.0.1:7400";
	o.endpoint_flag = "--metrics";
	CU_ASSERT_EQUAL(mb_http_client_create(&o, &c, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(strncmp(g_err, "--metrics 'tcp://127.0.0.1:7400'", 32), 0);

	o.endpoint = "https://127.0.0.1:7402";
	o.cacert = missing;
	CU_ASSERT_EQUAL(mb_http_client_create(&o, &c, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--metrics-cacert"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, missing));

	o.cacert = NULL;
	o.token_file = file_with("empty", "\n", 1);
	CU_ASSERT_EQUAL(mb_http_client_create(&o, &c, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--metrics-token-file"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "empty"));

	o.token_file = NULL;
	CU_ASSERT_EQUAL_FATAL(mb_http_client_create(&o, &c, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(mb_http_client_url(c), "https://127.0.0.1:7402");
	mb_http_client_destroy(&c);
	CU_ASSERT_PTR_NULL(c);
	mb_http_client_destroy(&c); /* NULL is fine */
}

/* A stand-in server on 127.0.0.1: each connection gets its request read (to the blank line)
 * and kept, then the canned answer, then a close. */
struct stand_in {
	int fd, port;
	pthread_t thread;
	atomic_int stop, served;
	const char *answer; /* set before each GET (the thread reads it after accept) */
	size_t answer_len;
	char request[4096];
};

static void *
stand_in_main(void *arg)
{
	struct stand_in *s = arg;

	while (!atomic_load(&s->stop)) {
		struct timeval tv = {.tv_sec = 2};
		size_t got = 0;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (got < sizeof(s->request) - 1) {
			ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			s->request[got] = '\0';
			if (strstr(s->request, "\r\n\r\n") != NULL || s->request[0] == 0x16)
				break; /* a request, or a TLS ClientHello */
		}
		s->request[got] = '\0';
		for (size_t off = 0; off < s->answer_len;) {
			ssize_t n = send(c, s->answer + off, s->answer_len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		close(c);
		atomic_fetch_add(&s->served, 1);
	}
	return NULL;
}

/* Listen on a free port of 127.0.0.1; with @p serve, answer from a thread. */
static int
stand_in_start(struct stand_in *s, bool serve)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct timeval tv = {.tv_usec = 100000};
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->fd, 8) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept() wakes up */
	s->port = ntohs(a.sin_port);
	s->thread = 0;
	return serve ? pthread_create(&s->thread, NULL, stand_in_main, s) : 0;
}

static void
stand_in_stop(struct stand_in *s, bool serve)
{
	atomic_store(&s->stop, 1);
	if (serve)
		pthread_join(s->thread, NULL);
	close(s->fd);
}

static void
answer(struct stand_in *s, const char *text)
{
	s->answer = text;
	s->answer_len = strlen(text);
}

/* A client of 127.0.0.1:@p port (http, or https with @p tls), with a token when @p token. */
static struct mb_http_client *
client(int port, bool tls, const char *token, size_t max_body, int timeout_ms)
{
	struct mb_http_client_opts o;
	struct mb_http_client *c = NULL;
	char ep[64];

	snprintf(ep, sizeof(ep), "%s127.0.0.1:%d", tls ? "https://" : "", port);
	mb_http_client_opts_init(&o);
	o.endpoint = ep;
	o.token_file = token ? file_with("token", token, strlen(token)) : NULL;
	if (max_body > 0)
		o.max_body = max_body;
	if (timeout_ms > 0)
		o.timeout_ms = timeout_ms;
	if (mb_http_client_create(&o, &c, g_err, sizeof(g_err)) < 0)
		printf("\n    client: %s", g_err);
	return c;
}

static void
test_get(void)
{
	static char big[2048];
	struct stand_in s;
	struct mb_http_client *c;
	char *body = (char *)1;
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(stand_in_start(&s, true), 0);

	/* 200: the body, the path and the token as sent */
	answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nup 1\nok\n\n");
	c = client(s.port, false, "s3cret\n", 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, &len, g_err, sizeof(g_err)), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	CU_ASSERT_EQUAL(len, 9);
	CU_ASSERT_STRING_EQUAL(body, "up 1\nok\n\n");
	free(body);
	CU_ASSERT_EQUAL(strncmp(s.request, "GET /metrics HTTP/1.1\r\n", 23), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "\r\nAuthorization: Bearer s3cret\r\n"));

	/* 401 with a token: not the daemon's */
	answer(&s, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\nConnection: close\r\n\r\n"
		   "unauthorized\n");
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-EACCES);
	CU_ASSERT_PTR_NULL(body);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "401"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not the daemon's"));
	mb_http_client_destroy(&c);

	/* 401 without one: give --metrics-token-file */
	c = client(s.port, false, NULL, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "401"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--metrics-token-file"));
	CU_ASSERT_PTR_NULL(strstr(s.request, "Authorization"));

	/* another status: passed through with its body */
	answer(&s, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
		   "not found\n");
	CU_ASSERT_EQUAL(
		mb_http_client_get(c, "/v2/models/nosuch", &body, NULL, g_err, sizeof(g_err)), 404);
	CU_ASSERT_STRING_EQUAL(body, "not found\n");
	free(body);
	CU_ASSERT_EQUAL(strncmp(s.request, "GET /v2/models/nosuch HTTP/1.1\r\n", 32), 0);

	/* an empty body is "" */
	answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/healthz", &body, &len, g_err, sizeof(g_err)), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	CU_ASSERT_STRING_EQUAL(body, "");
	CU_ASSERT_EQUAL(len, 0);
	free(body);

	/* a bad path: nothing sent */
	CU_ASSERT_EQUAL(mb_http_client_get(c, "metrics", &body, NULL, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_PTR_NULL(body);

	/* not HTTP: perhaps an https endpoint */
	answer(&s, "\x16\x03\x01 this is not HTTP\n");
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-EPROTO);
	CU_ASSERT_PTR_NULL(body);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "https://HOST:PORT"));
	printf("\n    not HTTP: %s", g_err);
	mb_http_client_destroy(&c);

	/* a body over the bound */
	memset(big, 'x', sizeof(big) - 1);
	{
		static char resp[4096];

		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 strlen(big), big);
		answer(&s, resp);
		c = client(s.port, false, NULL, 1000, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(
			mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-EFBIG);
		CU_ASSERT_PTR_NULL(body);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "longer than 1000 bytes"));
		mb_http_client_destroy(&c);
	}

	/* https to a plain HTTP server: the handshake fails, said so */
	answer(&s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	c = client(s.port, true, NULL, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "TLS handshake failed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "does not speak TLS"));
	printf("\n    https to http: %s", g_err);
	mb_http_client_destroy(&c);

	stand_in_stop(&s, true);
}

static void
test_unreachable(void)
{
	struct stand_in s;
	struct mb_http_client *c;
	char *body = (char *)1;
	int port;

	/* nothing listening: the port of a socket just closed */
	CU_ASSERT_EQUAL_FATAL(stand_in_start(&s, false), 0);
	port = s.port;
	stand_in_stop(&s, false);
	c = client(port, false, NULL, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-ECONNREFUSED);
	CU_ASSERT_PTR_NULL(body);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "cannot connect to http://127.0.0.1:"));
	printf("\n    refused: %s", g_err);
	mb_http_client_destroy(&c);

	/* a listener that never answers (the kernel completes the connection, nobody reads) */
	CU_ASSERT_EQUAL_FATAL(stand_in_start(&s, false), 0);
	c = client(s.port, false, NULL, 0, 300);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mb_http_client_get(c, "/metrics", &body, NULL, g_err, sizeof(g_err)),
			-ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no answer in 300 ms"));
	mb_http_client_destroy(&c);
	stand_in_stop(&s, false);
}

static const struct mb_test_case cases[] = {
	{"endpoints: every form parsed; refusals name the value and the forms", test_endpoints},
	{"token files: the daemon's rules, refusals naming the file", test_token_files},
	{"create: a bad endpoint, CA file or token file named with its option", test_create_errors},
	{"GET: body, path and token sent; 401, 404, not HTTP, too long, https to http", test_get},
	{"GET: nothing listening, no answer in time", test_unreachable},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"net http_client", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	g_dir = mb_test_temp_dir();
	if (mb_http_client_global_init() < 0)
		return 99;
	return mb_test_main("http_client_test", suites);
}
