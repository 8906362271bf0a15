/**
 * @file
 * Process figures of the running process, read from /proc/self (Linux), for the standard
 * process_* metrics of the Prometheus client libraries (mb_metrics_add_process()).
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

#endif /* MB_PROCSTAT_H */
