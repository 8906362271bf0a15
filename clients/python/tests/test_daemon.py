"""Against a real mediabatchd (plaintext): results, concurrency, asyncio, errors, cancel,
subscriptions, and the codec cross-checked with the service's own (net/proto.c)."""

import asyncio
import concurrent.futures
import os
import tempfile
import time
import unittest

import numpy as np

import mediabatch
from mediabatch import Media, RequestHeader, Status

import mbdaemon

# clap waits 5 s for company before it runs a batch: its requests stay queued long enough
# to be cancelled, or to see their deadline pass. The other models keep their defaults.
CONFIG = """
models:
  - name: clap
    max_delay_us: 5000000
"""

D = None  # the daemon of this module


def setUpModule():
    global D
    D = mbdaemon.Daemon(CONFIG).start()


def tearDownModule():
    if D is None:
        return
    rc = D.stop()
    if rc != 0:
        raise AssertionError(f"mediabatchd exited {rc} after SIGTERM (expected 0):\n{D.log_text()}")


def tone(seconds=2.0, rate=16000, freq=440.0, dtype=np.float32):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return (x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)


def weights_dir(model):
    """The build's placeholder checkpoint of @model (beside the daemon, as it looks)."""
    return os.path.join(os.path.dirname(os.path.abspath(D.bin)), "weights", model)


class ResultsTest(unittest.TestCase):
    def setUp(self):
        self.client = mediabatch.Client(D.ingest, wait_timeout=60)

    def tearDown(self):
        self.client.close()

    def test_identity(self):
        r = self.client.request("identity", tensor=np.ones((3, 4), np.float32), tenant=3)
        self.assertTrue(r.ok)
        self.assertEqual((r.model, r.tenant_id, r.status, r.rows, r.cols),
                         ("identity", 3, Status.OK, 1, 1))
        np.testing.assert_array_equal(r.value, [[48.0]])  # the payload's length in bytes
        self.assertEqual(r.device, 0)
        self.assertGreaterEqual(r.batch_size, 1)
        # any media: identity takes every valid request
        self.assertEqual(
            self.client.run("identity", audio=np.zeros(10, np.int16), rate=8000)[0, 0], 20)
        self.assertEqual(
            self.client.run("identity", video=np.zeros((2, 3, 4, 3), np.uint8))[0, 0], 72)

    def test_logmel(self):
        for dtype in (np.float32, np.int16):
            with self.subTest(dtype=dtype):
                mel = self.client.run("logmel", audio=tone(2.0, dtype=dtype), rate=16000)
                self.assertEqual((mel.shape, mel.dtype), ((200, 80), np.float32))
                self.assertTrue(np.all(np.isfinite(mel)))
        # the same audio in either sample format: the same spectrum, near enough
        a = self.client.run("logmel", audio=tone(1.0), rate=16000)
        b = self.client.run("logmel", audio=tone(1.0, dtype=np.int16), rate=16000)
        self.assertLess(np.max(np.abs(a - b)), 0.05)

    def test_whisper_wav(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tone.wav")
            mediabatch.write_wav(path, tone(1.0), 16000)
            enc = self.client.run("whisper", wav=path)
        self.assertEqual(enc.shape[0], 1500)  # one 30 s window; width from the checkpoint
        self.assertEqual(enc.dtype, np.float32)

    def test_videomae_topk_labels(self):
        video = np.random.default_rng(1).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
        r = self.client.request("videomae", video=video)
        pairs = r.value
        self.assertEqual(len(pairs), r.rows)
        self.assertEqual(len(pairs), 5)
        for cid, score in pairs:
            self.assertIsInstance(cid, int)
            self.assertTrue(0 <= cid < 400 and 0 <= score <= 1)
        scores = [s for _, s in pairs]
        self.assertEqual(scores, sorted(scores, reverse=True))
        labels = mediabatch.load_labels(weights_dir("videomae"))
        self.assertEqual(len(labels), 400)
        named = self.client.run("videomae", video=video, labels=weights_dir("videomae"))
        self.assertEqual(named, [(labels[c], s) for c, s in pairs])
        own = self.client.run("videomae", video=video, labels={c: f"label-{c}" for c in range(400)})
        self.assertEqual(own, [(f"label-{c}", s) for c, s in pairs])

    def test_errors_carry_the_reason(self):
        with self.assertRaises(mediabatch.BadRequest) as cm:
            self.client.run("logmel", audio=tone(1.0, rate=44100), rate=44100)
        e = cm.exception
        self.assertEqual(e.status, Status.BAD_REQUEST)
        self.assertIn("sample_rate", e.reason)
        self.assertIn("16000", e.reason)
        self.assertIsInstance(e.request_id, int)
        self.assertFalse(e.duplicate)
        with self.assertRaises(mediabatch.UnknownModel) as cm:
            self.client.run("no-such-model", tensor=np.ones((1, 1)))
        self.assertEqual(cm.exception.status, Status.UNKNOWN_MODEL)
        self.assertIn("no-such-model", cm.exception.reason)
        self.assertIn("logmel", cm.exception.reason)  # the list of those served
        with self.assertRaises(mediabatch.BadRequest) as cm:  # video of the wrong shape
            self.client.run("videomae", video=np.zeros((8, 32, 32, 3), np.uint8))
        self.assertIn("videomae", cm.exception.reason)
        # the service's deadline: clap waits 5 s for a batch, the request allows 200 ms
        with self.assertRaises(mediabatch.Timeout) as cm:
            self.client.run("clap", audio=np.zeros(48000, np.float32), rate=48000, timeout_ms=200)
        self.assertEqual(cm.exception.status, Status.TIMEOUT)
        self.assertTrue(cm.exception.reason)


class ConcurrencyTest(unittest.TestCase):
    def test_200_futures_each_answered_once(self):
        n = 200
        with mediabatch.Client(D.ingest, wait_timeout=60) as c:
            futures = [c.submit("identity", tensor=np.zeros((1, i + 1), np.float32))
                       for i in range(n)]
            self.assertEqual(len({f.request_id for f in futures}), n)
            done, not_done = concurrent.futures.wait(futures, timeout=60)
            self.assertFalse(not_done)
            for i, f in enumerate(futures):
                r = f.result()
                self.assertEqual(r.request_id, f.request_id)
                self.assertEqual(r.value[0, 0], 4 * (i + 1))  # its own answer, not another's
            stats = c.stats
            self.assertEqual((stats["sent"], stats["answered"], stats["stray"], stats["malformed"]),
                             (n, n, 0, 0))
            self.assertEqual(c.in_flight, 0)

    def test_threads_share_a_client(self):
        with mediabatch.Client(D.ingest, wait_timeout=60) as c:
            def work(k):
                fs = [c.submit("identity", tensor=np.zeros((k + 1, j + 1), np.float32), tenant=k)
                      for j in range(25)]
                return [(f.result().value[0, 0], f.result().tenant_id) for f in fs]

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(work, range(4)))
            for k, rows in enumerate(results):
                self.assertEqual(rows, [(4.0 * (k + 1) * (j + 1), k) for j in range(25)])
            self.assertEqual(c.stats["stray"], 0)

    def test_asyncio(self):
        async def main():
            async with mediabatch.AsyncClient(D.ingest, wait_timeout=60) as c:
                mels = await asyncio.gather(
                    *(c.run("logmel", audio=tone(0.5 + 0.25 * i), rate=16000) for i in range(4)))
                self.assertEqual([m.shape for m in mels], [(50 + 25 * i, 80) for i in range(4)])
                futs = [await c.submit("identity", tensor=np.zeros((1, i + 1), np.float32))
                        for i in range(100)]
                results = await asyncio.gather(*futs)
                self.assertEqual([r.value[0, 0] for r in results],
                                 [4.0 * (i + 1) for i in range(100)])
                with self.assertRaises(mediabatch.BadRequest) as cm:
                    await c.run("logmel", audio=tone(1.0, rate=8000), rate=8000)
                self.assertIn("sample_rate", cm.exception.reason)
                with self.assertRaises(mediabatch.UnknownModel):
                    await c.request("nope", tensor=np.ones((1, 1)))
                # cancel: the service's verdict
                fut = await c.submit("clap", audio=np.zeros(48000, np.float32), rate=48000)
                await asyncio.sleep(0.3)
                await c.cancel(fut)
                with self.assertRaises(mediabatch.Cancelled):
                    await fut
                # a client-side wait that runs out
                with self.assertRaises(mediabatch.ClientTimeout):
                    await c.run("clap", audio=np.zeros(48000, np.float32), rate=48000,
                                wait_timeout=0.3)
                self.assertEqual(c.in_flight, 0)
                self.assertIn("connected", c.connection)

        asyncio.run(main())


class CancelTest(unittest.TestCase):
    def test_cancel_queued(self):
        with mediabatch.Client(D.ingest, wait_timeout=30) as c:
            clip = np.zeros(48000, np.float32)
            f = c.submit("clap", audio=clip, rate=48000, tenant=11)
            time.sleep(0.3)  # sent and queued (clap waits 5 s for a batch)
            t0 = time.monotonic()
            c.cancel(f)
            with self.assertRaises(mediabatch.Cancelled) as cm:
                f.result()
            self.assertLess(time.monotonic() - t0, 3.0)
            e = cm.exception
            self.assertEqual((e.status, e.request_id, e.tenant_id),
                             (Status.CANCELLED, f.request_id, 11))
            self.assertIn("cancel", e.reason)
            # a local cancel: the future is cancelled at once, the service drops it, and
            # its CANCELLED answer is ignored when it comes
            f2 = c.submit("clap", audio=clip, rate=48000, tenant=11)
            time.sleep(0.3)
            self.assertTrue(f2.cancel())
            with self.assertRaises(concurrent.futures.CancelledError):
                f2.result()
            deadline = time.monotonic() + 3
            while c.stats["stray"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(c.stats["stray"], 1)
            self.assertGreaterEqual(c.stats["cancels_sent"], 2)
            # cancelling an answered request changes nothing
            f3 = c.submit("identity", tensor=np.ones((1, 1)))
            f3.result()
            c.cancel(f3)
            self.assertTrue(f3.result().ok)

    def test_client_timeout_cancels(self):
        series = 'mediabatch_responses_total{model="clap",status="CANCELLED"}'
        with mediabatch.Client(D.ingest) as c:
            before = max(D.metric(series), 0)  # -1: not counted yet
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                c.run("clap", audio=np.zeros(48000, np.float32), rate=48000, wait_timeout=0.5)
            self.assertIn("no answer within 0.5 s", str(cm.exception))
            self.assertIsInstance(cm.exception, TimeoutError)
            # the client cancelled it at the service when it stopped waiting
            deadline = time.monotonic() + 3
            while D.metric(series) < before + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(D.metric(series), before + 1)
            self.assertEqual(c.stats["cancels_sent"], 1)


def have_ipv6_loopback():
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback (::1) on this host")
class IPv6Test(unittest.TestCase):
    """A daemon at tcp://[::1]:PORT (the reference allows IPv6 endpoints): the client and the
    asyncio client reach it (without ZMQ_IPV6 on their socket they never connected)."""

    def test_ipv6_endpoint(self):
        import socket
        ports = []
        for _ in range(2):
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", 0))
                ports.append(s.getsockname()[1])
        ingest = f"tcp://[::1]:{ports[0]}"
        d = mbdaemon.Daemon("", ["--ingest", ingest, "--publish", f"tcp://[::1]:{ports[1]}"])
        d.start()
        try:
            with mediabatch.Client(ingest, wait_timeout=20) as c:
                self.assertEqual(c.run("identity", tensor=np.ones((1, 4), np.float32))[0, 0], 16)

            async def one():
                async with mediabatch.AsyncClient(ingest, wait_timeout=20) as c:
                    return await c.run("identity", tensor=np.ones((2, 4), np.float32))

            self.assertEqual(asyncio.run(one())[0, 0], 32)
        finally:
            self.assertEqual(d.stop(), 0)


class SubscriberTest(unittest.TestCase):
    def _warm(self, client, sub, tenant, model="identity", **media):
        """Send until @sub sees one of @tenant's results: a subscription takes a moment to
        reach the service. Then drain what is left."""
        media = media or {"tensor": np.ones((1, 1))}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            client.run(model, tenant=tenant, **media)
            try:
                sub.recv(timeout=0.2)
                break
            except mediabatch.ClientTimeout:
                continue
        else:
            self.fail(f"the subscription to tenant {tenant} never took effect")
        for _ in sub:  # ends when nothing comes for sub.timeout
            pass

    def test_topics(self):
        with mediabatch.Client(D.ingest, wait_timeout=30) as c, \
                mediabatch.Subscriber(D.publish, tenant=71, timeout=0.5) as s71, \
                mediabatch.Subscriber(D.publish, tenant=7, timeout=0.5) as s7, \
                mediabatch.Subscriber(D.publish, tenant=71, model="logmel", timeout=0.5) as s71mel:
            self._warm(c, s71, 71)
            self._warm(c, s7, 7)
            self._warm(c, s71mel, 71, "logmel", audio=tone(0.1), rate=16000)
            for _ in s71:  # what the warming of s71mel published
                pass
            sent = {7: [], 71: []}
            for i in range(5):
                for tenant in (7, 71):
                    r = c.request("identity", tensor=np.zeros((1, i + 1)), tenant=tenant)
                    sent[tenant].append(r.request_id)
            mel = c.request("logmel", audio=tone(0.5), rate=16000, tenant=71)
            for sub, tenant in ((s7, 7), (s71, 71)):
                got = list(sub)
                topics = {t for t, _ in got}
                ids = [r.request_id for t, r in got if t == f"{tenant}/identity"]
                self.assertEqual(sorted(ids), sorted(sent[tenant]), (tenant, topics))
                self.assertTrue(all(r.tenant_id == tenant for _, r in got))
                expect = {f"{tenant}/identity"} | ({"71/logmel"} if tenant == 71 else set())
                self.assertEqual(topics, expect)
                for t, r in got:
                    if t.endswith("identity"):
                        i = sent[tenant].index(r.request_id)
                        self.assertEqual(r.value[0, 0], 4 * (i + 1))
            got = list(s71mel)
            self.assertTrue(got, "the tenant/model subscription received nothing")
            self.assertEqual({t for t, _ in got}, {"71/logmel"})
            self.assertIn(mel.request_id, [r.request_id for _, r in got])
            self.assertEqual(got[-1][1].value.shape, (50, 80))

    def test_errors_are_published(self):
        with mediabatch.Client(D.ingest, wait_timeout=30) as c, \
                mediabatch.Subscriber(D.publish, tenant=72, timeout=0.5) as s:
            self._warm(c, s, 72)
            with self.assertRaises(mediabatch.BadRequest):
                c.run("logmel", audio=tone(0.5, rate=8000), rate=8000, tenant=72)
            topic, r = s.recv(timeout=5)
            self.assertEqual(topic, "72/logmel")
            self.assertFalse(r.ok)
            self.assertIsInstance(r.error, mediabatch.BadRequest)
            self.assertIn("sample_rate", r.reason)
            with self.assertRaises(mediabatch.BadRequest):
                r.value

    def test_async_subscriber(self):
        async def main():
            async with mediabatch.AsyncClient(D.ingest, wait_timeout=30) as c, \
                    mediabatch.AsyncSubscriber(D.publish, tenant=73, timeout=0.3) as s:
                for _ in range(50):
                    await c.run("identity", tensor=np.ones((1, 1)), tenant=73)
                    try:
                        await s.recv()
                        break
                    except mediabatch.ClientTimeout:
                        pass
                async for _ in s:
                    pass
                r = await c.request("identity", tensor=np.ones((2, 2)), tenant=73)
                topic, pub = await s.recv(timeout=5)
                self.assertEqual((topic, pub.request_id), ("73/identity", r.request_id))
                np.testing.assert_array_equal(pub.value, [[16.0]])

        asyncio.run(main())


class CodecCrossCheckTest(unittest.TestCase):
    """Headers built here, judged by the service's decoder (net/proto.c): what the local
    check() accepts the service runs, and what it refuses the service refuses naming the
    same field."""

    def test_verdicts_match(self):
        good = dict(model="identity", media=Media.F32, frames=2, height=3, payload_len=24)
        cases = [
            {},
            {"flags": 2},  # PRIORITY
            {"timeout_ms": 5000},
            {"media": Media.PCM_S16LE, "channels": 1, "sample_rate": 8000, "frames": 0,
             "height": 0},
            {"media": Media.PCM_F32LE, "channels": 1, "sample_rate": 8000, "frames": 0,
             "height": 0},
            {"media": Media.RGB24, "channels": 3, "frames": 1, "height": 2, "width": 4},
            {"version": 2},
            {"flags": 8},
            {"model": "iden tity"},
            {"reserved": 3},
            {"frag_offset": 8},
            {"media": 7},
            {"media": Media.PCM_S16LE, "channels": 2, "sample_rate": 8000, "frames": 0,
             "height": 0},
            {"media": Media.PCM_S16LE, "channels": 1, "sample_rate": 0, "frames": 0,
             "height": 0},
            {"media": Media.PCM_F32LE, "channels": 1, "sample_rate": 8000, "frames": 0,
             "height": 0, "payload_len": 22},
            {"media": Media.RGB24, "channels": 3, "frames": 1, "height": 2, "width": 2},
            {"media": Media.RGB24, "channels": 1, "frames": 1, "height": 2, "width": 4},
            {"width": 1},
            {"channels": 1},
            {"frames": 3},
            {"height": 0},
        ]
        with mediabatch.Client(D.ingest, wait_timeout=30) as c:
            for i, change in enumerate(cases):
                with self.subTest(change=change):
                    h = RequestHeader(request_id=1000 + i, tenant_id=5, **{**good, **change})
                    payload = bytes(h.payload_len)
                    try:
                        h.check()
                        local = None
                    except mediabatch.HeaderError as e:
                        local = str(e)
                    f = c.submit_raw(h, payload)
                    try:
                        r = f.result()
                        remote = None
                        self.assertEqual(r.value[0, 0], len(payload))
                    except mediabatch.BadRequest as e:
                        remote = e.reason
                        self.assertEqual((e.request_id, e.tenant_id), (1000 + i, 5))
                    self.assertEqual(local is None, remote is None, (local, remote))
                    if local is not None:
                        self.assertEqual(local.split(":")[0], remote.split(":")[0], (local, remote))
            # a first frame that is not 64 bytes, with a readable request id: answered
            short = RequestHeader(request_id=2000, tenant_id=5, **good).encode()[:40]
            with self.assertRaises(mediabatch.BadRequest) as cm:
                c.submit_raw(short, bytes(24)).result()
            self.assertIn("64", cm.exception.reason)
            # a response header as a request
            resp = mediabatch.ResponseHeader(request_id=2001, tenant_id=5).encode()
            with self.assertRaises(mediabatch.BadRequest) as cm:
                c.submit_raw(resp, b"x").result()
            self.assertIn("magic", cm.exception.reason)


if __name__ == "__main__":
    unittest.main()
