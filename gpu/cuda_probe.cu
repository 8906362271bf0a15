/*
 * cuda_probe.cu: discover CUDA devices through the CUDA runtime (linked statically, so a
 * machine without the driver runs the binary and learns "no driver" instead of failing to
 * load). Called once at start-up from probe.c; no device memory is touched.
 */
#include <cstdio>
#include <cstring>

#include <cuda_runtime.h>

#include "cuda_probe_internal.h"

extern "C" int
mb_cuda_probe_devices(struct mb_cuda_device_desc *descs, int max, int *driver_version,
		      int *runtime_version, char *reason, size_t reason_len)
{
	int count = 0;
	cudaError_t err;

	*driver_version = 0;
	*runtime_version = 0;
	(void)cudaRuntimeGetVersion(runtime_version);
	err = cudaDriverGetVersion(driver_version);
	if (err == cudaSuccess && *driver_version == 0) {
		snprintf(reason, reason_len, "no CUDA driver installed");
		return -(int)cudaErrorInsufficientDriver;
	}
	err = cudaGetDeviceCount(&count);
	if (err != cudaSuccess) {
		snprintf(reason, reason_len, "%s (%s)", cudaGetErrorString(err),
			 cudaGetErrorName(err));
		return -(int)err;
	}
	for (int i = 0; i < count && i < max; i++) {
		struct cudaDeviceProp prop;

		memset(&descs[i], 0, sizeof(descs[i]));
		err = cudaGetDeviceProperties(&prop, i);
		if (err != cudaSuccess) {
			snprintf(reason, reason_len, "device %d: %s", i, cudaGetErrorString(err));
			return -(int)err;
		}
		snprintf(descs[i].name, sizeof(descs[i].name), "%s", prop.name);
		descs[i].total_bytes = prop.totalGlobalMem;
		descs[i].cc_major = prop.major;
		descs[i].cc_minor = prop.minor;
		descs[i].multiprocessors = prop.multiProcessorCount;
		if (cudaDeviceGetPCIBusId(descs[i].pci_busid, (int)sizeof(descs[i].pci_busid), i) !=
		    cudaSuccess)
			descs[i].pci_busid[0] = '\0';
	}
	reason[0] = '\0';
	return count;
}

extern "C" int
mb_cuda_thread_attach(int device, void **stream, char *reason, size_t reason_len)
{
	cudaStream_t st = nullptr;
	cudaError_t err;

	*stream = nullptr;
	err = cudaSetDevice(device);
	if (err == cudaSuccess)
		err = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
	if (err != cudaSuccess) {
		snprintf(reason, reason_len, "CUDA device %d: %s (%s)", device,
			 cudaGetErrorString(err), cudaGetErrorName(err));
		return -(int)err;
	}
	*stream = st;
	return 0;
}

extern "C" void
mb_cuda_thread_detach(void *stream)
{
	if (stream == nullptr)
		return;
	cudaStreamSynchronize((cudaStream_t)stream);
	cudaStreamDestroy((cudaStream_t)stream);
}
