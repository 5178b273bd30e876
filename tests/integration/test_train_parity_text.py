"""Train/serve parity with text (docs/text.md): what `ievo train --text` learned is what the worker
serves.

`ievo train --text` (ML-100K's first users, or the synthetic catalogue) trains one epoch with item
texts from a catalogue and 20 % of the events carrying a text of their own, and dumps its batched
forward at every position (--dump-forward). Over TCP: the catalogue to the items topic (`ievo
produce --catalogue`), the same events to user-actions, `ievo worker --until-eof` with the trained
model (model_step, item texts looked up by item key in the table the worker built from the topic,
event texts encoded per step). Every published vector must equal the trainer's at the same (user,
events) within 1e-4, exactly one per event. The model's metadata must say how the texts were
encoded (once, then from the cache).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, Broker, Workdir, consume_vectors, ievo, json_lines, log, check_parity  # noqa: E402
from text_data import base_events, catalogue, ensure_encoder, write_jsonl  # noqa: E402

TOL = 1e-4


def main():
    ensure_encoder("parity-text")
    wd = Workdir("parity-text")
    items, source = catalogue()
    events = base_events(items, users=60, seed=5)
    write_jsonl(wd("events.jsonl"), events)
    write_jsonl(wd("items.jsonl"), [{"item_id": i, "text": t} for i, t in items.items()])
    model, dump = wd("model.safetensors"), wd("forward.jsonl")
    args = ["--jsonl", wd("events.jsonl"), "--items", wd("items.jsonl"), "--text", "--out", model, "--epochs", "1",
            "--dump-forward", dump]
    ievo("train", *args, timeout=600)
    r = ievo("train", *args, timeout=600)  # again: the texts come from the cache this time
    meta = json.loads(ievo("model", "info", model).stdout)["meta"]
    t = meta["text"]
    log(f"[parity-text] {source}: {len(events)} events, {t['event_texts']} with a text, {t['vocab_items_with_text']} "
        f"vocabulary items with a catalogue text; second run: {t['encoded']} encoded, {t['from_cache']} from the cache")
    assert t["encoder"] == "use-lite" and t["dim"] == 512 and t["encoded"] == 0 and t["from_cache"] == len(items) + t["event_texts"], t
    trainer = {(x["user_id"], x["events"]): x["vector"] for x in json_lines(open(dump, "rb").read())}
    assert len(trainer) == len(events)

    topics = ["user-actions:4", "items:3", "state-changelog:4", "interest-vectors:8", "user-actions.dlq:2"]
    with Broker(topics, workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "items", "--catalogue", "--items", wd("items.jsonl"))
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", wd("events.jsonl"))
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=parity-text", "-X", f"state.dir={wd('state')}",
             "-X", f"model.path={model}", "-X", "changelog.topic=state-changelog", *FAST_GROUP, "--until-eof",
             timeout=600)
        outputs = consume_vectors(b.bootstrap)
    worst = check_parity(outputs, trainer, TOL)
    log(f"[parity-text] {len(outputs)} published vectors equal the trainer's forward: max |diff| {worst:.2e}")
    wd.cleanup()


if __name__ == "__main__":
    main()
