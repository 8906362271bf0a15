/*
 * frontdoor.c: the receiving half of the ZeroMQ front door (see mb_frontdoor.h); the sending
 * half, egress, is egress.c (mb_egress.h). Both work on one struct (frontdoor_internal.h),
 * on the front door's thread.
 *
 * State owned by the thread, on this side: the two sockets, the request pool, the in-flight
 * index (an rte_hash keyed by client, tenant and request id, single-threaded), the
 * requests in flight per connection, the payload bytes in flight, and with CURVE the
 * subscriptions in effect per subscriber connection (the book). The loop: receive a
 * burst of requests, let egress send a burst of answers and retry held replies, watch the
 * shutdown tokens, then wait in zmq_poll() on both sockets and the results doorbell.
 */
#include "mb_frontdoor.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <zmq.h>

#include "frontdoor_internal.h"
#include "mb_egress.h"
#include "mb_env.h"

#define MB_LOG_MODULE "frontdoor"
#include "mb_log.h"

#define RECV_BURST 256
/* Connection events and subscriptions are read this often. */
#define SLOW_NS (1 * MB_NS_PER_MS)
/* After a read of the ROUTER that found it empty, the next read waits this long. */
#define RX_BACKOFF_NS (20 * MB_NS_PER_US)

static int64_t
inflight_fn(void *arg)
{
	return mb_frontdoor_inflight(arg);
}

static int64_t
subscriptions_fn(void *arg)
{
	return atomic_load_explicit(&((struct mb_frontdoor *)arg)->subscriptions,
				    memory_order_relaxed);
}

static int64_t
connections_fn(void *arg)
{
	int64_t n = atomic_load_explicit(&((struct mb_frontdoor *)arg)->connections,
					 memory_order_relaxed);

	return n > 0 ? n : 0; /* below 0 only between a reordered pair of events */
}

/* ---- shares: requests in flight per client and per tenant ---- */

static int
share_init(struct share_table *t, uint32_t max_inflight)
{
	uint64_t n = 16;

	while (n < 2ull * max_inflight)
		n *= 2;
	t->slot = calloc(n, sizeof(*t->slot));
	t->mask = n - 1;
	return t->slot != NULL ? 0 : -ENOMEM;
}

static inline uint64_t
share_home(const struct share_table *t, uint64_t key)
{
	return (key * 0x9e3779b97f4a7c15ull >> 17) & t->mask;
}

uint32_t
mb_fd_share_get(const struct share_table *t, uint64_t key)
{
	for (uint64_t i = share_home(t, key);; i = (i + 1) & t->mask) {
		if (t->slot[i].key == key)
			return t->slot[i].n;
		if (t->slot[i].key == 0)
			return 0;
	}
}

void
mb_fd_share_add(struct share_table *t, uint64_t key, int d)
{
	uint64_t i = share_home(t, key);

	while (t->slot[i].key != key && t->slot[i].key != 0)
		i = (i + 1) & t->mask;
	if (t->slot[i].key == 0) { /* new: only an increment can get here */
		if (d <= 0)
			return;
		t->slot[i].key = key;
		t->slot[i].n = 0;
	}
	t->slot[i].n = (uint32_t)((int64_t)t->slot[i].n + d);
	if (t->slot[i].n != 0)
		return;
	/* backward-shift deletion: later keys of the run move up into the hole */
	for (uint64_t hole = i, j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
		uint64_t h;

		if (t->slot[j].key == 0) {
			t->slot[hole].key = 0;
			return;
		}
		h = share_home(t, t->slot[j].key);
		/* j's entry may fill the hole if its home is not within (hole, j] */
		if (((j - h) & t->mask) >= ((j - hole) & t->mask)) {
			t->slot[hole] = t->slot[j];
			hole = j;
		}
	}
}

/* ---- the subscriptions in effect (CURVE) ---- */

/*
 * With CURVE the PUB is an XPUB in manual mode: libzmq hands over every (un)subscription a
 * subscriber sends, even one it sent before, applies only what is set with ZMQ_SUBSCRIBE,
 * to that subscriber alone, and drops it all when the subscriber leaves. The book mirrors
 * what was applied: per subscriber connection (by fd, as libzmq's ZMQ_SRCFD and the PUB's
 * monitor name it) the topics it holds, sorted, and per topic how many connections hold it.
 * mediabatch_pub_subscriptions, the publish gate, is then the number of topics held: the
 * distinct topics in effect, what libzmq itself counts without CURVE. A topic subscribed
 * again, a refused one, an unsubscription of one not held: no change, whatever is sent.
 */

/* The most topics one connection holds, besides one per tenant its key may subscribe to
 * (its "" takes those); past that, its subscriptions are refused. Without a bound a client
 * grows libzmq's trie, and the book, without end ("T/<anything>"); a subscriber of a few
 * tenants and models needs far fewer. */
#define SUB_TOPICS_MAX 256
/* The longest topic a publication has: a tenant (10 digits), '/', a model name. A longer
 * subscription can match nothing, and is refused. */
#define SUB_TOPIC_LEN (10 + 1 + MB_PROTO_MODEL_LEN)

/* A topic, zero past len. Keys compare whole, with memcmp: no padding. 8-aligned for the
 * 8-byte loads of rte_hash_crc(). */
struct sub_key {
	_Alignas(8) char t[31];
	uint8_t len;
};
_Static_assert(sizeof(struct sub_key) == 32 && SUB_TOPIC_LEN < 31, "sub_key has no padding");

struct sub_conn {
	uint64_t client;      /* the client id its subscriptions carried (0: none) */
	struct sub_key *held; /* the topics applied for it, sorted */
	uint32_t n, room;
	bool alive; /* seen open (sub_alive()) since its fd last disconnected */
};

struct sub_book {
	struct sub_conn *conn; /* by fd, grown on demand */
	uint32_t n_conn;
	/* the topics held: open addressing, linear probing, backward-shift deletion, at most
	 * half full (doubled when it would be more) */
	struct sub_ref {
		struct sub_key key;
		uint32_t refs; /* connections that hold it; 0: an empty slot */
	} * slot;
	uint64_t mask;
	uint64_t topics; /* slots in use */
};

enum sub_outcome {
	SUB_DONE,    /* applied, or nothing to do */
	SUB_REFUSED, /* not a topic this client may receive */
	SUB_FULL,    /* the connection holds the most topics it may (sub_topics_max()) */
	SUB_NOMEM,
};

/* The most topics a connection of client @p c holds. */
static inline uint32_t
sub_topics_max(const struct mb_auth_client *c)
{
	return SUB_TOPICS_MAX + (c->subscribe_all ? 0 : c->n_subscribe);
}

static bool grow_fd_table(void **table, uint32_t *n, int cfd, size_t size);
static bool conn_of(int cfd, const char *bound);

/* The book, made on first use when @p make (NULL when it cannot be). */
static struct sub_book *
book_of(struct mb_frontdoor *fd, bool make)
{
	if (fd->subs == NULL && make)
		fd->subs = calloc(1, sizeof(struct sub_book));
	return fd->subs;
}

static void
book_free(struct mb_frontdoor *fd)
{
	struct sub_book *b = book_of(fd, false);

	for (uint32_t i = 0; b != NULL && i < b->n_conn; i++)
		free(b->conn[i].held);
	if (b != NULL) {
		free(b->conn);
		free(b->slot);
	}
	free(b);
	fd->subs = NULL;
}

static inline uint64_t
ref_home(const struct sub_book *b, const struct sub_key *k)
{
	return rte_hash_crc(k->t, k->len, k->len) & b->mask;
}

/* The slot of @p k, or the empty one where it goes. */
static struct sub_ref *
ref_slot(const struct sub_book *b, const struct sub_key *k)
{
	for (uint64_t i = ref_home(b, k);; i = (i + 1) & b->mask)
		if (b->slot[i].refs == 0 || memcmp(&b->slot[i].key, k, sizeof(*k)) == 0)
			return &b->slot[i];
}

/* Room in the table for one topic more. */
static int
ref_reserve(struct sub_book *b)
{
	uint64_t n = b->slot != NULL ? b->mask + 1 : 0, m = n ? 2 * n : 64;
	struct sub_ref *old = b->slot;

	if ((b->topics + 1) * 2 <= n)
		return 0;
	b->slot = calloc(m, sizeof(*b->slot));
	if (b->slot == NULL) {
		b->slot = old;
		return -ENOMEM;
	}
	b->mask = m - 1;
	for (uint64_t i = 0; i < n; i++)
		if (old[i].refs != 0)
			*ref_slot(b, &old[i].key) = old[i];
	free(old);
	return 0;
}

static void
set_gauge(struct mb_frontdoor *fd, const struct sub_book *b)
{
	atomic_store_explicit(&fd->subscriptions, (int64_t)b->topics, memory_order_relaxed);
}

/* One connection more holds @p k (after ref_reserve()). */
static void
ref_get(struct mb_frontdoor *fd, struct sub_book *b, const struct sub_key *k)
{
	struct sub_ref *r = ref_slot(b, k);

	if (r->refs++ != 0)
		return;
	r->key = *k;
	b->topics++;
	set_gauge(fd, b);
}

/* One connection fewer holds @p k; at none, it is no longer in effect. */
static void
ref_put(struct mb_frontdoor *fd, struct sub_book *b, const struct sub_key *k)
{
	struct sub_ref *r = ref_slot(b, k);

	if (r->refs == 0 || --r->refs != 0)
		return;
	b->topics--;
	set_gauge(fd, b);
	/* later keys of the run move up into the hole, as in mb_fd_share_add() */
	for (uint64_t hole = (uint64_t)(r - b->slot), j = (hole + 1) & b->mask;;
	     j = (j + 1) & b->mask) {
		uint64_t h;

		if (b->slot[j].refs == 0) {
			b->slot[hole].refs = 0;
			return;
		}
		h = ref_home(b, &b->slot[j].key);
		if (((j - h) & b->mask) >= ((j - hole) & b->mask)) {
			b->slot[hole] = b->slot[j];
			hole = j;
		}
	}
}

/* Where @p k is or goes in @p c's topics; @p found: whether it is there. */
static unsigned int
held_at(const struct sub_conn *c, const struct sub_key *k, bool *found)
{
	unsigned int lo = 0, hi = c->n;

	*found = false;
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		int r = memcmp(&c->held[mid], k, sizeof(*k));

		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Subscribe (@p on) or unsubscribe connection @p c to @p k, on libzmq's side too: in manual
 * mode it applies ZMQ_(UN)SUBSCRIBE to the subscriber whose message was read last, which
 * is @p c's. libzmq's own (topic, subscriber) pairs form a set: so do @p c's topics, at
 * most @p max.
 */
static enum sub_outcome
sub_apply(struct mb_frontdoor *fd, struct sub_book *b, struct sub_conn *c, const struct sub_key *k,
	  bool on, uint32_t max)
{
	bool held;
	unsigned int at = held_at(c, k, &held);

	if (on == held)
		return SUB_DONE; /* held again, or let go of without being held */
	if (!on) {
		zmq_setsockopt(fd->pub, ZMQ_UNSUBSCRIBE, k->t, k->len);
		memmove(&c->held[at], &c->held[at + 1], (c->n - at - 1) * sizeof(*k));
		c->n--;
		ref_put(fd, b, k);
		return SUB_DONE;
	}
	if (c->n >= max)
		return SUB_FULL;
	if (c->n == c->room) {
		uint32_t m = c->room != 0 ? 2 * c->room : 4;
		void *t = realloc(c->held, m * sizeof(*k));

		if (t == NULL)
			return SUB_NOMEM;
		c->held = t;
		c->room = m;
	}
	if (ref_reserve(b) < 0)
		return SUB_NOMEM;
	if (zmq_setsockopt(fd->pub, ZMQ_SUBSCRIBE, k->t, k->len) != 0)
		return SUB_REFUSED;
	memmove(&c->held[at + 1], &c->held[at], (c->n - at) * sizeof(*k));
	c->held[at] = *k;
	c->n++;
	ref_get(fd, b, k);
	return SUB_DONE;
}

/* The book's entry for the subscriber on @p cfd (grown on demand); NULL when it cannot. */
static struct sub_conn *
sub_conn_of(struct mb_frontdoor *fd, int cfd)
{
	struct sub_book *b = book_of(fd, true);
	void *t;

	if (b == NULL)
		return NULL;
	t = b->conn;
	if (!grow_fd_table(&t, &b->n_conn, cfd, sizeof(*b->conn)))
		return NULL;
	b->conn = t;
	return &b->conn[cfd];
}

/*
 * Whether @p cfd is still a connection of the socket bound at @p bound (tcp: on its port;
 * ipc: a Unix socket) whose peer has not hung up. Asked at a connection's first
 * (un)subscription read, until the answer is yes.
 */
static bool
sub_alive(int cfd, const char *bound)
{
	struct pollfd p = {.fd = cfd, .events = POLLRDHUP};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (poll(&p, 1, 0) < 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0)
		return false;
	if (strncmp(bound, "tcp://", 6) == 0)
		return conn_of(cfd, bound);
	return getsockname(cfd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX;
}

/*
 * The subscriber on @p cfd has left (the PUB's DISCONNECTED): what it held goes, once
 * (libzmq has dropped it on its side). Not at the unsubscriptions libzmq queues for a
 * leaver: those carry no fd or User-Id, and come one per distinct topic it *sent* (a
 * refused one too; "" where the book holds a "T/" per tenant), so they cannot say whose
 * they are, nor what they undo. By fd, it holds when the fd is reused:
 * - no subscription of a later connection on the fd is read before this has run: libzmq
 *   reports the DISCONNECTED before it closes the fd, so before the fd can be accepted
 *   again, and a newcomer's CURVE handshake waits for its ZAP answer, which read_security()
 *   gives just before it reads the PUB's events, in the same call, ahead of
 *   read_subscriptions();
 * - the leaver's last (un)subscriptions may still be queued when this runs: a connection's
 *   first message after this is applied only if sub_alive() finds its fd open and its peer
 *   there, so the leaver's are not. (Were the fd a newcomer's by then, they would count as
 *   the newcomer's until it leaves: more, never fewer.)
 */
static void
sub_drop(struct mb_frontdoor *fd, int cfd)
{
	struct sub_book *b = book_of(fd, false);
	struct sub_conn *c;

	if (b == NULL || cfd < 0 || (uint32_t)cfd >= b->n_conn)
		return;
	c = &b->conn[cfd];
	for (unsigned int i = 0; i < c->n; i++)
		ref_put(fd, b, &c->held[i]);
	free(c->held);
	*c = (struct sub_conn){0};
}

/* ---- cutting connections off (CURVE, after a reload) ---- */

/*
 * Whether @p cfd is a connection of the socket bound at @p bound: "tcp://A:PORT", a TCP
 * connection on that local port; "ipc://PATH", a Unix one accepted on PATH (an accepted Unix
 * socket's name is its listener's; "@NAME", Linux's abstract namespace, a name that starts
 * with a NUL).
 */
static bool
conn_of(int cfd, const char *bound)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const char *colon = strrchr(bound, ':');
	int port;

	if (colon == NULL || getsockname(cfd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (strncmp(bound, "ipc://", 6) == 0) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		const char *path = bound + 6;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
				   ? len - offsetof(struct sockaddr_un, sun_path)
				   : 0;

		if (ss.ss_family != AF_UNIX || n == 0)
			return false;
		if (path[0] == '@') /* abstract: the name's length is all there is */
			return un->sun_path[0] == '\0' && n - 1 == strlen(path + 1) &&
			       memcmp(un->sun_path + 1, path + 1, n - 1) == 0;
		return strnlen(un->sun_path, n) == strlen(path) &&
		       memcmp(un->sun_path, path, strlen(path)) == 0;
	}
	port = atoi(colon + 1);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port) == port;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == port;
	return false;
}

/* Cut connection @p cfd of the socket bound at @p bound: libzmq sees it end and cleans up
 * (its requests' replies, subscriptions) as for any peer that went away. */
static void
cut(struct mb_frontdoor *fd, int cfd, const char *bound, const char *what, const char *why)
{
	if (!conn_of(cfd, bound))
		return; /* the fd was reused for something else meanwhile */
	if (shutdown(cfd, SHUT_RDWR) == 0) {
		count(fd->m_cutoffs);
		MB_LOG(NOTICE, "cut off a %s connection (fd %d): %s", what, cfd, why);
	}
}

/* A doomed requester is cut this long after its last reply was handed to libzmq: time for
 * the I/O thread to write it (a cut drops what libzmq still queues for the connection). */
#define CUT_DELAY_NS (200 * MB_NS_PER_MS)

void
mb_fd_conn_retired(struct mb_frontdoor *fd, int cfd)
{
	if (cfd >= 0 && (uint32_t)cfd < fd->n_client && fd->conn_cut[cfd] == CUT_WAIT &&
	    ((uint32_t)cfd >= fd->n_conn || fd->conn_inflight[cfd] == 0)) {
		fd->conn_cut[cfd] = fd->now + CUT_DELAY_NS;
		fd->cut_pending = true;
	}
}

/* Cut the doomed requesters whose time has come. */
static void
cut_due(struct mb_frontdoor *fd, uint64_t now)
{
	fd->cut_pending = false;
	for (uint32_t i = 0; i < fd->n_client; i++) {
		if (fd->conn_cut[i] == 0 || fd->conn_cut[i] == CUT_WAIT)
			continue;
		if (now < fd->conn_cut[i]) {
			fd->cut_pending = true;
			continue;
		}
		fd->conn_cut[i] = 0;
		fd->conn_client[i] = 0;
		cut(fd, (int)i, fd->bound[0], "requester", "its key left the allow-list");
	}
}

/* Grow a per-fd table of @p size-byte entries to hold @p cfd; false when it cannot. */
static bool
grow_fd_table(void **table, uint32_t *n, int cfd, size_t size)
{
	uint32_t m = *n ? *n : 64;
	uint8_t *t;

	if (cfd < 0 || cfd >= (1 << 20))
		return false;
	if ((uint32_t)cfd < *n)
		return true;
	while (m <= (uint32_t)cfd)
		m *= 2;
	t = realloc(*table, m * size);
	if (t == NULL)
		return false;
	memset(t + *n * size, 0, (m - *n) * size);
	*table = t;
	*n = m;
	return true;
}

static void
remember_client(struct mb_frontdoor *fd, int cfd, uint64_t id)
{
	uint32_t n = fd->n_client;
	void *a = fd->conn_client, *b = fd->conn_cut;

	if (cfd < 0 || (uint32_t)cfd >= n) {
		if (!grow_fd_table(&a, &n, cfd, sizeof(uint64_t)))
			return;
		fd->conn_client = a;
		n = fd->n_client;
		if (!grow_fd_table(&b, &n, cfd, sizeof(uint64_t)))
			return;
		fd->conn_cut = b;
		fd->n_client = n;
	}
	fd->conn_client[cfd] = id;
}

/* Take a posted allow-list: from now on it decides; connections it no longer admits go. */
static void
take_auth(struct mb_frontdoor *fd)
{
	struct sub_book *subs = book_of(fd, false);
	struct mb_auth *n;

	if (atomic_load_explicit(&fd->auth_next, memory_order_relaxed) == NULL)
		return;
	n = atomic_exchange_explicit(&fd->auth_next, NULL, memory_order_acquire);
	if (n == NULL)
		return;
	for (uint32_t i = 0; i < fd->n_client; i++) {
		if (fd->conn_client[i] == 0 || mb_auth_by_id(n, fd->conn_client[i]) != NULL)
			continue;
		fd->conn_cut[i] = CUT_WAIT;
		mb_fd_conn_retired(fd, (int)i); /* soon when nothing is in flight */
	}
	for (uint32_t i = 0; subs != NULL && i < subs->n_conn; i++) {
		uint64_t id = subs->conn[i].client;
		const struct mb_auth_client *was, *now;

		if (id == 0)
			continue;
		was = mb_auth_by_id(fd->auth, id);
		now = mb_auth_by_id(n, id);
		if (now != NULL && was != NULL && mb_auth_same_subscriptions(was, now))
			continue;
		subs->conn[i].client = 0;
		cut(fd, (int)i, fd->bound[1], "subscriber",
		    now == NULL
			    ? "its key left the allow-list"
			    : "the tenants its key may subscribe to changed (it subscribes again "
			      "when it reconnects, vetted against the new list)");
	}
	MB_LOG(NOTICE, "allow-list reloaded: %u client key(s)", mb_auth_count(n));
	mb_auth_destroy(&fd->auth);
	fd->auth = n;
}

void
mb_frontdoor_post_auth(struct mb_frontdoor *fd, struct mb_auth *a)
{
	struct mb_auth *old = atomic_exchange_explicit(&fd->auth_next, a, memory_order_acq_rel);

	mb_auth_destroy(&old); /* posted before and never taken */
}

/* Watch the ROUTER's connections through a ZeroMQ socket monitor (an inproc PAIR). */
static int
open_monitor(struct mb_frontdoor *fd, char *err, size_t err_len)
{
	char ep[64];

	snprintf(ep, sizeof(ep), "inproc://mb-router-monitor-%p", (void *)fd);
	if (zmq_socket_monitor(fd->router, ep,
			       ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
	    (fd->monitor = zmq_socket(fd->o.zmq_ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(fd->monitor, ep) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "cannot monitor the ROUTER's connections: %s",
			 zmq_strerror(e));
		return -e;
	}
	if (fd->auth == NULL)
		return 0;
	snprintf(ep, sizeof(ep), "inproc://mb-pub-monitor-%p", (void *)fd);
	if (zmq_socket_monitor(fd->pub, ep,
			       ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
	    (fd->pub_monitor = zmq_socket(fd->o.zmq_ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(fd->pub_monitor, ep) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "cannot monitor the PUB's connections: %s", zmq_strerror(e));
		return -e;
	}
	return 0;
}

/* CURVE on @p sock as a server, with the ZAP domain the handler answers. */
static int
curve_server(void *sock, const char *secret)
{
	if (set_int(sock, ZMQ_CURVE_SERVER, 1) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 40) != 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "mediabatch", 10) != 0)
		return -zmq_errno();
	return 0;
}

/* ---- creation ---- */

static int
bind_socket(void *sock, const char *what, const char *endpoint, char *bound, char *err,
	    size_t err_len)
{
	size_t len = 256;
	int one = 1;

	/* tcp://[ADDR]:PORT: ZeroMQ binds IPv6 addresses only with ZMQ_IPV6 (else ENODEV). Set
	 * for those alone: a wildcard address keeps listening on IPv4 only, as before. */
	if (strncmp(endpoint, "tcp://[", 7) == 0)
		zmq_setsockopt(sock, ZMQ_IPV6, &one, sizeof(one));
	if (zmq_bind(sock, endpoint) != 0) {
		int e = zmq_errno();

		snprintf(err, err_len, "%s endpoint %s: %s%s", what, endpoint, zmq_strerror(e),
			 e == EADDRINUSE ? " (is another mediabatchd running? choose another port "
					   "with --ingest/--publish)"
					 : "");
		return -e;
	}
	if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
		snprintf(bound, 256, "%s", endpoint);
	return 0;
}

int
mb_frontdoor_create(const struct mb_frontdoor_opts *o, struct mb_frontdoor **out, char *err,
		    size_t err_len)
{
	struct rte_hash_parameters hp = {0};
	struct mb_frontdoor *fd;
	int64_t maxmsg;
	int rc;

	*out = NULL;
	if (o->zmq_ctx == NULL || o->ingest == NULL || o->publish == NULL || o->results == NULL ||
	    o->drain == NULL || o->abort == NULL || o->ops.submit == NULL || o->max_inflight == 0) {
		snprintf(err, err_len, "front door: missing options");
		return -EINVAL;
	}
	fd = calloc(1, sizeof(*fd));
	if (fd == NULL)
		goto oom;
	fd->o = *o;
	fd->auth = o->auth; /* ours from here on, whatever happens */
	fd->o.auth = NULL;
	fd->o.server_secret_key = NULL;
	if (fd->o.drain_quiet_ms == 0)
		fd->o.drain_quiet_ms = 250;
	snprintf(fd->ingest, sizeof(fd->ingest), "%s", o->ingest);
	snprintf(fd->publish, sizeof(fd->publish), "%s", o->publish);
	fd->o.ingest = fd->ingest;
	fd->o.publish = fd->publish;
	if (mb_egress_init(fd) < 0 || share_init(&fd->client_shares, o->max_inflight) < 0 ||
	    share_init(&fd->tenant_shares, o->max_inflight) < 0)
		goto oom;
	if (mb_request_pool_create(o->max_inflight, o->numa_node, &fd->pool) < 0)
		goto oom;
	hp.name = "mb_inflight";
	hp.entries = o->max_inflight < 8 ? 8 : o->max_inflight;
	hp.key_len = sizeof(struct idx_key);
	hp.hash_func = rte_hash_crc;
	hp.socket_id = o->numa_node < 0 ? SOCKET_ID_ANY : o->numa_node;
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	fd->index = rte_hash_create(&hp);
	if (fd->index == NULL)
		goto oom;

	fd->router = zmq_socket(o->zmq_ctx, ZMQ_ROUTER);
	fd->pub = zmq_socket(o->zmq_ctx, ZMQ_XPUB);
	if (fd->router == NULL || fd->pub == NULL) {
		rc = -zmq_errno();
		snprintf(err, err_len, "cannot create ZeroMQ sockets: %s", zmq_strerror(-rc));
		goto fail;
	}
	set_int(fd->router, ZMQ_ROUTER_MANDATORY, 1);
	/* Plaintext: a connection that presents a routing id in use takes it over, and the old
	 * one is treated as closed (note_routing_id()). Without it libzmq ignores the newcomer
	 * for as long as it lives: a client that reconnected under its client_id before the
	 * old connection's close reached the ROUTER lost every request (84 of one run). Not
	 * with CURVE: one listed key could then take another's routing id and its replies. */
	if (fd->auth == NULL)
		set_int(fd->router, ZMQ_ROUTER_HANDOVER, 1);
	set_int(fd->router, ZMQ_SNDHWM, (int)o->router_sndhwm);
	set_int(fd->router, ZMQ_RCVHWM, (int)o->router_rcvhwm);
	set_int(fd->router, ZMQ_LINGER, (int)o->linger_ms);
	/* Past this, libzmq cuts the connection from the frame's length prefix, before it
	 * allocates: one huge frame cannot take the daemon's memory. Payloads between the
	 * maximum and this still get their TOO_LARGE answer. */
	maxmsg = (int64_t)o->max_payload * 2 + 4096;
	if (o->max_payload != 0)
		zmq_setsockopt(fd->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (o->heartbeat_ms != 0) {
		set_int(fd->router, ZMQ_HEARTBEAT_IVL, (int)o->heartbeat_ms);
		set_int(fd->router, ZMQ_HEARTBEAT_TIMEOUT, (int)o->heartbeat_ms * 3);
	}
	set_int(fd->pub, ZMQ_SNDHWM, (int)o->pub_sndhwm);
	set_int(fd->pub, ZMQ_XPUB_NODROP, 1);
	set_int(fd->pub, ZMQ_LINGER, (int)o->linger_ms);
	if (fd->auth != NULL) {
		/* The ZAP handler first: a CURVE socket with no handler bound would admit any
		 * key. Then CURVE on both sockets, and the PUB vets each subscription. */
		if (o->server_secret_key == NULL || strlen(o->server_secret_key) != 40) {
			snprintf(err, err_len,
				 "front door: CURVE without the service's secret key");
			rc = -EINVAL;
			goto fail;
		}
		fd->zap = zmq_socket(o->zmq_ctx, ZMQ_REP);
		if (fd->zap == NULL || set_int(fd->zap, ZMQ_LINGER, 0) != 0 ||
		    zmq_bind(fd->zap, "inproc://zeromq.zap.01") != 0 ||
		    curve_server(fd->router, o->server_secret_key) < 0 ||
		    curve_server(fd->pub, o->server_secret_key) < 0 ||
		    set_int(fd->pub, ZMQ_XPUB_MANUAL, 1) != 0) {
			rc = -zmq_errno();
			snprintf(err, err_len, "cannot set up CURVE: %s%s", zmq_strerror(-rc),
				 rc == -ENOTSUP ? " (this libzmq was built without CURVE)"
				 : rc == -EADDRINUSE
					 ? " (another ZAP handler is bound in this context)"
					 : "");
			goto fail;
		}
	}
	rc = open_monitor(fd, err, err_len);
	if (rc == 0)
		rc = bind_socket(fd->router, "ingest", fd->ingest, fd->bound[0], err, err_len);
	if (rc == 0)
		rc = bind_socket(fd->pub, "publish", fd->publish, fd->bound[1], err, err_len);
	if (rc < 0)
		goto fail;

	if (o->metrics != NULL) {
		char l[64];

		static const char dropped_help[] =
			"ZeroMQ messages dropped without an answer, by why: unaddressable (no "
			"request id could be read), bad_cancel (a refused cancel: a cancel gets "
			"no response of its own).";

		fd->m_unaddressable = mb_metrics_counter(
			o->metrics, "mediabatch_zmq_dropped_total", dropped_help,
			mb_metrics_labels(l, sizeof(l), "reason", "unaddressable", NULL));
		fd->m_bad_cancel = mb_metrics_counter(
			o->metrics, "mediabatch_zmq_dropped_total", dropped_help,
			mb_metrics_labels(l, sizeof(l), "reason", "bad_cancel", NULL));
		fd->m_pub_dropped = mb_metrics_counter(o->metrics, "mediabatch_pub_dropped_total",
						       "Publications sent while a subscriber was "
						       "cut off because its queue was full "
						       "(pub_sndhwm): ZeroMQ sends such a "
						       "subscriber nothing until it has caught up.",
						       NULL);
		fd->m_pub_cutoffs = mb_metrics_counter(
			o->metrics, "mediabatch_pub_cutoffs_total",
			"Times a subscriber was found with a full queue (pub_sndhwm) and cut off.",
			NULL);
		fd->m_client_gone = mb_metrics_counter(
			o->metrics, "mediabatch_reply_dropped_total",
			"Replies that could not be delivered on the ROUTER.",
			mb_metrics_labels(l, sizeof(l), "reason", "client_gone", NULL));
		fd->m_abort_dropped = mb_metrics_counter(
			o->metrics, "mediabatch_reply_dropped_total",
			"Replies that could not be delivered on the ROUTER.",
			mb_metrics_labels(l, sizeof(l), "reason", "unread_at_shutdown", NULL));
		fd->m_refusals_dropped = mb_metrics_counter(
			o->metrics, "mediabatch_reply_dropped_total",
			"Replies that could not be delivered on the ROUTER.",
			mb_metrics_labels(l, sizeof(l), "reason", "refusals_unread", NULL));
		fd->m_disconnect_cancelled = mb_metrics_counter(
			o->metrics, "mediabatch_disconnect_cancelled_total",
			"Requests cancelled before they started because their client's connection "
			"closed.",
			NULL);
		static const char *const refused[6] = {"tenant",	"removed_key",
						       "subscription",	"no_identity",
						       "stray_message", "resubscribe"};
		static const char *const hs[3] = {"accepted", "unknown_key", "bad_request"};

		for (int i = 0; i < 6; i++)
			fd->m_auth_refused[i] = mb_metrics_counter(
				o->metrics, "mediabatch_auth_refused_total",
				"Requests answered UNAUTHORIZED and subscriptions refused (CURVE), "
				"by reason.",
				mb_metrics_labels(l, sizeof(l), "reason", refused[i], NULL));
		for (int i = 0; i < 3; i++)
			fd->m_handshakes[i] = mb_metrics_counter(
				o->metrics, "mediabatch_auth_handshakes_total",
				"CURVE handshakes the ZAP handler answered, by result.",
				mb_metrics_labels(l, sizeof(l), "result", hs[i], NULL));
		fd->m_handshake_failed = mb_metrics_counter(
			o->metrics, "mediabatch_handshake_failed_total",
			"Connections whose ZeroMQ handshake failed (a refused key, a plaintext "
			"peer of a CURVE service, a protocol error).",
			NULL);
		fd->m_cutoffs = mb_metrics_counter(
			o->metrics, "mediabatch_auth_cutoffs_total",
			"Connections cut off at a reload: their key left the allow-list, or (a "
			"subscriber) the tenants its key may subscribe to changed.",
			NULL);
		fd->m_share_refused[0] = mb_metrics_counter(
			o->metrics, "mediabatch_share_refused_total",
			"Requests answered OVERLOADED because their client or tenant had its share "
			"of max_inflight in flight.",
			mb_metrics_labels(l, sizeof(l), "share", "client", NULL));
		fd->m_share_refused[1] = mb_metrics_counter(
			o->metrics, "mediabatch_share_refused_total",
			"Requests answered OVERLOADED because their client or tenant had its share "
			"of max_inflight in flight.",
			mb_metrics_labels(l, sizeof(l), "share", "tenant", NULL));
		mb_metrics_gauge_fn(o->metrics, "mediabatch_inflight",
				    "Requests accepted and not yet answered.", NULL, inflight_fn,
				    fd);
		mb_metrics_gauge_fn(o->metrics, "mediabatch_pub_subscriptions",
				    "Distinct topics subscribed to on the PUB socket.", NULL,
				    subscriptions_fn, fd);
		mb_metrics_gauge_fn(o->metrics, "mediabatch_zmq_connections",
				    "Requester connections open on the ROUTER socket.", NULL,
				    connections_fn, fd);
	}
	*out = fd;
	return 0;
oom:
	snprintf(err, err_len,
		 "front door: out of memory for service.max_inflight %u (its request objects and "
		 "index live in the DPDK heap: raise eal.memory_mb or the hugepages eal.args "
		 "gives, or lower max_inflight)",
		 o->max_inflight);
	rc = -ENOMEM;
fail:
	mb_frontdoor_destroy(&fd);
	return rc;
}

void
mb_frontdoor_destroy(struct mb_frontdoor **fdp)
{
	struct mb_frontdoor *fd;

	if (fdp == NULL || *fdp == NULL)
		return;
	fd = *fdp;
	mb_egress_fini(fd); /* held replies back to the pool, the publication counts let go */
	if (fd->router != NULL && fd->monitor != NULL)
		zmq_socket_monitor(fd->router, NULL, 0);
	if (fd->pub != NULL && fd->pub_monitor != NULL)
		zmq_socket_monitor(fd->pub, NULL, 0);
	if (fd->monitor != NULL)
		zmq_close(fd->monitor);
	if (fd->pub_monitor != NULL)
		zmq_close(fd->pub_monitor);
	if (fd->router != NULL)
		zmq_close(fd->router);
	if (fd->pub != NULL)
		zmq_close(fd->pub);
	if (fd->zap != NULL) /* after the sockets it admits peers to */
		zmq_close(fd->zap);
	mb_auth_destroy(&fd->auth);
	{
		struct mb_auth *next = atomic_exchange(&fd->auth_next, NULL);

		mb_auth_destroy(&next);
	}
	free(fd->client_shares.slot);
	free(fd->tenant_shares.slot);
	free(fd->conn_client);
	free(fd->conn_rid);
	free(fd->conn_cut);
	book_free(fd);
	rte_hash_free(fd->index);
	mb_request_pool_destroy(&fd->pool);
	free(fd->conn_inflight);
	free(fd->conn_open);
	free(fd);
	*fdp = NULL;
}

const char *
mb_frontdoor_endpoint(const struct mb_frontdoor *fd, int which)
{
	return fd->bound[which ? 1 : 0];
}

uint32_t
mb_frontdoor_inflight(const struct mb_frontdoor *fd)
{
	return atomic_load_explicit(&((struct mb_frontdoor *)fd)->inflight, memory_order_relaxed);
}

/* ---- receiving ---- */

/* Count @p req against the connection it came on (its fd), growing the table on demand. */
static void
conn_add(struct mb_frontdoor *fd, struct mb_request *req, int cfd)
{
	void *t = fd->conn_inflight;

	req->conn_fd = -1;
	if (!grow_fd_table(&t, &fd->n_conn, cfd, sizeof(*fd->conn_inflight)))
		return; /* not tracked: a disconnect will not cancel it */
	fd->conn_inflight = t;
	req->conn_fd = cfd;
	req->conn_epoch = fd->epoch;
	fd->conn_inflight[cfd]++;
}

static void
close_payload(struct mb_request *req)
{
	zmq_msg_close((zmq_msg_t *)req->payload_store);
}

static void
handle_cancel(struct mb_frontdoor *fd, const zmq_msg_t *client, const struct mb_request_hdr *h)
{
	struct mb_request probe;
	struct idx_key k;
	void *found = NULL;

	probe.client_len = (uint8_t)zmq_msg_size((zmq_msg_t *)client);
	memcpy(probe.client, zmq_msg_data((zmq_msg_t *)client), probe.client_len);
	probe.hdr.request_id = h->request_id;
	probe.hdr.tenant_id = h->tenant_id;
	k = key_of(&probe);
	if (rte_hash_lookup_data(fd->index, &k, &found) < 0 || found == NULL)
		return; /* unknown or finished: ignored */
	{
		struct mb_request *r = found;

		if (r->client_len != probe.client_len ||
		    memcmp(r->client, probe.client, probe.client_len) != 0)
			return;
		atomic_store_explicit(&r->cancel, true, memory_order_release);
		if (fd->o.ops.cancelled != NULL)
			fd->o.ops.cancelled(fd->o.ops.ctx, r);
	}
}

/*
 * CURVE: may the client of this message (its connection's User-Id, the name the ZAP
 * handler gave its key) send as tenant @p h->tenant_id? Returns its entry, or NULL after
 * answering UNAUTHORIZED.
 */
static const struct mb_auth_client *
authorize(struct mb_frontdoor *fd, zmq_msg_t *parts, const struct mb_request_hdr *h,
	  struct mb_proto_error *err)
{
	const char *user = zmq_msg_gets(&parts[1], "User-Id");
	const struct mb_auth_client *c = mb_auth_by_name(fd->auth, user);
	char reason[MB_PROTO_REASON_MAX], list[64];
	int cfd;

	if (c != NULL && mb_auth_may_send(c, h->tenant_id)) {
		cfd = zmq_msg_get(&parts[1], ZMQ_SRCFD);
		if (cfd >= 0 && ((uint32_t)cfd >= fd->n_client || fd->conn_client[cfd] != c->id))
			remember_client(fd, cfd, c->id);
		return c;
	}
	if (c == NULL) {
		int which = user != NULL && user[0] != '\0' ? 1 : 3;

		count(fd->m_auth_refused[which]);
		snprintf(reason, sizeof(reason),
			 which == 1 ? "the key of this connection ('%s') is no longer on the "
				      "service's allow-list; this connection will be closed"
				    : "this connection has no authenticated key%s",
			 which == 1 ? user : "");
		/* a removed key's connection goes once its earlier requests are answered */
		cfd = zmq_msg_get(&parts[1], ZMQ_SRCFD);
		if (which == 1 && cfd >= 0) {
			remember_client(fd, cfd, 1);
			if ((uint32_t)cfd < fd->n_client && fd->conn_cut[cfd] == 0) {
				fd->conn_cut[cfd] = CUT_WAIT;
				mb_fd_conn_retired(fd, cfd);
			}
		}
	} else {
		count(fd->m_auth_refused[0]);
		mb_auth_tenants_str(c->tenants, c->n_tenants, list, sizeof(list));
		snprintf(reason, sizeof(reason),
			 "tenant_id: client '%s' may not send as tenant %u (its tenants: %s)",
			 c->name, h->tenant_id, list);
	}
	mb_egress_answer(fd, &parts[0], err, MB_STATUS_UNAUTHORIZED, reason);
	return NULL;
}

/* Whether the client (@p key) and the tenant of @p h may have one more request in flight;
 * if not, the request is answered OVERLOADED. */
static bool
within_shares(struct mb_frontdoor *fd, zmq_msg_t *parts, const struct mb_request_hdr *h,
	      const struct mb_auth_client *c, uint64_t key, struct mb_proto_error *err)
{
	uint32_t limit =
		c != NULL && c->max_inflight != 0 ? c->max_inflight : fd->o.max_inflight_per_client;
	char reason[MB_PROTO_REASON_MAX];
	uint32_t n;

	/* a share as large as the whole is no share: max_inflight answers for itself */
	if (limit != 0 && limit < fd->o.max_inflight &&
	    (n = mb_fd_share_get(&fd->client_shares, key)) >= limit) {
		count(fd->m_share_refused[0]);
		snprintf(reason, sizeof(reason),
			 "%s%s%s has %u requests in flight, its share (%s); retry once answers "
			 "come back",
			 c != NULL ? "client '" : "this client", c != NULL ? c->name : "",
			 c != NULL ? "'" : "", n,
			 c != NULL && c->max_inflight != 0 ? "its max_inflight"
							   : "max_inflight_per_client");
		mb_egress_answer(fd, &parts[0], err, MB_STATUS_OVERLOADED, reason);
		return false;
	}
	if (fd->o.max_inflight_per_tenant != 0 &&
	    fd->o.max_inflight_per_tenant < fd->o.max_inflight &&
	    (n = mb_fd_share_get(&fd->tenant_shares, (uint64_t)h->tenant_id + 1)) >=
		    fd->o.max_inflight_per_tenant) {
		count(fd->m_share_refused[1]);
		snprintf(reason, sizeof(reason),
			 "tenant %u has %u requests in flight, its share "
			 "(max_inflight_per_tenant); retry once answers come back",
			 h->tenant_id, n);
		mb_egress_answer(fd, &parts[0], err, MB_STATUS_OVERLOADED, reason);
		return false;
	}
	return true;
}

/*
 * A cancel (flag bit 0) that is refused gets no answer either: a cancel has no response of
 * its own (protocol.md), and an answer would carry the id of the request it names, where a
 * client matching by id would take it for that request's answer. Dropped and counted.
 */
static bool
bad_cancel(struct mb_frontdoor *fd, zmq_msg_t *hdr)
{
	const uint8_t *b = zmq_msg_data(hdr);
	size_t len = zmq_msg_size(hdr);

	if (len < 8 || !mb_proto_peek_is_request(b, len) ||
	    !(mb_proto_peek_flags(b) & MB_FLAG_CANCEL))
		return false;
	count(fd->m_bad_cancel);
	return true;
}

static void note_routing_id(struct mb_frontdoor *fd, uint64_t rid, int cfd);

static void
handle(struct mb_frontdoor *fd, zmq_msg_t *parts, int n, int extra)
{
	const struct mb_auth_client *client = NULL;
	struct mb_request_hdr h;
	struct mb_proto_error err;
	struct mb_request *req;
	char reason[MB_PROTO_REASON_MAX];
	size_t payload_size;
	enum mb_status st;
	uint64_t share_key, rid;
	struct idx_key k;
	int frames = n - 1 + extra, cfd;

	if (n < 2) { /* identity only: nothing to read an id from */
		count(fd->m_unaddressable);
		return;
	}
	if (zmq_msg_size(&parts[0]) > MB_CLIENT_ID_MAX) {
		count(fd->m_unaddressable);
		return;
	}
	if (mb_proto_decode_request(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
				    MB_TRANSPORT_ZMQ, fd->o.max_payload, &h, &err) < 0) {
		if (!err.has_id) {
			count(fd->m_unaddressable);
			return;
		}
		if (bad_cancel(fd, &parts[1]))
			return;
		mb_egress_answer(fd, &parts[0], &err, err.status, err.reason);
		return;
	}
	/* the routing id's hash and the connection, once per message: the index key, the
	 * client's share (plaintext) and the handover check all use them */
	rid = mb_request_client_hash(zmq_msg_data(&parts[0]), (uint8_t)zmq_msg_size(&parts[0]));
	cfd = zmq_msg_get(&parts[1], ZMQ_SRCFD);
	note_routing_id(fd, rid, cfd);
	if (frames != 2) {
		if (bad_cancel(fd, &parts[1]))
			return;
		snprintf(reason, sizeof(reason),
			 "message: %d frame%s; a request is 2 frames (the 64-byte header, then the "
			 "payload, empty for a cancel)",
			 frames, frames == 1 ? "" : "s");
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	payload_size = zmq_msg_size(&parts[2]);
	if (payload_size != h.payload_len) {
		if (bad_cancel(fd, &parts[1]))
			return;
		snprintf(reason, sizeof(reason),
			 "payload: the second frame has %zu bytes, but payload_len says %" PRIu32,
			 payload_size, h.payload_len);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST, reason);
		return;
	}
	if (h.flags & MB_FLAG_CANCEL) { /* only ever the sender's own requests */
		handle_cancel(fd, &parts[0], &h);
		return;
	}
	if (fd->auth != NULL && (client = authorize(fd, parts, &h, &err)) == NULL)
		return;
	/* A duplicate first, whatever else would refuse it (the drain, a limit, a share): its
	 * answer must carry the DUPLICATE flag, or a client takes it for the earlier request's
	 * (and may send that again elsewhere: OVERLOADED and UNAVAILABLE mean "did not run"). */
	k = (struct idx_key){.client_hash = rid, .request_id = h.request_id, .tenant = h.tenant_id};
	{
		void *other = NULL;

		if (rte_hash_lookup_data(fd->index, &k, &other) >= 0 && other != NULL &&
		    ((struct mb_request *)other)->client_gone) {
			/* the earlier one's connection closed: this is a new connection under the
			 * same routing id (a client that reconnected with its client_id), not a
			 * duplicate. The earlier one, answered to no one, leaves the index. */
			rte_hash_del_key(fd->index, &k);
			((struct mb_request *)other)->indexed = false;
		} else if (other != NULL) {
			snprintf(reason, sizeof(reason),
				 "request_id: %" PRIu64 " is already in flight for this client and "
				 "tenant %" PRIu32 "; this refuses the duplicate only (flag "
				 "DUPLICATE), the earlier request gets its own answer",
				 h.request_id, h.tenant_id);
			mb_egress_answer_flags(fd, &parts[0], &err, MB_STATUS_BAD_REQUEST,
					       MB_RESP_FLAG_DUPLICATE, reason);
			return;
		}
	}
	if (fd->ingest_closed) {
		fd->drain_refused++;
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_UNAVAILABLE,
				 "the service is shutting down; it accepts no new work");
		return;
	}
	if (fd->inflight_bytes + h.payload_len > fd->o.max_inflight_bytes) {
		snprintf(reason, sizeof(reason),
			 "%" PRIu64 " payload bytes are in flight, the limit is %" PRIu64
			 " (max_inflight_bytes); retry later",
			 fd->inflight_bytes, fd->o.max_inflight_bytes);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
		return;
	}
	share_key = client != NULL ? client->id : rid | 1;
	if (!within_shares(fd, parts, &h, client, share_key, &err))
		return;
	req = mb_request_get(fd->pool);
	if (req == NULL) {
		snprintf(reason, sizeof(reason),
			 "%u requests are in flight, the limit (max_inflight); retry later",
			 fd->o.max_inflight);
		mb_egress_answer(fd, &parts[0], &err, MB_STATUS_OVERLOADED, reason);
		return;
	}
	atomic_store_explicit(&fd->inflight, mb_request_pool_in_use(fd->pool) - fd->n_parked,
			      memory_order_relaxed);
	req->hdr = h;
	req->transport = MB_TRANSPORT_ZMQ;
	conn_add(fd, req, cfd);
	req->client_len = (uint8_t)zmq_msg_size(&parts[0]);
	memcpy(req->client, zmq_msg_data(&parts[0]), req->client_len);
	zmq_msg_init((zmq_msg_t *)req->payload_store);
	zmq_msg_move((zmq_msg_t *)req->payload_store, &parts[2]);
	req->payload = zmq_msg_data((zmq_msg_t *)req->payload_store);
	req->payload_len = h.payload_len;
	req->payload_free = close_payload;
	req->arrival_ns = fd->now;
	fd->inflight_bytes += req->payload_len;
	req->share_key = share_key;
	mb_fd_share_add(&fd->client_shares, share_key, 1);
	mb_fd_share_add(&fd->tenant_shares, (uint64_t)h.tenant_id + 1, 1);

	req->indexed = rte_hash_add_key_data(fd->index, &k, req) == 0; /* looked up above */
	reason[0] = '\0';
	st = fd->o.ops.submit(fd->o.ops.ctx, req, reason, sizeof(reason));
	if (st == MB_STATUS_OK)
		return;
	mb_request_answer(req, st, "%s", reason);
	mb_egress_finish(fd, req);
}

/* Up to RECV_BURST messages from the ROUTER, each handled; returns how many (RECV_BURST:
 * more may be waiting). */
static unsigned int
receive(struct mb_frontdoor *fd)
{
	for (int budget = RECV_BURST; budget > 0; budget--) {
		zmq_msg_t parts[3];
		int n = 0, extra = 0, more;

		zmq_msg_init(&parts[0]);
		if (zmq_msg_recv(&parts[0], fd->router, ZMQ_DONTWAIT) < 0) {
			int e = zmq_errno();

			zmq_msg_close(&parts[0]);
			if (e != EAGAIN && e != EINTR)
				MB_LOG_ONCE(WARNING, "receive failed: %s", zmq_strerror(e));
			return (unsigned int)(RECV_BURST - budget);
		}
		if (budget == RECV_BURST)
			fd->last_rx_ns = fd->now;
		n = 1;
		more = zmq_msg_more(&parts[0]);
		while (more) { /* the rest of a multipart message is already here */
			zmq_msg_t part;

			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, fd->router, 0) < 0) {
				zmq_msg_close(&part);
				break;
			}
			more = zmq_msg_more(&part);
			if (n < 3) {
				zmq_msg_init(&parts[n]);
				zmq_msg_move(&parts[n++], &part);
			} else {
				extra++;
			}
			zmq_msg_close(&part);
		}
		handle(fd, parts, n, extra);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
	}
	return RECV_BURST;
}

/*
 * Cancel what the client on connection @p cfd left in flight: every request read from that
 * fd that has not started. @p ambiguous: the same fd was accepted again after this
 * disconnect, so requests read in the last epoch may be the new connection's and are kept.
 */
static void
cancel_disconnected(struct mb_frontdoor *fd, int cfd, bool ambiguous)
{
	const void *key;
	void *data;
	uint32_t it = 0;

	if ((uint32_t)cfd >= fd->n_conn || fd->conn_inflight[cfd] == 0)
		return;
	while (rte_hash_iterate(fd->index, &key, &data, &it) >= 0) {
		struct mb_request *r = data;

		if (r->conn_fd != cfd || (ambiguous && r->conn_epoch + 1 >= fd->epoch) ||
		    atomic_load_explicit(&r->cancel, memory_order_relaxed))
			continue;
		r->client_gone = true; /* counted in retire() if it is answered CANCELLED */
		atomic_store_explicit(&r->cancel, true, memory_order_release);
		if (fd->o.ops.cancelled != NULL)
			fd->o.ops.cancelled(fd->o.ops.ctx, r);
	}
}

/*
 * Plaintext (ZMQ_ROUTER_HANDOVER): @p rid, the hash of the routing id of a message read on
 * connection @p cfd. When another open connection carried the same id, libzmq has handed the id
 * over to this one and the other gets no more replies: its requests are treated as those of
 * a closed connection (not started: cancelled; running: answered to no one), so that none
 * of its answers reaches the newcomer. One load per message; a scan of the connections
 * only when one first shows its id.
 */
static void
note_routing_id(struct mb_frontdoor *fd, uint64_t rid, int cfd)
{
	void *t = fd->conn_rid;
	uint64_t h = rid | 1; /* 0: no id seen on the fd */

	if (fd->auth != NULL || !grow_fd_table(&t, &fd->n_rid, cfd, sizeof(uint64_t)))
		return;
	fd->conn_rid = t;
	if (fd->conn_rid[cfd] == h)
		return;
	fd->conn_rid[cfd] = h;
	for (uint32_t i = 0; i < fd->n_rid; i++) {
		if (fd->conn_rid[i] != h || (int)i == cfd)
			continue;
		fd->conn_rid[i] = 0;
		MB_LOG_RATE(NOTICE,
			    "ingest: a connection took over a routing id (client_id) another open "
			    "connection had: the old one gets no more replies, its requests are "
			    "treated as a closed connection's");
		cancel_disconnected(fd, (int)i, false);
	}
}

/* Count connection @p cfd open (+1) or closed (-1), by its fd; grown on demand. Signed:
 * with several I/O threads a DISCONNECTED may be read before its ACCEPTED. */
static void
conn_open_add(struct mb_frontdoor *fd, int32_t cfd, int d)
{
	void *t = fd->conn_open;

	if (!grow_fd_table(&t, &fd->n_open, cfd, sizeof(*fd->conn_open)))
		return; /* not watched: the drain relies on its quiet period alone */
	fd->conn_open = t;
	fd->conn_open[cfd] = (int16_t)(fd->conn_open[cfd] + d);
}

/*
 * Whether a requester's bytes wait in the kernel, unread by ZeroMQ, on a connection the
 * monitor says is open (FIONREAD on its socket). The drain is not quiet while they do: on
 * a starved machine ZeroMQ's I/O thread may not have read them for longer than
 * drain_quiet_ms. Drain only: a system call per connection.
 */
static bool
input_pending(const struct mb_frontdoor *fd)
{
	for (uint32_t i = 0; i < fd->n_open; i++) {
		struct stat st;
		int n = 0;

		if (fd->conn_open[i] <= 0)
			continue;
		if (fstat((int)i, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    ioctl((int)i, FIONREAD, &n) == 0 && n > 0)
			return true;
	}
	return false;
}

/*
 * Monitor events (a 6-byte frame: event id, value; then the endpoint), read in batches so
 * that each disconnect knows whether its fd was accepted again later in the same batch.
 * Called before each read of the ROUTER; each call starts a new epoch.
 */
static void
read_connections(struct mb_frontdoor *fd)
{
	enum { BATCH = 64 };
	uint16_t ev[BATCH];
	int32_t val[BATCH];
	int n;

	fd->epoch++;
	do {
		for (n = 0; n < BATCH; n++) {
			zmq_msg_t m;
			uint8_t b[6] = {0};
			int more;

			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, fd->monitor, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			memcpy(b, zmq_msg_data(&m), zmq_msg_size(&m) < 6 ? zmq_msg_size(&m) : 6);
			memcpy(&ev[n], b, 2);
			memcpy(&val[n], b + 2, 4);
			more = zmq_msg_more(&m);
			while (more) { /* the endpoint frame */
				zmq_msg_close(&m);
				zmq_msg_init(&m);
				if (zmq_msg_recv(&m, fd->monitor, 0) < 0)
					break;
				more = zmq_msg_more(&m);
			}
			zmq_msg_close(&m);
		}
		for (int i = 0; i < n; i++) {
			bool again = false;

			/* Counted signed: with several I/O threads a connection that drops at once
			 * can report DISCONNECTED before ACCEPTED; the pair still cancels out. */
			if (ev[i] == ZMQ_EVENT_ACCEPTED) {
				atomic_fetch_add_explicit(&fd->connections, 1,
							  memory_order_relaxed);
				conn_open_add(fd, val[i], 1);
				continue;
			}
			if (ev[i] == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
			    ev[i] == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
			    ev[i] == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
				/* refused keys are logged by the ZAP handler; a connection closed
				 * mid-handshake (a TCP probe, or a client of the other mechanism
				 * that read our greeting before we read its) is not worth a line */
				if (ev[i] == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
					MB_LOG_RATE(
						WARNING,
						"ingest: a connection's ZeroMQ handshake failed "
						"(protocol error 0x%x): a client of another "
						"security mechanism (a plaintext client of a CURVE "
						"service, or the reverse) or not a ZeroMQ client; "
						"mediabatch_handshake_failed_total counts them all",
						(unsigned int)val[i]);
				count(fd->m_handshake_failed);
				continue;
			}
			if (ev[i] != ZMQ_EVENT_DISCONNECTED)
				continue;
			if (val[i] >= 0 && (uint32_t)val[i] < fd->n_client) {
				fd->conn_client[val[i]] = 0;
				if (val[i] >= 0 && (uint32_t)val[i] < fd->n_rid)
					fd->conn_rid[val[i]] = 0;
				fd->conn_cut[val[i]] = 0;
			}
			atomic_fetch_sub_explicit(&fd->connections, 1, memory_order_relaxed);
			conn_open_add(fd, val[i], -1);
			for (int j = i + 1; j < n && !again; j++)
				again = ev[j] == ZMQ_EVENT_ACCEPTED && val[j] == val[i];
			cancel_disconnected(fd, val[i], again || n == BATCH);
		}
	} while (n == BATCH);
}

/*
 * CURVE: apply (or undo, @p on false) the subscription @p topic of @p len bytes, sent by
 * the subscriber whose message was just read (XPUB manual mode applies it to that one),
 * connection @p sc, for the tenants @p c may receive. "" stands for all of them: "T/" each
 * (or "" for a subscribe_all client). Otherwise the topic must name one tenant whole, "T/"
 * or "T/model": a bare "4" would also match "42/". Of "", the worst of its topics' outcomes.
 */
static enum sub_outcome
vet_subscription(struct mb_frontdoor *fd, struct sub_conn *sc, const struct mb_auth_client *c,
		 const char *topic, size_t len, bool on)
{
	struct sub_book *b = book_of(fd, false);
	struct sub_key k = {.len = (uint8_t)len};
	uint64_t tenant = 0;
	uint32_t max;
	size_t i = 0;

	if (c == NULL || len > SUB_TOPIC_LEN)
		return SUB_REFUSED;
	if (sc == NULL || b == NULL)
		return SUB_NOMEM;
	max = sub_topics_max(c);
	memcpy(k.t, topic, len);
	if (len == 0 || c->subscribe_all) {
		enum sub_outcome worst = SUB_DONE;

		if (c->subscribe_all)
			return sub_apply(fd, b, sc, &k, on, max);
		for (unsigned int n = 0; n < c->n_subscribe; n++) {
			enum sub_outcome o;

			memset(&k, 0, sizeof(k));
			k.len = (uint8_t)snprintf(k.t, sizeof(k.t), "%u/", c->subscribe[n]);
			o = sub_apply(fd, b, sc, &k, on, max);
			worst = o > worst ? o : worst;
		}
		return worst;
	}
	while (i < len && i < 11 && topic[i] >= '0' && topic[i] <= '9')
		tenant = tenant * 10 + (uint64_t)(topic[i++] - '0');
	if (i == 0 || i >= len || topic[i] != '/' || tenant > UINT32_MAX ||
	    (topic[0] == '0' && i > 1) || !mb_auth_may_subscribe(c, (uint32_t)tenant))
		return SUB_REFUSED;
	return sub_apply(fd, b, sc, &k, on, max);
}

/*
 * The first @p max of @p len bytes a client sent, for a log line: printable ASCII as it is,
 * every other byte (a newline, an escape sequence, UTF-8) as \xNN, and "..." when cut; so
 * that a client cannot write lines of its own into a text log (or a journald priority).
 */
static void
printable(char *out, size_t out_len, const uint8_t *s, size_t len, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < max && o + 5 < out_len; i++)
		o += (size_t)snprintf(
			out + o, out_len - o,
			s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' ? "%c" : "\\x%02x", s[i]);
	if (len > max && o + 4 <= out_len)
		o += (size_t)snprintf(out + o, out_len - o, "...");
	out[o < out_len ? o : out_len - 1] = '\0';
}

static void
read_subscriptions(struct mb_frontdoor *fd)
{
	/*
	 * CURVE (XPUB manual mode): libzmq 4.3 queues the subscriber of each subscription it
	 * holds for us, and sets the one our ZMQ_SUBSCRIBE applies to as each message is read;
	 * but a message that is not a subscription (an XSUB peer can send any) is queued
	 * without its subscriber, while reading it takes the next one's. From such a message
	 * on, until the queue is empty (the read that finds nothing), a subscription would be
	 * applied to another subscriber than the one that sent it: that one could receive
	 * tenants it may not, and the sender would miss its own. So the stray message's
	 * connection is cut, and each subscription read after it in the same run is not
	 * applied but its connection cut, so that it subscribes again, in order.
	 */
	bool stray = false;

	for (;;) {
		zmq_msg_t m;
		const uint8_t *d;
		bool sub;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, fd->pub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		d = zmq_msg_data(&m);
		sub = zmq_msg_size(&m) >= 1 && d[0] <= 1; /* as libzmq 4.3 tells them apart */
		/* Plaintext: libzmq passes a topic's first subscription and its last
		 * unsubscription only, over all subscribers; this counts the distinct topics in
		 * effect. With CURVE it passes them all: the book counts those (sub_apply()). */
		if (sub && fd->auth == NULL)
			atomic_fetch_add_explicit(&fd->subscriptions, d[0] == 1 ? 1 : -1,
						  memory_order_relaxed);
		if (fd->auth != NULL && (!sub || stray)) {
			int cfd = zmq_msg_get(&m, ZMQ_SRCFD);

			count(fd->m_auth_refused[sub ? 5 : 4]);
			if (!sub)
				stray = true;
			if (cfd >= 0 && zmq_msg_gets(&m, "User-Id") != NULL) /* not a leaver's */
				cut(fd, cfd, fd->bound[1], "subscriber",
				    sub ? "a subscription read after another subscriber's stray "
					  "message is not applied: it subscribes again when it "
					  "reconnects"
					: "it sent a message that is not a subscription");
			zmq_msg_close(&m);
			continue;
		}
		if (fd->auth != NULL && sub) {
			const char *user = zmq_msg_gets(&m, "User-Id");
			const struct mb_auth_client *c = mb_auth_by_name(fd->auth, user);
			int cfd = zmq_msg_get(&m, ZMQ_SRCFD);
			struct sub_conn *sc;
			enum sub_outcome o;
			char shown[4 * 40 + 4];

			/* unsubscriptions of a subscriber that left come without a User-Id or fd:
			 * libzmq has already dropped what it had, the book at its DISCONNECTED */
			if (user == NULL && cfd < 0) {
				zmq_msg_close(&m);
				continue;
			}
			sc = sub_conn_of(fd, cfd);
			if (sc != NULL && !sc->alive)
				sc->alive = sub_alive(cfd, fd->bound[1]);
			if (sc != NULL && !sc->alive) { /* a leaver's, read after it left */
				zmq_msg_close(&m);
				continue;
			}
			if (sc != NULL && c != NULL)
				sc->client = c->id;
			o = vet_subscription(fd, sc, c, (const char *)d + 1, zmq_msg_size(&m) - 1,
					     d[0] == 1);
			if (o == SUB_DONE ||
			    d[0] == 0) { /* unsubscriptions are not counted refused */
				zmq_msg_close(&m);
				continue;
			}
			printable(shown, sizeof(shown), d + 1, zmq_msg_size(&m) - 1, 40);
			if (o == SUB_NOMEM) {
				MB_LOG_RATE(WARNING,
					    "subscription to '%s' not applied: out of memory for "
					    "its connection's topics",
					    shown);
			} else if (o == SUB_FULL) {
				count(fd->m_auth_refused[2]);
				MB_LOG_RATE(
					NOTICE,
					"subscription to '%s' refused: this connection holds %u "
					"topics, the most one of client '%s' may (%d, and one per "
					"tenant it may subscribe to); a topic it holds already, or "
					"one after it lets another go, is not refused",
					shown, sub_topics_max(c), c->name, SUB_TOPICS_MAX);
			} else {
				count(fd->m_auth_refused[2]);
				MB_LOG_RATE(NOTICE,
					    "subscription to '%s' refused: client '%s' may not "
					    "receive it (a topic is \"T/\" or \"T/model\" of a "
					    "tenant T it may subscribe to, at most %d bytes)",
					    shown, c != NULL ? c->name : "?", SUB_TOPIC_LEN);
			}
		}
		zmq_msg_close(&m);
	}
}

/* CURVE: answer the handshakes waiting for the ZAP handler, then read the PUB's
 * disconnects: in that order, and before read_subscriptions(), for sub_drop(). */
static void
read_security(struct mb_frontdoor *fd)
{
	enum mb_zap_outcome z;
	char who[128];

	while ((z = mb_auth_zap_handle(fd->auth, fd->zap, who, sizeof(who))) != MB_ZAP_NONE) {
		count(fd->m_handshakes[z - MB_ZAP_ACCEPTED]);
		if (z != MB_ZAP_ACCEPTED)
			MB_LOG_RATE(NOTICE, "handshake refused: %s%s", who,
				    z == MB_ZAP_UNKNOWN_KEY ? " is not on the allow-list" : "");
		else
			MB_LOG(DEBUG, "handshake: %s", who);
	}
	for (;;) {
		zmq_msg_t m;
		uint8_t b[6] = {0};
		uint16_t ev;
		int32_t val;
		int more;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, fd->pub_monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		memcpy(b, zmq_msg_data(&m), zmq_msg_size(&m) < 6 ? zmq_msg_size(&m) : 6);
		memcpy(&ev, b, 2);
		memcpy(&val, b + 2, 4);
		more = zmq_msg_more(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, fd->pub_monitor, 0) < 0)
				break;
			more = zmq_msg_more(&m);
		}
		zmq_msg_close(&m);
		if (ev == ZMQ_EVENT_DISCONNECTED)
			sub_drop(fd, val);
		else
			count(fd->m_handshake_failed);
	}
}

/*
 * The drain's last step: what clients still deliver (messages in the kernel, or in ZeroMQ's
 * I/O thread, that one empty read does not see) is read and answered UNAVAILABLE until the
 * ROUTER has been quiet for drain_quiet_ms, counted from the last message read or from
 * the moment everything accepted was answered, whichever is later. True when it has.
 */
static bool
quiet(struct mb_frontdoor *fd, uint64_t now)
{
	uint64_t since = fd->last_rx_ns > fd->done_since_ns ? fd->last_rx_ns : fd->done_since_ns;

	return now - since >= (uint64_t)fd->o.drain_quiet_ms * MB_NS_PER_MS;
}

/*
 * The ROUTER keeps listening while it drains: in libzmq 4.3, zmq_unbind() also closes every
 * connection accepted on that endpoint, with the replies still queued for them (measured:
 * it lost all 256 answers of a drain). New connections' requests are answered UNAVAILABLE
 * like any other, and /readyz says draining so that balancers stop sending.
 */
static void
close_ingest(struct mb_frontdoor *fd)
{
	fd->ingest_closed = true;
	MB_LOG(NOTICE, "draining: new requests are answered UNAVAILABLE; %u in flight",
	       mb_request_pool_in_use(fd->pool) - fd->n_parked);
	if (fd->o.ops.ingest_closed != NULL)
		fd->o.ops.ingest_closed(fd->o.ops.ctx);
}

void
mb_frontdoor_watch(struct mb_frontdoor *fd, struct mb_reactor *r)
{
	/* the ROUTER only: connection events and subscriptions are read once a millisecond
	 * while the thread works, and within max_sleep_ns when it sleeps (nothing is in flight
	 * then for a disconnect to cancel) */
	mb_reactor_watch(r, fd->router, -1);
	/* with CURVE, a handshake waits for the ZAP handler and a subscription is applied only
	 * once vetted: both wake the thread */
	if (fd->auth != NULL) {
		mb_reactor_watch(r, fd->zap, -1);
		mb_reactor_watch(r, fd->pub, -1);
	}
}

/* The end of the drain: log what was done. */
static void
finish_drain(struct mb_frontdoor *fd, uint64_t now)
{
	/* Cut short (abort): what still sits in the ROUTER's queue is answered UNAVAILABLE
	 * before the socket closes, within 200 ms. */
	uint64_t until = now + 200 * MB_NS_PER_MS;

	while (fd->abort_seen_ns != 0 && receive(fd) == RECV_BURST && mb_env_now_ns() < until)
		;
	fd->finished = true;
	MB_LOG(NOTICE,
	       "front door done: %" PRIu64 " responses sent; %" PRIu64
	       " request(s) that arrived while draining answered UNAVAILABLE (the ROUTER was "
	       "read until quiet for %u ms%s); %" PRIu64
	       " reply(ies) dropped unread after the hard stop (unread_at_shutdown)",
	       fd->sent, fd->drain_refused, fd->o.drain_quiet_ms,
	       fd->abort_seen_ns != 0 ? ", or the drain was cut short" : "", fd->unread_dropped);
}

int
mb_frontdoor_poll(struct mb_frontdoor *fd, uint64_t now, uint64_t *wake_at)
{
	uint64_t wake = UINT64_MAX;
	unsigned int work = 0;
	bool done;

	if (fd->finished)
		return MB_POLLER_DONE;
	fd->now = now;
	/* Connection events and subscriptions change rarely: looked at once per SLOW_NS (an
	 * empty read of a ZeroMQ socket is a system call). Disconnects are read before the
	 * requests that follow: see cancel_disconnected(). */
	if (now >= fd->next_slow_ns) {
		fd->next_slow_ns = now + SLOW_NS;
		if (fd->auth != NULL) {
			take_auth(fd);
			read_security(fd);
		}
		read_connections(fd);
		read_subscriptions(fd);
		mb_egress_pub_resume(fd);
		if (fd->cut_pending)
			cut_due(fd, now);
	}
	/* An empty read of the ROUTER costs two system calls inside libzmq (getpid() and a
	 * poll() of its command pipe): after a read that emptied it, the ROUTER is read again
	 * RX_BACKOFF_NS later, not every round. While the reactor sleeps it watches the
	 * socket, so nothing waits longer than that. */
	if (now >= fd->next_rx_ns) {
		unsigned int n = receive(fd);

		work += n;
		if (n < RECV_BURST)
			fd->next_rx_ns = now + RX_BACKOFF_NS;
	}
	work += mb_egress_poll(fd, now);

	if (!fd->ingest_closed && mb_cancel_is_cancelled(fd->o.drain))
		close_ingest(fd);
	if (fd->abort_seen_ns == 0 && mb_cancel_is_cancelled(fd->o.abort))
		fd->abort_seen_ns = now;
	if (fd->ingest_closed) {
		done = mb_request_pool_in_use(fd->pool) == fd->n_parked && fd->n_held == 0 &&
		       (fd->o.ops.others_done == NULL || fd->o.ops.others_done(fd->o.ops.ctx)) &&
		       mb_ring_count(fd->o.results) == 0;
		if (done && input_pending(fd)) {
			done = false;
			fd->next_rx_ns = now; /* read it as soon as ZeroMQ has */
			fd->next_slow_ns = now;
		}
		if (!done)
			fd->done_since_ns = 0;
		else if (fd->done_since_ns == 0)
			fd->done_since_ns = now; /* a whole quiet period from here, at least */
		if (done && (fd->abort_seen_ns != 0 || quiet(fd, now))) {
			finish_drain(fd, now);
			return MB_POLLER_DONE;
		}
		wake = now + 10 * MB_NS_PER_MS; /* keep checking how the drain goes */
		if (fd->pub_cut)
			fd->next_slow_ns = now;
	}
	if ((fd->n_held != 0 || fd->cut_pending) && now + MB_NS_PER_MS < wake)
		wake = now + MB_NS_PER_MS;
	if (fd->pub_cut && fd->next_slow_ns < wake)
		wake = fd->next_slow_ns; /* resume publishing once the subscriber caught up */
	if (wake_at != NULL && wake < *wake_at)
		*wake_at = wake;
	return (int)work;
}
