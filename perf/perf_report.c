/*
 * perf_report.c: text, JSON, CSV and plots of mediabatch-perf's results (mb_perf_report.h).
 *
 * All four read the same struct mb_run_result values, so they cannot disagree; the CSV's
 * numbers are written by the JSON's own number writer, digit for digit. The JSON
 * is written by hand (no JSON library in the dependency list for one writer): strings are
 * escaped per RFC 8259, non-finite numbers become null. Plots are gnuplot data files and
 * scripts (kept, so the PNGs can be remade or restyled), rendered by running gnuplot as a
 * child process with a time limit.
 *
 * Owns nothing; main only.
 */
#include "mb_perf_report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_replay.h"

#define GNUPLOT_TIMEOUT_S 30

bool
mb_report_judged(const struct mb_perf_report *rep, int i)
{
	return rep->runs[i].interrupted == MB_PHASE_NONE;
}

bool
mb_report_slo_met(const struct mb_perf_report *rep, int i)
{
	const struct mb_run_result *r = &rep->runs[i];

	return mb_report_judged(rep, i) && r->responses > 0 &&
	       mb_run_latency_ms(r, 99) <= rep->slo_ms && mb_run_error_pct(r) <= rep->max_error_pct;
}

int
mb_report_best(const struct mb_perf_report *rep)
{
	int best = -1;

	for (int i = 0; i < rep->n_runs; i++)
		if (mb_report_slo_met(rep, i) &&
		    (best < 0 || rep->runs[i].offered_rps > rep->runs[best].offered_rps))
			best = i;
	return best;
}

static double
batch_mean(const struct mb_run_result *r)
{
	return r->batch_n ? (double)r->batch_sum / (double)r->batch_n : 0.0;
}

/* open loop: the p99 of how late the measured requests went out (0 with none) */
static double
lag_p99_ms(const struct mb_run_result *r)
{
	return r->lag != NULL && r->lag->count ? (double)mb_hist_percentile(r->lag, 99) / 1e6 : 0.0;
}

/* ---- text ---- */

/* Whether @r's measured window was shorter than planned (--requests, an interrupt). */
static bool
window_short(const struct mb_perf_report *rep, const struct mb_run_result *r)
{
	return r->window_s < rep->duration_s - 1e-6;
}

/*
 * What an interrupt left of @r, after "interrupted " (no newline): where it came, and the
 * measured requests in flight then, which count neither as answered nor missing nor errors.
 */
static void
text_interrupted(const struct mb_perf_report *rep, const struct mb_run_result *r, FILE *out)
{
	switch (r->interrupted) {
	case MB_PHASE_WARMUP:
		fprintf(out, "in the warm-up: nothing measured");
		return;
	case MB_PHASE_WINDOW:
		fprintf(out, "%.3f s into the %.3f s window", r->window_s, rep->duration_s);
		break;
	case MB_PHASE_DRAIN:
	default:
		fprintf(out, "in the drain, after the %.3f s window", r->window_s);
		break;
	}
	fprintf(out,
		"; %" PRIu64 " request(s) in flight then, not counted as answered, missing or "
		"errors",
		r->in_flight_at_interrupt);
}

/* "fell up to ..." of an open loop that fell more than 1 ms behind its schedule, no newline */
static bool
text_lag(const struct mb_run_result *r, FILE *out)
{
	if (!(r->max_lag_ms > 1))
		return false;
	fprintf(out, "fell up to %.3f ms behind its schedule, p99 %.3f ms (counted in the latency)",
		r->max_lag_ms, lag_p99_ms(r));
	return true;
}

/* How many /metrics endpoints --metrics lists: 0 with --metrics off. */
static int
metrics_listed(const struct mb_perf_report *rep)
{
	if (rep->metrics == NULL)
		return 0;
	return rep->n_metrics > 0 && rep->metrics_list != NULL ? rep->n_metrics : 1;
}

/* The @i-th endpoint --metrics lists. */
static const char *
metrics_ep(const struct mb_perf_report *rep, int i)
{
	return rep->n_metrics > 0 && rep->metrics_list != NULL ? rep->metrics_list[i]
							       : rep->metrics;
}

/* Whether @r's server-side figures include the @i-th endpoint's. */
static bool
metrics_has(const struct mb_run_result *r, int i)
{
	if (r->metrics_listed == 0) /* a result without the per-endpoint record: one */
		return r->metrics_ok && i == 0;
	return r->metrics_ok && i < r->metrics_listed && i < MB_RUN_METRICS_MAX &&
	       r->metrics_answer[i];
}

/* How many of the listed endpoints @r's server-side figures are the sum of. */
static int
metrics_answered(const struct mb_perf_report *rep, const struct mb_run_result *r)
{
	int n = 0;

	for (int i = 0; i < metrics_listed(rep); i++)
		n += metrics_has(r, i);
	return n;
}

/* Whether runs @a and @b have the figures of the same endpoints. */
static bool
metrics_same(const struct mb_perf_report *rep, const struct mb_run_result *a,
	     const struct mb_run_result *b)
{
	for (int i = 0; i < metrics_listed(rep); i++)
		if (metrics_has(a, i) != metrics_has(b, i))
			return false;
	return true;
}

/* "A, B did not answer": the listed endpoints missing from @r's figures. */
static void
text_metrics_missing(const struct mb_perf_report *rep, const struct mb_run_result *r, FILE *out)
{
	bool first = true;

	for (int i = 0; i < metrics_listed(rep); i++) {
		if (metrics_has(r, i))
			continue;
		fprintf(out, "%s%s", first ? "" : ", ", metrics_ep(rep, i));
		first = false;
	}
	fprintf(out, " did not answer");
}

/*
 * Whose /metrics the server-side figures (stages, batches closed, admission wait, units in
 * use) are, when that is not plain: one endpoint of a fleet of several daemons ("from X
 * only: 1 of N daemons"), or several summed: how many of the listed daemons answered, of
 * the fleet's when it has more, and which did not ("from 1 of 3 daemons (--metrics lists 2
 * of the fleet's 3; X did not answer), summed"); a sweep whose steps differ says it by step.
 */
static void
text_metrics_source(const struct mb_perf_report *rep, FILE *out)
{
	const struct mb_run_result *first = NULL;
	int k = metrics_listed(rep), lo = 0, hi = 0, n;
	bool same = true, paren = false;

	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_run_result *r = &rep->runs[i];
		int a = metrics_answered(rep, r);

		if (!r->metrics_ok)
			continue;
		if (first == NULL) {
			first = r;
			lo = hi = a;
		}
		same &= metrics_same(rep, first, r);
		lo = a < lo ? a : lo;
		hi = a > hi ? a : hi;
	}
	if (first == NULL || k == 0)
		return;
	if (k == 1) {
		if (rep->n_fleet < 2)
			return;
		fprintf(out,
			"metrics         from %s only: 1 of %d daemons; stages, batches closed, "
			"admission below\n",
			rep->metrics, rep->n_fleet);
		return;
	}
	n = k > rep->n_fleet ? k : rep->n_fleet;
	fprintf(out, "metrics         from %d", lo);
	if (hi != lo)
		fprintf(out, "..%d", hi);
	fprintf(out, " of %d daemons%s", n, same ? "" : " by step");
	if (k < rep->n_fleet) {
		fprintf(out, " (--metrics lists %d of the fleet's %d", k, rep->n_fleet);
		paren = true;
	}
	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_run_result *r = &rep->runs[i];

		if (!r->metrics_ok || metrics_answered(rep, r) == k || (same && r != first))
			continue;
		fprintf(out, "%s", paren ? "; " : " (");
		paren = true;
		if (!same)
			fprintf(out, "step %d: ", i + 1);
		text_metrics_missing(rep, r, out);
	}
	fprintf(out, "%s, summed; stages, batches closed, admission below\n", paren ? ")" : "");
}

static void
text_header(const struct mb_perf_report *rep, FILE *out)
{
	const struct mb_run_result *r = &rep->runs[0];
	char secs[64];

	switch (rep->mode) {
	case MB_REPORT_CLOSED:
		fprintf(out, "mediabatch-perf %s: closed loop, %" PRIu32 " outstanding", MB_VERSION,
			r->outstanding);
		break;
	case MB_REPORT_OPEN:
		fprintf(out, "mediabatch-perf %s: open loop, Poisson arrivals at %.1f req/s",
			MB_VERSION, r->offered_rps);
		break;
	case MB_REPORT_SWEEP:
	default:
		fprintf(out,
			"mediabatch-perf %s: open-loop sweep, %d steps from %.1f to %.1f req/s",
			MB_VERSION, rep->sweep_steps, rep->sweep_from, rep->sweep_to);
		break;
	}
	if (rep->mode == MB_REPORT_SWEEP) {
		bool shorter = false;

		for (int i = 0; i < rep->n_runs; i++)
			shorter |= window_short(rep, &rep->runs[i]);
		/* the steps whose window was shorter have a line under the table */
		fprintf(out, ", %s%.1f s measured per step", shorter ? "up to " : "",
			rep->duration_s);
	} else {
		fprintf(out, ", %.1f s measured", r->window_s);
		if (r->interrupted != MB_PHASE_NONE)
			fprintf(out, " (interrupted; %.1f s planned)", rep->duration_s);
		else if (r->requests_reached && window_short(rep, r))
			fprintf(out, " (--requests %" PRIu64 " reached; %.1f s planned)",
				rep->max_requests, rep->duration_s);
	}
	fprintf(out, " after %.1f s warm-up\n", rep->warmup_s);
	mb_dist_format(rep->seconds, secs, sizeof(secs));
	fprintf(out, "  endpoint %s (%s); mix", rep->endpoint, rep->transport);
	for (int i = 0; i < rep->mix->n; i++)
		fprintf(out, " %s:%g", rep->mix->e[i].model, rep->mix->e[i].weight);
	if (rep->media != NULL) {
		const struct mb_replay *m = rep->media;

		fprintf(out, "; seed %" PRIu64 "\n", rep->seed);
		fprintf(out,
			"  media %s: %" PRIu32 " audio file(s), %" PRIu32 " sent; %" PRIu32
			" video file(s), %" PRIu32 " sent; %.1f MiB in memory",
			m->dir, m->n_audio, mb_replay_used(m, MB_KIND_AUDIO), m->n_video,
			mb_replay_used(m, MB_KIND_VIDEO), (double)m->bytes / (1024.0 * 1024.0));
		for (int k = 0; k < m->n_rates; k++)
			fprintf(out, "%s%" PRIu32, k ? ", " : "; audio at ", m->rates[k]);
		fprintf(out, "%s\n", m->n_rates ? " Hz" : "");
		return;
	}
	fprintf(out, "; audio seconds %s; tensor payload %" PRIu32 " B; seed %" PRIu64 "\n", secs,
		rep->payload_bytes, rep->seed);
}

/* A figure in ms with 3 decimals in a field of @width, or "n/a" when it is NAN. */
static void
text_ms(FILE *out, int width, double ms)
{
	if (isnan(ms))
		fprintf(out, "%*s", width, "n/a");
	else
		fprintf(out, "%*.3f", width, ms);
}

/* Share of @ms in @sum as a whole percentage in a field of @width ("n/a" when unknown). */
static void
text_share(FILE *out, int width, double ms, double sum)
{
	if (isnan(ms) || !(sum > 0))
		fprintf(out, "%*s", width, "n/a");
	else
		fprintf(out, "%*.0f%%", width - 1, 100 * ms / sum);
}

/* Why there are no stage figures for @r, or NULL when there are. */
static const char *
stages_missing(const struct mb_perf_report *rep, const struct mb_run_result *r, char *buf,
	       size_t len)
{
	if (!r->metrics_ok && rep->metrics == NULL)
		snprintf(buf, len, "n/a (--metrics off)");
	else if (!r->metrics_ok)
		snprintf(buf, len, "n/a (no /metrics from %s)", rep->metrics);
	else if (!r->stages_ok)
		snprintf(buf, len,
			 "n/a (no mediabatch_stage_seconds in /metrics: an older daemon)");
	else
		return NULL;
	return buf;
}

static void
text_closed(const struct mb_run_result *r, FILE *out)
{
	if (!r->metrics_ok)
		return; /* the stages line says why */
	if (!r->closed_ok) {
		fprintf(out, "batches closed  n/a (no mediabatch_batches_closed_total)\n");
		return;
	}
	fprintf(out, "batches closed  ");
	for (unsigned int i = 0; i < MB_CLOSED_REASONS; i++)
		fprintf(out, "%s%s %.0f", i ? ", " : "", mb_closed_reason_name(i),
			r->batches_closed[i]);
	fprintf(out, "\n");
}

/*
 * The stage block of one run: a row per stage over every model (mean, share of the stages'
 * sum, bucket-estimated p50/p99, requests), then with several models a row per model (mean
 * and share per stage), then the batches closed.
 */
static void
text_stages(const struct mb_perf_report *rep, const struct mb_run_result *r, FILE *out)
{
	double sum = mb_stages_sum_ms(r->stages);
	char why[256];

	if (stages_missing(rep, r, why, sizeof(why)) != NULL) {
		fprintf(out, "stages          %s\n", why);
		text_closed(r, out);
		return;
	}
	fprintf(out, "stages          server time per request in the window, from /metrics "
		     "(p50/p99: bucket estimates)\n");
	fprintf(out, "                %-12s %9s %7s %10s %10s %12s\n", "stage", "mean ms", "share",
		"p50 ms", "p99 ms", "requests");
	for (unsigned int s = 0; s < MB_STAGE_COUNT; s++) {
		const struct mb_stage_stat *st = &r->stages[s];
		double mean = mb_stage_mean_ms(st);

		fprintf(out, "                %-12s ", mb_stage_name(s));
		text_ms(out, 9, mean);
		text_share(out, 8, mean, sum);
		text_ms(out, 11, st->ok ? 1000 * st->p50_s : NAN);
		text_ms(out, 11, st->ok ? 1000 * st->p99_s : NAN);
		if (st->ok)
			fprintf(out, " %12.0f\n", st->count);
		else
			fprintf(out, " %12s\n", "n/a");
	}
	fprintf(out, "                %-12s ", "all stages");
	text_ms(out, 9, sum);
	fprintf(out, "\n");
	if (r->n_models > 1) {
		fprintf(out, "stages by model mean ms and share of the model's server time\n");
		fprintf(out, "                %-16s", "model"); /* names: 16 at most */
		for (unsigned int s = 0; s < MB_STAGE_COUNT; s++)
			fprintf(out, " %12s", mb_stage_name(s));
		fprintf(out, "\n");
		for (int m = 0; m < r->n_models; m++) {
			const struct mb_run_model *md = &r->model[m];
			double msum = mb_stages_sum_ms(md->stages);

			fprintf(out, "                %-16s", md->model);
			for (unsigned int s = 0; s < MB_STAGE_COUNT; s++) {
				double mean =
					md->stages_ok ? mb_stage_mean_ms(&md->stages[s]) : NAN;

				if (isnan(mean)) {
					fprintf(out, " %12s", "n/a");
					continue;
				}
				text_ms(out, 8, mean);
				text_share(out, 5, mean, msum);
			}
			fprintf(out, "\n");
		}
	}
	text_closed(r, out);
}

/* A sweep's stage means and shares, one row per step, and the batches closed. */
static void
text_sweep_stages(const struct mb_perf_report *rep, FILE *out)
{
	bool any = false;
	char why[256];

	for (int i = 0; i < rep->n_runs; i++)
		any |= stages_missing(rep, &rep->runs[i], why, sizeof(why)) == NULL;
	if (!any) {
		stages_missing(rep, &rep->runs[0], why, sizeof(why));
		fprintf(out, "stages          %s\n", why);
		return;
	}
	fprintf(out, "stages          per step: mean ms per request and share of the server time, "
		     "batches closed\n");
	fprintf(out, "%4s", "step");
	for (unsigned int s = 0; s < MB_STAGE_COUNT; s++)
		fprintf(out, " %12s", mb_stage_name(s));
	fprintf(out, " %8s  %s\n", "all ms", "full/deadline/drain");
	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_run_result *r = &rep->runs[i];
		double sum = mb_stages_sum_ms(r->stages);

		fprintf(out, "%4d", i + 1);
		for (unsigned int s = 0; s < MB_STAGE_COUNT; s++) {
			double mean = r->metrics_ok && r->stages_ok
					      ? mb_stage_mean_ms(&r->stages[s])
					      : NAN;

			if (isnan(mean)) {
				fprintf(out, " %12s", "n/a");
				continue;
			}
			text_ms(out, 8, mean);
			text_share(out, 5, mean, sum);
		}
		text_ms(out, 9, r->metrics_ok && r->stages_ok ? sum : NAN);
		if (r->metrics_ok && r->closed_ok)
			fprintf(out, "  %.0f/%.0f/%.0f\n", r->batches_closed[0],
				r->batches_closed[1], r->batches_closed[2]);
		else
			fprintf(out, "  n/a\n");
	}
}

static void
text_run(const struct mb_perf_report *rep, const struct mb_run_result *r, FILE *out)
{
	bool first = true;

	fprintf(out, "throughput      %.1f req/s answered, %.1f req/s OK (offered %.1f req/s)\n",
		r->throughput_rps, r->ok_rps, r->offered_rps);
	fprintf(out,
		"requests        sent %" PRIu64 ", answered %" PRIu64 ", missing %" PRIu64
		", unsent %" PRIu64 ", errors %.3f%%, malformed %" PRIu64 "\n",
		r->sent, r->responses, r->missing, r->unsent, mb_run_error_pct(r), r->proto_errors);
	if (r->interrupted != MB_PHASE_NONE) {
		fprintf(out, "interrupted     ");
		text_interrupted(rep, r, out);
		fprintf(out, "\n");
	}
	if (r->media)
		fprintf(out,
			"media           sent %" PRIu64 " with an audio file, %" PRIu64
			" with a video file\n",
			r->media_sent[MB_KIND_AUDIO], r->media_sent[MB_KIND_VIDEO]);
	fprintf(out,
		"latency ms      p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  "
		"(histogram precision %.2f%%)\n",
		mb_run_latency_ms(r, 50), mb_run_latency_ms(r, 90), mb_run_latency_ms(r, 99),
		mb_run_latency_ms(r, 99.9), mb_run_latency_ms(r, 100),
		mb_hist_mean(r->latency) / 1e6, 100 * MB_HIST_REL_PRECISION);
	fprintf(out, "status          ");
	for (unsigned int s = 0; s < MB_STATUS_COUNT; s++)
		if (r->status[s] > 0) {
			fprintf(out, "%s%s %" PRIu64, first ? "" : ", ", mb_status_name(s),
				r->status[s]);
			first = false;
		}
	fprintf(out, "%s\n", first ? "none" : "");
	for (unsigned int s = 1; s < MB_STATUS_COUNT; s++)
		if (r->status[s] > 0)
			fprintf(out, "                %s: %s\n", mb_status_name(s), r->reason[s]);
	fprintf(out, "batch size      mean %.2f, max %" PRIu64 "\n", batch_mean(r), r->batch_max);
	fprintf(out,
		"server side     queue_us mean %.0f p50 %" PRIu64 " p99 %" PRIu64
		"; compute_us mean %.0f p50 %" PRIu64 " p99 %" PRIu64 "\n",
		mb_hist_mean(r->queue_us), mb_hist_percentile(r->queue_us, 50),
		mb_hist_percentile(r->queue_us, 99), mb_hist_mean(r->compute_us),
		mb_hist_percentile(r->compute_us, 50), mb_hist_percentile(r->compute_us, 99));
	text_metrics_source(rep, out);
	text_stages(rep, r, out);
	if (r->metrics_ok)
		fprintf(out,
			"admission       wait mean %.3f ms over %.0f batches; units in use mean "
			"%.1f, max %.0f of %.0f\n",
			r->admission_batches > 0 ? 1000 * r->admission_wait_s / r->admission_batches
						 : 0.0,
			r->admission_batches, r->units_mean, r->units_max, r->units_capacity);
	else if (rep->metrics == NULL)
		fprintf(out, "admission       n/a (--metrics off)\n");
	else
		fprintf(out, "admission       n/a (no /metrics from %s)\n", rep->metrics);
	if (r->max_lag_ms > 1) {
		fprintf(out, "generator       ");
		text_lag(r, out);
		fprintf(out, "\n");
	}
	for (int i = 0; i < r->n_models && r->n_models > 1; i++)
		fprintf(out,
			"%-16s%-16s sent %" PRIu64 "  OK %" PRIu64 "  p50 %.3f ms  p99 %.3f ms\n",
			i == 0 ? "per model" : "", r->model[i].model, r->model[i].sent,
			r->model[i].ok, (double)mb_hist_percentile(r->model[i].latency, 50) / 1e6,
			(double)mb_hist_percentile(r->model[i].latency, 99) / 1e6);
}

static uint64_t
fleet_answered(const struct mb_perf_report *rep)
{
	uint64_t all = 0;

	for (int i = 0; i < rep->n_fleet; i++)
		all += rep->fleet[i].answered;
	return all;
}

/* "fleet": each daemon's share of the answers, its window, failovers and answer time */
static void
text_fleet(const struct mb_perf_report *rep, FILE *out)
{
	uint64_t all = fleet_answered(rep);

	if (rep->n_fleet == 0)
		return;
	fprintf(out,
		"fleet           %d daemon(s); resent %" PRIu64 ", duplicates dropped %" PRIu64
		", client timeouts %" PRIu64 ", malformed %" PRIu64 "\n",
		rep->n_fleet, rep->fleet_stats->resent, rep->fleet_stats->duplicates_dropped,
		rep->fleet_stats->client_timeouts, rep->fleet_stats->malformed);
	for (int i = 0; i < rep->n_fleet; i++) {
		const struct mb_client_daemon *d = &rep->fleet[i];

		fprintf(out,
			"  %-32s %s answered %" PRIu64 " (%.1f%%), overloaded %" PRIu64
			", failed over %" PRIu64 ", window %.0f, %.3f ms\n",
			d->endpoint, d->up ? "up  " : "down", d->answered,
			all ? 100.0 * (double)d->answered / (double)all : 0.0, d->overloaded,
			d->failed_over, d->window, d->latency_ms);
	}
}

static void json_str(FILE *out, const char *s);
static void json_num(FILE *out, double v);

static void
json_fleet(const struct mb_perf_report *rep, FILE *out)
{
	if (rep->n_fleet == 0) {
		fputs("null", out);
		return;
	}
	fprintf(out,
		"{\"resent\": %" PRIu64 ", \"duplicates_dropped\": %" PRIu64
		", \"client_timeouts\": %" PRIu64 ", \"malformed\": %" PRIu64 ", \"daemons\": [",
		rep->fleet_stats->resent, rep->fleet_stats->duplicates_dropped,
		rep->fleet_stats->client_timeouts, rep->fleet_stats->malformed);
	for (int i = 0; i < rep->n_fleet; i++) {
		const struct mb_client_daemon *d = &rep->fleet[i];

		fprintf(out, "%s{\"endpoint\": ", i ? ", " : "");
		json_str(out, d->endpoint);
		fprintf(out,
			", \"up\": %s, \"gone\": %s, \"sent\": %" PRIu64 ", \"answered\": %" PRIu64
			", \"overloaded\": %" PRIu64 ", \"failed_over\": %" PRIu64 ", \"window\": ",
			d->up ? "true" : "false", d->gone ? "true" : "false", d->sent, d->answered,
			d->overloaded, d->failed_over);
		json_num(out, d->window);
		fprintf(out, ", \"latency_ms\": ");
		json_num(out, d->latency_ms);
		fputc('}', out);
	}
	fputs("]}", out);
}

/*
 * Under a sweep's table, a line per step with something the table does not show: a window
 * shorter than planned (--requests, an interrupt: that step is not judged), a generator that
 * fell more than 1 ms behind its schedule, malformed responses.
 */
static void
text_sweep_notes(const struct mb_perf_report *rep, FILE *out)
{
	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_run_result *r = &rep->runs[i];

		if (r->interrupted != MB_PHASE_NONE) {
			fprintf(out, "step %-10d interrupted ", i + 1);
			text_interrupted(rep, r, out);
			fprintf(out, "; not judged\n");
		} else if (window_short(rep, r)) {
			fprintf(out,
				"step %-10d window %.3f s of %.3f s: --requests %" PRIu64
				" reached\n",
				i + 1, r->window_s, rep->duration_s, rep->max_requests);
		}
		if (r->max_lag_ms > 1) {
			fprintf(out, "step %-10d generator ", i + 1);
			text_lag(r, out);
			fprintf(out, "\n");
		}
		if (r->proto_errors > 0)
			fprintf(out, "step %-10d malformed responses %" PRIu64 "\n", i + 1,
				r->proto_errors);
	}
}

/* Misses of the SLO in a row at the end of the judged steps. */
static int
trailing_misses(const struct mb_perf_report *rep)
{
	int n = 0;

	for (int i = rep->n_runs - 1; i >= 0; i--) {
		if (!mb_report_judged(rep, i))
			continue;
		if (mb_report_slo_met(rep, i))
			break;
		n++;
	}
	return n;
}

/*
 * The sweep's verdict, from the judged (completed) steps only, and why it stopped early
 * when it did: an interrupt, --sweep-past misses in a row, or a failure (said on stderr).
 */
static void
text_sweep_verdict(const struct mb_perf_report *rep, FILE *out)
{
	bool interrupted =
		rep->n_runs > 0 && rep->runs[rep->n_runs - 1].interrupted != MB_PHASE_NONE;
	int best = mb_report_best(rep), done = 0, misses = trailing_misses(rep);

	for (int i = 0; i < rep->n_runs; i++)
		done += mb_report_judged(rep, i);
	fprintf(out, "highest offered rate with p99 <= %.3f ms and errors <= %.3f%%: ", rep->slo_ms,
		rep->max_error_pct);
	if (best >= 0)
		fprintf(out, "%.1f req/s (step %d: answered %.1f req/s, p99 %.3f ms)",
			rep->runs[best].offered_rps, best + 1, rep->runs[best].throughput_rps,
			mb_run_latency_ms(&rep->runs[best], 99));
	else if (!interrupted)
		fprintf(out, "none (no step met it; start the sweep lower)");
	else if (done == 0)
		fprintf(out, "none (no step completed)");
	else
		fprintf(out, "none (no completed step met it)");
	if (interrupted && done > 0)
		fprintf(out, "; from the %d completed step(s) only", done);
	fprintf(out, "\n");
	if (interrupted)
		fprintf(out,
			"(interrupted in step %d of %d: that step is not judged, the verdict comes "
			"from the completed steps only)\n",
			rep->n_runs, rep->sweep_steps);
	else if (rep->n_runs < rep->sweep_steps && rep->sweep_past > 0 &&
		 misses >= rep->sweep_past && best >= 0)
		fprintf(out,
			"(stopped after step %d of %d: %d step(s) in a row missed the SLO; with "
			"the "
			"steps before them they show the knee)\n",
			rep->n_runs, rep->sweep_steps, misses);
	else if (rep->n_runs < rep->sweep_steps && rep->sweep_past > 0 && misses >= rep->sweep_past)
		fprintf(out,
			"(stopped after step %d of %d: every step run missed the SLO, the first "
			"one "
			"included; start the sweep lower)\n",
			rep->n_runs, rep->sweep_steps);
	else if (rep->n_runs < rep->sweep_steps)
		fprintf(out,
			"(stopped after step %d of %d: it failed; see the message on stderr)\n",
			rep->n_runs, rep->sweep_steps);
}

void
mb_report_text(const struct mb_perf_report *rep, FILE *out)
{
	text_header(rep, out);
	if (rep->mode != MB_REPORT_SWEEP) {
		if (rep->n_runs > 0)
			text_run(rep, &rep->runs[0], out);
	} else {
		fprintf(out, "%4s %10s %11s %10s %8s %8s %9s %8s %8s %6s %4s\n", "step",
			"offered/s", "answered/s", "OK/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
			"errors%", "batch", "SLO");
		for (int i = 0; i < rep->n_runs; i++) {
			const struct mb_run_result *r = &rep->runs[i];

			fprintf(out,
				"%4d %10.1f %11.1f %10.1f %8.3f %8.3f %9.3f %8.3f %8.3f %6.2f "
				"%4s\n",
				i + 1, r->offered_rps, r->throughput_rps, r->ok_rps,
				mb_run_latency_ms(r, 50), mb_run_latency_ms(r, 99),
				mb_run_latency_ms(r, 99.9), mb_run_latency_ms(r, 100),
				mb_run_error_pct(r), batch_mean(r),
				!mb_report_judged(rep, i)   ? "n/a"
				: mb_report_slo_met(rep, i) ? "met"
							    : "-");
		}
		text_sweep_notes(rep, out);
		text_sweep_verdict(rep, out);
		text_metrics_source(rep, out);
		text_sweep_stages(rep, out);
	}
	text_fleet(rep, out);
	if (rep->plot_dir != NULL)
		fprintf(out, "plots           %s\n", rep->plot_note);
}

/* ---- JSON ---- */

static void
json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
json_num(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.10g", v);
	else
		fputs("null", out);
}

/* "key": number, with a leading comma unless first */
static void
kv_num(FILE *out, bool *first, const char *key, double v)
{
	fprintf(out, "%s\"%s\": ", *first ? "" : ", ", key);
	json_num(out, v);
	*first = false;
}

static void
kv_u64(FILE *out, bool *first, const char *key, uint64_t v)
{
	fprintf(out, "%s\"%s\": %" PRIu64, *first ? "" : ", ", key, v);
	*first = false;
}

/* {"queue": {mean_ms, share, p50_ms, p99_ms, count} | null, ...} of @st[MB_STAGE_COUNT] */
static void
json_stages(FILE *out, const struct mb_stage_stat *st)
{
	double sum = mb_stages_sum_ms(st);

	fputc('{', out);
	for (unsigned int s = 0; s < MB_STAGE_COUNT; s++) {
		double mean = mb_stage_mean_ms(&st[s]);
		bool f = true;

		fprintf(out, "%s\"%s\": ", s ? ", " : "", mb_stage_name(s));
		if (!st[s].ok) {
			fputs("null", out);
			continue;
		}
		fputc('{', out);
		kv_num(out, &f, "mean_ms", mean);
		kv_num(out, &f, "share", sum > 0 ? mean / sum : NAN);
		kv_num(out, &f, "p50_ms", 1000 * st[s].p50_s);
		kv_num(out, &f, "p99_ms", 1000 * st[s].p99_s);
		kv_num(out, &f, "count", st[s].count);
		fputc('}', out);
	}
	fputc('}', out);
}

static void
json_run(const struct mb_perf_report *rep, int i, FILE *out)
{
	const struct mb_run_result *r = &rep->runs[i];
	bool f = true;

	fprintf(out, "    {\"mode\": \"%s\", ", r->mode == MB_RUN_OPEN ? "open" : "closed");
	f = true;
	kv_num(out, &f, "offered_rps", r->offered_rps);
	if (r->mode == MB_RUN_CLOSED)
		kv_u64(out, &f, "outstanding", r->outstanding);
	else
		fprintf(out, ", \"outstanding\": null");
	kv_num(out, &f, "window_s", r->window_s);
	kv_u64(out, &f, "sent", r->sent);
	kv_u64(out, &f, "responses", r->responses);
	kv_u64(out, &f, "missing", r->missing);
	fprintf(out, ", \"interrupted\": %s, \"interrupted_in\": ",
		r->interrupted != MB_PHASE_NONE ? "true" : "false");
	if (r->interrupted != MB_PHASE_NONE)
		json_str(out, mb_run_phase_name(r->interrupted));
	else
		fputs("null", out);
	kv_u64(out, &f, "in_flight_at_interrupt", r->in_flight_at_interrupt);
	kv_u64(out, &f, "unsent", r->unsent);
	kv_u64(out, &f, "stray", r->stray);
	kv_u64(out, &f, "proto_errors", r->proto_errors);
	kv_num(out, &f, "throughput_rps", r->throughput_rps);
	kv_num(out, &f, "ok_rps", r->ok_rps);
	kv_num(out, &f, "error_pct", mb_run_error_pct(r));
	kv_num(out, &f, "max_lag_ms", r->max_lag_ms);
	if (r->mode == MB_RUN_OPEN)
		kv_num(out, &f, "lag_p99_ms", lag_p99_ms(r));
	else
		fprintf(out, ", \"lag_p99_ms\": null");
	fprintf(out, ", \"slo_met\": %s, \"media_sent\": ",
		!mb_report_judged(rep, i)   ? "null"
		: mb_report_slo_met(rep, i) ? "true"
					    : "false");
	if (r->media)
		fprintf(out, "{\"audio\": %" PRIu64 ", \"video\": %" PRIu64 "}",
			r->media_sent[MB_KIND_AUDIO], r->media_sent[MB_KIND_VIDEO]);
	else
		fputs("null", out);
	fprintf(out, ",\n     \"latency_ms\": {");
	f = true;
	kv_num(out, &f, "p50", mb_run_latency_ms(r, 50));
	kv_num(out, &f, "p90", mb_run_latency_ms(r, 90));
	kv_num(out, &f, "p99", mb_run_latency_ms(r, 99));
	kv_num(out, &f, "p99_9", mb_run_latency_ms(r, 99.9));
	kv_num(out, &f, "max", mb_run_latency_ms(r, 100));
	kv_num(out, &f, "min", r->latency->count ? (double)r->latency->min / 1e6 : 0.0);
	kv_num(out, &f, "mean", mb_hist_mean(r->latency) / 1e6);
	kv_u64(out, &f, "count", r->latency->count);
	fprintf(out, "},\n     \"status\": {");
	f = true;
	for (unsigned int s = 0; s < MB_STATUS_COUNT; s++)
		kv_u64(out, &f, mb_status_name(s), r->status[s]);
	fprintf(out, "},\n     \"reasons\": {");
	f = true;
	for (unsigned int s = 1; s < MB_STATUS_COUNT; s++)
		if (r->status[s] > 0) {
			fprintf(out, "%s\"%s\": ", f ? "" : ", ", mb_status_name(s));
			json_str(out, r->reason[s]);
			f = false;
		}
	fprintf(out, "},\n     \"batch_size\": {");
	f = true;
	kv_num(out, &f, "mean", batch_mean(r));
	kv_u64(out, &f, "max", r->batch_max);
	kv_u64(out, &f, "count", r->batch_n);
	fprintf(out, "},\n     \"queue_us\": {");
	f = true;
	kv_num(out, &f, "mean", mb_hist_mean(r->queue_us));
	kv_u64(out, &f, "p50", mb_hist_percentile(r->queue_us, 50));
	kv_u64(out, &f, "p99", mb_hist_percentile(r->queue_us, 99));
	fprintf(out, "}, \"compute_us\": {");
	f = true;
	kv_num(out, &f, "mean", mb_hist_mean(r->compute_us));
	kv_u64(out, &f, "p50", mb_hist_percentile(r->compute_us, 50));
	kv_u64(out, &f, "p99", mb_hist_percentile(r->compute_us, 99));
	fprintf(out, "},\n     \"metrics\": ");
	if (r->metrics_ok) {
		fprintf(out, "{");
		f = true;
		kv_num(out, &f, "admission_wait_ms_mean",
		       r->admission_batches > 0 ? 1000 * r->admission_wait_s / r->admission_batches
						: 0.0);
		kv_num(out, &f, "admitted_batches", r->admission_batches);
		kv_num(out, &f, "units_in_use_mean", r->units_mean);
		kv_num(out, &f, "units_in_use_max", r->units_max);
		kv_num(out, &f, "units_capacity", r->units_capacity);
		kv_u64(out, &f, "samples", (uint64_t)r->units_samples);
		fprintf(out, "}");
	} else {
		fprintf(out, "null");
	}
	fprintf(out, ", \"metrics_answered\": %d, \"metrics_missing\": [",
		metrics_answered(rep, r));
	f = true;
	for (int e = 0; e < metrics_listed(rep); e++) {
		if (metrics_has(r, e))
			continue;
		fputs(f ? "" : ", ", out);
		json_str(out, metrics_ep(rep, e));
		f = false;
	}
	fputc(']', out);
	fprintf(out, ",\n     \"stages\": ");
	if (r->metrics_ok && r->stages_ok)
		json_stages(out, r->stages);
	else
		fputs("null", out);
	fprintf(out, ",\n     \"stages_sum_ms\": ");
	json_num(out, r->metrics_ok && r->stages_ok ? mb_stages_sum_ms(r->stages) : NAN);
	fprintf(out, ", \"batches_closed\": ");
	if (r->metrics_ok && r->closed_ok) {
		fputc('{', out);
		f = true;
		for (unsigned int c = 0; c < MB_CLOSED_REASONS; c++)
			kv_num(out, &f, mb_closed_reason_name(c), r->batches_closed[c]);
		fputc('}', out);
	} else {
		fputs("null", out);
	}
	fprintf(out, ",\n     \"models\": [");
	for (int m = 0; m < r->n_models; m++) {
		fprintf(out, "%s{\"model\": ", m ? ", " : "");
		json_str(out, r->model[m].model);
		f = false;
		kv_u64(out, &f, "sent", r->model[m].sent);
		kv_u64(out, &f, "responses", r->model[m].responses);
		kv_u64(out, &f, "ok", r->model[m].ok);
		kv_num(out, &f, "p50_ms",
		       (double)mb_hist_percentile(r->model[m].latency, 50) / 1e6);
		kv_num(out, &f, "p99_ms",
		       (double)mb_hist_percentile(r->model[m].latency, 99) / 1e6);
		fprintf(out, ", \"stages\": ");
		if (r->metrics_ok && r->stages_ok && r->model[m].stages_ok)
			json_stages(out, r->model[m].stages);
		else
			fputs("null", out);
		fprintf(out, "}");
	}
	fprintf(out, "]}");
}

/* "media": the directory, its files and what was sent of them; null without --media */
static void
json_media(const struct mb_replay *m, FILE *out)
{
	bool f = true;

	if (m == NULL) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"dir\": ");
	json_str(out, m->dir);
	f = false;
	kv_u64(out, &f, "files", m->n_files);
	kv_u64(out, &f, "audio_files", m->n_audio);
	kv_u64(out, &f, "video_files", m->n_video);
	kv_u64(out, &f, "audio_files_used", mb_replay_used(m, MB_KIND_AUDIO));
	kv_u64(out, &f, "video_files_used", mb_replay_used(m, MB_KIND_VIDEO));
	kv_u64(out, &f, "memory_bytes", m->bytes);
	fprintf(out, ", \"audio_rates\": [");
	for (int k = 0; k < m->n_rates; k++)
		fprintf(out, "%s%" PRIu32, k ? ", " : "", m->rates[k]);
	fprintf(out, "],\n   \"list\": [");
	for (uint32_t i = 0; i < m->n_files; i++) {
		const struct mb_replay_file *file = &m->files[i];
		bool audio = file->kind == MB_KIND_AUDIO;
		int n = audio ? m->n_rates : 1;

		fprintf(out, "%s{\"name\": ", i ? ",\n    " : "");
		json_str(out, file->name);
		fprintf(out, ", \"kind\": \"%s\"", audio ? "audio" : "video");
		f = false;
		kv_u64(out, &f, "sent", file->sent);
		fprintf(out, ", \"bytes\": [");
		for (int k = 0; k < n; k++)
			fprintf(out, "%s%" PRIu32, k ? ", " : "", file->len[k]);
		fprintf(out, "]");
		if (audio) {
			fprintf(out, ", \"format\": ");
			json_str(out, file->format);
			kv_u64(out, &f, "rate", file->rate);
			kv_u64(out, &f, "channels", file->channels);
			kv_num(out, &f, "seconds", file->seconds);
		} else {
			kv_u64(out, &f, "frames", file->frames);
			kv_u64(out, &f, "height", file->height);
			kv_u64(out, &f, "width", file->width);
		}
		fputc('}', out);
	}
	fprintf(out, "]}");
}

int
mb_report_json(const struct mb_perf_report *rep, FILE *out)
{
	static const char *const modes[] = {"closed", "open", "sweep"};
	char secs[64];
	bool f;
	int best = mb_report_best(rep);

	mb_dist_format(rep->seconds, secs, sizeof(secs));
	fprintf(out, "{\"tool\": \"mediabatch-perf\", \"version\": \"%s\", \"mode\": \"%s\",\n",
		MB_VERSION, modes[rep->mode]);
	fprintf(out, " \"config\": {\"endpoint\": ");
	json_str(out, rep->endpoint);
	fprintf(out, ", \"transport\": ");
	json_str(out, rep->transport);
	fprintf(out, ", \"metrics\": ");
	if (rep->metrics)
		json_str(out, rep->metrics);
	else
		fputs("null", out);
	fprintf(out, ", \"metrics_endpoints\": ");
	if (rep->metrics) {
		fputc('[', out);
		for (int i = 0; i < metrics_listed(rep); i++) {
			fputs(i ? ", " : "", out);
			json_str(out, metrics_ep(rep, i));
		}
		fputc(']', out);
	} else {
		fputs("null", out);
	}
	fprintf(out, ", \"mix\": [");
	for (int i = 0; i < rep->mix->n; i++) {
		fprintf(out, "%s{\"model\": ", i ? ", " : "");
		json_str(out, rep->mix->e[i].model);
		fprintf(out, ", \"weight\": ");
		json_num(out, rep->mix->e[i].weight);
		fprintf(out, "}");
	}
	fprintf(out, "], \"seconds\": ");
	json_str(out, secs);
	f = false;
	kv_u64(out, &f, "payload_bytes", rep->payload_bytes);
	kv_u64(out, &f, "seed", rep->seed);
	kv_num(out, &f, "warmup_s", rep->warmup_s);
	kv_num(out, &f, "duration_s", rep->duration_s);
	kv_num(out, &f, "drain_s", rep->drain_s);
	kv_u64(out, &f, "max_requests", rep->max_requests);
	kv_num(out, &f, "slo_ms", rep->slo_ms);
	kv_num(out, &f, "max_error_pct", rep->max_error_pct);
	fprintf(out, "},\n \"runs\": [\n");
	for (int i = 0; i < rep->n_runs; i++) {
		json_run(rep, i, out);
		fprintf(out, "%s\n", i + 1 < rep->n_runs ? "," : "");
	}
	fprintf(out, " ],\n \"sweep\": ");
	if (rep->mode == MB_REPORT_SWEEP) {
		fprintf(out, "{");
		f = true;
		kv_num(out, &f, "from_rps", rep->sweep_from);
		kv_num(out, &f, "to_rps", rep->sweep_to);
		kv_u64(out, &f, "steps", (uint64_t)rep->sweep_steps);
		kv_u64(out, &f, "steps_run", (uint64_t)rep->n_runs);
		kv_num(out, &f, "slo_ms", rep->slo_ms);
		kv_num(out, &f, "max_error_pct", rep->max_error_pct);
		kv_u64(out, &f, "sweep_past", (uint64_t)rep->sweep_past);
		fprintf(out, ", \"best_rps\": ");
		json_num(out, best >= 0 ? rep->runs[best].offered_rps : NAN);
		/* best_index counts from 0 (runs[]), best_step from 1 (the text's and CSV's step)
		 */
		fprintf(out, ", \"best_index\": ");
		if (best >= 0)
			fprintf(out, "%d, \"best_step\": %d", best, best + 1);
		else
			fputs("null, \"best_step\": null", out);
		fprintf(out, "}");
	} else {
		fputs("null", out);
	}
	fprintf(out, ",\n \"media\": ");
	json_media(rep->media, out);
	fprintf(out, ",\n \"fleet\": ");
	json_fleet(rep, out);
	fprintf(out, ",\n \"histogram_precision\": ");
	json_num(out, MB_HIST_REL_PRECISION);
	fprintf(out, ",\n \"plots\": ");
	if (rep->plot_dir != NULL) {
		fprintf(out, "{\"dir\": ");
		json_str(out, rep->plot_dir);
		fprintf(out, ", \"gnuplot\": %s, \"note\": ", rep->plotted ? "true" : "false");
		json_str(out, rep->plot_note);
		fprintf(out, ", \"files\": [");
		for (int i = 0; i < rep->n_plot_files; i++) {
			fprintf(out, "%s", i ? ", " : "");
			json_str(out, rep->plot_files[i]);
		}
		fprintf(out, "]}");
	} else {
		fputs("null", out);
	}
	fprintf(out, "\n}\n");
	return ferror(out) ? -EIO : 0;
}

/* ---- CSV ---- */

/* ",number" in the JSON's own digits, or "," alone for n/a (a JSON null) */
static void
csv_num(FILE *out, double v)
{
	fputc(',', out);
	if (isfinite(v))
		json_num(out, v);
}

static void
csv_u64(FILE *out, uint64_t v)
{
	fprintf(out, ",%" PRIu64, v);
}

static void
csv_empty(FILE *out, int n)
{
	for (int i = 0; i < n; i++)
		fputc(',', out);
}

static void
csv_header(FILE *out)
{
	fputs("mode,step,offered_rps,outstanding,window_s,sent,responses,missing,unsent,stray,"
	      "proto_errors,throughput_rps,ok_rps,error_pct,max_lag_ms,slo_met,"
	      "latency_p50_ms,latency_p90_ms,latency_p99_ms,latency_p99_9_ms,latency_max_ms,"
	      "latency_min_ms,latency_mean_ms,latency_count",
	      out);
	for (unsigned int s = 0; s < MB_STATUS_COUNT; s++)
		fprintf(out, ",status_%s", mb_status_name(s));
	fputs(",batch_mean,batch_max,batch_count,queue_us_mean,queue_us_p50,queue_us_p99,"
	      "compute_us_mean,compute_us_p50,compute_us_p99,admission_wait_ms_mean,"
	      "admitted_batches,units_in_use_mean,units_in_use_max,units_capacity,stages_sum_ms",
	      out);
	for (unsigned int s = 0; s < MB_STAGE_COUNT; s++)
		fprintf(out, ",stage_%s_ms", mb_stage_name(s));
	for (unsigned int c = 0; c < MB_CLOSED_REASONS; c++)
		fprintf(out, ",batches_closed_%s", mb_closed_reason_name(c));
	fputs(",media_audio_sent,media_video_sent,lag_p99_ms,interrupted,interrupted_in,"
	      "in_flight_at_interrupt\n",
	      out);
}

static void
csv_run(const struct mb_perf_report *rep, int i, FILE *out)
{
	const struct mb_run_result *r = &rep->runs[i];

	fprintf(out, "%s,%d", r->mode == MB_RUN_OPEN ? "open" : "closed", i + 1);
	csv_num(out, r->offered_rps);
	if (r->mode == MB_RUN_CLOSED)
		csv_u64(out, r->outstanding);
	else
		csv_empty(out, 1);
	csv_num(out, r->window_s);
	csv_u64(out, r->sent);
	csv_u64(out, r->responses);
	csv_u64(out, r->missing);
	csv_u64(out, r->unsent);
	csv_u64(out, r->stray);
	csv_u64(out, r->proto_errors);
	csv_num(out, r->throughput_rps);
	csv_num(out, r->ok_rps);
	csv_num(out, mb_run_error_pct(r));
	csv_num(out, r->max_lag_ms);
	if (mb_report_judged(rep, i))
		csv_u64(out, mb_report_slo_met(rep, i) ? 1 : 0);
	else
		csv_empty(out, 1); /* not judged: JSON null */
	csv_num(out, mb_run_latency_ms(r, 50));
	csv_num(out, mb_run_latency_ms(r, 90));
	csv_num(out, mb_run_latency_ms(r, 99));
	csv_num(out, mb_run_latency_ms(r, 99.9));
	csv_num(out, mb_run_latency_ms(r, 100));
	csv_num(out, r->latency->count ? (double)r->latency->min / 1e6 : 0.0);
	csv_num(out, mb_hist_mean(r->latency) / 1e6);
	csv_u64(out, r->latency->count);
	for (unsigned int s = 0; s < MB_STATUS_COUNT; s++)
		csv_u64(out, r->status[s]);
	csv_num(out, batch_mean(r));
	csv_u64(out, r->batch_max);
	csv_u64(out, r->batch_n);
	csv_num(out, mb_hist_mean(r->queue_us));
	csv_u64(out, mb_hist_percentile(r->queue_us, 50));
	csv_u64(out, mb_hist_percentile(r->queue_us, 99));
	csv_num(out, mb_hist_mean(r->compute_us));
	csv_u64(out, mb_hist_percentile(r->compute_us, 50));
	csv_u64(out, mb_hist_percentile(r->compute_us, 99));
	if (r->metrics_ok) {
		csv_num(out, r->admission_batches > 0
				     ? 1000 * r->admission_wait_s / r->admission_batches
				     : 0.0);
		csv_num(out, r->admission_batches);
		csv_num(out, r->units_mean);
		csv_num(out, r->units_max);
		csv_num(out, r->units_capacity);
	} else {
		csv_empty(out, 5);
	}
	if (r->metrics_ok && r->stages_ok) {
		csv_num(out, mb_stages_sum_ms(r->stages));
		for (unsigned int s = 0; s < MB_STAGE_COUNT; s++)
			csv_num(out, r->stages[s].ok ? mb_stage_mean_ms(&r->stages[s]) : NAN);
	} else {
		csv_empty(out, 1 + MB_STAGE_COUNT);
	}
	if (r->metrics_ok && r->closed_ok)
		for (unsigned int c = 0; c < MB_CLOSED_REASONS; c++)
			csv_num(out, r->batches_closed[c]);
	else
		csv_empty(out, MB_CLOSED_REASONS);
	if (r->media) {
		csv_u64(out, r->media_sent[MB_KIND_AUDIO]);
		csv_u64(out, r->media_sent[MB_KIND_VIDEO]);
	} else {
		csv_empty(out, 2);
	}
	if (r->mode == MB_RUN_OPEN)
		csv_num(out, lag_p99_ms(r));
	else
		csv_empty(out, 1);
	csv_u64(out, r->interrupted != MB_PHASE_NONE ? 1 : 0);
	if (r->interrupted != MB_PHASE_NONE)
		fprintf(out, ",%s", mb_run_phase_name(r->interrupted));
	else
		csv_empty(out, 1);
	csv_u64(out, r->in_flight_at_interrupt);
	fputc('\n', out);
}

int
mb_report_csv(const struct mb_perf_report *rep, FILE *out)
{
	csv_header(out);
	for (int i = 0; i < rep->n_runs; i++)
		csv_run(rep, i, out);
	return ferror(out) ? -EIO : 0;
}

/* ---- plots ---- */

static FILE *
open_in(const char *dir, const char *name, struct mb_perf_report *rep)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f != NULL && rep->n_plot_files < 8)
		snprintf(rep->plot_files[rep->n_plot_files++], sizeof(rep->plot_files[0]), "%s",
			 name);
	return f;
}

static void
run_title(const struct mb_run_result *r, char *buf, size_t len)
{
	if (r->mode == MB_RUN_OPEN)
		snprintf(buf, len, "%.0f req/s offered", r->offered_rps);
	else
		snprintf(buf, len, "%" PRIu32 " outstanding", r->outstanding);
}

static const char g_term[] = "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
			     "  set terminal pngcairo size %d,%d noenhanced font \",9\"\n"
			     "} else {\n"
			     "  set terminal png size %d,%d noenhanced\n"
			     "}\n";

static int
write_cdf(struct mb_perf_report *rep, const char *dir)
{
	FILE *d = open_in(dir, "latency_cdf.dat", rep), *g;

	if (d == NULL)
		return -errno;
	fprintf(d, "# mediabatch-perf latency distribution: one block per run\n"
		   "# latency_ms (bucket upper edge)  fraction <= it\n");
	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_hist *h = rep->runs[i].latency;
		uint64_t seen = 0;
		char t[64];

		run_title(&rep->runs[i], t, sizeof(t));
		fprintf(d, "%s# run %d: %s\n", i ? "\n\n" : "", i + 1, t);
		if (h->count == 0)
			fprintf(d, "0 0\n"); /* an empty block would shift gnuplot's indices */
		for (unsigned int b = 0; b < MB_HIST_BUCKETS && seen < h->count; b++) {
			uint64_t hi;

			if (h->buckets[b] == 0)
				continue;
			seen += h->buckets[b];
			hi = mb_hist_bucket_low(b) + mb_hist_bucket_width(b);
			if (hi > h->max)
				hi = h->max;
			fprintf(d, "%.6f %.9f\n", (double)hi / 1e6,
				(double)seen / (double)h->count);
		}
	}
	if (fclose(d) != 0)
		return -EIO;
	g = open_in(dir, "latency_cdf.gp", rep);
	if (g == NULL)
		return -errno;
	fprintf(g, "# gnuplot script written by mediabatch-perf: gnuplot latency_cdf.gp\n");
	fprintf(g, g_term, 1100, 440, 1100, 440);
	fprintf(g, "set output 'latency_cdf.png'\n"
		   "set multiplot layout 1,2 title 'mediabatch-perf: latency'\n"
		   "set logscale x\nset grid\nset key bottom right\n"
		   "set xlabel 'latency (ms)'\nset ylabel 'fraction of requests'\n"
		   "set yrange [0:1]\nset title 'CDF'\n");
	fprintf(g, "plot ");
	for (int i = 0; i < rep->n_runs; i++) {
		char t[64];

		run_title(&rep->runs[i], t, sizeof(t));
		fprintf(g, "%s'latency_cdf.dat' index %d using 1:2 with steps lw 2 title '%s'",
			i ? ", \\\n     " : "", i, t);
	}
	fprintf(g, "\nunset logscale x\nset logscale xy\nset key top left\n"
		   "set title 'percentile (tail)'\nset yrange [*:*]\nset xrange [1:100000]\n"
		   "set xlabel 'percentile'\nset ylabel 'latency (ms)'\n"
		   "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
		   "'99.99%%%%' 10000, '99.999%%%%' 100000)\n");
	fprintf(g, "plot ");
	for (int i = 0; i < rep->n_runs; i++) {
		char t[64];

		run_title(&rep->runs[i], t, sizeof(t));
		fprintf(g,
			"%s'latency_cdf.dat' index %d using ($2 < 1 ? 1/(1-$2) : 100000):1 with "
			"steps lw 2 title '%s'",
			i ? ", \\\n     " : "", i, t);
	}
	fprintf(g, "\nunset multiplot\n");
	return fclose(g) == 0 ? 0 : -EIO;
}

static int
write_sweep(struct mb_perf_report *rep, const char *dir)
{
	FILE *d = open_in(dir, "sweep.dat", rep), *g;
	int best = mb_report_best(rep);

	if (d == NULL)
		return -errno;
	fprintf(d, "# offered_rps answered_rps ok_rps p50_ms p99_ms p99_9_ms max_ms error_pct "
		   "slo_met\n");
	for (int i = 0; i < rep->n_runs; i++) {
		const struct mb_run_result *r = &rep->runs[i];

		fprintf(d, "%.3f %.3f %.3f %.6f %.6f %.6f %.6f %.6f %d\n", r->offered_rps,
			r->throughput_rps, r->ok_rps, mb_run_latency_ms(r, 50),
			mb_run_latency_ms(r, 99), mb_run_latency_ms(r, 99.9),
			mb_run_latency_ms(r, 100), mb_run_error_pct(r), mb_report_slo_met(rep, i));
	}
	if (fclose(d) != 0)
		return -EIO;
	g = open_in(dir, "sweep.gp", rep);
	if (g == NULL)
		return -errno;
	fprintf(g, "# gnuplot script written by mediabatch-perf: gnuplot sweep.gp\n");
	fprintf(g, g_term, 800, 760, 800, 760);
	fprintf(g, "set output 'sweep.png'\n"
		   "set multiplot layout 2,1 title 'mediabatch-perf: open-loop sweep'\n"
		   "set grid\nset key top left\nset xlabel 'offered load (req/s)'\n"
		   "set ylabel 'throughput (req/s)'\nset title 'throughput'\n"
		   "plot 'sweep.dat' using 1:2 with linespoints lw 2 pt 7 title 'answered', \\\n"
		   "     'sweep.dat' using 1:3 with linespoints lw 2 pt 5 title 'OK', \\\n"
		   "     x with lines dt 2 lc rgb 'gray' title 'offered'\n"
		   "set logscale y\nset ylabel 'latency (ms)'\nset title 'latency'\n"
		   "set key bottom right\n");
	if (best >= 0)
		fprintf(g,
			"set arrow from %.3f, graph 0 to %.3f, graph 1 nohead dt 3 lc rgb "
			"'dark-green'\n"
			"set label 'highest rate under SLO: %.0f req/s' at %.3f, graph 0.94 "
			"offset 1,0\n",
			rep->runs[best].offered_rps, rep->runs[best].offered_rps,
			rep->runs[best].offered_rps, rep->runs[best].offered_rps);
	fprintf(g,
		"plot 'sweep.dat' using 1:4 with linespoints lw 2 pt 7 title 'p50', \\\n"
		"     'sweep.dat' using 1:5 with linespoints lw 2 pt 5 title 'p99', \\\n"
		"     %.6f with lines dt 2 lc rgb 'red' title 'SLO %.3g ms (p99)'\n"
		"unset multiplot\n",
		rep->slo_ms, rep->slo_ms);
	return fclose(g) == 0 ? 0 : -EIO;
}

/* Run gnuplot on @script in @dir: 0 if it made its PNG, -ENOENT if it is not installed. */
static int
run_gnuplot(const char *dir, const char *script)
{
	const char *gp = getenv("MB_PERF_GNUPLOT");
	double waited = 0;
	int status;
	pid_t pid;

	if (gp == NULL || gp[0] == '\0')
		gp = "gnuplot";
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		execlp(gp, gp, script, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		struct timespec ts = {0, 20 * 1000000L};

		if (waited > GNUPLOT_TIMEOUT_S) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
		waited += 0.02;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int
mb_report_plot(struct mb_perf_report *rep, const char *dir)
{
	const char *scripts[2] = {"latency_cdf.gp", "sweep.gp"};
	int n = rep->mode == MB_REPORT_SWEEP ? 2 : 1, rc;

	rep->plot_dir = dir;
	rep->n_plot_files = 0;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(rep->plot_note, sizeof(rep->plot_note), "cannot create %s: %s", dir,
			 strerror(-rc));
		return rc;
	}
	rc = write_cdf(rep, dir);
	if (rc == 0 && n == 2)
		rc = write_sweep(rep, dir);
	if (rc < 0) {
		snprintf(rep->plot_note, sizeof(rep->plot_note), "cannot write in %s: %s", dir,
			 strerror(-rc));
		return rc;
	}
	for (int i = 0; i < n; i++) {
		rc = run_gnuplot(dir, scripts[i]);
		if (rc == -ENOENT) {
			snprintf(rep->plot_note, sizeof(rep->plot_note),
				 "gnuplot is not installed: wrote the data and scripts to %s; for "
				 "the PNGs install gnuplot-nox (deploy/install-deps.sh) and run "
				 "'cd %s && gnuplot *.gp'",
				 dir, dir);
			return 0;
		}
		if (rc < 0) {
			snprintf(rep->plot_note, sizeof(rep->plot_note),
				 "gnuplot failed on %s/%s (%s); the data and scripts are there",
				 dir, scripts[i], strerror(-rc));
			return 0;
		}
	}
	for (int i = 0; i < n && rep->n_plot_files < 8; i++)
		snprintf(rep->plot_files[rep->n_plot_files++], sizeof(rep->plot_files[0]), "%s",
			 i == 0 ? "latency_cdf.png" : "sweep.png");
	rep->plotted = true;
	if (n == 2)
		snprintf(rep->plot_note, sizeof(rep->plot_note), "%s/latency_cdf.png, %s/sweep.png",
			 dir, dir);
	else
		snprintf(rep->plot_note, sizeof(rep->plot_note), "%s/latency_cdf.png", dir);
	return 0;
}
