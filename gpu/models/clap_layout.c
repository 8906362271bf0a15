/*
 * clap_layout.c: what a CLAP audio checkpoint looks like (the mb_layout library,
 * layout_internal.h): the sizes ("tiny", a test size that is not published, and
 * "clap-htsat-unfused"), the sizes of a checkpoint read from its tensors and config.json, the
 * tensors of the audio tower and projection of a size under the names ClapModel and
 * ClapAudioModelWithProjection save, and a ClapModel's config.json.
 *
 * Sizes come from the checkpoint: E and patch_size from patch_embed.proj, the mel bins from
 * batch_norm, stages and depths by counting blocks, heads per stage and window_size from the
 * relative position tables' shapes, the MLP width per stage from intermediate.dense, P from
 * audio_projection.linear1. config.json's audio_config (a ClapModel's) or the file itself (a
 * ClapAudioModelWithProjection's) gives spec_size (default 256), patch_stride ([4, 4]) and
 * layer_norm_eps (1e-5), and what else it says must agree with the tensors; the fused model
 * (enable_fusion) is refused, as is a geometry clap.c does not run.
 *
 * What the audio tower computes with them is clap.c's. Threads: any; nothing here keeps
 * state.
 */
#include "clap_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layout_internal.h"

#define FRAMES MB_CLAP_FRAMES /* 1001 */

#define MAX_STAGES MB_CLAP_MAX_STAGES
#define MAX_DEPTH 64u
#define MAX_WINDOW 32u /* mb_nn_swin: windows of at most 1024 tokens */
#define MAX_MELS 256u

#define ENC "audio_model.audio_encoder."
#define PROJ "audio_projection."
#define ANCHOR ENC "patch_embed.proj.weight"

static const char *const prefixes[] = {"", NULL};

const char *const mb_clap_sizes[] = {"tiny", "clap-htsat-unfused", NULL};

/* in the order of mb_clap_sizes[] */
static const struct mb_clap_dims presets[] = {
	{.embed = 32,
	 .stages = 4,
	 .depths = {2, 2, 2, 2},
	 .heads = {2, 4, 8, 16},
	 .ff = {128, 256, 512, 1024},
	 .window = 8,
	 .patch = 4,
	 .stride = 4,
	 .spec = 256,
	 .mels = 64,
	 .proj = 512,
	 .eps = 1e-5f},
	{.embed = 96,
	 .stages = 4,
	 .depths = {2, 2, 6, 2},
	 .heads = {4, 8, 16, 32},
	 .ff = {384, 768, 1536, 3072},
	 .window = 8,
	 .patch = 4,
	 .stride = 4,
	 .spec = 256,
	 .mels = 64,
	 .proj = 512,
	 .eps = 1e-5f},
};

_Static_assert(sizeof(presets) / sizeof(presets[0]) ==
		       sizeof(mb_clap_sizes) / sizeof(mb_clap_sizes[0]) - 1,
	       "one preset per size name");

static int
clap_preset(const char *size, void *dims)
{
	for (size_t i = 0; mb_clap_sizes[i] != NULL; i++)
		if (strcmp(mb_clap_sizes[i], size) == 0) {
			*(struct mb_clap_dims *)dims = presets[i];
			return 0;
		}
	return -ENOENT;
}

/* ---- sizes from a checkpoint ---- */

static void
fmt_shape(const struct mb_weights_tensor *t, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "[");

	for (uint32_t i = 0; i < t->ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "",
					t->shape[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

static void
fmt_list(const uint32_t *v, uint32_t n, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "[");

	for (uint32_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u", i ? ", " : "", v[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

/* The tensor @p name (full), or NULL with "<ckpt>: tensor '...' is missing (why)". */
static const struct mb_weights_tensor *
need(const struct mb_ckpt *ck, const char *name, const char **file, const char *why, char *reason,
     size_t reason_len)
{
	const struct mb_weights_tensor *t = mb_ckpt_find(ck, name, file);

	if (t == NULL)
		snprintf(reason, reason_len, "%s: tensor '%s' is missing (%s)", mb_ckpt_path(ck),
			 name, why);
	return t;
}

/*
 * config.json as clap reads it: a ClapModel's (its audio_config, and projection_dim at the
 * top) or a ClapAudioModelWithProjection's (a ClapAudioConfig: everything at the top).
 */
struct clap_config {
	json_t *root;	  /* NULL: none */
	json_t *audio;	  /* where the audio keys are (NULL: a ClapModel's without audio_config) */
	json_t *proj;	  /* where projection_dim and projection_hidden_act are */
	const char *apfx; /* "audio_config." or "": for messages */
	char path[4096];
};

/* The config.json mb_ckpt_open() read beside @p ck (or would have). */
static void
config_path(const struct mb_ckpt *ck, char *buf, size_t len)
{
	const char *p = mb_ckpt_path(ck), *slash;
	size_t n = strlen(p);
	struct stat st;

	while (n > 1 && p[n - 1] == '/')
		n--;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(buf, len, "%.*s/config.json", (int)n, p);
		return;
	}
	slash = strrchr(p, '/');
	if (slash == NULL)
		snprintf(buf, len, "config.json");
	else
		snprintf(buf, len, "%.*s/config.json", (int)(slash - p), p);
}

static int
config_open(const struct mb_ckpt *ck, struct clap_config *c, char *reason, size_t reason_len)
{
	json_error_t jerr;
	json_t *type, *audio;

	memset(c, 0, sizeof(*c));
	c->apfx = "";
	config_path(ck, c->path, sizeof(c->path));
	if (!mb_ckpt_has_config(ck))
		return 0;
	c->root = json_load_file(c->path, 0, &jerr);
	if (c->root == NULL || !json_is_object(c->root)) {
		snprintf(reason, reason_len, "%s: %s", c->path,
			 c->root == NULL ? jerr.text : "not a JSON object");
		json_decref(c->root);
		c->root = NULL;
		return -EINVAL;
	}
	type = json_object_get(c->root, "model_type");
	audio = json_object_get(c->root, "audio_config");
	if (audio != NULL ||
	    (json_is_string(type) && strcmp(json_string_value(type), "clap") == 0)) {
		if (audio != NULL && !json_is_object(audio)) {
			snprintf(reason, reason_len, "%s: audio_config is not an object", c->path);
			return -EINVAL;
		}
		c->audio = audio; /* ClapConfig: projection_dim at the top wins over audio's */
		c->proj = c->root;
		c->apfx = "audio_config.";
	} else {
		c->audio = c->root;
		c->proj = c->root;
	}
	return 0;
}

static void
config_close(struct clap_config *c)
{
	json_decref(c->root);
	c->root = NULL;
}

/* @p key of @p obj: 0 and *@p out, -ENOENT, or -EINVAL when it is not an integer. */
static int
cfg_int(const struct clap_config *c, json_t *obj, const char *pfx, const char *key, int64_t *out,
	char *reason, size_t reason_len)
{
	json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

	if (v == NULL)
		return -ENOENT;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	    fabs(json_real_value(v)) < 1e15) {
		*out = (int64_t)json_real_value(v);
		return 0;
	}
	snprintf(reason, reason_len, "%s: %s%s is not an integer", c->path, pfx, key);
	return -EINVAL;
}

/* @p key: a list of integers, or one integer (@p n_out 1). 0, -ENOENT or -EINVAL. */
static int
cfg_list(const struct clap_config *c, const char *key, int64_t *out, uint32_t max, uint32_t *n_out,
	 char *reason, size_t reason_len)
{
	json_t *v = c->audio != NULL ? json_object_get(c->audio, key) : NULL;
	size_t i;
	json_t *e;

	if (v == NULL)
		return -ENOENT;
	if (json_is_integer(v)) {
		out[0] = json_integer_value(v);
		*n_out = 1;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
		goto bad; /* empty: its callers read out[0] */
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e))
			goto bad;
		out[i] = json_integer_value(e);
	}
	*n_out = (uint32_t)json_array_size(v);
	return 0;
bad:
	snprintf(reason, reason_len, "%s: %s%s is not an integer or a list of 1 to %u integers",
		 c->path, c->apfx, key, max);
	return -EINVAL;
}

/* A string @p key of @p obj, when present, must be @p want. */
static int
cfg_expect_str(const struct clap_config *c, json_t *obj, const char *pfx, const char *key,
	       const char *want, const char *why, char *reason, size_t reason_len)
{
	json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
		snprintf(reason, reason_len, "%s: %s%s is %s%s%s, expected \"%s\" (%s)", c->path,
			 pfx, key, json_is_string(v) ? "\"" : "",
			 json_is_string(v) ? json_string_value(v) : "not a string",
			 json_is_string(v) ? "\"" : "", want, why);
		return -EINVAL;
	}
	return 0;
}

/* A boolean @p key of audio_config, when present, must be @p want. */
static int
cfg_expect_bool(const struct clap_config *c, const char *key, int want, const char *why,
		char *reason, size_t reason_len)
{
	json_t *v = c->audio != NULL ? json_object_get(c->audio, key) : NULL;

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v) || json_is_true(v) != want) {
		snprintf(reason, reason_len, "%s: %s%s is %s, expected %s (%s)", c->path, c->apfx,
			 key,
			 json_is_boolean(v) ? (json_is_true(v) ? "true" : "false")
					    : "not a boolean",
			 want ? "true" : "false", why);
		return -EINVAL;
	}
	return 0;
}

/* An integer @p key of audio_config, when present, must be @p found (@p what: whence). */
static int
cfg_agrees(const struct clap_config *c, const char *key, uint32_t found, const char *what,
	   char *reason, size_t reason_len)
{
	int64_t v;
	int rc = cfg_int(c, c->audio, c->apfx, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v != (int64_t)found) {
		snprintf(reason, reason_len, "%s: %s%s is %" PRId64 ", but %s says %u", c->path,
			 c->apfx, key, v, what, found);
		return -EINVAL;
	}
	return 0;
}

/* A list @p key of audio_config, when present, must be @p found[0..n). */
static int
cfg_list_agrees(const struct clap_config *c, const char *key, const uint32_t *found, uint32_t n,
		const char *what, char *reason, size_t reason_len)
{
	int64_t v[MAX_STAGES + 1];
	uint32_t got, same;
	char want[128], have[128];
	int rc = cfg_list(c, key, v, MAX_STAGES + 1, &got, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	same = got == n;
	for (uint32_t i = 0; same && i < n; i++)
		same = v[i] == (int64_t)found[i];
	if (!same) {
		size_t off = (size_t)snprintf(have, sizeof(have), "[");

		for (uint32_t i = 0; i < got && off < sizeof(have); i++)
			off += (size_t)snprintf(have + off, sizeof(have) - off, "%s%" PRId64,
						i ? ", " : "", v[i]);
		if (off < sizeof(have))
			snprintf(have + off, sizeof(have) - off, "]");
		fmt_list(found, n, want, sizeof(want));
		snprintf(reason, reason_len, "%s: %s%s is %s, but %s says %s", c->path, c->apfx,
			 key, have, what, want);
		return -EINVAL;
	}
	return 0;
}

/*
 * "<prefix>layers.<s>.blocks.<b>." over every tensor: stages = highest s + 1, depths[s] =
 * highest b + 1 of stage s. 0, or -EINVAL with a reason.
 */
static int
count_blocks(const struct mb_ckpt *ck, struct mb_clap_dims *D, char *reason, size_t reason_len)
{
	const size_t plen = strlen(ENC "layers.");

	D->stages = 0;
	memset(D->depths, 0, sizeof(D->depths));
	for (uint32_t i = 0; i < mb_ckpt_count(ck); i++) {
		const char *name = mb_ckpt_at(ck, i, NULL)->name;
		unsigned long s, b;
		char *end;

		if (strncmp(name, ENC "layers.", plen) != 0 || name[plen] < '0' || name[plen] > '9')
			continue;
		s = strtoul(name + plen, &end, 10);
		if (*end != '.' || s >= MAX_STAGES) {
			if (*end == '.')
				goto too_many;
			continue;
		}
		if (s + 1 > D->stages)
			D->stages = (uint32_t)s + 1;
		if (strncmp(end, ".blocks.", 8) != 0 || end[8] < '0' || end[8] > '9')
			continue;
		b = strtoul(end + 8, &end, 10);
		if (*end != '.')
			continue;
		if (b >= MAX_DEPTH) {
			snprintf(reason, reason_len,
				 "%s: tensor '%s': more than %u blocks in a stage is not supported",
				 mb_ckpt_path(ck), name, MAX_DEPTH);
			return -EINVAL;
		}
		if (b + 1 > D->depths[s])
			D->depths[s] = (uint32_t)b + 1;
	}
	if (D->stages == 0) {
		snprintf(reason, reason_len,
			 "%s: no tensor '" ENC "layers.0.blocks.0.*': a CLAP audio encoder has at "
			 "least one stage",
			 mb_ckpt_path(ck));
		return -EINVAL;
	}
	for (uint32_t s = 0; s < D->stages; s++)
		if (D->depths[s] == 0) {
			snprintf(reason, reason_len,
				 "%s: no tensor '" ENC
				 "layers.%u.blocks.0.*' (stage %u of %u has no "
				 "blocks)",
				 mb_ckpt_path(ck), s, s, D->stages);
			return -EINVAL;
		}
	return 0;
too_many:
	snprintf(reason, reason_len,
		 "%s: more than %u stages ('" ENC "layers.<s>.*') is not "
		 "supported",
		 mb_ckpt_path(ck), MAX_STAGES);
	return -EINVAL;
}

/*
 * The geometry HF's ClapAudioEncoder runs without padding, and that this file supports.
 * 0, or -EINVAL with a reason (@p whence: where the sizes came from).
 */
static int
check_geometry(const struct mb_clap_dims *D, const char *whence, char *reason, size_t reason_len)
{
	uint32_t grid, ratio;

	if (D->mels < 1 || D->mels > MAX_MELS || D->spec < D->mels || D->spec % D->mels != 0 ||
	    D->spec > 4096) {
		snprintf(
			reason, reason_len,
			"%s: spec_size %u and num_mel_bins %u: spec_size must be a multiple of the "
			"mel bins (<= %u), at most 4096",
			whence, D->spec, D->mels, MAX_MELS);
		return -EINVAL;
	}
	ratio = D->spec / D->mels;
	if ((uint64_t)D->spec * ratio < FRAMES) {
		snprintf(reason, reason_len,
			 "%s: spec_size %u x freq_ratio %u = %u frames, fewer than the %u of 10 s "
			 "(HF refuses such a model)",
			 whence, D->spec, ratio, D->spec * ratio, FRAMES);
		return -EINVAL;
	}
	if (D->stride < 1 || D->patch < D->stride || (D->patch - D->stride) % 2 != 0 ||
	    D->spec % D->stride != 0 || D->patch > 64) {
		snprintf(reason, reason_len,
			 "%s: patch_size %u, patch_stride %u, spec_size %u: expected patch_size >= "
			 "patch_stride (<= 64, an even difference) and spec_size a multiple of "
			 "patch_stride",
			 whence, D->patch, D->stride, D->spec);
		return -EINVAL;
	}
	grid = mb_clap_grid_of(D);
	if (D->window < 1 || D->window > MAX_WINDOW) {
		snprintf(reason, reason_len, "%s: window_size %u, expected 1..%u", whence,
			 D->window, MAX_WINDOW);
		return -EINVAL;
	}
	for (uint32_t s = 0; s < D->stages; s++) {
		uint32_t res = grid >> s, d = mb_clap_dim_of(D, s);

		if ((res << s) != grid || res < D->window || res % D->window != 0) {
			snprintf(
				reason, reason_len,
				"%s: stage %u works on %u x %u tokens (spec_size %u / patch_stride "
				"%u / 2^%u), not a whole number of %u x %u windows: padded windows "
				"are not supported",
				whence, s, res, res, D->spec, D->stride, s, D->window, D->window);
			return -EINVAL;
		}
		if (D->heads[s] < 1 || d % D->heads[s] != 0 || D->ff[s] < 1) {
			snprintf(reason, reason_len,
				 "%s: stage %u: %u heads for a width of %u (heads must divide it)",
				 whence, s, D->heads[s], d);
			return -EINVAL;
		}
	}
	if (((grid >> (D->stages - 1)) % ratio) != 0) {
		snprintf(reason, reason_len,
			 "%s: the last stage's %u x %u tokens do not split into freq_ratio %u "
			 "(HF's pooling reshape needs it)",
			 whence, grid >> (D->stages - 1), grid >> (D->stages - 1), ratio);
		return -EINVAL;
	}
	if (D->proj < 1 || D->proj > 65535) {
		snprintf(reason, reason_len, "%s: projection_dim %u, expected 1..65535", whence,
			 D->proj);
		return -EINVAL;
	}
	return 0;
}

/* The tensors' sizes (before config.json). */
static int
dims_from_tensors(const struct mb_ckpt *ck, struct mb_clap_dims *D, char *reason, size_t reason_len)
{
	const struct mb_weights_tensor *t;
	const char *file;
	char name[256], shape[96];
	int rc;

	t = need(ck, ANCHOR, &file, "clap reads patch_embeds_hidden_size and patch_size from it",
		 reason, reason_len);
	if (t == NULL)
		return -EINVAL;
	fmt_shape(t, shape, sizeof(shape));
	if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 4096 || t->shape[2] != t->shape[3] ||
	    t->shape[2] < 1 || t->shape[2] > 64) {
		snprintf(reason, reason_len,
			 "%s: tensor '" ANCHOR
			 "': shape %s, expected [patch_embeds_hidden_size, 1, "
			 "patch_size, patch_size] (<= 4096, patch_size <= 64)",
			 file, shape);
		return -EINVAL;
	}
	if (t->shape[1] != 1) {
		snprintf(reason, reason_len,
			 "%s: tensor '" ANCHOR "': shape %s: %" PRId64
			 " input channels, expected 1 (the fused CLAP, enable_fusion with "
			 "fusion_type channel_map, is not supported)",
			 file, shape, t->shape[1]);
		return -EINVAL;
	}
	D->embed = (uint32_t)t->shape[0];
	D->patch = (uint32_t)t->shape[2];
	if (mb_ckpt_find(ck, ENC "patch_embed.mel_conv2d.weight", &file) != NULL) {
		snprintf(reason, reason_len,
			 "%s: tensor '" ENC
			 "patch_embed.mel_conv2d.weight': a fused CLAP checkpoint "
			 "(laion/clap-htsat-fused); clap runs the unfused model only",
			 file);
		return -EINVAL;
	}

	t = need(ck, ENC "batch_norm.weight", &file, "clap reads num_mel_bins from it", reason,
		 reason_len);
	if (t == NULL)
		return -EINVAL;
	if (t->ndim != 1 || t->shape[0] < 1 || t->shape[0] > MAX_MELS) {
		fmt_shape(t, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '" ENC "batch_norm.weight': shape %s, expected [num_mel_bins] "
			 "(1..%u)",
			 file, shape, MAX_MELS);
		return -EINVAL;
	}
	D->mels = (uint32_t)t->shape[0];

	if ((rc = count_blocks(ck, D, reason, reason_len)) < 0)
		return rc;
	for (uint32_t s = 0; s < D->stages; s++) {
		uint32_t d = mb_clap_dim_of(D, s);

		snprintf(name, sizeof(name),
			 ENC "layers.%u.blocks.0.attention.self.relative_position_bias_table", s);
		t = need(ck, name, &file, "clap reads the heads and window_size from it", reason,
			 reason_len);
		if (t == NULL)
			return -EINVAL;
		fmt_shape(t, shape, sizeof(shape));
		if (t->ndim != 2 || t->shape[1] < 1 || t->shape[1] > d || t->shape[0] < 1) {
			snprintf(reason, reason_len,
				 "%s: tensor '%s': shape %s, expected [(2 window_size - 1)^2, "
				 "heads] "
				 "(heads <= %u, the stage's width)",
				 file, name, shape, d);
			return -EINVAL;
		}
		D->heads[s] = (uint32_t)t->shape[1];
		if (s == 0) {
			int64_t side = (int64_t)llround(sqrt((double)t->shape[0]));

			if (side * side != t->shape[0] || side % 2 == 0) {
				snprintf(reason, reason_len,
					 "%s: tensor '%s': shape %s: %" PRId64
					 " rows is not (2 window_size - 1)^2",
					 file, name, shape, t->shape[0]);
				return -EINVAL;
			}
			D->window = (uint32_t)(side + 1) / 2;
		}
		snprintf(name, sizeof(name), ENC "layers.%u.blocks.0.intermediate.dense.weight", s);
		t = need(ck, name, &file, "clap reads the MLP width (mlp_ratio) from it", reason,
			 reason_len);
		if (t == NULL)
			return -EINVAL;
		if (t->ndim != 2 || t->shape[1] != d || t->shape[0] < 1 || t->shape[0] > 65536) {
			fmt_shape(t, shape, sizeof(shape));
			snprintf(reason, reason_len,
				 "%s: tensor '%s': shape %s, expected [mlp_ratio x %u, %u] (stage "
				 "%u's "
				 "width %u = patch_embeds_hidden_size %u x 2^%u)",
				 file, name, shape, d, d, s, d, D->embed, s);
			return -EINVAL;
		}
		D->ff[s] = (uint32_t)t->shape[0];
	}

	t = need(ck, PROJ "linear1.weight", &file, "clap reads projection_dim from it", reason,
		 reason_len);
	if (t == NULL)
		return -EINVAL;
	if (t->ndim != 2 || t->shape[1] != mb_clap_hidden_of(D) || t->shape[0] < 1 ||
	    t->shape[0] > 65535) {
		fmt_shape(t, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '" PROJ "linear1.weight': shape %s, expected [projection_dim, "
			 "%u] (hidden_size %u = patch_embeds_hidden_size %u x 2^%u; "
			 "projection_dim <= 65535)",
			 file, shape, mb_clap_hidden_of(D), mb_clap_hidden_of(D), D->embed,
			 D->stages - 1);
		return -EINVAL;
	}
	D->proj = (uint32_t)t->shape[0];
	return 0;
}

/* What config.json gives (spec_size, patch_stride, eps) and what it must agree with. */
static int
dims_from_config(const struct mb_ckpt *ck, const struct clap_config *c, struct mb_clap_dims *D,
		 char *reason, size_t reason_len)
{
	char what[512];
	int64_t v[MAX_STAGES + 1];
	uint32_t n, hidden = mb_clap_hidden_of(D);
	json_t *eps, *ratio;
	int rc;

	D->spec = 256;
	D->stride = 4;
	D->eps = 1e-5f;
	if (c->root == NULL)
		return 0;
	if ((rc = cfg_int(c, c->audio, c->apfx, "spec_size", &v[0], reason, reason_len)) == 0) {
		if (v[0] < 1 || v[0] > 4096) {
			snprintf(reason, reason_len,
				 "%s: %sspec_size is %" PRId64 ", expected 1..4096", c->path,
				 c->apfx, v[0]);
			return -EINVAL;
		}
		D->spec = (uint32_t)v[0];
	} else if (rc != -ENOENT) {
		return rc;
	}
	if ((rc = cfg_list(c, "patch_stride", v, 2, &n, reason, reason_len)) == 0) {
		if ((n == 2 && v[0] != v[1]) || v[0] < 1 || v[0] > 64) {
			snprintf(reason, reason_len,
				 "%s: %spatch_stride is not a square stride of 1..64 (e.g. [4, 4])",
				 c->path, c->apfx);
			return -EINVAL;
		}
		D->stride = (uint32_t)v[0];
	} else if (rc != -ENOENT) {
		return rc;
	}
	eps = c->audio != NULL ? json_object_get(c->audio, "layer_norm_eps") : NULL;
	if (eps != NULL) {
		double e = json_number_value(eps);

		if (!json_is_number(eps) || !(e > 0 && e < 1)) {
			snprintf(reason, reason_len,
				 "%s: %slayer_norm_eps is not a number in (0, 1)", c->path,
				 c->apfx);
			return -EINVAL;
		}
		D->eps = (float)e;
	}

	/* what is not supported */
	if ((rc = cfg_expect_bool(c, "enable_fusion", 0,
				  "the fused CLAP (laion/clap-htsat-fused) is not supported",
				  reason, reason_len)) < 0 ||
	    (rc = cfg_expect_bool(c, "enable_patch_layer_norm", 1,
				  "clap runs the published architecture, with patch_embed.norm",
				  reason, reason_len)) < 0 ||
	    (rc = cfg_expect_bool(c, "flatten_patch_embeds", 1,
				  "clap runs the published architecture", reason, reason_len)) <
		    0 ||
	    (rc = cfg_expect_bool(c, "qkv_bias", 1, "clap reads the q, k and v biases", reason,
				  reason_len)) < 0 ||
	    (rc = cfg_expect_str(c, c->audio, c->apfx, "hidden_act", "gelu",
				 "the exact, erf GELU: the only activation clap has", reason,
				 reason_len)) < 0 ||
	    (rc = cfg_expect_str(c, c->proj, c->proj == c->audio ? c->apfx : "",
				 "projection_hidden_act", "relu",
				 "the projection's activation in clap", reason, reason_len)) < 0)
		return rc;
	if ((rc = cfg_int(c, c->audio, c->apfx, "patch_embed_input_channels", &v[0], reason,
			  reason_len)) == 0 &&
	    v[0] != 1) {
		snprintf(reason, reason_len,
			 "%s: %spatch_embed_input_channels is %" PRId64 ", expected 1", c->path,
			 c->apfx, v[0]);
		return -EINVAL;
	} else if (rc < 0 && rc != -ENOENT) {
		return rc;
	}

	/* what config.json says too must agree with the tensors */
	snprintf(what, sizeof(what), "tensor '" ANCHOR "' in %s", mb_ckpt_path(ck));
	if ((rc = cfg_agrees(c, "patch_embeds_hidden_size", D->embed, what, reason, reason_len)) <
	    0)
		return rc;
	if ((rc = cfg_list(c, "patch_size", v, 2, &n, reason, reason_len)) == 0 &&
	    (v[0] != (int64_t)D->patch || (n == 2 && v[1] != v[0]))) {
		snprintf(reason, reason_len,
			 "%s: %spatch_size is not %u (or [%u, %u]), but %s has %u x %u patches",
			 c->path, c->apfx, D->patch, D->patch, D->patch, what, D->patch, D->patch);
		return -EINVAL;
	} else if (rc < 0 && rc != -ENOENT) {
		return rc;
	}
	snprintf(what, sizeof(what), "tensor '" ENC "batch_norm.weight' in %s", mb_ckpt_path(ck));
	if ((rc = cfg_agrees(c, "num_mel_bins", D->mels, what, reason, reason_len)) < 0)
		return rc;
	snprintf(what, sizeof(what), "the checkpoint %s (tensors '" ENC "layers.<s>.blocks.<b>.*')",
		 mb_ckpt_path(ck));
	if ((rc = cfg_list_agrees(c, "depths", D->depths, D->stages, what, reason, reason_len)) < 0)
		return rc;
	snprintf(what, sizeof(what),
		 "the checkpoint %s (tensors '" ENC
		 "layers.<s>.blocks.0.attention.self.relative_position_bias_table' [(2 "
		 "window_size - 1)^2, heads])",
		 mb_ckpt_path(ck));
	if ((rc = cfg_list_agrees(c, "num_attention_heads", D->heads, D->stages, what, reason,
				  reason_len)) < 0 ||
	    (rc = cfg_agrees(c, "window_size", D->window, what, reason, reason_len)) < 0)
		return rc;
	snprintf(what, sizeof(what),
		 "the checkpoint %s (patch_embeds_hidden_size %u x 2^%u, tensor '" ENC
		 "norm.weight')",
		 mb_ckpt_path(ck), D->embed, D->stages - 1);
	if ((rc = cfg_agrees(c, "hidden_size", hidden, what, reason, reason_len)) < 0)
		return rc;
	/* the projection: ClapConfig sets audio_config.projection_dim from its own */
	if ((rc = cfg_int(c, c->proj, c->proj == c->audio ? c->apfx : "", "projection_dim", &v[0],
			  reason, reason_len)) == 0 &&
	    v[0] != (int64_t)D->proj) {
		snprintf(reason, reason_len,
			 "%s: projection_dim is %" PRId64 ", but tensor '" PROJ
			 "linear1.weight' in %s says %u",
			 c->path, v[0], mb_ckpt_path(ck), D->proj);
		return -EINVAL;
	} else if (rc < 0 && rc != -ENOENT) {
		return rc;
	}
	/* mlp_ratio: int(mlp_ratio x width) per stage */
	ratio = c->audio != NULL ? json_object_get(c->audio, "mlp_ratio") : NULL;
	if (ratio != NULL) {
		double r = json_number_value(ratio);

		for (uint32_t s = 0; s < D->stages; s++)
			if (!json_is_number(ratio) ||
			    (uint32_t)(r * mb_clap_dim_of(D, s)) != D->ff[s]) {
				snprintf(reason, reason_len,
					 "%s: %smlp_ratio is %g, but tensor '" ENC
					 "layers.%u.blocks.0.intermediate.dense.weight' in %s has "
					 "%u = %g x %u",
					 c->path, c->apfx, r, s, mb_ckpt_path(ck), D->ff[s],
					 (double)D->ff[s] / mb_clap_dim_of(D, s),
					 mb_clap_dim_of(D, s));
				return -EINVAL;
			}
	}
	return 0;
}

/*
 * preprocessor_config.json (ClapFeatureExtractor's settings), when there, must be what
 * clap.c's front end computes: 48 kHz, the 1024-point STFT with hop 480, the checkpoint's mel
 * bins over 50-14000 Hz, 10 s, a shorter clip repeated ("repeatpad"). Its truncation of a
 * longer clip (one random 10 s crop, "rand_trunc") is not checked: mediabatch runs such a
 * clip as windows and averages them (README, "Long media").
 */
static int
preprocessor(const struct mb_ckpt *ck, const struct mb_clap_dims *D, char *reason,
	     size_t reason_len)
{
	const struct mb_net_layout *l = &mb_clap_layout;
	int rc;

	if ((rc = mb_net_pre_number(l, ck, "feature_size", D->mels, reason, reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "sampling_rate", MB_CLAP_SAMPLE_RATE, reason,
				    reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "fft_window_size", MB_CLAP_N_FFT, reason, reason_len)) <
		    0 ||
	    (rc = mb_net_pre_number(l, ck, "hop_length", MB_CLAP_HOP, reason, reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "frequency_min", MB_CLAP_F_MIN, reason, reason_len)) <
		    0 ||
	    (rc = mb_net_pre_number(l, ck, "frequency_max", MB_CLAP_F_MAX, reason, reason_len)) <
		    0 ||
	    (rc = mb_net_pre_number(l, ck, "max_length_s", MB_CLAP_MAX_SECONDS, reason,
				    reason_len)) < 0)
		return rc;
	return mb_net_pre_string(l, ck, "padding", "repeatpad", reason, reason_len);
}

static int
clap_dims_from(const struct mb_ckpt *ck, const char *prefix, void *dims_out, char *reason,
	       size_t reason_len)
{
	struct mb_clap_dims *D = dims_out;
	struct clap_config c;
	char whence[4200];
	int rc;

	(void)prefix; /* "": the names are the same in every layout clap reads */
	memset(D, 0, sizeof(*D));
	if ((rc = dims_from_tensors(ck, D, reason, reason_len)) < 0)
		return rc;
	if ((rc = config_open(ck, &c, reason, reason_len)) == 0)
		rc = dims_from_config(ck, &c, D, reason, reason_len);
	snprintf(whence, sizeof(whence), "%s", c.root != NULL ? c.path : mb_ckpt_path(ck));
	config_close(&c);
	if (rc < 0 || (rc = preprocessor(ck, D, reason, reason_len)) < 0)
		return rc;
	return check_geometry(D, whence, reason, reason_len);
}

/* ---- tensors and config.json ---- */

#define SPEC(s, init, ...)                                                                         \
	do {                                                                                       \
		if (mb_net_spec(s, init, __VA_ARGS__) < 0)                                         \
			return -ENOMEM;                                                            \
	} while (0)

/* The order of the tensors here is the order clap_init() (clap.c) reads them in. */
static int
clap_specs(const void *dims, struct mb_net_specs *s)
{
	const struct mb_clap_dims *D = dims;
	const int ones = MB_WEIGHTS_INIT_ONES, def = MB_WEIGHTS_INIT_DEFAULT;
	const int64_t e = D->embed, m = D->mels, p = D->proj, w = D->window;

	SPEC(s, def, 4, e, (int64_t)1, (int64_t)D->patch, (int64_t)D->patch,
	     ENC "patch_embed.proj.weight");
	SPEC(s, def, 1, e, ENC "patch_embed.proj.bias");
	SPEC(s, ones, 1, e, ENC "patch_embed.norm.weight");
	SPEC(s, def, 1, e, ENC "patch_embed.norm.bias");
	SPEC(s, ones, 1, m, ENC "batch_norm.weight");
	SPEC(s, def, 1, m, ENC "batch_norm.bias");
	SPEC(s, def, 1, m, ENC "batch_norm.running_mean");
	SPEC(s, ones, 1, m, ENC "batch_norm.running_var");
	for (uint32_t st = 0; st < D->stages; st++) {
		const int64_t d = mb_clap_dim_of(D, st), ff = D->ff[st], h = D->heads[st];

		for (uint32_t b = 0; b < D->depths[st]; b++) {
			/* in clap.c's B_* order */
#define BLK ENC "layers.%u.blocks.%u."
			SPEC(s, ones, 1, d, BLK "layernorm_before.weight", st, b);
			SPEC(s, def, 1, d, BLK "layernorm_before.bias", st, b);
			SPEC(s, def, 2, (2 * w - 1) * (2 * w - 1), h,
			     BLK "attention.self.relative_position_bias_table", st, b);
			SPEC(s, def, 2, d, d, BLK "attention.self.query.weight", st, b);
			SPEC(s, def, 1, d, BLK "attention.self.query.bias", st, b);
			SPEC(s, def, 2, d, d, BLK "attention.self.key.weight", st, b);
			SPEC(s, def, 1, d, BLK "attention.self.key.bias", st, b);
			SPEC(s, def, 2, d, d, BLK "attention.self.value.weight", st, b);
			SPEC(s, def, 1, d, BLK "attention.self.value.bias", st, b);
			SPEC(s, def, 2, d, d, BLK "attention.output.dense.weight", st, b);
			SPEC(s, def, 1, d, BLK "attention.output.dense.bias", st, b);
			SPEC(s, ones, 1, d, BLK "layernorm_after.weight", st, b);
			SPEC(s, def, 1, d, BLK "layernorm_after.bias", st, b);
			SPEC(s, def, 2, ff, d, BLK "intermediate.dense.weight", st, b);
			SPEC(s, def, 1, ff, BLK "intermediate.dense.bias", st, b);
			SPEC(s, def, 2, d, ff, BLK "output.dense.weight", st, b);
			SPEC(s, def, 1, d, BLK "output.dense.bias", st, b);
#undef BLK
		}
		if (st + 1 < D->stages) { /* in clap.c's M_* order */
			SPEC(s, def, 2, 2 * d, 4 * d, ENC "layers.%u.downsample.reduction.weight",
			     st);
			SPEC(s, ones, 1, 4 * d, ENC "layers.%u.downsample.norm.weight", st);
			SPEC(s, def, 1, 4 * d, ENC "layers.%u.downsample.norm.bias", st);
		}
	}
	/* in clap.c's H_* order */
	SPEC(s, ones, 1, (int64_t)mb_clap_hidden_of(D), ENC "norm.weight");
	SPEC(s, def, 1, (int64_t)mb_clap_hidden_of(D), ENC "norm.bias");
	SPEC(s, def, 2, p, (int64_t)mb_clap_hidden_of(D), PROJ "linear1.weight");
	SPEC(s, def, 1, p, PROJ "linear1.bias");
	SPEC(s, def, 2, p, p, PROJ "linear2.weight");
	SPEC(s, def, 1, p, PROJ "linear2.bias");
	return 0;
}

static int
clap_config_json(const void *dims, char *buf, size_t len)
{
	const struct mb_clap_dims *D = dims;
	char depths[128], heads[128];
	int n;

	fmt_list(D->depths, D->stages, depths, sizeof(depths));
	fmt_list(D->heads, D->stages, heads, sizeof(heads));
	n = snprintf(buf, len,
		     "{\n  \"architectures\": [\"ClapModel\"],\n  \"model_type\": \"clap\",\n"
		     "  \"projection_dim\": %u,\n  \"projection_hidden_act\": \"relu\",\n"
		     "  \"audio_config\": {\n    \"model_type\": \"clap_audio_model\",\n"
		     "    \"depths\": %s,\n    \"num_attention_heads\": %s,\n"
		     "    \"window_size\": %u,\n    \"spec_size\": %u,\n    \"patch_size\": %u,\n"
		     "    \"patch_stride\": [%u, %u],\n    \"num_mel_bins\": %u,\n"
		     "    \"patch_embeds_hidden_size\": %u,\n    \"hidden_size\": %u,\n"
		     "    \"projection_dim\": %u,\n    \"mlp_ratio\": %g,\n"
		     "    \"layer_norm_eps\": %g,\n    \"hidden_act\": \"gelu\",\n"
		     "    \"projection_hidden_act\": \"relu\",\n    \"enable_fusion\": false,\n"
		     "    \"enable_patch_layer_norm\": true,\n    \"flatten_patch_embeds\": true,\n"
		     "    \"qkv_bias\": true\n  }\n}\n",
		     D->proj, depths, heads, D->window, D->spec, D->patch, D->stride, D->stride,
		     D->mels, D->embed, mb_clap_hidden_of(D), D->proj, (double)D->ff[0] / D->embed,
		     (double)D->eps);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
static int
clap_preprocessor_json(const void *dims, char *buf, size_t len)
{
	const struct mb_clap_dims *D = dims;
	int n = snprintf(
		buf, len,
		"{\n  \"feature_extractor_type\": \"ClapFeatureExtractor\",\n"
		"  \"processor_class\": \"ClapProcessor\",\n  \"feature_size\": %u,\n"
		"  \"sampling_rate\": %d,\n  \"fft_window_size\": %u,\n  \"hop_length\": %u,\n"
		"  \"frequency_min\": %g,\n  \"frequency_max\": %g,\n  \"max_length_s\": %d,\n"
		"  \"padding\": \"repeatpad\",\n  \"truncation\": \"rand_trunc\",\n"
		"  \"top_db\": null,\n  \"padding_side\": \"right\",\n  \"padding_value\": 0.0,\n"
		"  \"return_attention_mask\": false\n}\n",
		D->mels, MB_CLAP_SAMPLE_RATE, MB_CLAP_N_FFT, MB_CLAP_HOP, MB_CLAP_F_MIN,
		MB_CLAP_F_MAX, MB_CLAP_MAX_SECONDS);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static void
clap_describe(const void *dims, char *buf, size_t len)
{
	const struct mb_clap_dims *D = dims;
	size_t at = (size_t)snprintf(buf, len, "patch_embeds_hidden_size %u, depths [", D->embed);

	for (uint32_t s = 0; s < D->stages && at < len; s++)
		at += (size_t)snprintf(buf + at, len - at, "%s%u", s ? ", " : "", D->depths[s]);
	for (uint32_t s = 0; s < D->stages && at < len; s++)
		at += (size_t)snprintf(buf + at, len - at, "%s%u", s ? ", " : "], heads [",
				       D->heads[s]);
	if (at < len)
		snprintf(buf + at, len - at, "], window_size %u, %u mel bins, projection_dim %u",
			 D->window, D->mels, D->proj);
}

const struct mb_net_layout mb_clap_layout = {
	.name = "clap",
	.prefixes = prefixes,
	.anchor = ANCHOR,
	.sizes = mb_clap_sizes,
	.dims_size = sizeof(struct mb_clap_dims),
	.preset = clap_preset,
	.dims_from = clap_dims_from,
	.specs = clap_specs,
	.config_json = clap_config_json,
	.preprocessor_json = clap_preprocessor_json,
	.describe = clap_describe,
};
