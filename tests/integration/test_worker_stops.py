"""Stops within seconds, whatever the worker is doing (an operator's SIGTERM, a pod's grace
period, a person's Ctrl-C), and it says what it waits for meanwhile:

  joining    a second member of a group, before its first assignment, with the default
             session.timeout.ms (the local broker then holds the join for 44 s): it says every
             few seconds what it waits for, naming session.timeout.ms, and a SIGTERM ends it at
             once (exit 0);
  steady     applying a stream: a SIGTERM ends it within seconds, after a final checkpoint;
  no broker  the broker gone with state applied and not checkpointed: the final checkpoint gives
             up at stop.timeout.ms (exit 1, the events are applied again at the next start);
  twice      the same with a long stop.timeout.ms: a second SIGINT ends it at once (exit 130).
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST_GROUP, IEVO, Broker, Workdir, await_outputs, ievo, log


def start(wd, b, model, name, *extra):
    errlog = wd(name + ".log")
    errlog = errlog if not os.path.exists(errlog) else wd(name + "-2.log")
    p = subprocess.Popen([IEVO, "worker", "-b", b.bootstrap, "-X", f"group.id={name}", "-X", f"model.path={model}",
                          "-X", f"state.dir={wd('state-' + name + str(time.time()))}", *extra],
                         stdout=subprocess.DEVNULL, stderr=open(errlog, "w"))
    return p, errlog


def wait_log(p, errlog, text, timeout):
    deadline = time.time() + timeout
    while text not in open(errlog).read():
        assert p.poll() is None, f"the worker exited ({p.returncode}) before '{text}':\n{open(errlog).read()[-2000:]}"
        assert time.time() < deadline, f"no '{text}' within {timeout} s:\n{open(errlog).read()[-2000:]}"
        time.sleep(0.05)


def stop_within(p, sig, seconds, errlog):
    t0 = time.time()
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError(f"still running {seconds} s after {sig.name}:\n{open(errlog).read()[-2000:]}")
    return rc, time.time() - t0


def main():
    wd = Workdir("stops")
    model = wd("model.safetensors")
    ievo("model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "3")
    topics = ["user-actions:4", "interest-vectors:4", "user-actions.dlq:1"]   # changelogs: <group>-state-changelog
    with Broker(topics, workdir=wd.path, control=True) as b:
        # joining: a second member with the default session.timeout.ms (45 s): its first
        # assignment is 44 s away
        first, first_log = start(wd, b, model, "joining")
        wait_log(first, first_log, "assigned user-actions", 30)
        p, errlog = start(wd, b, model, "joining")
        wait_log(p, errlog, "waiting for group joining to assign partitions", 12)
        assert "session.timeout.ms=6000" in open(errlog).read(), "the wait does not say how to shorten it"
        rc, took = stop_within(p, signal.SIGTERM, 5, errlog)
        assert rc == 0, f"exit {rc}:\n{open(errlog).read()[-2000:]}"
        log(f"[stops] joining: said what it waits for, SIGTERM -> exit 0 in {took:.1f} s")
        first.send_signal(signal.SIGKILL)
        first.wait()

        # steady: a stream flowing in
        prod = subprocess.Popen([IEVO, "produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", "100:6000",
                                 "--rate", "1500"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p, errlog = start(wd, b, model, "steady", *FAST_GROUP)
        wait_log(p, errlog, "assigned user-actions", 30)
        time.sleep(1.0)
        rc, took = stop_within(p, signal.SIGTERM, 5, errlog)
        assert rc == 0, f"exit {rc}:\n{open(errlog).read()[-2000:]}"
        prod.wait(timeout=60)
        log(f"[stops] steady: SIGTERM -> exit 0 in {took:.1f} s")

        # no broker: state applied and not yet checkpointed when the broker goes
        for name, extra, sig, second, want_rc, limit in (
                ("nobroker", ["-X", "stop.timeout.ms=3000"], signal.SIGTERM, False, 1, 8),
                ("twice", ["-X", "stop.timeout.ms=600000"], signal.SIGINT, True, 128 + signal.SIGINT, 4)):
            p, errlog = start(wd, b, model, name, *FAST_GROUP, "-X", "commit.interval.ms=600000", *extra)
            wait_log(p, errlog, "assigned user-actions", 30)
            ievo("produce", "-b", b.bootstrap, "-t", "user-actions", "--synthetic", "50:500", "--synth-seed", "7")
            await_outputs(b.bootstrap, 6500 if name == "nobroker" else 7000, 60, alive=lambda: p.poll() is None)
            b.ctl("broker-down", "all")
            if second:
                p.send_signal(sig)
                time.sleep(1.0)
                assert p.poll() is None, "the first signal did not wait for the checkpoint"
            rc, took = stop_within(p, sig, limit, errlog)
            b.ctl("broker-up", "all")
            assert rc == want_rc, f"{name}: exit {rc}, expected {want_rc}:\n{open(errlog).read()[-2000:]}"
            if name == "nobroker":
                assert "did not land in time" in open(errlog).read(), open(errlog).read()[-2000:]
            log(f"[stops] {name}: broker down, {sig.name}{' twice' if second else ''} -> exit {rc} in {took:.1f} s")
    wd.cleanup()


if __name__ == "__main__":
    main()
