/**
 * @file
 * Private to gpu/: the boundary between the C code and the CUDA runtime calls compiled by
 * nvcc (cuda_probe.cu). Plain C types only, so both compilers read the same header.
 */
#ifndef MB_CUDA_PROBE_INTERNAL_H
#define MB_CUDA_PROBE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mb_cuda_device_desc {
	char name[96];
	char pci_busid[32];
	uint64_t total_bytes;
	int cc_major;
	int cc_minor;
	int multiprocessors;
};

/**
 * Ask the CUDA runtime how many devices there are and describe up to @p max of them.
 * Returns the device count (>= 0), or a negative CUDA error code with @p reason filled
 * (no driver, no device, driver too old). @p driver_version and @p runtime_version are
 * CUDA's encodings (1000 * major + 10 * minor), 0 when unknown.
 */
int mb_cuda_probe_devices(struct mb_cuda_device_desc *descs, int max, int *driver_version,
			  int *runtime_version, char *reason, size_t reason_len);

/**
 * Make @p device the calling thread's current CUDA device and create a non-blocking stream
 * for the thread (returned as a cudaStream_t in @p stream). 0, or a negative CUDA error with
 * @p reason.
 */
int mb_cuda_thread_attach(int device, void **stream, char *reason, size_t reason_len);

/** Destroy a stream from mb_cuda_thread_attach() (after synchronising it). NULL accepted. */
void mb_cuda_thread_detach(void *stream);

#ifdef __cplusplus
}
#endif

#endif /* MB_CUDA_PROBE_INTERNAL_H */
