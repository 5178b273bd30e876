"""Files ievo writes: never through a name someone else can prepare.

Every file written whole (model save, report page, eval's JSON, the development broker's
bootstrap file; the stats file and the text cache go through the same code) is written under a
fresh random name created with O_EXCL beside its final one and renamed into place. A symbolic
link planted at the old fixed temporary names (PATH.tmp, PATH.tmp.<pid>: `exec` keeps the pid of
the shell that planted it) or at the final name itself must not be followed: the file it points
to stays as it was. No temporary file is left behind.

`ievo state dump|offsets -d DIR` opens the store read-only: a mistyped DIR is an error, not a
new empty store.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import IEVO, log

VICTIM_TEXT = "precious: must not be overwritten\n"


def planted(d, name):
    """A file that must survive, and its path."""
    victim = os.path.join(d, name)
    with open(victim, "w") as f:
        f.write(VICTIM_TEXT)
    return victim


def untouched(victim, what):
    assert open(victim).read() == VICTIM_TEXT, f"{what}: the file behind a planted link was overwritten"


def no_temporaries(d, what):
    left = [f for f in os.listdir(d) if ".tmp" in f and not os.path.islink(os.path.join(d, f))]
    assert not left, f"{what}: temporary files left behind: {left}"


def shell_with_planted_pid_link(link_fmt, victim, argv):
    """Runs argv from a shell that first links link_fmt % its pid to victim; exec keeps the pid."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return subprocess.run(["sh", "-c", f'ln -s "{victim}" "{link_fmt}$$" && exec {quoted}'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def main():
    d = tempfile.mkdtemp(prefix="ievo-files-")

    # model save: PATH.tmp.<pid> was the temporary name.
    model = os.path.join(d, "model.safetensors")
    victim = planted(d, "victim-model")
    r = shell_with_planted_pid_link(model + ".tmp.", victim,
                                    [IEVO, "model", "init", "--out", model, "--vocab-synthetic", "--init-seed", "1"])
    assert r.returncode == 0, r.stderr.decode()
    untouched(victim, "model init")
    assert subprocess.run([IEVO, "model", "info", model], stdout=subprocess.PIPE).returncode == 0, "model unreadable"
    no_temporaries(d, "model init")

    # the final name itself a link: replaced by the new file, the link's target untouched.
    victim2 = planted(d, "victim-final")
    os.unlink(model)
    os.symlink(victim2, model)
    r = subprocess.run([IEVO, "model", "init", "--out", model, "--vocab-synthetic"], stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    untouched(victim2, "model init over a link")
    assert not os.path.islink(model), "the model was written through the link"

    # ievo report: OUT.tmp was the temporary name.
    vectors = os.path.join(d, "vectors.jsonl")
    with open(vectors, "w") as f:
        for k in range(1, 6):
            f.write('{"user_id":"u1","events":%d,"ts":%d,"drift":0.1,"vector":[0.1,0.2],"model":"m"}\n' % (k, 1000 * k))
    page = os.path.join(d, "report.html")
    victim = planted(d, "victim-report")
    os.symlink(victim, page + ".tmp")
    r = subprocess.run([IEVO, "report", "--vectors", vectors, "-o", page], stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    untouched(victim, "report")
    assert "<html" in open(page).read()

    # ievo eval --json: written in place (through a link at its name).
    js = os.path.join(d, "eval.json")
    victim = planted(d, "victim-eval")
    os.symlink(victim, js)
    r = subprocess.run([IEVO, "eval", "-m", model, "--synthetic", "20:200", "--json", js],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    untouched(victim, "eval --json")
    assert not os.path.islink(js) and open(js).read().startswith("{")

    # ievo broker --bootstrap-file: PATH.tmp.<pid> was the temporary name.
    bs = os.path.join(d, "bootstrap")
    victim = planted(d, "victim-bootstrap")
    quoted = f"'{IEVO}' broker --brokers 1 --bootstrap-file '{bs}'"
    p = subprocess.Popen(["sh", "-c", f'ln -s "{victim}" "{bs}.tmp.$$" && exec {quoted}'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not os.path.exists(bs) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err.decode()
    untouched(victim, "broker --bootstrap-file")
    for f in os.listdir(d):   # the planted links themselves are the test's
        if os.path.islink(os.path.join(d, f)):
            os.unlink(os.path.join(d, f))
    no_temporaries(d, "all commands")

    # ievo state: a missing dir is refused and not created.
    missing = os.path.join(d, "no-such-state")
    for sub in (["offsets"], ["dump", "-m", model]):
        r = subprocess.run([IEVO, "state", *sub, "-d", missing], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 1 and b"No such file" in r.stderr, (sub, r.returncode, r.stderr.decode())
        assert not os.path.exists(missing), f"state {sub[0]} created {missing}"
    log("[files] planted links not followed, no temporaries left, state -d <missing> refused")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
