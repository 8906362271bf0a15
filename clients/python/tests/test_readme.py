"""The README's examples, run as a user runs them, against real daemons: the plaintext ones
against a daemon on its default configuration, the CURVE one against a daemon with the
certificates the example reads. Endpoints are the daemons' (their ports are free ones, not
the defaults the examples show)."""

import contextlib
import io
import os
import re
import shutil
import tempfile
import unittest

import zmq
import zmq.auth

import mediabatch

import mbdaemon

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def examples(kind):
    """The ```python blocks that follow a `<!-- example: KIND -->` line."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"<!-- example: %s -->\n```python\n(.*?)```" % re.escape(kind), text, re.S)


@contextlib.contextmanager
def endpoints(ingest, publish):
    """The examples' default endpoints pointed at the test's daemon."""
    saved = []
    for cls, default in ((mediabatch.Client, ingest), (mediabatch.AsyncClient, ingest),
                         (mediabatch.Subscriber, publish), (mediabatch.AsyncSubscriber, publish)):
        fn = cls.__init__
        saved.append((fn, fn.__defaults__))
        fn.__defaults__ = (default,) + fn.__defaults__[1:]
    try:
        yield
    finally:
        for fn, defaults in saved:
            fn.__defaults__ = defaults


def run_blocks(blocks, subs, cwd):
    """Run @blocks one after the other in one namespace in @cwd; their output."""
    out = io.StringIO()
    namespace = {"__name__": "__readme__"}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            for i, code in enumerate(blocks):
                for old, new in subs.items():
                    code = code.replace(old, new)
                exec(compile(code, f"README.md example {i + 1}", "exec"), namespace)
    finally:
        os.chdir(here)
    return out.getvalue()


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(README):
            self.skipTest("README.md is not beside the tests")
        self.dir = tempfile.mkdtemp(prefix="mb-pyclient-readme-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def _daemon(self, yaml=""):
        d = mbdaemon.Daemon(yaml).start()

        def stop():
            rc = d.stop()
            self.assertEqual(rc, 0, d.log_text())

        self.addCleanup(stop)
        return d

    def test_plain_examples(self):
        blocks = examples("plain")
        self.assertGreaterEqual(len(blocks), 8)
        d = self._daemon()  # the embedded default's models and settings
        weights = os.path.join(os.path.dirname(os.path.abspath(d.bin)), "weights")
        subs = {"tcp://127.0.0.1:7400": d.ingest, "tcp://127.0.0.1:7401": d.publish,
                '"build/weights/': f'"{weights}/'}
        with endpoints(d.ingest, d.publish):
            out = run_blocks(blocks, subs, self.dir)
        for expect in ("(200, 80) float32", "(1500, ", "class ", "BAD_REQUEST sample_rate",
                       "UnknownModel model", "0/logmel OK (200, 80)", "[[64.]]"):
            self.assertIn(expect, out)

    def test_fleet_example(self):
        blocks = examples("fleet")
        self.assertEqual(len(blocks), 1)
        ds = [self._daemon() for _ in range(3)]
        subs = {f"tcp://127.0.0.1:74{i}0": d.ingest for i, d in enumerate(ds)}
        out = run_blocks(blocks, subs, self.dir)
        self.assertIn("3000 answered", out)
        for d in ds:
            self.assertRegex(out, re.escape(d.ingest) + r" up [1-9]\d* window \d+")
        self.assertIn("resent 0 duplicates dropped 0", out)

    def test_curve_example(self):
        blocks = examples("curve")
        self.assertEqual(len(blocks), 1)
        _, server_secret = zmq.auth.create_certificates(self.dir, "server")
        os.chmod(server_secret, 0o600)
        zmq.auth.create_certificates(self.dir, "studio-a")
        public, _ = mediabatch.load_certificate(os.path.join(self.dir, "studio-a.key"))
        d = self._daemon(f"""
security:
  mode: curve
  server_key: {server_secret}
  clients:
    - name: studio-a
      public_key: "{public.decode()}"
      tenants: [42]
""")
        subs = {"tcp://127.0.0.1:7400": d.ingest, "tcp://127.0.0.1:7401": d.publish}
        out = run_blocks(blocks, subs, self.dir)
        self.assertIn("[[16.]]", out)
        self.assertIn("client 'studio-a' may not send as tenant 44", out)


if __name__ == "__main__":
    unittest.main()
