/*
 * mb_faults.c: the fault suite's helpers (see mb_faults.h): the exactly-once ledger, the
 * daemon's resources from /proc, metric sums, windowed identity traffic, summary lines.
 */
#include "mb_faults.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

double
mb_faults_slow(void)
{
	return MB_FAULTS_SANITIZER ? 8.0 : 1.0;
}

static double
env_double(const char *name)
{
	const char *v = getenv(name);
	char *end;
	double x;

	if (v == NULL || *v == '\0')
		return 0;
	x = strtod(v, &end);
	return end != v && x > 0 ? x : 0;
}

double
mb_faults_seconds(double dflt)
{
	double s = env_double("MB_FAULTS_SECONDS");

	return s > 0 ? s : dflt;
}

bool
mb_faults_long(void)
{
	return env_double("MB_FAULTS_SECONDS") > 0;
}

int
mb_faults_repeat(int dflt)
{
	double r = env_double("MB_FAULTS_REPEAT");

	return r >= 1 ? (int)r : dflt;
}

void
mb_faults_nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- the exactly-once ledger ---- */

int
mb_faults_ids_init(struct mb_faults_ids *t)
{
	memset(t, 0, sizeof(*t));
	t->cap = 1 << 16;
	t->sent = calloc(t->cap, 1);
	t->answers = calloc(t->cap, 1);
	t->status = calloc(t->cap, 1);
	return t->sent != NULL && t->answers != NULL && t->status != NULL ? 0 : -1;
}

void
mb_faults_ids_free(struct mb_faults_ids *t)
{
	free(t->sent);
	free(t->answers);
	free(t->status);
	t->sent = t->answers = t->status = NULL;
	t->cap = 0;
}

static int
grow(struct mb_faults_ids *t, uint64_t id)
{
	uint64_t cap = t->cap;
	uint8_t *s, *a, *st;

	while (cap <= id)
		cap *= 2;
	s = realloc(t->sent, cap);
	if (s == NULL)
		return -1;
	t->sent = s;
	a = realloc(t->answers, cap);
	if (a == NULL)
		return -1;
	t->answers = a;
	st = realloc(t->status, cap);
	if (st == NULL)
		return -1;
	t->status = st;
	memset(t->sent + t->cap, 0, cap - t->cap);
	memset(t->answers + t->cap, 0, cap - t->cap);
	memset(t->status + t->cap, 0, cap - t->cap);
	t->cap = cap;
	return 0;
}

int
mb_faults_ids_sent(struct mb_faults_ids *t, uint64_t id)
{
	if (id >= t->cap && grow(t, id) < 0) {
		fprintf(stderr, "faults: out of memory tracking id %llu\n", (unsigned long long)id);
		abort();
	}
	if (t->sent[id])
		return -1;
	t->sent[id] = 1;
	t->n_sent++;
	return 0;
}

void
mb_faults_ids_answer(struct mb_faults_ids *t, const struct mb_response_hdr *h, const void *data,
		     size_t len)
{
	uint64_t id = h->request_id;
	unsigned int st = h->status < MB_STATUS_COUNT ? h->status : MB_STATUS_COUNT;

	if (id < t->floor) {
		t->early++;
		return;
	}
	t->by_status[st]++;
	if (st != MB_STATUS_OK && st < MB_STATUS_COUNT) {
		if (h->result_type != MB_RESULT_TEXT || len == 0)
			t->no_reason++;
		else if (t->reason[st][0] == '\0')
			snprintf(t->reason[st], sizeof(t->reason[st]), "%.*s", (int)len,
				 (const char *)data);
	}
	if (id >= t->cap || !t->sent[id]) {
		if (t->unknown < MB_FAULTS_IDS_SHOWN)
			t->unknown_ids[t->unknown] = id;
		t->unknown++;
		return;
	}
	if (t->answers[id] == 0) {
		t->answered++;
	} else {
		if (t->dup < MB_FAULTS_IDS_SHOWN)
			t->dup_ids[t->dup] = id;
		t->dup++;
	}
	if (t->answers[id] < 255)
		t->answers[id]++;
	t->status[id] = (uint8_t)st;
}

static void
print_ids(const char *what, const uint64_t *ids, uint64_t n)
{
	printf("\n      %s (%llu):", what, (unsigned long long)n);
	for (uint64_t i = 0; i < n && i < MB_FAULTS_IDS_SHOWN; i++)
		printf(" %llu", (unsigned long long)ids[i]);
	if (n > MB_FAULTS_IDS_SHOWN)
		printf(" ...");
}

bool
mb_faults_ids_check(const struct mb_faults_ids *t, const char *what)
{
	uint64_t missing = t->n_sent - t->answered;
	bool ok = missing == 0 && t->dup == 0 && t->unknown == 0 && t->no_reason == 0;
	char buf[512];

	printf("\n    %s: %llu sent, %llu answered once (%s); %llu missing, %llu duplicate, %llu "
	       "unknown, %llu without a reason: %s",
	       what, (unsigned long long)t->n_sent, (unsigned long long)t->answered,
	       mb_faults_ids_statuses(t, buf, sizeof(buf)), (unsigned long long)missing,
	       (unsigned long long)t->dup, (unsigned long long)t->unknown,
	       (unsigned long long)t->no_reason, ok ? "exactly once" : "NOT exactly once");
	if (missing > 0) {
		uint64_t ids[MB_FAULTS_IDS_SHOWN], n = 0;

		for (uint64_t id = 0; id < t->cap && n < MB_FAULTS_IDS_SHOWN; id++)
			if (t->sent[id] && t->answers[id] == 0)
				ids[n++] = id;
		print_ids("missing ids", ids, missing);
	}
	if (t->dup > 0)
		print_ids("ids answered twice or more", t->dup_ids, t->dup);
	if (t->unknown > 0)
		print_ids("answers for ids never sent", t->unknown_ids, t->unknown);
	fflush(stdout);
	return ok;
}

uint64_t
mb_faults_ids_other(const struct mb_faults_ids *t, uint32_t mask, const char *what)
{
	uint64_t n = 0;

	for (unsigned int st = 0; st <= MB_STATUS_COUNT; st++)
		if (t->by_status[st] > 0 && (st == MB_STATUS_COUNT || !(mask & (1u << st)))) {
			printf("\n    %s: %llu answered %s%s%s", what,
			       (unsigned long long)t->by_status[st],
			       st < MB_STATUS_COUNT ? mb_status_name(st) : "an unknown status",
			       st < MB_STATUS_COUNT && t->reason[st][0] ? ": " : "",
			       st < MB_STATUS_COUNT ? t->reason[st] : "");
			n += t->by_status[st];
		}
	return n;
}

const char *
mb_faults_ids_statuses(const struct mb_faults_ids *t, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int st = 0; st <= MB_STATUS_COUNT && off < len; st++)
		if (t->by_status[st] > 0)
			off += (size_t)snprintf(buf + off, len - off, "%s%s %llu", off ? ", " : "",
						st < MB_STATUS_COUNT ? mb_status_name(st)
								     : "UNKNOWN_STATUS",
						(unsigned long long)t->by_status[st]);
	if (off == 0)
		snprintf(buf, len, "no answers");
	return buf;
}

/* ---- the daemon's resources ---- */

static int
count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

char
mb_faults_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* after the command name, which may hold anything */
	return p != NULL && p[1] == ' ' && p[2] != '\0' ? p[2] : '?';
}

int
mb_faults_proc_read(pid_t pid, struct mb_faults_proc *p)
{
	char path[64];

	if (pid <= 0)
		return -1;
	p->rss_kib = mb_e2e_status_kib(pid, "VmRSS");
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	p->fds = count_dir(path);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	p->threads = count_dir(path);
	/* a zombie has no VmRSS; one that exited between the reads has no fds left */
	if (p->rss_kib <= 0 || p->fds <= 0 || p->threads <= 0 ||
	    mb_e2e_status_kib(pid, "VmRSS") <= 0)
		return -1;
	return 0;
}

struct mb_faults_slack
mb_faults_slack_default(void)
{
	/* Under AddressSanitizer freed memory sits in its quarantine (256 MiB by default)
	 * before reuse; under ThreadSanitizer its shadow and history grow with the traffic. */
	return (struct mb_faults_slack){
		.rss_kib = 64 * 1024 + (MB_FAULTS_SANITIZER ? 256 * 1024 : 0),
		.fds = 8,
		.threads = 2,
	};
}

void
mb_faults_res_warm(struct mb_faults_res *r, pid_t pid)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	if (mb_faults_proc_read(pid, &r->warm) == 0) {
		r->have_warm = true;
		r->peak = r->warm;
		r->end = r->warm;
	}
}

void
mb_faults_res_sample(struct mb_faults_res *r)
{
	struct mb_faults_proc p;

	if (!r->have_warm || mb_faults_proc_read(r->pid, &p) != 0)
		return;
	r->end = p;
	r->have_end = true;
	r->samples++;
	if (p.rss_kib > r->peak.rss_kib)
		r->peak.rss_kib = p.rss_kib;
	if (p.fds > r->peak.fds)
		r->peak.fds = p.fds;
	if (p.threads > r->peak.threads)
		r->peak.threads = p.threads;
}

bool
mb_faults_res_check(const struct mb_faults_res *r, const struct mb_faults_slack *s,
		    const char *what)
{
	bool ok;

	if (!r->have_warm || !r->have_end) {
		printf("\n    %s: no /proc figures (%s)", what,
		       r->have_warm ? "no sample after the warm-up" : "none at the warm-up");
		return false;
	}
	ok = r->peak.rss_kib - r->warm.rss_kib <= s->rss_kib &&
	     r->peak.fds - r->warm.fds <= s->fds && r->peak.threads - r->warm.threads <= s->threads;
	printf("\n    %s: RSS %.1f -> %.1f MiB (peak %.1f, slack +%.0f), fds %d -> %d (peak %d, "
	       "slack +%d), threads %d -> %d (peak %d, slack +%d), %d samples: %s",
	       what, r->warm.rss_kib / 1024.0, r->end.rss_kib / 1024.0, r->peak.rss_kib / 1024.0,
	       s->rss_kib / 1024.0, r->warm.fds, r->end.fds, r->peak.fds, s->fds, r->warm.threads,
	       r->end.threads, r->peak.threads, s->threads, r->samples,
	       ok ? "bounded" : "OVER THE SLACK");
	fflush(stdout);
	return ok;
}

/* ---- metrics ---- */

double
mb_faults_metric_sum(const struct mb_daemon *d, const char *name)
{
	static char body[1 << 20];
	size_t n = strlen(name);
	double sum = 0;
	bool found = false;

	if (mb_http_get(d->port_http, "/metrics", body, sizeof(body)) != 200)
		return -1;
	for (const char *p = body; (p = strstr(p, name)) != NULL; p += n) {
		const char *v;

		if (p != body && p[-1] != '\n')
			continue; /* inside another line (a # HELP text, a longer name) */
		if (p[n] == '{') {
			v = strchr(p + n, '}');
			if (v == NULL || v[1] != ' ')
				continue;
			v += 2;
		} else if (p[n] == ' ') {
			v = p + n + 1;
		} else {
			continue; /* a longer name: name_bucket, name_sum */
		}
		sum += strtod(v, NULL);
		found = true;
	}
	return found ? sum : -1;
}

bool
mb_faults_requests_balance(const struct mb_daemon *d, double seconds, double *req, double *resp)
{
	double deadline = mb_e2e_now() + seconds;

	for (;;) {
		*req = mb_faults_metric_sum(d, "mediabatch_requests_total");
		*resp = mb_faults_metric_sum(d, "mediabatch_responses_total");
		if (*req >= 0 && *req == *resp)
			return true;
		if (mb_e2e_now() > deadline)
			return false;
		mb_faults_nap_ms(50);
	}
}

/* ---- traffic ---- */

struct mb_client *
mb_faults_client(const struct mb_daemon *d, int sndhwm)
{
	struct mb_client_opts o = {.endpoint = d->ingest, .sndhwm = sndhwm};
	struct mb_client *c = NULL;
	char err[256];

	if (mb_client_connect(&o, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "faults: client: %s\n", err);
	return c;
}

int
mb_faults_send_identity(struct mb_client *c, uint64_t id, uint32_t tenant, uint16_t cols)
{
	static const float payload[256];
	struct mb_request_hdr h;

	if (cols > 256)
		cols = 256;
	mb_client_tensor_hdr(&h, "identity", tenant, id, 1, cols);
	return mb_client_send(c, &h, payload, (size_t)cols * sizeof(float));
}

int
mb_faults_fill_identity(struct mb_client *c, struct mb_faults_ids *t, uint64_t *next_id,
			uint32_t tenant, uint16_t cols, uint64_t window)
{
	int n = 0;

	while (mb_faults_ids_outstanding(t) < window) {
		if (mb_faults_send_identity(c, *next_id, tenant, cols) != 0)
			break;
		mb_faults_ids_sent(t, *next_id);
		(*next_id)++;
		n++;
	}
	return n;
}

int
mb_faults_pump(struct mb_client *c, struct mb_faults_ids *t, int ms, int max)
{
	struct mb_client_response r;
	int n = 0;

	while (n < max && mb_client_recv(c, &r, n == 0 ? ms : 0) == 0) {
		mb_faults_ids_answer(t, &r.hdr, r.data, r.len);
		mb_client_response_free(&r);
		n++;
	}
	return n;
}

bool
mb_faults_collect_from(struct mb_client *c, struct mb_faults_ids *t, double seconds,
		       struct mb_faults_res *res, const struct mb_daemon *d, double quiet)
{
	double deadline = mb_e2e_now() + seconds, next_sample = 0, last_rx = mb_e2e_now();

	while (mb_faults_ids_outstanding(t) > 0 && mb_e2e_now() < deadline) {
		if (mb_faults_pump(c, t, 100, 4096) > 0)
			last_rx = mb_e2e_now();
		else if (d != NULL && mb_e2e_now() - last_rx > quiet &&
			 strchr("ZX?", mb_faults_proc_state(d->pid)) != NULL)
			break; /* it has exited: nothing more can come */
		if (res != NULL && mb_e2e_now() >= next_sample) {
			mb_faults_res_sample(res);
			next_sample = mb_e2e_now() + 0.25;
		}
	}
	/* a last look: a late duplicate would show here */
	mb_faults_pump(c, t, 50, 4096);
	return mb_faults_ids_outstanding(t) == 0;
}

bool
mb_faults_collect(struct mb_client *c, struct mb_faults_ids *t, double seconds,
		  struct mb_faults_res *res)
{
	return mb_faults_collect_from(c, t, seconds, res, NULL, 0);
}

/* ---- subscribers ---- */

int
mb_faults_sub_open(struct mb_faults_sub *s, const char *endpoint, const char *prefix, int rcvhwm)
{
	int linger = 0;

	s->ctx = zmq_ctx_new();
	s->sock = s->ctx != NULL ? zmq_socket(s->ctx, ZMQ_SUB) : NULL;
	if (s->sock == NULL || zmq_setsockopt(s->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) != 0 ||
	    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) != 0 ||
	    zmq_connect(s->sock, endpoint) != 0) {
		fprintf(stderr, "faults: subscriber on %s: %s\n", endpoint,
			zmq_strerror(zmq_errno()));
		mb_faults_sub_close(s);
		return -1;
	}
	return 0;
}

int
mb_faults_sub_recv(struct mb_faults_sub *s, struct mb_response_hdr *h, struct mb_faults_ids *t,
		   int timeout_ms)
{
	zmq_pollitem_t item = {.socket = s->sock, .events = ZMQ_POLLIN};
	zmq_msg_t f[3];
	int n = 0, more = 1, rc = 0;
	char reason[64];

	if (zmq_poll(&item, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s->sock, 0) < 0) {
			zmq_msg_close(&m);
			rc = -EPROTO;
			break;
		}
		more = zmq_msg_more(&m);
		if (n < 3) {
			zmq_msg_init(&f[n]);
			zmq_msg_move(&f[n++], &m);
		} else {
			rc = -EPROTO;
		}
		zmq_msg_close(&m);
	}
	if (rc == 0 && n == 3 &&
	    mb_proto_decode_response(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), h, reason,
				     sizeof(reason)) == 0) {
		if (t != NULL)
			mb_faults_ids_answer(t, h, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
	} else {
		rc = -EPROTO;
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

void
mb_faults_sub_close(struct mb_faults_sub *s)
{
	if (s->sock != NULL)
		zmq_close(s->sock);
	if (s->ctx != NULL)
		zmq_ctx_term(s->ctx);
	s->sock = s->ctx = NULL;
}

/* ---- reporting ---- */

const char *
mb_faults_log_tail(const struct mb_daemon *d, size_t max)
{
	const char *log = mb_daemon_log(d);
	size_t n = strlen(log);
	const char *p;

	if (n <= max)
		return log;
	p = log + n - max;
	while (*p != '\0' && *p != '\n')
		p++;
	return *p == '\n' ? p + 1 : p;
}

void
mb_faults_summary(const char *name, double seconds, int runs, uint64_t requests, bool once,
		  const struct mb_faults_res *res, const char *notes)
{
	char figs[256] = "-|-|-";

	if (res != NULL && res->have_warm && res->have_end)
		snprintf(figs, sizeof(figs),
			 "%.0f>%.0f (peak %.0f)|%d>%d (peak %d)|%d>%d (peak %d)",
			 res->warm.rss_kib / 1024.0, res->end.rss_kib / 1024.0,
			 res->peak.rss_kib / 1024.0, res->warm.fds, res->end.fds, res->peak.fds,
			 res->warm.threads, res->end.threads, res->peak.threads);
	printf("\nFAULTS-SUMMARY|%s|%.1f|%d|%llu|%s|%s|%s\n", name, seconds, runs,
	       (unsigned long long)requests, once ? "yes" : "NO", figs, notes ? notes : "");
	fflush(stdout);
}
