/*
 * perf_test.c (e2e): mediabatch-perf against the real daemon on loopback: a closed loop with
 * a model mix, an open loop, a tiny sweep with plots; each report's JSON parsed by python3
 * and checked against its text (tests/common/check_perf_report.py) and against what was
 * asked; the seed's determinism; --transport udp with a ZeroMQ endpoint refused; an absent
 * daemon reported. --media DIR: a directory of WAV files (44.1 kHz stereo float, 22.05 kHz
 * mono 16-bit) and raw video replayed to logmel and identity, its --csv checked against its
 * JSON; the bytes that reached the daemon shown by the models' own refusals (a file too
 * short for logmel at 16 kHz and for clap at 48 kHz, named with its resampled sample count;
 * a video of the wrong shape for videomae, named with the shape in its file name); every
 * refusal of --media before anything is sent.
 * Each run lasts about a second.
 *
 * From an audit done from the docs alone, each failing on the old code: SIGINT ends a run
 * with exit 130 and a report of the time that ran (closed loop against a fake daemon that
 * never answers: its requests in flight are counted apart, not missing, not errors; open
 * loop and a sweep against the daemon: the window and throughput of the time measured, the
 * interrupted step not judged, the verdict from the completed steps); a fake daemon's
 * malformed answers (result_len 4 more than the payload) counted as malformed and not OK,
 * on one endpoint and with --fleet; a fleet of the daemon and a fake one says whose /metrics
 * the server-side figures are; fractions of whole-number flags, --fleet with UDP and
 * unwritable --json/--csv/--plot paths refused at once with exit 2.
 *
 * --metrics listing several daemons (each failing on the old code, which refused a list): a
 * fleet of two real daemons with both listed, whose server-side figures are the sum of both
 * (bracketed by each daemon's own /metrics before and after); a listed endpoint where nothing
 * listens, reported as 1 of 2 answered and named; malformed lists refused with exit 2.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>
#include <zmq.h>

#include "mb_e2e.h"
#include "mb_test.h"
#include "net/client_internal.h"
#include "mediabatch/protocol.h"

static struct mb_daemon g_d;
static char g_dir[] = "/tmp/mb_perf_e2e_XXXXXX";
static char g_out[256], g_err[256], g_json[256], g_csv[256];

static int
suite_init(void)
{
	if (mkdtemp(g_dir) == NULL)
		return -1;
	snprintf(g_out, sizeof(g_out), "%s/out.txt", g_dir);
	snprintf(g_err, sizeof(g_err), "%s/err.txt", g_dir);
	snprintf(g_json, sizeof(g_json), "%s/report.json", g_dir);
	snprintf(g_csv, sizeof(g_csv), "%s/report.csv", g_dir);
	return mb_daemon_start(&g_d, NULL, NULL);
}

static int
suite_cleanup(void)
{
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);
	char cmd[300];

	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", g_dir);
	return rc == 0 ? 0 : -1;
}

/*
 * Start mediabatch-perf against the test daemon with @args (NULL-terminated), stdout to g_out
 * and stderr to g_err; the endpoint and metrics flags are added unless @raw. Its pid, or -1.
 */
static pid_t
spawn_perf(const char *const *args, bool raw)
{
	const char *bin = getenv("MB_PERF");
	char *argv[48];
	int argc = 0;
	pid_t pid;

	if (bin == NULL) {
		printf("\n    MB_PERF is not set (run through meson test)");
		return -1;
	}
	argv[argc++] = (char *)bin;
	if (!raw) {
		argv[argc++] = "--endpoint";
		argv[argc++] = g_d.ingest;
		argv[argc++] = "--metrics";
		argv[argc++] = g_d.metrics;
	}
	for (int i = 0; args[i] != NULL && argc < 46; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int o = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(o, 1);
		dup2(e, 2);
		execv(bin, argv);
		_exit(127);
	}
	return pid;
}

/* spawn_perf(), then its exit status. */
static int
run_perf(const char *const *args, bool raw)
{
	int status;
	pid_t pid = spawn_perf(args, raw);

	if (pid < 0)
		return -1;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *
slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

/* Evaluate @expr, comma-separated Python expressions over `d` (the last JSON report), with
 * python3 (no shell in between); 0 when all are true, else prints which are not. */
static int
python_expect(const char *expr)
{
	static const char code[] = "import json, sys\n"
				   "d = json.load(open(sys.argv[1]))\n"
				   "v = eval('[' + sys.argv[2] + ']')\n"
				   "bad = [i for i, x in enumerate(v) if not x]\n"
				   "if bad: print('    false: item(s)', bad, 'of', sys.argv[2])\n"
				   "sys.exit(1 if bad else 0)\n";
	char *argv[] = {"python3", "-c", (char *)code, g_json, (char *)expr, NULL};
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execvp("python3", argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* python3 check_perf_report.py on the last run's text and JSON, then evaluate @expr
 * (a Python expression over `d`, the parsed JSON) and require it to be true. */
static bool
check_report(const char *mode, const char *extra, const char *expr)
{
	char cmd[4096];
	int rc;

	snprintf(cmd, sizeof(cmd), "python3 %s %s %s --mode %s %s",
		 mb_test_source_path("tests/common/check_perf_report.py"), g_out, g_json, mode,
		 extra);
	rc = system(cmd);
	if (rc != 0) {
		printf("\n    report:\n%s\n    stderr:\n%s", slurp(g_out), slurp(g_err));
		return false;
	}
	rc = python_expect(expr);
	if (rc != 0)
		printf("\n    expectation failed: %s\n%s", expr, slurp(g_json));
	return rc == 0;
}

static void
test_closed_loop_mix(void)
{
	const char *args[] = {"--outstanding", "16",
			      "--duration",    "1",
			      "--warmup",      "0.2",
			      "--drain",       "5",
			      "--mix",	       "identity:3,logmel:1",
			      "--seconds",     "uniform:0.1,0.5",
			      "--json",	       g_json,
			      "--quiet",       NULL};

	CU_ASSERT_EQUAL_FATAL(run_perf(args, false), 0);
	CU_ASSERT(check_report(
		"closed", "",
		"r:=d['runs'][0], r['sent'] > 50, r['missing'] == 0, r['outstanding'] == 16, "
		"r['status']['OK'] == r['responses'] == r['sent'], "
		"all(m['ok'] > 0 for m in r['models']), "
		"[m['model'] for m in r['models']] == ['identity', 'logmel'], "
		"r['models'][0]['sent'] > r['models'][1]['sent'], "
		"r['batch_size']['max'] >= 1, r['latency_ms']['p50'] > 0, "
		"r['metrics'] is not None, r['metrics']['units_capacity'] == 16, "
		"r['metrics']['admitted_batches'] > 0, r['compute_us']['mean'] > 0, "
		"r['throughput_rps'] > 20"));
}

static void
test_open_loop(void)
{
	const char *args[] = {"--rate", "300",	   "--duration", "1",	   "--warmup",
			      "0.2",	"--drain", "5",		 "--seed", "7",
			      "--json", g_json,	   "--quiet",	 NULL};

	CU_ASSERT_EQUAL_FATAL(run_perf(args, false), 0);
	/* Poisson at 300/s over 1 s: 300 +- 17 (1 sigma); the bounds are very generous */
	CU_ASSERT(check_report("open", "",
			       "r:=d['runs'][0], 150 <= r['sent'] <= 450, r['missing'] == 0, "
			       "r['unsent'] == 0, r['offered_rps'] == 300, "
			       "r['outstanding'] is None, r['status']['OK'] == r['sent'], "
			       "d['config']['seed'] == 7, 150 <= r['throughput_rps'] <= 450"));
}

static void
test_sweep_with_plots(void)
{
	char plots[300], png[400];
	const char *args[] = {"--sweep", "100:400:2", "--duration", "0.5",  "--warmup", "0.2",
			      "--drain", "5",	      "--slo-ms",   "1000", "--json",	g_json,
			      "--plot",	 plots,	      "--quiet",    NULL};
	struct stat st;

	snprintf(plots, sizeof(plots), "%s/plots", g_dir);
	CU_ASSERT_EQUAL_FATAL(run_perf(args, false), 0);
	CU_ASSERT(
		check_report("sweep", "--plots",
			     "s:=d['sweep'], len(d['runs']) == 2, "
			     "[r['offered_rps'] for r in d['runs']] == [100, 400], "
			     "all(r['slo_met'] for r in d['runs']), s['best_rps'] == 400, "
			     "s['best_index'] == 1, d['runs'][1]['sent'] > d['runs'][0]['sent']"));
	snprintf(png, sizeof(png), "%s/sweep.gp", plots);
	CU_ASSERT(stat(png, &st) == 0 && st.st_size > 0);
	if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
		snprintf(png, sizeof(png), "%s/sweep.png", plots);
		CU_ASSERT(stat(png, &st) == 0 && st.st_size > 1000);
		snprintf(png, sizeof(png), "%s/latency_cdf.png", plots);
		CU_ASSERT(stat(png, &st) == 0 && st.st_size > 1000);
	}
}

/* The same seed sends the same requests: with no warm-up and a count cap, the per-model
 * counts of two runs are equal; another seed gives another split. */
static void
test_seed_determinism(void)
{
	char a[512], b[512], c[512];
	const char *args[] = {"--outstanding",
			      "8",
			      "--warmup",
			      "0",
			      "--duration",
			      "30",
			      "--requests",
			      "300",
			      "--mix",
			      "identity:1,logmel:1",
			      "--seconds",
			      "0.1",
			      "--json",
			      g_json,
			      "--quiet",
			      "--seed",
			      "11",
			      NULL};
	char line[1024], path[300];
	double t0 = mb_e2e_now();

	snprintf(path, sizeof(path), "%s/counts.txt", g_dir);
	for (int i = 0; i < 3; i++) {
		if (i == 2)
			args[16] = "12";
		CU_ASSERT_EQUAL_FATAL(run_perf(args, false), 0);
		snprintf(line, sizeof(line),
			 "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			 "print(*[m[\"sent\"] for m in d[\"runs\"][0][\"models\"]])' %s > %s",
			 g_json, path);
		CU_ASSERT_EQUAL_FATAL(system(line), 0);
		snprintf(i == 0 ? a : i == 1 ? b : c, sizeof(a), "%s", slurp(path));
	}
	printf("\n    seed 11: %s    seed 11: %s    seed 12: %s", a, b, c);
	CU_ASSERT_STRING_EQUAL(a, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, c);
	/* the count cap ended each run long before its 30 s */
	CU_ASSERT(mb_e2e_now() - t0 < 25);
}

/* A loopback port nobody listens on (bound, read, closed). */
static int
unused_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void
test_progress_and_refusals(void)
{
	const char *progress[] = {"--outstanding", "4", "--duration", "1.2", "--warmup", "0", NULL};
	const char *udp[] = {"--transport", "udp", "--duration", "0.2", NULL};
	const char *bad[] = {"--mix", "identity:0", NULL};
	char ep[64];
	const char *absent[] = {"--endpoint", ep,  "--metrics", "off", "--duration", "0.3",
				"--warmup",   "0", "--drain",	"0.3", "--quiet",    NULL};

	/* a progress line about once a second on stderr (none with --quiet, as above) */
	CU_ASSERT_EQUAL(run_perf(progress, false), 0);
	CU_ASSERT(strstr(slurp(g_err), "mediabatch-perf: closed 4 outstanding") != NULL);
	CU_ASSERT(strstr(slurp(g_out), "latency ms") != NULL);

	/* udp wants the service's IPv4:PORT, not a ZeroMQ endpoint (the live run is in the
	 * dpdk suite: tests/dpdk/udp_live_test.sh) */
	CU_ASSERT_EQUAL(run_perf(udp, false), 2);
	CU_ASSERT(strstr(slurp(g_err), "is not IPv4:PORT") != NULL);
	CU_ASSERT_EQUAL(run_perf(bad, false), 2);
	CU_ASSERT(strstr(slurp(g_err), "--mix") != NULL);

	/* nothing listening there: exit 1, said plainly */
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", unused_port());
	CU_ASSERT_EQUAL(run_perf(absent, true), 1);
	CU_ASSERT(strstr(slurp(g_err), "no responses") != NULL);
}

/* ---- --media ---- */

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/*
 * A WAV file written byte by byte (so this test needs no audio library): @frames frames of
 * a 440 Hz tone at @rate on @channels channels, as 32-bit float (@is_float) or 16-bit PCM.
 */
static int
write_wav(const char *path, uint32_t rate, uint16_t channels, bool is_float, uint32_t frames)
{
	uint16_t width = is_float ? 4 : 2;
	uint32_t data = frames * channels * width;
	uint8_t h[44] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' '};
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (f == NULL)
		return -1;
	put32(h + 4, 36 + data);
	put32(h + 16, 16);
	put16(h + 20, is_float ? 3 : 1); /* WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_PCM */
	put16(h + 22, channels);
	put32(h + 24, rate);
	put32(h + 28, rate * channels * width);
	put16(h + 32, (uint16_t)(channels * width));
	put16(h + 34, (uint16_t)(width * 8));
	memcpy(h + 36, "data", 4);
	put32(h + 40, data);
	rc |= fwrite(h, 1, sizeof(h), f) != sizeof(h);
	for (uint32_t i = 0; i < frames; i++) {
		double x = 0.5 * sin(2 * M_PI * 440 * i / rate);

		for (uint16_t c = 0; c < channels; c++) {
			uint8_t b[4];

			if (is_float) {
				float v = (float)x;
				uint32_t u;

				memcpy(&u, &v, 4);
				put32(b, u);
			} else {
				put16(b, (uint16_t)(int16_t)lrint(x * 32767));
			}
			rc |= fwrite(b, 1, width, f) != width;
		}
	}
	return fclose(f) == 0 && rc == 0 ? 0 : -1;
}

static int
write_bytes(const char *path, size_t n)
{
	FILE *f = fopen(path, "wb");
	size_t ok = 0;

	if (f == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		ok += fputc((int)(i * 7 % 251), f) != EOF;
	return fclose(f) == 0 && ok == n ? 0 : -1;
}

/* A fresh directory g_dir/@name; its path in @buf. */
static const char *
media_dir(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", g_dir, name);
	mkdir(buf, 0755);
	return buf;
}

static const char *
file_in(const char *dir, const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void
test_media_replay(void)
{
	char dir[300], expr[2048];
	const char *args[] = {"--media",       dir,   "--mix",	    "logmel:1,identity:1",
			      "--outstanding", "4",   "--warmup",   "0",
			      "--duration",    "30",  "--requests", "90",
			      "--seed",	       "3",   "--json",	    g_json,
			      "--csv",	       g_csv, "--quiet",    NULL};
	char csv_flag[300];

	media_dir("media", dir, sizeof(dir));
	/* 0.5 s at 44.1 kHz stereo float: 8000 samples at 16 kHz; 0.2 s at 22.05 kHz mono
	 * 16-bit: 3200; a video of 2 frames of 8x8: 384 bytes */
	CU_ASSERT_FATAL(write_wav(file_in(dir, "a_tone44k.wav"), 44100, 2, true, 22050) == 0);
	CU_ASSERT_FATAL(write_wav(file_in(dir, "b_tone22k.wav"), 22050, 1, false, 4410) == 0);
	CU_ASSERT_FATAL(write_bytes(file_in(dir, "c_clip.2x8x8.rgb"), 384) == 0);
	mkdir(file_in(dir, "subdir"), 0755); /* not a file: left out */
	CU_ASSERT_FATAL(write_bytes(file_in(dir, ".hidden"), 10) == 0);

	CU_ASSERT_EQUAL_FATAL(run_perf(args, false), 0);
	snprintf(csv_flag, sizeof(csv_flag), "--csv %s", g_csv);
	snprintf(expr, sizeof(expr),
		 "r:=d['runs'][0], m:=d['media'], L:={f['name']: f for f in m['list']}, "
		 "r['sent'] == 90, r['status']['OK'] == r['responses'] == 90, "
		 "m['dir'] == '%s', m['files'] == 3, m['audio_files'] == 2, "
		 "m['video_files'] == 1, m['audio_files_used'] == 2, m['video_files_used'] == 1, "
		 "m['audio_rates'] == [16000], "
		 "L['a_tone44k.wav']['bytes'] == [16000], L['a_tone44k.wav']['rate'] == 44100, "
		 "L['a_tone44k.wav']['channels'] == 2, L['b_tone22k.wav']['bytes'] == [6400], "
		 "L['c_clip.2x8x8.rgb']['bytes'] == [384], L['c_clip.2x8x8.rgb']['frames'] == 2, "
		 "sum(f['sent'] for f in m['list']) == 90, "
		 "r['media_sent']['audio'] + r['media_sent']['video'] == 90, "
		 "r['media_sent']['video'] == L['c_clip.2x8x8.rgb']['sent'] > 0, "
		 "m['memory_bytes'] == 16000 + 6400 + 384, "
		 "[x['model'] for x in r['models']] == ['logmel', 'identity']",
		 dir);
	CU_ASSERT(check_report("closed", csv_flag, expr));
	CU_ASSERT(strstr(slurp(g_out), "2 audio file(s), 2 sent; 1 video file(s), 1 sent") != NULL);
}

/* The daemon's own refusals say what reached it: the resampled length, the file's shape. */
static void
test_media_bytes_sent(void)
{
	char shortdir[300], viddir[300];
	const char *logmel[] = {"--media",  shortdir, "--mix",	    "logmel", "--outstanding", "2",
				"--warmup", "0",      "--duration", "30",     "--requests",    "6",
				"--json",   g_json,   "--quiet",    NULL};
	const char *clap[] = {"--media",  shortdir, "--mix",	  "clap", "--outstanding", "2",
			      "--warmup", "0",	    "--duration", "30",	  "--requests",	   "6",
			      "--json",	  g_json,   "--quiet",	  NULL};
	const char *video[] = {"--media",  viddir, "--mix",	 "videomae", "--outstanding", "2",
			       "--warmup", "0",	   "--duration", "30",	     "--requests",    "6",
			       "--json",   g_json, "--quiet",	 NULL};

	/* 882 frames at 44.1 kHz (20 ms): 320 samples at 16 kHz, 960 at 48 kHz: under both
	 * models' 25 ms */
	media_dir("short", shortdir, sizeof(shortdir));
	CU_ASSERT_FATAL(write_wav(file_in(shortdir, "short.wav"), 44100, 2, true, 882) == 0);
	media_dir("video", viddir, sizeof(viddir));
	CU_ASSERT_FATAL(write_bytes(file_in(viddir, "clip.16x8x8.rgb"), 16 * 8 * 8 * 3) == 0);

	CU_ASSERT_EQUAL_FATAL(run_perf(logmel, false), 0);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], r['status']['BAD_REQUEST'] == r['sent'] == 6, "
			       "'320 samples of audio' in r['reasons']['BAD_REQUEST']"));
	CU_ASSERT_EQUAL_FATAL(run_perf(clap, false), 0);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], r['status']['BAD_REQUEST'] == r['sent'] == 6, "
			       "'960 samples of audio' in r['reasons']['BAD_REQUEST'], "
			       "d['media']['audio_rates'] == [48000]"));
	CU_ASSERT_EQUAL_FATAL(run_perf(video, false), 0);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], r['status']['BAD_REQUEST'] == r['sent'] == 6, "
			       "'16 x 8 x 8' in r['reasons']['BAD_REQUEST'], "
			       "r['media_sent'] == {'audio': 0, 'video': 6}"));
}

/* Refused before anything is sent (exit 2), each saying what and where. */
static void
test_media_refusals(void)
{
	char empty[300], text[300], noshape[300], badsize[300], mixed[300], audio[300];
	char missing[300], big[300];
	struct {
		const char *dir, *mix, *extra, *words;
	} cases[] = {
		{empty, "identity", NULL, "no files in it"},
		{missing, "identity", NULL, "No such file"},
		{text, "identity", NULL, "notes.txt: not an audio file libsndfile can read"},
		{noshape, "identity", NULL, "NAME.FRAMESxHEIGHTxWIDTH.rgb"},
		{badsize, "identity", NULL, "100 bytes, but 2 frames of 8x8 RGB24 are 384"},
		{mixed, "logmel", NULL, "1 video file(s) (the first: v.2x8x8.rgb) go to no model"},
		{audio, "logmel,videomae", NULL, "model 'videomae' of the mix takes video files"},
		{audio, "nosuchmodel", NULL, "does not know what media model 'nosuchmodel' takes"},
		{audio, "logmel", "--seconds", "--seconds does not go with --media"},
		{big, "identity", "--media-max-mb", "over the limit of 1.0 MiB"},
	};

	media_dir("r_empty", empty, sizeof(empty));
	snprintf(missing, sizeof(missing), "%s/r_missing", g_dir);
	media_dir("r_text", text, sizeof(text));
	CU_ASSERT_FATAL(write_bytes(file_in(text, "notes.txt"), 100) == 0);
	media_dir("r_noshape", noshape, sizeof(noshape));
	CU_ASSERT_FATAL(write_bytes(file_in(noshape, "clip.rgb"), 384) == 0);
	media_dir("r_badsize", badsize, sizeof(badsize));
	CU_ASSERT_FATAL(write_bytes(file_in(badsize, "v.2x8x8.rgb"), 100) == 0);
	media_dir("r_mixed", mixed, sizeof(mixed));
	CU_ASSERT_FATAL(write_wav(file_in(mixed, "a.wav"), 16000, 1, false, 1600) == 0);
	CU_ASSERT_FATAL(write_bytes(file_in(mixed, "v.2x8x8.rgb"), 384) == 0);
	media_dir("r_audio", audio, sizeof(audio));
	CU_ASSERT_FATAL(write_wav(file_in(audio, "a.wav"), 16000, 1, false, 1600) == 0);
	media_dir("r_big", big, sizeof(big));
	CU_ASSERT_FATAL(write_bytes(file_in(big, "v.2x512x512.rgb"), 2 * 512 * 512 * 3) == 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = {"--media", cases[i].dir, "--mix", cases[i].mix,
				      "--quiet", NULL,	       NULL,	NULL};
		int rc;

		if (cases[i].extra != NULL) {
			args[5] = cases[i].extra;
			args[6] = "1";
		}
		rc = run_perf(args, false);
		printf("\n    %s --mix %s: exit %d: %s", cases[i].dir + strlen(g_dir) + 1,
		       cases[i].mix, rc, slurp(g_err));
		CU_ASSERT_EQUAL(rc, 2);
		CU_ASSERT(strstr(slurp(g_err), cases[i].words) != NULL);
	}
}

/* ---- from the audit: interrupts, malformed answers, fleets, refusals ---- */

/* How a fake daemon answers. */
enum fake_mode {
	FAKE_OK,	/* TEXT "ok", well formed */
	FAKE_MALFORMED, /* OK, F32, result_len 4 more than the payload it sends */
	FAKE_SILENT,	/* never */
};

/* A ZeroMQ ROUTER on loopback, served by a thread of its own for at most 60 s. */
struct fake_daemon {
	enum fake_mode mode;
	char ep[64];
	void *ctx, *sock;
	pthread_t thread;
	int quit; /* __atomic */
	int received;
};

static void *
fake_main(void *arg)
{
	struct fake_daemon *f = arg;
	double until = mb_e2e_now() + 60;

	while (!__atomic_load_n(&f->quit, __ATOMIC_ACQUIRE) && mb_e2e_now() < until) {
		zmq_pollitem_t it = {.socket = f->sock, .events = ZMQ_POLLIN};
		zmq_msg_t m[3];
		int n;

		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		n = mb_client_recv_msg(f->sock, m, 3, 0); /* [routing id][header][payload] */
		if (n == 3) {
			struct mb_request_hdr q;
			struct mb_response_hdr h;
			struct mb_proto_error e;
			uint8_t wire[MB_PROTO_HDR_LEN];
			size_t len = zmq_msg_size(&m[2]);

			if (mb_proto_decode_request(zmq_msg_data(&m[1]), zmq_msg_size(&m[1]),
						    MB_TRANSPORT_ZMQ, 1u << 24, &q, &e) == 0 &&
			    !(q.flags & MB_FLAG_CANCEL) && f->mode != FAKE_SILENT) {
				f->received++;
				memset(&h, 0, sizeof(h));
				h.version = MB_PROTO_VERSION;
				h.status = MB_STATUS_OK;
				h.request_id = q.request_id;
				h.tenant_id = q.tenant_id;
				h.batch_size = 1;
				memcpy(h.model, q.model, sizeof(h.model));
				if (f->mode == FAKE_OK) {
					h.result_type = MB_RESULT_TEXT;
					h.result_len = 2;
				} else {
					h.result_type = MB_RESULT_F32;
					h.rows = 1;
					h.cols = (uint16_t)(len / 4 + 1);
					h.result_len = (uint32_t)len + 4;
				}
				mb_proto_encode_response(&h, wire);
				zmq_send(f->sock, zmq_msg_data(&m[0]), zmq_msg_size(&m[0]),
					 ZMQ_SNDMORE);
				zmq_send(f->sock, wire, sizeof(wire), ZMQ_SNDMORE);
				if (f->mode == FAKE_OK)
					zmq_send(f->sock, "ok", 2, 0);
				else
					zmq_send(f->sock, zmq_msg_data(&m[2]), len, 0);
			} else if (f->mode == FAKE_SILENT) {
				f->received++;
			}
		}
		for (int i = 0; i < n && i < 3; i++)
			zmq_msg_close(&m[i]);
	}
	zmq_close(f->sock);
	return NULL;
}

static bool
fake_start(struct fake_daemon *f, enum fake_mode mode)
{
	size_t n = sizeof(f->ep);
	int linger = 0;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->ctx = zmq_ctx_new();
	f->sock = f->ctx ? zmq_socket(f->ctx, ZMQ_ROUTER) : NULL;
	if (f->sock == NULL)
		return false;
	zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(f->sock, "tcp://127.0.0.1:*") != 0 ||
	    zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, f->ep, &n) != 0 ||
	    pthread_create(&f->thread, NULL, fake_main, f) != 0) {
		zmq_close(f->sock);
		zmq_ctx_term(f->ctx);
		return false;
	}
	return true;
}

static void
fake_stop(struct fake_daemon *f)
{
	__atomic_store_n(&f->quit, 1, __ATOMIC_RELEASE);
	pthread_join(f->thread, NULL);
	zmq_ctx_term(f->ctx);
}

/*
 * Run mediabatch-perf with @args as run_perf() does, and send it @sig once @after seconds
 * have passed since @pattern appeared on its stderr (NULL: since it started); every wait
 * bounded (30 s for the pattern, 30 s for the exit, then SIGKILL). The exit status, or -N
 * for a death by signal N (so that 130 is the program's own).
 */
static int
run_perf_signal(const char *const *args, bool raw, const char *pattern, double after, int sig)
{
	int status = 0;
	double t0 = mb_e2e_now(), seen = -1;
	pid_t pid = spawn_perf(args, raw);

	if (pid < 0)
		return -1000;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		double now = mb_e2e_now();

		if (seen < 0 && (pattern == NULL || strstr(slurp(g_err), pattern) != NULL))
			seen = now;
		if (seen >= 0 && now - seen >= after && sig != 0) {
			kill(pid, sig);
			sig = 0;
		}
		if (now - t0 > 60) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* A closed loop against a daemon that never answers, interrupted after a second: its 8
 * requests in flight are counted as such, not missing, not errors; the window is the
 * second that ran; text, JSON and CSV say it was interrupted. */
static void
test_interrupt_in_flight(void)
{
	struct fake_daemon f;
	char csv_flag[300];
	const char *args[] = {"--endpoint", f.ep,   "--metrics",  "off", "--outstanding", "8",
			      "--warmup",   "0",    "--duration", "5",	 "--drain",	  "5",
			      "--json",	    g_json, "--csv",	  g_csv, "--quiet",	  NULL};
	double t0 = mb_e2e_now();
	int rc;

	CU_ASSERT_FATAL(fake_start(&f, FAKE_SILENT));
	rc = run_perf_signal(args, true, NULL, 1.0, SIGINT);
	fake_stop(&f);
	printf("\n    exit %d after %.1f s: %s", rc, mb_e2e_now() - t0, slurp(g_err));
	CU_ASSERT_EQUAL_FATAL(rc, 130);
	CU_ASSERT(mb_e2e_now() - t0 < 4);
	snprintf(csv_flag, sizeof(csv_flag), "--csv %s", g_csv);
	CU_ASSERT(check_report("closed", csv_flag,
			       "r:=d['runs'][0], r['interrupted'] is True, "
			       "r['interrupted_in'] == 'window', r['sent'] == 8, "
			       "r['in_flight_at_interrupt'] == 8, r['missing'] == 0, "
			       "r['error_pct'] == 0, r['responses'] == 0, r['slo_met'] is None, "
			       "0.5 <= r['window_s'] <= 2.5, d['config']['duration_s'] == 5"));
	CU_ASSERT(strstr(slurp(g_out), "\ninterrupted     ") != NULL);
	CU_ASSERT(strstr(slurp(g_out), "8 request(s) in flight then, not counted as answered, "
				       "missing or errors") != NULL);
	CU_ASSERT(strstr(slurp(g_out), "stages          n/a (--metrics off)") != NULL);
}

/* An open loop at 1000 req/s interrupted about 1.5 s into its 5 s window: throughput and
 * window are of the time that ran (not 1500 requests over 5 s). */
static void
test_interrupt_open_loop(void)
{
	char csv_flag[300];
	const char *args[] = {"--rate", "1000",	   "--duration", "5",	   "--warmup",
			      "0.2",	"--drain", "5",		 "--json", g_json,
			      "--csv",	g_csv,	   "--quiet",	 NULL};
	int rc = run_perf_signal(args, false, NULL, 1.7, SIGINT);

	printf("\n    exit %d: %s", rc, slurp(g_err));
	CU_ASSERT_EQUAL_FATAL(rc, 130);
	snprintf(csv_flag, sizeof(csv_flag), "--csv %s", g_csv);
	CU_ASSERT(check_report("open", csv_flag,
			       "r:=d['runs'][0], r['interrupted'] is True, "
			       "r['interrupted_in'] == 'window', 0.8 <= r['window_s'] <= 3.0, "
			       "r['offered_rps'] == 1000, 600 <= r['throughput_rps'] <= 1400, "
			       "r['missing'] == 0, r['error_pct'] < 5, r['slo_met'] is None"));
	CU_ASSERT(strstr(slurp(g_out), "s measured (interrupted; 5.0 s planned)") != NULL);
}

/* A sweep interrupted in its second step: step 1 judged, step 2 not; the verdict comes from
 * the completed step only; nothing about the steps past the SLO showing the knee. */
static void
test_interrupt_sweep(void)
{
	char csv_flag[300];
	const char *args[] = {"--sweep", "100:200:2", "--duration", "2",	"--warmup",
			      "0.2",	 "--drain",   "5",	    "--slo-ms", "1000",
			      "--json",	 g_json,      "--csv",	    g_csv,	NULL};
	int rc = run_perf_signal(args, false, "step 2/2", 0, SIGINT);

	printf("\n    exit %d", rc);
	CU_ASSERT_EQUAL_FATAL(rc, 130);
	snprintf(csv_flag, sizeof(csv_flag), "--csv %s", g_csv);
	CU_ASSERT(
		check_report("sweep", csv_flag,
			     "a:=d['runs'][0], b:=d['runs'][1], len(d['runs']) == 2, "
			     "a['slo_met'] is True, a['interrupted'] is False, "
			     "a['window_s'] == 2, b['interrupted'] is True, b['slo_met'] is None, "
			     "(0 < b['window_s'] < 1.9 or b['interrupted_in'] == 'drain'), "
			     "d['sweep']['best_index'] == 0, "
			     "d['sweep']['best_step'] == 1"));
	CU_ASSERT(strstr(slurp(g_out),
			 "; from the 1 completed step(s) only\n(interrupted in step 2 "
			 "of 2: that step is not judged") != NULL);
	CU_ASSERT(strstr(slurp(g_out), "knee") == NULL);
}

/* A daemon whose answers carry 4 bytes less than their header's result_len: malformed, not
 * OK, through the one-endpoint path and the fleet client alike. */
static void
test_malformed_answers(void)
{
	struct fake_daemon f;
	const char *one[] = {"--endpoint", f.ep,       "--metrics", "off",	  "--outstanding",
			     "4",	   "--warmup", "0",	    "--duration", "0.5",
			     "--drain",	   "2",	       "--json",    g_json,	  "--quiet",
			     NULL,	   NULL};

	CU_ASSERT_FATAL(fake_start(&f, FAKE_MALFORMED));
	CU_ASSERT_EQUAL(run_perf(one, true), 0);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], r['sent'] > 0, r['status']['OK'] == 0, "
			       "r['status']['UNAVAILABLE'] == r['responses'] == r['sent'], "
			       "r['proto_errors'] >= r['sent'], r['missing'] == 0, "
			       "r['error_pct'] == 100, 'client: malformed response: result_len is' "
			       "in r['reasons']['UNAVAILABLE']"));
	CU_ASSERT(strstr(slurp(g_out), "errors 100.000%, malformed ") != NULL);
	one[15] = "--fleet";
	CU_ASSERT_EQUAL(run_perf(one, true), 0);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], r['sent'] > 0, r['status']['OK'] == 0, "
			       "r['proto_errors'] > 0, "
			       "r['proto_errors'] == d['fleet']['malformed']"));
	fake_stop(&f);
}

/* A fleet of the daemon and a fake one: the stages and admission come from the daemon's
 * /metrics alone, and the text says so. */
static void
test_fleet_metrics_source(void)
{
	struct fake_daemon f;
	char eps[200];
	const char *args[] = {"--endpoint", eps,	"--metrics", g_d.metrics,  "--outstanding",
			      "4",	    "--warmup", "0",	     "--duration", "0.5",
			      "--json",	    g_json,	"--quiet",   NULL};
	char want[200];

	CU_ASSERT_FATAL(fake_start(&f, FAKE_OK));
	snprintf(eps, sizeof(eps), "%s,%s", g_d.ingest, f.ep);
	CU_ASSERT_EQUAL(run_perf(args, true), 0);
	fake_stop(&f);
	CU_ASSERT(check_report("closed", "",
			       "r:=d['runs'][0], len(d['fleet']['daemons']) == 2, "
			       "r['metrics'] is not None, r['status']['OK'] == r['sent'] > 0"));
	snprintf(want, sizeof(want), "\nmetrics         from %s only: 1 of 2 daemons;",
		 g_d.metrics);
	CU_ASSERT(strstr(slurp(g_out), want) != NULL);
}

/*
 * A fleet of two daemons with --metrics listing both: the server-side figures are the sum of
 * both daemons' (the old code refused a list, and with one endpoint took that daemon's
 * alone): the units' capacity is both cpu0's 16, and the requests the compute stage counted
 * and the batches admitted are more than either daemon served in the run and no more than
 * both did (each daemon's own /metrics, read before and after the run, brackets it).
 */
static void
test_fleet_metrics_summed(void)
{
	static const char compute[] =
		"mediabatch_stage_seconds_count{model=\"identity\",stage=\"compute\"}";
	static const char admitted[] = "mediabatch_admission_wait_seconds_count{device=\"cpu0\"}";
	struct mb_daemon d2;
	char eps[200], mets[200], expr[2048];
	const char *args[] = {"--endpoint", eps,     "--metrics",  mets,   "--outstanding", "8",
			      "--warmup",   "0",     "--duration", "1",	   "--drain",	    "2",
			      "--requests", "50000", "--json",	   g_json, "--quiet",	    NULL};
	double c0[2], c1[2], a0[2], a1[2];
	int rc;

	CU_ASSERT_FATAL(mb_daemon_start(&d2, NULL, NULL) == 0);
	snprintf(eps, sizeof(eps), "%s,%s", g_d.ingest, d2.ingest);
	snprintf(mets, sizeof(mets), "%s,%s", g_d.metrics, d2.metrics);
	c0[0] = mb_daemon_metric(&g_d, compute);
	c0[1] = mb_daemon_metric(&d2, compute);
	a0[0] = mb_daemon_metric(&g_d, admitted);
	a0[1] = mb_daemon_metric(&d2, admitted);
	rc = run_perf(args, true);
	c1[0] = mb_daemon_metric(&g_d, compute);
	c1[1] = mb_daemon_metric(&d2, compute);
	a1[0] = mb_daemon_metric(&g_d, admitted);
	a1[1] = mb_daemon_metric(&d2, admitted);
	CU_ASSERT_EQUAL(mb_daemon_stop(&d2, SIGTERM, 30.0), 0);
	printf("\n    exit %d; compute %g + %g, admitted %g + %g", rc, c1[0] - c0[0], c1[1] - c0[1],
	       a1[0] - a0[0], a1[1] - a0[1]);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_FATAL(c0[0] >= 0 && c0[1] >= 0 && a0[0] >= 0 && a0[1] >= 0);
	/* each daemon served a good part of the run: the fleet spreads it */
	CU_ASSERT(c1[0] - c0[0] > 50 && c1[1] - c0[1] > 50);
	snprintf(expr, sizeof(expr),
		 "r:=d['runs'][0], len(d['fleet']['daemons']) == 2, "
		 "r['status']['OK'] == r['sent'] > 100, "
		 "d['config']['metrics'] == '%s', "
		 "d['config']['metrics_endpoints'] == ['%s', '%s'], "
		 "r['metrics_answered'] == 2, r['metrics_missing'] == [], "
		 "r['metrics']['units_capacity'] == 32, r['stages'] is not None, "
		 "%.0f < r['stages']['compute']['count'] <= %.0f, "
		 "%.0f < r['metrics']['admitted_batches'] <= %.0f, "
		 "sum(r['batches_closed'].values()) <= %.0f",
		 mets, g_d.metrics, d2.metrics, fmax(c1[0] - c0[0], c1[1] - c0[1]),
		 c1[0] - c0[0] + c1[1] - c0[1], fmax(a1[0] - a0[0], a1[1] - a0[1]),
		 a1[0] - a0[0] + a1[1] - a0[1], a1[0] - a0[0] + a1[1] - a0[1]);
	/* python_expect(), not check_report(): check_perf_report.py knows one --metrics
	 * endpoint per fleet only (its check_fleet() wants "only: 1 of 2 daemons") */
	rc = python_expect(expr);
	if (rc != 0)
		printf("\n    expectation failed: %s\n%s\n%s", expr, slurp(g_out), slurp(g_err));
	CU_ASSERT(rc == 0);
	CU_ASSERT(strstr(slurp(g_out), "\nmetrics         from 2 of 2 daemons, summed; stages, "
				       "batches closed, admission below\nstages ") != NULL);
	CU_ASSERT(strstr(slurp(g_out), " of 32\n") != NULL); /* units in use ... of 32 */
}

/*
 * --metrics listing the daemon and a closed loopback port: that one is named on stderr at
 * start, the run goes on, and the report says the figures are 1 of the 2 listed daemons',
 * which one did not answer, in the text and the JSON. A bad list is a usage error.
 */
static void
test_metrics_one_dead(void)
{
	char mets[200], dead[64], expr[1024], want[300];
	const char *args[] = {"--endpoint", g_d.ingest, "--metrics",  mets,  "--outstanding", "4",
			      "--warmup",   "0",	"--duration", "0.5", "--drain",	      "2",
			      "--json",	    g_json,	"--quiet",    NULL};
	char lists[4][200];
	const char *words[4] = {"an empty endpoint in the list", "an empty endpoint in the list",
				"twice", "is not an HTTP endpoint"};
	int port;

	CU_ASSERT_FATAL(mb_e2e_free_ports(&port, 1) == 0);
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", port); /* nothing listens there */
	snprintf(mets, sizeof(mets), "%s,%s", g_d.metrics, dead);
	CU_ASSERT_EQUAL_FATAL(run_perf(args, true), 0);
	snprintf(want, sizeof(want), "mediabatch-perf: --metrics %s: cannot connect", dead);
	CU_ASSERT(strstr(slurp(g_err), want) != NULL);
	CU_ASSERT(strstr(slurp(g_err), "the server-side figures will leave that daemon out") !=
		  NULL);
	snprintf(expr, sizeof(expr),
		 "r:=d['runs'][0], r['status']['OK'] == r['sent'] > 0, "
		 "d['config']['metrics_endpoints'] == ['%s', '%s'], "
		 "r['metrics_answered'] == 1, r['metrics_missing'] == ['%s'], "
		 "r['metrics'] is not None, r['metrics']['units_capacity'] == 16, "
		 "r['stages'] is not None, r['stages']['compute']['count'] > 0",
		 g_d.metrics, dead, dead);
	CU_ASSERT(check_report("closed", "", expr));
	snprintf(want, sizeof(want),
		 "\nmetrics         from 1 of 2 daemons (%s did not answer), summed; stages, "
		 "batches closed, admission below\n",
		 dead);
	CU_ASSERT(strstr(slurp(g_out), want) != NULL);

	snprintf(lists[0], sizeof(lists[0]), "%s,,%s", g_d.metrics, dead);
	snprintf(lists[1], sizeof(lists[1]), "%s,%s,", g_d.metrics, dead);
	snprintf(lists[2], sizeof(lists[2]), "%s,http://%s", g_d.metrics, g_d.metrics);
	snprintf(lists[3], sizeof(lists[3]), "%s,%s:x", g_d.metrics, dead);
	for (int i = 0; i < 4; i++) {
		args[3] = lists[i];
		CU_ASSERT_EQUAL(run_perf(args, true), 2);
		printf("\n    --metrics %s: %s", lists[i], slurp(g_err));
		CU_ASSERT(strstr(slurp(g_err), words[i]) != NULL);
	}
}

/* Refused at once with exit 2 (the old code ran 3 s, then truncated or failed with 1). */
static void
test_audit_refusals(void)
{
	char nodir[300], underfile[300], fresh[300], missing[300];
	struct {
		const char *a[6], *words;
	} cases[] = {
		{{"--outstanding", "1.5"},
		 "--outstanding '1.5': want a whole number in 1..1000000"},
		{{"--tenant", "0.5"}, "--tenant '0.5': want a whole number"},
		{{"--sweep", "100:200:2", "--sweep-past", "1.5"},
		 "--sweep-past '1.5': want a whole"},
		{{"--requests", "2.5"}, "--requests '2.5': want a whole number"},
		{{"--rate", "100", "--max-outstanding", "3.5"}, "--max-outstanding '3.5'"},
		{{"--timeout-ms", "1.5"}, "--timeout-ms '1.5': want a whole number"},
		{{"--transport", "udp", "--fleet"}, "--fleet does not go with --transport udp"},
		{{"--json", nodir}, nodir},
		{{"--csv", g_dir}, "--csv "},
		{{"--plot", underfile}, underfile},
		{{"--json", fresh, "--media", missing}, "--media"},
	};

	snprintf(nodir, sizeof(nodir), "%s/no/such/dir/r.json", g_dir);
	snprintf(underfile, sizeof(underfile), "%s/plots", g_out); /* g_out is a file */
	snprintf(fresh, sizeof(fresh), "%s/fresh.json", g_dir);
	snprintf(missing, sizeof(missing), "%s/no_media", g_dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[12] = {"--duration", "3", "--warmup", "0", "--quiet"};
		double t0 = mb_e2e_now();
		struct stat st;
		int rc, n = 5;

		for (int k = 0; k < 6 && cases[i].a[k] != NULL; k++)
			args[n++] = cases[i].a[k];
		rc = run_perf(args, false);
		printf("\n    %s %s: exit %d in %.1f s: %s", cases[i].a[0], cases[i].a[1], rc,
		       mb_e2e_now() - t0, slurp(g_err));
		CU_ASSERT_EQUAL(rc, 2);
		CU_ASSERT(mb_e2e_now() - t0 < 2.5);
		CU_ASSERT(strstr(slurp(g_err), cases[i].words) != NULL);
		/* a file the check created is not left behind */
		CU_ASSERT(stat(fresh, &st) != 0);
	}
}

static const struct mb_test_case cases[] = {
	{"closed loop, identity:3 logmel:1: JSON holds the text; every request OK",
	 test_closed_loop_mix},
	{"open loop 300 req/s: sent and throughput near the rate", test_open_loop},
	{"sweep 100..400 in 2 steps: SLO, best rate, plots", test_sweep_with_plots},
	{"--seed: same seed same requests, another seed others", test_seed_determinism},
	{"progress line; udp with a bad address; bad mix; absent daemon",
	 test_progress_and_refusals},
	{"--media: WAV files and raw video to logmel and identity; --csv agrees with the JSON",
	 test_media_replay},
	{"--media: what reached the daemon (resampled lengths, the video's shape)",
	 test_media_bytes_sent},
	{"--media refusals: empty, missing, not audio, bad .rgb, unmatched files and models, "
	 "limits",
	 test_media_refusals},
	{"SIGINT, closed loop, nothing answered: in flight counted apart, window that ran",
	 test_interrupt_in_flight},
	{"SIGINT, open loop 1000 req/s: window and throughput of the time measured",
	 test_interrupt_open_loop},
	{"SIGINT in a sweep's second step: not judged, verdict from the completed step",
	 test_interrupt_sweep},
	{"malformed answers (result_len 4 over the payload): not OK, counted, with --fleet too",
	 test_malformed_answers},
	{"fleet of two: the text says whose /metrics the server-side figures are",
	 test_fleet_metrics_source},
	{"fleet of two, --metrics listing both: server-side figures summed over both daemons",
	 test_fleet_metrics_summed},
	{"--metrics listing a dead endpoint: warned, figures from 1 of 2, named; bad lists",
	 test_metrics_one_dead},
	{"whole-number flags, --fleet with udp, unwritable --json/--csv/--plot: exit 2 at once",
	 test_audit_refusals},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"mediabatch-perf end to end", suite_init, suite_cleanup,
					   cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	if (system("python3 -c 'import json' >/dev/null 2>&1") != 0)
		mb_test_skip("python3 is not installed (deploy/install-deps.sh installs it)");
	return mb_test_main("perf_test", suites);
}
