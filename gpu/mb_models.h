/**
 * @file
 * The built-in models (include/mediabatch/model.h descriptors), CPU implementations:
 *
 *   identity  any valid request -> F32 [1 x 1] = payload bytes (measures the service itself)
 *   logmel    PCM 16 kHz mono, 400 samples (25 ms) .. 30 s -> F32 [samples/160 x 80],
 *             Whisper's log-mel front end (see models/mel_internal.h)
 *   whisper   PCM 16 kHz mono, 25 ms .. 30 s -> F32 [ceil(frames/2) x 384]: the log-mel,
 *             then Whisper's conv stem (conv1d 80->384 k3, GELU; 384->384 k3 stride 2, GELU)
 *   clap      PCM 16 kHz mono, 25 ms .. 10 s -> F32 [1 x 512]: 64-bin log-mel, a conv1d
 *             stack (64->128 k3, 128->256 k3 s2, 256->256 k3 s2, GELU each), mean over
 *             time, linear 256->512, L2-normalised
 *   videomae  RGB24, 16 frames of 224 x 224 -> top-5 (class, score) of 400: ImageNet
 *             normalisation, tubelet embedding (conv3d 3->768, kernel = stride = 2x16x16),
 *             mean over the 1568 tubelets, linear 768->400, softmax
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

#define MB_WHISPER_MELS 80
#define MB_WHISPER_C 384 /* the stem's width: whisper-tiny's d_model */
#define MB_WHISPER_MAX_SECONDS 30

#define MB_CLAP_MELS 64
#define MB_CLAP_C1 128
#define MB_CLAP_C2 256
#define MB_CLAP_C3 256
#define MB_CLAP_DIM 512
#define MB_CLAP_MAX_SECONDS 10

#define MB_VIDEOMAE_FRAMES 16
#define MB_VIDEOMAE_SIZE 224
#define MB_VIDEOMAE_TUBELET_T 2
#define MB_VIDEOMAE_PATCH 16
#define MB_VIDEOMAE_DIM 768
#define MB_VIDEOMAE_CLASSES 400
#define MB_VIDEOMAE_TOPK 5
/* tubelets: 8 x 14 x 14; values per tubelet: 3 x 2 x 16 x 16 */
#define MB_VIDEOMAE_TOKENS 1568
#define MB_VIDEOMAE_PATCH_DIM 1536

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
