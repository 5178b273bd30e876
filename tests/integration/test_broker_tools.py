"""The Kafka tools over TCP, checked by independent readers: `ievo broker`, `ievo produce`, `ievo consume`.

- broker: pre-creates topics with their partition counts (seen by kcat -L), prints the bootstrap
  servers on stdout and writes the same line to --bootstrap-file, exits 0 on SIGTERM and removes
  the file.
- produce --synthetic 50:2000 --truth: every record read back by kcat and decoded by python3-avro
  (Confluent header stripped); count, key == user_id, each user in one partition in event-time
  order, the stream sorted by ts, and the truth file agrees (per-user index 1..n, switched == the
  topic changed, one line per record).
- produce --jsonl (stdin, Confluent) and --jsonl FILE --format avro: given values and texts
  (absent, null, numbers, unicode, empty) round-trip; ties keep input order per user.
- produce --repeat 3 --user-prefix: disjoint users, each repeat after the previous one in time.
- produce: a bad JSON line fails naming the line and writes nothing; an unreachable broker fails
  with a non-zero status.
- consume: InterestVectors written by python3-avro (via kcat) print as JSON lines equal to the
  originals with their partition and offset, with --until-eof, --count and --group; an
  undecodable record is reported and makes the status non-zero without hiding the others. Each
  undecodable record is its own log line (avro-c's message of one is not glued to the next),
  --count counts only the records printed, and a record of another Confluent schema id than
  output.schema.id (no registry given) is said, once per id.
- consume --input: UserActions print as JSON lines; a record the worker would dead-letter is
  reported with the worker's reason and class (as a JSON log field with log.format=json).
"""
import io
import shutil
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import avro.errors
import avro.io
import avro.schema
import datetime
import warnings

# python3-avro reads timestamp-millis as a datetime (converted back below) and warns when
# given an int to write; the ints are what the wire carries.
warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

IEVO = os.environ.get("IEVO_BIN") or os.path.join(os.environ.get("IEVO_BUILD_DIR", "build"), "ievo")
SOURCE = os.environ.get("IEVO_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UA = avro.schema.parse(open(os.path.join(SOURCE, "schemas", "user_action.avsc")).read())
IV = avro.schema.parse(open(os.path.join(SOURCE, "schemas", "interest_vector.avsc")).read())


def log(*a):
    print("[broker_tools]", *a, file=sys.stderr, flush=True)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def run(*args, input=None, timeout=120):
    r = subprocess.run([IEVO, *map(str, args)], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r


def ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, f"ievo {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr.decode()[-3000:]}"
    return r


def decode_ua(payload, confluent=True, schema_id=1):
    if confluent:
        assert payload[0] == 0, f"magic byte {payload[0]}"
        assert struct.unpack(">i", payload[1:5])[0] == schema_id, "schema id"
        payload = payload[5:]
    buf = io.BytesIO(payload)
    rec = avro.io.DatumReader(UA).read(avro.io.BinaryDecoder(buf))
    assert buf.tell() == len(payload), f"{len(payload) - buf.tell()} trailing bytes"
    if isinstance(rec["ts"], datetime.datetime):
        rec["ts"] = (rec["ts"] - EPOCH) // datetime.timedelta(milliseconds=1)
    return rec


def kcat_read(bs, topic):
    """[(partition, key, payload)] in per-partition offset order; payload lengths come as %R."""
    r = subprocess.run(["kcat", "-C", "-b", bs, "-t", topic, "-e", "-q", "-f", "%p %K\n%k%R%s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out, pos, recs = r.stdout, 0, []
    while pos < len(out):
        nl = out.index(b"\n", pos)
        part, klen = map(int, out[pos:nl].split())
        pos = nl + 1
        key = out[pos:pos + klen]
        pos += klen
        (vlen,) = struct.unpack(">i", out[pos:pos + 4])
        pos += 4
        recs.append((part, key.decode(), out[pos:pos + vlen]))
        pos += vlen
    return recs


def kcat_produce(bs, topic, key, payload, partition=None):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(payload)
        path = f.name
    try:
        args = ["kcat", "-P", "-b", bs, "-t", topic, "-k", key]
        if partition is not None:
            args += ["-p", str(partition)]
        subprocess.run(args + [path], check=True, timeout=60, stderr=subprocess.PIPE)
    finally:
        os.unlink(path)


class Broker:
    def __init__(self, topics, wd):
        self.file = os.path.join(wd, "bootstrap")
        args = [IEVO, "broker", "--brokers", "3", "--partitions", "4", "--bootstrap-file", self.file]
        for t in topics:
            args += ["--topic", t]
        self.log = open(os.path.join(wd, "broker.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        self.bootstrap = self.proc.stdout.readline().decode().strip()   # printed once, flushed
        assert self.bootstrap, "broker printed nothing: " + self.logs()
        assert open(self.file).read().strip() == self.bootstrap, "bootstrap file differs from stdout"
        assert len(self.bootstrap.split(",")) == 3, self.bootstrap

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker ignored SIGTERM")
        return self.proc.returncode


def check_topics(bs):
    r = subprocess.run(["kcat", "-b", bs, "-L", "-J"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    md = json.loads(r.stdout)
    parts = {t["topic"]: len(t["partitions"]) for t in md["topics"]}
    assert parts.get("ua-synth") == 6 and parts.get("iv") == 3 and parts.get("ua-jsonl") == 4, parts
    assert len(md["brokers"]) == 3, md["brokers"]


def check_synthetic(bs, wd):
    truth_path = os.path.join(wd, "truth.jsonl")
    r = ok("produce", "-b", bs, "-t", "ua-synth", "--synthetic", "50:2000", "--synth-seed", "7", "--truth", truth_path)
    assert b"2000 events to ua-synth" in r.stderr and b"0 failed" in r.stderr, r.stderr.decode()
    recs = kcat_read(bs, "ua-synth")
    assert len(recs) == 2000, f"{len(recs)} records"
    user_part, per_user = {}, {}
    for part, key, payload in recs:
        rec = decode_ua(payload)
        assert key == rec["user_id"], (key, rec["user_id"])
        assert user_part.setdefault(key, part) == part, f"user {key} in partitions {user_part[key]} and {part}"
        assert rec["action"] in ("view", "click", "purchase"), rec
        assert (rec["value"] is None) == (rec["action"] == "click"), rec
        assert len(rec["item_id"]) == 8 and rec["item_id"][0] == "t" and rec["item_id"][3:5] == "-i", rec
        per_user.setdefault(key, []).append(rec)
    assert len(per_user) == 50, len(per_user)
    for u, evs in per_user.items():
        ts = [e["ts"] for e in evs]
        assert ts == sorted(ts), f"user {u} out of event-time order"
    truth = [json.loads(l) for l in open(truth_path)]
    assert len(truth) == 2000
    assert [t["ts"] for t in truth] == sorted(t["ts"] for t in truth), "stream not in event-time order"
    seen, last_topic = {}, {}
    for t in truth:
        n = seen[t["user_id"]] = seen.get(t["user_id"], 0) + 1
        assert t["events"] == n, t
        assert t["switched"] == (n > 1 and last_topic[t["user_id"]] != t["topic"]), t
        last_topic[t["user_id"]] = t["topic"]
    for u, evs in per_user.items():
        assert [e["ts"] for e in evs] == [t["ts"] for t in truth if t["user_id"] == u], f"truth of {u} differs"
    switches = sum(t["switched"] for t in truth)
    log(f"synthetic 50:2000: {len(recs)} records in {len(set(p for p, _, _ in recs))} partitions, {switches} switches")


JSONL_EVENTS = [
    {"user_id": "a", "item_id": "i1", "action": "view", "ts": 1700000000300, "value": 3.25, "text": "caf\u00e9 \u2615 \u65e5\u672c"},
    {"user_id": "a", "item_id": "i2", "action": "click", "ts": 1700000000100},
    {"user_id": "b", "item_id": "i3", "action": "purchase", "ts": 1700000000300, "value": None, "text": None},
    {"user_id": "a", "item_id": "i3", "action": "rate", "ts": 1700000000300, "value": -2, "text": ""},
    {"user_id": "b", "item_id": "i\"4\\", "action": "search", "ts": 1700000000000, "value": 0.1, "text": "q \"x\"\n\ty"},
    {"user_id": "\u00fc-\U0001F600", "item_id": "i5", "action": "view", "ts": 0, "value": 1e30},
]


def check_jsonl(bs, wd):
    data = "".join(json.dumps(e) + "\n" for e in JSONL_EVENTS).encode()
    path = os.path.join(wd, "in.jsonl")
    open(path, "wb").write(data)
    ok("produce", "-b", bs, "-t", "ua-jsonl", "--jsonl", "-", input=data)
    ok("produce", "-b", bs, "-t", "ua-avro", "--jsonl", path, "--format", "avro")
    expected = {}
    for e in sorted(JSONL_EVENTS, key=lambda e: e["ts"]):   # Python's sort is stable: ties in input order
        expected.setdefault(e["user_id"], []).append(e)
    for topic, confluent in (("ua-jsonl", True), ("ua-avro", False)):
        got = {}
        for _, key, payload in kcat_read(bs, topic):
            rec = decode_ua(payload, confluent=confluent)
            assert key == rec["user_id"]
            got.setdefault(key, []).append(rec)
        assert set(got) == set(expected), (topic, set(got))
        for u in expected:
            assert len(got[u]) == len(expected[u]), (topic, u)
            for g, e in zip(got[u], expected[u]):
                want_value = None if e.get("value") is None else f32(float(e["value"]))
                assert (g["item_id"], g["action"], g["ts"]) == (e["item_id"], e["action"], e["ts"]), (topic, g, e)
                assert g["value"] == want_value, (topic, g["value"], want_value)
                assert g["text"] == e.get("text"), (topic, g["text"], e.get("text"))
    log(f"jsonl: {len(JSONL_EVENTS)} events round-trip in Confluent and plain Avro framing")


def check_repeat(bs):
    ok("produce", "-b", bs, "-t", "ua-rep", "--synthetic", "5:20", "--repeat", "3", "--user-prefix", "r")
    recs = [decode_ua(p) for _, _, p in kcat_read(bs, "ua-rep")]
    assert len(recs) == 60, len(recs)
    by_k = {}
    for r in recs:
        k = int(r["user_id"].split("-")[0][1:])
        assert r["user_id"].startswith(f"r{k}-u"), r["user_id"]
        by_k.setdefault(k, []).append(r["ts"])
    assert sorted(by_k) == [0, 1, 2] and all(len(v) == 20 for v in by_k.values())
    assert max(by_k[0]) < min(by_k[1]) and max(by_k[1]) < min(by_k[2]), "repeats overlap in time"
    r = ok("produce", "-b", bs, "-t", "ua-rep", "--synthetic", "5:20", "--repeat", "3", "--count", "7")
    assert b"7 events to ua-rep" in r.stderr, r.stderr.decode()


def check_failures(bs, wd):
    bad = b'{"user_id":"a","item_id":"i","action":"v","ts":1}\n{"user_id":"a","item_id":"i","action":"v","ts":"x"}\n'
    r = run("produce", "-b", bs, "-t", "ua-bad", "--jsonl", "-", input=bad)
    assert r.returncode != 0 and b"<stdin>:2:" in r.stderr, r.stderr.decode()
    assert kcat_read(bs, "ua-bad") == [], "a failed load produced records"
    r = run("produce", "-t", "x", "--synthetic", "5:10")
    assert r.returncode != 0 and b"bootstrap" in r.stderr, r.stderr.decode()
    r = run("produce", "-b", bs, "-t", "x")
    assert r.returncode == 2, r.returncode
    t0 = time.time()
    r = run("produce", "-b", "127.0.0.1:1", "-t", "x", "--synthetic", "5:10", "-X", "message.timeout.ms=1500",
            "-X", "log_level=0", timeout=60)
    assert r.returncode != 0 and b"10 failed" in r.stderr, r.stderr.decode()[-2000:]
    log(f"failures: bad JSON line, no bootstrap, usage, unreachable broker ({time.time() - t0:.1f} s)")


def iv_payload(rec, schema_id=2):
    buf = io.BytesIO()
    # python3-avro validates timestamp-millis fields as datetimes: an int is rejected.
    rec = dict(rec, ts=EPOCH + datetime.timedelta(milliseconds=rec["ts"]))
    avro.io.DatumWriter(IV).write(rec, avro.io.BinaryEncoder(buf))
    return b"\x00" + struct.pack(">i", schema_id) + buf.getvalue()


IV_RECORDS = [
    {"user_id": "u1", "ts": 1700000000000, "events": 1, "vector": [], "drift": 0.0, "model": "m-1",
     "source_partition": 0, "source_offset": 0, "top_items": None},
    {"user_id": "u\u00e9", "ts": 1700000000001, "events": 2, "vector": [0.5, -1.25, 3.0e-8], "drift": 0.125,
     "model": "m-1", "source_partition": 5, "source_offset": 123456789012, "top_items": []},
    {"user_id": "u3", "ts": 4102444799999, "events": 9223372036854775807, "vector": [1.0] * 64, "drift": 1.0,
     "model": "", "source_partition": 2147483647, "source_offset": -1,
     "top_items": [{"item_id": "t01-i002", "score": 0.75}, {"item_id": "\u65e5", "score": -0.5}]},
]


def check_consume(bs):
    placed = []   # (partition, record)
    for i, rec in enumerate(IV_RECORDS * 2):
        kcat_produce(bs, "iv", rec["user_id"], iv_payload(rec), partition=i % 3)
        placed.append((i % 3, rec))
    r = ok("consume", "-b", bs, "-t", "iv", "--from-beginning", "--until-eof", timeout=60)
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert len(lines) == len(placed), (len(lines), r.stderr.decode())
    want_by_part = {}
    for p, rec in placed:
        want_by_part.setdefault(p, []).append(rec)
    got_by_part = {}
    for l in lines:
        got_by_part.setdefault(l["partition"], []).append(l)
    for p, wants in want_by_part.items():
        gots = sorted(got_by_part[p], key=lambda l: l["offset"])
        assert [g["offset"] for g in gots] == list(range(len(wants))), gots
        for g, w in zip(gots, wants):
            for k in ("user_id", "ts", "events", "model", "source_partition", "source_offset"):
                assert g[k] == w[k], (k, g[k], w[k])
            # %.9g round-trips a float32: compare after rounding both sides to float32
            assert [f32(x) for x in g["vector"]] == [f32(x) for x in w["vector"]], (g["vector"], w["vector"])
            assert f32(g["drift"]) == f32(w["drift"])
            if w["top_items"] is None:
                assert g["top_items"] is None
            else:
                assert [(t["item_id"], f32(t["score"])) for t in g["top_items"]] == \
                    [(t["item_id"], f32(t["score"])) for t in w["top_items"]]
    r = ok("consume", "-b", bs, "-t", "iv", "--from-beginning", "--count", "2", timeout=60)
    assert len(r.stdout.decode().splitlines()) == 2
    t0 = time.time()
    r = ok("consume", "-b", bs, "-t", "iv", "--from-beginning", "--count", str(len(placed)), "--group", "g1", timeout=90)
    assert len(r.stdout.decode().splitlines()) == len(placed)
    log(f"consume: {len(lines)} records, --count, --group ({time.time() - t0:.1f} s)")
    # An undecodable record: reported with its offset, the others still printed, status non-zero.
    kcat_produce(bs, "iv-bad", "x", iv_payload(IV_RECORDS[0]), partition=0)
    kcat_produce(bs, "iv-bad", "x", b"\x00\x00\x00\x00\x02\xff\xff", partition=0)
    kcat_produce(bs, "iv-bad", "x", iv_payload(IV_RECORDS[1]), partition=0)
    r = run("consume", "-b", bs, "-t", "iv-bad", "--from-beginning", "--until-eof", timeout=60)
    assert r.returncode != 0 and len(r.stdout.decode().splitlines()) == 2, (r.returncode, r.stdout)
    assert b"offset 1" in r.stderr, r.stderr.decode()
    # Another undecodable record right after, then two of another schema id and a good one: each
    # undecodable one reported apart and not counted by --count, the other id said once.
    kcat_produce(bs, "iv-bad", "x", b"\x00\x00\x00\x00\x02\x02", partition=0)
    kcat_produce(bs, "iv-bad", "x", iv_payload(IV_RECORDS[2], schema_id=9), partition=0)
    kcat_produce(bs, "iv-bad", "x", iv_payload(IV_RECORDS[1], schema_id=9), partition=0)
    kcat_produce(bs, "iv-bad", "x", iv_payload(IV_RECORDS[2]), partition=0)
    r = run("consume", "-b", bs, "-t", "iv-bad", "--from-beginning", "--count", "4", timeout=60)
    printed = [json.loads(l) for l in r.stdout.decode().splitlines()]
    errs = [l for l in r.stderr.decode().splitlines() if " ERROR consume: iv-bad [0] offset " in l]
    warns = [l for l in r.stderr.decode().splitlines() if "schema id 9, not output.schema.id 2" in l]
    assert r.returncode == 1 and [p["offset"] for p in printed] == [0, 2, 4, 5], (r.returncode, printed, r.stderr)
    assert len(errs) == 2 and "offset 1:" in errs[0] and "offset 3:" in errs[1], errs
    assert all(e.count("memory buffer") <= 1 for e in errs), "one record's error text glued onto the next's:\n" + \
        "\n".join(errs)
    assert len(warns) == 1 and " WARN " in warns[0] and "offset 4:" in warns[0], warns
    log("consume: undecodable records apart, --count of printed records, another schema id said once")


def check_consume_input(bs):
    """--input: the worker's codec and settings; a record it would dead-letter is reported."""
    kcat_produce(bs, "ua-bad", "u\n\x1b[31m", b"{\"user_id\": \"not avro\"}", partition=0)
    ok("produce", "-b", bs, "-t", "ua-bad", "--synthetic", "2:4", "--synth-seed", "5")
    r = run("consume", "-b", bs, "-t", "ua-bad", "--input", "--from-beginning", "--until-eof", "-X", "log.format=json",
            timeout=60)
    printed = [json.loads(l) for l in r.stdout.decode().splitlines()]
    logs = [json.loads(l) for l in r.stderr.decode().splitlines()]
    assert r.returncode == 1 and len(printed) == 4, (r.returncode, printed, r.stderr.decode())
    assert set(printed[0]) == {"user_id", "item_id", "action", "ts", "value", "text", "partition", "offset"}, printed[0]
    assert [p["offset"] for p in printed] == [1, 2, 3, 4] and all(p["user_id"].startswith("u") for p in printed)
    bad = [l for l in logs if l["level"] == "ERROR"]
    assert len(bad) == 1 and bad[0]["error"] == "framing" and bad[0]["offset"] == 0 and bad[0]["partition"] == 0 and \
        bad[0]["topic"] == "ua-bad" and "magic byte is 0x7b" in bad[0]["msg"], bad
    log("consume --input: UserActions as JSON lines, a dead letter's reason and class")


def main():
    wd = tempfile.mkdtemp(prefix="ievo-broker-tools-")
    b = Broker(["ua-synth:6", "ua-jsonl", "ua-avro:2", "ua-rep:2", "ua-bad:1", "iv:3", "iv-bad:1"], wd)
    try:
        log("broker at", b.bootstrap)
        check_topics(b.bootstrap)
        check_synthetic(b.bootstrap, wd)
        check_jsonl(b.bootstrap, wd)
        check_repeat(b.bootstrap)
        check_failures(b.bootstrap, wd)
        check_consume(b.bootstrap)
        check_consume_input(b.bootstrap)
        rc = b.stop()
        assert rc == 0, f"broker exited {rc}"
        assert not os.path.exists(b.file), "bootstrap file left behind"
    except BaseException:
        b.stop()
        log("broker log:\n" + b.logs()[-4000:])
        raise
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    log("ok")


if __name__ == "__main__":
    main()
