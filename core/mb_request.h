/**
 * @file
 * Request objects and their pool: one accepted request from arrival to its terminal
 * response.
 *
 * A request carries its decoded header, who sent it (the ZeroMQ routing id of the client),
 * its payload (owned: the transport's buffer, released through a callback, so ZeroMQ
 * messages are used without a copy), its place in the pipeline, and finally its response
 * (status, timings, result buffer or reason).
 *
 * Ownership moves with the pointer: the front door fills a request and hands it to a model's
 * queue; the batcher owns it while queued; a worker while its batch runs; the egress once
 * answered, which sends the response and returns the object to the pool. Exactly one thread
 * owns a request at a time, except for the `cancel` flag, which the front door may set at
 * any time (an atomic) to ask the current owner to answer CANCELLED if it has not started.
 * Answered requests reach the egress through its results ring (mb_results_push()).
 *
 * The pool hands out preallocated objects: no allocation per request. It is single-threaded
 * (the front door both gets and puts back).
 */
#ifndef MB_REQUEST_H
#define MB_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "mediabatch/protocol.h"

#define MB_CLIENT_ID_MAX 255

/** mb_request.model before the request is routed to a model. */
#define MB_REQUEST_NO_MODEL UINT32_MAX

/** mb_request.abandoned */
enum { MB_REQ_PARKED = 1 };

/** A parked request handed back on the results ring: recycle it, send nothing. */
#define MB_REQ_RECLAIM_TAG(req) ((struct mb_request *)((uintptr_t)(req) | 1u))
#define MB_REQ_IS_RECLAIM(p) (((uintptr_t)(p)&1u) != 0)
#define MB_REQ_UNTAG(p) ((struct mb_request *)((uintptr_t)(p) & ~(uintptr_t)1u))

struct mb_request;

/**
 * The join of a split request (batch/mb_join.h): a request whose media is longer than its
 * model's window runs as windows, each a request of its own that points here; the results
 * path folds each answered window in instead of sending it.
 */
struct mb_window_join {
	struct mb_request *parent; /**< the request that was split */
	/**
	 * Window @p w was answered (any status): fold it in. Returns the parent, answered,
	 * once every window is back (the caller hands it on like any answered request), else
	 * NULL. @p w belongs to the join afterwards: the caller must not touch it. Any thread.
	 */
	struct mb_request *(*done)(struct mb_request *w);
	/**
	 * A parked window came back (its hung run() returned: MB_REQ_RECLAIM_TAG). Returns the
	 * parent when it may now be recycled (it was answered parked), else NULL. Egress only.
	 */
	struct mb_request *(*reclaim)(struct mb_request *w);
};

/** hdr.reserved of a window (the wire's reserved field is 0 on every accepted request):
 * the model answers the window's partial form where its join needs one (mb_model_rt.h). */
#define MB_HDR_WINDOW_PART 0x1u

/** Releases a request's payload (e.g. closes the ZeroMQ message holding it). */
typedef void (*mb_payload_free_fn)(struct mb_request *req);

/** Why a batch closed (mediabatch_batches_closed_total{reason}). */
enum mb_close_reason {
	MB_CLOSE_FULL = 0, /**< max_batch items waited (or the device's units were full) */
	MB_CLOSE_DEADLINE, /**< the oldest item waited max_delay_us */
	MB_CLOSE_DRAIN,	   /**< the service drains: everything goes at once */
	MB_CLOSE_COUNT,
};

/** "full", "deadline", "drain". */
const char *mb_close_reason_name(unsigned int reason);

struct mb_request {
	/*
	 * What mb_request_reset() clears comes first, ordered so that a request's life on the
	 * UDP rx path (filled, queued, answered, reset) touches its first four cache lines.
	 */

	/* arrival, filled by the front door */
	struct mb_request_hdr hdr;
	uint8_t transport;  /**< enum mb_transport */
	uint8_t client_len; /**< bytes of @c client (at the end: reset leaves it) */
	uint32_t payload_len;
	const uint8_t *payload;
	mb_payload_free_fn payload_free;
	uint64_t arrival_ns;
	uint64_t deadline_ns;
	/**
	 * Where the egress hands the request after its response left, instead of the front
	 * door's pool: set by an ingest that owns its requests (the UDP rx threads). NULL for
	 * ZeroMQ requests.
	 */
	void (*release)(struct mb_request *req);

	/* scheduling */
	uint32_t model;	     /**< index of the model, or MB_REQUEST_NO_MODEL */
	uint32_t cost_units; /**< this item's share of a batch's units */
	atomic_bool cancel;  /**< the client asked to cancel; owner answers if not started */
	bool indexed;	     /**< in the front door's in-flight index */
	bool counted;	     /**< counted in mediabatch_requests_total (by admission) */
	bool client_gone;    /**< ZeroMQ: cancelled because its connection closed */
	uint16_t windows;    /**< admission: > 1 when it runs as that many windows */
	/** A window of a split request: its join (the parent is there), else NULL. */
	struct mb_window_join *join;
	/**
	 * MB_REQ_PARKED: a request of a batch the watchdog abandoned (see
	 * mb_worker_abandon_if_hung()): answered, but a hung run() may still read its payload,
	 * so the egress sends it and keeps it until that run() returns and hands it back
	 * through the results ring as MB_REQ_RECLAIM_TAG(req).
	 */
	uint8_t abandoned;
	int32_t conn_fd;     /**< ZeroMQ: the connection it came on (ZMQ_SRCFD), or -1 */
	uint64_t conn_epoch; /**< ZeroMQ: the front door's monitor epoch when it was read */
	/** ZeroMQ: the client whose share (max_inflight_per_client) it counts in; 0: none */
	uint64_t share_key;
	TAILQ_ENTRY(mb_request) link; /**< the owner's queues */

	/* response, filled by whoever answers */
	uint32_t result_len;
	void *result;	   /**< malloc'd result bytes, freed by mb_request_reset() */
	uint64_t start_ns; /**< its batch started on the device (0 if never) */
	uint64_t done_ns;  /**< answered */
	/* stage stamps of a request that ran (for mediabatch_stage_seconds; 0: not reached) */
	uint64_t closed_ns;   /**< its batch closed (the batcher formed it) */
	uint64_t admitted_ns; /**< its batch's device units were granted */
	uint64_t sent_ns;     /**< its response left (egress) */
	uint8_t close_reason; /**< enum mb_close_reason: why its batch closed */
	struct mb_response_hdr resp;

	/* From here on, outside what mb_request_reset() clears: */
	char reason[MB_PROTO_REASON_MAX]; /**< reset empties it (reason[0] only) */
	/** transport's handle for the payload (zmq_msg_t), meaningful while payload_free is set */
	uint64_t payload_store[8];
	uint8_t client[MB_CLIENT_ID_MAX]; /**< ZeroMQ routing id of the sender; client_len bytes */
};

TAILQ_HEAD(mb_request_list, mb_request);

/**
 * Whether @p req was cancelled (its own flag, or for a window its parent's). Any owner.
 */
/** Why a cancelled request did not run, for its CANCELLED answer: its connection closed
 * (client_gone, set before the cancel flag) or its client cancelled it. */
static inline const char *
mb_request_cancel_reason(const struct mb_request *req)
{
	return req->client_gone ? "its connection closed; not run" : "cancelled by the client";
}

static inline bool
mb_request_cancelled(const struct mb_request *req)
{
	if (atomic_load_explicit(&((struct mb_request *)req)->cancel, memory_order_acquire))
		return true;
	return req->join != NULL &&
	       atomic_load_explicit(&req->join->parent->cancel, memory_order_acquire);
}

/**
 * Answer @p req with a status other than OK and a reason (printf-style); fills the response
 * header (no result, device none) and sets done_ns. Any owner thread.
 */
void mb_request_answer(struct mb_request *req, enum mb_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** Fill @p out with the response header fields that are copied from the request. */
void mb_request_response_base(const struct mb_request_hdr *hdr, struct mb_response_hdr *out);

/** Release the payload and the result; the object is ready for reuse. */
void mb_request_reset(struct mb_request *req);

/** The same key as the front door's in-flight index uses for a client. */
uint64_t mb_request_client_hash(const uint8_t *client, uint8_t len);

struct mb_ring;

/**
 * Push the answered @p req (transferred) to @p results, the egress's ring, retrying while
 * the ring is full (it is sized for every request in flight, so that would be a sizing bug:
 * logged once). Any producer thread (the batcher, the workers).
 */
void mb_results_push(struct mb_ring *results, struct mb_request *req);

/** As mb_results_push() for @p n requests at once: one ring operation (and one doorbell
 * check, so at most one wakeup of the egress) for a whole batch. */
void mb_results_push_burst(struct mb_ring *results, struct mb_request *const *reqs, unsigned int n);

struct mb_request_pool;

/**
 * Preallocate @p n requests on NUMA node @p numa_node. Returns 0 and sets @p out, or
 * -EINVAL (n == 0) / -ENOMEM.
 */
int mb_request_pool_create(uint32_t n, int numa_node, struct mb_request_pool **out);

/** Free the pool; every request must be back (a missing one is a leak: logged). */
void mb_request_pool_destroy(struct mb_request_pool **pool);

/** A clean request, or NULL when all are in use. Single thread (the pool's owner). */
struct mb_request *mb_request_get(struct mb_request_pool *pool);

/** Reset and return a request. Single thread (the pool's owner). */
void mb_request_put(struct mb_request_pool *pool, struct mb_request *req);

/** Requests handed out and not yet returned. */
uint32_t mb_request_pool_in_use(const struct mb_request_pool *pool);

#endif /* MB_REQUEST_H */
