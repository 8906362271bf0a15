/**
 * @file
 * Reactor: one polled thread that runs many pollers round robin (after SPDK's reactors and
 * pollers, lib/event and lib/thread).
 *
 * A poller is a function that does a bounded amount of work and says how much it did
 * (0: idle). A stage of the request path (the ZeroMQ front door, egress, a batcher, a UDP
 * rx queue) is a poller; a placement (mb_placement.h) decides which reactor runs it, and
 * so whether two stages share a thread. Handing a request to a poller on the same reactor
 * costs a ring operation and no wakeup.
 *
 * One round: read the clock once (TSC, converted to the CLOCK_MONOTONIC nanoseconds that
 * mb_env_now_ns() returns; no clock read per poller or per empty poll), then call every
 * poller once with that time. A round in which some poller did work is followed at once by
 * the next. After a number of idle rounds in a row (at most @c idle.spin_polls: the limit
 * halves each time spinning ended in a sleep anyway, and grows back each time work came
 * while it spun) the reactor goes to sleep, on one
 * doorbell per thread (mb_reactor_doorbell()) and on the ZeroMQ sockets and file
 * descriptors its pollers asked it to watch:
 *
 *     mb_doorbell_prepare(bell)     announce "I may sleep" (a membarrier: see mb_doorbell.h)
 *     one more round                the re-check: every poller looks again
 *     if it found work: cancel      else zmq_poll(bell fd + watched, timeout)
 *
 * so a producer on another thread that publishes work and rings the bell can never be
 * missed. The timeout is the earliest time any poller asked for during the last round
 * (mb_reactor_wake_at(): a batch's deadline, a retry), capped at @c max_sleep_ns.
 * Producers on the reactor's own thread never pay a syscall: the bell has no waiter while
 * the thread runs.
 *
 * A poller that has finished its stage for good (its drain is over) returns
 * MB_POLLER_DONE; it is not called again. mb_reactor_run() returns once every poller is
 * done, or after mb_reactor_stop().
 *
 * Clock: with the process on mb_env's virtual clock (tests), each round reads
 * mb_env_now_ns() instead of the TSC.
 *
 * Threads: create, add pollers and watches, and destroy on the thread that builds the
 * pipeline, before mb_reactor_run() (the thread body) starts; mb_reactor_doorbell(),
 * mb_reactor_stop() and mb_reactor_stats() from any thread; mb_reactor_wake_at() and
 * mb_reactor_now() only from inside a poller.
 */
#ifndef MB_REACTOR_H
#define MB_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mb_doorbell.h"
#include "mb_idle.h"

/** A poller's return when its stage is over: it is not called again. */
#define MB_POLLER_DONE (-1)

/** Most pollers one reactor runs. */
#define MB_REACTOR_MAX_POLLERS 32
/** Most sockets and fds one reactor watches while it sleeps (its doorbell aside). */
#define MB_REACTOR_MAX_WATCHES 16

struct mb_reactor;

/**
 * A poller: do a bounded amount of work at time @p now_ns (the round's clock) and return
 * how many items it handled (0: nothing to do), or MB_POLLER_DONE.
 */
typedef int (*mb_poller_fn)(void *arg, struct mb_reactor *r, uint64_t now_ns);

struct mb_reactor_opts {
	const char *name; /**< for logs and stats ("main", "rx0"); copied */
	/**
	 * When to sleep: MB_IDLE_SPIN never sleeps (a dedicated core); MB_IDLE_YIELD yields
	 * after spin_polls idle rounds; MB_IDLE_SLEEP sleeps after spin_polls idle rounds.
	 * sleep_ns is ignored: a sleep lasts until a ring, a watched socket, a poller's
	 * wake_at time or max_sleep_ns.
	 */
	struct mb_idle_opts idle;
	uint64_t max_sleep_ns; /**< longest sleep (0: 100 ms) */
	int cpu;	       /**< informational: the CPU the thread is bound to, or -1 */
};

struct mb_reactor_stats {
	uint64_t rounds;	/**< rounds run */
	uint64_t busy_rounds;	/**< rounds in which a poller did work */
	uint64_t busy_tsc;	/**< TSC cycles spent in busy rounds */
	uint64_t idle_tsc;	/**< TSC cycles in idle rounds and sleeps */
	uint64_t sleeps;	/**< times the thread slept */
	uint64_t wakeups;	/**< sleeps ended by the doorbell */
	uint64_t rechecks_busy; /**< sleeps abandoned because the re-check found work */
};

/** Defaults: sleep after 64 idle rounds, at most 100 ms. */
void mb_reactor_opts_init(struct mb_reactor_opts *opts);

/** Create a reactor. Returns 0, -EINVAL (bad idle options) or -ENOMEM (or -errno of the
 * doorbell's eventfd). */
int mb_reactor_create(const struct mb_reactor_opts *opts, struct mb_reactor **out);

/** Free a reactor after its thread returned (or never started). NULL accepted. */
void mb_reactor_destroy(struct mb_reactor **r);

/**
 * Add a poller (before the reactor runs). @p name is copied (for the log and stats).
 * Returns 0, or -ENOSPC past MB_REACTOR_MAX_POLLERS.
 */
int mb_reactor_add_poller(struct mb_reactor *r, const char *name, mb_poller_fn fn, void *arg);

/**
 * Watch a ZeroMQ socket (@p zsock, fd ignored) or a file descriptor (@p zsock NULL) for
 * input while the reactor sleeps. Returns 0, or -ENOSPC past MB_REACTOR_MAX_WATCHES.
 */
int mb_reactor_watch(struct mb_reactor *r, void *zsock, int fd);

/** The doorbell that wakes this reactor: give it to every ring whose consumer it runs. */
struct mb_doorbell *mb_reactor_doorbell(struct mb_reactor *r);

/** From a poller: the reactor must not sleep past @p at_ns (mb_env_now_ns() time). */
void mb_reactor_wake_at(struct mb_reactor *r, uint64_t at_ns);

/** From a poller: the round's time (what the poller was called with). */
uint64_t mb_reactor_now(const struct mb_reactor *r);

/** Thread body: run rounds until every poller is done or the reactor is stopped. 0. */
int mb_reactor_run(struct mb_reactor *r);

/** Make mb_reactor_run() return after its current round. Any thread. */
void mb_reactor_stop(struct mb_reactor *r);

/** The reactor's name, pollers (names, comma-separated) and CPU, for the log. */
const char *mb_reactor_name(const struct mb_reactor *r);
uint32_t mb_reactor_pollers(const struct mb_reactor *r, char *buf, size_t len);

/** Counters, readable from any thread. */
void mb_reactor_stats(const struct mb_reactor *r, struct mb_reactor_stats *out);

#endif /* MB_REACTOR_H */
