#!/usr/bin/env python3
"""notify_test.py: mediabatchd under systemd's notification protocol, without systemd.

The daemon runs with NOTIFY_SOCKET naming a unix datagram socket this script listens on and
WATCHDOG_USEC=2000000, as systemd starts a Type=notify unit with WatchdogSec=2: it must send
STATUS= and READY=1 once it serves, WATCHDOG=1 about every second, STOPPING=1 when SIGTERM
starts the drain, and exit 0. It logs with --log-format json: every line it writes must be
one JSON object with ts, level, module and msg. Then the same start under the kernel's
PR_SET_MDWE (what MemoryDenyWriteExecute=yes enforces): the daemon must serve and drain
(deploy/mediabatchd-zmq.service sets it). Traffic: 127.0.0.1 only.
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def fail(msg, log=None):
    print("FAIL:", msg)
    if log:
        for line in log.splitlines():
            print("  daemon:", line)
    sys.exit(1)


def run(daemon, tmp, mdwe=False):
    p1, p2, p3 = free_ports(3)
    path = os.path.join(tmp, "notify-%d.sock" % int(mdwe))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    logpath = os.path.join(tmp, "daemon-%d.log" % int(mdwe))
    log = open(logpath, "w")

    def pre():
        if mdwe:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: kept across execve
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(65, 1, 0, 0, 0) != 0:
                os._exit(77)

    proc = subprocess.Popen(
        [daemon, "--ingest", "tcp://127.0.0.1:%d" % p1, "--publish",
         "tcp://127.0.0.1:%d" % p2, "--metrics", "127.0.0.1:%d" % p3,
         "--log-format", "json"],
        stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=pre)
    got = []
    t0 = time.monotonic()

    def collect(until, deadline):
        while time.monotonic() < deadline:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
            if until(got):
                return True
            if proc.poll() is not None:
                return until(got)
        return False

    def text():
        return open(logpath).read()

    if not collect(lambda g: "READY=1" in g, t0 + 60):
        if mdwe and proc.poll() == 77:
            sys.exit(77)
        proc.kill()
        fail("no READY=1 within 60 s (got %r, exit %r)" % (got, proc.poll()), text())
    if not any(m.startswith("STATUS=serving") for m in got):
        fail("no STATUS=serving before READY=1: %r" % got)
    urllib.request.urlopen("http://127.0.0.1:%d/readyz" % p3, timeout=5)
    t_ready = time.monotonic()
    if not collect(lambda g: g.count("WATCHDOG=1") >= 3, t_ready + 5):
        proc.kill()
        fail("fewer than 3 WATCHDOG=1 in 5 s with WATCHDOG_USEC=2000000: %r" % got, text())
    proc.send_signal(signal.SIGTERM)
    if not collect(lambda g: "STOPPING=1" in g, time.monotonic() + 30):
        proc.kill()
        fail("no STOPPING=1 after SIGTERM: %r" % got, text())
    rc = proc.wait(timeout=60)
    collect(lambda g: False, time.monotonic() + 0.3)  # what it sent after STOPPING=1
    log.close()
    sock.close()
    if rc != 0:
        fail("exit %d after SIGTERM, not 0" % rc, text())
    if not any(m.startswith("STATUS=draining") for m in got):
        fail("no STATUS=draining: %r" % got)
    lines = text().splitlines()
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            fail("a log line is not JSON: %r" % line, text())
        if set(obj) < {"ts", "level", "module", "msg"}:
            fail("a log line lacks ts/level/module/msg: %r" % line)
    if not any(json.loads(l)["msg"].startswith("mediabatchd ") and " ready " in
               json.loads(l)["msg"] for l in lines):
        fail("no ready line in the JSON log", text())
    return got, len(lines)


def main():
    daemon = os.environ.get("MB_DAEMON")
    if not daemon:
        print("set MB_DAEMON to the mediabatchd binary")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        got, n = run(daemon, tmp)
        print("notify: %s" % ", ".join(sorted(set(m.split("=")[0] for m in got))))
        print("notify: READY=1, STATUS=, %d WATCHDOG=1, STOPPING=1; %d JSON log lines parse"
              % (got.count("WATCHDOG=1"), n))
        try:
            run(daemon, tmp, mdwe=True)
            print("MemoryDenyWriteExecute (PR_SET_MDWE): served and drained")
        except SystemExit as e:
            if e.code == 77:
                print("MemoryDenyWriteExecute: PR_SET_MDWE not supported here: not checked")
            else:
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
