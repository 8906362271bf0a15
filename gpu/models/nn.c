/*
 * nn.c: convolution (im2col + SGEMM), linear layers and GELU on the CPU with OpenBLAS.
 * See nn_internal.h for layouts and for how several items share one GEMM. No allocation:
 * callers pass scratch (mb_nn_init()'s probe aside, once).
 */
#include "nn_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint32_t g_block = 1; /* see nn_internal.h; set once by init_once() */
static int g_stack;	     /* 1: items share a GEMM; 0: one GEMM per item */

#define PROBE_K 96
#define PROBE_N 80

static void
gemm(const float *x, uint32_t rows, uint32_t in, const float *w, uint32_t out, float *y)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f, x,
		    (int)in, w, (int)in, 0.0f, y, (int)out);
}

/* Do blocks of l rows come out the same alone and inside 2l- and 5l-row GEMMs? */
static int
block_holds(uint32_t l, const float *a, const float *w, float *big, float *one)
{
	gemm(a, 5 * l, PROBE_K, w, PROBE_N, big);
	for (uint32_t j = 0; j < 5; j++) {
		gemm(a + (size_t)j * l * PROBE_K, l, PROBE_K, w, PROBE_N, one);
		if (memcmp(one, big + (size_t)j * l * PROBE_N, sizeof(float) * l * PROBE_N) != 0)
			return 0;
	}
	for (uint32_t j = 0; j < 4; j++) {
		gemm(a + (size_t)j * l * PROBE_K, 2 * l, PROBE_K, w, PROBE_N, one);
		if (memcmp(one, big + (size_t)j * l * PROBE_N, sizeof(float) * 2 * l * PROBE_N) !=
		    0)
			return 0;
	}
	return 1;
}

/* The smallest row block that stacking can rely on, or none (g_stack 0). */
static void
probe(void)
{
	static const uint32_t cand[] = {1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64};
	const uint32_t rows = 5 * MB_NN_MAX_BLOCK;
	float *a = malloc(sizeof(float) * rows * PROBE_K);
	float *w = malloc(sizeof(float) * PROBE_N * PROBE_K);
	float *big = malloc(sizeof(float) * rows * PROBE_N);
	float *one = malloc(sizeof(float) * rows * PROBE_N);
	uint64_t seed = 20261123;

	if (a != NULL && w != NULL && big != NULL && one != NULL) {
		for (size_t i = 0; i < (size_t)rows * PROBE_K + PROBE_N * PROBE_K; i++) {
			float v;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			v = (float)(seed >> 40) / (float)(1u << 24) - 0.5f;
			if (i < (size_t)rows * PROBE_K)
				a[i] = v;
			else
				w[i - (size_t)rows * PROBE_K] = v;
		}
		for (size_t c = 0; c < sizeof(cand) / sizeof(cand[0]) && !g_stack; c++)
			if (block_holds(cand[c], a, w, big, one)) {
				g_block = cand[c];
				g_stack = 1;
			}
	}
	free(a);
	free(w);
	free(big);
	free(one);
}

static void
init_once(void)
{
	openblas_set_num_threads(1);
	probe();
}

void
mb_nn_init(void)
{
	pthread_once(&g_once, init_once);
}

uint32_t
mb_nn_block(void)
{
	mb_nn_init();
	return g_block;
}

float
mb_nn_gelu(float x)
{
	return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
}

/* col[o][c * k + j] = x[o * stride + j - pad][c], zero outside: matches w's [cin][k] */
static void
im2col(const float *x, uint32_t t, uint32_t cin, uint32_t k, uint32_t stride, uint32_t pad,
       uint32_t t_out, float *col)
{
	uint32_t width = cin * k;

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
}

/* dst[rows x cout] = act(src + b); dst may be src */
static void
bias_act(const float *src, uint32_t rows, uint32_t cout, const float *b, int gelu, float *dst)
{
	for (size_t i = 0; i < (size_t)rows * cout; i += cout)
		for (uint32_t c = 0; c < cout; c++) {
			float v = src[i + c] + b[c];

			dst[i + c] = gelu ? mb_nn_gelu(v) : v;
		}
}

void
mb_nn_conv1d_stack(const float *x, const uint32_t *t, uint32_t n, uint32_t cin, const float *w,
		   const float *b, uint32_t cout, uint32_t k, uint32_t stride, uint32_t pad,
		   int gelu, float *col, float *y, float *const *out)
{
	uint32_t width = cin * k, rows = 0;
	size_t in_row = 0;

	mb_nn_init();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t_out = mb_nn_conv_out(t[i], k, stride, pad), padded = mb_nn_pad(t_out);
		float *c = col + (size_t)rows * width;

		im2col(x + in_row * cin, t[i], cin, k, stride, pad, t_out, c);
		memset(c + (size_t)t_out * width, 0, sizeof(float) * (padded - t_out) * width);
		in_row += mb_nn_pad(t[i]);
		rows += padded;
	}
	if (g_stack) {
		gemm(col, rows, width, w, cout, y);
	} else { /* same layout (block 1), one GEMM per item */
		rows = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t t_out = mb_nn_conv_out(t[i], k, stride, pad);

			gemm(col + (size_t)rows * width, t_out, width, w, cout,
			     y + (size_t)rows * cout);
			rows += t_out;
		}
	}
	rows = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t_out = mb_nn_conv_out(t[i], k, stride, pad);
		float *src = y + (size_t)rows * cout;

		bias_act(src, t_out, cout, b, gelu, out != NULL ? out[i] : src);
		rows += mb_nn_pad(t_out);
	}
}

void
mb_nn_linear(const float *x, uint32_t rows, uint32_t in, const float *w, const float *b,
	     uint32_t out, float *y)
{
	gemm(x, rows, in, w, out, y);
	bias_act(y, rows, out, b, 0, y);
}
