/*
 * gpu_serve_test.c (suite "gpu"): the real daemon serving the built-in models on a GPU.
 *
 * Two daemons on loopback: one with devices.cuda.mode required (the GPUs serve every model
 * that runs on CUDA; identity, CPU only, stays on cpu0), one with CUDA off (the CPU
 * reference). The same inputs go to both; each GPU answer must come from a CUDA device
 * (device field >= 1), have the CPU answer's shape, and agree with it within the model's
 * tolerance (the gpu/cuda-models figures). Then a burst of concurrent whisper requests
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
#include "mb_test.h"

#define BURST 64

static struct mb_daemon g_gpu, g_cpu;
static bool g_up;

struct input {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
	double tol; /* max |GPU - CPU| per value */
};

static void
make_audio(struct input *in, const char *model, double seconds, double tol)
{
	uint32_t bytes;

	in->bytes = mb_e2e_tone(seconds, &bytes);
	mb_client_audio_hdr(&in->hdr, model, 1, 0, MB_MEDIA_PCM_S16LE, 16000, bytes);
	in->tol = tol;
}

static void
make_video(struct input *in, double tol)
{
	size_t n = 16 * 224 * 224 * 3;
	uint64_t seed = 7;

	mb_client_video_hdr(&in->hdr, "videomae", 1, 0, 16, 224, 224);
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
compare(struct input *in, bool on_gpu)
{
	struct mb_client_response g, c;
	double worst;

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
	compare(&in, true);
	make_audio(&in, "whisper", 2.0, 1e-3);
	compare(&in, true);
	make_audio(&in, "clap", 2.0, 1e-4);
	compare(&in, true);
	make_video(&in, 1e-4);
	compare(&in, true);
	make_audio(&in, "identity", 0.5, 0);
	compare(&in, false); /* CPU only: cpu0 serves it beside the GPU */
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
	if (mb_daemon_start(&g_gpu, "devices:\n  cuda: {mode: required}\n", NULL) < 0)
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
