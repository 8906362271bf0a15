/*
 * identity_bench.c: what mediabatchd costs on top of ZeroMQ itself.
 *
 * A closed loop keeps K requests outstanding and sends N in all, first to a raw ZeroMQ
 * DEALER/ROUTER echo running in this process (it answers each request with a 64-byte header
 * and 4 bytes, exactly the size of identity's response), then to the identity model of a
 * real mediabatchd (started here on free loopback ports, or --endpoint for a running one).
 * The two alternate for --runs rounds; medians of requests/s, p50 and p99 are compared.
 * mediabatchd does strictly more work (validation, queueing, batching, admission, a worker
 * thread, egress, publication), so the ratio is below 1; the first bar (issue #3) is 0.5.
 *
 * Usage: identity_bench [--requests N] [--outstanding K] [--payload BYTES] [--runs R]
 *                       [--endpoint EP | --daemon PATH] [--quick]
 */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "mediabatch/client.h"

#include "mb_bench.h"
#include "mb_e2e.h"

/* ---- the raw echo ---- */

struct echo {
	void *ctx, *sock;
	char endpoint[64];
	atomic_int stop;
	pthread_t thread;
};

static void *
echo_main(void *arg)
{
	struct echo *e = arg;
	uint8_t resp[MB_PROTO_HDR_LEN + 4] = {'M', 'B', 'R', '1', 1};

	while (!atomic_load(&e->stop)) {
		zmq_pollitem_t it = {.socket = e->sock, .events = ZMQ_POLLIN};
		zmq_msg_t id, hdr, payload;

		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		zmq_msg_init(&id);
		zmq_msg_init(&hdr);
		zmq_msg_init(&payload);
		if (zmq_msg_recv(&id, e->sock, 0) >= 0 && zmq_msg_recv(&hdr, e->sock, 0) >= 0 &&
		    zmq_msg_recv(&payload, e->sock, 0) >= 0) {
			/* echo the request id back, like a real response header would */
			if (zmq_msg_size(&hdr) >= 16)
				memcpy(resp + 8, (uint8_t *)zmq_msg_data(&hdr) + 8, 8);
			zmq_msg_send(&id, e->sock, ZMQ_SNDMORE);
			zmq_send(e->sock, resp, MB_PROTO_HDR_LEN, ZMQ_SNDMORE);
			zmq_send(e->sock, resp + MB_PROTO_HDR_LEN, 4, 0);
		}
		zmq_msg_close(&id);
		zmq_msg_close(&hdr);
		zmq_msg_close(&payload);
	}
	return NULL;
}

static int
echo_start(struct echo *e)
{
	size_t len = sizeof(e->endpoint);
	int hwm = 100000;

	e->ctx = zmq_ctx_new();
	e->sock = zmq_socket(e->ctx, ZMQ_ROUTER);
	zmq_setsockopt(e->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(e->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_bind(e->sock, "tcp://127.0.0.1:*") != 0)
		return -1;
	zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
	atomic_init(&e->stop, 0);
	return pthread_create(&e->thread, NULL, echo_main, e);
}

static void
echo_stop(struct echo *e)
{
	atomic_store(&e->stop, 1);
	pthread_join(e->thread, NULL);
	zmq_close(e->sock);
	zmq_ctx_term(e->ctx);
}

/* ---- the closed loop ---- */

struct result {
	double rps, p50_ms, p99_ms;
	long errors;
};

static int
closed_loop(const char *endpoint, long n, int k, uint32_t payload, struct result *out)
{
	struct mb_client_opts o = {.endpoint = endpoint, .sndhwm = 100000};
	struct mb_client *c;
	char err[256];
	double *sent = calloc((size_t)n, sizeof(double)), *lat = calloc((size_t)n, sizeof(double));
	float *body = calloc(payload / 4 + 1, sizeof(float));
	long next = 0, got = 0;
	double t0, deadline;

	if (mb_client_connect(&o, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "identity_bench: %s\n", err);
		return -1;
	}
	out->errors = 0;
	t0 = mb_bench_now();
	deadline = t0 + 120;
	while (got < n && mb_bench_now() < deadline) {
		struct mb_client_response r;

		while (next < n && next - got < k) {
			struct mb_request_hdr h;

			mb_client_tensor_hdr(&h, "identity", 1, (uint64_t)next, 1,
					     (uint16_t)(payload / 4));
			if (mb_client_send(c, &h, body, payload) != 0)
				break;
			sent[next++] = mb_bench_now();
		}
		if (mb_client_recv(c, &r, 1000) != 0)
			continue;
		if (r.hdr.request_id < (uint64_t)next && lat[r.hdr.request_id] == 0) {
			lat[r.hdr.request_id] = mb_bench_now() - sent[r.hdr.request_id];
			got++;
			if (r.hdr.status != MB_STATUS_OK)
				out->errors++;
		}
		mb_client_response_free(&r);
	}
	out->rps = got / (mb_bench_now() - t0);
	qsort(lat, (size_t)n, sizeof(double), mb_bench_cmp_double);
	out->p50_ms = lat[n / 2] * 1000;
	out->p99_ms = lat[(n * 99) / 100] * 1000;
	mb_client_close(&c);
	free(sent);
	free(lat);
	free(body);
	return got == n ? 0 : -1;
}

static double
median_of(struct result *r, int n, int which)
{
	double v[64];

	for (int i = 0; i < n; i++)
		v[i] = which == 0 ? r[i].rps : which == 1 ? r[i].p50_ms : r[i].p99_ms;
	return mb_bench_median(v, n);
}

int
main(int argc, char **argv)
{
	long n = 20000, k = 64, payload = 1024, runs = 5;
	const char *endpoint = NULL, *daemon_path = NULL;
	char self[PATH_MAX], def_daemon[PATH_MAX + 32];
	struct result echo_r[64], mb_r[64];
	struct echo e;
	struct mb_daemon d = {0};
	long errors = 0;
	double ratio;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			n = 2000;
			runs = 1;
		} else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc) {
			n = atol(argv[++i]);
		} else if (strcmp(argv[i], "--outstanding") == 0 && i + 1 < argc) {
			k = atol(argv[++i]);
		} else if (strcmp(argv[i], "--payload") == 0 && i + 1 < argc) {
			payload = atol(argv[++i]);
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atol(argv[++i]);
		} else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
			endpoint = argv[++i];
		} else if (strcmp(argv[i], "--daemon") == 0 && i + 1 < argc) {
			daemon_path = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--requests N] [--outstanding K] [--payload BYTES] "
				"[--runs R] "
				"[--endpoint EP | --daemon PATH] [--quick]\n",
				argv[0]);
			return 2;
		}
	}
	if (n < 100 || k < 1 || k > 100000 || payload < 4 || payload > 4 * 65535 || payload % 4 ||
	    runs < 1 || runs > 64) {
		fprintf(stderr, "identity_bench: requests >= 100, outstanding 1..100000, payload a "
				"multiple of 4 in 4..262140, runs 1..64\n");
		return 2;
	}
	if (endpoint == NULL) {
		ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (daemon_path == NULL && len > 0) {
			self[len] = '\0';
			snprintf(def_daemon, sizeof(def_daemon), "%s/../mediabatchd",
				 dirname(self));
			daemon_path = def_daemon;
		}
		static const char *const quiet[] = {"--log-level", "warning", NULL};

		/* the e2e harness starts it on free loopback ports and waits for /readyz */
		if (daemon_path == NULL || setenv("MB_DAEMON", daemon_path, 1) != 0 ||
		    mb_daemon_start(&d, NULL, quiet) != 0) {
			fprintf(stderr, "identity_bench: cannot start %s\n",
				daemon_path ? daemon_path : "mediabatchd");
			return 1;
		}
		endpoint = d.ingest;
	}
	if (echo_start(&e) != 0) {
		fprintf(stderr, "identity_bench: cannot start the echo\n");
		return 1;
	}
	/* warm-up of both, then alternate */
	closed_loop(e.endpoint, n / 10 > 100 ? n / 10 : 100, (int)k, (uint32_t)payload, &echo_r[0]);
	closed_loop(endpoint, n / 10 > 100 ? n / 10 : 100, (int)k, (uint32_t)payload, &mb_r[0]);
	for (int r = 0; r < runs; r++) {
		if (closed_loop(e.endpoint, n, (int)k, (uint32_t)payload, &echo_r[r]) != 0 ||
		    closed_loop(endpoint, n, (int)k, (uint32_t)payload, &mb_r[r]) != 0) {
			fprintf(stderr, "identity_bench: responses missing\n");
			return 1;
		}
		errors += mb_r[r].errors;
	}
	echo_stop(&e);
	if (d.pid > 0)
		mb_daemon_stop(&d, SIGTERM, 30);

	ratio = median_of(mb_r, (int)runs, 0) / median_of(echo_r, (int)runs, 0);
	printf("identity closed loop: %ld requests per run, %ld outstanding, %ld-byte payload, "
	       "median of %ld interleaved runs\n",
	       n, k, payload, runs);
	printf("%-26s %12s %10s %10s\n", "", "requests/s", "p50 ms", "p99 ms");
	printf("%-26s %12.0f %10.3f %10.3f\n", "raw ZeroMQ echo", median_of(echo_r, (int)runs, 0),
	       median_of(echo_r, (int)runs, 1), median_of(echo_r, (int)runs, 2));
	printf("%-26s %12.0f %10.3f %10.3f\n", "mediabatchd identity",
	       median_of(mb_r, (int)runs, 0), median_of(mb_r, (int)runs, 1),
	       median_of(mb_r, (int)runs, 2));
	printf("throughput ratio (mediabatchd / echo): %.3f; first bar 0.5 ... %s\n", ratio,
	       ratio >= 0.5 ? "met" : "MISSED");
	if (errors != 0)
		printf("(%ld responses were not OK)\n", errors);
	return errors == 0 ? 0 : 1;
}
