/**
 * @file
 * Idle policy for polling threads, and their busy/idle accounting.
 *
 * A polling thread (a DPDK rx lcore, a batcher, a ring consumer) calls mb_idle_account()
 * after every poll with how much work it found, and mb_idle_pause() when it found none. The
 * policy decides what an empty poll costs the machine:
 *
 * - MB_IDLE_SPIN: pause instruction only. Lowest latency; the thread owns its core. For bare
 *   metal, where polled cores are dedicated.
 * - MB_IDLE_YIELD: after @c spin_polls empty polls in a row, sched_yield() on every empty poll.
 * - MB_IDLE_SLEEP: after @c spin_polls empty polls in a row, sleep up to @c sleep_ns, cut short
 *   by a doorbell when the caller has one. The default on a developer machine: on 2 cores a
 *   spinning consumer starves everything else.
 *
 * Accounting follows SPDK's pollers: the TSC time between two calls of mb_idle_account() is
 * counted busy if the poll found work and idle otherwise (sleeps count as idle), so
 * utilisation = busy / (busy + idle).
 *
 * Threads: a struct mb_idle belongs to its polling thread. The counters are relaxed atomics
 * that other threads (metrics) may read with mb_idle_stats().
 */
#ifndef MB_IDLE_H
#define MB_IDLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_cycles.h>

#include "mb_doorbell.h"

enum mb_idle_mode {
	MB_IDLE_SPIN = 0,
	MB_IDLE_YIELD,
	MB_IDLE_SLEEP,
};

struct mb_idle_opts {
	enum mb_idle_mode mode;
	uint32_t spin_polls; /**< empty polls in a row before yielding or sleeping */
	uint64_t sleep_ns;   /**< longest sleep per empty poll in MB_IDLE_SLEEP */
};

struct mb_idle_stats {
	uint64_t busy_polls;
	uint64_t idle_polls;
	uint64_t busy_tsc; /**< TSC cycles between polls that found work */
	uint64_t idle_tsc; /**< TSC cycles between polls that found none, sleeps included */
	uint64_t yields;
	uint64_t sleeps;
	uint64_t bell_wakeups; /**< sleeps ended early by a doorbell */
};

/** Per-thread idle state; embed it in the thread's own context. Fields are private. */
struct mb_idle {
	struct mb_idle_opts opts;
	uint32_t empty_polls;
	uint64_t last_tsc;
	_Atomic uint64_t busy_polls, idle_polls, busy_tsc, idle_tsc, yields, sleeps, bell_wakeups;
};

/** Defaults: MB_IDLE_SLEEP after 1024 empty polls, sleeping at most 1 ms. */
void mb_idle_opts_init(struct mb_idle_opts *opts);

/**
 * Parse a mode name ("spin", "yield", "sleep") into @p mode. Returns 0 or -EINVAL.
 */
int mb_idle_parse_mode(const char *name, enum mb_idle_mode *mode);

/** Initialise @p idle with @p opts (copied); returns 0, or -EINVAL for sleep_ns of 0. */
int mb_idle_init(struct mb_idle *idle, const struct mb_idle_opts *opts);

/* Single-writer counter bump: a plain load and store (a locked add would cost ~20 cycles). */
#define MB_IDLE_BUMP(ctr, v)                                                                       \
	atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (v),    \
			      memory_order_relaxed)

/**
 * True while an empty poll would only spin (pause): no sleep, no yield, and no need for the
 * caller to read a clock for a deadline yet (mb_ring_dequeue_burst_wait() reads none while
 * it spins). Owning thread only.
 */
static inline bool
mb_idle_spinning(const struct mb_idle *idle)
{
	return idle->opts.mode != MB_IDLE_SPIN && idle->empty_polls < idle->opts.spin_polls;
	/* MB_IDLE_SPIN: false, the caller checks its deadline on every poll */
}

/**
 * Record one poll that found @p work items. Hot path: owning thread, no alloc, no lock,
 * no syscall (rdtsc and relaxed atomics).
 */
static inline void
mb_idle_account(struct mb_idle *idle, unsigned int work)
{
	uint64_t now = rte_rdtsc();
	uint64_t delta = now - idle->last_tsc;

	idle->last_tsc = now;
	if (work != 0) {
		idle->empty_polls = 0;
		MB_IDLE_BUMP(idle->busy_polls, 1);
		MB_IDLE_BUMP(idle->busy_tsc, delta);
	} else {
		MB_IDLE_BUMP(idle->idle_polls, 1);
		MB_IDLE_BUMP(idle->idle_tsc, delta);
	}
}

/** Returns true when there is work, so the caller should not sleep. */
typedef bool (*mb_idle_recheck_fn)(void *arg);

/**
 * After an empty poll: apply the policy. In MB_IDLE_SLEEP with a doorbell @p db (may be
 * NULL), announce on it, call @p recheck (may be NULL) and sleep only if it finds nothing;
 * the sleep lasts at most min(sleep_ns, @p max_ns). Owning thread only.
 */
void mb_idle_pause(struct mb_idle *idle, struct mb_doorbell *db, mb_idle_recheck_fn recheck,
		   void *arg, uint64_t max_ns);

/** Copy @p idle's counters; any thread. */
void mb_idle_stats(const struct mb_idle *idle, struct mb_idle_stats *out);

#endif /* MB_IDLE_H */
