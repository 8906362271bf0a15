/*
 * networks_test.c: the built-in clap network on the CPU, through its model.h interface,
 * with placeholder weights generated here. (whisper and videomae, the published
 * architectures, have tests of their own against PyTorch references: whisper_test.c,
 * videomae_test.c.)
 *
 * clap is checked against a float64 reference written in this file from its definition
 * (mb_models.h): a plain DFT log-mel with the filterbank rebuilt from librosa's Slaney
 * formulas, direct convolution loops (no im2col, no BLAS), erf GELU. Tolerance: max |error|
 * over every output value 1e-5 (unit-norm output). Also: shapes at the length limits,
 * requests refused with the expected shape in the reason, results independent of the batch
 * they ran in (bit for bit, in mixed batches of many lengths, forwards and reversed, with a
 * refused item among them), and weights files that are missing, truncated or mis-shaped
 * refused at load with the reason.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_models.h"
#include "mb_test.h"
#include "mb_weights.h"

static char g_dir[64];
static char g_path[1][128];
static float *g_w[1][8]; /* the weights as the test reads them, per model */

enum { CLAP };
static const char *const g_names[1] = {"clap"};

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

static int
suite_init(void)
{
	char err[512];

	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_networks_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	for (int m = 0; m < 1; m++) {
		const struct mb_builtin_weights *bw = mb_builtin_weights_of(g_names[m]);

		snprintf(g_path[m], sizeof(g_path[m]), "%s/%s.safetensors", g_dir, g_names[m]);
		if (bw == NULL ||
		    mb_weights_generate(g_path[m], bw->specs, bw->n, 1234, err, sizeof(err)) < 0 ||
		    mb_weights_load(g_path[m], bw->specs, bw->n, g_w[m], err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
	}
	return 0;
}

static int
suite_cleanup(void)
{
	for (int m = 0; m < 1; m++) {
		unlink(g_path[m]);
		for (int i = 0; i < 8; i++)
			free(g_w[m][i]);
	}
	unlink("/tmp/mb_networks_bad.safetensors");
	return rmdir(g_dir);
}

struct loaded {
	const struct mb_model_desc *d;
	void *state, *worker;
};

static void
load(struct loaded *l, const struct mb_model_desc *d, const char *weights)
{
	struct mb_model_load_args args = {.device = -1, .numa_node = -1, .weights_path = weights};
	char reason[256];

	l->d = d;
	l->worker = NULL;
	CU_ASSERT_EQUAL_FATAL(d->load(&args, &l->state, reason, sizeof(reason)), 0);
	CU_ASSERT_EQUAL_FATAL(d->worker_init(l->state, -1, &l->worker), 0);
}

static void
unload(struct loaded *l)
{
	l->d->worker_fini(l->state, l->worker);
	l->d->unload(l->state);
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

	return l->d->run(l->state, &b);
}

/* ---- media ---- */

struct clip {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
	double *samples;
	uint32_t n;
};

static void
make_clip(struct clip *c, const char *model, uint32_t n, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->hdr = (struct mb_request_hdr){
		.version = 1, .media = MB_MEDIA_PCM_S16LE, .channels = 1, .sample_rate = 16000};
	snprintf(c->hdr.model, sizeof(c->hdr.model), "%s", model);
	c->samples = calloc(n, sizeof(double));
	c->bytes = calloc(n, 2);
	for (uint32_t i = 0; i < n; i++) {
		double t = i / 16000.0;
		double v = 0.3 * sin(2 * M_PI * 330 * t) +
			   0.2 * sin(2 * M_PI * (150 + 2500 * t) * t) +
			   0.05 * ((double)(mb_test_rand(&seed) % 2001) / 1000.0 - 1.0);
		int16_t s = (int16_t)lrint(v * 32767.0);

		c->bytes[2 * i] = (uint8_t)s;
		c->bytes[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
		c->samples[i] = s / 32768.0;
	}
	c->hdr.payload_len = 2 * n;
}

static void
free_clip(struct clip *c)
{
	free(c->bytes);
	free(c->samples);
}

static struct mb_model_item
item_of(struct clip *c)
{
	return (struct mb_model_item){
		.hdr = &c->hdr, .payload = c->bytes, .payload_len = c->hdr.payload_len};
}

/* ---- float64 references ---- */

static double
ref_hz_to_mel(double hz)
{
	return hz < 1000.0 ? hz * 3.0 / 200.0 : 15.0 + 27.0 * log(hz / 1000.0) / log(6.4);
}

static double
ref_mel_to_hz(double mel)
{
	return mel < 15.0 ? mel * 200.0 / 3.0 : 1000.0 * pow(6.4, (mel - 15.0) / 27.0);
}

/* [frames x mels], frames = n / 160 */
static double *
ref_logmel(const struct clip *c, int mels)
{
	const int n_fft = 400, hop = 160, bins = 201;
	uint32_t frames = c->n / hop;
	double *padded = calloc(c->n + 400, sizeof(double));
	double *out = calloc((size_t)frames * mels, sizeof(double));
	double *fb = calloc((size_t)mels * bins, sizeof(double));
	double edges[130], max = -HUGE_VAL;

	for (int i = 0; i < mels + 2; i++)
		edges[i] = ref_mel_to_hz(ref_hz_to_mel(8000.0) * i / (mels + 1));
	for (int m = 0; m < mels; m++)
		for (int k = 0; k < bins; k++) {
			double f = k * 40.0;
			double up = (f - edges[m]) / (edges[m + 1] - edges[m]);
			double down = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]);
			double tri = up < down ? up : down;

			fb[m * bins + k] = (tri > 0 ? tri : 0) * 2.0 / (edges[m + 2] - edges[m]);
		}
	for (int64_t i = -200; i < (int64_t)c->n + 200; i++) {
		int64_t j = i < 0 ? -i : i >= (int64_t)c->n ? 2 * ((int64_t)c->n - 1) - i : i;

		padded[i + 200] = c->samples[j];
	}
	for (uint32_t t = 0; t < frames; t++) {
		double power[201];

		for (int k = 0; k < bins; k++) {
			double re = 0, im = 0;

			for (int n = 0; n < n_fft; n++) {
				double x = padded[t * hop + n] *
					   (0.5 - 0.5 * cos(2 * M_PI * n / n_fft));

				re += x * cos(2 * M_PI * k * n / n_fft);
				im -= x * sin(2 * M_PI * k * n / n_fft);
			}
			power[k] = re * re + im * im;
		}
		for (int m = 0; m < mels; m++) {
			double acc = 0;

			for (int k = 0; k < bins; k++)
				acc += fb[m * bins + k] * power[k];
			out[t * mels + m] = log10(acc > 1e-10 ? acc : 1e-10);
			if (out[t * mels + m] > max)
				max = out[t * mels + m];
		}
	}
	for (size_t i = 0; i < (size_t)frames * mels; i++)
		out[i] = ((out[i] > max - 8.0 ? out[i] : max - 8.0) + 4.0) / 4.0;
	free(padded);
	free(fb);
	return out;
}

static double
ref_gelu(double x)
{
	return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

/* Direct convolution: y[o][co] = gelu(b[co] + sum_ci sum_j w[co][ci][j] x[o*s + j - 1][ci]) */
static double *
ref_conv(const double *x, int t, int cin, const float *w, const float *b, int cout, int stride,
	 int *t_out)
{
	int to = (t + 2 - 3) / stride + 1;
	double *y = calloc((size_t)to * cout, sizeof(double));

	for (int o = 0; o < to; o++)
		for (int co = 0; co < cout; co++) {
			double acc = b[co];

			for (int ci = 0; ci < cin; ci++)
				for (int j = 0; j < 3; j++) {
					int src = o * stride + j - 1;

					if (src >= 0 && src < t)
						acc += (double)w[(co * cin + ci) * 3 + j] *
						       x[src * cin + ci];
				}
			y[o * cout + co] = ref_gelu(acc);
		}
	*t_out = to;
	return y;
}

static double
max_err(const float *got, const double *want, size_t n, double *max_ref)
{
	double worst = 0, big = 0;

	for (size_t i = 0; i < n; i++) {
		worst = fmax(worst, fabs(got[i] - want[i]));
		big = fmax(big, fabs(want[i]));
	}
	if (max_ref != NULL)
		*max_ref = big;
	return worst;
}

/* ---- clap ---- */

static void
test_clap_check(void)
{
	struct clip c;
	char reason[256];

	make_clip(&c, "clap", 16000, 1);
	CU_ASSERT_EQUAL(mb_model_clap.check(&c.hdr, reason, sizeof(reason)), 0);
	c.hdr.payload_len = 2 * (10 * 16000 + 1);
	CU_ASSERT_EQUAL(mb_model_clap.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "clap takes at most 10 s (160000 samples)"));
	c.hdr.payload_len = 2 * 100;
	CU_ASSERT_EQUAL(mb_model_clap.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "clap needs at least 400"));
	CU_ASSERT_EQUAL(mb_model_clap.base_units, 2);
	free_clip(&c);
}

static void
test_clap_reference(void)
{
	struct loaded l;
	struct clip c;
	struct mb_model_item it;
	double *mel, *h1, *h2, *h3, pooled[256], want[512], norm = 0, got_norm = 0, err;
	int t1, t2, t3;

	load(&l, &mb_model_clap, g_path[CLAP]);
	make_clip(&c, "clap", 16000, 6); /* 100 frames -> 100 -> 50 -> 25 */
	it = item_of(&c);
	CU_ASSERT_EQUAL_FATAL(run(&l, &it, 1), 0);
	CU_ASSERT_FALSE_FATAL(it.failed);
	CU_ASSERT(it.rows == 1 && it.cols == 512 && it.result_len == 2048);
	mel = ref_logmel(&c, 64);
	h1 = ref_conv(mel, 100, 64, g_w[CLAP][0], g_w[CLAP][1], 128, 1, &t1);
	h2 = ref_conv(h1, t1, 128, g_w[CLAP][2], g_w[CLAP][3], 256, 2, &t2);
	h3 = ref_conv(h2, t2, 256, g_w[CLAP][4], g_w[CLAP][5], 256, 2, &t3);
	CU_ASSERT_EQUAL(t3, 25);
	for (int ch = 0; ch < 256; ch++) {
		pooled[ch] = 0;
		for (int t = 0; t < t3; t++)
			pooled[ch] += h3[t * 256 + ch] / t3;
	}
	for (int o = 0; o < 512; o++) {
		want[o] = g_w[CLAP][7][o];
		for (int i = 0; i < 256; i++)
			want[o] += (double)g_w[CLAP][6][o * 256 + i] * pooled[i];
		norm += want[o] * want[o];
	}
	for (int o = 0; o < 512; o++) {
		want[o] /= sqrt(norm);
		got_norm += (double)((float *)it.result)[o] * ((float *)it.result)[o];
	}
	err = max_err(it.result, want, 512, NULL);
	printf("\n    clap, 1 s: [1 x 512], |y| = %.7f, max |error| vs float64 reference %.2e "
	       "(bar 1e-5)",
	       sqrt(got_norm), err);
	CU_ASSERT_DOUBLE_EQUAL(sqrt(got_norm), 1.0, 1e-5);
	CU_ASSERT(err <= 1e-5);
	free(mel);
	free(h1);
	free(h2);
	free(h3);
	free(it.result);
	free_clip(&c);
	unload(&l);
}

static void
test_clap_shapes_and_determinism(void)
{
	static const uint32_t lens[] = {400, 10 * 16000, 12345};
	struct loaded l;
	struct clip c[3];
	struct mb_model_item a[3], b[3];

	load(&l, &mb_model_clap, g_path[CLAP]);
	for (int i = 0; i < 3; i++) {
		make_clip(&c[i], "clap", lens[i], 20 + (uint64_t)i);
		a[i] = b[i] = item_of(&c[i]);
	}
	CU_ASSERT_EQUAL_FATAL(run(&l, a, 3), 0);
	CU_ASSERT_EQUAL_FATAL(run(&l, b + 1, 2), 0); /* other batch, other position */
	CU_ASSERT_EQUAL_FATAL(run(&l, b, 1), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FALSE(a[i].failed);
		CU_ASSERT(a[i].rows == 1 && a[i].cols == 512);
		CU_ASSERT_EQUAL(memcmp(a[i].result, b[i].result, 2048), 0);
		free(a[i].result);
		free(b[i].result);
		free_clip(&c[i]);
	}
	unload(&l);
}

/* ---- mixed batches: every item as if it ran alone ---- */

/*
 * Runs @p items as one batch, then in reverse order, and checks that every item's result has
 * the bytes it has when the item runs alone; item @p bad (or none, -1) must fail on its own.
 */
static void
expect_batch_as_alone(struct loaded *l, const struct mb_model_item *items, uint32_t n, int bad)
{
	struct mb_model_item fwd[24], rev[24], one;
	uint32_t same = 0;

	CU_ASSERT_FATAL(n <= 24);
	for (uint32_t i = 0; i < n; i++) {
		fwd[i] = items[i];
		rev[n - 1 - i] = items[i];
	}
	CU_ASSERT_EQUAL_FATAL(run(l, fwd, n), 0);
	CU_ASSERT_EQUAL_FATAL(run(l, rev, n), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct mb_model_item *f = &fwd[i], *r = &rev[n - 1 - i];

		if ((int)i == bad) {
			CU_ASSERT(f->failed && r->failed);
			CU_ASSERT(f->result == NULL && r->result == NULL);
			continue;
		}
		one = items[i];
		CU_ASSERT_EQUAL_FATAL(run(l, &one, 1), 0);
		CU_ASSERT_FALSE_FATAL(one.failed || f->failed || r->failed);
		CU_ASSERT(f->rows == one.rows && f->cols == one.cols && r->rows == one.rows);
		CU_ASSERT_EQUAL_FATAL(f->result_len, one.result_len);
		CU_ASSERT_EQUAL_FATAL(r->result_len, one.result_len);
		same += memcmp(f->result, one.result, one.result_len) == 0 &&
			memcmp(r->result, one.result, one.result_len) == 0;
		free(one.result);
		free(f->result);
		free(r->result);
	}
	printf("\n    %s: %u items (+%d refused) in a mixed batch, forwards and reversed: %u "
	       "bit-for-bit as alone",
	       l->d->name, n - (bad >= 0), bad >= 0, same);
	CU_ASSERT_EQUAL(same, n - (bad >= 0));
}

static void
test_audio_mixed_batches(void)
{
	/* lengths around OpenBLAS's row block (12: 1920 samples = 12 frames), the limits, 10 s,
	 * 100 samples (refused); 14 items */
	static const uint32_t lens[] = {400,   16000, 160000, 12345,  1920, 1921,  100,
					48000, 2399,  777,    160000, 5000, 30000, 401};
	struct clip clips[16];
	struct mb_model_item items[16];
	struct loaded l;

	load(&l, &mb_model_clap, g_path[CLAP]);
	for (uint32_t i = 0; i < 14; i++) {
		make_clip(&clips[i], "clap", lens[i], 40 + i);
		items[i] = item_of(&clips[i]);
	}
	expect_batch_as_alone(&l, items, 14, 6); /* the 100-sample one */
	for (uint32_t i = 0; i < 14; i++)
		free_clip(&clips[i]);
	unload(&l);
}

/* ---- weights problems reach the operator at load ---- */

static void
expect_load_fails(const struct mb_model_desc *d, const char *path, const char *needle)
{
	struct mb_model_load_args args = {.device = -1, .numa_node = -1, .weights_path = path};
	char reason[256] = "";
	void *state = NULL;

	CU_ASSERT_NOT_EQUAL(d->load(&args, &state, reason, sizeof(reason)), 0);
	if (strstr(reason, needle) == NULL)
		printf("\n    reason \"%s\" lacks \"%s\"", reason, needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, needle));
}

static void
test_bad_weights_refused(void)
{
	const char *bad = "/tmp/mb_networks_bad.safetensors";
	const struct mb_builtin_weights *bw = mb_builtin_weights_of("clap");
	struct mb_weights_spec wrong[8];
	char err[256];
	FILE *in, *out;
	char buf[4096];
	size_t n, total = 0;

	expect_load_fails(&mb_model_clap, "/nonexistent/w.safetensors",
			  "/nonexistent/w.safetensors: No such file or directory");
	expect_load_fails(&mb_model_clap, NULL, "no weights file");
	/* a whisper checkpoint given to clap */
	CU_ASSERT_EQUAL_FATAL(mb_builtin_net_placeholder("whisper", "tiny", "/tmp/mb_networks_w", 1,
							 "F32", 0, err, sizeof(err)),
			      0);
	expect_load_fails(&mb_model_clap, "/tmp/mb_networks_w/model.safetensors",
			  "(F32 [128, 64, 3]) is missing");
	unlink("/tmp/mb_networks_w/model.safetensors");
	unlink("/tmp/mb_networks_w/config.json");
	rmdir("/tmp/mb_networks_w");
	/* a mis-shaped tensor */
	memcpy(wrong, bw->specs, sizeof(wrong));
	wrong[6].shape[0] = 256; /* audio.proj.weight [256, 256] instead of [512, 256] */
	CU_ASSERT_EQUAL_FATAL(mb_weights_generate(bad, wrong, 8, 1, err, sizeof(err)), 0);
	expect_load_fails(&mb_model_clap, bad,
			  "tensor 'audio.proj.weight': shape [256, 256], expected [512, 256]");
	/* the first 100000 bytes of clap's file */
	in = fopen(g_path[CLAP], "rb");
	out = fopen(bad, "wb");
	while (total < 100000 && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
		fwrite(buf, 1, n, out);
		total += n;
	}
	fclose(in);
	fclose(out);
	expect_load_fails(&mb_model_clap, bad, "the file is truncated");
}

static const struct mb_test_case cases[] = {
	{"clap refuses what it cannot take", test_clap_check},
	{"clap matches a float64 reference and is unit-norm", test_clap_reference},
	{"clap shapes 25 ms .. 10 s, bit-for-bit repeatable", test_clap_shapes_and_determinism},
	{"clap: a batch of mixed lengths, each item bit-for-bit as if alone",
	 test_audio_mixed_batches},
	{"missing, foreign, mis-shaped and truncated weights are refused at load",
	 test_bad_weights_refused},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"networks (CPU)", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("networks_test", suites);
}
