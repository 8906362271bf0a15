/**
 * @file
 * Weighted FIFO semaphore: the engine of VRAM admission.
 *
 * A semaphore has a capacity in units (VRAM units of one device). Acquiring n units waits
 * until n are free *and* every earlier waiter has been served: grants happen strictly in
 * arrival order, so a large request at the head of the queue is never overtaken by small
 * ones (no starvation), at the price of small requests waiting behind it. Units granted
 * never exceed the capacity: a grant happens only when in_use + n <= capacity.
 *
 * Two ways to wait, on the same queue:
 * - blocking, for plain threads: mb_sem_acquire(), mb_sem_acquire_until();
 * - non-blocking, for polled loops: a caller-owned ticket goes into the queue with
 *   mb_sem_enqueue() and is polled with mb_sem_ticket_poll(); an optional notify callback
 *   fires when it is granted or fails (e.g. to ring the poller's doorbell).
 * mb_sem_try_acquire() takes units only if it would not overtake anyone.
 *
 * Capacity can change (mb_sem_resize(): a device lost memory). Units already held are never
 * revoked: after a shrink below the units in use, nothing is granted until enough are
 * released. A waiter asking for more than the new capacity fails with -E2BIG. Closing
 * (mb_sem_close()) fails every waiter with -ESHUTDOWN and every later acquire; releases keep
 * working so holders can return their units.
 *
 * Errors: -E2BIG (n > capacity: can never be granted), -ESHUTDOWN (closed), -ETIMEDOUT
 * (deadline passed; nothing held), -EAGAIN (try_acquire would have to wait), -EINPROGRESS
 * (ticket queued), -EBUSY (ticket already in a queue), -EINVAL (bad argument).
 *
 * Threads: every function may be called from any thread. One mutex per semaphore guards the
 * queue, held only for list and counter updates, never across a wait.
 */
#ifndef MB_SEM_H
#define MB_SEM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

struct mb_sem;
struct mb_sem_ticket;

/**
 * Called when a queued ticket is granted or fails, with the semaphore's lock held and from
 * whichever thread released, resized or closed. Keep it short (ring a doorbell, set a flag)
 * and never call back into the semaphore.
 */
typedef void (*mb_sem_notify_fn)(struct mb_sem_ticket *ticket, void *arg);

enum mb_sem_ticket_state {
	MB_SEM_TICKET_IDLE = 0,
	MB_SEM_TICKET_PENDING,
	MB_SEM_TICKET_GRANTED,
	MB_SEM_TICKET_FAILED,
};

/**
 * A place in the queue. Owned by the caller (embed it, e.g. in a batch); must stay valid
 * while pending. Fields other than those marked read-only are private.
 */
struct mb_sem_ticket {
	TAILQ_ENTRY(mb_sem_ticket) link;
	uint64_t units;
	_Atomic int state;
	int error;
	pthread_cond_t *cv;
	mb_sem_notify_fn notify;
	void *notify_arg;
	uint64_t seq;	     /**< read-only: arrival order (1, 2, ...) */
	uint64_t grant_seq;  /**< read-only: grant order (1, 2, ...), once granted */
	uint64_t enqueue_ns; /**< read-only: mb_env_now_ns() at arrival */
	uint64_t grant_ns;   /**< read-only: mb_env_now_ns() at grant */
};

struct mb_sem_opts {
	uint64_t capacity; /**< units; may be 0 (nothing can be granted until a resize) */
};

struct mb_sem_stats {
	uint64_t capacity;
	uint64_t in_use;
	uint64_t peak_in_use;	/**< highest in_use ever granted */
	uint64_t waiters;	/**< tickets queued now */
	uint64_t waiting_units; /**< units they ask for */
	uint64_t grants;	/**< acquisitions granted */
	uint64_t timeouts;	/**< acquire_until deadlines that passed */
	uint64_t cancels;	/**< tickets withdrawn before grant */
	uint64_t closed;	/**< 1 once closed */
};

/** Create a semaphore. Returns 0 and sets @p out (free with mb_sem_destroy()), or -ENOMEM. */
int mb_sem_create(const struct mb_sem_opts *opts, struct mb_sem **out);

/**
 * Free a semaphore and set *@p sem to NULL; NULL is accepted. No thread may be waiting on it
 * and no ticket may be pending (close it and let waiters return first): a pending ticket at
 * destroy is a bug, logged, and aborts.
 */
void mb_sem_destroy(struct mb_sem **sem);

/** Wait for @p n units without deadline. Returns 0, -E2BIG or -ESHUTDOWN. */
int mb_sem_acquire(struct mb_sem *sem, uint64_t n);

/**
 * Wait for @p n units until mb_env_now_ns() reaches @p deadline_ns. Returns 0 (units held),
 * -ETIMEDOUT (nothing held; its place in the queue is given up), -E2BIG or -ESHUTDOWN.
 */
int mb_sem_acquire_until(struct mb_sem *sem, uint64_t n, uint64_t deadline_ns);

/**
 * Take @p n units now if they are free and nobody is queued. Returns 0, -EAGAIN, -E2BIG or
 * -ESHUTDOWN.
 */
int mb_sem_try_acquire(struct mb_sem *sem, uint64_t n);

/**
 * Return @p n units. Releasing more than are held is a bug: logged, then abort(). Any
 * thread; works after close.
 */
void mb_sem_release(struct mb_sem *sem, uint64_t n);

/** Set the capacity (see the file comment). Returns 0 or -ESHUTDOWN. */
int mb_sem_resize(struct mb_sem *sem, uint64_t capacity);

/** Close: fail every waiter and every later acquire with -ESHUTDOWN. Idempotent. */
void mb_sem_close(struct mb_sem *sem);

/** Prepare a ticket for the non-blocking form; @p notify may be NULL. */
void mb_sem_ticket_init(struct mb_sem_ticket *ticket, mb_sem_notify_fn notify, void *arg);

/**
 * Queue @p ticket for @p n units. Returns 0 if granted at once (no notify call),
 * -EINPROGRESS if queued (poll it; notify fires on grant or failure), -E2BIG, -ESHUTDOWN,
 * or -EBUSY if the ticket is already pending.
 */
int mb_sem_enqueue(struct mb_sem *sem, struct mb_sem_ticket *ticket, uint64_t n);

/**
 * State of a ticket: 0 granted (the caller holds its units), -EINPROGRESS pending, or its
 * error (-E2BIG, -ESHUTDOWN). Lock-free; any thread.
 */
int mb_sem_ticket_poll(const struct mb_sem_ticket *ticket);

/**
 * Withdraw a ticket. Returns 0 if it was pending and is now out of the queue (nothing held);
 * -EALREADY if it had been granted (the caller holds its units and must release them);
 * its error if it had failed; -EINVAL if it was never queued.
 */
int mb_sem_ticket_cancel(struct mb_sem *sem, struct mb_sem_ticket *ticket);

/**
 * Refund @p by units of a ticket without losing its place: a pending ticket asks for fewer
 * (which may let it, or those behind it, be granted now); a granted ticket releases them.
 * Returns 0; -EINVAL if @p by exceeds the ticket's units or it was never queued; its
 * error if it failed. Used when an item leaves a batch that is waiting for admission.
 */
int mb_sem_ticket_reduce(struct mb_sem *sem, struct mb_sem_ticket *ticket, uint64_t by);

/** Snapshot of the counters. Any thread. */
void mb_sem_stats(struct mb_sem *sem, struct mb_sem_stats *out);

#endif /* MB_SEM_H */
