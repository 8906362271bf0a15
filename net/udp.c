/*
 * udp.c: the UDP ingest path (see mb_udp.h): DPDK ports, polled rx threads, reassembly.
 *
 * Per rx queue everything is owned by its thread; the only shared pieces are the results
 * ring (MP: the rx threads, the batcher and the workers produce), the models' rings (MP),
 * the return ring (one producer: the egress; one consumer: this thread), relaxed
 * single-writer counters read by /metrics, and the source allow-list (udp.sources), which
 * is built before any rx thread runs and only read after.
 */
#include "mb_udp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_packet.h>

#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#include "mb_env.h"
#include "mb_reasm.h"
#include "mb_udp_wire.h"

#define MB_LOG_MODULE "udp"
#include "mb_log.h"

#define RX_BURST 32
#define MAX_MODELS 64
#define MAX_CLASSES MB_UDP_BUFFER_CLASSES_MAX
#define MIN_CLASS (4u << 10)
#define MAX_QUEUES 256

enum slot_state {
	SLOT_FREE,
	SLOT_REASM,    /* collecting datagrams; indexed; in the FIFO */
	SLOT_QUEUED,   /* in the pipeline; indexed */
	SLOT_ANSWERED, /* answered by this path, on its way to the egress; maybe indexed */
};

struct udp_key {
	uint64_t request_id;
	uint32_t tenant;
	uint32_t src_ip;
	uint16_t src_port;
	uint16_t pad[3];
};
_Static_assert(sizeof(struct udp_key) == 24, "key_cmp() compares three words");

struct udp_queue;

/*
 * ---- the source allow-list (udp.sources) ----
 *
 * The listed tenants in a read-only table, built at set-up, one copy per NUMA node of a
 * port (like the mbuf pools) that the node's rx queues share and only read. Open addressing
 * with linear probing, by a multiplicative hash of the tenant, over a power-of-two array at
 * most half full: a lookup reads about 1.5 slots of 16 bytes for a listed tenant, 2.5 for
 * another (at that load), nearly always in one cache line. A tenant with one prefix keeps it
 * in its slot, so the whole check reads that one line; one with several keeps them in
 * extra[], scanned in order (lists are short). 65536 tenants take 2 MiB a copy.
 */
#define SRC_MAX_TENANTS (1u << 20)
#define SRC_MAX_PREFIXES (1u << 24) /* over all tenants */
#define SRC_HASH_MUL 0x9e3779b1u    /* 2^32 / the golden ratio, odd: Fibonacci hashing */

struct src_entry {
	uint32_t tenant;
	uint32_t n; /* its prefixes; 0: an empty slot */
	union {
		struct mb_prefix one; /* n == 1: the prefix */
		uint32_t off;	      /* n > 1: they are extra[off .. off + n) */
	};
};
_Static_assert(sizeof(struct src_entry) == 16, "four slots to a cache line");

struct src_table {
	uint32_t shift;		 /* 32 - log2(slots) */
	uint32_t mask;		 /* slots - 1 */
	uint32_t longest;	 /* the longest probe of a listed tenant (set-up log) */
	struct mb_prefix *extra; /* in the same allocation, after slots[] */
	alignas(64) struct src_entry slots[];
};

static inline uint32_t
src_home(const struct src_table *t, uint32_t tenant)
{
	return (uint32_t)(tenant * SRC_HASH_MUL) >> t->shift;
}

/* The slot of @p tenant, or NULL if it is not listed. */
static inline const struct src_entry *
src_find(const struct src_table *t, uint32_t tenant)
{
	for (uint32_t i = src_home(t, tenant);; i = (i + 1) & t->mask) {
		const struct src_entry *e = &t->slots[i];

		if (e->n == 0)
			return NULL; /* at most half full: an empty slot always ends the probe */
		if (e->tenant == tenant)
			return e;
	}
}

/*
 * May datagram @p dg pass the allow-list? A request datagram needs its header's tenant
 * listed and its source address in one of the tenant's prefixes; one too short to carry a
 * tenant cannot be allowed. A datagram without the request magic passes: it is dropped as
 * garbage after, and never answered.
 */
static inline bool
src_allowed(const struct src_table *t, const struct mb_udp_datagram *dg)
{
	const struct src_entry *e;

	if (!mb_proto_peek_is_request(dg->data, dg->len))
		return true;
	if (dg->len < MB_PROTO_OFF_TENANT_ID + 4)
		return false;
	e = src_find(t, mb_proto_peek_tenant_id(dg->data));
	if (e == NULL)
		return false;
	if (e->n == 1)
		return (dg->src_ip & e->one.mask) == e->one.addr;
	for (uint32_t k = 0; k < e->n; k++) {
		const struct mb_prefix *p = &t->extra[e->off + k];

		if ((dg->src_ip & p->mask) == p->addr)
			return true;
	}
	return false;
}

/*
 * A request slot. Its queue comes first, alone in its line: release() reads it on the
 * egress's thread, and a line that the rx thread wrote after that would have to come back
 * from the egress's core, for every request. What the rx thread touches for every request
 * (the index key and the slot's state) follows, in one cache line of its own; then the
 * request (reached from it with slot_of()); reassembly state, used only by requests of
 * several datagrams, comes last.
 */
struct udp_slot {
	alignas(64) struct udp_queue *q; /* written once, at set-up */
	alignas(64) enum slot_state state;
	bool indexed;
	uint8_t cls;	/* buffer class of req.payload */
	bool mbuf_raw;	/* mbuf goes back to its pool as it came (see take_returns()) */
	hash_sig_t sig; /* of key, computed once */
	uint8_t *buf;
	struct rte_mbuf *mbuf; /* a whole request's frame, kept as its payload (no copy) */
	struct udp_key key;
	alignas(64) struct mb_request req;
	uint64_t expire_ns;
	TAILQ_ENTRY(udp_slot) fifo;
	struct mb_reasm_cov cov;
};

static inline struct udp_slot *
slot_of(struct mb_request *req)
{
	return (struct udp_slot *)((uint8_t *)req - offsetof(struct udp_slot, req));
}

TAILQ_HEAD(slot_list, udp_slot);

/* Single-writer counters (the rx thread), read by /metrics. */
struct udp_counters {
	_Atomic uint64_t packets, bytes, arp_replies, queued, refused, expired, cancelled, answered;
	_Atomic uint64_t cancelled_reasm; /* of cancelled: requests cancelled while reassembled */
	_Atomic uint64_t unanswered;	  /* refusals with no request object left to answer them */
	_Atomic uint64_t dropped[MB_UDP_DROP_COUNT];
	_Atomic uint64_t reassembling;
	_Atomic uint32_t slots_in_use; /* n_slots - n_free, published once per poll round */
};

#define BUMP(ctr, v)                                                                               \
	atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (v),    \
			      memory_order_relaxed)

#define KERNEL_SOCKETS_MAX 64

struct udp_port {
	uint16_t port_id;
	int socket;
	uint16_t n_tx;
	struct mb_udp_local local;
	const struct mb_udp_port_config *cfg;
	bool started;
	/* net_af_packet: our duplicates of the PMD's packet sockets, whose kernel drops (ring
	 * full) count as missed; the drops read so far (a read resets the kernel's count) */
	int ksock[KERNEL_SOCKETS_MAX];
	uint32_t n_ksock;
	_Atomic uint64_t kernel_drops;
};

struct udp_queue {
	struct mb_udp *u;
	struct udp_port *port;
	uint32_t index; /* over all queues: the ops' queue number */
	uint16_t queue_id;
	int cpu;       /* from the config's udp.ports[].cpus; -1: the placement chooses */
	bool finished; /* closed, and every slot came back */

	struct udp_slot *slots;
	uint32_t n_slots, n_free;
	uint32_t *free_stack;
	struct rte_hash *tbl; /* the index of requests by key (see "the index" below) */
	struct slot_list reasm;
	uint32_t n_reasm;

	struct rte_mempool *bufs[MAX_CLASSES];
	uint32_t class_size[MAX_CLASSES];
	uint32_t n_classes;

	struct mb_ring *returns;
	struct rte_mempool *mbuf_pool; /* the pool the port's rx queues take mbufs from */
	const struct src_table *src;   /* the allow-list of the port's node; NULL: none */
	void *pending[MAX_MODELS][RX_BURST];
	uint32_t n_pending[MAX_MODELS];
	uint64_t pending_mask; /* models with something pending */

	bool closed;
	struct mb_idle idle;
	struct udp_counters c;
	/* Requests handed to the pipeline or the egress (written by this rx thread only) and
	 * released back by the egress (written by the egress thread only): no shared RMW. */
	alignas(64) _Atomic uint64_t handed;
	alignas(64) _Atomic uint64_t released;
	char label[32];
};

struct mb_udp;

/* Argument of one drop-reason series of /metrics. */
struct drop_arg {
	const struct mb_udp *u;
	enum mb_udp_drop why;
};

struct mb_udp {
	struct mb_udp_opts o;
	struct udp_port *ports;
	uint32_t n_ports;
	struct udp_queue *queues;
	uint32_t n_queues;
	struct rte_mempool *mbufs[RTE_MAX_NUMA_NODES + 1];
	struct src_table *src[RTE_MAX_NUMA_NODES + 1]; /* by node, as mbufs; NULL: no list */
	atomic_uint open_queues;
	uint32_t id; /* instance number: keeps DPDK object names unique in the process */
	struct drop_arg drop_args[MB_UDP_DROP_COUNT];
	uint64_t reasm_timeout_ns;
};

static atomic_uint g_instances; /* mb_udp objects created in this process */

/*
 * ---- the index ----
 *
 * Requests by key (source address and port, tenant, request id): the ones being
 * reassembled and the ones in the pipeline, so duplicates are dropped and cancels find
 * their request. An rte_hash (CRC, sized for the queue's slots, with the extendable bucket
 * table so that no insert below that fails), its data the slot. The signature is computed
 * once per key: for a burst's datagrams before their bulk lookup, kept in the slot for
 * its delete.
 */

#define INDEX_HASH_INIT 0 /* the table's hash_func_init_val */

static inline hash_sig_t
key_sig(const struct udp_key *k)
{
	return rte_hash_crc(k, sizeof(*k), INDEX_HASH_INIT); /* = rte_hash_hash(q->tbl, k) */
}

/*
 * Set @p k and return its signature, the same as key_sig(k), computed on the key's three
 * words as they are built, in registers: a CRC over the struct just written field by field
 * would read words that no single store wrote (a store-forwarding stall per word).
 */
static inline hash_sig_t
key_make(struct udp_key *k, uint64_t request_id, uint32_t tenant, uint32_t src_ip,
	 uint16_t src_port)
{
	uint64_t w[3];

	w[0] = request_id;
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	w[1] = tenant | (uint64_t)src_ip << 32;
	w[2] = src_port;
#else
	w[1] = (uint64_t)tenant << 32 | src_ip;
	w[2] = (uint64_t)src_port << 48;
#endif
	memcpy(k, w, sizeof(w));
	return rte_hash_crc_8byte(
		w[2], rte_hash_crc_8byte(w[1], rte_hash_crc_8byte(w[0], INDEX_HASH_INIT)));
}

static inline bool
key_eq(const struct udp_key *a, const struct udp_key *b)
{
	return a->request_id == b->request_id && a->tenant == b->tenant && a->src_ip == b->src_ip &&
	       a->src_port == b->src_port;
}

/* The index's key comparison (rte_hash_cmp_eq_t: 0 when equal): three words, inline, where
 * rte_hash would call memcmp() for a 24-byte key. The padding is always zero. */
static int
key_cmp(const void *a, const void *b, size_t len)
{
	uint64_t x[3], y[3];

	(void)len;
	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) != 0;
}

/* Index @p s under its key (not indexed yet). Fails only on a full table: not below the
 * queue's slots, with the extendable buckets. */
static int
idx_insert(struct udp_queue *q, struct udp_slot *s)
{
	int rc = rte_hash_add_key_with_hash_data(q->tbl, &s->key, s->sig, s);

	s->indexed = rc == 0;
	return rc;
}

static void
idx_remove(struct udp_queue *q, struct udp_slot *s)
{
	/* Missing means the index no longer refers to the slot: nothing stale is left, so
	 * the slot may be reused; say so once, as it would be a bug. */
	if (rte_hash_del_key_with_hash(q->tbl, &s->key, s->sig) < 0)
		MB_LOG_ONCE(ERR, "rx queue %s: an indexed request was missing from the index",
			    q->label);
	s->indexed = false;
}

/* ---- slots and buffers ---- */

static void
payload_free(struct mb_request *req)
{
	struct udp_slot *s = slot_of(req);

	if (s->buf != NULL)
		rte_mempool_put(s->q->bufs[s->cls], s->buf);
	if (s->mbuf != NULL)
		rte_pktmbuf_free(s->mbuf);
	s->buf = NULL;
	s->mbuf = NULL;
}

static struct udp_slot *
slot_get(struct udp_queue *q, uint32_t payload_len, enum mb_udp_drop *why)
{
	struct udp_slot *s;
	void *buf = NULL;
	uint32_t k;

	if (q->n_free <= MB_UDP_ANSWER_SLOTS) { /* those are kept for answers */
		*why = MB_UDP_DROP_NO_SLOT;
		return NULL;
	}
	for (k = 0; k < q->n_classes; k++) {
		if (q->class_size[k] < payload_len)
			continue;
		if (payload_len == 0 || rte_mempool_get(q->bufs[k], &buf) == 0)
			break;
	}
	if (payload_len != 0 && buf == NULL) {
		*why = MB_UDP_DROP_NO_BUFFER;
		return NULL;
	}
	s = &q->slots[q->free_stack[--q->n_free]];
	if (q->n_free != 0) { /* the next request's slot: its own line and the header's */
		struct udp_slot *next = &q->slots[q->free_stack[q->n_free - 1]];

		rte_prefetch0(&next->state);
		rte_prefetch0(&next->req);
	}
	s->buf = buf;
	s->mbuf = NULL;
	s->cls = (uint8_t)k;
	s->indexed = false;
	s->req.model = MB_REQUEST_NO_MODEL;
	atomic_init(&s->req.cancel, false);
	return s;
}

/*
 * A slot without a buffer, for answering a datagram that never became a request: any free
 * slot, the MB_UDP_ANSWER_SLOTS kept for answers included. NULL when none is left.
 */
static struct udp_slot *
slot_get_bare(struct udp_queue *q)
{
	struct udp_slot *s;

	if (q->n_free == 0)
		return NULL;
	s = &q->slots[q->free_stack[--q->n_free]];
	s->buf = NULL;
	s->mbuf = NULL;
	s->cls = 0;
	s->indexed = false;
	s->req.model = MB_REQUEST_NO_MODEL;
	atomic_init(&s->req.cancel, false);
	return s;
}

static void
slot_put(struct udp_queue *q, struct udp_slot *s)
{
	if (s->indexed)
		idx_remove(q, s);
	s->state = SLOT_FREE;
	mb_request_reset(&s->req); /* frees the buffer through payload_free */
	s->buf = NULL;
	q->free_stack[q->n_free++] = (uint32_t)(s - q->slots);
}

/* The egress is done with a request: back to its rx thread (egress thread). */
static void
release(struct mb_request *req)
{
	struct udp_slot *s = slot_of(req);
	struct udp_queue *q = s->q;
	void *p = s;

	if (mb_ring_enqueue_burst(q->returns, &p, 1) != 1) {
		/* Cannot happen: the ring holds every slot. Leak the slot rather than race. */
		MB_LOG_ONCE(ERR, "rx queue %s: return ring full; a request slot is lost", q->label);
	}
	/* single writer (the egress); release: pairs with mb_udp_outstanding()'s acquire */
	atomic_store_explicit(&q->released,
			      atomic_load_explicit(&q->released, memory_order_relaxed) + 1,
			      memory_order_release);
}

static void
fill_request(struct udp_slot *s, const struct mb_request_hdr *h, uint64_t now)
{
	struct mb_request *r = &s->req;

	r->hdr = *h;
	r->hdr.frag_offset = 0;
	r->transport = MB_TRANSPORT_UDP;
	r->client_len = 0;
	r->payload = s->buf;
	r->payload_len = h->payload_len;
	r->payload_free = payload_free;
	r->arrival_ns = now;
	r->release = release;
}

/* Hand an answered request to the egress. */
static void
report(struct udp_queue *q, struct udp_slot *s)
{
	void *p = &s->req;

	s->state = SLOT_ANSWERED;
	BUMP(q->handed, 1); /* before the egress can see it */
	if (mb_ring_enqueue_burst(q->u->o.results, &p, 1) != 1) {
		/* The results ring is sized for every request object; this is a bug. */
		MB_LOG_ONCE(ERR, "results ring full: an answer from rx queue %s is dropped",
			    q->label);
		BUMP(q->handed, (uint64_t)-1);
		slot_put(q, s);
		return;
	}
	BUMP(q->c.answered, 1);
}

static void answer(struct udp_queue *q, struct udp_slot *s, enum mb_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
answer(struct udp_queue *q, struct udp_slot *s, enum mb_status st, const char *fmt, ...)
{
	char reason[MB_PROTO_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	mb_request_answer(&s->req, st, "%s", reason);
	report(q, s);
}

/* ---- reassembly ---- */

static void
reasm_remove(struct udp_queue *q, struct udp_slot *s)
{
	TAILQ_REMOVE(&q->reasm, s, fifo);
	q->n_reasm--;
	BUMP(q->c.reassembling, (uint64_t)-1);
}

static void
flush_pending(struct udp_queue *q)
{
	uint64_t mask = q->pending_mask;

	while (mask != 0) {
		uint32_t m = (uint32_t)__builtin_ctzll(mask);
		uint32_t n = q->n_pending[m], done;

		mask &= mask - 1;
		/* counted before the enqueue: the pipeline may release them at once */
		BUMP(q->handed, n);
		done = mb_ring_enqueue_burst(q->u->o.ops.model_ring(q->u->o.ops.ctx, m),
					     q->pending[m], n);
		BUMP(q->handed, (uint64_t)done - n); /* the rest are counted by report() */
		BUMP(q->c.queued, done);
		for (uint32_t i = done; i < n; i++) {
			struct udp_slot *s = slot_of(q->pending[m][i]);

			q->u->o.ops.unadmit(q->u->o.ops.ctx, &s->req);
			BUMP(q->c.refused, 1);
			answer(q, s, MB_STATUS_OVERLOADED, "the %s queue is full; retry later",
			       s->req.hdr.model);
		}
		q->n_pending[m] = 0;
	}
	q->pending_mask = 0;
}

/* A request is complete: admit it and queue it for its model (burst-wise). */
static void
complete(struct udp_queue *q, struct udp_slot *s)
{
	char reason[MB_PROTO_REASON_MAX];
	enum mb_status st;
	uint32_t m;

	st = q->u->o.ops.admit(q->u->o.ops.ctx, q->index, &s->req, reason, sizeof(reason));
	if (st != MB_STATUS_OK) {
		BUMP(q->c.refused, 1);
		answer(q, s, st, "%s", reason);
		return;
	}
	m = s->req.model;
	s->state = SLOT_QUEUED;
	q->pending[m][q->n_pending[m]++] = &s->req;
	q->pending_mask |= 1ull << m;
	if (q->n_pending[m] == RX_BURST)
		flush_pending(q);
}

static void
drop_pkt(struct udp_queue *q, enum mb_udp_drop why)
{
	BUMP(q->c.dropped[why], 1);
}

/* Answer a datagram that never became a request (bad header, no slot...), if we can. */
static void
answer_datagram(struct udp_queue *q, const struct mb_request_hdr *h, const char *model,
		enum mb_status st, const char *reason)
{
	struct udp_slot *s = slot_get_bare(q);

	if (s == NULL) {
		/* the egress holds every request object, the answers' own too: counted */
		BUMP(q->c.unanswered, 1);
		return;
	}
	memset(&s->req.hdr, 0, sizeof(s->req.hdr));
	s->req.hdr.request_id = h->request_id;
	s->req.hdr.tenant_id = h->tenant_id;
	snprintf(s->req.hdr.model, sizeof(s->req.hdr.model), "%s", model);
	s->req.transport = MB_TRANSPORT_UDP;
	s->req.arrival_ns = mb_env_now_ns();
	s->req.release = release;
	BUMP(q->c.refused, 1);
	answer(q, s, st, "%s", reason);
}

/*
 * A datagram of the burst, its index key and the index's answer for it. The key comes from
 * the raw header bytes, as the decoder reads them; its signature is computed, and the index
 * looked up, for the whole burst (one bulk lookup: the cache misses overlap) before the
 * first datagram is handled.
 */
struct rx_item {
	struct mb_udp_datagram dg;
	struct udp_key k;
	hash_sig_t sig;
	bool looked_up;		/* found is the index's answer as of the bulk lookup */
	bool recheck;		/* an earlier datagram of the burst has the same signature */
	bool whole;		/* by its raw header, a whole request in one datagram */
	struct udp_slot *found; /* NULL: not indexed */
};

/*
 * The slot indexed under the item's key, or NULL: the bulk lookup's answer, unless that
 * may have changed since: a miss when an earlier datagram of the burst has the same
 * signature (it may have indexed the same new request), a hit whose slot has left the
 * index. Then a lookup of its own.
 */
static struct udp_slot *
item_lookup(struct udp_queue *q, struct rx_item *it)
{
	bool stale;

	if (!it->looked_up)
		stale = true;
	else if (it->found != NULL)
		stale = !it->found->indexed || !key_eq(&it->found->key, &it->k);
	else
		stale = it->recheck;
	if (stale) {
		void *data;

		it->found = rte_hash_lookup_with_hash_data(q->tbl, &it->k, it->sig, &data) >= 0
				    ? data
				    : NULL;
		it->looked_up = true;
		it->recheck = false;
	}
	return it->found;
}

/*
 * A datagram refused for @p reason: the request being reassembled that it belongs to fails
 * with it (@p it NULL: it cannot name one); else it is answered under @p h's id and tenant
 * (answer_datagram()).
 */
static void
refuse(struct udp_queue *q, struct rx_item *it, const struct mb_request_hdr *h, const char *model,
       enum mb_status st, const char *reason)
{
	struct udp_slot *s = it != NULL ? item_lookup(q, it) : NULL;

	if (s != NULL && s->state == SLOT_REASM) {
		reasm_remove(q, s);
		BUMP(q->c.refused, 1);
		answer(q, s, st, "%s", reason);
		return;
	}
	answer_datagram(q, h, model, st, reason);
}

static void
cancel(struct udp_queue *q, struct rx_item *it)
{
	struct udp_slot *s = item_lookup(q, it);

	if (s == NULL)
		return; /* unknown or finished: ignored */
	if (s->state == SLOT_REASM) {
		reasm_remove(q, s);
		BUMP(q->c.cancelled, 1);
		BUMP(q->c.cancelled_reasm, 1);
		answer(q, s, MB_STATUS_CANCELLED,
		       "cancelled by the client before all its datagrams arrived");
	} else if (s->state == SLOT_QUEUED) {
		BUMP(q->c.cancelled, 1);
		atomic_store_explicit(&s->req.cancel, true, memory_order_release);
		q->u->o.ops.cancelled(q->u->o.ops.ctx, &s->req);
	}
}

static bool
same_request(const struct mb_request_hdr *a, const struct mb_request_hdr *b)
{
	return a->payload_len == b->payload_len && a->media == b->media &&
	       a->channels == b->channels && a->sample_rate == b->sample_rate &&
	       a->frames == b->frames && a->height == b->height && a->width == b->width &&
	       a->flags == b->flags && a->timeout_ms == b->timeout_ms &&
	       strcmp(a->model, b->model) == 0;
}

/*
 * A whole request (its one datagram, not in the index) in slot @p s, filled: no reassembly
 * (no buffer, no coverage, no FIFO, no expiry), its frame @p m is its payload. Indexed all
 * the same, so that its duplicates are dropped and its cancel finds it; then queued.
 */
static void
take_whole(struct udp_queue *q, struct udp_slot *s, const struct rx_item *it, struct rte_mbuf *m)
{
	s->mbuf = m;
	/* Taken from the pool just now and left as it was (one segment, its own data, one
	 * reference): it may go back without rte_pktmbuf_free()'s look at its header, which
	 * is cold by then (rte_mbuf_raw_free()'s contract; see take_returns()). */
	s->mbuf_raw = m->pool == q->mbuf_pool && RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1;
	s->req.payload = it->dg.data + MB_PROTO_HDR_LEN;
	idx_insert(q, s); /* on failure: queued, not indexed */
	complete(q, s);
}

static bool datagram(struct udp_queue *q, struct rx_item *it, struct rte_mbuf *m, uint64_t now);

/*
 * A datagram whose raw header says it is a whole request (pass 1: the magic, no CANCEL,
 * frag_offset 0, payload_len its slice): the path of nearly every request, which pays for
 * no reassembly (take_whole()). Anything else on the way (the header does not decode, the
 * index has the key, no slot is free) goes to datagram(), which decides as for any
 * datagram, in the same order. Returns true when the request keeps @p m.
 */
static bool
whole_request(struct udp_queue *q, struct rx_item *it, struct rte_mbuf *m, uint64_t now)
{
	struct mb_request_hdr h;
	struct mb_proto_error err;
	enum mb_udp_drop why;
	struct udp_slot *s;

	if (q->n_free <= MB_UDP_ANSWER_SLOTS || item_lookup(q, it) != NULL ||
	    mb_proto_decode_request(it->dg.data, MB_PROTO_HDR_LEN, MB_TRANSPORT_UDP,
				    q->u->o.cfg->max_payload_bytes, &h, &err) < 0)
		return datagram(q, it, m, now);
	s = slot_get(q, 0, &why); /* a slot is free, and no buffer is needed */
	s->key = it->k;
	s->sig = it->sig;
	fill_request(s, &h, now);
	take_whole(q, s, it, m);
	return true;
}

/* Returns true when the request keeps @m as its payload (a whole request: no copy). */
static bool
datagram(struct udp_queue *q, struct rx_item *it, struct rte_mbuf *m, uint64_t now)
{
	const struct mb_udp_datagram *dg = &it->dg;
	struct mb_request_hdr h;
	struct mb_proto_error err;
	struct udp_slot *s;
	enum mb_udp_drop why;
	uint32_t slice;
	int64_t fresh;

	if (!mb_proto_peek_is_request(dg->data, dg->len)) {
		drop_pkt(q, MB_UDP_DROP_GARBAGE);
		return false;
	}
	if (dg->len < MB_PROTO_HDR_LEN) {
		drop_pkt(q, MB_UDP_DROP_TRUNCATED);
		/* refused as a header that breaks a rule is, when it carries a request id and is
		 * not a cancel; it can belong to a request being reassembled only with its
		 * tenant there too */
		if (dg->len < 16 || (mb_proto_peek_flags(dg->data) & MB_FLAG_CANCEL))
			return false;
		mb_proto_decode_request(dg->data, dg->len, MB_TRANSPORT_UDP, 0, &h, &err);
		h.request_id = err.request_id;
		h.tenant_id = err.tenant_id;
		refuse(q, dg->len >= 20 ? it : NULL, &h, err.model, MB_STATUS_BAD_REQUEST,
		       "datagram: shorter than the 64-byte request header");
		return false;
	}
	slice = dg->len - MB_PROTO_HDR_LEN;
	if (mb_proto_decode_request(dg->data, MB_PROTO_HDR_LEN, MB_TRANSPORT_UDP,
				    q->u->o.cfg->max_payload_bytes, &h, &err) < 0) {
		drop_pkt(q, MB_UDP_DROP_BAD_HEADER);
		/* a cancel gets no response of its own (protocol.md), a refused one neither: an
		 * answer would carry the id of the request it names, and read as that one's */
		if (mb_proto_peek_flags(dg->data) & MB_FLAG_CANCEL)
			return false;
		h.request_id = err.request_id;
		h.tenant_id = err.tenant_id;
		refuse(q, it, &h, err.model, err.status, err.reason);
		return false;
	}
	if (h.flags & MB_FLAG_CANCEL) {
		/* a cancel is its header alone: bytes after it break the rule that payload_len
		 * 0 states, as a payload frame does over ZeroMQ (dropped, never obeyed) */
		if (slice != 0) {
			drop_pkt(q, MB_UDP_DROP_BAD_HEADER);
			return false;
		}
		cancel(q, it);
		return false;
	}
	if (slice == 0 || (uint64_t)h.frag_offset + slice > h.payload_len) {
		char reason[MB_PROTO_REASON_MAX];

		snprintf(reason, sizeof(reason),
			 slice == 0 ? "datagram: carries no payload bytes"
				    : "datagram: its %" PRIu32 "-byte slice at frag_offset %" PRIu32
				      " runs past payload_len %" PRIu32,
			 slice, h.frag_offset, h.payload_len);
		drop_pkt(q, MB_UDP_DROP_BAD_HEADER);
		refuse(q, it, &h, h.model, MB_STATUS_BAD_REQUEST, reason);
		return false;
	}

	s = item_lookup(q, it);
	if (s != NULL) {
		if (s->state != SLOT_REASM) {
			drop_pkt(q, MB_UDP_DROP_DUPLICATE); /* the request is already whole */
			return false;
		}
		if (!same_request(&s->req.hdr, &h)) {
			drop_pkt(q, MB_UDP_DROP_CONFLICT);
			return false;
		}
	} else {
		/* The first datagram of a request (not necessarily its first slice). A whole
		 * request keeps its frame as payload: no buffer, no copy. */
		bool whole = slice == h.payload_len;

		s = slot_get(q, whole ? 0 : h.payload_len, &why);
		if (s == NULL) {
			drop_pkt(q, why);
			answer_datagram(
				q, &h, h.model, MB_STATUS_OVERLOADED,
				why == MB_UDP_DROP_NO_SLOT
					? "too many UDP requests in flight on this rx queue "
					  "(udp.max_requests); retry later"
					: "no payload buffer of that size is free "
					  "(udp.buffer_mb); retry later");
			return false;
		}
		s->key = it->k;
		s->sig = it->sig;
		fill_request(s, &h, now);
		if (whole) {
			take_whole(q, s, it, m);
			return true;
		}
		if (idx_insert(q, s) != 0) {
			/* The table holds max_requests keys; only a bucket overflow gets here. */
			drop_pkt(q, MB_UDP_DROP_NO_SLOT);
			slot_put(q, s);
			return false;
		}
		mb_reasm_init(&s->cov);
		s->state = SLOT_REASM;
		s->expire_ns = now + q->u->reasm_timeout_ns;
		TAILQ_INSERT_TAIL(&q->reasm, s, fifo);
		q->n_reasm++;
		BUMP(q->c.reassembling, 1);
	}
	fresh = mb_reasm_add(&s->cov, h.frag_offset, h.frag_offset + slice);
	if (fresh < 0) {
		drop_pkt(q, MB_UDP_DROP_TOO_FRAGMENTED);
		reasm_remove(q, s);
		BUMP(q->c.refused, 1);
		answer(q, s, MB_STATUS_BAD_REQUEST,
		       "datagrams: more than %d separate pieces outstanding at once; send them "
		       "in order",
		       MB_REASM_MAX_RUNS);
		return false;
	}
	if (fresh == 0) {
		drop_pkt(q, MB_UDP_DROP_DUPLICATE);
		return false;
	}
	/* One copy of the slice into the request's buffer (an overlap rewrites equal bytes). */
	memcpy(s->buf + h.frag_offset, dg->data + MB_PROTO_HDR_LEN, slice);
	if (s->cov.covered == h.payload_len) {
		reasm_remove(q, s);
		complete(q, s);
	}
	return false;
}

static void
expire(struct udp_queue *q, uint64_t now)
{
	struct udp_slot *s;

	while ((s = TAILQ_FIRST(&q->reasm)) != NULL && s->expire_ns <= now) {
		reasm_remove(q, s);
		BUMP(q->c.expired, 1);
		answer(q, s, MB_STATUS_BAD_REQUEST,
		       "incomplete: %" PRIu32 " of %" PRIu32
		       " payload bytes arrived within the reassembly timeout (%" PRIu64 " ms)",
		       s->cov.covered, s->req.hdr.payload_len,
		       q->u->reasm_timeout_ns / MB_NS_PER_MS);
	}
}

/* ---- the rx thread ---- */

/*
 * Requests back from the pipeline, a burst at a time, in passes over it so that the cache
 * misses of each pass overlap instead of following one another:
 *  1. ask for every request's lines that this thread writes (the slot's own and the
 *     request's first lines, which the reset clears), for writing: the egress's core read
 *     at least one of them (the release pointer), so each must come back from it first;
 *  2. reset them: the payload's frame set aside, the request cleared;
 *  3. take them out of the index and push them on the free stack.
 * The frames go back to their pool at the end, in one call, their headers not read (see
 * take_whole()).
 */
#define RET_BURST 32

static unsigned int
take_returns(struct udp_queue *q)
{
	void *objs[RET_BURST];
	unsigned int n, total = 0;

	while ((n = mb_ring_dequeue_burst(q->returns, objs, RET_BURST)) != 0) {
		struct rte_mbuf *raw[RET_BURST], *other[RET_BURST];
		unsigned int n_raw = 0, n_other = 0;

		for (unsigned int i = 0; i < n; i++) {
			const struct udp_slot *s = objs[i];
			const uint8_t *r = (const uint8_t *)&s->req;

			rte_prefetch0_write(&s->state);
			for (size_t off = 0; off < offsetof(struct mb_request, reason) + 1;
			     off += 64)
				rte_prefetch0_write(r + off);
		}
		for (unsigned int i = 0; i < n; i++) {
			struct udp_slot *s = objs[i];

			if (s->mbuf != NULL) {
				if (s->mbuf_raw)
					raw[n_raw++] = s->mbuf;
				else
					other[n_other++] = s->mbuf;
				s->mbuf = NULL;
			}
			s->state = SLOT_FREE;
			mb_request_reset(&s->req); /* frees a buffer through payload_free */
			s->buf = NULL;
		}
		for (unsigned int i = 0; i < n; i++) {
			struct udp_slot *s = objs[i];

			if (s->indexed)
				idx_remove(q, s);
			q->free_stack[q->n_free++] = (uint32_t)(s - q->slots);
		}
		if (n_raw != 0)
			rte_mempool_put_bulk(q->mbuf_pool, (void **)raw, n_raw);
		if (n_other != 0)
			rte_pktmbuf_free_bulk(other, n_other);
		total += n;
	}
	return total;
}

static unsigned int
poll_port(struct udp_queue *q, uint64_t now)
{
	struct rte_mbuf *pkts[RX_BURST], *tx[RX_BURST], *done[RX_BURST];
	struct rx_item items[RX_BURST];
	enum mb_udp_verdict verdict[RX_BURST];
	const void *keys[RX_BURST];
	hash_sig_t sigs[RX_BURST];
	void *data[RX_BURST];
	uint32_t look_idx[RX_BURST];
	uint64_t hits = 0, bytes = 0, seen[4] = {0}; /* seen: a filter of the burst's signatures */
	uint16_t n, n_tx = 0, n_done = 0;
	unsigned int n_look = 0;
	const struct src_table *src = q->src; /* NULL (no udp.sources): the check is skipped */

	n = rte_eth_rx_burst(q->port->port_id, q->queue_id, pkts, RX_BURST);
	if (n == 0)
		return 0;
	for (uint16_t i = 0; i < n && i < 4; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	/* pass 1: classify every frame; key and signature of every request datagram */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rx_item *it = &items[i];
		enum mb_udp_drop why;
		const uint8_t *d;
		uint32_t len;

		if (i + 4 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 4], void *));
		bytes += m->pkt_len;
		if (m->nb_segs != 1) {
			/* Jumbo frames split over mbufs: linearise is a copy we do not do. */
			drop_pkt(q, MB_UDP_DROP_TRUNCATED);
			verdict[i] = MB_UDP_DROP;
			continue;
		}
		verdict[i] = mb_udp_classify(rte_pktmbuf_mtod(m, uint8_t *), m->data_len,
					     &q->port->local, &it->dg, &why);
		if (verdict[i] == MB_UDP_DROP) {
			drop_pkt(q, why);
			continue;
		}
		if (verdict[i] != MB_UDP_DATAGRAM)
			continue;
		/* the NIC's verdict on the UDP checksum, where the port checks it (offload) */
		if (unlikely((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
			     RTE_MBUF_F_RX_L4_CKSUM_BAD)) {
			drop_pkt(q, MB_UDP_DROP_BAD_CHECKSUM);
			verdict[i] = MB_UDP_DROP;
			continue;
		}
		/* The allow-list, before the datagram can find, start, complete, cancel or be
		 * answered for any request: every slice and every cancel passes it alone. */
		if (src != NULL && !src_allowed(src, &it->dg)) {
			drop_pkt(q, MB_UDP_DROP_SOURCE);
			verdict[i] = MB_UDP_DROP;
			continue;
		}
		d = it->dg.data;
		len = it->dg.len;
		/* the key from the raw header, as the decoder reads it: a header that it
		 * refuses still finds the request it belongs to */
		it->sig = key_make(&it->k, len >= 16 ? mb_proto_peek_request_id(d) : 0,
				   len >= 20 ? mb_proto_peek_tenant_id(d) : 0, it->dg.src_ip,
				   it->dg.src_port_be);
		it->whole = len > MB_PROTO_HDR_LEN && mb_proto_peek_is_request(d, len) &&
			    (mb_proto_peek_flags(d) & MB_FLAG_CANCEL) == 0 &&
			    mb_proto_peek_frag_offset(d) == 0 &&
			    mb_proto_peek_payload_len(d) == len - MB_PROTO_HDR_LEN;
		it->looked_up = false;
		it->found = NULL;
		it->recheck = false;
		if ((seen[(it->sig >> 6) & 3] >> (it->sig & 63)) & 1) {
			for (uint16_t j = 0; j < i && !it->recheck; j++)
				it->recheck =
					verdict[j] == MB_UDP_DATAGRAM && items[j].sig == it->sig;
		}
		seen[(it->sig >> 6) & 3] |= 1ull << (it->sig & 63);
		if (it->dg.len >= MB_PROTO_HDR_LEN) {
			keys[n_look] = &it->k;
			sigs[n_look] = it->sig;
			look_idx[n_look++] = i;
		}
	}
	/* the burst's index lookups at once; the slots found are read next (their state) */
	if (n_look != 0 &&
	    rte_hash_lookup_with_hash_bulk_data(q->tbl, keys, sigs, n_look, &hits, data) >= 0) {
		for (unsigned int j = 0; j < n_look; j++) {
			struct rx_item *it = &items[look_idx[j]];

			it->looked_up = true;
			if ((hits >> j) & 1) {
				it->found = data[j];
				rte_prefetch0(&it->found->state);
			}
		}
	}
	/* pass 2: in arrival order */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (verdict[i] == MB_UDP_DATAGRAM &&
		    (items[i].whole ? whole_request(q, &items[i], m, now)
				    : datagram(q, &items[i], m, now)))
			continue; /* the request holds the mbuf now */
		if (verdict[i] == MB_UDP_ARP_REPLY && q->queue_id < q->port->n_tx)
			tx[n_tx++] = m;
		else
			done[n_done++] = m;
	}
	flush_pending(q);
	BUMP(q->c.packets, n);
	BUMP(q->c.bytes, bytes);
	if (n_tx != 0) {
		uint16_t sent = rte_eth_tx_burst(q->port->port_id, q->queue_id, tx, n_tx);

		BUMP(q->c.arp_replies, sent);
		for (uint16_t i = sent; i < n_tx; i++)
			done[n_done++] = tx[i];
	}
	if (n_done != 0)
		rte_pktmbuf_free_bulk(done, n_done);
	return n;
}

static void
close_queue(struct udp_queue *q)
{
	struct udp_slot *s;

	q->closed = true;
	while ((s = TAILQ_FIRST(&q->reasm)) != NULL) {
		reasm_remove(q, s);
		BUMP(q->c.refused, 1);
		answer(q, s, MB_STATUS_UNAVAILABLE,
		       "the service is shutting down; the request was still incomplete");
	}
	if (atomic_fetch_sub(&q->u->open_queues, 1) == 1 && q->u->o.ops.closed != NULL)
		q->u->o.ops.closed(q->u->o.ops.ctx);
	MB_LOG(INFO, "rx queue %s closed; %u request(s) still to come back", q->label,
	       q->n_slots - q->n_free);
}

int
mb_udp_rx_poll(struct mb_udp *u, uint32_t queue, uint64_t now, uint64_t *wake_at)
{
	struct udp_queue *q = &u->queues[queue];
	unsigned int work;
	uint64_t next;

	if (q->finished)
		return MB_POLLER_DONE;
	work = take_returns(q);
	if (!q->closed && mb_cancel_is_cancelled(q->u->o.drain))
		close_queue(q);
	if (!q->closed) {
		work += poll_port(q, now);
		expire(q, now);
	}
	atomic_store_explicit(&q->c.slots_in_use, q->n_slots - q->n_free, memory_order_relaxed);
	if (q->closed && q->n_free == q->n_slots) {
		q->finished = true;
		MB_LOG(INFO, "rx queue %s done", q->label);
		return MB_POLLER_DONE;
	}
	mb_idle_account(&q->idle, work);
	/* A NIC queue raises no wakeup: polled again within the idle policy's sleep, or at
	 * the next reassembly expiry if that is sooner. Requests coming back (returns) are
	 * picked up then too. */
	next = now + q->idle.opts.sleep_ns;
	if (!TAILQ_EMPTY(&q->reasm) && TAILQ_FIRST(&q->reasm)->expire_ns < next)
		next = TAILQ_FIRST(&q->reasm)->expire_ns;
	if (wake_at != NULL && next < *wake_at)
		*wake_at = next;
	return (int)work;
}

static bool
recheck(void *arg)
{
	struct udp_queue *q = arg;

	return mb_ring_count(q->returns) != 0;
}

int
mb_udp_rx_run(struct mb_udp *u, uint32_t queue)
{
	struct udp_queue *q;
	int rc;

	if (queue >= u->n_queues)
		return -EINVAL;
	q = &u->queues[queue];
	rc = rte_thread_register();
	if (rc != 0)
		MB_LOG(WARNING, "rx queue %s: rte_thread_register: %s (mbuf cache off)", q->label,
		       rte_strerror(rte_errno));
	if (q->cpu >= 0 && q->u->o.topo != NULL) {
		rc = mb_topo_bind_thread(q->u->o.topo, q->cpu);
		if (rc < 0)
			MB_LOG(WARNING, "rx queue %s: cannot pin to CPU %d: %s", q->label, q->cpu,
			       strerror(-rc));
	}
	for (;;) {
		uint64_t now = mb_env_now_ns(), wake = UINT64_MAX;
		int n = mb_udp_rx_poll(u, queue, now, &wake);

		if (n == MB_POLLER_DONE)
			break;
		if (n != 0)
			continue;
		mb_idle_pause(&q->idle, mb_ring_doorbell(q->returns), recheck, q,
			      wake > now ? wake - now : 0);
	}
	rte_thread_unregister();
	return 0;
}

const char *
mb_udp_queue_label(const struct mb_udp *u, uint32_t queue)
{
	return queue < u->n_queues ? u->queues[queue].label : "?";
}

/* ---- metrics ---- */

#define SUM_FN(field)                                                                              \
	static int64_t sum_##field(void *arg)                                                      \
	{                                                                                          \
		const struct mb_udp *u = arg;                                                      \
		uint64_t t = 0;                                                                    \
		for (uint32_t i = 0; i < u->n_queues; i++)                                         \
			t += atomic_load_explicit(&u->queues[i].c.field, memory_order_relaxed);    \
		return (int64_t)t;                                                                 \
	}
SUM_FN(packets)
SUM_FN(bytes)
SUM_FN(arp_replies)
SUM_FN(queued)
SUM_FN(refused)
SUM_FN(expired)
SUM_FN(cancelled)
SUM_FN(cancelled_reasm)
SUM_FN(unanswered)
SUM_FN(reassembling)

static int64_t
sum_dropped(void *arg)
{
	const struct drop_arg *d = arg;
	uint64_t t = 0;

	for (uint32_t i = 0; i < d->u->n_queues; i++)
		t += atomic_load_explicit(&d->u->queues[i].c.dropped[d->why], memory_order_relaxed);
	return (int64_t)t;
}

static int64_t
queue_busy_ms(void *arg)
{
	struct mb_idle_stats st;

	mb_idle_stats(&((struct udp_queue *)arg)->idle, &st);
	return (int64_t)(st.busy_tsc * 1000 / rte_get_tsc_hz());
}

static int64_t
queue_idle_ms(void *arg)
{
	struct mb_idle_stats st;

	mb_idle_stats(&((struct udp_queue *)arg)->idle, &st);
	return (int64_t)(st.idle_tsc * 1000 / rte_get_tsc_hz());
}

static int64_t
queue_slots_in_use(void *arg)
{
	struct udp_queue *q = arg;

	return (int64_t)atomic_load_explicit(&q->c.slots_in_use, memory_order_relaxed);
}

/* The kernel's drops of @p p's packet sockets so far (net_af_packet; 0 for other PMDs). */
static uint64_t
kernel_drops(struct udp_port *p)
{
	for (uint32_t i = 0; i < p->n_ksock; i++) {
		struct tpacket_stats_v3 st; /* the largest; TPACKET_V2 fills tpacket_stats */
		socklen_t len = sizeof(st);

		memset(&st, 0, sizeof(st));
		if (getsockopt(p->ksock[i], SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			atomic_fetch_add_explicit(&p->kernel_drops, st.tp_drops,
						  memory_order_relaxed);
	}
	return atomic_load_explicit(&p->kernel_drops, memory_order_relaxed);
}

/* The NIC's own counters: frames it dropped before our rx thread saw them (with
 * net_af_packet, the kernel's drops of its sockets' full rings). */
static int64_t
port_missed(void *arg)
{
	struct udp_port *p = arg;
	struct rte_eth_stats st;
	uint64_t k = kernel_drops(p);

	return rte_eth_stats_get(p->port_id, &st) == 0 ? (int64_t)(st.imissed + k) : (int64_t)k;
}

/*
 * net_af_packet does not count the frames the kernel drops when a queue's socket ring is
 * full (DPDK 22.11 to today): its packet sockets, one per queue pair and bound to
 * @p ifindex, are found among the process's descriptors (the PMD made them at probe) and
 * duplicated, so their PACKET_STATISTICS can be read for as long as the port lives.
 */
static void
find_packet_sockets(struct mb_udp *u, struct udp_port *p, int ifindex)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && p->n_ksock < KERNEL_SOCKETS_MAX) {
		struct sockaddr_ll sll;
		socklen_t len = sizeof(int), slen = sizeof(sll);
		int fd, domain = 0, dup;
		bool ours = false;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d) || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
		    domain != AF_PACKET || getsockname(fd, (struct sockaddr *)&sll, &slen) < 0 ||
		    sll.sll_ifindex != ifindex)
			continue;
		for (uint32_t i = 0; i < u->n_ports && !ours; i++) /* a duplicate of ours */
			for (uint32_t k = 0; k < u->ports[i].n_ksock && !ours; k++)
				ours = u->ports[i].ksock[k] == fd;
		if (!ours && (dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0)
			p->ksock[p->n_ksock++] = dup;
	}
	closedir(d);
}

static int64_t
port_no_mbuf(void *arg)
{
	struct rte_eth_stats st;

	return rte_eth_stats_get(((struct udp_port *)arg)->port_id, &st) == 0
		       ? (int64_t)st.rx_nombuf
		       : 0;
}

static int64_t
port_errors(void *arg)
{
	struct rte_eth_stats st;

	return rte_eth_stats_get(((struct udp_port *)arg)->port_id, &st) == 0 ? (int64_t)st.ierrors
									      : 0;
}

static void
register_metrics(struct mb_udp *u)
{
	struct mb_metrics *r = u->o.metrics;
	char l[128];

	if (r == NULL)
		return;
	mb_metrics_counter_fn(r, "mediabatch_rx_packets_total",
			      "Packets received by the polled DPDK cores.", NULL, sum_packets, u);
	mb_metrics_counter_fn(r, "mediabatch_rx_bytes_total",
			      "Bytes of the packets received by the polled DPDK cores.", NULL,
			      sum_bytes, u);
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++) {
		u->drop_args[w] = (struct drop_arg){.u = u, .why = (enum mb_udp_drop)w};
		mb_metrics_counter_fn(
			r, "mediabatch_rx_dropped_total",
			"Packets dropped on the DPDK path, by reason (docs/operating.md).",
			mb_metrics_labels(l, sizeof(l), "reason",
					  mb_udp_drop_name((enum mb_udp_drop)w), NULL),
			sum_dropped, &u->drop_args[w]);
	}
	mb_metrics_counter_fn(r, "mediabatch_rx_arp_replies_total",
			      "ARP requests for a port's address answered.", NULL, sum_arp_replies,
			      u);
	{
		static const char *const outcomes[] = MB_UDP_OUTCOMES;
		int64_t (*const sums[])(void *) = {sum_queued, sum_refused, sum_expired,
						   sum_cancelled_reasm};

		for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++)
			mb_metrics_counter_fn(
				r, "mediabatch_rx_requests_total", MB_UDP_REQUESTS_HELP,
				mb_metrics_labels(l, sizeof(l), "outcome", outcomes[o], NULL),
				sums[o], u);
	}
	mb_metrics_counter_fn(r, "mediabatch_rx_reassembly_expired_total",
			      "UDP requests still incomplete at the reassembly timeout.", NULL,
			      sum_expired, u);
	mb_metrics_counter_fn(r, "mediabatch_rx_cancels_total",
			      "UDP cancels that found their request.", NULL, sum_cancelled, u);
	mb_metrics_counter_fn(r, "mediabatch_rx_unanswered_total", MB_UDP_UNANSWERED_HELP, NULL,
			      sum_unanswered, u);
	mb_metrics_gauge_fn(r, "mediabatch_rx_reassembly_entries",
			    "UDP requests being reassembled now.", NULL, sum_reassembling, u);
	for (uint32_t i = 0; i < u->n_ports; i++) {
		static const char help[] =
			"Frames the NIC dropped before an rx thread read them: missed (rx ring "
			"full, or with net_af_packet the kernel's socket ring: the rx thread is "
			"too slow or asleep), no_mbuf (mbuf pool empty), errors.";
		char port[16];

		snprintf(port, sizeof(port), "port%u", i);
		mb_metrics_counter_fn(
			r, "mediabatch_rx_nic_dropped_total", help,
			mb_metrics_labels(l, sizeof(l), "port", port, "reason", "missed", NULL),
			port_missed, &u->ports[i]);
		mb_metrics_counter_fn(
			r, "mediabatch_rx_nic_dropped_total", help,
			mb_metrics_labels(l, sizeof(l), "port", port, "reason", "no_mbuf", NULL),
			port_no_mbuf, &u->ports[i]);
		mb_metrics_counter_fn(
			r, "mediabatch_rx_nic_dropped_total", help,
			mb_metrics_labels(l, sizeof(l), "port", port, "reason", "errors", NULL),
			port_errors, &u->ports[i]);
	}
	for (uint32_t i = 0; i < u->n_queues; i++) {
		struct udp_queue *q = &u->queues[i];

		mb_metrics_labels(l, sizeof(l), "queue", q->label, NULL);
		mb_metrics_counter_fn(r, "mediabatch_rx_poll_busy_ms_total",
				      "Time an rx thread spent on polls that found work.", l,
				      queue_busy_ms, q);
		mb_metrics_counter_fn(r, "mediabatch_rx_poll_idle_ms_total",
				      "Time an rx thread spent on empty polls and sleeping.", l,
				      queue_idle_ms, q);
		mb_metrics_gauge_fn(r, "mediabatch_rx_slots_in_use",
				    "Request slots of an rx queue in use (udp.max_requests).", l,
				    queue_slots_in_use, q);
	}
}

/* ---- set-up ---- */

int
mb_udp_eal_vdevs(const struct mb_config *cfg, char *buf, size_t buf_len, const char **argv,
		 unsigned int max)
{
	size_t off = 0;
	int n = 0;

	for (unsigned int i = 0; i < cfg->n_udp_ports; i++) {
		const char *d = cfg->udp_ports[i].device;
		int w;

		if (strncmp(d, "net_", 4) != 0)
			continue;
		if ((unsigned int)n >= max)
			return -E2BIG;
		w = snprintf(buf + off, buf_len - off, "--vdev=%s", d);
		if (w < 0 || (size_t)w >= buf_len - off)
			return -E2BIG;
		argv[n++] = buf + off;
		off += (size_t)w + 1;
	}
	return n;
}

static int
find_port(const char *device, uint16_t *port_id)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	const char *comma = strchr(device, ',');
	size_t len = comma ? (size_t)(comma - device) : strlen(device);

	if (len >= sizeof(name))
		return -ENAMETOOLONG;
	memcpy(name, device, len);
	name[len] = '\0';
	if (rte_eth_dev_get_port_by_name(name, port_id) == 0)
		return 0;
	/* PCI devices may be named with or without the domain */
	if (strchr(name, ':') != NULL && strchr(name, ':') == strrchr(name, ':')) {
		char full[RTE_ETH_NAME_MAX_LEN + 8];

		snprintf(full, sizeof(full), "0000:%.*s", RTE_ETH_NAME_MAX_LEN - 8, name);
		if (rte_eth_dev_get_port_by_name(full, port_id) == 0)
			return 0;
	}
	return -ENODEV;
}

static struct rte_mempool *
mbuf_pool(struct mb_udp *u, int socket)
{
	int slot = socket < 0 ? RTE_MAX_NUMA_NODES : socket;
	char name[RTE_MEMPOOL_NAMESIZE];

	if (u->mbufs[slot] != NULL)
		return u->mbufs[slot];
	snprintf(name, sizeof(name), "mb_rx_mbuf_%u_%d", u->id, slot);
	u->mbufs[slot] = rte_pktmbuf_pool_create(name, u->o.cfg->udp_mbufs, 256, 0,
						 RTE_MBUF_DEFAULT_BUF_SIZE,
						 socket < 0 ? SOCKET_ID_ANY : socket);
	return u->mbufs[slot];
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The allow-list of the options, checked before anything is set up: -EINVAL with the
 * entry named in @p err. */
static int
src_check(const struct mb_udp_opts *o, char *err, size_t err_len)
{
	uint64_t n_prefixes = 0;
	uint32_t *tenants;
	int rc = 0;

	if (o->n_sources == 0)
		return 0;
	if (o->sources == NULL) {
		snprintf(err, err_len, "udp.sources: %u tenants but no list", o->n_sources);
		return -EINVAL;
	}
	if (o->n_sources > SRC_MAX_TENANTS) {
		snprintf(err, err_len, "udp.sources: %u tenants; at most %u", o->n_sources,
			 SRC_MAX_TENANTS);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < o->n_sources; i++) {
		const struct mb_udp_source_config *e = &o->sources[i];

		if (e->n_prefixes == 0 || e->prefixes == NULL) {
			snprintf(err, err_len,
				 "udp.sources[%u]: tenant %" PRIu32 " has no prefixes", i,
				 e->tenant);
			return -EINVAL;
		}
		for (unsigned int k = 0; k < e->n_prefixes; k++)
			if ((e->prefixes[k].addr & ~e->prefixes[k].mask) != 0) {
				snprintf(err, err_len,
					 "udp.sources[%u].prefixes[%u]: host bits set (it would "
					 "match nothing)",
					 i, k);
				return -EINVAL;
			}
		n_prefixes += e->n_prefixes;
	}
	if (n_prefixes > SRC_MAX_PREFIXES) {
		snprintf(err, err_len, "udp.sources: %" PRIu64 " prefixes in all; at most %u",
			 n_prefixes, SRC_MAX_PREFIXES);
		return -EINVAL;
	}
	tenants = mb_env_zalloc((size_t)o->n_sources * sizeof(*tenants), MB_NUMA_ANY);
	if (tenants == NULL) {
		snprintf(err, err_len, "udp.sources: out of memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < o->n_sources; i++)
		tenants[i] = o->sources[i].tenant;
	qsort(tenants, o->n_sources, sizeof(*tenants), cmp_u32);
	for (unsigned int i = 1; i < o->n_sources && rc == 0; i++)
		if (tenants[i] == tenants[i - 1]) {
			snprintf(err, err_len, "udp.sources: tenant %" PRIu32 " is listed twice",
				 tenants[i]);
			rc = -EINVAL;
		}
	mb_env_free(tenants);
	return rc;
}

/* The allow-list's table on NUMA node @p socket (built on first use; checked already). */
static struct src_table *
src_table_for(struct mb_udp *u, int socket)
{
	const struct mb_udp_opts *o = &u->o;
	int slot = socket < 0 ? RTE_MAX_NUMA_NODES : socket;
	uint32_t bits = 4, n_extra = 0, used = 0;
	struct src_table *t;
	size_t head, size;

	if (u->src[slot] != NULL)
		return u->src[slot];
	while ((1u << bits) < 2 * o->n_sources) /* at most half full */
		bits++;
	for (unsigned int i = 0; i < o->n_sources; i++)
		if (o->sources[i].n_prefixes > 1)
			n_extra += o->sources[i].n_prefixes;
	head = sizeof(*t) + ((size_t)1 << bits) * sizeof(struct src_entry);
	size = head + (size_t)n_extra * sizeof(struct mb_prefix);
	t = mb_env_zalloc(size, socket < 0 ? MB_NUMA_ANY : socket);
	if (t == NULL)
		return NULL;
	t->shift = 32 - bits;
	t->mask = (1u << bits) - 1;
	t->extra = (struct mb_prefix *)((uint8_t *)t + head);
	for (unsigned int i = 0; i < o->n_sources; i++) {
		const struct mb_udp_source_config *c = &o->sources[i];
		uint32_t h = src_home(t, c->tenant), probe = 1;
		struct src_entry *e;

		while (t->slots[h].n != 0) { /* tenants are unique (src_check()) */
			h = (h + 1) & t->mask;
			probe++;
		}
		e = &t->slots[h];
		e->tenant = c->tenant;
		e->n = c->n_prefixes;
		if (c->n_prefixes == 1) {
			e->one = c->prefixes[0];
		} else {
			e->off = used;
			memcpy(&t->extra[used], c->prefixes, c->n_prefixes * sizeof(*c->prefixes));
			used += c->n_prefixes;
		}
		if (probe > t->longest)
			t->longest = probe;
	}
	u->src[slot] = t;
	MB_LOG(NOTICE,
	       "udp.sources: %u tenant(s), %u slots (%zu KiB) on NUMA node %d, longest probe "
	       "%" PRIu32,
	       o->n_sources, t->mask + 1, (size + 1023) >> 10, socket, t->longest);
	return t;
}

static int
setup_port(struct mb_udp *u, uint32_t pi, char *err, size_t err_len)
{
	const struct mb_config *cfg = u->o.cfg;
	struct udp_port *p = &u->ports[pi];
	const struct mb_udp_port_config *pc = &cfg->udp_ports[pi];
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	struct rte_mempool *pool;
	uint16_t nrx = (uint16_t)pc->rx_queues, ntx, nb_rxd = (uint16_t)cfg->udp_rx_descriptors,
		 nb_txd = 512;
	int rc;

	p->cfg = pc;
	if (find_port(pc->device, &p->port_id) < 0) {
		snprintf(err, err_len, "udp.ports[%u].device: no DPDK port '%s' (%s)", pi,
			 pc->device,
			 strncmp(pc->device, "net_", 4) == 0
				 ? "the virtual device did not probe: see the EAL messages above"
				 : "a PCI device must be bound to vfio-pci and allowed by eal.args "
				   "(-a); see the README, \"Bare metal\"");
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0) {
		snprintf(err, err_len, "udp.ports[%u] (%s): cannot read device info: %s", pi,
			 pc->device, rte_strerror(-rc));
		return rc;
	}
	if (nrx > info.max_rx_queues) {
		snprintf(err, err_len,
			 "udp.ports[%u].rx_queues: %u, but %s (driver %s) has at most %u", pi, nrx,
			 pc->device, info.driver_name, info.max_rx_queues);
		return -EINVAL;
	}
	ntx = nrx < info.max_tx_queues ? nrx : info.max_tx_queues;
	memset(&conf, 0, sizeof(conf));
	/* the NIC checks UDP checksums where it can; bad ones are dropped (bad_checksum) */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if (nrx > 1) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;

		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else {
			MB_LOG(WARNING,
			       "udp.ports[%u] (%s): %u rx queues but the driver offers no RSS; "
			       "unless it spreads flows itself (net_af_packet does, by fanout), "
			       "only queue 0 will receive",
			       pi, pc->device, nrx);
		}
	}
	rc = rte_eth_dev_configure(p->port_id, nrx, ntx, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nb_rxd, &nb_txd);
	if (rc != 0) {
		snprintf(err, err_len, "udp.ports[%u] (%s): cannot configure: %s", pi, pc->device,
			 rte_strerror(-rc));
		return rc;
	}
	p->socket = rte_eth_dev_socket_id(p->port_id);
	pool = mbuf_pool(u, p->socket);
	if (pool == NULL) {
		snprintf(err, err_len,
			 "udp.ports[%u] (%s): cannot create %u mbufs on NUMA node %d: %s (raise "
			 "eal.memory_mb or lower udp.mbufs)",
			 pi, pc->device, cfg->udp_mbufs, p->socket, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* Whole requests keep their mbuf while queued: rx rings plus every slot may hold one. */
	if ((uint64_t)cfg->udp_mbufs <
	    (uint64_t)nrx * (nb_rxd + cfg->udp_max_requests + 2 * RX_BURST))
		MB_LOG(WARNING,
		       "udp.ports[%u]: udp.mbufs %u is below what %u rx queue(s) may hold (%u "
		       "descriptors + %u requests each): under load the NIC will drop frames "
		       "(rx_nic_dropped_total{reason=\"no_mbuf\"})",
		       pi, cfg->udp_mbufs, nrx, nb_rxd, cfg->udp_max_requests);
	for (uint16_t q = 0; q < nrx; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, nb_rxd,
					    p->socket < 0 ? (unsigned int)SOCKET_ID_ANY
							  : (unsigned int)p->socket,
					    NULL, pool);
		if (rc != 0) {
			snprintf(err, err_len, "udp.ports[%u] (%s): rx queue %u: %s", pi,
				 pc->device, q, rte_strerror(-rc));
			return rc;
		}
	}
	for (uint16_t q = 0; q < ntx; q++) {
		rc = rte_eth_tx_queue_setup(p->port_id, q, nb_txd,
					    p->socket < 0 ? (unsigned int)SOCKET_ID_ANY
							  : (unsigned int)p->socket,
					    NULL);
		if (rc != 0) {
			snprintf(err, err_len, "udp.ports[%u] (%s): tx queue %u: %s", pi,
				 pc->device, q, rte_strerror(-rc));
			return rc;
		}
	}
	p->n_tx = ntx;
	if (strcmp(info.driver_name, "net_af_packet") == 0) {
		find_packet_sockets(u, p, (int)info.if_index);
		if (p->n_ksock == 0)
			MB_LOG(WARNING,
			       "udp.ports[%u] (%s): its packet sockets were not found: frames the "
			       "kernel drops on a full socket ring are not counted",
			       pi, pc->device);
	}
	rc = rte_eth_macaddr_get(p->port_id, &mac);
	if (rc != 0)
		memset(&mac, 0, sizeof(mac));
	memcpy(p->local.mac, mac.addr_bytes, 6);
	p->local.ip = pc->address;
	p->local.port_be = rte_cpu_to_be_16((uint16_t)cfg->udp_port);
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		snprintf(err, err_len, "udp.ports[%u] (%s): cannot start: %s", pi, pc->device,
			 rte_strerror(-rc));
		return rc;
	}
	p->started = true;
	MB_LOG(NOTICE,
	       "udp.ports[%u]: %s (driver %s, NUMA node %d), %s:%u, MAC " RTE_ETHER_ADDR_PRT_FMT
	       ", %u rx queue(s)%s; UDP checksums %s",
	       pi, pc->device, info.driver_name, p->socket, pc->address_text, cfg->udp_port,
	       RTE_ETHER_ADDR_BYTES(&mac), nrx,
	       conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? " with RSS" : "",
	       conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_UDP_CKSUM
		       ? "checked by the NIC (bad ones dropped: bad_checksum)"
		       : "not checked (the driver offers no UDP checksum offload)");
	return 0;
}

uint32_t
mb_udp_buffer_plan(const struct mb_config *cfg, uint32_t *sizes, uint64_t *counts)
{
	uint64_t budget = (uint64_t)cfg->udp_buffer_mb << 20, per_class;
	uint32_t size = MIN_CLASS, max = cfg->max_payload_bytes, n = 0;

	while (n < MAX_CLASSES) {
		uint32_t s = size < max ? size : max;

		sizes[n++] = s;
		if (s == max)
			break;
		size *= 4;
	}
	per_class = budget / n;
	for (uint32_t k = 0; k < n; k++) {
		counts[k] = per_class / sizes[k];
		if (counts[k] < 2)
			counts[k] = 2;
		if (counts[k] > mb_udp_queue_slots(cfg))
			counts[k] = mb_udp_queue_slots(cfg);
	}
	return n;
}

uint64_t
mb_udp_buffer_heap_bytes(const struct mb_config *cfg)
{
	uint32_t sizes[MAX_CLASSES];
	uint64_t counts[MAX_CLASSES], bytes = 0;
	uint32_t n = mb_udp_buffer_plan(cfg, sizes, counts);

	/* each element: its bytes and the mempool's header and trailer, in cache lines */
	for (uint32_t k = 0; k < n; k++)
		bytes += counts[k] * (RTE_ALIGN_CEIL((uint64_t)sizes[k], RTE_CACHE_LINE_SIZE) +
				      2 * RTE_CACHE_LINE_SIZE);
	return bytes;
}

static int
setup_buffers(struct udp_queue *q, int socket, char *err, size_t err_len)
{
	uint64_t counts[MAX_CLASSES];
	char name[RTE_MEMPOOL_NAMESIZE];

	q->n_classes = mb_udp_buffer_plan(q->u->o.cfg, q->class_size, counts);
	for (uint32_t k = 0; k < q->n_classes; k++) {
		uint64_t n = counts[k];

		snprintf(name, sizeof(name), "mb_rxb_%u_%u_%u", q->u->id, q->index, k);
		q->bufs[k] = rte_mempool_create(
			name, (unsigned int)n, q->class_size[k], 0, 0, NULL, NULL, NULL, NULL,
			socket < 0 ? SOCKET_ID_ANY : socket,
			RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET | RTE_MEMPOOL_F_NO_IOVA_CONTIG);
		if (q->bufs[k] == NULL) {
			snprintf(err, err_len,
				 "rx queue %s: cannot create %" PRIu64 " payload buffers of %u "
				 "bytes: %s (raise eal.memory_mb, or the memory eal.args gives, or "
				 "lower udp.buffer_mb)",
				 q->label, n, q->class_size[k], rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	return 0;
}

static int
setup_queue(struct mb_udp *u, struct udp_queue *q, char *err, size_t err_len)
{
	const struct mb_config *cfg = u->o.cfg;
	int node = q->port->socket < 0 ? MB_NUMA_ANY : q->port->socket;
	struct rte_hash_parameters hp = {0};
	struct mb_ring_opts ro;
	char name[64];
	int rc;

	q->mbuf_pool = u->mbufs[q->port->socket < 0 ? RTE_MAX_NUMA_NODES : q->port->socket];
	if (u->o.n_sources != 0) {
		q->src = src_table_for(u, q->port->socket);
		if (q->src == NULL) {
			snprintf(err, err_len,
				 "rx queue %s: cannot allocate the udp.sources table of %u tenants",
				 q->label, u->o.n_sources);
			return -ENOMEM;
		}
	}
	q->n_slots = mb_udp_queue_slots(cfg);
	q->slots = mb_env_zalloc((size_t)q->n_slots * sizeof(*q->slots), node);
	q->free_stack = mb_env_zalloc((size_t)q->n_slots * sizeof(uint32_t), node);
	if (q->slots == NULL || q->free_stack == NULL) {
		snprintf(err, err_len, "rx queue %s: cannot allocate %u request slots", q->label,
			 q->n_slots);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < q->n_slots; i++) {
		q->slots[i].q = q;
		q->free_stack[i] = q->n_slots - 1 - i;
	}
	q->n_free = q->n_slots;
	TAILQ_INIT(&q->reasm);

	snprintf(name, sizeof(name), "mb_rxidx_%u_%u", u->id, q->index);
	hp.name = name;
	hp.entries = q->n_slots < 8 ? 8 : q->n_slots;
	hp.key_len = sizeof(struct udp_key);
	hp.hash_func = rte_hash_crc;
	hp.hash_func_init_val = INDEX_HASH_INIT; /* key_sig() computes the same */
	hp.socket_id = q->port->socket < 0 ? SOCKET_ID_ANY : q->port->socket;
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE; /* no bucket overflow below entries */
	q->tbl = rte_hash_create(&hp);
	if (q->tbl == NULL) {
		snprintf(err, err_len, "rx queue %s: cannot create its index of %u: %s", q->label,
			 hp.entries, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	rte_hash_set_cmp_func(q->tbl, key_cmp);
	{
		/* key_make()'s signature must be the table's own for the key, or requests would
		 * be indexed where no lookup looks: a bug, not an input */
		struct udp_key k;
		hash_sig_t sig = key_make(&k, 0x0123456789abcdefull, 42, 0x0100000a, 0x5c1b);

		if (sig != key_sig(&k) || sig != rte_hash_hash(q->tbl, &k)) {
			MB_LOG(ERR, "rx queue %s: key signatures disagree", q->label);
			abort();
		}
	}
	rc = setup_buffers(q, q->port->socket, err, err_len);
	if (rc < 0)
		return rc;
	mb_ring_opts_init(&ro);
	snprintf(name, sizeof(name), "rxret_%u_%u", u->id, q->index);
	ro.name = name;
	ro.capacity = q->n_slots;
	ro.prod_sync = MB_RING_SYNC_ST; /* the egress thread only */
	ro.cons_sync = MB_RING_SYNC_ST;
	ro.numa_node = node;
	rc = mb_ring_create(&ro, &q->returns);
	if (rc < 0) {
		snprintf(err, err_len, "rx queue %s: return ring of %u: %s", q->label, q->n_slots,
			 strerror(-rc));
		return rc;
	}
	rc = mb_idle_init(&q->idle, &cfg->idle);
	if (rc < 0) {
		snprintf(err, err_len, "rx queue %s: idle policy: %s", q->label, strerror(-rc));
		return rc;
	}
	return 0;
}

int
mb_udp_create(const struct mb_udp_opts *opts, struct mb_udp **out, char *err, size_t err_len)
{
	const struct mb_config *cfg = opts->cfg;
	struct mb_udp *u;
	uint32_t qi = 0;
	int rc;

	*out = NULL;
	if (cfg->n_udp_ports == 0 || opts->results == NULL || opts->drain == NULL ||
	    opts->ops.admit == NULL || opts->ops.model_ring == NULL || opts->ops.unadmit == NULL ||
	    opts->ops.cancelled == NULL) {
		snprintf(err, err_len, "UDP ingest: missing ports or pipeline pieces");
		return -EINVAL;
	}
	rc = src_check(opts, err, err_len);
	if (rc < 0)
		return rc;
	u = mb_env_zalloc(sizeof(*u), MB_NUMA_ANY);
	if (u == NULL)
		return -ENOMEM;
	u->o = *opts;
	u->id = atomic_fetch_add(&g_instances, 1);
	u->reasm_timeout_ns = (uint64_t)cfg->udp_reassembly_timeout_ms * MB_NS_PER_MS;
	u->n_ports = cfg->n_udp_ports;
	for (uint32_t i = 0; i < u->n_ports; i++)
		u->n_queues += cfg->udp_ports[i].rx_queues;
	if (u->n_queues > MAX_QUEUES) {
		snprintf(err, err_len, "udp.ports: %u rx queues in all; at most %d", u->n_queues,
			 MAX_QUEUES);
		mb_env_free(u);
		return -EINVAL;
	}
	u->ports = mb_env_zalloc(u->n_ports * sizeof(*u->ports), MB_NUMA_ANY);
	u->queues = mb_env_zalloc(u->n_queues * sizeof(*u->queues), MB_NUMA_ANY);
	if (u->ports == NULL || u->queues == NULL) {
		rc = -ENOMEM;
		snprintf(err, err_len, "UDP ingest: out of memory");
		goto fail;
	}
	atomic_init(&u->open_queues, u->n_queues);
	for (uint32_t pi = 0; pi < u->n_ports; pi++) {
		const struct mb_udp_port_config *pc = &cfg->udp_ports[pi];

		rc = setup_port(u, pi, err, err_len);
		if (rc < 0)
			goto fail;
		for (uint32_t k = 0; k < pc->rx_queues; k++, qi++) {
			struct udp_queue *q = &u->queues[qi];

			q->u = u;
			q->port = &u->ports[pi];
			q->index = qi;
			q->queue_id = (uint16_t)k;
			q->cpu = -1;
			snprintf(q->label, sizeof(q->label), "port%u/q%u", pi, k);
			if (pc->n_cpus != 0)
				q->cpu = pc->cpus[k];
			rc = setup_queue(u, q, err, err_len);
			if (rc < 0)
				goto fail;
		}
	}
	u->o.sources = NULL; /* borrowed for the call: copied into the tables */
	register_metrics(u);
	*out = u;
	return 0;
fail:
	mb_udp_destroy(&u);
	return rc;
}

void
mb_udp_destroy(struct mb_udp **up)
{
	struct mb_udp *u;

	if (up == NULL || *up == NULL)
		return;
	u = *up;
	for (uint32_t i = 0; u->queues != NULL && i < u->n_queues; i++) {
		struct udp_queue *q = &u->queues[i];

		if (q->slots != NULL && q->n_free != q->n_slots)
			MB_LOG(ERR, "rx queue %s destroyed with %u request(s) out", q->label,
			       q->n_slots - q->n_free);
		mb_ring_destroy(&q->returns);
		for (uint32_t k = 0; k < q->n_classes; k++)
			rte_mempool_free(q->bufs[k]);
		rte_hash_free(q->tbl);
		mb_env_free(q->slots);
		mb_env_free(q->free_stack);
	}
	for (uint32_t i = 0; u->ports != NULL && i < u->n_ports; i++) {
		if (!u->ports[i].started)
			continue;
		rte_eth_dev_stop(u->ports[i].port_id);
		rte_eth_dev_close(u->ports[i].port_id);
	}
	for (uint32_t i = 0; u->ports != NULL && i < u->n_ports; i++)
		for (uint32_t k = 0; k < u->ports[i].n_ksock; k++)
			close(u->ports[i].ksock[k]);
	for (int i = 0; i <= RTE_MAX_NUMA_NODES; i++) {
		rte_mempool_free(u->mbufs[i]);
		mb_env_free(u->src[i]);
	}
	mb_env_free(u->ports);
	mb_env_free(u->queues);
	mb_env_free(u);
	*up = NULL;
}

uint32_t
mb_udp_queues(const struct mb_udp *u)
{
	return u->n_queues;
}

uint32_t
mb_udp_outstanding(const struct mb_udp *u)
{
	uint64_t out = 0;

	for (uint32_t i = 0; i < u->n_queues; i++) {
		struct udp_queue *q = &u->queues[i];
		/* released first: it never passes handed, so the difference cannot underflow */
		uint64_t rel = atomic_load_explicit(&q->released, memory_order_acquire);

		out += atomic_load_explicit(&q->handed, memory_order_acquire) - rel;
	}
	return (uint32_t)out;
}

bool
mb_udp_closed(const struct mb_udp *u)
{
	return atomic_load_explicit(&((struct mb_udp *)u)->open_queues, memory_order_acquire) == 0;
}

void
mb_udp_stats(const struct mb_udp *u, struct mb_udp_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < u->n_queues; i++) {
		const struct udp_counters *c = &u->queues[i].c;

#define LD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
		out->packets += LD(packets);
		out->bytes += LD(bytes);
		out->arp_replies += LD(arp_replies);
		out->queued += LD(queued);
		out->refused += LD(refused);
		out->expired += LD(expired);
		out->cancelled += LD(cancelled);
		out->cancelled_reasm += LD(cancelled_reasm);
		out->answered += LD(answered);
		out->unanswered += LD(unanswered);
		out->reassembling += LD(reassembling);
		for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
			out->dropped[w] += LD(dropped[w]);
#undef LD
	}
}
