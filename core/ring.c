/*
 * ring.c: creation and the waiting dequeue of struct mb_ring; the burst calls are inline in
 * mb_ring.h and add one relaxed load (the doorbell's waiter count) to rte_ring's own cost.
 *
 * The rte_ring is created with RING_F_EXACT_SZ so the capacity is exactly what the config
 * asked for, and with the sync modes mapped to DPDK's flags. The struct itself lives on the
 * same NUMA node as the ring memory.
 */
#include "mb_ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "mb_eal.h"
#include "mb_env.h"

#define MB_LOG_MODULE "ring"
#include "mb_log.h"

#define MAX_NAME 28
#define MAX_CAPACITY (1u << 30)

void
mb_ring_opts_init(struct mb_ring_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->capacity = 1024;
	opts->numa_node = MB_NUMA_ANY;
	opts->prod_sync = MB_RING_SYNC_ST;
	opts->cons_sync = MB_RING_SYNC_ST;
}

static int
sync_flags(enum mb_ring_sync sync, bool prod, unsigned int *flags)
{
	switch (sync) {
	case MB_RING_SYNC_ST:
		*flags |= prod ? RING_F_SP_ENQ : RING_F_SC_DEQ;
		return 0;
	case MB_RING_SYNC_MT_HTS:
		*flags |= prod ? RING_F_MP_HTS_ENQ : RING_F_MC_HTS_DEQ;
		return 0;
	case MB_RING_SYNC_MT_RTS:
		*flags |= prod ? RING_F_MP_RTS_ENQ : RING_F_MC_RTS_DEQ;
		return 0;
	case MB_RING_SYNC_MT:
		return 0; /* DPDK's default: classic MP/MC */
	}
	return -EINVAL;
}

int
mb_ring_create(const struct mb_ring_opts *opts, struct mb_ring **out)
{
	struct mb_ring *ring;
	unsigned int flags = RING_F_EXACT_SZ;
	size_t name_len;
	int rc;

	*out = NULL;
	if (!mb_eal_is_up())
		return -ENODEV;
	name_len = opts->name != NULL ? strlen(opts->name) : 0;
	if (name_len == 0 || name_len > MAX_NAME) {
		MB_LOG(ERR, "ring name must be 1..%d characters", MAX_NAME);
		return -EINVAL;
	}
	if (opts->capacity == 0 || opts->capacity > MAX_CAPACITY) {
		MB_LOG(ERR, "ring %s: capacity %u out of range 1..%u", opts->name, opts->capacity,
		       MAX_CAPACITY);
		return -EINVAL;
	}
	if (sync_flags(opts->prod_sync, true, &flags) < 0 ||
	    sync_flags(opts->cons_sync, false, &flags) < 0)
		return -EINVAL;

	ring = mb_env_zalloc(sizeof(*ring), opts->numa_node);
	if (ring == NULL)
		return -ENOMEM;
	ring->own_db.fd = -1;
	snprintf(ring->name, sizeof(ring->name), "%s", opts->name);
	ring->numa_node = opts->numa_node;
	atomic_init(&ring->kicks, 0);
	if (opts->doorbell != NULL) {
		ring->db = opts->doorbell;
	} else {
		rc = mb_doorbell_init(&ring->own_db);
		if (rc < 0)
			goto fail;
		ring->db = &ring->own_db;
	}
	ring->r = rte_ring_create(ring->name, opts->capacity,
				  opts->numa_node == MB_NUMA_ANY ? SOCKET_ID_ANY : opts->numa_node,
				  flags);
	if (ring->r == NULL) {
		rc = rte_errno == E_RTE_NO_CONFIG ? -ENODEV : -rte_errno;
		MB_LOG(ERR, "ring %s: rte_ring_create failed: %s", ring->name,
		       rte_strerror(rte_errno));
		goto fail;
	}
	*out = ring;
	return 0;
fail:
	mb_doorbell_fini(&ring->own_db);
	mb_env_free(ring);
	return rc;
}

void
mb_ring_destroy(struct mb_ring **ring)
{
	if (ring == NULL || *ring == NULL)
		return;
	rte_ring_free((*ring)->r);
	mb_doorbell_fini(&(*ring)->own_db);
	mb_env_free(*ring);
	*ring = NULL;
}

struct recheck_ctx {
	struct mb_ring *ring;
	unsigned int kicks;
};

/* rte_ring_empty() reads the tails with plain loads; these atomic loads say the same thing
 * in a way ThreadSanitizer can follow. prod.tail and cons.tail alias the tail of every sync
 * mode (DPDK's rte_ring_count() relies on that too). */
static bool
ring_has_items(const struct rte_ring *r)
{
	uint32_t prod = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE);
	uint32_t cons = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);

	return prod != cons;
}

static bool
has_work_or_kick(void *arg)
{
	struct recheck_ctx *c = arg;

	return ring_has_items(c->ring->r) ||
	       atomic_load_explicit(&c->ring->kicks, memory_order_acquire) != c->kicks;
}

unsigned int
mb_ring_dequeue_burst_wait(struct mb_ring *ring, void **objs, unsigned int n, struct mb_idle *idle,
			   uint64_t deadline_ns)
{
	struct recheck_ctx ctx = {
		.ring = ring,
		.kicks = atomic_load_explicit(&ring->kicks, memory_order_acquire),
	};
	unsigned int got;
	uint64_t now;

	for (;;) {
		got = rte_ring_dequeue_burst(ring->r, objs, n, NULL);
		mb_idle_account(idle, got);
		if (got != 0)
			return got;
		if (atomic_load_explicit(&ring->kicks, memory_order_acquire) != ctx.kicks)
			return 0;
		if (mb_idle_spinning(idle)) {
			/* no clock read while only spinning: the deadline is checked before any
			 * sleep or yield, at most spin_polls pauses late */
			mb_idle_pause(idle, NULL, NULL, NULL, 0);
			continue;
		}
		now = mb_env_now_ns();
		if (now >= deadline_ns)
			return 0;
		mb_idle_pause(idle, ring->db, has_work_or_kick, &ctx, deadline_ns - now);
	}
}

void
mb_ring_wake(struct mb_ring *ring)
{
	atomic_fetch_add_explicit(&ring->kicks, 1, memory_order_acq_rel);
	mb_doorbell_ring_slow(ring->db);
}

const char *
mb_ring_name(const struct mb_ring *ring)
{
	return ring->name;
}

int
mb_ring_numa_node(const struct mb_ring *ring)
{
	return ring->numa_node;
}
