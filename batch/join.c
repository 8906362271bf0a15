/*
 * join.c: splitting a long request into windows and joining their answers (mb_join.h).
 */
#include "mb_join.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_LOG_MODULE "join"
#include "mb_log.h"

struct join {
	struct mb_window_join ops; /* first: a window's req->join points here */
	atomic_uint pending;	   /* windows not yet answered */
	uint32_t n;
	uint8_t kind, topk;
	pthread_mutex_t lock; /* owed, finished */
	uint32_t owed;	      /* windows parked by the watchdog whose run() has not returned */
	bool finished;	      /* the parent was answered */
	bool released;	      /* ...and belongs to an ingest that recycles it itself (UDP) */
	struct mb_request kids[];
};

static uint32_t
unit_bytes(const struct mb_request_hdr *h)
{
	switch (h->media) {
	case MB_MEDIA_PCM_S16LE:
		return 2;
	case MB_MEDIA_PCM_F32LE:
		return 4;
	case MB_MEDIA_RGB24:
		return (uint32_t)h->height * h->width * 3;
	default:
		return 0;
	}
}

/* the media's length in the units windows count: samples, or frames */
static uint32_t
media_units(const struct mb_request_hdr *h)
{
	uint32_t b = unit_bytes(h);

	return b != 0 ? h->payload_len / b : 0;
}

uint32_t
mb_join_windows(const struct mb_model *m, const struct mb_request_hdr *hdr)
{
	uint32_t len = media_units(hdr);

	if (m->window == 0 || m->join == MB_JOIN_NONE || len <= m->window)
		return 1;
	return (uint32_t)(((uint64_t)len + m->window - 1) / m->window);
}

void
mb_join_window_hdr(const struct mb_model *m, const struct mb_request_hdr *hdr, uint32_t i,
		   uint32_t n, struct mb_request_hdr *out, uint32_t *offset)
{
	uint32_t len = media_units(hdr), b = unit_bytes(hdr);
	uint32_t start = i * m->window;
	uint32_t this = i + 1 < n ? m->window : len - start;

	*out = *hdr;
	out->reserved = MB_HDR_WINDOW_PART;
	out->payload_len = this * b;
	if (hdr->media == MB_MEDIA_RGB24)
		out->frames = (uint16_t)this;
	*offset = start * b;
}

/* "window 2 of 4 (30.0-60.0 s)" or "window 2 of 3 (frames 16-31)" */
static void
window_name(const struct join *j, uint32_t i, char *buf, size_t len)
{
	const struct mb_request *k = &j->kids[i];
	const struct mb_request_hdr *p = &j->ops.parent->hdr;
	uint32_t b = unit_bytes(p), from = (uint32_t)(k->payload - j->ops.parent->payload) / b;
	uint32_t to = from + k->hdr.payload_len / b;

	if (p->media == MB_MEDIA_RGB24 || p->sample_rate == 0)
		snprintf(buf, len, "window %u of %u (frames %u-%u)", i + 1, j->n, from, to - 1);
	else
		snprintf(buf, len, "window %u of %u (%.1f-%.1f s)", i + 1, j->n,
			 (double)from / p->sample_rate, (double)to / p->sample_rate);
}

static uint32_t
us_between(uint64_t from, uint64_t to)
{
	return to > from ? (uint32_t)((to - from) / 1000) : 0;
}

/* the parent's answer from its windows' (all OK): 0, or -1 with a reason in @p why */
static int
join_results(struct join *j, struct mb_request *p, char *why, size_t len)
{
	const struct mb_request *k0 = &j->kids[0];
	uint64_t rows = 0, bytes = 0;
	uint32_t cols = k0->resp.cols;

	for (uint32_t i = 0; i < j->n; i++) {
		const struct mb_request *k = &j->kids[i];

		if (k->resp.result_type != MB_RESULT_F32 || k->resp.cols != cols ||
		    k->result_len != (uint64_t)k->resp.rows * k->resp.cols * sizeof(float) ||
		    (j->kind != MB_JOIN_CONCAT_ROWS && k->resp.rows != k0->resp.rows)) {
			snprintf(why, len,
				 "window %u of %u answered %u x %u (type %u), which does not join "
				 "with window 1's %u x %u",
				 i + 1, j->n, k->resp.rows, k->resp.cols, k->resp.result_type,
				 k0->resp.rows, cols);
			return -1;
		}
		rows += k->resp.rows;
		bytes += k->result_len;
	}
	if (j->kind == MB_JOIN_CONCAT_ROWS) {
		uint8_t *out;

		if (rows > UINT16_MAX) {
			snprintf(why, len,
				 "the joined result would have %" PRIu64 " rows, more than the "
				 "protocol's rows field holds (65535): send at most %u windows",
				 rows, (uint32_t)(UINT16_MAX / (rows / j->n)));
			return -1;
		}
		if ((out = malloc(bytes != 0 ? bytes : 1)) == NULL)
			goto oom;
		bytes = 0;
		for (uint32_t i = 0; i < j->n; i++) {
			memcpy(out + bytes, j->kids[i].result, j->kids[i].result_len);
			bytes += j->kids[i].result_len;
		}
		p->result = out;
		p->result_len = (uint32_t)bytes;
		p->resp.result_type = MB_RESULT_F32;
		p->resp.rows = (uint16_t)rows;
		p->resp.cols = (uint16_t)cols;
		p->resp.result_len = (uint32_t)bytes;
		return 0;
	}

	/* the mean of the windows' values */
	size_t m = (size_t)k0->resp.rows * cols;
	double *acc = calloc(m ? m : 1, sizeof(*acc));

	if (acc == NULL)
		goto oom;
	for (uint32_t i = 0; i < j->n; i++) {
		const float *v = j->kids[i].result;

		for (size_t e = 0; e < m; e++)
			acc[e] += v[e];
	}
	for (size_t e = 0; e < m; e++)
		acc[e] /= j->n;
	if (j->kind == MB_JOIN_MEAN_L2) {
		double norm = 0.0;
		float *out = malloc(m * sizeof(float));

		if (out == NULL) {
			free(acc);
			goto oom;
		}
		for (size_t e = 0; e < m; e++)
			norm += acc[e] * acc[e];
		norm = norm > 0.0 ? sqrt(norm) : 1.0;
		for (size_t e = 0; e < m; e++)
			out[e] = (float)(acc[e] / norm);
		p->result = out;
		p->result_len = (uint32_t)(m * sizeof(float));
		p->resp.result_type = MB_RESULT_F32;
		p->resp.rows = k0->resp.rows;
		p->resp.cols = (uint16_t)cols;
		p->resp.result_len = p->result_len;
		free(acc);
		return 0;
	}

	/* MB_JOIN_MEAN_SOFTMAX_TOPK: softmax of the mean logits, the k best (lower id first on
	 * ties) as (u32 class, f32 score) pairs. As a single clip's top-k does
	 * (mb_videomae_topk()): a NaN logit ranks as -inf, and with no finite maximum (+inf, or
	 * every logit -inf or NaN) the scores are 0 (a NaN took acc[-1] here once). */
	uint32_t k = j->topk < m ? j->topk : (uint32_t)m;
	uint8_t *out = malloc((size_t)k * 8 + 1), *taken = calloc(m ? m : 1, 1);
	double max = -INFINITY, sum = 0.0;

	if (out == NULL || taken == NULL) {
		free(out);
		free(taken);
		free(acc);
		goto oom;
	}
	for (size_t e = 0; e < m; e++) {
		if (isnan(acc[e]))
			acc[e] = -INFINITY;
		if (acc[e] > max)
			max = acc[e];
	}
	if (isfinite(max))
		for (size_t e = 0; e < m; e++)
			sum += exp(acc[e] - max);
	for (uint32_t r = 0; r < k; r++) {
		size_t best = SIZE_MAX;
		uint32_t id;
		float score;

		for (size_t e = 0; e < m; e++)
			if (!taken[e] && (best == SIZE_MAX || acc[e] > acc[best]))
				best = e;
		taken[best] = 1; /* k <= m: one is left */
		id = (uint32_t)best;
		score = sum > 0.0 ? (float)(exp(acc[best] - max) / sum) : 0.0f;
		memcpy(out + (size_t)r * 8, &id, 4);
		memcpy(out + (size_t)r * 8 + 4, &score, 4);
	}
	free(taken);
	free(acc);
	p->result = out;
	p->result_len = k * 8;
	p->resp.result_type = MB_RESULT_TOPK;
	p->resp.rows = (uint16_t)k;
	p->resp.cols = 2;
	p->resp.result_len = p->result_len;
	return 0;
oom:
	snprintf(why, len, "out of memory joining %u windows", j->n);
	return -1;
}

/* Every window is back: answer the parent. */
static void
finish(struct join *j)
{
	struct mb_request *p = j->ops.parent;
	uint64_t first = UINT64_MAX, last = 0, closed = UINT64_MAX, admitted = UINT64_MAX;
	uint16_t batch = 0, device = MB_DEVICE_NONE;
	char name[64], why[MB_PROTO_REASON_MAX];

	for (uint32_t i = 0; i < j->n; i++) {
		struct mb_request *k = &j->kids[i];

		if (k->resp.status != MB_STATUS_OK) {
			window_name(j, i, name, sizeof(name));
			mb_request_answer(p, (enum mb_status)k->resp.status, "%s: %s", name,
					  k->reason);
			return;
		}
		if (k->start_ns != 0 && k->start_ns < first)
			first = k->start_ns;
		if (k->done_ns > last) {
			last = k->done_ns;
			device = k->resp.device;
		}
		if (k->closed_ns != 0 && k->closed_ns < closed)
			closed = k->closed_ns;
		if (k->admitted_ns != 0 && k->admitted_ns < admitted)
			admitted = k->admitted_ns;
		if (k->resp.batch_size > batch)
			batch = k->resp.batch_size;
	}
	mb_request_response_base(&p->hdr, &p->resp);
	if (join_results(j, p, why, sizeof(why)) < 0) {
		mb_request_answer(p, MB_STATUS_MODEL_ERROR, "%s", why);
		return;
	}
	p->resp.status = MB_STATUS_OK;
	p->start_ns = first != UINT64_MAX ? first : 0;
	p->closed_ns = closed != UINT64_MAX ? closed : 0;
	p->admitted_ns = admitted != UINT64_MAX ? admitted : 0;
	p->close_reason = j->kids[j->n - 1].close_reason;
	p->done_ns = last;
	p->resp.queue_us = us_between(p->arrival_ns, p->start_ns);
	p->resp.compute_us = us_between(p->start_ns, last);
	p->resp.batch_size = batch;
	p->resp.device = device;
}

static void
free_join(struct join *j)
{
	for (uint32_t i = 0; i < j->n; i++)
		free(j->kids[i].result);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static struct mb_request *
window_done(struct mb_request *w)
{
	struct join *j = (struct join *)w->join;
	struct mb_request *p = j->ops.parent;
	bool keep;

	if (w->abandoned == MB_REQ_PARKED) { /* before the count: finish() must see it */
		pthread_mutex_lock(&j->lock);
		j->owed++;
		pthread_mutex_unlock(&j->lock);
	}
	if (atomic_fetch_sub_explicit(&j->pending, 1, memory_order_acq_rel) != 1)
		return NULL;
	finish(j);
	pthread_mutex_lock(&j->lock);
	j->finished = true;
	j->released = p->release != NULL;
	keep = j->owed != 0;
	pthread_mutex_unlock(&j->lock);
	if (keep)
		p->abandoned = MB_REQ_PARKED; /* its payload is still read: recycled by reclaim */
	else
		free_join(j);
	return p;
}

static struct mb_request *
window_reclaim(struct mb_request *w)
{
	struct join *j = (struct join *)w->join;
	struct mb_request *p = j->ops.parent;
	bool last, released;

	pthread_mutex_lock(&j->lock);
	last = --j->owed == 0 && j->finished;
	released = j->released;
	pthread_mutex_unlock(&j->lock);
	if (!last)
		return NULL;
	free_join(j);
	/* an ingest that owns its requests (UDP) took the parent back when it was sent */
	return released ? NULL : p;
}

int
mb_join_split(struct mb_request *parent, const struct mb_model *m, struct mb_request **kids)
{
	uint32_t n = parent->windows;
	struct join *j;

	if (n < 2 || n > MB_JOIN_MAX_WINDOWS)
		return -EINVAL;
	j = calloc(1, sizeof(*j) + (size_t)n * sizeof(struct mb_request));
	if (j == NULL)
		return -ENOMEM;
	if (pthread_mutex_init(&j->lock, NULL) != 0) {
		free(j);
		return -ENOMEM;
	}
	j->ops.parent = parent;
	j->ops.done = window_done;
	j->ops.reclaim = window_reclaim;
	j->n = n;
	j->kind = m->join;
	j->topk = m->join_topk;
	atomic_init(&j->pending, n);
	for (uint32_t i = 0; i < n; i++) {
		struct mb_request *k = &j->kids[i];
		uint32_t off;

		mb_join_window_hdr(m, &parent->hdr, i, n, &k->hdr, &off);
		k->transport = parent->transport;
		k->payload = parent->payload + off;
		k->payload_len = k->hdr.payload_len;
		k->arrival_ns = parent->arrival_ns;
		k->deadline_ns = parent->deadline_ns;
		k->model = parent->model;
		k->cost_units = mb_model_item_cost(m, &k->hdr);
		k->counted = true; /* the parent is the one counted */
		k->conn_fd = -1;
		k->join = &j->ops;
		atomic_init(&k->cancel, false);
		kids[i] = k;
	}
	return 0;
}
