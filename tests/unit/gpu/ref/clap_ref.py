#!/usr/bin/env python3
"""Independent float64 reference of CLAP's audio tower, for tests/unit/gpu/clap_test.c.

Written from the published definitions, not from mediabatch's C code:
  - the features as Hugging Face's ClapFeatureExtractor prepares them for the unfused
    checkpoints (preprocessor_config.json of laion/clap-htsat-unfused: 48 kHz, feature_size
    64, fft_window_size 1024, hop_length 480, frequency_min 50, frequency_max 14000,
    top_db null, padding "repeatpad", truncation "rand_trunc"), for clips of at most 10 s:
    np.tile to floor(480000 / n) copies, zero-padded to 480000 samples; audio_utils'
    spectrogram(): reflect-padded centred frames, periodic Hann (np.hanning(1025)[:-1]),
    np.fft.rfft, power 2, the mel_filter_bank(norm="slaney", mel_scale="slaney") written out
    below in numpy, max(mel, 1e-10), 10 log10 (reference 1.0);
  - modeling_clap.py's ClapAudioEncoder: batch_norm (BatchNorm2d over the mel bins, eval),
    reshape_mel2img (bicubic F.interpolate with align_corners=True to spec_size * freq_ratio
    frames, then the reshape/permute into a spec_size x spec_size image), ClapAudioPatchEmbed
    (F.conv2d, LayerNorm), ClapAudioStage of ClapAudioLayers (window_partition after
    torch.roll by -shift, the relative position bias gathered through
    relative_position_index built with torch.meshgrid as Swin does, the -100 attention mask
    of the shifted windows, softmax, the output dense, roll back; layernorm_after,
    intermediate, GELU, output), ClapAudioPatchMerging, the final norm and the average
    pool; ClapProjectionLayer (linear1, ReLU, linear2) and F.normalize, as
    ClapModel.get_audio_features().
Everything in float64.

Usage:
  clap_ref.py CHECKPOINT FORMAT INPUT OUTPUT [FORMAT INPUT OUTPUT ...]

CHECKPOINT: a directory (model.safetensors or model.safetensors.index.json, and config.json
if any), or a .safetensors file. FORMAT: s16le or f32le; INPUT: raw mono 48 kHz samples in
that format. OUTPUT: written as raw little-endian float64, the [projection_dim] embedding.

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
    sys.stderr.write("clap_ref.py: the reference needs PyTorch and numpy (%s): install "
                     "python3-torch and python3-numpy\n" % e)
    sys.exit(3)

SAMPLING_RATE = 48000
N_FFT = 1024
HOP = 480
F_MIN, F_MAX = 50.0, 14000.0
MAX_LENGTH = 10 * SAMPLING_RATE  # nb_max_samples
ENC = "audio_model.audio_encoder."


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
        else:  # I64 buffers (num_batches_tracked, relative_position_index): not used
            continue
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


# ---- ClapFeatureExtractor (unfused: rand_trunc + repeatpad), numpy float64 ----

def hertz_to_mel(freq):
    """Slaney's scale, as audio_utils.hertz_to_mel(mel_scale="slaney")."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    logstep = 27.0 / np.log(6.4)
    return np.where(freq >= 1000.0, 15.0 + np.log(np.maximum(freq, 1e-300) / 1000.0) * logstep,
                    mels)


def mel_to_hertz(mels):
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= 15.0, 1000.0 * np.exp(logstep * (mels - 15.0)), freq)


def mel_filter_bank(num_frequency_bins, num_mel_filters):
    """[bins x mels]: triangular filters, Slaney area normalisation."""
    mel_freqs = np.linspace(hertz_to_mel(F_MIN), hertz_to_mel(F_MAX), num_mel_filters + 2)
    filter_freqs = mel_to_hertz(mel_freqs)
    fft_freqs = np.linspace(0, SAMPLING_RATE // 2, num_frequency_bins)
    filter_diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / filter_diff[:-1]
    up = slopes[:, 2:] / filter_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    enorm = 2.0 / (filter_freqs[2:num_mel_filters + 2] - filter_freqs[:num_mel_filters])
    return fb * enorm[None, :]


def features(waveform, n_mels):
    """[frames x n_mels] log-mel (dB) of one clip of at most 10 s."""
    if waveform.shape[0] > MAX_LENGTH:
        raise SystemExit("clap_ref.py: more than 10 s of audio")
    if waveform.shape[0] < MAX_LENGTH:  # padding "repeatpad"
        n_repeat = int(MAX_LENGTH / len(waveform))
        waveform = np.tile(waveform, n_repeat)
        waveform = np.pad(waveform, (0, MAX_LENGTH - waveform.shape[0]), mode="constant",
                          constant_values=0)
    padded = np.pad(waveform, (N_FFT // 2, N_FFT // 2), mode="reflect")
    window = np.hanning(N_FFT + 1)[:-1]
    num_frames = 1 + (padded.size - N_FFT) // HOP
    frames = np.stack([padded[i * HOP:i * HOP + N_FFT] for i in range(num_frames)])
    power = np.abs(np.fft.rfft(frames * window[None, :], axis=1)) ** 2  # [frames x bins]
    fb = mel_filter_bank(N_FFT // 2 + 1, n_mels)
    mel = np.maximum(1e-10, power @ fb)
    return 10.0 * np.log10(np.maximum(mel, 1e-10)) - 10.0 * np.log10(1.0)


# ---- modeling_clap.py's ClapAudioEncoder + projection, torch float64 ----

def window_partition(x, ws):
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def window_reverse(windows, ws, h, w):
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def relative_position_index(ws):
    coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij"))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


class AudioTower:
    def __init__(self, t, config):
        self.t = t
        if "audio_config" in config or config.get("model_type") == "clap":
            audio = config.get("audio_config") or {}  # a ClapModel's config.json
        else:
            audio = config  # a ClapAudioModelWithProjection's (a ClapAudioConfig)
        top = config  # ClapConfig's projection_dim overrides audio_config's
        self.spec_size = int(audio.get("spec_size", 256))
        stride = audio.get("patch_stride", [4, 4])
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.eps = float(audio.get("layer_norm_eps", 1e-5))
        self.window_size = int(audio.get("window_size", 8))
        self.mlp_ratio = float(audio.get("mlp_ratio", 4.0))
        if audio.get("enable_fusion", False):
            raise SystemExit("clap_ref.py: the fused model is not what this reference runs")
        self.depths = list(audio.get("depths", [2, 2, 6, 2]))
        self.heads = list(audio.get("num_attention_heads", [4, 8, 16, 32]))
        self.embed = int(audio.get("patch_embeds_hidden_size", 96))
        self.n_mels = int(audio.get("num_mel_bins", 64))
        self.projection_dim = int(top.get("projection_dim", 512))
        self.freq_ratio = self.spec_size // self.n_mels
        self.num_layers = len(self.depths)
        self.num_features = self.embed * 2 ** (self.num_layers - 1)
        patch = t[ENC + "patch_embed.proj.weight"].shape[2]
        self.padding = ((patch - self.stride[0]) // 2, (patch - self.stride[1]) // 2)
        grid = (self.spec_size // self.stride[0], self.spec_size // self.stride[1])
        self.resolutions = [(grid[0] // 2 ** i, grid[1] // 2 ** i)
                            for i in range(self.num_layers)]
        self.rpi = relative_position_index(self.window_size)

    def layer(self, x, dims, s, b):
        """ClapAudioLayer: shift_size 0 for even blocks, window_size // 2 for odd ones."""
        t = self.t
        p = ENC + "layers.%d.blocks.%d." % (s, b)
        ws = self.window_size
        shift = 0 if b % 2 == 0 else ws // 2
        if min(dims) <= ws:  # set_shift_and_window_size
            shift = 0
            ws = min(dims)
        h, w = dims
        bsz, _, c = x.shape
        shortcut = x
        x = F.layer_norm(x, (c,), t[p + "layernorm_before.weight"],
                         t[p + "layernorm_before.bias"], self.eps).view(bsz, h, w, c)
        if h % ws or w % ws:
            raise SystemExit("clap_ref.py: padded windows are not in this reference")
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(x, ws).view(-1, ws * ws, c)
        mask = None
        if shift > 0:
            img = torch.zeros((1, h, w, 1), dtype=torch.float64)
            slices = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
            count = 0
            for hs in slices:
                for wsl in slices:
                    img[:, hs, wsl, :] = count
                    count += 1
            mw = window_partition(img, ws).view(-1, ws * ws)
            mask = mw.unsqueeze(1) - mw.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

        # ClapAudioSelfAttention
        nh = self.heads[s]
        dh = c // nh
        nb, n, _ = windows.shape

        def heads(y):
            return y.view(nb, n, nh, dh).permute(0, 2, 1, 3)

        q = heads(F.linear(windows, t[p + "attention.self.query.weight"],
                           t[p + "attention.self.query.bias"]))
        k = heads(F.linear(windows, t[p + "attention.self.key.weight"],
                           t[p + "attention.self.key.bias"]))
        v = heads(F.linear(windows, t[p + "attention.self.value.weight"],
                           t[p + "attention.self.value.bias"]))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (dh ** 0.5)
        table = t[p + "attention.self.relative_position_bias_table"]
        bias = table[self.rpi.view(-1)].view(self.window_size ** 2, self.window_size ** 2, -1)
        scores = scores + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            scores = scores.view(nb // nw, nw, nh, n, n) + mask.unsqueeze(1).unsqueeze(0)
            scores = scores.view(-1, nh, n, n)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(nb, n, c)
        out = F.linear(ctx, t[p + "attention.output.dense.weight"],
                       t[p + "attention.output.dense.bias"])

        out = window_reverse(out.view(-1, ws, ws, c), ws, h, w)
        if shift > 0:
            out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
        x = shortcut + out.view(bsz, h * w, c)
        y = F.layer_norm(x, (c,), t[p + "layernorm_after.weight"],
                         t[p + "layernorm_after.bias"], self.eps)
        y = F.gelu(F.linear(y, t[p + "intermediate.dense.weight"],
                            t[p + "intermediate.dense.bias"]))
        return x + F.linear(y, t[p + "output.dense.weight"], t[p + "output.dense.bias"])

    def merge(self, x, dims, s):
        """ClapAudioPatchMerging."""
        t = self.t
        p = ENC + "layers.%d.downsample." % s
        h, w = dims
        bsz, _, c = x.shape
        x = x.view(bsz, h, w, c)
        x = torch.cat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :], x[:, 0::2, 1::2, :],
                       x[:, 1::2, 1::2, :]], -1).view(bsz, -1, 4 * c)
        x = F.layer_norm(x, (4 * c,), t[p + "norm.weight"], t[p + "norm.bias"], 1e-5)
        return F.linear(x, t[p + "reduction.weight"])

    def mel2img(self, x):
        _, _, time_length, freq_length = x.shape
        spec_width = int(self.spec_size * self.freq_ratio)
        spec_height = self.spec_size // self.freq_ratio
        if time_length > spec_width or freq_length > spec_height:
            raise SystemExit("clap_ref.py: the wav size should be <= the swin input size")
        if time_length < spec_width:
            x = F.interpolate(x, (spec_width, freq_length), mode="bicubic", align_corners=True)
        if freq_length < spec_height:
            x = F.interpolate(x, (time_length, spec_height), mode="bicubic",
                              align_corners=True)
        b, ch, time, freq = x.shape
        x = x.reshape(b, ch * self.freq_ratio, time // self.freq_ratio, freq)
        x = x.permute(0, 1, 3, 2).contiguous()
        return x.reshape(b, ch, freq * self.freq_ratio, time // self.freq_ratio)

    def __call__(self, feats):
        t = self.t
        x = torch.from_numpy(feats)[None, None]  # [1, 1, frames, mels]
        x = x.transpose(1, 3)
        x = F.batch_norm(x, t[ENC + "batch_norm.running_mean"],
                         t[ENC + "batch_norm.running_var"], t[ENC + "batch_norm.weight"],
                         t[ENC + "batch_norm.bias"], training=False, eps=1e-5)
        x = x.transpose(1, 3)
        x = self.mel2img(x)
        frames_num = x.shape[2]
        x = F.conv2d(x, t[ENC + "patch_embed.proj.weight"], t[ENC + "patch_embed.proj.bias"],
                     stride=self.stride, padding=self.padding)
        x = x.flatten(2).transpose(1, 2)
        x = F.layer_norm(x, (self.embed,), t[ENC + "patch_embed.norm.weight"],
                         t[ENC + "patch_embed.norm.bias"], 1e-5)
        for s in range(self.num_layers):
            dims = self.resolutions[s]
            for b in range(self.depths[s]):
                x = self.layer(x, dims, s, b)
            if s < self.num_layers - 1:
                x = self.merge(x, dims, s)
        x = F.layer_norm(x, (self.num_features,), t[ENC + "norm.weight"], t[ENC + "norm.bias"],
                         1e-5)
        bsz, _, nc = x.shape
        fs = frames_num // (2 ** (self.num_layers - 1)) // self.stride[0]
        ts = frames_num // (2 ** (self.num_layers - 1)) // self.stride[1]
        x = x.permute(0, 2, 1).contiguous().reshape(bsz, nc, fs, ts)
        c_freq_bin = fs // self.freq_ratio
        x = x.reshape(bsz, nc, fs // c_freq_bin, c_freq_bin, ts)
        x = x.permute(0, 1, 3, 2, 4).contiguous().reshape(bsz, nc, c_freq_bin, -1)
        pooled = F.adaptive_avg_pool1d(torch.flatten(x, 2), 1).flatten(1)
        y = F.linear(pooled, t["audio_projection.linear1.weight"],
                     t["audio_projection.linear1.bias"])
        y = F.linear(F.relu(y), t["audio_projection.linear2.weight"],
                     t["audio_projection.linear2.bias"])
        return F.normalize(y, dim=-1)[0]


def read_audio(fmt, path):
    with open(path, "rb") as f:
        raw = f.read()
    if fmt == "s16le":
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if fmt == "f32le":
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    sys.stderr.write("clap_ref.py: format %r: expected s16le or f32le\n" % fmt)
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
    tower = AudioTower(tensors, config)
    sys.stderr.write("clap_ref.py: embed %d, depths %s, heads %s, window %d, mels %d, "
                     "projection %d\n" % (tower.embed, tower.depths, tower.heads,
                                          tower.window_size, tower.n_mels,
                                          tower.projection_dim))
    with torch.no_grad():
        for i in range(2, len(argv), 3):
            fmt, inp, outp = argv[i], argv[i + 1], argv[i + 2]
            audio = read_audio(fmt, inp)
            if audio.size == 0:
                sys.stderr.write("clap_ref.py: %s: no samples\n" % inp)
                return 2
            out = tower(features(audio, tower.n_mels))
            out.numpy().astype("<f8").tofile(outp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
