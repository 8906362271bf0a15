"""mediabatch: a Python client for the mediabatch media batch-inference service.

Send audio, video and tensors to a ``mediabatchd`` over ZeroMQ and get numpy results::

    import numpy as np, mediabatch

    with mediabatch.Client("tcp://127.0.0.1:7400") as client:
        t = np.arange(32000) / 16000
        tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        mel = client.run("logmel", audio=tone, rate=16000)   # float32 [200 x 80]

:class:`Client` (threads and ``concurrent.futures``), :class:`AsyncClient` (asyncio),
both also clients of a fleet of daemons (several endpoints: credit windows, failover),
:class:`Subscriber` / :class:`AsyncSubscriber` (published results), one exception class
per non-OK status (:class:`BadRequest`, ...; all :class:`MediabatchError`), and the wire
codec in :mod:`mediabatch.protocol` (docs/protocol.md).
"""

from ._fleet import DaemonStats, FleetStats
from .aio import AsyncClient, AsyncSubscriber
from .client import Client, RequestFuture
from .curve import curve_keypair, load_certificate
from .errors import (
    BadRequest,
    Cancelled,
    ClientClosed,
    ClientTimeout,
    MediabatchError,
    ModelError,
    Overloaded,
    ProtocolError,
    Timeout,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnknownModel,
    error_for_status,
)
from .media import read_wav, write_wav
from .protocol import (
    HeaderError,
    Media,
    RequestHeader,
    ResponseHeader,
    ResultType,
    Status,
)
from .results import Result, load_labels
from .subscriber import Subscriber

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncSubscriber",
    "BadRequest",
    "Cancelled",
    "Client",
    "ClientClosed",
    "ClientTimeout",
    "DaemonStats",
    "FleetStats",
    "HeaderError",
    "Media",
    "MediabatchError",
    "ModelError",
    "Overloaded",
    "ProtocolError",
    "RequestFuture",
    "RequestHeader",
    "ResponseHeader",
    "Result",
    "ResultType",
    "Status",
    "Subscriber",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "UnknownModel",
    "curve_keypair",
    "error_for_status",
    "load_certificate",
    "load_labels",
    "read_wav",
    "write_wav",
]
