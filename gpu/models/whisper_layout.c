/*
 * whisper_layout.c: what a Whisper encoder checkpoint looks like (the mb_layout library,
 * layout_internal.h): the published sizes (and "tiny", a small test size that is not one of
 * them), the sizes of a checkpoint read from its tensors and config.json, the tensors of a
 * size under the names WhisperForConditionalGeneration saves ("model.encoder.*"; WhisperModel's
 * "encoder.*" is taken too) and its config.json.
 *
 * Sizes come from the checkpoint: d and n_mels from conv1.weight, layers from the layers
 * present, ffn from fc1.weight, heads from config.json's encoder_attention_heads (else
 * d / 64: every published size has heads of 64); what config.json also says is checked
 * against the tensors. An activation_function other than "gelu", and a preprocessor_config.json
 * whose feature extractor differs from the encoder's front end (sampling rate, n_fft, hop,
 * window, mel bins), are refused.
 *
 * What the encoder computes with them is whisper.c's. Threads: any; nothing here keeps state.
 */
#include "whisper_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout_internal.h"
#include "mel_internal.h"

#define T_POS MB_WHISPER_POSITIONS
#define HEAD_DIM 64u	 /* every published size's; heads = d / 64 without config.json */
#define MAX_LAYERS 1024u /* a sanity bound on layer indices read from tensor names */
#define WINDOW_S 30	 /* seconds of audio a window holds (chunk_length) */

static const char *const prefixes[] = {"model.encoder.", "encoder.", NULL};

const char *const mb_whisper_sizes[] = {
	"tiny",		  "whisper-tiny",     "whisper-base",	  "whisper-small",
	"whisper-medium", "whisper-large-v2", "whisper-large-v3", NULL,
};

/* in the order of mb_whisper_sizes[] */
static const struct mb_whisper_dims presets[] = {
	{128, 2, 2, 512, 80},	   {384, 4, 6, 1536, 80},    {512, 6, 8, 2048, 80},
	{768, 12, 12, 3072, 80},   {1024, 24, 16, 4096, 80}, {1280, 32, 20, 5120, 80},
	{1280, 32, 20, 5120, 128},
};

_Static_assert(sizeof(presets) / sizeof(presets[0]) ==
		       sizeof(mb_whisper_sizes) / sizeof(mb_whisper_sizes[0]) - 1,
	       "one preset per size name");

static int
whisper_preset(const char *size, void *dims)
{
	for (size_t i = 0; mb_whisper_sizes[i] != NULL; i++)
		if (strcmp(mb_whisper_sizes[i], size) == 0) {
			*(struct mb_whisper_dims *)dims = presets[i];
			return 0;
		}
	return -ENOENT;
}

/* ---- sizes from a checkpoint ---- */

/* "[384, 80, 3]" */
static const char *
shape_str(const struct mb_weights_tensor *t, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "[");

	for (uint32_t i = 0; i < t->ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "",
					t->shape[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
	return buf;
}

/* config.json's path: beside the file that holds @p file's tensors */
static void
config_path(const char *file, char *buf, size_t len)
{
	const char *slash = strrchr(file, '/');

	if (slash == NULL)
		snprintf(buf, len, "config.json");
	else
		snprintf(buf, len, "%.*s/config.json", (int)(slash - file), file);
}

/* Highest "<prefix>layers.<i>." index + 1 over every tensor of @p ck (0: none). */
static uint32_t
count_layers(const struct mb_ckpt *ck, const char *prefix)
{
	size_t plen = strlen(prefix);
	uint32_t layers = 0;

	for (uint32_t i = 0; i < mb_ckpt_count(ck); i++) {
		const char *name = mb_ckpt_at(ck, i, NULL)->name;
		unsigned long idx;
		char *end;

		if (strncmp(name, prefix, plen) != 0 || strncmp(name + plen, "layers.", 7) != 0)
			continue;
		name += plen + 7;
		if (*name < '0' || *name > '9')
			continue;
		idx = strtoul(name, &end, 10);
		if (*end == '.' && idx < MAX_LAYERS && idx + 1 > layers)
			layers = (uint32_t)idx + 1;
	}
	return layers;
}

/*
 * config.json's @p key, when present, must equal @p value read from tensor @p tensor (of
 * shape @p shape, in @p file). 0, or -EINVAL with a reason naming both.
 */
static int
cross_check(const struct mb_ckpt *ck, const char *config, const char *key, uint32_t value,
	    const char *what, char *reason, size_t reason_len)
{
	int64_t v;
	int rc = mb_ckpt_config_int(ck, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v != (int64_t)value) {
		snprintf(reason, reason_len, "%s: %s is %" PRId64 ", but %s says %u", config, key,
			 v, what, value);
		return -EINVAL;
	}
	return 0;
}

/* config.json's activation_function, when there, must be the one the encoder computes. */
static int
activation(const struct mb_ckpt *ck, const char *config, char *reason, size_t reason_len)
{
	const char *act;
	int rc = mb_ckpt_config_str(ck, "activation_function", &act, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (strcmp(act, "gelu") != 0) {
		snprintf(reason, reason_len,
			 "%s: activation_function \"%s\", expected \"gelu\" (the exact, erf GELU "
			 "of every published Whisper: the only activation whisper computes)",
			 config, act);
		return -EINVAL;
	}
	return 0;
}

/*
 * preprocessor_config.json (WhisperFeatureExtractor's settings), when there, must be what
 * the encoder's front end computes: 16 kHz, n_fft 400, hop 160, 30 s windows, and as many
 * mel bins as conv1 takes.
 */
static int
preprocessor(const struct mb_ckpt *ck, const struct mb_whisper_dims *D, char *reason,
	     size_t reason_len)
{
	const struct mb_net_layout *l = &mb_whisper_layout;
	int rc;

	if ((rc = mb_net_pre_number(l, ck, "feature_size", D->n_mels, reason, reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "sampling_rate", MB_MEL_SAMPLE_RATE, reason,
				    reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "n_fft", MB_MEL_N_FFT, reason, reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "hop_length", MB_MEL_HOP, reason, reason_len)) < 0 ||
	    (rc = mb_net_pre_number(l, ck, "chunk_length", WINDOW_S, reason, reason_len)) < 0)
		return rc;
	return mb_net_pre_number(l, ck, "n_samples", WINDOW_S * MB_MEL_SAMPLE_RATE, reason,
				 reason_len);
}

static int
whisper_dims_from(const struct mb_ckpt *ck, const char *prefix, void *dims_out, char *reason,
		  size_t reason_len)
{
	struct mb_whisper_dims *D = dims_out;
	const struct mb_weights_tensor *conv1, *fc1;
	const char *file, *fc1_file;
	char name[256], fc1_name[256], config[4096], shape[96], what[512];
	int64_t heads;
	int rc;

	snprintf(name, sizeof(name), "%sconv1.weight", prefix);
	conv1 = mb_ckpt_find(ck, name, &file);
	if (conv1 == NULL) { /* net.c picked the prefix by this tensor */
		snprintf(reason, reason_len, "%s: no tensor '%s'", mb_ckpt_path(ck), name);
		return -EINVAL;
	}
	config_path(file, config, sizeof(config));
	shape_str(conv1, shape, sizeof(shape));
	if (conv1->ndim != 3 || conv1->shape[2] != 3 || conv1->shape[0] < 1 ||
	    conv1->shape[0] > 65535) {
		snprintf(reason, reason_len,
			 "%s: tensor '%s': shape %s, expected [d_model, num_mel_bins, 3]", file,
			 name, shape);
		return -EINVAL;
	}
	if (conv1->shape[1] != 80 && conv1->shape[1] != 128) {
		snprintf(reason, reason_len,
			 "%s: tensor '%s': shape %s: %" PRId64
			 " mel bins (num_mel_bins), expected 80 or 128",
			 file, name, shape, conv1->shape[1]);
		return -EINVAL;
	}
	D->d = (uint32_t)conv1->shape[0];
	D->n_mels = (uint32_t)conv1->shape[1];

	D->layers = count_layers(ck, prefix);
	snprintf(fc1_name, sizeof(fc1_name), "%slayers.0.fc1.weight", prefix);
	fc1 = mb_ckpt_find(ck, fc1_name, &fc1_file);
	if (D->layers == 0 || fc1 == NULL) {
		snprintf(reason, reason_len,
			 "%s: no tensor '%s' (an encoder has at least one layer)", mb_ckpt_path(ck),
			 fc1_name);
		return -EINVAL;
	}
	if (fc1->ndim != 2 || fc1->shape[1] != (int64_t)D->d || fc1->shape[0] < 1 ||
	    fc1->shape[0] > 1 << 20) {
		snprintf(reason, reason_len,
			 "%s: tensor '%s': shape %s, expected [encoder_ffn_dim, %u] (d_model %u "
			 "from '%s')",
			 fc1_file, fc1_name, shape_str(fc1, shape, sizeof(shape)), D->d, D->d,
			 name);
		return -EINVAL;
	}
	D->ffn = (uint32_t)fc1->shape[0];

	rc = mb_ckpt_config_int(ck, "encoder_attention_heads", &heads, reason, reason_len);
	if (rc == -ENOENT) {
		if (D->d % HEAD_DIM != 0) {
			snprintf(reason, reason_len,
				 "%s: no encoder_attention_heads, and d_model %u (tensor '%s') is "
				 "not a multiple of %u, the head size of every published Whisper",
				 config, D->d, name, HEAD_DIM);
			return -EINVAL;
		}
		heads = D->d / HEAD_DIM;
		D->heads_assumed = 1;
	} else if (rc < 0) {
		return rc;
	} else if (heads < 1 || heads > D->d || D->d % (uint32_t)heads != 0) {
		snprintf(reason, reason_len,
			 "%s: encoder_attention_heads is %" PRId64
			 ", expected a divisor of d_model %u (tensor '%s' in %s)",
			 config, heads, D->d, name, file);
		return -EINVAL;
	}
	D->heads = (uint32_t)heads;
	if ((rc = activation(ck, config, reason, reason_len)) < 0 ||
	    (rc = preprocessor(ck, D, reason, reason_len)) < 0)
		return rc;

	/* what config.json says too must agree with the tensors */
	snprintf(what, sizeof(what), "tensor '%s' in %s (shape %s)", name, file,
		 shape_str(conv1, shape, sizeof(shape)));
	if ((rc = cross_check(ck, config, "d_model", D->d, what, reason, reason_len)) < 0 ||
	    (rc = cross_check(ck, config, "num_mel_bins", D->n_mels, what, reason, reason_len)) < 0)
		return rc;
	snprintf(what, sizeof(what), "tensor '%s' in %s (shape %s)", fc1_name, fc1_file,
		 shape_str(fc1, shape, sizeof(shape)));
	if ((rc = cross_check(ck, config, "encoder_ffn_dim", D->ffn, what, reason, reason_len)) < 0)
		return rc;
	snprintf(what, sizeof(what), "the checkpoint %s (tensors '%slayers.0..%u.*')",
		 mb_ckpt_path(ck), prefix, D->layers - 1);
	if ((rc = cross_check(ck, config, "encoder_layers", D->layers, what, reason, reason_len)) <
	    0)
		return rc;
	snprintf(what, sizeof(what), "whisper's encoder (tensor '%sembed_positions.weight')",
		 prefix);
	return cross_check(ck, config, "max_source_positions", T_POS, what, reason, reason_len);
}

/* ---- tensors and config.json ---- */

#define SPEC(s, init, ...)                                                                         \
	do {                                                                                       \
		if (mb_net_spec(s, init, __VA_ARGS__) < 0)                                         \
			return -ENOMEM;                                                            \
	} while (0)

static int
whisper_specs(const void *dims, struct mb_net_specs *s)
{
	const struct mb_whisper_dims *D = dims;
	const int64_t d = D->d, ff = D->ffn;
	const int ones = MB_WEIGHTS_INIT_ONES, def = MB_WEIGHTS_INIT_DEFAULT;
	const char *p = prefixes[0];

	SPEC(s, def, 3, d, (int64_t)D->n_mels, (int64_t)3, "%sconv1.weight", p);
	SPEC(s, def, 1, d, "%sconv1.bias", p);
	SPEC(s, def, 3, d, d, (int64_t)3, "%sconv2.weight", p);
	SPEC(s, def, 1, d, "%sconv2.bias", p);
	SPEC(s, def, 2, (int64_t)T_POS, d, "%sembed_positions.weight", p);
	for (uint32_t i = 0; i < D->layers; i++) {
		/* in whisper.c's layer order: K_W .. LN2_B */
		SPEC(s, def, 2, d, d, "%slayers.%u.self_attn.k_proj.weight", p, i);
		SPEC(s, def, 2, d, d, "%slayers.%u.self_attn.v_proj.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.self_attn.v_proj.bias", p, i);
		SPEC(s, def, 2, d, d, "%slayers.%u.self_attn.q_proj.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.self_attn.q_proj.bias", p, i);
		SPEC(s, def, 2, d, d, "%slayers.%u.self_attn.out_proj.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.self_attn.out_proj.bias", p, i);
		SPEC(s, ones, 1, d, "%slayers.%u.self_attn_layer_norm.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.self_attn_layer_norm.bias", p, i);
		SPEC(s, def, 2, ff, d, "%slayers.%u.fc1.weight", p, i);
		SPEC(s, def, 1, ff, "%slayers.%u.fc1.bias", p, i);
		SPEC(s, def, 2, d, ff, "%slayers.%u.fc2.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.fc2.bias", p, i);
		SPEC(s, ones, 1, d, "%slayers.%u.final_layer_norm.weight", p, i);
		SPEC(s, def, 1, d, "%slayers.%u.final_layer_norm.bias", p, i);
	}
	SPEC(s, ones, 1, d, "%slayer_norm.weight", p);
	SPEC(s, def, 1, d, "%slayer_norm.bias", p);
	return 0;
}

static int
whisper_config_json(const void *dims, char *buf, size_t len)
{
	const struct mb_whisper_dims *D = dims;
	int n = snprintf(buf, len,
			 "{\n  \"model_type\": \"whisper\",\n  \"d_model\": %u,\n"
			 "  \"encoder_layers\": %u,\n  \"encoder_attention_heads\": %u,\n"
			 "  \"encoder_ffn_dim\": %u,\n  \"num_mel_bins\": %u,\n"
			 "  \"max_source_positions\": %u\n}\n",
			 D->d, D->layers, D->heads, D->ffn, D->n_mels, T_POS);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
static int
whisper_preprocessor_json(const void *dims, char *buf, size_t len)
{
	const struct mb_whisper_dims *D = dims;
	int n = snprintf(buf, len,
			 "{\n  \"feature_extractor_type\": \"WhisperFeatureExtractor\",\n"
			 "  \"processor_class\": \"WhisperProcessor\",\n  \"feature_size\": %u,\n"
			 "  \"sampling_rate\": %d,\n  \"n_fft\": %d,\n  \"hop_length\": %d,\n"
			 "  \"chunk_length\": %d,\n  \"n_samples\": %d,\n"
			 "  \"nb_max_frames\": %d,\n  \"padding_side\": \"right\",\n"
			 "  \"padding_value\": 0.0,\n  \"return_attention_mask\": false\n}\n",
			 D->n_mels, MB_MEL_SAMPLE_RATE, MB_MEL_N_FFT, MB_MEL_HOP, WINDOW_S,
			 WINDOW_S * MB_MEL_SAMPLE_RATE, WINDOW_S * MB_MEL_SAMPLE_RATE / MB_MEL_HOP);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static void
whisper_describe(const void *dims, char *buf, size_t len)
{
	const struct mb_whisper_dims *D = dims;

	snprintf(buf, len, "d_model %u, %u layers, %u heads%s, encoder_ffn_dim %u, %u mel bins",
		 D->d, D->layers, D->heads,
		 D->heads_assumed ? " (assumed: no encoder_attention_heads in config.json, so "
				    "d_model / 64, the head size of every published Whisper)"
				  : "",
		 D->ffn, D->n_mels);
}

const struct mb_net_layout mb_whisper_layout = {
	.name = "whisper",
	.prefixes = prefixes,
	.anchor = "conv1.weight",
	.sizes = mb_whisper_sizes,
	.dims_size = sizeof(struct mb_whisper_dims),
	.preset = whisper_preset,
	.dims_from = whisper_dims_from,
	.specs = whisper_specs,
	.config_json = whisper_config_json,
	.preprocessor_json = whisper_preprocessor_json,
	.describe = whisper_describe,
};
