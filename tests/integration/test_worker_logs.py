"""Logs for machines and for people, through a run with a dead letter, a restore, a rebalance and
a stop (docs/operations.md, Logs).

  text  worker A applies a stream with a dead letter whose key (its user id) holds a newline and
        a terminal escape ("u\\n\\x1b[31mred"): the dead letter is one line, naming the user with
        both escaped, and no line A writes holds a raw control byte.
  json  worker B (log.format=json, a fresh state dir, A's group) is assigned A's partitions,
        restores them from the changelog, dead-letters another such record (another schema id)
        and stops: every line it writes, librdkafka's included, is one JSON object with ts,
        level, module and msg, and only the documented fields beside them, in order and each of
        its type; the dead letter, the restore, the rebalance, the assignment and the stop carry
        theirs.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, IEVO, Broker, Workdir, await_outputs, ievo, kcat_produce, log, stop_proc

HOSTILE = "u\n\x1b[31mred"
FIELDS = {"ts": str, "level": str, "module": str, "msg": str, "topic": str, "partition": int, "offset": int,
          "user_id": str, "error": str, "count": int, "duration_ms": (int, float)}
ORDER = list(FIELDS)


def start(wd, b, model, name, *extra):
    errlog = wd(name + ".log")
    p = subprocess.Popen([IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=logs", "-X", f"model.path={model}",
                          "-X", f"state.dir={wd('state-' + name)}", *FAST_GROUP, *extra],
                         stdout=subprocess.DEVNULL, stderr=open(errlog, "wb"))
    return p, errlog


def wait_log(p, errlog, text, timeout):
    deadline = time.time() + timeout
    while text not in open(errlog, "rb").read().decode(errors="replace"):
        assert p.poll() is None, f"the worker exited ({p.returncode}) before '{text}'"
        assert time.time() < deadline, f"no '{text}' within {timeout} s:\n{open(errlog, 'rb').read()[-2000:]}"
        time.sleep(0.1)


def check_text(raw):
    """One line per happening, no byte a terminal acts on, the hostile id escaped."""
    bad = [c for c in raw if (c < 0x20 and c != 0x0A) or c == 0x7F]
    assert not bad, f"raw control bytes in the text log: {sorted(set(bad))}"
    lines = raw.decode().splitlines()
    dlq = [l for l in lines if " dlq: " in l and "-> user-actions.dlq" in l]
    assert len(dlq) == 1, f"one dead-letter line expected:\n" + "\n".join(dlq)
    assert "(user u\\n\\x1b[31mred)" in dlq[0], dlq[0]
    return len(lines)


def check_json(raw):
    """Every line JSON with the documented keys, in order and of their types. Returns the lines."""
    out = []
    for n, line in enumerate(raw.decode().splitlines(), 1):
        try:
            o = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"line {n} is not JSON ({e}): {line!r}")
        keys = list(o)
        assert keys[:4] == ["ts", "level", "module", "msg"], f"line {n}: keys {keys}"
        assert set(keys) <= set(FIELDS), f"line {n}: undocumented keys {set(keys) - set(FIELDS)}"
        assert keys == sorted(keys, key=ORDER.index), f"line {n}: keys out of order {keys}"
        for k, v in o.items():
            assert isinstance(v, FIELDS[k]) and not isinstance(v, bool), f"line {n}: {k}={v!r}"
        assert o["level"] in ("DEBUG", "INFO", "WARN", "ERROR"), line
        assert line.isascii() and all(c >= " " for c in line), f"line {n} holds raw bytes: {line!r}"
        out.append(o)
    return out


def one(lines, pred, what):
    got = [l for l in lines if pred(l)]
    assert got, f"no {what} line among:\n" + "\n".join(json.dumps(l) for l in lines[-40:])
    return got[0]


def main():
    wd = Workdir("logs")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3")
    with Broker(["user-actions:4", "interest-vectors:4", "user-actions.dlq:1"], workdir=wd.path) as b:
        ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", "40:400", "--synth-seed", "4")
        kcat_produce(b.bootstrap, "user-actions", HOSTILE, b'{"not": "avro"}', partition=0)

        a, a_log = start(wd, b, model, "a")
        await_outputs(b.bootstrap, 400, 120, alive=lambda: a.poll() is None)
        wait_log(a, a_log, "-> user-actions.dlq", 30)
        assert stop_proc(a) == 0, open(a_log, "rb").read()[-2000:]
        n = check_text(open(a_log, "rb").read())
        log(f"[logs] text: {n} lines, the dead letter's user escaped, no raw control byte")

        p, b_log = start(wd, b, model, "b", "-X", "log.format=json")
        wait_log(p, b_log, "restored", 60)
        wait_log(p, b_log, "resuming at offset", 30)
        kcat_produce(b.bootstrap, "user-actions", HOSTILE, b"\x00\x00\x00\x00\x07", partition=1)
        wait_log(p, b_log, '"module":"dlq"', 30)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0, open(b_log, "rb").read()[-2000:]
        lines = check_json(open(b_log, "rb").read())

        dead = one(lines, lambda l: l["module"] == "dlq", "dead letter")
        assert (dead["topic"], dead["partition"], dead["user_id"], dead["error"], dead["level"]) == \
            ("user-actions", 1, HOSTILE, "schema_id", "WARN") and dead["offset"] >= 0, dead
        restored = one(lines, lambda l: l["module"] == "restore" and "restored" in l["msg"], "restore")
        assert {"topic", "partition", "offset", "count", "duration_ms"} <= set(restored), restored
        rebalance = one(lines, lambda l: l["msg"].startswith("rebalance ("), "rebalance")
        assert rebalance["count"] == 4, rebalance
        assigned = one(lines, lambda l: l["msg"].startswith("assigned user-actions"), "assignment")
        assert assigned["topic"] == "user-actions" and "partition" in assigned, assigned
        one(lines, lambda l: l["msg"].startswith("stopping: committing offsets"), "stopping")
        summary = one(lines, lambda l: l["msg"].startswith("stopped: "), "stop summary")
        assert summary["module"] == "worker" and "count" in summary and summary["duration_ms"] > 0, summary
        log(f"[logs] json: {len(lines)} lines parsed; dead letter, restore, rebalance, assignment and stop carry "
            f"their fields")
    wd.cleanup()


if __name__ == "__main__":
    main()
