/*
 * report_test.c: mediabatch-perf's reports from known results: the JSON parses with
 * Python's json module and holds every figure of the text (tests/common/check_perf_report.py),
 * for a single run and a sweep; the SLO verdicts and the best rate; the plot files with and
 * without gnuplot; and the Prometheus reader used for /metrics.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_perf_report.h"
#include "mb_scrape.h"
#include "mb_test.h"

static struct mb_mix g_mix;
static struct mb_dist g_secs;

/* A run whose latencies are 1..n ms (in ns) plus some statuses, batches and metrics. */
static void
fake_run(struct mb_run_result *r, enum mb_run_mode mode, double rate, uint64_t n, double scale)
{
	CU_ASSERT_FATAL(mb_run_result_init(r, &g_mix) == 0);
	r->mode = mode;
	r->offered_rps = rate;
	r->outstanding = mode == MB_RUN_CLOSED ? 32 : 0;
	r->window_s = 2;
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t ns = (uint64_t)((double)i * scale * 1e6);
		int m = (int)(i % 2);
		bool ok = i % 50 != 0;

		mb_hist_record(r->latency, ns);
		mb_hist_record(r->model[m].latency, ns);
		r->model[m].sent++;
		r->model[m].responses++;
		if (ok) {
			r->model[m].ok++;
			r->status[MB_STATUS_OK]++;
			mb_hist_record(r->queue_us, 100 + i % 400);
			mb_hist_record(r->compute_us, 20 + i % 30);
			r->batch_n++;
			r->batch_sum += 1 + i % 8;
			r->batch_max = r->batch_max > 1 + i % 8 ? r->batch_max : 1 + i % 8;
		} else {
			r->status[MB_STATUS_OVERLOADED]++;
		}
	}
	snprintf(r->reason[MB_STATUS_OVERLOADED], sizeof(r->reason[0]),
		 "queue_limit: \"identity\" holds 4096 \\ requests");
	r->sent = r->responses = n;
	r->throughput_rps = (double)n / r->window_s;
	r->ok_rps = (double)r->status[MB_STATUS_OK] / r->window_s;
	r->metrics_ok = true;
	r->admission_wait_s = 0.0123;
	r->admission_batches = 321;
	r->units_mean = 3.25;
	r->units_max = 7;
	r->units_capacity = 16;
	r->units_samples = 8;
}

static void
fill_report(struct mb_perf_report *rep, enum mb_report_mode mode, struct mb_run_result *runs, int n)
{
	memset(rep, 0, sizeof(*rep));
	rep->mode = mode;
	rep->endpoint = "tcp://127.0.0.1:7400";
	rep->transport = "zmq";
	rep->metrics = "127.0.0.1:7402";
	rep->mix = &g_mix;
	rep->seconds = &g_secs;
	rep->payload_bytes = 1024;
	rep->seed = 5;
	rep->warmup_s = 1;
	rep->duration_s = 2;
	rep->drain_s = 5;
	rep->max_requests = 1000;
	rep->slo_ms = 50;
	rep->max_error_pct = 2.5;
	rep->sweep_from = 100;
	rep->sweep_to = 300;
	rep->sweep_steps = n;
	rep->runs = runs;
	rep->n_runs = n;
}

/* Write text and JSON to temp files and run the Python checker on them. */
static int
check_with_python(const struct mb_perf_report *rep, const char *mode, const char *extra)
{
	char text[] = "/tmp/mb_perf_txt_XXXXXX", json[] = "/tmp/mb_perf_json_XXXXXX", cmd[8192];
	int tfd = mkstemp(text), jfd = mkstemp(json), rc;
	FILE *t = fdopen(tfd, "w"), *j = fdopen(jfd, "w");

	CU_ASSERT_FATAL(t != NULL && j != NULL);
	mb_report_text(rep, t);
	CU_ASSERT_EQUAL(mb_report_json(rep, j), 0);
	fclose(t);
	fclose(j);
	snprintf(cmd, sizeof(cmd), "python3 %s %s %s --mode %s %s",
		 mb_test_source_path("tests/common/check_perf_report.py"), text, json, mode, extra);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s %s", text, json);
		if (system(cmd) != 0)
			printf("(cannot show the report)\n");
	}
	unlink(text);
	unlink(json);
	return rc;
}

static void
test_single_run(void)
{
	struct mb_run_result r;
	struct mb_perf_report rep;

	fake_run(&r, MB_RUN_CLOSED, 500, 1000, 1.0);
	fill_report(&rep, MB_REPORT_CLOSED, &r, 1);
	/* 1..1000 ms: p99 is 990 ms, 2% not OK */
	CU_ASSERT_DOUBLE_EQUAL(mb_run_latency_ms(&r, 99), 990, 990 * MB_HIST_REL_PRECISION);
	CU_ASSERT_DOUBLE_EQUAL(mb_run_error_pct(&r), 2.0, 1e-9);
	CU_ASSERT_FALSE(mb_report_slo_met(&rep, 0)); /* p99 990 ms > 50 ms */
	CU_ASSERT_EQUAL(check_with_python(&rep, "closed", ""), 0);
	/* the checker itself fails on a mismatch: a wrong mode must not pass */
	CU_ASSERT_NOT_EQUAL(check_with_python(&rep, "open", ""), 0);
	r.metrics_ok = false; /* "n/a" in the text, null in the JSON */
	rep.mode = MB_REPORT_OPEN;
	r.mode = MB_RUN_OPEN;
	CU_ASSERT_EQUAL(check_with_python(&rep, "open", ""), 0);
	mb_run_result_fini(&r);
}

static void
test_sweep(void)
{
	struct mb_run_result r[3];
	struct mb_perf_report rep;

	/* p99 of 1..100 x scale: 9.9, 29.7, 99 ms; SLO 50 ms, errors 2% <= 2.5% */
	fake_run(&r[0], MB_RUN_OPEN, 100, 100, 0.1);
	fake_run(&r[1], MB_RUN_OPEN, 200, 100, 0.3);
	fake_run(&r[2], MB_RUN_OPEN, 300, 100, 1.0);
	fill_report(&rep, MB_REPORT_SWEEP, r, 3);
	CU_ASSERT_TRUE(mb_report_slo_met(&rep, 0));
	CU_ASSERT_TRUE(mb_report_slo_met(&rep, 1));
	CU_ASSERT_FALSE(mb_report_slo_met(&rep, 2));
	CU_ASSERT_EQUAL(mb_report_best(&rep), 1);
	CU_ASSERT_EQUAL(check_with_python(&rep, "sweep", ""), 0);
	rep.max_error_pct = 1.0; /* now every step fails on errors */
	CU_ASSERT_EQUAL(mb_report_best(&rep), -1);
	CU_ASSERT_EQUAL(check_with_python(&rep, "sweep", ""), 0);
	for (int i = 0; i < 3; i++)
		mb_run_result_fini(&r[i]);
}

static bool
exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && st.st_size > 0;
}

static void
test_plots(void)
{
	struct mb_run_result r[2];
	struct mb_perf_report rep;
	char dir[] = "/tmp/mb_perf_plot_XXXXXX", cmd[600];

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	fake_run(&r[0], MB_RUN_OPEN, 100, 200, 0.1);
	fake_run(&r[1], MB_RUN_OPEN, 200, 200, 0.5);
	fill_report(&rep, MB_REPORT_SWEEP, r, 2);

	/* no gnuplot: data and scripts still written, and the note says what to do */
	setenv("MB_PERF_GNUPLOT", "/nonexistent/gnuplot", 1);
	CU_ASSERT_EQUAL(mb_report_plot(&rep, dir), 0);
	CU_ASSERT_FALSE(rep.plotted);
	CU_ASSERT(strstr(rep.plot_note, "gnuplot is not installed") != NULL);
	CU_ASSERT(strstr(rep.plot_note, "gnuplot-nox") != NULL);
	CU_ASSERT(exists(dir, "latency_cdf.dat") && exists(dir, "latency_cdf.gp"));
	CU_ASSERT(exists(dir, "sweep.dat") && exists(dir, "sweep.gp"));
	CU_ASSERT_FALSE(exists(dir, "sweep.png"));
	CU_ASSERT_EQUAL(check_with_python(&rep, "sweep", "--plots"), 0);

	/* with gnuplot (deploy/install-deps.sh installs it): the PNGs */
	unsetenv("MB_PERF_GNUPLOT");
	if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
		CU_ASSERT_EQUAL(mb_report_plot(&rep, dir), 0);
		CU_ASSERT_TRUE(rep.plotted);
		CU_ASSERT(exists(dir, "latency_cdf.png") && exists(dir, "sweep.png"));
	} else {
		printf("\n    gnuplot not installed: PNG half not checked");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	for (int i = 0; i < 2; i++)
		mb_run_result_fini(&r[i]);
}

static void
test_prometheus_reader(void)
{
	const char *text = "# HELP mediabatch_vram_units_in_use Device units.\n"
			   "# TYPE mediabatch_vram_units_in_use gauge\n"
			   "mediabatch_vram_units_in_use{device=\"cpu0\"} 3\n"
			   "mediabatch_vram_units_in_use{device=\"cuda0\"} 5.5\n"
			   "mediabatch_vram_units_in_use_peak 99\n"
			   "mediabatch_admission_wait_seconds_sum{device=\"cpu0\"} 0.25\n"
			   "mediabatch_admission_wait_seconds_count{device=\"cpu0\"} 10\n"
			   "mediabatch_ready 1";
	double v;

	CU_ASSERT_EQUAL(mb_scrape_sum(text, "mediabatch_vram_units_in_use", &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 8.5, 1e-12);
	CU_ASSERT_EQUAL(mb_scrape_sum(text, "mediabatch_admission_wait_seconds_sum", &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 0.25, 1e-12);
	CU_ASSERT_EQUAL(mb_scrape_sum(text, "mediabatch_ready", &v), 1); /* last line, no \n */
	CU_ASSERT_DOUBLE_EQUAL(v, 1, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum(text, "mediabatch_admission_wait_seconds", &v), 0);
	CU_ASSERT_EQUAL(mb_scrape_sum(text, "absent", &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 0, 0);
	{
		char *body = (char *)1;

		CU_ASSERT_EQUAL(mb_scrape_get("nohost", "/metrics", 100, &body), -EINVAL);
		CU_ASSERT_PTR_NULL(body);
		CU_ASSERT_EQUAL(mb_scrape_get("127.0.0.1:0", "/metrics", 100, &body), -EINVAL);
	}
}

static int
suite_init(void)
{
	char err[256];

	return mb_mix_parse("identity:3,logmel:1", &g_mix, err, sizeof(err)) ||
	       mb_dist_parse("lognormal:2,0.5", &g_secs, err, sizeof(err));
}

static const struct mb_test_case cases[] = {
	{"single run: JSON parses and holds the text's figures (python3 json)", test_single_run},
	{"sweep: SLO verdicts, best rate, table vs JSON", test_sweep},
	{"plots: data and scripts without gnuplot, PNGs with it", test_plots},
	{"Prometheus reader: sums label sets, never matches a longer name", test_prometheus_reader},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"perf report", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	if (system("python3 -c 'import json' >/dev/null 2>&1") != 0)
		mb_test_skip("python3 is not installed (deploy/install-deps.sh installs it)");
	return mb_test_main("report_test", suites);
}
