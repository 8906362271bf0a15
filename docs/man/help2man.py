#!/usr/bin/env python3
"""help2man.py: the man page of one program from its --help, through help2man.

help2man reads GNU-style help text. The programs here print theirs in nearly that shape;
what help2man would render badly is adjusted first (the programs' output itself is left as
it is):
  - "usage:" is lower case and further forms are indented under it, where help2man wants
    "Usage:" and "  or: " (without this there is no SYNOPSIS and the forms run together as
    one paragraph of the DESCRIPTION);
  - a wrapped usage line (an indented line that does not start with the program's name)
    is joined to the line before;
  - an option whose description starts with "-" ("--datagram BYTES   --udp datagram
    size") is taken by help2man for one long option: the description goes on a line of its
    own, which help2man reads as the option's;
  - a paragraph whose lines after the first are indented ("subscribe: ...", then
    "  (needs --tenant), ...") becomes one paragraph, not a line and an indented block;
  - the "Signals:" and "Exit status:" paragraphs become sections of their own (SIGNALS,
    EXIT STATUS), so that the man page has the usual EXIT STATUS section with the program's
    own words in it.
The adjusted text is served to help2man by a small wrapper named like the program (help2man
takes the program's name from the executable it runs); the version comes from the build
(--version-string), so the page does not depend on how the program was configured.

Usage: help2man.py --help2man PATH --program EXE --name TEXT --version V
                   [--include FILE] --output FILE
"""
import argparse
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile

SECTIONS = ("Signals", "Exit status")


def fix_usage(lines, prog):
    """Usage lines as help2man wants them: 'Usage: PROG ...' then '  or: PROG ...'."""
    if not lines or not lines[0].lower().startswith("usage: "):
        return lines
    out = ["Usage: " + lines[0][len("usage: "):].strip()]
    i = 1
    while i < len(lines) and lines[i][:1].isspace() and lines[i].strip():
        s = lines[i].strip()
        if s == prog or s.startswith(prog + " "):
            out.append("  or: " + s)
        else:
            out[-1] += " " + s
        i += 1
    return out + lines[i:]


def fix_layout(lines):
    """Options whose description starts with '-', and hanging-indent paragraphs."""
    out = []
    hanging = False  # the line before is flush left and not a heading ("options:")
    for line in lines:
        m = re.match(r"^( {1,10}[+-]\S*(?: \S+)*)(  +)(-.*)$", line)
        if m:
            out += [m.group(1), " " * max(20, len(m.group(1)) + len(m.group(2))) + m.group(3)]
            hanging = False
        elif hanging and line[:1] == " " and line.strip() and line.strip()[0] != "-":
            out[-1] += " " + line.strip()
        else:
            hanging = (bool(line.strip()) and line[:1] != " " and not line.endswith(":")
                       and not line.startswith("Usage: "))
            out.append(line)
    return out


def split_sections(lines):
    """Left-justified paragraphs that start (or have a sentence that starts) with one of
    SECTIONS become '*Section*' headings, which help2man turns into sections."""
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    pat = re.compile(r"(?:^|(?<=\. ))(%s): " % "|".join(SECTIONS))
    out = []
    for p in paras:
        text = " ".join(s.strip() for s in p)
        if p[0][:1].isspace() or not pat.search(text):
            out += p + [""]
            continue
        cuts = [m.start() for m in pat.finditer(text)]
        head = text[:cuts[0]].strip()
        if head:
            out += [head, ""]
        for a, b in zip(cuts, cuts[1:] + [len(text)]):
            m = pat.match(text, a)
            body = text[m.end():b].strip()
            out += ["*%s*" % m.group(1), body[:1].upper() + body[1:], ""]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--help2man", required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--include")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()

    program = os.path.abspath(a.program)
    prog = os.path.basename(program)
    res = subprocess.run([program, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60)
    if res.returncode != 0 or not res.stdout.strip():
        sys.exit("help2man.py: %s --help: exit %d, %d bytes on stdout: %s"
                 % (a.program, res.returncode, len(res.stdout), res.stderr.strip()))
    lines = split_sections(fix_layout(fix_usage(res.stdout.rstrip("\n").split("\n"), prog)))

    with tempfile.TemporaryDirectory(prefix="help2man.") as tmp:
        help_file = os.path.join(tmp, "help.txt")
        with open(help_file, "w") as f:
            f.write("\n".join(lines).rstrip("\n") + "\n")
        wrapper = os.path.join(tmp, prog)
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\n[ "$1" = --help ] && exec cat %s\nexec %s "$@"\n'
                    % (shlex.quote(help_file), shlex.quote(program)))
        os.chmod(wrapper, stat.S_IRWXU)
        cmd = [a.help2man, "--no-info", "--section", "1", "--name", a.name,
               "--version-string", a.version, "--output", a.output]
        if a.include:
            cmd += ["--include", a.include]
        # help2man runs "$EXECUTABLE --help" through the shell: no spaces in the path
        # (the temporary directory has none; its own path comes from TMPDIR)
        if any(c.isspace() for c in wrapper):
            sys.exit("help2man.py: the temporary directory %s has white space in its name" % tmp)
        subprocess.run(cmd + [wrapper], check=True, timeout=120)


if __name__ == "__main__":
    main()
