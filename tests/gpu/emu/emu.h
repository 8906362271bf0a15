/**
 * @file
 * A host emulation of the parts of CUDA that gpu/cuda_*.cu use: the runtime (devices,
 * streams, events, memory, stream-ordered pools), the device side (__global__ kernels, thread
 * and block indices, __syncthreads, __syncwarp, warp shuffles, __half and __nv_bfloat16),
 * cuBLAS (GemmEx, GemmStridedBatchedEx) and cuFFT (R2C, D2Z). gen.py turns a .cu file into
 * C++ that includes this header first (the fake/ headers stand in for cuda_runtime.h and the
 * rest): each launch `k<<<grid, block, shm, stream>>>(args)` becomes
 * `emu_launch<&k>("k", EmuCfg(grid, block, shm, stream), args)`, each `__shared__` array a
 * static that emu_shared_fill() fills with 0xff at the start of every block, each
 * mb_tf_carve() an emu_carve() that gives every part of a run's allocation a mapping of its
 * own, its last byte against a guard page, and each warp reduction's loop of five xor
 * shuffles one emu_xor_butterfly() (the same arithmetic, one thread switch instead of five).
 *
 * Execution is synchronous: a launch, copy, GEMM or FFT is done when the call returns, in
 * the order the host issues them. A kernel's blocks run one after another; a block's threads
 * run as fibers (one stack each) that stop at every barrier and warp operation, the next one
 * to run picked at random, so that a block whose threads race between barriers shows it. A
 * kernel whose first launch never synchronised runs its later launches as a plain loop over
 * the threads (fast), and aborts should one of them synchronise after all.
 *
 * What is checked as it runs (emu.cpp): device memory is filled with 0xff
 * (NaN in every float type) so that reads of what nothing wrote show; every allocation ends
 * against a guard page (an overrun faults and the fault names the allocation); every kernel
 * pointer argument must point into a device or pinned allocation; and each stream's work is
 * ordered against the others' by events and synchronisations as CUDA orders it (vector
 * clocks): device work that touches an allocation another stream used, with nothing in
 * between ordering the two, is a hazard (a race on a real GPU) and is reported.
 *
 * Threads: one (the test's main thread); nothing here is thread-safe.
 */
#ifndef MB_EMU_H
#define MB_EMU_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_api.h"

/* ---- qualifiers ---- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict

/* ---- indices ---- */

struct dim3 {
	unsigned int x, y, z;
	dim3(unsigned int a = 1, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c)
	{
	}
};
extern dim3 threadIdx, blockIdx, blockDim, gridDim;
static const int warpSize = 32;

/* ---- runtime: errors, devices ---- */

enum cudaError_t {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInsufficientDriver = 35,
	cudaErrorInvalidDevice = 101,
	cudaErrorInvalidResourceHandle = 400,
};

struct cudaDeviceProp {
	char name[256];
	size_t totalGlobalMem;
	int major, minor, multiProcessorCount;
};

enum cudaDeviceAttr {
	cudaDevAttrMemoryPoolsSupported = 115,
};

cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetPCIBusId(char *id, int len, int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaGetLastError();
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

/* ---- streams and events ---- */

struct emu_stream;
typedef emu_stream *cudaStream_t;
extern emu_stream emu_legacy_stream;
#define cudaStreamLegacy (&emu_legacy_stream)
#define cudaStreamNonBlocking 0x01u

struct emu_event;
typedef emu_event *cudaEvent_t;
#define cudaEventDefault 0x00u
#define cudaEventDisableTiming 0x02u

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);

/* ---- memory ---- */

enum cudaMemcpyKind {
	cudaMemcpyHostToHost = 0,
	cudaMemcpyHostToDevice = 1,
	cudaMemcpyDeviceToHost = 2,
	cudaMemcpyDeviceToDevice = 3,
	cudaMemcpyDefault = 4,
};

cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T>
cudaError_t
cudaMalloc(T **p, size_t bytes)
{
	return cudaMalloc((void **)p, bytes);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
template <class T>
cudaError_t
cudaMallocHost(T **p, size_t bytes)
{
	return cudaMallocHost((void **)p, bytes);
}
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
			    cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = 0);

/* stream-ordered pools */
struct emu_pool;
typedef emu_pool *cudaMemPool_t;
enum cudaMemAllocationType { cudaMemAllocationTypePinned = 1 };
enum cudaMemAllocationHandleType { cudaMemHandleTypeNone = 0 };
enum cudaMemLocationType { cudaMemLocationTypeDevice = 1 };
struct cudaMemLocation {
	cudaMemLocationType type;
	int id;
};
struct cudaMemPoolProps {
	cudaMemAllocationType allocType;
	cudaMemAllocationHandleType handleTypes;
	cudaMemLocation location;
};
enum cudaMemPoolAttr {
	cudaMemPoolAttrReleaseThreshold = 4,
	cudaMemPoolAttrReservedMemCurrent = 5,
	cudaMemPoolAttrReservedMemHigh = 6,
	cudaMemPoolAttrUsedMemCurrent = 7,
	cudaMemPoolAttrUsedMemHigh = 8,
};
cudaError_t cudaMemPoolCreate(cudaMemPool_t *pool, const cudaMemPoolProps *props);
cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value);
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep);
cudaError_t cudaMallocFromPoolAsync(void **p, size_t bytes, cudaMemPool_t pool, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);

/* ---- 16-bit floats (storage and round-to-nearest-even conversions) ---- */

/* float -> binary16, round to nearest even (F. Giesen's float_to_half_fast3_rtne) */
static inline uint16_t
emu_f2h(float f)
{
	uint32_t u, sign;
	uint16_t h;

	memcpy(&u, &f, 4);
	sign = u & 0x80000000u;
	u ^= sign;
	if (u >= 0x47800000u) { /* >= 65536, Inf or NaN */
		h = u > 0x7f800000u ? 0x7e00 : 0x7c00;
	} else if (u < 0x38800000u) { /* a subnormal half or zero: let the FPU round */
		float g;

		memcpy(&g, &u, 4);
		g += 0.5f;
		memcpy(&u, &g, 4);
		h = (uint16_t)(u - 0x3f000000u);
	} else {
		uint32_t odd = (u >> 13) & 1u;

		u += 0xc8000fffu + odd; /* rebias the exponent, round */
		h = (uint16_t)(u >> 13);
	}
	return (uint16_t)(h | sign >> 16);
}

static inline float
emu_h2f(uint16_t h)
{
	const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
	uint32_t u;
	float f;

	if (e == 0) {
		f = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
		memcpy(&u, &f, 4);
		u |= sign;
	} else if (e == 31) {
		u = sign | 0x7f800000u | m << 13;
	} else {
		u = sign | (e + 112) << 23 | m << 13;
	}
	memcpy(&f, &u, 4);
	return f;
}

/* float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN */
static inline uint16_t
emu_f2bf(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)(u >> 16 | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

static inline float
emu_bf2f(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

struct __half {
	uint16_t x;
	__half() = default;
	__half(float f) : x(emu_f2h(f))
	{
	}
	operator float() const
	{
		return emu_h2f(x);
	}
};
struct __nv_bfloat16 {
	uint16_t x;
	__nv_bfloat16() = default;
	__nv_bfloat16(float f) : x(emu_f2bf(f))
	{
	}
	operator float() const
	{
		return emu_bf2f(x);
	}
};

static inline __half
__float2half_rn(float f)
{
	return __half(f);
}
static inline __half
__float2half(float f)
{
	return __half(f);
}
static inline float
__half2float(__half h)
{
	return emu_h2f(h.x);
}
static inline __nv_bfloat16
__float2bfloat16_rn(float f)
{
	return __nv_bfloat16(f);
}
static inline __nv_bfloat16
__float2bfloat16(float f)
{
	return __nv_bfloat16(f);
}
static inline float
__bfloat162float(__nv_bfloat16 b)
{
	return emu_bf2f(b.x);
}

/* device arithmetic that must not be contracted into FMAs (the emulation is built with
 * -ffp-contract=off: plain operations are what these are) */
static inline double
__dadd_rn(double a, double b)
{
	return a + b;
}
static inline double
__dmul_rn(double a, double b)
{
	return a * b;
}
static inline float
__fadd_rn(float a, float b)
{
	return a + b;
}
static inline float
__fmul_rn(float a, float b)
{
	return a * b;
}

/* ---- barriers and warps ---- */

void __syncthreads();
void __syncwarp(unsigned int mask = 0xffffffffu);
double emu_shfl_xor(unsigned int mask, double v, int lane_mask);

static inline float
__shfl_xor_sync(unsigned int mask, float v, int lane_mask, int width = 32)
{
	(void)width;
	return (float)emu_shfl_xor(mask, v, lane_mask);
}
static inline double
__shfl_xor_sync(unsigned int mask, double v, int lane_mask, int width = 32)
{
	(void)width;
	return emu_shfl_xor(mask, v, lane_mask);
}
static inline int
__shfl_xor_sync(unsigned int mask, int v, int lane_mask, int width = 32)
{
	(void)width;
	return (int)emu_shfl_xor(mask, v, lane_mask);
}
static inline unsigned int
__shfl_xor_sync(unsigned int mask, unsigned int v, int lane_mask, int width = 32)
{
	(void)width;
	return (unsigned int)emu_shfl_xor(mask, v, lane_mask);
}

/*
 * gen.py's rewrite of the warp reduction `for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(
 * 0xffffffffu, v, o);` (@p max 0) or `v = fmaxf(v, __shfl_xor_sync(...))` (@p max 1): every lane
 * of the warp gets what those five exchanges give it, computed the same way in the same type
 * (lane l: v[l] op v[l ^ o], o = 16, 8, 4, 2, 1), at the cost of one warp operation.
 */
float emu_xor_butterfly(float v, int max);
double emu_xor_butterfly(double v, int max);

/** A __shared__ array of this block: filled with 0xff by the first thread that gets here. */
void emu_shared_fill(void *p, size_t bytes);

/* ---- launches ---- */

struct EmuCfg {
	dim3 g, b;
	cudaStream_t s;
	EmuCfg(dim3 grid, dim3 block, size_t shm = 0, cudaStream_t stream = 0)
	    : g(grid), b(block), s(stream)
	{
		(void)shm; /* dynamic shared memory: none of ours uses it */
	}
};

/* one device operation (launch, copy, GEMM, FFT) on a stream, and the memory it touches */
void emu_op_begin(cudaStream_t s, const char *what);
void emu_access(const void *p, bool write, const char *what, bool from_kernel);

/* a kernel's pointer parameters: const ones read, the others written */
template <class P, class A>
inline void
emu_param(const char *name, const A &a)
{
	if constexpr (std::is_pointer<P>::value) {
		using T = typename std::remove_pointer<P>::type;
		emu_access((const void *)(P)a, !std::is_const<T>::value, name, true);
	}
}
template <class F> struct emu_params;
template <class... P> struct emu_params<void (*)(P...)> {
	template <class... A> static void check(const char *name, const A &...a)
	{
		static_assert(sizeof...(P) == sizeof...(A), "a launch's arguments");
		(emu_param<P>(name, a), ...);
	}
};

/* Begin a launch of kernel @p id: true to run its threads as a plain loop, false for fibers. */
bool emu_grid_begin(const char *name, const void *id, const EmuCfg &c);
void emu_grid_end();
/* Run every block of the launch begun with fibers, each thread calling fn(ctx). */
void emu_grid_fibers(void (*fn)(void *), void *ctx);

template <class L>
static void
emu_thunk(void *ctx)
{
	(*(L *)ctx)();
}

template <auto K, class... A>
void
emu_launch(const char *name, EmuCfg c, A... a)
{
	emu_op_begin(c.s, name);
	emu_params<decltype(K)>::check(name, a...);
	if (emu_grid_begin(name, reinterpret_cast<const void *>(K), c)) {
		const uint64_t blocks = (uint64_t)c.g.x * c.g.y * c.g.z;

		for (uint64_t i = 0; i < blocks; i++) {
			blockIdx =
				dim3((unsigned int)(i % c.g.x), (unsigned int)(i / c.g.x % c.g.y),
				     (unsigned int)(i / c.g.x / c.g.y));
			for (unsigned int z = 0; z < c.b.z; z++)
				for (unsigned int y = 0; y < c.b.y; y++)
					for (unsigned int x = 0; x < c.b.x; x++) {
						threadIdx = dim3(x, y, z);
						K(a...);
					}
		}
		emu_grid_end();
		return;
	}
	auto body = [&]() { K(a...); };
	emu_grid_fibers(&emu_thunk<decltype(body)>, &body);
}

/* ---- cuBLAS ---- */

enum cublasStatus_t {
	CUBLAS_STATUS_SUCCESS = 0,
	CUBLAS_STATUS_NOT_INITIALIZED = 1,
	CUBLAS_STATUS_INVALID_VALUE = 7,
};
struct emu_blas;
typedef emu_blas *cublasHandle_t;
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };
enum cublasMath_t {
	CUBLAS_DEFAULT_MATH = 0,
	CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
};
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0 };

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
			    int n, int k, const void *alpha, const void *A, cudaDataType_t at,
			    int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
			    void *C, cudaDataType_t ct, int ldc, cublasComputeType_t compute,
			    cublasGemmAlgo_t algo);
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
					  cublasOperation_t tb, int m, int n, int k,
					  const void *alpha, const void *A, cudaDataType_t at,
					  int lda, long long sa, const void *B, cudaDataType_t bt,
					  int ldb, long long sb, const void *beta, void *C,
					  cudaDataType_t ct, int ldc, long long sc, int batch,
					  cublasComputeType_t compute, cublasGemmAlgo_t algo);

/* ---- cuDNN (the error macro only) ---- */

enum cudnnStatus_t { CUDNN_STATUS_SUCCESS = 0 };
static inline const char *
cudnnGetErrorString(cudnnStatus_t)
{
	return "cuDNN (emulated: not used)";
}

/* ---- cuFFT ---- */

typedef int cufftHandle;
enum cufftResult {
	CUFFT_SUCCESS = 0,
	CUFFT_INVALID_PLAN = 1,
	CUFFT_INVALID_TYPE = 3,
	CUFFT_INVALID_VALUE = 4,
	CUFFT_EXEC_FAILED = 6,
};
enum cufftType { CUFFT_R2C = 0x2a, CUFFT_D2Z = 0x6a };
typedef float cufftReal;
typedef double cufftDoubleReal;
struct cufftComplex {
	float x, y;
};
struct cufftDoubleComplex {
	double x, y;
};
cufftResult cufftCreate(cufftHandle *plan);
cufftResult cufftDestroy(cufftHandle plan);
cufftResult cufftPlan1d(cufftHandle *plan, int nx, cufftType type, int batch);
cufftResult cufftSetAutoAllocation(cufftHandle plan, int on);
cufftResult cufftMakePlan1d(cufftHandle plan, int nx, cufftType type, int batch, size_t *ws);
cufftResult cufftSetWorkArea(cufftHandle plan, void *area);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t s);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out);
cufftResult cufftExecD2Z(cufftHandle plan, cufftDoubleReal *in, cufftDoubleComplex *out);

/* ---- a run's allocation, carved into guarded parts (for mb_tf_carve) ---- */

struct mb_tf_part;
void emu_carve(void *base, const struct mb_tf_part *p, uint32_t k, uint32_t n, void **out);

#endif /* MB_EMU_H */
