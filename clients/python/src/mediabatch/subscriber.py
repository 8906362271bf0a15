"""Published results: the service's PUB socket (docs/protocol.md, "ZeroMQ fan-out").

Every terminal response is published as three frames: the topic ``<tenant>/<model>``, the
response header, the result. A :class:`Subscriber` subscribes by topic prefix and yields
``(topic, Result)`` pairs, whatever their status (a :class:`~mediabatch.Result` tells OK
from the rest: ``result.ok``, ``result.error``).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import zmq
from zmq.utils.monitor import parse_monitor_message

from ._fleet import (
    check_endpoint,
    connect_error,
    connect_item,
    endpoint_text,
    is_fleet,
    lookup_sources,
    parse_endpoints,
)
from ._link import LinkState
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


#: The most a subscriber's ZeroMQ receive queue may hold (ZMQ_RCVHWM is a C int).
RCVHWM_MAX = 2**31 - 1


def check_rcvhwm(rcvhwm: Any) -> Optional[int]:
    """A subscriber's ``rcvhwm``, as the C library's struct mb_subscriber_opts.rcvhwm
    means it: 0 ZeroMQ's default (1000; None here: not set), -1 no limit (ZeroMQ's 0),
    else that many publications per publisher. ValueError naming it for anything else."""
    if (not isinstance(rcvhwm, int) or isinstance(rcvhwm, bool) or rcvhwm < -1
            or rcvhwm > RCVHWM_MAX):
        raise ValueError(
            f"rcvhwm: {rcvhwm!r}; publications queued per publisher, 1..{RCVHWM_MAX}, "
            "0 for ZeroMQ's default (1000), or -1: no limit")
    if rcvhwm == 0:
        return None
    return 0 if rcvhwm == -1 else rcvhwm


#: What a subscriber's socket monitor watches (CURVE only, as the C library's).
HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class _Handshakes:
    """CURVE: a subscriber's handshakes with its publishers, from a monitor of its SUB set
    before it connects (as the C library's mb_subscriber_open() watches them). A publisher
    that refuses the key (ZAP 400) or lacks CURVE sends nothing, and ZeroMQ tells the
    application nothing: :meth:`update` turns each failure into the reason to raise (naming
    that publisher's endpoint), and keeps the last one of each publisher until a handshake
    with it succeeds, for a timeout's reason. ``mon`` is a PAIR of the SUB's context
    (asyncio's for an AsyncSubscriber): the caller reads it."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.mon = sock.get_monitor_socket(HANDSHAKE_EVENTS)
        self.links: Dict[str, LinkState] = {}

    def update(self, msg: List[bytes]) -> Optional[str]:
        """Apply one monitor message: the reason when it is a failed handshake."""
        try:
            ep = parse_monitor_message(msg)["endpoint"]
            ep = ep.decode("utf-8", "replace") if isinstance(ep, bytes) else str(ep)
        except Exception:  # pragma: no cover - a message of another libzmq
            return None
        link = self.links.get(ep)
        if link is None:
            link = self.links[ep] = LinkState(ep)
        return link.handshake_error if link.update(msg) else None

    def read(self) -> Optional[str]:
        """What the monitor has now, each event read once (a blocking socket's): the
        reasons of the handshakes that failed, or None."""
        failed: List[str] = []
        for _ in range(4096):
            try:
                msg = self.mon.recv_multipart(zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                break
            why = self.update(msg)
            if why is not None and why not in failed:
                failed.append(why)
        return "; ".join(failed) or None

    def suffix(self, publishers: Optional[List[str]]) -> str:
        """To end a timeout's reason: why a handshake with a publisher (of @publishers;
        None: any) last failed, if it did."""
        errs = [link.handshake_error for ep, link in self.links.items()
                if link.handshake_error and (publishers is None or ep in publishers)]
        return "".join(f"; {e}" for e in errs)

    def close(self, sock: zmq.Socket) -> None:
        if not sock.closed:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:  # pragma: no cover
                pass
        self.mon.close(0)


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


def open_subscription(sub, endpoint, fleet: bool, resolve_ms, tenant, model, topics, labels,
                      timeout, keys, rcvhwm: int, context, context_cls, poller_cls) -> None:
    """Subscriber's and AsyncSubscriber's set-up alike (their own context and poller classes:
    zmq's or zmq.asyncio's): every endpoint item checked before anything is made, then the
    SUB with its receive high-water mark, CURVE keys and subscriptions, the handshake monitor
    with CURVE, and the publishers connected. On an error @sub is closed and it is raised."""
    hwm = check_rcvhwm(rcvhwm)
    sub._pubs = _Publishers(endpoint, fleet, resolve_ms)
    sub.endpoint = sub._pubs.endpoint
    sub.prefixes, sub._filter = subscriptions(tenant, model, topics)
    sub.labels = labels
    sub.timeout = timeout
    sub._handshakes = None
    sub._refusal = None
    sub._own = context is None
    sub._ctx = context_cls() if sub._own else context
    sub._sock = sub._ctx.socket(zmq.SUB)
    try:
        sub._sock.linger = 0
        if hwm is not None:  # before any connect: ZeroMQ sizes a pipe when it connects
            sub._sock.rcvhwm = hwm
        apply_curve(sub._sock, keys)
        for p in sub.prefixes:
            sub._sock.setsockopt(zmq.SUBSCRIBE, p.encode("ascii"))
        if keys is not None:  # the monitor before connecting, or the first events are lost
            sub._handshakes = _Handshakes(sub._sock)
        sub._poller = poller_cls()
        sub._poller.register(sub._sock, zmq.POLLIN)
        if sub._handshakes is not None:
            sub._poller.register(sub._handshakes.mon, zmq.POLLIN)
        sub._pubs.open(sub._sock)
    except BaseException:
        sub.close()
        raise



def close_subscription(sub) -> None:
    """Undo :func:`open_subscription` (whatever of it was made): the handshake monitor, the
    SUB, and the context when it is the subscriber's own."""
    sock = getattr(sub, "_sock", None)
    hs = getattr(sub, "_handshakes", None)
    if hs is not None and sock is not None:
        hs.close(sock)
        sub._handshakes = None
    if sock is not None and not sock.closed:
        sock.close(0)
    if sub._own and not sub._ctx.closed:
        sub._ctx.term()


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
        rcvhwm: the publications this subscriber's ZeroMQ queue holds from each publisher
            (ZMQ_RCVHWM, set before it connects: every publisher of a fleet's, those found
            later too) before it stops taking more from that publisher; then the service's
            queue for it fills (its ``zmq.pub_sndhwm``) and the service drops results for
            it (docs/operating.md, "A subscriber that stops reading"). 0: ZeroMQ's default,
            1000; -1: no limit (memory grows while it does not read). A subscriber that
            must not miss results in a burst raises it, and keeps reading. As the C
            library's ``struct mb_subscriber_opts.rcvhwm``; anything but an int of -1 and
            up is a ValueError naming it.

    The endpoint, or every item of a list, is checked as a client's is: ValueError naming
    an item that is not tcp://HOST:PORT (port 1..65535), ipc://PATH or inproc://NAME, or an
    empty item; zmq.ZMQError naming one that ZeroMQ cannot connect.

    With CURVE, a publisher that refuses the key (one the service does not list) or lacks
    CURVE (a wrong ``server_key``) never sends anything, and ZeroMQ says so only to a
    socket monitor: :meth:`recv` raises :class:`~mediabatch.ClientTimeout` at once when a
    handshake failed and no publication is waiting, its reason naming the publisher's
    endpoint (``the CURVE handshake with tcp://... failed: the service does not accept
    this client's key (ZAP status 400)``), as the C library's mb_subscriber_recv() returns
    -EACCES. Each failure is reported once (by the next :meth:`recv` that finds nothing
    waiting); a fleet's too, whichever publisher it was, while the others' publications
    still arrive. A later timeout's reason ends with it, until a handshake with that
    publisher succeeds.

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
        rcvhwm: int = 0,
    ) -> None:
        open_subscription(self, endpoint, fleet, resolve_ms, tenant, model, topics, labels,
                          timeout, resolve_keys(server_key, public_key, secret_key), rcvhwm,
                          context, zmq.Context, zmq.Poller)

    @property
    def publishers(self) -> List[str]:
        """The PUB endpoints this subscriber is connected to (a fleet: as resolved)."""
        return self._pubs.publishers

    def recv(self, timeout: Any = DEFAULT) -> Tuple[str, Result]:
        """The next published ``(topic, Result)``; raises
        :class:`~mediabatch.ClientTimeout` when none arrives within ``timeout`` seconds
        (default: the subscriber's), or at once when a CURVE handshake with a publisher
        failed and nothing is waiting (the reason names the publisher)."""
        timeout = self.timeout if timeout is DEFAULT else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            due = self._pubs.next_resolve
            if due is not None and now >= due:
                self._pubs.apply(self._pubs.lookup(), time.monotonic())
                continue
            wait = None if deadline is None else max(0.0, deadline - now)
            resolving = due is not None and (wait is None or due - now < wait)
            if resolving:
                wait = due - now  # time to resolve again; the deadline still holds
            events = dict(self._poller.poll(None if wait is None else int(wait * 1000) + 1))
            if events.get(self._sock, 0) & zmq.POLLIN:
                topic, result = decode_publication(self._sock.recv_multipart(), self.labels)
                if self._filter is None or self._filter(topic):
                    return topic, result
                continue
            hs = self._handshakes
            if hs is not None and hs.mon in events:
                why = hs.read()
                if why is not None:
                    raise self._refused(why)
                continue
            if resolving or deadline is None or time.monotonic() < deadline:
                continue
            raise self._timed_out(timeout)

    def _refused(self, why: str) -> ClientTimeout:
        self._refusal = ClientTimeout(why)
        return self._refusal

    def _timed_out(self, timeout: float) -> ClientTimeout:
        why = f"nothing published on {self.endpoint} within {timeout:g} s"
        if self._handshakes is not None:
            why += self._handshakes.suffix(
                None if self._pubs.sources is None else self._pubs.publishers)
        return ClientTimeout(why)

    def __iter__(self) -> Iterator[Tuple[str, Result]]:
        """Publications until ``timeout`` passes without one; a failed CURVE handshake is
        raised (ClientTimeout), not an end."""
        while True:
            try:
                yield self.recv()
            except ClientTimeout as e:
                if e is self._refusal:
                    raise
                return

    def close(self) -> None:
        close_subscription(self)

    @property
    def closed(self) -> bool:
        return self._sock.closed

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mediabatch.Subscriber {self.endpoint} {self.prefixes!r}>"
