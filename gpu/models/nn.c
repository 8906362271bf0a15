/*
 * nn.c: convolution (im2col + SGEMM), linear layers, GELU, LayerNorm, the pre-LN
 * transformer block and the Swin block (window attention, patch merging) on the CPU with
 * OpenBLAS.
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

		for (uint32_t c = 0; c < cout; c++)
			row[c] += b[c];
	}
	if (gelu)
		mb_nn_vec_gelu(y, (size_t)t_out * cout);
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
	mb_nn_vec_gelu(x, n);
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
		mb_nn_vec_exp_shift(row, cols, max);
		for (uint32_t c = 0; c < cols; c++)
			sum += row[c];
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

/* ---- Swin ---- */

void
mb_nn_swin_bias(const float *table, uint32_t window, uint32_t heads, float *out)
{
	const uint32_t n = window * window, side = 2 * window - 1;

	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < n; j++) {
			uint32_t dy = i / window + window - 1 - j / window;
			uint32_t dx = i % window + window - 1 - j % window;
			const float *row = table + (size_t)(dy * side + dx) * heads;

			for (uint32_t h = 0; h < heads; h++)
				out[((size_t)h * n + i) * n + j] = row[h];
		}
}

size_t
mb_nn_swin_scratch(const struct mb_nn_swin *blk, uint32_t n)
{
	size_t rows = (size_t)n * blk->h * blk->w, d = blk->d,
	       nw = (size_t)blk->window * blk->window;
	size_t attn = 3 * rows * d + nw * nw;
	size_t mlp = (rows < MLP_ROWS ? rows : MLP_ROWS) * blk->ff;

	return rows * d + (attn > mlp ? attn : mlp);
}

/*
 * The row in its grid of the token at row @p part of the window order: the token (y, x) of
 * the grid rolled by -shift, i.e. the original's ((y + shift) % h, (x + shift) % w), sits in
 * window (y / window, x / window) at (y % window, x % window).
 */
static size_t
window_source(const struct mb_nn_swin *blk, uint32_t part)
{
	const uint32_t ws = blk->window, nt = ws * ws, nwx = blk->w / ws;
	const uint32_t win = part / nt, t = part % nt;
	const uint32_t y = win / nwx * ws + t / ws, x = win % nwx * ws + t % ws;

	return (size_t)((y + blk->shift) % blk->h) * blk->w + (x + blk->shift) % blk->w;
}

/* The region (0..2) of coordinate @p c of a rolled axis of @p len: HF's three slices. */
static uint32_t
region_of(uint32_t c, uint32_t len, uint32_t window, uint32_t shift)
{
	return c < len - window ? 0 : c < len - shift ? 1 : 2;
}

/*
 * Attention inside every window of one grid: q, k, v [(h w) x d] in window order; the
 * result into @p out (same layout). @p s: N x N scores.
 */
static void
swin_attention(const struct mb_nn_swin *blk, const float *q, const float *k, const float *v,
	       float *s, float *out)
{
	const uint32_t d = blk->d, dh = d / blk->heads, ws = blk->window, nt = ws * ws;
	const uint32_t nwy = blk->h / ws, nwx = blk->w / ws;
	const float scale = 1.0f / sqrtf((float)dh);
	uint8_t label[1024]; /* region of each token of a window (nt <= 1024) */

	for (uint32_t wy = 0; wy < nwy; wy++)
		for (uint32_t wx = 0; wx < nwx; wx++) {
			size_t base = ((size_t)wy * nwx + wx) * nt * d;
			int masked = 0;

			/* only windows that reach into the rolled-in border have a mask */
			if (blk->shift > 0 && (wy == nwy - 1 || wx == nwx - 1)) {
				for (uint32_t t = 0; t < nt; t++) {
					uint32_t y = wy * ws + t / ws, x = wx * ws + t % ws;

					label[t] =
						(uint8_t)(region_of(y, blk->h, ws, blk->shift) * 3 +
							  region_of(x, blk->w, ws, blk->shift));
					masked |= label[t] != label[0];
				}
			}
			for (uint32_t hd = 0; hd < blk->heads; hd++) {
				size_t off = base + (size_t)hd * dh;
				const float *bias = blk->bias + (size_t)hd * nt * nt;

				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt,
					    (int)nt, (int)dh, scale, q + off, (int)d, k + off,
					    (int)d, 0.0f, s, (int)nt);
				add_inplace(s, bias, (size_t)nt * nt);
				if (masked)
					for (uint32_t i = 0; i < nt; i++)
						for (uint32_t j = 0; j < nt; j++)
							if (label[i] != label[j])
								s[(size_t)i * nt + j] += -100.0f;
				softmax_rows(s, nt, nt);
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt,
					    (int)dh, (int)nt, 1.0f, s, (int)nt, v + off, (int)d,
					    0.0f, out + off, (int)d);
			}
		}
}

void
mb_nn_swin_forward(const struct mb_nn_swin *blk, float *x, uint32_t n, float *scratch)
{
	const uint32_t d = blk->d, grid = blk->h * blk->w, rows = n * grid;
	float *a = scratch;		 /* [rows x d]: windows in order, then attention out */
	float *q = a + (size_t)rows * d; /* [rows x d] */
	float *k = q + (size_t)rows * d; /* [rows x d] */
	float *v = k + (size_t)rows * d; /* [rows x d] */
	float *s = v + (size_t)rows * d; /* [nt x nt] scores of one window and head */
	float *h = q;			 /* MLP hidden [MLP_ROWS x ff], after attention */

	/* the rolled grid cut into windows (LayerNorm is per token: after the reorder) */
	for (uint32_t i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * grid * d;
		float *ai = a + (size_t)i * grid * d;

		for (uint32_t part = 0; part < grid; part++)
			memcpy(ai + (size_t)part * d, xi + window_source(blk, part) * d,
			       sizeof(float) * d);
	}
	mb_nn_layernorm(a, rows, d, blk->ln1_g, blk->ln1_b, blk->eps, a);
	mb_nn_linear(a, rows, d, blk->wq, blk->bq, d, q);
	mb_nn_linear(a, rows, d, blk->wk, blk->bk, d, k);
	mb_nn_linear(a, rows, d, blk->wv, blk->bv, d, v);
	for (uint32_t i = 0; i < n; i++) {
		size_t off = (size_t)i * grid * d;

		swin_attention(blk, q + off, k + off, v + off, s, a + off);
	}
	mb_nn_linear(a, rows, d, blk->wo, blk->bo, d, q);
	/* windows back to the grid, rolled back, added to the residual */
	for (uint32_t i = 0; i < n; i++) {
		float *xi = x + (size_t)i * grid * d;
		const float *qi = q + (size_t)i * grid * d;

		for (uint32_t part = 0; part < grid; part++)
			add_inplace(xi + window_source(blk, part) * d, qi + (size_t)part * d, d);
	}

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

void
mb_nn_patch_merge(const float *x, uint32_t n, uint32_t h, uint32_t w, uint32_t d, const float *ln_g,
		  const float *ln_b, float eps, const float *red, float *tmp, float *y)
{
	const uint32_t oh = h / 2, ow = w / 2, rows = n * oh * ow;
	const size_t dd = d * sizeof(float);

	for (uint32_t i = 0; i < n; i++)
		for (uint32_t oy = 0; oy < oh; oy++)
			for (uint32_t ox = 0; ox < ow; ox++) {
				const float *src = x + (((size_t)i * h + 2 * oy) * w + 2 * ox) * d;
				float *dst = tmp + (((size_t)i * oh + oy) * ow + ox) * 4 * d;

				/* (y, x), (y + 1, x), (y, x + 1), (y + 1, x + 1) */
				memcpy(dst, src, dd);
				memcpy(dst + d, src + (size_t)w * d, dd);
				memcpy(dst + 2 * d, src + d, dd);
				memcpy(dst + 3 * d, src + (size_t)w * d + d, dd);
			}
	mb_nn_layernorm(tmp, rows, 4 * d, ln_g, ln_b, eps, tmp);
	mb_nn_linear(tmp, rows, 4 * d, red, NULL, 2 * d, y);
}
