/**
 * @file
 * GPU discovery: how many CUDA devices this machine has, what they are, and which NUMA node
 * each sits on.
 *
 * mb_gpu_probe() asks the CUDA runtime (when the build has CUDA: meson -Dcuda=auto finds
 * /usr/local/cuda/bin/nvcc) and never fails for lack of a GPU: with no driver, no device, or
 * a build without CUDA it reports zero devices and says why in @c reason, so the service
 * runs on the CPU device alone. mb_gpu_locate() then maps each GPU's PCI address to its NUMA
 * node through the topology (mb_topo_pci_numa()), which is how GPU workers, staging memory
 * and model rings get placed near their GPU.
 *
 * Threads: call from the main thread at start-up (the CUDA runtime initialises on first use).
 */
#ifndef MB_GPU_PROBE_H
#define MB_GPU_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_topo.h"

/** Most GPUs one process manages. */
#define MB_GPU_MAX 16

struct mb_gpu_info {
	int index;	    /**< CUDA device ordinal */
	char name[96];	    /**< e.g. "NVIDIA H100 80GB HBM3" */
	char pci_busid[32]; /**< "0000:65:00.0", "" if the driver would not say */
	uint64_t total_bytes;
	int cc_major, cc_minor; /**< compute capability */
	int multiprocessors;
	int numa_node; /**< OS index after mb_gpu_locate(); MB_NUMA_ANY if unknown */
};

struct mb_gpu_probe {
	int count;	     /**< usable devices described in gpus[] (<= MB_GPU_MAX) */
	int driver_version;  /**< CUDA encoding, 1000 * major + 10 * minor; 0 if none */
	int runtime_version; /**< likewise, of the runtime linked in; 0 without CUDA */
	bool built_with_cuda;
	char reason[160]; /**< why count is 0, "" otherwise */
	struct mb_gpu_info gpus[MB_GPU_MAX];
};

/**
 * Discover GPUs into @p out. Returns the number found (0 with @p out->reason set when there
 * are none or CUDA is unavailable). Logs the outcome once per process.
 */
int mb_gpu_probe(struct mb_gpu_probe *out);

/**
 * Fill each GPU's numa_node from @p topo (borrowed). Returns how many were located; GPUs
 * whose PCI address the topology does not know keep MB_NUMA_ANY.
 */
int mb_gpu_locate(struct mb_gpu_probe *probe, const struct mb_topo *topo);

/**
 * Free and total memory of CUDA device @p cuda in bytes (cudaMemGetInfo). Returns 0, or
 * -EIO with the CUDA error in @p reason, or -ENOTSUP in a build without CUDA.
 */
int mb_gpu_mem_info(int cuda, uint64_t *free_bytes, uint64_t *total_bytes, char *reason,
		    size_t reason_len);

/**
 * Worker threads: make CUDA device @p cuda the calling thread's device and create the
 * thread's stream (a cudaStream_t, handed to models as batch->stream). Returns 0, or -EIO
 * with the reason, or -ENOTSUP in a build without CUDA.
 */
int mb_gpu_thread_attach(int cuda, void **stream, char *reason, size_t reason_len);

/** Undo mb_gpu_thread_attach() on the same thread (waits for the stream). NULL accepted. */
void mb_gpu_thread_detach(void *stream);

/**
 * VRAM units a GPU offers: (free_bytes - reserve_bytes) / unit_bytes, at most max_units
 * when that is not 0; 0 when the reserve takes it all.
 */
uint64_t mb_gpu_units(uint64_t free_bytes, uint64_t reserve_bytes, uint64_t unit_bytes,
		      uint64_t max_units);

/**
 * Units that @p bytes of device memory take: ceil(bytes / unit_bytes), so a part unit counts
 * whole (what a batch asks for may only be over what it uses, never under); 0 for 0 bytes
 * or no unit size; at most UINT32_MAX.
 */
uint32_t mb_gpu_bytes_units(uint64_t bytes, uint64_t unit_bytes);

#endif /* MB_GPU_PROBE_H */
