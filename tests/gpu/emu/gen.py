#!/usr/bin/env python3
"""gen.py: one of gpu/*.cu as C++ for the host emulation of CUDA (emu.h), at build time.

    gen.py IN.cu OUT.cpp [--replace OLD NEW]...
    gen.py IN.h OUT.h [--replace OLD NEW]...

The second form: a private header of device code that the .cu files include (gpu/meson.build's
mb_cuda_headers), written under the same name beside the generated .cpp files, which find it
there before gpu/'s (tests/gpu/emu/meson.build). The same rewrites; its include guard keeps
it to one copy per file.

The source is kept as it is, line for line (a #line directive points compiler messages and
debuggers at the .cu file), but for four rewrites:

  k<<<grid, block[, shm[, stream]]>>>(args)
      -> emu_launch<&k>("k (file:line)", EmuCfg(grid, block[, shm[, stream]]), args)
  __shared__ T name[N]...;
      -> static T name[N]...; emu_shared_fill(&name, sizeof(name));
         (one array per block, as the blocks run one at a time; 0xff again in every block)
  mb_tf_carve(
      -> emu_carve(   (each part of a run's allocation its own guarded mapping)
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      -> v = emu_xor_butterfly(v, 0);   (v = fmaxf(v, ...): emu_xor_butterfly(v, 1))
         the same five exchanges and the same arithmetic, lane by lane, done as one warp
         operation instead of five: a fifth of the thread switches (emu.h)

--replace OLD NEW replaces the one occurrence of OLD in the source by NEW before that (it
fails when OLD does not occur exactly once): a deliberate bug, to see that gpu/emulated
notices it. Over the generated file in a build dir B, which ninja then keeps (it is newer
than the .cu) until it is removed:

    tests/gpu/emu/gen.py --replace 'OLD' 'NEW' gpu/cuda_tf.cu B/tests/gpu/emu/cuda_tf.emu.cpp
    ninja -C B tests/gpu/emu/gpu_emulated && B/tests/gpu/emu/gpu_emulated    # must fail
    rm B/tests/gpu/emu/cuda_tf.emu.cpp                # the next build makes it again

Anything it cannot rewrite (a launch it does not recognise, extern __shared__) stops the
build with a message rather than being passed on.
"""
import os
import re
import sys

LAUNCH = re.compile(
    r"(?P<k>\b[A-Za-z_]\w*(?:\s*<[^<>;(){}]*>)?)(?P<ws1>\s*)<<<(?P<cfg>.*?)>>>(?P<ws2>\s*)\(",
    re.S)
# the warp reduction `for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);`
# (or v = fmaxf(v, __shfl_xor_sync(...))), exactly so: any other loop stays as it is
BUTTERFLY = re.compile(
    r"for\s*\(\s*int\s+(?P<o>\w+)\s*=\s*16\s*;\s*(?P=o)\s*>\s*0\s*;\s*(?P=o)\s*>>=\s*1\s*\)"
    r"(?P<ws>\s*)(?:"
    r"(?P<sum>\w+)\s*\+=\s*__shfl_xor_sync\(\s*0xffffffffu?\s*,\s*(?P=sum)\s*,\s*(?P=o)\s*\)"
    r"|(?P<max>\w+)\s*=\s*fmaxf\(\s*(?P=max)\s*,\s*"
    r"__shfl_xor_sync\(\s*0xffffffffu?\s*,\s*(?P=max)\s*,\s*(?P=o)\s*\)\s*\))\s*;")
SHARED = re.compile(r"\b__shared__\s+(?P<decl>[^;{}]+);")
CARVE = re.compile(r"\bmb_tf_carve\s*\(")


def fail(src, msg):
    sys.stderr.write("gen.py: %s: %s\n" % (src, msg))
    sys.exit(1)


def main(argv):
    args = argv[1:]
    repl = []
    while "--replace" in args:
        i = args.index("--replace")
        if i + 2 >= len(args):
            fail("-", "--replace takes OLD and NEW")
        repl.append((args[i + 1], args[i + 2]))
        del args[i:i + 3]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    src, dst = args
    with open(src, encoding="utf-8") as f:
        text = f.read()
    for old, new in repl:
        if text.count(old) != 1:
            fail(src, "--replace: %r occurs %d times, not once" % (old, text.count(old)))
        text = text.replace(old, new)
    name = os.path.basename(src)

    def launch(m):
        kernel = " ".join(m.group("k").split())
        line = text.count("\n", 0, m.start()) + 1
        # keep the lines: the whitespace dropped around <<< >>> may hold newlines
        nl = "\n" * (m.group("ws1").count("\n") + m.group("ws2").count("\n"))
        empty = re.match(r"\s*\)", text[m.end():]) is not None
        return 'emu_launch<&%s>("%s (%s:%d)", EmuCfg(%s)%s%s' % (
            kernel, kernel, name, line, m.group("cfg"), "" if empty else ", ", nl)

    def shared(m):
        decl = m.group("decl").strip()
        ident = re.match(r".*?\b([A-Za-z_]\w*)\s*(\[|$)", decl, re.S)
        if ident is None:
            fail(src, "a __shared__ declaration not understood: %r" % decl)
        return "static %s; emu_shared_fill(&%s, sizeof(%s));" % (decl, ident.group(1),
                                                                  ident.group(1))

    def butterfly(m):
        v, op = (m.group("sum"), 0) if m.group("sum") else (m.group("max"), 1)
        return "%s = emu_xor_butterfly(%s, %d);%s" % (v, v, op, "\n" * m.group(0).count("\n"))

    if re.search(r"\bextern\s+__shared__", text):
        fail(src, "dynamic shared memory (extern __shared__) is not emulated")
    text, launches = LAUNCH.subn(launch, text)
    text, butterflies = BUTTERFLY.subn(butterfly, text)
    text, shareds = SHARED.subn(shared, text)
    text, carves = CARVE.subn("emu_carve(", text)
    for left in ("<<<", "__shared__"):
        if left in text:
            line = text.count("\n", 0, text.index(left)) + 1
            fail(src, "line %d: a %s that gen.py did not rewrite" % (line, left))
    with open(dst, "w", encoding="utf-8") as f:
        f.write("// Generated from %s by tests/gpu/emu/gen.py (%d launches, %d __shared__, "
                "%d carves, %d butterflies): do not edit.\n"
                % (src, launches, shareds, carves, butterflies))
        f.write('#include "emu.h"\n#line 1 "%s"\n' % src)
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
