"""/metrics, /healthz and /readyz of running workers, scraped by a real Prometheus server.

`ievo broker`, events produced at a fixed rate while two workers of one group run (the second
joins later with an empty state dir, so it restores its partitions from the changelog), and
Debian's /usr/bin/prometheus scraping both every second. Checks:

  1. /readyz answers 503 before a worker's first assignment and 200 after it; /healthz is 200
     while the loop runs; the joining worker restores partitions from the changelog (restore
     metrics > 0), its /readyz says 503 "restoring" meanwhile (polled every 20 ms; the restore
     takes ~0.25 s here) and 200 after;
  2. Prometheus parsed every scrape: `up` is 1 for both targets and the targets API shows no
     scrape error (an invalid exposition would set lastError and up = 0);
  3. through Prometheus's query API: sum(ievo_events_applied_total) reaches the events produced,
     a positive applied rate was seen, ievo_consumer_lag has a series for every input partition,
     histogram_quantile over the model-step and event-to-output latency histograms is finite and
     in range, ievo_ready is 1 for both.

Needs Debian's `prometheus` package (installed by scripts/install-deps.sh test); nothing is
installed at test time.
"""
import json
import math
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, Broker, Workdir, free_port, http_get, ievo, log, scrape, start_proc, stop_proc,
                     wait_for)

PROMETHEUS = "/usr/bin/prometheus"
PARTS = 4
# Input flows for ~20 s, so the joining worker still receives records after its restore: librdkafka
# knows a partition's consumer_lag only once an offset was stored or committed by this consumer
# (the worker seeks to its own stored offsets, so no committed offset is fetched on assignment).
USERS, EVENTS, RATE = 300, 30000, 1500


def prom_query(port, q):
    status, body = http_get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    assert status == 200, f"prometheus query {q!r}: {status} {body[:500]}"
    d = json.loads(body)
    assert d["status"] == "success", d
    return d["data"]["result"]


def prom_scalar(port, q):
    r = prom_query(port, q)
    return float(r[0]["value"][1]) if r else None


def main():
    if not os.access(PROMETHEUS, os.X_OK):
        raise AssertionError(f"{PROMETHEUS} is missing: install Debian's prometheus (scripts/install-deps.sh test)")
    wd = Workdir("prom")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3")
    topics = [f"user-actions:{PARTS}", f"state-changelog:{PARTS}", "interest-vectors:8", "user-actions.dlq:1"]
    pa, pb, pp = free_port(), free_port(), free_port()
    procs = {}
    t0 = time.time()
    with Broker(topics, workdir=wd.path) as b:
        try:
            def worker(name, port):
                return start_proc([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=prom", "-X",
                                   f"state.dir={wd('state-' + name)}", "-X", f"model.path={model}", "-X",
                                   "changelog.topic=state-changelog", "-X", f"metrics.listen=127.0.0.1:{port}",
                                   "-X", "batch.timeout.ms=50", *FAST_GROUP], wd(f"worker-{name}.log"))

            cfg = wd("prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: ievo\n    static_configs:\n"
                        f"      - targets: ['127.0.0.1:{pa}', '127.0.0.1:{pb}']\n")
            procs["prometheus"] = start_proc([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={wd('tsdb')}",
                                              f"--web.listen-address=127.0.0.1:{pp}", "--log.level=warn"],
                                             wd("prometheus.log"))
            procs["produce"] = start_proc([IEVO, "produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic",
                                           f"{USERS}:{EVENTS}", "--rate", RATE], wd("produce.log"))

            # 1. Worker a: 503 until its first assignment, then 200.
            procs["a"] = worker("a", pa)
            seen_a = []
            def a_ready():
                st, _ = http_get(f"http://127.0.0.1:{pa}/readyz", timeout=1)
                if st and (not seen_a or seen_a[-1] != st):
                    seen_a.append(st)
                assert procs["a"].poll() is None, "worker a exited: " + open(wd("worker-a.log")).read()[-3000:]
                return st == 200
            wait_for(a_ready, 30, interval=0.05, what="worker a ready")
            assert seen_a[0] == 503 and seen_a[-1] == 200, f"worker a /readyz went {seen_a}: expected 503 then 200"
            assert http_get(f"http://127.0.0.1:{pa}/healthz")[0] == 200
            log(f"[prom] {time.time() - t0:.1f} s: worker a /readyz {seen_a}")
            wait_for(lambda: http_get(f"http://127.0.0.1:{pp}/-/ready", timeout=1)[0] == 200, 30,
                     what="prometheus ready")

            # Worker b joins with an empty state dir: partitions move to it through the changelog.
            time.sleep(1)
            procs["b"] = worker("b", pb)
            seen_b, restoring_seen = [], []
            def b_ready():
                st, body = http_get(f"http://127.0.0.1:{pb}/readyz", timeout=1)
                if st and (not seen_b or seen_b[-1] != st):
                    seen_b.append(st)
                if st == 503 and "restoring" in body:
                    restoring_seen.append(time.time())
                assert procs["b"].poll() is None, "worker b exited: " + open(wd("worker-b.log")).read()[-3000:]
                return st == 200
            # With cooperative-sticky the first assignment a joining member gets is empty (partitions
            # are revoked from a first, then handed over in a second round): b may be ready with no
            # partitions in between, and is not ready while it restores the ones it then gets.
            def b_has_partitions():
                if not b_ready():
                    return None
                m = scrape(pb)
                return m if m.get("ievo_partitions_assigned", 0) >= 1 and m.get("ievo_ready") == 1 else None
            mb = wait_for(b_has_partitions, 40, interval=0.02, what="worker b ready with partitions")
            assert seen_b[0] == 503 and seen_b[-1] == 200, f"worker b /readyz went {seen_b}"
            assert mb.get("ievo_restoring") == 0, mb
            # The restore of ~800 changelog records takes ~0.25 s here; polled every 20 ms, /readyz
            # must have said "restoring" at least once.
            assert restoring_seen, f"worker b restored partitions but /readyz never answered 503 'restoring': {seen_b}"
            assert mb.get("ievo_restored_partitions_total", 0) >= 1 and mb.get("ievo_restore_records_total", 0) > 0, \
                "worker b joined with an empty state but restored nothing: " + \
                str({k: v for k, v in mb.items() if "restor" in k})
            log(f"[prom] {time.time() - t0:.1f} s: worker b /readyz {seen_b}, restored "
                f"{mb['ievo_restored_partitions_total']:.0f} partitions ({mb['ievo_restore_records_total']:.0f} records)"
                + f", 'restoring' 503 for {restoring_seen[-1] - restoring_seen[0]:.2f} s ({len(restoring_seen)} polls)")

            assert procs["produce"].wait(60) == 0, open(wd("produce.log")).read()

            # 2. Prometheus scraped both workers without error.
            def targets_up():
                r = prom_query(pp, 'up{job="ievo"}')
                return len(r) == 2 and all(x["value"][1] == "1" for x in r)
            wait_for(targets_up, 20, interval=0.5, what="up == 1 for both workers")
            status, body = http_get(f"http://127.0.0.1:{pp}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            assert len(targets) == 2, targets
            for t in targets:
                assert t["health"] == "up" and not t["lastError"], f"scrape error on {t['scrapeUrl']}: {t['lastError']}"

            # 3. The worker's numbers as Prometheus stored them.
            applied = wait_for(lambda: (lambda v: v if v is not None and v >= EVENTS else None)(
                prom_scalar(pp, "sum(ievo_events_applied_total)")), 40, interval=0.5,
                what=f"sum(ievo_events_applied_total) >= {EVENTS}")
            rate = prom_scalar(pp, "max_over_time(sum(rate(ievo_events_applied_total[5s]))[60s:1s])")
            assert rate and rate > 0, f"no positive applied rate seen: {rate}"
            def lag_all_partitions():
                r = prom_query(pp, "ievo_consumer_lag")
                parts = {x["metric"]["partition"] for x in r}
                assert all(float(x["value"][1]) >= 0 for x in r), r
                return r if parts == {str(p) for p in range(PARTS)} else None
            try:
                lag = wait_for(lag_all_partitions, 25, interval=0.5, what="ievo_consumer_lag for every partition")
            except AssertionError as e:
                raw = {n: {k: v for k, v in scrape(p).items() if "lag" in k or "next_offset" in k or "assigned" in k}
                       for n, p in (("a", pa), ("b", pb))}
                raise AssertionError(f"{e}: prometheus has {prom_query(pp, 'ievo_consumer_lag')}; workers say {raw}")
            step_p50 = prom_scalar(pp, "histogram_quantile(0.5, sum by (le) (ievo_model_step_seconds_bucket))")
            lat_p99 = prom_scalar(pp, "histogram_quantile(0.99, sum by (le) (ievo_event_to_output_latency_seconds_bucket))")
            assert step_p50 is not None and 0 < step_p50 <= 0.05, f"model step p50 {step_p50}"
            assert lat_p99 is not None and math.isfinite(lat_p99) and 0 < lat_p99 <= 10, f"latency p99 {lat_p99}"
            ready = prom_query(pp, "ievo_ready")
            assert len(ready) == 2 and all(x["value"][1] == "1" for x in ready), ready
            restored = prom_scalar(pp, "sum(ievo_restored_partitions_total)")
            assert restored and restored >= 1, restored
            assert http_get(f"http://127.0.0.1:{pa}/healthz")[0] == 200
            assert http_get(f"http://127.0.0.1:{pb}/healthz")[0] == 200
            log(f"[prom] {time.time() - t0:.1f} s: prometheus: applied {applied:.0f} (of {EVENTS} events), "
                f"peak rate {rate:.0f}/s, lag series {sorted((x['metric']['partition'], x['value'][1]) for x in lag)}, "
                f"model step p50 {step_p50 * 1e6:.0f} us, event-to-output p99 {lat_p99 * 1e3:.0f} ms")

            for name in ("b", "a"):
                rc = stop_proc(procs.pop(name), 60)
                assert rc == 0, f"worker {name} exited {rc}: " + open(wd(f"worker-{name}.log")).read()[-3000:]
        finally:
            for p in procs.values():
                stop_proc(p, 20)
    log(f"[prom] ok in {time.time() - t0:.1f} s")
    wd.cleanup()


if __name__ == "__main__":
    main()
