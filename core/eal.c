/*
 * eal.c: bring DPDK's EAL up with the embedded default or with a deployment's arguments.
 *
 * Builds an argv, calls rte_eal_init() once, and tells env.c that DPDK's heap is usable.
 * The embedded default keeps a developer machine clean: --no-shconf leaves no files in
 * /var/run/dpdk, and fini removes the (empty) runtime directory. Main thread only.
 */
#include "mb_eal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include "env_internal.h"

#define MB_LOG_MODULE "eal"
#include "mb_log.h"

#define MAX_ARGS 64
#define ARG_BUF 4096

static bool g_eal_up;
static char g_file_prefix[128];

void
mb_eal_opts_init(struct mb_eal_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->name = "mediabatch";
	opts->mem_mb = 256;
	opts->log_level = "warning";
}

/* Append to the argument arena; returns the copy or NULL when out of room. */
static char *arena_printf(char *arena, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static char *
arena_printf(char *arena, size_t *used, const char *fmt, ...)
{
	va_list ap;
	char *dst = arena + *used;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, ARG_BUF - *used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= ARG_BUF - *used)
		return NULL;
	*used += (size_t)n + 1;
	return dst;
}

/* "0@(0-3,8)": the main lcore 0 allowed on every CPU this process may run on. */
static int
floating_main_lcore(char *buf, size_t len)
{
	cpu_set_t set;
	size_t off;
	int n, first = -1, prev = -2;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -errno;
	off = (size_t)snprintf(buf, len, "0@(");
	for (int cpu = 0; cpu <= CPU_SETSIZE; cpu++) {
		bool in = cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);

		if (in && first < 0)
			first = cpu;
		if (in) {
			prev = cpu;
			continue;
		}
		if (first < 0)
			continue;
		n = first == prev
			    ? snprintf(buf + off, len - off, "%s%d", off > 3 ? "," : "", first)
			    : snprintf(buf + off, len - off, "%s%d-%d", off > 3 ? "," : "", first,
				       prev);
		if (n < 0 || (size_t)n >= len - off)
			return -E2BIG;
		off += (size_t)n;
		first = -1;
	}
	if (off + 2 > len)
		return -E2BIG;
	memcpy(buf + off, ")", 2);
	return 0;
}

int
mb_eal_init(const struct mb_eal_opts *opts)
{
	static char arena[ARG_BUF];
	char *argv[MAX_ARGS + 1];
	char lcores[512];
	size_t used = 0;
	int argc = 0, rc, level;
	bool has_prefix = false;

#define PUSH(...)                                                                                  \
	do {                                                                                       \
		char *a_ = arena_printf(arena, &used, __VA_ARGS__);                                \
		if (a_ == NULL || argc >= MAX_ARGS)                                                \
			return -E2BIG;                                                             \
		argv[argc++] = a_;                                                                 \
	} while (0)

	if (g_eal_up)
		return -EALREADY;
	if (opts == NULL || opts->name == NULL || opts->name[0] == '\0' ||
	    strpbrk(opts->name, "/ \t") != NULL) {
		MB_LOG(ERR, "EAL name must be a non-empty word without '/' or spaces");
		return -EINVAL;
	}
	level = mb_log_parse_level(opts->log_level != NULL ? opts->log_level : "warning");
	if (level < 0) {
		MB_LOG(ERR, "EAL log level '%s' is not one of error, warning, notice, info, debug",
		       opts->log_level);
		return -EINVAL;
	}

	PUSH("%s", opts->name);
	if (opts->args != NULL) {
		for (unsigned int i = 0; i < opts->n_args; i++) {
			if (opts->args[i] == NULL)
				return -EINVAL;
			if (strncmp(opts->args[i], "--file-prefix", 13) == 0)
				has_prefix = true;
			PUSH("%s", opts->args[i]);
		}
	} else {
		if (opts->mem_mb == 0 || opts->mem_mb > 1024 * 1024) {
			MB_LOG(ERR, "EAL memory %u MiB out of range 1..1048576", opts->mem_mb);
			return -EINVAL;
		}
		rc = floating_main_lcore(lcores, sizeof(lcores));
		if (rc < 0)
			return rc;
		PUSH("--no-huge");
		PUSH("--no-pci");
		PUSH("--no-shconf");
		PUSH("--no-telemetry");
		PUSH("-m");
		PUSH("%u", opts->mem_mb);
		PUSH("--lcores=%s", lcores);
	}
	for (unsigned int i = 0; i < opts->n_extra; i++) {
		if (opts->extra == NULL || opts->extra[i] == NULL)
			return -EINVAL;
		PUSH("%s", opts->extra[i]);
	}
	if (!has_prefix) {
		snprintf(g_file_prefix, sizeof(g_file_prefix), "%s-%ld", opts->name,
			 (long)getpid());
		PUSH("--file-prefix=%s", g_file_prefix);
	}
	PUSH("--log-level=lib.eal:%d", level);
	argv[argc] = NULL;
#undef PUSH

	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		rc = rte_errno > 0 ? rte_errno : EINVAL;
		MB_LOG(ERR, "rte_eal_init failed: %s", rte_strerror(rc));
		return -rc;
	}
	if (has_prefix)
		snprintf(g_file_prefix, sizeof(g_file_prefix), "%s",
			 strrchr(rte_eal_get_runtime_dir(), '/') + 1);
	g_eal_up = true;
	mb_env_set_eal_heap(true);
	MB_LOG(INFO, "EAL up: file prefix %s, %u lcore(s)", g_file_prefix, rte_lcore_count());
	return 0;
}

int
mb_eal_fini(void)
{
	char dir[PATH_MAX];
	int rc;

	if (!g_eal_up)
		return -EALREADY;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	mb_env_set_eal_heap(false);
	g_eal_up = false;
	rc = rte_eal_cleanup();
	if (rc < 0)
		return rc;
	/* Best effort: with --no-shconf the directory is empty; otherwise rmdir fails, fine. */
	(void)rmdir(dir);
	return 0;
}

bool
mb_eal_is_up(void)
{
	return g_eal_up;
}

const char *
mb_eal_file_prefix(void)
{
	return g_eal_up ? g_file_prefix : "";
}
