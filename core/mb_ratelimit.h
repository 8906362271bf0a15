/**
 * @file
 * Token buckets, alone and per key (tenant), on the env clock.
 *
 * A bucket refills at @c rate tokens per second up to @c burst tokens and starts full.
 * Taking n tokens succeeds if n are there; otherwise nothing is taken and the caller learns
 * how long until n would be. The bucket is kept in its GCRA form (the "virtual scheduling"
 * equivalent of a token bucket): one 64-bit theoretical arrival time updated with one
 * compare-and-swap, so any number of threads may take from it without a lock. Rates are
 * held as nanoseconds per token: exact for rates that divide 1e9, within 1 ns per token
 * otherwise; rates from 1e-3 to 1e9 per second. A rate of 0 means unlimited.
 *
 * A struct mb_ratelimit maps keys (tenant ids) to buckets: keys given a limit with
 * mb_ratelimit_set() get it; any other key gets its own bucket with the default limit,
 * created on first use, up to @c max_keys. Past that, unknown keys share one overflow bucket
 * with the default limit (memory stays bounded whatever keys clients invent), counted in
 * the stats.
 *
 * Threads: mb_tb_take() and mb_ratelimit_take() from any thread, lock-free. The table is
 * built (create, set) by one thread before others take from it.
 */
#ifndef MB_RATELIMIT_H
#define MB_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** One token bucket. Embed it; fields are private. */
struct mb_tb {
	_Atomic uint64_t tat;  /* theoretical arrival time, ns */
	uint64_t interval_ns;  /* ns per token; 0 = unlimited */
	uint64_t tolerance_ns; /* burst * interval */
	uint32_t burst;
};

/**
 * Set a bucket to @p rate tokens/s (0 = unlimited) and @p burst tokens (>= 1 unless
 * unlimited), full. Returns 0, or -EINVAL for a rate outside 1e-3..1e9 or a burst of 0 or
 * above 1e6 (the message for config errors names those ranges).
 */
int mb_tb_init(struct mb_tb *tb, double rate, uint32_t burst);

/**
 * Take @p n tokens at mb_env_now_ns(). Returns 0 if taken; -EAGAIN if not enough (nothing
 * taken; *@p retry_ns, if not NULL, says how long until there would be); -E2BIG if @p n
 * exceeds the burst (never possible). Lock-free; any thread.
 */
int mb_tb_take(struct mb_tb *tb, uint32_t n, uint64_t *retry_ns);

/** Tokens available now (rounded down). */
uint32_t mb_tb_available(struct mb_tb *tb);

struct mb_ratelimit;

struct mb_ratelimit_opts {
	uint32_t max_keys;   /**< distinct keys with their own bucket, 1..(1 << 24) */
	double default_rate; /**< tokens/s for keys without their own limit; 0 = unlimited */
	uint32_t default_burst;
	int numa_node; /**< memory placement (OS index or MB_NUMA_ANY) */
};

struct mb_ratelimit_stats {
	uint64_t keys;		 /**< keys with their own bucket */
	uint64_t allowed;	 /**< takes that succeeded */
	uint64_t limited;	 /**< takes refused for lack of tokens */
	uint64_t overflow_takes; /**< takes by keys that found the table full */
};

/** Defaults: 4096 keys, unlimited, burst 1, any node. */
void mb_ratelimit_opts_init(struct mb_ratelimit_opts *opts);

/**
 * Create a table. Needs EAL (the key index is an rte_hash). Returns 0 and sets @p out (free
 * with mb_ratelimit_destroy()); -EINVAL for options out of range; -ENODEV without EAL;
 * -ENOMEM.
 */
int mb_ratelimit_create(const struct mb_ratelimit_opts *opts, struct mb_ratelimit **out);

/**
 * The DPDK heap a table of @p max_keys takes: its buckets and its rte_hash index (key store,
 * bucket arrays and free-slot rings, as rte_hash_create() sizes them for the flags the table
 * uses; tests/unit/core/ratelimit_test.c checks the figure against the heap it really took).
 * For `--check`; needs no EAL.
 */
uint64_t mb_ratelimit_heap_bytes(uint32_t max_keys);

/** Free a table and set *@p rl to NULL; NULL is accepted. */
void mb_ratelimit_destroy(struct mb_ratelimit **rl);

/**
 * Give @p key its own limit (setup time). Returns 0, -EINVAL (see mb_tb_init()), or
 * -ENOSPC when @p max_keys keys exist already.
 */
int mb_ratelimit_set(struct mb_ratelimit *rl, uint64_t key, double rate, uint32_t burst);

/** Take @p n tokens for @p key; returns as mb_tb_take(). Lock-free; any thread. */
int mb_ratelimit_take(struct mb_ratelimit *rl, uint64_t key, uint32_t n, uint64_t *retry_ns);

/** Snapshot of the counters. Any thread. */
void mb_ratelimit_stats(const struct mb_ratelimit *rl, struct mb_ratelimit_stats *out);

#endif /* MB_RATELIMIT_H */
