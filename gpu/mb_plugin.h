/**
 * @file
 * Model plugins: shared objects that serve a model through include/mediabatch/model.h.
 *
 * mb_plugin_open() dlopen()s the object, finds its one exported symbol (mb_model_plugin),
 * asks it for its descriptor and checks it before anything else is called: the descriptor's
 * ABI version must be this daemon's MB_MODEL_ABI_VERSION (a plugin built against another
 * interface is refused, and nothing else in its descriptor is read), and the name, media,
 * devices, batching defaults and functions must make sense (mb_plugin_check_desc()). Every
 * refusal says which file, which field and what was wrong.
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

/**
 * Check descriptor @p d of the plugin at @p path (for the messages) as mb_plugin_open() does:
 * the ABI version (-EPROTO, nothing else read); a name of 1..16 bytes of printable ASCII
 * without spaces (the protocol's model field); check(), load() and run(); devices non-zero,
 * of MB_MODEL_ON_CPU and MB_MODEL_ON_CUDA only, and MB_MODEL_ON_CPU in a build without CUDA;
 * media_mask of known media (or MB_MEDIA_MASK_ANY); max_batch, max_delay_us, queue_limit,
 * default_timeout_ms, base_units and item_units_per_second (finite) in the ranges the config
 * allows for models[]'s keys of the same names. Returns 0, or -EPROTO or -EINVAL with the
 * field, its value and what it may be in @p err.
 */
int mb_plugin_check_desc(const char *path, const struct mb_model_desc *d, char *err,
			 size_t err_len);

/** The plugin's model. */
const struct mb_model_desc *mb_plugin_desc(const struct mb_plugin *p);

/** Unload (dlclose) and free; NULL accepted; sets *@p p to NULL. */
void mb_plugin_close(struct mb_plugin **p);

#endif /* MB_PLUGIN_H */
