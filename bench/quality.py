#!/usr/bin/env python3
"""The model families side by side on MovieLens-100K (docs/training.md's family table).

For each family and seed: `ievo train` (the default recipe, one thread per run, --jobs runs at a
time), `ievo eval` on the test split (leave-one-out, all items, seen items filtered), the
model file's own figures (best epoch, time to it, state bytes per user), and once per family
ievo_bench_model's serving cost (model_step, one core, batches of 256). Prints a markdown table
of the per-family mean and spread (min..max) over the seeds, and writes every run's figures as
JSON with --json.

    python3 bench/quality.py --build build --movielens /path/to/ml-100k --seeds 1,2,3 --jobs 2

Training times are only comparable between rows run under the same --jobs on the same machine:
two runs side by side share the memory bandwidth and the caches.
"""
import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import time

FAMILIES = {
    "gru": ["--cell", "gru"],
    "lstm": ["--cell", "lstm"],
    "lru2": ["--cell", "lru"],
    "gru+tf2": ["--cell", "gru", "--attention", "tf"],
    "none+tf2": ["--cell", "none", "--attention", "tf"],
}


def run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-3000:]))
    return r


def one(args, fam, seed):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ievo = os.path.join(args.build, "ievo")
    path = os.path.join(args.out, "%s-s%d.safetensors" % (fam, seed))
    t0 = time.time()
    if not (args.reuse and os.path.exists(path)):
        run([ievo, "train", "--movielens", args.movielens, "--out", path, "--seed", str(seed), "--threads", "1"]
            + FAMILIES[fam] + args.train_arg, env)
    wall = time.time() - t0
    ev_json = path + ".eval.json"
    run([ievo, "eval", "--model", path, "--movielens", args.movielens, "--threads", "1", "--json", ev_json], env)
    ev = json.load(open(ev_json))
    info = json.loads(run([ievo, "model", "info", path], env).stdout)
    meta = info.get("meta") or {}
    test = ev["test"]["model"]
    return {
        "family": fam, "seed": seed, "model": path, "state_bytes": info["state_bytes"], "params": info["params"],
        "hr10": test["hr10"], "ndcg10": test["ndcg10"], "mae": test.get("mae"), "rmse": test.get("rmse"),
        "best_epoch": meta.get("validation", {}).get("epoch"), "epochs_run": meta.get("epochs_run"),
        "time_to_best_s": meta.get("time_to_best_s"), "total_s": meta.get("total_s"), "wall_s": round(wall, 1),
    }


def serving_us(args, paths):
    """µs/event of model_step per model file, timed in one process (their ratio holds under load)."""
    cmd = [os.path.join(args.build, "ievo_bench_model")]
    for p in paths:
        cmd += ["-m", p]
    out = run(cmd, dict(os.environ, OMP_NUM_THREADS="1")).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["model"]: r for r in rows}


def fmt(xs, digits=4):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    m = statistics.mean(xs)
    if len(xs) == 1:
        return "%.*f" % (digits, m)
    return "%.*f (%.*f..%.*f)" % (digits, m, digits, min(xs), digits, max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--movielens", required=True)
    ap.add_argument("--families", default="gru,lru2,gru+tf2,none+tf2", help="of: " + ",".join(FAMILIES))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="quality-runs", help="where the model files go")
    ap.add_argument("--reuse", action="store_true", help="evaluate model files already in --out")
    ap.add_argument("--train-arg", action="append", default=[], help="one more argument for every ievo train")
    ap.add_argument("--json")
    args = ap.parse_args()
    fams = args.families.split(",")
    for f in fams:
        if f not in FAMILIES:
            sys.exit("unknown family %s (known: %s)" % (f, ", ".join(FAMILIES)))
    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.out, exist_ok=True)
    runs = []
    with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        # seed-major: with time for fewer runs, every family has its first seed
        futs = [ex.submit(one, args, f, s) for s in seeds for f in fams]
        for fu in cf.as_completed(futs):
            r = fu.result()
            runs.append(r)
            print("%-9s seed %d: test HR@10 %.4f NDCG@10 %.4f MAE %s RMSE %s, best epoch %s of %s, %s s to it"
                  % (r["family"], r["seed"], r["hr10"], r["ndcg10"], r["mae"], r["rmse"], r["best_epoch"],
                     r["epochs_run"], r["time_to_best_s"]), flush=True)
    cost = serving_us(args, [next(r["model"] for r in runs if r["family"] == f) for f in fams])
    print("\n| family | test HR@10 | test NDCG@10 | MAE | RMSE | s to best epoch (epoch) | serving µs/event | "
          "state B/user | parameters |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in fams:
        rs = [r for r in runs if r["family"] == f]
        c = cost[rs[0]["model"]] if rs[0]["model"] in cost else {}
        for r in rs:
            r["serving_us_per_event"] = c.get("us_per_event")
        print("| %s | %s | %s | %s | %s | %s (%s) | %s | %d | %d |" % (
            f, fmt([r["hr10"] for r in rs]), fmt([r["ndcg10"] for r in rs]), fmt([r["mae"] for r in rs], 3),
            fmt([r["rmse"] for r in rs], 3), fmt([r["time_to_best_s"] for r in rs], 0),
            ",".join(str(r["best_epoch"]) for r in sorted(rs, key=lambda r: r["seed"])),
            "%.2f" % c["us_per_event"] if "us_per_event" in c else "–", rs[0]["state_bytes"], rs[0]["params"]))
    print("\n%d seeds (%s), %d runs at a time, one thread each" % (len(seeds), args.seeds, args.jobs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
