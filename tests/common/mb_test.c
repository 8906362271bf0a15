/*
 * mb_test.c: CUnit runner and helpers shared by every test program (see mb_test.h).
 */
#include "mb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_eal.h"

void
mb_test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	fflush(stdout);
	exit(MB_TEST_EXIT_SKIP);
}

void
mb_test_eal_up(const char *program)
{
	struct mb_eal_opts opts;
	int rc;

	mb_eal_opts_init(&opts);
	opts.name = program;
	opts.mem_mb = 128;
	rc = mb_eal_init(&opts);
	if (rc != 0) {
		fprintf(stderr, "%s: mb_eal_init failed: %d\n", program, rc);
		exit(99);
	}
}

void
mb_test_eal_down(void)
{
	if (mb_eal_is_up())
		mb_eal_fini();
}

uint64_t
mb_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
mb_test_fixture(const char *relative)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/tests/fixtures/%s", MB_SOURCE_ROOT, relative);
	return path;
}

const char *
mb_test_source_path(const char *relative)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", MB_SOURCE_ROOT, relative);
	return path;
}

static char g_temp[64];

static void
remove_temp(void)
{
	if (g_temp[0] != '\0')
		unlink(g_temp);
}

const char *
mb_test_write_temp(const char *text)
{
	static int registered;
	int fd;

	remove_temp();
	snprintf(g_temp, sizeof(g_temp), "/tmp/mb_test_XXXXXX");
	fd = mkstemp(g_temp);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("mb_test_write_temp");
		exit(99);
	}
	close(fd);
	if (!registered) {
		atexit(remove_temp);
		registered = 1;
	}
	return g_temp;
}

static char g_temp_dir[] = "/tmp/mb_test_dir_XXXXXX";
static bool g_temp_dir_made;

static void
remove_temp_dir(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_temp_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_temp_dir);
}

const char *
mb_test_temp_dir(void)
{
	if (g_temp_dir_made)
		return g_temp_dir;
	if (mkdtemp(g_temp_dir) == NULL) {
		perror("mb_test_temp_dir");
		exit(99);
	}
	g_temp_dir_made = true;
	atexit(remove_temp_dir);
	return g_temp_dir;
}

bool
mb_test_wait_flag(const volatile int *flag, double seconds)
{
	struct timespec start, now, nap = {.tv_sec = 0, .tv_nsec = 1000000};

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
			    (double)(now.tv_nsec - start.tv_nsec) * 1e-9 >
		    seconds)
			return false;
		nanosleep(&nap, NULL);
	}
}

int
mb_test_main(const char *program, const struct mb_test_suite *const *suites)
{
	unsigned int failures, run;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "%s: CUnit: %s\n", program, CU_get_error_msg());
		return 99;
	}
	for (int s = 0; suites[s] != NULL; s++) {
		CU_pSuite suite =
			CU_add_suite(suites[s]->name, suites[s]->init, suites[s]->cleanup);

		if (suite == NULL)
			goto framework_error;
		for (const struct mb_test_case *c = suites[s]->cases; c->name != NULL; c++)
			if (CU_add_test(suite, c->name, c->fn) == NULL)
				goto framework_error;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto framework_error;
	failures = CU_get_number_of_failures();
	run = CU_get_number_of_tests_run();
	failures += CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	printf("\n%s: %u tests run, %u failures\n", program, run, failures);
	if (run == 0) {
		fprintf(stderr, "%s: no test ran\n", program);
		return 99;
	}
	return failures > 100 ? 100 : (int)failures;

framework_error:
	fprintf(stderr, "%s: CUnit: %s\n", program, CU_get_error_msg());
	CU_cleanup_registry();
	return 99;
}
