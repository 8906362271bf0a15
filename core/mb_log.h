/**
 * @file
 * Logging: one small layer over DPDK's rte_log.
 *
 * Every module logs through MB_LOG(level, fmt, ...), which prefixes the module name that the
 * file defines as MB_LOG_MODULE before including this header:
 *
 *     #define MB_LOG_MODULE "sem"
 *     #include "mb_log.h"
 *     MB_LOG(ERR, "capacity %u out of range", cap);
 *
 * prints `2026-12-05T23:40:01.123Z ERR mediabatch: sem: capacity 7 out of range` on stderr
 * (or the stream set with mb_log_set_stream()): an ISO-8601 UTC timestamp with milliseconds,
 * the level, the module. Under journald (the JOURNAL_STREAM environment variable names the
 * output's device:inode, as systemd sets it) the timestamp is left out and the line starts
 * with the syslog priority journald parses: `<3>ERR mediabatch: sem: ...`. With the JSON
 * format (mb_log_set_format(), mediabatchd --log-format json, or MB_LOG_FORMAT=json in the
 * environment) each line is one object: {"ts":...,"level":"err","module":"sem","msg":...}.
 * Levels are rte_log's: ERR, WARNING, NOTICE, INFO, DEBUG. The default level is NOTICE.
 * rte_log works before and after rte_eal_init(); EAL's own log lines use the same stream
 * and get the same decoration (module "dpdk"), so one redirect captures everything.
 *
 * Threads: every function may be called from any thread. Messages are formatted into one
 * buffer and written with one call, so lines from different threads do not interleave.
 */
#ifndef MB_LOG_H
#define MB_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <rte_log.h>

#ifndef MB_LOG_MODULE
#define MB_LOG_MODULE "core"
#endif

/** The rte_log type id of mediabatch ("mediabatch"), registered at load time. */
int mb_log_type(void);

/**
 * Log one line. @p level is an rte_log level (RTE_LOG_ERR ... RTE_LOG_DEBUG). A newline is
 * appended. Prefer the MB_LOG() macro.
 */
void mb_log(unsigned int level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** What a line about one request carries besides its message (copied for the call). */
struct mb_log_req_ctx {
	uint64_t request_id; /**< the client's request_id (struct mb_request_hdr) */
	uint32_t tenant;     /**< its tenant_id */
};

/**
 * Log one line about one request: as mb_log(), with "request ID tenant T: " before the
 * message (text) or "request_id" and "tenant" members (JSON). @p req is borrowed for the call.
 * Prefer MB_LOG_REQ().
 */
void mb_log_req(unsigned int level, const char *module, const struct mb_log_req_ctx *req,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** Log one line at level ERR, WARNING, NOTICE, INFO or DEBUG (the rte_log suffix). */
#define MB_LOG(level, ...) mb_log(RTE_LOG_##level, MB_LOG_MODULE, __VA_ARGS__)

/** MB_LOG() for a line about one request: MB_LOG_REQ(ERR, hdr.request_id, hdr.tenant_id, ...) */
#define MB_LOG_REQ(level, request_id, tenant, ...)                                                 \
	mb_log_req(RTE_LOG_##level, MB_LOG_MODULE,                                                 \
		   &(const struct mb_log_req_ctx){(uint64_t)(request_id), (uint32_t)(tenant)},     \
		   __VA_ARGS__)

/**
 * Log at most once per process from this call site (for conditions that would otherwise
 * repeat per packet or per batch, such as "no GPU driver").
 */
#define MB_LOG_ONCE(level, ...)                                                                    \
	do {                                                                                       \
		static int mb_log_once_done_;                                                      \
		if (!__atomic_exchange_n(&mb_log_once_done_, 1, __ATOMIC_RELAXED))                 \
			MB_LOG(level, __VA_ARGS__);                                                \
	} while (0)

/**
 * Log at most once a second from this call site (for what a peer can make happen at will:
 * refused handshakes, refused subscriptions); the counters in /metrics have every case.
 */
#define MB_LOG_RATE(level, ...)                                                                    \
	do {                                                                                       \
		static long mb_log_rate_next_;                                                     \
		long mb_log_rate_now_ = (long)time(NULL);                                          \
		if (mb_log_rate_now_ >= __atomic_load_n(&mb_log_rate_next_, __ATOMIC_RELAXED)) {   \
			__atomic_store_n(&mb_log_rate_next_, mb_log_rate_now_ + 1,                 \
					 __ATOMIC_RELAXED);                                        \
			MB_LOG(level, __VA_ARGS__);                                                \
		}                                                                                  \
	} while (0)

/** Set mediabatch's log level (an rte_log level). Returns 0, or -EINVAL if out of range. */
int mb_log_set_level(unsigned int level);

/** mediabatch's current log level. */
unsigned int mb_log_get_level(void);

/**
 * Parse a level name: "error", "warning", "notice", "info" or "debug" (case-insensitive), or
 * a number 1..8. Returns the rte_log level, or -EINVAL for anything else.
 */
int mb_log_parse_level(const char *name);

/** Line formats (mb_log_set_format()). */
enum mb_log_format {
	MB_LOG_TEXT = 0, /**< TIMESTAMP LEVEL mediabatch: module: message */
	MB_LOG_JSON = 1, /**< {"ts":...,"level":...,"module":...,"msg":...} */
};

/** Parse "text" or "json" (case-insensitive): an enum mb_log_format, or -EINVAL. */
int mb_log_parse_format(const char *name);

/** Set the line format (the default: MB_LOG_FORMAT from the environment, else text).
 * Returns 0, or -EINVAL. */
int mb_log_set_format(int format);

/** The current line format (enum mb_log_format). */
int mb_log_get_format(void);

/** Whether the output stream is the journal's (JOURNAL_STREAM), decided at start and by
 * mb_log_set_stream(). */
bool mb_log_journal(void);

/**
 * Send all log output (mediabatch's and DPDK's) to @p stream, borrowed until the next call;
 * NULL restores stderr. Used by tests to capture what was logged. Whether the stream is the
 * journal's (JOURNAL_STREAM) is decided again here.
 */
void mb_log_set_stream(FILE *stream);

#endif /* MB_LOG_H */
