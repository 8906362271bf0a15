/*
 * service.c: builds the request path and holds the front door's policy.
 *
 * Built once on the main thread; afterwards each piece belongs to its thread (see the
 * modules' headers). The policy callbacks (submit, cancelled, sent, ingest_closed) run on
 * the front door thread; they read the models and the rate limiter and touch only atomics
 * that other threads share (a model's queued count, the cancel generation).
 */
#include "service.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <zmq.h>

#include "mb_admission.h"
#include "mb_batcher.h"
#include "mb_breaker.h"
#include "mb_eal.h"
#include "mb_build_config.h"
#include "mb_cancel.h"
#include "mb_device.h"
#include "mb_env.h"
#include "mb_frontdoor.h"
#include "mb_gpu_probe.h"
#include "mb_auth.h"
#include "mb_http.h"
#include "mb_metrics.h"
#include "mb_model_rt.h"
#include "mb_models.h"
#include "mb_placement.h"
#include "mb_procstat.h"
#include "mb_plugin.h"
#include "mb_ratelimit.h"
#include "mb_reactor.h"
#include "mb_sem.h"
#include "mb_topo.h"
#include "mb_udp.h"
#include "mb_udp_wire.h"
#include "mb_weights.h"
#include "mb_worker.h"

#define MB_LOG_MODULE "service"
#include "mb_log.h"

#define MAX_MODELS 16
#define MAX_PENDING_BATCHES 2

/* The stages of mediabatch_stage_seconds{model,stage}, in the order a request passes them. */
enum { STAGE_QUEUE, STAGE_ADMISSION, STAGE_DISPATCH, STAGE_COMPUTE, STAGE_EGRESS, STAGE_COUNT };
static const char *const stage_names[STAGE_COUNT] = {"queue", "admission", "dispatch", "compute",
						     "egress"};
/* Stage buckets (s): from 1 us, since a stage of the CPU path is often a few microseconds. */
static const double stage_bounds[] = {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5,	 1e-4, 2.5e-4,
				      5e-4, 1e-3,   2.5e-3, 5e-3, 0.01,	  0.025, 0.05, 0.1,
				      0.25, 0.5,    1,	    2.5,  5,	  10,	 30,   60};

/* The subsystems with a token of their own in the cancellation tree. */
enum { SUB_FRONTDOOR, SUB_BATCHER, SUB_WORKERS, SUB_UDP, SUB_COUNT };

struct worker_slot {
	struct mb_service *svc;
	struct mb_worker *w;
	struct mb_device *dev;
	uint32_t index;		    /* among its device's workers */
	struct mb_worker_opts opts; /* to start a replacement */
	bool left; /* abandoned by the watchdog in a hung run(); a replacement took over */
};

/* Replacements the watchdog may start for workers left in a hung run(), over the life of
 * the daemon (each hang also disables its model, so this is rarely approached). */
#define MAX_REPLACEMENTS 16
/* A batch may run this long by default before the watchdog calls it hung. */
#define DEFAULT_RUN_TIMEOUT_MS 60000

/* A device the service may use, before it exists: cpu0 at index 0, GPUs from index 1. */
struct dev_plan {
	bool on;  /* may serve models: cpu0 unless serve is never; a GPU in use */
	int cuda; /* CUDA ordinal; -1 for cpu0 */
	int numa_node;
	char name[16];
	const struct mb_gpu_info *gpu; /* NULL for cpu0 */
};

struct mb_service {
	const struct mb_config *cfg;
	struct mb_metrics *metrics;
	void *zctx;
	struct mb_model models[MAX_MODELS];
	struct mb_model *model_ptrs[MAX_MODELS];
	uint32_t n_models;
	char served[256]; /* "identity, logmel" */
	/* devices by index (NULL where there is none), and those that exist, in index order */
	struct mb_gpu_probe gpus;
	struct dev_plan plan[MB_DEVICES_MAX];
	struct mb_device *devs[MB_DEVICES_MAX];
	struct mb_device *dev_list[MB_DEVICES_MAX];
	uint32_t n_devs;
	/* the doorbell of the reactor that runs the batcher: every model queue rings it */
	struct mb_doorbell *batcher_bell;
	struct mb_ring *results;
	struct mb_ratelimit *limits; /* ZeroMQ requests (front door thread) */
	/* the checks before a model's queue, for both ingests */
	struct mb_admission *admission;
	/* UDP ingest: NULL without ports; one rate limiter per rx queue (its thread's) */
	struct mb_udp *udp;
	struct mb_ratelimit **udp_limits;
	/*
	 * Reloaded rate limiters on their way to their owner threads (SIGHUP): the main thread
	 * posts with an exchange, the owner swaps it in before its next admission and frees
	 * the old one. One slot for the front door, one per rx queue.
	 */
	_Atomic(struct mb_ratelimit *) limits_next;
	_Atomic(struct mb_ratelimit *) *udp_limits_next;
	struct udp_slot_arg {
		struct mb_service *svc;
		uint32_t queue;
	} * udp_slots; /* thread arguments, one per rx queue */
	uint32_t n_udp_limits;
	struct mb_topo *topo;
	/* the polled threads: which runs which stage (placement), and their reactors */
	struct mb_placement placement;
	struct reactor_slot {
		struct mb_service *svc;
		struct mb_reactor *r;
		const struct mb_placement_thread *pt;
		/* liveness (service_tick()): its rounds when the main thread last looked, when
		 * they last moved, and whether its thread has returned (a drain's end) */
		uint64_t seen_rounds;
		_Atomic uint64_t turned_ns;
		atomic_bool finished;
	} reactors[MB_PLACEMENT_MAX_THREADS];
	/* liveness: service.liveness_ms, and when the main loop last turned */
	uint64_t liveness_ns;
	_Atomic uint64_t main_turned_ns;
	uint32_t n_reactors;
	uint32_t fd_reactor;	  /* the reactor that runs the front door */
	atomic_uint open_ingests; /* front door + UDP, until each closed */
	/*
	 * The cancellation tree: two roots, each with one child per subsystem.
	 *   drain -> {frontdoor, batcher, workers, udp}: stop taking work, flush, finish
	 *   abort -> {frontdoor, batcher, workers, udp}: what has not started is CANCELLED
	 * A subsystem watches its own child; each child's callback wakes only that subsystem.
	 */
	struct mb_cancel *drain, *abort;
	struct subsystem_tokens {
		struct mb_cancel *drain, *abort;
		struct mb_cancel_cb drain_cb, abort_cb;
	} sub[SUB_COUNT];
	atomic_bool ingest_closed;
	atomic_uint cancel_gen;
	atomic_bool ready;
	struct mb_batcher *batcher;
	struct worker_slot *workers;
	uint32_t n_workers, cap_workers;
	struct mb_frontdoor *fd;
	struct mb_http *http;
	/* metrics: [model][...]; index n_models is "_unknown" */
	struct mb_metric *m_requests[MAX_MODELS + 1][2]; /* [model][enum mb_transport] */
	struct mb_metric *m_responses[MAX_MODELS + 1][MB_STATUS_COUNT];
	struct mb_metric *m_latency[MAX_MODELS + 1];
	struct mb_metric *m_rate_limited[MAX_MODELS];
	struct mb_metric *m_stage[MAX_MODELS][STAGE_COUNT];
	struct mb_metric *m_admission_wait[MB_DEVICES_MAX];
	struct mb_metric *m_ready, *m_draining, *m_live;
	struct mb_metric *m_reload_applied, *m_reload_refused;
	struct mb_metric *m_restart_pending; /* keys the last applied reload left for a start */
	struct mb_metric *m_hung;
};

/* ---- models ---- */

static const struct mb_model_desc *
builtin(const char *name)
{
	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL; d++)
		if (strcmp((*d)->name, name) == 0)
			return *d;
	return NULL;
}

static void
builtin_names(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL && off < len; d++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", (*d)->name);
}

int
service_check_models(const struct mb_config *cfg, char *err, size_t err_len)
{
	char names[256];

	for (unsigned int i = 0; i < cfg->n_models; i++) {
		if (cfg->models[i].plugin[0] != '\0') {
			if (builtin(cfg->models[i].name) == NULL)
				continue;
			snprintf(err, err_len,
				 "%s: models[%u].plugin: '%s' is a built-in model; give the "
				 "plugin's "
				 "model another name",
				 cfg->source, i, cfg->models[i].name);
			return -EINVAL;
		}
		if (builtin(cfg->models[i].name) != NULL)
			continue;
		builtin_names(names, sizeof(names));
		snprintf(err, err_len,
			 "%s: models[%u].name: '%s' is not a model of this build (%s); a plugin's "
			 "model needs 'plugin: PATH'",
			 cfg->source, i, cfg->models[i].name, names);
		return -EINVAL;
	}
	return 0;
}

/* A model's four live settings under @p cfg (at start, and again on SIGHUP): its defaults,
 * then the file's overrides. */
struct live {
	uint32_t max_batch, max_delay_us, queue_limit, default_timeout_ms;
};

static void
live_settings(const struct mb_model *m, const struct mb_config *cfg, struct live *out)
{
	const struct mb_model_config *c = mb_config_model(cfg, m->desc->name);

	out->max_batch = m->desc->max_batch;
	out->max_delay_us = m->desc->max_delay_us;
	out->queue_limit = m->desc->queue_limit;
	out->default_timeout_ms = m->desc->default_timeout_ms;
	if (c == NULL)
		return;
	if (c->max_batch >= 0)
		out->max_batch = (uint32_t)c->max_batch;
	if (c->max_delay_us >= 0)
		out->max_delay_us = (uint32_t)c->max_delay_us;
	if (c->queue_limit >= 0)
		out->queue_limit = (uint32_t)c->queue_limit;
	if (c->default_timeout_ms >= 0)
		out->default_timeout_ms = (uint32_t)c->default_timeout_ms;
}

static void
settings(struct mb_model *m, const struct mb_config *cfg)
{
	const struct mb_model_desc *d = m->desc;
	const struct mb_model_config *c = mb_config_model(cfg, d->name);
	struct live lv;

	live_settings(m, cfg, &lv);
	m->enabled = true;
	m->max_batch = lv.max_batch;
	m->max_delay_us = lv.max_delay_us;
	m->queue_limit = lv.queue_limit;
	m->default_timeout_ms = lv.default_timeout_ms;
	m->base_units = d->base_units;
	m->item_units_per_second = d->item_units_per_second;
	m->run_timeout_ms = DEFAULT_RUN_TIMEOUT_MS;
	if (m->plugin == NULL &&
	    mb_builtin_windowing(d->name, &m->window, &m->join, &m->join_topk) == 0)
		m->max_windows = c != NULL && c->max_windows > 0 ? (uint32_t)c->max_windows
								 : MB_DEFAULT_MAX_WINDOWS;
	if (c == NULL)
		return;
	if (c->enabled == 0) {
		m->enabled = false;
		m->off_by_config = true;
		snprintf(m->disabled_reason, sizeof(m->disabled_reason), "disabled in %.200s",
			 cfg->source);
	}
	if (c->base_units >= 0)
		m->base_units = (uint32_t)c->base_units;
	if (c->run_timeout_ms >= 0)
		m->run_timeout_ms = (uint32_t)c->run_timeout_ms;
	if (c->item_units_per_second >= 0)
		m->item_units_per_second = c->item_units_per_second;
}

/* ---- models: built-in and plugins, weights, breakers ---- */

/* The weights of @p name: the config's, else in weights_dir the checkpoint directory <name>/
 * when there is one, else the file <name>.safetensors; weights_dir "" means weights/ beside
 * the daemon's binary (the build writes them there). */
static void
weights_path(const struct mb_config *cfg, const char *name, char *buf, size_t len)
{
	const struct mb_model_config *c = mb_config_model(cfg, name);
	char exe[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (c != NULL && c->weights[0] != '\0') {
		snprintf(buf, len, "%s", c->weights);
		return;
	}
	if (cfg->weights_dir[0] != '\0') {
		snprintf(dir, sizeof(dir), "%s", cfg->weights_dir);
	} else if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		snprintf(dir, sizeof(dir), "%s/weights", dirname(exe));
	} else {
		snprintf(dir, sizeof(dir), "weights");
	}
	snprintf(buf, len, "%s/%s", dir, name);
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return;
	snprintf(buf, len, "%s/%s.safetensors", dir, name);
}

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* One file of a model's sources: its name and what stat() says (or that it is absent). */
static uint64_t
file_id(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	struct stat st;

	for (const char *p = path; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	if (stat(path, &st) < 0)
		return mix64(h ^ 0xab5e47ULL);
	h = mix64(h ^ (uint64_t)st.st_dev);
	h = mix64(h ^ (uint64_t)st.st_ino);
	h = mix64(h ^ (uint64_t)st.st_size);
	h = mix64(h ^ (uint64_t)st.st_mtim.tv_sec);
	return mix64(h ^ (uint64_t)st.st_mtim.tv_nsec);
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* When the weights of @p name were looked for by default (no models[].weights) and neither
 * <dir>/<name>/ nor @p path, <dir>/<name>.safetensors, exists: the reason says where it
 * looked and what to do, in place of the open's "No such file or directory". */
static void
weights_hint(const struct mb_config *cfg, const char *name, const char *path, char *why, size_t len)
{
	const struct mb_model_config *c = mb_config_model(cfg, name);
	const char *slash = path != NULL ? strrchr(path, '/') : NULL;
	struct stat st;
	int n;

	if ((c != NULL && c->weights[0] != '\0') || slash == NULL ||
	    !has_suffix(path, ".safetensors") || stat(path, &st) == 0 || errno != ENOENT)
		return;
	n = snprintf(why, len,
		     "no %s/ nor %s.safetensors in %.*s (name the checkpoint in models[].weights "
		     "or weights_dir; mediabatch-weights --out DIR writes placeholders)",
		     name, name, (int)(slash - path), path);
	(void)n; /* a long directory is cut: a reason has MB_PROTO_REASON_MAX */
}

/*
 * What the files a model loads from look like now (their names, inodes, sizes and mtimes in
 * one number), so that a reload sees a checkpoint or plugin replaced under the same path:
 * the plugin; for weights, a checkpoint directory's .json and .safetensors files, or an
 * index's and its shards' (the files beside it), or a single file and the config.json and
 * preprocessor_config.json beside it (what gpu/ckpt.c reads).
 */
static uint64_t
source_id(const char *weights, const char *plugin)
{
	char dir[PATH_MAX], file[PATH_MAX + 256];
	uint64_t sum = 0;
	struct stat st;
	struct dirent *e;
	bool is_dir;
	DIR *dp;

	if (plugin != NULL && plugin[0] != '\0')
		sum += file_id(plugin);
	if (weights == NULL || weights[0] == '\0')
		return mix64(sum);
	sum += file_id(weights);
	is_dir = stat(weights, &st) == 0 && S_ISDIR(st.st_mode);
	snprintf(file, sizeof(file), "%s", weights);
	snprintf(dir, sizeof(dir), "%s", is_dir ? weights : dirname(file));
	if (is_dir || has_suffix(weights, ".json")) {
		if ((dp = opendir(dir)) == NULL)
			return mix64(sum);
		while ((e = readdir(dp)) != NULL) {
			if (!has_suffix(e->d_name, ".json") &&
			    !has_suffix(e->d_name, ".safetensors"))
				continue;
			snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
			sum += file_id(file);
		}
		closedir(dp);
		return mix64(sum);
	}
	snprintf(file, sizeof(file), "%s/config.json", dir);
	sum += file_id(file);
	snprintf(file, sizeof(file), "%s/preprocessor_config.json", dir);
	sum += file_id(file);
	return mix64(sum);
}

/* A load() that failed with return code @p rc and left @p reason empty: say what it returned
 * instead, so that the failure is never blamed on something else. */
static void
load_reason(int rc, char *reason, size_t len)
{
	if (reason[0] != '\0')
		return;
	if (rc < 0)
		snprintf(reason, len, "load() returned %d (%s) without a reason", rc,
			 strerror(-rc));
	else
		snprintf(reason, len, "load() returned %d without a reason", rc);
}

/* Load @p m on device @p d; on success it serves there (0). The reason of a failure goes to
 * @p why (the last one wins) and the log, and -1 is returned. */
static int
load_on(struct mb_service *s, struct mb_model *m, int d, const char *weights, char *why,
	size_t why_len)
{
	struct mb_model_load_args args = {
		.device = s->plan[d].cuda,
		.weights_path = weights,
		.numa_node = s->plan[d].numa_node,
	};
	char reason[MB_PROTO_REASON_MAX] = "";
	void *state = NULL;
	int rc;

	if ((rc = m->desc->load(&args, &state, reason, sizeof(reason))) != 0) {
		load_reason(rc, reason, sizeof(reason));
		snprintf(why, why_len, "%s", reason);
		MB_LOG(ERR, "model %s failed to load on %s: %s", m->desc->name, s->plan[d].name,
		       reason);
		return -1;
	}
	m->states[d] = state;
	m->devices |= MB_DEVICE_BIT(d);
	return 0;
}

/*
 * Load @p m where it may serve: on every GPU in use, if it runs on CUDA; on cpu0 when
 * devices.cpu.serve is always, or is auto and no GPU took the model. A model loaded
 * nowhere is disabled with the reason.
 */
static void
load_on_devices(struct mb_service *s, struct mb_model *m, const char *weights)
{
	const struct mb_config *cfg = s->cfg;
	char why[MB_PROTO_REASON_MAX] = "";
	bool gpus = false, failed = false;

	for (int d = 1; d < MB_DEVICES_MAX; d++) {
		if (!s->plan[d].on)
			continue;
		gpus = true;
		if ((m->desc->devices & MB_MODEL_ON_CUDA) &&
		    load_on(s, m, d, weights, why, sizeof(why)) < 0)
			failed = true;
	}
	if (s->plan[0].on && (m->desc->devices & MB_MODEL_ON_CPU) &&
	    (cfg->cpu_serve == MB_CPU_SERVE_ALWAYS || m->devices == 0)) {
		if (gpus && m->devices == 0 && (m->desc->devices & MB_MODEL_ON_CUDA))
			MB_LOG(WARNING, "model %s: it failed to load on every GPU; %s serves it",
			       m->desc->name, s->plan[0].name);
		else if (gpus && m->devices == 0)
			MB_LOG(INFO, "model %s runs on the CPU only: %s serves it", m->desc->name,
			       s->plan[0].name);
		if (load_on(s, m, 0, weights, why, sizeof(why)) < 0)
			failed = true;
	}
	if (m->devices != 0)
		return;
	m->enabled = false;
	if (failed) /* where it looked, when the default place is empty */
		weights_hint(cfg, m->desc->name, weights, why, sizeof(why));
	if (failed) /* a load failed: that is why, never "no device" */
		snprintf(m->disabled_reason, sizeof(m->disabled_reason), "failed to load: %s", why);
	else if (!(m->desc->devices & MB_MODEL_ON_CPU))
		snprintf(m->disabled_reason, sizeof(m->disabled_reason),
			 "it runs on CUDA only and no GPU is in use (%s)",
			 s->gpus.reason[0] ? s->gpus.reason : "see devices.cuda");
	else
		snprintf(m->disabled_reason, sizeof(m->disabled_reason),
			 "no device serves it: devices.cpu.serve is never and no GPU %s",
			 (m->desc->devices & MB_MODEL_ON_CUDA) ? "is in use"
							       : "can run it (CPU only)");
	MB_LOG(ERR, "model %s is disabled: %s; the other models keep serving", m->desc->name,
	       m->disabled_reason);
}

/* models[].precision for built-in network @p name (the default where @p c leaves it out),
 * before it loads; on any other model a precision is ignored with a warning. */
static void
set_precision(const char *name, bool builtin, const struct mb_model_config *c)
{
	enum mb_net_precision p = MB_NET_PRECISION_DEFAULT;
	bool given = c != NULL && c->precision >= 0;

	if (!builtin || !mb_builtin_is_net(name))
		return; /* service_check_model_keys() warns */
	if (given)
		switch ((enum mb_config_precision)c->precision) {
		case MB_CONFIG_PRECISION_F32:
			p = MB_NET_F32;
			break;
		case MB_CONFIG_PRECISION_F16:
			p = MB_NET_F16;
			break;
		case MB_CONFIG_PRECISION_BF16:
			p = MB_NET_BF16;
			break;
		}
	mb_builtin_net_set_precision(name, p);
}

/*
 * A built-in network on the GPUs costs device units from its real memory
 * (mb_builtin_net_gpu_bytes(): the activations a run allocates for its batch): a batch takes
 * ceil(batch bytes / unit) units plus ceil(item bytes / unit) per item (a window: its
 * activations do not depend on how much of it the media fills). What each GPU worker keeps
 * for it (cuBLAS workspace, FFT plans) is taken off the GPU's capacity (gpu_units()). The
 * config's base_units and item_units_per_second, when given, win.
 */
static void
net_gpu_units(struct mb_service *s, struct mb_model *m, const struct mb_model_config *c)
{
	const uint64_t mib = 1024 * 1024, unit = (uint64_t)s->cfg->cuda_unit_mb * mib;
	uint64_t worker = 0, batch = 0, item = 0;
	int d;

	if (m->plugin != NULL || !mb_builtin_is_net(m->desc->name))
		return;
	for (d = 1; d < MB_DEVICES_MAX && !(m->devices & MB_DEVICE_BIT(d)); d++)
		;
	if (d == MB_DEVICES_MAX ||
	    mb_builtin_net_gpu_bytes(m->desc->name, m->states[d], &worker, &batch, &item) < 0)
		return; /* on the CPU device only: the descriptor's costs */
	m->gpu_worker_bytes = worker;
	if (c == NULL || c->base_units < 0)
		m->base_units = mb_gpu_bytes_units(batch, unit);
	if (c == NULL || c->item_units_per_second < 0)
		m->item_units_window = mb_gpu_bytes_units(item, unit);
	if (m->item_units_window == 0 && m->item_units_per_second <= 0.0)
		m->item_units_window = 1;
	MB_LOG(INFO,
	       "model %s on the GPUs: a batch takes %u unit(s) of %u MiB and %u per item (its "
	       "activations: %.1f MiB a batch, %.1f MiB an item); each worker keeps %.1f MiB",
	       m->desc->name, m->base_units, s->cfg->cuda_unit_mb, m->item_units_window,
	       (double)batch / mib, (double)item / mib, (double)worker / mib);
}

/* Set up one model (built-in, or from a plugin) and load it on its devices; on failure it is
 * disabled with the reason and the others keep serving. */
static void
load_model(struct mb_service *s, struct mb_model *m, const struct mb_model_config *c)
{
	const struct mb_config *cfg = s->cfg;
	const char *weights = NULL;
	char reason[MB_PROTO_REASON_MAX] = "", path[PATH_MAX + 64];
	int rc;

	if (c != NULL && c->plugin[0] != '\0') {
		if (c->enabled == 0) {
			m->enabled = false;
			m->off_by_config = true;
			snprintf(m->disabled_reason, sizeof(m->disabled_reason),
				 "disabled in %.200s", cfg->source);
			return;
		}
		rc = mb_plugin_open(c->plugin, &m->plugin, reason, sizeof(reason));
		if (rc == 0 && strcmp(mb_plugin_desc(m->plugin)->name, c->name) != 0) {
			snprintf(reason, sizeof(reason),
				 "%.120s serves model '%s', but the config names it '%s'",
				 c->plugin, mb_plugin_desc(m->plugin)->name, c->name);
			mb_plugin_close(&m->plugin);
			rc = -EINVAL;
		}
		if (rc < 0) {
			m->enabled = false;
			snprintf(m->disabled_reason, sizeof(m->disabled_reason),
				 "plugin failed to load: %s", reason);
			MB_LOG(ERR, "model %s: %s; the other models keep serving", c->name,
			       m->disabled_reason);
			return;
		}
		m->desc = mb_plugin_desc(m->plugin);
		MB_LOG(INFO, "model %s: plugin %s", m->desc->name, c->plugin);
	}
	settings(m, cfg);
	m->max_batch_start = m->max_batch;
	m->queue_limit_start = m->queue_limit;
	if (!m->enabled)
		return;
	set_precision(m->desc->name, m->plugin == NULL, c);
	weights_path(cfg, m->desc->name, path, sizeof(path));
	/* taken before the load: a file replaced during it differs at the next reload */
	m->source_id = source_id(path, c != NULL ? c->plugin : NULL);
	if (m->plugin != NULL || mb_builtin_has_weights(m->desc->name) ||
	    (c != NULL && c->weights[0] != '\0')) {
		/* a plugin gets the default path only when that file exists */
		if (m->plugin == NULL || (c != NULL && c->weights[0] != '\0') ||
		    access(path, R_OK) == 0)
			weights = path;
	}
	load_on_devices(s, m, weights);
	if (m->devices != 0 && weights != NULL)
		MB_LOG(INFO, "model %s: weights %s", m->desc->name, weights);
	net_gpu_units(s, m, c);
}

/* --check: load @p d with the weights its config would give it, on the CPU, and unload. */
static int
check_one(const struct mb_config *cfg, const struct mb_model_desc *d, const char *plugin, char *why,
	  size_t why_len)
{
	const struct mb_model_config *c = mb_config_model(cfg, d->name);
	struct mb_model_load_args args = {.device = -1, .numa_node = MB_NUMA_ANY};
	char path[PATH_MAX + 64];
	void *state = NULL;
	struct mb_weights *w = NULL;
	bool own = c != NULL && c->weights[0] != '\0';
	int rc;

	weights_path(cfg, d->name, path, sizeof(path)); /* as load_model() chooses it */
	if (plugin == NULL ? mb_builtin_has_weights(d->name) || own
			   : own || access(path, R_OK) == 0)
		args.weights_path = path;
	if (!(d->devices & MB_MODEL_ON_CPU)) { /* CUDA only: its weights file at least */
		if (args.weights_path == NULL || mb_weights_open(path, &w, why, why_len) == 0) {
			mb_weights_close(&w);
			return 0;
		}
		return -1;
	}
	if ((rc = d->load(&args, &state, why, why_len)) != 0) {
		load_reason(rc, why, why_len);
		weights_hint(cfg, d->name, args.weights_path, why, why_len);
		return -1;
	}
	if (d->unload != NULL)
		d->unload(state);
	return 0;
}

/* "tcp://127.0.0.1:7400", "ipc://..." or "inproc://...": reachable from this host only */
static bool
local_endpoint(const char *ep)
{
	return strncmp(ep, "tcp://127.", 10) == 0 || strncmp(ep, "tcp://localhost:", 16) == 0 ||
	       strncmp(ep, "tcp://[::1]:", 12) == 0 || strncmp(ep, "ipc://", 6) == 0 ||
	       strncmp(ep, "inproc://", 9) == 0;
}

/* HOST:PORT of service.metrics in 127.0.0.0/8 ("localhost" included): reachable from this
 * host only. "*" and 0.0.0.0 are every interface. */
static bool
local_hostport(const char *hostport)
{
	struct in_addr a;
	char host[64];
	uint16_t port;

	return mb_config_parse_hostport(hostport, host, sizeof(host), &port) == 0 &&
	       inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int
service_check_http_exposure(const struct mb_config *cfg, char *buf, size_t len)
{
	bool token = cfg->http_token_file[0] != '\0', tls = cfg->http_tls_cert[0] != '\0';
	const char *ep = cfg->metrics;

	buf[0] = '\0';
	if (ep[0] == '\0' || local_hostport(ep) || (token && tls))
		return 0;
	if (!token && !tls)
		snprintf(buf, len,
			 "the HTTP endpoint %s (service.metrics) is not loopback and has neither "
			 "a bearer token nor TLS: anyone who reaches it reads /metrics and the "
			 "models' metadata (/v2/models), in clear; set http.token_file, and "
			 "http.tls_cert with http.tls_key, or bind it to loopback (--metrics "
			 "127.0.0.1:PORT)",
			 ep);
	else if (!tls)
		snprintf(buf, len,
			 "the HTTP endpoint %s (service.metrics) is not loopback and has no TLS: "
			 "the bearer token of http.token_file travels in clear, so anyone on the "
			 "path can read it and then /metrics and the models' metadata; set "
			 "http.tls_cert and http.tls_key, or bind it to loopback (--metrics "
			 "127.0.0.1:PORT)",
			 ep);
	else
		snprintf(buf, len,
			 "the HTTP endpoint %s (service.metrics) is not loopback and has no bearer "
			 "token: anyone who reaches it reads /metrics and the models' metadata "
			 "(/v2/models); set http.token_file, or bind it to loopback (--metrics "
			 "127.0.0.1:PORT)",
			 ep);
	return 1;
}

int
service_check_model_keys(const struct mb_config *cfg, char *buf, size_t len)
{
	unsigned int n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < cfg->n_models; i++) {
		const struct mb_model_config *c = &cfg->models[i];
		bool builtin = c->plugin[0] == '\0';
		int64_t windows = c->max_windows > 0 ? c->max_windows : MB_DEFAULT_MAX_WINDOWS;
		uint32_t window;
		uint8_t join, topk;

		if (c->enabled == 0)
			continue;
		if (c->precision >= 0 && !(builtin && mb_builtin_is_net(c->name)))
			mb_config_list_add(
				buf, len, &n, "; ",
				"models[%u] (%s): precision applies to the built-in networks "
				"(whisper, videomae, clap) only; ignored",
				i, c->name);
		if (c->weights[0] != '\0' && builtin && !mb_builtin_has_weights(c->name))
			mb_config_list_add(buf, len, &n, "; ",
					   "models[%u] (%s): weights: %s reads no weights; ignored",
					   i, c->name, c->name);
		if (c->max_windows > 0 &&
		    (!builtin || mb_builtin_windowing(c->name, &window, &join, &topk) != 0))
			mb_config_list_add(
				buf, len, &n, "; ",
				"models[%u] (%s): max_windows: %s takes no windows; ignored", i,
				c->name, c->name);
		else if (c->queue_limit >= 0 && builtin &&
			 mb_builtin_windowing(c->name, &window, &join, &topk) == 0 &&
			 c->queue_limit < windows)
			mb_config_list_add(
				buf, len, &n, "; ",
				"models[%u] (%s): queue_limit %" PRId64 " is below its max_windows "
				"%" PRId64 " (a request of n windows takes n places): requests of "
				"%" PRId64 " to %" PRId64 " windows are answered TOO_LARGE",
				i, c->name, c->queue_limit, windows, c->queue_limit + 1, windows);
	}
	return (int)n;
}

/* The server's key pair and the allow-list, as a start loads them (CURVE only). */
static int
load_security(const struct mb_config *cfg, struct mb_auth **auth, char pub[41], char sec[41],
	      char *err, size_t err_len)
{
	int rc;

	*auth = NULL;
	if (cfg->security_mode != MB_SECURITY_CURVE)
		return 0;
	rc = mb_auth_server_key(cfg->server_key_file, pub, sec, err, err_len);
	if (rc == 0)
		rc = mb_auth_create(cfg->clients, cfg->n_clients, auth, err, err_len);
	return rc;
}

/* The share of max_inflight one client may hold: its own setting, or a quarter. */
static uint32_t
client_share(const struct mb_config *cfg)
{
	if (cfg->max_inflight_per_client != 0)
		return cfg->max_inflight_per_client;
	return cfg->max_inflight / 4 ? cfg->max_inflight / 4 : 1;
}

/* Where the DPDK heap comes from, for a message, and its size in bytes (0: it may grow):
 * "eal.memory_mb (256 MiB)"; with eal.args, "the hugepages eal.args gives", or with
 * --no-huge there the memory that fixes (then eal.memory_mb does not apply). */
static unsigned long long
heap_source(const struct mb_config *cfg, char *buf, size_t len)
{
	unsigned long long fixed = 0;
	char why[256];

	if (cfg->n_eal_args == 0) {
		snprintf(buf, len, "eal.memory_mb (%u MiB)", cfg->eal_memory_mb);
		return (unsigned long long)cfg->eal_memory_mb << 20;
	}
	if (mb_eal_check_args((const char *const *)cfg->eal_args, cfg->n_eal_args, &fixed, why,
			      sizeof(why)) == 0 &&
	    fixed != 0)
		snprintf(buf, len,
			 "the --no-huge memory of eal.args (%llu MiB: its -m, 64 without)",
			 fixed >> 20);
	else
		snprintf(buf, len, "the hugepages eal.args gives");
	return fixed;
}

int
service_check_heap(const struct mb_config *cfg, char *buf, size_t len)
{
	/* what the start allocates for certain, in bytes: the request objects (the front
	 * door's and each rx queue's slots), the tenants' rate-limit tables with their index
	 * (one for ZeroMQ, one per rx queue), the mbufs of one NUMA node, each rx queue's
	 * payload buffers */
	uint64_t rxq = 0, req, rate, mbufs, bufs, need;
	const double mib = 1024.0 * 1024.0;
	char heap[128];
	unsigned long long cap = heap_source(cfg, heap, sizeof(heap));

	for (unsigned int i = 0; i < cfg->n_udp_ports; i++)
		rxq += cfg->udp_ports[i].rx_queues;
	req = ((uint64_t)cfg->max_inflight + rxq * mb_udp_queue_slots(cfg)) *
	      sizeof(struct mb_request);
	rate = (1 + rxq) * mb_ratelimit_heap_bytes(cfg->max_tenants);
	mbufs = cfg->n_udp_ports != 0 ? (uint64_t)cfg->udp_mbufs * MB_UDP_MBUF_BYTES : 0;
	bufs = rxq * mb_udp_buffer_heap_bytes(cfg);
	need = req + rate + mbufs + bufs;
	if (rxq == 0) /* no UDP port: no UDP parts */
		snprintf(buf, len,
			 "at least %.0f MiB (request objects for service.max_inflight %u: %.0f "
			 "MiB; rate-limit tables for tenants.max_tenants %u: %.0f MiB) of %s",
			 (double)need / mib, cfg->max_inflight, (double)req / mib, cfg->max_tenants,
			 (double)rate / mib, heap);
	else
		snprintf(buf, len,
			 "at least %.0f MiB (request objects for service.max_inflight %u and the "
			 "UDP slots: %.0f MiB; rate-limit tables for tenants.max_tenants %u: %.0f "
			 "MiB; udp.mbufs: %.0f MiB; udp.buffer_mb for %" PRIu64
			 " rx queue(s): %.0f MiB) of %s",
			 (double)need / mib, cfg->max_inflight, (double)req / mib, cfg->max_tenants,
			 (double)rate / mib, (double)mbufs / mib, rxq, (double)bufs / mib, heap);
	return cap != 0 && need > cap ? -ENOMEM : 0;
}

int
service_check_security(const struct mb_config *cfg, bool http_files, char *buf, size_t len)
{
	struct mb_auth *auth = NULL;
	char pub[41], sec[41];
	int rc = load_security(cfg, &auth, pub, sec, buf, len);
	bool exposed = !local_endpoint(cfg->ingest) || !local_endpoint(cfg->publish);

	if (rc < 0)
		return rc;
	if (http_files && cfg->metrics[0] != '\0') { /* with the endpoint off, never read */
		struct mb_http_opts ho = {.tls_cert = cfg->http_tls_cert,
					  .tls_key = cfg->http_tls_key,
					  .token_file = cfg->http_token_file};

		if ((rc = mb_http_check_files(&ho, buf, len)) < 0) {
			mb_auth_destroy(&auth);
			explicit_bzero(sec, sizeof(sec));
			return rc;
		}
	}
	if (auth != NULL)
		snprintf(buf, len,
			 "CURVE on %s and %s (server key %s, public %s); %u client key(s) on "
			 "the allow-list; shares: %u in flight per client, %s per tenant",
			 cfg->ingest, cfg->publish, cfg->server_key_file, pub, mb_auth_count(auth),
			 client_share(cfg), cfg->max_inflight_per_tenant ? "a limit" : "no limit");
	else
		snprintf(buf, len,
			 "plaintext (no authentication: the tenant in each header is trusted)%s%s; "
			 "shares: %u in flight per client",
			 exposed ? "; WARNING: an endpoint is not loopback, so anyone who reaches "
				   "it "
				   "can use any tenant and receive every result: use security.mode "
				   "curve off trusted networks"
				 : "",
			 cfg->n_clients != 0 || cfg->server_key_file[0] != '\0'
				 ? "; WARNING: security.clients or security.server_key is set, "
				   "but security.mode is plaintext, so they do nothing: every "
				   "client is served, as any tenant (set security.mode: curve)"
				 : "",
			 client_share(cfg));
	mb_auth_destroy(&auth);
	memset(sec, 0, sizeof(sec));
	return 0;
}

static const struct mb_model *model_named(const struct mb_service *s, const char *name);

/*
 * Whether running service @p s already serves model @p name from what @p cfg would load it
 * from: the same weights path and plugin, and their files as they were at its load
 * (source_id()). Then a reload need not load it again to know that a start would.
 */
static bool
loaded_alike(const struct mb_service *s, const struct mb_config *cfg, const char *name)
{
	const struct mb_model *m = s != NULL ? model_named(s, name) : NULL;
	const struct mb_model_config *a, *b;
	char now[PATH_MAX + 64], then[PATH_MAX + 64];

	if (m == NULL || !m->enabled)
		return false;
	a = mb_config_model(cfg, name);
	b = mb_config_model(s->cfg, name);
	if (strcmp(a != NULL ? a->plugin : "", b != NULL ? b->plugin : "") != 0)
		return false;
	weights_path(cfg, name, now, sizeof(now));
	weights_path(s->cfg, name, then, sizeof(then));
	if (strcmp(now, then) != 0)
		return false;
	if (source_id(now, a != NULL ? a->plugin : NULL) != m->source_id) {
		MB_LOG(NOTICE,
		       "SIGHUP: model %s: its weights or plugin changed on disk since it "
		       "was loaded: loading them as --check does",
		       name);
		return false;
	}
	return true;
}

int
service_check_load(const struct mb_config *cfg, const struct mb_service *running, char *err,
		   size_t err_len)
{
	char why[MB_PROTO_REASON_MAX];
	size_t off = 0;
	int bad = 0;

	err[0] = '\0';
	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL; d++) {
		const struct mb_model_config *c = mb_config_model(cfg, (*d)->name);

		if ((c != NULL && c->enabled == 0) || loaded_alike(running, cfg, (*d)->name))
			continue;
		why[0] = '\0';
		if (check_one(cfg, *d, NULL, why, sizeof(why)) == 0)
			continue;
		off += (size_t)snprintf(err + off, off < err_len ? err_len - off : 0,
					"%smodel %s: failed to load: %s", bad++ ? "; " : "",
					(*d)->name, why);
	}
	for (unsigned int i = 0; i < cfg->n_models; i++) {
		const struct mb_model_config *c = &cfg->models[i];
		struct mb_plugin *p = NULL;
		bool opened = false; /* the shared object was accepted: a failure is its load()'s */
		int rc;

		if (c->plugin[0] == '\0' || c->enabled == 0 || loaded_alike(running, cfg, c->name))
			continue;
		why[0] = '\0';
		rc = mb_plugin_open(c->plugin, &p, why, sizeof(why));
		if (rc == 0 && strcmp(mb_plugin_desc(p)->name, c->name) != 0) {
			snprintf(why, sizeof(why),
				 "%.120s serves model '%s', but the config names it '%s'",
				 c->plugin, mb_plugin_desc(p)->name, c->name);
			rc = -EINVAL;
		} else if (rc == 0) {
			opened = true;
			rc = check_one(cfg, mb_plugin_desc(p), c->plugin, why, sizeof(why));
		}
		mb_plugin_close(&p);
		if (rc == 0)
			continue;
		/* as the start says it: "plugin failed to load" for the shared object, "failed to
		 * load" for its load() (load_model(), load_on_devices()) */
		off += (size_t)snprintf(err + off, off < err_len ? err_len - off : 0,
					"%smodel %s: %s: %s", bad++ ? "; " : "", c->name,
					opened ? "failed to load" : "plugin failed to load", why);
	}
	return bad ? -EINVAL : 0;
}

/* Finish @p m's breakers of the devices below @p upto that serve it, and free them. */
static void
breakers_fini(struct mb_model *m, int upto)
{
	for (int k = 0; m->breakers != NULL && k < upto; k++)
		if (m->devices & MB_DEVICE_BIT(k))
			mb_breaker_fini(&m->breakers[k]);
	free(m->breakers);
	m->breakers = NULL;
}

static int
add_model(struct mb_service *s, const struct mb_model_desc *d, const struct mb_model_config *c,
	  char *err, size_t err_len)
{
	struct mb_model *m = &s->models[s->n_models];
	struct mb_breaker_opts bo = {
		.failure_threshold = s->cfg->breaker_failures,
		.cooldown_ns = (uint64_t)s->cfg->breaker_cooldown_ms * MB_NS_PER_MS,
		.probe_timeout_ns = (uint64_t)s->cfg->breaker_probe_timeout_ms * MB_NS_PER_MS,
	};

	if (s->n_models == MAX_MODELS) {
		snprintf(err, err_len, "more than %d models", MAX_MODELS);
		return -E2BIG;
	}
	m->index = s->n_models;
	m->desc = d;
	m->numa_node = MB_NUMA_ANY;
	atomic_init(&m->queued, 0);
	m->enabled = true;
	load_model(s, m, c);
	if (m->desc == NULL) { /* a plugin that did not load: its name answers UNAVAILABLE */
		snprintf(m->failed_name, sizeof(m->failed_name), "%s", c->name);
		m->failed_desc = (struct mb_model_desc){.name = m->failed_name, .max_batch = 1};
		m->desc = &m->failed_desc;
		m->max_batch = 1;
		m->queue_limit = 1;
	}
	s->model_ptrs[s->n_models++] = m; /* from here on, service_destroy() unloads it */
	if (m->devices != 0) {		  /* one breaker per device that serves it */
		int k = 0;

		m->breakers = calloc(MB_DEVICES_MAX, sizeof(*m->breakers));
		bo.model = m->desc->name; /* for its log lines */
		for (; m->breakers != NULL && k < MB_DEVICES_MAX; k++) {
			bo.device = s->plan[k].name;
			if ((m->devices & MB_DEVICE_BIT(k)) &&
			    mb_breaker_init(&m->breakers[k], &bo) < 0)
				break;
		}
		if (m->breakers == NULL || k < MB_DEVICES_MAX) {
			breakers_fini(m, k); /* those before k */
			snprintf(err, err_len, "model %s: cannot set up its circuit breakers",
				 m->desc->name);
			return -ENOMEM;
		}
	}
	if (m->enabled) {
		size_t off = strlen(s->served);

		snprintf(s->served + off, sizeof(s->served) - off, "%s%s", off ? ", " : "",
			 m->desc->name);
	}
	return 0;
}

/* ---- devices ---- */

/*
 * Which devices may serve: cpu0 unless devices.cpu.serve is never; the GPUs that
 * devices.cuda selects (all found, or the listed ordinals), each with its NUMA node.
 * With mode auto and no usable GPU, that is logged once, with why, and cpu0 serves alone;
 * with mode required the start stops (nothing said before it of running on the CPU).
 */
/*
 * How many GPUs devices.cuda uses, of those @p g found (mode off: none): that many, or
 * -ENODEV (mode required and none usable) or -EINVAL (devices.cuda.gpus names one that
 * does not exist), with the reason in @p err. The start and --check both ask this.
 */
static int
gpus_in_use(const struct mb_config *cfg, const struct mb_gpu_probe *g, char *err, size_t err_len)
{
	int n;

	if (cfg->cuda_mode == MB_CUDA_OFF)
		return 0;
	if (g->count == 0 && cfg->cuda_mode == MB_CUDA_REQUIRED) {
		snprintf(err, err_len,
			 "%s: devices.cuda.mode is required, but no GPU is usable: %s", cfg->source,
			 g->reason);
		return -ENODEV;
	}
	if (g->count == 0)
		return 0;
	n = cfg->n_cuda_gpus ? (int)cfg->n_cuda_gpus : g->count;
	for (int k = 0; k < n; k++)
		if (cfg->n_cuda_gpus && cfg->cuda_gpus[k] >= g->count) {
			snprintf(err, err_len,
				 "%s: devices.cuda.gpus[%d]: GPU %d does not exist (this machine "
				 "has %d: 0..%d)",
				 cfg->source, k, cfg->cuda_gpus[k], g->count, g->count - 1);
			return -EINVAL;
		}
	return n < MB_DEVICES_MAX - 1 ? n : MB_DEVICES_MAX - 1;
}

int
service_check_devices(const struct mb_config *cfg, char *buf, size_t len)
{
	struct mb_gpu_probe g;
	int n;

	memset(&g, 0, sizeof(g));
	if (cfg->cuda_mode == MB_CUDA_OFF)
		snprintf(g.reason, sizeof(g.reason), "devices.cuda.mode is off");
	else
		mb_gpu_probe(&g);
	n = gpus_in_use(cfg, &g, buf, len);
	if (n < 0)
		return 1; /* the start here stops (exit 1): this host's state, not the file's */
	if (n == 0 && cfg->cpu_serve == MB_CPU_SERVE_NEVER) {
		snprintf(buf, len,
			 "%s: devices.cpu.serve is never and no GPU is in use (%s): every model "
			 "would start disabled",
			 cfg->source, g.reason);
		return 1;
	}
	if (n == 0 && cfg->n_cuda_gpus != 0 && cfg->cuda_mode != MB_CUDA_OFF) {
		snprintf(buf, len,
			 "%s: devices.cuda.gpus lists %u GPU(s), but no GPU is usable here (%s): "
			 "the list is ignored and cpu0 serves alone",
			 cfg->source, cfg->n_cuda_gpus, g.reason);
		return 1;
	}
	if (n == 0)
		snprintf(buf, len, "cpu0 alone (no GPU in use: %s)", g.reason);
	else
		snprintf(
			buf, len, "%d GPU(s)%s", n,
			cfg->cpu_serve == MB_CPU_SERVE_ALWAYS
				? " and cpu0 (devices.cpu.serve always)"
			: cfg->cpu_serve == MB_CPU_SERVE_NEVER
				? " (devices.cpu.serve never)"
				: ", and cpu0 for a model no GPU can run (devices.cpu.serve auto)");
	return 0;
}

static int
plan_devices(struct mb_service *s, char *err, size_t err_len)
{
	const struct mb_config *cfg = s->cfg;
	int n = 0, use;

	for (int d = 0; d < MB_DEVICES_MAX; d++)
		s->plan[d] = (struct dev_plan){.cuda = -1, .numa_node = MB_NUMA_ANY};
	s->plan[0].on = cfg->cpu_serve != MB_CPU_SERVE_NEVER;
	snprintf(s->plan[0].name, sizeof(s->plan[0].name), "cpu0");
	if (cfg->cuda_mode == MB_CUDA_OFF) {
		snprintf(s->gpus.reason, sizeof(s->gpus.reason), "devices.cuda.mode is off");
		MB_LOG(NOTICE, "GPUs not used: devices.cuda.mode is off");
		return 0;
	}
	mb_gpu_probe(&s->gpus);
	if ((use = gpus_in_use(cfg, &s->gpus, err, err_len)) < 0)
		return use;
	if (s->gpus.count == 0) {
		MB_LOG(NOTICE, "no usable GPU (%s): running on the CPU device", s->gpus.reason);
		if (cfg->n_cuda_gpus != 0)
			MB_LOG(WARNING,
			       "devices.cuda.gpus lists %u GPU(s), but no GPU is usable here (%s): "
			       "the list is ignored",
			       cfg->n_cuda_gpus, s->gpus.reason);
		return 0;
	}
	if (s->topo != NULL)
		mb_gpu_locate(&s->gpus, s->topo);
	for (int k = 0; k < use; k++) {
		int ordinal = cfg->n_cuda_gpus ? cfg->cuda_gpus[k] : k;
		struct dev_plan *p;

		p = &s->plan[1 + n++];
		p->on = true;
		p->cuda = ordinal;
		p->gpu = &s->gpus.gpus[ordinal];
		p->numa_node = p->gpu->numa_node;
		snprintf(p->name, sizeof(p->name), "cuda%d", ordinal);
	}
	return 0;
}

/*
 * devices.cpu.workers 0 (auto): half the CPUs this process may use (its affinity, capped by
 * its cgroup's CPU quota: a container's --cpus or a pod's CPU limit), at least one. The
 * other half is for the polled threads, ZeroMQ's I/O and the clients on the same machine.
 */
static uint32_t
auto_workers(void)
{
	static bool said;
	struct mb_cpu_budget b;
	uint32_t n;

	mb_procstat_cpus(NULL, NULL, &b);
	n = b.usable >= 2 ? b.usable / 2 : 1;
	if (!said) {
		said = true;
		if (b.quota > 0)
			MB_LOG(NOTICE,
			       "devices.cpu.workers auto: %u, half of the %u CPUs this process may "
			       "use (%u online, %u in its affinity, a quota of %.2f CPUs in %s)",
			       n, b.usable, b.online, b.affinity, b.quota, b.quota_file);
		else
			MB_LOG(NOTICE,
			       "devices.cpu.workers auto: %u, half of the %u CPUs this process may "
			       "use (%u online, %u in its affinity, no cgroup CPU quota)",
			       n, b.usable, b.online, b.affinity);
	}
	return n;
}

/* Units of GPU device @p d: what cudaMemGetInfo says is free now (the models are loaded)
 * less the reserve, in units of unit_mb, at most max_units. */
static int
gpu_units(struct mb_service *s, int d, uint64_t *units, char *err, size_t err_len)
{
	const struct mb_config *cfg = s->cfg;
	const struct dev_plan *p = &s->plan[d];
	uint64_t free_b = 0, total_b = 0, mib = 1024 * 1024;
	char why[256] = "";

	uint64_t held = 0;

	if (mb_gpu_mem_info(p->cuda, &free_b, &total_b, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "device %s: cannot read its free memory: %s", p->name, why);
		return -EIO;
	}
	/* what its workers will keep for the networks, outside any batch's units */
	for (uint32_t i = 0; i < s->n_models; i++)
		if (s->models[i].devices & MB_DEVICE_BIT(d))
			held += (uint64_t)cfg->cuda_workers * s->models[i].gpu_worker_bytes;
	free_b = free_b > held ? free_b - held : 0;
	*units = mb_gpu_units(free_b, cfg->cuda_reserve_mb * mib, cfg->cuda_unit_mb * mib,
			      cfg->cuda_max_units);
	if (*units == 0) {
		snprintf(err, err_len,
			 "device %s (%s): %" PRIu64 " MiB free after loading the models and "
			 "the workers' own buffers; "
			 "devices.cuda.reserve_mb keeps %u MiB, so not one unit of %u MiB is left "
			 "(lower reserve_mb or unit_mb, or serve fewer models on it)",
			 p->name, p->gpu->name, free_b / mib, cfg->cuda_reserve_mb,
			 cfg->cuda_unit_mb);
		return -ENOSPC;
	}
	MB_LOG(INFO,
	       "device %s: %s, NUMA node %d, %" PRIu64 " of %" PRIu64 " MiB free with the models "
	       "loaded and %" PRIu64 " MiB kept for the workers' own buffers: %" PRIu64
	       " units of %u MiB (reserve %u MiB%s)",
	       p->name, p->gpu->name, p->numa_node, free_b / mib, total_b / mib, held / mib, *units,
	       cfg->cuda_unit_mb, cfg->cuda_reserve_mb,
	       cfg->cuda_max_units && *units == cfg->cuda_max_units ? ", capped by max_units" : "");
	return 0;
}

static uint32_t
device_workers(const struct mb_service *s, int d)
{
	if (d == 0)
		return s->cfg->cpu_workers ? s->cfg->cpu_workers : auto_workers();
	return s->cfg->cuda_workers;
}

/*
 * Create the devices that serve at least one model (cpu0 alone when none does, so the
 * pipeline is whole and every request gets its refusal), then each model's capacity (its
 * largest device) and NUMA node (its devices' node when they share one).
 */
static int
build_devices(struct mb_service *s, char *err, size_t err_len)
{
	uint32_t used = 0;
	int rc;

	for (uint32_t i = 0; i < s->n_models; i++)
		used |= s->models[i].devices;
	if (used == 0)
		used = MB_DEVICE_BIT(0);
	for (int d = 0; d < MB_DEVICES_MAX; d++) {
		struct mb_device_opts o = {.index = d,
					   .gpu = s->plan[d].cuda >= 0,
					   .cuda = s->plan[d].cuda,
					   .name = s->plan[d].name,
					   .batch_capacity = 1,
					   .numa_node = s->plan[d].numa_node};
		uint32_t workers = device_workers(s, d);

		if (!(used & MB_DEVICE_BIT(d)))
			continue;
		if (d == 0)
			o.units = s->cfg->cpu_units;
		else if ((rc = gpu_units(s, d, &o.units, err, err_len)) < 0)
			return rc;
		for (uint32_t i = 0; i < s->n_models; i++)
			if ((s->models[i].devices & MB_DEVICE_BIT(d)) &&
			    s->models[i].max_batch > o.batch_capacity)
				o.batch_capacity = s->models[i].max_batch;
		o.n_batches = s->n_models * (MAX_PENDING_BATCHES + 1) + 2 * workers + 4;
		rc = mb_device_create(&o, &s->devs[d]);
		if (rc < 0) {
			snprintf(err, err_len, "device %s: %s", o.name, strerror(-rc));
			return rc;
		}
		s->dev_list[s->n_devs++] = s->devs[d];
	}
	for (uint32_t i = 0; i < s->n_models; i++) {
		struct mb_model *m = &s->models[i];
		int node = MB_NUMA_ANY - 1; /* none seen yet */

		for (int d = 0; d < MB_DEVICES_MAX; d++) {
			if (!(m->devices & MB_DEVICE_BIT(d)))
				continue;
			if (s->devs[d]->capacity > m->capacity)
				m->capacity = s->devs[d]->capacity;
			node = node == MB_NUMA_ANY - 1 || node == s->devs[d]->numa_node
				       ? s->devs[d]->numa_node
				       : MB_NUMA_ANY;
		}
		m->numa_node = node >= 0 ? node : MB_NUMA_ANY;
	}
	return 0;
}

/* Each model's queue (front door and UDP -> batcher), on its devices' NUMA node. */
static int
build_queues(struct mb_service *s, char *err, size_t err_len)
{
	for (uint32_t i = 0; i < s->n_models; i++) {
		struct mb_model *m = &s->models[i];
		struct mb_ring_opts ro;
		char name[32];
		int rc;

		mb_ring_opts_init(&ro);
		snprintf(name, sizeof(name), "q_%s", m->desc->name);
		ro.name = name;
		ro.capacity = m->queue_limit;
		ro.numa_node = m->numa_node;
		ro.prod_sync = MB_RING_SYNC_MT_HTS;
		ro.cons_sync = MB_RING_SYNC_ST;
		ro.doorbell = s->batcher_bell;
		rc = mb_ring_create(&ro, &m->queue);
		if (rc < 0) {
			snprintf(err, err_len, "model %s: cannot create its queue of %u: %s",
				 m->desc->name, m->queue_limit, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int
build_models(struct mb_service *s, char *err, size_t err_len)
{
	int rc;

	for (const struct mb_model_desc *const *d = mb_builtin_models; *d != NULL; d++)
		if ((rc = add_model(s, *d, mb_config_model(s->cfg, (*d)->name), err, err_len)) < 0)
			return rc;
	for (unsigned int i = 0; i < s->cfg->n_models; i++)
		if (s->cfg->models[i].plugin[0] != '\0' &&
		    (rc = add_model(s, NULL, &s->cfg->models[i], err, err_len)) < 0)
			return rc;
	return 0;
}

/* ---- metrics ---- */

static int64_t
units_in_use(void *arg)
{
	struct mb_sem_stats st;

	mb_sem_stats(arg, &st);
	return (int64_t)st.in_use;
}

static int64_t
units_peak(void *arg)
{
	struct mb_sem_stats st;

	mb_sem_stats(arg, &st);
	return (int64_t)st.peak_in_use;
}

static int64_t
units_capacity(void *arg)
{
	struct mb_sem_stats st;

	mb_sem_stats(arg, &st);
	return (int64_t)st.capacity;
}

static int64_t
queue_depth(void *arg)
{
	return atomic_load_explicit(&((struct mb_model *)arg)->queued, memory_order_relaxed);
}

static int64_t
breaker_state(void *arg)
{
	return (int64_t)mb_breaker_state(arg);
}

/*
 * mediabatch_model_ready{model}: 1 while a request for the model could run now, else 0.
 * That is: enabled and loaded (not failed at start-up: weights, plugin, no device; not
 * disabled by the watchdog as hung), and on at least one device it is loaded on, its
 * circuit breaker is not refusing work (open and within its cool-down; half-open, or open
 * past the cool-down, counts as ready: the next batch runs as the probe). The service's own
 * state (starting, draining) is mediabatch_ready's, not this. Models off by configuration
 * have no series, as they do not count for /readyz either.
 */
static int64_t
model_ready(void *arg)
{
	const struct mb_model *m = arg;

	if (!m->enabled || m->devices == 0 || atomic_load_explicit(&m->hung, memory_order_acquire))
		return 0;
	if (m->breakers == NULL)
		return 1;
	for (int d = 0; d < MB_DEVICES_MAX; d++)
		if ((m->devices & MB_DEVICE_BIT(d)) && !mb_breaker_rejecting(&m->breakers[d]))
			return 1;
	return 0;
}

static void
build_metrics(struct mb_service *s)
{
	static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
	struct mb_metrics *r = s->metrics;
	char l[160];

	mb_metric_set(
		mb_metrics_gauge(r, "mediabatch_build_info",
				 "Version of the running daemon (value 1).",
				 mb_metrics_labels(l, sizeof(l), "version", MB_VERSION, "cuda",
						   MB_HAVE_CUDA ? "yes" : "no", NULL)),
		1);
	if (mb_metrics_add_process(r) < 0)
		MB_LOG(ERR, "cannot register the process_* metrics");
	s->m_ready = mb_metrics_gauge(r, "mediabatch_ready",
				      "1 when the service accepts work (see /readyz).", NULL);
	s->m_draining = mb_metrics_gauge(r, "mediabatch_draining",
					 "1 while the service drains before stopping.", NULL);
	s->m_live = mb_metrics_gauge(
		r, "mediabatch_live",
		"1 while every polled thread and the main loop turn (see /healthz).", NULL);
	mb_metric_set(s->m_live, 1);
	s->m_reload_applied = mb_metrics_counter(
		r, "mediabatch_config_reloads_total", "Configuration reloads (SIGHUP), by result.",
		mb_metrics_labels(l, sizeof(l), "result", "applied", NULL));
	s->m_reload_refused = mb_metrics_counter(
		r, "mediabatch_config_reloads_total", "Configuration reloads (SIGHUP), by result.",
		mb_metrics_labels(l, sizeof(l), "result", "refused", NULL));
	s->m_restart_pending = mb_metrics_gauge(
		r, "mediabatch_config_restart_pending_keys",
		"Keys of the configuration file, at its last applied reload, whose values differ "
		"from those in effect and take effect only at the next start (0: the file is "
		"what runs).",
		NULL);
	s->m_hung = mb_metrics_counter(
		r, "mediabatch_watchdog_hung_total",
		"Batches the watchdog gave up on: still in the model's run() past run_timeout_ms. "
		"Each disables its model and replaces its worker.",
		NULL);
	for (uint32_t i = 0; i <= s->n_models; i++) {
		const char *name = i < s->n_models ? s->models[i].desc->name : "_unknown";

		s->m_requests[i][MB_TRANSPORT_ZMQ] = mb_metrics_counter(
			r, "mediabatch_requests_total",
			"Requests received, by model and transport.",
			mb_metrics_labels(l, sizeof(l), "model", name, "transport", "zmq", NULL));
		s->m_requests[i][MB_TRANSPORT_UDP] = mb_metrics_counter(
			r, "mediabatch_requests_total",
			"Requests received, by model and transport.",
			mb_metrics_labels(l, sizeof(l), "model", name, "transport", "udp", NULL));
		for (int st = 0; st < MB_STATUS_COUNT; st++)
			s->m_responses[i][st] = mb_metrics_counter(
				r, "mediabatch_responses_total",
				"Terminal responses sent, by model and status.",
				mb_metrics_labels(l, sizeof(l), "model", name, "status",
						  mb_status_name((unsigned)st), NULL));
		if (i == s->n_models)
			break;
		s->m_rate_limited[i] = mb_metrics_counter(
			r, "mediabatch_rate_limited_total",
			"Requests answered OVERLOADED because their tenant was over its rate limit "
			"(tenants.limits), by model: a part of "
			"responses_total{status=\"OVERLOADED\"}.",
			mb_metrics_labels(l, sizeof(l), "model", name, NULL));
		s->m_latency[i] = mb_metrics_histogram(
			r, "mediabatch_request_latency_seconds",
			"Arrival to response sent, for requests accepted into a queue.",
			mb_metrics_labels(l, sizeof(l), "model", name, NULL),
			mb_metrics_latency_bounds, mb_metrics_latency_bounds_n);
		for (int g = 0; g < STAGE_COUNT; g++)
			s->m_stage[i][g] = mb_metrics_histogram(
				r, "mediabatch_stage_seconds",
				"Time requests that ran spent in each stage: queue (arrival until "
				"its batch closed), admission (until its device units were "
				"granted), dispatch (until a worker started it), compute, egress "
				"(until the response was sent).",
				mb_metrics_labels(l, sizeof(l), "model", name, "stage",
						  stage_names[g], NULL),
				stage_bounds, sizeof(stage_bounds) / sizeof(stage_bounds[0]));
		for (unsigned int c = 0; c < MB_CLOSE_COUNT; c++)
			s->models[i].m_closed[c] = mb_metrics_counter(
				r, "mediabatch_batches_closed_total",
				"Batches formed, by why they closed: full (max_batch, or the "
				"device's units), deadline (max_delay_us), drain.",
				mb_metrics_labels(l, sizeof(l), "model", name, "reason",
						  mb_close_reason_name(c), NULL));
		s->models[i].m_batch_size = mb_metrics_histogram(
			r, "mediabatch_batch_size", "Items per batch run on a device.",
			mb_metrics_labels(l, sizeof(l), "model", name, NULL), batch_bounds,
			sizeof(batch_bounds) / sizeof(batch_bounds[0]));
		if (!s->models[i].off_by_config)
			mb_metrics_gauge_fn(
				r, "mediabatch_model_ready",
				"1 while the model can run requests: enabled, loaded, not "
				"hung, and its circuit breaker not refusing work on at least "
				"one of its devices (docs/operating.md).",
				mb_metrics_labels(l, sizeof(l), "model", name, NULL), model_ready,
				&s->models[i]);
		mb_metrics_gauge_fn(r, "mediabatch_queue_depth",
				    "Requests accepted and waiting to be batched.",
				    mb_metrics_labels(l, sizeof(l), "model", name, NULL),
				    queue_depth, &s->models[i]);
		for (int d = 0; s->models[i].breakers != NULL && d < MB_DEVICES_MAX; d++)
			if (s->models[i].devices & MB_DEVICE_BIT(d))
				mb_metrics_gauge_fn(r, "mediabatch_breaker_state",
						    "Circuit breaker of a model on a device: 0 "
						    "closed, 1 open, 2 "
						    "half-open.",
						    mb_metrics_labels(l, sizeof(l), "model", name,
								      "device", s->plan[d].name,
								      NULL),
						    breaker_state, &s->models[i].breakers[d]);
	}
	for (uint32_t k = 0; k < s->n_devs; k++) {
		struct mb_device *dev = s->dev_list[k];

		mb_metrics_labels(l, sizeof(l), "device", dev->name, NULL);
		mb_metrics_gauge_fn(r, "mediabatch_vram_units_in_use",
				    "Device units held by admitted batches.", l, units_in_use,
				    dev->units);
		mb_metrics_gauge_fn(r, "mediabatch_vram_units_capacity", "Device units in all.", l,
				    units_capacity, dev->units);
		mb_metrics_gauge_fn(
			r, "mediabatch_vram_units_peak",
			"Most device units ever held at once (never above the capacity).", l,
			units_peak, dev->units);
		s->m_admission_wait[dev->index] = mb_metrics_histogram(
			r, "mediabatch_admission_wait_seconds",
			"Time a formed batch waited for its device units.", l,
			mb_metrics_latency_bounds, mb_metrics_latency_bounds_n);
	}
	if (s->cfg->n_udp_ports != 0)
		return; /* the UDP ingest registers the rx_* series itself */
	/* No DPDK port in this configuration: the series exist (for alerts) and stay 0. */
	mb_metrics_counter(r, "mediabatch_rx_packets_total",
			   "Packets received by the polled DPDK cores.", NULL);
	mb_metrics_counter(r, "mediabatch_rx_bytes_total",
			   "Bytes of the packets received by the polled DPDK cores.", NULL);
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
		mb_metrics_counter(
			r, "mediabatch_rx_dropped_total",
			"Packets dropped on the DPDK path, by reason (docs/operating.md).",
			mb_metrics_labels(l, sizeof(l), "reason",
					  mb_udp_drop_name((enum mb_udp_drop)w), NULL));
	mb_metrics_counter(r, "mediabatch_rx_arp_replies_total",
			   "ARP requests for a port's address answered.", NULL);
	{
		static const char *const outcomes[] = MB_UDP_OUTCOMES;

		for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++)
			mb_metrics_counter(
				r, "mediabatch_rx_requests_total", MB_UDP_REQUESTS_HELP,
				mb_metrics_labels(l, sizeof(l), "outcome", outcomes[o], NULL));
	}
	mb_metrics_counter(r, "mediabatch_rx_reassembly_expired_total",
			   "UDP requests still incomplete at the reassembly timeout.", NULL);
	mb_metrics_counter(r, "mediabatch_rx_cancels_total",
			   "UDP cancels that found their request.", NULL);
	mb_metrics_counter(r, "mediabatch_rx_unanswered_total", MB_UDP_UNANSWERED_HELP, NULL);
	mb_metrics_gauge(r, "mediabatch_rx_reassembly_entries",
			 "UDP requests being reassembled now.", NULL);
}

/* ---- front door policy ---- */

/* The owner thread of *@p cur takes a reloaded limiter posted in @p next, if any. */
static inline void
take_reloaded(_Atomic(struct mb_ratelimit *) *next, struct mb_ratelimit **cur)
{
	struct mb_ratelimit *n;

	if (atomic_load_explicit(next, memory_order_relaxed) == NULL)
		return;
	n = atomic_exchange_explicit(next, NULL, memory_order_acquire);
	if (n == NULL)
		return;
	mb_ratelimit_destroy(cur);
	*cur = n;
}

static enum mb_status
submit(void *ctx, struct mb_request *req, char *reason, size_t len)
{
	struct mb_service *s = ctx;
	enum mb_status st;

	take_reloaded(&s->limits_next, &s->limits);
	st = mb_admission_check(s->admission, s->limits, req, reason, len);
	struct mb_model *m;
	void *p = req;

	if (st != MB_STATUS_OK)
		return st;
	m = &s->models[req->model];
	if (mb_ring_enqueue_burst(m->queue, &p, 1) != 1) {
		mb_admission_undo(s->admission, req);
		snprintf(reason, len, "the %s queue is full; retry later", req->hdr.model);
		return MB_STATUS_OVERLOADED;
	}
	return MB_STATUS_OK;
}

static void
cancelled(void *ctx, struct mb_request *req)
{
	struct mb_service *s = ctx;

	(void)req;
	atomic_fetch_add_explicit(&s->cancel_gen, 1, memory_order_release);
	/* the batcher's recheck before sleeping reads cancel_gen, so the ring may skip the
	 * eventfd while it is awake: no syscall per cancel on the UDP rx cores */
	mb_doorbell_ring(s->batcher_bell);
}

static void
sent(void *ctx, const struct mb_request *req)
{
	struct mb_service *s = ctx;
	uint32_t i = req->model < s->n_models ? req->model : s->n_models;
	unsigned int st = req->resp.status < MB_STATUS_COUNT ? req->resp.status : 0;

	if (!req->counted) {
		/* refused before admission (a bad header, max_inflight, draining): it was a
		 * request all the same, for the model its header names when that one exists */
		const struct mb_model *m = mb_admission_find(s->admission, req->hdr.model);

		i = m != NULL ? m->index : s->n_models;
		mb_metric_add(
			s->m_requests[i][req->transport == MB_TRANSPORT_UDP ? MB_TRANSPORT_UDP
									    : MB_TRANSPORT_ZMQ],
			1);
	}
	mb_metric_add(s->m_responses[i][st], 1);
	/* latency of requests accepted into a queue (admit() set their deadline); refusals at
	 * the door are counted by status only, so fast refusals cannot hide slow service */
	if (i < s->n_models && req->deadline_ns != 0) {
		uint64_t end = req->sent_ns != 0 ? req->sent_ns : req->done_ns;

		if (end >= req->arrival_ns)
			mb_metric_observe(s->m_latency[i], (double)(end - req->arrival_ns) / 1e9);
	}
	/* where the time of a request that ran went (stamps of several threads' clocks, all
	 * CLOCK_MONOTONIC: a stage that reads below zero by a clock's resolution is 0) */
	if (i < s->n_models && req->start_ns != 0 && req->closed_ns != 0 && req->sent_ns != 0) {
		const uint64_t t[STAGE_COUNT + 1] = {req->arrival_ns,  req->closed_ns,
						     req->admitted_ns, req->start_ns,
						     req->done_ns,     req->sent_ns};

		for (int g = 0; g < STAGE_COUNT; g++)
			mb_metric_observe(s->m_stage[i][g],
					  t[g + 1] > t[g] ? (double)(t[g + 1] - t[g]) / 1e9 : 0);
	}
}

/* One ingest path (the front door, or the UDP rx threads as one) will queue nothing more;
 * once all have closed, the batcher may finish. */
static void
ingest_closed(void *ctx)
{
	struct mb_service *s = ctx;

	if (atomic_fetch_sub_explicit(&s->open_ingests, 1, memory_order_acq_rel) != 1)
		return;
	atomic_store_explicit(&s->ingest_closed, true, memory_order_release);
	mb_doorbell_ring_slow(s->batcher_bell);
}

static bool
udp_done(void *ctx)
{
	struct mb_service *s = ctx;

	return s->udp == NULL || (mb_udp_closed(s->udp) && mb_udp_outstanding(s->udp) == 0);
}

/* ---- UDP ingest policy (each rx thread; its own rate limiter) ---- */

static enum mb_status
udp_admit(void *ctx, uint32_t queue, struct mb_request *req, char *reason, size_t len)
{
	struct mb_service *s = ctx;

	take_reloaded(&s->udp_limits_next[queue], &s->udp_limits[queue]);
	return mb_admission_check(s->admission, s->udp_limits[queue], req, reason, len);
}

static struct mb_ring *
udp_model_ring(void *ctx, uint32_t model)
{
	return ((struct mb_service *)ctx)->models[model].queue;
}

static void
udp_unadmit(void *ctx, struct mb_request *req)
{
	mb_admission_undo(((struct mb_service *)ctx)->admission, req);
}

/* What create_limiter()'s -errno @p rc means, for an operator. */
static void
limiter_error(const struct mb_config *cfg, int rc, char *buf, size_t len)
{
	char heap[128];

	heap_source(cfg, heap, sizeof(heap));
	if (rc == -ENOMEM)
		snprintf(buf, len,
			 "tenant rate limits: no memory for a table of tenants.max_tenants %u "
			 "(one for ZeroMQ and one per UDP rx queue, in the DPDK heap: raise %s, or "
			 "lower max_tenants)",
			 cfg->max_tenants, heap);
	else
		snprintf(buf, len, "tenant rate limits: %s", strerror(-rc));
}

static int
create_limiter(const struct mb_config *cfg, struct mb_ratelimit **out)
{
	struct mb_ratelimit_opts rlo;
	int rc;

	mb_ratelimit_opts_init(&rlo);
	rlo.max_keys = cfg->max_tenants;
	rlo.default_rate = cfg->default_rate;
	rlo.default_burst = cfg->default_burst;
	rc = mb_ratelimit_create(&rlo, out);
	for (unsigned int i = 0; rc == 0 && i < cfg->n_limits; i++)
		rc = mb_ratelimit_set(*out, cfg->limits[i].tenant, cfg->limits[i].rate,
				      cfg->limits[i].burst);
	return rc;
}

/* ---- live reload (SIGHUP) ---- */

/*
 * The models' keys that differ between the running configuration and @p n and take effect
 * only at a start, compared as in effect (a key left out is its default): appended to
 * @p out. A checkpoint or plugin replaced on disk under the same path counts as
 * models[X].weights: the running daemon serves what it loaded.
 */
static void
model_restart_keys(const struct mb_service *s, const struct mb_config *n, char *out, size_t len,
		   unsigned int *count)
{
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct mb_model *m = &s->models[i];
		const struct mb_model_desc *d = m->desc;
		const struct mb_model_config *a = mb_config_model(s->cfg, d->name);
		const struct mb_model_config *b = mb_config_model(n, d->name);
		char now[PATH_MAX + 64], then[PATH_MAX + 64];

#define EFF(c, f, dflt) ((c) != NULL && (c)->f >= 0 ? (c)->f : (dflt))
		if ((a != NULL && a->enabled == 0) != (b != NULL && b->enabled == 0))
			mb_config_list_add(out, len, count, ", ", "models[%s].enabled", d->name);
		if (EFF(a, base_units, (int64_t)d->base_units) !=
		    EFF(b, base_units, (int64_t)d->base_units))
			mb_config_list_add(out, len, count, ", ", "models[%s].base_units", d->name);
		if (EFF(a, run_timeout_ms, DEFAULT_RUN_TIMEOUT_MS) !=
		    EFF(b, run_timeout_ms, DEFAULT_RUN_TIMEOUT_MS))
			mb_config_list_add(out, len, count, ", ", "models[%s].run_timeout_ms",
					   d->name);
		if (EFF(a, item_units_per_second, d->item_units_per_second) !=
		    EFF(b, item_units_per_second, d->item_units_per_second))
			mb_config_list_add(out, len, count, ", ",
					   "models[%s].item_units_per_second", d->name);
		if ((a != NULL && a->max_windows > 0 ? a->max_windows : MB_DEFAULT_MAX_WINDOWS) !=
		    (b != NULL && b->max_windows > 0 ? b->max_windows : MB_DEFAULT_MAX_WINDOWS))
			mb_config_list_add(out, len, count, ", ", "models[%s].max_windows",
					   d->name);
		if (EFF(a, precision, MB_CONFIG_PRECISION_BF16) !=
		    EFF(b, precision, MB_CONFIG_PRECISION_BF16))
			mb_config_list_add(out, len, count, ", ", "models[%s].precision", d->name);
#undef EFF
		if (strcmp(a != NULL ? a->plugin : "", b != NULL ? b->plugin : "") != 0) {
			mb_config_list_add(out, len, count, ", ", "models[%s].plugin", d->name);
			continue;
		}
		weights_path(n, d->name, now, sizeof(now));
		weights_path(s->cfg, d->name, then, sizeof(then));
		if (strcmp(now, then) != 0)
			mb_config_list_add(out, len, count, ", ", "models[%s].weights", d->name);
		else if (m->enabled && source_id(now, b != NULL ? b->plugin : NULL) != m->source_id)
			mb_config_list_add(out, len, count, ", ",
					   "models[%s].weights (changed on disk)", d->name);
	}
	for (unsigned int k = 0; k < n->n_models; k++) /* a plugin model added */
		if (n->models[k].plugin[0] != '\0' && model_named(s, n->models[k].name) == NULL)
			mb_config_list_add(out, len, count, ", ", "models[%s]", n->models[k].name);
}

/* Post @p n to an owner thread's slot; a limiter posted before and not yet taken is freed. */
static void
post_limiter(_Atomic(struct mb_ratelimit *) *slot, struct mb_ratelimit *n)
{
	struct mb_ratelimit *old = atomic_exchange_explicit(slot, n, memory_order_acq_rel);

	mb_ratelimit_destroy(&old);
}

int
service_reload(struct mb_service *s, const struct mb_config *n, char *msg, size_t len)
{
	struct live lv[MAX_MODELS];
	struct mb_ratelimit *fl = NULL, **ul = NULL;
	struct mb_auth *auth = NULL;
	char pending[1536];
	unsigned int n_pending;
	int rc = 0;

	/* Check everything first: a reload applies whole or not at all. */
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct mb_model *m = &s->models[i];

		live_settings(m, n, &lv[i]);
		if (!m->enabled)
			continue;
		if (lv[i].max_batch > m->max_batch_start) {
			snprintf(msg, len,
				 "%s: model %s: max_batch %u is above %u, the value it started "
				 "with (batches are sized at start): restart to raise it",
				 n->source, m->desc->name, lv[i].max_batch, m->max_batch_start);
			rc = -EINVAL;
			goto refused;
		}
		if (lv[i].queue_limit > m->queue_limit_start) {
			snprintf(msg, len,
				 "%s: model %s: queue_limit %u is above %u, the value it started "
				 "with (the queue is sized at start): restart to raise it",
				 n->source, m->desc->name, lv[i].queue_limit, m->queue_limit_start);
			rc = -EINVAL;
			goto refused;
		}
	}
	if (s->n_udp_limits != 0 && (ul = calloc(s->n_udp_limits, sizeof(*ul))) == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = create_limiter(n, &fl);
	for (uint32_t q = 0; rc == 0 && q < s->n_udp_limits; q++)
		rc = create_limiter(n, &ul[q]);
	if (rc < 0) {
		char why[256];

		limiter_error(n, rc, why, sizeof(why));
		snprintf(msg, len, "%s: %s", n->source, why);
		goto refused;
	}
	if (n->security_mode != s->cfg->security_mode) {
		snprintf(msg, len,
			 "%s: security.mode %s: the service started with %s; restart to change it",
			 n->source, n->security_mode == MB_SECURITY_CURVE ? "curve" : "plaintext",
			 s->cfg->security_mode == MB_SECURITY_CURVE ? "curve" : "plaintext");
		rc = -EINVAL;
		goto refused;
	}
	if (n->security_mode == MB_SECURITY_CURVE) {
		char why[768];

		rc = mb_auth_create(n->clients, n->n_clients, &auth, why, sizeof(why));
		if (rc < 0) {
			snprintf(msg, len, "%s: %s", n->source, why);
			goto refused;
		}
	}

	/* Apply: plain atomic stores, and each limiter to its owner thread. */
	for (uint32_t i = 0; i < s->n_models; i++) {
		struct mb_model *m = &s->models[i];

		if (!m->enabled)
			continue;
		atomic_store_explicit(&m->max_batch, lv[i].max_batch, memory_order_relaxed);
		atomic_store_explicit(&m->max_delay_us, lv[i].max_delay_us, memory_order_relaxed);
		atomic_store_explicit(&m->queue_limit, lv[i].queue_limit, memory_order_relaxed);
		atomic_store_explicit(&m->default_timeout_ms, lv[i].default_timeout_ms,
				      memory_order_relaxed);
	}
	post_limiter(&s->limits_next, fl);
	if (auth != NULL) {
		mb_frontdoor_post_auth(s->fd, auth); /* the front door cuts off removed keys */
		auth = NULL;
	}
	for (uint32_t q = 0; q < s->n_udp_limits; q++)
		post_limiter(&s->udp_limits_next[q], ul[q]);
	free(ul);
	mb_doorbell_ring_slow(s->batcher_bell); /* a shorter max_delay_us counts now */
	n_pending = mb_config_restart_keys(s->cfg, n, pending, sizeof(pending));
	model_restart_keys(s, n, pending, sizeof(pending), &n_pending);
	mb_metric_set(s->m_restart_pending, (int64_t)n_pending);
	snprintf(msg, len,
		 "tenants (default_rate %g, %u limit(s) of their own), %s%s the models' "
		 "max_batch, max_delay_us, queue_limit and default_timeout_ms applied; %s%s",
		 n->default_rate, n->n_limits,
		 n->security_mode == MB_SECURITY_CURVE ? "the allow-list (" : "",
		 n->security_mode == MB_SECURITY_CURVE ? "security.clients) and" : "and",
		 n_pending == 0 ? "no other key differs from what runs"
				: "changed, waiting for the next start: ",
		 n_pending == 0 ? "" : pending);
	mb_metric_add(s->m_reload_applied, 1);
	return 0;
refused:
	mb_auth_destroy(&auth);
	mb_ratelimit_destroy(&fl);
	for (uint32_t q = 0; ul != NULL && q < s->n_udp_limits; q++)
		mb_ratelimit_destroy(&ul[q]);
	free(ul);
	mb_metric_add(s->m_reload_refused, 1);
	return rc;
}

void
service_reload_failed(struct mb_service *s)
{
	mb_metric_add(s->m_reload_refused, 1);
}

static int
build_udp(struct mb_service *s, char *err, size_t err_len)
{
	const struct mb_config *cfg = s->cfg;
	struct mb_udp_opts uo = {0};
	uint32_t nq = 0;
	int rc;

	if (cfg->n_udp_ports == 0)
		return 0;
	for (unsigned int i = 0; i < cfg->n_udp_ports; i++)
		nq += cfg->udp_ports[i].rx_queues;
	s->udp_limits = calloc(nq, sizeof(*s->udp_limits));
	s->udp_limits_next = calloc(nq, sizeof(*s->udp_limits_next));
	if (s->udp_limits == NULL || s->udp_limits_next == NULL)
		return -ENOMEM;
	s->n_udp_limits = nq;
	for (uint32_t i = 0; i < nq; i++) {
		rc = create_limiter(cfg, &s->udp_limits[i]);
		if (rc < 0) {
			limiter_error(cfg, rc, err, err_len);
			return rc;
		}
	}
	uo.cfg = cfg;
	uo.results = s->results;
	uo.drain = s->sub[SUB_UDP].drain;
	uo.abort = s->sub[SUB_UDP].abort;
	uo.metrics = s->metrics;
	uo.topo = s->topo;
	uo.sources = cfg->udp_sources; /* copied by mb_udp_create() */
	uo.n_sources = cfg->n_udp_sources;
	uo.ops = (struct mb_udp_ops){
		.ctx = s,
		.admit = udp_admit,
		.model_ring = udp_model_ring,
		.unadmit = udp_unadmit,
		.cancelled = cancelled,
		.closed = ingest_closed,
	};
	rc = mb_udp_create(&uo, &s->udp, err, err_len);
	if (rc < 0)
		return rc;
	s->udp_slots = calloc(mb_udp_queues(s->udp), sizeof(*s->udp_slots));
	if (s->udp_slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < mb_udp_queues(s->udp); i++)
		s->udp_slots[i] = (struct udp_slot_arg){.svc = s, .queue = i};
	atomic_fetch_add(&s->open_ingests, 1);
	return 0;
}

/* ---- placement: the polled threads and their pollers ---- */

static void
placement_input(const struct mb_config *cfg, const struct dev_plan *plan,
		const struct mb_topo *topo, struct mb_placement_input *in)
{
	memset(in, 0, sizeof(*in));
	in->policy = (enum mb_placement_policy)cfg->placement;
	in->gpu_numa = MB_NUMA_ANY;
	for (unsigned int i = 0; i < cfg->n_udp_ports; i++) {
		/* the NIC's node, for a PCI device the topology knows (a virtual device: any) */
		int node = topo != NULL ? mb_topo_pci_numa(topo, cfg->udp_ports[i].device) : -1;

		for (unsigned int k = 0; k < cfg->udp_ports[i].rx_queues; k++)
			if (in->n_rx < MB_PLACEMENT_MAX_RX)
				in->rx_numa[in->n_rx++] = node >= 0 ? node : MB_NUMA_ANY;
			else
				in->n_rx++; /* refused by mb_placement_compute() */
	}
	for (int d = 1; plan != NULL && d < MB_DEVICES_MAX; d++)
		if (plan[d].on && plan[d].cuda >= 0 && plan[d].numa_node >= 0) {
			in->gpu_numa = plan[d].numa_node;
			break;
		}
}

/*
 * A thread that runs one rx queue alone, whose port gives it a CPU in the config
 * (udp.ports[].cpus): there. Says in @p note (empty: nothing to say) what was not applied,
 * an rx queue sharing its thread with other stages (a small machine's one thread), and what
 * cannot work, a CPU outside this process's affinity (the thread's bind fails at start).
 */
static void
placement_config_cpus(const struct mb_config *cfg, struct mb_placement *p, char *note,
		      size_t note_len)
{
	uint32_t q = 0, shared = 0, outside = 0;
	cpu_set_t mine;
	bool known = sched_getaffinity(0, sizeof(mine), &mine) == 0;

	note[0] = '\0';
	for (unsigned int i = 0; i < cfg->n_udp_ports; i++)
		for (unsigned int k = 0; k < cfg->udp_ports[i].rx_queues; k++, q++) {
			int cpu =
				k < cfg->udp_ports[i].n_cpus ? (int)cfg->udp_ports[i].cpus[k] : -1;
			struct mb_placement_thread *alone = NULL;

			if (cpu < 0)
				continue;
			for (uint32_t t = 0; t < p->n_threads && alone == NULL; t++)
				if (p->threads[t].stages == MB_STAGE_RX &&
				    p->threads[t].n_rx == 1 && p->threads[t].rx_first == q)
					alone = &p->threads[t];
			if (alone != NULL) {
				alone->cpu = cpu;
				alone->numa_node = MB_NUMA_ANY;
			}
			if (alone == NULL && shared++ == 0)
				snprintf(note + strlen(note), note_len - strlen(note),
					 "%sudp.ports[%u].cpus[%u] (CPU %d) is not applied: rx "
					 "queue %u "
					 "shares a polled thread with other stages "
					 "(%s %s; "
					 "per-stage gives each rx queue a thread of its own)",
					 note[0] ? "; " : "", i, k, cpu, q,
					 mb_config_origin(cfg, "service.placement"),
					 mb_placement_policy_name(p->policy));
			if (known && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &mine)) &&
			    outside++ == 0)
				snprintf(note + strlen(note), note_len - strlen(note),
					 "%sudp.ports[%u].cpus[%u]: CPU %d is not one this process "
					 "may run "
					 "on (its affinity has %d CPU(s)): its thread cannot bind "
					 "there",
					 note[0] ? "; " : "", i, k, cpu, CPU_COUNT(&mine));
		}
	if (shared > 1 || outside > 1)
		snprintf(note + strlen(note), note_len - strlen(note),
			 " (%u entries not applied, %u "
			 "outside the affinity, in all)",
			 shared, outside);
}

int
service_check_placement(const struct mb_config *cfg, char *buf, size_t len)
{
	struct mb_placement_input in;
	struct mb_placement *p = calloc(1, sizeof(*p));
	struct mb_topo_opts to;
	struct mb_topo *topo = NULL;
	int rc;

	if (p == NULL)
		return -ENOMEM;
	mb_topo_opts_init(&to);
	if (mb_topo_create(&to, &topo) < 0)
		topo = NULL;
	placement_input(cfg, NULL, topo, &in);
	rc = mb_placement_compute(topo, &in, p);
	if (rc == 0) {
		char note[512];
		size_t n;

		placement_config_cpus(cfg, p, note, sizeof(note));
		mb_placement_describe(p, buf, len);
		n = strlen(buf);
		if (note[0] != '\0' && n < len)
			snprintf(buf + n, len - n, "; WARNING: %s", note);
	} else {
		snprintf(buf, len, "no placement: %s", strerror(-rc));
	}
	mb_topo_destroy(&topo);
	free(p);
	return rc;
}

/* The reactors, from the placement; before the rings, which take their doorbells. */
static int
build_reactors(struct mb_service *s, char *err, size_t err_len)
{
	struct mb_placement_input in;
	char desc[1024];
	int rc;

	placement_input(s->cfg, s->plan, s->topo, &in);
	if (in.n_rx > MB_PLACEMENT_MAX_RX) {
		snprintf(err, err_len, "udp.ports: %u rx queues in all; at most %u", in.n_rx,
			 MB_PLACEMENT_MAX_RX);
		return -EINVAL;
	}
	rc = mb_placement_compute(s->topo, &in, &s->placement);
	if (rc < 0) {
		snprintf(err, err_len, "placement (%s %s): %s",
			 mb_config_origin(s->cfg, "service.placement"),
			 mb_placement_policy_name(in.policy), strerror(-rc));
		return rc;
	}
	placement_config_cpus(s->cfg, &s->placement, desc, sizeof(desc));
	if (desc[0] != '\0')
		MB_LOG(WARNING, "%s", desc);
	for (uint32_t t = 0; t < s->placement.n_threads; t++) {
		const struct mb_placement_thread *pt = &s->placement.threads[t];
		struct reactor_slot *rs = &s->reactors[t];
		struct mb_reactor_opts ro;

		mb_reactor_opts_init(&ro);
		ro.name = pt->name;
		ro.idle = s->cfg->idle;
		ro.cpu = pt->cpu;
		rs->svc = s;
		rs->pt = pt;
		rc = mb_reactor_create(&ro, &rs->r);
		if (rc < 0) {
			snprintf(err, err_len, "polled thread %s: %s", pt->name, strerror(-rc));
			return rc;
		}
		s->n_reactors++;
		if (pt->stages & MB_STAGE_FRONTDOOR)
			s->fd_reactor = t;
		if (pt->stages & MB_STAGE_BATCHER)
			s->batcher_bell = mb_reactor_doorbell(rs->r);
	}
	mb_placement_describe(&s->placement, desc, sizeof(desc));
	MB_LOG(NOTICE, "placement %s: %s", mb_placement_policy_name(in.policy), desc);
	return 0;
}

/* /metrics: what each polled thread does with its time */
static int64_t
reactor_busy_ms(void *arg)
{
	struct mb_reactor_stats st;
	uint64_t hz = rte_get_tsc_hz();

	mb_reactor_stats(((struct reactor_slot *)arg)->r, &st);
	return hz ? (int64_t)(st.busy_tsc / (hz / 1000)) : 0;
}

static int64_t
reactor_idle_ms(void *arg)
{
	struct mb_reactor_stats st;
	uint64_t hz = rte_get_tsc_hz();

	mb_reactor_stats(((struct reactor_slot *)arg)->r, &st);
	return hz ? (int64_t)(st.idle_tsc / (hz / 1000)) : 0;
}

static int64_t
reactor_sleeps(void *arg)
{
	struct mb_reactor_stats st;

	mb_reactor_stats(((struct reactor_slot *)arg)->r, &st);
	return (int64_t)st.sleeps;
}

static int64_t
reactor_rounds(void *arg)
{
	struct mb_reactor_stats st;

	mb_reactor_stats(((struct reactor_slot *)arg)->r, &st);
	return (int64_t)st.rounds;
}

static void
reactor_metrics(struct mb_service *s)
{
	for (uint32_t t = 0; t < s->n_reactors; t++) {
		struct reactor_slot *rs = &s->reactors[t];
		char l[64];

		mb_metrics_labels(l, sizeof(l), "thread", rs->pt->name, NULL);
		mb_metrics_counter_fn(
			s->metrics, "mediabatch_poll_busy_ms_total",
			"Time each polled thread spent in rounds in which a stage had "
			"work",
			l, reactor_busy_ms, rs);
		mb_metrics_counter_fn(s->metrics, "mediabatch_poll_idle_ms_total",
				      "Time each polled thread spent in idle rounds and asleep", l,
				      reactor_idle_ms, rs);
		mb_metrics_counter_fn(s->metrics, "mediabatch_poll_rounds_total",
				      "Rounds each polled thread ran (every stage it runs, once)",
				      l, reactor_rounds, rs);
		mb_metrics_counter_fn(s->metrics, "mediabatch_poll_sleeps_total",
				      "Times each polled thread went to sleep (every stage idle)",
				      l, reactor_sleeps, rs);
	}
}

static int
poll_frontdoor(void *arg, struct mb_reactor *r, uint64_t now)
{
	uint64_t wake = UINT64_MAX;
	int n = mb_frontdoor_poll(((struct mb_service *)arg)->fd, now, &wake);

	if (wake != UINT64_MAX)
		mb_reactor_wake_at(r, wake);
	return n;
}

static int
poll_batcher(void *arg, struct mb_reactor *r, uint64_t now)
{
	uint64_t wake = UINT64_MAX;
	int n = mb_batcher_poll(((struct mb_service *)arg)->batcher, now, &wake);

	if (wake != UINT64_MAX)
		mb_reactor_wake_at(r, wake);
	return n;
}

static int
poll_rx(void *arg, struct mb_reactor *r, uint64_t now)
{
	struct udp_slot_arg *a = arg;
	uint64_t wake = UINT64_MAX;
	int n = mb_udp_rx_poll(a->svc->udp, a->queue, now, &wake);

	if (wake != UINT64_MAX)
		mb_reactor_wake_at(r, wake);
	return n;
}

/* Each stage's poller onto its reactor: front door first, so that a round takes requests
 * in, batches them, and (next round) sends what came back. */
static int
attach_pollers(struct mb_service *s, char *err, size_t err_len)
{
	for (uint32_t t = 0; t < s->n_reactors; t++) {
		const struct mb_placement_thread *pt = s->reactors[t].pt;
		struct mb_reactor *r = s->reactors[t].r;
		int rc = 0;

		if (pt->stages & MB_STAGE_FRONTDOOR) {
			rc = mb_reactor_add_poller(r, "frontdoor+egress", poll_frontdoor, s);
			mb_frontdoor_watch(s->fd, r);
		}
		if (rc == 0 && (pt->stages & MB_STAGE_BATCHER))
			rc = mb_reactor_add_poller(r, "batcher", poll_batcher, s);
		for (uint32_t q = pt->rx_first;
		     rc == 0 && (pt->stages & MB_STAGE_RX) && q < pt->rx_first + pt->n_rx; q++)
			rc = mb_reactor_add_poller(r, mb_udp_queue_label(s->udp, q), poll_rx,
						   &s->udp_slots[q]);
		if (rc < 0) {
			snprintf(err, err_len, "polled thread %s: too many pollers", pt->name);
			return rc;
		}
	}
	return 0;
}

static bool
ready(void *ctx, char *why, size_t len)
{
	struct mb_service *s = ctx;

	if (len != 0)
		why[0] = '\0';
	if (mb_cancel_is_cancelled(s->drain)) {
		snprintf(why, len, "draining: the service is shutting down");
		return false;
	}
	if (!atomic_load(&s->ready)) {
		snprintf(why, len, "starting");
		return false;
	}
	/* service.ready_when all_models (the default): ready when every model the
	 * configuration serves is: one that failed (weights, plugin, no device) answers every
	 * request UNAVAILABLE, so a balancer should send its work elsewhere. any_model: ready
	 * while at least one is (each model's own readiness is /v2/models/NAME/ready). A model
	 * off by configuration does not count either way. */
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct mb_model *m = &s->models[i];
		bool hung = atomic_load_explicit(&m->hung, memory_order_acquire);

		if (m->off_by_config)
			continue;
		if (s->cfg->ready_when == MB_READY_ANY) {
			if (m->enabled && !hung)
				return true;
			if (why[0] == '\0')
				snprintf(why, len, "no model is available (model %s: %s)",
					 m->desc->name, hung ? m->hung_reason : m->disabled_reason);
			continue;
		}
		if (!m->enabled) {
			snprintf(why, len, "model %s is unavailable: %s", m->desc->name,
				 m->disabled_reason);
			return false;
		}
		if (hung) {
			snprintf(why, len, "%s", m->hung_reason);
			return false;
		}
	}
	if (s->cfg->ready_when == MB_READY_ANY) {
		if (why[0] == '\0')
			snprintf(why, len, "no model is enabled");
		return false;
	}
	return true;
}

/*
 * Liveness, as of @p now: false, with which part in @p why, when the main loop or a polled
 * thread that has not finished has not turned for service.liveness_ms. The polled threads'
 * progress is their round counters, as the main loop last saw them move (service_tick()):
 * an idle reactor still turns every 100 ms (its longest sleep). Any thread.
 */
static bool
live_at(struct mb_service *s, uint64_t now, char *why, size_t len)
{
	uint64_t t = atomic_load(&s->main_turned_ns);

	if (len != 0)
		why[0] = '\0';
	if (now > t && now - t >= s->liveness_ns) {
		snprintf(why, len,
			 "the main thread (signals, reloads, the watchdog) has not turned for "
			 "%" PRIu64 " ms (service.liveness_ms %" PRIu64 ")",
			 (now - t) / MB_NS_PER_MS, s->liveness_ns / MB_NS_PER_MS);
		return false;
	}
	for (uint32_t i = 0; i < s->n_reactors; i++) {
		struct reactor_slot *rs = &s->reactors[i];

		if (atomic_load(&rs->finished))
			continue;
		t = atomic_load(&rs->turned_ns);
		if (t != 0 && now > t && now - t >= s->liveness_ns) {
			char name[16], stages[128];

			service_reactor_name(s, i, name, sizeof(name));
			mb_placement_thread_stages(rs->pt, stages, sizeof(stages));
			snprintf(why, len,
				 "polled thread %s (%s) has not run a round of its stages for "
				 "%" PRIu64 " ms (service.liveness_ms %" PRIu64 ")",
				 name, stages, (now - t) / MB_NS_PER_MS,
				 s->liveness_ns / MB_NS_PER_MS);
			return false;
		}
	}
	return true;
}

/* /healthz (HTTP thread) */
static bool
live(void *ctx, char *why, size_t len)
{
	return live_at(ctx, mb_env_now_ns(), why, len);
}

bool
service_tick(struct mb_service *s, uint64_t now, char *why, size_t len)
{
	bool ok;

	atomic_store(&s->main_turned_ns, now);
	for (uint32_t i = 0; i < s->n_reactors; i++) {
		struct reactor_slot *rs = &s->reactors[i];
		struct mb_reactor_stats st;

		mb_reactor_stats(rs->r, &st);
		if (st.rounds != rs->seen_rounds && atomic_load(&rs->turned_ns) != 0) {
			rs->seen_rounds = st.rounds;
			atomic_store(&rs->turned_ns, now);
		}
	}
	ok = live_at(s, now, why, len);
	mb_metric_set(s->m_live, ok ? 1 : 0);
	return ok;
}

/* Cancellation callbacks: wake the subsystem whose token it is, wherever it sleeps. */

static void
wake_frontdoor(void *arg)
{
	mb_ring_wake(((struct mb_service *)arg)->results);
}

static void
wake_batcher(void *arg)
{
	mb_doorbell_ring_slow(((struct mb_service *)arg)->batcher_bell);
}

static void
wake_workers(void *arg)
{
	struct mb_service *s = arg;

	for (uint32_t k = 0; k < s->n_devs; k++)
		mb_ring_wake(s->dev_list[k]->run);
}

static void
wake_udp(void *arg)
{
	(void)arg; /* rx threads poll their token at least every idle.sleep_us */
}

static int
build_tree(struct mb_service *s)
{
	static const mb_cancel_fn wake[SUB_COUNT] = {wake_frontdoor, wake_batcher, wake_workers,
						     wake_udp};
	int rc;

	if ((rc = mb_cancel_create(NULL, &s->drain)) < 0 ||
	    (rc = mb_cancel_create(NULL, &s->abort)) < 0)
		return rc;
	for (int i = 0; i < SUB_COUNT; i++) {
		struct subsystem_tokens *t = &s->sub[i];

		if ((rc = mb_cancel_create(s->drain, &t->drain)) < 0 ||
		    (rc = mb_cancel_create(s->abort, &t->abort)) < 0)
			return rc;
		mb_cancel_register(t->drain, &t->drain_cb, wake[i], s);
		mb_cancel_register(t->abort, &t->abort_cb, wake[i], s);
	}
	return 0;
}

static void
destroy_tree(struct mb_service *s)
{
	for (int i = 0; i < SUB_COUNT; i++) {
		struct subsystem_tokens *t = &s->sub[i];

		if (t->drain != NULL)
			mb_cancel_unregister(t->drain, &t->drain_cb);
		if (t->abort != NULL)
			mb_cancel_unregister(t->abort, &t->abort_cb);
		mb_cancel_destroy(&t->drain);
		mb_cancel_destroy(&t->abort);
	}
	mb_cancel_destroy(&s->drain);
	mb_cancel_destroy(&s->abort);
}

/* ---- assembly ---- */

static int models_json(void *ctx, const char *name, bool ready, bool may_list, char **body,
		       size_t *len, int *status); /* /v2/models: near service_describe() */

int
service_create(const struct mb_config *cfg, struct mb_service **out, char *err, size_t err_len)
{
	struct mb_service *s;
	struct mb_ring_opts ro;
	struct mb_admission_opts ao;
	struct mb_batcher_opts bo;
	struct mb_frontdoor_opts fo = {0};
	struct mb_topo_opts to;
	uint32_t n = 0;
	int rc;

	*out = NULL;
	rc = service_check_models(cfg, err, err_len);
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->cfg = cfg;
	s->liveness_ns = (uint64_t)cfg->liveness_ms * MB_NS_PER_MS;
	atomic_store(&s->main_turned_ns, mb_env_now_ns());
	/* threads that sleep often pair their doorbells with a fence per ring; spinning ones
	 * (bare metal) with membarrier per sleep (mb_doorbell.h) */
	mb_doorbell_use_fence(cfg->idle.mode != MB_IDLE_SPIN);
	atomic_init(&s->ingest_closed, false);
	atomic_init(&s->cancel_gen, 0);
	atomic_init(&s->ready, false);
	atomic_init(&s->open_ingests, 1);
	if ((rc = mb_metrics_create(&s->metrics)) < 0) {
		snprintf(err, err_len, "out of resources: %s", strerror(-rc));
		goto fail;
	}
	mb_topo_opts_init(&to);
	if (mb_topo_create(&to, &s->topo) < 0)
		MB_LOG(WARNING, "no topology: GPU workers and rx threads are not placed");
	if ((rc = plan_devices(s, err, err_len)) < 0 || (rc = build_models(s, err, err_len)) < 0 ||
	    (rc = build_devices(s, err, err_len)) < 0 ||
	    (rc = build_reactors(s, err, err_len)) < 0 || (rc = build_queues(s, err, err_len)) < 0)
		goto fail;
	if (s->served[0] == '\0')
		MB_LOG(WARNING, "no model is enabled: every request will be refused");
	mb_ring_opts_init(&ro);
	ro.name = "results";
	ro.capacity = cfg->max_inflight + 64;
	for (unsigned int i = 0; i < cfg->n_udp_ports; i++) /* room for every request object */
		ro.capacity += cfg->udp_ports[i].rx_queues * mb_udp_queue_slots(cfg);
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	ro.cons_sync = MB_RING_SYNC_ST;
	ro.doorbell = mb_reactor_doorbell(s->reactors[s->fd_reactor].r);
	rc = mb_ring_create(&ro, &s->results);
	if (rc < 0) {
		snprintf(err, err_len, "results ring of %u: %s", ro.capacity, strerror(-rc));
		goto fail;
	}
	rc = create_limiter(cfg, &s->limits);
	if (rc < 0) {
		limiter_error(cfg, rc, err, err_len);
		goto fail;
	}
	build_metrics(s);
	mb_admission_opts_init(&ao);
	ao.models = s->model_ptrs;
	ao.n_models = s->n_models;
	ao.devices = s->devs;
	ao.n_devices = MB_DEVICES_MAX;
	ao.served = s->served;
	ao.breaker_failures = cfg->breaker_failures;
	ao.breaker_cooldown_ms = cfg->breaker_cooldown_ms;
	ao.requests = s->m_requests;
	ao.rate_limited = s->m_rate_limited;
	rc = mb_admission_create(&ao, &s->admission);
	if (rc < 0) {
		snprintf(err, err_len, "admission: %s", strerror(-rc));
		goto fail;
	}
	rc = build_tree(s);
	if (rc < 0) {
		snprintf(err, err_len, "cancellation tokens: %s", strerror(-rc));
		goto fail;
	}

	mb_batcher_opts_init(&bo);
	bo.models = s->model_ptrs;
	bo.n_models = s->n_models;
	bo.devices = s->dev_list;
	bo.n_devices = s->n_devs;
	bo.results = s->results;
	bo.bell = s->batcher_bell;
	bo.idle = cfg->idle;
	bo.drain = s->sub[SUB_BATCHER].drain;
	bo.abort = s->sub[SUB_BATCHER].abort;
	bo.ingest_closed = &s->ingest_closed;
	bo.cancel_gen = &s->cancel_gen;
	bo.max_pending = MAX_PENDING_BATCHES;
	rc = mb_batcher_create(&bo, &s->batcher);
	if (rc < 0) {
		snprintf(err, err_len, "batcher: %s", strerror(-rc));
		goto fail;
	}
	for (uint32_t k = 0; k < s->n_devs; k++)
		n += device_workers(s, s->dev_list[k]->index);
	s->cap_workers = n + MAX_REPLACEMENTS;
	s->workers = calloc(s->cap_workers, sizeof(*s->workers));
	if (s->workers == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t k = 0; k < s->n_devs; k++) {
		struct mb_device *dev = s->dev_list[k];

		for (uint32_t i = 0; i < device_workers(s, dev->index); i++) {
			struct mb_worker_opts wo = {
				.device = dev,
				.topo = s->topo,
				.models = s->model_ptrs,
				.n_models = s->n_models,
				.results = s->results,
				.abort = s->sub[SUB_WORKERS].abort,
				.idle = cfg->idle,
				.m_admission_wait = s->m_admission_wait[dev->index],
			};
			struct worker_slot *slot = &s->workers[s->n_workers];

			slot->svc = s;
			slot->dev = dev;
			slot->index = i;
			slot->opts = wo;
			rc = mb_worker_create(&wo, &slot->w);
			if (rc < 0) {
				snprintf(err, err_len, "device %s: worker %u: %s", dev->name, i,
					 strerror(-rc));
				goto fail;
			}
			s->n_workers++;
		}
	}

	s->zctx = zmq_ctx_new();
	if (s->zctx == NULL) {
		rc = -ENOMEM;
		snprintf(err, err_len, "cannot create a ZeroMQ context");
		goto fail;
	}
	zmq_ctx_set(s->zctx, ZMQ_IO_THREADS, (int)cfg->zmq_io_threads);
	fo.zmq_ctx = s->zctx;
	fo.ingest = cfg->ingest;
	fo.publish = cfg->publish;
	fo.router_sndhwm = cfg->router_sndhwm;
	fo.router_rcvhwm = cfg->router_rcvhwm;
	fo.pub_sndhwm = cfg->pub_sndhwm;
	fo.heartbeat_ms = cfg->zmq_heartbeat_ms;
	fo.max_inflight = cfg->max_inflight;
	fo.max_inflight_bytes = cfg->max_inflight_bytes;
	fo.max_payload = cfg->max_payload_bytes;
	fo.linger_ms = 1000;
	fo.abort_grace_ms = 1000;
	fo.drain_quiet_ms = cfg->drain_quiet_ms;
	fo.results = s->results;
	fo.drain = s->sub[SUB_FRONTDOOR].drain;
	fo.abort = s->sub[SUB_FRONTDOOR].abort;
	fo.metrics = s->metrics;
	fo.numa_node = MB_NUMA_ANY;
	fo.max_inflight_per_client = client_share(cfg);
	fo.max_inflight_per_tenant = cfg->max_inflight_per_tenant;

	fo.ops = (struct mb_frontdoor_ops){
		.ctx = s,
		.submit = submit,
		.cancelled = cancelled,
		.sent = sent,
		.ingest_closed = ingest_closed,
		.others_done = udp_done,
	};
	{
		char why[1024], pub[41], sec[41];

		rc = load_security(cfg, &fo.auth, pub, sec, err, err_len);
		if (rc < 0) { /* a key file missing, unreadable, insecure or malformed */
			rc = rc == -ENOMEM ? rc : -EINVAL;
			goto fail;
		}
		fo.server_secret_key = sec;
		/* the line only (load_security() above succeeded, so this does too); the HTTP
		 * endpoint reads its own files when it starts, and says what is wrong */
		if (service_check_security(cfg, false, why, sizeof(why)) == 0)
			mb_log(strstr(why, "WARNING") != NULL ? RTE_LOG_WARNING : RTE_LOG_NOTICE,
			       MB_LOG_MODULE, "security: %s", why);
		rc = mb_frontdoor_create(&fo, &s->fd, err, err_len);
		memset(sec, 0, sizeof(sec));
	}
	if (rc < 0)
		goto fail;
	rc = build_udp(s, err, err_len);
	if (rc < 0)
		goto fail;
	rc = attach_pollers(s, err, err_len);
	if (rc < 0)
		goto fail;
	reactor_metrics(s);
	if (cfg->metrics[0] != '\0') {
		struct mb_http_opts ho = {
			.hostport = cfg->metrics,
			.metrics = s->metrics,
			.ready = ready,
			.live = live,
			.models = models_json,
			.ctx = s,
			.tls_cert = cfg->http_tls_cert,
			.tls_key = cfg->http_tls_key,
			.token_file = cfg->http_token_file,
			.max_connections = cfg->http_max_connections,
			.max_connections_per_ip = cfg->http_max_connections_per_ip,
			.timeout_ms = cfg->http_timeout_ms,
		};

		atomic_store(&s->main_turned_ns, mb_env_now_ns()); /* after the models' loading */
		rc = mb_http_start(&ho, &s->http, err, err_len);
		if (rc < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	service_destroy(&s);
	return rc < 0 ? rc : -EINVAL;
}

void
service_destroy(struct mb_service **sp)
{
	struct mb_service *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	mb_http_stop(&s->http);
	mb_udp_destroy(&s->udp);
	for (uint32_t i = 0; s->udp_limits != NULL && i < s->n_udp_limits; i++)
		mb_ratelimit_destroy(&s->udp_limits[i]);
	for (uint32_t i = 0; s->udp_limits_next != NULL && i < s->n_udp_limits; i++) {
		struct mb_ratelimit *n = atomic_exchange(&s->udp_limits_next[i], NULL);

		mb_ratelimit_destroy(&n);
	}
	free(s->udp_limits);
	free(s->udp_limits_next);
	free(s->udp_slots);
	mb_topo_destroy(&s->topo);
	mb_frontdoor_destroy(&s->fd);
	if (s->zctx != NULL)
		zmq_ctx_term(s->zctx);
	for (uint32_t i = 0; s->workers != NULL && i < s->n_workers; i++)
		mb_worker_destroy(&s->workers[i].w);
	free(s->workers);
	mb_batcher_destroy(&s->batcher);
	mb_admission_destroy(&s->admission);
	for (uint32_t i = 0; i < s->n_models; i++) {
		struct mb_model *m = &s->models[i];

		for (int d = 0; d < MB_DEVICES_MAX; d++)
			if ((m->devices & MB_DEVICE_BIT(d)) && m->desc->unload != NULL)
				m->desc->unload(m->states[d]);
		mb_plugin_close(&m->plugin); /* after unload: the code lives in the plugin */
		breakers_fini(m, MB_DEVICES_MAX);
		mb_ring_destroy(&m->queue);
	}
	mb_ratelimit_destroy(&s->limits);
	{
		struct mb_ratelimit *n = atomic_exchange(&s->limits_next, NULL);

		mb_ratelimit_destroy(&n);
	}
	mb_ring_destroy(&s->results);
	for (int d = 0; d < MB_DEVICES_MAX; d++)
		mb_device_destroy(&s->devs[d]);
	destroy_tree(s);
	for (uint32_t i = 0; i < s->n_reactors; i++)
		mb_reactor_destroy(&s->reactors[i].r);
	mb_metrics_destroy(&s->metrics);
	free(s);
	*sp = NULL;
}

uint32_t
service_reactors(const struct mb_service *s)
{
	return s->n_reactors;
}

void *
service_reactor_arg(struct mb_service *s, uint32_t i)
{
	return &s->reactors[i];
}

void
service_reactor_name(const struct mb_service *s, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "mb-%.12s", s->reactors[i].pt->name);
}

uint32_t
service_frontdoor_reactor(const struct mb_service *s)
{
	return s->fd_reactor;
}

void *
service_reactor_thread(void *arg)
{
	struct reactor_slot *rs = arg;
	const struct mb_placement_thread *pt = rs->pt;
	bool eal = (pt->stages & MB_STAGE_RX) != 0; /* the mbuf cache needs an lcore id */
	char pollers[256];
	int rc;

	if (pt->cpu >= 0 && rs->svc->topo != NULL) {
		rc = mb_topo_bind_thread(rs->svc->topo, pt->cpu);
		if (rc < 0)
			MB_LOG(WARNING, "polled thread %s: cannot bind to CPU %d: %s", pt->name,
			       pt->cpu, strerror(-rc));
	}
	if (eal && rte_thread_register() != 0) {
		MB_LOG(WARNING, "polled thread %s: rte_thread_register: %s (mbuf cache off)",
		       pt->name, rte_strerror(rte_errno));
		eal = false;
	}
	mb_reactor_pollers(rs->r, pollers, sizeof(pollers));
	MB_LOG(INFO, "polled thread %s on CPU %d: %s", pt->name, pt->cpu, pollers);
	atomic_store(&rs->turned_ns, mb_env_now_ns()); /* liveness counts from here */
	mb_reactor_run(rs->r);
	atomic_store(&rs->finished, true); /* done on purpose: not a stall */
	if (eal)
		rte_thread_unregister();
	MB_LOG(INFO, "polled thread %s done", pt->name);
	return NULL;
}

void *
service_worker_thread(void *arg)
{
	struct worker_slot *slot = arg;

	mb_worker_run(slot->w);
	return NULL;
}

uint32_t
service_workers(const struct mb_service *s)
{
	return s->n_workers;
}

uint32_t
service_watch(struct mb_service *s)
{
	uint64_t now = mb_env_now_ns();
	uint32_t n = s->n_workers, added = 0;
	char why[MB_PROTO_REASON_MAX];

	for (uint32_t i = 0; i < n; i++) {
		struct worker_slot *slot = &s->workers[i], *next;
		struct mb_model *m;

		if (slot->left ||
		    (m = mb_worker_abandon_if_hung(slot->w, now, why, sizeof(why))) == NULL)
			continue;
		slot->left = true;
		mb_metric_add(s->m_hung, 1);
		MB_LOG(ERR, "watchdog: %s", why);
		if (!atomic_load_explicit(&m->hung, memory_order_relaxed)) {
			snprintf(m->hung_reason, sizeof(m->hung_reason), "%s", why);
			atomic_store_explicit(&m->hung, true, memory_order_release);
			service_set_ready(s,
					  atomic_load(&s->ready)); /* the gauge follows /readyz */
		}
		if (s->n_workers == s->cap_workers) {
			MB_LOG(ERR, "watchdog: device %s: %d workers replaced already; no more",
			       slot->dev->name, MAX_REPLACEMENTS);
			continue;
		}
		next = &s->workers[s->n_workers];
		*next = *slot;
		next->left = false;
		next->index = slot->index + 1000; /* named apart from the one it replaces */
		if (mb_worker_create(&next->opts, &next->w) < 0) {
			MB_LOG(ERR, "watchdog: device %s: cannot create a replacement worker",
			       slot->dev->name);
			continue;
		}
		s->n_workers++;
		added++;
	}
	return added;
}

bool
service_worker_left(const struct mb_service *s, uint32_t i)
{
	return s->workers[i].left;
}

void *
service_worker_arg(struct mb_service *s, uint32_t i)
{
	return &s->workers[i];
}

void
service_worker_name(const struct mb_service *s, uint32_t i, char *buf, size_t len)
{
	const struct worker_slot *w = &s->workers[i];

	if (w->index >= 1000) /* a watchdog's replacement */
		snprintf(buf, len, "mb-%.6s-r%u", w->dev->name, w->index % 1000);
	else
		snprintf(buf, len, "mb-%.6s-w%u", w->dev->name, w->index % 1000);
}

uint32_t
service_udp_queues(const struct mb_service *s)
{
	return s->udp != NULL ? mb_udp_queues(s->udp) : 0;
}

void
service_set_ready(struct mb_service *s, bool r)
{
	char why[MB_PROTO_REASON_MAX + 64];

	atomic_store(&s->ready, r);
	r = r && ready(s, why, sizeof(why)); /* as /readyz says */
	mb_metric_set(s->m_ready, r ? 1 : 0);
	if (!r && atomic_load(&s->ready))
		MB_LOG(WARNING, "not ready (/readyz 503): %s", why);
}

void
service_drain(struct mb_service *s)
{
	mb_metric_set(s->m_draining, 1);
	mb_metric_set(s->m_ready, 0);
	mb_cancel_cancel(s->drain);
}

void
service_abort(struct mb_service *s)
{
	mb_cancel_cancel(s->drain);
	mb_cancel_cancel(s->abort);
}

uint32_t
service_inflight(const struct mb_service *s)
{
	return mb_frontdoor_inflight(s->fd) + (s->udp != NULL ? mb_udp_outstanding(s->udp) : 0);
}

void
service_describe(const struct mb_service *s, char *buf, size_t len)
{
	char udp[160] = "";

	if (s->udp != NULL)
		snprintf(udp, sizeof(udp), ", UDP port %u on %u DPDK port%s (%u rx queue%s)",
			 s->cfg->udp_port, s->cfg->n_udp_ports, s->cfg->n_udp_ports == 1 ? "" : "s",
			 mb_udp_queues(s->udp), mb_udp_queues(s->udp) == 1 ? "" : "s");
	char devs[512] = "";
	size_t off = 0;

	for (uint32_t k = 0; k < s->n_devs && off < sizeof(devs); k++) {
		const struct mb_device *d = s->dev_list[k];
		uint32_t w = device_workers(s, d->index);

		off += (size_t)snprintf(devs + off, sizeof(devs) - off,
					"%sdevice %s: %" PRIu64 " units, %u worker%s",
					k ? "; " : "", d->name, d->capacity, w, w == 1 ? "" : "s");
	}
	snprintf(buf, len, "ROUTER %s, PUB %s%s, metrics %s%s%s; models: %s; %s",
		 mb_frontdoor_endpoint(s->fd, 0), mb_frontdoor_endpoint(s->fd, 1), udp,
		 s->http ? (s->cfg->http_tls_cert[0] ? "https://" : "http://") : "off",
		 s->http ? s->cfg->metrics : "", s->http ? "/metrics" : "",
		 s->served[0] ? s->served : "(none)", devs);
}

/* ---- /v2/models: metadata and readiness (net/mb_http.h's models callback) ---- */

/* What a built-in model takes and gives, as the metadata says it (mb_models.h). */
static const struct io_facts {
	const char *model;
	uint32_t sample_rate; /* audio; 0: not audio */
	double min_seconds, max_seconds;
	const char *input_shape, *output_type, *output_shape;
} io_facts[] = {
	{"identity", 0, 0, 0, "any valid request", "FP32", "[1 x 1] (the payload's byte count)"},
	{"logmel", 16000, 0.025, MB_LOGMEL_MAX_SECONDS, "[samples] mono", "FP32",
	 "[samples/160 x 80]"},
	{"whisper", 16000, 0.025, MB_WHISPER_MAX_SECONDS, "[samples] mono", "FP32",
	 "[1500*windows x d] (d: the checkpoint's width)"},
	{"clap", MB_CLAP_SAMPLE_RATE, 0.025, MB_CLAP_MAX_SECONDS, "[samples] mono", "FP32",
	 "[1 x 512]"},
	{"videomae", 0, 0, 0, "[16*windows x 224 x 224 x 3] RGB24 frames", "TOPK",
	 "[k] (class, score), mean over windows"},
};

static const char *
media_name(unsigned int m)
{
	switch (m) {
	case MB_MEDIA_PCM_S16LE:
		return "pcm_s16le";
	case MB_MEDIA_PCM_F32LE:
		return "pcm_f32le";
	case MB_MEDIA_RGB24:
		return "rgb24";
	case MB_MEDIA_F32:
		return "f32";
	}
	return NULL;
}

static const char *const join_names[] = {"none", "concat_rows", "mean_l2", "mean_softmax_topk"};
static const char *const breaker_names[] = {"closed", "open", "half_open"};

/* Whether @p m can run a request now (model_ready()'s rule), else why in @p why. Reads only
 * what is fixed after start, the hung flag (its reason is written before it) and the breakers'
 * atomic state: safe on the HTTP thread. */
static bool
model_why(const struct mb_model *m, const char **state, char *why, size_t len)
{
	if (!m->enabled) {
		*state = m->off_by_config ? "disabled" : "failed";
		snprintf(why, len, "%s", m->disabled_reason);
		return false;
	}
	if (atomic_load_explicit(&m->hung, memory_order_acquire)) {
		*state = "hung";
		snprintf(why, len, "%s", m->hung_reason);
		return false;
	}
	if (model_ready((void *)m) == 0) {
		*state = "breaker_open";
		snprintf(why, len,
			 "its circuit breaker is open on every device it runs on (recent runs "
			 "failed; it probes again after the cool-down)");
		return false;
	}
	*state = "ready";
	why[0] = '\0';
	return true;
}

/* The model named @p name, or NULL. */
static const struct mb_model *
model_named(const struct mb_service *s, const char *name)
{
	for (uint32_t i = 0; i < s->n_models; i++)
		if (strcmp(s->models[i].desc->name, name) == 0)
			return &s->models[i];
	return NULL;
}

static json_t *
model_brief(const struct mb_model *m)
{
	char why[MB_PROTO_REASON_MAX];
	const char *state;
	bool ok = model_why(m, &state, why, sizeof(why));
	json_t *o =
		json_pack("{s:s, s:b, s:s}", "name", m->desc->name, "ready", ok, "state", state);

	if (o != NULL && !ok)
		json_object_set_new(o, "reason", json_string(why));
	return o;
}

static json_t *
model_inputs(const struct mb_model *m, const struct io_facts *f)
{
	json_t *in = json_object(), *media = json_array();

	for (unsigned int k = 1; k < 32; k++)
		if ((m->desc->media_mask & MB_MEDIA_MASK(k)) && media_name(k) != NULL)
			json_array_append_new(media, json_string(media_name(k)));
	json_object_set_new(in, "name", json_string("media"));
	json_object_set_new(in, "media", media);
	if (f != NULL) {
		json_object_set_new(in, "shape", json_string(f->input_shape));
		if (f->sample_rate != 0) {
			json_object_set_new(in, "sample_rate", json_integer(f->sample_rate));
			json_object_set_new(in, "channels", json_integer(1));
			json_object_set_new(in, "min_seconds", json_real(f->min_seconds));
		}
	}
	if (m->window != 0) {
		bool audio = f != NULL && f->sample_rate != 0;
		json_t *w = json_pack("{s:I, s:s, s:I, s:s}", "length", (json_int_t)m->window,
				      "unit", audio ? "samples" : "frames", "max_windows",
				      (json_int_t)m->max_windows, "join",
				      m->join < 4 ? join_names[m->join] : "?");

		if (audio) {
			json_object_set_new(w, "seconds",
					    json_real((double)m->window / f->sample_rate));
			json_object_set_new(
				in, "max_seconds",
				json_real((double)m->window * m->max_windows / f->sample_rate));
		}
		if (m->join_topk != 0)
			json_object_set_new(w, "topk", json_integer(m->join_topk));
		json_object_set_new(in, "window", w);
	} else if (f != NULL && f->sample_rate != 0) {
		json_object_set_new(in, "max_seconds", json_real(f->max_seconds));
	}
	return json_pack("[o]", in);
}

static json_t *
model_meta(const struct mb_service *s, const struct mb_model *m)
{
	const struct mb_model_config *c = mb_config_model(s->cfg, m->desc->name);
	const struct io_facts *f = NULL;
	json_t *o = model_brief(m), *devs = json_array();
	char path[PATH_MAX + 64];
	bool net = m->plugin == NULL && mb_builtin_is_net(m->desc->name), gpu = false;
	bool own = c != NULL && c->weights[0] != '\0', weights;
	enum mb_net_precision p = MB_NET_PRECISION_DEFAULT;

	for (size_t i = 0; m->plugin == NULL && i < sizeof(io_facts) / sizeof(io_facts[0]); i++)
		if (strcmp(io_facts[i].model, m->desc->name) == 0)
			f = &io_facts[i];
	json_object_set_new(o, "platform", json_string("mediabatch"));
	json_object_set_new(o, "versions", json_pack("[s]", "1"));
	json_object_set_new(o, "summary", json_string(m->desc->summary ? m->desc->summary : ""));
	/* a plugin that did not load has no plugin handle, but is not built in either */
	json_object_set_new(o, "builtin",
			    json_boolean(m->plugin == NULL && m->desc != &m->failed_desc));
	json_object_set_new(o, "inputs", model_inputs(m, f));
	json_object_set_new(o, "outputs",
			    json_pack("[{s:s, s:s, s:s}]", "name", "result", "datatype",
				      f != NULL ? f->output_type : "FP32", "shape",
				      f != NULL ? f->output_shape : "see the plugin"));
	json_object_set_new(o, "limits",
			    json_pack("{s:I, s:I, s:I, s:I}", "max_payload_bytes",
				      (json_int_t)s->cfg->max_payload_bytes, "queue_limit",
				      (json_int_t)atomic_load(&m->queue_limit),
				      "default_timeout_ms",
				      (json_int_t)atomic_load(&m->default_timeout_ms),
				      "run_timeout_ms", (json_int_t)m->run_timeout_ms));
	json_object_set_new(o, "batching",
			    json_pack("{s:I, s:I}", "max_batch",
				      (json_int_t)atomic_load(&m->max_batch), "max_delay_us",
				      (json_int_t)atomic_load(&m->max_delay_us)));
	json_object_set_new(o, "units",
			    json_pack("{s:I, s:f, s:I}", "base_units", (json_int_t)m->base_units,
				      "item_units_per_second", m->item_units_per_second,
				      "item_units_window", (json_int_t)m->item_units_window));
	for (int d = 0; d < MB_DEVICES_MAX; d++) {
		if (!(m->devices & MB_DEVICE_BIT(d)))
			continue;
		gpu |= d != 0;
		json_array_append_new(
			devs,
			json_pack("{s:s, s:s}", "name", s->plan[d].name, "breaker",
				  m->breakers != NULL
					  ? breaker_names[mb_breaker_state(&m->breakers[d]) % 3]
					  : "none"));
	}
	json_object_set_new(o, "devices", devs);
	/* the CPU runs F32 always; a network's GEMMs on CUDA read models[].precision */
	if (net && c != NULL && c->precision >= 0)
		p = (enum mb_net_precision)c->precision;
	json_object_set_new(o, "precision",
			    json_string(net && gpu ? mb_net_precision_name(p) : "f32"));
	/* the file load_model() chose */
	weights_path(s->cfg, m->desc->name, path, sizeof(path));
	weights = m->plugin == NULL ? mb_builtin_has_weights(m->desc->name) || own
				    : own || access(path, R_OK) == 0;
	json_object_set_new(o, "weights",
			    weights && m->desc != &m->failed_desc ? json_string(path)
								  : json_null());
	return o;
}

/* net/mb_http.h's mb_http_models_fn: on the HTTP thread (see model_why() for what it reads). */
static int
models_json(void *ctx, const char *name, bool ready, bool may_list, char **body, size_t *len,
	    int *status)
{
	const struct mb_service *s = ctx;
	const struct mb_model *m = NULL;
	json_t *o = NULL, *list;
	char why[MB_PROTO_REASON_MAX];
	const char *state;

	*status = 200;
	if (name != NULL && (m = model_named(s, name)) == NULL && !may_list) {
		char msg[MB_HTTP_MODEL_NAME_MAX + 160];

		/* a probe without the token: the models served are metadata, not said */
		snprintf(msg, sizeof(msg),
			 "model '%s' is not served here (the models served are listed with the "
			 "bearer token, at /v2/models)",
			 name);
		o = json_pack("{s:s}", "error", msg);
		*status = 404;
	} else if (name != NULL && m == NULL) {
		char msg[MB_HTTP_MODEL_NAME_MAX + 320];

		snprintf(msg, sizeof(msg),
			 "model '%s' is not served here; served: %s (\"models\" lists every "
			 "model the daemon knows, disabled or failed ones too)",
			 name, s->served[0] ? s->served : "(none)");
		list = json_array();
		for (uint32_t i = 0; i < s->n_models; i++)
			json_array_append_new(list, json_string(s->models[i].desc->name));
		o = json_pack("{s:s, s:o}", "error", msg, "models", list);
		*status = 404;
	} else if (m != NULL && ready) {
		bool ok = model_why(m, &state, why, sizeof(why));

		o = json_pack("{s:s, s:b, s:s}", "name", name, "ready", ok, "state", state);
		if (o != NULL && !ok)
			json_object_set_new(o, "reason", json_string(why));
		*status = ok ? 200 : 503;
	} else if (m != NULL) {
		o = model_meta(s, m);
	} else {
		list = json_array();
		for (uint32_t i = 0; i < s->n_models; i++)
			json_array_append_new(list, model_brief(&s->models[i]));
		o = json_pack("{s:o}", "models", list);
	}
	*body = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
						  JSON_REAL_PRECISION(10))
			  : NULL;
	json_decref(o);
	if (*body == NULL)
		return -ENOMEM;
	*len = strlen(*body);
	return 0;
}
