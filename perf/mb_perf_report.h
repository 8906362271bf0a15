/**
 * @file
 * mediabatch-perf's reports: the text summary, the JSON document (--json), the CSV table
 * (--csv) and the plot files (--plot: gnuplot data, scripts, and the PNGs when gnuplot is
 * installed).
 *
 * The text, the JSON and the CSV come from the same numbers: every figure printed in the
 * text is in the JSON (milliseconds with 3 decimals in the text, full precision in the JSON:
 * 10 significant digits), and the CSV's cells are the JSON's numbers as the JSON writes them.
 * JSON layout, one object:
 *
 *     {"tool": "mediabatch-perf", "version", "mode": "closed"|"open"|"sweep",
 *      "config": {endpoint, transport, metrics, metrics_endpoints,
 *                 mix: [{model, weight}], seconds,
 *                 payload_bytes, seed, warmup_s, duration_s, drain_s, max_requests,
 *                 slo_ms, max_error_pct},
 *      "runs": [{mode, offered_rps, outstanding, window_s, sent, responses, missing,
 *                interrupted: true | false,
 *                interrupted_in: null | "warmup" | "window" | "drain",
 *                in_flight_at_interrupt, unsent, stray, proto_errors, throughput_rps,
 *                ok_rps, error_pct, max_lag_ms,
 *                lag_p99_ms (open loop; null in closed loop),
 *                slo_met: true | false | null (interrupted: not judged),
 *                media_sent: null | {audio, video},
 *                latency_ms: {p50, p90, p99, p99_9, max, min, mean, count},
 *                status: {"OK": n, ...}, reasons: {"OVERLOADED": "text", ...},
 *                batch_size: {mean, max, count},
 *                queue_us: {mean, p50, p99}, compute_us: {mean, p50, p99},
 *                metrics: null | {admission_wait_ms_mean, admitted_batches,
 *                                 units_in_use_mean, units_in_use_max, units_capacity,
 *                                 samples},
 *                metrics_answered, metrics_missing: [endpoint, ...],
 *                stages: null | STAGES, stages_sum_ms: null | ms,
 *                batches_closed: null | {full, deadline, drain},
 *                models: [{model, sent, responses, ok, p50_ms, p99_ms,
 *                          stages: null | STAGES}]}],
 *      "sweep": null | {from_rps, to_rps, steps, steps_run, slo_ms, max_error_pct,
 *                       sweep_past, best_rps, best_index, best_step},
 *      "media": null | {dir, files, audio_files, video_files, audio_files_used,
 *                       video_files_used, memory_bytes, audio_rates: [Hz, ...],
 *                       list: [{name, kind: "audio"|"video", sent, bytes: [...],
 *                               audio: format, rate, channels, seconds;
 *                               video: frames, height, width}]},
 *      "histogram_precision": 0.0039, "plots": null | {dir, gnuplot, files: [...]}}
 *
 * window_s is the measured window that ran: duration_s, or less when --requests ended it
 * (sent == max_requests) or the run was interrupted in it (0 in the warm-up). An interrupted
 * run (SIGINT, SIGTERM; only the last run can be) stopped where interrupted_in says, without
 * a drain: its measured requests then in flight are in_flight_at_interrupt, counted neither
 * in responses nor missing nor error_pct (responses + missing + in_flight_at_interrupt ==
 * sent), and it is not judged against the SLO (slo_met null; a sweep's best is chosen from
 * the other steps). error_pct is (responses not OK + missing + unsent) / (sent + unsent -
 * in_flight_at_interrupt). proto_errors counts malformed responses (as mb_client_recv()
 * checks them) received in the run, warm-up and drain included; one whose header names a
 * request in flight answers it UNAVAILABLE; with a fleet it is the fleet client's malformed
 * count over the run. A sweep's best_index counts from 0 (an index into runs), best_step
 * from 1 (the text's and CSV's step): best_step == best_index + 1; both null when no
 * step met the SLO.
 *
 *     STAGES = {"queue": STAGE, "admission": STAGE, "dispatch": STAGE, "compute": STAGE,
 *               "egress": STAGE}
 *     STAGE  = null (the daemon exports no such stage) |
 *              {mean_ms, share, p50_ms, p99_ms, count}
 *
 * The stage figures are the server's, from mediabatch_stage_seconds{model,stage} over the
 * run's window (change between the scrapes at its start and after its drain): mean_ms is
 * the change of _sum over the change of _count, share the stage's mean over stages_sum_ms
 * (the sum of the stage means: the mean server time of a request), p50_ms and p99_ms
 * estimates from the change of the cumulative buckets (linear inside the bucket, as
 * Prometheus' histogram_quantile), count the requests observed; mean_ms, share, p50_ms and
 * p99_ms are null when count is 0. "stages" covers every model of the daemon, a model's
 * "stages" that model alone. batches_closed is the change of
 * mediabatch_batches_closed_total{reason} over every model. All null when /metrics did not
 * answer (metrics null) or the daemon exports no such series (older than the stages).
 *
 * /metrics of several daemons (a fleet; --metrics EP,EP,...): config.metrics is --metrics as
 * given (a string: one endpoint, or the comma-separated list; null with --metrics off) and
 * config.metrics_endpoints the endpoints it lists (an array, one element for one endpoint;
 * null with --metrics off). A run's server-side figures (metrics, stages, stages_sum_ms,
 * batches_closed) are the sum over the listed daemons that answered at the window's start, in
 * it and after the drain: metrics_answered of them (0 .. the endpoints listed; 0 exactly when
 * metrics is null), the others in metrics_missing (each as listed; [] with --metrics off).
 * Summed: each stage histogram's buckets, _sum and _count (then mean_ms, share and the
 * estimates from the sum), each reason of batches_closed, the admission waits and
 * admitted_batches (admission_wait_ms_mean: total wait / all batches), units_in_use_mean (the
 * sum of each daemon's mean), units_in_use_max (the sum of each daemon's highest sample: at
 * least the fleet's peak), units_capacity, samples (all daemons' samples). A stage is null
 * unless every daemon summed has it (the same bucket bounds, no restart); a model's stage sums
 * the daemons that have it; batches_closed is null unless every daemon summed has it.
 *
 * With --media, "media" describes the directory: its files by kind, those sent at least once
 * (_used), the payload bytes held, the audio rates the mix takes, and per file (name order)
 * how many requests carried it over the whole program (warm-ups and every step included)
 * and its payload bytes (audio: one entry per rate of audio_rates; video: one); a run's
 * media_sent counts its measured requests by the kind of file they carried.
 *
 * CSV (--csv): a header line, then one row per run (per sweep step), comma-separated, no
 * quoting needed (no cell holds a comma). An empty cell is a JSON null (n/a). Columns:
 *
 *     mode, step (1-based), offered_rps, outstanding (empty in open loop), window_s,
 *     sent, responses, missing, unsent, stray, proto_errors, throughput_rps, ok_rps,
 *     error_pct, max_lag_ms, slo_met (1 or 0; empty when interrupted),
 *     latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_p99_9_ms, latency_max_ms,
 *     latency_min_ms, latency_mean_ms, latency_count,
 *     status_OK, status_BAD_REQUEST, ... (one per status, the protocol's order:
 *     mb_status_name() of 0 .. MB_STATUS_COUNT - 1),
 *     batch_mean, batch_max, batch_count, queue_us_mean, queue_us_p50, queue_us_p99,
 *     compute_us_mean, compute_us_p50, compute_us_p99,
 *     admission_wait_ms_mean, admitted_batches, units_in_use_mean, units_in_use_max,
 *     units_capacity (empty without /metrics),
 *     stages_sum_ms, stage_queue_ms, stage_admission_ms, stage_dispatch_ms,
 *     stage_compute_ms, stage_egress_ms (each stage's mean_ms),
 *     batches_closed_full, batches_closed_deadline, batches_closed_drain,
 *     media_audio_sent, media_video_sent (empty without --media),
 *     lag_p99_ms (empty in closed loop),
 *     interrupted (1 or 0), interrupted_in (warmup, window or drain; empty when not),
 *     in_flight_at_interrupt
 *
 * Each cell is the JSON's value of the same run: runs[i][key], latency_ms.p50 as
 * latency_p50_ms, status.OK as status_OK, metrics.* as the metrics columns, stages.S.mean_ms
 * as stage_S_ms, batches_closed.* and media_sent.* as theirs.
 *
 * The text: a single run's header gives the window that ran ("1.5 s measured (interrupted;
 * 5.0 s planned)", "(--requests N reached; ...)"), an interrupted run a line that says
 * where and how many requests were in flight then. Under a sweep's table, a line per step
 * ("step K ...") for a window shorter than planned (an interrupt: that step is not judged,
 * its SLO column n/a; --requests), a generator that fell more than 1 ms behind its schedule
 * (max_lag_ms > 1, as a single run's "generator" line), and malformed responses; then the
 * verdict (from the completed steps only after an interrupt) and, for a sweep that stopped
 * early, why: interrupted, --sweep-past misses in a row (the knee only when a step met the
 * SLO), or a failure. With a fleet of several daemons and one --metrics endpoint, a
 * "metrics" line says that the stages, batches closed, admission wait and units in use are
 * that daemon's alone ("metrics         from EP only: 1 of N daemons; ..."); with several
 * --metrics endpoints it says that they are summed, over how many of the daemons (the larger
 * of those listed and the fleet's), and which did not answer or that --metrics lists fewer
 * than the fleet has ("metrics         from 2 of 3 daemons (EP did not answer), summed; ...";
 * a sweep whose steps differ: "from 1..2 of 2 daemons by step (step 3: EP did not answer)").
 *
 * Threads: called from main only.
 */
#ifndef MB_PERF_REPORT_H
#define MB_PERF_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "mb_runner.h"
#include "mediabatch/client.h"

enum mb_report_mode {
	MB_REPORT_CLOSED,
	MB_REPORT_OPEN,
	MB_REPORT_SWEEP,
};

struct mb_perf_report {
	enum mb_report_mode mode;
	/* configuration, borrowed */
	const char *endpoint, *transport;
	const char *metrics; /**< --metrics as given (one endpoint, or several comma-separated) */
	/**
	 * --metrics's endpoints, n_metrics of them (at most MB_RUN_METRICS_MAX); NULL with
	 * n_metrics 0 when metrics is the one endpoint
	 */
	const char *const *metrics_list;
	int n_metrics;
	const struct mb_mix *mix;
	const struct mb_dist *seconds;
	uint32_t payload_bytes;
	uint64_t seed;
	double warmup_s, duration_s, drain_s;
	uint64_t max_requests;
	double slo_ms, max_error_pct;
	double sweep_from, sweep_to;
	int sweep_steps;
	int sweep_past; /**< --sweep-past: the sweep stops at this many misses in a row (0: never)
			 */
	const struct mb_replay *media; /**< --media's files, or NULL (borrowed) */
	/** A fleet (several daemons): each one's figures at the end, or n_fleet 0 (borrowed) */
	const struct mb_client_daemon *fleet;
	int n_fleet;
	const struct mb_client_fleet_stats *fleet_stats;
	/* results, borrowed */
	int n_runs;
	const struct mb_run_result *runs;
	/* plots, filled by mb_report_plot() */
	const char *plot_dir;
	bool plotted;		/**< gnuplot ran and made the PNGs */
	char plot_note[256];	/**< what happened, one line */
	char plot_files[8][64]; /**< file names written in plot_dir */
	int n_plot_files;
};

/** Whether run @p i is judged against the SLO: it was not interrupted. */
bool mb_report_judged(const struct mb_perf_report *rep, int i);

/**
 * Whether run @p i meets the SLO: judged, with responses, p99 <= slo_ms and error_pct <=
 * max_error_pct.
 */
bool mb_report_slo_met(const struct mb_perf_report *rep, int i);

/** Index (from 0) of the highest offered rate of a sweep whose run meets the SLO, or -1. */
int mb_report_best(const struct mb_perf_report *rep);

/** Print the text summary. */
void mb_report_text(const struct mb_perf_report *rep, FILE *out);

/** Write the JSON document. Returns 0 or -errno. */
int mb_report_json(const struct mb_perf_report *rep, FILE *out);

/** Write the CSV table (layout above). Returns 0 or -errno. */
int mb_report_csv(const struct mb_perf_report *rep, FILE *out);

/**
 * Write the plot data and gnuplot scripts into @p dir (created if missing): latency_cdf
 * (every run), and for a sweep, sweep (throughput and p99 against offered load), then run
 * gnuplot (the program named by $MB_PERF_GNUPLOT, else "gnuplot") on each script to make the
 * PNGs. A missing gnuplot is not an error: rep->plot_note says so and how to get the PNGs.
 * Returns 0, or -errno when the files cannot be written.
 */
int mb_report_plot(struct mb_perf_report *rep, const char *dir);

#endif /* MB_PERF_REPORT_H */
