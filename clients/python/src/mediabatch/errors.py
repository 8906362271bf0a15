"""Exceptions: one class per non-OK status, plus the client's own failures.

Every response whose status is not OK becomes an instance of the class of its status
(:class:`BadRequest` for BAD_REQUEST, ...), carrying the status, the service's reason (the
UTF-8 text of the response) and the request id. All of them, and the client-side
:class:`ClientTimeout`, :class:`ClientClosed` and :class:`ProtocolError`, derive from
:class:`MediabatchError`::

    try:
        mel = client.run("logmel", audio=pcm, rate=44100)
    except mediabatch.BadRequest as e:
        print(e.status.name, e.reason)   # BAD_REQUEST sample_rate: 44100 Hz, but logmel ...
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from .protocol import Status, status_name

__all__ = [
    "MediabatchError",
    "BadRequest",
    "UnknownModel",
    "Overloaded",
    "Timeout",
    "Cancelled",
    "ModelError",
    "Unavailable",
    "TooLarge",
    "Unauthorized",
    "ClientTimeout",
    "ClientClosed",
    "ProtocolError",
    "error_for_status",
]


class MediabatchError(Exception):
    """Base of every error of this package.

    Attributes:
        status: the response's :class:`~mediabatch.Status` (an int for a status this
            client does not know; ``None`` for a client-side error).
        reason: the service's reason text (or the client's, for client-side errors).
        request_id, tenant_id, model: of the request it concerns (``None`` if unknown).
        response: the :class:`~mediabatch.ResponseHeader`, when a response was received.
    """

    status: Optional[int] = None

    def __init__(
        self,
        reason: str,
        *,
        status: Optional[int] = None,
        request_id: Optional[int] = None,
        tenant_id: Optional[int] = None,
        model: Optional[str] = None,
        response=None,
    ) -> None:
        super().__init__(reason)
        if status is not None:
            self.status = status
        self.reason = reason
        self.request_id = request_id
        self.tenant_id = tenant_id
        self.model = model
        self.response = response

    def __str__(self) -> str:
        what = []
        if self.status is not None:
            name = status_name(self.status)
            # a status this client does not know: UNKNOWN_STATUS and its number, as the C
            # library's mb_status_name() asks
            what.append(name if name != "UNKNOWN_STATUS" else f"{name} ({int(self.status)})")
        if self.model:
            what.append(self.model)
        if self.request_id is not None:
            what.append(f"id {self.request_id}")
        prefix = " ".join(what)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class BadRequest(MediabatchError):
    """BAD_REQUEST (1): the request breaks the protocol or the model's rules; the reason
    names the field. ``duplicate`` is True when the service refused a send whose request id
    was already in flight (response flag DUPLICATE)."""

    status = Status.BAD_REQUEST

    @property
    def duplicate(self) -> bool:
        return bool(self.response is not None and self.response.duplicate)


class UnknownModel(MediabatchError):
    """UNKNOWN_MODEL (2): no such model here (the reason lists those served)."""

    status = Status.UNKNOWN_MODEL


class Overloaded(MediabatchError):
    """OVERLOADED (3): a queue, max_inflight, a share or a rate limit is full: retry later."""

    status = Status.OVERLOADED


class Timeout(MediabatchError):
    """TIMEOUT (4): the request's deadline (``timeout_ms``) passed before it ran.

    This is the service's answer. A response that does not come in time on the client's
    side is :class:`ClientTimeout`."""

    status = Status.TIMEOUT


class Cancelled(MediabatchError):
    """CANCELLED (5): cancelled by the client, or the service stopped before it ran."""

    status = Status.CANCELLED


class ModelError(MediabatchError):
    """MODEL_ERROR (6): the model failed on this batch."""

    status = Status.MODEL_ERROR


class Unavailable(MediabatchError):
    """UNAVAILABLE (7): shutting down, the model is disabled, or its circuit is open."""

    status = Status.UNAVAILABLE


class TooLarge(MediabatchError):
    """TOO_LARGE (8): over max_payload_bytes, max_windows, or the device's units."""

    status = Status.TOO_LARGE


class Unauthorized(MediabatchError):
    """UNAUTHORIZED (9): with CURVE, a tenant this key may not use, or a removed key."""

    status = Status.UNAUTHORIZED


class ClientTimeout(MediabatchError, TimeoutError):
    """No response within the client's wait (``wait_timeout``). The request may still be
    in flight at the service: the client sent it a cancel and ignores a late answer.

    With CURVE, a service that does not list the client's key never answers (the handshake
    fails and ZeroMQ tells the application nothing); the reason then says so when the
    client saw the handshake fail. A :class:`~mediabatch.Subscriber` with CURVE raises it
    at once when a handshake with a publisher failed and nothing is waiting, the reason
    naming the publisher (the C library's -EACCES)."""


class ClientClosed(MediabatchError):
    """The client was closed while the request was waiting for its answer."""


class ProtocolError(MediabatchError):
    """A malformed response (docs/protocol.md, "Response header"; what the C library's
    mb_client_recv() refuses with -EPROTO): not two frames (header, payload); a header that
    is not 64 bytes, or has another magic or version; a payload of another length than
    result_len; an F32 result whose rows x cols x 4 is not result_len, a top-k result whose
    cols is not 2 or whose rows x 8 is not result_len, result type 0 (none) with bytes, or
    an unknown result type. ``response`` is the header when it decoded (None otherwise).

    A client of one daemon fails the request the answer names with it; a fleet client
    never raises it (README, "Fleets": the daemon has failed the request)."""


_BY_STATUS: Dict[int, Type[MediabatchError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        UnknownModel,
        Overloaded,
        Timeout,
        Cancelled,
        ModelError,
        Unavailable,
        TooLarge,
        Unauthorized,
    )
}


def error_for_status(
    status: int,
    reason: str,
    *,
    request_id: Optional[int] = None,
    tenant_id: Optional[int] = None,
    model: Optional[str] = None,
    response=None,
) -> MediabatchError:
    """The exception for a non-OK ``status`` (a plain :class:`MediabatchError` for a status
    this client does not know)."""
    cls = _BY_STATUS.get(int(status), MediabatchError)
    try:
        status = Status(status)
    except ValueError:
        pass
    return cls(
        reason,
        status=status,
        request_id=request_id,
        tenant_id=tenant_id,
        model=model,
        response=response,
    )
