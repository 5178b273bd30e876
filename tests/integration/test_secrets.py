"""Secrets are never printed: every command runs with `sasl.password` and `ssl.key.password`
set, given three ways (-X, a properties file, IEVO_CFG_* variables), and everything the commands
leave behind is searched for the two values: stdout and stderr (text and JSON logs, librdkafka's
own debug lines included), the stats and series files, the report page, /metrics, /healthz and
/readyz, the state dump, the records and headers of every topic (the dead-letter topic among
them), and the running worker's /proc/PID/cmdline.

Also: a malformed properties line (`sasl.password: VALUE`) and a malformed -X are refused with
exit status 2, naming the file and line but never the text; a secret given with -X draws a
warning that points at the file and the variable, and is masked in the process's command line.

The local broker speaks plaintext without SASL (docs/security.md), so the credentials are set
but never used on the wire: this test is about what ievo prints, not about authentication.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import IEVO, FAST_GROUP, Broker, Workdir, kcat_produce, kcat_records, log

SASL = "Sasl-Pw-4f1c9e2b"
KEYPW = "Key-Pw-8d03a7f6"
SECRETS = (SASL, KEYPW)
TOPICS = ["user-actions:2", "interest-vectors:2", "user-actions.dlq:1", "secrets-changelog:2", "replay-changelog:2",
          "replay-out:2"]


class Collected:
    """Every text a command left behind, with where it came from."""

    def __init__(self):
        self.items = []

    def add(self, where, data):
        if isinstance(data, bytes):
            data = data.decode(errors="replace")
        self.items.append((where, data))

    def check(self):
        leaks = [(w, s) for w, d in self.items for s in SECRETS if s in d]
        assert not leaks, "secrets printed: " + "; ".join(f"{s} in {w}" for w, s in leaks)
        return sum(len(d) for _, d in self.items)


def sources(wd):
    """The three ways of giving the secrets: (name, extra args, extra env)."""
    props = wd("secrets.properties")
    with open(props, "w") as f:
        f.write(f"sasl.password={SASL}\nssl.key.password={KEYPW}\n")
    os.chmod(props, 0o600)
    return [
        ("-X", ["-X", f"sasl.password={SASL}", "-X", f"ssl.key.password={KEYPW}"], {}),
        ("file", ["-F", props], {}),
        ("env", [], {"IEVO_CFG_SASL_PASSWORD": SASL, "IEVO_CFG_SSL_KEY_PASSWORD": KEYPW}),
    ]


def run(col, label, args, env_extra, expect=0, stdin=None, timeout=300):
    env = dict(os.environ, **env_extra)
    r = subprocess.run([IEVO, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       input=stdin, timeout=timeout)
    col.add(f"{label} stdout", r.stdout)
    col.add(f"{label} stderr", r.stderr)
    err = r.stderr.decode(errors="replace")
    if expect is not None:
        assert r.returncode == expect, f"{label}: exit {r.returncode} (expected {expect}):\n{err[-3000:]}"
    return r


def check_x_warning(label, how, stderr):
    """A secret given with -X is warned about, pointing at the file and the variable."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    warned = "-X sasl.password: a secret on the command line" in text and "IEVO_CFG_SASL_PASSWORD" in text
    assert warned == (how == "-X"), f"{label}: -X warning {'missing' if how == '-X' else 'where no -X'}:\n{text[-2000:]}"


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def worker_background(col, wd, b, model, how, args, env_extra):
    """A worker with every output on (stats, series, metrics, JSON logs, librdkafka's debug
    lines): its HTTP endpoints and its command line are read while it runs, then it stops."""
    stats, series, logf = wd(f"stats-{how}.json"), wd(f"series-{how}.jsonl"), wd(f"worker-{how}.log")
    cmd = [IEVO, "worker", "-b", b.bootstrap, "-X", "group.id=secrets", "-X", f"state.dir={wd('state')}",
           "-X", f"model.path={model}", "-X", "changelog.topic=secrets-changelog", "-X", f"stats.file={stats}",
           "-X", f"stats.series.file={series}", "-X", "stats.series.interval.ms=100", "-X", "metrics.listen=127.0.0.1:0",
           "-X", f"log.format={'json' if how == 'env' else 'text'}", "-X", "debug=security,conf,broker",
           "-X", "log.level=debug", *FAST_GROUP, *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(logf, "w"), env=dict(os.environ, **env_extra))
    try:
        port, deadline = None, time.time() + 60
        while port is None and time.time() < deadline:
            m = re.search(r"metrics on \S+ \(port (\d+)\)", open(logf).read())
            port = int(m.group(1)) if m else None
            assert p.poll() is None, f"worker ({how}) exited: {open(logf).read()[-3000:]}"
            time.sleep(0.1)
        assert port, f"worker ({how}) logged no metrics port"
        cmdline = open(f"/proc/{p.pid}/cmdline", "rb").read()
        col.add(f"worker ({how}) /proc/PID/cmdline", cmdline.replace(b"\0", b" "))
        applied = 0
        while time.time() < deadline:
            st, body = http(f"http://127.0.0.1:{port}/metrics")
            m = re.search(r"^ievo_events_applied_total (\d+)", body, re.M)
            applied = int(m.group(1)) if m else 0
            if applied >= 100:
                break
            time.sleep(0.2)
        assert applied >= 100, f"worker ({how}) applied {applied} of the 100 new events"
        for path in ("/metrics", "/healthz", "/readyz", "/nothing-here"):
            st, body = http(f"http://127.0.0.1:{port}{path}")
            col.add(f"worker ({how}) GET {path} ({st})", body)
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
    col.add(f"worker ({how}) stdout", out)
    err = open(logf).read()
    col.add(f"worker ({how}) stderr", err)
    assert p.returncode == 0, f"worker ({how}) exit {p.returncode}: {err[-3000:]}"
    check_x_warning(f"worker ({how})", how, err)
    assert "rdkafka" in err and "CONF" in err.upper(), f"worker ({how}): librdkafka's debug lines missing"
    for f in (stats, series):
        col.add(f, open(f).read())
    return stats


def main():
    wd = Workdir("secrets")
    col = Collected()
    model, vectors = wd("model.safetensors"), wd("vectors.jsonl")
    srcs = sources(wd)
    with Broker(TOPICS, workdir=wd.path) as b:
        for how, args, env in srcs:
            t0 = time.time()
            r = run(col, f"model init ({how})", ["model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3",
                                                 *args], env)
            check_x_warning(f"model init ({how})", how, r.stderr)
            run(col, f"model info ({how})", ["model", "info", model, *args], env)
            r = run(col, f"produce ({how})", ["produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic",
                                              "30:100", "--synth-seed", str(len(how)), *args], env)
            check_x_warning(f"produce ({how})", how, r.stderr)
            # one record that does not decode: its dead-letter copy and headers are searched too
            kcat_produce(b.bootstrap, "user-actions", "bad-user", b"\x00\x00\x00\x00\x01garbage", partition=0)
            worker_background(col, wd, b, model, how, args, env)
            r = run(col, f"worker --print-config ({how})", ["worker", "--print-config", "-b", b.bootstrap,
                                                            "-X", f"model.path={model}", *args], env)
            printed = r.stdout.decode()
            assert "sasl.password=********" in printed and "ssl.key.password=********" in printed, printed
            r = run(col, f"replay ({how})", ["replay", "-b", b.bootstrap, "-X", f"group.id=replay-{how}",
                                             "-X", f"state.dir={wd('replay-' + how)}", "-X", f"model.path={model}",
                                             "-X", "changelog.topic=replay-changelog", "-X", "output.topic=replay-out",
                                             "-X", f"stats.file={wd('replay-stats-' + how)}", *FAST_GROUP, *args], env)
            col.add(f"replay stats ({how})", open(wd("replay-stats-" + how)).read())
            run(col, f"replay --print-config ({how})", ["replay", "--print-config", "-b", b.bootstrap,
                                                        "-X", f"model.path={model}", *args], env)
            r = run(col, f"consume ({how})", ["consume", "-b", b.bootstrap, "-t", "interest-vectors", "--from-beginning",
                                              "--until-eof", *args], env)
            with open(vectors, "wb") as f:
                f.write(r.stdout)
            run(col, f"state offsets ({how})", ["state", "offsets", "-d", wd("state"), *args], env)
            run(col, f"state dump ({how})", ["state", "dump", "-d", wd("state"), "-m", model, *args], env)
            run(col, f"train ({how})", ["train", "-b", b.bootstrap, "-t", "user-actions", "-o", wd(f"trained-{how}"),
                                        "--epochs", "1", "--hidden", "8", "--item-dim", "8", "--out-dim", "8",
                                        "--attn-dim", "8", *args], env)
            run(col, f"eval ({how})", ["eval", "-m", model, "--synthetic", "30:100", "--json", wd(f"eval-{how}.json"),
                                       *args], env)
            col.add(f"eval json ({how})", open(wd(f"eval-{how}.json")).read())
            run(col, f"reference ({how})", ["reference", "-m", model, "--synthetic", "10:30", *args], env)
            run(col, f"report ({how})", ["report", "--vectors", vectors, "-o", wd(f"report-{how}.html"), *args], env)
            col.add(f"report page ({how})", open(wd(f"report-{how}.html")).read())
            run(col, f"config ({how})", ["config", "state.dir", *args], env)
            run(col, f"config --keys ({how})", ["config", "--keys", *args], env)
            r = run(col, f"embed ({how})", ["embed", "--tokenize", *args], env, expect=None, stdin=b"hello world\n")
            if r.returncode != 0:
                log(f"[secrets] embed ({how}) exit {r.returncode} (no USE-lite weights here?): its output is searched all the same")
            # the development broker passes -X to the mock cluster's own handle
            bs = wd(f"bs-{how}")
            p = subprocess.Popen([IEVO, "broker", "--brokers", "1", "--bootstrap-file", bs, *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, **env))
            deadline = time.time() + 20
            while not os.path.exists(bs) and time.time() < deadline and p.poll() is None:
                time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
            col.add(f"broker ({how}) stdout", out)
            col.add(f"broker ({how}) stderr", err)
            log(f"[secrets] {how}: every command ran ({time.time() - t0:.1f} s)")

        # What the worker wrote to Kafka: outputs, dead letters (with their headers), changelogs.
        for t in ("interest-vectors", "user-actions.dlq", "secrets-changelog", "replay-out", "replay-changelog"):
            recs = kcat_records(b.bootstrap, t)
            col.add(f"topic {t}", "\n".join(f"{r['key']!r} {r['value']!r} {r['headers']}" for r in recs))
            if t == "user-actions.dlq":
                assert recs and "ievo.error" in recs[0]["headers"], "no dead letter, or no reason in its headers"

        # Malformed settings: refused (2), the file and line named, the text never shown.
        bad = wd("bad.properties")
        with open(bad, "w") as f:
            f.write(f"# credentials\nbootstrap.servers={b.bootstrap}\nsasl.password: {SASL}\n{KEYPW}\n")
        for cmd in (["worker", "-X", f"model.path={model}"], ["produce", "--synthetic", "1:1"], ["consume", "-e"],
                    ["train", "--synthetic", "10:30", "-o", wd("never")], ["state", "offsets", "-d", wd("state")],
                    ["eval", "-m", model, "--synthetic", "10:30"], ["embed"], ["model", "info", model], ["config"]):
            r = run(col, f"{cmd[0]} -F bad.properties", [*cmd, "-F", bad], {}, expect=2)
            err = r.stderr.decode()
            assert "bad.properties:3: expected key=value" in err and "key: value" in err, err
        # a value with credentials in a URL is a secret whatever its key
        r = run(col, "config -X URL with credentials", ["config", "-X", f"schema.registry.url=https://ievo:{SASL}@sr:8081",
                                                        "state.dir"], {})
        assert "-X schema.registry.url: a secret on the command line" in r.stderr.decode(), r.stderr.decode()
        r = run(col, "worker -X VALUE", ["worker", "-X", SASL], {}, expect=2)
        assert "expected key=value" in r.stderr.decode(), r.stderr.decode()
        with open(bad, "w") as f:
            f.write(f"sasl.password=ok\n{KEYPW}\n")
        r = run(col, "produce -F (a value on its own line)", ["produce", "--synthetic", "1:1", "-F", bad], {}, expect=2)
        assert "bad.properties:2:" in r.stderr.decode(), r.stderr.decode()

    n = col.check()
    log(f"[secrets] {len(col.items)} outputs ({n} bytes) searched: neither secret appears")
    wd.cleanup()


if __name__ == "__main__":
    main()
