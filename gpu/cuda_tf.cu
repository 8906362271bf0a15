/*
 * cuda_tf.cu: the pre-LayerNorm transformer encoder on a CUDA device (cuda_tf_internal.h):
 * the weights' upload into a store, a worker's context (cuBLAS handle, workspace, stream),
 * the device memory of a run (one stream-ordered allocation from a pool per device), the
 * activations of a batch, one block's forward, and the kernels it and the networks' front
 * ends and heads share; and what the networks' workers share (struct mb_tf_worker,
 * cuda_common_internal.h: the context, a cuFFT plan and its work area, pinned staging, the
 * begin and end of a run).
 *
 * GEMMs: cublasGemmEx / cublasGemmStridedBatchedEx, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT,
 * math mode CUBLAS_DEFAULT_MATH with reduced-precision reductions disallowed: tensor cores
 * for F16 and BF16 inputs, plain FMA for F32 ones (TF32 is never enabled). Row-major
 * products are computed as their column-major transposes (Y^T = W X^T: "TN", the layout
 * cuBLAS serves best).
 *
 * Kernels: elementwise ones use one thread per value; the row ones (LayerNorm, softmax,
 * bias + GELU) one block per row, the row held in registers, reductions by warp shuffles.
 * Softmax and GELU write their output in the GEMM precision over the start of their own F32
 * row (a row's block has read the whole row before the first write), so the probabilities
 * and the MLP hidden need no second buffer; the next GEMM reads them with a row stride of
 * twice the row length for the 16-bit types.
 *
 * Memory pools: one per device (cudaMemPoolCreate), made when the first context on the device
 * is, destroyed when the last one is, shared by every network's workers there. Its release
 * threshold is UINT64_MAX: what a run frees stays mapped in the pool and the next run reuses
 * it, instead of the driver unmapping it at the run's closing synchronisation and mapping it
 * again for the next one. That is safe under the service's admission: a run frees its
 * allocation and waits for the free before it returns (mb_tf_run_free()), while its batch
 * still holds its device units, so the memory in use never exceeds what the admitted batches
 * hold. What the pool keeps beyond that is free pages (freed runs of another size need not fit
 * the next request), and those never stand in the way: should a request, or a cudaMalloc of
 * ours (weights, workspaces: mb_tf_malloc()), find the device out of memory, the pool gives
 * its free pages back (cudaMemPoolTrimTo) and the request is tried once more. In steady state
 * the pool holds the largest set of batches ever admitted at once and maps nothing new.
 *
 * Owns: a store's allocations; a context's handle, stream and workspace; a worker's context,
 * plan, work area and pinned staging; the pools. A run's allocation is its caller's, from
 * mb_tf_run_alloc() (mb_tf_worker_begin()) to mb_tf_run_free() (mb_tf_worker_end()). Threads:
 * see the headers; the pools' table is behind a mutex.
 */
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_check_internal.h"
#include "cuda_common_internal.h"
#include "cuda_nets_internal.h"
#include "cuda_tf_internal.h"

/* row kernels: threads per block and values per thread (the MB_TF_MAX_* limits; LayerNorm's
 * LN_THREADS and LN_PER are cuda_common_internal.h's) */
#define SM_THREADS 256
#define SM_PER (MB_TF_MAX_T / SM_THREADS)
#define GELU_THREADS 256
#define GELU_PER (MB_TF_MAX_FF / GELU_THREADS)
/* the mean over the tokens: a block is 32 columns x POOL_Y rows of partial sums */
#define POOL_Y 16
#define BLAS_WS ((size_t)MB_TF_BLAS_WS)
/* devices a process may hold pools on (CUDA ordinals) */
#define MAX_DEVICES 64

/* ---- types ---- */

extern "C" const char *
mb_tf_prec_name(enum mb_tf_prec p)
{
	switch (p) {
	case MB_TF_F16:
		return "f16";
	case MB_TF_BF16:
		return "bf16";
	default:
		return "f32";
	}
}

static cudaDataType_t
dtype(enum mb_tf_prec p)
{
	return p == MB_TF_F16 ? CUDA_R_16F : p == MB_TF_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

namespace
{

__device__ __forceinline__ float
gelu(float v)
{
	return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
}

/* ---- kernels ---- */

template <typename S>
__global__ void
convert(const float *in, size_t n, S *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		out[i] = to_s<S>(in[i]);
}

/* one block per row of d: y = (x - mean) / sqrt(var + eps) * g + b, row stride ldy */
template <typename S>
__global__ void
__launch_bounds__(LN_THREADS) ln_rows(const float *x, uint32_t d, const float *g, const float *b,
				      float eps, S *y, uint32_t ldy)
{
	__shared__ float sh[32];

	ln_row<S>(x + (size_t)blockIdx.x * d, d, g, b, eps, y + (size_t)blockIdx.x * ldy, sh);
}

/* one block per row of cols F32 scores: softmax, written in S over the row's start */
template <typename S>
__global__ void
__launch_bounds__(SM_THREADS) softmax_rows(float *s, uint32_t cols)
{
	__shared__ float sh[32];
	float *row = s + (size_t)blockIdx.x * cols;
	S *out = reinterpret_cast<S *>(row);
	float v[SM_PER], m = -INFINITY, sum = 0.0f, inv;

#pragma unroll
	for (int i = 0; i < SM_PER; i++) {
		uint32_t c = threadIdx.x + i * SM_THREADS;

		v[i] = c < cols ? row[c] : -INFINITY;
		m = fmaxf(m, v[i]);
	}
	m = block_max<SM_THREADS>(m, sh); /* every read of the row is done past this point */
#pragma unroll
	for (int i = 0; i < SM_PER; i++) {
		uint32_t c = threadIdx.x + i * SM_THREADS;

		if (c < cols) {
			v[i] = expf(v[i] - m);
			sum += v[i];
		}
	}
	inv = 1.0f / block_sum<SM_THREADS>(sum, sh);
#pragma unroll
	for (int i = 0; i < SM_PER; i++) {
		uint32_t c = threadIdx.x + i * SM_THREADS;

		if (c < cols)
			out[c] = to_s<S>(v[i] * inv);
	}
}

/* one block per row of cols F32: GELU(h + b), written in S over the row's start */
template <typename S>
__global__ void
__launch_bounds__(GELU_THREADS) bias_gelu_rows(float *h, uint32_t cols, const float *b)
{
	float *row = h + (size_t)blockIdx.x * cols;
	S *out = reinterpret_cast<S *>(row);
	float v[GELU_PER];

#pragma unroll
	for (int i = 0; i < GELU_PER; i++) {
		uint32_t c = threadIdx.x + i * GELU_THREADS;

		v[i] = c < cols ? gelu(row[c] + b[c]) : 0.0f;
	}
	__syncthreads(); /* the whole row is read before any of it is written */
#pragma unroll
	for (int i = 0; i < GELU_PER; i++) {
		uint32_t c = threadIdx.x + i * GELU_THREADS;

		if (c < cols)
			out[c] = to_s<S>(v[i]);
	}
}

/* qkv [rows x 3d] F32 + bqkv -> q, k, v [items*heads x t x dh] in S */
template <typename S>
__global__ void
split_heads(const float *qkv, const float *bqkv, size_t rows, uint32_t t, uint32_t d, uint32_t dh,
	    S *q, S *k, S *v)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t w = 3 * d, heads = d / dh;
	size_t r, item, tok;
	uint32_t col, part, cc;
	S *dst;

	if (i >= rows * w)
		return;
	r = i / w;
	col = (uint32_t)(i % w);
	part = col / d;
	cc = col % d;
	item = r / t;
	tok = r % t;
	dst = part == 0 ? q : part == 1 ? k : v;
	dst[((item * heads + cc / dh) * t + tok) * dh + cc % dh] = to_s<S>(qkv[i] + bqkv[col]);
}

/* o [items*heads x t x dh] -> a [rows x d], both S */
template <typename S>
__global__ void
merge_heads(const S *o, size_t rows, uint32_t t, uint32_t d, uint32_t dh, S *a)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t heads = d / dh;
	size_t r, item, tok;
	uint32_t c;

	if (i >= rows * d)
		return;
	r = i / d;
	c = (uint32_t)(i % d);
	item = r / t;
	tok = r % t;
	a[i] = o[((item * heads + c / dh) * t + tok) * dh + c % dh];
}

/* x[r][c] = act(x[r][c] + bias[c]) + pos[r % pos_rows][c] */
__global__ void
bias_act(float *x, size_t rows, uint32_t cols, const float *bias, int act, const float *pos,
	 uint32_t pos_rows)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	uint32_t c;
	float v;

	if (i >= rows * cols)
		return;
	c = (uint32_t)(i % cols);
	v = x[i];
	if (bias != NULL)
		v += bias[c];
	if (act)
		v = gelu(v);
	if (pos != NULL)
		v += pos[((i / cols) % pos_rows) * cols + c];
	x[i] = v;
}

/* col[n*t_out x cin*3] = im2col of x [n x t_in x cin], kernel 3, padding 1 */
template <typename S>
__global__ void
im2col3(const float *x, uint32_t n, uint32_t t_in, uint32_t cin, uint32_t stride, uint32_t t_out,
	S *col)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t w = cin * 3;
	size_t row, item;
	uint32_t cw, o;
	int64_t src;

	if (i >= (size_t)n * t_out * w)
		return;
	row = i / w;
	cw = (uint32_t)(i % w);
	item = row / t_out;
	o = (uint32_t)(row % t_out);
	src = (int64_t)o * stride + cw % 3 - 1;
	col[i] = to_s<S>(src >= 0 && src < (int64_t)t_in
				 ? x[(item * t_in + (size_t)src) * cin + cw / 3]
				 : 0.0f);
}

/* pooled[i][c] = mean over the tokens of x[i][.][c], summed in double (as the CPU) */
__global__ void
mean_tokens(const float *x, uint32_t tokens, uint32_t d, float *pooled)
{
	__shared__ double part[POOL_Y][33];
	const uint32_t c = blockIdx.x * 32 + threadIdx.x, item = blockIdx.y;
	double acc = 0.0;

	if (c < d)
		for (uint32_t t = threadIdx.y; t < tokens; t += POOL_Y)
			acc += x[((size_t)item * tokens + t) * d + c];
	part[threadIdx.y][threadIdx.x] = acc;
	__syncthreads();
	if (threadIdx.y == 0 && c < d) {
		for (int y = 1; y < POOL_Y; y++)
			acc += part[y][threadIdx.x];
		pooled[(size_t)item * d + c] = (float)(acc / tokens);
	}
}

} /* namespace */

/* ---- perf: the GEMMs of a run ---- */

static std::mutex g_rec_mu;
static bool g_rec_on;
static struct mb_cuda_gemm_list g_rec;

extern "C" void
mb_cuda_gemm_record(int on)
{
	std::lock_guard<std::mutex> lock(g_rec_mu);

	g_rec_on = on != 0;
	memset(&g_rec, 0, sizeof(g_rec));
}

extern "C" void
mb_cuda_gemm_take(struct mb_cuda_gemm_list *out)
{
	std::lock_guard<std::mutex> lock(g_rec_mu);

	*out = g_rec;
	memset(&g_rec, 0, sizeof(g_rec));
}

static void
record(const struct mb_cuda_gemm *g)
{
	std::lock_guard<std::mutex> lock(g_rec_mu);

	if (!g_rec_on)
		return;
	g_rec.flop += 2.0 * g->m * (double)g->n * g->k * g->batch;
	for (uint32_t i = 0; i < g_rec.n; i++) {
		struct mb_cuda_gemm *e = &g_rec.v[i];

		if (e->transa == g->transa && e->transb == g->transb && e->m == g->m &&
		    e->n == g->n && e->k == g->k && e->lda == g->lda && e->ldb == g->ldb &&
		    e->ldc == g->ldc && e->stride_a == g->stride_a && e->stride_b == g->stride_b &&
		    e->stride_c == g->stride_c && e->batch == g->batch && e->a_type == g->a_type &&
		    e->b_type == g->b_type && e->c_type == g->c_type && e->alpha == g->alpha &&
		    e->beta == g->beta) {
			e->count++;
			return;
		}
	}
	if (g_rec.n == MB_CUDA_GEMMS_MAX) {
		g_rec.dropped++;
		return;
	}
	g_rec.v[g_rec.n] = *g;
	g_rec.v[g_rec.n++].count = 1;
}

/* ---- the pools: one per device, shared by its contexts ---- */

static std::mutex g_pool_mu;
static struct {
	cudaMemPool_t pool;
	uint32_t refs;
} g_pools[MAX_DEVICES];

/* A reference on @p device's pool (made on the first). */
static int
pool_get(int device, cudaMemPool_t *out, char *err, size_t err_len)
{
	std::lock_guard<std::mutex> lock(g_pool_mu);
	uint64_t keep = UINT64_MAX;
	cudaMemPoolProps props;
	cudaMemPool_t pool;
	int supported = 0;
	cudaError_t e;

	*out = NULL;
	if (device < 0 || device >= MAX_DEVICES) {
		seterr(err, err_len, "CUDA device %d: this build takes ordinals 0..%d", device,
		       MAX_DEVICES - 1);
		return -1;
	}
	if (g_pools[device].refs == 0) {
		CUDA_OK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported,
					       device));
		if (!supported) {
			seterr(err, err_len,
			       "CUDA device %d has no stream-ordered memory pools "
			       "(cudaDevAttrMemoryPoolsSupported 0): the CUDA path needs them",
			       device);
			return -1;
		}
		memset(&props, 0, sizeof(props));
		props.allocType = cudaMemAllocationTypePinned;
		props.handleTypes = cudaMemHandleTypeNone;
		props.location.type = cudaMemLocationTypeDevice;
		props.location.id = device;
		CUDA_OK(cudaMemPoolCreate(&pool, &props));
		/* freed memory stays in the pool (see the top of this file) */
		e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
		if (e != cudaSuccess) {
			cudaMemPoolDestroy(pool);
			seterr(err, err_len, "cudaMemPoolSetAttribute(release threshold): %s (%s)",
			       cudaGetErrorString(e), cudaGetErrorName(e));
			return -(int)e;
		}
		g_pools[device].pool = pool;
	}
	g_pools[device].refs++;
	*out = g_pools[device].pool;
	return 0;
}

/* Drop a reference on @p device's pool (destroyed with the last). */
static void
pool_put(int device)
{
	std::lock_guard<std::mutex> lock(g_pool_mu);

	if (device < 0 || device >= MAX_DEVICES || g_pools[device].refs == 0)
		return;
	if (--g_pools[device].refs == 0) {
		/* every run freed its allocation and waited for it: nothing outstanding */
		cudaMemPoolDestroy(g_pools[device].pool);
		g_pools[device].pool = NULL;
	}
}

extern "C" int
mb_tf_malloc(int device, void **p, size_t bytes)
{
	cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);

	if (e == cudaErrorMemoryAllocation && device >= 0 && device < MAX_DEVICES) {
		std::lock_guard<std::mutex> lock(g_pool_mu);

		(void)cudaGetLastError();
		/* pages the runs freed and the pool kept: back to the driver, and once more */
		if (g_pools[device].refs > 0 &&
		    cudaMemPoolTrimTo(g_pools[device].pool, 0) == cudaSuccess)
			e = cudaMalloc(p, bytes ? bytes : 1);
	}
	if (e != cudaSuccess) {
		(void)cudaGetLastError();
		*p = NULL;
	}
	return (int)e;
}

extern "C" int
mb_tf_pool_stats(int device, int reset, struct mb_tf_pool_stats *out, char *err, size_t err_len)
{
	std::lock_guard<std::mutex> lock(g_pool_mu);
	uint64_t zero = 0;
	cudaMemPool_t pool;

	memset(out, 0, sizeof(*out));
	if (device < 0 || device >= MAX_DEVICES || g_pools[device].refs == 0) {
		seterr(err, err_len, "no memory pool on CUDA device %d (no context there)", device);
		return -ENOENT;
	}
	pool = g_pools[device].pool;
	if (reset) {
		CUDA_OK(cudaMemPoolTrimTo(pool, 0));
		CUDA_OK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &zero));
		CUDA_OK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
	}
	CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &out->reserved));
	CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &out->reserved_high));
	CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &out->used));
	CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &out->used_high));
	return 0;
}

/* ---- the store ---- */

struct mb_tf_store {
	int device;
	enum mb_tf_prec prec;
	cudaStream_t up; /* uploads and conversions */
	void **allocs;
	uint32_t n, cap;
	size_t bytes;
};

extern "C" void
mb_tf_store_destroy(struct mb_tf_store **sp)
{
	struct mb_tf_store *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	cudaSetDevice(s->device);
	if (s->up != NULL) {
		cudaStreamSynchronize(s->up);
		cudaStreamDestroy(s->up);
	}
	for (uint32_t i = 0; i < s->n; i++)
		cudaFree(s->allocs[i]);
	free(s->allocs);
	delete s;
	*sp = NULL;
}

extern "C" int
mb_tf_store_create(int device, enum mb_tf_prec prec, struct mb_tf_store **out, char *err,
		   size_t err_len)
{
	struct mb_tf_store *s = new (std::nothrow) mb_tf_store();

	*out = NULL;
	if (s == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	s->device = device;
	s->prec = prec;
	if (cudaSetDevice(device) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&s->up, cudaStreamNonBlocking) != cudaSuccess) {
		cudaError_t e = cudaGetLastError();

		seterr(err, err_len, "CUDA device %d: %s (%s)", device, cudaGetErrorString(e),
		       cudaGetErrorName(e));
		s->up = NULL;
		mb_tf_store_destroy(&s);
		return e != cudaSuccess ? -(int)e : -1;
	}
	*out = s;
	return 0;
}

extern "C" size_t
mb_tf_store_bytes(const struct mb_tf_store *s)
{
	return s->bytes;
}

extern "C" enum mb_tf_prec
mb_tf_store_prec(const struct mb_tf_store *s)
{
	return s->prec;
}

extern "C" int
mb_tf_store_device(const struct mb_tf_store *s)
{
	return s->device;
}

/* a device allocation the store owns */
static int
store_alloc(struct mb_tf_store *s, size_t bytes, void **p, char *err, size_t err_len)
{
	cudaError_t e;

	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 64;
		void **a = (void **)realloc(s->allocs, sizeof(*a) * cap);

		if (a == NULL) {
			seterr(err, err_len, "out of memory");
			return -1;
		}
		s->allocs = a;
		s->cap = cap;
	}
	CUDA_OK(cudaSetDevice(s->device));
	if ((e = (cudaError_t)mb_tf_malloc(s->device, p, bytes)) != cudaSuccess) {
		seterr(err, err_len,
		       "cudaMalloc of %zu bytes for the weights failed (%zu held): %s", bytes,
		       s->bytes, cudaGetErrorName(e));
		return -1;
	}
	s->allocs[s->n++] = *p;
	s->bytes += (bytes + 255) & ~(size_t)255;
	return 0;
}

extern "C" int
mb_tf_store_raw(struct mb_tf_store *s, const void *host, size_t bytes, const void **dev, char *err,
		size_t err_len)
{
	void *p;
	int rc;

	if ((rc = store_alloc(s, bytes, &p, err, err_len)) < 0)
		return rc;
	CUDA_OK(cudaMemcpyAsync(p, host, bytes, cudaMemcpyHostToDevice, s->up));
	CUDA_OK(cudaStreamSynchronize(s->up));
	*dev = p;
	return 0;
}

extern "C" int
mb_tf_store_f32(struct mb_tf_store *s, const float *host, size_t n, const float **dev, char *err,
		size_t err_len)
{
	return mb_tf_store_raw(s, host, n * sizeof(float), (const void **)dev, err, err_len);
}

extern "C" int
mb_tf_store_matrix(struct mb_tf_store *s, const float *const *parts, const uint32_t *rows,
		   uint32_t n_parts, uint32_t cols, int prec_override, const void **dev, char *err,
		   size_t err_len)
{
	enum mb_tf_prec prec = prec_override >= 0 ? (enum mb_tf_prec)prec_override : s->prec;
	size_t n = 0, off = 0;
	float *tmp = NULL;
	cudaError_t e0;
	void *p;
	int rc;

	for (uint32_t i = 0; i < n_parts; i++)
		n += (size_t)rows[i] * cols;
	if ((rc = store_alloc(s, n * mb_tf_prec_size(prec), &p, err, err_len)) < 0)
		return rc;
	*dev = p;
	if (prec == MB_TF_F32) {
		for (uint32_t i = 0; i < n_parts; i++) {
			size_t part = (size_t)rows[i] * cols;

			CUDA_OK(cudaMemcpyAsync((float *)p + off, parts[i], part * sizeof(float),
						cudaMemcpyHostToDevice, s->up));
			off += part;
		}
		CUDA_OK(cudaStreamSynchronize(s->up));
		return 0;
	}
	/* F32 into a temporary, converted on the device (round to nearest even) */
	if ((e0 = (cudaError_t)mb_tf_malloc(s->device, (void **)&tmp, n * sizeof(float))) !=
	    cudaSuccess) {
		(void)cudaGetLastError();
		seterr(err, err_len, "cudaMalloc of %zu bytes to convert a weight failed: %s",
		       n * sizeof(float), cudaGetErrorName(e0));
		return -1;
	}
	for (uint32_t i = 0; i < n_parts && rc == 0; i++) {
		size_t part = (size_t)rows[i] * cols;
		cudaError_t e = cudaMemcpyAsync(tmp + off, parts[i], part * sizeof(float),
						cudaMemcpyHostToDevice, s->up);

		if (e != cudaSuccess) {
			seterr(err, err_len, "cudaMemcpyAsync of a weight: %s",
			       cudaGetErrorString(e));
			rc = -(int)e;
		}
		off += part;
	}
	if (rc == 0) {
		WITH_S(prec, convert<S><<<grid_of(n), THREADS, 0, s->up>>>(tmp, n, (S *)p));
		cudaError_t e = cudaGetLastError();

		if (e == cudaSuccess)
			e = cudaStreamSynchronize(s->up);
		if (e != cudaSuccess) {
			seterr(err, err_len, "converting a weight to %s: %s", mb_tf_prec_name(prec),
			       cudaGetErrorString(e));
			rc = -(int)e;
		}
	}
	cudaStreamSynchronize(s->up);
	cudaFree(tmp);
	return rc;
}

/* @p n F32 values from @p host, or zeros when it is NULL (a bias a checkpoint lacks) */
static int
store_bias(struct mb_tf_store *s, const float *host, size_t n, const float **dev, char *err,
	   size_t err_len)
{
	float *zeros;
	int rc;

	if (host != NULL)
		return mb_tf_store_f32(s, host, n, dev, err, err_len);
	zeros = (float *)calloc(n ? n : 1, sizeof(float));
	if (zeros == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	rc = mb_tf_store_f32(s, zeros, n, dev, err, err_len);
	free(zeros);
	return rc;
}

extern "C" int
mb_tf_block_upload(struct mb_tf_store *s, const struct mb_tf_block_host *h, struct mb_tf_block *out,
		   char *err, size_t err_len)
{
	const uint32_t d = h->d, ff = h->ff;
	const float *qkv_w[3] = {h->wq, h->wk, h->wv};
	const uint32_t qkv_rows[3] = {d, d, d}, d_rows[1] = {d}, ff_rows[1] = {ff};
	float *bqkv;
	int rc;

	if (d == 0 || d > MB_TF_MAX_D || h->heads == 0 || d % h->heads != 0 || ff == 0 ||
	    ff > MB_TF_MAX_FF) {
		seterr(err, err_len,
		       "a block of d %u, %u heads, ffn %u: the CUDA path takes d <= %d divided "
		       "evenly by the heads and ffn <= %d",
		       d, h->heads, ff, MB_TF_MAX_D, MB_TF_MAX_FF);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->d = d;
	out->heads = h->heads;
	out->ff = ff;
	out->eps = h->eps;
	bqkv = (float *)calloc(3 * (size_t)d, sizeof(float));
	if (bqkv == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	if (h->bq != NULL)
		memcpy(bqkv, h->bq, sizeof(float) * d);
	if (h->bk != NULL)
		memcpy(bqkv + d, h->bk, sizeof(float) * d);
	if (h->bv != NULL)
		memcpy(bqkv + 2 * d, h->bv, sizeof(float) * d);
	rc = mb_tf_store_f32(s, bqkv, 3 * (size_t)d, &out->bqkv, err, err_len);
	free(bqkv);
	if (rc < 0 || (rc = mb_tf_store_f32(s, h->ln1_g, d, &out->ln1_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(s, h->ln1_b, d, &out->ln1_b, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(s, h->ln2_g, d, &out->ln2_g, err, err_len)) < 0 ||
	    (rc = mb_tf_store_f32(s, h->ln2_b, d, &out->ln2_b, err, err_len)) < 0 ||
	    (rc = store_bias(s, h->bo, d, &out->bo, err, err_len)) < 0 ||
	    (rc = store_bias(s, h->b1, ff, &out->b1, err, err_len)) < 0 ||
	    (rc = store_bias(s, h->b2, d, &out->b2, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(s, qkv_w, qkv_rows, 3, d, -1, &out->wqkv, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(s, &h->wo, d_rows, 1, d, -1, &out->wo, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(s, &h->w1, ff_rows, 1, d, -1, &out->w1, err, err_len)) < 0 ||
	    (rc = mb_tf_store_matrix(s, &h->w2, d_rows, 1, ff, -1, &out->w2, err, err_len)) < 0)
		return rc;
	return 0;
}

/* ---- a worker's context ---- */

struct mb_tf_ctx {
	int device;
	enum mb_tf_prec prec;
	cublasHandle_t blas;
	cudaStream_t own, cur;
	void *ws;
	cudaMemPool_t pool; /* a reference on the device's, NULL until taken */
};

extern "C" void
mb_tf_ctx_destroy(struct mb_tf_ctx **cp)
{
	struct mb_tf_ctx *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	cudaSetDevice(c->device);
	/* The last run's stream (c->cur) belongs to the caller and may be gone by now: it is
	 * not synchronised here (a call on a destroyed stream leaves an error behind for the
	 * next cudaGetLastError() of this thread). cublasDestroy() synchronises the device
	 * (cuBLAS' documentation), so that run's GEMMs and kernels are done before ws is
	 * freed; without a handle, nothing ran. */
	if (c->own != NULL)
		cudaStreamSynchronize(c->own);
	if (c->blas != NULL)
		cublasDestroy(c->blas);
	cudaFree(c->ws);
	if (c->own != NULL)
		cudaStreamDestroy(c->own);
	if (c->pool != NULL)
		pool_put(c->device);
	delete c;
	*cp = NULL;
}

static int
ctx_setup(struct mb_tf_ctx *c, char *err, size_t err_len)
{
	int rc;

	CUDA_OK(cudaSetDevice(c->device));
	if ((rc = pool_get(c->device, &c->pool, err, err_len)) < 0)
		return rc;
	CUDA_OK(cudaStreamCreateWithFlags(&c->own, cudaStreamNonBlocking));
	c->cur = c->own;
	CUDA_OK((cudaError_t)mb_tf_malloc(c->device, &c->ws, BLAS_WS));
	BLAS_OK(cublasCreate(&c->blas));
	/* no TF32 for F32 inputs; no reduced-precision split-K reductions for 16-bit outputs */
	BLAS_OK(cublasSetMathMode(
		c->blas, (cublasMath_t)(CUBLAS_DEFAULT_MATH |
					CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
	BLAS_OK(cublasSetPointerMode(c->blas, CUBLAS_POINTER_MODE_HOST));
	BLAS_OK(cublasSetStream(c->blas, c->own));
	BLAS_OK(cublasSetWorkspace(c->blas, c->ws, BLAS_WS));
	return 0;
}

extern "C" int
mb_tf_ctx_create(int device, enum mb_tf_prec prec, struct mb_tf_ctx **out, char *err,
		 size_t err_len)
{
	struct mb_tf_ctx *c = new (std::nothrow) mb_tf_ctx();
	int rc;

	*out = NULL;
	if (c == NULL) {
		seterr(err, err_len, "out of memory");
		return -1;
	}
	c->device = device;
	c->prec = prec;
	if ((rc = ctx_setup(c, err, err_len)) < 0) {
		mb_tf_ctx_destroy(&c);
		return rc;
	}
	*out = c;
	return 0;
}

extern "C" int
mb_tf_ctx_begin(struct mb_tf_ctx *c, void *stream, char *err, size_t err_len)
{
	cudaStream_t s = stream != NULL ? (cudaStream_t)stream : c->own;

	CUDA_OK(cudaSetDevice(c->device));
	c->cur = s;
	/* cublasSetStream resets the workspace to cuBLAS' own pool: set ours again after it */
	BLAS_OK(cublasSetStream(c->blas, s));
	BLAS_OK(cublasSetWorkspace(c->blas, c->ws, BLAS_WS));
	return 0;
}

extern "C" void *
mb_tf_ctx_stream(const struct mb_tf_ctx *c)
{
	return c->cur;
}

extern "C" enum mb_tf_prec
mb_tf_ctx_prec(const struct mb_tf_ctx *c)
{
	return c->prec;
}

/* ---- a network's worker (cuda_common_internal.h) ---- */

/* the staging of mb_tf_worker_begin(), none */
static void
free_pinned(struct mb_tf_worker *w)
{
	cudaFreeHost(w->pin_in);
	cudaFreeHost(w->pin_out);
	w->pin_in = NULL;
	w->pin_out = NULL;
	w->cap = 0;
}

void
mb_tf_worker_fini(struct mb_tf_worker *w)
{
	mb_tf_ctx_destroy(&w->ctx); /* waits for the stream */
	if (w->fft_made)
		cufftDestroy(w->fft);
	w->fft_made = false;
	if (w->fft_area != NULL)
		cudaFree(w->fft_area);
	w->fft_area = NULL;
	free_pinned(w);
}

int
mb_tf_worker_init(struct mb_tf_worker *w, const struct mb_tf_store *store, char *err,
		  size_t err_len)
{
	w->device = mb_tf_store_device(store);
	return mb_tf_ctx_create(w->device, mb_tf_store_prec(store), &w->ctx, err, err_len);
}

/* A plan that leaves its work area to us: *@p ws its size. */
static int
fft_plan(cufftHandle *plan, bool *made, int n, cufftType type, int batch, size_t *ws, char *err,
	 size_t err_len)
{
	*ws = 0;
	FFT_OK(cufftCreate(plan));
	*made = true;
	FFT_OK(cufftSetAutoAllocation(*plan, 0));
	FFT_OK(cufftMakePlan1d(*plan, n, type, batch, ws));
	return 0;
}

int
mb_tf_fft_work(int device, int n, cufftType type, int batch, size_t *ws, char *err, size_t err_len)
{
	cufftHandle plan = 0;
	bool made = false;
	int rc;

	CUDA_OK(cudaSetDevice(device));
	rc = fft_plan(&plan, &made, n, type, batch, ws, err, err_len);
	if (made)
		cufftDestroy(plan);
	return rc;
}

int
mb_tf_worker_fft(struct mb_tf_worker *w, int n, cufftType type, int batch, size_t fft_work,
		 char *err, size_t err_len)
{
	size_t ws = 0;
	int rc;

	if ((rc = fft_plan(&w->fft, &w->fft_made, n, type, batch, &ws, err, err_len)) < 0)
		return rc;
	if (ws > fft_work) { /* the service was told fft_work */
		seterr(err, err_len, "cuFFT wants a work area of %zu bytes, %zu at load", ws,
		       fft_work);
		return -1;
	}
	if (fft_work > 0) {
		CUDA_OK((cudaError_t)mb_tf_malloc(w->device, &w->fft_area, fft_work));
		FFT_OK(cufftSetWorkArea(w->fft, w->fft_area));
	}
	return 0;
}

int
mb_tf_worker_begin(struct mb_tf_worker *w, void *stream, uint32_t n, size_t in_item,
		   size_t out_item, const struct mb_tf_part *parts, uint32_t k, void **base,
		   char *err, size_t err_len)
{
	int rc;

	*base = NULL;
	if ((rc = mb_tf_ctx_begin(w->ctx, stream, err, err_len)) < 0)
		return rc;
	/* the stream may carry others' work (the service's): nothing of ours reads the staging */
	CUDA_OK(cudaStreamSynchronize((cudaStream_t)mb_tf_ctx_stream(w->ctx)));
	/* host memory; nothing queued reads the old any more */
	if (n > w->cap) {
		free_pinned(w);
		CUDA_OK(cudaMallocHost(&w->pin_in, (size_t)n * in_item));
		CUDA_OK(cudaMallocHost((void **)&w->pin_out, (size_t)n * out_item * sizeof(float)));
		w->cap = n;
	}
	return mb_tf_run_alloc(w->ctx, mb_tf_parts_bytes(parts, k, n), base, err, err_len);
}

int
mb_tf_worker_end(struct mb_tf_worker *w, void **base, int rc, char *err, size_t err_len)
{
	char free_err[160];
	int frc;

	/* whatever happened: freed after the work queued on it, and waited for */
	frc = mb_tf_run_free(w->ctx, base, rc < 0 ? free_err : err,
			     rc < 0 ? sizeof(free_err) : err_len);
	return rc < 0 ? rc : frc;
}

/* ---- GEMM: every one goes through here ---- */

/* gpu/emulated builds with a small one, so that the slicing below runs in CI */
#ifndef MB_GEMM_MAX_BATCH
#define MB_GEMM_MAX_BATCH 65535
#endif
enum { GEMM_MAX_BATCH = MB_GEMM_MAX_BATCH };

static size_t
type_bytes(cudaDataType_t t)
{
	return t == CUDA_R_32F ? 4 : 2; /* F32, or F16 / BF16 storage */
}

static int
gemm(struct mb_tf_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
     float alpha, const void *A, cudaDataType_t at, int lda, long long sa, const void *B,
     cudaDataType_t bt, int ldb, long long sb, float beta, void *C, cudaDataType_t ct, int ldc,
     long long sc, int batch, char *err, size_t err_len)
{
	struct mb_cuda_gemm g = {};

	g.transa = ta == CUBLAS_OP_T;
	g.transb = tb == CUBLAS_OP_T;
	g.m = m;
	g.n = n;
	g.k = k;
	g.lda = lda;
	g.ldb = ldb;
	g.ldc = ldc;
	g.stride_a = sa;
	g.stride_b = sb;
	g.stride_c = sc;
	g.batch = batch;
	g.a_type = (int)at;
	g.b_type = (int)bt;
	g.c_type = (int)ct;
	g.alpha = alpha;
	g.beta = beta;
	record(&g);
	if (batch == 1)
		BLAS_OK(cublasGemmEx(c->blas, ta, tb, m, n, k, &alpha, A, at, lda, B, bt, ldb,
				     &beta, C, ct, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	else
		/* the attention GEMMs' count is windows x heads x items (clap: 256 per item at
		 * stage 0): some cuBLAS kernels put the batch in gridDim.z, at most 65535, so a
		 * larger count goes in slices of that many */
		for (int done = 0; done < batch; done += GEMM_MAX_BATCH) {
			int part = batch - done < GEMM_MAX_BATCH ? batch - done : GEMM_MAX_BATCH;
			const char *a = (const char *)A + (size_t)done * sa * type_bytes(at);
			const char *b = (const char *)B + (size_t)done * sb * type_bytes(bt);
			char *cc = (char *)C + (size_t)done * sc * type_bytes(ct);

			BLAS_OK(cublasGemmStridedBatchedEx(c->blas, ta, tb, m, n, k, &alpha, a, at,
							   lda, sa, b, bt, ldb, sb, &beta, cc, ct,
							   ldc, sc, part, CUBLAS_COMPUTE_32F,
							   CUBLAS_GEMM_DEFAULT));
		}
	return 0;
}

extern "C" int
mb_tf_linear(struct mb_tf_ctx *c, uint32_t m, uint32_t n, uint32_t k, const void *x, uint32_t ldx,
	     enum mb_tf_prec x_prec, const void *w, enum mb_tf_prec w_prec, float alpha, float beta,
	     void *y, uint32_t ldy, int y_f32, char *err, size_t err_len)
{
	if (x_prec != w_prec) {
		seterr(err, err_len, "a GEMM of %s inputs and %s weights", mb_tf_prec_name(x_prec),
		       mb_tf_prec_name(w_prec));
		return -1;
	}
	/* Y^T [n x m] = W [n x k] X^T [k x m], column-major */
	return gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)m, (int)k, alpha, w, dtype(w_prec),
		    (int)k, 0, x, dtype(x_prec), (int)ldx, 0, beta, y,
		    y_f32 ? CUDA_R_32F : dtype(c->prec), (int)ldy, 0, 1, err, err_len);
}

/* ---- the pieces ---- */

extern "C" int
mb_tf_layernorm(struct mb_tf_ctx *c, const float *x, uint32_t rows, uint32_t d, const float *g,
		const float *b, float eps, void *y, int y_f32, char *err, size_t err_len)
{
	cudaStream_t st = c->cur;

	if (d > MB_TF_MAX_D) {
		seterr(err, err_len, "LayerNorm of %u > %d values", d, MB_TF_MAX_D);
		return -1;
	}
	if (rows == 0)
		return 0;
	if (y_f32)
		ln_rows<float><<<rows, LN_THREADS, 0, st>>>(x, d, g, b, eps, (float *)y, d);
	else
		WITH_S(c->prec,
		       ln_rows<S><<<rows, LN_THREADS, 0, st>>>(x, d, g, b, eps, (S *)y, d));
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_tf_bias_act(struct mb_tf_ctx *c, float *x, size_t rows, uint32_t cols, const float *bias,
	       int gelu_on, const float *pos, uint32_t pos_rows, char *err, size_t err_len)
{
	size_t n = rows * cols;

	if (n == 0)
		return 0;
	bias_act<<<grid_of(n), THREADS, 0, c->cur>>>(x, rows, cols, bias, gelu_on, pos,
						     pos_rows ? pos_rows : 1);
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_tf_im2col3(struct mb_tf_ctx *c, const float *x, uint32_t n, uint32_t t_in, uint32_t cin,
	      uint32_t stride, uint32_t t_out, void *col, char *err, size_t err_len)
{
	size_t total = (size_t)n * t_out * cin * 3;

	if (total == 0)
		return 0;
	WITH_S(c->prec, im2col3<S>
	       <<<grid_of(total), THREADS, 0, c->cur>>>(x, n, t_in, cin, stride, t_out, (S *)col));
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_tf_mean_tokens(struct mb_tf_ctx *c, const float *x, uint32_t n, uint32_t tokens, uint32_t d,
		  float *pooled, char *err, size_t err_len)
{
	if (n > 65535) { /* the grid's y */
		seterr(err, err_len, "the mean over the tokens of %u items: at most 65535", n);
		return -1;
	}
	if (n == 0 || d == 0)
		return 0;
	mean_tokens<<<dim3((d + 31) / 32, n), dim3(32, POOL_Y), 0, c->cur>>>(x, tokens, d, pooled);
	CUDA_OK(cudaGetLastError());
	return 0;
}

/* ---- a run's device memory, the activations ---- */

extern "C" int
mb_tf_run_alloc(struct mb_tf_ctx *c, uint64_t bytes, void **p, char *err, size_t err_len)
{
	cudaError_t e;

	*p = NULL;
	CUDA_OK(cudaSetDevice(c->device));
	e = cudaMallocFromPoolAsync(p, (size_t)bytes, c->pool, c->cur);
	if (e == cudaErrorMemoryAllocation) {
		/* the pool's free pages (kept from runs of other sizes) back to the driver, and
		 * once more: what is in use is within the admitted batches' units */
		(void)cudaGetLastError();
		CUDA_OK(cudaMemPoolTrimTo(c->pool, 0));
		e = cudaMallocFromPoolAsync(p, (size_t)bytes, c->pool, c->cur);
	}
	if (e != cudaSuccess) {
		(void)cudaGetLastError();
		*p = NULL;
		seterr(err, err_len,
		       "cudaMallocFromPoolAsync of %llu bytes for the batch on CUDA device %d: %s "
		       "(%s)",
		       (unsigned long long)bytes, c->device, cudaGetErrorString(e),
		       cudaGetErrorName(e));
		return -(int)e;
	}
	return 0;
}

extern "C" int
mb_tf_run_free(struct mb_tf_ctx *c, void **p, char *err, size_t err_len)
{
	cudaError_t e = cudaSuccess, w;

	if (*p != NULL) {
		/* stream-ordered: after every kernel and copy the run queued */
		e = cudaFreeAsync(*p, c->cur);
		*p = NULL;
	}
	/* the free done before the batch's units can be released */
	w = cudaStreamSynchronize(c->cur);
	if (e == cudaSuccess)
		e = w;
	if (e != cudaSuccess) {
		seterr(err, err_len, "freeing the batch's device memory on CUDA device %d: %s (%s)",
		       c->device, cudaGetErrorString(e), cudaGetErrorName(e));
		return -(int)e;
	}
	return 0;
}

extern "C" int
mb_tf_acts_bind(struct mb_tf_acts *A, void *const *at, const struct mb_tf_part *p, uint32_t n,
		uint32_t t, uint32_t d, uint32_t heads, uint32_t ff, enum mb_tf_prec prec,
		char *err, size_t err_len)
{
	memset(A, 0, sizeof(*A));
	if (t > MB_TF_MAX_T || d > MB_TF_MAX_D || ff > MB_TF_MAX_FF || heads == 0 ||
	    d % heads != 0) {
		seterr(err, err_len,
		       "activations of t %u, d %u, %u heads, ffn %u: beyond the CUDA path's limits",
		       t, d, heads, ff);
		return -1;
	}
	A->n = n;
	A->t = t;
	A->d = d;
	A->heads = heads;
	A->ff = ff;
	A->prec = prec;
	A->x = (float *)at[MB_TF_PART_X];
	A->a = at[MB_TF_PART_A];
	A->q = at[MB_TF_PART_Q];
	A->k = at[MB_TF_PART_K];
	A->v = at[MB_TF_PART_V];
	A->big = (float *)at[MB_TF_PART_BIG];
	A->big_bytes = (size_t)(p[MB_TF_PART_BIG].fixed + (uint64_t)n * p[MB_TF_PART_BIG].item);
	return 0;
}

/* ---- one block ---- */

extern "C" int
mb_tf_block_forward(struct mb_tf_ctx *c, const struct mb_tf_block *b, struct mb_tf_acts *A,
		    uint32_t n, char *err, size_t err_len)
{
	const uint32_t t = A->t, d = b->d, dh = d / b->heads, ff = b->ff;
	const size_t rows = (size_t)n * t;
	const int batch = (int)(n * b->heads);
	/* a 16-bit row written over an F32 one: the row stride doubles, in elements */
	const uint32_t widen = c->prec == MB_TF_F32 ? 1 : 2;
	const cudaDataType_t st = dtype(c->prec);
	cudaStream_t s = c->cur;
	int rc;

	if (n > A->n || d != A->d || b->heads != A->heads || ff != A->ff || c->prec != A->prec) {
		seterr(err, err_len, "a block of %u items on activations for %u", n, A->n);
		return -1;
	}
	if (n == 0)
		return 0;

	/* attention: a = LN1(x); qkv = a Wqkv^T (F32, in big) */
	if ((rc = mb_tf_layernorm(c, A->x, (uint32_t)rows, d, b->ln1_g, b->ln1_b, b->eps, A->a, 0,
				  err, err_len)) < 0 ||
	    (rc = mb_tf_linear(c, (uint32_t)rows, 3 * d, d, A->a, d, c->prec, b->wqkv, c->prec,
			       1.0f, 0.0f, A->big, 3 * d, 1, err, err_len)) < 0)
		return rc;
	WITH_S(c->prec, split_heads<S><<<grid_of(rows * 3 * d), THREADS, 0, s>>>(
				A->big, b->bqkv, rows, t, d, dh, (S *)A->q, (S *)A->k, (S *)A->v));
	CUDA_OK(cudaGetLastError());
	/* s_b [t x t] = q_b k_b^T / sqrt(dh), row-major: column-major S^T = K Q^T */
	if ((rc = gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, (int)t, (int)t, (int)dh,
		       1.0f / sqrtf((float)dh), A->k, st, (int)dh, (long long)t * dh, A->q, st,
		       (int)dh, (long long)t * dh, 0.0f, A->big, CUDA_R_32F, (int)t,
		       (long long)t * t, batch, err, err_len)) < 0)
		return rc;
	WITH_S(c->prec,
	       softmax_rows<S><<<(unsigned int)((size_t)batch * t), SM_THREADS, 0, s>>>(A->big, t));
	CUDA_OK(cudaGetLastError());
	/* o_b [t x dh] = p_b v_b: column-major O^T = V^T P^T; o in q's buffer */
	if ((rc = gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, (int)dh, (int)t, (int)t, 1.0f, A->v, st,
		       (int)dh, (long long)t * dh, A->big, st, (int)(t * widen),
		       (long long)t * t * widen, 0.0f, A->q, st, (int)dh, (long long)t * dh, batch,
		       err, err_len)) < 0)
		return rc;
	WITH_S(c->prec, merge_heads<S>
	       <<<grid_of(rows * d), THREADS, 0, s>>>((const S *)A->q, rows, t, d, dh, (S *)A->a));
	CUDA_OK(cudaGetLastError());
	/* x += a Wo^T + bo */
	if ((rc = mb_tf_linear(c, (uint32_t)rows, d, d, A->a, d, c->prec, b->wo, c->prec, 1.0f,
			       1.0f, A->x, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(c, A->x, rows, d, b->bo, 0, NULL, 0, err, err_len)) < 0)
		return rc;

	/* MLP: a = LN2(x); h = GELU(a W1^T + b1) (in big); x += h W2^T + b2 */
	if ((rc = mb_tf_layernorm(c, A->x, (uint32_t)rows, d, b->ln2_g, b->ln2_b, b->eps, A->a, 0,
				  err, err_len)) < 0 ||
	    (rc = mb_tf_linear(c, (uint32_t)rows, ff, d, A->a, d, c->prec, b->w1, c->prec, 1.0f,
			       0.0f, A->big, ff, 1, err, err_len)) < 0)
		return rc;
	WITH_S(c->prec,
	       bias_gelu_rows<S><<<(unsigned int)rows, GELU_THREADS, 0, s>>>(A->big, ff, b->b1));
	CUDA_OK(cudaGetLastError());
	if ((rc = mb_tf_linear(c, (uint32_t)rows, d, ff, A->big, ff * widen, c->prec, b->w2,
			       c->prec, 1.0f, 1.0f, A->x, d, 1, err, err_len)) < 0 ||
	    (rc = mb_tf_bias_act(c, A->x, rows, d, b->b2, 0, NULL, 0, err, err_len)) < 0)
		return rc;
	return 0;
}

/* ---- the attention's pieces, for a network's own attention (clap's windows) ---- */

extern "C" int
mb_tf_split_heads(struct mb_tf_ctx *c, const float *qkv, const float *bqkv, size_t rows, uint32_t t,
		  uint32_t d, uint32_t heads, void *q, void *k, void *v, char *err, size_t err_len)
{
	if (t == 0 || heads == 0 || d % heads != 0 || rows % t != 0) {
		seterr(err, err_len, "split_heads of %zu rows in groups of %u, d %u, %u heads",
		       rows, t, d, heads);
		return -1;
	}
	if (rows == 0)
		return 0;
	WITH_S(c->prec, split_heads<S><<<grid_of(rows * 3 * d), THREADS, 0, c->cur>>>(
				qkv, bqkv, rows, t, d, d / heads, (S *)q, (S *)k, (S *)v));
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_tf_attn_scores(struct mb_tf_ctx *c, const void *q, const void *k, uint32_t batch, uint32_t t,
		  uint32_t dh, float scale, float *s, char *err, size_t err_len)
{
	const cudaDataType_t st = dtype(c->prec);

	if (batch == 0)
		return 0;
	/* s_b [t x t] = q_b k_b^T, row-major: column-major S^T = K Q^T (as the block's) */
	return gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, (int)t, (int)t, (int)dh, scale, k, st, (int)dh,
		    (long long)t * dh, q, st, (int)dh, (long long)t * dh, 0.0f, s, CUDA_R_32F,
		    (int)t, (long long)t * t, (int)batch, err, err_len);
}

extern "C" int
mb_tf_attn_apply(struct mb_tf_ctx *c, const float *p, const void *v, uint32_t batch, uint32_t t,
		 uint32_t dh, void *o, char *err, size_t err_len)
{
	const uint32_t widen = c->prec == MB_TF_F32 ? 1 : 2;
	const cudaDataType_t st = dtype(c->prec);

	if (batch == 0)
		return 0;
	/* o_b [t x dh] = p_b v_b: column-major O^T = V^T P^T (as the block's) */
	return gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, (int)dh, (int)t, (int)t, 1.0f, v, st, (int)dh,
		    (long long)t * dh, p, st, (int)(t * widen), (long long)t * t * widen, 0.0f, o,
		    st, (int)dh, (long long)t * dh, (int)batch, err, err_len);
}

extern "C" int
mb_tf_merge_heads(struct mb_tf_ctx *c, const void *o, size_t rows, uint32_t t, uint32_t d,
		  uint32_t heads, void *a, char *err, size_t err_len)
{
	if (t == 0 || heads == 0 || d % heads != 0 || rows % t != 0) {
		seterr(err, err_len, "merge_heads of %zu rows in groups of %u, d %u, %u heads",
		       rows, t, d, heads);
		return -1;
	}
	if (rows == 0)
		return 0;
	WITH_S(c->prec, merge_heads<S><<<grid_of(rows * d), THREADS, 0, c->cur>>>(
				(const S *)o, rows, t, d, d / heads, (S *)a));
	CUDA_OK(cudaGetLastError());
	return 0;
}

extern "C" int
mb_tf_bias_gelu(struct mb_tf_ctx *c, float *h, size_t rows, uint32_t ff, const float *b, char *err,
		size_t err_len)
{
	if (ff == 0 || ff > MB_TF_MAX_FF || rows > 0x7fffffffu) {
		seterr(err, err_len, "bias + GELU of %zu rows of %u (at most %d a row)", rows, ff,
		       MB_TF_MAX_FF);
		return -1;
	}
	if (rows == 0)
		return 0;
	WITH_S(c->prec,
	       bias_gelu_rows<S><<<(unsigned int)rows, GELU_THREADS, 0, c->cur>>>(h, ff, b));
	CUDA_OK(cudaGetLastError());
	return 0;
}
