/*
 * gpu_serve_test.c (suite "gpu"): the real daemon serving the built-in models on a GPU.
 *
 * Two daemons on loopback: one with devices.cuda.mode required (the GPUs serve every model
 * that runs on CUDA; identity, and whatever else runs on the CPU only, stays on cpu0), one
 * with CUDA off (the CPU reference). The same inputs go to both; each GPU answer must come
 * from a CUDA device (device field >= 1) when the model runs on CUDA, have the CPU answer's
 * shape, and agree with it within the model's tolerance (the gpu/cuda-models figures; the
 * networks at the build's placeholder checkpoints, size "tiny"): whisper at its default
 * precision bf16 (max |GPU - CPU| 0.1 on LayerNormed outputs up to about 3.3), clap at its
 * default bf16 (4e-3 on L2-normalised embeddings up to about 0.13: an emulation of bf16's
 * rounding gives 9.4e-4 on this 440 Hz tone), videomae at
 * models[].precision f32, set in the GPU daemon's config (top-5 classes the CPU's, scores
 * within 1e-4: a bf16 videomae would miss that, so the key is seen to reach the network).
 * Both networks also get media longer than one window (whisper 40 s: a 30 s and a 10 s
 * window joined by rows; videomae 32 frames: two clips whose logits are averaged), so the
 * windows' partial results come from the GPU too. Then a burst of concurrent whisper requests
 * must all be answered OK on the GPU with the units in use never above the capacity that
 * cudaMemGetInfo gave, and both daemons must drain and exit 0.
 *
 * Where there is no GPU it skips and prints the probe's reason.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_gpu_probe.h"
#include "mb_models.h"
#include "mb_test.h"

#define BURST 64

static struct mb_daemon g_gpu, g_cpu;
static bool g_up;

struct input {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
	double tol; /* max |GPU - CPU| per value */
};

/* clap's rate where the build says it (its published tower takes 48 kHz), else 16 kHz */
#ifdef MB_CLAP_SAMPLE_RATE
#define CLAP_RATE MB_CLAP_SAMPLE_RATE
#else
#define CLAP_RATE 16000
#endif

static void
make_audio(struct input *in, const char *model, double seconds, double tol)
{
	uint32_t rate = strcmp(model, "clap") == 0 ? CLAP_RATE : 16000;
	uint32_t n = (uint32_t)(seconds * rate);

	in->bytes = malloc((size_t)n * 2 + 2);
	for (uint32_t i = 0; i < n; i++) {
		int16_t s = (int16_t)lrint(12000 * sin(2 * M_PI * 440 * i / (double)rate));

		in->bytes[2 * i] = (uint8_t)s;
		in->bytes[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
	}
	mb_client_audio_hdr(&in->hdr, model, 1, 0, MB_MEDIA_PCM_S16LE, rate, n * 2);
	in->tol = tol;
}

static void
make_video(struct input *in, uint16_t frames, double tol)
{
	size_t n = (size_t)frames * 224 * 224 * 3;
	uint64_t seed = 7;

	mb_client_video_hdr(&in->hdr, "videomae", 1, 0, frames, 224, 224);
	in->bytes = malloc(n);
	for (size_t i = 0; i < n; i++)
		in->bytes[i] = (uint8_t)((i / 3 % 224) + mb_test_rand(&seed) % 40);
	in->tol = tol;
}

static int
ask(const struct mb_daemon *d, struct input *in, uint64_t id, struct mb_client_response *r)
{
	struct mb_client *c = mb_e2e_client(d, NULL);
	int rc;

	if (c == NULL)
		return -1;
	in->hdr.request_id = id;
	rc = mb_client_send(c, &in->hdr, in->bytes, in->hdr.payload_len);
	if (rc == 0)
		rc = mb_client_recv(c, r, 120000);
	mb_client_close(&c);
	return rc;
}

/* Largest difference between two results of the same shape (TOPK: classes must match). */
static double
difference(const struct mb_client_response *g, const struct mb_client_response *c)
{
	const uint8_t *a = g->data, *b = c->data;
	double worst = 0;

	for (size_t off = 0; off + 4 <= g->len; off += 4) {
		float x, y;
		uint32_t i, j;

		if (g->hdr.result_type == MB_RESULT_TOPK && (off / 4) % 2 == 0) {
			memcpy(&i, a + off, 4);
			memcpy(&j, b + off, 4);
			if (i != j)
				return INFINITY;
			continue;
		}
		memcpy(&x, a + off, 4);
		memcpy(&y, b + off, 4);
		if (!isfinite(x))
			return INFINITY;
		if (fabs((double)x - y) > worst)
			worst = fabs((double)x - y);
	}
	return worst;
}

static void
compare(struct input *in)
{
	bool on_gpu = false;
	struct mb_client_response g, c;
	double worst;

	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL; d++)
		if (strcmp((*d)->name, in->hdr.model) == 0)
			on_gpu = ((*d)->devices & MB_MODEL_ON_CUDA) != 0;
	CU_ASSERT_EQUAL_FATAL(ask(&g_gpu, in, 1, &g), 0);
	CU_ASSERT_EQUAL_FATAL(ask(&g_cpu, in, 1, &c), 0);
	CU_ASSERT_EQUAL(g.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(c.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(c.hdr.device, 0);
	if (on_gpu) {
		CU_ASSERT(g.hdr.device >= 1 && g.hdr.device != 0xffff);
	} else {
		CU_ASSERT_EQUAL(g.hdr.device, 0);
	}
	CU_ASSERT_EQUAL(g.hdr.result_type, c.hdr.result_type);
	CU_ASSERT_EQUAL(g.hdr.rows, c.hdr.rows);
	CU_ASSERT_EQUAL(g.hdr.cols, c.hdr.cols);
	CU_ASSERT_EQUAL_FATAL(g.len, c.len);
	worst = difference(&g, &c);
	printf("\n    %s on device %u: max |GPU - CPU| = %.2e (tolerance %.0e), compute %u us",
	       in->hdr.model, g.hdr.device, worst, in->tol, g.hdr.compute_us);
	CU_ASSERT(worst <= in->tol);
	mb_client_response_free(&g);
	mb_client_response_free(&c);
	free(in->bytes);
}

static void
test_models_agree(void)
{
	struct input in;

	make_audio(&in, "logmel", 2.0, 1e-4);
	compare(&in);
	make_audio(&in, "whisper", 2.0, 1e-1); /* bf16, the default */
	compare(&in);
	make_audio(&in, "whisper", 40.0, 1e-1); /* two windows */
	compare(&in);
	make_audio(&in, "clap", 2.0, 4e-3); /* bf16, the default: embeddings up to about 0.13 */
	compare(&in);
	make_video(&in, 16, 1e-4); /* f32 (models[].precision) */
	compare(&in);
	make_video(&in, 32, 1e-4); /* two clips */
	compare(&in);
	make_audio(&in, "identity", 0.5, 0);
	compare(&in); /* CPU only: cpu0 serves it beside the GPU */
}

#define CUDA0_IN_USE "mediabatch_vram_units_in_use{device=\"cuda0\"}"

static void
test_burst_under_admission(void)
{
	struct mb_client *c = mb_e2e_client(&g_gpu, NULL);
	struct input in;
	int ok = 0;
	double cap, peak;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	make_audio(&in, "whisper", 10.0, 0);
	for (int i = 0; i < BURST; i++) {
		in.hdr.request_id = 1000 + (uint64_t)i;
		CU_ASSERT_EQUAL(mb_client_send(c, &in.hdr, in.bytes, in.hdr.payload_len), 0);
	}
	for (int i = 0; i < BURST; i++) {
		struct mb_client_response r;

		if (mb_client_recv(c, &r, 120000) != 0)
			break;
		ok += r.hdr.status == MB_STATUS_OK && r.hdr.device >= 1;
		mb_client_response_free(&r);
	}
	CU_ASSERT_EQUAL(ok, BURST);
	cap = mb_daemon_metric(&g_gpu, "mediabatch_vram_units_capacity{device=\"cuda0\"}");
	peak = mb_daemon_metric(&g_gpu, "mediabatch_vram_units_peak{device=\"cuda0\"}");
	printf("\n    cuda0: capacity %.0f units, peak in use %.0f", cap, peak);
	CU_ASSERT(cap >= 1);
	CU_ASSERT(peak >= 1 && peak <= cap);
	/* a worker releases its units just after handing the results on: allow a moment */
	for (int i = 0; i < 50 && mb_daemon_metric(&g_gpu, CUDA0_IN_USE) != 0; i++)
		usleep(100 * 1000);
	CU_ASSERT_EQUAL(mb_daemon_metric(&g_gpu, CUDA0_IN_USE), 0);
	free(in.bytes);
	mb_client_close(&c);
}

static void
test_drain(void)
{
	CU_ASSERT_EQUAL(mb_daemon_stop(&g_gpu, SIGTERM, 60), 0);
	CU_ASSERT_EQUAL(mb_daemon_stop(&g_cpu, SIGTERM, 60), 0);
	g_up = false;
}

static int
suite_init(void)
{
	if (mb_daemon_start(&g_gpu,
			    "devices:\n  cuda: {mode: required}\n"
			    "models:\n  - {name: videomae, precision: f32}\n",
			    NULL) < 0)
		return -1;
	if (mb_daemon_start(&g_cpu, "devices:\n  cuda: {mode: \"off\"}\n", NULL) < 0) {
		mb_daemon_stop(&g_gpu, SIGKILL, 10);
		return -1;
	}
	g_up = true;
	return 0;
}

static int
suite_cleanup(void)
{
	if (g_up) {
		mb_daemon_stop(&g_gpu, SIGKILL, 10);
		mb_daemon_stop(&g_cpu, SIGKILL, 10);
	}
	return 0;
}

static const struct mb_test_case cases[] = {
	{"every model on the GPU agrees with the CPU device", test_models_agree},
	{"a burst of whisper requests under VRAM admission", test_burst_under_admission},
	{"both daemons drain and exit 0", test_drain},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"gpu serve (device)", suite_init, suite_cleanup, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	struct mb_gpu_probe probe;
	char why[256];

	if (mb_gpu_probe(&probe) == 0) {
		snprintf(why, sizeof(why), "no GPU: %s", probe.reason);
		mb_test_skip(why);
	}
	return mb_test_main("gpu_serve_test", suites);
}
