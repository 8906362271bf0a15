/**
 * @file
 * Private to gpu/: a pre-LayerNorm transformer encoder on a CUDA device (cuda_tf.cu), the
 * module that the CUDA paths of whisper and videomae (cuda_whisper.cu, cuda_videomae.cu) are
 * built on. Plain C types only: device pointers are void * or float *, a stream is void *.
 *
 * Precision (enum mb_tf_prec) is that of the GEMMs' inputs: the weights of every GEMM are
 * stored in it (F32, F16 or BF16), and the activations that enter a GEMM are converted to it
 * by the kernel that writes them (LayerNorm, the head split, GELU, softmax, im2col). Every
 * GEMM accumulates in F32 (CUBLAS_COMPUTE_32F): on tensor cores for F16 and BF16, in plain
 * FMA for F32 (never TF32). Everything else is F32: LayerNorm gains and biases, every bias,
 * the residual stream x, LayerNorm statistics, softmax, GELU, the tables.
 *
 * One block over n items of t tokens, the items stacked as the CPU does ([n*t x d] rows):
 *
 *   a = LN1(x)                                  (prec)
 *   qkv = a Wqkv^T                              one GEMM, N = 3d (q, k, v fused), F32
 *   q, k, v = split(qkv + bqkv)                 per head [n*heads x t x dh], prec
 *   s = q k^T / sqrt(dh)                        strided-batched GEMM over n*heads, F32
 *   p = softmax(s)                              F32 math, written in prec in place
 *   o = p v                                     strided-batched GEMM, prec
 *   a = merge(o); x += a Wo^T; x += bo          GEMM with beta = 1 into x
 *   a = LN2(x); h = a W1^T; h = GELU(h + b1)    GELU in F32, written in prec in place
 *   x += h W2^T; x += b2
 *
 * Memory of n items (struct mb_tf_acts): x F32 [n*t x d]; a, q, k, v in prec [n*t x d] each
 * (o shares q's buffer); one "big" region F32 of max(n*t*3d, n*heads*t*t, n*t*ff) floats that
 * holds in turn the fused projection, the scores and the MLP hidden (and, before the blocks,
 * whatever a network's front end asks for). mb_tf_acts_bytes() gives the sum.
 *
 * Threads: a store (weights) is created on the main thread and read-only afterwards; a
 * context and its activations belong to one worker thread.
 */
#ifndef MB_CUDA_TF_INTERNAL_H
#define MB_CUDA_TF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The GEMMs' input type (the values equal enum mb_net_precision's, mb_models.h). */
enum mb_tf_prec {
	MB_TF_F32 = 0,
	MB_TF_F16 = 1,
	MB_TF_BF16 = 2,
};

/** "f32", "f16", "bf16". */
const char *mb_tf_prec_name(enum mb_tf_prec p);

/** Bytes of one value in @p p. */
static inline size_t
mb_tf_prec_size(enum mb_tf_prec p)
{
	return p == MB_TF_F32 ? 4 : 2;
}

/** The most a row kernel takes: d (LayerNorm), t (softmax), ff (GELU). Checked at load. */
#define MB_TF_MAX_D 2048
#define MB_TF_MAX_T 2048
#define MB_TF_MAX_FF 8192

/* ---- a net's constant device data ---- */

/** Every device allocation of one loaded net on one device (weights, tables). */
struct mb_tf_store;

/** An empty store on CUDA device @p device whose matrices are kept in @p prec. */
int mb_tf_store_create(int device, enum mb_tf_prec prec, struct mb_tf_store **out, char *err,
		       size_t err_len);
/** Free everything the store holds; NULL accepted; sets *s to NULL. Main thread. */
void mb_tf_store_destroy(struct mb_tf_store **s);
/** Device bytes the store holds. */
size_t mb_tf_store_bytes(const struct mb_tf_store *s);
enum mb_tf_prec mb_tf_store_prec(const struct mb_tf_store *s);
int mb_tf_store_device(const struct mb_tf_store *s);

/** Copy @p bytes of host memory (borrowed for the call) to the device: *@p dev. */
int mb_tf_store_raw(struct mb_tf_store *s, const void *host, size_t bytes, const void **dev,
		    char *err, size_t err_len);

/** @p n F32 values (host, borrowed), kept as F32: biases, LayerNorm, tables. */
int mb_tf_store_f32(struct mb_tf_store *s, const float *host, size_t n, const float **dev,
		    char *err, size_t err_len);

/**
 * A GEMM weight, kept in the store's precision (round to nearest even): the row-major
 * matrix made of @p n_parts host blocks of rows[i] x @p cols F32 values each (PyTorch's
 * [out][in]), stacked in order (q, k and v make one [3d x d]). @p prec_override: -1 for the
 * store's precision, else an enum mb_tf_prec for this matrix alone.
 */
int mb_tf_store_matrix(struct mb_tf_store *s, const float *const *parts, const uint32_t *rows,
		       uint32_t n_parts, uint32_t cols, int prec_override, const void **dev,
		       char *err, size_t err_len);

/** One pre-LN block's tensors on the host (F32, PyTorch layout; a NULL bias is zero). */
struct mb_tf_block_host {
	uint32_t d, heads, ff;
	float eps;
	const float *ln1_g, *ln1_b;
	const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
	const float *ln2_g, *ln2_b;
	const float *w1, *b1, *w2, *b2;
};

/** The same block on the device (pointers into a store). */
struct mb_tf_block {
	uint32_t d, heads, ff;
	float eps;
	const float *ln1_g, *ln1_b, *bqkv, *bo, *ln2_g, *ln2_b, *b1, *b2; /* F32 */
	const void *wqkv, *wo, *w1, *w2;				  /* the precision */
};

/** Upload block @p h into @p s. 0, or negative with @p err (sizes beyond MB_TF_MAX_*). */
int mb_tf_block_upload(struct mb_tf_store *s, const struct mb_tf_block_host *h,
		       struct mb_tf_block *out, char *err, size_t err_len);

/* ---- a worker's ---- */

/** A worker thread's cuBLAS handle (and its workspace), its own stream, its precision. */
struct mb_tf_ctx;

int mb_tf_ctx_create(int device, enum mb_tf_prec prec, struct mb_tf_ctx **out, char *err,
		     size_t err_len);
/** Waits for the context's work; NULL accepted; sets *c to NULL. */
void mb_tf_ctx_destroy(struct mb_tf_ctx **c);

/**
 * Start a run on @p stream (a cudaStream_t of the context's device; NULL: the context's
 * own): sets the device and binds cuBLAS to the stream. Every call below until the next
 * begin queues on that stream.
 */
int mb_tf_ctx_begin(struct mb_tf_ctx *c, void *stream, char *err, size_t err_len);
/** The stream of the current run (a cudaStream_t). */
void *mb_tf_ctx_stream(const struct mb_tf_ctx *c);
enum mb_tf_prec mb_tf_ctx_prec(const struct mb_tf_ctx *c);

/** The activations of up to cap items of t tokens (see the top of this file). */
struct mb_tf_acts {
	uint32_t cap, t, d, heads, ff;
	enum mb_tf_prec prec;
	float *x;		 /**< [cap*t x d] F32, the residual stream */
	void *a;		 /**< [cap*t x d] prec: LayerNorm out, merged heads */
	void *q, *k, *v;	 /**< [cap*heads x t x dh] prec each; o is q */
	float *big;		 /**< qkv [cap*t x 3d], then scores, then MLP hidden */
	size_t big_bytes, bytes; /**< the big region's bytes; all of them */
};

/**
 * Device bytes of struct mb_tf_acts for @p n items of @p t tokens, with a big region of at
 * least @p big_min bytes (a network's front end may use it before the blocks).
 */
size_t mb_tf_acts_bytes(uint32_t n, uint32_t t, uint32_t d, uint32_t heads, uint32_t ff,
			enum mb_tf_prec prec, size_t big_min);

/**
 * Make @p A hold at least @p n items (reallocating when it holds fewer: the only device
 * allocation after start-up, when a larger batch first arrives). @p A zeroed the first time.
 */
int mb_tf_acts_reserve(struct mb_tf_ctx *c, struct mb_tf_acts *A, uint32_t n, uint32_t t,
		       uint32_t d, uint32_t heads, uint32_t ff, size_t big_min, char *err,
		       size_t err_len);
void mb_tf_acts_free(struct mb_tf_acts *A);

/** One block over @p n items in @p A (A->x in place). */
int mb_tf_block_forward(struct mb_tf_ctx *c, const struct mb_tf_block *b, struct mb_tf_acts *A,
			uint32_t n, char *err, size_t err_len);

/* ---- the pieces, for a network's own front end and head (all on the run's stream) ---- */

/**
 * Y[m x n] = alpha X[m x k] W[n x k]^T + beta Y, row-major (a linear layer, or a convolution
 * after im2col): X in @p x_prec with row stride @p ldx, W in @p w_prec, Y F32 (@p y_f32) or
 * in the context's precision, row stride @p ldy. F32 accumulation.
 */
int mb_tf_linear(struct mb_tf_ctx *c, uint32_t m, uint32_t n, uint32_t k, const void *x,
		 uint32_t ldx, enum mb_tf_prec x_prec, const void *w, enum mb_tf_prec w_prec,
		 float alpha, float beta, void *y, uint32_t ldy, int y_f32, char *err,
		 size_t err_len);

/**
 * LayerNorm of @p rows rows of @p d (F32 statistics, biased variance, as torch): y = (x -
 * mean) / sqrt(var + eps) * g + b, into @p y in the context's precision, or F32 with @p y_f32.
 */
int mb_tf_layernorm(struct mb_tf_ctx *c, const float *x, uint32_t rows, uint32_t d, const float *g,
		    const float *b, float eps, void *y, int y_f32, char *err, size_t err_len);

/**
 * x[r][c] = act(x[r][c] + bias[c]) + pos[r % pos_rows][c], in place, F32: act the exact GELU
 * when @p gelu, else none; @p bias, @p pos may be NULL.
 */
int mb_tf_bias_act(struct mb_tf_ctx *c, float *x, size_t rows, uint32_t cols, const float *bias,
		   int gelu, const float *pos, uint32_t pos_rows, char *err, size_t err_len);

/**
 * im2col of a 1-D convolution with kernel 3 and padding 1, for @p n sequences: x F32
 * [n x t_in x cin] -> col [n*t_out x cin*3] in the context's precision, col[o][ch*3 + j] =
 * x[o*stride + j - 1][ch] (zero outside), the order of a PyTorch conv1d weight [out][in][3].
 */
int mb_tf_im2col3(struct mb_tf_ctx *c, const float *x, uint32_t n, uint32_t t_in, uint32_t cin,
		  uint32_t stride, uint32_t t_out, void *col, char *err, size_t err_len);

/* ---- the networks built on it: whisper (cuda_whisper.cu) and videomae (cuda_videomae.cu) */

/** Whisper's encoder: sizes and host tensors (F32, borrowed for the create call). */
struct mb_cuda_whisper_desc {
	int device;
	enum mb_tf_prec prec;
	uint32_t d, layers, heads, ffn, n_mels;
	const float *conv1_w, *conv1_b;	       /**< [d x n_mels x 3], [d] */
	const float *conv2_w, *conv2_b;	       /**< [d x d x 3], [d] */
	const float *pos;		       /**< [1500 x d] */
	const float *lnf_g, *lnf_b;	       /**< the final LayerNorm (eps 1e-5) */
	const struct mb_tf_block_host *blocks; /**< [layers] */
	const float *window;		       /**< [400], mel.c's periodic Hann */
	const float *filters;		       /**< [n_mels x 201], dense (mel.c's) */
	const int *lo, *hi;		       /**< [n_mels]: the non-zero bins of each filter */
};

/** One whisper item: PCM of @p samples (400..480000) on the host; out [1500 x d] F32. */
struct mb_cuda_audio_item {
	const void *payload; /**< host, borrowed for the run */
	uint32_t samples;
	int pcm_s16; /**< 1 PCM_S16LE, 0 PCM_F32LE */
	float *out;  /**< host, 1500 x d floats */
};

struct mb_cuda_whisper;
struct mb_cuda_whisper_worker;

/** Upload whisper. 0, or negative with @p err. Main thread. */
int mb_cuda_whisper_create(const struct mb_cuda_whisper_desc *desc, struct mb_cuda_whisper **out,
			   char *err, size_t err_len);
void mb_cuda_whisper_destroy(struct mb_cuda_whisper **net);
/** Device bytes of the net's weights and tables. */
size_t mb_cuda_whisper_bytes(const struct mb_cuda_whisper *net);

/** A worker's context and buffers (grown to the largest batch seen). Worker thread. */
int mb_cuda_whisper_worker_create(const struct mb_cuda_whisper *net,
				  struct mb_cuda_whisper_worker **out, char *err, size_t err_len);
void mb_cuda_whisper_worker_destroy(struct mb_cuda_whisper_worker **w);

/**
 * Run @p n items as one batch on @p stream (a cudaStream_t, NULL: the worker's own); every
 * item's out is written when it returns 0. Negative with @p err: the batch failed.
 */
int mb_cuda_whisper_run(const struct mb_cuda_whisper *net, struct mb_cuda_whisper_worker *w,
			const struct mb_cuda_audio_item *items, uint32_t n, void *stream, char *err,
			size_t err_len);

/** Device bytes a worker holds for batches of @p n (its buffers' sizes; host arithmetic). */
size_t mb_cuda_whisper_worker_bytes(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t n_mels,
				    enum mb_tf_prec prec, uint32_t n);

/** VideoMAE's classifier: sizes and host tensors (F32, borrowed for the create call). */
struct mb_cuda_videomae_desc {
	int device;
	enum mb_tf_prec prec;
	uint32_t d, layers, heads, ffn, classes;
	const float *emb_w, *emb_b;	       /**< [d x 3 x 2 x 16 x 16], [d] */
	const float *pos;		       /**< [1568 x d], the sinusoid table */
	const float *lut;		       /**< [3 x 256]: each byte's normalised value */
	const float *fcn_g, *fcn_b;	       /**< fc_norm (eps 1e-5) */
	const float *cls_w, *cls_b;	       /**< [classes x d], [classes] */
	const struct mb_tf_block_host *blocks; /**< [layers] */
};

struct mb_cuda_videomae;
struct mb_cuda_videomae_worker;

int mb_cuda_videomae_create(const struct mb_cuda_videomae_desc *desc, struct mb_cuda_videomae **out,
			    char *err, size_t err_len);
void mb_cuda_videomae_destroy(struct mb_cuda_videomae **net);
size_t mb_cuda_videomae_bytes(const struct mb_cuda_videomae *net);
int mb_cuda_videomae_worker_create(const struct mb_cuda_videomae *net,
				   struct mb_cuda_videomae_worker **out, char *err, size_t err_len);
void mb_cuda_videomae_worker_destroy(struct mb_cuda_videomae_worker **w);

/**
 * The logits of @p n clips (each 16 x 224 x 224 RGB24 on the host, borrowed for the run) as
 * one batch on @p stream (NULL: the worker's own): *@p logits [n x classes] F32, in the
 * worker's pinned memory, valid until its next run. 0, or negative with @p err.
 */
int mb_cuda_videomae_run(const struct mb_cuda_videomae *net, struct mb_cuda_videomae_worker *w,
			 const uint8_t *const *clips, uint32_t n, void *stream,
			 const float **logits, char *err, size_t err_len);

/** Device bytes a worker holds for batches of @p n (host arithmetic). */
size_t mb_cuda_videomae_worker_bytes(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t classes,
				     enum mb_tf_prec prec, uint32_t n);

/* Perf only: every GEMM goes through one function that, while mb_cuda_gemm_record() is on,
 * adds its shape to the list mb_cuda_gemm_take() returns (cuda_nets_internal.h). */

#ifdef __cplusplus
}
#endif

#endif /* MB_CUDA_TF_INTERNAL_H */
