"""A memory budget holds with records near the largest the worker accepts (issue: memory is
bounded by counts, not bytes).

About 300 MB of UserAction records with 60 KiB texts (the codec accepts up to 64 KiB) wait in the
input topic; a model slow enough that the worker falls far behind its fetches (the scalar
backend, hidden size 1024) reads them with memory.limit.bytes=256 MiB. Its peak resident set
stays under the budget, and every record is applied: nothing is lost by the bounds. (Without
budgets, the read-ahead alone could hold 65,536 such records: 4 GiB.)
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, IEVO, Broker, Workdir, ievo, log

BUDGET = 256 << 20
RECORDS, TEXT = 5000, 60000


def main():
    wd = Workdir("memory")
    model = wd("model.safetensors")
    ievo("model", "init", "-o", model, "--vocab-synthetic", "--init-seed", "7", "--hidden", "1024")
    # 128 partitions keep each under the local broker's ~5 MiB per partition
    with Broker(["user-actions:128", "interest-vectors:16", "user-actions.dlq:1"], partitions=128,
                workdir=wd.path) as b:
        with open(wd("big.jsonl"), "w") as f:
            for i in range(RECORDS):
                f.write(json.dumps({"user_id": f"u{i % 500}", "item_id": f"t{i % 20:02d}-i{i % 50:03d}",
                                    "action": "view", "ts": 1_700_000_000_000 + i * 1000, "value": None,
                                    "text": chr(97 + i % 26) * TEXT}) + "\n")
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", wd("big.jsonl"), timeout=600)
        offsets = subprocess.run(["kcat", "-C", "-b", b.bootstrap, "-t", "user-actions", "-e", "-q", "-f", "%o\n",
                                  "-X", "fetch.message.max.bytes=33554432"], stdout=subprocess.PIPE, check=True,
                                 timeout=300).stdout.split()
        held = len(offsets)   # what the local broker kept of them
        assert held > RECORDS * 0.9, f"the local broker kept {held} of {RECORDS} records"
        r = subprocess.run([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=memory", "-m", model,
                            "-X", f"state.dir={wd('state')}", "-X", "changelog.enable=false",
                            "-X", "model.backend=scalar", "-X", f"memory.limit.bytes={BUDGET}",
                            "-X", f"stats.file={wd('stats.json')}", *FAST_GROUP, "--until-eof"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
    st = json.load(open(wd("stats.json")))
    rss = st["max_rss_kb"] * 1024
    assert st["applied"] == held and st["dead_lettered"] == 0, f"applied {st['applied']} of {held} records"
    assert rss < BUDGET, f"peak resident set {rss / 2**20:.0f} MiB over the {BUDGET >> 20} MiB budget"
    log(f"[memory] {held} records of {TEXT // 1000} kB texts ({held * TEXT / 1e6:.0f} MB), budget {BUDGET >> 20} MiB: "
        f"peak RSS {rss / 2**20:.0f} MiB, all {st['applied']} applied in {st['wall_s']:.0f} s")
    wd.cleanup()


if __name__ == "__main__":
    main()
