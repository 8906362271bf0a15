/**
 * @file
 * Private to core/: how eal.c tells env.c that DPDK's heap may be used.
 */
#ifndef MB_ENV_INTERNAL_H
#define MB_ENV_INTERNAL_H

#include <stdbool.h>

/** Called by mb_eal_init() (true) and mb_eal_fini() (false). */
void mb_env_set_eal_heap(bool up);

#endif /* MB_ENV_INTERNAL_H */
