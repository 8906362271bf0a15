/*
 * frontdoor.c: the receiving half of the ZeroMQ front door (see mb_frontdoor.h); the sending
 * half, egress, is egress.c (mb_egress.h). Both work on one struct (frontdoor_internal.h),
 * on the front door's thread.
 *
 * State owned by the thread, on this side: the two sockets, the request pool, the in-flight
 * index (an rte_hash keyed by client, tenant and request id, single-threaded), the
 * requests in flight per connection, and the payload bytes in flight. The loop: receive a
 * burst of requests, let egress send a burst of answers and retry held replies, watch the
 * shutdown tokens, then wait in zmq_poll() on both sockets and the results doorbell.
 */
#include "mb_frontdoor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <zmq.h>

#include "frontdoor_internal.h"
#include "mb_egress.h"
#include "mb_env.h"

#define MB_LOG_MODULE "frontdoor"
#include "mb_log.h"

#define RECV_BURST 256
/* Connection events and subscriptions are read this often. */
#define SLOW_NS (1 * MB_NS_PER_MS)
/* After a read of the ROUTER that found it empty, the next read waits this long. */
#define RX_BACKOFF_NS (20 * MB_NS_PER_US)

static int64_t
inflight_fn(void *arg)
{
	return mb_frontdoor_inflight(arg);
}

static int64_t
subscriptions_fn(void *arg)
{
	return atomic_load_explicit(&((struct mb_frontdoor *)arg)->subscriptions,
				    memory_order_relaxed);
}

static int64_t
connections_fn(void *arg)
{
	int64_t n = atomic_load_explicit(&((struct mb_frontdoor *)arg)->connections,
					 memory_order_relaxed);

	return n > 0 ? n : 0; /* below 0 only between a reordered pair of events */
}

/* Watch the ROUTER's connections through a ZeroMQ socket monitor (an inproc PAIR). */
static int
open_monitor(struct mb_frontdoor *fd, char *err, size_t err_len)
{
	char ep[64];

	snprintf(ep, sizeof(ep), "inproc://mb-router-monitor-%p", (void *)fd);
	if (zmq_socket_monitor(fd->router, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
	    (fd->monitor = zmq_socket(fd->o.zmq_ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(fd->monitor, ep) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "cannot monitor the ROUTER's connections: %s",
			 zmq_strerror(e));
		return -e;
	}
	return 0;
}

/* ---- creation ---- */

static int
bind_socket(void *sock, const char *what, const char *endpoint, char *bound, char *err,
	    size_t err_len)
{
	size_t len = 256;

	if (zmq_bind(sock, endpoint) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "%s endpoint %s: %s%s", what, endpoint, zmq_strerror(e),
			 e == EADDRINUSE ? " (is another mediabatchd running? choose another port "
					   "with --ingest/--publish)"
					 : "");
		return -e;
	}
	if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
		snprintf(bound, 256, "%s", endpoint);
	return 0;
}

int
mb_frontdoor_create(const struct mb_frontdoor_opts *o, struct mb_frontdoor **out, char *err,
		    size_t err_len)
{
	struct rte_hash_parameters hp = {0};
	struct mb_frontdoor *fd;
	int64_t maxmsg;
	int rc;

	*out = NULL;
	if (o->zmq_ctx == NULL || o->ingest == NULL || o->publish == NULL || o->results == NULL ||
	    o->drain == NULL || o->abort == NULL || o->ops.submit == NULL || o->max_inflight == 0) {
		snprintf(err, err_len, "front door: missing options");
		return -EINVAL;
	}
	fd = calloc(1, sizeof(*fd));
	if (fd == NULL)
		goto oom;
	fd->o = *o;
	if (fd->o.drain_quiet_ms == 0)
		fd->o.drain_quiet_ms = 250;
	snprintf(fd->ingest, sizeof(fd->ingest), "%s", o->ingest);
	snprintf(fd->publish, sizeof(fd->publish), "%s", o->publish);
	fd->o.ingest = fd->ingest;
	fd->o.publish = fd->publish;
	if (mb_egress_init(fd) < 0)
		goto oom;
	if (mb_request_pool_create(o->max_inflight, o->numa_node, &fd->pool) < 0)
		goto oom;
	hp.name = "mb_inflight";
	hp.entries = o->max_inflight < 8 ? 8 : o->max_inflight;
	hp.key_len = sizeof(struct idx_key);
	hp.hash_func = rte_hash_crc;
	hp.socket_id = o->numa_node < 0 ? SOCKET_ID_ANY : o->numa_node;
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	fd->index = rte_hash_create(&hp);
	if (fd->index == NULL)
		goto oom;

	fd->router = zmq_socket(o->zmq_ctx, ZMQ_ROUTER);
	fd->pub = zmq_socket(o->zmq_ctx, ZMQ_XPUB);
	if (fd->router == NULL || fd->pub == NULL) {
		rc = -zmq_errno();
		snprintf(err, err_len, "cannot create ZeroMQ sockets: %s", zmq_strerror(-rc));
		goto fail;
	}
	set_int(fd->router, ZMQ_ROUTER_MANDATORY, 1);
	set_int(fd->router, ZMQ_SNDHWM, (int)o->router_sndhwm);
	set_int(fd->router, ZMQ_RCVHWM, (int)o->router_rcvhwm);
	set_int(fd->router, ZMQ_LINGER, (int)o->linger_ms);
	/* Past this, libzmq cuts the connection from the frame's length prefix, before it
	 * allocates: one huge frame cannot take the daemon's memory. Payloads between the
	 * maximum and this still get their TOO_LARGE answer. */
	maxmsg = (int64_t)o->max_payload * 2 + 4096;
	if (o->max_payload != 0)
		zmq_setsockopt(fd->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (o->heartbeat_ms != 0) {
		set_int(fd->router, ZMQ_HEARTBEAT_IVL, (int)o->heartbeat_ms);
		set_int(fd->router, ZMQ_HEARTBEAT_TIMEOUT, (int)o->heartbeat_ms * 3);
	}
	set_int(fd->pub, ZMQ_SNDHWM, (int)o->pub_sndhwm);
	set_int(fd->pub, ZMQ_XPUB_NODROP, 1);
	set_int(fd->pub, ZMQ_LINGER, (int)o->linger_ms);
	rc = open_monitor(fd, err, err_len);
	if (rc == 0)
		rc = bind_socket(fd->router, "ingest", fd->ingest, fd->bound[0], err, err_len);
	if (rc == 0)
		rc = bind_socket(fd->pub, "publish", fd->publish, fd->bound[1], err, err_len);
	if (rc < 0)
		goto fail;

	if (o->metrics != NULL) {
		char l[64];

		fd->m_unaddressable = mb_metrics_counter(
			o->metrics, "mediabatch_zmq_dropped_total",
			"ZeroMQ messages dropped without an answer (no request id could be read).",
			mb_metrics_labels(l, sizeof(l), "reason", "unaddressable", NULL));
		fd->m_pub_dropped = mb_metrics_counter(o->metrics, "mediabatch_pub_dropped_total",
						       "Publications sent while a subscriber was "
						       "cut off because its queue was full "
						       "(pub_sndhwm): ZeroMQ sends such a "
						       "subscriber nothing until it has caught up.",
						       NULL);
		fd->m_pub_cutoffs = mb_metrics_counter(
			o->metrics, "mediabatch_pub_cutoffs_total",
			"Times a subscriber was found with a full queue (pub_sndhwm) and cut off.",
			NULL);
		fd->m_client_gone = mb_metrics_counter(
			o->metrics, "mediabatch_reply_dropped_total",
			"Replies that could not be delivered on the ROUTER.",
			mb_metrics_labels(l, sizeof(l), "reason", "client_gone", NULL));
		fd->m_abort_dropped = mb_metrics_counter(
			o->metrics, "mediabatch_reply_dropped_total",
			"Replies that could not be delivered on the ROUTER.",
			mb_metrics_labels(l, sizeof(l), "reason", "unread_at_shutdown", NULL));
		fd->m_disconnect_cancelled = mb_metrics_counter(
			o->metrics, "mediabatch_disconnect_cancelled_total",
			"Requests cancelled before they started because their client's connection "
			"closed.",
			NULL);
		mb_metrics_gauge_fn(o->metrics, "mediabatch_inflight",
				    "Requests accepted and not yet answered.", NULL, inflight_fn,
				    fd);
		mb_metrics_gauge_fn(o->metrics, "mediabatch_pub_subscriptions",
				    "Subscriptions on the PUB socket.", NULL, subscriptions_fn, fd);
		mb_metrics_gauge_fn(o->metrics, "mediabatch_zmq_connections",
				    "Requester connections open on the ROUTER socket.", NULL,
				    connections_fn, fd);
	}
	*out = fd;
	return 0;
oom:
	snprintf(err, err_len, "front door: out of memory (max_inflight %u)", o->max_inflight);
	rc = -ENOMEM;
fail:
	mb_frontdoor_destroy(&fd);
	return rc;
}

void
mb_frontdoor_destroy(struct mb_frontdoor **fdp)
{
	struct mb_frontdoor *fd;

	if (fdp == NULL || *fdp == NULL)
		return;
	fd = *fdp;
	mb_egress_fini(fd); /* held replies back to the pool, the publication counts let go */
	if (fd->router != NULL && fd->monitor != NULL)
		zmq_socket_monitor(fd->router, NULL, 0);
	if (fd->monitor != NULL)
		zmq_close(fd->monitor);
	if (fd->router != NULL)
		zmq_close(fd->router);
	if (fd->pub != NULL)
		zmq_close(fd->pub);
	rte_hash_free(fd->index);
	mb_request_pool_destroy(&fd->pool);
	free(fd->conn_inflight);
	free(fd->conn_open);
	free(fd);
	*fdp = NULL;
}

const char *
mb_frontdoor_endpoint(const struct mb_frontdoor *fd, int which)
{
	return fd->bound[which ? 1 : 0];
}

uint32_t
mb_frontdoor_inflight(const struct mb_frontdoor *fd)
{
	return atomic_load_explicit(&((struct mb_frontdoor *)fd)->inflight, memory_order_relaxed);
}

/* ---- receiving ---- */

/* Count @p req against the connection it came on (its fd), growing the table on demand. */
static void
conn_add(struct mb_frontdoor *fd, struct mb_request *req, const zmq_msg_t *frame)
{
	int cfd = zmq_msg_get((zmq_msg_t *)frame, ZMQ_SRCFD);

	req->conn_fd = -1;
	if (cfd < 0)
		return;
	if ((uint32_t)cfd >= fd->n_conn) {
		uint32_t n = fd->n_conn ? fd->n_conn : 64;
		uint32_t *t;

		while (n <= (uint32_t)cfd)
			n *= 2;
		t = realloc(fd->conn_inflight, n * sizeof(*t));
		if (t == NULL)
			return; /* not tracked: a disconnect will not cancel it */
		memset(t + fd->n_conn, 0, (n - fd->n_conn) * sizeof(*t));
		fd->conn_inflight = t;
		fd->n_conn = n;
	}
	req->conn_fd = cfd;
	req->conn_epoch = fd->epoch;
	fd->conn_inflight[cfd]++;
}

static void
close_payload(struct mb_request *req)
{
	zmq_msg_close((zmq_msg_t *)req->payload_store);
}

static void
handle_cancel(struct mb_frontdoor *fd, const zmq_msg_t *client, const struct mb_request_hdr *h)
{
	struct mb_request probe;
	struct idx_key k;
	void *found = NULL;

	probe.client_len = (uint8_t)zmq_msg_size((zmq_msg_t *)client);
	memcpy(probe.client, zmq_msg_data((zmq_msg_t *)client), probe.client_len);
	probe.hdr.request_id = h->request_id;
	probe.hdr.tenant_id = h->tenant_id;
	k = key_of(&probe);
	if (rte_hash_lookup_data(fd->index, &k, &found) < 0 || found == NULL)
		return; /* unknown or finished: ignored */
	{
		struct mb_request *r = found;

		if (r->client_len != probe.client_len ||
		    memcmp(r->client, probe.client, probe.client_len) != 0)
			return;
		atomic_store_explicit(&r->cancel, true, memory_order_release);
		if (fd->o.ops.cancelled != NULL)
			fd->o.ops.cancelled(fd->o.ops.ctx, r);
	}
}

static void
handle(struct mb_frontdoor *fd, zmq_msg_t *parts, int n, int extra)
{
	struct mb_request_hdr h;
	struct mb_proto_error err;
	struct mb_request *req;
	char reason[MB_PROTO_REASON_MAX];
	size_t payload_size;
	enum mb_status st;
	int frames = n - 1 + extra;

	if (n < 2) { /* identity only: nothing to read an id from */
		count(fd->m_unaddressable);
		return;
	}
	if (zmq_msg_size(&parts[0]) > MB_CLIENT_ID_MAX) {
		count(fd->m_unaddressable);
		return;
	}
	if (mb_proto_decode_request(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
				    MB_TRANSPORT_ZMQ, fd->o.max_payload, &h, &err) < 0) {
		if (!err.has_id) {
			count(fd->m_unaddressable);
			return;
		}
		mb_egress_answer(fd, &parts[0], &err, err.status, err.reason);
		return;
	}
	if (frames != 2) {
		snprintf(reason, sizeof(reason),
			 "message: %d frame%s; a request is 2 frames (the 64-byte header, then the "
			 "payload, empty for a cancel)",
			 frames, frames == 1 ? "" : "s");
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	payload_size = zmq_msg_size(&parts[2]);
	if (payload_size != h.payload_len) {
		snprintf(reason, sizeof(reason),
			 "payload: the second frame has %zu bytes, but payload_len says %" PRIu32,
			 payload_size, h.payload_len);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	if (h.flags & MB_FLAG_CANCEL) {
		handle_cancel(fd, &parts[0], &h);
		return;
	}
	if (fd->ingest_closed) {
		fd->drain_refused++;
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_UNAVAILABLE,
				 "the service is shutting down; it accepts no new work");
		return;
	}
	if (fd->inflight_bytes + h.payload_len > fd->o.max_inflight_bytes) {
		snprintf(reason, sizeof(reason),
			 "%" PRIu64 " payload bytes are in flight, the limit is %" PRIu64
			 " (max_inflight_bytes); retry later",
			 fd->inflight_bytes, fd->o.max_inflight_bytes);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
		return;
	}
	req = mb_request_get(fd->pool);
	if (req == NULL) {
		snprintf(reason, sizeof(reason),
			 "%u requests are in flight, the limit (max_inflight); retry later",
			 fd->o.max_inflight);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
		return;
	}
	atomic_store_explicit(&fd->inflight, mb_request_pool_in_use(fd->pool) - fd->n_parked,
			      memory_order_relaxed);
	req->hdr = h;
	req->transport = MB_TRANSPORT_ZMQ;
	conn_add(fd, req, &parts[1]);
	req->client_len = (uint8_t)zmq_msg_size(&parts[0]);
	memcpy(req->client, zmq_msg_data(&parts[0]), req->client_len);
	zmq_msg_init((zmq_msg_t *)req->payload_store);
	zmq_msg_move((zmq_msg_t *)req->payload_store, &parts[2]);
	req->payload = zmq_msg_data((zmq_msg_t *)req->payload_store);
	req->payload_len = h.payload_len;
	req->payload_free = close_payload;
	req->arrival_ns = fd->now;
	fd->inflight_bytes += req->payload_len;

	{
		struct idx_key k = key_of(req);
		void *other = NULL;

		if (rte_hash_lookup_data(fd->index, &k, &other) >= 0) {
			mb_request_answer(req, MB_STATUS_BAD_REQUEST,
					  "request_id: %" PRIu64 " is already in flight for this "
					  "client and tenant %" PRIu32
					  "; this refuses the duplicate "
					  "only (flag DUPLICATE), the earlier request gets its own "
					  "answer",
					  h.request_id, h.tenant_id);
			req->resp.flags |= MB_RESP_FLAG_DUPLICATE;
			mb_egress_finish(fd, req);
			return;
		}
		req->indexed = rte_hash_add_key_data(fd->index, &k, req) == 0;
	}
	reason[0] = '\0';
	st = fd->o.ops.submit(fd->o.ops.ctx, req, reason, sizeof(reason));
	if (st == MB_STATUS_OK)
		return;
	mb_request_answer(req, st, "%s", reason);
	mb_egress_finish(fd, req);
}

/* Up to RECV_BURST messages from the ROUTER, each handled; returns how many (RECV_BURST:
 * more may be waiting). */
static unsigned int
receive(struct mb_frontdoor *fd)
{
	for (int budget = RECV_BURST; budget > 0; budget--) {
		zmq_msg_t parts[3];
		int n = 0, extra = 0, more;

		zmq_msg_init(&parts[0]);
		if (zmq_msg_recv(&parts[0], fd->router, ZMQ_DONTWAIT) < 0) {
			int e = zmq_errno();

			zmq_msg_close(&parts[0]);
			if (e != EAGAIN && e != EINTR)
				MB_LOG_ONCE(WARNING, "receive failed: %s", zmq_strerror(e));
			return (unsigned int)(RECV_BURST - budget);
		}
		if (budget == RECV_BURST)
			fd->last_rx_ns = fd->now;
		n = 1;
		more = zmq_msg_more(&parts[0]);
		while (more) { /* the rest of a multipart message is already here */
			zmq_msg_t part;

			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, fd->router, 0) < 0) {
				zmq_msg_close(&part);
				break;
			}
			more = zmq_msg_more(&part);
			if (n < 3) {
				zmq_msg_init(&parts[n]);
				zmq_msg_move(&parts[n++], &part);
			} else {
				extra++;
			}
			zmq_msg_close(&part);
		}
		handle(fd, parts, n, extra);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
	}
	return RECV_BURST;
}

/*
 * Cancel what the client on connection @p cfd left in flight: every request read from that
 * fd that has not started. @p ambiguous: the same fd was accepted again after this
 * disconnect, so requests read in the last epoch may be the new connection's and are kept.
 */
static void
cancel_disconnected(struct mb_frontdoor *fd, int cfd, bool ambiguous)
{
	const void *key;
	void *data;
	uint32_t it = 0;

	if ((uint32_t)cfd >= fd->n_conn || fd->conn_inflight[cfd] == 0)
		return;
	while (rte_hash_iterate(fd->index, &key, &data, &it) >= 0) {
		struct mb_request *r = data;

		if (r->conn_fd != cfd || (ambiguous && r->conn_epoch + 1 >= fd->epoch) ||
		    atomic_load_explicit(&r->cancel, memory_order_relaxed))
			continue;
		r->client_gone = true; /* counted in retire() if it is answered CANCELLED */
		atomic_store_explicit(&r->cancel, true, memory_order_release);
		if (fd->o.ops.cancelled != NULL)
			fd->o.ops.cancelled(fd->o.ops.ctx, r);
	}
}

/* Count connection @p cfd open (+1) or closed (-1), by its fd; grown on demand. Signed:
 * with several I/O threads a DISCONNECTED may be read before its ACCEPTED. */
static void
conn_open_add(struct mb_frontdoor *fd, int32_t cfd, int d)
{
	if (cfd < 0 || cfd >= (1 << 20))
		return;
	if ((uint32_t)cfd >= fd->n_open) {
		uint32_t n = fd->n_open ? fd->n_open : 64;
		int16_t *t;

		while (n <= (uint32_t)cfd)
			n *= 2;
		t = realloc(fd->conn_open, n * sizeof(*t));
		if (t == NULL)
			return; /* not watched: the drain relies on its quiet period alone */
		memset(t + fd->n_open, 0, (n - fd->n_open) * sizeof(*t));
		fd->conn_open = t;
		fd->n_open = n;
	}
	fd->conn_open[cfd] = (int16_t)(fd->conn_open[cfd] + d);
}

/*
 * Whether a requester's bytes wait in the kernel, unread by ZeroMQ, on a connection the
 * monitor says is open (FIONREAD on its socket). The drain is not quiet while they do: on
 * a starved machine ZeroMQ's I/O thread may not have read them for longer than
 * drain_quiet_ms. Drain only: a system call per connection.
 */
static bool
input_pending(const struct mb_frontdoor *fd)
{
	for (uint32_t i = 0; i < fd->n_open; i++) {
		struct stat st;
		int n = 0;

		if (fd->conn_open[i] <= 0)
			continue;
		if (fstat((int)i, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    ioctl((int)i, FIONREAD, &n) == 0 && n > 0)
			return true;
	}
	return false;
}

/*
 * Monitor events (a 6-byte frame: event id, value; then the endpoint), read in batches so
 * that each disconnect knows whether its fd was accepted again later in the same batch.
 * Called before each read of the ROUTER; each call starts a new epoch.
 */
static void
read_connections(struct mb_frontdoor *fd)
{
	enum { BATCH = 64 };
	uint16_t ev[BATCH];
	int32_t val[BATCH];
	int n;

	fd->epoch++;
	do {
		for (n = 0; n < BATCH; n++) {
			zmq_msg_t m;
			uint8_t b[6] = {0};
			int more;

			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, fd->monitor, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			memcpy(b, zmq_msg_data(&m), zmq_msg_size(&m) < 6 ? zmq_msg_size(&m) : 6);
			memcpy(&ev[n], b, 2);
			memcpy(&val[n], b + 2, 4);
			more = zmq_msg_more(&m);
			while (more) { /* the endpoint frame */
				zmq_msg_close(&m);
				zmq_msg_init(&m);
				if (zmq_msg_recv(&m, fd->monitor, 0) < 0)
					break;
				more = zmq_msg_more(&m);
			}
			zmq_msg_close(&m);
		}
		for (int i = 0; i < n; i++) {
			bool again = false;

			/* Counted signed: with several I/O threads a connection that drops at once
			 * can report DISCONNECTED before ACCEPTED; the pair still cancels out. */
			if (ev[i] == ZMQ_EVENT_ACCEPTED) {
				atomic_fetch_add_explicit(&fd->connections, 1,
							  memory_order_relaxed);
				conn_open_add(fd, val[i], 1);
				continue;
			}
			if (ev[i] != ZMQ_EVENT_DISCONNECTED)
				continue;
			atomic_fetch_sub_explicit(&fd->connections, 1, memory_order_relaxed);
			conn_open_add(fd, val[i], -1);
			for (int j = i + 1; j < n && !again; j++)
				again = ev[j] == ZMQ_EVENT_ACCEPTED && val[j] == val[i];
			cancel_disconnected(fd, val[i], again || n == BATCH);
		}
	} while (n == BATCH);
}

static void
read_subscriptions(struct mb_frontdoor *fd)
{
	for (;;) {
		zmq_msg_t m;
		const uint8_t *d;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, fd->pub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		d = zmq_msg_data(&m);
		if (zmq_msg_size(&m) >= 1 && d[0] <= 1)
			atomic_fetch_add_explicit(&fd->subscriptions, d[0] == 1 ? 1 : -1,
						  memory_order_relaxed);
		zmq_msg_close(&m);
	}
}

/*
 * The drain's last step: what clients still deliver (messages in the kernel, or in ZeroMQ's
 * I/O thread, that one empty read does not see) is read and answered UNAVAILABLE until the
 * ROUTER has been quiet for drain_quiet_ms, counted from the last message read or from
 * the moment everything accepted was answered, whichever is later. True when it has.
 */
static bool
quiet(struct mb_frontdoor *fd, uint64_t now)
{
	uint64_t since = fd->last_rx_ns > fd->done_since_ns ? fd->last_rx_ns : fd->done_since_ns;

	return now - since >= (uint64_t)fd->o.drain_quiet_ms * MB_NS_PER_MS;
}

/*
 * The ROUTER keeps listening while it drains: in libzmq 4.3, zmq_unbind() also closes every
 * connection accepted on that endpoint, with the replies still queued for them (measured:
 * it lost all 256 answers of a drain). New connections' requests are answered UNAVAILABLE
 * like any other, and /readyz says draining so that balancers stop sending.
 */
static void
close_ingest(struct mb_frontdoor *fd)
{
	fd->ingest_closed = true;
	MB_LOG(NOTICE, "draining: new requests are answered UNAVAILABLE; %u in flight",
	       mb_request_pool_in_use(fd->pool) - fd->n_parked);
	if (fd->o.ops.ingest_closed != NULL)
		fd->o.ops.ingest_closed(fd->o.ops.ctx);
}

void
mb_frontdoor_watch(struct mb_frontdoor *fd, struct mb_reactor *r)
{
	/* the ROUTER only: connection events and subscriptions are read once a millisecond
	 * while the thread works, and within max_sleep_ns when it sleeps (nothing is in flight
	 * then for a disconnect to cancel) */
	mb_reactor_watch(r, fd->router, -1);
}

/* The end of the drain: log what was done. */
static void
finish_drain(struct mb_frontdoor *fd, uint64_t now)
{
	/* Cut short (abort): what still sits in the ROUTER's queue is answered UNAVAILABLE
	 * before the socket closes, within 200 ms. */
	uint64_t until = now + 200 * MB_NS_PER_MS;

	while (fd->abort_seen_ns != 0 && receive(fd) == RECV_BURST && mb_env_now_ns() < until)
		;
	fd->finished = true;
	MB_LOG(NOTICE,
	       "front door done: %" PRIu64 " responses sent; %" PRIu64
	       " request(s) that arrived while draining answered UNAVAILABLE (the ROUTER was "
	       "read until quiet for %u ms%s)",
	       fd->sent, fd->drain_refused, fd->o.drain_quiet_ms,
	       fd->abort_seen_ns != 0 ? ", or the drain was cut short" : "");
}

int
mb_frontdoor_poll(struct mb_frontdoor *fd, uint64_t now, uint64_t *wake_at)
{
	uint64_t wake = UINT64_MAX;
	unsigned int work = 0;
	bool done;

	if (fd->finished)
		return MB_POLLER_DONE;
	fd->now = now;
	/* Connection events and subscriptions change rarely: looked at once per SLOW_NS (an
	 * empty read of a ZeroMQ socket is a system call). Disconnects are read before the
	 * requests that follow: see cancel_disconnected(). */
	if (now >= fd->next_slow_ns) {
		fd->next_slow_ns = now + SLOW_NS;
		read_connections(fd);
		read_subscriptions(fd);
		mb_egress_pub_resume(fd);
	}
	/* An empty read of the ROUTER costs two system calls inside libzmq (getpid() and a
	 * poll() of its command pipe): after a read that emptied it, the ROUTER is read again
	 * RX_BACKOFF_NS later, not every round. While the reactor sleeps it watches the
	 * socket, so nothing waits longer than that. */
	if (now >= fd->next_rx_ns) {
		unsigned int n = receive(fd);

		work += n;
		if (n < RECV_BURST)
			fd->next_rx_ns = now + RX_BACKOFF_NS;
	}
	work += mb_egress_poll(fd, now);

	if (!fd->ingest_closed && mb_cancel_is_cancelled(fd->o.drain))
		close_ingest(fd);
	if (fd->abort_seen_ns == 0 && mb_cancel_is_cancelled(fd->o.abort))
		fd->abort_seen_ns = now;
	if (fd->ingest_closed) {
		done = mb_request_pool_in_use(fd->pool) == fd->n_parked && fd->n_held == 0 &&
		       (fd->o.ops.others_done == NULL || fd->o.ops.others_done(fd->o.ops.ctx)) &&
		       mb_ring_count(fd->o.results) == 0;
		if (done && input_pending(fd)) {
			done = false;
			fd->next_rx_ns = now; /* read it as soon as ZeroMQ has */
			fd->next_slow_ns = now;
		}
		if (!done)
			fd->done_since_ns = 0;
		else if (fd->done_since_ns == 0)
			fd->done_since_ns = now; /* a whole quiet period from here, at least */
		if (done && (fd->abort_seen_ns != 0 || quiet(fd, now))) {
			finish_drain(fd, now);
			return MB_POLLER_DONE;
		}
		wake = now + 10 * MB_NS_PER_MS; /* keep checking how the drain goes */
		if (fd->pub_cut)
			fd->next_slow_ns = now;
	}
	if (fd->n_held != 0 && now + MB_NS_PER_MS < wake)
		wake = now + MB_NS_PER_MS;
	if (fd->pub_cut && fd->next_slow_ns < wake)
		wake = fd->next_slow_ns; /* resume publishing once the subscriber caught up */
	if (wake_at != NULL && wake < *wake_at)
		*wake_at = wake;
	return (int)work;
}
