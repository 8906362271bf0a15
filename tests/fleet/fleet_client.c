/*
 * fleet_client.c: the client side of the fleet suite (tests/fleet/fleet_test.sh), run in the
 * client's network namespace. The daemons are in namespaces of their own behind a bridge,
 * at 192.0.2.11.. (TEST-NET-1, only inside those namespaces); the client finds them by one
 * name from its namespace's hosts file, or by a list.
 *
 * The script passes, in the environment:
 *   MB_FLEET_NAME     tcp://NAME:PORT: the equal daemons 1-3 by name
 *   MB_FLEET_LIST     the same three as a list of addresses
 *   MB_FLEET_SLOW     a list of daemon 1 and daemon 4, whose identity waits 8 ms per batch
 *   MB_FLEET_ADD      tcp://NAME2:PORT: a name that resolves to daemons 1 and 2 at first
 *   MB_FLEET_HOSTS    the hosts file (this namespace's /etc/hosts) and the line to add to
 *   MB_FLEET_ADDLINE  it mid-run: NAME2 for daemon 5
 *   MB_FLEET_PIDS     the daemons' pids 1-3 (the chaos case kills 1 and drains 2)
 *
 * Checked: by name and by list, each of three equal daemons answers within 10% of a third;
 * the slowed daemon gets less than half of the other's share, and the caller sees only OK;
 * a daemon added to the name mid-run takes work after re-resolution; one daemon killed
 * with SIGKILL and another drained with SIGTERM mid-run: every request exactly one answer,
 * all OK, none lost, and the run goes on with the third.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_test.h"
#include "mediabatch/client.h"

struct run {
	int n, window;
	int answered, dup, ok;
	char reason[256];
};

typedef void (*mid_run_fn)(int answered, void *arg);

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "fleet_client: %s is not set (run tests/fleet/fleet_test.sh)\n",
			name);
		exit(2);
	}
	return v;
}

static struct mb_client *
connect_fleet(const char *endpoint, int resolve_ms)
{
	struct mb_client_opts o = {.endpoint = endpoint, .fleet = true, .resolve_ms = resolve_ms};
	struct mb_client *c = NULL;
	char err[256];

	if (mb_client_connect(&o, &c, err, sizeof(err)) != 0) {
		printf("\n  connect '%s': %s\n", endpoint, err);
		return NULL;
	}
	return c;
}

/* A closed loop of r->n identity requests, ids @p base.., r->window outstanding. */
static void
closed_loop(struct mb_client *c, uint64_t base, struct run *r, mid_run_fn mid, void *arg)
{
	uint8_t *seen = calloc((size_t)r->n, 1);
	float payload[64] = {0};
	double deadline = now_s() + 120;
	int sent = 0;

	while (r->answered < r->n && now_s() < deadline) {
		struct mb_client_response resp;

		while (sent < r->n && sent - r->answered < r->window) {
			struct mb_request_hdr h;

			mb_client_tensor_hdr(&h, "identity", 3, base + (uint64_t)sent, 1, 64);
			if (mb_client_send(c, &h, payload, sizeof(payload)) != 0)
				break;
			sent++;
		}
		if (mb_client_recv(c, &resp, 1000) != 0)
			continue;
		uint64_t i = resp.hdr.request_id - base;

		if (i >= (uint64_t)r->n || seen[i]++) {
			r->dup++;
		} else {
			r->answered++;
			if (resp.hdr.status == MB_STATUS_OK)
				r->ok++;
			else if (r->reason[0] == '\0')
				snprintf(r->reason, sizeof(r->reason), "%s: %.*s",
					 mb_status_name(resp.hdr.status), (int)resp.len,
					 (const char *)resp.data);
		}
		mb_client_response_free(&resp);
		if (mid != NULL)
			mid(r->answered, arg);
	}
	free(seen);
	if (r->answered < r->n || r->dup != 0 || r->ok != r->n)
		printf("\n  %d of %d answered, %d OK, %d duplicate; first not OK: %s\n",
		       r->answered, r->n, r->ok, r->dup, r->reason);
}

static int
daemons(struct mb_client *c, struct mb_client_daemon *d, int max, int print)
{
	struct mb_client_fleet_stats st;
	int n = mb_client_fleet_stats(c, &st, d, max);

	for (int i = 0; print && i < n && i < max; i++)
		printf("\n  %s: %s%s, window %.1f, answered %llu, failed over %llu, %.2f ms",
		       d[i].endpoint, d[i].up ? "up" : "down", d[i].gone ? " (gone)" : "",
		       d[i].window, (unsigned long long)d[i].answered,
		       (unsigned long long)d[i].failed_over, d[i].latency_ms);
	if (print)
		printf("\n  resent %llu, duplicates dropped %llu, client timeouts %llu\n",
		       (unsigned long long)st.resent, (unsigned long long)st.duplicates_dropped,
		       (unsigned long long)st.client_timeouts);
	return n;
}

static void
spread(const char *endpoint)
{
	struct mb_client_daemon d[8];
	struct run r = {.n = 6000, .window = 48};
	struct mb_client *c = connect_fleet(endpoint, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	closed_loop(c, 0, &r, NULL, NULL);
	CU_ASSERT_EQUAL(r.ok, r.n);
	CU_ASSERT_EQUAL(r.dup, 0);
	CU_ASSERT_EQUAL_FATAL(daemons(c, d, 8, 1), 3);
	for (int i = 0; i < 3; i++) {
		double share = (double)d[i].answered / r.n;

		CU_ASSERT(share >= 0.9 / 3 && share <= 1.1 / 3);
	}
	mb_client_close(&c);
}

static void
test_spread_by_name(void)
{
	spread(env("MB_FLEET_NAME"));
}

static void
test_spread_by_list(void)
{
	spread(env("MB_FLEET_LIST"));
}

static void
test_slow_gets_less(void)
{
	struct mb_client_daemon d[2];
	struct run r = {.n = 4000, .window = 32};
	struct mb_client *c = connect_fleet(env("MB_FLEET_SLOW"), 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	closed_loop(c, 100000, &r, NULL, NULL);
	CU_ASSERT_EQUAL(r.ok, r.n);
	CU_ASSERT_EQUAL_FATAL(daemons(c, d, 2, 1), 2);
	/* d[1] is the slowed one: its answers take 8 ms more */
	CU_ASSERT(d[1].latency_ms > 2 * d[0].latency_ms);
	CU_ASSERT(d[1].answered * 2 < d[0].answered);
	mb_client_close(&c);
}

static void
test_added_mid_run(void)
{
	struct mb_client_daemon d[8];
	struct run before = {.n = 2000, .window = 48}, after = {.n = 6000, .window = 48};
	struct mb_client *c = connect_fleet(env("MB_FLEET_ADD"), 200);
	double until;
	FILE *f;
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(daemons(c, d, 8, 0), 2); /* the name's two addresses at first */
	closed_loop(c, 200000, &before, NULL, NULL);
	CU_ASSERT_EQUAL(before.ok, before.n);
	/* in place: the same file is this namespace's /etc/hosts (a bind mount) */
	f = fopen(env("MB_FLEET_HOSTS"), "a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "%s\n", env("MB_FLEET_ADDLINE"));
	fclose(f);
	/* the client resolves again within resolve_ms (200) and connects */
	for (until = now_s() + 10; now_s() < until;) {
		struct mb_client_response r;

		if (mb_client_recv(c, &r, 50) == 0)
			mb_client_response_free(&r);
		n = daemons(c, d, 8, 0);
		if (n == 3 && d[2].up)
			break;
	}
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_TRUE_FATAL(d[2].up);
	closed_loop(c, 210000, &after, NULL, NULL);
	CU_ASSERT_EQUAL(after.ok, after.n);
	CU_ASSERT_EQUAL_FATAL(daemons(c, d, 8, 1), 3);
	/* the new one takes its turn: about a third (its window starts small and grows) */
	CU_ASSERT(d[2].answered > (uint64_t)after.n / 6);
	mb_client_close(&c);
}

struct chaos {
	int pid[3];
	bool killed, drained;
};

static void
kill_then_drain(int answered, void *arg)
{
	struct chaos *x = arg;

	if (!x->killed && answered >= 1500) {
		x->killed = true;
		CU_ASSERT_EQUAL(kill(x->pid[0], SIGKILL), 0);
	}
	if (!x->drained && answered >= 3000) {
		x->drained = true;
		CU_ASSERT_EQUAL(kill(x->pid[1], SIGTERM), 0);
	}
}

static void
test_kill_and_drain(void)
{
	struct mb_client_daemon d[8];
	struct run r = {.n = 6000, .window = 48};
	struct chaos x = {{0}, false, false};
	struct mb_client *c;

	CU_ASSERT_EQUAL_FATAL(
		sscanf(env("MB_FLEET_PIDS"), "%d,%d,%d", &x.pid[0], &x.pid[1], &x.pid[2]), 3);
	c = connect_fleet(env("MB_FLEET_NAME"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	closed_loop(c, 300000, &r, kill_then_drain, &x);
	CU_ASSERT_TRUE(x.killed && x.drained);
	CU_ASSERT_EQUAL(r.answered, r.n);
	CU_ASSERT_EQUAL(r.dup, 0);
	CU_ASSERT_EQUAL(r.ok, r.n);
	CU_ASSERT_EQUAL_FATAL(daemons(c, d, 8, 1), 3);
	CU_ASSERT(d[2].answered > d[0].answered);
	mb_client_close(&c);
}

static const struct mb_test_case cases[] = {
	{"three equal daemons by one name: each within 10% of a third", test_spread_by_name},
	{"the same three by a list", test_spread_by_list},
	{"a daemon slowed on purpose gets less", test_slow_gets_less},
	{"a daemon added to the name mid-run takes work after re-resolution", test_added_mid_run},
	{"kill -9 one and drain another mid-run: exactly one answer each, none lost",
	 test_kill_and_drain},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"fleet", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("fleet_client", suites);
}
