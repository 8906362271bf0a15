/**
 * @file
 * Model plugins: shared objects that serve a model through include/mediabatch/model.h.
 *
 * mb_plugin_open() dlopen()s the object, finds its one exported symbol (mb_model_plugin),
 * asks it for its descriptor and checks it before anything else is called: the descriptor's
 * ABI version must be this daemon's MB_MODEL_ABI_VERSION (a plugin built against another
 * interface is refused, and nothing else in its descriptor is read), and the name, media,
 * devices, batching defaults and functions must make sense. Every refusal says which file
 * and what was wrong.
 *
 * Ownership: the descriptor belongs to the loaded object; it stays valid until
 * mb_plugin_close(), which must come after the model's unload().
 * Threads: main thread (start-up and shutdown).
 */
#ifndef MB_PLUGIN_H
#define MB_PLUGIN_H

#include <stddef.h>

#include "mediabatch/model.h"

struct mb_plugin;

/**
 * Load @p path (copied). Returns 0 with the plugin in @p out, or -ENOENT (no such file),
 * -ENOEXEC (not loadable, or no mb_model_plugin symbol), -EPROTO (another interface
 * version) or -EINVAL (a descriptor that makes no sense), with the reason in @p err.
 */
int mb_plugin_open(const char *path, struct mb_plugin **out, char *err, size_t err_len);

/** The plugin's model. */
const struct mb_model_desc *mb_plugin_desc(const struct mb_plugin *p);

/** Unload (dlclose) and free; NULL accepted; sets *@p p to NULL. */
void mb_plugin_close(struct mb_plugin **p);

#endif /* MB_PLUGIN_H */
