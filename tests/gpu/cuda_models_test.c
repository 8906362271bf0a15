/*
 * cuda_models_test.c (suite "gpu"): the built-in models' CUDA code against their CPU
 * reference, on the same inputs and the same (generated) weights. Where there is no GPU,
 * it skips and prints the probe's reason.
 *
 * Tolerances, max |GPU - CPU| over every output value (both FP32; the CPU code is itself
 * checked against float64 references in tests/unit/gpu):
 *   logmel    1e-4   (values about -1.5..1.5; cuFFT vs FFTW rounding)
 *   whisper   1e-3   (values up to a few units after two convolutions of 240 and 1152 terms)
 *   clap      1e-4   (a unit vector; components about 0.04)
 *   videomae  the same top-5 classes in the same order, scores within 1e-5
 * Each model runs a batch of items of different lengths, so uploads overlap compute.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_gpu_probe.h"
#include "mb_models.h"
#include "mb_test.h"
#include "mb_weights.h"

#define N_ITEMS 3

static struct mb_gpu_probe g_probe;
static char g_dir[64];

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

struct side {
	void *state, *worker;
};

static void
up(const struct mb_model_desc *d, int device, const char *weights, struct side *s)
{
	struct mb_model_load_args a = {.device = device, .numa_node = -1, .weights_path = weights};
	char reason[512] = "";
	int rc = d->load(&a, &s->state, reason, sizeof(reason));

	if (rc != 0)
		printf("\n    %s on device %d: %s", d->name, device, reason);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(d->worker_init(s->state, device, &s->worker), 0);
}

static void
down(const struct mb_model_desc *d, struct side *s)
{
	d->worker_fini(s->state, s->worker);
	d->unload(s->state);
}

static int
run(const struct mb_model_desc *d, struct side *s, int device, struct mb_model_item *items,
    uint32_t n)
{
	struct mb_model_batch b = {.items = items,
				   .n_items = n,
				   .device = device,
				   .worker = s->worker,
				   .alloc_result = alloc_result};

	return d->run(s->state, &b);
}

static const char *
weights_for(const char *model)
{
	static char path[128];
	const struct mb_builtin_weights *bw = mb_builtin_weights_of(model);
	char err[256];

	if (bw == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.safetensors", g_dir, model);
	if (access(path, R_OK) != 0)
		CU_ASSERT_EQUAL_FATAL(
			mb_weights_generate(path, bw->specs, bw->n, 77, err, sizeof(err)), 0);
	return path;
}

struct input {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
};

static void
make_audio(struct input *in, const char *model, uint32_t n, enum mb_media media, uint64_t seed)
{
	in->hdr = (struct mb_request_hdr){
		.version = 1, .media = media, .channels = 1, .sample_rate = 16000};
	snprintf(in->hdr.model, sizeof(in->hdr.model), "%s", model);
	in->hdr.payload_len = n * (media == MB_MEDIA_PCM_S16LE ? 2 : 4);
	in->bytes = malloc(in->hdr.payload_len);
	for (uint32_t i = 0; i < n; i++) {
		double v = 0.3 * sin(2 * M_PI * 523 * i / 16000.0) +
			   0.05 * ((double)(mb_test_rand(&seed) % 2001) / 1000.0 - 1.0);

		if (media == MB_MEDIA_PCM_S16LE) {
			int16_t s = (int16_t)lrint(v * 32767);

			memcpy(in->bytes + 2 * i, &s, 2);
		} else {
			float f = (float)v;

			memcpy(in->bytes + 4 * i, &f, 4);
		}
	}
}

static void
make_video(struct input *in, uint64_t seed)
{
	size_t n = 16 * 224 * 224 * 3;

	in->hdr = (struct mb_request_hdr){.version = 1,
					  .media = MB_MEDIA_RGB24,
					  .channels = 3,
					  .frames = 16,
					  .height = 224,
					  .width = 224,
					  .payload_len = (uint32_t)n};
	snprintf(in->hdr.model, sizeof(in->hdr.model), "videomae");
	in->bytes = malloc(n);
	for (size_t i = 0; i < n; i++)
		in->bytes[i] = (uint8_t)((i / 3 % 224) + mb_test_rand(&seed) % 40);
}

/* Run @p in on the CPU and on GPU 0; compare F32 results within @p tol. */
static void
compare(const struct mb_model_desc *d, struct input *in, uint32_t n, double tol)
{
	const char *w = weights_for(d->name);
	struct side cpu, gpu;
	struct mb_model_item a[N_ITEMS], b[N_ITEMS];
	double worst = 0;

	up(d, -1, w, &cpu);
	up(d, 0, w, &gpu);
	for (uint32_t i = 0; i < n; i++)
		a[i] = b[i] = (struct mb_model_item){.hdr = &in[i].hdr,
						     .payload = in[i].bytes,
						     .payload_len = in[i].hdr.payload_len};
	CU_ASSERT_EQUAL_FATAL(run(d, &cpu, -1, a, n), 0);
	CU_ASSERT_EQUAL_FATAL(run(d, &gpu, 0, b, n), 0);
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_FALSE(b[i].failed);
		CU_ASSERT_EQUAL(a[i].rows, b[i].rows);
		CU_ASSERT_EQUAL(a[i].cols, b[i].cols);
		CU_ASSERT_EQUAL(a[i].result_type, b[i].result_type);
		CU_ASSERT_EQUAL_FATAL(a[i].result_len, b[i].result_len);
		if (a[i].result_type == MB_RESULT_F32) {
			for (uint32_t k = 0; k < a[i].result_len / 4; k++)
				worst = fmax(worst, fabs(((float *)a[i].result)[k] -
							 ((float *)b[i].result)[k]));
		} else {
			for (int r = 0; r < 5; r++) {
				uint32_t ca, cb;
				float sa, sb;

				memcpy(&ca, (uint8_t *)a[i].result + 8 * r, 4);
				memcpy(&cb, (uint8_t *)b[i].result + 8 * r, 4);
				memcpy(&sa, (uint8_t *)a[i].result + 8 * r + 4, 4);
				memcpy(&sb, (uint8_t *)b[i].result + 8 * r + 4, 4);
				CU_ASSERT_EQUAL(ca, cb);
				worst = fmax(worst, fabs(sa - sb));
			}
		}
		free(a[i].result);
		free(b[i].result);
	}
	printf("\n    %s: %u items, max |GPU - CPU| = %.2e (tolerance %.0e)", d->name, n, worst,
	       tol);
	CU_ASSERT(worst <= tol);
	down(d, &gpu);
	down(d, &cpu);
	for (uint32_t i = 0; i < n; i++)
		free(in[i].bytes);
}

static void
test_logmel(void)
{
	struct input in[N_ITEMS];

	make_audio(&in[0], "logmel", 16000, MB_MEDIA_PCM_S16LE, 1);
	make_audio(&in[1], "logmel", 8123, MB_MEDIA_PCM_F32LE, 2);
	make_audio(&in[2], "logmel", 30 * 16000, MB_MEDIA_PCM_S16LE, 3);
	compare(&mb_model_logmel, in, N_ITEMS, 1e-4);
}

static void
test_whisper(void)
{
	struct input in[N_ITEMS];

	make_audio(&in[0], "whisper", 400, MB_MEDIA_PCM_S16LE, 4);
	make_audio(&in[1], "whisper", 48000, MB_MEDIA_PCM_F32LE, 5);
	make_audio(&in[2], "whisper", 30 * 16000, MB_MEDIA_PCM_S16LE, 6);
	compare(&mb_model_whisper, in, N_ITEMS, 1e-3);
}

static void
test_clap(void)
{
	struct input in[N_ITEMS];

	make_audio(&in[0], "clap", 16000, MB_MEDIA_PCM_S16LE, 7);
	make_audio(&in[1], "clap", 10 * 16000, MB_MEDIA_PCM_S16LE, 8);
	make_audio(&in[2], "clap", 1234, MB_MEDIA_PCM_F32LE, 9);
	compare(&mb_model_clap, in, N_ITEMS, 1e-4);
}

static void
test_videomae(void)
{
	struct input in[2];

	make_video(&in[0], 10);
	make_video(&in[1], 11);
	compare(&mb_model_videomae, in, 2, 1e-5);
}

static const struct mb_test_case cases[] = {
	{"logmel: CUDA matches the CPU", test_logmel},
	{"whisper: CUDA matches the CPU", test_whisper},
	{"clap: CUDA matches the CPU", test_clap},
	{"videomae: CUDA matches the CPU", test_videomae},
	{NULL, NULL},
};

static int
suite_cleanup(void)
{
	static const char *const names[] = {"whisper", "clap", "videomae"};
	char path[128];

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s.safetensors", g_dir, names[i]);
		unlink(path);
	}
	return rmdir(g_dir);
}

static const struct mb_test_suite suite = {"built-in models, CUDA vs CPU", NULL, suite_cleanup,
					   cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	if (mb_gpu_probe(&g_probe) == 0) {
		char why[256];

		snprintf(why, sizeof(why), "no GPU to compare the CUDA models on: %s",
			 g_probe.reason);
		mb_test_skip(why);
	}
	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_cuda_models_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return 99;
	return mb_test_main("cuda_models_test", suites);
}
