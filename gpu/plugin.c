/*
 * plugin.c: load model plugins with dlopen and check their descriptors (mb_plugin.h).
 *
 * RTLD_NOW so that an unresolved symbol fails here, at start-up, with the loader's message,
 * instead of in the middle of a batch; RTLD_LOCAL so that two plugins cannot see (or clash
 * with) each other's symbols. Main thread only.
 */
#include "mb_plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mb_plugin {
	void *handle;
	const struct mb_model_desc *desc;
	char *path;
};

static int
check_desc(const char *path, const struct mb_model_desc *d, char *err, size_t len)
{
	size_t name_len;

	if (d->abi_version != MB_MODEL_ABI_VERSION) {
		snprintf(err, len,
			 "%s: built against model interface version %u, but this daemon speaks "
			 "version %d: rebuild the plugin against this mediabatch's "
			 "include/mediabatch/model.h",
			 path, d->abi_version, MB_MODEL_ABI_VERSION);
		return -EPROTO;
	}
	name_len = d->name != NULL ? strnlen(d->name, 17) : 0;
	if (name_len < 1 || name_len > 16) {
		snprintf(err, len, "%s: the model's name must be 1..16 characters", path);
		return -EINVAL;
	}
	for (size_t i = 0; i < name_len; i++)
		if (d->name[i] <= ' ' || d->name[i] > '~') {
			snprintf(err, len,
				 "%s: the model's name has a character that is not printable ASCII",
				 path);
			return -EINVAL;
		}
	if (d->check == NULL || d->load == NULL || d->run == NULL) {
		snprintf(err, len, "%s: model %s lacks %s()", path, d->name,
			 d->check == NULL  ? "check"
			 : d->load == NULL ? "load"
					   : "run");
		return -EINVAL;
	}
	if (!(d->devices & MB_MODEL_ON_CPU)) {
		snprintf(
			err, len,
			"%s: model %s runs only on CUDA devices, and this daemon serves plugins on "
			"the CPU device",
			path, d->name);
		return -EINVAL;
	}
	if (d->media_mask == 0 || d->max_batch < 1 || d->max_batch > 1024 || d->queue_limit < 1 ||
	    d->default_timeout_ms < 1 || d->item_units_per_second < 0) {
		snprintf(
			err, len,
			"%s: model %s: media_mask must be non-zero, max_batch 1..1024, "
			"queue_limit and default_timeout_ms at least 1, item_units_per_second >= 0",
			path, d->name);
		return -EINVAL;
	}
	return 0;
}

int
mb_plugin_open(const char *path, struct mb_plugin **out, char *err, size_t len)
{
	struct mb_plugin *p;
	mb_model_plugin_fn fn;
	const char *why;
	int rc;

	*out = NULL;
	if (access(path, R_OK) != 0) {
		rc = errno;
		snprintf(err, len, "%s: %s", path, strerror(rc));
		return rc == ENOENT ? -ENOENT : -ENOEXEC;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->path = strdup(path)) == NULL) {
		free(p);
		snprintf(err, len, "%s: out of memory", path);
		return -ENOMEM;
	}
	dlerror();
	p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (p->handle == NULL) {
		why = dlerror();
		snprintf(err, len, "cannot load it: %s", why ? why : path);
		mb_plugin_close(&p);
		return -ENOEXEC;
	}
	*(void **)&fn = dlsym(p->handle, MB_MODEL_PLUGIN_SYMBOL);
	if (fn == NULL) {
		snprintf(err, len, "%s: exports no %s(): not a mediabatch model plugin", path,
			 MB_MODEL_PLUGIN_SYMBOL);
		mb_plugin_close(&p);
		return -ENOEXEC;
	}
	p->desc = fn();
	if (p->desc == NULL) {
		snprintf(err, len, "%s: %s() returned no descriptor", path, MB_MODEL_PLUGIN_SYMBOL);
		mb_plugin_close(&p);
		return -EINVAL;
	}
	rc = check_desc(path, p->desc, err, len);
	if (rc < 0) {
		mb_plugin_close(&p);
		return rc;
	}
	*out = p;
	return 0;
}

const struct mb_model_desc *
mb_plugin_desc(const struct mb_plugin *p)
{
	return p->desc;
}

void
mb_plugin_close(struct mb_plugin **pp)
{
	struct mb_plugin *p;

	if (pp == NULL || *pp == NULL)
		return;
	p = *pp;
	if (p->handle != NULL)
		dlclose(p->handle);
	free(p->path);
	free(p);
	*pp = NULL;
}
