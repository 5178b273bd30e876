"""The throughput benchmark: one command, fixed inputs, figures printed (never a pass/fail).

For each data set — ML-100K repeated with distinct user ids (when a MovieLens path is given or
found) and a synthetic set with many users and Zipf-distributed activity — it starts a local
broker, loads the input topic, times the pipeline's stages in isolation (ievo_bench_stages), and
reads the worker's own accounting (events/s, CPU per event, peak RSS, per-stage wall time, cache
behaviour, bytes written to disk) for:
  cold     the whole input, every user new;
  steady   the same users again, later: every event finds its user's state, larger than the
           cache (--steady-cache-bytes);
  restore  every user's state from the changelog into an empty state dir (full), and after a
           crash that lost RocksDB's unflushed writes (the WAL off) only the changelog's tail
           (incremental): records/s and seconds per million users;
  latency  the later events streamed at half the steady rate into a worker whose users have
           state (event-to-output p50/p99, from each output's acknowledgement back to its
           input's timestamp), with 16 and with 64 input partitions (--latency-partitions).
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


def worker_cmd(a, bootstrap, model, state, stats, *extra):
    return [a.ievo, "worker", "-b", bootstrap, "-X", "group.id=bench", "-m", model, "-X", f"state.dir={state}",
            "-X", "changelog.topic=state-changelog", "-X", f"stats.file={stats}", "-X", "session.timeout.ms=6000",
            *a.worker_args, *extra]


def run_worker(a, bootstrap, model, state, stats, *extra):
    """The worker to the end of its input; its stats file."""
    run(worker_cmd(a, bootstrap, model, state, stats, *extra, "--until-eof"), timeout=3600)
    return json.load(open(stats))


def kill_after_checkpoint(a, bootstrap, model, state, wd, n_events, *extra):
    """A worker that applies n_events more, checkpoints them, and is killed (SIGKILL) before RocksDB
    flushes them (memtables large enough to hold them): what a crash with the WAL off leaves."""
    series = os.path.join(wd, "series.jsonl")
    w = subprocess.Popen(worker_cmd(a, bootstrap, model, state, os.path.join(wd, "killed.json"), "-X",
                                    f"stats.series.file={series}", "-X", "stats.series.interval.ms=200",
                                    "-X", "state.write.buffer.bytes=1073741824", *extra),
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(wd, "killed.log"), "w"))
    deadline, ckpt_at_end = time.time() + 3600, None
    while time.time() < deadline and w.poll() is None:
        time.sleep(0.5)
        lines = open(series).read().splitlines() if os.path.exists(series) else []
        last = json.loads(lines[-1]) if lines else {}
        if last.get("applied", 0) >= n_events:
            ckpt_at_end = ckpt_at_end if ckpt_at_end is not None else last["checkpoints"]
            if last["checkpoints"] > ckpt_at_end:
                break
    w.send_signal(signal.SIGKILL)
    w.wait()


def restore_figures(st):
    s = st["restore_s"] or 1e-9
    return {"records": st["restored_records"], "seconds": st["restore_s"], "records_per_s": st["restored_records"] / s,
            "incremental": st.get("restored_incremental", 0), "partitions": st["restored_partitions"]}


def scenario(a, name, data_args, later_args, vocab_args, n_events_hint, parts):
    """Cold pass, steady pass, restores (full, incremental) and latency at half the steady rate."""
    wd = tempfile.mkdtemp(prefix=f"ievo-bench-{name}-")
    out = {"name": name}
    try:
        model = os.path.join(wd, "model.safetensors")
        run([a.ievo, "model", "init", "--out", model, *vocab_args, "--init-seed", "1"])
        topics = [f"user-actions:{parts}", f"state-changelog:{parts}", f"interest-vectors:{parts}",
                  "user-actions.dlq:2", "bench-out:16", "bench-changelog:16"]
        state = os.path.join(wd, "state")
        b = Broker(a.ievo, wd, topics)
        try:
            # 1. Cold: the whole input preloaded, every event's user new.
            t0 = time.time()
            run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *data_args])
            log(f"[{name}] input loaded in {time.time() - t0:.1f} s")
            st = os.path.join(wd, "stages.json")
            run([a.stages, "-b", b.bootstrap, "-m", model, "--input-topic", "user-actions",
                 "--events", min(n_events_hint, 300000), "--users", a.stage_users, "--json", st])
            out["stages"] = json.load(open(st))
            out["worker"] = run_worker(a, b.bootstrap, model, state, os.path.join(wd, "cold.json"))
            out["state_dir_bytes"] = sum(os.path.getsize(os.path.join(dp, f))
                                         for dp, _, fs in os.walk(state) for f in fs)
            # 2. Steady: the same users again, later in time: every event finds its user's state,
            # which is larger than the cache (state.cache.bytes --steady-cache-bytes).
            run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *later_args])
            out["steady"] = run_worker(a, b.bootstrap, model, state, os.path.join(wd, "steady.json"),
                                       "-X", f"state.cache.bytes={a.steady_cache_bytes}")
            log(f"[{name}] steady pass: {out['steady']['cpu_us_per_event']:.2f} µs CPU/event")
            # 3. Restores: every user's state from the changelog into an empty state dir (full);
            # then, after a crash that lost the writes since the last flush, the tail (incremental).
            out["restore_full"] = restore_figures(run_worker(a, b.bootstrap, model, os.path.join(wd, "state-full"),
                                                             os.path.join(wd, "full.json")))
            shutil.rmtree(os.path.join(wd, "state-full"), ignore_errors=True)
            tail = max(1000, n_events_hint // 10)
            run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *later_args, "--count", tail])
            kill_after_checkpoint(a, b.bootstrap, model, state, wd, tail)
            out["restore_incremental"] = restore_figures(run_worker(a, b.bootstrap, model, state,
                                                                    os.path.join(wd, "incremental.json")))
        finally:
            b.stop()
        shutil.rmtree(state, ignore_errors=True)

        # 4. Latency at half the measured steady rate, once per partition count in
        # --latency-partitions: the users' states built first (the data preloaded and applied),
        # then the later events streamed at that rate while the worker runs. The local broker
        # finds a fetch's position by a linear walk over the partition's retained batches and
        # returns one batch per partition per fetch (rdkafka_mock, librdkafka 2.0.2): streamed input
        # makes many small batches, so with many partitions its fetches cost more the longer the run
        # (docs/performance.md).
        rate = max(1000, int(out["steady"]["events_per_s"] / 2))
        out["latency"] = []
        for lparts in a.latency_partitions:
            ltopics = [f"user-actions:{lparts}", f"state-changelog:{lparts}", f"interest-vectors:{lparts}",
                       "user-actions.dlq:2"]
            b = Broker(a.ievo, wd, ltopics)
            state2 = os.path.join(wd, "state2")
            try:
                run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *data_args])
                run_worker(a, b.bootstrap, model, state2, os.path.join(wd, "preload.json"))
                stats = os.path.join(wd, "latency.json")
                # fetch.wait.max.ms: the local broker answers an empty fetch only after the full wait
                # (a real broker answers as soon as data arrives), which would add up to 500 ms here.
                w = subprocess.Popen(worker_cmd(a, b.bootstrap, model, state2, stats, "-X",
                                                "consumer.fetch.wait.max.ms=5"),
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(wd, "latency-worker.log"), "w"))
                time.sleep(6)   # the worker joins its group before the input starts
                n = min(n_events_hint, rate * a.latency_seconds)
                run([a.ievo, "produce", "-b", b.bootstrap, "-t", "user-actions", *later_args, "--count", n,
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
        sd = r["steady"]
        hits = sd["cache_hits"] / max(1, sd["cache_hits"] + sd["cache_misses"])
        fits = "smaller than the state" if a.steady_cache_bytes < r["state_dir_bytes"] else "the whole state fits"
        print(f"  steady:   {sd['applied']} events whose users all have a state (cache {a.steady_cache_bytes >> 20} MiB, "
              f"{fits}): {sd['events_per_s']:.0f} events/s, {sd['cpu_us_per_event']:.2f} µs CPU/event, "
              f"cache hit rate {hits * 100:.1f} %, {sd['io_write_bytes'] / max(1, sd['applied']):.0f} B written to disk "
              f"per event, peak RSS {sd['max_rss_kb'] / 1024:.0f} MiB")
        for kind in ("restore_full", "restore_incremental"):
            x = r[kind]
            print(f"  {kind.replace('_', ' ')}: {x['records']} changelog records in {x['seconds']:.2f} s = "
                  f"{x['records_per_s']:.0f} records/s ({1e6 / max(1e-9, x['records_per_s']):.1f} s per million users), "
                  f"{x['partitions']} partitions, {x['incremental']} of them incremental")
        for l in r["latency"]:
            print(f"  latency, steady state, at {l['rate']} events/s ({l['events']} events streamed, {l['partitions']} "
                  f"partitions): event-to-output p50 {l['p50']} ms, p99 {l['p99']} ms, max {l['max']} ms")


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
    ap.add_argument("--steady-cache-bytes", type=int, default=64 << 20,
                    help="state.cache.bytes of the steady pass (smaller than the state it reads)")
    ap.add_argument("--quick", action="store_true", help="small inputs: a smoke run of the benchmark itself")
    ap.add_argument("--only", choices=["movielens", "synthetic"])
    ap.add_argument("--json")
    ap.add_argument("worker_args", nargs="*", help="extra -X key=value for the worker")
    a = ap.parse_args()
    if a.quick:
        a.users, a.events, a.repeat, a.latency_seconds, a.steady_cache_bytes = 20000, 100000, 2, 5, 1 << 20
    a.latency_partitions = [int(x) for x in a.latency_partitions.split(",") if x]
    a.ievo = os.path.join(a.build, "ievo")
    a.stages = os.path.join(a.build, "ievo_bench_stages")
    a.stage_users = min(a.users, 100000)
    a.build_type = "RelWithDebInfo"
    a.worker_args = [x for kv in a.worker_args for x in ("-X", kv)]
    results = []
    if a.only != "synthetic" and os.path.exists(os.path.join(a.movielens, "u.data")):
        ml = ["--movielens", a.movielens, "--repeat", a.repeat, "--user-prefix", "r"]
        r = scenario(a, "movielens", ml, ml, ["--vocab-movielens", a.movielens], 100000 * a.repeat, a.partitions)
        r["input"], r["users"] = f"ML-100K x{a.repeat}, distinct users per repeat", 943 * a.repeat
        results.append(r)
    elif a.only != "synthetic":
        log("MovieLens not found (--movielens DIR; download from https://grouplens.org/datasets/movielens/100k/): skipped")
    if a.only != "movielens":
        syn = ["--synthetic", f"{a.users}:{a.events}", "--synth-zipf-users", a.zipf]
        r = scenario(a, "synthetic", syn, syn + ["--synth-seed", "2", "--synth-start-ts", "1900000000000"],
                     ["--vocab-synthetic"], a.events, a.partitions)
        r["input"], r["users"] = f"synthetic, {a.users} users, {a.events} events, Zipf {a.zipf} activity", a.users
        results.append(r)
    report(results, a)
    if a.json:
        json.dump({"machine": machine(), "results": results}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
