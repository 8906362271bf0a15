/*
 * auth.c: the allow-list of CURVE client keys and the ZAP handler (mb_auth.h).
 *
 * The list is two sorted arrays of pointers to its entries, one by key and one by name, for
 * binary search: built once, read by one thread (the front door's), a few lookups per
 * handshake and one per request.
 */
#include "mb_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

#include "mediabatch/client.h"

struct mb_auth {
	struct mb_auth_client *c;
	unsigned int n;
	const struct mb_auth_client **by_key, **by_name, **by_id;
	uint32_t *tenants; /* every entry's lists, end to end */
};

static int
cmp_key(const void *a, const void *b)
{
	return memcmp((*(const struct mb_auth_client *const *)a)->key,
		      (*(const struct mb_auth_client *const *)b)->key, 32);
}

static int
cmp_id(const void *a, const void *b)
{
	uint64_t x = (*(const struct mb_auth_client *const *)a)->id;
	uint64_t y = (*(const struct mb_auth_client *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp((*(const struct mb_auth_client *const *)a)->name,
		      (*(const struct mb_auth_client *const *)b)->name);
}

/* FNV-1a of the name: a client's identity across reloads (its key may change). */
static uint64_t
name_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h | 1; /* never 0: 0 means "no client" */
}

int
mb_auth_create(const struct mb_client_config *cc, unsigned int n, struct mb_auth **out, char *err,
	       size_t err_len)
{
	struct mb_auth *a;
	size_t n_t = 0, at = 0;
	int rc = 0;

	*out = NULL;
	for (unsigned int i = 0; i < n; i++)
		n_t += cc[i].n_tenants + cc[i].n_subscribe;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->c = calloc(n ? n : 1, sizeof(*a->c));
	a->by_key = calloc(n ? n : 1, sizeof(*a->by_key));
	a->by_name = calloc(n ? n : 1, sizeof(*a->by_name));
	a->by_id = calloc(n ? n : 1, sizeof(*a->by_id));
	a->tenants = calloc(n_t ? n_t : 1, sizeof(*a->tenants));
	if (a->c == NULL || a->by_key == NULL || a->by_name == NULL || a->by_id == NULL ||
	    a->tenants == NULL) {
		mb_auth_destroy(&a);
		snprintf(err, err_len, "allow-list: out of memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct mb_auth_client *d = &a->c[i];
		const struct mb_client_config *s = &cc[i];
		struct mb_curve_keys k;

		snprintf(d->name, sizeof(d->name), "%s", s->name);
		if (s->public_key[0] != '\0') {
			snprintf(k.public_key, sizeof(k.public_key), "%s", s->public_key);
		} else {
			char why[512];
			bool secret;

			rc = mb_curve_cert_load(s->public_key_file, &k, &secret, why, sizeof(why));
			if (rc < 0) {
				snprintf(err, err_len,
					 "security.clients[%u] (%s): public_key_file %s", i,
					 s->name, why);
				goto fail;
			}
			if (secret) { /* the client's secret on the server: refuse, do not use */
				snprintf(err, err_len,
					 "security.clients[%u] (%s): public_key_file %s holds the "
					 "client's secret key: give its public certificate (the "
					 "NAME.key file 'mediabatch keygen' wrote, not "
					 "NAME.key_secret) "
					 "and keep the secret with the client only",
					 i, s->name, s->public_key_file);
				rc = -EINVAL;
				goto fail;
			}
		}
		if (zmq_z85_decode(d->key, k.public_key) == NULL) {
			snprintf(err, err_len, "security.clients[%u] (%s): '%s' is not a key", i,
				 s->name, k.public_key);
			rc = -EINVAL;
			goto fail;
		}
		snprintf(d->key_z85, sizeof(d->key_z85), "%s", k.public_key);
		d->id = name_id(d->name);
		if (s->n_tenants != 0) /* memcpy() wants a pointer even for 0 bytes */
			memcpy(a->tenants + at, s->tenants, s->n_tenants * sizeof(uint32_t));
		d->tenants = a->tenants + at;
		d->n_tenants = s->n_tenants;
		at += s->n_tenants;
		if (s->n_subscribe != 0)
			memcpy(a->tenants + at, s->subscribe, s->n_subscribe * sizeof(uint32_t));
		d->subscribe = a->tenants + at;
		d->n_subscribe = s->n_subscribe;
		at += s->n_subscribe;
		d->subscribe_all = s->subscribe_all;
		d->max_inflight = s->max_inflight;
		a->by_key[i] = a->by_name[i] = a->by_id[i] = d;
		a->n = i + 1;
	}
	qsort(a->by_key, a->n, sizeof(*a->by_key), cmp_key);
	qsort(a->by_name, a->n, sizeof(*a->by_name), cmp_name);
	qsort(a->by_id, a->n, sizeof(*a->by_id), cmp_id);
	for (unsigned int i = 1; i < a->n; i++) {
		if (a->by_id[i - 1]->id == a->by_id[i]->id) {
			snprintf(err, err_len,
				 "security.clients: the names '%s' and '%s' hash alike: rename one",
				 a->by_id[i - 1]->name, a->by_id[i]->name);
			rc = -EINVAL;
			goto fail;
		}
		if (memcmp(a->by_key[i - 1]->key, a->by_key[i]->key, 32) == 0) {
			snprintf(err, err_len,
				 "security.clients: %s and %s have the same public key (%s): one "
				 "entry per key",
				 a->by_key[i - 1]->name, a->by_key[i]->name, a->by_key[i]->key_z85);
			rc = -EINVAL;
			goto fail;
		}
		if (strcmp(a->by_name[i - 1]->name, a->by_name[i]->name) == 0) {
			snprintf(err, err_len, "security.clients: the name '%s' is used twice",
				 a->by_name[i]->name);
			rc = -EINVAL;
			goto fail;
		}
	}
	*out = a;
	return 0;
fail:
	mb_auth_destroy(&a);
	return rc;
}

void
mb_auth_destroy(struct mb_auth **ap)
{
	struct mb_auth *a;

	if (ap == NULL || *ap == NULL)
		return;
	a = *ap;
	free(a->c);
	free(a->by_key);
	free(a->by_name);
	free(a->by_id);
	free(a->tenants);
	free(a);
	*ap = NULL;
}

unsigned int
mb_auth_count(const struct mb_auth *a)
{
	return a != NULL ? a->n : 0;
}

/* bsearch() comparators: the key sought against an entry of an index */
static int
key_vs(const void *key, const void *e)
{
	return memcmp(key, (*(const struct mb_auth_client *const *)e)->key, 32);
}

static int
name_vs(const void *name, const void *e)
{
	return strcmp(name, (*(const struct mb_auth_client *const *)e)->name);
}

static int
id_vs(const void *id, const void *e)
{
	uint64_t x = *(const uint64_t *)id, y = (*(const struct mb_auth_client *const *)e)->id;

	return x < y ? -1 : x > y;
}

static const struct mb_auth_client *
find(const struct mb_auth *a, const struct mb_auth_client *const *index, const void *key,
     int (*vs)(const void *, const void *))
{
	const struct mb_auth_client *const *e;

	if (a == NULL || key == NULL || a->n == 0)
		return NULL;
	e = bsearch(key, index, a->n, sizeof(*index), vs);
	return e != NULL ? *e : NULL;
}

const struct mb_auth_client *
mb_auth_by_key(const struct mb_auth *a, const uint8_t key[32])
{
	return find(a, a != NULL ? a->by_key : NULL, key, key_vs);
}

const struct mb_auth_client *
mb_auth_by_name(const struct mb_auth *a, const char *name)
{
	return find(a, a != NULL ? a->by_name : NULL, name, name_vs);
}

const struct mb_auth_client *
mb_auth_by_id(const struct mb_auth *a, uint64_t id)
{
	return find(a, a != NULL ? a->by_id : NULL, &id, id_vs);
}

static bool
in_sorted(const uint32_t *t, unsigned int n, uint32_t x)
{
	unsigned int lo = 0, hi = n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t[mid] == x)
			return true;
		if (x < t[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

bool
mb_auth_may_send(const struct mb_auth_client *c, uint32_t tenant)
{
	return c != NULL && in_sorted(c->tenants, c->n_tenants, tenant);
}

bool
mb_auth_may_subscribe(const struct mb_auth_client *c, uint32_t tenant)
{
	return c != NULL && (c->subscribe_all || in_sorted(c->subscribe, c->n_subscribe, tenant));
}

bool
mb_auth_same_subscriptions(const struct mb_auth_client *a, const struct mb_auth_client *b)
{
	return a->subscribe_all == b->subscribe_all && a->n_subscribe == b->n_subscribe &&
	       memcmp(a->subscribe, b->subscribe, a->n_subscribe * sizeof(uint32_t)) == 0;
}

void
mb_auth_tenants_str(const uint32_t *t, unsigned int n, char *buf, size_t len)
{
	size_t at = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, len, "none");
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		int w = snprintf(buf + at, len - at, "%s%u", i ? ", " : "", t[i]);

		if (w < 0 || (size_t)w >= len - at) {
			if (len >= 4)
				snprintf(buf + (at < len - 4 ? at : len - 4), 4, "...");
			return;
		}
		at += (size_t)w;
	}
}

/* ---- ZAP (RFC 27) ---- */

#define ZAP_FRAMES 8

static void
zap_reply(void *zap, const zmq_msg_t *request_id, const char *code, const char *text,
	  const char *user)
{
	zmq_send_const(zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(zap, zmq_msg_data((zmq_msg_t *)request_id), zmq_msg_size((zmq_msg_t *)request_id),
		 ZMQ_SNDMORE);
	zmq_send(zap, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(zap, "", 0, 0); /* no metadata */
}

static bool
frame_is(const zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);

	return zmq_msg_size((zmq_msg_t *)m) == n && memcmp(zmq_msg_data((zmq_msg_t *)m), s, n) == 0;
}

enum mb_zap_outcome
mb_auth_zap_handle(const struct mb_auth *a, void *zap, char *who, size_t who_len)
{
	zmq_msg_t f[ZAP_FRAMES];
	enum mb_zap_outcome out = MB_ZAP_BAD_REQUEST;
	int n = 0, more = 1;
	char addr[64] = "?";

	if (who != NULL && who_len != 0)
		who[0] = '\0';
	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(&m);
			if (n == 0)
				return MB_ZAP_NONE;
			break;
		}
		more = zmq_msg_more(&m);
		if (n < ZAP_FRAMES) {
			zmq_msg_init(&f[n]);
			zmq_msg_move(&f[n++], &m);
		}
		zmq_msg_close(&m);
	}
	/* version, request id, domain, address, routing id, mechanism, credentials */
	if (n >= 4) {
		size_t l = zmq_msg_size(&f[3]) < sizeof(addr) - 1 ? zmq_msg_size(&f[3])
								  : sizeof(addr) - 1;

		memcpy(addr, zmq_msg_data(&f[3]), l);
		addr[l] = '\0';
	}
	if (n == 7 && frame_is(&f[0], "1.0") && frame_is(&f[5], "CURVE") &&
	    zmq_msg_size(&f[6]) == 32) {
		const struct mb_auth_client *c = mb_auth_by_key(a, zmq_msg_data(&f[6]));

		if (c != NULL) {
			zap_reply(zap, &f[1], "200", "OK", c->name);
			out = MB_ZAP_ACCEPTED;
			if (who != NULL)
				snprintf(who, who_len, "%s from %s", c->name, addr);
		} else {
			char z85[41];

			zap_reply(zap, &f[1], "400", "key not on the allow-list", "");
			out = MB_ZAP_UNKNOWN_KEY;
			if (who != NULL)
				snprintf(who, who_len, "key %s from %s",
					 zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32) ? z85 : "?",
					 addr);
		}
	} else if (n >= 2) {
		zap_reply(zap, &f[1], "400", "only CURVE is accepted", "");
		if (who != NULL)
			snprintf(who, who_len, "a non-CURVE handshake from %s", addr);
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return out;
}

int
mb_auth_server_key(const char *path, char public_z85[41], char secret_z85[41], char *err,
		   size_t err_len)
{
	struct mb_curve_keys k;
	struct stat st;
	bool has_secret;
	char why[512], derived[41];
	int rc = mb_curve_cert_load(path, &k, &has_secret, why, sizeof(why));

	if (rc < 0) {
		snprintf(err, err_len, "security.server_key: %s", why);
		return rc;
	}
	if (!has_secret) {
		snprintf(err, err_len,
			 "security.server_key: %s holds no secret key: give the NAME.key_secret "
			 "file that 'mediabatch keygen' wrote (NAME.key is the public half, for "
			 "clients)",
			 path);
		return -EINVAL;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		snprintf(err, err_len,
			 "security.server_key: %s may be read by other users (mode %03o): "
			 "chmod 600 it",
			 path, (unsigned int)(st.st_mode & 0777));
		rc = -EACCES;
		goto out;
	}
	/* The service uses the secret; clients are given the public key printed at start,
	 * which must be the one the secret makes, or every handshake fails. */
	if (zmq_curve_public(derived, k.secret_key) != 0) {
		snprintf(err, err_len,
			 "security.server_key: %s: cannot derive the public key of its secret-key "
			 "(%s)",
			 path, zmq_errno() == ENOTSUP ? "this libzmq has no CURVE" : "not a key");
		rc = -EINVAL;
		goto out;
	}
	if (strcmp(derived, k.public_key) != 0) {
		snprintf(
			err, err_len,
			"security.server_key: %s: its public-key \"%s\" is not the public half of "
			"its secret-key, which gives \"%s\": the file was edited or mixed from two "
			"pairs; use the NAME.key_secret that 'mediabatch keygen' wrote (and give "
			"clients its NAME.key), or make a new pair",
			path, k.public_key, derived);
		rc = -EINVAL;
		goto out;
	}
	memcpy(public_z85, derived, 41);
	memcpy(secret_z85, k.secret_key, 41);
out:
	explicit_bzero(k.secret_key, sizeof(k.secret_key));
	return rc;
}
