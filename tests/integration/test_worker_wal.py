"""The write-ahead log off (state.wal=auto with a changelog): a crash between a RocksDB write and
its flush, the case the WAL used to cover.

  1. worker A applies the first half of the events and stops cleanly: RocksDB flushes its
     memtables at close, so the store holds A's last checkpoint, with the changelog position of
     each partition's marker;
  2. worker B applies the second half on the same state dir, checkpoints (to the changelog and
     to RocksDB's memtables), and is killed with SIGKILL before any flush;
  3. worker C starts on the same state dir: RocksDB recovers to A's checkpoint, and C restores
     only the changelog records written after A's positions (counted: exactly B's records),
     then applies what was left.
The outputs, deduplicated on (partition, offset), hold every event once, and every final state
equals the scalar reference of a run that was never killed.

The same with state.wal=on, for contrast: the store keeps B's checkpoints through the kill, and
C restores nothing.
"""
import json
import os
import signal
import subprocess
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, await_outputs, check_exactly_once, check_final_states,
                     consume_vectors, ievo, input_events, kcat_records, load_reference, log, write_jsonl)

PARTS, USERS, HALF = 4, 100, 2000


def changelog_ends(bootstrap):
    """{partition: end offset} of the changelog, from its records."""
    ends = {p: 0 for p in range(PARTS)}
    for r in kcat_records(bootstrap, "state-changelog"):
        ends[r["partition"]] = max(ends[r["partition"]], r["offset"] + 1)
    return ends


def scenario(wal):
    wd = Workdir("wal")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "13")
    state = wd("state")
    worker = [IEVO, "worker", "-X", "group.id=wal", "-X", "changelog.topic=state-changelog", "-X", f"state.dir={state}",
              "-X", f"model.path={model}", "-X", "commit.interval.ms=200", "-X", f"state.wal={wal}", *FAST_GROUP]
    topics = ["user-actions", "state-changelog", "interest-vectors:8", "user-actions.dlq:1"]
    with Broker(topics, partitions=PARTS, workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"{USERS}:{HALF}", "--synth-seed", "1")
        r = subprocess.run(worker + ["-b", b.bootstrap, "--until-eof", "-X", f"stats.file={wd('a.json')}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        after_a = changelog_ends(b.bootstrap)

        # later in event time than the first half: the reference applies each user's events in time order
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"{USERS}:{HALF}", "--synth-seed", "2",
             "--synth-start-ts", "1800000000000")
        logb = open(wd("b.log"), "w")
        p = subprocess.Popen(worker + ["-b", b.bootstrap], stdout=subprocess.DEVNULL, stderr=logb)
        await_outputs(b.bootstrap, 2 * HALF, 300, alive=lambda: p.poll() is None)
        time.sleep(1.5)   # several commit intervals: B's last batches are checkpointed
        p.send_signal(signal.SIGKILL)
        p.wait()
        after_b = changelog_ends(b.bootstrap)
        tail = [r for r in kcat_records(b.bootstrap, "state-changelog")
                if r["offset"] >= after_a[r["partition"]] and r["key"]]
        assert tail, f"worker B wrote nothing to the changelog before it was killed ({after_a} -> {after_b})"
        wal_bytes = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state) if f.endswith(".log"))
        if wal == "off":
            assert wal_bytes < 4096, f"{wal_bytes} bytes of write-ahead log: the WAL is not off"
        else:
            assert wal_bytes > 4096, f"{wal_bytes} bytes of write-ahead log with state.wal=on"

        r = subprocess.run(worker + ["-b", b.bootstrap, "--until-eof", "-X", f"stats.file={wd('c.json')}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        c = json.load(open(wd("c.json")))
        want = len(tail) if wal == "off" else 0
        assert c["restored_records"] == want, \
            f"state.wal={wal}: the restore read {c['restored_records']} changelog records, expected {want}; the tail " \
            f"after the flushed checkpoint holds {len(tail)}, the whole changelog {sum(after_b.values())}"
        outputs = consume_vectors(b.bootstrap)
        n = write_jsonl([e for _, _, e in input_events(b.bootstrap)], wd("input.jsonl"))

    ref = load_reference(model, ["--jsonl", wd("input.jsonl")])
    distinct, repeats, _ = check_exactly_once(outputs, ref, n, 1e-4)
    users = check_final_states([state], model, ref, 1e-4)
    log(f"[wal] state.wal={wal}, killed before a flush: the restore read {c['restored_records']} changelog records "
        f"(the tail after the flushed checkpoint: {len(tail)}, all: {sum(after_b.values())}); {distinct} events "
        f"applied once ({repeats} outputs repeated), {users} final states equal the never-killed reference; WAL files "
        f"{wal_bytes} bytes")
    wd.cleanup()


def main():
    scenario("off")
    scenario("on")


if __name__ == "__main__":
    main()
