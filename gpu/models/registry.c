/*
 * registry.c: the list of built-in models and of the networks among them, and how each
 * splits long media. Which of them read weights, and what those look like, is layout.c's
 * (mb_layout.h: mb_builtin_with_weights[] follows the order of mb_builtin_models[]).
 */
#include <errno.h>
#include <string.h>

#include "mb_model_rt.h"

#include "mb_models.h"
#include "net_internal.h"

const struct mb_model_desc *const mb_builtin_models[] = {
	&mb_model_identity, &mb_model_logmel,	&mb_model_whisper,
	&mb_model_clap,	    &mb_model_videomae, NULL,
};

/* The built-in networks on the shared lifecycle (net_internal.h). */
extern const struct mb_net_def mb_whisper_net;
extern const struct mb_net_def mb_videomae_net;
extern const struct mb_net_def mb_clap_net;

const struct mb_net_def *const mb_net_defs[] = {
	&mb_whisper_net,
	&mb_videomae_net,
	&mb_clap_net,
	NULL,
};

int
mb_builtin_windowing(const char *model, uint32_t *window, uint8_t *join, uint8_t *topk)
{
	static const struct {
		const char *name;
		uint32_t window;
		uint8_t join, topk;
	} table[] = {
		{"logmel", MB_LOGMEL_MAX_SECONDS * 16000, MB_JOIN_CONCAT_ROWS, 0},
		{"whisper", MB_WHISPER_MAX_SECONDS * 16000, MB_JOIN_CONCAT_ROWS, 0},
		{"clap", MB_CLAP_MAX_SECONDS * MB_CLAP_SAMPLE_RATE, MB_JOIN_MEAN_L2, 0},
		{"videomae", 16, MB_JOIN_MEAN_SOFTMAX_TOPK, 5},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, model) == 0) {
			*window = table[i].window;
			*join = table[i].join;
			*topk = table[i].topk;
			return 0;
		}
	return -ENOENT;
}
