/**
 * @file
 * EAL bring-up for the daemon, the tools and the tests.
 *
 * DPDK's EAL can be initialised once per process. mb_eal_init() builds its argument list from
 * options: the embedded default (mb_eal_opts_init()) runs with no hugepages, no PCI bus, no
 * shared-config files, a file prefix unique to the process (`<name>-<pid>`), and the main
 * lcore free to run on every CPU the process may use. That last point matters: by default EAL
 * pins the main thread to one CPU, and every thread it later creates would inherit that pin.
 *
 * Bare-metal deployments pass their own EAL arguments (hugepages, PCI allow-list, lcores)
 * in mb_eal_opts.args; then only argv[0], the extra arguments (virtual devices) and, unless
 * the arguments name one, a unique file prefix are added.
 *
 * Threads: call mb_eal_init() and mb_eal_fini() from the main thread, once each.
 */
#ifndef MB_EAL_H
#define MB_EAL_H

#include <stdbool.h>
#include <stddef.h>

struct mb_eal_opts {
	/** argv[0] and the stem of the file prefix. Default "mediabatch". Borrowed. */
	const char *name;
	/** Memory for DPDK's heap in MiB (-m). Default 256. */
	unsigned int mem_mb;
	/** EAL log level name (see mb_log_parse_level()). Default "warning". Borrowed. */
	const char *log_level;
	/**
	 * Full EAL arguments for bare metal (without argv[0]), or NULL for the embedded default.
	 * When set, mem_mb is not added, nor are --no-huge, --no-pci, --no-shconf or --lcores;
	 * a --file-prefix is added unless one is present. Borrowed for the call.
	 */
	const char *const *args;
	/** Number of entries in @c args. */
	unsigned int n_args;
	/** Extra arguments appended to either (e.g. --vdev=net_null0). Borrowed. */
	const char *const *extra;
	/** Number of entries in @c extra. */
	unsigned int n_extra;
};

/** Fill @p opts with the embedded default. */
void mb_eal_opts_init(struct mb_eal_opts *opts);

/**
 * Initialise EAL. Returns 0; -EALREADY if EAL is already up in this process; -EINVAL for
 * unusable options (logged); -E2BIG if the argument list is too long; or the negative
 * rte_errno of rte_eal_init() (logged with DPDK's reason).
 */
int mb_eal_init(const struct mb_eal_opts *opts);

/**
 * Shut EAL down (rte_eal_cleanup()) and remove the process's runtime directory if it is
 * empty. Every DPDK object (rings, pools, memory from mb_env_zalloc() on DPDK's heap) must
 * be freed first. Returns 0, -EALREADY if EAL is not up, or a negative errno.
 */
int mb_eal_fini(void);

/**
 * Check bare-metal EAL arguments (mb_eal_opts.args, the config's eal.args) as the DPDK this
 * was built against parses them, without starting anything: each option one it knows (an
 * unambiguous abbreviation too, as getopt_long takes), each that needs a value given one,
 * no entry that is not an option, no --help (DPDK would print its usage and exit the
 * process), no --vdev of a driver DPDK lacks (mb_eal_check_vdev()). Returns 0, or -EINVAL
 * with the first problem in @p err
 * ("eal.args[3]: '--no-such-flag' is not an EAL option of DPDK 22.11"). The option table is
 * DPDK 22.11's: built against another version, only the memory below is read.
 *
 * @p no_huge_bytes (may be NULL) gets the memory the arguments fix at start with --no-huge:
 * -m MB, or DPDK's 64 MiB without it; 0 when they use hugepages (the heap may then grow).
 * Threads: uses getopt_long()'s global state; call from the main thread, before EAL is up
 * or after (EAL resets that state itself).
 */
int mb_eal_check_args(const char *const *args, unsigned int n, unsigned long long *no_huge_bytes,
		      char *err, size_t len);

/**
 * Check that a virtual device's arguments (@p devargs: "net_pcap0,rx_pcap=x.pcap", as --vdev
 * and udp.ports[].device take them) name a driver the linked DPDK would find at start: EAL
 * loads its drivers from its plugin directory (RTE_EAL_PMD_PATH, and any -d of @p args), and
 * stops at a --vdev no driver's name begins ("net_pcap" begins "net_pcap0"). Only names that
 * begin "net_" are checked, and only where the drivers can be listed (a shared DPDK whose
 * plugin directory holds them): an alias ("eth_pcap0"), another class of device, or a DPDK
 * linked statically passes. Returns 0, or -EINVAL with "'DEVARGS': DPDK has no driver NAME
 * (its virtual net drivers, in DIR: ...): the start would stop at it" in @p err.
 * @p args (may be NULL) and @p n: the EAL arguments (eal.args), borrowed for the call.
 */
int mb_eal_check_vdev(const char *devargs, const char *const *args, unsigned int n, char *err,
		      size_t len);

/** True between a successful mb_eal_init() and mb_eal_fini(). */
bool mb_eal_is_up(void);

/** The file prefix EAL was started with ("" when EAL is not up). */
const char *mb_eal_file_prefix(void);

#endif /* MB_EAL_H */
