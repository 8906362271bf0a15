"""What the synchronous and the asyncio client share: request building and request ids."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Optional, Tuple

from .media import audio_payload, read_wav, tensor_payload, video_payload
from .protocol import FLAG_PRIORITY, RequestHeader

DEFAULT_ENDPOINT = "tcp://127.0.0.1:7400"
DEFAULT_PUBLISH = "tcp://127.0.0.1:7401"

#: "Use the client's default" for keyword arguments where None means something.
DEFAULT: Any = object()


def media_fields(
    *,
    audio: Any = None,
    rate: Optional[int] = None,
    wav: Any = None,
    video: Any = None,
    tensor: Any = None,
) -> Tuple[dict, bytes]:
    """Header fields and payload of exactly one of audio (with rate), wav, video, tensor."""
    given = [n for n, v in (("audio", audio), ("wav", wav), ("video", video), ("tensor", tensor))
             if v is not None]
    if len(given) != 1:
        raise TypeError(
            "give exactly one of audio= (with rate=), wav=, video=, tensor=; got "
            + (", ".join(given) if given else "none")
        )
    if audio is not None:
        if rate is None:
            raise TypeError("audio= needs rate= (samples per second, e.g. 16000)")
        return audio_payload(audio, rate)
    if wav is not None:
        samples, file_rate = read_wav(wav)
        if rate is not None and rate != file_rate:
            raise ValueError(
                f"wav: the file is {file_rate} Hz, not {rate} Hz; the client does not "
                "resample (sox in.wav -r 16000 out.wav)"
            )
        return audio_payload(samples, file_rate)
    if video is not None:
        if rate is not None:
            raise TypeError("rate= is for audio")
        return video_payload(video)
    if rate is not None:
        raise TypeError("rate= is for audio")
    return tensor_payload(tensor)


def build_header(
    model: str,
    fields: dict,
    payload_len: int,
    *,
    request_id: int,
    tenant: int,
    timeout_ms: int,
    priority: bool,
) -> bytes:
    """The encoded, checked request header (raises HeaderError, a ValueError)."""
    hdr = RequestHeader(
        request_id=request_id,
        tenant_id=tenant,
        model=model,
        payload_len=payload_len,
        timeout_ms=timeout_ms,
        flags=FLAG_PRIORITY if priority else 0,
        **fields,
    )
    hdr.check()
    return hdr.encode()


class IdAllocator:
    """Request ids: a counter, unique per (client, tenant) while in flight as the protocol
    asks. A client with a fixed routing id (client_id) starts from the clock in
    microseconds, so that a restarted process does not reuse the ids its predecessor may
    still have in flight under the same routing id; others start at 1."""

    def __init__(self, fixed_identity: bool) -> None:
        start = time.time_ns() // 1000 if fixed_identity else 1
        self._count = itertools.count(start)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._count) & 0xFFFFFFFFFFFFFFFF


def routing_id(client_id: Any) -> Optional[bytes]:
    """A client id as the ZeroMQ routing id (1..255 bytes; not starting with a 0 byte,
    which ZeroMQ reserves)."""
    if client_id is None:
        return None
    rid = client_id.encode() if isinstance(client_id, str) else bytes(client_id)
    if not 1 <= len(rid) <= 255 or rid[0] == 0:
        raise ValueError("client_id: 1..255 bytes, not starting with a 0 byte")
    return rid
