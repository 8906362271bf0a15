/*
 * log_test.c: level parsing, filtering, the module prefix, MB_LOG_ONCE, and redirection; the
 * line formats: timestamp and level, journald's priority prefix, JSON lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB_LOG_MODULE "logtest"
#include "mb_log.h"
#include "mb_test.h"

#include <rte_log.h>

static char *g_buf;
static size_t g_len;
static FILE *g_stream;

static void
capture_start(void)
{
	g_stream = open_memstream(&g_buf, &g_len);
	mb_log_set_stream(g_stream);
}

/* Stop capturing; returns the captured text (freed by the next capture_stop()). */
static const char *
capture_stop(void)
{
	static char *last;

	mb_log_set_stream(NULL);
	fclose(g_stream);
	free(last);
	last = g_buf;
	return last;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_parse_level(void)
{
	CU_ASSERT_EQUAL(mb_log_parse_level("error"), RTE_LOG_ERR);
	CU_ASSERT_EQUAL(mb_log_parse_level("WARNING"), RTE_LOG_WARNING);
	CU_ASSERT_EQUAL(mb_log_parse_level("notice"), RTE_LOG_NOTICE);
	CU_ASSERT_EQUAL(mb_log_parse_level("info"), RTE_LOG_INFO);
	CU_ASSERT_EQUAL(mb_log_parse_level("debug"), RTE_LOG_DEBUG);
	CU_ASSERT_EQUAL(mb_log_parse_level("7"), 7);
	CU_ASSERT_EQUAL(mb_log_parse_level("9"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("0"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("verbose"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level(""), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level(NULL), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_parse_level("4x"), -EINVAL);
}

static void
test_prefix_and_filter(void)
{
	const char *out;

	CU_ASSERT_EQUAL(mb_log_set_level(RTE_LOG_NOTICE), 0);
	CU_ASSERT_EQUAL(mb_log_get_level(), RTE_LOG_NOTICE);
	capture_start();
	MB_LOG(ERR, "disk %d is on fire", 3);
	MB_LOG(INFO, "below the level");
	MB_LOG(NOTICE, "at the level");
	out = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "mediabatch: logtest: disk 3 is on fire\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "below the level"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "at the level"));

	CU_ASSERT_EQUAL(mb_log_set_level(RTE_LOG_DEBUG), 0);
	capture_start();
	MB_LOG(DEBUG, "now visible");
	out = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "now visible"));
	CU_ASSERT_EQUAL(mb_log_set_level(0), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_set_level(99), -EINVAL);
	mb_log_set_level(RTE_LOG_NOTICE);
}

static void
test_log_once(void)
{
	const char *out;

	capture_start();
	for (int i = 0; i < 5; i++)
		MB_LOG_ONCE(WARNING, "only once %d", i);
	out = capture_stop();
	CU_ASSERT_EQUAL(count(out, "only once"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "only once 0"));
}

static void
test_long_line_truncated(void)
{
	char big[3000];
	const char *out;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	MB_LOG(ERR, "%s", big);
	out = capture_stop();
	CU_ASSERT(strlen(out) < 1100);
	CU_ASSERT(strlen(out) > 1000);
	CU_ASSERT_EQUAL(out[strlen(out) - 1], '\n');
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ " at @p s. */
static int
is_timestamp(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ ";

	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
	return 1;
}

static void
test_timestamp_and_level(void)
{
	const char *out;

	unsetenv("JOURNAL_STREAM");
	capture_start();
	MB_LOG(NOTICE, "hello %s", "world");
	MB_LOG(WARNING, "second");
	out = capture_stop();
	CU_ASSERT(is_timestamp(out));
	CU_ASSERT_EQUAL(strncmp(out + 25, "NOTICE mediabatch: logtest: hello world\n", 40), 0);
	CU_ASSERT(is_timestamp(strchr(out, '\n') + 1));
	CU_ASSERT_EQUAL(
		strncmp(strchr(out, '\n') + 26, "WARNING mediabatch: logtest: second\n", 36), 0);
	CU_ASSERT_FALSE(mb_log_journal());
}

/* Text lines: a message cannot start a line, a terminal escape or a blob of its own. */
static void
test_text_escapes(void)
{
	const char *out, *want = "a\\x0ab \\x1b[31mred \\xc2\\x9b c\\xff caf\xc3\xa9 \\x09 ok\n";

	unsetenv("JOURNAL_STREAM");
	capture_start();
	MB_LOG(NOTICE, "a\nb \x1b[31mred \xc2\x9b c\xff caf\xc3\xa9 \t ok");
	out = capture_stop();
	CU_ASSERT_EQUAL(count(out, "\n"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
	if (strstr(out, want) == NULL)
		printf("\n    got: %s", out);

	/* DPDK's lines too (rte_log through this layer's stream) */
	capture_start();
	rte_log(RTE_LOG_ERR, RTE_LOGTYPE_EAL, "EAL: bad \x1b]0;x\x07 arg\n<3>forged\n");
	out = capture_stop();
	CU_ASSERT_EQUAL(count(out, "\n"), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ERR mediabatch: dpdk: EAL: bad \\x1b]0;x\\x07 arg\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ERR mediabatch: dpdk: <3>forged\n"));
	if (count(out, "\n") != 2 || strstr(out, "\\x1b]0;x\\x07") == NULL)
		printf("\n    got: %s", out);
}

/* JOURNAL_STREAM naming the log's own file: journald's <N> prefix, no timestamp. */
static void
test_journald_prefix(void)
{
	char path[] = "/tmp/mb_log_test_XXXXXX", env[64], text[512];
	struct stat st;
	FILE *f;
	size_t n;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	f = fdopen(fd, "w+");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_FATAL(fstat(fd, &st) == 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	mb_log_set_stream(f);
	CU_ASSERT_TRUE(mb_log_journal());
	MB_LOG(ERR, "broken");
	MB_LOG(NOTICE, "fine");
	MB_LOG_REQ(WARNING, 42, 7, "slow");
	mb_log_set_stream(NULL);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	CU_ASSERT_STRING_EQUAL(text, "<3>ERR mediabatch: logtest: broken\n"
				     "<5>NOTICE mediabatch: logtest: fine\n"
				     "<4>WARNING mediabatch: logtest: request 42 tenant 7: slow\n");
	/* another file: not the journal */
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	mb_log_set_stream(f);
	CU_ASSERT_FALSE(mb_log_journal());
	mb_log_set_stream(NULL);
	unsetenv("JOURNAL_STREAM");
	fclose(f);
	unlink(path);
}

/*
 * A strict reader of the JSON strings this layer writes: @p p at the opening quote; decodes
 * into @p out (UTF-8) and returns the byte after the closing quote, or NULL if the string is
 * not valid JSON (a raw control character, an unknown escape, no closing quote).
 */
static const char *
json_string(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		unsigned int u;

		if (c == '\0' || c < 0x20 || n + 4 >= cap)
			return NULL;
		if (c == '"')
			break;
		if (c != '\\') {
			out[n++] = (char)c;
			continue;
		}
		c = (unsigned char)*p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			out[n++] = (char)c;
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'u':
			if (sscanf(p, "%4x", &u) != 1)
				return NULL;
			p += 4;
			if (u < 0x80) {
				out[n++] = (char)u;
			} else if (u < 0x800) {
				out[n++] = (char)(0xc0 | (u >> 6));
				out[n++] = (char)(0x80 | (u & 0x3f));
			} else {
				out[n++] = (char)(0xe0 | (u >> 12));
				out[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (u & 0x3f));
			}
			break;
		default:
			return NULL;
		}
	}
	out[n] = '\0';
	return p;
}

/* The value of string member @p key of the one-line object @p line, decoded, or NULL. */
static const char *
json_member(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (p == NULL)
		return NULL;
	return json_string(p + strlen(pat), out, cap) != NULL ? out : NULL;
}

static void
test_json_lines(void)
{
	const char *out, *nl;
	char v[1200], big[1500];

	unsetenv("JOURNAL_STREAM");
	CU_ASSERT_EQUAL(mb_log_parse_format("json"), MB_LOG_JSON);
	CU_ASSERT_EQUAL(mb_log_parse_format("TEXT"), MB_LOG_TEXT);
	CU_ASSERT_EQUAL(mb_log_parse_format("xml"), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_set_format(5), -EINVAL);
	CU_ASSERT_EQUAL(mb_log_set_format(MB_LOG_JSON), 0);
	capture_start();
	MB_LOG(NOTICE, "say \"hi\"\nback\\slash\ttab \x01 bell\x7f end");
	out = capture_stop();
	nl = strchr(out, '\n');
	CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
	CU_ASSERT_EQUAL(nl[1], '\0'); /* one line */
	CU_ASSERT_EQUAL(strncmp(out, "{\"ts\":\"", 7), 0);
	CU_ASSERT_EQUAL(out[nl - out - 1], '}');
	CU_ASSERT_PTR_NOT_NULL(json_member(out, "ts", v, sizeof(v)));
	CU_ASSERT_EQUAL(strlen(v), 24);
	CU_ASSERT_STRING_EQUAL(json_member(out, "level", v, sizeof(v)), "notice");
	CU_ASSERT_STRING_EQUAL(json_member(out, "module", v, sizeof(v)), "logtest");
	CU_ASSERT_STRING_EQUAL(json_member(out, "msg", v, sizeof(v)),
			       "say \"hi\"\nback\\slash\ttab \x01 bell\x7f end");

	/* request lines carry request_id and tenant; bytes that are not UTF-8 become U+FFFD */
	capture_start();
	MB_LOG_REQ(ERR, 123456789012ULL, 9, "caf\xc3\xa9 \xff!");
	out = capture_stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"request_id\":123456789012,\"tenant\":9,"));
	CU_ASSERT_STRING_EQUAL(json_member(out, "level", v, sizeof(v)), "err");
	CU_ASSERT_STRING_EQUAL(json_member(out, "msg", v, sizeof(v)), "caf\xc3\xa9 \xef\xbf\xbd!");

	/* an overlong message of quotes is cut, still one valid object */
	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	MB_LOG(WARNING, "%s", big);
	out = capture_stop();
	CU_ASSERT_EQUAL(count(out, "\n"), 1);
	CU_ASSERT_EQUAL(strcmp(out + strlen(out) - 3, "\"}\n"), 0);
	CU_ASSERT_PTR_NOT_NULL(json_member(out, "msg", v, sizeof(v)));
	CU_ASSERT(strlen(v) > 1000);
	mb_log_set_format(MB_LOG_TEXT);
}

static const struct mb_test_case cases[] = {
	{"text lines: timestamp and level", test_timestamp_and_level},
	{"journald: <N> priority, no timestamp", test_journald_prefix},
	{"text lines: control characters and bytes that are not UTF-8 as \\xNN", test_text_escapes},
	{"JSON lines: members, escapes, request ids", test_json_lines},
	{"level names parse", test_parse_level},
	{"module prefix and level filter", test_prefix_and_filter},
	{"MB_LOG_ONCE logs once", test_log_once},
	{"overlong lines are cut, still one line", test_long_line_truncated},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"log", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("log_test", suites);
}
