/*
 * ckpt_test.c: published checkpoints (gpu/mb_ckpt.h): F16/BF16 conversion against known bit
 * patterns and rounding to nearest even; every layout mb_ckpt_open() accepts; sharded
 * checkpoints bound across shards; broken checkpoints refused with the file, the tensor, and
 * what was expected versus found; config.json; prefix replacement; placeholder checkpoints
 * equal to mb_weights_generate()'s values. Files live in a mkdtemp directory, removed at the
 * end.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mb_ckpt.h"
#include "mb_test.h"
#include "mb_weights.h"

static char g_dir[64];
static char g_err[1024];

static int
suite_init(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_ckpt_XXXXXX");
	return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
suite_cleanup(void)
{
	return nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* g_dir/rel in one of four rotating buffers (several may be in use at once). */
static const char *
path_of(const char *rel)
{
	static char p[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", g_dir, rel);
	return p[k];
}

static bool
err_has(const char *needle)
{
	bool ok = strstr(g_err, needle) != NULL;

	if (!ok)
		printf("\n    error \"%s\" lacks \"%s\"", g_err, needle);
	return ok;
}

static void
make_dir(const char *rel)
{
	CU_ASSERT_FATAL(mkdir(path_of(rel), 0755) == 0 || errno == EEXIST);
}

static void
write_text(const char *rel, const char *text)
{
	FILE *f = fopen(path_of(rel), "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* A safetensors file with the given JSON header and @p data_len bytes of data (0x11 each). */
static void
write_raw(const char *rel, const char *json, size_t data_len)
{
	FILE *f = fopen(path_of(rel), "wb");
	uint64_t n = strlen(json);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (int i = 0; i < 8; i++)
		fputc((int)(n >> (8 * i)) & 0xff, f);
	fwrite(json, 1, n, f);
	for (size_t i = 0; i < data_len; i++)
		fputc(0x11, f);
	fclose(f);
}

static bool
exists(const char *rel)
{
	struct stat st;

	return stat(path_of(rel), &st) == 0;
}

static int
open_ck(const char *rel, struct mb_ckpt **ck)
{
	g_err[0] = '\0';
	return mb_ckpt_open(path_of(rel), ck, g_err, sizeof(g_err));
}

/* Open @p rel, expecting failure; returns the code. */
static int
open_fails(const char *rel)
{
	struct mb_ckpt *ck = NULL;
	int rc = open_ck(rel, &ck);

	CU_ASSERT_PTR_NULL(ck);
	mb_ckpt_close(&ck);
	return rc;
}

static uint32_t
f32_bits(float f)
{
	uint32_t b;

	memcpy(&b, &f, sizeof(b));
	return b;
}

static float
f16(uint16_t h)
{
	uint8_t b[3] = {0, (uint8_t)h, (uint8_t)(h >> 8)};
	float f = 0.0f;

	/* from an odd address: any alignment */
	CU_ASSERT_EQUAL(mb_ckpt_to_f32("F16", b + 1, 1, &f), 0);
	return f;
}

static uint16_t
to_f16(float f)
{
	uint8_t b[2];

	CU_ASSERT_EQUAL(mb_ckpt_from_f32("F16", &f, 1, b), 0);
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint16_t
to_bf16(float f)
{
	uint8_t b[2];

	CU_ASSERT_EQUAL(mb_ckpt_from_f32("BF16", &f, 1, b), 0);
	return (uint16_t)(b[0] | b[1] << 8);
}

static void
test_f16_bits(void)
{
	CU_ASSERT_EQUAL(f16(0x3c00), 1.0f);
	CU_ASSERT_EQUAL(f16(0xc000), -2.0f);
	CU_ASSERT_EQUAL(f16(0x7bff), 65504.0f);
	CU_ASSERT_EQUAL(f16(0x3555), 0x1.554p-2f);	  /* 0.333251953125 */
	CU_ASSERT_EQUAL(f16(0x0400), 0x1p-14f);		  /* smallest normal */
	CU_ASSERT_EQUAL(f16(0x0001), 0x1p-24f);		  /* smallest subnormal */
	CU_ASSERT_EQUAL(f16(0x03ff), 1023.0f * 0x1p-24f); /* largest subnormal */
	CU_ASSERT_EQUAL(f16(0x8001), -0x1p-24f);
	CU_ASSERT_TRUE(isinf(f16(0x7c00)) && f16(0x7c00) > 0.0f);
	CU_ASSERT_TRUE(isinf(f16(0xfc00)) && f16(0xfc00) < 0.0f);
	CU_ASSERT_TRUE(isnan(f16(0x7e00)));
	CU_ASSERT_TRUE(isnan(f16(0x7c01))); /* a signalling NaN is a NaN too, not infinity */
	CU_ASSERT_EQUAL(f32_bits(f16(0x8000)), 0x80000000u); /* -0.0, sign kept */
	CU_ASSERT_EQUAL(f32_bits(f16(0x0000)), 0u);
}

static void
test_bf16_bits(void)
{
	static const uint16_t h[] = {0x3f80, 0xc049, 0x7f80, 0xff80, 0x0001, 0x8000};
	uint8_t b[2 * 6 + 1];
	float f[6];

	for (int i = 0; i < 6; i++) {
		b[1 + 2 * i] = (uint8_t)h[i];
		b[2 + 2 * i] = (uint8_t)(h[i] >> 8);
	}
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_to_f32("BF16", b + 1, 6, f), 0);
	CU_ASSERT_EQUAL(f[0], 1.0f);
	CU_ASSERT_EQUAL(f[1], -3.140625f); /* pi (0xc0490fdb) cut to its upper half */
	CU_ASSERT_TRUE(isinf(f[2]) && f[2] > 0.0f);
	CU_ASSERT_TRUE(isinf(f[3]) && f[3] < 0.0f);
	CU_ASSERT_EQUAL(f32_bits(f[4]), 0x00010000u); /* an F32 subnormal */
	CU_ASSERT_EQUAL(f32_bits(f[5]), 0x80000000u);
	b[1] = 0xc0;
	b[2] = 0x7f;
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_to_f32("BF16", b + 1, 1, f), 0);
	CU_ASSERT_TRUE(isnan(f[0]));
	/* F32 is a copy; anything else is refused */
	f[1] = 0.0f;
	CU_ASSERT_EQUAL(mb_ckpt_to_f32("F32", (float[]){2.5f}, 1, &f[1]), 0);
	CU_ASSERT_EQUAL(f[1], 2.5f);
	CU_ASSERT_EQUAL(mb_ckpt_to_f32("I32", b, 1, f), -EINVAL);
	CU_ASSERT_EQUAL(mb_ckpt_to_f32("F64", b, 1, f), -EINVAL);
	CU_ASSERT_EQUAL(mb_ckpt_from_f32("F64", f, 1, b), -EINVAL);
}

/* Writing rounds to nearest, ties to even; overflow to infinity; NaN stays NaN. */
static void
test_rounding(void)
{
	/* F16 near 1.0: ulp 2^-10, so 2^-11 is half an ulp */
	CU_ASSERT_EQUAL(to_f16(1.0f), 0x3c00);
	CU_ASSERT_EQUAL(to_f16(1.0f + 0x1p-11f), 0x3c00);	     /* tie: down to even */
	CU_ASSERT_EQUAL(to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);	     /* tie: up to even */
	CU_ASSERT_EQUAL(to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01); /* past the tie */
	CU_ASSERT_EQUAL(to_f16(-2.0f), 0xc000);
	CU_ASSERT_EQUAL(to_f16(65504.0f), 0x7bff);
	CU_ASSERT_EQUAL(to_f16(65519.0f), 0x7bff);
	CU_ASSERT_EQUAL(to_f16(65520.0f), 0x7c00); /* the tie above the largest: to infinity */
	CU_ASSERT_EQUAL(to_f16(1e9f), 0x7c00);
	CU_ASSERT_EQUAL(to_f16(-INFINITY), 0xfc00);
	CU_ASSERT_EQUAL(to_f16(NAN) & 0x7c00, 0x7c00);
	CU_ASSERT_NOT_EQUAL(to_f16(NAN) & 0x03ff, 0);
	CU_ASSERT_EQUAL(to_f16(-0.0f), 0x8000);
	/* subnormals: ulp 2^-24 */
	CU_ASSERT_EQUAL(to_f16(0x1p-24f), 0x0001);
	CU_ASSERT_EQUAL(to_f16(0x1p-25f), 0x0000);	  /* tie: down to even (zero) */
	CU_ASSERT_EQUAL(to_f16(3 * 0x1p-25f), 0x0002);	  /* tie: up to even */
	CU_ASSERT_EQUAL(to_f16(1.5f * 0x1p-25f), 0x0001); /* past the tie */
	CU_ASSERT_EQUAL(to_f16(1023.0f * 0x1p-24f), 0x03ff);
	CU_ASSERT_EQUAL(to_f16(0x1p-14f - 0x1p-25f), 0x0400); /* tie into the smallest normal */
	CU_ASSERT_EQUAL(to_f16(1e-10f), 0x0000);
	CU_ASSERT_EQUAL(to_f16(-1e-10f), 0x8000);
	/* BF16 near 1.0: ulp 2^-7 */
	CU_ASSERT_EQUAL(to_bf16(1.0f), 0x3f80);
	CU_ASSERT_EQUAL(to_bf16(1.0f + 0x1p-8f), 0x3f80);     /* tie: down to even */
	CU_ASSERT_EQUAL(to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie: up to even */
	CU_ASSERT_EQUAL(to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
	CU_ASSERT_EQUAL(to_bf16(-3.14159274f), 0xc049);
	CU_ASSERT_EQUAL(to_bf16(3.4028235e38f), 0x7f80); /* FLT_MAX rounds to infinity */
	CU_ASSERT_EQUAL(to_bf16(NAN) & 0x7f80, 0x7f80);
	CU_ASSERT_NOT_EQUAL(to_bf16(NAN) & 0x007f, 0);
	/* every F16 value survives F16 -> F32 -> F16 */
	for (uint32_t h = 0; h < 0x10000; h++) {
		uint8_t in[2] = {(uint8_t)h, (uint8_t)(h >> 8)}, back[2];
		float f;

		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0)
			continue; /* NaNs: quieted */
		mb_ckpt_to_f32("F16", in, 1, &f);
		mb_ckpt_from_f32("F16", &f, 1, back);
		if (memcmp(in, back, 2) != 0) {
			CU_FAIL("F16 round trip");
			printf("\n    0x%04x -> %a -> 0x%02x%02x", h, f, back[1], back[0]);
			break;
		}
	}
}

/* The tie cases written as F16 and BF16, reopened and bound: the rounded values. */
static void
test_round_trip(void)
{
	static const float v[6] = {1.0f + 0x1p-11f,    1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-8f,
				   1.0f + 3 * 0x1p-8f, -3.14159274f,	    0x1p-25f};
	static const struct mb_weights_spec spec = {"v", 1, {6}};
	struct mb_weights_entry e = {"v", 1, {6}, v};
	const struct mb_weights_tensor *t;
	const char *dtypes[] = {"F16", "BF16"};
	struct mb_ckpt *ck;
	float *out = NULL;

	for (int d = 0; d < 2; d++) {
		float want[6];
		uint8_t bits[12];

		CU_ASSERT_EQUAL_FATAL(
			mb_ckpt_write(path_of("rt"), &e, 1, dtypes[d], 0, g_err, sizeof(g_err)), 0);
		CU_ASSERT_EQUAL_FATAL(open_ck("rt", &ck), 0);
		t = mb_ckpt_find(ck, "v", NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		CU_ASSERT_STRING_EQUAL(t->dtype, dtypes[d]);
		CU_ASSERT_EQUAL(t->end - t->begin, 12);
		CU_ASSERT_EQUAL_FATAL(
			mb_ckpt_bind(ck, &spec, 1, NULL, NULL, &out, g_err, sizeof(g_err)), 0);
		mb_ckpt_from_f32(dtypes[d], v, 6, bits);
		CU_ASSERT_EQUAL(memcmp(t->data, bits, 12), 0);
		mb_ckpt_to_f32(dtypes[d], bits, 6, want);
		CU_ASSERT_EQUAL(memcmp(out, want, sizeof(want)), 0);
		if (d == 0) {
			CU_ASSERT_EQUAL(out[0], 1.0f);
			CU_ASSERT_EQUAL(out[1], 1.0f + 0x1p-9f);
			CU_ASSERT_EQUAL(out[5], 0.0f);
		} else {
			CU_ASSERT_EQUAL(out[2], 1.0f);
			CU_ASSERT_EQUAL(out[3], 1.0f + 0x1p-6f);
			CU_ASSERT_EQUAL(out[4], -3.140625f);
		}
		CU_ASSERT_EQUAL((uintptr_t)out % 64, 0);
		free(out);
		mb_ckpt_close(&ck);
		CU_ASSERT_PTR_NULL(ck);
	}
	mb_ckpt_close(&ck); /* NULL is fine */
	CU_ASSERT_EQUAL(mb_ckpt_write(path_of("rt"), &e, 1, "I32", 0, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("cannot write dtype 'I32'"));
}

/* Eight tensors of 4 .. 96 floats, values i * 1000 + k. */
#define N_T 8
static float g_vals[N_T][96];
static struct mb_weights_entry g_e[N_T];
static struct mb_weights_spec g_specs[N_T];

static void
make_tensors(const char *prefix)
{
	static char names[N_T][64];
	static const int64_t rows[N_T] = {4, 8, 2, 6, 1, 3, 5, 8};

	for (int i = 0; i < N_T; i++) {
		snprintf(names[i], sizeof(names[i]), "%slayers.%d.w", prefix, i);
		for (int k = 0; k < 96; k++)
			g_vals[i][k] = (float)(i * 1000 + k);
		g_e[i] = (struct mb_weights_entry){names[i], 2, {rows[i], 12}, g_vals[i]};
		g_specs[i] = (struct mb_weights_spec){names[i], 2, {rows[i], 12}};
	}
}

static void
free_all(float **out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(out[i]);
		out[i] = NULL;
	}
}

/* The tensors bind from @p ck with exactly their values. */
static void
check_binds(const struct mb_ckpt *ck)
{
	float *out[N_T] = {NULL};

	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, g_specs, N_T, NULL, NULL, out, g_err, sizeof(g_err)),
			      0);
	for (int i = 0; i < N_T; i++)
		CU_ASSERT_EQUAL(memcmp(out[i], g_vals[i], (size_t)g_e[i].shape[0] * 12 * 4), 0);
	free_all(out, N_T);
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static void
test_layouts(void)
{
	struct mb_ckpt *ck;
	const char *file;

	make_tensors("");
	/* one file: the file itself, or its directory */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("one"), g_e, N_T, "F32", 0, g_err, sizeof(g_err)), 0);
	CU_ASSERT_FALSE(exists("one/model.safetensors.index.json"));
	CU_ASSERT_EQUAL_FATAL(open_ck("one/model.safetensors", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_T);
	CU_ASSERT_STRING_EQUAL(mb_ckpt_path(ck), path_of("one/model.safetensors"));
	CU_ASSERT_FALSE(mb_ckpt_has_config(ck));
	check_binds(ck);
	mb_ckpt_close(&ck);
	CU_ASSERT_EQUAL_FATAL(open_ck("one", &ck), 0);
	CU_ASSERT_STRING_EQUAL(mb_ckpt_path(ck), path_of("one"));
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_T);
	CU_ASSERT_PTR_NOT_NULL(mb_ckpt_find(ck, "layers.3.w", &file));
	CU_ASSERT_STRING_EQUAL(file, path_of("one/model.safetensors"));
	CU_ASSERT_PTR_NULL(mb_ckpt_find(ck, "layers.9.w", &file));
	CU_ASSERT_PTR_NULL(mb_ckpt_at(ck, N_T, &file));
	check_binds(ck);
	mb_ckpt_close(&ck);
	/* only the index: the directory, or the index itself */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("idx"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	CU_ASSERT_FALSE(exists("idx/model.safetensors"));
	CU_ASSERT_EQUAL_FATAL(open_ck("idx", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_T);
	check_binds(ck);
	mb_ckpt_close(&ck);
	CU_ASSERT_EQUAL_FATAL(open_ck("idx/model.safetensors.index.json", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_T);
	CU_ASSERT_PTR_NOT_NULL(mb_ckpt_find(ck, "layers.0.w", &file));
	CU_ASSERT_TRUE(ends_with(file, "idx/model-00001-of-00005.safetensors"));
	check_binds(ck);
	mb_ckpt_close(&ck);
	/* both: the single file wins */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("both"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_write(path_of("both/model.safetensors"), g_e, 2, g_err, sizeof(g_err)),
		0);
	CU_ASSERT_EQUAL_FATAL(open_ck("both", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), 2);
	CU_ASSERT_PTR_NOT_NULL(mb_ckpt_find(ck, "layers.1.w", &file));
	CU_ASSERT_STRING_EQUAL(file, path_of("both/model.safetensors"));
	CU_ASSERT_PTR_NULL(mb_ckpt_find(ck, "layers.2.w", NULL));
	mb_ckpt_close(&ck);
	/* writing one layout over the other removes the other's entry file */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("both"), g_e, N_T, "F32", 0, g_err, sizeof(g_err)), 0);
	CU_ASSERT_FALSE(exists("both/model.safetensors.index.json"));
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("both"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	CU_ASSERT_FALSE(exists("both/model.safetensors"));
	CU_ASSERT_TRUE(exists("both/model.safetensors.index.json"));
	/* nothing there */
	make_dir("empty");
	CU_ASSERT_EQUAL(open_fails("empty"), -ENOENT);
	CU_ASSERT_TRUE(err_has(path_of("empty")));
	CU_ASSERT_TRUE(err_has("neither model.safetensors nor model.safetensors.index.json"));
	CU_ASSERT_EQUAL(open_fails("nonexistent"), -ENOENT);
	CU_ASSERT_TRUE(err_has("nonexistent: No such file or directory"));
	/* a single file's own errors come through */
	write_raw("empty/short.safetensors", "{}", 0);
	CU_ASSERT_EQUAL(truncate(path_of("empty/short.safetensors"), 5), 0);
	CU_ASSERT_EQUAL(open_fails("empty/short.safetensors"), -EINVAL);
	CU_ASSERT_TRUE(err_has("short.safetensors: 5 bytes: too short for a safetensors file"));
}

static void
test_sharded(void)
{
	struct mb_ckpt *ck;
	const struct mb_weights_tensor *t;
	const char *file;
	json_error_t jerr;
	json_t *idx, *map;
	float *out[N_T] = {NULL};
	uint64_t total = 0;
	uint32_t i;

	make_tensors("");
	/* 192, 384, 96, 288, 48, 144, 240, 384 bytes in F32; at most 500 bytes a shard, in
	 * order: [0], [1, 2], [3, 4, 5], [6], [7] */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("sh"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	CU_ASSERT_TRUE(exists("sh/model-00001-of-00005.safetensors"));
	CU_ASSERT_TRUE(exists("sh/model-00005-of-00005.safetensors"));
	CU_ASSERT_FALSE(exists("sh/model-00006-of-00006.safetensors"));
	{ /* a name twice, in two shards: refused, nothing written */
		struct mb_weights_entry dup[N_T];

		memcpy(dup, g_e, sizeof(dup));
		dup[7].name = dup[0].name;
		CU_ASSERT_EQUAL(
			mb_ckpt_write(path_of("shdup"), dup, N_T, "F32", 500, g_err, sizeof(g_err)),
			-EINVAL);
		CU_ASSERT_TRUE(err_has("tensor 7 ('"));
		CU_ASSERT_TRUE(err_has("has the name of an earlier one"));
		CU_ASSERT_FALSE(exists("shdup"));
	}
	/* the index, as save_pretrained() writes it */
	idx = json_load_file(path_of("sh/model.safetensors.index.json"), 0, &jerr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
	for (i = 0; i < N_T; i++)
		total += (uint64_t)g_e[i].shape[0] * 12 * 4;
	CU_ASSERT_EQUAL(
		json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")),
		(json_int_t)total);
	map = json_object_get(idx, "weight_map");
	CU_ASSERT_EQUAL(json_object_size(map), N_T);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "layers.0.w")),
			       "model-00001-of-00005.safetensors");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "layers.2.w")),
			       "model-00002-of-00005.safetensors");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "layers.6.w")),
			       "model-00004-of-00005.safetensors");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "layers.7.w")),
			       "model-00005-of-00005.safetensors");
	json_decref(idx);

	CU_ASSERT_EQUAL_FATAL(open_ck("sh", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_T);
	/* in shard order, then data order: the order written */
	for (i = 0; i < N_T; i++) {
		static const int shard[N_T] = {1, 2, 2, 3, 3, 3, 4, 5};
		char want[64];

		snprintf(want, sizeof(want), "/sh/model-%05d-of-00005.safetensors", shard[i]);
		t = mb_ckpt_at(ck, i, &file);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		CU_ASSERT_STRING_EQUAL(t->name, g_e[i].name);
		CU_ASSERT_TRUE(ends_with(file, want));
		CU_ASSERT_PTR_EQUAL(mb_ckpt_find(ck, g_e[i].name, &file), t);
		CU_ASSERT_TRUE(ends_with(file, want));
	}
	CU_ASSERT_PTR_NULL(mb_ckpt_at(ck, N_T, NULL));
	check_binds(ck);
	mb_ckpt_close(&ck);

	/* BF16 (exact for these small integers), smaller shards: one tensor each at most */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("sh16"), g_e, N_T, "BF16", 10, g_err, sizeof(g_err)), 0);
	CU_ASSERT_TRUE(exists("sh16/model-00008-of-00008.safetensors"));
	CU_ASSERT_EQUAL_FATAL(open_ck("sh16", &ck), 0);
	CU_ASSERT_STRING_EQUAL(mb_ckpt_find(ck, "layers.5.w", &file)->dtype, "BF16");
	CU_ASSERT_TRUE(ends_with(file, "model-00006-of-00008.safetensors"));
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, g_specs, N_T, NULL, NULL, out, g_err, sizeof(g_err)),
			      0);
	/* BF16 keeps 8 significant bits: 7095 and 1003 round to the nearest */
	CU_ASSERT_EQUAL(out[7][95], 7104.0f);
	CU_ASSERT_EQUAL(out[1][3], 1004.0f);
	CU_ASSERT_EQUAL(out[0][47], 47.0f); /* [4, 12] */
	free_all(out, N_T);
	mb_ckpt_close(&ck);
}

/* A shard holding @p n of g_e from @p first, written raw with mb_weights_write(). */
static void
write_shard(const char *rel, uint32_t first, uint32_t n)
{
	CU_ASSERT_EQUAL_FATAL(mb_weights_write(path_of(rel), g_e + first, n, g_err, sizeof(g_err)),
			      0);
}

static void
test_broken_index(void)
{
	make_tensors("");
	make_dir("bad");
	/* malformed JSON */
	write_text("bad/model.safetensors.index.json", "{\"weight_map\": {\"a\": ");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("bad/model.safetensors.index.json")));
	CU_ASSERT_TRUE(err_has("not valid JSON"));
	/* no weight_map */
	write_text("bad/model.safetensors.index.json", "{\"metadata\": {\"total_size\": 4}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has("bad/model.safetensors.index.json: no \"weight_map\" object"));
	write_text("bad/model.safetensors.index.json", "[1]");
	CU_ASSERT_EQUAL(open_fails("bad/model.safetensors.index.json"), -EINVAL);
	CU_ASSERT_TRUE(err_has("no \"weight_map\" object"));
	/* a value that is not a file name, or one outside the directory */
	write_text("bad/model.safetensors.index.json", "{\"weight_map\": {\"layers.0.w\": 3}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layers.0.w': the weight_map value is not a file name"));
	write_text("bad/model.safetensors.index.json",
		   "{\"weight_map\": {\"layers.0.w\": \"../x.safetensors\"}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has(
		"tensor 'layers.0.w' is mapped to '../x.safetensors', which is not a file beside"));

	/* a shard that is not there */
	write_shard("bad/model-00001-of-00002.safetensors", 0, 2);
	write_text("bad/model.safetensors.index.json",
		   "{\"weight_map\": {\"layers.0.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.1.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.2.w\": \"model-00002-of-00002.safetensors\"}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -ENOENT);
	CU_ASSERT_TRUE(err_has(path_of("bad/model.safetensors.index.json")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.2.w' is mapped to model-00002-of-00002.safetensors, "
			       "which does not exist"));

	/* the map says layers.1.w is in shard 2, but shard 1 holds it */
	write_shard("bad/model-00002-of-00002.safetensors", 2, 1);
	write_text("bad/model.safetensors.index.json",
		   "{\"weight_map\": {\"layers.0.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.1.w\": \"model-00002-of-00002.safetensors\","
		   "\"layers.2.w\": \"model-00002-of-00002.safetensors\"}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("bad/model.safetensors.index.json")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.1.w' is mapped to model-00002-of-00002.safetensors, "
			       "which does not hold it (model-00001-of-00002.safetensors does)"));
	/* ... or no shard holds it */
	write_text("bad/model.safetensors.index.json",
		   "{\"weight_map\": {\"layers.0.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.5.w\": \"model-00002-of-00002.safetensors\"}}");
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layers.5.w' is mapped to model-00002-of-00002.safetensors, "
			       "which does not hold it (no shard does)"));
	/* the map right again: it opens */
	write_text("bad/model.safetensors.index.json",
		   "{\"weight_map\": {\"layers.0.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.1.w\": \"model-00001-of-00002.safetensors\","
		   "\"layers.2.w\": \"model-00002-of-00002.safetensors\"}}");
	{
		struct mb_ckpt *ck = NULL;

		CU_ASSERT_EQUAL(open_ck("bad", &ck), 0);
		CU_ASSERT_EQUAL(mb_ckpt_count(ck), 3);
		mb_ckpt_close(&ck);
	}

	/* a tensor in two shards */
	write_shard("bad/model-00002-of-00002.safetensors", 1, 2); /* layers.1.w again */
	CU_ASSERT_EQUAL(open_fails("bad"), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("bad/model.safetensors.index.json")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.1.w' is in two files: "));
	CU_ASSERT_TRUE(err_has(path_of("bad/model-00001-of-00002.safetensors")));
	CU_ASSERT_TRUE(err_has(path_of("bad/model-00002-of-00002.safetensors")));

	/* a truncated shard: named, with the tensor that runs past its end */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("trunc"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	{
		struct stat st;

		CU_ASSERT_EQUAL_FATAL(stat(path_of("trunc/model-00003-of-00005.safetensors"), &st),
				      0);
		CU_ASSERT_EQUAL_FATAL(
			truncate(path_of("trunc/model-00003-of-00005.safetensors"), st.st_size - 4),
			0);
	}
	CU_ASSERT_EQUAL(open_fails("trunc"), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("trunc/model-00003-of-00005.safetensors")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.5.w'"));
	CU_ASSERT_TRUE(err_has("the file is truncated"));
}

static void
test_bind_errors(void)
{
	static const struct mb_weights_spec ids = {"ids", 1, {4}};
	static const struct mb_weights_spec f64 = {"scale", 1, {2}};
	static const struct mb_weights_spec wrong = {"layers.4.w", 2, {12, 1}};
	static const struct mb_weights_spec missing = {"layers.9.w", 1, {3}};
	struct mb_weights_spec two[2];
	struct mb_ckpt *ck;
	float *out[N_T] = {NULL};

	/* dtypes the models cannot take: refused naming the dtype */
	make_dir("dt");
	write_raw("dt/model.safetensors",
		  "{\"ids\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]},"
		  "\"scale\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]}}",
		  32);
	CU_ASSERT_EQUAL_FATAL(open_ck("dt", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, &ids, 1, NULL, NULL, out, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("dt/model.safetensors")));
	CU_ASSERT_TRUE(err_has("tensor 'ids': dtype I32, expected F32, F16 or BF16"));
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, &f64, 1, NULL, NULL, out, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'scale': dtype F64, expected F32, F16 or BF16"));
	CU_ASSERT_PTR_NULL(out[0]);
	mb_ckpt_close(&ck);

	/* wrong shape and missing tensors in a sharded checkpoint */
	make_tensors("");
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("be"), g_e, N_T, "F16", 250, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(open_ck("be", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, &wrong, 1, NULL, NULL, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("be/model-00003-of-00005.safetensors")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.4.w': shape [1, 12], expected [12, 1]"));
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, &missing, 1, NULL, NULL, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("be")));
	CU_ASSERT_TRUE(err_has("tensor 'layers.9.w' ([3]) is missing (the checkpoint has 8 "
			       "tensors)"));
	/* the first problem is reported after good ones, and nothing is left allocated */
	two[0] = g_specs[0];
	two[1] = wrong;
	out[0] = out[1] = NULL;
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, two, 2, NULL, NULL, out, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'layers.4.w': shape"));
	CU_ASSERT_PTR_NULL(out[0]);
	CU_ASSERT_PTR_NULL(out[1]);
	/* and all of them, converted from F16 (exact: integers under 2048) */
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, g_specs, N_T, NULL, NULL, out, g_err, sizeof(g_err)),
			      0);
	CU_ASSERT_EQUAL(memcmp(out[1], g_vals[1], 96 * 4), 0);
	CU_ASSERT_EQUAL(out[7][95], 7096.0f); /* 7095: F16 keeps 11 significant bits */
	free_all(out, N_T);
	mb_ckpt_close(&ck);
}

static void
test_config(void)
{
	struct mb_ckpt *ck;
	int64_t iv = 0;
	double dv = 0.0;
	const char *sv = NULL;

	make_tensors("");
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_write(path_of("cfg"), g_e, 1, "F32", 0, g_err, sizeof(g_err)),
			      0);
	write_text("cfg/config.json",
		   "{\"d_model\": 384, \"num_layers\": 4.0, \"layer_norm_eps\": 1e-05,"
		   " \"model_type\": \"whisper\", \"n_mels\": \"80\", \"dropout\": 0.5,"
		   " \"flags\": [1], \"big\": 1e30,"
		   " \"id2label\": {\"0\": \"abseiling\", \"1\": \"air drumming\", \"2\": 7}}");
	CU_ASSERT_EQUAL_FATAL(open_ck("cfg", &ck), 0);
	CU_ASSERT_TRUE(mb_ckpt_has_config(ck));
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "d_model", &iv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(iv, 384);
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "num_layers", &iv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(iv, 4); /* a real with an integral value is an integer */
	CU_ASSERT_EQUAL(mb_ckpt_config_double(ck, "layer_norm_eps", &dv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(dv, 1e-5);
	CU_ASSERT_EQUAL(mb_ckpt_config_double(ck, "d_model", &dv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(dv, 384.0);
	CU_ASSERT_EQUAL(mb_ckpt_config_str(ck, "model_type", &sv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(sv, "whisper");
	CU_ASSERT_STRING_EQUAL(mb_ckpt_label(ck, 0), "abseiling");
	CU_ASSERT_STRING_EQUAL(mb_ckpt_label(ck, 1), "air drumming");
	CU_ASSERT_PTR_NULL(mb_ckpt_label(ck, 2)); /* not a string */
	CU_ASSERT_PTR_NULL(mb_ckpt_label(ck, 3));
	/* the wrong type: -EINVAL naming the file, the key, what it is and what was expected */
	iv = 99;
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "n_mels", &iv, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("cfg/config.json")));
	CU_ASSERT_TRUE(err_has("\"n_mels\" is a string (\"80\"), expected an integer"));
	CU_ASSERT_EQUAL(iv, 99);
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "dropout", &iv, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("\"dropout\" is a number (0.5), expected an integer"));
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "big", &iv, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("\"big\" is a number (1e+30), expected an integer"));
	CU_ASSERT_EQUAL(mb_ckpt_config_double(ck, "flags", &dv, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("\"flags\" is an array, expected a number"));
	CU_ASSERT_EQUAL(mb_ckpt_config_str(ck, "d_model", &sv, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_TRUE(err_has("\"d_model\" is an integer (384), expected a string"));
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "vocab_size", &iv, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_TRUE(err_has("no \"vocab_size\""));
	mb_ckpt_close(&ck);

	/* no id2label */
	write_text("cfg/config.json", "{\"d_model\": 1}");
	CU_ASSERT_EQUAL_FATAL(open_ck("cfg/model.safetensors", &ck), 0);
	CU_ASSERT_TRUE(mb_ckpt_has_config(ck));
	CU_ASSERT_PTR_NULL(mb_ckpt_label(ck, 0));
	mb_ckpt_close(&ck);
	/* id2label that is not an object */
	write_text("cfg/config.json", "{\"id2label\": [\"a\"]}");
	CU_ASSERT_EQUAL_FATAL(open_ck("cfg", &ck), 0);
	CU_ASSERT_PTR_NULL(mb_ckpt_label(ck, 0));
	mb_ckpt_close(&ck);
	/* a sharded checkpoint reads the config beside its index */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("cfgsh"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	write_text("cfgsh/config.json", "{\"hidden_size\": 768}");
	CU_ASSERT_EQUAL_FATAL(open_ck("cfgsh/model.safetensors.index.json", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "hidden_size", &iv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(iv, 768);
	mb_ckpt_close(&ck);

	/* not an object, not JSON: the open fails naming config.json */
	write_text("cfg/config.json", "[1, 2]");
	CU_ASSERT_EQUAL(open_fails("cfg"), -EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("cfg/config.json")));
	CU_ASSERT_TRUE(err_has("not a JSON object"));
	write_text("cfg/config.json", "{\"d_model\": ");
	CU_ASSERT_EQUAL(open_fails("cfg"), -EINVAL);
	CU_ASSERT_TRUE(err_has("config.json: not valid JSON"));

	/* no config.json: not an error; every key is -ENOENT */
	unlink(path_of("cfg/config.json"));
	CU_ASSERT_EQUAL_FATAL(open_ck("cfg", &ck), 0);
	CU_ASSERT_FALSE(mb_ckpt_has_config(ck));
	CU_ASSERT_EQUAL(mb_ckpt_config_int(ck, "d_model", &iv, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_EQUAL(mb_ckpt_config_double(ck, "d_model", &dv, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_EQUAL(mb_ckpt_config_str(ck, "d_model", &sv, g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_PTR_NULL(mb_ckpt_label(ck, 0));
	mb_ckpt_close(&ck);
}

static void
test_preprocessor(void)
{
	struct mb_ckpt *ck;
	double dv = 0.0, three[3] = {0};
	const char *sv = NULL;
	int bv = -1;

	make_tensors("");
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_write(path_of("pre"), g_e, 1, "F32", 0, g_err, sizeof(g_err)),
			      0);
	/* none: not an error; every key is -ENOENT */
	CU_ASSERT_EQUAL_FATAL(open_ck("pre", &ck), 0);
	CU_ASSERT_FALSE(mb_ckpt_has_preprocessor(ck));
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_double(ck, "sampling_rate", &dv, g_err, sizeof(g_err)),
			-ENOENT);
	CU_ASSERT_TRUE(err_has("no preprocessor_config.json"));
	mb_ckpt_close(&ck);

	write_text("pre/preprocessor_config.json",
		   "{\"sampling_rate\": 16000, \"padding\": \"repeatpad\", \"do_normalize\": true,"
		   " \"image_mean\": [0.485, 0.456, 0.406], \"image_std\": [0.5, \"x\", 0.5],"
		   " \"top_db\": null}");
	CU_ASSERT_EQUAL_FATAL(open_ck("pre/model.safetensors", &ck), 0);
	CU_ASSERT_TRUE(mb_ckpt_has_preprocessor(ck));
	CU_ASSERT_FALSE(mb_ckpt_has_config(ck)); /* the two files are apart */
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_double(ck, "sampling_rate", &dv, g_err, sizeof(g_err)),
			0);
	CU_ASSERT_EQUAL(dv, 16000.0);
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_str(ck, "padding", &sv, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(sv, "repeatpad");
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_bool(ck, "do_normalize", &bv, g_err, sizeof(g_err)),
			0);
	CU_ASSERT_EQUAL(bv, 1);
	CU_ASSERT_EQUAL(
		mb_ckpt_preprocessor_doubles(ck, "image_mean", three, 3, g_err, sizeof(g_err)), 0);
	CU_ASSERT(three[0] == 0.485 && three[1] == 0.456 && three[2] == 0.406);
	/* the wrong type, length or element: -EINVAL naming the file and the key */
	CU_ASSERT_EQUAL(
		mb_ckpt_preprocessor_doubles(ck, "image_mean", three, 2, g_err, sizeof(g_err)),
		-EINVAL);
	CU_ASSERT_TRUE(err_has(path_of("pre/preprocessor_config.json")));
	CU_ASSERT_TRUE(err_has("\"image_mean\" is an array, expected an array of 2 numbers"));
	CU_ASSERT_EQUAL(
		mb_ckpt_preprocessor_doubles(ck, "image_std", three, 3, g_err, sizeof(g_err)),
		-EINVAL);
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_bool(ck, "sampling_rate", &bv, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("\"sampling_rate\" is an integer (16000), expected true or false"));
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_double(ck, "top_db", &dv, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("\"top_db\" is null, expected a number"));
	CU_ASSERT_EQUAL(mb_ckpt_preprocessor_str(ck, "hop_length", &sv, g_err, sizeof(g_err)),
			-ENOENT);
	mb_ckpt_close(&ck);

	/* not an object, not JSON: the open fails naming the file */
	write_text("pre/preprocessor_config.json", "[16000]");
	CU_ASSERT_EQUAL(open_fails("pre"), -EINVAL);
	CU_ASSERT_TRUE(err_has("preprocessor_config.json: not a JSON object"));
}

static void
test_prefix(void)
{
	static const char *const prefixes[] = {"model.", "", NULL};
	static const char *const none[] = {"decoder.", "model.decoder.", NULL};
	struct mb_weights_spec canon[N_T + 1], bad;
	float *out[N_T + 1] = {NULL};
	struct mb_ckpt *ck;
	static char names[N_T + 1][64];

	/* saved by another class: "encoder.layers.i.w" */
	make_tensors("encoder.");
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("pfx"), g_e, N_T, "F32", 500, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(open_ck("pfx", &ck), 0);
	CU_ASSERT_PTR_EQUAL(mb_ckpt_pick_prefix(ck, prefixes, "encoder.layers.0.w"), prefixes[1]);
	CU_ASSERT_PTR_NULL(mb_ckpt_pick_prefix(ck, none, "encoder.layers.0.w"));
	/* the model's canonical names: "model.encoder.layers.i.w" */
	for (int i = 0; i < N_T; i++) {
		snprintf(names[i], sizeof(names[i]), "model.%s", g_specs[i].name);
		canon[i] = g_specs[i];
		canon[i].name = names[i];
	}
	CU_ASSERT_EQUAL(mb_ckpt_bind(ck, canon, N_T, NULL, NULL, out, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'model.encoder.layers.0.w'"));
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, canon, N_T, "model.encoder.", "encoder.", out, g_err,
					   sizeof(g_err)),
			      0);
	for (int i = 0; i < N_T; i++)
		CU_ASSERT_EQUAL(memcmp(out[i], g_vals[i], (size_t)g_e[i].shape[0] * 12 * 4), 0);
	free_all(out, N_T);
	/* "model." dropped: to NULL is "" */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_bind(ck, canon, N_T, "model.", NULL, out, g_err, sizeof(g_err)), 0);
	free_all(out, N_T);
	/* a name without the prefix is looked up as it is */
	canon[N_T] = g_specs[3];
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, canon, N_T + 1, "model.encoder.", "encoder.", out,
					   g_err, sizeof(g_err)),
			      0);
	CU_ASSERT_EQUAL(memcmp(out[N_T], g_vals[3], (size_t)g_e[3].shape[0] * 12 * 4), 0);
	free_all(out, N_T + 1);
	/* errors name the name looked up, not the canonical one */
	bad = (struct mb_weights_spec){"model.encoder.layer_norm.weight", 1, {12}};
	CU_ASSERT_EQUAL(
		mb_ckpt_bind(ck, &bad, 1, "model.encoder.", "encoder.", out, g_err, sizeof(g_err)),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("tensor 'encoder.layer_norm.weight' ([12]) is missing"));
	CU_ASSERT_PTR_NULL(strstr(g_err, "model.encoder"));
	bad = (struct mb_weights_spec){"model.encoder.layers.2.w", 2, {3, 12}};
	CU_ASSERT_EQUAL(
		mb_ckpt_bind(ck, &bad, 1, "model.encoder.", "encoder.", out, g_err, sizeof(g_err)),
		-EINVAL);
	CU_ASSERT_TRUE(err_has("model-00002-of-00005.safetensors: tensor 'encoder.layers.2.w': "
			       "shape [2, 12], expected [3, 12]"));
	CU_ASSERT_PTR_NULL(out[0]);
	mb_ckpt_close(&ck);

	/* saved with the canonical names: "model." is picked */
	make_tensors("model.encoder.");
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_write(path_of("pfx2"), g_e, N_T, "F32", 0, g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL_FATAL(open_ck("pfx2", &ck), 0);
	CU_ASSERT_PTR_EQUAL(mb_ckpt_pick_prefix(ck, prefixes, "encoder.layers.0.w"), prefixes[0]);
	mb_ckpt_close(&ck);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (f == NULL) {
		*len = 0;
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len ? *len : 1);
	if (fread(buf, 1, *len, f) != *len)
		*len = 0;
	fclose(f);
	return buf;
}

static const struct mb_weights_spec g_gen[] = {
	{"enc.conv.weight", 3, {8, 4, 3}},
	{"enc.conv.bias", 1, {8}},
	{"enc.ln.weight", 1, {16}, MB_WEIGHTS_INIT_ONES},
	{"enc.ln.bias", 1, {16}},
	{"enc.fc.weight", 2, {32, 16}},
};
#define N_GEN (sizeof(g_gen) / sizeof(g_gen[0]))

static uint64_t
fnv(const void *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * UINT64_C(0x100000001b3);
	return h;
}

static void
test_generate(void)
{
	float *ref[N_GEN] = {NULL}, *out[N_GEN] = {NULL};
	size_t l1, l2, l3;
	char *a, *b, *c;
	struct mb_ckpt *ck;
	bool spread = false;

	/* same seed, same bytes; and byte for byte mb_weights_generate()'s file */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(path_of("g1"), g_gen, N_GEN, 7, "F32", 0, g_err, sizeof(g_err)),
		0);
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(path_of("g2"), g_gen, N_GEN, 7, "F32", 0, g_err, sizeof(g_err)),
		0);
	CU_ASSERT_EQUAL_FATAL(mb_weights_generate(path_of("g.safetensors"), g_gen, N_GEN, 7, g_err,
						  sizeof(g_err)),
			      0);
	a = slurp(path_of("g1/model.safetensors"), &l1);
	b = slurp(path_of("g2/model.safetensors"), &l2);
	c = slurp(path_of("g.safetensors"), &l3);
	CU_ASSERT_FATAL(l1 > 0 && l1 == l2 && l1 == l3);
	CU_ASSERT_EQUAL(memcmp(a, b, l1), 0);
	CU_ASSERT_EQUAL(memcmp(a, c, l1), 0);
	free(a);
	free(b);
	free(c);

	/* the values: mb_weights_generate()'s, which are what they always were (the hashes
	 * below were taken from the generator before MB_WEIGHTS_INIT_ONES existed) */
	CU_ASSERT_EQUAL_FATAL(
		mb_weights_load(path_of("g.safetensors"), g_gen, N_GEN, ref, g_err, sizeof(g_err)),
		0);
	CU_ASSERT_EQUAL(fnv(ref[0], 96 * 4), UINT64_C(0x65aae4ab1f8eb464));
	CU_ASSERT_EQUAL(fnv(ref[1], 8 * 4), UINT64_C(0xf935d4d424d54b98));
	CU_ASSERT_EQUAL(fnv(ref[4], 512 * 4), UINT64_C(0x46c4d11c48301ea5));
	CU_ASSERT_EQUAL(ref[0][0], -0x1.de416ap-4f);
	/* LayerNorm gains around 1, biases around 0 */
	for (int k = 0; k < 16; k++) {
		CU_ASSERT(ref[2][k] >= 0.98f && ref[2][k] <= 1.02f);
		CU_ASSERT(fabsf(ref[3][k]) <= 0.02f);
		if (ref[2][k] != ref[2][0])
			spread = true;
	}
	CU_ASSERT_TRUE(spread);
	{
		float one[16];

		mb_weights_generate_data(&g_gen[2], 7, one);
		CU_ASSERT_EQUAL(memcmp(one, ref[2], sizeof(one)), 0);
	}

	/* sharded F16: reopens, binds, and holds the F16 rounding of the same values */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(path_of("g16"), g_gen, N_GEN, 7, "F16", 200, g_err, sizeof(g_err)),
		0);
	CU_ASSERT_TRUE(exists("g16/model-00001-of-00003.safetensors"));
	CU_ASSERT_TRUE(exists("g16/model-00003-of-00003.safetensors"));
	CU_ASSERT_EQUAL_FATAL(open_ck("g16", &ck), 0);
	CU_ASSERT_EQUAL(mb_ckpt_count(ck), N_GEN);
	CU_ASSERT_EQUAL_FATAL(mb_ckpt_bind(ck, g_gen, N_GEN, NULL, NULL, out, g_err, sizeof(g_err)),
			      0);
	for (uint32_t i = 0; i < N_GEN; i++) {
		uint64_t n = mb_weights_spec_numel(&g_gen[i]);
		uint16_t *h = malloc(n * 2);
		float *want = malloc(n * 4);

		mb_ckpt_from_f32("F16", ref[i], n, h);
		mb_ckpt_to_f32("F16", h, n, want);
		CU_ASSERT_EQUAL(memcmp(out[i], want, n * 4), 0);
		for (uint64_t k = 0; k < n; k++)
			if (fabsf(out[i][k] - ref[i][k]) > fabsf(ref[i][k]) * 0x1p-11f + 0x1p-25f) {
				CU_FAIL("F16 rounding off by more than half an ulp");
				break;
			}
		free(h);
		free(want);
	}
	free_all(out, N_GEN);
	free_all(ref, N_GEN);
	mb_ckpt_close(&ck);
	/* another seed, other values */
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(path_of("g3"), g_gen, N_GEN, 8, "F32", 0, g_err, sizeof(g_err)),
		0);
	a = slurp(path_of("g1/model.safetensors"), &l1);
	c = slurp(path_of("g3/model.safetensors"), &l3);
	CU_ASSERT_FATAL(l1 == l3);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, l1), 0);
	free(a);
	free(c);
}

static const struct mb_test_case cases[] = {
	{"F16 -> F32: known bit patterns, subnormals, infinities, NaN", test_f16_bits},
	{"BF16 -> F32: the upper half of an F32", test_bf16_bits},
	{"F32 -> F16/BF16: nearest, ties to even", test_rounding},
	{"F16 and BF16 written, reopened and bound: the rounded values", test_round_trip},
	{"open: a file, a directory, an index, both (the file wins)", test_layouts},
	{"sharded: every tensor bound across shards, each in its file", test_sharded},
	{"broken indexes and shards: refused naming file and tensor", test_broken_index},
	{"bind: dtype, shape, missing: expected and found", test_bind_errors},
	{"config.json: ints, doubles, strings, labels, wrong types", test_config},
	{"preprocessor_config.json: numbers, arrays, strings, booleans, wrong types",
	 test_preprocessor},
	{"prefixes: picked, replaced, and errors name the name looked up", test_prefix},
	{"placeholder checkpoints: mb_weights_generate()'s values, sharded", test_generate},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"ckpt", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("ckpt_test", suites);
}
