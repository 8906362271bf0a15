/*
 * plugin_test.c: the plugin loader with real shared objects built by meson (paths from the
 * environment): the example plugin loaded, served and unloaded; a plugin built against
 * another interface version, a shared object with no mb_model_plugin, a file that is not a
 * shared object and a missing file refused with the reason; weights errors surfacing from a
 * plugin's load().
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_plugin.h"
#include "mb_test.h"
#include "mb_weights.h"

static char g_err[1024];
static char g_weights[64];

/* The example plugin's tensors (examples/plugin/example_plugin.c documents them). */
static const struct mb_weights_spec g_example_specs[] = {
	{"fc1.weight", 2, {32, 16}},
	{"fc1.bias", 1, {32}},
	{"fc2.weight", 2, {4, 32}},
	{"fc2.bias", 1, {4}},
};

static const char *
env_path(const char *var)
{
	const char *p = getenv(var);

	if (p == NULL) {
		fprintf(stderr, "%s is not set (meson sets it)\n", var);
		exit(99);
	}
	return p;
}

static bool
err_has(const char *needle)
{
	bool ok = strstr(g_err, needle) != NULL;

	if (!ok)
		printf("\n    error \"%s\" lacks \"%s\"", g_err, needle);
	return ok;
}

static int
suite_init(void)
{
	int fd;

	snprintf(g_weights, sizeof(g_weights), "/tmp/mb_plugin_XXXXXX");
	fd = mkstemp(g_weights);
	if (fd < 0)
		return -1;
	close(fd);
	return mb_weights_generate(g_weights, g_example_specs, 4, 99, g_err, sizeof(g_err));
}

static int
suite_cleanup(void)
{
	return unlink(g_weights);
}

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

static void
test_example_load_serve_unload(void)
{
	struct mb_plugin *p = NULL;
	const struct mb_model_desc *d;
	struct mb_model_load_args args = {.device = -1, .numa_node = -1, .weights_path = g_weights};
	struct mb_request_hdr h = {.version = 1, .media = MB_MEDIA_F32, .frames = 3, .height = 16};
	float x[2][3 * 16], *w[4];
	struct mb_model_item items[2] = {
		{.hdr = &h, .payload = x[0], .payload_len = sizeof(x[0])},
		{.hdr = &h, .payload = x[1], .payload_len = sizeof(x[1])},
	};
	struct mb_model_batch b = {.items = items, .n_items = 2, .device = -1};
	char reason[256];
	void *state = NULL;
	double worst = 0;

	CU_ASSERT_EQUAL_FATAL(
		mb_plugin_open(env_path("MB_PLUGIN_EXAMPLE"), &p, g_err, sizeof(g_err)), 0);
	d = mb_plugin_desc(p);
	CU_ASSERT_STRING_EQUAL(d->name, "example");
	CU_ASSERT_EQUAL(d->abi_version, MB_MODEL_ABI_VERSION);
	CU_ASSERT_EQUAL(d->check(&h, reason, sizeof(reason)), 0);
	h.height = 15;
	CU_ASSERT_EQUAL(d->check(&h, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "example takes F32 [rows x 16]"));
	h.height = 16;
	CU_ASSERT_EQUAL_FATAL(d->load(&args, &state, reason, sizeof(reason)), 0);
	for (int i = 0; i < 2 * 3 * 16; i++)
		x[i / 48][i % 48] = sinf((float)i * 0.37f);
	b.alloc_result = alloc_result;
	CU_ASSERT_EQUAL_FATAL(d->run(state, &b), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_load(g_weights, g_example_specs, 4, w, g_err, sizeof(g_err)), 0);
	for (int it = 0; it < 2; it++) {
		CU_ASSERT_FALSE(items[it].failed);
		CU_ASSERT(items[it].rows == 3 && items[it].cols == 4 && items[it].result_len == 48);
		for (int r = 0; r < 3; r++)
			for (int o = 0; o < 4; o++) {
				double y = w[3][o];

				for (int j = 0; j < 32; j++) {
					double hj = w[1][j];

					for (int k = 0; k < 16; k++)
						hj += (double)w[0][j * 16 + k] * x[it][r * 16 + k];
					y += (double)w[2][o * 32 + j] * (hj > 0 ? hj : 0);
				}
				worst = fmax(worst,
					     fabs(((float *)items[it].result)[r * 4 + o] - y));
			}
		free(items[it].result);
	}
	CU_ASSERT(worst < 1e-5);
	for (int i = 0; i < 4; i++)
		free(w[i]);
	d->unload(state);
	mb_plugin_close(&p);
	CU_ASSERT_PTR_NULL(p);
	mb_plugin_close(&p); /* NULL is fine */
}

static void
test_example_weights_errors(void)
{
	struct mb_plugin *p = NULL;
	const struct mb_model_desc *d;
	struct mb_model_load_args args = {.device = -1, .numa_node = -1};
	struct mb_weights_spec wrong[4];
	char reason[256] = "";
	void *state = NULL;

	CU_ASSERT_EQUAL_FATAL(
		mb_plugin_open(env_path("MB_PLUGIN_EXAMPLE"), &p, g_err, sizeof(g_err)), 0);
	d = mb_plugin_desc(p);
	CU_ASSERT_NOT_EQUAL(d->load(&args, &state, reason, sizeof(reason)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "needs a weights file"));
	memcpy(wrong, g_example_specs, sizeof(wrong));
	wrong[2].shape[1] = 31;
	CU_ASSERT_EQUAL_FATAL(mb_weights_generate(g_weights, wrong, 4, 99, g_err, sizeof(g_err)),
			      0);
	args.weights_path = g_weights;
	CU_ASSERT_NOT_EQUAL(d->load(&args, &state, reason, sizeof(reason)), 0);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(reason, "tensor 'fc2.weight': shape [4, 31], expected [4, 32]"));
	mb_plugin_close(&p);
	/* put the good weights back for the other tests */
	CU_ASSERT_EQUAL(
		mb_weights_generate(g_weights, g_example_specs, 4, 99, g_err, sizeof(g_err)), 0);
}

static void
test_wrong_interface_version(void)
{
	struct mb_plugin *p = NULL;
	const char *path = env_path("MB_PLUGIN_BADABI");

	CU_ASSERT_EQUAL(mb_plugin_open(path, &p, g_err, sizeof(g_err)), -EPROTO);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_TRUE(err_has(path));
	CU_ASSERT_TRUE(err_has("built against model interface version 2, but this daemon speaks "
			       "version 1"));
}

static void
test_not_a_plugin(void)
{
	struct mb_plugin *p = NULL;
	const char *text;

	CU_ASSERT_EQUAL(mb_plugin_open(env_path("MB_PLUGIN_NOSYM"), &p, g_err, sizeof(g_err)),
			-ENOEXEC);
	CU_ASSERT_TRUE(err_has("exports no mb_model_plugin(): not a mediabatch model plugin"));
	CU_ASSERT_EQUAL(mb_plugin_open("/nonexistent/libx.so", &p, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_TRUE(err_has("/nonexistent/libx.so: No such file or directory"));
	text = mb_test_write_temp("this is not an ELF file\n");
	CU_ASSERT_EQUAL(mb_plugin_open(text, &p, g_err, sizeof(g_err)), -ENOEXEC);
	CU_ASSERT_TRUE(err_has("cannot load it"));
	CU_ASSERT_PTR_NULL(p);
}

static void
test_flaky_fails_on_demand(void)
{
	struct mb_plugin *p = NULL;
	const struct mb_model_desc *d;
	struct mb_request_hdr h = {.version = 1, .media = MB_MEDIA_F32, .frames = 1, .height = 1};
	char bad[4] = {'F', 'A', 'I', 'L'}, good[4] = {0};
	struct mb_model_item it = {.hdr = &h, .payload = bad, .payload_len = 4};
	struct mb_model_batch b = {.items = &it, .n_items = 1, .device = -1};

	CU_ASSERT_EQUAL_FATAL(mb_plugin_open(env_path("MB_PLUGIN_FLAKY"), &p, g_err, sizeof(g_err)),
			      0);
	d = mb_plugin_desc(p);
	b.alloc_result = alloc_result;
	CU_ASSERT_EQUAL(d->run(NULL, &b), -EIO);
	it.payload = good;
	CU_ASSERT_EQUAL(d->run(NULL, &b), 0);
	CU_ASSERT_EQUAL(*(float *)it.result, 4.0f);
	free(it.result);
	mb_plugin_close(&p);
}

static const struct mb_test_case cases[] = {
	{"the example plugin loads, serves and unloads", test_example_load_serve_unload},
	{"a plugin's weights errors reach its load()", test_example_weights_errors},
	{"a plugin of another interface version is refused", test_wrong_interface_version},
	{"not a plugin, not a shared object, no file: refused", test_not_a_plugin},
	{"the flaky test plugin fails on demand", test_flaky_fails_on_demand},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"plugins", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("plugin_test", suites);
}
