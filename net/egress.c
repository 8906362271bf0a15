/*
 * egress.c: the sending half of the ZeroMQ front door (see mb_egress.h): answered requests
 * from the results ring to their clients on the ROUTER, and to subscribers on the PUB.
 *
 * State, in the front door's struct (frontdoor_internal.h), used on the front door's thread
 * only: the list of replies held because a requester's queue was full, the PUB's cut-off
 * and its publications counted by generation, and the topic cache. Sending a response
 * retires its request: unindexed, its payload bytes no longer counted, recycled into the
 * pool that frontdoor.c fills. The round (mb_egress_poll()): send a burst of answers, then
 * retry held replies.
 */
#include "mb_egress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <zmq.h>

#include "frontdoor_internal.h"
#include "mb_env.h"

/* Logs as the front door: egress is its sending half, and the log texts stay as they were. */
#define MB_LOG_MODULE "frontdoor"
#include "mb_log.h"
#include "mb_tsan.h"

#define SEND_BURST 64
#define RESULTS_BUDGET 1024
#define PUB_GENS 256

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

enum emit_result { EMIT_SENT, EMIT_HELD };

/* ---- setup and teardown ---- */

int
mb_egress_init(struct mb_frontdoor *fd)
{
	TAILQ_INIT(&fd->held);
	fd->gens = calloc(1, sizeof(*fd->gens));
	if (fd->gens == NULL)
		return -ENOMEM;
	atomic_init(&fd->gens->refs, 1);
	return 0;
}

/* A held answer of the front door's own (mb_egress_answer()): malloc'd, freed once sent. */
static void
free_refusal(struct mb_request *r)
{
	free(r);
}

void
mb_egress_fini(struct mb_frontdoor *fd)
{
	struct mb_request *r;

	while ((r = TAILQ_FIRST(&fd->held)) != NULL) { /* only if the thread never ran */
		TAILQ_REMOVE(&fd->held, r, link);
		if (r->release == free_refusal)
			free(r);
		else
			mb_request_put(fd->pool, r);
	}
	put_gens(fd->gens); /* freed here, or by libzmq's last free of a publication */
	fd->gens = NULL;
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
	bool routed = false, pub;

	if (req->transport == MB_TRANSPORT_ZMQ && req->client_len != 0) {
		/* The connection it came from closed: not routed, since its routing id may name
		 * another connection by now (a client that reconnected under the same client_id
		 * got the old connection's answers, CANCELLED ones and ids it reused). Counted as
		 * the EHOSTUNREACH below would be. */
		if (req->client_gone) {
			if (req->resp.status != MB_STATUS_CANCELLED)
				count(fd->m_client_gone);
		} else if (zmq_send(fd->router, req->client, req->client_len,
				    ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
			int e = zmq_errno();

			if (e == EAGAIN)
				return EMIT_HELD;
			if (e != EHOSTUNREACH)
				MB_LOG_ONCE(WARNING, "reply failed: %s", zmq_strerror(e));
			/* a request cancelled for its closed connection is counted in
			 * disconnect_cancelled (retire()), not as a lost reply as well */
			if (!(req->client_gone && req->resp.status == MB_STATUS_CANCELLED))
				count(fd->m_client_gone);
		} else {
			routed = true;
		}
	}
	mb_proto_encode_response(&req->resp, hdr);
	payload_msg(req, &to_client);
	/* Nobody subscribed (as of the last read of the PUB's subscriptions, at most SLOW_NS
	 * ago): libzmq would match the topic against nothing and drop the three frames;
	 * skipping them saves a header's malloc and three sends per answer. */
	pub = atomic_load_explicit(&fd->subscriptions, memory_order_relaxed) > 0;
	if (pub) {
		zmq_msg_init(&to_pub);
		zmq_msg_copy(&to_pub, &to_client); /* shares the buffer */
	}
	if (routed) {
		zmq_send(fd->router, hdr, sizeof(hdr), ZMQ_SNDMORE);
		if (zmq_msg_send(&to_client, fd->router, 0) < 0)
			zmq_msg_close(&to_client);
	} else {
		zmq_msg_close(&to_client);
	}
	if (pub)
		publish(fd, hdr, &to_pub, req);
	return EMIT_SENT;
}

/* The response left: unindex, account, recycle. */
static void
retire(struct mb_frontdoor *fd, struct mb_request *req)
{
	if (req->release != NULL) { /* another ingest's request (UDP), or a held refusal */
		if (req->release == free_refusal)
			fd->n_held_refusals--;
		if (req->done_ns == 0)
			req->done_ns = fd->now;
		req->sent_ns = fd->now;
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
	if (req->share_key != 0) {
		mb_fd_share_add(&fd->client_shares, req->share_key, -1);
		mb_fd_share_add(&fd->tenant_shares, (uint64_t)req->hdr.tenant_id + 1, -1);
	}
	if (fd->conn_cut != NULL)
		mb_fd_conn_retired(fd, req->conn_fd);
	if (req->client_gone && req->resp.status == MB_STATUS_CANCELLED)
		count(fd->m_disconnect_cancelled);
	if (req->done_ns == 0)
		req->done_ns = fd->now;
	req->sent_ns = fd->now;
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
	if (req->join != NULL) { /* a window: its parent, once its last parked window is back */
		req = req->join->reclaim(req);
		if (req == NULL)
			return;
	}
	fd->n_parked--;
	fd->inflight_bytes -= req->payload_len;
	mb_request_put(fd->pool, req);
}

void
mb_egress_finish(struct mb_frontdoor *fd, struct mb_request *req)
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
	/* Requesters found full in this pass: their other replies are not tried again until
	 * the next (each try is a zmq_send; a requester that stopped reading with 1,830
	 * replies held cost 16% of a core in tries, every poll round). Past FULL_MAX of them,
	 * the others' replies are tried one by one as before. */
	enum { FULL_MAX = 16 };
	const struct mb_request *full[FULL_MAX];
	unsigned int n_full = 0;
	struct mb_request *r, *next;
	bool give_up = fd->abort_seen_ns != 0 &&
		       now - fd->abort_seen_ns >= (uint64_t)fd->o.abort_grace_ms * MB_NS_PER_MS;

	for (r = TAILQ_FIRST(&fd->held); r != NULL; r = next) {
		bool skip = false;

		next = TAILQ_NEXT(r, link);
		for (unsigned int i = 0; !give_up && i < n_full && !skip; i++)
			skip = full[i]->client_len == r->client_len &&
			       memcmp(full[i]->client, r->client, r->client_len) == 0;
		if (skip)
			continue;
		if (emit(fd, r) == EMIT_HELD) {
			if (!give_up) {
				if (n_full < FULL_MAX)
					full[n_full++] = r;
				continue;
			}
			count(fd->m_abort_dropped);
			fd->unread_dropped++;
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

void
mb_egress_answer(struct mb_frontdoor *fd, const zmq_msg_t *client, const struct mb_proto_error *err,
		 enum mb_status status, const char *reason)
{
	mb_egress_answer_flags(fd, client, err, status, 0, reason);
}

void
mb_egress_answer_flags(struct mb_frontdoor *fd, const zmq_msg_t *client,
		       const struct mb_proto_error *err, enum mb_status status, uint16_t flags,
		       const char *reason)
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
	tmp.resp.flags |= flags;
	if (emit(fd, &tmp) == EMIT_HELD) {
		/* The requester's queue is full: held as a reply is, and sent in its turn once
		 * it reads (a copy: retire() frees it, counts it sent). At most max_inflight of
		 * them (a requester that never reads and keeps sending would grow the list
		 * without end): past that, published only, and counted. */
		struct mb_request *r =
			fd->n_held_refusals < fd->o.max_inflight ? malloc(sizeof(*r)) : NULL;

		if (r != NULL) {
			*r = tmp;
			r->release = free_refusal;
			TAILQ_INSERT_TAIL(&fd->held, r, link);
			fd->n_held++;
			fd->n_held_refusals++;
			return;
		}
		count(fd->m_refusals_dropped);
		MB_LOG_ONCE(WARNING,
			    "a requester that does not read its replies has %u refusals held: "
			    "further ones to it are published only "
			    "(mediabatch_reply_dropped_total{reason=\"refusals_unread\"})",
			    fd->n_held_refusals);
		tmp.client_len = 0;
		emit(fd, &tmp);
	}
	fd->sent++;
	if (fd->o.ops.sent != NULL)
		fd->o.ops.sent(fd->o.ops.ctx, &tmp);
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
		/* one clock read per burst: the round's time may be older than the worker's
		 * end of compute (the egress stage of mediabatch_stage_seconds) */
		fd->now = mb_env_now_ns();
		for (unsigned int i = 0; i < n; i++)
			if (MB_REQ_IS_RECLAIM(objs[i]))
				reclaim(fd, MB_REQ_UNTAG(objs[i]));
			else
				mb_egress_finish(fd, objs[i]);
		total += n;
	}
	return total;
}

unsigned int
mb_egress_poll(struct mb_frontdoor *fd, uint64_t now)
{
	unsigned int work;

	fd->now = now;
	work = send_results(fd);
	if (fd->n_held != 0)
		retry_held(fd, now);
	return work;
}

void
mb_egress_pub_resume(struct mb_frontdoor *fd)
{
	if (fd->pub_cut && pub_caught_up(fd))
		fd->pub_cut = false;
}
