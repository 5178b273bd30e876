"""Train/serve parity: the vectors the worker publishes are the trainer's own forward, for every
family (the GRU with the window attention; the LRU stack; transformer blocks on the GRU and alone,
whose keys and values the worker caches in the state).

`ievo train` (ML-100K when present, else the synthetic generator) trains one epoch and writes,
with --dump-forward, its batched sequence forward (oneDNN RNN over whole sequences, batched
attention) at every position of every user. Then, over TCP: `ievo broker`, `ievo produce` of
the same events, `ievo worker --until-eof` with the trained model (model_step, one event at a
time per user, state in RocksDB). Every published InterestVector must equal the trainer's vector
at the same (user_id, events) within 1e-4, and there must be exactly one per event; so must every
vector of `ievo reference` (the scalar backend replaying the same events offline). The model
file must carry the training config and the validation metrics in its header.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, Broker, Workdir, consume_vectors, data_args, ievo, json_lines, load_reference,  # noqa: E402
                     log, check_parity)

TOL = 1e-4


def run(family, produce_args, name):
    wd = Workdir("train-parity")
    model, dump = wd("model.safetensors"), wd("forward.jsonl")
    r = ievo("train", *produce_args, *family, "--out", model, "--epochs", "1", "--dump-forward", dump, timeout=900)
    log("[parity] " + r.stderr.decode(errors="replace").strip().splitlines()[-2])
    info = json.loads(ievo("model", "info", model).stdout)
    meta = info["meta"]
    assert meta["created_by"] == "ievo train" and meta["train"]["epochs"] == 1, meta
    assert {"hr10", "ndcg10", "hr20", "ndcg20", "epoch", "users"} <= set(meta["validation"]), meta["validation"]
    assert meta["validation"]["users"] > 0 and 0 <= meta["validation"]["ndcg10"] <= 1

    trainer = {}
    for x in json_lines(open(dump, "rb").read()):
        trainer[(x["user_id"], x["events"])] = x["vector"]
    log(f"[parity] data {name}, {info['family']}: the trainer's forward at {len(trainer)} positions")

    topics = ["user-actions", "state-changelog", "interest-vectors:32", "user-actions.dlq:2"]
    with Broker(topics, partitions=8, workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", *produce_args, timeout=600)
        ievo("worker", "-b", b.bootstrap, "-X", "group.id=parity", "-X", f"state.dir={wd('state')}",
             "-X", f"model.path={model}", "-X", "changelog.topic=state-changelog", *FAST_GROUP, "--until-eof",
             timeout=900)
        outputs = consume_vectors(b.bootstrap)
    worst = check_parity(outputs, trainer, TOL, info["model_id"])
    log(f"[parity] {info['family']}: {len(outputs)} published vectors equal the trainer's forward: max |diff| {worst:.2e}")
    ref = load_reference(model, produce_args)
    worst = check_parity(list(ref.values()), trainer, TOL)
    log(f"[parity] {info['family']}: `ievo reference` (the scalar backend, offline) too: max |diff| {worst:.2e}")
    wd.cleanup()


def main():
    produce_args, _, name = data_args()
    for family in (["--cell", "gru"], ["--cell", "lru"], ["--cell", "gru", "--attention", "tf"],
                   ["--cell", "none", "--attention", "tf"]):
        run(family, produce_args, name)


if __name__ == "__main__":
    main()
