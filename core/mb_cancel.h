/**
 * @file
 * Cancellation tokens: a tree that shuts the service down in order.
 *
 * A token is cancelled once and stays cancelled. Cancelling a token cancels all of its
 * descendants, never its ancestors; a child created under a cancelled parent is born
 * cancelled. Hot loops check mb_cancel_is_cancelled(): one atomic load.
 *
 * Callbacks registered on a token run once when it (or an ancestor) is cancelled, in the
 * cancelling thread, with no lock held: they may cancel other tokens, ring doorbells, close
 * semaphores. Registering on an already-cancelled token runs the callback at once in the
 * registering thread. mb_cancel_unregister() guarantees that, once it returns, the callback
 * is not running and will not run (it waits for a run in progress in another thread).
 *
 * Destroying a token detaches it from its parent; its children are re-attached to that
 * parent (or become roots), so a cancel from above still reaches them. Callbacks still
 * registered are dropped without running.
 *
 * Threads: every function may be called from any thread. Tree changes (create, destroy,
 * cancel, register) take one process-wide mutex; they are per-request at most, never per
 * packet. mb_cancel_is_cancelled() takes none.
 */
#ifndef MB_CANCEL_H
#define MB_CANCEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct mb_cancel;
struct mb_cancel_cb;

/** A cancel callback; @p arg as registered. */
typedef void (*mb_cancel_fn)(void *arg);

/**
 * A registration. Owned by the caller (embed it); zero it before first use (`= {0}`); it must
 * stay valid until unregistered or run. Private fields.
 */
struct mb_cancel_cb {
	LIST_ENTRY(mb_cancel_cb) link;
	mb_cancel_fn fn;
	void *arg;
	int state;
	pthread_t runner;
};

/** A token. Fields are private; in the header so that the check below can inline. */
struct mb_cancel {
	atomic_bool cancelled;
	struct mb_cancel *parent;
	LIST_HEAD(, mb_cancel) children;
	LIST_ENTRY(mb_cancel) sibling;
	LIST_HEAD(, mb_cancel_cb) callbacks;
};

/**
 * Create a token, a child of @p parent (borrowed; NULL makes a root). Returns 0 and sets
 * @p out (owned by the caller, freed with mb_cancel_destroy()), or -ENOMEM.
 */
int mb_cancel_create(struct mb_cancel *parent, struct mb_cancel **out);

/** Destroy a token (see the file comment) and set *@p token to NULL. NULL is accepted. */
void mb_cancel_destroy(struct mb_cancel **token);

/** Cancel @p token and its descendants, running their callbacks. Idempotent. */
void mb_cancel_cancel(struct mb_cancel *token);

/** True once @p token is cancelled. One atomic load (acquire); any thread. */
static inline bool
mb_cancel_is_cancelled(const struct mb_cancel *token)
{
	return atomic_load_explicit(&((struct mb_cancel *)token)->cancelled, memory_order_acquire);
}

/**
 * Run @p fn(@p arg) when @p token is cancelled. Returns 0 if registered, 1 if the token was
 * already cancelled and @p fn has just run in this thread, or -EBUSY if @p cb is already
 * registered.
 */
int mb_cancel_register(struct mb_cancel *token, struct mb_cancel_cb *cb, mb_cancel_fn fn,
		       void *arg);

/**
 * Withdraw @p cb. Once this returns, @p cb's function is not running and will not run; if it
 * is running in another thread, this waits for it. Called from inside that very callback, it
 * returns at once. Accepts a @p cb that was never registered or already ran.
 */
void mb_cancel_unregister(struct mb_cancel *token, struct mb_cancel_cb *cb);

/**
 * Wait until @p token is cancelled or mb_env_now_ns() reaches @p deadline_ns
 * (MB_DEADLINE_NONE: no deadline). Returns 0 once cancelled, -ETIMEDOUT otherwise.
 */
int mb_cancel_wait(struct mb_cancel *token, uint64_t deadline_ns);

#endif /* MB_CANCEL_H */
