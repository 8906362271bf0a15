/*
 * weights_fuzz.c: libFuzzer target for the safetensors loader (gpu/weights.c).
 *
 * The input is a weights file (8-byte header length, JSON header, data), written to this
 * process's scratch file and opened with mb_weights_open(), as a model's weights are.
 * Checked, from gpu/mb_weights.h: a refusal is -EINVAL or -ENOMEM with a message naming the
 * file and nothing left open; an accepted file's tensors are in data order, do not overlap,
 * lie inside the data, have a known dtype and at most 6 dimensions, and hold exactly the
 * shape's element count times the dtype's size (computed here without overflow); each is
 * found by its name. Then every F32 tensor is bound (mb_weights_bind() with the file's own
 * shapes must succeed and copy the bytes exactly), and a binding that asks for a missing
 * tensor fails and allocates nothing.
 */
#include "mb_fuzz.h"
#include "mb_weights.h"

static MB_FUZZ_UNTRACED unsigned int
dtype_bytes(const char *d)
{
	static const char *const one[] = {"I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
	static const char *const two[] = {"F16", "BF16", "I16", "U16"};
	static const char *const four[] = {"F32", "I32", "U32"};
	static const char *const eight[] = {"F64", "I64", "U64"};

	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		if (strcmp(d, one[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
		if (strcmp(d, two[i]) == 0)
			return 2;
	for (size_t i = 0; i < sizeof(four) / sizeof(four[0]); i++)
		if (strcmp(d, four[i]) == 0)
			return 4;
	for (size_t i = 0; i < sizeof(eight) / sizeof(eight[0]); i++)
		if (strcmp(d, eight[i]) == 0)
			return 8;
	return 0;
}

#define MAX_BIND 64

static MB_FUZZ_UNTRACED void
check_open(const struct mb_weights *w, const uint8_t *data, size_t size)
{
	uint32_t n = mb_weights_count(w), n_bind = 0;
	uint64_t hlen = 0, data_len;
	struct mb_weights_spec specs[MAX_BIND + 1];
	const struct mb_weights_tensor *bound[MAX_BIND];
	float *out[MAX_BIND + 1];
	char err[512];
	int rc;

	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | data[i];
	MB_FUZZ_CHECK(size >= 8 && hlen <= size - 8, "header length %llu of %zu",
		      (unsigned long long)hlen, size);
	data_len = size - 8 - hlen;
	MB_FUZZ_CHECK(mb_weights_at(w, n) == NULL, "a tensor past the count");
	for (uint32_t i = 0; i < n; i++) {
		const struct mb_weights_tensor *t = mb_weights_at(w, i);
		unsigned __int128 numel = 1;
		unsigned int sz;

		MB_FUZZ_CHECK(t != NULL && t->name != NULL && t->dtype != NULL, "tensor %u", i);
		sz = dtype_bytes(t->dtype);
		MB_FUZZ_CHECK(sz != 0, "'%s': dtype '%s'", t->name, t->dtype);
		MB_FUZZ_CHECK(t->ndim <= MB_WEIGHTS_MAX_DIMS, "'%s': %u dims", t->name, t->ndim);
		for (uint32_t d = 0; d < t->ndim; d++) {
			MB_FUZZ_CHECK(t->shape[d] >= 0, "'%s': shape[%u] %lld", t->name, d,
				      (long long)t->shape[d]);
			numel *= (uint64_t)t->shape[d];
			if (numel > ((unsigned __int128)1 << 64))
				numel = (unsigned __int128)1 << 64; /* stays too large */
		}
		MB_FUZZ_CHECK(t->begin <= t->end && t->end <= data_len,
			      "'%s': bytes [%llu, %llu) of %llu", t->name,
			      (unsigned long long)t->begin, (unsigned long long)t->end,
			      (unsigned long long)data_len);
		MB_FUZZ_CHECK(numel * sz == t->end - t->begin,
			      "'%s': %llu bytes for a %s tensor of %llu elements%s", t->name,
			      (unsigned long long)(t->end - t->begin), t->dtype,
			      (unsigned long long)(numel >> 64 ? UINT64_MAX : (uint64_t)numel),
			      numel >> 64 ? " (2^64 or more)" : "");
		MB_FUZZ_CHECK(memcmp(t->data, data + 8 + hlen + t->begin,
				     (size_t)(t->end - t->begin)) == 0,
			      "'%s': data is not the file's bytes", t->name);
		if (i > 0) {
			const struct mb_weights_tensor *p = mb_weights_at(w, i - 1);

			MB_FUZZ_CHECK(p->begin <= t->begin && p->end <= t->begin,
				      "'%s' and '%s' overlap or are out of order", p->name,
				      t->name);
		}
		MB_FUZZ_CHECK(mb_weights_find(w, t->name) == t, "'%s' is found elsewhere", t->name);
		if (strcmp(t->dtype, "F32") == 0 && n_bind < MAX_BIND) {
			specs[n_bind].name = t->name;
			specs[n_bind].ndim = t->ndim;
			memcpy(specs[n_bind].shape, t->shape, sizeof(t->shape));
			MB_FUZZ_CHECK(mb_weights_spec_numel(&specs[n_bind]) * 4 ==
					      t->end - t->begin,
				      "'%s': spec numel", t->name);
			bound[n_bind++] = t;
		}
	}
	rc = mb_weights_bind(w, specs, n_bind, out, err, sizeof(err));
	MB_FUZZ_CHECK(rc == 0, "binding the file's own F32 tensors failed: %s", err);
	for (uint32_t i = 0; i < n_bind; i++) {
		MB_FUZZ_CHECK(((uintptr_t)out[i] & 63) == 0, "not 64-byte aligned");
		MB_FUZZ_CHECK(memcmp(out[i], bound[i]->data,
				     (size_t)(bound[i]->end - bound[i]->begin)) == 0,
			      "'%s': bound bytes differ", bound[i]->name);
		free(out[i]);
	}
	/* one tensor more that the file does not have: refused, nothing allocated */
	specs[n_bind] =
		(struct mb_weights_spec){.name = "mb.fuzz.absent/", .ndim = 1, .shape = {1}};
	for (uint32_t i = 0; i <= n_bind; i++)
		out[i] = NULL;
	if (mb_weights_find(w, specs[n_bind].name) == NULL) {
		memset(err, 0x55, sizeof(err));
		rc = mb_weights_bind(w, specs, n_bind + 1, out, err, sizeof(err));
		MB_FUZZ_CHECK(rc == -EINVAL && mb_fuzz_terminated(err, sizeof(err)),
			      "a missing tensor: rc %d", rc);
		for (uint32_t i = 0; i <= n_bind; i++)
			MB_FUZZ_CHECK(out[i] == NULL, "a failed bind allocated out[%u]", i);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = mb_fuzz_scratch("weights", ".safetensors", data, size);
	struct mb_weights *w = (struct mb_weights *)&w;
	char err[512];
	int rc;

	memset(err, 0x55, sizeof(err));
	rc = mb_weights_open(path, &w, err, sizeof(err));
	if (rc != 0) {
		MB_FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
		MB_FUZZ_CHECK(w == NULL, "a refused file is left open");
		MB_FUZZ_CHECK(mb_fuzz_terminated(err, sizeof(err)) &&
				      strncmp(err, path, strlen(path)) == 0,
			      "error '%.200s' does not name the file", err);
		return 0;
	}
	MB_FUZZ_CHECK(w != NULL && strcmp(mb_weights_path(w), path) == 0, "path");
	check_open(w, data, size);
	mb_weights_close(&w);
	MB_FUZZ_CHECK(w == NULL, "close leaves the pointer");
	return 0;
}
