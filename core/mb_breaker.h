/**
 * @file
 * Circuit breaker, one per (model, device), on the env clock.
 *
 * CLOSED: work runs; @c failure_threshold failures in a row open the breaker.
 * OPEN: work is rejected at once (the service answers UNAVAILABLE) for @c cooldown_ns.
 * HALF_OPEN: after the cool-down, exactly one caller gets MB_BREAKER_PROBE and runs; the
 * others are rejected until its result: success closes the breaker, failure opens it for
 * another cool-down. A probe that never reports (its batch was cancelled) is replaced by a
 * new one after @c probe_timeout_ns.
 *
 * Usage, per batch:
 *
 *     enum mb_breaker_verdict v = mb_breaker_check(b);
 *     if (v == MB_BREAKER_REJECT) -> answer UNAVAILABLE
 *     ... run ...
 *     mb_breaker_report(b, v, ok);
 *
 * While OPEN or HALF_OPEN, only the probe's report counts: late results of batches admitted
 * before the breaker opened neither close nor re-open it.
 *
 * Its log lines (opened, re-opened, closed) name the model and the device it guards when the
 * options do (@c model, @c device): `model flaky on device cpu0: breaker opened after 3
 * consecutive failures ...`.
 *
 * Threads: check and report from any thread (a short mutex); mb_breaker_state() and
 * mb_breaker_rejecting() are lock-free for a front door that wants to refuse early.
 */
#ifndef MB_BREAKER_H
#define MB_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum mb_breaker_state {
	MB_BREAKER_CLOSED = 0,
	MB_BREAKER_OPEN,
	MB_BREAKER_HALF_OPEN,
};

enum mb_breaker_verdict {
	MB_BREAKER_ALLOW = 0, /**< closed: run */
	MB_BREAKER_PROBE,     /**< half-open: run as the one probe, then report */
	MB_BREAKER_REJECT,    /**< open: do not run */
};

struct mb_breaker_opts {
	uint32_t failure_threshold; /**< consecutive failures that open it, >= 1 */
	uint64_t cooldown_ns;	    /**< time open before a probe, > 0 */
	uint64_t probe_timeout_ns;  /**< a probe silent this long is replaced, > 0 */
	/** For its log lines, optional (NULL: unnamed): the model and the device it guards
	 * ("flaky", "cpu0"); copied by mb_breaker_init() */
	const char *model;
	const char *device;
};

struct mb_breaker_stats {
	enum mb_breaker_state state;
	uint32_t consecutive_failures;
	uint64_t opens;	   /**< transitions to OPEN */
	uint64_t probes;   /**< probes handed out */
	uint64_t rejected; /**< checks answered REJECT */
};

/** A breaker. Embed it; fields are private. */
struct mb_breaker {
	pthread_mutex_t lock;
	struct mb_breaker_opts opts;
	_Atomic int state;
	_Atomic uint64_t open_until_ns;
	uint32_t failures;
	uint64_t probe_started_ns;
	bool probe_out;
	uint64_t opens, probes;
	_Atomic uint64_t rejected;
	char label[64]; /* "model M on device D: " (or less), before its log lines */
};

/** Defaults: 5 failures, 5 s cool-down, 30 s probe timeout, unnamed. */
void mb_breaker_opts_init(struct mb_breaker_opts *opts);

/** Initialise @p b closed. Returns 0, or -EINVAL for an option out of range. */
int mb_breaker_init(struct mb_breaker *b, const struct mb_breaker_opts *opts);

/** Release @p b's mutex. */
void mb_breaker_fini(struct mb_breaker *b);

/** Decide whether work may run now (see the file comment). Any thread. */
enum mb_breaker_verdict mb_breaker_check(struct mb_breaker *b);

/** Report the result of work that got @p verdict from mb_breaker_check(). Any thread. */
void mb_breaker_report(struct mb_breaker *b, enum mb_breaker_verdict verdict, bool success);

/** Current state (OPEN past its cool-down stays OPEN until a check probes). Lock-free. */
enum mb_breaker_state mb_breaker_state(const struct mb_breaker *b);

/**
 * True while work would be rejected without question: OPEN and within the cool-down.
 * Lock-free; for an early UNAVAILABLE at the front door.
 */
bool mb_breaker_rejecting(const struct mb_breaker *b);

/** Snapshot of the counters. Any thread. */
void mb_breaker_stats(struct mb_breaker *b, struct mb_breaker_stats *out);

/** "closed", "open" or "half-open". */
const char *mb_breaker_state_name(enum mb_breaker_state state);

#endif /* MB_BREAKER_H */
