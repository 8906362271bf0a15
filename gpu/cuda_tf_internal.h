/**
 * @file
 * Private to gpu/: a pre-LayerNorm transformer encoder on a CUDA device (cuda_tf.cu), the
 * module that the CUDA paths of whisper, videomae and clap (cuda_whisper.cu,
 * cuda_videomae.cu, cuda_clap.cu) are built on; clap's Swin blocks use the same weights,
 * GEMMs and kernels, with its own window gather, masked softmax and scatter around them (the
 * attention's pieces one by one, below). Plain C types only: device pointers are void * or
 * float *, a stream is void *.
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
 * whatever a network's front end asks for). They are parts of the one allocation a run makes
 * for its n items and frees at its end (see "device memory" below): nothing that depends on
 * n outlives a run.
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

/**
 * A worker thread's cuBLAS handle (and its MB_TF_BLAS_WS workspace), its own stream, its
 * precision, and a reference on its device's memory pool (mb_tf_run_alloc()).
 */
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

/* ---- device memory: what a worker holds, what a batch allocates ---- */

/*
 * A run's device memory is ONE stream-ordered allocation, made at the start of the run for
 * exactly its n items and freed at its end (mb_tf_run_alloc(), mb_tf_run_free()), carved into
 * parts: part i is fixed + n * item bytes, starting 256-byte aligned. A network lists its parts
 * (the activations' below, then its own), and one formula turns the list into both the size a
 * run asks for (mb_tf_parts_bytes()) and the figures the service admits by
 * (mb_tf_parts_mem()): the two cannot drift apart. Everything here is host arithmetic, inline
 * so that C code (the bytes API, the unit test, a build without CUDA) shares it.
 *
 * A worker holds, from init to fini: its cuBLAS workspace (MB_TF_BLAS_WS) and, for whisper
 * and clap, its cuFFT work area (its size as cuFFT gives it at load). Not counted anywhere: what
 * cuBLAS and cuFFT keep inside their handles and plans, and kernel code that the driver
 * loads on first use (small; the service's reserve covers it).
 */

/** cuBLAS workspace of every context (NVIDIA's recommendation for Hopper). */
#define MB_TF_BLAS_WS ((uint64_t)32 << 20)
/** Alignment of each part inside a run's allocation (cudaMalloc's own). */
#define MB_TF_ALIGN 256u
/**
 * What the pool may take beyond a request: it maps device memory in pages of the device's
 * allocation granularity (2 MiB on current NVIDIA GPUs), so one allocation of B bytes holds at
 * most B + MB_TF_POOL_GRAIN bytes of the device. Not yet measured on a GPU:
 * tests/gpu/cuda_models_test.c checks the pool's high mark against it, run by run.
 */
#define MB_TF_POOL_GRAIN ((uint64_t)2 << 20)

/** One part of a run's allocation: fixed + n * item bytes. */
struct mb_tf_part {
	uint64_t fixed, item;
};

/* (no compound literals: the header is C++ too) */
static inline struct mb_tf_part
mb_tf_part_of(uint64_t fixed, uint64_t item)
{
	struct mb_tf_part p;

	p.fixed = fixed;
	p.item = item;
	return p;
}

/**
 * A network's device memory on CUDA, in bytes: @c worker held by each worker from init to
 * fini; @c batch + n * @c item taken by a run of n items while it runs (the pool's page
 * included), and given back at its end.
 */
struct mb_tf_mem {
	uint64_t worker, batch, item;
};

/** Bytes a run of @p n items asks the pool for: one allocation holding the @p k parts. */
static inline uint64_t
mb_tf_parts_bytes(const struct mb_tf_part *p, uint32_t k, uint32_t n)
{
	uint64_t b = 0;

	for (uint32_t i = 0; i < k; i++)
		b += p[i].fixed + MB_TF_ALIGN + (uint64_t)n * p[i].item;
	return b;
}

/**
 * The figures of @p k parts for the service: batch = the parts' fixed bytes + MB_TF_ALIGN
 * each + MB_TF_POOL_GRAIN, item = their per-item bytes, worker = @p worker. So
 * mb_tf_parts_bytes(p, k, n) == batch - MB_TF_POOL_GRAIN + n * item for every n.
 */
static inline void
mb_tf_parts_mem(const struct mb_tf_part *p, uint32_t k, uint64_t worker, struct mb_tf_mem *out)
{
	out->worker = worker;
	out->batch = MB_TF_POOL_GRAIN;
	out->item = 0;
	for (uint32_t i = 0; i < k; i++) {
		out->batch += p[i].fixed + MB_TF_ALIGN;
		out->item += p[i].item;
	}
}

/**
 * Where each of the @p k parts of an allocation at @p base for @p n items starts (@p out:
 * k pointers): in order, each 256-byte aligned. Ends within mb_tf_parts_bytes(p, k, n).
 */
static inline void
mb_tf_carve(void *base, const struct mb_tf_part *p, uint32_t k, uint32_t n, void **out)
{
	uintptr_t at = (uintptr_t)base;

	for (uint32_t i = 0; i < k; i++) {
		at = (at + MB_TF_ALIGN - 1) & ~(uintptr_t)(MB_TF_ALIGN - 1);
		out[i] = (void *)at;
		at += (uintptr_t)(p[i].fixed + (uint64_t)n * p[i].item);
	}
}

/** The activations' parts, first in every network's list. */
enum {
	MB_TF_PART_X,	/**< the residual stream, F32 [n*t x d] */
	MB_TF_PART_A,	/**< LayerNorm out, merged heads: prec [n*t x d] */
	MB_TF_PART_Q,	/**< prec [n*heads x t x dh]; o too */
	MB_TF_PART_K,	/**< prec, as q */
	MB_TF_PART_V,	/**< prec, as q */
	MB_TF_PART_BIG, /**< F32: qkv [n*t x 3d], then scores [n*heads x t x t], then MLP hidden
			 * [n*t x ff]; before the blocks, whatever the front end asks for */
	MB_TF_ACT_PARTS
};

/**
 * The activations' parts (see the top of this file) for items of @p t tokens; the big
 * region is at least @p big_fixed + n * @p big_item_min bytes (a network's front end uses it
 * before the blocks). @p p: MB_TF_ACT_PARTS entries.
 */
static inline void
mb_tf_acts_parts(uint32_t t, uint32_t d, uint32_t heads, uint32_t ff, enum mb_tf_prec prec,
		 uint64_t big_fixed, uint64_t big_item_min, struct mb_tf_part *p)
{
	const uint64_t td = (uint64_t)t * d, ps = mb_tf_prec_size(prec);
	uint64_t big = td * 3;

	if ((uint64_t)heads * t * t > big)
		big = (uint64_t)heads * t * t;
	if ((uint64_t)t * ff > big)
		big = (uint64_t)t * ff;
	big *= sizeof(float);
	p[MB_TF_PART_X] = mb_tf_part_of(0, td * sizeof(float));
	p[MB_TF_PART_A] = mb_tf_part_of(0, td * ps);
	p[MB_TF_PART_Q] = p[MB_TF_PART_A];
	p[MB_TF_PART_K] = p[MB_TF_PART_A];
	p[MB_TF_PART_V] = p[MB_TF_PART_A];
	p[MB_TF_PART_BIG] = mb_tf_part_of(big_fixed, big > big_item_min ? big : big_item_min);
}

/** The activations of n items of t tokens (pointers into a run's allocation). */
struct mb_tf_acts {
	uint32_t n, t, d, heads, ff;
	enum mb_tf_prec prec;
	float *x;
	void *a, *q, *k, *v;
	float *big;
	size_t big_bytes;
};

/**
 * Point @p A at the activation parts @p at (mb_tf_carve()'s first MB_TF_ACT_PARTS pointers)
 * of an allocation for @p n items carved from @p p. 0, or negative with @p err for sizes
 * beyond the CUDA path's limits.
 */
int mb_tf_acts_bind(struct mb_tf_acts *A, void *const *at, const struct mb_tf_part *p, uint32_t n,
		    uint32_t t, uint32_t d, uint32_t heads, uint32_t ff, enum mb_tf_prec prec,
		    char *err, size_t err_len);

/**
 * Allocate @p bytes for the current run: cudaMallocFromPoolAsync on the run's stream from the
 * device's pool (one per device, shared by every context on it; its release threshold is
 * UINT64_MAX, so what a run frees stays in the pool for the next run instead of going back to
 * the driver at each synchronisation). Should the pool be out of memory, the pool is trimmed
 * (its free pages go back to the driver) and the allocation tried once more. 0, or negative
 * with @p err.
 */
int mb_tf_run_alloc(struct mb_tf_ctx *c, uint64_t bytes, void **p, char *err, size_t err_len);

/**
 * Free *@p p (NULL accepted; set to NULL) with cudaFreeAsync on the run's stream, after all
 * the work queued on it, then wait for the stream: when it returns 0 the memory is back in
 * the pool (a batch's units may be released). 0, or negative with @p err.
 */
int mb_tf_run_free(struct mb_tf_ctx *c, void **p, char *err, size_t err_len);

/**
 * cudaMalloc(@p p, @p bytes) on the current device @p device, for memory that lives long
 * (weights, workspaces): should the device be out of memory, @p device's pool gives its free
 * pages back first and it is tried once more. The cudaError_t (0: success; *@p p NULL else).
 */
int mb_tf_malloc(int device, void **p, size_t bytes);

/** The pool of CUDA device @p device, as cudaMemPoolGetAttribute reports it. */
struct mb_tf_pool_stats {
	uint64_t reserved, reserved_high; /**< device memory the pool holds; its high mark */
	uint64_t used, used_high;	  /**< of it, allocated to runs; its high mark */
};

/**
 * The pool's figures (perf and tests). With @p reset, first trim the pool to nothing it can
 * give back and reset the high marks. 0, -ENOENT when no context holds a pool on @p device,
 * negative with @p err.
 */
int mb_tf_pool_stats(int device, int reset, struct mb_tf_pool_stats *out, char *err,
		     size_t err_len);

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

/*
 * The attention's pieces one by one, for a network whose attention is not
 * mb_tf_block_forward()'s (clap's windows: each window of each item is a "group" of t tokens,
 * its rows consecutive). The same kernels and GEMMs as the block's, in the context's
 * precision; rows = groups x t.
 */

/**
 * qkv F32 [rows x 3d] + @p bqkv -> @p q, @p k, @p v [groups*heads x t x dh] in the context's
 * precision (the rows grouped by t, as mb_tf_block_forward() does with items of t tokens).
 */
int mb_tf_split_heads(struct mb_tf_ctx *c, const float *qkv, const float *bqkv, size_t rows,
		      uint32_t t, uint32_t d, uint32_t heads, void *q, void *k, void *v, char *err,
		      size_t err_len);

/** @p s F32 [batch x t x t] = @p scale q_b k_b^T, one strided-batched GEMM (q, k as above). */
int mb_tf_attn_scores(struct mb_tf_ctx *c, const void *q, const void *k, uint32_t batch, uint32_t t,
		      uint32_t dh, float scale, float *s, char *err, size_t err_len);

/**
 * @p o [batch x t x dh] = p_b v_b, one strided-batched GEMM: @p p the probabilities in the
 * context's precision written over the start of each F32 row of t scores (row stride t F32:
 * 2t values for the 16-bit types), as a softmax over mb_tf_attn_scores()'s output leaves them.
 */
int mb_tf_attn_apply(struct mb_tf_ctx *c, const float *p, const void *v, uint32_t batch, uint32_t t,
		     uint32_t dh, void *o, char *err, size_t err_len);

/** @p o [groups*heads x t x dh] -> @p a [rows x d], both in the context's precision. */
int mb_tf_merge_heads(struct mb_tf_ctx *c, const void *o, size_t rows, uint32_t t, uint32_t d,
		      uint32_t heads, void *a, char *err, size_t err_len);

/**
 * h F32 [rows x ff]: GELU(h + @p b) (exact erf) written in the context's precision over the
 * start of each row (row stride ff F32: 2ff values for the 16-bit types), ff <= MB_TF_MAX_FF.
 */
int mb_tf_bias_gelu(struct mb_tf_ctx *c, float *h, size_t rows, uint32_t ff, const float *b,
		    char *err, size_t err_len);

/**
 * @p pooled [n x d] F32: the mean over the @p tokens rows of each item of @p x [n*tokens x d]
 * F32, summed in double (as the CPU's), n <= 65535.
 */
int mb_tf_mean_tokens(struct mb_tf_ctx *c, const float *x, uint32_t n, uint32_t tokens, uint32_t d,
		      float *pooled, char *err, size_t err_len);

/* ---- the networks built on it: whisper (cuda_whisper.cu), videomae (cuda_videomae.cu) and
 * clap (cuda_clap.cu, below) ---- */

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

/**
 * One audio item: PCM of @p samples on the host; whisper's (400..480000 samples, out [1500 x d]
 * F32) or clap's (1200..480000, out [proj] F32: mb_cuda_clap_run()).
 */
struct mb_cuda_audio_item {
	const void *payload; /**< host, borrowed for the run */
	uint32_t samples;
	int pcm_s16; /**< 1 PCM_S16LE, 0 PCM_F32LE */
	float *out;  /**< host, borrowed: whisper's 1500 x d floats, clap's proj */
};

struct mb_cuda_whisper;
struct mb_cuda_whisper_worker;

/* Whisper's fixed sizes: 30 s of 16 kHz audio, 3000 mel frames, 1500 positions. */
#define MB_CUDA_WHISPER_N_FFT 400u
#define MB_CUDA_WHISPER_BINS 201u
#define MB_CUDA_WHISPER_PAD 200u
#define MB_CUDA_WHISPER_T 1500u
#define MB_CUDA_WHISPER_FRAMES 3000u
#define MB_CUDA_WHISPER_SAMPLES 480000u
#define MB_CUDA_WHISPER_PADDED (MB_CUDA_WHISPER_SAMPLES + 2 * MB_CUDA_WHISPER_PAD)

/** Whisper's parts of a run's allocation: the activations', then these. */
enum {
	MB_CUDA_WHISPER_PART_PADDED = MB_TF_ACT_PARTS, /**< fixed: one item's padded PCM, F32 */
	MB_CUDA_WHISPER_PART_FRAMES, /**< fixed: its windowed frames [3000 x 400] */
	MB_CUDA_WHISPER_PART_SPEC,   /**< fixed: its spectrum [3000 x 201] complex */
	MB_CUDA_WHISPER_PART_IN,     /**< per item: the PCM (F32 is the wider) */
	MB_CUDA_WHISPER_PART_MEL,    /**< per item: the log-mel [3000 x n_mels] */
	MB_CUDA_WHISPER_PART_MAX,    /**< per item: the log-mel's max, F32 */
	MB_CUDA_WHISPER_PARTS
};

/** Bytes per item of the stem's im2col columns: conv1's [3000 x 3 n_mels] or conv2's [1500 x
 * 3d], whichever is larger, in prec. */
static inline uint64_t
mb_cuda_whisper_col_item(uint32_t d, uint32_t n_mels, enum mb_tf_prec prec)
{
	const uint64_t c1 = (uint64_t)MB_CUDA_WHISPER_FRAMES * 3 * n_mels;
	const uint64_t c2 = (uint64_t)MB_CUDA_WHISPER_T * 3 * d;

	return (c1 > c2 ? c1 : c2) * mb_tf_prec_size(prec);
}

/**
 * Whisper's parts for its sizes and precision (@p p: MB_CUDA_WHISPER_PARTS entries). The big
 * region holds the stem first: n items' im2col columns and after them, 256-byte aligned,
 * conv1's output [n*3000 x d] F32.
 */
static inline void
mb_cuda_whisper_parts(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t n_mels,
		      enum mb_tf_prec prec, struct mb_tf_part *p)
{
	const uint64_t col = mb_cuda_whisper_col_item(d, n_mels, prec);
	const uint64_t h1 = (uint64_t)MB_CUDA_WHISPER_FRAMES * d * sizeof(float);

	mb_tf_acts_parts(MB_CUDA_WHISPER_T, d, heads, ffn, prec, MB_TF_ALIGN, col + h1, p);
	p[MB_CUDA_WHISPER_PART_PADDED] =
		mb_tf_part_of((uint64_t)MB_CUDA_WHISPER_PADDED * sizeof(float), 0);
	p[MB_CUDA_WHISPER_PART_FRAMES] = mb_tf_part_of(
		(uint64_t)MB_CUDA_WHISPER_FRAMES * MB_CUDA_WHISPER_N_FFT * sizeof(float), 0);
	p[MB_CUDA_WHISPER_PART_SPEC] = mb_tf_part_of(
		(uint64_t)MB_CUDA_WHISPER_FRAMES * MB_CUDA_WHISPER_BINS * 2 * sizeof(float), 0);
	p[MB_CUDA_WHISPER_PART_IN] =
		mb_tf_part_of(0, (uint64_t)MB_CUDA_WHISPER_SAMPLES * sizeof(float));
	p[MB_CUDA_WHISPER_PART_MEL] =
		mb_tf_part_of(0, (uint64_t)MB_CUDA_WHISPER_FRAMES * n_mels * sizeof(float));
	p[MB_CUDA_WHISPER_PART_MAX] = mb_tf_part_of(0, sizeof(float));
}

/**
 * Whisper's device memory on CUDA (struct mb_tf_mem): a worker holds MB_TF_BLAS_WS + @p
 * fft_work (its cuFFT work area: mb_cuda_whisper_mem_of() passes the size cuFFT gave at load);
 * a run allocates its parts (mb_cuda_whisper_parts()).
 */
static inline void
mb_cuda_whisper_mem(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t n_mels, enum mb_tf_prec prec,
		    uint64_t fft_work, struct mb_tf_mem *out)
{
	struct mb_tf_part p[MB_CUDA_WHISPER_PARTS];

	mb_cuda_whisper_parts(d, heads, ffn, n_mels, prec, p);
	mb_tf_parts_mem(p, MB_CUDA_WHISPER_PARTS, MB_TF_BLAS_WS + fft_work, out);
}

/** Upload whisper (and size a worker's cuFFT plan). 0, or negative with @p err. Main thread. */
int mb_cuda_whisper_create(const struct mb_cuda_whisper_desc *desc, struct mb_cuda_whisper **out,
			   char *err, size_t err_len);
void mb_cuda_whisper_destroy(struct mb_cuda_whisper **net);
/** Device bytes of the net's weights and tables. */
size_t mb_cuda_whisper_bytes(const struct mb_cuda_whisper *net);
/** mb_cuda_whisper_mem() of the loaded @p net (its sizes, precision, cuFFT work area). */
void mb_cuda_whisper_mem_of(const struct mb_cuda_whisper *net, struct mb_tf_mem *out);

/**
 * A worker: its context (cuBLAS, stream), its cuFFT plan and work area, and pinned host
 * staging that grows to the largest batch it ran and is kept (host memory: no device units).
 * Device memory that depends on the batch is a run's own (mb_cuda_whisper_run()). Worker
 * thread.
 */
int mb_cuda_whisper_worker_create(const struct mb_cuda_whisper *net,
				  struct mb_cuda_whisper_worker **out, char *err, size_t err_len);
void mb_cuda_whisper_worker_destroy(struct mb_cuda_whisper_worker **w);

/**
 * Run @p n items as one batch on @p stream (a cudaStream_t, NULL: the worker's own): one
 * allocation of exactly mb_tf_parts_bytes(parts, n) from the device's pool at the start, freed
 * at the end whatever happened (the stream waited for: the memory is back in the pool when
 * this returns). Every item's out is written when it returns 0. Negative with @p err: the
 * batch failed.
 */
int mb_cuda_whisper_run(const struct mb_cuda_whisper *net, struct mb_cuda_whisper_worker *w,
			const struct mb_cuda_audio_item *items, uint32_t n, void *stream, char *err,
			size_t err_len);

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

/* VideoMAE's fixed sizes: 16 frames of 224 x 224 RGB24, tubelets of 2 x 16 x 16. */
#define MB_CUDA_VIDEOMAE_TOKENS 1568u
#define MB_CUDA_VIDEOMAE_PDIM 1536u
#define MB_CUDA_VIDEOMAE_CLIP_BYTES ((uint64_t)16 * 224 * 224 * 3)

/** VideoMAE's parts of a run's allocation: the activations', then these (all per item). */
enum {
	MB_CUDA_VIDEOMAE_PART_IN = MB_TF_ACT_PARTS, /**< the clip's RGB24 bytes */
	MB_CUDA_VIDEOMAE_PART_POOLED,		    /**< mean over the tokens [d] F32 */
	MB_CUDA_VIDEOMAE_PART_NORM,		    /**< fc_norm's output [d] F32 */
	MB_CUDA_VIDEOMAE_PART_LOGITS,		    /**< [classes] F32 */
	MB_CUDA_VIDEOMAE_PARTS
};

/**
 * VideoMAE's parts (@p p: MB_CUDA_VIDEOMAE_PARTS entries). The big region holds the tubelet
 * columns [1568 x 1536] in prec before the blocks.
 */
static inline void
mb_cuda_videomae_parts(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t classes,
		       enum mb_tf_prec prec, struct mb_tf_part *p)
{
	const uint64_t col =
		(uint64_t)MB_CUDA_VIDEOMAE_TOKENS * MB_CUDA_VIDEOMAE_PDIM * mb_tf_prec_size(prec);

	mb_tf_acts_parts(MB_CUDA_VIDEOMAE_TOKENS, d, heads, ffn, prec, 0, col, p);
	p[MB_CUDA_VIDEOMAE_PART_IN] = mb_tf_part_of(0, MB_CUDA_VIDEOMAE_CLIP_BYTES);
	p[MB_CUDA_VIDEOMAE_PART_POOLED] = mb_tf_part_of(0, (uint64_t)d * sizeof(float));
	p[MB_CUDA_VIDEOMAE_PART_NORM] = p[MB_CUDA_VIDEOMAE_PART_POOLED];
	p[MB_CUDA_VIDEOMAE_PART_LOGITS] = mb_tf_part_of(0, (uint64_t)classes * sizeof(float));
}

/** VideoMAE's device memory on CUDA: a worker holds MB_TF_BLAS_WS; a run, its parts. */
static inline void
mb_cuda_videomae_mem(uint32_t d, uint32_t heads, uint32_t ffn, uint32_t classes,
		     enum mb_tf_prec prec, struct mb_tf_mem *out)
{
	struct mb_tf_part p[MB_CUDA_VIDEOMAE_PARTS];

	mb_cuda_videomae_parts(d, heads, ffn, classes, prec, p);
	mb_tf_parts_mem(p, MB_CUDA_VIDEOMAE_PARTS, MB_TF_BLAS_WS, out);
}

struct mb_cuda_videomae;
struct mb_cuda_videomae_worker;

int mb_cuda_videomae_create(const struct mb_cuda_videomae_desc *desc, struct mb_cuda_videomae **out,
			    char *err, size_t err_len);
void mb_cuda_videomae_destroy(struct mb_cuda_videomae **net);
size_t mb_cuda_videomae_bytes(const struct mb_cuda_videomae *net);
/** mb_cuda_videomae_mem() of the loaded @p net. */
void mb_cuda_videomae_mem_of(const struct mb_cuda_videomae *net, struct mb_tf_mem *out);
/** A worker: its context and its pinned staging (grown to the largest batch, kept). */
int mb_cuda_videomae_worker_create(const struct mb_cuda_videomae *net,
				   struct mb_cuda_videomae_worker **out, char *err, size_t err_len);
void mb_cuda_videomae_worker_destroy(struct mb_cuda_videomae_worker **w);

/**
 * The logits of @p n clips (each 16 x 224 x 224 RGB24 on the host, borrowed for the run) as
 * one batch on @p stream (NULL: the worker's own), in one allocation of exactly
 * mb_tf_parts_bytes(parts, n) from the device's pool, freed before it returns (as whisper's):
 * *@p logits [n x classes] F32, in the worker's pinned memory, valid until its next run. 0, or
 * negative with @p err.
 */
int mb_cuda_videomae_run(const struct mb_cuda_videomae *net, struct mb_cuda_videomae_worker *w,
			 const uint8_t *const *clips, uint32_t n, void *stream,
			 const float **logits, char *err, size_t err_len);

/* ---- clap: CLAP's audio tower, HTSAT (cuda_clap.cu) ---- */

/* clap's fixed sizes: 10 s of 48 kHz audio, a centred STFT of 1024 points, hop 480. */
#define MB_CUDA_CLAP_N_FFT 1024u
#define MB_CUDA_CLAP_BINS 513u
#define MB_CUDA_CLAP_HOP 480u
#define MB_CUDA_CLAP_SAMPLES 480000u
#define MB_CUDA_CLAP_MIN_SAMPLES 1200u
#define MB_CUDA_CLAP_FRAMES 1001u
#define MB_CUDA_CLAP_PADDED (MB_CUDA_CLAP_SAMPLES + MB_CUDA_CLAP_N_FFT)
/** The most Swin stages (clap_internal.h's MB_CLAP_MAX_STAGES). */
#define MB_CUDA_CLAP_MAX_STAGES 8u
/** The widest window side: the window softmax holds a row of window^2 <= 1024 scores. */
#define MB_CUDA_CLAP_MAX_WINDOW 32u

/** A clap's sizes (clap_internal.h's struct mb_clap_dims, less what the CUDA path ignores). */
struct mb_cuda_clap_sizes {
	uint32_t embed, stages; /**< stage 0's width E (stage s: E << s); len(depths) */
	uint32_t depths[MB_CUDA_CLAP_MAX_STAGES], heads[MB_CUDA_CLAP_MAX_STAGES];
	uint32_t ff[MB_CUDA_CLAP_MAX_STAGES]; /**< each stage's MLP width */
	uint32_t window, patch, stride;	      /**< window_size, patch_size, patch_stride */
	uint32_t spec, mels, proj;	      /**< spec_size, mel bins, projection_dim */
};

/** One Swin block on the host (F32, PyTorch layout, borrowed for the create call). */
struct mb_cuda_swin_host {
	struct mb_tf_block_host tf; /**< d, heads, ff, eps, LayerNorms, q/k/v/o, the MLP */
	const float *bias;	    /**< [heads x N x N], N = window^2: mb_nn_swin_bias()'s */
	uint32_t shift;		    /**< the cyclic shift: 0 or window / 2 */
};

/** One patch merging on the host: LayerNorm over 4d (eps 1e-5), then 4d -> 2d, no bias. */
struct mb_cuda_clap_merge_host {
	const float *ln_g, *ln_b; /**< [4d] */
	const float *red;	  /**< [2d x 4d] */
};

/** clap's audio tower: sizes and host tables and tensors (borrowed for the create call). */
struct mb_cuda_clap_desc {
	int device;
	enum mb_tf_prec prec;
	struct mb_cuda_clap_sizes z;
	/* the front end, as clap.c keeps it (double precision) */
	const double *hann;		   /**< [1024] periodic Hann */
	const double *filters;		   /**< [mels x 513], dense */
	const uint32_t *lo, *hi;	   /**< [mels]: each filter's non-zero bins */
	const double *bn_scale, *bn_shift; /**< [mels]: batch_norm folded */
	const int32_t *src; /**< [spec x spec / mels]: mel2img's first source frame */
	const double *coef; /**< [spec x spec / mels][4]: its bicubic weights */
	/* the encoder */
	const float *pe_w, *pe_b;		      /**< patch_embed.proj: [E x patch^2], [E] */
	const float *pe_g, *pe_nb;		      /**< patch_embed.norm (eps 1e-5) */
	const struct mb_cuda_swin_host *blocks;	      /**< sum(depths), stage by stage */
	const struct mb_cuda_clap_merge_host *merges; /**< [stages - 1] */
	const float *norm_g, *norm_b;		      /**< the final LayerNorm (eps 1e-5) */
	const float *l1_w, *l1_b, *l2_w, *l2_b;	      /**< the projection */
};

/** clap's parts of a run's allocation: the activations', then these. */
enum {
	MB_CUDA_CLAP_PART_PADDED = MB_TF_ACT_PARTS, /**< fixed: one item's padded PCM, F32 */
	MB_CUDA_CLAP_PART_FRAMES, /**< fixed: its windowed frames [1001 x 1024], double */
	MB_CUDA_CLAP_PART_SPEC,	  /**< fixed: its spectrum [1001 x 513], complex double */
	MB_CUDA_CLAP_PART_MEL,	  /**< fixed: its log-mel [1001 x mels], F32 */
	MB_CUDA_CLAP_PART_IMG,	  /**< fixed: its image [spec x spec], F32 */
	MB_CUDA_CLAP_PART_IN,	  /**< per item: the PCM (F32 is the wider) */
	MB_CUDA_CLAP_PART_POOLED, /**< per item: the mean over the tokens [hidden] F32 */
	MB_CUDA_CLAP_PART_H1,	  /**< per item: the projection's hidden [proj] F32 */
	MB_CUDA_CLAP_PART_EMB,	  /**< per item: the embedding [proj] F32 */
	MB_CUDA_CLAP_PARTS
};

/**
 * The big region's bytes per item: the widest of every stage's fused projection [t x 3d],
 * scores [heads x t x window^2] and MLP hidden [t x ff] (F32; t the stage's tokens, d its
 * width), and the patch embedding's im2col columns [grid^2 x patch^2] in prec.
 */
static inline uint64_t
mb_cuda_clap_big_item(const struct mb_cuda_clap_sizes *z, enum mb_tf_prec prec)
{
	const uint64_t g = z->spec / z->stride, nt = (uint64_t)z->window * z->window;
	uint64_t floats = 0, col = g * g * z->patch * z->patch * mb_tf_prec_size(prec);

	for (uint32_t s = 0; s < z->stages; s++) {
		const uint64_t res = g >> s, t = res * res, d = (uint64_t)z->embed << s;
		const uint64_t need[3] = {t * 3 * d, t * z->heads[s] * nt, t * z->ff[s]};

		for (int i = 0; i < 3; i++)
			floats = need[i] > floats ? need[i] : floats;
	}
	return floats * sizeof(float) > col ? floats * sizeof(float) : col;
}

/**
 * clap's parts for its sizes and precision (@p p: MB_CUDA_CLAP_PARTS entries). The
 * activations are sized for stage 0, the widest (stage s has a quarter of stage s - 1's
 * tokens and twice its width): x F32 and a, q, k, v in prec, each [grid^2 x E] per item.
 */
static inline void
mb_cuda_clap_parts(const struct mb_cuda_clap_sizes *z, enum mb_tf_prec prec, struct mb_tf_part *p)
{
	const uint64_t g = z->spec / z->stride, act = g * g * z->embed, ps = mb_tf_prec_size(prec);
	const uint64_t hidden = (uint64_t)z->embed << (z->stages - 1);

	p[MB_TF_PART_X] = mb_tf_part_of(0, act * sizeof(float));
	p[MB_TF_PART_A] = mb_tf_part_of(0, act * ps);
	p[MB_TF_PART_Q] = p[MB_TF_PART_A];
	p[MB_TF_PART_K] = p[MB_TF_PART_A];
	p[MB_TF_PART_V] = p[MB_TF_PART_A];
	p[MB_TF_PART_BIG] = mb_tf_part_of(0, mb_cuda_clap_big_item(z, prec));
	p[MB_CUDA_CLAP_PART_PADDED] =
		mb_tf_part_of((uint64_t)MB_CUDA_CLAP_PADDED * sizeof(float), 0);
	p[MB_CUDA_CLAP_PART_FRAMES] = mb_tf_part_of(
		(uint64_t)MB_CUDA_CLAP_FRAMES * MB_CUDA_CLAP_N_FFT * sizeof(double), 0);
	p[MB_CUDA_CLAP_PART_SPEC] = mb_tf_part_of(
		(uint64_t)MB_CUDA_CLAP_FRAMES * MB_CUDA_CLAP_BINS * 2 * sizeof(double), 0);
	p[MB_CUDA_CLAP_PART_MEL] =
		mb_tf_part_of((uint64_t)MB_CUDA_CLAP_FRAMES * z->mels * sizeof(float), 0);
	p[MB_CUDA_CLAP_PART_IMG] = mb_tf_part_of((uint64_t)z->spec * z->spec * sizeof(float), 0);
	p[MB_CUDA_CLAP_PART_IN] = mb_tf_part_of(0, (uint64_t)MB_CUDA_CLAP_SAMPLES * sizeof(float));
	p[MB_CUDA_CLAP_PART_POOLED] = mb_tf_part_of(0, hidden * sizeof(float));
	p[MB_CUDA_CLAP_PART_H1] = mb_tf_part_of(0, (uint64_t)z->proj * sizeof(float));
	p[MB_CUDA_CLAP_PART_EMB] = p[MB_CUDA_CLAP_PART_H1];
}

/**
 * clap's device memory on CUDA: a worker holds MB_TF_BLAS_WS + @p fft_work (its cuFFT work
 * area, as cuFFT sized it at load: mb_cuda_clap_mem_of()); a run allocates its parts
 * (mb_cuda_clap_parts()).
 */
static inline void
mb_cuda_clap_mem(const struct mb_cuda_clap_sizes *z, enum mb_tf_prec prec, uint64_t fft_work,
		 struct mb_tf_mem *out)
{
	struct mb_tf_part p[MB_CUDA_CLAP_PARTS];

	mb_cuda_clap_parts(z, prec, p);
	mb_tf_parts_mem(p, MB_CUDA_CLAP_PARTS, MB_TF_BLAS_WS + fft_work, out);
}

struct mb_cuda_clap;
struct mb_cuda_clap_worker;

/** Upload clap (and size a worker's cuFFT plan). 0, or negative with @p err. Main thread. */
int mb_cuda_clap_create(const struct mb_cuda_clap_desc *desc, struct mb_cuda_clap **out, char *err,
			size_t err_len);
void mb_cuda_clap_destroy(struct mb_cuda_clap **net);
/** Device bytes of the net's weights and tables. */
size_t mb_cuda_clap_bytes(const struct mb_cuda_clap *net);
/** mb_cuda_clap_mem() of the loaded @p net (its sizes, precision, cuFFT work area). */
void mb_cuda_clap_mem_of(const struct mb_cuda_clap *net, struct mb_tf_mem *out);

/**
 * A worker: its context (cuBLAS, stream), its cuFFT plan (double precision) and work area,
 * and pinned host staging grown to the largest batch it ran and kept. Worker thread.
 */
int mb_cuda_clap_worker_create(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker **out,
			       char *err, size_t err_len);
void mb_cuda_clap_worker_destroy(struct mb_cuda_clap_worker **w);

/**
 * The embeddings of @p n items as one batch on @p stream (NULL: the worker's own), each item
 * PCM at 48 kHz of MB_CUDA_CLAP_MIN_SAMPLES..MB_CUDA_CLAP_SAMPLES samples (struct
 * mb_cuda_audio_item; its out: [proj] floats on the host), in one allocation of exactly
 * mb_tf_parts_bytes(parts, n) from the device's pool, freed before it returns (as
 * whisper's). Every item's out is written when it returns 0; negative with @p err: the batch
 * failed.
 */
int mb_cuda_clap_run(const struct mb_cuda_clap *net, struct mb_cuda_clap_worker *w,
		     const struct mb_cuda_audio_item *items, uint32_t n, void *stream, char *err,
		     size_t err_len);

/* Perf only: every GEMM goes through one function that, while mb_cuda_gemm_record() is on,
 * adds its shape to the list mb_cuda_gemm_take() returns (cuda_nets_internal.h). */

#ifdef __cplusplus
}
#endif

#endif /* MB_CUDA_TF_INTERNAL_H */
