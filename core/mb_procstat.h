/**
 * @file
 * Process figures of the running process, read from /proc/self (Linux), for the standard
 * process_* metrics of the Prometheus client libraries (mb_metrics_add_process()); and the
 * CPUs it may use (affinity and cgroup quota), which size what runs on "auto".
 *
 * Nothing is cached: every call reads /proc afresh, so a scrape sees the values of the
 * moment. A few small reads and one directory listing: for /metrics, never the hot path.
 *
 * Threads: any thread; no state.
 */
#ifndef MB_PROCSTAT_H
#define MB_PROCSTAT_H

#include <stdint.h>

struct mb_procstat {
	double cpu_seconds;	   /**< user + system CPU time (utime + stime) */
	double start_time_seconds; /**< when the process started, unix time */
	uint64_t resident_bytes;   /**< resident set size */
	uint64_t virtual_bytes;	   /**< virtual memory size */
	int64_t open_fds;	   /**< descriptors open (not counting the one used to count) */
	int64_t max_fds;	   /**< soft RLIMIT_NOFILE; -1 when unlimited */
};

/**
 * Fill @p out (the caller's) from /proc/self/stat, /proc/stat, /proc/self/fd and
 * getrlimit(). Returns 0, or -errno when /proc cannot be read or parsed (then fields that
 * could not be read are 0).
 */
int mb_procstat_read(struct mb_procstat *out);

/** The CPUs this process may use, and where each limit comes from (mb_procstat_cpus()). */
struct mb_cpu_budget {
	uint32_t online;      /**< CPUs online (sysconf(_SC_NPROCESSORS_ONLN)) */
	uint32_t affinity;    /**< CPUs in its affinity mask (a cpuset: taskset, the static CPU
				 manager of Kubernetes, docker --cpuset-cpus) */
	double quota;	      /**< CPUs its cgroup's CPU quota allows (cgroup v2 cpu.max, v1
				 cpu.cfs_quota_us / cpu.cfs_period_us; the least over the cgroup and
				 its ancestors); 0 when there is none */
	uint32_t usable;      /**< min(affinity, quota rounded up), at least 1 */
	char quota_file[256]; /**< the file the quota came from; "" when none */
};

/**
 * Fill @p out: the CPUs this process may use. @p proc_cgroup is the process's cgroup file
 * and @p cgroup_root the cgroup file system's mount (NULL: "/proc/self/cgroup" and
 * "/sys/fs/cgroup"; tests give a tree of their own). A cgroup path that is not under the
 * mount (a container whose /proc/self/cgroup names the host's path) falls back to the
 * mount's own files. Returns 0 (a missing or unreadable cgroup means no quota).
 */
int mb_procstat_cpus(const char *proc_cgroup, const char *cgroup_root, struct mb_cpu_budget *out);

#endif /* MB_PROCSTAT_H */
