/*
 * frontdoor.c: the ZeroMQ front door and egress thread (see mb_frontdoor.h).
 *
 * State owned by the thread: the two sockets, the request pool, the in-flight index (an
 * rte_hash keyed by client, tenant and request id, single-threaded), the list of replies
 * held because a requester's queue was full, and the payload bytes in flight. The loop:
 * receive a burst of requests, send a burst of answers, retry held replies, watch the
 * shutdown tokens, then wait in zmq_poll() on both sockets and the results doorbell.
 */
#include "mb_frontdoor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <zmq.h>

#include "mb_env.h"

#define MB_LOG_MODULE "frontdoor"
#include "mb_log.h"
#include "mb_tsan.h"

#define RECV_BURST 256
#define SEND_BURST 64
#define RESULTS_BUDGET 1024
/* Connection events and subscriptions are read this often. */
#define SLOW_NS (1 * MB_NS_PER_MS)
#define PUB_GENS 256
#define TOPIC_SLOTS 256

/*
 * Publications not yet freed by libzmq, by generation. Its own allocation, shared with the
 * publications' free callbacks (refs: the front door's plus one per publication), because
 * libzmq may free the last ones after the front door is gone (zmq_ctx_term()).
 */
struct pub_gens {
	atomic_uint refs;
	atomic_uint out[PUB_GENS];
};

static void
put_gens(struct pub_gens *g)
{
	if (g != NULL && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		free(g);
}

struct idx_key {
	uint64_t client_hash;
	uint64_t request_id;
	uint32_t tenant;
	uint32_t pad;
};

enum emit_result { EMIT_SENT, EMIT_HELD };

struct mb_frontdoor {
	struct mb_frontdoor_opts o;
	char ingest[256], publish[256];
	char bound[2][256];
	void *router, *pub;
	void *monitor; /* PAIR: the ROUTER's connection events (accepted, disconnected) */
	struct mb_request_pool *pool;
	struct rte_hash *index;
	uint64_t inflight_bytes;
	atomic_uint inflight;
	uint32_t n_parked; /* answered, kept for a hung run() (MB_REQ_PARKED) */
	struct mb_request_list held;
	uint32_t n_held;
	bool ingest_closed;
	uint64_t abort_seen_ns;
	_Atomic int64_t subscriptions; /* written here, read by the HTTP thread */
	_Atomic int64_t connections;   /* requester connections open on the ROUTER (same) */
	uint64_t sent;		       /* for the exit log; this thread only */
	uint64_t drain_refused;	       /* answered UNAVAILABLE while draining (exit log) */
	uint64_t last_rx_ns;	       /* the last message read from the ROUTER */
	uint64_t now;		       /* the reactor round's time */
	uint64_t next_slow_ns;	       /* when to read connections and subscriptions */
	bool finished;		       /* the drain is over */
	uint64_t done_since_ns;	       /* draining, and all answered since (0: not yet) */
	/*
	 * Requests in flight per connection (by the fd ZeroMQ read them from, ZMQ_SRCFD), so
	 * that a connection's DISCONNECTED event cancels what its client left behind. Grown
	 * on demand; fds are small and dense. The epoch counts monitor reads: a request read
	 * in the epoch just before a disconnect may come from a new connection on the same fd.
	 */
	uint32_t *conn_inflight;
	uint32_t n_conn;
	uint64_t epoch;
	/*
	 * PUB: whether a subscriber is cut off (see publish()). Each publication's header frame
	 * is counted in pub_out[gen % PUB_GENS] until libzmq frees it (an I/O thread, after
	 * every subscriber that got it has taken it); gen moves on at each cut-off.
	 */
	bool pub_cut;
	uint32_t pub_gen;
	struct pub_gens *gens;
	struct mb_metric *m_unaddressable, *m_pub_dropped, *m_client_gone, *m_abort_dropped;
	struct mb_metric *m_pub_cutoffs;
	struct mb_metric *m_disconnect_cancelled;
	/* PUB topics by tenant and model, formatted once (topic_of()) */
	struct topic_slot {
		bool used;
		uint32_t tenant;
		int len;
		char model[MB_PROTO_MODEL_LEN + 1];
		char topic[12 + MB_PROTO_MODEL_LEN + 1];
	} topics[TOPIC_SLOTS];
};

static void
count(struct mb_metric *m)
{
	if (m != NULL)
		mb_metric_add(m, 1);
}

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
set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

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
	TAILQ_INIT(&fd->held);
	fd->gens = calloc(1, sizeof(*fd->gens));
	if (fd->gens == NULL)
		goto oom;
	atomic_init(&fd->gens->refs, 1);
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
	struct mb_request *r;

	if (fdp == NULL || *fdp == NULL)
		return;
	fd = *fdp;
	while ((r = TAILQ_FIRST(&fd->held)) != NULL) { /* only if the thread never ran */
		TAILQ_REMOVE(&fd->held, r, link);
		mb_request_put(fd->pool, r);
	}
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
	put_gens(fd->gens); /* freed here, or by libzmq's last free of a publication */
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

/* ---- sending ---- */

static void
free_result(void *data, void *hint)
{
	(void)hint;
	MB_TSAN_ACQUIRE(data); /* released in payload_msg(), handed over inside libzmq */
	free(data);
}

/* The result (or reason) frame of @req as a message; the result buffer moves into it. */
static void
payload_msg(struct mb_request *req, zmq_msg_t *m)
{
	if (req->resp.status == MB_STATUS_OK && req->result != NULL && req->result_len != 0) {
		MB_TSAN_RELEASE(req->result);
		if (zmq_msg_init_data(m, req->result, req->result_len, free_result, NULL) == 0) {
			req->result = NULL; /* ZeroMQ owns it now */
			return;
		}
	}
	if (req->resp.status != MB_STATUS_OK) {
		size_t n = strlen(req->reason);

		zmq_msg_init_size(m, n);
		memcpy(zmq_msg_data(m), req->reason, n);
		return;
	}
	zmq_msg_init(m);
}

/* The header frame of a publication, counted in its generation until libzmq frees it. */
struct pub_tag {
	uint8_t hdr[MB_PROTO_HDR_LEN];
	struct pub_gens *gens;
	uint32_t gen;
};

static void
free_pub_tag(void *data, void *hint)
{
	struct pub_tag *t = hint;

	(void)data;
	MB_TSAN_ACQUIRE(t); /* released in publish(), handed over inside libzmq */
	atomic_fetch_sub_explicit(&t->gens->out[t->gen], 1, memory_order_release);
	put_gens(t->gens);
	free(t);
}

/*
 * Whether every publication of the generations before the current one has been freed:
 * every subscriber cut off since has taken what it had queued before (libzmq resumes a
 * cut-off subscriber once it has read half its queue, and sends it nothing before).
 */
static bool
pub_caught_up(struct mb_frontdoor *fd)
{
	for (uint32_t g = 0; g < PUB_GENS; g++)
		if (g != fd->pub_gen % PUB_GENS &&
		    atomic_load_explicit(&fd->gens->out[g], memory_order_acquire) != 0)
			return false;
	return true;
}

/*
 * Publish one response: topic, header, payload. ZeroMQ's XPUB, asked not to drop
 * (ZMQ_XPUB_NODROP), refuses a message when a matching subscriber's queue is full; we then
 * send it to the others (PUB's rule: a slow subscriber must not hold the rest) and libzmq
 * cuts that subscriber off: it gets nothing, and no further send reports it, until it has
 * read half of what it had queued. Counting only the refused sends counted 2 of a million
 * misses. So from a cut-off on, every publication counts as dropped until everything
 * published before the cut-off has been freed by libzmq (the cut-off subscriber has taken
 * its backlog). Exact for a subscriber that stops reading; for one that reads slowly it
 * may count up to half its queue that it did receive, and publications of topics it does
 * not subscribe to (libzmq does not say which subscriber was cut off).
 */
/*
 * The topic "<tenant>/<model>" of @p h, formatted once per tenant and model: a
 * direct-mapped cache of TOPIC_SLOTS, keyed by tenant and model name (a miss formats it).
 */
static const char *
topic_of(struct mb_frontdoor *fd, const struct mb_request_hdr *h, int *len)
{
	uint32_t hash = rte_hash_crc(h->model, sizeof(h->model), h->tenant_id);
	struct topic_slot *t = &fd->topics[hash % TOPIC_SLOTS];

	if (!t->used || t->tenant != h->tenant_id ||
	    memcmp(t->model, h->model, sizeof(t->model)) != 0) {
		t->used = true;
		t->tenant = h->tenant_id;
		memcpy(t->model, h->model, sizeof(t->model));
		t->len = snprintf(t->topic, sizeof(t->topic), "%" PRIu32 "/%s", h->tenant_id,
				  h->model);
	}
	*len = t->len;
	return t->topic;
}

static void
publish(struct mb_frontdoor *fd, const uint8_t *hdr, zmq_msg_t *payload,
	const struct mb_request *req)
{
	int n;
	const char *topic = topic_of(fd, &req->hdr, &n);
	bool dropped = fd->pub_cut;
	struct pub_tag *t = NULL;
	zmq_msg_t hm;

	if (zmq_send(fd->pub, topic, (size_t)n, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
		if (zmq_errno() != EAGAIN) {
			MB_LOG_ONCE(WARNING, "publish failed: %s", zmq_strerror(zmq_errno()));
			zmq_msg_close(payload);
			return;
		}
		/* A matching subscriber is full: a new cut-off (a generation of its own, when
		 * its slot is free), then send to the others. */
		count(fd->m_pub_cutoffs);
		if (atomic_load_explicit(&fd->gens->out[(fd->pub_gen + 1) % PUB_GENS],
					 memory_order_acquire) == 0)
			fd->pub_gen++;
		fd->pub_cut = dropped = true;
		set_int(fd->pub, ZMQ_XPUB_NODROP, 0);
		n = zmq_send(fd->pub, topic, (size_t)n, ZMQ_DONTWAIT | ZMQ_SNDMORE);
		set_int(fd->pub, ZMQ_XPUB_NODROP, 1);
		if (n < 0) {
			count(fd->m_pub_dropped);
			zmq_msg_close(payload);
			return;
		}
	}
	if (dropped)
		count(fd->m_pub_dropped);
	if (atomic_load_explicit(&fd->subscriptions, memory_order_relaxed) > 0)
		t = malloc(sizeof(*t));
	if (t != NULL) {
		memcpy(t->hdr, hdr, MB_PROTO_HDR_LEN);
		t->gens = fd->gens;
		t->gen = fd->pub_gen % PUB_GENS;
		atomic_fetch_add_explicit(&t->gens->refs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->gens->out[t->gen], 1, memory_order_relaxed);
		MB_TSAN_RELEASE(t);
		if (zmq_msg_init_data(&hm, t->hdr, MB_PROTO_HDR_LEN, free_pub_tag, t) != 0) {
			free_pub_tag(t->hdr, t);
			t = NULL;
		}
	}
	if (t != NULL) {
		if (zmq_msg_send(&hm, fd->pub, ZMQ_SNDMORE) < 0)
			zmq_msg_close(&hm);
	} else {
		zmq_send(fd->pub, hdr, MB_PROTO_HDR_LEN, ZMQ_SNDMORE);
	}
	if (zmq_msg_send(payload, fd->pub, 0) < 0)
		zmq_msg_close(payload);
}

/* Send @req's response to its client and publish it. EMIT_HELD: the client's queue is full
 * and nothing was sent (retry later). */
static enum emit_result
emit(struct mb_frontdoor *fd, struct mb_request *req)
{
	uint8_t hdr[MB_PROTO_HDR_LEN];
	zmq_msg_t to_client, to_pub;
	bool routed = false;

	if (req->transport == MB_TRANSPORT_ZMQ && req->client_len != 0) {
		if (zmq_send(fd->router, req->client, req->client_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) <
		    0) {
			int e = zmq_errno();

			if (e == EAGAIN)
				return EMIT_HELD;
			if (e != EHOSTUNREACH)
				MB_LOG_ONCE(WARNING, "reply failed: %s", zmq_strerror(e));
			count(fd->m_client_gone);
		} else {
			routed = true;
		}
	}
	mb_proto_encode_response(&req->resp, hdr);
	payload_msg(req, &to_client);
	zmq_msg_init(&to_pub);
	zmq_msg_copy(&to_pub, &to_client); /* shares the buffer */
	if (routed) {
		zmq_send(fd->router, hdr, sizeof(hdr), ZMQ_SNDMORE);
		if (zmq_msg_send(&to_client, fd->router, 0) < 0)
			zmq_msg_close(&to_client);
	} else {
		zmq_msg_close(&to_client);
	}
	publish(fd, hdr, &to_pub, req);
	return EMIT_SENT;
}

static struct idx_key
key_of(const struct mb_request *r)
{
	struct idx_key k = {
		.client_hash = mb_request_client_hash(r->client, r->client_len),
		.request_id = r->hdr.request_id,
		.tenant = r->hdr.tenant_id,
	};
	return k;
}

/* The response left: unindex, account, recycle. */
static void
retire(struct mb_frontdoor *fd, struct mb_request *req)
{
	if (req->release != NULL) { /* another ingest's request (UDP): hand it back */
		if (req->done_ns == 0)
			req->done_ns = fd->now;
		if (fd->o.ops.sent != NULL)
			fd->o.ops.sent(fd->o.ops.ctx, req);
		fd->sent++;
		free(req->result);
		req->result = NULL;
		req->release(req);
		return;
	}
	if (req->indexed) {
		struct idx_key k = key_of(req);

		rte_hash_del_key(fd->index, &k);
	}
	if (req->conn_fd >= 0 && (uint32_t)req->conn_fd < fd->n_conn)
		fd->conn_inflight[req->conn_fd]--;
	if (req->client_gone && req->resp.status == MB_STATUS_CANCELLED)
		count(fd->m_disconnect_cancelled);
	if (req->done_ns == 0)
		req->done_ns = fd->now;
	if (fd->o.ops.sent != NULL)
		fd->o.ops.sent(fd->o.ops.ctx, req);
	fd->sent++;
	if (req->abandoned == MB_REQ_PARKED) {
		/* answered, but a hung run() may still read its payload: kept until that run
		 * returns and hands it back (reclaim()) */
		req->indexed = false;
		fd->n_parked++;
	} else {
		fd->inflight_bytes -= req->payload_len;
		mb_request_put(fd->pool, req);
	}
	atomic_store_explicit(&fd->inflight, mb_request_pool_in_use(fd->pool) - fd->n_parked,
			      memory_order_relaxed);
}

/* A parked request's hung run() returned: recycle it (its answer left long ago). */
static void
reclaim(struct mb_frontdoor *fd, struct mb_request *req)
{
	fd->n_parked--;
	fd->inflight_bytes -= req->payload_len;
	mb_request_put(fd->pool, req);
}

static void
finish(struct mb_frontdoor *fd, struct mb_request *req)
{
	if (emit(fd, req) == EMIT_HELD) {
		TAILQ_INSERT_TAIL(&fd->held, req, link);
		fd->n_held++;
		return;
	}
	retire(fd, req);
}

static void
retry_held(struct mb_frontdoor *fd, uint64_t now)
{
	struct mb_request *r, *next;
	bool give_up = fd->abort_seen_ns != 0 &&
		       now - fd->abort_seen_ns >= (uint64_t)fd->o.abort_grace_ms * MB_NS_PER_MS;

	for (r = TAILQ_FIRST(&fd->held); r != NULL; r = next) {
		next = TAILQ_NEXT(r, link);
		if (emit(fd, r) == EMIT_HELD) {
			if (!give_up)
				continue;
			count(fd->m_abort_dropped);
			MB_LOG_ONCE(WARNING,
				    "shutdown: dropping replies that requesters do not read");
			r->client_len = 0; /* publish only */
			emit(fd, r);
		}
		TAILQ_REMOVE(&fd->held, r, link);
		fd->n_held--;
		retire(fd, r);
	}
}

/* An answer to a message that never became a request (no pool object): sent once, and if
 * the requester's queue is full it is dropped, as the request was never accepted. */
static void
answer_now(struct mb_frontdoor *fd, const zmq_msg_t *client, const struct mb_proto_error *err,
	   enum mb_status status, const char *reason)
{
	static struct mb_request tmp; /* front door thread only */

	memset(&tmp, 0, sizeof(tmp));
	tmp.hdr.request_id = err->request_id;
	tmp.hdr.tenant_id = err->tenant_id;
	memcpy(tmp.hdr.model, err->model, sizeof(tmp.hdr.model));
	tmp.transport = MB_TRANSPORT_ZMQ;
	tmp.model = MB_REQUEST_NO_MODEL;
	tmp.client_len = (uint8_t)zmq_msg_size((zmq_msg_t *)client);
	memcpy(tmp.client, zmq_msg_data((zmq_msg_t *)client), tmp.client_len);
	tmp.arrival_ns = fd->now;
	mb_request_answer(&tmp, status, "%s", reason);
	if (emit(fd, &tmp) == EMIT_HELD) {
		tmp.client_len = 0;
		emit(fd, &tmp);
	}
	fd->sent++;
	if (fd->o.ops.sent != NULL)
		fd->o.ops.sent(fd->o.ops.ctx, &tmp);
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
		answer_now(fd, &parts[0], &err, err.status, err.reason);
		return;
	}
	if (frames != 2) {
		snprintf(reason, sizeof(reason),
			 "message: %d frame%s; a request is 2 frames (the 64-byte header, then the "
			 "payload, empty for a cancel)",
			 frames, frames == 1 ? "" : "s");
		answer_now(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	payload_size = zmq_msg_size(&parts[2]);
	if (payload_size != h.payload_len) {
		snprintf(reason, sizeof(reason),
			 "payload: the second frame has %zu bytes, but payload_len says %" PRIu32,
			 payload_size, h.payload_len);
		answer_now(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	if (h.flags & MB_FLAG_CANCEL) {
		handle_cancel(fd, &parts[0], &h);
		return;
	}
	if (fd->ingest_closed) {
		fd->drain_refused++;
		answer_now(fd, &parts[0], &err, MB_STATUS_UNAVAILABLE,
			   "the service is shutting down; it accepts no new work");
		return;
	}
	if (fd->inflight_bytes + h.payload_len > fd->o.max_inflight_bytes) {
		snprintf(reason, sizeof(reason),
			 "%" PRIu64 " payload bytes are in flight, the limit is %" PRIu64
			 " (max_inflight_bytes); retry later",
			 fd->inflight_bytes, fd->o.max_inflight_bytes);
		answer_now(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
		return;
	}
	req = mb_request_get(fd->pool);
	if (req == NULL) {
		snprintf(reason, sizeof(reason),
			 "%u requests are in flight, the limit (max_inflight); retry later",
			 fd->o.max_inflight);
		answer_now(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
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
			finish(fd, req);
			return;
		}
		req->indexed = rte_hash_add_key_data(fd->index, &k, req) == 0;
	}
	reason[0] = '\0';
	st = fd->o.ops.submit(fd->o.ops.ctx, req, reason, sizeof(reason));
	if (st == MB_STATUS_OK)
		return;
	mb_request_answer(req, st, "%s", reason);
	finish(fd, req);
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
				continue;
			}
			if (ev[i] != ZMQ_EVENT_DISCONNECTED)
				continue;
			atomic_fetch_sub_explicit(&fd->connections, 1, memory_order_relaxed);
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

/* Answered requests from the results ring, sent in bursts; returns how many. At most
 * RESULTS_BUDGET per call, so that the front door's receive gets its turn. */
static unsigned int
send_results(struct mb_frontdoor *fd)
{
	void *objs[SEND_BURST];
	unsigned int n, total = 0;

	while (total < RESULTS_BUDGET &&
	       (n = mb_ring_dequeue_burst(fd->o.results, objs, SEND_BURST)) != 0) {
		for (unsigned int i = 0; i < n; i++)
			if (MB_REQ_IS_RECLAIM(objs[i]))
				reclaim(fd, MB_REQ_UNTAG(objs[i]));
			else
				finish(fd, objs[i]);
		total += n;
	}
	return total;
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
	mb_reactor_watch(r, fd->router, -1);
	mb_reactor_watch(r, fd->pub, -1);
	mb_reactor_watch(r, fd->monitor, -1);
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
		if (fd->pub_cut && pub_caught_up(fd))
			fd->pub_cut = false;
	}
	work += receive(fd);
	work += send_results(fd);
	if (fd->n_held != 0)
		retry_held(fd, now);

	if (!fd->ingest_closed && mb_cancel_is_cancelled(fd->o.drain))
		close_ingest(fd);
	if (fd->abort_seen_ns == 0 && mb_cancel_is_cancelled(fd->o.abort))
		fd->abort_seen_ns = now;
	if (fd->ingest_closed) {
		done = mb_request_pool_in_use(fd->pool) == fd->n_parked && fd->n_held == 0 &&
		       (fd->o.ops.others_done == NULL || fd->o.ops.others_done(fd->o.ops.ctx)) &&
		       mb_ring_count(fd->o.results) == 0;
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
