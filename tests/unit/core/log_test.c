/*
 * log_test.c: level parsing, filtering, the module prefix, MB_LOG_ONCE, and redirection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_LOG_MODULE "logtest"
#include "mb_log.h"
#include "mb_test.h"

static char *g_buf;
static size_t g_len;
static FILE *g_stream;

static void
capture_start(void)
{
	g_stream = open_memstream(&g_buf, &g_len);
	mb_log_set_stream(g_stream);
}

/* Stop capturing; returns the captured text (freed by the next capture_stop()). */
static const char *
capture_stop(void)
{
	static char *last;

	mb_log_set_stream(NULL);
	fclose(g_stream);
	free(last);
	last = g_buf;
	return last;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_parse_level(void)
{
	CU_ASSERT_EQUAL(mb_log_parse_level("error"), RTE_LOG_ERR);
	CU_ASSERT_EQUAL(mb_log_parse_level("WARNING"), RTE_LOG_WARNING);
	CU_ASSERT_EQUAL(mb_log_parse_level("notice"), RTE_LOG_NOTICE);
	CU_ASSERT_EQUAL(mb_log_parse_level("info"), RTE_LOG_INFO);
	CU_ASSERT_EQUAL(mb_log_parse_level("debug"), RTE_LOG_DEBUG);
	CU_ASSERT_EQUAL(mb_log_parse_level("7"), 7);
	CU_ASSERT_EQUAL(mb_log_parse_level("9"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("0"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("verbose"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level(""), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level(NULL), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("4x"), -EINVAL);
}

static void
test_prefix_and_filter(void)
{
	const char *out;

	CU_ASSERT_EQUAL(mb_log_set_level(RTE_LOG_NOTICE), 0);
	CU_ASSERT_EQUAL(mb_log_get_level(), RTE_LOG_NOTICE);
	capture_start();
	MB_LOG(ERR, "disk %d is on fire", 3);
	MB_LOG(INFO, "below the level");
	MB_LOG(NOTICE, "at the level");
	out = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "mediabatch: logtest: disk 3 is on fire\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "below the level"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "at the level"));

	CU_ASSERT_EQUAL(mb_log_set_level(RTE_LOG_DEBUG), 0);
	capture_start();
	MB_LOG(DEBUG, "now visible");
	out = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "now visible"));
	CU_ASSERT_EQUAL(mb_log_set_level(0), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_set_level(99), -EINVAL);
	mb_log_set_level(RTE_LOG_NOTICE);
}

static void
test_log_once(void)
{
	const char *out;

	capture_start();
	for (int i = 0; i < 5; i++)
		MB_LOG_ONCE(WARNING, "only once %d", i);
	out = capture_stop();
	CU_ASSERT_EQUAL(count(out, "only once"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "only once 0"));
}

static void
test_long_line_truncated(void)
{
	char big[3000];
	const char *out;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	MB_LOG(ERR, "%s", big);
	out = capture_stop();
	CU_ASSERT(strlen(out) < 1100);
	CU_ASSERT(strlen(out) > 1000);
	CU_ASSERT_EQUAL(out[strlen(out) - 1], '\n');
}

static const struct mb_test_case cases[] = {
	{"level names parse", test_parse_level},
	{"module prefix and level filter", test_prefix_and_filter},
	{"MB_LOG_ONCE logs once", test_log_once},
	{"overlong lines are cut, still one line", test_long_line_truncated},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"log", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("log_test", suites);
}
