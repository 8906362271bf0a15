/*
 * eal_test.c: EAL bring-up with the embedded default.
 *
 * EAL can start once per process, so the order of the cases matters: bad options first,
 * then a real start, then everything that needs it, then the shutdown.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_version.h>

#include "mb_eal.h"
#include "mb_test.h"

static char g_runtime_dir[PATH_MAX];

static void
test_bad_options(void)
{
	struct mb_eal_opts o;

	mb_eal_opts_init(&o);
	o.name = "";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	o.name = "has space";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	mb_eal_opts_init(&o);
	o.log_level = "loud";
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	mb_eal_opts_init(&o);
	o.mem_mb = 0;
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EINVAL);
	CU_ASSERT_EQUAL(mb_eal_init(NULL), -EINVAL);
	CU_ASSERT_FALSE(mb_eal_is_up());
	CU_ASSERT_STRING_EQUAL(mb_eal_file_prefix(), "");
	CU_ASSERT_EQUAL(mb_eal_fini(), -EALREADY);
}

static void
test_init_embedded_default(void)
{
	struct mb_eal_opts o;
	char expect[64];
	cpu_set_t before, after;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(before), &before), 0);
	mb_eal_opts_init(&o);
	o.name = "eal_test";
	o.mem_mb = 64;
	CU_ASSERT_EQUAL_FATAL(mb_eal_init(&o), 0);
	CU_ASSERT_TRUE(mb_eal_is_up());
	snprintf(expect, sizeof(expect), "eal_test-%ld", (long)getpid());
	CU_ASSERT_STRING_EQUAL(mb_eal_file_prefix(), expect);
	snprintf(g_runtime_dir, sizeof(g_runtime_dir), "%s", rte_eal_get_runtime_dir());
	CU_ASSERT_PTR_NOT_NULL(strstr(g_runtime_dir, expect));
	/* The main thread must not be pinned to one CPU: threads it starts inherit that. */
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(after), &after), 0);
	CU_ASSERT_EQUAL(CPU_COUNT(&after), CPU_COUNT(&before));
	CU_ASSERT_EQUAL(rte_lcore_count(), 1);
	CU_ASSERT_EQUAL(mb_eal_init(&o), -EALREADY);
}

static void
test_no_shared_files(void)
{
	struct stat st;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/config", g_runtime_dir);
	CU_ASSERT_NOT_EQUAL(stat(path, &st), 0); /* --no-shconf: no config file */
}

static void
test_fini_removes_runtime_dir(void)
{
	struct stat st;

	CU_ASSERT_EQUAL(mb_eal_fini(), 0);
	CU_ASSERT_FALSE(mb_eal_is_up());
	CU_ASSERT_NOT_EQUAL(stat(g_runtime_dir, &st), 0);
	CU_ASSERT_EQUAL(mb_eal_fini(), -EALREADY);
}

/* mb_eal_check_args() on @p n arguments: 0 or -EINVAL, the reason into @p why. */
static int
check(char *why, size_t len, unsigned long long *mem, unsigned int n, ...)
{
	const char *args[16];
	va_list ap;

	va_start(ap, n);
	for (unsigned int i = 0; i < n; i++)
		args[i] = va_arg(ap, const char *);
	va_end(ap);
	why[0] = '\0';
	return mb_eal_check_args(args, n, mem, why, len);
}

/* eal.args as --check sees them: DPDK's options, values, --no-huge's memory */
static void
test_check_args(void)
{
	unsigned long long mem = 1;
	char why[512];

	CU_ASSERT_EQUAL(check(why, sizeof(why), &mem, 0), 0);
	CU_ASSERT_EQUAL(mem, 0);
	CU_ASSERT_EQUAL(check(why, sizeof(why), &mem, 5, "-l", "0-3", "--socket-mem=1024", "-a",
			      "0000:17:00.0"),
			0);
	CU_ASSERT_EQUAL(mem, 0); /* hugepages: the heap may grow */
	CU_ASSERT_EQUAL(
		check(why, sizeof(why), &mem, 3, "--no-huge", "--no-pci", "--vdev=net_ring0"), 0);
	CU_ASSERT_EQUAL(mem, 64ull << 20); /* DPDK's default without -m */
	CU_ASSERT_EQUAL(check(why, sizeof(why), &mem, 3, "-m", "512", "--no-hu"), 0);
	CU_ASSERT_EQUAL(mem, 512ull << 20);
	CU_ASSERT_EQUAL(check(why, sizeof(why), &mem, 2, "-m100", "--no-huge"), 0);
	CU_ASSERT_EQUAL(mem, 100ull << 20);
#if RTE_VER_YEAR == 22 && RTE_VER_MONTH == 11
	CU_ASSERT_EQUAL(check(why, sizeof(why), &mem, 3, "--no-huge", "--no-pci", "--no-such-flag"),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "eal.args[2]: '--no-such-flag' is not an EAL option of DPDK "
				    "22.11 (nor an unambiguous abbreviation of one): the start "
				    "would stop at it");
	CU_ASSERT_EQUAL(mem, 0);
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "--no"), -EINVAL); /* ambiguous */
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "eal.args[0]: '--no' is not an EAL option"));
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "-vx"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "eal.args[0]: '-x' is not"));
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 2, "--no-huge", "--vdev"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "eal.args[1]: '--vdev' needs a value");
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "--no-huge=1"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "eal.args[0]: '--no-huge=1' takes no value");
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 3, "--vdev", "net_ring0", "100"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "eal.args[2]: '100' is not an option"));
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 2, "-m", "1G"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "eal.args[0]: -m '1G': DPDK reads -m as a whole"));
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "--help"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "makes DPDK print its usage and exit"));
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "-h"), -EINVAL);
#endif
}

/* rte_eal_init() in a child process with @p vdev on the embedded default's options: whether
 * the start gets past it (the child exits 0) or stops at it. */
static bool
dpdk_starts_with(const char *vdev)
{
	int status;
	pid_t pid = fork();

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char dev[128], prefix[64], dir[PATH_MAX];
		char *argv[] = {"eal_test",
				"--no-huge",
				"--no-pci",
				"--no-shconf",
				"--no-telemetry",
				"-m",
				"64",
				"--log-level=lib.eal:1",
				dev,
				prefix,
				NULL};
		int rc;

		snprintf(dev, sizeof(dev), "--vdev=%s", vdev);
		snprintf(prefix, sizeof(prefix), "--file-prefix=eal_test_vdev-%ld", (long)getpid());
		rc = rte_eal_init(10, argv);
		snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
		if (rc >= 0)
			rte_eal_cleanup();
		(void)rmdir(dir); /* best effort: empty with --no-shconf */
		_exit(rc < 0 ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * A --vdev (and udp.ports[].device, through mb_eal_check_vdev()) must name a driver of the
 * linked DPDK: EAL loads its drivers from RTE_EAL_PMD_PATH at start, and one it does not
 * have stopped the start ("failed to find driver"), where --check had passed. The names DPDK
 * registers that its files do not spell (net_bonding in librte_net_bond, net_tun in
 * librte_net_tap, net_virtio_user in librte_net_virtio) and the aliases (eth_pcap) pass.
 */
static void
test_check_vdevs(void)
{
	static const char *const known[] = {
		"--vdev=net_null0",
		"--vdev=net_pcap0,rx_pcap=/tmp/x.pcap,tx_pcap=/tmp/y.pcap",
		"--vdev=net_ring0",
		"--vdev=net_ring",
		"--vdev=net_af_packet1,iface=lo",
		"--vdev=net_tap0,iface=mb0",
		"--vdev=net_tun0",
		"--vdev=net_bonding0,mode=1,slave=net_null0",
		"--vdev=net_virtio_user0,path=/dev/vhost-net",
		"--vdev=net_pcap_extra", /* DPDK matches a driver's name as a prefix */
		"--vdev=eth_null0",	 /* an alias: not checked */
		"--vdev=crypto_null0",	 /* not a net_ device: not checked */
	};
	char why[2048];

	if (access(RTE_EAL_PMD_PATH "/librte_net_null.so", F_OK) != 0) {
		printf("\n    skipped: no %s/librte_net_null.so (DPDK's drivers are not in its "
		       "plugin directory)",
		       RTE_EAL_PMD_PATH);
		return;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		int rc = check(why, sizeof(why), NULL, 2, "--no-huge", known[i]);

		if (rc != 0)
			printf("\n    %s refused: %s", known[i], why);
		CU_ASSERT_EQUAL(rc, 0);
	}
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 3, "--no-huge", "--vdev", "net_null0"), 0);
	/* the public check, as udp.ports[].device uses it */
	CU_ASSERT_EQUAL(mb_eal_check_vdev("net_null0", NULL, 0, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mb_eal_check_vdev("net_nosuch12", NULL, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "'net_nosuch12': DPDK has no driver net_nosuch ("));
#if RTE_VER_YEAR == 22 && RTE_VER_MONTH == 11 /* eal.args are read with 22.11's options */
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 2, "--no-huge", "--vdev=net_nosuch0"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why,
				      "eal.args[1]: --vdev 'net_nosuch0': DPDK has no driver "
				      "net_nosuch (its virtual net drivers, in " RTE_EAL_PMD_PATH
				      ": net_af_packet, "));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "net_null, "));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "net_pcap, "));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "): the start would stop at it"));
	CU_ASSERT_PTR_NULL(strstr(why, "net_ixgbe")); /* a PCI driver is no virtual device */
	/* the entry that holds the value; an abbreviation of --vdev too */
	CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 3, "--no-huge", "--vd", "net_nosuch,x=1"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "eal.args[2]: --vdev 'net_nosuch,x=1': DPDK has no "
					   "driver net_nosuch ("));
	{ /* a driver -d loads (a file, here one that says it provides net_mine) counts too */
		char tmp[] = "/tmp/eal_test_pmd_XXXXXX", d_arg[64];
		int fd;

		fd = mkstemp(tmp);
		CU_ASSERT_FATAL(fd >= 0);
		dprintf(fd,
			"%c%cPMD_INFO_STRING= {\"name\": \"net_mine\", \"params\": \"\", "
			"\"pci_ids\": []}%c",
			0x7f, 0, 0);
		close(fd);
		snprintf(d_arg, sizeof(d_arg), "-d%s", tmp);
		CU_ASSERT_EQUAL(
			check(why, sizeof(why), NULL, 3, "--no-huge", "--vdev=net_mine0", d_arg),
			0);
		CU_ASSERT_EQUAL(
			check(why, sizeof(why), NULL, 4, "-d", tmp, "--vdev=net_mine0", "-l0"), 0);
		CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 1, "--vdev=net_mine0"), -EINVAL);
		CU_ASSERT_EQUAL(check(why, sizeof(why), NULL, 3, "-d", tmp, "--vdev=net_nosuch0"),
				-EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "net_mine, ")); /* listed with the others */
		unlink(tmp);
	}
#endif
	/* and DPDK agrees: it starts with net_null0 and stops at net_nosuch0 */
	CU_ASSERT_TRUE(dpdk_starts_with("net_null0"));
	CU_ASSERT_FALSE(dpdk_starts_with("net_nosuch0"));
}

/*
 * Every option the linked DPDK's own usage text lists passes the check: the usage of an
 * rte_eal_init() refused in a child process (an unknown option stops it before anything
 * starts), read from the child's stdout.
 */
static void
test_check_args_knows_dpdk(void)
{
	int fds[2], status, known = 0, refused = 0;
	char usage[16384], why[512];
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"eal_test", "--zz-not-an-eal-option", NULL};

		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		rte_eal_init(2, argv);
		fflush(stdout);
		_exit(0);
	}
	close(fds[1]);
	while (got < sizeof(usage) - 1 &&
	       (r = read(fds[0], usage + got, sizeof(usage) - 1 - got)) > 0)
		got += (size_t)r;
	usage[got] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	for (char *line = strtok(usage, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char opt[64];
		const char *p = line + strspn(line, " ");
		size_t n;
		int rc;

		if (p == line || p[0] != '-') /* options are indented: "  -c COREMASK" */
			continue;
		if (p[1] != '-' && p[2] == ',') /* "-b, --block": the long one */
			p += 3 + strspn(p + 3, " ");
		n = p[1] == '-' ? 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-") : 2;
		if (n >= sizeof(opt))
			continue;
		memcpy(opt, p, n);
		opt[n] = '\0';
		rc = check(why, sizeof(why), NULL, 1, opt);
		if (rc == 0 || strstr(why, "needs a value") != NULL ||
		    strstr(why, "print its usage") != NULL) {
			known++;
		} else {
			refused++;
			printf("\n    DPDK lists %s, the check refuses it: %s", opt, why);
		}
	}
	printf("\n    %d options in the usage of %s, all known to the check", known, rte_version());
	CU_ASSERT(known >= 30); /* the usage was read */
	CU_ASSERT_EQUAL(refused, 0);
}

static const struct mb_test_case cases[] = {
	{"eal.args are checked as DPDK parses them", test_check_args},
	{"every option DPDK's usage lists passes the check", test_check_args_knows_dpdk},
	{"a --vdev names a driver DPDK has: net_null passes, net_nosuch is refused",
	 test_check_vdevs},
	{"bad options are refused before EAL starts", test_bad_options},
	{"embedded default starts with a unique prefix, main thread unpinned",
	 test_init_embedded_default},
	{"no shared-config files are written", test_no_shared_files},
	{"fini cleans up and removes the runtime dir", test_fini_removes_runtime_dir},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"eal", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("eal_test", suites);
}
