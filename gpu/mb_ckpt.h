/* Published checkpoints, public as mediabatch/ckpt.h (the plugin SDK). */
#include "mediabatch/ckpt.h"
