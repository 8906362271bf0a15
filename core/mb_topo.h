/**
 * @file
 * Machine topology over hwloc: NUMA nodes, cores, where PCI devices sit, which cores each
 * role of the pipeline should run on, and binding threads and memory.
 *
 * A topology is either this machine's (discovered by hwloc, restricted to the CPUs this
 * process may use) or read from an hwloc XML file, so placement logic can be tested on
 * multi-socket machines with PCI NICs and GPUs from a 1-node developer box.
 *
 * NUMA nodes and CPUs are always named by their OS index: the number Linux, DPDK
 * (socket id) and `numactl` use. A "cpu" is one hardware thread (hwloc PU).
 *
 * Placement. mb_topo_place() picks a CPU for one thread of a role near a NUMA node and
 * records the claim, so successive calls spread threads over distinct cores: first a whole
 * free core on the nearest node that has one (nodes ordered by hwloc's NUMA distance
 * matrix), then, for roles other than RX, a free hyperthread of a core another non-RX thread
 * holds, then, if sharing is allowed, the least-loaded CPU of the nearest node. RX lcores
 * poll and never yield a core willingly, so they are placed first and never get a sibling of
 * another role's core. mb_topo_plan() places a list of requests in that priority order.
 *
 * Threads: a topology is owned by one thread (the one building the pipeline); the query
 * functions may be called from any thread once building is done. Binding applies to the
 * calling thread.
 */
#ifndef MB_TOPO_H
#define MB_TOPO_H

#include <stdbool.h>

struct mb_topo;

struct mb_topo_opts {
	/** hwloc XML file to load instead of this machine. Borrowed for the call. */
	const char *xml_path;
	/**
	 * When a role finds no free core: share the least-loaded CPU (true, default: a
	 * 2-core machine still runs) or fail with -ENOSPC (false: bare metal, where a
	 * shared polled core is a misconfiguration).
	 */
	bool allow_shared;
};

/** Roles of pipeline threads, in placement priority order. */
enum mb_topo_role {
	MB_TOPO_ROLE_RX = 0,	 /**< polled DPDK rx lcore, near its NIC */
	MB_TOPO_ROLE_GPU_WORKER, /**< GPU worker, near its GPU */
	MB_TOPO_ROLE_BATCHER,	 /**< batcher, near the GPUs serving its model */
	MB_TOPO_ROLE_OTHER,	 /**< front door, egress, housekeeping */
	MB_TOPO_ROLE_COUNT,
};

/** Where one thread should run. */
struct mb_topo_placement {
	int cpu;       /**< OS index of the CPU (hwloc PU) */
	int core;      /**< logical index of its core */
	int numa_node; /**< OS index of its NUMA node */
	bool near;     /**< on the NUMA node that was asked for (or any, if none was) */
	bool shared;   /**< the CPU is also given to another thread */
};

/** One request for mb_topo_plan(). */
struct mb_topo_request {
	enum mb_topo_role role;
	int near_node;		       /**< OS index of a NUMA node, or MB_NUMA_ANY */
	struct mb_topo_placement *out; /**< where to write the placement; borrowed */
};

/** Fill @p opts with defaults: this machine, sharing allowed. */
void mb_topo_opts_init(struct mb_topo_opts *opts);

/**
 * Discover or load a topology. Returns 0 and sets @p out (owned by the caller, freed with
 * mb_topo_destroy()); -ENOENT if the XML file does not exist; -EINVAL if hwloc cannot load
 * it; -ENODEV if it has no CPU; -ENOMEM. Errors are logged with the file name.
 */
int mb_topo_create(const struct mb_topo_opts *opts, struct mb_topo **out);

/** Free a topology and set *@p topo to NULL; NULL and *NULL are accepted. */
void mb_topo_destroy(struct mb_topo **topo);

/** True if the topology is the machine this process runs on (binding is possible). */
bool mb_topo_is_this_system(const struct mb_topo *topo);

/** Number of NUMA nodes (at least 1). */
int mb_topo_numa_count(const struct mb_topo *topo);

/** OS index of the @p i-th NUMA node (0 <= i < count), or -EINVAL. */
int mb_topo_numa_os_index(const struct mb_topo *topo, int i);

/** Number of cores, and of CPUs (hardware threads), in the whole topology. */
int mb_topo_core_count(const struct mb_topo *topo);
int mb_topo_cpu_count(const struct mb_topo *topo);

/**
 * CPUs of NUMA node @p node (OS index), one per core when @p one_per_core (the first
 * hardware thread of each core), into @p cpus (at most @p max). Returns how many the node
 * has (may exceed @p max), or -EINVAL for an unknown node.
 */
int mb_topo_node_cpus(const struct mb_topo *topo, int node, bool one_per_core, int *cpus, int max);

/** NUMA node (OS index) of CPU @p cpu, or -EINVAL if the topology has no such CPU. */
int mb_topo_cpu_numa(const struct mb_topo *topo, int cpu);

/**
 * NUMA node local to the PCI device @p busid ("0000:17:00.0" or "17:00.0"): its OS index;
 * MB_NUMA_ANY if the device hangs off the whole machine (no single local node); -ENOENT if
 * the topology has no such device; -EINVAL if @p busid is not a PCI address.
 */
int mb_topo_pci_numa(const struct mb_topo *topo, const char *busid);

/**
 * NUMA node local to an OS device by name ("cuda0", "eth0", "mlx5_0"), with the same
 * returns as mb_topo_pci_numa().
 */
int mb_topo_osdev_numa(const struct mb_topo *topo, const char *name);

/**
 * NUMA nodes ordered nearest first from @p from (OS index; MB_NUMA_ANY: in index order), by
 * hwloc's distance matrix when the topology has one, else the local node first. Writes at
 * most @p max OS indexes to @p nodes and returns the count of nodes, or -EINVAL.
 */
int mb_topo_nodes_by_distance(const struct mb_topo *topo, int from, int *nodes, int max);

/**
 * Choose and claim a CPU for one thread of @p role near NUMA node @p near_node (OS index,
 * or MB_NUMA_ANY). Returns 0 and fills @p out; -EINVAL for a bad role or node; -ENOSPC if
 * no unshared CPU is left and the topology does not allow sharing.
 */
int mb_topo_place(struct mb_topo *topo, enum mb_topo_role role, int near_node,
		  struct mb_topo_placement *out);

/**
 * Place @p n requests in role priority order (RX first, then GPU workers, batchers, the
 * rest; within a role in the given order). Stops at the first error and returns it;
 * returns 0 when every request is placed.
 */
int mb_topo_plan(struct mb_topo *topo, const struct mb_topo_request *reqs, int n);

/** Forget every claim made by mb_topo_place(). */
void mb_topo_reset_claims(struct mb_topo *topo);

/**
 * Bind the calling thread to CPU @p cpu. Returns 0; -EINVAL for an unknown CPU; -ENOTSUP if
 * the topology is not this machine's (nothing would be bound); or -errno from hwloc.
 */
int mb_topo_bind_thread(const struct mb_topo *topo, int cpu);

/**
 * Bind the calling thread to every CPU of NUMA node @p node (a thread that may float within
 * its node). Same returns as mb_topo_bind_thread().
 */
int mb_topo_bind_thread_node(const struct mb_topo *topo, int node);

/**
 * Bind the calling thread's future memory allocations to NUMA node @p node (first-touch
 * pages land there). Same returns as mb_topo_bind_thread().
 */
int mb_topo_bind_memory(const struct mb_topo *topo, int node);

/** A one-line summary ("2 NUMA nodes, 8 cores, 16 CPUs, 4 PCI devices") into @p buf. */
void mb_topo_describe(const struct mb_topo *topo, char *buf, unsigned int len);

#endif /* MB_TOPO_H */
