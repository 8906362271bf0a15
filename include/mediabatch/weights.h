/**
 * @file
 * Weight files in the safetensors layout: read, check, write, and generate placeholders.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of a JSON object
 * (tensor name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" object of strings), then the raw little-endian tensor data;
 * offsets are relative to the first byte after the header.
 *
 * mb_weights_open() maps a file and checks its structure: the header length, the JSON
 * (parsed by jansson), every entry's dtype, shape and offsets (inside the data, size equal
 * to the shape times the dtype's size, no two tensors overlapping). mb_weights_bind() then
 * checks a model's expected tensors (name, F32, F16 or BF16, exact shape) and copies them
 * out as F32. Every error names the file, the tensor and what was expected versus found,
 * e.g.
 *
 *     w.safetensors: tensor 'encoder.conv1.weight': shape [384, 80, 4], expected [384, 80, 3]
 *     w.safetensors: 1000 bytes, but the header says tensor data runs to byte 4808: truncated
 *
 * Tensors the model does not ask for are ignored (a full checkpoint may hold more).
 *
 * mb_weights_generate() writes a deterministic file for a list of specs from a seed
 * (splitmix64 per tensor, uniform values scaled by fan-in, or around 1 for LayerNorm gains):
 * placeholder weights that make the built-in models do real, repeatable arithmetic and mean
 * nothing. mb_weights_generate_data() gives one tensor's values, so that mb_ckpt_generate()
 * (mb_ckpt.h) writes the same values as a published-style checkpoint.
 *
 * This module depends on libc and jansson only: it is the plugin SDK's library
 * (libmediabatch-plugin, `pkg-config mediabatch-plugin`), so plugins and tools can link it.
 * Threads: any; a struct mb_weights is read-only once open.
 */
#ifndef MEDIABATCH_WEIGHTS_H
#define MEDIABATCH_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MB_WEIGHTS_MAX_DIMS 6

/** The "generator" that placeholder files record in their header's __metadata__. */
#define MB_WEIGHTS_GENERATOR "mediabatch (placeholder weights)"

/** How mb_weights_generate() fills a placeholder tensor. */
enum {
	MB_WEIGHTS_INIT_DEFAULT = 0, /**< by fan-in (see mb_weights_generate()) */
	MB_WEIGHTS_INIT_ONES,	     /**< 1 +- 0.02: LayerNorm gains */
};

/** One tensor a model expects (handed to it as F32). */
struct mb_weights_spec {
	const char *name;
	uint32_t ndim;
	int64_t shape[MB_WEIGHTS_MAX_DIMS];
	int init; /**< MB_WEIGHTS_INIT_*; placeholders only */
};

/** One tensor of an open file, as its header describes it. */
struct mb_weights_tensor {
	const char *name;  /**< owned by the struct mb_weights */
	const char *dtype; /**< "F32", "F16", ... (as written in the file) */
	uint32_t ndim;
	int64_t shape[MB_WEIGHTS_MAX_DIMS];
	uint64_t begin, end; /**< byte offsets in the data section */
	const void *data;    /**< mapped; valid until mb_weights_close() */
};

struct mb_weights;

/**
 * Open and check @p path (copied). Returns 0, or -ENOENT / -EINVAL (malformed) / -ENOMEM
 * with a message naming the file in @p err. Close with mb_weights_close().
 */
int mb_weights_open(const char *path, struct mb_weights **out, char *err, size_t err_len);

/** Unmap and free; NULL accepted; sets *@p w to NULL. */
void mb_weights_close(struct mb_weights **w);

/** Number of tensors in the file. */
uint32_t mb_weights_count(const struct mb_weights *w);

/** Tensor @p i (0 <= i < count), in file order of their data. */
const struct mb_weights_tensor *mb_weights_at(const struct mb_weights *w, uint32_t i);

/** The tensor called @p name, or NULL. */
const struct mb_weights_tensor *mb_weights_find(const struct mb_weights *w, const char *name);

/** The path the file was opened from. */
const char *mb_weights_path(const struct mb_weights *w);

/**
 * Check that @p w holds @p spec with exactly that shape, stored as F32, F16 or BF16 (what
 * mb_weights_bind() can hand out). Returns 0, or -EINVAL with the problem (missing tensor,
 * dtype, shape) in @p err, naming the file and the tensor. Allocates nothing.
 */
int mb_weights_check(const struct mb_weights *w, const struct mb_weights_spec *spec, char *err,
		     size_t err_len);

/**
 * Check that @p w holds every one of @p specs (mb_weights_check()), and copy each, converted
 * to F32 (mb_ckpt_to_f32()), into a new 64-byte aligned array: out[i] (owned by the caller,
 * free() each). Returns 0, or -EINVAL with the first problem (missing tensor, dtype, shape)
 * in @p err, or -ENOMEM; nothing is allocated then.
 */
int mb_weights_bind(const struct mb_weights *w, const struct mb_weights_spec *specs, uint32_t n,
		    float **out, char *err, size_t err_len);

/** mb_weights_open() + mb_weights_bind() + mb_weights_close(). */
int mb_weights_load(const char *path, const struct mb_weights_spec *specs, uint32_t n, float **out,
		    char *err, size_t err_len);

/** Elements of a spec's shape. */
uint64_t mb_weights_spec_numel(const struct mb_weights_spec *spec);

/** One tensor to write (given as F32). */
struct mb_weights_entry {
	const char *name;
	uint32_t ndim;
	int64_t shape[MB_WEIGHTS_MAX_DIMS];
	const float *data; /**< borrowed for the call; numel floats (unused with a fill_fn) */
};

/**
 * Write @p n tensors to @p path as F32 safetensors (header padded to 8 bytes, data in the
 * order given; __metadata__ {"format": "pt"}, as PyTorch writes). Each tensor needs a name
 * of its own, not empty and not "__metadata__" (else -EINVAL, nothing written). The file is
 * written beside @p path and renamed onto it: a failed write leaves no partial file and an
 * existing file as it was, and a reader sees the old file or the new one. Returns 0 or
 * -errno with a message in @p err.
 */
int mb_weights_write(const char *path, const struct mb_weights_entry *e, uint32_t n, char *err,
		     size_t err_len);

/**
 * Produce tensor @p i's values for mb_weights_write_as(): numel F32 values into @p dst.
 * Returns 0, or -errno with a message in @p err (the write stops).
 */
typedef int (*mb_weights_fill_fn)(void *ctx, uint32_t i, float *dst, char *err, size_t err_len);

/**
 * mb_weights_write(), stored as @p dtype ("F32", "F16" or "BF16": values rounded to nearest
 * even, mb_ckpt_from_f32()), one tensor at a time. With @p fill NULL tensor i's values are
 * e[i].data; otherwise they are what fill(@p ctx, i, ...) writes into a buffer of numel
 * floats, freed before the next tensor, so at most one tensor's floats are held at once.
 * __metadata__ is {"generator": @p generator}, or {"format": "pt"} (what PyTorch writes)
 * when @p generator is NULL. Names and the write as mb_weights_write(); a fill that fails
 * stops it with its error and nothing is written. Returns 0 or -errno (-EINVAL for another
 * dtype) with a message.
 */
int mb_weights_write_as(const char *path, const struct mb_weights_entry *e, uint32_t n,
			const char *dtype, const char *generator, mb_weights_fill_fn fill,
			void *ctx, char *err, size_t err_len);

/**
 * Write placeholder weights for @p specs to @p path (F32), deterministically from @p seed:
 * the same seed gives the same bytes on every machine. Values: mb_weights_generate_data().
 * Returns 0 or -errno with a message.
 */
int mb_weights_generate(const char *path, const struct mb_weights_spec *specs, uint32_t n,
			uint64_t seed, char *err, size_t err_len);

/**
 * The placeholder values of @p spec for @p seed, as mb_weights_generate() writes them:
 * mb_weights_spec_numel() floats into @p out. A tensor's values depend on the seed and its
 * name only (splitmix64 seeded with seed ^ FNV-1a(name)). MB_WEIGHTS_INIT_DEFAULT: tensors
 * with one dimension (biases) uniform in [-0.02, 0.02], others uniform in +-sqrt(6 / fan_in),
 * fan_in = the product of all but the first dimension; MB_WEIGHTS_INIT_ONES: 1 + uniform in
 * [-0.02, 0.02].
 */
void mb_weights_generate_data(const struct mb_weights_spec *spec, uint64_t seed, float *out);

#ifdef __cplusplus
}
#endif

#endif /* MEDIABATCH_WEIGHTS_H */
