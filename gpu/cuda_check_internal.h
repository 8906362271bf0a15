/**
 * @file
 * Private to the CUDA sources of gpu/: error checks that put the failing call and the library's
 * reason, with the source file and line, into the caller's (err, err_len) and return a negative
 * code from the enclosing function:
 * CUDA runtime -e, cuDNN -1000 - status, cuBLAS -2000 - status, cuFFT -3000 - result.
 *
 * Threads: any; no state of its own.
 */
#ifndef MB_CUDA_CHECK_INTERNAL_H
#define MB_CUDA_CHECK_INTERNAL_H

#include <cstdarg>
#include <cstdio>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>

static inline void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* The source file of a failed call, without the build's relative path: "cuda_tf.cu". */
#define MB_CUDA_FILE                                                                               \
	(__builtin_strrchr(__FILE__, '/') ? __builtin_strrchr(__FILE__, '/') + 1 : __FILE__)

#define CUDA_OK(expr)                                                                              \
	do {                                                                                       \
		cudaError_t e_ = (expr);                                                           \
		if (e_ != cudaSuccess) {                                                           \
			seterr(err, err_len, "%s:%d: %s: %s (%s)", MB_CUDA_FILE, __LINE__, #expr,  \
			       cudaGetErrorString(e_), cudaGetErrorName(e_));                      \
			return -(int)e_;                                                           \
		}                                                                                  \
	} while (0)

#define DNN_OK(expr)                                                                               \
	do {                                                                                       \
		cudnnStatus_t e_ = (expr);                                                         \
		if (e_ != CUDNN_STATUS_SUCCESS) {                                                  \
			seterr(err, err_len, "%s:%d: %s: %s", MB_CUDA_FILE, __LINE__, #expr,       \
			       cudnnGetErrorString(e_));                                           \
			return -1000 - (int)e_;                                                    \
		}                                                                                  \
	} while (0)

#define BLAS_OK(expr)                                                                              \
	do {                                                                                       \
		cublasStatus_t e_ = (expr);                                                        \
		if (e_ != CUBLAS_STATUS_SUCCESS) {                                                 \
			seterr(err, err_len, "%s:%d: %s: cuBLAS status %d", MB_CUDA_FILE,          \
			       __LINE__, #expr, (int)e_);                                          \
			return -2000 - (int)e_;                                                    \
		}                                                                                  \
	} while (0)

#define FFT_OK(expr)                                                                               \
	do {                                                                                       \
		cufftResult e_ = (expr);                                                           \
		if (e_ != CUFFT_SUCCESS) {                                                         \
			seterr(err, err_len, "%s:%d: %s: cuFFT result %d", MB_CUDA_FILE, __LINE__, \
			       #expr, (int)e_);                                                    \
			return -3000 - (int)e_;                                                    \
		}                                                                                  \
	} while (0)

#endif /* MB_CUDA_CHECK_INTERNAL_H */
