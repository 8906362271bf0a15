/*
 * client_test.c: the one-daemon client and the subscriber of libmediabatch
 * (mediabatch/client.h) against fake services run here: a ZeroMQ ROUTER and a PUB on
 * 127.0.0.1 that send what each case says, malformed answers included. Checked, from the
 * header: a response struct is zeroed by every receive, whatever it returns (the usage
 * example frees it after a failed one); every endpoint, alone or as an item of a list, is
 * checked alike and a bad one refused with a message naming it (an empty item, one that is
 * not an endpoint, a port outside 1..65535, one ZeroMQ cannot connect); a malformed response
 * (frames, lengths, a result layout that does not fit result_len) is -EPROTO with its header
 * kept, and every well-formed one still parses; a second live connection with the same
 * client id is not served; sends never block past sndhwm; a subscriber's topic is cut to its
 * buffer, and its rcvhwm option is applied; the fleet figures of a program built against
 * the older, smaller struct mb_client_fleet_stats are not written past; a UDP sender to a
 * port nobody reads gets -ECONNREFUSED once. Where the header had said otherwise, the
 * header's own text is checked too (the same client id, sndhwm).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "mb_test.h"
#include "net/client_internal.h"
#include "mediabatch/client.h"
#include "mediabatch/protocol.h"

#define TENANT 5u

/* A loopback TCP port nobody listens on (bound by ZeroMQ, then closed). */
static int
free_port(void)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_ROUTER);
	char ep[64];
	size_t n = sizeof(ep);
	int port;

	CU_ASSERT_EQUAL_FATAL(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
	zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &n);
	port = atoi(strrchr(ep, ':') + 1);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return port;
}

/* ---- a fake service: a ROUTER (as the daemon's: ROUTER_MANDATORY) and a PUB ---- */

struct fake {
	void *ctx, *router, *pub;
	char ep[64], pub_ep[64];
	uint8_t id[256]; /* routing id of the last request's sender */
	size_t id_len;
};

/* @p pub_hwm: the PUB's queue per subscriber (0: ZeroMQ's 1000), set before its bind */
static void
fake_open(struct fake *f, int pub_hwm)
{
	size_t n = sizeof(f->ep);
	int one = 1, linger = 0;

	memset(f, 0, sizeof(*f));
	f->ctx = zmq_ctx_new();
	f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
	f->pub = zmq_socket(f->ctx, ZMQ_PUB);
	zmq_setsockopt(f->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(f->pub, ZMQ_LINGER, &linger, sizeof(linger));
	if (pub_hwm > 0)
		zmq_setsockopt(f->pub, ZMQ_SNDHWM, &pub_hwm, sizeof(pub_hwm));
	CU_ASSERT_EQUAL_FATAL(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->ep, &n), 0);
	n = sizeof(f->pub_ep);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(f->pub, "tcp://127.0.0.1:*"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_getsockopt(f->pub, ZMQ_LAST_ENDPOINT, f->pub_ep, &n), 0);
}

static void
fake_close(struct fake *f)
{
	zmq_close(f->router);
	zmq_close(f->pub);
	zmq_ctx_term(f->ctx);
}

/* The next request within @p ms (its sender remembered): 0, or -1 when none came. */
static int
fake_take(struct fake *f, struct mb_request_hdr *h, int ms)
{
	zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
	zmq_msg_t m[3];
	struct mb_proto_error e;
	int n, rc = -1;

	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	n = mb_client_recv_msg(f->router, m, 3, 0);
	if (n == 3 && zmq_msg_size(&m[0]) <= sizeof(f->id) &&
	    mb_proto_decode_request(zmq_msg_data(&m[1]), zmq_msg_size(&m[1]), MB_TRANSPORT_ZMQ,
				    1u << 20, h, &e) == 0) {
		f->id_len = zmq_msg_size(&m[0]);
		memcpy(f->id, zmq_msg_data(&m[0]), f->id_len);
		rc = 0;
	}
	for (int i = 0; i < n && i < 3; i++)
		zmq_msg_close(&m[i]);
	return rc;
}

/* A response header on the wire: @p hdr_len bytes of it are sent (64, or a wrong length). */
struct reply {
	const char *what;
	uint16_t status, result_type, rows, cols;
	uint32_t result_len;
	size_t hdr_len, payload_len;
	int frames; /* header, payload, and an extra frame (3); or the header alone (1) */
	bool bad_magic;
};

static void
wire_header(const struct reply *r, uint64_t id, uint8_t wire[MB_PROTO_HDR_LEN + 1])
{
	struct mb_response_hdr h = {
		.version = MB_PROTO_VERSION,
		.status = r->status,
		.request_id = id,
		.tenant_id = TENANT,
		.device = 0,
		.result_type = r->result_type,
		.rows = r->rows,
		.cols = r->cols,
		.result_len = r->result_len,
	};

	strcpy(h.model, "fake");
	memset(wire, 0, MB_PROTO_HDR_LEN + 1);
	mb_proto_encode_response(&h, wire);
	if (r->bad_magic)
		wire[3] = 'X';
}

/* Send @p r for request @p id: on the ROUTER to the last sender, or on the PUB with @p topic. */
static void
fake_send(struct fake *f, const struct reply *r, uint64_t id, const char *topic)
{
	static uint8_t payload[1 << 16];
	uint8_t wire[MB_PROTO_HDR_LEN + 1];
	void *s = topic ? f->pub : f->router;

	wire_header(r, id, wire);
	for (size_t i = 0; i < r->payload_len && i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	if (topic != NULL) {
		CU_ASSERT(zmq_send(s, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
	} else {
		CU_ASSERT(zmq_send(s, f->id, f->id_len, ZMQ_SNDMORE) >= 0);
	}
	CU_ASSERT(zmq_send(s, wire, r->hdr_len, r->frames > 1 ? ZMQ_SNDMORE : 0) >= 0);
	if (r->frames > 1)
		CU_ASSERT(zmq_send(s, payload, r->payload_len, r->frames > 2 ? ZMQ_SNDMORE : 0) >=
			  0);
	if (r->frames > 2)
		CU_ASSERT(zmq_send(s, "extra", 5, 0) >= 0);
}

/* docs/protocol.md's layouts: F32 rows x cols x 4 bytes; top-k rows pairs of 8 bytes, cols 2 */
static const struct reply WELL_FORMED[] = {
	{"OK, F32 2 x 3", MB_STATUS_OK, MB_RESULT_F32, 2, 3, 24, 64, 24, 2, false},
	{"OK, top-k of 3", MB_STATUS_OK, MB_RESULT_TOPK, 3, 2, 24, 64, 24, 2, false},
	{"OK, no result", MB_STATUS_OK, MB_RESULT_NONE, 0, 0, 0, 64, 0, 2, false},
	{"OK, text", MB_STATUS_OK, MB_RESULT_TEXT, 0, 0, 5, 64, 5, 2, false},
	{"BAD_REQUEST, its reason", MB_STATUS_BAD_REQUEST, MB_RESULT_TEXT, 0, 0, 9, 64, 9, 2,
	 false},
	{"an empty F32 result", MB_STATUS_OK, MB_RESULT_F32, 0, 4, 0, 64, 0, 2, false},
};

/* What the header leaves malformed: -EPROTO; true in the last field: the header decodes */
static const struct {
	struct reply r;
	bool hdr_decodes;
} MALFORMED[] = {
	{{"one frame", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 64, 4, 1, false}, true},
	{{"three frames", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 64, 4, 3, false}, true},
	{{"a 63-byte header", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 63, 4, 2, false}, false},
	{{"a 65-byte header", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 65, 4, 2, false}, false},
	{{"magic MBRX", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 64, 4, 2, true}, false},
	{{"result_len 8, payload 4", MB_STATUS_OK, MB_RESULT_F32, 1, 2, 8, 64, 4, 2, false}, true},
	{{"result_len 4, payload 8", MB_STATUS_OK, MB_RESULT_F32, 1, 1, 4, 64, 8, 2, false}, true},
	{{"F32 1000 x 1000 in 4 bytes", MB_STATUS_OK, MB_RESULT_F32, 1000, 1000, 4, 64, 4, 2,
	  false},
	 true},
	{{"top-k with cols 3", MB_STATUS_OK, MB_RESULT_TOPK, 2, 3, 16, 64, 16, 2, false}, true},
	{{"top-k of 4 in 8 bytes", MB_STATUS_OK, MB_RESULT_TOPK, 4, 2, 8, 64, 8, 2, false}, true},
	{{"result_type 9", MB_STATUS_OK, 9, 1, 1, 4, 64, 4, 2, false}, true},
	{{"no result, but 4 bytes", MB_STATUS_OK, MB_RESULT_NONE, 0, 0, 4, 64, 4, 2, false}, true},
	{{"a reason shorter than result_len", MB_STATUS_TIMEOUT, MB_RESULT_TEXT, 0, 0, 20, 64, 3, 2,
	  false},
	 true},
};

#define N_WELL (sizeof(WELL_FORMED) / sizeof(WELL_FORMED[0]))
#define N_MALFORMED (sizeof(MALFORMED) / sizeof(MALFORMED[0]))

static struct mb_client *
connect_to(const char *ep, const char *client_id)
{
	struct mb_client *c = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(
		mb_client_connect(&(struct mb_client_opts){.endpoint = ep, .client_id = client_id},
				  &c, err, sizeof(err)),
		0);
	return c;
}

static void
send_tensor(struct mb_client *c, uint64_t id)
{
	struct mb_request_hdr h;
	float x[4] = {1, 2, 3, 4};

	mb_client_tensor_hdr(&h, "fake", TENANT, id, 2, 2);
	CU_ASSERT_EQUAL_FATAL(mb_client_send(c, &h, x, sizeof(x)), 0);
}

/*
 * Whether include/mediabatch/client.h says @p claim, its comments read as text (line breaks,
 * leading "*" and runs of blanks made one space each).
 */
static bool
header_says(const char *claim)
{
	FILE *fp = fopen(mb_test_source_path("include/mediabatch/client.h"), "r");
	char line[512], *text;
	size_t n = 0, cap = 1 << 17;
	bool says;

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	text = calloc(1, cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	while (fgets(line, sizeof(line), fp) != NULL) {
		const char *p = line + strspn(line, " \t");

		if (*p == '*' && p[1] != '/')
			p++;
		for (; *p != '\0' && n + 2 < cap; p++) {
			if (*p != ' ' && *p != '\t' && *p != '\n')
				text[n++] = *p;
			else if (n > 0 && text[n - 1] != ' ')
				text[n++] = ' ';
		}
	}
	fclose(fp);
	says = strstr(text, claim) != NULL;
	free(text);
	return says;
}

/* ---- the cases ---- */

/* client.h's usage example frees the response after a failed receive: it must be zeroed. */
static void
test_recv_zeroes_out(void)
{
	char ep[64], list[160], topic[MB_TOPIC_MAX], err[256];
	struct mb_client_response r;
	struct mb_subscriber *s = NULL;
	struct mb_client *c;

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", free_port());
	c = connect_to(ep, NULL);
	memset(&r, 0xAB, sizeof(r));
	CU_ASSERT_EQUAL(mb_client_recv(c, &r, 0), -ETIMEDOUT);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_EQUAL(r.len, 0);
	CU_ASSERT_EQUAL(r.hdr.version, 0);
	CU_ASSERT_EQUAL(r.hdr.request_id, 0);
	mb_client_response_free(&r); /* what the example does: harmless */
	mb_client_response_free(&r); /* twice too */
	mb_client_close(&c);

	/* a fleet client too (nobody there: a timeout) */
	snprintf(list, sizeof(list), "%s,%s", ep, ep);
	c = connect_to(list, NULL);
	memset(&r, 0xAB, sizeof(r));
	CU_ASSERT_EQUAL(mb_client_recv(c, &r, 0), -ETIMEDOUT);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_EQUAL(r.len, 0);
	mb_client_response_free(&r);
	mb_client_close(&c);

	/* and a subscriber, whose topic reads "" */
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", free_port());
	CU_ASSERT_EQUAL_FATAL(mb_subscriber_connect(ep, "", &s, err, sizeof(err)), 0);
	memset(&r, 0xAB, sizeof(r));
	memset(topic, 'x', sizeof(topic));
	CU_ASSERT_EQUAL(mb_subscriber_recv(s, topic, sizeof(topic), &r, 0), -ETIMEDOUT);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_EQUAL(r.len, 0);
	CU_ASSERT_STRING_EQUAL(topic, "");
	mb_client_response_free(&r);
	mb_subscriber_close(&s);
}

/* Refused, with a message that names @p item; nothing made. */
static void
refused(const char *endpoint, const char *item, const char *also)
{
	struct mb_client *c = (struct mb_client *)(uintptr_t)1;
	struct mb_subscriber *s = (struct mb_subscriber *)(uintptr_t)1;
	char err[512] = "";
	int rc;

	rc = mb_client_connect(&(struct mb_client_opts){.endpoint = endpoint}, &c, err,
			       sizeof(err));
	if (rc == 0 || c != NULL || strstr(err, item) == NULL ||
	    (also != NULL && strstr(err, also) == NULL))
		printf("\n    client '%s': %d \"%s\"", endpoint, rc, err);
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, item));
	if (also != NULL)
		CU_ASSERT_PTR_NOT_NULL(strstr(err, also));
	if (rc == 0)
		mb_client_close(&c);

	/* a subscriber's endpoints are checked the same way, one alone or a list */
	err[0] = '\0';
	rc = mb_subscriber_connect(endpoint, "", &s, err, sizeof(err));
	if (rc == 0 || s != NULL || strstr(err, item) == NULL)
		printf("\n    subscriber '%s': %d \"%s\"", endpoint, rc, err);
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, item));
	if (rc == 0)
		mb_subscriber_close(&s);
	err[0] = '\0';
	s = (struct mb_subscriber *)(uintptr_t)1;
	rc = mb_subscriber_connect_fleet(endpoint, "", NULL, -1, &s, err, sizeof(err));
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, item));
	if (rc == 0)
		mb_subscriber_close(&s);
}

static void
accepted(const char *endpoint, int daemons)
{
	struct mb_client *c = NULL;
	struct mb_subscriber *s = NULL;
	char err[512] = "";
	int rc;

	rc = mb_client_connect(&(struct mb_client_opts){.endpoint = endpoint, .resolve_ms = -1}, &c,
			       err, sizeof(err));
	if (rc != 0)
		printf("\n    client '%s': %d \"%s\"", endpoint, rc, err);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc == 0 && daemons > 0)
		CU_ASSERT_EQUAL(mb_client_fleet_stats(c, NULL, NULL, 0), daemons);
	mb_client_close(&c);
	rc = mb_subscriber_connect(endpoint, "", &s, err, sizeof(err));
	if (rc != 0)
		printf("\n    subscriber '%s': %d \"%s\"", endpoint, rc, err);
	CU_ASSERT_EQUAL(rc, 0);
	mb_subscriber_close(&s);
}

static void
test_endpoints_checked_alike(void)
{
	/* one endpoint */
	refused("", "no endpoint", "tcp://HOST:PORT");
	refused("garbage", "'garbage'", "tcp://HOST:PORT");
	refused("tcp://127.0.0.1", "'tcp://127.0.0.1'", "1..65535");
	refused("tcp://127.0.0.1:notaport", "'tcp://127.0.0.1:notaport'", "1..65535");
	refused("tcp://127.0.0.1:99999", "'tcp://127.0.0.1:99999'", "1..65535");
	refused("tcp://127.0.0.1:0", "'tcp://127.0.0.1:0'", "1..65535");
	refused("tcp:/127.0.0.1:27410", "'tcp:/127.0.0.1:27410'", "tcp://HOST:PORT");
	refused("foo://127.0.0.1:7400", "'foo://127.0.0.1:7400'", "cannot connect");
	refused("tcp://*:7400", "'tcp://*:7400'", "cannot connect");
	/* the same items in a list, wherever they stand */
	refused("tcp://127.0.0.1:27400,garbage", "'garbage'", "tcp://HOST:PORT");
	refused("garbage,junk", "'garbage'", NULL);
	refused("tcp://127.0.0.1:27400,tcp:/127.0.0.1:27410", "'tcp:/127.0.0.1:27410'", NULL);
	refused("tcp://127.0.0.1:27400,tcp://127.0.0.1:99999", "'tcp://127.0.0.1:99999'",
		"1..65535");
	refused("ipc:///tmp/x,foo://127.0.0.1:7400", "'foo://127.0.0.1:7400'", "cannot connect");
	refused("tcp://127.0.0.1:27400,tcp://*:7400", "'tcp://*:7400'", "cannot connect");
	/* empty items: leading, trailing, double comma, blanks only */
	refused("tcp://127.0.0.1:7400,", "an empty item", NULL);
	refused(",tcp://127.0.0.1:7400", "an empty item", NULL);
	refused("tcp://127.0.0.1:7400,,tcp://127.0.0.1:7410", "an empty item", NULL);
	refused("tcp://127.0.0.1:7400, ", "an empty item", NULL);
	refused(" , ", "an empty item", NULL);

	/* what is accepted stays so: addresses, names (resolved later), ipc, inproc, blanks */
	accepted("tcp://127.0.0.1:27499", 0);
	accepted("tcp://localhost:27499", 0);
	accepted("tcp://[::1]:27499", 0);
	accepted("ipc:///tmp/mb-client-test-nobody", 0);
	accepted("inproc://mb-client-test", 0);
	accepted(" tcp://127.0.0.1:27499 ", 0);
	accepted("tcp://127.0.0.1:27499,tcp://127.0.0.1:27498", 2);
	accepted("tcp://127.0.0.1:27499, ipc:///tmp/mb-client-test-nobody", 2);
	accepted("tcp://127.0.0.1:65535,tcp://127.0.0.1:1", 2);
	/* a name that does not resolve (yet) is a daemon to come, not an error */
	accepted("tcp://127.0.0.1:27499,tcp://mb-client-test.invalid:7400", 1);
}

/* Every well-formed response parses; every malformed one is -EPROTO, its header kept. */
static void
test_malformed_responses(void)
{
	struct fake f;
	struct mb_client *c;
	struct mb_client_response r;
	struct mb_request_hdr h;
	uint64_t id = 0;

	fake_open(&f, 0);
	c = connect_to(f.ep, NULL);
	for (size_t k = 0; k < N_WELL + N_MALFORMED; k++) {
		bool bad = k >= N_WELL;
		const struct reply *rep = bad ? &MALFORMED[k - N_WELL].r : &WELL_FORMED[k];
		int rc;

		send_tensor(c, ++id);
		CU_ASSERT_EQUAL_FATAL(fake_take(&f, &h, 3000), 0);
		CU_ASSERT_EQUAL(h.request_id, id);
		fake_send(&f, rep, id, NULL);
		memset(&r, 0xAB, sizeof(r));
		rc = mb_client_recv(c, &r, 3000);
		if (rc != (bad ? -EPROTO : 0))
			printf("\n    %s: %d, not %d", rep->what, rc, bad ? -EPROTO : 0);
		CU_ASSERT_EQUAL(rc, bad ? -EPROTO : 0);
		if (rc == 0) {
			CU_ASSERT_EQUAL(r.hdr.request_id, id);
			CU_ASSERT_EQUAL(r.len, rep->payload_len);
			CU_ASSERT_EQUAL(r.len, r.hdr.result_len);
			CU_ASSERT_PTR_NOT_NULL(r.data);
		} else {
			bool decodes = bad && MALFORMED[k - N_WELL].hdr_decodes;

			CU_ASSERT_PTR_NULL(r.data);
			CU_ASSERT_EQUAL(r.len, 0);
			/* whose answer it was, when the header says */
			CU_ASSERT_EQUAL(r.hdr.version, decodes ? MB_PROTO_VERSION : 0);
			CU_ASSERT_EQUAL(r.hdr.request_id, decodes ? id : 0);
		}
		mb_client_response_free(&r);
	}
	/* the connection goes on: a good answer after them all */
	send_tensor(c, ++id);
	CU_ASSERT_EQUAL_FATAL(fake_take(&f, &h, 3000), 0);
	fake_send(&f, &WELL_FORMED[0], id, NULL);
	CU_ASSERT_EQUAL(mb_client_recv(c, &r, 3000), 0);
	CU_ASSERT_EQUAL(r.hdr.request_id, id);
	mb_client_response_free(&r);
	mb_client_close(&c);
	fake_close(&f);
}

/* A subscriber that has its subscription in place: a publication got through. */
static struct mb_subscriber *
subscribe(struct fake *f, const struct mb_subscriber_opts *o)
{
	struct mb_subscriber_opts so = *o;
	struct mb_subscriber *s = NULL;
	struct mb_client_response r;
	char err[256] = "", topic[MB_TOPIC_MAX];
	int rc = -1;

	so.endpoint = f->pub_ep;
	CU_ASSERT_EQUAL_FATAL(mb_subscriber_open(&so, &s, err, sizeof(err)), 0);
	for (uint64_t until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && rc != 0;) {
		fake_send(f, &WELL_FORMED[0], 999, "5/fake");
		rc = mb_subscriber_recv(s, topic, sizeof(topic), &r, 20);
		mb_client_response_free(&r);
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	/* what is still on its way from the warm-up */
	while (mb_subscriber_recv(s, topic, sizeof(topic), &r, 100) == 0)
		mb_client_response_free(&r);
	return s;
}

static void
test_subscriber_malformed_and_topic(void)
{
	struct fake f;
	struct mb_subscriber *s;
	struct mb_client_response r;
	char topic[MB_TOPIC_MAX], small[4];

	fake_open(&f, 0);
	s = subscribe(&f, &(struct mb_subscriber_opts){.prefix = "5/"});
	for (size_t k = 0; k < N_MALFORMED; k++) {
		const struct reply *rep = &MALFORMED[k].r;
		int rc;

		fake_send(&f, rep, 100 + k, "5/fake");
		memset(&r, 0xAB, sizeof(r));
		rc = mb_subscriber_recv(s, topic, sizeof(topic), &r, 3000);
		if (rc != -EPROTO)
			printf("\n    %s: %d", rep->what, rc);
		CU_ASSERT_EQUAL(rc, -EPROTO);
		CU_ASSERT_PTR_NULL(r.data);
		CU_ASSERT_STRING_EQUAL(topic, "5/fake");
		mb_client_response_free(&r);
	}
	/* a topic longer than the buffer is cut to it; none asked for: not copied */
	fake_send(&f, &WELL_FORMED[0], 200, "5/fake");
	CU_ASSERT_EQUAL(mb_subscriber_recv(s, small, sizeof(small), &r, 3000), 0);
	CU_ASSERT_STRING_EQUAL(small, "5/f");
	mb_client_response_free(&r);
	fake_send(&f, &WELL_FORMED[1], 201, "5/fake");
	CU_ASSERT_EQUAL(mb_subscriber_recv(s, NULL, 0, &r, 3000), 0);
	CU_ASSERT_EQUAL(r.hdr.request_id, 201);
	mb_client_response_free(&r);
	fake_send(&f, &WELL_FORMED[0], 202, "5/fake");
	CU_ASSERT_EQUAL(mb_subscriber_recv(s, small, 0, &r, 3000), 0);
	CU_ASSERT_EQUAL(r.hdr.request_id, 202);
	mb_client_response_free(&r);
	mb_subscriber_close(&s);
	fake_close(&f);
}

/*
 * How many of @p cap results of @p size bytes published at a steady pace (the PUB's own
 * queue: 1) reach a subscriber that reads only afterwards: what its queue (rcvhwm) and the
 * kernel's buffers between hold; the PUB drops the rest.
 */
static int
taken_before_drops(struct fake *f, struct mb_subscriber *s, size_t size, int cap)
{
	struct mb_response_hdr h = {.version = MB_PROTO_VERSION,
				    .result_type = MB_RESULT_TEXT,
				    .result_len = (uint32_t)size};
	uint8_t wire[MB_PROTO_HDR_LEN];
	struct mb_client_response r;
	void *payload = calloc(1, size);
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	for (int i = 0; i < cap; i++) {
		h.request_id = (uint64_t)i;
		mb_proto_encode_response(&h, wire);
		zmq_send(f->pub, "5/fake", 6, ZMQ_SNDMORE);
		zmq_send(f->pub, wire, sizeof(wire), ZMQ_SNDMORE);
		zmq_send(f->pub, payload, size, 0);
		usleep(2000); /* the I/O threads move each along: the PUB's queue stays short */
	}
	free(payload);
	while (mb_subscriber_recv(s, NULL, 0, &r, 300) == 0) {
		mb_client_response_free(&r);
		n++;
	}
	return n;
}

/* mb_subscriber_opts.rcvhwm reaches ZeroMQ: a larger queue holds more of a burst. */
static void
test_subscriber_rcvhwm(void)
{
	enum { SIZE = 256 * 1024, CAP = 300 };
	struct fake f;
	struct mb_subscriber *s;
	int small, big;

	fake_open(&f, 1);
	s = subscribe(&f, &(struct mb_subscriber_opts){.prefix = "5/", .rcvhwm = 2});
	small = taken_before_drops(&f, s, SIZE, CAP);
	mb_subscriber_close(&s);
	s = subscribe(&f, &(struct mb_subscriber_opts){.prefix = "5/", .rcvhwm = CAP + 10});
	big = taken_before_drops(&f, s, SIZE, CAP);
	mb_subscriber_close(&s);
	printf("\n    %d of %d 256 KiB results with rcvhwm 2, %d with rcvhwm %d", small, CAP, big,
	       CAP + 10);
	CU_ASSERT(big >= small + 60); /* 300 against 24-28 here; room for a starved I/O thread */
	fake_close(&f);
}

/*
 * client.h: with CURVE, a second live connection with the same client id is not served
 * (the daemon's ROUTER, ROUTER_MANDATORY without handover, as this fake's, ignores it): its
 * request never arrives; so a cancel from it cannot reach the first one's requests either.
 * (In plaintext the daemon hands the id over: e2e/overload.)
 */
static void
test_same_client_id_not_served(void)
{
	struct fake f;
	struct mb_client *a, *b;
	struct mb_request_hdr h;

	fake_open(&f, 0);
	a = connect_to(f.ep, "same-id");
	send_tensor(a, 1);
	CU_ASSERT_EQUAL_FATAL(fake_take(&f, &h, 3000), 0);
	CU_ASSERT_EQUAL(h.request_id, 1);
	b = connect_to(f.ep, "same-id");
	send_tensor(b, 2);
	CU_ASSERT_EQUAL(mb_client_cancel(b, TENANT, 1), 0); /* no error from the library */
	CU_ASSERT_EQUAL(fake_take(&f, &h, 1000), -1);	    /* nothing of b's arrives */
	/* a is served still */
	send_tensor(a, 3);
	CU_ASSERT_EQUAL(fake_take(&f, &h, 3000), 0);
	CU_ASSERT_EQUAL(h.request_id, 3);
	mb_client_close(&b);
	mb_client_close(&a);
	fake_close(&f);
	/* what the header said before, and no longer may */
	CU_ASSERT_FALSE(header_says("or from a new connection with the same client id"));
	CU_ASSERT_TRUE(header_says("With CURVE, while a connection with this id is connected to a "
				   "service, a second one with the same id is not served there"));
	CU_ASSERT_TRUE(header_says("In plaintext a new connection under an id in use takes it "
				   "over"));
}

/* client.h: past sndhwm a send is -EAGAIN at once; sends never block. */
static void
test_sndhwm_eagain_not_block(void)
{
	char ep[64], err[256];
	struct mb_client *c = NULL;
	struct mb_request_hdr h;
	float x[4] = {0};
	int n = 0, rc = 0;
	uint64_t t0, slowest = 0;

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", free_port());
	CU_ASSERT_EQUAL_FATAL(
		mb_client_connect(&(struct mb_client_opts){.endpoint = ep, .sndhwm = 5}, &c, err,
				  sizeof(err)),
		0);
	for (; n < 100; n++) {
		mb_client_tensor_hdr(&h, "fake", TENANT, (uint64_t)n + 1, 2, 2);
		t0 = mb_test_now_ms();
		rc = mb_client_send(c, &h, x, sizeof(x));
		if (mb_test_now_ms() - t0 > slowest)
			slowest = mb_test_now_ms() - t0;
		if (rc != 0)
			break;
	}
	CU_ASSERT_EQUAL(rc, -EAGAIN);
	CU_ASSERT(n >= 1 && n <= 10); /* about sndhwm requests queued */
	CU_ASSERT(slowest < 100);
	mb_client_close(&c);
	/* what the header said before, and no longer may */
	CU_ASSERT_FALSE(header_says("before sends block"));
	CU_ASSERT_TRUE(header_says("Sends never block"));
}

/*
 * client.h, mb_udp_sender_send(): to a loopback port nobody reads, the ICMP answer to the
 * open's cancel comes back as -ECONNREFUSED from the next send, once; the send after it
 * goes out.
 */
static void
test_udp_refused_once(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct mb_udp_sender *u = NULL;
	struct mb_request_hdr h;
	char addr[64], err[256];
	float x[4] = {0};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	/* a port that was free a moment ago, and is closed again */
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	CU_ASSERT_EQUAL_FATAL(mb_udp_sender_open(&(struct mb_udp_sender_opts){.address = addr}, &u,
						 err, sizeof(err)),
			      0);
	usleep(50000); /* the ICMP answer to the open's cancel */
	mb_client_tensor_hdr(&h, "fake", TENANT, 1, 2, 2);
	rc = mb_udp_sender_send(u, &h, x, sizeof(x));
	CU_ASSERT_EQUAL(rc, -ECONNREFUSED);
	rc = mb_udp_sender_send(u, &h, x, sizeof(x)); /* reported once: this one goes */
	CU_ASSERT_EQUAL(rc, 1);
	mb_udp_sender_close(&u);
	CU_ASSERT_TRUE(header_says("-ECONNREFUSED from a later send, once"));
}

/*
 * libmediabatch.so binds the calls of programs built before struct mb_client_fleet_stats
 * grew `malformed` to mb_client_fleet_stats@MEDIABATCH_0 (net/client.c): it must write the
 * older struct's 40 bytes, no more, and the same figures.
 */
int mb_client_fleet_stats_v0(const struct mb_client *c, struct mb_client_fleet_stats *st,
			     struct mb_client_daemon *daemons, int max);

static void
test_fleet_stats_old_layout(void)
{
	struct {
		uint32_t daemons, waiting;
		uint64_t resent, dups, client_timeouts, resolve_failures;
		uint64_t canary; /* where `malformed` is now: the old program's next variable */
	} old;
	struct mb_client_fleet_stats st;
	struct mb_client *c;

	_Static_assert(sizeof(old) == sizeof(st), "the old layout is the new one less malformed");
	c = connect_to("tcp://127.0.0.1:27499,tcp://127.0.0.1:27498", NULL);
	memset(&old, 0xEE, sizeof(old));
	CU_ASSERT_EQUAL(
		mb_client_fleet_stats_v0(c, (struct mb_client_fleet_stats *)(void *)&old, NULL, 0),
		2);
	CU_ASSERT_EQUAL(old.canary, 0xEEEEEEEEEEEEEEEEull);
	CU_ASSERT_EQUAL(old.daemons, 2);
	CU_ASSERT_EQUAL(old.resent, 0);
	memset(&st, 0xEE, sizeof(st));
	CU_ASSERT_EQUAL(mb_client_fleet_stats(c, &st, NULL, 0), 2);
	CU_ASSERT_EQUAL(st.daemons, 2);
	CU_ASSERT_EQUAL(st.malformed, 0);
	CU_ASSERT_EQUAL(mb_client_fleet_stats_v0(c, NULL, NULL, 0), 2);
	mb_client_close(&c);
}

static const struct mb_test_case cases[] = {
	{"a receive zeroes its response whatever it returns", test_recv_zeroes_out},
	{"endpoints: one alone and every item of a list checked alike",
	 test_endpoints_checked_alike},
	{"malformed responses: -EPROTO, header kept; well-formed ones parse",
	 test_malformed_responses},
	{"subscriber: malformed publications, topic cut to its buffer",
	 test_subscriber_malformed_and_topic},
	{"subscriber: rcvhwm applied", test_subscriber_rcvhwm},
	{"a second live connection with the same client id is not served",
	 test_same_client_id_not_served},
	{"sndhwm: -EAGAIN at once, sends never block", test_sndhwm_eagain_not_block},
	{"fleet figures of the older struct: not written past", test_fleet_stats_old_layout},
	{"UDP: nobody at the port: -ECONNREFUSED once", test_udp_refused_once},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"net client", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("client_test", suites);
}
