"""How the worker's cost grows: events/s and CPU per event against the number of users, the
attention window, the hidden size, and one vs two worker processes; bytes per user on disk; the
time to restore users from the changelog. Prints a markdown table (docs/performance.md).

  python3 bench/scaling.py [--quick] [--max-users 10000000]

Each row: a fresh local broker, a synthetic input (Zipf 0.8 activity, about 3 events per user,
fewer for the largest runs to respect the local broker's ~5 MiB per partition), a model of the
row's shape, the worker run to the end of the input. Restore rows: a second worker with an empty
state dir restores every partition from the first one's changelog.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, Broker, log, machine, run  # noqa: E402


def worker_run(a, b, wd, model, name, extra=()):
    stats = os.path.join(wd, name + ".json")
    run([a.ievo, "worker", "-b", b.bootstrap, "-X", f"group.id={name}", "-X", f"model.path={model}",
         "-X", f"state.dir={os.path.join(wd, 'state-' + name)}", "-X", f"changelog.topic=cl-{name}",
         "-X", f"stats.file={stats}", "-X", "session.timeout.ms=6000", *extra, "--until-eof"], timeout=7200)
    return json.load(open(stats))


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs)


def row(a, users, events, window=16, hidden=64, procs=1, restore=False):
    wd = tempfile.mkdtemp(prefix="ievo-scaling-")
    parts = 256 if users >= 1_000_000 else 64
    try:
        model = os.path.join(wd, "m.safetensors")
        run([a.ievo, "model", "init", "--out", model, "--vocab-synthetic", "--window", window, "--hidden", hidden])
        names = ["a", "b"] if procs == 2 else ["a"]
        topics = [f"user-actions:{parts}", f"interest-vectors:{parts}"] + [f"cl-{n}:{parts}" for n in names + ["r"]]
        b = Broker(a.ievo, wd, topics)
        try:
            run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"{users}:{events}",
                 "--synth-zipf-users", "0.8"], timeout=3600)
            t0 = time.time()
            if procs == 1:
                st = [worker_run(a, b, wd, model, "a")]
            else:   # two processes in one group: both start, each runs to the end of its partitions
                ps = [subprocess.Popen([a.ievo, "worker", "-b", b.bootstrap, "-X", "group.id=pair",
                                        "-X", f"model.path={model}", "-X", f"state.dir={os.path.join(wd, 'state-' + n)}",
                                        "-X", "changelog.topic=cl-a", "-X", f"stats.file={os.path.join(wd, n + '.json')}",
                                        "-X", "session.timeout.ms=6000", "--until-eof"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in names]
                for p in ps:
                    p.wait(7200)
                st = [json.load(open(os.path.join(wd, n + ".json"))) for n in names]
            wall = time.time() - t0
            applied = sum(s["applied"] for s in st)
            cpu = sum(s["cpu_user_s"] + s["cpu_sys_s"] for s in st)
            active = max(s["active_s"] for s in st)
            disk = sum(dir_bytes(os.path.join(wd, "state-" + n)) for n in names)
            out = {"users": users, "events": events, "window": window, "hidden": hidden, "procs": procs,
                   "applied": applied, "events_per_s": applied / active if active else 0,
                   "cpu_us_per_event": cpu * 1e6 / applied if applied else 0, "disk_bytes_per_user": disk / users,
                   "rss_mib": max(s["max_rss_kb"] for s in st) / 1024, "wall_s": wall}
            if restore:
                # A worker with an empty state dir in the same group restores everything.
                shutil.rmtree(os.path.join(wd, "state-a"))
                r = worker_run(a, b, wd, model, "a")
                out["restored_records"] = r["restored_records"]
                out["restore_s"] = r["restore_s"]
        finally:
            b.stop()
        log(f"[scaling] {out}")
        return out
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--max-users", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.ievo = os.path.join(a.build, "ievo")
    sizes = [10_000, 100_000] if a.quick else [10_000, 100_000, 1_000_000, 10_000_000]
    sizes = [u for u in sizes if u <= a.max_users]
    rows = []
    for u in sizes:
        ev = 3 * u if u < 10_000_000 else int(1.2 * u)
        rows.append(row(a, u, ev, restore=u <= 1_000_000))
    base = 100_000 if a.quick else 1_000_000
    rows.append(row(a, base, 3 * base, window=50))
    rows.append(row(a, base, 3 * base, hidden=128))
    rows.append(row(a, base, 3 * base, procs=2))
    print(f"\nmachine: {machine()}; build: {a.ievo}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}\n")
    print("| users | events | W | H | worker processes | events/s | µs CPU/event | disk B/user | peak RSS MiB | restore |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rest = (f"{r['restored_records']} records in {r['restore_s']:.1f} s"
                if "restore_s" in r and r["restore_s"] else "")
        print(f"| {r['users']:,} | {r['events']:,} | {r['window']} | {r['hidden']} | {r['procs']} | "
              f"{r['events_per_s']:,.0f} | {r['cpu_us_per_event']:.2f} | {r['disk_bytes_per_user']:,.0f} | "
              f"{r['rss_mib']:.0f} | {rest} |")
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
