/*
 * nn.c: convolution (im2col + SGEMM), linear layers, GELU, LayerNorm and the pre-LN
 * transformer block on the CPU with OpenBLAS.
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
	if (b == NULL)
		return;
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t c = 0; c < out; c++)
			y[(size_t)r * out + c] += b[c];
}

void
mb_nn_gelu_inplace(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = mb_nn_gelu(x[i]);
}

void
mb_nn_layernorm(const float *x, uint32_t rows, uint32_t d, const float *g, const float *b,
		float eps, float *y)
{
	for (uint32_t r = 0; r < rows; r++) {
		const float *in = x + (size_t)r * d;
		float *out = y + (size_t)r * d;
		double sum = 0.0, sq = 0.0, mean, var;
		float inv, m;

		for (uint32_t c = 0; c < d; c++)
			sum += in[c];
		mean = sum / d;
		for (uint32_t c = 0; c < d; c++) {
			double v = in[c] - mean;

			sq += v * v;
		}
		var = sq / d;
		inv = (float)(1.0 / sqrt(var + (double)eps));
		m = (float)mean;
		for (uint32_t c = 0; c < d; c++)
			out[c] = (in[c] - m) * inv * g[c] + b[c];
	}
}

/* rows of the MLP computed at once: bounds the hidden activations' scratch */
#define MLP_ROWS 4096u

size_t
mb_nn_block_scratch(const struct mb_nn_block *blk, uint32_t n, uint32_t t)
{
	size_t rows = (size_t)n * t, d = blk->d;
	size_t attn = 3 * rows * d + (size_t)t * t;
	size_t mlp = (rows < MLP_ROWS ? rows : MLP_ROWS) * blk->ff;

	return rows * d + (attn > mlp ? attn : mlp);
}

/* softmax of each of @p rows rows of @p cols, in place */
static void
softmax_rows(float *s, uint32_t rows, uint32_t cols)
{
	for (uint32_t r = 0; r < rows; r++) {
		float *row = s + (size_t)r * cols, max = row[0];
		float sum = 0.0f, inv;

		for (uint32_t c = 1; c < cols; c++)
			if (row[c] > max)
				max = row[c];
		for (uint32_t c = 0; c < cols; c++) {
			row[c] = expf(row[c] - max);
			sum += row[c];
		}
		inv = 1.0f / sum;
		for (uint32_t c = 0; c < cols; c++)
			row[c] *= inv;
	}
}

static void
add_inplace(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += y[i];
}

void
mb_nn_block_forward(const struct mb_nn_block *blk, float *x, uint32_t n, uint32_t t, float *scratch)
{
	const uint32_t d = blk->d, dh = d / blk->heads;
	const uint32_t rows = n * t;
	const float scale = 1.0f / sqrtf((float)dh);
	float *a = scratch;		 /* [rows x d]: LayerNorm out, attention out */
	float *q = a + (size_t)rows * d; /* [rows x d] */
	float *k = q + (size_t)rows * d; /* [rows x d] */
	float *v = k + (size_t)rows * d; /* [rows x d] */
	float *s = v + (size_t)rows * d; /* [t x t] scores of one head */
	float *h = q;			 /* MLP hidden [MLP_ROWS x ff], after attention */

	/* attention */
	mb_nn_layernorm(x, rows, d, blk->ln1_g, blk->ln1_b, blk->eps, a);
	mb_nn_linear(a, rows, d, blk->wq, blk->bq, d, q);
	mb_nn_linear(a, rows, d, blk->wk, blk->bk, d, k);
	mb_nn_linear(a, rows, d, blk->wv, blk->bv, d, v);
	for (uint32_t i = 0; i < n; i++) {
		size_t base = (size_t)i * t * d;

		for (uint32_t hd = 0; hd < blk->heads; hd++) {
			size_t off = base + (size_t)hd * dh;

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)t,
				    (int)dh, scale, q + off, (int)d, k + off, (int)d, 0.0f, s,
				    (int)t);
			softmax_rows(s, t, t);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)t, (int)dh,
				    (int)t, 1.0f, s, (int)t, v + off, (int)d, 0.0f, a + off,
				    (int)d);
		}
	}
	mb_nn_linear(a, rows, d, blk->wo, blk->bo, d, q);
	add_inplace(x, q, (size_t)rows * d);

	/* MLP, MLP_ROWS rows at a time */
	mb_nn_layernorm(x, rows, d, blk->ln2_g, blk->ln2_b, blk->eps, a);
	for (uint32_t r0 = 0; r0 < rows; r0 += MLP_ROWS) {
		uint32_t c = rows - r0 < MLP_ROWS ? rows - r0 : MLP_ROWS;
		float *ac = a + (size_t)r0 * d;

		mb_nn_linear(ac, c, d, blk->w1, blk->b1, blk->ff, h);
		mb_nn_gelu_inplace(h, (size_t)c * blk->ff);
		mb_nn_linear(h, c, blk->ff, blk->w2, blk->b2, d, ac);
		add_inplace(x + (size_t)r0 * d, ac, (size_t)c * d);
	}
}
