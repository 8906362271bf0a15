/*
 * mb_e2e.c: the end-to-end harness (see mb_e2e.h): ports, config, fork/exec, readiness,
 * HTTP scraping, stopping, the CLI.
 */
#include "mb_e2e.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double
mb_e2e_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

int
mb_e2e_free_ports(int *ports, int n)
{
	int fds[8];

	if (n < 1 || n > 8)
		return -1;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof(a);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
			return -1;
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

/* The last @p len - 1 bytes of the file at @p path, NUL-terminated, into @p buf. */
static const char *
read_tail(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);

		fseek(f, size > (long)len - 1 ? size - (long)len + 1 : 0, SEEK_SET);
	}
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

const char *
mb_daemon_log(const struct mb_daemon *d)
{
	static char buf[65536];

	return read_tail(d->log, buf, sizeof(buf));
}

/*
 * The watchdog: a thread per running daemon that waits for it to exit (without reaping it).
 * An exit the test did not ask for (a crash, a sanitizer report under halt_on_error) would
 * otherwise leave the test waiting for replies until meson's time limit; the watchdog prints
 * how the daemon ended and its log, and ends the test program at once with a failure.
 */
struct mb_daemon_watch {
	pid_t pid;
	atomic_bool expected; /* set before every signal or wait that may end the daemon */
	pthread_t thread;
	char log[64];
};

static void *
watch_main(void *arg)
{
	struct mb_daemon_watch *w = arg;
	static char buf[65536];
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR)
		;
	if (atomic_load(&w->expected))
		return NULL;
	fprintf(stderr,
		"\ne2e: mediabatchd (pid %d) %s %d while the test was still using it; its log:\n"
		"%s\ne2e: failing the test program now\n",
		(int)w->pid, si.si_code == CLD_EXITED ? "exited with status" : "died of signal",
		si.si_status, read_tail(w->log, buf, sizeof(buf)));
	fflush(NULL);
	_exit(1);
}

static void
watch_start(struct mb_daemon *d)
{
	struct mb_daemon_watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return; /* the test goes on without the watchdog */
	w->pid = d->pid;
	atomic_init(&w->expected, false);
	snprintf(w->log, sizeof(w->log), "%s", d->log);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		free(w);
		return;
	}
	d->watch = w;
}

/* after the daemon was reaped: the thread has returned or returns at once */
static void
watch_end(struct mb_daemon *d)
{
	if (d->watch == NULL)
		return;
	atomic_store(&d->watch->expected, true);
	pthread_join(d->watch->thread, NULL);
	free(d->watch);
	d->watch = NULL;
}

void
mb_daemon_expect_exit(struct mb_daemon *d)
{
	if (d->watch != NULL)
		atomic_store(&d->watch->expected, true);
}

/* a line of @p yaml that starts with "devices:" (a top-level key) */
static bool
has_devices_section(const char *yaml)
{
	const char *p = yaml;

	while (p != NULL) {
		if (strncmp(p, "devices:", 8) == 0)
			return true;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return false;
}

/* One try of mb_daemon_start(): -2 when a port chosen as free was taken by someone else
 * before the daemon bound it (the ports are found free, then handed over: other tests
 * running at once can take one in between), -1 for any other failure. */
static int
start_once(struct mb_daemon *d, const char *yaml, const char *const *args)
{
	const char *bin = getenv("MB_DAEMON");
	int ports[3], fd;
	double deadline;
	char *argv[32];
	int argc = 0;

	memset(d, 0, sizeof(*d));
	if (bin == NULL) {
		fprintf(stderr, "e2e: MB_DAEMON is not set (run through meson test)\n");
		return -1;
	}
	if (mb_e2e_free_ports(ports, 3) < 0)
		return -1;
	d->port_ingest = ports[0];
	d->port_publish = ports[1];
	d->port_http = ports[2];
	snprintf(d->ingest, sizeof(d->ingest), "tcp://127.0.0.1:%d", ports[0]);
	snprintf(d->publish, sizeof(d->publish), "tcp://127.0.0.1:%d", ports[1]);
	snprintf(d->metrics, sizeof(d->metrics), "127.0.0.1:%d", ports[2]);
	snprintf(d->config, sizeof(d->config), "/tmp/mb_e2e_cfg_XXXXXX");
	fd = mkstemp(d->config);
	if (fd < 0)
		return -1;
	if (yaml != NULL && write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml))
		return -1;
	if (yaml == NULL || !has_devices_section(yaml)) {
		static const char cpu_only[] = "\ndevices:\n  cuda: {mode: \"off\"}\n";

		if (write(fd, cpu_only, strlen(cpu_only)) != (ssize_t)strlen(cpu_only))
			return -1;
	}
	close(fd);
	snprintf(d->log, sizeof(d->log), "/tmp/mb_e2e_log_XXXXXX");
	fd = mkstemp(d->log);
	if (fd < 0)
		return -1;

	argv[argc++] = (char *)bin;
	argv[argc++] = "--config";
	argv[argc++] = d->config;
	argv[argc++] = "--ingest";
	argv[argc++] = d->ingest;
	argv[argc++] = "--publish";
	argv[argc++] = d->publish;
	argv[argc++] = "--metrics";
	argv[argc++] = d->metrics;
	/* The whole e2e suite runs under each placement (tests/run-all.sh): all pollers on
	 * one thread, or one thread per stage. A test's own --placement comes later and wins. */
	if (getenv("MB_E2E_PLACEMENT") != NULL && getenv("MB_E2E_PLACEMENT")[0] != '\0') {
		argv[argc++] = "--placement";
		argv[argc++] = getenv("MB_E2E_PLACEMENT");
	}
	for (int i = 0; args != NULL && args[i] != NULL && argc < 30; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0) {
		/* If the test program dies (a crash, a sanitizer halt), the daemon goes too. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, argv);
		perror("execv");
		_exit(127);
	}
	close(fd);
	deadline = mb_e2e_now() + 30.0; /* sanitizer builds start slowly */
	while (mb_e2e_now() < deadline) {
		char body[256];
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			if (strstr(mb_daemon_log(d), "Address already in use") != NULL) {
				unlink(d->config);
				unlink(d->log);
				return -2;
			}
			fprintf(stderr, "e2e: mediabatchd exited during start-up:\n%s\n",
				mb_daemon_log(d));
			return -1;
		}
		status = mb_http_get(d->port_http, "/readyz", body, sizeof(body));
		/* started: ready, or not ready for a reason other than starting (a model that
		 * failed to load, which some tests set up on purpose) */
		if (status == 200 || (status == 503 && strstr(body, "starting") == NULL)) {
			watch_start(d);
			return 0;
		}
		nap_ms(20);
	}
	fprintf(stderr, "e2e: mediabatchd not ready after 30 s:\n%s\n", mb_daemon_log(d));
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	return -1;
}

int
mb_daemon_start(struct mb_daemon *d, const char *yaml, const char *const *args)
{
	int rc = -2;

	for (int tries = 0; rc == -2 && tries < 5; tries++)
		rc = start_once(d, yaml, args);
	if (rc == -2)
		fprintf(stderr, "e2e: mediabatchd: its ports were taken 5 times in a row\n");
	return rc < 0 ? -1 : 0;
}

void
mb_daemon_signal(struct mb_daemon *d, int sig)
{
	if (d->pid <= 0)
		return;
	if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGKILL)
		mb_daemon_expect_exit(d);
	kill(d->pid, sig);
}

int
mb_daemon_wait(struct mb_daemon *d, double seconds)
{
	double deadline = mb_e2e_now() + seconds;
	int status;

	if (d->pid <= 0)
		return -1;
	mb_daemon_expect_exit(d);
	while (mb_e2e_now() < deadline) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			watch_end(d);
			unlink(d->config);
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			return 128 + WTERMSIG(status);
		}
		nap_ms(10);
	}
	fprintf(stderr, "e2e: mediabatchd did not exit within %.0f s; killing it. Log:\n%s\n",
		seconds, mb_daemon_log(d));
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	watch_end(d);
	return -1;
}

int
mb_daemon_stop(struct mb_daemon *d, int sig, double seconds)
{
	mb_daemon_signal(d, sig);
	return mb_daemon_wait(d, seconds);
}

int
mb_http_get(int port, const char *path, char *body, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[256], *buf;
	size_t got = 0, cap = 1 << 20;
	int fd, status = -1;
	struct timeval tv = {.tv_sec = 5};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -1;
	}
	buf = malloc(cap + 1);
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == cap)
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) == 1 && body != NULL && len > 0) {
		char *b = strstr(buf, "\r\n\r\n");

		snprintf(body, len, "%s", b ? b + 4 : "");
	}
	free(buf);
	return status;
}

double
mb_metric_value_of(const char *metrics, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = metrics; (p = strstr(p, series)) != NULL; p += n)
		if ((p == metrics || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

double
mb_daemon_metric(const struct mb_daemon *d, const char *series)
{
	static char body[1 << 20];

	if (mb_http_get(d->port_http, "/metrics", body, sizeof(body)) != 200)
		return -1;
	return mb_metric_value_of(body, series);
}

double
mb_daemon_inflight_settled(const struct mb_daemon *d, double seconds)
{
	double deadline = mb_e2e_now() + seconds;
	double v = mb_daemon_metric(d, "mediabatch_inflight");

	while (v != 0 && mb_e2e_now() < deadline) {
		nap_ms(20);
		v = mb_daemon_metric(d, "mediabatch_inflight");
	}
	return v;
}

bool
mb_daemon_wait_subscriptions(const struct mb_daemon *d, double n, double seconds)
{
	double deadline = mb_e2e_now() + seconds;

	while (mb_daemon_metric(d, "mediabatch_pub_subscriptions") < n) {
		if (mb_e2e_now() > deadline)
			return false;
		nap_ms(20);
	}
	return true;
}

struct mb_client *
mb_e2e_client(const struct mb_daemon *d, const char *client_id)
{
	struct mb_client_opts o = {.endpoint = d->ingest, .client_id = client_id};
	struct mb_client *c = NULL;
	char err[256];

	if (mb_client_connect(&o, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "e2e: client: %s\n", err);
	return c;
}

uint8_t *
mb_e2e_tone(double seconds, uint32_t *bytes)
{
	uint32_t n = (uint32_t)(seconds * 16000);
	uint8_t *b = malloc((size_t)n * 2 + 2);

	for (uint32_t i = 0; i < n; i++) {
		int16_t s = (int16_t)lrint(12000 * sin(2 * M_PI * 440 * i / 16000.0));

		b[2 * i] = (uint8_t)s;
		b[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
	}
	*bytes = n * 2;
	return b;
}

/* Run @p bin with @p args; its stdout+stderr in @p out; its exit status. With @p seconds > 0,
 * a program still running after that long is killed (SIGKILL) and -1 returned. */
static int
run_program(const char *bin, const char *const *args, double seconds, char *out, size_t len)
{
	double deadline = mb_e2e_now() + seconds;
	char *argv[48];
	int argc = 0, pipefd[2], status;
	size_t got = 0;
	bool killed = false;
	pid_t pid;

	if (bin == NULL || pipe(pipefd) != 0)
		return -1;
	argv[argc++] = (char *)bin;
	for (int i = 0; args[i] != NULL && argc < 46; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (seconds > 0) /* a daemon: it goes if the test program dies */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		execv(bin, argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		char chunk[4096];
		ssize_t n;
		size_t keep;

		if (seconds > 0 && !killed) {
			double left = deadline - mb_e2e_now();

			if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) == 0) {
				kill(pid, SIGKILL); /* the pipe ends with it */
				killed = true;
				continue;
			}
		}
		n = read(pipefd[0], chunk, sizeof(chunk));
		if (n <= 0)
			break;
		/* keep what fits, but read to the end so the child never blocks on a full pipe */
		keep = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;
		memcpy(out + got, chunk, keep);
		got += keep;
	}
	out[got] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	if (killed) {
		fprintf(stderr, "e2e: %s still ran after %.0f s: killed. Its output:\n%s\n", bin,
			seconds, out);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
mb_e2e_cli(const char *const *args, char *out, size_t len)
{
	return run_program(getenv("MB_CLI"), args, 0, out, len);
}

int
mb_e2e_daemon_cmd(const char *const *args, char *out, size_t len)
{
	return run_program(getenv("MB_DAEMON"), args, 0, out, len);
}

int
mb_e2e_daemon_cmd_within(const char *const *args, double seconds, char *out, size_t len)
{
	return run_program(getenv("MB_DAEMON"), args, seconds, out, len);
}

int
mb_e2e_perf(const char *const *args, char *out, size_t len)
{
	return run_program(getenv("MB_PERF"), args, 0, out, len);
}

long
mb_e2e_status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kib = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}
