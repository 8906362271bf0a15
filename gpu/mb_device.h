/**
 * @file
 * Devices: where batches run.
 *
 * struct mb_device is where batches run: a capacity in units guarded by a weighted FIFO
 * semaphore (VRAM admission: a batch may run only when base_units + its items' costs are
 * free), a run queue of admitted batches, and a pool of batch objects (mb_batch.h). The
 * service numbers its devices: index 0 is the CPU device (cpu0), index 1 + k the k-th CUDA
 * device it uses (cudaN, N its CUDA ordinal); a model's mask names them by that index
 * (MB_DEVICE_BIT(index), mb_model_rt.h).
 *
 * The batcher (mb_batcher.h) is the run queue's one producer; the workers (mb_worker.h)
 * consume it.
 */
#ifndef MB_DEVICE_H
#define MB_DEVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct mb_batch;
struct mb_ring;
struct mb_sem;

struct mb_device_opts {
	int index;		 /**< the response's device field, 0..MB_DEVICES_MAX-1 */
	bool gpu;		 /**< a CUDA device (false: the CPU device) */
	int cuda;		 /**< with gpu: its CUDA ordinal */
	const char *name;	 /**< "cpu0", "cuda1": metrics label, logs; copied */
	uint64_t units;		 /**< capacity */
	uint32_t batch_capacity; /**< largest batch (max of the models' max_batch) */
	uint32_t n_batches;	 /**< batch objects in the pool */
	int numa_node;		 /**< its memory and workers (MB_NUMA_ANY: anywhere) */
};

struct mb_device {
	int index;
	int cuda; /**< CUDA ordinal, -1 on the CPU device */
	int numa_node;
	uint64_t capacity; /**< units */
	char name[16];
	struct mb_sem *units;
	struct mb_ring *run;  /**< admitted batches (batcher -> workers) */
	struct mb_ring *free; /**< batch objects not in use */
	uint32_t batch_capacity;
	uint32_t n_batches;
	void *batch_mem;
	atomic_bool producer_done; /**< the batcher will push no more batches */
};

/** Create a device (needs EAL: its rings). Returns 0, -EINVAL or -ENOMEM. Any index may be
 * created more than once in a process (ring names are made unique). */
int mb_device_create(const struct mb_device_opts *opts, struct mb_device **out);

/** Free a device; every batch must be back in its pool. NULL accepted. */
void mb_device_destroy(struct mb_device **dev);

/** A free batch object, or NULL if all are in use. Any thread. */
struct mb_batch *mb_device_batch_get(struct mb_device *dev);

/** Return a batch object. Any thread. */
void mb_device_batch_put(struct mb_device *dev, struct mb_batch *b);

#endif /* MB_DEVICE_H */
