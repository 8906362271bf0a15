/*
 * net.c: the one lifecycle of the built-in networks (see net_internal.h): load from a
 * published checkpoint (its reading is the layout's, layout.c), per-worker scratch, the run
 * loop (CPU, or a def's CUDA hooks), unload, and the GEMM precision each network loads with
 * on CUDA. What mediabatch-weights writes and checks is layout.c's.
 */
#include "net_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_build_config.h"
#include "mb_models.h"
#include "nn_internal.h"

#define MB_LOG_MODULE "models"
#include "mb_log.h"

/* ---- precision (main thread: set before load, read by load) ---- */

#define MAX_DEFS 16

static enum mb_net_precision g_prec[MAX_DEFS]; /* by index in mb_net_defs; 0 = unset */
static bool g_prec_set[MAX_DEFS];

static int
def_index(const struct mb_net_def *def)
{
	for (int i = 0; i < MAX_DEFS && mb_net_defs[i] != NULL; i++)
		if (mb_net_defs[i] == def)
			return i;
	return -1;
}

const char *
mb_net_precision_name(enum mb_net_precision prec)
{
	switch (prec) {
	case MB_NET_F32:
		return "f32";
	case MB_NET_F16:
		return "f16";
	case MB_NET_BF16:
		return "bf16";
	}
	return "?";
}

int
mb_builtin_net_set_precision(const char *model, enum mb_net_precision prec)
{
	int i = def_index(mb_net_def_of(model));

	if (i < 0)
		return -ENOENT;
	if (prec != MB_NET_F32 && prec != MB_NET_F16 && prec != MB_NET_BF16)
		return -EINVAL;
	g_prec[i] = prec;
	g_prec_set[i] = true;
	return 0;
}

static enum mb_net_precision
precision_of(const struct mb_net_def *def)
{
	int i = def_index(def);

	return i >= 0 && g_prec_set[i] ? g_prec[i] : MB_NET_PRECISION_DEFAULT;
}

/* ---- load, unload ---- */

void
mb_net_unload(void *state)
{
	struct mb_net *net = state;

	if (net == NULL)
		return;
	if (net->gpu != NULL && net->def->gpu_unload != NULL)
		net->def->gpu_unload(net);
	if (net->def->fini != NULL)
		net->def->fini(net);
	if (net->w != NULL)
		for (uint32_t i = 0; i < net->specs.n; i++)
			free(net->w[i]);
	free(net->w);
	mb_net_specs_free(&net->specs);
	free(net->dims);
	free(net);
}

static int
load_ckpt(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len)
{
	int rc = mb_net_layout_read(net->def->layout, ck, &net->prefix, net->dims, &net->specs,
				    &net->w, reason, reason_len);

	if (rc == 0 && net->def->init != NULL)
		return net->def->init(net, ck, reason, reason_len);
	return rc;
}

/* Upload @p net to CUDA device @p device, then free the host tensors (the device has them). */
static int
gpu_load(struct mb_net *net, int device, char *reason, size_t reason_len)
{
	int rc = net->def->gpu_load(net, device, net->prec, reason, reason_len);

	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < net->specs.n; i++) {
		free(net->w[i]);
		net->w[i] = NULL;
	}
	MB_LOG(INFO, "%s on CUDA device %d: GEMMs in %s (F32 accumulation; models[].precision)",
	       net->def->name, device, mb_net_precision_name(net->prec));
	return 0;
}

int
mb_net_load(const struct mb_net_def *def, const struct mb_model_load_args *args, void **state,
	    char *reason, size_t reason_len)
{
	struct mb_ckpt *ck = NULL;
	struct mb_net *net;
	int rc;

	if (args->weights_path == NULL) {
		snprintf(reason, reason_len, "no weights (models[].weights)");
		return -EINVAL;
	}
	if (args->device >= 0 && !MB_HAVE_CUDA) {
		snprintf(reason, reason_len,
			 "%s on CUDA device %d: this build has no CUDA (meson -Dcuda=enabled needs "
			 "nvcc, cuBLAS, cuDNN and cuFFT)",
			 def->name, args->device);
		return -ENOTSUP;
	}
	if (args->device >= 0 && def->gpu_load == NULL) {
		snprintf(reason, reason_len,
			 "%s runs on the CPU only in this build (its CUDA path is not written yet)",
			 def->name);
		return -ENOTSUP;
	}
	net = calloc(1, sizeof(*net));
	if (net == NULL || (net->dims = calloc(1, def->layout->dims_size)) == NULL) {
		free(net);
		return -ENOMEM;
	}
	net->def = def;
	net->device = args->device;
	net->prec = args->device >= 0 ? precision_of(def) : MB_NET_F32;
	rc = mb_ckpt_open(args->weights_path, &ck, reason, reason_len);
	if (rc == 0)
		rc = load_ckpt(net, ck, reason, reason_len);
	mb_ckpt_close(&ck);
	if (rc == 0 && args->device >= 0)
		rc = gpu_load(net, args->device, reason, reason_len);
	if (rc < 0) {
		mb_net_unload(net);
		return rc;
	}
	mb_nn_init();
	*state = net;
	return 0;
}

/* One worker thread's: scratch that grows to the largest batch it ran, or the CUDA side's. */
struct net_worker {
	float *scratch;
	size_t cap; /* floats */
	struct mb_model_item **run;
	uint32_t run_cap;
	void *gpu; /* def->gpu_worker_init's on a CUDA device */
};

int
mb_net_worker_init(void *state, int device, void **worker)
{
	const struct mb_net *net = state;
	struct net_worker *w;
	char reason[256] = "";
	int rc;

	if (net == NULL || device != net->device)
		return -EINVAL; /* a state is loaded for one device */
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	if (device >= 0 &&
	    (rc = net->def->gpu_worker_init(net, &w->gpu, reason, sizeof(reason))) < 0) {
		MB_LOG(ERR, "%s: worker set-up on CUDA device %d failed: %s", net->def->name,
		       device, reason);
		free(w);
		return rc;
	}
	*worker = w;
	return 0;
}

void
mb_net_worker_fini(void *state, void *worker)
{
	const struct mb_net *net = state;
	struct net_worker *w = worker;

	if (w == NULL)
		return;
	if (w->gpu != NULL)
		net->def->gpu_worker_fini(net, w->gpu);
	free(w->scratch);
	free(w->run);
	free(w);
}

static int
grow(struct net_worker *w, size_t floats, uint32_t items)
{
	if (items > w->run_cap) {
		struct mb_model_item **run = realloc(w->run, sizeof(*run) * items);

		if (run == NULL)
			return -ENOMEM;
		w->run = run;
		w->run_cap = items;
	}
	if (floats > w->cap) {
		size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
		float *s = aligned_alloc(64, bytes);

		if (s == NULL)
			return -ENOMEM;
		free(w->scratch);
		w->scratch = s;
		w->cap = floats;
	}
	return 0;
}

int
mb_net_run(void *state, struct mb_model_batch *batch)
{
	const struct mb_net *net = state;
	const struct mb_net_def *def = net->def;
	struct net_worker *w = batch->worker;
	uint32_t n = 0;

	if (w == NULL || batch->device != net->device || (net->device >= 0 && w->gpu == NULL))
		return -EINVAL;
	if (grow(w, 0, batch->n_items) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint16_t rows = 0, cols = 0, type = 0;
		uint32_t bytes = def->shape(net, it, &rows, &cols, &type);

		if (bytes == 0) { /* check() ran; defend anyway */
			mb_model_item_fail(it, "the input does not fit the model");
			continue;
		}
		it->result = batch->alloc_result(batch, bytes);
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		it->result_len = bytes;
		it->result_type = type;
		it->rows = rows;
		it->cols = cols;
		w->run[n++] = it;
	}
	if (n == 0)
		return 0;
	if (net->device >= 0) {
		char reason[256] = "";
		int rc =
			def->gpu_run(net, w->gpu, w->run, n, batch->stream, reason, sizeof(reason));

		if (rc < 0)
			MB_LOG(ERR, "%s: a batch of %u failed on CUDA device %d: %s", def->name, n,
			       net->device, reason);
		return rc < 0 ? -EIO : 0;
	}
	if (grow(w, def->cpu_scratch(net, n), n) < 0)
		return -ENOMEM;
	return def->cpu_run(net, w->scratch, w->run, n);
}

int
mb_net_layout(const struct mb_net_def *def, const char *size, struct mb_net_specs *specs,
	      char *config_json, size_t config_len, char *err, size_t err_len)
{
	return mb_net_layout_preset(def->layout, size, specs, config_json, config_len, err,
				    err_len);
}

const struct mb_net_def *
mb_net_def_of(const char *name)
{
	for (const struct mb_net_def *const *d = mb_net_defs; *d != NULL; d++)
		if (strcmp((*d)->name, name) == 0)
			return *d;
	return NULL;
}

int
mb_builtin_net_gpu_bytes(const char *model, const void *state, uint64_t *worker_bytes,
			 uint64_t *batch_bytes, uint64_t *item_bytes)
{
	const struct mb_net_def *def = mb_net_def_of(model);
	const struct mb_net *net = state;

	*worker_bytes = 0;
	*batch_bytes = 0;
	*item_bytes = 0;
	if (def == NULL || net == NULL || net->def != def || net->device < 0 || net->gpu == NULL ||
	    def->gpu_bytes == NULL)
		return -ENOENT;
	return def->gpu_bytes(net, worker_bytes, batch_bytes, item_bytes);
}
