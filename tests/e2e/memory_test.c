/*
 * memory_test.c (e2e): memory that a burst of large payloads leaves behind goes back to the
 * system once the daemon is idle (docs/operating.md, "Memory: what holds it and what sizes
 * it").
 *
 * The burst: identity payloads of falling sizes (48 x 4 MiB, then 200 x 1 MiB, then 400 x
 * 512 KiB), each size sent all at once and held in the queue together (max_delay_us), with
 * a client connecting while they wait and staying. ZeroMQ's I/O thread mallocs the payloads:
 * the 4 MiB ones are mmapped, and freeing one raises glibc's mmap threshold to its size, so
 * the smaller ones come from that thread's arena; the new connection's allocations land
 * above them, and glibc gives a heap back only from its top. Without the daemon's idle trim,
 * RSS stayed 32 to 123 MiB above its baseline of 49 MiB, 10 s after the last answer (16 runs
 * of 16 on a 2-core machine); with it, it is back within 4 MiB of the baseline about 1.1 s
 * after the last answer.
 *
 * Under a sanitizer the daemon's blocks come from the sanitizer's allocator, not glibc's.
 * AddressSanitizer keeps freed blocks in its quarantine (256 MiB by default) and has no
 * malloc_trim(): the RSS bound is not checked there, and the test says so; it still checks
 * that every request is answered once and that the daemon's idle trim ran. ThreadSanitizer's
 * allocator maps each block over 128 KiB on its own and unmaps it when freed, but keeps the
 * smaller ones and its own shadow and metadata: over five CI runs the burst left 6.5 to 35.6
 * MiB there, which glibc's malloc_trim() cannot reach either. Under both sanitizers the RSS
 * bound is reported, not checked; the plain builds of the suite check it.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_e2e.h"
#include "mb_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define MB_MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MB_MEM_ASAN 1
#endif
#endif
#ifndef MB_MEM_ASAN
#define MB_MEM_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define MB_MEM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MB_MEM_TSAN 1
#endif
#endif
#ifndef MB_MEM_TSAN
#define MB_MEM_TSAN 0
#endif

/*
 * The daemon trims once it has grown 16 MiB past its idle floor. A burst that leaves more
 * than GREW_KIB must be given back to within SLACK_KIB of the baseline; one that leaves less
 * (glibc gave it back by itself) has nothing to trim, and is only checked to stay under
 * GREW_KIB.
 */
#define GREW_KIB (24 * 1024)
#define SLACK_KIB (16 * 1024)

/* Requests held in the identity queue up to 300 ms, so that a burst is in memory at once. */
static const char yaml[] = "service:\n"
			   "  log_level: debug\n"
			   "models:\n"
			   "  - name: identity\n"
			   "    max_batch: 1024\n"
			   "    max_delay_us: 300000\n"
			   "    queue_limit: 4096\n";

static void
nap(double seconds)
{
	struct timespec ts = {.tv_sec = (time_t)seconds,
			      .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};

	nanosleep(&ts, NULL);
}

/*
 * Send @p n identity requests of @p rows x 1024 F32 (ids @p first..), all at once, and
 * collect their answers (60 s at most). With @p keeper, while they wait in the queue a new
 * client connects and sends one small request too, and stays connected (*@p keeper): what
 * the daemon allocates for that connection lies above the payloads in ZeroMQ's arena, as
 * it does when clients come and go under load. Returns how many were answered OK.
 */
static int
burst(const struct mb_daemon *d, uint64_t first, int n, uint16_t rows, struct mb_client **keeper)
{
	struct mb_client_opts o = {.endpoint = d->ingest, .sndhwm = 100000};
	struct mb_client *c = NULL;
	size_t bytes = (size_t)rows * 1024 * sizeof(float);
	float *payload = calloc(bytes / sizeof(float), sizeof(float));
	uint8_t *seen = calloc((size_t)n, 1);
	double deadline = mb_e2e_now() + 60;
	struct mb_request_hdr h;
	struct mb_client_response r;
	char err[128];
	int ok = 0, answered = 0, bad = 0;

	CU_ASSERT_FATAL(payload != NULL && seen != NULL);
	CU_ASSERT_EQUAL_FATAL(mb_client_connect(&o, &c, err, sizeof(err)), 0);
	for (int i = 0; i < n; i++) {
		mb_client_tensor_hdr(&h, "identity", 1, first + (uint64_t)i, rows, 1024);
		CU_ASSERT_EQUAL_FATAL(mb_client_send(c, &h, payload, bytes), 0);
	}
	if (keeper != NULL) {
		static const float small[256];

		*keeper = mb_e2e_client(d, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(*keeper);
		mb_client_tensor_hdr(&h, "identity", 1, first + (uint64_t)n, 1, 256);
		CU_ASSERT_EQUAL(mb_client_send(*keeper, &h, small, sizeof(small)), 0);
		CU_ASSERT_EQUAL_FATAL(mb_client_recv(*keeper, &r, 30000), 0);
		CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
		mb_client_response_free(&r);
	}
	while (answered < n && mb_e2e_now() < deadline) {
		uint64_t k;

		if (mb_client_recv(c, &r, 1000) != 0)
			continue;
		k = r.hdr.request_id - first;
		if (k < (uint64_t)n && !seen[k]++) {
			answered++;
			ok += r.hdr.status == MB_STATUS_OK;
		} else {
			bad++;
		}
		mb_client_response_free(&r);
	}
	CU_ASSERT_EQUAL(answered, n);
	CU_ASSERT_EQUAL(bad, 0);
	mb_client_close(&c);
	free(seen);
	free(payload);
	return ok;
}

/* Lines of the daemon's log that say it trimmed. */
static int
trims(const struct mb_daemon *d)
{
	const char *p = mb_daemon_log(d);
	int n = 0;

	while ((p = strstr(p, "idle: malloc_trim gave back")) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void
test_idle_gives_back(void)
{
	static const struct {
		uint16_t rows; /* x 1024 F32: 4 MiB, 1 MiB, 512 KiB */
		int n;
	} sizes[] = {{1024, 48}, {256, 200}, {128, 400}};
	struct mb_daemon d;
	long base, busy, now = -1;
	double t0, waited = 0, limit = MB_MEM_ASAN || MB_MEM_TSAN ? 20 : 10;
	uint64_t id = 0;
	int trims_before;
	bool grew;
	struct mb_client *keepers[3] = {NULL, NULL, NULL};

	/* The daemon's allocator as in production: meson sets MALLOC_PERTURB_, which has glibc
	 * write every block it hands out or takes back, so every page of every large block
	 * (the models' weights, each payload) is touched and the baseline moves. */
	unsetenv("MALLOC_PERTURB_");
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
	/* one of each size first: what the first use allocates is part of the baseline */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CU_ASSERT_EQUAL(burst(&d, id, 1, sizes[i].rows, NULL), 1);
		id += 1;
	}
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 10), 0);
	nap(2.5); /* idle: a trim of the warm-up may come and go */
	base = mb_e2e_status_kib(d.pid, "VmRSS");
	trims_before = trims(&d);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CU_ASSERT_EQUAL(burst(&d, id, sizes[i].n, sizes[i].rows, &keepers[i]), sizes[i].n);
		id += (uint64_t)sizes[i].n + 1;
	}
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&d, 10), 0);
	busy = mb_e2e_status_kib(d.pid, "VmRSS");
	grew = busy - base > GREW_KIB;

	/* idle now: within a second or two the daemon gives the memory back */
	t0 = mb_e2e_now();
	while ((waited = mb_e2e_now() - t0) < limit && grew) {
		now = mb_e2e_status_kib(d.pid, "VmRSS");
		if (now >= 0 && (MB_MEM_ASAN || MB_MEM_TSAN || now - base < SLACK_KIB) &&
		    trims(&d) > trims_before)
			break;
		nap(0.1);
	}
	now = mb_e2e_status_kib(d.pid, "VmRSS");
	printf("\n    RSS: %ld KiB idle before; %ld KiB after 48 x 4 MiB, 200 x 1 MiB, 400 x 512 "
	       "KiB; %ld KiB %.1f s into idleness (bound: %d KiB over the first); trims logged: "
	       "%d",
	       base, busy, now, waited, SLACK_KIB, trims(&d) - trims_before);
	CU_ASSERT(base > 0 && now > 0);
	if (!grew) {
		printf("\n    the burst left under %d KiB: nothing for the daemon to trim%s",
		       GREW_KIB,
		       MB_MEM_TSAN ? " (ThreadSanitizer's allocator maps each block over 128 KiB "
				     "on its own and unmaps it when freed)"
				   : "");
		CU_ASSERT(now - base < GREW_KIB);
	} else if (MB_MEM_ASAN || MB_MEM_TSAN) {
		CU_ASSERT(trims(&d) > trims_before); /* the idle trim ran */
		printf("\n    NOT CHECKED under %s: the RSS bound (%ld KiB over the baseline now: "
		       "%s)",
		       MB_MEM_ASAN ? "AddressSanitizer" : "ThreadSanitizer", now - base,
		       MB_MEM_ASAN
			       ? "ASan's allocator, not glibc's, holds the daemon's memory, "
				 "keeps up to 256 MiB of freed blocks in its quarantine and has no "
				 "malloc_trim"
			       : "TSan's allocator, not glibc's, holds the daemon's blocks under "
				 "128 KiB, with its shadow and metadata; malloc_trim cannot reach "
				 "them");
	} else {
		CU_ASSERT(trims(&d) > trims_before); /* the idle trim ran */
		CU_ASSERT(now - base < SLACK_KIB);
	}
	for (size_t i = 0; i < sizeof(keepers) / sizeof(keepers[0]); i++)
		mb_client_close(&keepers[i]);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static const struct mb_test_case cases[] = {
	{"after a burst of large payloads, idle memory goes back near its baseline",
	 test_idle_gives_back},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e memory", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_memory", suites);
}
