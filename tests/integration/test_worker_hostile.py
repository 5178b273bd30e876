"""Records that come back from outside the process, damaged on purpose: the worker must carry on
with everything else exact (issue: trust nothing that comes back).

The changelog: after a first worker has checkpointed the first half of the events, records are
written into its changelog by another producer: a tombstone, a truncated record, a record with
impossible window counters, one whose applied offset lies past the input's end, and a marker past
the input's end. A second worker restores from that changelog into an empty state dir and applies
the second half. The damaged users' records are quarantined (dead-lettered with the reason, their
state starts again), the tombstoned user starts again, the marker is not obeyed (the second half
is applied, not skipped), and every other user's final state equals the reference of all events.

The store: the same kinds of damage written into a state dir's RocksDB (tests/faults/
state_corrupt.c), read back by a worker without a changelog: quarantined the same way.
"""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, consume_vectors, ievo, input_events, json_lines,
                     kcat_records, load_reference, log, max_abs_diff, write_jsonl)

BUILD = os.environ.get("IEVO_BUILD_DIR", "build")
USERS, HALF = 40, 800


def produce_raw(wd, bootstrap, partition, key, value):
    """One record from a foreign producer (kcat), any bytes; value None: a tombstone (a null
    value); key b"": a marker's empty key."""
    base = ["kcat", "-P", "-b", bootstrap, "-t", "state-changelog", "-p", str(partition)]
    if value is None:   # kcat sends no message for an empty file: a line with an empty value, -Z
        subprocess.run(base + ["-K", "\t", "-Z"], input=key + b"\t\n", check=True, timeout=60, stderr=subprocess.PIPE)
        return
    path = wd("raw.bin")
    with open(path, "wb") as f:
        f.write(value)
    subprocess.run(base + ["-k", key.decode(), path], check=True, timeout=60, stderr=subprocess.PIPE)


def latest_records(bootstrap):
    """{user: (partition, value)} of the changelog's latest state records."""
    out = {}
    for r in kcat_records(bootstrap, "state-changelog"):
        if r["key"]:
            out[r["key"].decode()] = (r["partition"], r["value"])
    return out


def final_states(state_dir, model):
    return {s["user_id"]: s for s in json_lines(ievo("state", "dump", "-d", state_dir, "-m", model).stdout)}


def last_by_user(ref):
    last = {}
    for (u, e), r in ref.items():
        if e > last.get(u, (0, None))[0]:
            last[u] = (e, r)
    return last


def check_states(final, ref_all, ref_second, restarted):
    """Users in `restarted` equal the reference of the second half alone; all others the
    reference of every event."""
    all_last, second_last = last_by_user(ref_all), last_by_user(ref_second)
    want = {u for u in all_last if u not in restarted or u in second_last}
    assert set(final) == want, f"{len(final)} users in the state, {len(want)} expected"
    for u, s in final.items():
        e, r = (second_last if u in restarted else all_last)[u]
        assert s["events"] == e, f"user {u}: {s['events']} events in its state, expected {e}"
        assert max_abs_diff(s["vector"], r["vector"]) <= 1e-4, f"user {u}: final vector differs"


def dead_letters(bootstrap):
    out = []
    for r in kcat_records(bootstrap, "user-actions.dlq"):
        h = dict(kv.split("=", 1) for kv in r["headers"].split(",") if "=" in kv)
        out.append((r["key"].decode(errors="replace"), h))
    return out


def references(wd, model, events, first_end):
    write_jsonl([e for _, _, e in events], wd("all.jsonl"))
    write_jsonl([e for p, o, e in events if o >= first_end[p]], wd("second.jsonl"))
    return load_reference(model, ["--jsonl", wd("all.jsonl")]), load_reference(model, ["--jsonl", wd("second.jsonl")])


def produce_half(b, first):
    """The first half, or the second: other events of the same users, later in event time."""
    later = [] if first else ["--synth-seed", "2", "--synth-start-ts", "1800000000000"]
    ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"{USERS}:{HALF}", *later)


def hostile_changelog(wd, model):
    worker = [IEVO, "worker", "-X", "group.id=hostile", "-X", "changelog.topic=state-changelog",
              "-X", f"model.path={model}", *FAST_GROUP, "--until-eof"]
    with Broker(["user-actions:2", "state-changelog:2", "interest-vectors:4", "user-actions.dlq:1"],
                workdir=wd.path) as b:
        produce_half(b, True)
        r = subprocess.run(worker + ["-b", b.bootstrap, "-X", f"state.dir={wd('a')}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        first_end = {p: 0 for p in range(2)}
        for p, o, _ in input_events(b.bootstrap):
            first_end[p] = max(first_end[p], o + 1)
        recs = latest_records(b.bootstrap)
        users = sorted(recs)
        tomb, trunc, counters, future = users[0], users[1], users[2], users[3]
        produce_raw(wd, b.bootstrap, recs[tomb][0], tomb.encode(), None)
        produce_raw(wd, b.bootstrap, recs[trunc][0], trunc.encode(), recs[trunc][1][:10])
        bad = bytearray(recs[counters][1])
        bad[8 + 24:8 + 26] = b"\xff\xff"   # the state blob's u16 window length
        produce_raw(wd, b.bootstrap, recs[counters][0], counters.encode(), bytes(bad))
        bad = bytearray(recs[future][1])
        bad[0:8] = struct.pack("<q", 10 ** 12)   # the record's last applied input offset
        produce_raw(wd, b.bootstrap, recs[future][0], future.encode(), bytes(bad))
        produce_raw(wd, b.bootstrap, 0, b"", struct.pack("<q", 10 ** 12))   # a marker past the input's end

        produce_half(b, False)
        r = subprocess.run(worker + ["-b", b.bootstrap, "-X", f"state.dir={wd('b')}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 0, f"the worker must carry on past damaged changelog records ({r.returncode}):\n{err[-3000:]}"
        assert "out-of-range marker" in err, "the marker past the input's end was not reported"
        dlq = dead_letters(b.bootstrap)
        events = input_events(b.bootstrap)
        outs = consume_vectors(b.bootstrap)
    quarantined = {k for k, h in dlq if h.get("ievo.error.class") == "state"}
    assert quarantined == {trunc, counters, future}, f"quarantined {quarantined}, expected {trunc, counters, future}"
    assert all(h.get("ievo.source.topic") == "state-changelog" for _, h in dlq), dlq
    second = {(o["source_partition"], o["source_offset"]) for o in outs if o["source_offset"] >= first_end[o["source_partition"]]}
    assert len(second) == sum(1 for p, o, _ in events if o >= first_end[p]), \
        "events of the second half are missing: a marker past the end was obeyed?"
    ref_all, ref_second = references(wd, model, events, first_end)
    check_states(final_states(wd("b"), model), ref_all, ref_second, {tomb, trunc, counters, future})
    log(f"[hostile] changelog: {len(quarantined)} records quarantined "
        f"({', '.join(sorted(h['ievo.error'][:60] for _, h in dlq))}), a tombstone and a marker past the end "
        f"not obeyed; {len(ref_all)} events, every other user's state exact")


def hostile_store(wd, model):
    worker = [IEVO, "worker", "-X", "group.id=store", "-X", "changelog.enable=false", "-X", f"model.path={model}",
              "-X", f"state.dir={wd('s')}", *FAST_GROUP, "--until-eof"]
    with Broker(["user-actions:2", "interest-vectors:4", "user-actions.dlq:1"], workdir=wd.path) as b:
        produce_half(b, True)
        r = subprocess.run(worker + ["-b", b.bootstrap], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        first_end = {p: 0 for p in range(2)}
        for p, o, _ in input_events(b.bootstrap):
            first_end[p] = max(first_end[p], o + 1)
        stored = sorted(final_states(wd("s"), model).values(), key=lambda s: s["user_id"])
        damaged = {}
        for s, mode in zip(stored, ["truncate", "counters", "future"]):
            subprocess.run([os.path.join(BUILD, "state_corrupt"), wd("s"), str(s["partition"]), s["user_id"], mode],
                           check=True, timeout=60)
            damaged[s["user_id"]] = mode
        produce_half(b, False)
        r = subprocess.run(worker + ["-b", b.bootstrap], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, f"the worker must carry on past damaged stored records:\n{r.stderr.decode()[-3000:]}"
        dlq = dead_letters(b.bootstrap)
        events = input_events(b.bootstrap)
    quarantined = {k for k, h in dlq if h.get("ievo.error.class") == "state"}
    assert quarantined == set(damaged), f"quarantined {quarantined}, expected {set(damaged)}"
    assert all(h.get("ievo.source.topic") == "(state store)" for _, h in dlq), dlq
    ref_all, ref_second = references(wd, model, events, first_end)
    check_states(final_states(wd("s"), model), ref_all, ref_second, set(damaged))
    log(f"[hostile] store: {len(quarantined)} damaged records quarantined ({', '.join(sorted(damaged.values()))}); "
        f"every other user's state exact")


def main():
    wd = Workdir("hostile")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "21")
    hostile_changelog(wd, model)
    hostile_store(wd, model)
    wd.cleanup()


if __name__ == "__main__":
    main()
