/*
 * badinput_test.c (e2e): every kind of bad input docs/protocol.md names, sent to the real
 * daemon over a raw ZeroMQ DEALER, gets the right status and a reason that names the
 * field; messages too broken to answer are counted and dropped; random garbage never
 * stops the service; and a valid request is served normally afterwards.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;
static void *g_ctx, *g_sock;

static int
suite_init(void)
{
	int linger = 0;

	if (mb_daemon_start(&g_d,
			    "service:\n  max_payload_bytes: 65536\n"
			    "models:\n  - name: logmel\n    max_delay_us: 300000\n",
			    NULL) != 0)
		return -1;
	g_ctx = zmq_ctx_new();
	g_sock = zmq_socket(g_ctx, ZMQ_DEALER);
	zmq_setsockopt(g_sock, ZMQ_LINGER, &linger, sizeof(linger));
	return zmq_connect(g_sock, g_d.ingest);
}

static int
suite_cleanup(void)
{
	int rc;

	zmq_close(g_sock);
	zmq_ctx_term(g_ctx);
	rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);
	return rc == 0 ? 0 : -1;
}

/* Send frames (lengths in @lens, NULL data = zeros) as one message. */
static void
send_frames(const void *const *data, const size_t *lens, int n)
{
	for (int i = 0; i < n; i++) {
		void *zero = NULL;
		const void *d = data[i];

		if (d == NULL)
			d = zero = calloc(1, lens[i] + 1);
		zmq_send(g_sock, d, lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
		free(zero);
	}
}

static void
send_req(const struct mb_request_hdr *h, const void *payload, size_t len)
{
	uint8_t w[MB_PROTO_HDR_LEN];
	const void *d[2] = {w, payload};
	size_t l[2] = {sizeof(w), len};

	mb_proto_encode_request(h, w);
	send_frames(d, l, 2);
}

/* The next response: status returned, reason copied; -1 if none within @ms. */
static uint16_t g_last_flags; /* flags of the last response read */

static int
response(char *reason, size_t len, uint64_t *id, int ms)
{
	zmq_pollitem_t it = {.socket = g_sock, .events = ZMQ_POLLIN};
	uint8_t hdr[128];
	char why[64];
	struct mb_response_hdr r;
	int more = 0, n;
	size_t more_len = sizeof(more);

	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	n = zmq_recv(g_sock, hdr, sizeof(hdr), 0);
	zmq_getsockopt(g_sock, ZMQ_RCVMORE, &more, &more_len);
	reason[0] = '\0';
	if (more) {
		int m = zmq_recv(g_sock, reason, len - 1, 0);

		reason[m < 0 ? 0 : (size_t)m < len - 1 ? (size_t)m : len - 1] = '\0';
	}
	if (n != MB_PROTO_HDR_LEN || mb_proto_decode_response(hdr, 64, &r, why, sizeof(why)) < 0)
		return -2;
	if (id != NULL)
		*id = r.request_id;
	g_last_flags = r.flags;
	return r.status;
}

static struct mb_request_hdr
good(uint64_t id)
{
	struct mb_request_hdr h;

	mb_client_audio_hdr(&h, "logmel", 9, id, MB_MEDIA_PCM_S16LE, 16000, 3200);
	return h;
}

static uint8_t g_pcm[65536 + 16];

static void
expect(int want_status, const char *want_reason, uint64_t want_id)
{
	char reason[512];
	uint64_t id = 0;
	int st = response(reason, sizeof(reason), &id, 5000);

	if (st != want_status || strstr(reason, want_reason) == NULL || id != want_id) {
		printf("\n    got %s (%d) for id %lu: \"%s\"; wanted %s with \"%s\" for id %lu",
		       st >= 0 ? mb_status_name((unsigned)st) : "nothing", st, (unsigned long)id,
		       reason, mb_status_name((unsigned)want_status), want_reason,
		       (unsigned long)want_id);
		CU_FAIL("wrong answer");
	}
}

static void
test_message_shape(void)
{
	struct mb_request_hdr h = good(1);
	uint8_t w[MB_PROTO_HDR_LEN];
	const void *one[1] = {w};
	size_t one_l[1] = {sizeof(w)};
	const void *three[3] = {w, g_pcm, g_pcm};
	size_t three_l[3] = {sizeof(w), 3200, 4};
	const void *shorth[2] = {w, g_pcm};
	size_t shorth_l[2] = {20, 3200};

	mb_proto_encode_request(&h, w);
	send_frames(one, one_l, 1);
	expect(MB_STATUS_BAD_REQUEST, "message: 1 frame", 1);
	send_frames(three, three_l, 3);
	expect(MB_STATUS_BAD_REQUEST, "message: 3 frames", 1);
	send_frames(shorth, shorth_l, 2); /* a 20-byte header: the id is readable */
	expect(MB_STATUS_BAD_REQUEST, "header: 20 bytes", 1);
}

static void
test_unaddressable_dropped_and_counted(void)
{
	const char *series = "mediabatch_zmq_dropped_total{reason=\"unaddressable\"}";
	double before = mb_daemon_metric(&g_d, series), after;
	uint8_t w[10] = {'M', 'B', 'Q', '1'};
	const void *d[2] = {w, g_pcm};
	size_t l[2] = {sizeof(w), 4};
	char reason[64];

	send_frames(d, l, 2); /* 10 bytes: no request id to answer */
	CU_ASSERT_EQUAL(response(reason, sizeof(reason), NULL, 300), -1);
	after = mb_daemon_metric(&g_d, series);
	CU_ASSERT_EQUAL(after, before + 1);
}

static void
test_header_fields(void)
{
	struct mb_request_hdr h;
	uint8_t w[MB_PROTO_HDR_LEN];
	const void *d[2] = {w, g_pcm};
	size_t l[2] = {sizeof(w), 3200};

	h = good(2);
	mb_proto_encode_request(&h, w);
	w[0] = 'X';
	send_frames(d, l, 2);
	expect(MB_STATUS_BAD_REQUEST, "magic", 2);

	h = good(3);
	h.version = 7;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "version: 7", 3);

	h = good(4);
	h.flags = 0x10;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "flags", 4);

	h = good(5);
	strcpy(h.model, "log mel");
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "model", 5);

	h = good(6);
	h.reserved = 9;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "reserved", 6);

	h = good(7);
	h.frag_offset = 100;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "frag_offset", 7);
}

static void
test_payload_and_media(void)
{
	struct mb_request_hdr h;

	h = good(10);
	h.payload_len = 0;
	send_req(&h, g_pcm, 0);
	expect(MB_STATUS_BAD_REQUEST, "payload_len: 0", 10);

	h = good(11); /* header says 3200, the frame has 3000 */
	send_req(&h, g_pcm, 3000);
	expect(MB_STATUS_BAD_REQUEST, "payload: the second frame has 3000 bytes", 11);

	h = good(12);
	h.payload_len = 65538;
	send_req(&h, g_pcm, 65538);
	expect(MB_STATUS_TOO_LARGE, "payload_len: 65538 bytes exceeds", 12);

	h = good(13);
	h.media = 77;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "media: 77", 13);

	h = good(14);
	h.channels = 2;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "channels", 14);

	mb_client_video_hdr(&h, "identity", 9, 15, 2, 4, 4);
	h.payload_len -= 3; /* not frames x height x width x 3 */
	send_req(&h, g_pcm, h.payload_len);
	expect(MB_STATUS_BAD_REQUEST, "payload_len", 15);
}

static void
test_models(void)
{
	struct mb_request_hdr h;

	h = good(20);
	strcpy(h.model, "whisperx");
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_UNKNOWN_MODEL, "'whisperx' is not served here", 20);

	mb_client_tensor_hdr(&h, "logmel", 9, 21, 2, 2);
	send_req(&h, g_pcm, 16);
	expect(MB_STATUS_BAD_REQUEST, "media: F32 is not accepted by logmel", 21);

	h = good(22);
	h.sample_rate = 8000;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "sample_rate: 8000", 22);

	h = good(23);
	h.payload_len = 200; /* 100 samples */
	send_req(&h, g_pcm, 200);
	expect(MB_STATUS_BAD_REQUEST, "at least 400", 23);
}

static void
test_duplicate_and_unknown_cancel(void)
{
	struct mb_request_hdr h = good(30), c = {.version = 1,
						 .flags = MB_FLAG_CANCEL,
						 .request_id = 99999,
						 .tenant_id = 9};
	char reason[256];
	uint64_t id;
	int st;

	send_req(&h, g_pcm, 3200); /* held ~300 ms in the logmel queue */
	send_req(&h, g_pcm, 3200); /* same id, same client and tenant */
	expect(MB_STATUS_BAD_REQUEST, "request_id: 30 is already in flight", 30);
	/* the refusal says it answers the duplicate, not the request in flight */
	CU_ASSERT_EQUAL(g_last_flags, MB_RESP_FLAG_DUPLICATE);
	st = response(reason, sizeof(reason), &id, 5000);
	CU_ASSERT_EQUAL(st, MB_STATUS_OK); /* the first one runs normally */
	CU_ASSERT_EQUAL(id, 30);
	CU_ASSERT_EQUAL(g_last_flags, 0);
	send_req(&c, "", 0); /* cancel for an unknown request: ignored, no answer */
	CU_ASSERT_EQUAL(response(reason, sizeof(reason), NULL, 300), -1);
}

/* A duplicate that another check would refuse too (here the client's share, 1 in flight)
 * is still answered BAD_REQUEST with DUPLICATE: it was OVERLOADED without the flag, which a
 * client takes for the answer of the request in flight (and may send elsewhere). */
static void
test_duplicate_before_other_refusals(void)
{
	struct mb_daemon d;
	void *saved = g_sock;
	struct mb_request_hdr h = good(40);
	char reason[256];
	uint64_t id;
	int linger = 0, st;

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d,
				"service:\n  max_inflight_per_client: 1\n"
				"models:\n  - name: logmel\n    max_delay_us: 300000\n",
				NULL),
		0);
	g_sock = zmq_socket(g_ctx, ZMQ_DEALER);
	zmq_setsockopt(g_sock, ZMQ_LINGER, &linger, sizeof(linger));
	CU_ASSERT_EQUAL_FATAL(zmq_connect(g_sock, d.ingest), 0);
	send_req(&h, g_pcm, 3200); /* held ~300 ms in the logmel queue: the share is used */
	send_req(&h, g_pcm, 3200); /* the same id again: past the share, and a duplicate */
	expect(MB_STATUS_BAD_REQUEST, "request_id: 40 is already in flight", 40);
	CU_ASSERT_EQUAL(g_last_flags, MB_RESP_FLAG_DUPLICATE);
	h = good(41); /* another id past the share: OVERLOADED, no flag */
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_OVERLOADED, "in flight", 41);
	CU_ASSERT_EQUAL(g_last_flags, 0);
	st = response(reason, sizeof(reason), &id, 5000);
	CU_ASSERT_EQUAL(st, MB_STATUS_OK); /* the first one runs normally */
	CU_ASSERT_EQUAL(id, 40);
	CU_ASSERT_EQUAL(g_last_flags, 0);
	zmq_close(g_sock);
	g_sock = saved;
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30.0), 0);
}

/* A refused cancel gets no answer: one under the id it names would read as that request's. */
static void
test_bad_cancel_dropped(void)
{
	const char *series = "mediabatch_zmq_dropped_total{reason=\"bad_cancel\"}";
	struct mb_request_hdr h = good(32), c = {.version = 1,
						 .flags = MB_FLAG_CANCEL,
						 .request_id = 32,
						 .tenant_id = good(32).tenant_id,
						 .payload_len = 4};
	double before = mb_daemon_metric(&g_d, series);
	const void *d[3] = {NULL, "", ""};
	size_t l[3] = {MB_PROTO_HDR_LEN, 0, 0};
	uint8_t w[MB_PROTO_HDR_LEN];
	char reason[256];
	uint64_t id;
	int st;

	send_req(&h, g_pcm, 3200); /* held ~300 ms in the logmel queue */
	send_req(&c, g_pcm, 4);	   /* a cancel with a payload */
	c.payload_len = 0;
	mb_proto_encode_request(&c, w);
	d[0] = w;
	send_frames(d, l, 3);	/* a cancel of 3 frames */
	send_req(&c, g_pcm, 4); /* payload_len 0, but a second frame of 4 bytes */
	st = response(reason, sizeof(reason), &id, 5000);
	CU_ASSERT_EQUAL(st, MB_STATUS_OK); /* the request's own answer, and the only one */
	CU_ASSERT_EQUAL(id, 32);
	CU_ASSERT_EQUAL(g_last_flags, 0);
	CU_ASSERT_EQUAL(response(reason, sizeof(reason), NULL, 300), -1);
	CU_ASSERT_EQUAL(mb_daemon_metric(&g_d, series), before + 3);
}

static void
test_garbage_fuzz_then_normal(void)
{
	uint64_t rng = 0xbadc0ffee;
	int answers = 0, sent = 0;
	char reason[512];
	struct mb_request_hdr h;
	uint64_t id;

	for (int i = 0; i < 3000; i++) {
		int frames = 1 + (int)(mb_test_rand(&rng) % 4);
		uint8_t buf[4][96];
		const void *d[4];
		size_t l[4];

		for (int f = 0; f < frames; f++) {
			l[f] = mb_test_rand(&rng) % 96;
			for (size_t k = 0; k < l[f]; k++)
				buf[f][k] = (uint8_t)mb_test_rand(&rng);
			if (f == 0 && l[f] >= 64 && mb_test_rand(&rng) % 2) {
				/* a valid-looking start, so deeper checks are reached too */
				struct mb_request_hdr g = good(500000 + (uint64_t)i);

				mb_proto_encode_request(&g, buf[0]);
				buf[0][mb_test_rand(&rng) % 64] ^=
					(uint8_t)(1 + mb_test_rand(&rng));
				l[0] = 64;
			}
			d[f] = buf[f];
		}
		send_frames(d, l, frames);
		sent++;
		while (response(reason, sizeof(reason), NULL, 0) != -1)
			answers++;
	}
	while (response(reason, sizeof(reason), NULL, 500) != -1)
		answers++;
	printf("\n    %d garbage messages, %d answered (the rest unaddressable)", sent, answers);
	CU_ASSERT(answers <= sent);
	/* Still serving normally. */
	h = good(777);
	send_req(&h, g_pcm, 3200);
	CU_ASSERT_EQUAL(response(reason, sizeof(reason), &id, 10000), MB_STATUS_OK);
	CU_ASSERT_EQUAL(id, 777);
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/healthz", reason, sizeof(reason)), 200);
}

static double
latency_count(void)
{
	return mb_daemon_metric(&g_d, "mediabatch_request_latency_seconds_count{model=\"logmel\"}");
}

static void
test_refusals_not_in_latency(void)
{
	struct mb_request_hdr h;
	double before;

	/* Earlier cases' requests (one is held ~300 ms in the queue) must be done first: a
	 * request leaves mediabatch_inflight only after its latency is observed. */
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&g_d, 10), 0);
	before = latency_count();
	CU_ASSERT(before >= 0);
	h = good(40); /* refused by the model's checks: counted by status, not in the latency */
	h.sample_rate = 8000;
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_BAD_REQUEST, "sample_rate: 8000", 40);
	h = good(41); /* refused by the decoder, before the model is known */
	h.payload_len = 65538;
	send_req(&h, g_pcm, 65538);
	expect(MB_STATUS_TOO_LARGE, "exceeds", 41);
	CU_ASSERT_EQUAL(latency_count(), before);
	h = good(42); /* queued and run: in the latency */
	send_req(&h, g_pcm, 3200);
	expect(MB_STATUS_OK, "", 42);
	for (int i = 0; i < 100 && latency_count() != before + 1; i++) /* observed after the send */
		usleep(20000);
	CU_ASSERT_EQUAL(latency_count(), before + 1);
}

static const struct mb_test_case cases[] = {
	{"message shape: 1 frame, 3 frames, short header", test_message_shape},
	{"no request id: dropped and counted", test_unaddressable_dropped_and_counted},
	{"header fields: magic, version, flags, model, reserved, frag_offset", test_header_fields},
	{"payload and media: empty, length mismatch, too large, media, shape",
	 test_payload_and_media},
	{"models: unknown, wrong media, wrong rate, too short", test_models},
	{"duplicate in-flight id refused; unknown cancel ignored",
	 test_duplicate_and_unknown_cancel},
	{"a duplicate past the client's share still carries DUPLICATE",
	 test_duplicate_before_other_refusals},
	{"a refused cancel is dropped and counted, not answered", test_bad_cancel_dropped},
	{"3000 garbage messages, then a normal request", test_garbage_fuzz_then_normal},
	{"refusals are not in the latency histogram; queued requests are",
	 test_refusals_not_in_latency},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e bad input", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_badinput", suites);
}
