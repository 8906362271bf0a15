/*
 * models_test.c: the built-in CPU models through their model.h interface.
 *
 * logmel is checked against an independent float64 reference computed here: a plain DFT
 * (no FFT), the mel filterbank rebuilt from librosa's Slaney formulas, and Whisper's
 * log/clamp/scale steps. The bar is max |error| <= 1e-3.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mb_build_config.h"
#include "mb_gpu_probe.h"
#include "mb_models.h"
#include "mb_models_perf.h"
#include "mb_test.h"

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

struct loaded {
	const struct mb_model_desc *d;
	void *state, *worker;
};

static void
load(struct loaded *l, const struct mb_model_desc *d)
{
	struct mb_model_load_args args = {.device = -1, .numa_node = -1};
	char reason[256];

	l->d = d;
	l->worker = NULL;
	CU_ASSERT_EQUAL_FATAL(d->abi_version, MB_MODEL_ABI_VERSION);
	CU_ASSERT_EQUAL_FATAL(d->load(&args, &l->state, reason, sizeof(reason)), 0);
	if (d->worker_init != NULL)
		CU_ASSERT_EQUAL_FATAL(d->worker_init(l->state, -1, &l->worker), 0);
}

static void
unload(struct loaded *l)
{
	if (l->d->worker_fini != NULL)
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

/* ---- audio helpers ---- */

struct clip {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
	double *samples; /* the same samples as doubles, as the model should read them */
	uint32_t n;
};

static void
make_clip(struct clip *c, uint32_t n, enum mb_media media, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->hdr = (struct mb_request_hdr){
		.version = 1, .media = media, .channels = 1, .sample_rate = 16000};
	strcpy(c->hdr.model, "logmel");
	c->samples = calloc(n, sizeof(double));
	c->bytes = calloc(n, media == MB_MEDIA_PCM_S16LE ? 2 : 4);
	for (uint32_t i = 0; i < n; i++) {
		/* a 440 Hz tone, a chirp and a little noise: energy across the mel bands */
		double t = i / 16000.0;
		double v = 0.4 * sin(2 * M_PI * 440 * t) +
			   0.2 * sin(2 * M_PI * (200 + 3000 * t) * t) +
			   0.05 * ((double)(mb_test_rand(&seed) % 2001) / 1000.0 - 1.0);

		if (media == MB_MEDIA_PCM_S16LE) {
			int16_t s = (int16_t)lrint(v * 32767.0);

			c->bytes[2 * i] = (uint8_t)s;
			c->bytes[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
			c->samples[i] = s / 32768.0;
		} else {
			float f = (float)v;

			memcpy(c->bytes + 4 * i, &f, 4);
			c->samples[i] = f;
		}
	}
	c->hdr.payload_len = n * (media == MB_MEDIA_PCM_S16LE ? 2u : 4u);
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

/* ---- the float64 reference, written from the definitions ---- */

static double
ref_hz_to_mel(double hz)
{
	/* Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 steps/6.4x) */
	if (hz < 1000.0)
		return hz * 3.0 / 200.0;
	return 15.0 + 27.0 * log(hz / 1000.0) / log(6.4);
}

static double
ref_mel_to_hz(double mel)
{
	if (mel < 15.0)
		return mel * 200.0 / 3.0;
	return 1000.0 * pow(6.4, (mel - 15.0) / 27.0);
}

static double *
reference_logmel(const struct clip *c, uint32_t *frames_out)
{
	const int n_fft = 400, hop = 160, bins = 201, mels = 80;
	uint32_t frames = c->n / hop;
	double *padded = calloc(c->n + 400, sizeof(double));
	double *out = calloc((size_t)frames * mels, sizeof(double));
	double fb[80][201], edges[82], max = -HUGE_VAL;

	/* filterbank: triangles between consecutive mel-spaced edges, area-normalised */
	for (int i = 0; i < 82; i++)
		edges[i] = ref_mel_to_hz(ref_hz_to_mel(8000.0) * i / 81.0);
	for (int m = 0; m < mels; m++)
		for (int k = 0; k < bins; k++) {
			double f = k * 40.0; /* 16000 / 400 */
			double up = (f - edges[m]) / (edges[m + 1] - edges[m]);
			double down = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]);
			double tri = up < down ? up : down;

			fb[m][k] = (tri > 0 ? tri : 0) * 2.0 / (edges[m + 2] - edges[m]);
		}
	/* reflect padding of 200 at both ends */
	for (int64_t i = -200; i < (int64_t)c->n + 200; i++) {
		int64_t j = i < 0 ? -i : i >= (int64_t)c->n ? 2 * ((int64_t)c->n - 1) - i : i;

		padded[i + 200] = c->samples[j];
	}
	for (uint32_t t = 0; t < frames; t++) {
		double power[201];

		for (int k = 0; k < bins; k++) {
			double re = 0, im = 0;

			for (int n = 0; n < n_fft; n++) {
				double w = 0.5 - 0.5 * cos(2 * M_PI * n / n_fft);
				double x = padded[t * hop + n] * w;

				re += x * cos(2 * M_PI * k * n / n_fft);
				im -= x * sin(2 * M_PI * k * n / n_fft);
			}
			power[k] = re * re + im * im;
		}
		for (int m = 0; m < mels; m++) {
			double acc = 0;

			for (int k = 0; k < bins; k++)
				acc += fb[m][k] * power[k];
			out[t * mels + m] = log10(acc > 1e-10 ? acc : 1e-10);
			if (out[t * mels + m] > max)
				max = out[t * mels + m];
		}
	}
	for (size_t i = 0; i < (size_t)frames * mels; i++)
		out[i] = ((out[i] > max - 8.0 ? out[i] : max - 8.0) + 4.0) / 4.0;
	free(padded);
	*frames_out = frames;
	return out;
}

static double
max_abs_error(const float *got, const double *want, size_t n)
{
	double worst = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(got[i] - want[i]) > worst)
			worst = fabs(got[i] - want[i]);
	return worst;
}

/* ---- tests ---- */

static void
test_identity(void)
{
	struct loaded l;
	uint8_t a[10] = {0}, b[1234] = {0};
	struct mb_request_hdr h = {.version = 1, .media = MB_MEDIA_F32};
	struct mb_model_item items[2] = {
		{.hdr = &h, .payload = a, .payload_len = sizeof(a)},
		{.hdr = &h, .payload = b, .payload_len = sizeof(b)},
	};
	char reason[64];

	load(&l, &mb_model_identity);
	CU_ASSERT_EQUAL(l.d->check(&h, reason, sizeof(reason)), 0);
	CU_ASSERT_EQUAL_FATAL(run(&l, items, 2), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_FALSE(items[i].failed);
		CU_ASSERT_EQUAL(items[i].result_type, MB_RESULT_F32);
		CU_ASSERT(items[i].rows == 1 && items[i].cols == 1 && items[i].result_len == 4);
		CU_ASSERT_EQUAL(*(float *)items[i].result, (float)items[i].payload_len);
		free(items[i].result);
	}
	unload(&l);
}

static void
test_logmel_check(void)
{
	struct clip c;
	char reason[256];

	make_clip(&c, 16000, MB_MEDIA_PCM_S16LE, 1);
	CU_ASSERT_EQUAL(mb_model_logmel.check(&c.hdr, reason, sizeof(reason)), 0);
	c.hdr.sample_rate = 44100;
	CU_ASSERT_EQUAL(mb_model_logmel.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "sample_rate: 44100"));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "16000"));
	c.hdr.sample_rate = 16000;
	c.hdr.payload_len = 2 * 399;
	CU_ASSERT_EQUAL(mb_model_logmel.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "at least 400"));
	c.hdr.payload_len = 2 * (30 * 16000 + 1);
	CU_ASSERT_EQUAL(mb_model_logmel.check(&c.hdr, reason, sizeof(reason)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "at most 30 s"));
	c.hdr.payload_len = 2 * 30 * 16000;
	CU_ASSERT_EQUAL(mb_model_logmel.check(&c.hdr, reason, sizeof(reason)), 0);
	CU_ASSERT_FALSE(mb_model_logmel.media_mask & MB_MEDIA_MASK(MB_MEDIA_RGB24));
	free_clip(&c);
}

static void
check_against_reference(enum mb_media media, uint32_t n)
{
	struct loaded l;
	struct clip c;
	struct mb_model_item it;
	uint32_t frames;
	double *want, err;

	load(&l, &mb_model_logmel);
	make_clip(&c, n, media, n);
	it = item_of(&c);
	CU_ASSERT_EQUAL_FATAL(run(&l, &it, 1), 0);
	CU_ASSERT_FALSE_FATAL(it.failed);
	want = reference_logmel(&c, &frames);
	CU_ASSERT_EQUAL(it.rows, n / 160);
	CU_ASSERT_EQUAL(it.rows, frames);
	CU_ASSERT_EQUAL(it.cols, 80);
	CU_ASSERT_EQUAL(it.result_len, frames * 80 * 4);
	err = max_abs_error(it.result, want, (size_t)frames * 80);
	printf("\n    %s, %u samples: %u x 80, max |error| vs float64 DFT reference = %.2e",
	       mb_media_name(media), n, frames, err);
	CU_ASSERT(err <= 1e-3);
	free(want);
	free(it.result);
	free_clip(&c);
	unload(&l);
}

static void
test_logmel_reference_s16(void)
{
	check_against_reference(MB_MEDIA_PCM_S16LE, 16000); /* 1 s: 100 frames */
}

static void
test_logmel_reference_f32_odd_length(void)
{
	check_against_reference(MB_MEDIA_PCM_F32LE, 8123); /* not a multiple of the hop */
}

static void
test_logmel_reference_shortest(void)
{
	check_against_reference(MB_MEDIA_PCM_S16LE, 400); /* 2 frames */
}

/* The reference's mel scale is librosa's: values from librosa's docs and the 8 kHz top
 * that Whisper's filterbank uses (librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)). */
static void
test_reference_scale_is_librosa(void)
{
	CU_ASSERT_DOUBLE_EQUAL(ref_hz_to_mel(60.0), 0.9, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(ref_hz_to_mel(110.0), 1.65, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(ref_hz_to_mel(440.0), 6.6, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(ref_hz_to_mel(8000.0), 45.245640471924965, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(ref_mel_to_hz(ref_hz_to_mel(5000.0)), 5000.0, 1e-9);
}

static void
test_logmel_silence(void)
{
	struct loaded l;
	struct clip c;
	struct mb_model_item it;

	load(&l, &mb_model_logmel);
	make_clip(&c, 1600, MB_MEDIA_PCM_S16LE, 3);
	memset(c.bytes, 0, c.hdr.payload_len);
	it = item_of(&c);
	CU_ASSERT_EQUAL_FATAL(run(&l, &it, 1), 0);
	/* log10(1e-10) = -10 everywhere, the clip max is -10: (-10 + 4) / 4 = -1.5 */
	for (int i = 0; i < 10 * 80; i++)
		CU_ASSERT_DOUBLE_EQUAL_FATAL(((float *)it.result)[i], -1.5, 1e-6);
	free(it.result);
	free_clip(&c);
	unload(&l);
}

static void
test_logmel_batch_deterministic(void)
{
	struct loaded l;
	struct clip c[3];
	struct mb_model_item a[3], b[3];

	load(&l, &mb_model_logmel);
	make_clip(&c[0], 16000, MB_MEDIA_PCM_S16LE, 7);
	make_clip(&c[1], 4000, MB_MEDIA_PCM_F32LE, 8);
	make_clip(&c[2], 48000, MB_MEDIA_PCM_S16LE, 9);
	for (int i = 0; i < 3; i++)
		a[i] = b[i] = item_of(&c[i]);
	CU_ASSERT_EQUAL_FATAL(run(&l, a, 3), 0);
	CU_ASSERT_EQUAL_FATAL(run(&l, b, 3), 0);
	CU_ASSERT_EQUAL(a[0].rows, 100);
	CU_ASSERT_EQUAL(a[1].rows, 25);
	CU_ASSERT_EQUAL(a[2].rows, 300);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(a[i].result_len, b[i].result_len);
		CU_ASSERT_EQUAL(memcmp(a[i].result, b[i].result, a[i].result_len), 0);
		free(a[i].result);
		free(b[i].result);
		free_clip(&c[i]);
	}
	unload(&l);
}

static void
test_logmel_needs_worker(void)
{
	struct loaded l;
	struct clip c;
	struct mb_model_item it;
	struct mb_model_batch b;

	load(&l, &mb_model_logmel);
	make_clip(&c, 1600, MB_MEDIA_PCM_S16LE, 3);
	it = item_of(&c);
	b = (struct mb_model_batch){.items = &it,
				    .n_items = 1,
				    .device = -1,
				    .worker = NULL,
				    .alloc_result = alloc_result};
	CU_ASSERT_EQUAL(l.d->run(l.state, &b), -EINVAL); /* no worker_init: fails the batch */
	free_clip(&c);
	unload(&l);
}

static void
test_builtin_list(void)
{
	int n = 0;

	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL; d++, n++) {
		CU_ASSERT_EQUAL((*d)->abi_version, MB_MODEL_ABI_VERSION);
		CU_ASSERT(strlen((*d)->name) >= 1 && strlen((*d)->name) <= 16);
		CU_ASSERT((*d)->max_batch >= 1 && (*d)->max_batch <= 1024);
		CU_ASSERT_PTR_NOT_NULL((*d)->run);
	}
	CU_ASSERT_EQUAL(n, 5);
}

/* The perf-only entry points (model_bench): their answers on the machine at hand. */
static void
test_perf_entry_points(void)
{
	static struct mb_gpu_probe probe;
	struct mb_cuda_layers L;
	struct mb_cuda_timing t = {.items = 7};
	char reason[256] = "";
	int rc;

	CU_ASSERT_EQUAL(mb_models_gpu_layers("identity", 0, 16000, 1, &L, reason, sizeof(reason)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "identity: not a built-in model"));
	CU_ASSERT_EQUAL(mb_models_gpu_timing_take(&t), MB_HAVE_CUDA ? 0 : -ENOTSUP);
	CU_ASSERT_EQUAL(t.items, 0); /* nothing timed: totals are zero */
	reason[0] = '\0';
	rc = mb_models_gpu_layers("logmel", 0, 16000, 2, &L, reason, sizeof(reason));
	if (mb_gpu_probe(&probe) > 0) {
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT(L.flop_per_item > 0 && L.ms_as_run > 0 && L.ms_best > 0);
	} else {
		/* no GPU: the CUDA runtime's reason (CUDA build) or the build's own */
		CU_ASSERT_EQUAL(rc, MB_HAVE_CUDA ? -EIO : -ENOTSUP);
		CU_ASSERT(reason[0] != '\0');
	}
}

static const struct mb_test_case cases[] = {
	{"identity returns the payload length", test_identity},
	{"logmel checks sample rate and length", test_logmel_check},
	{"logmel matches a float64 DFT reference: 1 s PCM16", test_logmel_reference_s16},
	{"logmel matches the reference: F32, odd length", test_logmel_reference_f32_odd_length},
	{"logmel matches the reference: the shortest clip", test_logmel_reference_shortest},
	{"the reference mel scale is librosa's (published values)",
	 test_reference_scale_is_librosa},
	{"logmel of silence is -1.5 everywhere", test_logmel_silence},
	{"logmel batches of mixed lengths, bit-for-bit repeatable",
	 test_logmel_batch_deterministic},
	{"logmel without its worker scratch fails the batch", test_logmel_needs_worker},
	{"built-in list", test_builtin_list},
	{"perf entry points: unknown model, no GPU", test_perf_entry_points},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"models (CPU)", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("models_test", suites);
}
