/**
 * @file
 * A model as the service runs it (struct mb_model), shared by the batcher (batch/) and the
 * workers (gpu/).
 *
 * struct mb_model is a model as the service runs it: its descriptor (mediabatch/model.h),
 * the settings in effect (descriptor defaults overridden by the config), its queue from the
 * front door to the batcher, and the count of items waiting.
 *
 * A model is served on the devices in its mask (MB_DEVICE_BIT(index), index as the service
 * numbers its devices: mb_device.h), with one state from load() per device, and the batcher
 * routes each batch to one of them (mb_batcher.h).
 */
#ifndef MB_MODEL_RT_H
#define MB_MODEL_RT_H

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mediabatch/model.h"
#include "mediabatch/protocol.h"

#include "mb_request.h"

struct mb_breaker;
struct mb_metric;
struct mb_plugin;
struct mb_ring;

/** Most devices one service runs: the CPU device and up to MB_DEVICES_MAX - 1 GPUs. */
#define MB_DEVICES_MAX 17
/** A device's bit in a model's device mask. */
#define MB_DEVICE_BIT(index) (1u << (index))

/** How the windows of a split request are joined into its one answer (batch/mb_join.h). */
enum mb_join_kind {
	MB_JOIN_NONE = 0,	   /**< the model takes no windows: longer media is refused */
	MB_JOIN_CONCAT_ROWS,	   /**< F32 rows of the windows one after the other (whisper) */
	MB_JOIN_MEAN_L2,	   /**< mean of the windows' F32 vectors, L2-normalised (clap) */
	MB_JOIN_MEAN_SOFTMAX_TOPK, /**< mean of the windows' logits, softmax, top-k (videomae) */
};

/** A model as the service runs it. */
struct mb_model {
	uint32_t index;
	const struct mb_model_desc *desc;
	bool enabled;
	bool off_by_config; /**< disabled on purpose (enabled: false), not by a failure */
	char disabled_reason[MB_PROTO_REASON_MAX];
	/* settings in effect; these four change live (SIGHUP), so other threads load them
	 * atomically, once per decision */
	_Atomic uint32_t max_batch;
	_Atomic uint32_t max_delay_us;
	_Atomic uint32_t queue_limit;
	_Atomic uint32_t default_timeout_ms;
	uint32_t max_batch_start, queue_limit_start; /* the live values' ceilings */
	uint32_t base_units;
	double item_units_per_second;
	/**
	 * > 0: every item costs this many units whatever its length (a network on a GPU: an item
	 * is one window, whose activations do not depend on how much of it the media fills).
	 */
	uint32_t item_units_window;
	/** Device memory each GPU worker keeps for this model (cuBLAS workspace, FFT plans):
	 * outside the units, taken off a GPU's capacity (0: none known). */
	uint64_t gpu_worker_bytes;
	/**
	 * The watchdog: a batch whose run() takes longer than this is presumed hung (0: never).
	 * Then the model is disabled: @c hung is set (after @c hung_reason), and its requests
	 * are answered UNAVAILABLE with that reason until the daemon restarts.
	 */
	uint32_t run_timeout_ms;
	atomic_bool hung;
	char hung_reason[MB_PROTO_REASON_MAX];
	/* where it is served: load() succeeded on these devices (unload() is owed on each) */
	uint32_t devices;	      /**< mask of MB_DEVICE_BIT(device index) */
	void *states[MB_DEVICES_MAX]; /**< desc->load()'s state, by device index */
	uint64_t capacity;	      /**< the most units one of its devices has */
	int numa_node;		      /**< where its queue lives (MB_NUMA_ANY: anywhere) */
	struct mb_plugin *plugin;     /**< the plugin that serves it, or NULL (built-in) */
	/** Its weights' and plugin's files as they were when it was loaded (the daemon's
	 * service.c: a reload loads it again to check it when they changed) */
	uint64_t source_id;
	/*
	 * Windows: media longer than @c window (samples of audio, frames of video) runs as
	 * windows of @c window, the last one what is left, each a batch item of its own, and
	 * their answers are joined by @c join into one (batch/mb_join.h). A window is marked
	 * MB_HDR_WINDOW_PART; with MB_JOIN_MEAN_SOFTMAX_TOPK the model answers it with its
	 * logits (F32 [1 x classes]) and the join makes the top-k.
	 */
	uint32_t window;      /**< 0: no windows */
	uint32_t max_windows; /**< most windows in one request: TOO_LARGE beyond */
	uint8_t join;	      /**< enum mb_join_kind */
	uint8_t join_topk;    /**< k of MB_JOIN_MEAN_SOFTMAX_TOPK */
	/* stands in for a plugin that failed to load: its name only, so requests for it are
	 * answered UNAVAILABLE with the reason rather than UNKNOWN_MODEL */
	struct mb_model_desc failed_desc;
	char failed_name[MB_PROTO_MODEL_LEN + 1];
	/* circuit breakers, indexed by device index (NULL: none; workers then run everything);
	 * only those of devices in the mask are initialised */
	struct mb_breaker *breakers;
	/* front door -> batcher */
	struct mb_ring *queue;
	atomic_uint queued; /**< accepted, not yet in a batch (front door adds, batcher takes) */
	/* metrics */
	struct mb_metric *m_batch_size;
	struct mb_metric *m_closed[MB_CLOSE_COUNT]; /**< batches closed, by reason (batcher) */
};

/**
 * Units one item costs on @p model: item_units_window when set, else the ceiling of
 * item_units_per_second x media seconds. Any thread.
 *
 * Inline so that core's library needs nothing from net/ (mb_proto_audio_seconds() is
 * net/proto.c's): only its callers, all above net/, link that.
 */
static inline uint32_t
mb_model_item_cost(const struct mb_model *model, const struct mb_request_hdr *hdr)
{
	double seconds;

	if (model->item_units_window != 0)
		return model->item_units_window;
	if (model->item_units_per_second <= 0.0)
		return 0;
	switch (hdr->media) {
	case MB_MEDIA_PCM_S16LE:
	case MB_MEDIA_PCM_F32LE:
		seconds = mb_proto_audio_seconds(hdr);
		break;
	case MB_MEDIA_RGB24:
		seconds = hdr->frames / 16.0; /* a 16-frame clip counts as one second */
		break;
	default:
		seconds = 0.0;
	}
	return (uint32_t)ceil(model->item_units_per_second * seconds - 1e-9);
}

/**
 * True when @p model has breakers and the breaker of every device that serves it is open
 * (its requests are then answered UNAVAILABLE at once). Any thread.
 */
bool mb_model_unavailable(const struct mb_model *model);

#endif /* MB_MODEL_RT_H */
