/*
 * probe_test.c: GPU discovery without a GPU, and GPU locality on the topology fixtures.
 * (The same probe on a real GPU is in tests/gpu/gpu_probe_test.c, suite "gpu".)
 */
#include <errno.h>
#include <string.h>

#include "mb_build_config.h"
#include "mb_env.h"
#include "mb_gpu_probe.h"
#include "mb_test.h"

static void
test_probe_never_fails(void)
{
	struct mb_gpu_probe p;
	int n = mb_gpu_probe(&p);

	CU_ASSERT(n >= 0);
	CU_ASSERT_EQUAL(n, p.count);
	CU_ASSERT_EQUAL(p.built_with_cuda, MB_HAVE_CUDA ? true : false);
	if (n == 0) {
		CU_ASSERT(strlen(p.reason) > 0); /* no GPU must come with a reason */
		printf("\n    no GPU here: %s\n", p.reason);
	} else {
		CU_ASSERT_STRING_EQUAL(p.reason, "");
	}
	if (MB_HAVE_CUDA) {
		CU_ASSERT(p.runtime_version >= 12000); /* the runtime linked in: CUDA 12 or newer */
	} else {
		CU_ASSERT_EQUAL(p.runtime_version, 0);
	}
	/* Probing twice is fine and agrees. */
	CU_ASSERT_EQUAL(mb_gpu_probe(&p), n);
}

static void
test_locate_on_fixture(void)
{
	struct mb_topo_opts o;
	struct mb_topo *t = NULL;
	struct mb_gpu_probe p;

	mb_topo_opts_init(&o);
	o.xml_path = mb_test_fixture("hwloc/mb-2socket-2gpu.xml");
	CU_ASSERT_EQUAL_FATAL(mb_topo_create(&o, &t), 0);
	memset(&p, 0, sizeof(p));
	p.count = 4;
	strcpy(p.gpus[0].pci_busid, "0000:31:00.0"); /* cuda0 in the fixture: node 0 */
	strcpy(p.gpus[1].pci_busid, "0000:CA:00.0"); /* cuda1: node 1 (CUDA prints upper case) */
	strcpy(p.gpus[2].pci_busid, "0000:ee:00.0"); /* not in the topology */
	p.gpus[3].pci_busid[0] = '\0';		     /* driver gave no address */
	CU_ASSERT_EQUAL(mb_gpu_locate(&p, t), 2);
	CU_ASSERT_EQUAL(p.gpus[0].numa_node, 0);
	CU_ASSERT_EQUAL(p.gpus[1].numa_node, 1);
	CU_ASSERT_EQUAL(p.gpus[2].numa_node, MB_NUMA_ANY);
	CU_ASSERT_EQUAL(p.gpus[3].numa_node, MB_NUMA_ANY);
	mb_topo_destroy(&t);
}

static void
test_units_from_memory(void)
{
	const uint64_t mib = 1024 * 1024, gib = 1024 * mib;

	/* 80 GiB free, 1 GiB reserve, 1 GiB units: 79 */
	CU_ASSERT_EQUAL(mb_gpu_units(80 * gib, gib, gib, 0), 79);
	/* a part unit does not count */
	CU_ASSERT_EQUAL(mb_gpu_units(80 * gib + 1023 * mib, gib, gib, 0), 79);
	/* capped by max_units */
	CU_ASSERT_EQUAL(mb_gpu_units(80 * gib, gib, gib, 16), 16);
	CU_ASSERT_EQUAL(mb_gpu_units(10 * gib, 0, 512 * mib, 100), 20);
	/* the reserve takes it all, or more */
	CU_ASSERT_EQUAL(mb_gpu_units(gib, gib, gib, 0), 0);
	CU_ASSERT_EQUAL(mb_gpu_units(gib / 2, gib, gib, 0), 0);
	CU_ASSERT_EQUAL(mb_gpu_units(2 * gib - 1, gib, gib, 0), 0);
	CU_ASSERT_EQUAL(mb_gpu_units(gib, 0, 0, 0), 0); /* no unit size: no units */

	/* bytes to units, rounded up: whisper-tiny's 63,792,004 bytes an item (bf16) in units
	 * of 64 MiB is 1; whisper-base's 84,096,004 is 2; a byte over a unit is 2 */
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(63792004, 64 * mib), 1);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(84096004, 64 * mib), 2);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(64 * mib, 64 * mib), 1);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(64 * mib + 1, 64 * mib), 2);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(0, 64 * mib), 0);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(gib, 0), 0);
	CU_ASSERT_EQUAL(mb_gpu_bytes_units(UINT64_MAX, 1), UINT32_MAX);
}

static const struct mb_test_case cases[] = {
	{"VRAM units: free less reserve, whole units, capped; bytes to units, rounded up",
	 test_units_from_memory},
	{"probe reports devices or a reason, never fails", test_probe_never_fails},
	{"GPUs located on their NUMA node by PCI address", test_locate_on_fixture},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"gpu probe", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("probe_test", suites);
}
