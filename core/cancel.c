/*
 * cancel.c: the cancellation tree.
 *
 * One process-wide mutex guards every token's links and callback lists; one condition
 * variable announces "a token was cancelled" and "a callback finished". Cancelling marks the
 * subtree under the lock (a cancelled token's descendants are always cancelled, so marking
 * stops at one already marked), moves the callbacks to a run list, then runs them one by one
 * with the lock dropped. A callback's state says where it is: registered on a token, queued
 * in some canceller's run list, running (and in which thread), or idle.
 */
#include "mb_cancel.h"

#include <errno.h>
#include <stdlib.h>

#include "mb_env.h"

#define MB_LOG_MODULE "cancel"
#include "mb_log.h"

enum cb_state {
	CB_IDLE = 0,
	CB_REGISTERED, /* on its token's list */
	CB_QUEUED,     /* on a canceller's run list */
	CB_RUNNING,
};

LIST_HEAD(cb_list, mb_cancel_cb);

static pthread_mutex_t g_cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cancel_cv;
static pthread_once_t g_cancel_once = PTHREAD_ONCE_INIT;

static void
cancel_once(void)
{
	if (mb_env_cond_init(&g_cancel_cv) != 0)
		abort();
}

int
mb_cancel_create(struct mb_cancel *parent, struct mb_cancel **out)
{
	struct mb_cancel *t;

	pthread_once(&g_cancel_once, cancel_once);
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	LIST_INIT(&t->children);
	LIST_INIT(&t->callbacks);
	atomic_init(&t->cancelled, false);
	if (parent != NULL) {
		pthread_mutex_lock(&g_cancel_lock);
		t->parent = parent;
		LIST_INSERT_HEAD(&parent->children, t, sibling);
		if (mb_cancel_is_cancelled(parent))
			atomic_store_explicit(&t->cancelled, true, memory_order_release);
		pthread_mutex_unlock(&g_cancel_lock);
	}
	*out = t;
	return 0;
}

/* Wait, lock held, until @cb is not running in another thread. */
static void
wait_not_running_locked(struct mb_cancel_cb *cb)
{
	while (cb->state == CB_RUNNING && !pthread_equal(cb->runner, pthread_self()))
		pthread_cond_wait(&g_cancel_cv, &g_cancel_lock);
}

void
mb_cancel_destroy(struct mb_cancel **token)
{
	struct mb_cancel *t, *child;
	struct mb_cancel_cb *cb;

	if (token == NULL || *token == NULL)
		return;
	t = *token;
	pthread_mutex_lock(&g_cancel_lock);
	if (t->parent != NULL)
		LIST_REMOVE(t, sibling);
	while ((child = LIST_FIRST(&t->children)) != NULL) {
		LIST_REMOVE(child, sibling);
		child->parent = t->parent;
		if (t->parent != NULL)
			LIST_INSERT_HEAD(&t->parent->children, child, sibling);
	}
	while ((cb = LIST_FIRST(&t->callbacks)) != NULL) {
		LIST_REMOVE(cb, link);
		cb->state = CB_IDLE;
	}
	pthread_mutex_unlock(&g_cancel_lock);
	free(t);
	*token = NULL;
}

/* Mark @t's subtree cancelled and move its callbacks to @run. Lock held. */
static void
mark_locked(struct mb_cancel *t, struct cb_list *run)
{
	struct mb_cancel *child;
	struct mb_cancel_cb *cb;

	if (mb_cancel_is_cancelled(t))
		return; /* its subtree is cancelled already */
	atomic_store_explicit(&t->cancelled, true, memory_order_release);
	while ((cb = LIST_FIRST(&t->callbacks)) != NULL) {
		LIST_REMOVE(cb, link);
		cb->state = CB_QUEUED;
		LIST_INSERT_HEAD(run, cb, link);
	}
	LIST_FOREACH (child, &t->children, sibling)
		mark_locked(child, run);
}

void
mb_cancel_cancel(struct mb_cancel *token)
{
	struct cb_list run = LIST_HEAD_INITIALIZER(run);
	struct mb_cancel_cb *cb;

	pthread_once(&g_cancel_once, cancel_once);
	if (mb_cancel_is_cancelled(token))
		return;
	pthread_mutex_lock(&g_cancel_lock);
	mark_locked(token, &run);
	pthread_cond_broadcast(&g_cancel_cv);
	while ((cb = LIST_FIRST(&run)) != NULL) {
		LIST_REMOVE(cb, link);
		cb->state = CB_RUNNING;
		cb->runner = pthread_self();
		pthread_mutex_unlock(&g_cancel_lock);
		cb->fn(cb->arg);
		pthread_mutex_lock(&g_cancel_lock);
		cb->state = CB_IDLE;
		pthread_cond_broadcast(&g_cancel_cv);
	}
	pthread_mutex_unlock(&g_cancel_lock);
}

int
mb_cancel_register(struct mb_cancel *token, struct mb_cancel_cb *cb, mb_cancel_fn fn, void *arg)
{
	pthread_once(&g_cancel_once, cancel_once);
	pthread_mutex_lock(&g_cancel_lock);
	if (cb->state == CB_REGISTERED || cb->state == CB_QUEUED || cb->state == CB_RUNNING) {
		pthread_mutex_unlock(&g_cancel_lock);
		return -EBUSY;
	}
	cb->fn = fn;
	cb->arg = arg;
	if (mb_cancel_is_cancelled(token)) {
		cb->state = CB_RUNNING;
		cb->runner = pthread_self();
		pthread_mutex_unlock(&g_cancel_lock);
		fn(arg);
		pthread_mutex_lock(&g_cancel_lock);
		cb->state = CB_IDLE;
		pthread_cond_broadcast(&g_cancel_cv);
		pthread_mutex_unlock(&g_cancel_lock);
		return 1;
	}
	cb->state = CB_REGISTERED;
	LIST_INSERT_HEAD(&token->callbacks, cb, link);
	pthread_mutex_unlock(&g_cancel_lock);
	return 0;
}

void
mb_cancel_unregister(struct mb_cancel *token, struct mb_cancel_cb *cb)
{
	(void)token; /* the list a callback sits on is reachable from the callback itself */
	pthread_once(&g_cancel_once, cancel_once);
	pthread_mutex_lock(&g_cancel_lock);
	if (cb->state == CB_REGISTERED || cb->state == CB_QUEUED) {
		LIST_REMOVE(cb, link);
		cb->state = CB_IDLE;
	} else {
		wait_not_running_locked(cb);
	}
	pthread_mutex_unlock(&g_cancel_lock);
}

int
mb_cancel_wait(struct mb_cancel *token, uint64_t deadline_ns)
{
	int rc = 0;

	pthread_once(&g_cancel_once, cancel_once);
	if (mb_cancel_is_cancelled(token))
		return 0;
	pthread_mutex_lock(&g_cancel_lock);
	while (!mb_cancel_is_cancelled(token) && rc == 0)
		rc = mb_env_cond_wait_until(&g_cancel_cv, &g_cancel_lock, deadline_ns);
	pthread_mutex_unlock(&g_cancel_lock);
	return mb_cancel_is_cancelled(token) ? 0 : -ETIMEDOUT;
}
