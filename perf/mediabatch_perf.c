/*
 * mediabatch-perf: the load generator operators size a deployment with.
 *
 * Drives a running mediabatchd over ZeroMQ (protocol v1, the shared codec) in one of three
 * modes: a closed loop (K requests outstanding), an open loop (Poisson arrivals at a rate,
 * latency from each request's intended send time), or a sweep of open-loop rates from low
 * to past saturation that reports the highest rate whose p99 meets an SLO. Requests follow
 * a weighted model mix and a distribution of audio lengths, deterministically for a seed;
 * or, with --media DIR, carry a directory's real files (mb_replay.h), loaded once at start.
 * Reports: text on stdout, --json FILE, --csv FILE (a row per run), --plot DIR (gnuplot),
 * with the server's time per stage from /metrics when it answers (--metrics: http or https,
 * with a bearer token and a CA file when the endpoint is secured; asked once before the
 * runs, so that a refusal is said at once; a fleet's daemons comma-separated, their figures
 * summed). Progress goes to stderr.
 *
 * Flow, like the other programs: flags, connect, run(s), report, close. Every run is
 * bounded in time (warm-up + duration + drain) and in count (--requests).
 *
 * Exit status: 0 done; 1 the service never answered (or a send/receive failed, or a report
 * file could not be written after the run); 2 usage (a --media directory refused, an output
 * path that cannot be written, both checked before the run, included); 130 interrupted (the
 * partial results are still reported, marked interrupted).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_http_client.h"
#include "mb_loadgen.h"
#include "mb_perf_conn.h"
#include "mb_perf_report.h"
#include "mb_replay.h"
#include "mb_runner.h"
#include "mb_scrape.h"

/* daemons of a fleet listed in the report */
#define MB_PERF_MAX_FLEET 64

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130
#define MAX_STEPS 100
/* the check of --metrics before the runs */
#define METRICS_PROBE_MS 2000

static volatile int g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: mediabatch-perf [options]\n"
		"Drive a running mediabatchd and report throughput and latency.\n"
		"\n"
		"Load (one of; default: closed loop, 64 outstanding):\n"
		"  --outstanding K        closed loop: keep K requests in flight (1..1000000)\n"
		"  --rate R               open loop: Poisson arrivals at R req/s (0.1..10000000);\n"
		"                         latency counts from each request's intended send time\n"
		"  --sweep FROM:TO:STEPS  open-loop rates FROM..TO req/s in STEPS even steps\n"
		"                         (1..100), reporting the highest rate that meets the SLO\n"
		"  --slo-ms MS            sweep SLO: p99 at most MS (default 10)\n"
		"  --max-error-pct P      sweep SLO: at most P%% of requests not OK, missing or\n"
		"                         unsent (default 0.1)\n"
		"  --sweep-past N         stop a sweep at the Nth step in a row that misses the\n"
		"                         SLO (default 2; 0 = run every step)\n"
		"What is sent:\n"
		"  --mix SPEC             models by weight, e.g. identity:3,logmel:1 (default\n"
		"                         identity). identity and unknown models get an F32\n"
		"                         tensor; logmel, whisper 16 kHz and clap 48 kHz PCM16\n"
		"                         audio; videomae 16 RGB24 frames of 224x224\n"
		"  --seconds DIST         audio lengths: S | fixed:S | uniform:LO,HI |\n"
		"                         lognormal:MEDIAN,SIGMA (default fixed:1; clamped to\n"
		"                         0.025 s..the model's maximum)\n"
		"  --payload BYTES        tensor payload, a multiple of 4 (default 1024)\n"
		"  --tenant T             tenant id (default 0)\n"
		"  --timeout-ms MS        request deadline (default 0: the model's default)\n"
		"  --seed N               seeds arrivals and request contents (default 1)\n"
		"  --media DIR            send DIR's files instead of generated media: audio\n"
		"                         files (anything libsndfile reads; resampled to each\n"
		"                         model's rate, sent whole) and raw RGB24 video named\n"
		"                         NAME.FRAMESxHEIGHTxWIDTH.rgb. --mix still picks the\n"
		"                         model; each takes the next file of its media in name\n"
		"                         order: logmel, whisper, clap audio, videomae video,\n"
		"                         identity both. Loaded once at start; not with\n"
		"                         --seconds or --payload\n"
		"  --media-max-mb MB      --media: most MiB of payloads held in memory, each\n"
		"                         audio file once per rate (1..1048576, default 1024)\n"
		"Bounds (per run, i.e. per sweep step):\n"
		"  --duration S           measured window (0.1..3600, default 10)\n"
		"  --warmup S             sent first, not measured (0..600, default 1)\n"
		"  --drain S              wait for the window's last responses (0.1..600,\n"
		"                         default 5); those still missing are reported\n"
		"  --requests N           measured requests at most (default 10000000)\n"
		"  --max-outstanding N    open loop: in flight at most (default 65536); arrivals\n"
		"                         beyond are counted as unsent\n"
		"Where:\n"
		"  --endpoint EP          service ROUTER (default tcp://127.0.0.1:7400); with\n"
		"                         --transport udp the service's UDP IPV4:PORT; a fleet:\n"
		"                         several, comma-separated (tcp://a:7400,tcp://b:7400),\n"
		"                         spread with credit windows and failover; the report\n"
		"                         gives each daemon's share\n"
		"  --fleet                the endpoint is a fleet even if one: a name whose\n"
		"                         addresses are the daemons, re-resolved every 5 s\n"
		"                         (ZeroMQ only: not with --transport udp)\n"
		"  --transport zmq|udp    (default zmq) udp: datagrams to the daemon's DPDK port,\n"
		"                         results from its PUB socket (--publish)\n"
		"  --publish EP           udp: service PUB (default tcp://127.0.0.1:7401)\n"
		"  --datagram BYTES       udp: datagram size, header included (default 1472)\n"
		"  --metrics EP[,EP...]   the daemon's /metrics for admission wait, units in use,\n"
		"                         the server's time per stage and batches closed:\n"
		"                         HOST:PORT, http://HOST:PORT, https://HOST:PORT or\n"
		"                         [IPV6]:PORT (default 127.0.0.1:7402; 'off' to skip).\n"
		"                         A fleet: each daemon's, comma-separated; the figures\n"
		"                         are their sum, and the report says how many of them\n"
		"                         answered and which share of the fleet they cover\n"
		"  --metrics-token-file FILE  the bearer token /metrics wants (the daemon's\n"
		"                         http.token_file): printable ASCII, trailing newline\n"
		"                         ignored\n"
		"  --metrics-cacert FILE  https: trust the CA certificate(s) in FILE (PEM; for a\n"
		"                         self-signed http.tls_cert, that certificate) instead\n"
		"                         of the system's\n"
		"Output (paths checked before the run: exit 2 if one cannot be written):\n"
		"  --json FILE            write the results as JSON\n"
		"  --csv FILE             write one CSV row per run (per sweep step) under a\n"
		"                         header line: the figures of the JSON's runs\n"
		"  --plot DIR             write gnuplot data, scripts and PNGs (latency CDF; for "
		"a\n"
		"                         sweep also throughput and p99 against offered load)\n"
		"  --quiet                no progress line on stderr\n"
		"  --help\n"
		"\n"
		"Counts (K, N, T, BYTES, MB, and MS of --timeout-ms) are whole numbers.\n"
		"\n"
		"Signals: SIGINT and SIGTERM end the run at once and report what was measured:\n"
		"the window is the time that ran, the run is marked interrupted, requests then\n"
		"in flight are counted apart (not as missing or errors), and an interrupted\n"
		"sweep step is not judged against the SLO.\n"
		"\n"
		"Exit status: 0 done, 1 the service never answered, a send failed or a report\n"
		"file could not be written after the run, 2 usage (a bad flag or value, a\n"
		"--media directory refused, an output path that cannot be written), 130\n"
		"interrupted (partial results are reported).\n");
}

static int
num(const char *flag, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
		fprintf(stderr, "mediabatch-perf: %s '%s': want a number in %g..%g\n", flag, s, lo,
			hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* num() for a count: a whole number (1.5 is refused, not truncated). */
static int
whole(const char *flag, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi || v != floor(v)) {
		fprintf(stderr, "mediabatch-perf: %s '%s': want a whole number in %.0f..%.0f\n",
			flag, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/*
 * Whether the report file @path (--json, --csv) can be written, asked before the run so that
 * a typo does not cost a whole run: opened for writing without truncating it (created if
 * missing, and then removed again). -errno with a message naming the flag and the path.
 */
static int
check_output_file(const char *flag, const char *path)
{
	bool created = true;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		int e = errno;

		fprintf(stderr, "mediabatch-perf: %s %s: cannot write it: %s\n", flag, path,
			strerror(e));
		return -e;
	}
	close(fd);
	if (created)
		unlink(path);
	return 0;
}

/*
 * Whether --plot DIR can be written into: made if missing (as mb_report_plot() will) and a
 * file created and removed in it; a directory made here is removed again.
 */
static int
check_plot_dir(const char *dir)
{
	char path[4096];
	bool made = mkdir(dir, 0777) == 0;
	int fd, e = 0;

	if (!made && errno != EEXIST) {
		e = errno;
	} else {
		snprintf(path, sizeof(path), "%s/.mediabatch-perf-XXXXXX", dir);
		fd = mkstemp(path);
		if (fd < 0) {
			e = errno;
		} else {
			close(fd);
			unlink(path);
		}
	}
	if (made)
		rmdir(dir);
	if (e != 0)
		fprintf(stderr, "mediabatch-perf: --plot %s: cannot write in it: %s\n", dir,
			strerror(e));
	return -e;
}

static int
parse_sweep(const char *s, double *from, double *to, int *steps)
{
	char extra;

	if (sscanf(s, "%lf:%lf:%d%c", from, to, steps, &extra) != 3 || !(*from >= 0.1) ||
	    !(*to >= *from) || *to > 1e7 || *steps < 1 || *steps > MAX_STEPS) {
		fprintf(stderr,
			"mediabatch-perf: --sweep '%s': want FROM:TO:STEPS with 0.1 <= FROM <= TO "
			"<= 10000000 req/s and 1..%d steps\n",
			s, MAX_STEPS);
		return -EINVAL;
	}
	return 0;
}

/* Payloads per media kind: tensors of small finite floats, audio a tone with noise. */
static int
make_payloads(const struct mb_loadgen *lg, uint64_t seed, void *p[MB_KIND_COUNT])
{
	struct mb_rng rng;

	mb_rng_seed(&rng, seed);
	for (int k = 0; k < MB_KIND_COUNT; k++) {
		size_t n = mb_loadgen_max_payload(lg, (enum mb_media_kind)k);

		p[k] = calloc(n ? n : 4, 1);
		if (p[k] == NULL)
			return -ENOMEM;
		if (k == MB_KIND_TENSOR) {
			float *f = p[k];

			for (size_t i = 0; i < n / 4; i++)
				f[i] = (float)(mb_rng_uniform(&rng) - 0.5);
		} else if (k == MB_KIND_AUDIO) {
			uint8_t *b = p[k];

			for (size_t i = 0; i < n / 2; i++) {
				double x = 0.3 * sin(2 * M_PI * 440 * (double)i / MB_LOADGEN_RATE) +
					   0.05 * (mb_rng_uniform(&rng) - 0.5);
				int16_t s = (int16_t)lrint(32767 * x);

				b[2 * i] = (uint8_t)s;
				b[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
			}
		} else {
			uint8_t *b = p[k];

			for (size_t i = 0; i < n; i++)
				b[i] = (uint8_t)(mb_rng_next(&rng) >> 56);
		}
	}
	return 0;
}

/* --metrics's endpoints, split (one a line of its own), and pointers to them */
static char g_metrics_ep[MB_RUN_METRICS_MAX][320];
static const char *g_metrics_list[MB_RUN_METRICS_MAX];

/*
 * Split --metrics @arg at its commas into g_metrics_list. Returns how many (1..
 * MB_RUN_METRICS_MAX), or -EINVAL with a message: an empty element, too many, one too long.
 */
static int
split_metrics(const char *arg)
{
	const char *p = arg;
	int n = 0;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0) {
			fprintf(stderr,
				"mediabatch-perf: --metrics '%s': an empty endpoint in the list\n",
				arg);
			return -EINVAL;
		}
		if (n == MB_RUN_METRICS_MAX) {
			fprintf(stderr, "mediabatch-perf: --metrics: at most %d endpoints\n",
				MB_RUN_METRICS_MAX);
			return -EINVAL;
		}
		if (len >= sizeof(g_metrics_ep[0])) {
			fprintf(stderr, "mediabatch-perf: --metrics '%.*s': too long\n", (int)len,
				p);
			return -EINVAL;
		}
		memcpy(g_metrics_ep[n], p, len);
		g_metrics_ep[n][len] = '\0';
		g_metrics_list[n] = g_metrics_ep[n];
		n++;
		if (comma == NULL)
			return n;
		p = comma + 1;
	}
}

/*
 * --metrics (@n endpoints) and its files: a bad endpoint, one listed twice or a bad file is a
 * usage error (-EINVAL); then each /metrics is asked once, and a refusal (a 401, an untrusted
 * certificate, nothing there) is said on stderr now, naming it, not found later as a report
 * without (some of the) server-side figures. The run goes on.
 */
static int
check_metrics(const char *const *metrics, int n, const char *token_file, const char *cacert)
{
	static char urls[MB_RUN_METRICS_MAX][300];
	struct mb_http_endpoint ep;
	char err[1024], *body = NULL;
	int rc, answered = 0;

	for (int i = 0; i < n; i++) {
		if (mb_http_endpoint_parse(metrics[i], &ep, err, sizeof(err)) < 0) {
			fprintf(stderr, "mediabatch-perf: --metrics %s\n", err);
			return -EINVAL;
		}
		mb_http_endpoint_url(&ep, urls[i], sizeof(urls[i]));
		for (int j = 0; j < i; j++)
			if (strcmp(urls[i], urls[j]) == 0) {
				fprintf(stderr,
					"mediabatch-perf: --metrics lists %s twice (%s, %s): its "
					"figures would count twice\n",
					urls[i], metrics[j], metrics[i]);
				return -EINVAL;
			}
	}
	if (mb_scrape_set_auth(token_file, cacert, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-perf: %s\n", err);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		rc = mb_scrape_fetch(metrics[i], "/metrics", METRICS_PROBE_MS, &body, err,
				     sizeof(err));
		if (rc >= 0 && rc != 200)
			snprintf(err, sizeof(err), "%.300s/metrics answered %d", urls[i], rc);
		answered += rc == 200;
		if (rc != 200 && n == 1)
			fprintf(stderr,
				"mediabatch-perf: --metrics: %s; the report will have no "
				"server-side figures ('--metrics off' to skip)\n",
				err);
		else if (rc != 200)
			fprintf(stderr,
				"mediabatch-perf: --metrics %s: %s; the server-side figures will "
				"leave that daemon out (the report says how many answered)\n",
				metrics[i], err);
		free(body);
		body = NULL;
	}
	if (n > 1 && answered == 0)
		fprintf(stderr,
			"mediabatch-perf: --metrics: none of the %d endpoints answered; the report "
			"will have no server-side figures ('--metrics off' to skip)\n",
			n);
	return 0;
}

enum {
	OPT_OUTSTANDING = 256,
	OPT_RATE,
	OPT_SWEEP,
	OPT_SLO,
	OPT_MAX_ERR,
	OPT_SWEEP_PAST,
	OPT_MIX,
	OPT_SECONDS,
	OPT_PAYLOAD,
	OPT_TENANT,
	OPT_TIMEOUT,
	OPT_SEED,
	OPT_DURATION,
	OPT_WARMUP,
	OPT_DRAIN,
	OPT_REQUESTS,
	OPT_MAX_OUT,
	OPT_ENDPOINT,
	OPT_TRANSPORT,
	OPT_PUBLISH,
	OPT_DATAGRAM,
	OPT_METRICS,
	OPT_METRICS_TOKEN,
	OPT_METRICS_CACERT,
	OPT_JSON,
	OPT_CSV,
	OPT_MEDIA,
	OPT_MEDIA_MAX,
	OPT_PLOT,
	OPT_QUIET,
	OPT_FLEET,
	OPT_HELP,
};

static const struct option g_longopts[] = {
	{"outstanding", required_argument, NULL, OPT_OUTSTANDING},
	{"rate", required_argument, NULL, OPT_RATE},
	{"sweep", required_argument, NULL, OPT_SWEEP},
	{"slo-ms", required_argument, NULL, OPT_SLO},
	{"max-error-pct", required_argument, NULL, OPT_MAX_ERR},
	{"sweep-past", required_argument, NULL, OPT_SWEEP_PAST},
	{"mix", required_argument, NULL, OPT_MIX},
	{"seconds", required_argument, NULL, OPT_SECONDS},
	{"payload", required_argument, NULL, OPT_PAYLOAD},
	{"tenant", required_argument, NULL, OPT_TENANT},
	{"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
	{"seed", required_argument, NULL, OPT_SEED},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"warmup", required_argument, NULL, OPT_WARMUP},
	{"drain", required_argument, NULL, OPT_DRAIN},
	{"requests", required_argument, NULL, OPT_REQUESTS},
	{"max-outstanding", required_argument, NULL, OPT_MAX_OUT},
	{"endpoint", required_argument, NULL, OPT_ENDPOINT},
	{"publish", required_argument, NULL, OPT_PUBLISH},
	{"datagram", required_argument, NULL, OPT_DATAGRAM},
	{"transport", required_argument, NULL, OPT_TRANSPORT},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"metrics-token-file", required_argument, NULL, OPT_METRICS_TOKEN},
	{"metrics-cacert", required_argument, NULL, OPT_METRICS_CACERT},
	{"json", required_argument, NULL, OPT_JSON},
	{"csv", required_argument, NULL, OPT_CSV},
	{"media", required_argument, NULL, OPT_MEDIA},
	{"media-max-mb", required_argument, NULL, OPT_MEDIA_MAX},
	{"plot", required_argument, NULL, OPT_PLOT},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"fleet", no_argument, NULL, OPT_FLEET},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

int
main(int argc, char **argv)
{
	const char *endpoint = "tcp://127.0.0.1:7400", *metrics = "127.0.0.1:7402";
	const char *mix_spec = "identity", *seconds_spec = "fixed:1", *json_path = NULL;
	const char *plot_dir = NULL, *transport = "zmq", *csv_path = NULL, *media_dir = NULL;
	const char *metrics_token = NULL, *metrics_cacert = NULL;
	double v, sweep_from = 0, sweep_to = 0, slo_ms = 10, max_err = 0.1, payload = 1024;
	double tenant = 0, timeout_ms = 0, sweep_past = 2, media_max_mb = 1024;
	int sweep_steps = 0, opt, rc = 0, status = 0;
	bool quiet = false, have_rate = false, have_outstanding = false;
	bool have_seconds = false, have_payload = false;
	struct mb_run_opts ro;
	struct mb_mix mix;
	struct mb_dist seconds;
	struct mb_loadgen lg;
	struct mb_perf_conn_opts co = {.sndhwm = 100000};
	struct mb_client_daemon fleet[MB_PERF_MAX_FLEET];
	struct mb_client_fleet_stats fleet_stats;
	int n_fleet;
	struct mb_perf_conn *conn = NULL;
	struct mb_replay *replay = NULL;
	struct mb_run_result *runs = NULL;
	struct mb_perf_report rep;
	void *payloads[MB_KIND_COUNT] = {NULL};
	uint64_t next_id = 1;
	char err[256];
	int n_runs = 0, misses = 0, n_metrics = 0;

	mb_run_opts_init(&ro);
	while ((opt = getopt_long(argc, argv, "h", g_longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_OUTSTANDING:
			rc = whole("--outstanding", optarg, 1, 1000000, &v);
			ro.outstanding = (uint32_t)v;
			have_outstanding = true;
			break;
		case OPT_RATE:
			rc = num("--rate", optarg, 0.1, 1e7, &ro.rate);
			have_rate = true;
			break;
		case OPT_SWEEP:
			rc = parse_sweep(optarg, &sweep_from, &sweep_to, &sweep_steps);
			break;
		case OPT_SLO:
			rc = num("--slo-ms", optarg, 0.001, 3600000, &slo_ms);
			break;
		case OPT_MAX_ERR:
			rc = num("--max-error-pct", optarg, 0, 100, &max_err);
			break;
		case OPT_SWEEP_PAST:
			rc = whole("--sweep-past", optarg, 0, MAX_STEPS, &sweep_past);
			break;
		case OPT_MIX:
			mix_spec = optarg;
			break;
		case OPT_SECONDS:
			seconds_spec = optarg;
			have_seconds = true;
			break;
		case OPT_PAYLOAD:
			rc = num("--payload", optarg, 4, 262140, &payload);
			have_payload = true;
			break;
		case OPT_TENANT:
			rc = whole("--tenant", optarg, 0, 4294967295.0, &tenant);
			break;
		case OPT_TIMEOUT:
			rc = whole("--timeout-ms", optarg, 0, 3600000, &timeout_ms);
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			ro.seed = (uint64_t)strtoull(optarg, &end, 10);
			if (end == optarg || *end != '\0' || errno != 0 || optarg[0] == '-') {
				fprintf(stderr, "mediabatch-perf: --seed '%s': want 0..2^64-1\n",
					optarg);
				rc = -EINVAL;
			}
			break;
		}
		case OPT_DURATION:
			rc = num("--duration", optarg, 0.1, 3600, &ro.duration_s);
			break;
		case OPT_WARMUP:
			rc = num("--warmup", optarg, 0, 600, &ro.warmup_s);
			break;
		case OPT_DRAIN:
			rc = num("--drain", optarg, 0.1, 600, &ro.drain_s);
			break;
		case OPT_REQUESTS:
			rc = whole("--requests", optarg, 1, 1e12, &v);
			ro.max_requests = (uint64_t)v;
			break;
		case OPT_MAX_OUT:
			rc = whole("--max-outstanding", optarg, 1, 4194304, &v);
			ro.max_outstanding = (uint32_t)v;
			break;
		case OPT_ENDPOINT:
			endpoint = optarg;
			break;
		case OPT_TRANSPORT:
			transport = optarg;
			break;
		case OPT_PUBLISH:
			co.publish = optarg;
			break;
		case OPT_DATAGRAM:
			rc = whole("--datagram", optarg, MB_PROTO_HDR_LEN + 1, 65507, &v);
			co.max_datagram = (uint32_t)v;
			break;
		case OPT_METRICS:
			metrics = strcmp(optarg, "off") == 0 ? NULL : optarg;
			break;
		case OPT_METRICS_TOKEN:
			metrics_token = optarg;
			break;
		case OPT_METRICS_CACERT:
			metrics_cacert = optarg;
			break;
		case OPT_JSON:
			json_path = optarg;
			break;
		case OPT_CSV:
			csv_path = optarg;
			break;
		case OPT_MEDIA:
			media_dir = optarg;
			break;
		case OPT_MEDIA_MAX:
			rc = whole("--media-max-mb", optarg, 1, 1048576, &media_max_mb);
			break;
		case OPT_PLOT:
			plot_dir = optarg;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		case OPT_FLEET:
			co.fleet = 1;
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mediabatch-perf %s\n", MB_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
		if (rc < 0)
			return EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "mediabatch-perf: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if ((sweep_steps > 0) + have_rate + have_outstanding > 1) {
		fprintf(stderr, "mediabatch-perf: give one of --outstanding, --rate, --sweep\n");
		return EXIT_USAGE;
	}
	if ((uint32_t)payload % 4 != 0 || payload != floor(payload)) {
		fprintf(stderr, "mediabatch-perf: --payload %g: want a multiple of 4\n", payload);
		return EXIT_USAGE;
	}
	if (strcmp(transport, "zmq") == 0) {
		co.transport = MB_TRANSPORT_ZMQ;
	} else if (strcmp(transport, "udp") == 0 && co.fleet) {
		fprintf(stderr,
			"mediabatch-perf: --fleet does not go with --transport udp: the UDP "
			"sender sends to one IPV4:PORT (a fleet is driven over ZeroMQ)\n");
		return EXIT_USAGE;
	} else if (strcmp(transport, "udp") == 0) {
		co.transport = MB_TRANSPORT_UDP;
		co.tenant = (uint32_t)tenant;
		co.settle_ms = 300;
		if (co.publish == NULL)
			co.publish = "tcp://127.0.0.1:7401";
	} else {
		fprintf(stderr, "mediabatch-perf: --transport '%s': want zmq or udp\n", transport);
		return EXIT_USAGE;
	}
	if (mb_mix_parse(mix_spec, &mix, err, sizeof(err)) < 0 ||
	    mb_dist_parse(seconds_spec, &seconds, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-perf: %s\n", err);
		return EXIT_USAGE;
	}
	if (media_dir != NULL && (have_seconds || have_payload)) {
		fprintf(stderr,
			"mediabatch-perf: --%s does not go with --media: the files are sent "
			"as they are\n",
			have_seconds ? "seconds" : "payload");
		return EXIT_USAGE;
	}
	if ((json_path != NULL && check_output_file("--json", json_path) < 0) ||
	    (csv_path != NULL && check_output_file("--csv", csv_path) < 0) ||
	    (plot_dir != NULL && check_plot_dir(plot_dir) < 0))
		return EXIT_USAGE;
	if (metrics != NULL) {
		n_metrics = split_metrics(metrics);
		if (n_metrics < 0 ||
		    check_metrics(g_metrics_list, n_metrics, metrics_token, metrics_cacert) < 0)
			return EXIT_USAGE;
	}
	mb_loadgen_init(&lg, &mix, &seconds, (uint32_t)payload, (uint32_t)tenant,
			(uint32_t)timeout_ms, ro.seed);
	if (media_dir != NULL) {
		rc = mb_replay_load(media_dir, &mix, (uint64_t)media_max_mb << 20, &replay, err,
				    sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "mediabatch-perf: %s\n", err);
			return rc == -ENOMEM ? EXIT_FAIL : EXIT_USAGE;
		}
		mb_loadgen_set_replay(&lg, replay);
		if (!quiet)
			fprintf(stderr,
				"mediabatch-perf: --media %s: %u audio and %u video file(s), "
				"%.1f MiB in memory\n",
				media_dir, replay->n_audio, replay->n_video,
				(double)replay->bytes / (1024.0 * 1024.0));
	}
	co.endpoint = endpoint;
	rc = mb_perf_conn_open(&co, &conn, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mediabatch-perf: %s\n", err);
		mb_replay_destroy(&replay);
		return rc == -ENOTSUP || rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	runs = calloc(sweep_steps > 0 ? (size_t)sweep_steps : 1, sizeof(*runs));
	if (runs == NULL || make_payloads(&lg, ro.seed, payloads) < 0) {
		fprintf(stderr, "mediabatch-perf: out of memory\n");
		status = EXIT_FAIL;
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ro.metrics = metrics != NULL ? g_metrics_list : NULL;
	ro.n_metrics = n_metrics;
	ro.progress = !quiet;
	ro.mode = have_rate || sweep_steps > 0 ? MB_RUN_OPEN : MB_RUN_CLOSED;

	for (int step = 0; step < (sweep_steps > 0 ? sweep_steps : 1); step++) {
		struct mb_run_opts o = ro;
		char label[32];

		if (sweep_steps > 0) {
			o.rate = sweep_steps == 1 ? sweep_from
						  : sweep_from + (sweep_to - sweep_from) * step /
									 (sweep_steps - 1);
			o.seed = ro.seed + (uint64_t)step;
			snprintf(label, sizeof(label), "step %d/%d", step + 1, sweep_steps);
			o.label = label;
		}
		if (mb_run_result_init(&runs[n_runs], &mix) < 0) {
			fprintf(stderr, "mediabatch-perf: out of memory\n");
			status = EXIT_FAIL;
			break;
		}
		rc = mb_run(&o, conn, &lg, (const void *const *)payloads, &next_id, &g_stop,
			    &runs[n_runs]);
		n_runs++;
		if (rc == -EINTR) {
			fprintf(stderr,
				"mediabatch-perf: interrupted; reporting what was measured\n");
			status = EXIT_INTERRUPTED;
			break;
		}
		if (rc < 0) {
			status = EXIT_FAIL;
			break;
		}
		if (runs[n_runs - 1].responses == 0) {
			fprintf(stderr,
				"mediabatch-perf: no responses from %s: is mediabatchd running "
				"there?\n",
				endpoint);
			status = EXIT_FAIL;
			break;
		}
		if (sweep_steps > 0) {
			struct mb_perf_report probe = {.slo_ms = slo_ms,
						       .max_error_pct = max_err,
						       .runs = runs,
						       .n_runs = n_runs};

			misses = mb_report_slo_met(&probe, n_runs - 1) ? 0 : misses + 1;
			if (sweep_past > 0 && misses >= (int)sweep_past)
				break;
		}
	}

	memset(&rep, 0, sizeof(rep));
	rep.mode = sweep_steps > 0 ? MB_REPORT_SWEEP
				   : (ro.mode == MB_RUN_OPEN ? MB_REPORT_OPEN : MB_REPORT_CLOSED);
	rep.endpoint = endpoint;
	rep.transport = transport;
	rep.metrics = metrics;
	rep.metrics_list = metrics != NULL ? g_metrics_list : NULL;
	rep.n_metrics = n_metrics;
	rep.mix = &mix;
	rep.seconds = &seconds;
	rep.payload_bytes = (uint32_t)payload;
	rep.seed = ro.seed;
	rep.warmup_s = ro.warmup_s;
	rep.duration_s = ro.duration_s;
	rep.drain_s = ro.drain_s;
	rep.max_requests = ro.max_requests;
	rep.slo_ms = slo_ms;
	rep.max_error_pct = max_err;
	rep.sweep_from = sweep_from;
	rep.sweep_to = sweep_to;
	rep.sweep_steps = sweep_steps;
	rep.sweep_past = (int)sweep_past;
	rep.runs = runs;
	rep.n_runs = n_runs;
	rep.media = replay;
	n_fleet = mb_perf_conn_fleet_stats(conn, &fleet_stats, fleet, MB_PERF_MAX_FLEET);
	if (n_fleet > 0) {
		rep.fleet = fleet;
		rep.n_fleet = n_fleet < MB_PERF_MAX_FLEET ? n_fleet : MB_PERF_MAX_FLEET;
		rep.fleet_stats = &fleet_stats;
	}
	if (n_runs == 0)
		goto out;
	if (plot_dir != NULL && mb_report_plot(&rep, plot_dir) < 0) {
		fprintf(stderr, "mediabatch-perf: --plot: %s\n", rep.plot_note);
		status = status ? status : EXIT_FAIL;
	}
	if (plot_dir != NULL && !rep.plotted)
		fprintf(stderr, "mediabatch-perf: %s\n", rep.plot_note);
	mb_report_text(&rep, stdout);
	if (json_path != NULL) {
		FILE *f = fopen(json_path, "w");
		int e = f == NULL ? -errno : mb_report_json(&rep, f);

		if (f != NULL && fclose(f) != 0 && e == 0)
			e = -errno;
		if (e < 0) {
			fprintf(stderr, "mediabatch-perf: --json %s: %s\n", json_path,
				strerror(-e));
			status = status ? status : EXIT_FAIL;
		}
	}
	if (csv_path != NULL) {
		FILE *f = fopen(csv_path, "w");
		int e = f == NULL ? -errno : mb_report_csv(&rep, f);

		if (f != NULL && fclose(f) != 0 && e == 0)
			e = -errno;
		if (e < 0) {
			fprintf(stderr, "mediabatch-perf: --csv %s: %s\n", csv_path, strerror(-e));
			status = status ? status : EXIT_FAIL;
		}
	}
out:
	for (int i = 0; i < n_runs; i++)
		mb_run_result_fini(&runs[i]);
	free(runs);
	for (int k = 0; k < MB_KIND_COUNT; k++)
		free(payloads[k]);
	mb_perf_conn_close(&conn);
	mb_replay_destroy(&replay);
	return status;
}
