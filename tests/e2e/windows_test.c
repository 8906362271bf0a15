/*
 * windows_test.c (e2e): long media split into windows and joined (batch/mb_join.h), through
 * the real daemon: a 95 s clip to logmel equals its four windows sent one by one and
 * joined; a request over models[].max_windows is TOO_LARGE; a last window the model cannot
 * take is BAD_REQUEST naming it; a cancel mid-way answers once, CANCELLED naming the window,
 * and every device unit comes back; the windows run in batches of their own (batch size
 * histogram) and the request counts once.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;

#define RATE 16000

static int
suite_init(void)
{
	return mb_daemon_start(
		&g_d,
		"devices:\n  cuda: {mode: \"off\"}\n  cpu: {workers: 1}\n"
		"models:\n  - name: logmel\n    max_batch: 2\n    max_delay_us: 1000\n"
		"    max_windows: 8\n",
		NULL);
}

static int
suite_cleanup(void)
{
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);

	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	return rc == 0 ? 0 : -1;
}

/* @p seconds of 16 kHz PCM16 noise with a tone in it: deterministic */
static int16_t *
noise(double seconds, uint32_t *samples)
{
	uint32_t n = (uint32_t)(seconds * RATE);
	int16_t *pcm = malloc((size_t)n * 2 + 2);
	uint64_t st = 42;

	for (uint32_t i = 0; pcm != NULL && i < n; i++)
		pcm[i] = (int16_t)((int)(mb_test_rand(&st) % 8000) - 4000 +
				   (int)(6000 * sin(2 * M_PI * 440.0 * i / RATE)));
	*samples = n;
	return pcm;
}

/* send and wait for the one answer (and check that no second one follows) */
static int
ask(struct mb_client *c, const char *model, uint64_t id, const int16_t *pcm, uint32_t samples,
    struct mb_client_response *r)
{
	struct mb_request_hdr h;

	mb_client_audio_hdr(&h, model, 1, id, MB_MEDIA_PCM_S16LE, RATE, samples * 2);
	if (mb_client_send(c, &h, pcm, samples * 2) != 0)
		return -1;
	if (mb_client_recv(c, r, 60000) != 0)
		return -1;
	return r->hdr.request_id == id ? 0 : -1;
}

static void
test_join_equals_windows(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	uint32_t n, window = 30 * RATE;
	int16_t *pcm = noise(95.0, &n);
	struct mb_client_response whole, part;
	size_t off = 0;
	double before = mb_daemon_metric(&g_d, "mediabatch_requests_total{model=\"logmel\","
					       "transport=\"zmq\"}");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pcm);
	CU_ASSERT_EQUAL_FATAL(ask(c, "logmel", 1, pcm, n, &whole), 0);
	CU_ASSERT_EQUAL(whole.hdr.status, MB_STATUS_OK);
	if (whole.hdr.status != MB_STATUS_OK)
		fprintf(stderr, "answer %u: %.*s\n", whole.hdr.status, (int)whole.len,
			(char *)whole.data);
	/* 3 x 3000 frames + 5 s = 500 frames, 80 bins each */
	CU_ASSERT_EQUAL(whole.hdr.rows, 9500);
	CU_ASSERT_EQUAL(whole.hdr.cols, 80);
	CU_ASSERT_EQUAL(whole.len, (size_t)9500 * 80 * 4);
	CU_ASSERT(whole.hdr.batch_size >= 1 && whole.hdr.batch_size <= 2);
	for (uint32_t w = 0; w < 4 && whole.len == (size_t)9500 * 80 * 4; w++) {
		uint32_t len = w < 3 ? window : n - 3 * window;

		CU_ASSERT_EQUAL_FATAL(ask(c, "logmel", 10 + w, pcm + w * window, len, &part), 0);
		CU_ASSERT_EQUAL(part.hdr.status, MB_STATUS_OK);
		CU_ASSERT_EQUAL(part.hdr.rows, len / 160);
		/* the same arithmetic on the same samples: equal bit for bit */
		CU_ASSERT_EQUAL(memcmp((uint8_t *)whole.data + off, part.data, part.len), 0);
		off += part.len;
		mb_client_response_free(&part);
	}
	CU_ASSERT_EQUAL(off, whole.len);
	mb_client_response_free(&whole);
	/* counted once (the four windows sent alone are four more) */
	CU_ASSERT_EQUAL(mb_daemon_metric(&g_d, "mediabatch_requests_total{model=\"logmel\","
					       "transport=\"zmq\"}") -
				before,
			5.0);
	CU_ASSERT_EQUAL(mb_client_recv(c, &part, 300), -ETIMEDOUT);
	free(pcm);
	mb_client_close(&c);
}

static void
test_limits(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	struct mb_client_response r;
	uint32_t n;
	int16_t *pcm = noise(262.0, &n);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* 240 s and 1000 samples: 9 windows, 8.06 MB (under max_payload_bytes) */
	CU_ASSERT_EQUAL_FATAL(ask(c, "logmel", 20, pcm, 8 * 30 * RATE + 1000, &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_TOO_LARGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "9 windows of 30.0 s"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "at most 8 per request"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "models[].max_windows"));
	mb_client_response_free(&r);

	/* 30 s and 100 samples: a last window of 100 samples, under logmel's 400 */
	CU_ASSERT_EQUAL_FATAL(ask(c, "logmel", 21, pcm, 30 * RATE + 100, &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(
		r.data, "the last of its 2 windows (what is left after 1 x 480000 samples)"));
	mb_client_response_free(&r);

	/* exactly 60 s: two whole windows */
	CU_ASSERT_EQUAL_FATAL(ask(c, "logmel", 22, pcm, 60 * RATE, &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(r.hdr.rows, 6000);
	mb_client_response_free(&r);
	free(pcm);
	mb_client_close(&c);
}

static void
test_cancel_midway(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	struct mb_client_response r;
	uint32_t n;
	int16_t *pcm = noise(240.0, &n); /* 8 windows */
	int cancelled = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int attempt = 0; attempt < 6 && cancelled == 0; attempt++) {
		struct mb_request_hdr h;
		uint64_t id = 100 + (uint64_t)attempt;

		mb_client_audio_hdr(&h, "logmel", 1, id, MB_MEDIA_PCM_S16LE, RATE, n * 2);
		CU_ASSERT_EQUAL_FATAL(mb_client_send(c, &h, pcm, n * 2), 0);
		usleep(20000 + 10000 * attempt); /* a window or two run: logmel takes ~10-40 ms */
		CU_ASSERT_EQUAL(mb_client_cancel(c, 1, id), 0);
		CU_ASSERT_EQUAL_FATAL(mb_client_recv(c, &r, 60000), 0);
		CU_ASSERT_EQUAL(r.hdr.request_id, id);
		if (r.hdr.status == MB_STATUS_CANCELLED) {
			cancelled++;
			CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "of 8 ("));
			CU_ASSERT_PTR_NOT_NULL(strstr(r.data, "cancelled by the client"));
		} else {
			CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK); /* all 8 ran first */
		}
		mb_client_response_free(&r);
		/* exactly one answer */
		CU_ASSERT_EQUAL(mb_client_recv(c, &r, 300), -ETIMEDOUT);
	}
	CU_ASSERT(cancelled > 0);
	/* every window's units came back, nothing left in flight */
	CU_ASSERT_EQUAL(mb_daemon_inflight_settled(&g_d, 5.0), 0.0);
	CU_ASSERT_EQUAL(mb_daemon_metric(&g_d, "mediabatch_vram_units_in_use{device=\"cpu0\"}"),
			0.0);
	free(pcm);
	mb_client_close(&c);
}

/* whisper (the build's placeholder checkpoint at its test size): 95 s is four 30 s
 * windows, each [1500 x d], joined; equal to the windows sent alone within 1e-4 relative
 * (the windows may share a batch, whose stacked GEMMs round a little differently) */
static void
test_whisper_windows(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	uint32_t n, window = 30 * RATE;
	int16_t *pcm = noise(95.0, &n);
	struct mb_client_response whole, part;
	double max_ref = 0.0, max_err = 0.0;
	size_t off = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(ask(c, "whisper", 30, pcm, n, &whole), 0);
	CU_ASSERT_EQUAL_FATAL(whole.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(whole.hdr.rows, 4 * 1500);
	for (uint32_t w = 0; w < 4; w++) {
		uint32_t len = w < 3 ? window : n - 3 * window;
		const float *a, *b;

		CU_ASSERT_EQUAL_FATAL(ask(c, "whisper", 31 + w, pcm + w * window, len, &part), 0);
		CU_ASSERT_EQUAL_FATAL(part.hdr.status, MB_STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(part.hdr.rows, 1500);
		CU_ASSERT_EQUAL_FATAL(part.hdr.cols, whole.hdr.cols);
		a = (const float *)((const uint8_t *)whole.data + off);
		b = part.data;
		for (size_t i = 0; i < part.len / 4; i++) {
			max_ref = fmax(max_ref, fabs(b[i]));
			max_err = fmax(max_err, fabs(a[i] - b[i]));
		}
		off += part.len;
		mb_client_response_free(&part);
	}
	printf("\n    whisper 95 s: 4 windows joined vs alone: max |error| %.3g of max %.3g",
	       max_err, max_ref);
	CU_ASSERT(max_ref > 0.0);
	CU_ASSERT(max_err <= 1e-4 * max_ref);
	CU_ASSERT_EQUAL(off, whole.len);
	mb_client_response_free(&whole);
	free(pcm);
	mb_client_close(&c);
}

static int
ask_video(struct mb_client *c, uint64_t id, const uint8_t *rgb, uint16_t frames,
	  struct mb_client_response *r)
{
	struct mb_request_hdr h;
	uint32_t bytes = (uint32_t)frames * 224 * 224 * 3;

	mb_client_video_hdr(&h, "videomae", 1, id, frames, 224, 224);
	if (mb_client_send(c, &h, rgb, bytes) != 0 || mb_client_recv(c, r, 60000) != 0)
		return -1;
	return r->hdr.request_id == id ? 0 : -1;
}

/* videomae, multi-clip: the mean of the clips' logits. Three copies of one clip give that
 * clip's own answer; other clip counts are refused with what to send. */
static void
test_videomae_clips(void)
{
	struct mb_client *c = mb_e2e_client(&g_d, NULL);
	const size_t clip = (size_t)16 * 224 * 224 * 3;
	uint8_t *rgb = malloc(3 * clip);
	struct mb_client_response one, three;
	uint64_t st = 9;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rgb);
	for (size_t i = 0; i < clip; i++)
		rgb[i] = (uint8_t)mb_test_rand(&st);
	memcpy(rgb + clip, rgb, clip);
	memcpy(rgb + 2 * clip, rgb, clip);
	CU_ASSERT_EQUAL_FATAL(ask_video(c, 40, rgb, 16, &one), 0);
	CU_ASSERT_EQUAL_FATAL(ask_video(c, 41, rgb, 48, &three), 0);
	CU_ASSERT_EQUAL_FATAL(one.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(three.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(three.hdr.result_type, MB_RESULT_TOPK);
	CU_ASSERT_EQUAL_FATAL(three.hdr.rows, one.hdr.rows);
	for (uint32_t r = 0; r < one.hdr.rows; r++) {
		uint32_t a, b;
		float sa, sb;

		memcpy(&a, (uint8_t *)one.data + r * 8, 4);
		memcpy(&b, (uint8_t *)three.data + r * 8, 4);
		memcpy(&sa, (uint8_t *)one.data + r * 8 + 4, 4);
		memcpy(&sb, (uint8_t *)three.data + r * 8 + 4, 4);
		CU_ASSERT_EQUAL(a, b);
		CU_ASSERT_DOUBLE_EQUAL(sa, sb, 1e-6);
	}
	mb_client_response_free(&one);
	mb_client_response_free(&three);
	/* 20 frames: not whole clips */
	CU_ASSERT_EQUAL_FATAL(ask_video(c, 42, rgb, 20, &one), 0);
	CU_ASSERT_EQUAL(one.hdr.status, MB_STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(one.data, "send a multiple of 16"));
	mb_client_response_free(&one);
	free(rgb);
	mb_client_close(&c);
}

static const struct mb_test_case cases[] = {
	{"a 95 s clip equals its four windows joined", test_join_equals_windows},
	{"max_windows and a last window too short", test_limits},
	{"cancel mid-way: one answer, units back", test_cancel_midway},
	{"whisper: 95 s is four windows joined", test_whisper_windows},
	{"videomae: the mean of its clips' logits", test_videomae_clips},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"windows", suite_init, suite_cleanup, cases};
static const struct mb_test_suite *const suites[] = {&suite, NULL};

int
main(void)
{
	return mb_test_main("windows_test", suites);
}
