/*
 * nn.c: convolution (im2col + SGEMM), linear layers and GELU on the CPU with OpenBLAS.
 * See nn_internal.h for layouts. No allocation: callers pass scratch.
 */
#include "nn_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include <cblas.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void
init_once(void)
{
	openblas_set_num_threads(1);
}

void
mb_nn_init(void)
{
	pthread_once(&g_once, init_once);
}

float
mb_nn_gelu(float x)
{
	return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
}

void
mb_nn_conv1d(const float *x, uint32_t t, uint32_t cin, const float *w, const float *b,
	     uint32_t cout, uint32_t k, uint32_t stride, uint32_t pad, int gelu, float *col,
	     float *y)
{
	uint32_t t_out = mb_nn_conv_out(t, k, stride, pad);
	uint32_t width = cin * k;

	/* col[o][c * k + j] = x[o * stride + j - pad][c], zero outside: matches w's [cin][k] */
	for (uint32_t o = 0; o < t_out; o++) {
		float *row = col + (size_t)o * width;

		for (uint32_t j = 0; j < k; j++) {
			int64_t src = (int64_t)o * stride + j - pad;

			if (src < 0 || src >= (int64_t)t) {
				for (uint32_t c = 0; c < cin; c++)
					row[c * k + j] = 0.0f;
				continue;
			}
			for (uint32_t c = 0; c < cin; c++)
				row[c * k + j] = x[(size_t)src * cin + c];
		}
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t_out, (int)cout, (int)width,
		    1.0f, col, (int)width, w, (int)width, 0.0f, y, (int)cout);
	for (uint32_t o = 0; o < t_out; o++) {
		float *row = y + (size_t)o * cout;

		for (uint32_t c = 0; c < cout; c++) {
			float v = row[c] + b[c];

			row[c] = gelu ? mb_nn_gelu(v) : v;
		}
	}
}

void
mb_nn_linear(const float *x, uint32_t rows, uint32_t in, const float *w, const float *b,
	     uint32_t out, float *y)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f, x,
		    (int)in, w, (int)in, 0.0f, y, (int)out);
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t c = 0; c < out; c++)
			y[(size_t)r * out + c] += b[c];
}
