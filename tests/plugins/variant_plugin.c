/*
 * variant_plugin.c: test plugins that differ in one way from a good one, each built from this
 * file with -D flags (tests/meson.build):
 *
 *   VARIANT_NAME         the model's name (default "variant")
 *   VARIANT_DEVICES      its descriptor's devices (default MB_MODEL_ON_CPU)
 *   VARIANT_QUEUE_LIMIT  its descriptor's queue_limit (default 64)
 *   VARIANT_LOAD         0: load() succeeds; 1: load() returns -EIO and leaves the reason
 *                        empty; 2: load() returns -EINVAL with a reason naming its weights
 *                        path, as a plugin whose weights are wrong
 *
 * A request's result is its payload length as F32 [1 x 1], like identity.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mediabatch/model.h"

#ifndef VARIANT_NAME
#define VARIANT_NAME "variant"
#endif
#ifndef VARIANT_DEVICES
#define VARIANT_DEVICES MB_MODEL_ON_CPU
#endif
#ifndef VARIANT_QUEUE_LIMIT
#define VARIANT_QUEUE_LIMIT 64
#endif
#ifndef VARIANT_LOAD
#define VARIANT_LOAD 0
#endif

static int
variant_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	(void)hdr;
	(void)reason;
	(void)reason_len;
	return 0;
}

static int
variant_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	*state = NULL;
	if (VARIANT_LOAD == 1)
		return -EIO; /* and no reason */
	if (VARIANT_LOAD == 2) {
		snprintf(reason, reason_len, "%s: not " VARIANT_NAME "'s weights",
			 args->weights_path != NULL ? args->weights_path : "(no weights)");
		return -EINVAL;
	}
	return 0;
}

static int
variant_run(void *state, struct mb_model_batch *batch)
{
	(void)state;
	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		float v = (float)it->payload_len;

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
	}
	return 0;
}

static void
variant_unload(void *state)
{
	(void)state;
}

static const struct mb_model_desc variant_desc = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = VARIANT_NAME,
	.summary = "test plugin: one variation on a good plugin (tests/plugins/variant_plugin.c)",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_F32),
	.devices = VARIANT_DEVICES,
	.base_units = 1,
	.max_batch = 4,
	.max_delay_us = 0,
	.queue_limit = VARIANT_QUEUE_LIMIT,
	.default_timeout_ms = 10000,
	.check = variant_check,
	.load = variant_load,
	.run = variant_run,
	.unload = variant_unload,
};

const struct mb_model_desc *
mb_model_plugin(void)
{
	return &variant_desc;
}
