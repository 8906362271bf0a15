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
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_config.h"

struct mb_plugin {
	void *handle;
	const struct mb_model_desc *desc;
	char *path;
};

/*
 * The descriptor's batching defaults and costs must lie in the ranges the config allows for
 * the same keys of models[] (core/config.c, deploy/mediabatch.yaml): a value the config
 * would refuse is refused here too, for this model alone, instead of passing --check and then
 * stopping the start (a queue of 4000000000) or silently turning admission off (a NaN rate).
 */
static const struct {
	const char *field;
	size_t offset;
	uint32_t lo, hi;
} desc_ranges[] = {
	{"max_batch", offsetof(struct mb_model_desc, max_batch), 1, 1024},
	{"max_delay_us", offsetof(struct mb_model_desc, max_delay_us), 0, 10000000},
	{"queue_limit", offsetof(struct mb_model_desc, queue_limit), 1, 1000000},
	{"default_timeout_ms", offsetof(struct mb_model_desc, default_timeout_ms), 1, 3600000},
	{"base_units", offsetof(struct mb_model_desc, base_units), 0, 1000000},
};
#define DESC_UNITS_PER_SECOND_MAX 1e6 /* models[].item_units_per_second: 0..1000000 */

/* The media enum mb_media names (protocol.h): MB_MEDIA_PCM_S16LE .. MB_MEDIA_F32. */
#define DESC_MEDIA_KNOWN                                                                           \
	(MB_MEDIA_MASK(MB_MEDIA_PCM_S16LE) | MB_MEDIA_MASK(MB_MEDIA_PCM_F32LE) |                   \
	 MB_MEDIA_MASK(MB_MEDIA_RGB24) | MB_MEDIA_MASK(MB_MEDIA_F32))

/* Whether the @p n bytes of @p s are printable ASCII, space included (then it can be quoted). */
static bool
printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < ' ' || s[i] > '~')
			return false;
	return true;
}

/* The protocol's model field takes printable ASCII without spaces (net/proto.c): a name
 * with any other byte could never be asked for. */
#define NAME_RULE                                                                                  \
	"a model name is printable ASCII without spaces (0x21-0x7e), as the protocol's model "     \
	"field takes it"

static int
check_name(const char *path, const char *name, char *err, size_t len)
{
	size_t n;

	if (name == NULL) {
		snprintf(err, len, "%s: the model's name is NULL: give it 1..16 characters", path);
		return -EINVAL;
	}
	n = strnlen(name, MB_PROTO_MODEL_LEN + 1);
	if (n < 1 || n > MB_PROTO_MODEL_LEN) {
		snprintf(err, len,
			 n < 1 ? "%s: the model's name is empty: give it 1..%d characters"
			       : "%s: the model's name is longer than %d characters",
			 path, MB_PROTO_MODEL_LEN);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c > ' ' && c <= '~')
			continue;
		if (c == ' ' && printable(name, n))
			snprintf(err, len, "%s: the model's name '%s' has a space (byte %zu): %s",
				 path, name, i, NAME_RULE);
		else
			snprintf(err, len, "%s: byte %zu of the model's name is 0x%02x: %s", path,
				 i, c, NAME_RULE);
		return -EINVAL;
	}
	return 0;
}

int
mb_plugin_check_desc(const char *path, const struct mb_model_desc *d, char *err, size_t len)
{
	const uint32_t dev_known = MB_MODEL_ON_CPU | MB_MODEL_ON_CUDA;
	int rc;

	if (d->abi_version != MB_MODEL_ABI_VERSION) {
		snprintf(err, len,
			 "%s: built against model interface version %u, but this daemon speaks "
			 "version %d: rebuild the plugin against this mediabatch's "
			 "include/mediabatch/model.h",
			 path, d->abi_version, MB_MODEL_ABI_VERSION);
		return -EPROTO;
	}
	if ((rc = check_name(path, d->name, err, len)) < 0)
		return rc;
	if (d->check == NULL || d->load == NULL || d->run == NULL) {
		snprintf(err, len, "%s: model %s lacks %s()", path, d->name,
			 d->check == NULL  ? "check"
			 : d->load == NULL ? "load"
					   : "run");
		return -EINVAL;
	}
	if (d->devices == 0) {
		snprintf(err, len,
			 "%s: model %s declares no device it runs on (devices is 0): set "
			 "MB_MODEL_ON_CPU, MB_MODEL_ON_CUDA or both",
			 path, d->name);
		return -EINVAL;
	}
	if (d->devices & ~dev_known) {
		snprintf(err, len,
			 "%s: model %s: devices 0x%x has bits of no device mediabatch knows "
			 "(0x%x): only MB_MODEL_ON_CPU (0x1) and MB_MODEL_ON_CUDA (0x2)",
			 path, d->name, d->devices, d->devices & ~dev_known);
		return -EINVAL;
	}
	if (!MB_HAVE_CUDA && !(d->devices & MB_MODEL_ON_CPU)) {
		snprintf(
			err, len,
			"%s: model %s runs only on CUDA devices (devices is MB_MODEL_ON_CUDA), and "
			"this mediabatch was built without CUDA: add MB_MODEL_ON_CPU, or serve it "
			"from a build with CUDA",
			path, d->name);
		return -EINVAL;
	}
	if (d->media_mask == 0) {
		snprintf(err, len, "%s: model %s: media_mask is 0: it accepts no media", path,
			 d->name);
		return -EINVAL;
	}
	if (d->media_mask != MB_MEDIA_MASK_ANY && (d->media_mask & ~DESC_MEDIA_KNOWN)) {
		snprintf(err, len,
			 "%s: model %s: media_mask 0x%x has bits of no medium mediabatch knows "
			 "(0x%x): MB_MEDIA_MASK() of protocol.h's media (0x%x), or "
			 "MB_MEDIA_MASK_ANY",
			 path, d->name, d->media_mask, d->media_mask & ~DESC_MEDIA_KNOWN,
			 DESC_MEDIA_KNOWN);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(desc_ranges) / sizeof(desc_ranges[0]); i++) {
		uint32_t v;

		memcpy(&v, (const char *)d + desc_ranges[i].offset, sizeof(v));
		if (v < desc_ranges[i].lo || v > desc_ranges[i].hi) {
			snprintf(err, len,
				 "%s: model %s: %s %" PRIu32 " is out of range %" PRIu32
				 "..%" PRIu32 ", as models[].%s in a config",
				 path, d->name, desc_ranges[i].field, v, desc_ranges[i].lo,
				 desc_ranges[i].hi, desc_ranges[i].field);
			return -EINVAL;
		}
	}
	if (!isfinite(d->item_units_per_second) || d->item_units_per_second < 0 ||
	    d->item_units_per_second > DESC_UNITS_PER_SECOND_MAX) {
		char v[32];

		snprintf(err, len,
			 "%s: model %s: item_units_per_second %s is out of range 0..1000000, as "
			 "models[].item_units_per_second in a config",
			 path, d->name, mb_config_shortest(v, sizeof(v), d->item_units_per_second));
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
	rc = mb_plugin_check_desc(path, p->desc, err, len);
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
