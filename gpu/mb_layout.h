/**
 * @file
 * What the built-in models' weight files look like, without the models: the layout library
 * (mb_layout: gpu/models/layout.c and each network's *_layout.c). It names the tensors and
 * config.json of every size of every built-in network, reads a network's sizes from a
 * checkpoint, writes placeholder checkpoints and checks downloaded ones. It links libc,
 * jansson and libm only (through mb_weights): no compute, no core, no CUDA, so a tool that
 * only writes or checks files (`mediabatch-weights`) links this and nothing of the server.
 * mb_models.h (the models themselves) includes it.
 *
 * Threads: any; nothing here keeps state.
 */
#ifndef MB_LAYOUT_H
#define MB_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "mb_weights.h"

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

/**
 * The names of the built-in models that read weights (mb_builtin_has_weights()), in the
 * order of mb_builtin_models[] (mb_models.h), NULL-terminated.
 */
extern const char *const mb_builtin_with_weights[];

/*
 * The built-in networks that load published checkpoints (whisper, videomae, clap): a
 * checkpoint is a directory (model.safetensors or a sharded index, and config.json), a
 * .safetensors file or an index file (mb_ckpt.h).
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
 * Read the checkpoint @p path as built-in @p model on the CPU, as the service's load reads
 * it (its prefix, its sizes from the tensors and config.json, every tensor bound as F32),
 * and free it: 0 with a one-line summary in @p out (sizes, tensors, parameters), or -errno
 * with the reason in @p out. What a load builds from the tensors afterwards (filterbanks,
 * position tables) fails only for want of memory, so it is not built here.
 */
int mb_builtin_net_check(const char *model, const char *path, char *out, size_t out_len);

/** Default seed of placeholder weights (mediabatch-weights --seed). */
#define MB_WEIGHTS_DEFAULT_SEED 20261122

#endif /* MB_LAYOUT_H */
