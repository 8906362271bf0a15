/*
 * sem.c: weighted FIFO semaphore.
 *
 * State: capacity, units in use, a FIFO of tickets, a closed flag, all under one mutex.
 * Every change that can free room (release, resize, a ticket leaving the head) runs
 * grant_locked(), which hands units to tickets from the head while the head fits, so the
 * queue order is the grant order. Blocking waiters own a condition variable on their stack
 * that the granting thread signals; polled tickets get their notify callback instead.
 */
#include "mb_sem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mb_env.h"

#define MB_LOG_MODULE "sem"
#include "mb_log.h"

TAILQ_HEAD(ticket_queue, mb_sem_ticket);

struct mb_sem {
	pthread_mutex_t lock;
	uint64_t capacity;
	uint64_t in_use;
	uint64_t peak_in_use;
	uint64_t waiting_units;
	uint64_t waiters;
	uint64_t next_seq;
	uint64_t next_grant_seq;
	uint64_t grants;
	uint64_t timeouts;
	uint64_t cancels;
	bool closed;
	struct ticket_queue queue;
};

int
mb_sem_create(const struct mb_sem_opts *opts, struct mb_sem **out)
{
	struct mb_sem *sem = calloc(1, sizeof(*sem));

	*out = NULL;
	if (sem == NULL)
		return -ENOMEM;
	pthread_mutex_init(&sem->lock, NULL);
	sem->capacity = opts->capacity;
	TAILQ_INIT(&sem->queue);
	*out = sem;
	return 0;
}

void
mb_sem_destroy(struct mb_sem **sem)
{
	if (sem == NULL || *sem == NULL)
		return;
	if (!TAILQ_EMPTY(&(*sem)->queue)) {
		MB_LOG(ERR, "destroying a semaphore with %" PRIu64 " pending ticket(s)",
		       (*sem)->waiters);
		abort();
	}
	pthread_mutex_destroy(&(*sem)->lock);
	free(*sem);
	*sem = NULL;
}

static void
finish_locked(struct mb_sem_ticket *t, int state, int error)
{
	t->error = error;
	atomic_store_explicit(&t->state, state, memory_order_release);
	if (t->cv != NULL)
		pthread_cond_signal(t->cv);
	if (t->notify != NULL)
		t->notify(t, t->notify_arg);
}

static void
dequeue_locked(struct mb_sem *sem, struct mb_sem_ticket *t)
{
	TAILQ_REMOVE(&sem->queue, t, link);
	sem->waiters--;
	sem->waiting_units -= t->units;
}

static void
take_locked(struct mb_sem *sem, struct mb_sem_ticket *t, uint64_t now)
{
	if (sem->in_use + t->units > sem->capacity) {
		MB_LOG(ERR,
		       "grant of %" PRIu64 " units would exceed capacity %" PRIu64
		       " (in use %" PRIu64 ")",
		       t->units, sem->capacity, sem->in_use);
		abort();
	}
	sem->in_use += t->units;
	if (sem->in_use > sem->peak_in_use)
		sem->peak_in_use = sem->in_use;
	sem->grants++;
	t->grant_seq = ++sem->next_grant_seq;
	t->grant_ns = now;
}

/* Hand units to the head of the queue while it fits: the only place queued tickets win. */
static void
grant_locked(struct mb_sem *sem)
{
	struct mb_sem_ticket *t;
	uint64_t now = 0;

	while ((t = TAILQ_FIRST(&sem->queue)) != NULL) {
		if (sem->in_use > sem->capacity || t->units > sem->capacity - sem->in_use)
			break;
		if (now == 0)
			now = mb_env_now_ns(); /* one clock read per round of grants */
		dequeue_locked(sem, t);
		take_locked(sem, t, now);
		finish_locked(t, MB_SEM_TICKET_GRANTED, 0);
	}
}

/* Fail every queued ticket asking more than the capacity (after a shrink). */
static void
fail_oversized_locked(struct mb_sem *sem)
{
	struct mb_sem_ticket *t, *next;

	for (t = TAILQ_FIRST(&sem->queue); t != NULL; t = next) {
		next = TAILQ_NEXT(t, link);
		if (t->units > sem->capacity) {
			dequeue_locked(sem, t);
			finish_locked(t, MB_SEM_TICKET_FAILED, -E2BIG);
		}
	}
}

/* Nobody is queued and @n units are free: a grant now overtakes nobody. */
static bool
fits_now_locked(const struct mb_sem *sem, uint64_t n)
{
	return TAILQ_EMPTY(&sem->queue) && sem->in_use <= sem->capacity &&
	       n <= sem->capacity - sem->in_use;
}

/* Queue or grant @t; caller holds the lock. */
static int
enqueue_locked(struct mb_sem *sem, struct mb_sem_ticket *t, uint64_t n)
{
	if (atomic_load_explicit(&t->state, memory_order_relaxed) == MB_SEM_TICKET_PENDING)
		return -EBUSY;
	if (sem->closed)
		return -ESHUTDOWN;
	if (n > sem->capacity)
		return -E2BIG;
	t->units = n;
	t->error = 0;
	t->seq = ++sem->next_seq;
	t->grant_seq = 0;
	t->enqueue_ns = mb_env_now_ns();
	if (fits_now_locked(sem, n)) {
		take_locked(sem, t, t->enqueue_ns);
		atomic_store_explicit(&t->state, MB_SEM_TICKET_GRANTED, memory_order_release);
		return 0;
	}
	atomic_store_explicit(&t->state, MB_SEM_TICKET_PENDING, memory_order_release);
	TAILQ_INSERT_TAIL(&sem->queue, t, link);
	sem->waiters++;
	sem->waiting_units += n;
	return -EINPROGRESS;
}

int
mb_sem_acquire_until(struct mb_sem *sem, uint64_t n, uint64_t deadline_ns)
{
	struct mb_sem_ticket t;
	pthread_cond_t cv;
	int rc;

	pthread_mutex_lock(&sem->lock);
	/* Fast path: free units and an empty queue need no wait, no condvar, no clock. */
	if (!sem->closed && fits_now_locked(sem, n)) {
		t.units = n;
		t.seq = ++sem->next_seq;
		take_locked(sem, &t, 0);
		pthread_mutex_unlock(&sem->lock);
		return 0;
	}
	pthread_mutex_unlock(&sem->lock);

	mb_sem_ticket_init(&t, NULL, NULL);
	rc = mb_env_cond_init(&cv);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&sem->lock);
	t.cv = &cv;
	rc = enqueue_locked(sem, &t, n);
	while (rc == -EINPROGRESS) {
		int state;

		(void)mb_env_cond_wait_until(&cv, &sem->lock, deadline_ns);
		state = atomic_load_explicit(&t.state, memory_order_acquire);
		if (state == MB_SEM_TICKET_GRANTED) {
			rc = 0;
		} else if (state == MB_SEM_TICKET_FAILED) {
			rc = t.error;
		} else if (mb_env_now_ns() >= deadline_ns) {
			/* Give up our place; whoever was behind us may fit now. */
			dequeue_locked(sem, &t);
			sem->timeouts++;
			grant_locked(sem);
			rc = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&sem->lock);
	pthread_cond_destroy(&cv);
	return rc;
}

int
mb_sem_acquire(struct mb_sem *sem, uint64_t n)
{
	return mb_sem_acquire_until(sem, n, MB_DEADLINE_NONE);
}

int
mb_sem_try_acquire(struct mb_sem *sem, uint64_t n)
{
	int rc;

	pthread_mutex_lock(&sem->lock);
	if (sem->closed)
		rc = -ESHUTDOWN;
	else if (n > sem->capacity)
		rc = -E2BIG;
	else if (!fits_now_locked(sem, n))
		rc = -EAGAIN;
	else {
		struct mb_sem_ticket t = {.units = n};

		t.seq = ++sem->next_seq;
		take_locked(sem, &t, 0);
		rc = 0;
	}
	pthread_mutex_unlock(&sem->lock);
	return rc;
}

void
mb_sem_release(struct mb_sem *sem, uint64_t n)
{
	pthread_mutex_lock(&sem->lock);
	if (n > sem->in_use) {
		MB_LOG(ERR, "release of %" PRIu64 " units but only %" PRIu64 " are held", n,
		       sem->in_use);
		abort();
	}
	sem->in_use -= n;
	grant_locked(sem);
	pthread_mutex_unlock(&sem->lock);
}

int
mb_sem_resize(struct mb_sem *sem, uint64_t capacity)
{
	int rc = 0;

	pthread_mutex_lock(&sem->lock);
	if (sem->closed) {
		rc = -ESHUTDOWN;
	} else {
		sem->capacity = capacity;
		fail_oversized_locked(sem);
		grant_locked(sem);
	}
	pthread_mutex_unlock(&sem->lock);
	return rc;
}

void
mb_sem_close(struct mb_sem *sem)
{
	struct mb_sem_ticket *t;

	pthread_mutex_lock(&sem->lock);
	sem->closed = true;
	while ((t = TAILQ_FIRST(&sem->queue)) != NULL) {
		dequeue_locked(sem, t);
		finish_locked(t, MB_SEM_TICKET_FAILED, -ESHUTDOWN);
	}
	pthread_mutex_unlock(&sem->lock);
}

void
mb_sem_ticket_init(struct mb_sem_ticket *ticket, mb_sem_notify_fn notify, void *arg)
{
	memset(ticket, 0, sizeof(*ticket));
	atomic_init(&ticket->state, MB_SEM_TICKET_IDLE);
	ticket->notify = notify;
	ticket->notify_arg = arg;
}

int
mb_sem_enqueue(struct mb_sem *sem, struct mb_sem_ticket *ticket, uint64_t n)
{
	int rc;

	pthread_mutex_lock(&sem->lock);
	rc = enqueue_locked(sem, ticket, n);
	pthread_mutex_unlock(&sem->lock);
	return rc;
}

int
mb_sem_ticket_poll(const struct mb_sem_ticket *ticket)
{
	switch (atomic_load_explicit(&((struct mb_sem_ticket *)ticket)->state,
				     memory_order_acquire)) {
	case MB_SEM_TICKET_GRANTED:
		return 0;
	case MB_SEM_TICKET_PENDING:
		return -EINPROGRESS;
	case MB_SEM_TICKET_FAILED:
		return ticket->error;
	default:
		return -EINVAL;
	}
}

int
mb_sem_ticket_cancel(struct mb_sem *sem, struct mb_sem_ticket *ticket)
{
	int rc;

	pthread_mutex_lock(&sem->lock);
	switch (atomic_load_explicit(&ticket->state, memory_order_relaxed)) {
	case MB_SEM_TICKET_PENDING:
		dequeue_locked(sem, ticket);
		sem->cancels++;
		atomic_store_explicit(&ticket->state, MB_SEM_TICKET_IDLE, memory_order_release);
		grant_locked(sem);
		rc = 0;
		break;
	case MB_SEM_TICKET_GRANTED:
		rc = -EALREADY;
		break;
	case MB_SEM_TICKET_FAILED:
		rc = ticket->error;
		break;
	default:
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&sem->lock);
	return rc;
}

int
mb_sem_ticket_reduce(struct mb_sem *sem, struct mb_sem_ticket *ticket, uint64_t by)
{
	int rc = 0;

	pthread_mutex_lock(&sem->lock);
	switch (atomic_load_explicit(&ticket->state, memory_order_relaxed)) {
	case MB_SEM_TICKET_PENDING:
		if (by > ticket->units) {
			rc = -EINVAL;
			break;
		}
		ticket->units -= by;
		sem->waiting_units -= by;
		grant_locked(sem);
		break;
	case MB_SEM_TICKET_GRANTED:
		if (by > ticket->units || by > sem->in_use) {
			rc = -EINVAL;
			break;
		}
		ticket->units -= by;
		sem->in_use -= by;
		grant_locked(sem);
		break;
	case MB_SEM_TICKET_FAILED:
		rc = ticket->error;
		break;
	default:
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&sem->lock);
	return rc;
}

void
mb_sem_stats(struct mb_sem *sem, struct mb_sem_stats *out)
{
	pthread_mutex_lock(&sem->lock);
	out->capacity = sem->capacity;
	out->in_use = sem->in_use;
	out->peak_in_use = sem->peak_in_use;
	out->waiters = sem->waiters;
	out->waiting_units = sem->waiting_units;
	out->grants = sem->grants;
	out->timeouts = sem->timeouts;
	out->cancels = sem->cancels;
	out->closed = sem->closed;
	pthread_mutex_unlock(&sem->lock);
}
