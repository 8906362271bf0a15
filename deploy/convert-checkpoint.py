#!/usr/bin/env python3
"""convert-checkpoint.py: turn a PyTorch checkpoint (pytorch_model.bin) into model.safetensors.

mediabatch reads checkpoints in the safetensors format only (README.md, "The models"). Some
published repositories ship only `pytorch_model.bin` (a pickled state dict). This writes the
same tensors, with the same names, shapes and dtypes (F32, F16 and BF16 kept as they are;
other dtypes written as they are too, and refused by mediabatch only if a model asks for
them), as `model.safetensors` beside it, so the directory becomes a checkpoint mediabatch
loads; config.json is left where it is.

  deploy/convert-checkpoint.py DIR_OR_BIN [--out FILE]

Needs PyTorch (Debian: python3-torch). Loading a pickle runs code from the file: convert only
checkpoints you trust (torch.load is called with weights_only=True where this PyTorch has it).
Sharded .bin checkpoints (pytorch_model.bin.index.json) are converted shard by shard, with a
model.safetensors.index.json written for the shards.
"""
import argparse
import json
import os
import struct
import sys

DTYPES = {
    "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def load_state(path):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # PyTorch without weights_only (Debian 12's 1.13)
        state = torch.load(path, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        sys.exit("convert-checkpoint: %s does not hold a state dict" % path)
    return state


def write_safetensors(state, out):
    import torch

    header, blobs, off = {}, [], 0
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        dtype = DTYPES.get(str(t.dtype).replace("torch.", ""))
        if dtype is None:
            sys.exit("convert-checkpoint: tensor '%s' has dtype %s, which safetensors cannot "
                     "hold" % (name, t.dtype))
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, out)
    return len(header) - 1, off


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a checkpoint directory, or a pytorch_model.bin file")
    ap.add_argument("--out", help="the file to write (default: model.safetensors beside it)")
    a = ap.parse_args()
    d = a.path if os.path.isdir(a.path) else os.path.dirname(os.path.abspath(a.path))
    index = os.path.join(d, "pytorch_model.bin.index.json")
    if os.path.isdir(a.path) and os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        new_map, total = {}, 0
        for shard in sorted(set(wmap.values())):
            st_name = shard.replace("pytorch_model", "model").replace(".bin", ".safetensors")
            n, size = write_safetensors(load_state(os.path.join(d, shard)),
                                        os.path.join(d, st_name))
            total += size
            for name, s in wmap.items():
                if s == shard:
                    new_map[name] = st_name
            print("%s: %d tensors -> %s" % (shard, n, st_name))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": new_map}, f, indent=2)
        print("wrote %s" % os.path.join(d, "model.safetensors.index.json"))
        return
    src = os.path.join(a.path, "pytorch_model.bin") if os.path.isdir(a.path) else a.path
    if not os.path.exists(src):
        sys.exit("convert-checkpoint: no %s" % src)
    out = a.out or os.path.join(d, "model.safetensors")
    n, size = write_safetensors(load_state(src), out)
    print("%s: %d tensors, %.1f MB -> %s" % (src, n, size / 1e6, out))


if __name__ == "__main__":
    main()
