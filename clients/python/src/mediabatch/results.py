"""Responses decoded: :class:`Result`, and class labels for top-k results."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import MediabatchError, ProtocolError, error_for_status
from .protocol import ResponseHeader, ResultType, Status, status_name

__all__ = ["Result", "load_labels", "decode_response", "check_response", "response_fault", "Labels"]

#: Class labels: a mapping class id -> name, a sequence of names indexed by class id, or
#: the path of a checkpoint's ``config.json`` (or of its directory) holding ``id2label``.
Labels = Union[Mapping[int, str], Sequence[str], str, "os.PathLike[str]"]


def load_labels(path: Union[str, "os.PathLike[str]"]) -> Dict[int, str]:
    """The ``id2label`` of a Hugging Face ``config.json`` (``path`` is the file or the
    checkpoint directory holding it) as ``{class id: name}``."""
    path = os.fspath(path)
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.exists(file):
        where = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
        raise FileNotFoundError(
            f"labels: {file}{where}: no such file: give a checkpoint's directory or its "
            f"config.json, which holds id2label")
    with open(file, encoding="utf-8") as f:
        cfg = json.load(f)
    id2label = cfg.get("id2label") if isinstance(cfg, dict) else None
    if not isinstance(id2label, dict) or not id2label:
        raise ValueError(f"{file}: no id2label object (class id -> name)")
    out = {}
    for key, name in id2label.items():
        try:
            cid = int(key)
        except ValueError:
            raise ValueError(f"{file}: id2label key {key!r} is not a class id") from None
        if not isinstance(name, str):
            raise ValueError(f"{file}: id2label[{key!r}] is not a string")
        out[cid] = name
    return out


def _label_lookup(labels: Optional[Labels]):
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        labels = load_labels(labels)
    if isinstance(labels, Mapping):
        return lambda cid: labels.get(cid, labels.get(str(cid), f"class {cid}"))
    seq = list(labels)
    return lambda cid: seq[cid] if 0 <= cid < len(seq) else f"class {cid}"


class Result:
    """A response: its header, and its payload decoded by result type.

    ``value`` is the result: a float32 ``numpy.ndarray`` of ``rows x cols`` (F32), a list
    of ``(class id, score)`` pairs, best first (top-k; ``(label, score)`` when the result
    has labels), text, or ``None``. For a response whose status is not OK, reading
    ``value`` raises its exception (:attr:`error`); :attr:`ok` tells them apart without one.
    The header's fields are attributes too (``queue_us``, ``compute_us``, ``batch_size``,
    ``device``, ...).
    """

    __slots__ = ("header", "payload", "_labels", "_lookup")

    def __init__(self, header: ResponseHeader, payload: bytes, labels: Optional[Labels] = None):
        self.header = header
        self.payload = bytes(payload)
        why = response_fault(header, len(self.payload))
        if why is not None:
            raise ProtocolError(why, request_id=header.request_id, tenant_id=header.tenant_id,
                                model=header.model, response=header)
        self._labels = labels
        self._lookup = None

    # the header's fields
    status = property(lambda self: self.header.status)
    request_id = property(lambda self: self.header.request_id)
    tenant_id = property(lambda self: self.header.tenant_id)
    model = property(lambda self: self.header.model)
    queue_us = property(lambda self: self.header.queue_us)
    compute_us = property(lambda self: self.header.compute_us)
    batch_size = property(lambda self: self.header.batch_size)
    device = property(lambda self: self.header.device)
    result_type = property(lambda self: self.header.result_type)
    rows = property(lambda self: self.header.rows)
    cols = property(lambda self: self.header.cols)
    flags = property(lambda self: self.header.flags)

    @property
    def ok(self) -> bool:
        return self.header.status == Status.OK

    @property
    def text(self) -> str:
        """The payload as UTF-8 text (the reason of a non-OK status)."""
        return self.payload.decode("utf-8", errors="replace")

    @property
    def reason(self) -> str:
        """The reason of a non-OK status ("" for OK)."""
        return "" if self.ok else self.text

    @property
    def error(self) -> Optional[MediabatchError]:
        """The exception of a non-OK status (not raised), or None."""
        if self.ok:
            return None
        h = self.header
        return error_for_status(
            h.status,
            self.text,
            request_id=h.request_id,
            tenant_id=h.tenant_id,
            model=h.model,
            response=h,
        )

    def raise_for_status(self) -> "Result":
        """Raise :attr:`error` if the status is not OK; else return self."""
        err = self.error
        if err is not None:
            raise err
        return self

    @property
    def array(self) -> np.ndarray:
        """An F32 result as a float32 array of rows x cols."""
        self.raise_for_status()
        if self.header.result_type != ResultType.F32:
            raise TypeError(f"the result is {_type_name(self.header.result_type)}, not F32")
        return (
            np.frombuffer(self.payload, "<f4")
            .reshape(self.header.rows, self.header.cols)
            .astype(np.float32)
        )

    @property
    def topk(self) -> List[Tuple[int, float]]:
        """A top-k result as ``[(class id, score), ...]``, in the service's order (best
        first)."""
        self.raise_for_status()
        if self.header.result_type != ResultType.TOPK:
            raise TypeError(f"the result is {_type_name(self.header.result_type)}, not top-k")
        pairs = np.frombuffer(self.payload, dtype=[("cls", "<u4"), ("score", "<f4")])
        return [(int(c), float(s)) for c, s in zip(pairs["cls"], pairs["score"])]

    def labelled(self, labels: Optional[Labels] = None) -> List[Tuple[str, float]]:
        """A top-k result as ``[(label, score), ...]`` with ``labels`` (or the result's
        own); a class without a label is named ``"class <id>"``."""
        lookup = _label_lookup(labels) if labels is not None else self._get_lookup()
        if lookup is None:
            raise ValueError("no labels: pass labels= (a config.json, a dict or a list)")
        return [(lookup(c), s) for c, s in self.topk]

    def _get_lookup(self):
        if self._lookup is None and self._labels is not None:
            self._lookup = _label_lookup(self._labels)
        return self._lookup

    @property
    def value(self) -> Any:
        """The decoded result (see the class); raises the status's exception if not OK."""
        self.raise_for_status()
        rtype = self.header.result_type
        if rtype == ResultType.F32:
            return self.array
        if rtype == ResultType.TOPK:
            return self.labelled() if self._labels is not None else self.topk
        if rtype == ResultType.TEXT:
            return self.text
        if rtype == ResultType.NONE:
            return None
        raise ProtocolError(f"result_type {rtype} is not one this client knows")

    def __repr__(self) -> str:
        h = self.header
        status = status_name(h.status)
        if status == "UNKNOWN_STATUS":
            status = f"{status} ({int(h.status)})"
        if self.ok:
            what = f"{_type_name(h.result_type)} [{h.rows} x {h.cols}]"
        else:
            what = repr(self.text)
        return (
            f"<Result {h.model} id {h.request_id} tenant {h.tenant_id}: {status} {what} "
            f"queue {h.queue_us} us compute {h.compute_us} us batch {h.batch_size}>"
        )


def _type_name(rtype: int) -> str:
    return {0: "none", 1: "F32", 2: "top-k", 3: "text"}.get(int(rtype), f"type {rtype}")


def response_fault(header: ResponseHeader, payload_len: int) -> Optional[str]:
    """Why a response whose header is @header and whose payload is @payload_len bytes is
    malformed, or None (docs/protocol.md, "Response header"; the checks and texts of the C
    library's mb_client_recv()): a payload of another length than result_len; an F32 result
    whose rows x cols x 4 is not result_len; a top-k result whose cols is not 2 or whose
    rows x 8 is not result_len; result type 0 (none) with bytes; an unknown result type.
    Text is any length. A response that passes can be read as its result type says."""
    h = header
    if payload_len != h.result_len:
        return f"result_len is {h.result_len} but the payload is {payload_len} bytes"
    rtype = int(h.result_type)
    if rtype == ResultType.TEXT:
        return None
    if rtype == ResultType.NONE:
        if h.result_len == 0:
            return None
        return f"result_type 0 (none) with a {h.result_len}-byte result"
    if rtype == ResultType.F32:
        want = h.rows * h.cols * 4
        if want == h.result_len:
            return None
        return (f"an F32 result of {h.rows} x {h.cols} is {want} bytes (rows x cols x 4), "
                f"but result_len is {h.result_len}")
    if rtype == ResultType.TOPK:
        want = h.rows * 8
        if h.cols == 2 and want == h.result_len:
            return None
        return (f"a top-k result of {h.rows} pairs is {want} bytes (rows x 8, cols 2), but "
                f"result_len is {h.result_len} and cols {h.cols}")
    return f"result_type {rtype} is not one of 0 (none), 1 (F32), 2 (top-k), 3 (text)"


def check_response(frames: Sequence[bytes]) -> ResponseHeader:
    """The header of a well-formed response (its ZeroMQ frames: header, payload), as the C
    library's mb_client_recv() checks one: the header decodes (64 bytes, magic "MBR1",
    version 1), there are exactly two frames, and the payload fits the header (see
    :func:`response_fault`). Raises :class:`ProtocolError` saying what is wrong, with
    ``response`` (and the request id, tenant and model) set when the header decoded, so
    that the caller can tell whose answer it was; ``response`` is None when it did not."""
    if not frames:
        raise ProtocolError("0 frame(s); a response is 2 (header, payload)")
    try:
        header = ResponseHeader.decode(frames[0])
    except ValueError as e:
        raise ProtocolError(str(e)) from None
    if len(frames) != 2:
        why = f"{len(frames)} frame(s); a response is 2 (header, payload)"
    else:
        why = response_fault(header, len(frames[1]))
    if why is not None:
        raise ProtocolError(why, request_id=header.request_id, tenant_id=header.tenant_id,
                            model=header.model, response=header)
    return header


def decode_response(frames: Sequence[bytes], labels: Optional[Labels] = None) -> Result:
    """A response from its two ZeroMQ frames (header, result). Raises
    :class:`ProtocolError` for a malformed one (see :func:`check_response`)."""
    header = check_response(frames)
    return Result(header, frames[1], labels)
