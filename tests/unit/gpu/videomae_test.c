/*
 * videomae_test.c: the built-in videomae model (Hugging Face's VideoMAEForVideoClassification
 * on the CPU, gpu/models/videomae.c) against an independent float64 PyTorch reference
 * (tests/unit/gpu/ref/videomae_ref.py), on a "tiny" checkpoint written here as
 * mediabatch-weights writes one (mb_net_layout() + mb_ckpt_generate() + config.json).
 *
 * Checked: the top-5 classes and their scores on random clips (scores within 1e-4 relative
 * of the reference's softmax, the same classes in the same order), a batch of 3 against each
 * clip alone (within 1e-5), config.json's labels reachable, a checkpoint without config.json,
 * F16 and BF16 (sharded) copies keeping the same top-1, checkpoints refused at load with a
 * reason that names the file, the tensor or key, what was expected and what was found, and
 * the request check.
 *
 * The reference needs python3 with torch and numpy (MB_PYTHON, else /usr/bin/python3, else
 * python3 on PATH). Without them the test fails and says so: CI installs python3-torch.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_ckpt.h"
#include "mb_layout.h"
#include "mb_models.h"
#include "mb_test.h"
#include "models/videomae_internal.h"

#define CLIPS 3
#define CLASSES 400
#define D 128

static char g_dir[64];
static char g_tiny[128]; /* the F32 checkpoint, config.json with a few real labels */
static struct mb_net_specs g_specs;
static char *g_config; /* the layout's config.json */
static uint8_t *g_clip[CLIPS];
static char g_python[256];

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

static double
now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- checkpoints ---- */

/* g_config with @p edit applied (NULL: as it is), written to @p dir/config.json */
static int
write_config(const char *dir, void (*edit)(json_t *cfg))
{
	char path[256];
	json_error_t jerr;
	json_t *cfg = json_loads(g_config, 0, &jerr);
	int rc;

	if (cfg == NULL) {
		fprintf(stderr, "the layout's config.json does not parse: %s (line %d)\n",
			jerr.text, jerr.line);
		return -1;
	}
	if (edit != NULL)
		edit(cfg);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	rc = json_dump_file(cfg, path, JSON_INDENT(2));
	json_decref(cfg);
	return rc;
}

/* A checkpoint @p name under g_dir of @p specs, @p dtype, @p shard bytes a shard (0: one
 * file), and config.json edited by @p edit, or none when @p with_config is 0. */
static const char *
make_ckpt(const char *name, const struct mb_weights_spec *specs, uint32_t n, const char *dtype,
	  uint64_t shard, int with_config, void (*edit)(json_t *cfg))
{
	static char dir[128];
	char err[512];

	snprintf(dir, sizeof(dir), "%s/%s", g_dir, name);
	if (mb_ckpt_generate(dir, specs, n, 1234, dtype, shard, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	if (with_config && write_config(dir, edit) < 0)
		return NULL;
	return dir;
}

static void
some_labels(json_t *cfg)
{
	json_t *id2label = json_object_get(cfg, "id2label");

	json_object_set_new(id2label, "3", json_string("abseiling"));
	json_object_set_new(id2label, "399", json_string("zumba"));
}

static int
suite_init(void)
{
	char err[512];
	const char *env = getenv("MB_PYTHON");
	const size_t cfg_len = 1 << 16;

	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_videomae_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	g_config = malloc(cfg_len);
	if (g_config == NULL || mb_net_layout(&mb_videomae_net, "tiny", &g_specs, g_config, cfg_len,
					      err, sizeof(err)) < 0) {
		fprintf(stderr, "layout: %s\n", err);
		return -1;
	}
	if (make_ckpt("tiny", g_specs.v, g_specs.n, "F32", 0, 1, some_labels) == NULL)
		return -1;
	snprintf(g_tiny, sizeof(g_tiny), "%s/tiny", g_dir);
	for (int c = 0; c < CLIPS; c++) {
		uint64_t seed = 100 + (uint64_t)c;

		g_clip[c] = malloc(MB_VIDEOMAE_CLIP_BYTES);
		if (g_clip[c] == NULL)
			return -1;
		/* noise over a moving gradient: tubelets that differ in time and space */
		for (uint32_t i = 0; i < MB_VIDEOMAE_CLIP_BYTES; i++) {
			uint32_t px = i / 3, x = px % 224, y = px / 224 % 224, t = px / (224 * 224);

			g_clip[c][i] = (uint8_t)((x + 2 * y + 9 * t) * (c + 1) / 4 +
						 mb_test_rand(&seed) % 96);
		}
	}
	if (env != NULL && env[0] != '\0')
		snprintf(g_python, sizeof(g_python), "%s", env);
	else if (access("/usr/bin/python3", X_OK) == 0)
		snprintf(g_python, sizeof(g_python), "/usr/bin/python3");
	else
		snprintf(g_python, sizeof(g_python), "python3");
	return 0;
}

static int
suite_cleanup(void)
{
	char cmd[160];

	for (int c = 0; c < CLIPS; c++)
		free(g_clip[c]);
	mb_net_specs_free(&g_specs);
	free(g_config);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- running the model ---- */

struct loaded {
	void *state, *worker;
};

static int
load(struct loaded *l, const char *ckpt, char *reason, size_t len)
{
	struct mb_model_load_args args = {.device = -1, .numa_node = -1, .weights_path = ckpt};
	int rc;

	l->state = l->worker = NULL;
	rc = mb_model_videomae.load(&args, &l->state, reason, len);
	if (rc == 0 && (rc = mb_model_videomae.worker_init(l->state, -1, &l->worker)) != 0)
		mb_model_videomae.unload(l->state);
	return rc;
}

static void
unload(struct loaded *l)
{
	mb_model_videomae.worker_fini(l->state, l->worker);
	mb_model_videomae.unload(l->state);
}

struct video {
	struct mb_request_hdr hdr;
	struct mb_model_item it;
};

static void
item_of(struct video *v, const uint8_t *clip, uint16_t frames)
{
	memset(v, 0, sizeof(*v));
	v->hdr = (struct mb_request_hdr){.version = 1,
					 .media = MB_MEDIA_RGB24,
					 .channels = 3,
					 .frames = frames,
					 .height = 224,
					 .width = 224,
					 .payload_len = (uint32_t)frames * 224 * 224 * 3};
	snprintf(v->hdr.model, sizeof(v->hdr.model), "videomae");
	v->it = (struct mb_model_item){
		.hdr = &v->hdr, .payload = clip, .payload_len = v->hdr.payload_len};
}

/* Run clips @p first .. @p first + n - 1 as one batch; each result's 5 pairs to cls/score. */
static void
run_clips(struct loaded *l, int first, int n, uint32_t cls[][5], float score[][5])
{
	struct video v[CLIPS];
	struct mb_model_item items[CLIPS];
	struct mb_model_batch b = {
		.items = items,
		.n_items = (uint32_t)n,
		.device = -1,
		.worker = l->worker,
		.alloc_result = alloc_result,
	};

	for (int i = 0; i < n; i++) {
		item_of(&v[i], g_clip[first + i], 16);
		items[i] = v[i].it;
	}
	CU_ASSERT_EQUAL_FATAL(mb_model_videomae.run(l->state, &b), 0);
	for (int i = 0; i < n; i++) {
		const uint8_t *r = items[i].result;

		CU_ASSERT_FALSE_FATAL(items[i].failed);
		CU_ASSERT_FATAL(items[i].result_type == MB_RESULT_TOPK && items[i].rows == 5 &&
				items[i].cols == 2 && items[i].result_len == 40);
		for (int k = 0; k < 5; k++) {
			memcpy(&cls[i][k], r + 8 * k, 4);
			memcpy(&score[i][k], r + 8 * k + 4, 4);
		}
		free(items[i].result);
	}
}

/* ---- the reference ---- */

/* The reference's logits of every clip on @p ckpt: [CLIPS x CLASSES], malloc'd; NULL (and a
 * failed assertion saying why) when it cannot run. */
static double *
reference(const char *ckpt, double *seconds)
{
	char clips[128], out[128], cmd[1024];
	double *logits = NULL, t0;
	FILE *f;
	int rc;

	snprintf(cmd, sizeof(cmd), "'%s' -c 'import torch, numpy' 2>&1", g_python);
	if (system(cmd) != 0) {
		printf("\n    FAIL: '%s' cannot import torch and numpy: the float64 reference "
		       "(tests/unit/gpu/ref/videomae_ref.py) needs them; install python3-torch "
		       "and python3-numpy (CI does), or point MB_PYTHON at a python that has "
		       "them",
		       g_python);
		CU_FAIL("no torch for the reference (see the message above)");
		return NULL;
	}
	snprintf(clips, sizeof(clips), "%s/clips.rgb", g_dir);
	snprintf(out, sizeof(out), "%s/logits.f64", g_dir);
	f = fopen(clips, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (int c = 0; c < CLIPS; c++)
		CU_ASSERT_EQUAL(fwrite(g_clip[c], 1, MB_VIDEOMAE_CLIP_BYTES, f),
				MB_VIDEOMAE_CLIP_BYTES);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' %d '%s' > '%s/ref.txt'", g_python,
		 mb_test_source_path("tests/unit/gpu/ref/videomae_ref.py"), ckpt, clips, CLIPS, out,
		 g_dir);
	t0 = now(CLOCK_MONOTONIC);
	rc = system(cmd);
	*seconds = now(CLOCK_MONOTONIC) - t0;
	if (rc != 0) {
		printf("\n    FAIL: the reference exited with status %d: %s", rc, cmd);
		CU_FAIL("the reference failed");
		return NULL;
	}
	logits = malloc(sizeof(double) * CLIPS * CLASSES);
	f = fopen(out, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fread(logits, sizeof(double), CLIPS * CLASSES, f), CLIPS * CLASSES);
	fclose(f);
	return logits;
}

/* ---- tests ---- */

static void
test_check(void)
{
	struct video v;
	char reason[256];

	item_of(&v, NULL, 16);
	CU_ASSERT_EQUAL(mb_model_videomae.check(&v.hdr, reason, sizeof(reason)), 0);
	v.hdr.frames = 8;
	CU_ASSERT_EQUAL(mb_model_videomae.check(&v.hdr, reason, sizeof(reason)), -1);
	printf("\n    8 frames: \"%s\"", reason);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "8 x 224 x 224"));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "frames=16, height=224, width=224"));
	v.hdr.frames = 16;
	v.hdr.height = 112;
	CU_ASSERT_EQUAL(mb_model_videomae.check(&v.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_EQUAL(mb_model_videomae.media_mask, MB_MEDIA_MASK(MB_MEDIA_RGB24));
	CU_ASSERT_EQUAL(mb_model_videomae.devices,
			MB_MODEL_ON_CPU | (MB_HAVE_CUDA ? MB_MODEL_ON_CUDA : 0));
	CU_ASSERT_EQUAL(mb_model_videomae.base_units, 5);
	CU_ASSERT_STRING_EQUAL(mb_model_videomae.summary, "VideoMAE video classification: 16 "
							  "RGB24 frames of 224x224 -> top-5 "
							  "(class, score)");
}

/* the reference's rank-r class of clip @p c: higher logit first, ties by the lower id */
static uint32_t
ref_rank(const double *l, int r)
{
	uint32_t prev = 0, best = 0;

	for (int k = 0; k <= r; k++) {
		int found = 0;

		for (uint32_t c = 0; c < CLASSES; c++) {
			int below_prev = k == 0 || l[c] < l[prev] || (l[c] == l[prev] && c > prev);

			if (below_prev && (!found || l[c] > l[best]))
				best = c, found = 1;
		}
		prev = best;
	}
	return best;
}

/*
 * The tiny checkpoint at @p ckpt (@p what, for the log) against the float64 reference on every
 * clip in one batch: the same top-5, scores within 1e-4; the scores of clip 0 in @p score0.
 */
static void
check_reference(const char *ckpt, const char *what, float score0[5])
{
	struct loaded l;
	char reason[512];
	uint32_t cls[CLIPS][5];
	float score[CLIPS][5], *logits, *scratch;
	double *ref, ref_s, t0, cpu, worst = 0, worst_logit = 0, big = 0;
	const struct mb_net *net;
	const uint8_t *clips[CLIPS];
	int same = 0;

	CU_ASSERT_EQUAL_FATAL(load(&l, ckpt, reason, sizeof(reason)), 0);
	t0 = now(CLOCK_PROCESS_CPUTIME_ID);
	run_clips(&l, 0, CLIPS, cls, score);
	cpu = now(CLOCK_PROCESS_CPUTIME_ID) - t0;
	ref = reference(ckpt, &ref_s);
	if (ref == NULL) {
		unload(&l);
		return;
	}
	for (int c = 0; c < CLIPS; c++) {
		const double *lg = ref + (size_t)c * CLASSES;
		double max = -HUGE_VAL, sum = 0;

		for (int k = 0; k < CLASSES; k++)
			max = fmax(max, lg[k]);
		for (int k = 0; k < CLASSES; k++)
			sum += exp(lg[k] - max);
		for (int r = 0; r < 5; r++) {
			double want = exp(lg[cls[c][r]] - max) / sum;

			same += cls[c][r] == ref_rank(lg, r);
			worst = fmax(worst, fabs(score[c][r] - want) / want);
		}
	}
	/* the logits themselves, through mb_videomae_logits() */
	net = l.state;
	scratch = aligned_alloc(64, mb_videomae_scratch(net, CLIPS) * sizeof(float));
	logits = malloc(sizeof(float) * CLIPS * CLASSES);
	for (int c = 0; c < CLIPS; c++)
		clips[c] = g_clip[c];
	mb_videomae_logits(net, scratch, clips, CLIPS, logits);
	for (int i = 0; i < CLIPS * CLASSES; i++) {
		worst_logit = fmax(worst_logit, fabs(logits[i] - ref[i]));
		big = fmax(big, fabs(ref[i]));
	}
	printf("\n    tiny (d 128, 2 layers, 2 heads, ffn 512, 400 classes), %s, %d clips in "
	       "one batch: %.2f CPU s (%.2f s a clip); reference %.1f s",
	       what, CLIPS, cpu, cpu / CLIPS, ref_s);
	printf("\n    top-5 classes as the float64 reference ranks them: %d of %d; max relative "
	       "score error %.2e (bar 1e-4); max |logit error| %.2e (max |logit| %.2f)",
	       same, 5 * CLIPS, worst, worst_logit, big);
	printf("\n    top-1 of clip 0: class %u, score %.4f", cls[0][0], score[0][0]);
	CU_ASSERT_EQUAL(same, 5 * CLIPS);
	CU_ASSERT(worst <= 1e-4);
	CU_ASSERT(big > 0.5); /* the logits are not trivially flat */
	memcpy(score0, score[0], sizeof(score[0]));
	free(scratch);
	free(logits);
	free(ref);
	unload(&l);
}

static void
test_reference(void)
{
	float score0[5];

	check_reference(g_tiny, "ImageNet's normalisation (no preprocessor_config.json)", score0);
}

static void
test_batch_as_alone(void)
{
	struct loaded l;
	char reason[512];
	uint32_t bc[CLIPS][5], oc[1][5];
	float bs[CLIPS][5], os[1][5];
	double worst = 0;
	int same_cls = 0, bitwise = 0;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_tiny, reason, sizeof(reason)), 0);
	run_clips(&l, 0, CLIPS, bc, bs);
	for (int c = 0; c < CLIPS; c++) {
		run_clips(&l, c, 1, oc, os);
		same_cls += memcmp(oc[0], bc[c], sizeof(oc[0])) == 0;
		bitwise += memcmp(os[0], bs[c], sizeof(os[0])) == 0;
		for (int r = 0; r < 5; r++)
			worst = fmax(worst, fabs(os[0][r] - bs[c][r]));
	}
	printf("\n    a batch of %d against each clip alone: same classes %d of %d, max |score "
	       "difference| %.2e (bar 1e-5), bit for bit: %d of %d",
	       CLIPS, same_cls, CLIPS, worst, bitwise, CLIPS);
	CU_ASSERT_EQUAL(same_cls, CLIPS);
	CU_ASSERT(worst <= 1e-5);
	unload(&l);
}

static void
eps_1e6(json_t *cfg)
{
	json_object_set_new(cfg, "layer_norm_eps", json_real(1e-6));
}

static void
test_labels_and_no_config(void)
{
	struct loaded l, bare;
	char reason[512];
	const char *dir;
	const struct mb_net *net;
	const struct mb_videomae_dims *dm;
	uint32_t c1[1][5], c2[1][5];
	float s1[1][5], s2[1][5];

	CU_ASSERT_EQUAL_FATAL(load(&l, g_tiny, reason, sizeof(reason)), 0);
	net = l.state;
	dm = mb_videomae_dims_of(net);
	CU_ASSERT(dm->d == D && dm->layers == 2 && dm->heads == 2 && dm->ffn == 512 &&
		  dm->classes == CLASSES);
	CU_ASSERT_DOUBLE_EQUAL(dm->eps, 1e-12, 1e-20);
	CU_ASSERT_STRING_EQUAL(mb_videomae_label(net, 3), "abseiling");
	CU_ASSERT_STRING_EQUAL(mb_videomae_label(net, 399), "zumba");
	CU_ASSERT_STRING_EQUAL(mb_videomae_label(net, 7), "class 7");
	CU_ASSERT_PTR_NULL(mb_videomae_label(net, CLASSES));

	/* the same weights without config.json: heads d / 64 = 2, eps 1e-12, no labels */
	dir = make_ckpt("noconfig", g_specs.v, g_specs.n, "F32", 0, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_EQUAL_FATAL(load(&bare, dir, reason, sizeof(reason)), 0);
	CU_ASSERT_PTR_NULL(mb_videomae_label(bare.state, 3));
	CU_ASSERT_EQUAL(mb_videomae_dims_of(bare.state)->heads, 2);
	run_clips(&l, 0, 1, c1, s1);
	run_clips(&bare, 0, 1, c2, s2);
	CU_ASSERT_EQUAL(memcmp(c1, c2, sizeof(c1)), 0);
	CU_ASSERT_EQUAL(memcmp(s1, s2, sizeof(s1)), 0);
	printf("\n    labels 3 \"%s\", 7 \"%s\"; without config.json: no labels, heads %u, the "
	       "same result bit for bit",
	       mb_videomae_label(net, 3), mb_videomae_label(net, 7),
	       mb_videomae_dims_of(bare.state)->heads);
	unload(&bare);
	unload(&l);
	{ /* mediabatch-weights --check says the sizes, and what it assumed without config.json */
		char out[1024];

		CU_ASSERT_EQUAL(mb_builtin_net_check("videomae", g_tiny, out, sizeof(out)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "with the names as published (no prefix)"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "; hidden_size 128, 2 layers, 2 heads, "
						   "intermediate_size 512, 400 classes, labels "
						   "from config.json's id2label; loads as"));
		CU_ASSERT_EQUAL(mb_builtin_net_check("videomae", dir, out, sizeof(out)), 0);
		printf("\n    --check without config.json: %s", out);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 heads (assumed: no num_attention_heads"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "no labels (no id2label in config.json"));
	}

	/* layer_norm_eps from config.json */
	dir = make_ckpt("eps", g_specs.v, g_specs.n, "F32", 0, 1, eps_1e6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_EQUAL_FATAL(load(&l, dir, reason, sizeof(reason)), 0);
	CU_ASSERT_DOUBLE_EQUAL(mb_videomae_dims_of(l.state)->eps, 1e-6, 1e-15);
	unload(&l);
}

/* @p text as @p dir/preprocessor_config.json; returns @p dir */
static const char *
with_preprocessor(const char *dir, const char *text)
{
	char path[256];
	FILE *f;

	if (dir == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/preprocessor_config.json", dir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT(fputs(text, f) >= 0);
	fclose(f);
	return dir;
}

/* The normalisation a checkpoint with @p text as its preprocessor_config.json loads with. */
static void
dims_with(const char *name, const char *text, struct mb_videomae_dims *out)
{
	struct loaded l;
	char reason[512];
	const char *dir =
		with_preprocessor(make_ckpt(name, g_specs.v, g_specs.n, "F32", 0, 1, NULL), text);

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_EQUAL_FATAL(load(&l, dir, reason, sizeof(reason)), 0);
	*out = *mb_videomae_dims_of(l.state);
	unload(&l);
}

/*
 * preprocessor_config.json's normalisation, as Hugging Face's VideoMAEImageProcessor applies
 * it (Hugging Face's own default, mean and std 0.5, written out here): the result follows it
 * (against the reference reading the same file) and differs from ImageNet's.
 */
static void
test_preprocessor(void)
{
	float imagenet[CLIPS][5], half[5], diff = 0;
	uint32_t cls[CLIPS][5];
	struct mb_videomae_dims dm;
	struct loaded l;
	char reason[512];
	const char *dir;

	CU_ASSERT_EQUAL_FATAL(load(&l, g_tiny, reason, sizeof(reason)), 0);
	run_clips(&l, 0, 1, cls, imagenet);
	unload(&l);
	dir = with_preprocessor(
		make_ckpt("pre05", g_specs.v, g_specs.n, "F32", 0, 1, some_labels),
		"{\"do_normalize\": true, \"do_rescale\": true, "
		"\"rescale_factor\": 0.00392156862745098, \"image_mean\": [0.5, 0.5, "
		"0.5], \"image_std\": [0.5, 0.5, 0.5], \"size\": {\"shortest_edge\": "
		"224}, \"image_processor_type\": \"VideoMAEImageProcessor\"}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	check_reference(dir, "preprocessor_config.json's mean and std 0.5", half);
	for (int k = 0; k < 5; k++)
		diff = fmaxf(diff, fabsf(half[k] - imagenet[0][k]));
	printf("\n    clip 0's top-5 scores move by up to %.4f between the two", diff);
	CU_ASSERT(diff > 1e-3); /* the file was read */

	/* one number for every channel; the class defaults for absent keys; switches */
	dims_with("pre_one", "{\"image_mean\": 0.25, \"image_std\": 2}", &dm);
	CU_ASSERT(dm.mean[0] == 0.25 && dm.mean[2] == 0.25 && dm.std[1] == 2.0);
	CU_ASSERT_DOUBLE_EQUAL(dm.rescale, 1.0 / 255.0, 1e-15);
	dims_with("pre_empty", "{}", &dm);
	CU_ASSERT(dm.mean[1] == 0.5 && dm.std[1] == 0.5);
	dims_with("pre_off", "{\"do_normalize\": false, \"do_rescale\": false}", &dm);
	CU_ASSERT(dm.mean[0] == 0.0 && dm.std[0] == 1.0 && dm.rescale == 1.0);
}

/* ---- refused at load ---- */

static void
expect_refused(const char *what, const char *ckpt, const char *const *needles)
{
	struct loaded l;
	char reason[512] = "";
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ckpt);
	rc = load(&l, ckpt, reason, sizeof(reason));
	CU_ASSERT_NOT_EQUAL(rc, 0);
	if (rc == 0) {
		unload(&l);
		return;
	}
	printf("\n    %s: \"%s\"", what, reason);
	for (const char *const *n = needles; *n != NULL; n++) {
		if (strstr(reason, *n) == NULL)
			printf("\n      (lacks \"%s\")", *n);
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, *n));
	}
}

static void
eight_frames(json_t *cfg)
{
	json_object_set_new(cfg, "num_frames", json_integer(8));
}

static void
wrong_hidden_size(json_t *cfg)
{
	json_object_set_new(cfg, "hidden_size", json_integer(256));
}

static void
other_activation(json_t *cfg)
{
	json_object_set_new(cfg, "hidden_act", json_string("gelu_new"));
}

/* id2label with 10 labels for 400 classes: Hugging Face refuses it (num_labels 10) */
static void
ten_labels(json_t *cfg)
{
	json_t *l = json_object();

	for (int i = 0; i < 10; i++) {
		char k[8], v[16];

		snprintf(k, sizeof(k), "%d", i);
		snprintf(v, sizeof(v), "L%d", i);
		json_object_set_new(l, k, json_string(v));
	}
	json_object_set_new(cfg, "id2label", l);
}

static void
no_mean_pooling(json_t *cfg)
{
	json_object_set_new(cfg, "use_mean_pooling", json_false());
}

static void
test_refused_at_load(void)
{
	struct mb_weights_spec *s = calloc(g_specs.n, sizeof(*s));
	uint32_t n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* layer 1's q_bias missing */
	for (uint32_t i = 0; i < g_specs.n; i++)
		if (strcmp(g_specs.v[i].name,
			   "videomae.encoder.layer.1.attention.attention.q_bias"))
			s[n++] = g_specs.v[i];
	CU_ASSERT_EQUAL(n, g_specs.n - 1);
	expect_refused(
		"no q_bias in layer 1", make_ckpt("noqbias", s, n, "F32", 0, 1, NULL),
		(const char *const[]){"/noqbias: tensor",
				      "'videomae.encoder.layer.1.attention.attention.q_bias'",
				      "missing", "[128]", NULL});

	/* the classifier [400, 64] */
	memcpy(s, g_specs.v, sizeof(*s) * g_specs.n);
	for (uint32_t i = 0; i < g_specs.n; i++)
		if (strcmp(s[i].name, "classifier.weight") == 0)
			s[i].shape[1] = 64;
	expect_refused("a misshaped classifier",
		       make_ckpt("badcls", s, g_specs.n, "F32", 0, 1, NULL),
		       (const char *const[]){"badcls/model.safetensors", "'classifier.weight'",
					     "[400, 64]", "[400, 128]", NULL});

	/* config.json: 8 frames; hidden_size against the tensors; another activation */
	expect_refused(
		"config.json num_frames 8",
		make_ckpt("frames8", g_specs.v, g_specs.n, "F32", 0, 1, eight_frames),
		(const char *const[]){"frames8/config.json", "num_frames 8", "expected 16", NULL});
	expect_refused("config.json hidden_size 256",
		       make_ckpt("hidden", g_specs.v, g_specs.n, "F32", 0, 1, wrong_hidden_size),
		       (const char *const[]){
			       "hidden/config.json", "hidden_size 256", "tensors have 128",
			       "videomae.embeddings.patch_embeddings.projection.weight", NULL});
	expect_refused("config.json hidden_act gelu_new",
		       make_ckpt("act", g_specs.v, g_specs.n, "F32", 0, 1, other_activation),
		       (const char *const[]){"act/config.json", "hidden_act \"gelu_new\"",
					     "expected \"gelu\"", NULL});

	/* d 96 and no config.json: the head count is unknown */
	memcpy(s, g_specs.v, sizeof(*s) * g_specs.n);
	for (uint32_t i = 0; i < g_specs.n; i++)
		for (uint32_t j = 0; j < s[i].ndim; j++)
			if (s[i].shape[j] == D)
				s[i].shape[j] = 96;
	expect_refused(
		"d 96 without config.json", make_ckpt("d96", s, g_specs.n, "F32", 0, 0, NULL),
		(const char *const[]){"d96", "hidden_size 96",
				      "videomae.embeddings.patch_embeddings.projection.weight",
				      "[96, 3, 2, 16, 16]", "not a multiple of 64",
				      "d96/config.json is needed", NULL});
	/* use_mean_pooling false: in config.json, or as the tensors of that head (the
	 * encoder's layernorm, no fc_norm); each said as such (it was served as the mean-pooling
	 * head, or refused as a missing fc_norm) */
	expect_refused("use_mean_pooling false",
		       make_ckpt("nomean", g_specs.v, g_specs.n, "F32", 0, 1, no_mean_pooling),
		       (const char *const[]){"nomean/config.json", "use_mean_pooling false",
					     "not supported", NULL});
	n = 0;
	for (uint32_t i = 0; i < g_specs.n; i++) {
		s[n] = g_specs.v[i];
		if (strcmp(s[n].name, "fc_norm.weight") == 0)
			s[n].name = "videomae.layernorm.weight";
		else if (strcmp(s[n].name, "fc_norm.bias") == 0)
			s[n].name = "videomae.layernorm.bias";
		n++;
	}
	expect_refused("the first-token head's tensors",
		       make_ckpt("clshead", s, n, "F32", 0, 0, NULL),
		       (const char *const[]){"clshead: tensor 'videomae.layernorm.weight' and no "
					     "'fc_norm.weight'",
					     "use_mean_pooling false", "not supported", NULL});
	/* labels for another classifier */
	expect_refused("id2label of 10 for 400 classes",
		       make_ckpt("labels10", g_specs.v, g_specs.n, "F32", 0, 1, ten_labels),
		       (const char *const[]){"labels10/config.json", "id2label has 10 labels",
					     "classifier has 400 classes",
					     "'classifier.weight' [400, 128]", NULL});
	free(s);
	/* preprocessor_config.json: a zero std, a mean of two channels, not JSON */
	expect_refused(
		"image_std with a 0",
		with_preprocessor(make_ckpt("pre_std0", g_specs.v, g_specs.n, "F32", 0, 1, NULL),
				  "{\"image_std\": [0.5, 0, 0.5]}"),
		(const char *const[]){"image_std[1] 0", "above 0", NULL});
	expect_refused(
		"image_mean of 2",
		with_preprocessor(make_ckpt("pre_mean2", g_specs.v, g_specs.n, "F32", 0, 1, NULL),
				  "{\"image_mean\": [0.5, 0.5]}"),
		(const char *const[]){"pre_mean2/preprocessor_config.json",
				      "\"image_mean\" is an array",
				      "expected an array of 3 numbers", NULL});
	expect_refused(
		"preprocessor_config.json not JSON",
		with_preprocessor(make_ckpt("pre_bad", g_specs.v, g_specs.n, "F32", 0, 1, NULL),
				  "{\"image_mean\": [0.5,"),
		(const char *const[]){"pre_bad/preprocessor_config.json: not valid JSON", NULL});
}

static void
test_f16_bf16(void)
{
	static const char *const dtype[2] = {"F16", "BF16"};
	struct loaded l;
	char reason[512], name[16];
	uint32_t c32[CLIPS][5], c[CLIPS][5];
	float s32[CLIPS][5], s[CLIPS][5];

	CU_ASSERT_EQUAL_FATAL(load(&l, g_tiny, reason, sizeof(reason)), 0);
	run_clips(&l, 0, CLIPS, c32, s32);
	unload(&l);
	for (int t = 0; t < 2; t++) {
		/* BF16 as a sharded checkpoint (shards of at most 256 KiB) */
		const char *dir;
		double worst = 0;
		int same = 0;

		snprintf(name, sizeof(name), "tiny-%s", dtype[t]);
		dir = make_ckpt(name, g_specs.v, g_specs.n, dtype[t], t == 1 ? 256 << 10 : 0, 1,
				NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
		CU_ASSERT_EQUAL_FATAL(load(&l, dir, reason, sizeof(reason)), 0);
		run_clips(&l, 0, CLIPS, c, s);
		for (int i = 0; i < CLIPS; i++) {
			same += c[i][0] == c32[i][0];
			worst = fmax(worst, fabs(s[i][0] - s32[i][0]));
		}
		printf("\n    %s%s: the same top-1 for %d of %d clips; max |top-1 score error| "
		       "vs F32 %.2e",
		       dtype[t], t == 1 ? " (sharded)" : "", same, CLIPS, worst);
		CU_ASSERT_EQUAL(same, CLIPS);
		unload(&l);
	}
}

static const struct mb_test_case cases[] = {
	{"videomae refuses other shapes, naming the expected one", test_check},
	{"tiny: top-5 and scores match a float64 PyTorch reference", test_reference},
	{"a batch of 3 gives each clip's result alone", test_batch_as_alone},
	{"config.json's labels; a checkpoint without config.json", test_labels_and_no_config},
	{"checkpoints refused at load, naming file, tensor or key, expected and found",
	 test_refused_at_load},
	{"F16 and BF16 (sharded) copies keep the top-1", test_f16_bf16},
	{"preprocessor_config.json's normalisation, against the reference", test_preprocessor},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"videomae (CPU)", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("videomae_test", suites);
}
