/*
 * http_client.c: GET from the daemon's HTTP endpoint over http or https (mb_http_client.h).
 *
 * One client is one libcurl easy handle set up once (URL base, CA file, the Authorization
 * header, timeouts, no proxy, http and https only, no redirects, no signals); each GET sets
 * the URL and a write callback that gathers the body up to max_body. libcurl keeps the
 * connection for the next GET of the same handle. What libcurl reports (a CURLcode and its
 * error buffer) is turned into -errno and a sentence that says what the user can do.
 *
 * Owns the easy handle, the header list (whose token is wiped before it is freed) and what
 * it returns (bodies, tokens). A client is used by one thread at a time; libcurl's global
 * setup is done once under pthread_once().
 */
#include "mb_http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mb_secret_file.h"

/* "https://" + "[" + host + "]:" + port */
#define URL_BASE_MAX (MB_HTTP_HOST_MAX + 32)

struct mb_http_client {
	CURL *curl;
	struct curl_slist *headers; /* "Authorization: Bearer ..." when there is a token */
	bool tls, has_token;
	int timeout_ms;
	size_t max_body;
	char url[URL_BASE_MAX];
	char token_file[512]; /* for messages */
	char cacert[512];     /* "" for the system's */
	char token_flag[64], cacert_flag[64];
	char curl_err[CURL_ERROR_SIZE];
};

/* ---- endpoints ---- */

static int
bad_endpoint(const char *s, const char *why, char *err, size_t err_len)
{
	snprintf(err, err_len, "'%s' is not an HTTP endpoint (%s): want %s", s, why,
		 MB_HTTP_ENDPOINT_FORMS);
	return -EINVAL;
}

/* A host name or an IPv4 address: letters, digits, '-', '.', '_'. */
static bool
host_ok(const char *h, size_t n)
{
	if (n == 0 || n > MB_HTTP_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
			return false;
	return true;
}

int
mb_http_endpoint_parse(const char *s, struct mb_http_endpoint *ep, char *err, size_t err_len)
{
	const char *p = s, *host, *rest;
	char why[160];
	size_t hn;
	char *end;
	long port;

	memset(ep, 0, sizeof(*ep));
	if (s == NULL || *s == '\0')
		return bad_endpoint(s ? s : "", "empty", err, err_len);
	if (strncasecmp(p, "https://", 8) == 0) {
		ep->tls = true;
		p += 8;
	} else if (strncasecmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strstr(p, "://") != NULL) {
		return bad_endpoint(s, "the scheme is neither http:// nor https://", err, err_len);
	}
	if (*p == '[') {
		const char *close = strchr(p, ']');
		unsigned char a6[16];

		if (close == NULL)
			return bad_endpoint(s, "no ']' after the IPv6 address", err, err_len);
		host = p + 1;
		hn = (size_t)(close - host);
		rest = close + 1;
		if (hn == 0 || hn > MB_HTTP_HOST_MAX)
			return bad_endpoint(s, "no IPv6 address in the brackets", err, err_len);
		memcpy(ep->host, host, hn);
		ep->host[hn] = '\0';
		if (inet_pton(AF_INET6, ep->host, a6) != 1) {
			snprintf(why, sizeof(why), "'%.64s' is not an IPv6 address", ep->host);
			return bad_endpoint(s, why, err, err_len);
		}
		ep->ipv6 = true;
	} else {
		const char *colon = strchr(p, ':');

		if (colon == NULL)
			return bad_endpoint(s, "no :PORT", err, err_len);
		if (strchr(colon + 1, ':') != NULL)
			return bad_endpoint(s, "an IPv6 address goes in brackets, [ADDR]:PORT", err,
					    err_len);
		host = p;
		hn = (size_t)(colon - p);
		rest = colon;
		if (!host_ok(host, hn))
			return bad_endpoint(s,
					    hn == 0 ? "no HOST before :PORT"
						    : "HOST is not an IPv4 address or a host name",
					    err, err_len);
		memcpy(ep->host, host, hn);
		ep->host[hn] = '\0';
	}
	if (*rest != ':')
		return bad_endpoint(s, "no :PORT after the address", err, err_len);
	rest++;
	errno = 0;
	port = isdigit((unsigned char)*rest) ? strtol(rest, &end, 10) : -1;
	if (port < 0 || errno != 0 || (*end != '\0' && strcmp(end, "/") != 0)) {
		snprintf(why, sizeof(why), "'%.32s' is not a port number%s", rest,
			 port >= 0 && *end == '/' ? " (no path: the programs add it)" : "");
		return bad_endpoint(s, why, err, err_len);
	}
	if (port < 1 || port > 65535) {
		snprintf(why, sizeof(why), "port %ld is not 1..65535", port);
		return bad_endpoint(s, why, err, err_len);
	}
	ep->port = (uint16_t)port;
	return 0;
}

void
mb_http_endpoint_url(const struct mb_http_endpoint *ep, char *buf, size_t len)
{
	snprintf(buf, len, "%s://%s%s%s:%u", ep->tls ? "https" : "http", ep->ipv6 ? "[" : "",
		 ep->host, ep->ipv6 ? "]" : "", (unsigned int)ep->port);
}

/* ---- token files ---- */

int
mb_http_token_read(const char *path, const char *what, char **token, char *err, size_t err_len)
{
	struct stat st;
	size_t got, len;
	int e = mb_secret_file_read(what, path, MB_HTTP_TOKEN_MAX, token, &got, &st, err, err_len);

	if (e < 0)
		return e;
	len = got;
	if ((e = mb_secret_token_check(what, path, *token, &len, err, err_len)) < 0)
		mb_secret_free(token, got);
	return e;
}

void
mb_http_token_free(char **token)
{
	mb_secret_free(token, *token != NULL ? strlen(*token) : 0);
}

/* ---- clients ---- */

void
mb_http_client_opts_init(struct mb_http_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = MB_HTTP_TIMEOUT_MS;
	o->max_body = MB_HTTP_BODY_MAX;
	o->endpoint_flag = "--metrics-endpoint";
	o->token_flag = "--metrics-token-file";
	o->cacert_flag = "--metrics-cacert";
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc;

static void
global_init_once(void)
{
	g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
mb_http_client_global_init(void)
{
	pthread_once(&g_once, global_init_once);
	return g_init_rc == CURLE_OK ? 0 : -ENOMEM;
}

/* A file the user named: readable and regular, else -errno and why. */
static int
check_file(const char *what, const char *path, char *err, size_t err_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0) {
		e = errno;
		snprintf(err, err_len, "%s '%s': cannot read it: %s", what, path, strerror(e));
		return -e;
	}
	e = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ? -EINVAL : 0;
	close(fd);
	if (e < 0)
		snprintf(err, err_len, "%s '%s': not a regular file", what, path);
	return e;
}

/* The body gathered by on_data() during one GET. */
struct body {
	char *p;
	size_t len, cap, max;
	bool over, nomem;
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->over = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->nomem = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return n;
}

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(c->curl, opt, val);                                  \
	} while (0)

int
mb_http_client_create(const struct mb_http_client_opts *o, struct mb_http_client **out, char *err,
		      size_t err_len)
{
	struct mb_http_endpoint ep;
	struct mb_http_client *c;
	char inner[512], *token = NULL, *header;
	CURLcode rc = CURLE_OK;
	int e;

	*out = NULL;
	e = mb_http_endpoint_parse(o->endpoint, &ep, inner, sizeof(inner));
	if (e < 0) {
		snprintf(err, err_len, "%s %s", o->endpoint_flag ? o->endpoint_flag : "endpoint",
			 inner);
		return e;
	}
	if (o->cacert != NULL && (e = check_file(o->cacert_flag ? o->cacert_flag : "CA file",
						 o->cacert, err, err_len)) < 0)
		return e;
	if (o->token_file != NULL &&
	    (e = mb_http_token_read(o->token_file, o->token_flag ? o->token_flag : "token file",
				    &token, err, err_len)) < 0)
		return e;
	if (mb_http_client_global_init() < 0 || (c = calloc(1, sizeof(*c))) == NULL) {
		mb_http_token_free(&token);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	c->tls = ep.tls;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : MB_HTTP_TIMEOUT_MS;
	c->max_body = o->max_body > 0 ? o->max_body : MB_HTTP_BODY_MAX;
	mb_http_endpoint_url(&ep, c->url, sizeof(c->url));
	snprintf(c->token_file, sizeof(c->token_file), "%s", o->token_file ? o->token_file : "");
	snprintf(c->cacert, sizeof(c->cacert), "%s", o->cacert ? o->cacert : "");
	snprintf(c->token_flag, sizeof(c->token_flag), "%s",
		 o->token_flag ? o->token_flag : "--metrics-token-file");
	snprintf(c->cacert_flag, sizeof(c->cacert_flag), "%s",
		 o->cacert_flag ? o->cacert_flag : "--metrics-cacert");
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		rc = CURLE_OUT_OF_MEMORY;
		goto fail;
	}
	if (token != NULL) {
		size_t n = strlen("Authorization: Bearer ") + strlen(token) + 1;

		header = malloc(n);
		if (header == NULL) {
			rc = CURLE_OUT_OF_MEMORY;
			goto fail;
		}
		snprintf(header, n, "Authorization: Bearer %s", token);
		c->headers = curl_slist_append(NULL, header);
		explicit_bzero(header, n);
		free(header);
		if (c->headers == NULL) {
			rc = CURLE_OUT_OF_MEMORY;
			goto fail;
		}
		c->has_token = true;
		SET(CURLOPT_HTTPHEADER, c->headers);
	}
	mb_http_token_free(&token);
	SET(CURLOPT_ERRORBUFFER, c->curl_err);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	SET(CURLOPT_USERAGENT, "mediabatch");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->cacert != NULL)
		SET(CURLOPT_CAINFO, o->cacert);
	if (rc != CURLE_OK)
		goto fail;
	*out = c;
	return 0;
fail:
	mb_http_token_free(&token);
	snprintf(err, err_len, "cannot set up the HTTP client for %s: %s", c->url,
		 curl_easy_strerror(rc));
	mb_http_client_destroy(&c);
	return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

#undef SET

void
mb_http_client_destroy(struct mb_http_client **cp)
{
	struct mb_http_client *c = *cp;

	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	for (struct curl_slist *h = c->headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(c->headers);
	free(c);
	*cp = NULL;
}

const char *
mb_http_client_url(const struct mb_http_client *c)
{
	return c->url;
}

/* What libcurl said: its error buffer, else the code's text. */
static const char *
curl_says(const struct mb_http_client *c, CURLcode rc)
{
	return c->curl_err[0] != '\0' ? c->curl_err : curl_easy_strerror(rc);
}

/* -errno and a message for a GET that failed with @p rc. */
static int
explain(const struct mb_http_client *c, const char *url, CURLcode rc, char *err, size_t err_len)
{
	const char *says = curl_says(c, rc);

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		snprintf(err, err_len,
			 "cannot connect to %s (%s): is mediabatchd running with its HTTP "
			 "endpoint (service.metrics) there?",
			 c->url, says);
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(err, err_len, "cannot connect to %s: the host name does not resolve (%s)",
			 c->url, says);
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, err_len, "%s: no answer in %d ms (%s)", url, c->timeout_ms, says);
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (c->cacert[0] == '\0')
			snprintf(err, err_len,
				 "%s: the server's TLS certificate is not trusted (%s): give %s "
				 "FILE, the CA certificate that signed the daemon's http.tls_cert "
				 "(a self-signed certificate is its own CA)",
				 c->url, says, c->cacert_flag);
		else
			snprintf(err, err_len,
				 "%s: the server's TLS certificate is not trusted (%s): is %s '%s' "
				 "the CA of the daemon's http.tls_cert, and does the certificate "
				 "name the host of the URL?",
				 c->url, says, c->cacert_flag, c->cacert);
		return -EPROTO;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(err, err_len, "%s '%s': no CA certificate libcurl can use in it (%s)",
			 c->cacert_flag, c->cacert, says);
		return -EINVAL;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_INITFAILED:
		if (strstr(says, "wrong version number") != NULL) {
			snprintf(err, err_len,
				 "%s: the TLS handshake failed (%s): the endpoint does not speak "
				 "TLS; if the daemon has no http.tls_cert, write it HOST:PORT or "
				 "http://HOST:PORT",
				 c->url, says);
			return -EPROTO;
		}
		snprintf(err, err_len,
			 "%s: the TLS handshake failed (%s): is the endpoint https (the daemon's "
			 "http.tls_cert set)? For a self-signed certificate give %s FILE",
			 c->url, says, c->cacert_flag);
		return -EPROTO;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
		if (!c->tls) {
			snprintf(err, err_len,
				 "%s gave no HTTP answer (%s): if the daemon serves https "
				 "(http.tls_cert), write the endpoint https://HOST:PORT",
				 url, says);
			return -EPROTO;
		}
		snprintf(err, err_len, "%s: no answer (%s)", url, says);
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		snprintf(err, err_len, "%s: out of memory", url);
		return -ENOMEM;
	default:
		snprintf(err, err_len, "%s: %s", url, says);
		return -EIO;
	}
}

int
mb_http_client_get(struct mb_http_client *c, const char *path, char **body, size_t *len, char *err,
		   size_t err_len)
{
	struct body b = {.max = c->max_body};
	char url[URL_BASE_MAX + 1024];
	long status = 0;
	CURLcode rc;

	*body = NULL;
	if (len != NULL)
		*len = 0;
	if (path == NULL || path[0] != '/' ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", c->url, path) >= sizeof(url)) {
		snprintf(err, err_len, "%s: a bad path '%.64s'", c->url, path ? path : "(null)");
		return -EINVAL;
	}
	c->curl_err[0] = '\0';
	rc = curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(c->curl);
	if (rc == CURLE_WRITE_ERROR && (b.over || b.nomem)) {
		free(b.p);
		if (b.nomem) {
			snprintf(err, err_len, "%s: out of memory", url);
			return -ENOMEM;
		}
		snprintf(err, err_len, "%s: the answer is longer than %zu bytes", url, b.max);
		return -EFBIG;
	}
	if (rc != CURLE_OK) {
		free(b.p);
		return explain(c, url, rc, err, err_len);
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401) {
		free(b.p);
		if (!c->has_token)
			snprintf(err, err_len,
				 "%s answered 401 Unauthorized: the endpoint needs a bearer token "
				 "(the daemon's http.token_file): give %s FILE",
				 url, c->token_flag);
		else
			snprintf(err, err_len,
				 "%s answered 401 Unauthorized: the token in %s '%s' is not the "
				 "daemon's (http.token_file)",
				 url, c->token_flag, c->token_file);
		return -EACCES;
	}
	if (status < 100 || status > 599) {
		free(b.p);
		snprintf(err, err_len, "%s: no HTTP status in the answer", url);
		return -EPROTO;
	}
	if (b.p == NULL && (b.p = malloc(1)) == NULL) {
		snprintf(err, err_len, "%s: out of memory", url);
		return -ENOMEM;
	}
	b.p[b.len] = '\0';
	*body = b.p;
	if (len != NULL)
		*len = b.len;
	return (int)status;
}
