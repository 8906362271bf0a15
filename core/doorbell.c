/*
 * doorbell.c: eventfd wakeups with an asymmetric fence (membarrier) on the sleeper's side.
 *
 * The one-time registration for MEMBARRIER_CMD_PRIVATE_EXPEDITED happens on the first
 * mb_doorbell_init(); if the kernel (or a seccomp filter) refuses it, producers switch to a
 * full fence per ring, which is correct but costs a fence per burst. See mb_doorbell.h for
 * why the pairing cannot lose a wakeup. Any thread.
 */
#include "mb_doorbell.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MB_LOG_MODULE "doorbell"
#include "mb_log.h"

bool g_mb_doorbell_symmetric;

static pthread_once_t g_membarrier_once = PTHREAD_ONCE_INIT;

static void
membarrier_register(void)
{
	long rc;

	if (g_mb_doorbell_symmetric)
		return; /* chosen (mb_doorbell_use_fence()): no membarrier needed */
	rc = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);

	if (rc != 0) {
		g_mb_doorbell_symmetric = true;
		MB_LOG(NOTICE, "membarrier unavailable (%s): producers fence on every ring",
		       strerror(errno));
	}
}

int
mb_doorbell_init(struct mb_doorbell *db)
{
	pthread_once(&g_membarrier_once, membarrier_register);
	db->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (db->fd < 0)
		return -errno;
	atomic_init(&db->waiters, 0);
	atomic_init(&db->rings, 0);
	atomic_init(&db->wakeups, 0);
	return 0;
}

void
mb_doorbell_fini(struct mb_doorbell *db)
{
	if (db->fd >= 0)
		close(db->fd);
	db->fd = -1;
}

void
mb_doorbell_ring_slow(struct mb_doorbell *db)
{
	uint64_t one = 1;

	atomic_fetch_add_explicit(&db->rings, 1, memory_order_relaxed);
	/* EAGAIN means the counter is already non-zero: a ring is pending, which suffices. */
	(void)!write(db->fd, &one, sizeof(one));
}

void
mb_doorbell_prepare(struct mb_doorbell *db)
{
	atomic_fetch_add_explicit(&db->waiters, 1, memory_order_seq_cst);
	if (!g_mb_doorbell_symmetric)
		(void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

void
mb_doorbell_cancel(struct mb_doorbell *db)
{
	atomic_fetch_sub_explicit(&db->waiters, 1, memory_order_relaxed);
}

void
mb_doorbell_drain(struct mb_doorbell *db)
{
	uint64_t v;

	if (read(db->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		atomic_fetch_add_explicit(&db->wakeups, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&db->waiters, 1, memory_order_relaxed);
}

int
mb_doorbell_wait(struct mb_doorbell *db, uint64_t timeout_ns)
{
	struct pollfd pfd = {.fd = db->fd, .events = POLLIN};
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000u),
		.tv_nsec = (long)(timeout_ns % 1000000000u),
	};
	uint64_t v;
	int rc;

	rc = ppoll(&pfd, 1, &ts, NULL);
	if (rc < 0 && errno != EINTR) {
		rc = -errno;
	} else if (rc > 0) {
		rc = read(db->fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? 1 : 0;
		if (rc == 1)
			atomic_fetch_add_explicit(&db->wakeups, 1, memory_order_relaxed);
	} else {
		rc = 0;
	}
	atomic_fetch_sub_explicit(&db->waiters, 1, memory_order_relaxed);
	return rc;
}

int
mb_doorbell_fd(const struct mb_doorbell *db)
{
	return db->fd;
}

void
mb_doorbell_use_fence(bool on)
{
	const char *env = getenv("MB_DOORBELL");

	if (env != NULL && strcmp(env, "fence") == 0)
		on = true;
	else if (env != NULL && strcmp(env, "membarrier") == 0)
		on = false;
	if (on)
		g_mb_doorbell_symmetric = true;
	/* off: membarrier, registered on the next mb_doorbell_init() (or the fence stays
	 * if the kernel refused it) */
}
