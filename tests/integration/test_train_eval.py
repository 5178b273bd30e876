"""`ievo eval`: the leave-one-out protocol, through the streaming path.

1. ML-100K (when present): the popularity baseline of the test split must come out at exactly
   HR@10 0.0859 and NDCG@10 0.0449 (docs/training.md: the definition that reproduces the
   published protocol numbers), and HR@20 / NDCG@20 at their documented values too.
2. A model trained briefly: the validation metrics `ievo eval` computes through model_step (one
   event at a time, waves of users) equal the ones the trainer computed with its batched forward
   and wrote into the model file, up to one user's worth of rank flips from float rounding.
   Without ML-100K the synthetic generator stands in for step 2.
3. --evolution on the synthetic generator: the report is there and the model's top predicted
   topic follows a switch of interest far more often than the static profile does.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ML100K, Workdir, have_movielens, ievo, log  # noqa: E402


def main():
    wd = Workdir("train-eval")
    if have_movielens():
        data = ["--movielens", ML100K]
    else:
        data = ["--synthetic", "300:20000"]
        log("[eval] ML-100K not present: synthetic data, no popularity reference numbers")
    model = wd("model.safetensors")
    ievo("train", *data, "--out", model, "--epochs", "2", timeout=900)
    meta = json.loads(ievo("model", "info", model).stdout)["meta"]
    r = ievo("eval", "--model", model, *data, "--json", wd("eval.json"))
    log("[eval] " + r.stdout.decode().strip().replace("\n", "\n[eval] "))
    ev = json.load(open(wd("eval.json")))
    pop = ev["test"]["popularity"]
    if have_movielens():
        got = (round(pop["hr10"], 4), round(pop["ndcg10"], 4), round(pop["hr20"], 4), round(pop["ndcg20"], 4))
        assert got == (0.0859, 0.0449, 0.1262, 0.0550), got
        assert pop["users"] == 943 and ev["data"]["events"] == 100000
    val, users = ev["validation"]["model"], ev["validation"]["model"]["users"]
    for k in ("hr10", "ndcg10", "hr20", "ndcg20"):
        assert abs(val[k] - meta["validation"][k]) <= 2.0 / users, (k, val[k], meta["validation"][k])
    log(f"[eval] streaming validation NDCG@10 {val['ndcg10']:.4f} = the trainer's {meta['validation']['ndcg10']:.4f}")

    syn = ["--synthetic", "400:20000"]
    ievo("train", *syn, "--out", wd("syn.safetensors"), "--epochs", "15", "--mask-seen", "0", timeout=900)
    ievo("eval", "--model", wd("syn.safetensors"), *syn, "--evolution", "--json", wd("syn.json"))
    evo = json.load(open(wd("syn.json")))["evolution"]
    log(f"[eval] evolution: {evo['switches']} switches; after {evo['follow']} events the model follows "
        f"{evo['model_hit'][-1]:.2f}, the static profile {evo['static_hit'][-1]:.2f}")
    assert evo["switches"] > 50 and len(evo["model_hit"]) == evo["follow"] == 10
    assert sum(evo["model_first_hit_hist"]) == evo["switches"] == sum(evo["static_first_hit_hist"])
    assert evo["model_hit"][-1] > evo["static_hit"][-1] + 0.2, evo
    wd.cleanup()


if __name__ == "__main__":
    main()
