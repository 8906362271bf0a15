/*
 * topo.c: topology, device locality, placement and binding over hwloc.
 *
 * At creation the hwloc tree is flattened into three small arrays (NUMA nodes, cores, CPUs)
 * plus the NUMA distance matrix, so placement is plain array work and testable on any XML
 * topology. PCI objects are kept (hwloc drops them unless told: the I/O filter below). The
 * claim counts behind mb_topo_place() live in those arrays. Owned by the building thread.
 */
#include "mb_topo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>

#include "mb_env.h"

#define MB_LOG_MODULE "topo"
#include "mb_log.h"

struct topo_cpu {
	int os;	    /* OS index */
	int core;   /* index into cores[] */
	int claims; /* threads placed here */
};

struct topo_core {
	int first_cpu; /* index into cpus[] */
	int n_cpus;
	int node;   /* OS index of its NUMA node */
	int claims; /* threads placed on any of its CPUs */
	bool rx;    /* an RX lcore owns it: no sibling for other roles */
};

struct mb_topo {
	hwloc_topology_t hw;
	bool this_system;
	bool allow_shared;
	int n_nodes;
	int *node_os;	     /* [n_nodes] OS indexes, ascending */
	unsigned long *dist; /* [n_nodes * n_nodes] by position in node_os, or NULL */
	int n_cores;
	struct topo_core *cores;
	int n_cpus;
	struct topo_cpu *cpus;
	int n_pci;
};

void
mb_topo_opts_init(struct mb_topo_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->allow_shared = true;
}

static int
node_pos(const struct mb_topo *t, int node_os)
{
	for (int i = 0; i < t->n_nodes; i++)
		if (t->node_os[i] == node_os)
			return i;
	return -1;
}

static int
first_node_of(hwloc_const_nodeset_t set)
{
	int n = hwloc_bitmap_first(set);

	return n < 0 ? 0 : n;
}

static int
load_distances(struct mb_topo *t)
{
	struct hwloc_distances_s *d = NULL;
	unsigned int nr = 1;

	if (hwloc_distances_get_by_type(t->hw, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) != 0 || nr == 0)
		return 0; /* no matrix: locality only */
	t->dist = calloc((size_t)t->n_nodes * (size_t)t->n_nodes, sizeof(*t->dist));
	if (t->dist == NULL) {
		hwloc_distances_release(t->hw, d);
		return -ENOMEM;
	}
	/* Unknown pairs stay "far": larger than any measured value. */
	for (int i = 0; i < t->n_nodes * t->n_nodes; i++)
		t->dist[i] = (unsigned long)-1 / 2;
	for (unsigned int i = 0; i < d->nbobjs; i++) {
		for (unsigned int j = 0; j < d->nbobjs; j++) {
			int a = node_pos(t, (int)d->objs[i]->os_index);
			int b = node_pos(t, (int)d->objs[j]->os_index);

			if (a >= 0 && b >= 0)
				t->dist[a * t->n_nodes + b] =
					(unsigned long)d->values[i * d->nbobjs + j];
		}
	}
	hwloc_distances_release(t->hw, d);
	return 0;
}

static int
flatten(struct mb_topo *t)
{
	int n;

	t->n_nodes = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_NUMANODE);
	t->n_cores = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_CORE);
	t->n_cpus = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PU);
	t->n_pci = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PCI_DEVICE);
	if (t->n_cpus <= 0 || t->n_nodes <= 0)
		return -ENODEV;
	if (t->n_cores <= 0)
		t->n_cores = t->n_cpus; /* hwloc saw no cores: treat each CPU as one */
	t->node_os = calloc((size_t)t->n_nodes, sizeof(*t->node_os));
	t->cores = calloc((size_t)t->n_cores, sizeof(*t->cores));
	t->cpus = calloc((size_t)t->n_cpus, sizeof(*t->cpus));
	if (t->node_os == NULL || t->cores == NULL || t->cpus == NULL)
		return -ENOMEM;
	for (int i = 0; i < t->n_nodes; i++)
		t->node_os[i] = (int)hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, (unsigned)i)
					->os_index;

	/* CPUs in logical order are grouped by core, so a core's CPUs are contiguous. */
	n = 0;
	for (int c = 0; c < t->n_cores; c++) {
		hwloc_obj_t core = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_CORE, (unsigned)c);
		hwloc_obj_t pu = NULL;

		if (core == NULL) /* no cores in this topology */
			core = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_PU, (unsigned)c);
		t->cores[c].first_cpu = n;
		t->cores[c].node = first_node_of(core->nodeset);
		while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(t->hw, core->cpuset,
								      HWLOC_OBJ_PU, pu)) != NULL) {
			if (n >= t->n_cpus)
				return -ENODEV;
			t->cpus[n].os = (int)pu->os_index;
			t->cpus[n].core = c;
			n++;
			t->cores[c].n_cpus++;
		}
	}
	t->n_cpus = n;
	return load_distances(t);
}

int
mb_topo_create(const struct mb_topo_opts *opts, struct mb_topo **out)
{
	struct mb_topo *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->allow_shared = opts->allow_shared;
	if (hwloc_topology_init(&t->hw) != 0) {
		free(t);
		return -ENOMEM;
	}
	/* Keep PCI devices and OS devices (NICs, GPUs): hwloc drops I/O objects by default. */
	hwloc_topology_set_io_types_filter(t->hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	if (opts->xml_path != NULL) {
		if (access(opts->xml_path, R_OK) != 0) {
			rc = -errno;
			MB_LOG(ERR, "topology file %s: %s", opts->xml_path, strerror(errno));
			goto fail;
		}
		if (hwloc_topology_set_xml(t->hw, opts->xml_path) != 0) {
			MB_LOG(ERR, "topology file %s: hwloc cannot read it", opts->xml_path);
			rc = -EINVAL;
			goto fail;
		}
	}
	if (hwloc_topology_load(t->hw) != 0) {
		MB_LOG(ERR, "topology %s: hwloc failed to load it: %s",
		       opts->xml_path ? opts->xml_path : "of this machine", strerror(errno));
		rc = -EINVAL;
		goto fail;
	}
	t->this_system = hwloc_topology_is_thissystem(t->hw);
	rc = flatten(t);
	if (rc < 0) {
		MB_LOG(ERR, "topology %s: %s", opts->xml_path ? opts->xml_path : "of this machine",
		       rc == -ENODEV ? "no usable CPU or NUMA node" : strerror(-rc));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	mb_topo_destroy(&t);
	return rc;
}

void
mb_topo_destroy(struct mb_topo **topo)
{
	struct mb_topo *t;

	if (topo == NULL || *topo == NULL)
		return;
	t = *topo;
	hwloc_topology_destroy(t->hw);
	free(t->node_os);
	free(t->dist);
	free(t->cores);
	free(t->cpus);
	free(t);
	*topo = NULL;
}

bool
mb_topo_is_this_system(const struct mb_topo *topo)
{
	return topo->this_system;
}

int
mb_topo_numa_count(const struct mb_topo *topo)
{
	return topo->n_nodes;
}

int
mb_topo_numa_os_index(const struct mb_topo *topo, int i)
{
	if (i < 0 || i >= topo->n_nodes)
		return -EINVAL;
	return topo->node_os[i];
}

int
mb_topo_core_count(const struct mb_topo *topo)
{
	return topo->n_cores;
}

int
mb_topo_cpu_count(const struct mb_topo *topo)
{
	return topo->n_cpus;
}

int
mb_topo_node_cpus(const struct mb_topo *topo, int node, bool one_per_core, int *cpus, int max)
{
	int n = 0;

	if (node_pos(topo, node) < 0)
		return -EINVAL;
	for (int c = 0; c < topo->n_cores; c++) {
		const struct topo_core *core = &topo->cores[c];

		if (core->node != node)
			continue;
		for (int k = 0; k < (one_per_core ? 1 : core->n_cpus) && k < core->n_cpus; k++) {
			if (n < max)
				cpus[n] = topo->cpus[core->first_cpu + k].os;
			n++;
		}
	}
	return n;
}

static int
cpu_index(const struct mb_topo *topo, int cpu_os)
{
	for (int i = 0; i < topo->n_cpus; i++)
		if (topo->cpus[i].os == cpu_os)
			return i;
	return -1;
}

int
mb_topo_cpu_numa(const struct mb_topo *topo, int cpu)
{
	int i = cpu_index(topo, cpu);

	return i < 0 ? -EINVAL : topo->cores[topo->cpus[i].core].node;
}

/* The NUMA node of the non-I/O object an I/O object hangs off. */
static int
io_obj_numa(const struct mb_topo *topo, hwloc_obj_t obj)
{
	hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo->hw, obj);

	if (anc == NULL || anc->nodeset == NULL)
		return MB_NUMA_ANY;
	if (hwloc_bitmap_weight(anc->nodeset) != 1)
		return MB_NUMA_ANY;
	return hwloc_bitmap_first(anc->nodeset);
}

static bool
valid_busid(const char *busid)
{
	unsigned int dom, bus, dev, fn;
	char tail;

	if (busid == NULL)
		return false;
	if (sscanf(busid, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4)
		return dom <= 0xffff && bus <= 0xff && dev <= 0x1f && fn <= 7;
	if (sscanf(busid, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3)
		return bus <= 0xff && dev <= 0x1f && fn <= 7;
	return false;
}

int
mb_topo_pci_numa(const struct mb_topo *topo, const char *busid)
{
	hwloc_obj_t obj;

	if (!valid_busid(busid))
		return -EINVAL;
	obj = hwloc_get_pcidev_by_busidstring(topo->hw, busid);
	if (obj == NULL)
		return -ENOENT;
	return io_obj_numa(topo, obj);
}

int
mb_topo_osdev_numa(const struct mb_topo *topo, const char *name)
{
	hwloc_obj_t obj = NULL;

	if (name == NULL || name[0] == '\0')
		return -EINVAL;
	while ((obj = hwloc_get_next_osdev(topo->hw, obj)) != NULL)
		if (obj->name != NULL && strcmp(obj->name, name) == 0)
			return io_obj_numa(topo, obj);
	return -ENOENT;
}

static unsigned long
distance(const struct mb_topo *topo, int from_pos, int to_pos)
{
	if (topo->dist != NULL)
		return topo->dist[from_pos * topo->n_nodes + to_pos];
	return from_pos == to_pos ? 10 : 20;
}

int
mb_topo_nodes_by_distance(const struct mb_topo *topo, int from, int *nodes, int max)
{
	int order[topo->n_nodes];
	int from_pos = MB_NUMA_ANY;

	if (from != MB_NUMA_ANY) {
		from_pos = node_pos(topo, from);
		if (from_pos < 0)
			return -EINVAL;
	}
	for (int i = 0; i < topo->n_nodes; i++)
		order[i] = i;
	if (from_pos >= 0) {
		/* Insertion sort by distance; ties keep index order. A handful of nodes. */
		for (int i = 1; i < topo->n_nodes; i++) {
			int v = order[i], j = i - 1;

			while (j >= 0 &&
			       distance(topo, from_pos, order[j]) > distance(topo, from_pos, v)) {
				order[j + 1] = order[j];
				j--;
			}
			order[j + 1] = v;
		}
	}
	for (int i = 0; i < topo->n_nodes && i < max; i++)
		nodes[i] = topo->node_os[order[i]];
	return topo->n_nodes;
}

static void
fill(struct mb_topo *topo, int cpu_idx, int near_node, bool shared, struct mb_topo_placement *out)
{
	struct topo_cpu *cpu = &topo->cpus[cpu_idx];
	struct topo_core *core = &topo->cores[cpu->core];

	out->cpu = cpu->os;
	out->core = cpu->core;
	out->numa_node = core->node;
	out->near = near_node == MB_NUMA_ANY || core->node == near_node;
	out->shared = shared;
}

int
mb_topo_place(struct mb_topo *topo, enum mb_topo_role role, int near_node,
	      struct mb_topo_placement *out)
{
	int order[topo->n_nodes];
	int best = -1;

	if ((unsigned)role >= MB_TOPO_ROLE_COUNT || out == NULL)
		return -EINVAL;
	if (mb_topo_nodes_by_distance(topo, near_node, order, topo->n_nodes) < 0)
		return -EINVAL;

	/* 1. A whole free core, nearest node first. */
	for (int k = 0; k < topo->n_nodes; k++) {
		for (int c = 0; c < topo->n_cores; c++) {
			struct topo_core *core = &topo->cores[c];

			if (core->node != order[k] || core->claims != 0 || core->n_cpus == 0)
				continue;
			core->claims = 1;
			core->rx = role == MB_TOPO_ROLE_RX;
			topo->cpus[core->first_cpu].claims = 1;
			fill(topo, core->first_cpu, near_node, false, out);
			return 0;
		}
	}
	/* 2. A free hyperthread of a core held by non-RX threads. */
	if (role != MB_TOPO_ROLE_RX) {
		for (int k = 0; k < topo->n_nodes; k++) {
			for (int i = 0; i < topo->n_cpus; i++) {
				struct topo_core *core = &topo->cores[topo->cpus[i].core];

				if (core->node != order[k] || core->rx || topo->cpus[i].claims != 0)
					continue;
				core->claims++;
				topo->cpus[i].claims = 1;
				fill(topo, i, near_node, false, out);
				return 0;
			}
		}
	}
	/* 3. Share the least-loaded CPU of the nearest node that has CPUs. */
	if (!topo->allow_shared) {
		MB_LOG(ERR, "no free core left for a thread near NUMA node %d (sharing disabled)",
		       near_node);
		return -ENOSPC;
	}
	for (int k = 0; k < topo->n_nodes && best < 0; k++) {
		for (int i = 0; i < topo->n_cpus; i++) {
			if (topo->cores[topo->cpus[i].core].node != order[k])
				continue;
			if (best < 0 || topo->cpus[i].claims < topo->cpus[best].claims)
				best = i;
		}
	}
	if (best < 0)
		return -ENOSPC;
	topo->cpus[best].claims++;
	topo->cores[topo->cpus[best].core].claims++;
	fill(topo, best, near_node, true, out);
	return 0;
}

int
mb_topo_plan(struct mb_topo *topo, const struct mb_topo_request *reqs, int n)
{
	for (int i = 0; i < n; i++)
		if ((unsigned)reqs[i].role >= MB_TOPO_ROLE_COUNT || reqs[i].out == NULL)
			return -EINVAL;
	for (int role = 0; role < MB_TOPO_ROLE_COUNT; role++) {
		for (int i = 0; i < n; i++) {
			int rc;

			if ((int)reqs[i].role != role)
				continue;
			rc = mb_topo_place(topo, reqs[i].role, reqs[i].near_node, reqs[i].out);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

void
mb_topo_reset_claims(struct mb_topo *topo)
{
	for (int c = 0; c < topo->n_cores; c++) {
		topo->cores[c].claims = 0;
		topo->cores[c].rx = false;
	}
	for (int i = 0; i < topo->n_cpus; i++)
		topo->cpus[i].claims = 0;
}

static int
bind_cpuset(const struct mb_topo *topo, hwloc_const_cpuset_t set)
{
	if (!topo->this_system)
		return -ENOTSUP;
	if (hwloc_set_cpubind(topo->hw, set, HWLOC_CPUBIND_THREAD) != 0)
		return -errno;
	return 0;
}

int
mb_topo_bind_thread(const struct mb_topo *topo, int cpu)
{
	hwloc_obj_t pu;

	if (cpu < 0 || cpu_index(topo, cpu) < 0)
		return -EINVAL;
	pu = hwloc_get_pu_obj_by_os_index(topo->hw, (unsigned)cpu);
	if (pu == NULL)
		return -EINVAL;
	return bind_cpuset(topo, pu->cpuset);
}

static hwloc_obj_t
numa_obj(const struct mb_topo *topo, int node)
{
	hwloc_obj_t obj = NULL;

	while ((obj = hwloc_get_next_obj_by_type(topo->hw, HWLOC_OBJ_NUMANODE, obj)) != NULL)
		if ((int)obj->os_index == node)
			return obj;
	return NULL;
}

int
mb_topo_bind_thread_node(const struct mb_topo *topo, int node)
{
	hwloc_obj_t obj = numa_obj(topo, node);

	if (obj == NULL)
		return -EINVAL;
	return bind_cpuset(topo, obj->cpuset);
}

int
mb_topo_bind_memory(const struct mb_topo *topo, int node)
{
	hwloc_obj_t obj = numa_obj(topo, node);

	if (obj == NULL)
		return -EINVAL;
	if (!topo->this_system)
		return -ENOTSUP;
	if (hwloc_set_membind(topo->hw, obj->nodeset, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
		return -errno;
	return 0;
}

void
mb_topo_describe(const struct mb_topo *topo, char *buf, unsigned int len)
{
	snprintf(buf, len, "%d NUMA node%s, %d cores, %d CPUs, %d PCI devices%s", topo->n_nodes,
		 topo->n_nodes == 1 ? "" : "s", topo->n_cores, topo->n_cpus, topo->n_pci,
		 topo->this_system ? "" : " (not this machine)");
}
