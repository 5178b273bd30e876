"""A text model in the live worker, over TCP, against the offline reference (docs/text.md).

1. `ievo train --text` on ML-100K's first users (a synthetic catalogue without ML-100K): item
   texts from the catalogue, 20 % of the events with a text of their own.
2. The catalogue goes to the items topic with `ievo produce --catalogue` (MovieLens: --movielens, the
   loader's title + genres; plus, as JSON lines, new items outside the model's vocabulary whose
   text is a known item's with a suffix, and one item X whose text will change); the events go to
   user-actions, with events of the new items appended. `ievo worker --until-eof` runs: it must
   catch up with the catalogue before applying any event.
3. Phase 2: X's text changes (and five unchanged records are sent again); events of X follow.
   The worker restarts on the same state dir: it loads the item vectors from RocksDB, re-encodes
   X only (the unchanged records are recognised by their text hash) and applies the new events.
4. Every published vector (both phases, deduplicated on source partition/offset) equals
   `ievo reference` (scalar model) fed all events with the final catalogue, to 1e-4; and the
   final states in RocksDB (`ievo state dump`, which recomputes u_t from the stored window with
   the stored item vectors) equal the reference's last vectors.
5. The checks can fail: the reference with X's old text must differ at X's events, the
   reference without the new items' texts must differ at theirs (so the worker really used both).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, ML100K, Broker, Workdir, consume_vectors, have_movielens, ievo, json_lines, log,  # noqa: E402
                     max_abs_diff)
from text_data import base_events, catalogue, ensure_encoder, write_jsonl  # noqa: E402

TOL = 1e-4


def reference(model, events_path, items_path):
    r = ievo("reference", "-m", model, "--jsonl", events_path, "--items", items_path, timeout=600)
    return {(x["user_id"], x["events"]): x for x in json_lines(r.stdout)}


def worker(b, wd, model, tag):
    r = ievo("worker", "-b", b.bootstrap, "-X", "group.id=text", "-X", f"state.dir={wd('state')}",
             "-X", f"model.path={model}", "-X", "changelog.topic=state-changelog", *FAST_GROUP, "--until-eof",
             timeout=600)
    text = r.stderr.decode(errors="replace")
    open(wd(f"worker-{tag}.log"), "w").write(text)
    return text


def main():
    ensure_encoder("text")
    wd = Workdir("text")
    items, source = catalogue()
    ids = list(items)
    train = base_events(items)
    users = sorted({e["user_id"] for e in train})
    last_ts = max(e["ts"] for e in train)
    # new items (not in the vocabulary: the model is trained without them) and the item X
    new = {"new-%d" % k: items[ids[7 * k]] + " (director's cut)" for k in range(12)}
    x_id, x_v1, x_v2 = "new-x", items[ids[3]], items[ids[-5]]
    extras_v1 = [{"item_id": i, "text": t} for i, t in new.items()] + [{"item_id": x_id, "text": x_v1}]
    phase1 = list(train)
    for k, u in enumerate(users[:15]):
        for j in range(3):
            e = {"user_id": u, "item_id": "new-%d" % ((k + j) % 12), "action": "rate", "ts": last_ts + 1000 * (3 * k + j + 1),
                 "value": 4.0}
            if j == 1:
                e["text"] = "a new release"
            phase1.append(e)
    phase2 = []
    for k, u in enumerate(users[:10]):
        phase2.append({"user_id": u, "item_id": x_id, "action": "rate", "ts": last_ts + 10_000_000 + 1000 * k, "value": 5.0})
        phase2.append({"user_id": u, "item_id": ids[k], "action": "rate", "ts": last_ts + 10_000_500 + 1000 * k, "value": 3.0})
    catalogue_v1 = [{"item_id": i, "text": t} for i, t in items.items()] + extras_v1
    catalogue_v2 = catalogue_v1[:-1] + [{"item_id": x_id, "text": x_v2}]
    write_jsonl(wd("train.jsonl"), train)
    write_jsonl(wd("phase1.jsonl"), phase1)
    write_jsonl(wd("phase2.jsonl"), phase2)
    write_jsonl(wd("all.jsonl"), phase1 + phase2)
    write_jsonl(wd("items-v1.jsonl"), catalogue_v1)
    write_jsonl(wd("items-v2.jsonl"), catalogue_v2)
    write_jsonl(wd("items-nonew.jsonl"), [{"item_id": i, "text": t} for i, t in items.items()] + [{"item_id": x_id, "text": x_v2}])
    write_jsonl(wd("extras-v1.jsonl"), extras_v1)
    resend = [{"item_id": i, "text": items[i]} for i in ids[:5]]
    write_jsonl(wd("phase2-items.jsonl"), resend + [{"item_id": x_id, "text": x_v2}])
    log(f"[text] {source}: {len(items)} catalogue items + {len(new)} new + X; {len(train)} training events "
        f"({sum('text' in e for e in train)} with a text), {len(phase1) - len(train)} events of new items, {len(phase2)} in phase 2")

    model = wd("model.safetensors")
    r = ievo("train", "--jsonl", wd("train.jsonl"), "--items", wd("items-v1.jsonl"), "--text", "--epochs", "2",
             "--out", model, timeout=600)
    log("[text] " + [l for l in r.stderr.decode().splitlines() if "text:" in l][0])
    info = json.loads(ievo("model", "info", model).stdout)
    assert info["meta"]["text"]["event_texts"] > 0 and info["meta"]["text"]["vocab_items_with_text"] > 0, info["meta"]["text"]

    topics = ["user-actions:4", "items:2", "state-changelog:4", "interest-vectors:8", "user-actions.dlq:2"]
    with Broker(topics, workdir=wd.path) as b:
        if have_movielens():
            ievo("produce", "-b", b.bootstrap, "-t", "items", "--catalogue", "--movielens", ML100K)
            ievo("produce", "-b", b.bootstrap, "-t", "items", "--catalogue", "--items", wd("extras-v1.jsonl"))
        else:
            ievo("produce", "-b", b.bootstrap, "-t", "items", "--catalogue", "--items", wd("items-v1.jsonl"))
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", wd("phase1.jsonl"))
        log1 = worker(b, wd, model, "1")
        n_cat = len(catalogue_v1)
        m = re.search(r"caught up with items in [\d.]+ s: (\d+) records, (\d+) items, (\d+) encoded", log1)
        assert m and int(m.group(2)) == n_cat and int(m.group(3)) == n_cat, m and m.group(0)
        assert log1.index("caught up with items") < log1.index("assigned"), "events must wait for the catalogue"
        # phase 2: X's text changes, five records come again unchanged
        ievo("produce", "-b", b.bootstrap, "-t", "items", "--catalogue", "--items", wd("phase2-items.jsonl"))
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", wd("phase2.jsonl"))
        log2 = worker(b, wd, model, "2")
        assert f"{n_cat} item vectors loaded from the state store" in log2, "the table must come back from RocksDB"
        m = re.search(r"caught up with items in [\d.]+ s: (\d+) records, (\d+) items, (\d+) encoded", log2)
        assert m and int(m.group(1)) == 6 and int(m.group(3)) == 1, m and m.group(0)
        assert re.search(r"1 encoded in [\d.]+ s, 5 unchanged", log2), "only the changed text is re-encoded"
        outputs = consume_vectors(b.bootstrap)
    log("[text] worker logs: " + "; ".join(l.split("items: ")[1] for l in (log1 + log2).splitlines() if "items: text:" in l))

    ref = reference(model, wd("all.jsonl"), wd("items-v2.jsonl"))
    ref_old = reference(model, wd("all.jsonl"), wd("items-v1.jsonl"))      # X's old text
    ref_nonew = reference(model, wd("all.jsonl"), wd("items-nonew.jsonl"))  # no texts for the new items
    by_pair = {(o["source_partition"], o["source_offset"]): o for o in outputs}
    assert len(by_pair) == len(phase1) + len(phase2) == len(ref), (len(by_pair), len(phase1) + len(phase2), len(ref))
    # which (user, events) are events of X / of the new items
    n_of, x_keys, new_keys = {}, set(), set()
    for e in sorted(phase1 + phase2, key=lambda e: e["ts"]):
        n_of[e["user_id"]] = n_of.get(e["user_id"], 0) + 1
        if e["item_id"] == x_id:
            x_keys.add((e["user_id"], n_of[e["user_id"]]))
        if e["item_id"] in new:
            new_keys.add((e["user_id"], n_of[e["user_id"]]))
    worst, d_old, d_nonew = 0.0, 0.0, 0.0
    for o in by_pair.values():
        k = (o["user_id"], o["events"])
        d = max(max_abs_diff(o["vector"], ref[k]["vector"]), abs(o["drift"] - ref[k]["drift"]))
        worst = max(worst, d)
        assert d <= TOL, f"{k}: worker and reference differ by {d}"
        if k in x_keys:
            d_old = max(d_old, max_abs_diff(o["vector"], ref_old[k]["vector"]))
        if k in new_keys:
            d_nonew = max(d_nonew, max_abs_diff(o["vector"], ref_nonew[k]["vector"]))
    log(f"[text] {len(by_pair)} vectors equal the reference: max |diff| {worst:.2e}; at X's {len(x_keys)} events the "
        f"old text is {d_old:.2e} away, at the new items' {len(new_keys)} events no text is {d_nonew:.2e} away")
    assert d_old > 10 * TOL, "X's new text made no difference: the test cannot see a stale vector"
    assert d_nonew > 10 * TOL, "the new items' texts made no difference"

    states = json_lines(ievo("state", "dump", "-d", wd("state"), "-m", model).stdout)
    last = {}
    for (u, e), x in ref.items():
        if e > last.get(u, (0, None))[0]:
            last[u] = (e, x)
    assert len(states) == len(last)
    sworst = max(max_abs_diff(s["vector"], last[s["user_id"]][1]["vector"]) for s in states)
    assert all(s["events"] == last[s["user_id"]][0] for s in states) and sworst <= TOL, sworst
    log(f"[text] {len(states)} final states (u_t recomputed from the stored window and item vectors) equal the "
        f"reference: max |diff| {sworst:.2e}")
    wd.cleanup()


if __name__ == "__main__":
    main()
