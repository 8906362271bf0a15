/*
 * clap.c: the CLAP audio tower on the CPU, as Hugging Face's ClapModel.get_audio_features()
 * (ClapAudioModelWithProjection + F.normalize) computes it for the unfused model, from a
 * published checkpoint (laion/clap-htsat-unfused) loaded as it is.
 *
 * One item is PCM 48 kHz mono, 25 ms .. 10 s (1200 .. 480000 samples; longer audio is cut
 * into 10 s windows by the service and their embeddings averaged, registry.c). The front
 * end is ClapFeatureExtractor's for the unfused checkpoints (preprocessor_config.json:
 * truncation "rand_trunc", padding "repeatpad"), for clips of at most 10 s:
 *
 *   repeatpad  a clip of n < 480000 samples is repeated floor(480000 / n) times, whole, and
 *              zero-padded to 480000 (np.tile, then np.pad); 480000 samples stay as they
 *              are; S16LE is x / 32768;
 *   STFT       centred frames (reflect padding of 512 at both ends), hop 480, n_fft 1024,
 *              periodic Hann window: 1001 frames; |rfft|^2 in double precision (a radix-2
 *              FFT here: the power spectrum spans 200 dB on pure tones, beyond float);
 *   mel        64 triangular filters over 50 .. 14000 Hz on the Slaney mel scale with
 *              Slaney area normalisation (HF's mel_filter_bank(norm="slaney",
 *              mel_scale="slaney"), as librosa), 10 log10(max(x, 1e-10)) dB (top_db none).
 *
 * Then ClapAudioEncoder (HTSAT, a Swin transformer over the spectrogram as an image):
 *
 *   batch_norm   BatchNorm2d over the mel bins with its running statistics (eps 1e-5);
 *   mel2img      bicubic interpolation (align_corners, A = -0.75, edges clamped) of the 1001
 *                frames to spec_size * freq_ratio = 1024 (freq_ratio = spec_size / mels =
 *                4), then the 4 time chunks of 256 frames stacked along frequency: a 256 x
 *                256 image, row = chunk * 64 + mel bin, column = frame in the chunk;
 *   patch_embed  conv2d 1 -> E, kernel patch_size, stride patch_stride (4, 4), then
 *                LayerNorm (eps 1e-5): 64 x 64 tokens;
 *   stages       Swin blocks (nn.c mb_nn_swin_forward: windows of window_size, shifted by
 *                window / 2 in every odd block unless the grid is one window, relative
 *                position bias, LayerNorm eps layer_norm_eps, exact GELU MLP) and a patch
 *                merging after every stage but the last (dims E, 2E, 4E, 8E);
 *   norm         LayerNorm (eps 1e-5), mean over the tokens: [hidden = 8E];
 *   projection   linear hidden -> P, ReLU, linear P -> P; L2-normalised (x / max(|x|,
 *                1e-12)): F32 [1 x P].
 *
 * Sizes come from the checkpoint: E and patch_size from patch_embed.proj, the mel bins from
 * batch_norm, stages and depths by counting blocks, heads per stage and window_size from the
 * relative position tables' shapes, the MLP width per stage from intermediate.dense, P from
 * audio_projection.linear1. config.json's audio_config (a ClapModel's) or the file itself (a
 * ClapAudioModelWithProjection's) gives spec_size (default 256), patch_stride ([4, 4]) and
 * layer_norm_eps (1e-5), and what else it says must agree with the tensors; the fused model
 * (enable_fusion) is refused. Presets: "tiny" (a test size, not published: E 32, depths
 * [2, 2, 2, 2]) and "clap-htsat-unfused" (E 96, depths [2, 2, 6, 2], heads [4, 8, 16, 32]).
 *
 * Tensor names: ClapModel and ClapAudioModelWithProjection save the same ones
 * ("audio_model.audio_encoder.*", "audio_projection.*"); the text tower of a ClapModel
 * checkpoint, the relative_position_index buffers and num_batches_tracked are not read.
 *
 * A batch: the front end and patch embedding item by item, then each block, merging, the
 * final norm and the projection once over the tokens of all items stacked (attention per
 * item, window and head). All in the worker's float scratch (net.c): no allocation here.
 *
 * The lifecycle is net.c's (net_internal.h); this file is the def. CPU only.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mb_models.h"
#include "net_internal.h"
#include "nn_internal.h"

#define SAMPLE_RATE MB_CLAP_SAMPLE_RATE
#define N_FFT 1024u
#define HALF (N_FFT / 2)     /* the complex FFT's size */
#define BINS (N_FFT / 2 + 1) /* 513 */
#define HOP 480u
#define F_MIN 50.0
#define F_MAX 14000.0
#define MAX_SAMPLES (MB_CLAP_MAX_SECONDS * SAMPLE_RATE) /* 480000 */
#define MIN_SAMPLES (SAMPLE_RATE / 40)			/* 25 ms */
#define FRAMES (1 + MAX_SAMPLES / HOP)			/* 1001 */
#define BN_EPS 1e-5
#define LN_EPS_TORCH 1e-5f /* patch_embed.norm, downsample.norm, norm: nn.LayerNorm's default */

#define MAX_STAGES 8u
#define MAX_DEPTH 64u
#define MAX_WINDOW 32u /* mb_nn_swin: windows of at most 1024 tokens */
#define MAX_MELS 256u

#define ENC "audio_model.audio_encoder."
#define PROJ "audio_projection."
#define ANCHOR ENC "patch_embed.proj.weight"

struct clap_dims {
	uint32_t embed;	 /* patch_embeds_hidden_size: stage 0's width */
	uint32_t stages; /* len(depths) */
	uint32_t depths[MAX_STAGES];
	uint32_t heads[MAX_STAGES];
	uint32_t ff[MAX_STAGES]; /* MLP width: mlp_ratio x the stage's width */
	uint32_t window;	 /* window_size */
	uint32_t patch, stride;	 /* patch_size, patch_stride (square) */
	uint32_t spec, mels;	 /* spec_size, num_mel_bins */
	uint32_t proj;		 /* projection_dim */
	float eps;		 /* layer_norm_eps: the blocks' LayerNorms */
};

/* tensors: the stem, 17 per block, 3 per merging, the final norm, the projection */
enum { PE_W, PE_B, PE_NG, PE_NB, BN_W, BN_B, BN_RM, BN_RV, N_STEM };
enum {
	B_LN1_G,
	B_LN1_B,
	B_TABLE,
	B_Q_W,
	B_Q_B,
	B_K_W,
	B_K_B,
	B_V_W,
	B_V_B,
	B_O_W,
	B_O_B,
	B_LN2_G,
	B_LN2_B,
	B_FC1_W,
	B_FC1_B,
	B_FC2_W,
	B_FC2_B,
	N_BLOCK
};
enum { M_RED, M_NG, M_NB, N_MERGE };
enum { H_NG, H_NB, H_L1_W, H_L1_B, H_L2_W, H_L2_B, N_HEAD };

static const char *const prefixes[] = {"", NULL};

static const char *const sizes[] = {"tiny", "clap-htsat-unfused", NULL};

/* in the order of sizes[] */
static const struct clap_dims presets[] = {
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

_Static_assert(sizeof(presets) / sizeof(presets[0]) == sizeof(sizes) / sizeof(sizes[0]) - 1,
	       "one preset per size name");

/* derived sizes */
static uint32_t
dim_of(const struct clap_dims *D, uint32_t s)
{
	return D->embed << s;
}

static uint32_t
hidden_of(const struct clap_dims *D)
{
	return dim_of(D, D->stages - 1);
}

static uint32_t
grid_of(const struct clap_dims *D)
{
	return D->spec / D->stride;
}

/* What a loaded clap keeps besides its tensors. */
struct clap_extra {
	/* the front end, in double precision */
	double window[N_FFT];		 /* periodic Hann */
	double tw_re[BINS], tw_im[BINS]; /* exp(-2 pi i k / N_FFT), k <= N_FFT / 2 */
	uint16_t bitrev[HALF];		 /* the complex FFT's input order */
	double *fb;			 /* [mels][BINS], non-zero in [lo, hi) */
	uint32_t *lo, *hi;		 /* [mels] */
	double *bn_scale, *bn_shift;	 /* [mels]: batch_norm folded */
	uint32_t t_out;			 /* frames after mel2img's interpolation */
	int32_t *src;			 /* [t_out]: the first of 4 source frames */
	double *coef;			 /* [t_out][4] bicubic weights */
	uint32_t ratio;			 /* freq_ratio */
	/* the encoder */
	float *bias;				 /* every block's expanded position bias */
	struct mb_nn_swin *blk;			 /* every block, stage by stage */
	const float *merge[MAX_STAGES][N_MERGE]; /* stage s's patch merging (s < stages - 1) */
	const float *head[N_HEAD];
};

static int
clap_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	uint32_t samples = mb_proto_media_length(hdr);

	if (hdr->sample_rate != SAMPLE_RATE) {
		snprintf(reason, reason_len,
			 "sample_rate: %u Hz, but clap needs %u Hz mono audio (resample first)",
			 hdr->sample_rate, SAMPLE_RATE);
		return -1;
	}
	if (samples < MIN_SAMPLES) {
		snprintf(
			reason, reason_len,
			"payload_len: %u samples of audio, clap needs at least %u (%u ms at %u Hz)",
			samples, MIN_SAMPLES, MIN_SAMPLES * 1000 / SAMPLE_RATE, SAMPLE_RATE);
		return -1;
	}
	if (samples > MAX_SAMPLES) {
		snprintf(reason, reason_len,
			 "payload_len: %.2f s of audio, clap takes at most %u s (%u samples at %u "
			 "Hz)",
			 (double)samples / SAMPLE_RATE, MB_CLAP_MAX_SECONDS, MAX_SAMPLES,
			 SAMPLE_RATE);
		return -1;
	}
	return 0;
}

static int
clap_preset(const char *size, void *dims)
{
	for (size_t i = 0; sizes[i] != NULL; i++)
		if (strcmp(sizes[i], size) == 0) {
			*(struct clap_dims *)dims = presets[i];
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
	if (!json_is_array(v) || json_array_size(v) > max)
		goto bad;
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e))
			goto bad;
		out[i] = json_integer_value(e);
	}
	*n_out = (uint32_t)json_array_size(v);
	return 0;
bad:
	snprintf(reason, reason_len, "%s: %s%s is not a list of at most %u integers", c->path,
		 c->apfx, key, max);
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
count_blocks(const struct mb_ckpt *ck, struct clap_dims *D, char *reason, size_t reason_len)
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
check_geometry(const struct clap_dims *D, const char *whence, char *reason, size_t reason_len)
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
	grid = grid_of(D);
	if (D->window < 1 || D->window > MAX_WINDOW) {
		snprintf(reason, reason_len, "%s: window_size %u, expected 1..%u", whence,
			 D->window, MAX_WINDOW);
		return -EINVAL;
	}
	for (uint32_t s = 0; s < D->stages; s++) {
		uint32_t res = grid >> s, d = dim_of(D, s);

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
dims_from_tensors(const struct mb_ckpt *ck, struct clap_dims *D, char *reason, size_t reason_len)
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
		uint32_t d = dim_of(D, s);

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
	if (t->ndim != 2 || t->shape[1] != hidden_of(D) || t->shape[0] < 1 || t->shape[0] > 65535) {
		fmt_shape(t, shape, sizeof(shape));
		snprintf(reason, reason_len,
			 "%s: tensor '" PROJ "linear1.weight': shape %s, expected [projection_dim, "
			 "%u] (hidden_size %u = patch_embeds_hidden_size %u x 2^%u; "
			 "projection_dim <= 65535)",
			 file, shape, hidden_of(D), hidden_of(D), D->embed, D->stages - 1);
		return -EINVAL;
	}
	D->proj = (uint32_t)t->shape[0];
	return 0;
}

/* What config.json gives (spec_size, patch_stride, eps) and what it must agree with. */
static int
dims_from_config(const struct mb_ckpt *ck, const struct clap_config *c, struct clap_dims *D,
		 char *reason, size_t reason_len)
{
	char what[512];
	int64_t v[MAX_STAGES + 1];
	uint32_t n, hidden = hidden_of(D);
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
			if (!json_is_number(ratio) || (uint32_t)(r * dim_of(D, s)) != D->ff[s]) {
				snprintf(reason, reason_len,
					 "%s: %smlp_ratio is %g, but tensor '" ENC
					 "layers.%u.blocks.0.intermediate.dense.weight' in %s has "
					 "%u = %g x %u",
					 c->path, c->apfx, r, s, mb_ckpt_path(ck), D->ff[s],
					 (double)D->ff[s] / dim_of(D, s), dim_of(D, s));
				return -EINVAL;
			}
	}
	return 0;
}

static int
clap_dims_from(const struct mb_ckpt *ck, const char *prefix, void *dims_out, char *reason,
	       size_t reason_len)
{
	struct clap_dims *D = dims_out;
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
	if (rc < 0)
		return rc;
	return check_geometry(D, whence, reason, reason_len);
}

/* ---- tensors and config.json ---- */

#define SPEC(s, init, ...)                                                                         \
	do {                                                                                       \
		if (mb_net_spec(s, init, __VA_ARGS__) < 0)                                         \
			return -ENOMEM;                                                            \
	} while (0)

/* The order of the tensors here is the order clap_init() reads them in. */
static int
clap_specs(const void *dims, struct mb_net_specs *s)
{
	const struct clap_dims *D = dims;
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
		const int64_t d = dim_of(D, st), ff = D->ff[st], h = D->heads[st];

		for (uint32_t b = 0; b < D->depths[st]; b++) {
			/* in B_* order */
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
		if (st + 1 < D->stages) { /* in M_* order */
			SPEC(s, def, 2, 2 * d, 4 * d, ENC "layers.%u.downsample.reduction.weight",
			     st);
			SPEC(s, ones, 1, 4 * d, ENC "layers.%u.downsample.norm.weight", st);
			SPEC(s, def, 1, 4 * d, ENC "layers.%u.downsample.norm.bias", st);
		}
	}
	/* in H_* order */
	SPEC(s, ones, 1, (int64_t)hidden_of(D), ENC "norm.weight");
	SPEC(s, def, 1, (int64_t)hidden_of(D), ENC "norm.bias");
	SPEC(s, def, 2, p, (int64_t)hidden_of(D), PROJ "linear1.weight");
	SPEC(s, def, 1, p, PROJ "linear1.bias");
	SPEC(s, def, 2, p, p, PROJ "linear2.weight");
	SPEC(s, def, 1, p, PROJ "linear2.bias");
	return 0;
}

static int
clap_config_json(const void *dims, char *buf, size_t len)
{
	const struct clap_dims *D = dims;
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
		     D->mels, D->embed, hidden_of(D), D->proj, (double)D->ff[0] / D->embed,
		     (double)D->eps);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* ---- load-time state ---- */

static void
clap_fini(struct mb_net *net)
{
	struct clap_extra *x = net->extra;

	if (x == NULL)
		return;
	free(x->fb);
	free(x->lo);
	free(x->hi);
	free(x->bn_scale);
	free(x->bn_shift);
	free(x->src);
	free(x->coef);
	free(x->bias);
	free(x->blk);
	free(x);
	net->extra = NULL;
}

/* Slaney's mel scale (librosa's and HF's mel_scale="slaney"). */
static double
hz_to_mel(double f)
{
	return f < 1000.0 ? 3.0 * f / 200.0 : 15.0 + log(f / 1000.0) * 27.0 / log(6.4);
}

static double
mel_to_hz(double m)
{
	return m < 15.0 ? 200.0 * m / 3.0 : 1000.0 * exp(log(6.4) / 27.0 * (m - 15.0));
}

/* HF's mel_filter_bank(BINS, mels, 50, 14000, 48000, norm="slaney", mel_scale="slaney") */
static void
build_filters(struct clap_extra *x, uint32_t mels)
{
	const double lo = hz_to_mel(F_MIN), hi = hz_to_mel(F_MAX);
	double *f = malloc(sizeof(double) * (mels + 2));

	for (uint32_t i = 0; i < mels + 2; i++)
		f[i] = mel_to_hz(i == mels + 1 ? hi : lo + (hi - lo) * i / (mels + 1));
	for (uint32_t m = 0; m < mels; m++) {
		double enorm = 2.0 / (f[m + 2] - f[m]);

		x->lo[m] = BINS;
		x->hi[m] = 0;
		for (uint32_t k = 0; k < BINS; k++) {
			double fk = (double)k * (SAMPLE_RATE / 2) / (BINS - 1);
			double down = (fk - f[m]) / (f[m + 1] - f[m]);
			double up = (f[m + 2] - fk) / (f[m + 2] - f[m + 1]);
			double w = fmax(0.0, fmin(down, up)) * enorm;

			x->fb[(size_t)m * BINS + k] = w;
			if (w > 0.0) {
				if (k < x->lo[m])
					x->lo[m] = k;
				x->hi[m] = k + 1;
			}
		}
		if (x->lo[m] > x->hi[m])
			x->lo[m] = x->hi[m] = 0;
	}
	free(f);
}

/* PyTorch's bicubic weights (A = -0.75) of offset @p t in [0, 1). */
static void
cubic_weights(double t, double *c)
{
	const double a = -0.75;
	double x;

	x = t + 1.0; /* 1 < x < 2 */
	c[0] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
	x = t; /* |x| <= 1 */
	c[1] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
	x = 1.0 - t;
	c[2] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
	x = 2.0 - t;
	c[3] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
}

static int
init_front_end(struct mb_net *net, struct clap_extra *x)
{
	const struct clap_dims *D = net->dims;
	float *const *w = net->w;
	const uint32_t mels = D->mels;
	uint32_t bits = 0;

	for (uint32_t n = 0; n < N_FFT; n++)
		x->window[n] = 0.5 - 0.5 * cos(2.0 * M_PI * n / N_FFT);
	for (uint32_t k = 0; k < BINS; k++) {
		x->tw_re[k] = cos(2.0 * M_PI * k / N_FFT);
		x->tw_im[k] = -sin(2.0 * M_PI * k / N_FFT);
	}
	while ((1u << bits) < HALF)
		bits++;
	for (uint32_t i = 0; i < HALF; i++) {
		uint32_t r = 0;

		for (uint32_t b = 0; b < bits; b++)
			r |= ((i >> b) & 1u) << (bits - 1 - b);
		x->bitrev[i] = (uint16_t)r;
	}
	x->fb = calloc((size_t)mels * BINS, sizeof(double));
	x->lo = calloc(mels, sizeof(uint32_t));
	x->hi = calloc(mels, sizeof(uint32_t));
	x->bn_scale = calloc(mels, sizeof(double));
	x->bn_shift = calloc(mels, sizeof(double));
	x->ratio = D->spec / D->mels;
	x->t_out = D->spec * x->ratio;
	x->src = calloc(x->t_out, sizeof(int32_t));
	x->coef = calloc((size_t)x->t_out * 4, sizeof(double));
	if (x->fb == NULL || x->lo == NULL || x->hi == NULL || x->bn_scale == NULL ||
	    x->bn_shift == NULL || x->src == NULL || x->coef == NULL)
		return -ENOMEM;
	build_filters(x, mels);
	/* (x - mean) / sqrt(var + eps) * weight + bias = x * scale + shift */
	for (uint32_t m = 0; m < mels; m++) {
		double scale = (double)w[BN_W][m] / sqrt((double)w[BN_RV][m] + BN_EPS);

		x->bn_scale[m] = scale;
		x->bn_shift[m] = (double)w[BN_B][m] - (double)w[BN_RM][m] * scale;
	}
	/* interpolate(..., mode="bicubic", align_corners=True) from FRAMES to t_out frames
	 * (t_out == FRAMES: the identity, as HF then skips it) */
	for (uint32_t t = 0; t < x->t_out; t++) {
		double *c = x->coef + (size_t)t * 4;

		if (x->t_out == FRAMES) {
			x->src[t] = (int32_t)t - 1;
			c[0] = c[2] = c[3] = 0.0;
			c[1] = 1.0;
		} else {
			double real = (double)(FRAMES - 1) / (x->t_out - 1) * t;
			double fl = floor(real);

			x->src[t] = (int32_t)fl - 1;
			cubic_weights(real - fl, c);
		}
	}
	return 0;
}

static int
clap_init(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	const struct clap_dims *D = net->dims;
	struct clap_extra *x;
	uint32_t blocks = 0, k = N_STEM, bi = 0;
	size_t bias_floats = 0, off = 0;

	(void)ck;
	for (uint32_t s = 0; s < D->stages; s++) {
		blocks += D->depths[s];
		bias_floats += (size_t)D->depths[s] * D->heads[s] * D->window * D->window *
			       D->window * D->window;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		goto oom;
	net->extra = x;
	x->blk = calloc(blocks, sizeof(*x->blk));
	x->bias = malloc(sizeof(float) * bias_floats);
	if (x->blk == NULL || x->bias == NULL || init_front_end(net, x) < 0)
		goto oom;
	/* walk the tensors in clap_specs() order */
	for (uint32_t s = 0; s < D->stages; s++) {
		const uint32_t d = dim_of(D, s), res = grid_of(D) >> s;

		for (uint32_t b = 0; b < D->depths[s]; b++, bi++, k += N_BLOCK) {
			float *const *w = net->w + k;
			float *bias = x->bias + off;

			mb_nn_swin_bias(w[B_TABLE], D->window, D->heads[s], bias);
			off += (size_t)D->heads[s] * D->window * D->window * D->window * D->window;
			x->blk[bi] = (struct mb_nn_swin){
				.d = d,
				.heads = D->heads[s],
				.ff = D->ff[s],
				.h = res,
				.w = res,
				.window = D->window,
				/* HF: no shift when the grid is a single window */
				.shift = b % 2 == 1 && res > D->window ? D->window / 2 : 0,
				.eps = D->eps,
				.ln1_g = w[B_LN1_G],
				.ln1_b = w[B_LN1_B],
				.wq = w[B_Q_W],
				.bq = w[B_Q_B],
				.wk = w[B_K_W],
				.bk = w[B_K_B],
				.wv = w[B_V_W],
				.bv = w[B_V_B],
				.wo = w[B_O_W],
				.bo = w[B_O_B],
				.bias = bias,
				.ln2_g = w[B_LN2_G],
				.ln2_b = w[B_LN2_B],
				.w1 = w[B_FC1_W],
				.b1 = w[B_FC1_B],
				.w2 = w[B_FC2_W],
				.b2 = w[B_FC2_B],
			};
		}
		if (s + 1 < D->stages) {
			for (uint32_t j = 0; j < N_MERGE; j++)
				x->merge[s][j] = net->w[k + j];
			k += N_MERGE;
		}
	}
	for (uint32_t j = 0; j < N_HEAD; j++)
		x->head[j] = net->w[k + j];
	if (k + N_HEAD != net->specs.n) { /* clap_specs() and this walk disagree: a bug */
		fprintf(stderr, "clap: %u tensors walked, %u listed\n", k + N_HEAD, net->specs.n);
		abort();
	}
	return 0;
oom:
	snprintf(reason, reason_len, "out of memory");
	return -ENOMEM;
}

/* ---- run ---- */

static uint32_t
clap_shape(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows, uint16_t *cols,
	   uint16_t *type)
{
	const struct clap_dims *D = net->dims;
	uint32_t n = mb_proto_media_length(it->hdr);

	if ((it->hdr->media != MB_MEDIA_PCM_S16LE && it->hdr->media != MB_MEDIA_PCM_F32LE) ||
	    it->hdr->sample_rate != SAMPLE_RATE || n < MIN_SAMPLES || n > MAX_SAMPLES)
		return 0;
	*rows = 1;
	*cols = (uint16_t)D->proj;
	*type = MB_RESULT_F32;
	return D->proj * (uint32_t)sizeof(float);
}

/* @p floats rounded up to whole 64-byte lines: every part of the scratch stays aligned */
static size_t
lines(size_t floats)
{
	return (floats + 15) & ~(size_t)15;
}

/*
 * The scratch of a batch of @p n: the tokens of every item (the widest: stage 0's), then
 * one region used first by the front end (one item at a time), then by the blocks and
 * mergings, then by the head.
 */
struct layout {
	size_t act;				  /* n x grid^2 x embed */
	size_t padded, fft, mel, img, col, front; /* the front end's parts */
	size_t blocks;				  /* the largest block's or merging's */
	size_t head;				  /* norm, pooled, projection */
};

static void
layout_of(const struct mb_net *net, uint32_t n, struct layout *L)
{
	const struct clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	const size_t g = grid_of(D), hid = hidden_of(D), last = g >> (D->stages - 1);
	uint32_t bi = 0;

	L->act = lines((size_t)n * g * g * D->embed);
	L->padded = lines(MAX_SAMPLES + N_FFT);
	L->fft = lines(2 * (2 * HALF + BINS)); /* doubles: z[HALF] complex, power[BINS] */
	L->mel = lines((size_t)FRAMES * D->mels);
	L->img = lines((size_t)D->spec * D->spec);
	L->col = lines(g * g * D->patch * D->patch);
	L->front = L->padded + L->fft + L->mel + L->img + L->col;
	L->blocks = 0;
	for (uint32_t s = 0; s < D->stages; s++) {
		size_t need = mb_nn_swin_scratch(&x->blk[bi], n);

		if (need > L->blocks)
			L->blocks = need;
		bi += D->depths[s];
		/* a merging: tmp of n x res^2 x width */
		need = (size_t)n * (g >> s) * (g >> s) * dim_of(D, s);
		if (need > L->blocks)
			L->blocks = need;
	}
	L->blocks = lines(L->blocks);
	L->head = lines((size_t)n * last * last * hid) + lines((size_t)n * hid) +
		  2 * lines((size_t)n * D->proj);
}

static size_t
clap_cpu_scratch(const struct mb_net *net, uint32_t n)
{
	struct layout L;
	size_t region;

	layout_of(net, n, &L);
	region = L.front > L.blocks ? L.front : L.blocks;
	return L.act + (region > L.head ? region : L.head);
}

/* In place: the DFT of the HALF complex values (re, im interleaved) in @p z. */
static void
fft_half(const struct clap_extra *x, double *z)
{
	for (uint32_t i = 0; i < HALF; i++) {
		uint32_t j = x->bitrev[i];

		if (j > i) {
			double r = z[2 * i], m = z[2 * i + 1];

			z[2 * i] = z[2 * j];
			z[2 * i + 1] = z[2 * j + 1];
			z[2 * j] = r;
			z[2 * j + 1] = m;
		}
	}
	for (uint32_t len = 2; len <= HALF; len *= 2) {
		const uint32_t step = N_FFT / len; /* exp(-2 pi i j / len) = tw[j * step] */

		for (uint32_t i = 0; i < HALF; i += len)
			for (uint32_t j = 0; j < len / 2; j++) {
				double wr = x->tw_re[j * step], wi = x->tw_im[j * step];
				double *a = z + 2 * (i + j), *b = z + 2 * (i + j + len / 2);
				double br = b[0] * wr - b[1] * wi, bim = b[0] * wi + b[1] * wr;

				b[0] = a[0] - br;
				b[1] = a[1] - bim;
				a[0] += br;
				a[1] += bim;
			}
	}
}

/* |rfft(frame * window)|^2 of the N_FFT samples at @p in into @p power [BINS]. */
static void
power_spectrum(const struct clap_extra *x, const float *in, double *z, double *power)
{
	for (uint32_t n = 0; n < HALF; n++) {
		z[2 * n] = in[2 * n] * x->window[2 * n];
		z[2 * n + 1] = in[2 * n + 1] * x->window[2 * n + 1];
	}
	fft_half(x, z);
	/* the real DFT from the half-size complex one: X[k] = E[k] + W^k O[k] */
	for (uint32_t k = 0; k <= HALF; k++) {
		uint32_t a = k % HALF, b = (HALF - k) % HALF;
		double ar = z[2 * a], ai = z[2 * a + 1], br = z[2 * b], bi = -z[2 * b + 1];
		double er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
		double orr = 0.5 * (ai - bi), oi = -0.5 * (ar - br); /* (A - B) / 2i */
		double xr = er + x->tw_re[k] * orr - x->tw_im[k] * oi;
		double xi = ei + x->tw_re[k] * oi + x->tw_im[k] * orr;

		power[k] = xr * xr + xi * xi;
	}
}

/* One item's samples, repeat-padded to 10 s, reflect-padded by N_FFT / 2 into @p padded. */
static void
load_audio(const struct mb_model_item *it, float *padded)
{
	const uint32_t n = mb_proto_media_length(it->hdr), pad = N_FFT / 2;
	float *a = padded + pad;
	uint32_t filled;

	if (it->hdr->media == MB_MEDIA_PCM_S16LE) {
		const uint8_t *p = it->payload;

		for (uint32_t i = 0; i < n; i++)
			a[i] = (float)(int16_t)(p[2 * i] | p[2 * i + 1] << 8) / 32768.0f;
	} else {
		memcpy(a, it->payload, sizeof(float) * n);
	}
	/* repeatpad: floor(MAX / n) whole copies (np.tile), then zeros */
	filled = n * (MAX_SAMPLES / n);
	for (uint32_t i = n; i < filled; i += n)
		memcpy(a + i, a, sizeof(float) * n);
	memset(a + filled, 0, sizeof(float) * (MAX_SAMPLES - filled));
	for (uint32_t i = 1; i <= pad; i++) { /* numpy's "reflect" */
		a[-(int32_t)i] = a[i];
		a[MAX_SAMPLES - 1 + i] = a[MAX_SAMPLES - 1 - i];
	}
}

/*
 * The front end and patch embedding of one item into @p tokens [grid^2 x embed], using
 * @p region (the layout's front end parts).
 */
static void
embed_item(const struct mb_net *net, const struct layout *L, float *region,
	   const struct mb_model_item *it, float *tokens)
{
	const struct clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	float *const *w = net->w;
	float *padded = region, *mel = padded + L->padded + L->fft, *img = mel + L->mel;
	float *col = img + L->img;
	double *z = (double *)(padded + L->padded), *power = z + 2 * HALF;
	const uint32_t mels = D->mels, g = grid_of(D), P = D->patch, S = D->stride;
	const int32_t pad = (int32_t)(D->patch - D->stride) / 2;

	/* log-mel in dB, batch-normalised: mel [FRAMES x mels] */
	load_audio(it, padded);
	for (uint32_t t = 0; t < FRAMES; t++) {
		float *row = mel + (size_t)t * mels;

		power_spectrum(x, padded + (size_t)t * HOP, z, power);
		for (uint32_t m = 0; m < mels; m++) {
			const double *fb = x->fb + (size_t)m * BINS;
			double acc = 0.0;

			for (uint32_t k = x->lo[m]; k < x->hi[m]; k++)
				acc += fb[k] * power[k];
			acc = 10.0 * log10(fmax(acc, 1e-10));
			row[m] = (float)(acc * x->bn_scale[m] + x->bn_shift[m]);
		}
	}
	/* mel2img: frames interpolated to t_out, chunks of spec frames stacked */
	for (uint32_t t = 0; t < x->t_out; t++) {
		const double *c = x->coef + (size_t)t * 4;
		const uint32_t chunk = t / D->spec, cx = t % D->spec;
		const float *src[4];

		for (int j = 0; j < 4; j++) {
			int32_t f = x->src[t] + j;

			f = f < 0 ? 0 : f > (int32_t)FRAMES - 1 ? (int32_t)FRAMES - 1 : f;
			src[j] = mel + (size_t)f * mels;
		}
		for (uint32_t m = 0; m < mels; m++)
			img[(size_t)(chunk * mels + m) * D->spec + cx] =
				(float)(c[0] * src[0][m] + c[1] * src[1][m] + c[2] * src[2][m] +
					c[3] * src[3][m]);
	}
	/* patch_embed: im2col [g^2 x P^2], one GEMM, LayerNorm */
	for (uint32_t oy = 0; oy < g; oy++)
		for (uint32_t ox = 0; ox < g; ox++) {
			float *row = col + ((size_t)oy * g + ox) * P * P;

			for (uint32_t ky = 0; ky < P; ky++) {
				int32_t y = (int32_t)(oy * S + ky) - pad;

				for (uint32_t kx = 0; kx < P; kx++) {
					int32_t xx = (int32_t)(ox * S + kx) - pad;

					row[ky * P + kx] = y < 0 || y >= (int32_t)D->spec ||
									   xx < 0 ||
									   xx >= (int32_t)D->spec
								   ? 0.0f
								   : img[(size_t)y * D->spec + xx];
				}
			}
		}
	mb_nn_linear(col, g * g, P * P, w[PE_W], w[PE_B], D->embed, tokens);
	mb_nn_layernorm(tokens, g * g, D->embed, w[PE_NG], w[PE_NB], LN_EPS_TORCH, tokens);
}

static int
clap_cpu_run(const struct mb_net *net, float *scratch, struct mb_model_item *const *items,
	     uint32_t n)
{
	const struct clap_dims *D = net->dims;
	const struct clap_extra *x = net->extra;
	const uint32_t g = grid_of(D), hid = hidden_of(D), P = D->proj;
	float *act = scratch, *region;
	float *normed, *pooled, *h1, *h2;
	uint32_t bi = 0, last;
	struct layout L;

	layout_of(net, n, &L);
	region = act + L.act;
	for (uint32_t i = 0; i < n; i++)
		embed_item(net, &L, region, items[i], act + (size_t)i * g * g * D->embed);
	for (uint32_t s = 0; s < D->stages; s++) {
		const uint32_t res = g >> s, d = dim_of(D, s);

		for (uint32_t b = 0; b < D->depths[s]; b++)
			mb_nn_swin_forward(&x->blk[bi++], act, n, region);
		if (s + 1 < D->stages)
			mb_nn_patch_merge(act, n, res, res, d, x->merge[s][M_NG], x->merge[s][M_NB],
					  LN_EPS_TORCH, x->merge[s][M_RED], region, act);
	}
	/* norm, the mean over the tokens, the projection, L2 */
	last = g >> (D->stages - 1);
	normed = region;
	pooled = normed + lines((size_t)n * last * last * hid);
	h1 = pooled + lines((size_t)n * hid);
	h2 = h1 + lines((size_t)n * P);
	mb_nn_layernorm(act, n * last * last, hid, x->head[H_NG], x->head[H_NB], LN_EPS_TORCH,
			normed);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t c = 0; c < hid; c++) {
			const float *col = normed + (size_t)i * last * last * hid + c;
			double acc = 0.0;

			for (uint32_t t = 0; t < last * last; t++)
				acc += col[(size_t)t * hid];
			pooled[(size_t)i * hid + c] = (float)(acc / (last * last));
		}
	mb_nn_linear(pooled, n, hid, x->head[H_L1_W], x->head[H_L1_B], P, h1);
	for (size_t j = 0; j < (size_t)n * P; j++)
		h1[j] = h1[j] > 0.0f ? h1[j] : 0.0f;
	mb_nn_linear(h1, n, P, x->head[H_L2_W], x->head[H_L2_B], P, h2);
	for (uint32_t i = 0; i < n; i++) {
		const float *e = h2 + (size_t)i * P;
		float *out = items[i]->result;
		double norm = 0.0;
		float scale;

		for (uint32_t j = 0; j < P; j++)
			norm += (double)e[j] * e[j];
		scale = (float)(1.0 / fmax(sqrt(norm), 1e-12));
		for (uint32_t j = 0; j < P; j++)
			out[j] = e[j] * scale;
	}
	return 0;
}

const struct mb_net_def mb_clap_net = {
	.name = "clap",
	.prefixes = prefixes,
	.anchor = ANCHOR,
	.sizes = sizes,
	.dims_size = sizeof(struct clap_dims),
	.preset = clap_preset,
	.dims_from = clap_dims_from,
	.specs = clap_specs,
	.config_json = clap_config_json,
	.init = clap_init,
	.fini = clap_fini,
	.shape = clap_shape,
	.cpu_scratch = clap_cpu_scratch,
	.cpu_run = clap_cpu_run,
};

static int
clap_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	return mb_net_load(&mb_clap_net, args, state, reason, reason_len);
}

const struct mb_model_desc mb_model_clap = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "clap",
	.summary = "CLAP audio embedding (HTSAT): 48 kHz mono audio (<= 10 s) -> [1 x 512]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE),
	.devices = MB_MODEL_ON_CPU,
	.base_units = 2,
	.item_units_per_second = 0.1,
	.max_batch = 16,
	.max_delay_us = 5000,
	.queue_limit = 1024,
	.default_timeout_ms = 30000,
	.check = clap_check,
	.load = clap_load,
	.worker_init = mb_net_worker_init,
	.worker_fini = mb_net_worker_fini,
	.run = mb_net_run,
	.unload = mb_net_unload,
};
