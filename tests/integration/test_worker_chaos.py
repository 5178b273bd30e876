"""Chaos: three workers in one group while input flows, SIGKILLed again and again at random
points — mid-batch, right after a rebalance starts, in the middle of restoring a partition from
the changelog — and restarted, sometimes with their state dir wiped (so they must restore).

The final states must equal a never-killed run (the single-process reference), and the outputs,
deduplicated on (source_partition, source_offset), must hold exactly one result per input event,
the same one every time it was re-emitted.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, check_exactly_once, check_final_states, await_outputs, ievo,
                     load_reference, log)

USERS, EVENTS, RATE, PARTS = 300, 20000, 600, 12
CHAOS_S = 45


class Worker:
    def __init__(self, wd, b, name, model):
        self.wd, self.b, self.name, self.model = wd, b, name, model
        self.dir = wd("state-" + name)
        self.proc, self.logs = None, 0

    def start(self):
        self.logs += 1
        self.log = self.wd(f"{self.name}-{self.logs}.log")
        self.series = self.wd(f"{self.name}-{self.logs}.series")
        args = [IEVO, "worker", "-b", self.b.bootstrap, "-X", "group.id=chaos", "-X", f"state.dir={self.dir}",
                "-X", f"stats.series.file={self.series}", "-X", "stats.series.interval.ms=200",
                "-X", f"model.path={self.model}", "-X", "changelog.topic=state-changelog", "-X", "batch.timeout.ms=100",
                "-X", "state.snapshot.slice.records=16",   # snapshots over many loop turns
                *FAST_GROUP]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return open(self.log).read() if self.proc else ""

    def status(self):
        """The worker's last stats.series line ({} before the first)."""
        lines = open(self.series).read().splitlines() if os.path.exists(self.series) else []
        return json.loads(lines[-1]) if lines else {}

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        assert self.proc.returncode == 0, open(self.log).read()[-3000:]


def settle(workers, timeout=120):
    """Waits until the group has settled: every worker running and ready (assigned, nothing to
    restore), the partitions all owned, three samples in a row. A stop earlier could catch a
    restarted worker inside its restore, and the final states would then be in no state dir."""
    deadline, calm = time.time() + timeout, 0
    while time.time() < deadline and calm < 3:
        st = [w.status() for w in workers]
        ok = all(w.running() for w in workers) and all(x.get("ready") for x in st) and \
            sum(x.get("partitions", 0) for x in st) == PARTS
        calm = calm + 1 if ok else 0
        time.sleep(0.5)
    assert calm >= 3, f"the group did not settle: {[w.status() for w in workers]}"


def kill_mid_restore(w, kills):
    """Wipes a worker's state and restarts it, so it must restore its partitions from the
    changelog, and kills it as soon as it says it is restoring (restores take milliseconds here,
    so poll fast and count only kills that landed before "restored")."""
    if w.running():
        w.kill()
    shutil.rmtree(w.dir, ignore_errors=True)
    w.start()
    deadline = time.time() + 40
    while time.time() < deadline and w.running():
        text = w.log_text()
        if "restoring from" in text or "resuming at offset" in text or "no state yet" in text:
            break
        time.sleep(0.001)
    if w.running() and "restoring from" in w.log_text():
        w.kill()
        text = w.log_text()
        last = text[text.rindex("restoring from"):]
        kills["mid-restore" if "restored" not in last else "after-restore"] += 1


def main():
    rnd = random.Random(int(os.environ.get("IEVO_TEST_SEED", "99")))
    wd = Workdir("chaos")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "8")
    data = ["--synthetic", f"{USERS}:{EVENTS}"]
    topics = [f"user-actions:{PARTS}", f"state-changelog:{PARTS}", "interest-vectors:24", "user-actions.dlq:2"]
    kills = {"mid-batch": 0, "mid-rebalance": 0, "mid-restore": 0, "after-restore": 0}
    wipes = 0
    with Broker(topics, workdir=wd.path) as b:
        prod = subprocess.Popen([IEVO, "produce", "-b", b.bootstrap, "-t", "user-actions", *data, "--rate", str(RATE)],
                                stdout=subprocess.DEVNULL, stderr=open(wd("produce.log"), "w"))
        workers = [Worker(wd, b, n, model) for n in "abc"]
        for w in workers:
            w.start()
        t0 = time.time()
        round_ = 0
        while time.time() - t0 < CHAOS_S:
            time.sleep(rnd.uniform(1.0, 4.0))
            w = rnd.choice(workers)
            kind = ["mid-batch", "mid-rebalance", "mid-restore"][round_ % 3]
            round_ += 1
            if kind == "mid-restore":
                wipes += 1
                kill_mid_restore(w, kills)
            elif kind == "mid-rebalance":
                # Start a fresh member (a rebalance begins), then kill a running one right away.
                other = rnd.choice([x for x in workers if x is not w])
                if other.running():
                    other.kill()
                other.start()
                time.sleep(rnd.uniform(0.1, 1.0))
                if w.running():
                    w.kill()
                    kills[kind] += 1
            elif w.running():
                w.kill()
                kills[kind] += 1
            time.sleep(rnd.uniform(0.0, 2.0))
            for x in workers:
                if not x.running():
                    x.start()
        # A restore is over in milliseconds, so a kill lands inside one only now and then: more
        # tries (at most 10) until one has; a wiped worker restores whatever the changelog holds.
        for _ in range(10):
            if kills["mid-restore"]:
                break
            for x in workers:
                if not x.running():
                    x.start()
            time.sleep(rnd.uniform(1.0, 3.0))
            wipes += 1
            kill_mid_restore(rnd.choice(workers), kills)
        log(f"[chaos] {time.time() - t0:.0f} s of chaos: kills {kills}, state dirs wiped {wipes}")
        assert prod.wait(180) == 0, open(wd("produce.log")).read()
        for x in workers:
            if not x.running():
                x.start()
        outs, done = await_outputs(b.bootstrap, EVENTS, 240)
        settle(workers)
        for x in workers:
            x.stop()
        log(f"[chaos] {done} of {EVENTS} events have outputs; workers stopped")

    assert sum(kills.values()) >= 5 and kills["mid-restore"] >= 1, f"too little chaos to prove anything: {kills}"
    ref = load_reference(model, data)
    distinct, repeats, worst = check_exactly_once(outs, ref, EVENTS, 1e-5)
    users = check_final_states([w.dir for w in workers], model, ref, 1e-5)
    log(f"[chaos] {sum(kills.values())} kills survived; {EVENTS} events, {len(outs)} outputs ({repeats} repeats); "
        f"{users} final states equal the never-killed reference; 0 lost, 0 applied twice")
    wd.cleanup()


if __name__ == "__main__":
    main()
