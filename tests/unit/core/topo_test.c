/*
 * topo_test.c: topology queries, device locality, placement and binding.
 *
 * Placement and locality run on the project's own XML fixtures (tests/fixtures/hwloc/, see
 * gen_fixtures.py there): a 2-socket machine with hyperthreads, a NIC and a GPU per socket,
 * and a 4-node sub-NUMA-clustered machine with a distance matrix and a device without
 * locality. Binding runs on this machine's own topology.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_env.h"
#include "mb_topo.h"
#include "mb_test.h"

#define TWO_SOCKET "hwloc/mb-2socket-2gpu.xml"
#define FOUR_NUMA "hwloc/mb-4numa-snc.xml"

static struct mb_topo *
load(const char *fixture, bool allow_shared)
{
	struct mb_topo_opts o;
	struct mb_topo *t = NULL;

	mb_topo_opts_init(&o);
	o.xml_path = mb_test_fixture(fixture);
	o.allow_shared = allow_shared;
	CU_ASSERT_EQUAL(mb_topo_create(&o, &t), 0);
	return t;
}

static void
test_counts_two_socket(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	int cpus[16];
	char desc[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_FALSE(mb_topo_is_this_system(t));
	CU_ASSERT_EQUAL(mb_topo_numa_count(t), 2);
	CU_ASSERT_EQUAL(mb_topo_numa_os_index(t, 0), 0);
	CU_ASSERT_EQUAL(mb_topo_numa_os_index(t, 1), 1);
	CU_ASSERT_EQUAL(mb_topo_numa_os_index(t, 2), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 8);
	CU_ASSERT_EQUAL(mb_topo_cpu_count(t), 16);

	CU_ASSERT_EQUAL(mb_topo_node_cpus(t, 1, true, cpus, 16), 4);
	CU_ASSERT_EQUAL(cpus[0], 4);
	CU_ASSERT_EQUAL(cpus[3], 7);
	CU_ASSERT_EQUAL(mb_topo_node_cpus(t, 0, false, cpus, 16), 8);
	CU_ASSERT_EQUAL(cpus[0], 0);
	CU_ASSERT_EQUAL(cpus[1], 8);				     /* hyperthread sibling */
	CU_ASSERT_EQUAL(mb_topo_node_cpus(t, 0, false, cpus, 2), 8); /* count beyond max */
	CU_ASSERT_EQUAL(mb_topo_node_cpus(t, 5, false, cpus, 16), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_cpu_numa(t, 12), 1);
	CU_ASSERT_EQUAL(mb_topo_cpu_numa(t, 3), 0);
	CU_ASSERT_EQUAL(mb_topo_cpu_numa(t, 99), -EINVAL);
	mb_topo_describe(t, desc, sizeof(desc));
	CU_ASSERT_STRING_EQUAL(desc,
			       "2 NUMA nodes, 8 cores, 16 CPUs, 4 PCI devices (not this machine)");
	mb_topo_destroy(&t);
	CU_ASSERT_PTR_NULL(t);
	mb_topo_destroy(&t);
	mb_topo_destroy(NULL);
}

static void
test_pci_locality(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:17:00.0"), 0); /* eth0 */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "17:00.0"), 0);	 /* domain omitted */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:31:00.0"), 0); /* cuda0 */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:98:00.0"), 1); /* eth1 */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:CA:00.0"), 1); /* cuda1, upper case */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:ff:00.0"), -ENOENT);
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "nic0"), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:17:00.9"), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:17:00.0junk"), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, NULL), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "cuda0"), 0);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "cuda1"), 1);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "eth1"), 1);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "cuda7"), -ENOENT);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, ""), -EINVAL);
	mb_topo_destroy(&t);
}

static void
test_four_numa_distances(void)
{
	struct mb_topo *t = load(FOUR_NUMA, true);
	int nodes[4];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_numa_count(t), 4);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 8);
	CU_ASSERT_EQUAL(mb_topo_cpu_count(t), 8);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "eth0"), 2);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "cuda0"), 3);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "cuda1"), 0);
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "eth9"), MB_NUMA_ANY); /* off the machine */
	CU_ASSERT_EQUAL(mb_topo_pci_numa(t, "0000:f0:00.0"), MB_NUMA_ANY);

	CU_ASSERT_EQUAL(mb_topo_nodes_by_distance(t, 2, nodes, 4), 4);
	CU_ASSERT(nodes[0] == 2 && nodes[1] == 3 && nodes[2] == 0 && nodes[3] == 1);
	CU_ASSERT_EQUAL(mb_topo_nodes_by_distance(t, 1, nodes, 4), 4);
	CU_ASSERT(nodes[0] == 1 && nodes[1] == 0 && nodes[2] == 2 && nodes[3] == 3);
	CU_ASSERT_EQUAL(mb_topo_nodes_by_distance(t, MB_NUMA_ANY, nodes, 4), 4);
	CU_ASSERT(nodes[0] == 0 && nodes[1] == 1 && nodes[2] == 2 && nodes[3] == 3);
	CU_ASSERT_EQUAL(mb_topo_nodes_by_distance(t, 9, nodes, 4), -EINVAL);
	mb_topo_destroy(&t);
}

static void
test_plan_roles_near_devices(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	struct mb_topo_placement rx0, rx1, worker, batcher, other;
	int nic, gpu;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	nic = mb_topo_osdev_numa(t, "eth1");
	gpu = mb_topo_osdev_numa(t, "cuda0");
	CU_ASSERT_EQUAL(nic, 1);
	CU_ASSERT_EQUAL(gpu, 0);
	{
		/* Given in the "wrong" order: plan places RX first regardless. */
		const struct mb_topo_request reqs[] = {
			{MB_TOPO_ROLE_OTHER, MB_NUMA_ANY, &other},
			{MB_TOPO_ROLE_BATCHER, gpu, &batcher},
			{MB_TOPO_ROLE_GPU_WORKER, gpu, &worker},
			{MB_TOPO_ROLE_RX, nic, &rx0},
			{MB_TOPO_ROLE_RX, nic, &rx1},
		};
		CU_ASSERT_EQUAL_FATAL(mb_topo_plan(t, reqs, 5), 0);
	}
	CU_ASSERT(rx0.cpu == 4 && rx0.numa_node == 1 && rx0.near && !rx0.shared);
	CU_ASSERT(rx1.cpu == 5 && rx1.numa_node == 1 && rx1.near && !rx1.shared);
	CU_ASSERT(worker.cpu == 0 && worker.numa_node == 0 && worker.near && !worker.shared);
	CU_ASSERT(batcher.cpu == 1 && batcher.numa_node == 0 && batcher.near);
	CU_ASSERT(other.cpu == 2 && other.near && !other.shared);
	CU_ASSERT_NOT_EQUAL(rx0.core, rx1.core);
	{
		const struct mb_topo_request bad[] = {{(enum mb_topo_role)42, 0, &other}};
		const struct mb_topo_request bad_node[] = {{MB_TOPO_ROLE_RX, 7, &other}};

		CU_ASSERT_EQUAL(mb_topo_plan(t, bad, 1), -EINVAL);
		CU_ASSERT_EQUAL(mb_topo_plan(t, bad_node, 1), -EINVAL);
	}
	mb_topo_destroy(&t);
}

static void
test_spill_to_next_node(void)
{
	struct mb_topo *t = load(FOUR_NUMA, true);
	struct mb_topo_placement p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 2, &p), 0);
	CU_ASSERT(p.cpu == 4 && p.near);
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 2, &p), 0);
	CU_ASSERT(p.cpu == 5 && p.near);
	/* Node 2 is full: the next is node 3, the nearest by the distance matrix. */
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 2, &p), 0);
	CU_ASSERT(p.cpu == 6 && p.numa_node == 3 && !p.near && !p.shared);
	mb_topo_reset_claims(t);
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 2, &p), 0);
	CU_ASSERT_EQUAL(p.cpu, 4);
	mb_topo_destroy(&t);
}

static void
test_hyperthreads_and_sharing(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	struct mb_topo_placement p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_BATCHER, 0, &p), 0);
		CU_ASSERT_EQUAL(p.cpu, i); /* one per core: node 0's four, then node 1's */
		CU_ASSERT_FALSE(p.shared);
	}
	/* Every core is held: a batcher gets a free hyperthread, not a shared CPU. */
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_BATCHER, 0, &p), 0);
	CU_ASSERT(p.cpu == 8 && p.numa_node == 0 && !p.shared);
	/* An RX lcore never takes a sibling: it gets a shared CPU on its node. */
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 0, &p), 0);
	CU_ASSERT(p.shared && p.numa_node == 0);
	mb_topo_destroy(&t);

	t = load(TWO_SOCKET, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 1, &p), 0);
	/* RX holds every core; no sharing allowed: refused, not silently doubled up. */
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 1, &p), -ENOSPC);
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_BATCHER, 1, &p), -ENOSPC);
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_COUNT, 1, &p), -EINVAL);
	mb_topo_destroy(&t);
}

static void
test_load_errors(void)
{
	struct mb_topo_opts o;
	struct mb_topo *t = (struct mb_topo *)0x1;
	char path[] = "/tmp/mb_topo_test_XXXXXX";
	int fd;

	mb_topo_opts_init(&o);
	o.xml_path = "/nonexistent/topology.xml";
	CU_ASSERT_EQUAL(mb_topo_create(&o, &t), -ENOENT);
	CU_ASSERT_PTR_NULL(t);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, "this is not xml\n", 16) == 16);
	close(fd);
	o.xml_path = path;
	CU_ASSERT_EQUAL(mb_topo_create(&o, &t), -EINVAL);
	CU_ASSERT_PTR_NULL(t);
	unlink(path);
}

static void
test_binding_needs_this_system(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_bind_thread(t, 3), -ENOTSUP);
	CU_ASSERT_EQUAL(mb_topo_bind_thread(t, 300), -EINVAL);
	CU_ASSERT_EQUAL(mb_topo_bind_thread_node(t, 1), -ENOTSUP);
	CU_ASSERT_EQUAL(mb_topo_bind_memory(t, 1), -ENOTSUP);
	CU_ASSERT_EQUAL(mb_topo_bind_memory(t, 8), -EINVAL);
	mb_topo_destroy(&t);
}

struct bind_result {
	struct mb_topo *t;
	int cpu;
	int rc;
	int count;
	int is_set;
	int node_rc;
	int node_count;
	int mem_rc;
};

static void *
bind_thread(void *arg)
{
	struct bind_result *r = arg;
	cpu_set_t set;

	r->rc = mb_topo_bind_thread(r->t, r->cpu);
	sched_getaffinity(0, sizeof(set), &set);
	r->count = CPU_COUNT(&set);
	r->is_set = CPU_ISSET(r->cpu, &set);
	r->node_rc = mb_topo_bind_thread_node(r->t, mb_topo_cpu_numa(r->t, r->cpu));
	sched_getaffinity(0, sizeof(set), &set);
	r->node_count = CPU_COUNT(&set);
	r->mem_rc = mb_topo_bind_memory(r->t, mb_topo_cpu_numa(r->t, r->cpu));
	return NULL;
}

static void
test_this_system_binding(void)
{
	struct mb_topo_opts o;
	struct bind_result r = {0};
	pthread_t th;
	cpu_set_t mine;
	int cpus[1024], n;

	mb_topo_opts_init(&o);
	CU_ASSERT_EQUAL_FATAL(mb_topo_create(&o, &r.t), 0);
	CU_ASSERT_TRUE(mb_topo_is_this_system(r.t));
	CU_ASSERT(mb_topo_numa_count(r.t) >= 1);
	sched_getaffinity(0, sizeof(mine), &mine);
	CU_ASSERT_EQUAL(mb_topo_cpu_count(r.t), CPU_COUNT(&mine));
	n = mb_topo_node_cpus(r.t, mb_topo_numa_os_index(r.t, 0), false, cpus, 1024);
	CU_ASSERT_FATAL(n >= 1);
	r.cpu = cpus[n - 1];
	pthread_create(&th, NULL, bind_thread, &r);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.count, 1);
	CU_ASSERT_TRUE(r.is_set);
	CU_ASSERT_EQUAL(r.node_rc, 0);
	CU_ASSERT_EQUAL(r.node_count, n);
	CU_ASSERT_EQUAL(r.mem_rc, 0);
	mb_topo_destroy(&r.t);
}

static const struct mb_test_case cases[] = {
	{"2-socket fixture: nodes, cores, CPUs", test_counts_two_socket},
	{"NUMA node of PCI and OS devices", test_pci_locality},
	{"4-node fixture: distance order, device without locality", test_four_numa_distances},
	{"plan: RX near the NIC, GPU worker and batcher near the GPU",
	 test_plan_roles_near_devices},
	{"placement spills to the nearest other node", test_spill_to_next_node},
	{"hyperthreads before sharing; RX never a sibling; -ENOSPC without sharing",
	 test_hyperthreads_and_sharing},
	{"missing and malformed topology files", test_load_errors},
	{"binding refuses a topology of another machine", test_binding_needs_this_system},
	{"binding a thread and its memory on this machine", test_this_system_binding},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"topo", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("topo_test", suites);
}
