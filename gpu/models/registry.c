/*
 * registry.c: the list of built-in models and of the weights they read.
 */
#include <string.h>

#include "mb_models.h"

extern const struct mb_builtin_weights mb_whisper_weights;
extern const struct mb_builtin_weights mb_clap_weights;
extern const struct mb_builtin_weights mb_videomae_weights;

const struct mb_model_desc *const mb_builtin_models[] = {
	&mb_model_identity, &mb_model_logmel,	&mb_model_whisper,
	&mb_model_clap,	    &mb_model_videomae, NULL,
};

const struct mb_builtin_weights *const mb_builtin_weights[] = {
	&mb_whisper_weights,
	&mb_clap_weights,
	&mb_videomae_weights,
	NULL,
};

const struct mb_builtin_weights *
mb_builtin_weights_of(const char *model)
{
	for (const struct mb_builtin_weights *const *w = mb_builtin_weights; *w != NULL; w++)
		if (strcmp((*w)->model, model) == 0)
			return *w;
	return NULL;
}
