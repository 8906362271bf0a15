/**
 * @file
 * Private to gpu/models: what clap.c (the audio tower) and clap_layout.c (its checkpoints)
 * share: the network's sizes and the front end's frame count they are checked against.
 *
 * Threads: any; constant.
 */
#ifndef MB_CLAP_INTERNAL_H
#define MB_CLAP_INTERNAL_H

#include <stdint.h>

#include "mb_models.h"

/** The STFT's hop, in samples at MB_CLAP_SAMPLE_RATE. */
#define MB_CLAP_HOP 480u
/** The STFT's size (fft_window_size). */
#define MB_CLAP_N_FFT 1024u
/** The mel filters' range, Hz (frequency_min, frequency_max). */
#define MB_CLAP_F_MIN 50.0
#define MB_CLAP_F_MAX 14000.0
/** STFT frames of the longest clip (MB_CLAP_MAX_SECONDS, centred frames): 1001. */
#define MB_CLAP_FRAMES (1 + MB_CLAP_MAX_SECONDS * MB_CLAP_SAMPLE_RATE / MB_CLAP_HOP)
/** The most Swin stages a checkpoint may have (cuda_tf_internal.h's MB_CUDA_CLAP_MAX_STAGES
 * too: clap.c asserts that the two, and the front end's sizes, agree). */
#define MB_CLAP_MAX_STAGES 8u

/** A network's sizes (from the tensors' shapes and config.json, or a preset). */
struct mb_clap_dims {
	uint32_t embed;	 /* patch_embeds_hidden_size: stage 0's width */
	uint32_t stages; /* len(depths) */
	uint32_t depths[MB_CLAP_MAX_STAGES];
	uint32_t heads[MB_CLAP_MAX_STAGES];
	uint32_t ff[MB_CLAP_MAX_STAGES]; /* MLP width: mlp_ratio x the stage's width */
	uint32_t window;		 /* window_size */
	uint32_t patch, stride;		 /* patch_size, patch_stride (square) */
	uint32_t spec, mels;		 /* spec_size, num_mel_bins */
	uint32_t proj;			 /* projection_dim */
	float eps;			 /* layer_norm_eps: the blocks' LayerNorms */
};

/* derived sizes */

/** Stage @p s's width. */
static inline uint32_t
mb_clap_dim_of(const struct mb_clap_dims *D, uint32_t s)
{
	return D->embed << s;
}

/** The last stage's width: hidden_size. */
static inline uint32_t
mb_clap_hidden_of(const struct mb_clap_dims *D)
{
	return mb_clap_dim_of(D, D->stages - 1);
}

/** Tokens per side of stage 0. */
static inline uint32_t
mb_clap_grid_of(const struct mb_clap_dims *D)
{
	return D->spec / D->stride;
}

/** The size names of mb_clap_layout (clap_layout.c), NULL-terminated. */
extern const char *const mb_clap_sizes[];

#endif /* MB_CLAP_INTERNAL_H */
