/*
 * reload_test.c (e2e): SIGHUP re-reads --config and applies what may change while running,
 * the tenants' rate limits and the models' queue limits among them; a file that does not
 * load, or raises a queue past the size it started with, changes nothing; the daemon serves
 * on through all of it and drains to exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_test.h"

struct tally {
	int ok, overloaded, other;
	char reason[256]; /* the last OVERLOADED reason */
};

/* Send @p n identity requests of tenant @p tenant at once and collect every answer. */
static void
burst(const struct mb_daemon *d, uint32_t tenant, int n, struct tally *t)
{
	static uint64_t id = 1000;
	struct mb_client *c = mb_e2e_client(d, NULL);
	float x = 1.0f;
	int answered = 0;
	double deadline = mb_e2e_now() + 30;

	memset(t, 0, sizeof(*t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < n; i++) {
		struct mb_request_hdr h;

		mb_client_tensor_hdr(&h, "identity", tenant, id++, 1, 1);
		CU_ASSERT_EQUAL(mb_client_send(c, &h, &x, sizeof(x)), 0);
	}
	while (answered < n && mb_e2e_now() < deadline) {
		struct mb_client_response r;

		if (mb_client_recv(c, &r, 1000) != 0)
			continue;
		answered++;
		if (r.hdr.status == MB_STATUS_OK) {
			t->ok++;
		} else if (r.hdr.status == MB_STATUS_OVERLOADED) {
			t->overloaded++;
			snprintf(t->reason, sizeof(t->reason), "%.*s", (int)r.len, (char *)r.data);
		} else {
			t->other++;
		}
		mb_client_response_free(&r);
	}
	CU_ASSERT_EQUAL(answered, n);
	mb_client_close(&c);
}

static void
write_config(const struct mb_daemon *d, const char *yaml)
{
	FILE *f = fopen(d->config, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "%s\ndevices:\n  cuda: {mode: \"off\"}\n", yaml);
	fclose(f);
}

/* SIGHUP, then wait for the reload's log line (the @p nth one that has @p what). */
static bool
hup_and_wait(struct mb_daemon *d, const char *what, int nth)
{
	double deadline = mb_e2e_now() + 10;

	mb_daemon_signal(d, SIGHUP);
	while (mb_e2e_now() < deadline) {
		const char *log = mb_daemon_log(d), *p = log;
		int seen = 0;

		while ((p = strstr(p, what)) != NULL) {
			seen++;
			p++;
		}
		if (seen >= nth)
			return true;
		usleep(20000);
	}
	printf("\n    no \"%s\" in the log after SIGHUP:\n%s", what, mb_daemon_log(d));
	return false;
}

static double
reloads(const struct mb_daemon *d, const char *result)
{
	char series[96];

	snprintf(series, sizeof(series), "mediabatch_config_reloads_total{result=\"%s\"}", result);
	return mb_daemon_metric(d, series);
}

static void
test_sighup_reload(void)
{
	static const char start[] = "tenants:\n"
				    "  limits:\n"
				    "    - {tenant: 5, rate: 0.001, burst: 2}\n"
				    "models:\n"
				    "  - name: identity\n"
				    "    queue_limit: 64\n"
				    "    max_delay_us: 300000\n";
	struct mb_daemon d;
	struct tally t;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, start, NULL), 0);
	/* as started: tenant 5 gets its burst of 2, then OVERLOADED */
	burst(&d, 5, 4, &t);
	CU_ASSERT_EQUAL(t.ok, 2);
	CU_ASSERT_EQUAL(t.overloaded, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason, "tenant 5 is over its rate limit"));

	/* reload: tenant 5 unlimited, identity's queue down to 4 */
	write_config(&d, "models:\n  - name: identity\n    queue_limit: 4\n"
			 "    max_delay_us: 300000\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 1));
	CU_ASSERT_EQUAL(reloads(&d, "applied"), 1);
	/* only live keys changed: nothing waits for a start */
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "no other key differs from what runs"));
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_config_restart_pending_keys"), 0);
	burst(&d, 5, 4, &t);
	CU_ASSERT_EQUAL(t.ok, 4); /* no rate limit any more, and 4 fit the queue */
	burst(&d, 6, 12, &t);	  /* 12 at once: past the new queue_limit */
	CU_ASSERT(t.ok >= 4);
	CU_ASSERT(t.overloaded >= 1);
	CU_ASSERT_EQUAL(t.ok + t.overloaded, 12);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason, "queue_limit 4"));

	/* past the size the queue started with: refused whole, nothing changes */
	write_config(&d, "tenants:\n  default_rate: 0.001\n"
			 "models:\n  - name: identity\n    queue_limit: 128\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 1));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "queue_limit 128 is above 64"));
	CU_ASSERT_EQUAL(reloads(&d, "refused"), 1);
	burst(&d, 7, 12, &t); /* the default rate was not applied either */
	CU_ASSERT_EQUAL(t.ok + t.overloaded, 12);
	CU_ASSERT(t.ok >= 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(t.reason, "queue_limit 4"));

	/* a file that does not load: refused with the loader's message, still serving */
	write_config(&d, "models:\n  - name: identity\n    queue_limt: 8\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 2));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "unexpected key 'queue_limt'"));
	CU_ASSERT_EQUAL(reloads(&d, "refused"), 2);
	burst(&d, 5, 2, &t);
	CU_ASSERT_EQUAL(t.ok, 2);

	/* max_batch past its value at start (identity's 64): refused whole */
	write_config(&d, "models:\n  - name: identity\n    max_batch: 1000\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 3));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "max_batch 1000 is above 64"));

	/* default_timeout_ms below max_delay_us: a lone request now times out in its queue
	 * (queue_limit stays given: left out, it would go back to identity's 4096 and the
	 * reload would be refused, as the file is read whole) */
	write_config(&d, "models:\n  - name: identity\n    queue_limit: 64\n"
			 "    max_delay_us: 300000\n    default_timeout_ms: 50\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 2));
	burst(&d, 5, 1, &t);
	CU_ASSERT_EQUAL(t.other, 1); /* TIMEOUT */
	CU_ASSERT_EQUAL(reloads(&d, "applied"), 2);
	CU_ASSERT_EQUAL(reloads(&d, "refused"), 3);

	/* a file whose live keys would apply but that would not start (a model's weights
	 * missing; a DPDK heap too small for max_inflight): refused, as --check refuses it, and
	 * the live keys stay as they were (the timeout of 50 ms above) */
	write_config(&d, "models:\n  - name: identity\n    queue_limit: 64\n"
			 "    max_delay_us: 300000\n  - name: whisper\n"
			 "    weights: /nonexistent/whisper.safetensors\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 4));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "the file would not start (as --check "
							 "says)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "model whisper: failed to load"));
	write_config(&d, "service:\n  max_inflight: 1048576\nmodels:\n  - name: identity\n"
			 "    queue_limit: 64\n    max_delay_us: 300000\n");
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 5));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "the DPDK heap is too small"));
	CU_ASSERT_EQUAL(reloads(&d, "refused"), 5);
	CU_ASSERT_EQUAL(reloads(&d, "applied"), 2);
	burst(&d, 5, 1, &t);
	CU_ASSERT_EQUAL(t.other, 1); /* still the 50 ms timeout: TIMEOUT */

	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/*
 * An applied reload says which changed keys wait for the next start, compared as in effect:
 * a model key given its default is no change; mediabatch_config_restart_pending_keys counts
 * them, and goes back to 0 when the file is again what runs.
 */
static bool
has_line(const struct mb_daemon *d, const char *what)
{
	if (strstr(mb_daemon_log(d), what) != NULL)
		return true;
	printf("\n    no \"%s\" in the log:\n%s", what, mb_daemon_log(d));
	return false;
}

static void
test_reload_lists_restart_keys(void)
{
	static const char start[] = "service:\n  drain_timeout_ms: 4000\n"
				    "models:\n  - name: identity\n    queue_limit: 64\n";
	static const char changed[] =
		"service:\n  drain_timeout_ms: 5000\nzmq:\n  pub_sndhwm: 999\n"
		"breaker:\n  cooldown_ms: 1234\n"
		"models:\n  - name: identity\n    queue_limit: 32\n    run_timeout_ms: 5000\n"
		"  - name: logmel\n    run_timeout_ms: 60000\n    max_windows: 8\n"
		"  - name: whisper\n    enabled: false\n";
	struct mb_daemon d;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, start, NULL), 0);
	write_config(&d, changed);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 1));
	/* logmel's run_timeout_ms and max_windows are their defaults: not listed */
	if (!has_line(&d, "changed, waiting for the next start: service.drain_timeout_ms, "
			  "zmq.pub_sndhwm, breaker.cooldown_ms, models[identity].run_timeout_ms, "
			  "models[whisper].enabled\n"))
		CU_FAIL("the reload's line does not list the changed keys");
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_config_restart_pending_keys"), 5);
	write_config(&d, start);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 2));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "no other key differs from what runs"));
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_config_restart_pending_keys"), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
}

/* identity with @p delay_us, whisper with its weights at @p dir/@p weights */
static void
two_models(char *buf, size_t len, const char *dir, const char *weights, unsigned int delay_us)
{
	snprintf(buf, len,
		 "models:\n  - name: identity\n    queue_limit: 64\n    max_delay_us: %u\n"
		 "  - name: whisper\n    weights: %s/%s\n",
		 delay_us, dir, weights);
}

/*
 * A reload loads again only the models whose weights path, plugin or files changed. whisper's
 * weights are a copy of the build's checkpoint directory. A reload that changes only a live
 * key loads nothing (the log says when it loads). The directory replaced by a good copy (new
 * inodes): loaded, applied. Its safetensors file truncated in place (same path and inode):
 * loaded, refused. The same for the directory moved away, and for another path named.
 */
static void
test_reload_loads_what_changed(void)
{
	char dir[] = "/tmp/mb_e2e_reload_w_XXXXXX", cmd[1024], yaml[1024];
	const char *bin = getenv("MB_DAEMON");
	struct mb_daemon d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(bin);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "cp -r \"$(dirname '%s')/weights/whisper\" '%s/whisper'", bin,
		 dir);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	two_models(yaml, sizeof(yaml), dir, "whisper", 1000);
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, yaml, NULL), 0);
	two_models(yaml, sizeof(yaml), dir, "whisper", 2000); /* a live key only */
	write_config(&d, yaml);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 1));
	CU_ASSERT_EQUAL(reloads(&d, "applied"), 1);
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&d), "changed on disk"));

	/* replaced by a good copy: new inodes, loaded again and applied */
	snprintf(cmd, sizeof(cmd),
		 "cp -r '%s/whisper' '%s/new' && rm -r '%s/whisper' && "
		 "mv '%s/new' '%s/whisper'",
		 dir, dir, dir, dir, dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	two_models(yaml, sizeof(yaml), dir, "whisper", 3000);
	write_config(&d, yaml);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reloaded", 2));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "SIGHUP: model whisper: its weights or "
							 "plugin changed on disk"));

	/* truncated in place: same path and inode, another size: refused */
	snprintf(cmd, sizeof(cmd), "truncate -s 1000 '%s/whisper/model.safetensors'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	write_config(&d, yaml);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 1));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb_daemon_log(&d), "model whisper: failed to load"));

	/* moved away: refused */
	snprintf(cmd, sizeof(cmd), "mv '%s/whisper' '%s/gone'", dir, dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	write_config(&d, yaml);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 2));
	CU_ASSERT_EQUAL(reloads(&d, "applied"), 2);

	/* another path named: loaded, refused */
	snprintf(cmd, sizeof(cmd), "mv '%s/gone' '%s/whisper'", dir, dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	two_models(yaml, sizeof(yaml), dir, "elsewhere", 2000);
	write_config(&d, yaml);
	CU_ASSERT_TRUE(hup_and_wait(&d, "SIGHUP: reload refused", 3));
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static const struct mb_test_case cases[] = {
	{"SIGHUP: rate limits and queue limits applied; bad files and raises refused whole",
	 test_sighup_reload},
	{"SIGHUP: only models whose weights path, plugin or files changed are loaded again",
	 test_reload_loads_what_changed},
	{"SIGHUP: the log and a gauge say which changed keys wait for the next start",
	 test_reload_lists_restart_keys},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e reload", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("e2e_reload", suites);
}
