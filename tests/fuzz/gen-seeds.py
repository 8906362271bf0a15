#!/usr/bin/env python3
"""gen-seeds.py: write the seed corpora of tests/fuzz/corpus/ (checked in; rerun after a
format change and commit the result). Deterministic: the same files every time.

  tests/fuzz/gen-seeds.py [CORPUS_DIR]     default: tests/fuzz/corpus beside this script

endpoints/ fleet endpoint lists (include/mediabatch/client.h, "Fleets")
proto/    request and response headers (docs/protocol.md): valid ones of every media, a
          cancel, a UDP fragment, and headers that break one rule each
udp/      record sequences for udp_fuzz.c (3-byte head: op, length LE; then the body): whole
          requests, fragments in order, out of order, duplicated, overlapping, conflicting,
          cancelled, too fragmented, timed out; raw frames (VLAN, ARP, IPv6, IP fragment,
          IPv4 fields whose checksum the target fixes)
config/   the repository's deploy/*.yaml plus small files for each section (copied here)
wav/      small RIFF/WAVE files: the accepted format and the ones the CLI refuses
weights/  tiny safetensors files: F32 tensors, other dtypes, metadata, empty tensors
ckpt/     a sharded checkpoint's index JSON, then a NUL and config.json, then a NUL and
          preprocessor_config.json (ckpt_fuzz.c): whole, partial, broken maps; configs with
          sizes, labels, wrong types; feature extractors' and image processors' settings
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")

# ---- protocol v1 ----

MEDIA_S16, MEDIA_F32LE, MEDIA_RGB24, MEDIA_F32 = 1, 2, 3, 4


def req(model=b"logmel", media=MEDIA_S16, channels=1, rate=16000, frames=0, height=0,
        width=0, payload=32000, frag=0, flags=0, rid=1, tenant=0, timeout=0, version=1,
        reserved=0, magic=b"MBQ1", model_field=None):
    field = model_field if model_field is not None else model.ljust(16, b"\0")
    return (magic + struct.pack("<HHQII", version, flags, rid, tenant, timeout) + field +
            struct.pack("<HHIHHHHII", media, channels, rate, frames, height, width, reserved,
                        payload, frag))


def resp(status=0, rid=1, tenant=0, model=b"logmel", rtype=1, rows=200, cols=80,
         rlen=64000):
    return (b"MBR1" + struct.pack("<HHQIIIHH", 1, status, rid, tenant, 2144, 1212, 1, 0) +
            model.ljust(16, b"\0") + struct.pack("<HHHHI4x", rtype, rows, cols, 0, rlen))


def proto_seeds():
    s = {}
    s["req-logmel-s16"] = req()
    s["req-whisper-f32le"] = req(b"whisper", MEDIA_F32LE, payload=64000)
    s["req-clap-priority"] = req(b"clap", rate=48000, flags=2, payload=96000, timeout=250)
    s["req-videomae-rgb24"] = req(b"videomae", MEDIA_RGB24, 3, 0, 16, 224, 224,
                                  payload=16 * 224 * 224 * 3)
    s["req-identity-f32"] = req(b"identity", MEDIA_F32, 0, 0, 16, 16, payload=1024)
    s["req-cancel"] = req(b"", 0, 0, 0, payload=0, flags=1, rid=7, tenant=3)
    s["req-udp-fragment"] = req(payload=32000, frag=1408)
    s["req-model-16-chars"] = req(b"abcdefghijklmnop", MEDIA_F32, 0, 0, 1, 1, payload=4)
    s["bad-short"] = req()[:20]
    s["bad-response-magic"] = resp()
    s["bad-version"] = req(version=2)
    s["bad-flags"] = req(flags=0x80)
    s["bad-model-space"] = req(b"log mel")
    s["bad-model-padding"] = req(model_field=b"logmel\0x" + b"\0" * 8)
    s["bad-reserved"] = req(reserved=1)
    s["bad-too-large"] = req(payload=(8 << 20) + 2)
    s["bad-odd-s16"] = req(payload=31999)
    s["bad-rgb24-size"] = req(b"videomae", MEDIA_RGB24, 3, 0, 16, 224, 224, payload=1000)
    s["bad-media"] = req(media=9)
    s["resp-ok-f32"] = resp()
    s["resp-bad-request-text"] = resp(status=1, rtype=3, rows=0, cols=0, rlen=40)
    s["resp-unknown-status"] = resp(status=99, model=b"\x01\x7fodd")
    return s


# ---- UDP: records for udp_fuzz.c ----

OP_RAW, OP_EXPIRE, OP_SLICES, OP_DGRAM, OP_VLAN = 0, 1, 2, 3, 4


def rec(op, body=b"", sender=0):
    return bytes([op | sender << 3]) + struct.pack("<H", len(body)) + body


def dgram(payload_len, off, data, rid=1, **kw):
    h = req(b"identity", MEDIA_F32, 0, 0, payload_len // 4, 1, payload=payload_len,
            frag=off, rid=rid, **kw)
    return h + data


def frag_records(payload_len, pieces, rid=1, op=OP_DGRAM, sender=0, **kw):
    payload = bytes((i * 7) & 0xFF for i in range(payload_len))
    return b"".join(rec(op, dgram(payload_len, lo, payload[lo:hi], rid, **kw), sender)
                    for lo, hi in pieces)


def cksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


OUR_MAC = b"\x02\0\0\0\0\x01"
PEER_MAC = b"\x02\0\0\0\0\x02"
OUR_IP = bytes([192, 0, 2, 1])
PEER_IP = bytes([198, 51, 100, 9])


def ipv4_udp_frame(payload, vlan=0, frag=0, dst_port=7000, proto=17):
    udp = struct.pack("!HHHH", 40000, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 64, proto, 0, PEER_IP,
                     OUR_IP)
    ip = ip[:10] + struct.pack("!H", cksum(ip)) + ip[12:]
    eth = OUR_MAC + PEER_MAC
    if vlan:
        eth += struct.pack("!HH", 0x8100, vlan)
    return eth + b"\x08\x00" + ip + udp


def arp_request(tip=OUR_IP):
    return (b"\xff" * 6 + PEER_MAC + b"\x08\x06" +
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + PEER_MAC + PEER_IP + b"\0" * 6 + tip)


def udp_seeds():
    s = {}
    p = bytes(range(64))
    s["whole"] = rec(OP_DGRAM, dgram(64, 0, p))
    s["whole-vlan"] = rec(OP_VLAN, dgram(64, 0, p))
    s["in-order"] = frag_records(300, [(0, 100), (100, 200), (200, 300)])
    s["reversed"] = frag_records(300, [(200, 300), (100, 200), (0, 100)])
    s["duplicate-overlap"] = frag_records(256, [(0, 96), (0, 96), (64, 160), (96, 256),
                                                (0, 256)])
    s["two-senders-same-id"] = (frag_records(128, [(0, 64)], sender=0) +
                                frag_records(128, [(0, 64)], sender=1) +
                                frag_records(128, [(64, 128)], sender=1) +
                                frag_records(128, [(64, 128)], sender=0))
    s["conflict"] = (frag_records(128, [(0, 64)]) +
                     frag_records(128, [(64, 128)], timeout=5) + frag_records(128, [(64, 128)]))
    s["cancel-midway"] = (frag_records(128, [(0, 64)]) +
                          rec(OP_DGRAM, req(b"", 0, 0, 0, payload=0, flags=1, rid=1)) +
                          frag_records(128, [(64, 128)]))
    s["bad-header-fails-request"] = (frag_records(128, [(0, 64)]) +
                                     frag_records(128, [(64, 128)], version=2))
    s["past-the-end"] = frag_records(128, [(0, 64)]) + rec(OP_DGRAM, dgram(128, 100, p))
    s["too-fragmented"] = frag_records(4096, [(i * 64, i * 64 + 8) for i in range(34)])
    s["slots-full"] = b"".join(frag_records(64, [(0, 32)], rid=r) for r in range(1, 7))
    s["expire-then-rest"] = (frag_records(96, [(0, 32)]) + rec(OP_EXPIRE) +
                             frag_records(96, [(32, 96)]))
    s["whole-then-duplicate"] = rec(OP_DGRAM, dgram(64, 0, p)) * 2
    s["garbage-and-short"] = rec(OP_DGRAM, b"GARBAGE!") + rec(OP_DGRAM, req()[:40])
    s["slices-u32"] = rec(OP_SLICES, b"".join(struct.pack("<II", lo, n) for lo, n in [
        (0, 10), (20, 10), (10, 10), (0xFFFFFFF0, 0xFF), (100, 0), (5, 100)]))
    s["slices-33-runs"] = rec(OP_SLICES, b"".join(struct.pack("<II", i * 10, 5)
                                                  for i in range(34)))
    s["raw-frame"] = rec(OP_RAW, ipv4_udp_frame(dgram(64, 0, p)))
    s["raw-frame-vlan"] = rec(OP_RAW, ipv4_udp_frame(dgram(64, 0, p), vlan=5))
    s["raw-arp"] = rec(OP_RAW, arp_request()) + rec(OP_RAW, arp_request(bytes([10, 0, 0, 1])))
    s["raw-ip-fragment"] = rec(OP_RAW, ipv4_udp_frame(dgram(64, 0, p), frag=0x2000))
    s["raw-wrong-port"] = rec(OP_RAW, ipv4_udp_frame(dgram(64, 0, p), dst_port=7001))
    s["raw-ipv6"] = rec(OP_RAW, OUR_MAC + PEER_MAC + b"\x86\xdd" + b"\x60" + b"\0" * 39)
    # op bit 3: the target makes the IPv4 checksum right, so these reach the length checks
    s["raw-fixed-cksum-short-udp"] = rec(OP_RAW | 8, ipv4_udp_frame(b"")[:14] + struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 24, 1, 0, 64, 17, 0, PEER_IP, OUR_IP) + b"\x9c\x40\x1b\x58")
    s["raw-fixed-cksum-ip-options"] = rec(OP_RAW | 8, ipv4_udp_frame(dgram(64, 0, p))[:14] +
                                          b"\x46" + ipv4_udp_frame(dgram(64, 0, p))[15:])
    return s


# ---- configs ----

CONFIGS = {
    "empty.yaml": "",
    "service.yaml": "service:\n  ingest: tcp://127.0.0.1:7400\n  publish: ipc:///tmp/mb-pub\n"
                    "  metrics: \"*:7402\"\n  max_inflight: 100\n  log_level: debug\n",
    "models.yaml": "models:\n  - name: logmel\n    max_batch: 8\n    max_delay_us: 2000\n"
                   "  - name: whisper\n    enabled: false\n    item_units_per_second: 0.5\n"
                   "    weights: /tmp/w.safetensors\n",
    "tenants.yaml": "tenants:\n  default_rate: 100\n  default_burst: 10\n  limits:\n"
                    "    - {tenant: 1, rate: 5, burst: 1}\n    - {tenant: 2, rate: 0}\n",
    "udp.yaml": "udp:\n  port: 7000\n  max_requests: 64\n  ports:\n"
                "    - device: net_pcap0,rx_pcap=/tmp/in.pcap\n      address: 192.0.2.1\n"
                "      rx_queues: 2\n      cpus: [1, 2]\n",
    "devices.yaml": "devices:\n  cpu:\n    units: 8\n    serve: always\n  cuda:\n"
                    "    mode: off\n    gpus: [0, 1]\n    unit_mb: 512\n",
    "eal-idle-zmq.yaml": "eal:\n  memory_mb: 64\n  args: [--no-huge, --no-pci]\nidle:\n"
                         "  mode: sleep\n  sleep_us: 50\nzmq:\n  io_threads: 2\n"
                         "breaker:\n  failure_threshold: 3\nweights_dir: /tmp\n",
    "bad-syntax.yaml": "service:\n  ingest: [unclosed\n",
    "bad-key.yaml": "models:\n  - name: logmel\n    max_bach: 8\n",
    "bad-range.yaml": "service:\n  max_inflight: 0\n",
}


# ---- WAV ----

def wav(chunks, riff=b"RIFF", wave=b"WAVE"):
    body = wave + b"".join(chunks)
    return riff + struct.pack("<I", len(body)) + body


def chunk(cid, data, size=None):
    n = len(data) if size is None else size
    return cid + struct.pack("<I", n) + data + (b"\0" if len(data) & 1 else b"")


def fmt(format_=1, channels=1, rate=16000, bits=16, extra=b""):
    block = channels * bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", format_, channels, rate, rate * block, block,
                                      bits) + extra)


def wav_seeds():
    samples = b"".join(struct.pack("<h", (i * 997) % 20000 - 10000) for i in range(400))
    s = {}
    s["mono-16k-s16.wav"] = wav([fmt(), chunk(b"data", samples)])
    s["list-before-data.wav"] = wav([fmt(), chunk(b"LIST", b"INFOISFT\x05\0\0\0sox\0\0"),
                                     chunk(b"data", samples[:200])])
    s["extensible.wav"] = wav([fmt(0xFFFE, extra=struct.pack("<HHIH14x", 22, 16, 4, 1)),
                               chunk(b"data", samples[:100])])
    s["odd-chunk.wav"] = wav([fmt(), chunk(b"junk", b"abc"), chunk(b"data", samples[:64])])
    s["truncated-data.wav"] = wav([fmt(), chunk(b"data", samples[:50], size=100000)])
    s["empty-data.wav"] = wav([fmt(), chunk(b"data", b"")])
    s["stereo-44k.wav"] = wav([fmt(channels=2, rate=44100), chunk(b"data", samples[:64])])
    s["float32.wav"] = wav([fmt(3, bits=32), chunk(b"data", samples[:64])])
    s["no-data.wav"] = wav([fmt()])
    s["not-riff.wav"] = b"RIFX" + b"\0" * 4 + b"WAVE"
    return s


# ---- safetensors ----

def safetensors(tensors, metadata=None, pad=True):
    header, data, off = {}, b"", 0
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        data += blob
        off += len(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(n, seed=1):
    return b"".join(struct.pack("<f", ((i * 31 + seed) % 17) / 16.0 - 0.5) for i in range(n))


def weights_seeds():
    s = {}
    s["one-f32.safetensors"] = safetensors([("w", "F32", [2, 3], f32(6))])
    s["layer.safetensors"] = safetensors([
        ("encoder.conv1.weight", "F32", [4, 2, 3], f32(24)),
        ("encoder.conv1.bias", "F32", [4], f32(4, 2)),
    ], metadata={"generator": "gen-seeds.py"})
    s["dtypes.safetensors"] = safetensors([
        ("a", "F16", [3], b"\0\x3c" * 3), ("b", "BF16", [2], b"\x80\x3f" * 2),
        ("c", "I64", [1], struct.pack("<q", -5)), ("d", "U8", [5], b"hello"),
        ("e", "BOOL", [2], b"\x01\x00"), ("f", "F8_E4M3", [1], b"\x38"),
        ("g", "F64", [1], struct.pack("<d", 0.25)),
    ])
    s["empty-tensor.safetensors"] = safetensors([("z", "F32", [0, 4], b""),
                                                 ("s", "F32", [], f32(1))])
    s["unpadded.safetensors"] = safetensors([("w", "F32", [1], f32(1))], pad=False)
    s["header-only.safetensors"] = struct.pack("<Q", 2) + b"{}"
    s["truncated.safetensors"] = safetensors([("w", "F32", [8], f32(8))])[:-12]
    s["overlap.safetensors"] = (lambda t: struct.pack("<Q", len(t)) + t + f32(2))(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
    s["big-dims.safetensors"] = (lambda t: struct.pack("<Q", len(t)) + t)(
        b'{"w":{"dtype":"F32","shape":[1099511627776,1],"data_offsets":[0,0]}}')
    # gpu/weights.c multiplied the dimensions before checking: 2^40 x 2^40 wrapped to 0
    # elements and this 0-byte tensor was accepted (fixed; weights_test.c has it too)
    s["shape-overflow.safetensors"] = (lambda t: struct.pack("<Q", len(t)) + t)(
        b'{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}}')
    return s


def ckpt_seeds():
    shards = ["model-%05d-of-00003.safetensors" % i for i in (1, 2, 3)]
    whole = {"a": shards[0], "b": shards[1], "c": shards[2]}

    def index(wmap, meta=True):
        d = {"weight_map": wmap}
        if meta:
            d["metadata"] = {"total_size": 36}
        return json.dumps(d, indent=2).encode()

    whisper = {"model_type": "whisper", "d_model": 384, "encoder_layers": 4,
               "encoder_attention_heads": 6, "num_mel_bins": 80}
    videomae = {"model_type": "videomae", "hidden_size": 768, "layer_norm_eps": 1e-12,
                "id2label": {"0": "abseiling", "1": "air drumming", "2": "answering questions"}}
    s = {}
    s["whole"] = index(whole)
    s["whole-whisper-config"] = index(whole) + b"\0" + json.dumps(whisper).encode()
    s["whole-videomae-config"] = index(whole) + b"\0" + json.dumps(videomae).encode()
    s["subset"] = index({"a": shards[0]}, meta=False)
    s["wrong-shard"] = index({"a": shards[1], "b": shards[1]})
    s["missing-shard"] = index({"a": "model-00009-of-00009.safetensors"})
    s["escape"] = index({"a": "../" + shards[0]})
    s["not-object"] = b'["weight_map"]'
    s["no-map"] = b'{"metadata": {}}'
    s["map-not-strings"] = b'{"weight_map": {"a": 1}}'
    s["broken"] = b'{"weight_map": {"a": "model-0'
    s["config-not-object"] = index(whole) + b"\0[1, 2]"
    s["config-types"] = index(whole) + b'\0{"d_model": "384", "hidden_size": 7.5, ' \
        b'"model_type": 3, "layer_norm_eps": "x", "id2label": ["a"]}'
    s["config-broken"] = index(whole) + b'\0{"d_model": 3'
    whisper_pre = {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80,
                   "sampling_rate": 16000, "n_fft": 400, "hop_length": 160, "chunk_length": 30}
    videomae_pre = {"do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
                    "image_std": [0.229, 0.224, 0.225], "rescale_factor": 1 / 255,
                    "size": {"shortest_edge": 224}}
    s["whole-whisper-preprocessor"] = (index(whole) + b"\0" + json.dumps(whisper).encode()
                                       + b"\0" + json.dumps(whisper_pre).encode())
    s["whole-videomae-preprocessor"] = (index(whole) + b"\0" + json.dumps(videomae).encode()
                                        + b"\0" + json.dumps(videomae_pre).encode())
    s["preprocessor-types"] = index(whole) + b"\0{}\0" + \
        b'{"sampling_rate": "16000", "image_mean": [0.5, "x", 0.5], "padding": 1, ' \
        b'"do_normalize": 0, "top_db": null}'
    s["preprocessor-broken"] = index(whole) + b'\0{}\0{"image_mean": [0.5,'
    return s


def endpoints_seeds():
    return {
        "one": "tcp://127.0.0.1:7400",
        "three": "tcp://10.0.0.1:7400,tcp://10.0.0.2:7400, tcp://10.0.0.3:7400",
        "name": "tcp://mediabatch.default.svc.cluster.local:7400",
        "v6": "tcp://[::1]:7400,tcp://[fe80::1%eth0]:7401",
        "mixed": "ipc:///run/mb.sock,tcp://*:7400,tcp://node-a:7400",
        "empty-item": "tcp://127.0.0.1:1,,tcp://127.0.0.1:2",
        "no-port": "tcp://host",
        "bad-port": "tcp://host:74x0",
        "unclosed": "tcp://[::1:7400",
        "many": ",".join("tcp://10.0.0.%d:7400" % i for i in range(1, 18)),
        "long": "tcp://" + "a" * 200 + ":1",
    }


def write(sub, seeds):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    for name, blob in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob.encode() if isinstance(blob, str) else blob)


def main():
    write("proto", proto_seeds())
    write("udp", udp_seeds())
    write("config", CONFIGS)
    for y in sorted(os.listdir(os.path.join(ROOT, "deploy"))):
        if y.endswith(".yaml"):
            shutil.copyfile(os.path.join(ROOT, "deploy", y), os.path.join(OUT, "config", y))
    write("wav", wav_seeds())
    write("weights", weights_seeds())
    write("ckpt", ckpt_seeds())
    write("endpoints", endpoints_seeds())
    total = sum(os.path.getsize(os.path.join(dp, f))
                for dp, _, fs in os.walk(OUT) for f in fs)
    print("wrote %s: %d bytes" % (OUT, total))


if __name__ == "__main__":
    main()
