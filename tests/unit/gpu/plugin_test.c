/*
 * plugin_test.c: the plugin loader with real shared objects built by meson (paths from the
 * environment): the example plugin loaded, served and unloaded; a plugin built against
 * another interface version, a shared object with no mb_model_plugin, a file that is not a
 * shared object and a missing file refused with the reason; weights errors surfacing from a
 * plugin's load(); descriptors built in memory checked field by field (mb_plugin_check_desc():
 * name, devices, media, the config's ranges), each refusal naming its field and value.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_config.h"
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

/* ---- descriptors in memory ---- */

static int
desc_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	(void)hdr;
	(void)reason;
	(void)reason_len;
	return 0;
}

static int
desc_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	(void)args;
	(void)reason;
	(void)reason_len;
	*state = NULL;
	return 0;
}

static int
desc_run(void *state, struct mb_model_batch *batch)
{
	(void)state;
	(void)batch;
	return 0;
}

/* A descriptor that passes; each test changes one field of a copy. */
static const struct mb_model_desc g_good = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "mylin",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_F32),
	.devices = MB_MODEL_ON_CPU,
	.base_units = 1,
	.item_units_per_second = 0.5,
	.max_batch = 16,
	.max_delay_us = 1000,
	.queue_limit = 256,
	.default_timeout_ms = 10000,
	.check = desc_check,
	.load = desc_load,
	.run = desc_run,
};

/* mb_plugin_check_desc() of @p d: its return code, the message in g_err. */
static int
check_desc(const struct mb_model_desc *d)
{
	g_err[0] = '\0';
	return mb_plugin_check_desc("/p/libmylin.so", d, g_err, sizeof(g_err));
}

static void
test_desc_good(void)
{
	struct mb_model_desc d = g_good;

	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.media_mask = MB_MEDIA_MASK_ANY; /* identity's: every medium */
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE) |
		       MB_MEDIA_MASK(MB_MEDIA_RGB24) | MB_MEDIA_MASK(MB_MEDIA_F32);
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.devices = MB_MODEL_ON_CPU | MB_MODEL_ON_CUDA;
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.name = "a-b_c.d/1234567"; /* 15 of printable ASCII */
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.name = "abcdefghijklmnop"; /* 16: the protocol's field */
	CU_ASSERT_EQUAL(check_desc(&d), 0);
}

/* A name: 1..16 bytes of printable ASCII without spaces, as the protocol's model field takes
 * it; the message says which byte and why (a space is printable: not "not printable"). */
static void
test_desc_name(void)
{
	struct mb_model_desc d = g_good;

	d.name = "my lin";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("/p/libmylin.so: the model's name 'my lin' has a space (byte 2): "
			       "a model name is printable ASCII without spaces (0x21-0x7e)"));
	CU_ASSERT_PTR_NULL(strstr(g_err, "not printable"));
	d.name = "my\tlin";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("byte 2 of the model's name is 0x09: a model name is printable "
			       "ASCII without spaces"));
	d.name = "caf\xc3\xa9";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("byte 3 of the model's name is 0xc3"));
	d.name = "a \x01";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL); /* not quoted: it has a control byte */
	CU_ASSERT_TRUE(err_has("byte 1 of the model's name is 0x20"));
	d.name = "";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("the model's name is empty: give it 1..16 characters"));
	d.name = NULL;
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("the model's name is NULL"));
	d.name = "abcdefghijklmnopq";
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("the model's name is longer than 16 characters"));
}

/* devices: 0 has its own message; CUDA only is refused only by a build without CUDA (a build
 * with CUDA loads it once per GPU, and disables it where no GPU is in use). */
static void
test_desc_devices(void)
{
	struct mb_model_desc d = g_good;

	d.devices = 0;
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("model mylin declares no device it runs on (devices is 0)"));
	CU_ASSERT_PTR_NULL(strstr(g_err, "CUDA devices"));
	d.devices = MB_MODEL_ON_CPU | 0x4;
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("model mylin: devices 0x5 has bits of no device mediabatch knows "
			       "(0x4)"));
	d.devices = MB_MODEL_ON_CUDA;
	if (MB_HAVE_CUDA) {
		CU_ASSERT_EQUAL(check_desc(&d), 0);
		if (g_err[0] != '\0')
			printf("\n    %s", g_err);
	} else {
		CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
		CU_ASSERT_TRUE(err_has("model mylin runs only on CUDA devices (devices is "
				       "MB_MODEL_ON_CUDA), and this mediabatch was built without "
				       "CUDA"));
	}
}

/* media_mask: not 0, and of media the protocol has (or MB_MEDIA_MASK_ANY). */
static void
test_desc_media(void)
{
	struct mb_model_desc d = g_good;

	d.media_mask = 0;
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("model mylin: media_mask is 0: it accepts no media"));
	d.media_mask = 0x1000;
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("model mylin: media_mask 0x1000 has bits of no medium mediabatch "
			       "knows (0x1000)"));
	d.media_mask = MB_MEDIA_MASK(MB_MEDIA_F32) | 1u; /* media 0 is no medium */
	CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
	CU_ASSERT_TRUE(err_has("media_mask 0x11 has bits of no medium mediabatch knows (0x1)"));
}

/* The config's ranges for the models[] keys a descriptor also carries (core/config.c);
 * test_desc_ranges_are_the_configs() checks that the config has the same. */
static const struct {
	const char *field;
	size_t offset;
	uint32_t lo, hi;
} g_ranges[] = {
	{"max_batch", offsetof(struct mb_model_desc, max_batch), 1, 1024},
	{"max_delay_us", offsetof(struct mb_model_desc, max_delay_us), 0, 10000000},
	{"queue_limit", offsetof(struct mb_model_desc, queue_limit), 1, 1000000},
	{"default_timeout_ms", offsetof(struct mb_model_desc, default_timeout_ms), 1, 3600000},
	{"base_units", offsetof(struct mb_model_desc, base_units), 0, 1000000},
};

static int
check_with(size_t offset, uint32_t v)
{
	struct mb_model_desc d = g_good;

	memcpy((char *)&d + offset, &v, sizeof(v));
	return check_desc(&d);
}

/* Each number inside its range passes; outside, the refusal names the field, the value and
 * the range, and nothing else (not a list of every rule). */
static void
test_desc_ranges(void)
{
	char want[160];

	for (size_t i = 0; i < sizeof(g_ranges) / sizeof(g_ranges[0]); i++) {
		uint32_t bad[3] = {g_ranges[i].hi + 1, 4000000000u, g_ranges[i].lo - 1};

		CU_ASSERT_EQUAL(check_with(g_ranges[i].offset, g_ranges[i].lo), 0);
		CU_ASSERT_EQUAL(check_with(g_ranges[i].offset, g_ranges[i].hi), 0);
		for (int k = 0; k < (g_ranges[i].lo > 0 ? 3 : 2); k++) {
			CU_ASSERT_EQUAL(check_with(g_ranges[i].offset, bad[k]), -EINVAL);
			snprintf(want, sizeof(want),
				 "/p/libmylin.so: model mylin: %s %u is out of range %u..%u, as "
				 "models[].%s in a config",
				 g_ranges[i].field, bad[k], g_ranges[i].lo, g_ranges[i].hi,
				 g_ranges[i].field);
			CU_ASSERT_TRUE(err_has(want));
			CU_ASSERT_PTR_NULL(strstr(g_err, "media_mask"));
		}
	}
}

/* item_units_per_second: finite, 0..1000000 (NaN and inf passed a "< 0" test, and turned
 * admission off). */
static void
test_desc_units_per_second(void)
{
	struct mb_model_desc d = g_good;
	const struct {
		double v;
		const char *says;
	} bad[] = {{NAN, "nan"},   {INFINITY, "inf"},	     {-INFINITY, "-inf"},
		   {-0.5, "-0.5"}, {1000000.5, "1000000.5"}, {4e9, "4e+09"}};

	d.item_units_per_second = 0;
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	d.item_units_per_second = 1e6;
	CU_ASSERT_EQUAL(check_desc(&d), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[160];

		d.item_units_per_second = bad[i].v;
		CU_ASSERT_EQUAL(check_desc(&d), -EINVAL);
		snprintf(want, sizeof(want),
			 "model mylin: item_units_per_second %s is out of range 0..1000000",
			 bad[i].says);
		CU_ASSERT_TRUE(err_has(want));
	}
}

/* The config file refuses the same values for its models[] keys: the two stay in step. */
static void
test_desc_ranges_are_the_configs(void)
{
	char yaml[256], err[512];

	for (size_t i = 0; i <= sizeof(g_ranges) / sizeof(g_ranges[0]); i++) {
		bool units = i == sizeof(g_ranges) / sizeof(g_ranges[0]);
		const char *field = units ? "item_units_per_second" : g_ranges[i].field;
		uint64_t lo = units ? 0 : g_ranges[i].lo, hi = units ? 1000000 : g_ranges[i].hi;
		const uint64_t vals[] = {lo, hi, hi + 1, lo - 1};

		for (int k = 0; k < (lo > 0 ? 4 : 3); k++) {
			struct mb_config cfg;
			int rc;

			snprintf(yaml, sizeof(yaml),
				 "models:\n  - name: identity\n    %s: %" PRIu64 "\n", field,
				 vals[k]);
			mb_config_defaults(&cfg);
			rc = mb_config_load(&cfg, mb_test_write_temp(yaml), err, sizeof(err));
			mb_config_fini(&cfg);
			if ((rc == 0) != (k < 2))
				printf("\n    config %s: %" PRIu64 ": %d (%s)", field, vals[k], rc,
				       err);
			CU_ASSERT_EQUAL(rc == 0, k < 2);
			if (!units)
				CU_ASSERT_EQUAL(check_with(g_ranges[i].offset, (uint32_t)vals[k]) ==
							0,
						k < 2);
		}
	}
}

/* A plugin's own descriptor refused through mb_plugin_open(): the file, the field. */
static void
test_desc_refused_on_open(void)
{
	struct mb_plugin *p = NULL;

	/* the example plugin passes (as every test plugin the e2e tests serve does) */
	CU_ASSERT_EQUAL(mb_plugin_open(env_path("MB_PLUGIN_EXAMPLE"), &p, g_err, sizeof(g_err)), 0);
	mb_plugin_close(&p);
	CU_ASSERT_EQUAL(mb_plugin_open(env_path("MB_PLUGIN_HUGEQUEUE"), &p, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_TRUE(err_has(env_path("MB_PLUGIN_HUGEQUEUE")));
	CU_ASSERT_TRUE(err_has("model hugequeue: queue_limit 4000000000 is out of range "
			       "1..1000000"));
	CU_ASSERT_EQUAL(mb_plugin_open(env_path("MB_PLUGIN_CUDAONLY"), &p, g_err, sizeof(g_err)),
			MB_HAVE_CUDA ? 0 : -EINVAL);
	mb_plugin_close(&p);
}

static const struct mb_test_case cases[] = {
	{"the example plugin loads, serves and unloads", test_example_load_serve_unload},
	{"a plugin's weights errors reach its load()", test_example_weights_errors},
	{"a plugin of another interface version is refused", test_wrong_interface_version},
	{"not a plugin, not a shared object, no file: refused", test_not_a_plugin},
	{"the flaky test plugin fails on demand", test_flaky_fails_on_demand},
	{"a good descriptor passes", test_desc_good},
	{"a name: printable ASCII without spaces, 1..16", test_desc_name},
	{"devices: 0 refused as such; CUDA only refused without CUDA", test_desc_devices},
	{"media_mask: non-zero, known media only", test_desc_media},
	{"numbers in the config's ranges, the field named", test_desc_ranges},
	{"item_units_per_second: finite, 0..1000000", test_desc_units_per_second},
	{"the descriptor's ranges are the config's", test_desc_ranges_are_the_configs},
	{"a descriptor refused at open names the file and field", test_desc_refused_on_open},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"plugins", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("plugin_test", suites);
}
