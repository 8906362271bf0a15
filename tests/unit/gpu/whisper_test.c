/*
 * whisper_test.c: the whisper model (gpu/models/whisper.c), Whisper's audio encoder on the
 * CPU, through its model.h interface, with a "tiny" placeholder checkpoint written here as
 * Hugging Face publishes them (model.safetensors + config.json).
 *
 * The reference is tests/unit/gpu/ref/whisper_ref.py: PyTorch in float64, written from the
 * published code (Hugging Face's WhisperFeatureExtractor and WhisperEncoder, openai-whisper's
 * log-mel), run once over every clip. It needs python3 with torch and numpy (MB_PYTHON
 * names the interpreter; default /usr/bin/python3, where python3-torch installs): without
 * them the test fails, saying so. Error measure: max |out - ref| / max |ref| over an item's
 * [1500 x d] values; at most 1e-4 (F32 on the CPU).
 *
 * Also: a batch equals its items run alone (1e-5 relative: the blocks run over the batch's
 * stacked tokens, so OpenBLAS may round a row differently, nn_internal.h) and is repeatable
 * bit for bit; S16LE and F32LE of the same samples give the same result; load errors name
 * file, tensor or key, expected and found; the "encoder." prefix of a WhisperModel save, an
 * F16 copy (1e-2 relative), a sharded copy, and a checkpoint without config.json (heads from
 * d / 64) load and agree.
 */
#include <errno.h>
#include <ftw.h>
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
#include "mb_layout.h"
#include "mb_models.h"
#include "mb_test.h"
#include "models/net_internal.h"

#define SEED 4242
#define T 1500
#define D 128 /* "tiny" */
#define OUT_FLOATS ((size_t)T * D)
#define PREFIX "model.encoder."

static char g_dir[64];
static char g_ckpt[128]; /* the F32 "tiny" checkpoint with its config.json */
static char g_config[2048];
static struct mb_net_specs g_specs;
static const struct mb_net_def *g_net; /* whisper's (mb_net_defs[]) */

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

/* config.json of "tiny" with @p key's value replaced by @p value */
static const char *
config_with(const char *key, const char *value)
{
	static char buf[2048];
	char needle[64];
	const char *at, *end;

	snprintf(needle, sizeof(needle), "\"%s\": ", key);
	at = strstr(g_config, needle);
	if (at == NULL)
		return NULL;
	at += strlen(needle);
	end = at + strcspn(at, ",\n}");
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - g_config), g_config, value, end);
	return buf;
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
	rc = mb_model_whisper.load(&args, &l->state, reason, len);
	if (rc == 0 && (rc = mb_model_whisper.worker_init(l->state, -1, &l->worker)) < 0)
		mb_model_whisper.unload(l->state);
	return rc;
}

static void
unload(struct loaded *l)
{
	mb_model_whisper.worker_fini(l->state, l->worker);
	mb_model_whisper.unload(l->state);
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

	return mb_model_whisper.run(l->state, &b);
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
		.version = 1, .media = (uint16_t)media, .channels = 1, .sample_rate = 16000};
	snprintf(c->hdr.model, sizeof(c->hdr.model), "whisper");
	c->hdr.payload_len = n * (media == MB_MEDIA_PCM_S16LE ? 2 : 4);
	c->payload = malloc(c->hdr.payload_len);
	for (uint32_t i = 0; i < n; i++) {
		double t = i / 16000.0, v;

		switch (kind) {
		case 0: /* a 440 Hz tone */
			v = 0.5 * sin(2 * M_PI * 440 * t);
			break;
		case 1: /* white noise; S16 quantised, so that S16LE and F32LE carry the same */
			v = 0.3 * ((double)(mb_test_rand(&seed) % 20001) / 10000.0 - 1.0);
			v = lrint(v * 32767.0) / 32768.0;
			break;
		default: /* speech-like: a chirp, a tone, noise, a slow envelope */
			v = (0.5 + 0.5 * sin(2 * M_PI * 0.7 * t)) *
				    (0.25 * sin(2 * M_PI * (100 + 60 * t) * t) +
				     0.15 * sin(2 * M_PI * 1234 * t)) +
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

	CU_ASSERT_EQUAL_FATAL(run(l, &it, 1), 0);
	CU_ASSERT_FALSE(it.failed);
	CU_ASSERT_EQUAL(it.rows, T);
	CU_ASSERT_EQUAL(it.cols, D);
	CU_ASSERT_EQUAL(it.result_type, MB_RESULT_F32);
	CU_ASSERT_EQUAL(it.result_len, OUT_FLOATS * sizeof(float));
	if (it.failed || it.rows != T || it.cols != D) {
		free(it.result);
		return NULL;
	}
	return it.result;
}

/* Load @p path, run every clip alone, compare with g_alone[]: max relative error. */
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
		double e = out && g_alone[i] ? rel_err(out, g_alone[i], OUT_FLOATS) : INFINITY;

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

	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_whisper_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	snprintf(g_ckpt, sizeof(g_ckpt), "%s/tiny", g_dir);
	g_net = mb_net_def_of("whisper");
	if (g_net == NULL)
		return -1;
	if (mb_net_layout(g_net, "tiny", &g_specs, g_config, sizeof(g_config), err, sizeof(err)) <
		    0 ||
	    mb_ckpt_generate(g_ckpt, g_specs.v, g_specs.n, SEED, "F32", 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (write_file(path_in("tiny/config.json"), g_config, strlen(g_config)) < 0)
		return -1;
	make_clip(&g_clip[TONE], "1 s tone, S16LE", MB_MEDIA_PCM_S16LE, 16000, 0, 1);
	make_clip(&g_clip[NOISE_S16], "7.3 s noise, S16LE", MB_MEDIA_PCM_S16LE, 116800, 1, 2);
	make_clip(&g_clip[NOISE_F32], "7.3 s noise, F32LE", MB_MEDIA_PCM_F32LE, 116800, 1, 2);
	make_clip(&g_clip[FULL], "30 s, F32LE", MB_MEDIA_PCM_F32LE, 480000, 2, 3);
	make_clip(&g_clip[SHORT], "400 samples, S16LE", MB_MEDIA_PCM_S16LE, 400, 1, 4);
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
	struct clip c = {0};
	char reason[256];

	CU_ASSERT_STRING_EQUAL(mb_model_whisper.name, "whisper");
	CU_ASSERT_STRING_EQUAL(mb_model_whisper.summary,
			       "Whisper audio encoder: 16 kHz mono audio (<= 30 s) -> [1500 x d]");
	CU_ASSERT_EQUAL(mb_model_whisper.devices,
			MB_MODEL_ON_CPU | (MB_HAVE_CUDA ? MB_MODEL_ON_CUDA : 0));
	CU_ASSERT_EQUAL(mb_model_whisper.base_units, 5);
	CU_ASSERT_FALSE(mb_model_whisper.media_mask & MB_MEDIA_MASK(MB_MEDIA_RGB24));
	CU_ASSERT_PTR_NOT_NULL(g_net);
	CU_ASSERT_STRING_EQUAL(g_net->name, "whisper");
	CU_ASSERT_PTR_NULL(mb_builtin_weights_of("whisper"));
	CU_ASSERT_TRUE(mb_builtin_has_weights("whisper"));

	c.hdr = (struct mb_request_hdr){
		.version = 1, .media = MB_MEDIA_PCM_S16LE, .channels = 1, .sample_rate = 16000};
	c.hdr.payload_len = 2 * 400;
	CU_ASSERT_EQUAL(mb_model_whisper.check(&c.hdr, reason, sizeof(reason)), 0);
	c.hdr.payload_len = 2 * 480000;
	CU_ASSERT_EQUAL(mb_model_whisper.check(&c.hdr, reason, sizeof(reason)), 0);
	c.hdr.payload_len = 2 * 399;
	CU_ASSERT_EQUAL(mb_model_whisper.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "payload_len: 798 bytes, 399 samples"));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "whisper needs at least 400"));
	c.hdr.payload_len = 2 * 480001;
	CU_ASSERT_EQUAL(mb_model_whisper.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "whisper takes at most 30 s (480000 samples)"));
	c.hdr.payload_len = 2 * 16000;
	c.hdr.sample_rate = 44100;
	CU_ASSERT_EQUAL(mb_model_whisper.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "sample_rate: 44100 Hz, but whisper needs 16000"));
}

static void
test_presets(void)
{
	static const struct {
		const char *size;
		unsigned d, layers, heads, ffn, mels;
	} want[] = {
		{"tiny", 128, 2, 2, 512, 80},
		{"whisper-tiny", 384, 4, 6, 1536, 80},
		{"whisper-base", 512, 6, 8, 2048, 80},
		{"whisper-small", 768, 12, 12, 3072, 80},
		{"whisper-medium", 1024, 24, 16, 4096, 80},
		{"whisper-large-v2", 1280, 32, 20, 5120, 80},
		{"whisper-large-v3", 1280, 32, 20, 5120, 128},
	};
	char config[2048], err[512], needle[128];

	CU_ASSERT_STRING_EQUAL(g_net->sizes[0], "tiny");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct mb_net_specs s;

		CU_ASSERT_STRING_EQUAL(g_net->sizes[i], want[i].size);
		CU_ASSERT_EQUAL_FATAL(mb_net_layout(g_net, want[i].size, &s, config, sizeof(config),
						    err, sizeof(err)),
				      0);
		CU_ASSERT_EQUAL(s.n, 5 + 15 * want[i].layers + 2);
		CU_ASSERT_STRING_EQUAL(s.v[0].name, PREFIX "conv1.weight");
		CU_ASSERT_EQUAL(s.v[0].shape[0], want[i].d);
		CU_ASSERT_EQUAL(s.v[0].shape[1], want[i].mels);
		CU_ASSERT_STRING_EQUAL(s.v[s.n - 2].name, PREFIX "layer_norm.weight");
		CU_ASSERT_EQUAL(s.v[s.n - 2].init, MB_WEIGHTS_INIT_ONES);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, "\"model_type\": \"whisper\""));
		CU_ASSERT_PTR_NOT_NULL(strstr(config, "\"max_source_positions\": 1500"));
		snprintf(needle, sizeof(needle), "\"d_model\": %u", want[i].d);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, needle));
		snprintf(needle, sizeof(needle), "\"encoder_layers\": %u", want[i].layers);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, needle));
		snprintf(needle, sizeof(needle), "\"encoder_attention_heads\": %u", want[i].heads);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, needle));
		snprintf(needle, sizeof(needle), "\"encoder_ffn_dim\": %u", want[i].ffn);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, needle));
		snprintf(needle, sizeof(needle), "\"num_mel_bins\": %u", want[i].mels);
		CU_ASSERT_PTR_NOT_NULL(strstr(config, needle));
		mb_net_specs_free(&s);
	}
	CU_ASSERT_PTR_NULL(g_net->sizes[sizeof(want) / sizeof(want[0])]);
	/* the published names that do not exist refused with the list */
	{
		struct mb_net_specs s;

		CU_ASSERT_EQUAL(mb_net_layout(g_net, "whisper-huge", &s, config, sizeof(config),
					      err, sizeof(err)),
				-ENOENT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "no size 'whisper-huge'"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "whisper-large-v3"));
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
	double worst = 0.0;
	size_t off;
	int rc;

	off = (size_t)snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", python(),
			       mb_test_source_path("tests/unit/gpu/ref/whisper_ref.py"), ckpt);
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
		CU_FAIL_FATAL("the Python reference (tests/unit/gpu/ref/whisper_ref.py) did not "
			      "run: it needs PyTorch");
	}
	for (int i = 0; i < n; i++) {
		char name[32];
		double *ref = malloc(OUT_FLOATS * sizeof(double)), err = 0.0, max = 0.0;
		FILE *f;
		size_t got = 0;

		snprintf(name, sizeof(name), "clip%d.ref", idx[i]);
		f = fopen(path_in(name), "rb");
		if (f != NULL) {
			got = fread(ref, sizeof(double), OUT_FLOATS, f);
			fclose(f);
		}
		CU_ASSERT_EQUAL(got, OUT_FLOATS);
		if (got != OUT_FLOATS || out[i] == NULL) {
			worst = INFINITY;
			free(ref);
			continue;
		}
		for (size_t k = 0; k < OUT_FLOATS; k++) {
			double e = fabs(out[i][k] - ref[k]);

			err = e > err || isnan(e) ? (isnan(e) ? INFINITY : e) : err;
			max = fabs(ref[k]) > max ? fabs(ref[k]) : max;
		}
		printf("\n    %-20s [1500 x 128]: max |ref| %.3f, max |error| %.3g, relative %.3g",
		       g_clip[idx[i]].what, max, err, err / max);
		CU_ASSERT(err / max <= 1e-4);
		worst = err / max > worst ? err / max : worst;
		free(ref);
	}
	return worst;
}

static void
test_reference(void)
{
	static const int all[N_CLIPS] = {TONE, NOISE_S16, NOISE_F32, FULL, SHORT};
	char reason[512] = "";
	struct loaded l;
	struct timespec t0, t1;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_ckpt, reason, sizeof(reason)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N_CLIPS; i++)
		g_alone[i] = run_alone(&l, &g_clip[i]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unload(&l);
	printf("\n    %d clips alone ('tiny', one thread): %.3f s wall", N_CLIPS,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	/* S16LE and F32LE of the same samples: the same features, the same result */
	CU_ASSERT_TRUE(g_alone[NOISE_S16] && g_alone[NOISE_F32] &&
		       memcmp(g_alone[NOISE_S16], g_alone[NOISE_F32], OUT_FLOATS * 4) == 0);
	compare_with_reference(g_ckpt, all, N_CLIPS, g_alone);
}

static void
test_batch(void)
{
	/* a mixed batch, with a refused item among them */
	static const int order[] = {FULL, SHORT, TONE, NOISE_F32};
	struct mb_model_item items[5], again[5];
	struct clip bad;
	struct loaded l;
	char reason[512];
	double worst = 0.0;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_ckpt, reason, sizeof(reason)), 0);
	bad = g_clip[SHORT];
	bad.hdr.payload_len = 2 * 399; /* check() refuses it; run() must not crash on it */
	for (int pass = 0; pass < 2; pass++) {
		struct mb_model_item *it = pass ? again : items;

		for (int i = 0; i < 4; i++)
			it[i < 2 ? i : i + 1] = item_of(&g_clip[order[i]]);
		it[2] = item_of(&bad);
		CU_ASSERT_EQUAL_FATAL(run(&l, it, 5), 0);
		CU_ASSERT_TRUE(it[2].failed);
		CU_ASSERT_PTR_NULL(it[2].result);
	}
	for (int i = 0; i < 4; i++) {
		int k = i < 2 ? i : i + 1;
		double e;

		CU_ASSERT_FALSE_FATAL(items[k].failed);
		CU_ASSERT_EQUAL(items[k].rows, T);
		CU_ASSERT_EQUAL(items[k].cols, D);
		/* repeatable, bit for bit */
		CU_ASSERT_EQUAL(memcmp(items[k].result, again[k].result, OUT_FLOATS * 4), 0);
		if (g_alone[order[i]] != NULL) {
			e = rel_err(items[k].result, g_alone[order[i]], OUT_FLOATS);
			worst = e > worst ? e : worst;
			CU_ASSERT(e <= 1e-5);
		}
		free(items[k].result);
		free(again[k].result);
	}
	printf("\n    a batch of 4 vs each alone: max relative difference %.3g", worst);
	/* alone, twice: the same bits */
	{
		float *a = run_alone(&l, &g_clip[TONE]);

		CU_ASSERT_TRUE(a != NULL && g_alone[TONE] != NULL &&
			       memcmp(a, g_alone[TONE], OUT_FLOATS * 4) == 0);
		free(a);
	}
	unload(&l);
}

/*
 * Write a copy of g_ckpt to @p dir with: names starting with @p from renamed to @p to, the
 * tensor @p drop left out, the tensor @p reshape given shape @p shape (values 0.01), and
 * @p config as config.json (NULL: none).
 */
struct variant {
	const char *from, *to, *drop, *reshape;
	uint32_t ndim;
	int64_t shape[3];
	const char *config;
	const char *preprocessor; /* preprocessor_config.json (NULL: none) */
};

static int
write_variant(const char *dir, const struct variant *v)
{
	struct mb_ckpt *ck = NULL;
	struct mb_weights_entry *e;
	char err[512], path[256];
	uint32_t n = 0, count;
	int rc = -1;

	if (mb_ckpt_open(g_ckpt, &ck, err, sizeof(err)) < 0)
		goto out_err;
	count = mb_ckpt_count(ck);
	e = calloc(count, sizeof(*e));
	for (uint32_t i = 0; i < count; i++) {
		const struct mb_weights_tensor *t = mb_ckpt_at(ck, i, NULL);
		uint64_t numel = 1;
		float *data;
		char *name;

		if (v->drop != NULL && strcmp(t->name, v->drop) == 0)
			continue;
		if (v->from != NULL && strncmp(t->name, v->from, strlen(v->from)) == 0) {
			name = malloc(strlen(t->name) + strlen(v->to) + 1);
			sprintf(name, "%s%s", v->to, t->name + strlen(v->from));
		} else {
			name = strdup(t->name);
		}
		e[n].name = name;
		e[n].ndim = t->ndim;
		memcpy(e[n].shape, t->shape, sizeof(e[n].shape));
		if (v->reshape != NULL && strcmp(t->name, v->reshape) == 0) {
			e[n].ndim = v->ndim;
			memcpy(e[n].shape, v->shape, sizeof(v->shape));
		}
		for (uint32_t k = 0; k < e[n].ndim; k++)
			numel *= (uint64_t)e[n].shape[k];
		data = malloc(numel * sizeof(float));
		if (e[n].ndim == t->ndim && memcmp(e[n].shape, t->shape, sizeof(e[n].shape)) == 0)
			mb_ckpt_to_f32(t->dtype, t->data, numel, data);
		else
			for (uint64_t k = 0; k < numel; k++)
				data[k] = 0.01f;
		e[n++].data = data;
	}
	rc = mb_ckpt_write(dir, e, n, "F32", 0, err, sizeof(err));
	for (uint32_t i = 0; i < n; i++) {
		free((void *)e[i].name);
		free((void *)e[i].data);
	}
	free(e);
	mb_ckpt_close(&ck);
	if (rc < 0)
		goto out_err;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (v->config != NULL && write_file(path, v->config, strlen(v->config)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/preprocessor_config.json", dir);
	if (v->preprocessor != NULL &&
	    write_file(path, v->preprocessor, strlen(v->preprocessor)) < 0)
		return -1;
	return 0;
out_err:
	fprintf(stderr, "\n    %s\n", err);
	return -1;
}

static void
expect_refused(const char *name, const struct variant *v, const char *const *needles)
{
	const char *dir = path_in(name);
	struct loaded l;
	char reason[512] = "";

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
test_load_errors(void)
{
	char file[256], config[256], act[sizeof(g_config) + 64];

	snprintf(file, sizeof(file), "%s/missing: ", g_dir);
	expect_refused("missing",
		       &(struct variant){.drop = PREFIX "layers.1.self_attn.v_proj.bias",
					 .config = g_config},
		       (const char *const[]){file, PREFIX "layers.1.self_attn.v_proj.bias", "[128]",
					     "is missing", NULL});

	snprintf(file, sizeof(file), "%s/fc1/model.safetensors", g_dir);
	expect_refused("fc1",
		       &(struct variant){.reshape = PREFIX "layers.1.fc1.weight",
					 .ndim = 2,
					 .shape = {512, 129},
					 .config = g_config},
		       (const char *const[]){file, PREFIX "layers.1.fc1.weight",
					     "shape [512, 129], expected [512, 128]", NULL});

	snprintf(config, sizeof(config), "%s/heads/config.json", g_dir);
	expect_refused("heads",
		       &(struct variant){.config = config_with("encoder_attention_heads", "3")},
		       (const char *const[]){config, "encoder_attention_heads is 3",
					     "expected a divisor of d_model 128",
					     PREFIX "conv1.weight", NULL});

	snprintf(file, sizeof(file), "%s/mels/model.safetensors", g_dir);
	expect_refused("mels",
		       &(struct variant){.reshape = PREFIX "conv1.weight",
					 .ndim = 3,
					 .shape = {128, 81, 3},
					 .config = g_config},
		       (const char *const[]){file, PREFIX "conv1.weight", "shape [128, 81, 3]",
					     "81 mel bins", "expected 80 or 128", NULL});

	/* config.json against the tensors */
	snprintf(config, sizeof(config), "%s/dmodel/config.json", g_dir);
	expect_refused("dmodel", &(struct variant){.config = config_with("d_model", "256")},
		       (const char *const[]){config, "d_model is 256", PREFIX "conv1.weight",
					     "says 128", NULL});
	snprintf(config, sizeof(config), "%s/layers/config.json", g_dir);
	expect_refused("layers", &(struct variant){.config = config_with("encoder_layers", "4")},
		       (const char *const[]){config, "encoder_layers is 4", "says 2", NULL});
	snprintf(config, sizeof(config), "%s/ffn/config.json", g_dir);
	expect_refused("ffn", &(struct variant){.config = config_with("encoder_ffn_dim", "1024")},
		       (const char *const[]){config, "encoder_ffn_dim is 1024",
					     PREFIX "layers.0.fc1.weight", "says 512", NULL});

	/* an activation the encoder does not compute (transformers would honour it) */
	snprintf(act, sizeof(act), "{\n  \"activation_function\": \"relu\",%s", g_config + 1);
	snprintf(config, sizeof(config), "%s/act/config.json", g_dir);
	expect_refused("act", &(struct variant){.config = act},
		       (const char *const[]){config, "activation_function \"relu\"",
					     "expected \"gelu\"", NULL});

	/* a feature extractor other than the encoder's front end */
	expect_refused("rate",
		       &(struct variant){.config = g_config,
					 .preprocessor =
						 "{\"feature_size\": 80, \"sampling_rate\": "
						 "22050, \"hop_length\": 160}"},
		       (const char *const[]){"rate: preprocessor_config.json: sampling_rate is "
					     "22050, but whisper prepares its input with 16000",
					     NULL});
	expect_refused(
		"feature_size",
		&(struct variant){.config = g_config, .preprocessor = "{\"feature_size\": 128}"},
		(const char *const[]){"preprocessor_config.json: feature_size is 128, "
				      "but whisper prepares its input with 80",
				      NULL});

	/* not a whisper checkpoint at all */
	expect_refused("foreign", &(struct variant){.from = PREFIX, .to = "audio.", .config = NULL},
		       (const char *const[]){"not a whisper checkpoint",
					     "'model.encoder.conv1.weight', 'encoder.conv1.weight'",
					     NULL});

	/* a CUDA device: refused by a build without CUDA; with CUDA it loads where there is a
	 * GPU (tests/gpu/cuda_models_test.c compares its results) and fails with the CUDA
	 * runtime's reason where there is none */
	{
		struct mb_model_load_args args = {.device = 0, .weights_path = g_ckpt};
		static struct mb_gpu_probe probe;
		char reason[256] = "";
		void *state = NULL;
		int rc = mb_model_whisper.load(&args, &state, reason, sizeof(reason));

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
			mb_model_whisper.unload(state);
	}
}

static void
test_other_checkpoints(void)
{
	char err[512];
	const char *dir;
	double e;

	/* a WhisperModel save: "encoder." */
	dir = path_in("prefix");
	CU_ASSERT_EQUAL_FATAL(write_variant(dir, &(struct variant){.from = PREFIX,
								   .to = "encoder.",
								   .config = g_config}),
			      0);
	e = agree_with_alone(dir);
	printf("\n    prefix 'encoder.': max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* no config.json: heads = d / 64 = 2, as the config says */
	dir = path_in("noconfig");
	CU_ASSERT_EQUAL_FATAL(write_variant(dir, &(struct variant){.config = NULL}), 0);
	e = agree_with_alone(dir);
	printf("\n    no config.json (heads from d / 64): max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);
	{ /* mediabatch-weights --check says the heads were assumed (and not with config.json) */
		char out[1024];

		CU_ASSERT_EQUAL(mb_builtin_net_check("whisper", dir, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "; d_model 128, 2 layers, 2 heads (assumed: no "
						   "encoder_attention_heads in config.json, so "
						   "d_model / 64"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "encoder_ffn_dim 512, 80 mel bins; loads as"));
		CU_ASSERT_EQUAL(mb_builtin_net_check("whisper", g_ckpt, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "under prefix 'model.encoder.'"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "; d_model 128, 2 layers, 2 heads, "));
	}

	/* sharded, with its index */
	dir = path_in("sharded");
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(dir, g_specs.v, g_specs.n, SEED, "F32", 300000, err, sizeof(err)),
		0);
	e = agree_with_alone(dir);
	printf("\n    sharded (300 kB shards): max relative difference %.3g", e);
	CU_ASSERT(e == 0.0);

	/* stored as F16 */
	dir = path_in("f16");
	CU_ASSERT_EQUAL_FATAL(
		mb_ckpt_generate(dir, g_specs.v, g_specs.n, SEED, "F16", 0, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(write_file(path_in("f16/config.json"), g_config, strlen(g_config)),
			      0);
	e = agree_with_alone(dir);
	printf("\n    F16 checkpoint vs F32: max relative difference %.3g", e);
	CU_ASSERT(e <= 1e-2);
	CU_ASSERT(e > 0.0); /* it was rounded */
}

static void
test_reference_heads(void)
{
	static const int clips[] = {FULL, TONE};
	const char *dir = path_in("heads8");
	float *out[2] = {NULL, NULL};
	struct loaded l;
	char reason[512] = "";

	/* 8 heads of 16 from config.json: not d / 64 */
	CU_ASSERT_EQUAL_FATAL(
		write_variant(dir, &(struct variant){.config = config_with(
							     "encoder_attention_heads", "8")}),
		0);
	CU_ASSERT_EQUAL_FATAL(load(&l, dir, reason, sizeof(reason)), 0);
	for (int i = 0; i < 2; i++)
		out[i] = run_alone(&l, &g_clip[clips[i]]);
	unload(&l);
	CU_ASSERT_TRUE(out[0] != NULL && g_alone[FULL] != NULL &&
		       rel_err(out[0], g_alone[FULL], OUT_FLOATS) > 1e-3);
	compare_with_reference(dir, clips, 2, out);
	free(out[0]);
	free(out[1]);
}

static const struct mb_test_case cases[] = {
	{"the descriptor; check() takes 400 .. 480000 samples at 16 kHz, naming the limits",
	 test_descriptor_and_check},
	{"presets: the published sizes and 'tiny', their tensors and config.json", test_presets},
	{"matches the float64 PyTorch reference within 1e-4 relative", test_reference},
	{"a mixed batch equals its items alone (1e-5) and repeats bit for bit", test_batch},
	{"load errors name the file, tensor or key, expected and found", test_load_errors},
	{"'encoder.' prefix, no config.json, sharded and F16 checkpoints agree",
	 test_other_checkpoints},
	{"heads from config.json (8 of 16): matches the reference", test_reference_heads},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"whisper (CPU)", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("whisper_test", suites);
}
