/*
 * gpu_probe_test.c (suite "gpu"): discovery on a machine with a CUDA GPU. Where there is
 * none, it skips and prints the probe's own reason.
 */
#include <stdio.h>
#include <string.h>

#include "mb_env.h"
#include "mb_gpu_probe.h"
#include "mb_test.h"

static struct mb_gpu_probe g_probe;

static void
test_devices_described(void)
{
	for (int i = 0; i < g_probe.count; i++) {
		const struct mb_gpu_info *g = &g_probe.gpus[i];

		printf("\n    GPU %d: %s, %.1f GiB, sm_%d%d, %d SMs, PCI %s", i, g->name,
		       (double)g->total_bytes / (1 << 30), g->cc_major, g->cc_minor,
		       g->multiprocessors, g->pci_busid);
		CU_ASSERT_EQUAL(g->index, i);
		CU_ASSERT(strlen(g->name) > 0);
		CU_ASSERT(g->total_bytes > (1ull << 30));
		CU_ASSERT(g->cc_major >= 7);
		CU_ASSERT(g->multiprocessors > 0);
		CU_ASSERT(strlen(g->pci_busid) >= 7);
	}
	CU_ASSERT(g_probe.driver_version >= g_probe.runtime_version / 1000 * 1000);
}

static void
test_located_on_this_machine(void)
{
	struct mb_topo_opts o;
	struct mb_topo *t = NULL;

	mb_topo_opts_init(&o);
	CU_ASSERT_EQUAL_FATAL(mb_topo_create(&o, &t), 0);
	mb_gpu_locate(&g_probe, t);
	for (int i = 0; i < g_probe.count; i++) {
		int rc = mb_topo_pci_numa(t, g_probe.gpus[i].pci_busid);

		/* The address must parse; hwloc may not see PCI inside some containers. */
		CU_ASSERT_NOT_EQUAL(rc, -EINVAL);
		printf("\n    GPU %d: NUMA node %d%s", i, g_probe.gpus[i].numa_node,
		       rc == -ENOENT ? " (hwloc does not see this PCI device here)" : "");
	}
	mb_topo_destroy(&t);
}

static const struct mb_test_case cases[] = {
	{"every GPU is described", test_devices_described},
	{"every GPU has a parseable PCI address and a NUMA node", test_located_on_this_machine},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"gpu probe (device)", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	char why[256];

	if (mb_gpu_probe(&g_probe) == 0) {
		snprintf(why, sizeof(why), "no GPU: %s", g_probe.reason);
		mb_test_skip(why);
	}
	return mb_test_main("gpu_probe_test", suites);
}
