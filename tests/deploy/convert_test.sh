#!/usr/bin/env bash
# convert_test.sh: deploy/convert-checkpoint.py turns a pytorch_model.bin into the
# model.safetensors mediabatch loads. A placeholder whisper checkpoint (mediabatch-weights,
# F32 and then BF16) is read into PyTorch, saved with torch.save as pytorch_model.bin beside
# its config.json, converted back; the result must hold every tensor with the same name,
# dtype, shape and bytes, and load as a whisper checkpoint (mediabatch-weights --check). A
# sharded .bin (its index) converts to shards and a safetensors index that load too.
set -u
fail() { echo "FAIL: $*"; exit 1; }
build=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}
src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
py=${MB_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# a size the network does not come in, like a bad --dtype, is a usage error: exit 2 naming
# the sizes it comes in (it was 1, a write failure's code)
"$build/mediabatch-weights" --out "$tmp/bad" --size huge whisper >/dev/null 2>"$tmp/size.err"
rc=$?
[ "$rc" -eq 2 ] || fail "mediabatch-weights --size huge whisper: exit $rc, not 2"
grep -q -- "--size huge: whisper comes in tiny, whisper-tiny" "$tmp/size.err" ||
	fail "mediabatch-weights --size huge: $(cat "$tmp/size.err")"

for dtype in F32 BF16; do
	w=$tmp/w-$dtype
	"$build/mediabatch-weights" --out "$w" --dtype "$dtype" whisper >/dev/null ||
		fail "mediabatch-weights --dtype $dtype"
	mkdir -p "$tmp/bin-$dtype" && cp "$w/whisper/config.json" "$tmp/bin-$dtype/"
	"$py" - "$w/whisper/model.safetensors" "$tmp/bin-$dtype" <<'PY' || fail "torch.save ($dtype)"
import json, struct, sys, torch
path, out = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
types = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
state = {}
for name, e in hdr.items():
    if name == "__metadata__":
        continue
    b, end = e["data_offsets"]
    raw = bytearray(data[8 + n + b:8 + n + end])
    if e["dtype"] == "BF16":
        t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
    else:
        t = torch.frombuffer(raw, dtype=types[e["dtype"]])
    state[name] = t.reshape(e["shape"]).clone()
torch.save(state, out + "/pytorch_model.bin")
PY
	"$py" "$src/deploy/convert-checkpoint.py" "$tmp/bin-$dtype" >/dev/null || fail "convert ($dtype)"
	"$py" - "$w/whisper/model.safetensors" "$tmp/bin-$dtype/model.safetensors" <<'PY' || fail "tensors differ ($dtype)"
import json, struct, sys
def read(p):
    d = open(p, "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], d[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
a, b = read(sys.argv[1]), read(sys.argv[2])
assert a.keys() == b.keys(), "names differ"
for k in a:
    assert a[k] == b[k], k
print("%d tensors equal" % len(a))
PY
	"$build/mediabatch-weights" --check "$tmp/bin-$dtype" --model whisper | grep -q "a whisper checkpoint" ||
		fail "the converted $dtype checkpoint does not load"
done

# sharded: two .bin shards and their index
"$py" - "$tmp/bin-F32" <<'PY' || fail "sharding the .bin"
import json, os, sys, torch
d = sys.argv[1]
state = torch.load(d + "/pytorch_model.bin")
names = sorted(state)
half = len(names) // 2
os.makedirs(d + "/sharded", exist_ok=True)
wmap = {}
for i, part in enumerate((names[:half], names[half:])):
    f = "pytorch_model-%05d-of-00002.bin" % (i + 1)
    torch.save({k: state[k] for k in part}, d + "/sharded/" + f)
    wmap.update({k: f for k in part})
json.dump({"metadata": {}, "weight_map": wmap}, open(d + "/sharded/pytorch_model.bin.index.json", "w"))
os.system("cp %s/config.json %s/sharded/" % (d, d))
PY
"$py" "$src/deploy/convert-checkpoint.py" "$tmp/bin-F32/sharded" >/dev/null || fail "convert (sharded)"
[ -s "$tmp/bin-F32/sharded/model.safetensors.index.json" ] || fail "no safetensors index"
"$build/mediabatch-weights" --check "$tmp/bin-F32/sharded" --model whisper | grep -q "a whisper checkpoint" ||
	fail "the converted sharded checkpoint does not load"
echo "convert-checkpoint: F32, BF16 and sharded checkpoints converted and loaded"
