/**
 * @file
 * The built-in models (include/mediabatch/model.h descriptors), CPU implementations:
 *
 *   identity  any valid request -> F32 [1 x 1] = payload bytes (measures the service itself)
 *   logmel    PCM 16 kHz mono, 400 samples (25 ms) .. 30 s -> F32 [samples/160 x 80],
 *             Whisper's log-mel front end (see models/logmel.c)
 *
 * Threads: the descriptors are constant; see model.h for which thread calls what.
 */
#ifndef MB_MODELS_H
#define MB_MODELS_H

#include "mediabatch/model.h"

extern const struct mb_model_desc mb_model_identity;
extern const struct mb_model_desc mb_model_logmel;

/** The built-in models, NULL-terminated. */
extern const struct mb_model_desc *const mb_builtin_models[];

#endif /* MB_MODELS_H */
