/**
 * @file
 * The built-in models (include/mediabatch/model.h descriptors), CPU implementations:
 *
 *   identity  any valid request -> F32 [1 x 1] = payload bytes (measures the service itself)
 *   logmel    PCM 16 kHz mono, 400 samples (25 ms) .. 30 s -> F32 [samples/160 x 80],
 *             Whisper's log-mel front end (see models/mel_internal.h)
 *   whisper   PCM 16 kHz mono, 25 ms .. 30 s -> F32 [1500 x d]: Whisper's audio encoder
 *             from a published checkpoint (models/whisper.c), the audio padded to 30 s
 *   clap      PCM 48 kHz mono, 25 ms .. 10 s -> F32 [1 x 512]: CLAP's audio tower
 *             (laion/clap-htsat-unfused: log-mel, HTSAT Swin encoder, projection,
 *             L2-normalised; models/clap.c)
 *   videomae  RGB24, 16 frames of 224 x 224 -> top-5 (class, score): VideoMAE video
 *             classification from a published checkpoint (models/videomae.c)
 *
 * whisper, clap and videomae read weights from a safetensors file (mb_weights.h; what those
 * files hold, tensor by tensor, is mb_layout.h's, included here). `mediabatch-weights`
 * generates placeholder files: their outputs are deterministic and mean nothing until real
 * weights of the same architecture are loaded.
 *
 * Threads: the descriptors are constant; see model.h for which thread calls what.
 */
#ifndef MB_MODELS_H
#define MB_MODELS_H

#include "mediabatch/model.h"

#include "mb_layout.h"
#include "mb_weights.h"

#define MB_LOGMEL_MAX_SECONDS 30

#define MB_WHISPER_MAX_SECONDS 30

#define MB_CLAP_SAMPLE_RATE 48000
#define MB_CLAP_DIM 512 /* the published projection_dim */
#define MB_CLAP_MAX_SECONDS 10

#define MB_VIDEOMAE_FRAMES 16
#define MB_VIDEOMAE_SIZE 224

extern const struct mb_model_desc mb_model_identity;
extern const struct mb_model_desc mb_model_logmel;
extern const struct mb_model_desc mb_model_whisper;
extern const struct mb_model_desc mb_model_clap;
extern const struct mb_model_desc mb_model_videomae;

/**
 * The built-in models, NULL-terminated. Those that read weights are in mb_layout.h's
 * mb_builtin_with_weights[] too, in the same order.
 */
extern const struct mb_model_desc *const mb_builtin_models[];

/**
 * What a network's GEMMs read on a CUDA device (models[].precision): their weights are kept
 * in it and their inputs converted to it, every GEMM accumulating in F32; LayerNorm, softmax,
 * GELU, biases and the residual stream are F32 whatever it is. The CPU runs F32 always.
 */
enum mb_net_precision {
	MB_NET_F32 = 0,
	MB_NET_F16 = 1,
	MB_NET_BF16 = 2,
};

#define MB_NET_PRECISION_DEFAULT MB_NET_BF16

/** "f32", "f16", "bf16". */
const char *mb_net_precision_name(enum mb_net_precision prec);

/**
 * The precision network @p model loads with on a CUDA device from now on (until set again;
 * MB_NET_PRECISION_DEFAULT until then). Main thread, before load(). 0, -ENOENT when @p model
 * is not a built-in network, -EINVAL for a value not in the enum.
 */
int mb_builtin_net_set_precision(const char *model, enum mb_net_precision prec);

/**
 * The device memory of built-in network @p model on CUDA, for the service's device units:
 * @p state is what its load() returned for a CUDA device (borrowed). *@p worker_bytes: what
 * each worker holds from worker_init to worker_fini (cuBLAS workspace, FFT work area); a run
 * of n items allocates *@p batch_bytes + n * *@p item_bytes at its start (stream-ordered, from
 * the device's memory pool) and frees it before run() returns, so a batch needs that much
 * only while it runs. Exact: the formula the run's allocation is sized by, plus the pool's
 * page (2 MiB) in batch_bytes. Any thread. 0, or -ENOENT (all three 0) when @p model is not
 * a network on CUDA (not a built-in network, a CPU state, a build without CUDA).
 */
int mb_builtin_net_gpu_bytes(const char *model, const void *state, uint64_t *worker_bytes,
			     uint64_t *batch_bytes, uint64_t *item_bytes);

/**
 * How built-in @p model splits long media (core/mb_model_rt.h, batch/mb_join.h): its window
 * in samples (audio) or frames (video), how windows are joined (enum mb_join_kind) and k
 * of a top-k join. Returns 0, or -ENOENT when the model takes no windows.
 */
int mb_builtin_windowing(const char *model, uint32_t *window, uint8_t *join, uint8_t *topk);

/** Windows per request unless the config says otherwise (models[].max_windows). */
#define MB_DEFAULT_MAX_WINDOWS 8

#endif /* MB_MODELS_H */
