"""Broker faults while input flows, injected through `ievo broker --control` (docs/faults.md):
failed produce, fetch and offset-commit requests, added round-trip time, a group coordinator
move, a broker down and back. The worker must ride through all of them by itself (librdkafka
retries, the checkpoint waits for acknowledgements) and lose nothing: outputs deduplicated on
(partition, offset) cover every event once, final states equal the reference.

Then a dead-letter topic that cannot be written: the worker must stop rather than move past the
bad record, and after the fault is gone a restart dead-letters it and carries on.
"""
import io
import json
import os
import struct
import subprocess
import sys
import time

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, SOURCE, Broker, Workdir, await_outputs, check_exactly_once, check_final_states,
                     consume_vectors, ievo, kcat_produce, kcat_records, load_reference, log)

USERS, EVENTS, RATE = 200, 12000, 600


def worker_cmd(b, wd, model, name, *extra):
    return [IEVO, "worker", "-b", b.bootstrap, "-X", f"group.id={name}", "-X", f"model.path={model}",
            "-X", f"state.dir={wd('state-' + name)}", "-X", "changelog.topic=state-changelog",
            "-X", f"stats.file={wd(name + '.json')}", *FAST_GROUP, *extra]


def faults_while_flowing(wd, model):
    faults = []
    topics = ["user-actions:6", "state-changelog:6", "interest-vectors:12", "user-actions.dlq:2"]
    with Broker(topics, brokers=3, workdir=wd.path, control=True) as b:
        data = ["--synthetic", f"{USERS}:{EVENTS}"]
        prod = subprocess.Popen([IEVO, "produce", "-b", b.bootstrap, "-t", "user-actions", *data, "--rate", str(RATE)],
                                stdout=subprocess.DEVNULL, stderr=open(wd("produce.log"), "w"))
        w = subprocess.Popen(worker_cmd(b, wd, model, "faults"), stdout=subprocess.DEVNULL,
                             stderr=open(wd("faults-worker.log"), "w"))
        t0 = time.time()

        def at(t, *cmd):
            time.sleep(max(0.0, t0 + t - time.time()))
            b.ctl(*cmd)
            faults.append(" ".join(map(str, cmd)))
            log(f"[faults] {time.time() - t0:4.1f} s: {' '.join(map(str, cmd))}")

        at(4, "request-errors", "Produce", "NOT_LEADER_FOR_PARTITION", "REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS",
           "_TRANSPORT")
        at(6, "request-errors", "Fetch", "NOT_LEADER_FOR_PARTITION", "REQUEST_TIMED_OUT", "_TRANSPORT")
        at(8, "request-errors", "OffsetCommit", "COORDINATOR_NOT_AVAILABLE", "REQUEST_TIMED_OUT")
        at(9, "rtt", "all", 200)
        at(12, "rtt", "all", 0)
        at(13, "coordinator", "group", "faults", 2)
        at(15, "broker-down", 3)
        at(19, "broker-up", 3)
        at(20, "partition-leader", "user-actions", 0, 2)
        assert prod.wait(120) == 0, open(wd("produce.log")).read()[-2000:]
        outs, done = await_outputs(b.bootstrap, EVENTS, 120, alive=lambda: w.poll() is None, every=2)
        assert w.poll() is None, "the worker died under faults:\n" + open(wd("faults-worker.log")).read()[-3000:]
        w.terminate()
        w.wait(60)
        assert w.returncode == 0, open(wd("faults-worker.log")).read()[-3000:]
    ref = load_reference(model, data)
    distinct, repeats, _ = check_exactly_once(outs, ref, EVENTS, 1e-4)
    users = check_final_states([wd("state-faults")], model, ref, 1e-4)
    stats = json.load(open(wd("faults.json")))
    assert stats["offset_gaps"] == 0
    log(f"[faults] {len(faults)} faults injected; {distinct} events once each ({repeats} repeated outputs); "
        f"{users} final states equal the reference; 0 lost, 0 applied twice")
    return len(faults)


def encode(schema, rec):
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))
    return b"\x00" + struct.pack(">i", 1) + buf.getvalue()


def dead_letters_unwritable(wd, model):
    sj = json.load(open(os.path.join(SOURCE, "schemas", "user_action.avsc")))
    for f in sj["fields"]:
        if f["name"] == "ts":
            f["type"] = "long"
    schema = avro.schema.parse(json.dumps(sj))
    evs = [{"user_id": f"d{k % 10}", "item_id": "t01-i001", "action": "view", "ts": 1_700_000_000_000 + k * 1000,
            "value": None, "text": None} for k in range(60)]
    topics = ["user-actions:1", "state-changelog:1", "interest-vectors:2", "user-actions.dlq:1"]
    with Broker(topics, brokers=1, workdir=wd.path, control=True) as b:
        for e in evs[:30]:
            kcat_produce(b.bootstrap, "user-actions", e["user_id"], encode(schema, e), partition=0)
        kcat_produce(b.bootstrap, "user-actions", "bad", b"\x07not-avro", partition=0)
        for e in evs[30:]:
            kcat_produce(b.bootstrap, "user-actions", e["user_id"], encode(schema, e), partition=0)
        b.ctl("topic-error", "user-actions.dlq", "UNKNOWN_TOPIC_OR_PART")
        cmd = worker_cmd(b, wd, model, "dlq", "-X", "producer.message.timeout.ms=4000", "--until-eof")
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 1, f"the worker must stop when dead letters cannot be written ({r.returncode}):\n{err[-2000:]}"
        line = [l for l in err.splitlines() if "not acknowledged" in l][-1]
        log("[faults] dead-letter topic unwritable -> the worker stops: " + line[line.index("ERROR"):][:160])
        # no line at all: the worker stopped before its first checkpoint (nothing applied is kept)
        lines = subprocess.run([IEVO, "state", "offsets", "-d", wd("state-dlq")], stdout=subprocess.PIPE,
                               check=True).stdout.decode().splitlines() if os.path.exists(wd("state-dlq")) else []
        state = json.loads(lines[0]) if lines else None
        assert state is None or state["next_offset"] <= 30, f"moved past the record it could not keep: {state}"
        b.ctl("topic-error", "user-actions.dlq", "NO_ERROR")
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        dlq = kcat_records(b.bootstrap, "user-actions.dlq")
        assert [d["key"] for d in dlq] == [b"bad"] and dlq[0]["value"] == b"\x07not-avro", dlq
        outs = consume_vectors(b.bootstrap)
        assert len({o["source_offset"] for o in outs}) == 60, "a valid event was lost"
        log("[faults] after the fault: the record is dead-lettered and all 60 valid events applied")


def partition_cannot_start(wd, model):
    """A partition whose changelog cannot be read at assignment: the worker must stop with exit
    1 and a message naming the partition, and checkpoint nothing (no partition's offset moves,
    though the others could have been started)."""
    topics = ["user-actions:2", "state-changelog:2", "interest-vectors:2", "user-actions.dlq:1"]
    with Broker(topics, brokers=1, workdir=wd.path, control=True) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", "20:200")
        errlog = wd("nostart.log")
        proc = subprocess.Popen(worker_cmd(b, wd, model, "nostart", "--until-eof"), stdout=subprocess.DEVNULL,
                                stderr=open(errlog, "w"))
        deadline = time.time() + 60
        while " -> " not in open(errlog).read():   # started: clients made, copartitioning checked
            assert proc.poll() is None and time.time() < deadline, open(errlog).read()[-2000:]
            time.sleep(0.05)
        b.ctl("topic-error", "state-changelog", "UNKNOWN_TOPIC_OR_PART")   # before the first assignment (~3 s)
        rc = proc.wait(timeout=120)
        err = open(errlog).read()
        assert rc == 1, f"a partition that cannot start must stop the worker with exit 1 ({rc}):\n{err[-2000:]}"
        line = [l for l in err.splitlines() if "cannot be brought up to date" in l]
        assert line, err[-2000:]
        lines = subprocess.run([IEVO, "state", "offsets", "-d", wd("state-nostart")], stdout=subprocess.PIPE,
                               check=True).stdout.decode().splitlines()
        assert not lines, f"offsets were checkpointed past a partition that could not start: {lines}"
        log("[faults] changelog unreadable at assignment -> exit 1, nothing checkpointed: " +
            line[0][line[0].index("ERROR"):][:160])


def main():
    wd = Workdir("faults")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "6")
    partition_cannot_start(wd, model)
    n = faults_while_flowing(wd, model)
    dead_letters_unwritable(wd, model)
    log(f"[faults] {n + 2} faults injected in all")
    wd.cleanup()


if __name__ == "__main__":
    main()
