"""A long run at a steady input rate: is the worker's memory flat? Prints the RSS curve (one row
per minute, from the worker's own stats series), throughput and checkpoints over time.

  python3 bench/soak.py [--minutes 10] [--rate 20000] [--users 1000000]

The input is the synthetic generator streamed at --rate into a 256-partition topic (the local
broker keeps ~5 MiB per partition; the worker keeps up, so nothing it has not read is dropped).
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--json")
    a = ap.parse_args()
    ievo = os.path.join(a.build, "ievo")
    wd = tempfile.mkdtemp(prefix="ievo-soak-")
    try:
        model = os.path.join(wd, "m.safetensors")
        run([ievo, "model", "init", "--out", model, "--vocab-synthetic"])
        b = Broker(ievo, wd, ["user-actions:256", "state-changelog:256", "interest-vectors:256"])
        try:
            series = os.path.join(wd, "series.jsonl")
            w = subprocess.Popen([ievo, "worker", "-b", b.bootstrap, "-X", "group.id=soak", "-X", f"model.path={model}",
                                  "-X", f"state.dir={os.path.join(wd, 'state')}", "-X", "changelog.topic=state-changelog",
                                  "-X", f"stats.series.file={series}", "-X", "stats.series.interval.ms=5000",
                                  "-X", f"stats.file={os.path.join(wd, 'stats.json')}", "-X", "session.timeout.ms=6000",
                                  "-X", "consumer.fetch.wait.max.ms=5"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(wd, "worker.log"), "w"))
            time.sleep(6)
            n = int(a.rate * a.minutes * 60)
            log(f"[soak] streaming {n} events at {a.rate}/s for {a.minutes} min")
            run([ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", f"{a.users}:{n}",
                 "--rate", a.rate], timeout=int(a.minutes * 60 * 2 + 600))
            time.sleep(10)
            w.send_signal(signal.SIGTERM)
            w.wait(300)
        finally:
            b.stop()
        rows = [json.loads(l) for l in open(series)]
        stats = json.load(open(os.path.join(wd, "stats.json")))
        print(f"\nievo soak — machine: {machine()}; {a.rate} events/s for {a.minutes} min, {a.users} users\n")
        print("| minute | applied | events/s (last minute) | RSS MiB | checkpoints |")
        print("|---|---|---|---|---|")
        last_t, last_applied = 0.0, 0
        marks = [r for r in rows if int(r["t"] // 60) != int((r["t"] - 5) // 60) or r is rows[-1]]
        for r in marks:
            rate = (r["applied"] - last_applied) / max(1e-9, r["t"] - last_t)
            print(f"| {r['t'] / 60:.1f} | {r['applied']} | {rate:,.0f} | {r['rss_bytes'] / 2**20:.0f} | {r['checkpoints']} |")
            last_t, last_applied = r["t"], r["applied"]
        rss = [r["rss_bytes"] / 2**20 for r in rows if r["applied"] > 0]
        half = rss[len(rss) // 2:]
        print(f"\nRSS: first {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, second half {min(half):.0f}-{max(half):.0f} MiB; "
              f"{stats['applied']} events applied, {stats['cpu_us_per_event']:.2f} µs CPU/event, "
              f"latency p50 {stats['latency_ms']['p50']} ms p99 {stats['latency_ms']['p99']} ms")
        if a.json:
            json.dump({"series": rows, "stats": stats}, open(a.json, "w"))
    finally:
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
