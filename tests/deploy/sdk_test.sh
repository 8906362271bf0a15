#!/usr/bin/env bash
# sdk_test.sh: building against an installed mediabatch, as a C developer and a plugin author
# do (README.md, "From C: libmediabatch" and "Building a plugin out of tree"). After `meson install` into a
# staging root, with pkg-config pointed at it and nothing of the source tree:
#   - libmediabatch: examples/client/send_tensor.c builds with
#     `pkg-config --cflags --libs mediabatch`, shared and against the static archive;
#     the installed library links neither DPDK nor hwloc nor CUDA and exports only the API;
#   - the plugin SDK: examples/plugin/example_plugin.c builds out of tree with
#     `pkg-config --cflags --libs mediabatch-plugin` (the documented command);
#   - the installed daemon serves that plugin with weights written here, and the client
#     built above gets the network's answer, checked against numpy's y = fc2(relu(fc1(x))).
# Traffic: 127.0.0.1 only.
set -u

fail() { echo "FAIL: $*"; [ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log"; exit 1; }

build=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}
src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
py=/usr/bin/python3
tmp=$(mktemp -d)
pid=
log=$build/meson-logs/install-log.txt
[ -f "$log" ] && cp -p "$log" "$tmp/install-log.saved"
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	if [ -f "$tmp/install-log.saved" ]; then
		cp -p "$tmp/install-log.saved" "$log"
	else
		rm -f "$log"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

root=$tmp/root
meson install -C "$build" --no-rebuild --destdir "$root" --quiet >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }
pc=$(find "$root" -name mediabatch.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no mediabatch.pc installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
[ -f "$pcdir/mediabatch-plugin.pc" ] || fail "no mediabatch-plugin.pc installed"
for h in protocol.h client.h model.h weights.h ckpt.h; do
	[ -f "$root/usr/local/include/mediabatch/$h" ] || fail "mediabatch/$h not installed"
done
for l in libmediabatch.so.0 libmediabatch.a libmediabatch-plugin.so.0 libmediabatch-plugin.a; do
	[ -e "$libdir/$l" ] || fail "$l not installed in $libdir"
done
# pkg-config rewrites the .pc files' paths into the staging root
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir:/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig
version=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
	"$build/meson-info/intro-projectinfo.json")
[ "$(pkg-config --modversion mediabatch)" = "$version" ] ||
	fail "pkg-config --modversion mediabatch: $(pkg-config --modversion mediabatch), not $version"
cflags=$(pkg-config --cflags mediabatch) || fail "pkg-config --cflags mediabatch"
case "$cflags" in *"$root/usr/local/include"*) ;; *) fail "cflags '$cflags' miss the installed headers" ;; esac
echo "installed: headers, libmediabatch and libmediabatch-plugin (shared, static), pkg-config $version"

# the installed client library is a leaf: no DPDK, hwloc, CUDA; the API and nothing else
deps=$(ldd "$libdir/libmediabatch.so.0")
echo "$deps" | grep -E 'librte_|libhwloc|libcuda|libcublas|libcudnn|libopenblas|libfftw' &&
	fail "libmediabatch.so links server libraries"
# exports: exactly what the installed headers declare (each name once, as a function)
exports() { # LIB HEADER...: fail on a symbol the headers do not declare
	local lib=$1 w
	shift
	for w in $(nm -D --defined-only "$lib" | awk '$3 !~ /^MEDIABATCH/ {print $3}' | sed 's/@.*//'); do
		grep -q "\b$w(" "$@" || fail "$(basename "$lib") exports $w, which its headers do not declare"
	done
}
inc=$root/usr/local/include/mediabatch
exports "$libdir/libmediabatch.so.0" "$inc/protocol.h" "$inc/client.h"
exports "$libdir/libmediabatch-plugin.so.0" "$inc/weights.h" "$inc/ckpt.h"
for w in mb_client_connect mb_proto_decode_response mb_subscriber_recv; do
	nm -D --defined-only "$libdir/libmediabatch.so.0" | grep -q " $w@@MEDIABATCH_0$" ||
		fail "libmediabatch.so does not export $w"
done
# additions since, in node MEDIABATCH_0.1; mb_client_fleet_stats in both nodes (its struct
# grew: programs built before get the MEDIABATCH_0 version, which writes the older struct)
for w in mb_client_fleet_stats@MEDIABATCH_0 mb_client_fleet_stats@@MEDIABATCH_0.1 \
	mb_subscriber_open@@MEDIABATCH_0.1; do
	nm -D --defined-only "$libdir/libmediabatch.so.0" | grep -q " $w$" ||
		fail "libmediabatch.so does not export $w"
done
echo "libmediabatch.so: no server libraries; both libraries export their headers' API only"

# A sanitizer build's libraries need the same runtime in the programs that load them.
san=$($py -c '
import json, sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == "b_sanitize" and o["value"] != "none":
        print("-fsanitize=" + o["value"])' "$build/meson-info/intro-buildoptions.json")

# a C client, out of tree, shared and static
mkdir -p "$tmp/app" && cp "$src/examples/client/send_tensor.c" "$tmp/app/"
cd "$tmp/app" || fail "cd"
cc $san -Wall -Werror send_tensor.c $(pkg-config --cflags --libs mediabatch) -o send_tensor ||
	fail "send_tensor.c against pkg-config mediabatch"
cc $san -Wall -Werror send_tensor.c $(pkg-config --cflags mediabatch) "$libdir/libmediabatch.a" \
	$(pkg-config --libs libzmq libczmq) -o send_tensor_static || fail "send_tensor.c against libmediabatch.a"
ldd send_tensor_static | grep -q libmediabatch && fail "the static build links libmediabatch.so"
LD_LIBRARY_PATH=$libdir ldd send_tensor | grep -q "libmediabatch.so.0 => $libdir/" ||
	fail "send_tensor does not load the installed libmediabatch.so.0"
echo "examples/client/send_tensor.c: built out of tree, shared and static"

# the example plugin, out of tree, with the documented command
mkdir -p "$tmp/plugin" && cp "$src/examples/plugin/example_plugin.c" "$tmp/plugin/"
cd "$tmp/plugin" || fail "cd"
cc $san -shared -fPIC -Wall -Werror -o libexample.so example_plugin.c $(pkg-config --cflags --libs mediabatch-plugin) ||
	fail "example_plugin.c against pkg-config mediabatch-plugin"
[ "$(pkg-config --variable=abi_version mediabatch-plugin)" = \
	"$(sed -n 's/^#define MB_MODEL_ABI_VERSION \([0-9]*\)$/\1/p' "$root/usr/local/include/mediabatch/model.h")" ] ||
	fail "mediabatch-plugin.pc's abi_version is not model.h's MB_MODEL_ABI_VERSION"
echo "examples/plugin/example_plugin.c: built out of tree against the SDK"

# weights for it with the documented script, and the expected answer from numpy
$py "$src/examples/plugin/make_weights.py" "$tmp/example.safetensors" >/dev/null ||
	fail "examples/plugin/make_weights.py"
$py - "$tmp" <<'PY' || fail "the expected answer from the example's weights"
import json, struct, sys
import numpy as np
d = sys.argv[1]
raw = open(d + "/example.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
t = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                      dtype="<f4").reshape(v["shape"])
     for k, v in json.loads(raw[8:8 + n]).items()}
assert sorted(t) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"], sorted(t)
x = np.random.default_rng(8).standard_normal((3, 16)).astype(np.float32)
open(d + "/x.txt", "w").write(" ".join("%.9g" % v for v in x.ravel()))
y = np.maximum(x @ t["fc1.weight"].T + t["fc1.bias"], 0) @ t["fc2.weight"].T + t["fc2.bias"]
np.save(d + "/y.npy", y)
PY

read -r p1 p2 p3 < <($py -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
cat >"$tmp/mediabatch.yaml" <<YAML
service:
  ingest: tcp://127.0.0.1:$p1
  publish: tcp://127.0.0.1:$p2
  metrics: 127.0.0.1:$p3
weights_dir: $build/weights
devices:
  cuda: {mode: "off"}
models:
  - name: example
    plugin: $tmp/plugin/libexample.so
    weights: $tmp/example.safetensors
YAML
LD_LIBRARY_PATH=$libdir "$root/usr/local/bin/mediabatchd" --config "$tmp/mediabatch.yaml" >"$tmp/daemon.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 300); do
	if $py -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$p3/v2/models/example/ready', timeout=1)" 2>/dev/null; then
		ready=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || fail "the installed daemon exited during start-up"
	sleep 0.1
done
[ "$ready" -eq 1 ] || fail "the out-of-tree plugin not ready after 30 s"
out=$(LD_LIBRARY_PATH=$libdir "$tmp/app/send_tensor" "tcp://127.0.0.1:$p1" example 3 16 <"$tmp/x.txt") ||
	fail "send_tensor to the out-of-tree plugin: $out"
echo "$out" | $py -c '
import sys
import numpy as np
lines = sys.stdin.read().splitlines()
assert lines[0] == "OK [3 x 4]", lines[0]
got = np.array([[float(v) for v in l.split()] for l in lines[1:]], dtype=np.float64)
want = np.load(sys.argv[1]).astype(np.float64)
assert got.shape == want.shape, (got.shape, want.shape)
err = np.abs(got - want).max()
assert err < 1e-5, "max abs error %g\n%s\n%s" % (err, got, want)
print("the out-of-tree plugin answered y = fc2(relu(fc1(x))) within %.1e of numpy" % err)
' "$tmp/y.npy" || fail "wrong answer from the out-of-tree plugin: $out"
out2=$("$tmp/app/send_tensor_static" "tcp://127.0.0.1:$p1" example 3 16 <"$tmp/x.txt") ||
	fail "the static client: $out2"
[ "$out2" = "$out" ] || fail "the static client got another answer: $out2"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc, not 0"
echo "the installed daemon served the out-of-tree plugin to both clients, and drained to exit 0"
