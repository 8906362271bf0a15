/*
 * fleet.c: a client of many daemons behind the one client API (mediabatch/client.h,
 * "Fleets"): a DEALER per daemon, credit windows, least expected wait, failover with
 * exactly one answer per request, client-side deadlines, and names re-resolved.
 *
 * Everything runs on the caller's thread inside send, cancel and recv. State:
 *   daemons   a fixed table of slots (MAX_DAEMONS), each a DEALER connected to one
 *             resolved address, a socket monitor (up/down), its window and figures; a slot
 *             freed after re-resolution removed it and its requests left is reused with a
 *             new generation, so a request remembers (slot, generation) of its attempts;
 *   requests  a pool of entries (the caller's header, the payload kept as a ZeroMQ message
 *             so that a resend shares the bytes, the deadline, the attempts, a submission
 *             number) indexed by (tenant, request id) in an open-addressing table; entries
 *             without a daemon wait in a FIFO for credit, a failed daemon's put back at its
 *             head oldest first;
 *   ready     answers for the caller that the client made itself (TIMEOUT, CANCELLED,
 *             UNAVAILABLE after a malformed answer) or that arrived while another was
 *             being returned.
 */
#include "client_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_DAEMONS 64
#define MAX_ATTEMPTS 8
/* the daemon's own TIMEOUT normally arrives first: the client's comes this much later */
#define DEADLINE_GRACE_NS 250000000ull
/* a daemon just connected to, not yet up, counts as one to try for this long */
#define CONNECT_GRACE_NS 1000000000ull
/* a daemon that answered UNAVAILABLE or UNKNOWN_MODEL gets no new requests of that model for
 * this long, nor one that answered malformed or fell silent any (see struct daemon) */
#define COOLDOWN_NS 1000000000ull
/* the models a daemon can be cooling down for at once; one more refused: the whole daemon */
#define MODEL_COOLDOWNS 8
/* how often the timers (deadlines, silent daemons) are looked at */
#define TICK_NS 20000000ull
#define NS_PER_MS 1000000ull
/* how far behind the least expected wait (in requests) a daemon still takes its turn */
#define PICK_SLACK 32.0
/* an idle daemon's answer time is forgotten with this time constant (see answer_ms()) */
#define LAT_DECAY_NS 1000000000.0

/* a model a daemon refused (UNAVAILABLE, UNKNOWN_MODEL): none of its requests until @until */
struct model_cooldown {
	char model[MB_PROTO_MODEL_LEN + 1];
	uint64_t until;
};

/* struct mb_client_daemon.refused took padding: the MEDIABATCH_0 layout is unchanged */
_Static_assert(sizeof(struct mb_client_daemon) == 192 &&
		       offsetof(struct mb_client_daemon, window) == 136 &&
		       offsetof(struct mb_client_daemon, refused) == 130,
	       "struct mb_client_daemon's layout changed");

struct daemon {
	bool used;
	uint32_t gen;
	char endpoint[128];
	int source;
	void *sock, *mon;
	bool up, gone, refused, seen;
	bool ever_up;	     /* it has been up since it was opened */
	uint64_t opened_at;  /* when it was connected to */
	uint8_t refusal;     /* enum mb_client_refusal: why its last handshake failed */
	uint32_t zap_status; /* MB_CLIENT_REFUSED_KEY: the service's ZAP status code */
	/* no new request at all until then (a malformed answer, silence, a full pipe); one
	 * model's refusal (UNAVAILABLE: disabled, breaker open, draining; UNKNOWN_MODEL: not
	 * on this daemon) is that model's only, in @mc */
	uint64_t cooldown_until;
	struct model_cooldown mc[MODEL_COOLDOWNS];
	double window;
	uint32_t in_flight;
	uint32_t ok_run; /* OK answers since the window last grew */
	uint64_t last_rx;
	double lat_ms;
	uint64_t sent, answered, overloaded, failed_over;
};

struct attempt {
	uint8_t slot;
	uint32_t gen;
};

struct entry {
	bool used;
	struct mb_request_hdr hdr; /* the caller's; timeout_ms rewritten on each send */
	zmq_msg_t payload;
	uint64_t deadline;
	uint64_t sent_at;
	int daemon; /* slot it is in flight on, or -1: waiting */
	struct attempt tried[MAX_ATTEMPTS];
	uint8_t n_tried;
	int next;	     /* waiting FIFO, or free list */
	uint32_t timeout_ms; /* the caller's */
	uint64_t seq;	     /* submission order: mb_fleet_send() numbers each request */
};

/* fail_over()'s scratch: qsort() has no context argument, so each slot carries its key */
struct by_seq {
	uint64_t seq;
	int ent;
};

struct mb_fleet {
	void *ctx;
	struct mb_client_opts o; /* the defaults applied */
	char client_id[256];
	char server_key[41], public_key[41], secret_key[41];
	struct mb_fleet_source src[MB_FLEET_MAX_SOURCES];
	int n_src;
	bool resolving;
	uint64_t next_resolve, next_tick;
	char resolve_err[160];

	struct daemon d[MAX_DAEMONS];
	int rr; /* round robin among equals */

	struct entry *e;
	int cap, n_used, free_head;
	int wait_head, wait_tail, n_waiting;
	uint32_t *index; /* entry + 1, 0 empty */
	uint32_t index_mask;
	uint64_t next_seq;    /* the next request's submission number */
	struct by_seq *order; /* cap slots: a failed daemon's entries, put in order */

	struct mb_client_response *ready;
	int ready_cap, ready_head, ready_n;

	uint64_t resent, dups, client_timeouts, resolve_failures, malformed;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the request index: (tenant, id) -> entry ---- */

static uint32_t
hash_key(uint32_t tenant, uint64_t id)
{
	uint64_t h = id * 0x9E3779B97F4A7C15ull ^ ((uint64_t)tenant * 0xC2B2AE3D27D4EB4Full);

	h ^= h >> 29;
	return (uint32_t)(h * 0xBF58476D1CE4E5B9ull >> 32);
}

static int
index_find(const struct mb_fleet *f, uint32_t tenant, uint64_t id)
{
	for (uint32_t i = hash_key(tenant, id) & f->index_mask;; i = (i + 1) & f->index_mask) {
		uint32_t v = f->index[i];

		if (v == 0)
			return -1;
		if (f->e[v - 1].hdr.tenant_id == tenant && f->e[v - 1].hdr.request_id == id)
			return (int)v - 1;
	}
}

static void
index_put(struct mb_fleet *f, int ent)
{
	uint32_t i = hash_key(f->e[ent].hdr.tenant_id, f->e[ent].hdr.request_id) & f->index_mask;

	while (f->index[i] != 0)
		i = (i + 1) & f->index_mask;
	f->index[i] = (uint32_t)ent + 1;
}

/* Remove @p ent, shifting back the run after it (linear probing without tombstones). */
static void
index_del(struct mb_fleet *f, int ent)
{
	uint32_t i = hash_key(f->e[ent].hdr.tenant_id, f->e[ent].hdr.request_id) & f->index_mask;

	while (f->index[i] != (uint32_t)ent + 1)
		i = (i + 1) & f->index_mask;
	for (uint32_t j = (i + 1) & f->index_mask;; j = (j + 1) & f->index_mask) {
		uint32_t v = f->index[j], home;

		if (v == 0)
			break;
		home = hash_key(f->e[v - 1].hdr.tenant_id, f->e[v - 1].hdr.request_id) &
		       f->index_mask;
		/* move v into the hole at i unless its home lies cyclically in (i, j] */
		if (((j - home) & f->index_mask) >= ((j - i) & f->index_mask)) {
			f->index[i] = v;
			i = j;
		}
	}
	f->index[i] = 0;
}

/* ---- entries ---- */

static int
entry_alloc(struct mb_fleet *f)
{
	int ent;

	if (f->free_head < 0)
		return -1;
	ent = f->free_head;
	f->free_head = f->e[ent].next;
	memset(&f->e[ent], 0, sizeof(f->e[ent]));
	f->e[ent].used = true;
	f->e[ent].daemon = -1;
	f->e[ent].next = -1;
	f->n_used++;
	return ent;
}

static void
entry_free(struct mb_fleet *f, int ent)
{
	index_del(f, ent);
	zmq_msg_close(&f->e[ent].payload);
	f->e[ent].used = false;
	f->e[ent].next = f->free_head;
	f->free_head = ent;
	f->n_used--;
}

static void
wait_push(struct mb_fleet *f, int ent)
{
	f->e[ent].daemon = -1;
	f->e[ent].next = -1;
	if (f->wait_tail >= 0)
		f->e[f->wait_tail].next = ent;
	else
		f->wait_head = ent;
	f->wait_tail = ent;
	f->n_waiting++;
}

static void
wait_remove(struct mb_fleet *f, int ent)
{
	int prev = -1;

	for (int i = f->wait_head; i >= 0; prev = i, i = f->e[i].next)
		if (i == ent) {
			if (prev >= 0)
				f->e[prev].next = f->e[i].next;
			else
				f->wait_head = f->e[i].next;
			if (f->wait_tail == ent)
				f->wait_tail = prev;
			f->n_waiting--;
			return;
		}
}

static bool
tried(const struct entry *en, int slot, uint32_t gen)
{
	for (int i = 0; i < en->n_tried; i++)
		if (en->tried[i].slot == slot && en->tried[i].gen == gen)
			return true;
	return false;
}

/*
 * Send daemon @p d a cancel of the request of header @p h (its tenant and id); returns 0 or
 * a negative errno. A daemon that does not hold the request ignores it (protocol.md).
 */
static int
send_cancel(struct daemon *d, const struct mb_request_hdr *h)
{
	struct mb_request_hdr c = {.version = MB_PROTO_VERSION,
				   .flags = MB_FLAG_CANCEL,
				   .request_id = h->request_id,
				   .tenant_id = h->tenant_id};
	uint8_t wire[MB_PROTO_HDR_LEN];

	mb_proto_encode_request(&c, wire);
	if (zmq_send(d->sock, wire, sizeof(wire), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -zmq_errno();
	return zmq_send(d->sock, "", 0, 0) < 0 ? -zmq_errno() : 0;
}

/* ---- answers for the caller ---- */

static int
ready_push(struct mb_fleet *f, struct mb_client_response *r)
{
	if (f->ready_n == f->ready_cap) {
		int cap = f->ready_cap ? f->ready_cap * 2 : 64;
		struct mb_client_response *v = malloc(sizeof(*v) * (size_t)cap);

		if (v == NULL)
			return -ENOMEM;
		for (int i = 0; i < f->ready_n; i++)
			v[i] = f->ready[(f->ready_head + i) % f->ready_cap];
		free(f->ready);
		f->ready = v;
		f->ready_cap = cap;
		f->ready_head = 0;
	}
	f->ready[(f->ready_head + f->ready_n) % f->ready_cap] = *r;
	f->ready_n++;
	return 0;
}

/* Answer @p ent with @p status and a reason of the client's own, and forget it. */
static void
answer_locally(struct mb_fleet *f, int ent, uint16_t status, const char *reason)
{
	struct entry *en = &f->e[ent];
	struct mb_client_response r;
	size_t n = strlen(reason);

	memset(&r, 0, sizeof(r));
	r.hdr.version = MB_PROTO_VERSION;
	r.hdr.status = status;
	r.hdr.request_id = en->hdr.request_id;
	r.hdr.tenant_id = en->hdr.tenant_id;
	r.hdr.device = MB_DEVICE_NONE;
	memcpy(r.hdr.model, en->hdr.model, sizeof(r.hdr.model));
	r.hdr.result_type = MB_RESULT_TEXT;
	r.hdr.result_len = (uint32_t)n;
	r.data = malloc(n + 1);
	if (r.data != NULL) {
		memcpy(r.data, reason, n + 1);
		r.len = n;
	}
	if (r.data == NULL || ready_push(f, &r) < 0)
		free(r.data); /* out of memory: the caller loses this answer's text only */
	if (en->daemon >= 0)
		f->d[en->daemon].in_flight--;
	else
		wait_remove(f, ent);
	entry_free(f, ent);
}

/* ---- daemons ---- */

static void
daemon_close(struct daemon *d)
{
	if (d->mon != NULL) {
		zmq_socket_monitor(d->sock, NULL, 0);
		zmq_close(d->mon);
	}
	if (d->sock != NULL)
		zmq_close(d->sock);
	d->sock = d->mon = NULL;
	d->used = false;
}

static int
daemon_open(struct mb_fleet *f, int source, const char *endpoint)
{
	int slot = -1, linger = 0, one = 1, hwm;
	char mon_ep[64], err[160];
	struct daemon *d;

	for (int i = 0; i < MAX_DAEMONS; i++)
		if (!f->d[i].used) {
			slot = i;
			break;
		}
	if (slot < 0)
		return -ENOSPC;
	d = &f->d[slot];
	{
		uint32_t gen = d->gen + 1; /* a new generation: attempts on the old one differ */

		memset(d, 0, sizeof(*d));
		d->gen = gen;
	}
	snprintf(d->endpoint, sizeof(d->endpoint), "%.127s", endpoint);
	d->source = source;
	d->window = f->o.window;
	d->opened_at = now_ns();
	d->sock = zmq_socket(f->ctx, ZMQ_DEALER);
	if (d->sock == NULL)
		return -zmq_errno();
	hwm = f->o.max_window * 2 + 16; /* the window keeps it far below */
	zmq_setsockopt(d->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(d->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(d->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(d->sock, ZMQ_IPV6, &one, sizeof(one)); /* an IPv6 address, or a name's */
	if (f->client_id[0] != '\0')
		zmq_setsockopt(d->sock, ZMQ_ROUTING_ID, f->client_id, strlen(f->client_id));
	if (f->server_key[0] != '\0') {
		struct mb_client_curve cv = {f->server_key, f->public_key, f->secret_key};

		if (mb_client_set_curve(d->sock, &cv, err, sizeof(err)) < 0) {
			zmq_close(d->sock);
			d->sock = NULL;
			return -EINVAL;
		}
	}
	snprintf(mon_ep, sizeof(mon_ep), "inproc://mb-fleet-%p-%d-%u", (void *)f, slot, d->gen);
	if (zmq_socket_monitor(d->sock, mon_ep,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
		d->mon = zmq_socket(f->ctx, ZMQ_PAIR);
		if (d->mon != NULL && zmq_connect(d->mon, mon_ep) != 0) {
			zmq_close(d->mon);
			d->mon = NULL;
		}
	}
	if (d->mon == NULL || zmq_connect(d->sock, endpoint) != 0) {
		int e = d->mon == NULL ? ENOMEM : zmq_errno();

		daemon_close(d);
		return -e;
	}
	d->used = true;
	return slot;
}

static int
cmp_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct by_seq *)a)->seq, y = ((const struct by_seq *)b)->seq;

	return (x > y) - (x < y);
}

/*
 * Take every request off daemon @p slot: back into the line for another one, in submission
 * order, ahead of every request submitted after it. The line holds, in order, the requests
 * of earlier failovers not resent yet (by submission), those waiting for their first send
 * (all submitted after anything that was ever sent), then refused ones waiting for another
 * daemon; so the requests taken here merge into its head by submission number, and the
 * oldest request of every failover so far goes first.
 */
static void
fail_over(struct mb_fleet *f, int slot)
{
	struct daemon *d = &f->d[slot];
	int n = 0, prev = -1, cur = f->wait_head;

	for (int i = 0; i < f->cap && (uint32_t)n < d->in_flight; i++)
		if (f->e[i].used && f->e[i].daemon == slot)
			f->order[n++] = (struct by_seq){f->e[i].seq, i};
	qsort(f->order, (size_t)n, sizeof(f->order[0]), cmp_seq);
	for (int k = 0; k < n; k++) {
		int i = f->order[k].ent;

		while (cur >= 0 && f->e[cur].seq < f->e[i].seq) {
			prev = cur;
			cur = f->e[cur].next;
		}
		d->in_flight--;
		d->failed_over++;
		f->resent++;
		f->e[i].daemon = -1;
		f->e[i].next = cur;
		if (prev >= 0)
			f->e[prev].next = i;
		else
			f->wait_head = i;
		if (cur < 0)
			f->wait_tail = i;
		prev = i;
		f->n_waiting++;
	}
}

/* Whether daemon @p d refused @p model less than COOLDOWN_NS ago. */
static bool
model_cooling(const struct daemon *d, const char *model, uint64_t now)
{
	for (int i = 0; i < MODEL_COOLDOWNS; i++)
		if (d->mc[i].until > now && strcmp(d->mc[i].model, model) == 0)
			return true;
	return false;
}

/*
 * Daemon @p d refused a request of @p model (UNAVAILABLE, UNKNOWN_MODEL): no new request of
 * that model for COOLDOWN_NS, the other models still flow. A daemon that refuses more models
 * at once than MODEL_COOLDOWNS holds (one draining, say) cools down whole.
 */
static void
model_cool_down(struct daemon *d, const char *model, uint64_t now)
{
	int k = -1;

	for (int i = 0; i < MODEL_COOLDOWNS && k < 0; i++)
		if (strcmp(d->mc[i].model, model) == 0)
			k = i;
	for (int i = 0; i < MODEL_COOLDOWNS && k < 0; i++)
		if (d->mc[i].until <= now)
			k = i;
	if (k < 0) {
		d->cooldown_until = now + COOLDOWN_NS;
		return;
	}
	snprintf(d->mc[k].model, sizeof(d->mc[k].model), "%s", model);
	d->mc[k].until = now + COOLDOWN_NS;
}

/*
 * Whether a daemon taking requests of @p en's model has not had @p en yet: one up and not
 * cooling down (whole or for that model), or one connected to less than CONNECT_GRACE_NS ago
 * and not up yet (at start-up, the first daemon's refusals wait for the others' handshakes
 * instead of reaching the caller).
 */
static bool
someone_else(const struct mb_fleet *f, const struct entry *en, uint64_t now)
{
	if (en->n_tried >= MAX_ATTEMPTS)
		return false;
	for (int i = 0; i < MAX_DAEMONS; i++) {
		const struct daemon *d = &f->d[i];
		bool taking = d->up ||
			      (!d->ever_up && !d->refused && now - d->opened_at < CONNECT_GRACE_NS);

		if (d->used && taking && !d->gone && d->cooldown_until <= now &&
		    !tried(en, i, d->gen) && !model_cooling(d, en->hdr.model, now))
			return true;
	}
	return false;
}

/*
 * Daemon @p d's answer time as the pick weighs it: its moving average, except that
 *   - while it holds requests, the time it has been silent (since its last answer, or since
 *     the first request it holds was sent) when that is longer: a daemon that has stopped
 *     answering stops looking fast before failover_ms moves its requests;
 *   - while it holds none, the average decays toward the fleet's fastest @p min_lat with
 *     the time since its last answer (LAT_DECAY_NS): only answers update the average, so
 *     one slow moment would otherwise keep it from ever being tried again.
 */
static double
answer_ms(const struct daemon *d, double min_lat, uint64_t now)
{
	double lat = d->lat_ms;

	if (d->last_rx == 0 || now <= d->last_rx)
		return lat;
	if (d->in_flight > 0) { /* one that has not answered yet too */
		double silent = (double)(now - d->last_rx) / 1e6;

		return silent > lat ? silent : lat;
	}
	if (lat > 0 && min_lat > 0 && lat > min_lat) {
		/* about e^-x (1 / its series to x^3: falling, 0.37 at 1; no libm for the
		 * static library's users to add) */
		double x = (double)(now - d->last_rx) / LAT_DECAY_NS;

		lat = min_lat + (lat - min_lat) / (1.0 + x + x * x / 2.0 + x * x * x / 6.0);
	}
	return lat;
}

/*
 * The daemon to send @p en to now, or -1. A daemon cooling down for @p en's model is passed
 * over while another up daemon is not (*@p model_held is then set when such a daemon had
 * credit: this request waits for the others, a request of another model may go there); when
 * every up daemon is cooling down for it, the request goes to one of them all the same, so
 * that a model refused fleet-wide is answered (that refusal) at once, as one daemon would.
 */
static int
pick(struct mb_fleet *f, const struct entry *en, uint64_t now, bool *model_held)
{
	/* a request goes to each daemon once while there are others it has not seen */
	bool others = en->n_tried > 0 && someone_else(f, en, now);
	bool for_model = others; /* a daemon that is not cooling down for its model */
	int best = -1;
	double best_cost = 0, min_lat = 0, cost[MAX_DAEMONS];

	*model_held = false;
	for (int i = 0; i < MAX_DAEMONS; i++) {
		const struct daemon *d = &f->d[i];

		if (!d->used || !d->up)
			continue;
		if (d->lat_ms > 0 && (min_lat == 0 || d->lat_ms < min_lat))
			min_lat = d->lat_ms;
		if (!for_model && !d->gone && d->cooldown_until <= now &&
		    !model_cooling(d, en->hdr.model, now))
			for_model = true;
	}

	/*
	 * Expected wait: requests ahead times the answer time relative to the fastest
	 * daemon's, where daemons within twice the fastest count as equal (answer times jitter
	 * with scheduling): only one clearly slower is weighed down. Among the daemons within
	 * PICK_SLACK of the least expected wait, round robin: equal daemons get equal shares
	 * (least-outstanding alone hands a whole batch's worth of new requests to the daemon
	 * whose batch just came back, and more to whichever the scheduler favours), and one
	 * that falls PICK_SLACK requests behind is skipped until it catches up.
	 */
	for (int i = 0; i < MAX_DAEMONS; i++) {
		const struct daemon *d = &f->d[i];
		double lat;

		cost[i] = -1;
		if (!d->used || !d->up || d->gone || d->cooldown_until > now ||
		    d->in_flight >= (uint32_t)d->window)
			continue;
		if (others && tried(en, i, d->gen))
			continue;
		if (for_model && model_cooling(d, en->hdr.model, now)) {
			*model_held = true;
			continue;
		}
		lat = answer_ms(d, min_lat, now);
		lat = lat > 0 && min_lat > 0 ? lat / min_lat : 1.0;
		cost[i] = (d->in_flight + 1) * (lat < 2.0 ? 1.0 : lat);
		if (best < 0 || cost[i] < best_cost) {
			best = i;
			best_cost = cost[i];
		}
	}
	if (best < 0)
		return -1;
	for (int k = 0; k < MAX_DAEMONS; k++) {
		int i = (f->rr + k) % MAX_DAEMONS;

		if (cost[i] >= 0 && cost[i] <= best_cost + PICK_SLACK) {
			best = i;
			break;
		}
	}
	if (best >= 0)
		f->rr = (best + 1) % MAX_DAEMONS;
	return best;
}

/* Send @p ent to daemon @p slot. 0, or -errno (the entry stays waiting). */
static int
send_to(struct mb_fleet *f, int ent, int slot, uint64_t now)
{
	struct entry *en = &f->e[ent];
	struct daemon *d = &f->d[slot];
	struct mb_request_hdr h = en->hdr;
	uint8_t wire[MB_PROTO_HDR_LEN];
	zmq_msg_t m;

	/* the time left, so that no daemon works past the caller's deadline: on every send of
	 * a request that has a timeout, and on a resend of one that had none (its deadline is
	 * then request_timeout_ms; the first send leaves the model's default to the daemon) */
	if (en->timeout_ms > 0 || en->n_tried > 0) {
		uint64_t left = en->deadline > now + DEADLINE_GRACE_NS
					? en->deadline - DEADLINE_GRACE_NS - now
					: NS_PER_MS;

		h.timeout_ms = (uint32_t)(left / NS_PER_MS) > 0 ? (uint32_t)(left / NS_PER_MS) : 1;
	}
	mb_proto_encode_request(&h, wire);
	zmq_msg_init(&m);
	if (zmq_msg_copy(&m, &en->payload) != 0) {
		zmq_msg_close(&m);
		return -ENOMEM;
	}
	if (zmq_send(d->sock, wire, sizeof(wire), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return -zmq_errno();
	}
	if (zmq_msg_send(&m, d->sock, 0) < 0) { /* cannot fail after the first frame went */
		zmq_msg_close(&m);
		return -zmq_errno();
	}
	if (en->n_tried < MAX_ATTEMPTS && !tried(en, slot, d->gen))
		en->tried[en->n_tried++] = (struct attempt){(uint8_t)slot, d->gen};
	en->daemon = slot;
	en->sent_at = now;
	d->in_flight++;
	d->sent++;
	if (d->last_rx == 0 || d->in_flight == 1)
		d->last_rx = now; /* silence is counted from the first request it holds */
	return 0;
}

/* Whether @p model is one of the @p n in @p held. */
static bool
model_in(const char (*held)[MB_PROTO_MODEL_LEN + 1], int n, const char *model)
{
	for (int i = 0; i < n; i++)
		if (strcmp(held[i], model) == 0)
			return true;
	return false;
}

/*
 * Send what waits, in order, while some daemon has credit. A request of a model that the
 * daemons with credit are cooling down for waits without holding up those of other models.
 */
static void
dispatch(struct mb_fleet *f, uint64_t now)
{
	char held[4][MB_PROTO_MODEL_LEN + 1]; /* models that cannot go this time */
	int ent = f->wait_head, prev = -1, n_held = 0;

	while (ent >= 0) {
		int next = f->e[ent].next, slot = -1;
		bool model_held = false;

		if (f->e[ent].n_tried > 0 || !model_in(held, n_held, f->e[ent].hdr.model))
			slot = pick(f, &f->e[ent], now, &model_held);
		else
			model_held = true; /* as the one before of its model */
		if (slot < 0) {
			if (f->e[ent].n_tried == 0 && !model_held)
				return; /* no daemon has credit: the rest wait too */
			if (f->e[ent].n_tried == 0 && n_held < 4 &&
			    !model_in(held, n_held, f->e[ent].hdr.model))
				snprintf(held[n_held++], sizeof(held[0]), "%s",
					 f->e[ent].hdr.model);
			/* none for this one; the next may go where this one has been, or be of
			 * another model */
			prev = ent;
			ent = next;
			continue;
		}
		/* unlink, then send; on failure put it back where it was */
		if (prev >= 0)
			f->e[prev].next = next;
		else
			f->wait_head = next;
		if (f->wait_tail == ent)
			f->wait_tail = prev;
		f->n_waiting--;
		if (send_to(f, ent, slot, now) < 0) {
			/* its pipe is full or not attached yet: skip it for a tick, not for good
			 * (only the monitor's events say up or down) */
			f->d[slot].cooldown_until = now + TICK_NS;
			f->e[ent].next = next;
			if (prev >= 0)
				f->e[prev].next = ent;
			else
				f->wait_head = ent;
			if (f->wait_tail == prev)
				f->wait_tail = ent;
			f->n_waiting++;
			prev = ent;
		}
		ent = next;
	}
}

/* ---- names ---- */

/* what a host name or IPv4 address is made of ("*": every address, as ZeroMQ says) */
#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*"
/* an IPv6 address in brackets, with a zone ("fe80::1%eth0") */
#define V6_CHARS "0123456789abcdefABCDEF:.%" HOST_CHARS

/* @p n bytes of @p src into @p dst as a string; false if they do not fit. */
static bool
copy_part(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return false;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return true;
}

/* Another transport's item, "SCHEME://ADDRESS": a scheme of letters, digits, '+', '-', '.'. */
static bool
scheme_item(const char *item)
{
	size_t n =
		strspn(item, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");

	return n > 0 && strncmp(item + n, "://", 3) == 0 && item[n + 3] != '\0';
}

int
mb_fleet_parse_endpoints(const char *list, struct mb_fleet_source *src, int *n_src, bool *resolving,
			 char *err, size_t err_len)
{
	const char *p = list;

	if (p[strspn(p, " \t")] == '\0') {
		snprintf(err, err_len, "no endpoint: give %s", MB_ENDPOINT_FORMS);
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ','), *hp, *colon;
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct mb_fleet_source *s;
		long port;

		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		/* a leading, trailing or double comma: an empty item, not one to skip */
		if (n == 0 || n >= sizeof(src[0].raw)) {
			snprintf(err, err_len, "endpoint list '%s': %s", list,
				 n == 0 ? "an empty item (a leading, trailing or double comma)"
					: "an item over 127 characters");
			return -EINVAL;
		}
		if (*n_src == MB_FLEET_MAX_SOURCES) {
			snprintf(err, err_len, "endpoint list '%s': more than %d items", list,
				 MB_FLEET_MAX_SOURCES);
			return -EINVAL;
		}
		s = &src[(*n_src)++];
		memcpy(s->raw, p, n);
		s->raw[n] = '\0';
		if (strncmp(s->raw, "tcp://", 6) != 0) {
			/* ipc://, inproc://, another transport: as given, for zmq_connect() to
			 * judge when the caller connects it ("garbage", "tcp:/h:p" are not) */
			if (!scheme_item(s->raw))
				goto bad;
			s->literal = true;
		} else {
			hp = s->raw + 6;
			if (*hp == '[') {
				const char *rb = strchr(hp, ']');

				if (rb == NULL || rb[1] != ':')
					goto bad;
				if (!copy_part(s->host, sizeof(s->host), hp + 1,
					       (size_t)(rb - hp - 1)) ||
				    s->host[0] == '\0' ||
				    strspn(s->host, V6_CHARS) != strlen(s->host))
					goto bad;
				colon = rb + 1;
			} else {
				colon = strrchr(hp, ':');
				if (colon == NULL || colon == hp)
					goto bad;
				if (!copy_part(s->host, sizeof(s->host), hp,
					       (size_t)(colon - hp)) ||
				    strspn(s->host, HOST_CHARS) != strlen(s->host))
					goto bad; /* an IPv6 address goes in brackets */
			}
			if (!copy_part(s->port, sizeof(s->port), colon + 1, strlen(colon + 1)))
				goto bad;
			/* 1..65535: ZeroMQ itself takes "99999" (and connects elsewhere) and 0 */
			port = strtol(s->port, NULL, 10);
			if (s->port[0] == '\0' || strlen(s->port) > 5 ||
			    strspn(s->port, "0123456789") != strlen(s->port) || port < 1 ||
			    port > 65535)
				goto bad;
			snprintf(s->scheme, sizeof(s->scheme), "tcp://");
			{
				unsigned char buf[16];

				s->literal = inet_pton(AF_INET, s->host, buf) == 1 ||
					     inet_pton(AF_INET6, s->host, buf) == 1 ||
					     strcmp(s->host, "*") == 0;
			}
			if (!s->literal)
				*resolving = true;
		}
		p += n;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		p++; /* the comma: another item follows, even if empty */
		continue;
	bad:
		snprintf(err, err_len, "endpoint '%s': not %s", s->raw, MB_ENDPOINT_FORMS);
		return -EINVAL;
	}
}

void
mb_client_connect_error(char *err, size_t err_len, const char *item, int e)
{
	snprintf(err, err_len, "endpoint '%s': cannot connect (%s); accepted: %s", item,
		 zmq_strerror(e), MB_ENDPOINT_FORMS);
}

/* A daemon for @p endpoint, a new one or the one it is already: 0, or daemon_open()'s error. */
static int
add_address(struct mb_fleet *f, int source, const char *endpoint)
{
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (f->d[i].used && strcmp(f->d[i].endpoint, endpoint) == 0) {
			f->d[i].seen = true;
			if (f->d[i].gone) /* back again */
				f->d[i].gone = false;
			return 0;
		}
	int slot = daemon_open(f, source, endpoint);

	if (slot < 0)
		return slot;
	f->d[slot].seen = true;
	return 0;
}

int
mb_fleet_source_addresses(const struct mb_fleet_source *src, char (*eps)[128], int max, char *err,
			  size_t err_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc, n = 0;

	if (src->literal) {
		snprintf(eps[0], 128, "%s", src->raw);
		return 1;
	}
	rc = getaddrinfo(src->host, src->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_len, "'%s' does not resolve (%s)", src->host, gai_strerror(rc));
		return -ENOENT;
	}
	for (struct addrinfo *a = res; a != NULL && n < max; a = a->ai_next) {
		char host[INET6_ADDRSTRLEN];
		bool dup = false;

		if (a->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr,
				  host, sizeof(host));
		else if (a->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr,
				  host, sizeof(host));
		else
			continue;
		snprintf(eps[n], 128, a->ai_family == AF_INET6 ? "tcp://[%s]:%s" : "tcp://%s:%s",
			 host, src->port);
		for (int i = 0; i < n && !dup; i++)
			dup = strcmp(eps[i], eps[n]) == 0;
		n += !dup;
	}
	freeaddrinfo(res);
	return n;
}

/*
 * Resolve every name again: new addresses become daemons, vanished ones go. Returns 0, or
 * the first error connecting a literal item (an address, ipc://...), with the item in @p
 * err: at open that refuses the list (a literal is connected then or never); a name's
 * addresses that cannot be connected are tried again at the next resolution.
 */
static int
resolve(struct mb_fleet *f, char *err, size_t err_len)
{
	int rc = 0;

	for (int i = 0; i < MAX_DAEMONS; i++)
		f->d[i].seen = false;
	for (int s = 0; s < f->n_src; s++) {
		char eps[MAX_DAEMONS][128];
		int n = mb_fleet_source_addresses(&f->src[s], eps, MAX_DAEMONS, f->resolve_err,
						  sizeof(f->resolve_err));

		if (n < 0) {
			f->resolve_failures++;
			/* keep what it resolved to before: a DNS hiccup is not a fleet gone */
			for (int i = 0; i < MAX_DAEMONS; i++)
				if (f->d[i].used && f->d[i].source == s)
					f->d[i].seen = true;
			continue;
		}
		for (int i = 0; i < n; i++) {
			int e = add_address(f, s, eps[i]);

			if (e < 0 && f->src[s].literal && rc == 0) {
				rc = e;
				if (e == -ENOSPC)
					snprintf(err, err_len,
						 "endpoint '%s': more than %d daemons in the fleet",
						 f->src[s].raw, MAX_DAEMONS);
				else
					mb_client_connect_error(err, err_len, f->src[s].raw, -e);
			}
		}
	}
	for (int i = 0; i < MAX_DAEMONS; i++) {
		struct daemon *d = &f->d[i];

		if (!d->used || d->seen)
			continue;
		d->gone = true;
		if (d->in_flight == 0)
			daemon_close(d);
	}
	return rc;
}

/* ---- events ---- */

/* Read daemon @p slot's monitor events; returns whether one was a failed handshake. */
static bool
monitor_events(struct mb_fleet *f, int slot)
{
	struct daemon *d = &f->d[slot];
	bool failed = false;

	for (;;) {
		zmq_msg_t m;
		uint16_t event = 0;
		uint32_t value = 0;
		int more;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, d->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return failed;
		}
		if (zmq_msg_size(&m) >= 2)
			memcpy(&event, zmq_msg_data(&m), 2);
		if (zmq_msg_size(&m) >= 6)
			memcpy(&value, (const char *)zmq_msg_data(&m) + 2, 4);
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, d->mon, 0) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			d->up = d->ever_up = true;
			d->refused = false;
			d->refusal = MB_CLIENT_REFUSED_NONE;
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			d->up = false;
			fail_over(f, slot);
		} else { /* a failed handshake: the key is refused, or no CURVE there */
			d->up = false;
			d->refused = true;
			d->refusal = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
					     ? MB_CLIENT_REFUSED_KEY
				     : event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
					     ? MB_CLIENT_REFUSED_MECHANISM
					     : MB_CLIENT_REFUSED_OTHER;
			d->zap_status = value;
			failed = true;
			fail_over(f, slot);
		}
	}
}

/*
 * Why daemon @p d's last handshake failed, into @p buf: the Python client's texts
 * (clients/python/src/mediabatch/_link.py, LinkState); "" when it did not.
 */
static void
refusal_text(const struct daemon *d, char *buf, size_t len)
{
	switch (d->refusal) {
	case MB_CLIENT_REFUSED_KEY:
		snprintf(buf, len,
			 "the CURVE handshake with %s failed: the service does not accept this "
			 "client's key (ZAP status %u)",
			 d->endpoint, d->zap_status);
		break;
	case MB_CLIENT_REFUSED_MECHANISM:
		snprintf(buf, len,
			 "the handshake with %s failed: one side uses CURVE and the other does not "
			 "(check server_key and the service's security.mode)",
			 d->endpoint);
		break;
	case MB_CLIENT_REFUSED_OTHER:
		snprintf(buf, len, "the handshake with %s failed", d->endpoint);
		break;
	default:
		buf[0] = '\0';
	}
}

/*
 * Every daemon but @p slot that had @p en may still be working on it (a later one, or an
 * earlier one failed over for its silence): a cancel each, so that it stops; one that does
 * not hold it ignores the cancel (protocol.md).
 */
static void
cancel_others(struct mb_fleet *f, const struct entry *en, int slot)
{
	for (int i = 0; i < en->n_tried; i++) {
		const struct attempt *a = &en->tried[i];
		struct daemon *o = &f->d[a->slot];

		if (a->slot != slot && o->used && o->gen == a->gen && o->up && !o->gone)
			send_cancel(o, &en->hdr);
	}
}

static void
on_answer(struct mb_fleet *f, int slot, struct mb_client_response *r, uint64_t now)
{
	struct daemon *d = &f->d[slot];
	int ent = index_find(f, r->hdr.tenant_id, r->hdr.request_id);
	struct entry *en;
	bool retry = false;

	d->last_rx = now;
	d->answered++;
	if (ent < 0 || !tried(&f->e[ent], slot, d->gen) ||
	    (r->hdr.flags & MB_RESP_FLAG_DUPLICATE)) {
		f->dups++; /* a late answer of a request answered already, or failed over */
		mb_client_response_free(r);
		return;
	}
	en = &f->e[ent];
	if (en->daemon == slot) {
		double ms = (double)(now - en->sent_at) / 1e6;

		d->in_flight--;
		d->lat_ms = d->lat_ms > 0 ? d->lat_ms * 0.875 + ms * 0.125 : ms;
	}
	switch (r->hdr.status) {
	case MB_STATUS_OK:
		if (++d->ok_run >= (uint32_t)d->window) {
			d->ok_run = 0;
			if (d->window < f->o.max_window)
				d->window += 1;
		}
		break;
	case MB_STATUS_OVERLOADED:
		d->overloaded++;
		d->window = d->window / 2 >= 1 ? d->window / 2 : 1;
		d->ok_run = 0;
		retry = true;
		break;
	case MB_STATUS_UNAVAILABLE:
	case MB_STATUS_UNKNOWN_MODEL:
		/* that model there (disabled, breaker open, not loaded; or the daemon drains, and
		 * its models cool down one by one): the daemon's other models keep flowing */
		model_cool_down(d, en->hdr.model, now);
		retry = true;
		break;
	default:
		break;
	}
	if (retry && en->daemon != slot) {
		/* an earlier attempt's refusal: the request is elsewhere now, or waits for it */
		mb_client_response_free(r);
		return;
	}
	if (retry && someone_else(f, en, now)) {
		if (r->hdr.status != MB_STATUS_OVERLOADED)
			d->failed_over++;
		f->resent++;
		mb_client_response_free(r);
		wait_push(f, ent);
		return;
	}
	if (en->daemon >= 0 && en->daemon != slot)
		/* answered by an earlier daemon while a later one has it: that one's is dropped */
		f->d[en->daemon].in_flight--;
	else if (en->daemon < 0)
		wait_remove(f, ent); /* it was waiting for another try */
	cancel_others(f, en, slot);
	en->daemon = -1;
	entry_free(f, ent);
	if (ready_push(f, r) < 0)
		mb_client_response_free(r);
}

/*
 * A malformed answer from daemon @p slot, @p why (mb_client_parse_response()): counted, and
 * when its header @p h decoded and names a request that daemon holds, that daemon has failed
 * the request, as with UNAVAILABLE: the request goes to a daemon that has not had it, or,
 * with none left, the caller gets UNAVAILABLE with a reason that names the daemon and what
 * was wrong (the other daemons that had it are sent a cancel). An answer whose header does
 * not decode names no request: the one it was meant for stays where it is, and the daemon's
 * silence fails it over (failover_ms) or its deadline answers it TIMEOUT. Either way the
 * caller gets exactly one answer.
 */
static void
on_malformed(struct mb_fleet *f, int slot, const struct mb_response_hdr *h, const char *why,
	     uint64_t now)
{
	struct daemon *d = &f->d[slot];
	char reason[400];
	struct entry *en;
	int ent;

	f->malformed++;
	if (h->version == 0) /* not even the header decoded */
		return;
	ent = index_find(f, h->tenant_id, h->request_id);
	if (ent < 0 || !tried(&f->e[ent], slot, d->gen) || (h->flags & MB_RESP_FLAG_DUPLICATE))
		return; /* none of the requests it holds: nothing to fail */
	en = &f->e[ent];
	/* an earlier attempt's: the request is elsewhere now, or waits */
	if (en->daemon != slot)
		return;
	d->last_rx = now; /* it answers, if badly: not silent */
	d->cooldown_until = now + COOLDOWN_NS;
	if (someone_else(f, en, now)) {
		d->in_flight--;
		d->failed_over++;
		f->resent++;
		wait_push(f, ent);
		return;
	}
	snprintf(reason, sizeof(reason),
		 "client: malformed answer from %s: %s (%u daemon(s) tried)", d->endpoint, why,
		 en->n_tried);
	cancel_others(f, en, slot);
	answer_locally(f, ent, MB_STATUS_UNAVAILABLE, reason);
}

static void
read_answers(struct mb_fleet *f, int slot, uint64_t now)
{
	struct daemon *d = &f->d[slot];

	for (int burst = 0; burst < 256; burst++) {
		zmq_msg_t fr[2];
		struct mb_client_response r;
		char why[160];
		int n = mb_client_recv_msg(d->sock, fr, 2, ZMQ_DONTWAIT), rc;

		if (n < 0)
			return; /* nothing more waiting */
		rc = mb_client_parse_response(fr, n, &r, why, sizeof(why));
		for (int i = 0; i < n && i < 2; i++)
			zmq_msg_close(&fr[i]);
		if (rc == 0)
			on_answer(f, slot, &r, now);
		else if (rc == -EPROTO)
			on_malformed(f, slot, &r.hdr, why, now);
	}
}

/* Deadlines and silent daemons. */
static void
tick(struct mb_fleet *f, uint64_t now)
{
	uint64_t silent = (uint64_t)f->o.failover_ms * NS_PER_MS;

	for (int i = 0; i < MAX_DAEMONS; i++) {
		struct daemon *d = &f->d[i];

		if (!d->used)
			continue;
		if (d->in_flight > 0 && now - d->last_rx > silent) {
			d->cooldown_until = now + silent; /* it must answer something to get more */
			fail_over(f, i);
		}
		if (d->gone && d->in_flight == 0)
			daemon_close(d);
	}
	for (int i = 0; i < f->cap; i++) {
		char reason[800];
		struct entry *en = &f->e[i];
		uint32_t within;

		if (!en->used || now < en->deadline)
			continue;
		f->client_timeouts++;
		within = en->timeout_ms ? en->timeout_ms : (uint32_t)f->o.request_timeout_ms;
		if (en->daemon >= 0) {
			send_cancel(&f->d[en->daemon], &en->hdr);
			snprintf(reason, sizeof(reason),
				 "client: no answer within %u ms (last sent to %s, %u daemon(s) "
				 "tried)",
				 within, f->d[en->daemon].endpoint, en->n_tried);
		} else if (en->n_tried > 0) { /* failed over, and no other daemon took it */
			snprintf(reason, sizeof(reason),
				 "client: no answer within %u ms (%u daemon(s) tried; waiting for "
				 "another when the deadline came)",
				 within, en->n_tried);
		} else {
			char why[400] = "";
			int up = 0;

			for (int k = 0; k < MAX_DAEMONS; k++) {
				const struct daemon *o = &f->d[k];

				up += o->used && o->up && !o->gone;
				/* the first refused handshake, as the Python client says it */
				if (why[0] == '\0' && o->used && o->refused && !o->gone)
					refusal_text(o, why, sizeof(why));
			}
			snprintf(reason, sizeof(reason),
				 "client: no daemon took it within %u ms (%d of the fleet "
				 "up%s%s%s%s)",
				 within, up, f->resolve_err[0] ? "; " : "", f->resolve_err,
				 why[0] ? "; " : "", why);
		}
		answer_locally(f, i, MB_STATUS_TIMEOUT, reason);
	}
}

static void
service(struct mb_fleet *f, uint64_t now)
{
	if (f->resolving && f->o.resolve_ms > 0 && now >= f->next_resolve) {
		char err[160];

		resolve(f, err, sizeof(err)); /* literals are connected since the open */
		f->next_resolve = now + (uint64_t)f->o.resolve_ms * NS_PER_MS;
	}
	if (now >= f->next_tick) {
		tick(f, now);
		f->next_tick = now + TICK_NS;
	}
	if (f->n_waiting > 0)
		dispatch(f, now);
}

/* ---- the API ---- */

int
mb_fleet_open(const struct mb_client_opts *o, struct mb_fleet **out, char *err, size_t err_len)
{
	struct mb_fleet *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->o = *o;
	if (f->o.resolve_ms == 0)
		f->o.resolve_ms = 5000;
	if (f->o.failover_ms <= 0)
		f->o.failover_ms = 10000;
	if (f->o.max_window <= 0)
		f->o.max_window = 1024;
	if (f->o.window <= 0)
		f->o.window = 16;
	if (f->o.window > f->o.max_window)
		f->o.window = f->o.max_window;
	if (f->o.max_outstanding <= 0)
		f->o.max_outstanding = 4096;
	if (f->o.request_timeout_ms <= 0)
		f->o.request_timeout_ms = 60000;
	f->o.endpoint = NULL;
	f->o.client_id = NULL;
	f->o.curve = (struct mb_client_curve){0};
	if (o->client_id != NULL) {
		size_t n = strlen(o->client_id);

		if (n == 0 || n > 255) {
			snprintf(err, err_len, "client id '%s': 1..255 bytes", o->client_id);
			free(f);
			return -EINVAL;
		}
		memcpy(f->client_id, o->client_id, n + 1);
	}
	if (o->curve.server_key != NULL) {
		void *probe;

		if (o->curve.public_key == NULL || o->curve.secret_key == NULL ||
		    strlen(o->curve.server_key) != 40 || strlen(o->curve.public_key) != 40 ||
		    strlen(o->curve.secret_key) != 40) {
			snprintf(err, err_len,
				 "CURVE: the service's key and the client's own key pair are each "
				 "40 characters of Z85 text (see mb_curve_cert_load())");
			free(f);
			return -EINVAL;
		}
		memcpy(f->server_key, o->curve.server_key, 41);
		memcpy(f->public_key, o->curve.public_key, 41);
		memcpy(f->secret_key, o->curve.secret_key, 41);
		/* the same checks as one daemon's, once, with their messages */
		f->ctx = zmq_ctx_new();
		probe = f->ctx ? zmq_socket(f->ctx, ZMQ_DEALER) : NULL;
		rc = probe ? mb_client_set_curve(probe, &o->curve, err, err_len) : -ENOMEM;
		if (probe)
			zmq_close(probe);
		if (rc < 0) {
			if (f->ctx)
				zmq_ctx_term(f->ctx);
			free(f);
			return rc;
		}
	}
	rc = mb_fleet_parse_endpoints(o->endpoint ? o->endpoint : "", f->src, &f->n_src,
				      &f->resolving, err, err_len);
	if (rc < 0) {
		if (f->ctx)
			zmq_ctx_term(f->ctx);
		free(f);
		return rc;
	}
	if (f->ctx == NULL)
		f->ctx = zmq_ctx_new();
	f->cap = f->o.max_outstanding;
	for (f->index_mask = 1; f->index_mask < (uint32_t)f->cap * 2; f->index_mask <<= 1)
		;
	f->e = calloc((size_t)f->cap, sizeof(*f->e));
	f->order = calloc((size_t)f->cap, sizeof(*f->order));
	f->index = calloc(f->index_mask, sizeof(*f->index));
	f->index_mask--;
	if (f->ctx == NULL || f->e == NULL || f->order == NULL || f->index == NULL) {
		free(f->e);
		free(f->order);
		free(f->index);
		if (f->ctx)
			zmq_ctx_term(f->ctx);
		free(f);
		return -ENOMEM;
	}
	for (int i = 0; i < f->cap; i++)
		f->e[i].next = i + 1 < f->cap ? i + 1 : -1;
	f->free_head = 0;
	f->wait_head = f->wait_tail = -1;
	rc = resolve(f, err, err_len);
	if (rc < 0) {
		mb_fleet_close(&f);
		return rc;
	}
	f->next_resolve = now_ns() + (uint64_t)f->o.resolve_ms * NS_PER_MS;
	*out = f;
	return 0;
}

void
mb_fleet_close(struct mb_fleet **fp)
{
	struct mb_fleet *f = *fp;

	if (f == NULL)
		return;
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (f->d[i].used)
			daemon_close(&f->d[i]);
	for (int i = 0; i < f->cap; i++)
		if (f->e[i].used)
			zmq_msg_close(&f->e[i].payload);
	while (f->ready_n > 0) {
		mb_client_response_free(&f->ready[f->ready_head]);
		f->ready_head = (f->ready_head + 1) % f->ready_cap;
		f->ready_n--;
	}
	zmq_ctx_term(f->ctx);
	free(f->ready);
	free(f->e);
	free(f->order);
	free(f->index);
	free(f);
	*fp = NULL;
}

int
mb_fleet_send(struct mb_fleet *f, const struct mb_request_hdr *hdr, const void *payload, size_t len)
{
	uint64_t now = now_ns();
	struct entry *en;
	int ent;

	if (hdr->payload_len != len || (hdr->flags & MB_FLAG_CANCEL))
		return -EINVAL;
	if (index_find(f, hdr->tenant_id, hdr->request_id) >= 0)
		return -EEXIST; /* in flight already: the daemon would refuse it as a duplicate */
	/* answers not yet taken count too: a caller that only sends cannot grow memory */
	if (f->n_used + f->ready_n >= f->cap)
		return -EAGAIN;
	ent = entry_alloc(f);
	if (ent < 0)
		return -EAGAIN;
	en = &f->e[ent];
	en->hdr = *hdr;
	en->timeout_ms = hdr->timeout_ms;
	en->seq = f->next_seq++;
	en->deadline =
		now +
		(uint64_t)(hdr->timeout_ms ? hdr->timeout_ms : (uint32_t)f->o.request_timeout_ms) *
			NS_PER_MS +
		DEADLINE_GRACE_NS;
	if (zmq_msg_init_size(&en->payload, len) != 0) {
		zmq_msg_init(&en->payload);
		index_put(f, ent);
		entry_free(f, ent);
		return -ENOMEM;
	}
	if (len > 0)
		memcpy(zmq_msg_data(&en->payload), payload, len);
	index_put(f, ent);
	wait_push(f, ent);
	service(f, now);
	return 0;
}

int
mb_fleet_cancel(struct mb_fleet *f, uint32_t tenant, uint64_t request_id)
{
	int ent = index_find(f, tenant, request_id);

	if (ent < 0)
		return -ENOENT;
	if (f->e[ent].daemon < 0) {
		answer_locally(f, ent, MB_STATUS_CANCELLED,
			       "client: cancelled before any daemon had it");
		return 0;
	}
	return send_cancel(&f->d[f->e[ent].daemon], &f->e[ent].hdr);
}

int
mb_fleet_recv(struct mb_fleet *f, struct mb_client_response *out, int timeout_ms)
{
	uint64_t start = now_ns(),
		 until = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * NS_PER_MS;
	zmq_pollitem_t items[2 * MAX_DAEMONS];
	int slot_of[2 * MAX_DAEMONS];

	memset(out, 0, sizeof(*out)); /* safe to free on every return (client.h) */
	for (;;) {
		uint64_t now = now_ns(), wait_ns;
		int n = 0, refused, live;
		bool refusal = false; /* a handshake failed in this round */

		service(f, now);
		if (f->ready_n > 0)
			break;
		for (int i = 0; i < MAX_DAEMONS; i++) {
			if (!f->d[i].used)
				continue;
			items[n] = (zmq_pollitem_t){.socket = f->d[i].sock, .events = ZMQ_POLLIN};
			slot_of[n++] = i;
			items[n] = (zmq_pollitem_t){.socket = f->d[i].mon, .events = ZMQ_POLLIN};
			slot_of[n++] = i;
		}
		wait_ns = until > now ? until - now : 0;
		if (f->n_used > 0 && wait_ns > TICK_NS)
			wait_ns = TICK_NS;
		if (f->resolving && f->o.resolve_ms > 0 && f->next_resolve > now &&
		    wait_ns > f->next_resolve - now)
			wait_ns = f->next_resolve - now;
		if (zmq_poll(items, n, (long)((wait_ns + NS_PER_MS - 1) / NS_PER_MS)) < 0 &&
		    zmq_errno() != EINTR)
			return -zmq_errno();
		now = now_ns();
		for (int k = 0; k < n; k += 2) {
			int slot = slot_of[k];

			if (items[k + 1].revents & ZMQ_POLLIN)
				refusal |= monitor_events(f, slot);
			if ((items[k].revents & ZMQ_POLLIN) && f->d[slot].used)
				read_answers(f, slot, now);
		}
		if (f->ready_n > 0)
			break;
		/* every daemon refused the handshake: -EACCES at the end of the wait, not at its
		 * start (a caller's loop would spin), or, waiting forever, at a refusal */
		refused = live = 0;
		for (int i = 0; i < MAX_DAEMONS; i++)
			if (f->d[i].used && !f->d[i].gone) {
				live++;
				refused += f->d[i].refused;
			}
		if (live > 0 && refused == live && timeout_ms < 0 && refusal)
			return -EACCES;
		if (now >= until) {
			service(f, now);
			if (f->ready_n > 0)
				break;
			return live > 0 && refused == live ? -EACCES : -ETIMEDOUT;
		}
	}
	*out = f->ready[f->ready_head];
	f->ready_head = (f->ready_head + 1) % f->ready_cap;
	f->ready_n--;
	return 0;
}

int
mb_fleet_stats(const struct mb_fleet *f, struct mb_client_fleet_stats *st,
	       struct mb_client_daemon *daemons, int max)
{
	int n = 0;

	for (int i = 0; i < MAX_DAEMONS; i++) {
		const struct daemon *d = &f->d[i];

		if (!d->used)
			continue;
		if (n < max && daemons != NULL) {
			struct mb_client_daemon *o = &daemons[n];

			memset(o, 0, sizeof(*o));
			snprintf(o->endpoint, sizeof(o->endpoint), "%s", d->endpoint);
			o->up = d->up;
			o->gone = d->gone;
			o->refused = d->up ? MB_CLIENT_REFUSED_NONE : d->refusal;
			o->window = d->window;
			o->in_flight = d->in_flight;
			o->sent = d->sent;
			o->answered = d->answered;
			o->overloaded = d->overloaded;
			o->failed_over = d->failed_over;
			o->latency_ms = d->lat_ms;
		}
		n++;
	}
	if (st != NULL) {
		memset(st, 0, sizeof(*st));
		st->daemons = (uint32_t)n;
		st->waiting = (uint32_t)f->n_waiting;
		st->resent = f->resent;
		st->duplicates_dropped = f->dups;
		st->client_timeouts = f->client_timeouts;
		st->resolve_failures = f->resolve_failures;
		st->malformed = f->malformed;
	}
	return n;
}
