"""The synchronous client: one DEALER owned by a background thread, futures for answers.

ZeroMQ sockets must not be used from several threads, so a :class:`Client` keeps its
DEALER in one background thread (the I/O thread). :meth:`Client.submit` encodes the
request in the caller's thread, registers its future, queues the message and wakes the I/O
thread through an inproc PAIR; the I/O thread sends (keeping a backlog when ZeroMQ's send
queue is full), receives answers, matches them to their futures by (tenant, request id),
and fails those whose client-side wait ran out. Any number of threads may share a client.

A client of several daemons (a fleet) has the same API and futures; its I/O thread drives
a :class:`~._fleet.Fleet` (one DEALER per daemon, credit windows, failover, client-side
deadlines), the same fleet logic the asyncio client drives from its event loop.
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import itertools
import threading
import time
import weakref
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

import zmq

from ._request import (
    DEFAULT,
    DEFAULT_ENDPOINT,
    IdAllocator,
    build_header,
    media_fields,
    routing_id,
)
from ._fleet import (
    FLEET_DEFAULTS,
    Fleet,
    FleetStats,
    check_endpoint,
    connect_item,
    endpoint_text,
    is_fleet,
)
from ._link import MONITOR_EVENTS, LinkState
from .curve import Key, apply_curve, resolve_keys
from .errors import Cancelled, ClientClosed, ClientTimeout, Overloaded, ProtocolError
from .protocol import FLAG_CANCEL, HEADER_LEN, RequestHeader
from .results import Labels, Result, decode_response

__all__ = ["Client", "RequestFuture"]

_Key = Tuple[int, int]  # (tenant, request id)

class RequestFuture(concurrent.futures.Future):
    """A :class:`concurrent.futures.Future` of one request: its result is the
    :class:`~mediabatch.Result`; a non-OK status is raised as its exception.

    ``cancel()`` is the standard one: it succeeds while no answer has arrived, the future
    is then cancelled at once (``result()`` raises :class:`concurrent.futures.CancelledError`)
    and the client also asks the service to drop the request and ignores its answer. To
    have the service's verdict instead, use :meth:`Client.cancel`: the future then ends
    with :class:`~mediabatch.Cancelled`, or with the result if the request had already run.
    """

    def __init__(self, engine: "_Engine", key: _Key, model: str) -> None:
        super().__init__()
        self._engine = engine
        self.tenant_id, self.request_id = key
        self.model = model

    @property
    def key(self) -> _Key:
        return (self.tenant_id, self.request_id)

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        self._engine.forget(self.key, self)
        return True

    def __repr__(self) -> str:
        return (
            f"<RequestFuture {self.model} id {self.request_id} tenant {self.tenant_id} "
            f"{self._state}>"
        )


class _Pending:
    """A request of the client's: ``done`` (under the engine's lock) once it has left the
    pending table (answered, timed out, cancelled); ``sent`` (the I/O thread's alone) once
    ZeroMQ took it."""

    __slots__ = ("future", "frames", "labels", "deadline", "wait", "done", "sent")

    def __init__(self, future, frames, labels, deadline, wait):
        self.future = future
        self.frames = frames
        self.labels = labels
        self.deadline = deadline
        self.wait = wait
        self.done = False
        self.sent = False


def _resolve(future: concurrent.futures.Future, result=None, error=None) -> None:
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled by its caller meanwhile


class _Engine:
    """The I/O thread and what it owns. Kept apart from :class:`Client` so that a client
    that is dropped without close() is still closed (weakref.finalize)."""

    def __init__(
        self, ctx: zmq.Context, dealer: zmq.Socket, monitor: zmq.Socket, endpoint: str
    ) -> None:
        self.dealer = dealer
        # the I/O thread's: messages ZeroMQ did not take yet, (key, _Pending) or (frames, None)
        self.backlog: Deque[tuple] = collections.deque()
        self.link = LinkState(endpoint)
        self.monitor = monitor
        self._setup(ctx, endpoint)
        self.thread.start()

    def _setup(self, ctx: zmq.Context, endpoint: str) -> None:
        """What the one-daemon and the fleet I/O threads share (the thread not started)."""
        self.ctx = ctx
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.pending: Dict[_Key, _Pending] = {}
        self.commands: Deque[tuple] = collections.deque()
        self.closed = False
        self.stats = collections.Counter()
        addr = f"inproc://mediabatch-client-{id(self):x}-{next(_SEQ)}"
        self.wake_in = ctx.socket(zmq.PAIR)
        self.wake_in.linger = 0
        self.wake_in.bind(addr)
        self.wake_out = ctx.socket(zmq.PAIR)
        self.wake_out.linger = 0
        self.wake_out.sndhwm = 16
        self.wake_out.connect(addr)
        self.wake_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="mediabatch-client", daemon=True)

    # ---- any thread ----

    def command(self, cmd: tuple) -> None:
        self.commands.append(cmd)
        with self.wake_lock:
            if self.wake_out.closed:
                return
            try:
                self.wake_out.send(b"", zmq.NOBLOCK)
            except zmq.Again:
                pass  # wakes are pending already

    def register(self, key: _Key, p: _Pending) -> None:
        with self.lock:
            if self.closed:
                raise ClientClosed("the client is closed")
            if key in self.pending:
                raise ValueError(
                    f"request id {key[1]} of tenant {key[0]} is already in flight on this client"
                )
            self.pending[key] = p
        self.command(("send", key, p))

    def forget(self, key: _Key, future) -> None:
        """RequestFuture.cancel(), in the caller's thread: the future is cancelled; take
        the request out of the table at once, and let the I/O thread ask the service to
        drop it if it was sent."""
        with self.lock:
            p = self.pending.get(key)
            if p is None or p.future is not future:
                return
            del self.pending[key]
            p.done = True
        self.command(("forget", key, p))

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self.command(("close",))
        in_io_thread = threading.current_thread() is self.thread  # from a future's callback
        if not in_io_thread:
            self.thread.join()
        with self.wake_lock:
            self.wake_out.close()
        if self.own_ctx and not in_io_thread:
            self.ctx.term()

    own_ctx = False

    # ---- the I/O thread ----

    def _run(self) -> None:
        dealer, monitor = self.dealer, self.monitor
        poller = zmq.Poller()
        poller.register(self.wake_in, zmq.POLLIN)
        poller.register(dealer, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        backlog = self.backlog
        timers: List[Tuple[float, int, _Key]] = []
        seq = itertools.count()
        want_out = False
        try:
            while True:
                closing = False
                while self.commands:
                    cmd = self.commands.popleft()
                    if cmd[0] == "send":
                        _, key, p = cmd
                        if not p.done:
                            backlog.append((key, p))
                            if p.deadline is not None:
                                heapq.heappush(timers, (p.deadline, next(seq), key))
                    elif cmd[0] == "cancel":
                        self._cancel(cmd[1], cmd[2])
                    elif cmd[0] == "forget":
                        if cmd[2].sent:  # dropped here; ask the service to drop it too
                            self._send_cancel(cmd[1])
                    elif cmd[0] == "close":
                        closing = True
                if closing:
                    break
                self._flush(backlog)
                if bool(backlog) != want_out:
                    want_out = bool(backlog)
                    poller.modify(dealer, zmq.POLLIN | (zmq.POLLOUT if want_out else 0))
                timeout = None
                if timers:
                    timeout = max(0, int((timers[0][0] - time.monotonic()) * 1000) + 1)
                events = dict(poller.poll(timeout))
                if self.wake_in in events:
                    try:
                        while True:
                            self.wake_in.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        pass
                if monitor in events:
                    self._monitor_events()
                if events.get(dealer, 0) & zmq.POLLIN:
                    for _ in range(1024):
                        try:
                            frames = dealer.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._answer(frames)
                if timers and timers[0][0] <= time.monotonic():
                    self._expire(timers)
                if len(timers) > 4096 and len(timers) > 4 * len(self.pending):
                    # answered requests leave their timers behind until they are due
                    with self.lock:
                        live = [(p.deadline, k) for k, p in self.pending.items()
                                if p.deadline is not None]
                    timers[:] = [(d, next(seq), k) for d, k in live]
                    heapq.heapify(timers)
        except zmq.ContextTerminated:
            pass
        finally:
            self._shutdown()

    def _flush(self, backlog) -> None:
        while backlog:
            key, p = backlog[0]
            if p is None:  # a cancel
                frames = key
            elif p.done:  # cancelled or timed out before it was sent
                backlog.popleft()
                continue
            else:
                frames = p.frames
            try:
                self.dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            backlog.popleft()
            if p is not None:
                p.sent = True
                p.frames = None
                self.stats["sent"] += 1
            else:
                self.stats["cancels_sent"] += 1

    def _send_cancel(self, key: _Key) -> None:
        tenant, rid = key
        self.backlog.append(([RequestHeader.cancel(tenant, rid).encode(), b""], None))

    def _cancel(self, key: _Key, future) -> None:
        """Client.cancel(): the service's verdict will be the answer; a request not yet
        sent is cancelled here."""
        with self.lock:
            p = self.pending.get(key)
            if p is None or p.future is not future:
                return  # answered already: nothing to cancel
            if not p.sent:
                del self.pending[key]
                p.done = True  # _flush skips it
        if p.sent:
            self._send_cancel(key)
            return
        _resolve(
            future,
            error=Cancelled(
                "cancelled by the client before it was sent",
                status=Cancelled.status,
                request_id=key[1],
                tenant_id=key[0],
                model=future.model,
            ),
        )

    def _answer(self, frames: List[bytes], owner: Optional[_Pending] = None) -> None:
        """An answer: its request's future resolved (with @owner, only if that request is
        still the one pending under the answer's key)."""
        if len(frames) < 1 or len(frames[0]) != HEADER_LEN:
            self.stats["malformed"] += 1
            return
        try:
            hdr_tenant = int.from_bytes(frames[0][16:20], "little")
            hdr_id = int.from_bytes(frames[0][8:16], "little")
        except Exception:  # pragma: no cover
            self.stats["malformed"] += 1
            return
        key = (hdr_tenant, hdr_id)
        with self.lock:
            p = self.pending.get(key)
            if p is not None and (owner is None or p is owner):
                del self.pending[key]
                p.done = True
            else:
                p = None
        if p is None:
            self.stats["stray"] += 1  # late (timed out, cancelled) or not ours
            return
        self.stats["answered"] += 1
        try:
            result = decode_response(frames, p.labels)
        except ProtocolError as e:
            self.stats["malformed"] += 1
            e.request_id, e.tenant_id, e.model = key[1], key[0], p.future.model
            _resolve(p.future, error=e)
            return
        err = result.error
        if err is not None:
            _resolve(p.future, error=err)
        else:
            _resolve(p.future, result=result)

    def _expire(self, timers) -> None:
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            deadline, _, key = heapq.heappop(timers)
            with self.lock:
                p = self.pending.get(key)
                if p is None or p.deadline != deadline:
                    continue
                del self.pending[key]
                p.done = True
            self.stats["timeouts"] += 1
            if p.sent:
                self._send_cancel(key)
                why = f"no answer within {p.wait:g} s"
            else:
                why = (
                    f"not sent within {p.wait:g} s: ZeroMQ did not take it (no connection "
                    "to send on, or its send queue is full)"
                )
            why += self.link.suffix()
            _resolve(
                p.future,
                error=ClientTimeout(
                    why, request_id=key[1], tenant_id=key[0], model=p.future.model
                ),
            )

    def _monitor_events(self) -> None:
        while True:
            try:
                msg = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if self.link.update(msg):
                self.stats["handshake_failed"] += 1

    def _shutdown(self) -> None:
        self._fail_pending()
        try:
            self.dealer.disable_monitor()
        except zmq.ZMQError:  # pragma: no cover
            pass
        self.monitor.close(0)
        self.dealer.close()
        self.wake_in.close()

    def _fail_pending(self) -> None:
        with self.lock:
            self.closed = True
            left = list(self.pending.items())
            self.pending.clear()
        for key, p in left:
            p.done = True
            _resolve(
                p.future,
                error=ClientClosed(
                    "the client was closed before the answer came",
                    request_id=key[1],
                    tenant_id=key[0],
                    model=p.future.model,
                ),
            )


class _FleetEngine(_Engine):
    """The I/O thread of a client of many daemons: it drives a :class:`~._fleet.Fleet`
    (the sockets, credit windows, failover and deadlines, shared with the asyncio client)
    with a :class:`zmq.Poller`. Requests, cancels and the futures are as for one daemon;
    past ``max_outstanding`` requests held, :meth:`register` waits for room."""

    def __init__(self, ctx: zmq.Context, endpoint: str, make_fleet) -> None:
        # the fleet first: a bad endpoint list leaves no socket behind
        self.core: Fleet = make_fleet(lambda owner, frames: self._answer(frames, owner))
        self._setup(ctx, endpoint)
        self.room = threading.Condition(self.lock)
        self.room_waiters = 0
        self.limit = self.core.max_outstanding
        self.link = None
        self.thread.start()

    def register(self, key: _Key, p: _Pending) -> None:
        with self.room:
            while True:
                if self.closed:
                    raise ClientClosed("the client is closed")
                if key in self.pending:
                    raise ValueError(
                        f"request id {key[1]} of tenant {key[0]} is already in flight on "
                        "this client"
                    )
                if len(self.pending) < self.limit:
                    break
                if threading.current_thread() is self.thread:
                    raise Overloaded(
                        f"client: max_outstanding ({self.limit}) requests held; a callback "
                        "of the client's own thread cannot wait for room",
                        status=Overloaded.status, request_id=key[1], tenant_id=key[0],
                        model=p.future.model)
                self.room_waiters += 1
                try:
                    self.room.wait()
                finally:
                    self.room_waiters -= 1
            self.pending[key] = p
        self.command(("send", key, p))

    def fleet_stats(self) -> FleetStats:
        if threading.current_thread() is self.thread or self.closed:
            return self.core.stats()
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.command(("stats", fut))
        try:
            return fut.result(10)
        except concurrent.futures.TimeoutError:  # pragma: no cover - closed meanwhile
            return self.core.stats()

    def _run(self) -> None:
        core = self.core
        poller = zmq.Poller()
        version = None
        daemon_of: Dict[zmq.Socket, Any] = {}
        timers: List[Tuple[float, int, _Key]] = []
        seq = itertools.count()
        try:
            while True:
                closing = False
                now = time.monotonic()
                while self.commands:
                    cmd = self.commands.popleft()
                    if cmd[0] == "send":
                        _, key, p = cmd
                        if not p.done:
                            try:
                                core.submit(key, p.frames[0], p.frames[1], p, now)
                            except ValueError as e:  # pragma: no cover - register() checks
                                with self.lock:
                                    if self.pending.get(key) is p:
                                        del self.pending[key]
                                    p.done = True
                                _resolve(p.future, error=e)
                                continue
                            p.sent = True
                            p.frames = None
                            if p.deadline is not None:
                                heapq.heappush(timers, (p.deadline, next(seq), key))
                    elif cmd[0] == "cancel":
                        self._cancel(cmd[1], cmd[2])
                    elif cmd[0] == "forget":
                        core.forget(cmd[1], cmd[2])
                    elif cmd[0] == "stats":
                        _resolve(cmd[1], result=core.stats())
                    elif cmd[0] == "close":
                        closing = True
                if closing:
                    break
                now = time.monotonic()
                core.service(now)
                if core.version != version:
                    version = core.version
                    poller = zmq.Poller()
                    poller.register(self.wake_in, zmq.POLLIN)
                    daemon_of = {}
                    for sock, d in core.sockets():
                        poller.register(sock, zmq.POLLIN)
                        daemon_of[sock] = d
                timeout = core.timeout(now)
                if timers:
                    t = max(0.0, timers[0][0] - now)
                    timeout = t if timeout is None else min(timeout, t)
                events = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
                now = time.monotonic()
                for sock, _ in events:
                    if sock is self.wake_in:
                        try:
                            while True:
                                self.wake_in.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            pass
                    else:
                        core.read(sock, daemon_of[sock], now)
                if timers and timers[0][0] <= now:
                    self._expire(timers)
                if len(timers) > 4096 and len(timers) > 4 * len(self.pending):
                    with self.lock:
                        live = [(p.deadline, k) for k, p in self.pending.items()
                                if p.deadline is not None]
                    timers[:] = [(d, next(seq), k) for d, k in live]
                    heapq.heapify(timers)
                if self.room_waiters:
                    with self.room:
                        self.room.notify_all()
        except zmq.ContextTerminated:
            pass
        finally:
            self._shutdown()

    def _cancel(self, key: _Key, future) -> None:
        """Client.cancel(): a request still waiting for credit is answered CANCELLED by
        the client; one a daemon holds is cancelled there (its answer is the verdict)."""
        with self.lock:
            p = self.pending.get(key)
            if p is None or p.future is not future:
                return  # answered already: nothing to cancel
        self.core.cancel(key, time.monotonic())

    def _expire(self, timers) -> None:
        """wait_timeout ran out: the future fails with ClientTimeout, the fleet forgets
        the request (cancelling it where a daemon holds it)."""
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            deadline, _, key = heapq.heappop(timers)
            with self.lock:
                p = self.pending.get(key)
                if p is None or p.deadline != deadline:
                    continue
                del self.pending[key]
                p.done = True
            self.stats["timeouts"] += 1
            self.core.forget(key, p)
            _resolve(
                p.future,
                error=ClientTimeout(
                    f"no answer within {p.wait:g} s" + self.core.suffix(),
                    request_id=key[1], tenant_id=key[0], model=p.future.model,
                ),
            )

    def counters(self) -> Dict[str, int]:
        core = self.core
        return {
            "sent": core.sends,
            "answered": self.stats["answered"],
            "timeouts": self.stats["timeouts"],
            "cancels_sent": core.cancels_sent,
            "stray": self.stats["stray"] + core.dups,
            "malformed": self.stats["malformed"] + core.malformed,
            "handshake_failed": core.handshake_failed,
        }

    def _shutdown(self) -> None:
        self._fail_pending()
        with self.room:
            self.room.notify_all()
        self.core.close()
        self.wake_in.close()


_SEQ = itertools.count()


class Client:
    """A client of one mediabatch service: one ZeroMQ DEALER connected to its ROUTER; or of
    a fleet of them (several endpoints, or ``fleet=True``; README, "Fleets").

    Args:
        endpoint: the service's ROUTER (``--ingest``; default ``tcp://127.0.0.1:7400``).
            A fleet: several, comma-separated or as a list (``"tcp://10.0.0.1:7400,
            tcp://10.0.0.2:7400"``), or names that resolve to several addresses with
            ``fleet=True``.
        server_key, public_key, secret_key: CURVE (docs/protocol.md, "Security"): the
            service's public key and this client's pair, Z85 text (or see
            :func:`mediabatch.load_certificate`). None: plaintext. ``public_key`` may be
            left out: it is derived from ``secret_key``.
        client_id: a fixed ZeroMQ routing id (1..255 bytes; otherwise ZeroMQ picks one).
            The service matches a cancel by (client, tenant, id) on the connection that sent
            the request; when a connection closes, its requests that have not started are
            cancelled by the service. In plaintext a new connection under an id in use takes
            it over (the older one gets no more replies), so a client may reconnect under
            its id at once. With CURVE, while one connection holds the id, ZeroMQ refuses a
            second, silently (its requests are never answered), and keeps refusing it after
            the first closes: close the second and connect again; that includes a client
            made right after closing the previous one under the id (close returns before
            the service has seen it: a second is ample). A new connection gets none of the
            old one's answers.
        tenant: the tenant of requests that do not name one (default 0).
        timeout_ms: the deadline sent in each request (0: the model's default).
        wait_timeout: seconds to wait for an answer before failing with
            :class:`~mediabatch.ClientTimeout` (None: no limit; the client then also
            sends a cancel for the request).
        labels: class labels for top-k results (see :func:`mediabatch.load_labels`).
        context: a :class:`zmq.Context` to use (default: a new one, closed with the client).
        sndhwm: messages ZeroMQ queues for sending (default ZeroMQ's 1000); beyond, the
            client keeps them in its own backlog. Not used by a fleet.
        fleet: a fleet even for one endpoint (a name of many addresses, re-resolved).
        window, max_window, failover_ms, request_timeout_ms, max_outstanding, resolve_ms:
            a fleet's settings (ignored for one endpoint without ``fleet``): each daemon's
            first credit window (16 requests) and the most it grows to (1024); a daemon
            silent this long with requests is failed over (10000 ms); the deadline of a
            request whose ``timeout_ms`` is 0 (60000 ms); requests held, sent or waiting
            for credit, beyond which :meth:`submit` waits for room (4096); re-resolve names
            this often (5000 ms; -1: never).

    Many requests may be in flight: :meth:`submit` returns at once with a
    :class:`RequestFuture`; :meth:`run` and :meth:`request` wait. Use as a context
    manager, or call :meth:`close`.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        server_key: Optional[Key] = None,
        public_key: Optional[Key] = None,
        secret_key: Optional[Key] = None,
        client_id: Union[str, bytes, None] = None,
        tenant: int = 0,
        timeout_ms: int = 0,
        wait_timeout: Optional[float] = None,
        labels: Optional[Labels] = None,
        context: Optional[zmq.Context] = None,
        sndhwm: Optional[int] = None,
        fleet: bool = False,
        window: int = FLEET_DEFAULTS["window"],
        max_window: int = FLEET_DEFAULTS["max_window"],
        failover_ms: int = FLEET_DEFAULTS["failover_ms"],
        request_timeout_ms: int = FLEET_DEFAULTS["request_timeout_ms"],
        max_outstanding: int = FLEET_DEFAULTS["max_outstanding"],
        resolve_ms: Optional[int] = FLEET_DEFAULTS["resolve_ms"],
    ) -> None:
        keys = resolve_keys(server_key, public_key, secret_key)
        rid = routing_id(client_id)
        self.tenant = tenant
        self.timeout_ms = timeout_ms
        self.wait_timeout = wait_timeout
        self.labels = labels
        self._ids = IdAllocator(rid is not None)
        if is_fleet(endpoint, fleet):
            self.endpoint = endpoint_text(endpoint)
            own = context is None
            ctx = zmq.Context() if own else context
            options = dict(routing_id=rid, keys=keys, window=window, max_window=max_window,
                           failover_ms=failover_ms, request_timeout_ms=request_timeout_ms,
                           max_outstanding=max_outstanding, resolve_ms=resolve_ms)
            try:
                self._engine = _FleetEngine(
                    ctx, self.endpoint,
                    lambda deliver: Fleet(ctx, endpoint, deliver, time.monotonic(), **options))
            except BaseException:
                if own:
                    ctx.term()
                raise
            self._engine.own_ctx = own
            self._finalizer = weakref.finalize(self, self._engine.close)
            return
        # one endpoint, checked as an item of a list is: the same forms, the same messages
        endpoint = check_endpoint(endpoint)
        self.endpoint = endpoint
        own = context is None
        ctx = zmq.Context() if own else context
        dealer = ctx.socket(zmq.DEALER)
        monitor = None
        try:
            dealer.linger = 100
            dealer.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:7400; IPv4 works as before
            if sndhwm is not None:
                dealer.sndhwm = sndhwm
            if rid is not None:
                dealer.setsockopt(zmq.ROUTING_ID, rid)
            apply_curve(dealer, keys)
            # the monitor before connecting, or the first events are lost
            monitor = dealer.get_monitor_socket(MONITOR_EVENTS)
            connect_item(dealer, endpoint)
        except BaseException:
            if monitor is not None:
                dealer.disable_monitor()
                monitor.close(0)
            dealer.close(0)
            if own:
                ctx.term()
            raise
        self._engine = _Engine(ctx, dealer, monitor, endpoint)
        self._engine.own_ctx = own
        self._finalizer = weakref.finalize(self, self._engine.close)

    # ---- requests ----

    def submit(
        self,
        model: str,
        *,
        audio: Any = None,
        rate: Optional[int] = None,
        wav: Any = None,
        video: Any = None,
        tensor: Any = None,
        tenant: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        priority: bool = False,
        request_id: Optional[int] = None,
        wait_timeout: Any = DEFAULT,
        labels: Any = DEFAULT,
    ) -> RequestFuture:
        """Send a request and return its :class:`RequestFuture` at once.

        Exactly one of: ``audio`` (a 1-D int16 or float32 array, with ``rate``), ``wav``
        (a path or file of a PCM WAV), ``video`` (uint8 frames x height x width x 3),
        ``tensor`` (2-D, sent as float32). ``timeout_ms`` is the service-side deadline,
        ``priority`` the high-priority lane, ``wait_timeout`` the client-side wait
        (seconds), ``request_id`` an id of the caller's (default: the client's counter).
        A request that breaks the protocol is refused here with a ValueError/TypeError.
        """
        fields, payload = media_fields(audio=audio, rate=rate, wav=wav, video=video, tensor=tensor)
        return self._submit(
            model, fields, payload, tenant, timeout_ms, priority, request_id, wait_timeout, labels
        )

    def _submit(
        self, model, fields, payload, tenant, timeout_ms, priority, request_id, wait_timeout, labels
    ) -> RequestFuture:
        tenant = self.tenant if tenant is None else tenant
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        rid = self._ids.next() if request_id is None else request_id
        header = build_header(
            model,
            fields,
            len(payload),
            request_id=rid,
            tenant=tenant,
            timeout_ms=timeout_ms,
            priority=priority,
        )
        return self._register(header, payload, model, wait_timeout, labels)

    def _register(
        self, header: bytes, payload: bytes, model, wait_timeout, labels
    ) -> RequestFuture:
        wait = self.wait_timeout if wait_timeout is DEFAULT else wait_timeout
        labels = self.labels if labels is DEFAULT else labels
        key = (int.from_bytes(header[16:20], "little"), int.from_bytes(header[8:16], "little"))
        fut = RequestFuture(self._engine, key, model)
        deadline = time.monotonic() + wait if wait is not None else None
        self._engine.register(key, _Pending(fut, [header, payload], labels, deadline, wait))
        return fut

    def submit_raw(
        self,
        header: Union[RequestHeader, bytes],
        payload: bytes = b"",
        *,
        wait_timeout: Any = DEFAULT,
        labels: Any = DEFAULT,
    ) -> RequestFuture:
        """Send a header and payload as they are (no checks: the service judges them), for
        tools and tests. The answer is matched by the tenant and request id at bytes 16-19
        and 8-15 of the header."""
        if isinstance(header, RequestHeader):
            model = header.model
            header = header.encode()
        else:
            header = bytes(header)
            model = header[24:40].split(b"\0")[0].decode("ascii", "replace")
        if len(header) < 20:
            raise ValueError("submit_raw: the header needs at least 20 bytes to be answered")
        if self.fleet and int.from_bytes(header[6:8], "little") & FLAG_CANCEL:
            raise ValueError("submit_raw: a fleet client sends cancels itself (cancel())")
        return self._register(header, bytes(payload), model, wait_timeout, labels)

    def request(self, model: str, **kwargs: Any) -> Result:
        """Send a request and wait for its :class:`~mediabatch.Result` (arguments as
        :meth:`submit`). A non-OK status raises its exception."""
        fut = self.submit(model, **kwargs)
        try:
            return fut.result()
        except BaseException as e:
            if not fut.done() and not isinstance(e, concurrent.futures.CancelledError):
                fut.cancel()  # interrupted (KeyboardInterrupt): ask the service to drop it
            raise

    def run(self, model: str, **kwargs: Any) -> Any:
        """Send a request, wait, and return its decoded value: a float32 array for F32
        results, ``[(class id, score), ...]`` (or ``(label, score)`` with labels) for
        top-k. A non-OK status raises its exception::

            mel = client.run("logmel", audio=pcm, rate=16000)   # ndarray [n x 80]
        """
        return self.request(model, **kwargs).value

    def cancel(self, future: RequestFuture) -> None:
        """Ask the service to cancel ``future``'s request. A request still queued there is
        answered CANCELLED (the future raises :class:`~mediabatch.Cancelled`); one that is
        running or done is not affected (the future gets its result). A request this
        client had not sent yet is cancelled here."""
        if not isinstance(future, RequestFuture) or future._engine is not self._engine:
            raise ValueError("cancel: not a future of this client")
        if future.done():
            return
        self._engine.command(("cancel", future.key, future))

    # ---- state ----

    @property
    def in_flight(self) -> int:
        """Requests sent or queued here and not yet answered."""
        with self._engine.lock:
            return len(self._engine.pending)

    @property
    def stats(self) -> Dict[str, int]:
        """Counters: ``sent``, ``answered``, ``timeouts``, ``cancels_sent``, ``stray``
        (answers for no request in flight: late, or after a local cancel), ``malformed``,
        ``handshake_failed``. For a fleet, ``sent`` counts resends too and ``stray`` the
        duplicates dropped; :meth:`fleet_stats` has the rest."""
        if isinstance(self._engine, _FleetEngine):
            return self._engine.counters()
        keys = ("sent", "answered", "timeouts", "cancels_sent", "stray", "malformed",
                "handshake_failed")
        return {k: self._engine.stats[k] for k in keys}

    @property
    def fleet(self) -> bool:
        """Whether this is a client of a fleet (several endpoints, or ``fleet=True``)."""
        return isinstance(self._engine, _FleetEngine)

    def fleet_stats(self) -> FleetStats:
        """A fleet client's figures: ``daemons`` (each one's ``endpoint``, ``up``,
        ``gone``, ``window``, ``in_flight``, ``sent``, ``answered``, ``overloaded``,
        ``failed_over``, ``latency_ms``, ``refused``: why its handshake failed, "" if it
        did not), and ``waiting``, ``resent``, ``duplicates_dropped``,
        ``client_timeouts``, ``resolve_failures``, ``malformed``. A ValueError for a client
        of one daemon."""
        if not isinstance(self._engine, _FleetEngine):
            raise ValueError(f"fleet_stats: {self.endpoint} is one daemon, not a fleet")
        return self._engine.fleet_stats()

    @property
    def connection(self) -> str:
        """What the socket monitor last said: "connected to ...", or why the last
        handshake failed ("the CURVE handshake ... failed: the service does not accept this
        client's key ..."). For a fleet, each daemon's, separated by "; "."""
        if isinstance(self._engine, _FleetEngine):
            return self._engine.core.describe()
        return self._engine.link.describe()

    def close(self) -> None:
        """Stop the I/O thread and close the socket. Requests still waiting fail with
        :class:`~mediabatch.ClientClosed`."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._engine.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mediabatch.Client {self.endpoint} tenant {self.tenant}>"
