/*
 * join_test.c: splitting long media into windows and joining their answers (mb_join.h),
 * without a daemon: the windows' headers, slices and costs; each join kind's arithmetic
 * (rows concatenated in media order whatever order the windows come back in, the
 * normalised mean, the softmax top-k of the mean logits with ties to the lower class); the
 * first failed window's status and reason; results that do not join; windows parked by
 * the watchdog (the parent recycled only once the last one is back, in either order); a
 * cancel of the parent seen by its windows; and many threads answering windows at once
 * (exactly one of them gets the parent: run under TSan in CI).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mb_join.h"
#include "mb_test.h"

#define RATE 16000

static struct mb_model
model(uint32_t window, uint8_t join, uint8_t topk)
{
	struct mb_model m;

	memset(&m, 0, sizeof(m));
	m.window = window;
	m.max_windows = 64;
	m.join = join;
	m.join_topk = topk;
	m.item_units_per_second = 1.0;
	return m;
}

static uint8_t g_payload[8 << 20];

static void
audio_parent(struct mb_request *p, double seconds, uint16_t windows, const struct mb_model *m)
{
	uint32_t samples = (uint32_t)(seconds * RATE);

	memset(p, 0, sizeof(*p));
	p->hdr.version = 1;
	p->hdr.request_id = 77;
	p->hdr.tenant_id = 5;
	p->hdr.media = MB_MEDIA_PCM_S16LE;
	p->hdr.channels = 1;
	p->hdr.sample_rate = RATE;
	p->hdr.payload_len = samples * 2;
	strcpy(p->hdr.model, "fake");
	p->payload = g_payload;
	p->payload_len = samples * 2;
	p->arrival_ns = 1000;
	p->deadline_ns = 5000000000ull;
	p->model = 3;
	p->windows = windows;
	p->conn_fd = -1;
	CU_ASSERT_EQUAL(mb_join_windows(m, &p->hdr), windows);
}

/* answer window @p k OK with @p rows x @p cols floats from @p fill */
static void
answer_f32(struct mb_request *k, uint16_t rows, uint16_t cols, float (*fill)(uint32_t, uint32_t),
	   uint32_t tag)
{
	float *v = malloc((size_t)rows * cols * sizeof(float));

	for (uint32_t i = 0; i < (uint32_t)rows * cols; i++)
		v[i] = fill(tag, i);
	mb_request_response_base(&k->hdr, &k->resp);
	k->resp.status = MB_STATUS_OK;
	k->resp.result_type = MB_RESULT_F32;
	k->resp.rows = rows;
	k->resp.cols = cols;
	k->resp.result_len = (uint32_t)rows * cols * sizeof(float);
	k->resp.batch_size = (uint16_t)(tag + 1);
	k->resp.device = 0;
	k->result = v;
	k->result_len = k->resp.result_len;
	k->start_ns = 2000 + tag * 1000;
	k->done_ns = 2500 + tag * 1000;
}

static float
by_window(uint32_t tag, uint32_t i)
{
	return (float)(tag * 100000 + i);
}

static void
test_split_audio(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[4];
	uint32_t off;
	struct mb_request_hdr w;

	audio_parent(&p, 95.0, 4, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t len = i < 3 ? 30 * RATE : 5 * RATE;

		CU_ASSERT_EQUAL(kids[i]->payload, g_payload + (size_t)i * 30 * RATE * 2);
		CU_ASSERT_EQUAL(kids[i]->payload_len, len * 2);
		CU_ASSERT_EQUAL(kids[i]->hdr.payload_len, len * 2);
		CU_ASSERT_EQUAL(kids[i]->hdr.reserved, MB_HDR_WINDOW_PART);
		CU_ASSERT_EQUAL(kids[i]->hdr.request_id, 77);
		CU_ASSERT_EQUAL(kids[i]->deadline_ns, p.deadline_ns);
		CU_ASSERT_EQUAL(kids[i]->model, 3);
		CU_ASSERT_EQUAL(kids[i]->cost_units, i < 3 ? 30u : 5u);
		CU_ASSERT_PTR_EQUAL(kids[i]->join->parent, &p);
		mb_join_window_hdr(&m, &p.hdr, i, 4, &w, &off);
		CU_ASSERT_EQUAL(off, i * 30 * RATE * 2);
	}
	for (uint32_t i = 0; i < 4; i++) {
		struct mb_request *k = kids[i];

		mb_request_answer(k, MB_STATUS_CANCELLED, "x");
		k->join->done(k); /* frees the join at the last */
	}
	/* no windows: model without a join, or media within one window */
	m.join = MB_JOIN_NONE;
	CU_ASSERT_EQUAL(mb_join_windows(&m, &p.hdr), 1);
	m.join = MB_JOIN_CONCAT_ROWS;
	p.hdr.payload_len = 30 * RATE * 2;
	CU_ASSERT_EQUAL(mb_join_windows(&m, &p.hdr), 1);
	p.hdr.payload_len += 2;
	CU_ASSERT_EQUAL(mb_join_windows(&m, &p.hdr), 2);
}

static void
test_split_video(void)
{
	struct mb_model m = model(16, MB_JOIN_MEAN_SOFTMAX_TOPK, 5);
	struct mb_request p, *kids[3];

	memset(&p, 0, sizeof(p));
	p.hdr.media = MB_MEDIA_RGB24;
	p.hdr.channels = 3;
	p.hdr.frames = 48;
	p.hdr.height = 8;
	p.hdr.width = 8;
	p.hdr.payload_len = 48 * 8 * 8 * 3;
	p.payload = g_payload;
	p.windows = 3;
	CU_ASSERT_EQUAL(mb_join_windows(&m, &p.hdr), 3);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	for (uint32_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(kids[i]->hdr.frames, 16);
		CU_ASSERT_EQUAL(kids[i]->payload_len, 16 * 8 * 8 * 3);
		CU_ASSERT_EQUAL(kids[i]->payload, g_payload + i * 16 * 8 * 8 * 3);
		CU_ASSERT_EQUAL(kids[i]->cost_units, 1); /* a clip of 16 frames counts 1 s */
	}
	for (uint32_t i = 0; i < 3; i++) {
		mb_request_answer(kids[i], MB_STATUS_CANCELLED, "x");
		kids[i]->join->done(kids[i]);
	}
}

static void
test_concat_any_order(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[4], *got = NULL;
	static const int order[4] = {2, 0, 3, 1};
	const float *v;

	audio_parent(&p, 95.0, 4, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	for (int i = 0; i < 4; i++) {
		struct mb_request *k = kids[order[i]];

		answer_f32(k, order[i] < 3 ? 1500 : 250, 8, by_window, (uint32_t)order[i]);
		got = k->join->done(k);
		CU_ASSERT((i < 3) == (got == NULL));
	}
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(p.resp.rows, 3 * 1500 + 250);
	CU_ASSERT_EQUAL(p.resp.cols, 8);
	CU_ASSERT_EQUAL(p.result_len, (3 * 1500 + 250) * 8 * 4);
	CU_ASSERT_EQUAL(p.resp.result_len, p.result_len);
	CU_ASSERT_EQUAL(p.resp.request_id, 77);
	v = p.result;
	/* media order: window w's first value at row 1500 w */
	for (uint32_t w = 0; w < 4; w++)
		CU_ASSERT_EQUAL(v[(size_t)w * 1500 * 8], (float)(w * 100000));
	CU_ASSERT_EQUAL(v[(size_t)(3 * 1500 + 249) * 8 + 7], (float)(3 * 100000 + 249 * 8 + 7));
	/* timings: from the first window's start to the last one's end */
	CU_ASSERT_EQUAL(p.start_ns, 2000);
	CU_ASSERT_EQUAL(p.done_ns, 5500);
	CU_ASSERT_EQUAL(p.resp.batch_size, 4);
	free(p.result);
}

static float
vec(uint32_t tag, uint32_t i)
{
	return (float)((tag + 1) * (i + 1)) * (tag == 1 ? -0.5f : 1.0f);
}

static void
test_mean_l2(void)
{
	struct mb_model m = model(10 * RATE, MB_JOIN_MEAN_L2, 0);
	struct mb_request p, *kids[3], *got = NULL;
	double mean[4], norm = 0.0;
	const float *v;

	audio_parent(&p, 25.0, 3, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	for (uint32_t i = 0; i < 3; i++) {
		answer_f32(kids[i], 1, 4, vec, i);
		got = kids[i]->join->done(kids[i]);
	}
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.resp.rows, 1);
	CU_ASSERT_EQUAL(p.resp.cols, 4);
	for (uint32_t e = 0; e < 4; e++) {
		mean[e] = (vec(0, e) + vec(1, e) + vec(2, e)) / 3.0;
		norm += mean[e] * mean[e];
	}
	v = p.result;
	for (uint32_t e = 0; e < 4; e++)
		CU_ASSERT_DOUBLE_EQUAL(v[e], mean[e] / sqrt(norm), 1e-6);
	free(p.result);
}

static float
logit(uint32_t tag, uint32_t i)
{
	/* mean over 2 windows: class 3 best, 1 and 5 tie second, then 0 */
	static const float l[2][6] = {{1.0f, 2.0f, -5.0f, 4.0f, 0.0f, 3.0f},
				      {0.0f, 2.0f, -5.0f, 4.0f, 0.0f, 1.0f}};

	return l[tag][i];
}

/* A video of two 16-frame clips split, each clip answered [1 x 6] from @p fill: the
 * parent when the last is back (NULL before). */
static struct mb_request *
two_clips(struct mb_request *p, const struct mb_model *m, float (*fill)(uint32_t, uint32_t))
{
	struct mb_request *kids[2], *got = NULL;

	memset(p, 0, sizeof(*p));
	p->hdr.media = MB_MEDIA_RGB24;
	p->hdr.frames = 32;
	p->hdr.height = 2;
	p->hdr.width = 2;
	p->hdr.payload_len = 32 * 2 * 2 * 3;
	p->payload = g_payload;
	p->windows = 2;
	CU_ASSERT_EQUAL_FATAL(mb_join_split(p, m, kids), 0);
	for (uint32_t i = 0; i < 2; i++) {
		answer_f32(kids[i], 1, 6, fill, i);
		got = kids[i]->join->done(kids[i]);
	}
	return got;
}

static void
test_softmax_topk(void)
{
	struct mb_model m = model(16, MB_JOIN_MEAN_SOFTMAX_TOPK, 3);
	struct mb_request p, *got = NULL;
	double mean[6], sum = 0.0;
	const uint8_t *v;
	uint32_t id;
	float score;
	static const uint32_t want[3] = {3, 1, 5};

	got = two_clips(&p, &m, logit);
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.resp.result_type, MB_RESULT_TOPK);
	CU_ASSERT_EQUAL(p.resp.rows, 3);
	CU_ASSERT_EQUAL(p.resp.cols, 2);
	CU_ASSERT_EQUAL(p.result_len, 24);
	for (uint32_t c = 0; c < 6; c++)
		sum += exp(mean[c] = (logit(0, c) + logit(1, c)) / 2.0);
	v = p.result;
	for (uint32_t r = 0; r < 3; r++) {
		memcpy(&id, v + r * 8, 4);
		memcpy(&score, v + r * 8 + 4, 4);
		CU_ASSERT_EQUAL(id, want[r]);
		CU_ASSERT_DOUBLE_EQUAL(score, exp(mean[want[r]]) / sum, 1e-6);
	}
	free(p.result);
}

static const float *g_case; /* 6 logits, the same in both windows */

static float
case_logit(uint32_t tag, uint32_t i)
{
	(void)tag;
	return g_case[i];
}

/* NaN and infinite logits: ranked as a single clip ranks them (NaN as -inf; ties to the
 * lower id), scores 0 without a finite maximum; a NaN read and wrote acc[-1] (ASan:
 * heap-buffer-overflow) and answered class 0xffffffff */
static void
test_softmax_topk_not_finite(void)
{
	static const float some_nan[6] = {NAN, 1.0f, 2.0f, -INFINITY, NAN, 3.0f};
	static const float all_nan[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
	static const float all_minf[6] = {-INFINITY, -INFINITY, -INFINITY,
					  -INFINITY, -INFINITY, -INFINITY};
	static const float pinf[6] = {0.0f, 5.0f, INFINITY, NAN, 1.0f, 2.0f};
	const struct {
		const float *logits;
		uint32_t ids[3];
		bool scored;
	} cases[] = {
		{some_nan, {5, 2, 1}, true},
		{all_nan, {0, 1, 2}, false},
		{all_minf, {0, 1, 2}, false},
		{pinf, {2, 1, 5}, false},
	};
	struct mb_model m = model(16, MB_JOIN_MEAN_SOFTMAX_TOPK, 3);

	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		struct mb_request p, *got = NULL;
		const uint8_t *v;
		double sum = exp(1.0 - 3.0) + exp(2.0 - 3.0) + 1.0;

		g_case = cases[t].logits;
		got = two_clips(&p, &m, case_logit);
		CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
		CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(p.result_len, 24);
		v = p.result;
		for (uint32_t r = 0; r < 3; r++) {
			uint32_t id;
			float score;

			memcpy(&id, v + r * 8, 4);
			memcpy(&score, v + r * 8 + 4, 4);
			CU_ASSERT_EQUAL(id, cases[t].ids[r]);
			if (cases[t].scored) {
				CU_ASSERT_DOUBLE_EQUAL(score, exp(cases[t].logits[id] - 3.0) / sum,
						       1e-6);
			} else {
				CU_ASSERT_EQUAL(score, 0.0f);
			}
		}
		free(p.result);
	}
}

static void
test_first_failure_wins(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[3], *got = NULL;

	audio_parent(&p, 70.0, 3, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	mb_request_answer(kids[2], MB_STATUS_CANCELLED, "cancelled by the client");
	CU_ASSERT_PTR_NULL(kids[2]->join->done(kids[2]));
	answer_f32(kids[0], 1500, 8, by_window, 0);
	CU_ASSERT_PTR_NULL(kids[0]->join->done(kids[0]));
	mb_request_answer(kids[1], MB_STATUS_TIMEOUT, "deadline passed after 9 us in queue");
	got = kids[1]->join->done(kids[1]);
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_TIMEOUT);
	CU_ASSERT_STRING_EQUAL(p.reason,
			       "window 2 of 3 (30.0-60.0 s): deadline passed after 9 us in queue");
	CU_ASSERT_PTR_NULL(p.result);
}

static void
test_mismatch_and_rows(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[3], *got = NULL;

	audio_parent(&p, 50.0, 2, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	answer_f32(kids[0], 10, 8, by_window, 0);
	answer_f32(kids[1], 10, 9, by_window, 1);
	kids[0]->join->done(kids[0]);
	got = kids[1]->join->done(kids[1]);
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_MODEL_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(p.reason, "does not join"));

	/* 3 x 30000 rows: more than the rows field holds */
	audio_parent(&p, 80.0, 3, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	for (uint32_t i = 0; i < 3; i++) {
		answer_f32(kids[i], 30000, 1, by_window, i);
		got = kids[i]->join->done(kids[i]);
	}
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_MODEL_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(p.reason, "90000 rows"));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.reason, "at most 2 windows"));
}

static void
test_parked(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[2], *got;

	/* parked window back after the parent is answered: the parent waits for it */
	audio_parent(&p, 50.0, 2, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	mb_request_answer(kids[0], MB_STATUS_MODEL_ERROR, "hung");
	kids[0]->abandoned = MB_REQ_PARKED;
	CU_ASSERT_PTR_NULL(kids[0]->join->done(kids[0]));
	answer_f32(kids[1], 10, 8, by_window, 1);
	got = kids[1]->join->done(kids[1]);
	CU_ASSERT_PTR_EQUAL_FATAL(got, &p);
	CU_ASSERT_EQUAL(p.abandoned, MB_REQ_PARKED);
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_MODEL_ERROR);
	CU_ASSERT_PTR_EQUAL(kids[0]->join->reclaim(kids[0]), &p); /* frees the join */

	/* parked window back before the last window: the parent is not parked at all */
	audio_parent(&p, 50.0, 2, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	mb_request_answer(kids[0], MB_STATUS_MODEL_ERROR, "hung");
	kids[0]->abandoned = MB_REQ_PARKED;
	CU_ASSERT_PTR_NULL(kids[0]->join->done(kids[0]));
	CU_ASSERT_PTR_NULL(kids[0]->join->reclaim(kids[0]));
	answer_f32(kids[1], 10, 8, by_window, 1);
	CU_ASSERT_PTR_EQUAL(kids[1]->join->done(kids[1]), &p);
	CU_ASSERT_EQUAL(p.abandoned, 0);
}

static void
test_cancel_reaches_windows(void)
{
	struct mb_model m = model(30 * RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[2];

	audio_parent(&p, 50.0, 2, &m);
	CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
	CU_ASSERT_FALSE(mb_request_cancelled(kids[1]));
	atomic_store(&p.cancel, true);
	CU_ASSERT_TRUE(mb_request_cancelled(kids[0]));
	CU_ASSERT_TRUE(mb_request_cancelled(kids[1]));
	for (uint32_t i = 0; i < 2; i++) {
		mb_request_answer(kids[i], MB_STATUS_CANCELLED, "cancelled by the client");
		kids[i]->join->done(kids[i]);
	}
	CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_CANCELLED);
}

#define THREADS 4
#define WINDOWS 64

struct racer {
	struct mb_request **kids;
	int first;
	struct mb_request *got;
	int parents;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	for (int i = r->first; i < WINDOWS; i += THREADS) {
		struct mb_request *k = r->kids[i], *p;

		answer_f32(k, 2, 2, by_window, (uint32_t)i);
		p = k->join->done(k);
		if (p != NULL) {
			r->got = p;
			r->parents++;
		}
	}
	return NULL;
}

static void
test_threads(void)
{
	struct mb_model m = model(RATE, MB_JOIN_CONCAT_ROWS, 0);
	struct mb_request p, *kids[WINDOWS];
	struct racer r[THREADS];
	pthread_t t[THREADS];
	int parents = 0;

	for (int round = 0; round < 20; round++) {
		audio_parent(&p, WINDOWS, WINDOWS, &m);
		CU_ASSERT_EQUAL_FATAL(mb_join_split(&p, &m, kids), 0);
		for (int i = 0; i < THREADS; i++) {
			r[i] = (struct racer){.kids = kids, .first = i};
			pthread_create(&t[i], NULL, race, &r[i]);
		}
		parents = 0;
		for (int i = 0; i < THREADS; i++) {
			pthread_join(t[i], NULL);
			parents += r[i].parents;
		}
		CU_ASSERT_EQUAL(parents, 1);
		CU_ASSERT_EQUAL(p.resp.status, MB_STATUS_OK);
		CU_ASSERT_EQUAL(p.resp.rows, 2 * WINDOWS);
		CU_ASSERT_EQUAL(((float *)p.result)[2 * 2 * (WINDOWS - 1)],
				(float)((WINDOWS - 1) * 100000));
		free(p.result);
	}
}

static const struct mb_test_case cases[] = {
	{"audio split into windows: slices, headers, costs", test_split_audio},
	{"video split into 16-frame clips", test_split_video},
	{"rows joined in media order, any return order", test_concat_any_order},
	{"mean, L2-normalised", test_mean_l2},
	{"softmax top-k of the mean logits, ties to the lower class", test_softmax_topk},
	{"softmax top-k: NaN and infinite logits ranked as one clip ranks them, no read before the "
	 "buffer",
	 test_softmax_topk_not_finite},
	{"the first failed window answers, with its name", test_first_failure_wins},
	{"results that do not join; too many rows", test_mismatch_and_rows},
	{"parked windows: the parent recycled after the last is back", test_parked},
	{"a cancel of the parent reaches its windows", test_cancel_reaches_windows},
	{"4 threads answer 64 windows: one parent, once", test_threads},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"join", NULL, NULL, cases};
static const struct mb_test_suite *const suites[] = {&suite, NULL};

int
main(void)
{
	return mb_test_main("join_test", suites);
}
