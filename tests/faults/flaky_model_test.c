/*
 * flaky_model_test.c (faults, case 6): a model failing half its batches.
 *
 * The daemon serves the test plugin tests/plugins/flaky_plugin.c (MB_PLUGIN_FLAKY; a batch
 * with an item whose payload starts with "FAIL" fails as a whole; its max_batch is 1) with a
 * circuit breaker that opens after 8 failed batches in a row and probes again after 100 ms
 * (with half the batches failing, 8 in a row come about every 500 batches). A client keeps
 * 64 requests outstanding for a few seconds (MB_FAULTS_SECONDS in the long form; longer, if
 * need be, until the breaker has opened and closed again), half of them, drawn at random, "FAIL";
 * like a client that retries later, it pauses 10 ms after an UNAVAILABLE. Checked: every request
 * answered exactly once, OK, MODEL_ERROR, or UNAVAILABLE (the breaker open), each non-OK with its
 * reason (MODEL_ERROR: the batch failed; UNAVAILABLE: the circuit breaker); no "FAIL" request is
 * ever OK; the breaker opened and closed again at least once; mediabatch_requests_total equals
 * mediabatch_responses_total; in flight back to 0; the daemon's RSS, fds and threads
 * bounded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_faults.h"
#include "mb_test.h"

#define WINDOW 64 /* under the plugin's queue_limit (256): no OVERLOADED */
#define TENANT 7
#define BACKOFF_MS 10

/* Which ids carry "FAIL" (grows with the ids). */
struct fail_set {
	uint8_t *bits;
	uint64_t cap;
};

static void
fail_mark(struct fail_set *f, uint64_t id, bool fail)
{
	if (id >= f->cap) {
		uint64_t cap = f->cap ? f->cap : 1 << 16;

		while (cap <= id)
			cap *= 2;
		f->bits = realloc(f->bits, cap);
		memset(f->bits + f->cap, 0, cap - f->cap);
		f->cap = cap;
	}
	f->bits[id] = fail;
}

struct mix {
	struct mb_client *c;
	struct mb_faults_ids *t;
	struct fail_set f;
	uint64_t next_id, rng;
	uint64_t reopened;   /* OK answers that arrived after an UNAVAILABLE: the breaker closed */
	uint64_t off_reason; /* MODEL_ERROR not naming the failed batch, UNAVAILABLE not the
				breaker */
	bool seen_unavailable;
};

/* Answers for up to @p ms (then what is queued), noting OKs after an UNAVAILABLE. */
static void
mix_pump(struct mix *m, int ms)
{
	struct mb_client_response r;

	for (int n = 0; n < WINDOW && mb_client_recv(m->c, &r, n == 0 ? ms : 0) == 0; n++) {
		const char *why = r.len > 0 ? (const char *)r.data : "";

		if ((r.hdr.status == MB_STATUS_MODEL_ERROR && strstr(why, "failed") == NULL) ||
		    (r.hdr.status == MB_STATUS_UNAVAILABLE && strstr(why, "circuit") == NULL)) {
			if (m->off_reason++ == 0)
				printf("\n    an unexpected reason for %s: \"%s\"",
				       mb_status_name(r.hdr.status), why);
		}
		if (r.hdr.status == MB_STATUS_UNAVAILABLE) {
			m->seen_unavailable = true;
		} else if (r.hdr.status == MB_STATUS_OK && m->seen_unavailable) {
			m->reopened++;
			m->seen_unavailable = false;
		}
		mb_faults_ids_answer(m->t, &r.hdr, r.data, r.len);
		mb_client_response_free(&r);
	}
}

/*
 * Keep WINDOW outstanding for @p seconds (and, up to @p at_most, until the breaker has
 * opened and closed again), payload "FAIL" or "good" half and half; like a
 * client that retries later, it pauses BACKOFF_MS after an UNAVAILABLE (the breaker open).
 */
static void
run_mix(struct mix *m, double seconds, double at_most, struct mb_faults_res *res)
{
	double t0 = mb_e2e_now(), next_sample = 0, pause_until = 0;
	uint64_t unavailable = m->t->by_status[MB_STATUS_UNAVAILABLE];

	/* longer than @p seconds only while batches run (a model that never runs would wait in
	 * vain) and the breaker has not yet closed again */
	while (mb_e2e_now() < t0 + seconds ||
	       (m->reopened == 0 && mb_e2e_now() < t0 + at_most &&
		m->t->by_status[MB_STATUS_OK] + m->t->by_status[MB_STATUS_MODEL_ERROR] > 0)) {
		while (mb_e2e_now() >= pause_until && mb_faults_ids_outstanding(m->t) < WINDOW) {
			struct mb_request_hdr h;
			bool fail = mb_test_rand(&m->rng) >> 63;

			mb_client_tensor_hdr(&h, "flaky", TENANT, m->next_id, 1, 1);
			if (mb_client_send(m->c, &h, fail ? "FAIL" : "good", 4) != 0)
				break;
			mb_faults_ids_sent(m->t, m->next_id);
			fail_mark(&m->f, m->next_id, fail);
			m->next_id++;
		}
		mix_pump(m, 5);
		if (m->t->by_status[MB_STATUS_UNAVAILABLE] > unavailable) {
			unavailable = m->t->by_status[MB_STATUS_UNAVAILABLE];
			pause_until = mb_e2e_now() + BACKOFF_MS / 1000.0;
		}
		if (res != NULL && mb_e2e_now() >= next_sample) {
			mb_faults_res_sample(res);
			next_sample = mb_e2e_now() + 0.25;
		}
	}
}

static void
test_flaky_model(void)
{
	const double slow = mb_faults_slow(), seconds = mb_faults_seconds(3.0);
	struct mb_faults_slack slack = mb_faults_slack_default();
	struct mb_faults_ids t;
	struct mb_faults_res res;
	struct mix m = {.rng = 0x9e3779b97f4a7c15ull};
	struct mb_daemon d;
	struct mb_client *c;
	uint64_t fail_ok = 0, good_error = 0, fails = 0;
	double req, resp, inflight, t0, took;
	bool once, balanced, bounded;
	char yaml[1024], notes[256];
	const char *plugin = getenv("MB_PLUGIN_FLAKY");

	CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
	snprintf(yaml, sizeof(yaml),
		 "breaker:\n"
		 "  failure_threshold: 8\n"
		 "  cooldown_ms: 100\n"
		 "models:\n"
		 "  - name: flaky\n"
		 "    plugin: %s\n",
		 plugin);
	CU_ASSERT_EQUAL_FATAL(mb_faults_ids_init(&t), 0);
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
	c = mb_faults_client(&d, 4 * WINDOW);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	m.c = c;
	m.t = &t;
	run_mix(&m, 0.5, 0, NULL); /* warm-up */
	CU_ASSERT_TRUE(mb_faults_collect(c, &t, 10 * slow, NULL));
	mb_faults_res_warm(&res, d.pid);
	t0 = mb_e2e_now();
	run_mix(&m, seconds, seconds + 10 * slow, &res);
	CU_ASSERT_TRUE(mb_faults_collect(c, &t, 10 * slow, &res));
	took = mb_e2e_now() - t0;

	for (uint64_t id = 0; id < m.next_id; id++) {
		int st = mb_faults_ids_status(&t, id);

		fails += m.f.bits[id];
		fail_ok += m.f.bits[id] && st == MB_STATUS_OK;
		good_error += !m.f.bits[id] && st == MB_STATUS_MODEL_ERROR;
	}
	printf("\n    %llu requests in %.1f s, %llu of them FAIL; the breaker opened and closed "
	       "again at least %llu times",
	       (unsigned long long)t.n_sent, took, (unsigned long long)fails,
	       (unsigned long long)m.reopened);
	once = mb_faults_ids_check(&t, "a model failing half its batches");
	CU_ASSERT_TRUE(once);
	CU_ASSERT_EQUAL(mb_faults_ids_other(&t,
					    1u << MB_STATUS_OK | 1u << MB_STATUS_MODEL_ERROR |
						    1u << MB_STATUS_UNAVAILABLE,
					    "not OK, MODEL_ERROR or UNAVAILABLE"),
			0);
	printf("\n    a MODEL_ERROR reason: \"%s\"\n    an UNAVAILABLE reason: \"%s\""
	       "\n    FAIL requests answered OK: %llu; good requests answered MODEL_ERROR: %llu",
	       t.reason[MB_STATUS_MODEL_ERROR], t.reason[MB_STATUS_UNAVAILABLE],
	       (unsigned long long)fail_ok, (unsigned long long)good_error);
	CU_ASSERT(t.by_status[MB_STATUS_OK] > 0);
	CU_ASSERT(t.by_status[MB_STATUS_MODEL_ERROR] > 0);
	CU_ASSERT(t.by_status[MB_STATUS_UNAVAILABLE] > 0); /* the breaker opened */
	CU_ASSERT(m.reopened > 0);			   /* and closed again */
	/* every MODEL_ERROR names the failed batch, every UNAVAILABLE the circuit breaker */
	CU_ASSERT_EQUAL(m.off_reason, 0);
	CU_ASSERT_EQUAL(fail_ok, 0);

	inflight = mb_daemon_inflight_settled(&d, 10 * slow);
	balanced = mb_faults_requests_balance(&d, 5 * slow, &req, &resp);
	printf("\n    mediabatch_inflight %g; mediabatch_requests_total %.0f, "
	       "mediabatch_responses_total %.0f, requests sent %llu",
	       inflight, req, resp, (unsigned long long)t.n_sent);
	CU_ASSERT_EQUAL(inflight, 0);
	CU_ASSERT_TRUE(balanced);
	CU_ASSERT_EQUAL(resp, (double)t.n_sent);

	mb_faults_res_sample(&res);
	bounded = mb_faults_res_check(&res, &slack, "daemon");
	CU_ASSERT_TRUE(bounded);
	snprintf(notes, sizeof(notes),
		 "OK %llu, MODEL_ERROR %llu, UNAVAILABLE %llu; FAIL answered OK %llu; "
		 "requests_total = responses: %s",
		 (unsigned long long)t.by_status[MB_STATUS_OK],
		 (unsigned long long)t.by_status[MB_STATUS_MODEL_ERROR],
		 (unsigned long long)t.by_status[MB_STATUS_UNAVAILABLE],
		 (unsigned long long)fail_ok, balanced ? "yes" : "NO");
	mb_faults_summary("6 model failing half its batches", took, 1, t.n_sent, once, &res, notes);

	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30 * slow), 0);
	mb_faults_ids_free(&t);
	free(m.f.bits);
}

static const struct mb_test_case cases[] = {
	{"a model failing half its batches: each request answered once, OK, MODEL_ERROR or "
	 "UNAVAILABLE with the reason; the breaker opens; requests = responses",
	 test_flaky_model},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"faults: flaky model", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("faults_flaky_model", suites);
}
