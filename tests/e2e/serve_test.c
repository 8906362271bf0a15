/*
 * serve_test.c (e2e): the real daemon on loopback serving several concurrent clients:
 * every request answered exactly once with its own id, batches forming under load, the
 * logmel result, PUB fan-out by tenant, metrics and health, the CLI, and a clean drain.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;

static int
suite_init(void)
{
	return mb_daemon_start(&g_d, "models:\n  - name: identity\n    max_delay_us: 2000\n", NULL);
}

static int
suite_cleanup(void)
{
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);

	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	return rc == 0 ? 0 : -1; /* a failed clean stop fails the suite */
}

#define CLIENTS 4
#define PER_CLIENT 600
#define WINDOW 24

struct load {
	int index;
	int ok, wrong, dup, missing;
	int max_batch;
	double value_errors;
};

static void *
client_load(void *arg)
{
	struct load *l = arg;
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	uint8_t seen[PER_CLIENT] = {0};
	float payload[16 * 16];
	int sent = 0, got = 0;
	double deadline = mb_e2e_now() + 60;

	if (c == NULL)
		return NULL;
	memset(payload, 0, sizeof(payload));
	while (got < PER_CLIENT && mb_e2e_now() < deadline) {
		struct mb_client_response r;

		while (sent < PER_CLIENT && sent - got < WINDOW) {
			struct mb_request_hdr h;

			mb_client_tensor_hdr(&h, "identity", 100 + (uint32_t)l->index,
					     (uint64_t)sent, 16, 16);
			if (mb_client_send(c, &h, payload, sizeof(payload)) != 0)
				break;
			sent++;
		}
		if (mb_client_recv(c, &r, 1000) != 0)
			continue;
		got++;
		if (r.hdr.request_id >= PER_CLIENT || r.hdr.tenant_id != 100 + (uint32_t)l->index) {
			l->wrong++;
		} else if (seen[r.hdr.request_id]++) {
			l->dup++;
		} else if (r.hdr.status == MB_STATUS_OK && r.hdr.rows == 1 && r.hdr.cols == 1 &&
			   r.len == 4) {
			l->ok++;
			if (*(float *)r.data != (float)sizeof(payload))
				l->value_errors++;
			if (r.hdr.batch_size > l->max_batch)
				l->max_batch = r.hdr.batch_size;
		} else {
			l->wrong++;
		}
		mb_client_response_free(&r);
	}
	for (int i = 0; i < PER_CLIENT; i++)
		if (!seen[i])
			l->missing++;
	mb_client_close(&c);
	return NULL;
}

static void
test_concurrent_clients_exactly_once(void)
{
	struct load l[CLIENTS];
	pthread_t t[CLIENTS];
	int ok = 0, max_batch = 0;
	char series[128];

	for (int i = 0; i < CLIENTS; i++) {
		l[i] = (struct load){.index = i};
		pthread_create(&t[i], NULL, client_load, &l[i]);
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(l[i].wrong, 0);
		CU_ASSERT_EQUAL(l[i].dup, 0);
		CU_ASSERT_EQUAL(l[i].missing, 0);
		CU_ASSERT_EQUAL(l[i].value_errors, 0);
		ok += l[i].ok;
		if (l[i].max_batch > max_batch)
			max_batch = l[i].max_batch;
	}
	printf("\n    %d clients x %d requests: %d OK, largest batch %d", CLIENTS, PER_CLIENT, ok,
	       max_batch);
	CU_ASSERT_EQUAL(ok, CLIENTS * PER_CLIENT);
	CU_ASSERT(max_batch > 1); /* batches form under load */
	snprintf(series, sizeof(series),
		 "mediabatch_responses_total{model=\"identity\",status=\"OK\"}");
	CU_ASSERT(mb_daemon_metric(&g_d, series) >= CLIENTS * PER_CLIENT);
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&g_d, 5), 0);
}

static void
test_logmel_result(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	struct mb_request_hdr h;
	struct mb_client_response r;
	uint32_t bytes;
	uint8_t *pcm = mb_e2e_tone(1.0, &bytes);
	const float *v;
	bool finite = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mb_client_audio_hdr(&h, "logmel", 1, 77, MB_MEDIA_PCM_S16LE, 16000, bytes);
	CU_ASSERT_EQUAL(mb_client_send(c, &h, pcm, bytes), 0);
	CU_ASSERT_EQUAL_FATAL(mb_client_recv(c, &r, 10000), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(r.hdr.request_id, 77);
	CU_ASSERT_STRING_EQUAL(r.hdr.model, "logmel");
	CU_ASSERT_EQUAL(r.hdr.result_type, MB_RESULT_F32);
	CU_ASSERT_EQUAL(r.hdr.rows, 100);
	CU_ASSERT_EQUAL(r.hdr.cols, 80);
	CU_ASSERT_EQUAL(r.len, 100 * 80 * 4);
	CU_ASSERT_EQUAL(r.hdr.device, 0);
	CU_ASSERT(r.hdr.batch_size >= 1);
	v = r.data;
	for (size_t i = 0; i < r.len / 4; i++)
		if (!(v[i] > -3.0f && v[i] < 3.0f)) /* (log10 + 4) / 4 stays in a narrow band */
			finite = false;
	CU_ASSERT_TRUE(finite);
	mb_client_response_free(&r);
	free(pcm);
	mb_client_close(&c);
}

/* Subscribers see every response, filtered by topic prefix. */
static void
test_pub_fanout(void)
{
	struct mb_subscriber *all, *t7;
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	char err[256], topic[64];
	float x[4] = {0};
	int got_all = 0, got_t7 = 0, bad_topic = 0;
	double deadline;

	CU_ASSERT_EQUAL_FATAL(mb_subscriber_connect(g_d.publish, "", &all, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(mb_subscriber_connect(g_d.publish, "7/", &t7, err, sizeof(err)), 0);
	/* Subscriptions propagate asynchronously: probe until both see a tenant-7 result. */
	for (int probe = 0, seen_all = 0, seen_t7 = 0; !(seen_all && seen_t7) && probe < 100;
	     probe++) {
		struct mb_request_hdr h;
		struct mb_client_response r;

		mb_client_tensor_hdr(&h, "identity", 7, 1000000 + (uint64_t)probe, 1, 4);
		mb_client_send(c, &h, x, sizeof(x));
		if (mb_client_recv(c, &r, 2000) == 0)
			mb_client_response_free(&r);
		while (mb_subscriber_recv(all, topic, sizeof(topic), &r, 50) == 0) {
			seen_all = 1;
			mb_client_response_free(&r);
		}
		while (mb_subscriber_recv(t7, topic, sizeof(topic), &r, 50) == 0) {
			seen_t7 = 1;
			mb_client_response_free(&r);
		}
	}
	for (int i = 0; i < 10; i++) {
		struct mb_request_hdr h;
		struct mb_client_response r;

		mb_client_tensor_hdr(&h, "identity", i < 5 ? 7 : 8, (uint64_t)i, 1, 4);
		CU_ASSERT_EQUAL(mb_client_send(c, &h, x, sizeof(x)), 0);
		CU_ASSERT_EQUAL(mb_client_recv(c, &r, 5000), 0);
		mb_client_response_free(&r);
	}
	deadline = mb_e2e_now() + 5;
	while ((got_all < 10 || got_t7 < 5) && mb_e2e_now() < deadline) {
		struct mb_client_response r;

		if (mb_subscriber_recv(all, topic, sizeof(topic), &r, 20) == 0) {
			if (r.hdr.request_id < 10)
				got_all++;
			mb_client_response_free(&r);
		}
		if (mb_subscriber_recv(t7, topic, sizeof(topic), &r, 20) == 0) {
			if (r.hdr.request_id < 10) {
				got_t7++;
				if (strcmp(topic, "7/identity") != 0 || r.hdr.tenant_id != 7)
					bad_topic++;
			}
			mb_client_response_free(&r);
		}
	}
	CU_ASSERT_EQUAL(got_all, 10);
	CU_ASSERT_EQUAL(got_t7, 5);
	CU_ASSERT_EQUAL(bad_topic, 0);
	mb_subscriber_close(&all);
	mb_subscriber_close(&t7);
	mb_client_close(&c);
}

static void
test_metrics_and_health(void)
{
	static char body[1 << 20];
	static const char *const names[] = {
		"mediabatch_requests_total",
		"mediabatch_responses_total",
		"mediabatch_queue_depth",
		"mediabatch_batch_size_bucket",
		"mediabatch_vram_units_in_use",
		"mediabatch_vram_units_capacity",
		"mediabatch_admission_wait_seconds_bucket",
		"mediabatch_request_latency_seconds_bucket",
		"mediabatch_vram_units_peak",
		"mediabatch_inflight",
		"mediabatch_zmq_dropped_total",
		"mediabatch_reply_dropped_total",
		"mediabatch_pub_dropped_total",
		"mediabatch_pub_subscriptions",
		"mediabatch_zmq_connections",
		"mediabatch_ready",
		"mediabatch_draining",
		"mediabatch_config_reloads_total",
		"mediabatch_build_info",
		"mediabatch_rx_packets_total",
		"mediabatch_rx_bytes_total",
		"mediabatch_rx_dropped_total",
		"mediabatch_rx_unanswered_total",
		NULL,
	};

	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/healthz", body, sizeof(body)), 200);
	CU_ASSERT_STRING_EQUAL(body, "ok\n");
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/readyz", body, sizeof(body)), 200);
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/nope", body, sizeof(body)), 404);
	CU_ASSERT_EQUAL_FATAL(mb_http_get(g_d.port_http, "/metrics", body, sizeof(body)), 200);
	for (int i = 0; names[i] != NULL; i++) {
		if (strstr(body, names[i]) == NULL) {
			printf("\n    /metrics lacks %s", names[i]);
			CU_FAIL("a documented metric is missing");
		}
	}
	CU_ASSERT_EQUAL(mb_metric_value_of(body, "mediabatch_vram_units_capacity{device=\"cpu0\"}"),
			16);
	CU_ASSERT_EQUAL(mb_metric_value_of(body, "mediabatch_ready"), 1);
}

static void
test_cli(void)
{
	char out[8192], wav[] = "/tmp/mb_e2e_wav_XXXXXX", npy[64];
	const char *send_tone[] = {"send", "--endpoint", g_d.ingest, "--tone",
				   "440",  "--npy",	 npy,	     NULL};
	const char *send_wav[] = {"send", "--endpoint", g_d.ingest, "--wav", wav, NULL};
	const char *unknown[] = {"send", "--endpoint", g_d.ingest, "--model",
				 "nope", "--noise",    NULL};
	/* A 44.1 kHz stereo WAV header with a little data: must be refused before sending. */
	static const uint8_t hdr[44] = {
		'R', 'I', 'F', 'F', 40, 0, 0,	0,   'W', 'A',	'V',  'E', 'f', 'm',  't',
		' ', 16,  0,   0,   0,	1, 0,	2,   0,	  0x44, 0xac, 0,   0,	0x10, 0xb1,
		2,   0,	  4,   0,   16, 0, 'd', 'a', 't', 'a',	4,    0,   0,	0,
	};
	uint8_t npy_head[8] = {0};
	FILE *f;
	int fd = mkstemp(wav);

	snprintf(npy, sizeof(npy), "/tmp/mb_e2e_%d.npy", (int)getpid());
	CU_ASSERT_EQUAL(mb_e2e_cli(send_tone, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, ": OK "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "F32 [100 x 80]"));
	f = fopen(npy, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fread(npy_head, 1, 8, f), 8);
	CU_ASSERT_EQUAL(memcmp(npy_head, "\x93NUMPY\x01\x00", 8), 0);
	fclose(f);
	unlink(npy);

	CU_ASSERT_EQUAL(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	CU_ASSERT_EQUAL(write(fd, "\0\0\0\0", 4), 4);
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_cli(send_wav, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "44100 Hz, 2 channel(s)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "16 kHz mono"));
	unlink(wav);

	CU_ASSERT_EQUAL(mb_e2e_cli(unknown, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "UNKNOWN_MODEL"));
}

static const struct mb_test_case cases[] = {
	{"4 clients x 600 requests: each answered once, batches form",
	 test_concurrent_clients_exactly_once},
	{"logmel over the wire: [100 x 80] for 1 s", test_logmel_result},
	{"PUB fan-out by tenant topic", test_pub_fanout},
	{"/metrics has every documented name; /healthz, /readyz", test_metrics_and_health},
	{"the CLI: tone to .npy, a refused WAV, an unknown model", test_cli},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e serve", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_serve", suites);
}
