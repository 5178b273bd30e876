"""Bounded failure on the disk side: a state dir that fills up mid-run, one that cannot be
created, one another worker holds. Each gives a clear error and a clean stop (exit status 1, no
crash), and a full disk leaves a store that a later run continues from: no event lost, none
applied twice.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, check_exactly_once, check_final_states, consume_vectors, ievo,
                     load_reference, log)

SHIM = os.path.join(os.environ.get("IEVO_BUILD_DIR", "build"), "fault_enospc.so")


def main():
    wd = Workdir("disk")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "4")
    data = ["--synthetic", "300:20000"]
    state = wd("state")
    worker = [IEVO, "worker", "-X", "group.id=disk", "-X", f"model.path={model}", "-X", "changelog.topic=state-changelog",
              "-X", "batch.max.events=256", *FAST_GROUP, "--until-eof"]
    with Broker(["user-actions:8", "state-changelog:8", "interest-vectors:16", "user-actions.dlq:2"],
                workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", *data)
        bs = ["-b", b.bootstrap]

        # 1. The disk fills up after ~400 kB of state writes (a checkpoint after every batch and
        #    1 MiB memtables, so RocksDB writes files early: with the WAL off, at its first flush).
        env = dict(os.environ, LD_PRELOAD=SHIM, IEVO_FAULT_DIR=state, IEVO_FAULT_AFTER_BYTES="400000")
        r = subprocess.run(worker + bs + ["-X", f"state.dir={state}", "-X", "commit.interval.ms=0",
                                          "-X", "state.write.buffer.bytes=1048576"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 1, f"expected a clean failure (1), got {r.returncode}:\n{err[-3000:]}"
        assert "No space left on device" in err, err[-3000:]
        line = [l for l in err.splitlines() if "No space left" in l][0]
        log(f"[disk] full disk -> exit 1: {line[:200]}")

        # 2. Space is back: the same state dir continues, and nothing is lost or applied twice.
        r = subprocess.run(worker + bs + ["-X", f"state.dir={state}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        outs = consume_vectors(b.bootstrap)

        # 3. A state dir that cannot be created.
        r = subprocess.run(worker + bs + ["-X", "state.dir=/dev/null/state"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=60)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 1 and "cannot create state dir /dev/null/state" in err, err[-2000:]
        log("[disk] uncreatable state dir -> exit 1: " + [l for l in err.splitlines() if "state dir" in l][-1][-120:])

        # 4. A state dir another worker holds (RocksDB's lock).
        holder = subprocess.Popen(worker[:-1] + bs + ["-X", f"state.dir={state}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            import time
            time.sleep(1.0)
            r = subprocess.run(worker + bs + ["-X", f"state.dir={state}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=60)
        finally:
            holder.terminate()
            holder.wait(60)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 1 and "cannot open state store" in err, err[-2000:]
        log("[disk] state dir in use -> exit 1: " + [l for l in err.splitlines() if "state store" in l][-1][-160:])

    ref = load_reference(model, data)
    distinct, repeats, _ = check_exactly_once(outs, ref, len(ref), 1e-4)
    users = check_final_states([state], model, ref, 1e-4)
    log(f"[disk] after the full disk: {distinct} events, {repeats} repeated outputs, {users} final states equal "
        f"the reference; 0 lost, 0 applied twice")
    wd.cleanup()


if __name__ == "__main__":
    main()
