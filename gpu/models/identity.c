/*
 * identity.c: the identity model. No work: its result is the payload length as one float,
 * so an identity request measures what the service itself costs (like Triton's identity
 * model). Accepts every valid request; costs 1 unit per batch.
 */
#include <string.h>

#include "mb_models.h"

static int
identity_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	(void)hdr;
	(void)reason;
	(void)reason_len;
	return 0;
}

static int
identity_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	(void)args;
	(void)reason;
	(void)reason_len;
	*state = NULL;
	return 0;
}

static int
identity_run(void *state, struct mb_model_batch *batch)
{
	(void)state;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		float v = (float)it->payload_len;

		it->result = batch->alloc_result(batch, sizeof(v));
		if (it->result == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		memcpy(it->result, &v, sizeof(v));
		it->result_len = sizeof(v);
		it->result_type = MB_RESULT_F32;
		it->rows = 1;
		it->cols = 1;
	}
	return 0;
}

static void
identity_unload(void *state)
{
	(void)state;
}

const struct mb_model_desc mb_model_identity = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "identity",
	.summary = "returns the payload length; measures the service's own overhead",
	.media_mask = MB_MEDIA_MASK_ANY,
	.devices = MB_MODEL_ON_CPU,
	.base_units = 1,
	.item_units_per_second = 0.0,
	.max_batch = 64,
	.max_delay_us = 500,
	.queue_limit = 4096,
	.default_timeout_ms = 10000,
	.check = identity_check,
	.load = identity_load,
	.run = identity_run,
	.unload = identity_unload,
};
