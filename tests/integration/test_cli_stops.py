"""Every long-running command stops within seconds of a SIGTERM or SIGINT: during its start-up,
against a cluster that does not answer (a closed port), and in its main work; a second signal
ends it at once with 128 + the signal (shown here where the first stop has something to wait
for: produce's queued records). What each does on the first signal, and its exit status
(docs/operations.md, Stopping):

  produce   stops producing; what it queued gets stop.timeout.ms, then is dropped: exit 1
  consume   stops reading, leaves its group: exit 0
  worker    stops during start-up (the cluster's metadata): exit 0
  replay    the same, but a replay that did not reach its end offsets is not done: exit 1
  broker    shuts the local cluster down: exit 0
  embed     stops reading stdin, prints every line it read: exit 1
  train     (its topic, or its epochs) and eval end at once, writing nothing: killed by the signal

The worker's own stops with a live broker are tests/integration/test_worker_stops.py.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import IEVO, Workdir, free_port, ievo, log


class Run:
    """`ievo ARGS` in the background, stderr to a file, stdin a pipe kept open."""

    def __init__(self, wd, name, *args):
        self.name, self.errlog = name, wd(name + ".log")
        self.p = subprocess.Popen([IEVO, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(self.errlog, "w"))

    def text(self):
        return open(self.errlog).read()

    def wait_text(self, what, timeout=30):
        deadline = time.time() + timeout
        while what not in self.text():
            assert self.p.poll() is None, f"{self.name}: exited {self.p.returncode} before '{what}':\n{self.text()[-2000:]}"
            assert time.time() < deadline, f"{self.name}: no '{what}' within {timeout} s:\n{self.text()[-2000:]}"
            time.sleep(0.05)

    def stop(self, sig, within, twice=False):
        """Sends sig (twice: again 0.5 s later); returns (exit status, stdout, seconds it took)."""
        t0 = time.time()
        self.p.send_signal(sig)
        if twice:
            time.sleep(0.5)
            assert self.p.poll() is None, f"{self.name}: the first signal already ended it:\n{self.text()[-2000:]}"
            self.p.send_signal(sig)
        try:
            out, _ = self.p.communicate(timeout=within)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise AssertionError(f"{self.name}: still running {within} s after {sig.name}:\n{self.text()[-2000:]}")
        took = time.time() - t0
        log(f"[stops] {self.name}: {sig.name}{' twice' if twice else ''} -> exit {self.p.returncode} in {took:.1f} s")
        return self.p.returncode, out, took


def expect(run, rc, want, text=None):
    assert rc == want, f"{run.name}: exit {rc}, expected {want}:\n{run.text()[-2000:]}"
    if text:
        assert text in run.text(), f"{run.name}: no '{text}' in its log:\n{run.text()[-2000:]}"


def encoder_dir():
    """USE-lite's weights where `ievo embed` looks by default, or None."""
    base = os.environ.get("IEVO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ievo")
    d = os.path.join(base, "use-lite")
    return d if os.path.exists(os.path.join(d, "use_lite.f32")) else None


def main():
    wd = Workdir("cli-stops")
    closed = f"127.0.0.1:{free_port()}"   # nothing listens: every connection is refused
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3")

    # (name, args, what to wait for in its log before the signal, the pause after it, signal, twice,
    #  within seconds, exit status, what its log must say)
    cases = [
        # produce: while reading its events (start-up), with records queued for no cluster, twice
        ("produce-start", ["produce", "-b", closed, "--jsonl", "-"], None, 0.5, signal.SIGTERM, False, 3, 1,
         "stopped by SIGTERM while reading"),
        ("produce-queued", ["produce", "-b", closed, "--synthetic", "100:1000", "-X", "stop.timeout.ms=1000"],
         "loaded 1000 events", 0.5, signal.SIGTERM, False, 5, 1,
         "1000 records not delivered: stop.timeout.ms passed after the stop"),
        ("produce-twice", ["produce", "-b", closed, "--synthetic", "100:1000", "-X", "stop.timeout.ms=600000"],
         "loaded 1000 events", 0, signal.SIGINT, True, 3, 128 + signal.SIGINT, None),
        # consume: waiting for the topic's metadata; in a group, polling
        ("consume-start", ["consume", "-b", closed, "-t", "t"], None, 1.0, signal.SIGTERM, False, 6, 0,
         "stopped by SIGTERM before the cluster answered"),
        ("consume-group", ["consume", "-b", closed, "-t", "t", "-G", "g"], "subscribed to t", 1.0, signal.SIGTERM, False,
         6, 0, "stopped by SIGTERM"),
        # worker and replay: start-up against no cluster
        ("worker-start", ["worker", "-b", closed, "-m", model, "-X", f"state.dir={wd('state-w')}"], None, 1.5,
         signal.SIGTERM, False, 6, 0, "nothing was applied"),
        ("replay-start", ["replay", "-b", closed, "-m", model, "-X", f"state.dir={wd('state-r')}"], None, 1.5,
         signal.SIGTERM, False, 6, 1, "before reaching the end offsets"),
        ("broker", ["broker", "--bootstrap-file", wd("bootstrap")], "brokers at", 0, signal.SIGTERM, False, 5, 0,
         "shutting down"),
    ]
    for name, args, wait, pause, sig, twice, within, want, text in cases:
        r = Run(wd, name, *args)
        if wait:
            r.wait_text(wait)
        time.sleep(pause)
        rc, _, _ = r.stop(sig, within, twice=twice)
        expect(r, rc, want, text)

    # embed: lines read (a batch not yet encoded) are printed before it stops
    enc = encoder_dir()
    mode = ["--stats"] if enc else ["--normalize"]
    r = Run(wd, "embed", "embed", *mode)
    if enc:
        r.wait_text("loaded")   # --stats says when the weights are in
    r.p.stdin.write(b"first line\nsecond line\nthird line\n")
    r.p.stdin.flush()
    time.sleep(0.5)
    rc, out, _ = r.stop(signal.SIGTERM, 5)
    lines = out.decode().splitlines()
    expect(r, rc, 1, "stopped by SIGTERM after line 3 (every line read is printed)")
    assert len(lines) == 3 and '"text": "third line"' in lines[2], f"embed printed {lines!r}"

    # train (reading its topic; training) and eval: at once, nothing written
    r = Run(wd, "train-topic", "train", "-b", closed, "-t", "t", "-o", wd("topic.safetensors"))
    time.sleep(1.0)
    rc, _, _ = r.stop(signal.SIGTERM, 3)
    expect(r, rc, -signal.SIGTERM)
    assert not os.path.exists(wd("topic.safetensors"))
    r = Run(wd, "train-epochs", "train", "--synthetic", "300:20000", "--epochs", "200", "--patience", "200",
            "-o", wd("epochs.safetensors"))
    r.wait_text("epoch   1/", timeout=120)
    rc, _, _ = r.stop(signal.SIGINT, 3)
    expect(r, rc, -signal.SIGINT)
    assert not [f for f in os.listdir(wd.path) if f.startswith("epochs.safetensors")], os.listdir(wd.path)
    r = Run(wd, "eval", "eval", "-m", model, "--synthetic", "20000:2000000", "--batch", "1")
    time.sleep(2.0)
    assert r.p.poll() is None, f"eval ended before the signal:\n{r.text()[-2000:]}"
    rc, _, _ = r.stop(signal.SIGTERM, 3)
    expect(r, rc, -signal.SIGTERM)
    wd.cleanup()


if __name__ == "__main__":
    main()
