/*
 * procstat.c: the process figures of /proc/self, and their registration as the standard
 * process_* metrics of the Prometheus client libraries (the names and units the Go and
 * Python clients use, so stock dashboards and alerts work unchanged).
 *
 * /proc/self/stat gives the CPU time (fields 14 and 15, in clock ticks), the start time
 * (field 22, ticks after boot, to which /proc/stat's btime is added), the virtual size
 * (field 23, bytes) and the resident set (field 24, pages). Open descriptors are the
 * entries of /proc/self/fd less the listing's own; the limit is RLIMIT_NOFILE's soft value.
 *
 * The metric callbacks read afresh at every scrape (the registry calls them under its
 * mutex, from the HTTP thread); a value that cannot be read is rendered NaN, not 0.
 * Threads: any; no state of its own.
 */
#include "mb_procstat.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mb_metrics.h"

/* Fields 3.. of /proc/self/stat (after the command name, which may hold spaces and
 * parentheses: it ends at the last ')'). */
struct stat_fields {
	unsigned long long utime, stime, starttime, vsize;
	long long rss;
};

static int
read_self_stat(struct stat_fields *f)
{
	char buf[1024], *p;
	size_t n;
	FILE *fp = fopen("/proc/self/stat", "re");

	if (fp == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EINVAL;
	/* state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	 * utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue
	 * starttime(22) vsize(23) rss(24) */
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
		   "%*d %llu %llu %lld",
		   &f->utime, &f->stime, &f->starttime, &f->vsize, &f->rss) != 5)
		return -EINVAL;
	return 0;
}

/* Boot time, unix seconds: the btime line of /proc/stat. */
static int
read_boot_time(unsigned long long *btime)
{
	char line[256];
	int rc = -EINVAL;
	FILE *fp = fopen("/proc/stat", "re");

	if (fp == NULL)
		return -errno;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "btime %llu", btime) == 1) {
			rc = 0;
			break;
		}
	}
	fclose(fp);
	return rc;
}

static int64_t
count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int64_t n = 0;
	int own;

	if (d == NULL)
		return -errno;
	own = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (atoi(e->d_name) == own)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static int64_t
max_fds(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	return rl.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_cur;
}

int
mb_procstat_read(struct mb_procstat *out)
{
	struct stat_fields f;
	unsigned long long btime;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int rc;

	memset(out, 0, sizeof(*out));
	if (tck <= 0 || page <= 0)
		return -EINVAL;
	rc = read_self_stat(&f);
	if (rc < 0)
		return rc;
	out->cpu_seconds = (double)(f.utime + f.stime) / (double)tck;
	out->virtual_bytes = f.vsize;
	out->resident_bytes = f.rss > 0 ? (uint64_t)f.rss * (uint64_t)page : 0;
	rc = read_boot_time(&btime);
	if (rc < 0)
		return rc;
	out->start_time_seconds = (double)btime + (double)f.starttime / (double)tck;
	out->open_fds = count_open_fds();
	if (out->open_fds < 0) {
		rc = (int)out->open_fds;
		out->open_fds = 0;
		return rc;
	}
	out->max_fds = max_fds();
	return 0;
}

/* ---- the metrics: one read per callback (each scrape calls each once) ---- */

static double
cpu_seconds(void *arg)
{
	struct stat_fields f;
	long tck = sysconf(_SC_CLK_TCK);

	(void)arg;
	if (tck <= 0 || read_self_stat(&f) < 0)
		return NAN;
	return (double)(f.utime + f.stime) / (double)tck;
}

static double
start_time(void *arg)
{
	struct mb_procstat ps;

	(void)arg;
	if (mb_procstat_read(&ps) < 0 || ps.start_time_seconds <= 0)
		return NAN;
	return ps.start_time_seconds;
}

static double
resident_bytes(void *arg)
{
	struct stat_fields f;
	long page = sysconf(_SC_PAGESIZE);

	(void)arg;
	if (page <= 0 || read_self_stat(&f) < 0)
		return NAN;
	return (double)(f.rss > 0 ? f.rss : 0) * (double)page;
}

static double
virtual_bytes(void *arg)
{
	struct stat_fields f;

	(void)arg;
	if (read_self_stat(&f) < 0)
		return NAN;
	return (double)f.vsize;
}

static double
open_fds(void *arg)
{
	int64_t n = count_open_fds();

	(void)arg;
	return n < 0 ? NAN : (double)n;
}

static double
max_fds_value(void *arg)
{
	int64_t n = max_fds();

	(void)arg;
	if (n == -1)
		return INFINITY; /* unlimited: what the Go client reports too */
	return n < 0 ? NAN : (double)n;
}

int
mb_metrics_add_process(struct mb_metrics *m)
{
	if (mb_metrics_counter_dfn(m, "process_cpu_seconds_total",
				   "Total user and system CPU time spent in seconds.", NULL,
				   cpu_seconds, NULL) == NULL ||
	    mb_metrics_gauge_dfn(m, "process_start_time_seconds",
				 "Start time of the process since unix epoch in seconds.", NULL,
				 start_time, NULL) == NULL ||
	    mb_metrics_gauge_dfn(m, "process_resident_memory_bytes",
				 "Resident memory size in bytes.", NULL, resident_bytes,
				 NULL) == NULL ||
	    mb_metrics_gauge_dfn(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
				 NULL, virtual_bytes, NULL) == NULL ||
	    mb_metrics_gauge_dfn(m, "process_open_fds", "Number of open file descriptors.", NULL,
				 open_fds, NULL) == NULL ||
	    mb_metrics_gauge_dfn(m, "process_max_fds", "Maximum number of open file descriptors.",
				 NULL, max_fds_value, NULL) == NULL)
		return -ENOMEM;
	return 0;
}

/* ---- the CPUs this process may use ---- */

/* @p src into @p dst (@p len bytes), truncated */
static void
put_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
opendir_ok(const char *path)
{
	DIR *d = opendir(path);

	if (d == NULL)
		return false;
	closedir(d);
	return true;
}

/* The first line of @p path into @p buf; 0, or -1 when it cannot be read. */
static int
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fgets(buf, (int)len, f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* The quota in @p dir, in CPUs: cgroup v2's cpu.max ("max 100000" or "QUOTA PERIOD"), or
 * v1's cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us. 0 when there is none. */
static double
quota_in(const char *dir, char *file, size_t file_len)
{
	char path[PATH_MAX], line[128], *end;
	long long q, per;

	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	if (read_line(path, line, sizeof(line)) == 0) {
		if (strncmp(line, "max", 3) == 0)
			return 0;
		q = strtoll(line, &end, 10);
		per = strtoll(end, NULL, 10);
		if (q <= 0 || per <= 0)
			return 0;
		put_str(file, file_len, path);
		return (double)q / (double)per;
	}
	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
	if (read_line(path, line, sizeof(line)) != 0 || (q = strtoll(line, NULL, 10)) <= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
	if (read_line(path, line, sizeof(line)) != 0 || (per = strtoll(line, NULL, 10)) <= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
	put_str(file, file_len, path);
	return (double)q / (double)per;
}

/*
 * The least quota of the cgroup at @p base + @p rel and its ancestors up to @p base. The
 * directory must exist; returns -1 when it does not (the caller falls back to @p base).
 */
static double
least_quota(const char *base, const char *rel, char *file, size_t file_len)
{
	char dir[PATH_MAX], f[256];
	double least = 0, q;
	size_t blen;

	snprintf(dir, sizeof(dir), "%s%s%s", base, rel[0] == '/' ? "" : "/", rel);
	blen = strlen(base);
	while (strlen(dir) > blen && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0'; /* "root/" for the path "/" */
	if (!opendir_ok(dir))
		return -1;
	for (;;) {
		char *slash;

		f[0] = '\0';
		q = quota_in(dir, f, sizeof(f));
		if (q > 0 && (least == 0 || q < least)) {
			least = q;
			put_str(file, file_len, f);
		}
		if (strlen(dir) <= blen)
			break;
		slash = strrchr(dir, '/');
		if (slash == NULL || (size_t)(slash - dir) < blen)
			break;
		*slash = '\0';
	}
	return least;
}

int
mb_procstat_cpus(const char *proc_cgroup, const char *cgroup_root, struct mb_cpu_budget *out)
{
	char line[1024], base[PATH_MAX];
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	double q;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (proc_cgroup == NULL)
		proc_cgroup = "/proc/self/cgroup";
	if (cgroup_root == NULL)
		cgroup_root = "/sys/fs/cgroup";
	out->online = n > 0 ? (uint32_t)n : 1;
	out->affinity = out->online;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		out->affinity = (uint32_t)CPU_COUNT(&set);

	/* "0::/path" (v2), or "N:cpu,cpuacct:/path" (v1: the hierarchy with the cpu controller) */
	f = fopen(proc_cgroup, "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *ctl = strchr(line, ':'), *path;

		line[strcspn(line, "\n")] = '\0';
		if (ctl == NULL || (path = strchr(ctl + 1, ':')) == NULL)
			continue;
		*path++ = '\0';
		ctl++;
		if (ctl[0] == '\0') { /* v2 */
			snprintf(base, sizeof(base), "%s", cgroup_root);
		} else {
			char list[256], *tok, *save = NULL;
			bool cpu = false;

			snprintf(list, sizeof(list), "%s", ctl);
			for (tok = strtok_r(list, ",", &save); tok != NULL;
			     tok = strtok_r(NULL, ",", &save))
				cpu |= strcmp(tok, "cpu") == 0;
			if (!cpu)
				continue;
			snprintf(base, sizeof(base), "%s/%s", cgroup_root, ctl);
			if (opendir_ok(base) == false)
				snprintf(base, sizeof(base), "%s/cpu", cgroup_root);
		}
		q = least_quota(base, path, out->quota_file, sizeof(out->quota_file));
		if (q < 0) /* the host's path, not mounted here: the mount is our cgroup */
			q = least_quota(base, "/", out->quota_file, sizeof(out->quota_file));
		if (q > 0 && (out->quota == 0 || q < out->quota))
			out->quota = q;
	}
	if (f != NULL)
		fclose(f);
	out->usable = out->affinity;
	if (out->quota > 0 && ceil(out->quota - 1e-9) < out->usable)
		out->usable = (uint32_t)ceil(out->quota - 1e-9);
	if (out->usable == 0)
		out->usable = 1;
	return 0;
}
