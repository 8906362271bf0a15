/*
 * client.c: the client library (include/mediabatch/client.h) over ZeroMQ DEALER and SUB
 * sockets, using the same protocol codec as the service. Each client or subscriber has its
 * own ZeroMQ context, so a program can use several without coordinating.
 */
#include "mediabatch/client.h"

#include "client_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <time.h>
#include <zmq.h>

#define MB_SUB_MAX_PUBLISHERS 64

struct mb_client {
	void *ctx;
	void *sock;
	void *mon;		/* CURVE: the socket's failed handshakes (a PAIR), else NULL */
	struct mb_fleet *fleet; /* several daemons (fleet.c): all the rest unused */
};

struct mb_subscriber {
	void *ctx;
	void *sock;
	void *mon;
	/* a fleet's publishers: the list's items, and the addresses the SUB is connected to */
	struct mb_fleet_source src[MB_FLEET_MAX_SOURCES];
	int n_src;
	bool fleet, resolving;
	int resolve_ms;
	struct timespec next_resolve;
	char connected[MB_SUB_MAX_PUBLISHERS][128];
	int connected_src[MB_SUB_MAX_PUBLISHERS]; /* the item each came from */
	int n_connected;
};

/*
 * CURVE: watch @p sock's handshakes, so that a service that refuses the key (ZAP 400) or
 * lacks CURVE is reported (-EACCES from the next receive) instead of a silent wait: ZeroMQ
 * itself only reconnects and tries again. Best effort: without it, receives time out.
 */
static void *
watch_handshakes(void *ctx, void *sock)
{
	char ep[64];
	void *mon;

	snprintf(ep, sizeof(ep), "inproc://mb-client-handshakes-%p", sock);
	if (zmq_socket_monitor(sock, ep,
			       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
		return NULL;
	mon = zmq_socket(ctx, ZMQ_PAIR);
	if (mon != NULL && zmq_connect(mon, ep) != 0) {
		zmq_close(mon);
		mon = NULL;
	}
	return mon;
}

/* Whether a failed handshake was reported on @p mon (each event read once). */
static bool
handshake_failed(void *mon)
{
	bool failed = false;

	for (;;) {
		zmq_msg_t m;
		int more;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return failed;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, mon, 0) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
		failed = true; /* only failures are watched */
	}
}

static void
close_watch(void *sock, void **mon)
{
	if (*mon == NULL)
		return;
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(*mon);
	*mon = NULL;
}

static int
open_socket(int type, void **ctx, void **sock, char *err, size_t err_len)
{
	int linger = 100, one = 1;

	*ctx = zmq_ctx_new();
	if (*ctx == NULL) {
		snprintf(err, err_len, "cannot create a ZeroMQ context");
		return -ENOMEM;
	}
	*sock = zmq_socket(*ctx, type);
	if (*sock == NULL) {
		int e = zmq_errno();

		zmq_ctx_term(*ctx);
		snprintf(err, err_len, "cannot create a ZeroMQ socket: %s", zmq_strerror(e));
		return -e;
	}
	zmq_setsockopt(*sock, ZMQ_LINGER, &linger, sizeof(linger));
	/* tcp://[::1]:7400, or a name with only an IPv6 address: ZeroMQ connects over IPv4
	 * alone without it (ENODEV); IPv4 endpoints work as before */
	zmq_setsockopt(*sock, ZMQ_IPV6, &one, sizeof(one));
	return 0;
}

int
mb_client_set_curve(void *sock, const struct mb_client_curve *cv, char *err, size_t err_len)
{
	uint8_t raw[32];

	if (cv == NULL || cv->server_key == NULL)
		return 0;
	if (cv->public_key == NULL || cv->secret_key == NULL) {
		snprintf(err, err_len,
			 "CURVE: the client's own key pair is missing (public and "
			 "secret key: see mb_curve_cert_load())");
		return -EINVAL;
	}
	const char *keys[3] = {cv->server_key, cv->public_key, cv->secret_key};
	const char *what[3] = {"the service's public key", "the client's public key",
			       "the client's secret key"};
	const int opt[3] = {ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY};

	for (int i = 0; i < 3; i++)
		if (strlen(keys[i]) != 40 || zmq_z85_decode(raw, keys[i]) == NULL ||
		    zmq_setsockopt(sock, opt[i], keys[i], 40) != 0) {
			snprintf(err, err_len,
				 "CURVE: %s is not a key (40 characters of Z85 text)%s", what[i],
				 zmq_errno() == ENOTSUP ? " or this libzmq has no CURVE" : "");
			return -EINVAL;
		}
	return 0;
}

/*
 * Check one endpoint as an item of a list is checked (mb_fleet_parse_endpoints()): the
 * same forms, the same messages. 0 and the item, blanks trimmed, in @p item; or -EINVAL.
 */
static int
check_endpoint(const char *endpoint, char item[128], char *err, size_t err_len)
{
	struct mb_fleet_source src[MB_FLEET_MAX_SOURCES];
	bool resolving = false;
	int n = 0, rc;

	rc = mb_fleet_parse_endpoints(endpoint ? endpoint : "", src, &n, &resolving, err, err_len);
	if (rc < 0)
		return rc;
	memcpy(item, src[0].raw, sizeof(src[0].raw));
	return 0;
}

/* Connect @p sock to @p item (checked already): 0, or -errno with the item in @p err. */
static int
connect_socket(void *sock, const char *item, char *err, size_t err_len)
{
	if (zmq_connect(sock, item) != 0) {
		int e = zmq_errno();

		mb_client_connect_error(err, err_len, item, e);
		return -e;
	}
	return 0;
}

/* Close a socket, its handshake watch (may be NULL) and its context. */
static void
close_socket(void *ctx, void *sock, void **mon)
{
	close_watch(sock, mon);
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

int
mb_client_connect(const struct mb_client_opts *o, struct mb_client **out, char *err, size_t err_len)
{
	struct mb_client *c;
	char item[128];
	int rc;

	*out = NULL;
	if (o->fleet || (o->endpoint != NULL && strchr(o->endpoint, ',') != NULL)) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		rc = mb_fleet_open(o, &c->fleet, err, err_len);
		if (rc < 0) {
			free(c);
			return rc;
		}
		*out = c;
		return 0;
	}
	/* one endpoint, checked as an item of a list is: the same forms, the same messages */
	rc = check_endpoint(o->endpoint, item, err, err_len);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = open_socket(ZMQ_DEALER, &c->ctx, &c->sock, err, err_len);
	if (rc < 0) {
		free(c);
		return rc;
	}
	if (o->client_id != NULL) {
		size_t n = strlen(o->client_id);

		if (n == 0 || n > 255 ||
		    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, o->client_id, n) != 0) {
			snprintf(err, err_len, "client id '%s': 1..255 bytes", o->client_id);
			close_socket(c->ctx, c->sock, &c->mon);
			free(c);
			return -EINVAL;
		}
	}
	if (o->sndhwm > 0)
		zmq_setsockopt(c->sock, ZMQ_SNDHWM, &o->sndhwm, sizeof(o->sndhwm));
	rc = mb_client_set_curve(c->sock, &o->curve, err, err_len);
	if (rc == 0 && o->curve.server_key != NULL)
		c->mon = watch_handshakes(c->ctx, c->sock);
	if (rc == 0)
		rc = connect_socket(c->sock, item, err, err_len);
	if (rc < 0) {
		close_socket(c->ctx, c->sock, &c->mon);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
mb_client_close(struct mb_client **c)
{
	if (c == NULL || *c == NULL)
		return;
	if ((*c)->fleet != NULL) {
		mb_fleet_close(&(*c)->fleet);
		free(*c);
		*c = NULL;
		return;
	}
	close_socket((*c)->ctx, (*c)->sock, &(*c)->mon);
	free(*c);
	*c = NULL;
}

int
mb_client_send(struct mb_client *c, const struct mb_request_hdr *hdr, const void *payload,
	       size_t len)
{
	uint8_t wire[MB_PROTO_HDR_LEN];

	if (c->fleet != NULL)
		return mb_fleet_send(c->fleet, hdr, payload, len);
	if (hdr->payload_len != len)
		return -EINVAL;
	mb_proto_encode_request(hdr, wire);
	if (zmq_send(c->sock, wire, sizeof(wire), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -zmq_errno();
	if (zmq_send(c->sock, payload, len, 0) < 0)
		return -zmq_errno();
	return 0;
}

int
mb_client_cancel(struct mb_client *c, uint32_t tenant, uint64_t request_id)
{
	struct mb_request_hdr h = {
		.version = MB_PROTO_VERSION,
		.flags = MB_FLAG_CANCEL,
		.request_id = request_id,
		.tenant_id = tenant,
	};

	if (c->fleet != NULL)
		return mb_fleet_cancel(c->fleet, tenant, request_id);
	return mb_client_send(c, &h, "", 0);
}

/*
 * mb_client_fleet_stats() has two versions in libmediabatch.so (libmediabatch.map): struct
 * mb_client_fleet_stats grew `malformed` at its end, and a program built against the older
 * header has room for the fields before it only. Its calls are bound to
 * mb_client_fleet_stats@MEDIABATCH_0, which writes those; programs built since get
 * mb_client_fleet_stats@@MEDIABATCH_0.1, the whole struct (a static link: that one).
 */
#if defined(__has_attribute) && __has_attribute(symver)
#define MB_SYMVER(name) __attribute__((symver(name)))
#else
#define MB_SYMVER(name)
__asm__(".symver mb_client_fleet_stats_v0, mb_client_fleet_stats@MEDIABATCH_0");
__asm__(".symver mb_client_fleet_stats_v1, mb_client_fleet_stats@@MEDIABATCH_0.1");
#endif

/* the MEDIABATCH_0 layout: every field before `malformed` */
#define FLEET_STATS_V0_SIZE offsetof(struct mb_client_fleet_stats, malformed)
_Static_assert(FLEET_STATS_V0_SIZE == 40, "struct mb_client_fleet_stats changed before malformed");

int mb_client_fleet_stats_v0(const struct mb_client *c, struct mb_client_fleet_stats *st,
			     struct mb_client_daemon *daemons, int max);
int mb_client_fleet_stats_v1(const struct mb_client *c, struct mb_client_fleet_stats *st,
			     struct mb_client_daemon *daemons, int max);

MB_SYMVER("mb_client_fleet_stats@@MEDIABATCH_0.1")
int
mb_client_fleet_stats_v1(const struct mb_client *c, struct mb_client_fleet_stats *st,
			 struct mb_client_daemon *daemons, int max)
{
	if (c->fleet == NULL)
		return -EINVAL;
	return mb_fleet_stats(c->fleet, st, daemons, max);
}

MB_SYMVER("mb_client_fleet_stats@MEDIABATCH_0")
int
mb_client_fleet_stats_v0(const struct mb_client *c, struct mb_client_fleet_stats *st,
			 struct mb_client_daemon *daemons, int max)
{
	struct mb_client_fleet_stats all;
	int n = mb_client_fleet_stats_v1(c, st != NULL ? &all : NULL, daemons, max);

	if (n >= 0 && st != NULL)
		memcpy(st, &all, FLEET_STATS_V0_SIZE);
	return n;
}

/*
 * Read one multipart message into @p frames, its first @p max frames kept (the caller closes
 * those): returns how many frames it had, every one counted (more than @p max: malformed),
 * or -ETIMEDOUT, or -EACCES when @p mon (may be NULL) reports a failed handshake first.
 */
int
mb_client_recv_msg(void *sock, zmq_msg_t *frames, int max, int flags)
{
	int n = 0, more = 1;

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, n == 0 ? flags : 0) < 0) {
			int e = zmq_errno();

			zmq_msg_close(&m);
			for (int i = 0; i < n && i < max; i++)
				zmq_msg_close(&frames[i]);
			return -e;
		}
		more = zmq_msg_more(&m);
		if (n < max) {
			zmq_msg_init(&frames[n]);
			zmq_msg_move(&frames[n], &m);
		}
		n++;
		zmq_msg_close(&m);
	}
	return n;
}

static int
recv_frames(void *sock, void *mon, zmq_msg_t *frames, int max, int timeout_ms)
{
	zmq_pollitem_t items[2] = {{.socket = sock, .events = ZMQ_POLLIN},
				   {.socket = mon, .events = ZMQ_POLLIN}};

	if (zmq_poll(items, mon != NULL ? 2 : 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	if (!(items[0].revents & ZMQ_POLLIN))
		return mon != NULL && handshake_failed(mon) ? -EACCES : -ETIMEDOUT;
	return mb_client_recv_msg(sock, frames, max, 0);
}

/*
 * Whether the result @p h announces fits its result_len (docs/protocol.md, "Response
 * header"): a caller reads an F32 result as rows x cols floats and top-k as rows pairs of
 * 8 bytes, so a header that says more than the payload holds would have it read past the
 * buffer; "none" has no bytes, text any. false with the reason in @p why.
 */
static bool
result_fits(const struct mb_response_hdr *h, char *why, size_t why_len)
{
	uint64_t want;

	switch (h->result_type) {
	case MB_RESULT_TEXT:
		return true;
	case MB_RESULT_NONE:
		if (h->result_len == 0)
			return true;
		snprintf(why, why_len, "result_type 0 (none) with a %" PRIu32 "-byte result",
			 h->result_len);
		return false;
	case MB_RESULT_F32:
		want = (uint64_t)h->rows * h->cols * 4;
		if (want == h->result_len)
			return true;
		snprintf(why, why_len,
			 "an F32 result of %u x %u is %" PRIu64
			 " bytes (rows x cols x 4), but result_len is %" PRIu32,
			 h->rows, h->cols, want, h->result_len);
		return false;
	case MB_RESULT_TOPK:
		want = (uint64_t)h->rows * 8;
		if (h->cols == 2 && want == h->result_len)
			return true;
		snprintf(why, why_len,
			 "a top-k result of %u pairs is %" PRIu64
			 " bytes (rows x 8, cols 2), but result_len is %" PRIu32 " and cols %u",
			 h->rows, want, h->result_len, h->cols);
		return false;
	}
	snprintf(why, why_len,
		 "result_type %u is not one of 0 (none), 1 (F32), 2 (top-k), 3 (text)",
		 h->result_type);
	return false;
}

int
mb_client_check_response(zmq_msg_t *frames, int n, struct mb_response_hdr *hdr, char *why,
			 size_t why_len)
{
	char reason[128];
	size_t len;

	memset(hdr, 0, sizeof(*hdr));
	if (n >= 1 && mb_proto_decode_response(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
					       hdr, reason, sizeof(reason)) < 0) {
		memset(hdr, 0, sizeof(*hdr));
		snprintf(why, why_len, "%s", reason);
		return -EPROTO;
	}
	if (n != 2) {
		snprintf(why, why_len, "%d frame(s); a response is 2 (header, payload)", n);
		return -EPROTO;
	}
	len = zmq_msg_size(&frames[1]);
	if (len != hdr->result_len) {
		snprintf(why, why_len, "result_len is %" PRIu32 " but the payload is %zu bytes",
			 hdr->result_len, len);
		return -EPROTO;
	}
	return result_fits(hdr, why, why_len) ? 0 : -EPROTO;
}

int
mb_client_parse_response(zmq_msg_t *frames, int n, struct mb_client_response *out, char *why,
			 size_t why_len)
{
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = mb_client_check_response(frames, n, &out->hdr, why, why_len)) < 0)
		return rc;
	len = zmq_msg_size(&frames[1]);
	out->data = malloc(len + 1); /* +1: a reason text is NUL-terminated for printing */
	if (out->data == NULL) {
		memset(out, 0, sizeof(*out));
		return -ENOMEM;
	}
	memcpy(out->data, zmq_msg_data(&frames[1]), len);
	((char *)out->data)[len] = '\0';
	out->len = len;
	return 0;
}

int
mb_client_recv(struct mb_client *c, struct mb_client_response *out, int timeout_ms)
{
	zmq_msg_t f[2];
	char why[160];
	int n, rc;

	memset(out, 0, sizeof(*out)); /* safe to free on every return (client.h) */
	if (c->fleet != NULL)
		return mb_fleet_recv(c->fleet, out, timeout_ms);
	n = recv_frames(c->sock, c->mon, f, 2, timeout_ms);
	if (n < 0)
		return n;
	rc = mb_client_parse_response(f, n, out, why, sizeof(why));
	for (int i = 0; i < n && i < 2; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

void
mb_client_response_free(struct mb_client_response *r)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
}

static void
base(struct mb_request_hdr *h, const char *model, uint32_t tenant, uint64_t id)
{
	memset(h, 0, sizeof(*h));
	h->version = MB_PROTO_VERSION;
	h->tenant_id = tenant;
	h->request_id = id;
	snprintf(h->model, sizeof(h->model), "%s", model);
}

void
mb_client_audio_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
		    uint64_t request_id, enum mb_media media, uint32_t sample_rate, uint32_t bytes)
{
	base(h, model, tenant, request_id);
	h->media = (uint16_t)media;
	h->channels = 1;
	h->sample_rate = sample_rate;
	h->payload_len = bytes;
}

void
mb_client_video_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
		    uint64_t request_id, uint16_t frames, uint16_t height, uint16_t width)
{
	base(h, model, tenant, request_id);
	h->media = MB_MEDIA_RGB24;
	h->channels = 3;
	h->frames = frames;
	h->height = height;
	h->width = width;
	h->payload_len = (uint32_t)frames * height * width * 3;
}

void
mb_client_tensor_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
		     uint64_t request_id, uint16_t rows, uint16_t cols)
{
	base(h, model, tenant, request_id);
	h->media = MB_MEDIA_F32;
	h->frames = rows;
	h->height = cols;
	h->payload_len = (uint32_t)rows * cols * 4;
}

int
mb_subscriber_connect(const char *endpoint, const char *prefix, struct mb_subscriber **out,
		      char *err, size_t err_len)
{
	return mb_subscriber_connect_curve(endpoint, prefix, NULL, out, err, err_len);
}

/*
 * Connect to every address the fleet's items resolve to now, and leave those gone. An
 * address that cannot be connected is tried again at the next resolution; with @p err (at
 * open), a literal item (an address, ipc://...) that cannot be is an error: -errno, the item
 * named in @p err (it could never be connected later either).
 */
static int
sub_resolve(struct mb_subscriber *s, char *err, size_t err_len)
{
	char now[MB_SUB_MAX_PUBLISHERS][128], why[160];
	int now_src[MB_SUB_MAX_PUBLISHERS], n = 0, kept = 0, rc = 0;

	for (int i = 0; i < s->n_src; i++) {
		char eps[MB_SUB_MAX_PUBLISHERS][128];
		int k = mb_fleet_source_addresses(&s->src[i], eps, MB_SUB_MAX_PUBLISHERS, why,
						  sizeof(why));

		if (k < 0) { /* keep this item's addresses: a DNS hiccup is not a fleet gone */
			for (int j = 0; j < s->n_connected && n < MB_SUB_MAX_PUBLISHERS; j++)
				if (s->connected_src[j] == i) {
					now_src[n] = i;
					memcpy(now[n++], s->connected[j], 128);
				}
			continue;
		}
		for (int j = 0; j < k && n < MB_SUB_MAX_PUBLISHERS; j++) {
			now_src[n] = i;
			memcpy(now[n++], eps[j], 128);
		}
	}
	for (int j = 0; j < s->n_connected; j++) {
		bool keep = false;

		for (int i = 0; i < n && !keep; i++)
			keep = strcmp(s->connected[j], now[i]) == 0;
		if (!keep)
			zmq_disconnect(s->sock, s->connected[j]);
	}
	/* the new list: what stays connected, and what connects now */
	for (int i = 0; i < n; i++) {
		bool had = false;

		for (int j = 0; j < s->n_connected && !had; j++)
			had = strcmp(s->connected[j], now[i]) == 0;
		if (!had && zmq_connect(s->sock, now[i]) != 0) {
			int e = zmq_errno();

			if (err != NULL && s->src[now_src[i]].literal && rc == 0) {
				mb_client_connect_error(err, err_len, s->src[now_src[i]].raw, e);
				rc = -e;
			}
			continue;
		}
		now_src[kept] = now_src[i];
		memmove(now[kept++], now[i], 128);
	}
	memcpy(s->connected, now, sizeof(now[0]) * (size_t)kept);
	memcpy(s->connected_src, now_src, sizeof(now_src[0]) * (size_t)kept);
	s->n_connected = kept;
	clock_gettime(CLOCK_MONOTONIC, &s->next_resolve);
	s->next_resolve.tv_sec += s->resolve_ms / 1000;
	s->next_resolve.tv_nsec += (long)(s->resolve_ms % 1000) * 1000000L;
	if (s->next_resolve.tv_nsec >= 1000000000L) {
		s->next_resolve.tv_sec++;
		s->next_resolve.tv_nsec -= 1000000000L;
	}
	return rc;
}

/* Milliseconds until the next resolution (0: due), or -1 when there is none. */
static int
sub_resolve_in(const struct mb_subscriber *s)
{
	struct timespec t;
	long long ms;

	if (!s->resolving || s->resolve_ms <= 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t);
	ms = (long long)(s->next_resolve.tv_sec - t.tv_sec) * 1000 +
	     (s->next_resolve.tv_nsec - t.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

int
mb_subscriber_open(const struct mb_subscriber_opts *o, struct mb_subscriber **out, char *err,
		   size_t err_len)
{
	const struct mb_client_curve *curve = o->curve.server_key != NULL ? &o->curve : NULL;
	const char *prefix = o->prefix != NULL ? o->prefix : "";
	struct mb_subscriber *s;
	char item[128];
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->fleet = o->fleet || (o->endpoint != NULL && strchr(o->endpoint, ',') != NULL);
	s->resolve_ms = o->resolve_ms == 0 ? 5000 : o->resolve_ms;
	/* every item checked before anything is made: a list's alike, one alone too */
	if (s->fleet)
		rc = mb_fleet_parse_endpoints(o->endpoint ? o->endpoint : "", s->src, &s->n_src,
					      &s->resolving, err, err_len);
	else
		rc = check_endpoint(o->endpoint, item, err, err_len);
	if (rc == 0)
		rc = open_socket(ZMQ_SUB, &s->ctx, &s->sock, err, err_len);
	if (rc < 0) {
		free(s);
		return rc;
	}
	if (o->rcvhwm != 0) { /* before any connect: ZeroMQ sizes a pipe when it connects */
		int hwm = o->rcvhwm > 0 ? o->rcvhwm : 0; /* ZeroMQ's 0: no limit */

		zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	}
	zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
	if (s->fleet)
		zmq_setsockopt(s->sock, ZMQ_IPV6, &(int){1}, sizeof(int)); /* IPv6 publishers too */
	rc = mb_client_set_curve(s->sock, curve, err, err_len);
	if (rc == 0 && curve != NULL)
		s->mon = watch_handshakes(s->ctx, s->sock);
	if (rc == 0)
		rc = s->fleet ? sub_resolve(s, err, err_len)
			      : connect_socket(s->sock, item, err, err_len);
	if (rc < 0) {
		close_socket(s->ctx, s->sock, &s->mon);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
mb_subscriber_connect_fleet(const char *endpoints, const char *prefix,
			    const struct mb_client_curve *curve, int resolve_ms,
			    struct mb_subscriber **out, char *err, size_t err_len)
{
	struct mb_subscriber_opts o = {
		.endpoint = endpoints, .prefix = prefix, .fleet = true, .resolve_ms = resolve_ms};

	if (curve != NULL)
		o.curve = *curve;
	return mb_subscriber_open(&o, out, err, err_len);
}

int
mb_subscriber_connect_curve(const char *endpoint, const char *prefix,
			    const struct mb_client_curve *curve, struct mb_subscriber **out,
			    char *err, size_t err_len)
{
	struct mb_subscriber_opts o = {.endpoint = endpoint, .prefix = prefix};

	if (curve != NULL)
		o.curve = *curve;
	return mb_subscriber_open(&o, out, err, err_len);
}

int
mb_subscriber_recv(struct mb_subscriber *s, char *topic, size_t topic_len,
		   struct mb_client_response *out, int timeout_ms)
{
	zmq_msg_t f[3];
	char why[160];
	int n, rc;

	memset(out, 0, sizeof(*out)); /* safe to free on every return (client.h) */
	if (topic != NULL && topic_len > 0)
		topic[0] = '\0';
	for (;;) { /* a fleet's names are resolved again while it waits */
		int due = sub_resolve_in(s), wait = timeout_ms;

		if (due == 0) {
			sub_resolve(s, NULL, 0);
			due = sub_resolve_in(s);
		}
		if (due >= 0 && (wait < 0 || due < wait))
			wait = due;
		n = recv_frames(s->sock, s->mon, f, 3, wait);
		if (n != -ETIMEDOUT || wait == timeout_ms)
			break;
		if (timeout_ms >= 0)
			timeout_ms -= wait;
	}
	if (n < 0)
		return n;
	if (topic != NULL && topic_len > 0) { /* cut to topic_len - 1 bytes (client.h) */
		size_t tl = zmq_msg_size(&f[0]) < topic_len ? zmq_msg_size(&f[0]) : topic_len - 1;

		memcpy(topic, zmq_msg_data(&f[0]), tl);
		topic[tl] = '\0';
	}
	/* topic, then a response's two frames */
	rc = n >= 2 ? mb_client_parse_response(f + 1, n - 1, out, why, sizeof(why)) : -EPROTO;
	for (int i = 0; i < n && i < 3; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

void
mb_subscriber_close(struct mb_subscriber **s)
{
	if (s == NULL || *s == NULL)
		return;
	close_socket((*s)->ctx, (*s)->sock, &(*s)->mon);
	free(*s);
	*s = NULL;
}

/* ---- UDP ---- */

struct mb_udp_sender {
	int fd;
	uint32_t max_datagram;
};

int
mb_udp_sender_open(const struct mb_udp_sender_opts *o, struct mb_udp_sender **out, char *err,
		   size_t err_len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct mb_udp_sender *s;
	char host[64];
	const char *colon = o && o->address ? strrchr(o->address, ':') : NULL;
	char *end;
	long port;

	*out = NULL;
	if (colon == NULL || (size_t)(colon - o->address) >= sizeof(host)) {
		snprintf(err, err_len, "'%s' is not IPv4:PORT (e.g. 192.0.2.1:7000)",
			 o && o->address ? o->address : "");
		return -EINVAL;
	}
	memcpy(host, o->address, (size_t)(colon - o->address));
	host[colon - o->address] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || *end != '\0' || port < 1 ||
	    port > 65535) {
		snprintf(err, err_len, "'%s' is not IPv4:PORT (e.g. 192.0.2.1:7000)", o->address);
		return -EINVAL;
	}
	if (o->max_datagram != 0 &&
	    (o->max_datagram <= MB_PROTO_HDR_LEN || o->max_datagram > 65507)) {
		snprintf(err, err_len, "datagram size %u is out of range %d..65507",
			 o->max_datagram, MB_PROTO_HDR_LEN + 1);
		return -EINVAL;
	}
	sa.sin_port = htons((uint16_t)port);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->max_datagram = o->max_datagram ? o->max_datagram : MB_UDP_DEFAULT_DATAGRAM;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		snprintf(err, err_len, "UDP socket to %s: %s", o->address, strerror(e));
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return -e;
	}
	*out = s;
	/*
	 * Until the kernel knows the service's MAC address, it holds only a few datagrams and
	 * drops the rest: the first request would lose datagrams. A cancel for a request this
	 * sender never sent is ignored by the service (its key includes our address and port)
	 * and starts the ARP exchange now.
	 */
	mb_udp_sender_cancel(s, 0, 0);
	return 0;
}

static int
send_datagram(struct mb_udp_sender *s, const uint8_t *hdr, const void *slice, size_t len)
{
	struct iovec iov[2] = {
		{.iov_base = (void *)hdr, .iov_len = MB_PROTO_HDR_LEN},
		{.iov_base = (void *)slice, .iov_len = len},
	};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

	for (;;) {
		if (sendmsg(s->fd, &msg, 0) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == ENOBUFS) { /* the kernel's queue is full for a moment: wait */
			usleep(100);
			continue;
		}
		return -errno;
	}
}

int
mb_udp_sender_send(struct mb_udp_sender *s, const struct mb_request_hdr *hdr, const void *payload,
		   size_t len)
{
	struct mb_request_hdr h = *hdr;
	uint8_t wire[MB_PROTO_HDR_LEN];
	size_t slice = s->max_datagram - MB_PROTO_HDR_LEN, off = 0;
	int n = 0, rc;

	if (h.payload_len != len || len == 0)
		return -EINVAL;
	while (off < len) {
		size_t k = len - off < slice ? len - off : slice;

		h.frag_offset = (uint32_t)off;
		mb_proto_encode_request(&h, wire);
		rc = send_datagram(s, wire, (const uint8_t *)payload + off, k);
		if (rc < 0)
			return rc;
		off += k;
		n++;
	}
	return n;
}

int
mb_udp_sender_cancel(struct mb_udp_sender *s, uint32_t tenant, uint64_t request_id)
{
	struct mb_request_hdr h = {0};
	uint8_t wire[MB_PROTO_HDR_LEN];

	h.version = MB_PROTO_VERSION;
	h.flags = MB_FLAG_CANCEL;
	h.tenant_id = tenant;
	h.request_id = request_id;
	mb_proto_encode_request(&h, wire);
	return send_datagram(s, wire, NULL, 0);
}

void
mb_udp_sender_close(struct mb_udp_sender **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	close((*sp)->fd);
	free(*sp);
	*sp = NULL;
}
