/*
 * log.c: mediabatch's logging layer over rte_log.
 *
 * One rte_log type, "mediabatch", registered by a constructor so that logging works before
 * EAL is up. The constructor also installs this file's own stream as rte_log's stream (a
 * fopencookie() FILE, line-buffered): DPDK's lines reach it through rte_vlog(), and each of
 * them gets the same decoration as ours, its level taken from rte_log_cur_msg_loglevel().
 * mb_log() decorates its line itself and writes it to the output stream with one fwrite(),
 * so concurrent lines never interleave.
 *
 * Decoration (docs/operating.md, "Logs"): text lines are `TIMESTAMP LEVEL mediabatch: module:
 * message`, the timestamp ISO-8601 UTC with milliseconds; under journald (JOURNAL_STREAM names
 * the output's device and inode) the timestamp is left out (the journal has its own) and the
 * line starts with the syslog priority `<N>` that journald parses. JSON lines (MB_LOG_FORMAT
 * =json or mb_log_set_format()) are one object each: ts, level, module, msg, and request_id
 * and tenant for mb_log_req(); under journald they too start with `<N>`.
 * Any thread may call any function here.
 */
#include "mb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_log_type = -1;
static FILE *g_out;		     /* where lines go; NULL: stderr */
static FILE *g_rte;		     /* rte_log's stream: decorates DPDK's lines into g_out */
static int g_format = MB_LOG_TEXT;   /* enum mb_log_format */
static bool g_journal;		     /* g_out is the journal's stream */
static bool g_rte_line_start = true; /* g_rte's writer is at the start of a line (its lock) */

#define LINE_MAX_BYTES 1024 /* a message (what the caller formats) is cut there */
#define OUT_MAX_BYTES 4096  /* a decorated line: JSON escapes may multiply the message */

static FILE *
out_stream(void)
{
	return g_out != NULL ? g_out : stderr;
}

/* JOURNAL_STREAM is "DEV:INO" of the stream systemd connected to the journal (systemd.exec). */
static bool
is_journal(FILE *f)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int fd;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	fd = fileno(f);
	if (fd < 0 || fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static const char *
level_name(unsigned int level)
{
	static const char *const names[] = {"EMERG",   "ALERT",	 "CRIT", "ERR",
					    "WARNING", "NOTICE", "INFO", "DEBUG"};

	return level >= 1 && level <= 8 ? names[level - 1] : "DEBUG";
}

static const char *
level_name_lower(unsigned int level)
{
	static const char *const names[] = {"emerg",   "alert",	 "crit", "err",
					    "warning", "notice", "info", "debug"};

	return level >= 1 && level <= 8 ? names[level - 1] : "debug";
}

/* rte_log levels are syslog's plus one (RTE_LOG_EMERG 1 .. RTE_LOG_DEBUG 8). */
static unsigned int
syslog_priority(unsigned int level)
{
	return level >= 1 && level <= 8 ? level - 1 : 7;
}

/* "2026-12-05T23:40:01.123Z" into @p buf (at least 32 bytes). */
static void
timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

struct sbuf {
	char *p;
	size_t len, cap; /* cap keeps 1 byte for the NUL */
};

static void
put(struct sbuf *b, const char *s, size_t n)
{
	if (n > b->cap - 1 - b->len)
		n = b->cap - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at @p s (of @p n bytes), or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* @p s as a JSON string (quotes included): control characters escaped, bytes that are not
 * UTF-8 replaced by U+FFFD. An escape is never cut in half at the end of the buffer. */
static void
put_json_string(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	puts_(b, "\"");
	for (size_t i = 0; i < n;) {
		char esc[8];
		size_t k = utf8_len(u + i, n - i);
		const char *out = esc;
		size_t outn;

		if (k == 0) {
			out = "\\ufffd", outn = 6, k = 1;
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\', esc[1] = (char)u[i], outn = 2;
		} else if (u[i] == '\n') {
			out = "\\n", outn = 2;
		} else if (u[i] == '\r') {
			out = "\\r", outn = 2;
		} else if (u[i] == '\t') {
			out = "\\t", outn = 2;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			outn = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
		} else {
			out = s + i, outn = k;
		}
		if (b->len + outn + 2 > b->cap - 1) /* room for the closing quote and brace */
			break;
		put(b, out, outn);
		i += k;
	}
	puts_(b, "\"");
}

/* @p s for a text line: a control character (C0, DEL, C1) or a byte that is not UTF-8 as
 * \xNN, every other character as it is; so that no message (a path, a plugin's reason, a
 * library's text) starts a line of its own, a journald priority or a terminal escape, and
 * journald keeps the line as text (it stores one that is not UTF-8 as a blob). */
static void
put_text(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = utf8_len(u + i, n - i);
		char esc[16];
		size_t outn = 0;

		if (k == 0 || u[i] < 0x20 || u[i] == 0x7f)
			k = 1, outn = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", u[i]);
		else if (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) /* U+0080..U+009F */
			outn = (size_t)snprintf(esc, sizeof(esc), "\\xc2\\x%02x", u[i + 1]);
		if (outn == 0) {
			if (b->len + k > b->cap - 1)
				break; /* a character is never cut in half */
			put(b, s + i, k);
		} else {
			if (b->len + outn > b->cap - 1)
				break;
			put(b, esc, outn);
		}
		i += k;
	}
}

/* The decorated line for @p msg (n bytes, no newline) into @p b, newline included. */
static void
decorate(struct sbuf *b, unsigned int level, const char *module, const char *msg, size_t n,
	 const struct mb_log_req_ctx *req)
{
	char ts[40], tmp[96];

	if (g_journal) {
		snprintf(tmp, sizeof(tmp), "<%u>", syslog_priority(level));
		puts_(b, tmp);
	}
	if (mb_log_get_format() == MB_LOG_JSON) {
		timestamp(ts, sizeof(ts));
		puts_(b, "{\"ts\":\"");
		puts_(b, ts);
		puts_(b, "\",\"level\":\"");
		puts_(b, level_name_lower(level));
		puts_(b, "\",\"module\":");
		put_json_string(b, module, strlen(module));
		if (req != NULL) {
			snprintf(tmp, sizeof(tmp), ",\"request_id\":%llu,\"tenant\":%lu",
				 (unsigned long long)req->request_id, (unsigned long)req->tenant);
			puts_(b, tmp);
		}
		puts_(b, ",\"msg\":");
		put_json_string(b, msg, n);
		puts_(b, "}");
	} else {
		if (!g_journal) {
			timestamp(ts, sizeof(ts));
			puts_(b, ts);
			puts_(b, " ");
		}
		puts_(b, level_name(level));
		puts_(b, " mediabatch: ");
		puts_(b, module);
		puts_(b, ": ");
		if (req != NULL) {
			snprintf(tmp, sizeof(tmp),
				 "request %llu tenant %lu: ", (unsigned long long)req->request_id,
				 (unsigned long)req->tenant);
			puts_(b, tmp);
		}
		put_text(b, msg, n);
	}
	/* the newline always fits: put() keeps room for it below */
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
}

static void
emit(unsigned int level, const char *module, const struct mb_log_req_ctx *req, const char *fmt,
     va_list ap)
{
	char msg[LINE_MAX_BYTES], line[OUT_MAX_BYTES];
	struct sbuf b = {line, 0, sizeof(line) - 1}; /* one byte kept for the newline */
	FILE *f = out_stream();
	int n;

	if (!rte_log_can_log(g_log_type, level))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	decorate(&b, level, module, msg, (size_t)n, req);
	fwrite(line, 1, b.len, f);
	fflush(f);
}

void
mb_log(unsigned int level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, module, NULL, fmt, ap);
	va_end(ap);
}

void
mb_log_req(unsigned int level, const char *module, const struct mb_log_req_ctx *req,
	   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, module, req, fmt, ap);
	va_end(ap);
}

/*
 * rte_log's stream: rte_vlog() writes a message and flushes; line buffering hands this
 * function whole lines (or pieces of an overlong one), always under the FILE's lock.
 */
static ssize_t
rte_stream_write(void *cookie, const char *buf, size_t size)
{
	int lvl = rte_log_cur_msg_loglevel();
	unsigned int level = lvl >= 1 && lvl <= 8 ? (unsigned int)lvl : RTE_LOG_INFO;
	FILE *f = out_stream();
	size_t i = 0;

	(void)cookie;
	while (i < size) {
		const char *nl = memchr(buf + i, '\n', size - i);
		size_t n = nl != NULL ? (size_t)(nl - (buf + i)) : size - i;

		if (g_rte_line_start) {
			char line[OUT_MAX_BYTES];
			struct sbuf b = {line, 0, sizeof(line) - 1};

			decorate(&b, level, "dpdk", buf + i, n, NULL);
			if (nl == NULL)
				b.len--; /* the line goes on in the next write */
			fwrite(line, 1, b.len, f);
		} else {
			char line[OUT_MAX_BYTES];
			struct sbuf b = {line, 0, sizeof(line) - 1};

			if (g_format == MB_LOG_JSON)
				put(&b, buf + i,
				    n); /* the object is already broken: as DPDK wrote it */
			else
				put_text(&b, buf + i, n);
			if (nl != NULL)
				b.p[b.len++] = '\n';
			fwrite(line, 1, b.len, f);
		}
		g_rte_line_start = nl != NULL;
		i += n + (nl != NULL);
	}
	fflush(f);
	return (ssize_t)size;
}

RTE_INIT(mb_log_register_type)
{
	static char rte_buf[LINE_MAX_BYTES * 2];
	cookie_io_functions_t io = {.write = rte_stream_write};
	const char *fmt = getenv("MB_LOG_FORMAT");

	g_log_type = rte_log_register_type_and_pick_level("mediabatch", RTE_LOG_NOTICE);
	if (g_log_type < 0)
		g_log_type = RTE_LOGTYPE_USER1;
	if (fmt != NULL && mb_log_parse_format(fmt) >= 0)
		g_format = mb_log_parse_format(fmt);
	g_journal = is_journal(stderr);
	g_rte = fopencookie(NULL, "w", io);
	if (g_rte != NULL) {
		setvbuf(g_rte, rte_buf, _IOLBF, sizeof(rte_buf));
		rte_openlog_stream(g_rte);
	}
}

int
mb_log_type(void)
{
	return g_log_type;
}

int
mb_log_set_level(unsigned int level)
{
	if (level < RTE_LOG_EMERG || level > RTE_LOG_DEBUG)
		return -EINVAL;
	return rte_log_set_level(g_log_type, level);
}

unsigned int
mb_log_get_level(void)
{
	int level = rte_log_get_level(g_log_type);

	return level < 0 ? RTE_LOG_NOTICE : (unsigned int)level;
}

int
mb_log_parse_level(const char *name)
{
	static const struct {
		const char *name;
		unsigned int level;
	} names[] = {
		{"error", RTE_LOG_ERR},	   {"err", RTE_LOG_ERR},       {"warning", RTE_LOG_WARNING},
		{"warn", RTE_LOG_WARNING}, {"notice", RTE_LOG_NOTICE}, {"info", RTE_LOG_INFO},
		{"debug", RTE_LOG_DEBUG},
	};
	char *end;
	long v;

	if (name == NULL || *name == '\0')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return (int)names[i].level;
	v = strtol(name, &end, 10);
	if (*end != '\0' || v < RTE_LOG_EMERG || v > RTE_LOG_DEBUG)
		return -EINVAL;
	return (int)v;
}

int
mb_log_parse_format(const char *name)
{
	if (name == NULL)
		return -EINVAL;
	if (strcasecmp(name, "text") == 0)
		return MB_LOG_TEXT;
	if (strcasecmp(name, "json") == 0)
		return MB_LOG_JSON;
	return -EINVAL;
}

int
mb_log_set_format(int format)
{
	if (format != MB_LOG_TEXT && format != MB_LOG_JSON)
		return -EINVAL;
	__atomic_store_n(&g_format, format, __ATOMIC_RELAXED);
	return 0;
}

int
mb_log_get_format(void)
{
	return __atomic_load_n(&g_format, __ATOMIC_RELAXED);
}

bool
mb_log_journal(void)
{
	return g_journal;
}

void
mb_log_set_stream(FILE *stream)
{
	g_out = stream;
	g_journal = is_journal(out_stream());
	if (g_rte != NULL)
		rte_openlog_stream(g_rte);
	else
		rte_openlog_stream(stream);
}
