/*
 * badabi_plugin.c: a test plugin built "against another interface version": its descriptor
 * says ABI version MB_MODEL_ABI_VERSION + 1. mediabatch must refuse it with a clear error
 * and read nothing else from it.
 */
#include "mediabatch/model.h"

static const struct mb_model_desc badabi_desc = {
	.abi_version = MB_MODEL_ABI_VERSION + 1,
	.name = "badabi",
};

const struct mb_model_desc *
mb_model_plugin(void)
{
	return &badabi_desc;
}
