/*
 * videomae_layout.c: what a VideoMAE video classification checkpoint looks like (the
 * mb_layout library, layout_internal.h): the sizes ("tiny", a small test size that is not a
 * published one, and the published small, base and large), the sizes of a checkpoint read
 * from its tensors and config.json, the tensors of a size under the names
 * VideoMAEForVideoClassification saves, and its config.json (with an id2label of "class
 * <i>").
 *
 * Sizes: d from the patch projection's shape, layers by counting, ffn from
 * intermediate.dense, classes from the classifier, heads from config.json's
 * num_attention_heads, else the published head count for d (small 384/6, base 768/12,
 * large 1024/16, huge 1280/16), else d / 64. config.json's hidden_size, num_hidden_layers
 * and intermediate_size must agree with the tensors; num_frames, image_size, patch_size,
 * tubelet_size and num_channels other than the published fine-tuned checkpoints' are
 * refused for now, as is a hidden_act other than "gelu". The input's normalisation comes from
 * preprocessor_config.json when the checkpoint has one (normalisation()), else ImageNet's.
 *
 * What the classifier computes with them is videomae.c's. Threads: any; nothing here keeps
 * state.
 */
#include "videomae_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layout_internal.h"

#define F MB_VIDEOMAE_IN_FRAMES
#define S MB_VIDEOMAE_IN_SIZE
#define TT MB_VIDEOMAE_IN_TUBELET
#define P MB_VIDEOMAE_IN_PATCH

#define ANCHOR "videomae.embeddings.patch_embeddings.projection.weight"

/* ---- sizes ---- */

const char *const mb_videomae_sizes[] = {
	"tiny", "videomae-small", "videomae-base", "videomae-large", NULL,
};

/* The normalisation VideoMAE was trained with: ImageNet's mean and std, after / 255. */
static void
imagenet(struct mb_videomae_dims *dm)
{
	static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};

	dm->rescale = 1.0 / 255.0;
	memcpy(dm->mean, mean, sizeof(mean));
	memcpy(dm->std, std, sizeof(std));
}

/*
 * preprocessor_config.json's image_mean or image_std (three numbers, or one for every
 * channel) into @p out; absent: @p dflt for each. 0 or -EINVAL with the reason.
 */
static int
channel_values(const struct mb_ckpt *ck, const char *key, double dflt, double out[3], char *reason,
	       size_t reason_len)
{
	double one;
	int rc = mb_ckpt_preprocessor_doubles(ck, key, out, 3, reason, reason_len);

	if (rc == -ENOENT) {
		out[0] = out[1] = out[2] = dflt;
		return 0;
	}
	if (rc == -EINVAL && mb_ckpt_preprocessor_double(ck, key, &one, NULL, 0) == 0) {
		out[0] = out[1] = out[2] = one;
		return 0;
	}
	return rc;
}

/*
 * The input's normalisation (dm->rescale, mean, std). With preprocessor_config.json, what
 * Hugging Face's VideoMAEImageProcessor does with it: v * rescale_factor (1/255 unless
 * do_rescale is false), then (x - image_mean) / image_std unless do_normalize is false, its
 * defaults (0.5) for keys the file lacks. Without it, ImageNet's (what VideoMAE was trained
 * with). 0 or -EINVAL with the reason.
 */
static int
normalisation(const struct mb_ckpt *ck, struct mb_videomae_dims *dm, char *reason,
	      size_t reason_len)
{
	int on = 1, rc;

	imagenet(dm);
	if (!mb_ckpt_has_preprocessor(ck))
		return 0;
	rc = mb_ckpt_preprocessor_bool(ck, "do_rescale", &on, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = mb_ckpt_preprocessor_double(ck, "rescale_factor", &dm->rescale, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (!on)
		dm->rescale = 1.0;
	on = 1;
	rc = mb_ckpt_preprocessor_bool(ck, "do_normalize", &on, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if ((rc = channel_values(ck, "image_mean", 0.5, dm->mean, reason, reason_len)) < 0 ||
	    (rc = channel_values(ck, "image_std", 0.5, dm->std, reason, reason_len)) < 0)
		return rc;
	if (!on)
		for (int c = 0; c < 3; c++) {
			dm->mean[c] = 0.0;
			dm->std[c] = 1.0;
		}
	for (int c = 0; c < 3; c++)
		if (!(isfinite(dm->mean[c]) && isfinite(dm->rescale) && dm->std[c] > 0 &&
		      isfinite(dm->std[c]))) {
			snprintf(reason, reason_len,
				 "%s: preprocessor_config.json: rescale_factor %g, image_mean[%d] "
				 "%g, "
				 "image_std[%d] %g: "
				 "expected finite values and a standard deviation above 0",
				 mb_ckpt_path(ck), dm->rescale, c, dm->mean[c], c, dm->std[c]);
			return -EINVAL;
		}
	return 0;
}

static int
preset(const char *size, void *out)
{
	static const struct {
		const char *name;
		struct mb_videomae_dims d;
	} presets[] = {
		{"tiny", {128, 2, 2, 512, 400, 1e-12}},
		{"videomae-small", {384, 12, 6, 1536, 400, 1e-12}},
		{"videomae-base", {768, 12, 12, 3072, 400, 1e-12}},
		{"videomae-large", {1024, 24, 16, 4096, 400, 1e-12}},
	};

	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(size, presets[i].name) == 0) {
			*(struct mb_videomae_dims *)out = presets[i].d;
			imagenet(out);
			return 0;
		}
	return -ENOENT;
}

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

/* The tensor @p prefix + name, or NULL with "<ckpt>: tensor '...' is missing" + why. */
static const struct mb_weights_tensor *
need(const struct mb_ckpt *ck, const char *prefix, const char *name, const char **file,
     const char *why, char *reason, size_t reason_len)
{
	char full[256];
	const struct mb_weights_tensor *t;

	snprintf(full, sizeof(full), "%s%s", prefix, name);
	t = mb_ckpt_find(ck, full, file);
	if (t == NULL)
		snprintf(reason, reason_len, "%s: tensor '%s' is missing (%s)", mb_ckpt_path(ck),
			 full, why);
	return t;
}

/* config.json's integer @p key must be @p want when present. */
static int
config_expect(const struct mb_ckpt *ck, const char *key, int64_t want, const char *what,
	      char *reason, size_t reason_len)
{
	char path[4096];
	int64_t v;
	int rc = mb_ckpt_config_int(ck, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v != want) {
		config_path(ck, path, sizeof(path));
		snprintf(reason, reason_len, "%s: %s %" PRId64 ", expected %" PRId64 " (%s)", path,
			 key, v, want, what);
		return -EINVAL;
	}
	return 0;
}

/* config.json's @p key, when present, must agree with @p found (from a tensor's shape). */
static int
config_agrees(const struct mb_ckpt *ck, const char *key, uint32_t found, const char *tensor,
	      const struct mb_weights_tensor *t, char *reason, size_t reason_len)
{
	char path[4096], shape[96];
	int64_t v;
	int rc = mb_ckpt_config_int(ck, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v != (int64_t)found) {
		config_path(ck, path, sizeof(path));
		if (t != NULL)
			fmt_shape(t, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: %s %" PRId64
			 ", but the checkpoint's tensors have %u (tensor '%s'%s%s)",
			 path, key, v, found, tensor, t != NULL ? " " : "", t != NULL ? shape : "");
		return -EINVAL;
	}
	return 0;
}

/* Heads for @p d without config.json: the published checkpoints', else d / 64, else 0. */
static uint32_t
heads_for(uint32_t d)
{
	switch (d) {
	case 384:
		return 6;
	case 768:
		return 12;
	case 1024:
	case 1280: /* huge: head_dim 80 */
		return 16;
	default:
		return d % 64 == 0 ? d / 64 : 0;
	}
}

/*
 * The head videomae runs is the mean-pooling one (use_mean_pooling true, HF's default, and
 * every published fine-tuned checkpoint): the mean of the encoder's tokens, fc_norm, the
 * classifier. A checkpoint made with use_mean_pooling false (the encoder's final layernorm,
 * then the first token) is refused as such, not as a missing fc_norm.
 */
static int
mean_pooling(const struct mb_ckpt *ck, const char *prefix, char *reason, size_t reason_len)
{
	static const char only[] = "videomae serves the mean-pooling head of the published "
				   "fine-tuned checkpoints (the tokens' mean, fc_norm, the "
				   "classifier) for now";
	char path[4096], name[256];
	int on = 1;
	int rc = mb_ckpt_config_bool(ck, "use_mean_pooling", &on, reason, reason_len);

	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == 0 && !on) {
		config_path(ck, path, sizeof(path));
		snprintf(reason, reason_len,
			 "%s: use_mean_pooling false (the first token after the encoder's final "
			 "layernorm) is not supported: %s",
			 path, only);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%sfc_norm.weight", prefix);
	if (mb_ckpt_find(ck, name, NULL) != NULL)
		return 0;
	snprintf(name, sizeof(name), "%svideomae.layernorm.weight", prefix);
	if (mb_ckpt_find(ck, name, NULL) != NULL) {
		snprintf(reason, reason_len,
			 "%s: tensor '%s' and no '%sfc_norm.weight': a checkpoint made with "
			 "use_mean_pooling false (the first token after the encoder's final "
			 "layernorm), which is not supported: %s",
			 mb_ckpt_path(ck), name, prefix, only);
		return -EINVAL;
	}
	return 0; /* fc_norm missing: the bind says so */
}

static int
dims_from(const struct mb_ckpt *ck, const char *prefix, void *out, char *reason, size_t reason_len)
{
	static const char what[] = "videomae takes the published fine-tuned checkpoints' input "
				   "for now: num_frames 16, image_size 224, patch_size 16, "
				   "tubelet_size 2, num_channels 3";
	struct mb_videomae_dims *dm = out;
	const struct mb_weights_tensor *t, *fc1, *cls;
	const char *file, *act;
	char name[256], shape[96], path[4096];
	size_t nlen;
	int64_t v;
	double eps;
	int rc;

	memset(dm, 0, sizeof(*dm));
	/* d, and the tubelet the projection was trained for */
	t = need(ck, prefix, ANCHOR, &file, "videomae reads d from its shape", reason, reason_len);
	if (t == NULL)
		return -EINVAL;
	if (t->ndim != 5 || t->shape[0] < 1 || t->shape[0] > 16384 || t->shape[1] != 3 ||
	    t->shape[2] != TT || t->shape[3] != P || t->shape[4] != P) {
		fmt_shape(t, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '%s%s': shape %s, expected [d, 3, %d, %d, %d] (d <= 16384; "
			 "%s)",
			 file, prefix, ANCHOR, shape, TT, P, P, what);
		return -EINVAL;
	}
	dm->d = (uint32_t)t->shape[0];

	/* the input the checkpoint was fine-tuned on */
	if ((rc = config_expect(ck, "num_frames", F, what, reason, reason_len)) < 0 ||
	    (rc = config_expect(ck, "image_size", S, what, reason, reason_len)) < 0 ||
	    (rc = config_expect(ck, "patch_size", P, what, reason, reason_len)) < 0 ||
	    (rc = config_expect(ck, "tubelet_size", TT, what, reason, reason_len)) < 0 ||
	    (rc = config_expect(ck, "num_channels", 3, what, reason, reason_len)) < 0)
		return rc;
	rc = mb_ckpt_config_str(ck, "hidden_act", &act, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == 0 && strcmp(act, "gelu") != 0) {
		config_path(ck, path, sizeof(path));
		snprintf(reason, reason_len,
			 "%s: hidden_act \"%s\", expected \"gelu\" (the exact, erf GELU: the only "
			 "activation videomae has)",
			 path, act);
		return -EINVAL;
	}

	/* layers: 1 + the highest index of any videomae.encoder.layer.<i>. tensor */
	nlen = (size_t)snprintf(name, sizeof(name), "%svideomae.encoder.layer.", prefix);
	for (uint32_t i = 0; i < mb_ckpt_count(ck); i++) {
		const char *n = mb_ckpt_at(ck, i, NULL)->name;
		char *end;
		unsigned long idx;

		if (strncmp(n, name, nlen) != 0 || n[nlen] < '0' || n[nlen] > '9')
			continue;
		idx = strtoul(n + nlen, &end, 10);
		if (*end == '.' && idx < 4096 && idx + 1 > dm->layers)
			dm->layers = (uint32_t)idx + 1;
	}
	if (dm->layers == 0) {
		snprintf(reason, reason_len,
			 "%s: no tensor 'videomae.encoder.layer.0. ...': a videomae checkpoint has "
			 "at least one encoder layer",
			 mb_ckpt_path(ck));
		return -EINVAL;
	}

	/* ffn, classes: checked against d here, fully by the bind */
	fc1 = need(ck, prefix, "videomae.encoder.layer.0.intermediate.dense.weight", &file,
		   "videomae reads intermediate_size from its shape", reason, reason_len);
	if (fc1 == NULL)
		return -EINVAL;
	if (fc1->ndim != 2 || fc1->shape[0] < 1 || fc1->shape[0] > 65536 ||
	    fc1->shape[1] != dm->d) {
		fmt_shape(fc1, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '%svideomae.encoder.layer.0.intermediate.dense.weight': shape "
			 "%s, expected [intermediate_size, %u] (intermediate_size <= 65536)",
			 file, prefix, shape, dm->d);
		return -EINVAL;
	}
	dm->ffn = (uint32_t)fc1->shape[0];
	cls = need(ck, prefix, "classifier.weight", &file,
		   "videomae reads the number of classes from its shape", reason, reason_len);
	if (cls == NULL)
		return -EINVAL;
	if (cls->ndim != 2 || cls->shape[0] < 1 || cls->shape[0] > (1 << 20)) {
		fmt_shape(cls, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '%sclassifier.weight': shape %s, expected [classes, %u] "
			 "(classes 1..%d)",
			 file, prefix, shape, dm->d, 1 << 20);
		return -EINVAL;
	}
	dm->classes = (uint32_t)cls->shape[0];

	/* the head: the published fine-tuned checkpoints pool by the mean, then fc_norm */
	if ((rc = mean_pooling(ck, prefix, reason, reason_len)) < 0)
		return rc;
	/* labels: as many as the classifier has classes (Hugging Face refuses it otherwise) */
	if (mb_ckpt_label_count(ck) >= 0 && mb_ckpt_label_count(ck) != (int64_t)dm->classes) {
		config_path(ck, path, sizeof(path));
		fmt_shape(cls, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: id2label has %" PRId64 " labels, but the checkpoint's classifier has "
			 "%u classes (tensor '%sclassifier.weight' %s)",
			 path, mb_ckpt_label_count(ck), dm->classes, prefix, shape);
		return -EINVAL;
	}
	dm->labels = mb_ckpt_label_count(ck) > 0 ? dm->classes : 0;

	/* what only config.json knows: heads, eps; and what it says must agree */
	if ((rc = config_agrees(ck, "hidden_size", dm->d, ANCHOR, t, reason, reason_len)) < 0 ||
	    (rc = config_agrees(ck, "num_hidden_layers", dm->layers, "videomae.encoder.layer.<i>.*",
				NULL, reason, reason_len)) < 0 ||
	    (rc = config_agrees(ck, "intermediate_size", dm->ffn,
				"videomae.encoder.layer.0.intermediate.dense.weight", fc1, reason,
				reason_len)) < 0)
		return rc;
	rc = mb_ckpt_config_int(ck, "num_attention_heads", &v, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == 0) {
		if (v < 1 || v > dm->d || dm->d % (uint32_t)v != 0) {
			config_path(ck, path, sizeof(path));
			snprintf(reason, reason_len,
				 "%s: num_attention_heads %" PRId64
				 ", expected a divisor of hidden_size %u",
				 path, v, dm->d);
			return -EINVAL;
		}
		dm->heads = (uint32_t)v;
	} else {
		dm->heads = heads_for(dm->d);
		dm->heads_assumed = 1;
		if (dm->heads == 0) {
			config_path(ck, path, sizeof(path));
			fmt_shape(t, shape, sizeof(shape));
			snprintf(
				reason, reason_len,
				"%s: hidden_size %u (tensor '%s%s' %s) is not a multiple of 64 and "
				"not a published size, so the number of attention heads is "
				"unknown: "
				"%s is needed (num_attention_heads)",
				mb_ckpt_path(ck), dm->d, prefix, ANCHOR, shape,
				mb_ckpt_has_config(ck) ? "num_attention_heads in config.json"
						       : path);
			return -EINVAL;
		}
	}
	eps = 1e-12;
	rc = mb_ckpt_config_double(ck, "layer_norm_eps", &eps, reason, reason_len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (!(eps > 0 && eps < 1)) {
		config_path(ck, path, sizeof(path));
		snprintf(reason, reason_len, "%s: layer_norm_eps %g, expected a value in (0, 1)",
			 path, eps);
		return -EINVAL;
	}
	dm->eps = eps;
	return normalisation(ck, dm, reason, reason_len);
}

/* one encoder layer's tensors, in the order of videomae.c's L_* enum */
static const struct {
	const char *suffix;
	int gain;  /* a LayerNorm gain: placeholders near 1 */
	int shape; /* 0 [d, d], 1 [d], 2 [ffn, d], 3 [ffn], 4 [d, ffn] */
} g_layer[MB_VIDEOMAE_LAYER_TENSORS] = {
	{"layernorm_before.weight", 1, 1},
	{"layernorm_before.bias", 0, 1},
	{"attention.attention.query.weight", 0, 0},
	{"attention.attention.q_bias", 0, 1},
	{"attention.attention.key.weight", 0, 0},
	{"attention.attention.value.weight", 0, 0},
	{"attention.attention.v_bias", 0, 1},
	{"attention.output.dense.weight", 0, 0},
	{"attention.output.dense.bias", 0, 1},
	{"layernorm_after.weight", 1, 1},
	{"layernorm_after.bias", 0, 1},
	{"intermediate.dense.weight", 0, 2},
	{"intermediate.dense.bias", 0, 3},
	{"output.dense.weight", 0, 4},
	{"output.dense.bias", 0, 1},
};

static int
specs(const void *dims, struct mb_net_specs *s)
{
	const struct mb_videomae_dims *dm = dims;
	const int64_t d = dm->d, ff = dm->ffn, k = dm->classes;
	const int ones = MB_WEIGHTS_INIT_ONES, def = MB_WEIGHTS_INIT_DEFAULT;
	static const char emb[] = "videomae.embeddings.patch_embeddings.projection.";
	int rc;

	rc = mb_net_spec(s, def, 5, d, (int64_t)3, (int64_t)TT, (int64_t)P, (int64_t)P, "%sweight",
			 emb);
	if (rc >= 0)
		rc = mb_net_spec(s, def, 1, d, "%sbias", emb);
	for (uint32_t i = 0; i < dm->layers && rc >= 0; i++)
		for (int j = 0; j < MB_VIDEOMAE_LAYER_TENSORS && rc >= 0; j++) {
			const int init = g_layer[j].gain ? ones : def;
			static const char fmt[] = "videomae.encoder.layer.%u.%s";
			const char *sfx = g_layer[j].suffix;

			switch (g_layer[j].shape) {
			case 0:
				rc = mb_net_spec(s, init, 2, d, d, fmt, i, sfx);
				break;
			case 1:
				rc = mb_net_spec(s, init, 1, d, fmt, i, sfx);
				break;
			case 2:
				rc = mb_net_spec(s, init, 2, ff, d, fmt, i, sfx);
				break;
			case 3:
				rc = mb_net_spec(s, init, 1, ff, fmt, i, sfx);
				break;
			default:
				rc = mb_net_spec(s, init, 2, d, ff, fmt, i, sfx);
				break;
			}
		}
	if (rc >= 0)
		rc = mb_net_spec(s, ones, 1, d, "fc_norm.weight");
	if (rc >= 0)
		rc = mb_net_spec(s, def, 1, d, "fc_norm.bias");
	if (rc >= 0)
		rc = mb_net_spec(s, def, 2, k, d, "classifier.weight");
	if (rc >= 0)
		rc = mb_net_spec(s, def, 1, k, "classifier.bias");
	if (rc < 0) {
		mb_net_specs_free(s);
		return -ENOMEM;
	}
	return 0;
}

/* snprintf at @p *off, tracking overflow */
static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	*off += n < 0 ? len : (size_t)n;
}

static int
config_json(const void *dims, char *buf, size_t len)
{
	const struct mb_videomae_dims *dm = dims;
	size_t off = 0;

	put(buf, len, &off,
	    "{\n  \"architectures\": [\"VideoMAEForVideoClassification\"],\n"
	    "  \"model_type\": \"videomae\",\n  \"hidden_size\": %u,\n"
	    "  \"num_hidden_layers\": %u,\n  \"num_attention_heads\": %u,\n"
	    "  \"intermediate_size\": %u,\n  \"hidden_act\": \"gelu\",\n"
	    "  \"num_frames\": %d,\n  \"image_size\": %d,\n  \"patch_size\": %d,\n"
	    "  \"tubelet_size\": %d,\n  \"num_channels\": 3,\n  \"use_mean_pooling\": true,\n"
	    "  \"layer_norm_eps\": %.9g,\n  \"qkv_bias\": true,\n  \"id2label\": {",
	    dm->d, dm->layers, dm->heads, dm->ffn, F, S, P, TT, dm->eps);
	for (uint32_t i = 0; i < dm->classes; i++)
		put(buf, len, &off, "%s\n    \"%u\": \"class %u\"", i ? "," : "", i, i);
	put(buf, len, &off, "\n  }\n}\n");
	return off < len ? 0 : -ENOSPC;
}

/* The placeholder's preprocessor_config.json: its normalisation (ImageNet's, the default) as
 * Hugging Face's VideoMAEImageProcessor keys. */
static int
preprocessor_json(const void *dims, char *buf, size_t len)
{
	const struct mb_videomae_dims *dm = dims;
	size_t off = 0;

	put(buf, len, &off,
	    "{\n  \"image_processor_type\": \"VideoMAEImageProcessor\",\n"
	    "  \"do_resize\": true,\n  \"size\": {\"shortest_edge\": %d},\n"
	    "  \"do_center_crop\": true,\n  \"crop_size\": {\"height\": %d, \"width\": %d},\n"
	    "  \"do_rescale\": true,\n  \"rescale_factor\": %.17g,\n  \"do_normalize\": true,\n"
	    "  \"image_mean\": [%.6g, %.6g, %.6g],\n  \"image_std\": [%.6g, %.6g, %.6g]\n}\n",
	    S, S, S, dm->rescale, dm->mean[0], dm->mean[1], dm->mean[2], dm->std[0], dm->std[1],
	    dm->std[2]);
	return off < len ? 0 : -ENOSPC;
}

static const char *const g_prefixes[] = {"", NULL};

static void
describe(const void *dims, char *buf, size_t len)
{
	const struct mb_videomae_dims *dm = dims;

	snprintf(buf, len,
		 "hidden_size %u, %u layers, %u heads%s, intermediate_size %u, %u classes, %s",
		 dm->d, dm->layers, dm->heads,
		 dm->heads_assumed ? " (assumed: no num_attention_heads in config.json, so the "
				     "published size's count, else hidden_size / 64)"
				   : "",
		 dm->ffn, dm->classes,
		 dm->labels != 0 ? "labels from config.json's id2label"
				 : "no labels (no id2label in config.json: answers are class ids)");
}

const struct mb_net_layout mb_videomae_layout = {
	.name = "videomae",
	.prefixes = g_prefixes,
	.anchor = ANCHOR,
	.sizes = mb_videomae_sizes,
	.dims_size = sizeof(struct mb_videomae_dims),
	.preset = preset,
	.dims_from = dims_from,
	.specs = specs,
	.config_json = config_json,
	.preprocessor_json = preprocessor_json,
	.describe = describe,
};
