/**
 * @file
 * The ZeroMQ front door and egress: one thread that owns the ROUTER socket (requests in,
 * replies out) and the PUB socket (every terminal response, topic "<tenant>/<model>").
 *
 * One thread, because a ZeroMQ socket belongs to one thread and the ROUTER carries both the
 * requests and their replies; its loop polls the two sockets and the results ring's doorbell.
 *
 * In: each ROUTER message is checked against docs/protocol.md (shape, header, payload
 * length). A message too broken to answer (no request id) is counted and dropped; any other
 * fault is answered BAD_REQUEST or TOO_LARGE at once. A valid request gets a request object
 * (from a fixed pool: max_inflight; beyond it, or beyond max_inflight_bytes of payload,
 * OVERLOADED) holding the ZeroMQ payload without a copy, enters the in-flight index (a
 * second request with the same id from the same client and tenant is refused), and is
 * handed to ops.submit(), which queues it or refuses it with a status. A CANCEL message
 * flags the matching in-flight request (same client, tenant, id) and calls ops.cancelled();
 * an unknown one is ignored. Either way a cancel gets no response of its own.
 *
 * Out (egress, mb_egress.h): answered requests come back on the results ring, of this and
 * of other ingest paths (UDP). Each is sent to its client on the ROUTER (a full send queue
 * holds the reply for a retry, never drops it), then published on the PUB, where a
 * subscriber whose queue is full misses it and the miss is counted. mb_egress.h has the
 * details and the metrics.
 *
 * Shutdown: once @c drain is cancelled, new requests are answered UNAVAILABLE (the ROUTER
 * keeps listening: in libzmq 4.3 unbinding closes the accepted connections too), ingest is closed
 * (ops.ingest_closed()), and the thread keeps sending until every accepted request has been
 * answered and sent; then it reads the ROUTER until it has been quiet for drain_quiet_ms (messages
 * may still be in the kernel or in ZeroMQ's I/O thread), answering each UNAVAILABLE, and returns.
 * Once @c abort is cancelled, replies that a requester does not read within abort_grace_ms are
 * dropped (and counted) rather than hold the shutdown.
 *
 * Files: frontdoor.c holds this API, receiving and validation, the in-flight index, cancels,
 * the ROUTER's connection monitor, the PUB's subscription count and the drain; egress.c
 * (mb_egress.h) holds the sending: the results ring to ROUTER replies (held replies
 * included) and PUB publications (drop counting, topics), and retiring sent requests. They
 * share one state struct, in frontdoor_internal.h (private to these two files).
 *
 * Threads: create and destroy on the main thread; mb_frontdoor_poll() is a poller (see
 * mb_reactor.h) run by one reactor, which must watch the front door's sockets
 * (mb_frontdoor_watch()) and whose doorbell must be the results ring's. Egress runs inside
 * mb_frontdoor_poll(), on the same thread: it must, since a ZeroMQ socket belongs to one
 * thread and the ROUTER carries both the requests and their replies.
 */
#ifndef MB_FRONTDOOR_H
#define MB_FRONTDOOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

#include "mb_auth.h"
#include "mb_cancel.h"
#include "mb_idle.h"
#include "mb_metrics.h"
#include "mb_reactor.h"
#include "mb_request.h"
#include "mb_ring.h"

struct mb_frontdoor_ops {
	void *ctx;
	/**
	 * Queue @p req (return MB_STATUS_OK: the pipeline owns it and will return it answered
	 * through the results ring) or refuse it (return a status and write a reason).
	 */
	enum mb_status (*submit)(void *ctx, struct mb_request *req, char *reason, size_t len);
	/** The client cancelled @p req, which is somewhere in the pipeline: wake its owner. */
	void (*cancelled)(void *ctx, struct mb_request *req);
	/** A terminal response left (sent, or its client was gone). Metrics. */
	void (*sent)(void *ctx, const struct mb_request *req);
	/** The front door will submit nothing more (drain began). */
	void (*ingest_closed)(void *ctx);
	/**
	 * Optional: true once other ingest paths (UDP) are closed and every request they
	 * handed on has been answered and released; the front door keeps sending until then.
	 */
	bool (*others_done)(void *ctx);
};

struct mb_frontdoor_opts {
	void *zmq_ctx;	     /**< borrowed ZeroMQ context */
	const char *ingest;  /**< ROUTER endpoint; copied */
	const char *publish; /**< PUB endpoint; copied */
	uint32_t router_sndhwm, router_rcvhwm, pub_sndhwm;
	/**
	 * ZMTP heartbeats on the ROUTER: a requester that answers no ping for three intervals
	 * (a dead host, or one whose ZeroMQ receive queue is full) is disconnected, and replies
	 * held for it are dropped (counted as client_gone). 0: off (held replies wait until
	 * the requester reads, or TCP gives up on a dead host).
	 */
	uint32_t heartbeat_ms;
	uint32_t max_inflight;
	uint64_t max_inflight_bytes;
	/**
	 * Largest request payload; larger ones are answered TOO_LARGE. A frame over twice this
	 * (plus 4 KiB) cuts the sender's connection before ZeroMQ buffers it (ZMQ_MAXMSGSIZE).
	 */
	uint32_t max_payload;
	uint32_t linger_ms;	 /**< how long close waits to flush (ZMQ_LINGER) */
	uint32_t abort_grace_ms; /**< after abort, how long unread replies are kept */
	/**
	 * Draining: once everything accepted is answered, the ROUTER is still read (and each
	 * message answered UNAVAILABLE) until nothing has arrived for this long. 0: 250 ms.
	 */
	uint32_t drain_quiet_ms;
	struct mb_ring *results; /**< answered requests; we consume; its doorbell wakes us */
	struct mb_cancel *drain;
	struct mb_cancel *abort;
	struct mb_metrics *metrics; /**< may be NULL */
	struct mb_frontdoor_ops ops;
	int numa_node;
	/**
	 * Security (mb_auth.h). NULL: plaintext, the header's tenant is trusted. Otherwise
	 * CURVE on both sockets with @c server_secret_key (Z85), and this allow-list (the front
	 * door owns it from create on, and frees it): its ZAP handler admits listed keys
	 * only; a request whose tenant its key may not use is answered UNAUTHORIZED; a
	 * subscription is applied only for tenants the key may subscribe to (XPUB in manual
	 * mode: "" becomes "T/" for each of them).
	 */
	struct mb_auth *auth;
	const char *server_secret_key;
	/**
	 * Shares: requests in flight per client (a ZeroMQ peer, by routing id; with CURVE, a
	 * key of the allow-list, all its connections together, or the entry's own
	 * max_inflight) and per tenant; past either, OVERLOADED. 0: no limit but max_inflight.
	 */
	uint32_t max_inflight_per_client;
	uint32_t max_inflight_per_tenant;
};

struct mb_frontdoor;

/**
 * Create the front door: sockets created and bound, pool and index allocated. Needs EAL.
 * Returns 0; or -errno with the reason in @p err: an endpoint ZeroMQ cannot bind (in use,
 * bad address: the message names the endpoint), -ENOMEM.
 */
int mb_frontdoor_create(const struct mb_frontdoor_opts *opts, struct mb_frontdoor **out, char *err,
			size_t err_len);

/** Close the sockets and free everything; call after the thread returned. NULL accepted. */
void mb_frontdoor_destroy(struct mb_frontdoor **fd);

/**
 * Poller: read the connection events and subscriptions (once a millisecond), receive a
 * burst of requests, send the answered ones (a bounded burst), retry held replies, follow
 * the shutdown (see the file comment). Returns the messages handled (0: idle), or
 * MB_POLLER_DONE once the drain is over. Lowers *@p wake_at (if not NULL) to when it must
 * run again without news (a held reply's retry, the drain's checks).
 */
int mb_frontdoor_poll(struct mb_frontdoor *fd, uint64_t now, uint64_t *wake_at);

/** Ask @p r to wake for input on the front door's sockets while it sleeps. */
void mb_frontdoor_watch(struct mb_frontdoor *fd, struct mb_reactor *r);

/** The endpoint actually bound (resolves "tcp://127.0.0.1:*"); 0 ROUTER, 1 PUB. */
const char *mb_frontdoor_endpoint(const struct mb_frontdoor *fd, int which);

/**
 * A new allow-list (a reload): any thread; the front door takes it at its next round and
 * frees the old one. Then a connection whose key is no longer listed is cut: a requester
 * once what it has in flight is answered (its new requests are answered UNAUTHORIZED
 * meanwhile), a subscriber at once (also one whose tenants to subscribe to changed: it
 * reconnects and subscribes again, vetted against the new list). Owns @p a. CURVE only.
 */
void mb_frontdoor_post_auth(struct mb_frontdoor *fd, struct mb_auth *a);

/** Requests accepted and not yet sent. Any thread. */
uint32_t mb_frontdoor_inflight(const struct mb_frontdoor *fd);

#endif /* MB_FRONTDOOR_H */
