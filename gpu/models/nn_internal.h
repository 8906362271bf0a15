/**
 * @file
 * Private to gpu/models: the few layers the built-in networks need, on the CPU (OpenBLAS).
 *
 * Layouts: activations are row-major [time x channels] ("time-major", one row per frame, as
 * the models' outputs are); weights are PyTorch's: conv1d [out][in][k], linear [out][in].
 * A convolution is im2col followed by one SGEMM.
 *
 * OpenBLAS runs single-threaded here (mb_nn_init()): the service parallelises across
 * worker threads, and one thread per GEMM keeps results bit-for-bit repeatable. The call is
 * process-wide and overrides OPENBLAS_NUM_THREADS; the pthreads build still starts its own
 * pool of nproc - 1 threads when the library loads, which spin briefly and then sleep
 * unused (perf/RESULTS.md, 2026-11-23, "batching on the CPU").
 *
 * A batch runs item by item, each item through its own GEMMs. Stacking the items of a batch
 * into one GEMM per layer (one packing of the weights, a larger M) was measured and not
 * kept (same entry): a 10 s clip's GEMMs already run at the kernel's rate (M = 250..1000),
 * GELU and the log-mel do not batch, and for 1 s clips the gain (4-10%) is eaten by what
 * keeping results bit-for-bit independent of the batch costs: OpenBLAS rounds a row
 * differently by its position in the kernel's block of rows and in a partial last block
 * (Zen, 0.3.21: blocks of 12), so each item would need its own zero-padded whole blocks.
 *
 * Threads: any, each with its own scratch.
 */
#ifndef MB_NN_INTERNAL_H
#define MB_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/** Once per process before the first GEMM (idempotent; any thread). */
void mb_nn_init(void);

/** Output length of a 1-D convolution. */
static inline uint32_t
mb_nn_conv_out(uint32_t len, uint32_t k, uint32_t stride, uint32_t pad)
{
	return (len + 2 * pad - k) / stride + 1;
}

/**
 * y[t_out x cout] = GELU(conv1d(x[t x cin]) + b), kernel @p k, @p stride, zero padding
 * @p pad. @p col: scratch of t_out * cin * k floats. @p gelu 0 leaves it linear.
 */
void mb_nn_conv1d(const float *x, uint32_t t, uint32_t cin, const float *w, const float *b,
		  uint32_t cout, uint32_t k, uint32_t stride, uint32_t pad, int gelu, float *col,
		  float *y);

/** y[rows x out] = x[rows x in] W^T + b (W [out x in]; @p b NULL: no bias). */
void mb_nn_linear(const float *x, uint32_t rows, uint32_t in, const float *w, const float *b,
		  uint32_t out, float *y);

/**
 * LayerNorm over the last dimension: y[r] = (x[r] - mean) / sqrt(var + eps) * g + b, the
 * variance biased (divided by d), as torch.nn.LayerNorm. @p y may equal @p x.
 */
void mb_nn_layernorm(const float *x, uint32_t rows, uint32_t d, const float *g, const float *b,
		     float eps, float *y);

/** x[i] = expf(x[i] - @p shift) for @p n values (nn_vec.c: vectorised). */
void mb_nn_vec_exp_shift(float *x, size_t n, float shift);

/** GELU (erf) of @p n values in place (nn_vec.c: vectorised). */
void mb_nn_vec_gelu(float *x, size_t n);

/** GELU (erf) of @p n values in place. */
void mb_nn_gelu_inplace(float *x, size_t n);

/**
 * One pre-LayerNorm transformer encoder block, as Whisper's and VideoMAE's are:
 *
 *     h = x + out(attn(ln1(x)))       attn: multi-head softmax(q k^T / sqrt(dh)) v
 *     x = h + fc2(gelu(fc1(ln2(h))))
 *
 * Weights in PyTorch's layout ([out][in]); q, k, v, out are [d x d], fc1 [ff x d], fc2
 * [d x ff]. A NULL bias is zero (Whisper's k projection has none; VideoMAE's k neither).
 * Heads split d into @p heads contiguous slices of dh = d / heads columns.
 */
struct mb_nn_block {
	uint32_t d, heads, ff;
	float eps; /* both LayerNorms */
	const float *ln1_g, *ln1_b;
	const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
	const float *ln2_g, *ln2_b;
	const float *w1, *b1, *w2, *b2;
};

/** Scratch floats mb_nn_block_forward() needs for @p n sequences of @p t tokens. */
size_t mb_nn_block_scratch(const struct mb_nn_block *blk, uint32_t n, uint32_t t);

/**
 * Run @p blk over @p n sequences of @p t tokens each, stacked in @p x [(n * t) x d], in
 * place. The projections and the MLP run as GEMMs over all n * t rows (the batch's tokens
 * stacked); attention runs per sequence and head. @p scratch: mb_nn_block_scratch() floats.
 */
void mb_nn_block_forward(const struct mb_nn_block *blk, float *x, uint32_t n, uint32_t t,
			 float *scratch);

/** GELU, exact (erf) form, as Whisper and CLAP use it. */
float mb_nn_gelu(float x);

/**
 * One Swin transformer block (Liu et al. 2021, as Hugging Face's SwinLayer and CLAP's
 * ClapAudioLayer compute it) over a grid of h x w tokens (row-major, one row per token):
 *
 *     roll the LayerNormed grid by (-shift, -shift) (cyclic), cut it into window x window
 *     windows, multi-head attention inside each window:
 *         softmax(q k^T / sqrt(dh) + bias[head] + mask) v
 *     (bias: the relative position bias, expanded by mb_nn_swin_bias(); mask: -100 between
 *     tokens of different regions of the rolled grid, only when shift > 0), the output
 *     projection, roll back, add to x; then x += fc2(gelu(fc1(ln2(x)))).
 *
 * Weights in PyTorch's layout ([out][in]; all with biases). h and w must be multiples of
 * window (no padding here); shift 0 is plain window attention (W-MSA), window / 2 the
 * shifted one (SW-MSA). Heads split d into contiguous slices of dh = d / heads columns.
 */
struct mb_nn_swin {
	uint32_t d, heads, ff;
	uint32_t h, w;		/* the token grid of one sequence */
	uint32_t window, shift; /* window side (tokens, <= 32); cyclic shift, < window */
	float eps;		/* both LayerNorms */
	const float *ln1_g, *ln1_b;
	const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
	const float *bias; /* [heads][N][N], N = window * window */
	const float *ln2_g, *ln2_b;
	const float *w1, *b1, *w2, *b2;
};

/**
 * Expand a relative position bias table [(2 window - 1)^2 x heads] (Swin's
 * relative_position_bias_table) into @p out [heads][N][N], N = window^2:
 * out[h][i][j] = table[(yi - yj + window - 1) (2 window - 1) + xi - xj + window - 1][h] for
 * tokens i = yi * window + xi and j of a window.
 */
void mb_nn_swin_bias(const float *table, uint32_t window, uint32_t heads, float *out);

/** Scratch floats mb_nn_swin_forward() needs for @p n sequences. */
size_t mb_nn_swin_scratch(const struct mb_nn_swin *blk, uint32_t n);

/**
 * Run @p blk over @p n sequences of h x w tokens each, stacked in @p x [(n h w) x d], in
 * place. LayerNorms, projections and the MLP run over all n h w rows at once (the batch's
 * tokens stacked); attention per sequence, window and head. @p scratch:
 * mb_nn_swin_scratch() floats.
 */
void mb_nn_swin_forward(const struct mb_nn_swin *blk, float *x, uint32_t n, float *scratch);

/**
 * Swin's patch merging over @p n grids of h x w tokens of d channels (@p x [(n h w) x d],
 * h and w even): each 2 x 2 group of tokens (y, x), (y + 1, x), (y, x + 1), (y + 1, x + 1)
 * concatenated in that order into 4d values, LayerNorm (@p ln_g, @p ln_b, @p eps), then
 * the reduction 4d -> 2d without bias (@p red [2d x 4d]): @p y [(n h/2 w/2) x 2d].
 * @p tmp: (n h w d) floats. @p y may be @p x.
 */
void mb_nn_patch_merge(const float *x, uint32_t n, uint32_t h, uint32_t w, uint32_t d,
		       const float *ln_g, const float *ln_b, float eps, const float *red,
		       float *tmp, float *y);

#endif /* MB_NN_INTERNAL_H */
