#!/usr/bin/env python3
"""use_nfkc_gen: writes model/use_nfkc_data.h, the Unicode tables of model/use_nfkc.c.

The USE tokenizer normalises with JavaScript's String.prototype.normalize("NFKC"), i.e. the ICU
inside Node.js. So the tables are read off Node itself (its Unicode version is written into the
header), not off Python's older unicodedata:

  decomp  every code point whose NFKD differs from itself -> its full NFKD (already in canonical
          order), Hangul syllables excluded (they are algorithmic in use_nfkc.c)
  ccc     the canonical combining class of every code point that survives NFKD and is not a
          starter. Node has no API for it, so it is found by probing the canonical reordering:
          in NFD("a" + m + c), c moves before m exactly when ccc(m) > ccc(c) > 0. Each non-starter
          is compared with one representative mark of every class Python's unicodedata knows, and
          the classes of code points Python knows are cross-checked.
  compose the primary composites: code points with NFD != self and NFC == self. Each one's
          two-element canonical decomposition (X, m) is NFC(NFD minus its last code point) and that
          last code point; the script checks NFC(X m) == composite and NFD(X) m == NFD(composite).

Usage: python3 model/use_nfkc_gen.py [node]      (run from anywhere; needs node on PATH)
tests/oracle/test_use_nfkc.py checks the C normaliser built from these tables against Node.
"""
import json
import os
import subprocess
import sys
import unicodedata

JS = r"""
const out = { unicode: process.versions.unicode, icu: process.versions.icu, decomp: [], nonstarter: [], compose: [] };
const chr = (c) => String.fromCodePoint(c);
const cps = (s) => Array.from(s, (ch) => ch.codePointAt(0));
for (let c = 0; c <= 0x10ffff; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  if (c >= 0xac00 && c <= 0xd7a3) continue; // Hangul syllables: algorithmic
  const s = chr(c);
  const kd = s.normalize("NFKD");
  if (kd !== s) { out.decomp.push([c, cps(kd)]); continue; }
  // survives NFKD: is it a non-starter? (see the module comment)
  const p1 = "a" + s + "\u0334", p2 = "a\u0301" + s;
  if (p1.normalize("NFD") !== p1 || p2.normalize("NFD") !== p2) out.nonstarter.push(c);
}
for (let c = 0; c <= 0x10ffff; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  if (c >= 0xac00 && c <= 0xd7a3) continue;
  const s = chr(c);
  const d = s.normalize("NFD");
  if (d === s || s.normalize("NFC") !== s) continue;
  const dc = cps(d);
  const last = dc[dc.length - 1];
  const first = cps(String.fromCodePoint(...dc.slice(0, -1)).normalize("NFC"));
  out.compose.push([c, first, last]);
}
// class probes: for each non-starter c and representative r, [r-before-c moved, c-before-r moved]
const reps = JSON.parse(require("fs").readFileSync(0, "utf8"));
out.probe = {};
for (const c of out.nonstarter) {
  const row = [];
  for (const [v, r] of reps) {
    const a = "a" + chr(r) + chr(c), b = "a" + chr(c) + chr(r);
    row.push([a.normalize("NFD") !== a ? 1 : 0, b.normalize("NFD") !== b ? 1 : 0]);
  }
  out.probe[c] = row;
}
process.stdout.write(JSON.stringify(out));
"""


def main():
    node = sys.argv[1] if len(sys.argv) > 1 else "node"
    # One representative mark per combining class that Python knows (a mark NFKD leaves alone).
    reps = {}
    for c in range(0x110000):
        v = unicodedata.combining(chr(c))
        if v and v not in reps and unicodedata.normalize("NFKD", chr(c)) == chr(c):
            reps[v] = c
    reps = sorted(reps.items())
    r = subprocess.run([node, "-e", JS], input=json.dumps(reps), capture_output=True, text=True, check=True)
    d = json.loads(r.stdout)

    ccc = {}
    for c in d["nonstarter"]:
        row = d["probe"][str(c)]
        # c's class v: no move against the representative of v in either order
        eq = [v for (v, _), (ab, ba) in zip(reps, row) if not ab and not ba]
        lower = [v for (v, _), (ab, ba) in zip(reps, row) if ba]   # ccc(c) > v
        higher = [v for (v, _), (ab, ba) in zip(reps, row) if ab]  # ccc(c) < v
        if len(eq) != 1:
            sys.exit(f"use_nfkc_gen: U+{c:04X}: cannot place its combining class (equal to {eq})")
        v = eq[0]
        if any(x >= v for x in lower) or any(x <= v for x in higher):
            sys.exit(f"use_nfkc_gen: U+{c:04X}: inconsistent class probes")
        known = unicodedata.combining(chr(c))
        if unicodedata.category(chr(c)) != "Cn" and known != v:
            sys.exit(f"use_nfkc_gen: U+{c:04X}: probed class {v}, Python says {known}")
        ccc[c] = v
    # every mark Python knows must have been found
    for c in range(0x110000):
        k = unicodedata.combining(chr(c))
        if k and unicodedata.normalize("NFKD", chr(c)) == chr(c) and c not in ccc:
            sys.exit(f"use_nfkc_gen: U+{c:04X} (class {k}) not found as a non-starter")

    # ranges of equal class
    ranges = []
    for c in sorted(ccc):
        if ranges and ranges[-1][1] == c - 1 and ranges[-1][2] == ccc[c]:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, ccc[c]])

    pairs = []
    for c, first, last in d["compose"]:
        if len(first) != 1:
            sys.exit(f"use_nfkc_gen: U+{c:04X}: first part of its decomposition is not one code point")
        pairs.append((first[0], last, c))
    pairs.sort()

    data, entries = [], []
    for c, kd in d["decomp"]:
        entries.append((c, len(data), len(kd)))
        data.extend(kd)
    if len(data) >= 1 << 16 or max(n for _, _, n in entries) > 255:
        sys.exit("use_nfkc_gen: tables outgrew their index types")

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "use_nfkc_data.h")
    with open(path, "w") as f:
        w = f.write
        w("/* use_nfkc_data: Unicode tables for use_nfkc.c. GENERATED by model/use_nfkc_gen.py from\n")
        w(f" * Node.js's ICU {d['icu']} (Unicode {d['unicode']}): do not edit. See that script for how. */\n")
        w("#ifndef IEVO_USE_NFKC_DATA_H\n#define IEVO_USE_NFKC_DATA_H\n\n#include <stdint.h>\n\n")
        w(f'#define USE_NFKC_UNICODE_VERSION "{d["unicode"]}"\n\n')
        w("/* Full NFKD of every code point that has one (Hangul syllables excluded): sorted by cp;\n")
        w(" * the decomposition is use_nfkc_kd_data[off .. off+len). */\n")
        w("typedef struct { uint32_t cp; uint16_t off; uint8_t len; } use_nfkc_kd;\n")
        w(f"static const use_nfkc_kd use_nfkc_kd_index[{len(entries)}] = {{\n")
        for i in range(0, len(entries), 4):
            w("    " + " ".join(f"{{0x{c:X}, {o}, {n}}}," for c, o, n in entries[i:i + 4]) + "\n")
        w("};\n")
        w(f"static const uint32_t use_nfkc_kd_data[{len(data)}] = {{\n")
        for i in range(0, len(data), 10):
            w("    " + " ".join(f"0x{x:X}," for x in data[i:i + 10]) + "\n")
        w("};\n\n")
        w("/* Canonical combining classes, as sorted ranges [lo, hi] of one class; absent = 0. */\n")
        w("typedef struct { uint32_t lo, hi; uint8_t ccc; } use_nfkc_ccc_range;\n")
        w(f"static const use_nfkc_ccc_range use_nfkc_ccc_ranges[{len(ranges)}] = {{\n")
        for i in range(0, len(ranges), 4):
            w("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {v}}}," for a, b, v in ranges[i:i + 4]) + "\n")
        w("};\n\n")
        w("/* Primary composites: (first, second) -> composite, sorted by (first, second); Hangul excluded. */\n")
        w("typedef struct { uint32_t first, second, composite; } use_nfkc_pair;\n")
        w(f"static const use_nfkc_pair use_nfkc_pairs[{len(pairs)}] = {{\n")
        for i in range(0, len(pairs), 4):
            w("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in pairs[i:i + 4]) + "\n")
        w("};\n\n#endif\n")
    print(f"use_nfkc_gen: wrote {path}: Unicode {d['unicode']}, {len(entries)} decompositions "
          f"({len(data)} code points), {len(ccc)} non-starters in {len(ranges)} ranges, {len(pairs)} composition pairs")


if __name__ == "__main__":
    main()
