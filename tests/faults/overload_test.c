/*
 * overload_test.c (faults, case 1): ten times max_inflight outstanding.
 *
 * The daemon runs with max_inflight 256 (all of it this client's share); one client keeps 2560
 * identity requests outstanding for a few seconds (MB_FAULTS_SECONDS in the long form). Checked:
 * every request answered exactly once, OK or OVERLOADED, every OVERLOADED with its reason;
 * mediabatch_requests_total equals mediabatch_responses_total summed over models and
 * statuses, and both equal the requests sent; mediabatch_inflight settles to 0; the daemon's
 * RSS, fds and threads stay within the slack of their figures after a warm-up; SIGTERM then
 * exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mb_faults.h"
#include "mb_test.h"

#define MAX_INFLIGHT 256
#define WINDOW (10 * MAX_INFLIGHT)

/* Keep WINDOW outstanding for @p seconds, sampling the daemon's figures into @p res. */
static void
flood(struct mb_client *c, struct mb_faults_ids *t, uint64_t *next_id, double seconds,
      struct mb_faults_res *res)
{
	double end = mb_e2e_now() + seconds, next_sample = 0;

	while (mb_e2e_now() < end) {
		mb_faults_fill_identity(c, t, next_id, 1, 4, WINDOW);
		mb_faults_pump(c, t, 10, WINDOW);
		if (res != NULL && mb_e2e_now() >= next_sample) {
			mb_faults_res_sample(res);
			next_sample = mb_e2e_now() + 0.25;
		}
	}
}

static void
test_overload_10x(void)
{
	const double slow = mb_faults_slow(), seconds = mb_faults_seconds(3.0);
	struct mb_faults_slack slack = mb_faults_slack_default();
	struct mb_faults_ids t;
	struct mb_faults_res res;
	struct mb_daemon d;
	struct mb_client *c;
	uint64_t next_id = 0;
	double req, resp, inflight, t0, took;
	bool once, balanced, bounded;
	char notes[256];

	CU_ASSERT_EQUAL_FATAL(mb_faults_ids_init(&t), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d,
				"service:\n  max_inflight: 256\n  max_inflight_per_client: 256\n",
				NULL),
		0);
	c = mb_faults_client(&d, 4 * WINDOW);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	/* warm-up: the same traffic for half a second, all answered, then the figures */
	flood(c, &t, &next_id, 0.5, NULL);
	CU_ASSERT_TRUE(mb_faults_collect(c, &t, 10 * slow, NULL));
	mb_faults_res_warm(&res, d.pid);

	t0 = mb_e2e_now();
	flood(c, &t, &next_id, seconds, &res);
	CU_ASSERT_TRUE(mb_faults_collect(c, &t, 10 * slow, &res));
	took = mb_e2e_now() - t0;
	printf("\n    %llu requests in %.1f s, %d outstanding (10x max_inflight %d)",
	       (unsigned long long)t.n_sent, took, WINDOW, MAX_INFLIGHT);

	once = mb_faults_ids_check(&t, "10x overload");
	CU_ASSERT_TRUE(once);
	CU_ASSERT_EQUAL(mb_faults_ids_other(&t, 1u << MB_STATUS_OK | 1u << MB_STATUS_OVERLOADED,
					    "not OK or OVERLOADED"),
			0);
	CU_ASSERT(t.by_status[MB_STATUS_OK] > 0);
	CU_ASSERT(t.by_status[MB_STATUS_OVERLOADED] > 0); /* it was an overload */
	printf("\n    an OVERLOADED reason: \"%s\"", t.reason[MB_STATUS_OVERLOADED]);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason[MB_STATUS_OVERLOADED], "max_inflight"));

	inflight = mb_daemon_inflight_settled(&d, 10 * slow);
	balanced = mb_faults_requests_balance(&d, 5 * slow, &req, &resp);
	printf("\n    mediabatch_inflight %g; mediabatch_requests_total %.0f, "
	       "mediabatch_responses_total (all models and statuses) %.0f, requests sent %llu",
	       inflight, req, resp, (unsigned long long)t.n_sent);
	CU_ASSERT_EQUAL(inflight, 0);
	CU_ASSERT_TRUE(balanced);
	CU_ASSERT_EQUAL(resp, (double)t.n_sent);

	mb_faults_res_sample(&res);
	bounded = mb_faults_res_check(&res, &slack, "daemon");
	CU_ASSERT_TRUE(bounded);
	snprintf(notes, sizeof(notes),
		 "OK %llu, OVERLOADED %llu; requests_total %.0f = responses "
		 "%.0f: %s; inflight %g",
		 (unsigned long long)t.by_status[MB_STATUS_OK],
		 (unsigned long long)t.by_status[MB_STATUS_OVERLOADED], req, resp,
		 balanced ? "yes" : "NO", inflight);
	mb_faults_summary("1 overload 10x", took, 1, t.n_sent, once, &res, notes);

	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30 * slow), 0);
	mb_faults_ids_free(&t);
}

static const struct mb_test_case cases[] = {
	{"10x max_inflight outstanding: each answered once, OK or OVERLOADED with its reason; "
	 "requests = responses; in flight back to 0; RSS, fds, threads bounded",
	 test_overload_10x},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"faults: overload", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("faults_overload", suites);
}
