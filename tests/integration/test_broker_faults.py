"""Fault injection through the local broker's control channel (`ievo broker --control`,
`ievo broker-ctl`, docs/faults.md): produce with kcat through each fault and check that nothing
acknowledged is lost, reading everything back with kcat.

1. Control basics: help, errors for unknown commands and bad arguments, status, a second broker
   refused on a live socket.
2. Broker down, then up (leaders pinned with partition-leader): the partitions it leads stall
   (kcat keeps them queued), the others are written; after broker-up every message is
   acknowledged and each is in the log once.
3. Produce request errors: retriable ones cluster-wide (NOT_LEADER_FOR_PARTITION,
   REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS) and a dropped connection on one broker
   (broker-request-errors ... _TRANSPORT) are retried and everything lands once; a permanent one
   (MSG_SIZE_TOO_LARGE) makes kcat report the failure, and that message is not in the log.
4. Added RTT on a partition leader shows as the same added latency on the client's
   ProduceResponse (kcat's own measurement) and on the produce's wall time.
5. A partition leader move (the producer follows it) and a topic error in Metadata (kcat -L
   reports it; NO_ERROR clears it).
6. A coordinator move with a consumer group running: the consumer is told NOT_COORDINATOR,
   finds the new coordinator, keeps consuming and commits there; a second consumer of the group
   resumes from those commits. Nothing produced is missing from what the group consumed.
7. Clean shutdown removes the control socket.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, IEVO, Broker, Workdir, kcat_records, log

T_START = time.time()


def produce(bs, topic, values, extra=(), timeout=60):
    """kcat -P of keyed values (key = value); returns (exit code, stderr text, seconds)."""
    data = "".join(f"{v}:{v}\n" for v in values).encode()
    t0 = time.time()
    r = subprocess.run(["kcat", "-P", "-b", bs, "-t", topic, "-K:", *extra], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stderr.decode(errors="replace"), time.time() - t0


def values_in(bs, topic):
    return [r["value"].decode() for r in kcat_records(bs, topic)]


def check_exactly_once(bs, topic, expected, what):
    got = values_in(bs, topic)
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    dups = len(got) - len(set(got))
    assert not missing, f"{what}: {len(missing)} acknowledged message(s) lost, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{what}: unexpected messages {sorted(extra)[:5]}"
    assert dups == 0, f"{what}: {dups} duplicate(s)"
    log(f"{what}: all {len(expected)} messages read back once")


def broker_addrs(bs):
    """{broker id: "host:port"} from kcat's metadata."""
    r = subprocess.run(["kcat", "-L", "-J", "-b", bs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    return {b["id"]: b["name"] for b in json.loads(r.stdout)["brokers"]}


def pin_leaders(b, topic, leaders):
    """Deterministic leaders (the mock picks them at random), so each fault hits what it should."""
    for p, l in enumerate(leaders):
        b.ctl("partition-leader", topic, p, l)
    assert b.status()["topics"][topic]["leaders"] == leaders


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_control_basics(b, wd):
    assert "broker-down" in b.ctl("help")
    r = b.ctl("no-such-command", check=False)
    assert r.startswith("error unknown command"), r
    for bad in (["broker-down", "9"], ["rtt", "1", "-5"], ["request-errors", "Produce", "NOT_AN_ERROR"],
                ["request-errors", "NoSuchApi", "REQUEST_TIMED_OUT"], ["partition-leader", "missing", "0", "1"],
                ["partition-leader", "down", "6", "1"], ["coordinator", "cluster", "g", "1"]):
        r = b.ctl(*bad, check=False)
        assert r.startswith("error "), f"{bad}: {r}"
    # Exit status 1 for an error reply, 3 when nobody listens.
    r = subprocess.run([IEVO, "broker-ctl", "--control", b.control_path, "broker-up", "0"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 1, r
    r = subprocess.run([IEVO, "broker-ctl", "--control", wd("nobody.sock"), "status"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"cannot connect" in r.stderr, r
    # Several commands over one connection, from stdin.
    r = subprocess.run([IEVO, "broker-ctl", "--control", b.control_path, "-"], input=b"help\n# comment\nstatus\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and len(lines) == 2 and all(l.startswith("ok ") for l in lines), r
    st = b.status()
    assert sorted(st["brokers"]) == [1, 2, 3] and all(x["up"] for x in st["brokers"].values()), st
    assert st["topics"]["down"]["partitions"] == 6 and st["topics"]["grp"]["partitions"] == 4, st
    # A second broker on the same live socket is refused, and leaves the socket alone.
    r = subprocess.run([IEVO, "broker", "--brokers", "1", "--control", b.control_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode != 0 and b"another process" in r.stderr, r
    assert b.ctl("status").startswith("ok ")
    log("control basics: ok")


def test_broker_down_up(b):
    bs = b.bootstrap
    leaders, victim = [1, 2, 3, 1, 2, 3], 1
    pin_leaders(b, "down", leaders)
    stalled = [p for p, l in enumerate(leaders) if l == victim]
    # kcat gives up when every broker it knows is down ("N/N brokers are down: terminating"),
    # which a lone bootstrap connection to the victim would be: bootstrap it from the others.
    bs_up = ",".join(a for i, a in sorted(broker_addrs(bs).items()) if i != victim)
    log(f"broker down: leaders {leaders}, taking broker {victim} down (leads partitions {stalled})")
    before = [f"down-a{i:04d}" for i in range(100)]
    rc, err, _ = produce(bs, "down", before)
    assert rc == 0, err
    end0 = b.status()["topics"]["down"]["end"]
    b.ctl("broker-down", victim)
    during = [f"down-b{i:04d}" for i in range(300)]
    data = "".join(f"{v}:{v}\n" for v in during).encode()
    p = subprocess.Popen(["kcat", "-P", "-b", bs_up, "-t", "down", "-K:", "-X", "message.timeout.ms=60000",
                          "-X", "reconnect.backoff.max.ms=500"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stdin.write(data)
    p.stdin.close()
    try:
        # The partitions of the other brokers take their messages; the victim's cannot.
        last = {}

        def others_written():
            last["status"] = b.ctl("status")
            end = b.status()["topics"]["down"]["end"]
            return all(end[q] is not None for q in range(6) if q not in stalled) and \
                sum(end[q] for q in range(6) if q not in stalled) > sum(end0[q] for q in range(6) if q not in stalled)
        try:
            wait_until(others_written, 20, "the partitions of the brokers still up to be written")
        except AssertionError:
            log(f"last status: {last.get('status')}; end offsets before: {end0}")
            raise
        end = b.status()["topics"]["down"]["end"]
        assert all(end[q] is None for q in stalled), f"end offsets {end}: the down broker's partitions answered"
        assert p.poll() is None, "kcat finished although a partition leader was down"
        time.sleep(0.5)
        assert p.poll() is None, "kcat finished although a partition leader was down"
        b.ctl("broker-up", victim)
        t0 = time.time()
        rc = p.wait(timeout=45)
        err = p.stderr.read().decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, f"kcat exited {rc} after broker-up: {err[-2000:]}"
    assert "Connection refused" in err or "Disconnected" in err or "transport failure" in err, \
        "kcat never noticed the broker was down"
    log(f"broker down: kcat finished {time.time() - t0:.1f} s after broker-up")
    check_exactly_once(bs, "down", before + during, "broker down/up")
    assert all(x["up"] for x in b.status()["brokers"].values())


def test_request_errors(b):
    bs = b.bootstrap
    pin_leaders(b, "errs", [1, 2, 3, 1])
    # Cluster-wide errors for the next Produce requests, whichever broker gets them, and a dropped
    # connection on broker 1; kcat is bootstrapped from broker 2 so that it never has every
    # connection down at once (it would quit).
    b.ctl("request-errors", "Produce", "NOT_LEADER_FOR_PARTITION", "REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS")
    b.ctl("broker-request-errors", 1, "Produce", "_TRANSPORT")
    bs2 = broker_addrs(bs)[2]
    vals = [f"errs-a{i:04d}" for i in range(200)]
    rc, err, secs = produce(bs2, "errs", vals, ["-X", "debug=msg"])
    assert rc == 0, err[-3000:]
    seen = sorted(set(re.findall(r"encountered error: ([^(]+?) \(actions", err)))
    log(f"request errors: kcat saw {seen} and retried ({secs:.2f} s)")
    assert any(s.startswith("Broker: ") for s in seen), f"no injected broker error reached kcat: {err[-3000:]}"
    assert "Local: Broker transport failure" in seen, f"the connection to broker 1 was not dropped: {seen}"
    # A permanent error: the one message is reported failed, and is not in the log.
    b.ctl("request-errors", "Produce", "MSG_SIZE_TOO_LARGE")
    rc, err, _ = produce(bs2, "errs", ["errs-rejected"])
    assert rc != 0 and "Delivery failed" in err and "too large" in err, (rc, err)
    after = [f"errs-b{i:04d}" for i in range(50)]
    rc, err, _ = produce(bs2, "errs", after)
    assert rc == 0, err
    # Queued errors can be dropped before they are used.
    b.ctl("request-errors", "Produce", "MSG_SIZE_TOO_LARGE", "MSG_SIZE_TOO_LARGE")
    b.ctl("clear-errors", "Produce")
    rc, err, _ = produce(bs2, "errs", ["errs-c0000"])
    assert rc == 0, f"clear-errors left errors behind: {err}"
    check_exactly_once(bs, "errs", vals + after + ["errs-c0000"], "request errors")


def produce_rtt_ms(bs, value):
    """One message to partition 0; returns (the ProduceResponse rtt kcat measured, wall ms)."""
    rc, err, secs = produce(bs, "rtt", [value], ["-p", "0", "-X", "debug=protocol"])
    assert rc == 0, err
    m = re.findall(r"Received ProduceResponse \([^)]*rtt ([0-9.]+)ms\)", err)
    assert m, err[-2000:]
    return float(m[-1]), secs * 1000


def test_rtt(b):
    bs = b.bootstrap
    leader = b.status()["topics"]["rtt"]["leaders"][0]
    base = [produce_rtt_ms(bs, f"rtt-a{i}") for i in range(3)]
    added = 300
    b.ctl("rtt", leader, added)
    assert b.status()["brokers"][leader]["rtt"] == added
    slow = [produce_rtt_ms(bs, f"rtt-b{i}") for i in range(2)]
    b.ctl("rtt", "all", 0)
    resp_base, resp_slow = statistics.median(x[0] for x in base), statistics.median(x[0] for x in slow)
    wall_base, wall_slow = statistics.median(x[1] for x in base), statistics.median(x[1] for x in slow)
    log(f"rtt {added} ms on broker {leader} (leader of rtt [0]): ProduceResponse {resp_base:.1f} -> {resp_slow:.1f} ms, "
        f"kcat wall {wall_base:.0f} -> {wall_slow:.0f} ms")
    assert resp_slow - resp_base >= added * 0.95, (base, slow)
    assert resp_slow - resp_base < added + 1000, (base, slow)
    assert wall_slow - wall_base >= added * 0.95, (base, slow)
    check_exactly_once(bs, "rtt", [f"rtt-a{i}" for i in range(3)] + [f"rtt-b{i}" for i in range(2)], "rtt")


def test_leader_move_and_topic_error(b):
    bs = b.bootstrap
    leaders = b.status()["topics"]["rtt"]["leaders"]
    new = leaders[0] % 3 + 1
    b.ctl("partition-leader", "rtt", 0, new)
    assert b.status()["topics"]["rtt"]["leaders"][0] == new
    rc, err, _ = produce(bs, "rtt", ["rtt-c0"], ["-p", "0"])
    assert rc == 0, err
    b.ctl("topic-error", "rtt", "UNKNOWN_TOPIC_OR_PART")
    st = b.status()["topics"]["rtt"]
    assert st["partitions"] == 0, st
    r = subprocess.run(["kcat", "-L", "-b", bs, "-t", "rtt"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert b"unknown topic" in r.stdout.lower() or b"Unknown topic" in r.stdout, r.stdout
    b.ctl("topic-error", "rtt", "NO_ERROR")
    assert b.status()["topics"]["rtt"]["partitions"] == 3
    rc, err, _ = produce(bs, "rtt", ["rtt-c1"], ["-p", "0"])
    assert rc == 0, err
    log(f"leader move: rtt [0] {leaders[0]} -> {new}; topic error set and cleared")
    check_exactly_once(bs, "rtt", [f"rtt-a{i}" for i in range(3)] + [f"rtt-b{i}" for i in range(2)] + ["rtt-c0", "rtt-c1"],
                       "leader move")


class Consumer:
    """A kcat balanced consumer of the group, its values on a file (unbuffered)."""

    def __init__(self, wd, bs, group, topic, name, extra=()):
        self.out_path, self.err_path = wd(name + ".out"), wd(name + ".err")
        self.proc = subprocess.Popen(
            ["kcat", "-b", bs, "-G", group, topic, "-u", "-f", "%s\n", *FAST_GROUP, "-X", "auto.offset.reset=earliest",
             "-X", "auto.commit.interval.ms=300", *extra],
            stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"))

    def values(self):
        return open(self.out_path).read().split()

    def err(self):
        return open(self.err_path, errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def test_coordinator_move(b, wd):
    bs, group = b.bootstrap, "g-move"
    b.ctl("coordinator", "group", group, 1)
    assert b.status()["coordinators"][("group", group)] == 1
    batch1 = [f"grp-a{i:04d}" for i in range(100)]
    batch2 = [f"grp-b{i:04d}" for i in range(100)]
    batch3 = [f"grp-c{i:04d}" for i in range(50)]
    assert produce(bs, "grp", batch1)[0] == 0
    c1 = Consumer(wd, bs, group, "grp", "c1", ["-X", "debug=cgrp"])
    try:
        wait_until(lambda: len(c1.values()) >= len(batch1), 30, "the first consumer to take batch 1")
        assert re.search(r"coordinator set to broker \S+/1\b", c1.err()), "consumer 1 did not start on broker 1"
        b.ctl("coordinator", "group", group, 2)
        assert produce(bs, "grp", batch2)[0] == 0
        wait_until(lambda: "changing coordinator 1 -> 2" in c1.err(), 20, "the consumer to follow the coordinator")
        wait_until(lambda: len(c1.values()) >= len(batch1 + batch2), 30, "the first consumer to take batch 2")
        wait_until(lambda: re.search(r"GroupCoordinator/2: OffsetCommit .* returned: Success", c1.err()), 20,
                   "an offset commit on the new coordinator")
        assert "Not coordinator" in c1.err()
    finally:
        rc = c1.stop()
    assert rc == 0, c1.err()[-2000:]
    got1 = c1.values()
    log(f"coordinator move: consumer 1 took {len(got1)} messages across the move 1 -> 2")
    assert set(got1) == set(batch1 + batch2), "consumer 1 missed messages"
    # The group resumes from the offsets committed on the new coordinator.
    assert produce(bs, "grp", batch3)[0] == 0
    r = subprocess.run(["kcat", "-b", bs, "-G", group, "grp", "-e", "-q", "-f", "%s\n", *FAST_GROUP,
                        "-X", "auto.offset.reset=earliest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    got2 = r.stdout.decode().split()
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    missing = set(batch1 + batch2 + batch3) - set(got1) - set(got2)
    assert not missing, f"coordinator move: {len(missing)} messages consumed by nobody, e.g. {sorted(missing)[:5]}"
    redelivered = set(got2) & set(got1)
    assert not redelivered, f"commits lost in the move: {len(redelivered)} re-delivered, e.g. {sorted(redelivered)[:5]}"
    assert sorted(got2) == sorted(batch3), f"consumer 2 got {len(got2)} messages, expected batch 3 ({len(batch3)})"
    check_exactly_once(bs, "grp", batch1 + batch2 + batch3, "coordinator move")


def main():
    wd = Workdir("faults")
    b = Broker(["down:6", "errs:4", "rtt:3", "grp:4"], brokers=3, workdir=wd.path, control=True)
    try:
        assert os.path.exists(b.control_path)
        for name, fn in (("control basics", lambda: test_control_basics(b, wd)),
                         ("broker down/up", lambda: test_broker_down_up(b)),
                         ("request errors", lambda: test_request_errors(b)),
                         ("rtt", lambda: test_rtt(b)),
                         ("leader move, topic error", lambda: test_leader_move_and_topic_error(b)),
                         ("coordinator move", lambda: test_coordinator_move(b, wd))):
            t0 = time.time()
            fn()
            log(f"== {name}: passed in {time.time() - t0:.1f} s")
    except BaseException:
        log("broker log (tail):\n" + open(b.log_path, errors="replace").read()[-4000:])
        raise
    finally:
        b.stop()
    assert b.proc.returncode == 0, f"broker exited {b.proc.returncode}"
    assert not os.path.exists(b.control_path), "the control socket outlived the broker"
    log(f"test_broker_faults: ok ({time.time() - T_START:.1f} s)")
    wd.cleanup()


if __name__ == "__main__":
    main()
