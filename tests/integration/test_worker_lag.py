"""ievo_consumer_lag means what it says: the records not yet applied. Scraped while the worker
is behind (a backlog produced before it starts), caught up (0 within a second of the last event
applied, not at the next commit or statistics interval) and idle (still 0)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, IEVO, Broker, Workdir, free_port, ievo, log, scrape

EVENTS = 20000


def lag(m):
    return sum(v for k, v in m.items() if k.startswith("ievo_consumer_lag{"))


def main():
    wd = Workdir("lag")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "5")
    port = free_port()
    with Broker(["user-actions:4", "state-changelog:4", "interest-vectors:4", "user-actions.dlq:1"],
                workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"200:{EVENTS}")
        # the scalar backend and small batches: seconds of backlog to scrape
        p = subprocess.Popen([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=lag", "-X", f"model.path={model}",
                              "-X", f"state.dir={wd('state')}", "-X", "changelog.topic=state-changelog",
                              "-X", "model.backend=scalar", "-X", "batch.max.events=64", "-X", "commit.interval.ms=5000",
                              "-X", f"metrics.listen=127.0.0.1:{port}", *FAST_GROUP], stdout=subprocess.DEVNULL,
                             stderr=open(wd("worker.log"), "w"))
        try:
            behind, caught_at, deadline = 0, None, time.time() + 120
            while time.time() < deadline:
                m = scrape(port)
                applied = m.get("ievo_events_applied_total", 0)
                if m.get("ievo_partitions_assigned", 0) == 4 and applied < EVENTS:
                    behind = max(behind, lag(m) + applied)   # lag + applied = the backlog seen
                if applied >= EVENTS:
                    caught_at = caught_at or time.time()
                    if lag(m) == 0:
                        break
                    assert time.time() - caught_at < 1.0, \
                        f"every event applied, but ievo_consumer_lag is {lag(m)} {time.time() - caught_at:.1f} s later"
                time.sleep(0.05)
            assert caught_at, "the worker did not apply the backlog"
            assert behind >= EVENTS * 0.9, f"while behind, lag + applied was at most {behind} of {EVENTS}"
            zero_after = time.time() - caught_at
            idle = []
            for _ in range(20):   # idle: 5 s with nothing to read
                time.sleep(0.25)
                idle.append(lag(scrape(port)))
            assert set(idle) == {0}, f"idle lag {idle}"
        finally:
            p.terminate()
            p.wait(30)
    log(f"[lag] behind: lag + applied reached {behind:.0f} of {EVENTS}; caught up: 0 within {zero_after:.2f} s of "
        f"the last event applied; idle: 0 for 5 s")
    wd.cleanup()


if __name__ == "__main__":
    main()
