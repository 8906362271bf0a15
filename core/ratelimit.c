/*
 * ratelimit.c: GCRA token buckets and the per-key table.
 *
 * Bucket: tat is the time at which the bucket would be full again. Taking n tokens moves it
 * to max(tat, now) + n * interval; that is allowed while it stays within `tolerance`
 * (burst * interval) of now. One CAS per take; on contention the loser retries with the new
 * tat.
 *
 * Table: an rte_hash maps a key to a position, and the bucket at that position of a
 * preallocated array holds its state. Every bucket starts with the default limit, so a key
 * inserted by one thread is usable by others at once. Lookups are lock-free
 * (RW_CONCURRENCY_LF); inserts, once per new key, are serialised by a mutex, and stop for
 * good once the table is full, so invented keys cannot make every request take the lock.
 */
#include "mb_ratelimit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include <rte_hash.h>
#include <rte_jhash.h>

#include "mb_eal.h"
#include "mb_env.h"

#define MB_LOG_MODULE "ratelimit"
#include "mb_log.h"

#define MIN_RATE 1e-3
#define MAX_RATE 1e9
#define MAX_BURST 1000000u
#define MAX_KEYS (1u << 24)

int
mb_tb_init(struct mb_tb *tb, double rate, uint32_t burst)
{
	if (rate == 0.0) {
		tb->interval_ns = 0;
		tb->tolerance_ns = 0;
		tb->burst = burst;
		atomic_init(&tb->tat, 0);
		return 0;
	}
	if (!(rate >= MIN_RATE && rate <= MAX_RATE) || burst == 0 || burst > MAX_BURST)
		return -EINVAL;
	tb->interval_ns = (uint64_t)llround(1e9 / rate);
	if (tb->interval_ns == 0)
		tb->interval_ns = 1;
	tb->tolerance_ns = tb->interval_ns * burst;
	tb->burst = burst;
	atomic_init(&tb->tat, 0);
	return 0;
}

int
mb_tb_take(struct mb_tb *tb, uint32_t n, uint64_t *retry_ns)
{
	uint64_t now, tat, base, next, ask;

	if (tb->interval_ns == 0)
		return 0;
	if (n > tb->burst)
		return -E2BIG;
	now = mb_env_now_ns();
	ask = (uint64_t)n * tb->interval_ns;
	tat = atomic_load_explicit(&tb->tat, memory_order_relaxed);
	do {
		base = tat > now ? tat : now;
		next = base + ask;
		if (next - now > tb->tolerance_ns) {
			if (retry_ns != NULL)
				*retry_ns = next - now - tb->tolerance_ns;
			return -EAGAIN;
		}
	} while (!atomic_compare_exchange_weak_explicit(&tb->tat, &tat, next, memory_order_relaxed,
							memory_order_relaxed));
	return 0;
}

uint32_t
mb_tb_available(struct mb_tb *tb)
{
	uint64_t now = mb_env_now_ns();
	uint64_t tat = atomic_load_explicit(&tb->tat, memory_order_relaxed);
	uint64_t used;

	if (tb->interval_ns == 0)
		return UINT32_MAX;
	used = tat > now ? tat - now : 0;
	return (uint32_t)((tb->tolerance_ns - (used < tb->tolerance_ns ? used : tb->tolerance_ns)) /
			  tb->interval_ns);
}

struct mb_ratelimit {
	struct rte_hash *index;
	pthread_mutex_t insert_lock;
	atomic_bool full;
	uint32_t n_buckets;
	uint32_t max_keys;
	struct mb_tb overflow;
	_Atomic uint64_t keys, allowed, limited, overflow_takes;
	struct mb_tb buckets[]; /* by rte_hash position */
};

void
mb_ratelimit_opts_init(struct mb_ratelimit_opts *opts)
{
	opts->max_keys = 4096;
	opts->default_rate = 0.0;
	opts->default_burst = 1;
	opts->numa_node = MB_NUMA_ANY;
}

int
mb_ratelimit_create(const struct mb_ratelimit_opts *opts, struct mb_ratelimit **out)
{
	static atomic_uint seq;
	struct rte_hash_parameters params = {0};
	struct mb_ratelimit *rl;
	struct rte_hash *index;
	struct mb_tb proto;
	char name[RTE_HASH_NAMESIZE];
	int32_t max_id;

	*out = NULL;
	if (!mb_eal_is_up())
		return -ENODEV;
	if (opts->max_keys == 0 || opts->max_keys > MAX_KEYS) {
		MB_LOG(ERR, "rate limit table: max_keys %u out of range 1..%u", opts->max_keys,
		       MAX_KEYS);
		return -EINVAL;
	}
	if (mb_tb_init(&proto, opts->default_rate, opts->default_burst) < 0) {
		MB_LOG(ERR,
		       "rate limit: default rate %g/s burst %u out of range (rate 0 or %g..%g, "
		       "burst 1..%u)",
		       opts->default_rate, opts->default_burst, MIN_RATE, MAX_RATE, MAX_BURST);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "mb_rl_%u", atomic_fetch_add(&seq, 1));
	params.name = name;
	params.entries = opts->max_keys < 8 ? 8 : opts->max_keys;
	params.key_len = sizeof(uint64_t);
	params.hash_func = rte_jhash;
	params.socket_id = opts->numa_node == MB_NUMA_ANY ? SOCKET_ID_ANY : opts->numa_node;
	params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	index = rte_hash_create(&params);
	if (index == NULL)
		return -ENOMEM;
	max_id = rte_hash_max_key_id(index);
	rl = mb_env_zalloc(sizeof(*rl) + ((size_t)max_id + 1) * sizeof(struct mb_tb),
			   opts->numa_node);
	if (rl == NULL) {
		rte_hash_free(index);
		return -ENOMEM;
	}
	rl->index = index;
	rl->n_buckets = (uint32_t)max_id + 1;
	rl->max_keys = opts->max_keys;
	pthread_mutex_init(&rl->insert_lock, NULL);
	rl->overflow = proto;
	for (uint32_t i = 0; i < rl->n_buckets; i++)
		rl->buckets[i] = proto;
	*out = rl;
	return 0;
}

/* The smallest power of two >= @p x (x >= 1). */
static uint64_t
pow2_at_least(uint64_t x)
{
	uint64_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

uint64_t
mb_ratelimit_heap_bytes(uint32_t max_keys)
{
	/* rte_hash_create() with RW_CONCURRENCY_LF | EXT_TABLE and no lcore cache: entries + 1
	 * key slots (16 bytes each: the data pointer and the 8-byte key, 16-aligned), a ring
	 * of their free indices (4 bytes each, a power of two), pow2(entries) / 8 buckets of one
	 * cache line and as many extendable ones with their own free ring, and a 4-byte
	 * "to free" entry per key slot. Then our buckets, one per key slot. */
	const uint64_t entries = max_keys < 8 ? 8 : max_keys;
	const uint64_t slots = entries + 1, buckets = pow2_at_least(entries) / 8;
	const uint64_t ring_header = 2 * 64 * 3; /* struct rte_ring, about */
	const uint64_t other = 2048; /* struct rte_hash, its list entry, allocation headers */
	uint64_t index = other + slots * 16 + ring_header + pow2_at_least(slots) * 4 +
			 2 * buckets * 64 + ring_header + pow2_at_least(buckets + 1) * 4 +
			 slots * 4;

	return index + sizeof(struct mb_ratelimit) + slots * sizeof(struct mb_tb);
}

void
mb_ratelimit_destroy(struct mb_ratelimit **rl)
{
	if (rl == NULL || *rl == NULL)
		return;
	rte_hash_free((*rl)->index);
	pthread_mutex_destroy(&(*rl)->insert_lock);
	mb_env_free(*rl);
	*rl = NULL;
}

/* Position of @key, inserting it if new; -ENOSPC when full. */
static int32_t
position(struct mb_ratelimit *rl, uint64_t key)
{
	int32_t pos = rte_hash_lookup(rl->index, &key);

	if (pos >= 0 || pos != -ENOENT)
		return pos;
	if (atomic_load_explicit(&rl->full, memory_order_relaxed))
		return -ENOSPC;
	pthread_mutex_lock(&rl->insert_lock);
	pos = rte_hash_lookup(rl->index, &key);
	if (pos == -ENOENT) {
		if (atomic_load(&rl->keys) >= rl->max_keys ||
		    (pos = rte_hash_add_key(rl->index, &key)) == -ENOSPC) {
			atomic_store(&rl->full, true);
			pos = -ENOSPC;
		} else if (pos >= 0) {
			atomic_fetch_add(&rl->keys, 1);
		}
	}
	pthread_mutex_unlock(&rl->insert_lock);
	return pos;
}

int
mb_ratelimit_set(struct mb_ratelimit *rl, uint64_t key, double rate, uint32_t burst)
{
	struct mb_tb tb;
	int32_t pos;

	if (mb_tb_init(&tb, rate, burst) < 0)
		return -EINVAL;
	pos = position(rl, key);
	if (pos < 0)
		return pos == -ENOSPC ? -ENOSPC : -EINVAL;
	if ((uint32_t)pos >= rl->n_buckets)
		return -EINVAL;
	rl->buckets[pos] = tb;
	return 0;
}

int
mb_ratelimit_take(struct mb_ratelimit *rl, uint64_t key, uint32_t n, uint64_t *retry_ns)
{
	int32_t pos = position(rl, key);
	struct mb_tb *tb;
	int rc;

	if (pos >= 0 && (uint32_t)pos < rl->n_buckets) {
		tb = &rl->buckets[pos];
	} else {
		tb = &rl->overflow;
		atomic_fetch_add_explicit(&rl->overflow_takes, 1, memory_order_relaxed);
	}
	rc = mb_tb_take(tb, n, retry_ns);
	atomic_fetch_add_explicit(rc == 0 ? &rl->allowed : &rl->limited, 1, memory_order_relaxed);
	return rc;
}

void
mb_ratelimit_stats(const struct mb_ratelimit *rl, struct mb_ratelimit_stats *out)
{
	struct mb_ratelimit *m = (struct mb_ratelimit *)rl;

	out->keys = atomic_load_explicit(&m->keys, memory_order_relaxed);
	out->allowed = atomic_load_explicit(&m->allowed, memory_order_relaxed);
	out->limited = atomic_load_explicit(&m->limited, memory_order_relaxed);
	out->overflow_takes = atomic_load_explicit(&m->overflow_takes, memory_order_relaxed);
}
