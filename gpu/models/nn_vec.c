/*
 * nn_vec.c: the elementwise transcendental loops of nn.c (the softmax's exponentials, GELU's
 * erf), in a file of their own so that they alone are compiled to call glibc's vector math
 * library (libmvec: _ZGVbN4v_expf, _ZGVbN4v_erff), which GCC does only under -ffast-math
 * (gpu/meson.build gives this file, and nothing else, -ffast-math -fopenmp-simd). Nothing
 * here sums or reorders: each element is one call, so -ffast-math changes only which exp and
 * erf run. libmvec's are within 4 ulp (glibc's manual): measured on 2^22 points, exp within
 * 2.4e-7 relative and GELU within 5e-7 absolute of double precision, 2x and 9x faster than
 * the scalar calls (perf/RESULTS.md, 2026-12-05). Inputs are finite here (LayerNorm'd
 * activations; scores minus their row's maximum). A compiler without libmvec builds the
 * same loops with the scalar calls.
 */
#include "nn_internal.h"

#include <math.h>

void
mb_nn_vec_exp_shift(float *x, size_t n, float shift)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		x[i] = expf(x[i] - shift);
}

void
mb_nn_vec_gelu(float *x, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}
