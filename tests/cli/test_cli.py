#!/usr/bin/python3
"""test_cli: the command-line vocabulary, walked over every subcommand, and the settings table.

For each command `ievo --help` lists (and each subcommand of `model` and `state`):
  - `ievo CMD --help` and `ievo help CMD` print the same help: usage, options, the settings it
    reads with their defaults, the exit statuses;
  - the shared options mean the same thing everywhere (kcat's -F/--config, -b/--bootstrap,
    -t/--topic, -X, -c/--count, -G/--group, and -e, -m, -o, -h), and a long option has one value
    name in every command;
  - the settings its help lists are exactly the table's keys for that command (`ievo config
    --keys`), with the table's defaults, and an option standing for a key names a real one;
  - an unknown option exits 2 with the option named and one short usage; an option without its
    value exits 2; an enum setting out of its values (log.format=xml) exits 2 naming the key.
Then: `ievo --version`, `ievo help`, unknown commands and subcommands, one properties file
serving commands that read different keys (the others noted, not fatal), and `ievo worker
--print-config` (effective values, librdkafka properties routed per client, secrets masked and
never echoed in an error).

Errors, for every command that can fail at run time: exit 1 with the cause as an ERROR log line
(the one style of a runtime failure, log.format honoured), never the usage style, and the cause
before any summary line; a usage error exits 2 with `ievo CMD: ...`. The messages a person acts
on: a state dir held by another process names it and the fix; a --synthetic spec says what is
wrong with it; eval refuses data whose items the model cannot rank.
"""
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("IEVO_BIN", "ievo")
SOURCE = os.environ.get("IEVO_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
failures = []

# the shared vocabulary: short letter -> long name
CANON = {"F": "config", "b": "bootstrap", "t": "topic", "c": "count", "G": "group", "e": "until-eof", "m": "model",
         "o": "out", "h": "help"}
EXIT_LINE = "exit status: 0 done, 1 runtime failure, 2 usage or configuration error"


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def ievo(*args, env=None, input=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120, env=env, input=input)


def commands():
    """Every leaf command: ["broker", ..., "model init", "model info", "state dump", ...]."""
    r = ievo("--help")
    check(r.returncode == 0 and r.stdout.startswith("usage: ievo"), "ievo --help: %d %s" % (r.returncode, r.stderr))
    names = re.findall(r"^  ([a-z-]+) ", r.stdout.split("commands:", 1)[1], re.M)
    out = []
    for name in names:
        h = ievo(name, "--help")
        if "<command>" in h.stdout.splitlines()[0]:   # a group of subcommands
            subs = re.findall(r"^  ([a-z-]+) ", h.stdout.split("commands:", 1)[1], re.M)
            check(len(subs) >= 2, "%s lists no subcommands" % name)
            out += ["%s %s" % (name, s) for s in subs]
        else:
            out.append(name)
    return out


def table():
    """The settings table: {key: (default, [commands])}."""
    r = ievo("config", "--keys")
    check(r.returncode == 0, "config --keys: %s" % r.stderr)
    rows = {}
    for line in r.stdout.splitlines():
        name, _type, default, _range, cmds, _secret = line.split("\t")
        rows[name] = (default, [c.strip() for c in cmds.split(",")])
    return rows


def parse_help(text):
    """(options [(short, long, arg, setting)], settings {key: default})."""
    opts = []
    for line in text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0].splitlines():
        m = re.match(r"^  (?:-(\w), --([\w-]+)|-(\w)|    --([\w-]+))(?: (\S+))?\s{2,}(.*)$", line)
        if not m:
            continue
        short, long_ = m.group(1) or m.group(3), m.group(2) or m.group(4)
        setting = re.search(r"\(-X ([a-z0-9_.]+)\)$", m.group(6))
        opts.append((short, long_, m.group(5), setting.group(1) if setting else None))
    settings = {}
    block = text.split("settings it reads", 1)[1].split("\n", 1)[1]
    for line in block.splitlines():
        m = re.match(r"^  ([a-z0-9_.]+)\s+(.*)$", line)
        if not m:
            break
        settings[m.group(1)] = m.group(2).strip()
    return opts, settings


def family(cmd):
    """The table's name for a command's settings ('state dump' -> 'state'); None: only shared keys."""
    first = cmd.split()[0]
    return first if first in ("worker", "replay", "consume", "produce", "train", "eval", "reference", "state",
                              "embed") else None


def check_command(cmd, rows, args_of):
    argv = cmd.split()
    h = ievo(*argv, "--help")
    check(h.returncode == 0 and h.stdout.startswith("usage: ievo %s " % cmd), "%s --help: %d %r" % (cmd, h.returncode, h.stdout[:80]))
    check(EXIT_LINE in h.stdout, "%s --help does not state the exit statuses" % cmd)
    hh = ievo("help", *argv)
    check(hh.returncode == 0 and hh.stdout == h.stdout, "ievo help %s differs from %s --help" % (cmd, cmd))
    opts, settings = parse_help(h.stdout)
    seen = {(o[0], o[1]) for o in opts}
    check(("F", "config") in seen and (None, None) not in seen, "%s: -F/--config missing" % cmd)
    check(any(o[0] == "X" and o[2] == "KEY=VALUE" for o in opts), "%s: -X KEY=VALUE missing" % cmd)
    for short, long_, arg, setting in opts:
        if short in CANON:
            check(long_ == CANON[short], "%s: -%s is --%s, not --%s" % (cmd, short, long_, CANON[short]))
        if long_ in CANON.values():
            want = [s for s, l in CANON.items() if l == long_][0]
            check(short == want, "%s: --%s must be -%s as everywhere" % (cmd, long_, want))
        if long_:
            base = (arg or "").split("[")[0]
            prev = args_of.setdefault(long_, (base, cmd))
            check(prev[0] == base, "--%s takes %s in %s but %s in %s" % (long_, base, cmd, prev[0], prev[1]))
        if setting:
            check(setting in rows or setting in ("bootstrap.servers", "group.id"), "%s: (-X %s) is no setting" % (cmd, setting))
    fam = family(cmd)
    want = {k for k, (_, cmds) in rows.items() if cmds == ["every command"] or (fam and (fam in cmds or
                                                                                             (fam == "replay" and "worker" in cmds)))}
    check(set(settings) == want, "%s: its help and the settings table disagree on %s" % (cmd, sorted(set(settings) ^ want)))
    for k, shown in settings.items():
        default = rows.get(k, ("",))[0]
        check(not default or shown == default, "%s: %s's default %r in the help, %r in the table" % (cmd, k, shown, default))
    # usage errors: exit 2, the offending argument named, one short usage
    r = ievo(*argv, "--no-such-option")
    check(r.returncode == 2 and "unknown option '--no-such-option'" in r.stderr and r.stderr.count("usage:") == 1 and
          ("ievo help %s" % cmd) in r.stderr, "%s --no-such-option: %d %r" % (cmd, r.returncode, r.stderr))
    with_value = [o for o in opts if o[2] and o[1] and o[0] != "X"]
    if with_value:
        flag = "--" + with_value[0][1]
        r = ievo(*argv, flag)
        check(r.returncode == 2 and ("'%s' needs a value" % flag) in r.stderr, "%s %s: %d %r" % (cmd, flag, r.returncode, r.stderr))
    r = ievo(*argv, "-X", "log.format=xml")
    check(r.returncode == 2 and "log.format" in r.stderr and "'xml'" in r.stderr, "%s -X log.format=xml: %d %r" %
          (cmd, r.returncode, r.stderr))


def check_top_level():
    r = ievo("--version")
    check(r.returncode == 0 and re.match(r"ievo \d+\.\d+\.\d+ \(librdkafka ", r.stdout), "--version: %r" % r.stdout)
    r = ievo()
    check(r.returncode == 2 and "usage: ievo" in r.stderr, "no command: %d" % r.returncode)
    r = ievo("frobnicate")
    check(r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, "unknown command: %r" % r.stderr)
    r = ievo("help")
    check(r.returncode == 0 and "commands:" in r.stdout, "ievo help: %d" % r.returncode)
    for group in ("model", "state"):
        r = ievo(group, "bogus")
        check(r.returncode == 2 and "unknown subcommand 'bogus'" in r.stderr, "%s bogus: %d %r" % (group, r.returncode, r.stderr))
        r = ievo(group)
        check(r.returncode == 2 and "usage: ievo %s" % group in r.stderr, "%s alone: %d" % (group, r.returncode))
    r = ievo("config", "input.topic")
    check(r.returncode == 0 and "user-actions" in r.stdout and "read by: worker" in r.stdout, "config KEY: %r" % r.stdout)
    r = ievo("config", "no.such.key")
    check(r.returncode == 2 and "no.such.key" in r.stderr, "config unknown key: %d" % r.returncode)


ERROR_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR ([\w -]+): (.+)$", re.M)


def check_runtime_failure(args, what, want=None, env=None):
    """exit 1, the cause in one ERROR log line (containing want), no usage-style line, and the
    cause before any summary line."""
    r = ievo(*args, env=env)
    errors = ERROR_LINE.findall(r.stderr)
    check(r.returncode == 1 and errors and not re.search(r"^ievo [\w -]+: |^usage:", r.stderr, re.M),
          "%s: exit %d (want 1 and an ERROR line): %r" % (what, r.returncode, r.stderr[-600:]))
    if want:
        check(any(want in e[1] for e in errors), "%s: no ERROR line says %r: %r" % (what, want, r.stderr[-600:]))
    summary = r.stderr.find("failed (the error above)")
    check(summary < 0 or r.stderr.find(" ERROR ") < summary, "%s: the summary before the cause: %r" % (what, r.stderr))
    return r


def plain_file(tmp):
    """A plain file: no directory can be made below it."""
    path = os.path.join(tmp, "plain-file")
    open(path, "w").close()
    return path


def check_runtime_failures(tmp):
    none = os.path.join(tmp, "none.safetensors")
    for args, what, want in [
            (["model", "info", none], "a missing model file", None),
            (["model", "init", "-o", os.path.join(tmp, "no", "dir", "m.st"), "--vocab-synthetic"], "model init", None),
            (["eval", "-m", none, "--synthetic", "5:10"], "eval of no model", None),
            (["broker-ctl", "--control", os.path.join(tmp, "nobody.sock"), "status"], "no broker", None),
            (["broker", "--control", os.path.join(tmp, "no", "dir", "c.sock")], "broker", "--control"),
            (["reference", "-m", none, "--jsonl", os.path.join(tmp, "no.jsonl")], "reference of no model", None),
            (["train", "--jsonl", os.path.join(tmp, "no.jsonl"), "-o", os.path.join(tmp, "t.st")], "train", "no.jsonl"),
            (["produce", "-b", "127.0.0.1:1", "--jsonl", os.path.join(tmp, "no.jsonl")], "produce", "no.jsonl"),
            (["worker", "-b", "127.0.0.1:1", "-m", none], "worker of no model", "none.safetensors"),
            (["replay", "-b", "127.0.0.1:1", "-m", none], "replay of no model", "none.safetensors"),
            (["embed", "--text-encoder", os.path.join(tmp, "no-encoder")], "embed", "fetch-use-lite.sh"),
            (["report", "--out", os.path.join(tmp, "r.html"), "--series", os.path.join(tmp, "no.jsonl")], "report", None),
            (["consume", "-b", "127.0.0.1:1", "-t", "t"], "consume of no cluster", "bootstrap.servers"),
            (["demo", "--dir", os.path.join(plain_file(tmp), "sub")], "demo", "--dir")]:
        check_runtime_failure(args, what, want)
    # JSON logs: the failure is one JSON line like every other
    r = ievo("train", "--jsonl", os.path.join(tmp, "no.jsonl"), "-o", os.path.join(tmp, "t.st"), "-X", "log.format=json")
    lines = [json.loads(l) for l in r.stderr.splitlines()]
    check(r.returncode == 1 and any(l["level"] == "ERROR" and "no.jsonl" in l["msg"] for l in lines),
          "train, log.format=json: %d %r" % (r.returncode, r.stderr))


def check_actionable(tmp):
    """The messages a person acts on: what is wrong and what to do."""
    for spec, want in [("99999999999:10", "at most 4294967295 users"), ("100:10", "EVENTS >= USERS"),
                       ("0:10", "at least 1 user")]:
        for cmd in (["produce", "-b", "127.0.0.1:1"], ["eval", "-m", "m.st"], ["train", "-o", "t.st"]):
            r = ievo(*cmd, "--synthetic", spec)
            check(r.returncode == 2 and want in r.stderr and r.stderr.startswith("ievo %s: " % cmd[0]),
                  "%s --synthetic %s: %d %r" % (cmd[0], spec, r.returncode, r.stderr))
    model = os.path.join(tmp, "syn.st")
    r = ievo("model", "init", "-o", model, "--vocab-synthetic", "--init-seed", "3")
    check(r.returncode == 0, "model init: %r" % r.stderr)
    # a state dir held by another process: RocksDB's fcntl lock on DIR/LOCK, taken here as RocksDB does
    state = os.path.join(tmp, "locked-state")
    os.makedirs(state)
    with open(os.path.join(state, "LOCK"), "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = "in use by another process (pid %d)" % os.getpid()
        for args in (["worker", "-b", "127.0.0.1:1", "-m", model, "-X", "state.dir=" + state],
                     ["replay", "-b", "127.0.0.1:1", "-m", model, "-X", "state.dir=" + state]):
            r = check_runtime_failure(args, "%s on a locked state dir" % args[0], held)
            check("IO error" not in r.stderr and "give this one a state.dir of its own" in r.stderr,
                  "%s on a locked state dir: %r" % (args[0], r.stderr))
        # ievo state opens read-only and takes no lock: here it finds no store in the dir
        r = ievo("state", "offsets", "-X", "state.dir=" + state)
        check(r.returncode == 1 and "holds no state store" in r.stderr and "IO error" not in r.stderr,
              "state offsets on a dir without a store: %d %r" % (r.returncode, r.stderr))
    # eval of data whose items the model has never seen: refused, not zeros
    jsonl = os.path.join(tmp, "other.jsonl")
    with open(jsonl, "w") as f:
        for u in range(20):
            for k in range(5):
                f.write(json.dumps({"user_id": "u%d" % u, "item_id": "movie-%d" % (u * 5 + k), "action": "view",
                                    "ts": 1700000000000 + u * 1000 + k}) + "\n")
    r = check_runtime_failure(["eval", "-m", model, "--jsonl", jsonl], "eval of another vocabulary", "cannot rank")
    check(r.stdout == "" and "100 of 100 events" in r.stderr and "--max-unknown" in r.stderr,
          "eval of another vocabulary printed a result: %r %r" % (r.stdout, r.stderr))
    r = ievo("eval", "-m", model, "--jsonl", jsonl, "--max-unknown", "1")
    check(r.returncode == 0 and re.search(r" WARN  eval: 100 of 100 events .* cannot rank", r.stderr),
          "eval --max-unknown 1: %d %r" % (r.returncode, r.stderr))
    r = ievo("eval", "-m", model, "--synthetic", "50:500")
    check(r.returncode == 0 and "cannot rank" not in r.stderr, "eval of its own vocabulary: %d %r" % (r.returncode, r.stderr))


def check_shared_file(tmp):
    """One properties file for every command: keys a command does not read are noted."""
    props = os.path.join(tmp, "shared.properties")
    with open(props, "w") as f:
        f.write("# the worker's file\nbootstrap.servers=127.0.0.1:1\ngroup.id=g\ninput.topic=events\n"
                "state.dir=%s\nmodel.path=%s\nlog.level=warn\n" % (os.path.join(tmp, "state"), os.path.join(tmp, "m.st")))
    r = ievo("state", "offsets", "-F", props)   # reads state.dir from the file: a dir that does not exist
    check(r.returncode == 1 and os.path.join(tmp, "state") in r.stderr and not os.path.exists(os.path.join(tmp, "state")),
          "state offsets -F shared: %d %r" % (r.returncode, r.stderr))
    r = ievo("config", "-F", props, "-X", "log.level=info", "input.topic")
    check(r.returncode == 0 and "ignoring 5 settings" in r.stderr and "model.path" in r.stderr and
          "bootstrap.servers" in r.stderr, "config -F shared: %d %r" % (r.returncode, r.stderr))
    r = ievo("worker", "-F", props, "--print-config")
    check(r.returncode == 0 and "input.topic=events\n" in r.stdout and "log.level=warn\n" in r.stdout,
          "worker -F shared --print-config: %d %r" % (r.returncode, r.stderr))
    r = ievo("model", "init", "-F", props, "-o", os.path.join(tmp, "m.st"), "--vocab-synthetic")
    check(r.returncode == 0, "model init -F shared: %d %r" % (r.returncode, r.stderr))
    r = ievo("model", "info", "-F", props, "-X", "log.format=json", os.path.join(tmp, "m.st"))
    check(r.returncode == 0 and r.stdout.startswith("{"), "model info -F shared: %d %r" % (r.returncode, r.stderr))


def check_print_config(tmp):
    env = dict(os.environ, IEVO_CFG_SASL_PASSWORD="hunter2-env")
    r = ievo("worker", "--print-config", "-m", "/m.safetensors", "-b", "k:9092", "-G", "g7",
             "-X", "consumer.fetch.wait.max.ms=5", "-X", "linger.ms=3", "-X", "sasl.username=bob",
             "-X", "producer.ssl.key.password=hunter2-x", "-X", "state.cache.bytes=2097152", env=env)
    out = r.stdout
    check(r.returncode == 0, "print-config: %d %r" % (r.returncode, r.stderr))
    check("hunter2" not in out + r.stderr and "bob" not in out, "a secret printed:\n" + out)
    check("model.path=/m.safetensors\n" in out and "state.cache.bytes=2097152\n" in out and
          "changelog.topic=g7-state-changelog\n" in out and "batch.max.events=2048\n" in out, "ievo keys:\n" + out)
    consumer = out.split("for the consumer", 1)[-1].split("for the producers", 1)[0]
    producer = out.split("for the producers", 1)[-1]
    check("fetch.wait.max.ms=5\n" in consumer and "linger.ms" not in consumer and "group.id=g7\n" in consumer,
          "consumer properties:\n" + consumer)
    check("linger.ms=3\n" in producer and "fetch.wait.max.ms" not in producer and "group.id" not in producer and
          "ssl.key.password=********\n" in producer and "sasl.password=********\n" in producer, "producer properties:\n" + producer)
    table_keys = set(table())
    printed = set(re.findall(r"^#? ?([a-z][a-z0-9_.]+)(?:=| is not set)", out.split("# librdkafka", 1)[0], re.M))
    check(printed == {k for k in table_keys if "worker" in table()[k][1] or table()[k][1] == ["every command"]},
          "print-config lists %s" % sorted(printed))
    for args, key, secret in [(["-X", "foo.secret=hunter2"], "foo.secret", "hunter2"),
                              (["-X", "input.format=xml"], "input.format", None),
                              (["-X", "batch.timeout.ms=5s"], "batch.timeout.ms", None)]:
        r = ievo("worker", "--print-config", "-m", "/m", *args)
        check(r.returncode == 2 and key in r.stderr and (not secret or secret not in r.stderr + r.stdout),
              "worker %s: %d %r" % (" ".join(args), r.returncode, r.stderr))
    r = ievo("worker", "--print-config")
    check(r.returncode == 2 and "model.path" in r.stderr, "no model.path: %d %r" % (r.returncode, r.stderr))


def main():
    rows = table()
    check({"log.level", "log.format", "input.topic", "model.path"} <= set(rows), "table keys: %s" % sorted(rows))
    cmds = commands()
    check({"worker", "replay", "consume", "produce", "model init", "model info", "state dump", "config"} <= set(cmds),
          "commands: %s" % cmds)
    args_of = {}
    for cmd in cmds:
        check_command(cmd, rows, args_of)
    check_top_level()
    with tempfile.TemporaryDirectory() as tmp:
        check_runtime_failures(tmp)
        check_actionable(tmp)
        check_shared_file(tmp)
        check_print_config(tmp)
    if failures:
        print("test_cli: %d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("test_cli: %d commands, %d settings: ok" % (len(cmds), len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
