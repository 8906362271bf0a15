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
 * whisper, clap and videomae read weights from a safetensors file (mb_weights.h; the specs
 * below list every tensor). `mediabatch-weights` generates placeholder files: their outputs
 * are deterministic and mean nothing until real weights of the same architecture are loaded.
 *
 * Threads: the descriptors are constant; see model.h for which thread calls what.
 */
#ifndef MB_MODELS_H
#define MB_MODELS_H

#include "mediabatch/model.h"

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

/** The built-in models, NULL-terminated. */
extern const struct mb_model_desc *const mb_builtin_models[];

/** The tensors a built-in model reads from its weights file. */
struct mb_builtin_weights {
	const char *model;
	const struct mb_weights_spec *specs;
	uint32_t n;
};

/** Every built-in model that has weights, NULL-terminated. */
extern const struct mb_builtin_weights *const mb_builtin_weights[];

/** The entry for @p model, or NULL when it has no weights or is a network (below). */
const struct mb_builtin_weights *mb_builtin_weights_of(const char *model);

/**
 * Whether built-in @p model reads a weights file or checkpoint: those of
 * mb_builtin_weights[], and the networks on the shared lifecycle (whose checkpoint is a
 * directory, a file or a sharded index: mb_ckpt.h).
 */
int mb_builtin_has_weights(const char *model);

/*
 * The built-in networks that load published checkpoints (whisper, videomae): a checkpoint is
 * a directory (model.safetensors or a sharded index, and config.json), a .safetensors file or
 * an index file (mb_ckpt.h).
 */

/** Whether @p model is one of them. */
int mb_builtin_is_net(const char *model);

/** Its size names, NULL-terminated ("tiny", a test size, first); NULL if not a network. */
const char *const *mb_builtin_net_sizes(const char *model);

/**
 * Write a placeholder checkpoint of @p model at @p size into directory @p dir (created;
 * replaced whole if it exists): model.safetensors (or shards of at most @p shard_bytes with
 * their index when not 0) in @p dtype ("F32", "F16", "BF16"), and config.json, in exactly
 * the published layout. Deterministic from @p seed. 0, or -errno with a message in @p err.
 */
int mb_builtin_net_placeholder(const char *model, const char *size, const char *dir, uint64_t seed,
			       const char *dtype, uint64_t shard_bytes, char *err, size_t err_len);

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
 * Load the checkpoint @p path as built-in @p model on the CPU, exactly as the service
 * would, and unload it: 0 with a one-line summary in @p out (sizes, tensors, parameters),
 * or -errno with the reason in @p out.
 */
int mb_builtin_net_check(const char *model, const char *path, char *out, size_t out_len);

/**
 * How built-in @p model splits long media (core/mb_model_rt.h, batch/mb_join.h): its window
 * in samples (audio) or frames (video), how windows are joined (enum mb_join_kind) and k
 * of a top-k join. Returns 0, or -ENOENT when the model takes no windows.
 */
int mb_builtin_windowing(const char *model, uint32_t *window, uint8_t *join, uint8_t *topk);

/** Windows per request unless the config says otherwise (models[].max_windows). */
#define MB_DEFAULT_MAX_WINDOWS 8

/** Default seed of placeholder weights (mediabatch-weights --seed). */
#define MB_WEIGHTS_DEFAULT_SEED 20261122

#endif /* MB_MODELS_H */
