/*
 * audio_test.c (e2e): `mediabatch send --audio FILE` against the real daemon. Files are
 * written here with libsndfile: a 44.1 kHz stereo float WAV and a 22.05 kHz stereo FLAC of a
 * 440 Hz tone.
 *
 *   - The WAV to logmel (no --rate: logmel's 16 kHz): OK, [100 x 80] for 1 s, and its
 *     log-mel frames match those of the CLI's own 16 kHz --tone 440 (same peak bin, close
 *     values), while a 1 kHz file's do not: the samples that reached the daemon are the tone,
 *     resampled.
 *   - The FLAC through --wav to identity with --rate 16000: identity answers the payload's
 *     byte count, 2 x 0.75 s x 16000 = 24000 exactly; with --f32, 4 x 12000 = 48000.
 *   - clap without --rate: 48 kHz (the CLI says so, and clap accepts it).
 *   - A model that is not built in: its rate from the daemon's metadata (a stand-in HTTP
 *     server here answers /v2/models/NAME: sample_rate 22050, max_payload_bytes), the payload
 *     limit from it too; no sample rate there, or a 404 from the real daemon: refused, saying
 *     to pass --rate; with --rate it is sent (UNKNOWN_MODEL).
 *   - Refusals before anything is sent: a missing file, an empty one, a text file.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sndfile.h>

#include "mb_e2e.h"
#include "mb_test.h"

static struct mb_daemon g_d;
static const char *g_dir;
static char g_http[64]; /* the daemon's HOST:PORT for HTTP */

static int
suite_init(void)
{
	g_dir = mb_test_temp_dir();
	if (mb_daemon_start(&g_d, NULL, NULL) != 0)
		return -1;
	snprintf(g_http, sizeof(g_http), "127.0.0.1:%d", g_d.port_http);
	return 0;
}

static int
suite_cleanup(void)
{
	int rc = mb_daemon_stop(&g_d, SIGTERM, 30.0);

	if (rc != 0)
		fprintf(stderr, "daemon exit status %d; log:\n%s\n", rc, mb_daemon_log(&g_d));
	return rc == 0 ? 0 : -1;
}

static const char *
path_of(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", g_dir, name);
	return buf;
}

/* @seconds of a tone of @hz, amplitude @amp on every channel, into @path as @format. */
static int
write_tone(const char *path, int format, int rate, int channels, double hz, double amp,
	   double seconds)
{
	SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
	sf_count_t n = (sf_count_t)llround(seconds * rate);
	float *buf = malloc(sizeof(float) * (size_t)n * (size_t)channels);
	SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
	sf_count_t w = -1;

	if (sf != NULL && buf != NULL) {
		for (sf_count_t i = 0; i < n; i++)
			for (int c = 0; c < channels; c++)
				buf[i * channels + c] =
					(float)(amp * sin(2 * M_PI * hz * i / rate));
		w = sf_writef_float(sf, buf, n);
	}
	if (sf != NULL)
		sf_close(sf);
	free(buf);
	return w == n ? 0 : -1;
}

/* A float32 .npy of 2 dimensions: the data (malloc'd) and its shape, or NULL. */
static float *
read_npy(const char *path, unsigned *rows, unsigned *cols)
{
	FILE *f = fopen(path, "rb");
	unsigned char head[10];
	char hdr[256];
	float *data = NULL;
	const char *shape;
	unsigned hlen;

	if (f == NULL)
		return NULL;
	if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0 ||
	    (hlen = head[8] | head[9] << 8) >= sizeof(hdr) || fread(hdr, 1, hlen, f) != hlen)
		goto out;
	hdr[hlen] = '\0';
	shape = strstr(hdr, "'shape': (");
	if (shape == NULL || sscanf(shape, "'shape': (%u, %u)", rows, cols) != 2)
		goto out;
	data = malloc(sizeof(float) * *rows * *cols + 1);
	if (data != NULL &&
	    fread(data, sizeof(float), (size_t)*rows * *cols, f) != (size_t)*rows * *cols) {
		free(data);
		data = NULL;
	}
out:
	fclose(f);
	return data;
}

/* The CLI with @args; its output in @out (printed when @show). Exit status. */
static int
cli(const char *const *args, char *out, size_t len, bool show)
{
	int rc = mb_e2e_cli(args, out, len);

	if (show)
		printf("\n    exit %d: %s", rc, out);
	return rc;
}

/* Send @file to logmel and read its [rows x 80] log-mel frames from the .npy. */
static float *
logmel_of(const char *const *source, unsigned *rows, unsigned *cols)
{
	char npy[512], out[8192];
	const char *args[16] = {"send", "--endpoint", g_d.ingest, "--npy", npy};
	int n = 5;

	path_of("mel.npy", npy, sizeof(npy));
	unlink(npy);
	for (int i = 0; source[i] != NULL; i++)
		args[n++] = source[i];
	args[n] = NULL;
	if (cli(args, out, sizeof(out), true) != 0)
		return NULL;
	return read_npy(npy, rows, cols);
}

static int
argmax(const float *row, unsigned n)
{
	int best = 0;

	for (unsigned i = 1; i < n; i++)
		if (row[i] > row[best])
			best = (int)i;
	return best;
}

/* Frames 5..rows-6 of @a and @b: how many have the same peak bin, and the largest
 * difference at the peak bin of @b. */
static void
compare_mels(const float *a, const float *b, unsigned rows, unsigned cols, unsigned *same,
	     double *max_diff)
{
	*same = 0;
	*max_diff = 0;
	for (unsigned r = 5; r + 5 < rows; r++) {
		int pa = argmax(a + r * cols, cols), pb = argmax(b + r * cols, cols);
		double d = fabs(a[r * cols + pb] - b[r * cols + pb]);

		*same += pa == pb;
		if (d > *max_diff)
			*max_diff = d;
	}
}

static void
test_wav_to_logmel(void)
{
	char wav[512], khz1[512], out[8192];
	const char *file_src[] = {"--audio", wav, NULL};
	const char *other_src[] = {"--audio", khz1, NULL};
	const char *tone_src[] = {"--tone", "440", "--seconds", "1", NULL};
	const char *args[] = {"send", "--endpoint", g_d.ingest, "--audio", wav, NULL};
	unsigned ra = 0, ca = 0, rb = 0, cb = 0, rc_ = 0, cc = 0, same, same_other;
	float *a, *b, *c;
	double diff, diff_other;

	path_of("tone44k_stereo.wav", wav, sizeof(wav));
	path_of("tone1k.wav", khz1, sizeof(khz1));
	/* amplitude 0.5 on both channels: the mono mix is --tone's 0.5 */
	CU_ASSERT_FATAL(write_tone(wav, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, 440, 0.5, 1.0) ==
			0);
	CU_ASSERT_FATAL(
		write_tone(khz1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, 1000, 0.5, 1.0) == 0);
	CU_ASSERT_EQUAL(cli(args, out, sizeof(out), true), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "44100 Hz, 2 channel(s), 1.000 s -> 16 kHz mono"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "(logmel's rate)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "F32 [100 x 80]"));

	a = logmel_of(file_src, &ra, &ca);
	b = logmel_of(tone_src, &rb, &cb);
	c = logmel_of(other_src, &rc_, &cc);
	CU_ASSERT_FATAL(a != NULL && b != NULL && c != NULL);
	CU_ASSERT(ra == 100 && ca == 80 && rb == 100 && cb == 80 && rc_ == 100 && cc == 80);
	if (ra == rb && ca == cb && ra == rc_ && ca == cc) {
		compare_mels(a, b, ra, ca, &same, &diff);
		compare_mels(c, b, ra, ca, &same_other, &diff_other);
		printf("\n    44.1 kHz file vs --tone 440: %u of %u frames peak in the same bin, "
		       "largest difference at the peak %.4f; the 1 kHz file: %u, %.4f",
		       same, ra - 10, diff, same_other, diff_other);
		CU_ASSERT_EQUAL(same, ra - 10);
		CU_ASSERT(diff < 0.05);
		CU_ASSERT_EQUAL(same_other, 0);
		CU_ASSERT(diff_other > 0.5);
	}
	free(a);
	free(b);
	free(c);
}

static void
test_flac_to_identity(void)
{
	char flac[512], npy[512], out[8192];
	const char *args[] = {"send",	  "--endpoint", g_d.ingest, "--wav", flac, "--model",
			      "identity", "--rate",	"16000",    "--npy", npy,  NULL};
	unsigned rows = 0, cols = 0;
	float *v;

	path_of("tone22k.flac", flac, sizeof(flac));
	path_of("identity.npy", npy, sizeof(npy));
	CU_ASSERT_FATAL(
		write_tone(flac, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 2, 440, 0.5, 0.75) == 0);
	CU_ASSERT_EQUAL(cli(args, out, sizeof(out), true), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "FLAC"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "22050 Hz, 2 channel(s), 0.750 s -> 16 kHz mono"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "(--rate)"));
	v = read_npy(npy, &rows, &cols);
	CU_ASSERT_FATAL(v != NULL);
	/* identity's result: the payload's byte count */
	CU_ASSERT(rows == 1 && cols == 1 && v[0] == 24000.0f);
	printf("\n    identity says the payload was %.0f bytes", v[0]);
	free(v);

	/* --f32: the same samples as 32-bit float PCM, twice the bytes */
	{
		const char *f32[] = {"send",	"--endpoint", g_d.ingest, "--wav", flac,
				     "--model", "identity",   "--rate",	  "16000", "--f32",
				     "--npy",	npy,	      NULL};

		CU_ASSERT_EQUAL(cli(f32, out, sizeof(out), true), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> 16 kHz mono 32-bit float PCM"));
		v = read_npy(npy, &rows, &cols);
		CU_ASSERT_FATAL(v != NULL);
		CU_ASSERT(rows == 1 && cols == 1 && v[0] == 48000.0f);
		free(v);
	}
}

static void
test_clap_rate(void)
{
	char wav[512], out[8192];
	const char *args[] = {"send", "--endpoint", g_d.ingest, "--audio",
			      wav,    "--model",    "clap",	NULL};

	path_of("tone44k_stereo.wav", wav, sizeof(wav));
	CU_ASSERT_EQUAL(cli(args, out, sizeof(out), true), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> 48 kHz mono 16-bit PCM (clap's rate)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "clap: OK"));
}

/* ---- a stand-in for the daemon's /v2/models/NAME ---- */

struct fake_http {
	int fd, port;
	_Atomic(const char *) body; /* answered to every request, 200 (the test changes it) */
	pthread_t thread;
	atomic_int stop;
};

static void *
fake_main(void *arg)
{
	struct fake_http *h = arg;

	while (!atomic_load(&h->stop)) {
		char req[2048], resp[4096];
		int c = accept(h->fd, NULL, NULL), n;
		const char *body = atomic_load(&h->body);

		if (c < 0)
			continue;
		if (read(c, req, sizeof(req)) > 0) {
			n = snprintf(resp, sizeof(resp),
				     "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: %zu\r\n\r\n%s",
				     strlen(body), body);
			if (write(c, resp, (size_t)n) != n)
				fprintf(stderr, "fake http: short write\n");
		}
		close(c);
	}
	return NULL;
}

static int
fake_start(struct fake_http *h, const char *body)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	struct timeval tv = {.tv_usec = 200000};

	memset(h, 0, sizeof(*h));
	atomic_store(&h->body, body);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(h->fd, 4) != 0 || getsockname(h->fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept() wakes up */
	h->port = ntohs(a.sin_port);
	return pthread_create(&h->thread, NULL, fake_main, h);
}

static void
fake_stop(struct fake_http *h)
{
	atomic_store(&h->stop, 1);
	pthread_join(h->thread, NULL);
	close(h->fd);
}

static void
test_rate_from_metadata(void)
{
	static const char with_rate[] =
		"{\"name\": \"fakeaudio\", \"ready\": true, \"inputs\": [{\"name\": \"media\", "
		"\"media\": [\"pcm_s16le\"], \"sample_rate\": 22050}], "
		"\"limits\": {\"max_payload_bytes\": 30000}}";
	static const char without[] = "{\"name\": \"fakeaudio\", \"ready\": true, \"inputs\": "
				      "[{\"name\": \"media\", \"media\": [\"f32\"]}]}";
	char wav[512], flac[512], ep[64], out[8192];
	const char *send[] = {"send",	 "--endpoint", g_d.ingest,	     "--audio", flac,
			      "--model", "fakeaudio",  "--metrics-endpoint", ep,	NULL};
	const char *at_8k[] = {"send",	  "--endpoint", g_d.ingest,	      "--audio", wav,
			       "--model", "fakeaudio",	"--metrics-endpoint", ep,	 NULL};
	const char *not_served[] = {"send",    "--endpoint", g_d.ingest,	   "--audio", wav,
				    "--model", "nosuch",     "--metrics-endpoint", g_http,    NULL};
	const char *with_flag[] = {"send",    "--endpoint", g_d.ingest, "--audio", wav,
				   "--model", "nosuch",	    "--rate",	"16000",   NULL};
	struct fake_http h;

	path_of("tone44k_stereo.wav", wav, sizeof(wav));
	path_of("tone22k.flac", flac, sizeof(flac));
	CU_ASSERT_FATAL(fake_start(&h, with_rate) == 0);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", h.port);
	/* 0.75 s at 22050 Hz: 33076 bytes, over the stand-in's 30000 */
	CU_ASSERT_EQUAL(cli(send, out, sizeof(out), true), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> 22.05 kHz mono"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "fakeaudio's rate, from http://"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "over the limit of 30000 bytes"));
	atomic_store(&h.body, "{\"name\": \"fakeaudio\", \"inputs\": [{\"sample_rate\": 8000}]}");
	/* 1 s at 8 kHz: 16000 bytes; sent, and the daemon knows no such model */
	CU_ASSERT_EQUAL(cli(at_8k, out, sizeof(out), true), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> 8 kHz mono"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "UNKNOWN_MODEL"));
	atomic_store(&h.body, without);
	CU_ASSERT_EQUAL(cli(send, out, sizeof(out), true), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "gives no sample rate (media: f32)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--rate R"));
	fake_stop(&h);

	/* the real daemon does not serve it: 404, pass --rate */
	CU_ASSERT_EQUAL(cli(not_served, out, sizeof(out), true), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "answered 404"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--rate R"));
	/* with --rate nothing is asked: sent, and refused by the daemon */
	CU_ASSERT_EQUAL(cli(with_flag, out, sizeof(out), true), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "UNKNOWN_MODEL"));
}

static void
test_refusals(void)
{
	char missing[512], empty[512], text[512], out[8192];
	const char *a[] = {"send", "--endpoint", g_d.ingest, "--audio", missing, NULL};
	const char *b[] = {"send", "--endpoint", g_d.ingest, "--audio", empty, NULL};
	const char *c[] = {"send", "--endpoint", g_d.ingest, "--wav", text, NULL};
	const char *both[] = {"send", "--audio", text, "--tone", "440", NULL};
	FILE *f;

	path_of("missing.wav", missing, sizeof(missing));
	path_of("empty.wav", empty, sizeof(empty));
	path_of("notes.txt", text, sizeof(text));
	f = fopen(empty, "w");
	CU_ASSERT_FATAL(f != NULL);
	fclose(f);
	f = fopen(text, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("not audio at all\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(cli(a, out, sizeof(out), true), 2);
	CU_ASSERT(strstr(out, missing) != NULL && strstr(out, "No such file") != NULL);
	CU_ASSERT_EQUAL(cli(b, out, sizeof(out), true), 2);
	CU_ASSERT(strstr(out, empty) != NULL && strstr(out, "empty file") != NULL);
	CU_ASSERT_EQUAL(cli(c, out, sizeof(out), true), 2);
	CU_ASSERT(strstr(out, text) != NULL && strstr(out, "not an audio file") != NULL);
	CU_ASSERT_EQUAL(cli(both, out, sizeof(out), true), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "exactly one of --audio"));
}

static const struct mb_test_case cases[] = {
	{"44.1 kHz stereo WAV to logmel: resampled to 16 kHz, the tone's log-mel",
	 test_wav_to_logmel},
	{"22.05 kHz FLAC via --wav to identity at --rate 16000: 24000 bytes",
	 test_flac_to_identity},
	{"clap without --rate: 48 kHz", test_clap_rate},
	{"another model: the rate and the payload limit from its metadata; 404; --rate",
	 test_rate_from_metadata},
	{"refused before sending: missing, empty, not audio, two sources", test_refusals},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"mediabatch send --audio", suite_init, suite_cleanup,
					   cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("audio_test", suites);
}
