/**
 * @file
 * The front door's state, shared by its two halves: frontdoor.c (receiving: validation, the
 * in-flight index, cancels, connections, subscriptions, the drain) and egress.c (sending:
 * replies on the ROUTER, held replies, publications on the PUB). Private to net/: included
 * by those two files only, never installed.
 *
 * One struct for both because both halves run on one thread, the front door's: a ZeroMQ
 * socket belongs to one thread, and the ROUTER carries both the requests and their replies.
 * Only the atomic fields are read by other threads.
 */
#ifndef MB_FRONTDOOR_INTERNAL_H
#define MB_FRONTDOOR_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "mb_frontdoor.h"

#define TOPIC_SLOTS 256

struct pub_gens; /* egress.c */
struct sub_book; /* frontdoor.c */

/* The in-flight index's key: client (hashed), tenant and request id. */
struct idx_key {
	uint64_t client_hash;
	uint64_t request_id;
	uint32_t tenant;
	uint32_t pad;
};

/*
 * Requests in flight per key (a client, or a tenant): open addressing, linear probing,
 * backward-shift deletion; a key is present while its count is above 0, so at most
 * max_inflight keys at once in a table of twice that (rounded up to a power of 2).
 */
struct share_table {
	struct share_slot {
		uint64_t key; /* 0: empty */
		uint32_t n;
	} * slot;
	uint64_t mask;
};

uint32_t mb_fd_share_get(const struct share_table *t, uint64_t key);
void mb_fd_share_add(struct share_table *t, uint64_t key, int d);

#define CUT_WAIT UINT64_MAX

/* Egress: a request of connection @p cfd retired; cut the connection if it is doomed. */
void mb_fd_conn_retired(struct mb_frontdoor *fd, int cfd);

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
	uint32_t n_parked;	     /* answered, kept for a hung run() (MB_REQ_PARKED) */
	struct mb_request_list held; /* egress: replies a requester's full queue holds back */
	uint32_t n_held;
	uint32_t n_held_refusals; /* of those, the front door's own answers (malloc'd) */
	bool ingest_closed;
	uint64_t abort_seen_ns;
	_Atomic int64_t subscriptions; /* written in frontdoor.c, read by the HTTP thread */
	_Atomic int64_t connections;   /* requester connections open on the ROUTER (same) */
	uint64_t sent;		       /* for the exit log; this thread only */
	uint64_t drain_refused;	       /* answered UNAVAILABLE while draining (exit log) */
	uint64_t unread_dropped;       /* replies dropped unread after a hard stop (exit log) */
	uint64_t last_rx_ns;	       /* the last message read from the ROUTER */
	uint64_t now;		       /* the reactor round's time */
	uint64_t next_slow_ns;	       /* when to read connections and subscriptions */
	uint64_t next_rx_ns;	       /* when to read the ROUTER again after it was empty */
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
	/* connections open by fd (monitor events, signed): the drain looks for unread input */
	int16_t *conn_open;
	uint32_t n_open;
	uint64_t epoch;
	/*
	 * Egress, PUB: whether a subscriber is cut off (see publish() in egress.c). Each
	 * publication's header frame is counted in pub_out[gen % PUB_GENS] until libzmq frees it
	 * (an I/O thread, after every subscriber that got it has taken it); gen moves on at each
	 * cut-off.
	 */
	bool pub_cut;
	uint32_t pub_gen;
	struct pub_gens *gens;
	/* Security (CURVE): the allow-list in force and the next one (a reload) */
	struct mb_auth *auth;
	_Atomic(struct mb_auth *) auth_next;
	void *zap;	       /* REP on inproc://zeromq.zap.01: the handshakes' ZAP requests */
	void *pub_monitor;     /* PAIR: the PUB's disconnects (CURVE only) */
	uint64_t *conn_client; /* ROUTER: per fd, the client id its requests carried (0) */
	/* ROUTER, plaintext: per fd, the hash of the routing id its messages carry (0: none
	 * yet); a second fd under the same one took it over (note_routing_id()) */
	uint64_t *conn_rid;
	uint32_t n_rid;
	/* ROUTER: per fd, when to cut it: 0 never, CUT_WAIT once its requests are answered
	 * (then a short delay, for its last replies to leave libzmq's queue), else a time */
	uint64_t *conn_cut;
	bool cut_pending; /* some conn_cut holds a time */
	uint32_t n_client;
	/* PUB, with CURVE: per subscriber connection (fd) its client id and the topics applied
	 * for it, and per topic how many hold it (frontdoor.c, "the subscriptions in effect") */
	struct sub_book *subs;
	struct share_table client_shares, tenant_shares;
	struct mb_metric *m_auth_refused[6], *m_handshakes[3], *m_cutoffs, *m_share_refused[2];
	struct mb_metric *m_handshake_failed;
	/* Registered by mb_frontdoor_create(); counted by both halves. */
	struct mb_metric *m_unaddressable, *m_bad_cancel, *m_pub_dropped, *m_client_gone,
		*m_abort_dropped, *m_refusals_dropped;
	struct mb_metric *m_pub_cutoffs;
	struct mb_metric *m_disconnect_cancelled;
	/* Egress: PUB topics by tenant and model, formatted once (topic_of()) */
	struct topic_slot {
		bool used;
		uint32_t tenant;
		int len;
		char model[MB_PROTO_MODEL_LEN + 1];
		char topic[12 + MB_PROTO_MODEL_LEN + 1];
	} topics[TOPIC_SLOTS];
};

static inline void
count(struct mb_metric *m)
{
	if (m != NULL)
		mb_metric_add(m, 1);
}

static inline int
set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

static inline struct idx_key
key_of(const struct mb_request *r)
{
	struct idx_key k = {
		.client_hash = mb_request_client_hash(r->client, r->client_len),
		.request_id = r->hdr.request_id,
		.tenant = r->hdr.tenant_id,
	};
	return k;
}

#endif /* MB_FRONTDOOR_INTERNAL_H */
