/**
 * @file
 * Private to the mb_weights library (weights.c, ckpt.c): how both write their errors.
 */
#ifndef MB_WEIGHTS_INTERNAL_H
#define MB_WEIGHTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/** printf into @p err (NULL or 0 bytes: nothing). */
void mb_weights_seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** "[384, 80, 3]" */
void mb_weights_shape_str(const int64_t *shape, uint32_t ndim, char *buf, size_t len);

struct mb_weights_spec;

/** What mb_weights_gen_fill() reads: the specs and the seed of a placeholder file. */
struct mb_weights_gen_ctx {
	const struct mb_weights_spec *specs;
	uint64_t seed;
};

/** mb_weights_fill_fn that writes placeholder values of tensor @p i (ctx: the struct above). */
int mb_weights_gen_fill(void *ctx, uint32_t i, float *dst, char *err, size_t len);

#endif /* MB_WEIGHTS_INTERNAL_H */
