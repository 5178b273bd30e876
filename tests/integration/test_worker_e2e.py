"""End to end over TCP: `ievo broker`, `ievo produce` (ML-100K when present, else synthetic),
`ievo worker --until-eof`, then the output checked three independent ways:

  1. exactly one InterestVector per input event, `events` running 1..n per user with no gap;
  2. every vector (and drift) equals the scalar reference model fed that user's events (1e-4);
  3. kcat + python3-avro decode the output topic with schemas/interest_vector.avsc and agree
     with `ievo consume` (avro-c); the final states in RocksDB equal the reference's.
"""
import datetime
import io
import json
import os
import struct
import sys
from collections import defaultdict

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, SOURCE, Broker, Workdir, data_args, ievo, json_lines, kcat_records, load_reference,
                     log, max_abs_diff, consume_vectors)

TOL = 1e-4
def f32(xs):
    return struct.unpack(f"<{len(xs)}f", struct.pack(f"<{len(xs)}f", *xs))


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def main():
    produce_args, vocab_args, name = data_args()
    wd = Workdir("e2e")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, *vocab_args, "--init-seed", "7")
    topics = ["user-actions", "state-changelog", "interest-vectors:32", "user-actions.dlq:2"]
    with Broker(topics, partitions=8, workdir=wd.path) as b:
        log(f"[e2e] data {name}, broker {b.bootstrap}")
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", *produce_args, timeout=600)
        stats_path = wd("stats.json")
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=e2e", "-X", f"state.dir={wd('state')}",
             "-X", f"model.path={model}", "-X", f"stats.file={stats_path}", "-X", "changelog.topic=state-changelog",
             *FAST_GROUP, "--until-eof", timeout=900)
        stats = json.load(open(stats_path))
        log(f"[e2e] worker: {stats['applied']} events, {stats['events_per_s']:.0f} events/s, "
            f"{stats['cpu_us_per_event']:.2f} us CPU/event")

        outputs = consume_vectors(b.bootstrap)
        raw = kcat_records(b.bootstrap, "interest-vectors")
        dlq = kcat_records(b.bootstrap, "user-actions.dlq")

    ref = load_reference(model, produce_args)
    n_events = len(ref)
    log(f"[e2e] {n_events} input events, {len(outputs)} outputs")

    # 1. Exactly one output per input event; events 1..n per user; dedup keys unique.
    assert stats["applied"] == n_events, (stats["applied"], n_events)
    assert stats["dead_lettered"] == 0 and not dlq, "valid input must not be dead-lettered"
    assert len(outputs) == n_events, f"{len(outputs)} outputs for {n_events} events"
    pairs = {(o["source_partition"], o["source_offset"]) for o in outputs}
    assert len(pairs) == n_events, "duplicate (source_partition, source_offset)"
    per_user = defaultdict(list)
    for o in outputs:
        per_user[o["user_id"]].append(o)
    for u, os_ in per_user.items():
        os_.sort(key=lambda o: o["source_offset"])
        assert [o["events"] for o in os_] == list(range(1, len(os_) + 1)), f"user {u}: events not 1..n in offset order"
        assert len({o["source_partition"] for o in os_}) == 1, f"user {u} spread over partitions"

    # 2. Every vector equals the scalar reference fed that user's events.
    worst = 0.0
    for o in outputs:
        r = ref[(o["user_id"], o["events"])]
        assert o["ts"] == r["ts"], (o, r["ts"])
        d = max(max_abs_diff(o["vector"], r["vector"]), abs(o["drift"] - r["drift"]))
        worst = max(worst, d)
        assert d <= TOL, f"user {o['user_id']} event {o['events']}: |diff| {d}"
        assert o["model"] and o["top_items"] is None
    log(f"[e2e] max |worker - scalar reference| over {len(outputs)} vectors: {worst:.2e}")

    # 3a. An independent decoder (python3-avro) reads the topic as kcat fetched it.
    schema = avro.schema.parse(open(os.path.join(SOURCE, "schemas", "interest_vector.avsc")).read())
    reader = avro.io.DatumReader(schema)
    by_pair = {(o["source_partition"], o["source_offset"]): o for o in outputs}
    assert len(raw) == len(outputs)
    for rec in raw:
        v = rec["value"]
        assert v[0] == 0 and int.from_bytes(v[1:5], "big") == 2, "Confluent header with schema id 2"
        dec = reader.read(avro.io.BinaryDecoder(io.BytesIO(v[5:])))
        o = by_pair[(dec["source_partition"], dec["source_offset"])]
        assert rec["key"].decode() == dec["user_id"] == o["user_id"]
        ts_ms = (dec["ts"] - EPOCH) // datetime.timedelta(milliseconds=1)   # timestamp-millis -> datetime
        assert dec["events"] == o["events"] and ts_ms == o["ts"], (dec["ts"], o["ts"])
        # Both are float32 on the wire: equal once read back as float32 (JSON prints %.9g).
        assert f32(dec["vector"]) == f32(o["vector"]), "python3-avro and avro-c disagree"
    log(f"[e2e] python3-avro decoded {len(raw)} records read by kcat; all equal")

    # 3b. The final state of every user in RocksDB equals the reference's final state.
    states = json_lines(ievo("state", "dump", "-d", wd("state"), "-m", model).stdout)
    last = {}
    for (u, e), r in ref.items():
        if e > last.get(u, (0, None))[0]:
            last[u] = (e, r)
    assert len(states) == len(last), (len(states), len(last))
    for s in states:
        e, r = last[s["user_id"]]
        assert s["events"] == e and s["ts"] == r["ts"]
        assert max_abs_diff(s["vector"], r["vector"]) <= TOL
    log(f"[e2e] {len(states)} final states equal the reference")
    wd.cleanup()


if __name__ == "__main__":
    main()
