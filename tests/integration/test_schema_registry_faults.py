"""The schema registry failing (the tests' own registry, tests/integration/schema_registry.py):

  A. down at start: the worker retries, then exits with a clear error, having consumed nothing;
  B. wrong credentials: a clear error naming basic.auth.user.info, the secret printed nowhere;
  C. down mid-run, schema.registry.unavailable=wait: records of a cached writer id keep flowing,
     a record with a new id waits; the registry back, it is applied; nothing lost or repeated;
  D. down mid-run, dead-letter: a new id's records go to the dead-letter topic intact, class
     registry, at once;
  E. down past schema.registry.wait.ms: the worker stops with nothing committed past the record,
     and a restart once the registry is back applies it.
The registry here asks for basic auth throughout (B's right twin).
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAST_GROUP, IEVO, SOURCE, Broker, Workdir, await_outputs, ievo, kcat_records, log,  # noqa: E402
                     start_proc, stop_proc, wait_for)
from schema_registry import SchemaRegistry  # noqa: E402

USER, PASSWORD = "ievo", "s3cret-registry-pass-4711"
WRONG = "not-the-password-9902"
V1 = json.load(open(os.path.join(SOURCE, "schemas", "user_action.avsc")))


def writer(extra_field):
    """v1 plus one optional field: a new writer schema, a new id."""
    s = json.loads(json.dumps(V1))
    s["fields"].append({"name": extra_field, "type": ["null", "string"], "default": None})
    return s


def encode(schema, sid, rec):
    s = json.loads(json.dumps(schema))
    for f in s["fields"]:
        if f["name"] == "ts":
            f["type"] = "long"   # python3-avro wants datetimes for timestamp-millis; the bytes are the same
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(s))).write(rec, avro.io.BinaryEncoder(buf))
    return b"\x00" + struct.pack(">i", sid) + buf.getvalue()


def events(prefix, n_users, per_user, t0):
    return [{"user_id": f"{prefix}{u}", "item_id": f"t{(u + k) % 20:02d}-i{k % 50:03d}", "action": "view",
             "ts": t0 + 1000 * (k * n_users + u), "value": 1.5, "text": None}
            for k in range(per_user) for u in range(n_users)]


def produce_v1(b, reg, evs):
    ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--jsonl", "-", "-X", f"schema.registry.url={reg.url}",
         "-X", f"basic.auth.user.info={USER}:{PASSWORD}", input="".join(json.dumps(e) + "\n" for e in evs).encode())


def produce_raw(b, evs, schema, sid, tmp):
    """Records of another writer, one kcat call per user (its records in order)."""
    by_user = {}
    for e in evs:
        rec = {f["name"]: e.get(f["name"]) for f in schema["fields"]}   # the added field: null
        by_user.setdefault(e["user_id"], []).append(encode(schema, sid, rec))
    for u, payloads in by_user.items():
        paths = []
        for i, p in enumerate(payloads):
            paths.append(os.path.join(tmp, f"{u}-{sid}-{i}"))
            open(paths[-1], "wb").write(p)
        subprocess.run(["kcat", "-P", "-b", b.bootstrap, "-t", "user-actions", "-k", u, *paths], check=True, timeout=60)
    return [p for ps in by_user.values() for p in ps]


def main():
    wd = Workdir("registry-faults")
    model = wd("model.safetensors")
    ievo("model", "init", "-o", model, "--vocab-synthetic", "--init-seed", "5")
    tmp = tempfile.mkdtemp(prefix="payloads-", dir=wd.path)
    reg = SchemaRegistry(workdir=wd.path, user=USER, password=PASSWORD)
    try:
        with Broker(["user-actions:2", "state-changelog:2", "interest-vectors:4", "user-actions.dlq:2"],
                    workdir=wd.path) as b:
            def worker_args(name, *extra, password=PASSWORD):
                return ["worker", "-b", b.bootstrap, "-X", "group.id=faults", "-X", f"state.dir={wd('state')}",
                        "-X", f"model.path={model}", "-X", "changelog.topic=state-changelog", "-X", f"stats.file={wd(name)}",
                        "-X", f"schema.registry.url={reg.url}", "-X", f"basic.auth.user.info={USER}:{password}",
                        "-X", "schema.registry.retries=1", "-X", "schema.registry.retry.backoff.ms=50", *FAST_GROUP, *extra]

            # A. down at start
            reg.stop()
            t0 = time.time()
            r = ievo(*worker_args("a.json", "-X", "schema.registry.wait.ms=3000", "--until-eof"), check=False, timeout=120)
            took, err = time.time() - t0, r.stderr.decode(errors="replace")
            assert r.returncode != 0, "the worker started without its registry"
            assert "schema registry unavailable" in err and "gave up after schema.registry.wait.ms=3000" in err, err[-2000:]
            assert "retrying" in err and took < 60, (took, err[-2000:])
            assert PASSWORD not in err
            log(f"[faults] A. registry down at start: exit {r.returncode} after {took:.1f} s: "
                + [l for l in err.splitlines() if "gave up" in l][-1][-220:])
            reg.start()

            # B. wrong credentials
            r = ievo(*worker_args("b.json", "--until-eof", password=WRONG), check=False, timeout=120)
            out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
            assert r.returncode != 0 and "refused the credentials (HTTP 401" in out and "basic.auth.user.info" in out, out[-2000:]
            assert WRONG not in out and PASSWORD not in out, "a secret was printed"
            log("[faults] B. wrong credentials: " + [l for l in out.splitlines() if "refused" in l][-1][-200:])

            # C. down mid-run, wait: the cached id flows, the new one waits for the registry
            v2, v3, v4 = writer("x2"), writer("x3"), writer("x4")
            ids = {n: reg.register("user-actions-value", s) for n, s in (("v2", v2), ("v3", v3), ("v4", v4))}
            first, cached, fresh = events("a", 8, 5, 1_700_000_000_000), events("b", 8, 5, 1_700_100_000_000), \
                events("c", 4, 5, 1_700_200_000_000)
            produce_v1(b, reg, first)
            p = start_proc([IEVO, *worker_args("c.json", "-X", "schema.registry.wait.ms=60000")], wd("c.log"))
            try:
                outs, n = await_outputs(b.bootstrap, len(first), 90, alive=lambda: p.poll() is None)
                assert n == len(first), (n, open(wd("c.log")).read()[-2000:])
                reg.stop()
                produce_raw(b, cached, V1, reg_id_v1(b), tmp)   # v1's id, as a producer that cached it writes
                outs, n = await_outputs(b.bootstrap, len(first) + len(cached), 90, alive=lambda: p.poll() is None)
                assert n == len(first) + len(cached), f"cached id stopped flowing: {n}"
                produce_raw(b, fresh, v2, ids["v2"], tmp)
                time.sleep(4)
                outs, n = await_outputs(b.bootstrap, 0, 1)
                assert n == len(first) + len(cached) and p.poll() is None, (n, p.poll())
                log(f"[faults] C. registry down: {len(cached)} records of the cached id applied, the new id waits "
                    f"({n} outputs, worker alive)")
                reg.start()
                outs, n = await_outputs(b.bootstrap, len(first) + len(cached) + len(fresh), 90,
                                        alive=lambda: p.poll() is None)
                assert n == len(first) + len(cached) + len(fresh), n
            finally:
                rc = stop_proc(p)
            assert rc == 0, open(wd("c.log")).read()[-3000:]
            clog = open(wd("c.log")).read()
            assert "waiting up to" in clog and PASSWORD not in clog, clog[-3000:]
            assert len(outs) == n, "an event applied twice"
            log(f"[faults] C. registry back: the waiting records applied; {n} events, {len(outs)} outputs")

            # D. down mid-run, dead-letter
            more, lost = events("d", 4, 3, 1_700_300_000_000), events("e", 4, 3, 1_700_400_000_000)
            p = start_proc([IEVO, *worker_args("d.json", "-X", "schema.registry.unavailable=dead-letter")], wd("d.log"))
            try:
                produce_v1(b, reg, more)
                total = n + len(more)
                outs, n = await_outputs(b.bootstrap, total, 90, alive=lambda: p.poll() is None)
                assert n == total, n
                reg.stop()
                payloads = produce_raw(b, lost, v3, ids["v3"], tmp)
                dlq = wait_for(lambda: (lambda d: d if len(d) >= len(lost) else None)(kcat_records(b.bootstrap, "user-actions.dlq")),
                               60, what="dead letters")
            finally:
                rc = stop_proc(p)
            assert rc == 0, open(wd("d.log")).read()[-3000:]
            assert len(dlq) == len(lost) and sorted(d["value"] for d in dlq) == sorted(payloads), "dead letters differ"
            assert all("ievo.error.class=registry," in d["headers"] for d in dlq), dlq[0]["headers"]
            log("[faults] D. dead-letter: " + dlq[0]["headers"].split("ievo.error=")[1].split(",ievo.")[0][:200])

            # E. down past the wait: the worker stops, a restart applies the record
            reg.start()
            late = events("f", 4, 3, 1_700_500_000_000)
            p = start_proc([IEVO, *worker_args("e.json", "-X", "schema.registry.wait.ms=3000")], wd("e.log"))
            try:
                wait_for(lambda: "writing schema id" in open(wd("e.log")).read(), 60, what="the worker's start")
                reg.stop()
                produce_raw(b, late, v4, ids["v4"], tmp)
                wait_for(lambda: p.poll() is not None, 90, what="the worker to give up")
            finally:
                stop_proc(p)
            elog = open(wd("e.log")).read()
            assert p.returncode != 0 and "stopping (schema.registry.unavailable=wait)" in elog, elog[-3000:]
            reg.start()
            ievo(*worker_args("e2.json", "--until-eof"), timeout=300)
            outs, n = await_outputs(b.bootstrap, total + len(late), 60)
            assert n == total + len(late), f"{n} events applied of {total + len(late)}"
            log(f"[faults] E. past schema.registry.wait.ms the worker stopped; restarted, it applied the "
                f"{len(late)} waiting records: {n} events in all, none lost")
    finally:
        reg.stop()
    wd.cleanup()
    log("[faults] ok")


def reg_id_v1(b):
    """v1's id: the one `ievo produce` wrote (read back from the topic's first record)."""
    rec = kcat_records(b.bootstrap, "user-actions", ["-c", "1"])[0]
    return struct.unpack(">i", rec["value"][1:5])[0]


if __name__ == "__main__":
    main()
