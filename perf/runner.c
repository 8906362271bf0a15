/*
 * runner.c: one measured run (mb_runner.h).
 *
 * One thread sends and receives. Requests in flight live in a slot table indexed by
 * request id (a power of two at least twice the in-flight limit, so a free slot is always
 * near); a slot holds the request's intended send time, its model and whether it falls in
 * the measured window. A response is matched by id; one whose slot holds another id is an
 * earlier run's straggler and is counted as stray.
 *
 * The loop sends what is due (closed loop: until K are in flight; open loop: every arrival
 * whose time has come, in order), then sleeps in the connection's receive until the next
 * arrival is due or a response comes, then takes every response that is there. Times are
 * CLOCK_MONOTONIC nanoseconds. Every wait is bounded by the run's hard end
 * (start + warm-up + duration + drain).
 *
 * An interrupt (*stop) ends the run where it is, without a drain: the measured window ends
 * there (its figures are of the time that ran), and the measured requests still in flight
 * are counted apart (in_flight_at_interrupt), not as missing. A malformed response (the
 * connection checks each as mb_client_recv() does) is counted; when its header names a
 * request in flight, that request is answered UNAVAILABLE, as the fleet client does.
 *
 * A scraper thread per /metrics endpoint reads it every 250 ms: units in use while the window
 * is open, and the admission-wait histogram's sum and count at the window's start; each reads
 * them once more as it quits at the end (no load is being sent then) for the difference. The
 * start's whole /metrics text is kept until then, so the stage histograms and the
 * batches-closed counter are read from the same two scrapes (mb_run_stages_from_many()). An
 * endpoint's figures count when it answered all three (start, a sample in the window, end);
 * the result holds the sum over those and says which they were.
 *
 * Owns the slot table and the scraper threads for the duration of mb_run().
 */
#include "mb_runner.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_replay.h"
#include "mb_scrape.h"
#include "mediabatch/client.h"

#define NS 1000000000LL
#define STAGE_METRIC "mediabatch_stage_seconds"
#define CLOSED_METRIC "mediabatch_batches_closed_total"
#define SCRAPE_PERIOD_MS 250
#define SCRAPE_TIMEOUT_MS 1000
#define RECV_BATCH 4096
#define SEND_BATCH 1024

void
mb_run_opts_init(struct mb_run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = MB_RUN_CLOSED;
	o->outstanding = 64;
	o->rate = 1000;
	o->warmup_s = 1;
	o->duration_s = 10;
	o->drain_s = 5;
	o->max_requests = 10000000;
	o->max_outstanding = 65536;
	o->seed = 1;
}

int
mb_run_result_init(struct mb_run_result *r, const struct mb_mix *mix)
{
	memset(r, 0, sizeof(*r));
	if (mb_hist_create(&r->latency) < 0 || mb_hist_create(&r->queue_us) < 0 ||
	    mb_hist_create(&r->compute_us) < 0 || mb_hist_create(&r->lag) < 0)
		goto fail;
	r->n_models = mix->n;
	for (int i = 0; i < mix->n; i++) {
		snprintf(r->model[i].model, sizeof(r->model[i].model), "%s", mix->e[i].model);
		if (mb_hist_create(&r->model[i].latency) < 0)
			goto fail;
	}
	return 0;
fail:
	mb_run_result_fini(r);
	return -ENOMEM;
}

void
mb_run_result_fini(struct mb_run_result *r)
{
	mb_hist_destroy(&r->latency);
	mb_hist_destroy(&r->queue_us);
	mb_hist_destroy(&r->compute_us);
	mb_hist_destroy(&r->lag);
	for (int i = 0; i < MB_MIX_MAX; i++)
		mb_hist_destroy(&r->model[i].latency);
}

double
mb_run_latency_ms(const struct mb_run_result *r, double q)
{
	return (double)mb_hist_percentile(r->latency, q) / 1e6;
}

double
mb_run_error_pct(const struct mb_run_result *r)
{
	uint64_t total = r->sent + r->unsent - r->in_flight_at_interrupt;
	uint64_t bad = r->responses - r->status[MB_STATUS_OK] + r->missing + r->unsent;

	return total ? 100.0 * (double)bad / (double)total : 0.0;
}

const char *
mb_run_phase_name(enum mb_run_phase phase)
{
	switch (phase) {
	case MB_PHASE_WARMUP:
		return "warmup";
	case MB_PHASE_WINDOW:
		return "window";
	case MB_PHASE_DRAIN:
		return "drain";
	case MB_PHASE_NONE:
	default:
		return NULL;
	}
}

const char *
mb_stage_name(unsigned int stage)
{
	static const char *const names[MB_STAGE_COUNT] = {"queue", "admission", "dispatch",
							  "compute", "egress"};

	return stage < MB_STAGE_COUNT ? names[stage] : "?";
}

const char *
mb_closed_reason_name(unsigned int reason)
{
	static const char *const names[MB_CLOSED_REASONS] = {"full", "deadline", "drain"};

	return reason < MB_CLOSED_REASONS ? names[reason] : "?";
}

double
mb_stage_mean_ms(const struct mb_stage_stat *s)
{
	return s->ok && s->count > 0 ? 1000 * s->sum_s / s->count : NAN;
}

double
mb_stages_sum_ms(const struct mb_stage_stat *s)
{
	double sum = 0;
	bool any = false;

	for (int i = 0; i < MB_STAGE_COUNT; i++) {
		double m = mb_stage_mean_ms(&s[i]);

		if (!isnan(m)) {
			sum += m;
			any = true;
		}
	}
	return any ? sum : NAN;
}

/*
 * One stage (and model, when @model is not NULL) of one daemon between its two scrapes, into
 * *d: whether found (at the end, with a start that matches and a count that did not go down).
 */
static bool
stage_delta(const char *start, const char *end, const char *model, unsigned int stage,
	    struct mb_scrape_hist *d)
{
	const char *labels[] = {"stage", mb_stage_name(stage), model ? "model" : NULL, model, NULL};
	struct mb_scrape_hist a;

	return mb_scrape_hist(end, STAGE_METRIC, labels, d) > 0 &&
	       mb_scrape_hist(start, STAGE_METRIC, labels, &a) >= 0 &&
	       mb_scrape_hist_delta(d, &a, d) == 0;
}

/* *acc += *h, bucket by bucket (the same bounds, else -EPROTO), sum, count and series. */
static int
hist_add(struct mb_scrape_hist *acc, const struct mb_scrape_hist *h)
{
	if (acc->n != h->n)
		return -EPROTO;
	for (int i = 0; i < h->n; i++)
		if (acc->le[i] != h->le[i])
			return -EPROTO;
	for (int i = 0; i < h->n; i++)
		acc->cum[i] += h->cum[i];
	acc->sum += h->sum;
	acc->count += h->count;
	acc->series += h->series;
	return 0;
}

/* The figures of one stage from the change @h (summed over daemons), or n/a when NULL. */
static void
stage_set(struct mb_stage_stat *st, const struct mb_scrape_hist *h)
{
	memset(st, 0, sizeof(*st));
	st->p50_s = st->p99_s = NAN;
	if (h == NULL)
		return;
	st->ok = true;
	st->count = h->count;
	st->sum_s = h->sum;
	if (h->count > 0) {
		st->p50_s = mb_scrape_hist_quantile(h, 0.50);
		st->p99_s = mb_scrape_hist_quantile(h, 0.99);
	}
}

/*
 * One stage (and model, when @model is not NULL) over @n daemons into *st; whether it is
 * there. @has_stage[i]: daemon i has the stage at all (for a model: one that lacks the
 * model's series but has the stage adds nothing, with several daemons).
 */
static bool
stage_stat(const char *const *start, const char *const *end, int n, const char *model,
	   unsigned int stage, const bool *has_stage, struct mb_stage_stat *st)
{
	struct mb_scrape_hist acc, d;
	int added = 0;

	for (int i = 0; i < n; i++) {
		if (!stage_delta(start[i], end[i], model, stage, &d)) {
			if (model != NULL && n > 1 && has_stage[i])
				continue; /* it has the stage, not the model: it does not serve it
					   */
			goto na;
		}
		if (added == 0)
			acc = d;
		else if (hist_add(&acc, &d) < 0)
			goto na; /* the daemons' bounds differ: no sum */
		added++;
	}
	if (added == 0)
		goto na;
	stage_set(st, &acc);
	return true;
na:
	stage_set(st, NULL);
	return false;
}

void
mb_run_stages_from_many(struct mb_run_result *r, const char *const *start, const char *const *end,
			int n)
{
	bool has_stage[MB_STAGE_COUNT][MB_RUN_METRICS_MAX];

	if (n > MB_RUN_METRICS_MAX)
		n = MB_RUN_METRICS_MAX;
	r->stages_ok = false;
	for (unsigned int s = 0; s < MB_STAGE_COUNT; s++) {
		for (int i = 0; i < n; i++) {
			struct mb_scrape_hist d;

			has_stage[s][i] = stage_delta(start[i], end[i], NULL, s, &d);
		}
		r->stages_ok |= stage_stat(start, end, n, NULL, s, has_stage[s], &r->stages[s]);
	}
	for (int m = 0; m < r->n_models; m++) {
		r->model[m].stages_ok = false;
		for (unsigned int s = 0; s < MB_STAGE_COUNT; s++)
			r->model[m].stages_ok |= stage_stat(start, end, n, r->model[m].model, s,
							    has_stage[s], &r->model[m].stages[s]);
	}
	r->closed_ok = n > 0;
	memset(r->batches_closed, 0, sizeof(r->batches_closed));
	for (int i = 0; i < n; i++) {
		for (unsigned int c = 0; c < MB_CLOSED_REASONS; c++) {
			const char *labels[] = {"reason", mb_closed_reason_name(c), NULL};
			double a, b;

			mb_scrape_sum_labels(start[i], CLOSED_METRIC, labels, &a);
			if (mb_scrape_sum_labels(end[i], CLOSED_METRIC, labels, &b) <= 0 || b < a)
				r->closed_ok = false;
			r->batches_closed[c] += b - a;
		}
	}
	if (!r->closed_ok)
		memset(r->batches_closed, 0, sizeof(r->batches_closed));
}

void
mb_run_stages_from(struct mb_run_result *r, const char *start, const char *end)
{
	mb_run_stages_from_many(r, &start, &end, 1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ---- the /metrics scraper ---- */

struct snapshot {
	double wait_sum, wait_count, units, capacity;
};

struct scraper {
	const char *hostport;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool running; /* the thread was started (else this endpoint has no figures) */
	bool quit, want_start, measuring;
	/* results, under lock */
	bool any_ok, have_start;
	struct snapshot start;
	char *start_text; /* the whole /metrics text of the start snapshot */
	double units_sum, units_max, capacity;
	int units_n;
	/* the end snapshot, taken by the thread as it quits; read after the join */
	bool have_end;
	struct snapshot end;
	char *end_text;
};

/* Scrape once into *s; with @text, hand the body over too (on success; the caller frees). */
static bool
scrape_once(const char *hostport, struct snapshot *s, char **text)
{
	char *body = NULL;
	int rc = mb_scrape_get(hostport, "/metrics", SCRAPE_TIMEOUT_MS, &body);
	bool ok = rc == 200 &&
		  mb_scrape_sum(body, "mediabatch_admission_wait_seconds_sum", &s->wait_sum) > 0 &&
		  mb_scrape_sum(body, "mediabatch_admission_wait_seconds_count", &s->wait_count) >
			  0 &&
		  mb_scrape_sum(body, "mediabatch_vram_units_in_use", &s->units) > 0 &&
		  mb_scrape_sum(body, "mediabatch_vram_units_capacity", &s->capacity) > 0;

	if (ok && text != NULL) {
		*text = body;
		body = NULL;
	}
	free(body);
	return ok;
}

static void *
scraper_main(void *arg)
{
	struct scraper *s = arg;
	bool want_end;

	pthread_mutex_lock(&s->lock);
	while (!s->quit) {
		bool want_start = s->want_start, measuring = s->measuring, ok;
		struct snapshot v;
		struct timespec until;
		char *text = NULL;

		s->want_start = false;
		pthread_mutex_unlock(&s->lock);
		ok = scrape_once(s->hostport, &v, want_start ? &text : NULL);
		pthread_mutex_lock(&s->lock);
		if (ok) {
			s->any_ok = true;
			s->capacity = v.capacity;
			if (want_start) {
				s->start = v;
				s->have_start = true;
				free(s->start_text);
				s->start_text = text;
			}
			if (measuring) {
				s->units_sum += v.units;
				s->units_n++;
				if (v.units > s->units_max)
					s->units_max = v.units;
			}
		}
		if (s->quit || s->want_start)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += SCRAPE_PERIOD_MS * 1000000L;
		if (until.tv_nsec >= NS) {
			until.tv_sec++;
			until.tv_nsec -= NS;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
	}
	want_end = s->have_start && s->units_n > 0;
	pthread_mutex_unlock(&s->lock);
	/* the end snapshot (no load is being sent now); each endpoint's thread takes its own,
	 * so that one that does not answer does not hold the others up */
	if (want_end)
		s->have_end = scrape_once(s->hostport, &s->end, &s->end_text);
	return NULL;
}

static int
scraper_start(struct scraper *s, const char *hostport)
{
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	s->hostport = hostport;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->running = true; /* before the thread: it shares the word */
	if (pthread_create(&s->thread, NULL, scraper_main, s) != 0) {
		s->running = false;
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		return -EAGAIN;
	}
	return 0;
}

/* Every scraper of @sc[@n] that runs: the window opened (@measuring) or closed. */
static void
scrapers_set(struct scraper *sc, int n, bool measuring)
{
	for (int i = 0; i < n; i++) {
		struct scraper *s = &sc[i];

		if (!s->running)
			continue;
		pthread_mutex_lock(&s->lock);
		if (measuring && !s->measuring)
			s->want_start = true;
		s->measuring = measuring;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

/*
 * Stop the threads of @sc[@n] (each takes its end snapshot), and fill the result with the
 * sum over the endpoints that answered at the window's start, in it and at the end.
 */
static void
scrapers_finish(struct scraper *sc, int n, struct mb_run_result *r)
{
	const char *starts[MB_RUN_METRICS_MAX], *ends[MB_RUN_METRICS_MAX];
	int k = 0;

	for (int i = 0; i < n; i++) {
		if (!sc[i].running)
			continue;
		pthread_mutex_lock(&sc[i].lock);
		sc[i].quit = true;
		pthread_cond_signal(&sc[i].cond);
		pthread_mutex_unlock(&sc[i].lock);
	}
	for (int i = 0; i < n; i++) {
		struct scraper *s = &sc[i];

		if (!s->running)
			continue;
		pthread_join(s->thread, NULL);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		if (!s->have_end)
			continue;
		r->metrics_answer[i] = true;
		r->metrics_answered++;
		r->admission_wait_s += s->end.wait_sum - s->start.wait_sum;
		r->admission_batches += s->end.wait_count - s->start.wait_count;
		r->units_mean += s->units_sum / s->units_n;
		r->units_max += s->units_max;
		r->units_capacity += s->capacity;
		r->units_samples += s->units_n;
		starts[k] = s->start_text;
		ends[k] = s->end_text;
		k++;
	}
	if (k > 0) {
		r->metrics_ok = true;
		mb_run_stages_from_many(r, starts, ends, k);
	}
	for (int i = 0; i < n; i++) {
		free(sc[i].start_text);
		free(sc[i].end_text);
		sc[i].start_text = sc[i].end_text = NULL;
	}
}

/* ---- the run ---- */

struct slot {
	uint64_t id;
	int64_t t_ns; /* intended send time */
	int16_t model;
	uint8_t used, measured;
};

struct run {
	const struct mb_run_opts *o;
	struct mb_run_result *r;
	struct slot *slots;
	uint64_t mask;
	uint64_t in_flight, in_flight_measured;
	int64_t ms, me; /* measured window [ms, me) */
	uint64_t win_responses, win_ok;
};

static void
take_response(struct run *run, const struct mb_response_hdr *h, const char *reason, int64_t t)
{
	struct slot *s = &run->slots[h->request_id & run->mask];
	struct mb_run_result *r = run->r;
	uint64_t lat;

	if (!s->used || s->id != h->request_id || (h->flags & MB_RESP_FLAG_DUPLICATE)) {
		r->stray++; /* a duplicate's refusal is not the answer of the request in flight */
		return;
	}
	s->used = 0;
	run->in_flight--;
	if (t >= run->ms && t < run->me) {
		run->win_responses++;
		run->win_ok += h->status == MB_STATUS_OK;
	}
	if (!s->measured)
		return;
	run->in_flight_measured--;
	r->responses++;
	if (h->status < MB_STATUS_COUNT) {
		r->status[h->status]++;
		if (h->status != MB_STATUS_OK && r->reason[h->status][0] == '\0')
			snprintf(r->reason[h->status], sizeof(r->reason[h->status]), "%s",
				 reason[0] ? reason : "(no reason given)");
	}
	lat = t > s->t_ns ? (uint64_t)(t - s->t_ns) : 0;
	mb_hist_record(r->latency, lat);
	r->model[s->model].responses++;
	mb_hist_record(r->model[s->model].latency, lat);
	if (h->status == MB_STATUS_OK) {
		r->model[s->model].ok++;
		mb_hist_record(r->queue_us, h->queue_us);
		mb_hist_record(r->compute_us, h->compute_us);
		r->batch_n++;
		r->batch_sum += h->batch_size;
		if (h->batch_size > r->batch_max)
			r->batch_max = h->batch_size;
	}
}

/* Whether @id is a request in flight (its slot holds it). */
static bool
is_in_flight(const struct run *run, uint64_t id)
{
	const struct slot *s = &run->slots[id & run->mask];

	return s->used && s->id == id;
}

/* Claim a free slot for the next id (one exists: in flight < capacity / 2). */
static struct slot *
claim(struct run *run, uint64_t *next_id)
{
	for (;;) {
		struct slot *s = &run->slots[*next_id & run->mask];

		if (!s->used) {
			s->id = (*next_id)++;
			return s;
		}
		(*next_id)++;
	}
}

static void
progress(const struct run *run, int64_t now, int64_t t0)
{
	const struct mb_run_opts *o = run->o;
	const struct mb_run_result *r = run->r;
	double t = (double)(now - t0) / NS;
	char load[64];

	if (o->mode == MB_RUN_OPEN)
		snprintf(load, sizeof(load), "open %.0f req/s", o->rate);
	else
		snprintf(load, sizeof(load), "closed %" PRIu32 " outstanding", o->outstanding);
	fprintf(stderr,
		"mediabatch-perf: %s%s%s %5.1f/%.1f s%s sent %" PRIu64 " answered %" PRIu64
		" OK %" PRIu64 " p99 %.3f ms in flight %" PRIu64 "\n",
		o->label ? o->label : "", o->label ? " " : "", load, t, o->warmup_s + o->duration_s,
		now < run->ms ? " (warm-up)" : "", r->sent, r->responses, r->status[MB_STATUS_OK],
		mb_run_latency_ms(r, 99), run->in_flight);
}

int
mb_run(const struct mb_run_opts *o, struct mb_perf_conn *c, struct mb_loadgen *lg,
       const void *const payload[MB_KIND_COUNT], uint64_t *next_id, volatile const int *stop,
       struct mb_run_result *r)
{
	uint64_t limit = o->mode == MB_RUN_CLOSED ? o->outstanding : o->max_outstanding, cap = 2;
	struct run run = {.o = o, .r = r};
	struct scraper *sc = NULL;
	int n_sc = 0;
	bool started = false, ended = false, cap_hit = false;
	struct mb_arrivals arr;
	struct mb_client_fleet_stats fleet0 = {0}, fleet1 = {0};
	bool fleet;
	int64_t t0, hard, next_due = 0, last_progress, t_stop = 0;
	int rc = 0;

	while (cap < 2 * limit)
		cap <<= 1;
	run.slots = calloc(cap, sizeof(*run.slots));
	if (run.slots == NULL)
		return -ENOMEM;
	run.mask = cap - 1;
	r->mode = o->mode;
	r->media = lg->replay != NULL;
	r->outstanding = o->mode == MB_RUN_CLOSED ? o->outstanding : 0;
	r->warmup_s = o->warmup_s;
	r->duration_s = o->duration_s;
	if (o->metrics != NULL && o->n_metrics > 0) {
		n_sc = o->n_metrics < MB_RUN_METRICS_MAX ? o->n_metrics : MB_RUN_METRICS_MAX;
		r->metrics_listed = n_sc;
		sc = calloc((size_t)n_sc, sizeof(*sc));
		for (int i = 0; sc != NULL && i < n_sc; i++)
			scraper_start(&sc[i], o->metrics[i]); /* one that fails: no figures */
		if (sc == NULL)
			n_sc = 0;
	}
	/* a fleet checks answers itself: its malformed count over the run is ours */
	fleet = mb_perf_conn_fleet_stats(c, &fleet0, NULL, 0) >= 0;

	t0 = now_ns();
	last_progress = t0;
	run.ms = t0 + (int64_t)llround(o->warmup_s * NS);
	run.me = run.ms + (int64_t)llround(o->duration_s * NS);
	hard = run.me + (int64_t)llround(o->drain_s * NS);
	if (o->mode == MB_RUN_OPEN) {
		mb_arrivals_init(&arr, o->seed, o->rate, 0.0);
		next_due = t0 + (int64_t)llround(mb_arrivals_next(&arr) * NS);
	}
	for (;;) {
		int64_t now = now_ns(), wait;
		bool sending, blocked = false;
		struct mb_response_hdr h;
		char reason[96];
		int got;

		if (*stop) {
			rc = -EINTR;
			t_stop = now;
			break;
		}
		if (now >= hard)
			break;
		if (!started && now >= run.ms) {
			started = true;
			scrapers_set(sc, n_sc, true);
		}
		if (started && !ended && now >= run.me) {
			ended = true;
			scrapers_set(sc, n_sc, false);
		}
		/* open loop: an arrival of the window is sent even if the generator is late */
		sending = !cap_hit && (o->mode == MB_RUN_OPEN ? next_due < run.me : now < run.me);
		if (!sending && run.in_flight_measured == 0)
			break;

		/* send what is due (a bounded batch, then take responses) */
		for (int n = 0; sending && n < SEND_BATCH; n++) {
			struct mb_request_hdr hdr;
			int64_t intended, t;
			struct slot *s;
			int model, e;

			if (o->mode == MB_RUN_CLOSED) {
				if (run.in_flight >= o->outstanding)
					break;
				intended = now_ns();
				if (intended >= run.me)
					break;
			} else {
				if (next_due > now || next_due >= run.me)
					break;
				intended = next_due;
				if (run.in_flight >= o->max_outstanding) {
					/* the client's own limit: this arrival is not sent */
					r->unsent += intended >= run.ms;
					next_due =
						t0 + (int64_t)llround(mb_arrivals_next(&arr) * NS);
					continue;
				}
			}
			s = claim(&run, next_id);
			model = mb_loadgen_next(lg, s->id, &hdr);
			e = mb_perf_conn_send(c, &hdr,
					      lg->payload != NULL ? lg->payload
								  : payload[lg->mix.e[model].kind]);
			if (e == -EAGAIN) {
				blocked = true; /* send queue full: retry after taking responses */
				break;
			}
			if (e < 0) {
				fprintf(stderr, "mediabatch-perf: send: %s\n", strerror(-e));
				rc = e;
				goto out;
			}
			t = now_ns();
			s->used = 1;
			s->t_ns = intended;
			s->model = (int16_t)model;
			s->measured = intended >= run.ms;
			run.in_flight++;
			if (lg->file >= 0) {
				struct mb_replay_file *f = &lg->replay->files[lg->file];

				f->sent++;
				r->media_sent[f->kind] += s->measured;
			}
			if (s->measured) {
				run.in_flight_measured++;
				r->sent++;
				r->model[model].sent++;
				if (o->mode == MB_RUN_OPEN) {
					mb_hist_record(r->lag, (uint64_t)(t - intended));
					if ((double)(t - intended) / 1e6 > r->max_lag_ms)
						r->max_lag_ms = (double)(t - intended) / 1e6;
				}
				if (r->sent >= o->max_requests) {
					cap_hit = true;
					r->requests_reached = true;
					run.me = t; /* the window ends with the last measured
						       request */
					sending = false;
				}
			}
			if (o->mode == MB_RUN_OPEN)
				next_due = t0 + (int64_t)llround(mb_arrivals_next(&arr) * NS);
		}

		if (o->progress && now - last_progress >= NS) {
			progress(&run, now, t0);
			last_progress = now;
		}

		/* wait for a response, or until the next arrival is due */
		now = now_ns();
		wait = 50 * 1000000LL;
		if (sending && o->mode == MB_RUN_OPEN && next_due - now < wait)
			wait = next_due > now ? next_due - now : 0;
		if (hard - now < wait)
			wait = hard - now > 0 ? hard - now : 0;
		if (blocked && wait > 200000)
			wait = 200000;
		got = 0;
		for (int64_t w = wait; got < RECV_BATCH; w = 0) {
			int e = mb_perf_conn_recv(c, &h, w, reason, sizeof(reason));

			if (e == -ETIMEDOUT)
				break;
			if (e == -EPROTO) {
				/* malformed (mb_client_recv()'s checks): one that names a request
				 * in flight answers it UNAVAILABLE, as the fleet client does */
				r->proto_errors++;
				if (h.version != 0 && !(h.flags & MB_RESP_FLAG_DUPLICATE) &&
				    is_in_flight(&run, h.request_id)) {
					h.status = MB_STATUS_UNAVAILABLE;
					take_response(&run, &h, reason, now_ns());
					got++;
				}
				continue;
			}
			if (e < 0) {
				fprintf(stderr, "mediabatch-perf: receive: %s\n", strerror(-e));
				rc = e;
				goto out;
			}
			take_response(&run, &h, reason, now_ns());
			got++;
		}
	}
	if (rc == -EINTR) {
		/* the window ends at the interrupt; what is in flight then has no outcome */
		r->interrupted = t_stop < run.ms   ? MB_PHASE_WARMUP
				 : t_stop < run.me ? MB_PHASE_WINDOW
						   : MB_PHASE_DRAIN;
		if (t_stop < run.me)
			run.me = t_stop > run.ms ? t_stop : run.ms;
		r->in_flight_at_interrupt = run.in_flight_measured;
		run.in_flight_measured = 0;
	}
	/* open loop: arrivals of the window the generator never got to are unsent (after an
	 * interrupt, those due as it came were cut off, like the requests in flight) */
	while (rc == 0 && o->mode == MB_RUN_OPEN && !cap_hit && next_due < run.me) {
		r->unsent += next_due >= run.ms;
		next_due = t0 + (int64_t)llround(mb_arrivals_next(&arr) * NS);
	}
out:
	r->missing = run.in_flight_measured;
	r->window_s = (double)(run.me - run.ms) / NS;
	if (r->window_s > 0) {
		r->throughput_rps = (double)run.win_responses / r->window_s;
		r->ok_rps = (double)run.win_ok / r->window_s;
	}
	r->offered_rps = o->mode == MB_RUN_OPEN
				 ? o->rate
				 : (r->window_s > 0 ? (double)r->sent / r->window_s : 0);
	if (fleet && mb_perf_conn_fleet_stats(c, &fleet1, NULL, 0) >= 0)
		r->proto_errors += fleet1.malformed - fleet0.malformed;
	scrapers_finish(sc, n_sc, r);
	free(sc);
	free(run.slots);
	return rc;
}
