/*
 * weights.c: safetensors files: open (mmap + jansson), check, bind, write, generate.
 *
 * Open maps the whole file read-only and validates the header once: afterwards a struct
 * mb_weights is an immutable table of tensors pointing into the mapping, safe to read from
 * any thread. Bind copies the tensors a model asks for into aligned arrays the model owns,
 * converting F16 and BF16 to F32 (mb_ckpt_to_f32(), ckpt.c), so the mapping can be closed
 * right after loading (and unaligned data offsets, which the format allows, do not matter).
 *
 * Writing streams tensor by tensor: a tensor's values come from the caller's array or from a
 * fill callback into one tensor-sized buffer, and F16/BF16 are encoded in small chunks, so
 * generating a large placeholder file never holds more than one tensor's floats.
 *
 * Data is little-endian on disk; mediabatch runs on little-endian hosts (x86-64, arm64), so
 * an F32 copy is a memcpy.
 */
#include "mb_weights.h"
#include "mb_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "weights_internal.h"

/* The reference implementation refuses headers over 100 MB; so do we. */
#define MAX_HEADER (100u << 20)

/* How a git-lfs pointer file begins: what a clone without git-lfs has for each tensor file */
static const char g_lfs[] = "version https://git-lfs.github.com/spec/";

struct mb_weights {
	char *path;
	void *map;
	size_t map_len;
	const uint8_t *data; /* first byte after the header */
	uint64_t data_len;
	struct mb_weights_tensor *t;
	uint32_t n;
	json_t *root; /* owns the names and dtypes */
};

void
mb_weights_seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

void
mb_weights_shape_str(const int64_t *shape, uint32_t ndim, char *buf, size_t len)
{
	size_t off = 0;

	off += (size_t)snprintf(buf, len, "[");
	for (uint32_t i = 0; i < ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "",
					shape[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

static int
dtype_size(const char *dtype)
{
	static const struct {
		const char *name;
		int size;
	} types[] = {
		{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
		{"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
		{"U16", 2}, {"U8", 1},	{"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dtype, types[i].name) == 0)
			return types[i].size;
	return 0;
}

static int
parse_entry(struct mb_weights *w, const char *name, json_t *v, struct mb_weights_tensor *t,
	    char *err, size_t len)
{
	json_t *dtype = json_object_get(v, "dtype");
	json_t *shape = json_object_get(v, "shape");
	json_t *offs = json_object_get(v, "data_offsets");
	uint64_t numel = 1, need;
	int size;

	t->name = name;
	if (!json_is_object(v)) {
		mb_weights_seterr(err, len, "%s: tensor '%s': not a JSON object", w->path, name);
		return -EINVAL;
	}
	if (!json_is_string(dtype)) {
		mb_weights_seterr(err, len, "%s: tensor '%s': no \"dtype\" string", w->path, name);
		return -EINVAL;
	}
	t->dtype = json_string_value(dtype);
	size = dtype_size(t->dtype);
	if (size == 0) {
		mb_weights_seterr(err, len, "%s: tensor '%s': unknown dtype '%s'", w->path, name,
				  t->dtype);
		return -EINVAL;
	}
	if (!json_is_array(shape) || json_array_size(shape) > MB_WEIGHTS_MAX_DIMS) {
		mb_weights_seterr(err, len,
				  "%s: tensor '%s': \"shape\" must be a list of at most %d sizes",
				  w->path, name, MB_WEIGHTS_MAX_DIMS);
		return -EINVAL;
	}
	t->ndim = (uint32_t)json_array_size(shape);
	for (uint32_t i = 0; i < t->ndim; i++) {
		json_t *d = json_array_get(shape, i);

		if (!json_is_integer(d) || json_integer_value(d) < 0 ||
		    json_integer_value(d) > (INT64_C(1) << 40)) {
			mb_weights_seterr(err, len, "%s: tensor '%s': shape[%u] is not a size",
					  w->path, name, i);
			return -EINVAL;
		}
		t->shape[i] = json_integer_value(d);
		/* checked before the product: 2^48 x 2^40 can pass 2^64, wrap, and look small */
		if (t->shape[i] != 0 && numel > (UINT64_C(1) << 48) / (uint64_t)t->shape[i]) {
			mb_weights_seterr(err, len, "%s: tensor '%s': shape too large", w->path,
					  name);
			return -EINVAL;
		}
		numel *= (uint64_t)t->shape[i];
	}
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    !json_is_integer(json_array_get(offs, 0)) ||
	    !json_is_integer(json_array_get(offs, 1)) ||
	    json_integer_value(json_array_get(offs, 0)) < 0 ||
	    json_integer_value(json_array_get(offs, 1)) < 0) {
		mb_weights_seterr(err, len,
				  "%s: tensor '%s': \"data_offsets\" must be [begin, end]", w->path,
				  name);
		return -EINVAL;
	}
	t->begin = (uint64_t)json_integer_value(json_array_get(offs, 0));
	t->end = (uint64_t)json_integer_value(json_array_get(offs, 1));
	if (t->end < t->begin) {
		mb_weights_seterr(err, len,
				  "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				  "] end before they begin",
				  w->path, name, t->begin, t->end);
		return -EINVAL;
	}
	need = numel * (uint64_t)size;
	if (t->end - t->begin != need) {
		char s[96];

		mb_weights_shape_str(t->shape, t->ndim, s, sizeof(s));
		mb_weights_seterr(err, len,
				  "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				  "] hold %" PRIu64 " bytes, but %s %s needs %" PRIu64,
				  w->path, name, t->begin, t->end, t->end - t->begin, t->dtype, s,
				  need);
		return -EINVAL;
	}
	if (t->end > w->data_len) {
		mb_weights_seterr(err, len,
				  "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				  "] run past the end of the data (%" PRIu64
				  " bytes): the file is truncated",
				  w->path, name, t->begin, t->end, w->data_len);
		return -EINVAL;
	}
	t->data = w->data + t->begin;
	return 0;
}

static int
by_begin(const void *a, const void *b)
{
	const struct mb_weights_tensor *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int
parse_header(struct mb_weights *w, const char *text, size_t text_len, char *err, size_t len)
{
	json_error_t jerr;
	const char *key;
	json_t *v;
	uint32_t i = 0;
	int rc;

	w->root = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &jerr);
	if (w->root == NULL) {
		mb_weights_seterr(err, len,
				  "%s: the header is not valid JSON: %s (line %d, column %d)",
				  w->path, jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(w->root)) {
		mb_weights_seterr(err, len, "%s: the header is not a JSON object", w->path);
		return -EINVAL;
	}
	w->t = calloc(json_object_size(w->root) + 1, sizeof(*w->t));
	if (w->t == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", w->path);
		return -ENOMEM;
	}
	json_object_foreach(w->root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0)
			continue;
		rc = parse_entry(w, key, v, &w->t[i], err, len);
		if (rc < 0)
			return rc;
		i++;
	}
	w->n = i;
	qsort(w->t, w->n, sizeof(*w->t), by_begin);
	for (i = 1; i < w->n; i++) {
		const struct mb_weights_tensor *a = &w->t[i - 1], *b = &w->t[i];

		if (b->begin < a->end) {
			mb_weights_seterr(err, len,
					  "%s: tensors '%s' (bytes %" PRIu64 "..%" PRIu64
					  ") and '%s' (bytes %" PRIu64 "..%" PRIu64 ") overlap",
					  w->path, a->name, a->begin, a->end, b->name, b->begin,
					  b->end);
			return -EINVAL;
		}
	}
	return 0;
}

int
mb_weights_open(const char *path, struct mb_weights **out, char *err, size_t len)
{
	struct mb_weights *w;
	struct stat st;
	uint64_t hlen = 0;
	int fd, rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->path = strdup(path)) == NULL) {
		free(w);
		mb_weights_seterr(err, len, "%s: out of memory", path);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang here */
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		mb_weights_close(&w);
		return rc == -ENOENT ? -ENOENT : -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		mb_weights_seterr(err, len, "%s: not a regular file (a FIFO, a device)", path);
		close(fd);
		mb_weights_close(&w);
		return -EINVAL;
	}
	if (st.st_size < 8) {
		mb_weights_seterr(err, len,
				  "%s: %lld bytes: too short for a safetensors file (an 8-byte "
				  "header length, "
				  "then the header)",
				  path, (long long)st.st_size);
		close(fd);
		mb_weights_close(&w);
		return -EINVAL;
	}
	w->map_len = (size_t)st.st_size;
	w->map = mmap(NULL, w->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (w->map == MAP_FAILED) {
		w->map = NULL;
		mb_weights_seterr(err, len, "%s: cannot map it: %s", path, strerror(errno));
		mb_weights_close(&w);
		return -ENOMEM;
	}
	if (w->map_len >= sizeof(g_lfs) - 1 && memcmp(w->map, g_lfs, sizeof(g_lfs) - 1) == 0) {
		/* a clone without git-lfs: the pointer to the tensors, not the tensors */
		mb_weights_seterr(
			err, len,
			"%s: a git-lfs pointer file, not the tensors (the repository was "
			"cloned without git-lfs): run 'git lfs pull' in its directory, or "
			"download it with huggingface-cli",
			path);
		mb_weights_close(&w);
		return -EINVAL;
	}
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | ((const uint8_t *)w->map)[i];
	if (hlen > MAX_HEADER || hlen > w->map_len - 8) {
		mb_weights_seterr(err, len,
				  "%s: the header length says %" PRIu64
				  " bytes, but the file has %zu after it%s",
				  path, hlen, w->map_len - 8,
				  hlen > MAX_HEADER
					  ? " (and the limit is 100 MB): not a safetensors file"
					  : ": truncated");
		mb_weights_close(&w);
		return -EINVAL;
	}
	w->data = (const uint8_t *)w->map + 8 + hlen;
	w->data_len = w->map_len - 8 - hlen;
	rc = parse_header(w, (const char *)w->map + 8, hlen, err, len);
	if (rc < 0) {
		mb_weights_close(&w);
		return rc;
	}
	*out = w;
	return 0;
}

void
mb_weights_close(struct mb_weights **wp)
{
	struct mb_weights *w;

	if (wp == NULL || *wp == NULL)
		return;
	w = *wp;
	if (w->map != NULL)
		munmap(w->map, w->map_len);
	json_decref(w->root);
	free(w->t);
	free(w->path);
	free(w);
	*wp = NULL;
}

uint32_t
mb_weights_count(const struct mb_weights *w)
{
	return w->n;
}

const struct mb_weights_tensor *
mb_weights_at(const struct mb_weights *w, uint32_t i)
{
	return i < w->n ? &w->t[i] : NULL;
}

const struct mb_weights_tensor *
mb_weights_find(const struct mb_weights *w, const char *name)
{
	for (uint32_t i = 0; i < w->n; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return &w->t[i];
	return NULL;
}

const char *
mb_weights_path(const struct mb_weights *w)
{
	return w->path;
}

uint64_t
mb_weights_spec_numel(const struct mb_weights_spec *s)
{
	uint64_t n = 1;

	for (uint32_t i = 0; i < s->ndim; i++)
		n *= (uint64_t)s->shape[i];
	return n;
}

int
mb_weights_check(const struct mb_weights *w, const struct mb_weights_spec *s, char *err, size_t len)
{
	const struct mb_weights_tensor *t = mb_weights_find(w, s->name);
	char want[96], got[96];

	mb_weights_shape_str(s->shape, s->ndim, want, sizeof(want));
	if (t == NULL) {
		mb_weights_seterr(err, len,
				  "%s: tensor '%s' (F32 %s) is missing (the file has %u tensor%s)",
				  w->path, s->name, want, w->n, w->n == 1 ? "" : "s");
		return -EINVAL;
	}
	mb_weights_shape_str(t->shape, t->ndim, got, sizeof(got));
	if (strcmp(t->dtype, "F32") != 0 && strcmp(t->dtype, "F16") != 0 &&
	    strcmp(t->dtype, "BF16") != 0) {
		mb_weights_seterr(err, len, "%s: tensor '%s': dtype %s, expected F32, F16 or BF16",
				  w->path, s->name, t->dtype);
		return -EINVAL;
	}
	if (t->ndim != s->ndim || memcmp(t->shape, s->shape, s->ndim * sizeof(int64_t)) != 0) {
		mb_weights_seterr(err, len, "%s: tensor '%s': shape %s, expected %s", w->path,
				  s->name, got, want);
		return -EINVAL;
	}
	return 0;
}

int
mb_weights_bind(const struct mb_weights *w, const struct mb_weights_spec *specs, uint32_t n,
		float **out, char *err, size_t len)
{
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		rc = mb_weights_check(w, &specs[i], err, len);
		if (rc < 0)
			return rc;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct mb_weights_tensor *t = mb_weights_find(w, specs[i].name);
		uint64_t numel = mb_weights_spec_numel(&specs[i]);
		/* at least one line: aligned_alloc(64, 0) may return NULL */
		size_t bytes = ((size_t)numel * sizeof(float) + 63) & ~(size_t)63;

		out[i] = aligned_alloc(64, bytes ? bytes : 64);
		if (out[i] == NULL) {
			for (uint32_t j = 0; j < i; j++) {
				free(out[j]);
				out[j] = NULL;
			}
			mb_weights_seterr(err, len, "%s: out of memory for tensor '%s'", w->path,
					  t->name);
			return -ENOMEM;
		}
		/* the dtype was checked: F32, F16 or BF16 */
		mb_ckpt_to_f32(t->dtype, t->data, numel, out[i]);
	}
	return 0;
}

int
mb_weights_load(const char *path, const struct mb_weights_spec *specs, uint32_t n, float **out,
		char *err, size_t len)
{
	struct mb_weights *w;
	int rc = mb_weights_open(path, &w, err, len);

	if (rc < 0)
		return rc;
	rc = mb_weights_bind(w, specs, n, out, err, len);
	mb_weights_close(&w);
	return rc;
}

/* ---- writing ---- */

static uint64_t
numel_of(const int64_t *shape, uint32_t ndim)
{
	uint64_t n = 1;

	for (uint32_t i = 0; i < ndim; i++)
		n *= (uint64_t)shape[i];
	return n;
}

int
mb_weights_write(const char *path, const struct mb_weights_entry *e, uint32_t n, char *err,
		 size_t len)
{
	return mb_weights_write_as(path, e, n, "F32", NULL, NULL, NULL, err, len);
}

/* Tensor @p cnt floats at @p src to @p f as @p dtype (size @p esize); 0 or -EIO. */
static int
write_values(FILE *f, const float *src, uint64_t cnt, const char *dtype, int esize)
{
	uint16_t chunk[4096];

	if (esize == 4)
		return fwrite(src, sizeof(float), (size_t)cnt, f) == cnt ? 0 : -EIO;
	for (uint64_t k = 0; k < cnt;) {
		uint64_t m = cnt - k < 4096 ? cnt - k : 4096;

		mb_ckpt_from_f32(dtype, src + k, m, chunk);
		if (fwrite(chunk, sizeof(uint16_t), (size_t)m, f) != m)
			return -EIO;
		k += m;
	}
	return 0;
}

int
mb_weights_write_as(const char *path, const struct mb_weights_entry *e, uint32_t n,
		    const char *dtype, const char *generator, mb_weights_fill_fn fill, void *ctx,
		    char *err, size_t len)
{
	json_t *root = json_object();
	char *text = NULL, tmp[PATH_MAX] = "";
	float *buf = NULL;
	uint64_t off = 0, hlen;
	size_t tlen;
	uint8_t lenbuf[8];
	FILE *f = NULL;
	int rc = -ENOMEM, esize;

	if (strcmp(dtype, "F32") == 0)
		esize = 4;
	else if (strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0)
		esize = 2;
	else
		esize = 0;
	if (esize == 0) {
		mb_weights_seterr(err, len, "%s: cannot write dtype '%s' (F32, F16 or BF16)", path,
				  dtype);
		json_decref(root);
		return -EINVAL;
	}
	if (root == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		json_t *shape;
		uint64_t bytes = numel_of(e[i].shape, e[i].ndim) * (uint64_t)esize;

		const char *bad = NULL;

		if (e[i].name == NULL || e[i].name[0] == '\0')
			bad = "has no name";
		else if (strcmp(e[i].name, "__metadata__") == 0)
			bad = "has the name reserved for the file's metadata";
		else if (json_object_get(root, e[i].name) != NULL)
			bad = "has the name of an earlier one (each name once)";
		if (bad != NULL) {
			mb_weights_seterr(err, len, "%s: tensor %u ('%s') %s", path, i,
					  e[i].name != NULL ? e[i].name : "", bad);
			json_decref(root);
			return -EINVAL;
		}
		shape = json_array();

		for (uint32_t d = 0; d < e[i].ndim; d++)
			json_array_append_new(shape, json_integer(e[i].shape[d]));
		if (json_object_set_new(root, e[i].name,
					json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtype, "shape",
						  shape, "data_offsets", (json_int_t)off,
						  (json_int_t)(off + bytes))) < 0)
			goto out;
		off += bytes;
	}
	if (generator != NULL)
		json_object_set_new(root, "__metadata__",
				    json_pack("{s:s}", "generator", generator));
	else
		json_object_set_new(root, "__metadata__", json_pack("{s:s}", "format", "pt"));
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	tlen = strlen(text);
	hlen = (tlen + 7) & ~(uint64_t)7; /* padded with spaces, as the reference writer does */
	for (int i = 0; i < 8; i++)
		lenbuf[i] = (uint8_t)(hlen >> (8 * i));
	/* written beside it and renamed into place: a failed write leaves no partial file, and
	 * a reader (a daemon's reload) sees the old file or the new one */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		tmp[0] = '\0';
		rc = -ENAMETOOLONG;
		mb_weights_seterr(err, len, "%s: %s", path, strerror(ENAMETOOLONG));
		goto done;
	}
	f = fopen(tmp, "wb");
	if (f == NULL) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	rc = -EIO;
	if (fwrite(lenbuf, 1, 8, f) != 8 || fwrite(text, 1, tlen, f) != tlen)
		goto io;
	for (uint64_t i = tlen; i < hlen; i++)
		if (fputc(' ', f) == EOF)
			goto io;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t cnt = numel_of(e[i].shape, e[i].ndim);
		const float *src = e[i].data;

		if (fill != NULL) {
			buf = malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
			if (buf == NULL) {
				rc = -ENOMEM;
				mb_weights_seterr(err, len, "%s: out of memory for tensor '%s'",
						  path, e[i].name);
				goto done;
			}
			rc = fill(ctx, i, buf, err, len);
			if (rc < 0)
				goto done;
			rc = -EIO;
			src = buf;
		}
		if (write_values(f, src, cnt, dtype, esize) < 0)
			goto io;
		free(buf);
		buf = NULL;
	}
	if (fclose(f) != 0) {
		f = NULL;
		goto io;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: cannot rename %s to it: %s", path, tmp,
				  strerror(errno));
		unlink(tmp);
		goto done;
	}
	rc = 0;
	goto done;
io:
	mb_weights_seterr(err, len, "%s: write failed: %s", path, strerror(errno));
	goto done;
out:
	mb_weights_seterr(err, len, "%s: out of memory", path);
done:
	if (f != NULL)
		fclose(f);
	if (rc < 0 && tmp[0] != '\0')
		unlink(tmp); /* nothing half written stays */
	free(buf);
	free(text);
	json_decref(root);
	return rc;
}

/* ---- placeholder weights ---- */

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
	return h;
}

void
mb_weights_generate_data(const struct mb_weights_spec *s, uint64_t seed, float *out)
{
	uint64_t cnt = mb_weights_spec_numel(s), fan_in = 1;
	uint64_t state = seed ^ fnv1a(s->name);
	float bound;

	for (uint32_t d = 1; d < s->ndim; d++)
		fan_in *= (uint64_t)s->shape[d];
	bound = s->ndim <= 1 ? 0.02f : (float)sqrt(6.0 / (double)fan_in);
	if (s->init == MB_WEIGHTS_INIT_ONES)
		bound = 0.02f;
	for (uint64_t k = 0; k < cnt; k++) {
		/* 24 random bits -> [0, 1) exactly representable: the same on every host */
		float u = (float)(splitmix64(&state) >> 40) * (1.0f / 16777216.0f);

		out[k] = (2.0f * u - 1.0f) * bound;
		if (s->init == MB_WEIGHTS_INIT_ONES)
			out[k] += 1.0f;
	}
}

int
mb_weights_gen_fill(void *ctx, uint32_t i, float *dst, char *err, size_t len)
{
	const struct mb_weights_gen_ctx *g = ctx;

	(void)err;
	(void)len;
	mb_weights_generate_data(&g->specs[i], g->seed, dst);
	return 0;
}

int
mb_weights_generate(const char *path, const struct mb_weights_spec *specs, uint32_t n,
		    uint64_t seed, char *err, size_t len)
{
	struct mb_weights_entry *e = calloc(n ? n : 1, sizeof(*e));
	struct mb_weights_gen_ctx g = {specs, seed};
	int rc;

	if (e == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", path);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		e[i].name = specs[i].name;
		e[i].ndim = specs[i].ndim;
		memcpy(e[i].shape, specs[i].shape, sizeof(e[i].shape));
	}
	rc = mb_weights_write_as(path, e, n, "F32", MB_WEIGHTS_GENERATOR, mb_weights_gen_fill, &g,
				 err, len);
	free(e);
	return rc;
}
