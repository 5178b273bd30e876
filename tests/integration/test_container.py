"""The Dockerfile, checked without a Docker engine.

Static (always):
  1. two stages, both FROM debian:12-slim; the build stage installs with the README's step
     (`scripts/install-deps.sh build`, which `./ievo` runs) and builds with scripts/build.sh;
  2. the runtime stage runs as a numeric non-root USER that its own RUN creates (useradd --uid);
     the ENTRYPOINT is the path the binary is COPY'd to from the build stage;
  3. every shared library `ldd ievo` lists belongs (dpkg -S) to a Debian package inside the
     dependency closure (apt-cache depends --recurse, no recommends) of the runtime stage's
     `apt-get install` list, or to the debian:12-slim base (the packages of a debootstrap
     minbase, which is what the slim image is, when /var/tmp/fresh-bookworm exists; else only
     libc6, the one library the slim image is guaranteed to provide).
Real (when /var/tmp/fresh-bookworm exists and this runs as root; ~15 s):
  4. a copy of that minimal Debian 12 root (the original is never modified) runs the runtime
     stage's RUN lines verbatim with /bin/sh -c, as `docker build` would (apt-get update and
     install from Debian's mirror; the .debs this machine already has are put in a private
     archive dir first, so little is downloaded), gets the binary at the COPY destination, and
     then `ievo --help` and `ievo model init` run there as the Dockerfile's USER, with its
     WORKDIR and ENV: the runtime image's libraries are enough to load and run the binary.
     No /proc or /dev is mounted into the copy, so deleting it afterwards is safe.
Not checked: the build stage itself (it would rebuild the project in a chroot: minutes), image
layering, `docker run` semantics (volumes, signals). A sanitizer build's binary (libasan) is
refused for step 3/4: the image ships the plain build.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import IEVO, SOURCE, log

FRESH = os.environ.get("FRESH_BASE", "/var/tmp/fresh-bookworm")
SANITIZER_LIBS = ("libasan", "libubsan", "liblsan", "libtsan")


def parse_dockerfile(path):
    """[(base image, alias, [(instruction, argument)])] with continuation lines joined."""
    lines, cur = [], ""
    for raw in open(path):
        s = raw.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.rstrip().endswith("\\"):
            cur += s.rstrip()[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    stages = []
    for line in lines:
        instr, _, arg = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = arg.split()
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append((parts[0], alias, []))
        else:
            assert stages, f"{instr} before FROM"
            stages[-1][2].append((instr, arg.strip()))
    return stages


def apt_install_list(run):
    """The packages of the `apt-get install` in a RUN command."""
    m = re.search(r"apt-get install ([^&;|]*)", run)
    assert m, f"no apt-get install in {run!r}"
    return [w for w in m.group(1).split() if not w.startswith("-")]


def closure(pkgs):
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", *pkgs], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, "apt-cache depends: " + r.stderr.decode(errors="replace")
    out = {l.strip().split(":")[0] for l in r.stdout.decode().splitlines() if l and not l.startswith((" ", "<"))}
    assert set(pkgs) <= out, f"apt-cache does not know {set(pkgs) - out} (run apt-get update?)"
    return out


def ldd_libs(binary):
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    libs = []
    for line in r.stdout.decode().splitlines():
        line = line.strip()
        assert "not found" not in line, f"ldd {binary}: {line}"
        m = re.match(r"(\S+) => (/\S+)", line) or re.match(r"(/\S+) \(", line)
        if m:
            libs.append(m.group(m.lastindex))
    return libs


def owning_package(path):
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        if p.startswith("/lib"):
            cands.append("/usr" + p)
        if p.startswith("/usr/lib"):
            cands.append(p[4:])
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        if r.returncode == 0:
            return r.stdout.decode().split(":")[0].strip()
    raise AssertionError(f"no Debian package owns {path} (dpkg -S)")


def base_image_packages():
    status = os.path.join(FRESH, "var", "lib", "dpkg", "status")
    if not os.path.exists(status):
        return {"libc6"}, "libc6 only (no minbase root at %s)" % FRESH
    pkgs = set()
    pkg = None
    for line in open(status, errors="replace"):
        if line.startswith("Package: "):
            pkg = line.split()[1]
        elif line.startswith("Status: ") and "install ok installed" in line and pkg:
            pkgs.add(pkg)
    return pkgs, f"{len(pkgs)} packages of the debootstrap minbase at {FRESH}"


def chroot_run(root, cmd, user=None, env=None, cwd="/", timeout=300):
    args = ["chroot"] + ([f"--userspec={user}"] if user else []) + [root, "/bin/sh", "-c", f"cd {shlex.quote(cwd)} && {cmd}"]
    e = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    e.update(env or {})
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=timeout)


def assert_nothing_mounted_under(root):
    with open("/proc/mounts") as f:
        under = [l.split()[1] for l in f if l.split()[1].startswith(root.rstrip("/") + "/")]
    assert not under, f"mounts under {root}: {under}; not deleting it"


def real_runtime_check(runtime, binary):
    """Step 4. Returns a one-line summary."""
    if os.geteuid() != 0 or not shutil.which("chroot"):
        return "not run (needs root and chroot)"
    if not os.path.exists(os.path.join(FRESH, "bin", "sh")):
        return f"not run ({FRESH} absent: ../shared/tools/fresh-debian makes it with debootstrap, ~3 min)"
    instrs = runtime[2]
    runs = [a for i, a in instrs if i == "RUN"]
    copies = [a for i, a in instrs if i == "COPY" and a.startswith("--from=")]
    env = {}
    for i, a in instrs:
        if i == "ENV":
            k, _, v = a.partition("=")
            env[k.strip()] = v.strip().strip('"')
    user = [a for i, a in instrs if i == "USER"][-1]
    workdir = [a for i, a in instrs if i == "WORKDIR"][-1]
    entry = json.loads([a for i, a in instrs if i == "ENTRYPOINT"][-1])

    root = tempfile.mkdtemp(prefix="ievo-ct-", dir="/var/tmp")
    t0 = time.time()
    try:
        r = subprocess.run(["cp", "-a", FRESH + "/.", root + "/"], stderr=subprocess.PIPE, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        shutil.copy("/etc/apt/sources.list.d/debian.sources", os.path.join(root, "etc/apt/sources.list.d/"))
        if os.path.exists(os.path.join(root, "etc/apt/sources.list")):
            os.unlink(os.path.join(root, "etc/apt/sources.list"))
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
        # A private archive dir pre-filled with the .debs this machine has (apt checks their hashes
        # against the index it downloads and fetches whatever is missing).
        debs = os.path.join(root, "var/cache/ievo-debs")
        os.makedirs(os.path.join(debs, "partial"))
        have = 0
        for p in closure(apt_install_list(" ".join(runs))):
            for f in os.listdir("/var/cache/apt/archives"):
                if f.startswith(p + "_") and f.endswith(".deb"):
                    shutil.copy(os.path.join("/var/cache/apt/archives", f), debs)
                    have += 1
        with open(os.path.join(root, "etc/apt/apt.conf.d/99ievo-test"), "w") as f:
            f.write('Dir::Cache::Archives "/var/cache/ievo-debs/";\n')
        for cmd in runs:
            r = chroot_run(root, cmd)
            assert r.returncode == 0, f"RUN {cmd}\nfailed in the minimal Debian root:\n" + r.stdout.decode(errors="replace")[-4000:]
        t_install = time.time() - t0
        for c in copies:
            src, dst = c.split()[1:3]
            target = os.path.join(root, dst.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(binary, target)   # the build stage's `install -m 0755 build/ievo` output
            os.chmod(target, 0o755)
        uid = user.split(":")[0]
        r = chroot_run(root, " ".join(shlex.quote(x) for x in entry) + " --help", user=user, env=env, cwd=workdir)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "usage: ievo" in out, f"ievo --help in the runtime root exited {r.returncode}:\n{out}"
        r = chroot_run(root, " ".join(shlex.quote(x) for x in entry) + " model init --out /tmp/m.safetensors --vocab-synthetic",
                       user=user, env=env, cwd=workdir)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "wrote /tmp/m.safetensors" in out, f"ievo model init in the runtime root:\n{out}"
        r = chroot_run(root, "id -u", user=user)
        assert r.stdout.decode().strip() == uid != "0", r.stdout
        r = chroot_run(root, f"getent passwd {uid}")
        assert r.returncode == 0, f"the runtime stage does not create user {uid}"
        return (f"runtime RUN lines ran in a copy of {FRESH} ({have} .debs pre-seeded, {t_install:.1f} s); "
                f"`ievo --help` and `ievo model init` ran there as {user} in {workdir}")
    finally:
        assert_nothing_mounted_under(root)
        shutil.rmtree(root, ignore_errors=True)


def main():
    dockerfile = os.path.join(SOURCE, "Dockerfile")
    stages = parse_dockerfile(dockerfile)
    assert len(stages) >= 2, "a multi-stage Dockerfile"
    assert all(s[0] == "debian:12-slim" for s in stages), [s[0] for s in stages]
    build = [s for s in stages if s[1] == "build"]
    assert build, "no stage named build"
    runtime = stages[-1]
    assert runtime[1] != "build"

    # 1. The README's install step in the build stage.
    brun = " ".join(a for i, a in build[0][2] if i == "RUN")
    assert "scripts/install-deps.sh build" in brun and "scripts/build.sh" in brun, brun
    # ... which is what the README's `./ievo` runs before it builds.
    wrapper = open(os.path.join(SOURCE, "ievo")).read()
    assert "scripts/install-deps.sh\" build" in wrapper or "scripts/install-deps.sh build" in wrapper, \
        "./ievo (the README's entry point) no longer installs with scripts/install-deps.sh build"

    # 2. Non-root user created by the runtime stage; ENTRYPOINT = COPY destination.
    instrs = runtime[2]
    users = [a for i, a in instrs if i == "USER"]
    assert users, "the runtime stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: numeric and non-root (runAsNonRoot needs a number)"
    rrun = " ".join(a for i, a in instrs if i == "RUN")
    assert re.search(rf"useradd[^&]*--uid {uid}\b", rrun), f"the runtime stage does not create uid {uid}"
    copies = [a.split() for i, a in instrs if i == "COPY" and a.startswith("--from=build")]
    assert copies, "no COPY --from=build"
    dests = {c[-1] for c in copies}
    srcs = {c[1] for c in copies}
    entry = json.loads([a for i, a in instrs if i == "ENTRYPOINT"][-1])
    assert entry[0] in dests, f"ENTRYPOINT {entry[0]} is not a COPY destination {dests}"
    assert any(f"/usr/local/bin/ievo" in a and "install" in a for a in brun.split("&&")) and srcs <= {"/usr/local/bin/ievo"}, \
        "the build stage must install the binary where the runtime stage copies it from"

    # 3. Every library the binary links comes from the runtime packages or the base image.
    binary = IEVO
    libs = ldd_libs(binary)
    san = [l for l in libs if os.path.basename(l).startswith(SANITIZER_LIBS)]
    if san:
        plain = os.path.join(SOURCE, "build", "ievo")
        assert os.path.exists(plain), f"{binary} is a sanitizer build ({san}) and no plain build/ievo exists"
        log(f"[container] {binary} links {san}: using the plain {plain} (what the image ships)")
        binary = plain
        libs = ldd_libs(binary)
    pkgs = apt_install_list(rrun)
    allowed = closure(pkgs)
    base, base_what = base_image_packages()
    need = {}
    for lib in libs:
        if "ld-linux" in lib or "linux-vdso" in lib:
            continue
        need[lib] = owning_package(lib)
    missing = {lib: p for lib, p in need.items() if p not in allowed and p not in base}
    assert not missing, f"libraries of {binary} that the runtime stage does not install: {missing}"
    direct = {p for p in need.values() if p in pkgs}
    log(f"[container] {len(need)} libraries from {len(set(need.values()))} packages; runtime list {pkgs} "
        f"(closure {len(allowed)} packages) + base ({base_what}); directly listed: {sorted(direct)}")
    unused = set(pkgs) - set(need.values()) - {"ca-certificates"}
    if unused:
        log(f"[container] note: listed but not linked directly (pulled in for a dependency?): {sorted(unused)}")

    # 4. The runtime stage for real, in a minimal Debian 12 root.
    log("[container] " + real_runtime_check(runtime, binary))


if __name__ == "__main__":
    main()
