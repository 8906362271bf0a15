/*
 * env.c: the clock, deadline waits and NUMA-placed memory that every module uses.
 *
 * Clock: CLOCK_MONOTONIC unless a test switched to the virtual clock; the switch is one
 * relaxed atomic flag, so the real clock costs a load and a predictable branch on top of
 * clock_gettime() (a vDSO call, no syscall).
 *
 * Memory: each block carries a 64-byte header before the pointer handed out, recording which
 * heap it came from (DPDK's, per socket, once EAL is up; libc's otherwise), so mb_env_free()
 * returns it to the right one and the alignment stays a full cache line.
 *
 * Any thread may call anything here.
 */
#include "mb_env.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include "mb_tsan.h"

#include "env_internal.h"

#define MB_LOG_MODULE "env"
#include "mb_log.h"

/* Real-time slice of a virtual-clock wait: how soon a waiter notices an advance. */
#define VIRTUAL_WAIT_SLICE_NS (1 * MB_NS_PER_MS)

static atomic_bool g_clock_virtual;
static _Atomic uint64_t g_clock_virtual_ns;

static atomic_bool g_eal_heap;
static char g_dpdk_heap_sync; /* ThreadSanitizer: stands for the DPDK heap's lock */
static _Atomic uint64_t g_allocs;
static _Atomic uint64_t g_frees;
static _Atomic uint64_t g_failures;
static _Atomic uint64_t g_fail_countdown; /* 0 = no injection */

static uint64_t
real_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MB_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t
mb_env_now_ns(void)
{
	if (atomic_load_explicit(&g_clock_virtual, memory_order_relaxed))
		return atomic_load_explicit(&g_clock_virtual_ns, memory_order_acquire);
	return real_now_ns();
}

uint64_t
mb_env_deadline_in(uint64_t timeout_ns)
{
	uint64_t now = mb_env_now_ns();

	if (timeout_ns >= MB_DEADLINE_NONE - now)
		return MB_DEADLINE_NONE;
	return now + timeout_ns;
}

void
mb_env_clock_use_virtual(uint64_t start_ns)
{
	atomic_store_explicit(&g_clock_virtual_ns, start_ns, memory_order_release);
	atomic_store_explicit(&g_clock_virtual, true, memory_order_release);
}

void
mb_env_clock_use_real(void)
{
	atomic_store_explicit(&g_clock_virtual, false, memory_order_release);
}

bool
mb_env_clock_is_virtual(void)
{
	return atomic_load_explicit(&g_clock_virtual, memory_order_acquire);
}

void
mb_env_clock_advance(uint64_t delta_ns)
{
	atomic_fetch_add_explicit(&g_clock_virtual_ns, delta_ns, memory_order_acq_rel);
}

int
mb_env_clock_set(uint64_t now_ns)
{
	uint64_t cur;

	if (!mb_env_clock_is_virtual())
		return -EPERM;
	cur = atomic_load_explicit(&g_clock_virtual_ns, memory_order_acquire);
	do {
		if (now_ns < cur)
			return -EINVAL;
	} while (!atomic_compare_exchange_weak_explicit(
		&g_clock_virtual_ns, &cur, now_ns, memory_order_acq_rel, memory_order_acquire));
	return 0;
}

int
mb_env_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rc;

	rc = pthread_condattr_init(&attr);
	if (rc != 0)
		return -rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

static struct timespec
timespec_of_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / MB_NS_PER_S),
		.tv_nsec = (long)(ns % MB_NS_PER_S),
	};
	return ts;
}

int
mb_env_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t real_deadline;
	int rc;

	if (mb_env_now_ns() >= deadline_ns)
		return -ETIMEDOUT;
	if (mb_env_clock_is_virtual()) {
		/* Virtual time moves only when a test says so: wait a short real slice. */
		real_deadline = real_now_ns() + VIRTUAL_WAIT_SLICE_NS;
	} else if (deadline_ns == MB_DEADLINE_NONE) {
		rc = pthread_cond_wait(cv, mtx);
		return -rc;
	} else {
		real_deadline = deadline_ns;
	}
	ts = timespec_of_ns(real_deadline);
	rc = pthread_cond_timedwait(cv, mtx, &ts);
	if (rc != 0 && rc != ETIMEDOUT)
		return -rc;
	return mb_env_now_ns() >= deadline_ns ? -ETIMEDOUT : 0;
}

void
mb_env_sleep_ns(uint64_t ns)
{
	struct timespec ts = timespec_of_ns(ns);

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- memory ---- */

enum heap { HEAP_LIBC = 1, HEAP_DPDK = 2 };

#define ALLOC_MAGIC 0x6d62616cu /* "mbal" */

struct alloc_hdr {
	uint32_t magic;
	uint32_t heap;
	size_t size;
	uint8_t pad[RTE_CACHE_LINE_SIZE - 2 * sizeof(uint32_t) - sizeof(size_t)];
};
_Static_assert(sizeof(struct alloc_hdr) == RTE_CACHE_LINE_SIZE, "header keeps alignment");

void
mb_env_set_eal_heap(bool up)
{
	atomic_store_explicit(&g_eal_heap, up, memory_order_release);
}

static bool
injected_failure(void)
{
	uint64_t cur = atomic_load_explicit(&g_fail_countdown, memory_order_relaxed);

	while (cur != 0) {
		if (atomic_compare_exchange_weak_explicit(&g_fail_countdown, &cur, cur - 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return cur == 1;
	}
	return false;
}

/* Is @node one of the NUMA nodes EAL found? (DPDK's heap silently falls back to any
 * socket when there are no hugepages, so an unknown node must be caught here.) */
static bool
eal_knows_node(int node)
{
	if (node == MB_NUMA_ANY)
		return true;
	for (unsigned int i = 0; i < rte_socket_count(); i++)
		if (rte_socket_id_by_idx(i) == node)
			return true;
	return false;
}

void *
mb_env_zalloc(size_t size, int numa_node)
{
	struct alloc_hdr *hdr = NULL;
	size_t total;
	enum heap heap;

	if (size == 0 || numa_node < MB_NUMA_ANY || size > SIZE_MAX - sizeof(*hdr) ||
	    injected_failure())
		goto fail;
	total = size + sizeof(*hdr);
	if (atomic_load_explicit(&g_eal_heap, memory_order_acquire)) {
		if (!eal_knows_node(numa_node))
			goto fail;
		heap = HEAP_DPDK;
		hdr = rte_zmalloc_socket("mediabatch", total, RTE_CACHE_LINE_SIZE,
					 numa_node == MB_NUMA_ANY ? SOCKET_ID_ANY : numa_node);
		MB_TSAN_ACQUIRE(&g_dpdk_heap_sync); /* see mb_env_free() */
	} else {
		heap = HEAP_LIBC;
		if (posix_memalign((void **)&hdr, RTE_CACHE_LINE_SIZE, total) != 0)
			hdr = NULL;
		else
			memset(hdr, 0, total);
	}
	if (hdr == NULL)
		goto fail;
	hdr->magic = ALLOC_MAGIC;
	hdr->heap = heap;
	hdr->size = size;
	atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
	return hdr + 1;
fail:
	atomic_fetch_add_explicit(&g_failures, 1, memory_order_relaxed);
	return NULL;
}

void
mb_env_free(void *ptr)
{
	struct alloc_hdr *hdr;

	if (ptr == NULL)
		return;
	hdr = (struct alloc_hdr *)ptr - 1;
	if (hdr->magic != ALLOC_MAGIC) {
		MB_LOG(ERR, "mb_env_free(%p): not from mb_env_zalloc or freed twice", ptr);
		abort();
	}
	hdr->magic = 0;
	atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
	if (hdr->heap == HEAP_DPDK) {
		/* DPDK's heap (uninstrumented) orders a free before any later allocation with
		 * its lock; TSan cannot see that, so a block freed by one thread and handed out
		 * again to another would look like a race. State the edge. */
		MB_TSAN_RELEASE(&g_dpdk_heap_sync);
		rte_free(hdr);
	} else {
		free(hdr);
	}
}

void
mb_env_alloc_stats(struct mb_env_alloc_stats *out)
{
	out->allocs = atomic_load_explicit(&g_allocs, memory_order_relaxed);
	out->frees = atomic_load_explicit(&g_frees, memory_order_relaxed);
	out->failures = atomic_load_explicit(&g_failures, memory_order_relaxed);
}

void
mb_env_alloc_fail_nth(uint64_t n)
{
	atomic_store_explicit(&g_fail_countdown, n, memory_order_relaxed);
}
