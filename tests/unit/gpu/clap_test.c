/*
 * clap_test.c: the clap model (gpu/models/clap.c), CLAP's audio tower (HF
 * ClapAudioModelWithProjection + the L2 normalisation of ClapModel.get_audio_features()) on
 * the CPU, through its model.h interface, with a "tiny" checkpoint written here in the
 * published layout (model.safetensors + config.json with audio_config), its BatchNorm
 * statistics set to values like the published ones (mean about -45 dB, variance about 300)
 * so that the network sees inputs of the usual scale.
 *
 * The reference is tests/unit/gpu/ref/clap_ref.py: numpy + PyTorch in float64, written from
 * the published code (HF's ClapFeatureExtractor for the unfused checkpoints and
 * modeling_clap.py), run once over every clip. It needs python3 with torch and numpy
 * (MB_PYTHON names the interpreter; default /usr/bin/python3): without them the test fails,
 * saying so. Error measure: max |out - ref| / max |ref| over the [512] embedding; at most
 * 1e-4.
 *
 * Also: check() (48 kHz, 1200 .. 480000 samples); the presets and their config.json; a
 * batch equals its items alone (1e-5 relative: the blocks run over the batch's stacked
 * tokens) and repeats bit for bit; S16LE and F32LE of the same samples give the same
 * result; load errors name the file, tensor or key, expected and found (missing, misshaped,
 * config.json against the tensors, the fused model, a foreign checkpoint); the published
 * ClapModel layout with its text tower and I64 buffers, a ClapAudioModelWithProjection
 * config.json, no config.json, a sharded copy and an F16 copy (1e-2 relative) load and
 * agree. (This covers what tests/unit/gpu/networks_test.c checked of the old clap.)
 */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_ckpt.h"
#include "mb_gpu_probe.h"
#include "mb_model_rt.h"
#include "mb_models.h"
#include "mb_test.h"
#include "models/net_internal.h"

#define SEED 4343
#define RATE 48000
#define DIM 512 /* projection_dim of both presets */
#define ENC "audio_model.audio_encoder."

static char g_dir[64];
static char g_ckpt[128]; /* the F32 "tiny" checkpoint with its config.json */
static char g_config[4096];
static struct mb_net_specs g_specs;
static const struct mb_net_def *g_net; /* clap's (mb_net_defs[]) */

/* ---- helpers ---- */

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

static const char *
path_in(const char *name)
{
	static char path[8][256];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, sizeof(path[0]), "%s/%s", g_dir, name);
	return p;
}

static int
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(data, 1, len, f) == len;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double
seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* config.json of "tiny" edited by @p edit (NULL: as it is), as a new string (free()). */
static char *
config_edit(void (*edit)(json_t *root))
{
	json_error_t jerr;
	json_t *root = json_loads(g_config, 0, &jerr);
	char *s;

	if (root == NULL)
		return NULL;
	if (edit != NULL)
		edit(root);
	s = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return s;
}

static json_t *
audio_of(json_t *root)
{
	return json_object_get(root, "audio_config");
}

struct loaded {
	void *state, *worker;
};

static int
load(struct loaded *l, const char *path, char *reason, size_t len)
{
	struct mb_model_load_args args = {.device = -1, .numa_node = -1, .weights_path = path};
	int rc;

	l->state = l->worker = NULL;
	rc = mb_model_clap.load(&args, &l->state, reason, len);
	if (rc == 0 && (rc = mb_model_clap.worker_init(l->state, -1, &l->worker)) < 0)
		mb_model_clap.unload(l->state);
	return rc;
}

static void
unload(struct loaded *l)
{
	mb_model_clap.worker_fini(l->state, l->worker);
	mb_model_clap.unload(l->state);
}

static int
run(struct loaded *l, struct mb_model_item *items, uint32_t n)
{
	struct mb_model_batch b = {
		.items = items,
		.n_items = n,
		.device = -1,
		.worker = l->worker,
		.alloc_result = alloc_result,
	};

	return mb_model_clap.run(l->state, &b);
}

/* ---- the checkpoint ---- */

/* The values of spec @p s: the placeholders, BatchNorm's statistics like the published. */
static float *
tensor_data(const struct mb_weights_spec *s)
{
	uint64_t numel = mb_weights_spec_numel(s);
	float *v = malloc(sizeof(float) * (numel ? numel : 1));

	mb_weights_generate_data(s, SEED, v);
	if (strcmp(s->name, ENC "batch_norm.running_mean") == 0)
		for (uint64_t i = 0; i < numel; i++)
			v[i] = (float)(-45.0 + 8.0 * sin(0.37 * (double)i));
	if (strcmp(s->name, ENC "batch_norm.running_var") == 0)
		for (uint64_t i = 0; i < numel; i++)
			v[i] = (float)(300.0 + 120.0 * cos(0.21 * (double)i));
	return v;
}

/*
 * A copy of "tiny" in @p dir: without tensor @p drop, tensor @p reshape given @p shape
 * (values 0.01), plus an F32 tensor @p extra of shape [4], stored as @p dtype (NULL: F32)
 * in shards of @p shard_bytes (0: one file), @p config as config.json (NULL: none).
 */
struct variant {
	const char *drop, *reshape, *extra;
	uint32_t ndim;
	int64_t shape[4];
	const char *dtype;
	uint64_t shard_bytes;
	const char *config;
	const char *preprocessor; /* preprocessor_config.json (NULL: none) */
};

static int
write_variant(const char *dir, const struct variant *v)
{
	struct mb_weights_entry *e = calloc(g_specs.n + 1, sizeof(*e));
	static const float extra[4] = {1, 2, 3, 4};
	char err[512], path[256];
	uint32_t n = 0;
	int rc;

	for (uint32_t i = 0; i < g_specs.n; i++) {
		const struct mb_weights_spec *s = &g_specs.v[i];
		uint64_t numel = 1;

		if (v->drop != NULL && strcmp(s->name, v->drop) == 0)
			continue;
		e[n].name = s->name;
		e[n].ndim = s->ndim;
		memcpy(e[n].shape, s->shape, sizeof(e[n].shape));
		if (v->reshape != NULL && strcmp(s->name, v->reshape) == 0) {
			float *d;

			e[n].ndim = v->ndim;
			memset(e[n].shape, 0, sizeof(e[n].shape));
			memcpy(e[n].shape, v->shape, sizeof(v->shape));
			for (uint32_t k = 0; k < v->ndim; k++)
				numel *= (uint64_t)v->shape[k];
			d = malloc(sizeof(float) * numel);
			for (uint64_t k = 0; k < numel; k++)
				d[k] = 0.01f;
			e[n++].data = d;
			continue;
		}
		e[n++].data = tensor_data(s);
	}
	if (v->extra != NULL)
		e[n++] = (struct mb_weights_entry){
			.name = v->extra, .ndim = 1, .shape = {4}, .data = extra};
	rc = mb_ckpt_write(dir, e, n, v->dtype ? v->dtype : "F32", v->shard_bytes, err,
			   sizeof(err));
	for (uint32_t i = 0; i < n; i++)
		if (e[i].data != extra)
			free((void *)e[i].data);
	free(e);
	if (rc < 0) {
		fprintf(stderr, "\n    %s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (v->config != NULL && write_file(path, v->config, strlen(v->config)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/preprocessor_config.json", dir);
	if (v->preprocessor != NULL &&
	    write_file(path, v->preprocessor, strlen(v->preprocessor)) < 0)
		return -1;
	return 0;
}

/*
 * The published ClapModel layout, written by hand as PyTorch's safetensors would hold it:
 * every audio tensor, a text tower's (a few), logit scales, and the I64 buffers
 * (batch_norm.num_batches_tracked, relative_position_index of every block).
 */
static int
write_published(const char *dir)
{
	struct blob {
		char name[160];
		const char *dtype;
		uint32_t ndim;
		int64_t shape[4];
		void *data;
		size_t bytes;
	} *t = calloc(2 * g_specs.n + 8, sizeof(*t));
	size_t n = 0, off = 0, hlen;
	char *header = malloc(1 << 20), path[256];
	FILE *f;
	int hoff;

	for (uint32_t i = 0; i < g_specs.n; i++) {
		const struct mb_weights_spec *s = &g_specs.v[i];
		const char *sfx = ".attention.self.relative_position_bias_table";
		size_t len = strlen(s->name);

		snprintf(t[n].name, sizeof(t[n].name), "%s", s->name);
		t[n].dtype = "F32";
		t[n].ndim = s->ndim;
		memcpy(t[n].shape, s->shape, sizeof(t[n].shape));
		t[n].bytes = 4 * mb_weights_spec_numel(s);
		t[n++].data = tensor_data(s);
		if (len > strlen(sfx) && strcmp(s->name + len - strlen(sfx), sfx) == 0) {
			int64_t w = (int64_t)sqrt((double)s->shape[0]) / 2 + 1, nt = w * w;
			int64_t *idx = calloc((size_t)(nt * nt), sizeof(int64_t));

			snprintf(t[n].name, sizeof(t[n].name),
				 "%.*s.attention.self."
				 "relative_position_index",
				 (int)(len - strlen(sfx)), s->name);
			t[n].dtype = "I64";
			t[n].ndim = 2;
			t[n].shape[0] = t[n].shape[1] = nt;
			t[n].bytes = 8 * (size_t)(nt * nt);
			t[n++].data = idx;
		}
	}
	{
		int64_t *tracked = calloc(1, 8);
		float *scale = malloc(4), *emb = malloc(4 * 8 * 4);

		*tracked = 12345;
		*scale = 2.65926f;
		for (int i = 0; i < 32; i++)
			emb[i] = (float)i;
		t[n] = (struct blob){
			ENC "batch_norm.num_batches_tracked", "I64", 0, {0}, tracked, 8};
		n++;
		t[n] = (struct blob){"logit_scale_a", "F32", 0, {0}, scale, 4};
		n++;
		t[n] = (struct blob){"text_model.embeddings.word_embeddings.weight",
				     "F32",
				     2,
				     {8, 4},
				     emb,
				     4 * 32};
		n++;
	}
	hoff = snprintf(header, 1 << 20, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (size_t i = 0; i < n; i++) {
		hoff += snprintf(header + hoff, (size_t)(1 << 20) - (size_t)hoff,
				 ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
		for (uint32_t k = 0; k < t[i].ndim; k++)
			hoff += snprintf(header + hoff, (size_t)(1 << 20) - (size_t)hoff, "%s%lld",
					 k ? "," : "", (long long)t[i].shape[k]);
		hoff += snprintf(header + hoff, (size_t)(1 << 20) - (size_t)hoff,
				 "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].bytes);
		off += t[i].bytes;
	}
	hoff += snprintf(header + hoff, (size_t)(1 << 20) - (size_t)hoff, "}");
	while (hoff % 8 != 0)
		header[hoff++] = ' ';
	hlen = (size_t)hoff;
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	f = fopen(path, "wb");
	if (f != NULL) {
		uint8_t le[8];

		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(hlen >> (8 * i));
		fwrite(le, 1, 8, f);
		fwrite(header, 1, hlen, f);
		for (size_t i = 0; i < n; i++)
			fwrite(t[i].data, 1, t[i].bytes, f);
		fclose(f);
	}
	for (size_t i = 0; i < n; i++)
		free(t[i].data);
	free(t);
	free(header);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	return f != NULL ? write_file(path, g_config, strlen(g_config)) : -1;
}

/* ---- clips ---- */

enum { TONE, NOISE_S16, NOISE_F32, FULL, SHORT, N_CLIPS };

struct clip {
	const char *what;
	struct mb_request_hdr hdr;
	void *payload;
	uint32_t n;
};

static struct clip g_clip[N_CLIPS];
static float *g_alone[N_CLIPS]; /* each clip's result run alone on g_ckpt */

static void
make_clip(struct clip *c, const char *what, int media, uint32_t n, int kind, uint64_t seed)
{
	c->what = what;
	c->n = n;
	c->hdr = (struct mb_request_hdr){
		.version = 1, .media = (uint16_t)media, .channels = 1, .sample_rate = RATE};
	snprintf(c->hdr.model, sizeof(c->hdr.model), "clap");
	c->hdr.payload_len = n * (media == MB_MEDIA_PCM_S16LE ? 2 : 4);
	c->payload = malloc(c->hdr.payload_len);
	for (uint32_t i = 0; i < n; i++) {
		double t = (double)i / RATE, v;

		switch (kind) {
		case 0: /* a pure 440 Hz tone: the power spectrum spans 200 dB */
			v = 0.5 * sin(2 * M_PI * 440 * t);
			break;
		case 1: /* white noise; S16 quantised, so that S16LE and F32LE carry the same */
			v = 0.3 * ((double)(mb_test_rand(&seed) % 20001) / 10000.0 - 1.0);
			v = lrint(v * 32767.0) / 32768.0;
			break;
		default: /* a chirp, a tone, noise, a slow envelope */
			v = (0.5 + 0.5 * sin(2 * M_PI * 0.7 * t)) *
				    (0.25 * sin(2 * M_PI * (100 + 400 * t) * t) +
				     0.15 * sin(2 * M_PI * 3456 * t)) +
			    0.02 * ((double)(mb_test_rand(&seed) % 2001) / 1000.0 - 1.0);
			break;
		}
		if (media == MB_MEDIA_PCM_S16LE) {
			int16_t s = (int16_t)lrint(v * 32768.0 > 32767 ? 32767 : v * 32768.0);
			uint8_t *p = c->payload;

			p[2 * i] = (uint8_t)s;
			p[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
		} else {
			float f = (float)v;

			memcpy((uint8_t *)c->payload + 4 * i, &f, 4);
		}
	}
}

static struct mb_model_item
item_of(struct clip *c)
{
	return (struct mb_model_item){
		.hdr = &c->hdr, .payload = c->payload, .payload_len = c->hdr.payload_len};
}

/* max |a - b| / max |b| */
static double
rel_err(const float *a, const float *b, size_t n)
{
	double err = 0.0, max = 0.0;

	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]);

		if (e > err || isnan(e))
			err = isnan(e) ? INFINITY : e;
		if (fabs(b[i]) > max)
			max = fabs(b[i]);
	}
	return max > 0 ? err / max : err;
}

/* Run @p c alone on @p l: its result (malloc'd), checking the shape; NULL on failure. */
static float *
run_alone(struct loaded *l, struct clip *c)
{
	struct mb_model_item it = item_of(c);
	double norm = 0.0;

	CU_ASSERT_EQUAL_FATAL(run(l, &it, 1), 0);
	CU_ASSERT_FALSE(it.failed);
	CU_ASSERT_EQUAL(it.rows, 1);
	CU_ASSERT_EQUAL(it.cols, DIM);
	CU_ASSERT_EQUAL(it.result_type, MB_RESULT_F32);
	CU_ASSERT_EQUAL(it.result_len, DIM * sizeof(float));
	if (it.failed || it.rows != 1 || it.cols != DIM) {
		free(it.result);
		return NULL;
	}
	for (int i = 0; i < DIM; i++)
		norm += (double)((float *)it.result)[i] * ((float *)it.result)[i];
	CU_ASSERT_DOUBLE_EQUAL(sqrt(norm), 1.0, 1e-5); /* L2-normalised */
	return it.result;
}

/* Load @p path, run every clip alone, compare with g_alone[]: max relative difference. */
static double
agree_with_alone(const char *path)
{
	struct loaded l;
	char reason[512] = "";
	double worst = 0.0;

	if (load(&l, path, reason, sizeof(reason)) != 0) {
		printf("\n    %s: %s", path, reason);
		CU_FAIL("the checkpoint did not load");
		return INFINITY;
	}
	for (int i = 0; i < N_CLIPS; i++) {
		float *out = run_alone(&l, &g_clip[i]);
		double e = out && g_alone[i] ? rel_err(out, g_alone[i], DIM) : INFINITY;

		if (e > worst)
			worst = e;
		free(out);
	}
	unload(&l);
	return worst;
}

/* ---- suite ---- */

static int
suite_init(void)
{
	char err[512];

	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_clap_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	snprintf(g_ckpt, sizeof(g_ckpt), "%s/tiny", g_dir);
	g_net = mb_net_def_of("clap");
	if (g_net == NULL)
		return -1;
	if (mb_net_layout(g_net, "tiny", &g_specs, g_config, sizeof(g_config), err, sizeof(err)) <
	    0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (write_variant(g_ckpt, &(struct variant){.config = g_config}) < 0)
		return -1;
	make_clip(&g_clip[TONE], "1 s tone, S16LE", MB_MEDIA_PCM_S16LE, RATE, 0, 1);
	make_clip(&g_clip[NOISE_S16], "4.3 s noise, S16LE", MB_MEDIA_PCM_S16LE, 206400, 1, 2);
	make_clip(&g_clip[NOISE_F32], "4.3 s noise, F32LE", MB_MEDIA_PCM_F32LE, 206400, 1, 2);
	make_clip(&g_clip[FULL], "10 s, F32LE", MB_MEDIA_PCM_F32LE, 480000, 2, 3);
	make_clip(&g_clip[SHORT], "25 ms, S16LE", MB_MEDIA_PCM_S16LE, 1200, 2, 4);
	return 0;
}

static int
suite_cleanup(void)
{
	for (int i = 0; i < N_CLIPS; i++) {
		free(g_clip[i].payload);
		free(g_alone[i]);
	}
	mb_net_specs_free(&g_specs);
	return nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- tests ---- */

static void
test_descriptor_and_check(void)
{
	struct mb_request_hdr h = {
		.version = 1, .media = MB_MEDIA_PCM_S16LE, .channels = 1, .sample_rate = RATE};
	uint32_t window = 0;
	uint8_t join = 0, topk = 9;
	char reason[256];

	CU_ASSERT_STRING_EQUAL(mb_model_clap.name, "clap");
	CU_ASSERT_STRING_EQUAL(mb_model_clap.summary,
			       "CLAP audio embedding (HTSAT): 48 kHz mono audio (<= 10 s) -> [1 x "
			       "512]");
	CU_ASSERT_EQUAL(mb_model_clap.devices,
			MB_MODEL_ON_CPU | (MB_HAVE_CUDA ? MB_MODEL_ON_CUDA : 0));
	CU_ASSERT_EQUAL(mb_model_clap.base_units, 2);
	CU_ASSERT_DOUBLE_EQUAL(mb_model_clap.item_units_per_second, 0.1, 0);
	CU_ASSERT_TRUE(mb_model_clap.media_mask & MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE));
	CU_ASSERT_TRUE(mb_model_clap.media_mask & MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE));
	CU_ASSERT_FALSE(mb_model_clap.media_mask & MB_MEDIA_MASK(MB_MEDIA_RGB24));
	CU_ASSERT_PTR_NOT_NULL(g_net);
	CU_ASSERT_STRING_EQUAL(g_net->name, "clap");
	CU_ASSERT_PTR_NULL(mb_builtin_weights_of("clap"));
	CU_ASSERT_TRUE(mb_builtin_has_weights("clap"));
	CU_ASSERT_TRUE(mb_builtin_is_net("clap"));
	/* long audio: windows of 10 s at 48 kHz, joined by the mean, L2-normalised */
	CU_ASSERT_EQUAL(mb_builtin_windowing("clap", &window, &join, &topk), 0);
	CU_ASSERT_EQUAL(window, 480000);
	CU_ASSERT_EQUAL(join, MB_JOIN_MEAN_L2);
	CU_ASSERT_EQUAL(topk, 0);

	h.payload_len = 2 * 1200;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), 0);
	h.payload_len = 2 * 480000;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), 0);
	h.media = MB_MEDIA_PCM_F32LE;
	h.payload_len = 4 * 480000;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), 0);
	h.media = MB_MEDIA_PCM_S16LE;
	h.payload_len = 2 * 1199;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "payload_len: 2398 bytes, 1199 samples"));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "clap needs at least 1200 (25 ms at 48000 Hz)"));
	h.payload_len = 2 * 480001;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "payload_len: 10.00 s of audio"));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "clap takes at most 10 s (480000 samples at 48000"));
	h.payload_len = 2 * 16000;
	h.sample_rate = 16000;
	CU_ASSERT_EQUAL(mb_model_clap.check(&h, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "sample_rate: 16000 Hz, but clap needs 48000 Hz"));
	printf("\n    16 kHz refused: \"%s\"", reason);
}

static void
test_presets(void)
{
	static const struct {
		const char *size;
		unsigned embed, depths[4], heads[4];
		uint32_t tensors;
	} want[] = {
		{"tiny", 32, {2, 2, 2, 2}, {2, 4, 8, 16}, 8 + 17 * 8 + 9 + 6},
		{"clap-htsat-unfused", 96, {2, 2, 6, 2}, {4, 8, 16, 32}, 8 + 17 * 12 + 9 + 6},
	};
	char config[4096], err[512];

	CU_ASSERT_STRING_EQUAL(g_net->sizes[0], "tiny");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct mb_net_specs s;
		json_error_t jerr;
		json_t *root, *audio;
		uint64_t params = 0;
		uint32_t blk = 8;

		CU_ASSERT_STRING_EQUAL(g_net->sizes[i], want[i].size);
		CU_ASSERT_EQUAL_FATAL(mb_net_layout(g_net, want[i].size, &s, config, sizeof(config),
						    err, sizeof(err)),
				      0);
		CU_ASSERT_EQUAL(s.n, want[i].tensors);
		CU_ASSERT_STRING_EQUAL(s.v[0].name, ENC "patch_embed.proj.weight");
		CU_ASSERT(s.v[0].ndim == 4 && s.v[0].shape[0] == want[i].embed &&
			  s.v[0].shape[1] == 1 && s.v[0].shape[2] == 4 && s.v[0].shape[3] == 4);
		CU_ASSERT_STRING_EQUAL(s.v[7].name, ENC "batch_norm.running_var");
		CU_ASSERT_EQUAL(s.v[7].shape[0], 64);
		/* the first block of every stage: its table [225, heads] */
		for (int st = 0; st < 4; st++) {
			char name[160];

			snprintf(name, sizeof(name),
				 ENC
				 "layers.%d.blocks.0.attention.self.relative_position_bias_table",
				 st);
			CU_ASSERT_STRING_EQUAL(s.v[blk + 2].name, name);
			CU_ASSERT(s.v[blk + 2].shape[0] == 225 &&
				  s.v[blk + 2].shape[1] == want[i].heads[st]);
			blk += 17 * want[i].depths[st] + (st < 3 ? 3 : 0);
		}
		CU_ASSERT_STRING_EQUAL(s.v[s.n - 4].name, "audio_projection.linear1.weight");
		CU_ASSERT(s.v[s.n - 4].shape[0] == DIM &&
			  s.v[s.n - 4].shape[1] == 8 * want[i].embed);
		for (uint32_t k = 0; k < s.n; k++)
			params += mb_weights_spec_numel(&s.v[k]);
		printf("\n    %s: %u tensors, %.2f M parameters", want[i].size, s.n,
		       (double)params / 1e6);
		/* config.json: a ClapModel's, the audio sizes in audio_config */
		root = json_loads(config, 0, &jerr);
		CU_ASSERT_PTR_NOT_NULL_FATAL(root);
		audio = json_object_get(root, "audio_config");
		CU_ASSERT_PTR_NOT_NULL_FATAL(audio);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(root, "model_type")),
				       "clap");
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(root, "projection_dim")), DIM);
		CU_ASSERT_EQUAL(
			json_integer_value(json_object_get(audio, "patch_embeds_hidden_size")),
			want[i].embed);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(audio, "hidden_size")),
				8 * want[i].embed);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(audio, "window_size")), 8);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(audio, "spec_size")), 256);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(audio, "num_mel_bins")), 64);
		CU_ASSERT_TRUE(json_is_false(json_object_get(audio, "enable_fusion")));
		for (size_t k = 0; k < 4; k++) {
			CU_ASSERT_EQUAL(json_integer_value(json_array_get(
						json_object_get(audio, "depths"), k)),
					want[i].depths[k]);
			CU_ASSERT_EQUAL(json_integer_value(json_array_get(
						json_object_get(audio, "num_attention_heads"), k)),
					want[i].heads[k]);
		}
		json_decref(root);
		mb_net_specs_free(&s);
	}
	CU_ASSERT_PTR_NULL(g_net->sizes[2]);
	{
		struct mb_net_specs s;

		CU_ASSERT_EQUAL(mb_net_layout(g_net, "clap-htsat-fused", &s, config, sizeof(config),
					      err, sizeof(err)),
				-ENOENT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "no size 'clap-htsat-fused'"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "clap-htsat-unfused"));
	}
	/* what mediabatch-weights --check says of the test checkpoint */
	{
		char out[1024];

		CU_ASSERT_EQUAL(mb_builtin_net_check("clap", g_ckpt, out, sizeof(out)), 0);
		printf("\n    %s", out);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "a clap checkpoint: 159 tensors"));
	}
}

static const char *
python(void)
{
	const char *p = getenv("MB_PYTHON");

	return p != NULL && *p != '\0' ? p : "/usr/bin/python3";
}

/*
 * Run the Python reference on @p ckpt over clips @p idx[0..n) and compare with @p out[i],
 * the model's result for clip idx[i]: each within 1e-4 relative. Returns the worst.
 */
static double
compare_with_reference(const char *ckpt, const int *idx, int n, float *const *out)
{
	static const char *const fmt[N_CLIPS] = {"s16le", "s16le", "f32le", "f32le", "s16le"};
	char cmd[4096];
	double worst = 0.0, t0 = seconds(CLOCK_MONOTONIC);
	size_t off;
	int rc;

	off = (size_t)snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", python(),
			       mb_test_source_path("tests/unit/gpu/ref/clap_ref.py"), ckpt);
	for (int i = 0; i < n; i++) {
		char in[32], ref[32];

		snprintf(in, sizeof(in), "clip%d.raw", idx[i]);
		snprintf(ref, sizeof(ref), "clip%d.ref", idx[i]);
		CU_ASSERT_EQUAL_FATAL(write_file(path_in(in), g_clip[idx[i]].payload,
						 g_clip[idx[i]].hdr.payload_len),
				      0);
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " %s '%s'", fmt[idx[i]],
					path_in(in));
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " '%s'", path_in(ref));
	}
	CU_ASSERT_FATAL(off < sizeof(cmd));
	printf("\n    ");
	fflush(stdout);
	rc = system(cmd);
	if (rc != 0) {
		printf("\n    the Python reference failed (exit status %d): %s\n    it needs "
		       "python3 with PyTorch and numpy (python3-torch; MB_PYTHON names another "
		       "interpreter)",
		       WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, cmd);
		CU_FAIL_FATAL("the Python reference (tests/unit/gpu/ref/clap_ref.py) did not "
			      "run: it needs PyTorch");
	}
	printf("    (the reference took %.1f s)", seconds(CLOCK_MONOTONIC) - t0);
	for (int i = 0; i < n; i++) {
		char name[32];
		double ref[DIM], err = 0.0, max = 0.0;
		FILE *f;
		size_t got = 0;

		snprintf(name, sizeof(name), "clip%d.ref", idx[i]);
		f = fopen(path_in(name), "rb");
		if (f != NULL) {
			got = fread(ref, sizeof(double), DIM, f);
			fclose(f);
		}
		CU_ASSERT_EQUAL(got, DIM);
		if (got != DIM || out[i] == NULL) {
			worst = INFINITY;
			continue;
		}
		for (size_t k = 0; k < DIM; k++) {
			double e = fabs(out[i][k] - ref[k]);

			err = e > err || isnan(e) ? (isnan(e) ? INFINITY : e) : err;
			max = fabs(ref[k]) > max ? fabs(ref[k]) : max;
		}
		printf("\n    %-20s [1 x 512]: max |ref| %.4f, max |error| %.3g, relative %.3g",
		       g_clip[idx[i]].what, max, err, err / max);
		CU_ASSERT(err / max <= 1e-4);
		worst = err / max > worst ? err / max : worst;
	}
	return worst;
}

static void
test_reference(void)
{
	static const int all[N_CLIPS] = {TONE, NOISE_S16, NOISE_F32, FULL, SHORT};
	char reason[512] = "";
	struct loaded l;
	double wall, cpu, worst;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_ckpt, reason, sizeof(reason)), 0);
	wall = seconds(CLOCK_MONOTONIC);
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
	g_alone[FULL] = run_alone(&l, &g_clip[FULL]);
	wall = seconds(CLOCK_MONOTONIC) - wall;
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu;
	for (int i = 0; i < N_CLIPS; i++)
		if (i != FULL)
			g_alone[i] = run_alone(&l, &g_clip[i]);
	unload(&l);
	printf("\n    one 10 s window at 'tiny', one thread: %.3f s CPU (%.3f s wall)", cpu, wall);
	/* S16LE and F32LE of the same samples: the same features, the same result */
	CU_ASSERT_TRUE(g_alone[NOISE_S16] && g_alone[NOISE_F32] &&
		       memcmp(g_alone[NOISE_S16], g_alone[NOISE_F32], DIM * 4) == 0);
	/* different clips differ */
	CU_ASSERT_TRUE(g_alone[TONE] && g_alone[FULL] &&
		       rel_err(g_alone[TONE], g_alone[FULL], DIM) > 1e-2);
	worst = compare_with_reference(g_ckpt, all, N_CLIPS, g_alone);
	printf("\n    worst relative error against the float64 reference: %.3g (bar 1e-4)", worst);
}

static void
test_batch(void)
{
	/* a batch of 3, with a refused item among them */
	static const int order[] = {FULL, TONE, NOISE_F32};
	struct mb_model_item items[4], again[4];
	struct clip bad;
	struct loaded l;
	char reason[512];
	double worst = 0.0;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_ckpt, reason, sizeof(reason)), 0);
	bad = g_clip[SHORT];
	bad.hdr.payload_len = 2 * 1199; /* check() refuses it; run() must not crash on it */
	for (int pass = 0; pass < 2; pass++) {
		struct mb_model_item *it = pass ? again : items;

		for (int i = 0; i < 3; i++)
			it[i < 1 ? i : i + 1] = item_of(&g_clip[order[i]]);
		it[1] = item_of(&bad);
		CU_ASSERT_EQUAL_FATAL(run(&l, it, 4), 0);
		CU_ASSERT_TRUE(it[1].failed);
		CU_ASSERT_PTR_NULL(it[1].result);
	}
	for (int i = 0; i < 3; i++) {
		int k = i < 1 ? i : i + 1;
		double e;

		CU_ASSERT_FALSE_FATAL(items[k].failed);
		CU_ASSERT_EQUAL(items[k].rows, 1);
		CU_ASSERT_EQUAL(items[k].cols, DIM);
		/* repeatable, bit for bit */
		CU_ASSERT_EQUAL(memcmp(items[k].result, again[k].result, DIM * 4), 0);
		if (g_alone[order[i]] != NULL) {
			e = rel_err(items[k].result, g_alone[order[i]], DIM);
			worst = e > worst ? e : worst;
			CU_ASSERT(e <= 1e-5);
		}
		free(items[k].result);
		free(again[k].result);
	}
	printf("\n    a batch of 3 (and a refused item) vs each alone: max relative difference "
	       "%.3g (bar 1e-5)",
	       worst);
	/* alone, twice: the same bits */
	{
		float *a = run_alone(&l, &g_clip[TONE]);

		CU_ASSERT_TRUE(a != NULL && g_alone[TONE] != NULL &&
			       memcmp(a, g_alone[TONE], DIM * 4) == 0);
		free(a);
	}
	/* a 16 kHz item that reached run() anyway is failed, not run */
	{
		struct clip c = g_clip[TONE];
		struct mb_model_item it;

		c.hdr.sample_rate = 16000;
		it = item_of(&c);
		CU_ASSERT_EQUAL(run(&l, &it, 1), 0);
		CU_ASSERT_TRUE(it.failed);
		CU_ASSERT_PTR_NULL(it.result);
	}
	unload(&l);
}

static void
expect_refused(const char *name, const struct variant *v, const char *const *needles)
{
	const char *dir = path_in(name);
	struct loaded l;
	char reason[1024] = "";

	CU_ASSERT_EQUAL_FATAL(write_variant(dir, v), 0);
	CU_ASSERT_NOT_EQUAL(load(&l, dir, reason, sizeof(reason)), 0);
	printf("\n    %s: \"%s\"", name, reason);
	for (const char *const *n = needles; *n != NULL; n++) {
		if (strstr(reason, *n) == NULL)
			printf("\n      lacks \"%s\"", *n);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, *n));
	}
}

static void
edit_depths(json_t *root)
{
	json_object_set_new(audio_of(root), "depths", json_pack("[iiii]", 2, 2, 6, 2));
}

static void
edit_heads(json_t *root)
{
	json_object_set_new(audio_of(root), "num_attention_heads", json_pack("[iiii]", 2, 4, 8, 8));
}

static void
edit_fusion(json_t *root)
{
	json_object_set_new(audio_of(root), "enable_fusion", json_true());
}

static void
edit_window(json_t *root)
{
	json_object_set_new(audio_of(root), "window_size", json_integer(7));
}

static void
edit_projection(json_t *root)
{
	json_object_set_new(root, "projection_dim", json_integer(1024));
}

static void
edit_act(json_t *root)
{
	json_object_set_new(audio_of(root), "hidden_act", json_string("relu"));
}

static void
edit_spec(json_t *root)
{
	json_object_set_new(audio_of(root), "spec_size", json_integer(192));
}

static void
edit_stride(json_t *root)
{
	json_object_set_new(audio_of(root), "patch_stride", json_pack("[ii]", 4, 2));
}

/* an empty list, without spec_size: patch_stride[0] was read uninitialised (valgrind) */
static void
edit_empty_stride(json_t *root)
{
	json_object_del(audio_of(root), "spec_size");
	json_object_set_new(audio_of(root), "patch_stride", json_array());
}

static void
test_load_errors(void)
{
	char file[256], config[256], *cfg;

	/* a missing tensor */
	snprintf(file, sizeof(file), "%s/missing: ", g_dir);
	expect_refused("missing",
		       &(struct variant){.drop = ENC "layers.2.blocks.1.attention.self.value.bias",
					 .config = g_config},
		       (const char *const[]){file,
					     ENC "layers.2.blocks.1.attention.self.value.bias",
					     "[128]", "is missing", NULL});
	/* a misshaped one */
	snprintf(file, sizeof(file), "%s/fc1/model.safetensors", g_dir);
	expect_refused(
		"fc1",
		&(struct variant){.reshape = ENC "layers.1.blocks.1.intermediate.dense.weight",
				  .ndim = 2,
				  .shape = {256, 65},
				  .config = g_config},
		(const char *const[]){file, ENC "layers.1.blocks.1.intermediate.dense.weight",
				      "shape [256, 65], expected [256, 64]", NULL});
	snprintf(file, sizeof(file), "%s/table/model.safetensors", g_dir);
	expect_refused(
		"table",
		&(struct variant){.reshape = ENC
				  "layers.0.blocks.0.attention.self.relative_position_bias_table",
				  .ndim = 2,
				  .shape = {224, 2},
				  .config = g_config},
		(const char *const[]){file, "relative_position_bias_table", "shape [224, 2]",
				      "is not (2 window_size - 1)^2", NULL});
	snprintf(file, sizeof(file), "%s/proj/model.safetensors", g_dir);
	expect_refused("proj",
		       &(struct variant){.reshape = "audio_projection.linear1.weight",
					 .ndim = 2,
					 .shape = {512, 255},
					 .config = g_config},
		       (const char *const[]){file, "audio_projection.linear1.weight",
					     "shape [512, 255], expected [projection_dim, 256]",
					     NULL});
	/* config.json against the tensors */
	snprintf(config, sizeof(config), "%s/depths/config.json", g_dir);
	cfg = config_edit(edit_depths);
	expect_refused("depths", &(struct variant){.config = cfg},
		       (const char *const[]){config, "audio_config.depths is [2, 2, 6, 2]",
					     "says [2, 2, 2, 2]", ENC "layers.<s>.blocks.<b>.*",
					     NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/heads/config.json", g_dir);
	cfg = config_edit(edit_heads);
	expect_refused(
		"heads", &(struct variant){.config = cfg},
		(const char *const[]){config, "audio_config.num_attention_heads is [2, 4, 8, 8]",
				      "says [2, 4, 8, 16]", "relative_position_bias_table", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/window/config.json", g_dir);
	cfg = config_edit(edit_window);
	expect_refused(
		"window", &(struct variant){.config = cfg},
		(const char *const[]){config, "audio_config.window_size is 7", "says 8", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/projdim/config.json", g_dir);
	cfg = config_edit(edit_projection);
	expect_refused("projdim", &(struct variant){.config = cfg},
		       (const char *const[]){config, "projection_dim is 1024",
					     "audio_projection.linear1.weight", "says 512", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/fusion/config.json", g_dir);
	cfg = config_edit(edit_fusion);
	expect_refused("fusion", &(struct variant){.config = cfg},
		       (const char *const[]){config, "audio_config.enable_fusion is true",
					     "expected false", "fused CLAP", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/act/config.json", g_dir);
	cfg = config_edit(edit_act);
	expect_refused("act", &(struct variant){.config = cfg},
		       (const char *const[]){config, "audio_config.hidden_act is \"relu\"",
					     "expected \"gelu\"", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/spec/config.json", g_dir);
	cfg = config_edit(edit_spec);
	expect_refused("spec", &(struct variant){.config = cfg},
		       (const char *const[]){config, "spec_size 192 x freq_ratio 3 = 576 frames",
					     "fewer than the 1001 of 10 s", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/stride/config.json", g_dir);
	cfg = config_edit(edit_stride);
	expect_refused("stride", &(struct variant){.config = cfg},
		       (const char *const[]){config, "audio_config.patch_stride",
					     "not a square stride", NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/estride/config.json", g_dir);
	cfg = config_edit(edit_empty_stride);
	expect_refused("estride", &(struct variant){.config = cfg},
		       (const char *const[]){config,
					     "audio_config.patch_stride is not an integer or a "
					     "list of 1 to 2 integers",
					     NULL});
	free(cfg);
	snprintf(config, sizeof(config), "%s/badjson/config.json", g_dir);
	expect_refused("badjson", &(struct variant){.config = "{\"audio_config\": 3}"},
		       (const char *const[]){config, "audio_config is not an object", NULL});
	/* a feature extractor other than clap.c's front end (the class's own defaults) */
	expect_refused("fmin",
		       &(struct variant){.config = g_config,
					 .preprocessor =
						 "{\"feature_size\": 64, \"sampling_rate\": "
						 "48000, \"frequency_min\": 0}"},
		       (const char *const[]){"fmin: preprocessor_config.json: frequency_min is 0, "
					     "but clap prepares its input with 50",
					     NULL});
	expect_refused(
		"padding",
		&(struct variant){.config = g_config, .preprocessor = "{\"padding\": \"pad\"}"},
		(const char *const[]){"preprocessor_config.json: padding is \"pad\"",
				      "with \"repeatpad\"", NULL});
	/* the fused model's tensors */
	snprintf(file, sizeof(file), "%s/fused/model.safetensors", g_dir);
	expect_refused(
		"fused",
		&(struct variant){.extra = ENC "patch_embed.mel_conv2d.weight", .config = g_config},
		(const char *const[]){file, "patch_embed.mel_conv2d.weight",
				      "a fused CLAP checkpoint", NULL});

	/* not a clap checkpoint at all: whisper's */
	{
		struct loaded l;
		char err[512], reason[512] = "";
		const char *dir = path_in("whisper");

		CU_ASSERT_EQUAL_FATAL(mb_builtin_net_placeholder("whisper", "tiny", dir, 1, "F32",
								 0, err, sizeof(err)),
				      0);
		CU_ASSERT_NOT_EQUAL(load(&l, dir, reason, sizeof(reason)), 0);
		printf("\n    whisper: \"%s\"", reason);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, "not a clap checkpoint"));
		CU_ASSERT_PTR_NOT_NULL(
			strstr(reason, "'audio_model.audio_encoder.patch_embed.proj.weight'"));
	}
	/* no weights, no file, a CUDA device */
	{
		struct mb_model_load_args args = {.device = -1, .weights_path = NULL};
		char reason[256] = "";
		void *state = NULL;

		CU_ASSERT_EQUAL(mb_model_clap.load(&args, &state, reason, sizeof(reason)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, "no weights"));
		args.weights_path = "/nonexistent/clap";
		CU_ASSERT_NOT_EQUAL(mb_model_clap.load(&args, &state, reason, sizeof(reason)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, "/nonexistent/clap"));
		printf("\n    nonexistent: \"%s\"", reason);
	}
	/* a CUDA device: refused by a build without CUDA; with CUDA it loads where there is a
	 * GPU (tests/gpu/cuda_models_test.c compares its results) and fails with the CUDA
	 * runtime's reason where there is none */
	{
		struct mb_model_load_args args = {.device = 0, .weights_path = g_ckpt};
		static struct mb_gpu_probe probe;
		char reason[256] = "";
		void *state = NULL;
		int rc = mb_model_clap.load(&args, &state, reason, sizeof(reason));

		if (!MB_HAVE_CUDA) {
			CU_ASSERT_EQUAL(rc, -ENOTSUP);
			CU_ASSERT_PTR_NOT_NULL(strstr(reason, "no CUDA"));
		} else if (mb_gpu_probe(&probe) > 0) {
			CU_ASSERT_EQUAL(rc, 0);
		} else {
			printf("\n    CUDA device 0, no GPU: %s", reason);
			CU_ASSERT(rc < 0);
			CU_ASSERT(reason[0] != '\0');
		}
		if (rc == 0)
			mb_model_clap.unload(state);
	}
	/* a truncated file */
	{
		char path[256], reason[512] = "";
		struct loaded l;
		FILE *in, *out;
		char buf[4096];
		size_t n, total = 0;
		const char *dir = path_in("truncated");

		mkdir(dir, 0755);
		snprintf(path, sizeof(path), "%s/model.safetensors", g_ckpt);
		in = fopen(path, "rb");
		snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		out = fopen(path, "wb");
		CU_ASSERT_FATAL(in != NULL && out != NULL);
		while (total < 100000 && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
			fwrite(buf, 1, n, out);
			total += n;
		}
		fclose(in);
		fclose(out);
		CU_ASSERT_NOT_EQUAL(load(&l, dir, reason, sizeof(reason)), 0);
		printf("\n    truncated: \"%s\"", reason);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, "truncated"));
	}
}

/* audio_config brought to the top: what a ClapAudioModelWithProjection saves */
static void
edit_audio_only(json_t *root)
{
	json_t *audio = json_deep_copy(audio_of(root));

	json_object_clear(root);
	json_object_update(root, audio);
	json_object_set_new(root, "architectures",
			    json_pack("[s]", "ClapAudioModelWithProjection"));
	json_decref(audio);
}

static void
test_other_checkpoints(void)
{
	char err[512], *cfg;
	const char *dir;
	double e;

	/* the published ClapModel layout: a text tower, logit scales, I64 buffers */
	dir = path_in("published");
	CU_ASSERT_EQUAL_FATAL(write_published(dir), 0);
	e = agree_with_alone(dir);
	printf("\n    ClapModel layout (text tower, I64 buffers): max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* a ClapAudioModelWithProjection save: the same names, a ClapAudioConfig */
	dir = path_in("audio_only");
	cfg = config_edit(edit_audio_only);
	CU_ASSERT_EQUAL_FATAL(write_variant(dir, &(struct variant){.config = cfg}), 0);
	free(cfg);
	e = agree_with_alone(dir);
	printf("\n    ClapAudioModelWithProjection config.json: max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* no config.json: spec_size 256, patch_stride 4, eps 1e-5 by default */
	dir = path_in("noconfig");
	CU_ASSERT_EQUAL_FATAL(write_variant(dir, &(struct variant){.config = NULL}), 0);
	e = agree_with_alone(dir);
	printf("\n    no config.json: max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* sharded, with its index */
	dir = path_in("sharded");
	CU_ASSERT_EQUAL_FATAL(
		write_variant(dir, &(struct variant){.shard_bytes = 300000, .config = g_config}),
		0);
	e = agree_with_alone(dir);
	printf("\n    sharded (300 kB shards): max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* stored as F16 */
	dir = path_in("f16");
	CU_ASSERT_EQUAL_FATAL(
		write_variant(dir, &(struct variant){.dtype = "F16", .config = g_config}), 0);
	e = agree_with_alone(dir);
	printf("\n    F16 checkpoint vs F32: max relative difference %.3g (bar 1e-2)", e);
	CU_ASSERT(e <= 1e-2);
	CU_ASSERT(e > 0.0); /* it was rounded */

	/* the placeholder mediabatch-weights writes loads too */
	dir = path_in("placeholder");
	CU_ASSERT_EQUAL(
		mb_builtin_net_placeholder("clap", "tiny", dir, 7, "BF16", 0, err, sizeof(err)), 0);
	{
		struct loaded l;
		char reason[512] = "";
		int rc = load(&l, dir, reason, sizeof(reason));

		CU_ASSERT_EQUAL(rc, 0);
		if (rc == 0)
			unload(&l);
		else
			printf("\n    %s", reason);
	}
}

static const struct mb_test_case cases[] = {
	{"the descriptor, its windows; check() takes 1200 .. 480000 samples at 48 kHz",
	 test_descriptor_and_check},
	{"presets: 'tiny' and 'clap-htsat-unfused', their tensors and config.json", test_presets},
	{"matches the float64 PyTorch reference within 1e-4 relative", test_reference},
	{"a batch equals its items alone (1e-5) and repeats bit for bit", test_batch},
	{"load errors name the file, tensor or key, expected and found", test_load_errors},
	{"the ClapModel layout, a ClapAudioModelWithProjection config, no config.json, sharded "
	 "and F16 checkpoints agree",
	 test_other_checkpoints},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"clap (CPU)", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("clap_test", suites);
}
