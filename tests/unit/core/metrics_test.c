/*
 * metrics_test.c: exact Prometheus text, histogram buckets, label escaping, registration
 * rules, and exact totals under concurrent updates.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mb_metrics.h"
#include "mb_procstat.h"
#include "mb_test.h"

static int64_t
fortytwo(void *arg)
{
	return *(int64_t *)arg;
}

static void
test_render_exact(void)
{
	struct mb_metrics *m;
	struct mb_metric *ok, *bad, *depth;
	char *text;
	size_t len;
	int64_t units = 42;
	const char *expect = "# HELP mediabatch_responses_total Terminal responses sent.\n"
			     "# TYPE mediabatch_responses_total counter\n"
			     "mediabatch_responses_total{model=\"logmel\",status=\"OK\"} 3\n"
			     "mediabatch_responses_total{model=\"logmel\",status=\"TIMEOUT\"} 1\n"
			     "# HELP mediabatch_queue_depth Items waiting.\n"
			     "# TYPE mediabatch_queue_depth gauge\n"
			     "mediabatch_queue_depth -2\n"
			     "# HELP mediabatch_vram_units_in_use Units held.\n"
			     "# TYPE mediabatch_vram_units_in_use gauge\n"
			     "mediabatch_vram_units_in_use{device=\"cpu0\"} 42\n";

	CU_ASSERT_EQUAL_FATAL(mb_metrics_create(&m), 0);
	ok = mb_metrics_counter(m, "mediabatch_responses_total", "Terminal responses sent.",
				"model=\"logmel\",status=\"OK\"");
	bad = mb_metrics_counter(m, "mediabatch_responses_total", "Terminal responses sent.",
				 "model=\"logmel\",status=\"TIMEOUT\"");
	depth = mb_metrics_gauge(m, "mediabatch_queue_depth", "Items waiting.", NULL);
	CU_ASSERT_PTR_NOT_NULL(mb_metrics_gauge_fn(m, "mediabatch_vram_units_in_use", "Units held.",
						   "device=\"cpu0\"", fortytwo, &units));
	CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	CU_ASSERT_PTR_NOT_NULL_FATAL(depth);
	mb_metric_add(ok, 2);
	mb_metric_add(ok, 1);
	mb_metric_add(bad, 1);
	mb_metric_set(depth, 5);
	mb_metric_add(depth, -7);
	CU_ASSERT_EQUAL(mb_metric_value(ok), 3);
	CU_ASSERT_EQUAL_FATAL(mb_metrics_render(m, &text, &len), 0);
	CU_ASSERT_EQUAL(len, strlen(text));
	CU_ASSERT_STRING_EQUAL(text, expect);
	free(text);
	/* The same name and labels give the same series. */
	CU_ASSERT_PTR_EQUAL(mb_metrics_counter(m, "mediabatch_responses_total", "x",
					       "model=\"logmel\",status=\"OK\""),
			    ok);
	mb_metrics_destroy(&m);
	CU_ASSERT_PTR_NULL(m);
	mb_metrics_destroy(&m);
}

static void
test_histogram(void)
{
	struct mb_metrics *m;
	struct mb_metric *h;
	const double bounds[] = {0.001, 0.01, 0.1};
	char *text;
	size_t len;

	mb_metrics_create(&m);
	h = mb_metrics_histogram(m, "lat_seconds", "Latency.", "model=\"identity\"", bounds, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	mb_metric_observe(h, 0.0005); /* le 0.001 */
	mb_metric_observe(h, 0.001);  /* le 0.001: bounds are inclusive */
	mb_metric_observe(h, 0.05);   /* le 0.1 */
	mb_metric_observe(h, 7.0);    /* +Inf */
	CU_ASSERT_EQUAL(mb_metric_count(h), 4);
	mb_metrics_render(m, &text, &len);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE lat_seconds histogram\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "lat_seconds_bucket{model=\"identity\",le=\"0.001\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "lat_seconds_bucket{model=\"identity\",le=\"0.01\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "lat_seconds_bucket{model=\"identity\",le=\"0.1\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "lat_seconds_bucket{model=\"identity\",le=\"+Inf\"} 4\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lat_seconds_count{model=\"identity\"} 4\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lat_seconds_sum{model=\"identity\"} 7.0515\n"));
	free(text);
	mb_metrics_destroy(&m);
}

static void
test_registration_rules(void)
{
	struct mb_metrics *m;
	const double good[] = {1, 2}, unsorted[] = {2, 1}, other[] = {1, 3};

	mb_metrics_create(&m);
	CU_ASSERT_PTR_NULL(mb_metrics_counter(m, "9lives", "", NULL));
	CU_ASSERT_PTR_NULL(mb_metrics_counter(m, "has-dash", "", NULL));
	CU_ASSERT_PTR_NULL(mb_metrics_counter(m, NULL, "", NULL));
	CU_ASSERT_PTR_NOT_NULL(mb_metrics_counter(m, "x_total", "", NULL));
	CU_ASSERT_PTR_NULL(mb_metrics_gauge(m, "x_total", "", "a=\"b\"")); /* type clash */
	CU_ASSERT_PTR_NULL(mb_metrics_histogram(m, "h", "", NULL, unsorted, 2));
	CU_ASSERT_PTR_NULL(mb_metrics_histogram(m, "h", "", NULL, good, 0));
	CU_ASSERT_PTR_NOT_NULL(mb_metrics_histogram(m, "h", "", NULL, good, 2));
	CU_ASSERT_PTR_NULL(mb_metrics_histogram(m, "h", "", "k=\"v\"", other, 2));
	mb_metrics_destroy(&m);
}

static void
test_labels_escaping(void)
{
	char buf[128];

	CU_ASSERT_STRING_EQUAL(
		mb_metrics_labels(buf, sizeof(buf), "model", "logmel", "status", "OK", NULL),
		"model=\"logmel\",status=\"OK\"");
	CU_ASSERT_STRING_EQUAL(mb_metrics_labels(buf, sizeof(buf), "reason", "a\"b\\c\nd", NULL),
			       "reason=\"a\\\"b\\\\c\\nd\"");
	CU_ASSERT_STRING_EQUAL(mb_metrics_labels(buf, sizeof(buf), NULL), "");
	mb_metrics_labels(buf, 12, "model", "a-very-long-name", NULL);
	CU_ASSERT(strlen(buf) < 12);
}

struct adder {
	struct mb_metric *c, *h;
};

static void *
add_many(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 100000; i++) {
		mb_metric_add(a->c, 1);
		mb_metric_observe(a->h, 0.5);
	}
	return NULL;
}

static void
test_concurrent_updates(void)
{
	struct mb_metrics *m;
	struct adder a;
	pthread_t th[4];
	const double b[] = {1.0};
	char *text;
	size_t len;

	mb_metrics_create(&m);
	a.c = mb_metrics_counter(m, "c_total", "", NULL);
	a.h = mb_metrics_histogram(m, "h_seconds", "", NULL, b, 1);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, add_many, &a);
	/* Render while they run: must not crash or tear. */
	for (int i = 0; i < 20; i++) {
		mb_metrics_render(m, &text, &len);
		free(text);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(mb_metric_value(a.c), 400000);
	CU_ASSERT_EQUAL(mb_metric_count(a.h), 400000);
	mb_metrics_render(m, &text, &len);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "h_seconds_sum 200000\n"));
	free(text);
	mb_metrics_destroy(&m);
}

static double
dval(void *arg)
{
	return *(double *)arg;
}

/* The value of an unlabelled series in @p text, or NAN. */
static double
series_value(const char *text, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	return p == NULL ? NAN : strtod(p + strlen(key), NULL);
}

static void
test_double_series(void)
{
	struct mb_metrics *m;
	double half = 1.5, nan = NAN, big = 1712345678.25;
	char *text;
	size_t len;

	mb_metrics_create(&m);
	CU_ASSERT_PTR_NOT_NULL(
		mb_metrics_gauge_dfn(m, "g_seconds", "A double.", NULL, dval, &half));
	CU_ASSERT_PTR_NOT_NULL(
		mb_metrics_counter_dfn(m, "c_seconds_total", "", "a=\"b\"", dval, &big));
	CU_ASSERT_PTR_NOT_NULL(mb_metrics_gauge_dfn(m, "n_value", "", NULL, dval, &nan));
	/* a double series is still of its family's type */
	CU_ASSERT_PTR_NULL(mb_metrics_counter(m, "g_seconds", "", NULL));
	mb_metrics_render(m, &text, &len);
	CU_ASSERT_STRING_EQUAL(text, "# HELP g_seconds A double.\n# TYPE g_seconds gauge\n"
				     "g_seconds 1.5\n"
				     "# HELP c_seconds_total \n# TYPE c_seconds_total counter\n"
				     "c_seconds_total{a=\"b\"} 1712345678.25\n"
				     "# HELP n_value \n# TYPE n_value gauge\nn_value NaN\n");
	free(text);
	mb_metrics_destroy(&m);
}

static void
test_process_figures(void)
{
	struct mb_metrics *m;
	struct mb_procstat a, b;
	char *text;
	size_t len;
	int fd;
	double now = (double)time(NULL);
	static const char *const names[] = {
		"process_cpu_seconds_total",
		"process_start_time_seconds",
		"process_resident_memory_bytes",
		"process_virtual_memory_bytes",
		"process_open_fds",
		"process_max_fds",
	};

	CU_ASSERT_EQUAL_FATAL(mb_procstat_read(&a), 0);
	CU_ASSERT(a.resident_bytes > 0);
	CU_ASSERT(a.virtual_bytes >= a.resident_bytes);
	CU_ASSERT(a.open_fds >= 3); /* stdin, stdout, stderr at least */
	CU_ASSERT(a.max_fds == -1 || a.max_fds >= a.open_fds);
	CU_ASSERT(a.cpu_seconds >= 0);
	/* started in the last day, not in the future (a tick of rounding allowed) */
	CU_ASSERT(a.start_time_seconds > now - 86400 && a.start_time_seconds <= now + 1);
	/* one more descriptor is seen as one more */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(mb_procstat_read(&b), 0);
	CU_ASSERT_EQUAL(b.open_fds, a.open_fds + 1);
	CU_ASSERT(b.cpu_seconds >= a.cpu_seconds);
	CU_ASSERT(fabs(b.start_time_seconds - a.start_time_seconds) < 1e-6);
	close(fd);

	mb_metrics_create(&m);
	CU_ASSERT_EQUAL(mb_metrics_add_process(m), 0);
	CU_ASSERT_EQUAL(mb_metrics_add_process(m), 0); /* twice: the same series */
	mb_metrics_render(m, &text, &len);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE process_start_time_seconds gauge\n"));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		double v = series_value(text, names[i]);

		CU_ASSERT(!isnan(v));
		CU_ASSERT(v >= 0);
	}
	CU_ASSERT(series_value(text, "process_resident_memory_bytes") > 0);
	CU_ASSERT(fabs(series_value(text, "process_start_time_seconds") - a.start_time_seconds) <
		  0.01);
	CU_ASSERT(series_value(text, "process_open_fds") >= 3);
	free(text);
	mb_metrics_destroy(&m);
}

static const struct mb_test_case cases[] = {
	{"Prometheus text, exactly", test_render_exact},
	{"histogram buckets are cumulative and inclusive", test_histogram},
	{"names, type clashes and bounds are checked", test_registration_rules},
	{"label values are escaped", test_labels_escaping},
	{"4 threads: exact totals, rendering meanwhile", test_concurrent_updates},
	{"double-valued series: shortest decimal, NaN", test_double_series},
	{"process_* figures from /proc/self", test_process_figures},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"metrics", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("metrics_test", suites);
}
