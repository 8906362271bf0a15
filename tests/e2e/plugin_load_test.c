/*
 * plugin_load_test.c (e2e): how a plugin that does not load is reported, by --check and by
 * the running daemon, with the variant test plugins (tests/plugins/variant_plugin.c):
 * loadfail's load() fails without a reason, badweights' load() fails naming its weights,
 * hugequeue's descriptor has a queue_limit the config would refuse, cudaonly runs on CUDA
 * only; nosym is not a plugin at all. Checked: "plugin failed to load" only for a shared
 * object that was not accepted, "failed to load" for a load() that failed, with what load()
 * returned when it gave no reason (never "no device serves it"); a refused descriptor
 * disables that model alone and names the field; a CUDA-only plugin loads in a build with
 * CUDA and is disabled for want of a GPU; /v2/models/NAME of a plugin that did not load is
 * not "builtin"; a reload past a plugin's start-time max_batch names "model X".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mb_build_config.h"
#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;
static struct mb_client *g_c;
static char g_yaml[4096];
static uint64_t g_id = 1;

static bool
has(const char *text, const char *needle)
{
	if (strstr(text, needle) != NULL)
		return true;
	printf("\n    \"%s\" lacks \"%s\"", text, needle);
	return false;
}

static bool
lacks(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		return true;
	printf("\n    \"%s\" has \"%s\"", text, needle);
	return false;
}

/* The models of this test, after whisper, clap and videomae are turned off (they are slow to
 * load, and not what is tested); the broken plugins turned off too unless @p broken; @p
 * flaky: more keys of flaky's entry (indented 4), or "". */
static const char *
models_yaml(bool broken, const char *flaky)
{
	const char *on = broken ? "" : "    enabled: false\n";

	snprintf(g_yaml, sizeof(g_yaml),
		 "devices:\n"
		 "  cuda: {mode: \"off\"}\n"
		 "  cpu: {workers: 1}\n"
		 "models:\n"
		 "  - {name: whisper, enabled: false}\n"
		 "  - {name: clap, enabled: false}\n"
		 "  - {name: videomae, enabled: false}\n"
		 "  - name: loadfail\n"
		 "    plugin: %s\n%s"
		 "  - name: badweights\n"
		 "    plugin: %s\n%s"
		 "    weights: /nonexistent/badweights.safetensors\n"
		 "  - name: hugequeue\n"
		 "    plugin: %s\n%s"
		 "  - name: cudaonly\n"
		 "    plugin: %s\n%s"
		 "  - name: nosym\n"
		 "    plugin: %s\n%s"
		 "  - name: flaky\n"
		 "    plugin: %s\n%s",
		 getenv("MB_PLUGIN_LOADFAIL"), on, getenv("MB_PLUGIN_BADWEIGHTS"), on,
		 getenv("MB_PLUGIN_HUGEQUEUE"), on, getenv("MB_PLUGIN_CUDAONLY"), on,
		 getenv("MB_PLUGIN_NOSYM"), on, getenv("MB_PLUGIN_FLAKY"), flaky);
	return g_yaml;
}

static int
suite_init(void)
{
	if (mb_daemon_start(&g_d, models_yaml(true, ""), NULL) < 0)
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
	return rc == 0 ? 0 : -1;
}

/* One F32 [1 x 1] request to @p model: its status, the reason or result in @p out. */
static int
call(const char *model, char *out, size_t out_len)
{
	struct mb_request_hdr h;
	struct mb_client_response r;
	double deadline = mb_e2e_now() + 15;
	float x = 1.0f;
	int st = -1;

	out[0] = '\0';
	mb_client_tensor_hdr(&h, model, 7, g_id++, 1, 1);
	if (mb_client_send(g_c, &h, &x, sizeof(x)) != 0)
		return -1;
	while (mb_e2e_now() < deadline) {
		if (mb_client_recv(g_c, &r, 1000) != 0)
			continue;
		if (r.hdr.request_id != h.request_id) {
			mb_client_response_free(&r);
			continue;
		}
		st = r.hdr.status;
		snprintf(out, out_len, "%.*s", (int)r.len, (const char *)r.data);
		mb_client_response_free(&r);
		break;
	}
	return st;
}

/* --check of this test's models: each failure named as a start would name it. */
static void
test_check_names_the_cause(void)
{
	char path[] = "/tmp/mb_e2e_plugin_load_XXXXXX", out[8192];
	const char *args[] = {"--config", path, "--check", NULL};
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "%s", models_yaml(true, ""));
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(args, out, sizeof(out)), 2);
	/* load() failed, without a reason: what it returned, and not blamed on the plugin */
	CU_ASSERT_TRUE(has(out, "model loadfail: failed to load: load() returned -5 (Input/output "
				"error) without a reason"));
	CU_ASSERT_TRUE(lacks(out, "model loadfail: plugin failed to load"));
	/* load() failed on its weights: "failed to load", as at run time */
	CU_ASSERT_TRUE(has(out, "model badweights: failed to load: "
				"/nonexistent/badweights.safetensors: not badweights's weights"));
	CU_ASSERT_TRUE(lacks(out, "model badweights: plugin failed to load"));
	/* the shared object refused: its descriptor (naming the field), or no plugin at all */
	CU_ASSERT_TRUE(has(out, "model hugequeue: plugin failed to load: "));
	CU_ASSERT_TRUE(has(out, "model hugequeue: queue_limit 4000000000 is out of range "
				"1..1000000"));
	CU_ASSERT_TRUE(has(out, "model nosym: plugin failed to load: "));
	/* CUDA only: loaded in a build with CUDA (its load waits for a GPU), refused without */
	CU_ASSERT_TRUE(MB_HAVE_CUDA ? lacks(out, "model cudaonly")
				    : has(out, "model cudaonly: plugin failed to load: "));
	CU_ASSERT_TRUE(lacks(out, "model flaky"));
	CU_ASSERT_TRUE(lacks(out, "no device serves it"));
	unlink(path);
}

/* At run time: each broken plugin's requests UNAVAILABLE with the same cause; the others,
 * and the daemon, serve on (the queue_limit of 4000000000 did not stop the start). */
static void
test_run_time_reasons(void)
{
	const char *log = mb_daemon_log(&g_d);
	char reason[512];

	CU_ASSERT_EQUAL(call("loadfail", reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "model loadfail is unavailable: failed to load: load() "
				   "returned -5 (Input/output error) without a reason"));
	CU_ASSERT_TRUE(lacks(reason, "no device serves it"));
	CU_ASSERT_EQUAL(call("badweights", reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason,
			   "model badweights is unavailable: failed to load: "
			   "/nonexistent/badweights.safetensors: not badweights's weights"));
	CU_ASSERT_EQUAL(call("hugequeue", reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(reason, "model hugequeue is unavailable: plugin failed to load: "));
	CU_ASSERT_TRUE(has(reason, "queue_limit 4000000000 is out of range 1..1000000"));
	CU_ASSERT_EQUAL(call("cudaonly", reason, sizeof(reason)), MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(MB_HAVE_CUDA ? has(reason, "it runs on CUDA only and no GPU is in use "
						  "(devices.cuda.mode is off)")
				    : has(reason, "built without CUDA"));
	CU_ASSERT_EQUAL(call("flaky", reason, sizeof(reason)), MB_STATUS_OK);
	CU_ASSERT_EQUAL(call("identity", reason, sizeof(reason)), MB_STATUS_OK);
	CU_ASSERT_TRUE(has(log, "model loadfail failed to load on cpu0: load() returned -5"));
	CU_ASSERT_TRUE(has(log, "model loadfail is disabled: failed to load: load() returned -5"));
	CU_ASSERT_TRUE(lacks(log, "no device serves it"));
}

/* /v2/models/NAME: "builtin" false for plugins, loaded or not; true for a built-in model. */
static void
test_metadata_not_builtin(void)
{
	static const struct {
		const char *name;
		bool builtin;
	} want[] = {{"hugequeue", false}, {"nosym", false},   {"loadfail", false},
		    {"flaky", false},	  {"identity", true}, {"whisper", true}};
	char path[64], body[1 << 14];

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *o;

		snprintf(path, sizeof(path), "/v2/models/%s", want[i].name);
		CU_ASSERT_EQUAL(mb_http_get(g_d.port_http, path, body, sizeof(body)), 200);
		o = json_loads(body, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		if (!json_is_boolean(json_object_get(o, "builtin")) ||
		    json_is_true(json_object_get(o, "builtin")) != want[i].builtin) {
			printf("\n    %s: builtin should be %d: %s", want[i].name, want[i].builtin,
			       body);
			CU_FAIL("builtin");
		}
		json_decref(o);
	}
}

/* SIGHUP with @p yaml as the config, then wait for the @p nth "reload refused" line. */
static bool
reload_refused(const char *yaml, int nth)
{
	double deadline = mb_e2e_now() + 20;
	FILE *f = fopen(g_d.config, "w");

	if (f == NULL)
		return false;
	fputs(yaml, f);
	fclose(f);
	mb_daemon_signal(&g_d, SIGHUP);
	while (mb_e2e_now() < deadline) {
		const char *p = mb_daemon_log(&g_d);
		int seen = 0;

		while ((p = strstr(p, "SIGHUP: reload refused")) != NULL) {
			seen++;
			p++;
		}
		if (seen >= nth)
			return true;
		usleep(20000);
	}
	printf("\n    no reload refused line %d:\n%s", nth, mb_daemon_log(&g_d));
	return false;
}

/* A reload says the causes as --check does; one that raises a plugin's max_batch past its
 * start-time value is refused naming the model ("model flaky", not "models flaky"). */
static void
test_reload_names_the_model(void)
{
	CU_ASSERT_TRUE_FATAL(reload_refused(models_yaml(true, ""), 1));
	CU_ASSERT_TRUE(has(mb_daemon_log(&g_d), "model loadfail: failed to load: load() returned "
						"-5 (Input/output error) without a reason"));
	CU_ASSERT_TRUE(has(mb_daemon_log(&g_d), "model badweights: failed to load: "));
	CU_ASSERT_TRUE(lacks(mb_daemon_log(&g_d), "model badweights: plugin failed to load"));
	CU_ASSERT_TRUE_FATAL(reload_refused(models_yaml(false, "    max_batch: 8\n"), 2));
	CU_ASSERT_TRUE(has(mb_daemon_log(&g_d), ": model flaky: max_batch 8 is above 1, the value "
						"it started with"));
	CU_ASSERT_TRUE(lacks(mb_daemon_log(&g_d), "models flaky"));
}

static const struct mb_test_case cases[] = {
	{"--check: plugin failed to load vs failed to load, and load()'s code",
	 test_check_names_the_cause},
	{"run time: each broken plugin UNAVAILABLE with its cause; the rest serve",
	 test_run_time_reasons},
	{"/v2/models/NAME: a plugin that did not load is not builtin", test_metadata_not_builtin},
	{"a reload past a plugin's max_batch names 'model X'", test_reload_names_the_model},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"plugin-load", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("plugin_load_test", suites);
}
