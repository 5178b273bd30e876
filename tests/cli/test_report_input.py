"""`ievo report` trusts neither the sizes its input claims nor its input staying the same.

1. Sizes: the per-event arrays are sized by the event numbers the lines claim. Three short lines
   claiming 100 million events each must be refused at once with a message, the process staying
   under 200 MB, not answered by allocating gigabytes (or an "out of memory").
2. Two reads: the vectors file is read twice (counts, then the shown users' data). A file that
   changes in between (here a FIFO, which gives other bytes on its second opening) is an error
   saying so: a vector of another size, more lines of a user, a larger event number, a new user.
   A FIFO giving the same bytes twice makes a page.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import IEVO, log


def line(user, events, dim=2, ts=None):
    return json.dumps({"user_id": user, "events": events, "ts": ts if ts is not None else 1000 * events,
                       "drift": 0.1, "vector": [0.5] * dim, "model": "m"}) + "\n"


def report(vectors, out, serve=None):
    """Runs `ievo report`; serve(pid), when given, runs beside it (feeding a FIFO)."""
    t0 = time.time()
    p = subprocess.Popen([IEVO, "report", "--vectors", vectors, "-o", out], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    t = threading.Thread(target=serve, args=(p.pid,), daemon=True) if serve else None
    if t:
        t.start()
    _, err = p.communicate(timeout=120)
    if t:
        t.join(10)
    return p.returncode, err.decode(errors="replace"), time.time() - t0


def fifo_twice(path, first, second):
    """A server for report(): `first` to the first reading of the FIFO at path, `second` to the
    next. The second is only opened once the first reader has closed the FIFO (its descriptor
    gone from /proc/PID/fd): opened earlier, it would feed the first reader."""
    def holds(pid):
        fds = f"/proc/{pid}/fd"
        try:
            return any(os.readlink(os.path.join(fds, x)) == path for x in os.listdir(fds))
        except (FileNotFoundError, ProcessLookupError):
            return False

    def serve(pid):
        for i, data in enumerate((first, second)):
            if i:
                deadline = time.time() + 10
                while holds(pid) and time.time() < deadline:
                    time.sleep(0.01)
            try:
                with open(path, "w") as f:
                    f.write(data)
            except BrokenPipeError:
                return   # the report stopped reading: it found what it looked for
    return serve


def main():
    d = tempfile.mkdtemp(prefix="ievo-report-input-")
    out = os.path.join(d, "page.html")

    # 1. Sizes claimed by three short lines.
    big = os.path.join(d, "big.jsonl")
    with open(big, "w") as f:
        for u in ("a", "b", "c"):
            f.write(line(u, 100_000_000, dim=64))
    t0 = time.time()
    p = subprocess.Popen([IEVO, "report", "--vectors", big, "-o", out], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    rc, secs, peak_mb = os.waitstatus_to_exitcode(status), time.time() - t0, usage.ru_maxrss / 1024
    assert rc == 1 and "would take more than" in err and "out of memory" not in err, (rc, err[-2000:])
    assert peak_mb < 200, f"the report grew to {peak_mb:.0f} MB before refusing"
    log(f"[report-input] claimed sizes refused in {secs:.2f} s at {peak_mb:.0f} MB: "
        f"{err.strip().splitlines()[-1][:160]}")

    # 2. The file changes between the two reads.
    base = "".join(line("u1", k) for k in range(1, 6)) + "".join(line("u2", k) for k in range(1, 4))
    changes = {
        "a vector of another size": base.replace(line("u1", 3), line("u1", 3, dim=3)),
        "more lines of a user": base + line("u2", 2),
        "a larger event number": base + line("u2", 9),
        "a user the first read did not see": base + line("u3", 1),
    }
    fifo = os.path.join(d, "vectors.fifo")
    os.mkfifo(fifo)
    for what, second in changes.items():
        rc, err, _ = report(fifo, out, serve=fifo_twice(fifo, base, second))
        assert rc == 1 and "changed between two reads" in err and what in err, (what, rc, err[-2000:])
    rc, err, _ = report(fifo, out, serve=fifo_twice(fifo, base, base))
    assert rc == 0 and "<html" in open(out).read(), (rc, err[-2000:])
    log(f"[report-input] {len(changes)} changes between the two reads refused; the same bytes twice make a page")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
