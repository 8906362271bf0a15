#!/usr/bin/env python3
"""An independent float64 reference of VideoMAE video classification (tests/unit/gpu/videomae_test.c).

Written from the definition of Hugging Face's VideoMAEForVideoClassification (modeling_videomae.py),
with PyTorch's own operators and none of mediabatch's code: torch.nn.functional.conv3d for the
tubelet embedding (not im2col), a sinusoid table built with numpy as HF builds it, explicit
per-head attention, torch's layer_norm and exact GELU. Needs torch and numpy only: the
safetensors files (one model.safetensors, or model.safetensors.index.json and its shards) are
read with json/struct/numpy; F32, F16 and BF16 tensors.

    videomae_ref.py CKPT_DIR CLIPS.rgb N OUT.f64

The input is normalised as Hugging Face's VideoMAEImageProcessor does with the checkpoint's
preprocessor_config.json (v * rescale_factor unless do_rescale is false, then (x - image_mean)
/ image_std unless do_normalize is false; its class defaults for keys the file lacks: 1/255,
mean and std 0.5); without that file, with ImageNet's mean and std after / 255 (what VideoMAE
was trained with, and mediabatch's documented default).

CLIPS.rgb: N clips of 16 x 224 x 224 RGB24 bytes ([frame][row][col][r, g, b]), one after the
other. OUT.f64: the logits, float64 little-endian, [N x classes]. The top-5 of each clip go to
stdout. Exit status 2 for usage errors, 3 when torch or numpy cannot be imported.
"""

import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as tf
except ImportError as e:  # the C test turns this into a failure with this message
    sys.stderr.write("videomae_ref.py: cannot import torch/numpy (%s); install python3-torch\n" % e)
    sys.exit(3)

FRAMES, SIZE, TUBELET, PATCH = 16, 224, 2, 16
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def read_safetensors(path, want=None):
    """{name: float64 tensor} of one safetensors file (every tensor, or those in want)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    data = raw[8 + hlen:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or (want is not None and name not in want):
            continue
        begin, end = meta["data_offsets"]
        buf = data[begin:end]
        shape = tuple(meta["shape"])
        dtype = meta["dtype"]
        if dtype == "F32":
            a = np.frombuffer(buf, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float64)
        elif dtype == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            a = u.view("<f4").astype(np.float64)
        else:
            raise SystemExit("videomae_ref.py: %s: tensor %s has dtype %s" % (path, name, dtype))
        out[name] = torch.from_numpy(a.reshape(shape).copy())
    return out


def read_checkpoint(d):
    index = os.path.join(d, "model.safetensors.index.json")
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        names = {n for n, s in weight_map.items() if s == shard}
        out.update(read_safetensors(os.path.join(d, shard), names))
    return out


def sinusoid_table(n, d):
    """HF get_sinusoid_encoding_table: angle pos / 10000^(2 (j // 2) / d); sin even j, cos odd j.
    HF keeps it as a FloatTensor and casts it to the model's dtype: so do we."""
    pos = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(d)
    angle = pos / np.power(10000.0, 2.0 * (j // 2) / d)[None, :]
    table = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.from_numpy(table.astype(np.float32).astype(np.float64))


def normalisation(pre):
    """(rescale, mean[3], std[3]) from preprocessor_config.json's dict, or None for no file."""
    if pre is None:
        return 1.0 / 255.0, MEAN, STD
    rescale = float(pre.get("rescale_factor", 1.0 / 255.0)) if pre.get("do_rescale", True) else 1.0
    if not pre.get("do_normalize", True):
        return rescale, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def three(v):
        return tuple(float(x) for x in v) if isinstance(v, list) else (float(v),) * 3

    return rescale, three(pre.get("image_mean", 0.5)), three(pre.get("image_std", 0.5))


def forward(w, cfg, clips, pre=None):
    """logits [n x classes] of clips, a uint8 array [n, 16, 224, 224, 3]."""
    proj = w["videomae.embeddings.patch_embeddings.projection.weight"]
    d = proj.shape[0]
    heads = int(cfg.get("num_attention_heads", d // 64))
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    dh = d // heads
    layers = 0
    while "videomae.encoder.layer.%d.attention.attention.query.weight" % layers in w:
        layers += 1

    rescale, mean, std = normalisation(pre)
    x = torch.from_numpy(clips.astype(np.float64)) * rescale  # [n, t, h, w, c]
    mean = torch.tensor(mean, dtype=torch.float64)
    std = torch.tensor(std, dtype=torch.float64)
    x = (x - mean) / std
    # HF's pixel_values are [n, t, c, h, w], permuted to [n, c, t, h, w] for the conv3d
    x = x.permute(0, 4, 1, 2, 3).contiguous()
    e = tf.conv3d(x, proj, w["videomae.embeddings.patch_embeddings.projection.bias"],
                  stride=(TUBELET, PATCH, PATCH))  # [n, d, 8, 14, 14]
    h = e.flatten(2).transpose(1, 2)  # [n, 1568, d], tokens in (t, y, x) order
    h = h + sinusoid_table(h.shape[1], d)[None]
    n, t, _ = h.shape

    for i in range(layers):
        p = "videomae.encoder.layer.%d." % i
        a = tf.layer_norm(h, (d,), w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"], eps)
        q = a @ w[p + "attention.attention.query.weight"].T + w[p + "attention.attention.q_bias"]
        k = a @ w[p + "attention.attention.key.weight"].T  # no key bias
        v = a @ w[p + "attention.attention.value.weight"].T + w[p + "attention.attention.v_bias"]
        q = q.view(n, t, heads, dh).transpose(1, 2)
        k = k.view(n, t, heads, dh).transpose(1, 2)
        v = v.view(n, t, heads, dh).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) / (dh ** 0.5), dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(n, t, d)
        h = h + ctx @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"]
        a = tf.layer_norm(h, (d,), w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"], eps)
        a = tf.gelu(a @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"])
        h = h + a @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"]

    pooled = h.mean(dim=1)
    # HF: fc_norm = nn.LayerNorm(hidden_size): torch's default eps, 1e-5
    pooled = tf.layer_norm(pooled, (d,), w["fc_norm.weight"], w["fc_norm.bias"], 1e-5)
    return pooled @ w["classifier.weight"].T + w["classifier.bias"]


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    ckpt, clips_path, n, out = argv[1], argv[2], int(argv[3]), argv[4]
    cfg = {}
    if os.path.exists(os.path.join(ckpt, "config.json")):
        with open(os.path.join(ckpt, "config.json")) as f:
            cfg = json.load(f)
    pre = None
    if os.path.exists(os.path.join(ckpt, "preprocessor_config.json")):
        with open(os.path.join(ckpt, "preprocessor_config.json")) as f:
            pre = json.load(f)
    w = read_checkpoint(ckpt)
    clips = np.fromfile(clips_path, dtype=np.uint8)
    if clips.size != n * FRAMES * SIZE * SIZE * 3:
        sys.stderr.write("videomae_ref.py: %s: %d bytes, expected %d clips of %d\n"
                         % (clips_path, clips.size, n, FRAMES * SIZE * SIZE * 3))
        return 2
    clips = clips.reshape(n, FRAMES, SIZE, SIZE, 3)
    torch.set_num_threads(1)
    with torch.no_grad():
        logits = forward(w, cfg, clips, pre)
    logits.numpy().astype("<f8").tofile(out)
    scores = torch.softmax(logits, dim=-1)
    for i in range(n):
        # top-5: higher logit first, ties by the lower class id
        order = sorted(range(logits.shape[1]), key=lambda c: (-float(logits[i, c]), c))[:5]
        print("clip %d: %s" % (i, " ".join("%d:%.6f" % (c, float(scores[i, c])) for c in order)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
