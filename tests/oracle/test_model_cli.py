#!/usr/bin/python3
"""test_model_cli: `ievo model init` / `ievo model info` as a user runs them.

The files it writes are read back with the Python safetensors reader of test_model_oracle (json +
numpy + CRC-32C, independent of the C loader) and compared with what `model info` reports; the
same seed must give the same bytes; usage errors exit 2, failures exit 1, with a message.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_model_oracle import read_safetensors  # noqa: E402

BIN = os.environ.get("IEVO_BIN", "ievo")
SHARED = os.environ.get("IEVO_SHARED", "")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def ievo(*args):
    return subprocess.run([BIN, "model", *args], capture_output=True, text=True)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        vocab = os.path.join(tmp, "items.txt")
        with open(vocab, "w") as f:
            f.write("apple\r\nbanana\n\ncherry\nd\u00e9j\u00e0-vu\n")
        p1, p2, p3 = (os.path.join(tmp, n) for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
        base = ["init", "--vocab-file", vocab, "--cell", "gru", "--item-dim", "8", "--action-dim", "4",
                "--hidden", "6", "--attn-dim", "5", "--out-dim", "3", "--window", "4", "--name", "cli-test"]
        r = ievo(*base, "--out", p1, "--init-seed", "5")
        check(r.returncode == 0, "init failed: %s" % r.stderr)
        r = ievo(*base, "--out=" + p2, "--init-seed=5")
        check(r.returncode == 0, "init with --flag=value failed: %s" % r.stderr)
        r = ievo(*base, "--out", p3, "--init-seed", "6", "--actions", "view,buy")
        check(r.returncode == 0, "init 3 failed: %s" % r.stderr)
        check(open(p1, "rb").read() == open(p2, "rb").read(), "same seed, different files")
        meta, t = read_safetensors(p1)
        meta3, t3 = read_safetensors(p3)
        check(not (t["rnn.w_ih"] == t3["rnn.w_ih"]).all(), "different seeds, same weights")
        check(t["vocab.items"].decode() == "<oov>\napple\nbanana\ncherry\nd\u00e9j\u00e0-vu", "items %r" % t["vocab.items"])
        check(t["vocab.actions"].decode().split("\n") ==
              ["<oov>", "rate", "view", "click", "like", "share", "purchase", "search", "review"], "default actions")
        check(t3["vocab.actions"].decode() == "<oov>\nview\nbuy", "--actions")
        check(t["rnn.w_ih"].shape == (18, 15) and t["out.w"].shape == (3, 11), "shapes for GRU E8 A4 H6 K5 D3")
        r = ievo("info", p1)
        check(r.returncode == 0, "info failed: %s" % r.stderr)
        info = json.loads(r.stdout)
        n_params = sum(a.size for k, a in t.items() if not k.startswith("vocab."))
        check(info["model_id"] == meta["model_id"] == "cli-test-" + meta["fingerprint"][:12], "model_id")
        check(info["name"] == "cli-test" and info["fingerprint"] == meta["fingerprint"], "name/fingerprint")
        check(info["config"] == {"cell": "gru", "item_dim": 8, "action_dim": 4, "hidden": 6, "attn_dim": 5, "out_dim": 3,
                                 "window": 4, "input_dim": 15}, "config %s" % info["config"])
        check(info["vocab"]["items"] == 5 and info["vocab"]["actions"] == 9, "vocab sizes %s" % info["vocab"])
        check(info["params"] == n_params, "param count %d vs %d" % (info["params"], n_params))
        # state layout version 2 (model.h): 36-byte header, f32 h, fp16 u, 16-byte window slots
        check(info["state_bytes"] == 36 + 4 * 6 + 2 * 3 + 16 * 4, "state bytes %d" % info["state_bytes"])
        check(info["meta"]["seed"] == 5 and info["meta"]["created_by"] == "ievo model init", "meta %s" % info["meta"])
        check([x["name"] for x in info["tensors"]][:3] == ["item_emb", "action_emb", "rnn.w_ih"], "tensor list")
        # the other families: an LRU stack under transformer blocks, and the blocks alone
        p6, p7 = os.path.join(tmp, "lru.safetensors"), os.path.join(tmp, "tf.safetensors")
        fam = ["init", "--vocab-file", vocab, "--item-dim", "8", "--action-dim", "4", "--hidden", "6", "--out-dim", "3",
               "--window", "4"]
        r = ievo(*fam, "--out", p6, "--cell", "lru", "--layers", "3", "--state-dim", "5", "--ffn-dim", "7",
                 "--attention", "tf", "--blocks", "2", "--heads", "3")
        check(r.returncode == 0, "lru+tf init: %s" % r.stderr)
        info = json.loads(ievo("info", p6).stdout)
        meta6, t6 = read_safetensors(p6)
        check(info["family"] == "lru3+tf2" and info["config"]["layers"] == 3 and info["config"]["state_dim"] == 5 and
              info["config"]["ffn_dim"] == 7 and info["config"]["blocks"] == 2 and info["config"]["heads"] == 3,
              "lru+tf info %s" % info)
        check(meta6["cell"] == "lru" and meta6["attention"] == "tf" and "rnn.w_ih" not in t6 and "attn.w_q" not in t6 and
              t6["lru.b.w"].shape == (30, 6) and t6["tf.qkv.w"].shape == (36, 6) and t6["out.w"].shape == (3, 6),
              "lru+tf tensors %s" % sorted(t6))
        # h, every layer's complex state, fp16 u, the window, then the blocks' keys and values
        check(info["state_bytes"] == 36 + 4 * (6 + 2 * 5 * 3) + 2 * 3 + 16 * 4 + 4 * 2 * 4 * 2 * 6,
              "lru+tf state bytes %d" % info["state_bytes"])
        r = ievo(*fam, "--out", p7, "--cell", "none", "--attention", "tf")
        check(r.returncode == 0 and json.loads(ievo("info", p7).stdout)["family"] == "none+tf2", "none+tf: %s" % r.stderr)
        r = ievo(*fam, "--out", p7, "--cell", "gru", "--attention", "tf", "--heads", "4")
        check(r.returncode == 2 and "heads dividing hidden" in r.stderr, "4 heads of 6: %r" % r.stderr)
        ml = os.path.join(SHARED, "data", "ml-100k")
        if os.path.exists(os.path.join(ml, "u.item")):
            p4 = os.path.join(tmp, "ml.safetensors")
            r = ievo("init", "--out", p4, "--vocab-movielens", ml)
            check(r.returncode == 0, "movielens init: %s" % r.stderr)
            if r.returncode == 0:
                _, t4 = read_safetensors(p4)
                ids = t4["vocab.items"].decode().split("\n")
                check(len(ids) == 1683 and ids[1] == "1" and ids[-1] == "1682", "movielens ids %s..%s" % (ids[:2], ids[-1]))
        p5 = os.path.join(tmp, "syn.safetensors")
        r = ievo("init", "--out", p5, "--vocab-synthetic")
        check(r.returncode == 0 and os.path.exists(p5), "synthetic init: %s" % r.stderr)
        # Usage errors exit 2, failures exit 1, both say why.
        for args, code, words in [
            (["init", "--vocab-file", vocab], 2, "--out"),
            (["init", "--out", p5, "--vocab-file", vocab, "--vocab-synthetic"], 2, "exactly one"),
            (["init", "--out", p5, "--vocab-file", vocab, "--hidden", "x"], 2, "hidden"),
            (["init", "--out", p5, "--vocab-file", vocab, "--window", "0"], 2, "window"),
            (["init", "--out", p5, "--vocab-file", vocab, "--cell", "rnn"], 2, "lstm"),
            (["init", "--out", p5, "--vocab-file", vocab, "--frobnicate", "1"], 2, "unknown option"),
            (["init", "--out", p5, "--vocab-file", vocab, "--init-seed"], 2, "needs a value"),
            (["init", "--out", p5, "--vocab-file", vocab, "--actions", "a,,b"], 2, "empty id"),
            (["init", "--out", p5, "--vocab-file", os.path.join(tmp, "nope.txt")], 1, "No such file"),
            (["init", "--out", os.path.join(tmp, "no", "dir.st"), "--vocab-file", vocab], 1, "cannot create"),
            (["init", "--out", p5, "--vocab-file", vocab, "--name", "has space"], 1, "name"),
            (["info"], 2, "usage"),
            (["info", vocab], 1, "not a safetensors"),
            (["frob"], 2, "unknown subcommand"),
        ]:
            r = ievo(*args)
            check(r.returncode == code and words in r.stderr,
                  "%s: exit %d (want %d), stderr %r" % (" ".join(args), r.returncode, code, r.stderr))
        dup = os.path.join(tmp, "dup.txt")
        open(dup, "w").write("a\nb\na\n")
        r = ievo("init", "--out", p5, "--vocab-file", dup)
        check(r.returncode == 1 and "appears twice" in r.stderr, "duplicate ids: %r" % r.stderr)
        r = ievo("init", "--help")
        check(r.returncode == 0 and "--vocab-movielens" in r.stdout, "init --help")
        r = ievo("info", "--help")
        check(r.returncode == 0 and "usage" in r.stdout, "info --help")
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
