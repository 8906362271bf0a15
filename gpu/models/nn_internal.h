/**
 * @file
 * Private to gpu/models: the few layers the built-in networks need, on the CPU (OpenBLAS).
 *
 * Layouts: activations are row-major [time x channels] ("time-major", one row per frame, as
 * the models' outputs are); weights are PyTorch's: conv1d [out][in][k], linear [out][in].
 * A convolution is im2col followed by one SGEMM.
 *
 * Batching: mb_nn_conv1d_stack() runs one convolution over several items of any lengths at
 * once: each item is im2col'ed with its own zero padding into its own rows, and one SGEMM
 * over all the rows does them all (one packing of the weights, a larger M). A row's result
 * must not depend on its neighbours, and with OpenBLAS it does only through the kernel's
 * blocking of M: a full block of mb_nn_block() rows comes out the same wherever the block
 * lies, but rows of a partial block at the end of a GEMM go through narrower kernels that
 * round differently, and within a block the rounding depends on the row's position (on this
 * project's Zen VM, OpenBLAS 0.3.21: blocks of 12, rows 6 and 7 of a block differ from row
 * 0). So in a stack every item's rows start at a multiple of mb_nn_block() and are padded
 * with zero rows to the next multiple (mb_nn_pad()), alone or not, and an item's result is
 * bit-for-bit the same whatever shares its GEMM (tests/unit/gpu/networks_test.c checks
 * it). mb_nn_init() finds the block size by trying candidates on a small GEMM; where none
 * holds, mb_nn_conv1d_stack() falls back to one GEMM per item (same layout, block 1).
 *
 * Not stacked: matrix-vector products (clap's projection, videomae's classifier). One row
 * per item would need a padded block per item to stay exact, about the cost of the
 * matrix-vector products it replaces.
 *
 * OpenBLAS runs single-threaded here (mb_nn_init()): the service parallelises across
 * worker threads, and one thread per GEMM keeps results bit-for-bit repeatable. (OpenBLAS
 * 0.3.21's pthreads build starts its own pool of nproc - 1 threads when the library loads;
 * with one thread they stay parked. Several threads per GEMM with several workers would
 * oversubscribe the cores, and its threaded level-3 driver lets one caller at a time use
 * the pool.)
 *
 * Threads: any, each with its own scratch.
 */
#ifndef MB_NN_INTERNAL_H
#define MB_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/** Once per process before the first GEMM (idempotent; any thread). */
void mb_nn_init(void);

/** The largest block mb_nn_init() accepts; scratch for a stack of n items allows
 * n * (MB_NN_MAX_BLOCK - 1) padding rows. */
#define MB_NN_MAX_BLOCK 64

/** The row block of stacked GEMMs (1..MB_NN_MAX_BLOCK); calls mb_nn_init(). */
uint32_t mb_nn_block(void);

/** @p rows rounded up to a multiple of mb_nn_block(): an item's rows in a stack. */
static inline uint32_t
mb_nn_pad(uint32_t rows)
{
	uint32_t b = mb_nn_block();

	return (rows + b - 1) / b * b;
}

/** Output length of a 1-D convolution. */
static inline uint32_t
mb_nn_conv_out(uint32_t len, uint32_t k, uint32_t stride, uint32_t pad)
{
	return (len + 2 * pad - k) / stride + 1;
}

/**
 * y[t_out x cout] = GELU(conv1d(x[t x cin]) + b) for @p n items stacked along time: kernel
 * @p k, @p stride, zero padding @p pad (@p gelu 0 leaves it linear), t_out =
 * mb_nn_conv_out(t, k, stride, pad) for each item. Item i has @p t[i] rows of x
 * starting at row sum_{j<i} mb_nn_pad(t[j]); its t_out rows start at row
 * sum_{j<i} mb_nn_pad(t_out[j]) of @p y (padding rows are garbage). One item alone: n = 1.
 * @p col: scratch of sum mb_nn_pad(t_out[i]) * cin * k floats, @p y of that many rows x
 * cout. @p out NULL: the result (bias, GELU) is left in @p y; else item i's t_out rows go,
 * unpadded, to @p out[i] and @p y holds the GEMM's raw output only. @p y may be @p x when
 * large enough (every input row is in @p col before the GEMM writes @p y). No allocation.
 */
void mb_nn_conv1d_stack(const float *x, const uint32_t *t, uint32_t n, uint32_t cin, const float *w,
			const float *b, uint32_t cout, uint32_t k, uint32_t stride, uint32_t pad,
			int gelu, float *col, float *y, float *const *out);

/** y[rows x out] = x[rows x in] W^T + b (W [out x in]). */
void mb_nn_linear(const float *x, uint32_t rows, uint32_t in, const float *w, const float *b,
		  uint32_t out, float *y);

/** GELU, exact (erf) form, as Whisper and CLAP use it. */
float mb_nn_gelu(float x);

#endif /* MB_NN_INTERNAL_H */
