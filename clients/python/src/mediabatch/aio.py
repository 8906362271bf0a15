"""The asyncio client and subscriber (:mod:`zmq.asyncio`).

:class:`AsyncClient` has the methods of :class:`~mediabatch.Client` as coroutines::

    async with mediabatch.AsyncClient() as client:
        mels = await asyncio.gather(*(client.run("logmel", audio=a, rate=16000) for a in clips))

One reader task receives every answer and resolves the request's future. Cancelling a
task that waits for an answer (``asyncio.wait_for``, ``Task.cancel``) also asks the
service to drop the request; :meth:`AsyncClient.cancel` asks for the service's verdict
instead (the request then ends with :class:`~mediabatch.Cancelled`, or its result).

Given several endpoints (or ``fleet=True``), an :class:`AsyncClient` is a client of a fleet:
the event loop drives the same :class:`~._fleet.Fleet` as the synchronous client's thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, Optional, Sequence, Tuple, Union

import zmq
import zmq.asyncio

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
from ._request import DEFAULT, DEFAULT_ENDPOINT, DEFAULT_PUBLISH, IdAllocator, build_header
from ._request import media_fields, routing_id
from .curve import Key, apply_curve, resolve_keys
from .errors import ClientClosed, ClientTimeout, ProtocolError
from .protocol import FLAG_CANCEL, HEADER_LEN, RequestHeader
from .results import Labels, Result, decode_response
from .subscriber import _Handshakes, close_subscription, decode_publication, open_subscription

__all__ = ["AsyncClient", "AsyncSubscriber"]

_Key = Tuple[int, int]


class _Pending:
    __slots__ = ("future", "labels", "timer", "wait")

    def __init__(self, future, labels, wait):
        self.future = future
        self.labels = labels
        self.timer = None
        self.wait = wait


class _FleetDriver:
    """Drives a :class:`~._fleet.Fleet` (the fleet logic the synchronous client's I/O
    thread drives too) from an asyncio event loop: the loop watches the file descriptors
    of the fleet's sockets and wakes a pump that reads what arrived, runs the timers and
    sends what waits for credit. ZeroMQ's descriptors are edge-triggered: a pump reads
    every socket until it is empty, again after sending, and the fleet's 20 ms tick while
    requests are held catches anything else. Names are resolved in the loop's default
    executor, not on the loop."""

    def __init__(self, core: Fleet, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop
        self.fds: Dict[zmq.Socket, int] = {}
        self.version = None
        self.scheduled = False
        self.timer: Optional[asyncio.TimerHandle] = None
        self.resolving = False
        self.closed = False
        core.inline_resolve = False
        core.on_close = self._unwatch

    def kick(self) -> None:
        """A pump soon (once, however many ask)."""
        if not self.scheduled and not self.closed:
            self.scheduled = True
            self.loop.call_soon(self.pump)

    def pump(self) -> None:
        self.scheduled = False
        if self.closed:
            return
        core = self.core
        now = time.monotonic()
        core.read_all(now)
        core.service(now)
        if core.resolve_due(now) and not self.resolving:
            self.resolving = True
            core.next_resolve = now + (core.resolve_every or 0)
            self.loop.run_in_executor(None, core.lookup).add_done_callback(self._resolved)
        core.read_all(now)  # what arrived while sending: the descriptors may not say
        if core.version != self.version:
            self.version = core.version
            for sock, _ in core.sockets():
                if sock not in self.fds:
                    fd = sock.getsockopt(zmq.FD)
                    self.fds[sock] = fd
                    self.loop.add_reader(fd, self.kick)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        wait = core.timeout(time.monotonic())
        if wait is not None:
            self.timer = self.loop.call_later(wait, self.kick)

    def _resolved(self, fut) -> None:
        self.resolving = False
        if self.closed or fut.cancelled():
            return
        if fut.exception() is None:
            self.core.apply_resolution(fut.result(), time.monotonic())
        self.kick()

    def _unwatch(self, socks) -> None:
        for sock in socks:
            fd = self.fds.pop(sock, None)
            if fd is not None:
                self.loop.remove_reader(fd)

    def close(self) -> list:
        """Stop watching, close the fleet's sockets; the owners of requests still held."""
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for fd in self.fds.values():
            self.loop.remove_reader(fd)
        self.fds.clear()
        return self.core.close()


class AsyncClient:
    """A client for asyncio programs: arguments as :class:`~mediabatch.Client` (the
    context, if given, is a :class:`zmq.asyncio.Context`), a fleet included. Use it from
    one event loop."""

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
        context: Optional[zmq.asyncio.Context] = None,
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
        self._pending: Dict[_Key, _Pending] = {}
        self._reader: Optional[asyncio.Task] = None
        self._monitor_task: Optional[asyncio.Task] = None
        self._closed = False
        self._stats: Dict[str, int] = dict.fromkeys(
            ("sent", "answered", "timeouts", "cancels_sent", "stray", "malformed",
             "handshake_failed"), 0)
        self._fleet: Optional[Fleet] = None
        self._driver: Optional[_FleetDriver] = None
        self._room: Optional[asyncio.Event] = None
        self._own = context is None
        if is_fleet(endpoint, fleet):
            self.endpoint = endpoint_text(endpoint)
            self._ctx = zmq.asyncio.Context() if self._own else context
            try:
                self._fleet = Fleet(
                    self._ctx, endpoint, self._deliver, time.monotonic(), routing_id=rid,
                    keys=keys, window=window, max_window=max_window, failover_ms=failover_ms,
                    request_timeout_ms=request_timeout_ms, max_outstanding=max_outstanding,
                    resolve_ms=resolve_ms)
            except BaseException:
                if self._own:
                    self._ctx.term()
                raise
            return
        # one endpoint, checked as an item of a list is: the same forms, the same messages
        endpoint = check_endpoint(endpoint)
        self.endpoint = endpoint
        self._ctx = zmq.asyncio.Context() if self._own else context
        self._sock = self._ctx.socket(zmq.DEALER)
        self._monitor = None
        try:
            self._sock.linger = 100
            self._sock.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:7400; IPv4 works as before
            if sndhwm is not None:
                self._sock.sndhwm = sndhwm
            if rid is not None:
                self._sock.setsockopt(zmq.ROUTING_ID, rid)
            apply_curve(self._sock, keys)
            self._monitor = self._sock.get_monitor_socket(MONITOR_EVENTS)  # before connecting
            connect_item(self._sock, endpoint)
        except BaseException:
            if self._monitor is not None:
                self._sock.disable_monitor()
                self._monitor.close(0)
            self._sock.close(0)
            if self._own:
                self._ctx.term()
            raise
        self._link = LinkState(endpoint)

    # ---- requests ----

    async def submit(
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
    ) -> "asyncio.Future[Result]":
        """Send a request; returns (once it is handed to ZeroMQ) an :class:`asyncio.Future`
        of its :class:`~mediabatch.Result`. Arguments as :meth:`mediabatch.Client.submit`."""
        fields, payload = media_fields(audio=audio, rate=rate, wav=wav, video=video, tensor=tensor)
        tenant = self.tenant if tenant is None else tenant
        header = build_header(
            model,
            fields,
            len(payload),
            request_id=self._ids.next() if request_id is None else request_id,
            tenant=tenant,
            timeout_ms=self.timeout_ms if timeout_ms is None else timeout_ms,
            priority=priority,
        )
        return await self._send(header, payload, wait_timeout, labels)

    async def submit_raw(
        self,
        header: Union[RequestHeader, bytes],
        payload: bytes = b"",
        *,
        wait_timeout: Any = DEFAULT,
        labels: Any = DEFAULT,
    ) -> "asyncio.Future[Result]":
        """Send a header and payload as they are (see :meth:`mediabatch.Client.submit_raw`)."""
        header = header.encode() if isinstance(header, RequestHeader) else bytes(header)
        if len(header) < 20:
            raise ValueError("submit_raw: the header needs at least 20 bytes to be answered")
        if self._fleet is not None and int.from_bytes(header[6:8], "little") & FLAG_CANCEL:
            raise ValueError("submit_raw: a fleet client sends cancels itself (cancel())")
        return await self._send(header, bytes(payload), wait_timeout, labels)

    async def _send(self, header: bytes, payload: bytes, wait_timeout, labels):
        if self._closed:
            raise ClientClosed("the client is closed")
        loop = asyncio.get_running_loop()
        self._start(loop)
        key = (int.from_bytes(header[16:20], "little"), int.from_bytes(header[8:16], "little"))
        if key in self._pending:
            raise ValueError(
                f"request id {key[1]} of tenant {key[0]} is already in flight on this client"
            )
        wait = self.wait_timeout if wait_timeout is DEFAULT else wait_timeout
        if self._fleet is not None:
            # past max_outstanding requests held, wait for room
            while len(self._pending) >= self._fleet.max_outstanding and not self._closed:
                self._room.clear()
                await self._room.wait()
            if self._closed:
                raise ClientClosed("the client is closed")
            if key in self._pending:
                raise ValueError(
                    f"request id {key[1]} of tenant {key[0]} is already in flight on this "
                    "client")
        fut = loop.create_future()
        p = _Pending(fut, self.labels if labels is DEFAULT else labels, wait)
        self._pending[key] = p
        fut.add_done_callback(lambda f, key=key: self._done(key, f))
        if self._fleet is not None:
            self._fleet.submit(key, header, payload, p, time.monotonic())
            self._driver.kick()
        else:
            try:
                await self._sock.send_multipart([header, payload], copy=False)
            except BaseException:
                self._pending.pop(key, None)
                fut.cancel()
                raise
            self._stats["sent"] += 1
        if wait is not None and not fut.done():
            p.timer = loop.call_later(wait, self._expire, key, fut)
        return fut

    async def request(self, model: str, **kwargs: Any) -> Result:
        """Send a request and await its :class:`~mediabatch.Result`; a non-OK status
        raises its exception."""
        return await (await self.submit(model, **kwargs))

    async def run(self, model: str, **kwargs: Any) -> Any:
        """Send a request and await its decoded value (as :meth:`mediabatch.Client.run`)."""
        return (await self.request(model, **kwargs)).value

    async def cancel(self, future: "asyncio.Future[Result]") -> None:
        """Ask the service to cancel ``future``'s request: it ends with
        :class:`~mediabatch.Cancelled` if the request was still queued there, else with
        its result."""
        for key, p in self._pending.items():
            if p.future is future:
                if self._fleet is not None:
                    self._fleet.cancel(key, time.monotonic())
                    self._driver.kick()
                else:
                    await self._send_cancel(key)
                return

    # ---- the reader ----

    def _start(self, loop) -> None:
        if self._fleet is not None:
            if self._driver is None:
                self._driver = _FleetDriver(self._fleet, loop)
                self._room = asyncio.Event()
                self._driver.kick()
            return
        if self._reader is None:
            self._reader = loop.create_task(self._read(), name="mediabatch-reader")
            self._monitor_task = loop.create_task(self._watch(), name="mediabatch-monitor")

    async def _read(self) -> None:
        while True:
            self._deliver(None, await self._sock.recv_multipart())

    def _deliver(self, owner: Optional[_Pending], frames) -> None:
        """An answer: its request's future resolved (with @owner, the fleet's, only if
        that request is still the one pending under the answer's key)."""
        if not frames or len(frames[0]) != HEADER_LEN:
            self._stats["malformed"] += 1
            return
        key = (int.from_bytes(frames[0][16:20], "little"),
               int.from_bytes(frames[0][8:16], "little"))
        p = self._pending.get(key)
        if p is None or (owner is not None and p is not owner):
            self._stats["stray"] += 1
            return
        del self._pending[key]
        if self._room is not None:
            self._room.set()
        self._stats["answered"] += 1
        if p.timer is not None:
            p.timer.cancel()
        if p.future.done():
            return
        try:
            result = decode_response(frames, p.labels)
        except ProtocolError as e:
            self._stats["malformed"] += 1
            e.tenant_id, e.request_id = key
            p.future.set_exception(e)
            return
        err = result.error
        if err is not None:
            p.future.set_exception(err)
        else:
            p.future.set_result(result)

    async def _watch(self) -> None:
        while True:
            msg = await self._monitor.recv_multipart()
            if self._link.update(msg):
                self._stats["handshake_failed"] += 1

    def _done(self, key: _Key, fut: asyncio.Future) -> None:
        """A future cancelled by its caller (a cancelled task, wait_for): drop the request
        and ask the service to drop it too."""
        if not fut.cancelled():
            return
        p = self._pending.get(key)
        if p is None or p.future is not fut:
            return
        del self._pending[key]
        if p.timer is not None:
            p.timer.cancel()
        if self._fleet is not None:
            self._room.set()
            if not self._closed:
                self._fleet.forget(key, p)
                self._driver.kick()
        elif not self._closed:
            asyncio.get_running_loop().create_task(self._send_cancel(key))

    def _expire(self, key: _Key, fut: asyncio.Future) -> None:
        p = self._pending.get(key)
        if p is None or p.future is not fut or fut.done():
            return
        del self._pending[key]
        self._stats["timeouts"] += 1
        if self._fleet is not None:
            self._room.set()
            self._fleet.forget(key, p)
            self._driver.kick()
            suffix = self._fleet.suffix()
        else:
            suffix = self._link.suffix()
        fut.set_exception(
            ClientTimeout(
                f"no answer within {p.wait:g} s" + suffix,
                request_id=key[1],
                tenant_id=key[0],
            )
        )
        if self._fleet is None:
            asyncio.get_running_loop().create_task(self._send_cancel(key))

    async def _send_cancel(self, key: _Key) -> None:
        if self._closed:
            return
        tenant, rid = key
        await self._sock.send_multipart([RequestHeader.cancel(tenant, rid).encode(), b""])
        self._stats["cancels_sent"] += 1

    # ---- state ----

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def stats(self) -> Dict[str, int]:
        """Counters, as :attr:`mediabatch.Client.stats`."""
        f = self._fleet
        if f is None:
            return self._stats
        out = dict(self._stats)
        out.update(sent=f.sends, cancels_sent=f.cancels_sent, stray=out["stray"] + f.dups,
                   malformed=out["malformed"] + f.malformed,
                   handshake_failed=f.handshake_failed)
        return out

    @property
    def fleet(self) -> bool:
        """Whether this is a client of a fleet (several endpoints, or ``fleet=True``)."""
        return self._fleet is not None

    def fleet_stats(self) -> FleetStats:
        """A fleet client's figures (see :meth:`mediabatch.Client.fleet_stats`)."""
        if self._fleet is None:
            raise ValueError(f"fleet_stats: {self.endpoint} is one daemon, not a fleet")
        return self._fleet.stats()

    @property
    def connection(self) -> str:
        """What the socket monitor last said (see :attr:`mediabatch.Client.connection`)."""
        if self._fleet is not None:
            return self._fleet.describe()
        return self._link.describe()

    async def close(self) -> None:
        """Stop reading and close the socket; requests still waiting fail with
        :class:`~mediabatch.ClientClosed`."""
        if self._closed:
            return
        self._closed = True
        if self._fleet is not None:
            if self._driver is not None:
                self._driver.close()
            else:
                self._fleet.close()
            if self._room is not None:
                self._room.set()
        for task in (self._reader, self._monitor_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, zmq.ZMQError):
                    pass
        left, self._pending = self._pending, {}
        for key, p in left.items():
            if p.timer is not None:
                p.timer.cancel()
            if not p.future.done():
                p.future.set_exception(
                    ClientClosed("the client was closed before the answer came",
                                 request_id=key[1], tenant_id=key[0]))
        if self._fleet is not None:
            if self._own:
                self._ctx.term()
            return
        self._sock.disable_monitor()
        self._monitor.close(0)
        self._sock.close()
        if self._own:
            self._ctx.term()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<mediabatch.AsyncClient {self.endpoint} tenant {self.tenant}>"


class AsyncSubscriber:
    """Published results for asyncio programs (arguments as
    :class:`~mediabatch.Subscriber`, a fleet's list of PUB endpoints or ``fleet=True``
    and ``rcvhwm`` included: names are resolved again in the loop's default executor while
    :meth:`recv` waits; with CURVE a failed handshake is raised at once, as
    :class:`~mediabatch.Subscriber` raises it)::

        async with mediabatch.AsyncSubscriber(tenant=42) as sub:
            async for topic, result in sub:
                ...
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
        context: Optional[zmq.asyncio.Context] = None,
        fleet: bool = False,
        resolve_ms: Optional[int] = 5000,
        rcvhwm: int = 0,
    ) -> None:
        open_subscription(self, endpoint, fleet, resolve_ms, tenant, model, topics, labels,
                          timeout, resolve_keys(server_key, public_key, secret_key), rcvhwm,
                          context, zmq.asyncio.Context, zmq.asyncio.Poller)

    @property
    def publishers(self):
        """The PUB endpoints this subscriber is connected to (a fleet: as resolved)."""
        return self._pubs.publishers

    async def recv(self, timeout: Any = DEFAULT) -> Tuple[str, Result]:
        """The next published ``(topic, Result)``; :class:`~mediabatch.ClientTimeout` when
        none arrives within ``timeout`` seconds (default: the subscriber's), or at once when
        a CURVE handshake with a publisher failed and nothing is waiting (the reason names
        the publisher)."""
        timeout = self.timeout if timeout is DEFAULT else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            due = self._pubs.next_resolve
            if due is not None and now >= due:
                # a fleet's names again, off the loop (getaddrinfo blocks)
                found = await asyncio.get_running_loop().run_in_executor(
                    None, self._pubs.lookup)
                if self._sock.closed:
                    raise ClientClosed("the subscriber is closed")
                self._pubs.apply(found, time.monotonic())
                continue
            wait = None if deadline is None else max(0.0, deadline - now)
            resolving = due is not None and (wait is None or due - now < wait)
            if resolving:
                wait = due - now  # time to resolve again; the deadline still holds
            if self._sock.closed:
                raise ClientClosed("the subscriber is closed")
            events = dict(await self._poller.poll(
                None if wait is None else int(wait * 1000) + 1))
            if events.get(self._sock, 0) & zmq.POLLIN:
                try:
                    frames = await self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:  # another reader took it
                    continue
                topic, result = decode_publication(frames, self.labels)
                if self._filter is None or self._filter(topic):
                    return topic, result
                continue
            hs = self._handshakes
            if hs is not None and hs.mon in events:
                why = await self._read_handshakes(hs)
                if why is not None:
                    self._refusal = ClientTimeout(why)
                    raise self._refusal
                continue
            if resolving or deadline is None or time.monotonic() < deadline:
                continue
            why = f"nothing published on {self.endpoint} within {timeout:g} s"
            if hs is not None:
                why += hs.suffix(None if self._pubs.sources is None else self._pubs.publishers)
            raise ClientTimeout(why)

    @staticmethod
    async def _read_handshakes(hs: _Handshakes) -> Optional[str]:
        """What the monitor (an asyncio socket) has now, each event read once: the reasons
        of the handshakes that failed, or None (as :meth:`_Handshakes.read`)."""
        failed = []
        for _ in range(4096):
            try:
                msg = await hs.mon.recv_multipart(zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                break
            why = hs.update(msg)
            if why is not None and why not in failed:
                failed.append(why)
        return "; ".join(failed) or None

    def __aiter__(self) -> AsyncIterator[Tuple[str, Result]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Tuple[str, Result]]:
        while True:
            try:
                yield await self.recv()
            except ClientTimeout as e:
                if e is self._refusal:  # a failed CURVE handshake: raised, not an end
                    raise
                return

    def close(self) -> None:
        close_subscription(self)

    async def __aenter__(self) -> "AsyncSubscriber":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
