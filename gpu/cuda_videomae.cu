/*
 * cuda_videomae.cu: VideoMAE video classification on a CUDA device, step for step as
 * videomae.c computes it on the CPU (see there), on the transformer module
 * (cuda_tf_internal.h).
 *
 *   upload      each clip's RGB24 bytes through pinned memory (the host stages clip i + 1
 *               while the device works on clip i)
 *   tubelets    im2col of the conv3d (kernel = stride = 2 x 16 x 16) through the
 *               normalisation table: [n*1568 x 1536] in the GEMM precision, the columns in
 *               the weight's [3][2][16][16] order, the tokens in (t, y, x) order
 *   embed       one GEMM over every clip -> x [n*1568 x d], + bias + the sinusoid table
 *   encoder     layers x mb_tf_block_forward
 *   head        mean over the 1568 tokens (double sums, as the CPU), fc_norm (LayerNorm,
 *               eps 1e-5) and the classifier d -> classes, both in F32 (the classifier's
 *               weight is kept in F32 whatever the precision: n x d x classes MACs, nothing
 *               beside the encoder, and the logits lose no bits to it)
 *   logits      downloaded through pinned memory; softmax and top-k on the host
 *               (mb_videomae_topk(), by the caller), or the logits themselves for a window part.
 *
 * The tubelet columns live in the activations' big region (the blocks have not started).
 *
 * Memory: a run's device buffers (activations, the clips, the pooled, normalised and logit
 * vectors) are one allocation for exactly its n items from the device's pool, made on the
 * run's stream at its start and freed on it at its end (mb_cuda_videomae_parts(): the same
 * list gives the service its figures). A worker (struct mb_tf_worker, cuda_common_internal.h)
 * keeps its context (cuBLAS workspace) and pinned host staging, grown to its largest batch and
 * kept.
 *
 * Owns: the net's store; a worker's context and pinned buffers; a run's allocation for the
 * run. Threads: create/destroy a net on the main thread; a worker and its runs on its thread.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda_check_internal.h"
#include "cuda_common_internal.h"
#include "cuda_tf_internal.h"

#define F 16
#define S_PX 224
#define TT 2
#define P 16
#define GRID (S_PX / P)
#define TOKENS MB_CUDA_VIDEOMAE_TOKENS
#define PDIM MB_CUDA_VIDEOMAE_PDIM
#define CLIP_BYTES ((size_t)MB_CUDA_VIDEOMAE_CLIP_BYTES)
#define FC_NORM_EPS 1e-5f

struct mb_cuda_videomae {
	struct mb_tf_store *store;
	uint32_t d, layers, heads, ffn, classes;
	const void *emb_w; /* [d x 1536] in the precision */
	const void *cls_w; /* [classes x d] F32 */
	const float *emb_b, *pos, *lut, *fcn_g, *fcn_b, *cls_b;
	struct mb_tf_block *blocks;
};

static_assert(TOKENS == (F / TT) * (S_PX / P) * (S_PX / P) && PDIM == 3 * TT * P * P &&
		      CLIP_BYTES == (size_t)F * S_PX * S_PX * 3,
	      "videomae's sizes");

struct mb_cuda_videomae_worker {
	struct mb_tf_worker tf; /* pin_in: slots of a clip; pin_out: slots of [classes] */
};

namespace
{

/* col [TOKENS x PDIM] of one clip: col[token][((c * 2 + dt) * 16 + dy) * 16 + dx] */
template <typename S>
__global__ void
tubelets(const uint8_t *rgb, const float *lut, S *col)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t tok, w, t, gy, gx, c, dt, dy, dx;
	size_t px;

	if (i >= (size_t)TOKENS * PDIM)
		return;
	tok = (uint32_t)(i / PDIM);
	w = (uint32_t)(i % PDIM);
	t = tok / (GRID * GRID);
	gy = tok / GRID % GRID;
	gx = tok % GRID;
	c = w / (TT * P * P);
	dt = w / (P * P) % TT;
	dy = w / P % P;
	dx = w % P;
	px = (((size_t)(t * TT + dt) * S_PX + gy * P + dy) * S_PX + gx * P + dx) * 3 + c;
	col[i] = to_s<S>(lut[c * 256 + rgb[px]]);
}

} /* namespace */

/* ---- the net ---- */

extern "C" void
mb_cuda_videomae_destroy(struct mb_cuda_videomae **np)
{
	if (np == NULL || *np == NULL)
		return;
	mb_tf_store_destroy(&(*np)->store);
	free((*np)->blocks);
	delete *np;
	*np = NULL;
}

extern "C" size_t
mb_cuda_videomae_bytes(const struct mb_cuda_videomae *net)
{
	return mb_tf_store_bytes(net->store);
}

static int
upload(struct mb_cuda_videomae *v, const struct mb_cuda_videomae_desc *d, char *err, size_t err_len)
{
	const uint32_t emb_rows[1] = {d->d}, cls_rows[1] = {d->classes};
	int rc;

	if ((rc = mb_tf_store_create(d->device, d->prec, &v->store, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(v->store, &d->emb_w, emb_rows, 1, PDIM, -1, &v->emb_w, err,
				     err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(v->store, &d->cls_w, cls_rows, 1, d->d, MB_TF_F32, &v->cls_w,
				     err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(v->store, d->emb_b, d->d, &v->emb_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(v->store, d->pos, (size_t)TOKENS * d->d, &v->pos, err, err_len)) <
		    0 ||
	    (rc = mb_tf_store_f32(v->store, d->lut, 3 * 256, &v->lut, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(v->store, d->fcn_g, d->d, &v->fcn_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(v->store, d->fcn_b, d->d, &v->fcn_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(v->store, d->cls_b, d->classes, &v->cls_b, err, err_len)) < 0)
		return rc;
	for (uint32_t i = 0; i < d->layers; i++)
		if ((rc = mb_tf_block_upload(v->store, &d->blocks[i], &v->blocks[i], err,
					     err_len)) < 0)
			return rc;
	return 0;
}

extern "C" int
mb_cuda_videomae_create(const struct mb_cuda_videomae_desc *d, struct mb_cuda_videomae **out,
			char *err, size_t err_len)
{
	struct mb_cuda_videomae *v;
	int rc;

	*out = NULL;
	if (d->layers == 0 || d->classes == 0) {
		seterr(err, err_len, "videomae of %u layers and %u classes", d->layers, d->classes);
		return -1;
	}
	v = new (std::nothrow) mb_cuda_videomae();
	if (v == NULL ||
	    (v->blocks = (struct mb_tf_block *)calloc(d->layers, sizeof(*v->blocks))) == NULL) {
		delete v;
		seterr(err, err_len, "out of memory");
		return -1;
	}
	v->d = d->d;
	v->layers = d->layers;
	v->heads = d->heads;
	v->ffn = d->ffn;
	v->classes = d->classes;
	if ((rc = upload(v, d, err, err_len)) < 0) {
		mb_cuda_videomae_destroy(&v);
		return rc;
	}
	*out = v;
	return 0;
}

/* ---- a worker ---- */

extern "C" void
mb_cuda_videomae_mem_of(const struct mb_cuda_videomae *net, struct mb_tf_mem *out)
{
	mb_cuda_videomae_mem(net->d, net->heads, net->ffn, net->classes,
			     mb_tf_store_prec(net->store), out);
}

extern "C" void
mb_cuda_videomae_worker_destroy(struct mb_cuda_videomae_worker **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	mb_tf_worker_fini(&(*wp)->tf);
	delete *wp;
	*wp = NULL;
}

extern "C" int
mb_cuda_videomae_worker_create(const struct mb_cuda_videomae *net,
			       struct mb_cuda_videomae_worker **out, char *err, size_t err_len)
{
	struct mb_cuda_videomae_worker *w = new (std::nothrow) mb_cuda_videomae_worker();
	int rc;

	*out = NULL;
	if (w == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	if ((rc = mb_tf_worker_init(&w->tf, net->store, err, err_len)) < 0) {
		mb_cuda_videomae_worker_destroy(&w);
		return rc;
	}
	*out = w;
	return 0;
}

/* The batch on the run's allocation at @p base (carved from @p parts); all queued on @p s,
 * the logits in tf.pin_out once the stream is done. */
static int
run_batch(const struct mb_cuda_videomae *net, struct mb_cuda_videomae_worker *w,
	  const uint8_t *const *clips, uint32_t n, const struct mb_tf_part *parts, void *base,
	  cudaStream_t s, char *err, size_t err_len)
{
	const uint32_t d = net->d;
	struct mb_tf_ctx *ctx = w->tf.ctx;
	const enum mb_tf_prec prec = mb_tf_ctx_prec(ctx);
	const size_t rows = (size_t)n * TOKENS, per_col = (size_t)TOKENS * PDIM;
	void *at[MB_CUDA_VIDEOMAE_PARTS];
	struct mb_tf_acts acts, *A = &acts;
	uint8_t *d_in;
	float *pooled, *norm, *logits;
	int rc;

	mb_tf_carve(base, parts, MB_CUDA_VIDEOMAE_PARTS, n, at);
	if ((rc = mb_tf_acts_bind(A, at, parts, n, TOKENS, d, net->heads, net->ffn, prec, err,
				  err_len)) < 0)
		return rc;
	d_in = (uint8_t *)at[MB_CUDA_VIDEOMAE_PART_IN];
	pooled = (float *)at[MB_CUDA_VIDEOMAE_PART_POOLED];
	norm = (float *)at[MB_CUDA_VIDEOMAE_PART_NORM];
	logits = (float *)at[MB_CUDA_VIDEOMAE_PART_LOGITS];

	/* each clip: staged, uploaded, its tubelets into big (in the precision) */
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *pin = (uint8_t *)w->tf.pin_in + i * CLIP_BYTES;
		uint8_t *dev = d_in + i * CLIP_BYTES;

		memcpy(pin, clips[i], CLIP_BYTES);
		CUDA_OK(cudaMemcpyAsync(dev, pin, CLIP_BYTES, cudaMemcpyHostToDevice, s));
		WITH_S(prec, tubelets<S><<<grid_of(per_col), THREADS, 0, s>>>(
				     dev, net->lut, (S *)A->big + i * per_col));
		CUDA_OK(cudaGetLastError());
	}

	/* embedding: one GEMM, + bias + positions */
	if ((rc = mb_tf_linear(ctx, (uint32_t)rows, d, PDIM, A->big, PDIM, prec, net->emb_w, prec,
			       1.0f, 0.0f, A->x, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, A->x, rows, d, net->emb_b, 0, net->pos, TOKENS, err,
				 err_len)) < 0)
		return rc;
	for (uint32_t l = 0; l < net->layers; l++)
		if ((rc = mb_tf_block_forward(ctx, &net->blocks[l], A, n, err, err_len)) < 0)
			return rc;

	/* head, F32: mean, fc_norm, classifier */
	if ((rc = mb_tf_mean_tokens(ctx, A->x, n, TOKENS, d, pooled, err, err_len)) < 0 ||
	    (rc = mb_tf_layernorm(ctx, pooled, n, d, net->fcn_g, net->fcn_b, FC_NORM_EPS, norm, 1,
				  err, err_len)) < 0 ||
	    (rc = mb_tf_linear(ctx, n, net->classes, d, norm, d, MB_TF_F32, net->cls_w, MB_TF_F32,
			       1.0f, 0.0f, logits, net->classes, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(ctx, logits, n, net->classes, net->cls_b, 0, NULL, 0, err,
				 err_len)) < 0)
		return rc;
	CUDA_OK(cudaMemcpyAsync(w->tf.pin_out, logits, (size_t)n * net->classes * sizeof(float),
				cudaMemcpyDeviceToHost, s));
	return 0;
}

extern "C" int
mb_cuda_videomae_run(const struct mb_cuda_videomae *net, struct mb_cuda_videomae_worker *w,
		     const uint8_t *const *clips, uint32_t n, void *stream, const float **logits,
		     char *err, size_t err_len)
{
	struct mb_tf_part parts[MB_CUDA_VIDEOMAE_PARTS];
	void *base;
	int rc;

	*logits = NULL;
	if (n == 0)
		return 0;
	mb_cuda_videomae_parts(net->d, net->heads, net->ffn, net->classes,
			       mb_tf_ctx_prec(w->tf.ctx), parts);
	if ((rc = mb_tf_worker_begin(&w->tf, stream, n, CLIP_BYTES, net->classes, parts,
				     MB_CUDA_VIDEOMAE_PARTS, &base, err, err_len)) < 0)
		return rc;
	rc = run_batch(net, w, clips, n, parts, base, (cudaStream_t)mb_tf_ctx_stream(w->tf.ctx),
		       err, err_len);
	/* the logits' download is waited for with the free */
	if ((rc = mb_tf_worker_end(&w->tf, &base, rc, err, err_len)) < 0)
		return rc;
	*logits = w->tf.pin_out;
	return 0;
}
