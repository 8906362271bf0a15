"""Against a real mediabatchd with security.mode curve (docs/operating.md, "Security and
tenancy"): a listed key is served, a foreign tenant is UNAUTHORIZED with the reason, a key
the service does not list gets no answer (the client's wait runs out and says why), a
subscriber receives only its tenants' results, and one whose handshake fails (a key not
listed, a wrong server key) is told so by recv() at once."""

import asyncio
import os
import shutil
import tempfile
import time
import unittest

import numpy as np
import zmq
import zmq.auth

import mediabatch

import mbdaemon

KEYS = None  # the directory of this module's certificates
D = None
BOB = None  # (public, secret): a key listed inline, tenant 43
EVE = None  # a key the service does not list


def setUpModule():
    global KEYS, D, BOB, EVE
    mbdaemon.require_daemon()
    KEYS = tempfile.mkdtemp(prefix="mb-pyclient-keys-")
    # the service's certificate and alice's, as zcert files (what `mediabatch keygen` writes)
    server_public_file, server_secret_file = zmq.auth.create_certificates(KEYS, "server")
    os.chmod(server_secret_file, 0o600)  # the daemon refuses a secret others may read
    zmq.auth.create_certificates(KEYS, "alice")
    alice_public, _ = zmq.auth.load_certificate(os.path.join(KEYS, "alice.key"))
    BOB = zmq.curve_keypair()
    EVE = zmq.curve_keypair()
    yaml = f"""
security:
  mode: curve
  server_key: {server_secret_file}
  clients:
    - name: alice
      public_key: "{alice_public.decode()}"
      tenants: [42]
    - name: bob
      public_key: "{BOB[0].decode()}"
      tenants: [43]
"""
    D = mbdaemon.Daemon(yaml).start()


def tearDownModule():
    if KEYS is not None:
        shutil.rmtree(KEYS, ignore_errors=True)
    if D is None:
        return
    rc = D.stop()
    if rc != 0:
        raise AssertionError(f"mediabatchd exited {rc} after SIGTERM (expected 0):\n{D.log_text()}")


def server_key():
    public, secret = mediabatch.load_certificate(os.path.join(KEYS, "server.key"))
    assert secret is None  # the public certificate holds no secret
    return public


def alice_keys():
    public, secret = mediabatch.load_certificate(os.path.join(KEYS, "alice.key_secret"))
    return {"server_key": server_key(), "public_key": public, "secret_key": secret}


ONE = np.ones((1, 1), np.float32)


class CurveTest(unittest.TestCase):
    def test_listed_key_is_served(self):
        with mediabatch.Client(D.ingest, tenant=42, wait_timeout=20, **alice_keys()) as c:
            r = c.request("identity", tensor=ONE)
            self.assertEqual((r.tenant_id, r.value[0, 0]), (42, 4.0))
            self.assertIn("handshake done", c.connection)
        # keys as text, public key derived from the secret one
        with mediabatch.Client(D.ingest, tenant=43, wait_timeout=20,
                               server_key=server_key().decode(),
                               secret_key=BOB[1].decode()) as c:
            self.assertEqual(c.run("logmel", audio=np.zeros(1600, np.int16), rate=16000).shape,
                             (10, 80))

    def test_foreign_tenant_is_unauthorized(self):
        with mediabatch.Client(D.ingest, wait_timeout=20, **alice_keys()) as c:
            with self.assertRaises(mediabatch.Unauthorized) as cm:
                c.run("identity", tensor=ONE, tenant=43)
            e = cm.exception
            self.assertEqual((e.status, e.tenant_id), (mediabatch.Status.UNAUTHORIZED, 43))
            self.assertIn("alice", e.reason)
            self.assertIn("43", e.reason)
            self.assertIn("42", e.reason)  # its tenants
            self.assertTrue(c.run("identity", tensor=ONE, tenant=42).size == 1)

    def test_unlisted_key_gets_no_answer(self):
        t0 = time.monotonic()
        with mediabatch.Client(D.ingest, tenant=42, server_key=server_key(),
                               public_key=EVE[0], secret_key=EVE[1]) as c:
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                c.run("identity", tensor=ONE, wait_timeout=1.5)
            self.assertLess(time.monotonic() - t0, 10)
            # sent and never answered, or (when the refusal came first) never taken by
            # ZeroMQ: either way within the wait, and the reason names the refusal
            self.assertRegex(cm.exception.reason, r"(no answer|not sent) within 1\.5 s")
            # the monitor saw the service refuse the key, and the reason says so
            self.assertIn("does not accept this client's key", cm.exception.reason)
            self.assertGreaterEqual(c.stats["handshake_failed"], 1)
            self.assertEqual(c.stats["answered"], 0)

    def test_plaintext_client_gets_no_answer(self):
        with mediabatch.Client(D.ingest, tenant=42) as c:
            with self.assertRaises(mediabatch.ClientTimeout):
                c.run("identity", tensor=ONE, wait_timeout=1.0)

    def test_subscriber_gets_its_tenants_only(self):
        keys = alice_keys()
        bob = {"server_key": keys["server_key"], "public_key": BOB[0], "secret_key": BOB[1]}
        with mediabatch.Client(D.ingest, wait_timeout=20, **keys) as alice, \
                mediabatch.Client(D.ingest, wait_timeout=20, **bob) as bobc, \
                mediabatch.Subscriber(D.publish, timeout=0.5, **keys) as everything, \
                mediabatch.Subscriber(D.publish, tenant=43, timeout=0.5, **keys) as foreign:
            # an all-topics subscription is narrowed to alice's tenant 42: wait for it
            deadline = time.monotonic() + 10
            while True:
                alice.run("identity", tensor=ONE, tenant=42)
                try:
                    everything.recv(timeout=0.2)
                    break
                except mediabatch.ClientTimeout:
                    self.assertLess(time.monotonic(), deadline, "the subscription never took")
            for _ in everything:
                pass
            ids = [bobc.request("identity", tensor=ONE, tenant=43).request_id for _ in range(3)]
            mine = alice.request("identity", tensor=np.ones((2, 2)), tenant=42)
            got = list(everything)
            self.assertEqual([(t, r.request_id) for t, r in got],
                             [("42/identity", mine.request_id)])
            self.assertEqual(len(ids), 3)
            self.assertEqual(list(foreign), [])  # tenant 43 is bob's: refused for alice

    def test_asyncio_with_curve(self):
        async def main():
            async with mediabatch.AsyncClient(D.ingest, tenant=42, wait_timeout=20,
                                              **alice_keys()) as c:
                r = await c.request("identity", tensor=ONE)
                self.assertEqual(r.value[0, 0], 4.0)
                with self.assertRaises(mediabatch.Unauthorized):
                    await c.run("identity", tensor=ONE, tenant=44)
            async with mediabatch.AsyncClient(D.ingest, tenant=42, server_key=server_key(),
                                              public_key=EVE[0], secret_key=EVE[1]) as c:
                with self.assertRaises(mediabatch.ClientTimeout):
                    await c.run("identity", tensor=ONE, wait_timeout=1.0)

        asyncio.run(main())

    def test_fleet_with_curve(self):
        """A fleet client's DEALERs use the keys too; a refused key is named in the
        client's own TIMEOUT."""
        with mediabatch.Client(D.ingest, fleet=True, tenant=42, wait_timeout=20,
                               **alice_keys()) as c:
            self.assertEqual(c.run("identity", tensor=ONE)[0, 0], 4.0)
            self.assertEqual(c.fleet_stats().daemons[0].answered, 1)
        with mediabatch.Client(D.ingest, fleet=True, tenant=42, wait_timeout=20,
                               server_key=server_key(), public_key=EVE[0],
                               secret_key=EVE[1]) as c:
            with self.assertRaises(mediabatch.Timeout) as cm:
                c.run("identity", tensor=ONE, timeout_ms=1000)
            reason = cm.exception.reason
            self.assertTrue(reason.startswith(
                "client: no daemon took it within 1000 ms (0 of the fleet up; "), reason)
            self.assertIn("does not accept this client's key", reason)
            self.assertGreaterEqual(c.stats["handshake_failed"], 1)


class SubscriberHandshakeTest(unittest.TestCase):
    """A subscriber whose CURVE handshake fails is told so by recv() at once, the reason
    naming the publisher, as the C library's mb_subscriber_recv() returns -EACCES
    (client.h), instead of waiting out its timeout: a key the service does not list
    (ZAP 400), a wrong server key; a fleet's refusing publisher among one that accepts
    (the other's publications still arrive); AsyncSubscriber alike."""

    def eve(self):
        return {"server_key": server_key(), "public_key": EVE[0], "secret_key": EVE[1]}

    def test_unlisted_key_raised_at_once(self):
        t0 = time.monotonic()
        with mediabatch.Subscriber(D.publish, timeout=8, **self.eve()) as sub:
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                sub.recv()
            self.assertLess(time.monotonic() - t0, 5, "waited out the timeout")
            reason = cm.exception.reason
            self.assertEqual(reason, f"the CURVE handshake with {D.publish} failed: the "
                             "service does not accept this client's key (ZAP status 400)")
            # reported once; a timeout after it still says why
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                sub.recv(timeout=0.2)
            self.assertEqual(cm.exception.reason,
                             f"nothing published on {D.publish} within 0.2 s; {reason}")
        # iterating: the refusal is raised, not an end of the iteration
        t0 = time.monotonic()
        with mediabatch.Subscriber(D.publish, tenant=42, timeout=8, **self.eve()) as sub:
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                for _ in sub:
                    self.fail("a publication for a refused key")
            self.assertLess(time.monotonic() - t0, 5, "waited out the timeout")
            self.assertIn("does not accept this client's key", cm.exception.reason)
        # a listed key: no refusal, a plain timeout
        with mediabatch.Subscriber(D.publish, tenant=42, timeout=0.3, **alice_keys()) as sub:
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                sub.recv()
            self.assertEqual(cm.exception.reason, f"nothing published on {D.publish} within "
                             "0.3 s")
            self.assertEqual(list(sub), [])

    def test_wrong_server_key_raised_at_once(self):
        keys = dict(alice_keys(), server_key=zmq.curve_keypair()[0])
        t0 = time.monotonic()
        with mediabatch.Subscriber(D.publish, timeout=8, **keys) as sub:
            with self.assertRaises(mediabatch.ClientTimeout) as cm:
                sub.recv()
            self.assertLess(time.monotonic() - t0, 5, "waited out the timeout")
            self.assertTrue(cm.exception.reason.startswith(f"the handshake with {D.publish} "
                                                           "failed"), cm.exception.reason)

    def test_fleet_names_the_refusing_publisher(self):
        """A fleet subscription is one SUB, as C's: a failed handshake with any publisher
        is raised by the recv() that finds nothing waiting, naming that publisher; the
        others' publications still arrive."""
        server_public, server_secret = mediabatch.load_certificate(
            os.path.join(KEYS, "server.key_secret"))
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        other = ctx.socket(zmq.PUB)  # CURVE with the service's key, no ZAP: takes any key
        self.addCleanup(other.close, 0)
        other.curve_server = True
        other.curve_secretkey = server_secret
        other.bind("tcp://127.0.0.1:*")
        other_ep = other.last_endpoint.decode()
        h = mediabatch.ResponseHeader(request_id=5, tenant_id=42, model="identity",
                                      result_type=mediabatch.ResultType.F32, rows=1, cols=1,
                                      result_len=4)
        refusals, got = [], 0
        with mediabatch.Subscriber([D.publish, other_ep], timeout=0.2,
                                   **self.eve()) as sub:
            deadline = time.monotonic() + 10
            while not (refusals and got) and time.monotonic() < deadline:
                other.send_multipart([b"42/identity", h.encode(), bytes(4)])
                try:
                    topic, result = sub.recv()
                    self.assertEqual((topic, result.request_id), ("42/identity", 5))
                    got += 1
                except mediabatch.ClientTimeout as e:
                    if "handshake" in e.reason:
                        refusals.append(e.reason)
            self.assertGreater(got, 0, "nothing from the publisher that took the key")
            self.assertEqual(refusals[:1], [f"the CURVE handshake with {D.publish} failed: "
                                            "the service does not accept this client's key "
                                            "(ZAP status 400)"])
            self.assertNotIn(other_ep, refusals[0])

    def test_asyncio(self):
        async def main():
            t0 = time.monotonic()
            async with mediabatch.AsyncSubscriber(D.publish, timeout=8, **self.eve()) as sub:
                with self.assertRaises(mediabatch.ClientTimeout) as cm:
                    await sub.recv()
                self.assertLess(time.monotonic() - t0, 5, "waited out the timeout")
                reason = cm.exception.reason
                self.assertEqual(reason, f"the CURVE handshake with {D.publish} failed: the "
                                 "service does not accept this client's key (ZAP status 400)")
                with self.assertRaises(mediabatch.ClientTimeout) as cm:
                    await sub.recv(timeout=0.2)
                self.assertEqual(cm.exception.reason,
                                 f"nothing published on {D.publish} within 0.2 s; {reason}")
            t0 = time.monotonic()
            async with mediabatch.AsyncSubscriber([D.publish], fleet=True, timeout=8,
                                                  **self.eve()) as sub:
                with self.assertRaises(mediabatch.ClientTimeout) as cm:
                    async for _ in sub:
                        self.fail("a publication for a refused key")
                self.assertLess(time.monotonic() - t0, 5, "waited out the timeout")
                self.assertIn(f"the CURVE handshake with {D.publish} failed",
                              cm.exception.reason)

        asyncio.run(main())


class SubscriberCutTest(unittest.TestCase):
    def test_subscriber_cut_by_a_reload_subscribes_again(self):
        """A reload that changes a key's tenants cuts its subscriber connection; the SUB
        reconnects and sends its subscriptions again when it is next read, vetted against
        the new list (docs/operating.md): results of a tenant the key keeps arrive again
        (Subscriber and AsyncSubscriber)."""
        alice_public = mediabatch.load_certificate(os.path.join(KEYS, "alice.key"))[0]

        def yaml(tenants):
            return f"""
security:
  mode: curve
  server_key: {os.path.join(KEYS, "server.key_secret")}
  clients:
    - name: alice
      public_key: "{alice_public.decode()}"
      tenants: {tenants}
"""
        d = mbdaemon.Daemon(yaml("[42, 43]")).start()
        self.addCleanup(d.stop)
        keys = alice_keys()

        def cut(tenants):
            with open(d.config, "w") as f:
                f.write(yaml(tenants) + '\ndevices:\n  cuda: {mode: "off"}\n')
            before = d.metric("mediabatch_auth_cutoffs_total")
            d.signal(1)  # SIGHUP
            deadline = time.monotonic() + 10
            while d.metric("mediabatch_auth_cutoffs_total") == before:
                self.assertLess(time.monotonic(), deadline, "the reload cut nothing")
                time.sleep(0.05)

        def until_received(client, receive, what):
            deadline = time.monotonic() + 10
            while True:
                client.run("identity", tensor=ONE, tenant=42)
                try:
                    return receive()
                except mediabatch.ClientTimeout:
                    self.assertLess(time.monotonic(), deadline, what)

        with mediabatch.Client(d.ingest, wait_timeout=20, **keys) as c, \
                mediabatch.Subscriber(d.publish, tenant=42, timeout=0.3, **keys) as sub:
            until_received(c, sub.recv, "the subscription never took")
            cut("[42, 44]")  # 42 stays; the connection is cut all the same
            topic, _ = until_received(c, sub.recv, "no result after the cut: not subscribed "
                                      "again")
            self.assertEqual(topic, "42/identity")
        # the daemon says why it cut: the key is still listed
        self.assertIn("the tenants its key may subscribe to changed", d.log_text())

        async def main():
            async with mediabatch.AsyncSubscriber(d.publish, tenant=42, timeout=0.3,
                                                  **keys) as sub:
                with mediabatch.Client(d.ingest, wait_timeout=20, **keys) as c:
                    deadline = time.monotonic() + 10
                    while True:
                        c.run("identity", tensor=ONE, tenant=42)
                        try:
                            await sub.recv()
                            break
                        except mediabatch.ClientTimeout:
                            self.assertLess(time.monotonic(), deadline, "async: never took")
                    cut("[42, 45]")
                    deadline = time.monotonic() + 10
                    while True:
                        c.run("identity", tensor=ONE, tenant=42)
                        try:
                            topic, _ = await sub.recv()
                            break
                        except mediabatch.ClientTimeout:
                            self.assertLess(time.monotonic(), deadline,
                                            "async: no result after the cut")
                    self.assertEqual(topic, "42/identity")

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
