"""output.top.k: with a trained model, each InterestVector carries the K best-scoring items that
are not in the user's state window. Checked against an independent computation in numpy from
the model file's tensors (score.item_emb, score.item_bias) and the published vector.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, Broker, Workdir, consume_vectors, ievo, log

K = 5


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "F32":
            out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
        elif t["dtype"] == "U8":
            out[name] = data[a:b].decode()
    return header["__metadata__"], out


def main():
    wd = Workdir("topk")
    model = wd("model.safetensors")
    rnd = np.random.default_rng(5)
    events = [{"user_id": f"u{rnd.integers(100):03d}", "item_id": f"t{rnd.integers(10):02d}-i{rnd.integers(40):03d}",
               "action": "view", "ts": 1_700_000_000_000 + 1000 * k, "value": None} for k in range(6000)]
    with open(wd("events.jsonl"), "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)
    data = ["--jsonl", wd("events.jsonl")]
    ievo("train", "--out", model, *data, "--epochs", "2", "--window", "8", timeout=600)
    meta, t = read_safetensors(model)
    items = t["vocab.items"].split("\n")
    emb = t.get("score.item_emb", t["item_emb"])
    bias = t["score.item_bias"]
    W = 8
    with Broker(["user-actions:4", "state-changelog:4", "interest-vectors:8"], workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", *data)
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=topk", "-X", f"model.path={model}",
             "-X", f"state.dir={wd('state')}", "-X", "changelog.topic=state-changelog", "-X", f"output.top.k={K}",
             *FAST_GROUP, "--until-eof")
        outs = consume_vectors(b.bootstrap)
    assert len(outs) == len(events)
    per_user = {}
    for e in events:   # already in event-time order
        per_user.setdefault(e["user_id"], []).append(e["item_id"])
    for o in outs:
        top = o["top_items"]
        assert top is not None and len(top) == K, o
        scores = [x["score"] for x in top]
        assert scores == sorted(scores, reverse=True), "top items not in descending score"
        # The independent ranking: every item's score from the file's tensors, the user's last W
        # items (the window, the current event included) excluded, the K best.
        window = set(per_user[o["user_id"]][max(0, o["events"] - W):o["events"]])
        s = emb @ np.array(o["vector"], dtype=np.float32) + bias
        ranked = [i for i in np.argsort(-s, kind="stable") if i > 0 and items[i] not in window][:K]
        want = [items[i] for i in ranked]
        got = [x["item_id"] for x in top]
        assert got == want or np.allclose(sorted(s[ranked]), sorted(scores), atol=1e-4), (got, want)
        assert not set(got) & window, "a window item was recommended"
        for x in top:
            assert abs(float(s[items.index(x["item_id"])]) - x["score"]) < 1e-3
    log(f"[topk] {len(outs)} outputs carry {K} items each, equal to numpy's ranking of the model's scores "
        f"with the window's items excluded")
    wd.cleanup()


if __name__ == "__main__":
    main()
