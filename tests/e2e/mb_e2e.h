/**
 * @file
 * End-to-end test harness: run the real mediabatchd on loopback, talk to it, stop it.
 *
 * The daemon binary and the CLI come from the environment (MB_DAEMON, MB_CLI; meson sets
 * them). Each daemon gets three free loopback ports, its own config file (the embedded
 * default plus whatever YAML the test adds) and its own log file, so e2e programs run in
 * parallel. Traffic goes to 127.0.0.1 only.
 */
#ifndef MB_E2E_H
#define MB_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mediabatch/client.h"

struct mb_daemon {
	pid_t pid;
	int port_ingest, port_publish, port_http;
	char ingest[64], publish[64], metrics[64];
	char config[64];
	char log[64];
	struct mb_daemon_watch *watch; /* the harness's watchdog (see mb_daemon_start) */
};

/**
 * Start mediabatchd with @p yaml (a config file body in block style, may be NULL) and extra
 * arguments (NULL-terminated, may be NULL), and wait until it has started: /readyz says
 * ready, or not ready for a reason other than "starting" (a model that failed to load).
 * Returns 0, or -1 after printing the daemon's log.
 *
 * A body without a top-level `devices:` section gets `devices: {cuda: {mode: "off"}}`: the
 * daemon serves on cpu0 alone, so the tests' unit arithmetic (cpu0's 16 units) holds on a
 * machine with a GPU too. Tests of devices write their own section (`mode: auto` included).
 *
 * Once ready the daemon is watched: if it exits before the test stops it (a crash, a
 * sanitizer report), its status and log are printed and the test program exits 1 at once
 * instead of waiting for replies that cannot come. mb_daemon_stop(), mb_daemon_wait(), a
 * terminating signal through mb_daemon_signal() and mb_daemon_expect_exit() say that an
 * exit is expected from then on.
 */
int mb_daemon_start(struct mb_daemon *d, const char *yaml, const char *const *args);

/**
 * Send @p sig and wait up to @p seconds for the daemon to exit. Returns its exit status,
 * 128 + signal if it died of one, or -1 if it had to be killed (after printing its log).
 */
int mb_daemon_stop(struct mb_daemon *d, int sig, double seconds);

/** Send a signal without waiting (SIGTERM, SIGINT, SIGQUIT, SIGKILL: an exit is expected). */
void mb_daemon_signal(struct mb_daemon *d, int sig);

/** Say that the daemon may exit from now on (before ending it some other way). */
void mb_daemon_expect_exit(struct mb_daemon *d);

/** Wait up to @p seconds for an exit already under way; as mb_daemon_stop(). */
int mb_daemon_wait(struct mb_daemon *d, double seconds);

/** The daemon's log so far (static buffer, truncated to its last 64 KiB). */
const char *mb_daemon_log(const struct mb_daemon *d);

/** GET http://127.0.0.1:@p port@p path; returns the HTTP status (or -1), body in @p body. */
int mb_http_get(int port, const char *path, char *body, size_t len);

/** The value of one series (exact name with labels) in a /metrics body, or -1 if absent. */
double mb_metric_value_of(const char *metrics, const char *series);

/** Scrape the daemon's /metrics and return one series' value (-1 if absent). */
double mb_daemon_metric(const struct mb_daemon *d, const char *series);

/**
 * mediabatch_inflight once it reaches 0, or its value after @p seconds. A reply reaches its
 * client just before the front door takes the request out of that count (after observing
 * its latency), so a check right after the last reply must wait for it.
 */
double mb_daemon_inflight_settled(const struct mb_daemon *d, double seconds);

/**
 * Wait (bounded) until mediabatch_pub_subscriptions is at least @p n: the daemon applies a
 * subscription when it reads it (docs/protocol.md), and a publication before that is not
 * sent to it, so a test that counts publications waits for this, not for a fixed time.
 */
bool mb_daemon_wait_subscriptions(const struct mb_daemon *d, double n, double seconds);

/** A connected client for the daemon (NULL on failure); @p client_id may be NULL. */
struct mb_client *mb_e2e_client(const struct mb_daemon *d, const char *client_id);

/** 16 kHz mono PCM16: a tone of @p seconds; malloc'd, @p bytes set. */
uint8_t *mb_e2e_tone(double seconds, uint32_t *bytes);

/** Run the CLI with @p args (NULL-terminated); its stdout+stderr in @p out. Exit status. */
int mb_e2e_cli(const char *const *args, char *out, size_t len);

/** Run mediabatchd itself with @p args (--check, bad flags), as mb_e2e_cli(). */
int mb_e2e_daemon_cmd(const char *const *args, char *out, size_t len);

/**
 * As mb_e2e_daemon_cmd(), for a start that must fail: a daemon still running after @p
 * seconds is killed (its output printed) and -1 returned instead of its exit status.
 */
int mb_e2e_daemon_cmd_within(const char *const *args, double seconds, char *out, size_t len);

/** Run mediabatch-perf (MB_PERF) with @p args, as mb_e2e_cli(); -1 when MB_PERF is unset. */
int mb_e2e_perf(const char *const *args, char *out, size_t len);

/** A "Vm...:" line of /proc/@p pid/status in KiB (@p field: "VmRSS", "VmHWM"), or -1. */
long mb_e2e_status_kib(pid_t pid, const char *field);

/** @p n (at most 8) distinct free loopback TCP ports (held open together so they differ). */
int mb_e2e_free_ports(int *ports, int n);

/** Wall-clock seconds (CLOCK_MONOTONIC). */
double mb_e2e_now(void);

#endif /* MB_E2E_H */
