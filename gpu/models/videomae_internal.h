/**
 * @file
 * Private to gpu/: the VideoMAE video classifier (videomae.c) beyond its model.h face, and
 * what it shares with its checkpoints' layout (videomae_layout.c).
 *
 * The built-in `videomae` model is Hugging Face's VideoMAEForVideoClassification on the
 * CPU, loaded from a published checkpoint by the shared network lifecycle (net_internal.h).
 * What the rest of the program may want from a loaded one: its sizes, its class labels
 * (config.json's id2label), its logits for some clips, and the logits -> softmax -> top-k
 * step on its own (multi-clip testing averages several clips' logits before that step).
 *
 * A loaded net is the `state` that mb_model_videomae.load() handed back (a struct mb_net
 * whose def is &mb_videomae_net); the functions below take it as such.
 *
 * Threads: any, once loaded (a loaded net is read-only); each caller its own scratch.
 */
#ifndef MB_VIDEOMAE_INTERNAL_H
#define MB_VIDEOMAE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "net_internal.h"

/** The published fine-tuned checkpoints' input, the only one taken for now. */
#define MB_VIDEOMAE_IN_FRAMES 16
#define MB_VIDEOMAE_IN_SIZE 224
#define MB_VIDEOMAE_IN_TUBELET 2
#define MB_VIDEOMAE_IN_PATCH 16
/** Tokens of a clip: 8 x 14 x 14, in (t, y, x) order. */
#define MB_VIDEOMAE_IN_TOKENS 1568
/** Bytes of one clip: 16 x 224 x 224 RGB24. */
#define MB_VIDEOMAE_CLIP_BYTES (16u * 224u * 224u * 3u)
/** The most classes a result lists. */
#define MB_VIDEOMAE_TOPK_MAX 5

/** Tensors of one encoder layer (videomae_layout.c lists them, videomae.c reads them). */
#define MB_VIDEOMAE_LAYER_TENSORS 15

/** A network's sizes (from the tensors' shapes and config.json, or a preset). */
struct mb_videomae_dims {
	uint32_t d;	  /**< hidden_size */
	uint32_t layers;  /**< num_hidden_layers */
	uint32_t heads;	  /**< num_attention_heads */
	uint32_t ffn;	  /**< intermediate_size */
	uint32_t classes; /**< classifier rows (num_labels) */
	double eps;	  /**< layer_norm_eps of the encoder's LayerNorms */
	/** input normalisation, x = (v * rescale - mean[c]) / std[c] per byte v of channel c:
	 * preprocessor_config.json's, else ImageNet's (videomae_layout.c) */
	double rescale, mean[3], std[3];
	/** 1: heads from the published size, or d / 64, config.json not saying */
	uint32_t heads_assumed;
	/** labels config.json's id2label gives (as many as classes), or 0 */
	uint32_t labels;
};

/** The network's definition (its model.h descriptor is mb_model_videomae). */
extern const struct mb_net_def mb_videomae_net;

/** The size names of mb_videomae_layout (videomae_layout.c), NULL-terminated. */
extern const char *const mb_videomae_sizes[];

/** The sizes of a loaded @p net (borrowed, valid while it is loaded). */
const struct mb_videomae_dims *mb_videomae_dims_of(const struct mb_net *net);

/**
 * config.json's id2label name of class @p id of a loaded @p net, or NULL when the
 * checkpoint had no config.json, no id2label or no entry for @p id (or @p id is out of
 * range). Borrowed: valid while the net is loaded.
 */
const char *mb_videomae_label(const struct mb_net *net, uint32_t id);

/** Entries of a top-k result for @p classes classes: min(5, classes). */
uint32_t mb_videomae_topk_k(uint32_t classes);

/**
 * Softmax over @p logits [@p classes] (in float64), then the k = mb_videomae_topk_k()
 * highest, highest first, ties by the lower class id: written to @p out as k pairs (u32
 * class, f32 score), 8 * k bytes, little-endian, any alignment. A NaN logit counts as
 * -infinity. Hot path: no allocation.
 */
void mb_videomae_topk(const float *logits, uint32_t classes, void *out);

/** Scratch floats mb_videomae_logits() needs for @p n clips at once. */
size_t mb_videomae_scratch(const struct mb_net *net, uint32_t n);

/**
 * The logits of @p n clips, each MB_VIDEOMAE_CLIP_BYTES of RGB24 ([frame][row][col][rgb],
 * borrowed for the call), run as one batch: @p logits [n x classes]. @p scratch:
 * mb_videomae_scratch(net, n) floats, 64-byte aligned. Hot path: no allocation.
 */
void mb_videomae_logits(const struct mb_net *net, float *scratch, const uint8_t *const *clips,
			uint32_t n, float *logits);

#endif /* MB_VIDEOMAE_INTERNAL_H */
