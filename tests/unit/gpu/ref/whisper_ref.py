#!/usr/bin/env python3
"""Independent float64 reference of the Whisper audio encoder, for tests/unit/gpu/whisper_test.c.

Written from the published definitions, not from mediabatch's C code:
  - the features as WhisperFeatureExtractor prepares them: the audio zero-padded to 30 s
    (480000 samples), then openai-whisper's log_mel_spectrogram: torch.stft (n_fft 400,
    hop 160, periodic Hann, centred with reflect padding), the last frame dropped,
    magnitudes squared, librosa's Slaney mel filterbank (written out below in numpy),
    log10 clamped at 1e-10, floored at max - 8, then (x + 4) / 4;
  - Hugging Face's WhisperEncoder: conv1 + GELU, conv2 (stride 2) + GELU, + embed_positions,
    pre-LN WhisperEncoderLayers (self-attention with q scaled by head_dim ** -0.5 and k
    without bias; fc1, GELU, fc2), the final layer_norm; LayerNorm eps 1e-5, exact GELU.
Everything in float64.

Usage:
  whisper_ref.py CHECKPOINT FORMAT INPUT OUTPUT [FORMAT INPUT OUTPUT ...]

CHECKPOINT: a directory (model.safetensors or model.safetensors.index.json, and config.json
if any), or a .safetensors file. FORMAT: s16le or f32le; INPUT: raw mono 16 kHz samples in
that format. OUTPUT: written as raw little-endian float64, [1500 x d] row-major.

Exit status 0, or 2 for bad arguments or input, 3 when PyTorch or numpy is missing.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the C test fails with this message (CI installs python3-torch)
    sys.stderr.write("whisper_ref.py: the reference needs PyTorch and numpy (%s): install "
                     "python3-torch and python3-numpy\n" % e)
    sys.exit(3)

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_SAMPLES = 30 * SAMPLE_RATE  # WhisperFeatureExtractor's n_samples (max_length)
POSITIONS = 1500
EPS = 1e-5


# ---- safetensors, read by hand (no safetensors package) ----

def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = blob[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dtype == "F64":
            a = np.frombuffer(raw, dtype="<f8")
        elif dtype == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit("whisper_ref.py: %s: tensor %s: dtype %s not handled"
                             % (path, name, dtype))
        out[name] = torch.from_numpy(a.astype(np.float64).reshape(info["shape"]))
    return out


def read_checkpoint(path):
    if os.path.isfile(path):
        return read_safetensors(path), os.path.dirname(path)
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return read_safetensors(single), path
    with open(os.path.join(path, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(read_safetensors(os.path.join(path, shard)))
    return tensors, path


# ---- features: librosa's Slaney mel filterbank, openai-whisper's log-mel ----

def hz_to_mel(freqs):
    freqs = np.asanyarray(freqs, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freqs / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    if freqs.ndim:
        log_t = freqs >= min_log_hz
        mels[log_t] = min_log_mel + np.log(freqs[log_t] / min_log_hz) / logstep
    elif freqs >= min_log_hz:
        mels = min_log_mel + np.log(freqs / min_log_hz) / logstep
    return mels


def mel_to_hz(mels):
    mels = np.asanyarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


def mel_filters(n_mels, sr=SAMPLE_RATE, n_fft=N_FFT):
    """librosa.filters.mel(sr, n_fft, n_mels): fmin 0, fmax sr / 2, Slaney scale and norm."""
    fftfreqs = np.linspace(0, sr / 2.0, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def log_mel(audio, n_mels):
    """[n_mels x 3000] of float64 samples padded to 30 s."""
    if audio.shape[0] > N_SAMPLES:
        raise SystemExit("whisper_ref.py: more than 30 s of audio")
    padded = torch.zeros(N_SAMPLES, dtype=torch.float64)
    padded[:audio.shape[0]] = audio
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    stft = torch.stft(padded, N_FFT, HOP, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(mel_filters(n_mels))
    mel_spec = filters @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


# ---- the encoder, as modeling_whisper.py's WhisperEncoder ----

class Encoder:
    def __init__(self, tensors, config):
        prefix = None
        for p in ("model.encoder.", "encoder."):
            if p + "conv1.weight" in tensors:
                prefix = p
                break
        if prefix is None:
            raise SystemExit("whisper_ref.py: no conv1.weight in the checkpoint")
        self.t = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        self.d, self.n_mels, _ = self.t["conv1.weight"].shape
        self.layers = 0
        while "layers.%d.fc1.weight" % self.layers in self.t:
            self.layers += 1
        self.heads = int(config.get("encoder_attention_heads", self.d // 64))

    def attention(self, x, i):
        t = self.t
        p = "layers.%d.self_attn." % i
        bsz, tgt, d = x.shape
        head_dim = d // self.heads
        scaling = head_dim ** -0.5
        q = F.linear(x, t[p + "q_proj.weight"], t[p + "q_proj.bias"]) * scaling
        k = F.linear(x, t[p + "k_proj.weight"])  # no bias
        v = F.linear(x, t[p + "v_proj.weight"], t[p + "v_proj.bias"])

        def split(y):
            return y.view(bsz, tgt, self.heads, head_dim).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        weights = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(bsz, tgt, d)
        return F.linear(out, t[p + "out_proj.weight"], t[p + "out_proj.bias"])

    def layer(self, x, i):
        t = self.t
        p = "layers.%d." % i
        d = self.d
        residual = x
        h = F.layer_norm(x, (d,), t[p + "self_attn_layer_norm.weight"],
                         t[p + "self_attn_layer_norm.bias"], EPS)
        x = residual + self.attention(h, i)
        residual = x
        h = F.layer_norm(x, (d,), t[p + "final_layer_norm.weight"],
                         t[p + "final_layer_norm.bias"], EPS)
        h = F.gelu(F.linear(h, t[p + "fc1.weight"], t[p + "fc1.bias"]))
        h = F.linear(h, t[p + "fc2.weight"], t[p + "fc2.bias"])
        return residual + h

    def __call__(self, features):
        t = self.t
        x = F.gelu(F.conv1d(features[None], t["conv1.weight"], t["conv1.bias"], padding=1))
        x = F.gelu(F.conv1d(x, t["conv2.weight"], t["conv2.bias"], stride=2, padding=1))
        x = x.permute(0, 2, 1)
        if x.shape[1] != POSITIONS or t["embed_positions.weight"].shape[0] != POSITIONS:
            raise SystemExit("whisper_ref.py: expected 1500 positions")
        x = x + t["embed_positions.weight"]
        for i in range(self.layers):
            x = self.layer(x, i)
        x = F.layer_norm(x, (self.d,), t["layer_norm.weight"], t["layer_norm.bias"], EPS)
        return x[0]


def read_audio(fmt, path):
    with open(path, "rb") as f:
        raw = f.read()
    if fmt == "s16le":  # as openai-whisper's load_audio scales 16-bit samples
        return torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0)
    if fmt == "f32le":
        return torch.from_numpy(np.frombuffer(raw, dtype="<f4").astype(np.float64))
    sys.stderr.write("whisper_ref.py: format %r: expected s16le or f32le\n" % fmt)
    sys.exit(2)


def main(argv):
    if len(argv) < 5 or (len(argv) - 2) % 3 != 0:
        sys.stderr.write(__doc__)
        return 2
    tensors, directory = read_checkpoint(argv[1])
    config = {}
    config_path = os.path.join(directory, "config.json")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            config = json.load(f)
    enc = Encoder(tensors, config)
    sys.stderr.write("whisper_ref.py: d %d, %d layers, %d heads, %d mels\n"
                     % (enc.d, enc.layers, enc.heads, enc.n_mels))
    with torch.no_grad():
        for i in range(2, len(argv), 3):
            fmt, inp, outp = argv[i], argv[i + 1], argv[i + 2]
            audio = read_audio(fmt, inp)
            out = enc(log_mel(audio, enc.n_mels))
            out.numpy().astype("<f8").tofile(outp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
