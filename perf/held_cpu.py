#!/usr/bin/env python3
"""The daemon's CPU while it holds replies for a requester that stopped reading.

A DEALER sends N logmel requests (1 s of 16 kHz PCM16: about 32 KiB of reply each) and never
reads; with zmq.router_sndhwm 10 the replies past what ZeroMQ and the kernel take are held by
the front door (mediabatch_inflight). After the models are done, the daemon's CPU time
(/proc/PID/stat) is sampled for --seconds: the cost of holding. Run once with --requests 0
(idle: the baseline) and once with N, in the same invocation (both by default).

    cd clients/python && PYTHONPATH=src:tests MB_DAEMON=../../build/mediabatchd \\
        /usr/bin/python3 ../../perf/held_cpu.py [--requests 2000] [--seconds 5]

Needs pyzmq and numpy; starts its own daemons on free loopback ports (clients/python/tests/
mbdaemon.py). Loopback only; bounded in count and time.
"""
import argparse
import os
import sys
import time

import numpy as np
import zmq

import mbdaemon
from mediabatch.protocol import Media, RequestHeader


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n: int, seconds: float) -> tuple:
    d = mbdaemon.Daemon("zmq:\n  router_sndhwm: 10\nservice:\n  max_inflight_per_client: 8192\n")
    d.start()
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.RCVHWM, 10)
        s.connect(d.ingest)
        pcm = (np.sin(np.arange(16000) / 10.0) * 8000).astype(np.int16).tobytes()
        for i in range(n):
            h = RequestHeader(request_id=i, tenant_id=1, model="logmel", media=int(Media.PCM_S16LE),
                              channels=1, sample_rate=16000, payload_len=len(pcm))
            s.send_multipart([h.encode(), pcm])
        deadline = time.monotonic() + 60  # the models finish: answered + held = n
        while time.monotonic() < deadline:
            time.sleep(0.5)
            done = d.metric('mediabatch_responses_total{model="logmel",status="OK"}')
            if done + d.metric("mediabatch_inflight") >= n and d.metric('mediabatch_queue_depth{model="logmel"}') <= 0:
                break
        time.sleep(1)
        held = d.metric("mediabatch_inflight")
        c0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
        time.sleep(seconds)
        pct = 100 * (cpu_seconds(d.proc.pid) - c0) / (time.monotonic() - t0)
        s.close(linger=0)
        return held, pct
    finally:
        ctx.term()
        d.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    if not 0 < a.requests <= 8000 or not 0 < a.seconds <= 60:
        print("held_cpu: --requests 1..8000, --seconds up to 60", file=sys.stderr)
        return 2
    _, idle = run(0, a.seconds)
    held, busy = run(a.requests, a.seconds)
    print(f"idle (nothing held): {idle:.1f}% of a core")
    print(f"{held:.0f} replies held: {busy:.1f}% of a core "
          f"({busy - idle:+.1f} points over idle, {(busy - idle) * 1000 / max(held, 1):.1f} per 1000 held)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
