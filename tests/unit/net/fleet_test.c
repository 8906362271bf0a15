/*
 * fleet_test.c: the fleet client (net/fleet.c, mediabatch/client.h "Fleets") against fake
 * daemons run here: ZeroMQ ROUTERs on 127.0.0.1 that decode requests with the protocol codec
 * and answer when and how each case says, polled from the test's own loop (the client works
 * only inside mb_client_recv(), so one thread drives both). Exactly one answer per request:
 * a daemon silent past failover_ms has its request resent to the other, whose answer is the
 * caller's; the silent one is sent a cancel, and its late answer is dropped and counted (and
 * the other way round:
 * the first daemon's late answer wins, the second is sent a cancel and its answer dropped).
 * A request nobody answers gets one TIMEOUT of the client's own at its deadline plus the
 * grace, with a cancel to the daemon holding it, and that daemon's answer after it is
 * dropped. A daemon that holds its answers has no more than the first credit window in
 * flight; the rest wait in the client and each gets its one answer. A daemon that answered
 * one request slowly is tried again once it has been idle a while (not shut out for good),
 * and one that holds requests without answering stops getting new ones long before
 * failover_ms moves them. Requests of two failovers go out oldest first, ahead of those
 * waiting for credit, whichever failover came first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "mb_test.h"
#include "net/client_internal.h"
#include "mediabatch/client.h"
#include "mediabatch/protocol.h"

#define TENANT 7u
#define PAYLOAD_LEN 64u
#define MAX_HELD 256
#define MAX_GOT 64
#define MAX_FAKES 3

/* a request a fake daemon holds: who sent it, and its header */
struct held {
	uint8_t id[256];
	size_t id_len;
	struct mb_request_hdr hdr;
};

struct fake {
	void *sock;
	char ep[64];
	struct held held[MAX_HELD];
	int n_held;	     /* requests received (answered ones stay, marked) */
	bool done[MAX_HELD]; /* answered */
	int n_cancel;	     /* cancels received */
	uint64_t cancel_id;  /* the last one's request id */
	int n_bad;	     /* frames that did not decode */
};

/* the client, its fake daemons, and every answer the caller got */
struct world {
	void *zctx;
	struct fake f[MAX_FAKES];
	int n_fake;
	struct mb_client *c;
	struct mb_client_response got[MAX_GOT];
	int n_got;
	int n_answers; /* every answer, the ones past MAX_GOT (not kept) too */
};

static void
fake_open(void *zctx, struct fake *f)
{
	size_t n = sizeof(f->ep);
	int linger = 0;

	memset(f, 0, sizeof(*f));
	f->sock = zmq_socket(zctx, ZMQ_ROUTER);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->sock);
	zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof(linger));
	CU_ASSERT_EQUAL_FATAL(zmq_bind(f->sock, "tcp://127.0.0.1:*"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, f->ep, &n), 0);
}

/* Take in what the client sent: [routing id][header][payload] each. */
static void
fake_poll(struct fake *f)
{
	for (;;) {
		zmq_msg_t m[3];
		int n = mb_client_recv_msg(f->sock, m, 3, ZMQ_DONTWAIT);

		if (n < 0)
			return; /* nothing (more) waiting */
		if (n == 3) {
			struct mb_request_hdr h;
			struct mb_proto_error e;

			if (mb_proto_decode_request(zmq_msg_data(&m[1]), zmq_msg_size(&m[1]),
						    MB_TRANSPORT_ZMQ, 1u << 20, &h, &e) < 0 ||
			    h.payload_len != zmq_msg_size(&m[2])) {
				f->n_bad++;
			} else if (h.flags & MB_FLAG_CANCEL) {
				f->n_cancel++;
				f->cancel_id = h.request_id;
			} else if (f->n_held < MAX_HELD && zmq_msg_size(&m[0]) <= 256) {
				struct held *r = &f->held[f->n_held++];

				r->id_len = zmq_msg_size(&m[0]);
				memcpy(r->id, zmq_msg_data(&m[0]), r->id_len);
				r->hdr = h;
			} else {
				f->n_bad++;
			}
		} else {
			f->n_bad++;
		}
		for (int i = 0; i < n && i < 3; i++)
			zmq_msg_close(&m[i]);
	}
}

/* Answer held request @p k with @p status and @p text as its payload. */
static void
fake_answer(struct fake *f, int k, uint16_t status, const char *text)
{
	const struct held *r = &f->held[k];
	struct mb_response_hdr h;
	uint8_t wire[MB_PROTO_HDR_LEN];

	memset(&h, 0, sizeof(h));
	h.version = MB_PROTO_VERSION;
	h.status = status;
	h.request_id = r->hdr.request_id;
	h.tenant_id = r->hdr.tenant_id;
	h.device = 0;
	memcpy(h.model, r->hdr.model, sizeof(h.model));
	h.result_type = MB_RESULT_TEXT;
	h.result_len = (uint32_t)strlen(text);
	mb_proto_encode_response(&h, wire);
	CU_ASSERT_EQUAL(zmq_send(f->sock, r->id, r->id_len, ZMQ_SNDMORE), (int)r->id_len);
	CU_ASSERT_EQUAL(zmq_send(f->sock, wire, sizeof(wire), ZMQ_SNDMORE), (int)sizeof(wire));
	CU_ASSERT_EQUAL(zmq_send(f->sock, text, strlen(text), 0), (int)strlen(text));
	f->done[k] = true;
}

/* How an answer is malformed (mediabatch/client.h, mb_client_recv()). */
enum bad {
	BAD_LENGTH, /* result_len 8, a 4-byte payload */
	BAD_F32,    /* OK, F32 1000 x 1000 in 4 bytes */
	BAD_TOPK,   /* OK, top-k with cols 3 */
	BAD_FRAMES, /* a well-formed answer and a third frame */
	BAD_HEADER, /* a 63-byte header: no request named */
};

/* Answer held request @p k malformed, the way @p how says. */
static void
fake_answer_bad(struct fake *f, int k, enum bad how)
{
	const struct held *r = &f->held[k];
	struct mb_response_hdr h;
	uint8_t wire[MB_PROTO_HDR_LEN], payload[8] = {0};
	size_t payload_len = 4;

	memset(&h, 0, sizeof(h));
	h.version = MB_PROTO_VERSION;
	h.status = MB_STATUS_OK;
	h.request_id = r->hdr.request_id;
	h.tenant_id = r->hdr.tenant_id;
	memcpy(h.model, r->hdr.model, sizeof(h.model));
	h.result_type = how == BAD_TOPK ? MB_RESULT_TOPK : MB_RESULT_F32;
	h.rows = how == BAD_F32 ? 1000 : 1;
	h.cols = how == BAD_F32 ? 1000 : how == BAD_TOPK ? 3 : 1;
	h.result_len = how == BAD_LENGTH ? 8 : how == BAD_TOPK ? 8 : 4;
	if (how == BAD_TOPK)
		payload_len = 8;
	mb_proto_encode_response(&h, wire);
	CU_ASSERT_EQUAL(zmq_send(f->sock, r->id, r->id_len, ZMQ_SNDMORE), (int)r->id_len);
	CU_ASSERT(zmq_send(f->sock, wire, how == BAD_HEADER ? 63 : sizeof(wire), ZMQ_SNDMORE) >= 0);
	CU_ASSERT(zmq_send(f->sock, payload, payload_len, how == BAD_FRAMES ? ZMQ_SNDMORE : 0) >=
		  0);
	if (how == BAD_FRAMES)
		CU_ASSERT_EQUAL(zmq_send(f->sock, "x", 1, 0), 1);
	f->done[k] = true;
}

static int
fake_pending(const struct fake *f)
{
	int n = 0;

	for (int k = 0; k < f->n_held; k++)
		n += !f->done[k];
	return n;
}

/* One round: the fakes take in what came, the client works up to @p ms for an answer. */
static void
pump(struct world *w, int ms)
{
	struct mb_client_response r;

	for (int i = 0; i < w->n_fake; i++)
		fake_poll(&w->f[i]);
	if (mb_client_recv(w->c, &r, ms) == 0) {
		w->n_answers++;
		if (w->n_got < MAX_GOT)
			w->got[w->n_got++] = r;
		else
			mb_client_response_free(&r);
	}
	for (int i = 0; i < w->n_fake; i++)
		fake_poll(&w->f[i]);
}

/* Pump for @p ms whatever happens. */
static void
pump_for(struct world *w, int ms)
{
	uint64_t until = mb_test_now_ms() + (uint64_t)ms;

	while (mb_test_now_ms() < until)
		pump(w, 5);
}

/* Connect a fleet client to @p n_fake fakes with @p o's fleet options; wait until all are up. */
static void
world_open(struct world *w, int n_fake, struct mb_client_opts o)
{
	char eps[240] = "", err[256];
	struct mb_client_daemon d[MAX_FAKES];
	uint64_t until;
	int up = 0;

	memset(w, 0, sizeof(*w));
	w->zctx = zmq_ctx_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->zctx);
	w->n_fake = n_fake;
	for (int i = 0; i < n_fake; i++) {
		fake_open(w->zctx, &w->f[i]);
		snprintf(eps + strlen(eps), sizeof(eps) - strlen(eps), "%s%s", i ? "," : "",
			 w->f[i].ep);
	}
	o.endpoint = eps;
	o.fleet = true; /* one endpoint too */
	o.resolve_ms = -1;
	err[0] = '\0';
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &w->c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(mb_client_fleet_stats(w->c, NULL, NULL, 0), n_fake);
	for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && up < n_fake;) {
		pump(w, 10);
		up = 0;
		CU_ASSERT_EQUAL_FATAL(mb_client_fleet_stats(w->c, NULL, d, MAX_FAKES), n_fake);
		for (int i = 0; i < n_fake; i++)
			up += d[i].up;
	}
	CU_ASSERT_EQUAL_FATAL(up, n_fake);
	CU_ASSERT_EQUAL_FATAL(w->n_got, 0);
}

static void
world_close(struct world *w)
{
	for (int i = 0; i < w->n_got; i++)
		mb_client_response_free(&w->got[i]);
	mb_client_close(&w->c);
	for (int i = 0; i < w->n_fake; i++)
		if (w->f[i].sock != NULL)
			zmq_close(w->f[i].sock);
	zmq_ctx_term(w->zctx);
}

static void
send_one(struct world *w, uint64_t id, uint32_t timeout_ms)
{
	struct mb_request_hdr h;
	uint8_t payload[PAYLOAD_LEN];

	memset(payload, (int)(id & 0xff), sizeof(payload));
	mb_client_audio_hdr(&h, "echo", TENANT, id, MB_MEDIA_PCM_S16LE, 16000, PAYLOAD_LEN);
	h.timeout_ms = timeout_ms;
	CU_ASSERT_EQUAL_FATAL(mb_client_send(w->c, &h, payload, sizeof(payload)), 0);
}

/* Send request @p id of model @p model, its payload 16 bytes. */
static void
send_model(struct world *w, uint64_t id, const char *model, uint32_t timeout_ms)
{
	struct mb_request_hdr h;
	uint8_t payload[16] = {0};

	mb_client_audio_hdr(&h, model, TENANT, id, MB_MEDIA_PCM_S16LE, 16000, sizeof(payload));
	h.timeout_ms = timeout_ms;
	CU_ASSERT_EQUAL_FATAL(mb_client_send(w->c, &h, payload, sizeof(payload)), 0);
}

/* How many requests of @p model fake @p f got. */
static int
fake_got(const struct fake *f, const char *model)
{
	int n = 0;

	for (int k = 0; k < f->n_held; k++)
		n += strcmp(f->held[k].hdr.model, model) == 0;
	return n;
}

static void
stats(const struct world *w, struct mb_client_fleet_stats *st)
{
	CU_ASSERT_EQUAL_FATAL(mb_client_fleet_stats(w->c, st, NULL, 0), w->n_fake);
}

/* Pump until the client has dropped a late answer (at most @p ms), then @p after ms more:
 * room for a second answer to reach the caller, were there one. */
static void
pump_until_dropped(struct world *w, int ms, int after)
{
	struct mb_client_fleet_stats st;
	uint64_t until = mb_test_now_ms() + (uint64_t)ms;

	do {
		pump(w, 5);
		stats(w, &st);
	} while (st.duplicates_dropped == 0 && mb_test_now_ms() < until);
	pump_for(w, after);
}

/*
 * Send request 1 to a fleet of two fakes, both holding it: the first to get it is silent
 * past failover_ms, so the client resends it to the other. Returns the index of the first
 * (the other is 1 - it), both holding the request, and the caller answered nothing yet.
 */
static int
fail_over_by_silence(struct world *w)
{
	struct mb_client_fleet_stats st;
	uint64_t t0 = mb_test_now_ms(), until, t_first = 0, t_second = 0;
	int first = -1;

	send_one(w, 1, 5000);
	for (until = t0 + 2000; mb_test_now_ms() < until && first < 0;) {
		pump(w, 5);
		for (int i = 0; i < 2 && first < 0; i++)
			if (w->f[i].n_held > 0) {
				first = i;
				t_first = mb_test_now_ms();
			}
	}
	CU_ASSERT_FATAL(first >= 0);
	CU_ASSERT_EQUAL_FATAL(w->f[first].n_held, 1);
	CU_ASSERT_EQUAL_FATAL(w->f[first].held[0].hdr.request_id, 1);
	for (until = mb_test_now_ms() + 3000;
	     mb_test_now_ms() < until && w->f[1 - first].n_held == 0;)
		pump(w, 5);
	t_second = mb_test_now_ms();
	CU_ASSERT_EQUAL_FATAL(w->f[1 - first].n_held, 1);
	CU_ASSERT_EQUAL_FATAL(w->f[1 - first].held[0].hdr.request_id, 1);
	/* not before the silence (failover_ms 300, from the send); loosely after it */
	CU_ASSERT(t_second - t0 >= 280);
	CU_ASSERT(t_second - t_first < 2500);
	CU_ASSERT_EQUAL(w->f[first].n_held, 1); /* not sent back to the silent one */
	CU_ASSERT_EQUAL(w->n_got, 0);
	stats(w, &st);
	CU_ASSERT_EQUAL(st.resent, 1);
	CU_ASSERT_EQUAL(st.duplicates_dropped, 0);
	return first;
}

static const struct mb_client_opts silence_opts = {.failover_ms = 300};

/* The first daemon answers after the failover, once the second has: its answer is dropped. */
static void
test_late_answer_dropped(void)
{
	struct world w;
	struct mb_client_fleet_stats st;
	struct mb_client_daemon d[2];
	uint64_t until;
	int a, b;

	world_open(&w, 2, silence_opts);
	a = fail_over_by_silence(&w);
	b = 1 - a;

	fake_answer(&w.f[b], 0, MB_STATUS_OK, "from b");
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(w.got[0].hdr.request_id, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.tenant_id, TENANT);
	CU_ASSERT_EQUAL(w.got[0].len, 6);
	CU_ASSERT_NSTRING_EQUAL(w.got[0].data, "from b", 6);
	/* the silent one still holds it: it is told to stop (operating.md, "Failover") */
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.f[a].n_cancel == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL(w.f[a].n_cancel, 1);
	CU_ASSERT_EQUAL(w.f[b].n_cancel, 0);

	/* the late one: the client must read it (counted) and not hand it over */
	fake_answer(&w.f[a], 0, MB_STATUS_OK, "from a");
	pump_until_dropped(&w, 2000, 300);
	CU_ASSERT_EQUAL(w.n_got, 1);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.resent, 1);
	CU_ASSERT_EQUAL(st.duplicates_dropped, 1);
	CU_ASSERT_EQUAL(st.client_timeouts, 0);
	CU_ASSERT_EQUAL(mb_client_fleet_stats(w.c, NULL, d, 2), 2);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(d[i].in_flight, 0);
		CU_ASSERT_EQUAL(d[i].sent, 1);
		CU_ASSERT_EQUAL(d[i].answered, 1);
		CU_ASSERT_EQUAL(d[i].failed_over, i == a ? 1 : 0);
	}
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(w.f[i].n_bad, 0);
	world_close(&w);
}

/*
 * The first daemon answers after the failover but before the second: its answer is the
 * caller's, the second is sent a cancel, and the second's answer is dropped.
 */
static void
test_first_answer_wins(void)
{
	struct world w;
	struct mb_client_fleet_stats st;
	uint64_t until;
	int a, b;

	world_open(&w, 2, silence_opts);
	a = fail_over_by_silence(&w);
	b = 1 - a;

	fake_answer(&w.f[a], 0, MB_STATUS_OK, "from a");
	for (until = mb_test_now_ms() + 2000;
	     mb_test_now_ms() < until && (w.n_got == 0 || w.f[b].n_cancel == 0);)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(w.got[0].hdr.request_id, 1);
	CU_ASSERT_NSTRING_EQUAL(w.got[0].data, "from a", 6);
	CU_ASSERT_EQUAL(w.f[b].n_cancel, 1);
	CU_ASSERT_EQUAL(w.f[b].cancel_id, 1);

	fake_answer(&w.f[b], 0, MB_STATUS_CANCELLED, "cancelled");
	pump_until_dropped(&w, 2000, 300);
	CU_ASSERT_EQUAL(w.n_got, 1);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.resent, 1);
	CU_ASSERT_EQUAL(st.duplicates_dropped, 1);
	world_close(&w);
}

/*
 * Nobody answers: one TIMEOUT of the client's own at timeout_ms + 250 ms, a cancel to the
 * daemon holding it, and that daemon's answer after it dropped.
 */
static void
test_nobody_answers(void)
{
	struct world w;
	struct mb_client_fleet_stats st;
	uint64_t t0, elapsed, until;
	int holder = -1;

	world_open(&w, 2, (struct mb_client_opts){0}); /* failover_ms: 10 s, not reached */
	t0 = mb_test_now_ms();
	send_one(&w, 42, 400);
	for (until = t0 + 3000; mb_test_now_ms() < until && w.n_got == 0;)
		pump(&w, 5);
	elapsed = mb_test_now_ms() - t0;
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_TIMEOUT);
	CU_ASSERT_EQUAL(w.got[0].hdr.request_id, 42);
	CU_ASSERT_EQUAL(w.got[0].hdr.tenant_id, TENANT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.got[0].data);
	CU_ASSERT_NSTRING_EQUAL(w.got[0].data, "client: no answer within 400 ms", 31);
	/* the deadline is 400 + 250 ms after the send; loose above (2 noisy cores) */
	CU_ASSERT(elapsed >= 640);
	CU_ASSERT(elapsed < 2000);

	for (int i = 0; i < 2; i++)
		if (w.f[i].n_held > 0)
			holder = i;
	CU_ASSERT_FATAL(holder >= 0);
	CU_ASSERT_EQUAL(w.f[holder].n_held, 1);
	CU_ASSERT_EQUAL(w.f[1 - holder].n_held, 0); /* no failover: it was not silent long */
	/* the daemon was given the time left, no more */
	CU_ASSERT(w.f[holder].held[0].hdr.timeout_ms > 0);
	CU_ASSERT(w.f[holder].held[0].hdr.timeout_ms <= 400);
	pump_for(&w, 50);
	CU_ASSERT_EQUAL(w.f[holder].n_cancel, 1);
	CU_ASSERT_EQUAL(w.f[holder].cancel_id, 42);

	/* its answer now is a late one */
	fake_answer(&w.f[holder], 0, MB_STATUS_CANCELLED, "cancelled");
	pump_for(&w, 300);
	CU_ASSERT_EQUAL(w.n_got, 1);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.client_timeouts, 1);
	CU_ASSERT_EQUAL(st.resent, 0);
	CU_ASSERT_EQUAL(st.duplicates_dropped, 1);
	world_close(&w);
}

/*
 * A daemon that holds its answers has the first window in flight, no more; the rest wait
 * in the client and go as answers come, each request answered once.
 */
static void
test_credit_window(void)
{
	enum { WINDOW = 4, N = 10 };
	struct world w;
	struct mb_client_fleet_stats st;
	struct mb_client_daemon d[1];
	int seen[N + 1] = {0};
	uint64_t until;

	world_open(&w, 1, (struct mb_client_opts){.window = WINDOW});
	for (uint64_t id = 1; id <= N; id++)
		send_one(&w, id, 5000);
	pump_for(&w, 300);
	CU_ASSERT_EQUAL(w.f[0].n_held, WINDOW);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.waiting, N - WINDOW);
	CU_ASSERT_EQUAL(mb_client_fleet_stats(w.c, NULL, d, 1), 1);
	CU_ASSERT_EQUAL(d[0].in_flight, WINDOW);

	/* one answer: one credit, one more request, in the order sent */
	fake_answer(&w.f[0], 0, MB_STATUS_OK, "ok");
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.f[0].n_held == WINDOW;)
		pump(&w, 5);
	pump_for(&w, 100);
	CU_ASSERT_EQUAL(w.f[0].n_held, WINDOW + 1);
	CU_ASSERT_EQUAL(fake_pending(&w.f[0]), WINDOW);
	for (int k = 0; k < w.f[0].n_held; k++)
		CU_ASSERT_EQUAL(w.f[0].held[k].hdr.request_id, (uint64_t)k + 1);

	/* answer the rest as they come */
	for (until = mb_test_now_ms() + 5000; mb_test_now_ms() < until && w.n_got < N;) {
		for (int k = 0; k < w.f[0].n_held; k++)
			if (!w.f[0].done[k])
				fake_answer(&w.f[0], k, MB_STATUS_OK, "ok");
		pump(&w, 5);
	}
	pump_for(&w, 100);
	CU_ASSERT_EQUAL(w.n_got, N);
	CU_ASSERT_EQUAL(w.f[0].n_held, N);
	for (int i = 0; i < w.n_got; i++) {
		CU_ASSERT_EQUAL(w.got[i].hdr.status, MB_STATUS_OK);
		if (w.got[i].hdr.request_id >= 1 && w.got[i].hdr.request_id <= N)
			seen[w.got[i].hdr.request_id]++;
	}
	for (int id = 1; id <= N; id++)
		CU_ASSERT_EQUAL(seen[id], 1);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.waiting, 0);
	CU_ASSERT_EQUAL(st.duplicates_dropped, 0);
	CU_ASSERT_EQUAL(st.resent, 0);
	CU_ASSERT_EQUAL(w.f[0].n_bad, 0);
	world_close(&w);
}

/* Answer every request fake @p f holds that is still pending. */
static void
fake_answer_all(struct fake *f)
{
	for (int k = 0; k < f->n_held; k++)
		if (!f->done[k])
			fake_answer(f, k, MB_STATUS_OK, "ok");
}

/*
 * One request at a time over two fakes: the first answers its first request after 400 ms,
 * then every request at once, as the other does. The slow one's answer time is only an
 * average of its answers, so without something that forgets it, the fast one would get
 * every request from then on; here the slow one must get one again within a few seconds.
 */
static void
test_slow_answer_not_shut_out(void)
{
	struct world w;
	uint64_t id = 1, until, t_slow;
	int slow = -1, again = -1;

	world_open(&w, 2, (struct mb_client_opts){.failover_ms = 10000});
	send_one(&w, id, 5000);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && slow < 0;) {
		pump(&w, 5);
		for (int i = 0; i < 2; i++)
			if (w.f[i].n_held == 1)
				slow = i;
	}
	CU_ASSERT_FATAL(slow >= 0);
	pump_for(&w, 400);
	fake_answer(&w.f[slow], 0, MB_STATUS_OK, "ok");
	for (until = mb_test_now_ms() + 1000; mb_test_now_ms() < until && w.n_got < 1;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	t_slow = mb_test_now_ms();
	/* one at a time, answered at once, until the slow one gets one again (at most 6 s) */
	for (until = t_slow + 6000; mb_test_now_ms() < until && again < 0;) {
		int got = w.n_answers;
		uint64_t wait;

		send_one(&w, ++id, 5000);
		for (wait = mb_test_now_ms() + 1000;
		     mb_test_now_ms() < wait && w.n_answers == got;) {
			pump(&w, 2);
			fake_answer_all(&w.f[0]);
			fake_answer_all(&w.f[1]);
		}
		CU_ASSERT_EQUAL_FATAL(w.n_answers, got + 1);
		if (w.f[slow].n_held > 1)
			again = (int)(mb_test_now_ms() - t_slow);
		pump_for(&w, 20); /* about 50 requests a second */
	}
	printf("\n    the slow daemon got a request again %d ms after its slow answer "
	       "(%d to the other meanwhile)",
	       again, w.f[1 - slow].n_held);
	CU_ASSERT(again >= 0);
	world_close(&w);
}

/*
 * Requests at 50 a second over two fakes, one of which holds what it gets without
 * answering (failover_ms far off): after the first few, new requests go to the other only.
 */
static void
test_silent_daemon_avoided(void)
{
	enum { N = 50 };
	struct world w;
	struct mb_client_daemon d[2];
	int silent = -1, answered = 0;

	world_open(&w, 2, (struct mb_client_opts){.failover_ms = 20000});
	for (uint64_t id = 1; id <= N; id++) {
		send_one(&w, id, 30000);
		for (uint64_t until = mb_test_now_ms() + 20; mb_test_now_ms() < until;) {
			pump(&w, 2);
			if (silent < 0)
				for (int i = 0; i < 2; i++)
					if (w.f[i].n_held > 0)
						silent = i; /* the first to get one stays silent */
			if (silent >= 0)
				fake_answer_all(&w.f[1 - silent]);
		}
	}
	for (uint64_t until = mb_test_now_ms() + 1000;
	     mb_test_now_ms() < until && w.n_got < N - w.f[silent].n_held;) {
		pump(&w, 5);
		fake_answer_all(&w.f[1 - silent]);
	}
	answered = w.n_got;
	printf("\n    of %d requests, the silent daemon holds %d, the other answered %d", N,
	       w.f[silent].n_held, answered);
	CU_ASSERT(w.f[silent].n_held <= 5);
	CU_ASSERT_EQUAL(w.f[silent].n_held + w.f[1 - silent].n_held, N);
	CU_ASSERT_EQUAL(answered, w.f[1 - silent].n_held);
	CU_ASSERT_EQUAL(mb_client_fleet_stats(w.c, NULL, d, 2), 2);
	CU_ASSERT_EQUAL(d[silent].in_flight, (uint32_t)w.f[silent].n_held);
	world_close(&w);
}

/* The fake holding request @p id (one each), or -1. */
static int
holder_of(const struct world *w, uint64_t id)
{
	for (int i = 0; i < w->n_fake; i++)
		if (w->f[i].sock != NULL && w->f[i].n_held > 0 &&
		    w->f[i].held[0].hdr.request_id == id)
			return i;
	return -1;
}

/* Close fake @p i (its daemon gone) and pump until the client has moved what it held. */
static void
fake_kill(struct world *w, int i, uint64_t resent_before)
{
	struct mb_client_fleet_stats st;
	uint64_t until;

	zmq_close(w->f[i].sock);
	w->f[i].sock = NULL;
	for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until;) {
		pump(w, 5);
		stats(w, &st);
		if (st.resent > resent_before)
			break;
	}
	CU_ASSERT_EQUAL_FATAL(st.resent, resent_before + 1);
}

/*
 * Two failovers, the older request second: three fakes with a window of 1 each hold requests
 * 1, 2 and 3, and 4 and 5 wait for credit. The holder of 1 goes, then the holder of 2: both
 * go ahead of 4 and 5, oldest first (operating.md, "Failover"), so the third fake, once it
 * answers 3, gets 1, 2, 4, 5 in that order; not 2 before 1 because 2's failover came last.
 */
static void
test_failover_oldest_first_across_failovers(void)
{
	enum { N = 5 };
	struct world w;
	uint64_t until;
	int h1, h2, h3;

	world_open(&w, 3, (struct mb_client_opts){.window = 1, .failover_ms = 20000});
	for (uint64_t id = 1; id <= N; id++)
		send_one(&w, id, 20000);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && holder_of(&w, 3) < 0;)
		pump(&w, 5);
	pump_for(&w, 100);
	h1 = holder_of(&w, 1);
	h2 = holder_of(&w, 2);
	h3 = holder_of(&w, 3);
	CU_ASSERT_FATAL(h1 >= 0 && h2 >= 0 && h3 >= 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(w.f[i].n_held, 1);
	fake_kill(&w, h1, 0);
	fake_kill(&w, h2, 1);
	/* the survivor answers whatever it holds as it comes, until every request is answered */
	for (until = mb_test_now_ms() + 5000; mb_test_now_ms() < until && w.n_got < N;) {
		fake_answer_all(&w.f[h3]);
		pump(&w, 5);
	}
	CU_ASSERT_EQUAL(w.n_got, N);
	CU_ASSERT_EQUAL_FATAL(w.f[h3].n_held, N);
	printf("\n    the survivor got");
	for (int k = 0; k < N; k++)
		printf(" %" PRIu64, w.f[h3].held[k].hdr.request_id);
	CU_ASSERT_EQUAL(w.f[h3].held[0].hdr.request_id, 3);
	CU_ASSERT_EQUAL(w.f[h3].held[1].hdr.request_id, 1);
	CU_ASSERT_EQUAL(w.f[h3].held[2].hdr.request_id, 2);
	CU_ASSERT_EQUAL(w.f[h3].held[3].hdr.request_id, 4);
	CU_ASSERT_EQUAL(w.f[h3].held[4].hdr.request_id, 5);
	world_close(&w);
}

/*
 * A malformed answer is the daemon failing that request, as UNAVAILABLE is: the request goes
 * to the other daemon, whose answer is the caller's, the only one; the malformed one is
 * counted, and never reaches the caller.
 */
static void
test_malformed_answer_resent(void)
{
	struct world w;
	struct mb_client_fleet_stats st;
	struct mb_client_daemon d[2];
	uint64_t until;
	int a;

	world_open(&w, 2, (struct mb_client_opts){.failover_ms = 20000});
	send_one(&w, 1, 5000);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && holder_of(&w, 1) < 0;)
		pump(&w, 5);
	a = holder_of(&w, 1);
	CU_ASSERT_FATAL(a >= 0);
	fake_answer_bad(&w.f[a], 0, BAD_F32);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.f[1 - a].n_held == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.f[1 - a].n_held, 1); /* at once, not after failover_ms */
	CU_ASSERT_EQUAL(w.f[1 - a].held[0].hdr.request_id, 1);
	CU_ASSERT_EQUAL(w.n_got, 0);
	fake_answer(&w.f[1 - a], 0, MB_STATUS_OK, "from b");
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got == 0;)
		pump(&w, 5);
	pump_for(&w, 200);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_OK);
	CU_ASSERT_NSTRING_EQUAL(w.got[0].data, "from b", 6);
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.malformed, 1);
	CU_ASSERT_EQUAL(st.resent, 1);
	CU_ASSERT_EQUAL(st.client_timeouts, 0);
	CU_ASSERT_EQUAL(mb_client_fleet_stats(w.c, NULL, d, 2), 2);
	CU_ASSERT_EQUAL(d[a].failed_over, 1);
	CU_ASSERT_EQUAL(d[a].in_flight, 0);
	CU_ASSERT_EQUAL(d[1 - a].in_flight, 0);
	world_close(&w);
}

/*
 * With no daemon left that has not had it, the caller gets UNAVAILABLE at once, with a
 * reason that names the daemon and what was wrong, for each way an answer is malformed
 * whose header names the request; the daemon is not shut out for good.
 */
static void
test_malformed_answer_last_daemon(void)
{
	static const struct {
		enum bad how;
		const char *why;
	} bad[] = {
		{BAD_LENGTH, "result_len is 8 but the payload is 4 bytes"},
		{BAD_F32, "an F32 result of 1000 x 1000 is 4000000 bytes"},
		{BAD_TOPK, "a top-k result of 1 pairs"},
		{BAD_FRAMES, "3 frame(s); a response is 2"},
	};
	enum { N = sizeof(bad) / sizeof(bad[0]) };
	struct world w;
	struct mb_client_fleet_stats st;
	char want[256];
	uint64_t until;

	world_open(&w, 1, (struct mb_client_opts){.failover_ms = 20000});
	for (int i = 0; i < N; i++) {
		uint64_t t0 = mb_test_now_ms();

		send_one(&w, (uint64_t)i + 1, 10000);
		/* after the first, the daemon cools down a second (as after UNAVAILABLE) */
		for (until = mb_test_now_ms() + 3000;
		     mb_test_now_ms() < until && w.f[0].n_held == i;)
			pump(&w, 5);
		CU_ASSERT_EQUAL_FATAL(w.f[0].n_held, i + 1);
		fake_answer_bad(&w.f[0], i, bad[i].how);
		for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got == i;)
			pump(&w, 5);
		CU_ASSERT_EQUAL_FATAL(w.n_got, i + 1);
		CU_ASSERT(mb_test_now_ms() - t0 < 3000); /* not the request's deadline (10 s) */
		CU_ASSERT_EQUAL(w.got[i].hdr.request_id, (uint64_t)i + 1);
		CU_ASSERT_EQUAL(w.got[i].hdr.status, MB_STATUS_UNAVAILABLE);
		CU_ASSERT_EQUAL(w.got[i].hdr.result_type, MB_RESULT_TEXT);
		CU_ASSERT_PTR_NOT_NULL_FATAL(w.got[i].data);
		snprintf(want, sizeof(want), "client: malformed answer from %s: %s", w.f[0].ep,
			 bad[i].why);
		if (strncmp(w.got[i].data, want, strlen(want)) != 0)
			printf("\n    reason \"%s\", not \"%s...\"", (char *)w.got[i].data, want);
		CU_ASSERT_NSTRING_EQUAL(w.got[i].data, want, strlen(want));
	}
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.malformed, N);
	CU_ASSERT_EQUAL(st.client_timeouts, 0);
	/* still served: a good answer after them */
	send_one(&w, 100, 10000);
	for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && w.f[0].n_held == N;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.f[0].n_held, N + 1);
	fake_answer(&w.f[0], N, MB_STATUS_OK, "ok");
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got == N;)
		pump(&w, 5);
	pump_for(&w, 100);
	CU_ASSERT_EQUAL_FATAL(w.n_got, N + 1);
	CU_ASSERT_EQUAL(w.got[N].hdr.status, MB_STATUS_OK);
	world_close(&w);
}

/*
 * An answer whose header does not decode names no request: counted; the request stays with
 * the daemon and ends with the client's TIMEOUT at its deadline, the one answer it gets.
 */
static void
test_malformed_header_counted(void)
{
	struct world w;
	struct mb_client_fleet_stats st;
	uint64_t until, t0;

	world_open(&w, 1, (struct mb_client_opts){.failover_ms = 20000});
	t0 = mb_test_now_ms();
	send_one(&w, 1, 300);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.f[0].n_held == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.f[0].n_held, 1);
	fake_answer_bad(&w.f[0], 0, BAD_HEADER);
	for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && w.n_got == 0;)
		pump(&w, 5);
	pump_for(&w, 200);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_TIMEOUT);
	CU_ASSERT(mb_test_now_ms() - t0 >= 540); /* 300 ms + the 250 ms grace */
	stats(&w, &st);
	CU_ASSERT_EQUAL(st.malformed, 1);
	CU_ASSERT_EQUAL(st.client_timeouts, 1);
	world_close(&w);
}

/*
 * A daemon that refuses one model (@p status: UNAVAILABLE, the model disabled or its breaker
 * open; UNKNOWN_MODEL, a fleet whose daemons differ) cools down for that model only: for a
 * second it gets no request of it (they go to the other daemon), while requests of another
 * model keep going to it as before; after the second it gets that model again.
 */
static void
model_refused_on_one(uint16_t status)
{
	enum { NB = 10, NA = 4 };
	struct world w;
	uint64_t until, t_refused, id = 1;
	int x, y, got;

	world_open(&w, 2, (struct mb_client_opts){.failover_ms = 20000});
	send_model(&w, id, "a", 10000);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && holder_of(&w, 1) < 0;)
		pump(&w, 5);
	x = holder_of(&w, 1);
	CU_ASSERT_FATAL(x >= 0);
	y = 1 - x;
	fake_answer(&w.f[x], 0, status, "model a is not here");
	t_refused = mb_test_now_ms();
	/* the refusal sends it to the other, whose answer is the caller's */
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.f[y].n_held == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.f[y].n_held, 1);
	fake_answer(&w.f[y], 0, MB_STATUS_OK, "ok");
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got == 0;)
		pump(&w, 5);
	CU_ASSERT_EQUAL_FATAL(w.n_got, 1);
	CU_ASSERT_EQUAL(w.got[0].hdr.status, MB_STATUS_OK);

	/* within the second: model b still goes to both, model a to the other only */
	for (int k = 0; k < NB; k++)
		send_model(&w, ++id, "b", 10000);
	for (int k = 0; k < NA; k++)
		send_model(&w, ++id, "a", 10000);
	for (until = mb_test_now_ms() + 500;
	     mb_test_now_ms() < until && w.f[x].n_held + w.f[y].n_held < 2 + NB + NA;) {
		pump(&w, 5);
		fake_answer_all(&w.f[x]);
		fake_answer_all(&w.f[y]);
	}
	printf("\n    within the cool-down (%d ms): the refusing daemon got %d of %d b, %d of %d a",
	       (int)(mb_test_now_ms() - t_refused), fake_got(&w.f[x], "b"), NB,
	       fake_got(&w.f[x], "a") - 1, NA);
	CU_ASSERT(mb_test_now_ms() - t_refused < 900); /* still within it */
	/* it still gets model b (0 when the whole daemon cooled down); how many depends on the
	 * answer times the pick weighs, which a loaded machine skews */
	CU_ASSERT(fake_got(&w.f[x], "b") >= 1);
	CU_ASSERT_EQUAL(fake_got(&w.f[x], "a"), 1);
	CU_ASSERT_EQUAL(fake_got(&w.f[y], "a"), 1 + NA);
	for (until = mb_test_now_ms() + 2000; mb_test_now_ms() < until && w.n_got < 1 + NB + NA;) {
		pump(&w, 5);
		fake_answer_all(&w.f[x]);
		fake_answer_all(&w.f[y]);
	}
	CU_ASSERT_EQUAL(w.n_got, 1 + NB + NA);

	/* after it, model a goes to it again */
	while (mb_test_now_ms() < t_refused + 1100)
		pump(&w, 5);
	got = fake_got(&w.f[x], "a");
	for (int k = 0; k < NA; k++)
		send_model(&w, ++id, "a", 10000);
	for (until = mb_test_now_ms() + 1000;
	     mb_test_now_ms() < until && w.f[x].n_held + w.f[y].n_held < 2 + NB + 2 * NA;) {
		pump(&w, 5);
		fake_answer_all(&w.f[x]);
		fake_answer_all(&w.f[y]);
	}
	printf(", after it %d of %d a", fake_got(&w.f[x], "a") - got, NA);
	CU_ASSERT(fake_got(&w.f[x], "a") - got >= 1);
	for (until = mb_test_now_ms() + 2000;
	     mb_test_now_ms() < until && w.n_answers < 1 + NB + 2 * NA;) {
		pump(&w, 5);
		fake_answer_all(&w.f[x]);
		fake_answer_all(&w.f[y]);
	}
	CU_ASSERT_EQUAL(w.n_answers, 1 + NB + 2 * NA);
	for (int i = 0; i < w.n_got; i++)
		CU_ASSERT_EQUAL(w.got[i].hdr.status, MB_STATUS_OK);
	world_close(&w);
}

static void
test_model_unavailable_on_one(void)
{
	model_refused_on_one(MB_STATUS_UNAVAILABLE);
}

static void
test_model_unknown_on_one(void)
{
	model_refused_on_one(MB_STATUS_UNKNOWN_MODEL);
}

/*
 * A model every daemon refuses: its requests are answered that refusal at once, as one
 * daemon would, not after waiting for a cool-down; the other model's requests flow.
 */
static void
test_model_refused_everywhere(void)
{
	struct world w;
	uint64_t until, t0;
	int done = 0;

	world_open(&w, 2, (struct mb_client_opts){.failover_ms = 20000});
	for (uint64_t id = 1; id <= 3; id++) {
		t0 = mb_test_now_ms();
		send_model(&w, id, "a", 10000);
		send_model(&w, 100 + id, "b", 10000);
		for (until = t0 + 2000; mb_test_now_ms() < until && w.n_got < (int)id * 2;) {
			pump(&w, 5);
			for (int i = 0; i < 2; i++)
				for (int k = 0; k < w.f[i].n_held; k++)
					if (!w.f[i].done[k])
						fake_answer(&w.f[i], k,
							    strcmp(w.f[i].held[k].hdr.model, "a") ==
									    0
								    ? MB_STATUS_UNAVAILABLE
								    : MB_STATUS_OK,
							    "disabled");
		}
		printf("%s%d ms", id == 1 ? "\n    a and b answered after " : ", ",
		       (int)(mb_test_now_ms() - t0));
		CU_ASSERT_EQUAL_FATAL(w.n_got, (int)id * 2);
		/* the first tries both daemons; later ones, in their cool-down, one at once */
		CU_ASSERT(mb_test_now_ms() - t0 < 500);
	}
	for (int i = 0; i < w.n_got; i++) {
		bool a = w.got[i].hdr.request_id < 100;

		CU_ASSERT_EQUAL(w.got[i].hdr.status, a ? MB_STATUS_UNAVAILABLE : MB_STATUS_OK);
		done += a;
	}
	CU_ASSERT_EQUAL(done, 3);
	CU_ASSERT_EQUAL(fake_got(&w.f[0], "a") + fake_got(&w.f[1], "a"), 2 + 1 + 1);
	world_close(&w);
}

/* The ZAP handler of the fakes' context: refuses every key (status 400). */
static void
zap_refuse(void *zap)
{
	for (;;) {
		char frames[8][256];
		int len[8], n = 0, more = 1;
		size_t sz = sizeof(more);

		if (zmq_recv(zap, frames[0], sizeof(frames[0]), ZMQ_DONTWAIT) < 0)
			return;
		len[n++] = 0;
		while (zmq_getsockopt(zap, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
			int r = zmq_recv(zap, frames[n < 8 ? n : 7], sizeof(frames[0]), 0);

			if (n < 8)
				len[n++] = r < 0 ? 0 : (r > 256 ? 256 : r);
		}
		zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
		zmq_send(zap, frames[1], (size_t)len[1], ZMQ_SNDMORE);
		zmq_send(zap, "400", 3, ZMQ_SNDMORE);
		zmq_send(zap, "not allowed", 11, ZMQ_SNDMORE);
		zmq_send(zap, "", 0, ZMQ_SNDMORE);
		zmq_send(zap, "", 0, 0);
	}
}

/*
 * With CURVE, every daemon refuses the handshake: one plaintext (the mechanisms differ), one
 * whose ZAP handler refuses the client's key. mb_client_fleet_stats() says why each is down;
 * mb_client_recv() waits its timeout and then says -EACCES (a caller's loop does not spin);
 * a request's TIMEOUT names the refused handshake.
 */
static void
test_curve_refused(void)
{
	enum { N = 5, WAIT_MS = 200 };
	char srv_pub[41], srv_sec[41], cli_pub[41], cli_sec[41], eps[160], err[256];
	struct mb_client_daemon d[2];
	struct mb_client_response r;
	void *zctx, *plain, *curve, *zap;
	struct mb_client *c = NULL;
	struct mb_client_opts o = {0};
	uint64_t until, t0, took;
	size_t n;
	int one = 1, linger = 0, rc, eacces = 0, mech = -1, key = -1;
	char ep0[64], ep1[64];

	if (!zmq_has("curve")) {
		printf("\n    skipped: libzmq without CURVE");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(zmq_curve_keypair(srv_pub, srv_sec), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_curve_keypair(cli_pub, cli_sec), 0);
	zctx = zmq_ctx_new();
	zap = zmq_socket(zctx, ZMQ_REP);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(zap, "inproc://zeromq.zap.01"), 0);
	plain = zmq_socket(zctx, ZMQ_ROUTER);
	curve = zmq_socket(zctx, ZMQ_ROUTER);
	zmq_setsockopt(plain, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(curve, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(curve, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(curve, ZMQ_CURVE_SECRETKEY, srv_sec, 40);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(plain, "tcp://127.0.0.1:*"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(curve, "tcp://127.0.0.1:*"), 0);
	n = sizeof(ep0);
	zmq_getsockopt(plain, ZMQ_LAST_ENDPOINT, ep0, &n);
	n = sizeof(ep1);
	zmq_getsockopt(curve, ZMQ_LAST_ENDPOINT, ep1, &n);
	snprintf(eps, sizeof(eps), "%s,%s", ep0, ep1);
	o.endpoint = eps;
	o.resolve_ms = -1;
	o.curve = (struct mb_client_curve){srv_pub, cli_pub, cli_sec};
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &c, err, sizeof(err)), 0);

	/* both refused, each for its reason */
	for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && (mech < 0 || key < 0);) {
		zap_refuse(zap);
		rc = mb_client_recv(c, &r, 10);
		CU_ASSERT(rc == -ETIMEDOUT || rc == -EACCES);
		CU_ASSERT_EQUAL_FATAL(mb_client_fleet_stats(c, NULL, d, 2), 2);
		for (int i = 0; i < 2; i++) {
			if (d[i].refused == MB_CLIENT_REFUSED_MECHANISM)
				mech = i;
			if (d[i].refused == MB_CLIENT_REFUSED_KEY)
				key = i;
		}
	}
	CU_ASSERT_FATAL(mech >= 0 && key >= 0);
	CU_ASSERT_STRING_EQUAL(d[mech].endpoint, ep0);
	CU_ASSERT_STRING_EQUAL(d[key].endpoint, ep1);
	CU_ASSERT(!d[0].up && !d[1].up);

	/* N calls of WAIT_MS each take about N x WAIT_MS, each -EACCES */
	t0 = mb_test_now_ms();
	for (int k = 0; k < N; k++) {
		zap_refuse(zap);
		rc = mb_client_recv(c, &r, WAIT_MS);
		eacces += rc == -EACCES;
		mb_client_response_free(&r);
	}
	took = mb_test_now_ms() - t0;
	printf("\n    %d calls of mb_client_recv(%d ms): %d ms, %d -EACCES", N, WAIT_MS, (int)took,
	       eacces);
	CU_ASSERT(took >= N * WAIT_MS - 20);
	CU_ASSERT(took < N * WAIT_MS + 1500);
	CU_ASSERT_EQUAL(eacces, N);

	/* a request: no daemon takes it, and the reason says why */
	{
		struct mb_request_hdr h;
		uint8_t payload[16] = {0};
		char want[256];

		mb_client_audio_hdr(&h, "echo", TENANT, 1, MB_MEDIA_PCM_S16LE, 16000,
				    sizeof(payload));
		h.timeout_ms = 300;
		CU_ASSERT_EQUAL_FATAL(mb_client_send(c, &h, payload, sizeof(payload)), 0);
		rc = -1;
		for (until = mb_test_now_ms() + 3000; mb_test_now_ms() < until && rc != 0;) {
			zap_refuse(zap);
			rc = mb_client_recv(c, &r, 50);
		}
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_TIMEOUT);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r.data);
		printf("\n    reason: %s", (char *)r.data);
		snprintf(want, sizeof(want),
			 "client: no daemon took it within 300 ms (0 of the fleet up; ");
		CU_ASSERT_NSTRING_EQUAL(r.data, want, strlen(want));
		CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "handshake with tcp://127.0.0.1:"));
		mb_client_response_free(&r);
	}
	mb_client_close(&c);
	zmq_close(plain);
	zmq_close(curve);
	zmq_close(zap);
	zmq_ctx_term(zctx);
}

static const struct mb_test_case cases[] = {
	{"late answer of the silent daemon dropped", test_late_answer_dropped},
	{"late answer of the silent daemon wins, the other's dropped", test_first_answer_wins},
	{"nobody answers: one client TIMEOUT", test_nobody_answers},
	{"credit window: no more than the first window in flight", test_credit_window},
	{"one slow answer does not shut a daemon out", test_slow_answer_not_shut_out},
	{"a daemon that holds requests silently stops getting new ones before failover_ms",
	 test_silent_daemon_avoided},
	{"two failovers: the older request first, ahead of those waiting",
	 test_failover_oldest_first_across_failovers},
	{"a malformed answer: the request goes to the other daemon", test_malformed_answer_resent},
	{"a malformed answer from the last daemon: UNAVAILABLE naming it",
	 test_malformed_answer_last_daemon},
	{"an answer whose header does not decode: counted, the request times out",
	 test_malformed_header_counted},
	{"UNAVAILABLE for one model: that model elsewhere for a second, the others still there",
	 test_model_unavailable_on_one},
	{"UNKNOWN_MODEL: that model elsewhere for a second, the others still there",
	 test_model_unknown_on_one},
	{"a model refused everywhere: its refusal at once, the other model flows",
	 test_model_refused_everywhere},
	{"CURVE refused everywhere: why in the stats, recv waits, the TIMEOUT names it",
	 test_curve_refused},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"net fleet", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("fleet_test", suites);
}
