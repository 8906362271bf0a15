/*
 * procstat_test.c: the CPUs a process may use (mb_procstat_cpus()): its affinity, capped by
 * the CPU quota of its cgroup and every ancestor, on cgroup trees written here (v2 and v1,
 * nested limits, no limit, a path that is not mounted), and on this process as it runs.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_procstat.h"
#include "mb_test.h"

static char g_root[64];

/* Write @p body to root/@p rel, making its directories. */
static void
put(const char *rel, const char *body)
{
	char path[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g_root, rel);
	for (p = path + strlen(g_root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(body, f);
	fclose(f);
}

static void
budget(const char *proc, const char *mount, struct mb_cpu_budget *b)
{
	char p[512], m[512];

	snprintf(p, sizeof(p), "%s/%s", g_root, proc);
	snprintf(m, sizeof(m), "%s/%s", g_root, mount);
	CU_ASSERT_EQUAL(mb_procstat_cpus(p, m, b), 0);
}

static uint32_t
affinity(void)
{
	cpu_set_t set;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(set), &set), 0);
	return (uint32_t)CPU_COUNT(&set);
}

static int
init(void)
{
	snprintf(g_root, sizeof(g_root), "/tmp/mb_cg_XXXXXX");
	return mkdtemp(g_root) == NULL ? -1 : 0;
}

static int
fini(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_v2_nested(void)
{
	struct mb_cpu_budget b;

	/* the pod's cgroup allows 1.5 CPUs, its container's says nothing (max): 1.5 wins */
	put("v2/proc", "0::/kubepods/pod1/ctr\n");
	put("v2/fs/kubepods/cpu.max", "max 100000\n");
	put("v2/fs/kubepods/pod1/cpu.max", "150000 100000\n");
	put("v2/fs/kubepods/pod1/ctr/cpu.max", "max 100000\n");
	budget("v2/proc", "v2/fs", &b);
	CU_ASSERT_DOUBLE_EQUAL(b.quota, 1.5, 1e-9);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.quota_file, "v2/fs/kubepods/pod1/cpu.max"));
	CU_ASSERT_EQUAL(b.affinity, affinity());
	CU_ASSERT_EQUAL(b.usable, affinity() < 2 ? affinity() : 2); /* 1.5 rounds up */
	/* the container's own limit is smaller still */
	put("v2/fs/kubepods/pod1/ctr/cpu.max", "50000 100000\n");
	budget("v2/proc", "v2/fs", &b);
	CU_ASSERT_DOUBLE_EQUAL(b.quota, 0.5, 1e-9);
	CU_ASSERT_EQUAL(b.usable, 1);
	printf("\n    v2: quota %.2f CPUs from %s, usable %u", b.quota, b.quota_file, b.usable);
}

static void
test_v2_none_and_unmounted(void)
{
	struct mb_cpu_budget b;

	put("none/proc", "0::/a/b\n");
	put("none/fs/a/b/cpu.max", "max 100000\n");
	budget("none/proc", "none/fs", &b);
	CU_ASSERT_EQUAL(b.quota, 0);
	CU_ASSERT_STRING_EQUAL(b.quota_file, "");
	CU_ASSERT_EQUAL(b.usable, affinity());
	/* a container: /proc/self/cgroup names the host's path, the mount is its own cgroup */
	put("ctr/proc", "0::/system.slice/docker-abc.scope\n");
	put("ctr/fs/cpu.max", "200000 100000\n");
	budget("ctr/proc", "ctr/fs", &b);
	CU_ASSERT_DOUBLE_EQUAL(b.quota, 2.0, 1e-9);
	CU_ASSERT_EQUAL(b.usable, affinity() < 2 ? affinity() : 2);
	/* no cgroup file at all: no quota */
	budget("nothing/proc", "nothing/fs", &b);
	CU_ASSERT_EQUAL(b.quota, 0);
	CU_ASSERT_EQUAL(b.usable, affinity());
}

static void
test_v1(void)
{
	struct mb_cpu_budget b;

	put("v1/proc", "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n");
	put("v1/fs/cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
	put("v1/fs/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
	put("v1/fs/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "100000\n");
	put("v1/fs/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
	budget("v1/proc", "v1/fs", &b);
	CU_ASSERT_DOUBLE_EQUAL(b.quota, 1.0, 1e-9);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.quota_file, "docker/x/cpu.cfs_quota_us"));
	CU_ASSERT_EQUAL(b.usable, 1);
	/* -1: no quota */
	put("v1/fs/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "-1\n");
	budget("v1/proc", "v1/fs", &b);
	CU_ASSERT_EQUAL(b.quota, 0);
	CU_ASSERT_EQUAL(b.usable, affinity());
}

static void
test_this_process(void)
{
	struct mb_cpu_budget b;
	cpu_set_t one, saved;

	CU_ASSERT_EQUAL(mb_procstat_cpus(NULL, NULL, &b), 0);
	printf("\n    this process: %u online, %u in its affinity, quota %.2f (%s), usable %u",
	       b.online, b.affinity, b.quota, b.quota_file[0] ? b.quota_file : "none", b.usable);
	CU_ASSERT(b.usable >= 1 && b.usable <= b.affinity && b.affinity <= b.online);
	/* pinned to one CPU (as taskset -c would): one usable */
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(saved), &saved), 0);
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &saved)) {
			CPU_SET(c, &one);
			break;
		}
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(one), &one), 0);
	CU_ASSERT_EQUAL(mb_procstat_cpus(NULL, NULL, &b), 0);
	CU_ASSERT_EQUAL(b.affinity, 1);
	CU_ASSERT_EQUAL(b.usable, 1);
	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

static const struct mb_test_case cases[] = {
	{"cgroup v2: the least quota of the cgroup and its ancestors", test_v2_nested},
	{"cgroup v2: no quota; a path not mounted falls back to the mount",
	 test_v2_none_and_unmounted},
	{"cgroup v1: cfs quota over period; -1 is none", test_v1},
	{"this process: affinity, and one CPU when pinned to one", test_this_process},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"procstat cpus", init, fini, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("procstat_test", suites);
}
