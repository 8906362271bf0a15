/*
 * client.c: the client library (include/mediabatch/client.h) over ZeroMQ DEALER and SUB
 * sockets, using the same protocol codec as the service. Each client or subscriber has its
 * own ZeroMQ context, so a program can use several without coordinating.
 */
#include "mediabatch/client.h"

#include "client_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
	int linger = 100;

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

static int
connect_socket(void *ctx, void *sock, const char *endpoint, char *err, size_t err_len)
{
	if (endpoint == NULL || zmq_connect(sock, endpoint) != 0) {
		int e = endpoint ? zmq_errno() : EINVAL;

		snprintf(err, err_len, "cannot connect to '%s': %s", endpoint ? endpoint : "(none)",
			 zmq_strerror(e));
		zmq_close(sock);
		zmq_ctx_term(ctx);
		return -e;
	}
	return 0;
}

int
mb_client_connect(const struct mb_client_opts *o, struct mb_client **out, char *err, size_t err_len)
{
	struct mb_client *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (o->fleet || (o->endpoint != NULL && strchr(o->endpoint, ',') != NULL)) {
		rc = mb_fleet_open(o, &c->fleet, err, err_len);
		if (rc < 0) {
			free(c);
			return rc;
		}
		*out = c;
		return 0;
	}
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
			zmq_close(c->sock);
			zmq_ctx_term(c->ctx);
			free(c);
			return -EINVAL;
		}
	}
	if (o->sndhwm > 0)
		zmq_setsockopt(c->sock, ZMQ_SNDHWM, &o->sndhwm, sizeof(o->sndhwm));
	rc = mb_client_set_curve(c->sock, &o->curve, err, err_len);
	if (rc < 0) {
		zmq_close(c->sock);
		zmq_ctx_term(c->ctx);
		free(c);
		return rc;
	}
	if (o->curve.server_key != NULL)
		c->mon = watch_handshakes(c->ctx, c->sock);
	rc = connect_socket(c->ctx, c->sock, o->endpoint, err, err_len);
	if (rc < 0) {
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
	close_watch((*c)->sock, &(*c)->mon);
	zmq_close((*c)->sock);
	zmq_ctx_term((*c)->ctx);
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

int
mb_client_fleet_stats(const struct mb_client *c, struct mb_client_fleet_stats *st,
		      struct mb_client_daemon *daemons, int max)
{
	if (c->fleet == NULL)
		return -EINVAL;
	return mb_fleet_stats(c->fleet, st, daemons, max);
}

/*
 * Read one multipart message of up to @max frames into @frames; returns the count, or
 * -ETIMEDOUT, or -EACCES when @p mon (may be NULL) reports a failed handshake first.
 */
static int
recv_frames(void *sock, void *mon, zmq_msg_t *frames, int max, int timeout_ms)
{
	zmq_pollitem_t items[2] = {{.socket = sock, .events = ZMQ_POLLIN},
				   {.socket = mon, .events = ZMQ_POLLIN}};
	int n = 0, more = 1;

	if (zmq_poll(items, mon != NULL ? 2 : 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	if (!(items[0].revents & ZMQ_POLLIN))
		return mon != NULL && handshake_failed(mon) ? -EACCES : -ETIMEDOUT;
	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			zmq_msg_close(&m);
			return -zmq_errno();
		}
		more = zmq_msg_more(&m);
		if (n < max) {
			zmq_msg_init(&frames[n]);
			zmq_msg_move(&frames[n++], &m);
		}
		zmq_msg_close(&m);
	}
	return n;
}

int
mb_client_parse_response(zmq_msg_t *hdr, zmq_msg_t *payload, struct mb_client_response *out)
{
	char reason[128];

	memset(out, 0, sizeof(*out));
	if (mb_proto_decode_response(zmq_msg_data(hdr), zmq_msg_size(hdr), &out->hdr, reason,
				     sizeof(reason)) < 0)
		return -EPROTO;
	out->len = zmq_msg_size(payload);
	out->data = malloc(out->len + 1); /* +1: a reason text is NUL-terminated for printing */
	if (out->data == NULL)
		return -ENOMEM;
	memcpy(out->data, zmq_msg_data(payload), out->len);
	((char *)out->data)[out->len] = '\0';
	return 0;
}

int
mb_client_recv(struct mb_client *c, struct mb_client_response *out, int timeout_ms)
{
	zmq_msg_t f[2];
	int n, rc;

	if (c->fleet != NULL)
		return mb_fleet_recv(c->fleet, out, timeout_ms);
	n = recv_frames(c->sock, c->mon, f, 2, timeout_ms);
	if (n < 0)
		return n;
	rc = n == 2 ? mb_client_parse_response(&f[0], &f[1], out) : -EPROTO;
	for (int i = 0; i < n; i++)
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

/* Connect to every address the fleet's items resolve to now, and leave those gone. */
static void
sub_resolve(struct mb_subscriber *s)
{
	char now[MB_SUB_MAX_PUBLISHERS][128], err[160];
	int now_src[MB_SUB_MAX_PUBLISHERS], n = 0;

	for (int i = 0; i < s->n_src; i++) {
		char eps[MB_SUB_MAX_PUBLISHERS][128];
		int k = mb_fleet_source_addresses(&s->src[i], eps, MB_SUB_MAX_PUBLISHERS, err,
						  sizeof(err));

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
	for (int i = 0; i < n; i++) {
		bool had = false;

		for (int j = 0; j < s->n_connected && !had; j++)
			had = strcmp(s->connected[j], now[i]) == 0;
		if (!had)
			zmq_connect(s->sock, now[i]);
	}
	memcpy(s->connected, now, sizeof(now[0]) * (size_t)n);
	memcpy(s->connected_src, now_src, sizeof(now_src[0]) * (size_t)n);
	s->n_connected = n;
	clock_gettime(CLOCK_MONOTONIC, &s->next_resolve);
	s->next_resolve.tv_sec += s->resolve_ms / 1000;
	s->next_resolve.tv_nsec += (long)(s->resolve_ms % 1000) * 1000000L;
	if (s->next_resolve.tv_nsec >= 1000000000L) {
		s->next_resolve.tv_sec++;
		s->next_resolve.tv_nsec -= 1000000000L;
	}
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
mb_subscriber_connect_fleet(const char *endpoints, const char *prefix,
			    const struct mb_client_curve *curve, int resolve_ms,
			    struct mb_subscriber **out, char *err, size_t err_len)
{
	struct mb_subscriber *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->fleet = true;
	s->resolve_ms = resolve_ms == 0 ? 5000 : resolve_ms;
	rc = mb_fleet_parse_endpoints(endpoints ? endpoints : "", s->src, &s->n_src, &s->resolving,
				      err, err_len);
	if (rc < 0) {
		free(s);
		return rc;
	}
	rc = open_socket(ZMQ_SUB, &s->ctx, &s->sock, err, err_len);
	if (rc < 0) {
		free(s);
		return rc;
	}
	zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, prefix ? prefix : "", prefix ? strlen(prefix) : 0);
	zmq_setsockopt(s->sock, ZMQ_IPV6, &(int){1}, sizeof(int)); /* IPv6 publishers too */
	rc = mb_client_set_curve(s->sock, curve, err, err_len);
	if (rc < 0) {
		zmq_close(s->sock);
		zmq_ctx_term(s->ctx);
		free(s);
		return rc;
	}
	if (curve != NULL && curve->server_key != NULL)
		s->mon = watch_handshakes(s->ctx, s->sock);
	sub_resolve(s);
	*out = s;
	return 0;
}

int
mb_subscriber_connect_curve(const char *endpoint, const char *prefix,
			    const struct mb_client_curve *curve, struct mb_subscriber **out,
			    char *err, size_t err_len)
{
	struct mb_subscriber *s;
	int rc;

	if (endpoint != NULL && strchr(endpoint, ',') != NULL)
		return mb_subscriber_connect_fleet(endpoint, prefix, curve, 0, out, err, err_len);
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = open_socket(ZMQ_SUB, &s->ctx, &s->sock, err, err_len);
	if (rc < 0) {
		free(s);
		return rc;
	}
	zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, prefix ? prefix : "", prefix ? strlen(prefix) : 0);
	rc = mb_client_set_curve(s->sock, curve, err, err_len);
	if (rc < 0) {
		zmq_close(s->sock);
		zmq_ctx_term(s->ctx);
		free(s);
		return rc;
	}
	if (curve != NULL && curve->server_key != NULL)
		s->mon = watch_handshakes(s->ctx, s->sock);
	rc = connect_socket(s->ctx, s->sock, endpoint, err, err_len);
	if (rc < 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
mb_subscriber_recv(struct mb_subscriber *s, char *topic, size_t topic_len,
		   struct mb_client_response *out, int timeout_ms)
{
	zmq_msg_t f[3];
	int n, rc = -EPROTO;

	for (;;) { /* a fleet's names are resolved again while it waits */
		int due = sub_resolve_in(s), wait = timeout_ms;

		if (due == 0) {
			sub_resolve(s);
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
	if (n == 3) {
		size_t tl = zmq_msg_size(&f[0]) < topic_len ? zmq_msg_size(&f[0]) : topic_len - 1;

		memcpy(topic, zmq_msg_data(&f[0]), tl);
		topic[tl] = '\0';
		rc = mb_client_parse_response(&f[1], &f[2], out);
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

void
mb_subscriber_close(struct mb_subscriber **s)
{
	if (s == NULL || *s == NULL)
		return;
	close_watch((*s)->sock, &(*s)->mon);
	zmq_close((*s)->sock);
	zmq_ctx_term((*s)->ctx);
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
