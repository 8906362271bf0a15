/**
 * @file
 * One measured run of mediabatch-perf: warm-up, a measured window, a drain, at one
 * offered load (closed loop: K outstanding; open loop: Poisson arrivals at a rate), and
 * what it measured.
 *
 * Open-loop latency is taken from each request's intended send time (its arrival in the
 * Poisson schedule), not from when the generator got round to sending it, so a stalled
 * service or generator shows up in the latency instead of being hidden (no coordinated
 * omission). Every run is bounded: by time (warm-up + duration + drain) and by count
 * (max_requests measured requests, max_outstanding in flight).
 *
 * With the daemon's /metrics, a run also reports where the server's time went: the stage
 * histogram mediabatch_stage_seconds{model,stage} and the counter
 * mediabatch_batches_closed_total{model,reason}, each the difference between a scrape at the
 * measured window's start and one after its drain (mb_run_stages_from()). With several
 * daemons' /metrics (a fleet), each is scraped the same way and the figures are their sum
 * over the daemons that answered (mb_run_stages_from_many()); the result says which did.
 *
 * Threads: the run's thread does all sending and receiving; a thread per /metrics endpoint,
 * started and joined inside mb_run(), scrapes it four times a second.
 */
#ifndef MB_RUNNER_H
#define MB_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "mb_hist.h"
#include "mb_loadgen.h"
#include "mb_perf_conn.h"

/** Most /metrics endpoints one run scrapes (mediabatch-perf's --metrics list). */
#define MB_RUN_METRICS_MAX 64

enum mb_run_mode {
	MB_RUN_CLOSED,
	MB_RUN_OPEN,
};

struct mb_run_opts {
	enum mb_run_mode mode;
	uint32_t outstanding;	  /**< closed loop: requests kept in flight (1..1000000) */
	double rate;		  /**< open loop: arrivals per second (> 0) */
	double warmup_s;	  /**< sent but not measured */
	double duration_s;	  /**< the measured window */
	double drain_s;		  /**< how long to wait for the measured window's stragglers */
	uint64_t max_requests;	  /**< measured requests at most; the window ends early there */
	uint32_t max_outstanding; /**< open loop: in flight at most; beyond, counted unsent */
	uint64_t seed;		  /**< arrivals; the content stream is the loadgen's */
	bool progress;		  /**< a line on stderr about once a second */
	const char *label;	  /**< for the progress line, e.g. "step 3/8" (may be NULL) */

	/**
	 * The daemons' /metrics endpoints (HOST:PORT, http(s)://HOST:PORT; n_metrics of them,
	 * at most MB_RUN_METRICS_MAX; borrowed), or NULL: none scraped. Several: a fleet's, each
	 * scraped by a thread of its own, the figures summed over those that answered.
	 */
	const char *const *metrics;
	int n_metrics;
};

/** The server's stages of a request, in order (mediabatch_stage_seconds{stage}). */
enum mb_stage {
	MB_STAGE_QUEUE,	    /**< arrival at the ROUTER or NIC until its batch closed */
	MB_STAGE_ADMISSION, /**< batch closed until its device units were granted */
	MB_STAGE_DISPATCH,  /**< granted until the worker started the batch */
	MB_STAGE_COMPUTE,   /**< the model's run */
	MB_STAGE_EGRESS,    /**< run ended until the response was sent */
	MB_STAGE_COUNT,
};

/** "queue", "admission", "dispatch", "compute", "egress" (the label values); "?" beyond. */
const char *mb_stage_name(unsigned int stage);

/** Why batches closed (mediabatch_batches_closed_total{reason}): full, deadline, drain. */
#define MB_CLOSED_REASONS 3

/** "full", "deadline", "drain"; "?" beyond. */
const char *mb_closed_reason_name(unsigned int reason);

/** One stage over a run's window, from the change of mediabatch_stage_seconds. */
struct mb_stage_stat {
	bool ok;	     /**< the daemon exports this stage (else n/a) */
	double count;	     /**< requests observed (change of _count) */
	double sum_s;	     /**< their time in the stage, seconds (change of _sum) */
	double p50_s, p99_s; /**< bucket estimates (histogram_quantile); NAN without requests */
};

/** Mean seconds per request of @p s in milliseconds; NAN when n/a or no request. */
double mb_stage_mean_ms(const struct mb_stage_stat *s);

/** Sum of the stage means of @p s[MB_STAGE_COUNT] in ms (the mean server time); NAN if none. */
double mb_stages_sum_ms(const struct mb_stage_stat *s);

/** Where a run was when *stop became true (SIGINT, SIGTERM), or MB_PHASE_NONE: it ran whole. */
enum mb_run_phase {
	MB_PHASE_NONE,	 /**< not interrupted */
	MB_PHASE_WARMUP, /**< in the warm-up: nothing measured (window_s 0) */
	MB_PHASE_WINDOW, /**< in the measured window: window_s is the part that ran */
	MB_PHASE_DRAIN,	 /**< after the window, waiting for its last responses */
};

/** "warmup", "window", "drain"; NULL for MB_PHASE_NONE (and beyond). */
const char *mb_run_phase_name(enum mb_run_phase phase);

/** Fill @p o with defaults: closed loop, 64 outstanding, 1 s warm-up, 10 s, 5 s drain. */
void mb_run_opts_init(struct mb_run_opts *o);

/** Per model of the mix. */
struct mb_run_model {
	char model[MB_PROTO_MODEL_LEN + 1];
	uint64_t sent, responses, ok;
	struct mb_hist *latency; /**< ns, every response */
	bool stages_ok;		 /**< the daemon exports stages for this model */
	struct mb_stage_stat stages[MB_STAGE_COUNT];
};

struct mb_run_result {
	enum mb_run_mode mode;
	double offered_rps; /**< open loop: the target rate; closed: sent / window */
	uint32_t outstanding;
	double warmup_s, duration_s;
	/**
	 * The measured window actually run, seconds: duration_s, or less when max_requests
	 * ended it (requests_reached) or the run was interrupted in it (0 in the warm-up).
	 */
	double window_s;
	bool requests_reached; /**< max_requests measured requests sent: the window ended there */
	/**
	 * Where the run was interrupted, or MB_PHASE_NONE. An interrupted run stops at once (no
	 * drain): its measured requests still in flight are in_flight_at_interrupt, neither
	 * answered nor missing nor errors, and it is not judged against an SLO.
	 */
	enum mb_run_phase interrupted;
	uint64_t in_flight_at_interrupt;

	uint64_t sent;	    /**< measured requests sent */
	uint64_t responses; /**< responses to measured requests */
	uint64_t missing;   /**< measured requests with no response by the end of the drain
			     *   (0 when interrupted: those are in_flight_at_interrupt) */
	uint64_t unsent;    /**< open loop: arrivals not sent (max_outstanding, send queue) */
	uint64_t stray;	    /**< responses matching no request in flight (an earlier run's) */
	/**
	 * Malformed responses received in the run (warm-up and drain included), as
	 * mb_client_recv() checks them; one whose header names a request in flight answers
	 * it UNAVAILABLE ("client: malformed response: ..."). A fleet: the fleet client's
	 * malformed count over the run (it resent those requests or answered UNAVAILABLE).
	 */
	uint64_t proto_errors;
	uint64_t status[MB_STATUS_COUNT];
	char reason[MB_STATUS_COUNT][96]; /**< first reason text seen per status */

	double throughput_rps; /**< responses received in the window / window */
	double ok_rps;	       /**< OK responses received in the window / window */
	double max_lag_ms;     /**< open loop: latest a request went out after its intended time */
	struct mb_hist *lag;   /**< ns, open loop: how late each measured request went out */

	struct mb_hist *latency;    /**< ns, every response to a measured request */
	struct mb_hist *queue_us;   /**< response header queue_us, OK responses */
	struct mb_hist *compute_us; /**< response header compute_us, OK responses */
	uint64_t batch_n, batch_sum, batch_max;

	int n_models;
	struct mb_run_model model[MB_MIX_MAX];

	bool media;			    /**< --media: the requests carried files */
	uint64_t media_sent[MB_KIND_COUNT]; /**< measured requests by the kind of their file */

	/*
	 * From /metrics, when it answered; with several endpoints, the sum over those that
	 * answered (each one's window start, samples in the window and end scrape): admission
	 * wait and batches summed (the mean is sum / batches), units_mean the sum of each
	 * daemon's mean, units_max the sum of each daemon's highest sample (at least the peak
	 * of the total), units_capacity the sum, units_samples the samples of all of them.
	 */
	bool metrics_ok;      /**< at least one endpoint answered: the figures below are there */
	int metrics_listed;   /**< endpoints scraped (mb_run_opts.n_metrics); 0: not scraped */
	int metrics_answered; /**< of them, those whose figures are summed below */
	bool metrics_answer[MB_RUN_METRICS_MAX]; /**< per endpoint listed: its figures are in */
	double admission_wait_s;      /**< summed over batches admitted in the window + drain */
	double admission_batches;     /**< how many */
	double units_mean, units_max; /**< mediabatch_vram_units_in_use, sampled in the window */
	double units_capacity;
	int units_samples;
	bool stages_ok; /**< mediabatch_stage_seconds was there (else the daemon is older) */
	struct mb_stage_stat stages[MB_STAGE_COUNT]; /**< every model of the daemon */
	bool closed_ok;				  /**< mediabatch_batches_closed_total was there */
	double batches_closed[MB_CLOSED_REASONS]; /**< every model, by reason */
};

/** Allocate the histograms of @p r for @p n_models models. Returns 0 or -ENOMEM. */
int mb_run_result_init(struct mb_run_result *r, const struct mb_mix *mix);

/** Free the histograms. */
void mb_run_result_fini(struct mb_run_result *r);

/** Nearest-rank percentile @p q of the latency in milliseconds. */
double mb_run_latency_ms(const struct mb_run_result *r, double q);

/**
 * Responses that were not OK, plus missing and unsent, as a percentage of the sent + unsent
 * less the requests in flight at an interrupt (those have no outcome).
 */
double mb_run_error_pct(const struct mb_run_result *r);

/**
 * Fill the stage figures of @p r (stages, each model's stages, batches_closed and their
 * _ok flags) from two /metrics texts (borrowed): @p start at the window's start, @p end
 * after it. Series missing at the end leave their figures n/a (ok false); a series missing
 * at the start counts as zero there; a count that went down (a restart) makes it n/a.
 * Models are matched by r->model[i].model (set by mb_run_result_init()).
 */
void mb_run_stages_from(struct mb_run_result *r, const char *start, const char *end);

/**
 * mb_run_stages_from() over @p n daemons (1..MB_RUN_METRICS_MAX): @p start[i] and @p end[i]
 * are daemon i's two texts. Each daemon's change is taken as mb_run_stages_from() takes it,
 * then the changes are added up: every stage histogram bucket by bucket, with its _sum and
 * _count (so means and the bucket estimates are of the whole fleet), and each reason of
 * batches closed. A stage is n/a when a daemon lacks it (or its count went down, or the
 * daemons' bucket bounds differ): a sum must not silently leave a daemon out. A model's stage
 * is there when at least one daemon has it; a daemon that has the stage but not that model
 * (it does not serve it) adds nothing. Batches closed are n/a unless every daemon has them.
 * With @p n 1 it is exactly mb_run_stages_from().
 */
void mb_run_stages_from_many(struct mb_run_result *r, const char *const *start,
			     const char *const *end, int n);

/**
 * Run once over @p c with requests from @p lg, ids from *@p next_id (advanced; keep one
 * counter per connection so a late response of an earlier run is never mistaken for one
 * of this run). @p payload[kind] is the payload of each media kind (borrowed; each at least
 * as long as the longest request of that kind), unless @p lg has a replay: then each request
 * carries its file, and the file's `sent` counter and r->media_sent count it. Fills @p r
 * (initialised with
 * mb_run_result_init). Returns 0, -ENOMEM, -EINTR if *@p stop became true (the result is
 * then partial: r->interrupted says where, window_s is the part of the window that ran,
 * the measured requests in flight are r->in_flight_at_interrupt), or the -errno of a failed
 * send or receive.
 */
int mb_run(const struct mb_run_opts *o, struct mb_perf_conn *c, struct mb_loadgen *lg,
	   const void *const payload[MB_KIND_COUNT], uint64_t *next_id, volatile const int *stop,
	   struct mb_run_result *r);

#endif /* MB_RUNNER_H */
