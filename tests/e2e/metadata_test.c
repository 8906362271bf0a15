/*
 * metadata_test.c (e2e): model metadata and readiness over HTTP (net/http.c's /v2 paths,
 * KServe's Open Inference Protocol layout) and `mediabatch models`, against the real daemon
 * with whisper tuned in the config, clap given weights that do not exist (it fails to load)
 * and logmel disabled: the list has every model with its readiness and why not; whisper's
 * metadata carries the config's values; /ready is 200 or 503 with the reason; an unknown
 * name is 404 with the models served; the CLI prints one line per model and one model's
 * metadata.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;
static char g_body[1 << 16];

static int
suite_init(void)
{
	return mb_daemon_start(&g_d,
			       "devices:\n  cuda: {mode: \"off\"}\n  cpu: {workers: 1}\n"
			       "models:\n"
			       "  - name: whisper\n    max_batch: 3\n    max_delay_us: 2000\n"
			       "    queue_limit: 50\n    default_timeout_ms: 7000\n"
			       "  - name: clap\n    weights: /nonexistent.safetensors\n"
			       "  - name: logmel\n    enabled: false\n",
			       NULL);
}

static int
suite_cleanup(void)
{
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);

	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	return rc == 0 ? 0 : -1;
}

/* GET @p path: its status, the body parsed in *@p out (NULL when not JSON). */
static int
get(const char *path, json_t **out)
{
	int status = mb_http_get(g_d.port_http, path, g_body, sizeof(g_body));

	*out = json_loads(g_body, 0, NULL);
	if (*out == NULL)
		printf("\n    %s: %d, not JSON: %s", path, status, g_body);
	return status;
}

/* The entry of model @p name in /v2/models' list @p list, or NULL. */
static json_t *
entry(json_t *list, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(list, "models"), i,
			   v) if (strcmp(json_string_value(json_object_get(v, "name")), name) ==
				  0) return v;
	return NULL;
}

static void
test_list(void)
{
	json_t *list, *e;

	CU_ASSERT_EQUAL_FATAL(get("/v2/models", &list), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	for (const char *const *n = (const char *const[]){"identity", "whisper", "videomae", NULL};
	     *n != NULL; n++) {
		e = entry(list, *n);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		CU_ASSERT(json_is_true(json_object_get(e, "ready")));
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "state")), "ready");
		CU_ASSERT_PTR_NULL(json_object_get(e, "reason"));
	}
	e = entry(list, "clap");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(json_is_false(json_object_get(e, "ready")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "state")), "failed");
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(e, "reason")),
				      "/nonexistent.safetensors"));
	e = entry(list, "logmel");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(json_is_false(json_object_get(e, "ready")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "state")), "disabled");
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(e, "reason")), "disabled in"));
	json_decref(list);
	/* HEAD answers like GET, without a body; other methods are refused (not tested here:
	 * the harness only GETs) */
}

static long long
num(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static void
test_whisper(void)
{
	json_t *m, *in, *out, *w, *dev, *v;
	bool pcm = false;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(get("/v2/models/whisper", &m), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "name")), "whisper");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "platform")), "mediabatch");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(m, "versions")), 1);
	CU_ASSERT(json_is_true(json_object_get(m, "ready")));
	CU_ASSERT(json_is_true(json_object_get(m, "builtin")));
	/* the config's values */
	CU_ASSERT_EQUAL(num(m, "batching", "max_batch"), 3);
	CU_ASSERT_EQUAL(num(m, "batching", "max_delay_us"), 2000);
	CU_ASSERT_EQUAL(num(m, "limits", "queue_limit"), 50);
	CU_ASSERT_EQUAL(num(m, "limits", "default_timeout_ms"), 7000);
	CU_ASSERT(num(m, "limits", "max_payload_bytes") > 0);
	CU_ASSERT(num(m, "units", "base_units") >= 0);
	/* the input: 16 kHz mono PCM, 30 s windows, 8 of them by default */
	in = json_array_get(json_object_get(m, "inputs"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	json_array_foreach(json_object_get(in, "media"), i, v) pcm |=
		strcmp(json_string_value(v), "pcm_s16le") == 0;
	CU_ASSERT(pcm);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(in, "sample_rate")), 16000);
	w = json_object_get(in, "window");
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(w, "length")), 30 * 16000);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(w, "unit")), "samples");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(w, "max_windows")), 8);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(w, "join")), "concat_rows");
	CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(in, "max_seconds")), 240.0, 1e-9);
	/* the output rule */
	out = json_array_get(json_object_get(m, "outputs"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "datatype")), "FP32");
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(out, "shape")), "[1500*windows x d]"));
	/* where it runs, and with what */
	dev = json_array_get(json_object_get(m, "devices"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(dev, "name")), "cpu0");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(dev, "breaker")), "closed");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "precision")), "f32");
	CU_ASSERT(json_is_string(json_object_get(m, "weights")));
	json_decref(m);

	/* clap failed to load: its metadata says why, and has no device */
	CU_ASSERT_EQUAL_FATAL(get("/v2/models/clap", &m), 200);
	CU_ASSERT(json_is_false(json_object_get(m, "ready")));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(m, "reason")), "failed to load"));
	CU_ASSERT_EQUAL(json_array_size(json_object_get(m, "devices")), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
				json_array_get(json_object_get(m, "inputs"), 0), "sample_rate")),
			48000);
	json_decref(m);
}

static void
test_ready(void)
{
	json_t *r, *v;
	bool listed = false;
	size_t i;

	CU_ASSERT_EQUAL(get("/v2/models/identity/ready", &r), 200);
	CU_ASSERT(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	CU_ASSERT_EQUAL(get("/v2/models/clap/ready", &r), 503);
	CU_ASSERT(json_is_false(json_object_get(r, "ready")));
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(r, "reason")),
				      "/nonexistent.safetensors"));
	json_decref(r);
	CU_ASSERT_EQUAL(get("/v2/models/logmel/ready", &r), 503);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "state")), "disabled");
	json_decref(r);

	/* unknown: 404 with the models served */
	CU_ASSERT_EQUAL(get("/v2/models/nosuch", &r), 404);
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(r, "error")), "nosuch"));
	json_array_foreach(json_object_get(r, "models"), i, v) listed |=
		strcmp(json_string_value(v), "whisper") == 0;
	CU_ASSERT(listed);
	json_decref(r);
	CU_ASSERT_EQUAL(get("/v2/models/nosuch/ready", &r), 404);
	json_decref(r);
	CU_ASSERT_EQUAL(get("/v2/models/whisper/versions/1", &r), 404);
	CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "error"));
	json_decref(r);
	/* percent-decoded, bounded */
	CU_ASSERT_EQUAL(get("/v2/models/whi%73per/ready", &r), 200);
	json_decref(r);
	CU_ASSERT_EQUAL(
		get("/v2/models/"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    &r),
		404);
	CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "error"));
	json_decref(r);
	CU_ASSERT_EQUAL(get("/v2/models/a%00b", &r), 404);
	json_decref(r);

	/* /readyz: ready only when every enabled model is; clap failed, logmel is off */
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/readyz", g_body, sizeof(g_body)), 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "clap"));
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/v2/health/ready", g_body, sizeof(g_body)),
			503);
	CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, "/v2/health/live", g_body, sizeof(g_body)), 200);
}

static void
test_cli(void)
{
	static char out[1 << 16];
	const char *list[] = {"models", "--metrics-endpoint", g_d.metrics, NULL};
	const char *one[] = {"models", "--metrics-endpoint", g_d.metrics, "whisper", NULL};
	const char *bad[] = {"models", "--metrics-endpoint", g_d.metrics, "nosuch", NULL};
	const char *down[] = {"models", "--metrics-endpoint", "127.0.0.1:1", NULL};
	const char *line;

	/* clap is not ready: exit 1, with every model on a line of its own */
	CU_ASSERT_EQUAL(mb_e2e_cli(list, out, sizeof(out)), 1);
	printf("\n%s", out);
	line = strstr(out, "whisper ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "ready"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "batch 3/2000 us, queue 50, timeout 7000 ms"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "16000 Hz"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "[1500*windows x d]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "identity "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "videomae "));
	line = strstr(out, "clap ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "failed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "/nonexistent.safetensors"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "logmel "));

	CU_ASSERT_EQUAL(mb_e2e_cli(one, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"name\": \"whisper\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"max_batch\": 3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"platform\": \"mediabatch\""));

	CU_ASSERT_EQUAL(mb_e2e_cli(bad, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'nosuch' is not served here"));
	CU_ASSERT_EQUAL(mb_e2e_cli(down, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot connect"));
}

/* service.ready_when any_model: /readyz 200 while one model is, though clap failed */
static void
test_ready_when_any(void)
{
	struct mb_daemon d;
	char body[4096];

	CU_ASSERT_EQUAL_FATAL(
		mb_daemon_start(&d,
				"service:\n  ready_when: any_model\n"
				"models:\n"
				"  - name: clap\n    weights: /nonexistent.safetensors\n",
				NULL),
		0);
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/readyz", body, sizeof(body)), 200);
	CU_ASSERT_EQUAL(mb_http_get(d.port_http, "/v2/models/clap/ready", body, sizeof(body)), 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "nonexistent"));
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

static const struct mb_test_case cases[] = {
	{"service.ready_when any_model: ready with a model down", test_ready_when_any},
	{"/v2/models lists every model, ready or why not", test_list},
	{"/v2/models/whisper: the config's values", test_whisper},
	{"/ready 200 or 503 with the reason; unknown 404", test_ready},
	{"mediabatch models [NAME]", test_cli},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"metadata", suite_init, suite_cleanup, cases};
static const struct mb_test_suite *const suites[] = {&suite, NULL};

int
main(void)
{
	return mb_test_main("metadata_test", suites);
}
