/*
 * example_plugin.c: a complete model plugin for mediabatch, the way to serve a real network.
 *
 * It serves the model "example": an F32 tensor [rows x 16] -> F32 [rows x 4] through a
 * two-layer perceptron, y = fc2(relu(fc1(x))), with weights from a safetensors file:
 *   fc1.weight [32, 16], fc1.bias [32], fc2.weight [4, 32], fc2.bias [4]
 * Replace the arithmetic in run() with your network (or a call into the framework that runs
 * it: ONNX Runtime, TensorRT, libtorch) and the specs with its tensors; the rest stays.
 *
 * Build it as a shared object against include/mediabatch/model.h (meson does:
 * build/examples/plugin/libmb_example_plugin.so; out of tree: below) and serve it with
 *
 *   models:
 *     - name: example
 *       plugin: build/examples/plugin/libmb_example_plugin.so
 *       weights: /path/to/example.safetensors
 *
 * It links mediabatch's small safetensors reader (mediabatch/weights.h, in the plugin SDK's
 * libmediabatch-plugin) for its weights; a plugin may read its weights any way it likes.
 * Out of tree, against an installed mediabatch:
 *
 *   cc -shared -fPIC -o libexample.so example_plugin.c \
 *      $(pkg-config --cflags --libs mediabatch-plugin)
 *
 * See README.md, "Serving a real network: plugins".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mediabatch/model.h"
#include "mediabatch/weights.h"

#define IN 16
#define HIDDEN 32
#define OUT 4
#define MAX_ROWS 1024

enum { W1, B1, W2, B2, N_TENSORS };

static const struct mb_weights_spec specs[N_TENSORS] = {
	[W1] = {"fc1.weight", 2, {HIDDEN, IN}},
	[B1] = {"fc1.bias", 1, {HIDDEN}},
	[W2] = {"fc2.weight", 2, {OUT, HIDDEN}},
	[B2] = {"fc2.bias", 1, {OUT}},
};

struct example_state {
	float *w[N_TENSORS];
};

/* Front door, every request: cheap and pure. Say exactly what is expected. */
static int
example_check(const struct mb_request_hdr *hdr, char *reason, size_t reason_len)
{
	if (hdr->width != 0 || hdr->height != IN || hdr->frames < 1 || hdr->frames > MAX_ROWS) {
		snprintf(reason, reason_len,
			 "shape: F32 [%u x %u], but example takes F32 [rows x %d] with rows "
			 "1..%d",
			 hdr->frames, hdr->height, IN, MAX_ROWS);
		return -1;
	}
	return 0;
}

static void
example_unload(void *state)
{
	struct example_state *s = state;

	if (s == NULL)
		return;
	for (int i = 0; i < N_TENSORS; i++)
		free(s->w[i]);
	free(s);
}

/* Once per device at start-up: read and check the weights. A failure disables this model
 * only; the reason reaches the log and every request for it. */
static int
example_load(const struct mb_model_load_args *args, void **state, char *reason, size_t reason_len)
{
	struct example_state *s;
	int rc;

	if (args->weights_path == NULL) {
		snprintf(reason, reason_len, "example needs a weights file (models[].weights)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = mb_weights_load(args->weights_path, specs, N_TENSORS, s->w, reason, reason_len);
	if (rc < 0) {
		example_unload(s);
		return rc;
	}
	*state = s;
	return 0;
}

/* A worker thread, a batch of 1..max_batch items. Read-only use of the state. */
static int
example_run(void *state, struct mb_model_batch *batch)
{
	const struct example_state *s = state;

	for (uint32_t i = 0; i < batch->n_items; i++) {
		struct mb_model_item *it = &batch->items[i];
		uint32_t rows = it->hdr->frames;
		const uint8_t *x = it->payload; /* no alignment promised: copy rows out */
		float *y;

		if (it->payload_len != rows * IN * sizeof(float)) {
			mb_model_item_fail(it, "payload does not match its shape");
			continue;
		}
		y = batch->alloc_result(batch, (size_t)rows * OUT * sizeof(float));
		if (y == NULL) {
			mb_model_item_fail(it, "out of memory for the result");
			continue;
		}
		for (uint32_t r = 0; r < rows; r++) {
			float h[HIDDEN], in[IN];

			memcpy(in, x + (size_t)r * IN * sizeof(float), sizeof(in));
			for (int j = 0; j < HIDDEN; j++) {
				float acc = s->w[B1][j];

				for (int k = 0; k < IN; k++)
					acc += s->w[W1][j * IN + k] * in[k];
				h[j] = acc > 0.0f ? acc : 0.0f;
			}
			for (int o = 0; o < OUT; o++) {
				float acc = s->w[B2][o];

				for (int j = 0; j < HIDDEN; j++)
					acc += s->w[W2][o * HIDDEN + j] * h[j];
				y[r * OUT + o] = acc;
			}
		}
		it->result = y;
		it->result_len = rows * OUT * sizeof(float);
		it->result_type = MB_RESULT_F32;
		it->rows = (uint16_t)rows;
		it->cols = OUT;
	}
	return 0;
}

static const struct mb_model_desc example_desc = {
	.abi_version = MB_MODEL_ABI_VERSION,
	.name = "example",
	.summary = "example plugin: a 16-32-4 perceptron on F32 [rows x 16]",
	.media_mask = MB_MEDIA_MASK(MB_MEDIA_F32),
	.devices = MB_MODEL_ON_CPU,
	.base_units = 1,
	.item_units_per_second = 0.0,
	.max_batch = 32,
	.max_delay_us = 1000,
	.queue_limit = 1024,
	.default_timeout_ms = 10000,
	.check = example_check,
	.load = example_load,
	.run = example_run,
	.unload = example_unload,
};

/* The one symbol mediabatch looks for. */
const struct mb_model_desc *
mb_model_plugin(void)
{
	return &example_desc;
}
