/*
 * hung_model_test.c (faults, case 7): a model that hangs.
 *
 * The daemon runs one CPU worker and the test plugin tests/plugins/flaky_plugin.c, whose
 * run() sleeps when an item's payload is "HANG" and a little-endian u32 of milliseconds
 * (UINT32_MAX: for ever), with models[].run_timeout_ms 400. A client keeps identity and
 * flaky requests flowing, sends one HANG request, and keeps going. Checked:
 * - the hung batch is answered MODEL_ERROR with the watchdog's reason within the timeout
 *   plus a bound, and flaky answers UNAVAILABLE with that reason from then on;
 * - identity keeps being served (the stuck worker was the only one: a replacement took its
 *   place), /readyz says 503 with the reason, mediabatch_watchdog_hung_total is 1;
 * - every request answered exactly once; requests_total equals the responses;
 * - a hang that ends (3 s): the stuck thread gives the parked requests back, in flight
 *   returns to 0, threads return to their count plus none left behind, and the daemon
 *   drains to exit 0; a hang that never ends: the daemon still drains to exit 0 and says
 *   that it left the thread behind.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_faults.h"
#include "mb_test.h"

#define TENANT 3
#define TIMEOUT_MS 400

/* Send one flaky request: "good" + padding, or HANG for @p hang_ms. */
static int
send_flaky(struct mb_client *c, struct mb_faults_ids *t, uint64_t id, bool hang, uint32_t hang_ms)
{
	struct mb_request_hdr h;
	uint8_t p[8] = {'g', 'o', 'o', 'd', 0, 0, 0, 0};

	if (hang) {
		memcpy(p, "HANG", 4);
		memcpy(p + 4, &hang_ms, 4);
	}
	mb_client_tensor_hdr(&h, "flaky", TENANT, id, 1, 2);
	if (mb_client_send(c, &h, p, sizeof(p)) != 0)
		return -1;
	return mb_faults_ids_sent(t, id);
}

/* A round of traffic: @p n identity and @p n flaky requests, all collected. */
static void
round_of(struct mb_client *c, struct mb_faults_ids *t, uint64_t *next, int n, double seconds)
{
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(mb_faults_send_identity(c, (*next)++, TENANT, 4), 0);
		mb_faults_ids_sent(t, *next - 1);
		CU_ASSERT_EQUAL(send_flaky(c, t, (*next)++, false, 0), 0);
	}
	CU_ASSERT_TRUE(mb_faults_collect(c, t, seconds, NULL));
}

static void
run_case(uint32_t hang_ms)
{
	double slow = mb_faults_slow();
	struct mb_faults_slack slack = mb_faults_slack_default();
	struct mb_faults_ids t;
	struct mb_faults_res res;
	struct mb_daemon d;
	struct mb_client *c;
	char yaml[1024], body[512], notes[256];
	const char *plugin = getenv("MB_PLUGIN_FLAKY");
	uint64_t next = 0, hung_id, ok_before, ok_after;
	double t0, answered_after, req, resp;
	int st;
	bool once, balanced, bounded, forever = hang_ms == UINT32_MAX;

	CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
	snprintf(yaml, sizeof(yaml),
		 "devices:\n  cuda: {mode: \"off\"}\n  cpu: {workers: 1}\n"
		 "models:\n  - name: flaky\n    plugin: %s\n    run_timeout_ms: %d\n",
		 plugin, TIMEOUT_MS);
	CU_ASSERT_EQUAL_FATAL(mb_faults_ids_init(&t), 0);
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
	c = mb_faults_client(&d, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	round_of(c, &t, &next, 20, 10 * slow); /* warm-up */
	mb_faults_res_warm(&res, d.pid);
	ok_before = t.by_status[MB_STATUS_OK];

	/* the hang, then more work queued behind it */
	hung_id = next++;
	t0 = mb_e2e_now();
	CU_ASSERT_EQUAL(send_flaky(c, &t, hung_id, true, hang_ms), 0);
	while (mb_faults_ids_status(&t, hung_id) < 0 && mb_e2e_now() - t0 < 10 * slow)
		mb_faults_pump(c, &t, 20, 64);
	answered_after = mb_e2e_now() - t0;
	st = mb_faults_ids_status(&t, hung_id);
	printf("\n    the hung request answered %s after %.2f s (run_timeout_ms %d)",
	       st >= 0 ? mb_status_name((unsigned)st) : "nothing", answered_after, TIMEOUT_MS);
	CU_ASSERT_EQUAL(st, MB_STATUS_MODEL_ERROR);
	CU_ASSERT(answered_after >= TIMEOUT_MS / 1000.0 * 0.9);
	CU_ASSERT(answered_after < TIMEOUT_MS / 1000.0 + 3 * slow);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason[MB_STATUS_MODEL_ERROR], "presumed hung"));

	/* the replacement serves identity; flaky is disabled with the reason */
	round_of(c, &t, &next, 20, 10 * slow);
	ok_after = t.by_status[MB_STATUS_OK] - ok_before;
	printf("\n    after the hang: identity OK %llu of 20, flaky UNAVAILABLE %llu: \"%s\"",
	       (unsigned long long)ok_after, (unsigned long long)t.by_status[MB_STATUS_UNAVAILABLE],
	       t.reason[MB_STATUS_UNAVAILABLE]);
	CU_ASSERT_EQUAL(ok_after, 20);
	CU_ASSERT_EQUAL(t.by_status[MB_STATUS_UNAVAILABLE], 20);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason[MB_STATUS_UNAVAILABLE], "presumed hung"));
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/readyz", body, sizeof(body)), 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "presumed hung"));
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_watchdog_hung_total"), 1);

	if (!forever) { /* the stuck run returns: its requests come back, its thread leaves */
		while (mb_e2e_now() - t0 < hang_ms / 1000.0 + 0.5)
			mb_faults_nap_ms(50);
		CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 10 * slow), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "returned after the watchdog"));
	}
	once = mb_faults_ids_check(&t, "a model that hangs");
	CU_ASSERT_TRUE(once);
	balanced = mb_faults_requests_balance(&d, 5 * slow, &req, &resp);
	CU_ASSERT_TRUE(balanced);
	mb_faults_res_sample(&res);
	/* the replacement is one more thread; the stuck one is still there, or gone */
	slack.threads += 1;
	bounded = mb_faults_res_check(&res, &slack, "daemon");
	CU_ASSERT_TRUE(bounded);
	snprintf(notes, sizeof(notes),
		 "hang %s: MODEL_ERROR after %.2f s (run_timeout_ms %d); identity OK %llu/20 "
		 "after; requests_total = responses: %s",
		 forever ? "for ever" : "3 s", answered_after, TIMEOUT_MS,
		 (unsigned long long)ok_after, balanced ? "yes" : "NO");
	mb_faults_summary(forever ? "7 model that hangs for ever" : "7 model that hangs 3 s",
			  mb_e2e_now() - t0, 1, t.n_sent, once, &res, notes);

	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30 * slow), 0);
	if (forever)
		CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "are left behind"));
	mb_faults_ids_free(&t);
}

static void
test_hang_that_ends(void)
{
	run_case(3000);
}

static void
test_hang_for_ever(void)
{
	run_case(UINT32_MAX);
}

static const struct mb_test_case cases[] = {
	{"a run() that hangs 3 s: MODEL_ERROR at run_timeout_ms, the worker replaced, the model "
	 "UNAVAILABLE; its requests given back when it returns",
	 test_hang_that_ends},
	{"a run() that never returns: the same, and the daemon still drains and exits 0",
	 test_hang_for_ever},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"faults: hung model", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("hung_model_test", suites);
}
