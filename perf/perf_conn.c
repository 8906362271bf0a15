/*
 * perf_conn.c: mediabatch-perf's transports (mb_perf_conn.h).
 *
 * ZeroMQ: one DEALER socket in a context of its own. Requests are two frames (64-byte header
 * from mb_proto_encode_request, payload), responses two frames decoded and checked by the
 * client library's mb_client_parse_response() (net/client_internal.h), the checks of
 * mb_client_recv(), so a malformed response is caught here as a fleet catches it. Waiting
 * uses the socket's ZMQ_FD, which is edge-triggered: the loop asks ZMQ_EVENTS before every
 * sleep, so a message that arrived while the thread was busy is never slept through.
 *
 * UDP: datagrams out through mb_udp_sender (client library); results in on a SUB socket
 * subscribed to "<tenant>/", three frames (topic, header, result): the topic is skipped and
 * the rest read as over ZeroMQ.
 *
 * Owns its context, socket and UDP sender. One thread per connection.
 */
#include "mb_perf_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <zmq.h>

#include "mediabatch/client.h"
#include "net/client_internal.h"

struct conn_ops {
	const char *name;
	int (*open)(struct mb_perf_conn *c, const struct mb_perf_conn_opts *o, char *err,
		    size_t err_len);
};

struct mb_perf_conn {
	struct mb_client *fleet; /* several daemons: the client library's fleet client */
	void *ctx, *sock;
	int fd;
	struct mb_udp_sender *udp; /* UDP transport: requests go here */
	int topic_frame;	   /* responses start with a topic frame (SUB) */
};

static int
fleet_open_conn(struct mb_perf_conn *c, const struct mb_perf_conn_opts *o, char *err,
		size_t err_len)
{
	struct mb_client_opts co = {
		.endpoint = o->endpoint,
		.fleet = true,
		.max_outstanding = o->sndhwm > 0 ? o->sndhwm : 4096,
	};

	return mb_client_connect(&co, &c->fleet, err, err_len);
}

static int
zmq_open_conn(struct mb_perf_conn *c, const struct mb_perf_conn_opts *o, char *err, size_t err_len)
{
	int linger = 100, hwm = o->sndhwm > 0 ? o->sndhwm : 1000, rcvhwm = 0, one = 1;
	size_t fd_len = sizeof(c->fd);

	if (o->fleet || (o->endpoint != NULL && strchr(o->endpoint, ',') != NULL))
		return fleet_open_conn(c, o, err, err_len);
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL) {
		snprintf(err, err_len, "cannot create a ZeroMQ context");
		return -ENOMEM;
	}
	c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
	if (c->sock == NULL) {
		snprintf(err, err_len, "cannot create a ZeroMQ socket: %s",
			 zmq_strerror(zmq_errno()));
		return -ENOMEM;
	}
	zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(c->sock, ZMQ_IPV6, &one, sizeof(one)); /* tcp://[::1]:7400 */
	/* replies are read as fast as they come; never let ZeroMQ push back on the service */
	zmq_setsockopt(c->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	if (o->endpoint == NULL || zmq_connect(c->sock, o->endpoint) != 0) {
		int e = o->endpoint ? zmq_errno() : EINVAL;

		snprintf(err, err_len, "cannot connect to '%s': %s",
			 o->endpoint ? o->endpoint : "(none)", zmq_strerror(e));
		return -e;
	}
	if (zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &fd_len) != 0) {
		snprintf(err, err_len, "ZMQ_FD: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	return 0;
}

static int
udp_open_conn(struct mb_perf_conn *c, const struct mb_perf_conn_opts *o, char *err, size_t err_len)
{
	struct mb_udp_sender_opts so = {.address = o->endpoint, .max_datagram = o->max_datagram};
	char topic[32];
	int linger = 0, rcvhwm = 0, one = 1, n;
	size_t fd_len = sizeof(c->fd);

	if (o->publish == NULL) {
		snprintf(err, err_len, "UDP needs the service's PUB endpoint (--publish)");
		return -EINVAL;
	}
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_SUB) : NULL;
	if (c->sock == NULL) {
		snprintf(err, err_len, "cannot create a ZeroMQ SUB socket");
		return -ENOMEM;
	}
	n = snprintf(topic, sizeof(topic), "%u/", o->tenant);
	zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(c->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	zmq_setsockopt(c->sock, ZMQ_IPV6, &one, sizeof(one));
	zmq_setsockopt(c->sock, ZMQ_SUBSCRIBE, topic, (size_t)n);
	if (zmq_connect(c->sock, o->publish) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "cannot connect to '%s': %s", o->publish, zmq_strerror(e));
		return -e;
	}
	if (zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &fd_len) != 0) {
		snprintf(err, err_len, "ZMQ_FD: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	c->topic_frame = 1;
	n = mb_udp_sender_open(&so, &c->udp, err, err_len);
	if (n < 0)
		return n;
	if (o->settle_ms > 0)
		usleep((useconds_t)o->settle_ms * 1000);
	return 0;
}

static const struct conn_ops g_ops[] = {
	[MB_TRANSPORT_ZMQ] = {"zmq", zmq_open_conn},
	[MB_TRANSPORT_UDP] = {"udp", udp_open_conn},
};

int
mb_perf_conn_open(const struct mb_perf_conn_opts *o, struct mb_perf_conn **out, char *err,
		  size_t err_len)
{
	struct mb_perf_conn *c;
	int rc;

	*out = NULL;
	if ((unsigned)o->transport >= sizeof(g_ops) / sizeof(g_ops[0]) ||
	    g_ops[o->transport].open == NULL) {
		snprintf(err, err_len, "unknown transport %u", (unsigned)o->transport);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = g_ops[o->transport].open(c, o, err, err_len);
	if (rc < 0) {
		mb_perf_conn_close(&c);
		return rc;
	}
	*out = c;
	return 0;
}

void
mb_perf_conn_close(struct mb_perf_conn **c)
{
	if (c == NULL || *c == NULL)
		return;
	mb_client_close(&(*c)->fleet);
	mb_udp_sender_close(&(*c)->udp);
	if ((*c)->sock != NULL)
		zmq_close((*c)->sock);
	if ((*c)->ctx != NULL)
		zmq_ctx_term((*c)->ctx);
	free(*c);
	*c = NULL;
}

int
mb_perf_conn_send(struct mb_perf_conn *c, const struct mb_request_hdr *hdr, const void *payload)
{
	uint8_t wire[MB_PROTO_HDR_LEN];

	if (c->fleet != NULL)
		return mb_client_send(c->fleet, hdr, payload, hdr->payload_len);
	if (c->udp != NULL) {
		int rc = mb_udp_sender_send(c->udp, hdr, payload, hdr->payload_len);

		return rc < 0 ? rc : 0;
	}
	mb_proto_encode_request(hdr, wire);
	/* ZeroMQ queues a multipart message whole: once the first frame is in, so is the rest */
	if (zmq_send(c->sock, wire, sizeof(wire), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -zmq_errno();
	if (zmq_send(c->sock, payload, hdr->payload_len, ZMQ_DONTWAIT) < 0)
		return -zmq_errno();
	return 0;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Read one whole message that ZMQ_EVENTS said is there, and check it as mb_client_recv()
 * does (the library's own mb_client_parse_response()): two frames, a header that decodes, a
 * payload of result_len bytes that fits the result's layout. A malformed one is consumed and
 * -EPROTO returned, with its header in @p out when that decoded (else zeroed) and what was
 * wrong in @p reason.
 */
static int
read_message(struct mb_perf_conn *c, struct mb_response_hdr *out, char *reason, size_t reason_len)
{
	zmq_msg_t all[3], *f = all;
	int t = c->topic_frame ? 1 : 0; /* SUB: topic, then header and result as over ROUTER */
	int n = mb_client_recv_msg(c->sock, all, 2 + t, ZMQ_DONTWAIT), rc;
	char why[160];

	if (n < 0)
		return -ETIMEDOUT;
	if (t) {
		zmq_msg_close(&all[0]);
		f = all + 1;
		n--;
	}
	/* checked without copying the payload: the generator reads the header only */
	rc = mb_client_check_response(f, n, out, why, sizeof(why));
	if (rc == 0 && out->status != MB_STATUS_OK && reason_len > 0) {
		size_t len =
			zmq_msg_size(&f[1]) < reason_len - 1 ? zmq_msg_size(&f[1]) : reason_len - 1;

		memcpy(reason, zmq_msg_data(&f[1]), len);
		reason[len] = '\0';
	}
	for (int i = 0; i < n && i < 2; i++)
		zmq_msg_close(&f[i]);
	if (rc < 0)
		snprintf(reason, reason_len, "client: malformed response: %s", why);
	return rc;
}

static int
fleet_recv(struct mb_perf_conn *c, struct mb_response_hdr *out, int64_t timeout_ns, char *reason,
	   size_t reason_len)
{
	struct mb_client_response r;
	int ms = timeout_ns > 0 ? (int)((timeout_ns + 999999) / 1000000) : 0;
	int rc = mb_client_recv(c->fleet, &r, ms);

	if (rc != 0)
		return rc == -EACCES ? -EPROTO : rc;
	*out = r.hdr;
	if (r.hdr.status != MB_STATUS_OK && reason_len > 0) {
		size_t n = r.len < reason_len - 1 ? r.len : reason_len - 1;

		memcpy(reason, r.data, n);
		reason[n] = '\0';
	}
	mb_client_response_free(&r);
	return 0;
}

int
mb_perf_conn_fleet_stats(const struct mb_perf_conn *c, struct mb_client_fleet_stats *st,
			 struct mb_client_daemon *daemons, int max)
{
	return c->fleet != NULL ? mb_client_fleet_stats(c->fleet, st, daemons, max) : -EINVAL;
}

int
mb_perf_conn_recv(struct mb_perf_conn *c, struct mb_response_hdr *out, int64_t timeout_ns,
		  char *reason, size_t reason_len)
{
	int64_t deadline = now_ns() + (timeout_ns > 0 ? timeout_ns : 0);

	memset(out, 0, sizeof(*out)); /* a header of version 0: none (client.h) */
	if (reason_len > 0)
		reason[0] = '\0';
	if (c->fleet != NULL)
		return fleet_recv(c, out, timeout_ns, reason, reason_len);
	for (;;) {
		uint32_t ev = 0;
		size_t ev_len = sizeof(ev);
		int64_t left;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		struct timespec ts;

		if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &ev, &ev_len) != 0)
			return -zmq_errno();
		if (ev & ZMQ_POLLIN) {
			int rc = read_message(c, out, reason, reason_len);

			if (rc != -ETIMEDOUT)
				return rc;
		}
		left = deadline - now_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		if (ppoll(&p, 1, &ts, NULL) < 0 && errno != EINTR)
			return -errno;
	}
}
