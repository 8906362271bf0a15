/*
 * breaker.c: closed / open / half-open circuit breaker.
 *
 * Transitions happen under a mutex held for a few loads and stores; the state and the end
 * of the cool-down are mirrored in atomics so the front door can refuse early without it.
 * All timing comes from mb_env_now_ns(), so tests drive it with the virtual clock.
 */
#include "mb_breaker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mb_env.h"

#define MB_LOG_MODULE "breaker"
#include "mb_log.h"

void
mb_breaker_opts_init(struct mb_breaker_opts *opts)
{
	opts->failure_threshold = 5;
	opts->cooldown_ns = 5 * MB_NS_PER_S;
	opts->probe_timeout_ns = 30 * MB_NS_PER_S;
	opts->model = NULL;
	opts->device = NULL;
}

int
mb_breaker_init(struct mb_breaker *b, const struct mb_breaker_opts *opts)
{
	if (opts->failure_threshold == 0 || opts->cooldown_ns == 0 || opts->probe_timeout_ns == 0)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	b->opts = *opts;
	b->opts.model = b->opts.device = NULL; /* borrowed for the call: the label has them */
	if (opts->model != NULL && opts->device != NULL)
		snprintf(b->label, sizeof(b->label), "model %s on device %s: ", opts->model,
			 opts->device);
	else if (opts->model != NULL || opts->device != NULL)
		snprintf(b->label, sizeof(b->label),
			 "%s %s: ", opts->model != NULL ? "model" : "device",
			 opts->model != NULL ? opts->model : opts->device);
	atomic_init(&b->state, MB_BREAKER_CLOSED);
	atomic_init(&b->open_until_ns, 0);
	atomic_init(&b->rejected, 0);
	return 0;
}

void
mb_breaker_fini(struct mb_breaker *b)
{
	pthread_mutex_destroy(&b->lock);
}

static void
set_state_locked(struct mb_breaker *b, enum mb_breaker_state s)
{
	atomic_store_explicit(&b->state, s, memory_order_release);
}

static void
open_locked(struct mb_breaker *b, uint64_t now)
{
	atomic_store_explicit(&b->open_until_ns, now + b->opts.cooldown_ns, memory_order_release);
	set_state_locked(b, MB_BREAKER_OPEN);
	b->probe_out = false;
	b->opens++;
}

enum mb_breaker_verdict
mb_breaker_check(struct mb_breaker *b)
{
	enum mb_breaker_verdict v = MB_BREAKER_REJECT;
	uint64_t now;

	if (atomic_load_explicit(&b->state, memory_order_acquire) == MB_BREAKER_CLOSED)
		return MB_BREAKER_ALLOW;
	now = mb_env_now_ns();
	pthread_mutex_lock(&b->lock);
	switch ((enum mb_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed)) {
	case MB_BREAKER_CLOSED:
		v = MB_BREAKER_ALLOW;
		break;
	case MB_BREAKER_OPEN:
		if (now < atomic_load_explicit(&b->open_until_ns, memory_order_relaxed))
			break;
		set_state_locked(b, MB_BREAKER_HALF_OPEN);
		/* The first caller after the cool-down probes. */
		__attribute__((fallthrough));
	case MB_BREAKER_HALF_OPEN:
		if (b->probe_out && now - b->probe_started_ns < b->opts.probe_timeout_ns)
			break;
		b->probe_out = true;
		b->probe_started_ns = now;
		b->probes++;
		v = MB_BREAKER_PROBE;
		break;
	}
	pthread_mutex_unlock(&b->lock);
	if (v == MB_BREAKER_REJECT)
		atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
	return v;
}

void
mb_breaker_report(struct mb_breaker *b, enum mb_breaker_verdict verdict, bool success)
{
	enum mb_breaker_state s;

	if (verdict == MB_BREAKER_REJECT)
		return;
	pthread_mutex_lock(&b->lock);
	s = (enum mb_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
	if (s == MB_BREAKER_CLOSED) {
		if (success) {
			b->failures = 0;
		} else if (++b->failures >= b->opts.failure_threshold) {
			open_locked(b, mb_env_now_ns());
			MB_LOG(WARNING,
			       "%sbreaker opened after %u consecutive failures; work is refused "
			       "for "
			       "%" PRIu64 " ms, then one probe runs",
			       b->label, b->failures, b->opts.cooldown_ns / MB_NS_PER_MS);
		}
	} else if (verdict == MB_BREAKER_PROBE && s == MB_BREAKER_HALF_OPEN) {
		if (success) {
			b->failures = 0;
			b->probe_out = false;
			set_state_locked(b, MB_BREAKER_CLOSED);
			MB_LOG(NOTICE, "%sbreaker closed: probe succeeded", b->label);
		} else {
			open_locked(b, mb_env_now_ns());
			MB_LOG(WARNING,
			       "%sbreaker re-opened: probe failed; work is refused for %" PRIu64
			       " ms",
			       b->label, b->opts.cooldown_ns / MB_NS_PER_MS);
		}
	}
	pthread_mutex_unlock(&b->lock);
}

enum mb_breaker_state
mb_breaker_state(const struct mb_breaker *b)
{
	return (enum mb_breaker_state)atomic_load_explicit(&((struct mb_breaker *)b)->state,
							   memory_order_acquire);
}

bool
mb_breaker_rejecting(const struct mb_breaker *b)
{
	struct mb_breaker *m = (struct mb_breaker *)b;

	return atomic_load_explicit(&m->state, memory_order_acquire) == MB_BREAKER_OPEN &&
	       mb_env_now_ns() < atomic_load_explicit(&m->open_until_ns, memory_order_acquire);
}

void
mb_breaker_stats(struct mb_breaker *b, struct mb_breaker_stats *out)
{
	pthread_mutex_lock(&b->lock);
	out->state = (enum mb_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
	out->consecutive_failures = b->failures;
	out->opens = b->opens;
	out->probes = b->probes;
	pthread_mutex_unlock(&b->lock);
	out->rejected = atomic_load_explicit(&b->rejected, memory_order_relaxed);
}

const char *
mb_breaker_state_name(enum mb_breaker_state state)
{
	switch (state) {
	case MB_BREAKER_CLOSED:
		return "closed";
	case MB_BREAKER_OPEN:
		return "open";
	case MB_BREAKER_HALF_OPEN:
		return "half-open";
	}
	return "?";
}
