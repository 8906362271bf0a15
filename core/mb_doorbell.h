/**
 * @file
 * Doorbell: lets a consumer sleep when its queue is empty and a producer wake it, with no
 * syscall and no fence on the producer's side while the consumer is awake.
 *
 * The bell is an eventfd, so a consumer can also wait on it with poll() or zmq_poll() next
 * to its sockets (mb_doorbell_fd()).
 *
 * Protocol (consumer, to sleep):
 *
 *     mb_doorbell_prepare(db);          // announce: "I may sleep"
 *     if (queue_not_empty())            // re-check after announcing
 *             mb_doorbell_cancel(db);
 *     else
 *             mb_doorbell_wait(db, timeout_ns);
 *
 * Producer, after publishing work: mb_doorbell_ring(db). Hot path: one relaxed load and a
 * branch while nobody sleeps; a write() to the eventfd only when a consumer has announced.
 *
 * Why no wakeup is lost: mb_doorbell_prepare() issues membarrier(PRIVATE_EXPEDITED), which
 * makes every other running thread of the process execute a full memory barrier. Either a
 * producer's load of the waiter count comes after that barrier (it sees the consumer and
 * rings), or its earlier publication of the work comes before it (the consumer's re-check
 * sees the work). Where membarrier is unavailable, producers read the count with a seq_cst
 * read-modify-write instead, a full barrier per ring (mb_doorbell_init() logs this once).
 *
 * Threads: any number of producers; consumers may be several (the waiter count is shared).
 */
#ifndef MB_DOORBELL_H
#define MB_DOORBELL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>

struct mb_doorbell {
	int fd;			  /**< eventfd; private */
	atomic_uint waiters;	  /**< consumers between prepare and wait's end; private */
	_Atomic uint64_t rings;	  /**< eventfd writes (stats) */
	_Atomic uint64_t wakeups; /**< waits ended by a ring (stats) */
};

/** True when producers must fence before reading the waiter count (no membarrier). */
extern bool g_mb_doorbell_symmetric;

/**
 * Choose the pairing for the whole process, before the first mb_doorbell_init() and before
 * any thread rings: @p on, a full fence on every ring (a locked instruction per ring, no
 * membarrier); off, membarrier on every prepare (an IPI to each CPU that runs a thread of
 * the process) and none on a ring. The fence is cheaper where consumers sleep often (the
 * sleep idle policy on a small machine: measured 9-10 us against 11-12 us of server CPU per
 * request in identity_bench), membarrier where they spin and rarely sleep (bare metal). The
 * environment variable MB_DOORBELL=fence|membarrier overrides @p on (diagnostics).
 */
void mb_doorbell_use_fence(bool on);

/** Initialise @p db. Returns 0 or -errno from eventfd(). */
int mb_doorbell_init(struct mb_doorbell *db);

/** Release @p db's file descriptor. Safe to call twice (the fd is set to -1). */
void mb_doorbell_fini(struct mb_doorbell *db);

/** Slow path of mb_doorbell_ring(): write the eventfd. */
void mb_doorbell_ring_slow(struct mb_doorbell *db);

/**
 * Producer: wake sleeping consumers, if any, after publishing work.
 * Hot path: no alloc, no lock, no syscall unless a consumer sleeps. Any thread.
 */
static __rte_always_inline void
mb_doorbell_ring(struct mb_doorbell *db)
{
	if (unlikely(g_mb_doorbell_symmetric)) {
		/* No membarrier: a seq_cst read-modify-write orders the caller's publication
		 * before reading the count (one locked instruction on x86). */
		if (atomic_fetch_add_explicit(&db->waiters, 0, memory_order_seq_cst) != 0)
			mb_doorbell_ring_slow(db);
		return;
	}
	/*
	 * A volatile load: the compiler keeps volatile accesses in program order, so this stays
	 * after the publication (rte_ring's tail store is volatile too) without a full compiler
	 * barrier, which would force the ring's fields to be reloaded on every burst.
	 */
	if (unlikely(atomic_load_explicit((volatile atomic_uint *)&db->waiters,
					  memory_order_relaxed) != 0))
		mb_doorbell_ring_slow(db);
}

/** Consumer: announce that it may sleep. Must be followed by cancel or wait. */
void mb_doorbell_prepare(struct mb_doorbell *db);

/** Consumer: it found work after prepare; withdraw the announcement. */
void mb_doorbell_cancel(struct mb_doorbell *db);

/**
 * Consumer: sleep until rung or for @p timeout_ns of real time, then withdraw the
 * announcement. Returns 1 if woken by a ring, 0 on timeout, or -errno from poll().
 */
int mb_doorbell_wait(struct mb_doorbell *db, uint64_t timeout_ns);

/**
 * The eventfd, readable while a ring is pending: for consumers that wait in poll() or
 * zmq_poll(). Such a consumer calls mb_doorbell_prepare() before polling, re-checks its
 * queue, and calls mb_doorbell_drain() after the poll returns.
 */
int mb_doorbell_fd(const struct mb_doorbell *db);

/** Consumer: clear a pending ring and withdraw the announcement (after an external poll). */
void mb_doorbell_drain(struct mb_doorbell *db);

#endif /* MB_DOORBELL_H */
