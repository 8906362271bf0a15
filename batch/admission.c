/*
 * admission.c: the front door's decision on one request (mb_admission.h).
 *
 * Built once from the service's models, devices and request counters: one table entry per
 * model (its name, the model, its two counters), in model index order, so the lookup by
 * name is a short scan of one small array and the counters need no second lookup. The
 * reasons are formatted only on refusal, from the models' current state; an OK touches the
 * model's queued count, the caller's rate limiter and one counter.
 *
 * Owns its table (mb_env_zalloc on the requested node); borrows the models, the devices and
 * the counters. Read-only after create, so any number of ingest threads check at once.
 */
#include "mb_admission.h"
#include "mb_join.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_env.h"

#define MB_LOG_MODULE "admission"
#include "mb_log.h"

struct entry {
	const char *name; /* m->desc->name */
	struct mb_model *m;
	struct mb_metric *requests[MB_ADMISSION_TRANSPORTS];
	struct mb_metric *rate_limited;
};

struct mb_admission {
	uint32_t n_models;
	uint32_t n_devices;
	uint32_t breaker_failures, breaker_cooldown_ms;
	struct mb_metric *unknown[MB_ADMISSION_TRANSPORTS]; /* model not served */
	struct mb_device *devices[MB_DEVICES_MAX];
	char served[MB_ADMISSION_SERVED_MAX];
	struct entry models[]; /* n_models, by model index */
};

void
mb_admission_opts_init(struct mb_admission_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->numa_node = MB_NUMA_ANY;
}

int
mb_admission_create(const struct mb_admission_opts *o, struct mb_admission **out)
{
	struct mb_admission *a;

	*out = NULL;
	if ((o->n_models != 0 && o->models == NULL) || o->n_devices > MB_DEVICES_MAX ||
	    (o->n_devices != 0 && o->devices == NULL) ||
	    (o->served != NULL && strlen(o->served) >= MB_ADMISSION_SERVED_MAX))
		return -EINVAL;
	for (uint32_t i = 0; i < o->n_models; i++)
		if (o->models[i] == NULL || o->models[i]->desc == NULL ||
		    o->models[i]->desc->name == NULL || o->models[i]->index != i)
			return -EINVAL;
	a = mb_env_zalloc(sizeof(*a) + o->n_models * sizeof(a->models[0]), o->numa_node);
	if (a == NULL)
		return -ENOMEM;
	a->n_models = o->n_models;
	a->n_devices = o->n_devices;
	a->breaker_failures = o->breaker_failures;
	a->breaker_cooldown_ms = o->breaker_cooldown_ms;
	for (uint32_t d = 0; d < o->n_devices; d++)
		a->devices[d] = o->devices[d];
	if (o->served != NULL)
		memcpy(a->served, o->served, strlen(o->served) + 1);
	for (uint32_t i = 0; i < o->n_models; i++) {
		struct entry *e = &a->models[i];

		e->m = o->models[i];
		e->name = e->m->desc->name;
		for (int t = 0; o->requests != NULL && t < MB_ADMISSION_TRANSPORTS; t++)
			e->requests[t] = o->requests[i][t];
		e->rate_limited = o->rate_limited != NULL ? o->rate_limited[i] : NULL;
	}
	for (int t = 0; o->requests != NULL && t < MB_ADMISSION_TRANSPORTS; t++)
		a->unknown[t] = o->requests[o->n_models][t];
	*out = a;
	return 0;
}

void
mb_admission_destroy(struct mb_admission **a)
{
	if (a == NULL || *a == NULL)
		return;
	mb_env_free(*a);
	*a = NULL;
}

static const struct entry *
find(const struct mb_admission *a, const char *name)
{
	for (uint32_t i = 0; i < a->n_models; i++)
		if (strcmp(a->models[i].name, name) == 0)
			return &a->models[i];
	return NULL;
}

struct mb_model *
mb_admission_find(const struct mb_admission *a, const char *name)
{
	const struct entry *e = find(a, name);

	return e != NULL ? e->m : NULL;
}

static inline void
count(struct mb_metric *s)
{
	if (s != NULL)
		mb_metric_add(s, 1);
}

/* The devices of @p m's mask, as "cpu0" or "cuda0, cuda1"; the largest one in @p largest. */
static void
model_devices(const struct mb_admission *a, const struct mb_model *m, char *buf, size_t len,
	      const struct mb_device **largest)
{
	size_t off = 0;

	buf[0] = '\0';
	*largest = NULL;
	for (uint32_t d = 0; d < a->n_devices && off < len; d++) {
		if (!(m->devices & MB_DEVICE_BIT(d)) || a->devices[d] == NULL)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
					a->devices[d]->name);
		if (*largest == NULL || a->devices[d]->capacity > (*largest)->capacity)
			*largest = a->devices[d];
	}
}

/* A request longer than its model's window: within max_windows, whole clips for video, and
 * every window (the first, and the last, which may be shorter) acceptable to the model. */
static enum mb_status
check_windows(const struct mb_model *m, const struct mb_request_hdr *h, uint32_t windows,
	      char *reason, size_t len)
{
	struct mb_request_hdr w;
	uint32_t off,
		max = m->max_windows < MB_JOIN_MAX_WINDOWS ? m->max_windows : MB_JOIN_MAX_WINDOWS;
	size_t n;

	if (h->media == MB_MEDIA_RGB24 && h->frames % m->window != 0) {
		snprintf(reason, len,
			 "frames: %u, but %s takes clips of %u frames: send a multiple of %u "
			 "(up to %u clips)",
			 h->frames, h->model, m->window, m->window, max);
		return MB_STATUS_BAD_REQUEST;
	}
	if (windows > max) {
		if (h->media == MB_MEDIA_RGB24)
			snprintf(reason, len,
				 "frames: %u is %u clips of %u frames; %s takes at most %u per "
				 "request (models[].max_windows)",
				 h->frames, windows, m->window, h->model, max);
		else
			snprintf(
				reason, len,
				"payload_len: %.1f s of audio is %u windows of %.1f s; %s takes at "
				"most %u per request (%.1f s; models[].max_windows)",
				mb_proto_audio_seconds(h), windows,
				(double)m->window / h->sample_rate, h->model, max,
				(double)m->window * max / h->sample_rate);
		return MB_STATUS_TOO_LARGE;
	}
	mb_join_window_hdr(m, h, 0, windows, &w, &off);
	if (m->desc->check(&w, reason, len) != 0)
		return MB_STATUS_BAD_REQUEST;
	mb_join_window_hdr(m, h, windows - 1, windows, &w, &off);
	if (m->desc->check(&w, reason, len) != 0) {
		char why[MB_PROTO_REASON_MAX];

		snprintf(why, sizeof(why), "%s", reason);
		n = (size_t)snprintf(reason, len,
				     "the last of its %u windows (what is left after "
				     "%u x %u %s): ",
				     windows, windows - 1, m->window,
				     h->media == MB_MEDIA_RGB24 ? "frames" : "samples");
		if (n < len)
			snprintf(reason + n, len - n, "%s", why);
		return MB_STATUS_BAD_REQUEST;
	}
	return MB_STATUS_OK;
}

enum mb_status
mb_admission_check(struct mb_admission *a, struct mb_ratelimit *limits, struct mb_request *req,
		   char *reason, size_t len)
{
	const struct entry *e = find(a, req->hdr.model);
	unsigned int t = req->transport == MB_TRANSPORT_UDP ? MB_TRANSPORT_UDP : MB_TRANSPORT_ZMQ;
	const struct mb_request_hdr *h = &req->hdr;
	struct mb_model *m;
	uint32_t cost, queued, limit, timeout_ms, windows, first_off;
	struct mb_request_hdr first;
	enum mb_status st;
	uint64_t retry_ns = 0;
	const struct mb_device *largest;
	char devs[96];

	req->counted = true;
	if (e == NULL) {
		count(a->unknown[t]);
		snprintf(reason, len, "model: '%s' is not served here (served: %s)", h->model,
			 a->served);
		return MB_STATUS_UNKNOWN_MODEL;
	}
	m = e->m;
	req->model = m->index;
	count(e->requests[t]);
	if (!m->enabled) {
		snprintf(reason, len, "model %s is unavailable: %s", h->model, m->disabled_reason);
		return MB_STATUS_UNAVAILABLE;
	}
	if (atomic_load_explicit(&m->hung, memory_order_acquire)) {
		snprintf(reason, len, "model %s is unavailable: %s", h->model, m->hung_reason);
		return MB_STATUS_UNAVAILABLE;
	}
	if (mb_model_unavailable(m)) {
		bool one = (m->devices & (m->devices - 1)) == 0;

		model_devices(a, m, devs, sizeof(devs), &largest);
		snprintf(reason, len,
			 "model %s is unavailable: its circuit breaker%s on %s %s open after %u "
			 "failed batches in a row; it probes again within %u ms",
			 h->model, one ? "" : "s", devs, one ? "is" : "are", a->breaker_failures,
			 a->breaker_cooldown_ms);
		return MB_STATUS_UNAVAILABLE;
	}
	if (!(m->desc->media_mask & MB_MEDIA_MASK(h->media))) {
		char takes[96] = "";
		size_t off = 0;

		for (unsigned int k = MB_MEDIA_PCM_S16LE; k <= MB_MEDIA_F32; k++)
			if (m->desc->media_mask & MB_MEDIA_MASK(k))
				off += (size_t)snprintf(takes + off, sizeof(takes) - off, "%s%s",
							off ? ", " : "", mb_media_name(k));
		snprintf(reason, len, "media: %s is not accepted by %s (it takes %s)",
			 mb_media_name(h->media), h->model, takes);
		return MB_STATUS_BAD_REQUEST;
	}
	windows = mb_join_windows(m, h);
	if (windows > 1) {
		if ((st = check_windows(m, h, windows, reason, len)) != MB_STATUS_OK)
			return st;
		mb_join_window_hdr(m, h, 0, windows, &first, &first_off);
		cost = mb_model_item_cost(m, &first); /* the largest window's */
	} else {
		if (m->desc->check(h, reason, len) != 0)
			return MB_STATUS_BAD_REQUEST;
		cost = mb_model_item_cost(m, h);
	}
	if ((uint64_t)m->base_units + cost > m->capacity) {
		model_devices(a, m, devs, sizeof(devs), &largest);
		snprintf(reason, len,
			 "this request needs %" PRIu32
			 " device units (%u for a batch of %s, %" PRIu32
			 " for its media) but device %s has %" PRIu64,
			 m->base_units + cost, m->base_units, h->model, cost,
			 largest != NULL ? largest->name : "(none)", m->capacity);
		return MB_STATUS_TOO_LARGE;
	}
	/* a request of n windows takes n places in its model's queue: more than queue_limit
	 * could never fit (it was OVERLOADED, "retry later", on an idle daemon) */
	limit = m->queue_limit; /* one load: it may change live */
	if (windows > limit) {
		snprintf(reason, len,
			 "%u windows take %u places of the %s queue, more than its queue_limit %u "
			 "(models[].queue_limit; send shorter media, or raise it)",
			 windows, windows, h->model, limit);
		return MB_STATUS_TOO_LARGE;
	}
	queued = atomic_fetch_add_explicit(&m->queued, windows, memory_order_acq_rel);
	if (queued + windows > limit) {
		atomic_fetch_sub_explicit(&m->queued, windows, memory_order_acq_rel);
		snprintf(reason, len,
			 "the %s queue is full (%u waiting, queue_limit %u); retry later", h->model,
			 queued, limit);
		return MB_STATUS_OVERLOADED;
	}
	if (mb_ratelimit_take(limits, h->tenant_id, 1, &retry_ns) != 0) {
		atomic_fetch_sub_explicit(&m->queued, windows, memory_order_acq_rel);
		count(e->rate_limited);
		snprintf(reason, len,
			 "tenant %" PRIu32 " is over its rate limit; retry in %" PRIu64 " ms",
			 h->tenant_id, (retry_ns + MB_NS_PER_MS - 1) / MB_NS_PER_MS);
		return MB_STATUS_OVERLOADED;
	}
	timeout_ms = h->timeout_ms != 0 ? h->timeout_ms : m->default_timeout_ms;
	req->deadline_ns = req->arrival_ns + (uint64_t)timeout_ms * MB_NS_PER_MS;
	req->cost_units = cost;
	req->windows = (uint16_t)windows;
	return MB_STATUS_OK;
}

void
mb_admission_undo(struct mb_admission *a, struct mb_request *req)
{
	if (req->model >= a->n_models) {
		MB_LOG_REQ(ERR, req->hdr.request_id, req->hdr.tenant_id,
			   "undo of a request that was never admitted (model %" PRIu32 ")",
			   req->model);
		abort();
	}
	atomic_fetch_sub_explicit(&a->models[req->model].m->queued,
				  req->windows > 1 ? req->windows : 1, memory_order_acq_rel);
	req->deadline_ns = 0; /* not queued after all: not in the latency histogram */
}
