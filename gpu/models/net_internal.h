/**
 * @file
 * Private to gpu/models: one lifecycle for the built-in networks (whisper, videomae, clap).
 *
 * A network is described by a struct mb_net_def: its layout (struct mb_net_layout,
 * layout_internal.h: its published sizes, how it reads its sizes from a checkpoint, the
 * tensors it needs for those sizes; the mb_layout library, which tools link without the
 * rest), the shape of one item's result, and its CPU forward pass. net.c does the rest once
 * for all of them, behind the model.h functions:
 *
 *   load       open the checkpoint (mb_ckpt.h: a file, a sharded index or a directory, with
 *              config.json), pick the prefix the checkpoint uses, read the sizes
 *              (layout->dims_from), list the tensors (layout->specs), bind them as F32 (all
 *              three mb_net_layout_read()), run def->init for what else the network keeps (a
 *              mel filterbank, a position table, labels); on a CUDA device, upload it
 *              (def->gpu_load, at the precision mb_builtin_net_set_precision() last gave) and
 *              free the host copy of the tensors (net->w[i] NULL: the device has its own);
 *   worker     per worker thread: on the CPU, scratch that grows to the largest batch seen
 *              (the only allocation after start-up happens when a larger batch first
 *              arrives); on a CUDA device, def->gpu_worker_init's: what does not depend on
 *              the batch (cuBLAS workspace, FFT plan), while each run allocates its batch's
 *              device memory for exactly its items and frees it at its end, in the amounts
 *              def->gpu_bytes reports (mb_builtin_net_gpu_bytes(): the service's device
 *              units);
 *   run        every item's result shape (def->shape: the one place it is computed, for
 *              both devices), its result buffer (batch->alloc_result), then def->cpu_run
 *              or def->gpu_run on the items that can run: a model's CPU and CUDA paths
 *              differ only in where the arithmetic runs;
 *   unload     in reverse.
 *
 * A def without gpu_load runs on the CPU only: loading it on a CUDA device is refused with
 * the reason. In a build without CUDA every def is such a one.
 *
 * What `mediabatch-weights` writes and checks is the layout's alone (layout_internal.h,
 * mb_layout.h).
 *
 * Threads: as model.h. A struct mb_net is read-only after load.
 */
#ifndef MB_NET_INTERNAL_H
#define MB_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/model.h"

#include "layout_internal.h"
#include "mb_ckpt.h"
#include "mb_models.h"
#include "mb_weights.h"

struct mb_net;

struct mb_net_def {
	/** What its checkpoints look like (the mb_layout library's: layout_internal.h). */
	const struct mb_net_layout *layout;
	/** The layout's name and sizes, here too for whoever holds a def (the tests). */
	const char *name;
	const char *const *sizes;

	/**
	 * Optional: what else a loaded net keeps (filterbank, tables, labels from @p ck), in
	 * net->extra. 0 or -errno with a reason. fini frees it (also after a failed init).
	 */
	int (*init)(struct mb_net *net, const struct mb_ckpt *ck, char *reason, size_t reason_len);
	void (*fini)(struct mb_net *net);

	/**
	 * One item's result: fills rows, cols and result type, returns its bytes; 0 when the
	 * item cannot run (it is failed with a reason by the caller).
	 */
	uint32_t (*shape)(const struct mb_net *net, const struct mb_model_item *it, uint16_t *rows,
			  uint16_t *cols, uint16_t *result_type);

	/** CPU scratch, in floats, to run @p n items at once. */
	size_t (*cpu_scratch)(const struct mb_net *net, uint32_t n);

	/**
	 * CPU forward of @p n items, each with its result allocated (shape() bytes) and its
	 * rows, cols and type set: writes item->result. @p scratch: cpu_scratch(n) floats,
	 * 64-byte aligned. 0, or -errno to fail the batch.
	 */
	int (*cpu_run)(const struct mb_net *net, float *scratch, struct mb_model_item *const *items,
		       uint32_t n);

	/* The CUDA side: all six, or none (CPU only). Threads as model.h's load/worker/run. */

	/**
	 * Upload what the net needs to CUDA device @p device (net->dims, net->w, net->extra
	 * read; net->gpu set), its GEMMs at @p prec. net.c frees the host tensors afterwards.
	 * 0, or -errno with a reason.
	 */
	int (*gpu_load)(struct mb_net *net, int device, enum mb_net_precision prec, char *reason,
			size_t reason_len);
	void (*gpu_unload)(struct mb_net *net);
	/** A worker thread's device context and buffers in @p worker. 0 or -errno + reason. */
	int (*gpu_worker_init)(const struct mb_net *net, void **worker, char *reason,
			       size_t reason_len);
	void (*gpu_worker_fini)(const struct mb_net *net, void *worker);
	/**
	 * Forward of @p n items on the device, each with its result allocated (shape() bytes)
	 * and its rows, cols and type set: writes item->result. @p stream: the worker's
	 * cudaStream_t (model.h's batch->stream), or NULL for the context's own. 0, or -errno
	 * with a reason to fail the batch.
	 */
	int (*gpu_run)(const struct mb_net *net, void *worker, struct mb_model_item *const *items,
		       uint32_t n, void *stream, char *reason, size_t reason_len);
	/**
	 * The device memory of @p net as loaded on its CUDA device, in bytes: @p worker held by
	 * each worker from gpu_worker_init to gpu_worker_fini; @p batch + n * @p item taken by a
	 * gpu_run of n items while it runs (the very formula its allocation is sized by, or an
	 * upper bound affine in n). Host arithmetic, any thread. 0 or -errno.
	 */
	int (*gpu_bytes)(const struct mb_net *net, uint64_t *worker, uint64_t *batch,
			 uint64_t *item);
};

/** A loaded network: what load() hands back as the model's state. */
struct mb_net {
	const struct mb_net_def *def;
	void *dims;		    /**< def->layout->dims_size bytes */
	struct mb_net_specs specs;  /**< canonical names */
	float **w;		    /**< F32, in specs order; NULLs on a CUDA device */
	const char *prefix;	    /**< the prefix the checkpoint used (static, the layout's) */
	void *extra;		    /**< def->init's */
	void *gpu;		    /**< def->gpu_load's on a CUDA device, else NULL */
	int device;		    /**< -1: the CPU */
	enum mb_net_precision prec; /**< the GEMMs' on a CUDA device (F32 on the CPU) */
};

/** model.h's functions for a network: each built-in net's descriptor points at these. */
int mb_net_load(const struct mb_net_def *def, const struct mb_model_load_args *args, void **state,
		char *reason, size_t reason_len);
void mb_net_unload(void *state);
int mb_net_worker_init(void *state, int device, void **worker);
void mb_net_worker_fini(void *state, void *worker);
int mb_net_run(void *state, struct mb_model_batch *batch);

/** mb_net_layout_preset() of def->layout (layout_internal.h), for whoever holds a def. */
int mb_net_layout(const struct mb_net_def *def, const char *size, struct mb_net_specs *specs,
		  char *config_json, size_t config_len, char *err, size_t err_len);

/** The built-in networks, NULL-terminated. */
extern const struct mb_net_def *const mb_net_defs[];

/** The def called @p name, or NULL. */
const struct mb_net_def *mb_net_def_of(const char *name);

#endif /* MB_NET_INTERNAL_H */
