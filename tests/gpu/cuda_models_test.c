/*
 * cuda_models_test.c (suite "gpu"): the built-in models' CUDA code against their CPU
 * reference, on the same inputs and the same (generated) weights. Where there is no GPU, it
 * skips and prints the probe's reason.
 *
 * logmel: max |GPU - CPU| over every output value, both FP32 (the CPU code is itself checked
 * against float64 references in tests/unit/gpu):
 *   logmel    1e-4   (values about -1.5..1.5; cuFFT vs FFTW rounding in the quietest bins)
 *
 * whisper, clap and videomae at their test size "tiny" (placeholder checkpoints), at each
 * precision, in batches of 1 and 3 (items of mixed lengths, S16 and F32; clap's include the
 * shortest clip, 25 ms, which repeatpad tiles 400 times, one that it tiles 3 times and then
 * zero-pads, and one of exactly 10 s; videomae with a window part among top-k items): every
 * value against the CPU's F32, with `scale` = max |CPU value| of the item (whisper's
 * LayerNormed outputs reach about 3.6, clap's L2-normalised embeddings about 0.13,
 * videomae's logits about 4.9):
 *
 *                      f32               f16                bf16
 *   whisper   max      1e-4 scale        5e-3 scale         2.5e-2 scale
 *             rms      1e-5 scale        1e-3 scale         5e-3 scale
 *   clap      max      2e-5 scale        4e-3 scale         3e-2 scale
 *             rms      5e-6 scale        1e-3 scale         1e-2 scale
 *             |GPU|    1 within 1e-4 (the L2 normalisation runs in F32 at every precision)
 *   videomae  logits   1e-4 scale (max)  2e-3 scale (max)   1e-2 scale (max)
 *             scores   1e-5              5e-4               2e-3    (top-k probabilities)
 *             top-1    the CPU's class, for every clip whose CPU top-1 leads the top-2 by
 *                      more than twice the logit tolerance (all of them here: margins 0.7 to
 *                      1.0 against at most 0.1); later ranks too while that holds
 *
 * Where the numbers come from. F32: the GPU does the CPU's arithmetic in another order
 * (cuBLAS FMA blocking, tree reductions, cuFFT for FFTW); emulated on the CPU the difference
 * is about 3e-6 on whisper and 1.3e-6 on the logits, the log-mel contributing about 4e-6 (a
 * float64 DFT against FFTW's single precision), so 1e-4 of the scale leaves a wide margin.
 * F16 and BF16 round every GEMM input (weights, LayerNorm outputs, q, k, v, the attention
 * probabilities and output, the GELU output, the im2col columns) to 11 and 8 significant
 * bits: unit roundoff 2^-11 = 4.9e-4 and 2^-8 = 3.9e-3, a relative error of that order per
 * product, compounding over the two blocks. An emulation of exactly these roundings on the
 * CPU (RNE at the same points, F32 accumulation) gives, on these weights (seed 77) and
 * inputs: whisper max 4.2e-3 / rms 6.8e-4 (f16), 3.5e-2 / 5.6e-3 (bf16); videomae logits
 * 2.2e-3 (f16), 1.7e-2 (bf16), top-k scores 4.9e-5, 2.8e-4. The tolerances are about three
 * times those (more for the small ones), room for the GPU's own accumulation order. A real
 * mistake (a head or a channel out of place, a missing bias, a wrong scale) moves values by
 * the order of the scale.
 *
 * clap: its log-mel is double precision on both sides (cuFFT D2Z against clap.c's radix-2
 * FFT: apart by double's round-off), so F32's difference is the encoder's accumulation order
 * through 8 Swin blocks and 3 mergings, then averaged by the mean pool. A host emulation of
 * gpu/cuda_clap.cu itself (its kernels and cuda_tf.cu's run as written, thread by thread,
 * against stand-ins for cuBLAS and cuFFT; every part of a run's allocation guarded) gives at
 * most 7.5e-7 of the scale at the test size and 1.04e-6 at clap-htsat-unfused's; the F32
 * tolerance is 2e-5, tighter than the others', because the mean pool and the L2 normalisation
 * hide mistakes that touch a few frames or windows: injected into that emulation, a reflect
 * padding off by one moves the embedding by 5e-5 of the scale, a window softmax indexing the
 * wrong window by 1.4e-3, a reversed roll or a missing shift mask by about 5e-3, all
 * caught at F32 only (F16's and BF16's tolerances must absorb their rounding). For F16 and BF16 the
 * GEMM inputs are rounded as above (the patch columns, LayerNorm outputs, q, k, v, the
 * probabilities, the attention output, the GELU output, the mergings' LayerNorm outputs; the
 * projection stays F32). The same emulation in float64 (PyTorch, the reference's network with RNE
 * at those points; inputs like these four, weights seed 77) gives max 1.2e-3 / rms 3.5e-4 of the
 * scale (f16) and 1.1e-2 / 3.3e-3 (bf16), the worst item the 25 ms one; the tolerances are about
 * three times those. Not yet run on a GPU.
 *
 * Device memory (whisper, clap, videomae): before each GPU batch the pool the runs allocate
 * from is emptied and its high marks reset; after it, what the run held at most must be the
 * batch's mb_builtin_net_gpu_bytes() figures (batch + n * item, less at most the pool's page),
 * what the pool took from the device at most must be within them, and the run must have given
 * everything back (nothing in use once it returned).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_gpu_probe.h"
#include "mb_models.h"
#include "mb_models_perf.h"
#include "mb_request.h"
#include "mb_test.h"
#include "mb_weights.h"

#define MAX_ITEMS 4

static struct mb_gpu_probe g_probe;
static char g_dir[64];

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

struct side {
	void *state, *worker;
};

static void
up(const struct mb_model_desc *d, int device, const char *weights, struct side *s)
{
	struct mb_model_load_args a = {.device = device, .numa_node = -1, .weights_path = weights};
	char reason[512] = "";
	int rc = d->load(&a, &s->state, reason, sizeof(reason));

	if (rc != 0)
		printf("\n    %s on device %d: %s", d->name, device, reason);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(d->worker_init(s->state, device, &s->worker), 0);
}

static void
down(const struct mb_model_desc *d, struct side *s)
{
	d->worker_fini(s->state, s->worker);
	d->unload(s->state);
}

static int
run(const struct mb_model_desc *d, struct side *s, int device, struct mb_model_item *items,
    uint32_t n)
{
	struct mb_model_batch b = {.items = items,
				   .n_items = n,
				   .device = device,
				   .worker = s->worker,
				   .alloc_result = alloc_result};

	return d->run(s->state, &b);
}

/* The weights @p model reads: a placeholder checkpoint at "tiny" for a network, the weights
 * file for the others; NULL when it reads none. */
static const char *
weights_for(const char *model)
{
	static char path[128];
	const struct mb_builtin_weights *bw = mb_builtin_weights_of(model);
	char err[512];

	if (mb_builtin_is_net(model)) {
		snprintf(path, sizeof(path), "%s/%s", g_dir, model);
		if (access(path, R_OK) != 0)
			CU_ASSERT_EQUAL_FATAL(mb_builtin_net_placeholder(model, "tiny", path, 77,
									 "F32", 0, err,
									 sizeof(err)),
					      0);
		return path;
	}
	if (bw == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.safetensors", g_dir, model);
	if (access(path, R_OK) != 0)
		CU_ASSERT_EQUAL_FATAL(
			mb_weights_generate(path, bw->specs, bw->n, 77, err, sizeof(err)), 0);
	return path;
}

struct input {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
};

static void
make_audio(struct input *in, const char *model, uint32_t rate, uint32_t n, enum mb_media media,
	   uint64_t seed)
{
	in->hdr = (struct mb_request_hdr){
		.version = 1, .media = media, .channels = 1, .sample_rate = rate};
	snprintf(in->hdr.model, sizeof(in->hdr.model), "%s", model);
	in->hdr.payload_len = n * (media == MB_MEDIA_PCM_S16LE ? 2 : 4);
	in->bytes = malloc(in->hdr.payload_len);
	for (uint32_t i = 0; i < n; i++) {
		double v = 0.3 * sin(2 * M_PI * 523 * i / (double)rate) +
			   0.05 * ((double)(mb_test_rand(&seed) % 2001) / 1000.0 - 1.0);

		if (media == MB_MEDIA_PCM_S16LE) {
			int16_t s = (int16_t)lrint(v * 32767);

			memcpy(in->bytes + 2 * i, &s, 2);
		} else {
			float f = (float)v;

			memcpy(in->bytes + 4 * i, &f, 4);
		}
	}
}

static void
make_video(struct input *in, uint64_t seed, bool window_part)
{
	size_t n = 16 * 224 * 224 * 3;

	in->hdr = (struct mb_request_hdr){.version = 1,
					  .media = MB_MEDIA_RGB24,
					  .channels = 3,
					  .frames = 16,
					  .height = 224,
					  .width = 224,
					  .payload_len = (uint32_t)n};
	in->hdr.reserved = window_part ? MB_HDR_WINDOW_PART : 0;
	snprintf(in->hdr.model, sizeof(in->hdr.model), "videomae");
	in->bytes = malloc(n);
	for (size_t i = 0; i < n; i++)
		in->bytes[i] = (uint8_t)((i / 3 % 224) + mb_test_rand(&seed) % 40);
}

static void
items_of(struct input *in, const uint32_t *pick, uint32_t n, struct mb_model_item *items)
{
	for (uint32_t i = 0; i < n; i++)
		items[i] = (struct mb_model_item){.hdr = &in[pick[i]].hdr,
						  .payload = in[pick[i]].bytes,
						  .payload_len = in[pick[i]].hdr.payload_len};
}

static void
free_results(struct mb_model_item *items, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(items[i].result);
		items[i].result = NULL;
	}
}

/* Same shape and type, every GPU value finite. */
static void
same_shape(const struct mb_model_item *a, const struct mb_model_item *b)
{
	CU_ASSERT_FALSE(a->failed);
	CU_ASSERT_FALSE(b->failed);
	CU_ASSERT_EQUAL(a->rows, b->rows);
	CU_ASSERT_EQUAL(a->cols, b->cols);
	CU_ASSERT_EQUAL(a->result_type, b->result_type);
	CU_ASSERT_EQUAL_FATAL(a->result_len, b->result_len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b->result);
	if (b->result_type == MB_RESULT_F32)
		for (uint32_t k = 0; k < b->result_len / 4; k++)
			CU_ASSERT_FATAL(isfinite(((const float *)b->result)[k]));
}

/* ---- logmel: F32 against F32 ---- */

/* Run @p in on the CPU and on GPU 0; compare F32 results within @p tol. */
static void
compare_f32(const struct mb_model_desc *d, struct input *in, uint32_t n, double tol)
{
	const char *w = weights_for(d->name);
	struct side cpu, gpu;
	struct mb_model_item a[MAX_ITEMS], b[MAX_ITEMS];
	const uint32_t pick[MAX_ITEMS] = {0, 1, 2, 3};
	double worst = 0;

	up(d, -1, w, &cpu);
	up(d, 0, w, &gpu);
	items_of(in, pick, n, a);
	items_of(in, pick, n, b);
	CU_ASSERT_EQUAL_FATAL(run(d, &cpu, -1, a, n), 0);
	CU_ASSERT_EQUAL_FATAL(run(d, &gpu, 0, b, n), 0);
	for (uint32_t i = 0; i < n; i++) {
		same_shape(&a[i], &b[i]);
		for (uint32_t k = 0; k < a[i].result_len / 4; k++)
			worst = fmax(worst,
				     fabs(((float *)a[i].result)[k] - ((float *)b[i].result)[k]));
	}
	free_results(a, n);
	free_results(b, n);
	printf("\n    %s: %u items, max |GPU - CPU| = %.2e (tolerance %.0e)", d->name, n, worst,
	       tol);
	CU_ASSERT(worst <= tol);
	down(d, &gpu);
	down(d, &cpu);
	for (uint32_t i = 0; i < n; i++)
		free(in[i].bytes);
}

static void
test_logmel(void)
{
	struct input in[3];

	make_audio(&in[0], "logmel", 16000, 16000, MB_MEDIA_PCM_S16LE, 1);
	make_audio(&in[1], "logmel", 16000, 8123, MB_MEDIA_PCM_F32LE, 2);
	make_audio(&in[2], "logmel", 16000, 30 * 16000, MB_MEDIA_PCM_S16LE, 3);
	compare_f32(&mb_model_logmel, in, 3, 1e-4);
}

/* ---- a network's device memory, run by run ---- */

/* Empty the pool of device 0 and reset its high marks (the worker is up: it holds the pool). */
static void
pool_reset(void)
{
	struct mb_tf_pool_stats st;
	char reason[256] = "";
	int rc = mb_models_gpu_pool(0, true, &st, reason, sizeof(reason));

	if (rc != 0)
		printf("\n    the pool of device 0: %s", reason);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(st.used, 0);
	CU_ASSERT_EQUAL(st.reserved, 0);
}

/* After a batch of @p n on @p gpu: the pool's high marks against the model's figures. */
static void
pool_check(const struct mb_model_desc *d, const struct side *gpu, uint32_t n)
{
	const double mib = 1024.0 * 1024.0;
	uint64_t worker = 0, batch = 0, item = 0, want;
	struct mb_tf_pool_stats st;
	char reason[256] = "";

	CU_ASSERT_EQUAL_FATAL(mb_builtin_net_gpu_bytes(d->name, gpu->state, &worker, &batch, &item),
			      0);
	CU_ASSERT_EQUAL_FATAL(mb_models_gpu_pool(0, false, &st, reason, sizeof(reason)), 0);
	want = batch + n * item;
	printf("\n    %s, batch of %u: %.2f MiB admitted (%.2f + %u x %.2f; a worker keeps "
	       "%.2f): the run held %.2f MiB at most, the pool %.2f MiB",
	       d->name, n, want / mib, batch / mib, n, item / mib, worker / mib, st.used_high / mib,
	       st.reserved_high / mib);
	CU_ASSERT(worker >= MB_TF_BLAS_WS);
	CU_ASSERT(st.used == 0);			    /* given back before run() returned */
	CU_ASSERT(st.used_high + MB_TF_POOL_GRAIN >= want); /* the allocation is the formula's */
	CU_ASSERT(st.used_high <= want);
	CU_ASSERT(st.reserved_high <= want);
}

/* ---- the networks, at each precision ---- */

static const enum mb_net_precision g_precs[] = {MB_NET_F32, MB_NET_F16, MB_NET_BF16};

/* whisper's tolerances, in units of the item's max |CPU value|, by precision */
static const double g_whisper_max[] = {1e-4, 5e-3, 2.5e-2};
static const double g_whisper_rms[] = {1e-5, 1e-3, 5e-3};

/* the batches (indices into the inputs): one item, three of mixed lengths, one again (the
 * worker's pinned staging grown by the second and reused by the third; the device memory is
 * each run's own, from the pool) */
static const uint32_t g_batches[][MAX_ITEMS] = {{3}, {0, 1, 2}, {1}};
static const uint32_t g_batch_n[] = {1, 3, 1};
#define N_BATCHES (sizeof(g_batch_n) / sizeof(g_batch_n[0]))

static void
test_whisper(void)
{
	const struct mb_model_desc *d = &mb_model_whisper;
	const char *w = weights_for(d->name);
	struct input in[4];
	struct mb_model_item ref[4];
	const uint32_t all[4] = {0, 1, 2, 3};
	struct side cpu;

	make_audio(&in[0], "whisper", 16000, 400, MB_MEDIA_PCM_S16LE, 4); /* the shortest */
	make_audio(&in[1], "whisper", 16000, 48000, MB_MEDIA_PCM_F32LE, 5);
	make_audio(&in[2], "whisper", 16000, 30 * 16000, MB_MEDIA_PCM_S16LE, 6); /* a window */
	make_audio(&in[3], "whisper", 16000, 17 * 16000 + 77, MB_MEDIA_PCM_F32LE, 7);
	up(d, -1, w, &cpu);
	items_of(in, all, 4, ref);
	CU_ASSERT_EQUAL_FATAL(run(d, &cpu, -1, ref, 4), 0);
	down(d, &cpu);

	for (size_t p = 0; p < sizeof(g_precs) / sizeof(g_precs[0]); p++) {
		struct side gpu;

		CU_ASSERT_EQUAL_FATAL(mb_builtin_net_set_precision(d->name, g_precs[p]), 0);
		up(d, 0, w, &gpu);
		for (size_t bi = 0; bi < N_BATCHES; bi++) {
			struct mb_model_item b[MAX_ITEMS];
			uint32_t n = g_batch_n[bi];

			items_of(in, g_batches[bi], n, b);
			pool_reset();
			CU_ASSERT_EQUAL_FATAL(run(d, &gpu, 0, b, n), 0);
			pool_check(d, &gpu, n);
			for (uint32_t i = 0; i < n; i++) {
				const struct mb_model_item *a = &ref[g_batches[bi][i]];
				const float *x = a->result, *y = b[i].result;
				double worst = 0, sq = 0, scale = 0;
				uint32_t values = a->result_len / 4;

				same_shape(a, &b[i]);
				for (uint32_t k = 0; k < values; k++) {
					double e = fabs((double)x[k] - y[k]);

					worst = fmax(worst, e);
					sq += e * e;
					scale = fmax(scale, fabs(x[k]));
				}
				sq = sqrt(sq / values);
				printf("\n    whisper %s, batch of %u, item of %u samples: max "
				       "|GPU - "
				       "CPU| %.2e (tolerance %.1e), rms %.2e (tolerance %.1e)",
				       mb_net_precision_name(g_precs[p]), n,
				       mb_proto_media_length(a->hdr), worst,
				       g_whisper_max[p] * scale, sq, g_whisper_rms[p] * scale);
				CU_ASSERT(scale > 0.1); /* a real output, not zeros */
				CU_ASSERT(worst <= g_whisper_max[p] * scale);
				CU_ASSERT(sq <= g_whisper_rms[p] * scale);
			}
			free_results(b, n);
		}
		down(d, &gpu);
	}
	CU_ASSERT_EQUAL(mb_builtin_net_set_precision(d->name, MB_NET_PRECISION_DEFAULT), 0);
	free_results(ref, 4);
	for (int i = 0; i < 4; i++)
		free(in[i].bytes);
}

/* clap's tolerances, in units of the item's max |CPU value|, by precision */
static const double g_clap_max[] = {2e-5, 4e-3, 3e-2};
static const double g_clap_rms[] = {5e-6, 1e-3, 1e-2};

static void
test_clap(void)
{
	const struct mb_model_desc *d = &mb_model_clap;
	const char *w = weights_for(d->name);
	const uint32_t rate = MB_CLAP_SAMPLE_RATE;
	struct input in[4];
	struct mb_model_item ref[4];
	const uint32_t all[4] = {0, 1, 2, 3};
	struct side cpu;

	CU_ASSERT_FATAL(d->devices & MB_MODEL_ON_CUDA);
	/* the shortest (repeated 400 times), 3.3 s (3 times, then zeros), exactly 10 s (as it
	 * is), 7 s (once, then zeros) */
	make_audio(&in[0], "clap", rate, rate / 40, MB_MEDIA_PCM_S16LE, 14);
	make_audio(&in[1], "clap", rate, 158537, MB_MEDIA_PCM_F32LE, 15);
	make_audio(&in[2], "clap", rate, 10 * rate, MB_MEDIA_PCM_S16LE, 16);
	make_audio(&in[3], "clap", rate, 7 * rate + 77, MB_MEDIA_PCM_F32LE, 17);
	up(d, -1, w, &cpu);
	items_of(in, all, 4, ref);
	CU_ASSERT_EQUAL_FATAL(run(d, &cpu, -1, ref, 4), 0);
	down(d, &cpu);

	for (size_t p = 0; p < sizeof(g_precs) / sizeof(g_precs[0]); p++) {
		struct side gpu;

		CU_ASSERT_EQUAL_FATAL(mb_builtin_net_set_precision(d->name, g_precs[p]), 0);
		up(d, 0, w, &gpu);
		for (size_t bi = 0; bi < N_BATCHES; bi++) {
			struct mb_model_item b[MAX_ITEMS];
			uint32_t n = g_batch_n[bi];

			items_of(in, g_batches[bi], n, b);
			pool_reset();
			CU_ASSERT_EQUAL_FATAL(run(d, &gpu, 0, b, n), 0);
			pool_check(d, &gpu, n);
			for (uint32_t i = 0; i < n; i++) {
				const struct mb_model_item *a = &ref[g_batches[bi][i]];
				const float *x = a->result, *y = b[i].result;
				double worst = 0, sq = 0, scale = 0, norm = 0;
				uint32_t values = a->result_len / 4;

				same_shape(a, &b[i]);
				for (uint32_t k = 0; k < values; k++) {
					double e = fabs((double)x[k] - y[k]);

					worst = fmax(worst, e);
					sq += e * e;
					scale = fmax(scale, fabs(x[k]));
					norm += (double)y[k] * y[k];
				}
				sq = sqrt(sq / values);
				norm = sqrt(norm);
				printf("\n    clap %s, batch of %u, item of %u samples: max |GPU - "
				       "CPU| %.2e (tolerance %.1e), rms %.2e (tolerance %.1e), "
				       "|GPU| %.6f",
				       mb_net_precision_name(g_precs[p]), n,
				       mb_proto_media_length(a->hdr), worst, g_clap_max[p] * scale,
				       sq, g_clap_rms[p] * scale, norm);
				CU_ASSERT(fabs(norm - 1.0) < 1e-4); /* L2-normalised, in F32 */
				CU_ASSERT(worst <= g_clap_max[p] * scale);
				CU_ASSERT(sq <= g_clap_rms[p] * scale);
			}
			free_results(b, n);
		}
		down(d, &gpu);
	}
	CU_ASSERT_EQUAL(mb_builtin_net_set_precision(d->name, MB_NET_PRECISION_DEFAULT), 0);
	free_results(ref, 4);
	for (int i = 0; i < 4; i++)
		free(in[i].bytes);
}

/* videomae's tolerances by precision: logits in units of max |CPU logit|; scores absolute */
static const double g_vm_logits[] = {1e-4, 2e-3, 1e-2};
static const double g_vm_scores[] = {1e-5, 5e-4, 2e-3};

#define CLIPS 3

/*
 * A top-k result @p b (GPU) against @p a (CPU), the CPU's logits @p logits of the clip known:
 * ranks compared while the CPU's lead over the next rank exceeds @p margin. Returns how
 * many ranks were compared (at least the top-1 when its lead allows).
 */
static int
compare_topk(const struct mb_model_item *a, const struct mb_model_item *b, const float *logits,
	     double margin, double score_tol, double *worst)
{
	int compared = 0;

	for (uint32_t r = 0; r < a->rows; r++) {
		uint32_t ca, cb, next;
		float sa, sb;

		memcpy(&ca, (const uint8_t *)a->result + 8 * r, 4);
		memcpy(&cb, (const uint8_t *)b->result + 8 * r, 4);
		memcpy(&sa, (const uint8_t *)a->result + 8 * r + 4, 4);
		memcpy(&sb, (const uint8_t *)b->result + 8 * r + 4, 4);
		if (r + 1 < a->rows) {
			memcpy(&next, (const uint8_t *)a->result + 8 * (r + 1), 4);
			if ((double)logits[ca] - logits[next] <= margin)
				break; /* a near tie: the order below may differ */
		}
		CU_ASSERT_EQUAL(ca, cb);
		if (ca != cb)
			break;
		*worst = fmax(*worst, fabs((double)sa - sb));
		CU_ASSERT(fabs((double)sa - sb) <= score_tol);
		compared++;
	}
	return compared;
}

static void
test_videomae(void)
{
	const struct mb_model_desc *d = &mb_model_videomae;
	const char *w = weights_for(d->name);
	/* clips 0..2 as top-k items, then the same clips as window parts (their logits) */
	struct input in[2 * CLIPS];
	struct mb_model_item ref[2 * CLIPS];
	const uint32_t all[2 * CLIPS] = {0, 1, 2, 3, 4, 5};
	/* batches: one top-k clip; top-k, window part, top-k; one window part */
	static const uint32_t batches[][3] = {{0}, {1, 3 + 0, 2}, {3 + 2}};
	static const uint32_t batch_n[] = {1, 3, 1};
	int top1_checked = 0;
	struct side cpu;

	for (int i = 0; i < CLIPS; i++) {
		make_video(&in[i], 10 + (uint64_t)i, false);
		make_video(&in[CLIPS + i], 10 + (uint64_t)i, true);
	}
	up(d, -1, w, &cpu);
	items_of(in, all, 2 * CLIPS, ref);
	CU_ASSERT_EQUAL_FATAL(run(d, &cpu, -1, ref, 2 * CLIPS), 0);
	down(d, &cpu);
	for (int i = 0; i < CLIPS; i++) {
		CU_ASSERT_EQUAL_FATAL(ref[i].result_type, MB_RESULT_TOPK);
		CU_ASSERT_EQUAL_FATAL(ref[CLIPS + i].result_type, MB_RESULT_F32);
		CU_ASSERT_EQUAL_FATAL(ref[CLIPS + i].rows, 1);
	}

	for (size_t p = 0; p < sizeof(g_precs) / sizeof(g_precs[0]); p++) {
		struct side gpu;

		CU_ASSERT_EQUAL_FATAL(mb_builtin_net_set_precision(d->name, g_precs[p]), 0);
		up(d, 0, w, &gpu);
		for (size_t bi = 0; bi < sizeof(batch_n) / sizeof(batch_n[0]); bi++) {
			struct mb_model_item b[3];
			uint32_t n = batch_n[bi];

			items_of(in, batches[bi], n, b);
			pool_reset();
			CU_ASSERT_EQUAL_FATAL(run(d, &gpu, 0, b, n), 0);
			pool_check(d, &gpu, n);
			for (uint32_t i = 0; i < n; i++) {
				uint32_t k = batches[bi][i], clip = k % CLIPS;
				const struct mb_model_item *a = &ref[k];
				const float *logits = ref[CLIPS + clip].result;
				uint32_t classes = ref[CLIPS + clip].cols;
				double scale = 0, worst = 0;

				same_shape(a, &b[i]);
				for (uint32_t c = 0; c < classes; c++)
					scale = fmax(scale, fabs(logits[c]));
				if (a->result_type == MB_RESULT_F32) {
					const float *y = b[i].result;

					for (uint32_t c = 0; c < classes; c++)
						worst = fmax(worst, fabs((double)logits[c] - y[c]));
					printf("\n    videomae %s, batch of %u, window part (clip "
					       "%u): "
					       "max |logit GPU - CPU| %.2e (tolerance %.1e)",
					       mb_net_precision_name(g_precs[p]), n, clip, worst,
					       g_vm_logits[p] * scale);
					CU_ASSERT(worst <= g_vm_logits[p] * scale);
				} else {
					double margin = 2 * g_vm_logits[p] * scale;
					int ranks = compare_topk(a, &b[i], logits, margin,
								 g_vm_scores[p], &worst);

					printf("\n    videomae %s, batch of %u, top-k (clip %u): "
					       "%d "
					       "ranks the CPU's, max |score GPU - CPU| %.2e "
					       "(tolerance %.0e)",
					       mb_net_precision_name(g_precs[p]), n, clip, ranks,
					       worst, g_vm_scores[p]);
					top1_checked += ranks > 0;
				}
			}
			free_results(b, n);
		}
		down(d, &gpu);
	}
	/* every top-k item led by a clear margin here: the top-1 was compared each time */
	CU_ASSERT_EQUAL(top1_checked, 3 * 3);
	CU_ASSERT_EQUAL(mb_builtin_net_set_precision(d->name, MB_NET_PRECISION_DEFAULT), 0);
	free_results(ref, 2 * CLIPS);
	for (int i = 0; i < 2 * CLIPS; i++)
		free(in[i].bytes);
}

static const struct mb_test_case cases[] = {
	{"logmel: CUDA matches the CPU", test_logmel},
	{"whisper: CUDA at f32, f16, bf16 matches the CPU within each one's tolerance",
	 test_whisper},
	{"clap: CUDA at f32, f16, bf16 matches the CPU within each one's tolerance", test_clap},
	{"videomae: CUDA at f32, f16, bf16: logits, scores, the same top-1", test_videomae},
	{NULL, NULL},
};

static int
suite_cleanup(void)
{
	static const char *const names[] = {"whisper", "videomae"};
	char cmd[256];
	int rc;

	/* checkpoints are directories, weights files files */
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "%s/%s.safetensors", g_dir, names[i]);
		unlink(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

static const struct mb_test_suite suite = {"built-in models, CUDA vs CPU", NULL, suite_cleanup,
					   cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	if (mb_gpu_probe(&g_probe) == 0) {
		char why[256];

		snprintf(why, sizeof(why), "no GPU to compare the CUDA models on: %s",
			 g_probe.reason);
		mb_test_skip(why);
	}
	snprintf(g_dir, sizeof(g_dir), "/tmp/mb_cuda_models_XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return 99;
	return mb_test_main("cuda_models_test", suites);
}
