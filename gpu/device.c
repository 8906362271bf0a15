/*
 * device.c: devices (unit semaphore, run queue, batch pool).
 *
 * Batch objects are preallocated in one block and recycled through a ring, so forming a
 * batch allocates nothing. The run ring has one producer (the batcher) and any number of
 * consumers (workers): HTS on the consumer side so a preempted worker never makes the
 * others spin.
 */
#include "mb_device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_batch.h"
#include "mb_env.h"
#include "mb_model_rt.h"
#include "mb_ring.h"
#include "mb_sem.h"

#define MB_LOG_MODULE "device"
#include "mb_log.h"

static size_t
batch_stride(uint32_t capacity)
{
	size_t s = sizeof(struct mb_batch) + capacity * sizeof(struct mb_request *);

	return (s + 63) & ~(size_t)63;
}

int
mb_device_create(const struct mb_device_opts *o, struct mb_device **out)
{
	struct mb_device *d;
	struct mb_ring_opts ro;
	struct mb_sem_opts so = {.capacity = o->units};
	static atomic_uint instances; /* DPDK ring names are process-wide */
	unsigned int id = atomic_fetch_add(&instances, 1);
	char name[32];
	int rc;

	*out = NULL;
	if (o->batch_capacity == 0 || o->n_batches == 0 || o->name == NULL || o->index < 0 ||
	    (o->gpu && o->cuda < 0) || o->index >= MB_DEVICES_MAX)
		return -EINVAL;
	d = mb_env_zalloc(sizeof(*d), o->numa_node);
	if (d == NULL)
		return -ENOMEM;
	d->index = o->index;
	d->cuda = o->gpu ? o->cuda : -1;
	d->numa_node = o->numa_node;
	d->capacity = o->units;
	snprintf(d->name, sizeof(d->name), "%s", o->name);
	d->batch_capacity = o->batch_capacity;
	d->n_batches = o->n_batches;
	atomic_init(&d->producer_done, false);
	rc = mb_sem_create(&so, &d->units);
	if (rc < 0)
		goto fail;
	mb_ring_opts_init(&ro);
	ro.capacity = o->n_batches;
	ro.numa_node = o->numa_node;
	snprintf(name, sizeof(name), "dev%u_run", id);
	ro.name = name;
	ro.prod_sync = MB_RING_SYNC_ST;
	ro.cons_sync = MB_RING_SYNC_MT_HTS;
	rc = mb_ring_create(&ro, &d->run);
	if (rc < 0)
		goto fail;
	snprintf(name, sizeof(name), "dev%u_free", id);
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	ro.cons_sync = MB_RING_SYNC_MT_HTS;
	rc = mb_ring_create(&ro, &d->free);
	if (rc < 0)
		goto fail;
	d->batch_mem = mb_env_zalloc(batch_stride(o->batch_capacity) * o->n_batches, o->numa_node);
	if (d->batch_mem == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < o->n_batches; i++) {
		void *b = (char *)d->batch_mem + i * batch_stride(o->batch_capacity);

		mb_ring_enqueue_burst(d->free, &b, 1);
	}
	*out = d;
	return 0;
fail:
	mb_device_destroy(&d);
	return rc;
}

void
mb_device_destroy(struct mb_device **dev)
{
	struct mb_device *d;

	if (dev == NULL || *dev == NULL)
		return;
	d = *dev;
	if (d->free != NULL && mb_ring_count(d->free) != d->n_batches && d->batch_mem != NULL)
		MB_LOG(ERR, "device %s destroyed with %u batch(es) in use", d->name,
		       d->n_batches - mb_ring_count(d->free));
	mb_ring_destroy(&d->run);
	mb_ring_destroy(&d->free);
	mb_sem_destroy(&d->units);
	mb_env_free(d->batch_mem);
	mb_env_free(d);
	*dev = NULL;
}

struct mb_batch *
mb_device_batch_get(struct mb_device *dev)
{
	void *b;

	if (mb_ring_dequeue_burst(dev->free, &b, 1) == 0)
		return NULL;
	memset(b, 0, sizeof(struct mb_batch));
	((struct mb_batch *)b)->device = dev;
	return b;
}

void
mb_device_batch_put(struct mb_device *dev, struct mb_batch *b)
{
	void *p = b;

	if (mb_ring_enqueue_burst(dev->free, &p, 1) != 1) {
		MB_LOG(ERR, "device %s: batch returned to a full pool", dev->name);
		abort();
	}
}
