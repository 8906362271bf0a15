"""CURVE keys (docs/protocol.md, "Security"): Z85 text, and ZeroMQ certificate files."""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import zmq
import zmq.auth
from zmq.utils import z85

__all__ = ["load_certificate", "curve_keypair", "Key"]

#: A CURVE key: 40 characters of Z85 (``str`` or ``bytes``), or the 32 raw bytes.
Key = Union[str, bytes]


def load_certificate(path: Union[str, "os.PathLike[str]"]) -> Tuple[bytes, Optional[bytes]]:
    """Read a ZeroMQ certificate file (CZMQ's zcert format, as ``mediabatch keygen NAME``
    writes: ``NAME.key`` holds the public key, ``NAME.key_secret`` both halves).

    Returns ``(public, secret)`` as Z85 bytes, ``secret`` ``None`` for a public
    certificate. A thin wrapper of :func:`zmq.auth.load_certificate` that says which file
    is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such certificate file")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise ValueError(
            f"{path}: not a ZeroMQ certificate (a zcert file with a curve section and its "
            f"public-key, as 'mediabatch keygen' writes): {e}"
        ) from None
    if not public:
        raise ValueError(f"{path}: not a ZeroMQ certificate (no public-key)")
    return public, secret or None


def curve_keypair() -> Tuple[bytes, bytes]:
    """A new key pair ``(public, secret)`` as Z85 bytes (:func:`zmq.curve_keypair`)."""
    return zmq.curve_keypair()


def _z85(key: Key, what: str) -> bytes:
    """A key as 40 bytes of Z85, checked."""
    if isinstance(key, str):
        key = key.encode("ascii")
    key = bytes(key)
    if len(key) == 32:
        return z85.encode(key)
    if len(key) != 40:
        raise ValueError(f"{what}: {len(key)} bytes; a CURVE key is 40 characters of Z85")
    try:
        z85.decode(key)
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{what}: not Z85 text") from None
    return key


def resolve_keys(
    server_key: Optional[Key], public_key: Optional[Key], secret_key: Optional[Key]
) -> Optional[Tuple[bytes, bytes, bytes]]:
    """The three keys a CURVE client needs, checked, or None for plaintext. The public key
    may be left out when the secret one is given (it is derived from it)."""
    if server_key is None and public_key is None and secret_key is None:
        return None
    if server_key is None:
        raise ValueError("CURVE: give server_key, the service's public key (server.key)")
    if secret_key is None:
        raise ValueError("CURVE: give secret_key, this client's secret key (NAME.key_secret)")
    server = _z85(server_key, "server_key")
    secret = _z85(secret_key, "secret_key")
    public = _z85(public_key, "public_key") if public_key is not None else None
    derived = zmq.curve_public(secret)
    if public is None:
        public = derived
    elif public != derived:
        raise ValueError("CURVE: public_key is not the public half of secret_key")
    return server, public, secret


def apply_curve(sock: zmq.Socket, keys: Optional[Tuple[bytes, bytes, bytes]]) -> None:
    """Set a socket's CURVE options (before connecting)."""
    if keys is None:
        return
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys
