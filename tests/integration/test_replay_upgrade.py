"""The model-upgrade procedure of docs/operations.md, end to end:

  1. live group v1 serves model v1;
  2. `ievo replay` re-applies the history with model v2 into a fresh state dir, its own group,
     changelog and output topic — SIGKILLed half way, then resumed;
  3. more events arrive; a live v2 worker with an empty state dir takes over from the replay's
     end (it restores every partition from the v2 changelog) and continues.

Checks: the v2 output topic holds, deduplicated on (partition, offset), exactly one vector per
input event — history and new events alike — each equal to the scalar reference with model v2,
and the final v2 states equal the reference; the replay stopped at the end offsets it captured.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, check_exactly_once, check_final_states, consume_vectors, ievo,
                     load_reference, log)


def events(n_users, n, t0, seed):
    rnd = random.Random(seed)
    return [{"user_id": f"u{rnd.randrange(n_users):03d}", "item_id": f"t{rnd.randrange(20):02d}-i{rnd.randrange(50):03d}",
             "action": rnd.choice(["view", "click", "purchase"]), "ts": t0 + 1000 * k,
             "value": round(rnd.uniform(1, 300), 2) if rnd.random() < 0.7 else None} for k in range(n)]


def jsonl(evs):
    return "".join(json.dumps(e) + "\n" for e in evs).encode()


def main():
    wd = Workdir("upgrade")
    v1, v2 = wd("v1.safetensors"), wd("v2.safetensors")
    ievo("model", "init", "--out", v1, "--vocab-synthetic", "--init-seed", "1", "--name", "v1")
    ievo("model", "init", "--out", v2, "--vocab-synthetic", "--init-seed", "2", "--name", "v2", "--cell", "gru")
    history, later = events(200, 30000, 1_700_000_000_000, 1), events(200, 3000, 1_700_100_000_000, 2)
    topics = ["user-actions:8", "v1-changelog:8", "v2-changelog:8", "interest-vectors:16", "interest-vectors-v2:16"]
    with Broker(topics, workdir=wd.path) as b:
        bs = ["-b", b.bootstrap]
        ievo("produce", *bs, "-t", "user-actions", "--jsonl", "-", input=jsonl(history))
        ievo("worker", *bs, "-X", "group.id=v1", "-X", f"model.path={v1}", "-X", f"state.dir={wd('v1')}",
             "-X", "changelog.topic=v1-changelog", *FAST_GROUP, "--until-eof")

        # 2. The replay with model v2, killed once (the scalar backend and small batches make it
        #    last a few seconds), then resumed from its state dir.
        replay = [IEVO, "replay", *bs, "-X", "group.id=v2", "-X", f"model.path={v2}", "-X", f"state.dir={wd('replay')}",
                  "-X", "changelog.topic=v2-changelog", "-X", "output.topic=interest-vectors-v2",
                  "-X", "model.backend=scalar", "-X", "batch.max.events=64", "-X", "commit.interval.ms=200"]
        logf = wd("replay-1.log")
        p = subprocess.Popen(replay, stdout=subprocess.DEVNULL, stderr=open(logf, "w"))
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None and "events to replay" not in open(logf).read():
            time.sleep(0.02)
        time.sleep(random.Random(3).uniform(0.5, 1.5))
        assert p.poll() is None, "the replay finished before it could be killed:\n" + open(logf).read()[-2000:]
        p.send_signal(signal.SIGKILL)
        p.wait()
        log("[upgrade] replay killed mid-way")
        r = ievo(*replay[1:], "-X", f"stats.file={wd('replay.json')}", timeout=600)
        text = r.stderr.decode()
        assert "resuming" in text, "the second replay did not resume"
        assert "reached its end offset" in text
        st = json.load(open(wd("replay.json")))
        log(f"[upgrade] replay resumed and finished: {st['applied']} events applied after the restart, "
            f"{st['events_per_s']:.0f} events/s")

        # 3. New events, then the live v2 worker with an empty state dir.
        ievo("produce", *bs, "-t", "user-actions", "--jsonl", "-", input=jsonl(later))
        r = ievo("worker", *bs, "-X", "group.id=v2", "-X", f"model.path={v2}", "-X", f"state.dir={wd('live-v2')}",
                 "-X", "changelog.topic=v2-changelog", "-X", "output.topic=interest-vectors-v2",
                 "-X", f"stats.file={wd('live.json')}", *FAST_GROUP, "--until-eof")
        live = json.load(open(wd("live.json")))
        assert live["restored_partitions"] == 8, f"the live worker restored {live['restored_partitions']} partitions"
        assert live["applied"] == len(later), f"live v2 applied {live['applied']}, expected the {len(later)} new events"
        outs = consume_vectors(b.bootstrap, "interest-vectors-v2")

    with open(wd("all.jsonl"), "wb") as f:
        f.write(jsonl(history + later))
    ref = load_reference(v2, ["--jsonl", wd("all.jsonl")])
    distinct, repeats, worst = check_exactly_once(outs, ref, len(history) + len(later), 1e-4)
    users = check_final_states([wd("live-v2")], v2, ref, 1e-4)
    assert all(o["model"].startswith("v2-") for o in outs)
    log(f"[upgrade] v2 topic: {distinct} events once each ({repeats} repeats from the kill), max |diff| {worst:.1e}; "
        f"{users} final v2 states equal the reference")
    wd.cleanup()


if __name__ == "__main__":
    main()
