/*
 * shutdown_test.c (faults, cases 2 and 3): SIGTERM while requests are on their way.
 *
 * Case 2, SIGTERM under a flood: a client keeps 1500 identity requests outstanding; SIGTERM
 * lands mid-flood. The client behaves well: it stops sending new work at its first
 * UNAVAILABLE, then reads until every request it sent is answered (a bounded wait fails the
 * case). Every request sent is answered exactly once, OK or UNAVAILABLE, and the daemon
 * exits 0. Repeated 10 times (3 under a sanitizer; in the long form, for MB_FAULTS_SECONDS).
 *
 * Case 3, SIGTERM with messages queued in the socket: a client gets one answer (the
 * connection is up), the daemon is stopped (SIGSTOP), the client sends 500 requests (they
 * sit in the daemon's socket receive queue: the test waits until the kernel shows them
 * there), then SIGTERM and SIGCONT. Every one of the 500 is answered exactly once, OK or
 * UNAVAILABLE, and the daemon exits 0. Repeated 20 times (6 under a sanitizer, where a run
 * costs 6 s; in the long form, for MB_FAULTS_SECONDS).
 *
 * Both losses are races, so each run catches them only sometimes: the daemon before the
 * drain fix (2ad76c9) lost requests in 4 of 15 runs of case 2 and in 5 of 40 of case 3 on
 * a 2-core machine, so 10 and 20 runs catch it in about 96% and 93% of the suite's runs.
 *
 * Both check the daemon's RSS, fds and threads: warm-up figures before the signal, samples
 * until it exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_faults.h"
#include "mb_test.h"

#define FLOOD_WINDOW 1500
#define QUEUED 500

/* a drain that waits for its work however slow the build: nothing is cut short */
static const char g_yaml[] = "service:\n  drain_timeout_ms: 120000\n";

struct tally {
	int runs, failed_runs;
	uint64_t requests, ok, unavailable;
	double seconds;
	bool once;
	struct mb_faults_res worst; /* the run whose RSS grew most */
};

static void
tally_run(struct tally *a, const struct mb_faults_ids *t, bool run_ok,
	  const struct mb_faults_res *res)
{
	a->runs++;
	a->failed_runs += !run_ok;
	a->requests += t->n_sent;
	a->ok += t->by_status[MB_STATUS_OK];
	a->unavailable += t->by_status[MB_STATUS_UNAVAILABLE];
	if (res->have_warm && res->have_end &&
	    (!a->worst.have_end ||
	     res->peak.rss_kib - res->warm.rss_kib > a->worst.peak.rss_kib - a->worst.warm.rss_kib))
		a->worst = *res;
}

/* Checks shared by both cases; true when all held. */
static bool
check_run(const char *what, struct mb_faults_ids *t, int exit_status,
	  const struct mb_faults_res *res)
{
	struct mb_faults_slack slack = mb_faults_slack_default();
	bool once = mb_faults_ids_check(t, what);
	uint64_t other =
		mb_faults_ids_other(t, 1u << MB_STATUS_OK | 1u << MB_STATUS_UNAVAILABLE, what);
	bool bounded = mb_faults_res_check(res, &slack, "daemon");

	if (t->by_status[MB_STATUS_UNAVAILABLE] > 0)
		printf("\n    an UNAVAILABLE reason: \"%s\"", t->reason[MB_STATUS_UNAVAILABLE]);
	printf("\n    exit status %d", exit_status);
	CU_ASSERT_TRUE(once);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT_TRUE(bounded);
	CU_ASSERT_EQUAL(exit_status, 0);
	return once && other == 0 && bounded && exit_status == 0;
}

/* ---- case 2: SIGTERM under a flood ---- */

static bool
sigterm_under_flood(int run, struct tally *a)
{
	const double slow = mb_faults_slow();
	struct mb_faults_ids t;
	struct mb_faults_res res;
	struct mb_daemon d;
	struct mb_client *c;
	uint64_t next_id = 0, at_signal, sent_after = 0, sent_before;
	double t0, started, signalled, answered, end, next_sample = 0, stop_sending_by, received;
	int exit_status;
	bool all, ok;
	char what[64];

	t0 = mb_e2e_now();
	if (mb_faults_ids_init(&t) != 0 || mb_daemon_start(&d, g_yaml, NULL) != 0) {
		CU_FAIL("start");
		return false;
	}
	started = mb_e2e_now();
	c = mb_faults_client(&d, 4 * FLOOD_WINDOW);
	/* warm-up: half a second of the flood, then the figures; the flood goes on */
	end = t0 + 0.5;
	while (mb_e2e_now() < end) {
		mb_faults_fill_identity(c, &t, &next_id, 2, 4, FLOOD_WINDOW);
		mb_faults_pump(c, &t, 10, FLOOD_WINDOW);
	}
	mb_faults_res_warm(&res, d.pid);
	end = mb_e2e_now() + 1.0;
	while (mb_e2e_now() < end) {
		mb_faults_fill_identity(c, &t, &next_id, 2, 4, FLOOD_WINDOW);
		mb_faults_pump(c, &t, 10, FLOOD_WINDOW);
		if (mb_e2e_now() >= next_sample) {
			mb_faults_res_sample(&res);
			next_sample = mb_e2e_now() + 0.25;
		}
	}
	/* mid-flood: the window is full of requests on their way */
	received = mb_faults_metric_sum(&d, "mediabatch_requests_total");
	sent_before = t.n_sent;
	mb_faults_fill_identity(c, &t, &next_id, 2, 4, FLOOD_WINDOW);
	at_signal = mb_faults_ids_outstanding(&t);
	mb_daemon_signal(&d, SIGTERM);
	signalled = mb_e2e_now();
	/* a well-behaved client: new work until its first UNAVAILABLE (bounded; and the test,
	 * unlike a client, can see the daemon exit without one) ... */
	stop_sending_by = mb_e2e_now() + 10 * slow;
	while (t.by_status[MB_STATUS_UNAVAILABLE] == 0 && mb_e2e_now() < stop_sending_by &&
	       strchr("ZX?", mb_faults_proc_state(d.pid)) == NULL) {
		sent_after +=
			(uint64_t)mb_faults_fill_identity(c, &t, &next_id, 2, 4, FLOOD_WINDOW);
		mb_faults_pump(c, &t, 10, FLOOD_WINDOW);
		if (mb_e2e_now() >= next_sample) {
			mb_faults_res_sample(&res);
			next_sample = mb_e2e_now() + 0.25;
		}
	}
	/* ... then it reads until everything it sent is answered (bounded) */
	all = mb_faults_collect_from(c, &t, 10 * slow, &res, &d, 1 * slow);
	answered = mb_e2e_now();
	exit_status = mb_daemon_wait(&d, 30 * slow);
	snprintf(what, sizeof(what), "SIGTERM under a flood, run %d", run);
	printf("\n    run %d: %llu outstanding at SIGTERM (the daemon had received %.0f of the "
	       "%llu sent just before), %llu sent after it until the first "
	       "UNAVAILABLE%s; all answered: %s; start %.1f s, SIGTERM to the last answer %.2f s, "
	       "to the exit %.2f s",
	       run, (unsigned long long)at_signal, received, (unsigned long long)sent_before,
	       (unsigned long long)sent_after,
	       t.by_status[MB_STATUS_UNAVAILABLE] ? "" : " (none came)", all ? "yes" : "no",
	       started - t0, answered - signalled, mb_e2e_now() - signalled);
	ok = check_run(what, &t, exit_status, &res);
	if (!ok)
		printf("\n    the daemon's log (its end):\n%s", mb_faults_log_tail(&d, 3000));
	tally_run(a, &t, ok, &res);
	mb_client_close(&c);
	mb_faults_ids_free(&t);
	return ok;
}

static void
test_sigterm_under_flood(void)
{
	const int repeat = mb_faults_repeat(MB_FAULTS_SANITIZER ? 3 : 10);
	const double budget = mb_faults_long() ? mb_faults_seconds(0) : 0;
	struct tally a = {0};
	double t0 = mb_e2e_now();
	char notes[256];

	for (int run = 1; run <= repeat || mb_e2e_now() - t0 < budget; run++)
		sigterm_under_flood(run, &a);
	a.seconds = mb_e2e_now() - t0;
	snprintf(notes, sizeof(notes), "%d runs, %d failed; OK %llu, UNAVAILABLE %llu", a.runs,
		 a.failed_runs, (unsigned long long)a.ok, (unsigned long long)a.unavailable);
	mb_faults_summary("2 SIGTERM under a flood", a.seconds, a.runs, a.requests,
			  a.failed_runs == 0, &a.worst, notes);
}

/* ---- case 3: SIGTERM with messages queued in the socket ---- */

/* Bytes waiting in the receive queues of established TCP connections to 127.0.0.1:@p port
 * (the daemon's side of its clients' connections), from /proc/net/tcp. */
static long
rx_queued(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	long total = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned int laddr, lport, raddr, rport, st;
		unsigned long txq, rxq;

		if (sscanf(line, " %*d: %x:%x %x:%x %x %lx:%lx", &laddr, &lport, &raddr, &rport,
			   &st, &txq, &rxq) == 7 &&
		    st == 1 /* ESTABLISHED */ && (int)lport == port)
			total += (long)rxq;
	}
	fclose(f);
	return total;
}

static bool
queued_in_socket(int run, struct tally *a)
{
	const double slow = mb_faults_slow();
	struct mb_faults_ids t;
	struct mb_faults_res res;
	struct mb_daemon d;
	struct mb_client *c;
	uint64_t next_id = 0;
	long queued = 0, last = -1;
	double deadline, t0 = mb_e2e_now(), started, signalled, answered;
	int exit_status;
	bool all, ok, stopped = false;
	char what[64];

	if (mb_faults_ids_init(&t) != 0 || mb_daemon_start(&d, g_yaml, NULL) != 0) {
		CU_FAIL("start");
		return false;
	}
	started = mb_e2e_now();
	c = mb_faults_client(&d, 4 * QUEUED);
	/* one request answered: the connection is up */
	mb_faults_fill_identity(c, &t, &next_id, 3, 4, 1);
	CU_ASSERT_TRUE(mb_faults_collect(c, &t, 10 * slow, NULL));
	mb_faults_res_warm(&res, d.pid);

	mb_daemon_signal(&d, SIGSTOP);
	for (int i = 0; i < 500 && !(stopped = mb_faults_proc_state(d.pid) == 'T'); i++)
		mb_faults_nap_ms(2);
	CU_ASSERT_TRUE(stopped);
	/* 500 requests while it is stopped: they reach its socket's receive queue */
	for (deadline = mb_e2e_now() + 10; t.n_sent < 1 + QUEUED && mb_e2e_now() < deadline;)
		if (mb_faults_fill_identity(c, &t, &next_id, 3, 4, QUEUED) == 0)
			mb_faults_nap_ms(1);
	CU_ASSERT_EQUAL(t.n_sent, 1 + QUEUED);
	deadline = mb_e2e_now() + 3;
	while (mb_e2e_now() < deadline) { /* until the queue stops growing (bounded) */
		queued = rx_queued(d.port_ingest);
		if (queued == last && queued > 0)
			break;
		last = queued;
		mb_faults_nap_ms(100);
	}
	mb_daemon_signal(&d, SIGTERM);
	mb_daemon_signal(&d, SIGCONT);
	signalled = mb_e2e_now();
	all = mb_faults_collect_from(c, &t, 10 * slow, &res, &d, 1 * slow);
	answered = mb_e2e_now();
	exit_status = mb_daemon_wait(&d, 30 * slow);
	snprintf(what, sizeof(what), "queued in the socket, run %d", run);
	printf("\n    run %d: %d sent while stopped, %ld bytes in the daemon's socket receive "
	       "queue at SIGTERM; all answered: %s; start %.1f s, SIGTERM to the last answer "
	       "%.2f s, to the exit %.2f s",
	       run, QUEUED, queued, all ? "yes" : "no", started - t0, answered - signalled,
	       mb_e2e_now() - signalled);
	ok = check_run(what, &t, exit_status, &res);
	if (!ok)
		printf("\n    the daemon's log (its end):\n%s", mb_faults_log_tail(&d, 3000));
	tally_run(a, &t, ok, &res);
	mb_client_close(&c);
	mb_faults_ids_free(&t);
	return ok;
}

static void
test_queued_in_socket(void)
{
	const int repeat = mb_faults_repeat(MB_FAULTS_SANITIZER ? 6 : 20);
	const double budget = mb_faults_long() ? mb_faults_seconds(0) : 0;
	struct tally a = {0};
	double t0 = mb_e2e_now();
	char notes[256];

	for (int run = 1; run <= repeat || mb_e2e_now() - t0 < budget; run++)
		queued_in_socket(run, &a);
	a.seconds = mb_e2e_now() - t0;
	snprintf(notes, sizeof(notes), "%d runs, %d failed; OK %llu, UNAVAILABLE %llu", a.runs,
		 a.failed_runs, (unsigned long long)a.ok, (unsigned long long)a.unavailable);
	mb_faults_summary("3 SIGTERM, 500 queued in the socket", a.seconds, a.runs, a.requests,
			  a.failed_runs == 0, &a.worst, notes);
}

static const struct mb_test_case flood_cases[] = {
	{"SIGTERM under a flood of 1500 outstanding: each answered once, OK or UNAVAILABLE; "
	 "exit 0 (10 runs, 3 under a sanitizer)",
	 test_sigterm_under_flood},
	{NULL, NULL},
};

static const struct mb_test_case queued_cases[] = {
	{"SIGTERM with 500 requests queued in the stopped daemon's socket: each answered once, "
	 "OK or UNAVAILABLE; exit 0 (20 runs, 6 under a sanitizer)",
	 test_queued_in_socket},
	{NULL, NULL},
};

static const struct mb_test_suite flood = {"faults: SIGTERM under a flood", NULL, NULL,
					   flood_cases};
static const struct mb_test_suite queued = {"faults: SIGTERM with requests queued", NULL, NULL,
					    queued_cases};

/* "flood" or "queued" runs one case (meson runs them as two tests, in parallel); none, both */
int
main(int argc, char **argv)
{
	const struct mb_test_suite *both[] = {&flood, &queued, NULL};
	const struct mb_test_suite *one[] = {NULL, NULL};

	if (argc == 2 && strcmp(argv[1], "flood") == 0)
		one[0] = &flood;
	else if (argc == 2 && strcmp(argv[1], "queued") == 0)
		one[0] = &queued;
	else if (argc != 1) {
		fprintf(stderr, "usage: %s [flood|queued]\n", argv[0]);
		return 2;
	}
	return mb_test_main("faults_shutdown", one[0] != NULL ? one : both);
}
