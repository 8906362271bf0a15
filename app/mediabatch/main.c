/*
 * mediabatch: the command-line client.
 *
 *   mediabatch send      send media (an audio file, generated audio, raw video, a tensor) to
 *                        a model and print each response; optionally save the tensor as .npy
 *   mediabatch subscribe print published results (all, or one tenant's, or one model's)
 *   mediabatch models    list the models served, or one model's metadata, from the daemon's
 *                        HTTP endpoint (/v2/models; http or https, through libcurl)
 *
 * Top-k results (videomae's) print their classes and scores, with the class names of a
 * checkpoint's config.json (its id2label) when --labels names it or its directory.
 *
 * Audio files (--audio, or --wav) are whatever libsndfile reads, mixed down to mono and
 * resampled by libsoxr to the model's rate (app/common/mb_audio.h): --rate, else the rates of
 * the built-in models, else the rate the daemon's model metadata gives (/v2/models/NAME).
 * The daemon's HTTP endpoint is reached with net/mb_http_client.h: --metrics-endpoint
 * (HOST:PORT, http:// or https://), --metrics-token-file and --metrics-cacert.
 *
 * Built on the client library (include/mediabatch/client.h). Exit status: 0 when every
 * response was OK, 1 when some was not, 3 when a response did not come in time, 2 for
 * usage errors and unreadable input.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mb_audio.h"
#include "mb_build_config.h"
#include "mb_http_client.h"
#include "mediabatch/client.h"

#define EXIT_NOT_OK 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3

static volatile sig_atomic_t g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: mediabatch send [options] SOURCE\n"
		"       mediabatch subscribe [options]\n"
		"       mediabatch keygen [--name NAME] BASE\n"
		"       mediabatch models [--metrics-endpoint EP] [--metrics-token-file FILE]\n"
		"                         [--metrics-cacert FILE] [NAME]\n"
		"\n"
		"send: SOURCE is one of\n"
		"  --audio FILE             an audio file libsndfile reads (WAV of any PCM or\n"
		"                           float width, FLAC, Ogg/Vorbis, Opus, AIFF, ...),\n"
		"                           mixed down to mono, resampled (libsoxr, high quality)\n"
		"                           to the model's rate and sent as 16-bit PCM. The rate:\n"
		"                           --rate R; else logmel, whisper and identity 16000,\n"
		"                           clap 48000; else the rate the daemon gives for the\n"
		"                           model at --metrics-endpoint (/v2/models/NAME).\n"
		"                           At most 256 MiB of PCM (or the daemon's\n"
		"                           max_payload_bytes when asked) and 2^27 samples\n"
		"                           per channel in the file\n"
		"  --wav FILE               the same as --audio FILE\n"
		"  --tone HZ | --noise      generated audio, --seconds S long (default 1) at\n"
		"                           --rate R Hz (default 16000), 16-bit PCM\n"
		"  --f32                    send the audio as 32-bit float PCM (PCM_F32LE)\n"
		"                           instead of 16-bit: the samples as read and\n"
		"                           resampled, unrounded (to compare answers with\n"
		"                           another implementation's); twice the bytes\n"
		"  --video FILE             raw RGB24 frames; give --frames F --height H --width "
		"W\n"
		"  --video-test             generated RGB24 frames (default 16 x 224 x 224)\n"
		"  --tensor ROWSxCOLS       a generated F32 tensor\n"
		"options:\n"
		"  --endpoint EP            service ROUTER (default tcp://127.0.0.1:7400); a "
		"fleet:\n"
		"                           several, comma-separated, spread with credit windows\n"
		"                           and failover (docs/operating.md, \"Running a fleet\")\n"
		"  --fleet                  EP is a fleet even if one: a name whose every address\n"
		"                           is a daemon, re-resolved every 5 s (also subscribe)\n"
		"  --model NAME             model to run (default logmel)\n"
		"  --rate R                 sample rate of the audio sent, 1..1000000 Hz\n"
		"  --metrics-endpoint EP    the daemon's HTTP endpoint, asked for the sample\n"
		"                           rate of a model that is not built in (--audio\n"
		"                           without --rate): HOST:PORT, http://HOST:PORT,\n"
		"                           https://HOST:PORT or [IPV6]:PORT (default\n"
		"                           127.0.0.1:7402)\n"
		"  --metrics-token-file FILE  the bearer token of that endpoint (the daemon's\n"
		"                           http.token_file; also for models)\n"
		"  --metrics-cacert FILE    https: trust the CA certificate(s) in FILE (PEM; for\n"
		"                           a self-signed http.tls_cert, that certificate)\n"
		"                           instead of the system's (also for models)\n"
		"  --tenant T               tenant id (default 0)\n"
		"  --id N                   first request id (default 1; then N+1, ...)\n"
		"  --timeout-ms MS          deadline (default 0: the model's default)\n"
		"  --priority               use the high-priority lane\n"
		"  --count N                send N requests (default 1)\n"
		"  --concurrency K          keep K outstanding (default 1)\n"
		"  --npy FILE               save the first OK tensor as a NumPy .npy file\n"
		"  --cancel-after-ms MS     cancel each request MS after sending it\n"
		"  --client-id NAME         a fixed ZeroMQ routing id instead of one ZeroMQ "
		"picks\n"
		"  --wait-ms MS             how long to wait for each response (default 30000)\n"
		"  --quiet                  print only the summary\n"
		"  --labels PATH            name top-k classes by the id2label of PATH, a\n"
		"                           config.json or a checkpoint directory holding one\n"
		"                           (also for subscribe)\n"
		"  --udp IPV4:PORT          send as UDP datagrams to the service's DPDK port\n"
		"                           instead of ZeroMQ; results are read from --publish\n"
		"  --publish EP             service PUB for --udp results (default\n"
		"                           tcp://127.0.0.1:7401)\n"
		"  --datagram BYTES         --udp datagram size, header included (default 1472)\n"
		"  --settle-ms MS           --udp: wait after subscribing (default 300)\n"
		"  --server-key FILE        the service requires CURVE: its public certificate\n"
		"                           (also for subscribe)\n"
		"  --key FILE               ... and this client's secret certificate "
		"(NAME.key_secret)\n"
		"\n"
		"subscribe: --endpoint EP (default tcp://127.0.0.1:7401), --tenant T, --model "
		"NAME\n"
		"  (needs --tenant), --count N (stop after N), --timeout-s S (stop after S s of\n"
		"  silence). Prints one line per published result until stopped (Ctrl-C).\n"
		"\n"
		"keygen: write a new CURVE key pair as BASE.key (public: give it to the other "
		"side)\n"
		"  and BASE.key_secret (keep it: mode 0600), NAME in their metadata. Never\n"
		"  overwrites. For the service (security.server_key) and for each client.\n"
		"\n"
		"models: from the daemon's HTTP endpoint (--metrics-endpoint, default\n"
		"  127.0.0.1:7402; https://HOST:PORT when it has http.tls_cert, with\n"
		"  --metrics-cacert for a certificate the system does not trust), one line per\n"
		"  model served (ready or why not, batching, media, output); with NAME, that\n"
		"  model's metadata (JSON, as /v2/models/NAME answers it). Exit 1 when a model\n"
		"  is not ready or not served or the endpoint does not answer.\n"
		"\n"
		"Exit status: 0 all responses OK, 1 some not OK, 3 a response did not come in "
		"time,\n"
		"2 usage or input error.\n");
}

/* --server-key and --key (see load_curve()): every connection of this run uses them */
static struct mb_client_curve g_curve;
/* --fleet: the endpoint is a fleet even if one item (a name whose addresses are daemons) */
static bool g_fleet;

/* ---- media ---- */

struct media {
	struct mb_request_hdr hdr; /* model, tenant, id filled per request */
	uint8_t *bytes;
	uint32_t len;
};

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;

	if (f == NULL) {
		fprintf(stderr, "mediabatch: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1L << 30) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL &&
	    fread(buf, 1, (size_t)size, f) == (size_t)size) {
		*len = (size_t)size;
		fclose(f);
		return buf;
	}
	fprintf(stderr, "mediabatch: %s: cannot read it (or larger than 1 GiB)\n", path);
	free(buf);
	fclose(f);
	return NULL;
}

/* @p v as a little-endian F32 at @p out */
static void
put_f32(uint8_t *out, float v)
{
	uint32_t u;

	memcpy(&u, &v, 4);
	for (int k = 0; k < 4; k++)
		out[k] = (uint8_t)(u >> (8 * k));
}

static int
make_audio(struct media *m, double tone_hz, double seconds, uint32_t rate, bool f32)
{
	const uint64_t width = f32 ? 4 : 2;
	uint64_t n = (uint64_t)llround(seconds * rate), seed = 0x2545F4914F6CDD1Dull;

	if (seconds <= 0 || n == 0 || n * width > (1u << 30)) {
		fprintf(stderr, "mediabatch: --seconds %g at %u Hz is out of range\n", seconds,
			rate);
		return -1;
	}
	m->len = (uint32_t)(n * width);
	m->bytes = malloc(m->len);
	for (uint64_t i = 0; i < n; i++) {
		double v;
		int16_t s;

		if (tone_hz > 0) {
			v = 0.5 * sin(2 * M_PI * tone_hz * (double)i / rate);
		} else {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			v = 0.3 * ((double)(seed % 20001) / 10000.0 - 1.0);
		}
		if (f32) {
			put_f32(m->bytes + 4 * i, (float)v);
			continue;
		}
		s = (int16_t)lrint(v * 32767);
		m->bytes[2 * i] = (uint8_t)s;
		m->bytes[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
	}
	mb_client_audio_hdr(&m->hdr, "", 0, 0, f32 ? MB_MEDIA_PCM_F32LE : MB_MEDIA_PCM_S16LE, rate,
			    m->len);
	return 0;
}

static int
make_video(struct media *m, const char *path, long frames, long height, long width)
{
	uint64_t expect;

	if (frames < 1 || frames > 65535 || height < 1 || height > 65535 || width < 1 ||
	    width > 65535) {
		fprintf(stderr, "mediabatch: --frames, --height and --width must be 1..65535\n");
		return -1;
	}
	expect = (uint64_t)frames * height * width * 3;
	if (path != NULL) {
		size_t len;

		m->bytes = read_file(path, &len);
		if (m->bytes == NULL)
			return -1;
		if (len != expect) {
			fprintf(stderr,
				"mediabatch: %s: %zu bytes, but %ld frames of %ldx%ld RGB24 are "
				"%" PRIu64 "\n",
				path, len, frames, height, width, expect);
			return -1;
		}
	} else {
		if (expect > (1u << 30))
			return -1;
		m->bytes = malloc(expect);
		for (uint64_t i = 0; i < expect; i++)
			m->bytes[i] = (uint8_t)(i * 7 + i / 3);
	}
	m->len = (uint32_t)expect;
	mb_client_video_hdr(&m->hdr, "", 0, 0, (uint16_t)frames, (uint16_t)height, (uint16_t)width);
	return 0;
}

static int
make_tensor(struct media *m, const char *spec)
{
	unsigned long rows, cols;
	char x;

	if (sscanf(spec, "%lu%c%lu", &rows, &x, &cols) != 3 || x != 'x' || rows < 1 ||
	    rows > 65535 || cols < 1 || cols > 65535) {
		fprintf(stderr, "mediabatch: --tensor '%s': give ROWSxCOLS, each 1..65535\n", spec);
		return -1;
	}
	m->len = (uint32_t)(rows * cols * 4);
	m->bytes = malloc(m->len);
	for (unsigned long i = 0; i < rows * cols; i++) {
		float f = (float)i / 10.0f;

		memcpy(m->bytes + 4 * i, &f, 4);
	}
	mb_client_tensor_hdr(&m->hdr, "", 0, 0, (uint16_t)rows, (uint16_t)cols);
	return 0;
}

/* ---- class labels (--labels) ---- */

/* config.json's id2label: names[id], NULL where it has none */
static char **g_labels;
static uint32_t g_n_labels;

/*
 * Read id2label from @p path: a config.json, or a directory holding one. 0, or -1 after
 * saying what is wrong.
 */
static int
load_labels(const char *path)
{
	char file[4096];
	struct stat st;
	json_error_t jerr;
	json_t *cfg, *map, *v;
	const char *key;
	uint32_t max = 0;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(file, sizeof(file), "%s/config.json", path);
	else
		snprintf(file, sizeof(file), "%s", path);
	cfg = json_load_file(file, 0, &jerr);
	if (cfg == NULL) {
		if (access(file, R_OK) != 0)
			fprintf(stderr, "mediabatch: --labels %s: %s: %s\n", path, file,
				strerror(errno));
		else
			fprintf(stderr, "mediabatch: --labels %s: %s: not JSON: %s (line %d)\n",
				path, file, jerr.text, jerr.line);
		return -1;
	}
	map = json_is_object(cfg) ? json_object_get(cfg, "id2label") : NULL;
	if (!json_is_object(map) || json_object_size(map) == 0) {
		fprintf(stderr,
			"mediabatch: --labels %s: %s has no id2label object (class id -> name)\n",
			path, file);
		json_decref(cfg);
		return -1;
	}
	json_object_foreach(map, key, v)
	{
		char *end;
		unsigned long id = strtoul(key, &end, 10);

		if (*end != '\0' || end == key || id >= 1000000 || !json_is_string(v)) {
			fprintf(stderr,
				"mediabatch: --labels %s: %s: id2label entry \"%s\" is not a class "
				"id (0..999999) with a string name\n",
				path, file, key);
			json_decref(cfg);
			return -1;
		}
		if (id + 1 > max)
			max = (uint32_t)id + 1;
	}
	g_labels = calloc(max, sizeof(*g_labels));
	if (g_labels == NULL) {
		json_decref(cfg);
		return -1;
	}
	g_n_labels = max;
	json_object_foreach(map, key, v)
	{
		g_labels[strtoul(key, NULL, 10)] = strdup(json_string_value(v));
	}
	json_decref(cfg);
	return 0;
}

static void
free_labels(void)
{
	for (uint32_t i = 0; i < g_n_labels; i++)
		free(g_labels[i]);
	free(g_labels);
	g_labels = NULL;
	g_n_labels = 0;
}

/* ---- output ---- */

static int
write_npy(const char *path, const struct mb_client_response *r)
{
	char hdr[128];
	int n;
	FILE *f;

	if (r->hdr.result_type != MB_RESULT_F32) {
		fprintf(stderr, "mediabatch: --npy: the result is not an F32 tensor\n");
		return -1;
	}
	n = snprintf(hdr, sizeof(hdr),
		     "{'descr': '<f4', 'fortran_order': False, 'shape': (%u, %u), }", r->hdr.rows,
		     r->hdr.cols);
	/* magic (6) + version (2) + length (2) + header, padded with spaces to 64, ending '\n' */
	while ((10 + n + 1) % 64 != 0)
		hdr[n++] = ' ';
	hdr[n++] = '\n';
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "mediabatch: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(n & 0xff, f);
	fputc(n >> 8, f);
	fwrite(hdr, 1, (size_t)n, f);
	fwrite(r->data, 1, r->len, f);
	if (fclose(f) != 0) {
		fprintf(stderr, "mediabatch: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
print_response(const char *prefix, const struct mb_client_response *r)
{
	const struct mb_response_hdr *h = &r->hdr;

	if (h->status != MB_STATUS_OK) {
		printf("%sid %" PRIu64 " tenant %u %s: %s%s: %s\n", prefix, h->request_id,
		       h->tenant_id, h->model, mb_status_name(h->status),
		       (h->flags & MB_RESP_FLAG_DUPLICATE) ? " (DUPLICATE)" : "",
		       (const char *)r->data);
		return;
	}
	printf("%sid %" PRIu64 " tenant %u %s: OK  queue %.3f ms  compute %.3f ms  batch %u  "
	       "device %u  ",
	       prefix, h->request_id, h->tenant_id, h->model, h->queue_us / 1000.0,
	       h->compute_us / 1000.0, h->batch_size, h->device);
	if (h->result_type == MB_RESULT_F32)
		printf("F32 [%u x %u]", h->rows, h->cols);
	else if (h->result_type == MB_RESULT_TOPK)
		printf("top-%u", h->rows);
	else if (h->result_type == MB_RESULT_TEXT)
		printf("text");
	printf(" %u bytes\n", h->result_len);
	if (h->result_type != MB_RESULT_TOPK || h->cols != 2)
		return;
	/* (u32 class, f32 score) pairs: "class 123 (label) 0.8123" */
	for (uint32_t k = 0; k < h->rows && 8 * (k + 1) <= r->len; k++) {
		const uint8_t *p = (const uint8_t *)r->data + 8 * k;
		uint32_t cls = rd32(p), bits = rd32(p + 4);
		float score;

		memcpy(&score, &bits, 4);
		if (cls < g_n_labels && g_labels[cls] != NULL)
			printf("%s  class %u (%s) %.4f\n", prefix, cls, g_labels[cls], score);
		else
			printf("%s  class %u %.4f\n", prefix, cls, score);
	}
}

/* ---- send ---- */

struct send_opts {
	const char *endpoint, *model, *npy, *client_id;
	const char *udp, *publish; /* --udp: send as datagrams, results from PUB */
	long datagram, settle_ms;
	uint32_t tenant, timeout_ms;
	uint64_t first_id;
	long count, concurrency, cancel_after_ms, wait_ms;
	bool priority, quiet;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A fleet's spread, on stderr with the summary: each daemon's answers, what was moved. */
static void
print_fleet(const struct mb_client *c)
{
	struct mb_client_daemon d[16];
	struct mb_client_fleet_stats st;
	int n = mb_client_fleet_stats(c, &st, d, 16);

	if (n <= 0)
		return;
	fprintf(stderr,
		"mediabatch: fleet of %d daemon(s); resent %llu, duplicates dropped %llu, "
		"client timeouts %llu, malformed answers %llu\n",
		n, (unsigned long long)st.resent, (unsigned long long)st.duplicates_dropped,
		(unsigned long long)st.client_timeouts, (unsigned long long)st.malformed);
	for (int i = 0; i < n && i < 16; i++) {
		static const char *const why[] = {
			"",
			" (handshake refused: the service does not accept this client's key)",
			" (handshake refused: one side uses CURVE and the other does not)",
			" (handshake failed)",
		};

		fprintf(stderr, "  %s: %s%s, answered %llu, failed over %llu\n", d[i].endpoint,
			d[i].up ? "up" : "down", d[i].refused < 4 ? why[d[i].refused] : "",
			(unsigned long long)d[i].answered, (unsigned long long)d[i].failed_over);
	}
}

static int
cmd_send(struct send_opts *o, struct media *m)
{
	struct mb_client_opts co = {.endpoint = o->endpoint,
				    .client_id = o->client_id,
				    .curve = g_curve,
				    .fleet = g_fleet};
	struct mb_client *c = NULL;
	char err[256];
	double *sent_at = calloc((size_t)o->count, sizeof(double));
	double *lat = calloc((size_t)o->count, sizeof(double));
	bool *cancelled = calloc((size_t)o->count, sizeof(bool));
	long next = 0, received = 0, outstanding = 0, by_status[MB_STATUS_COUNT] = {0};
	bool npy_done = false, timed_out = false;
	double t0 = now_s(), last_progress = t0;
	int rc, exit_code = 0;

	if (sent_at == NULL || lat == NULL || cancelled == NULL) {
		fprintf(stderr, "mediabatch: out of memory for %ld requests\n", o->count);
		exit_code = EXIT_USAGE;
		goto out;
	}
	if (mb_client_connect(&co, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		exit_code = EXIT_USAGE;
		goto out;
	}
	snprintf(m->hdr.model, sizeof(m->hdr.model), "%s", o->model);
	m->hdr.tenant_id = o->tenant;
	m->hdr.timeout_ms = o->timeout_ms;
	m->hdr.flags = o->priority ? MB_FLAG_PRIORITY : 0;
	while (received < o->count && !g_stop) {
		struct mb_client_response r;
		double now;
		int wait;

		while (next < o->count && outstanding < o->concurrency) {
			m->hdr.request_id = o->first_id + (uint64_t)next;
			rc = mb_client_send(c, &m->hdr, m->bytes, m->len);
			if (rc == -EAGAIN)
				break;
			if (rc < 0) {
				fprintf(stderr, "mediabatch: send: %s\n", strerror(-rc));
				exit_code = EXIT_USAGE;
				goto out;
			}
			sent_at[next++] = now_s();
			outstanding++;
		}
		now = now_s();
		wait = 100;
		if (o->cancel_after_ms >= 0) {
			for (long i = 0; i < next; i++) {
				if (cancelled[i] || lat[i] > 0)
					continue;
				if ((now - sent_at[i]) * 1000 >= (double)o->cancel_after_ms) {
					mb_client_cancel(c, o->tenant, o->first_id + (uint64_t)i);
					cancelled[i] = true;
				} else {
					wait = 1;
				}
			}
		}
		rc = mb_client_recv(c, &r, wait);
		if (rc == -EACCES) {
			fprintf(stderr,
				"mediabatch: %s refused this client's CURVE handshake: its key "
				"(--key) is not on the service's allow-list, or --server-key is "
				"not the service's key, or the service does not use CURVE\n",
				o->endpoint);
			exit_code = EXIT_USAGE;
			goto out;
		}
		if (rc == -ETIMEDOUT) {
			long late = 0, first = -1;

			for (long i = 0; i < next; i++)
				if (lat[i] == 0 &&
				    (now_s() - sent_at[i]) * 1000 > (double)o->wait_ms) {
					late++;
					if (first < 0)
						first = i;
				}
			if (late != 0) {
				fprintf(stderr,
					"mediabatch: %ld request(s) got no response within %ld ms "
					"(the "
					"first: id %" PRIu64 "); is the service running at %s%s?\n",
					late, o->wait_ms, o->first_id + (uint64_t)first,
					o->endpoint,
					g_curve.server_key == NULL
						? ", and without CURVE (a service that "
						  "requires it needs --server-key and "
						  "--key)"
						: "");
				timed_out = true;
				break;
			}
			continue;
		}
		if (rc < 0) {
			fprintf(stderr, "mediabatch: malformed response skipped\n");
			continue;
		}
		if (!(r.hdr.flags & MB_RESP_FLAG_DUPLICATE) && /* not the earlier request's */
		    r.hdr.request_id >= o->first_id &&
		    r.hdr.request_id - o->first_id < (uint64_t)next) {
			long i = (long)(r.hdr.request_id - o->first_id);

			if (lat[i] == 0) {
				lat[i] = now_s() - sent_at[i];
				received++;
				outstanding--;
			}
		}
		if (r.hdr.status < MB_STATUS_COUNT)
			by_status[r.hdr.status]++;
		if (!o->quiet)
			print_response("", &r);
		if (o->npy != NULL && !npy_done && r.hdr.status == MB_STATUS_OK) {
			if (write_npy(o->npy, &r) == 0 && !o->quiet)
				printf("wrote %s: float32 [%u x %u]\n", o->npy, r.hdr.rows,
				       r.hdr.cols);
			npy_done = true;
		}
		mb_client_response_free(&r);
		if (o->count > 1 && now_s() - last_progress >= 2.0) {
			last_progress = now_s();
			fprintf(stderr, "mediabatch: %ld of %ld answered, %.0f req/s\n", received,
				o->count, received / (last_progress - t0));
		}
	}
	if (o->count > 1 || o->quiet) {
		double elapsed = now_s() - t0,
		       *sorted = malloc(sizeof(double) * (size_t)(received + 1));
		long k = 0;

		for (long i = 0; sorted != NULL && i < o->count; i++) /* none: no percentiles */
			if (lat[i] > 0)
				sorted[k++] = lat[i];
		if (k > 1)
			qsort(sorted, (size_t)k, sizeof(double), cmp_double);
		printf("%ld sent, %ld answered in %.2f s (%.0f req/s)", next, received, elapsed,
		       received / elapsed);
		if (k > 0)
			printf("; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			       sorted[k / 2] * 1000, sorted[(k * 99) / 100] * 1000,
			       sorted[k - 1] * 1000);
		printf("\nstatus:");
		for (int s = 0; s < MB_STATUS_COUNT; s++)
			if (by_status[s] != 0)
				printf(" %s=%ld", mb_status_name((unsigned)s), by_status[s]);
		printf("\n");
		free(sorted);
	}
	print_fleet(c);
out:
	mb_client_close(&c);
	free(sent_at);
	free(lat);
	free(cancelled);
	if (exit_code != 0)
		return exit_code;
	if (timed_out || received < o->count)
		return EXIT_TIMEOUT;
	return by_status[MB_STATUS_OK] == o->count ? 0 : EXIT_NOT_OK;
}

/*
 * send --udp: requests go out as datagrams (fragmented as docs/protocol.md says); their
 * results come back on the PUB socket only, so subscribe to "<tenant>/<model>" first and
 * give the subscription --settle-ms to reach the service (ZeroMQ has no handshake for it).
 */
static int
cmd_send_udp(struct send_opts *o, struct media *m)
{
	struct mb_udp_sender_opts uo = {.address = o->udp, .max_datagram = (uint32_t)o->datagram};
	struct mb_udp_sender *tx = NULL;
	struct mb_subscriber *rx = NULL;
	char err[256], prefix[64];
	bool *done = calloc((size_t)o->count, sizeof(bool));
	double *sent_at = calloc((size_t)o->count, sizeof(double));
	long next = 0, received = 0, by_status[MB_STATUS_COUNT] = {0}, datagrams = 0;
	double t0, last_answer;
	int rc, exit_code = 0;

	if (done == NULL || sent_at == NULL) {
		fprintf(stderr, "mediabatch: out of memory for %ld requests\n", o->count);
		free(done);
		free(sent_at);
		return EXIT_USAGE;
	}
	snprintf(prefix, sizeof(prefix), "%u/%s", o->tenant, o->model);
	if (mb_subscriber_connect_curve(o->publish, prefix, &g_curve, &rx, err, sizeof(err)) < 0 ||
	    mb_udp_sender_open(&uo, &tx, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		mb_subscriber_close(&rx);
		free(done);
		free(sent_at);
		return EXIT_USAGE;
	}
	usleep((useconds_t)o->settle_ms * 1000);
	snprintf(m->hdr.model, sizeof(m->hdr.model), "%s", o->model);
	m->hdr.tenant_id = o->tenant;
	m->hdr.timeout_ms = o->timeout_ms;
	m->hdr.flags = o->priority ? MB_FLAG_PRIORITY : 0;
	t0 = last_answer = now_s();
	while (received < o->count && !g_stop) {
		struct mb_client_response r;
		char topic[64];

		while (next < o->count && next - received < o->concurrency) {
			m->hdr.request_id = o->first_id + (uint64_t)next;
			rc = mb_udp_sender_send(tx, &m->hdr, m->bytes, m->len);
			if (rc < 0) {
				fprintf(stderr, "mediabatch: UDP send to %s: %s\n", o->udp,
					strerror(-rc));
				exit_code = EXIT_USAGE;
				goto out;
			}
			datagrams += rc;
			sent_at[next++] = now_s();
		}
		rc = mb_subscriber_recv(rx, topic, sizeof(topic), &r, 100);
		if (rc == -ETIMEDOUT) {
			if ((now_s() - last_answer) * 1000 > (double)o->wait_ms) {
				fprintf(stderr,
					"mediabatch: %ld request(s) got no result on %s within %ld "
					"ms; is the service's UDP port at %s, and its PUB at %s?\n",
					next - received, o->publish, o->wait_ms, o->udp,
					o->publish);
				exit_code = EXIT_TIMEOUT;
				goto out;
			}
			continue;
		}
		if (rc < 0)
			continue;
		if (r.hdr.request_id >= o->first_id &&
		    r.hdr.request_id - o->first_id < (uint64_t)next &&
		    !done[r.hdr.request_id - o->first_id]) {
			done[r.hdr.request_id - o->first_id] = true;
			received++;
			last_answer = now_s();
			if (r.hdr.status < MB_STATUS_COUNT)
				by_status[r.hdr.status]++;
			if (!o->quiet)
				print_response("", &r);
			if (o->npy != NULL && r.hdr.status == MB_STATUS_OK &&
			    write_npy(o->npy, &r) == 0 && !o->quiet)
				printf("wrote %s: float32 [%u x %u]\n", o->npy, r.hdr.rows,
				       r.hdr.cols);
		}
		mb_client_response_free(&r);
	}
out:
	if (o->count > 1 || o->quiet) {
		double elapsed = now_s() - t0;

		printf("%ld sent over UDP (%ld datagrams), %ld answered in %.2f s (%.0f req/s)\n"
		       "status:",
		       next, datagrams, received, elapsed, received / elapsed);
		for (int st = 0; st < MB_STATUS_COUNT; st++)
			if (by_status[st] != 0)
				printf(" %s=%ld", mb_status_name((unsigned)st), by_status[st]);
		printf("\n");
	}
	mb_udp_sender_close(&tx);
	mb_subscriber_close(&rx);
	free(done);
	free(sent_at);
	if (exit_code != 0)
		return exit_code;
	if (received < o->count)
		return EXIT_TIMEOUT;
	return by_status[MB_STATUS_OK] == o->count ? 0 : EXIT_NOT_OK;
}

/* ---- CURVE ---- */

static struct mb_curve_keys g_server, g_own;

static int
load_curve(const char *server_file, const char *own_file)
{
	char err[512];
	bool has_secret;

	if (server_file == NULL && own_file == NULL)
		return 0;
	if (server_file == NULL || own_file == NULL) {
		fprintf(stderr, "mediabatch: CURVE needs both --server-key (the service's public "
				"certificate) and --key (this client's secret certificate)\n");
		return -1;
	}
	if (mb_curve_cert_load(server_file, &g_server, NULL, err, sizeof(err)) < 0 ||
	    mb_curve_cert_load(own_file, &g_own, &has_secret, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		return -1;
	}
	if (!has_secret) {
		fprintf(stderr,
			"mediabatch: --key %s holds no secret key: give the NAME.key_secret file "
			"'mediabatch keygen' wrote\n",
			own_file);
		return -1;
	}
	if (g_server.secret_key[0] != '\0') {
		fprintf(stderr,
			"mediabatch: --server-key %s holds the service's secret key: give its "
			"public certificate (NAME.key, not NAME.key_secret); the secret stays on "
			"the service\n",
			server_file);
		return -1;
	}
	g_curve.server_key = g_server.public_key;
	g_curve.public_key = g_own.public_key;
	g_curve.secret_key = g_own.secret_key;
	return 0;
}

static int
cmd_keygen(int argc, char **argv)
{
	const char *name = NULL, *base = NULL;
	struct mb_curve_keys k;
	char err[512];

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (argv[i][0] != '-' && base == NULL)
			base = argv[i];
		else {
			fprintf(stderr,
				"mediabatch: keygen: unexpected '%s' (usage: mediabatch "
				"keygen [--name NAME] BASE)\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (base == NULL) {
		fprintf(stderr, "mediabatch: keygen needs BASE (writes BASE.key and "
				"BASE.key_secret)\n");
		return EXIT_USAGE;
	}
	if (mb_curve_keygen(base,
			    name		 ? name
			    : strrchr(base, '/') ? strrchr(base, '/') + 1
						 : base,
			    &k, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: keygen: %s\n", err);
		return EXIT_USAGE;
	}
	memset(k.secret_key, 0, sizeof(k.secret_key));
	printf("wrote %s.key (public key %s) and %s.key_secret (mode 0600)\n", base, k.public_key,
	       base);
	return 0;
}

/* ---- models ---- */

#define MODELS_DEFAULT_ENDPOINT "127.0.0.1:7402"

/* GET @p path as JSON: the status (and *@p out), or -1 after saying why. */
static int
get_json(struct mb_http_client *c, const char *path, json_t **out)
{
	char err[1024], *body;
	json_error_t je;
	int status = mb_http_client_get(c, path, &body, NULL, err, sizeof(err));

	*out = NULL;
	if (status < 0) {
		fprintf(stderr, "mediabatch: models: %s\n", err);
		return -1;
	}
	*out = json_loads(body, 0, &je);
	if (*out == NULL) {
		fprintf(stderr,
			"mediabatch: models: %s%s answered %d, not JSON (%s): is it mediabatchd?\n",
			mb_http_client_url(c), path, status, je.text);
		status = -1;
	}
	free(body);
	return status;
}

static long long
jint(json_t *o, const char *path1, const char *key)
{
	json_t *v = path1 != NULL ? json_object_get(json_object_get(o, path1), key)
				  : json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* One line of a model's key facts from its metadata @p m. */
static void
print_model_line(const char *name, json_t *m)
{
	json_t *in = json_array_get(json_object_get(m, "inputs"), 0);
	json_t *out = json_array_get(json_object_get(m, "outputs"), 0);
	json_t *v, *w = json_object_get(in, "window");
	size_t i;
	char media[128] = "", devs[128] = "";
	size_t off = 0;

	json_array_foreach(json_object_get(in, "media"), i, v) off +=
		(size_t)snprintf(media + off, off < sizeof(media) ? sizeof(media) - off : 0, "%s%s",
				 i ? "," : "", json_string_value(v));
	off = 0;
	json_array_foreach(json_object_get(m, "devices"), i, v) off +=
		(size_t)snprintf(devs + off, off < sizeof(devs) ? sizeof(devs) - off : 0, "%s%s",
				 i ? "," : "", json_string_value(json_object_get(v, "name")));
	printf("%-10s %-12s", name, json_string_value(json_object_get(m, "state")));
	if (!json_is_true(json_object_get(m, "ready")))
		printf(" (%s)", json_string_value(json_object_get(m, "reason")));
	printf(" batch %lld/%lld us, queue %lld, timeout %lld ms; %s",
	       jint(m, "batching", "max_batch"), jint(m, "batching", "max_delay_us"),
	       jint(m, "limits", "queue_limit"), jint(m, "limits", "default_timeout_ms"),
	       media[0] ? media : "-");
	if (jint(in, NULL, "sample_rate") > 0)
		printf(" %lld Hz", jint(in, NULL, "sample_rate"));
	if (w != NULL)
		printf(", windows of %lld %s x %lld", jint(w, NULL, "length"),
		       json_string_value(json_object_get(w, "unit")), jint(w, NULL, "max_windows"));
	printf(" -> %s %s; on %s, %s\n", json_string_value(json_object_get(out, "datatype")),
	       json_string_value(json_object_get(out, "shape")), devs[0] ? devs : "no device",
	       json_string_value(json_object_get(m, "precision")));
}

/* The models of the daemon at @p c, or model @p name's metadata: the exit status. */
static int
list_models(struct mb_http_client *c, const char *name)
{
	char path[128];
	json_t *list, *v;
	size_t i;
	int status, rc = 0;

	if (name != NULL) {
		snprintf(path, sizeof(path), "/v2/models/%s", name);
		status = get_json(c, path, &v);
		if (status < 0)
			return EXIT_NOT_OK;
		if (status != 200) {
			fprintf(stderr, "mediabatch: models: %s\n",
				json_string_value(json_object_get(v, "error"))
					? json_string_value(json_object_get(v, "error"))
					: "not found");
			json_decref(v);
			return EXIT_NOT_OK;
		}
		json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		rc = json_is_true(json_object_get(v, "ready")) ? 0 : EXIT_NOT_OK;
		json_decref(v);
		return rc;
	}
	status = get_json(c, "/v2/models", &list);
	if (status < 0)
		return EXIT_NOT_OK;
	if (status != 200 || !json_is_array(json_object_get(list, "models"))) {
		fprintf(stderr, "mediabatch: models: /v2/models answered %d\n", status);
		json_decref(list);
		return EXIT_NOT_OK;
	}
	json_array_foreach(json_object_get(list, "models"), i, v)
	{
		const char *n = json_string_value(json_object_get(v, "name"));
		json_t *m;

		if (n == NULL)
			continue;
		snprintf(path, sizeof(path), "/v2/models/%s", n);
		if (get_json(c, path, &m) != 200) {
			printf("%-10s (no metadata)\n", n);
			rc = EXIT_NOT_OK;
		} else {
			print_model_line(n, m);
			if (!json_is_true(json_object_get(m, "ready")))
				rc = EXIT_NOT_OK;
		}
		json_decref(m);
	}
	if (json_array_size(json_object_get(list, "models")) == 0)
		printf("(no models)\n");
	json_decref(list);
	return rc;
}

/* "NAME VALUE" or "NAME=VALUE" at argv[*k]: the value (*k moved past it), else NULL. */
static const char *
flag_value(int argc, char **argv, int *k, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(argv[*k], name) == 0 && *k + 1 < argc)
		return argv[++*k];
	if (strncmp(argv[*k], name, n) == 0 && argv[*k][n] == '=')
		return argv[*k] + n + 1;
	return NULL;
}

static int
cmd_models(int argc, char **argv)
{
	struct mb_http_client_opts ho;
	struct mb_http_client *c;
	const char *name = NULL, *v;
	char err[1024];
	int rc;

	mb_http_client_opts_init(&ho);
	ho.endpoint = MODELS_DEFAULT_ENDPOINT;
	for (int k = 2; k < argc; k++) {
		if ((v = flag_value(argc, argv, &k, "--metrics-endpoint")) != NULL)
			ho.endpoint = v;
		else if ((v = flag_value(argc, argv, &k, "--metrics-token-file")) != NULL)
			ho.token_file = v;
		else if ((v = flag_value(argc, argv, &k, "--metrics-cacert")) != NULL)
			ho.cacert = v;
		else if (argv[k][0] != '-' && name == NULL && strlen(argv[k]) <= 64)
			name = argv[k];
		else {
			fprintf(stderr,
				"mediabatch: models: unexpected '%s' (usage: mediabatch models "
				"[--metrics-endpoint EP] [--metrics-token-file FILE] "
				"[--metrics-cacert FILE] [NAME])\n",
				argv[k]);
			return EXIT_USAGE;
		}
	}
	if (mb_http_client_create(&ho, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: models: %s\n", err);
		return EXIT_USAGE;
	}
	rc = list_models(c, name);
	mb_http_client_destroy(&c);
	return rc;
}

/* ---- audio files (--audio, --wav) ---- */

/* The built-in models' sample rates (gpu/models: mel.c's MB_MEL_SAMPLE_RATE for logmel and
 * whisper, clap.c's MB_CLAP_SAMPLE_RATE); identity takes any rate and gets --tone's default. */
static const struct {
	const char *model;
	uint32_t rate;
} g_model_rates[] = {
	{"logmel", 16000},
	{"whisper", 16000},
	{"clap", 48000},
	{"identity", 16000},
};

/* "16 kHz", "22.05 kHz" */
static const char *
khz(uint32_t rate, char *buf, size_t len)
{
	snprintf(buf, len, "%g kHz", rate / 1000.0);
	return buf;
}

/*
 * The rate to send @p model audio at, and the largest payload known for it: --rate (@p
 * rate_flag > 0), a built-in model's rate, else the sample_rate of the daemon's metadata for
 * the model (GET /v2/models/@p model from the endpoint of @p http, whose
 * limits.max_payload_bytes then bounds the payload too). @p whence says which. 0, or -1
 * after saying why.
 */
static int
audio_target(const char *model, long rate_flag, const struct mb_http_client_opts *http,
	     uint32_t *rate, uint64_t *max_bytes, char *whence, size_t wlen)
{
	char path[128], err[1024], media[128] = "";
	struct mb_http_client *c = NULL;
	char *body = NULL;
	const char *url;
	json_t *m, *in, *v;
	json_error_t je;
	long long sr, limit;
	size_t i, off = 0;
	int status;

	*max_bytes = MB_AUDIO_MAX_BYTES;
	if (rate_flag > 0) {
		*rate = (uint32_t)rate_flag;
		snprintf(whence, wlen, "--rate");
		return 0;
	}
	for (size_t k = 0; k < sizeof(g_model_rates) / sizeof(g_model_rates[0]); k++)
		if (strcmp(g_model_rates[k].model, model) == 0) {
			*rate = g_model_rates[k].rate;
			snprintf(whence, wlen, "%s's rate", model);
			return 0;
		}
	if (strspn(model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	    strlen(model)) {
		fprintf(stderr,
			"mediabatch: --audio: model '%s' is not built in and its name cannot be "
			"asked for over HTTP: pass --rate R (the sample rate it takes)\n",
			model);
		return -1;
	}
	snprintf(path, sizeof(path), "/v2/models/%s", model);
	status = mb_http_client_create(http, &c, err, sizeof(err));
	if (status < 0) {
		fprintf(stderr, "mediabatch: --audio: %s\n", err);
		return -1;
	}
	status = mb_http_client_get(c, path, &body, NULL, err, sizeof(err));
	url = mb_http_client_url(c);
	if (status < 0) {
		fprintf(stderr,
			"mediabatch: --audio: model '%s' is not built in, and its sample rate "
			"could not be asked of the daemon: %s. Pass --rate R (the rate %s takes), "
			"or --metrics-endpoint EP of the daemon\n",
			model, err, model);
		mb_http_client_destroy(&c);
		return -1;
	}
	m = json_loads(body, 0, &je);
	free(body);
	if (status != 200 || !json_is_object(m)) {
		v = json_object_get(m, "error");
		fprintf(stderr,
			"mediabatch: --audio: model '%s' is not built in, and %s%s answered %d "
			"(%s). Pass --rate R (the rate %s takes)\n",
			model, url, path, status,
			json_is_string(v) ? json_string_value(v) : "no model metadata", model);
		json_decref(m);
		mb_http_client_destroy(&c);
		return -1;
	}
	in = json_array_get(json_object_get(m, "inputs"), 0);
	sr = jint(in, NULL, "sample_rate");
	if (sr <= 0 || sr > MB_AUDIO_MAX_RATE) {
		json_array_foreach(json_object_get(in, "media"), i, v) off += (size_t)snprintf(
			media + off, off < sizeof(media) ? sizeof(media) - off : 0, "%s%s",
			i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
		fprintf(stderr,
			"mediabatch: --audio: the metadata of model '%s' (%s%s) gives no sample "
			"rate (media: %s). Pass --rate R (the rate %s takes)\n",
			model, url, path, media[0] ? media : "none listed", model);
		json_decref(m);
		mb_http_client_destroy(&c);
		return -1;
	}
	limit = jint(m, "limits", "max_payload_bytes");
	if (limit > 0 && (uint64_t)limit < *max_bytes)
		*max_bytes = (uint64_t)limit;
	*rate = (uint32_t)sr;
	snprintf(whence, wlen, "%s's rate, from %s%s", model, url, path);
	json_decref(m);
	mb_http_client_destroy(&c);
	return 0;
}

/*
 * --audio FILE: read @p path with libsndfile, mix it down and resample it to @p model's rate
 * (audio_target()) as 16-bit PCM in @p m, or as 32-bit float PCM with @p f32. Says what it
 * does on stderr unless @p quiet. 0, or -1 after saying what is wrong.
 */
static int
load_audio(const char *path, const char *model, long rate_flag,
	   const struct mb_http_client_opts *http, bool quiet, bool f32, struct media *m)
{
	struct mb_audio_info info;
	char err[1024], whence[256], k[32];
	uint64_t max_bytes;
	uint32_t rate;

	if (mb_audio_probe(path, &info, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		return -1;
	}
	if (audio_target(model, rate_flag, http, &rate, &max_bytes, whence, sizeof(whence)) < 0)
		return -1;
	if (!quiet)
		fprintf(stderr,
			"mediabatch: %s: %s, %u Hz, %u channel(s), %.3f s -> %s mono %s PCM "
			"(%s)\n",
			path, info.format, info.rate, info.channels,
			(double)info.frames / info.rate, khz(rate, k, sizeof(k)),
			f32 ? "32-bit float" : "16-bit", whence);
	if (mb_audio_load_pcm(path, rate, f32, max_bytes, &m->bytes, &m->len, NULL, err,
			      sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		return -1;
	}
	mb_client_audio_hdr(&m->hdr, "", 0, 0, f32 ? MB_MEDIA_PCM_F32LE : MB_MEDIA_PCM_S16LE, rate,
			    m->len);
	return 0;
}

/* ---- subscribe ---- */

static int
cmd_subscribe(const char *endpoint, long tenant, const char *model, long count, long timeout_s)
{
	struct mb_subscriber *s;
	char prefix[64] = "", err[256], topic[128];
	long got = 0;
	double last = now_s();

	if (model != NULL && tenant < 0) {
		fprintf(stderr, "mediabatch: subscribe --model needs --tenant (topics are "
				"\"<tenant>/<model>\")\n");
		return EXIT_USAGE;
	}
	if (tenant >= 0)
		snprintf(prefix, sizeof(prefix), "%ld/%s", tenant, model ? model : "");
	if ((g_fleet ? mb_subscriber_connect_fleet(endpoint, prefix, &g_curve, 0, &s, err,
						   sizeof(err))
		     : mb_subscriber_connect_curve(endpoint, prefix, &g_curve, &s, err,
						   sizeof(err))) < 0) {
		fprintf(stderr, "mediabatch: %s\n", err);
		return EXIT_USAGE;
	}
	while (!g_stop && (count < 0 || got < count)) {
		struct mb_client_response r;
		int rc = mb_subscriber_recv(s, topic, sizeof(topic), &r, 200);

		if (rc == -EACCES) {
			fprintf(stderr,
				"mediabatch: %s refused this subscriber's CURVE handshake: "
				"its key (--key) is not on the service's allow-list, or "
				"--server-key is not the service's key\n",
				endpoint);
			mb_subscriber_close(&s);
			return EXIT_USAGE;
		}
		if (rc == -ETIMEDOUT) {
			if (timeout_s > 0 && now_s() - last >= (double)timeout_s)
				break;
			continue;
		}
		if (rc < 0)
			continue;
		last = now_s();
		got++;
		printf("%s  ", topic);
		print_response("", &r);
		fflush(stdout);
		mb_client_response_free(&r);
	}
	mb_subscriber_close(&s);
	return count < 0 || got >= count ? 0 : EXIT_TIMEOUT;
}

/* ---- flags ---- */

static int
num(const char *flag, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "mediabatch: %s: '%s' is not %ld..%ld\n", flag, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	enum {
		O_WAV = 256,
		O_METRICS_EP,
		O_METRICS_TOKEN,
		O_METRICS_CACERT,
		O_TONE,
		O_NOISE,
		O_SECONDS,
		O_RATE,
		O_VIDEO,
		O_VIDEO_TEST,
		O_FRAMES,
		O_HEIGHT,
		O_WIDTH,
		O_TENSOR,
		O_ENDPOINT,
		O_FLEET,
		O_MODEL,
		O_TENANT,
		O_ID,
		O_TIMEOUT,
		O_PRIORITY,
		O_COUNT,
		O_CONC,
		O_NPY,
		O_CANCEL_AFTER,
		O_CLIENT_ID,
		O_WAIT,
		O_QUIET,
		O_TIMEOUT_S,
		O_UDP,
		O_PUBLISH,
		O_DATAGRAM,
		O_SETTLE,
		O_LABELS,
		O_SERVER_KEY,
		O_KEY,
		O_F32,
	};
	static const struct option longopts[] = {
		{"wav", required_argument, NULL, O_WAV},
		{"audio", required_argument, NULL, O_WAV},
		{"metrics-endpoint", required_argument, NULL, O_METRICS_EP},
		{"metrics-token-file", required_argument, NULL, O_METRICS_TOKEN},
		{"metrics-cacert", required_argument, NULL, O_METRICS_CACERT},
		{"tone", required_argument, NULL, O_TONE},
		{"noise", no_argument, NULL, O_NOISE},
		{"f32", no_argument, NULL, O_F32},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"rate", required_argument, NULL, O_RATE},
		{"video", required_argument, NULL, O_VIDEO},
		{"video-test", no_argument, NULL, O_VIDEO_TEST},
		{"frames", required_argument, NULL, O_FRAMES},
		{"height", required_argument, NULL, O_HEIGHT},
		{"width", required_argument, NULL, O_WIDTH},
		{"tensor", required_argument, NULL, O_TENSOR},
		{"endpoint", required_argument, NULL, O_ENDPOINT},
		{"fleet", no_argument, NULL, O_FLEET},
		{"model", required_argument, NULL, O_MODEL},
		{"tenant", required_argument, NULL, O_TENANT},
		{"id", required_argument, NULL, O_ID},
		{"timeout-ms", required_argument, NULL, O_TIMEOUT},
		{"priority", no_argument, NULL, O_PRIORITY},
		{"count", required_argument, NULL, O_COUNT},
		{"concurrency", required_argument, NULL, O_CONC},
		{"npy", required_argument, NULL, O_NPY},
		{"cancel-after-ms", required_argument, NULL, O_CANCEL_AFTER},
		{"client-id", required_argument, NULL, O_CLIENT_ID},
		{"wait-ms", required_argument, NULL, O_WAIT},
		{"quiet", no_argument, NULL, O_QUIET},
		{"timeout-s", required_argument, NULL, O_TIMEOUT_S},
		{"udp", required_argument, NULL, O_UDP},
		{"publish", required_argument, NULL, O_PUBLISH},
		{"datagram", required_argument, NULL, O_DATAGRAM},
		{"settle-ms", required_argument, NULL, O_SETTLE},
		{"labels", required_argument, NULL, O_LABELS},
		{"server-key", required_argument, NULL, O_SERVER_KEY},
		{"key", required_argument, NULL, O_KEY},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct send_opts so = {
		.endpoint = NULL,
		.model = "logmel",
		.first_id = 1,
		.count = 1,
		.concurrency = 1,
		.cancel_after_ms = -1,
		.wait_ms = 30000,
		.publish = "tcp://127.0.0.1:7401",
		.settle_ms = 300,
	};
	const char *cmd, *wav = NULL, *video = NULL, *tensor = NULL;
	struct mb_http_client_opts http;
	const char *server_key = NULL, *own_key = NULL;
	double tone = 0, seconds = 1;
	long rate = 16000, frames = 16, height = 224, width = 224, v, tenant = -1, timeout_s = 0;
	bool noise = false, video_test = false, model_set = false, count_set = false;
	bool rate_set = false, f32 = false;
	struct media m = {0};
	int c, sources = 0;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("mediabatch %s\n", MB_VERSION);
		return 0;
	}
	cmd = argv[1];
	mb_http_client_opts_init(&http);
	http.endpoint = MODELS_DEFAULT_ENDPOINT;
	if (strcmp(cmd, "keygen") == 0)
		return cmd_keygen(argc, argv);
	if (strcmp(cmd, "models") == 0)
		return cmd_models(argc, argv);
	optind = 2;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case O_WAV:
			wav = optarg;
			sources++;
			break;
		case O_TONE:
			tone = atof(optarg);
			if (!(tone > 0 && tone < 1e6)) {
				fprintf(stderr,
					"mediabatch: --tone: '%s' is not a frequency in Hz\n",
					optarg);
				return EXIT_USAGE;
			}
			sources++;
			break;
		case O_NOISE:
			noise = true;
			sources++;
			break;
		case O_F32:
			f32 = true;
			break;
		case O_SECONDS:
			seconds = atof(optarg);
			break;
		case O_RATE:
			if (num("--rate", optarg, 1, MB_AUDIO_MAX_RATE, &rate))
				return EXIT_USAGE;
			rate_set = true;
			break;
		case O_METRICS_EP:
			http.endpoint = optarg;
			break;
		case O_METRICS_TOKEN:
			http.token_file = optarg;
			break;
		case O_METRICS_CACERT:
			http.cacert = optarg;
			break;
		case O_VIDEO:
			video = optarg;
			sources++;
			break;
		case O_VIDEO_TEST:
			video_test = true;
			sources++;
			break;
		case O_FRAMES:
			if (num("--frames", optarg, 1, 65535, &frames))
				return EXIT_USAGE;
			break;
		case O_HEIGHT:
			if (num("--height", optarg, 1, 65535, &height))
				return EXIT_USAGE;
			break;
		case O_WIDTH:
			if (num("--width", optarg, 1, 65535, &width))
				return EXIT_USAGE;
			break;
		case O_TENSOR:
			tensor = optarg;
			sources++;
			break;
		case O_ENDPOINT:
			so.endpoint = optarg;
			break;
		case O_FLEET:
			g_fleet = true;
			break;
		case O_MODEL:
			so.model = optarg;
			model_set = true;
			break;
		case O_TENANT:
			if (num("--tenant", optarg, 0, UINT32_MAX, &tenant))
				return EXIT_USAGE;
			so.tenant = (uint32_t)tenant;
			break;
		case O_ID:
			if (num("--id", optarg, 0, LONG_MAX, &v))
				return EXIT_USAGE;
			so.first_id = (uint64_t)v;
			break;
		case O_TIMEOUT:
			if (num("--timeout-ms", optarg, 0, UINT32_MAX, &v))
				return EXIT_USAGE;
			so.timeout_ms = (uint32_t)v;
			break;
		case O_PRIORITY:
			so.priority = true;
			break;
		case O_COUNT:
			if (num("--count", optarg, 1, 100000000, &so.count))
				return EXIT_USAGE;
			count_set = true;
			break;
		case O_CONC:
			if (num("--concurrency", optarg, 1, 100000, &so.concurrency))
				return EXIT_USAGE;
			break;
		case O_NPY:
			so.npy = optarg;
			break;
		case O_CANCEL_AFTER:
			if (num("--cancel-after-ms", optarg, 0, 3600000, &so.cancel_after_ms))
				return EXIT_USAGE;
			break;
		case O_CLIENT_ID:
			so.client_id = optarg;
			break;
		case O_WAIT:
			if (num("--wait-ms", optarg, 1, 86400000, &so.wait_ms))
				return EXIT_USAGE;
			break;
		case O_QUIET:
			so.quiet = true;
			break;
		case O_UDP:
			so.udp = optarg;
			break;
		case O_PUBLISH:
			so.publish = optarg;
			break;
		case O_DATAGRAM:
			if (num("--datagram", optarg, MB_PROTO_HDR_LEN + 1, 65507, &so.datagram))
				return EXIT_USAGE;
			break;
		case O_SETTLE:
			if (num("--settle-ms", optarg, 0, 60000, &so.settle_ms))
				return EXIT_USAGE;
			break;
		case O_LABELS:
			free_labels();
			if (load_labels(optarg) < 0)
				return EXIT_USAGE;
			break;
		case O_SERVER_KEY:
			server_key = optarg;
			break;
		case O_KEY:
			own_key = optarg;
			break;
		case O_TIMEOUT_S:
			if (num("--timeout-s", optarg, 1, 86400, &timeout_s))
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mediabatch: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (load_curve(server_key, own_key) < 0)
		return EXIT_USAGE;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (strcmp(cmd, "subscribe") == 0) {
		c = cmd_subscribe(so.endpoint ? so.endpoint : "tcp://127.0.0.1:7401", tenant,
				  model_set ? so.model : NULL, count_set ? so.count : -1,
				  timeout_s);
		free_labels();
		return c;
	}
	if (strcmp(cmd, "cancel") == 0) {
		/* it was: a cancel from another connection cannot reach a request (protocol.md) */
		fprintf(stderr,
			"mediabatch: there is no 'cancel' command: a cancel must come on the "
			"connection that sent the request (send --cancel-after-ms MS), and the "
			"requests of a client that disconnects are cancelled by the service\n");
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "send") != 0) {
		fprintf(stderr,
			"mediabatch: unknown command '%s' (send, subscribe, models, keygen)\n",
			cmd);
		return EXIT_USAGE;
	}
	if (sources != 1) {
		fprintf(stderr, "mediabatch: send needs exactly one of --audio (or --wav), --tone, "
				"--noise, --video, --video-test, --tensor\n");
		return EXIT_USAGE;
	}
	if (so.endpoint == NULL)
		so.endpoint = "tcp://127.0.0.1:7400";
	if (f32 && wav == NULL && tone <= 0 && !noise) {
		fprintf(stderr,
			"mediabatch: --f32 applies to audio only (--audio, --tone, --noise)\n");
		return EXIT_USAGE;
	}
	if ((wav && load_audio(wav, so.model, rate_set ? rate : 0, &http, so.quiet, f32, &m) < 0) ||
	    ((tone > 0 || noise) && make_audio(&m, tone, seconds, (uint32_t)rate, f32) < 0) ||
	    ((video || video_test) && make_video(&m, video, frames, height, width) < 0) ||
	    (tensor && make_tensor(&m, tensor) < 0))
		return EXIT_USAGE;
	if (so.udp != NULL && (so.cancel_after_ms >= 0 || so.client_id != NULL)) {
		fprintf(stderr, "mediabatch: --udp does not combine with --cancel-after-ms or "
				"--client-id\n");
		free(m.bytes);
		return EXIT_USAGE;
	}
	c = so.udp != NULL ? cmd_send_udp(&so, &m) : cmd_send(&so, &m);
	free(m.bytes);
	free_labels();
	return c;
}
