"""`ievo train --topic`: history read from a Kafka topic, from the beginning up to the end offsets
seen at start.

The same JSON-lines history is given to `ievo train` twice: as a file (--jsonl) and through the
broker (produced to an 8-partition topic, then --topic). Both runs must read the same events,
users, items and actions, and, since every user's events keep their order and the vocabulary is
built in order of first appearance in time, train the same model: the same validation metrics
and the same interest vector at every position (the trainer's --dump-forward).
"""
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, Workdir, ievo, json_lines, log  # noqa: E402


def summary(stderr):
    m = re.search(r"ievo train: (\d+) events, (\d+) users, (\d+) items \+ <oov> \((\d+) events with an unknown item\), "
                  r"(\d+) actions", stderr)
    assert m, stderr[-2000:]
    return tuple(int(x) for x in m.groups())


def main():
    wd = Workdir("train-topic")
    rng = random.Random(5)
    # Distinct timestamps across the whole history, so "time order" is one order however the
    # partitions interleave.
    lines, ts = [], 1_700_000_000_000
    for _ in range(3000):
        ts += rng.randint(1, 5000)
        u = "user%03d" % rng.randint(0, 59)
        e = {"user_id": u, "item_id": "item%03d" % int(rng.paretovariate(1.2) * 7 % 300), "action": rng.choice(["view", "buy"]),
             "ts": ts, "value": round(rng.uniform(1, 5), 1) if rng.random() < 0.5 else None}
        lines.append(json.dumps(e))
    path = wd("history.jsonl")
    open(path, "w").write("\n".join(lines) + "\n")
    common = ["--epochs", "2", "--hidden", "16", "--item-dim", "16", "--out-dim", "16", "--attn-dim", "8",
              "--batch", "8", "--seed", "3"]
    a = ievo("train", "--jsonl", path, "--out", wd("a.safetensors"), "--dump-forward", wd("a.jsonl"), *common)
    with Broker(["actions"], partitions=8, workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "actions", "--jsonl", path)
        t = ievo("train", "--topic", "actions", "-b", b.bootstrap, "--out", wd("t.safetensors"),
                 "--dump-forward", wd("t.jsonl"), *common)
    sa, st = summary(a.stderr.decode()), summary(t.stderr.decode())
    log(f"[train-topic] --jsonl read {sa}, --topic read {st}")
    assert sa == st and sa[0] == 3000, (sa, st)
    ma = json.loads(ievo("model", "info", wd("a.safetensors")).stdout)["meta"]
    mt = json.loads(ievo("model", "info", wd("t.safetensors")).stdout)["meta"]
    assert ma["validation"] == mt["validation"], (ma["validation"], mt["validation"])
    assert mt["data"]["source"] == "topic" and ma["data"]["source"] == "jsonl"
    va = {(x["user_id"], x["events"]): x["vector"] for x in json_lines(open(wd("a.jsonl"), "rb").read())}
    vt = {(x["user_id"], x["events"]): x["vector"] for x in json_lines(open(wd("t.jsonl"), "rb").read())}
    assert va.keys() == vt.keys() and len(va) == 3000
    worst = max(max(abs(x - y) for x, y in zip(va[k], vt[k])) for k in va)
    log(f"[train-topic] same model either way: validation {mt['validation']['ndcg10']:.4f}, max |diff| {worst:.1e}")
    assert worst == 0.0, worst
    wd.cleanup()


if __name__ == "__main__":
    main()
