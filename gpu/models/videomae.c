/*
 * videomae.c: VideoMAE video classification, as Hugging Face's
 * VideoMAEForVideoClassification computes it, from a published checkpoint (e.g.
 * MCG-NJU/videomae-base-finetuned-kinetics) loaded as it is.
 *
 * Input: RGB24, exactly 16 frames of 224 x 224 ([frame][row][column][r, g, b] bytes).
 *   normalise   x = (v / 255 - mean[c]) / std[c], ImageNet mean (0.485, 0.456, 0.406) and
 *               std (0.229, 0.224, 0.225) (a table of 3 x 256 values);
 *   embed       conv3d 3 -> d, kernel = stride = 2 x 16 x 16: 8 x 14 x 14 = 1568 tokens in
 *               (t, y, x) order, as im2col + one SGEMM over every clip of the batch; plus
 *               the fixed sinusoid table (HF get_sinusoid_encoding_table(1568, d): not in
 *               the checkpoint, built here in float64 and kept as F32);
 *   encoder     `layers` pre-LN blocks (mb_nn_block_forward, all clips at once): attention
 *               with q and v biases and none on k, exact GELU MLP; LayerNorm eps from
 *               config.json's layer_norm_eps (default 1e-12);
 *   head        mean over the 1568 tokens, fc_norm (LayerNorm, eps 1e-5: HF builds it as
 *               nn.LayerNorm(hidden_size), torch's default eps, not layer_norm_eps), then
 *               the classifier d -> classes;
 *   result      softmax, top-k (k = 5, or classes if fewer), ties by the lower class id:
 *               pairs (u32 class, f32 score), rows k, cols 2 (mb_videomae_topk()).
 *
 * Sizes: d from the patch projection's shape, layers by counting, ffn from
 * intermediate.dense, classes from the classifier, heads from config.json's
 * num_attention_heads, else the published head count for d (small 384/6, base 768/12,
 * large 1024/16, huge 1280/16), else d / 64. config.json's hidden_size, num_hidden_layers
 * and intermediate_size must agree with the tensors; num_frames, image_size, patch_size,
 * tubelet_size and num_channels other than the published fine-tuned checkpoints' are
 * refused for now, as is a hidden_act other than "gelu".
 *
 * Labels: config.json's id2label, kept at load (mb_videomae_label()).
 *
 * On a CUDA device the same steps run in cuda_videomae.cu (on the transformer module,
 * cuda_tf_internal.h), the GEMMs at the net's precision (models[].precision); the logits come
 * back to the host, where the result is made exactly as on the CPU (top-k, or the logits of a
 * window part). A run there allocates its batch's device memory for exactly its clips and
 * frees it at its end; gpu_bytes reports those bytes from the same formula
 * (mb_cuda_videomae_mem()).
 *
 * Owns: what init() keeps in net->extra (normalisation table, position table, labels).
 * Threads: as model.h; a loaded net is read-only.
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

#include "gpu_internal.h"
#include "mb_build_config.h"
#include "mb_models.h"
#include "mb_request.h"
#include "nn_internal.h"

#if MB_HAVE_CUDA
#include "cuda_tf_internal.h"
#endif

#define F MB_VIDEOMAE_IN_FRAMES
#define S MB_VIDEOMAE_IN_SIZE
#define TT MB_VIDEOMAE_IN_TUBELET
#define P MB_VIDEOMAE_IN_PATCH
#define TOKENS MB_VIDEOMAE_IN_TOKENS
#define GRID (S / P)
#define PDIM (3 * TT * P * P) /* values of one tubelet: 1536 */

/* HF's fc_norm is nn.LayerNorm(hidden_size): torch's default eps */
#define FC_NORM_EPS 1e-5f

#define ANCHOR "videomae.embeddings.patch_embeddings.projection.weight"

/* tensors of one encoder layer, in specs order */
enum {
	L_LN1_W,
	L_LN1_B,
	L_Q_W,
	L_Q_B,
	L_K_W,
	L_V_W,
	L_V_B,
	L_O_W,
	L_O_B,
	L_LN2_W,
	L_LN2_B,
	L_FC1_W,
	L_FC1_B,
	L_FC2_W,
	L_FC2_B,
	L_N,
};

/* w[] index of the embedding, of layer i's tensor j, and of the head's */
#define W_EMB_W 0
#define W_EMB_B 1
#define W_LAYER(i, j) (2 + (i)*L_N + (j))
#define W_HEAD(layers, j) (2 + (layers)*L_N + (j)) /* fc_norm w, b; classifier w, b */

static const float g_mean[3] = {0.485f, 0.456f, 0.406f};
static const float g_std[3] = {0.229f, 0.224f, 0.225f};

/* what init() keeps */
struct videomae_extra {
	float lut[3][256]; /* normalised value of each byte per channel */
	float *pos;	   /* [TOKENS x d] */
	char **labels;	   /* [classes], entries NULL where config.json has none */
	uint32_t classes;
};

/* ---- sizes ---- */

static const char *const g_sizes[] = {
	"tiny", "videomae-small", "videomae-base", "videomae-large", NULL,
};

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
	return 0;
}

/* one encoder layer's tensors, in the order of the L_* enum */
static const struct {
	const char *suffix;
	int gain;  /* a LayerNorm gain: placeholders near 1 */
	int shape; /* 0 [d, d], 1 [d], 2 [ffn, d], 3 [ffn], 4 [d, ffn] */
} g_layer[L_N] = {
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
		for (int j = 0; j < L_N && rc >= 0; j++) {
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

/* ---- what a loaded net keeps ---- */

static void
fini(struct mb_net *net)
{
	struct videomae_extra *x = net->extra;

	if (x == NULL)
		return;
	if (x->labels != NULL)
		for (uint32_t i = 0; i < x->classes; i++)
			free(x->labels[i]);
	free(x->labels);
	free(x->pos);
	free(x);
	net->extra = NULL;
}

static int
init(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	const struct mb_videomae_dims *dm = net->dims;
	struct videomae_extra *x = calloc(1, sizeof(*x));
	size_t pos_bytes = ((size_t)TOKENS * dm->d * sizeof(float) + 63) & ~(size_t)63;

	if (x == NULL)
		goto oom;
	net->extra = x;
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++)
			x->lut[c][v] = ((float)v / 255.0f - g_mean[c]) / g_std[c];
	/* HF get_sinusoid_encoding_table(1568, d): pos / 10000^(2 (j / 2) / d), sin on even j,
	 * cos on odd j, in float64, then F32 */
	x->pos = aligned_alloc(64, pos_bytes);
	if (x->pos == NULL)
		goto oom;
	for (uint32_t p = 0; p < TOKENS; p++)
		for (uint32_t j = 0; j < dm->d; j++) {
			double a = (double)p / pow(10000.0, 2.0 * (double)(j / 2) / (double)dm->d);

			x->pos[(size_t)p * dm->d + j] = (float)(j % 2 == 0 ? sin(a) : cos(a));
		}
	x->classes = dm->classes;
	if (mb_ckpt_has_config(ck)) {
		x->labels = calloc(dm->classes, sizeof(*x->labels));
		if (x->labels == NULL)
			goto oom;
		for (uint32_t i = 0; i < dm->classes; i++) {
			const char *l = mb_ckpt_label(ck, i);

			if (l != NULL && (x->labels[i] = strdup(l)) == NULL)
				goto oom;
		}
	}
	return 0;
oom:
	snprintf(reason, reason_len, "out of memory for videomae's tables");
	return -ENOMEM;
}

const struct mb_videomae_dims *
mb_videomae_dims_of(const struct mb_net *net)
{
	return net->dims;
}

const char *
mb_videomae_label(const struct mb_net *net, uint32_t id)
{
	const struct videomae_extra *x = net->extra;

	if (x == NULL || x->labels == NULL || id >= x->classes)
		return NULL;
	return x->labels[id];
}

/* ---- forward ---- */

uint32_t
mb_videomae_topk_k(uint32_t classes)
{
	return classes < MB_VIDEOMAE_TOPK_MAX ? classes : MB_VIDEOMAE_TOPK_MAX;
}

static inline float
key_of(float v)
{
	return isnan(v) ? -INFINITY : v;
}

/* whether class a ranks above class b: higher logit, then lower id */
static inline int
above(const float *l, uint32_t a, uint32_t b)
{
	float x = key_of(l[a]), y = key_of(l[b]);

	return x > y || (x == y && a < b);
}

void
mb_videomae_topk(const float *logits, uint32_t classes, void *out)
{
	uint32_t k = mb_videomae_topk_k(classes), prev = 0;
	float max = -INFINITY;
	double sum = 0.0;
	uint8_t *o = out;

	for (uint32_t c = 0; c < classes; c++)
		max = fmaxf(max, key_of(logits[c]));
	if (isfinite(max))
		for (uint32_t c = 0; c < classes; c++)
			sum += exp((double)key_of(logits[c]) - (double)max);
	for (uint32_t r = 0; r < k; r++) {
		uint32_t best = UINT32_MAX;
		float score = 0.0f;

		/* the best class ranked below the previous pick */
		for (uint32_t c = 0; c < classes; c++)
			if ((r == 0 || above(logits, prev, c)) &&
			    (best == UINT32_MAX || above(logits, c, best)))
				best = c;
		prev = best;
		if (sum > 0.0)
			score = (float)(exp((double)key_of(logits[best]) - (double)max) / sum);
		memcpy(o + 8 * r, &best, 4);
		memcpy(o + 8 * r + 4, &score, 4);
	}
}

/* floats rounded up to whole cache lines, so every part of the scratch stays aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

static void
block_of(const struct mb_net *net, uint32_t i, struct mb_nn_block *b)
{
	const struct mb_videomae_dims *dm = net->dims;
	float *const *w = net->w + W_LAYER(i, 0);

	*b = (struct mb_nn_block){
		.d = dm->d,
		.heads = dm->heads,
		.ff = dm->ffn,
		.eps = (float)dm->eps,
		.ln1_g = w[L_LN1_W],
		.ln1_b = w[L_LN1_B],
		.wq = w[L_Q_W],
		.bq = w[L_Q_B],
		.wk = w[L_K_W],
		.bk = NULL,
		.wv = w[L_V_W],
		.bv = w[L_V_B],
		.wo = w[L_O_W],
		.bo = w[L_O_B],
		.ln2_g = w[L_LN2_W],
		.ln2_b = w[L_LN2_B],
		.w1 = w[L_FC1_W],
		.b1 = w[L_FC1_B],
		.w2 = w[L_FC2_W],
		.b2 = w[L_FC2_B],
	};
}

size_t
mb_videomae_scratch(const struct mb_net *net, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct mb_nn_block b = {.d = dm->d, .heads = dm->heads, .ff = dm->ffn};
	size_t rows = (size_t)n * TOKENS, col = rows * PDIM, blk;

	blk = mb_nn_block_scratch(&b, n, TOKENS);
	/* tokens, pooled, then the im2col columns or the blocks' scratch (one after the other) */
	return lines(rows * dm->d) + lines((size_t)n * dm->d) + lines(col > blk ? col : blk);
}

/* col[token][((c * 2 + dt) * 16 + dy) * 16 + dx]: the conv3d weight's [3][2][16][16] order */
static void
tubelets(const struct videomae_extra *x, const uint8_t *rgb, float *col)
{
	for (int t = 0; t < F / TT; t++)
		for (int gy = 0; gy < GRID; gy++)
			for (int gx = 0; gx < GRID; gx++) {
				float *row = col + (size_t)((t * GRID + gy) * GRID + gx) * PDIM;

				for (int dt = 0; dt < TT; dt++)
					for (int dy = 0; dy < P; dy++) {
						const uint8_t *px =
							rgb + (((size_t)(t * TT + dt) * S +
								(size_t)(gy * P + dy)) *
								       S +
							       (size_t)gx * P) *
								      3;

						for (int dx = 0; dx < P; dx++)
							for (int c = 0; c < 3; c++)
								row[((c * TT + dt) * P + dy) * P +
								    dx] = x->lut[c][px[dx * 3 + c]];
					}
			}
}

void
mb_videomae_logits(const struct mb_net *net, float *scratch, const uint8_t *const *clips,
		   uint32_t n, float *logits)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct videomae_extra *x = net->extra;
	const uint32_t d = dm->d, rows = n * TOKENS;
	float *tok = scratch;				     /* [rows x d] */
	float *pooled = tok + lines((size_t)rows * d);	     /* [n x d] */
	float *work = pooled + lines((size_t)n * d);	     /* im2col, then blocks' */
	float *const *head = net->w + W_HEAD(dm->layers, 0); /* fc_norm w, b; cls w, b */

	/* embedding: every clip's tubelets, one GEMM, plus the position table */
	for (uint32_t i = 0; i < n; i++)
		tubelets(x, clips[i], work + (size_t)i * TOKENS * PDIM);
	mb_nn_linear(work, rows, PDIM, net->w[W_EMB_W], net->w[W_EMB_B], d, tok);
	for (uint32_t i = 0; i < n; i++) {
		float *t = tok + (size_t)i * TOKENS * d;

		for (size_t j = 0; j < (size_t)TOKENS * d; j++)
			t[j] += x->pos[j];
	}

	/* encoder: every clip at once */
	for (uint32_t l = 0; l < dm->layers; l++) {
		struct mb_nn_block b;

		block_of(net, l, &b);
		mb_nn_block_forward(&b, tok, n, TOKENS, work);
	}

	/* head: mean over the tokens, fc_norm, classifier */
	for (uint32_t i = 0; i < n; i++) {
		const float *t = tok + (size_t)i * TOKENS * d;
		double *acc = (double *)work; /* d doubles: the blocks are done with work */

		for (uint32_t c = 0; c < d; c++)
			acc[c] = 0.0;
		for (uint32_t r = 0; r < TOKENS; r++)
			for (uint32_t c = 0; c < d; c++)
				acc[c] += t[(size_t)r * d + c];
		for (uint32_t c = 0; c < d; c++)
			pooled[(size_t)i * d + c] = (float)(acc[c] / TOKENS);
	}
	mb_nn_layernorm(pooled, n, d, head[0], head[1], FC_NORM_EPS, pooled);
	mb_nn_linear(pooled, n, d, head[2], head[3], dm->classes, logits);
}

/* ---- the lifecycle's hooks ---- */

static uint32_t
shape(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows, uint16_t *cols,
      uint16_t *type)
{
	const struct mb_videomae_dims *dm = net->dims;
	uint32_t k = mb_videomae_topk_k(dm->classes);

	if (it->hdr->frames != F || it->hdr->height != S || it->hdr->width != S ||
	    it->payload_len != MB_VIDEOMAE_CLIP_BYTES)
		return 0;
	if (it->hdr->reserved & MB_HDR_WINDOW_PART) {
		/* one clip of several: its logits, for the join's mean (multi-clip testing) */
		*rows = 1;
		*cols = (uint16_t)dm->classes;
		*type = MB_RESULT_F32;
		return dm->classes * (uint32_t)sizeof(float);
	}
	*rows = (uint16_t)k;
	*cols = 2;
	*type = MB_RESULT_TOPK;
	return 8 * k;
}

static size_t
cpu_scratch(const struct mb_net *net, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;

	/* the clips' pointers live in the scratch too: 2 floats per pointer are 8 bytes */
	return mb_videomae_scratch(net, n) + lines((size_t)n * dm->classes) + lines((size_t)n * 2);
}

/* Each item's result from the batch's @p logits [n x classes] (both devices). */
static void
results(const struct mb_net *net, const float *logits, struct mb_model_item *const *items,
	uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;

	for (uint32_t i = 0; i < n; i++)
		if (items[i]->hdr->reserved & MB_HDR_WINDOW_PART)
			memcpy(items[i]->result, logits + (size_t)i * dm->classes,
			       (size_t)dm->classes * sizeof(float));
		else
			mb_videomae_topk(logits + (size_t)i * dm->classes, dm->classes,
					 items[i]->result);
}

static int
cpu_run(const struct mb_net *net, float *scratch, struct mb_model_item *const *items, uint32_t n)
{
	const struct mb_videomae_dims *dm = net->dims;
	float *logits = scratch + mb_videomae_scratch(net, n);
	const uint8_t **clips = (const uint8_t **)(logits + lines((size_t)n * dm->classes));

	_Static_assert(sizeof(void *) <= 2 * sizeof(float), "a pointer in two floats");
	for (uint32_t i = 0; i < n; i++)
		clips[i] = items[i]->payload;
	mb_videomae_logits(net, scratch, clips, n, logits);
	results(net, logits, items, n);
	return 0;
}

/* ---- on a CUDA device (cuda_videomae.cu) ---- */

#if MB_HAVE_CUDA

_Static_assert((int)MB_NET_F32 == (int)MB_TF_F32 && (int)MB_NET_F16 == (int)MB_TF_F16 &&
		       (int)MB_NET_BF16 == (int)MB_TF_BF16,
	       "one numbering of the precisions");

/* A CUDA worker: the device side's, and the batch's clips as it takes them. */
struct gpu_worker {
	struct mb_cuda_videomae_worker *w;
	const uint8_t **clips;
	uint32_t cap;
};

static int
gpu_load(struct mb_net *net, int device, enum mb_net_precision prec, char *reason,
	 size_t reason_len)
{
	const struct mb_videomae_dims *dm = net->dims;
	const struct videomae_extra *x = net->extra;
	float *const *head = net->w + W_HEAD(dm->layers, 0);
	struct mb_tf_block_host *blocks = calloc(dm->layers, sizeof(*blocks));
	struct mb_cuda_videomae_desc desc = {
		.device = device,
		.prec = (enum mb_tf_prec)prec,
		.d = dm->d,
		.layers = dm->layers,
		.heads = dm->heads,
		.ffn = dm->ffn,
		.classes = dm->classes,
		.emb_w = net->w[W_EMB_W],
		.emb_b = net->w[W_EMB_B],
		.pos = x->pos,
		.lut = &x->lut[0][0],
		.fcn_g = head[0],
		.fcn_b = head[1],
		.cls_w = head[2],
		.cls_b = head[3],
		.blocks = blocks,
	};
	struct mb_cuda_videomae *g = NULL;
	int rc;

	if (blocks == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < dm->layers; i++) {
		struct mb_nn_block b;

		block_of(net, i, &b);
		blocks[i] = (struct mb_tf_block_host){
			.d = b.d,
			.heads = b.heads,
			.ff = b.ff,
			.eps = b.eps,
			.ln1_g = b.ln1_g,
			.ln1_b = b.ln1_b,
			.wq = b.wq,
			.bq = b.bq,
			.wk = b.wk,
			.bk = b.bk,
			.wv = b.wv,
			.bv = b.bv,
			.wo = b.wo,
			.bo = b.bo,
			.ln2_g = b.ln2_g,
			.ln2_b = b.ln2_b,
			.w1 = b.w1,
			.b1 = b.b1,
			.w2 = b.w2,
			.b2 = b.b2,
		};
	}
	rc = mb_cuda_videomae_create(&desc, &g, reason, reason_len);
	free(blocks);
	if (rc < 0)
		return -EIO;
	net->gpu = g;
	return 0;
}

static void
gpu_unload(struct mb_net *net)
{
	struct mb_cuda_videomae *g = net->gpu;

	mb_cuda_videomae_destroy(&g);
	net->gpu = NULL;
}

static int
gpu_worker_init(const struct mb_net *net, void **worker, char *reason, size_t reason_len)
{
	struct gpu_worker *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	if (mb_cuda_videomae_worker_create(net->gpu, &gw->w, reason, reason_len) < 0) {
		free(gw);
		return -EIO;
	}
	*worker = gw;
	return 0;
}

static void
gpu_worker_fini(const struct mb_net *net, void *worker)
{
	struct gpu_worker *gw = worker;

	(void)net;
	mb_cuda_videomae_worker_destroy(&gw->w);
	free(gw->clips);
	free(gw);
}

static int
gpu_run(const struct mb_net *net, void *worker, struct mb_model_item *const *items, uint32_t n,
	void *stream, char *reason, size_t reason_len)
{
	struct gpu_worker *gw = worker;
	const float *logits = NULL;

	if (n > gw->cap) { /* only when a larger batch first arrives */
		const uint8_t **v = realloc(gw->clips, sizeof(*v) * n);

		if (v == NULL) {
			snprintf(reason, reason_len, "out of memory");
			return -ENOMEM;
		}
		gw->clips = v;
		gw->cap = n;
	}
	for (uint32_t i = 0; i < n; i++)
		gw->clips[i] = items[i]->payload;
	if (mb_cuda_videomae_run(net->gpu, gw->w, gw->clips, n, stream, &logits, reason,
				 reason_len) < 0)
		return -EIO;
	results(net, logits, items, n);
	return 0;
}

/* The figures the run's allocation is sized by (cuda_tf_internal.h: one formula for both). */
static int
gpu_bytes(const struct mb_net *net, uint64_t *worker, uint64_t *batch, uint64_t *item)
{
	struct mb_tf_mem m;

	mb_cuda_videomae_mem_of(net->gpu, &m);
	*worker = m.worker;
	*batch = m.batch;
	*item = m.item;
	return 0;
}

#endif /* MB_HAVE_CUDA */

static const char *const g_prefixes[] = {"", NULL};

const struct mb_net_def mb_videomae_net = {
	.name = "videomae",
	.prefixes = g_prefixes,
	.anchor = ANCHOR,
	.sizes = g_sizes,
	.dims_size = sizeof(struct mb_videomae_dims),
	.preset = preset,
	.dims_from = dims_from,
	.specs = specs,
	.config_json = config_json,
	.init = init,
	.fini = fini,
	.shape = shape,
	.cpu_scratch = cpu_scratch,
	.cpu_run = cpu_run,
#if MB_HAVE_CUDA
	.gpu_load = gpu_load,
	.gpu_unload = gpu_unload,
	.gpu_worker_init = gpu_worker_init,
	.gpu_worker_fini = gpu_worker_fini,
	.gpu_run = gpu_run,
	.gpu_bytes = gpu_bytes,
#endif
};

/* ---- the model.h descriptor ---- */

static int
videomae_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	if (hdr->frames != F || hdr->height != S || hdr->width != S) {
		snprintf(reason, reason_len,
			 "frames/height/width: %u x %u x %u, but videomae takes exactly %d frames "
			 "of %dx%d RGB24 (frames=%d, height=%d, width=%d)",
			 hdr->frames, hdr->height, hdr->width, F, S, S, F, S, S);
		return -1;
	}
	return 0;
}

static int
videomae_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	return mb_net_load(&mb_videomae_net, args, state, reason, reason_len);
}

const struct mb_model_desc mb_model_videomae = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "videomae",
	.summary = "VideoMAE video classification: 16 RGB24 frames of 224x224 -> top-5 (class, "
		   "score)",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_RGB24),
	.devices = MB_MODELS_DEVICES,
	.base_units = 5,
	.item_units_per_second = 1.0, /* one 16-frame clip counts as one second: 1 unit */
	.max_batch = 4,
	.max_delay_us = 5000,
	.queue_limit = 256,
	.default_timeout_ms = 60000,
	.check = videomae_check,
	.load = videomae_load,
	.worker_init = mb_net_worker_init,
	.worker_fini = mb_net_worker_fini,
	.run = mb_net_run,
	.unload = mb_net_unload,
};
