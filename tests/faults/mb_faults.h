/**
 * @file
 * The fault suite's helpers (tests/faults/), on top of the e2e harness (mb_e2e.h):
 *
 * - an exactly-once ledger of request ids: every id sent must be answered once; an answer
 *   for an id never sent, a second answer for an id, or an id never answered fails the
 *   case, and the offending ids are printed;
 * - the daemon's resources from /proc/PID: resident memory (status VmRSS), open fds
 *   (fd/), threads (task/), read after a warm-up, sampled while the case runs, and checked
 *   at the end against a stated slack;
 * - a metric summed over all its series (labels), for "requests == sum of responses";
 * - the long form's knobs: MB_FAULTS_SECONDS (how long a case's load runs, or how long a
 *   repeated case keeps repeating) and MB_FAULTS_REPEAT (at least this many repeats);
 * - one summary line per case, "FAULTS-SUMMARY|...", that tests/faults/long.sh tabulates.
 *
 * Every wait is bounded, and bounds are multiplied by mb_faults_slow() in sanitizer builds
 * (ThreadSanitizer makes the daemon 5-10x slower). Traffic goes to 127.0.0.1 only.
 */
#ifndef MB_FAULTS_H
#define MB_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mb_e2e.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MB_FAULTS_SANITIZER 1
#else
#define MB_FAULTS_SANITIZER 0
#endif

/** Factor for time bounds: 1 in a plain build, 8 under a sanitizer. */
double mb_faults_slow(void);

/** MB_FAULTS_SECONDS if set (> 0), else @p dflt. */
double mb_faults_seconds(double dflt);

/** True when MB_FAULTS_SECONDS is set: the long form. */
bool mb_faults_long(void);

/** MB_FAULTS_REPEAT if set (> 0), else @p dflt. */
int mb_faults_repeat(int dflt);

/** Sleep @p ms milliseconds. */
void mb_faults_nap_ms(int ms);

/* ---- the exactly-once ledger ---- */

#define MB_FAULTS_IDS_SHOWN 16 /* offending ids printed per kind */

struct mb_faults_ids {
	uint64_t cap;	   /* ids 0..cap-1 tracked; grows */
	uint8_t *sent;	   /* 1 once sent */
	uint8_t *answers;  /* answers per id, saturating at 255 */
	uint8_t *status;   /* the status of an id's last answer */
	uint64_t n_sent;   /* ids sent */
	uint64_t answered; /* sent ids with at least one answer */
	uint64_t dup;	   /* answers past the first for an id */
	uint64_t unknown;  /* answers for ids never sent */
	uint64_t floor;	   /* ids below it are not this ledger's: their answers only counted */
	uint64_t early;	   /* answers for ids below floor */
	uint64_t unknown_ids[MB_FAULTS_IDS_SHOWN], dup_ids[MB_FAULTS_IDS_SHOWN];
	uint64_t by_status[MB_STATUS_COUNT + 1]; /* [MB_STATUS_COUNT]: out of range */
	uint64_t no_reason;			 /* non-OK answers without a reason text */
	char reason[MB_STATUS_COUNT][200];	 /* the first reason seen per status */
};

int mb_faults_ids_init(struct mb_faults_ids *t);
void mb_faults_ids_free(struct mb_faults_ids *t);

/** Record that request @p id was sent. Returns -1 if it was sent before (a test bug). */
int mb_faults_ids_sent(struct mb_faults_ids *t, uint64_t id);

/** Record one answer (header and payload: the reason of a non-OK status). */
void mb_faults_ids_answer(struct mb_faults_ids *t, const struct mb_response_hdr *h,
			  const void *data, size_t len);

/** Sent and not answered yet. */
static inline uint64_t
mb_faults_ids_outstanding(const struct mb_faults_ids *t)
{
	return t->n_sent - t->answered;
}

/**
 * Exactly once: every sent id answered once, no unknown id, no second answer, every non-OK
 * answer with a reason. Prints what it found under @p what (the offending ids: the first
 * MB_FAULTS_IDS_SHOWN of each kind) and returns true when it held.
 */
bool mb_faults_ids_check(const struct mb_faults_ids *t, const char *what);

/** Answers whose status is not in @p mask (bits 1 << status); prints them if any. */
uint64_t mb_faults_ids_other(const struct mb_faults_ids *t, uint32_t mask, const char *what);

/** "OK 12, OVERLOADED 3" into @p buf. */
const char *mb_faults_ids_statuses(const struct mb_faults_ids *t, char *buf, size_t len);

/** The status of @p id's last answer, or -1 if it has none. */
static inline int
mb_faults_ids_status(const struct mb_faults_ids *t, uint64_t id)
{
	return id < t->cap && t->answers[id] > 0 ? t->status[id] : -1;
}

/* ---- the daemon's resources ---- */

struct mb_faults_proc {
	long rss_kib; /* VmRSS */
	int fds;      /* entries of /proc/PID/fd */
	int threads;  /* entries of /proc/PID/task */
};

/** The state letter of /proc/PID/stat: 'R', 'S', 'T' (stopped), 'Z' (exited, not reaped),
 * ...; '?' if there is no such process. */
char mb_faults_proc_state(pid_t pid);

/** Read @p pid's figures. Returns 0, or -1 if it is gone (or a zombie). */
int mb_faults_proc_read(pid_t pid, struct mb_faults_proc *p);

struct mb_faults_slack {
	long rss_kib; /* growth allowed from the warm-up figure */
	int fds;
	int threads;
};

/** The default slack: RSS 64 MiB (plus 256 MiB under a sanitizer), 8 fds, 2 threads. */
struct mb_faults_slack mb_faults_slack_default(void);

struct mb_faults_res {
	pid_t pid;
	struct mb_faults_proc warm, end, peak;
	bool have_warm, have_end;
	int samples;
};

/** The warm-up figures (after the case's warm-up traffic). */
void mb_faults_res_warm(struct mb_faults_res *r, pid_t pid);

/** One more sample: the latest becomes the end figure; the peak is kept. */
void mb_faults_res_sample(struct mb_faults_res *r);

/**
 * Peak and end figures within @p slack of the warm-up ones: prints the three sets of figures
 * and the slack, returns true when they held.
 */
bool mb_faults_res_check(const struct mb_faults_res *r, const struct mb_faults_slack *slack,
			 const char *what);

/* ---- metrics ---- */

/** The sum of every series of metric @p name (any labels) in the daemon's /metrics; -1 if
 * the scrape failed or the metric is absent. */
double mb_faults_metric_sum(const struct mb_daemon *d, const char *name);

/**
 * Wait (bounded by @p seconds) until mediabatch_requests_total, summed over its series,
 * equals mediabatch_responses_total summed over models and statuses; their last values in
 * @p req and @p resp. True when they met.
 */
bool mb_faults_requests_balance(const struct mb_daemon *d, double seconds, double *req,
				double *resp);

/* ---- traffic ---- */

/** A client for @p d with a send queue of @p sndhwm requests (0: ZeroMQ's default). */
struct mb_client *mb_faults_client(const struct mb_daemon *d, int sndhwm);

/** Send one identity request (F32 [1 x @p cols], at most 256) with id @p id. 0 or -errno. */
int mb_faults_send_identity(struct mb_client *c, uint64_t id, uint32_t tenant, uint16_t cols);

/**
 * Send identity requests (tenant @p tenant, F32 [1 x @p cols]) with ids from *@p next_id
 * until @p window are outstanding in @p t or a send would block. Returns how many it sent.
 */
int mb_faults_fill_identity(struct mb_client *c, struct mb_faults_ids *t, uint64_t *next_id,
			    uint32_t tenant, uint16_t cols, uint64_t window);

/**
 * Receive answers into @p t for up to @p ms (the first wait; then whatever is already
 * queued, at most @p max). Returns how many arrived.
 */
int mb_faults_pump(struct mb_client *c, struct mb_faults_ids *t, int ms, int max);

/**
 * Receive until nothing is outstanding in @p t, or @p seconds pass, sampling @p res (may be
 * NULL). With @p d (may be NULL): also stop once the daemon has exited and nothing arrived
 * for @p quiet seconds (nothing more can come). True when all arrived.
 */
bool mb_faults_collect_from(struct mb_client *c, struct mb_faults_ids *t, double seconds,
			    struct mb_faults_res *res, const struct mb_daemon *d, double quiet);

/** mb_faults_collect_from() without a daemon to watch. */
bool mb_faults_collect(struct mb_client *c, struct mb_faults_ids *t, double seconds,
		       struct mb_faults_res *res);

/*
 * A raw ZeroMQ SUB socket on the daemon's PUB endpoint (its own context), so that a case
 * controls its receive high-water mark. A publication is three frames: the topic, the
 * response header, the result (docs/protocol.md).
 */
struct mb_faults_sub {
	void *ctx, *sock;
};

/** Connect to @p endpoint, subscribed to @p prefix, with ZMQ_RCVHWM @p rcvhwm (0: none). */
int mb_faults_sub_open(struct mb_faults_sub *s, const char *endpoint, const char *prefix,
		       int rcvhwm);

/**
 * One publication, waiting up to @p timeout_ms: its header in @p h, recorded in @p t when
 * @p t is not NULL. Returns 0, -ETIMEDOUT, or -EPROTO (a message of another shape).
 */
int mb_faults_sub_recv(struct mb_faults_sub *s, struct mb_response_hdr *h, struct mb_faults_ids *t,
		       int timeout_ms);

void mb_faults_sub_close(struct mb_faults_sub *s);

/* ---- reporting ---- */

/** The last @p max bytes of the daemon's log (static buffer), from a line start. */
const char *mb_faults_log_tail(const struct mb_daemon *d, size_t max);

/**
 * One line for long.sh's table:
 * FAULTS-SUMMARY|case|seconds|runs|requests|exactly-once|RSS MiB warm>end (peak)|fds|threads|notes
 */
void mb_faults_summary(const char *name, double seconds, int runs, uint64_t requests, bool once,
		       const struct mb_faults_res *res, const char *notes);

#endif /* MB_FAULTS_H */
