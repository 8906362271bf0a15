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
 *   with a reason; a model that fails to load is disabled and the others keep serving. A
 *   failure without a reason is reported as "load() returned -5 (Input/output error)
 *   without a reason": give one.
 *   `mediabatchd --check`, and a SIGHUP reload that names another weights file or plugin for
 *   the model, also load it once more on the CPU (device -1) and unload it at once, on the
 *   main thread, to see that a start would load it: at a reload that happens while the
 *   serving states run on workers, so load() and unload() must keep to their own state (no
 *   process-wide singletons they tear down).
 * - worker_init()/worker_fini(): optional, once per worker thread on its device, for
 *   scratch memory (FFT plans' buffers, streams). Called on that worker's thread.
 * - run(): on a worker thread with a batch of 1..max_batch items. Fills every item's result
 *   or marks the item failed (mb_model_item_fail(), with a reason for the client); returning
 *   non-zero (-errno) fails the whole batch: each item is answered MODEL_ERROR "<model>: the
 *   batch failed on device cpu0 (run() returned -5: Input/output error)", logged, and counted
 *   by the model's circuit breaker. Several workers may run the same model at once on
 *   different batches: run() must not modify the shared state.
 * - unload(): once per device at shutdown, after every worker_fini().
 *
 * Result memory: run() allocates each item's result with batch->alloc_result() (from any
 * thread of its own, during run()); the service owns what an item's result points to and
 * frees it after sending, or at once when the item is not answered OK (failed, its result
 * refused, the batch failed). An allocation run() returns in no item stays run()'s, to
 * release with free().
 *
 * What the service checks of each item run() did not fail, before answering it OK
 * (docs/protocol.md, "Response header": what a receiver refuses is never sent). Any other
 * item is answered MODEL_ERROR with what was wrong ("<model>: the model returned an F32
 * result of 2 x 2 (16 bytes) with result_len 20") and logged, its result freed, and the
 * batch counts as a failed batch toward the model's circuit breaker (items run() failed
 * with mb_model_item_fail() do not count):
 * - result_type is MB_RESULT_F32 (result_len == rows x cols x 4), MB_RESULT_TOPK (cols == 2,
 *   result_len == rows x 8) or MB_RESULT_TEXT (result_len bytes of UTF-8; rows and cols are
 *   sent as set). MB_RESULT_NONE is never an answer: an item left as run() got it (neither
 *   filled nor failed) is answered "the model returned no result for this item"; a result
 *   with nothing in it is an F32 of 0 rows.
 * - result is a pointer alloc_result() returned in this run(), not returned for another item
 *   as well, of at least result_len bytes; it may be NULL only when result_len is 0. (A
 *   pointer from elsewhere is refused and left to its owner: not freed.)
 * - Limits are those of the fields: rows and cols up to 65535, result_len up to 4 GiB - 1.
 * An item failed with an empty reason is answered "<model>: the model failed this item
 * without a reason".
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
	char reason[MB_PROTO_REASON_MAX]; /**< NUL-terminated; empty: a default is sent */
	uint16_t result_type; /**< enum mb_result_type: F32, TOPK or TEXT (see the top) */
	uint16_t rows, cols;  /**< F32: its shape; TOPK: k and 2 */
	void *result;	      /**< from alloc_result(); owned by the service afterwards */
	uint32_t result_len;  /**< bytes of result to send, at most what alloc_result() gave */
};

/** A batch handed to run(). */
struct mb_model_batch {
	struct mb_model_item *items;
	uint32_t n_items;
	int device;   /**< -1 CPU, else CUDA ordinal */
	void *stream; /**< cudaStream_t on a GPU, NULL on the CPU */
	void *worker; /**< what worker_init() returned for this thread, or NULL */
	/** Allocate @p bytes for one item's result (NULL if out of memory); the service records
	 * the size, and result_len may not exceed it. */
	void *(*alloc_result)(struct mb_model_batch *batch, size_t bytes);
	void *alloc_ctx; /**< private to the service */
};

struct mb_model_desc {
	uint32_t abi_version; /**< MB_MODEL_ABI_VERSION */
	/** 1..16 characters of printable ASCII without spaces (0x21-0x7e): the protocol's model
	 * field */
	const char *name;
	const char *summary; /**< one line for logs and --help */
	/** MB_MEDIA_MASK(...) of accepted media (enum mb_media in protocol.h), not 0; or
	 * MB_MEDIA_MASK_ANY */
	uint32_t media_mask;
	/**
	 * MB_MODEL_ON_CPU and/or MB_MODEL_ON_CUDA, not 0. With MB_MODEL_ON_CUDA, load() runs once
	 * per GPU in use (args->device: its ordinal) and run() gets that GPU's stream; with
	 * MB_MODEL_ON_CPU too, cpu0 serves it where no GPU took it. MB_MODEL_ON_CUDA alone: served
	 * on GPUs only (the model is disabled where none is in use); a build without CUDA refuses
	 * it.
	 */
	uint32_t devices;

	/*
	 * The cost and batching fields below must each lie in the range the config allows for
	 * the models[] key of the same name: max_batch 1..1024, max_delay_us 0..10000000,
	 * queue_limit 1..1000000, default_timeout_ms 1..3600000, base_units 0..1000000,
	 * item_units_per_second finite and 0..1000000. A descriptor outside them is refused
	 * when the plugin is opened ("plugin failed to load: ...: FIELD V is out of range
	 * LO..HI"), and only that model is disabled.
	 */

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
