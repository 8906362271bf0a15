/*
 * gpu_bytes_test.c (suite "unit", no GPU): the device memory of whisper, videomae and clap on
 * CUDA, as the service admits it (mb_builtin_net_gpu_bytes(): worker bytes, and batch + n *
 * item bytes a run allocates), from the one formula the runs' allocation is sized by
 * (cuda_tf_internal.h: the parts of a run's allocation). The arithmetic is called directly;
 * the numbers below are derived by hand from the buffers, so that a change in them shows.
 *
 * Common: a worker holds the cuBLAS workspace, 32 MiB = 33,554,432 (whisper and clap: plus
 * their cuFFT work area, which cuFFT sizes at load: given here as 0, and as 4096 once). Every
 * part of a run's allocation costs 256 bytes of alignment in batch; batch also has the pool's
 * page, 2 MiB = 2,097,152. ps = 2 (bf16) or 4 (f32).
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
 *
 * clap (spec 256, patch and stride 4: a grid of 64 x 64 = 4096 tokens at stage 0, a quarter
 * of them and twice the width at each later stage; windows of 8 x 8 = 64 tokens; 64 mel bins;
 * projection 512; 15 parts). Batch, for every size and precision (the front end, one item at
 * a time): padded 481,024 x 4 = 1,924,096; frames 1001 x 1024 x 8 = 8,200,192; spectrum
 * 1001 x 513 x 16 = 8,216,208; log-mel 1001 x 64 x 4 = 256,256; image 256 x 256 x 4 =
 * 262,144; 15 x 256 = 3,840; the page 2,097,152: 20,959,888 (19.99 MiB).
 * Per item: x 4096 E 4 (every later stage's t d, a merge's [t/4 x 4d] included, is no more);
 * a, q, k, v 4 x 4096 E ps; big 4 x the largest of a stage's qkv t 3d, scores t heads 64
 * and MLP t ff (the merge's gather, t d, and the head's norm, 64 x 8E, are smaller), or
 * the patch columns 4096 x 16 ps if larger (never: 131,072 | 262,144); PCM 480,000 x 4 =
 * 1,920,000; pooled 8E x 4; hidden and embedding 2 x 512 x 4 = 4,096.
 *   clap-htsat-unfused (E 96, heads 4, 8, 16, 32, ff 4E): x 1,572,864; a..v 4 x 786,432 =
 *     3,145,728 | 6,291,456; big: stage 0's MLP 4096 x 384 = 1,572,864 floats (its qkv
 *     1,179,648, scores 1,048,576; stage 1's 786,432 at most) = 6,291,456 bytes; PCM
 *     1,920,000; pooled 768 x 4 = 3,072; 4,096. bf16 12,937,216 (12.34 MiB), f32 16,082,944
 *     (15.34 MiB).
 *   tiny (E 32, heads 2, 4, 8, 16, ff 4E): x 524,288; a..v 4 x 262,144 = 1,048,576 |
 *     2,097,152; big: stage 0's scores 4096 x 2 x 64 = its MLP 4096 x 128 = 524,288 floats
 *     (qkv 393,216) = 2,097,152 bytes; PCM 1,920,000; pooled 256 x 4 = 1,024; 4,096. bf16
 *     5,595,136 (5.34 MiB), f32 6,643,712 (6.34 MiB).
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

/* a size of clap: its batch bytes (any precision), its item bytes at bf16 and at f32 */
struct clap_case {
	const char *name;
	uint32_t embed, depths[4], heads[4];
	uint64_t batch, item_bf16, item_f32;
};

static const struct clap_case g_clap[] = {
	{"clap-htsat-unfused", 96, {2, 2, 6, 2}, {4, 8, 16, 32}, 20959888, 12937216, 16082944},
	{"clap tiny", 32, {2, 2, 2, 2}, {2, 4, 8, 16}, 20959888, 5595136, 6643712},
};

#define N_WHISPER (sizeof(g_whisper) / sizeof(g_whisper[0]))
#define N_VIDEOMAE (sizeof(g_videomae) / sizeof(g_videomae[0]))
#define N_CLAP (sizeof(g_clap) / sizeof(g_clap[0]))

/* A case's sizes as clap_layout.c's presets give them: 4 stages, the MLP 4 x each width. */
static struct mb_cuda_clap_sizes
clap_sizes(const struct clap_case *c)
{
	struct mb_cuda_clap_sizes z = {0};

	z.embed = c->embed;
	z.stages = 4;
	for (uint32_t s = 0; s < 4; s++) {
		z.depths[s] = c->depths[s];
		z.heads[s] = c->heads[s];
		z.ff[s] = 4 * (c->embed << s);
	}
	z.window = 8;
	z.patch = 4;
	z.stride = 4;
	z.spec = 256;
	z.mels = 64;
	z.proj = 512;
	return z;
}

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

static void
test_clap_figures(void)
{
	static const enum mb_tf_prec precs[] = {MB_TF_BF16, MB_TF_F32};

	for (size_t i = 0; i < N_CLAP; i++) {
		const struct clap_case *c = &g_clap[i];
		const struct mb_cuda_clap_sizes z = clap_sizes(c);

		for (size_t j = 0; j < 2; j++) {
			const uint64_t item = precs[j] == MB_TF_BF16 ? c->item_bf16 : c->item_f32;
			struct mb_tf_mem m;

			mb_cuda_clap_mem(&z, precs[j], 0, &m);
			printf("\n    %-18s %-4s worker %llu, batch %llu + n x %llu", c->name,
			       precs[j] == MB_TF_BF16 ? "bf16" : "f32",
			       (unsigned long long)m.worker, (unsigned long long)m.batch,
			       (unsigned long long)m.item);
			CU_ASSERT_EQUAL(m.worker, WS);
			CU_ASSERT_EQUAL(m.batch, c->batch);
			CU_ASSERT_EQUAL(m.item, item);
			/* the cuFFT work area is the worker's, on top of the workspace */
			mb_cuda_clap_mem(&z, precs[j], 4096, &m);
			CU_ASSERT_EQUAL(m.worker, WS + 4096);
			CU_ASSERT_EQUAL(m.batch, c->batch);
			CU_ASSERT_EQUAL(m.item, item);
		}
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
	for (size_t i = 0; i < 2 * N_CLAP; i++) {
		const struct clap_case *c = &g_clap[i / 2];
		const struct mb_cuda_clap_sizes z = clap_sizes(c);
		const enum mb_tf_prec prec = i % 2 ? MB_TF_F32 : MB_TF_BF16;
		const uint64_t ps = mb_tf_prec_size(prec);
		struct mb_tf_part p[MB_CUDA_CLAP_PARTS];
		struct mb_tf_mem m;

		mb_cuda_clap_parts(&z, prec, p);
		mb_cuda_clap_mem(&z, prec, 0, &m);
		check_parts(p, MB_CUDA_CLAP_PARTS, &m);
		/*
		 * Per item, what each stage puts in the parts fits: its x (and a merge's output)
		 * in x, a merge's LayerNorm [t/4 x 4d] in a, in prec; in big its qkv, scores, MLP
		 * and a merge's gather [t/4 x 4d] (F32), the patch columns [4096 x 16] (prec)
		 * and the head's norm [64 x 8E] (F32).
		 */
		CU_ASSERT(4096ull * 16 * ps <= p[MB_TF_PART_BIG].item);
		CU_ASSERT(64ull * 8 * c->embed * 4 <= p[MB_TF_PART_BIG].item);
		for (uint32_t s = 0; s < 4; s++) {
			const uint64_t t = 4096ull >> (2 * s), d = (uint64_t)c->embed << s;

			CU_ASSERT(t * d * 4 <= p[MB_TF_PART_X].item);
			CU_ASSERT(t * d * ps <= p[MB_TF_PART_A].item);
			CU_ASSERT(t * 3 * d * 4 <= p[MB_TF_PART_BIG].item);
			CU_ASSERT(t * c->heads[s] * 64 * 4 <= p[MB_TF_PART_BIG].item);
			CU_ASSERT(t * z.ff[s] * 4 <= p[MB_TF_PART_BIG].item);
			CU_ASSERT(t / 4 * 4 * d * 4 <= p[MB_TF_PART_BIG].item);
		}
		CU_ASSERT_EQUAL(p[MB_CUDA_CLAP_PART_IN].item, 1920000);
		CU_ASSERT_EQUAL(p[MB_CUDA_CLAP_PART_POOLED].item, 8ull * c->embed * 4);
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
	{"clap-htsat-unfused and tiny at bf16 and f32: the hand-derived figures",
	 test_clap_figures},
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
