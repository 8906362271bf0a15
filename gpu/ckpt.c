/*
 * ckpt.c: published checkpoints: one safetensors file or a sharded set with its index, the
 * config.json beside them, F16/BF16 <-> F32, and writing checkpoints in the same layouts.
 *
 * Open resolves the path (a file, an index, or a directory holding either) to a list of
 * safetensors files, opens each with mb_weights_open() (weights.c does all the parsing and
 * checking of a file), and builds two tables over all their tensors: in file order (shards
 * sorted by name, then data order: mb_ckpt_at()) and sorted by name (mb_ckpt_find(), and
 * the check that no tensor is in two files). For a sharded set, every entry of the index's
 * weight_map is checked against the shards. config.json and preprocessor_config.json stay
 * jansson objects that the accessors read. Afterwards a struct mb_ckpt is immutable: any thread may
 * read it.
 *
 * Writing goes through mb_weights_write_as(), one file per shard, tensor by tensor.
 */
#include "mb_ckpt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "weights_internal.h"

#define SINGLE_NAME "model.safetensors"
#define INDEX_NAME "model.safetensors.index.json"
#define CONFIG_NAME "config.json"
#define PREPROCESSOR_NAME "preprocessor_config.json"

/* A tensor and the file (index into mb_ckpt.w) that holds it. */
struct slot {
	const struct mb_weights_tensor *t;
	uint32_t file;
};

/* A JSON file beside the checkpoint: its path, and its root object (NULL: not there). */
struct jfile {
	json_t *root;
	char *path;
};

struct mb_ckpt {
	char *path; /* as given */
	struct mb_weights **w;
	uint32_t n_w;
	struct slot *all;    /* file order, then data order */
	struct slot *sorted; /* by name */
	uint32_t n;
	struct jfile config;	   /* config.json */
	struct jfile preprocessor; /* preprocessor_config.json */
};

/* a + b in a new string, or NULL */
static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);

	if (s != NULL) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* "dir/name" (no doubled '/'), or NULL */
static char *
dir_join(const char *dir, const char *name)
{
	size_t l = strlen(dir);
	char *s = malloc(l + strlen(name) + 2);

	if (s != NULL)
		sprintf(s, "%s%s%s", dir, l > 0 && dir[l - 1] != '/' ? "/" : "", name);
	return s;
}

/* The directory part of @p file with its '/' ("ckpt/"), "" for a bare name; or NULL. */
static char *
dir_prefix(const char *file)
{
	const char *slash = strrchr(file, '/');
	size_t l = slash != NULL ? (size_t)(slash - file) + 1 : 0;
	char *s = malloc(l + 1);

	if (s != NULL) {
		memcpy(s, file, l);
		s[l] = '\0';
	}
	return s;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* ---- F16 / BF16 ---- */

static float
f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0x1f) {
		bits = sign | 0x7f800000 | man << 13; /* infinities; NaN keeps its payload */
	} else if (exp != 0) {
		bits = sign | (exp + 112) << 23 | man << 13; /* rebias 15 -> 127 */
	} else {
		f = (float)man * 0x1p-24f; /* zero or subnormal: man x 2^-24, exact */
		memcpy(&bits, &f, sizeof(bits));
		bits |= sign;
	}
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static uint16_t
f32_to_f16(float f)
{
	uint32_t x, ax, sign, r, rem, half, e, m, shift;

	memcpy(&x, &f, sizeof(x));
	sign = (x >> 16) & 0x8000;
	ax = x & 0x7fffffff;
	if (ax > 0x7f800000) /* NaN: quiet, the payload's top bits kept */
		return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
	if (ax >= 0x477ff000) /* 65520 and up (infinity included) round past 65504 */
		return (uint16_t)(sign | 0x7c00);
	if (ax >= 0x38800000) { /* normal in F16: 2^-14 and up */
		r = (ax >> 13) - (112 << 10);
		rem = ax & 0x1fff;
		if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
			r++; /* a carry into the exponent is still the right encoding */
		return (uint16_t)(sign | r);
	}
	if (ax < 0x33000000) /* under 2^-25 (half the smallest subnormal): zero */
		return (uint16_t)sign;
	/* subnormal: round(value x 2^24), value = m x 2^(e - 150) */
	e = ax >> 23;
	m = (ax & 0x7fffff) | 0x800000;
	shift = 126 - e; /* 14 .. 24 */
	r = m >> shift;
	rem = m & ((1u << shift) - 1);
	half = 1u << (shift - 1);
	if (rem > half || (rem == half && (r & 1)))
		r++; /* 0x400 is the smallest normal: right as well */
	return (uint16_t)(sign | r);
}

static uint16_t
f32_to_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, sizeof(x));
	if ((x & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((x >> 16) | 0x40); /* NaN: quiet */
	x += 0x7fff + ((x >> 16) & 1);
	return (uint16_t)(x >> 16);
}

int
mb_ckpt_to_f32(const char *dtype, const void *src, uint64_t numel, float *dst)
{
	const uint8_t *p = src;

	if (strcmp(dtype, "F32") == 0) {
		memcpy(dst, src, (size_t)numel * sizeof(float));
	} else if (strcmp(dtype, "F16") == 0) {
		for (uint64_t i = 0; i < numel; i++)
			dst[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
	} else if (strcmp(dtype, "BF16") == 0) {
		for (uint64_t i = 0; i < numel; i++) {
			uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;

			memcpy(&dst[i], &bits, sizeof(bits));
		}
	} else {
		return -EINVAL;
	}
	return 0;
}

int
mb_ckpt_from_f32(const char *dtype, const float *src, uint64_t numel, void *dst)
{
	uint8_t *p = dst;
	uint16_t (*conv)(float);

	if (strcmp(dtype, "F32") == 0) {
		memcpy(dst, src, (size_t)numel * sizeof(float));
		return 0;
	}
	if (strcmp(dtype, "F16") == 0)
		conv = f32_to_f16;
	else if (strcmp(dtype, "BF16") == 0)
		conv = f32_to_bf16;
	else
		return -EINVAL;
	for (uint64_t i = 0; i < numel; i++) {
		uint16_t h = conv(src[i]);

		p[2 * i] = (uint8_t)h;
		p[2 * i + 1] = (uint8_t)(h >> 8);
	}
	return 0;
}

/* ---- the tensor tables ---- */

static int
by_name(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	int c = strcmp(x->t->name, y->t->name);

	/* ties (a tensor in two files) in file order, so the message names them in order */
	if (c != 0)
		return c;
	return x->file < y->file ? -1 : x->file > y->file;
}

static const struct slot *
find_slot(const struct mb_ckpt *ck, const char *name)
{
	uint32_t lo = 0, hi = ck->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ck->sorted[mid].t->name, name);

		if (c == 0)
			return &ck->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Both tables over all files; @p owner (the index) names a tensor found in two files. */
static int
build_tables(struct mb_ckpt *ck, const char *owner, char *err, size_t len)
{
	uint64_t total = 0;
	uint32_t k = 0;

	for (uint32_t f = 0; f < ck->n_w; f++)
		total += mb_weights_count(ck->w[f]);
	if (total > UINT32_MAX) {
		mb_weights_seterr(err, len, "%s: %" PRIu64 " tensors: too many", owner, total);
		return -EINVAL;
	}
	ck->all = calloc(total + 1, sizeof(*ck->all));
	ck->sorted = calloc(total + 1, sizeof(*ck->sorted));
	if (ck->all == NULL || ck->sorted == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", owner);
		return -ENOMEM;
	}
	for (uint32_t f = 0; f < ck->n_w; f++)
		for (uint32_t i = 0; i < mb_weights_count(ck->w[f]); i++)
			ck->all[k++] = (struct slot){mb_weights_at(ck->w[f], i), f};
	ck->n = k;
	memcpy(ck->sorted, ck->all, (size_t)k * sizeof(*ck->all));
	qsort(ck->sorted, k, sizeof(*ck->sorted), by_name);
	for (uint32_t i = 1; i < k; i++) {
		const struct slot *a = &ck->sorted[i - 1], *b = &ck->sorted[i];

		if (strcmp(a->t->name, b->t->name) == 0) {
			mb_weights_seterr(err, len, "%s: tensor '%s' is in two files: %s and %s",
					  owner, a->t->name, mb_weights_path(ck->w[a->file]),
					  mb_weights_path(ck->w[b->file]));
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- opening ---- */

static int
open_single(struct mb_ckpt *ck, const char *file, char *err, size_t len)
{
	int rc;

	ck->w = calloc(1, sizeof(*ck->w));
	if (ck->w == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", file);
		return -ENOMEM;
	}
	rc = mb_weights_open(file, &ck->w[0], err, len);
	if (rc < 0)
		return rc;
	ck->n_w = 1;
	return build_tables(ck, file, err, len);
}

static int
by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name must be a relative path that stays beside the index. */
static int
shard_name_ok(const char *s)
{
	const char *p = s;

	if (*s == '\0' || *s == '/')
		return 0;
	while (p != NULL) {
		if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
			return 0;
		p = strchr(p, '/');
		if (p != NULL)
			p++;
	}
	return 1;
}

static uint32_t
shard_of(const char *const *shards, uint32_t ns, const char *name)
{
	const char *const *hit = bsearch(&name, shards, ns, sizeof(*shards), by_str);

	return hit != NULL ? (uint32_t)(hit - shards) : UINT32_MAX;
}

/* The first tensor @p wm maps to @p shard (for messages). */
static const char *
first_mapped(json_t *wm, const char *shard)
{
	const char *key;
	json_t *v;

	json_object_foreach(wm, key, v)
	{
		if (strcmp(json_string_value(v), shard) == 0)
			return key;
	}
	return "?";
}

/* Check every weight_map entry against the shards (opened, tables built). */
static int
check_map(struct mb_ckpt *ck, const char *idx, json_t *wm, const char *const *shards, uint32_t ns,
	  char *err, size_t len)
{
	const char *key;
	json_t *v;

	json_object_foreach(wm, key, v)
	{
		uint32_t k = shard_of(shards, ns, json_string_value(v));
		const struct slot *s = find_slot(ck, key);

		if (s != NULL && s->file == k)
			continue;
		if (s != NULL)
			mb_weights_seterr(err, len,
					  "%s: tensor '%s' is mapped to %s, which does not hold it "
					  "(%s does)",
					  idx, key, shards[k], shards[s->file]);
		else
			mb_weights_seterr(err, len,
					  "%s: tensor '%s' is mapped to %s, which does not hold it "
					  "(no shard does)",
					  idx, key, shards[k]);
		return -EINVAL;
	}
	return 0;
}

static int
open_index(struct mb_ckpt *ck, const char *idx, char *err, size_t len)
{
	json_error_t jerr;
	json_t *root, *wm, *v;
	const char *key, **shards = NULL;
	char *prefix = NULL, *path = NULL;
	uint32_t ns = 0, nu = 0;
	int rc = -ENOMEM;
	struct stat st;

	root = json_load_file(idx, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (json_error_code(&jerr) == json_error_cannot_open_file)
			mb_weights_seterr(err, len, "%s: %s", idx, jerr.text);
		else
			mb_weights_seterr(err, len, "%s: not valid JSON: %s (line %d, column %d)",
					  idx, jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	wm = json_object_get(root, "weight_map");
	if (!json_is_object(root) || !json_is_object(wm)) {
		mb_weights_seterr(err, len,
				  "%s: no \"weight_map\" object (tensor name -> shard file)", idx);
		rc = -EINVAL;
		goto out;
	}
	shards = calloc(json_object_size(wm) + 1, sizeof(*shards));
	prefix = dir_prefix(idx);
	if (shards == NULL || prefix == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", idx);
		goto out;
	}
	json_object_foreach(wm, key, v)
	{
		if (!json_is_string(v)) {
			mb_weights_seterr(
				err, len,
				"%s: tensor '%s': the weight_map value is not a file name", idx,
				key);
			rc = -EINVAL;
			goto out;
		}
		if (!shard_name_ok(json_string_value(v))) {
			mb_weights_seterr(
				err, len,
				"%s: tensor '%s' is mapped to '%s', which is not a file beside the "
				"index",
				idx, key, json_string_value(v));
			rc = -EINVAL;
			goto out;
		}
		shards[ns++] = json_string_value(v);
	}
	qsort(shards, ns, sizeof(*shards), by_str);
	for (uint32_t i = 0; i < ns; i++)
		if (nu == 0 || strcmp(shards[nu - 1], shards[i]) != 0)
			shards[nu++] = shards[i];
	ck->w = calloc(nu + 1, sizeof(*ck->w));
	if (ck->w == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", idx);
		goto out;
	}
	ck->n_w = nu;
	for (uint32_t k = 0; k < nu; k++) {
		path = concat(prefix, shards[k]);
		if (path == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", idx);
			goto out;
		}
		if (stat(path, &st) < 0 && errno == ENOENT) {
			mb_weights_seterr(err, len,
					  "%s: tensor '%s' is mapped to %s, which does not exist",
					  idx, first_mapped(wm, shards[k]), shards[k]);
			rc = -ENOENT;
			goto out;
		}
		rc = mb_weights_open(path, &ck->w[k], err, len);
		if (rc < 0)
			goto out;
		free(path);
		path = NULL;
	}
	rc = build_tables(ck, idx, err, len);
	if (rc == 0)
		rc = check_map(ck, idx, wm, shards, nu, err, len);
out:
	free(path);
	free(prefix);
	free(shards);
	json_decref(root);
	return rc;
}

/* @p name beside checkpoint file @p file into @p jf: none is not an error; one that is not a
 * JSON object is. */
static int
load_json(struct jfile *jf, const char *file, const char *name, char *err, size_t len)
{
	char *prefix = dir_prefix(file);
	json_error_t jerr;
	struct stat st;

	jf->path = prefix != NULL ? concat(prefix, name) : NULL;
	free(prefix);
	if (jf->path == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", file);
		return -ENOMEM;
	}
	if (stat(jf->path, &st) < 0) {
		if (errno == ENOENT)
			return 0; /* none: the model takes its sizes from the shapes */
		mb_weights_seterr(err, len, "%s: %s", jf->path, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) { /* a FIFO would hang the load waiting for a writer */
		mb_weights_seterr(err, len, "%s: not a regular file", jf->path);
		return -EINVAL;
	}
	jf->root = json_load_file(jf->path, 0, &jerr);
	if (jf->root == NULL) {
		if (json_error_code(&jerr) == json_error_cannot_open_file)
			mb_weights_seterr(err, len, "%s: %s", jf->path, jerr.text);
		else
			mb_weights_seterr(err, len, "%s: not valid JSON: %s (line %d, column %d)",
					  jf->path, jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(jf->root)) {
		mb_weights_seterr(err, len, "%s: not a JSON object", jf->path);
		return -EINVAL;
	}
	return 0;
}

int
mb_ckpt_open(const char *path, struct mb_ckpt **out, char *err, size_t len)
{
	struct mb_ckpt *ck;
	char *single = NULL, *index = NULL;
	const char *file;
	struct stat st;
	int rc;

	*out = NULL;
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL || (ck->path = strdup(path)) == NULL) {
		free(ck);
		mb_weights_seterr(err, len, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (stat(path, &st) < 0) {
		rc = errno == ENOENT ? -ENOENT : -EINVAL;
		mb_weights_seterr(err, len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		single = dir_join(path, SINGLE_NAME);
		index = dir_join(path, INDEX_NAME);
		if (single == NULL || index == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", path);
			rc = -ENOMEM;
			goto fail;
		}
		if (stat(single, &st) == 0) {
			file = single; /* the single file wins over an index */
			rc = open_single(ck, file, err, len);
		} else if (stat(index, &st) == 0) {
			file = index;
			rc = open_index(ck, file, err, len);
		} else {
			mb_weights_seterr(err, len, "%s: a directory with neither %s nor %s", path,
					  SINGLE_NAME, INDEX_NAME);
			rc = -ENOENT;
			goto fail;
		}
	} else {
		file = path;
		if (ends_with(path, ".json"))
			rc = open_index(ck, file, err, len);
		else
			rc = open_single(ck, file, err, len);
	}
	if (rc == 0)
		rc = load_json(&ck->config, file, CONFIG_NAME, err, len);
	if (rc == 0)
		rc = load_json(&ck->preprocessor, file, PREPROCESSOR_NAME, err, len);
	if (rc < 0)
		goto fail;
	free(single);
	free(index);
	*out = ck;
	return 0;
fail:
	free(single);
	free(index);
	mb_ckpt_close(&ck);
	return rc;
}

void
mb_ckpt_close(struct mb_ckpt **ckp)
{
	struct mb_ckpt *ck;

	if (ckp == NULL || *ckp == NULL)
		return;
	ck = *ckp;
	for (uint32_t i = 0; ck->w != NULL && i < ck->n_w; i++)
		mb_weights_close(&ck->w[i]);
	free(ck->w);
	free(ck->all);
	free(ck->sorted);
	json_decref(ck->config.root);
	free(ck->config.path);
	json_decref(ck->preprocessor.root);
	free(ck->preprocessor.path);
	free(ck->path);
	free(ck);
	*ckp = NULL;
}

const char *
mb_ckpt_path(const struct mb_ckpt *ck)
{
	return ck->path;
}

uint32_t
mb_ckpt_count(const struct mb_ckpt *ck)
{
	return ck->n;
}

const struct mb_weights_tensor *
mb_ckpt_at(const struct mb_ckpt *ck, uint32_t i, const char **file)
{
	if (i >= ck->n)
		return NULL;
	if (file != NULL)
		*file = mb_weights_path(ck->w[ck->all[i].file]);
	return ck->all[i].t;
}

const struct mb_weights_tensor *
mb_ckpt_find(const struct mb_ckpt *ck, const char *name, const char **file)
{
	const struct slot *s = find_slot(ck, name);

	if (s == NULL)
		return NULL;
	if (file != NULL)
		*file = mb_weights_path(ck->w[s->file]);
	return s->t;
}

const char *
mb_ckpt_pick_prefix(const struct mb_ckpt *ck, const char *const *prefixes, const char *anchor)
{
	for (size_t i = 0; prefixes[i] != NULL; i++) {
		char *name = concat(prefixes[i], anchor);
		const struct slot *s = name != NULL ? find_slot(ck, name) : NULL;

		free(name);
		if (s != NULL)
			return prefixes[i];
	}
	return NULL;
}

/* ---- config.json and preprocessor_config.json ---- */

int
mb_ckpt_has_config(const struct mb_ckpt *ck)
{
	return ck->config.root != NULL;
}

int
mb_ckpt_has_preprocessor(const struct mb_ckpt *ck)
{
	return ck->preprocessor.root != NULL;
}

static int
json_get(const struct mb_ckpt *ck, const struct jfile *jf, const char *name, const char *key,
	 json_t **v, char *err, size_t len)
{
	if (jf->root == NULL) {
		mb_weights_seterr(err, len, "%s: no %s", ck->path, name);
		return -ENOENT;
	}
	*v = json_object_get(jf->root, key);
	if (*v == NULL) {
		mb_weights_seterr(err, len, "%s: no \"%s\"", jf->path, key);
		return -ENOENT;
	}
	return 0;
}

/* What a config value is, for messages: "a string (\"512\")", "an array", ... */
static void
describe(const json_t *v, char *buf, size_t len)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		snprintf(buf, len, "an object");
		break;
	case JSON_ARRAY:
		snprintf(buf, len, "an array");
		break;
	case JSON_STRING:
		snprintf(buf, len, "a string (\"%.40s\")", json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "an integer (%" PRId64 ")", (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(buf, len, "a number (%g)", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(buf, len, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "false");
		break;
	default:
		snprintf(buf, len, "null");
		break;
	}
}

static int
wrong_type(const struct jfile *jf, const char *key, const json_t *v, const char *want, char *err,
	   size_t len)
{
	char got[64];

	describe(v, got, sizeof(got));
	mb_weights_seterr(err, len, "%s: \"%s\" is %s, expected %s", jf->path, key, got, want);
	return -EINVAL;
}

int
mb_ckpt_config_int(const struct mb_ckpt *ck, const char *key, int64_t *out, char *err, size_t len)
{
	json_t *v;
	double d;
	int rc = json_get(ck, &ck->config, CONFIG_NAME, key, &v, err, len);

	if (rc < 0)
		return rc;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d == floor(d) && d >= -0x1p63 && d < 0x1p63) {
			*out = (int64_t)d;
			return 0;
		}
	}
	return wrong_type(&ck->config, key, v, "an integer", err, len);
}

static int
json_double(const struct mb_ckpt *ck, const struct jfile *jf, const char *name, const char *key,
	    double *out, char *err, size_t len)
{
	json_t *v;
	int rc = json_get(ck, jf, name, key, &v, err, len);

	if (rc < 0)
		return rc;
	if (!json_is_number(v))
		return wrong_type(jf, key, v, "a number", err, len);
	*out = json_number_value(v);
	return 0;
}

static int
json_str(const struct mb_ckpt *ck, const struct jfile *jf, const char *name, const char *key,
	 const char **out, char *err, size_t len)
{
	json_t *v;
	int rc = json_get(ck, jf, name, key, &v, err, len);

	if (rc < 0)
		return rc;
	if (!json_is_string(v))
		return wrong_type(jf, key, v, "a string", err, len);
	*out = json_string_value(v);
	return 0;
}

int
mb_ckpt_config_double(const struct mb_ckpt *ck, const char *key, double *out, char *err, size_t len)
{
	return json_double(ck, &ck->config, CONFIG_NAME, key, out, err, len);
}

int
mb_ckpt_config_str(const struct mb_ckpt *ck, const char *key, const char **out, char *err,
		   size_t len)
{
	return json_str(ck, &ck->config, CONFIG_NAME, key, out, err, len);
}

int
mb_ckpt_preprocessor_double(const struct mb_ckpt *ck, const char *key, double *out, char *err,
			    size_t len)
{
	return json_double(ck, &ck->preprocessor, PREPROCESSOR_NAME, key, out, err, len);
}

int
mb_ckpt_preprocessor_str(const struct mb_ckpt *ck, const char *key, const char **out, char *err,
			 size_t len)
{
	return json_str(ck, &ck->preprocessor, PREPROCESSOR_NAME, key, out, err, len);
}

static int
json_bool(const struct mb_ckpt *ck, const struct jfile *jf, const char *name, const char *key,
	  int *out, char *err, size_t len)
{
	json_t *v;
	int rc = json_get(ck, jf, name, key, &v, err, len);

	if (rc < 0)
		return rc;
	if (!json_is_boolean(v))
		return wrong_type(jf, key, v, "true or false", err, len);
	*out = json_is_true(v);
	return 0;
}

int
mb_ckpt_preprocessor_bool(const struct mb_ckpt *ck, const char *key, int *out, char *err,
			  size_t len)
{
	return json_bool(ck, &ck->preprocessor, PREPROCESSOR_NAME, key, out, err, len);
}

int
mb_ckpt_config_bool(const struct mb_ckpt *ck, const char *key, int *out, char *err, size_t len)
{
	return json_bool(ck, &ck->config, CONFIG_NAME, key, out, err, len);
}

int
mb_ckpt_preprocessor_doubles(const struct mb_ckpt *ck, const char *key, double *out, size_t n,
			     char *err, size_t len)
{
	char want[48];
	json_t *v;
	int rc = json_get(ck, &ck->preprocessor, PREPROCESSOR_NAME, key, &v, err, len);

	if (rc < 0)
		return rc;
	snprintf(want, sizeof(want), "an array of %zu numbers", n);
	if (!json_is_array(v) || json_array_size(v) != n)
		return wrong_type(&ck->preprocessor, key, v, want, err, len);
	for (size_t i = 0; i < n; i++) {
		if (!json_is_number(json_array_get(v, i)))
			return wrong_type(&ck->preprocessor, key, v, want, err, len);
		out[i] = json_number_value(json_array_get(v, i));
	}
	return 0;
}

int64_t
mb_ckpt_label_count(const struct mb_ckpt *ck)
{
	json_t *labels =
		ck->config.root != NULL ? json_object_get(ck->config.root, "id2label") : NULL;

	return json_is_object(labels) ? (int64_t)json_object_size(labels) : -1;
}

const char *
mb_ckpt_label(const struct mb_ckpt *ck, uint32_t id)
{
	json_t *labels =
		ck->config.root != NULL ? json_object_get(ck->config.root, "id2label") : NULL;
	char key[16];

	snprintf(key, sizeof(key), "%" PRIu32, id);
	return json_string_value(json_object_get(labels, key)); /* NULL-safe */
}

/* ---- binding ---- */

/*
 * The name @p name is looked up by: a leading @p from replaced by @p to. Returns @p name
 * itself or a new string in *@p heap (free it); NULL when out of memory.
 */
static const char *
lookup_name(const char *name, const char *from, const char *to, char **heap)
{
	size_t lf = from != NULL ? strlen(from) : 0;

	*heap = NULL;
	if (from == NULL || strncmp(name, from, lf) != 0)
		return name;
	*heap = concat(to != NULL ? to : "", name + lf);
	return *heap;
}

int
mb_ckpt_bind(const struct mb_ckpt *ck, const struct mb_weights_spec *specs, uint32_t n,
	     const char *from, const char *to, float **out, char *err, size_t len)
{
	char *heap, want[96];
	int rc = 0;

	/* every check first: a bad checkpoint allocates nothing */
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		struct mb_weights_spec s = specs[i];
		const struct slot *hit;

		s.name = lookup_name(specs[i].name, from, to, &heap);
		if (s.name == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", ck->path);
			return -ENOMEM;
		}
		hit = find_slot(ck, s.name);
		if (hit == NULL) {
			mb_weights_shape_str(s.shape, s.ndim, want, sizeof(want));
			mb_weights_seterr(
				err, len,
				"%s: tensor '%s' (%s) is missing (the checkpoint has %u tensor%s)",
				ck->path, s.name, want, ck->n, ck->n == 1 ? "" : "s");
			rc = -EINVAL;
		} else {
			rc = mb_weights_check(ck->w[hit->file], &s, err, len);
		}
		free(heap);
	}
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		struct mb_weights_spec s = specs[i];

		s.name = lookup_name(specs[i].name, from, to, &heap);
		if (s.name == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", ck->path);
			rc = -ENOMEM;
		} else {
			rc = mb_weights_bind(ck->w[find_slot(ck, s.name)->file], &s, 1, &out[i],
					     err, len);
		}
		free(heap);
		if (rc < 0) {
			for (uint32_t j = 0; j < i; j++) {
				free(out[j]);
				out[j] = NULL;
			}
			return rc;
		}
	}
	return 0;
}

/* ---- writing ---- */

/* mkdir -p */
static int
make_dir(const char *dir, char *err, size_t len)
{
	char *p = strdup(dir);
	struct stat st;
	int rc = 0;

	if (p == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		return -ENOMEM;
	}
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -errno;
		*s = '/';
		if (rc < 0)
			break;
	}
	if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0 && (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)))
		rc = -ENOTDIR;
	if (rc < 0)
		mb_weights_seterr(err, len, "%s: cannot create the directory: %s", dir,
				  strerror(-rc));
	free(p);
	return rc;
}

/* Remove @p name in @p dir if it is there. */
static int
remove_stale(const char *dir, const char *name, char *err, size_t len)
{
	char *path = dir_join(dir, name);
	int rc = 0;

	if (path == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		return -ENOMEM;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: cannot remove it: %s", path, strerror(errno));
	}
	free(path);
	return rc;
}

/* A shard's fill: the whole list's fill with the shard's first tensor added. */
struct shard_fill {
	mb_weights_fill_fn fill;
	void *ctx;
	uint32_t first;
};

static int
shard_fill(void *ctx, uint32_t i, float *dst, char *err, size_t len)
{
	const struct shard_fill *s = ctx;

	return s->fill(s->ctx, s->first + i, dst, err, len);
}

static int
write_index(const char *dir, json_t *index, char *err, size_t len)
{
	char *path = dir_join(dir, INDEX_NAME);
	char *text = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS);
	FILE *f = NULL;
	int rc = 0;

	if (path == NULL || text == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		rc = -ENOMEM;
		goto out;
	}
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fputc('\n', f) == EOF) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: %s", path, strerror(errno));
	}
	if (f != NULL && fclose(f) != 0 && rc == 0) {
		rc = -errno;
		mb_weights_seterr(err, len, "%s: write failed: %s", path, strerror(errno));
	}
out:
	free(text);
	free(path);
	return rc;
}

static uint64_t
entry_bytes(const struct mb_weights_entry *e, uint64_t esize)
{
	for (uint32_t d = 0; d < e->ndim; d++)
		esize *= (uint64_t)e->shape[d];
	return esize;
}

/*
 * The end of the shard that starts at tensor @p first: tensors in order while they fit in
 * @p shard_bytes, and at least one.
 */
static uint32_t
shard_end(const struct mb_weights_entry *e, uint32_t n, uint32_t first, uint64_t esize,
	  uint64_t shard_bytes)
{
	uint64_t cur = 0;
	uint32_t end = first;

	for (; end < n; end++) {
		uint64_t b = entry_bytes(&e[end], esize);

		if (end > first && cur + b > shard_bytes)
			break;
		cur += b;
	}
	return end;
}

/* mb_ckpt_write() with mb_weights_write_as()'s generator and fill. */
static int
write_ckpt(const char *dir, const struct mb_weights_entry *e, uint32_t n, const char *dtype,
	   uint64_t shard_bytes, const char *generator, mb_weights_fill_fn fill, void *ctx,
	   char *err, size_t len)
{
	uint64_t esize, total = 0;
	uint32_t n_shards = 1, first = 0;
	json_t *index = NULL, *map = NULL;
	char name[64], *path = NULL;
	int rc;

	if (strcmp(dtype, "F32") == 0)
		esize = 4;
	else if (strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0)
		esize = 2;
	else {
		mb_weights_seterr(err, len, "%s: cannot write dtype '%s' (F32, F16 or BF16)", dir,
				  dtype);
		return -EINVAL;
	}
	/* each name once over all shards (a shard's own write checks only its tensors) */
	if ((map = json_object()) == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].name == NULL || json_object_get(map, e[i].name) == NULL) {
			if (e[i].name != NULL)
				json_object_set_new(map, e[i].name, json_true());
			continue;
		}
		mb_weights_seterr(err, len,
				  "%s: tensor %u ('%s') has the name of an earlier one (each name "
				  "once)",
				  dir, i, e[i].name);
		json_decref(map);
		return -EINVAL;
	}
	json_decref(map);
	map = NULL;
	rc = make_dir(dir, err, len);
	if (rc < 0)
		return rc;
	if (shard_bytes == 0) {
		path = dir_join(dir, SINGLE_NAME);
		if (path == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", dir);
			return -ENOMEM;
		}
		rc = mb_weights_write_as(path, e, n, dtype, generator, fill, ctx, err, len);
		free(path);
		return rc < 0 ? rc : remove_stale(dir, INDEX_NAME, err, len);
	}
	for (uint32_t i = 0; i < n; i++)
		total += entry_bytes(&e[i], esize);
	for (uint32_t f = shard_end(e, n, 0, esize, shard_bytes); f < n;
	     f = shard_end(e, n, f, esize, shard_bytes))
		n_shards++;
	index = json_object();
	map = json_object();
	if (index == NULL || map == NULL ||
	    json_object_set_new(index, "metadata",
				json_pack("{s:I}", "total_size", (json_int_t)total)) < 0) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < n_shards; k++) {
		struct shard_fill sf = {fill, ctx, first};
		uint32_t end = shard_end(e, n, first, esize, shard_bytes);

		snprintf(name, sizeof(name), "model-%05" PRIu32 "-of-%05" PRIu32 ".safetensors",
			 k + 1, n_shards);
		path = dir_join(dir, name);
		if (path == NULL) {
			mb_weights_seterr(err, len, "%s: out of memory", dir);
			rc = -ENOMEM;
			goto out;
		}
		rc = mb_weights_write_as(path, e + first, end - first, dtype, generator,
					 fill != NULL ? shard_fill : NULL, &sf, err, len);
		free(path);
		if (rc < 0)
			goto out;
		for (uint32_t i = first; i < end; i++)
			if (json_object_set_new(map, e[i].name, json_string(name)) < 0) {
				mb_weights_seterr(err, len, "%s: out of memory", dir);
				rc = -ENOMEM;
				goto out;
			}
		first = end;
	}
	json_object_set(index, "weight_map", map);
	rc = write_index(dir, index, err, len);
	if (rc == 0)
		rc = remove_stale(dir, SINGLE_NAME, err, len);
out:
	json_decref(map);
	json_decref(index);
	return rc;
}

int
mb_ckpt_write(const char *dir, const struct mb_weights_entry *e, uint32_t n, const char *dtype,
	      uint64_t shard_bytes, char *err, size_t len)
{
	return write_ckpt(dir, e, n, dtype, shard_bytes, NULL, NULL, NULL, err, len);
}

int
mb_ckpt_generate(const char *dir, const struct mb_weights_spec *specs, uint32_t n, uint64_t seed,
		 const char *dtype, uint64_t shard_bytes, char *err, size_t len)
{
	struct mb_weights_entry *e = calloc(n ? n : 1, sizeof(*e));
	struct mb_weights_gen_ctx g = {specs, seed};
	int rc;

	if (e == NULL) {
		mb_weights_seterr(err, len, "%s: out of memory", dir);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		e[i].name = specs[i].name;
		e[i].ndim = specs[i].ndim;
		memcpy(e[i].shape, specs[i].shape, sizeof(e[i].shape));
	}
	rc = write_ckpt(dir, e, n, dtype, shard_bytes, MB_WEIGHTS_GENERATOR, mb_weights_gen_fill,
			&g, err, len);
	free(e);
	return rc;
}
