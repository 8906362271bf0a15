/*
 * identity_bench.c: what mediabatchd costs on top of ZeroMQ itself.
 *
 * A closed loop keeps K requests outstanding and sends N in all, first to a raw ZeroMQ
 * DEALER/ROUTER echo running in this process (it answers each request with a 64-byte header
 * and 4 bytes, exactly the size of identity's response), then to the identity model of a
 * real mediabatchd (started here on free loopback ports, or --endpoint for a running one).
 * The two alternate for --runs rounds (3); medians of requests/s, p50 and p99 are
 * compared, and each server's CPU time per request (user + system of its whole process,
 * from /proc/PID/stat). mediabatchd does strictly more work (validation, queueing,
 * batching, admission, a worker thread, egress, publication), so the ratio is below 1;
 * the bar (issue 14) is 0.85. --placement passes the daemon's placement policy.
 *
 * --curve (issue 15) adds a second echo and a second daemon with CURVE on (keys made here,
 * the client on the daemon's allow-list), run in the same alternation, and prints what
 * CURVE costs: each server's throughput with CURVE over without.
 *
 * --echo-only SECONDS starts the echo alone, prints its endpoint on a line of its own and
 * keeps it up for SECONDS (1..3600) or until SIGTERM/SIGINT: a baseline for other
 * generators (perf/request_path.sh runs mediabatch-perf's open loop against it, so the
 * machine's and the generator's own tail is measured beside the daemon's).
 *
 * Usage: identity_bench [--requests N] [--outstanding K] [--payload BYTES] [--runs R]
 *                       [--placement P] [--daemon-arg ARG]... [--endpoint EP | --daemon PATH]
 *                       [--curve] [--quick]
 *        identity_bench --echo-only SECONDS
 */
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "mediabatch/client.h"

#include "mb_bench.h"
#include "mb_e2e.h"

/* ---- the raw echo ---- */

/*
 * A single-threaded ZeroMQ ROUTER echo in a process of its own (so that its CPU time, its
 * I/O thread's included, is measured like the daemon's): it reads every message that is
 * there without waiting, answers each with a 64-byte header carrying the request id and 4
 * bytes (identity's response size), and waits in zmq_poll() only when the socket is empty.
 */
struct echo {
	pid_t pid;
	char endpoint[64];
};

/* --curve: the keys of both sides */
static struct mb_curve_keys g_server_keys, g_client_keys;
static struct mb_client_curve g_curve;

static void
echo_main(int wfd, bool curve)
{
	/* a well-formed answer, as identity's: OK, an F32 [1 x 1] result (4 bytes) */
	struct mb_response_hdr rh = {.version = MB_PROTO_VERSION,
				     .status = MB_STATUS_OK,
				     .result_type = MB_RESULT_F32,
				     .rows = 1,
				     .cols = 1,
				     .result_len = 4};
	uint8_t resp[MB_PROTO_HDR_LEN + 4] = {0};
	const float value = 1024.0f;
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_ROUTER);
	int hwm = 100000;
	char ep[64] = "";
	size_t len = sizeof(ep);

	mb_proto_encode_response(&rh, resp);
	memcpy(resp + MB_PROTO_HDR_LEN, &value, 4);

	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (curve) { /* no ZAP handler in this context: CURVE admits every key */
		int one = 1;

		zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
		zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, g_server_keys.secret_key, 40);
	}
	if (zmq_bind(sock, "tcp://127.0.0.1:*") == 0)
		zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len);
	if (write(wfd, ep, sizeof(ep)) != (ssize_t)sizeof(ep))
		_exit(1);
	close(wfd);
	for (;;) {
		zmq_msg_t id, hdr, payload;

		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
			zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};

			zmq_msg_close(&id);
			zmq_poll(&it, 1, 100);
			if (getppid() == 1)
				_exit(0);
			continue;
		}
		zmq_msg_init(&hdr);
		zmq_msg_init(&payload);
		if (zmq_msg_recv(&hdr, sock, 0) >= 0 && zmq_msg_recv(&payload, sock, 0) >= 0) {
			/* echo the request id back, like a real response header would */
			if (zmq_msg_size(&hdr) >= 16)
				memcpy(resp + 8, (uint8_t *)zmq_msg_data(&hdr) + 8, 8);
			zmq_msg_send(&id, sock, ZMQ_SNDMORE);
			zmq_send(sock, resp, MB_PROTO_HDR_LEN, ZMQ_SNDMORE);
			zmq_send(sock, resp + MB_PROTO_HDR_LEN, 4, 0);
		}
		zmq_msg_close(&id);
		zmq_msg_close(&hdr);
		zmq_msg_close(&payload);
	}
}

static int
echo_start(struct echo *e, bool curve)
{
	int p[2];

	if (pipe(p) != 0)
		return -1;
	e->pid = fork();
	if (e->pid < 0)
		return -1;
	if (e->pid == 0) {
		close(p[0]);
		echo_main(p[1], curve);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], e->endpoint, sizeof(e->endpoint)) != (ssize_t)sizeof(e->endpoint) ||
	    e->endpoint[0] == '\0') {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return 0;
}

static void
echo_stop(struct echo *e)
{
	kill(e->pid, SIGKILL);
	waitpid(e->pid, NULL, 0);
}

/* CPU seconds (user + system, every thread) process @p pid has used so far. */
static double
cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return 0;
	/* after "pid (comm)": state is field 3; utime and stime are fields 14 and 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU's clock rate, for cycles per request (from /proc/cpuinfo; 0 if unknown). */
static double
cpu_hz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return mhz * 1e6;
}

/* ---- the closed loop ---- */

struct result {
	double rps, p50_ms, p99_ms;
	double cpu_us; /* the server's CPU time per request */
	long errors;
};

static int
closed_loop(const char *endpoint, pid_t server, long n, int k, uint32_t payload, bool curve,
	    struct result *out)
{
	double cpu0 = cpu_seconds(server);
	struct mb_client_opts o = {.endpoint = endpoint, .sndhwm = 100000};

	if (curve)
		o.curve = g_curve;
	struct mb_client *c;
	char err[256];
	double *sent = calloc((size_t)n, sizeof(double)), *lat = calloc((size_t)n, sizeof(double));
	float *body = calloc(payload / 4 + 1, sizeof(float));
	long next = 0, got = 0;
	double t0, deadline;

	if (sent == NULL || lat == NULL || body == NULL) {
		fprintf(stderr, "identity_bench: out of memory for %ld requests\n", n);
		c = NULL;
		goto fail;
	}
	if (mb_client_connect(&o, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "identity_bench: %s\n", err);
		goto fail;
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
	out->cpu_us = (cpu_seconds(server) - cpu0) * 1e6 / (double)(got ? got : 1);
	qsort(lat, (size_t)n, sizeof(double), mb_bench_cmp_double);
	out->p50_ms = lat[n / 2] * 1000;
	out->p99_ms = lat[(n * 99) / 100] * 1000;
	mb_client_close(&c);
	free(sent);
	free(lat);
	free(body);
	return got == n ? 0 : -1;
fail:
	free(sent);
	free(lat);
	free(body);
	return -1;
}

static double
median_of(struct result *r, int n, int which)
{
	double v[64];

	for (int i = 0; i < n; i++)
		v[i] = which == 0   ? r[i].rps
		       : which == 1 ? r[i].p50_ms
		       : which == 2 ? r[i].p99_ms
				    : r[i].cpu_us;
	return mb_bench_median(v, n);
}

/* --echo-only: the echo alone until @p seconds pass or SIGTERM/SIGINT. */
static volatile sig_atomic_t g_stop;

static void
on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static int
echo_only(long seconds)
{
	struct echo e;

	if (seconds < 1 || seconds > 3600) {
		fprintf(stderr, "identity_bench: --echo-only takes 1..3600 seconds\n");
		return 2;
	}
	if (echo_start(&e, false) != 0) {
		fprintf(stderr, "identity_bench: cannot start the echo\n");
		return 1;
	}
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	printf("%s\n", e.endpoint);
	fflush(stdout);
	for (long ms = seconds * 1000; ms > 0 && !g_stop; ms -= 100)
		usleep(100 * 1000);
	echo_stop(&e);
	return 0;
}

int
main(int argc, char **argv)
{
	long n = 50000, k = 64, payload = 1024, runs = 3;
	const char *endpoint = NULL, *daemon_path = NULL, *placement = NULL;
	const char *extra[16];
	int n_extra = 0;
	char self[PATH_MAX], def_daemon[PATH_MAX + 32];
	struct result echo_r[64], mb_r[64], echo_c[64], mb_c[64];
	struct echo e, ec = {0};
	struct mb_daemon d = {0}, dc = {0};
	bool curve = false;
	char keydir[] = "/tmp/mb-bench-keys-XXXXXX";
	long errors = 0;
	double ratio, hz;
	pid_t server_pid = 0;

	if (argc == 3 && strcmp(argv[1], "--echo-only") == 0)
		return echo_only(atol(argv[2]));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--curve") == 0) {
			curve = true;
		} else if (strcmp(argv[i], "--quick") == 0) {
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
		} else if (strcmp(argv[i], "--placement") == 0 && i + 1 < argc) {
			placement = argv[++i];
		} else if (strcmp(argv[i], "--daemon-arg") == 0 && i + 1 < argc && n_extra < 16) {
			extra[n_extra++] = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--requests N] [--outstanding K] [--payload BYTES] "
				"[--runs R] [--placement auto|single|per-stage] [--daemon-arg "
				"ARG]... "
				"[--endpoint EP | --daemon PATH] [--curve] [--quick]\n"
				"       %s --echo-only SECONDS\n",
				argv[0], argv[0]);
			return 2;
		}
	}
	if (n < 100 || k < 1 || k > 100000 || payload < 4 || payload > 4 * 65535 || payload % 4 ||
	    runs < 1 || runs > 64) {
		fprintf(stderr, "identity_bench: requests >= 100, outstanding 1..100000, payload a "
				"multiple of 4 in 4..262140, runs 1..64\n");
		return 2;
	}
	if (curve && endpoint != NULL) {
		fprintf(stderr, "identity_bench: --curve starts its own daemons (no --endpoint)\n");
		return 2;
	}
	if (curve) {
		char base[128], err[512];

		if (mkdtemp(keydir) == NULL)
			return 1;
		snprintf(base, sizeof(base), "%s/server", keydir);
		if (mb_curve_keygen(base, "server", &g_server_keys, err, sizeof(err)) < 0) {
			fprintf(stderr, "identity_bench: %s\n", err);
			return 1;
		}
		snprintf(base, sizeof(base), "%s/bench", keydir);
		if (mb_curve_keygen(base, "bench", &g_client_keys, err, sizeof(err)) < 0) {
			fprintf(stderr, "identity_bench: %s\n", err);
			return 1;
		}
		g_curve = (struct mb_client_curve){.server_key = g_server_keys.public_key,
						   .public_key = g_client_keys.public_key,
						   .secret_key = g_client_keys.secret_key};
	}
	/* the echoes first: forked before this process has any ZeroMQ context or thread */
	if (echo_start(&e, false) != 0 || (curve && echo_start(&ec, true) != 0)) {
		fprintf(stderr, "identity_bench: cannot start the echo\n");
		return 1;
	}
	if (endpoint == NULL) {
		ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
		const char *args[24] = {"--log-level", "warning"};
		int na = 2;

		if (placement != NULL) {
			args[na++] = "--placement";
			args[na++] = placement;
		}
		for (int i = 0; i < n_extra; i++)
			args[na++] = extra[i];
		args[na] = NULL;
		if (daemon_path == NULL && len > 0) {
			self[len] = '\0';
			snprintf(def_daemon, sizeof(def_daemon), "%s/../mediabatchd",
				 dirname(self));
			daemon_path = def_daemon;
		}
		/* the e2e harness starts it on free loopback ports and waits for /readyz */
		if (daemon_path == NULL || setenv("MB_DAEMON", daemon_path, 1) != 0 ||
		    mb_daemon_start(&d, NULL, args) != 0) {
			fprintf(stderr, "identity_bench: cannot start %s\n",
				daemon_path ? daemon_path : "mediabatchd");
			echo_stop(&e);
			return 1;
		}
		endpoint = d.ingest;
		server_pid = d.pid;
		if (curve) {
			char yaml[1024];

			snprintf(yaml, sizeof(yaml),
				 "security:\n"
				 "  mode: curve\n"
				 "  server_key: %s/server.key_secret\n"
				 "  clients:\n"
				 "    - name: bench\n"
				 "      public_key: \"%s\"\n"
				 "      tenants: [1]\n",
				 keydir, g_client_keys.public_key);
			if (mb_daemon_start(&dc, yaml, args) != 0) {
				fprintf(stderr, "identity_bench: cannot start the CURVE daemon\n");
				echo_stop(&e);
				echo_stop(&ec);
				mb_daemon_stop(&d, SIGTERM, 30);
				return 1;
			}
		}
	}
	/* warm-up of both, then alternate */
	closed_loop(e.endpoint, e.pid, n / 10 > 100 ? n / 10 : 100, (int)k, (uint32_t)payload,
		    false, &echo_r[0]);
	closed_loop(endpoint, server_pid, n / 10 > 100 ? n / 10 : 100, (int)k, (uint32_t)payload,
		    false, &mb_r[0]);
	if (curve) {
		closed_loop(ec.endpoint, ec.pid, n / 10 > 100 ? n / 10 : 100, (int)k,
			    (uint32_t)payload, true, &echo_c[0]);
		closed_loop(dc.ingest, dc.pid, n / 10 > 100 ? n / 10 : 100, (int)k,
			    (uint32_t)payload, true, &mb_c[0]);
	}
	for (int r = 0; r < runs; r++) {
		if (closed_loop(e.endpoint, e.pid, n, (int)k, (uint32_t)payload, false,
				&echo_r[r]) != 0 ||
		    closed_loop(endpoint, server_pid, n, (int)k, (uint32_t)payload, false,
				&mb_r[r]) != 0 ||
		    (curve && (closed_loop(ec.endpoint, ec.pid, n, (int)k, (uint32_t)payload, true,
					   &echo_c[r]) != 0 ||
			       closed_loop(dc.ingest, dc.pid, n, (int)k, (uint32_t)payload, true,
					   &mb_c[r]) != 0))) {
			fprintf(stderr, "identity_bench: responses missing\n");
			echo_stop(&e);
			if (curve)
				echo_stop(&ec);
			return 1;
		}
		errors += mb_r[r].errors + (curve ? mb_c[r].errors : 0);
		fprintf(stderr, "run %d: echo %.0f req/s, mediabatchd %.0f req/s (%.3f)", r + 1,
			echo_r[r].rps, mb_r[r].rps, mb_r[r].rps / echo_r[r].rps);
		if (curve)
			fprintf(stderr, "; CURVE: echo %.0f, mediabatchd %.0f", echo_c[r].rps,
				mb_c[r].rps);
		fprintf(stderr, "\n");
	}
	echo_stop(&e);
	if (curve)
		echo_stop(&ec);
	if (d.pid > 0)
		mb_daemon_stop(&d, SIGTERM, 30);
	if (dc.pid > 0)
		mb_daemon_stop(&dc, SIGTERM, 30);
	if (curve) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", keydir);
		if (system(cmd) != 0)
			fprintf(stderr, "identity_bench: could not remove %s\n", keydir);
	}

	ratio = median_of(mb_r, (int)runs, 0) / median_of(echo_r, (int)runs, 0);
	hz = cpu_hz();
	printf("identity closed loop: %ld requests per run, %ld outstanding, %ld-byte payload, "
	       "median of %ld alternating runs%s%s\n",
	       n, k, payload, runs, placement ? ", placement " : "", placement ? placement : "");
	printf("%-26s %12s %10s %10s %12s %14s\n", "", "requests/s", "p50 ms", "p99 ms",
	       "server CPU", "server cycles");
	printf("%-26s %12.0f %10.3f %10.3f %9.2f us %14.0f\n", "raw ZeroMQ echo",
	       median_of(echo_r, (int)runs, 0), median_of(echo_r, (int)runs, 1),
	       median_of(echo_r, (int)runs, 2), median_of(echo_r, (int)runs, 3),
	       median_of(echo_r, (int)runs, 3) * hz / 1e6);
	if (server_pid > 0)
		printf("%-26s %12.0f %10.3f %10.3f %9.2f us %14.0f\n", "mediabatchd identity",
		       median_of(mb_r, (int)runs, 0), median_of(mb_r, (int)runs, 1),
		       median_of(mb_r, (int)runs, 2), median_of(mb_r, (int)runs, 3),
		       median_of(mb_r, (int)runs, 3) * hz / 1e6);
	else
		printf("%-26s %12.0f %10.3f %10.3f %12s %14s\n", "mediabatchd identity",
		       median_of(mb_r, (int)runs, 0), median_of(mb_r, (int)runs, 1),
		       median_of(mb_r, (int)runs, 2), "n/a", "n/a");
	if (curve) {
		printf("%-26s %12.0f %10.3f %10.3f %9.2f us %14.0f\n", "raw ZeroMQ echo, CURVE",
		       median_of(echo_c, (int)runs, 0), median_of(echo_c, (int)runs, 1),
		       median_of(echo_c, (int)runs, 2), median_of(echo_c, (int)runs, 3),
		       median_of(echo_c, (int)runs, 3) * hz / 1e6);
		printf("%-26s %12.0f %10.3f %10.3f %9.2f us %14.0f\n", "mediabatchd, CURVE",
		       median_of(mb_c, (int)runs, 0), median_of(mb_c, (int)runs, 1),
		       median_of(mb_c, (int)runs, 2), median_of(mb_c, (int)runs, 3),
		       median_of(mb_c, (int)runs, 3) * hz / 1e6);
	}
	printf("(server CPU: user + system time of the server process, every thread, per "
	       "request; cycles at the %.0f MHz /proc/cpuinfo reports)\n",
	       hz / 1e6);
	printf("throughput ratio (mediabatchd / echo): %.3f; bar 0.85 ... %s\n", ratio,
	       ratio >= 0.85 ? "met" : "MISSED");
	if (curve) {
		printf("CURVE / plaintext throughput: mediabatchd %.3f, raw echo %.3f; "
		       "mediabatchd with CURVE / echo with CURVE: %.3f\n",
		       median_of(mb_c, (int)runs, 0) / median_of(mb_r, (int)runs, 0),
		       median_of(echo_c, (int)runs, 0) / median_of(echo_r, (int)runs, 0),
		       median_of(mb_c, (int)runs, 0) / median_of(echo_c, (int)runs, 0));
	}
	if (errors != 0)
		printf("(%ld responses were not OK)\n", errors);
	return errors == 0 ? 0 : 1;
}
