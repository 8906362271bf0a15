/*
 * probe.c: GPU discovery for the rest of the service. With CUDA built in, the work is done by
 * cuda_probe.cu through the runtime; without it, the answer is "0 devices: built without
 * CUDA". Either way the caller gets a count and a reason, never a failure. Main thread.
 */
#include "mb_gpu_probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mb_build_config.h"
#include "mb_env.h"

#define MB_LOG_MODULE "gpu"
#include "mb_log.h"

#if MB_HAVE_CUDA
#include "cuda_nets_internal.h"
#include "cuda_probe_internal.h"
#endif

int
mb_gpu_probe(struct mb_gpu_probe *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < MB_GPU_MAX; i++)
		out->gpus[i].numa_node = MB_NUMA_ANY;
#if MB_HAVE_CUDA
	struct mb_cuda_device_desc descs[MB_GPU_MAX];
	int n;

	out->built_with_cuda = true;
	n = mb_cuda_probe_devices(descs, MB_GPU_MAX, &out->driver_version, &out->runtime_version,
				  out->reason, sizeof(out->reason));
	if (n < 0) {
		MB_LOG_ONCE(INFO, "no usable GPU: %s", out->reason);
		return 0;
	}
	if (n == 0) {
		snprintf(out->reason, sizeof(out->reason), "the CUDA driver reports no device");
		MB_LOG_ONCE(INFO, "no usable GPU: %s", out->reason);
		return 0;
	}
	if (n > MB_GPU_MAX) {
		MB_LOG(WARNING, "%d GPUs found; using the first %d", n, MB_GPU_MAX);
		n = MB_GPU_MAX;
	}
	for (int i = 0; i < n; i++) {
		struct mb_gpu_info *g = &out->gpus[i];

		g->index = i;
		snprintf(g->name, sizeof(g->name), "%.*s", (int)sizeof(g->name) - 1, descs[i].name);
		snprintf(g->pci_busid, sizeof(g->pci_busid), "%.*s", (int)sizeof(g->pci_busid) - 1,
			 descs[i].pci_busid);
		g->total_bytes = descs[i].total_bytes;
		g->cc_major = descs[i].cc_major;
		g->cc_minor = descs[i].cc_minor;
		g->multiprocessors = descs[i].multiprocessors;
	}
	out->count = n;
	MB_LOG_ONCE(INFO, "%d GPU(s), CUDA driver %d.%d", n, out->driver_version / 1000,
		    (out->driver_version % 1000) / 10);
	return n;
#else
	snprintf(out->reason, sizeof(out->reason),
		 "built without CUDA (meson -Dcuda=disabled, or nvcc not found)");
	MB_LOG_ONCE(INFO, "no usable GPU: %s", out->reason);
	return 0;
#endif
}

int
mb_gpu_locate(struct mb_gpu_probe *probe, const struct mb_topo *topo)
{
	int located = 0;

	for (int i = 0; i < probe->count; i++) {
		int node = probe->gpus[i].pci_busid[0] != '\0'
				   ? mb_topo_pci_numa(topo, probe->gpus[i].pci_busid)
				   : -1;

		probe->gpus[i].numa_node = node >= 0 ? node : MB_NUMA_ANY;
		if (node >= 0)
			located++;
	}
	return located;
}

uint64_t
mb_gpu_units(uint64_t free_bytes, uint64_t reserve_bytes, uint64_t unit_bytes, uint64_t max_units)
{
	uint64_t units;

	if (unit_bytes == 0 || free_bytes <= reserve_bytes)
		return 0;
	units = (free_bytes - reserve_bytes) / unit_bytes;
	return max_units != 0 && units > max_units ? max_units : units;
}

uint32_t
mb_gpu_bytes_units(uint64_t bytes, uint64_t unit_bytes)
{
	uint64_t units;

	if (unit_bytes == 0 || bytes == 0)
		return 0;
	units = bytes / unit_bytes + (bytes % unit_bytes != 0);
	return units > UINT32_MAX ? UINT32_MAX : (uint32_t)units;
}

#if MB_HAVE_CUDA

int
mb_gpu_mem_info(int cuda, uint64_t *free_bytes, uint64_t *total_bytes, char *reason,
		size_t reason_len)
{
	return mb_cuda_mem_info(cuda, free_bytes, total_bytes, reason, reason_len) < 0 ? -EIO : 0;
}

int
mb_gpu_thread_attach(int cuda, void **stream, char *reason, size_t reason_len)
{
	return mb_cuda_thread_attach(cuda, stream, reason, reason_len) < 0 ? -EIO : 0;
}

void
mb_gpu_thread_detach(void *stream)
{
	mb_cuda_thread_detach(stream);
}

#else /* !MB_HAVE_CUDA */

int
mb_gpu_mem_info(int cuda, uint64_t *free_bytes, uint64_t *total_bytes, char *reason,
		size_t reason_len)
{
	*free_bytes = 0;
	*total_bytes = 0;
	snprintf(reason, reason_len, "CUDA device %d: this build has no CUDA", cuda);
	return -ENOTSUP;
}

int
mb_gpu_thread_attach(int cuda, void **stream, char *reason, size_t reason_len)
{
	*stream = NULL;
	snprintf(reason, reason_len, "CUDA device %d: this build has no CUDA", cuda);
	return -ENOTSUP;
}

void
mb_gpu_thread_detach(void *stream)
{
	(void)stream;
}

#endif
