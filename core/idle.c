/*
 * idle.c: what a polling thread does when its poll came back empty.
 *
 * Spin for a while (pause instruction: the cheapest way to stay responsive), then yield or
 * sleep according to the policy. Sleeps use the caller's doorbell when there is one, so a
 * producer's enqueue ends them at once; see mb_doorbell.h for the handshake. Owned by the
 * polling thread; counters are readable from anywhere.
 */
#include "mb_idle.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include <rte_pause.h>

#include "mb_env.h"

void
mb_idle_opts_init(struct mb_idle_opts *opts)
{
	opts->mode = MB_IDLE_SLEEP;
	opts->spin_polls = 1024;
	opts->sleep_ns = 1 * MB_NS_PER_MS;
}

int
mb_idle_parse_mode(const char *name, enum mb_idle_mode *mode)
{
	if (name == NULL)
		return -EINVAL;
	if (strcmp(name, "spin") == 0)
		*mode = MB_IDLE_SPIN;
	else if (strcmp(name, "yield") == 0)
		*mode = MB_IDLE_YIELD;
	else if (strcmp(name, "sleep") == 0)
		*mode = MB_IDLE_SLEEP;
	else
		return -EINVAL;
	return 0;
}

int
mb_idle_init(struct mb_idle *idle, const struct mb_idle_opts *opts)
{
	if ((unsigned)opts->mode > MB_IDLE_SLEEP ||
	    (opts->mode == MB_IDLE_SLEEP && opts->sleep_ns == 0))
		return -EINVAL;
	memset(idle, 0, sizeof(*idle));
	idle->opts = *opts;
	idle->last_tsc = rte_rdtsc();
	return 0;
}

void
mb_idle_pause(struct mb_idle *idle, struct mb_doorbell *db, mb_idle_recheck_fn recheck, void *arg,
	      uint64_t max_ns)
{
	uint64_t sleep_ns;

	if (idle->empty_polls < UINT32_MAX)
		idle->empty_polls++;
	if (idle->opts.mode == MB_IDLE_SPIN || idle->empty_polls <= idle->opts.spin_polls) {
		rte_pause();
		return;
	}
	if (idle->opts.mode == MB_IDLE_YIELD) {
		MB_IDLE_BUMP(idle->yields, 1);
		sched_yield();
		return;
	}
	sleep_ns = idle->opts.sleep_ns < max_ns ? idle->opts.sleep_ns : max_ns;
	if (sleep_ns == 0)
		return;
	if (db == NULL) {
		MB_IDLE_BUMP(idle->sleeps, 1);
		mb_env_sleep_ns(sleep_ns);
		return;
	}
	mb_doorbell_prepare(db);
	if (recheck != NULL && recheck(arg)) {
		mb_doorbell_cancel(db);
		return;
	}
	MB_IDLE_BUMP(idle->sleeps, 1);
	if (mb_doorbell_wait(db, sleep_ns) == 1)
		MB_IDLE_BUMP(idle->bell_wakeups, 1);
}

void
mb_idle_stats(const struct mb_idle *idle, struct mb_idle_stats *out)
{
	struct mb_idle *m = (struct mb_idle *)idle; /* atomics need a non-const lvalue */

	out->busy_polls = atomic_load_explicit(&m->busy_polls, memory_order_relaxed);
	out->idle_polls = atomic_load_explicit(&m->idle_polls, memory_order_relaxed);
	out->busy_tsc = atomic_load_explicit(&m->busy_tsc, memory_order_relaxed);
	out->idle_tsc = atomic_load_explicit(&m->idle_tsc, memory_order_relaxed);
	out->yields = atomic_load_explicit(&m->yields, memory_order_relaxed);
	out->sleeps = atomic_load_explicit(&m->sleeps, memory_order_relaxed);
	out->bell_wakeups = atomic_load_explicit(&m->bell_wakeups, memory_order_relaxed);
}
