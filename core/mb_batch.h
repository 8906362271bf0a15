/**
 * @file
 * A batch: requests of one model, admitted (or waiting to be) onto one device; shared by the
 * batcher (batch/), which forms batches and gets their units, and the workers (gpu/), which
 * run them.
 *
 * Batch objects come from their device's pool (mb_device_batch_get(), mb_device.h) and go
 * back to it once run; a batch asks the device's semaphore for its units with the ticket it
 * embeds.
 *
 * Ownership: a batch and its requests belong to whichever thread dequeued them.
 */
#ifndef MB_BATCH_H
#define MB_BATCH_H

#include <stdint.h>
#include <sys/queue.h>

#include "mb_sem.h"

struct mb_device;
struct mb_model;
struct mb_request;

/** A batch: requests of one model, admitted (or waiting to be) onto one device. */
struct mb_batch {
	struct mb_model *model;
	struct mb_device *device; /**< the device whose pool it came from, and where it runs */
	uint32_t n;
	uint64_t units; /**< base + item costs: what the ticket asks for / holds */
	struct mb_sem_ticket ticket;
	uint64_t formed_ns;
	uint8_t close_reason;	    /**< enum mb_close_reason */
	TAILQ_ENTRY(mb_batch) link; /**< the batcher's list of batches awaiting admission */
	struct mb_request *items[]; /**< capacity: the device's batch_capacity */
};

TAILQ_HEAD(mb_batch_list, mb_batch);

#endif /* MB_BATCH_H */
