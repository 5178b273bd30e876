"""`ievo report`: a self-contained HTML page from a real run, rendered by headless Chromium.

A run over TCP: `ievo broker`, the synthetic generator producing at a fixed rate with its ground
truth (`--truth`), a worker with metrics on, and this test scraping the worker's /metrics every
0.5 s into a JSON-lines time series {"t", "applied", "consumed", "lag"} (the format `ievo report
--series` reads; it also exercises the metrics server under a live worker). Then the outputs
are read back with `ievo consume` and the page is made from the three files. When ML-100K is
present, a second, smaller run on MovieLens adds the `--movielens` view (genres of what each
user rated over windows of events).

Checks:
  1. the page is self-contained: no http:// or https:// anywhere, no <script>, <link>, <img>,
     <iframe>, @import or url(...): nothing to fetch;
  2. it holds what was asked: the throughput and lag charts, one section per shown user (the
     most active ones, by their ids), the true-topic strip with --truth, genres with --movielens;
  3. Debian's Chromium (headless, no network) renders it, and the screenshot (decoded here with
     zlib + struct) is not blank: most 200-px bands of the page have ink, there are many
     colours, and thousands of pixels in the charts' own colours (lines and bars drew, not only
     text). The same checks reject an all-white and a text-only (grey) image;
  4. bad inputs fail with a message naming the file (and line).

Needs Debian's `chromium` (scripts/install-deps.sh test); nothing is installed at test time.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, ML100K, Broker, Workdir, free_port, have_movielens, ievo, log, scrape,
                     start_proc, stop_proc)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
USERS, EVENTS, RATE = 200, 12000, 1500
BLUE, RED = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)   # line colour; switch markers (REPORT_PALETTE)


# ---- PNG -----------------------------------------------------------------------------------------

def read_png(path):
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unexpected PNG format {hdr}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert f == 0, f"bad filter {f}"
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def write_png(path, w, h, pixel):
    """A w x h RGB PNG of one colour (the negative controls)."""
    row = b"\x00" + bytes(pixel) * w
    raw = zlib.compress(row * h)
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def image_stats(path, band=200):
    """What the page shows: ink per band, distinct colours, saturated pixels, chart-colour pixels."""
    w, h, bpp, rows = read_png(path)
    colours, bands, saturated, near = Counter(), [], 0, Counter()
    for y0 in range(0, h, band):
        ink = total = 0
        for y in range(y0, min(y0 + band, h)):
            r = rows[y]
            for x in range(0, w * bpp, bpp * 2):       # every other pixel: plenty, and twice as fast
                px = (r[x], r[x + 1], r[x + 2])
                total += 1
                colours[px] += 1
                if min(px) < 235:
                    ink += 1
                if max(px) - min(px) >= 80:
                    saturated += 1
                for name, c in (("blue", BLUE), ("red", RED)):
                    if abs(px[0] - c[0]) + abs(px[1] - c[1]) + abs(px[2] - c[2]) <= 30:
                        near[name] += 1
        bands.append(ink / total)
    return {"size": (w, h), "bands": bands, "colours": len(colours), "saturated": saturated, "near": dict(near)}


def looks_rendered(st):
    """None when the screenshot shows a page with charts, else why not."""
    inked = sum(1 for b in st["bands"] if b > 0.01)
    if inked < len(st["bands"]) * 0.6:
        return f"only {inked} of {len(st['bands'])} bands have ink: {['%.3f' % b for b in st['bands']]}"
    if st["colours"] < 40:
        return f"only {st['colours']} distinct colours"
    if st["saturated"] < 3000:
        return f"only {st['saturated']} saturated pixels: no chart drew"
    if st["near"].get("blue", 0) < 500:
        return f"only {st['near'].get('blue', 0)} pixels of the line colour"
    return None


def screenshot(html, png, wd, height=1600):
    """Debian's Chromium, headless and offline, as the machine notes say (flags against its
    background connections, a fresh profile)."""
    profile = wd("chromium-profile-" + os.path.basename(png))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=1200,{height}", "file://" + html]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise AssertionError("chromium did not finish in 90 s")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)   # any helper process left in its session
        except ProcessLookupError:
            pass
    assert p.returncode == 0 and os.path.exists(png), f"chromium exited {p.returncode}: {out.decode(errors='replace')[-2000:]}"


def check_self_contained(html_text):
    for pat in (r"https?://", r"<script", r"<link", r"<img", r"<iframe", r"<object", r"<embed", r"@import", r"url\(",
                r"\bsrc\s*=", r"\bhref\s*="):
        m = re.search(pat, html_text, re.I)
        assert not m, f"the report references something outside itself: {html_text[max(0, m.start() - 80):m.end() + 80]!r}"


# ---- the run -------------------------------------------------------------------------------------

def synthetic_run(wd):
    """A worker running while input flows; /metrics scraped into series.jsonl. Returns paths."""
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "11")
    topics = ["user-actions:4", "state-changelog:4", "interest-vectors:8", "user-actions.dlq:1"]
    port = free_port()
    with Broker(topics, workdir=wd.path) as b:
        procs = {}
        try:
            procs["worker"] = start_proc([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=report", "-X",
                                          f"state.dir={wd('state')}", "-X", f"model.path={model}", "-X",
                                          "changelog.topic=state-changelog", "-X", f"metrics.listen=127.0.0.1:{port}",
                                          "-X", "batch.timeout.ms=50", *FAST_GROUP], wd("worker.log"))
            procs["produce"] = start_proc([IEVO, "produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic",
                                           f"{USERS}:{EVENTS}", "--rate", RATE, "--truth", wd("truth.jsonl")],
                                          wd("produce.log"))
            t0, snaps = time.time(), 0
            with open(wd("series.jsonl"), "w") as f:
                while True:
                    assert procs["worker"].poll() is None, "worker exited: " + open(wd("worker.log")).read()[-3000:]
                    m = scrape(port)
                    if m:
                        lags = [v for k, v in m.items() if k.startswith("ievo_consumer_lag{")]
                        f.write(json.dumps({"t": round(time.time() - t0, 3), "applied": m["ievo_events_applied_total"],
                                            "consumed": m["ievo_events_consumed_total"],
                                            "lag": sum(lags) if lags else None}) + "\n")
                        f.flush()
                        snaps += 1
                        if m["ievo_events_applied_total"] >= EVENTS and procs["produce"].poll() is not None:
                            break
                    assert time.time() - t0 < 60, f"the worker did not apply {EVENTS} events in 60 s"
                    time.sleep(0.5)
            assert procs["produce"].returncode == 0, open(wd("produce.log")).read()
            assert stop_proc(procs.pop("worker"), 60) == 0, open(wd("worker.log")).read()[-3000:]
            log(f"[report] synthetic run: {snaps} snapshots of /metrics over {time.time() - t0:.1f} s")
            with open(wd("vectors.jsonl"), "wb") as out:
                ievo("consume", "-b", b.bootstrap, "-t", "interest-vectors", "--from-beginning", "--until-eof",
                     stdout=out)
        finally:
            for p in procs.values():
                stop_proc(p, 20)
    return wd("series.jsonl"), wd("vectors.jsonl"), wd("truth.jsonl")


def movielens_run(wd, limit=8000):
    model = wd("ml-model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-movielens", ML100K, "--init-seed", "11")
    os.makedirs(wd("ml"), exist_ok=True)
    with Broker(["user-actions:4", "state-changelog:4", "interest-vectors:16", "user-actions.dlq:1"],
                workdir=wd("ml")) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--movielens", ML100K, "--count", limit)
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=report-ml", "-X", f"state.dir={wd('ml-state')}", "-X",
             f"model.path={model}", "-X", "changelog.topic=state-changelog", *FAST_GROUP, "--until-eof", timeout=300)
        with open(wd("ml-vectors.jsonl"), "wb") as out:
            ievo("consume", "-b", b.bootstrap, "-t", "interest-vectors", "--from-beginning", "--until-eof", stdout=out)
    return wd("ml-vectors.jsonl")


def top_users(vectors, n):
    events = {}
    for line in open(vectors):
        o = json.loads(line)
        events[o["user_id"]] = max(events.get(o["user_id"], 0), o["events"])
    return [u for u, _ in sorted(events.items(), key=lambda kv: (-kv[1], kv[0]))[:n]], len(events)


def main():
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-deps.sh test)")
    wd = Workdir("report")
    t0 = time.time()

    # The checker itself must reject blank and text-only images.
    write_png(wd("white.png"), 300, 400, (255, 255, 255))
    write_png(wd("grey.png"), 300, 400, (90, 90, 90))
    for bad in ("white.png", "grey.png"):
        assert looks_rendered(image_stats(wd(bad))), f"the screenshot check accepted {bad}"

    series, vectors, truth = synthetic_run(wd)
    html = wd("report.html")
    ievo("report", "--out", html, "--series", series, "--vectors", vectors, "--truth", truth, "--users", 4,
         "--title", "ievo report test")
    text = open(html, encoding="utf-8").read()
    check_self_contained(text)
    shown, n_users = top_users(vectors, 4)
    for u in shown:
        assert f"<h3>User {u}</h3>" in text, f"most active user {u} has no section"
    assert text.count("<h3>User ") == 4, "expected exactly 4 user sections"
    for caption in ("Events per second", "Consumer lag", "Mean drift", "true topic", "Interest vector over the history"):
        assert caption in text, f"missing: {caption}"
    assert f"{n_users} users" in text and f"{EVENTS} distinct" in text, "summary table"
    assert text.count("<svg") >= 3 + 2 * 4, text.count("<svg")
    png = wd("report.png")
    screenshot(html, png, wd)
    st = image_stats(png)
    why = looks_rendered(st)
    assert not why, f"the rendered report looks blank or chartless: {why}"
    assert st["near"].get("red", 0) >= 50, f"no topic-switch markers drew: {st['near']}"
    log(f"[report] synthetic page {len(text)} bytes; screenshot {st['size']}: {st['colours']} colours, "
        f"{st['saturated']} saturated px, chart colours {st['near']}, ink per band "
        f"{' '.join('%.2f' % b for b in st['bands'])}")

    if have_movielens():
        mlv = movielens_run(wd)
        mlhtml = wd("report-ml.html")
        ievo("report", "--out", mlhtml, "--series", series, "--vectors", mlv, "--movielens", ML100K, "--users", 3)
        mtext = open(mlhtml, encoding="utf-8").read()
        check_self_contained(mtext)   # u.item carries IMDb URLs: they must not leak in
        assert mtext.count("<figcaption>Genres of the items rated") == 3 and "Last items:" in mtext, "movielens genre view"
        mpng = wd("report-ml.png")
        screenshot(mlhtml, mpng, wd, height=2400)
        mst = image_stats(mpng)
        why = looks_rendered(mst)
        assert not why, f"the MovieLens report looks blank: {why}"
        log(f"[report] movielens page {len(mtext)} bytes; screenshot: {mst['colours']} colours, "
            f"{mst['saturated']} saturated px")
    else:
        log(f"[report] {ML100K} absent: the --movielens view is not exercised")

    # Bad inputs: a message naming the file (and the line), exit 1.
    r = ievo("report", "--out", wd("x.html"), "--vectors", wd("missing.jsonl"), check=False)
    assert r.returncode == 1 and b"missing.jsonl" in r.stderr, r.stderr
    with open(wd("bad-series.jsonl"), "w") as f:
        f.write('{"t": 0, "applied": 1}\n{"t": 1, "applied": \n')
    r = ievo("report", "--out", wd("x.html"), "--series", wd("bad-series.jsonl"), check=False)
    assert r.returncode == 1 and b"bad-series.jsonl:2" in r.stderr, r.stderr
    r = ievo("report", "--out", wd("x.html"), "--vectors", series, check=False)
    assert r.returncode == 1 and b"series.jsonl:1" in r.stderr and b"InterestVector" in r.stderr, r.stderr
    assert not os.path.exists(wd("x.html")), "a failed report must not leave a page"

    log(f"[report] ok in {time.time() - t0:.1f} s")
    wd.cleanup()


if __name__ == "__main__":
    main()
