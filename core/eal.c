/*
 * eal.c: bring DPDK's EAL up with the embedded default or with a deployment's arguments.
 *
 * Builds an argv, calls rte_eal_init() once, and tells env.c that DPDK's heap is usable.
 * Before that, for --check and the config loader, it checks a deployment's EAL arguments and
 * virtual devices as the linked DPDK would take them (mb_eal_check_args(),
 * mb_eal_check_vdev()), so that the start does not stop at one.
 * The embedded default keeps a developer machine clean: --no-shconf leaves no files in
 * /var/run/dpdk, and fini removes the (empty) runtime directory. Main thread only.
 */
#include "mb_eal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_version.h>

#include "env_internal.h"

#define MB_LOG_MODULE "eal"
#include "mb_log.h"

/* room for the config's limits (eal.args: 128 entries of up to 1024 bytes), 16 virtual
 * devices of udp.ports and what this file adds */
#define MAX_ARGS 160
#define ARG_BUF (144 * 1024)

static bool g_eal_up;
static char g_file_prefix[128];

/* ---- virtual devices: a driver DPDK has ---- */

/*
 * A shared DPDK (Debian's) has its drivers in its plugin directory, RTE_EAL_PMD_PATH, and EAL
 * dlopen()s every one there at start (with those of each -d), then gives each --vdev to the
 * first driver whose name, or alias, begins the device's name; with none ("failed to find
 * driver") rte_eal_init() fails: the start, not --check, found out. A driver's name is what it
 * registers (RTE_PMD_REGISTER_VDEV), not its file's: net_bonding is in librte_net_bond.so,
 * net_tun in librte_net_tap.so, net_virtio_user in librte_net_virtio.so. Each states it in the
 * "PMD_INFO_STRING= {"name": ...}" that DPDK's build embeds for dpdk-pmdinfo.py, with
 * "pci_ids": [] and no "kmod" for one that takes no PCI device (bus drivers such as net_dpaa
 * look the same); aliases (eth_pcap) are not there. So: net_<x><digits> whose
 * librte_net_<x>.so is there passes at once; else the net drivers' files are read for their
 * names, and the device passes if one begins its name. Names that do not begin "net_"
 * (aliases, crypto_, event_, ...) pass unchecked, and so does every name where no net driver
 * could be listed (no plugin directory, a static DPDK, a format this does not read): the check
 * never refuses what it cannot list.
 */
#ifdef RTE_EAL_PMD_PATH
#define PMD_DIR RTE_EAL_PMD_PATH
#else
#define PMD_DIR ""
#endif
#define MAX_DRIVERS 512
#define MAX_PLUGIN_ARGS 8

struct drivers {
	struct {
		char name[48];
		bool virt; /* no PCI ids, no kernel module: a --vdev's */
	} d[MAX_DRIVERS];
	unsigned int n;
};

static int
is_eal_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	return info->dlpi_name != NULL && strstr(info->dlpi_name, "/librte_eal.so") != NULL;
}

/* Whether EAL is a shared library loaded in this process: EAL asks the same before it loads
 * PMD_DIR (is_shared_build()); linked statically, its drivers are in the program. */
static bool
dpdk_is_shared(void)
{
	return dl_iterate_phdr(is_eal_object, NULL) != 0;
}

/*
 * The drivers the file at @p path says it has (its PMD_INFO_STRINGs, JSON each), added to
 * @p d: a name, and whether it is a --vdev's (no PCI ids, no kernel module).
 */
static void
read_drivers(const char *path, struct drivers *d)
{
	static const char tag[] = "PMD_INFO_STRING= ";
	const char *text, *end, *p;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > (1l << 30)) {
		close(fd);
		return;
	}
	text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (text == MAP_FAILED)
		return;
	end = text + st.st_size;
	for (p = text; (p = memmem(p, (size_t)(end - p), tag, sizeof(tag) - 1)) != NULL;) {
		const char *info = p + sizeof(tag) - 1,
			   *stop = memchr(info, '\0', (size_t)(end - info));
		json_t *root, *ids;
		const char *name;
		bool known = false;

		p = info;
		root = json_loadb(info, (size_t)((stop != NULL ? stop : end) - info), 0, NULL);
		name = json_string_value(json_object_get(root, "name"));
		for (unsigned int i = 0; name != NULL && i < d->n && !known; i++)
			known = strcmp(d->d[i].name, name) == 0;
		if (name != NULL && !known && d->n < MAX_DRIVERS &&
		    strlen(name) < sizeof(d->d[0].name)) {
			ids = json_object_get(root, "pci_ids");
			snprintf(d->d[d->n].name, sizeof(d->d[0].name), "%s", name);
			d->d[d->n++].virt =
				json_array_size(ids) == 0 && json_object_get(root, "kmod") == NULL;
		}
		json_decref(root);
	}
	munmap((void *)text, (size_t)st.st_size);
}

/* The drivers of directory @p dir, each file once as EAL takes them (a name that ends ".so",
 * or ".so.N" where no ".so" of it is there): librte_net_* only with @p net_only. */
static void
read_dir(const char *dir, bool net_only, struct drivers *d)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	while (dp != NULL && (e = readdir(dp)) != NULL) {
		const char *so = strstr(e->d_name, ".so");
		char path[PATH_MAX];

		if (so == NULL || (net_only && strncmp(e->d_name, "librte_net_", 11) != 0))
			continue;
		if (so[3] == '.') { /* "x.so.23": skipped where "x.so" is there (the same file) */
			if (so[4] == '\0' || strspn(so + 4, "0123456789") != strlen(so + 4))
				continue;
			snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(so + 3 - e->d_name),
				 e->d_name);
			if (access(path, F_OK) == 0)
				continue;
		} else if (so[3] != '\0') {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		read_drivers(path, d);
	}
	if (dp != NULL)
		closedir(dp);
}

/* The paths of the -d options of @p args ("-d PATH", "-dPATH"), into @p out; how many. */
static unsigned int
plugin_args(const char *const *args, unsigned int n, const char *out[MAX_PLUGIN_ARGS])
{
	unsigned int k = 0;

	for (unsigned int i = 0; args != NULL && i < n && k < MAX_PLUGIN_ARGS; i++) {
		if (strcmp(args[i], "-d") == 0 && i + 1 < n)
			out[k++] = args[++i];
		else if (strncmp(args[i], "-d", 2) == 0 && args[i][2] != '\0')
			out[k++] = args[i] + 2;
	}
	return k;
}

/* @p s after what @p buf holds, @p sep between; cut where it does not fit */
static void
append(char *buf, size_t len, const char *sep, const char *s)
{
	size_t used = strlen(buf);

	if (used + 1 < len)
		snprintf(buf + used, len - used, "%s%s", used ? sep : "", s);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
mb_eal_check_vdev(const char *devargs, const char *const *args, unsigned int n, char *err,
		  size_t len)
{
	const char *dirs[MAX_PLUGIN_ARGS + 1], *names[MAX_DRIVERS];
	char name[64], file[PATH_MAX], list[2048] = "", where[1024] = "";
	size_t k = strcspn(devargs, ","), m = k;
	unsigned int n_dirs = 0, n_names = 0, n_net = 0;
	struct drivers *d;
	struct stat st;
	bool found = false;

	if (strncmp(devargs, "net_", 4) != 0 || k >= sizeof(name) || !dpdk_is_shared())
		return 0;
	while (m > 4 && isdigit((unsigned char)devargs[m - 1])) /* net_pcap0: net_pcap */
		m--;
	snprintf(name, sizeof(name), "%.*s", (int)m, devargs);
	if (PMD_DIR[0] != '\0')
		dirs[n_dirs++] = PMD_DIR;
	n_dirs += plugin_args(args, n, dirs + n_dirs);
	for (unsigned int i = 0; i < n_dirs; i++) {
		snprintf(file, sizeof(file), "%s/librte_net_%s.so", dirs[i], name + 4);
		if (access(file, F_OK) == 0)
			return 0;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return 0; /* no list, no verdict */
	for (unsigned int i = 0; i < n_dirs; i++) {
		if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			read_dir(dirs[i], i == 0 && PMD_DIR[0] != '\0', d); /* a -d's: all of it */
		else
			read_drivers(dirs[i], d);
		append(where, sizeof(where), ", ", dirs[i]);
	}
	/* DPDK's match: a driver's name begins the device's (net_pcap0, net_pcap_x: net_pcap) */
	for (unsigned int i = 0; i < d->n && !found; i++) {
		size_t dl = strlen(d->d[i].name);

		if (strncmp(d->d[i].name, "net_", 4) != 0)
			continue;
		n_net++;
		found = dl <= k && strncmp(devargs, d->d[i].name, dl) == 0;
		if (d->d[i].virt)
			names[n_names++] = d->d[i].name;
	}
	if (found || n_net == 0) {
		free(d);
		return 0;
	}
	qsort(names, n_names, sizeof(names[0]), cmp_names);
	for (unsigned int i = 0; i < n_names; i++)
		append(list, sizeof(list), ", ", names[i]);
	snprintf(err, len,
		 "'%s': DPDK has no driver %s (its virtual net drivers, in %s: %s): the start "
		 "would stop at it",
		 devargs, name, where, list);
	free(d);
	return -EINVAL;
}

#if RTE_VER_YEAR == 22 && RTE_VER_MONTH == 11
#define CHECK_NAMES 1
/* DPDK 22.11's EAL options (lib/eal/common/eal_common_options.c and the Linux ones), as
 * its usage text lists them; checked against the library by unit/core/eal. */
static const char g_short[] = "+:a:b:c:d:hl:m:n:r:s:S:v"; /* +: no permutation */
static const struct option g_long[] = {
	{"allow", required_argument, NULL, 'a'},
	{"base-virtaddr", required_argument, NULL, 257},
	{"block", required_argument, NULL, 'b'},
	{"create-uio-dev", no_argument, NULL, 258},
	{"file-prefix", required_argument, NULL, 259},
	{"force-max-simd-bitwidth", required_argument, NULL, 260},
	{"help", no_argument, NULL, 'h'},
	{"huge-dir", required_argument, NULL, 261},
	{"huge-unlink", optional_argument, NULL, 262},
	{"huge-worker-stack", optional_argument, NULL, 263},
	{"in-memory", no_argument, NULL, 264},
	{"iova-mode", required_argument, NULL, 265},
	{"lcores", required_argument, NULL, 'l'},
	{"legacy-mem", no_argument, NULL, 266},
	{"log-level", required_argument, NULL, 267},
	{"main-lcore", required_argument, NULL, 268},
	{"match-allocations", no_argument, NULL, 269},
	{"mbuf-pool-ops-name", required_argument, NULL, 270},
	{"no-hpet", no_argument, NULL, 271},
	{"no-huge", no_argument, NULL, 272},
	{"no-pci", no_argument, NULL, 273},
	{"no-shconf", no_argument, NULL, 274},
	{"no-telemetry", no_argument, NULL, 275},
	{"proc-type", required_argument, NULL, 276},
	{"single-file-segments", no_argument, NULL, 277},
	{"socket-limit", required_argument, NULL, 278},
	{"socket-mem", required_argument, NULL, 279},
	{"syslog", optional_argument, NULL, 280},
	{"telemetry", no_argument, NULL, 281},
	{"trace", required_argument, NULL, 282},
	{"trace-bufsz", required_argument, NULL, 283},
	{"trace-dir", required_argument, NULL, 284},
	{"trace-mode", required_argument, NULL, 285},
	{"vdev", required_argument, NULL, 286},
	{"vfio-intr", required_argument, NULL, 287},
	{"vfio-vf-token", required_argument, NULL, 288},
	{"vmware-tsc-map", no_argument, NULL, 289},
	{NULL, 0, NULL, 0},
};
#else
#define CHECK_NAMES 0
#endif

int
mb_eal_check_args(const char *const *args, unsigned int n, unsigned long long *no_huge_bytes,
		  char *err, size_t len)
{
	unsigned long long m_bytes = 64ull << 20; /* DPDK's memory with --no-huge and no -m */
	bool no_huge = false;
	size_t total = 0;
	char **argv;
	int rc = 0;

	if (no_huge_bytes != NULL)
		*no_huge_bytes = 0;
	for (unsigned int i = 0; i < n; i++)
		total += strlen(args[i]) + 1;
	if (n + 24 > MAX_ARGS || total + 8192 > ARG_BUF) {
		snprintf(err, len, "eal.args: %u entries of %zu bytes in all; at most %d and %d", n,
			 total, MAX_ARGS - 24, ARG_BUF - 8192);
		return -EINVAL;
	}
	/* getopt_long() wants a char *argv[]: a copy of the pointers */
	argv = calloc(n + 2, sizeof(*argv));
	if (argv == NULL) {
		snprintf(err, len, "eal.args: out of memory");
		return -ENOMEM;
	}
	argv[0] = (char *)"mediabatchd";
	for (unsigned int i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
#if CHECK_NAMES
	{
		int opt, li, prev = 1;

		opterr = 0;
		optind = 0; /* glibc: start over, its state included */
		while (rc == 0 &&
		       (opt = getopt_long((int)n + 1, argv, g_short, g_long, &li)) != -1) {
			unsigned int at = (unsigned int)prev - 1; /* the entry that held it */
			const char *what = argv[prev];
			char shown[8];

			prev = optind;
			if (strncmp(what, "--", 2) != 0) { /* a short one, maybe of a bundle */
				snprintf(shown, sizeof(shown), "-%c",
					 opt == '?' || opt == ':' ? optopt : opt);
				what = shown;
			}
			if (opt == ':') {
				snprintf(err, len, "eal.args[%u]: '%s' needs a value", at, what);
				rc = -EINVAL;
			} else if (opt == 'h') {
				snprintf(err, len,
					 "eal.args[%u]: '%s' makes DPDK print its usage and exit "
					 "at start",
					 at, what);
				rc = -EINVAL;
			} else if (opt == '?' && optopt != 0 && what != shown) {
				snprintf(err, len, "eal.args[%u]: '%s' takes no value", at, what);
				rc = -EINVAL;
			} else if (opt == '?') {
				snprintf(err, len,
					 "eal.args[%u]: '%s' is not an EAL option of DPDK 22.11 "
					 "(nor "
					 "an unambiguous abbreviation of one): the start would "
					 "stop at it",
					 at, what);
				rc = -EINVAL;
			} else if (opt > 256 && strcmp(g_long[li].name, "no-huge") == 0) {
				no_huge = true;
			} else if (opt > 256 && strcmp(g_long[li].name, "vdev") == 0) {
				char why[1536];

				/* the entry that holds the value: --vdev=X, or X after --vdev */
				if (mb_eal_check_vdev(optarg, args, n, why, sizeof(why)) < 0) {
					snprintf(err, len, "eal.args[%d]: --vdev %s", optind - 2,
						 why);
					rc = -EINVAL;
				}
			} else if (opt == 'm') {
				char *end;
				unsigned long long mb;

				errno = 0;
				mb = strtoull(optarg, &end, 10);
				if (errno != 0 || end == optarg || *end != '\0' || mb == 0 ||
				    mb > (1ull << 30)) {
					snprintf(err, len,
						 "eal.args[%u]: -m '%s': DPDK reads -m as a whole "
						 "number "
						 "of MiB (it would take '1G' as 1 MiB)",
						 at, optarg);
					rc = -EINVAL;
				}
				m_bytes = mb << 20;
			}
		}
		if (rc == 0 && optind <= (int)n) {
			snprintf(
				err, len,
				"eal.args[%d]: '%s' is not an option (a value goes in its option's "
				"entry, '--vdev=net_pcap0,...', or in the entry right after an "
				"option "
				"that takes one)",
				optind - 1, argv[optind]);
			rc = -EINVAL;
		}
		optind = 0;
	}
#else
	for (unsigned int i = 0; i < n; i++) {
		if (strcmp(args[i], "--no-huge") == 0)
			no_huge = true;
		else if (strcmp(args[i], "-m") == 0 && i + 1 < n)
			m_bytes = strtoull(args[i + 1], NULL, 10) << 20;
		else if (strncmp(args[i], "-m", 2) == 0 && args[i][2] != '\0')
			m_bytes = strtoull(args[i] + 2, NULL, 10) << 20;
	}
#endif
	free(argv);
	if (rc == 0 && no_huge && no_huge_bytes != NULL)
		*no_huge_bytes = m_bytes;
	return rc;
}

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
		MB_LOG(ERR,
		       "EAL log level '%s' is not one of error, warning, notice, info, debug (in "
		       "any case; also err, warn, or DPDK's number 1..8)",
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
