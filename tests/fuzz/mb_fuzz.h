/**
 * @file
 * What the libFuzzer targets in tests/fuzz/ share: a check that fails loudly, a scratch file
 * for loaders that only read paths, and silencing of a parser's own messages.
 *
 * MB_FUZZ_CHECK(cond, fmt, ...) states a property the parser promises (its header's
 * contract, docs/protocol.md); when it does not hold it prints the condition and a message
 * and aborts, which libFuzzer reports as a crash and saves the input. It is not assert():
 * it stays in every build type.
 *
 * The scratch file is one per process (-jobs/-workers run several), created on first use
 * in $MB_FUZZ_TMPDIR, else /dev/shm, else $TMPDIR or /tmp, and unlinked at once: the loader
 * opens it as /proc/self/fd/N, so nothing is left behind even when a finding aborts the
 * process. Each input overwrites it. Everything here is
 * deterministic: the same input gives the same file and the same run.
 */
#ifndef MB_FUZZ_H
#define MB_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * For the target's own checking code: no coverage instrumentation (libFuzzer's feedback is
 * about the parser, and tracing the checks' loops would cost most of the time), and not
 * inlined into instrumented code. ASan and UBSan still apply.
 */
#define MB_FUZZ_UNTRACED __attribute__((no_sanitize("coverage"), noinline))

#define MB_FUZZ_CHECK(cond, ...)                                                                   \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(g_fuzz_report, "%s:%d: check failed: %s: ", __FILE__, __LINE__,    \
				#cond);                                                            \
			fprintf(g_fuzz_report, __VA_ARGS__);                                       \
			fputc('\n', g_fuzz_report);                                                \
			fflush(g_fuzz_report);                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Where check failures go: the real stderr, even when the parser's stderr is silenced. */
static FILE *g_fuzz_report;

static char g_fuzz_path[256];
static int g_fuzz_fd = -1;

/*
 * Once per process: check failures to the real stderr; the parser's own stderr to /dev/null
 * unless MB_FUZZ_VERBOSE is set (libFuzzer and the sanitizers write to file descriptor 2
 * through their own handles, so their reports still show).
 */
static inline void
mb_fuzz_init(int quiet_stderr)
{
	if (g_fuzz_report != NULL)
		return;
	g_fuzz_report = stderr;
	if (quiet_stderr && getenv("MB_FUZZ_VERBOSE") == NULL) {
		FILE *null = fopen("/dev/null", "w");

		if (null != NULL)
			stderr = null;
	}
}

/*
 * Write @p size bytes to this process's scratch file (named after @p tag and ending in
 * @p suffix) and return its path. Aborts if the file cannot be written: that is the
 * machine, not the parser.
 */
static inline const char *
mb_fuzz_scratch(const char *tag, const char *suffix, const uint8_t *data, size_t size)
{
	if (g_fuzz_fd < 0) {
		const char *dir = getenv("MB_FUZZ_TMPDIR");

		/* memory, not a disk: a file is written for every input */
		if (dir == NULL || dir[0] == '\0')
			dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
		if (dir == NULL || dir[0] == '\0')
			dir = "/tmp";
		snprintf(g_fuzz_path, sizeof(g_fuzz_path), "%s/mb-fuzz-%s-%d-XXXXXX%s", dir, tag,
			 (int)getpid(), suffix);
		g_fuzz_fd = mkstemps(g_fuzz_path, (int)strlen(suffix));
		if (g_fuzz_fd < 0) {
			fprintf(g_fuzz_report, "mb_fuzz: cannot create %s: %s\n", g_fuzz_path,
				strerror(errno));
			abort();
		}
		unlink(g_fuzz_path);
		snprintf(g_fuzz_path, sizeof(g_fuzz_path), "/proc/self/fd/%d", g_fuzz_fd);
	}
	/* write, then cut to size: the file's pages are reused from one input to the next */
	if ((size > 0 && pwrite(g_fuzz_fd, data, size, 0) != (ssize_t)size) ||
	    ftruncate(g_fuzz_fd, (off_t)size) != 0) {
		fprintf(g_fuzz_report, "mb_fuzz: cannot write %s: %s\n", g_fuzz_path,
			strerror(errno));
		abort();
	}
	return g_fuzz_path;
}

/* A NUL-terminated string of at most @p cap - 1 characters. */
static inline int
mb_fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

#endif /* MB_FUZZ_H */
