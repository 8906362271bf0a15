/* The safetensors reader, public as mediabatch/weights.h (the plugin SDK). */
#include "mediabatch/weights.h"
