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
    """`ievo broker` as a child process; .bootstrap is its bootstrap.servers string.

    control=True also serves the fault-injection control channel (`--control`, docs/faults.md)
    on .control_path; .ctl(...) sends one command with `ievo broker-ctl` and .status() parses
    the `status` reply."""

    def __init__(self, topics, partitions=8, brokers=1, workdir=None, control=False):
        self.dir = workdir or tempfile.mkdtemp(prefix="ievo-it-")
        bsfile = os.path.join(self.dir, "bootstrap")
        args = [IEVO, "broker", "--brokers", str(brokers), "--partitions", str(partitions), "--bootstrap-file", bsfile]
        for t in topics:
            args += ["--topic", t]
        # The socket path must fit sockaddr_un (108 bytes); a long workdir gets a short temp dir.
        self.control_path = None
        if control:
            self.control_path = os.path.join(self.dir, "control.sock")
            if len(self.control_path) > 100:
                self.control_path = os.path.join(tempfile.mkdtemp(prefix="ievo-ctl-"), "control.sock")
            args += ["--control", self.control_path]
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

    def ctl(self, *args, check=True, timeout=60):
        """`ievo broker-ctl COMMAND ARGS` -> the reply line ("ok ..." / "error ..."); raises
        unless the reply is ok when check is set."""
        r = subprocess.run([IEVO, "broker-ctl", "--control", self.control_path, *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        reply = r.stdout.decode(errors="replace").strip()
        if check and (r.returncode != 0 or not reply.startswith("ok")):
            raise AssertionError(f"broker-ctl {' '.join(map(str, args))} exited {r.returncode}: {reply} "
                                 f"{r.stderr.decode(errors='replace')}")
        return reply

    def status(self):
        """`status` as {"brokers": {id: {"up": bool, "rtt": ms}}, "topics": {name: {"partitions": n,
        "leaders": [id...], "end": [offset or None...]}}}."""
        out = {"brokers": {}, "topics": {}, "coordinators": {}}
        for tok in self.ctl("status").split()[1:]:
            k, _, v = tok.partition("=")
            if k == "broker":
                bid, state, rtt = v.split(":")
                out["brokers"][int(bid)] = {"up": state == "up", "rtt": int(rtt.split("=")[1])}
            elif k == "coordinator":
                kind, rest = v.split(":", 1)
                key, bid = rest.rsplit(":", 1)
                out["coordinators"][(kind, key)] = int(bid)
            elif k == "topic":
                name, *fields = v.split(":")
                t = dict(f.split("=", 1) for f in fields)
                out["topics"][name] = {
                    "partitions": int(t["partitions"]),
                    "leaders": [int(x) for x in t["leaders"].split(",")] if t.get("leaders") else [],
                    "end": [None if x == "?" else int(x) for x in t["end"].split(",")] if t.get("end") else [],
                }
        return out

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


def input_events(bootstrap, topic="user-actions"):
    """The UserAction records of a topic, decoded by python3-avro (an independent reader), in
    (partition, offset) order: [(partition, offset, event dict)]. ts stays the long it is on the
    wire."""
    import io
    import avro.io
    import avro.schema
    sj = json.load(open(os.path.join(SOURCE, "schemas", "user_action.avsc")))
    for f in sj["fields"]:
        if f["name"] == "ts":
            f["type"] = "long"
    reader = avro.io.DatumReader(avro.schema.parse(json.dumps(sj)))
    out = []
    for r in sorted(kcat_records(bootstrap, topic), key=lambda r: (r["partition"], r["offset"])):
        assert r["value"][0] == 0, "not Confluent-framed"
        out.append((r["partition"], r["offset"], reader.read(avro.io.BinaryDecoder(io.BytesIO(r["value"][5:])))))
    return out


def write_jsonl(events, path):
    """Events as JSON lines for `ievo reference --jsonl` (it applies each user's events in
    event-time order, as the worker does when the input is in time order per user)."""
    with open(path, "w") as f:
        for ev in events:
            f.write(json.dumps(ev) + "\n")
    return len(events)


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


def check_parity(outputs, trainer, tol, model_id=None):
    """Every published vector is one the trainer computed ((user_id, events) -> vector), once,
    within tol of it (and from model_id when given). Returns the largest difference."""
    assert len(outputs) == len(trainer), f"{len(outputs)} published vectors for {len(trainer)} events"
    worst, seen = 0.0, set()
    for o in outputs:
        key = (o["user_id"], o["events"])
        assert key in trainer, f"the worker published {key}, which the trainer never computed"
        assert key not in seen, f"{key} published twice"
        seen.add(key)
        if model_id is not None:
            assert o["model"] == model_id, (o["model"], model_id)
        d = max_abs_diff(o["vector"], trainer[key])
        worst = max(worst, d)
        assert d <= tol, f"user {key[0]} after {key[1]} events: worker and trainer differ by {d}"
    return worst


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


def check_exactly_once(outputs, ref, n_events, tol):
    """At-least-once outputs, exactly-once state: deduplicated on (source_partition,
    source_offset) there is one output per input event, every repeat carries the same result,
    per-user `events` run 1..n, and every vector equals the reference's. Returns (distinct,
    repeats, worst |diff|).

    A repeat is the same event applied again to the same state, usually in a batch of another
    size. Its `events` count must be equal (an event applied twice to a state raises it) and its
    vector equal within tol: oneDNN's kernels promise no bit-identical rows across batch shapes
    (AVX-512's brgemm gives them, AVX2's gemm does not), so bits are not the criterion; a state
    that missed or repeated an event differs by far more than tol."""
    from collections import defaultdict
    by_pair, repeats, worst_repeat = {}, 0, 0.0
    for o in outputs:
        k = (o["source_partition"], o["source_offset"])
        if k in by_pair:
            repeats += 1
            d = max_abs_diff(by_pair[k]["vector"], o["vector"])
            worst_repeat = max(worst_repeat, d)
            assert by_pair[k]["events"] == o["events"] and d <= tol, \
                f"event {k} emitted twice with different results (events {by_pair[k]['events']} and {o['events']}, " \
                f"vectors differ by {d}): applied twice to its state?"
        else:
            by_pair[k] = o
    if repeats:
        print(f"[exactly-once] {repeats} repeated outputs, largest |diff| between repeats {worst_repeat:.3g}",
              file=sys.stderr)
    if len(by_pair) != n_events:
        per_part = defaultdict(set)
        for p, o in by_pair:
            per_part[p].add(o)
        holes = {p: [o for o in range(max(offs) + 1) if o not in offs][:10] for p, offs in per_part.items()}
        raise AssertionError(f"{len(by_pair)} distinct outputs for {n_events} events: events lost; first missing "
                             f"offsets per partition: { {p: h for p, h in holes.items() if h} }")
    per_user = defaultdict(list)
    for o in by_pair.values():
        per_user[o["user_id"]].append(o["events"])
    for u, ev in per_user.items():
        assert sorted(ev) == list(range(1, len(ev) + 1)), f"user {u}: gap or repeat in events"
    worst = 0.0
    for o in by_pair.values():
        d = max_abs_diff(o["vector"], ref[(o["user_id"], o["events"])]["vector"])
        worst = max(worst, d)
        assert d <= tol, f"{o['user_id']} event {o['events']}: |diff| {d}"
    return len(by_pair), repeats, worst


def check_final_states(state_dirs, model, ref, tol):
    """The final state of every user — each partition taken from the state dir that holds it
    furthest — equals the reference's last state. Returns the number of users."""
    best = {}
    for d in state_dirs:
        if not os.path.exists(d):
            continue
        for line in json_lines(ievo("state", "offsets", "-d", d).stdout):
            if line["next_offset"] > best.get(line["partition"], (-1, None))[0]:
                best[line["partition"]] = (line["next_offset"], d)
    final = {}
    for d in state_dirs:
        if not os.path.exists(d):
            continue
        for s in json_lines(ievo("state", "dump", "-d", d, "-m", model).stdout):
            if best.get(s["partition"], (0, None))[1] == d:
                final[s["user_id"]] = s
    last = {}
    for (u, e), r in ref.items():
        if e > last.get(u, (0, None))[0]:
            last[u] = (e, r)
    assert len(final) == len(last), f"{len(final)} users in the final states, {len(last)} in the reference"
    for u, s in final.items():
        e, r = last[u]
        assert s["events"] == e, f"user {u}: final state has {s['events']} events, expected {e}"
        assert max_abs_diff(s["vector"], r["vector"]) <= tol, f"user {u}: final vector differs"
    return len(final)


# ---- operations helpers (metrics, servers, processes) ------------------------------------------

def free_port():
    """A TCP port free on 127.0.0.1 right now (bind to 0, read it back, release it)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=3.0):
    """GET url -> (status, body as str); (None, reason) when nothing answered."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def parse_exposition(text):
    """Prometheus text format -> {'name{labels}': float} (labels exactly as rendered)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def scrape(port, host="127.0.0.1"):
    """The worker's /metrics as {'name{labels}': float}; {} when it does not answer 200."""
    status, body = http_get(f"http://{host}:{port}/metrics")
    return parse_exposition(body) if status == 200 else {}


def start_proc(args, log_path, env=None):
    """A background child with stdout+stderr to log_path (stdin closed)."""
    return subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT, env=env)


def stop_proc(p, timeout=30):
    """SIGTERM, then SIGKILL after timeout; returns the exit code. Safe on an exited process."""
    if p is None:
        return None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def wait_for(pred, timeout, interval=0.2, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout (AssertionError)."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def await_outputs(bootstrap, n_events, timeout, topic="interest-vectors", alive=None, every=3):
    """Reads the output topic until it holds n_events distinct (partition, offset) events, the
    timeout passes, or alive() turns false. Returns (outputs, distinct)."""
    deadline = time.time() + timeout
    while True:
        outs = consume_vectors(bootstrap, topic)
        done = len({(o["source_partition"], o["source_offset"]) for o in outs})
        if done >= n_events or time.time() > deadline or (alive and not alive()):
            return outs, done
        time.sleep(every)
