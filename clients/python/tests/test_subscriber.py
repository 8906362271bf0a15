"""A subscriber's receive queue (README, "Published results"; the C library's
struct mb_subscriber_opts.rcvhwm): ``rcvhwm=`` reaches the SUB as ZMQ_RCVHWM before it
connects, for one publisher and for every publisher of a fleet (Subscriber and
AsyncSubscriber), bounds what it holds of a burst it does not read, and a bad value is a
ValueError naming it. Publishers are the test's own PUBs on inproc:// (no daemon, no
network). Every loop is bounded in count and in time."""

import asyncio
import itertools
import time
import unittest

import zmq
import zmq.asyncio

import mediabatch

_NAMES = itertools.count()


def inproc():
    return f"inproc://mb-test-subscriber-{next(_NAMES)}"


def publish(pub, request_id):
    h = mediabatch.ResponseHeader(request_id=request_id, tenant_id=3, model="identity",
                                  result_type=mediabatch.ResultType.F32, rows=1, cols=1,
                                  result_len=4)
    pub.send_multipart([b"3/identity", h.encode(), bytes(4)])


class RcvhwmTest(unittest.TestCase):
    def test_reaches_the_socket(self):
        """0 (the default) leaves ZeroMQ's 1000, -1 is ZeroMQ's 0 (no limit), N is N; one
        endpoint, a list, and fleet=True alike, for Subscriber and AsyncSubscriber."""
        cases = ((0, 1000), (-1, 0), (1, 1), (7, 7), (250000, 250000), (2**31 - 1, 2**31 - 1))

        def endpoints():
            return (inproc(), [inproc(), inproc()], f"{inproc()},{inproc()}")

        for rcvhwm, want in cases:
            for endpoint in endpoints():
                with self.subTest(rcvhwm=rcvhwm, endpoint=endpoint):
                    with mediabatch.Subscriber(endpoint, rcvhwm=rcvhwm) as sub:
                        self.assertEqual(sub._sock.getsockopt(zmq.RCVHWM), want)
            with mediabatch.Subscriber(inproc(), fleet=True, resolve_ms=-1,
                                       rcvhwm=rcvhwm) as sub:
                self.assertEqual(sub._sock.getsockopt(zmq.RCVHWM), want)
        with mediabatch.Subscriber(inproc()) as sub:  # no rcvhwm: ZeroMQ's own
            self.assertEqual(sub._sock.getsockopt(zmq.RCVHWM), 1000)

        async def main():
            for rcvhwm, want in cases:
                for endpoint in endpoints():
                    with self.subTest(asyncio=True, rcvhwm=rcvhwm, endpoint=endpoint):
                        async with mediabatch.AsyncSubscriber(endpoint, rcvhwm=rcvhwm) as sub:
                            self.assertEqual(sub._sock.getsockopt(zmq.RCVHWM), want)
            async with mediabatch.AsyncSubscriber(inproc()) as sub:
                self.assertEqual(sub._sock.getsockopt(zmq.RCVHWM), 1000)

        asyncio.run(main())

    def test_bad_values_refused(self):
        """Not an int of -1 and up (and at most a C int): ValueError naming rcvhwm, before
        anything is made (a context given stays unused)."""
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        actx = zmq.asyncio.Context()
        self.addCleanup(actx.term)
        for bad in (-2, -1000, 2**31, 1.5, 10.0, "10", None, True, False):
            for cls, c in ((mediabatch.Subscriber, ctx), (mediabatch.AsyncSubscriber, actx)):
                for endpoint in (inproc(), [inproc(), inproc()]):
                    with self.subTest(cls=cls.__name__, rcvhwm=bad, endpoint=endpoint):
                        with self.assertRaises(ValueError) as cm:
                            cls(endpoint, rcvhwm=bad, context=c)
                        self.assertTrue(str(cm.exception).startswith("rcvhwm: "),
                                        str(cm.exception))
                        self.assertIn(repr(bad), str(cm.exception))

    def burst_taken(self, ctx, endpoint, pubs, **kwargs):
        """How many of a burst of 100 publications per publisher (PUB queue: 1) reach a
        subscriber that reads only afterwards, per publisher: what its own queue holds."""
        with mediabatch.Subscriber(endpoint, context=ctx, timeout=0.05, **kwargs) as sub:
            for p in pubs:  # until each subscription has arrived
                deadline = time.monotonic() + 10
                while True:
                    publish(p, 10**6)
                    try:
                        sub.recv()
                        break
                    except mediabatch.ClientTimeout:
                        self.assertLess(time.monotonic(), deadline, "not subscribed")
            for _ in range(1000):  # the probes still queued
                try:
                    sub.recv()
                except mediabatch.ClientTimeout:
                    break
            for i, p in enumerate(pubs):
                for n in range(100):
                    publish(p, i * 1000 + n)
            taken = [0] * len(pubs)
            for _ in range(10 * len(pubs) * 100):
                try:
                    taken[sub.recv(timeout=0.3)[1].request_id // 1000] += 1
                except mediabatch.ClientTimeout:
                    break
            return taken

    def test_queue_holds_that_many(self):
        """A subscriber that does not read holds about rcvhwm publications of each
        publisher (inproc: exactly what its queue holds), of one and of a fleet's two;
        with ZeroMQ's 1000, or no limit, the whole burst."""
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        pubs = []
        for _ in range(2):
            p = ctx.socket(zmq.PUB)
            p.linger = 0
            p.sndhwm = 1
            p.bind(inproc())
            pubs.append(p)
            self.addCleanup(p.close)
        eps = [p.last_endpoint.decode() for p in pubs]
        one = self.burst_taken(ctx, eps[0], pubs[:1], rcvhwm=5)
        self.assertTrue(1 <= one[0] <= 10, one)
        both = self.burst_taken(ctx, eps, pubs, rcvhwm=5)
        self.assertTrue(all(1 <= n <= 10 for n in both), both)
        self.assertEqual(self.burst_taken(ctx, eps[0], pubs[:1]), [100])
        self.assertEqual(self.burst_taken(ctx, eps, pubs, rcvhwm=-1), [100, 100])


if __name__ == "__main__":
    unittest.main()
