"""Malformed records never stop the worker and are never lost: each lands in the dead-letter
topic, key and payload byte for byte, with its reason in a header; every valid event around
them is applied. Records come from kcat, as from a foreign producer.

Phase 1: a 10 MB payload, then valid events (see below for how the local broker constrains
this). Phase 2: truncated Avro, wrong magic byte, unknown schema id, too short for the header,
trailing bytes, empty user_id, NaN value, absurd ts — between two runs of valid events; then a
restarted worker takes more valid events.
"""
import io
import json
import os
import struct
import subprocess
import sys

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (IEVO, FAST_GROUP, SOURCE, Broker, Workdir, consume_vectors, ievo, kcat_produce, kcat_records, log)

# python3-avro 1.11 insists on datetime objects for timestamp-millis when writing, and an absurd
# ts cannot be a datetime: write with the same schema minus the logicalType (identical bytes).
_schema_json = json.load(open(os.path.join(SOURCE, "schemas", "user_action.avsc")))
for _f in _schema_json["fields"]:
    if _f["name"] == "ts":
        _f["type"] = "long"
SCHEMA = avro.schema.parse(json.dumps(_schema_json))


def encode(rec, schema_id=1):
    buf = io.BytesIO()
    avro.io.DatumWriter(SCHEMA).write(rec, avro.io.BinaryEncoder(buf))
    return b"\x00" + struct.pack(">i", schema_id) + buf.getvalue()


def action(user, item, ts, value=None, text=None):
    return {"user_id": user, "item_id": item, "action": "view", "ts": ts, "value": value, "text": text}


def valid_events(prefix, n_users, per_user, t0):
    return [action(f"{prefix}{u}", f"t{(u + k) % 20:02d}-i{k % 50:03d}", t0 + 1000 * (k * n_users + u), 1.5)
            for k in range(per_user) for u in range(n_users)]


def jsonl(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def float_bits_nan_record():
    # python3-avro writes NaN floats as IEEE NaN; the worker must reject the value.
    return encode(action("nan-user", "t00-i000", 1_700_000_000_000, float("nan")))


def main():
    wd = Workdir("dlq")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3")
    good = encode(action("x", "t00-i001", 1_700_000_000_000, 2.0))
    bad = {
        "truncated": (good[:-3], "avro"),
        "wrong-magic": (b"\x07" + good[1:], "framing"),
        "unknown-schema-id": (encode(action("y", "t00-i001", 1_700_000_000_000), schema_id=99), "schema_id"),
        "too-short": (b"\x00\x00", "framing"),
        "trailing-bytes": (good + b"\x02\x04", "avro"),
        "empty-user-id": (encode(action("", "t00-i001", 1_700_000_000_000)), "invalid"),
        "nan-value": (float_bits_nan_record(), "invalid"),
        "absurd-ts": (encode(action("z", "t00-i001", 10 ** 17)), "invalid"),
        # the one-byte user id "x" turned into a byte that is no UTF-8: the Avro string is invalid
        "user-id-not-utf8": (good[:6] + b"\xff" + good[7:], "invalid"),
    }
    def worker(b, stats_name):
        stats = wd(stats_name)
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=dlq", "-X", f"state.dir={wd('state-' + stats_name)}",
             "-X", f"model.path={model}", "-X", f"stats.file={stats}", "-X", "changelog.topic=state-changelog",
             *FAST_GROUP, "--until-eof", timeout=300)
        return json.load(open(stats))

    # Phase 1, its own broker: a 10 MB payload. The local broker keeps ~5 MiB per partition; a
    # larger record is readable only as the first of its partition (and the next record there is
    # lost to the mock's eviction), so it goes alone into partition 0 and a one-partition
    # dead-letter topic, and valid events follow in partition 1.
    with Broker(["user-actions:2", "state-changelog:2", "interest-vectors:4", "user-actions.dlq:1"], workdir=wd.path) as b:
        big = encode(action("big-user", "t00-i001", 1_700_200_000_000, text="x" * (10 << 20)))
        kcat_produce(b.bootstrap, "user-actions", "big", big, partition=0)
        after = valid_events("p", 4, 5, 1_700_300_000_000)
        for e in after:
            kcat_produce(b.bootstrap, "user-actions", e["user_id"], encode(e), partition=1)
        s = worker(b, "stats1.json")
        assert s["applied"] == len(after) and s["dead_lettered"] == 1, s
        assert s["dead_letters_by_class"]["oversized"] == 1, s
        dlq = kcat_records(b.bootstrap, "user-actions.dlq")
        assert len(dlq) == 1 and dlq[0]["key"] == b"big" and dlq[0]["value"] == big, "10 MB record not dead-lettered intact"
        assert "ievo.error.class=oversized" in dlq[0]["headers"], dlq[0]["headers"]
        log(f"[dlq] 10 MB record -> oversized, dead-lettered intact; {len(after)} valid events after it applied")

    # Phase 2: the malformed records between two runs of valid events, then more valid events.
    with Broker(["user-actions:4", "state-changelog:4", "interest-vectors:8", "user-actions.dlq:4"], workdir=wd.path) as b:
        first = valid_events("a", 10, 20, 1_700_000_000_000)
        second = valid_events("b", 10, 20, 1_700_100_000_000)
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", "-", input=jsonl(first))
        for key, (payload, _) in bad.items():
            kcat_produce(b.bootstrap, "user-actions", key, payload)
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", "-", input=jsonl(second))
        s = worker(b, "stats2.json")
        assert s["applied"] == len(first) + len(second), s
        assert s["dead_lettered"] == len(bad), s
        outputs = consume_vectors(b.bootstrap)
        assert len(outputs) == len(first) + len(second), len(outputs)
        dlq = kcat_records(b.bootstrap, "user-actions.dlq")
        assert len(dlq) == len(bad), [d["key"] for d in dlq]
        for d in dlq:
            key = d["key"].decode()
            payload, cls = bad[key]
            assert d["value"] == payload, f"{key}: dead-lettered payload differs from the original"
            assert f"ievo.error.class={cls}" in d["headers"], f"{key}: headers {d['headers']!r}"
            assert "ievo.error=" in d["headers"] and "ievo.source.offset=" in d["headers"], d["headers"]
            log(f"[dlq] {key:18s} -> {cls:9s} {d['headers'].split('ievo.error=')[1].split(',ievo.')[0]}")
        third = valid_events("c", 5, 3, 1_700_300_000_000)
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", "-", input=jsonl(third))
        s = worker(b, "stats2.json")  # same state dir: a restart that picks up where it stopped
        assert s["applied"] == len(third) and s["dead_lettered"] == 0, s
        log(f"[dlq] {len(bad) + 1} malformed records dead-lettered with reasons; "
            f"{len(after) + len(first) + len(second) + len(third)} valid events applied; nothing lost")

        # Phase 3: a stream of bad records: each dead-lettered, the log not flooded: up to 20 lines
        # a minute, then one line that counts the rest.
        for k in range(150):
            kcat_produce(b.bootstrap, "user-actions", f"junk{k}", b"\x07junk")
        r = subprocess.run([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=dlq", "-X", f"state.dir={wd('state-stats2.json')}",
                            "-X", f"model.path={model}", "-X", f"stats.file={wd('stats3.json')}",
                            "-X", "changelog.topic=state-changelog", *FAST_GROUP, "--until-eof"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 0, err[-2000:]
        s = json.load(open(wd("stats3.json")))
        assert s["dead_lettered"] == 150, s
        lines = [l for l in err.splitlines() if " dlq: " in l]
        assert len(lines) <= 21 and "130 more records dead-lettered" in lines[-1], lines[-3:]
        log(f"[dlq] 150 bad records in a row: dead-lettered, {len(lines)} log lines ({lines[-1].split('dlq: ')[1][:60]}...)")
    wd.cleanup()


if __name__ == "__main__":
    main()
