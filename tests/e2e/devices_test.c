/*
 * devices_test.c (e2e): which devices the real daemon uses, from devices.cpu and
 * devices.cuda, on the machine the test runs on.
 *
 * Without a GPU (CI, the development VMs): mode auto says once why there is no GPU and
 * serves everything on cpu0 (device field 0, its units in /metrics, no CUDA series); mode
 * required refuses to start (exit 1) with the probe's reason; mode off never probes;
 * cpu.serve never with no GPU leaves every model UNAVAILABLE with the reason, and the
 * daemon still answers and drains. Cases that only mean something without a GPU say so
 * and pass where one is present (the gpu suite's gpu/serve covers that machine).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_e2e.h"
#include "mb_gpu_probe.h"
#include "mb_test.h"

static struct mb_gpu_probe g_probe;

static bool
has(const char *hay, const char *needle)
{
	bool ok = hay != NULL && strstr(hay, needle) != NULL;

	if (!ok)
		printf("\n    \"%s\" not found", needle);
	return ok;
}

/* One identity request of @p d: its status, device and reason. */
static int
one_request(const struct mb_daemon *d, const char *model, struct mb_client_response *r)
{
	struct mb_client *c = mb_e2e_client(d, NULL);
	struct mb_request_hdr h;
	uint32_t bytes;
	uint8_t *pcm = mb_e2e_tone(0.5, &bytes);
	int rc = -1;

	if (c != NULL) {
		mb_client_audio_hdr(&h, model, 3, 5, MB_MEDIA_PCM_S16LE, 16000, bytes);
		if (mb_client_send(c, &h, pcm, bytes) == 0)
			rc = mb_client_recv(c, r, 20000);
		mb_client_close(&c);
	}
	free(pcm);
	return rc;
}

static bool
no_gpu(const char *what)
{
	if (g_probe.count == 0)
		return true;
	printf("\n    %d GPU(s) here: %s is checked by the gpu suite", g_probe.count, what);
	return false;
}

static void
test_auto_without_gpu_serves_on_cpu0(void)
{
	struct mb_daemon d;
	struct mb_client_response r;

	if (!no_gpu("mode auto"))
		return;
	/* the default, written out: the harness turns CUDA off for a config without devices */
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "devices:\n  cuda: {mode: auto}\n", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(one_request(&d, "logmel", &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(r.hdr.device, 0);
	mb_client_response_free(&r);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_vram_units_capacity{device=\"cpu0\"}"),
			16);
	CU_ASSERT_EQUAL(mb_daemon_metric(&d, "mediabatch_vram_units_capacity{device=\"cuda0\"}"),
			-1);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	{ /* said once, with the reason, by the service */
		const char *said = strstr(mb_daemon_log(&d), "no usable GPU (");

		CU_ASSERT_PTR_NOT_NULL_FATAL(said);
		CU_ASSERT_PTR_NULL(strstr(said + 1, "no usable GPU"));
	}
	CU_ASSERT_TRUE(has(mb_daemon_log(&d), "): running on the CPU device"));
	CU_ASSERT_TRUE(has(mb_daemon_log(&d), "device cpu0: 16 units"));
}

static void
test_required_without_gpu_refuses(void)
{
	char path[] = "/tmp/mb_e2e_cuda_XXXXXX", out[8192], expect[256];
	const char *args[] = {"--config",	   path,	"--ingest",
			      "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
			      "--metrics",	   "off",	NULL};
	const char *yaml = "devices:\n  cuda: {mode: required}\n";
	int fd;

	if (!no_gpu("mode required"))
		return;
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
	close(fd);
	CU_ASSERT_EQUAL(mb_e2e_daemon_cmd(args, out, sizeof(out)), 1);
	CU_ASSERT_TRUE(has(out, "devices.cuda.mode is required, but no GPU is usable: "));
	snprintf(expect, sizeof(expect), "usable: %s", g_probe.reason);
	CU_ASSERT_TRUE(has(out, expect)); /* the probe's own reason */
	unlink(path);
}

static void
test_off_never_probes(void)
{
	struct mb_daemon d;
	struct mb_client_response r;

	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "devices:\n  cuda: {mode: \"off\"}\n", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(one_request(&d, "identity", &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_OK);
	CU_ASSERT_EQUAL(r.hdr.device, 0);
	mb_client_response_free(&r);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	CU_ASSERT_TRUE(has(mb_daemon_log(&d), "GPUs not used: devices.cuda.mode is off"));
	CU_ASSERT_PTR_NULL(strstr(mb_daemon_log(&d), "no usable GPU"));
}

static void
test_cpu_never_without_gpu(void)
{
	struct mb_daemon d;
	struct mb_client_response r;

	if (!no_gpu("cpu.serve never"))
		return;
	CU_ASSERT_EQUAL_FATAL(mb_daemon_start(&d, "devices:\n  cpu: {serve: never}\n", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(one_request(&d, "logmel", &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_UNAVAILABLE);
	/* logmel runs on CUDA in a CUDA build, on the CPU only in a build without */
	CU_ASSERT_TRUE(
		has(r.data, g_probe.built_with_cuda
				    ? "model logmel is unavailable: no device serves it: "
				      "devices.cpu.serve is never and no GPU is in use"
				    : "model logmel is unavailable: no device serves it: "
				      "devices.cpu.serve is never and no GPU can run it (CPU "
				      "only)"));
	mb_client_response_free(&r);
	CU_ASSERT_EQUAL_FATAL(one_request(&d, "identity", &r), 0);
	CU_ASSERT_EQUAL(r.hdr.status, MB_STATUS_UNAVAILABLE);
	CU_ASSERT_TRUE(has(r.data, "no GPU can run it (CPU only)"));
	mb_client_response_free(&r);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d, SIGTERM, 30), 0);
	CU_ASSERT_TRUE(has(mb_daemon_log(&d), "no model is enabled"));
}

static int
suite_init(void)
{
	mb_gpu_probe(&g_probe);
	if (g_probe.count == 0)
		printf("no GPU here (%s)\n", g_probe.reason);
	else
		printf("%d GPU(s) here\n", g_probe.count);
	return 0;
}

static const struct mb_test_case cases[] = {
	{"no GPU, mode auto: said once, everything on cpu0", test_auto_without_gpu_serves_on_cpu0},
	{"no GPU, mode required: refuses to start with the reason, exit 1",
	 test_required_without_gpu_refuses},
	{"mode off: CUDA never probed, cpu0 serves", test_off_never_probes},
	{"no GPU, cpu.serve never: every model UNAVAILABLE with the reason",
	 test_cpu_never_without_gpu},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"e2e devices", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("devices_test", suites);
}
