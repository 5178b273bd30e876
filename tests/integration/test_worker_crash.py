"""SIGKILL the worker mid-run, several times, then let it finish: the final per-user states must
equal a run that was never killed (the scalar reference), and the outputs, deduplicated on
(source_partition, source_offset), must hold exactly one vector per input event — the same
vector every time an event was re-emitted.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, check_exactly_once, check_final_states, consume_vectors,
                     data_args, ievo, load_reference, log)

KILLS = 3


def main():
    rnd = random.Random(int(os.environ.get("IEVO_TEST_SEED", "1234")))
    produce_args, vocab_args, name = data_args()
    wd = Workdir("crash")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, *vocab_args, "--init-seed", "11")
    worker_args = [IEVO, "worker", "-X", "group.id=crash", "-X", "changelog.topic=state-changelog", "-X", f"state.dir={wd('state')}", "-X", f"model.path={model}",
                   # The scalar backend and small batches stretch the run to seconds, to kill into.
                   "-X", "model.backend=scalar", "-X", "batch.max.events=256",
                   # Frequent checkpoints whose snapshots take many loop turns (16 records a turn):
                   # kills land mid-snapshot, and records copied after the cut must still be right.
                   "-X", "commit.interval.ms=300", "-X", "state.snapshot.slice.records=16", *FAST_GROUP, "--until-eof"]
    with Broker(["user-actions", "state-changelog", "interest-vectors:32", "user-actions.dlq:2"], partitions=16,
                workdir=wd.path) as b:
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
        r = subprocess.run(worker_args + ["-b", b.bootstrap, "-X", "log.level=debug"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=900)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        turns = [int(t) for t in re.findall(r"snapshot of \d+ records in (\d+) loop turns", r.stderr.decode())]
        assert turns and max(turns) > 1, f"no snapshot took more than one loop turn ({turns}): slicing untested"
        outputs = consume_vectors(b.bootstrap)

    ref = load_reference(model, produce_args)
    n_events = len(ref)

    distinct, repeats, worst = check_exactly_once(outputs, ref, n_events, 1e-4)
    users = check_final_states([wd("state")], model, ref, 1e-4)
    log(f"[crash] {killed} kills, {len(outputs)} outputs, {repeats} repeats, {distinct} distinct events of {n_events}; "
        f"{users} final states equal the never-killed reference; 0 events lost, 0 applied twice")
    wd.cleanup()


if __name__ == "__main__":
    main()
