/**
 * @file
 * Egress: the sending half of the ZeroMQ front door (mb_frontdoor.h). frontdoor.c receives;
 * egress.c sends the answers, on the front door's ROUTER and PUB sockets.
 *
 * Answered requests come back on the results ring. Each is sent to its client on the
 * ROUTER (ZMQ_ROUTER_MANDATORY: a requester whose send queue is full makes the send fail
 * with EAGAIN; the reply is kept and retried, never dropped; a requester that disconnected
 * is counted in mediabatch_reply_dropped_total{reason="client_gone"}), then published. The
 * PUB side follows ZeroMQ's rules: a subscriber whose queue (pub_sndhwm) is full misses the
 * message while the others get it; such misses are counted in
 * mediabatch_pub_dropped_total. Results go out without a copy (one refcounted buffer for
 * both sockets). Once @c abort is cancelled, replies that a requester does not read within
 * abort_grace_ms are dropped (counted in reason="unread_at_shutdown") and only published.
 *
 * Requests of other ingest paths (UDP) also come back on the results ring: they are
 * published only (no ROUTER peer) and handed back through their req->release().
 *
 * A sent response retires its request: out of the in-flight index, its payload bytes no
 * longer counted, back into the front door's pool (or parked, for a hung run()).
 *
 * Threads: egress has no thread and no state of its own. It works on the front door's
 * struct (frontdoor_internal.h) and sockets, so every function here must run on the front
 * door's thread: inside mb_frontdoor_poll(), or create/destroy before and after it runs.
 */
#ifndef MB_EGRESS_H
#define MB_EGRESS_H

#include <stdint.h>

#include <zmq.h>

#include "mb_frontdoor.h"

/** Set up egress's part of @p fd (held list, publication counts). 0, or -ENOMEM. */
int mb_egress_init(struct mb_frontdoor *fd);

/**
 * Undo mb_egress_init(): held replies (only if the poller never ran) go back to the pool
 * unsent, and egress's reference to the publication counts is dropped (libzmq may hold the
 * last ones until zmq_ctx_term()). Safe on a @p fd that mb_egress_init() failed on.
 */
void mb_egress_fini(struct mb_frontdoor *fd);

/**
 * Egress's share of a poller round (front door thread): send a bounded burst of answered
 * requests from the results ring, then retry held replies (giving up on them once abort
 * has been cancelled for abort_grace_ms). Returns the requests taken from the results ring
 * (0: idle).
 */
unsigned int mb_egress_poll(struct mb_frontdoor *fd, uint64_t now);

/**
 * Send @p req's response (to its client, then published) and retire it; if its client's
 * queue is full, hold it for mb_egress_poll() to retry. @p req is transferred.
 */
void mb_egress_finish(struct mb_frontdoor *fd, struct mb_request *req);

/**
 * Answer a message that never became a request (no pool object): sent, and if the
 * requester's queue is full held and sent in its turn (at most service.max_inflight such
 * refusals; past that, published only and counted). @p client (the ROUTER identity frame),
 * @p err (request id, tenant, model) and @p reason are borrowed for the call.
 */
void mb_egress_answer(struct mb_frontdoor *fd, const zmq_msg_t *client,
		      const struct mb_proto_error *err, enum mb_status status, const char *reason);

/** mb_egress_answer() with response flags @p flags (MB_RESP_FLAG_DUPLICATE). */
void mb_egress_answer_flags(struct mb_frontdoor *fd, const zmq_msg_t *client,
			    const struct mb_proto_error *err, enum mb_status status, uint16_t flags,
			    const char *reason);

/**
 * With the subscription reads (once a millisecond): if the PUB cut a subscriber off and every
 * subscriber cut off since has taken its backlog, stop counting publications as dropped.
 */
void mb_egress_pub_resume(struct mb_frontdoor *fd);

#endif /* MB_EGRESS_H */
