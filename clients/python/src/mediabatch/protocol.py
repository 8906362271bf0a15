"""The mediabatch wire protocol, version 1 (docs/protocol.md): constants and the codec.

Headers are 64 bytes, little-endian. :class:`RequestHeader` and :class:`ResponseHeader`
are their decoded form; ``encode()`` writes the wire bytes and ``decode()`` reads them.
The layout is the one of ``net/proto.c`` (the C codec the service uses), field for field::

    request  <4s H H Q I I 16s H H I H H H H I I>   magic "MBQ1"
    response <4s H H Q I I I H H 16s H H H H I I>   magic "MBR1"

Nothing here touches a socket: the codec can be used on its own (a UDP sender, a proxy,
a capture reader).
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Optional

__all__ = [
    "VERSION",
    "HEADER_LEN",
    "MODEL_LEN",
    "REQUEST_MAGIC",
    "RESPONSE_MAGIC",
    "FLAG_CANCEL",
    "FLAG_PRIORITY",
    "RESPONSE_FLAG_DUPLICATE",
    "DEVICE_NONE",
    "Status",
    "Media",
    "ResultType",
    "RequestHeader",
    "ResponseHeader",
    "HeaderError",
    "status_name",
]

VERSION = 1
HEADER_LEN = 64
MODEL_LEN = 16
REQUEST_MAGIC = b"MBQ1"
RESPONSE_MAGIC = b"MBR1"

#: Request flags (request offset 6).
FLAG_CANCEL = 0x0001
FLAG_PRIORITY = 0x0002
_FLAGS_KNOWN = FLAG_CANCEL | FLAG_PRIORITY

#: Response flag (response offset 54, this implementation's extension): a BAD_REQUEST that
#: refuses a send whose request_id was already in flight for the same client and tenant.
RESPONSE_FLAG_DUPLICATE = 0x0001

#: Response ``device`` of a request that never ran.
DEVICE_NONE = 0xFFFF

_REQUEST = struct.Struct("<4sHHQII16sHHIHHHHII")
_RESPONSE = struct.Struct("<4sHHQIIIHH16sHHHHII")
assert _REQUEST.size == HEADER_LEN and _RESPONSE.size == HEADER_LEN

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


class Status(enum.IntEnum):
    """Response status (response offset 6)."""

    OK = 0
    BAD_REQUEST = 1
    UNKNOWN_MODEL = 2
    OVERLOADED = 3
    TIMEOUT = 4
    CANCELLED = 5
    MODEL_ERROR = 6
    UNAVAILABLE = 7
    TOO_LARGE = 8
    UNAUTHORIZED = 9


def status_name(status: int) -> str:
    """The name of a status ("OK", "BAD_REQUEST", ...), or "UNKNOWN_STATUS" for any other
    value, as the C library's mb_status_name() (show the number beside it)."""
    try:
        return Status(status).name
    except ValueError:
        return "UNKNOWN_STATUS"


class Media(enum.IntEnum):
    """Media types (request offset 40)."""

    PCM_S16LE = 1  #: mono audio, 16-bit signed samples
    PCM_F32LE = 2  #: mono audio, 32-bit float samples
    RGB24 = 3  #: video frames, 3 bytes per pixel
    F32 = 4  #: a rows x cols tensor of 32-bit floats


class ResultType(enum.IntEnum):
    """Result types (response offset 48)."""

    NONE = 0
    F32 = 1  #: rows x cols float32
    TOPK = 2  #: rows pairs of (u32 class, f32 score)
    TEXT = 3  #: UTF-8 text: the reason of every status but OK


class HeaderError(ValueError):
    """A header that breaks a rule of docs/protocol.md (the message names the field)."""


def _check_range(name: str, value: int, limit: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise HeaderError(f"{name}: {value!r} is not an integer")
    if value < 0 or value > limit:
        raise HeaderError(f"{name}: {value} does not fit its field (0..{limit})")


def _encode_model(model: str) -> bytes:
    raw = model.encode("ascii") if isinstance(model, str) else bytes(model)
    if len(raw) > MODEL_LEN:
        raise HeaderError(f"model: {model!r} is {len(raw)} bytes; names are 1..{MODEL_LEN}")
    return raw.ljust(MODEL_LEN, b"\0")


def _decode_model(field: bytes) -> str:
    """The model field as text, as the C codec copies it: up to the first NUL, with
    non-printable bytes shown as '?'."""
    end = field.find(b"\0")
    if end < 0:
        end = len(field)
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in field[:end])


def _media_name(media: int) -> str:
    try:
        return Media(media).name
    except ValueError:
        return str(media)


@dataclasses.dataclass
class RequestHeader:
    """A request header (docs/protocol.md, "Request header"), decoded.

    For RGB24 ``frames``/``height``/``width`` are the video's shape; for an F32 tensor
    ``frames`` holds the rows and ``height`` the columns (the protocol reuses the fields).
    """

    request_id: int = 0
    tenant_id: int = 0
    model: str = ""
    media: int = 0
    channels: int = 0
    sample_rate: int = 0
    frames: int = 0
    height: int = 0
    width: int = 0
    payload_len: int = 0
    timeout_ms: int = 0
    flags: int = 0
    version: int = VERSION
    reserved: int = 0
    frag_offset: int = 0

    def encode(self) -> bytes:
        """The 64 wire bytes. Raises :class:`HeaderError` for a value that does not fit its
        field or a model name that is not 1..16 ASCII bytes (the C encoder would truncate
        it silently). Use :meth:`check` for the protocol's other rules."""
        for name, limit in (
            ("version", _U16),
            ("flags", _U16),
            ("request_id", _U64),
            ("tenant_id", _U32),
            ("timeout_ms", _U32),
            ("media", _U16),
            ("channels", _U16),
            ("sample_rate", _U32),
            ("frames", _U16),
            ("height", _U16),
            ("width", _U16),
            ("reserved", _U16),
            ("payload_len", _U32),
            ("frag_offset", _U32),
        ):
            _check_range(name, getattr(self, name), limit)
        try:
            model = _encode_model(self.model)
        except UnicodeEncodeError:
            raise HeaderError(f"model: {self.model!r} is not ASCII") from None
        return _REQUEST.pack(
            REQUEST_MAGIC,
            self.version,
            self.flags,
            self.request_id,
            self.tenant_id,
            self.timeout_ms,
            model,
            self.media,
            self.channels,
            self.sample_rate,
            self.frames,
            self.height,
            self.width,
            self.reserved,
            self.payload_len,
            self.frag_offset,
        )

    @classmethod
    def decode(cls, buf: bytes) -> "RequestHeader":
        """Read 64 wire bytes (no validation beyond length and magic: see :meth:`check`)."""
        buf = bytes(buf)
        if len(buf) != HEADER_LEN:
            raise HeaderError(f"header: {len(buf)} bytes, expected {HEADER_LEN}")
        f = _REQUEST.unpack(buf)
        if f[0] != REQUEST_MAGIC:
            raise HeaderError('magic: expected "MBQ1"')
        return cls(
            version=f[1],
            flags=f[2],
            request_id=f[3],
            tenant_id=f[4],
            timeout_ms=f[5],
            model=_decode_model(f[6]),
            media=f[7],
            channels=f[8],
            sample_rate=f[9],
            frames=f[10],
            height=f[11],
            width=f[12],
            reserved=f[13],
            payload_len=f[14],
            frag_offset=f[15],
        )

    @property
    def is_cancel(self) -> bool:
        return bool(self.flags & FLAG_CANCEL)

    def check(self, max_payload: Optional[int] = None, udp: bool = False) -> None:
        """Apply docs/protocol.md's rules (those of the service's decoder, net/proto.c),
        raising :class:`HeaderError` naming the first field that breaks one. The service's
        model-specific rules (which media and rates a model takes) are not checked here."""
        self.encode()  # ranges and the model name
        if self.version != VERSION:
            raise HeaderError(f"version: {self.version} is not supported (this client speaks 1)")
        if self.flags & ~_FLAGS_KNOWN:
            raise HeaderError(
                f"flags: unknown bits 0x{self.flags & ~_FLAGS_KNOWN:04x} "
                "(only CANCEL 0x1 and PRIORITY 0x2 exist)"
            )
        name = self.model
        for i, ch in enumerate(name):
            if ord(ch) <= 0x20 or ord(ch) >= 0x7F:
                raise HeaderError(
                    f"model: byte {i} is 0x{ord(ch):02x}; names are printable ASCII without spaces"
                )
        if not name and not self.is_cancel:
            raise HeaderError('model: empty; name the model to run (e.g. "logmel")')
        if self.reserved != 0:
            raise HeaderError(f"reserved (offset 54): must be 0, got {self.reserved}")
        if not udp and self.frag_offset != 0:
            raise HeaderError(f"frag_offset: must be 0 over ZeroMQ, got {self.frag_offset}")
        if self.is_cancel:
            if self.payload_len != 0:
                raise HeaderError(
                    f"payload_len: {self.payload_len}, but a cancel carries no payload (0)"
                )
            return
        if self.payload_len == 0:
            raise HeaderError("payload_len: 0 is only allowed on a cancel")
        if max_payload is not None and self.payload_len > max_payload:
            raise HeaderError(
                f"payload_len: {self.payload_len} bytes exceeds the maximum of {max_payload}"
            )
        if udp and self.frag_offset >= self.payload_len:
            raise HeaderError(
                f"frag_offset: {self.frag_offset} is not inside the {self.payload_len}-byte payload"
            )
        self._check_media()

    def _check_media(self) -> None:
        media = self.media
        if media not in (1, 2, 3, 4):
            raise HeaderError(
                f"media: {media} is not a known media type "
                "(1 PCM_S16LE, 2 PCM_F32LE, 3 RGB24, 4 F32)"
            )
        mname = _media_name(media)

        def zero(field: str) -> None:
            v = getattr(self, field)
            if v != 0:
                raise HeaderError(f"{field}: must be 0 for {mname}, got {v}")

        if media in (Media.PCM_S16LE, Media.PCM_F32LE):
            size = 2 if media == Media.PCM_S16LE else 4
            if self.channels != 1:
                raise HeaderError(f"channels: {self.channels}, but {mname} audio is mono (1)")
            if self.sample_rate == 0:
                raise HeaderError("sample_rate: 0; audio needs its rate (e.g. 16000)")
            for field in ("frames", "height", "width"):
                zero(field)
            if self.payload_len % size:
                raise HeaderError(
                    f"payload_len: {self.payload_len} is not a whole number of "
                    f"{size}-byte {mname} samples"
                )
        elif media == Media.RGB24:
            if self.channels != 3:
                raise HeaderError(f"channels: {self.channels}, but RGB24 has 3")
            zero("sample_rate")
            if not (self.frames and self.height and self.width):
                raise HeaderError(
                    f"frames/height/width: {self.frames}x{self.height}x{self.width}; "
                    "RGB24 needs all three at least 1"
                )
            expect = self.frames * self.height * self.width * 3
            if expect != self.payload_len:
                raise HeaderError(
                    f"payload_len: {self.payload_len} bytes, but RGB24 "
                    f"{self.frames}x{self.height}x{self.width} (frames x height x width x 3) "
                    f"is {expect}"
                )
        else:  # F32
            for field in ("channels", "sample_rate", "width"):
                zero(field)
            if not (self.frames and self.height):
                raise HeaderError(
                    f"frames/height: {self.frames}x{self.height}; an F32 tensor needs rows "
                    "(frames) and cols (height) at least 1"
                )
            expect = self.frames * self.height * 4
            if expect != self.payload_len:
                raise HeaderError(
                    f"payload_len: {self.payload_len} bytes, but F32 {self.frames}x{self.height} "
                    f"(rows x cols x 4) is {expect}"
                )

    @classmethod
    def cancel(cls, tenant_id: int, request_id: int) -> "RequestHeader":
        """The header of a cancel for (tenant, request id): no model, no media, no payload."""
        return cls(request_id=request_id, tenant_id=tenant_id, flags=FLAG_CANCEL)


@dataclasses.dataclass
class ResponseHeader:
    """A response header (docs/protocol.md, "Response header"), decoded."""

    status: int = Status.OK
    request_id: int = 0
    tenant_id: int = 0
    queue_us: int = 0
    compute_us: int = 0
    batch_size: int = 0
    device: int = DEVICE_NONE
    model: str = ""
    result_type: int = ResultType.NONE
    rows: int = 0
    cols: int = 0
    flags: int = 0
    result_len: int = 0
    version: int = VERSION
    reserved: int = 0

    @classmethod
    def decode(cls, buf: bytes) -> "ResponseHeader":
        """Read 64 wire bytes. Raises :class:`HeaderError` for a wrong length, magic or
        version. ``status`` is a :class:`Status` when it is a known one, else the int."""
        buf = bytes(buf)
        if len(buf) != HEADER_LEN:
            raise HeaderError(f"response header: {len(buf)} bytes, expected {HEADER_LEN}")
        f = _RESPONSE.unpack(buf)
        if f[0] != RESPONSE_MAGIC:
            raise HeaderError('response magic: expected "MBR1"')
        if f[1] != VERSION:
            raise HeaderError(f"response version {f[1]}, this client speaks {VERSION}")
        status = f[2]
        try:
            status = Status(status)
        except ValueError:
            pass
        rtype = f[10]
        try:
            rtype = ResultType(rtype)
        except ValueError:
            pass
        return cls(
            version=f[1],
            status=status,
            request_id=f[3],
            tenant_id=f[4],
            queue_us=f[5],
            compute_us=f[6],
            batch_size=f[7],
            device=f[8],
            model=_decode_model(f[9]),
            result_type=rtype,
            rows=f[11],
            cols=f[12],
            flags=f[13],
            result_len=f[14],
            reserved=f[15],
        )

    def encode(self) -> bytes:
        """The 64 wire bytes (for tests and mock services)."""
        for name, limit in (
            ("version", _U16),
            ("status", _U16),
            ("request_id", _U64),
            ("tenant_id", _U32),
            ("queue_us", _U32),
            ("compute_us", _U32),
            ("batch_size", _U16),
            ("device", _U16),
            ("result_type", _U16),
            ("rows", _U16),
            ("cols", _U16),
            ("flags", _U16),
            ("result_len", _U32),
            ("reserved", _U32),
        ):
            _check_range(name, int(getattr(self, name)), limit)
        return _RESPONSE.pack(
            RESPONSE_MAGIC,
            self.version,
            int(self.status),
            self.request_id,
            self.tenant_id,
            self.queue_us,
            self.compute_us,
            self.batch_size,
            self.device,
            _encode_model(self.model),
            int(self.result_type),
            self.rows,
            self.cols,
            self.flags,
            self.result_len,
            self.reserved,
        )

    @property
    def duplicate(self) -> bool:
        """The service refused this send: its request_id was already in flight."""
        return bool(self.flags & RESPONSE_FLAG_DUPLICATE)
