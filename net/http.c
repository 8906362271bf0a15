/*
 * http.c: /metrics, /healthz and /readyz over libmicrohttpd (MHD 0.9.75), hardened against
 * slow and idle clients, with optional TLS (1.2 and 1.3 only) and a bearer token for /metrics
 * and the model metadata (mb_http.h); and the v2 (KServe Open Inference Protocol) metadata
 * paths: /v2/health/{live,ready} (bodiless /healthz and /readyz) and
 * /v2/models[/{name}[/ready]], whose JSON the daemon's models callback writes (this file only
 * routes them and bounds the name).
 *
 * Why MHD runs on our thread, in external-epoll mode, with our own listening socket:
 * MHD's MHD_OPTION_CONNECTION_TIMEOUT is an idle timeout (each byte received resets it), so
 * a client that sends one header line every few seconds keeps its slot for ever, and MHD
 * 0.9.75 has nothing that closes a connection at an absolute time: no per-connection
 * deadline, no public call to close a connection, and in MHD_USE_INTERNAL_POLLING_THREAD
 * mode no hook that runs on its thread between polls (MHD_OPTION_NOTIFY_CONNECTION fires
 * only on open and close). A second thread that closed sockets under MHD's feet would race
 * with MHD closing and reusing the same descriptor numbers. So the daemon is started without
 * an internal thread (MHD_USE_EPOLL: its epoll fd nests in ours) and one thread here does,
 * in a loop: wait on {our listening socket, MHD's epoll fd, a stop eventfd} no longer than
 * MHD_get_timeout() or the earliest deadline; accept and admit new connections; MHD_run();
 * then shutdown(2) every connection past its deadline. A shutdown socket reads EOF, so the
 * next MHD_run() closes it through MHD's own path (MHD_OPTION_NOTIFY_CONNECTION, which runs
 * on this thread too, then returns its record to our pool). One thread owns all of it: no
 * locks, and a descriptor is never shut down after MHD has closed it.
 *
 * Accepting ourselves (MHD_USE_NO_LISTEN_SOCKET, MHD_add_connection()) is what makes the
 * limits observable: MHD closes a connection over MHD_OPTION_PER_IP_CONNECTION_LIMIT
 * silently and stops accepting at MHD_OPTION_CONNECTION_LIMIT (leaving clients in the
 * kernel's backlog), and calls no callback for either. Here a connection over a limit is
 * answered 503 with the limit's name (plain HTTP; with TLS it is only closed) and counted.
 * MHD's own limits are set to the same values as a backstop. All connections share one
 * timeout, so accept order is deadline order: the live list is a FIFO and the sweep looks
 * only at its head. Connection records come from a pool of max_connections, allocated at
 * start; the per-address counts are chains in a small hash table over the same records.
 *
 * What is counted (mediabatch_http_refused_total) is only what this file sees happen:
 * "unauthorized" (401 on /metrics or the model metadata), "timeout" (closed here at its deadline),
 * "connection_limit" and "per_ip_limit" (refused at accept). MHD's idle timeout closes
 * silent connections without telling us why they closed, so those are not counted.
 *
 * Every answer is queued in the access handler's first call, after which MHD 0.9.75 closes
 * the connection (no keep-alive), so a deadline only ever cuts a client that is slow to send
 * its request or to read the answer, never an idle kept-alive one.
 *
 * Memory is bounded: max_connections x MHD_OPTION_CONNECTION_MEMORY_LIMIT (16 KiB: the
 * requests are a GET line and a few headers) plus, with TLS, a GnuTLS session each.
 *
 * Threads: mb_http_start() and mb_http_stop() on one thread (main); everything else on the
 * HTTP thread. CONVENTIONS.md says a library never starts threads: this one does, as MHD's
 * internal thread did before, because the daemon has no loop of its own to lend it.
 */
#include "mb_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mb_config.h"
#include "mb_env.h"

#define MB_LOG_MODULE "http"
#include "mb_log.h"
#include "mb_secret_file.h"

/* Per-connection memory in MHD (request line, headers, response headers). */
#define CONN_MEMORY (16u << 10)
/* The longest idle timeout, whatever timeout_ms is (MHD counts it in whole seconds). */
#define IDLE_MAX_S 5u
/* Accepts per wake-up, so a flood of connections cannot starve those already open. */
#define ACCEPT_BURST 64
/* After accept() failed for lack of descriptors or memory, stop accepting this long. */
#define ACCEPT_PAUSE_NS (100 * MB_NS_PER_MS)
/* Refusals are logged once, then summed up at most this often. */
#define REFUSAL_LOG_NS (10 * MB_NS_PER_S)
/* libmicrohttpd's messages logged per REFUSAL_LOG_NS (a client's bad TLS is one each) */
#define MHD_LOG_BURST 5
/* Longest token, certificate and key files. */
#define TOKEN_MAX 4096
#define PEM_MAX (1u << 20)
/* GnuTLS priorities of the HTTPS endpoint: TLS 1.3 and 1.2 only (SSL 3.0, TLS 1.0 and 1.1
 * are deprecated by RFC 8996; GnuTLS's NORMAL still offers them), and in TLS 1.2 only the
 * forward-secret key exchanges (ECDHE, DHE: not static RSA) with AEAD ciphers (no CBC, no
 * SHA-1 MACs), as Mozilla's "intermediate" profile. */
#define TLS_PRIORITIES                                                                             \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:"     \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD"

/* epoll tags */
enum { EV_STOP, EV_LISTEN, EV_MHD };

enum conn_state { C_FREE, C_PENDING, C_LIVE, C_EXPIRED };

/* One accepted connection; owned by the HTTP thread. */
struct conn {
	struct conn *prev, *next; /* live FIFO (C_LIVE), or the free list (next only) */
	struct conn *bnext;	  /* chain of its address's bucket (C_LIVE, C_EXPIRED) */
	struct conn **bprev;	  /* the pointer that points at this one in that chain */
	uint64_t deadline_ns;
	uint32_t ip; /* network order */
	int fd;	     /* MHD's while the connection is open; we only shutdown(2) it */
	enum conn_state state;
};

struct mb_http {
	struct mb_http_opts o; /* its strings are not kept (NULL once started) */
	struct MHD_Daemon *daemon;
	unsigned int port;
	int lfd, efd, ep;
	pthread_t thread;
	bool thread_started;
	bool tls;
	bool accepting;
	uint64_t accept_paused_until;
	uint64_t timeout_ns;
	uint32_t max_conns, per_ip;

	struct conn *pool, *free;
	struct conn *head, *tail; /* live, in accept (= deadline) order */
	struct conn **buckets;
	uint32_t bucket_mask;
	uint32_t n_open;
	struct conn *pending; /* handed to MHD_add_connection(), claimed by notify() */

	char *cert, *key; /* PEM text, NUL-terminated (MHD wants C strings) */
	char *token;
	size_t token_len;

	struct mb_metric *m_unauthorized, *m_timeout, *m_limit, *m_per_ip, *m_open;

	/* refusal log: the first one, then a sum per REFUSAL_LOG_NS */
	uint64_t refusal_log_ns;
	uint64_t refusals_unlogged;

	/* MHD's messages while starting, joined (the reason for a failed start) */
	bool starting;
	char start_err[512];
	/* MHD's messages: at most a few per REFUSAL_LOG_NS (bad TLS clients would flood) */
	uint64_t mhd_log_ns;
	unsigned int mhd_logged;
};

static void
count(struct mb_metric *m)
{
	if (m != NULL)
		mb_metric_add(m, 1);
}

/* ---- connection records ---- */

static uint32_t
bucket_of(const struct mb_http *h, uint32_t ip)
{
	return (ip * UINT32_C(2654435761)) >> 7 & h->bucket_mask;
}

static uint32_t
open_from(const struct mb_http *h, uint32_t ip)
{
	uint32_t n = 0;

	for (const struct conn *c = h->buckets[bucket_of(h, ip)]; c != NULL; c = c->bnext)
		n += c->ip == ip;
	return n;
}

static void
live_append(struct mb_http *h, struct conn *c)
{
	c->next = NULL;
	c->prev = h->tail;
	if (h->tail != NULL)
		h->tail->next = c;
	else
		h->head = c;
	h->tail = c;
}

static void
live_remove(struct mb_http *h, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		h->tail = c->prev;
	c->prev = c->next = NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: on this thread, inside MHD_add_connection() (started) and
 * MHD_run() or MHD_stop_daemon() (closed, before MHD closes the socket). */
static void
notify(void *cls, struct MHD_Connection *mc, void **ctx, enum MHD_ConnectionNotificationCode toe)
{
	struct mb_http *h = cls;
	struct conn *c;

	(void)mc;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = h->pending;
		if (c == NULL) {
			/* with MHD_USE_NO_LISTEN_SOCKET every connection comes from admit() */
			MB_LOG(ERR, "a connection that was not admitted here: a bug");
			abort();
		}
		h->pending = NULL;
		c->state = C_LIVE;
		live_append(h, c);
		c->bprev = &h->buckets[bucket_of(h, c->ip)];
		c->bnext = *c->bprev;
		if (c->bnext != NULL)
			c->bnext->bprev = &c->bnext;
		*c->bprev = c;
		h->n_open++;
		if (h->m_open != NULL)
			mb_metric_set(h->m_open, h->n_open);
		*ctx = c;
		return;
	}
	c = *ctx;
	if (c == NULL)
		return;
	*ctx = NULL;
	if (c->state == C_LIVE)
		live_remove(h, c);
	*c->bprev = c->bnext;
	if (c->bnext != NULL)
		c->bnext->bprev = c->bprev;
	h->n_open--;
	if (h->m_open != NULL)
		mb_metric_set(h->m_open, h->n_open);
	c->state = C_FREE;
	c->fd = -1;
	c->next = h->free;
	h->free = c;
}

/* ---- accepting ---- */

static void
log_refusal(struct mb_http *h, const char *why)
{
	uint64_t now = mb_env_now_ns();

	h->refusals_unlogged++;
	if (h->refusal_log_ns != 0 && now - h->refusal_log_ns < REFUSAL_LOG_NS)
		return;
	if (h->refusals_unlogged == 1)
		MB_LOG(WARNING, "refused a connection: %s", why);
	else
		MB_LOG(WARNING, "refused %llu connections in the last %u s; the last: %s",
		       (unsigned long long)h->refusals_unlogged,
		       (unsigned int)(REFUSAL_LOG_NS / MB_NS_PER_S), why);
	h->refusals_unlogged = 0;
	h->refusal_log_ns = now;
}

/* Answer 503 with @p why (plain HTTP only: a TLS client expects a handshake) and close. */
static void
refuse(struct mb_http *h, int fd, struct mb_metric *m, const char *why)
{
	if (!h->tls) {
		char msg[512];
		int n = snprintf(msg, sizeof(msg),
				 "HTTP/1.1 503 Service Unavailable\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n"
				 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s\n",
				 strlen(why) + 1, why);

		/* a new socket's send buffer is empty: this fits, or the client is gone */
		if (n > 0 && (size_t)n < sizeof(msg))
			(void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(fd);
	count(m);
	log_refusal(h, why);
}

static void
admit(struct mb_http *h, int fd, const struct sockaddr_in *a)
{
	uint32_t ip = a->sin_addr.s_addr;
	char why[200], addr[INET_ADDRSTRLEN];
	struct conn *c;

	if (h->n_open >= h->max_conns || h->free == NULL) {
		snprintf(why, sizeof(why), "too many connections (http.max_connections = %u)",
			 h->max_conns);
		refuse(h, fd, h->m_limit, why);
		return;
	}
	if (open_from(h, ip) >= h->per_ip) {
		inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
		snprintf(why, sizeof(why),
			 "too many connections from %s (http.max_connections_per_ip = %u)", addr,
			 h->per_ip);
		refuse(h, fd, h->m_per_ip, why);
		return;
	}
	c = h->free;
	h->free = c->next;
	c->next = NULL;
	c->state = C_PENDING;
	c->fd = fd;
	c->ip = ip;
	c->deadline_ns = mb_env_now_ns() + h->timeout_ns;
	h->pending = c;
	/* MHD closes the socket itself when this fails (and, if it had said "started",
	 * says "closed" too, which returns the record) */
	if (MHD_add_connection(h->daemon, fd, (const struct sockaddr *)a, sizeof(*a)) != MHD_YES)
		MB_LOG(WARNING, "libmicrohttpd did not take a new connection: %s", strerror(errno));
	h->pending = NULL;
	if (c->state == C_PENDING) {
		c->state = C_FREE;
		c->fd = -1;
		c->next = h->free;
		h->free = c;
	}
}

static void
accept_some(struct mb_http *h)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		int fd =
			accept4(h->lfd, (struct sockaddr *)&a, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			if (alen == sizeof(a) && a.sin_family == AF_INET)
				admit(h, fd, &a);
			else
				close(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* the listening socket stays readable: stop watching it for a while */
			MB_LOG(WARNING, "cannot accept a connection: %s; pausing accepts for %u ms",
			       strerror(errno), (unsigned int)(ACCEPT_PAUSE_NS / MB_NS_PER_MS));
			epoll_ctl(h->ep, EPOLL_CTL_DEL, h->lfd, NULL);
			h->accepting = false;
			h->accept_paused_until = mb_env_now_ns() + ACCEPT_PAUSE_NS;
		}
		return; /* EAGAIN, or paused */
	}
}

/* Shut down every connection past its deadline; MHD closes them in its next run. */
static void
expire(struct mb_http *h, uint64_t now)
{
	struct conn *c;

	while ((c = h->head) != NULL && c->deadline_ns <= now) {
		live_remove(h, c);
		c->state = C_EXPIRED;
		shutdown(c->fd, SHUT_RDWR);
		count(h->m_timeout);
	}
}

/* How long the loop may sleep: MHD's own timeout, the next deadline, the accept pause. */
static int
wait_ms(struct mb_http *h, uint64_t now)
{
	MHD_UNSIGNED_LONG_LONG mhd;
	uint64_t ms = UINT64_MAX;

	if (MHD_get_timeout(h->daemon, &mhd) == MHD_YES)
		ms = mhd;
	if (h->head != NULL) {
		uint64_t left = h->head->deadline_ns > now ? h->head->deadline_ns - now : 0;
		uint64_t d = (left + MB_NS_PER_MS - 1) / MB_NS_PER_MS;

		ms = d < ms ? d : ms;
	}
	if (!h->accepting) {
		uint64_t left = h->accept_paused_until > now ? h->accept_paused_until - now : 0;
		uint64_t d = (left + MB_NS_PER_MS - 1) / MB_NS_PER_MS;

		ms = d < ms ? d : ms;
	}
	if (ms == UINT64_MAX)
		return -1;
	return ms > 60000 ? 60000 : (int)ms;
}

static void *
serve(void *arg)
{
	struct mb_http *h = arg;

	for (;;) {
		struct epoll_event ev[4];
		int n = epoll_wait(h->ep, ev, 4, wait_ms(h, mb_env_now_ns()));
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			MB_LOG(ERR, "epoll_wait: %s; the HTTP endpoint stops", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u32 == EV_STOP)
				return NULL;
			if (ev[i].data.u32 == EV_LISTEN)
				accept_some(h);
		}
		MHD_run(h->daemon);
		now = mb_env_now_ns();
		expire(h, now);
		if (!h->accepting && now >= h->accept_paused_until) {
			struct epoll_event e = {.events = EPOLLIN, .data.u32 = EV_LISTEN};

			if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &e) == 0)
				h->accepting = true;
		}
	}
}

/* ---- requests ---- */

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int code, const char *type, char *body, size_t len,
      enum MHD_ResponseMemoryMode mode, const char *auth)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (auth != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, auth);
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
text(struct MHD_Connection *c, unsigned int code, const char *msg, const char *auth)
{
	return reply(c, code, "text/plain; charset=utf-8", (char *)msg, strlen(msg),
		     MHD_RESPMEM_MUST_COPY, auth);
}

/* Compare without an early exit: the time depends on the token's length only. */
static bool
token_equal(const char *got, size_t got_len, const char *want, size_t want_len)
{
	unsigned char diff = got_len != want_len;

	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned char)(want[i] ^ (i < got_len ? got[i] : 0));
	return diff == 0;
}

/* The request's bearer token matches (@p present: it sent an Authorization header). */
static bool
authorized(const struct mb_http *h, struct MHD_Connection *c, bool *present)
{
	const char *v =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	size_t len;

	*present = v != NULL;
	if (v == NULL || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
		return false;
	v += 6;
	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return token_equal(v, len, h->token, h->token_len);
}

/* What the bearer token guards, asked without it (@p present: with another token): counted,
 * and 401 with WWW-Authenticate; in JSON on the /v2 paths (@p v2). */
static enum MHD_Result
unauthorized(struct mb_http *h, struct MHD_Connection *c, bool present, bool v2)
{
	const char *auth = present ? "Bearer realm=\"mediabatch\", error=\"invalid_token\""
				   : "Bearer realm=\"mediabatch\"";
	const char *msg;

	count(h->m_unauthorized);
	if (v2)
		msg = present ? "{\"error\": \"unauthorized: the bearer token does not match\"}\n"
			      : "{\"error\": \"unauthorized: the model metadata needs the header "
				"'Authorization: Bearer <token>' (the token in "
				"http.token_file)\"}\n";
	else
		msg = present ? "unauthorized: the bearer token does not match\n"
			      : "unauthorized: /metrics needs the header 'Authorization: Bearer "
				"<token>' (the token in http.token_file)\n";
	return reply(c, MHD_HTTP_UNAUTHORIZED,
		     v2 ? "application/json" : "text/plain; charset=utf-8", (char *)msg,
		     strlen(msg), MHD_RESPMEM_MUST_COPY, auth);
}

static enum MHD_Result
json(struct MHD_Connection *c, int code, const char *msg)
{
	return reply(c, (unsigned int)code, "application/json", (char *)msg, strlen(msg),
		     MHD_RESPMEM_MUST_COPY, NULL);
}

/* A model's name in a path: 1..MB_HTTP_MODEL_NAME_MAX printable ASCII bytes, no '/' (MHD
 * has percent-decoded it). */
static bool
model_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > MB_HTTP_MODEL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '/' || p[i] == '"' || p[i] == '\\')
			return false;
	return true;
}

/* /v2/models, /v2/models/{name} and /v2/models/{name}/ready; @p rest follows "/v2/models". */
static enum MHD_Result
models(struct mb_http *h, struct MHD_Connection *c, const char *rest)
{
	char name[MB_HTTP_MODEL_NAME_MAX + 1];
	const char *slash;
	bool ready = false, present, may_list;
	char *body = NULL;
	size_t n, len = 0;
	int status = MHD_HTTP_INTERNAL_SERVER_ERROR;

	if (rest[0] == '/')
		rest++;
	if (rest[0] == '\0') {
		if (h->token != NULL && !authorized(h, c, &present))
			return unauthorized(h, c, present, true);
		if (h->o.models(h->o.ctx, NULL, false, true, &body, &len, &status) < 0)
			return json(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "{\"error\": \"out of memory\"}\n");
		return reply(c, (unsigned int)status, "application/json", body, len,
			     MHD_RESPMEM_MUST_FREE, NULL);
	}
	slash = strchr(rest, '/');
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (slash != NULL && strcmp(slash, "/ready") != 0)
		return json(c, MHD_HTTP_NOT_FOUND,
			    "{\"error\": \"not found: the paths are /v2/models, "
			    "/v2/models/{name} and /v2/models/{name}/ready\"}\n");
	if (!model_name_ok(rest, n))
		return json(c, MHD_HTTP_NOT_FOUND,
			    "{\"error\": \"not a model name: 1 to 64 printable ASCII characters "
			    "(see /v2/models)\"}\n");
	memcpy(name, rest, n);
	name[n] = '\0';
	ready = slash != NULL;
	/* the metadata needs the token; readiness is a probe's, open as /readyz, but the list of
	 * models that a 404 carries is metadata: only with the token */
	may_list = h->token == NULL || authorized(h, c, &present);
	if (!ready && !may_list)
		return unauthorized(h, c, present, true);
	if (h->o.models(h->o.ctx, name, ready, may_list, &body, &len, &status) < 0)
		return json(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\": \"out of memory\"}\n");
	return reply(c, (unsigned int)status, "application/json", body, len, MHD_RESPMEM_MUST_FREE,
		     NULL);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct mb_http *h = cls;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", NULL);
	if (strcmp(url, "/metrics") == 0) {
		char *body;
		size_t len;
		bool present;

		if (h->token != NULL && !authorized(h, c, &present))
			return unauthorized(h, c, present, false);
		if (mb_metrics_render(h->o.metrics, &body, &len) < 0)
			return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
			     MHD_RESPMEM_MUST_FREE, NULL);
	}
	if (strcmp(url, "/healthz") == 0) {
		char why[256] = "", msg[300];

		if (h->o.live == NULL || h->o.live(h->o.ctx, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "ok\n", NULL);
		snprintf(msg, sizeof(msg), "not live: %s\n", why);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, NULL);
	}
	if (strcmp(url, "/readyz") == 0) {
		char why[256] = "", msg[300];

		if (h->o.ready == NULL || h->o.ready(h->o.ctx, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "ready\n", NULL);
		snprintf(msg, sizeof(msg), "not ready: %s\n", why);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, NULL);
	}
	if (strcmp(url, "/v2/health/live") == 0) { /* KServe's name for /healthz */
		char why[256];

		if (h->o.live == NULL || h->o.live(h->o.ctx, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "", NULL);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "", NULL);
	}
	if (strcmp(url, "/v2/health/ready") == 0) { /* KServe's name for /readyz */
		char why[256];

		if (h->o.ready == NULL || h->o.ready(h->o.ctx, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "", NULL);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "", NULL);
	}
	if (h->o.models != NULL && strncmp(url, "/v2/models", 10) == 0 &&
	    (url[10] == '\0' || url[10] == '/'))
		return models(h, c, url + 10);
	return text(c, MHD_HTTP_NOT_FOUND,
		    "not found: try /metrics, /healthz, /readyz or /v2/models\n", NULL);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct mb_http *h = cls;
	uint64_t now;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	if (h->starting) { /* mb_http_start() reports them, joined */
		size_t used = strlen(h->start_err);

		snprintf(h->start_err + used, sizeof(h->start_err) - used, "%s%s",
			 used > 0 ? "; " : "", line);
		return;
	}
	now = mb_env_now_ns();
	if (h->mhd_log_ns == 0 || now - h->mhd_log_ns >= REFUSAL_LOG_NS) {
		h->mhd_log_ns = now;
		h->mhd_logged = 0;
	}
	if (h->mhd_logged + 1 < MHD_LOG_BURST)
		MB_LOG(WARNING, "libmicrohttpd: %s", line);
	else if (h->mhd_logged + 1 == MHD_LOG_BURST)
		MB_LOG(WARNING, "libmicrohttpd: %s (no more of its messages for %u s)", line,
		       (unsigned int)(REFUSAL_LOG_NS / MB_NS_PER_S));
	h->mhd_logged++;
}

/* ---- start and stop ---- */

static int
load_tls(struct mb_http *h, const struct mb_http_opts *o, char *err, size_t err_len)
{
	struct stat st;
	size_t len;
	int rc;

	rc = mb_secret_file_read("http.tls_cert", o->tls_cert, PEM_MAX, &h->cert, &len, &st, err,
				 err_len);
	if (rc < 0)
		return rc;
	if (strlen(h->cert) != len || strstr(h->cert, "-----BEGIN CERTIFICATE-----") == NULL) {
		snprintf(err, err_len,
			 "http.tls_cert '%s': not a PEM certificate (no '-----BEGIN "
			 "CERTIFICATE-----' line)",
			 o->tls_cert);
		return -EINVAL;
	}
	rc = mb_secret_file_read("http.tls_key", o->tls_key, PEM_MAX, &h->key, &len, &st, err,
				 err_len);
	if (rc < 0)
		return rc;
	if (strlen(h->key) != len || strstr(h->key, "-----BEGIN ") == NULL ||
	    strstr(h->key, "PRIVATE KEY-----") == NULL) {
		snprintf(err, err_len,
			 "http.tls_key '%s': not a PEM private key (no '-----BEGIN ... PRIVATE "
			 "KEY-----' line)",
			 o->tls_key);
		return -EINVAL;
	}
	if (strstr(h->key, "ENCRYPTED") != NULL) {
		snprintf(err, err_len,
			 "http.tls_key '%s': the key is encrypted; give it unencrypted (readable "
			 "by the daemon's user only)",
			 o->tls_key);
		return -EINVAL;
	}
	if (st.st_mode & S_IROTH)
		MB_LOG(WARNING, "http.tls_key '%s' is readable by anyone (mode %04o): chmod o-r it",
		       o->tls_key, (unsigned int)(st.st_mode & 07777));
	return 0;
}

static int
load_token(struct mb_http *h, const char *path, char *err, size_t err_len)
{
	struct stat st;
	size_t len;
	int rc;

	rc = mb_secret_file_read("http.token_file", path, TOKEN_MAX, &h->token, &len, &st, err,
				 err_len);
	if (rc < 0)
		return rc;
	h->token_len = len; /* wiped whole at the end, trailing whitespace too */
	if ((rc = mb_secret_token_check("http.token_file", path, h->token, &len, err, err_len)) < 0)
		return rc;
	if (st.st_mode & (S_IRGRP | S_IROTH))
		MB_LOG(WARNING,
		       "http.token_file '%s' is readable by group or others (mode %04o): chmod 600 "
		       "it",
		       path, (unsigned int)(st.st_mode & 07777));
	if (len < 16)
		MB_LOG(WARNING,
		       "http.token_file '%s': a token of %zu characters is easily guessed: use 32 "
		       "or more (openssl rand -hex 32)",
		       path, len);
	h->token_len = len;
	return 0;
}

static int
listen_on(struct mb_http *h, const struct sockaddr_in *addr, char *err, size_t err_len)
{
	struct sockaddr_in bound;
	socklen_t blen = sizeof(bound);
	int one = 1, e;

	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    listen(h->lfd, SOMAXCONN) != 0 ||
	    getsockname(h->lfd, (struct sockaddr *)&bound, &blen) != 0)
		goto fail;
	h->port = ntohs(bound.sin_port);
	return 0;
fail:
	e = errno;
	snprintf(err, err_len, "metrics endpoint %s: cannot listen: %s%s", h->o.hostport,
		 strerror(e),
		 e == EADDRINUSE ? " (choose another port with --metrics HOST:PORT)" : "");
	return -e;
}

/*
 * Create the MHD daemon of @p h (its TLS pair, when it has one, set up by GnuTLS there: a key
 * that is not the certificate's is refused here), listening on nothing and running no thread.
 * 0, or -EINVAL with MHD's reasons in @p err. mb_http_check_files() calls it too, so that
 * --check refuses what the start would.
 */
static int
create_mhd(struct mb_http *h, char *err, size_t err_len)
{
	unsigned int idle_s = (unsigned int)((h->timeout_ns / MB_NS_PER_MS + 1999) / 2000);
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[] = {
		{MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
		{MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
		{MHD_OPTION_END, 0, NULL},
	};

	/* idle: half the deadline rounded up, between 1 and IDLE_MAX_S seconds */
	idle_s = idle_s < 1 ? 1 : idle_s > IDLE_MAX_S ? IDLE_MAX_S : idle_s;
	if (h->tls)
		flags |= MHD_USE_TLS;
	else
		tls[0].option = MHD_OPTION_END;
	h->start_err[0] = '\0';
	h->starting = true;
	h->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_CONNECTION_LIMIT, h->max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_CONNECTION, notify, h, MHD_OPTION_ARRAY, tls,
		MHD_OPTION_END);
	h->starting = false;
	if (h->daemon != NULL)
		return 0;
	if (h->tls)
		snprintf(err, err_len,
			 "http.tls_cert '%s' with http.tls_key '%s': TLS does not start: %s",
			 h->o.tls_cert, h->o.tls_key,
			 h->start_err[0] ? h->start_err : "(no reason given)");
	else
		snprintf(err, err_len, "metrics endpoint %s: libmicrohttpd does not start: %s",
			 h->o.hostport, h->start_err[0] ? h->start_err : "(no reason given)");
	return -EINVAL;
}

static int
start_mhd(struct mb_http *h, char *err, size_t err_len)
{
	const union MHD_DaemonInfo *info;
	int rc = create_mhd(h, err, err_len);

	if (rc < 0)
		return rc;
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0) {
		snprintf(err, err_len, "metrics endpoint %s: libmicrohttpd has no epoll fd",
			 h->o.hostport);
		return -EINVAL;
	}
	{
		struct epoll_event es = {.events = EPOLLIN, .data.u32 = EV_STOP};
		struct epoll_event el = {.events = EPOLLIN, .data.u32 = EV_LISTEN};
		struct epoll_event em = {.events = EPOLLIN, .data.u32 = EV_MHD};

		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->efd, &es) != 0 ||
		    epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &el) != 0 ||
		    epoll_ctl(h->ep, EPOLL_CTL_ADD, info->epoll_fd, &em) != 0) {
			int e = errno;

			snprintf(err, err_len, "metrics endpoint %s: epoll: %s", h->o.hostport,
				 strerror(e));
			return -e;
		}
	}
	h->accepting = true;
	return 0;
}

static void
register_metrics(struct mb_http *h)
{
	static const char help[] = "HTTP connections and requests refused or cut by the "
				   "endpoint's limits, by reason";
	struct mb_metrics *m = h->o.metrics;

	if (m == NULL)
		return;
	h->m_unauthorized = mb_metrics_counter(m, "mediabatch_http_refused_total", help,
					       "reason=\"unauthorized\"");
	h->m_timeout =
		mb_metrics_counter(m, "mediabatch_http_refused_total", help, "reason=\"timeout\"");
	h->m_limit = mb_metrics_counter(m, "mediabatch_http_refused_total", help,
					"reason=\"connection_limit\"");
	h->m_per_ip = mb_metrics_counter(m, "mediabatch_http_refused_total", help,
					 "reason=\"per_ip_limit\"");
	h->m_open = mb_metrics_gauge(m, "mediabatch_http_connections",
				     "HTTP connections open on the operator endpoint", NULL);
}

static void
destroy(struct mb_http *h)
{
	if (h->daemon != NULL)
		MHD_stop_daemon(h->daemon);
	if (h->ep >= 0)
		close(h->ep);
	if (h->efd >= 0)
		close(h->efd);
	if (h->lfd >= 0)
		close(h->lfd);
	free(h->pool);
	free(h->buckets);
	mb_secret_free(&h->cert, h->cert ? strlen(h->cert) : 0);
	mb_secret_free(&h->key, h->key ? strlen(h->key) : 0);
	mb_secret_free(&h->token, h->token_len);
	free(h);
}

/* The TLS pair and the token file of @p o, read and checked into @p h. */
static int
load_files(struct mb_http *h, const struct mb_http_opts *o, char *err, size_t err_len)
{
	int rc;

	h->tls = o->tls_cert != NULL && o->tls_cert[0] != '\0';
	if ((o->tls_key != NULL && o->tls_key[0] != '\0') != h->tls) {
		snprintf(err, err_len,
			 "http: give both tls_cert and tls_key (PEM files), or neither");
		return -EINVAL;
	}
	if (h->tls && (rc = load_tls(h, o, err, err_len)) < 0)
		return rc;
	if (o->token_file != NULL && o->token_file[0] != '\0' &&
	    (rc = load_token(h, o->token_file, err, err_len)) < 0)
		return rc;
	return 0;
}

int
mb_http_check_files(const struct mb_http_opts *o, char *err, size_t err_len)
{
	struct mb_http *h = calloc(1, sizeof(*h));
	int rc;

	if (h == NULL)
		return -ENOMEM;
	h->o = *o;
	h->lfd = h->efd = h->ep = -1;
	h->max_conns = MB_HTTP_MAX_CONNECTIONS;
	h->per_ip = MB_HTTP_MAX_CONNECTIONS_PER_IP;
	h->timeout_ns = (uint64_t)MB_HTTP_TIMEOUT_MS * MB_NS_PER_MS;
	rc = load_files(h, o, err, err_len);
	/* the pair as the start sets it up: GnuTLS refuses a key of another certificate */
	if (rc == 0 && h->tls)
		rc = create_mhd(h, err, err_len);
	destroy(h); /* stops that daemon, wipes what was read */
	return rc;
}

int
mb_http_start(const struct mb_http_opts *o, struct mb_http **out, char *err, size_t err_len)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	uint32_t buckets = 16;
	char host[64];
	uint16_t port;
	struct mb_http *h;
	int rc;

	*out = NULL;
	if (mb_config_parse_hostport(o->hostport, host, sizeof(host), &port) < 0 ||
	    inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		snprintf(err, err_len, "metrics endpoint '%s' is not HOST:PORT", o->hostport);
		return -EINVAL;
	}
	addr.sin_port = htons(port);
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->o = *o;
	h->lfd = h->efd = h->ep = -1;
	h->max_conns = o->max_connections ? o->max_connections : MB_HTTP_MAX_CONNECTIONS;
	h->per_ip = o->max_connections_per_ip ? o->max_connections_per_ip
					      : MB_HTTP_MAX_CONNECTIONS_PER_IP;
	h->timeout_ns =
		(uint64_t)(o->timeout_ms ? o->timeout_ms : MB_HTTP_TIMEOUT_MS) * MB_NS_PER_MS;
	if ((rc = load_files(h, o, err, err_len)) < 0)
		goto fail;

	while (buckets < h->max_conns && buckets < (1u << 16))
		buckets <<= 1;
	h->bucket_mask = buckets - 1;
	h->buckets = calloc(buckets, sizeof(*h->buckets));
	h->pool = calloc(h->max_conns, sizeof(*h->pool));
	if (h->buckets == NULL || h->pool == NULL) {
		snprintf(err, err_len, "metrics endpoint %s: out of memory", o->hostport);
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = h->max_conns; i-- > 0;) {
		h->pool[i].fd = -1;
		h->pool[i].next = h->free;
		h->free = &h->pool[i];
	}

	rc = listen_on(h, &addr, err, err_len);
	if (rc < 0)
		goto fail;
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->efd < 0 || h->ep < 0) {
		rc = -errno;
		snprintf(err, err_len, "metrics endpoint %s: %s", o->hostport, strerror(-rc));
		goto fail;
	}
	rc = start_mhd(h, err, err_len);
	if (rc < 0)
		goto fail;
	register_metrics(h);
	rc = -pthread_create(&h->thread, NULL, serve, h);
	if (rc < 0) {
		snprintf(err, err_len, "metrics endpoint %s: cannot start its thread: %s",
			 o->hostport, strerror(-rc));
		goto fail;
	}
	pthread_setname_np(h->thread, "mb-http");
	h->thread_started = true;
	/* the strings were borrowed for this call only */
	h->o.hostport = h->o.tls_cert = h->o.tls_key = h->o.token_file = NULL;
	*out = h;
	return 0;
fail:
	destroy(h);
	return rc;
}

void
mb_http_stop(struct mb_http **hp)
{
	struct mb_http *h;

	if (hp == NULL || *hp == NULL)
		return;
	h = *hp;
	if (h->thread_started) {
		uint64_t one = 1;

		if (write(h->efd, &one, sizeof(one)) != sizeof(one))
			MB_LOG(ERR, "cannot wake the HTTP thread: %s", strerror(errno));
		pthread_join(h->thread, NULL);
	}
	destroy(h);
	*hp = NULL;
}

unsigned int
mb_http_port(const struct mb_http *h)
{
	return h->port;
}
