"""Media to request payloads: audio (numpy arrays, WAV files), video frames, tensors.

Each ``*_payload`` function returns ``(header fields, payload bytes)``: the fields are
keyword arguments of :class:`~mediabatch.protocol.RequestHeader` (media and shape), the
bytes the payload in the wire's byte order (little-endian), copied so that the caller may
reuse its array at once.
"""

from __future__ import annotations

import os
import wave
from typing import IO, Any, Dict, Tuple, Union

import numpy as np

from .protocol import Media

__all__ = ["audio_payload", "video_payload", "tensor_payload", "read_wav", "write_wav"]

_U16 = 0xFFFF

Fields = Dict[str, int]


def audio_payload(audio: Any, rate: int) -> Tuple[Fields, bytes]:
    """Mono audio: int16 samples as PCM_S16LE, floating-point samples as PCM_F32LE
    (float64 is converted to float32; the built-in models take samples in [-1, 1]).
    ``audio`` is 1-D, or 2-D with one channel."""
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(
            f"audio: shape {a.shape}; mono audio is 1-D (mix the channels down first, "
            "e.g. audio.mean(axis=1))"
        )
    if a.size == 0:
        raise ValueError("audio: no samples")
    if a.dtype == np.int16:
        media, a = Media.PCM_S16LE, a.astype("<i2", copy=False)
    elif a.dtype.kind == "f":
        media, a = Media.PCM_F32LE, a.astype("<f4", copy=False)
    else:
        raise TypeError(
            f"audio: dtype {a.dtype}; send int16 (PCM_S16LE) or float32 (PCM_F32LE) samples"
        )
    rate = int(rate) if rate is not None else 0
    if rate <= 0:
        raise ValueError("audio: give its sample rate (rate=16000 for the built-in models)")
    return {"media": media, "channels": 1, "sample_rate": rate}, a.tobytes()


def video_payload(video: Any) -> Tuple[Fields, bytes]:
    """RGB24 video: uint8 frames x height x width x 3 (one frame: height x width x 3)."""
    v = np.asarray(video)
    if v.ndim == 3:
        v = v[np.newaxis]
    if v.ndim != 4 or v.shape[3] != 3:
        raise ValueError(f"video: shape {v.shape}; RGB24 video is frames x height x width x 3")
    if v.dtype != np.uint8:
        raise TypeError(f"video: dtype {v.dtype}; RGB24 frames are uint8")
    frames, height, width, _ = v.shape
    for name, n in (("frames", frames), ("height", height), ("width", width)):
        if not 1 <= n <= _U16:
            raise ValueError(f"video: {name} {n} does not fit the protocol (1..65535)")
    return {
        "media": Media.RGB24,
        "channels": 3,
        "frames": frames,
        "height": height,
        "width": width,
    }, np.ascontiguousarray(v).tobytes()


def tensor_payload(tensor: Any) -> Tuple[Fields, bytes]:
    """An F32 tensor: 2-D rows x cols (converted to float32; 1-D is one row)."""
    t = np.asarray(tensor)
    if t.ndim == 1:
        t = t[np.newaxis]
    if t.ndim != 2:
        raise ValueError(f"tensor: shape {t.shape}; an F32 tensor is 2-D (rows x cols)")
    if t.dtype.kind not in "fiu":
        raise TypeError(f"tensor: dtype {t.dtype} is not numeric")
    rows, cols = t.shape
    for name, n in (("rows", rows), ("cols", cols)):
        if not 1 <= n <= _U16:
            raise ValueError(f"tensor: {name} {n} does not fit the protocol (1..65535)")
    # the protocol puts rows in `frames` and cols in `height`
    return {"media": Media.F32, "frames": rows, "height": cols}, t.astype(
        "<f4", copy=False
    ).tobytes()


def read_wav(
    source: Union[str, "os.PathLike[str]", IO[bytes]], *, mix: bool = False
) -> Tuple[np.ndarray, int]:
    """Read a PCM WAV file with the standard library's :mod:`wave`: returns
    ``(samples, rate)``. 16-bit files give int16 samples (sent as they are); 8-, 24- and
    32-bit files give float32 in [-1, 1]. A file of several channels is refused unless
    ``mix=True``, which averages them (to float32). The rate is the file's: the client
    does not resample (the built-in audio models take 16000 Hz, clap 48000 Hz)."""
    with wave.open(source if not isinstance(source, os.PathLike) else os.fspath(source), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    name = getattr(source, "name", source)
    if channels != 1 and not mix:
        raise ValueError(
            f"{name}: {channels} channels; mediabatch takes mono audio "
            "(read_wav(path, mix=True) averages them, or: sox in.wav -c 1 out.wav)"
        )
    if width == 2:
        samples = np.frombuffer(raw, "<i2").copy()
    elif width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        samples = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise ValueError(f"{name}: {8 * width}-bit samples are not supported")
    if channels != 1:
        samples = samples.reshape(-1, channels).astype(np.float32).mean(axis=1)
        if width == 2:
            samples = samples / 32768.0
        samples = samples.astype(np.float32)
    return samples, rate


def write_wav(path: Union[str, "os.PathLike[str]", IO[bytes]], samples: Any, rate: int) -> None:
    """Write mono int16 samples (floats in [-1, 1] are scaled) as a 16-bit PCM WAV file."""
    a = np.asarray(samples)
    if a.dtype.kind == "f":
        a = np.clip(np.round(a * 32767.0), -32768, 32767)
    a = a.astype("<i2")
    with wave.open(path if not isinstance(path, os.PathLike) else os.fspath(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(a.tobytes())
