/*
 * scrape_test.c: mediabatch-perf's Prometheus text reader on synthetic /metrics text: sums
 * filtered by label=value pairs (any order, escaped values, malformed lines skipped), a
 * histogram's cumulative buckets by le added up over label sets, the difference of two
 * scrapes, quantiles estimated as Prometheus' histogram_quantile() does, and the stage
 * figures of a run from two scrapes (mb_run_stages_from()): several models, a series that
 * appears between the scrapes, a daemon without the series, a restart in between.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_runner.h"
#include "mb_scrape.h"
#include "mb_test.h"

#define STAGE "mediabatch_stage_seconds"

/* Two models, three stages; bounds 1, 2, 5 ms and +Inf. */
static const char g_text[] =
	"# HELP mediabatch_stage_seconds Time a request spent in each stage.\n"
	"# TYPE mediabatch_stage_seconds histogram\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"queue\",le=\"0.001\"} 10\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"queue\",le=\"0.002\"} 30\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"queue\",le=\"0.005\"} 40\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"queue\",le=\"+Inf\"} 40\n"
	"mediabatch_stage_seconds_sum{model=\"identity\",stage=\"queue\"} 0.06\n"
	"mediabatch_stage_seconds_count{model=\"identity\",stage=\"queue\"} 40\n"
	/* the bounds out of order: the reader sorts them */
	"mediabatch_stage_seconds_bucket{model=\"logmel\",stage=\"queue\",le=\"+Inf\"} 20\n"
	"mediabatch_stage_seconds_bucket{model=\"logmel\",stage=\"queue\",le=\"0.005\"} 10\n"
	"mediabatch_stage_seconds_bucket{model=\"logmel\",stage=\"queue\",le=\"0.001\"} 0\n"
	"mediabatch_stage_seconds_bucket{model=\"logmel\",stage=\"queue\",le=\"0.002\"} 0\n"
	"mediabatch_stage_seconds_sum{model=\"logmel\",stage=\"queue\"} 0.5\n"
	"mediabatch_stage_seconds_count{model=\"logmel\",stage=\"queue\"} 20\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"compute\",le=\"0.001\"} 40\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"compute\",le=\"0.002\"} 40\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"compute\",le=\"0.005\"} 40\n"
	"mediabatch_stage_seconds_bucket{model=\"identity\",stage=\"compute\",le=\"+Inf\"} 40\n"
	"mediabatch_stage_seconds_sum{model=\"identity\",stage=\"compute\"} 0.02\n"
	"mediabatch_stage_seconds_count{model=\"identity\",stage=\"compute\"} 40\n"
	"mediabatch_stage_seconds_total 12345\n"
	"mediabatch_ready 1";

static void
test_sum_labels(void)
{
	const char *queue[] = {"stage", "queue", NULL};
	const char *identity[] = {"model", "identity", NULL};
	const char *lq[] = {"stage", "queue", "model", "logmel", NULL};
	const char *ql[] = {"model", "logmel", "stage", "queue", NULL};
	const char *egress[] = {"stage", "egress", NULL};
	const char *inf[] = {"le", "+Inf", NULL};
	const char *none[] = {NULL};
	double v;

	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_count", queue, &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 60, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_count", identity, &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 80, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_sum", lq, &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 0.5, 1e-15);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_sum", ql, &v), 1); /* any order */
	CU_ASSERT_DOUBLE_EQUAL(v, 0.5, 1e-15);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_count", egress, &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 0, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_count", NULL, &v), 3);
	CU_ASSERT_DOUBLE_EQUAL(v, 100, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_count", none, &v), 3);
	CU_ASSERT_DOUBLE_EQUAL(v, 100, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE "_bucket", inf, &v), 3);
	CU_ASSERT_DOUBLE_EQUAL(v, 100, 0);
	/* the base name matches none of the suffixed lines, nor the _total one */
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, STAGE, NULL, &v), 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(g_text, "mediabatch_ready", NULL, &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 1, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(NULL, "x", NULL, &v), 0);
}

static void
test_label_syntax(void)
{
	const char *text = "x{a=\"p\\\"q\",b=\"r\\\\s\",c=\"t\\nu\",d=\"}{,=\"} 1\n"
			   "x{ b = \"r\\\\s\" , a=\"p\\\"q\", } 2\n"
			   "x_total{a=\"p\\\"q\"} 50\n"
			   "x 7\n"
			   "x{a=\"pq\"} 4 1700000000000\n"
			   "x{a=\"unterminated} 9\n"
			   "x{a=\"pq\"\n"
			   "x{=\"pq\"} 9\n"
			   "x{a=\"pq\"} notanumber\n";
	const char *quoted[] = {"a", "p\"q", NULL};
	const char *backslash[] = {"b", "r\\s", NULL};
	const char *newline[] = {"c", "t\nu", NULL};
	const char *braces[] = {"d", "}{,=", NULL};
	const char *plain[] = {"a", "pq", NULL};
	const char *both[] = {"a", "p\"q", "b", "r\\s", NULL};
	const char *odd[] = {"a", NULL};
	const char *nine[] = {"a", "1", "b", "2", "c", "3", "d", "4", "e", "5",
			      "f", "6", "g", "7", "h", "8", "i", "9", NULL};
	double v;

	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", quoted, &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 3, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", backslash, &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 3, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", newline, &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 1, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", braces, &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 1, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", both, &v), 2);
	CU_ASSERT_DOUBLE_EQUAL(v, 3, 0);
	/* a timestamp after the value is not part of it */
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", plain, &v), 1);
	CU_ASSERT_DOUBLE_EQUAL(v, 4, 0);
	/* every well-formed sample of x; the malformed lines are skipped */
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", NULL, &v), 4);
	CU_ASSERT_DOUBLE_EQUAL(v, 14, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum(text, "x", &v), 4);
	CU_ASSERT_DOUBLE_EQUAL(v, 14, 0);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", odd, &v), -EINVAL);
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", nine, &v), -EINVAL);
	nine[16] = NULL; /* eight pairs are allowed */
	CU_ASSERT_EQUAL(mb_scrape_sum_labels(text, "x", nine, &v), 0);
}

static void
test_hist(void)
{
	const char *queue[] = {"stage", "queue", NULL};
	const char *iq[] = {"stage", "queue", "model", "identity", NULL};
	const char *egress[] = {"stage", "egress", NULL};
	struct mb_scrape_hist h;

	CU_ASSERT_EQUAL(mb_scrape_hist(g_text, STAGE, queue, &h), 2);
	CU_ASSERT_EQUAL_FATAL(h.n, 4);
	CU_ASSERT_DOUBLE_EQUAL(h.le[0], 0.001, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.le[1], 0.002, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.le[2], 0.005, 0);
	CU_ASSERT(isinf(h.le[3]) && h.le[3] > 0);
	CU_ASSERT_DOUBLE_EQUAL(h.cum[0], 10, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.cum[1], 30, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.cum[2], 50, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.cum[3], 60, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.sum, 0.56, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(h.count, 60, 0);
	CU_ASSERT_EQUAL(h.series, 2);

	CU_ASSERT_EQUAL(mb_scrape_hist(g_text, STAGE, iq, &h), 1);
	CU_ASSERT_EQUAL(h.n, 4);
	CU_ASSERT_DOUBLE_EQUAL(h.cum[2], 40, 0);
	CU_ASSERT_DOUBLE_EQUAL(h.count, 40, 0);

	CU_ASSERT_EQUAL(mb_scrape_hist(g_text, STAGE, egress, &h), 0);
	CU_ASSERT_EQUAL(h.n, 0);
	CU_ASSERT_EQUAL(mb_scrape_hist(g_text, "absent", NULL, &h), 0);
	CU_ASSERT_EQUAL(mb_scrape_hist("", STAGE, NULL, &h), 0);
}

static void
test_hist_errors(void)
{
	struct mb_scrape_hist h;
	char *many;
	size_t len;
	FILE *f;

	/* two label sets with different bounds cannot be added up bucket by bucket */
	CU_ASSERT_EQUAL(mb_scrape_hist("h_bucket{m=\"a\",le=\"0.1\"} 1\n"
				       "h_bucket{m=\"a\",le=\"+Inf\"} 1\n"
				       "h_count{m=\"a\"} 1\n"
				       "h_bucket{m=\"b\",le=\"0.2\"} 1\n"
				       "h_bucket{m=\"b\",le=\"+Inf\"} 1\n"
				       "h_count{m=\"b\"} 1\n",
				       "h", NULL, &h),
			-EPROTO);
	/* a bucket with no le, or one that is not a number */
	CU_ASSERT_EQUAL(mb_scrape_hist("h_bucket{m=\"a\"} 1\nh_count{m=\"a\"} 1\n", "h", NULL, &h),
			-EPROTO);
	CU_ASSERT_EQUAL(mb_scrape_hist("h_bucket{le=\"fast\"} 1\nh_count 1\n", "h", NULL, &h),
			-EPROTO);
	/* buckets without a _count */
	CU_ASSERT_EQUAL(mb_scrape_hist("h_bucket{le=\"+Inf\"} 1\n", "h", NULL, &h), -EPROTO);
	/* more bounds than the reader holds */
	f = open_memstream(&many, &len);
	CU_ASSERT_FATAL(f != NULL);
	for (int i = 0; i <= MB_SCRAPE_BUCKETS_MAX; i++)
		fprintf(f, "h_bucket{le=\"%d\"} %d\n", i + 1, i);
	fprintf(f, "h_count %d\n", MB_SCRAPE_BUCKETS_MAX);
	fclose(f);
	CU_ASSERT_EQUAL(mb_scrape_hist(many, "h", NULL, &h), -ENOBUFS);
	free(many);
}

static void
make_hist(struct mb_scrape_hist *h, const double *cum, double sum)
{
	static const double le[] = {0.001, 0.002, 0.005, INFINITY};

	memset(h, 0, sizeof(*h));
	h->n = 4;
	for (int i = 0; i < 4; i++) {
		h->le[i] = le[i];
		h->cum[i] = cum[i];
	}
	h->sum = sum;
	h->count = cum[3];
	h->series = 1;
}

static void
test_delta(void)
{
	struct mb_scrape_hist a, b, d, empty;

	make_hist(&a, (const double[]){5, 10, 12, 12}, 0.01);
	make_hist(&b, (const double[]){10, 30, 50, 60}, 0.56);
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&b, &a, &d), 0);
	CU_ASSERT_EQUAL(d.n, 4);
	CU_ASSERT_DOUBLE_EQUAL(d.cum[0], 5, 0);
	CU_ASSERT_DOUBLE_EQUAL(d.cum[1], 20, 0);
	CU_ASSERT_DOUBLE_EQUAL(d.cum[2], 38, 0);
	CU_ASSERT_DOUBLE_EQUAL(d.cum[3], 48, 0);
	CU_ASSERT_DOUBLE_EQUAL(d.sum, 0.55, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(d.count, 48, 0);
	/* a histogram that appeared between the scrapes starts from zero */
	memset(&empty, 0, sizeof(empty));
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&b, &empty, &d), 0);
	CU_ASSERT_DOUBLE_EQUAL(d.cum[3], 60, 0);
	CU_ASSERT_DOUBLE_EQUAL(d.sum, 0.56, 0);
	/* a restart in between: the counts went down */
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&a, &b, &d), -ERANGE);
	/* other bounds */
	a.le[1] = 0.0025;
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&b, &a, &d), -EPROTO);
	a.n = 3;
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&b, &a, &d), -EPROTO);
	/* the result may be written over the end */
	make_hist(&a, (const double[]){5, 10, 12, 12}, 0.01);
	CU_ASSERT_EQUAL(mb_scrape_hist_delta(&b, &a, &b), 0);
	CU_ASSERT_DOUBLE_EQUAL(b.cum[3], 48, 0);
}

static void
test_quantile(void)
{
	struct mb_scrape_hist h;

	/* cumulative 10, 30, 50, 60 at 1, 2, 5 ms, +Inf: the values Prometheus computes */
	make_hist(&h, (const double[]){10, 30, 50, 60}, 0.56);
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.1), 0.0006, 1e-15);   /* rank 6 */
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.25), 0.00125, 1e-15); /* 15 */
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.5), 0.002, 1e-15);	   /* 30 */
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.75), 0.00425, 1e-15); /* 45 */
	/* rank 59.4 lies in the +Inf bucket: the highest finite bound */
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.99), 0.005, 0);
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 1), 0.005, 0);
	CU_ASSERT(isinf(mb_scrape_hist_quantile(&h, -0.1)) && mb_scrape_hist_quantile(&h, -1) < 0);
	CU_ASSERT(isinf(mb_scrape_hist_quantile(&h, 1.5)) && mb_scrape_hist_quantile(&h, 2) > 0);
	CU_ASSERT(isnan(mb_scrape_hist_quantile(&h, NAN)));
	/* made monotonic first: 10, 5 reads as 10, 10 */
	make_hist(&h, (const double[]){10, 5, 20, 20}, 0);
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.5), 0.001, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.75), 0.0035, 1e-15);
	/* no observation, no +Inf bucket, a single bucket: no estimate */
	make_hist(&h, (const double[]){0, 0, 0, 0}, 0);
	CU_ASSERT(isnan(mb_scrape_hist_quantile(&h, 0.5)));
	make_hist(&h, (const double[]){10, 30, 50, 60}, 0.56);
	h.n = 3;
	CU_ASSERT(isnan(mb_scrape_hist_quantile(&h, 0.5)));
	h.n = 1;
	h.le[0] = INFINITY;
	CU_ASSERT(isnan(mb_scrape_hist_quantile(&h, 0.5)));
	/* a first bound <= 0 is returned as it is */
	make_hist(&h, (const double[]){5, 10, 10, 10}, 0);
	h.le[0] = 0;
	CU_ASSERT_DOUBLE_EQUAL(mb_scrape_hist_quantile(&h, 0.25), 0, 0);
}

/* One stage series with bounds 1, 2, 5 ms: cumulative counts and sum. */
static void
series(FILE *f, const char *model, const char *stage, const double cum[4], double sum)
{
	static const char *const le[] = {"0.001", "0.002", "0.005", "+Inf"};

	for (int i = 0; i < 4; i++)
		fprintf(f, STAGE "_bucket{model=\"%s\",stage=\"%s\",le=\"%s\"} %.0f\n", model,
			stage, le[i], cum[i]);
	fprintf(f, STAGE "_sum{model=\"%s\",stage=\"%s\"} %.17g\n", model, stage, sum);
	fprintf(f, STAGE "_count{model=\"%s\",stage=\"%s\"} %.0f\n", model, stage, cum[3]);
}

/*
 * /metrics at the window's start (@end false) and end. identity: every stage, doubled at
 * the end; logmel: queue and compute only, its compute series appears only at the end.
 */
static char *
stage_text(bool end)
{
	static const char *const stages[] = {"queue", "admission", "dispatch", "compute", "egress"};
	double k = end ? 2 : 1;
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "# TYPE " STAGE " histogram\n");
	for (int s = 0; s < 5; s++)
		series(f, "identity", stages[s], (const double[]){10 * k, 30 * k, 40 * k, 40 * k},
		       0.06 * (s + 1) * k);
	series(f, "logmel", "queue", (const double[]){0, 0, 10 * k, 20 * k}, 0.5 * k);
	if (end)
		series(f, "logmel", "compute", (const double[]){0, 4, 4, 4}, 0.006);
	fprintf(f,
		"# TYPE mediabatch_batches_closed_total counter\n"
		"mediabatch_batches_closed_total{model=\"identity\",reason=\"full\"} %.0f\n"
		"mediabatch_batches_closed_total{model=\"identity\",reason=\"deadline\"} %.0f\n"
		"mediabatch_batches_closed_total{model=\"logmel\",reason=\"full\"} %.0f\n",
		end ? 13.0 : 3.0, end ? 2.0 : 1.0, end ? 4.0 : 2.0);
	if (end)
		fprintf(f,
			"mediabatch_batches_closed_total{model=\"identity\",reason=\"drain\"} 0\n");
	fclose(f);
	return buf;
}

static void
test_stages_from(void)
{
	struct mb_mix mix;
	struct mb_run_result r;
	char err[128], *start = stage_text(false), *end = stage_text(true);
	const struct mb_stage_stat *st;

	CU_ASSERT_FATAL(mb_mix_parse("identity:3,logmel:1,clap:1", &mix, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(mb_run_result_init(&r, &mix) == 0);
	mb_run_stages_from(&r, start, end);
	CU_ASSERT_TRUE(r.stages_ok);
	/* queue over both models: identity 10, 30, 40, 40 and logmel 0, 0, 10, 20 */
	st = &r.stages[MB_STAGE_QUEUE];
	CU_ASSERT_TRUE(st->ok);
	CU_ASSERT_DOUBLE_EQUAL(st->count, 60, 0);
	CU_ASSERT_DOUBLE_EQUAL(st->sum_s, 0.56, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(mb_stage_mean_ms(st), 0.56 / 60 * 1000, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(st->p50_s, 0.002, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(st->p99_s, 0.005, 0);
	/* compute: identity's 40 plus logmel's 4, a series that appeared in the window */
	st = &r.stages[MB_STAGE_COMPUTE];
	CU_ASSERT_DOUBLE_EQUAL(st->count, 44, 0);
	CU_ASSERT_DOUBLE_EQUAL(st->sum_s, 0.24 + 0.006, 1e-12);
	/* egress: identity's only */
	st = &r.stages[MB_STAGE_EGRESS];
	CU_ASSERT_DOUBLE_EQUAL(st->count, 40, 0);
	CU_ASSERT_DOUBLE_EQUAL(mb_stage_mean_ms(st), 7.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(st->p50_s, 0.0015, 1e-15);
	/* per model */
	CU_ASSERT_TRUE(r.model[0].stages_ok);
	for (int s = 0; s < MB_STAGE_COUNT; s++) {
		CU_ASSERT_TRUE(r.model[0].stages[s].ok);
		CU_ASSERT_DOUBLE_EQUAL(r.model[0].stages[s].count, 40, 0);
		CU_ASSERT_DOUBLE_EQUAL(mb_stage_mean_ms(&r.model[0].stages[s]), 1.5 * (s + 1),
				       1e-9);
	}
	/* the sum of the means: 1.5 + 3 + 4.5 + 6 + 7.5 */
	CU_ASSERT_DOUBLE_EQUAL(mb_stages_sum_ms(r.model[0].stages), 22.5, 1e-9);
	CU_ASSERT_TRUE(r.model[1].stages_ok);
	CU_ASSERT_TRUE(r.model[1].stages[MB_STAGE_QUEUE].ok);
	CU_ASSERT_DOUBLE_EQUAL(r.model[1].stages[MB_STAGE_QUEUE].count, 20, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.model[1].stages[MB_STAGE_QUEUE].p50_s, 0.005, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.model[1].stages[MB_STAGE_COMPUTE].count, 4, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.model[1].stages[MB_STAGE_COMPUTE].p50_s, 0.0015, 1e-15);
	CU_ASSERT_FALSE(r.model[1].stages[MB_STAGE_ADMISSION].ok); /* n/a, not zero */
	CU_ASSERT(isnan(mb_stage_mean_ms(&r.model[1].stages[MB_STAGE_ADMISSION])));
	CU_ASSERT(isnan(r.model[1].stages[MB_STAGE_ADMISSION].p50_s));
	CU_ASSERT_DOUBLE_EQUAL(mb_stages_sum_ms(r.model[1].stages), 25 + 1.5, 1e-9);
	CU_ASSERT_FALSE(r.model[2].stages_ok); /* clap: none at all */
	CU_ASSERT(isnan(mb_stages_sum_ms(r.model[2].stages)));
	/* batches closed: full (13 + 4) - (3 + 2), deadline 2 - 1, drain new and 0 */
	CU_ASSERT_TRUE(r.closed_ok);
	CU_ASSERT_DOUBLE_EQUAL(r.batches_closed[0], 12, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.batches_closed[1], 1, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.batches_closed[2], 0, 0);

	/* the same text twice: nothing happened in the window, no estimate */
	mb_run_stages_from(&r, end, end);
	CU_ASSERT_TRUE(r.stages_ok && r.stages[MB_STAGE_QUEUE].ok);
	CU_ASSERT_DOUBLE_EQUAL(r.stages[MB_STAGE_QUEUE].count, 0, 0);
	CU_ASSERT(isnan(mb_stage_mean_ms(&r.stages[MB_STAGE_QUEUE])));
	CU_ASSERT(isnan(r.stages[MB_STAGE_QUEUE].p99_s));
	CU_ASSERT(isnan(mb_stages_sum_ms(r.stages)));

	/* a restart in between (the counts went down): n/a, never negative figures */
	mb_run_stages_from(&r, end, start);
	CU_ASSERT_FALSE(r.stages_ok);
	CU_ASSERT_FALSE(r.stages[MB_STAGE_QUEUE].ok);
	CU_ASSERT_FALSE(r.closed_ok);

	/* an older daemon: no such series */
	mb_run_stages_from(&r, "mediabatch_ready 1\n", "mediabatch_ready 1\n");
	CU_ASSERT_FALSE(r.stages_ok);
	CU_ASSERT_FALSE(r.closed_ok);
	CU_ASSERT_FALSE(r.model[0].stages_ok);
	for (int s = 0; s < MB_STAGE_COUNT; s++)
		CU_ASSERT_FALSE(r.stages[s].ok);
	CU_ASSERT_STRING_EQUAL(mb_stage_name(MB_STAGE_DISPATCH), "dispatch");
	CU_ASSERT_STRING_EQUAL(mb_closed_reason_name(2), "drain");
	CU_ASSERT_STRING_EQUAL(mb_stage_name(MB_STAGE_COUNT), "?");
	mb_run_result_fini(&r);
	free(start);
	free(end);
}

static const struct mb_test_case cases[] = {
	{"sums filtered by label=value pairs, in any order", test_sum_labels},
	{"label syntax: escapes, spaces, trailing comma; malformed lines skipped",
	 test_label_syntax},
	{"histogram: buckets by le added up over label sets, sorted", test_hist},
	{"histogram: mixed layouts, missing le, too many bounds refused", test_hist_errors},
	{"difference of two scrapes: new series from zero, restart and layout refused", test_delta},
	{"quantile estimate as Prometheus' histogram_quantile", test_quantile},
	{"stage figures of a run from two scrapes (mb_run_stages_from)", test_stages_from},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"perf scrape", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("scrape_test", suites);
}
