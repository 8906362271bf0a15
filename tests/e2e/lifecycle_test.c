/*
 * lifecycle_test.c (e2e): deadlines, cancels, VRAM admission under mixed load, the drain on
 * SIGTERM with work in flight, the hard stop (second signal, drain timeout), and start-up
 * errors (bad config, endpoint in use).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_test.h"

static int
recv_status(struct mb_client *c, uint64_t *id, char *reason, size_t len, int ms)
{
	struct mb_client_response r;
	int st;

	if (mb_client_recv(c, &r, ms) != 0)
		return -1;
	st = r.hdr.status;
	if (id != NULL)
		*id = r.hdr.request_id;
	if (reason != NULL)
		snprintf(reason, len, "%s", r.hdr.status == MB_STATUS_OK ? "" : (char *)r.data);
	mb_client_response_free(&r);
	return st;
}

static int
send_tone(struct mb_client *c, uint64_t id, double seconds, uint32_t timeout_ms)
{
	struct mb_request_hdr h;
	uint32_t bytes;
	uint8_t *pcm = mb_e2e_tone(seconds, &bytes);
	int rc;

	mb_client_audio_hdr(&h, "logmel", 3, id, MB_MEDIA_PCM_S16LE, 16000, bytes);
	h.timeout_ms = timeout_ms;
	rc = mb_client_send(c, &h, pcm, bytes);
	free(pcm);
	return rc;
}

static void
test_deadline_and_cancel(void)
{
	struct mb_daemon d;
	struct mb_client *c;
	char reason[256];
	uint64_t id;
	int by[MB_STATUS_COUNT] = {0}, cancelled_ids = 0;

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d, "models:\n  - name: logmel\n    max_delay_us: 400000\n", NULL),
		0);
	c = mb_e2e_client(&d, NULL);
	/* A 20 ms deadline on a model that waits 400 ms to fill a batch: TIMEOUT, not run. */
	CU_ASSERT_EQUAL(send_tone(c, 1, 0.5, 20), 0);
	CU_ASSERT_EQUAL(recv_status(c, &id, reason, sizeof(reason), 10000), MB_STATUS_TIMEOUT);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "deadline passed"));
	/* Ten queued, five cancelled: those five CANCELLED, the rest OK. */
	for (uint64_t i = 10; i < 20; i++)
		CU_ASSERT_EQUAL(send_tone(c, i, 0.5, 0), 0);
	for (uint64_t i = 10; i < 15; i++)
		CU_ASSERT_EQUAL(mb_client_cancel(c, 3, i), 0);
	for (int i = 0; i < 10; i++) {
		int st = recv_status(c, &id, reason, sizeof(reason), 10000);

		CU_ASSERT_FATAL(st >= 0);
		by[st]++;
		if (st == MB_STATUS_CANCELLED && id >= 10 && id < 15)
			cancelled_ids++;
	}
	CU_ASSERT_EQUAL(by[MB_STATUS_CANCELLED], 5);
	CU_ASSERT_EQUAL(cancelled_ids, 5);
	CU_ASSERT_EQUAL(by[MB_STATUS_OK], 5);
	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static void
test_cli_cancel_after(void)
{
	struct mb_daemon d;
	char out[4096];
	const char *args[] = {"send", "--endpoint",	   NULL, "--tone",
			      "440",  "--count",	   "3",	 "--concurrency",
			      "3",    "--cancel-after-ms", "5",	 NULL};

	/* the batch waits 3 s for company: the cancels, 5 ms after each send, come first even
	 * from an instrumented CLI on a loaded machine (500 ms once was not enough under TSan) */
	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d, "models:\n  - name: logmel\n    max_delay_us: 3000000\n", NULL),
		0);
	args[2] = d.ingest;
	CU_ASSERT_EQUAL(mb_e2e_cli(args, out, sizeof(out)), 1); /* not all OK */
	if (strstr(out, "CANCELLED=3") == NULL)
		printf("\n    the CLI said:\n%s", out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CANCELLED=3"));
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* ---- admission ---- */

struct stream {
	const struct mb_daemon *d;
	atomic_int *stop;
	int ok, other, answered_after_big;
	atomic_int *big_sent;
};

static void *
small_stream(void *arg)
{
	struct stream *s = arg;
	struct mb_client *c = mb_e2e_client(s->d, NULL);
	uint64_t next = 0;
	int outstanding = 0;
	double deadline = mb_e2e_now() + 60;

	while (!atomic_load(s->stop) && mb_e2e_now() < deadline && next < 5000) {
		int st;

		while (outstanding < 3) {
			send_tone(c, next++, 1.0, 0);
			outstanding++;
		}
		st = recv_status(c, NULL, NULL, 0, 1000);
		if (st < 0)
			continue;
		outstanding--;
		if (st == MB_STATUS_OK)
			s->ok++;
		else
			s->other++;
		if (atomic_load(s->big_sent))
			s->answered_after_big++;
	}
	while (outstanding > 0 && recv_status(c, NULL, NULL, 0, 10000) >= 0)
		outstanding--;
	mb_client_close(&c);
	return NULL;
}

static void
test_admission_capacity_and_fairness(void)
{
	struct mb_daemon d;
	struct stream s[3];
	pthread_t t[3];
	atomic_int stop = 0, big_sent = 0;
	struct mb_client *c;
	double t_big, waited;
	double peak;
	int st, over_capacity = 0;

	/* 1 s clips cost 1 + 1 units a batch; a 30 s clip 1 + 15 = 16: the whole device. */
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "models:\n  - name: logmel\n    max_delay_us: 1000\n"
					      "    item_units_per_second: 0.5\n",
					      NULL),
			      0);
	for (int i = 0; i < 3; i++) {
		s[i] = (struct stream){.d = &d, .stop = &stop, .big_sent = &big_sent};
		pthread_create(&t[i], NULL, small_stream, &s[i]);
	}
	usleep(300000); /* the small stream is flowing */
	c = mb_e2e_client(&d, NULL);
	t_big = mb_e2e_now();
	atomic_store(&big_sent, 1);
	CU_ASSERT_EQUAL(send_tone(c, 424242, 30.0, 60000), 0);
	for (int i = 0; i < 10; i++) { /* sample while the stream and the big one compete */
		double in_use =
			mb_daemon_metric(&d, "mediabatch_vram_units_in_use{device=\"cpu0\"}");

		if (in_use < 0 || in_use > 16)
			over_capacity++;
		usleep(20000);
	}
	st = recv_status(c, NULL, NULL, 0, 60000);
	waited = mb_e2e_now() - t_big;
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	peak = mb_daemon_metric(&d, "mediabatch_vram_units_peak{device=\"cpu0\"}");
	printf("\n    the 16-unit request waited %.3f s while %d+%d+%d small ones ran; peak %g/16 "
	       "units",
	       waited, s[0].ok, s[1].ok, s[2].ok, peak);
	CU_ASSERT_EQUAL(st, MB_STATUS_OK); /* not starved */
	CU_ASSERT(s[0].answered_after_big + s[1].answered_after_big + s[2].answered_after_big > 0);
	CU_ASSERT_EQUAL(s[0].other + s[1].other + s[2].other, 0);
	CU_ASSERT_EQUAL(over_capacity, 0);
	CU_ASSERT_EQUAL(peak, 16); /* the big one held the whole device, never more */
	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static void
test_too_large_for_device(void)
{
	struct mb_daemon d;
	struct mb_client *c;
	char reason[256];

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d,
					      "models:\n  - name: logmel\n"
					      "    item_units_per_second: 1.0\n",
					      NULL),
			      0);
	c = mb_e2e_client(&d, NULL);
	CU_ASSERT_EQUAL(send_tone(c, 1, 30.0, 0), 0);
	CU_ASSERT_EQUAL(recv_status(c, NULL, reason, sizeof(reason), 10000), MB_STATUS_TOO_LARGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "needs 31 device units"));
	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* ---- drain and stop ---- */

struct drain_result {
	int by[MB_STATUS_COUNT];
	int answered, dup;
};

/* Send @n 30 s clips, signal, collect. */
static int
run_drain(const char *yaml, int n, int second_signal_ms, struct drain_result *res,
	  int *late_unavailable)
{
	struct mb_daemon d;
	struct mb_client *c;
	uint8_t *seen = calloc((size_t)n, 1);
	int exit_status;

	memset(res, 0, sizeof(*res));
	if (mb_daemon_start(&d, yaml, NULL) != 0)
		return -100;
	c = mb_e2e_client(&d, NULL);
	for (int i = 0; i < n; i++)
		send_tone(c, (uint64_t)i, 30.0, 0);
	for (int i = 0; i < 5000; i++) { /* until every request was received (bounded) */
		if (mb_daemon_metric(&d, "mediabatch_requests_total{model=\"logmel\",transport="
					 "\"zmq\"}") >= n)
			break;
		usleep(1000);
	}
	mb_daemon_signal(&d, SIGTERM);
	if (second_signal_ms >= 0) {
		/* Standard signals do not queue: two sent at once may arrive as one. Wait until
		 * the first is being handled (bounded), then send the second. */
		for (int i = 0; i < 5000 && mb_daemon_metric(&d, "mediabatch_draining") != 1; i++)
			usleep(1000);
		usleep((useconds_t)second_signal_ms * 1000);
		mb_daemon_signal(&d, SIGTERM);
	}
	if (late_unavailable != NULL) { /* new work while draining */
		char reason[256];
		uint64_t id;

		send_tone(c, 1000000, 1.0, 0);
		*late_unavailable = 0;
		for (int k = 0; k < n + 1; k++) {
			int st = recv_status(c, &id, reason, sizeof(reason), 20000);

			if (st < 0)
				break;
			if (id == 1000000) {
				*late_unavailable = st == MB_STATUS_UNAVAILABLE &&
						    strstr(reason, "shutting down") != NULL;
				continue;
			}
			if (id < (uint64_t)n && !seen[id]++) {
				res->answered++;
				res->by[st]++;
			} else {
				res->dup++;
			}
		}
	}
	while (res->answered < n) {
		uint64_t id;
		int st = recv_status(c, &id, NULL, 0, 20000);

		if (st < 0)
			break;
		if (id < (uint64_t)n && !seen[id]++) {
			res->answered++;
			res->by[st]++;
		} else if (id < (uint64_t)n) {
			res->dup++;
		}
	}
	exit_status = mb_daemon_wait(&d, 60);
	if (res->answered < n) /* for the record: what the daemon said */
		printf("\n    only %d of %d answered; exit status %d; the daemon's log:\n%s",
		       res->answered, n, exit_status, mb_daemon_log(&d));
	mb_client_close(&c);
	free(seen);
	return exit_status;
}

/*
 * Nothing runs before the signal (a 5 s batch delay, max_batch above the request count),
 * and each 30 s clip needs the whole device (1 + 15 units), so after the drain's flush the
 * batches run one at a time: about a second of work that the stop tests can interrupt.
 */
#define HELD_WORK                                                                                  \
	"models:\n  - name: logmel\n    max_batch: 64\n    max_delay_us: 5000000\n"                \
	"    item_units_per_second: 0.5\n"

static void
test_drain_answers_everything(void)
{
	struct drain_result r;
	int late = 0;
	int rc = run_drain("service:\n  drain_timeout_ms: 60000\n" HELD_WORK, 24, -1, &r, &late);

	printf("\n    drain: %d answered: OK %d, UNAVAILABLE %d, CANCELLED %d; late request "
	       "UNAVAILABLE: %s",
	       r.answered, r.by[MB_STATUS_OK], r.by[MB_STATUS_UNAVAILABLE],
	       r.by[MB_STATUS_CANCELLED], late ? "yes" : "no");
	CU_ASSERT_EQUAL(rc, 0); /* clean drain (and clean under LeakSanitizer) */
	CU_ASSERT_EQUAL(r.answered, 24);
	CU_ASSERT_EQUAL(r.dup, 0);
	CU_ASSERT_EQUAL(
		r.by[MB_STATUS_OK] + r.by[MB_STATUS_UNAVAILABLE] + r.by[MB_STATUS_CANCELLED], 24);
	CU_ASSERT_EQUAL(r.by[MB_STATUS_OK], 24); /* accepted before the signal: all run */
}

static void
test_drain_timeout_stops_hard(void)
{
	struct drain_result r;
	int rc = run_drain("service:\n  drain_timeout_ms: 1\n" HELD_WORK, 48, -1, &r, NULL);

	printf("\n    drain timeout 1 ms: %d answered: OK %d, CANCELLED %d, UNAVAILABLE %d",
	       r.answered, r.by[MB_STATUS_OK], r.by[MB_STATUS_CANCELLED],
	       r.by[MB_STATUS_UNAVAILABLE]);
	CU_ASSERT_EQUAL(rc, 3);		 /* cut short, but... */
	CU_ASSERT_EQUAL(r.answered, 48); /* ...every request answered */
	CU_ASSERT_EQUAL(r.dup, 0);
	CU_ASSERT(r.by[MB_STATUS_CANCELLED] >= 1);
}

/* drain_timeout_ms 0 on an idle daemon: nothing to cut, so a clean drain and exit 0 (it
 * exited 3, "drain cut short", with nothing cancelled) */
static void
test_idle_drain_timeout_zero(void)
{
	struct mb_daemon d;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "service:\n  drain_timeout_ms: 0\n", NULL), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "stopped: every request answered, clean "
							 "drain"));
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&d), "request(s) left")); /* nothing cut */
}

/* Whether process @p pid has exited (a zombie not yet reaped), without reaping it. */
static bool
exited(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool z = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
		z = p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	fclose(f);
	return z;
}

/*
 * A client that keeps sending through the drain (every 20 ms, each answered UNAVAILABLE)
 * keeps the ROUTER from going quiet, but only up to drain_timeout_ms: then the front door
 * stops reading and, with nothing in flight, the drain ends clean, exit 0. (It waited for the
 * sender to stop: under systemd, Kubernetes or podman, a SIGKILL came first.)
 */
static void
test_drain_bounded_while_clients_send(void)
{
	struct mb_daemon d;
	struct mb_client *c;
	struct mb_request_hdr h;
	float t[4] = {1, 2, 3, 4};
	double t0, t_exit = -1;
	int unavailable = 0, rc;
	uint64_t id = 0;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "service:\n  drain_timeout_ms: 1000\n", NULL), 0);
	c = mb_e2e_client(&d, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mb_daemon_signal(&d, SIGTERM);
	t0 = mb_e2e_now();
	while (mb_e2e_now() - t0 < 8.0) {
		int st;

		mb_client_tensor_hdr(&h, "identity", 3, ++id, 1, 4);
		mb_client_send(c, &h, t, sizeof(t));
		while ((st = recv_status(c, NULL, NULL, 0, 0)) >= 0)
			unavailable += st == MB_STATUS_UNAVAILABLE;
		if (exited(d.pid)) {
			t_exit = mb_e2e_now() - t0;
			break;
		}
		usleep(20000);
	}
	rc = mb_daemon_wait(&d, 10);
	printf("\n    %" PRIu64 " requests sent through the drain, %d answered UNAVAILABLE; the "
	       "daemon exited %.2f s after SIGTERM (drain_timeout_ms 1000), status %d",
	       id, unavailable, t_exit, rc);
	CU_ASSERT(t_exit > 0.9 && t_exit < 4.0);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(unavailable >= 10);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "with nothing in flight: the front door "
							 "stops waiting"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "clean drain"));
	mb_client_close(&c);
}

static void
test_second_signal_stops_hard(void)
{
	struct drain_result r;
	int rc = run_drain("service:\n  drain_timeout_ms: 60000\n" HELD_WORK, 48, 0, &r, NULL);

	printf("\n    second signal: %d answered: OK %d, CANCELLED %d", r.answered,
	       r.by[MB_STATUS_OK], r.by[MB_STATUS_CANCELLED]);
	CU_ASSERT_EQUAL(rc, 3);
	CU_ASSERT_EQUAL(r.answered, 48);
	CU_ASSERT_EQUAL(r.dup, 0);
	CU_ASSERT(r.by[MB_STATUS_CANCELLED] >= 1);
}

/* ---- start-up errors ---- */

/* --check of @p path holding @p yaml (CUDA off) refuses it: the DPDK heap is too small,
 * naming @p key. */
static void
check_heap_refused(const char *path, const char *yaml, const char *key)
{
	const char *check[] = {"--config", path, "--check", NULL};
	char out[4096];
	int fd = open(path, O_WRONLY | O_TRUNC);

	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "%sdevices:\n  cuda: {mode: \"off\"}\n", yaml);
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "the DPDK heap is too small"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, key));
}

static void
test_config_errors(void)
{
	char out[4096], bad[] = "/tmp/mb_e2e_bad_XXXXXX", good[] = "/tmp/mb_e2e_good_XXXXXX";
	const char *check_bad[] = {"--config", bad, "--check", NULL};
	const char *check_good[] = {"--config", good, "--check", NULL};
	const char *bad_flag[] = {"--drain-timeout", "soon", NULL};
	int fd;

	fd = mkstemp(bad);
	CU_ASSERT(write(fd, "models:\n  - name: logmel\n    max_batch: 0\n", 41) == 41);
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, bad));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "models[0].max_batch: 0 is out of range 1..1024"));
	fd = mkstemp(good);
	CU_ASSERT(write(fd, "models:\n  - name: whisperish\n", 29) == 29);
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_good, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'whisperish' is not a model of this build"));
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(bad_flag, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--drain-timeout"));
	/* more request objects than eal.memory_mb holds: --check says so (the start would
	 * fail on it), and names the key */
	check_heap_refused(bad, "service:\n  max_inflight: 1048576\n",
			   "service.max_inflight 1048576");
	/* and the UDP payload buffers (udp.buffer_mb per rx queue: 46 MiB with the defaults),
	 * which --check left out: 48 MiB passed it and failed the start */
	check_heap_refused(bad,
			   "eal:\n  memory_mb: 48\nudp:\n  ports:\n    - device: net_null0\n"
			   "      address: 192.0.2.1\n",
			   "udp.buffer_mb for 1 rx queue(s): 46 MiB");
	/* without a UDP port, the line has no UDP parts (it named 0 MiB of each) */
	check_heap_refused(
		bad, "service:\n  max_inflight: 1048576\n",
		"(request objects for service.max_inflight 1048576: 888 MiB; rate-limit "
		"tables for tenants.max_tenants 4096: 0 MiB) of eal.memory_mb (256 MiB)");
	/* eal.args with --no-huge fix the heap at -m (64 MiB without it): the UDP parts do not
	 * fit in 64 MiB (--check said "the hugepages eal.args gives" and passed; the start
	 * failed on the payload buffers), and the message says where to raise it */
	check_heap_refused(bad,
			   "eal:\n  args: [--no-huge, --no-pci]\nudp:\n  ports:\n"
			   "    - device: net_null0\n      address: 192.0.2.1\n",
			   "of the --no-huge memory of eal.args (64 MiB: its -m, 64 without): "
			   "raise -m in eal.args");
	/* an empty weights_dir: the reason says where it looked and what to do (it said
	 * "<dir>/whisper.safetensors: No such file or directory"); an explicit weights path
	 * keeps the open's own reason */
	{
		char empty[] = "/tmp/mb_e2e_weights_XXXXXX", want[256];

		CU_ASSERT_FATAL(mkdtemp(empty) != NULL);
		fd = open(bad, O_WRONLY | O_TRUNC);
		CU_ASSERT_FATAL(fd >= 0);
		dprintf(fd, "weights_dir: %s\nmodels:\n  - name: clap\n    weights: %s/c.st\n",
			empty, empty);
		close(fd);
		CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 2);
		snprintf(want, sizeof(want),
			 "model whisper: failed to load: no whisper/ nor whisper.safetensors in %s "
			 "(name the checkpoint in models[].weights or weights_dir; "
			 "mediabatch-weights --out DIR writes placeholders)",
			 empty);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
		snprintf(want, sizeof(want), "model clap: failed to load: %s/c.st: No such file",
			 empty);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
		if (strstr(out, want) == NULL)
			printf("\n    got: %s", out);
		rmdir(empty);
	}
	/* CURVE settings under plaintext do nothing: --check passes with a warning (it said
	 * nothing, and an operator who forgot mode: curve ran open) */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "security:\n  mode: plaintext\n  server_key: /nonexistent/server.key_secret\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
				      "WARNING: security.clients or security.server_key is "
				      "set, but security.mode is plaintext, so they do nothing"));
	/* an option DPDK does not know: --check refuses it (the start stopped at it) */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "eal:\n  args: [--no-huge, --no-pci, --no-such-flag]\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "eal.args[2]: '--no-such-flag' is not an EAL option"));
	/* so do rate-limit tables whose buckets alone fit but not with their index (4M tenants:
	 * 122 MiB of buckets, 282 MiB with the index; the start fails on it) */
	check_heap_refused(bad, "tenants:\n  max_tenants: 4000000\n",
			   "tenants.max_tenants 4000000");
	/* CPU never and CUDA auto on a host without a usable GPU: the start here would
	 * disable every model; --check says so as a warning about this host and passes (the
	 * file may be for a GPU node); on a host with a GPU it names the GPUs */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "devices:\n  cpu: {serve: never}\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	if (strstr(out, "GPU(s) (devices.cpu.serve never)") == NULL) {
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "WARNING: devices on this host: "));
		CU_ASSERT_PTR_NOT_NULL(
			strstr(out, "devices.cpu.serve is never and no GPU is in use"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "every model would start disabled"));
	}
	/* devices.cuda.gpus on a host without a usable GPU: ignored, and --check says so (it
	 * said nothing); on a host with GPU 0 it names the GPU */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "devices:\n  cuda: {gpus: [0]}\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	if (strstr(out, "devices: 1 GPU(s)") == NULL)
		CU_ASSERT_PTR_NOT_NULL(strstr(out,
					      "devices.cuda.gpus lists 1 GPU(s), but no GPU is "
					      "usable here"));
	/* udp.ports[].cpus that the placement cannot apply (its rx queue shares the one
	 * thread) or that no thread can bind to (outside the affinity): --check says so (both
	 * were silent, or a warning after "ready") and passes */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "service:\n  placement: single\nudp:\n  ports:\n    - device: net_null0\n"
		    "      address: 192.0.2.1\n      cpus: [0]\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "WARNING: udp.ports[0].cpus[0] (CPU 0) is not applied: "
					   "rx queue 0 shares a polled thread"));
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "service:\n  placement: per-stage\nudp:\n  ports:\n    - device: "
		    "net_null0\n      address: 192.0.2.1\n      cpus: [4000]\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "udp.ports[0].cpus[0]: CPU 4000 is not one this process "
					   "may run on"));
	/* model keys that do nothing where they are set: --check warns, naming each (the
	 * start warned of the first alone; the others were silent) */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "devices:\n  cuda: {mode: \"off\"}\nmodels:\n"
		    "  - {name: identity, precision: f16, max_windows: 4}\n"
		    "  - {name: logmel, weights: /nonexistent.safetensors, max_windows: 3}\n"
		    "  - {name: whisper, precision: f32, max_windows: 9}\n"
		    "  - {name: clap, queue_limit: 4}\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
				      "models[0] (identity): precision applies to the "
				      "built-in networks (whisper, videomae, clap) only; "
				      "ignored; models[0] (identity): max_windows: identity "
				      "takes no windows; ignored; models[1] (logmel): weights: "
				      "logmel reads no weights; ignored; models[3] (clap): "
				      "queue_limit 4 is below its max_windows 8 (a request of n "
				      "windows takes n places): requests of 5 to 8 windows are "
				      "answered TOO_LARGE\n"));
	/* an endpoint ZeroMQ would take as another port (83136 is 17600) */
	fd = open(bad, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "service:\n  ingest: tcp://127.0.0.1:83136\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_bad, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "service.ingest: 'tcp://127.0.0.1:83136' is not"));
	/* the CPU device alone: --check says which devices it would serve on */
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_good, out, sizeof(out)), 2); /* whisperish */
	fd = open(good, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "devices:\n  cuda: {mode: \"off\"}\n");
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check_good, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(out, "devices: cpu0 alone (no GPU in use: devices.cuda.mode is off)"));
	unlink(bad);
	unlink(good);
}

/* Whether this host has IPv6 loopback (::1) to bind on. */
static bool
have_ipv6_loopback(void)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (s >= 0)
		close(s);
	return ok;
}

/* Whether @p d's log has @p what within @p seconds (the 'ready' line may follow /readyz's
 * first 200 by a moment). */
static bool
log_has_within(const struct mb_daemon *d, const char *what, double seconds)
{
	double deadline = mb_e2e_now() + seconds;

	while (strstr(mb_daemon_log(d), what) == NULL) {
		if (mb_e2e_now() > deadline) {
			printf("\n    no \"%s\" in the log:\n%s", what, mb_daemon_log(d));
			return false;
		}
		usleep(20000);
	}
	return true;
}

/* service.ingest and service.publish at an IPv6 address, as the reference allows
 * (tcp://[::1]:PORT): served, and the client library connects to it (both failed: ZeroMQ
 * needs ZMQ_IPV6 on a socket for IPv6, "No such device") */
static void
test_ipv6_endpoints(void)
{
	struct mb_daemon d;
	struct mb_client *c;
	struct mb_request_hdr h;
	float t[4] = {1, 2, 3, 4};
	char ingest[64], publish[64];
	const char *args[] = {"--ingest", ingest, "--publish", publish, NULL};
	int ports[2];

	if (!have_ipv6_loopback()) {
		printf("\n    SKIPPED: no IPv6 loopback (::1) on this host");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(mb_e2e_free_ports(ports, 2), 0);
	snprintf(ingest, sizeof(ingest), "tcp://[::1]:%d", ports[0]);
	snprintf(publish, sizeof(publish), "tcp://[::1]:%d", ports[1]);
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, NULL, args), 0);
	CU_ASSERT_TRUE(log_has_within(&d, ingest, 10));
	snprintf(d.ingest, sizeof(d.ingest), "%s", ingest);
	c = mb_e2e_client(&d, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mb_client_tensor_hdr(&h, "identity", 3, 1, 1, 4);
	CU_ASSERT_EQUAL(mb_client_send(c, &h, t, sizeof(t)), 0);
	CU_ASSERT_EQUAL(recv_status(c, NULL, NULL, 0, 10000), MB_STATUS_OK);
	mb_client_close(&c);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static void
test_endpoint_in_use(void)
{
	struct mb_daemon d;
	char out[8192], metrics[64];
	const char *args[] = {"--ingest",  NULL,  "--publish", "tcp://127.0.0.1:*",
			      "--metrics", "off", NULL};

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, NULL, NULL), 0);
	args[1] = d.ingest;
	(void)metrics;
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(args, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Address already in use"));
	/* the HTTP endpoint's port in use: 1 as well, its files (a token here) read and good:
	 * only a file that is missing, unreadable, insecure or malformed is exit 2 */
	{
		char cfg[] = "/tmp/mb_e2e_inuse_XXXXXX", token[] = "/tmp/mb_e2e_token_XXXXXX";
		const char *http[] = {"--config",	   cfg,		"--ingest",
				      "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
				      "--metrics",	   d.metrics,	NULL};
		int fd = mkstemp(token);

		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(write(fd, "in-use\n", 7) == 7);
		close(fd);
		fd = mkstemp(cfg);
		CU_ASSERT_FATAL(fd >= 0);
		dprintf(fd, "http:\n  token_file: %s\ndevices:\n  cuda: {mode: \"off\"}\n", token);
		close(fd);
		CU_ASSERT_EQUAL(mb_e2e_daemon_cmd_within(http, 60, out, sizeof(out)), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "metrics endpoint"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "Address already in use"));
		unlink(cfg);
		unlink(token);
	}
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/*
 * A requester that goes silent (its host died, a partition): a TCP connection to the ROUTER
 * on 127.0.0.1:@p port that completes ZMTP 3.1's handshake by hand (greeting, NULL
 * mechanism, READY as a DEALER) and then never sends again, not even the PONG that a live
 * ZeroMQ peer answers every PING with. Returns the socket, or -1.
 */
static int
silent_peer(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	uint8_t greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1, 'N', 'U', 'L', 'L'};
	static const uint8_t ready[] = {0x04, 28,  5,	'R', 'E', 'A', 'D', 'Y', 11,  'S',
					'o',  'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
					0,    0,   0,	6,   'D', 'E', 'A', 'L', 'E', 'R'};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, greeting, sizeof(greeting)) != (ssize_t)sizeof(greeting) ||
	    write(fd, ready, sizeof(ready)) != (ssize_t)sizeof(ready)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* True if the other end closes @p fd within @p seconds (what it sends is read and dropped). */
static bool
closed_within(int fd, double seconds)
{
	double deadline = mb_e2e_now() + seconds;
	char buf[512];

	while (mb_e2e_now() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return true;
	}
	return false;
}

/* Wait up to @p seconds for the daemon's mediabatch_zmq_connections to be @p want. */
static bool
connections_become(struct mb_daemon *d, double want, double seconds)
{
	double deadline = mb_e2e_now() + seconds;

	do {
		if (mb_daemon_metric(d, "mediabatch_zmq_connections") == want)
			return true;
		usleep(20000);
	} while (mb_e2e_now() < deadline);
	return false;
}

static void
test_heartbeat_cuts_silent_peer(void)
{
	/* 1 s: the connection lives about 4 s (a ping at 1 s, then 3 s without an answer),
	 * long enough for the scrape below to see it on a loaded machine */
	static const int heartbeat_ms[] = {1000, 0};

	for (int i = 0; i < 2; i++) {
		struct mb_daemon d;
		char yaml[64];
		int fd;

		snprintf(yaml, sizeof(yaml), "zmq:\n  heartbeat_ms: %d\n", heartbeat_ms[i]);
		CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
		fd = silent_peer(d.port_ingest);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_TRUE(connections_become(&d, 1, 5.0));
		if (heartbeat_ms[i] != 0) {
			/* three unanswered intervals: the daemon closes the connection */
			CU_ASSERT_TRUE(closed_within(fd, 15.0));
			CU_ASSERT_TRUE(connections_become(&d, 0, 5.0));
		} else {
			/* heartbeats off: nothing notices a silent peer */
			CU_ASSERT_FALSE(closed_within(fd, 5.0));
			CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_zmq_connections"), 1);
		}
		close(fd); /* a peer that closes is seen by either */
		CU_ASSERT_TRUE(connections_become(&d, 0, 5.0));
		CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	}
}

/* A thread of @p pid other than its main one that does not block SIGTERM (a library's own
 * thread, started before main() could block it), or 0. */
static pid_t
unblocked_thread(pid_t pid)
{
	char path[96], line[256];
	pid_t found = 0;

	for (pid_t tid = pid + 1; tid < pid + 4096 && found == 0; tid++) {
		FILE *f;
		unsigned long long blk = ~0ull;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "SigBlk: %llx", &blk) == 1)
				break;
		fclose(f);
		if (!(blk & (1ull << (SIGTERM - 1))))
			found = tid;
	}
	return found;
}

/* SIGTERM caught by such a thread still drains the daemon (it does not kill it). */
static void
test_signal_on_a_library_thread(void)
{
	struct mb_daemon d;
	pid_t tid;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, NULL, NULL), 0);
	tid = unblocked_thread(d.pid);
	if (tid == 0) {
		printf("\n    every thread blocks SIGTERM here: nothing to check");
		CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
		return;
	}
	mb_daemon_expect_exit(&d);
	CU_ASSERT_EQUAL(syscall(SYS_tgkill, d.pid, tid, SIGTERM), 0);
	CU_ASSERT_EQUAL(mb_daemon_wait(&d, 30), 0); /* a clean drain, not 128 + SIGTERM */
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "Terminated: draining"));
}

/* The id of @p pid's thread named @p comm, or -1. */
static pid_t
thread_named(pid_t pid, const char *comm)
{
	char path[64], name[32];
	struct dirent *e;
	pid_t found = -1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while (found < 0 && (e = readdir(dir)) != NULL) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/comm", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof(name), f) != NULL) {
			name[strcspn(name, "\n")] = '\0';
			if (strcmp(name, comm) == 0)
				found = (pid_t)atoi(e->d_name);
		}
		fclose(f);
	}
	closedir(dir);
	return found;
}

/* GET @p path until it answers @p want, for up to @p seconds; returns the last status. */
static int
http_until(const struct mb_daemon *d, const char *path, int want, double seconds, char *body,
	   size_t len)
{
	double end = mb_e2e_now() + seconds;
	int st;

	do {
		st = mb_http_get(d->port_http, path, body, len);
		if (st == want)
			return st;
		usleep(100 * 1000);
	} while (mb_e2e_now() < end);
	return st;
}

/*
 * Liveness: a polled thread that stops turning makes /healthz (and /v2/health/live) answer
 * 503 naming it, within service.liveness_ms and a margin; when it turns again, 200. The
 * thread that runs the front door (mb-poll0, every stage, in the default placement here;
 * mb-frontdoor under per-stage) is stopped alone, the rest of the daemon running, with
 * ptrace (PTRACE_INTERRUPT stops one thread, not the process).
 */
static void
test_liveness_stalled_thread(void)
{
	struct mb_daemon d;
	struct mb_client *c;
	struct mb_request_hdr h;
	char body[512], want[96];
	const char *thread = "mb-poll0";
	float x[4] = {1, 2, 3, 4};
	int status = 0, st;
	pid_t tid;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "service:\n  liveness_ms: 1500\n", NULL), 0);
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/healthz", body, sizeof(body)), 200);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_live"), 1);
	/* idle for longer than liveness_ms: an idle thread still turns */
	usleep(2500 * 1000);
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/healthz", body, sizeof(body)), 200);

	/* the thread that runs the front door: every stage (placement single, the default
	 * here) or the front door's own (per-stage: MB_E2E_PLACEMENT) */
	tid = thread_named(d.pid, "mb-poll0");
	if (tid < 0) {
		tid = thread_named(d.pid, "mb-frontdoor");
		thread = "mb-frontdoor";
	}
	CU_ASSERT_FATAL(tid > 0);
	snprintf(want, sizeof(want), "not live: polled thread %s (frontdoor+egress", thread);
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
		printf("\n    skipped: cannot ptrace the daemon's thread: %s", strerror(errno));
		CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(waitpid(tid, &status, __WALL), tid);
	CU_ASSERT(WIFSTOPPED(status));

	st = http_until(&d, "/healthz", 503, 15, body, sizeof(body));
	printf("\n    %s stopped: /healthz %d \"%.*s\"", thread, st, (int)strcspn(body, "\n"),
	       body);
	CU_ASSERT_EQUAL(st, 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, want));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "service.liveness_ms 1500"));
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/v2/health/live", body, sizeof(body)), 503);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_live"), 0);

	CU_ASSERT_EQUAL(ptrace(PTRACE_DETACH, tid, NULL, NULL), 0); /* it runs again */
	st = http_until(&d, "/healthz", 200, 15, body, sizeof(body));
	CU_ASSERT_EQUAL(st, 200);
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/v2/health/live", body, sizeof(body)), 200);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_live"), 1);
	/* and it serves */
	c = mb_e2e_client(&d, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mb_client_tensor_hdr(&h, "identity", 1, 1, 1, 4);
	CU_ASSERT_EQUAL(mb_client_send(c, &h, x, sizeof(x)), 0);
	CU_ASSERT_EQUAL(recv_status(c, NULL, NULL, 0, 10000), MB_STATUS_OK);
	mb_client_close(&c);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), want));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "live again"));
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static const struct mb_test_case cases[] = {
	{"a tiny deadline gives TIMEOUT; cancelled requests give CANCELLED",
	 test_deadline_and_cancel},
	{"the CLI cancels after a delay", test_cli_cancel_after},
	{"admission: units never above capacity; a 16-unit request is not starved",
	 test_admission_capacity_and_fairness},
	{"a request larger than the device: TOO_LARGE", test_too_large_for_device},
	{"SIGTERM with work in flight: all answered, late work UNAVAILABLE, exit 0",
	 test_drain_answers_everything},
	{"drain timeout: the rest CANCELLED, every request answered, exit 3",
	 test_drain_timeout_stops_hard},
	{"drain timeout 0 with nothing in flight: a clean drain, exit 0",
	 test_idle_drain_timeout_zero},
	{"drain timeout while clients keep sending: the front door stops reading, exit 0",
	 test_drain_bounded_while_clients_send},
	{"a second signal stops hard: every request answered, exit 3",
	 test_second_signal_stops_hard},
	{"SIGTERM on a thread a library started: a clean drain, exit 0",
	 test_signal_on_a_library_thread},
	{"config errors name file, field and range; exit 2", test_config_errors},
	{"an endpoint in use: a clear error, exit 1", test_endpoint_in_use},
	{"IPv6 endpoints (tcp://[::1]:PORT): served, and the client connects", test_ipv6_endpoints},
	{"heartbeats: a silent requester's connection is closed; off, it stays",
	 test_heartbeat_cuts_silent_peer},
	{"liveness: a polled thread that stops turning makes /healthz 503, naming it",
	 test_liveness_stalled_thread},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e lifecycle", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_lifecycle", suites);
}
