/**
 * @file
 * Ring: a bounded FIFO of pointers over DPDK's rte_ring, placed on a NUMA node, with a
 * doorbell so that a consumer can wait for work without burning a core.
 *
 * Producer and consumer sides each have a synchronisation mode:
 *
 * - MB_RING_SYNC_ST: one thread on that side (SP/SC). Fastest. The default.
 * - MB_RING_SYNC_MT_HTS: several threads, head/tail sync: one operation at a time on that
 *   side, so a preempted thread cannot make the others spin. Use this for several producers
 *   or consumers that are ordinary (preemptible) threads.
 * - MB_RING_SYNC_MT_RTS: several threads, relaxed tail sync (DPDK's RTS mode).
 * - MB_RING_SYNC_MT: DPDK's classic MP/MC. DPDK warns that it spins when a thread is
 *   preempted mid-operation; only for lcores that each own a core.
 *
 * The ring is FIFO and holds exactly @c capacity pointers. Enqueue and dequeue are bursts:
 * they move as many pointers as fit or are available, and return the count. A full ring is
 * not an error but backpressure: the producer decides (the pipeline answers OVERLOADED).
 *
 * Waiting: mb_ring_dequeue_burst_wait() polls, then applies the consumer thread's idle
 * policy (struct mb_idle): spin, yield, or sleep on the ring's doorbell, which every enqueue
 * rings. A consumer that waits on sockets too polls the fd of mb_ring_doorbell() (see
 * mb_doorbell.h).
 *
 * Ownership: the ring never owns the objects it carries; whoever dequeues a pointer owns it.
 * Destroying a ring that still holds pointers leaks them unless the caller drains it first.
 */
#ifndef MB_RING_H
#define MB_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ring.h>

#include "mb_doorbell.h"
#include "mb_idle.h"

enum mb_ring_sync {
	MB_RING_SYNC_ST = 0,
	MB_RING_SYNC_MT_HTS,
	MB_RING_SYNC_MT_RTS,
	MB_RING_SYNC_MT,
};

struct mb_ring_opts {
	/** Unique name, 1..28 characters (DPDK memzone names are global). Copied. */
	const char *name;
	/** Pointers the ring holds, 1..(1 << 30). */
	unsigned int capacity;
	/** OS index of the NUMA node for the ring's memory, or MB_NUMA_ANY. */
	int numa_node;
	enum mb_ring_sync prod_sync;
	enum mb_ring_sync cons_sync;
	/**
	 * A doorbell shared with other rings that the same consumer thread serves (borrowed;
	 * it must outlive the ring), or NULL for the ring's own.
	 */
	struct mb_doorbell *doorbell;
};

/** A ring. Fields are private; they are in the header only so the hot path can inline. */
struct mb_ring {
	struct rte_ring *r;
	struct mb_doorbell *db; /* &own_db, or a shared one */
	struct mb_doorbell own_db;
	atomic_uint kicks;
	int numa_node;
	char name[32];
};

/** Defaults: no name (must be set), capacity 1024, any node, single producer and consumer. */
void mb_ring_opts_init(struct mb_ring_opts *opts);

/**
 * Create a ring. Needs EAL (mb_eal_init()). Returns 0 and sets @p out (owned by the caller,
 * freed with mb_ring_destroy()); -EINVAL for a missing or too long name, a capacity out of
 * range, or an unknown mode; -EEXIST if a ring of that name exists; -ENOMEM if the node has
 * no memory left; -ENODEV if EAL is not up; or another negative errno from DPDK.
 */
int mb_ring_create(const struct mb_ring_opts *opts, struct mb_ring **out);

/** Free a ring (not the objects in it) and set *@p ring to NULL. NULL is accepted. */
void mb_ring_destroy(struct mb_ring **ring);

/**
 * Enqueue up to @p n pointers from @p objs; returns how many went in (fewer when the ring is
 * full; the rest stay with the caller). Rings the doorbell if a consumer sleeps.
 * Hot path: no alloc, no lock, no syscall while the consumer is awake. Callers follow the
 * ring's producer mode (one thread for MB_RING_SYNC_ST).
 */
static __rte_always_inline unsigned int
mb_ring_enqueue_burst(struct mb_ring *ring, void *const *objs, unsigned int n)
{
	unsigned int done = rte_ring_enqueue_burst(ring->r, objs, n, NULL);

	if (done != 0)
		mb_doorbell_ring(ring->db);
	return done;
}

/**
 * Dequeue up to @p n pointers into @p objs; returns how many (0 when empty). Never blocks.
 * Hot path: no alloc, no lock, no syscall. Callers follow the consumer mode.
 */
static __rte_always_inline unsigned int
mb_ring_dequeue_burst(struct mb_ring *ring, void **objs, unsigned int n)
{
	return rte_ring_dequeue_burst(ring->r, objs, n, NULL);
}

/**
 * Dequeue up to @p n pointers, waiting by @p idle's policy (owned by the calling consumer
 * thread) until at least one arrives, until mb_env_now_ns() reaches @p deadline_ns
 * (MB_DEADLINE_NONE: no deadline), or until mb_ring_wake() is called. Returns the count:
 * 0 means the deadline passed or the ring was woken; the caller checks which it cares about
 * (typically its cancellation token).
 */
unsigned int mb_ring_dequeue_burst_wait(struct mb_ring *ring, void **objs, unsigned int n,
					struct mb_idle *idle, uint64_t deadline_ns);

/** Wake every consumer waiting in mb_ring_dequeue_burst_wait() (e.g. on shutdown). Any thread. */
void mb_ring_wake(struct mb_ring *ring);

/** Pointers in the ring now (a snapshot). Any thread. */
static inline unsigned int
mb_ring_count(const struct mb_ring *ring)
{
	return rte_ring_count(ring->r);
}

/** Free slots now (a snapshot). Any thread. */
static inline unsigned int
mb_ring_free_count(const struct mb_ring *ring)
{
	return rte_ring_free_count(ring->r);
}

/** Capacity given at creation. */
static inline unsigned int
mb_ring_capacity(const struct mb_ring *ring)
{
	return rte_ring_get_capacity(ring->r);
}

/** The doorbell's fd, for consumers that poll it next to sockets (see mb_doorbell.h). */
static inline struct mb_doorbell *
mb_ring_doorbell(struct mb_ring *ring)
{
	return ring->db;
}

/** The ring's name and NUMA node (as created). */
const char *mb_ring_name(const struct mb_ring *ring);
int mb_ring_numa_node(const struct mb_ring *ring);

#endif /* MB_RING_H */
