/**
 * @file
 * Private to gpu/: what a built-in network's checkpoints look like (the mb_layout library,
 * mb_layout.h), apart from what the network computes (net_internal.h).
 *
 * A network's layout is a struct mb_net_layout: its published sizes, the name prefixes its
 * checkpoints use, how it reads its sizes from a checkpoint (tensor shapes, config.json),
 * the tensors it needs for those sizes and the config.json it writes for them. Each
 * network's is in its own file (whisper_layout.c, videomae_layout.c, clap_layout.c); layout.c
 * does the rest once for all of them:
 *
 *   read       pick the prefix a checkpoint uses, read the sizes (layout->dims_from), list
 *              the tensors (layout->specs) and bind them as F32 (mb_net_layout_read(): the
 *              part of a load that reads the checkpoint; net.c's load goes on from there);
 *   write      the tensors, config.json and preprocessor_config.json of a size name
 * (mb_net_layout_preset(): "tiny", a small test size that is not a published one, and the published
 * names such as "whisper-base"), a placeholder checkpoint of them, and mb_layout.h's mb_builtin_*
 * functions on top.
 *
 * The network's compute (struct mb_net_def, net_internal.h) points at its layout.
 *
 * Threads: any; a layout is constant.
 */
#ifndef MB_LAYOUT_INTERNAL_H
#define MB_LAYOUT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mb_ckpt.h"
#include "mb_layout.h"
#include "mb_weights.h"

/** A growable list of tensor specs whose names are built at run time (it owns them). */
struct mb_net_specs {
	struct mb_weights_spec *v;
	uint32_t n, cap;
};

/**
 * Append a spec of @p ndim dimensions (the sizes follow as int64_t varargs) named by
 * printf(@p fmt, ...) after the sizes. @p init: MB_WEIGHTS_INIT_* for placeholders.
 * Returns its index, or -ENOMEM.
 *
 *     mb_net_spec(s, MB_WEIGHTS_INIT_DEFAULT, 2, (int64_t)ff, (int64_t)d,
 *                 "model.encoder.layers.%u.fc1.weight", i);
 */
int mb_net_spec(struct mb_net_specs *s, int init, uint32_t ndim, ...);

/** Free the names and the array; the struct is empty afterwards. */
void mb_net_specs_free(struct mb_net_specs *s);

struct mb_net_layout {
	const char *name; /**< the model's name */

	/** Accepted name prefixes, canonical first, NULL-terminated: the specs use the first;
	 * a checkpoint with another is bound with it in its place. */
	const char *const *prefixes;
	/** A tensor every checkpoint of this network has, after the prefix (finds it). */
	const char *anchor;

	/** Size names preset() knows, NULL-terminated; the first is the build's default. */
	const char *const *sizes;
	size_t dims_size; /**< sizeof the network's own dims struct */

	/** Fill @p dims for size @p size. 0, or -ENOENT for a name not in sizes. */
	int (*preset)(const char *size, void *dims);

	/**
	 * Read the sizes of the checkpoint @p ck, whose tensors carry @p prefix: from tensor
	 * shapes, and from config.json where only it knows (heads, eps). 0, or -EINVAL with a
	 * reason naming the file and tensor or key.
	 */
	int (*dims_from)(const struct mb_ckpt *ck, const char *prefix, void *dims, char *reason,
			 size_t reason_len);

	/** Every tensor for @p dims under the canonical names. 0 or -ENOMEM. */
	int (*specs)(const void *dims, struct mb_net_specs *out);

	/** config.json for @p dims (Hugging Face's keys), NUL-terminated. 0, -ENOSPC. */
	int (*config_json)(const void *dims, char *buf, size_t len);

	/**
	 * preprocessor_config.json for @p dims: what the network's Hugging Face feature
	 * extractor or image processor computes with, as this network computes it. 0, -ENOSPC.
	 */
	int (*preprocessor_json)(const void *dims, char *buf, size_t len);

	/**
	 * The sizes @p dims in words for mediabatch-weights --check ("d_model 384, 4 layers, 6
	 * heads, ..."), and where one was assumed rather than read. Optional (NULL: none).
	 */
	void (*describe)(const void *dims, char *buf, size_t len);
};

/**
 * preprocessor_config.json's number @p key, when the checkpoint has the file and the key,
 * must be @p want (what @p l's network computes with). 0, or -EINVAL with the reason:
 * "DIR: preprocessor_config.json: sampling_rate is 22050, but whisper prepares its
 * input with 16000 (...)".
 */
int mb_net_pre_number(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char *key,
		      double want, char *reason, size_t reason_len);

/** As mb_net_pre_number(), for a string. */
int mb_net_pre_string(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char *key,
		      const char *want, char *reason, size_t reason_len);

/** The built-in networks' layouts (whisper_layout.c, videomae_layout.c, clap_layout.c). */
extern const struct mb_net_layout mb_whisper_layout;
extern const struct mb_net_layout mb_videomae_layout;
extern const struct mb_net_layout mb_clap_layout;

/** The built-in networks' layouts, NULL-terminated. */
extern const struct mb_net_layout *const mb_net_layouts[];

/** The layout of the network called @p name, or NULL. */
const struct mb_net_layout *mb_net_layout_of(const char *name);

/**
 * The tensors and config.json of @p l at size @p size (mediabatch-weights). 0, -ENOENT
 * (unknown size: the known ones listed in @p err) or -ENOMEM. Free with
 * mb_net_specs_free().
 */
int mb_net_layout_preset(const struct mb_net_layout *l, const char *size,
			 struct mb_net_specs *specs, char *config_json, size_t config_len,
			 char *err, size_t err_len);

/**
 * The preprocessor_config.json of @p l at size @p size into @p buf. 0, -ENOENT (unknown size,
 * or a network that writes none), -ENOSPC.
 */
int mb_net_layout_preprocessor(const struct mb_net_layout *l, const char *size, char *buf,
			       size_t len);

/**
 * Read checkpoint @p ck as network @p l: the prefix its tensors carry (*@p prefix, a static
 * string of @p l), its sizes into @p dims (l->dims_size bytes, zeroed by the caller), its
 * tensors under the canonical names into @p specs (empty before) and each bound as F32 into
 * *@p w (NULL before: an array of specs->n, allocated here). 0, or -errno with the reason.
 * Whether it succeeds or not, the caller frees what was filled: mb_net_specs_free(@p specs),
 * each (*@p w)[i] and *@p w.
 */
int mb_net_layout_read(const struct mb_net_layout *l, const struct mb_ckpt *ck, const char **prefix,
		       void *dims, struct mb_net_specs *specs, float ***w, char *reason,
		       size_t reason_len);

#endif /* MB_LAYOUT_INTERNAL_H */
