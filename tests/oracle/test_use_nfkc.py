#!/usr/bin/python3
"""test_use_nfkc: the tokenizer's NFKC (utf8proc, through `ievo embed --normalize`) against Node's
String.prototype.normalize("NFKC"), the normaliser the USE tokenizer's JavaScript uses: every code
point on its own (1.1 M lines; surrogates, "\\n" and "\\r" excepted) and 200,000 random sequences
of starters, combining marks of many classes, Hangul jamo and syllables, and compatibility
characters, where the canonical reordering and composition rules decide the result.

Unicode versions: utf8proc and Node's ICU each normalise by their own Unicode version, and each
leaves a code point that its version does not assign unchanged. A line that holds a code point one
side leaves unassigned may therefore differ; such lines are left out and counted by side (the
utf8proc side asks the very libutf8proc that ievo links, through ctypes, for its category Cn), and
every other line must agree. With Debian 12's nodejs (ICU 72) both are at Unicode 15.0 and nothing
is left out; a newer Node (here: Unicode 17.0) normalises a few later code points that utf8proc
passes through, and the test prints how many lines that is, and the first of them. Without node on
PATH the code points are compared with Python's unicodedata instead, for the code points its
Unicode version assigns (and the test says so).
"""
import ctypes
import ctypes.util
import json
import os
import random
import shutil
import subprocess
import sys
import unicodedata

BIN = os.environ.get("IEVO_BIN", "ievo")

NODE_NFKC = r"""
const lines = require("fs").readFileSync(0, "utf8").split("\n");
lines.pop();
// [NFKC, 1 when the line holds a code point this runtime's Unicode version leaves unassigned]
process.stdout.write(lines.map((l) => JSON.stringify([l.normalize("NFKC"), /\p{Cn}/u.test(l) ? 1 : 0])).join("\n") + "\n");
process.stderr.write("Unicode " + process.versions.unicode + ", ICU " + process.versions.icu);
"""

POOL = [0x61, 0x41, 0x65, 0x6F, 0x75, 0x73, 0x300, 0x301, 0x302, 0x303, 0x307, 0x308, 0x30A, 0x323, 0x327, 0x328,
        0x334, 0x345, 0x35C, 0x35D, 0x3B1, 0x3C9, 0x399, 0x1100, 0x1161, 0x11A8, 0x11C2, 0xAC00, 0xAC01, 0x5D0,
        0x5B0, 0x5BC, 0x5C1, 0x64B, 0x651, 0x654, 0x627, 0x93F, 0x94D, 0x93C, 0x915, 0xB47, 0xB3E, 0xB57, 0xFB01,
        0x1E69, 0x1E9B, 0xF73, 0xF71, 0xF72, 0xF80, 0x3099, 0x309A, 0x304B, 0x30AB, 0xFF76, 0xFF9E, 0x1D15E,
        0x1D165, 0x1D16E, 0xE9, 0x20, 0xFF21, 0x2460, 0x212B, 0x2126, 0x1E0A, 0x1E0C, 0x104, 0x17F, 0x1F80,
        0x3300, 0xFDFA, 0x1F1EB, 0x1F3FD, 0x200D, 0x11099, 0x110BA, 0x1133E, 0x11347, 0x1D7CE]


def utf8proc_unassigned():
    """A predicate: does the libutf8proc that ievo links leave this code point unassigned (Cn)?"""
    name = ctypes.util.find_library("utf8proc")
    if not name:
        raise SystemExit("libutf8proc not found (ctypes.util.find_library): it is what ievo normalises with")
    lib = ctypes.CDLL(name)
    lib.utf8proc_category.argtypes = [ctypes.c_int32]
    lib.utf8proc_category.restype = ctypes.c_int
    lib.utf8proc_unicode_version.restype = ctypes.c_char_p
    cn = {c for c in range(0x110000) if lib.utf8proc_category(c) == 0}  # UTF8PROC_CATEGORY_CN
    return (lambda s: any(ord(ch) in cn for ch in s)), lib.utf8proc_unicode_version().decode()


def main():
    lines = [chr(c) for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF) and c not in (0x0A, 0x0D)]
    n_single = len(lines)
    rng = random.Random(15)
    for _ in range(200000):
        lines.append("".join(chr(rng.choice(POOL)) for _ in range(rng.randint(1, 8))))
    data = "\n".join(lines).encode("utf-8") + b"\n"
    r = subprocess.run([BIN, "embed", "--normalize"], input=data, capture_output=True)
    if r.returncode != 0:
        raise SystemExit("ievo embed --normalize failed: " + r.stderr.decode(errors="replace"))
    got = [json.loads(line)["nfkc"] for line in r.stdout.decode("utf-8").split("\n")[:-1]]
    if len(got) != len(lines):
        raise SystemExit("%d lines in, %d out" % (len(lines), len(got)))
    if shutil.which("node"):
        js = subprocess.run(["node", "-e", NODE_NFKC], input=data, capture_output=True)
        if js.returncode != 0:
            raise SystemExit("node failed: " + js.stderr.decode(errors="replace"))
        rows = [json.loads(line) for line in js.stdout.decode("utf-8").split("\n")[:-1]]
        want = [r[0] for r in rows]
        # A difference on a line holding a code point that one side's Unicode version does not
        # assign is that version gap (see the module comment): left out, counted per side.
        unassigned_here, uversion = utf8proc_unassigned()
        newer_than_node = [i for i, r in enumerate(rows) if r[1] and got[i] != r[0]]
        newer_than_utf8proc = [i for i, r in enumerate(rows)
                               if not r[1] and got[i] != r[0] and unassigned_here(lines[i])]
        skip = set(newer_than_node) | set(newer_than_utf8proc)
        idx = [i for i in range(len(rows)) if i not in skip]
        oracle = ("Node (%s; left out: %d lines that differ on code points newer than Node, %d on code points "
                  "newer than utf8proc's Unicode %s)" % (js.stderr.decode(), len(newer_than_node),
                                                          len(newer_than_utf8proc), uversion))
        if newer_than_utf8proc:
            cps = sorted({ord(lines[i][0]) for i in newer_than_utf8proc if i < n_single})
            print("test_use_nfkc: Node normalises, and utf8proc %s leaves unchanged, %d code points assigned "
                  "after Unicode %s: %s" % (uversion, len(cps), uversion, ", ".join("U+%04X" % c for c in cps)))
    else:
        want = [unicodedata.normalize("NFKC", s) for s in lines]
        oracle = "Python unicodedata %s (no node on PATH)" % unicodedata.unidata_version
        idx = [i for i, s in enumerate(lines) if all(unicodedata.category(ch) != "Cn" for ch in s)]
    bad = [i for i in idx if got[i] != want[i]]
    for i in bad[:10]:
        print("FAIL: %s -> ievo %s, %s %s" % ([hex(ord(ch)) for ch in lines[i]], [hex(ord(ch)) for ch in got[i]],
                                              oracle.split()[0], [hex(ord(ch)) for ch in want[i]]), file=sys.stderr)
    if bad:
        print("test_use_nfkc: %d of %d lines differ from %s" % (len(bad), len(idx), oracle), file=sys.stderr)
        sys.exit(1)
    print("test_use_nfkc: ok: %d code points and %d sequences normalise as %s does" %
          (n_single, len(lines) - n_single, oracle))


if __name__ == "__main__":
    main()
