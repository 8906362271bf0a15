/*
 * layout.c: what the built-in networks' checkpoints look like, for all of them at once (see
 * layout_internal.h): the list of their layouts and of the models with weights, tensor spec
 * lists, reading a checkpoint's prefix, sizes and tensors (the first half of a load), the
 * tensors and config.json of a size name, placeholder checkpoints and --check
 * (mb_layout.h). Nothing here computes: the library links libc, jansson and libm alone.
 *
 * Threads: any; nothing here keeps state.
 */
#include "layout_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_layout.h"

/* ---- the lists ---- */

const struct mb_net_layout *const mb_net_layouts[] = {
	&mb_whisper_layout,
	&mb_videomae_layout,
	&mb_clap_layout,
	NULL,
};

const struct mb_builtin_weights *const mb_builtin_weights[] = {
	NULL,
};

/* in the order of mb_builtin_models[] (registry.c) */
const char *const mb_builtin_with_weights[] = {
	"whisper",
	"clap",
	"videomae",
	NULL,
};

const struct mb_net_layout *
mb_net_layout_of(const char *name)
{
	for (const struct mb_net_layout *const *l = mb_net_layouts; *l != NULL; l++)
		if (strcmp((*l)->name, name) == 0)
			return *l;
	return NULL;
}

const struct mb_builtin_weights *
mb_builtin_weights_of(const char *model)
{
	for (const struct mb_builtin_weights *const *w = mb_builtin_weights; *w != NULL; w++)
		if (strcmp((*w)->model, model) == 0)
			return *w;
	return NULL;
}

int
mb_builtin_has_weights(const char *model)
{
	return mb_builtin_weights_of(model) != NULL || mb_net_layout_of(model) != NULL;
}

int
mb_builtin_is_net(const char *model)
{
	return mb_net_layout_of(model) != NULL;
}

const char *const *
mb_builtin_net_sizes(const char *model)
{
	const struct mb_net_layout *l = mb_net_layout_of(model);

	return l != NULL ? l->sizes : NULL;
}

/* ---- tensor specs ---- */

int
mb_net_spec(struct mb_net_specs *s, int init, uint32_t ndim, ...)
{
	struct mb_weights_spec *spec;
	char name[256];
	const char *fmt;
	va_list ap;

	if (ndim > MB_WEIGHTS_MAX_DIMS)
		return -EINVAL;
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 64;
		struct mb_weights_spec *v = realloc(s->v, sizeof(*v) * cap);

		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	spec = &s->v[s->n];
	memset(spec, 0, sizeof(*spec));
	spec->ndim = ndim;
	spec->init = init;
	va_start(ap, ndim);
	for (uint32_t i = 0; i < ndim; i++)
		spec->shape[i] = va_arg(ap, int64_t);
	fmt = va_arg(ap, const char *);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	spec->name = strdup(name);
	if (spec->name == NULL)
		return -ENOMEM;
	return (int)s->n++;
}

void
mb_net_specs_free(struct mb_net_specs *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free((void *)s->v[i].name);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- reading a checkpoint ---- */

/* "'model.encoder.', 'encoder.'" */
static void
prefix_list(const struct mb_net_layout *l, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (const char *const *p = l->prefixes; *p != NULL && off < len; p++)
		off += (size_t)snprintf(buf + off, len - off, "%s'%s%s'",
					p == l->prefixes ? "" : ", ", *p, l->anchor);
}

int
mb_net_layout_read(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char **prefix,
		   void *dims, struct mb_net_specs *specs, float ***w, char *reason,
		   size_t reason_len)
{
	char names[256];
	int rc;

	*prefix = mb_ckpt_pick_prefix(ck, l->prefixes, l->anchor);
	if (*prefix == NULL) {
		prefix_list(l, names, sizeof(names));
		snprintf(reason, reason_len,
			 "%s: not a %s checkpoint: it has none of the tensors %s (%u tensors in "
			 "all)",
			 mb_ckpt_path(ck), l->name, names, mb_ckpt_count(ck));
		return -EINVAL;
	}
	if ((rc = l->dims_from(ck, *prefix, dims, reason, reason_len)) < 0)
		return rc;
	if (l->specs(dims, specs) < 0 ||
	    (*w = calloc(specs->n ? specs->n : 1, sizeof(**w))) == NULL) {
		snprintf(reason, reason_len, "out of memory listing the tensors");
		return -ENOMEM;
	}
	return mb_ckpt_bind(ck, specs->v, specs->n, l->prefixes[0], *prefix, *w, reason,
			    reason_len);
}

int
mb_builtin_net_check(const char *model, const char *path, char *out, size_t out_len)
{
	const struct mb_net_layout *l = mb_net_layout_of(model);
	struct mb_net_specs specs = {0};
	struct mb_ckpt *ck = NULL;
	const char *prefix = NULL;
	float **w = NULL;
	uint64_t params = 0;
	void *dims;
	int rc;

	if (l == NULL) {
		snprintf(out, out_len, "'%s' is not a built-in network", model);
		return -ENOENT;
	}
	dims = calloc(1, l->dims_size);
	if (dims == NULL)
		return -ENOMEM;
	rc = mb_ckpt_open(path, &ck, out, out_len);
	if (rc == 0)
		rc = mb_net_layout_read(l, ck, &prefix, dims, &specs, &w, out, out_len);
	mb_ckpt_close(&ck);
	if (rc == 0) {
		char sizes[512] = "";

		for (uint32_t i = 0; i < specs.n; i++)
			params += mb_weights_spec_numel(&specs.v[i]);
		if (l->describe != NULL)
			l->describe(dims, sizes, sizeof(sizes));
		snprintf(out, out_len,
			 "%s: a %s checkpoint: %u tensors %s%s%s, %.1f M parameters%s%s; loads as "
			 "the service loads it",
			 path, model, specs.n, prefix[0] != '\0' ? "under prefix '" : "",
			 prefix[0] != '\0' ? prefix : "with the names as published (no prefix)",
			 prefix[0] != '\0' ? "'" : "", (double)params / 1e6,
			 sizes[0] != '\0' ? "; " : "", sizes);
	}
	if (w != NULL)
		for (uint32_t i = 0; i < specs.n; i++)
			free(w[i]);
	free(w);
	mb_net_specs_free(&specs);
	free(dims);
	return rc;
}

/* ---- writing ---- */

int
mb_net_layout_preset(const struct mb_net_layout *l, const char *size, struct mb_net_specs *specs,
		     char *config_json, size_t config_len, char *err, size_t err_len)
{
	void *dims = calloc(1, l->dims_size);
	int rc;

	memset(specs, 0, sizeof(*specs));
	if (dims == NULL)
		return -ENOMEM;
	if (l->preset(size, dims) < 0) {
		size_t off =
			(size_t)snprintf(err, err_len, "%s: no size '%s'; sizes:", l->name, size);

		for (const char *const *s = l->sizes; *s != NULL && off < err_len; s++)
			off += (size_t)snprintf(err + off, err_len - off, " %s", *s);
		free(dims);
		return -ENOENT;
	}
	rc = l->specs(dims, specs);
	if (rc == 0 && config_json != NULL && l->config_json(dims, config_json, config_len) < 0)
		rc = -ENOSPC;
	if (rc < 0) {
		snprintf(err, err_len, "%s: %s", l->name,
			 rc == -ENOSPC ? "config.json too long" : "out of memory");
		mb_net_specs_free(specs);
	}
	free(dims);
	return rc;
}

int
mb_net_layout_preprocessor(const struct mb_net_layout *l, const char *size, char *buf, size_t len)
{
	void *dims;
	int rc;

	if (l->preprocessor_json == NULL)
		return -ENOENT;
	if ((dims = calloc(1, l->dims_size)) == NULL)
		return -ENOMEM;
	rc = l->preset(size, dims) < 0 ? -ENOENT : l->preprocessor_json(dims, buf, len);
	free(dims);
	return rc;
}

/* ---- preprocessor_config.json ---- */

int
mb_net_pre_number(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char *key,
		  double want, char *reason, size_t reason_len)
{
	double v;
	int rc = mb_ckpt_preprocessor_double(ck, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v != want) {
		snprintf(
			reason, reason_len,
			"%s: preprocessor_config.json: %s is %g, but %s prepares its input with %g "
			"(as the published checkpoints' feature extractor does)",
			mb_ckpt_path(ck), key, v, l->name, want);
		return -EINVAL;
	}
	return 0;
}

int
mb_net_pre_string(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char *key,
		  const char *want, char *reason, size_t reason_len)
{
	const char *v;
	int rc = mb_ckpt_preprocessor_str(ck, key, &v, reason, reason_len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (strcmp(v, want) != 0) {
		snprintf(reason, reason_len,
			 "%s: preprocessor_config.json: %s is \"%s\", but %s prepares its input "
			 "with \"%s\" (as the published checkpoints' feature extractor does)",
			 mb_ckpt_path(ck), key, v, l->name, want);
		return -EINVAL;
	}
	return 0;
}

/* remove @p dir and the files in it (a checkpoint directory has no subdirectories) */
static void
remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int
write_text(const char *path, const char *text, char *err, size_t err_len)
{
	FILE *f = fopen(path, "w");
	int e = 0;

	if (f == NULL)
		e = errno;
	else if (fputs(text, f) < 0)
		e = errno, fclose(f);
	else if (fclose(f) != 0) /* closed either way: never again (a double free once) */
		e = errno;
	if (e != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int
mb_builtin_net_placeholder(const char *model, const char *size, const char *dir, uint64_t seed,
			   const char *dtype, uint64_t shard_bytes, char *err, size_t err_len)
{
	const struct mb_net_layout *l = mb_net_layout_of(model);
	struct mb_net_specs specs;
	char tmp[4096], old[4096], path[4200], *config;
	struct stat st;
	int rc;

	if (l == NULL) {
		snprintf(err, err_len, "'%s' is not a built-in network", model);
		return -ENOENT;
	}
	config = malloc(65536);
	if (config == NULL)
		return -ENOMEM;
	rc = mb_net_layout_preset(l, size, &specs, config, 65536, err, err_len);
	if (rc < 0) {
		free(config);
		return rc;
	}
	/* written beside, then swapped in: a reader never sees half a checkpoint */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dir, (long)getpid());
	snprintf(old, sizeof(old), "%s.old.%ld", dir, (long)getpid());
	remove_dir(tmp);
	rc = mb_ckpt_generate(tmp, specs.v, specs.n, seed, dtype, shard_bytes, err, err_len);
	snprintf(path, sizeof(path), "%s/config.json", tmp);
	if (rc == 0)
		rc = write_text(path, config, err, err_len);
	if (rc == 0 && l->preprocessor_json != NULL) {
		rc = mb_net_layout_preprocessor(l, size, config, 65536);
		snprintf(path, sizeof(path), "%s/preprocessor_config.json", tmp);
		if (rc == 0)
			rc = write_text(path, config, err, err_len);
		else
			snprintf(err, err_len, "%s: preprocessor_config.json too long", model);
	}
	if (rc == 0 && stat(dir, &st) == 0 && rename(dir, old) != 0) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
	}
	if (rc == 0 && rename(tmp, dir) != 0) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
	}
	if (rc < 0)
		remove_dir(tmp);
	remove_dir(old);
	mb_net_specs_free(&specs);
	free(config);
	return rc;
}
