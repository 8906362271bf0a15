/*
 * admission_test.c: every answer the admission gives, with its reason and its counters,
 * on the virtual clock and without a daemon.
 *
 * Each case builds two devices (test0 of 16 units, test1 of 24), two models ("fake" on both
 * devices, "other" on test0 alone, each with a breaker per device), a metrics registry with
 * the requests_total series the service registers, a tenant rate limiter, and the
 * admission over them; the test plays the ingest thread (checks requests, undoes some).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mb_admission.h"
#include "mb_breaker.h"
#include "mb_env.h"
#include "mb_test.h"

#define N_MODELS 2
#define N_REQ 16
#define FAKE 0
#define OTHER 1
#define LIMITED_TENANT 7
#define FAILURES 3
#define COOLDOWN_MS 5000

/* fake's own check(): the sample rate, as the built-in audio models do */
static int
fake_check(const struct mb_request_hdr *h, char *reason, size_t len)
{
	if (h->sample_rate == 16000)
		return 0;
	snprintf(reason, len, "sample_rate: %u, fake needs 16000", h->sample_rate);
	return -1;
}

static int
any_check(const struct mb_request_hdr *h, char *reason, size_t len)
{
	(void)h;
	(void)reason;
	(void)len;
	return 0;
}

static const struct mb_model_desc g_fake = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "fake",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.check = fake_check,
};

static const struct mb_model_desc g_other = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "other",
	.media_mask = MB_MEDIA_MASK_ANY,
	.check = any_check,
};

struct rig {
	struct mb_metrics *metrics;
	struct mb_metric *requests[N_MODELS + 1][MB_ADMISSION_TRANSPORTS];
	struct mb_metric *rate_limited[N_MODELS];
	struct mb_device *devs[2];
	struct mb_model models[N_MODELS];
	struct mb_model *model_ptrs[N_MODELS];
	struct mb_breaker breakers[N_MODELS][MB_DEVICES_MAX];
	struct mb_ratelimit *limits;
	struct mb_admission *a;
	struct mb_request req[N_REQ];
	int next;
	char reason[MB_PROTO_REASON_MAX];
};

static void
model_up(struct rig *r, uint32_t i, const struct mb_model_desc *d, uint32_t mask)
{
	struct mb_model *m = &r->models[i];
	struct mb_breaker_opts bo;

	mb_breaker_opts_init(&bo);
	bo.failure_threshold = FAILURES;
	bo.cooldown_ns = COOLDOWN_MS * MB_NS_PER_MS; /* the virtual clock stands still anyway */
	m->index = i;
	m->desc = d;
	m->enabled = true;
	m->max_batch = 8;
	m->max_delay_us = 1000;
	m->queue_limit = 64;
	m->default_timeout_ms = 5000;
	m->base_units = 2;
	m->item_units_per_second = 1.0; /* one unit per second of audio */
	m->numa_node = MB_NUMA_ANY;
	m->devices = mask;
	for (int k = 0; k < 2; k++)
		if (mask & MB_DEVICE_BIT(k)) {
			CU_ASSERT_EQUAL_FATAL(mb_breaker_init(&r->breakers[i][k], &bo), 0);
			if (r->devs[k]->capacity > m->capacity)
				m->capacity = r->devs[k]->capacity;
		}
	m->breakers = r->breakers[i];
	atomic_init(&m->queued, 0);
	r->model_ptrs[i] = m;
}

static void
rig_up(struct rig *r)
{
	struct mb_device_opts dopts = {.index = 0,
				       .name = "test0",
				       .units = 16,
				       .batch_capacity = 8,
				       .n_batches = 4,
				       .numa_node = MB_NUMA_ANY};
	struct mb_ratelimit_opts rlo;
	struct mb_admission_opts ao;
	char l[128];

	memset(r, 0, sizeof(*r));
	mb_env_clock_use_virtual(MB_NS_PER_S);
	CU_ASSERT_EQUAL_FATAL(mb_device_create(&dopts, &r->devs[0]), 0);
	dopts.index = 1;
	dopts.name = "test1";
	dopts.units = 24;
	CU_ASSERT_EQUAL_FATAL(mb_device_create(&dopts, &r->devs[1]), 0);
	model_up(r, FAKE, &g_fake, MB_DEVICE_BIT(0) | MB_DEVICE_BIT(1));
	model_up(r, OTHER, &g_other, MB_DEVICE_BIT(0));
	CU_ASSERT_EQUAL_FATAL(mb_metrics_create(&r->metrics), 0);
	for (int i = 0; i <= N_MODELS; i++) {
		const char *name = i < N_MODELS ? r->models[i].desc->name : "_unknown";

		r->requests[i][MB_TRANSPORT_ZMQ] = mb_metrics_counter(
			r->metrics, "mediabatch_requests_total", "Requests received.",
			mb_metrics_labels(l, sizeof(l), "model", name, "transport", "zmq", NULL));
		r->requests[i][MB_TRANSPORT_UDP] = mb_metrics_counter(
			r->metrics, "mediabatch_requests_total", "Requests received.",
			mb_metrics_labels(l, sizeof(l), "model", name, "transport", "udp", NULL));
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->requests[i][MB_TRANSPORT_ZMQ]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->requests[i][MB_TRANSPORT_UDP]);
		if (i < N_MODELS)
			r->rate_limited[i] = mb_metrics_counter(
				r->metrics, "mediabatch_rate_limited_total", "Rate limited.",
				mb_metrics_labels(l, sizeof(l), "model", name, NULL));
	}
	/* every tenant unlimited but one: 1 request per second, burst 1 */
	mb_ratelimit_opts_init(&rlo);
	CU_ASSERT_EQUAL_FATAL(mb_ratelimit_create(&rlo, &r->limits), 0);
	CU_ASSERT_EQUAL_FATAL(mb_ratelimit_set(r->limits, LIMITED_TENANT, 1.0, 1), 0);
	mb_admission_opts_init(&ao);
	ao.models = r->model_ptrs;
	ao.n_models = N_MODELS;
	ao.devices = r->devs;
	ao.n_devices = 2;
	ao.served = "fake, other";
	ao.breaker_failures = FAILURES;
	ao.breaker_cooldown_ms = COOLDOWN_MS;
	ao.requests = r->requests;
	ao.rate_limited = r->rate_limited;
	CU_ASSERT_EQUAL_FATAL(mb_admission_create(&ao, &r->a), 0);
}

static void
rig_down(struct rig *r)
{
	mb_admission_destroy(&r->a);
	CU_ASSERT_PTR_NULL(r->a);
	mb_ratelimit_destroy(&r->limits);
	mb_metrics_destroy(&r->metrics);
	for (int i = 0; i < N_MODELS; i++)
		for (int k = 0; k < 2; k++)
			if (r->models[i].devices & MB_DEVICE_BIT(k))
				mb_breaker_fini(&r->breakers[i][k]);
	for (int k = 0; k < 2; k++)
		mb_device_destroy(&r->devs[k]);
}

/* A request for @p model as an ingest decodes it: @p seconds of 16-bit audio at @p rate. */
static struct mb_request *
audio(struct rig *r, const char *model, uint32_t rate, uint32_t seconds)
{
	struct mb_request *q = &r->req[r->next++];

	CU_ASSERT_FATAL(r->next <= N_REQ);
	memset(q, 0, sizeof(*q));
	q->hdr.request_id = (uint64_t)r->next;
	q->hdr.tenant_id = 1;
	snprintf(q->hdr.model, sizeof(q->hdr.model), "%s", model);
	q->hdr.media = MB_MEDIA_PCM_S16LE;
	q->hdr.channels = 1;
	q->hdr.sample_rate = rate;
	q->hdr.payload_len = rate * seconds * 2;
	q->transport = MB_TRANSPORT_ZMQ;
	q->model = MB_REQUEST_NO_MODEL;
	q->arrival_ns = mb_env_now_ns();
	return q;
}

static enum mb_status
check(struct rig *r, struct mb_request *q)
{
	r->reason[0] = '\0';
	return mb_admission_check(r->a, r->limits, q, r->reason, sizeof(r->reason));
}

static int64_t
counted(struct rig *r, int model, int transport)
{
	return mb_metric_value(r->requests[model][transport]);
}

static unsigned int
queued(struct rig *r, int model)
{
	return atomic_load(&r->models[model].queued);
}

/* Open every breaker of @p model on @p dev: FAILURES failed batches in a row. */
static void
open_breaker(struct rig *r, int model, int dev)
{
	struct mb_breaker *b = &r->breakers[model][dev];

	for (int i = 0; i < FAILURES; i++)
		mb_breaker_report(b, mb_breaker_check(b), false);
	CU_ASSERT_TRUE_FATAL(mb_breaker_rejecting(b));
}

static void
test_unknown_model(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	q = audio(&r, "nope", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNKNOWN_MODEL);
	CU_ASSERT_STRING_EQUAL(r.reason, "model: 'nope' is not served here (served: fake, other)");
	CU_ASSERT_TRUE(q->counted);
	CU_ASSERT_EQUAL(q->model, MB_REQUEST_NO_MODEL);
	CU_ASSERT_EQUAL(q->deadline_ns, 0);
	q = audio(&r, "nope", 16000, 1);
	q->transport = MB_TRANSPORT_UDP;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNKNOWN_MODEL);
	/* the "_unknown" row, by transport; nothing counted for the served models */
	CU_ASSERT_EQUAL(counted(&r, N_MODELS, MB_TRANSPORT_ZMQ), 1);
	CU_ASSERT_EQUAL(counted(&r, N_MODELS, MB_TRANSPORT_UDP), 1);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 0);
	CU_ASSERT_EQUAL(counted(&r, OTHER, MB_TRANSPORT_ZMQ), 0);
	/* a name that only starts like a served one is not that model */
	q = audio(&r, "fak", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNKNOWN_MODEL);
	CU_ASSERT_PTR_EQUAL(mb_admission_find(r.a, "fake"), &r.models[FAKE]);
	CU_ASSERT_PTR_EQUAL(mb_admission_find(r.a, "other"), &r.models[OTHER]);
	CU_ASSERT_PTR_NULL(mb_admission_find(r.a, "fakes"));
	rig_down(&r);
}

static void
test_unavailable_disabled_and_hung(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	r.models[FAKE].enabled = false;
	snprintf(r.models[FAKE].disabled_reason, sizeof(r.models[FAKE].disabled_reason),
		 "disabled in test.yaml");
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(r.reason, "model fake is unavailable: disabled in test.yaml");
	CU_ASSERT_EQUAL(q->model, FAKE);
	CU_ASSERT_TRUE(q->counted);

	r.models[FAKE].enabled = true;
	snprintf(r.models[FAKE].hung_reason, sizeof(r.models[FAKE].hung_reason),
		 "a batch ran past run_timeout_ms 100 on test0");
	atomic_store(&r.models[FAKE].hung, true);
	q = audio(&r, "fake", 16000, 1);
	q->transport = MB_TRANSPORT_UDP;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "model fake is unavailable: a batch ran past run_timeout_ms 100 on "
			       "test0");
	/* counted for the model, by transport, even when refused */
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 1);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_UDP), 1);
	CU_ASSERT_EQUAL(counted(&r, N_MODELS, MB_TRANSPORT_ZMQ), 0);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 0);
	CU_ASSERT_EQUAL(q->deadline_ns, 0);
	rig_down(&r);
}

static void
test_unavailable_open_breakers(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	/* one of fake's two devices refuses it: it is still served */
	open_breaker(&r, FAKE, 0);
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	/* both: unavailable, naming both devices */
	open_breaker(&r, FAKE, 1);
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "model fake is unavailable: its circuit breakers on test0, test1 "
			       "are open after 3 failed batches in a row; it probes again within "
			       "5000 ms");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	/* a model on one device: the singular */
	open_breaker(&r, OTHER, 0);
	q = audio(&r, "other", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "model other is unavailable: its circuit breaker on test0 is open "
			       "after 3 failed batches in a row; it probes again within 5000 ms");
	CU_ASSERT_EQUAL(queued(&r, OTHER), 0);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 2);
	CU_ASSERT_EQUAL(counted(&r, OTHER, MB_TRANSPORT_ZMQ), 1);
	rig_down(&r);
}

static void
test_bad_request_media_and_check(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	q = audio(&r, "fake", 16000, 1);
	q->hdr.media = MB_MEDIA_RGB24;
	q->hdr.frames = 16;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "media: RGB24 is not accepted by fake (it takes PCM_S16LE, "
			       "PCM_F32LE)");
	/* the model's own check() writes the reason */
	q = audio(&r, "fake", 44100, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_STRING_EQUAL(r.reason, "sample_rate: 44100, fake needs 16000");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 0);
	CU_ASSERT_EQUAL(q->deadline_ns, 0);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 2);
	rig_down(&r);
}

static void
test_too_large_names_device(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	/* 2 + 22 units fit test1 exactly; 2 + 23 fit nowhere */
	q = audio(&r, "fake", 16000, 22);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(q->cost_units, 22);
	q = audio(&r, "fake", 16000, 23);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_TOO_LARGE);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "this request needs 25 device units (2 for a batch of fake, 23 for "
			       "its media) but device test1 has 24");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	/* on test0 alone (16 units) */
	q = audio(&r, "other", 16000, 15);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_TOO_LARGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "needs 17 device units"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "but device test0 has 16"));
	CU_ASSERT_EQUAL(queued(&r, OTHER), 0);
	rig_down(&r);
}

static void
test_overloaded_queue_limit(void)
{
	struct rig r;
	struct mb_request *q1, *q2, *q3;

	rig_up(&r);
	r.models[FAKE].queue_limit = 2;
	q1 = audio(&r, "fake", 16000, 1);
	q2 = audio(&r, "fake", 16000, 1);
	q3 = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q1), MB_STATUS_OK);
	CU_ASSERT_EQUAL(check(&r, q2), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 2);
	CU_ASSERT_EQUAL(check(&r, q3), MB_STATUS_OVERLOADED);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "the fake queue is full (2 waiting, queue_limit 2); retry later");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 2); /* the refused one gave its place back */
	CU_ASSERT_EQUAL(q3->deadline_ns, 0);
	/* one leaves the queue (the batcher took it): the next one fits */
	atomic_fetch_sub(&r.models[FAKE].queued, 1);
	CU_ASSERT_EQUAL(check(&r, q3), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 2);
	/* a limit lowered live counts at once */
	r.models[FAKE].queue_limit = 1;
	q3 = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q3), MB_STATUS_OVERLOADED);
	CU_ASSERT_STRING_EQUAL(r.reason,
			       "the fake queue is full (2 waiting, queue_limit 1); retry later");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 2);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 5);
	rig_down(&r);
}

/* A request of more windows than queue_limit could never fit: TOO_LARGE, not OVERLOADED
 * "retry later" (it was refused so on an idle daemon, every time) */
static void
test_windows_over_queue_limit(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	r.models[FAKE].window = 16000; /* 1 s windows, up to 8, joined by concatenation */
	r.models[FAKE].max_windows = 8;
	r.models[FAKE].join = MB_JOIN_CONCAT_ROWS;
	r.models[FAKE].queue_limit = 4;
	q = audio(&r, "fake", 16000, 4); /* 4 windows: fits the empty queue */
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 4);
	atomic_store(&r.models[FAKE].queued, 0);
	q = audio(&r, "fake", 16000, 6); /* 6 windows, within max_windows, past queue_limit */
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_TOO_LARGE);
	CU_ASSERT_STRING_EQUAL(r.reason, "6 windows take 6 places of the fake queue, more than its "
					 "queue_limit 4 (models[].queue_limit; send shorter media, "
					 "or raise it)");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 0);
	rig_down(&r);
}

static void
test_overloaded_rate_limit(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	q = audio(&r, "fake", 16000, 1);
	q->hdr.tenant_id = LIMITED_TENANT;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	q = audio(&r, "fake", 16000, 1);
	q->hdr.tenant_id = LIMITED_TENANT;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OVERLOADED);
	CU_ASSERT_STRING_EQUAL(r.reason, "tenant 7 is over its rate limit; retry in 1000 ms");
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1); /* not left counted */
	CU_ASSERT_EQUAL(q->deadline_ns, 0);
	/* other tenants are not limited */
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 2);
	/* 400 ms later: 600 ms to go (rounded up to whole ms) */
	mb_env_clock_advance(400 * MB_NS_PER_MS);
	q = audio(&r, "fake", 16000, 1);
	q->hdr.tenant_id = LIMITED_TENANT;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OVERLOADED);
	CU_ASSERT_STRING_EQUAL(r.reason, "tenant 7 is over its rate limit; retry in 600 ms");
	/* a second after the first: a token again */
	mb_env_clock_advance(600 * MB_NS_PER_MS);
	q = audio(&r, "fake", 16000, 1);
	q->hdr.tenant_id = LIMITED_TENANT;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 3);
	/* the two refusals counted against the model, apart from other OVERLOADED answers */
	CU_ASSERT_EQUAL(mb_metric_value(r.rate_limited[FAKE]), 2);
	CU_ASSERT_EQUAL(mb_metric_value(r.rate_limited[OTHER]), 0);
	rig_down(&r);
}

static void
test_ok_sets_deadline_cost_and_counts(void)
{
	struct rig r;
	struct mb_request *q;

	rig_up(&r);
	/* the request's own timeout */
	q = audio(&r, "fake", 16000, 3);
	q->hdr.timeout_ms = 250;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(q->model, FAKE);
	CU_ASSERT_EQUAL(q->deadline_ns, q->arrival_ns + 250 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(q->cost_units, 3);
	CU_ASSERT_TRUE(q->counted);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	/* none: the model's default, as it is now (it changes live) */
	r.models[OTHER].default_timeout_ms = 1234;
	q = audio(&r, "other", 16000, 1);
	q->transport = MB_TRANSPORT_UDP;
	q->hdr.payload_len = 16000; /* half a second: a unit, rounded up */
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(q->model, OTHER);
	CU_ASSERT_EQUAL(q->deadline_ns, q->arrival_ns + 1234 * MB_NS_PER_MS);
	CU_ASSERT_EQUAL(q->cost_units, 1);
	CU_ASSERT_EQUAL(queued(&r, OTHER), 1);
	/* media without a duration cost nothing beyond the base */
	q = audio(&r, "other", 16000, 1);
	q->hdr.media = MB_MEDIA_F32;
	q->hdr.frames = 4;
	q->hdr.height = 4;
	q->hdr.payload_len = 64;
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	CU_ASSERT_EQUAL(q->cost_units, 0);
	CU_ASSERT_EQUAL(queued(&r, OTHER), 2);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 1);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_UDP), 0);
	CU_ASSERT_EQUAL(counted(&r, OTHER, MB_TRANSPORT_UDP), 1);
	CU_ASSERT_EQUAL(counted(&r, OTHER, MB_TRANSPORT_ZMQ), 1);
	CU_ASSERT_EQUAL(counted(&r, N_MODELS, MB_TRANSPORT_ZMQ), 0);
	rig_down(&r);
}

static void
test_undo(void)
{
	struct rig r;
	struct mb_request *q1, *q2;

	rig_up(&r);
	q1 = audio(&r, "fake", 16000, 1);
	q2 = audio(&r, "other", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q1), MB_STATUS_OK);
	CU_ASSERT_EQUAL(check(&r, q2), MB_STATUS_OK);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	CU_ASSERT_EQUAL(queued(&r, OTHER), 1);
	mb_admission_undo(r.a, q2);
	CU_ASSERT_EQUAL(queued(&r, OTHER), 0);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 1);
	CU_ASSERT_EQUAL(q2->deadline_ns, 0);
	CU_ASSERT_NOT_EQUAL(q1->deadline_ns, 0);
	/* still counted once as a request */
	CU_ASSERT_EQUAL(counted(&r, OTHER, MB_TRANSPORT_ZMQ), 1);
	rig_down(&r);
}

static void
test_create_checks_options(void)
{
	struct rig r;
	struct mb_admission_opts ao;
	struct mb_admission *a = NULL;
	struct mb_request *q;
	char served[MB_ADMISSION_SERVED_MAX + 1];

	rig_up(&r);
	mb_admission_opts_init(&ao);
	ao.models = r.model_ptrs;
	ao.n_models = N_MODELS;
	ao.devices = r.devs;
	ao.n_devices = 2;
	/* a model out of its place */
	r.models[OTHER].index = 5;
	CU_ASSERT_EQUAL(mb_admission_create(&ao, &a), -EINVAL);
	CU_ASSERT_PTR_NULL(a);
	r.models[OTHER].index = OTHER;
	ao.n_devices = MB_DEVICES_MAX + 1;
	CU_ASSERT_EQUAL(mb_admission_create(&ao, &a), -EINVAL);
	ao.n_devices = 2;
	memset(served, 'x', sizeof(served) - 1);
	served[sizeof(served) - 1] = '\0';
	ao.served = served;
	CU_ASSERT_EQUAL(mb_admission_create(&ao, &a), -EINVAL);
	served[MB_ADMISSION_SERVED_MAX - 1] = '\0'; /* the longest that fits */
	CU_ASSERT_EQUAL(mb_admission_create(&ao, &a), 0);
	mb_admission_destroy(&a);
	/* no counters, nothing served: checks all the same */
	ao.served = NULL;
	CU_ASSERT_EQUAL_FATAL(mb_admission_create(&ao, &a), 0);
	q = audio(&r, "nope", 16000, 1);
	CU_ASSERT_EQUAL(mb_admission_check(a, r.limits, q, r.reason, sizeof(r.reason)),
			MB_STATUS_UNKNOWN_MODEL);
	CU_ASSERT_STRING_EQUAL(r.reason, "model: 'nope' is not served here (served: )");
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(mb_admission_check(a, r.limits, q, r.reason, sizeof(r.reason)),
			MB_STATUS_OK);
	mb_admission_undo(a, q);
	CU_ASSERT_EQUAL(queued(&r, FAKE), 0);
	CU_ASSERT_EQUAL(counted(&r, FAKE, MB_TRANSPORT_ZMQ), 0);
	mb_admission_destroy(&a);
	CU_ASSERT_PTR_NULL(a);
	mb_admission_destroy(&a); /* NULL accepted */
	mb_admission_destroy(NULL);
	rig_down(&r);
}

static void
test_check_allocates_nothing(void)
{
	struct rig r;
	struct mb_env_alloc_stats before, after;
	struct mb_request *q;

	rig_up(&r);
	mb_env_alloc_stats(&before);
	q = audio(&r, "fake", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_OK);
	mb_admission_undo(r.a, q);
	q = audio(&r, "nope", 16000, 1);
	CU_ASSERT_EQUAL(check(&r, q), MB_STATUS_UNKNOWN_MODEL);
	mb_env_alloc_stats(&after);
	CU_ASSERT_EQUAL(after.allocs, before.allocs);
	rig_down(&r);
}

static int
suite_init(void)
{
	mb_test_eal_up("admission_test");
	return 0;
}

static const struct mb_test_case cases[] = {
	{"UNKNOWN_MODEL names the served models; counted as _unknown", test_unknown_model},
	{"UNAVAILABLE: disabled, and hung", test_unavailable_disabled_and_hung},
	{"UNAVAILABLE: every breaker open, naming the devices", test_unavailable_open_breakers},
	{"BAD_REQUEST: media, and the model's check()", test_bad_request_media_and_check},
	{"TOO_LARGE names the largest device", test_too_large_names_device},
	{"OVERLOADED: queue_limit, queued not left counted", test_overloaded_queue_limit},
	{"TOO_LARGE: more windows than queue_limit", test_windows_over_queue_limit},
	{"OVERLOADED: the tenant's rate limit", test_overloaded_rate_limit},
	{"OK sets deadline and cost_units, counts queued", test_ok_sets_deadline_cost_and_counts},
	{"undo gives the queue place back", test_undo},
	{"create checks its options; no counters is fine", test_create_checks_options},
	{"a check allocates nothing", test_check_allocates_nothing},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"admission", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	int rc = mb_test_main("admission_test", suites);

	mb_test_eal_down();
	return rc;
}
