/*
 * placement.c: which reactor runs which poller stage, and the CPU each reactor is bound to.
 *
 * A pure computation over struct mb_placement_input: the policy decides the threads and
 * their stages (SINGLE: "poll0"; PER_STAGE: "frontdoor", "batcher", "rxN"; AUTO: "control"
 * and "rxN" on a machine of MB_PLACEMENT_AUTO_MIN_CORES cores or more, else SINGLE), then
 * one mb_topo_plan() call gives each thread a CPU, rx threads first so they get whole cores
 * near their NICs. The only state it touches outside @p out is the topology's claims.
 *
 * Threads: called on the thread that builds the pipeline (the owner of the topology).
 */
#include "mb_placement.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mb_env.h"

#define MB_LOG_MODULE "placement"
#include "mb_log.h"

static const char *const policy_names[] = {
	[MB_PLACEMENT_AUTO] = "auto",
	[MB_PLACEMENT_SINGLE] = "single",
	[MB_PLACEMENT_PER_STAGE] = "per-stage",
};

#define N_POLICIES (sizeof(policy_names) / sizeof(policy_names[0]))

int
mb_placement_parse(const char *name, enum mb_placement_policy *out)
{
	if (name == NULL || out == NULL)
		return -EINVAL;
	for (size_t i = 0; i < N_POLICIES; i++) {
		if (strcmp(name, policy_names[i]) == 0) {
			*out = (enum mb_placement_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
mb_placement_policy_name(enum mb_placement_policy p)
{
	if ((unsigned int)p >= N_POLICIES)
		return "unknown";
	return policy_names[p];
}

/* Append a thread (unbound until placed) and return it. */
static struct mb_placement_thread *
add_thread(struct mb_placement *out, const char *name, uint32_t stages)
{
	struct mb_placement_thread *t = &out->threads[out->n_threads++];

	snprintf(t->name, sizeof(t->name), "%s", name);
	t->stages = stages;
	t->cpu = -1;
	t->numa_node = MB_NUMA_ANY;
	return t;
}

static void
add_rx_threads(struct mb_placement *out, uint32_t n_rx)
{
	for (uint32_t i = 0; i < n_rx; i++) {
		char name[16];
		struct mb_placement_thread *t;

		snprintf(name, sizeof(name), "rx%u", i);
		t = add_thread(out, name, MB_STAGE_RX);
		t->rx_first = i;
		t->n_rx = 1;
	}
}

/* The node of everything that is not an rx thread: the GPU's, else the first NIC's. */
static int
control_node(const struct mb_placement_input *in)
{
	if (in->gpu_numa != MB_NUMA_ANY)
		return in->gpu_numa;
	if (in->n_rx > 0)
		return in->rx_numa[0];
	return MB_NUMA_ANY;
}

static enum mb_topo_role
thread_role(const struct mb_placement_thread *t)
{
	if (t->stages & MB_STAGE_BATCHER)
		return MB_TOPO_ROLE_BATCHER;
	if (t->stages == MB_STAGE_RX)
		return MB_TOPO_ROLE_RX;
	return MB_TOPO_ROLE_OTHER;
}

static int
thread_node(const struct mb_placement_input *in, const struct mb_placement_thread *t)
{
	if (t->stages == MB_STAGE_RX)
		return in->rx_numa[t->rx_first]; /* one queue per rx-only thread */
	return control_node(in);
}

/* Give every thread a CPU from @p topo, rx threads first (mb_topo_plan()'s order). */
static int
bind_threads(struct mb_topo *topo, const struct mb_placement_input *in, struct mb_placement *out)
{
	struct mb_topo_request reqs[MB_PLACEMENT_MAX_THREADS];
	struct mb_topo_placement got[MB_PLACEMENT_MAX_THREADS];
	int rc;

	for (uint32_t i = 0; i < out->n_threads; i++) {
		reqs[i].role = thread_role(&out->threads[i]);
		reqs[i].near_node = thread_node(in, &out->threads[i]);
		reqs[i].out = &got[i];
	}
	rc = mb_topo_plan(topo, reqs, (int)out->n_threads);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < out->n_threads; i++) {
		out->threads[i].cpu = got[i].cpu;
		out->threads[i].numa_node = got[i].numa_node;
	}
	return 0;
}

static int
check_input(const struct mb_placement_input *in)
{
	if ((unsigned int)in->policy >= N_POLICIES) {
		MB_LOG(ERR, "unknown placement policy %d", (int)in->policy);
		return -EINVAL;
	}
	if (in->n_rx > MB_PLACEMENT_MAX_RX) {
		MB_LOG(ERR, "%u rx queues: at most %d can be placed", in->n_rx,
		       MB_PLACEMENT_MAX_RX);
		return -EINVAL;
	}
	if (in->gpu_numa < MB_NUMA_ANY) {
		MB_LOG(ERR, "GPU NUMA node %d is not a node", in->gpu_numa);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < in->n_rx; i++) {
		if (in->rx_numa[i] < MB_NUMA_ANY) {
			MB_LOG(ERR, "rx queue %u: NUMA node %d is not a node", i, in->rx_numa[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int
mb_placement_compute(struct mb_topo *topo, const struct mb_placement_input *in,
		     struct mb_placement *out)
{
	enum mb_placement_policy eff;
	int rc;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (in == NULL)
		return -EINVAL;
	rc = check_input(in);
	if (rc < 0)
		return rc;
	out->policy = in->policy;

	eff = in->policy;
	if (eff == MB_PLACEMENT_AUTO &&
	    (topo == NULL || mb_topo_core_count(topo) < MB_PLACEMENT_AUTO_MIN_CORES))
		eff = MB_PLACEMENT_SINGLE;
	out->effective = eff;

	switch (eff) {
	case MB_PLACEMENT_SINGLE: {
		struct mb_placement_thread *t = add_thread(
			out, "poll0",
			MB_STAGE_FRONTDOOR | MB_STAGE_BATCHER | (in->n_rx > 0 ? MB_STAGE_RX : 0u));

		t->rx_first = 0;
		t->n_rx = in->n_rx;
		/* A lone thread on a small machine floats: see the header. */
		if (topo != NULL && mb_topo_core_count(topo) < MB_PLACEMENT_AUTO_MIN_CORES)
			topo = NULL;
		break;
	}
	case MB_PLACEMENT_PER_STAGE:
		add_thread(out, "frontdoor", MB_STAGE_FRONTDOOR);
		add_thread(out, "batcher", MB_STAGE_BATCHER);
		add_rx_threads(out, in->n_rx);
		break;
	case MB_PLACEMENT_AUTO:
		add_thread(out, "control", MB_STAGE_FRONTDOOR | MB_STAGE_BATCHER);
		add_rx_threads(out, in->n_rx);
		break;
	}

	if (topo == NULL)
		return 0;
	rc = bind_threads(topo, in, out);
	if (rc < 0) {
		MB_LOG(ERR, "%s placement of %u threads: %s", mb_placement_policy_name(eff),
		       out->n_threads, strerror(-rc));
		out->n_threads = 0;
		memset(out->threads, 0, sizeof(out->threads));
		return rc;
	}
	return 0;
}

/* snprintf at @p *pos, keeping *pos at most len - 1 (the length written so far). */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos += (size_t)n < len - *pos ? (size_t)n : len - *pos - 1;
}

/* "frontdoor+egress, batcher, rx0" at @p pos of @p buf */
static void
put_stages(char *buf, size_t len, size_t *pos, const struct mb_placement_thread *t)
{
	const char *sep = "";

	if (t->stages & MB_STAGE_FRONTDOOR) {
		put(buf, len, pos, "%sfrontdoor+egress", sep);
		sep = ", ";
	}
	if (t->stages & MB_STAGE_BATCHER) {
		put(buf, len, pos, "%sbatcher", sep);
		sep = ", ";
	}
	if (t->stages & MB_STAGE_RX) {
		for (uint32_t q = t->rx_first; q < t->rx_first + t->n_rx; q++) {
			put(buf, len, pos, "%srx%u", sep, q);
			sep = ", ";
		}
	}
}

size_t
mb_placement_thread_stages(const struct mb_placement_thread *t, char *buf, size_t len)
{
	size_t pos = 0;

	if (buf == NULL || len == 0)
		return 0;
	buf[0] = '\0';
	if (t != NULL)
		put_stages(buf, len, &pos, t);
	return pos;
}

size_t
mb_placement_describe(const struct mb_placement *p, char *buf, size_t len)
{
	size_t pos = 0;

	if (buf == NULL || len == 0)
		return 0;
	buf[0] = '\0';
	if (p == NULL)
		return 0;
	for (uint32_t i = 0; i < p->n_threads && i < MB_PLACEMENT_MAX_THREADS; i++) {
		const struct mb_placement_thread *t = &p->threads[i];

		put(buf, len, &pos, "%s%s (", i > 0 ? "; " : "", t->name);
		if (t->cpu < 0)
			put(buf, len, &pos, "cpu any): ");
		else if (t->numa_node == MB_NUMA_ANY)
			put(buf, len, &pos, "cpu %d): ", t->cpu);
		else
			put(buf, len, &pos, "cpu %d, node %d): ", t->cpu, t->numa_node);
		put_stages(buf, len, &pos, t);
	}
	return pos;
}
