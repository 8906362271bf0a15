/*
 * gpu.c: the built-in model logmel on a CUDA device: the C side of cuda_nets.cu (see
 * gpu_internal.h); and the perf-only figures of mb_models_perf.h.
 *
 * Results are allocated with the batch's alloc_result() exactly as on the CPU, filled by the
 * device through pinned staging, and handed to the service the same way: a model's CPU and
 * CUDA paths differ only in where the arithmetic runs.
 */
#include "gpu_internal.h"
#include "mb_models.h"
#include "mb_models_perf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mb_build_config.h"

#define MB_LOG_MODULE "models"
#include "mb_log.h"

/* the CUDA kind and longest item (samples) of a built-in model with library layers */
static int
perf_kind(const char *model, enum mb_cuda_net_kind *kind, uint32_t *max_samples)
{
	static const struct {
		const char *name;
		enum mb_cuda_net_kind kind;
		uint32_t seconds;
	} known[] = {
		{"logmel", MB_CUDA_LOGMEL, MB_LOGMEL_MAX_SECONDS},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, model) == 0) {
			*kind = known[i].kind;
			*max_samples = known[i].seconds * MB_MEL_SAMPLE_RATE;
			return 0;
		}
	return -EINVAL;
}

_Static_assert((int)MB_GPU_LOGMEL == (int)MB_CUDA_LOGMEL, "one numbering of the CUDA kinds");

#if MB_HAVE_CUDA

#define CHUNK 64

int
mb_models_gpu_load(enum mb_gpu_kind kind, int device, const struct mb_mel *mel,
		   uint32_t max_samples, float *const *w, const uint64_t *numel, uint32_t n_w,
		   void **net, char *reason, size_t reason_len)
{
	struct mb_cuda_net_desc d = {
		.kind = (enum mb_cuda_net_kind)kind,
		.device = device,
		.window = mel != NULL ? mel->window : NULL,
		.filters = mel != NULL ? &mel->filters[0][0] : NULL,
		.n_mels = mel != NULL ? mel->n_mels : 0,
		.max_samples = max_samples,
	};
	struct mb_cuda_net *n = NULL;

	(void)w;
	(void)numel;
	if (n_w != 0) {
		snprintf(reason, reason_len, "no CUDA model here takes weight tensors (%u given)",
			 n_w);
		return -EINVAL;
	}
	if (mb_cuda_net_create(&d, &n, reason, reason_len) < 0)
		return -EIO;
	*net = n;
	return 0;
}

void
mb_models_gpu_unload(void **net)
{
	struct mb_cuda_net *n = *net;

	mb_cuda_net_destroy(&n);
	*net = NULL;
}

int
mb_models_gpu_worker_init(void *net, void **scratch)
{
	struct mb_cuda_scratch *s = NULL;
	char err[256];

	if (mb_cuda_scratch_create(net, &s, err, sizeof(err)) < 0) {
		MB_LOG(ERR, "CUDA worker set-up failed: %s", err);
		return -EIO;
	}
	*scratch = s;
	return 0;
}

void
mb_models_gpu_worker_fini(void **scratch)
{
	struct mb_cuda_scratch *s = *scratch;

	mb_cuda_scratch_destroy(&s);
	*scratch = NULL;
}

int
mb_models_gpu_run(void *net, void *scratch, struct mb_model_batch *batch, mb_gpu_shape_fn shape)
{
	struct mb_cuda_item todo[CHUNK];
	uint32_t n = 0;
	char err[256];

	if (net == NULL || scratch == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t bytes = shape(it, &it->rows, &it->cols, &it->result_type);

		if (bytes == 0) {
			mb_model_item_fail(it, "media shape out of range");
			continue;
		}
		it->result = batch->alloc_result(batch, bytes);
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		it->result_len = bytes;
		todo[n++] = (struct mb_cuda_item){
			.payload = it->payload,
			.payload_len = it->payload_len,
			.pcm_s16 = it->hdr->media == MB_MEDIA_PCM_S16LE,
			.samples = it->hdr->media == MB_MEDIA_RGB24
					   ? 0
					   : mb_proto_media_length(it->hdr),
			.out = it->result,
			.out_len = bytes,
		};
		if (n == CHUNK || i + 1 == batch->n_items) {
			if (mb_cuda_net_run(net, scratch, todo, n, err, sizeof(err)) < 0) {
				MB_LOG(ERR, "batch failed on CUDA device %d: %s", batch->device,
				       err);
				return -EIO;
			}
			n = 0;
		}
	}
	if (n != 0 && mb_cuda_net_run(net, scratch, todo, n, err, sizeof(err)) < 0) {
		MB_LOG(ERR, "batch failed on CUDA device %d: %s", batch->device, err);
		return -EIO;
	}
	return 0;
}

#else /* !MB_HAVE_CUDA */

int
mb_models_gpu_load(enum mb_gpu_kind kind, int device, const struct mb_mel *mel,
		   uint32_t max_samples, float *const *w, const uint64_t *numel, uint32_t n_w,
		   void **net, char *reason, size_t reason_len)
{
	(void)kind;
	(void)mel;
	(void)max_samples;
	(void)w;
	(void)numel;
	(void)n_w;
	*net = NULL;
	snprintf(reason, reason_len,
		 "CUDA device %d: this build has no CUDA (meson -Dcuda=enabled needs nvcc, "
		 "cuBLAS, cuDNN and cuFFT)",
		 device);
	return -ENOTSUP;
}

void
mb_models_gpu_unload(void **net)
{
	*net = NULL;
}

int
mb_models_gpu_worker_init(void *net, void **scratch)
{
	(void)net;
	*scratch = NULL;
	return -ENOTSUP;
}

void
mb_models_gpu_worker_fini(void **scratch)
{
	*scratch = NULL;
}

int
mb_models_gpu_run(void *net, void *scratch, struct mb_model_batch *batch, mb_gpu_shape_fn shape)
{
	(void)net;
	(void)scratch;
	(void)batch;
	(void)shape;
	return -ENOTSUP;
}

#endif

/* perf only (mb_models_perf.h) */

int
mb_models_gpu_timing_enable(bool on)
{
#if MB_HAVE_CUDA
	mb_cuda_timing_enable(on);
	return 0;
#else
	(void)on;
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_timing_take(struct mb_cuda_timing *t)
{
#if MB_HAVE_CUDA
	mb_cuda_timing_take(t);
	return 0;
#else
	memset(t, 0, sizeof(*t));
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_layers(const char *model, int device, uint32_t samples, uint32_t batch,
		     struct mb_cuda_layers *out, char *reason, size_t reason_len)
{
	enum mb_cuda_net_kind kind;
	uint32_t max_samples;

	memset(out, 0, sizeof(*out));
	if (perf_kind(model, &kind, &max_samples) < 0) {
		snprintf(reason, reason_len, "%s: not a built-in model with library layers", model);
		return -EINVAL;
	}
#if MB_HAVE_CUDA
	if (mb_cuda_layers_time(device, kind, samples, max_samples, batch, out, reason,
				reason_len) < 0)
		return -EIO;
	return 0;
#else
	(void)device;
	(void)samples;
	(void)batch;
	snprintf(reason, reason_len, "this build has no CUDA");
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_gemm_record(bool on)
{
#if MB_HAVE_CUDA
	mb_cuda_gemm_record(on);
	return 0;
#else
	(void)on;
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_gemm_take(struct mb_cuda_gemm_list *l)
{
	memset(l, 0, sizeof(*l));
#if MB_HAVE_CUDA
	mb_cuda_gemm_take(l);
	return 0;
#else
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_gemms_time(int device, const struct mb_cuda_gemm_list *l, double *ms, char *reason,
			 size_t reason_len)
{
	*ms = 0;
#if MB_HAVE_CUDA
	if (mb_cuda_gemms_time(device, l, ms, reason, reason_len) < 0)
		return -EIO;
	return 0;
#else
	(void)device;
	(void)l;
	snprintf(reason, reason_len, "this build has no CUDA");
	return -ENOTSUP;
#endif
}

int
mb_models_gpu_pool(int device, bool reset, struct mb_tf_pool_stats *out, char *reason,
		   size_t reason_len)
{
	memset(out, 0, sizeof(*out));
#if MB_HAVE_CUDA
	int rc = mb_tf_pool_stats(device, reset, out, reason, reason_len);

	return rc == -ENOENT ? -ENOENT : rc < 0 ? -EIO : 0;
#else
	(void)device;
	(void)reset;
	snprintf(reason, reason_len, "this build has no CUDA");
	return -ENOTSUP;
#endif
}
