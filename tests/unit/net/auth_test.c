/*
 * auth_test.c: CURVE certificates (keygen, load, their errors), the allow-list (lookups by
 * key, name and id; tenants; errors naming the entry and the file) and the ZAP handler's
 * answers to ZAP 1.0 requests (RFC 27), driven over an inproc REQ/REP pair.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

#include "mb_auth.h"
#include "mb_test.h"
#include "mediabatch/client.h"

static const char *g_dir; /* mb_test_temp_dir() */
static char g_err[1024];

static void
path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", g_dir, name);
}

static void
test_certificates(void)
{
	struct mb_curve_keys k, l;
	char base[256], file[300];
	bool has_secret = true;
	struct stat st;
	FILE *f;

	path_of(base, sizeof(base), "alice");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, "alice", &k, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(strlen(k.public_key), 40);
	CU_ASSERT_EQUAL(strlen(k.secret_key), 40);
	/* never overwrites */
	CU_ASSERT_EQUAL(mb_curve_keygen(base, "alice", NULL, g_err, sizeof(g_err)), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not overwritten"));
	/* the secret file holds both halves and is private */
	snprintf(file, sizeof(file), "%s.key_secret", base);
	CU_ASSERT_EQUAL_FATAL(stat(file, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 077, 0);
	CU_ASSERT_EQUAL(mb_curve_cert_load(file, &l, &has_secret, g_err, sizeof(g_err)), 0);
	CU_ASSERT_TRUE(has_secret);
	CU_ASSERT_STRING_EQUAL(l.public_key, k.public_key);
	CU_ASSERT_STRING_EQUAL(l.secret_key, k.secret_key);
	/* a public certificate alone holds no secret */
	path_of(base, sizeof(base), "pubonly");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, NULL, NULL, g_err, sizeof(g_err)), 0);
	snprintf(file, sizeof(file), "%s.key_secret", base);
	CU_ASSERT_EQUAL(remove(file), 0);
	snprintf(file, sizeof(file), "%s.key", base);
	CU_ASSERT_EQUAL(mb_curve_cert_load(file, &l, &has_secret, g_err, sizeof(g_err)), 0);
	CU_ASSERT_FALSE(has_secret);
	CU_ASSERT_STRING_EQUAL(l.secret_key, "");
	/* errors name the file */
	path_of(file, sizeof(file), "missing.key");
	CU_ASSERT_EQUAL(mb_curve_cert_load(file, &l, NULL, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "missing.key"));
	path_of(file, sizeof(file), "junk.key");
	f = fopen(file, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("this is not a certificate\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_curve_cert_load(file, &l, NULL, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "junk.key: not a ZeroMQ certificate"));
}

static const uint32_t t42[] = {42}, t4243[] = {42, 43};

static void
test_allow_list(void)
{
	struct mb_curve_keys a, b;
	char base[256], file[300], pub[41], sec[41];
	struct mb_client_config cc[2] = {0};
	const struct mb_auth_client *c;
	struct mb_auth *auth = NULL;
	uint8_t raw[32];

	path_of(base, sizeof(base), "a1");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, "a1", &a, g_err, sizeof(g_err)), 0);
	path_of(base, sizeof(base), "b1");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, "b1", &b, g_err, sizeof(g_err)), 0);
	snprintf(cc[0].name, sizeof(cc[0].name), "studio-a");
	path_of(cc[0].public_key_file, sizeof(cc[0].public_key_file), "a1.key");
	cc[0].tenants = (uint32_t *)t42;
	cc[0].n_tenants = 1;
	cc[0].subscribe = (uint32_t *)t4243;
	cc[0].n_subscribe = 2;
	snprintf(cc[1].name, sizeof(cc[1].name), "ops");
	snprintf(cc[1].public_key, sizeof(cc[1].public_key), "%s", b.public_key);
	cc[1].subscribe_all = true;
	cc[1].max_inflight = 7;
	CU_ASSERT_EQUAL_FATAL(mb_auth_create(cc, 2, &auth, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(mb_auth_count(auth), 2);
	zmq_z85_decode(raw, a.public_key);
	c = mb_auth_by_key(auth, raw);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->name, "studio-a");
	CU_ASSERT_PTR_EQUAL(mb_auth_by_name(auth, "studio-a"), c);
	CU_ASSERT_PTR_EQUAL(mb_auth_by_id(auth, c->id), c);
	CU_ASSERT_PTR_NULL(mb_auth_by_name(auth, "studio"));
	CU_ASSERT_PTR_NULL(mb_auth_by_name(auth, NULL));
	CU_ASSERT_TRUE(mb_auth_may_send(c, 42));
	CU_ASSERT_FALSE(mb_auth_may_send(c, 43));
	CU_ASSERT_TRUE(mb_auth_may_subscribe(c, 43));
	CU_ASSERT_FALSE(mb_auth_may_subscribe(c, 44));
	c = mb_auth_by_name(auth, "ops");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(mb_auth_may_send(c, 42));
	CU_ASSERT_TRUE(mb_auth_may_subscribe(c, 123456));
	CU_ASSERT_EQUAL(c->max_inflight, 7);
	memset(raw, 0, sizeof(raw));
	CU_ASSERT_PTR_NULL(mb_auth_by_key(auth, raw));
	mb_auth_destroy(&auth);
	CU_ASSERT_PTR_NULL(auth);

	/* one key, two entries: refused */
	snprintf(cc[1].public_key, sizeof(cc[1].public_key), "%s", a.public_key);
	CU_ASSERT_EQUAL(mb_auth_create(cc, 2, &auth, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "have the same public key"));
	/* a key file that is not there: the entry and the file named */
	path_of(cc[0].public_key_file, sizeof(cc[0].public_key_file), "gone.key");
	CU_ASSERT_EQUAL(mb_auth_create(cc, 1, &auth, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "security.clients[0] (studio-a)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "gone.key"));
	CU_ASSERT_PTR_NULL(auth);
	/* the client's secret certificate on the server: refused, the entry and file named */
	path_of(cc[0].public_key_file, sizeof(cc[0].public_key_file), "a1.key_secret");
	CU_ASSERT_EQUAL(mb_auth_create(cc, 1, &auth, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "security.clients[0] (studio-a): public_key_file "));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "a1.key_secret holds the client's secret key"));
	CU_ASSERT_PTR_NULL(auth);

	/* the service's own key: the secret file, private */
	snprintf(file, sizeof(file), "%s/a1.key_secret", g_dir);
	CU_ASSERT_EQUAL(mb_auth_server_key(file, pub, sec, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(pub, a.public_key);
	chmod(file, 0644);
	CU_ASSERT_EQUAL(mb_auth_server_key(file, pub, sec, g_err, sizeof(g_err)), -EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "chmod 600"));
	snprintf(file, sizeof(file), "%s/pubonly.key", g_dir);
	CU_ASSERT_EQUAL(mb_auth_server_key(file, pub, sec, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "holds no secret key"));
	/* halves of two pairs (b1's public, a1's secret): clients would be given a key the
	 * service does not hold; refused, naming the file and the key the secret gives */
	snprintf(file, sizeof(file), "%s/mixed.key_secret", g_dir);
	{
		FILE *f = fopen(file, "w");
		char want[64];

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fprintf(f, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
			b.public_key, a.secret_key);
		fclose(f);
		chmod(file, 0600);
		CU_ASSERT_EQUAL(mb_auth_server_key(file, pub, sec, g_err, sizeof(g_err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_err, file));
		CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not the public half of its secret-key"));
		snprintf(want, sizeof(want), "which gives \"%s\"", a.public_key);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_err, want));
	}
}

/* Send a ZAP request of @p n frames on @p req, let the handler answer, read the reply's
 * status code and user id. */
static enum mb_zap_outcome
zap_round(const struct mb_auth *auth, void *req, void *rep, const void *const *f, const size_t *len,
	  int n, char *code, char *user)
{
	enum mb_zap_outcome z;
	char buf[8][64];
	int got = 0, more = 1;

	for (int i = 0; i < n; i++)
		zmq_send(req, f[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0);
	for (int tries = 0;
	     (z = mb_auth_zap_handle(auth, rep, NULL, 0)) == MB_ZAP_NONE && tries < 1000; tries++)
		zmq_poll(&(zmq_pollitem_t){.socket = rep, .events = ZMQ_POLLIN}, 1, 10);
	while (more && got < 8) {
		int r = zmq_recv(req, buf[got], sizeof(buf[got]) - 1, 0);
		size_t sz = sizeof(more);

		buf[got][r < 0 ? 0 : r > 63 ? 63 : r] = '\0';
		got++;
		zmq_getsockopt(req, ZMQ_RCVMORE, &more, &sz);
	}
	CU_ASSERT_EQUAL(got, 6);
	strcpy(code, got > 2 ? buf[2] : "");
	strcpy(user, got > 4 ? buf[4] : "");
	return z;
}

static void
test_zap(void)
{
	struct mb_curve_keys a, other;
	struct mb_client_config cc = {0};
	struct mb_auth *auth;
	void *ctx = zmq_ctx_new(), *rep, *req;
	uint8_t key[32], unknown[32];
	char code[64], user[64], base[256];

	path_of(base, sizeof(base), "z1");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, NULL, &a, g_err, sizeof(g_err)), 0);
	path_of(base, sizeof(base), "z2");
	CU_ASSERT_EQUAL_FATAL(mb_curve_keygen(base, NULL, &other, g_err, sizeof(g_err)), 0);
	snprintf(cc.name, sizeof(cc.name), "zed");
	snprintf(cc.public_key, sizeof(cc.public_key), "%s", a.public_key);
	cc.tenants = (uint32_t *)t42;
	cc.n_tenants = 1;
	CU_ASSERT_EQUAL_FATAL(mb_auth_create(&cc, 1, &auth, g_err, sizeof(g_err)), 0);
	zmq_z85_decode(key, a.public_key);
	zmq_z85_decode(unknown, other.public_key);
	rep = zmq_socket(ctx, ZMQ_REP);
	req = zmq_socket(ctx, ZMQ_REQ);
	CU_ASSERT_EQUAL_FATAL(zmq_bind(rep, "inproc://zap-test"), 0);
	CU_ASSERT_EQUAL_FATAL(zmq_connect(req, "inproc://zap-test"), 0);
	CU_ASSERT_EQUAL(mb_auth_zap_handle(auth, rep, NULL, 0), MB_ZAP_NONE);
	{
		const void *f[7] = {"1.0", "7", "mediabatch", "127.0.0.1", "", "CURVE", key};
		const size_t len[7] = {3, 1, 10, 9, 0, 5, 32};

		CU_ASSERT_EQUAL(zap_round(auth, req, rep, f, len, 7, code, user), MB_ZAP_ACCEPTED);
		CU_ASSERT_STRING_EQUAL(code, "200");
		CU_ASSERT_STRING_EQUAL(user, "zed");
		f[6] = unknown;
		CU_ASSERT_EQUAL(zap_round(auth, req, rep, f, len, 7, code, user),
				MB_ZAP_UNKNOWN_KEY);
		CU_ASSERT_STRING_EQUAL(code, "400");
		CU_ASSERT_STRING_EQUAL(user, "");
		f[5] = "PLAIN"; /* only CURVE */
		f[6] = key;
		CU_ASSERT_EQUAL(zap_round(auth, req, rep, f, len, 7, code, user),
				MB_ZAP_BAD_REQUEST);
		CU_ASSERT_STRING_EQUAL(code, "400");
		f[5] = "CURVE";
		f[0] = "2.0"; /* another version of ZAP */
		CU_ASSERT_EQUAL(zap_round(auth, req, rep, f, len, 7, code, user),
				MB_ZAP_BAD_REQUEST);
		CU_ASSERT_STRING_EQUAL(code, "400");
	}
	zmq_close(req);
	zmq_close(rep);
	zmq_ctx_term(ctx);
	mb_auth_destroy(&auth);
}

static const struct mb_test_case cases[] = {
	{"certificates: keygen, load, errors", test_certificates},
	{"allow-list: lookups, tenants, errors", test_allow_list},
	{"ZAP: listed key 200 with its name, others 400", test_zap},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"net auth", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	g_dir = mb_test_temp_dir();
	return mb_test_main("auth_test", suites);
}
