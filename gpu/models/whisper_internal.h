/**
 * @file
 * Private to gpu/models: what whisper.c (the encoder) and whisper_layout.c (its checkpoints)
 * share: the network's sizes.
 *
 * Threads: any; constant.
 */
#ifndef MB_WHISPER_INTERNAL_H
#define MB_WHISPER_INTERNAL_H

#include <stdint.h>

/** Encoder positions (max_source_positions): 30 s of audio, whatever the size. */
#define MB_WHISPER_POSITIONS 1500u

/** A network's sizes (from the tensors' shapes and config.json, or a preset). */
struct mb_whisper_dims {
	uint32_t d, layers, heads, ffn, n_mels;
	/** 1: heads is d / 64, config.json not saying (every published size's head size) */
	uint32_t heads_assumed;
};

/** The size names of mb_whisper_layout, NULL-terminated (mb_net_def.sizes too). */
extern const char *const mb_whisper_sizes[];

#endif /* MB_WHISPER_INTERNAL_H */
