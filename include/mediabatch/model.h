/**
 * @file
 * The model interface, ABI version 1: how mediabatch runs a model, built-in or plugin.
 *
 * A model is a descriptor (struct mb_model_desc): its name, the media it accepts, what a
 * batch costs in device units, batching defaults, and functions to check a request, load,
 * run a batch, and unload. The built-in models use this header; a plugin is a shared object
 * exporting `const struct mb_model_desc *mb_model_plugin(void)` whose descriptor carries
 * MB_MODEL_ABI_VERSION (a plugin built against another version is refused).
 *
 * Calls, and the threads they come from:
 * - check(): the service's front door, for every request, before it is queued. Must be
 *   cheap and pure. Return 0, or -1 with a reason for a BAD_REQUEST answer that says what
 *   was expected ("sample_rate: 44100, logmel needs 16000").
 * - load(): once per device at start-up, main thread. Returns 0 and a state, or -errno
 *   with a reason; a model that fails to load is disabled and the others keep serving.
 *   `mediabatchd --check`, and a SIGHUP reload that names another weights file or plugin for
 *   the model, also load it once more on the CPU (device -1) and unload it at once, on the
 *   main thread, to see that a start would load it: at a reload that happens while the
 *   serving states run on workers, so load() and unload() must keep to their own state (no
 *   process-wide singletons they tear down).
 * - worker_init()/worker_fini(): optional, once per worker thread on its device, for
 *   scratch memory (FFT plans' buffers, streams). Called on that worker's thread.
 * - run(): on a worker thread with a batch of 1..max_batch items. Fills every item's result
 *   or marks the item failed; returning non-zero fails the whole batch (MODEL_ERROR).
 *   Several workers may run the same model at once on different batches: run() must not
 *   modify the shared state.
 * - unload(): once per device at shutdown, after every worker_fini().
 *
 * Result memory: run() allocates each item's result with batch->alloc_result(); the service
 * owns and frees it after sending.
 */
#ifndef MEDIABATCH_MODEL_H
#define MEDIABATCH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_MODEL_ABI_VERSION 1

/** Media a model accepts: a mask of (1 << enum mb_media). */
#define MB_MEDIA_MASK(m) (1u << (m))
#define MB_MEDIA_MASK_ANY 0xffffffffu

/** Devices a model can run on. */
#define MB_MODEL_ON_CPU 0x1u
#define MB_MODEL_ON_CUDA 0x2u

/** Where a load happens. */
struct mb_model_load_args {
	int device;		  /**< -1: the CPU device; >= 0: CUDA device ordinal */
	const char *weights_path; /**< from the config, or NULL (built-in default) */
	int numa_node;		  /**< memory placement hint (OS index), -1 for any */
};

/** One request of a batch, as the model sees it. */
struct mb_model_item {
	/* input (read-only for the model) */
	const struct mb_request_hdr *hdr; /**< media, shape, sample rate */
	const void *payload; /**< no alignment is promised: memcpy multi-byte values out */
	uint32_t payload_len;
	/* output (written by run) */
	int failed; /**< set to 1 (with a reason) if this item could not run */
	char reason[MB_PROTO_REASON_MAX];
	uint16_t result_type; /**< enum mb_result_type */
	uint16_t rows, cols;
	void *result; /**< from alloc_result(); owned by the service afterwards */
	uint32_t result_len;
};

/** A batch handed to run(). */
struct mb_model_batch {
	struct mb_model_item *items;
	uint32_t n_items;
	int device;   /**< -1 CPU, else CUDA ordinal */
	void *stream; /**< cudaStream_t on a GPU, NULL on the CPU */
	void *worker; /**< what worker_init() returned for this thread, or NULL */
	/** Allocate @p bytes for one item's result (NULL if out of memory). */
	void *(*alloc_result)(struct mb_model_batch *batch, size_t bytes);
	void *alloc_ctx; /**< private to the service */
};

struct mb_model_desc {
	uint32_t abi_version; /**< MB_MODEL_ABI_VERSION */
	const char *name;     /**< 1..16 characters, the protocol's model field */
	const char *summary;  /**< one line for logs and --help */
	uint32_t media_mask;  /**< MB_MEDIA_MASK(...) of accepted media */
	uint32_t devices;     /**< MB_MODEL_ON_CPU | MB_MODEL_ON_CUDA */

	/* cost in device units: base_units + per item ceil(item_units_per_second x seconds)
	 * for audio, ceil(item_units_per_second x frames / 16) for video; an F32 tensor item
	 * has no duration, so it costs nothing beyond base_units (size base_units for the
	 * largest batch of tensors the model accepts) */
	uint32_t base_units;
	double item_units_per_second;

	/* batching defaults (the config may override them) */
	uint32_t max_batch;
	uint32_t max_delay_us;
	uint32_t queue_limit;
	uint32_t default_timeout_ms;

	int (*check)(const struct mb_request_hdr *hdr, char *reason, size_t reason_len);
	int (*load)(const struct mb_model_load_args *args, void **state, char *reason,
		    size_t reason_len);
	int (*worker_init)(void *state, int device, void **worker);
	void (*worker_fini)(void *state, void *worker);
	int (*run)(void *state, struct mb_model_batch *batch);
	void (*unload)(void *state);
};

/** The symbol a plugin exports. */
typedef const struct mb_model_desc *(*mb_model_plugin_fn)(void);
#define MB_MODEL_PLUGIN_SYMBOL "mb_model_plugin"

/**
 * What a plugin defines (declared here so that the compiler checks a plugin's definition):
 * its descriptor, constant for the life of the loaded object. mediabatch calls it once,
 * right after dlopen(), and reads abi_version before anything else.
 */
const struct mb_model_desc *mb_model_plugin(void);

/** Helper for run(): fail one item with a reason. */
static inline void
mb_model_item_fail(struct mb_model_item *item, const char *reason)
{
	size_t i = 0;

	item->failed = 1;
	for (; reason[i] != '\0' && i + 1 < sizeof(item->reason); i++)
		item->reason[i] = reason[i];
	item->reason[i] = '\0';
}

#ifdef __cplusplus
}
#endif

#endif /* MEDIABATCH_MODEL_H */
