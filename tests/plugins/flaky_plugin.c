/*
 * flaky_plugin.c: a test plugin whose batches fail on demand, for the circuit breaker tests.
 *
 * Model "flaky", F32 tensors. A batch with an item whose payload starts with the bytes
 * "FAIL" fails as a whole (run() returns -EIO); one whose payload starts with "HANG" and a
 * little-endian u32 of milliseconds sleeps that long in run() first (UINT32_MAX: for
 * ever), for the watchdog tests; otherwise every item's result is its payload length as
 * F32 [1 x 1], like identity. Results that break the model interface, for the checks of what
 * run() returns, by the payload's first 4 bytes: "BLEN" result_len 8 for its 4-byte result,
 * "BTYP" result_type 99, "NONE" the item left untouched (neither filled nor failed), "EMPT"
 * the item failed with an empty reason, "IFAI" the item failed with a reason.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mediabatch/model.h"

static int
flaky_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	(void)hdr;
	(void)reason;
	(void)reason_len;
	return 0;
}

static int
flaky_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	(void)args;
	(void)reason;
	(void)reason_len;
	*state = NULL;
	return 0;
}

static int
flaky_run(void *state, struct mb_model_batch *batch)
{
	(void)state;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		const uint8_t *p = batch->items[i].payload;
		uint32_t ms;

		if (batch->items[i].payload_len >= 8 && memcmp(p, "HANG", 4) == 0) {
			memcpy(&ms, p + 4, sizeof(ms));
			do { /* "for ever": a model stuck in a call that never returns */
				struct timespec t = {.tv_sec = ms / 1000,
						     .tv_nsec = (long)(ms % 1000) * 1000000};

				nanosleep(&t, NULL);
			} while (ms == UINT32_MAX);
		}
	}
	for (uint32_t i = 0; i < batch->n_items; i++)
		if (batch->items[i].payload_len >= 4 &&
		    memcmp(batch->items[i].payload, "FAIL", 4) == 0)
			return -EIO;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		float v = (float)it->payload_len;
		char tag[5] = "";

		if (it->payload_len >= 4)
			memcpy(tag, it->payload, 4);
		if (strcmp(tag, "NONE") == 0)
			continue;
		if (strcmp(tag, "EMPT") == 0) {
			it->failed = 1;
			continue;
		}
		if (strcmp(tag, "IFAI") == 0) {
			mb_model_item_fail(it, "flaky: item failed on purpose");
			continue;
		}
		it->result = batch->alloc_result(batch, sizeof(v));
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory");
			continue;
		}
		memcpy(it->result, &v, sizeof(v));
		it->result_len = sizeof(v);
		it->result_type = MB_RESULT_F32;
		it->rows = 1;
		it->cols = 1;
		if (strcmp(tag, "BLEN") == 0)
			it->result_len = 2 * sizeof(v); /* 4 bytes past the allocation */
		else if (strcmp(tag, "BTYP") == 0)
			it->result_type = 99;
	}
	return 0;
}

static void
flaky_unload(void *state)
{
	(void)state;
}

static const struct mb_model_desc flaky_desc = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "flaky",
	.summary = "test plugin: fails a batch whose payload starts with FAIL",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_F32),
	.devices = MB_MODEL_ON_CPU,
	.base_units = 1,
	.max_batch = 1,
	.max_delay_us = 0,
	.queue_limit = 256,
	.default_timeout_ms = 10000,
	.check = flaky_check,
	.load = flaky_load,
	.run = flaky_run,
	.unload = flaky_unload,
};

const struct mb_model_desc *
mb_model_plugin(void)
{
	return &flaky_desc;
}
