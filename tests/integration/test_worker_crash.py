"""SIGKILL the worker mid-run, several times, then let it finish: the final per-user states must
equal a run that was never killed (the scalar reference), and the outputs, deduplicated on
(source_partition, source_offset), must hold exactly one vector per input event — the same
vector every time an event was re-emitted.
"""
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, consume_vectors, data_args, ievo, json_lines, load_reference,
                     log, max_abs_diff)

KILLS = 3


def main():
    rnd = random.Random(int(os.environ.get("IEVO_TEST_SEED", "1234")))
    produce_args, vocab_args, name = data_args()
    wd = Workdir("crash")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, *vocab_args, "--seed", "11")
    worker_args = [IEVO, "worker", "-X", "group.id=crash", "-X", f"state.dir={wd('state')}", "-X", f"model.path={model}",
                   # The scalar backend and small batches stretch the run to seconds, to kill into.
                   "-X", "model.backend=scalar", "-X", "batch.max.events=256", *FAST_GROUP, "--until-eof"]
    with Broker(["user-actions", "interest-vectors:32", "user-actions.dlq:2"], partitions=8, workdir=wd.path) as b:
        log(f"[crash] data {name}")
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", *produce_args, timeout=600)
        killed = 0
        for attempt in range(KILLS):
            logf = open(wd(f"worker-{attempt}.log"), "w+")
            p = subprocess.Popen(worker_args + ["-b", b.bootstrap], stdout=subprocess.DEVNULL, stderr=logf)
            # Wait until it owns partitions and is applying, then kill it at a random moment.
            deadline = time.time() + 60
            while time.time() < deadline and p.poll() is None:
                if "assigned user-actions" in open(logf.name).read():
                    break
                time.sleep(0.05)
            time.sleep(rnd.uniform(0.1, 1.5))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
                killed += 1
                log(f"[crash] kill {killed}: SIGKILL after the worker was assigned")
            else:
                log(f"[crash] worker finished before kill {attempt + 1}")
                break
        assert killed >= 1, "the worker was never killed mid-run: the test proved nothing"
        # The survivor: same group, same state dir, runs to the end.
        r = subprocess.run(worker_args + ["-b", b.bootstrap], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=900)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        outputs = consume_vectors(b.bootstrap)

    ref = load_reference(model, produce_args)
    n_events = len(ref)

    # Outputs: at least once; deduplicated on (partition, offset): exactly once, and every
    # repeat carries the same vector (the state it came from was never applied twice).
    by_pair = {}
    repeats = 0
    for o in outputs:
        k = (o["source_partition"], o["source_offset"])
        if k in by_pair:
            repeats += 1
            assert by_pair[k]["events"] == o["events"] and max_abs_diff(by_pair[k]["vector"], o["vector"]) == 0.0, \
                f"event {k} emitted twice with different results: state applied twice?"
        else:
            by_pair[k] = o
    log(f"[crash] {killed} kills, {len(outputs)} outputs, {repeats} repeats, {len(by_pair)} distinct events of {n_events}")
    assert len(by_pair) == n_events, f"{len(by_pair)} distinct outputs for {n_events} events: events lost"
    per_user = defaultdict(list)
    for o in by_pair.values():
        per_user[o["user_id"]].append(o["events"])
    for u, ev in per_user.items():
        assert sorted(ev) == list(range(1, len(ev) + 1)), f"user {u}: gap or repeat in events"
    for o in by_pair.values():
        r = ref[(o["user_id"], o["events"])]
        assert max_abs_diff(o["vector"], r["vector"]) <= 1e-4, f"{o['user_id']} event {o['events']} differs"

    # Final states equal the never-killed reference.
    states = json_lines(ievo("state", "dump", "-d", wd("state"), "-m", model).stdout)
    last = {}
    for (u, e), r in ref.items():
        if e > last.get(u, (0, None))[0]:
            last[u] = (e, r)
    assert len(states) == len(last)
    for s in states:
        e, r = last[s["user_id"]]
        assert s["events"] == e, f"user {s['user_id']}: state has {s['events']} events, expected {e}"
        assert max_abs_diff(s["vector"], r["vector"]) <= 1e-4
    log(f"[crash] {len(states)} final states equal the never-killed reference; 0 events lost, 0 applied twice")
    wd.cleanup()


if __name__ == "__main__":
    main()
