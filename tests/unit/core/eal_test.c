/*
 * eal_test.c: EAL bring-up with the embedded default.
 *
 * EAL can start once per process, so the order of the cases matters: bad options first,
 * then a real start, then everything that needs it, then the shutdown.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "mb_eal.h"
#include "mb_test.h"

static char g_runtime_dir[PATH_MAX];

static void
test_bad_options(void)
{
	struct mb_eal_opts o;

	mb_eal_opts_init(&o);
	o.name = "";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	o.name = "has space";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	mb_eal_opts_init(&o);
	o.log_level = "loud";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	mb_eal_opts_init(&o);
	o.mem_mb = 0;
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	CU_ASSERT_EQUAL(mb_eal_init(NULL), -EINVAL);
	CU_ASSERT_FALSE(mb_eal_is_up());
	CU_ASSERT_STRING_EQUAL(mb_eal_file_prefix(), "");
	CU_ASSERT_EQUAL(mb_eal_fini(), -EALREADY);
}

static void
test_init_embedded_default(void)
{
	struct mb_eal_opts o;
	char expect[64];
	cpu_set_t before, after;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(before), &before), 0);
	mb_eal_opts_init(&o);
	o.name = "eal_test";
	o.mem_mb = 64;
	CU_ASSERT_EQUAL_FATAL(mb_eal_init(&o), 0);
	CU_ASSERT_TRUE(mb_eal_is_up());
	snprintf(expect, sizeof(expect), "eal_test-%ld", (long)getpid());
	CU_ASSERT_STRING_EQUAL(mb_eal_file_prefix(), expect);
	snprintf(g_runtime_dir, sizeof(g_runtime_dir), "%s", rte_eal_get_runtime_dir());
	CU_ASSERT_PTR_NOT_NULL(strstr(g_runtime_dir, expect));
	/* The main thread must not be pinned to one CPU: threads it starts inherit that. */
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(after), &after), 0);
	CU_ASSERT_EQUAL(CPU_COUNT(&after), CPU_COUNT(&before));
	CU_ASSERT_EQUAL(rte_lcore_count(), 1);
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EALREADY);
}

static void
test_no_shared_files(void)
{
	struct stat st;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/config", g_runtime_dir);
	CU_ASSERT_NOT_EQUAL(stat(path, &st), 0); /* --no-shconf: no config file */
}

static void
test_fini_removes_runtime_dir(void)
{
	struct stat st;

	CU_ASSERT_EQUAL(mb_eal_fini(), 0);
	CU_ASSERT_FALSE(mb_eal_is_up());
	CU_ASSERT_NOT_EQUAL(stat(g_runtime_dir, &st), 0);
	CU_ASSERT_EQUAL(mb_eal_fini(), -EALREADY);
}

static const struct mb_test_case cases[] = {
	{"bad options are refused before EAL starts", test_bad_options},
	{"embedded default starts with a unique prefix, main thread unpinned",
	 test_init_embedded_default},
	{"no shared-config files are written", test_no_shared_files},
	{"fini cleans up and removes the runtime dir", test_fini_removes_runtime_dir},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"eal", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("eal_test", suites);
}
