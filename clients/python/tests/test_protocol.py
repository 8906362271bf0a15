"""The codec against bytes computed by hand from docs/protocol.md, and the pieces that need
no service: validation, result decoding, exceptions, media, WAV, labels, keys."""

import asyncio
import concurrent.futures
import io
import json
import os
import socket
import struct
import tempfile
import time
import unittest
import wave

import numpy as np
import zmq
import zmq.auth

import mediabatch
from mediabatch import protocol
from mediabatch.protocol import Media, RequestHeader, ResponseHeader, ResultType, Status


def hexbytes(text: str) -> bytes:
    """Hex digits, ignoring spaces and '#' comments to the end of a line."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()).replace(" ", ""))


# A logmel request, written out field by field from docs/protocol.md's table: tenant 42,
# request id 0x0102030405060708, timeout 1500 ms, 2 s of PCM_S16LE at 16000 Hz.
LOGMEL_REQUEST = hexbytes(
    """
    4d 42 51 31                 # magic "MBQ1"
    01 00                       # version 1
    00 00                       # flags
    08 07 06 05 04 03 02 01     # request_id
    2a 00 00 00                 # tenant_id 42
    dc 05 00 00                 # timeout_ms 1500
    6c 6f 67 6d 65 6c 00 00 00 00 00 00 00 00 00 00   # model "logmel", NUL-padded
    01 00                       # media PCM_S16LE
    01 00                       # channels 1
    80 3e 00 00                 # sample_rate 16000
    00 00 00 00 00 00           # frames, height, width
    00 00                       # reserved
    00 fa 00 00                 # payload_len 64000
    00 00 00 00                 # frag_offset
    """
)

# A video request: videomae, 16 frames of 224x224 RGB24, tenant 7, id 9, PRIORITY.
VIDEO_REQUEST = (
    b"MBQ1" + b"\x01\x00" + b"\x02\x00" + (9).to_bytes(8, "little") + b"\x07\0\0\0"
    + b"\0\0\0\0" + b"videomae".ljust(16, b"\0") + b"\x03\x00" + b"\x03\x00" + b"\0\0\0\0"
    + b"\x10\x00" + b"\xe0\x00" + b"\xe0\x00" + b"\0\0" + (16 * 224 * 224 * 3).to_bytes(4, "little")
    + b"\0\0\0\0"
)

# A response: BAD_REQUEST with flag DUPLICATE, id 7, tenant 42, never run, 20-byte reason.
DUPLICATE_RESPONSE = hexbytes(
    "4d425231 0100 0100 0700000000000000 2a000000 00000000 00000000 0000 ffff"
    "6c6f676d656c00000000000000000000 0300 0000 0000 0100 14000000 00000000"
)

# An OK F32 response [2 x 3]: queue 1000 us, compute 250 us, batch 4, device 0.
F32_RESPONSE = hexbytes(
    "4d425231 0100 0000 0100000000000000 00000000 e8030000 fa000000 0400 0000"
    "6964656e746974790000000000000000 0100 0200 0300 0000 18000000 00000000"
)

# Responses as tests/unit/net/client_test.c sends them (WELL_FORMED, MALFORMED): what,
# status, result_type, rows, cols, result_len, header bytes, payload bytes, frames, and for
# the malformed ones whether the header decodes and what the ProtocolError says (the C
# library's mb_client_recv() texts).
WELL_FORMED = [
    ("OK, F32 2 x 3", Status.OK, ResultType.F32, 2, 3, 24, 64, 24, 2),
    ("OK, top-k of 3", Status.OK, ResultType.TOPK, 3, 2, 24, 64, 24, 2),
    ("OK, no result", Status.OK, ResultType.NONE, 0, 0, 0, 64, 0, 2),
    ("OK, text", Status.OK, ResultType.TEXT, 0, 0, 5, 64, 5, 2),
    ("BAD_REQUEST, its reason", Status.BAD_REQUEST, ResultType.TEXT, 0, 0, 9, 64, 9, 2),
    ("an empty F32 result", Status.OK, ResultType.F32, 0, 4, 0, 64, 0, 2),
]
MALFORMED = [
    ("one frame", Status.OK, ResultType.F32, 1, 1, 4, 64, 4, 1, True,
     "1 frame(s); a response is 2 (header, payload)"),
    ("three frames", Status.OK, ResultType.F32, 1, 1, 4, 64, 4, 3, True,
     "3 frame(s); a response is 2 (header, payload)"),
    ("a 63-byte header", Status.OK, ResultType.F32, 1, 1, 4, 63, 4, 2, False,
     "response header: 63 bytes, expected 64"),
    ("a 65-byte header", Status.OK, ResultType.F32, 1, 1, 4, 65, 4, 2, False,
     "response header: 65 bytes, expected 64"),
    ("magic MBRX", Status.OK, ResultType.F32, 1, 1, 4, 64, 4, 2, False,
     'response magic: expected "MBR1"'),
    ("result_len 8, payload 4", Status.OK, ResultType.F32, 1, 2, 8, 64, 4, 2, True,
     "result_len is 8 but the payload is 4 bytes"),
    ("result_len 4, payload 8", Status.OK, ResultType.F32, 1, 1, 4, 64, 8, 2, True,
     "result_len is 4 but the payload is 8 bytes"),
    ("F32 1000 x 1000 in 4 bytes", Status.OK, ResultType.F32, 1000, 1000, 4, 64, 4, 2, True,
     "an F32 result of 1000 x 1000 is 4000000 bytes (rows x cols x 4), but result_len is 4"),
    ("top-k with cols 3", Status.OK, ResultType.TOPK, 2, 3, 16, 64, 16, 2, True,
     "a top-k result of 2 pairs is 16 bytes (rows x 8, cols 2), but result_len is 16 and "
     "cols 3"),
    ("top-k of 4 in 8 bytes", Status.OK, ResultType.TOPK, 4, 2, 8, 64, 8, 2, True,
     "a top-k result of 4 pairs is 32 bytes (rows x 8, cols 2), but result_len is 8 and "
     "cols 2"),
    ("result_type 9", Status.OK, 9, 1, 1, 4, 64, 4, 2, True,
     "result_type 9 is not one of 0 (none), 1 (F32), 2 (top-k), 3 (text)"),
    ("no result, but 4 bytes", Status.OK, ResultType.NONE, 0, 0, 4, 64, 4, 2, True,
     "result_type 0 (none) with a 4-byte result"),
    ("a reason shorter than result_len", Status.TIMEOUT, ResultType.TEXT, 0, 0, 20, 64, 3, 2,
     True, "result_len is 20 but the payload is 3 bytes"),
]


def reply_frames(row, request_id, tenant=0):
    """The frames of a response as @row (of WELL_FORMED or MALFORMED) describes it."""
    what, status, rtype, rows, cols, result_len, hdr_len, payload_len, n = row[:9]
    h = ResponseHeader(status=status, request_id=request_id, tenant_id=tenant, model="fake",
                       result_type=rtype, rows=rows, cols=cols, result_len=result_len,
                       device=0).encode()
    if what == "magic MBRX":
        h = b"MBRX" + h[4:]
    h = (h + b"\0")[:hdr_len]
    frames = [h, bytes(payload_len)]
    if n == 1:
        frames = frames[:1]
    elif n == 3:
        frames.append(b"x")
    return frames


class RequestCodecTest(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual(len(LOGMEL_REQUEST), 64)
        self.assertEqual(len(VIDEO_REQUEST), 64)
        self.assertEqual(len(DUPLICATE_RESPONSE), 64)
        self.assertEqual(len(F32_RESPONSE), 64)

    def test_logmel_request_bytes(self):
        h = RequestHeader(
            request_id=0x0102030405060708,
            tenant_id=42,
            timeout_ms=1500,
            model="logmel",
            media=Media.PCM_S16LE,
            channels=1,
            sample_rate=16000,
            payload_len=64000,
        )
        h.check()
        self.assertEqual(h.encode(), LOGMEL_REQUEST)
        self.assertEqual(RequestHeader.decode(LOGMEL_REQUEST), h)

    def test_video_request_bytes(self):
        h = RequestHeader(request_id=9, tenant_id=7, model="videomae", media=Media.RGB24,
                          channels=3, frames=16, height=224, width=224,
                          payload_len=16 * 224 * 224 * 3, flags=protocol.FLAG_PRIORITY)
        h.check()
        self.assertEqual(h.encode(), VIDEO_REQUEST)

    def test_builders_match_the_table(self):
        """The header the client builds from numpy arrays, field by field."""
        from mediabatch._request import build_header, media_fields

        fields, payload = media_fields(audio=np.zeros(32000, np.int16), rate=16000)
        hdr = build_header("logmel", fields, len(payload), request_id=0x0102030405060708,
                           tenant=42, timeout_ms=1500, priority=False)
        self.assertEqual(hdr, LOGMEL_REQUEST)
        fields, payload = media_fields(video=np.zeros((16, 224, 224, 3), np.uint8))
        hdr = build_header("videomae", fields, len(payload), request_id=9, tenant=7,
                           timeout_ms=0, priority=True)
        self.assertEqual(hdr, VIDEO_REQUEST)
        fields, payload = media_fields(tensor=np.arange(6, dtype=np.float64).reshape(2, 3))
        h = RequestHeader.decode(build_header("identity", fields, len(payload), request_id=1,
                                              tenant=0, timeout_ms=0, priority=False))
        self.assertEqual((h.media, h.frames, h.height, h.width, h.channels, h.payload_len),
                         (Media.F32, 2, 3, 0, 0, 24))
        self.assertEqual(payload, struct.pack("<6f", 0, 1, 2, 3, 4, 5))
        fields, payload = media_fields(audio=np.array([0.5, -1.0]), rate=48000)
        self.assertEqual(fields["media"], Media.PCM_F32LE)
        self.assertEqual(payload, struct.pack("<2f", 0.5, -1.0))

    def test_cancel_bytes(self):
        c = RequestHeader.cancel(42, 5).encode()
        expect = bytearray(64)
        expect[0:4] = b"MBQ1"
        expect[4] = 1
        expect[6] = 1  # CANCEL
        expect[8] = 5
        expect[16] = 42
        self.assertEqual(c, bytes(expect))
        RequestHeader.decode(c).check()  # a cancel needs no model, media or payload

    def test_round_trip_extremes(self):
        h = RequestHeader(request_id=2**64 - 1, tenant_id=2**32 - 1, timeout_ms=2**32 - 1,
                          model="abcdefghijklmnop", media=Media.F32, frames=65535, height=1,
                          payload_len=65535 * 4)
        b = h.encode()
        self.assertEqual(b[24:40], b"abcdefghijklmnop")  # 16 characters: no NUL
        self.assertEqual(RequestHeader.decode(b), h)

    def test_encode_refuses_what_does_not_fit(self):
        for kw in ({"model": "a" * 17}, {"tenant_id": 2**32}, {"request_id": -1},
                   {"frames": 65536}, {"model": "caf\u00e9"}):
            with self.subTest(kw=kw), self.assertRaises(protocol.HeaderError):
                RequestHeader(**kw).encode()

    def test_check_names_the_field(self):
        good = dict(request_id=1, model="logmel", media=1, channels=1, sample_rate=16000,
                    payload_len=320)
        cases = [
            ({"version": 2}, "version"),
            ({"flags": 4}, "flags"),
            ({"model": ""}, "model"),
            ({"model": "log mel"}, "model"),
            ({"reserved": 1}, "reserved"),
            ({"frag_offset": 4}, "frag_offset"),
            ({"payload_len": 0}, "payload_len"),
            ({"media": 9}, "media"),
            ({"channels": 2}, "channels"),
            ({"sample_rate": 0}, "sample_rate"),
            ({"frames": 1}, "frames"),
            ({"payload_len": 321}, "payload_len"),
            ({"media": 3, "channels": 3, "sample_rate": 0, "frames": 1, "height": 2,
              "width": 2, "payload_len": 11}, "payload_len"),
            ({"media": 3, "channels": 1, "sample_rate": 0}, "channels"),
            ({"media": 4, "channels": 0, "sample_rate": 0, "frames": 2, "height": 0},
             "frames/height"),
            ({"media": 4, "channels": 0, "sample_rate": 16000}, "sample_rate"),
        ]
        RequestHeader(**good).check()
        for change, field in cases:
            with self.subTest(change=change):
                with self.assertRaises(protocol.HeaderError) as cm:
                    RequestHeader(**{**good, **change}).check()
                self.assertTrue(str(cm.exception).startswith(field + ":")
                                or str(cm.exception).startswith(field + " "), cm.exception)
        with self.assertRaises(protocol.HeaderError):
            RequestHeader(**good).check(max_payload=100)

    def test_decode_refuses(self):
        with self.assertRaises(protocol.HeaderError):
            RequestHeader.decode(LOGMEL_REQUEST[:63])
        with self.assertRaises(protocol.HeaderError):
            RequestHeader.decode(b"MBR1" + LOGMEL_REQUEST[4:])


class ResponseCodecTest(unittest.TestCase):
    def test_duplicate_response(self):
        h = ResponseHeader.decode(DUPLICATE_RESPONSE)
        self.assertIs(h.status, Status.BAD_REQUEST)
        self.assertEqual((h.request_id, h.tenant_id, h.model, h.device),
                         (7, 42, "logmel", protocol.DEVICE_NONE))
        self.assertIs(h.result_type, ResultType.TEXT)
        self.assertEqual(h.result_len, 20)
        self.assertTrue(h.duplicate)
        self.assertEqual(h.encode(), DUPLICATE_RESPONSE)
        reason = b"request_id: 7 is ..."
        r = mediabatch.Result(h, reason)
        self.assertFalse(r.ok)
        err = r.error
        self.assertIsInstance(err, mediabatch.BadRequest)
        self.assertTrue(err.duplicate)
        self.assertEqual((err.status, err.reason, err.request_id, err.tenant_id),
                         (Status.BAD_REQUEST, reason.decode(), 7, 42))
        with self.assertRaises(mediabatch.BadRequest):
            r.value

    def test_f32_response(self):
        h = ResponseHeader.decode(F32_RESPONSE)
        self.assertEqual((h.status, h.request_id, h.queue_us, h.compute_us, h.batch_size,
                          h.device, h.model, h.rows, h.cols, h.result_len),
                         (Status.OK, 1, 1000, 250, 4, 0, "identity", 2, 3, 24))
        payload = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
        r = mediabatch.Result(h, payload)
        np.testing.assert_array_equal(r.value, np.arange(1, 7, dtype=np.float32).reshape(2, 3))
        self.assertEqual(r.value.dtype, np.float32)
        self.assertEqual(r.queue_us, 1000)
        with self.assertRaises(mediabatch.ProtocolError):
            mediabatch.Result(h, payload[:-4])  # result_len says 24

    def test_topk_response(self):
        h = ResponseHeader(model="videomae", result_type=ResultType.TOPK, rows=3, cols=2,
                           result_len=24, device=0)
        payload = struct.pack("<IfIfIf", 7, 0.5, 3, 0.25, 400, 0.125)
        r = mediabatch.Result(ResponseHeader.decode(h.encode()), payload)
        self.assertEqual(r.value, [(7, 0.5), (3, 0.25), (400, 0.125)])
        self.assertEqual(r.labelled({7: "seven", 3: "three"}),
                         [("seven", 0.5), ("three", 0.25), ("class 400", 0.125)])
        self.assertEqual(r.labelled(["a", "b", "c", "d"])[1], ("d", 0.25))
        labelled = mediabatch.Result(h, payload, labels={400: "x"})
        self.assertEqual(labelled.value[2], ("x", 0.125))

    def test_unknown_status_and_all_classes(self):
        classes = {
            Status.BAD_REQUEST: mediabatch.BadRequest,
            Status.UNKNOWN_MODEL: mediabatch.UnknownModel,
            Status.OVERLOADED: mediabatch.Overloaded,
            Status.TIMEOUT: mediabatch.Timeout,
            Status.CANCELLED: mediabatch.Cancelled,
            Status.MODEL_ERROR: mediabatch.ModelError,
            Status.UNAVAILABLE: mediabatch.Unavailable,
            Status.TOO_LARGE: mediabatch.TooLarge,
            Status.UNAUTHORIZED: mediabatch.Unauthorized,
        }
        self.assertEqual(set(classes) | {Status.OK}, set(Status))
        for status, cls in classes.items():
            e = mediabatch.error_for_status(status, "why", request_id=3)
            self.assertIs(type(e), cls)
            self.assertIsInstance(e, mediabatch.MediabatchError)
            self.assertEqual((e.status, e.reason, e.request_id), (status, "why", 3))
            self.assertIn(status.name, str(e))
        e = mediabatch.error_for_status(42, "new")
        self.assertIs(type(e), mediabatch.MediabatchError)
        self.assertEqual(e.status, 42)
        # named as the C library's mb_status_name() names it, the number beside
        self.assertEqual(str(e), "UNKNOWN_STATUS (42): new")
        self.assertEqual(protocol.status_name(42), "UNKNOWN_STATUS")
        self.assertEqual(protocol.status_name(Status.TIMEOUT), "TIMEOUT")
        h = ResponseHeader.decode(ResponseHeader(status=42).encode())
        self.assertEqual(h.status, 42)
        r = mediabatch.Result(h, b"")
        self.assertFalse(r.ok)
        self.assertIn("UNKNOWN_STATUS (42)", repr(r))
        with self.assertRaises(mediabatch.MediabatchError):
            r.value
        self.assertTrue(issubclass(mediabatch.ClientTimeout, TimeoutError))
        self.assertFalse(issubclass(mediabatch.Timeout, TimeoutError))

    def test_decode_refuses(self):
        with self.assertRaises(protocol.HeaderError):
            ResponseHeader.decode(F32_RESPONSE[:60])
        with self.assertRaises(protocol.HeaderError):
            ResponseHeader.decode(b"MBQ1" + F32_RESPONSE[4:])
        with self.assertRaises(protocol.HeaderError):
            ResponseHeader.decode(F32_RESPONSE[:4] + b"\x02\x00" + F32_RESPONSE[6:])
        with self.assertRaises(mediabatch.ProtocolError):
            mediabatch.results.decode_response([F32_RESPONSE])

    def test_malformed_like_the_c_library(self):
        """Every response tests/unit/net/client_test.c calls well-formed decodes; every
        malformed one is a ProtocolError saying what is wrong, as mb_client_recv()'s
        -EPROTO, with the header when it decoded (whose answer it was)."""
        decode = mediabatch.results.decode_response
        for row in WELL_FORMED:
            with self.subTest(row[0]):
                r = decode(reply_frames(row, 5))
                self.assertEqual((r.request_id, len(r.payload)), (5, row[5]))
        for row in MALFORMED:
            with self.subTest(row[0]):
                with self.assertRaises(mediabatch.ProtocolError) as cm:
                    decode(reply_frames(row, 5))
                e = cm.exception
                self.assertEqual(e.reason, row[10])
                if row[9]:
                    self.assertIsInstance(e.response, ResponseHeader)
                    self.assertEqual((e.response.request_id, e.request_id), (5, 5))
                else:
                    self.assertIsNone(e.response)
        # the Result constructor checks the same
        h = ResponseHeader(result_type=ResultType.TOPK, rows=2, cols=3, result_len=16)
        with self.assertRaises(mediabatch.ProtocolError):
            mediabatch.Result(h, bytes(16))

    def test_model_field_like_the_c_codec(self):
        b = bytearray(F32_RESPONSE)
        b[32:48] = b"ab\x01c\0zzzzzzzzzzz"
        self.assertEqual(ResponseHeader.decode(bytes(b)).model, "ab?c")


class MediaTest(unittest.TestCase):
    def test_refusals(self):
        from mediabatch._request import media_fields

        for kw, exc in [
            ({}, TypeError),
            ({"audio": np.zeros(10, np.int16)}, TypeError),  # no rate
            ({"audio": np.zeros(10, np.int32), "rate": 16000}, TypeError),
            ({"audio": np.zeros((10, 2), np.int16), "rate": 16000}, ValueError),
            ({"video": np.zeros((2, 4, 4, 3), np.float32)}, TypeError),
            ({"video": np.zeros((2, 4, 4)), }, ValueError),
            ({"tensor": np.zeros((2, 2, 2))}, ValueError),
            ({"tensor": np.zeros((1, 70000))}, ValueError),
            ({"audio": np.zeros(2, np.int16), "rate": 16000, "tensor": np.zeros((1, 1))},
             TypeError),
        ]:
            with self.subTest(kw=list(kw)), self.assertRaises(exc):
                media_fields(**kw)

    def test_wav(self):
        rate = 16000
        tone = (0.25 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tone.wav")
            mediabatch.write_wav(path, tone, rate)
            samples, r = mediabatch.read_wav(path)
            self.assertEqual((r, samples.dtype, samples.shape), (rate, np.int16, (rate,)))
            self.assertLess(np.max(np.abs(samples / 32767.0 - tone)), 1e-4)
            # stereo 24-bit: refused, or mixed down on request
            path24 = os.path.join(d, "stereo24.wav")
            with wave.open(path24, "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(3)
                w.setframerate(8000)
                frames = b"".join(
                    (v & 0xFFFFFF).to_bytes(3, "little") + ((-v) & 0xFFFFFF).to_bytes(3, "little")
                    for v in (0, 1 << 22, -(1 << 22)))
                w.writeframes(frames)
            with self.assertRaises(ValueError):
                mediabatch.read_wav(path24)
            mixed, r = mediabatch.read_wav(path24, mix=True)
            self.assertEqual((r, mixed.dtype), (8000, np.float32))
            np.testing.assert_allclose(mixed, [0, 0, 0])
            with wave.open(path24, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(3)
                w.setframerate(8000)
                w.writeframes(frames[:6])
            mono, _ = mediabatch.read_wav(path24)
            np.testing.assert_allclose(mono, [0.0, 0.0])
        buf = io.BytesIO()
        mediabatch.write_wav(buf, np.array([1, -2, 3], np.int16), 16000)
        buf.seek(0)
        samples, _ = mediabatch.read_wav(buf)
        self.assertEqual(samples.tolist(), [1, -2, 3])


class LabelsAndKeysTest(unittest.TestCase):
    def test_load_labels(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump({"id2label": {"0": "cat", "2": "dog"}}, f)
            self.assertEqual(mediabatch.load_labels(d), {0: "cat", 2: "dog"})
            self.assertEqual(mediabatch.load_labels(os.path.join(d, "config.json"))[2], "dog")
            with open(os.path.join(d, "nolabels.json"), "w") as f:
                json.dump({"model_type": "videomae"}, f)
            with self.assertRaises(ValueError):
                mediabatch.load_labels(os.path.join(d, "nolabels.json"))
            # a path that is not there: named, with the directory a relative one is from
            with self.assertRaisesRegex(FileNotFoundError,
                                        r"labels: nowhere/videomae \(relative to .*\): no such"):
                mediabatch.load_labels("nowhere/videomae")

    def test_keys(self):
        from mediabatch.curve import resolve_keys

        server_pub, _ = zmq.curve_keypair()
        pub, sec = zmq.curve_keypair()
        self.assertIsNone(resolve_keys(None, None, None))
        self.assertEqual(resolve_keys(server_pub.decode(), None, sec), (server_pub, pub, sec))
        self.assertEqual(resolve_keys(server_pub, pub, sec.decode()), (server_pub, pub, sec))
        for args in [(None, pub, sec), (server_pub, pub, None), (b"short", pub, sec),
                     (server_pub, server_pub, sec)]:
            with self.subTest(args=args), self.assertRaises(ValueError):
                resolve_keys(*args)
        with tempfile.TemporaryDirectory() as d:
            public_file, secret_file = zmq.auth.create_certificates(d, "studio-a")
            p1, s1 = mediabatch.load_certificate(public_file)
            p2, s2 = mediabatch.load_certificate(secret_file)
            self.assertEqual((len(p1), s1, p2), (40, None, p1))
            self.assertEqual(zmq.curve_public(s2), p1)
            with self.assertRaises(FileNotFoundError):
                mediabatch.load_certificate(os.path.join(d, "nobody.key"))
            with open(os.path.join(d, "junk.key"), "w") as f:
                f.write("not a certificate\n")
            with self.assertRaises(ValueError):
                mediabatch.load_certificate(os.path.join(d, "junk.key"))


class FakeRouter:
    """A ROUTER on 127.0.0.1 that answers each request with the frames it is told."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.last_endpoint.decode()

    def take(self, timeout=5.0):
        """The next request: (routing id, RequestHeader); cancels skipped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sock.poll(100):
                continue
            frames = self.sock.recv_multipart()
            h = RequestHeader.decode(frames[1])
            if not h.is_cancel:
                return frames[0], h
        raise AssertionError("no request within %g s" % timeout)

    def close(self):
        self.sock.close(0)
        self.ctx.term()


class MalformedResponseTest(unittest.TestCase):
    """A client of one daemon, answered by a fake: a well-formed answer is the request's
    result; a malformed one fails the request with ProtocolError when its header names it
    (what mb_client_recv() refuses with -EPROTO), and is counted and dropped when its header
    does not decode (the request then waits for its wait_timeout); the client goes on."""

    def setUp(self):
        self.fake = FakeRouter()
        self.addCleanup(self.fake.close)

    def test_sync(self):
        one = np.ones((1, 1), np.float32)
        with mediabatch.Client(self.fake.endpoint, wait_timeout=5) as c:
            for rid, row in enumerate(WELL_FORMED + MALFORMED, 1):
                with self.subTest(row[0]):
                    f = c.submit("fake", tensor=one, request_id=rid, wait_timeout=0.5)
                    peer, h = self.fake.take()
                    self.assertEqual(h.request_id, rid)
                    self.fake.sock.send_multipart([peer] + reply_frames(row, rid))
                    if row in WELL_FORMED:
                        if row[1] == Status.OK:
                            self.assertEqual(f.result(timeout=5).request_id, rid)
                        else:
                            with self.assertRaises(mediabatch.BadRequest):
                                f.result(timeout=5)
                        continue
                    named = len(reply_frames(row, rid)[0]) == 64  # the id can be read
                    exc = mediabatch.ProtocolError if named else mediabatch.ClientTimeout
                    with self.assertRaises(exc) as cm:
                        f.result(timeout=5)
                    self.assertEqual(cm.exception.request_id, rid)
                    if named:
                        self.assertEqual(cm.exception.reason, row[10])
            self.assertEqual(c.stats["malformed"], len(MALFORMED))
            f = c.submit("fake", tensor=one, request_id=1000)
            peer, h = self.fake.take()
            self.fake.sock.send_multipart([peer] + reply_frames(WELL_FORMED[0], 1000))
            self.assertTrue(f.result(timeout=5).ok)

    def test_asyncio(self):
        one = np.ones((1, 1), np.float32)

        async def main():
            loop = asyncio.get_running_loop()
            async with mediabatch.AsyncClient(self.fake.endpoint, wait_timeout=5) as c:
                for rid, row in enumerate(MALFORMED, 1):
                    if len(reply_frames(row, rid)[0]) != 64:
                        continue
                    with self.subTest(row[0]):
                        f = await c.submit("fake", tensor=one, request_id=rid)
                        peer, h = await loop.run_in_executor(None, self.fake.take)
                        self.fake.sock.send_multipart([peer] + reply_frames(row, rid))
                        with self.assertRaises(mediabatch.ProtocolError) as cm:
                            await asyncio.wait_for(f, 5)
                        self.assertEqual((cm.exception.request_id, cm.exception.reason),
                                         (rid, row[10]))

        asyncio.run(main())


class NoServiceTest(unittest.TestCase):
    """The client's own behaviour, with nothing listening."""

    def test_wait_timeout_cancel_and_close(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = mediabatch.Client(f"tcp://127.0.0.1:{port}", wait_timeout=0.2)
        one = np.ones((1, 1), np.float32)
        t0 = time.monotonic()
        with self.assertRaises(mediabatch.ClientTimeout) as cm:
            c.run("identity", tensor=one)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("no answer within 0.2 s", cm.exception.reason)
        self.assertEqual(cm.exception.model, "identity")
        f = c.submit("identity", tensor=one, wait_timeout=None)
        self.assertTrue(f.cancel())  # no answer yet: cancelled here, and at the service
        with self.assertRaises(concurrent.futures.CancelledError):
            f.result()
        f = c.submit("identity", tensor=one, wait_timeout=None, request_id=77, tenant=5)
        self.assertEqual((f.request_id, f.tenant_id), (77, 5))
        with self.assertRaises(ValueError):
            c.submit("identity", tensor=one, request_id=77, tenant=5)  # in flight
        c.submit("identity", tensor=one, request_id=77, tenant=6).cancel()  # another tenant
        self.assertEqual(c.in_flight, 1)
        c.close()
        with self.assertRaises(mediabatch.ClientClosed):
            f.result(timeout=5)
        with self.assertRaises(mediabatch.ClientClosed):
            c.submit("identity", tensor=one)
        c.close()  # twice is harmless
        self.assertGreaterEqual(c.stats["timeouts"], 1)

    def test_local_refusals(self):
        with mediabatch.Client("tcp://127.0.0.1:9") as c:
            with self.assertRaises(ValueError):
                c.submit("a-model-name-too-long", tensor=np.ones((1, 1)))
            with self.assertRaises(ValueError):
                c.submit("log mel", tensor=np.ones((1, 1)))
            self.assertEqual(c.in_flight, 0)
        with self.assertRaises(ValueError):
            mediabatch.Client("tcp://127.0.0.1:9", server_key=zmq.curve_keypair()[0])
        with self.assertRaises(zmq.ZMQError):
            mediabatch.Client("nonsense://endpoint")  # and the context is closed, not hung
        with self.assertRaises(zmq.ZMQError):
            mediabatch.AsyncClient("nonsense://endpoint")
        with self.assertRaises(zmq.ZMQError):
            mediabatch.Subscriber("nonsense://endpoint")

    def test_async_wait_timeout(self):
        async def main():
            async with mediabatch.AsyncClient("tcp://127.0.0.1:9", wait_timeout=0.2) as c:
                with self.assertRaises(mediabatch.ClientTimeout):
                    await c.run("identity", tensor=np.ones((1, 1)))
                fut = await c.submit("identity", tensor=np.ones((1, 1)), wait_timeout=None)
                task = asyncio.ensure_future(fut)
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(task, 0.1)  # cancels the wait, and the request
                await asyncio.sleep(0)
                self.assertEqual(c.in_flight, 0)
                pending = await c.submit("identity", tensor=np.ones((1, 1)), wait_timeout=None)
            with self.assertRaises(mediabatch.ClientClosed):
                await pending

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
