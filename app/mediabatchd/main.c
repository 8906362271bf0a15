/*
 * mediabatchd: the mediabatch daemon.
 *
 * Reads like DPDK's l2fwd: flags, config, EAL, the pipeline (service.c), one thread per
 * role, wait for a signal, drain, join, tear down in reverse. The first SIGINT/SIGTERM
 * starts the drain (new work is refused UNAVAILABLE, queued work finishes, every response
 * is sent); a second one, or the drain timeout, stops hard (what has not started is
 * answered CANCELLED). Every thread is joined before exit.
 *
 * Exit status: 0 after a clean drain; 3 if the drain was cut short (second signal or
 * timeout; every request was still answered); 2 for usage or configuration errors (a key,
 * certificate or token file the configuration names that is missing, unreadable, insecure
 * or malformed included, at the start as at --check); 1 if the service could not start (an
 * endpoint in use, EAL failure).
 *
 * Under systemd (Type=notify: deploy/mediabatchd.service) it reports READY=1 once it serves,
 * STOPPING=1 when the drain starts, a STATUS= line with the requests in flight every few
 * seconds, and WATCHDOG=1 from the signal-wait loop when WATCHDOG_USEC asks for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_config.h"
#include "mb_eal.h"
#include "mb_env.h"
#include "mb_udp.h"
#include "mb_placement.h"
#include "service.h"

#define MB_LOG_MODULE "mediabatchd"
#include "mb_log.h"

#if MB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define EXIT_CONFIG 2
#define EXIT_START 1
#define EXIT_CUT_SHORT 3

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: mediabatchd [options]\n"
		"\n"
		"Runs the mediabatch service. With no options it uses the embedded default: the "
		"CPU\n"
		"device, ZeroMQ ROUTER on tcp://127.0.0.1:7400 (requests and replies), PUB on\n"
		"tcp://127.0.0.1:7401 (every result, topic \"<tenant>/<model>\"), and /metrics,\n"
		"/healthz, /readyz over HTTP on 127.0.0.1:7402.\n"
		"\n"
		"  -c, --config FILE        load FILE (YAML; every key with its default and "
		"range:\n"
		"                           " MB_DOC_DIR "/mediabatch.yaml)\n"
		"      --check              validate the configuration and exit (0 if valid)\n"
		"      --ingest ENDPOINT    ZeroMQ ROUTER endpoint (overrides the config)\n"
		"      --publish ENDPOINT   ZeroMQ PUB endpoint (overrides the config)\n"
		"      --metrics HOST:PORT  HTTP endpoint for metrics and health, or \"off\"\n"
		"      --drain-timeout MS   how long a drain may take on SIGINT/SIGTERM "
		"(0..600000)\n"
		"      --workers N          CPU worker threads (1..256, 0 auto; overrides the "
		"config)\n"
		"      --placement POLICY   polled threads: auto, single (every stage on one\n"
		"                           thread) or per-stage (overrides service.placement)\n"
		"      --log-level LEVEL    error, warning, notice, info or debug\n"
		"      --log-format FORMAT  text (the default; or MB_LOG_FORMAT) or json: one\n"
		"                           JSON object per line\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               this help\n"
		"\n"
		"Signals: the first SIGINT/SIGTERM drains (new requests get UNAVAILABLE, queued "
		"ones\n"
		"finish, every response is sent); a second one stops at once (what has not "
		"started\n"
		"is answered CANCELLED). SIGHUP reloads --config's tenant rate limits, the\n"
		"models' max_batch, max_delay_us, queue_limit and default_timeout_ms, and with\n"
		"CURVE the allow-list, security.clients (the others at the next start).\n"
		"Exit status: 0 after a clean drain, 3 when the drain was cut short, 2 for a\n"
		"usage or configuration error, 1 when the service cannot start.\n");
}

struct flags {
	const char *config;
	const char *ingest, *publish, *metrics, *log_level, *placement;
	int log_format; /* enum mb_log_format, or -1: MB_LOG_FORMAT or text */
	long drain_timeout_ms, workers;
	bool check;
};

static int
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
parse_flags(int argc, char **argv, struct flags *f)
{
	enum {
		O_CHECK = 256,
		O_INGEST,
		O_PUBLISH,
		O_METRICS,
		O_DRAIN,
		O_WORKERS,
		O_LOG,
		O_PLACE,
		O_LOGFMT
	};
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, O_CHECK},
		{"ingest", required_argument, NULL, O_INGEST},
		{"publish", required_argument, NULL, O_PUBLISH},
		{"metrics", required_argument, NULL, O_METRICS},
		{"drain-timeout", required_argument, NULL, O_DRAIN},
		{"workers", required_argument, NULL, O_WORKERS},
		{"log-level", required_argument, NULL, O_LOG},
		{"log-format", required_argument, NULL, O_LOGFMT},
		{"placement", required_argument, NULL, O_PLACE},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(f, 0, sizeof(*f));
	f->drain_timeout_ms = -1;
	f->workers = -1;
	f->log_format = -1;
	while ((c = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			f->config = optarg;
			break;
		case O_CHECK:
			f->check = true;
			break;
		case O_INGEST:
			f->ingest = optarg;
			break;
		case O_PUBLISH:
			f->publish = optarg;
			break;
		case O_METRICS:
			f->metrics = optarg;
			break;
		case O_LOG:
			f->log_level = optarg;
			break;
		case O_PLACE:
			f->placement = optarg;
			break;
		case O_LOGFMT:
			f->log_format = mb_log_parse_format(optarg);
			if (f->log_format < 0) {
				fprintf(stderr,
					"mediabatchd: --log-format: '%s' is not text or json\n",
					optarg);
				return -1;
			}
			break;
		case O_DRAIN:
			if (parse_long(optarg, 0, 600000, &f->drain_timeout_ms) < 0) {
				fprintf(stderr,
					"mediabatchd: --drain-timeout: '%s' is not 0..600000 ms\n",
					optarg);
				return -1;
			}
			break;
		case O_WORKERS:
			if (parse_long(optarg, 0, 256, &f->workers) < 0) {
				fprintf(stderr,
					"mediabatchd: --workers: '%s' is not 0..256 (0: auto)\n",
					optarg);
				return -1;
			}
			break;
		case 'V':
			printf("mediabatchd %s (CUDA %s)\n", MB_VERSION,
			       MB_HAVE_CUDA ? "yes" : "no");
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mediabatchd: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

/* Flags override the file, checked by the same rules (mb_config_set_flag(): messages then
 * name the flag, not the key). */
static int
apply_flags(const struct flags *f, struct mb_config *cfg)
{
	const struct {
		const char *flag, *value;
	} strings[] = {
		{"--ingest", f->ingest},       {"--publish", f->publish},
		{"--metrics", f->metrics},     {"--log-level", f->log_level},
		{"--placement", f->placement},
	};
	char why[512];

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (strings[i].value == NULL)
			continue;
		if (mb_config_set_flag(cfg, strings[i].flag, strings[i].value, why, sizeof(why)) <
		    0) {
			fprintf(stderr, "mediabatchd: %s: %s\n", strings[i].flag, why);
			return -1;
		}
	}
	/* the file's endpoints were checked against each other at its load; the flags may have
	 * moved one onto another's socket */
	if ((f->ingest != NULL || f->publish != NULL || f->metrics != NULL) &&
	    mb_config_check_endpoints(cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "mediabatchd: --ingest, --publish, --metrics: %s\n", why);
		return -1;
	}
	if (f->drain_timeout_ms >= 0)
		cfg->drain_timeout_ms = (uint32_t)f->drain_timeout_ms;
	if (f->workers >= 0)
		cfg->cpu_workers = (uint32_t)f->workers;
	return 0;
}

static int
start_eal(const struct mb_config *cfg)
{
	static char vdev_buf[4096];
	static const char *vdevs[16];
	struct mb_eal_opts eo;
	int n;

	mb_eal_opts_init(&eo);
	n = mb_udp_eal_vdevs(cfg, vdev_buf, sizeof(vdev_buf), vdevs, 16);
	if (n < 0) {
		fprintf(stderr, "mediabatchd: udp.ports: too many virtual devices\n");
		return n;
	}
	eo.extra = vdevs;
	eo.n_extra = (unsigned int)n;
	eo.name = "mediabatchd";
	eo.mem_mb = cfg->eal_memory_mb;
	if (cfg->n_eal_args != 0) {
		eo.args = (const char *const *)cfg->eal_args;
		eo.n_args = cfg->n_eal_args;
	}
	return mb_eal_init(&eo);
}

static void
start_thread(pthread_t *t, const char *name, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);

	if (rc != 0) {
		MB_LOG(ERR, "cannot start thread %s: %s", name, strerror(rc));
		exit(EXIT_START);
	}
	pthread_setname_np(*t, name);
}

/* Start the threads of worker slots @p from.. (all at start; a watchdog's replacements
 * later), growing @p threads to hold them. */
static pthread_t *
start_workers(struct mb_service *svc, pthread_t *threads, uint32_t from)
{
	uint32_t n = service_workers(svc);
	pthread_t *t = realloc(threads, (n ? n : 1) * sizeof(*t));

	if (t == NULL) {
		MB_LOG(ERR, "cannot start worker threads: out of memory");
		exit(EXIT_START);
	}
	for (uint32_t i = from; i < n; i++) {
		char name[32];

		service_worker_name(svc, i, name, sizeof(name));
		start_thread(&t[i], name, service_worker_thread, service_worker_arg(svc, i));
	}
	return t;
}

/*
 * SIGINT/SIGTERM are blocked in every thread this program starts and taken by the main
 * thread's sigtimedwait(). Threads that libraries start before main() runs (OpenBLAS
 * starts its pool from a constructor) do not have them blocked, and the kernel hands a
 * process signal to any thread that does not block it when the main thread is not inside
 * sigtimedwait() at that moment. Caught there, the default action would kill the daemon
 * in the middle of its drain: this handler records the signal instead, and the main loop
 * takes it on its next tick (at most 100 ms later) as if sigtimedwait() had returned it.
 */
static atomic_uint g_caught_stop;      /* SIGINT/SIGTERM this handler caught */
static atomic_int g_caught_stop_signo; /* the last of them */
static atomic_uint g_caught_hup;       /* SIGHUP (a reload: counted apart from stops) */

/* What --check found, for its report. */
struct checked {
	char devices[256], place[1024], security[1024], heap[512];
	bool devices_here; /* false: on this host the start would stop or serve nothing */
};

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* snprintf() into @p buf, cut at @p len (config.source can be a path of 4 KiB) */
static void
say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/*
 * What --check checks beyond the file's own rules (service_check_models() first): every
 * model it enables loads, the devices, the placement, the security files, the DPDK heap.
 * Returns 0 with the findings in @p ck, or -errno with "FILE: why" in @p err: the start
 * would stop, or start with a model disabled. A reload (@p running: the service) asks the
 * same of its file, but does not load again a model it serves from the same weights path
 * and plugin, their files unchanged (service_check_load()); --check passes NULL.
 */
static int
check_file(const struct mb_config *cfg, const struct mb_service *running, struct checked *ck,
	   char *err, size_t len)
{
	char why[2048];
	int rc;

	if ((rc = service_check_load(cfg, running, why, sizeof(why))) < 0) {
		say(err, len, "%s: %s", cfg->source, why);
		return rc;
	}
	/* this host's GPUs: a warning, not a verdict on the file (it may be for another host) */
	ck->devices_here = service_check_devices(cfg, ck->devices, sizeof(ck->devices)) == 0;
	if ((rc = service_check_placement(cfg, ck->place, sizeof(ck->place))) < 0) {
		if (strcmp(mb_config_origin(cfg, "service.placement"), "--placement") == 0)
			say(err, len, "--placement %s: %s",
			    mb_placement_policy_name((enum mb_placement_policy)cfg->placement),
			    ck->place); /* not the file's doing */
		else
			say(err, len, "%s: service.placement: %s", cfg->source, ck->place);
		return rc;
	}
	if ((rc = service_check_security(cfg, true, ck->security, sizeof(ck->security))) < 0) {
		say(err, len, "%s: %s", cfg->source, ck->security);
		return rc;
	}
	if ((rc = service_check_heap(cfg, ck->heap, sizeof(ck->heap))) < 0) {
		say(err, len,
		    "%s: the DPDK heap is too small: it needs %s: raise %s or lower those",
		    cfg->source, ck->heap,
		    cfg->n_eal_args != 0 ? "-m in eal.args" : "eal.memory_mb");
		return rc;
	}
	return 0;
}

/* Values in range that are doubtful (mb_config_doubts()): a WARNING line each, printed
 * (--check, @p check) or logged (the start). */
static void
warn_doubts(const struct mb_config *cfg, bool check)
{
	char doubts[4096];

	if (mb_config_doubts(cfg, doubts, sizeof(doubts)) == 0)
		return;
	for (char *line = doubts, *next; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (check)
			printf("mediabatchd: WARNING: %s: %s\n", cfg->source, line);
		else
			MB_LOG(WARNING, "%s: %s", cfg->source, line);
	}
}

/*
 * SIGHUP: read the --config file again and apply what can change while running (the
 * tenants' rate limits; each model's max_batch, max_delay_us, queue_limit and
 * default_timeout_ms). A file that does not load, or asks for what only a restart can do,
 * changes nothing; the log line says why either way.
 */
static void
reload(const struct flags *f, struct mb_service *svc)
{
	struct mb_config n;
	struct checked ck;
	char msg[2560] = "the command line's flags do not apply to it"; /* apply_flags()'s */

	if (f->config == NULL) {
		service_reload_failed(svc);
		MB_LOG(WARNING, "SIGHUP: nothing to reload: started without --config");
		return;
	}
	mb_config_defaults(&n);
	/* the file as the next start with these flags would take it (they were checked then) */
	if (mb_config_load(&n, f->config, msg, sizeof(msg)) < 0 || apply_flags(f, &n) < 0 ||
	    service_check_models(&n, msg, sizeof(msg)) < 0) {
		service_reload_failed(svc); /* counted before the log line, as the others */
		MB_LOG(ERR, "SIGHUP: reload refused, the running settings stay: %s", msg);
	} else if (check_file(&n, svc, &ck, msg, sizeof(msg)) < 0) {
		/* what only the next start would take must start then: --check's verdict */
		service_reload_failed(svc);
		MB_LOG(ERR,
		       "SIGHUP: reload refused, the running settings stay: the file would not "
		       "start (as --check says): %s",
		       msg);
	} else if (service_reload(svc, &n, msg, sizeof(msg)) < 0) {
		MB_LOG(ERR, "SIGHUP: reload refused, the running settings stay: %s", msg);
	} else {
		MB_LOG(NOTICE, "SIGHUP: reloaded %s: %s", f->config, msg);
	}
	mb_config_fini(&n);
}

/*
 * Memory back to the system once the daemon is idle (docs/operating.md, "Memory: what
 * holds it and what sizes it"). After a flood, most of what the daemon grew by is memory
 * glibc has been given back but keeps: payloads are malloc'd by ZeroMQ's I/O thread in its
 * own arena and freed by the front door, results malloc'd by the workers; glibc returns a
 * heap only from its top, and once a large payload has been mmapped and freed it raises its
 * mmap threshold to that size (up to 32 MiB), so later, smaller payloads come from the heap
 * and stay there when freed. malloc_trim(0) gives back every free page inside every arena
 * (MADV_DONTNEED) and the top of the main heap; a thread arena keeps free space at its top
 * up to glibc's trim threshold (twice that mmap threshold).
 *
 * It runs on this thread: once at start (what loading the models left free), then whenever
 * the daemon has been idle for TRIM_IDLE_NS having grown by TRIM_MIN_GROWTH_KIB since the
 * last trim or its lowest idle RSS: at most once per idle period, never on a request's path
 * (a request arriving during a trim may wait for an arena's lock: trims took 0.1 to 55 ms
 * here). Fixing the mmap threshold instead (mallopt(M_MMAP_THRESHOLD)) would give large
 * payloads back at once, but pays an mmap, page faults and a munmap for each of them:
 * measured, 4 MiB payloads ran at half the rate. The DPDK heap (eal.memory_mb, or the
 * hugepages eal.args gives) is reserved at start and never given back; the models' weights
 * and the workers' buffers are in use.
 */
#define TRIM_IDLE_NS (1000 * MB_NS_PER_MS)
#define TRIM_TICK_NS (10 * MB_NS_PER_MS)
#define TRIM_MIN_GROWTH_KIB (16 * 1024)
#define TRIM_STILL_KIB 1024

struct idle_trim {
	uint64_t idle_since_ns; /* start of this idle period; 0: busy */
	long idle_rss_kib;	/* the RSS then */
	long floor_kib;		/* lowest RSS seen idle, or right after the last trim; -1 */
	bool due;		/* grown past the floor: look more often (TRIM_TICK_NS) */
};

/* The process's resident set in KiB (/proc/self/statm; no allocation), or -1. */
static long
rss_kib(void)
{
	char buf[128];
	long pages;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%*s %ld", &pages) != 1 || pages < 0)
		return -1;
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* malloc_trim(0), and where the RSS is now: the floor that later growth is measured from. */
static void
trim(struct idle_trim *t, const char *when, long rss)
{
	uint64_t t0 = mb_env_now_ns();
	long after;

	malloc_trim(0);
	after = rss_kib();
	t->floor_kib = after;
	t->due = false;
	MB_LOG(DEBUG, "%s: malloc_trim gave back %ld KiB (RSS %ld -> %ld KiB) in %.1f ms", when,
	       rss - after, rss, after, (double)(mb_env_now_ns() - t0) / 1e6);
}

/*
 * One tick of the main loop: trim once the daemon has been idle for TRIM_IDLE_NS and has
 * grown. Idle: nothing in flight and the RSS still. The second half matters for large
 * payloads: each is in flight for a fraction of a millisecond after ZeroMQ took several to
 * receive it, so a stream of them can look idle at every tick, while the memory they pass
 * through moves the RSS by megabytes.
 */
static void
trim_when_idle(struct idle_trim *t, const struct mb_service *svc, uint64_t now)
{
	long rss;

	if (service_inflight(svc) != 0 || (rss = rss_kib()) < 0) {
		t->idle_since_ns = 0;
		t->due = false; /* busy: the 100 ms tick until idle again */
		return;
	}
	if (t->floor_kib < 0 || rss < t->floor_kib)
		t->floor_kib = rss;
	if (t->idle_since_ns == 0 || labs(rss - t->idle_rss_kib) > TRIM_STILL_KIB) {
		t->idle_since_ns = now;
		t->idle_rss_kib = rss;
	}
	t->due = rss >= t->floor_kib + TRIM_MIN_GROWTH_KIB;
	if (!t->due || now - t->idle_since_ns < TRIM_IDLE_NS)
		return;
	trim(t, "idle", rss);
}

/*
 * systemd's notification protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET per state
 * change; nothing when the variable is unset (not under systemd). With libsystemd it is
 * sd_notify(); without, the same datagram sent here (the protocol is documented as stable).
 */
static void
notify(const char *state)
{
#if MB_HAVE_SYSTEMD
	sd_notify(0, state);
#else
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
#endif
}

/* The watchdog interval systemd asks for (WATCHDOG_USEC, for this process if WATCHDOG_PID
 * is set), in ns; 0: no watchdog. */
static uint64_t
watchdog_ns(void)
{
#if MB_HAVE_SYSTEMD
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec * 1000 : 0;
#else
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	long long v, p;

	if (usec == NULL || sscanf(usec, "%lld", &v) != 1 || v <= 0)
		return 0;
	if (pid != NULL && (sscanf(pid, "%lld", &p) != 1 || p != (long long)getpid()))
		return 0;
	return (uint64_t)v * 1000;
#endif
}

#define STATUS_EVERY_NS (5000 * MB_NS_PER_MS)

/* STATUS=: what `systemctl status` shows under the unit's name. */
static void
notify_status(const char *what, const struct mb_service *svc)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "STATUS=%s: %u request(s) in flight", what,
		 service_inflight(svc));
	notify(msg);
}

static void
caught(int signo)
{
	if (signo == SIGHUP) {
		atomic_fetch_add(&g_caught_hup, 1);
		return;
	}
	atomic_store(&g_caught_stop_signo, signo);
	atomic_fetch_add(&g_caught_stop, 1);
}

int
main(int argc, char **argv)
{
	struct flags flags;
	struct mb_config cfg;
	struct mb_service *svc = NULL;
	pthread_t *reactors, *workers;
	sigset_t sigs;
	char err[1024], desc[512];
	uint64_t deadline = 0;
	struct idle_trim trim_state = {0, 0, -1, false};
	uint32_t n_started, left_behind = 0;
	bool draining = false, aborted = false, quiet_cut = false;
	unsigned int stops_seen = 0, hups_seen = 0;
	struct sigaction sa = {.sa_handler = caught, .sa_flags = SA_RESTART};
	uint64_t wd_every_ns = watchdog_ns() / 2, wd_next = 0, status_next = 0;
	bool alive, was_alive = true;
	char why[320];
	int rc;

	signal(SIGHUP, SIG_IGN); /* a reload before the handler is in place must not kill us */
	if (parse_flags(argc, argv, &flags) < 0)
		return EXIT_CONFIG;
	if (flags.log_format >= 0)
		mb_log_set_format(flags.log_format);
	mb_config_defaults(&cfg);
	if (flags.config != NULL && mb_config_load(&cfg, flags.config, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatchd: %s\n", err);
		return EXIT_CONFIG;
	}
	if (flags.log_format < 0 && cfg.log_format >= 0) /* the flag wins over the file */
		mb_log_set_format(cfg.log_format);
	if (apply_flags(&flags, &cfg) < 0) {
		mb_config_fini(&cfg);
		return EXIT_CONFIG;
	}
	if (service_check_models(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatchd: %s\n", err);
		mb_config_fini(&cfg);
		return EXIT_CONFIG;
	}
	if (flags.check) {
		struct checked ck;
		char exposed[1024];

		if (check_file(&cfg, NULL, &ck, err, sizeof(err)) < 0) {
			fprintf(stderr, "mediabatchd: %s\n", err);
			mb_config_fini(&cfg);
			return EXIT_CONFIG;
		}
		printf("mediabatchd: %s: configuration is valid (every model it enables loads)\n",
		       cfg.source);
		if (ck.devices_here)
			printf("mediabatchd: devices: %s\n", ck.devices);
		else
			printf("mediabatchd: WARNING: devices on this host: %s\n", ck.devices);
		/* "placement (--placement single)" where the flag chose it (operator audit L4) */
		printf("mediabatchd: placement (%s %s): %s\n",
		       mb_config_origin(&cfg, "service.placement"),
		       mb_placement_policy_name((enum mb_placement_policy)cfg.placement), ck.place);
		printf("mediabatchd: security: %s\n", ck.security);
		if (service_check_http_exposure(&cfg, exposed, sizeof(exposed)))
			printf("mediabatchd: WARNING: %s\n", exposed);
		if (service_check_model_keys(&cfg, err, sizeof(err)) > 0)
			printf("mediabatchd: WARNING: %s: %s\n", cfg.source, err);
		warn_doubts(&cfg, true);
		printf("mediabatchd: DPDK heap: %s\n", ck.heap);
		mb_config_fini(&cfg);
		return 0;
	}
	mb_log_set_level((unsigned int)cfg.log_level);
	if (service_check_http_exposure(&cfg, err, sizeof(err))) /* as --check prints it */
		MB_LOG(WARNING, "%s", err);
	if (service_check_model_keys(&cfg, err, sizeof(err)) > 0)
		MB_LOG(WARNING, "%s: %s", cfg.source, err);
	warn_doubts(&cfg, false);

	/* The files the configuration names (the server's key, the allow-list's keys, the HTTP
	 * endpoint's TLS pair and token), read and checked as --check does, before anything
	 * starts: one that is missing, unreadable, insecure or malformed is a configuration
	 * error (exit 2), whatever errno the read failed with. */
	rc = service_check_security(&cfg, true, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mediabatchd: %s: %s\n", cfg.source, err);
		mb_config_fini(&cfg);
		return rc == -ENOMEM ? EXIT_START : EXIT_CONFIG;
	}

	/* Signals go to this thread only (sigtimedwait below); threads inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (start_eal(&cfg) < 0) {
		fprintf(stderr,
			"mediabatchd: DPDK EAL failed to start (see the EAL messages above)\n");
		mb_config_fini(&cfg);
		return EXIT_START;
	}
	rc = service_create(&cfg, &svc, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mediabatchd: %s\n", err);
		mb_eal_fini();
		mb_config_fini(&cfg);
		return rc == -EINVAL ? EXIT_CONFIG : EXIT_START;
	}
	/* before any thread starts, so that a failure tears down what is built (static audit
	 * B2: it returned with the service, EAL and the configuration held) */
	reactors = calloc(service_reactors(svc), sizeof(*reactors));
	if (reactors == NULL) {
		fprintf(stderr, "mediabatchd: cannot start the polled threads: out of memory\n");
		service_destroy(&svc);
		mb_eal_fini();
		mb_config_fini(&cfg);
		return EXIT_START;
	}
	workers = start_workers(svc, NULL, 0);
	n_started = service_workers(svc);
	for (uint32_t i = 0; i < service_reactors(svc); i++) {
		char name[16];

		service_reactor_name(svc, i, name, sizeof(name));
		start_thread(&reactors[i], name, service_reactor_thread,
			     service_reactor_arg(svc, i));
	}
	trim(&trim_state, "started", rss_kib()); /* what loading the models left free */
	service_set_ready(svc, true);
	service_describe(svc, desc, sizeof(desc));
	MB_LOG(NOTICE, "mediabatchd %s ready (%s): %s", MB_VERSION, cfg.source, desc);
	notify_status("serving", svc);
	notify("READY=1");
	if (wd_every_ns != 0) {
		notify("WATCHDOG=1");
		MB_LOG(INFO, "systemd watchdog: a ping every %" PRIu64 " ms",
		       wd_every_ns / MB_NS_PER_MS);
	}
	status_next = mb_env_now_ns() + STATUS_EVERY_NS;
	wd_next = mb_env_now_ns() + wd_every_ns;

	/* Wait for signals; once draining, also for the front door to finish. */
	for (;;) {
		uint64_t wait_ns = 100 * MB_NS_PER_MS, now = mb_env_now_ns();
		struct timespec tick;
		int sig;

		if (trim_state.due && !draining)
			wait_ns = TRIM_TICK_NS;
		alive = service_tick(svc, now, why, sizeof(why));
		if (alive != was_alive) {
			if (!alive)
				MB_LOG(ERR, "not live: %s; /healthz answers 503%s", why,
				       wd_every_ns != 0
					       ? " and the systemd watchdog is no longer pinged"
					       : "");
			else
				MB_LOG(NOTICE, "live again: every polled thread turns");
			was_alive = alive;
		}
		if (wd_every_ns != 0 && now >= wd_next && alive) { /* every loop still turns */
			notify("WATCHDOG=1");
			wd_next = now + wd_every_ns;
		}
		if (now >= status_next) {
			notify_status(draining ? "draining" : "serving", svc);
			status_next = now + STATUS_EVERY_NS;
		}

		/* Wake at the drain deadline itself, so --drain-timeout is kept to the ms. */
		if (draining && !aborted)
			wait_ns = deadline > now
					  ? (deadline - now < wait_ns ? deadline - now : wait_ns)
					  : 0;
		tick.tv_sec = 0;
		tick.tv_nsec = (long)(wait_ns ? wait_ns : 1);
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig <= 0 && atomic_load(&g_caught_stop) != stops_seen) { /* another thread's */
			stops_seen++;
			sig = atomic_load(&g_caught_stop_signo);
		} else if (sig <= 0 && atomic_load(&g_caught_hup) != hups_seen) {
			hups_seen = atomic_load(&g_caught_hup); /* several reloads: one will do */
			sig = SIGHUP;
		}

		if (sig == SIGHUP) {
			if (draining)
				MB_LOG(NOTICE, "SIGHUP while draining: ignored");
			else
				reload(&flags, svc);
			sig = 0;
		}
		if (sig > 0 && !draining) {
			draining = true;
			deadline =
				mb_env_deadline_in((uint64_t)cfg.drain_timeout_ms * MB_NS_PER_MS);
			MB_LOG(NOTICE,
			       "%s: draining %u request(s) for up to %u ms; send it again to stop "
			       "now",
			       strsignal(sig), service_inflight(svc), cfg.drain_timeout_ms);
			notify("STOPPING=1");
			notify_status("draining", svc);
			service_drain(svc);
		} else if (sig > 0 && !aborted) {
			aborted = true;
			MB_LOG(WARNING, "%s again: stopping now; what has not started is CANCELLED",
			       strsignal(sig));
			service_abort(svc);
		}
		/* The deadline cuts what is left: requests in flight (exit 3), or, with none, a
		 * front door still waiting for the ROUTER to go quiet while clients keep sending
		 * (each answered UNAVAILABLE): it stops reading, and the drain is clean (exit 0:
		 * nothing was cut). */
		if (draining && !aborted && !quiet_cut && mb_env_now_ns() >= deadline) {
			if (service_inflight(svc) != 0) {
				aborted = true;
				MB_LOG(WARNING,
				       "drain timeout (%u ms) with %u request(s) left: stopping; "
				       "what has not started is CANCELLED",
				       cfg.drain_timeout_ms, service_inflight(svc));
			} else {
				quiet_cut = true;
				MB_LOG(NOTICE,
				       "drain timeout (%u ms) with nothing in flight: the front "
				       "door "
				       "stops waiting for the ROUTER to go quiet (what arrived was "
				       "answered UNAVAILABLE)",
				       cfg.drain_timeout_ms);
			}
			service_abort(svc);
		}
		if (service_watch(svc) != 0) /* a worker hung: its replacement starts */
			workers = start_workers(svc, workers, n_started);
		n_started = service_workers(svc);
		if (!draining)
			trim_when_idle(&trim_state, svc, mb_env_now_ns());
		if (draining &&
		    pthread_tryjoin_np(reactors[service_frontdoor_reactor(svc)], NULL) == 0)
			break;
	}
	for (uint32_t i = 0; i < service_reactors(svc); i++)
		if (i != service_frontdoor_reactor(svc))
			pthread_join(reactors[i], NULL);
	free(reactors);
	for (uint32_t i = 0; i < service_workers(svc); i++) {
		if (!service_worker_left(svc, i))
			pthread_join(workers[i], NULL);
		else if (pthread_tryjoin_np(workers[i], NULL) != 0)
			left_behind++; /* still inside a hung run() */
	}
	free(workers);
	if (left_behind != 0) {
		/* Its thread may still use the model, the device and its requests: nothing is
		 * torn down under it, and the process ends here. */
		MB_LOG(WARNING,
		       "stopped: every request answered%s; %u worker thread(s) still inside a hung "
		       "model run() are left behind",
		       aborted ? " (drain cut short)" : ", clean drain", left_behind);
		fflush(NULL);
		_exit(aborted ? EXIT_CUT_SHORT : 0);
	}
	MB_LOG(NOTICE, "stopped: every request answered%s",
	       aborted ? " (drain cut short)" : ", clean drain");
	service_destroy(&svc);
	mb_eal_fini();
	mb_config_fini(&cfg);
	return aborted ? EXIT_CUT_SHORT : 0;
}
