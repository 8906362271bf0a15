/*
 * breaker_test.c: closed -> open -> half-open -> closed/open, on the virtual clock; its log
 * lines name the model and the device when the options do.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_breaker.h"
#include "mb_env.h"
#include "mb_log.h"
#include "mb_test.h"

static void
make(struct mb_breaker *b, uint32_t threshold)
{
	struct mb_breaker_opts o = {
		.failure_threshold = threshold,
		.cooldown_ns = 5 * MB_NS_PER_S,
		.probe_timeout_ns = 20 * MB_NS_PER_S,
	};

	CU_ASSERT_EQUAL(mb_breaker_init(b, &o), 0);
}

static void
fail_n(struct mb_breaker *b, int n)
{
	for (int i = 0; i < n; i++) {
		enum mb_breaker_verdict v = mb_breaker_check(b);

		mb_breaker_report(b, v, false);
	}
}

static void
test_opens_after_consecutive_failures(void)
{
	struct mb_breaker b;
	struct mb_breaker_stats st;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	make(&b, 3);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_CLOSED);
	fail_n(&b, 2);
	mb_breaker_report(&b, mb_breaker_check(&b), true); /* a success resets the streak */
	fail_n(&b, 2);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_CLOSED);
	fail_n(&b, 1);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_OPEN);
	CU_ASSERT_TRUE(mb_breaker_rejecting(&b));
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT);
	mb_env_clock_advance(4 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT); /* still cooling down */
	mb_breaker_stats(&b, &st);
	CU_ASSERT_EQUAL(st.opens, 1);
	CU_ASSERT_EQUAL(st.rejected, 2);
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
}

static void
test_half_open_single_probe(void)
{
	struct mb_breaker b;
	enum mb_breaker_verdict probe;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	make(&b, 1);
	fail_n(&b, 1);
	mb_env_clock_advance(5 * MB_NS_PER_S);
	CU_ASSERT_FALSE(mb_breaker_rejecting(&b)); /* cool-down over */
	probe = mb_breaker_check(&b);
	CU_ASSERT_EQUAL(probe, MB_BREAKER_PROBE);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_HALF_OPEN);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT); /* one probe at a time */
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT);
	/* A late success from work admitted before the breaker opened does not close it. */
	mb_breaker_report(&b, MB_BREAKER_ALLOW, true);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_HALF_OPEN);
	mb_breaker_report(&b, probe, true);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_CLOSED);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_ALLOW);
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
}

static void
test_failed_probe_reopens(void)
{
	struct mb_breaker b;
	struct mb_breaker_stats st;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	make(&b, 2);
	fail_n(&b, 2);
	mb_env_clock_advance(5 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_PROBE);
	mb_breaker_report(&b, MB_BREAKER_PROBE, false);
	CU_ASSERT_EQUAL(mb_breaker_state(&b), MB_BREAKER_OPEN);
	CU_ASSERT_TRUE(mb_breaker_rejecting(&b)); /* a fresh cool-down */
	mb_env_clock_advance(4 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT);
	mb_env_clock_advance(1 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_PROBE);
	mb_breaker_stats(&b, &st);
	CU_ASSERT_EQUAL(st.opens, 2);
	CU_ASSERT_EQUAL(st.probes, 2);
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
}

static void
test_silent_probe_replaced(void)
{
	struct mb_breaker b;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	make(&b, 1);
	fail_n(&b, 1);
	mb_env_clock_advance(5 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_PROBE); /* never reports */
	mb_env_clock_advance(19 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_REJECT);
	mb_env_clock_advance(1 * MB_NS_PER_S);
	CU_ASSERT_EQUAL(mb_breaker_check(&b), MB_BREAKER_PROBE); /* replaced after 20 s */
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
}

static void
test_options_and_names(void)
{
	struct mb_breaker b;
	struct mb_breaker_opts o;

	mb_breaker_opts_init(&o);
	CU_ASSERT_EQUAL(o.failure_threshold, 5);
	o.failure_threshold = 0;
	CU_ASSERT_EQUAL(mb_breaker_init(&b, &o), -EINVAL);
	mb_breaker_opts_init(&o);
	o.cooldown_ns = 0;
	CU_ASSERT_EQUAL(mb_breaker_init(&b, &o), -EINVAL);
	CU_ASSERT_STRING_EQUAL(mb_breaker_state_name(MB_BREAKER_CLOSED), "closed");
	CU_ASSERT_STRING_EQUAL(mb_breaker_state_name(MB_BREAKER_OPEN), "open");
	CU_ASSERT_STRING_EQUAL(mb_breaker_state_name(MB_BREAKER_HALF_OPEN), "half-open");
}

/* Many threads race for the probe after the cool-down: exactly one gets it. */
struct racer {
	struct mb_breaker *b;
	atomic_int *go;
	int probes;
};

static void *
race_probe(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(r->go))
		;
	for (int i = 0; i < 1000; i++)
		if (mb_breaker_check(r->b) == MB_BREAKER_PROBE)
			r->probes++;
	return NULL;
}

static void
test_concurrent_single_probe(void)
{
	struct mb_breaker b;
	struct racer r[6];
	pthread_t th[6];
	atomic_int go = 0;
	int probes = 0;

	mb_env_clock_use_virtual(MB_NS_PER_S);
	make(&b, 1);
	fail_n(&b, 1);
	mb_env_clock_advance(5 * MB_NS_PER_S);
	for (int i = 0; i < 6; i++) {
		r[i] = (struct racer){&b, &go, 0};
		pthread_create(&th[i], NULL, race_probe, &r[i]);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		probes += r[i].probes;
	}
	CU_ASSERT_EQUAL(probes, 1);
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
}

/* Its log lines: "model M on device D: breaker ..." with names, "breaker ..." without. */
static void
test_log_lines_name_model_and_device(void)
{
	struct mb_breaker_opts o;
	struct mb_breaker b;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char model[] = "flaky", device[] = "cpu0";

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	mb_log_set_stream(f);
	mb_env_clock_use_virtual(MB_NS_PER_S);
	mb_breaker_opts_init(&o);
	CU_ASSERT_PTR_NULL(o.model);
	CU_ASSERT_PTR_NULL(o.device);
	o.failure_threshold = 2;
	o.model = model;
	o.device = device;
	CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&b, &o), 0);
	strcpy(model, "xxxxx"); /* copied: the caller's strings may go */
	strcpy(device, "xxxx");
	fail_n(&b, 2);
	mb_env_clock_advance(5 * MB_NS_PER_S);
	fail_n(&b, 1); /* the probe fails */
	mb_env_clock_advance(5 * MB_NS_PER_S);
	mb_breaker_report(&b, mb_breaker_check(&b), true);
	mb_breaker_fini(&b);
	mb_breaker_opts_init(&o); /* unnamed */
	o.failure_threshold = 1;
	CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&b, &o), 0);
	fail_n(&b, 1);
	mb_breaker_fini(&b);
	mb_env_clock_use_real();
	mb_log_set_stream(NULL);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "breaker: model flaky on device cpu0: breaker opened "
					    "after 2 consecutive failures; work is refused for "
					    "5000 ms, then one probe runs"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text,
				      "breaker: model flaky on device cpu0: breaker "
				      "re-opened: probe failed; work is refused for 5000 ms"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "breaker: model flaky on device cpu0: breaker closed: "
					    "probe succeeded"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "breaker: breaker opened after 1 consecutive failures"));
	CU_ASSERT_PTR_NULL(strstr(text, "xxx"));
	free(text);
}

static const struct mb_test_case cases[] = {
	{"opens after N consecutive failures; success resets",
	 test_opens_after_consecutive_failures},
	{"half-open: one probe; stale results ignored; success closes",
	 test_half_open_single_probe},
	{"a failed probe re-opens for a fresh cool-down", test_failed_probe_reopens},
	{"a probe that never reports is replaced", test_silent_probe_replaced},
	{"option checks and state names", test_options_and_names},
	{"6 threads racing for the probe: exactly one wins", test_concurrent_single_probe},
	{"log lines name the model and the device", test_log_lines_name_model_and_device},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"breaker", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("breaker_test", suites);
}
