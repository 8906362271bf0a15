/**
 * @file
 * Checkpoints as they are published: one safetensors file, or a sharded set with its index,
 * and the `config.json` beside them.
 *
 * A user who downloads a Hugging Face checkpoint points mediabatch at it as it is. The path
 * given to mb_ckpt_open() may be:
 *   - a `.safetensors` file;
 *   - a sharded checkpoint's index, `*.safetensors.index.json` ({"weight_map": {tensor name:
 *     shard file name}}; shards are looked up beside the index, every shard the map names
 *     must exist and hold the tensors the map says, and a tensor in two shards is an error);
 *   - a directory holding `model.safetensors` or `model.safetensors.index.json` (the file
 *     wins when both are there).
 * `config.json` in the same directory is read when present: a model takes its sizes from
 * it where it has them (and from the tensor shapes otherwise), and labels from `id2label`.
 * So is `preprocessor_config.json` (what Hugging Face's feature extractor or image
 * processor of the checkpoint does to the input: sampling rate, mel bins, normalisation).
 * Either file, when it is not a JSON object, is an error; a missing one is not.
 *
 * Tensors are stored as F32, F16 or BF16 (any other dtype is refused with its name when a
 * model asks for it) and are always handed to models as F32: mb_ckpt_bind() converts while
 * copying. Every error names the file, the tensor, what was expected and what was found:
 *
 *     ckpt/model-00002-of-00002.safetensors: tensor 'model.encoder.layers.3.fc1.weight':
 *     shape [1536, 384], expected [2048, 512]
 *     ckpt/model.safetensors.index.json: tensor 'model.encoder.layer_norm.bias' is mapped to
 *     model-00003-of-00003.safetensors, which does not exist
 *
 * Names: models list their tensors under their canonical published names (the Hugging Face
 * checkpoint's, prefixes included, e.g. `model.encoder.conv1.weight`). Some checkpoints of
 * the same network are saved from another class and carry another prefix (a WhisperModel
 * saves `encoder.conv1.weight`): mb_ckpt_bind() can replace a leading prefix of every name,
 * and mb_ckpt_pick_prefix() finds which of a model's accepted prefixes a checkpoint uses.
 *
 * This module depends on libc and jansson only (it lives in the plugin SDK's library,
 * libmediabatch-plugin, with mediabatch/weights.h).
 * Threads: any; a struct mb_ckpt is read-only once open.
 */
#ifndef MEDIABATCH_CKPT_H
#define MEDIABATCH_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_ckpt;

/**
 * Open @p path (see above) and every shard it names, and check each file's structure
 * (mb_weights_open()). Returns 0, or -ENOENT / -EINVAL / -ENOMEM with a message naming the
 * file in @p err. Close with mb_ckpt_close().
 */
int mb_ckpt_open(const char *path, struct mb_ckpt **out, char *err, size_t err_len);

/** Unmap and free; NULL accepted; sets *@p ck to NULL. */
void mb_ckpt_close(struct mb_ckpt **ck);

/** The path it was opened from, as given. */
const char *mb_ckpt_path(const struct mb_ckpt *ck);

/** Number of tensors over all shards. */
uint32_t mb_ckpt_count(const struct mb_ckpt *ck);

/** Tensor @p i (0 <= i < count); the path of the file holding it in *@p file if not NULL. */
const struct mb_weights_tensor *mb_ckpt_at(const struct mb_ckpt *ck, uint32_t i, const char **file);

/** The tensor called @p name, or NULL; the path of its file in *@p file if not NULL. */
const struct mb_weights_tensor *mb_ckpt_find(const struct mb_ckpt *ck, const char *name,
					     const char **file);

/**
 * Which prefix the checkpoint uses: the first of @p prefixes (NULL-terminated; "" allowed)
 * for which "<prefix><anchor>" is a tensor of @p ck. Returns that prefix, or NULL.
 */
const char *mb_ckpt_pick_prefix(const struct mb_ckpt *ck, const char *const *prefixes,
				const char *anchor);

/** Whether a config.json was read. */
int mb_ckpt_has_config(const struct mb_ckpt *ck);

/**
 * config.json's top-level @p key as an integer. Returns 0, -ENOENT when there is no
 * config.json or no such key, -EINVAL (with @p err naming the file and key) when it is not
 * an integer. A JSON real with an integral value (512.0) counts as an integer.
 */
int mb_ckpt_config_int(const struct mb_ckpt *ck, const char *key, int64_t *out, char *err,
		       size_t err_len);

/** As mb_ckpt_config_int(), for a number (integer or real). */
int mb_ckpt_config_double(const struct mb_ckpt *ck, const char *key, double *out, char *err,
			  size_t err_len);

/** As mb_ckpt_config_int(), for a string; *@p out stays valid until mb_ckpt_close(). */
int mb_ckpt_config_str(const struct mb_ckpt *ck, const char *key, const char **out, char *err,
		       size_t err_len);

/** config.json's @p key as true (1) or false (0); returns as mb_ckpt_config_int(). */
int mb_ckpt_config_bool(const struct mb_ckpt *ck, const char *key, int *out, char *err,
			size_t err_len);

/** Whether a preprocessor_config.json was read. */
int mb_ckpt_has_preprocessor(const struct mb_ckpt *ck);

/** As mb_ckpt_config_double(), from preprocessor_config.json. */
int mb_ckpt_preprocessor_double(const struct mb_ckpt *ck, const char *key, double *out, char *err,
				size_t err_len);

/** As mb_ckpt_config_str(), from preprocessor_config.json. */
int mb_ckpt_preprocessor_str(const struct mb_ckpt *ck, const char *key, const char **out, char *err,
			     size_t err_len);

/** preprocessor_config.json's @p key as true (1) or false (0); returns as above. */
int mb_ckpt_preprocessor_bool(const struct mb_ckpt *ck, const char *key, int *out, char *err,
			      size_t err_len);

/**
 * preprocessor_config.json's @p key as an array of exactly @p n numbers, into @p out;
 * returns as above (-EINVAL for another length or anything but numbers).
 */
int mb_ckpt_preprocessor_doubles(const struct mb_ckpt *ck, const char *key, double *out, size_t n,
				 char *err, size_t err_len);

/**
 * config.json's `id2label` entry for class @p id ({"0": "abseiling", ...}), or NULL when
 * there is no config, no id2label or no such entry. Valid until mb_ckpt_close().
 */
const char *mb_ckpt_label(const struct mb_ckpt *ck, uint32_t id);

/** How many entries config.json's `id2label` has, or -1 when there is no id2label object. */
int64_t mb_ckpt_label_count(const struct mb_ckpt *ck);

/**
 * Check that @p ck holds every one of @p specs with exactly that shape, stored as F32, F16
 * or BF16, and copy each, converted to F32, into a new 64-byte aligned array out[i] (owned
 * by the caller, free() each). Spec names are looked up with a leading @p from replaced by
 * @p to (both NULL: as they are; @p to NULL: ""; a name that does not start with @p from is
 * looked up as it is). Returns 0, or -EINVAL with the first problem in @p err (file, tensor
 * under the name it was looked up by, expected, found), or -ENOMEM; nothing is left
 * allocated then.
 */
int mb_ckpt_bind(const struct mb_ckpt *ck, const struct mb_weights_spec *specs, uint32_t n,
		 const char *from, const char *to, float **out, char *err, size_t err_len);

/**
 * Convert @p numel values of dtype @p dtype ("F32", "F16", "BF16") at @p src (any
 * alignment, little-endian) to F32 in @p dst. Returns 0, or -EINVAL for another dtype.
 * F16: IEEE binary16, subnormals, infinities and NaN included; BF16: the upper half of an
 * F32.
 */
int mb_ckpt_to_f32(const char *dtype, const void *src, uint64_t numel, float *dst);

/**
 * The other way: @p numel F32 values at @p src to @p dtype ("F32", "F16", "BF16") at @p dst
 * (any alignment, little-endian), rounded to nearest even; values past the F16 range become
 * infinities, NaN stays NaN (quiet). Returns 0, or -EINVAL for another dtype.
 */
int mb_ckpt_from_f32(const char *dtype, const float *src, uint64_t numel, void *dst);

/**
 * Write @p n tensors as a sharded checkpoint in directory @p dir (created if missing):
 * shards `model-0000i-of-0000N.safetensors` of at most @p shard_bytes of tensor data each
 * (at least one tensor per shard; tensors in the order given), and
 * `model.safetensors.index.json` with {"metadata": {"total_size": bytes}, "weight_map":
 * {...}}, as Hugging Face's save_pretrained() writes them. @p dtype: "F32", "F16" or "BF16"
 * (values rounded to nearest even). With @p shard_bytes 0 it writes one `model.safetensors`
 * and no index. The entry file of the other layout, if one is left in @p dir, is removed, so
 * that mb_ckpt_open(@p dir) opens what was written. Each name once over all shards (else
 * -EINVAL before anything is written); each file as mb_weights_write() writes it. Returns 0
 * or -errno with a message in @p err.
 */
int mb_ckpt_write(const char *dir, const struct mb_weights_entry *e, uint32_t n, const char *dtype,
		  uint64_t shard_bytes, char *err, size_t err_len);

/**
 * Placeholder weights for @p specs as a checkpoint in @p dir: the values
 * mb_weights_generate() gives for the same @p specs and @p seed (mb_weights_generate_data()),
 * stored as @p dtype and laid out as mb_ckpt_write() does (@p shard_bytes 0: one
 * `model.safetensors`). Tensor by tensor: at most one tensor's floats are held at once,
 * however large the checkpoint. Returns 0 or -errno with a message in @p err.
 */
int mb_ckpt_generate(const char *dir, const struct mb_weights_spec *specs, uint32_t n,
		     uint64_t seed, const char *dtype, uint64_t shard_bytes, char *err,
		     size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* MEDIABATCH_CKPT_H */
