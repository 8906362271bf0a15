/*
 * ckpt_fuzz.c: libFuzzer target for a checkpoint's JSON (gpu/ckpt.c): the sharded index
 * (model.safetensors.index.json), config.json and preprocessor_config.json, as a downloaded
 * checkpoint hands them over.
 *
 * The input is the index's bytes, then (after the first NUL byte, if any) config.json's, then
 * (after a second NUL, if any) preprocessor_config.json's; no NUL: neither JSON file. They are
 * written into this process's checkpoint directory beside three valid shards
 * (model-0000{1,2,3}-of-00003.safetensors holding F32 tensors "a" [2], "b" [3] and "c" [2, 2],
 * written once) and the directory is opened with mb_ckpt_open(), as the service opens a checkpoint.
 * Checked, from gpu/mb_ckpt.h: a refusal is -ENOENT, -EINVAL or -ENOMEM with a message naming a
 * file of the checkpoint, and nothing left open; an accepted checkpoint lists each tensor once,
 * finds each by its name in the file that holds it, binds each with its own shape to exactly the
 * values written, and answers every config.json question (integer, number, string, label) and
 * preprocessor_config.json question (number, three numbers, string, boolean) with 0, -ENOENT or
 * -EINVAL and a terminated string.
 */
#include <sys/stat.h>

#include "mb_ckpt.h"
#include "mb_fuzz.h"

static char g_dir[256];
static char g_index[300], g_config[300], g_pre[300];

static const float g_a[2] = {1.0f, -2.0f};
static const float g_b[3] = {0.5f, 0.25f, -0.125f};
static const float g_c[4] = {3.0f, 4.0f, 5.0f, 6.0f};

static MB_FUZZ_UNTRACED const float *
values_of(const char *name, uint64_t *n)
{
	if (strcmp(name, "a") == 0)
		return *n = 2, g_a;
	if (strcmp(name, "b") == 0)
		return *n = 3, g_b;
	if (strcmp(name, "c") == 0)
		return *n = 4, g_c;
	return *n = 0, NULL;
}

/* the checkpoint directory goes when the process does */
static void
cleanup(void)
{
	static const char *const names[] = {"model-00001-of-00003.safetensors",
					    "model-00002-of-00003.safetensors",
					    "model-00003-of-00003.safetensors",
					    "model.safetensors.index.json",
					    "config.json",
					    "preprocessor_config.json"};
	char path[400];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", g_dir, names[i]);
		unlink(path);
	}
	rmdir(g_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct mb_weights_entry e[3] = {
		{"a", 1, {2}, g_a},
		{"b", 1, {3}, g_b},
		{"c", 2, {2, 2}, g_c},
	};
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[512];

	(void)argc;
	(void)argv;
	mb_fuzz_init(0);
	snprintf(g_dir, sizeof(g_dir), "%s/mb-fuzz-ckpt-%d", tmp, (int)getpid());
	/* one tensor per shard: 8 bytes each at most */
	if (mb_ckpt_write(g_dir, e, 3, "F32", 8, err, sizeof(err)) != 0) {
		fprintf(g_fuzz_report, "ckpt_fuzz: cannot write %s: %s\n", g_dir, err);
		abort();
	}
	atexit(cleanup);
	snprintf(g_index, sizeof(g_index), "%s/model.safetensors.index.json", g_dir);
	snprintf(g_config, sizeof(g_config), "%s/config.json", g_dir);
	snprintf(g_pre, sizeof(g_pre), "%s/preprocessor_config.json", g_dir);
	return 0;
}

static MB_FUZZ_UNTRACED void
put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		fprintf(g_fuzz_report, "ckpt_fuzz: cannot write %s\n", path);
		abort();
	}
}

static MB_FUZZ_UNTRACED void
check_config(const struct mb_ckpt *ck)
{
	static const char *const keys[] = {"d_model",	     "hidden_size", "model_type",
					   "layer_norm_eps", "id2label",    "absent"};
	char err[512];

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		int64_t i;
		double d;
		const char *s = NULL;
		int rc;

		memset(err, 0x55, sizeof(err));
		rc = mb_ckpt_config_int(ck, keys[k], &i, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "int '%s': %d", keys[k],
			      rc);
		MB_FUZZ_CHECK(rc != -EINVAL || mb_fuzz_terminated(err, sizeof(err)), "int err");
		rc = mb_ckpt_config_double(ck, keys[k], &d, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "double '%s': %d", keys[k],
			      rc);
		rc = mb_ckpt_config_str(ck, keys[k], &s, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "str '%s': %d", keys[k],
			      rc);
		MB_FUZZ_CHECK(rc != 0 || (s != NULL && strlen(s) < (1u << 20)), "str '%s'",
			      keys[k]);
	}
	for (uint32_t id = 0; id < 4; id++) {
		const char *l = mb_ckpt_label(ck, id);

		MB_FUZZ_CHECK(l == NULL || strlen(l) < (1u << 20), "label %u", id);
	}
	MB_FUZZ_CHECK(mb_ckpt_has_config(ck) == 0 || mb_ckpt_has_config(ck) == 1, "has_config");
}

static MB_FUZZ_UNTRACED void
check_preprocessor(const struct mb_ckpt *ck)
{
	static const char *const keys[] = {"sampling_rate", "image_mean", "padding", "do_normalize",
					   "absent"};
	char err[512];

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		double d, three[3];
		const char *s = NULL;
		int b, rc;

		memset(err, 0x55, sizeof(err));
		rc = mb_ckpt_preprocessor_double(ck, keys[k], &d, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "double '%s': %d", keys[k],
			      rc);
		MB_FUZZ_CHECK(rc == 0 || mb_fuzz_terminated(err, sizeof(err)), "double err");
		rc = mb_ckpt_preprocessor_doubles(ck, keys[k], three, 3, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "doubles '%s': %d",
			      keys[k], rc);
		rc = mb_ckpt_preprocessor_str(ck, keys[k], &s, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "str '%s': %d", keys[k],
			      rc);
		MB_FUZZ_CHECK(rc != 0 || (s != NULL && strlen(s) < (1u << 20)), "str '%s'",
			      keys[k]);
		rc = mb_ckpt_preprocessor_bool(ck, keys[k], &b, err, sizeof(err));
		MB_FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "bool '%s': %d", keys[k],
			      rc);
		MB_FUZZ_CHECK(rc != 0 || b == 0 || b == 1, "bool '%s': %d", keys[k], b);
	}
	MB_FUZZ_CHECK(mb_ckpt_has_preprocessor(ck) == 0 || mb_ckpt_has_preprocessor(ck) == 1,
		      "has_preprocessor");
}

static MB_FUZZ_UNTRACED void
check_open(const struct mb_ckpt *ck)
{
	uint32_t n = mb_ckpt_count(ck);
	char err[512];

	MB_FUZZ_CHECK(n <= 3, "%u tensors from 3 shards of one each", n);
	MB_FUZZ_CHECK(mb_ckpt_at(ck, n, NULL) == NULL, "a tensor past the count");
	for (uint32_t i = 0; i < n; i++) {
		const char *file = NULL, *found_in = NULL;
		const struct mb_weights_tensor *t = mb_ckpt_at(ck, i, &file);
		struct mb_weights_spec spec;
		uint64_t numel;
		const float *want;
		float *out = NULL;

		MB_FUZZ_CHECK(t != NULL && file != NULL, "tensor %u", i);
		MB_FUZZ_CHECK(strncmp(file, g_dir, strlen(g_dir)) == 0, "'%s' outside the dir",
			      file);
		MB_FUZZ_CHECK(mb_ckpt_find(ck, t->name, &found_in) == t &&
				      strcmp(found_in, file) == 0,
			      "'%s' is found elsewhere", t->name);
		want = values_of(t->name, &numel);
		MB_FUZZ_CHECK(want != NULL, "a tensor '%s' no shard holds", t->name);
		memset(&spec, 0, sizeof(spec));
		spec.name = t->name;
		spec.ndim = t->ndim;
		memcpy(spec.shape, t->shape, sizeof(spec.shape));
		MB_FUZZ_CHECK(mb_ckpt_bind(ck, &spec, 1, NULL, NULL, &out, err, sizeof(err)) == 0,
			      "'%s' does not bind: %s", t->name, err);
		MB_FUZZ_CHECK(memcmp(out, want, numel * sizeof(float)) == 0, "'%s' values",
			      t->name);
		free(out);
	}
	check_config(ck);
	check_preprocessor(ck);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size), *nul2 = NULL;
	size_t index_len = nul != NULL ? (size_t)(nul - data) : size;
	struct mb_ckpt *ck = (struct mb_ckpt *)&ck;
	char err[512];
	int rc;

	put(g_index, data, index_len);
	if (nul != NULL)
		nul2 = memchr(nul + 1, '\0', size - index_len - 1);
	if (nul != NULL)
		put(g_config, nul + 1,
		    nul2 != NULL ? (size_t)(nul2 - nul - 1) : size - index_len - 1);
	else
		unlink(g_config);
	if (nul2 != NULL)
		put(g_pre, nul2 + 1, size - (size_t)(nul2 + 1 - data));
	else
		unlink(g_pre);
	memset(err, 0x55, sizeof(err));
	rc = mb_ckpt_open(g_dir, &ck, err, sizeof(err));
	if (rc != 0) {
		MB_FUZZ_CHECK(rc == -EINVAL || rc == -ENOENT || rc == -ENOMEM, "rc %d", rc);
		MB_FUZZ_CHECK(ck == NULL, "a refused checkpoint is left open");
		MB_FUZZ_CHECK(mb_fuzz_terminated(err, sizeof(err)) &&
				      strncmp(err, g_dir, strlen(g_dir)) == 0,
			      "error '%.200s' does not name a file of the checkpoint", err);
		return 0;
	}
	MB_FUZZ_CHECK(ck != NULL && strcmp(mb_ckpt_path(ck), g_dir) == 0, "path");
	check_open(ck);
	mb_ckpt_close(&ck);
	MB_FUZZ_CHECK(ck == NULL, "close leaves the pointer");
	return 0;
}
