/*
 * gpu_bytes_test.c (suite "unit", no GPU): the device memory of whisper and videomae on CUDA,
 * as the service admits it (mb_builtin_net_gpu_bytes(): worker bytes, and batch + n * item
 * bytes a run allocates), from the one formula the runs' allocation is sized by
 * (cuda_tf_internal.h: the parts of a run's allocation). The arithmetic is called directly;
 * the numbers below are derived by hand from the buffers, so that a change in them shows.
 *
 * Common: a worker holds the cuBLAS workspace, 32 MiB = 33,554,432 (whisper: plus its cuFFT
 * work area, which cuFFT sizes at load: given here as 0, and as 4096 once). Every part of a
 * run's allocation costs 256 bytes of alignment in batch; batch also has the pool's page,
 * 2 MiB = 2,097,152. ps = 2 (bf16) or 4 (f32).
 *
 * Whisper (1500 positions, 3000 mel frames, 480000 samples; 12 parts), batch for every size
 * and precision:
 *   padded 480,400 x 4 = 1,921,600; frames 3000 x 400 x 4 = 4,800,000; spectrum 3000 x 201
 *   x 8 = 4,824,000; the big region's alignment of conv1's output 256; 12 x 256 = 3,072;
 *   the page 2,097,152: 13,646,080 (13.01 MiB).
 * Per item: x 1500 d 4; a, q, k, v 4 x 1500 d ps; big 4 x max(1500 x 3d, heads x 1500^2,
 * 1500 ffn), or the stem's max(3000 x 3 n_mels, 1500 x 3d) ps + 3000 d 4 if larger; PCM
 * 480,000 x 4 = 1,920,000; log-mel 3000 n_mels 4; its max 4.
 *   tiny (d 384, 6 heads, ffn 1536, 80 mels): x 2,304,000; a..v 4,608,000 | 9,216,000; big:
 *     scores 6 x 2,250,000 = 13,500,000 floats (qkv 1,728,000, mlp 2,304,000) = 54,000,000
 *     bytes (stem 1,728,000 ps + 4,608,000 = 8,064,000 | 11,520,000: smaller); 1,920,000 +
 *     960,000 + 4 = 2,880,004. bf16 63,792,004 (60.84 MiB), f32 68,400,004 (65.23 MiB).
 *   base (512, 8, 2048, 80): x 3,072,000; a..v 6,144,000 | 12,288,000; big 8 x 2,250,000 x 4
 *     = 72,000,000 (stem 10,752,000 | 15,360,000); 2,880,004. bf16 84,096,004 (80.20 MiB),
 *     f32 90,240,004 (86.06 MiB).
 *   large-v3 (1280, 20, 5120, 128): x 7,680,000; a..v 15,360,000 | 30,720,000; big 20 x
 *     2,250,000 x 4 = 180,000,000 (qkv 5,760,000 and mlp 7,680,000 floats; stem 26,880,000
 *     | 38,400,000); 1,920,000 + 1,536,000 + 4 = 3,456,004. bf16 206,496,004 (196.93 MiB),
 *     f32 221,856,004 (211.58 MiB).
 *
 * VideoMAE-base (1568 tokens, d 768, 12 heads, ffn 3072, 400 classes; 10 parts): batch 10 x
 * 256 + 2,097,152 = 2,099,712 (2.00 MiB). Per item: x 1568 x 768 x 4 = 4,816,896; a..v 4 x
 * 2,408,448 = 9,633,792 | 19,267,584; big: scores 12 x 1568^2 = 29,503,488 floats (qkv
 * 3,612,672, mlp 4,816,896) = 118,013,952 bytes (tubelets 1568 x 1536 ps = 4,816,896 |
 * 9,633,792: smaller); clip 16 x 224 x 224 x 3 = 2,408,448; pooled and normed 2 x 768 x 4 =
 * 6,144; logits 400 x 4 = 1,600. bf16 134,880,832 (128.63 MiB), f32 144,514,624 (137.82 MiB).
 */
#include <errno.h>
#include <stdint.h>

#include "cuda_tf_internal.h"
#include "mb_models.h"
#include "mb_test.h"

#define WS 33554432ull
#define PAGE 2097152ull

struct whisper_case {
	const char *name;
	uint32_t d, heads, ffn, n_mels;
	enum mb_tf_prec prec;
	uint64_t batch, item;
};

static const struct whisper_case g_whisper[] = {
	{"whisper-tiny bf16", 384, 6, 1536, 80, MB_TF_BF16, 13646080, 63792004},
	{"whisper-tiny f32", 384, 6, 1536, 80, MB_TF_F32, 13646080, 68400004},
	{"whisper-base bf16", 512, 8, 2048, 80, MB_TF_BF16, 13646080, 84096004},
	{"whisper-base f32", 512, 8, 2048, 80, MB_TF_F32, 13646080, 90240004},
	{"whisper-large-v3 bf16", 1280, 20, 5120, 128, MB_TF_BF16, 13646080, 206496004},
	{"whisper-large-v3 f32", 1280, 20, 5120, 128, MB_TF_F32, 13646080, 221856004},
};

struct videomae_case {
	const char *name;
	uint32_t d, heads, ffn, classes;
	enum mb_tf_prec prec;
	uint64_t batch, item;
};

static const struct videomae_case g_videomae[] = {
	{"videomae-base bf16", 768, 12, 3072, 400, MB_TF_BF16, 2099712, 134880832},
	{"videomae-base f32", 768, 12, 3072, 400, MB_TF_F32, 2099712, 144514624},
};

#define N_WHISPER (sizeof(g_whisper) / sizeof(g_whisper[0]))
#define N_VIDEOMAE (sizeof(g_videomae) / sizeof(g_videomae[0]))

static void
test_whisper_figures(void)
{
	for (size_t i = 0; i < N_WHISPER; i++) {
		const struct whisper_case *c = &g_whisper[i];
		struct mb_tf_mem m;

		mb_cuda_whisper_mem(c->d, c->heads, c->ffn, c->n_mels, c->prec, 0, &m);
		printf("\n    %-22s worker %llu, batch %llu + n x %llu", c->name,
		       (unsigned long long)m.worker, (unsigned long long)m.batch,
		       (unsigned long long)m.item);
		CU_ASSERT_EQUAL(m.worker, WS);
		CU_ASSERT_EQUAL(m.batch, c->batch);
		CU_ASSERT_EQUAL(m.item, c->item);
		/* the cuFFT work area is the worker's, on top of the workspace */
		mb_cuda_whisper_mem(c->d, c->heads, c->ffn, c->n_mels, c->prec, 4096, &m);
		CU_ASSERT_EQUAL(m.worker, WS + 4096);
		CU_ASSERT_EQUAL(m.batch, c->batch);
		CU_ASSERT_EQUAL(m.item, c->item);
	}
}

static void
test_videomae_figures(void)
{
	for (size_t i = 0; i < N_VIDEOMAE; i++) {
		const struct videomae_case *c = &g_videomae[i];
		struct mb_tf_mem m;

		mb_cuda_videomae_mem(c->d, c->heads, c->ffn, c->classes, c->prec, &m);
		printf("\n    %-22s worker %llu, batch %llu + n x %llu", c->name,
		       (unsigned long long)m.worker, (unsigned long long)m.batch,
		       (unsigned long long)m.item);
		CU_ASSERT_EQUAL(m.worker, WS);
		CU_ASSERT_EQUAL(m.batch, c->batch);
		CU_ASSERT_EQUAL(m.item, c->item);
	}
}

/*
 * What a run asks for is exactly batch - page + n * item for every n (linear, the same step
 * each item), and the parts carved from it for n items start 256-byte aligned, in order,
 * without overlap, and end within it, wherever the allocation starts.
 */
static void
check_parts(const struct mb_tf_part *p, uint32_t k, const struct mb_tf_mem *m)
{
	/* an allocation's start as the pool might give it: aligned, or not (the carve copes) */
	static const uintptr_t bases[] = {0x7f0000000000u, 0x7f0000000000u + 17};

	for (uint32_t n = 0; n <= 64; n++) {
		uint64_t bytes = mb_tf_parts_bytes(p, k, n);

		CU_ASSERT_EQUAL(bytes, m->batch - PAGE + (uint64_t)n * m->item);
		CU_ASSERT_EQUAL(mb_tf_parts_bytes(p, k, n + 1) - bytes, m->item);
		for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
			void *at[32];
			uintptr_t end = bases[b];

			CU_ASSERT_FATAL(k <= 32);
			mb_tf_carve((void *)bases[b], p, k, n, at);
			for (uint32_t i = 0; i < k; i++) {
				uintptr_t start = (uintptr_t)at[i];

				CU_ASSERT_EQUAL(start % MB_TF_ALIGN, 0);
				CU_ASSERT(start >= end);
				end = start + (uintptr_t)(p[i].fixed + (uint64_t)n * p[i].item);
			}
			CU_ASSERT(end <= bases[b] + (uintptr_t)bytes);
		}
	}
}

static void
test_linear_in_n(void)
{
	for (size_t i = 0; i < N_WHISPER; i++) {
		const struct whisper_case *c = &g_whisper[i];
		struct mb_tf_part p[MB_CUDA_WHISPER_PARTS];
		struct mb_tf_mem m;

		mb_cuda_whisper_parts(c->d, c->heads, c->ffn, c->n_mels, c->prec, p);
		mb_cuda_whisper_mem(c->d, c->heads, c->ffn, c->n_mels, c->prec, 0, &m);
		check_parts(p, MB_CUDA_WHISPER_PARTS, &m);
		/* the stem fits in the big region: n items' columns, aligned, then conv1's output
		 */
		for (uint32_t n = 1; n <= 64; n++) {
			uint64_t col =
				((uint64_t)n * mb_cuda_whisper_col_item(c->d, c->n_mels, c->prec) +
				 MB_TF_ALIGN - 1) &
				~(uint64_t)(MB_TF_ALIGN - 1);
			uint64_t h1 = (uint64_t)n * 3000 * c->d * 4;

			CU_ASSERT(col + h1 <=
				  p[MB_TF_PART_BIG].fixed + (uint64_t)n * p[MB_TF_PART_BIG].item);
		}
	}
	for (size_t i = 0; i < N_VIDEOMAE; i++) {
		const struct videomae_case *c = &g_videomae[i];
		struct mb_tf_part p[MB_CUDA_VIDEOMAE_PARTS];
		struct mb_tf_mem m;

		mb_cuda_videomae_parts(c->d, c->heads, c->ffn, c->classes, c->prec, p);
		mb_cuda_videomae_mem(c->d, c->heads, c->ffn, c->classes, c->prec, &m);
		check_parts(p, MB_CUDA_VIDEOMAE_PARTS, &m);
	}
}

/* Not a network on CUDA: -ENOENT, and zeros. */
static void
test_api_refuses(void)
{
	uint64_t w = 1, b = 1, it = 1;

	CU_ASSERT_EQUAL(mb_builtin_net_gpu_bytes("identity", NULL, &w, &b, &it), -ENOENT);
	CU_ASSERT(w == 0 && b == 0 && it == 0);
	w = b = it = 1;
	CU_ASSERT_EQUAL(mb_builtin_net_gpu_bytes("whisper", NULL, &w, &b, &it), -ENOENT);
	CU_ASSERT(w == 0 && b == 0 && it == 0);
	CU_ASSERT_EQUAL(mb_builtin_net_gpu_bytes("no-such-model", NULL, &w, &b, &it), -ENOENT);
}

static const struct mb_test_case cases[] = {
	{"whisper tiny, base, large-v3 at bf16 and f32: the hand-derived figures",
	 test_whisper_figures},
	{"videomae-base at bf16 and f32: the hand-derived figures", test_videomae_figures},
	{"a run's allocation is batch + n x item exactly, and its parts fit in it",
	 test_linear_in_n},
	{"not a network on CUDA: -ENOENT", test_api_refuses},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"networks' device memory on CUDA", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("gpu_bytes_test", suites);
}
