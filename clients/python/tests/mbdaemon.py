"""A real mediabatchd for the tests, as tests/e2e/mb_e2e.c starts one.

The binary is $MB_DAEMON (meson sets it). The daemon gets free loopback ports for its
ROUTER, PUB and HTTP endpoints, a config file (with ``devices: {cuda: {mode: "off"}}``
unless the test's YAML has a devices section), and is ready when ``GET /readyz`` says so;
:meth:`Daemon.stop` sends SIGTERM and returns its exit status (0 after a clean drain).
"""

from __future__ import annotations

import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from typing import List, Optional

_PR_SET_PDEATHSIG = 1


def daemon_path() -> Optional[str]:
    return os.environ.get("MB_DAEMON")


def require_daemon() -> str:
    """$MB_DAEMON, or skip the test module (run through tests/python/client_test.sh)."""
    path = daemon_path()
    if not path:
        raise unittest.SkipTest("MB_DAEMON is not set (run through meson test python/client)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"MB_DAEMON={path} is not an executable")
    return path


def _free_ports(n: int) -> List[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def http_get(port: int, path: str, timeout: float = 5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Daemon:
    """One mediabatchd. ``ingest``/``publish`` are its ZeroMQ endpoints."""

    def __init__(self, yaml: str = "", args: Optional[List[str]] = None) -> None:
        self.bin = require_daemon()
        self.yaml = yaml
        self.args = list(args or [])
        self.dir = tempfile.mkdtemp(prefix="mb-pyclient-daemon-")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Daemon":
        for _ in range(5):  # a port found free may be taken before the daemon binds it
            if self._start_once():
                return self
        raise RuntimeError("mediabatchd: its ports were taken 5 times in a row")

    def _start_once(self) -> bool:
        ingest, publish, http_port = _free_ports(3)
        self.ingest = f"tcp://127.0.0.1:{ingest}"
        self.publish = f"tcp://127.0.0.1:{publish}"
        self.http_port = http_port
        self.config = os.path.join(self.dir, "mediabatch.yaml")
        yaml = self.yaml
        if not any(line.startswith("devices:") for line in yaml.splitlines()):
            yaml += '\ndevices:\n  cuda: {mode: "off"}\n'
        with open(self.config, "w") as f:
            f.write(yaml)
        self.log = os.path.join(self.dir, "daemon.log")
        argv = [self.bin, "--config", self.config, "--ingest", self.ingest,
                "--publish", self.publish, "--metrics", f"127.0.0.1:{http_port}"]
        placement = os.environ.get("MB_E2E_PLACEMENT")
        if placement:
            argv += ["--placement", placement]
        argv += self.args
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text()
                self.proc = None
                if "Address already in use" in text:
                    return False
                raise RuntimeError(f"mediabatchd exited during start-up:\n{text}")
            try:
                status, body = http_get(http_port, "/readyz", timeout=1.0)
                if status == 200 or (status == 503 and "starting" not in body):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise RuntimeError(f"mediabatchd not ready after 30 s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            with open(self.log, "rb") as f:
                return f.read()[-65536:].decode("utf-8", "replace")
        except OSError:
            return ""

    def metric(self, series: str) -> float:
        """The value of one series of /metrics, e.g. 'mediabatch_inflight' (-1: absent)."""
        status, body = http_get(self.http_port, "/metrics")
        for line in body.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[1])
        return -1.0

    def wait_subscriptions(self, n: int, timeout: float = 30.0) -> None:
        """Wait until mediabatch_pub_subscriptions is at least n: a subscription takes
        effect once the daemon has read it, and nothing published before reaches it."""
        deadline = time.monotonic() + timeout
        while self.metric("mediabatch_pub_subscriptions") < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {n} subscriptions after {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit status (0: drained and exited cleanly). Its directory
        (config, log) is removed after a clean exit and kept otherwise."""
        if self.proc is None:
            return -1
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -1
        self.proc = None
        if rc == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def signal(self, sig: int) -> None:
        """Send @sig and return at once (wait() for the exit)."""
        if self.proc is not None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status once it exits (SIGKILL after @timeout: -1), as stop() says."""
        if self.proc is None:
            return -1
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -1
        self.proc = None
        if rc == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc
