/**
 * @file
 * UDP ingest: DPDK ports polled by rx threads that parse, reassemble and queue requests.
 *
 * Each configured port (struct mb_udp_port_config) is started with its rx queues, one tx
 * queue per rx queue (ARP replies), RSS over IP and UDP where the port can spread flows,
 * and an mbuf pool per NUMA node. Each rx queue has one thread of its own, pinned where the
 * topology says (next to the NIC) or to the configured CPU, that owns everything it uses:
 *
 * - a fixed set of request slots (udp.max_requests) and payload buffers (udp.buffer_mb, in
 *   size classes, DPDK mempools on the port's node): no allocation per packet;
 * - an rte_hash index keyed by (source address, source port, tenant, request id) of the
 *   requests being reassembled and of those in the pipeline (duplicates and cancels), looked
 *   up in bulk for each rx burst;
 * - the reassembly FIFO: requests in arrival order of their first datagram, so the oldest
 *   is the next to expire (udp.reassembly_timeout_ms) and expiry costs O(1) per poll.
 *
 * A datagram is classified (mb_udp_wire.h), its header decoded with the protocol's own
 * decoder, and its slice copied once into the request's buffer. A complete request goes
 * through ops.admit (model, media, queue limit, rate limit, deadline) and then, burst-wise,
 * into its model's ring; a full ring answers it OVERLOADED. Every answer this path gives
 * itself (OVERLOADED, BAD_REQUEST for a bad header or an expired reassembly, CANCELLED,
 * UNAVAILABLE while draining) goes onto the results ring like any other, so the egress
 * publishes it on PUB; nothing blocks the rx thread.
 *
 * With a source allow-list (udp.sources, mb_udp_opts.sources), every request datagram
 * (each slice, each cancel) is checked first: its header's tenant must be listed and its
 * IPv4 source address inside one of that tenant's prefixes, else it is dropped (reason
 * "source") before it can touch a request, take a slot or be answered.
 *
 * Requests come back: the egress calls req->release() after publishing, which puts the
 * request on its rx thread's return ring; the rx thread then unindexes it and frees its
 * slot and buffer. So the pools stay single-threaded.
 *
 * Shutdown: once @c drain is cancelled the rx threads stop reading their ports, answer what
 * they were reassembling UNAVAILABLE, call ops.closed() (the last one), and wait until every
 * request they handed out has come back, then return.
 *
 * Threads: create and destroy on the main thread. Each rx queue is a poller
 * (mb_udp_rx_poll()) that one reactor runs (the placement decides which, mb_placement.h);
 * mb_udp_rx_run() runs one alone on a thread.
 */
#ifndef MB_UDP_H
#define MB_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

#include "mb_cancel.h"
#include "mb_config.h"
#include "mb_idle.h"
#include "mb_metrics.h"
#include "mb_request.h"
#include "mb_reactor.h"
#include "mb_ring.h"
#include "mb_topo.h"

struct mb_udp_ops {
	void *ctx;
	/**
	 * Admission checks for a complete request on rx queue @p queue (called on that queue's
	 * thread): MB_STATUS_OK with req->model, cost and deadline set and the request counted
	 * against its model's queue; or a refusal status with a reason.
	 */
	enum mb_status (*admit)(void *ctx, uint32_t queue, struct mb_request *req, char *reason,
				size_t len);
	/** The ring of model @p model (after admit said OK). */
	struct mb_ring *(*model_ring)(void *ctx, uint32_t model);
	/** Undo admit's count: @p req did not fit its model's ring after all. */
	void (*unadmit)(void *ctx, struct mb_request *req);
	/** The sender cancelled @p req, which is in the pipeline: wake its owner. */
	void (*cancelled)(void *ctx, struct mb_request *req);
	/** The UDP path will queue nothing more (drain). Called once, from an rx thread. */
	void (*closed)(void *ctx);
};

struct mb_udp_opts {
	const struct mb_config *cfg; /**< ports and udp.* settings; borrowed for the lifetime */
	struct mb_ring *results;     /**< answers this path gives itself -> egress */
	struct mb_cancel *drain;
	struct mb_cancel *abort;
	struct mb_metrics *metrics; /**< may be NULL */
	struct mb_topo *topo;	    /**< this machine, for placement; NULL: no pinning */
	struct mb_udp_ops ops;
	/**
	 * The source allow-list (udp.sources): @p n_sources tenants, each with the IPv4
	 * prefixes (network byte order, no host bits set) its datagrams may come from.
	 * Borrowed for mb_udp_create() only: copied there into a read-only table (open
	 * addressing by tenant, one copy per NUMA node of a port), so the caller may free it
	 * afterwards. NULL / 0 (the default): every source is accepted, and the rx path skips
	 * the check. Otherwise a request datagram is accepted only if its tenant is
	 * listed and its source address falls in one of the tenant's prefixes; a request
	 * datagram too short to carry a tenant is refused too. The rest are dropped and
	 * counted as MB_UDP_DROP_SOURCE, never answered. Datagrams without the request magic
	 * are dropped as garbage either way. Fixed for the object's lifetime (no reload).
	 * Tenants must be unique and each must have at least one prefix (mb_udp_create()
	 * says -EINVAL otherwise).
	 */
	const struct mb_udp_source_config *sources;
	unsigned int n_sources;
};

struct mb_udp;

/**
 * Set up every port of cfg->udp_ports: find it (a virtual device must have been given to
 * EAL, see mb_udp_eal_vdevs()), configure and start it, create pools, slots and tables.
 * Returns 0; or -errno with the reason in @p err (naming udp.ports[i] and the device).
 */
int mb_udp_create(const struct mb_udp_opts *opts, struct mb_udp **out, char *err, size_t err_len);

/**
 * Poller (mb_reactor.h) of rx queue @p queue (0 <= queue < mb_udp_queues()): requests
 * coming back, a burst from the NIC, reassembly expiry, the drain. Returns the work done,
 * or MB_POLLER_DONE after the drain (see above). Lowers *@p wake_at to when it must poll
 * again (a NIC raises no wakeup: within the idle policy's sleep_ns). The reactor that runs
 * it must be registered with EAL (rte_thread_register()) for the mbuf cache.
 */
int mb_udp_rx_poll(struct mb_udp *u, uint32_t queue, uint64_t now, uint64_t *wake_at);

/**
 * Rx queue @p queue alone on the calling thread (tools and tests; the daemon runs the
 * poller on a reactor): registers with EAL, binds to the queue's configured CPU, polls
 * with the idle policy until the drain is over. 0, or -EINVAL for no such queue.
 */
int mb_udp_rx_run(struct mb_udp *u, uint32_t queue);

/** "port0/q1". */
const char *mb_udp_queue_label(const struct mb_udp *u, uint32_t queue);

/** Stop and close the ports, free everything. After every rx thread returned. NULL
 * accepted. */
void mb_udp_destroy(struct mb_udp **u);

/**
 * Request objects one rx queue owns: udp.max_requests for requests, and MB_UDP_ANSWER_SLOTS
 * more that only answers use (a refusal is answered through a request object of its own, so
 * that a datagram refused because every request slot is taken is still answered). Whoever
 * sizes a ring that may hold every request object (the results ring) counts these.
 */
#define MB_UDP_ANSWER_SLOTS 32

/** HELP of mediabatch_rx_unanswered_total (the UDP ingest's, or the service's without one). */
#define MB_UDP_UNANSWERED_HELP                                                                     \
	"Refusals the UDP rx path could not answer: the egress held every request object of the "  \
	"rx queue, the ones kept for answers included."

/**
 * mediabatch_rx_requests_total{outcome}: its HELP and its outcomes, one per UDP request
 * (the UDP ingest's series, or the service's at 0 without one): queued, refused (answered by
 * the rx path itself), expired (incomplete at the reassembly timeout), cancelled (while
 * reassembled; a queued one's cancel is the pipeline's to answer).
 */
#define MB_UDP_REQUESTS_HELP                                                                       \
	"UDP requests, by outcome: queued, refused, expired or cancelled while reassembled."
#define MB_UDP_OUTCOMES                                                                            \
	{                                                                                          \
		"queued", "refused", "expired", "cancelled"                                        \
	}

/** What one mbuf of udp.mbufs takes at least: RTE_MBUF_DEFAULT_BUF_SIZE (2048 bytes of data
 * and 128 of headroom) and the 128-byte struct rte_mbuf (the daemon's --check sizes the heap
 * with it). */
#define MB_UDP_MBUF_BYTES (2048u + 128u + 128u)

static inline uint32_t
mb_udp_queue_slots(const struct mb_config *cfg)
{
	return cfg->udp_max_requests + MB_UDP_ANSWER_SLOTS;
}

/** Most payload buffer size classes of an rx queue. */
#define MB_UDP_BUFFER_CLASSES_MAX 12

/**
 * An rx queue's payload buffers (udp.buffer_mb): size classes four times apart from 4 KiB
 * up to service.max_payload_bytes, the budget split evenly between them, each class at
 * least 2 buffers and at most the queue's slots. Fills @p sizes and @p counts (room for
 * MB_UDP_BUFFER_CLASSES_MAX) and returns the number of classes.
 */
uint32_t mb_udp_buffer_plan(const struct mb_config *cfg, uint32_t *sizes, uint64_t *counts);

/** What mb_udp_buffer_plan()'s buffers take of the DPDK heap, per rx queue (--check). */
uint64_t mb_udp_buffer_heap_bytes(const struct mb_config *cfg);

/** Number of rx queues (= rx threads) over all ports. */
uint32_t mb_udp_queues(const struct mb_udp *u);

/** Requests handed to the pipeline or the egress and not yet released. Any thread. */
uint32_t mb_udp_outstanding(const struct mb_udp *u);

/** True once every rx thread has closed (drain). Any thread. */
bool mb_udp_closed(const struct mb_udp *u);

/**
 * The EAL arguments the configured virtual devices need ("--vdev=net_pcap0,..."), written
 * into @p buf (@p buf_len bytes) and pointed to by @p argv (at most @p max). Returns the
 * count, or -E2BIG.
 */
int mb_udp_eal_vdevs(const struct mb_config *cfg, char *buf, size_t buf_len, const char **argv,
		     unsigned int max);

/** Totals over all rx queues (tests, benchmarks, logs). */
struct mb_udp_stats {
	uint64_t packets, bytes;
	uint64_t dropped[32]; /**< by enum mb_udp_drop */
	uint64_t arp_replies;
	uint64_t queued;    /**< complete requests handed to a model's ring */
	uint64_t refused;   /**< complete requests answered by this path (admission, full) */
	uint64_t expired;   /**< incomplete at the reassembly timeout */
	uint64_t cancelled; /**< cancels that found their request */
	/** of cancelled: those that found it still being reassembled (answered CANCELLED by this
	 *  path; the others were queued and are answered by the pipeline) */
	uint64_t cancelled_reasm;
	uint64_t answered; /**< answers this path gave itself (to the egress), all reasons */
	/** refusals not answered: every request object, the answers' own included, was taken */
	uint64_t unanswered;
	uint64_t reassembling;
};

void mb_udp_stats(const struct mb_udp *u, struct mb_udp_stats *out);

#endif /* MB_UDP_H */
