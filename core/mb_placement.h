/**
 * @file
 * Placement: which polled thread (reactor, mb_reactor.h) runs which stage of the request
 * path, and which CPU each such thread is bound to.
 *
 * The stages that are pollers: the ZeroMQ front door together with egress (one ZeroMQ
 * socket belongs to one thread, and the ROUTER carries both requests and replies, so they
 * always share a thread), the batcher, and each UDP rx queue. Compute (CPU and GPU workers)
 * is not placed here: it blocks, so it runs on worker threads of its own.
 *
 * Policies:
 * - MB_PLACEMENT_SINGLE: every poller on one thread ("poll0"). What a small machine wants:
 *   a hand-off between stages is a ring operation on the same thread, never a wakeup.
 * - MB_PLACEMENT_PER_STAGE: one thread per stage: "frontdoor" (front door + egress),
 *   "batcher", and one "rxN" per UDP rx queue.
 * - MB_PLACEMENT_AUTO: from the topology. SINGLE when the CPUs this process may use have
 *   fewer than MB_PLACEMENT_AUTO_MIN_CORES cores (the embedded default on a 2-core VM), and
 *   when there is no topology. Otherwise each rx queue gets a thread of its own on a whole
 *   core NUMA-near its NIC (role RX), and one control thread "control" runs the front door,
 *   egress and the batcher, on the NUMA node of the GPUs.
 *
 * The control node, where every thread that is not an rx thread goes: the (first) GPU's
 * node, else the first rx queue's NIC's node, else any node. It holds the batcher, which
 * fills the GPUs' batches, and in PER_STAGE the front door too: its hand-offs go to the
 * batcher.
 *
 * CPUs come from mb_topo_place() (roles: RX for a thread that runs only rx queues, BATCHER
 * for a thread that runs the batcher, "poll0" and "control" included, OTHER for the rest),
 * placed in that order (mb_topo_plan()), so rx threads get whole cores first. Without a
 * topology, no thread is bound (cpu -1).
 *
 * A lone thread ("poll0") on a topology of fewer than MB_PLACEMENT_AUTO_MIN_CORES cores is
 * not bound either (cpu -1), whichever policy chose it, and claims no CPU. There is no
 * NUMA choice to make on such a machine, and pinning would take the scheduler's one lever
 * away: mb_topo_place() would give it the first core, the one EAL's main lcore and most
 * interrupts use, and it could not move off a CPU that a compute worker (unbound) keeps
 * busy. On such a machine it sleeps when idle (MB_IDLE_SLEEP, mb_idle.h): floating costs
 * little.
 *
 * Threads: a plain computation on the thread that builds the pipeline.
 */
#ifndef MB_PLACEMENT_H
#define MB_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_topo.h"

#define MB_PLACEMENT_AUTO_MIN_CORES 4
#define MB_PLACEMENT_MAX_THREADS 40
#define MB_PLACEMENT_MAX_RX 32

enum mb_placement_policy {
	MB_PLACEMENT_AUTO = 0,
	MB_PLACEMENT_SINGLE,
	MB_PLACEMENT_PER_STAGE,
};

/** Bits of struct mb_placement_thread.stages. */
enum {
	MB_STAGE_FRONTDOOR = 1u << 0, /**< ZeroMQ front door and egress */
	MB_STAGE_BATCHER = 1u << 1,
	MB_STAGE_RX = 1u << 2, /**< one or more UDP rx queues: rx_first .. rx_first+n_rx-1 */
};

/** What is to be placed. */
struct mb_placement_input {
	enum mb_placement_policy policy;
	uint32_t n_rx; /**< UDP rx queues (0: no UDP ingest), at most MB_PLACEMENT_MAX_RX */
	int rx_numa[MB_PLACEMENT_MAX_RX]; /**< NUMA node (OS index) of each rx queue's NIC, or
					    MB_NUMA_ANY; the first n_rx are read */
	int gpu_numa; /**< NUMA node of the (first) GPU, or MB_NUMA_ANY (no GPU) */
};

struct mb_placement_thread {
	char name[16];	 /**< "poll0", "frontdoor", "batcher", "control", "rx0", ... */
	uint32_t stages; /**< MB_STAGE_* bits */
	uint32_t rx_first, n_rx;
	int cpu;       /**< CPU to bind to (OS index), -1: not bound */
	int numa_node; /**< of that CPU, or MB_NUMA_ANY when not bound */
};

struct mb_placement {
	enum mb_placement_policy policy;    /**< as asked */
	enum mb_placement_policy effective; /**< SINGLE or PER_STAGE, or AUTO when split by
					      topology */
	uint32_t n_threads;
	struct mb_placement_thread threads[MB_PLACEMENT_MAX_THREADS];
};

/** "auto", "single", "per-stage" -> policy. Returns 0 or -EINVAL. */
int mb_placement_parse(const char *name, enum mb_placement_policy *out);

/** The policy's name as mb_placement_parse() reads it; "unknown" for another value. */
const char *mb_placement_policy_name(enum mb_placement_policy p);

/**
 * Compute a placement into @p out (owned by the caller). @p topo may be NULL (no binding;
 * AUTO then means SINGLE). Claims CPUs in @p topo (mb_topo_place()); the caller resets the
 * claims if it places again. Every stage appears on exactly one thread (MB_STAGE_RX only
 * when n_rx > 0); every rx queue on exactly one thread. Threads are listed "poll0"; or
 * "control", "rx0", "rx1", ...; or "frontdoor", "batcher", "rx0", "rx1", ...
 * Returns 0, or -EINVAL (bad input: NULL @p in or @p out, n_rx too large, unknown policy, a
 * node below MB_NUMA_ANY), or an error of mb_topo_place() (-EINVAL for a node the topology
 * does not have, -ENOSPC); on an error @p out has no thread, and claims made before it stay.
 * @p in is borrowed for the call.
 */
int mb_placement_compute(struct mb_topo *topo, const struct mb_placement_input *in,
			 struct mb_placement *out);

/**
 * One line per thread, for --check and the start-up log, e.g.
 *   "poll0 (cpu any): frontdoor+egress, batcher, rx0, rx1"
 *   "rx0 (cpu 3, node 0): rx0"
 * ("rx0 (cpu 3): rx0" for a CPU whose node is MB_NUMA_ANY: one set by the caller).
 * Lines separated by "; ". Always NUL-terminates @p buf when @p len > 0. Returns the
 * length written, without the NUL (truncated to @p len - 1; 0 when @p len is 0).
 */
size_t mb_placement_describe(const struct mb_placement *p, char *buf, size_t len);

/** The stages of one thread, as mb_placement_describe() lists them ("frontdoor+egress,
 *  batcher, rx0"); NUL-terminated like it. Returns the length written. */
size_t mb_placement_thread_stages(const struct mb_placement_thread *t, char *buf, size_t len);

#endif /* MB_PLACEMENT_H */
