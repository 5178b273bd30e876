"""harness: what the integration tests share — a local `ievo broker` on TCP, running ievo
commands, reading topics back with kcat, and the data sets.

Every test talks to the broker over the network exactly as to a real cluster; nothing here
reaches into the broker's memory.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

IEVO = os.environ.get("IEVO_BIN") or os.path.join(os.environ.get("IEVO_BUILD_DIR", "build"), "ievo")
SOURCE = os.environ.get("IEVO_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("IEVO_SHARED", os.path.join(SOURCE, "..", "shared"))
ML100K = os.path.join(SHARED, "data", "ml-100k")

# Test consumers rebalance in seconds instead of 45 s on the local broker (platform notes §2).
FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def have_movielens():
    return os.path.exists(os.path.join(ML100K, "u.data"))


class Broker:
    """`ievo broker` as a child process; .bootstrap is its bootstrap.servers string."""

    def __init__(self, topics, partitions=8, brokers=1, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="ievo-it-")
        bsfile = os.path.join(self.dir, "bootstrap")
        args = [IEVO, "broker", "--brokers", str(brokers), "--partitions", str(partitions), "--bootstrap-file", bsfile]
        for t in topics:
            args += ["--topic", t]
        self.log_path = os.path.join(self.dir, "broker.log")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(bsfile) and os.path.getsize(bsfile) > 0:
                self.bootstrap = open(bsfile).read().strip()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("broker did not start: " + open(self.log_path).read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def ievo(*args, check=True, stdout=None, timeout=600, env=None, input=None):
    """Runs `ievo ARGS`; returns the CompletedProcess (stdout captured unless given)."""
    r = subprocess.run([IEVO, *map(str, args)], stdout=stdout if stdout is not None else subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"ievo {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr.decode(errors='replace')[-4000:]}")
    return r


def json_lines(data):
    return [json.loads(l) for l in data.decode().splitlines() if l.strip()]


def consume_vectors(bootstrap, topic="interest-vectors"):
    """Every InterestVector on the topic, decoded by `ievo consume` (avro-c)."""
    r = ievo("consume", "-b", bootstrap, "-t", topic, "--from-beginning", "--until-eof", timeout=600)
    return json_lines(r.stdout)


def kcat_records(bootstrap, topic, extra=()):
    """Every record of a topic as dicts (partition, offset, key, value, headers), read by kcat."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-X", "fetch.message.max.bytes=33554432",
                        *extra, "-f", "%K %S %p %o %h\n%k%s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise AssertionError("kcat failed: " + r.stderr.decode(errors="replace"))
    out, pos, recs = r.stdout, 0, []
    while pos < len(out):
        nl = out.index(b"\n", pos)
        head = out[pos:nl].decode(errors="replace").split(" ", 4)
        klen, vlen, part, off = int(head[0]), int(head[1]), int(head[2]), int(head[3])
        hdrs = head[4] if len(head) > 4 else ""
        pos = nl + 1
        key = out[pos:pos + klen] if klen > 0 else (b"" if klen == 0 else None)
        pos += max(klen, 0)
        val = out[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        recs.append({"partition": part, "offset": off, "key": key, "value": val, "headers": hdrs})
    return recs


def kcat_produce(bootstrap, topic, key, payload, partition=None):
    """Produces one raw record (any bytes) with kcat, as a foreign producer would."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(payload)
        path = f.name
    try:
        part = ["-p", str(partition)] if partition is not None else []
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, *part, "-k", key, "-X", "message.max.bytes=33554432",
                        path], check=True, timeout=60, stderr=subprocess.PIPE)
    finally:
        os.unlink(path)


def load_reference(model, data_args):
    """`ievo reference` (the scalar model) -> {(user_id, events): record}."""
    r = ievo("reference", "-m", model, *data_args, timeout=900)
    return {(x["user_id"], x["events"]): x for x in json_lines(r.stdout)}


def max_abs_diff(a, b):
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("inf")


def data_args(synthetic="300:20000"):
    """ML-100K when present (the brief's development set), else the synthetic generator."""
    if have_movielens():
        return ["--movielens", ML100K], ["--vocab-movielens", ML100K], "ml-100k"
    return ["--synthetic", synthetic], ["--vocab-synthetic"], "synthetic " + synthetic


class Workdir:
    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"ievo-{name}-")

    def __call__(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)
