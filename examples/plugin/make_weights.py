#!/usr/bin/env python3
"""Write weights for the example plugin (example_plugin.c): a safetensors file holding
fc1.weight [32, 16], fc1.bias [32], fc2.weight [4, 32], fc2.bias [4], F32, random numbers
from a fixed seed. Replace them with your network's trained tensors; this file only shows
the layout the plugin reads.

usage: examples/plugin/make_weights.py OUT.safetensors [--seed N]

Needs numpy (python3-numpy). The safetensors layout: an 8-byte little-endian header length,
a JSON header naming each tensor's dtype, shape and byte range, then the data.
"""
import argparse
import json
import struct
import sys

import numpy as np

SHAPES = {"fc1.weight": (32, 16), "fc1.bias": (32,), "fc2.weight": (4, 32), "fc2.bias": (4,)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the safetensors file to write")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    hdr, data = {}, b""
    for name, shape in SHAPES.items():
        scale = 0.3 if name.endswith("weight") else 0.1
        b = (rng.standard_normal(shape) * scale).astype("<f4").tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(shape),
                     "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(hdr).encode()
    try:
        with open(a.out, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
    except OSError as e:
        sys.exit("make_weights.py: %s: %s" % (a.out, e.strerror))
    print("%s: %d tensors, %d parameters (seed %d)" %
          (a.out, len(SHAPES), len(data) // 4, a.seed))


if __name__ == "__main__":
    main()
