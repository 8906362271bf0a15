"""What a socket monitor says about a connection, in words a user can act on."""

from __future__ import annotations

from typing import List, Optional

import zmq
from zmq.utils.monitor import parse_monitor_message

MONITOR_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class LinkState:
    """The connection's state from monitor events. A CURVE key the service does not list
    fails the handshake and ZeroMQ tells the application nothing else: the requests are
    simply not answered (docs/protocol.md, "Security"); this keeps the reason to give."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.state = f"not yet connected to {endpoint}"
        self.handshake_error: Optional[str] = None

    def update(self, msg: List[bytes]) -> bool:
        """Apply one monitor message; True when it reports a failed handshake."""
        try:
            ev = parse_monitor_message(msg)
        except Exception:  # pragma: no cover - a message of another libzmq
            return False
        e, where = ev["event"], self.endpoint
        if e == zmq.EVENT_CONNECTED:
            self.state = f"connected to {where}"
        elif e == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.state = f"connected to {where}, handshake done"
            self.handshake_error = None
        elif e == zmq.EVENT_DISCONNECTED:
            self.state = f"disconnected from {where}, reconnecting"
        elif e == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.handshake_error = (
                f"the CURVE handshake with {where} failed: the service does not accept "
                f"this client's key (ZAP status {ev.get('value')})"
            )
            return True
        elif e == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            self.handshake_error = (
                f"the handshake with {where} failed: one side uses CURVE and the other "
                "does not (check server_key and the service's security.mode)"
            )
            return True
        elif e == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            self.handshake_error = f"the handshake with {where} failed"
            return True
        return False

    def describe(self) -> str:
        return self.handshake_error or self.state

    def suffix(self) -> str:
        """To end a timeout's reason: why the connection does not work, or its state."""
        if self.handshake_error:
            return f"; {self.handshake_error}"
        return f" ({self.state})"
