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

static const struct mb_test_case cases[] = {
	{"past a model's queue limit: OVERLOADED, each answered once", test_queue_limit},
	{"past max_inflight: OVERLOADED", test_max_inflight},
	{"a tenant past its rate limit: OVERLOADED; others unaffected", test_tenant_rate_limit},
	{"a flood 300x the in-flight limit: all answered, memory bounded",
	 test_flood_memory_bounded},
	{"one frame far over max_payload_bytes: connection cut, nothing buffered",
	 test_huge_frame_cut},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e overload", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_overload", suites);
}
