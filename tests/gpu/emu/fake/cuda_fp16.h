/* cuda_fp16.h: the host emulation of CUDA stands in for it (tests/gpu/emu/emu.h). */
#include "../emu.h"
