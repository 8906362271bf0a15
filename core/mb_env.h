/**
 * @file
 * Environment layer: the clock, waiting until a deadline, and memory on a NUMA node.
 *
 * These are the things tests must be able to fake, so every module takes them from here and
 * never calls clock_gettime() or malloc() for data-path memory directly (CONVENTIONS.md).
 *
 * Clock. mb_env_now_ns() is CLOCK_MONOTONIC in nanoseconds. A test switches the whole process
 * to a virtual clock with mb_env_clock_use_virtual() and moves it with
 * mb_env_clock_advance(); every deadline, batch delay, breaker cool-down and rate limit then
 * follows the virtual time. Waits that end at a deadline (mb_env_cond_wait_until()) notice a
 * virtual advance within about a millisecond of real time.
 *
 * Memory. mb_env_zalloc() returns zeroed, cache-line-aligned memory on a NUMA node: from
 * DPDK's heap for that socket once EAL is up (mb_eal_init()), else from libc (before EAL,
 * and in client tools, placement is not honoured: they have no NUMA-sensitive data). It
 * counts allocations so a test can assert that a hot path allocated nothing, and can be told
 * to fail the n-th allocation so error paths are testable.
 *
 * Threads: every function may be called from any thread. The virtual-clock controls are
 * meant for one test thread at a time.
 */
#ifndef MB_ENV_H
#define MB_ENV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Any NUMA node: the allocator chooses. */
#define MB_NUMA_ANY (-1)

#define MB_NS_PER_US UINT64_C(1000)
#define MB_NS_PER_MS UINT64_C(1000000)
#define MB_NS_PER_S UINT64_C(1000000000)

/** Deadline value meaning "never". */
#define MB_DEADLINE_NONE UINT64_MAX

/** Monotonic time in nanoseconds: CLOCK_MONOTONIC, or the virtual clock in tests. */
uint64_t mb_env_now_ns(void);

/** @p timeout_ns from now as an absolute deadline; saturates at MB_DEADLINE_NONE. */
uint64_t mb_env_deadline_in(uint64_t timeout_ns);

/**
 * Switch the process to a virtual clock that starts at @p start_ns and moves only when
 * mb_env_clock_advance() or mb_env_clock_set() is called. For tests.
 */
void mb_env_clock_use_virtual(uint64_t start_ns);

/** Switch the process back to the real monotonic clock. */
void mb_env_clock_use_real(void);

/** True while the virtual clock is in use. */
bool mb_env_clock_is_virtual(void);

/** Move the virtual clock forward by @p delta_ns. No effect on the real clock. */
void mb_env_clock_advance(uint64_t delta_ns);

/**
 * Set the virtual clock to @p now_ns. Returns 0, -EINVAL if that is earlier than the current
 * virtual time (a monotonic clock never goes back), or -EPERM if the clock is real.
 */
int mb_env_clock_set(uint64_t now_ns);

/**
 * Initialise @p cv for mb_env_cond_wait_until() (it waits on CLOCK_MONOTONIC). Returns 0 or
 * -errno from pthread. Destroy it with pthread_cond_destroy().
 */
int mb_env_cond_init(pthread_cond_t *cv);

/**
 * Wait on @p cv (initialised with mb_env_cond_init()) with @p mtx held, until signalled or
 * until mb_env_now_ns() reaches @p deadline_ns (MB_DEADLINE_NONE: no deadline). On the
 * virtual clock the wait is cut into slices of at most a millisecond of real time, so a
 * virtual advance is noticed. Like pthread_cond_wait() it may return early: callers loop on
 * their condition. Returns 0, or -ETIMEDOUT once the deadline has passed.
 */
int mb_env_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t deadline_ns);

/** Sleep @p ns of real time (idle policies sleep for real, whatever the clock). */
void mb_env_sleep_ns(uint64_t ns);

/**
 * Allocate @p size zeroed bytes aligned to a cache line, on NUMA node @p numa_node (an OS
 * node index, or MB_NUMA_ANY). Returns NULL if @p size is 0, the node is out of range, or
 * memory is short (or fault injection says so). Owned by the caller; free with
 * mb_env_free(). Not for the hot path: setup and per-batch use only.
 */
void *mb_env_zalloc(size_t size, int numa_node);

/** Free memory from mb_env_zalloc(); NULL is accepted. */
void mb_env_free(void *ptr);

/** Counters of mb_env_zalloc()/mb_env_free() since the process started. */
struct mb_env_alloc_stats {
	uint64_t allocs;   /**< successful allocations */
	uint64_t frees;	   /**< frees of non-NULL pointers */
	uint64_t failures; /**< allocations that returned NULL */
};

/** Copy the allocation counters into @p out. */
void mb_env_alloc_stats(struct mb_env_alloc_stats *out);

/**
 * Fault injection for tests: the @p n-th call of mb_env_zalloc() from now (1 = the next one)
 * fails once. 0 cancels a pending injection.
 */
void mb_env_alloc_fail_nth(uint64_t n);

#endif /* MB_ENV_H */
