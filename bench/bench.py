"""The throughput benchmark: one command, fixed inputs, figures printed (never a pass/fail).

For each data set — ML-100K repeated with distinct user ids (when a MovieLens path is given or
found) and a synthetic set with many users and Zipf-distributed activity — it starts a local
broker, loads the input topic, times the pipeline's stages in isolation (ievo_bench_stages),
runs the worker to the end of the input and reads its own accounting (events/s, CPU per event,
peak RSS, per-stage wall time, cache behaviour). A second run streams the input at half the
measured rate to measure event-to-output latency (p50/p99, from each output's acknowledgement
back to its input's timestamp), with 16 and with 64 input partitions (--latency-partitions).
Figures go to stdout as a table and to --json.

  bench/run.sh [--users 1000000 --events 3000000] [--movielens DIR --repeat 10] [--quick]
"""
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Broker:
    def __init__(self, ievo, workdir, topics):
        self.bsfile = os.path.join(workdir, "bootstrap")
        args = [ievo, "broker", "--brokers", "1", "--bootstrap-file", self.bsfile]
        for t in topics:
            args += ["--topic", t]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "broker.log"), "w"))
        for _ in range(400):
            if os.path.exists(self.bsfile) and os.path.getsize(self.bsfile):
                self.bootstrap = open(self.bsfile).read().strip()
                return
            time.sleep(0.05)
        raise RuntimeError("broker did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run(args, **kw):
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr.decode()[-3000:]}")
    return r


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def scenario(a, name, data_args, vocab_args, n_events_hint, parts):
    wd = tempfile.mkdtemp(prefix=f"ievo-bench-{name}-")
    out = {"name": name}
    try:
        model = os.path.join(wd, "model.safetensors")
        run([a.ievo, "model", "init", "--out", model, *vocab_args, "--init-seed", "1"])
        topics = [f"user-actions:{parts}", f"state-changelog:{parts}", f"interest-vectors:{parts}",
                  "user-actions.dlq:2", "bench-out:16", "bench-changelog:16"]

        # 1. Throughput: the whole input preloaded, the worker runs to its end.
        b = Broker(a.ievo, wd, topics)
        try:
            t0 = time.time()
            run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *data_args])
            log(f"[{name}] input loaded in {time.time() - t0:.1f} s")
            st = os.path.join(wd, "stages.json")
            run([a.stages, "-b", b.bootstrap, "-m", model, "--input-topic", "user-actions",
                 "--events", min(n_events_hint, 300000), "--users", a.stage_users, "--json", st])
            out["stages"] = json.load(open(st))
            stats = os.path.join(wd, "worker.json")
            run([a.ievo, "worker", "-b", b.bootstrap, "-X", "group.id=bench", "-X", f"model.path={model}",
                 "-X", f"state.dir={os.path.join(wd, 'state')}", "-X", "changelog.topic=state-changelog",
                 "-X", f"stats.file={stats}", "-X", "session.timeout.ms=6000", *a.worker_args, "--until-eof"],
                timeout=3600)
            out["worker"] = json.load(open(stats))
            out["state_dir_bytes"] = sum(os.path.getsize(os.path.join(dp, f))
                                         for dp, _, fs in os.walk(os.path.join(wd, "state")) for f in fs)
        finally:
            b.stop()
        shutil.rmtree(os.path.join(wd, "state"), ignore_errors=True)

        # 2. Latency at half the measured rate: input streamed while the worker runs, once per
        # partition count in --latency-partitions. The local broker finds a fetch's position by a
        # linear walk over the partition's retained batches and returns one batch per partition per
        # fetch (rdkafka_mock, librdkafka 2.0.2): streamed input makes many small batches, so with
        # many partitions its fetches cost more the longer the run (docs/performance.md).
        rate = max(1000, int(out["worker"]["events_per_s"] / 2))
        out["latency"] = []
        for lparts in a.latency_partitions:
            ltopics = [f"user-actions:{lparts}", f"state-changelog:{lparts}", f"interest-vectors:{lparts}",
                       "user-actions.dlq:2"]
            b = Broker(a.ievo, wd, ltopics)
            try:
                stats = os.path.join(wd, "latency.json")
                state2 = os.path.join(wd, "state2")
                # fetch.wait.max.ms: the local broker answers an empty fetch only after the full wait
                # (a real broker answers as soon as data arrives), which would add up to 500 ms here.
                w = subprocess.Popen([a.ievo, "worker", "-b", b.bootstrap, "-X", "group.id=bench-latency",
                                      "-X", "consumer.fetch.wait.max.ms=5",
                                      "-X", f"model.path={model}", "-X", f"state.dir={state2}",
                                      "-X", "changelog.topic=state-changelog", "-X", f"stats.file={stats}",
                                      "-X", "session.timeout.ms=6000", *a.worker_args],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(wd, "latency-worker.log"), "w"))
                time.sleep(6)   # the worker joins its group before the input starts
                n = min(n_events_hint, rate * a.latency_seconds)
                run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *data_args, "--count", n,
                     "--rate", rate], timeout=3600)
                time.sleep(3)
                w.send_signal(signal.SIGTERM)
                w.wait(120)
                out["latency"].append({"rate": rate, "events": n, "partitions": lparts,
                                       **json.load(open(stats))["latency_ms"]})
            finally:
                b.stop()
            shutil.rmtree(state2, ignore_errors=True)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    return out


def report(results, a):
    print(f"\nievo benchmark — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"machine: {machine()}")
    print(f"build:   {a.ievo} ({a.build_type}), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    for r in results:
        w, st = r["worker"], r["stages"]
        stages = st["stages"]
        cpu_us = w["cpu_us_per_event"]
        limit_us = st["limit_us"]
        print(f"\n== {r['name']}: {r['input']}")
        print(f"  worker:   {w['applied']} events, {w['events_per_s']:.0f} events/s (wall, while active), "
              f"{cpu_us:.2f} µs CPU/event = {1e6 / cpu_us if cpu_us else 0:.0f} events per CPU-second")
        print(f"            peak RSS {w['max_rss_kb'] / 1024:.0f} MiB; state dir {r['state_dir_bytes'] / 2**20:.0f} MiB "
              f"({r['state_dir_bytes'] / max(1, r['users']):.0f} B/user on disk); {w['checkpoints']} checkpoints, "
              f"{w['changelog_records']} changelog records; cache {w['cache_hits']} hits / {w['cache_misses']} misses / "
              f"{w['cache_evictions']} evictions")
        tot = sum(w["stage_s"].values()) or 1
        print("            wall time by stage: " + ", ".join(f"{k} {v / tot * 100:.0f}%" for k, v in w["stage_s"].items()))
        print(f"  stages in isolation (µs CPU/event): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
        print(f"  pipeline limit: {limit_us:.2f} µs/event = {1e6 / limit_us:.0f} events per CPU-second "
              f"(consume+decode+state-cache+model+encode+produce); the worker reaches {limit_us / cpu_us * 100:.0f} % of it")
        for l in r["latency"]:
            print(f"  latency at {l['rate']} events/s ({l['events']} events streamed, {l['partitions']} partitions): "
                  f"event-to-output p50 {l['p50']} ms, p99 {l['p99']} ms, max {l['max']} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--zipf", type=float, default=0.8)
    ap.add_argument("--movielens", default=os.path.join(ROOT, "..", "shared", "data", "ml-100k"))
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--latency-seconds", type=int, default=20)
    ap.add_argument("--latency-partitions", default="16,64",
                    help="input partition counts of the latency runs, comma-separated")
    ap.add_argument("--quick", action="store_true", help="small inputs: a smoke run of the benchmark itself")
    ap.add_argument("--only", choices=["movielens", "synthetic"])
    ap.add_argument("--json")
    ap.add_argument("worker_args", nargs="*", help="extra -X key=value for the worker")
    a = ap.parse_args()
    if a.quick:
        a.users, a.events, a.repeat, a.latency_seconds = 20000, 100000, 2, 5
    a.latency_partitions = [int(x) for x in a.latency_partitions.split(",") if x]
    a.ievo = os.path.join(a.build, "ievo")
    a.stages = os.path.join(a.build, "ievo_bench_stages")
    a.stage_users = min(a.users, 100000)
    a.build_type = "RelWithDebInfo"
    a.worker_args = [x for kv in a.worker_args for x in ("-X", kv)]
    results = []
    if a.only != "synthetic" and os.path.exists(os.path.join(a.movielens, "u.data")):
        r = scenario(a, "movielens", ["--movielens", a.movielens, "--repeat", a.repeat, "--user-prefix", "r"],
                     ["--vocab-movielens", a.movielens], 100000 * a.repeat, a.partitions)
        r["input"], r["users"] = f"ML-100K x{a.repeat}, distinct users per repeat", 943 * a.repeat
        results.append(r)
    elif a.only != "synthetic":
        log("MovieLens not found (--movielens DIR; download from https://grouplens.org/datasets/movielens/100k/): skipped")
    if a.only != "movielens":
        r = scenario(a, "synthetic", ["--synthetic", f"{a.users}:{a.events}", "--synth-zipf-users", a.zipf],
                     ["--vocab-synthetic"], a.events, a.partitions)
        r["input"], r["users"] = f"synthetic, {a.users} users, {a.events} events, Zipf {a.zipf} activity", a.users
        results.append(r)
    report(results, a)
    if a.json:
        json.dump({"machine": machine(), "results": results}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
