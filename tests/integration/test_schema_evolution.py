"""Schema evolution through a schema registry (the tests' own: tests/integration/schema_registry.py).

One input topic holds UserActions written with five writer schemas, each registered under the
topic's subject, interleaved within every user's history:
  v0  an older writer without the text field (the reader's default: null)
  v1  schemas/user_action.avsc itself (as `ievo produce` registers it)
  v2  v1 plus an optional session string and a device enum the reader does not know
  v3  value written as an int (promoted to float), session, and the device enum with a new
      symbol, TV, used by some records
  v4  incompatible: ts as a string (its records must be dead-lettered, the field named)
and one record framed with an id the registry does not know. Checked:
  1. every compatible record is applied with the same result as the original: one output per
     event, each vector equal to the scalar reference fed the events as JSON lines (1e-4);
  2. the v4 record and the unknown id are dead-lettered intact, with classes schema and
     schema_id and reasons naming field ts and the id;
  3. each writer id was fetched from the registry once, and the output's schema registered once
     under interest-vectors-value;
  4. the outputs carry that id: an independent reader (python3-avro, the schema fetched from the
     registry by the id in each record) decodes them to what `ievo consume` (through the
     registry) prints;
  5. `ievo produce` through the registry writes with v1's id, and `ievo train -t` reads the
     evolved topic to the same model as the JSON lines.
"""
import datetime
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections import Counter

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, SOURCE, Broker, Workdir, ievo, json_lines, kcat_records, load_reference, log,  # noqa: E402
                     max_abs_diff)
from schema_registry import SchemaRegistry  # noqa: E402

TOL = 1e-4
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
V1_TEXT = open(os.path.join(SOURCE, "schemas", "user_action.avsc")).read()


def f32(xs):
    """As float32 (ievo consume prints 9 significant digits, enough for a float32 exactly)."""
    return struct.unpack(f"<{len(xs)}f", struct.pack(f"<{len(xs)}f", *xs))


def schema_with(changes):
    """v1's JSON with fields replaced, added or removed: {name: type or None}."""
    s = json.loads(V1_TEXT)
    fields = []
    for f in s["fields"]:
        if f["name"] in changes:
            if changes[f["name"]] is None:
                continue
            f = dict(f, type=changes[f["name"]])
        fields.append(f)
    names = {f["name"] for f in s["fields"]}
    for name, t in changes.items():
        if name not in names and t is not None:
            fields.append({"name": name, "type": t, **({"default": None} if isinstance(t, list) and t[0] == "null" else {})})
    s["fields"] = fields
    return s


DEVICE = {"type": "enum", "name": "Device", "symbols": ["WEB", "IOS", "ANDROID"]}
DEVICE_TV = dict(DEVICE, symbols=["WEB", "IOS", "ANDROID", "TV"])
WRITERS = {
    "v0": schema_with({"text": None}),
    "v1": json.loads(V1_TEXT),
    "v2": schema_with({"session": ["null", "string"], "device": DEVICE}),
    "v3": schema_with({"value": ["null", "int"], "session": ["null", "string"], "device": DEVICE_TV}),
    "v4": schema_with({"ts": "string"}),
}


def for_python(schema):
    """The same schema for python3-avro's writer, which wants datetimes for timestamp-millis:
    without the logicalType (identical bytes)."""
    s = json.loads(json.dumps(schema))
    for f in s["fields"]:
        if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-millis":
            f["type"] = "long"
    return avro.schema.parse(json.dumps(s))


def encode(schema, sid, rec):
    buf = io.BytesIO()
    avro.io.DatumWriter(for_python(schema)).write(rec, avro.io.BinaryEncoder(buf))
    return b"\x00" + struct.pack(">i", sid) + buf.getvalue()


def history(n_users=12, per_user=24):
    """Events with distinct times (one order however partitions interleave), integral values
    (an int writer holds them exactly), text on some."""
    events, ts = [], 1_700_000_000_000
    for k in range(per_user):
        for u in range(n_users):
            ts += 1000 + u
            events.append({"user_id": f"u{u:02d}", "item_id": f"t{(u + k) % 20:02d}-i{(3 * k + u) % 50:03d}",
                           "action": ["view", "click", "rate"][(u + k) % 3], "ts": ts,
                           "value": float((u * k) % 5 + 1) if (u + k) % 4 else None,
                           "text": f"note {u}-{k}" if (u + k) % 5 == 0 else None})
    return events


def writer_for(e, k):
    """The writer of a user's k-th event: v1, v2, v3, v0 in turn (v0 only where there is no text)."""
    v = ["v1", "v2", "v3", "v0"][k % 4]
    return "v1" if v == "v0" and e["text"] is not None else v


def record_for(version, e, k):
    r = dict(e)
    if version == "v0":
        del r["text"]
    if version in ("v2", "v3"):
        r["session"] = f"s{k}" if k % 2 else None
        r["device"] = ["WEB", "IOS", "ANDROID", "TV"][k % (4 if version == "v3" else 3)]
    if version == "v3" and r["value"] is not None:
        r["value"] = int(r["value"])
    if version == "v4":
        r["ts"] = str(r["ts"])
    return r


def kcat_produce_files(bootstrap, topic, key, payloads, tmp):
    """Produces payloads in order, one message each, with one key (so one partition)."""
    paths = []
    for i, p in enumerate(payloads):
        path = os.path.join(tmp, f"{key}-{i:04d}")
        open(path, "wb").write(p)
        paths.append(path)
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-k", key, *paths], check=True, timeout=120,
                   stderr=subprocess.PIPE)


def main():
    wd = Workdir("schema-evolution")
    model = wd("model.safetensors")
    ievo("model", "init", "-o", model, "--vocab-synthetic", "--init-seed", "11")
    events = history()
    jsonl = wd("history.jsonl")
    open(jsonl, "w").write("".join(json.dumps(e) + "\n" for e in events))
    reg = SchemaRegistry(workdir=wd.path)
    try:
        with Broker(["user-actions:4", "state-changelog:4", "interest-vectors:8", "user-actions.dlq:2",
                     "plain-actions:4"], workdir=wd.path) as b:
            sr = ["-X", f"schema.registry.url={reg.url}"]
            ids = {v: reg.register("user-actions-value", s) for v, s in WRITERS.items()}
            log(f"[evolution] writer ids {ids}")
            assert len(set(ids.values())) == 5

            # `ievo produce` through the registry: v1's id (the same schema keeps its id)
            ievo("produce", "-b", b.bootstrap, "-t", "plain-actions", "--jsonl", jsonl, *sr, "-c", "5")
            plain = kcat_records(b.bootstrap, "plain-actions")
            assert len(plain) == 5 and {struct.unpack(">i", r["value"][1:5])[0] for r in plain} == {ids["v1"]}, \
                "ievo produce did not write v1's registered id"

            by_user, k_of = {}, Counter()
            used = Counter()
            for e in events:
                k = k_of[e["user_id"]]
                k_of[e["user_id"]] += 1
                v = writer_for(e, k)
                used[v] += 1
                by_user.setdefault(e["user_id"], []).append(encode(WRITERS[v], ids[v], record_for(v, e, k)))
            bad = {"bad-v4": encode(WRITERS["v4"], ids["v4"], record_for("v4", events[0], 0)),
                   "bad-id": encode(WRITERS["v1"], 9999, events[1])}
            tmp = tempfile.mkdtemp(prefix="payloads-", dir=wd.path)
            for u, payloads in by_user.items():
                kcat_produce_files(b.bootstrap, "user-actions", u, payloads, tmp)
            for key, payload in bad.items():
                kcat_produce_files(b.bootstrap, "user-actions", key, [payload], tmp)
            log(f"[evolution] {len(events)} events written as {dict(used)}, plus {len(bad)} bad records")
            assert used["v0"] and used["v2"] and used["v3"]

            stats_path = wd("stats.json")
            w = ievo("worker", "-b", b.bootstrap, "-X", "group.id=evolution", "-X", f"state.dir={wd('state')}",
                     "-X", f"model.path={model}", "-X", f"stats.file={stats_path}", "-X", "changelog.topic=state-changelog",
                     *sr, *FAST_GROUP, "--until-eof", timeout=600)
            stats = json.load(open(stats_path))
            log(f"[evolution] worker: applied {stats['applied']}, dead-lettered {stats['dead_letters_by_class']}")
            assert stats["applied"] == len(events), stats
            assert stats["dead_lettered"] == 2 and stats["dead_letters_by_class"]["schema"] == 1 and \
                stats["dead_letters_by_class"]["schema_id"] == 1, stats

            # 2. the dead letters, intact, with their reasons
            dlq = {d["key"].decode(): d for d in kcat_records(b.bootstrap, "user-actions.dlq")}
            assert set(dlq) == set(bad), list(dlq)
            for key, payload in bad.items():
                assert dlq[key]["value"] == payload, f"{key}: dead-lettered payload differs"
            h4, hid = dlq["bad-v4"]["headers"], dlq["bad-id"]["headers"]
            assert "ievo.error.class=schema," in h4 and "field ts" in h4, h4
            assert "ievo.error.class=schema_id," in hid and "schema id 9999" in hid, hid
            log("[evolution] v4 -> " + h4.split("ievo.error=")[1].split(",ievo.")[0])
            log("[evolution] id 9999 -> " + hid.split("ievo.error=")[1].split(",ievo.")[0])

            # 3. one request per writer id, one registration of the output schema
            req = Counter((m, p) for m, p, _ in reg.requests())
            for v, sid in ids.items():
                assert req[("GET", f"/schemas/ids/{sid}")] == 1, (v, req)
            assert req[("GET", "/schemas/ids/9999")] == 1, req
            assert req[("POST", "/subjects/interest-vectors-value/versions")] == 1, req
            stderr = w.stderr.decode(errors="replace")
            assert "schema id %d: read as ievo.v1.UserAction (the same layout)" % ids["v1"] in stderr, stderr[-3000:]

            # 4. the output's id, read by an independent reader through the registry
            raw = kcat_records(b.bootstrap, "interest-vectors")
            consumed = {(o["partition"], o["offset"]): o for o in json_lines(
                ievo("consume", "-b", b.bootstrap, "-t", "interest-vectors", "--from-beginning", "--until-eof", *sr).stdout)}
            out_ids = {struct.unpack(">i", r["value"][1:5])[0] for r in raw}
            assert len(out_ids) == 1, out_ids
            out_id = out_ids.pop()
            latest = reg._call("GET", "/subjects/interest-vectors-value/versions/latest")
            assert latest["id"] == out_id, (latest, out_id)
            py_schema = avro.schema.parse(reg.schema(out_id))
            reader = avro.io.DatumReader(py_schema)
            for r in raw:
                rec = reader.read(avro.io.BinaryDecoder(io.BytesIO(r["value"][5:])))
                c = consumed[(r["partition"], r["offset"])]
                ts = rec["ts"] if isinstance(rec["ts"], int) else int((rec["ts"] - EPOCH).total_seconds() * 1000)
                assert rec["user_id"] == c["user_id"] and ts == c["ts"] and rec["events"] == c["events"], (rec, c)
                assert f32(rec["vector"]) == f32(c["vector"]), "the two readers disagree on a vector"
            log(f"[evolution] {len(raw)} outputs framed with id {out_id}; python3-avro, given the registry's schema "
                f"for it, reads what ievo consume prints")

            # 1. the same results as the original events
            ref = load_reference(model, ["--jsonl", jsonl])
            assert len(consumed) == len(events) == len(ref), (len(consumed), len(events), len(ref))
            worst = 0.0
            seen = set()
            for o in consumed.values():
                key = (o["user_id"], o["events"])
                assert key not in seen, f"{key} twice"
                seen.add(key)
                d = max(max_abs_diff(o["vector"], ref[key]["vector"]), abs(o["drift"] - ref[key]["drift"]))
                worst = max(worst, d)
                assert d <= TOL and o["ts"] == ref[key]["ts"], (key, d)
            log(f"[evolution] {len(consumed)} outputs equal the reference on the original events (max |diff| {worst:.1e})")

            # 5. the trainer reads the evolved topic as it reads the JSON lines
            common = ["--epochs", "1", "--hidden", "8", "--item-dim", "8", "--out-dim", "8", "--attn-dim", "4",
                      "--batch", "8", "--seed", "3"]
            a = ievo("train", "--jsonl", jsonl, "--out", wd("a.safetensors"), *common)
            t = ievo("train", "-t", "user-actions", "-b", b.bootstrap, "--out", wd("t.safetensors"), *sr, *common)
            sa = [l for l in a.stderr.decode().splitlines() if l.startswith("ievo train: ") and " events, " in l]
            st = [l for l in t.stderr.decode().splitlines() if l.startswith("ievo train: ") and " events, " in l]
            assert sa and sa == st, (sa, st)
            assert "2 records of user-actions did not decode and were skipped" in t.stderr.decode(), t.stderr.decode()[-2000:]
            ma = json.loads(ievo("model", "info", wd("a.safetensors")).stdout)["meta"]["validation"]
            mt = json.loads(ievo("model", "info", wd("t.safetensors")).stdout)["meta"]["validation"]
            assert ma == mt, (ma, mt)
            log(f"[evolution] ievo train -t read the five writers' topic as the JSON lines: {st[0]}")
    finally:
        reg.stop()
    wd.cleanup()
    log("[evolution] ok")


if __name__ == "__main__":
    main()
