/*
 * overload_test.c (e2e): past a model's queue limit, past max_inflight and past a tenant's
 * rate limit the daemon answers OVERLOADED with the reason; every request gets exactly one
 * answer; and a flood far beyond the limits leaves memory bounded.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "mb_e2e.h"
#include "mb_test.h"

/* Built with a sanitizer: its own memory (ASan's quarantine, TSan's shadow and history)
 * grows with the traffic, so the RSS bound allows for it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MB_E2E_SANITIZER 1
#else
#define MB_E2E_SANITIZER 0
#endif

struct tally {
	int by_status[MB_STATUS_COUNT];
	int answered, dup, missing;
	char reason[MB_STATUS_COUNT][256];
};

/*
 * Send @n identity requests (ids 0..n-1, tenant @tenant, @bytes of payload each) keeping
 * up to @window outstanding, and collect every answer.
 */
static void
blast(const struct mb_daemon *d, uint32_t tenant, int n, int window, uint16_t cols, struct tally *t)
{
	struct mb_client_opts o = {.endpoint = d->ingest, .sndhwm = 100000};
	struct mb_client *c = NULL;
	uint8_t *seen = calloc((size_t)n, 1);
	float *payload = calloc(cols, sizeof(float));
	char err[128];
	int sent = 0;
	double deadline = mb_e2e_now() + 120;

	memset(t, 0, sizeof(*t));
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &c, err, sizeof(err)), 0);
	while (t->answered < n && mb_e2e_now() < deadline) {
		struct mb_client_response r;

		while (sent < n && sent - t->answered < window) {
			struct mb_request_hdr h;

			mb_client_tensor_hdr(&h, "identity", tenant, (uint64_t)sent, 1, cols);
			if (mb_client_send(c, &h, payload, (size_t)cols * 4) != 0)
				break;
			sent++;
		}
		if (mb_client_recv(c, &r, 1000) != 0)
			continue;
		if (r.hdr.request_id < (uint64_t)n && !seen[r.hdr.request_id]++) {
			t->answered++;
			if (r.hdr.status < MB_STATUS_COUNT) {
				t->by_status[r.hdr.status]++;
				if (r.hdr.status != MB_STATUS_OK)
					snprintf(t->reason[r.hdr.status], sizeof(t->reason[0]),
						 "%s", (char *)r.data);
			}
		} else {
			t->dup++;
		}
		mb_client_response_free(&r);
	}
	for (int i = 0; i < n; i++)
		if (!seen[i])
			t->missing++;
	mb_client_close(&c);
	free(seen);
	free(payload);
}

static void
test_queue_limit(void)
{
	struct mb_daemon d;
	struct tally t;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "models:\n  - name: identity\n    queue_limit: 8\n"
					      "    max_delay_us: 400000\n    max_batch: 64\n",
					      NULL),
			      0);
	blast(&d, 1, 60, 60, 4, &t);
	printf("\n    queue_limit 8: OK %d, OVERLOADED %d", t.by_status[MB_STATUS_OK],
	       t.by_status[MB_STATUS_OVERLOADED]);
	CU_ASSERT_EQUAL(t.answered, 60);
	CU_ASSERT_EQUAL(t.missing, 0);
	CU_ASSERT_EQUAL(t.dup, 0);
	CU_ASSERT(t.by_status[MB_STATUS_OK] >= 8);
	CU_ASSERT(t.by_status[MB_STATUS_OVERLOADED] >= 1);
	CU_ASSERT_EQUAL(t.by_status[MB_STATUS_OK] + t.by_status[MB_STATUS_OVERLOADED], 60);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason[MB_STATUS_OVERLOADED], "identity queue is full"));
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static void
test_max_inflight(void)
{
	struct mb_daemon d;
	struct tally t;

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d,
				"service:\n  max_inflight: 16\n  max_inflight_per_client: 16\n"
				"models:\n  - name: identity\n    max_delay_us: 400000\n",
				NULL),
		0);
	blast(&d, 1, 60, 60, 4, &t);
	printf("\n    max_inflight 16: OK %d, OVERLOADED %d", t.by_status[MB_STATUS_OK],
	       t.by_status[MB_STATUS_OVERLOADED]);
	CU_ASSERT_EQUAL(t.answered, 60);
	CU_ASSERT(t.by_status[MB_STATUS_OVERLOADED] >= 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason[MB_STATUS_OVERLOADED], "16 requests are in flight"));
	/* refused before admission, and still counted under their model, as requests too */
	mb_daemon_inflight_settled(&d, 10);
	CU_ASSERT_EQUAL(
		mb_daemon_metric(
			&d, "mediabatch_responses_total{model=\"identity\",status=\"OVERLOADED\"}"),
		t.by_status[MB_STATUS_OVERLOADED]);
	CU_ASSERT_EQUAL(
		mb_daemon_metric(
			&d, "mediabatch_responses_total{model=\"_unknown\",status=\"OVERLOADED\"}"),
		0);
	CU_ASSERT_EQUAL(
		mb_daemon_metric(&d,
				 "mediabatch_requests_total{model=\"identity\",transport=\"zmq\"}"),
		60);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static void
test_tenant_rate_limit(void)
{
	struct mb_daemon d;
	struct tally limited, other;

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d, "tenants:\n  limits:\n    - {tenant: 5, rate: 0.2, burst: 3}\n",
				NULL),
		0);
	blast(&d, 5, 10, 10, 4, &limited);
	blast(&d, 6, 10, 10, 4, &other); /* no limit of its own; the default is unlimited */
	CU_ASSERT_EQUAL(limited.answered, 10);
	CU_ASSERT_EQUAL(limited.by_status[MB_STATUS_OK], 3); /* the burst */
	CU_ASSERT_EQUAL(limited.by_status[MB_STATUS_OVERLOADED], 7);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(limited.reason[MB_STATUS_OVERLOADED], "tenant 5 is over its rate limit"));
	CU_ASSERT_EQUAL(other.by_status[MB_STATUS_OK], 10);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static long
rss_kib(pid_t pid)
{
	return mb_e2e_status_kib(pid, "VmRSS");
}

static void
test_flood_memory_bounded(void)
{
	struct mb_daemon d;
	struct tally t;
	long before, after;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "service:\n  max_inflight: 64\n"
					      "models:\n  - name: identity\n    queue_limit: 32\n",
					      NULL),
			      0);
	blast(&d, 1, 2000, 500, 1024, &t); /* warm up allocator pools */
	before = rss_kib(d.pid);
	blast(&d, 1, 20000, 2000, 1024, &t); /* 4 KiB payloads, 2000 outstanding */
	after = rss_kib(d.pid);
	printf("\n    flood of 20000 (2000 outstanding, limit 64): OK %d, OVERLOADED %d; RSS %ld "
	       "-> %ld KiB",
	       t.by_status[MB_STATUS_OK], t.by_status[MB_STATUS_OVERLOADED], before, after);
	CU_ASSERT_EQUAL(t.answered, 20000);
	CU_ASSERT_EQUAL(t.missing, 0);
	CU_ASSERT_EQUAL(t.by_status[MB_STATUS_OK] + t.by_status[MB_STATUS_OVERLOADED], 20000);
	/* Bounded: no growth with the backlog. Under AddressSanitizer freed memory sits in its
	 * quarantine (256 MiB by default) before reuse; under ThreadSanitizer its shadow and
	 * access history grow with the traffic (about 80 MiB here). The bound allows for that. */
	CU_ASSERT(after - before < 64 * 1024 + (MB_E2E_SANITIZER ? 256 * 1024 : 0));
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 5), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* One identity request of @p rows x 1024 F32 on @p c, and its answer within @p ms (or -1). */
static int
send_rows(struct mb_client *c, uint64_t id, uint32_t rows, int ms, struct mb_client_response *r)
{
	struct mb_request_hdr h;
	size_t bytes = (size_t)rows * 1024 * sizeof(float);
	float *payload = calloc(bytes / sizeof(float), sizeof(float));
	int rc;

	mb_client_tensor_hdr(&h, "identity", 1, id, rows, 1024);
	rc = mb_client_send(c, &h, payload, bytes);
	free(payload);
	if (rc != 0)
		return -1;
	return mb_client_recv(c, r, ms);
}

static void
test_huge_frame_cut(void)
{
	struct mb_daemon d;
	struct mb_client_opts o = {0};
	struct mb_client *a = NULL, *b = NULL;
	struct mb_client_response r;
	char err[128];
	long hwm_before, hwm_after;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "service:\n  max_payload_bytes: 1048576\n", NULL),
			      0);
	o.endpoint = d.ingest;
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &b, err, sizeof(err)), 0);
	/* over the maximum but under twice it: read, and answered with the reason */
	CU_ASSERT_EQUAL_FATAL(send_rows(a, 1, 384, 10000, &r), 0); /* 1.5 MiB */
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_TOO_LARGE);
	CU_ASSERT_PTR_NOT_NULL(strstr((char *)r.data, "exceeds"));
	mb_client_response_free(&r);
	/* 128 MiB in one frame: the connection is cut from the length prefix; nothing is
	 * buffered, so the daemon's peak memory does not move by the frame's size */
	hwm_before = mb_e2e_status_kib(d.pid, "VmHWM");
	CU_ASSERT_NOT_EQUAL(send_rows(b, 2, 32768, 3000, &r), 0); /* no answer can come */
	hwm_after = mb_e2e_status_kib(d.pid, "VmHWM");
	printf("\n    1.5 MiB: TOO_LARGE; 128 MiB frame: peak RSS %ld -> %ld KiB", hwm_before,
	       hwm_after);
	CU_ASSERT(hwm_before > 0 && hwm_after - hwm_before < 32 * 1024);
	/* the daemon and the other requester go on */
	CU_ASSERT_EQUAL_FATAL(send_rows(a, 3, 4, 10000, &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
	mb_client_response_free(&r);
	mb_client_close(&a);
	mb_client_close(&b);
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 5), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* One request (header and payload) on the raw DEALER @p s. */
static void
raw_send(void *s, const struct mb_request_hdr *h, const void *payload, size_t len)
{
	uint8_t w[MB_PROTO_HDR_LEN];

	mb_proto_encode_request(h, w);
	zmq_send(s, w, sizeof(w), ZMQ_SNDMORE);
	zmq_send(s, payload, len, 0);
}

/* @p n requests with ids @p first.. whose header the front door refuses as it reads it
 * (version 7: BAD_REQUEST). */
static void
send_bad_headers(void *s, int first, int n)
{
	for (int i = 0; i < n; i++) {
		struct mb_request_hdr h;
		float x = 1;

		mb_client_tensor_hdr(&h, "identity", 1, (uint64_t)(first + i), 1, 1);
		h.version = 7;
		raw_send(s, &h, &x, sizeof(x));
	}
}

/*
 * A requester that does not read (ZMQ_RCVHWM 1), on @p ctx: @p n logmel requests of @p pcm
 * (@p bytes) sent, then waited for until every result is computed (mediabatch_inflight has
 * stopped changing: what the kernel and ZeroMQ do not hold is then held by the daemon, its
 * count in *@p inflight). Returns the socket.
 */
static void *
stalled_requester(const struct mb_daemon *d, void *ctx, const int16_t *pcm, size_t bytes, int n,
		  double *inflight)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int one = 1, linger = 0;
	double before, deadline = mb_e2e_now() + 60;

	zmq_setsockopt(s, ZMQ_RCVHWM, &one, sizeof(one));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	CU_ASSERT_EQUAL(zmq_connect(s, d->ingest), 0);
	for (int i = 0; i < n; i++) {
		struct mb_request_hdr h;

		mb_client_audio_hdr(&h, "logmel", 1, (uint64_t)i, MB_MEDIA_PCM_S16LE, 16000,
				    (uint32_t)bytes);
		raw_send(s, &h, pcm, bytes);
	}
	*inflight = -1;
	do {
		before = *inflight;
		usleep(500000);
		*inflight = mb_daemon_metric(d, "mediabatch_inflight");
	} while (*inflight != before && mb_e2e_now() < deadline);
	return s;
}

/*
 * A requester whose reply queue is full (zmq.router_sndhwm, and the kernel's buffers) gets
 * the front door's refusals as it gets its replies: held, and sent in turn once it reads.
 * They were published only: lost to it (0 of 10 came), and counted nowhere.
 */
static void
test_refusals_held_for_slow_reader(void)
{
	enum { N_OK = 400, N_BAD = 10 };
	static int16_t pcm[16000]; /* 1 s: a 100 x 80 F32 result, 32 KB */
	struct mb_daemon d;
	void *ctx, *s;
	int ok = 0, refused = 0, other = 0;
	double inflight;
	uint8_t seen[N_OK + N_BAD] = {0};

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "zmq:\n  router_sndhwm: 100\n"
					      "models:\n  - name: logmel\n    queue_limit: 1000\n",
					      NULL),
			      0);
	ctx = zmq_ctx_new();
	s = stalled_requester(&d, ctx, pcm, sizeof(pcm), N_OK, &inflight);
	printf("\n    %.0f of %d replies held by the daemon for a requester that does not read",
	       inflight, N_OK);
	CU_ASSERT(inflight > 0);
	send_bad_headers(s, N_OK, N_BAD); /* refused as the header is read: BAD_REQUEST */
	usleep(300000);
	/* now read everything, until quiet for 3 s */
	for (;;) {
		zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
		uint8_t hdr[128], body[65536];
		struct mb_response_hdr r;
		char why[64];
		int n, more = 0;
		size_t ml = sizeof(more);

		if (zmq_poll(&it, 1, 3000) <= 0)
			break;
		n = zmq_recv(s, hdr, sizeof(hdr), 0);
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
		if (more)
			zmq_recv(s, body, sizeof(body), 0);
		if (n != MB_PROTO_HDR_LEN ||
		    mb_proto_decode_response(hdr, MB_PROTO_HDR_LEN, &r, why, sizeof(why)) < 0 ||
		    r.request_id >= N_OK + N_BAD || seen[r.request_id]++) {
			other++;
			continue;
		}
		if (r.request_id < N_OK && r.status == MB_STATUS_OK)
			ok++;
		else if (r.request_id >= N_OK && r.status == MB_STATUS_BAD_REQUEST)
			refused++;
		else
			other++;
	}
	printf("; read: OK %d of %d, BAD_REQUEST %d of %d, other %d", ok, N_OK, refused, N_BAD,
	       other);
	CU_ASSERT_EQUAL(ok, N_OK);
	CU_ASSERT_EQUAL(refused, N_BAD);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_reply_dropped_total{reason="
					     "\"refusals_unread\"}"),
			0);
	zmq_close(s);
	zmq_ctx_term(ctx);
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 5), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* One response from @p s within @p ms: 1 (in *@p r), 0 for one that does not decode, -1
 * for none. */
static int
recv_response(void *s, int ms, struct mb_response_hdr *r)
{
	zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
	uint8_t hdr[128];
	static uint8_t body[1 << 20];
	char why[64];
	int n, more = 0;
	size_t ml = sizeof(more);

	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	n = zmq_recv(s, hdr, sizeof(hdr), 0);
	zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
	if (more)
		zmq_recv(s, body, sizeof(body), 0);
	return n == MB_PROTO_HDR_LEN &&
	       mb_proto_decode_response(hdr, MB_PROTO_HDR_LEN, r, why, sizeof(why)) == 0;
}

/* Read @p s until it is quiet for @p quiet_ms; count OK and BAD_REQUEST answers. */
static void
read_until_quiet(void *s, int quiet_ms, int *ok, int *bad, int *other)
{
	for (;;) {
		struct mb_response_hdr r;
		int got = recv_response(s, quiet_ms, &r);

		if (got < 0)
			return;
		if (got == 0)
			(*other)++;
		else if (r.status == MB_STATUS_OK)
			(*ok)++;
		else if (r.status == MB_STATUS_BAD_REQUEST)
			(*bad)++;
		else
			(*other)++;
	}
}

/*
 * The held refusals are bounded by service.max_inflight: past it, a refusal to a requester
 * that does not read is published only, and counted (refusals_unread).
 */
static void
test_held_refusals_bounded(void)
{
	enum { N_OK = 16, N_BAD = 40 };
	static int16_t pcm[16000 * 60]; /* 60 s: a 6000 x 80 F32 result, 1.9 MB (16: 30 MB) */
	struct mb_daemon d;
	void *ctx, *s;
	int ok = 0, bad = 0, other = 0;
	double inflight;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "service:\n  max_inflight: 16\n"
					      "  max_inflight_per_client: 16\n"
					      "zmq:\n  router_sndhwm: 1\n",
					      NULL),
			      0);
	ctx = zmq_ctx_new();
	s = stalled_requester(&d, ctx, pcm, sizeof(pcm), N_OK, &inflight);
	send_bad_headers(s, N_OK, N_BAD);
	usleep(300000);
	read_until_quiet(s, 3000, &ok, &bad, &other);
	/* (the results may all sit in ZeroMQ's queue and the kernel's buffers, none held by
	 * the daemon: the queue is full all the same, and the refusals are held) */
	printf("\n    %.0f replies held; read OK %d, BAD_REQUEST %d of %d, other %d; "
	       "refusals_unread %.0f",
	       inflight, ok, bad, N_BAD, other,
	       mb_daemon_metric(&d, "mediabatch_reply_dropped_total{reason=\"refusals_unread\"}"));
	CU_ASSERT_EQUAL(ok, N_OK);
	CU_ASSERT_EQUAL(other, 0);
	/* what the daemon held (16) came; what went out before the queue was full may too */
	CU_ASSERT(bad >= 16 && bad < N_BAD);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_reply_dropped_total{reason="
					     "\"refusals_unread\"}"),
			N_BAD - bad);
	zmq_close(s);
	zmq_ctx_term(ctx);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "refusals held: further ones to it are "
							 "published only"));
}

/* Wait (bounded) until mediabatch_zmq_connections is @p n: the daemon has seen them. */
static bool
connections_are(const struct mb_daemon *d, double n, double seconds)
{
	double deadline = mb_e2e_now() + seconds;

	while (mb_daemon_metric(d, "mediabatch_zmq_connections") != n)
		if (mb_e2e_now() > deadline)
			return false;
		else
			usleep(20000);
	return true;
}

/*
 * A client that closes with requests in flight and reconnects under the same routing id
 * (the README's client_id): the new connection gets the answers of what it sent, once each,
 * and none of the old connection's (it got their OK and CANCELLED answers, and a second
 * answer for an id it reused); the old ones are counted as lost replies or disconnect
 * cancels.
 */
static void
test_reconnect_same_routing_id(void)
{
	enum { N_OLD = 10, N_NEW = 5, REUSED = 8 };
	static int16_t pcm[16000 * 2]; /* 2 s of whisper: a batch of 8 runs for about 1 s */
	static const char id[] = "reconnecting-client";
	struct mb_daemon d;
	void *ctx, *old, *s, *sub;
	int closed_reason = 0;
	int linger = 0, answers[N_OLD + 1 + N_NEW + 100] = {0}, stray = 0;
	double gone0, cancelled0, gone, cancelled, c0;

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(
			&d,
			"devices:\n  cpu: {workers: 1}\n"
			"models:\n  - name: whisper\n    max_batch: 8\n    max_delay_us: 100000\n",
			NULL),
		0);
	ctx = zmq_ctx_new();
	sub = zmq_socket(ctx, ZMQ_SUB); /* the cancelled ones' reason, on the PUB */
	zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "3/whisper", 9);
	CU_ASSERT_EQUAL_FATAL(zmq_connect(sub, d.publish), 0);
	CU_ASSERT_TRUE_FATAL(mb_daemon_wait_subscriptions(&d, 1, 10));
	c0 = mb_daemon_metric(&d, "mediabatch_zmq_connections");
	gone0 = mb_daemon_metric(&d, "mediabatch_reply_dropped_total{reason=\"client_gone\"}");
	cancelled0 = mb_daemon_metric(&d, "mediabatch_disconnect_cancelled_total");
	old = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(old, ZMQ_ROUTING_ID, id, strlen(id));
	zmq_setsockopt(old, ZMQ_LINGER, &linger, sizeof(linger));
	CU_ASSERT_EQUAL_FATAL(zmq_connect(old, d.ingest), 0);
	for (int i = 1; i <= N_OLD; i++) {
		struct mb_request_hdr h;

		mb_client_audio_hdr(&h, "whisper", 3, (uint64_t)i, MB_MEDIA_PCM_S16LE, 16000,
				    sizeof(pcm));
		raw_send(old, &h, pcm, sizeof(pcm));
	}
	usleep(300000); /* 8 running in one batch, 2 queued */
	zmq_close(old);
	/* the daemon has seen it close, and a second more, as the client docs say: ZeroMQ's
	 * ROUTER may hold the old peer under the id a little longer than the close event
	 * takes, and ignores a second peer under it for good (seen under TSan without it) */
	CU_ASSERT_TRUE_FATAL(connections_are(&d, c0, 10));
	sleep(1);

	s = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	CU_ASSERT_EQUAL_FATAL(zmq_connect(s, d.ingest), 0);
	for (int i = 0; i <= N_NEW; i++) { /* ids 101..105, and the old connection's 8 */
		struct mb_request_hdr h;
		float x[4] = {1, 2, 3, 4};

		mb_client_tensor_hdr(&h, "identity", 3, i < N_NEW ? (uint64_t)(101 + i) : REUSED, 1,
				     4);
		raw_send(s, &h, x, sizeof(x));
	}
	/* every request done, the old connection's batch included (seconds under TSan), then
	 * what the new connection got, until quiet */
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 120), 0);
	for (;;) {
		struct mb_response_hdr r;
		int got = recv_response(s, 1000, &r);

		if (got < 0)
			break;
		if (got == 0) {
			stray++;
			continue;
		}
		if (r.request_id == REUSED && r.status == MB_STATUS_OK &&
		    r.result_type == MB_RESULT_F32 && r.cols == 1) /* identity, not whisper */
			answers[REUSED]++;
		else if (r.request_id >= 101 && r.request_id < 101 + N_NEW &&
			 r.status == MB_STATUS_OK)
			answers[r.request_id - 101 + N_OLD + 1]++;
		else {
			printf("\n    the new connection got an answer it did not ask for: id "
			       "%llu, %s",
			       (unsigned long long)r.request_id, mb_status_name(r.status));
			stray++;
		}
	}
	CU_ASSERT_EQUAL(stray, 0);
	CU_ASSERT_EQUAL(answers[REUSED], 1);
	for (int i = 0; i < N_NEW; i++)
		CU_ASSERT_EQUAL(answers[N_OLD + 1 + i], 1);
	/* the old connection's ten: those answered before it closed went to it; each of the
	 * others a lost reply (it ran) or a disconnect cancel */
	gone = mb_daemon_metric(&d, "mediabatch_reply_dropped_total{reason=\"client_gone\"}") -
	       gone0;
	cancelled = mb_daemon_metric(&d, "mediabatch_disconnect_cancelled_total") - cancelled0;
	printf("\n    the old connection's %d: %.0f ran (client_gone), %.0f cancelled", N_OLD, gone,
	       cancelled);
	CU_ASSERT(gone + cancelled >= N_OLD / 2 && gone + cancelled <= N_OLD);
	/* a subscriber sees why they were cancelled (it said "cancelled by the client") */
	for (;;) {
		zmq_pollitem_t it = {.socket = sub, .events = ZMQ_POLLIN};
		char topic[64], body[512];
		uint8_t hdr[128];
		struct mb_response_hdr r;
		char why[64];
		int n;

		if (zmq_poll(&it, 1, 500) <= 0)
			break;
		zmq_recv(sub, topic, sizeof(topic), 0);
		zmq_recv(sub, hdr, sizeof(hdr), 0);
		n = zmq_recv(sub, body, sizeof(body) - 1, 0);
		body[n < 0 ? 0 : n < (int)sizeof(body) ? n : (int)sizeof(body) - 1] = '\0';
		if (mb_proto_decode_response(hdr, MB_PROTO_HDR_LEN, &r, why, sizeof(why)) == 0 &&
		    r.status == MB_STATUS_CANCELLED &&
		    strstr(body, "its connection closed; not run") != NULL)
			closed_reason++;
	}
	CU_ASSERT_EQUAL(closed_reason, cancelled);
	zmq_close(sub);
	zmq_close(s);
	zmq_ctx_term(ctx);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* Identity requests @p first.. (@p n) on @p s; returns how many were answered OK within
 * @p ms of quiet. */
static int
identity_round(void *s, uint64_t first, int n, int ms)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		struct mb_request_hdr h;
		float x[4] = {1, 2, 3, 4};

		mb_client_tensor_hdr(&h, "identity", 3, first + (uint64_t)i, 1, 4);
		raw_send(s, &h, x, sizeof(x));
	}
	while (ok < n) {
		struct mb_response_hdr r;
		int got = recv_response(s, ms, &r);

		if (got < 0)
			break;
		if (got == 1 && r.status == MB_STATUS_OK && r.request_id >= first &&
		    r.request_id < first + (uint64_t)n)
			ok++;
	}
	return ok;
}

/*
 * A client that closes and at once connects again under the same routing id: the new
 * connection is served. libzmq's ROUTER ignored it for as long as it lived when the old
 * connection's close had not reached it yet (1 to 3 of 20 rounds, every request lost,
 * nothing counted); the daemon now lets the newcomer take the id over (plaintext).
 */
static void
test_reconnect_at_once(void)
{
	enum { ROUNDS = 20, N = 20 };
	struct mb_daemon d;
	void *ctx;
	int linger = 1000, lost = 0;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "", NULL), 0);
	ctx = zmq_ctx_new();
	for (int round = 0; round < ROUNDS; round++) {
		char id[32];
		void *old = zmq_socket(ctx, ZMQ_DEALER), *s;
		int got;

		snprintf(id, sizeof(id), "at-once-%d", round);
		zmq_setsockopt(old, ZMQ_ROUTING_ID, id, strlen(id));
		zmq_setsockopt(old, ZMQ_LINGER, &linger, sizeof(linger));
		CU_ASSERT_EQUAL_FATAL(zmq_connect(old, d.ingest), 0);
		CU_ASSERT_EQUAL(identity_round(old, 1000, 5, 5000), 5);
		zmq_close(old);
		s = zmq_socket(ctx, ZMQ_DEALER); /* at once, under the same id */
		zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
		zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
		CU_ASSERT_EQUAL_FATAL(zmq_connect(s, d.ingest), 0);
		got = identity_round(s, 1, N, 3000);
		if (got != N)
			printf("\n    round %d: %d of %d answered on the new connection", round,
			       got, N);
		lost += N - got;
		zmq_close(s);
	}
	CU_ASSERT_EQUAL(lost, 0);
	zmq_ctx_term(ctx);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static const struct mb_test_case cases[] = {
	{"past a model's queue limit: OVERLOADED, each answered once", test_queue_limit},
	{"past max_inflight: OVERLOADED", test_max_inflight},
	{"a tenant past its rate limit: OVERLOADED; others unaffected", test_tenant_rate_limit},
	{"a flood 300x the in-flight limit: all answered, memory bounded",
	 test_flood_memory_bounded},
	{"one frame far over max_payload_bytes: connection cut, nothing buffered",
	 test_huge_frame_cut},
	{"a requester whose reply queue is full gets its refusals once it reads",
	 test_refusals_held_for_slow_reader},
	{"held refusals are bounded by max_inflight, the rest counted", test_held_refusals_bounded},
	{"a client reconnecting under its routing id gets none of the old connection's answers",
	 test_reconnect_same_routing_id},
	{"a client reconnecting at once under its routing id is served", test_reconnect_at_once},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e overload", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_overload", suites);
}
