/*
 * weights_test.c: safetensors files: a written file reads back exactly; placeholder weights
 * are deterministic; and every kind of broken file is refused with a message that names the
 * file, the tensor and what was expected versus found.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_models.h"
#include "mb_test.h"
#include "mb_weights.h"

static char g_dir[64];
static char g_err[1024];

static int
suite_init(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_weights_XXXXXX");
	return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static const char *
path_of(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", g_dir, name);
	return p;
}

static int
suite_cleanup(void)
{
	static const char *const names[] = {"a",    "b",    "c",     "d",   "raw", "gen1",
					    "gen2", "gen3", "trunc", "lfs", "fifo"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_of(names[i]));
	return rmdir(g_dir);
}

static bool
err_has(const char *needle)
{
	bool ok = strstr(g_err, needle) != NULL;

	if (!ok)
		printf("\n    error \"%s\" lacks \"%s\"", g_err, needle);
	return ok;
}

/* A file with the given JSON header and @p data_len bytes of data (0x11 each). */
static const char *
write_raw(const char *json, size_t data_len)
{
	const char *p = path_of("raw");
	FILE *f = fopen(p, "wb");
	uint64_t n = strlen(json);

	for (int i = 0; i < 8; i++)
		fputc((int)(n >> (8 * i)) & 0xff, f);
	fwrite(json, 1, n, f);
	for (size_t i = 0; i < data_len; i++)
		fputc(0x11, f);
	fclose(f);
	return p;
}

static int
open_raw(const char *json, size_t data_len)
{
	struct mb_weights *w = NULL;
	int rc;

	g_err[0] = '\0';
	rc = mb_weights_open(write_raw(json, data_len), &w, g_err, sizeof(g_err));
	mb_weights_close(&w);
	return rc;
}

static const struct mb_weights_spec g_specs[] = {
	{"layer.weight", 3, {4, 2, 3}},
	{"layer.bias", 1, {4}},
};

static void
test_write_read_back(void)
{
	float w[24], b[4];
	struct mb_weights_entry e[2] = {
		{"layer.weight", 3, {4, 2, 3}, w},
		{"layer.bias", 1, {4}, b},
	};
	struct mb_weights *f;
	float *out[2];

	for (int i = 0; i < 24; i++)
		w[i] = (float)i * 0.5f - 3.0f;
	for (int i = 0; i < 4; i++)
		b[i] = (float)-i;
	CU_ASSERT_EQUAL_FATAL(mb_weights_write(path_of("a"), e, 2, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(mb_weights_open(path_of("a"), &f, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(mb_weights_count(f), 2);
	CU_ASSERT_STRING_EQUAL(mb_weights_at(f, 0)->name, "layer.weight"); /* by offset */
	CU_ASSERT_STRING_EQUAL(mb_weights_find(f, "layer.bias")->dtype, "F32");
	CU_ASSERT_EQUAL(mb_weights_find(f, "layer.bias")->begin, 96);
	CU_ASSERT_PTR_NULL(mb_weights_find(f, "__metadata__"));
	CU_ASSERT_EQUAL_FATAL(mb_weights_bind(f, g_specs, 2, out, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(memcmp(out[0], w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(memcmp(out[1], b, sizeof(b)), 0);
	CU_ASSERT_EQUAL((uintptr_t)out[0] % 64, 0);
	free(out[0]);
	free(out[1]);
	mb_weights_close(&f);
	CU_ASSERT_PTR_NULL(f);
	mb_weights_close(&f); /* NULL is fine */
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len);
	if (fread(buf, 1, *len, f) != *len)
		*len = 0;
	fclose(f);
	return buf;
}

/* a conv stem's tensors (Whisper's tiny stem): over 2 MB of values */
static const struct mb_weights_spec g_stem[4] = {
	{"encoder.conv1.weight", 3, {384, 80, 3}, 0},
	{"encoder.conv1.bias", 1, {384}, 0},
	{"encoder.conv2.weight", 3, {384, 384, 3}, 0},
	{"encoder.conv2.bias", 1, {384}, 0},
};
static const struct mb_builtin_weights g_stem_weights = {"stem", g_stem, 4};

static void
test_generate_deterministic(void)
{
	const struct mb_builtin_weights *bw = &g_stem_weights;
	size_t l1, l2, l3;
	char *a, *b, *c;
	float *out[4];
	double sum2 = 0.0;
	float maxabs = 0.0f;
	uint64_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(bw);
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_generate(path_of("gen1"), bw->specs, bw->n, 7, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_generate(path_of("gen2"), bw->specs, bw->n, 7, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_generate(path_of("gen3"), bw->specs, bw->n, 8, g_err, sizeof(g_err)), 0);
	a = slurp(path_of("gen1"), &l1);
	b = slurp(path_of("gen2"), &l2);
	c = slurp(path_of("gen3"), &l3);
	CU_ASSERT(l1 == l2 && l1 == l3 && l1 > 2000000);
	CU_ASSERT_EQUAL(memcmp(a, b, l1), 0);	  /* same seed, same bytes */
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, l1), 0); /* another seed, other values */
	CU_ASSERT_EQUAL((8 + (a[0] & 0xff) + ((a[1] & 0xff) << 8)) % 8, 0); /* data aligned */
	/* the values: uniform in +-sqrt(6 / fan_in), fan_in = 80 * 3 for conv1 */
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_load(path_of("gen1"), bw->specs, bw->n, out, g_err, sizeof(g_err)), 0);
	n = mb_weights_spec_numel(&bw->specs[0]);
	for (uint64_t i = 0; i < n; i++) {
		sum2 += (double)out[0][i] * out[0][i];
		if (fabsf(out[0][i]) > maxabs)
			maxabs = fabsf(out[0][i]);
	}
	CU_ASSERT(maxabs <= sqrtf(6.0f / 240.0f));
	CU_ASSERT(maxabs > 0.9f * sqrtf(6.0f / 240.0f));
	/* variance of U(-a, a) is a^2 / 3 = 2 / fan_in */
	CU_ASSERT_DOUBLE_EQUAL(sum2 / (double)n, 2.0 / 240.0, 0.1 * 2.0 / 240.0);
	for (uint32_t i = 0; i < bw->n; i++)
		free(out[i]);
	free(a);
	free(b);
	free(c);
}

static void
test_bind_errors(void)
{
	float w[24] = {0}, b[5] = {0};
	struct mb_weights_entry wrong_shape[2] = {
		{"layer.weight", 3, {4, 2, 3}, w},
		{"layer.bias", 1, {5}, b},
	};
	struct mb_weights_entry missing[1] = {{"layer.weight", 3, {4, 2, 3}, w}};
	float *out[2] = {NULL, NULL};

	CU_ASSERT_EQUAL_FATAL(mb_weights_write(path_of("b"), wrong_shape, 2, g_err, sizeof(g_err)),
			      0);
	CU_ASSERT_EQUAL(mb_weights_load(path_of("b"), g_specs, 2, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("b")));
	CU_ASSERT_TRUE(err_has("tensor 'layer.bias': shape [5], expected [4]"));
	CU_ASSERT_PTR_NULL(out[0]); /* nothing allocated on failure */
	CU_ASSERT_EQUAL_FATAL(mb_weights_write(path_of("c"), missing, 1, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(mb_weights_load(path_of("c"), g_specs, 2, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layer.bias' (F32 [4]) is missing (the file has 1 tensor)"));
	/* dtype */
	write_raw("{\"layer.weight\":{\"dtype\":\"I16\",\"shape\":[4,2,3],\"data_offsets\":[0,48]},"
		  "\"layer.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}}",
		  64);
	CU_ASSERT_EQUAL(mb_weights_load(path_of("raw"), g_specs, 2, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layer.weight': dtype I16, expected F32"));
	/* rank */
	write_raw("{\"layer.weight\":{\"dtype\":\"F32\",\"shape\":[4,6],\"data_offsets\":[0,96]},"
		  "\"layer.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[96,112]}}",
		  112);
	CU_ASSERT_EQUAL(mb_weights_load(path_of("raw"), g_specs, 2, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layer.weight': shape [4, 6], expected [4, 2, 3]"));
}

static void
test_truncated(void)
{
	const char *src = path_of("a"); /* written by the first test: 96 + 16 data bytes */
	size_t len;
	char *bytes = slurp(src, &len);
	FILE *f;
	struct mb_weights *w = NULL;

	CU_ASSERT_FATAL(len > 100);
	/* cut into the data */
	f = fopen(path_of("trunc"), "wb");
	fwrite(bytes, 1, len - 10, f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("trunc"), &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layer.bias': data_offsets [96, 112] run past the end of "
			       "the data (102 bytes): the file is truncated"));
	/* cut into the header */
	f = fopen(path_of("trunc"), "wb");
	fwrite(bytes, 1, 40, f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("trunc"), &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("but the file has 32 after it: truncated"));
	/* shorter than the length field */
	f = fopen(path_of("trunc"), "wb");
	fwrite(bytes, 1, 5, f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("trunc"), &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("5 bytes: too short for a safetensors file"));
	CU_ASSERT_PTR_NULL(w);
	/* a git-lfs pointer (a clone without git-lfs): said as such, not as a header length */
	f = fopen(path_of("lfs"), "wb");
	fputs("version https://git-lfs.github.com/spec/v1\noid sha256:"
	      "4d7a5c8e1f0b9a3c2e5d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c\nsize 290403936\n",
	      f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("lfs"), &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("lfs: a git-lfs pointer file, not the tensors (the repository was "
			       "cloned without git-lfs): run 'git lfs pull'"));
	CU_ASSERT_PTR_NULL(w);
	/* a FIFO: refused at once (open() waited for a writer) */
	CU_ASSERT_EQUAL_FATAL(mkfifo(path_of("fifo"), 0600), 0);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("fifo"), &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("fifo: not a regular file"));
	CU_ASSERT_PTR_NULL(w);
	free(bytes);
	CU_ASSERT_EQUAL(mb_weights_open(path_of("nonexistent"), &w, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_TRUE(err_has("No such file or directory"));
}

static void
test_malformed_headers(void)
{
	CU_ASSERT_EQUAL(open_raw("{\"a\": ", 0), -EINVAL);
	CU_ASSERT_TRUE(err_has("the header is not valid JSON"));
	CU_ASSERT_EQUAL(open_raw("[1, 2]", 0), -EINVAL);
	CU_ASSERT_TRUE(err_has("the header is not a JSON object"));
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
				 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
				 16),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("duplicate"));
	CU_ASSERT_EQUAL(
		open_raw("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'a': unknown dtype 'F33'"));
	CU_ASSERT_EQUAL(
		open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'a': shape[0] is not a size"));
	CU_ASSERT_EQUAL(
		open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("\"data_offsets\" must be [begin, end]"));
	CU_ASSERT_EQUAL(
		open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
		-EINVAL);
	CU_ASSERT_TRUE(
		err_has("tensor 'a': data_offsets [0, 8] hold 8 bytes, but F32 [3] needs 12"));
	CU_ASSERT_EQUAL(
		open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("end before they begin"));
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
				 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
				 16),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensors 'a' (bytes 0..16) and 'b' (bytes 8..16) overlap"));
	CU_ASSERT_EQUAL(open_raw("{\"__metadata__\":{\"k\":\"v\"},"
				 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
				 8),
			0);
	CU_ASSERT_EQUAL(open_raw("{}", 0), 0); /* empty is valid, just useless */
}

/*
 * A shape whose element count passes 2^64 on the way must be refused, not wrapped: [2^40,
 * 2^40] wrapped to 0 elements and was accepted with 0 bytes (tests/fuzz's weights target
 * checks that every accepted tensor holds exactly shape x dtype bytes; its corpus has this
 * input as weights/shape-overflow.safetensors).
 */
static void
test_shape_overflow(void)
{
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,"
				 "1099511627776],\"data_offsets\":[0,0]}}",
				 0),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'a': shape too large"));
	/* 2^40 x 2^24 is 2^64: wraps to 0 as well */
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[16777216,"
				 "1099511627776],\"data_offsets\":[0,0]}}",
				 0),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'a': shape too large"));
	/* the limit itself (2^48 elements) is still a size; a zero anywhere makes it empty */
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[256,1099511627776],"
				 "\"data_offsets\":[0,0]}}",
				 0),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("hold 0 bytes, but U8 [256, 1099511627776] needs 281474976710656"));
	CU_ASSERT_EQUAL(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,1099511627776],"
				 "\"data_offsets\":[0,0]}}",
				 0),
			0);
}

/* The header length field can claim anything: a huge one must not be believed. */
static int
fail_second(void *ctx, uint32_t i, float *dst, char *err, size_t len)
{
	(void)ctx;
	if (i == 1) {
		snprintf(err, len, "no values for tensor 1");
		return -EIO;
	}
	dst[0] = 1.0f;
	return 0;
}

/* Names each once, none reserved or empty; a failed write leaves the old file as it was. */
static void
test_write_refusals(void)
{
	float w[2] = {1, 2};
	struct mb_weights_entry twice[2] = {{"a", 1, {2}, w}, {"a", 1, {2}, w}};
	struct mb_weights_entry reserved[1] = {{"__metadata__", 1, {2}, w}};
	struct mb_weights_entry unnamed[1] = {{"", 1, {2}, w}};
	struct mb_weights_entry one[2] = {{"x", 1, {1}, NULL}, {"y", 1, {1}, NULL}};
	struct mb_weights *f;
	struct stat st;
	char cmd[512];

	CU_ASSERT_EQUAL(mb_weights_write(path_of("d"), twice, 2, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "tensor 1 ('a') has the name of an earlier one"));
	CU_ASSERT_EQUAL(mb_weights_write(path_of("d"), reserved, 1, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "reserved"));
	CU_ASSERT_EQUAL(mb_weights_write(path_of("d"), unnamed, 1, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "has no name"));
	CU_ASSERT_NOT_EQUAL(stat(path_of("d"), &st), 0); /* nothing written */

	/* a good file, then a write over it whose fill fails: the good one stays, no temp */
	CU_ASSERT_EQUAL_FATAL(mb_weights_write(path_of("d"), twice, 1, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(mb_weights_write_as(path_of("d"), one, 2, "F32", NULL, fail_second, NULL,
					    g_err, sizeof(g_err)),
			-EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no values for tensor 1"));
	CU_ASSERT_EQUAL_FATAL(mb_weights_open(path_of("d"), &f, g_err, sizeof(g_err)), 0);
	CU_ASSERT_PTR_NOT_NULL(mb_weights_find(f, "a"));
	CU_ASSERT_PTR_NULL(mb_weights_find(f, "x"));
	mb_weights_close(&f);
	snprintf(cmd, sizeof(cmd), "ls '%s'.tmp.* >/dev/null 2>&1", path_of("d"));
	CU_ASSERT_NOT_EQUAL(system(cmd), 0);
}

static void
test_header_length_lies(void)
{
	const char *p = path_of("raw");
	FILE *f = fopen(p, "wb");
	struct mb_weights *w = NULL;

	fwrite("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 1, 10, f);
	fclose(f);
	CU_ASSERT_EQUAL(mb_weights_open(p, &w, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("the header length says"));
	CU_ASSERT_PTR_NULL(w);
}

static const struct mb_test_case cases[] = {
	{"a written file reads back exactly", test_write_read_back},
	{"placeholder weights: same seed, same bytes; scaled by fan-in",
	 test_generate_deterministic},
	{"missing tensor, wrong shape, wrong dtype: named", test_bind_errors},
	{"truncated files: named, with the offsets", test_truncated},
	{"malformed headers: each problem named", test_malformed_headers},
	{"a shape past 2^64 elements is refused, not wrapped", test_shape_overflow},
	{"a header length past the file is refused", test_header_length_lies},
	{"writes: names once, none reserved or empty; a failed write leaves the old file",
	 test_write_refusals},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"weights", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("weights_test", suites);
}
