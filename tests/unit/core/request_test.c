/*
 * request_test.c: request answers, the pool (no allocation per request, payloads released,
 * exhaustion, double return aborts), and the client hash.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_env.h"
#include "mb_request.h"
#include "mb_test.h"

static int g_payload_frees;

static void
count_free(struct mb_request *req)
{
	(void)req;
	g_payload_frees++;
}

static void
test_answer(void)
{
	struct mb_request r;

	memset(&r, 0, sizeof(r));
	r.hdr.request_id = 42;
	r.hdr.tenant_id = 7;
	strcpy(r.hdr.model, "logmel");
	r.result = malloc(16);
	mb_request_answer(&r, MB_STATUS_TIMEOUT, "deadline passed after %u us", 1234u);
	CU_ASSERT_EQUAL(r.resp.status, MB_STATUS_TIMEOUT);
	CU_ASSERT_EQUAL(r.resp.request_id, 42);
	CU_ASSERT_EQUAL(r.resp.tenant_id, 7);
	CU_ASSERT_STRING_EQUAL(r.resp.model, "logmel");
	CU_ASSERT_EQUAL(r.resp.device, MB_DEVICE_NONE);
	CU_ASSERT_EQUAL(r.resp.result_type, MB_RESULT_TEXT);
	CU_ASSERT_STRING_EQUAL(r.reason, "deadline passed after 1234 us");
	CU_ASSERT_EQUAL(r.resp.result_len, strlen(r.reason));
	CU_ASSERT_PTR_NULL(r.result); /* an earlier result is freed, not sent */
	CU_ASSERT(r.done_ns > 0);
}

static void
test_pool(void)
{
	struct mb_request_pool *p;
	struct mb_request *a, *b, *all[4];
	struct mb_env_alloc_stats before, after;

	CU_ASSERT_EQUAL(mb_request_pool_create(0, MB_NUMA_ANY, &p), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(mb_request_pool_create(4, MB_NUMA_ANY, &p), 0);
	mb_env_alloc_stats(&before);
	for (int i = 0; i < 4; i++) {
		all[i] = mb_request_get(p);
		CU_ASSERT_PTR_NOT_NULL_FATAL(all[i]);
		CU_ASSERT_EQUAL(all[i]->model, MB_REQUEST_NO_MODEL);
		CU_ASSERT_FALSE(atomic_load(&all[i]->cancel));
	}
	CU_ASSERT_PTR_NULL(mb_request_get(p)); /* exhausted: the caller answers OVERLOADED */
	CU_ASSERT_EQUAL(mb_request_pool_in_use(p), 4);
	a = all[0];
	a->payload_free = count_free;
	a->result = malloc(100);
	a->hdr.request_id = 9;
	atomic_store(&a->cancel, true);
	g_payload_frees = 0;
	mb_request_put(p, a);
	CU_ASSERT_EQUAL(g_payload_frees, 1);
	b = mb_request_get(p); /* the same object back, clean */
	CU_ASSERT_PTR_EQUAL(b, a);
	CU_ASSERT_EQUAL(b->hdr.request_id, 0);
	CU_ASSERT_PTR_NULL(b->result);
	CU_ASSERT_PTR_NULL(b->payload_free);
	CU_ASSERT_FALSE(atomic_load(&b->cancel));
	for (int i = 0; i < 4; i++)
		mb_request_put(p, all[i]);
	mb_env_alloc_stats(&after);
	CU_ASSERT_EQUAL(after.allocs, before.allocs); /* nothing allocated per request */
	CU_ASSERT_EQUAL(mb_request_pool_in_use(p), 0);
	mb_request_pool_destroy(&p);
	CU_ASSERT_PTR_NULL(p);
}

static void
test_double_put_aborts(void)
{
	pid_t pid;
	int status = 0;

	printf("\n    (a child returns a request twice; its abort message below is expected)\n");
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct mb_request_pool *p;
		struct mb_request *r;

		mb_request_pool_create(2, MB_NUMA_ANY, &p);
		r = mb_request_get(p);
		mb_request_put(p, r);
		mb_request_put(p, r);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void
test_client_hash(void)
{
	const uint8_t a[] = {0, 1, 2, 3, 4}, b[] = {0, 1, 2, 3, 5};

	CU_ASSERT_EQUAL(mb_request_client_hash(a, 5), mb_request_client_hash(a, 5));
	CU_ASSERT_NOT_EQUAL(mb_request_client_hash(a, 5), mb_request_client_hash(b, 5));
	CU_ASSERT_NOT_EQUAL(mb_request_client_hash(a, 4), mb_request_client_hash(a, 5));
}

static const struct mb_test_case cases[] = {
	{"answers carry status, reason and the request's identity", test_answer},
	{"the pool recycles without allocating; payloads released", test_pool},
	{"returning a request twice aborts", test_double_put_aborts},
	{"client hash tells clients apart", test_client_hash},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"request", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("request_test", suites);
}
