/*
 * plugin_test.c (e2e): plugins and broken models in the real daemon.
 *
 * One daemon serves the built-in models plus three plugins: the example plugin (with
 * weights written here), the flaky test plugin (fails a batch whose payload starts with
 * "FAIL") and two that cannot load (another interface version; no mb_model_plugin). Its
 * whisper weights file is truncated. Checked: the example plugin's results; the broken
 * models answer UNAVAILABLE with the reason while every other model keeps serving; the
 * flaky model's circuit breaker opens after 3 failed batches (requests then answered
 * UNAVAILABLE at once, other models unaffected), lets one probe through after the
 * cool-down, re-opens when the probe fails and closes when one succeeds; /metrics shows
 * the breaker's state; the daemon still drains cleanly and unloads the plugins. A plugin's
 * malformed result (result_len past its buffer, an unknown result type, an item neither
 * filled nor failed) is answered MODEL_ERROR with what was wrong and logged, as are failed
 * items (an empty reason gets a default) and failed batches (with run()'s return code).
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_test.h"
#include "mb_weights.h"

#define COOLDOWN_MS 400

static struct mb_daemon g_d;
static struct mb_client *g_c;
static char g_weights[64], g_truncated[64];
static uint64_t g_id = 1;

static const struct mb_weights_spec g_example_specs[] = {
	{"fc1.weight", 2, {32, 16}},
	{"fc1.bias", 1, {32}},
	{"fc2.weight", 2, {4, 32}},
	{"fc2.bias", 1, {4}},
};

static int
make_files(void)
{
	char err[512];
	FILE *f;
	int fd;

	snprintf(g_weights, sizeof(g_weights), "/tmp/mb_e2e_plugin_XXXXXX");
	snprintf(g_truncated, sizeof(g_truncated), "/tmp/mb_e2e_trunc_XXXXXX");
	if ((fd = mkstemp(g_weights)) < 0)
		return -1;
	close(fd);
	if ((fd = mkstemp(g_truncated)) < 0)
		return -1;
	close(fd);
	if (mb_weights_generate(g_weights, g_example_specs, 4, 5, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	/* a whisper file cut short: a real header that promises more data than there is */
	f = fopen(g_truncated, "wb");
	if (f == NULL)
		return -1;
	fwrite("\x60\x00\x00\x00\x00\x00\x00\x00", 1, 8, f);
	fprintf(f, "%-96s",
		"{\"encoder.conv1.weight\":{\"dtype\":\"F32\",\"shape\":[384,80,3],"
		"\"data_offsets\":[0,368640]}}");
	fwrite("\0\0\0\0\0\0\0\0", 1, 8, f);
	fclose(f);
	return 0;
}

static int
suite_init(void)
{
	char yaml[4096];

	if (make_files() < 0)
		return -1;
	snprintf(yaml, sizeof(yaml),
		 "breaker:\n"
		 "  failure_threshold: 3\n"
		 "  cooldown_ms: %d\n"
		 "models:\n"
		 "  - name: example\n"
		 "    plugin: %s\n"
		 "    weights: %s\n"
		 "  - name: flaky\n"
		 "    plugin: %s\n"
		 "  - name: badabi\n"
		 "    plugin: %s\n"
		 "  - name: nosym\n"
		 "    plugin: %s\n"
		 "  - name: whisper\n"
		 "    weights: %s\n",
		 COOLDOWN_MS, getenv("MB_PLUGIN_EXAMPLE"), g_weights, getenv("MB_PLUGIN_FLAKY"),
		 getenv("MB_PLUGIN_BADABI"), getenv("MB_PLUGIN_NOSYM"), g_truncated);
	if (mb_daemon_start(&g_d, yaml, NULL) < 0)
		return -1;
	g_c = mb_e2e_client(&g_d, NULL);
	return g_c != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	int rc;

	mb_client_close(&g_c);
	rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);
	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	unlink(g_weights);
	unlink(g_truncated);
	return rc == 0 ? 0 : -1;
}

/* Send one request and wait for its answer: the status, the reason or result copied out. */
static int
call(struct mb_request_hdr *h, const void *payload, size_t len, char *out, size_t out_len,
     uint32_t *compute_us)
{
	struct mb_client_response r;
	double deadline = mb_e2e_now() + 15;
	int st = -1;

	h->request_id = g_id++;
	if (mb_client_send(g_c, h, payload, len) != 0)
		return -1;
	while (mb_e2e_now() < deadline) {
		if (mb_client_recv(g_c, &r, 1000) != 0)
			continue;
		if (r.hdr.request_id != h->request_id) {
			mb_client_response_free(&r);
			continue;
		}
		st = r.hdr.status;
		if (out != NULL) {
			size_t n = r.len < out_len - 1 ? r.len : out_len - 1;

			memcpy(out, r.data, n);
			out[n] = '\0';
		}
		if (compute_us != NULL)
			*compute_us = r.hdr.compute_us;
		mb_client_response_free(&r);
		break;
	}
	return st;
}

static int
call_tensor(const char *model, const char *payload4, char *out, size_t out_len)
{
	struct mb_request_hdr h;
	float x = 0.0f;

	mb_client_tensor_hdr(&h, model, 7, 0, 1, 1);
	return call(&h, payload4 != NULL ? (const void *)payload4 : &x, 4, out, out_len, NULL);
}

static bool
has(const char *text, const char *needle)
{
	if (strstr(text, needle) != NULL)
		return true;
	printf("\n    \"%s\" lacks \"%s\"", text, needle);
	return false;
}

static void
test_example_plugin_serves(void)
{
	struct mb_request_hdr h;
	float x[2 * 16], y[2 * 4], *w[4];
	char err[256], res[sizeof(y) + 1];
	double worst = 0;

	for (int i = 0; i < 32; i++)
		x[i] = cosf((float)i * 0.21f);
	mb_client_tensor_hdr(&h, "example", 7, 0, 2, 16);
	CU_ASSERT_EQUAL_FATAL(call(&h, x, sizeof(x), res, sizeof(res), NULL), MB_STATUS_OK);
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&g_d), "runtime error")); /* UBSan builds */
	memcpy(y, res, sizeof(y));
	CU_ASSERT_EQUAL_FATAL(mb_weights_load(g_weights, g_example_specs, 4, w, err, sizeof(err)),
			      0);
	for (int r = 0; r < 2; r++)
		for (int o = 0; o < 4; o++) {
			double acc = w[3][o];

			for (int j = 0; j < 32; j++) {
				double hj = w[1][j];

				for (int k = 0; k < 16; k++)
					hj += (double)w[0][j * 16 + k] * x[r * 16 + k];
				acc += (double)w[2][o * 32 + j] * (hj > 0 ? hj : 0);
			}
			worst = fmax(worst, fabs(y[r * 4 + o] - acc));
		}
	CU_ASSERT(worst < 1e-5);
	for (int i = 0; i < 4; i++)
		free(w[i]);
	/* its own check(): the reason names the shape it takes */
	mb_client_tensor_hdr(&h, "example", 7, 0, 2, 8);
	CU_ASSERT_EQUAL(call(&h, x, 2 * 8 * 4, err, sizeof(err), NULL), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(has(err, "example takes F32 [rows x 16]"));
}

static void
test_broken_models_unavailable_others_serve(void)
{
	char reason[512];
	uint32_t bytes;
	uint8_t *pcm = mb_e2e_tone(1.0, &bytes);
	struct mb_request_hdr h;

	CU_ASSERT_EQUAL(call_tensor("badabi", NULL, reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "built against model interface version 2"));
	CU_ASSERT_EQUAL(call_tensor("nosym", NULL, reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "exports no mb_model_plugin()"));
	mb_client_audio_hdr(&h, "whisper", 7, 0, MB_MEDIA_PCM_S16LE, 16000, bytes);
	CU_ASSERT_EQUAL(call(&h, pcm, bytes, reason, sizeof(reason), NULL), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "the file is truncated"));
	/* the rest serve: built-ins with the build's placeholder weights, and identity */
	mb_client_audio_hdr(&h, "clap", 7, 0, MB_MEDIA_PCM_S16LE, 48000, bytes);
	CU_ASSERT_EQUAL(call(&h, pcm, bytes, NULL, 0, NULL), MB_STATUS_OK);
	mb_client_audio_hdr(&h, "logmel", 7, 0, MB_MEDIA_PCM_S16LE, 16000, bytes);
	CU_ASSERT_EQUAL(call(&h, pcm, bytes, NULL, 0, NULL), MB_STATUS_OK);
	CU_ASSERT_EQUAL(call_tensor("identity", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&g_d), "model badabi: plugin failed to load"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&g_d), "the other models keep serving"));
	free(pcm);
}

/* A model that failed to load makes the daemon not ready (a balancer should send its work
 * elsewhere), with the reason; /metrics agrees. */
static void
test_broken_models_not_ready(void)
{
	char body[512];

	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/readyz", body, sizeof(body)), 503);
	CU_ASSERT_TRUE(has(body, "not ready: model "));
	CU_ASSERT_TRUE(has(body, " is unavailable: "));
	CU_ASSERT_EQUAL(mb_daemon_metric(&g_d, "mediabatch_ready"), 0);
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/healthz", body, sizeof(body)), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&g_d), "not ready (/readyz 503): model "));
}

/* --check loads every model as the daemon would, and names each one that fails. */
static void
test_check_loads_models(void)
{
	char yaml[2048], path[] = "/tmp/mb-e2e-check-XXXXXX", out[8192];
	const char *check[] = {"--config", path, "--check", NULL};
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	snprintf(yaml, sizeof(yaml),
		 "models:\n  - name: whisper\n    weights: %s\n  - name: nosym\n    plugin: "
		 "%s\n  - name: clap\n    enabled: false\n    weights: /nonexistent\n",
		 g_truncated, getenv("MB_PLUGIN_NOSYM"));
	CU_ASSERT_EQUAL(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check, out, sizeof(out)), 2);
	CU_ASSERT_TRUE(has(out, "whisper"));
	CU_ASSERT_TRUE(has(out, "the file is truncated"));
	CU_ASSERT_TRUE(has(out, "nosym"));
	CU_ASSERT_TRUE(has(out, "exports no mb_model_plugin()"));
	CU_ASSERT_PTR_NULL(strstr(out, "clap")); /* off: its weights are not opened */
	/* the same file without the broken models is valid */
	snprintf(yaml, sizeof(yaml), "models:\n  - name: clap\n    enabled: false\n");
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT_EQUAL(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(check, out, sizeof(out)), 0);
	CU_ASSERT_TRUE(has(out, "configuration is valid"));
	unlink(path);
}

static double
breaker_metric(void)
{
	return mb_daemon_metric(&g_d, "mediabatch_breaker_state{model=\"flaky\",device=\"cpu0\"}");
}

static void
nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void
open_breaker(void)
{
	char reason[512];

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(call_tensor("flaky", "FAIL", reason, sizeof(reason)),
				MB_STATUS_MODEL_ERROR);
		CU_ASSERT_TRUE(has(reason, "flaky: the batch failed on device cpu0 (run() returned "
					   "-5: Input/output error)"));
	}
}

static void
test_breaker_opens_and_recovers(void)
{
	char reason[512];
	double t0;

	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(breaker_metric(), 0);
	open_breaker();
	CU_ASSERT_TRUE(has(mb_daemon_log(&g_d), "model flaky on device cpu0: a batch of 1 failed "
						"(run() returned -5: Input/output error)"));
	/* open: refused at once, whatever the payload; the other models are untouched */
	t0 = mb_e2e_now();
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT(mb_e2e_now() - t0 < COOLDOWN_MS / 1000.0);
	CU_ASSERT_TRUE(has(reason, "circuit breaker on cpu0 is open after 3 failed batches"));
	CU_ASSERT_EQUAL(breaker_metric(), 1);
	CU_ASSERT_EQUAL(call_tensor("identity", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(call_tensor("example", NULL, NULL, 0), MB_STATUS_BAD_REQUEST); /* 1x1 */
	/* after the cool-down, a failing probe re-opens it ... */
	nap_ms(COOLDOWN_MS + 150);
	CU_ASSERT_EQUAL(call_tensor("flaky", "FAIL", NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_EQUAL(breaker_metric(), 1);
	/* ... and a good probe closes it */
	nap_ms(COOLDOWN_MS + 150);
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(breaker_metric(), 0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	/* two failures are not enough to open it again; a success resets the count */
	CU_ASSERT_EQUAL(call_tensor("flaky", "FAIL", NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(call_tensor("flaky", "FAIL", NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(call_tensor("flaky", "FAIL", NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(breaker_metric(), 0);
}

/* What a plugin's run() returns is checked: a malformed result never goes out as OK, and its
 * batch counts toward the breaker (an item the model failed itself does not). */
static void
test_bad_results_model_error(void)
{
	static const char *const bad[][2] = {
		{"IFAI",
		 "flaky: flaky: item failed on purpose"}, /* first two: logged (see cases) */
		{"BLEN", "flaky: the model returned an F32 result of 1 x 1 (4 bytes) with "
			 "result_len 8"},
		{"BTYP", "flaky: the model returned result_type 99, not one of 1 (F32), 2 (top-k), "
			 "3 (text)"},
		{"NONE", "flaky: the model returned no result for this item"},
		{"EMPT", "flaky: the model failed this item without a reason"},
	};
	char reason[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(call_tensor("flaky", bad[i][0], reason, sizeof(reason)),
				MB_STATUS_MODEL_ERROR);
		CU_ASSERT_TRUE(has(reason, bad[i][1]));
		/* a good one between: the breaker (3 in a row) stays closed */
		CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	}
	/* items the model failed itself, 3 in a row: not the model's fault, still closed */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(call_tensor("flaky", "IFAI", NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(breaker_metric(), 0);
	/* 3 malformed results in a row: 3 failed batches, the breaker opens */
	for (int i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL(call_tensor("flaky", bad[i][0], NULL, 0), MB_STATUS_MODEL_ERROR);
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "circuit breaker on cpu0 is open after 3 failed batches"));
	CU_ASSERT_EQUAL(breaker_metric(), 1);
	nap_ms(COOLDOWN_MS + 150); /* and a good probe closes it for the next test */
	CU_ASSERT_EQUAL(call_tensor("flaky", NULL, NULL, 0), MB_STATUS_OK);
	CU_ASSERT_EQUAL(breaker_metric(), 0);
	CU_ASSERT_TRUE(
		has(mb_daemon_log(&g_d),
		    "model flaky on device cpu0: a malformed result answered MODEL_ERROR: "
		    "the model returned an F32 result of 1 x 1 (4 bytes) with result_len 8"));
	CU_ASSERT_TRUE(has(mb_daemon_log(&g_d), "model flaky on device cpu0: the model failed the "
						"item: flaky: item failed on purpose"));
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&g_d), "runtime error")); /* UBSan builds */
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&g_d), "AddressSanitizer"));
}

static const struct mb_test_case cases[] = {
	{"the example plugin serves its network", test_example_plugin_serves},
	{"a model that failed to load: /readyz 503 with the reason, mediabatch_ready 0",
	 test_broken_models_not_ready},
	{"--check loads every model and names each that fails", test_check_loads_models},
	{"broken plugins and weights: UNAVAILABLE with the reason; the rest serve",
	 test_broken_models_unavailable_others_serve},
	/* (this order: the failed-batch log lines are limited to 10 a minute per model) */
	{"the breaker opens, refuses at once, probes, re-opens, closes",
	 test_breaker_opens_and_recovers},
	{"a plugin's malformed results and failed items: MODEL_ERROR with the reason, logged; "
	 "malformed results count toward the breaker",
	 test_bad_results_model_error},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"plugins and breakers (e2e)", suite_init, suite_cleanup,
					   cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("plugin_test", suites);
}
