"""A client of many daemons (the C library's net/fleet.c, in Python): one DEALER per
daemon, credit windows, least expected wait, failover with exactly one answer per request,
client-side deadlines, and names re-resolved. docs/operating.md, "Running a fleet", and
include/mediabatch/client.h, "Fleets", describe the behaviour; this is the same, with the
same defaults and the same reason texts.

:class:`Fleet` owns the sockets and the state and does no waiting of its own: an event
loop drives it. The synchronous client's I/O thread polls :meth:`Fleet.sockets` with a
:class:`zmq.Poller`; the asyncio client watches their file descriptors on its event loop.
Both call :meth:`Fleet.read` for a socket with something to read, :meth:`Fleet.service`
for the timers and the requests waiting for credit, and wait at most
:meth:`Fleet.timeout`. Every socket operation is non-blocking. Answers for the caller go
to the ``deliver`` callback as response frames (the client's own TIMEOUT and CANCELLED
answers too), with the owner the caller gave :meth:`Fleet.submit`.

State:
  daemons   one per resolved address: a DEALER and its socket monitor (up/down), the
            credit window and the figures; ``held`` is its requests in flight, in the order
            they were sent;
  entries   the requests held, by (tenant, request id): the caller's header and payload
            (a resend re-uses them), the deadline, the daemons tried;
  waiting   the entries without a daemon, in order (failed-over ones first).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import re
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import zmq
from zmq.utils.monitor import parse_monitor_message

from ._link import MONITOR_EVENTS, LinkState
from .curve import apply_curve
from .errors import ProtocolError
from .protocol import (
    DEVICE_NONE,
    RESPONSE_FLAG_DUPLICATE,
    RequestHeader,
    ResponseHeader,
    ResultType,
    Status,
    _decode_model,
)
from .results import check_response

__all__ = ["Fleet", "FleetStats", "DaemonStats", "FLEET_DEFAULTS", "ENDPOINT_FORMS",
           "parse_endpoints", "check_endpoint", "connect_item", "connect_error", "is_fleet",
           "endpoint_text"]

MAX_DAEMONS = 64
MAX_ATTEMPTS = 8
MAX_SOURCES = 16
#: the daemon's own TIMEOUT normally arrives first: the client's comes this much later
DEADLINE_GRACE = 0.25
#: a daemon that answered UNAVAILABLE or UNKNOWN_MODEL gets no new requests of that model for
#: this long, nor one that answered malformed or fell silent any (as fleet.c)
COOLDOWN = 1.0
#: the models a daemon can be cooling down for at once; one more refused: the whole daemon
MODEL_COOLDOWNS = 8
# a daemon just connected to, not yet up, counts as one to try for this long (s)
CONNECT_GRACE = 1.0
#: how often the timers (deadlines, silent daemons) are looked at while requests are held
TICK = 0.02
#: how far behind the least expected wait (in requests) a daemon still takes its turn
PICK_SLACK = 32.0
#: an idle daemon's answer time is forgotten with this time constant (s; see _answer_ms())
LAT_DECAY = 1.0

#: The options of a fleet and their defaults (client.h, struct mb_client_opts).
FLEET_DEFAULTS = {
    "window": 16,
    "max_window": 1024,
    "failover_ms": 10000,
    "request_timeout_ms": 60000,
    "max_outstanding": 4096,
    "resolve_ms": 5000,
}

#: What an endpoint (or an item of a list) may be: the second half of the reason texts.
ENDPOINT_FORMS = ("tcp://HOST:PORT (a name or an address, an IPv6 one in brackets; a port "
                  "1..65535), ipc://PATH or inproc://NAME")
# another transport's item, "SCHEME://ADDRESS": a scheme of letters, digits, '+', '-', '.'
_SCHEME_ITEM = re.compile(r"[A-Za-z0-9+.\-]+://.", re.S)
# what a host name or IPv4 address is made of ("*": every address, as ZeroMQ says)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*")
# an IPv6 address in brackets, with a zone ("fe80::1%eth0")
_V6_CHARS = _HOST_CHARS | frozenset("0123456789abcdefABCDEF:.%")

_STATUS_OK = int(Status.OK)
_STATUS_OVERLOADED = int(Status.OVERLOADED)
_STATUS_UNAVAILABLE = int(Status.UNAVAILABLE)
_STATUS_UNKNOWN_MODEL = int(Status.UNKNOWN_MODEL)
_U32 = struct.Struct("<I")

_Key = Tuple[int, int]  # (tenant, request id)


# ---- endpoint lists ----


@dataclasses.dataclass
class _Source:
    raw: str  # the item as given, blanks trimmed
    host: str = ""  # the host, IPv6 brackets removed
    port: str = ""
    literal: bool = True  # an address, or not tcp://: never resolved


def _is_address(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except (OSError, ValueError):
            pass
    return host == "*"


def endpoint_text(endpoint: Union[str, Sequence[str]]) -> str:
    if isinstance(endpoint, (bytes, bytearray)):
        endpoint = endpoint.decode()
    if isinstance(endpoint, str):
        return endpoint
    items = list(endpoint)
    if not all(isinstance(e, str) for e in items):
        raise TypeError("endpoint: a string, or a list of strings")
    return ",".join(items)


def is_fleet(endpoint: Union[str, Sequence[str]], fleet: bool) -> bool:
    """Whether these arguments make a fleet client: ``fleet=True``, several endpoints (a
    comma in the string, or a list of more than one)."""
    if fleet:
        return True
    if isinstance(endpoint, str):
        return "," in endpoint
    if isinstance(endpoint, (bytes, bytearray)):
        return b"," in endpoint
    return len(list(endpoint)) != 1 or "," in list(endpoint)[0]


def parse_endpoints(endpoint: Union[str, Sequence[str]]) -> Tuple[List[_Source], bool]:
    """A comma-separated endpoint list (or a list of endpoints): its items, and whether one
    names a host to resolve. Every item is checked alike, one alone too, as the C library's
    mb_fleet_parse_endpoints() does, with its texts: tcp://HOST:PORT (a name or an address,
    an IPv6 one in brackets; a port 1..65535), or another transport's SCHEME://ADDRESS,
    which only ZeroMQ can judge (the callers connect such items at once: see
    :func:`connect_error`). Raises ValueError naming the item and what is accepted: an
    empty item (a leading, trailing or double comma), an item that is not an endpoint, more
    than MAX_SOURCES items. No name is resolved here."""
    text = endpoint_text(endpoint)
    if not text.strip(" \t"):
        raise ValueError(f"no endpoint: give {ENDPOINT_FORMS}")
    sources: List[_Source] = []
    resolving = False
    for part in text.split(","):
        # a leading, trailing or double comma: an empty item, not one to skip
        item = part.strip(" \t")
        if not item or len(item.encode()) >= 128:
            raise ValueError(
                f"endpoint list '{text}': "
                + ("an empty item (a leading, trailing or double comma)" if not item
                   else "an item over 127 characters")
            )
        if len(sources) == MAX_SOURCES:
            raise ValueError(f"endpoint list '{text}': more than {MAX_SOURCES} items")
        src = _Source(item)
        sources.append(src)
        if item.startswith("tcp://"):
            ok = _parse_tcp(src)
            if ok:
                src.literal = _is_address(src.host)
                resolving = resolving or not src.literal
        else:
            # ipc://, inproc://, another transport: as given, for ZeroMQ to judge when the
            # caller connects it ("garbage", "tcp:/h:p" are not)
            ok = _SCHEME_ITEM.match(item) is not None
        if not ok:
            raise ValueError(f"endpoint '{item}': not {ENDPOINT_FORMS}")
    return sources, resolving


def check_endpoint(endpoint: Union[str, Sequence[str]]) -> str:
    """One endpoint, checked as an item of a list is (:func:`parse_endpoints`): the item,
    blanks trimmed; or ValueError naming it."""
    sources, _ = parse_endpoints(endpoint)
    if len(sources) != 1:  # pragma: no cover - the callers send lists to a fleet
        raise ValueError(f"endpoint '{endpoint_text(endpoint)}': one endpoint, not a list")
    return sources[0].raw


def connect_error(item: str, e: zmq.ZMQError) -> zmq.ZMQError:
    """An item ZeroMQ cannot connect (an unknown transport, "tcp://*:PORT"): ZeroMQ's
    error, naming the item and what is accepted (the C library's text)."""
    return zmq.ZMQError(e.errno, f"endpoint '{item}': cannot connect ({zmq.strerror(e.errno)}); "
                                 f"accepted: {ENDPOINT_FORMS}")


def connect_item(sock: zmq.Socket, item: str) -> None:
    """Connect @sock to @item (checked already), or raise :func:`connect_error`'s error."""
    try:
        sock.connect(item)
    except zmq.ZMQError as e:
        raise connect_error(item, e) from None


def lookup_sources(sources: Sequence[_Source], getaddrinfo: Optional[Callable] = None
                   ) -> List[Tuple[int, Optional[List[str]], str]]:
    """Resolve every source (blocking, for names): (source, endpoints or None, why)."""
    out: List[Tuple[int, Optional[List[str]], str]] = []
    for s, src in enumerate(sources):
        if src.literal:
            out.append((s, [src.raw], ""))
            continue
        try:
            infos = (getaddrinfo or socket.getaddrinfo)(
                src.host, src.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as e:
            out.append((s, None, f"'{src.host}' does not resolve ({e.strerror})"))
            continue
        except OSError as e:
            out.append((s, None, f"'{src.host}' does not resolve ({e})"))
            continue
        eps: List[str] = []
        for family, _, _, _, sockaddr in infos:
            # the port getaddrinfo gives back: the one asked for
            if family == socket.AF_INET:
                ep = f"tcp://{sockaddr[0]}:{sockaddr[1]}"
            elif family == socket.AF_INET6:
                ep = f"tcp://[{sockaddr[0]}]:{sockaddr[1]}"
            else:
                continue
            if ep not in eps:
                eps.append(ep)
        out.append((s, eps, ""))
    return out


def _parse_tcp(src: _Source) -> bool:
    hp = src.raw[6:]
    if hp.startswith("["):
        rb = hp.find("]")
        if rb < 0 or hp[rb + 1: rb + 2] != ":":
            return False
        host = hp[1:rb]
        if not host or len(host.encode()) >= 96 or not set(host) <= _V6_CHARS:
            return False
        port = hp[rb + 2:]
    else:
        colon = hp.rfind(":")
        if colon <= 0:
            return False
        host = hp[:colon]
        if len(host.encode()) >= 96 or not set(host) <= _HOST_CHARS:
            return False  # an IPv6 address goes in brackets
        port = hp[colon + 1:]
    # 1..65535: ZeroMQ itself takes "99999" (and connects elsewhere) and 0
    if (not port or len(port) > 5 or not all(c in "0123456789" for c in port)
            or not 1 <= int(port) <= 65535):
        return False
    src.host, src.port = host, port
    return True


# ---- figures ----


@dataclasses.dataclass
class DaemonStats:
    """One daemon of a fleet client (client.h, struct mb_client_daemon)."""

    endpoint: str  #: "tcp://ADDRESS:PORT", as resolved
    up: bool  #: connected (handshake done)
    gone: bool  #: no longer in the names' addresses: draining out
    window: float  #: its credit window
    in_flight: int  #: requests sent to it and not answered
    sent: int  #: requests sent to it (failovers included)
    answered: int  #: answers from it
    overloaded: int  #: of which OVERLOADED
    #: requests taken from it (disconnect, silence, UNAVAILABLE, UNKNOWN_MODEL, malformed)
    failed_over: int
    latency_ms: float  #: its recent answer time (moving average)
    #: why it is down when its last handshake failed ("" when it did not, or it is up):
    #: the text a client TIMEOUT's reason gives (as struct mb_client_daemon.refused)
    refused: str = ""


@dataclasses.dataclass
class FleetStats:
    """A fleet client's figures (client.h, struct mb_client_fleet_stats)."""

    daemons: List[DaemonStats]  #: known (up or not, gone ones included)
    waiting: int  #: requests waiting for credit
    resent: int  #: requests sent again to another daemon
    duplicates_dropped: int  #: answers after the first, dropped
    client_timeouts: int  #: requests answered TIMEOUT by the client
    resolve_failures: int  #: name resolutions that failed
    #: malformed answers, dropped (README, "Fleets"; client.h, mb_client_fleet_stats)
    malformed: int = 0


# ---- state ----


class _Daemon:
    __slots__ = ("endpoint", "source", "sock", "mon", "up", "gone", "refused", "seen",
                 "ever_up", "opened_at", "cooldown_until", "model_cooldowns", "window", "held",
                 "ok_run", "last_rx", "lat_ms", "sent", "answered", "overloaded", "failed_over",
                 "link")

    def __init__(self, endpoint: str, source: int, window: float) -> None:
        self.endpoint = endpoint
        self.source = source
        self.sock: Optional[zmq.Socket] = None
        self.mon: Optional[zmq.Socket] = None
        self.up = self.gone = self.refused = self.seen = False
        self.ever_up = False  # it has been up since it was opened
        self.opened_at = time.monotonic()  # when it was connected to
        # no new request at all until then (a malformed answer, silence); one model's
        # refusal (UNAVAILABLE, UNKNOWN_MODEL) is that model's only: its 16 header bytes ->
        # until when, at most MODEL_COOLDOWNS of them
        self.cooldown_until = 0.0
        self.model_cooldowns: Dict[bytes, float] = {}
        self.window = float(window)
        self.held: Dict[_Key, "_Entry"] = {}  # in flight on it, in the order sent
        self.ok_run = 0  # OK answers since the window last grew
        self.last_rx = 0.0
        self.lat_ms = 0.0
        self.sent = self.answered = self.overloaded = self.failed_over = 0
        self.link = LinkState(endpoint)


class _Entry:
    __slots__ = ("key", "header", "payload", "timeout_ms", "deadline", "sent_at", "daemon",
                 "tried", "owner", "seq")

    def __init__(self, key, header, payload, timeout_ms, deadline, owner, seq=0) -> None:
        self.key = key
        self.seq = seq  # submission order
        self.header = header  # the caller's; timeout_ms rewritten on each send
        self.payload = payload
        self.timeout_ms = timeout_ms  # the caller's
        self.deadline = deadline
        self.sent_at = 0.0
        self.daemon: Optional[_Daemon] = None  # in flight on it; None: waiting
        self.tried: List[_Daemon] = []
        self.owner = owner


def _cancel_frames(key: _Key) -> List[bytes]:
    return [RequestHeader.cancel(key[0], key[1]).encode(), b""]


class Fleet:
    """The fleet's state and sockets, driven by an event loop (see the module's text).

    Args:
        ctx: the ZeroMQ context the DEALERs are made in (a plain or an asyncio one: the
            sockets are plain ones either way, used without blocking).
        endpoint: a comma-separated list or a list of endpoints (names resolved to all
            their addresses).
        deliver: ``deliver(owner, frames)``: an answer for the caller.
        routing_id, keys: each DEALER's routing id and CURVE keys (resolve_keys()).
        window ... resolve_ms: as :data:`FLEET_DEFAULTS` (resolve_ms -1 or None: never).
        getaddrinfo: the resolver (default: socket.getaddrinfo, looked up at each use).
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: Union[str, Sequence[str]],
        deliver: Callable[[Any, List[bytes]], None],
        now: float,
        *,
        routing_id: Optional[bytes] = None,
        keys=None,
        window: int = 16,
        max_window: int = 1024,
        failover_ms: int = 10000,
        request_timeout_ms: int = 60000,
        max_outstanding: int = 4096,
        resolve_ms: Optional[int] = 5000,
        getaddrinfo: Optional[Callable] = None,
    ) -> None:
        for name, value in (("window", window), ("max_window", max_window),
                            ("failover_ms", failover_ms),
                            ("request_timeout_ms", request_timeout_ms),
                            ("max_outstanding", max_outstanding)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {value!r}; a positive integer")
        if resolve_ms is not None and (not isinstance(resolve_ms, int) or resolve_ms == 0
                                       or resolve_ms < -1):
            raise ValueError(f"resolve_ms: {resolve_ms!r}; a positive integer, or -1: never")
        self.sources, self.resolving = parse_endpoints(endpoint)
        self.ctx = ctx
        self.deliver = deliver
        self.routing_id = routing_id
        self.keys = keys
        self.window = min(window, max_window)
        self.max_window = max_window
        self.failover = failover_ms / 1000.0
        self.request_timeout_ms = request_timeout_ms
        self.max_outstanding = max_outstanding
        self.resolve_every = None if resolve_ms in (None, -1) else resolve_ms / 1000.0
        self.getaddrinfo = getaddrinfo
        self.resolve_err = ""
        self.daemons: List[_Daemon] = []
        self.rr = 0  # round robin among equals
        self.entries: Dict[_Key, _Entry] = {}
        self.waiting: "collections.OrderedDict[_Key, _Entry]" = collections.OrderedDict()
        self.deadlines: List[Tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self.version = 0  # changes when the set of sockets does
        self.next_tick = 0.0
        self.resent = self.dups = self.client_timeouts = self.resolve_failures = 0
        self.sends = self.cancels_sent = self.malformed = self.handshake_failed = 0
        self.closed = False
        #: service() resolves names itself when due (blocking); False: the driver calls
        #: lookup() elsewhere and apply_resolution() with its result
        self.inline_resolve = True
        #: called with a daemon's sockets before they are closed (a driver unwatches them)
        self.on_close: Optional[Callable[[List[zmq.Socket]], None]] = None
        self.next_resolve: Optional[float] = None
        # a literal item (an address, ipc://...) that cannot be connected now never can be:
        # the list is refused, naming it (a name's addresses are tried again later)
        err = self.apply_resolution(self.lookup(), now)
        if err is not None:
            self.close()
            raise err

    # ---- requests ----

    def full(self) -> bool:
        return len(self.entries) >= self.max_outstanding

    def submit(self, key: _Key, header: bytes, payload: Any, owner: Any, now: float) -> None:
        """Take a request (its encoded header and payload): it goes to a daemon with
        credit now, or waits for one. The caller keeps keys unique and the count under
        max_outstanding."""
        if key in self.entries:
            raise ValueError(
                f"request id {key[1]} of tenant {key[0]} is already in flight on this client")
        timeout_ms = _U32.unpack_from(header, 20)[0] if len(header) >= 24 else 0
        deadline = now + (timeout_ms or self.request_timeout_ms) / 1000.0 + DEADLINE_GRACE
        en = _Entry(key, header, payload, timeout_ms, deadline, owner, next(self._seq))
        self.entries[key] = en
        self.waiting[key] = en
        heapq.heappush(self.deadlines, (deadline, next(self._seq), en))
        self.service(now)

    def cancel(self, key: _Key, now: float) -> bool:
        """The caller's cancel: a request still waiting for credit is answered CANCELLED
        here; one a daemon holds is cancelled there (that daemon's answer is the caller's).
        False: no such request."""
        en = self.entries.get(key)
        if en is None:
            return False
        if en.daemon is None:
            self._answer_locally(en, int(Status.CANCELLED),
                                 "client: cancelled before any daemon had it")
        else:
            self._send_cancel(en.daemon, key)
        return True

    def forget(self, key: _Key, owner: Any = None) -> None:
        """Drop a request without an answer (the caller gave up on it); a daemon still
        holding it is asked to drop it too. With @owner, only that owner's request."""
        en = self.entries.get(key)
        if en is None or (owner is not None and en.owner is not owner):
            return
        if en.daemon is not None:
            self._send_cancel(en.daemon, key)
        self._free(en)

    def _free(self, en: _Entry) -> None:
        del self.entries[en.key]
        if en.daemon is not None:
            en.daemon.held.pop(en.key, None)
            en.daemon = None
        else:
            self.waiting.pop(en.key, None)
        en.payload = None

    def _answer_locally(self, en: _Entry, status: int, reason: str) -> None:
        """Answer @en with @status and a reason of the client's own, and forget it."""
        text = reason.encode()
        model = _decode_model(en.header[24:40]) if len(en.header) >= 40 else ""
        hdr = ResponseHeader(status=status, request_id=en.key[1], tenant_id=en.key[0],
                             device=DEVICE_NONE, model=model, result_type=ResultType.TEXT,
                             result_len=len(text))
        self._free(en)
        self.deliver(en.owner, [hdr.encode(), text])

    def _send_cancel(self, d: _Daemon, key: _Key) -> None:
        try:
            d.sock.send_multipart(_cancel_frames(key), zmq.NOBLOCK)
            self.cancels_sent += 1
        except zmq.ZMQError:
            pass

    # ---- daemons ----

    def _open(self, source: int, endpoint: str) -> Optional[_Daemon]:
        """A daemon for @endpoint; None when the fleet has MAX_DAEMONS already. Raises
        ZeroMQ's error when it cannot be connected."""
        if len(self.daemons) >= MAX_DAEMONS:
            return None
        d = _Daemon(endpoint, source, self.window)
        sock = zmq.Socket(self.ctx, zmq.DEALER)
        mon = None
        try:
            hwm = self.max_window * 2 + 16  # the window keeps it far below
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, hwm)
            sock.setsockopt(zmq.RCVHWM, hwm)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            if endpoint.startswith("tcp://["):
                sock.setsockopt(zmq.IPV6, 1)
            if self.routing_id is not None:
                sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
            apply_curve(sock, self.keys)
            addr = f"inproc://mediabatch-fleet-{id(self):x}-{next(_MONITORS)}"
            sock.monitor(addr, MONITOR_EVENTS)
            mon = zmq.Socket(self.ctx, zmq.PAIR)
            mon.setsockopt(zmq.LINGER, 0)
            mon.connect(addr)
            sock.connect(endpoint)
        except zmq.ZMQError:
            if mon is not None:
                mon.close(0)
            sock.close(0)
            raise
        d.sock, d.mon = sock, mon
        self.daemons.append(d)
        self.version += 1
        return d

    def _close(self, d: _Daemon) -> None:
        if self.on_close is not None:
            self.on_close([d.sock, d.mon])
        try:
            d.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        d.mon.close(0)
        d.sock.close(0)
        self.daemons.remove(d)
        self.version += 1

    def _fail_over(self, d: _Daemon) -> None:
        """Take every request off @d: back into the line for another one, in submission
        order, ahead of every request submitted after it (as fleet.c's fail_over()). The
        line holds earlier failovers' requests not resent yet (by submission), then those
        waiting for their first send (submitted after anything ever sent), then refused
        ones: the requests taken here merge into its head by submission number."""
        if not d.held:
            return
        moved = sorted(d.held.values(), key=lambda en: en.seq)
        d.held.clear()
        line = collections.OrderedDict()
        rest = iter(list(self.waiting.items()))
        pending = next(rest, None)
        for en in moved:
            while pending is not None and pending[1].seq < en.seq:
                line[pending[0]] = pending[1]
                pending = next(rest, None)
            d.failed_over += 1
            self.resent += 1
            en.daemon = None
            line[en.key] = en
        while pending is not None:
            line[pending[0]] = pending[1]
            pending = next(rest, None)
        self.waiting = line

    @staticmethod
    def _model_cooling(d: _Daemon, model: bytes, now: float) -> bool:
        """Whether @d refused @model less than COOLDOWN ago (fleet.c's model_cooling())."""
        until = d.model_cooldowns.get(model)
        return until is not None and until > now

    @staticmethod
    def _model_cool_down(d: _Daemon, model: bytes, now: float) -> None:
        """@d refused a request of @model (UNAVAILABLE, UNKNOWN_MODEL): no new request of
        that model for COOLDOWN, the other models still flow. A daemon that refuses more
        models at once than MODEL_COOLDOWNS (one draining, say) cools down whole."""
        cd = d.model_cooldowns
        if model not in cd and len(cd) >= MODEL_COOLDOWNS:
            for m in [m for m, until in cd.items() if until <= now]:
                del cd[m]
            if len(cd) >= MODEL_COOLDOWNS:
                d.cooldown_until = now + COOLDOWN
                return
        cd[model] = now + COOLDOWN

    def _someone_else(self, en: _Entry, now: float) -> bool:
        """Whether a daemon taking requests of @en's model has not had @en yet: one up and
        not cooling down (whole or for that model), or one connected to less than
        CONNECT_GRACE ago and not up yet (at start-up, the first daemon's refusals wait for
        the others' handshakes), as fleet.c."""
        if len(en.tried) >= MAX_ATTEMPTS:
            return False
        model = en.header[24:40]
        for d in self.daemons:
            taking = d.up or (not d.ever_up and not d.refused
                              and now - d.opened_at < CONNECT_GRACE)
            if (taking and not d.gone and d.cooldown_until <= now and d not in en.tried
                    and not self._model_cooling(d, model, now)):
                return True
        return False

    @staticmethod
    def _answer_ms(d: _Daemon, min_lat: float, now: float) -> float:
        """The daemon's answer time as the pick weighs it (as the C library's answer_ms()).

        Its moving average; but while it holds requests, at least the time it has been
        silent (since its last answer, or since the first request it holds was sent), so
        that one that stopped answering stops looking fast before ``failover_ms`` moves its
        requests; and while it holds none, the average decays toward the fleet's fastest
        with the time since its last answer (LAT_DECAY), so that one slow moment does not
        keep it from ever being tried again.
        """
        lat = d.lat_ms
        if d.last_rx == 0 or now <= d.last_rx:
            return lat
        if d.held:
            return max(lat, (now - d.last_rx) * 1000.0)
        if lat > 0 and min_lat > 0 and lat > min_lat:
            x = (now - d.last_rx) / LAT_DECAY  # about e^-x, the C library's formula
            lat = min_lat + (lat - min_lat) / (1.0 + x + x * x / 2.0 + x * x * x / 6.0)
        return lat

    def _pick(self, en: _Entry, now: float) -> Tuple[Optional[_Daemon], bool]:
        """The daemon to send @en to now, or None; and whether a daemon with credit was
        passed over only because it is cooling down for @en's model (this request waits
        for the others, one of another model may go there). As fleet.c's pick(): when every
        up daemon is cooling down for the model, the request goes to one of them all the
        same, so that a model refused fleet-wide is answered (that refusal) at once."""
        # a request goes to each daemon once while there are others it has not seen
        others = bool(en.tried) and self._someone_else(en, now)
        daemons = self.daemons
        n = len(daemons)
        if n == 0:
            return None, False
        model = en.header[24:40]
        for_model = others  # a daemon that is not cooling down for its model
        model_held = False
        min_lat = 0.0
        for d in daemons:
            if not d.up:
                continue
            if d.lat_ms > 0 and (min_lat == 0 or d.lat_ms < min_lat):
                min_lat = d.lat_ms
            if (not for_model and not d.gone and d.cooldown_until <= now
                    and not self._model_cooling(d, model, now)):
                for_model = True
        # Expected wait: requests ahead times its answer time relative to the fastest
        # daemon's. Within twice the fastest, daemons count as equal (answer times jitter
        # with scheduling): only one clearly slower is weighed down. Among the daemons
        # within PICK_SLACK of the least expected wait, round robin: equal daemons get equal
        # shares, and one that falls PICK_SLACK requests behind is skipped until it catches
        # up (as the C library does).
        costs: List[Optional[float]] = [None] * n
        best_cost: Optional[float] = None
        for i, d in enumerate(daemons):
            if (not d.up or d.gone or d.cooldown_until > now
                    or len(d.held) >= int(d.window)):
                continue
            if others and d in en.tried:
                continue
            if for_model and d.model_cooldowns and self._model_cooling(d, model, now):
                model_held = True
                continue
            lat = self._answer_ms(d, min_lat, now)
            lat = lat / min_lat if lat > 0 and min_lat > 0 else 1.0
            cost = (len(d.held) + 1) * (lat if lat >= 2.0 else 1.0)
            costs[i] = cost
            if best_cost is None or cost < best_cost:
                best_cost = cost
        if best_cost is None:
            return None, model_held
        start = self.rr % n
        for k in range(n):
            i = (start + k) % n
            c = costs[i]
            if c is not None and c <= best_cost + PICK_SLACK:
                self.rr = (i + 1) % n
                return daemons[i], model_held
        return None, model_held  # pragma: no cover - best_cost is one of them

    def _send_to(self, en: _Entry, d: _Daemon, now: float) -> bool:
        header = en.header
        # the time left, so that no daemon works past the caller's deadline: on every send
        # of a request that has a timeout, and on a resend of one that had none (its
        # deadline is then request_timeout_ms; the first send leaves the model's default)
        if (en.timeout_ms > 0 or en.tried) and len(header) >= 24:
            left = en.deadline - DEADLINE_GRACE - now if en.deadline > now + DEADLINE_GRACE \
                else 0.001
            header = header[:20] + _U32.pack(max(1, int(left * 1000))) + header[24:]
        try:
            d.sock.send_multipart([header, en.payload], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            return False
        if len(en.tried) < MAX_ATTEMPTS and d not in en.tried:
            en.tried.append(d)
        en.daemon = d
        en.sent_at = now
        d.held[en.key] = en
        d.sent += 1
        self.sends += 1
        if d.last_rx == 0 or len(d.held) == 1:
            d.last_rx = now  # silence is counted from the first request it holds
        return True

    def _dispatch(self, now: float) -> None:
        """Send what waits, in order, while some daemon has credit. A request of a model
        that the daemons with credit are cooling down for waits without holding up those of
        other models (as fleet.c's dispatch())."""
        sent = []
        held = set()  # models that cannot go this time
        for key, en in self.waiting.items():
            if not en.tried and en.header[24:40] in held:
                continue  # as the one before of its model
            d, model_held = self._pick(en, now)
            if d is None:
                if not en.tried:
                    if not model_held:
                        break  # no daemon has credit: the rest wait too
                    held.add(en.header[24:40])
                # none for this one; the next may go where this one has been, or be of
                # another model
                continue
            if self._send_to(en, d, now):
                sent.append(key)
            else:
                d.up = False  # not connected after all: the monitor says when
        for key in sent:
            del self.waiting[key]

    # ---- names ----

    def lookup(self) -> List[Tuple[int, Optional[List[str]], str]]:
        """Resolve every source (blocking, for names): (source, endpoints or None, why)."""
        return lookup_sources(self.sources, self.getaddrinfo)

    def resolve_due(self, now: float) -> bool:
        return (self.resolving and self.next_resolve is not None and now >= self.next_resolve)

    def apply_resolution(self, found, now: float) -> Optional[Exception]:
        """New addresses become daemons, vanished ones go (lookup()'s result). Returns the
        error of the first literal item (an address, ipc://...) that could not be connected
        or found no room (at the start, that refuses the list), else None; a name's
        addresses that cannot be connected are tried again at the next resolution."""
        err: Optional[Exception] = None
        if self.closed:
            return None
        if self.resolving and self.resolve_every is not None:
            self.next_resolve = now + self.resolve_every
        for d in self.daemons:
            d.seen = False
        for s, eps, why in found:
            if eps is None:
                self.resolve_failures += 1
                self.resolve_err = why
                # keep what it resolved to before: a DNS hiccup is not a fleet gone
                for d in self.daemons:
                    if d.source == s:
                        d.seen = True
                continue
            for ep in eps:
                for d in self.daemons:
                    if d.endpoint == ep:
                        d.seen = True
                        d.gone = False  # back again, if it had gone
                        break
                else:
                    src = self.sources[s]
                    try:
                        d = self._open(s, ep)
                    except zmq.ZMQError as e:
                        if src.literal and err is None:
                            err = connect_error(src.raw, e)
                        continue
                    if d is not None:
                        d.seen = True
                    elif src.literal and err is None:
                        err = ValueError(f"endpoint '{src.raw}': more than {MAX_DAEMONS} "
                                         "daemons in the fleet")
        for d in list(self.daemons):
            if d.seen:
                continue
            d.gone = True
            if not d.held:
                self._close(d)
        return err

    # ---- events ----

    def sockets(self) -> List[Tuple[zmq.Socket, _Daemon]]:
        """Every socket to watch for input (each daemon's DEALER and monitor)."""
        out = []
        for d in self.daemons:
            out.append((d.sock, d))
            out.append((d.mon, d))
        return out

    def read(self, sock: zmq.Socket, d: _Daemon, now: float) -> None:
        """Read what @sock (a daemon's DEALER or monitor) has, without waiting."""
        if d.sock is None or d.sock.closed:
            return
        if sock is d.mon:
            self._monitor_events(d)
        else:
            self._read_answers(d, now)

    def read_all(self, now: float) -> None:
        for d in list(self.daemons):
            if not d.sock.closed:
                self._monitor_events(d)
            if not d.sock.closed:
                self._read_answers(d, now)

    def _monitor_events(self, d: _Daemon) -> None:
        while True:
            try:
                msg = d.mon.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if d.link.update(msg):
                self.handshake_failed += 1
            try:
                event = parse_monitor_message(msg)["event"]
            except Exception:  # pragma: no cover - a message of another libzmq
                continue
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                d.up = d.ever_up = True
                d.refused = False
            elif event == zmq.EVENT_DISCONNECTED:
                d.up = False
                self._fail_over(d)
            elif event in (zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                           zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                           zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                # the key is refused, or no CURVE there
                d.up = False
                d.refused = True
                self._fail_over(d)

    def _read_answers(self, d: _Daemon, now: float) -> None:
        for _ in range(256):
            try:
                frames = d.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            try:
                check_response(frames)
            except ProtocolError as e:
                self._on_malformed(d, e.response, e.reason, now)
            else:
                self._on_answer(d, frames, now)
            if d.sock.closed:
                return

    def _on_answer(self, d: _Daemon, frames: List[bytes], now: float) -> None:
        h = frames[0]
        status = int.from_bytes(h[6:8], "little")
        key = (int.from_bytes(h[16:20], "little"), int.from_bytes(h[8:16], "little"))
        flags = int.from_bytes(h[54:56], "little")
        d.last_rx = now
        d.answered += 1
        en = self.entries.get(key)
        if en is None or d not in en.tried or (flags & RESPONSE_FLAG_DUPLICATE):
            self.dups += 1  # a late answer of a request answered already, or failed over
            return
        if en.daemon is d:
            ms = (now - en.sent_at) * 1000.0
            del d.held[key]
            en.daemon = None
            self.waiting.pop(key, None)
            d.lat_ms = d.lat_ms * 0.875 + ms * 0.125 if d.lat_ms > 0 else ms
            current = True
        else:
            current = False
        retry = False
        if status == _STATUS_OK:
            d.ok_run += 1
            if d.ok_run >= int(d.window):
                d.ok_run = 0
                if d.window < self.max_window:
                    d.window += 1
        elif status == _STATUS_OVERLOADED:
            d.overloaded += 1
            d.window = d.window / 2 if d.window / 2 >= 1 else 1.0
            d.ok_run = 0
            retry = True
        elif status in (_STATUS_UNAVAILABLE, _STATUS_UNKNOWN_MODEL):
            # that model there (disabled, breaker open, not loaded; or the daemon drains,
            # and its models cool down one by one): the daemon's other models keep flowing
            self._model_cool_down(d, en.header[24:40], now)
            retry = True
        if retry and not current:
            # an earlier attempt's refusal: the request is elsewhere now, or waits for it
            return
        if retry and self._someone_else(en, now):
            if status != _STATUS_OVERLOADED:
                d.failed_over += 1
            self.resent += 1
            self.waiting[key] = en  # at the end of the line
            return
        self._cancel_others(en, d)
        self._free(en)
        self.deliver(en.owner, frames)

    def _cancel_others(self, en: _Entry, d: _Daemon) -> None:
        """Every other daemon that had @en may still be working on it (a later one, or an
        earlier one failed over for its silence): a cancel each, so that it stops; one that
        does not hold it ignores the cancel."""
        if en.daemon is not None and en.daemon is not d:
            self._send_cancel(en.daemon, en.key)
        for o in en.tried:
            if o is not d and o is not en.daemon and o.up and not o.gone:
                self._send_cancel(o, en.key)

    def _on_malformed(self, d: _Daemon, h: Optional[ResponseHeader], why: str,
                      now: float) -> None:
        """A malformed answer from @d (check_response()'s @why; @h its header, None when
        that did not decode), as fleet.c's on_malformed(): counted, never the caller's. When
        the header names a request @d holds, @d has failed it, as with UNAVAILABLE: the
        request goes to a daemon that has not had it, or, with none left, the caller gets
        UNAVAILABLE with a reason that names the daemon and what was wrong (the others that
        had it are sent a cancel). An answer whose header does not decode names no request:
        the one it was meant for stays where it is, and @d's silence fails it over
        (failover_ms) or its deadline answers it TIMEOUT."""
        self.malformed += 1
        if h is None:  # not even the header decoded
            return
        key = (h.tenant_id, h.request_id)
        en = self.entries.get(key)
        if en is None or d not in en.tried or h.duplicate:
            return  # none of the requests it holds: nothing to fail
        if en.daemon is not d:
            return  # an earlier attempt's: the request is elsewhere now, or waits
        d.last_rx = now  # it answers, if badly: not silent
        d.cooldown_until = now + COOLDOWN
        if self._someone_else(en, now):
            del d.held[key]
            en.daemon = None
            d.failed_over += 1
            self.resent += 1
            self.waiting[key] = en  # at the end of the line
            return
        reason = (f"client: malformed answer from {d.endpoint}: {why} ({len(en.tried)} "
                  "daemon(s) tried)")
        self._cancel_others(en, d)
        self._answer_locally(en, int(Status.UNAVAILABLE), reason)

    # ---- timers ----

    def timeout(self, now: float) -> Optional[float]:
        """Seconds until service() has work of its own (None: nothing to wait for)."""
        wait = None
        if self.entries:
            wait = max(0.0, min(TICK, self.next_tick - now))
        if self.resolving and self.next_resolve is not None:
            r = max(0.0, self.next_resolve - now)
            wait = r if wait is None else min(wait, r)
        return wait

    def service(self, now: float) -> None:
        """The timers, names due for resolution (with inline_resolve), and the requests
        waiting for credit."""
        if self.closed:
            return
        if self.inline_resolve and self.resolve_due(now):
            self.apply_resolution(self.lookup(), now)
        if now >= self.next_tick:
            self._tick(now)
            self.next_tick = now + TICK
        if self.waiting:
            self._dispatch(now)

    def _tick(self, now: float) -> None:
        """Deadlines and silent daemons."""
        for d in list(self.daemons):
            if d.held and now - d.last_rx > self.failover:
                d.cooldown_until = now + self.failover  # it must answer something to get more
                self._fail_over(d)
            if d.gone and not d.held:
                self._close(d)
        heap = self.deadlines
        while heap and heap[0][0] <= now:
            _, _, en = heapq.heappop(heap)
            if self.entries.get(en.key) is not en:
                continue  # answered or dropped meanwhile
            self.client_timeouts += 1
            within = en.timeout_ms or self.request_timeout_ms
            d = en.daemon
            if d is not None:
                self._send_cancel(d, en.key)
                reason = (f"client: no answer within {within} ms (last sent to {d.endpoint}, "
                          f"{len(en.tried)} daemon(s) tried)")
            elif en.tried:  # failed over, and no other daemon took it
                reason = (f"client: no answer within {within} ms ({len(en.tried)} daemon(s) "
                          f"tried; waiting for another when the deadline came)")
            else:
                up = sum(1 for x in self.daemons if x.up and not x.gone)
                extra = f"; {self.resolve_err}" if self.resolve_err else ""
                refused = [x.link.handshake_error for x in self.daemons
                           if x.refused and not x.gone and x.link.handshake_error]
                if refused:
                    extra += "; " + refused[0]
                reason = f"client: no daemon took it within {within} ms ({up} of the fleet up{extra})"
            self._answer_locally(en, int(Status.TIMEOUT), reason)
        if len(heap) > 4096 and len(heap) > 4 * len(self.entries):
            # answered requests leave their deadlines behind until they are due
            self.deadlines = [(en.deadline, next(self._seq), en) for en in self.entries.values()]
            heapq.heapify(self.deadlines)

    # ---- state ----

    def stats(self) -> FleetStats:
        return FleetStats(
            daemons=[DaemonStats(d.endpoint, d.up, d.gone, d.window, len(d.held), d.sent,
                                 d.answered, d.overloaded, d.failed_over, d.lat_ms,
                                 "" if d.up or not d.refused
                                 else d.link.handshake_error or "")
                     for d in self.daemons],
            waiting=len(self.waiting),
            resent=self.resent,
            duplicates_dropped=self.dups,
            client_timeouts=self.client_timeouts,
            resolve_failures=self.resolve_failures,
            malformed=self.malformed,
        )

    def suffix(self) -> str:
        """To end a client-side timeout's reason: how many daemons are up, and why a
        handshake failed if one did."""
        up = sum(1 for d in self.daemons if d.up and not d.gone)
        refused = [d.link.handshake_error for d in self.daemons
                   if d.refused and not d.gone and d.link.handshake_error]
        return f" ({up} of the fleet up)" + (f"; {refused[0]}" if refused else "")

    def describe(self) -> str:
        """Each daemon's connection, as the socket monitor last said."""
        return "; ".join(d.link.describe() for d in self.daemons) or "no daemon"

    def close(self) -> List[Any]:
        """Close every socket; the owners of the requests still held, in order."""
        if self.closed:
            return []
        self.closed = True
        for d in list(self.daemons):
            self._close(d)
        owners = [en.owner for en in self.entries.values()]
        self.entries.clear()
        self.waiting.clear()
        self.deadlines = []
        return owners


_MONITORS = itertools.count()
