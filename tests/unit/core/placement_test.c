/*
 * placement_test.c: which thread runs which stage, and where each thread is bound.
 *
 * Every policy runs without a topology and on the XML fixtures of tests/fixtures/hwloc/
 * (see its README): the project's 2-socket and 4-node machines, a 2-core machine (below
 * MB_PLACEMENT_AUTO_MIN_CORES) and two real machines from hwloc's test suite. Each result
 * is checked against the contract of mb_placement.h: every stage on exactly one thread,
 * every rx queue on exactly one thread, rx threads on whole cores of their own on their
 * NIC's node, the batcher's thread on the GPU's node.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mb_env.h"
#include "mb_placement.h"
#include "mb_test.h"
#include "mb_topo.h"

#define TWO_SOCKET "hwloc/mb-2socket-2gpu.xml"
#define FOUR_NUMA "hwloc/mb-4numa-snc.xml"
#define SMALL "hwloc/mb-1socket-2core.xml"
#define HWLOC_2N "hwloc/32em64t-2n8c2t-pci-normalio.xml"
#define HWLOC_4N "hwloc/96em64t-4n4d3ca2co-pci.xml"

#define MAX_CPUS 256

static const enum mb_placement_policy policies[] = {
	MB_PLACEMENT_AUTO,
	MB_PLACEMENT_SINGLE,
	MB_PLACEMENT_PER_STAGE,
};

static const uint32_t rx_counts[] = {0, 1, 2, 4};

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

static int
dev_node(struct mb_topo *t, const char *osdev)
{
	int n = mb_topo_osdev_numa(t, osdev);

	CU_ASSERT(n >= 0);
	return n;
}

/*
 * A core id for CPU @p cpu (unique within the topology), from what mb_topo.h exposes: a
 * node's CPUs come grouped by core, and one_per_core lists each core's first CPU.
 */
static int
cpu_core(struct mb_topo *t, int cpu)
{
	int core = -1;

	for (int i = 0; i < mb_topo_numa_count(t); i++) {
		int node = mb_topo_numa_os_index(t, i);
		int all[MAX_CPUS], first[MAX_CPUS];
		int n_all = mb_topo_node_cpus(t, node, false, all, MAX_CPUS);
		int n_first = mb_topo_node_cpus(t, node, true, first, MAX_CPUS);
		int f = 0;

		CU_ASSERT_FATAL(n_all <= MAX_CPUS && n_first <= n_all);
		for (int k = 0; k < n_all; k++) {
			if (f < n_first && all[k] == first[f]) {
				core++;
				f++;
			}
			if (all[k] == cpu)
				return core;
		}
	}
	return -1;
}

static uint32_t
want_threads(enum mb_placement_policy eff, uint32_t n_rx)
{
	switch (eff) {
	case MB_PLACEMENT_SINGLE:
		return 1;
	case MB_PLACEMENT_PER_STAGE:
		return 2 + n_rx;
	case MB_PLACEMENT_AUTO:
		return 1 + n_rx;
	}
	return 0;
}

/* The node where the thread that runs the batcher belongs (mb_placement.h). */
static int
control_node(const struct mb_placement_input *in)
{
	if (in->gpu_numa != MB_NUMA_ANY)
		return in->gpu_numa;
	return in->n_rx > 0 ? in->rx_numa[0] : MB_NUMA_ANY;
}

/*
 * The contract: thread count and names for the effective policy, every stage and rx queue
 * exactly once, and with a topology: rx threads on whole cores of their own on their NIC's
 * node, the batcher's thread on the control node.
 */
static void
check_placement(struct mb_topo *t, const struct mb_placement_input *in,
		const struct mb_placement *p, enum mb_placement_policy want_eff, bool want_bound)
{
	unsigned int frontdoor = 0, batcher = 0, rx_seen[MB_PLACEMENT_MAX_RX] = {0};
	int cores[MB_PLACEMENT_MAX_THREADS];

	CU_ASSERT_EQUAL(p->policy, in->policy);
	CU_ASSERT_EQUAL(p->effective, want_eff);
	CU_ASSERT_EQUAL_FATAL(p->n_threads, want_threads(want_eff, in->n_rx));
	for (uint32_t i = 0; i < p->n_threads; i++) {
		const struct mb_placement_thread *th = &p->threads[i];
		char want_name[16];

		/* names: poll0 | control, rx0.. | frontdoor, batcher, rx0.. */
		if (want_eff == MB_PLACEMENT_SINGLE)
			snprintf(want_name, sizeof(want_name), "poll0");
		else if (want_eff == MB_PLACEMENT_AUTO)
			snprintf(want_name, sizeof(want_name), i == 0 ? "control" : "rx%u", i - 1);
		else if (i < 2)
			snprintf(want_name, sizeof(want_name), i == 0 ? "frontdoor" : "batcher");
		else
			snprintf(want_name, sizeof(want_name), "rx%u", i - 2);
		CU_ASSERT_STRING_EQUAL(th->name, want_name);

		frontdoor += (th->stages & MB_STAGE_FRONTDOOR) != 0;
		batcher += (th->stages & MB_STAGE_BATCHER) != 0;
		CU_ASSERT_EQUAL(th->stages & ~(uint32_t)(MB_STAGE_FRONTDOOR | MB_STAGE_BATCHER |
							 MB_STAGE_RX),
				0);
		if (th->stages & MB_STAGE_RX) {
			CU_ASSERT(th->n_rx > 0);
			CU_ASSERT_FATAL(th->rx_first + th->n_rx <= in->n_rx);
			for (uint32_t q = th->rx_first; q < th->rx_first + th->n_rx; q++)
				rx_seen[q]++;
		} else {
			CU_ASSERT_EQUAL(th->n_rx, 0);
		}

		if (!want_bound) {
			CU_ASSERT_EQUAL(th->cpu, -1);
			CU_ASSERT_EQUAL(th->numa_node, MB_NUMA_ANY);
			continue;
		}
		CU_ASSERT_FATAL(th->cpu >= 0);
		CU_ASSERT_EQUAL(th->numa_node, mb_topo_cpu_numa(t, th->cpu));
		cores[i] = cpu_core(t, th->cpu);
		CU_ASSERT(cores[i] >= 0);
		if ((th->stages & MB_STAGE_BATCHER) && control_node(in) != MB_NUMA_ANY)
			CU_ASSERT_EQUAL(th->numa_node, control_node(in));
	}
	CU_ASSERT_EQUAL(frontdoor, 1);
	CU_ASSERT_EQUAL(batcher, 1);
	for (uint32_t q = 0; q < MB_PLACEMENT_MAX_RX; q++)
		CU_ASSERT_EQUAL(rx_seen[q], q < in->n_rx ? 1u : 0u);
	if (!want_bound)
		return;

	/* An rx-only thread: on its NIC's node, on a core no other thread has. */
	for (uint32_t i = 0; i < p->n_threads; i++) {
		const struct mb_placement_thread *th = &p->threads[i];

		if (th->stages != MB_STAGE_RX)
			continue;
		CU_ASSERT_EQUAL(th->n_rx, 1);
		if (in->rx_numa[th->rx_first] != MB_NUMA_ANY)
			CU_ASSERT_EQUAL(th->numa_node, in->rx_numa[th->rx_first]);
		for (uint32_t j = 0; j < p->n_threads; j++)
			if (j != i)
				CU_ASSERT_NOT_EQUAL(cores[j], cores[i]);
	}
}

static void
fill_input(struct mb_placement_input *in, enum mb_placement_policy pol, const int *nodes,
	   uint32_t n_rx, int gpu)
{
	memset(in, 0, sizeof(*in));
	in->policy = pol;
	in->n_rx = n_rx;
	for (uint32_t i = 0; i < n_rx; i++)
		in->rx_numa[i] = nodes[i];
	in->gpu_numa = gpu;
}

/* Every policy with 0, 1, 2 and 4 rx queues on @p nodes, GPU on @p gpu; fresh claims. */
static void
run_policies(const char *fixture, const int *nodes, int gpu)
{
	struct mb_topo *t = load(fixture, false); /* no sharing: a shared CPU fails */

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (size_t pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
		for (size_t ri = 0; ri < sizeof(rx_counts) / sizeof(rx_counts[0]); ri++) {
			struct mb_placement_input in;
			struct mb_placement p;
			int rc;

			fill_input(&in, policies[pi], nodes, rx_counts[ri], gpu);
			mb_topo_reset_claims(t);
			rc = mb_placement_compute(t, &in, &p);
			CU_ASSERT_EQUAL(rc, 0);
			if (rc != 0) {
				fprintf(stderr, "%s: %s, %u rx: %d\n", fixture,
					mb_placement_policy_name(policies[pi]), rx_counts[ri], rc);
				continue;
			}
			check_placement(t, &in, &p, policies[pi], true); /* AUTO splits */
		}
	}
	mb_topo_destroy(&t);
}

static void
test_parse_and_names(void)
{
	enum mb_placement_policy p = MB_PLACEMENT_PER_STAGE;
	const char *bad[] = {
		"", "AUTO", "Single", "per_stage", "perstage", "single ", " auto", "auto\n", "none",
	};

	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		const char *name = mb_placement_policy_name(policies[i]);

		CU_ASSERT_EQUAL(mb_placement_parse(name, &p), 0);
		CU_ASSERT_EQUAL(p, policies[i]);
	}
	CU_ASSERT_STRING_EQUAL(mb_placement_policy_name(MB_PLACEMENT_AUTO), "auto");
	CU_ASSERT_STRING_EQUAL(mb_placement_policy_name(MB_PLACEMENT_SINGLE), "single");
	CU_ASSERT_STRING_EQUAL(mb_placement_policy_name(MB_PLACEMENT_PER_STAGE), "per-stage");
	CU_ASSERT_STRING_EQUAL(mb_placement_policy_name((enum mb_placement_policy)42), "unknown");
	CU_ASSERT_STRING_EQUAL(mb_placement_policy_name(MB_PLACEMENT_PER_STAGE + 1), "unknown");

	p = MB_PLACEMENT_SINGLE;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(mb_placement_parse(bad[i], &p), -EINVAL);
		CU_ASSERT_EQUAL(p, MB_PLACEMENT_SINGLE); /* untouched on error */
	}
	CU_ASSERT_EQUAL(mb_placement_parse(NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_placement_parse("auto", NULL), -EINVAL);
}

static void
test_no_topology(void)
{
	const int nodes[] = {0, 1, MB_NUMA_ANY, 3};

	for (size_t pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
		for (size_t ri = 0; ri < sizeof(rx_counts) / sizeof(rx_counts[0]); ri++) {
			struct mb_placement_input in;
			struct mb_placement p;

			fill_input(&in, policies[pi], nodes, rx_counts[ri], 1);
			CU_ASSERT_EQUAL_FATAL(mb_placement_compute(NULL, &in, &p), 0);
			/* AUTO without a topology is SINGLE; nothing is bound */
			check_placement(NULL, &in, &p,
					policies[pi] == MB_PLACEMENT_AUTO ? MB_PLACEMENT_SINGLE
									  : policies[pi],
					false);
		}
	}
}

static void
test_two_socket(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	int nics[4], gpu0, gpu1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 8);
	nics[0] = dev_node(t, "eth1"); /* 1 */
	nics[1] = dev_node(t, "eth0"); /* 0 */
	nics[2] = nics[0];
	nics[3] = nics[1];
	gpu0 = dev_node(t, "cuda0");
	gpu1 = dev_node(t, "cuda1");
	CU_ASSERT(nics[0] == 1 && nics[1] == 0 && gpu0 == 0 && gpu1 == 1);
	mb_topo_destroy(&t);

	run_policies(TWO_SOCKET, nics, gpu0);
	run_policies(TWO_SOCKET, nics, gpu1);
	run_policies(TWO_SOCKET, nics, MB_NUMA_ANY); /* no GPU: the first NIC's node */
}

static void
test_four_numa(void)
{
	struct mb_topo *t = load(FOUR_NUMA, true);
	int nics[4], gpu0, gpu1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 8);
	nics[0] = dev_node(t, "eth0"); /* 2 */
	nics[1] = 0;
	nics[2] = 1;
	nics[3] = 3;
	gpu0 = dev_node(t, "cuda0"); /* 3 */
	gpu1 = dev_node(t, "cuda1"); /* 0 */
	CU_ASSERT(nics[0] == 2 && gpu0 == 3 && gpu1 == 0);
	/* eth9 hangs off the machine: MB_NUMA_ANY, placed anywhere */
	CU_ASSERT_EQUAL(mb_topo_osdev_numa(t, "eth9"), MB_NUMA_ANY);
	mb_topo_destroy(&t);

	run_policies(FOUR_NUMA, nics, gpu0);
	run_policies(FOUR_NUMA, nics, gpu1);
	run_policies(FOUR_NUMA, nics, MB_NUMA_ANY);
	{
		const int any_first[] = {MB_NUMA_ANY, 2, 0, 1};

		run_policies(FOUR_NUMA, any_first, gpu0);
		run_policies(FOUR_NUMA, any_first, MB_NUMA_ANY); /* nothing near anything */
	}
}

static void
test_hwloc_machines(void)
{
	struct mb_topo *t = load(HWLOC_2N, true);
	int nics[MB_PLACEMENT_MAX_RX], gpu;

	/* 2 nodes, 16 cores x 2 threads; eth0, eth1 and cuda0 on node 1 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_numa_count(t), 2);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 16);
	CU_ASSERT_EQUAL(mb_topo_cpu_count(t), 32);
	nics[0] = dev_node(t, "eth0");
	nics[1] = 0;
	nics[2] = dev_node(t, "eth1");
	nics[3] = 0;
	gpu = dev_node(t, "cuda0");
	CU_ASSERT(nics[0] == 1 && nics[2] == 1 && gpu == 1);
	mb_topo_destroy(&t);
	run_policies(HWLOC_2N, nics, gpu);
	run_policies(HWLOC_2N, nics, 0);

	/* 4 nodes, 96 cores; eth0/2/4/6 on nodes 0..3, GPU card0 on node 0 */
	t = load(HWLOC_4N, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_numa_count(t), 4);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 96);
	nics[0] = dev_node(t, "eth6");
	nics[1] = dev_node(t, "eth0");
	nics[2] = dev_node(t, "eth4");
	nics[3] = dev_node(t, "eth2");
	gpu = dev_node(t, "card0");
	CU_ASSERT(nics[0] == 3 && nics[1] == 0 && nics[2] == 2 && nics[3] == 1 && gpu == 0);
	run_policies(HWLOC_4N, nics, gpu);

	/* The most rx queues: 8 per node, each on a whole core of its node. */
	for (int i = 0; i < MB_PLACEMENT_MAX_RX; i++)
		nics[i] = nics[i % 4];
	for (size_t pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
		struct mb_placement_input in;
		struct mb_placement p;

		fill_input(&in, policies[pi], nics, MB_PLACEMENT_MAX_RX, gpu);
		mb_topo_reset_claims(t);
		CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
		check_placement(t, &in, &p, policies[pi], true);
	}
	mb_topo_destroy(&t);
}

static void
test_small_machine(void)
{
	struct mb_topo *t = load(SMALL, true);
	const int nodes[] = {0, 0};
	struct mb_placement_input in;
	struct mb_placement p;
	struct mb_topo_placement tp;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_topo_core_count(t), 2); /* 4 CPUs: cores count, not CPUs */
	CU_ASSERT_EQUAL(mb_topo_cpu_count(t), 4);

	/* AUTO and SINGLE: one thread, not bound, no CPU claimed */
	for (uint32_t n_rx = 0; n_rx <= 2; n_rx++) {
		fill_input(&in, MB_PLACEMENT_AUTO, nodes, n_rx, MB_NUMA_ANY);
		CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
		check_placement(t, &in, &p, MB_PLACEMENT_SINGLE, false);
		fill_input(&in, MB_PLACEMENT_SINGLE, nodes, n_rx, 0);
		CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
		check_placement(t, &in, &p, MB_PLACEMENT_SINGLE, false);
	}
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 0, &tp), 0);
	CU_ASSERT(tp.cpu == 0 && !tp.shared); /* the first core is still free */
	mb_topo_reset_claims(t);

	/*
	 * PER_STAGE, asked for: bound; the rx threads get the two cores first, the front door
	 * and the batcher share CPUs of theirs (never a whole core of their own: there is none)
	 */
	fill_input(&in, MB_PLACEMENT_PER_STAGE, nodes, 2, 0);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
	CU_ASSERT_EQUAL_FATAL(p.n_threads, 4);
	CU_ASSERT_EQUAL(p.effective, MB_PLACEMENT_PER_STAGE);
	CU_ASSERT(p.threads[2].cpu == 0 && p.threads[3].cpu == 2);
	CU_ASSERT(p.threads[0].cpu >= 0 && p.threads[0].numa_node == 0);
	CU_ASSERT(p.threads[1].cpu >= 0 && p.threads[1].numa_node == 0);
	mb_topo_destroy(&t);

	/* ... and without sharing, the error of mb_topo_place(), and no thread */
	t = load(SMALL, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mb_placement_compute(t, &in, &p), -ENOSPC);
	CU_ASSERT_EQUAL(p.n_threads, 0);
	mb_topo_destroy(&t);
}

static void
test_single_bound_and_claims(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	const int nodes[] = {0, 0};
	struct mb_placement_input in;
	struct mb_placement p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* SINGLE on a big machine: bound, on the GPU's node */
	fill_input(&in, MB_PLACEMENT_SINGLE, nodes, 2, 1);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
	check_placement(t, &in, &p, MB_PLACEMENT_SINGLE, true);
	CU_ASSERT(p.threads[0].cpu == 4 && p.threads[0].numa_node == 1);
	/* the claim stays: placing again without a reset moves on */
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
	CU_ASSERT_EQUAL(p.threads[0].cpu, 5);
	mb_topo_reset_claims(t);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
	CU_ASSERT_EQUAL(p.threads[0].cpu, 4);

	/* AUTO: rx first (cores 4, 5 of node 1 for queues on node 1), then control */
	{
		const int n1[] = {1, 1};

		mb_topo_reset_claims(t);
		fill_input(&in, MB_PLACEMENT_AUTO, n1, 2, 1);
		CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
		CU_ASSERT(p.threads[1].cpu == 4 && p.threads[2].cpu == 5);
		CU_ASSERT(p.threads[0].cpu == 6 && p.threads[0].numa_node == 1);
	}
	mb_topo_destroy(&t);
}

static void
test_describe(void)
{
	struct mb_topo *t;
	const int nodes[] = {1, 0, 1, 0};
	struct mb_placement_input in;
	struct mb_placement p;
	char buf[512];
	size_t n;

	fill_input(&in, MB_PLACEMENT_SINGLE, nodes, 2, MB_NUMA_ANY);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(NULL, &in, &p), 0);
	n = mb_placement_describe(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "poll0 (cpu any): frontdoor+egress, batcher, rx0, rx1");
	CU_ASSERT_EQUAL(n, strlen(buf));

	fill_input(&in, MB_PLACEMENT_SINGLE, nodes, 0, MB_NUMA_ANY);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(NULL, &in, &p), 0);
	mb_placement_describe(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "poll0 (cpu any): frontdoor+egress, batcher");

	t = load(TWO_SOCKET, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	fill_input(&in, MB_PLACEMENT_AUTO, nodes, 1, 1);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
	n = mb_placement_describe(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "control (cpu 5, node 1): frontdoor+egress, batcher; "
				    "rx0 (cpu 4, node 1): rx0");
	CU_ASSERT_EQUAL(n, strlen(buf));

	/* every thread named, in every policy */
	for (size_t pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
		mb_topo_reset_claims(t);
		fill_input(&in, policies[pi], nodes, 4, 0);
		CU_ASSERT_EQUAL_FATAL(mb_placement_compute(t, &in, &p), 0);
		n = mb_placement_describe(&p, buf, sizeof(buf));
		CU_ASSERT_EQUAL(n, strlen(buf));
		for (uint32_t i = 0; i < p.n_threads; i++) {
			char head[32];

			snprintf(head, sizeof(head), "%s (cpu %d, node %d): ", p.threads[i].name,
				 p.threads[i].cpu, p.threads[i].numa_node);
			CU_ASSERT_PTR_NOT_NULL(strstr(buf, head));
		}
		for (uint32_t q = 0; q < 4; q++) {
			char rx[8];

			snprintf(rx, sizeof(rx), ": rx%u", q);
			if (policies[pi] != MB_PLACEMENT_SINGLE)
				CU_ASSERT_PTR_NOT_NULL(strstr(buf, rx)); /* its own thread */
		}
	}
	mb_topo_destroy(&t);

	/* truncation: always terminated, returns what was written */
	fill_input(&in, MB_PLACEMENT_PER_STAGE, nodes, 4, MB_NUMA_ANY);
	CU_ASSERT_EQUAL_FATAL(mb_placement_compute(NULL, &in, &p), 0);
	memset(buf, 'x', sizeof(buf));
	n = mb_placement_describe(&p, buf, 10);
	CU_ASSERT_EQUAL(n, 9);
	CU_ASSERT_STRING_EQUAL(buf, "frontdoor");
	CU_ASSERT_EQUAL(buf[10], 'x');
	n = mb_placement_describe(&p, buf, 1);
	CU_ASSERT(n == 0 && buf[0] == '\0');
	buf[0] = 'x';
	CU_ASSERT_EQUAL(mb_placement_describe(&p, buf, 0), 0);
	CU_ASSERT_EQUAL(buf[0], 'x');
	CU_ASSERT_EQUAL(mb_placement_describe(&p, NULL, 10), 0);
	/* a buffer that ends inside each separator and name */
	{
		char full[512];
		size_t len = mb_placement_describe(&p, full, sizeof(full));

		for (size_t cut = 1; cut <= len + 1; cut++) {
			n = mb_placement_describe(&p, buf, cut);
			CU_ASSERT_EQUAL(n, cut - 1 < len ? cut - 1 : len);
			CU_ASSERT_EQUAL(strncmp(buf, full, n), 0);
			CU_ASSERT_EQUAL(buf[n], '\0');
		}
	}
}

static void
test_bad_input(void)
{
	struct mb_topo *t = load(TWO_SOCKET, true);
	int nodes[MB_PLACEMENT_MAX_RX + 1] = {0};
	struct mb_placement_input in;
	struct mb_placement p;
	struct mb_topo_placement tp;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (size_t pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
		fill_input(&in, policies[pi], nodes, MB_PLACEMENT_MAX_RX, 0);
		in.n_rx = MB_PLACEMENT_MAX_RX + 1;
		CU_ASSERT_EQUAL(mb_placement_compute(t, &in, &p), -EINVAL);
		CU_ASSERT_EQUAL(p.n_threads, 0);
		CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), -EINVAL);
		in.n_rx = UINT32_MAX;
		CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), -EINVAL);
		/* the limit itself is fine */
		in.n_rx = MB_PLACEMENT_MAX_RX;
		CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), 0);
		CU_ASSERT(p.n_threads <= MB_PLACEMENT_MAX_THREADS);
	}
	/* nothing was claimed by the refused calls */
	CU_ASSERT_EQUAL(mb_topo_place(t, MB_TOPO_ROLE_RX, 0, &tp), 0);
	CU_ASSERT_EQUAL(tp.cpu, 0);
	mb_topo_reset_claims(t);

	fill_input(&in, (enum mb_placement_policy)42, nodes, 1, 0);
	CU_ASSERT_EQUAL(mb_placement_compute(t, &in, &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), -EINVAL);
	fill_input(&in, MB_PLACEMENT_AUTO, nodes, 1, 0);
	CU_ASSERT_EQUAL(mb_placement_compute(t, NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_placement_compute(t, &in, NULL), -EINVAL);
	in.rx_numa[0] = -2;
	CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), -EINVAL);
	in.rx_numa[0] = 0;
	in.gpu_numa = -7;
	CU_ASSERT_EQUAL(mb_placement_compute(NULL, &in, &p), -EINVAL);
	/* a node the topology does not have: mb_topo_place()'s -EINVAL, no thread */
	in.gpu_numa = 0;
	in.rx_numa[0] = 9;
	CU_ASSERT_EQUAL(mb_placement_compute(t, &in, &p), -EINVAL);
	CU_ASSERT_EQUAL(p.n_threads, 0);
	/* rx_numa past n_rx is not read */
	in.rx_numa[0] = 1;
	in.rx_numa[1] = -5;
	CU_ASSERT_EQUAL(mb_placement_compute(t, &in, &p), 0);
	mb_topo_destroy(&t);
}

static const struct mb_test_case cases[] = {
	{"policy names: parse and name round trip, bad names", test_parse_and_names},
	{"no topology: every policy unbound, AUTO is SINGLE", test_no_topology},
	{"2-socket fixture: every policy, 0/1/2/4 rx queues", test_two_socket},
	{"4-node fixture: every policy, 0/1/2/4 rx queues", test_four_numa},
	{"hwloc's 2-node and 4-node machines, up to MB_PLACEMENT_MAX_RX queues",
	 test_hwloc_machines},
	{"2-core machine: AUTO is SINGLE and unbound; PER_STAGE shares or fails",
	 test_small_machine},
	{"SINGLE bound near the GPU; claims persist until reset", test_single_bound_and_claims},
	{"describe: format, every thread, truncation", test_describe},
	{"bad input: too many rx queues, unknown policy, bad nodes", test_bad_input},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"placement", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("placement_test", suites);
}
