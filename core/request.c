/*
 * request.c: request objects, their answers, and the pool that recycles them.
 *
 * The pool is an array of objects and a stack of free indexes: get and put are O(1) and
 * allocate nothing. Only its owner thread (the front door) touches it. mb_results_push()
 * hands answered requests to the egress's ring from any producer thread.
 */
#include "mb_request.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_env.h"
#include "mb_ring.h"

#define MB_LOG_MODULE "request"
#include "mb_log.h"

void
mb_request_response_base(const struct mb_request_hdr *hdr, struct mb_response_hdr *out)
{
	memset(out, 0, sizeof(*out));
	out->version = MB_PROTO_VERSION;
	out->request_id = hdr->request_id;
	out->tenant_id = hdr->tenant_id;
	out->device = MB_DEVICE_NONE;
	memcpy(out->model, hdr->model, sizeof(out->model));
}

void
mb_request_answer(struct mb_request *req, enum mb_status status, const char *fmt, ...)
{
	va_list ap;

	mb_request_response_base(&req->hdr, &req->resp);
	req->resp.status = (uint16_t)status;
	va_start(ap, fmt);
	vsnprintf(req->reason, sizeof(req->reason), fmt, ap);
	va_end(ap);
	free(req->result);
	req->result = NULL;
	req->result_len = 0;
	req->resp.result_type = MB_RESULT_TEXT;
	req->resp.result_len = (uint32_t)strlen(req->reason);
	req->done_ns = mb_env_now_ns();
}

/*
 * Zero the first CLEARED bytes of a request in 64-byte memsets: compilers turn one memset
 * of a few hundred bytes into `rep stos`, whose start-up cost (tens of cycles on AMD) was
 * most of the reset on the UDP rx path, which resets every request it gets back.
 */
#define CLEARED offsetof(struct mb_request, reason)

static inline void
clear_head(struct mb_request *req)
{
	uint8_t *p = (uint8_t *)req;
	size_t off = 0;

#pragma GCC unroll 16
	for (; off + 64 <= CLEARED; off += 64)
		memset(p + off, 0, 64);
	memset(p + off, 0, CLEARED - off);
}

void
mb_request_reset(struct mb_request *req)
{
	if (req->payload_free != NULL)
		req->payload_free(req);
	if (req->result != NULL)
		free(req->result);
	clear_head(req);
	req->reason[0] = '\0';
}

uint64_t
mb_request_client_hash(const uint8_t *client, uint8_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (uint8_t i = 0; i < len; i++) {
		h ^= client[i];
		h *= 1099511628211ull;
	}
	return h ^ len;
}

struct mb_request_pool {
	uint32_t n;
	uint32_t n_free;
	uint32_t *free_stack;
	uint8_t *out; /* 1 while handed out: catches a double put */
	struct mb_request *objs;
};

int
mb_request_pool_create(uint32_t n, int numa_node, struct mb_request_pool **out)
{
	struct mb_request_pool *p;

	*out = NULL;
	if (n == 0)
		return -EINVAL;
	p = mb_env_zalloc(sizeof(*p), numa_node);
	if (p == NULL)
		return -ENOMEM;
	p->objs = mb_env_zalloc((size_t)n * sizeof(*p->objs), numa_node);
	p->free_stack = mb_env_zalloc((size_t)n * sizeof(*p->free_stack), numa_node);
	p->out = mb_env_zalloc(n, numa_node);
	if (p->objs == NULL || p->free_stack == NULL || p->out == NULL) {
		mb_env_free(p->objs);
		mb_env_free(p->free_stack);
		mb_env_free(p->out);
		mb_env_free(p);
		return -ENOMEM;
	}
	p->n = n;
	for (uint32_t i = 0; i < n; i++)
		p->free_stack[i] = n - 1 - i;
	p->n_free = n;
	*out = p;
	return 0;
}

void
mb_request_pool_destroy(struct mb_request_pool **pool)
{
	struct mb_request_pool *p;

	if (pool == NULL || *pool == NULL)
		return;
	p = *pool;
	if (p->n_free != p->n)
		MB_LOG(ERR, "request pool destroyed with %u request(s) still in use",
		       p->n - p->n_free);
	mb_env_free(p->objs);
	mb_env_free(p->free_stack);
	mb_env_free(p->out);
	mb_env_free(p);
	*pool = NULL;
}

struct mb_request *
mb_request_get(struct mb_request_pool *p)
{
	struct mb_request *r;

	if (p->n_free == 0)
		return NULL;
	r = &p->objs[p->free_stack[--p->n_free]];
	p->out[r - p->objs] = 1;
	r->model = MB_REQUEST_NO_MODEL;
	atomic_init(&r->cancel, false);
	return r;
}

void
mb_request_put(struct mb_request_pool *p, struct mb_request *req)
{
	uint32_t idx = (uint32_t)(req - p->objs);

	if (idx >= p->n || !p->out[idx]) {
		MB_LOG_REQ(ERR, req->hdr.request_id, req->hdr.tenant_id,
			   "request %p returned twice or to a pool it does not belong to",
			   (void *)req);
		abort();
	}
	p->out[idx] = 0;
	mb_request_reset(req);
	p->free_stack[p->n_free++] = idx;
}

uint32_t
mb_request_pool_in_use(const struct mb_request_pool *p)
{
	return p->n - p->n_free;
}

const char *
mb_close_reason_name(unsigned int reason)
{
	static const char *const names[MB_CLOSE_COUNT] = {"full", "deadline", "drain"};

	return reason < MB_CLOSE_COUNT ? names[reason] : "unknown";
}

void
mb_results_push(struct mb_ring *results, struct mb_request *req)
{
	void *p = req;

	/* a window is folded into its join; its parent goes on once every window is back */
	if (!MB_REQ_IS_RECLAIM(req) && req->join != NULL) {
		p = req->join->done(req);
		if (p == NULL)
			return;
	}

	while (mb_ring_enqueue_burst(results, &p, 1) == 0) {
		MB_LOG_ONCE(ERR, "results ring full: it should hold every request in flight");
		sched_yield();
	}
}

/* mb_results_push_burst() of a burst holding windows: each folded in, parents pushed */
static void
push_windows(struct mb_ring *results, struct mb_request *const *reqs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		mb_results_push(results, reqs[i]);
}

void
mb_results_push_burst(struct mb_ring *results, struct mb_request *const *reqs, unsigned int n)
{
	unsigned int done = 0;

	for (unsigned int i = 0; i < n; i++)
		if (!MB_REQ_IS_RECLAIM(reqs[i]) && reqs[i]->join != NULL) {
			push_windows(results, reqs, n);
			return;
		}

	while (done < n) {
		unsigned int k =
			mb_ring_enqueue_burst(results, (void *const *)(reqs + done), n - done);

		if (k == 0) {
			MB_LOG_ONCE(ERR,
				    "results ring full: it should hold every request in flight");
			sched_yield();
		}
		done += k;
	}
}
