/*
 * labels_test.c (e2e): the CLI's --labels on videomae's top-k results.
 *
 * A daemon serves videomae from a "tiny" checkpoint written here (mb_net_layout() +
 * mb_ckpt_generate()) whose config.json names every class "label-<id>". Checked: without
 * --labels each top-k entry prints as "class <id> <score>"; with --labels (the checkpoint
 * directory, or its config.json) as "class <id> (label-<id>) <score>", the name being the
 * one of that id; a --labels path that does not exist, and a JSON file without id2label, are
 * usage errors (exit 2) that name the file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_ckpt.h"
#include "mb_e2e.h"
#include "mb_test.h"
#include "models/videomae_internal.h"

static struct mb_daemon g_d;
static char g_dir[64], g_ckpt[128], g_config[160], g_nolabels[160];

static int
write_files(void)
{
	struct mb_net_specs specs;
	char err[512], *cfg = malloc(1 << 16), *id2label;
	FILE *f;
	int rc;

	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_e2e_labels_XXXXXX");
	if (cfg == NULL || mkdtemp(g_dir) == NULL)
		return -1;
	snprintf(g_ckpt, sizeof(g_ckpt), "%s/tiny", g_dir);
	snprintf(g_config, sizeof(g_config), "%s/config.json", g_ckpt);
	snprintf(g_nolabels, sizeof(g_nolabels), "%s/nolabels.json", g_dir);
	rc = mb_net_layout(&mb_videomae_net, "tiny", &specs, cfg, 1 << 16, err, sizeof(err));
	if (rc == 0)
		rc = mb_ckpt_generate(g_ckpt, specs.v, specs.n, 7, "F32", 0, err, sizeof(err));
	mb_net_specs_free(&specs);
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		free(cfg);
		return -1;
	}
	/* the layout's config.json up to its id2label, then names of our own */
	id2label = strstr(cfg, "\"id2label\"");
	f = fopen(g_config, "w");
	if (id2label == NULL || f == NULL) {
		free(cfg);
		return -1;
	}
	fprintf(f, "%.*s\"id2label\": {", (int)(id2label - cfg), cfg);
	for (int i = 0; i < 400; i++)
		fprintf(f, "%s\"%d\": \"label-%d\"", i ? ", " : "", i, i);
	fprintf(f, "}\n}\n");
	fclose(f);
	free(cfg);
	f = fopen(g_nolabels, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "{\"model_type\": \"videomae\"}\n");
	return fclose(f);
}

static int
suite_init(void)
{
	char yaml[512];

	if (write_files() < 0)
		return -1;
	snprintf(yaml, sizeof(yaml),
		 "models:\n  - name: videomae\n    weights: %s\n    max_delay_us: 1000\n", g_ckpt);
	return mb_daemon_start(&g_d, yaml, NULL);
}

static int
suite_cleanup(void)
{
	char cmd[128];
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		return -1;
	return rc == 0 ? 0 : -1;
}

/* How many "class <id> ..." lines @p out has; with @p labelled, each must name label-<id>. */
static int
count_classes(const char *out, int labelled)
{
	int n = 0;

	for (const char *p = strstr(out, "  class "); p != NULL; p = strstr(p + 1, "  class ")) {
		unsigned id, named;
		float score;

		if (labelled) {
			if (sscanf(p, "  class %u (label-%u) %f", &id, &named, &score) != 3 ||
			    named != id)
				return -1;
		} else if (sscanf(p, "  class %u %f", &id, &score) != 2 ||
			   memchr(p, '(', strcspn(p, "\n")) != NULL) {
			return -1;
		}
		if (id >= 400 || !(score > 0.0f && score <= 1.0f))
			return -1;
		n++;
	}
	return n;
}

static void
test_labels(void)
{
	char out[8192];
	const char *plain[] = {"send",	   "--endpoint",   g_d.ingest, "--model",
			       "videomae", "--video-test", NULL};
	const char *by_dir[] = {"send",		"--endpoint", g_d.ingest, "--model", "videomae",
				"--video-test", "--labels",   g_ckpt,	  NULL};
	const char *by_file[] = {"send",	 "--endpoint", g_d.ingest, "--model", "videomae",
				 "--video-test", "--labels",   g_config,   NULL};
	const char *missing[] = {"send", "--video-test", "--labels", "/nonexistent/ckpt", NULL};
	const char *no_map[] = {"send", "--video-test", "--labels", g_nolabels, NULL};

	CU_ASSERT_EQUAL(mb_e2e_cli(plain, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "top-5"));
	CU_ASSERT_EQUAL(count_classes(out, 0), 5);
	CU_ASSERT_EQUAL(mb_e2e_cli(by_dir, out, sizeof(out)), 0);
	printf("\n    with --labels DIR:\n%s", out);
	CU_ASSERT_EQUAL(count_classes(out, 1), 5);
	CU_ASSERT_EQUAL(mb_e2e_cli(by_file, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(count_classes(out, 1), 5);

	CU_ASSERT_EQUAL(mb_e2e_cli(missing, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "/nonexistent/ckpt"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "No such file or directory"));
	CU_ASSERT_EQUAL(mb_e2e_cli(no_map, out, sizeof(out)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "nolabels.json has no id2label"));
}

static const struct mb_test_case cases[] = {
	{"the CLI names videomae's top-k classes with --labels", test_labels},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e labels", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("labels_test", suites);
}
