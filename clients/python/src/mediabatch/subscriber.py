"""Published results: the service's PUB socket (docs/protocol.md, "ZeroMQ fan-out").

Every terminal response is published as three frames: the topic ``<tenant>/<model>``, the
response header, the result. A :class:`Subscriber` subscribes by topic prefix and yields
``(topic, Result)`` pairs, whatever their status (a :class:`~mediabatch.Result` tells OK
from the rest: ``result.ok``, ``result.error``).
"""

from __future__ import annotations

import time
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import zmq

from ._fleet import (
    check_endpoint,
    connect_error,
    connect_item,
    endpoint_text,
    is_fleet,
    lookup_sources,
    parse_endpoints,
)
from ._request import DEFAULT, DEFAULT_PUBLISH
from .curve import Key, apply_curve, resolve_keys
from .errors import ClientTimeout, ProtocolError
from .results import Labels, Result, decode_response

__all__ = ["Subscriber", "subscriptions"]


def subscriptions(
    tenant: Optional[int], model: Optional[str], topics: Optional[Sequence[str]]
) -> Tuple[List[str], Any]:
    """The prefixes to subscribe to, and a filter of topics (None: every topic that
    matches a prefix). ZeroMQ matches prefixes, so ``0/whisper`` would also match a model
    ``whisper2``, and ``4/`` never matches ``42/`` but ``4`` would: the filter keeps exactly
    the topics asked for."""
    if topics is not None:
        if tenant is not None or model is not None:
            raise TypeError("give tenant/model, or topics, not both")
        return list(topics), None
    if tenant is None and model is None:
        return [""], None
    if tenant is None:
        suffix = f"/{model}"
        return [""], lambda t: t.endswith(suffix)
    if model is None:
        return [f"{int(tenant)}/"], None
    exact = f"{int(tenant)}/{model}"
    return [exact], lambda t: t == exact


def decode_publication(frames: List[bytes], labels: Optional[Labels]) -> Tuple[str, Result]:
    if len(frames) != 3:
        raise ProtocolError(
            f"a publication has 3 frames (topic, header, result), got {len(frames)}"
        )
    topic = frames[0].decode("ascii", errors="replace")
    return topic, decode_response(frames[1:], labels)


class _Publishers:
    """The PUB endpoints of a subscriber, as the C library's mb_subscriber_open() has them:
    one endpoint, checked as an item of a list is; or a fleet's (a list, a string with
    commas, or ``fleet=True``), every item checked, names resolved to all their addresses
    at the start and every ``resolve_ms`` after. Every item is checked before a socket is
    made (ValueError naming it); :meth:`open` connects, and a literal item (an address,
    ipc://...) ZeroMQ cannot connect is refused then (zmq.ZMQError naming it), while a
    name's address that cannot be connected is tried again at the next resolution."""

    def __init__(self, endpoint, fleet: bool, resolve_ms: Optional[int]) -> None:
        self.sources = None
        self.resolving = False
        self.every: Optional[float] = None
        self.connected: List[Tuple[int, str]] = []  # (source, address)
        self.next_resolve: Optional[float] = None
        self.sock: Optional[zmq.Socket] = None
        if is_fleet(endpoint, fleet):
            if resolve_ms is not None and (not isinstance(resolve_ms, int)
                                           or isinstance(resolve_ms, bool)
                                           or resolve_ms == 0 or resolve_ms < -1):
                raise ValueError(
                    f"resolve_ms: {resolve_ms!r}; a positive integer, or -1: never")
            self.sources, self.resolving = parse_endpoints(endpoint)
            self.every = None if resolve_ms in (None, -1) else resolve_ms / 1000.0
            self.endpoint = endpoint_text(endpoint)
        else:
            self.endpoint = check_endpoint(endpoint)

    def open(self, sock: zmq.Socket) -> None:
        """Connect @sock (options set): to the endpoint, or to the fleet's addresses."""
        self.sock = sock
        if self.sources is None:
            connect_item(sock, self.endpoint)
            return
        sock.setsockopt(zmq.IPV6, 1)  # IPv6 publishers too
        err = self.apply(self.lookup(), time.monotonic())
        if err is not None:
            raise err

    def lookup(self):
        """Resolve every item (blocking, for names)."""
        return lookup_sources(self.sources)

    def apply(self, found, now: float) -> Optional[Exception]:
        """Connect to every address the items resolve to now (lookup()'s result), and
        leave those gone. Returns the error of the first literal item that could not be
        connected (at the start, that refuses the list), else None."""
        err: Optional[Exception] = None
        want: List[Tuple[int, str]] = []
        for s, eps, _why in found:
            if eps is None:  # keep this item's addresses: a DNS hiccup is not a fleet gone
                want.extend(c for c in self.connected if c[0] == s)
            else:
                want.extend((s, ep) for ep in eps if (s, ep) not in want)
        have = {ep for _, ep in self.connected}
        keep = {ep for _, ep in want}
        for ep in have - keep:
            try:
                self.sock.disconnect(ep)
            except zmq.ZMQError:
                pass
        have &= keep
        connected: List[Tuple[int, str]] = []
        for s, ep in want:
            if ep not in have:
                try:
                    self.sock.connect(ep)
                except zmq.ZMQError as e:
                    src = self.sources[s]
                    if src.literal and err is None:
                        err = connect_error(src.raw, e)
                    continue  # tried again at the next resolution
                have.add(ep)
            connected.append((s, ep))
        self.connected = connected
        self.next_resolve = (None if not self.resolving or self.every is None
                             else now + self.every)
        return err

    @property
    def publishers(self) -> List[str]:
        if self.sources is None:
            return [self.endpoint]
        return [ep for _, ep in self.connected]


class Subscriber:
    """Results published by a service.

    Args:
        endpoint: the service's PUB socket (``--publish``; default ``tcp://127.0.0.1:7401``).
        tenant, model: what to receive: all (neither), one tenant's (``tenant``), one
            model of one tenant (both), or one model of every tenant (``model``).
        topics: raw topic prefixes instead (``["42/", "43/whisper"]``).
        server_key, public_key, secret_key: CURVE, as for :class:`~mediabatch.Client`. A
            service with CURVE narrows an all-topics subscription to the key's tenants and
            sends nothing for a tenant the key may not subscribe to.
        labels: class labels for top-k results.
        timeout: seconds :meth:`recv` waits by default, and after which iteration ends when
            nothing arrives (None: wait forever).
        fleet, resolve_ms: a fleet's results: ``endpoint`` a comma-separated list (or a
            list) of the daemons' PUB endpoints, or with ``fleet=True`` a name whose every
            address is one (``tcp://NAME:7401``), resolved again every ``resolve_ms``
            (5000; -1: never) while :meth:`recv` waits: a daemon that appears is
            subscribed to, one that goes is left.

    The endpoint, or every item of a list, is checked as a client's is: ValueError naming
    an item that is not tcp://HOST:PORT (port 1..65535), ipc://PATH or inproc://NAME, or an
    empty item; zmq.ZMQError naming one that ZeroMQ cannot connect.

    ZeroMQ subscriptions take a moment to reach the service, and results published before
    then are not received: subscribe first, then send. A subscriber is used from one
    thread at a time.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_PUBLISH,
        tenant: Optional[int] = None,
        model: Optional[str] = None,
        *,
        topics: Optional[Sequence[str]] = None,
        server_key: Optional[Key] = None,
        public_key: Optional[Key] = None,
        secret_key: Optional[Key] = None,
        labels: Optional[Labels] = None,
        timeout: Optional[float] = None,
        context: Optional[zmq.Context] = None,
        fleet: bool = False,
        resolve_ms: int = 5000,
    ) -> None:
        keys = resolve_keys(server_key, public_key, secret_key)
        # every item checked before anything is made
        self._pubs = _Publishers(endpoint, fleet, resolve_ms)
        self.endpoint = self._pubs.endpoint
        self.prefixes, self._filter = subscriptions(tenant, model, topics)
        self.labels = labels
        self.timeout = timeout
        self._own = context is None
        self._ctx = zmq.Context() if self._own else context
        self._sock = self._ctx.socket(zmq.SUB)
        try:
            self._sock.linger = 0
            apply_curve(self._sock, keys)
            for p in self.prefixes:
                self._sock.setsockopt(zmq.SUBSCRIBE, p.encode("ascii"))
            self._pubs.open(self._sock)
        except BaseException:
            self.close()
            raise

    @property
    def publishers(self) -> List[str]:
        """The PUB endpoints this subscriber is connected to (a fleet: as resolved)."""
        return self._pubs.publishers

    def recv(self, timeout: Any = DEFAULT) -> Tuple[str, Result]:
        """The next published ``(topic, Result)``; raises
        :class:`~mediabatch.ClientTimeout` when none arrives within ``timeout`` seconds
        (default: the subscriber's)."""
        timeout = self.timeout if timeout is DEFAULT else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            due = self._pubs.next_resolve
            if due is not None:
                if time.monotonic() >= due:
                    self._pubs.apply(self._pubs.lookup(), time.monotonic())
                    due = self._pubs.next_resolve
                if due is not None:
                    left = max(0.0, due - time.monotonic())
                    if wait is None or left < wait:
                        if not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                            continue  # time to resolve again; the deadline still holds
                        wait = 0.0
            if not self._sock.poll(None if wait is None else int(wait * 1000) + 1, zmq.POLLIN):
                raise ClientTimeout(f"nothing published on {self.endpoint} within {timeout:g} s")
            topic, result = decode_publication(self._sock.recv_multipart(), self.labels)
            if self._filter is None or self._filter(topic):
                return topic, result

    def __iter__(self) -> Iterator[Tuple[str, Result]]:
        while True:
            try:
                yield self.recv()
            except ClientTimeout:
                return

    def close(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None and not sock.closed:
            sock.close(0)
        if self._own and not self._ctx.closed:
            self._ctx.term()

    @property
    def closed(self) -> bool:
        return self._sock.closed

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mediabatch.Subscriber {self.endpoint} {self.prefixes!r}>"
