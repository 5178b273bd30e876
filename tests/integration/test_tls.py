"""TLS to the cluster, as far as a machine without a secured Kafka can show it.

The local broker (librdkafka's mock cluster) speaks plaintext only and has no SASL handshake
(docs/security.md), so TLS is terminated in front of it by stunnel, with certificates made here
by openssl: a CA, a broker certificate for 127.0.0.1, a client certificate whose key is
encrypted (its password is `ssl.key.password`, given as IEVO_CFG_SSL_KEY_PASSWORD), and a second,
unrelated CA.

A. One proxy, the broker's own addresses (no privileges needed). Through stunnel, metadata
   works, but the mock advertises its brokers at their plaintext ports, so a client then talks
   TLS to a plaintext socket: the produce fails in the SSL handshake with the advertised address.
   This is what a TLS proxy in front of a broker that advertises another listener does to any
   client; the test asserts it so that docs/security.md's account of it stays true. And a client
   trusting another CA fails with librdkafka's "certificate verify failed" in ievo's log.
B. The honest set-up: the broker runs in its own network namespace (`unshare -n`), where it
   listens on 127.0.0.1:P; in the test's namespace stunnel listens on the same 127.0.0.1:P and
   forwards into the namespace through a Unix socket (socat, started there with nsenter). The
   advertised address is then the TLS one for every broker, as with a real advertised listener.
   Mutual TLS (stunnel requires a client certificate from the CA): produce, the worker end to end
   (consumer, producers, changelog) and consume, all over TLS, every event applied. Without the
   client certificate, and trusting the wrong CA, the clients fail with the certificate named.
   Needs root or unprivileged user namespaces; where neither works, part B says SKIPPED and why.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import IEVO, FAST_GROUP, Workdir, free_port, log, stop_proc

TOPICS = ["user-actions:4", "interest-vectors:4", "tls-changelog:4", "user-actions.dlq:1"]
KEY_PASSWORD = "client-key-pass-3e7"
EVENTS = "40:400"
N_EVENTS = 400


def sh(*args, **kw):
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))}: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode(errors="replace")


def make_certs(wd):
    """CA, broker certificate (127.0.0.1), client certificate (encrypted key), another CA."""
    def ca(name):
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
           "-keyout", wd(f"{name}.key"), "-out", wd(f"{name}.pem"))

    def signed(name, cn, ext, encrypt=False):
        key = ["-newkey", "rsa:2048"] + (["-passout", f"pass:{KEY_PASSWORD}"] if encrypt else ["-nodes"])
        sh("openssl", "req", *key, "-subj", f"/CN={cn}", "-keyout", wd(f"{name}.key"), "-out", wd(f"{name}.csr"))
        with open(wd(f"{name}.ext"), "w") as f:
            f.write(ext)
        sh("openssl", "x509", "-req", "-in", wd(f"{name}.csr"), "-CA", wd("ca.pem"), "-CAkey", wd("ca.key"),
           "-CAcreateserial", "-days", "2", "-out", wd(f"{name}.pem"), "-extfile", wd(f"{name}.ext"))

    ca("ca")
    ca("other-ca")
    signed("broker", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    signed("client", "ievo-worker", "extendedKeyUsage=clientAuth\n", encrypt=True)
    head = open(wd("client.key")).read().splitlines()[0]
    assert "ENCRYPTED" in head, f"the client key is not encrypted: {head}"


def client_properties(wd, name, ca="ca.pem", cert=True):
    """A properties file for a TLS client; the key's password comes from the environment."""
    path = wd(name)
    with open(path, "w") as f:
        f.write(f"security.protocol=ssl\nssl.ca.location={wd(ca)}\n")
        if cert:
            f.write(f"ssl.certificate.location={wd('client.pem')}\nssl.key.location={wd('client.key')}\n")
    return path


class Stunnel:
    """stunnel terminating TLS: services = [(accept "127.0.0.1:P", connect "host:port" or a
    Unix socket path)]; require_cert: only clients with a certificate from ca.pem."""

    def __init__(self, wd, name, services, require_cert):
        self.log_path = wd(f"{name}.log")
        conf = wd(f"{name}.conf")
        with open(conf, "w") as f:
            f.write(f"foreground = yes\npid =\noutput = {self.log_path}\ndebug = info\n")
            for i, (accept, connect) in enumerate(services):
                f.write(f"[s{i}]\naccept = {accept}\nconnect = {connect}\ncert = {wd('broker.pem')}\n"
                        f"key = {wd('broker.key')}\n")
                if require_cert:
                    f.write(f"CAfile = {wd('ca.pem')}\nrequireCert = yes\nverifyChain = yes\n")
        self.proc = subprocess.Popen([shutil.which("stunnel4") or "stunnel", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(self.log_path) and "Configuration successful" in open(self.log_path).read():
                return
            assert self.proc.poll() is None, "stunnel exited: " + self.text()
            time.sleep(0.05)
        raise AssertionError("stunnel did not start: " + self.text())

    def text(self):
        return open(self.log_path).read() if os.path.exists(self.log_path) else ""

    def stop(self):
        stop_proc(self.proc, 10)


def broker_in(wd, name, netns):
    """`ievo broker` (one process), in a new network namespace when netns: (proc, bootstrap)."""
    bs = wd(f"{name}.bootstrap")
    args = [IEVO, "broker", "--brokers", "3" if netns else "1", "--partitions", "4", "--bootstrap-file", bs]
    for t in TOPICS:
        args += ["--topic", t]
    if netns:
        # lo starts down in a new namespace; `ip` is iproute2, so bring it up with Python's ioctl
        up = ("import fcntl,os,socket,struct,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
              "f=struct.unpack('16sH14s',fcntl.ioctl(s,0x8913,struct.pack('16sH14s',b'lo',0,b'')))[1];"
              "fcntl.ioctl(s,0x8914,struct.pack('16sH14s',b'lo',f|1,b''));os.execv(sys.argv[1],sys.argv[1:])")
        args = [*netns, sys.executable, "-c", up] + args
    proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL, stderr=open(wd(f"{name}.log"), "w"))
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(bs) and os.path.getsize(bs) > 0:
            return proc, open(bs).read().strip()
        assert proc.poll() is None, "broker exited: " + open(wd(f"{name}.log")).read()
        time.sleep(0.05)
    raise AssertionError("broker did not start: " + open(wd(f"{name}.log")).read())


def netns_command():
    """`unshare -n` (root) or `unshare -rn` (an unprivileged user namespace): the first that works."""
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        r = subprocess.run(cmd + ["true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode == 0:
            return cmd, None
        why = r.stderr.decode(errors="replace").strip()
    return None, why


def run_until(args, env, pattern, timeout):
    """Runs a client that retries forever on a handshake failure: returns (its output, whether
    pattern appeared) once pattern appears, it exits or timeout passes; then it is stopped."""
    p = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out, deadline = b"", time.time() + timeout
    os.set_blocking(p.stdout.fileno(), False)
    while time.time() < deadline:
        chunk = p.stdout.read() or b""
        out += chunk
        if pattern.encode() in out or (p.poll() is not None and not chunk):
            break
        time.sleep(0.1)
    stop_proc(p, 10)
    out += p.stdout.read() or b""
    text = out.decode(errors="replace")
    return text, pattern in text


def part_a(wd, env):
    """One proxy in front of the broker's advertised plaintext address."""
    proc, bs = broker_in(wd, "broker-a", None)
    tls_port = free_port()
    st = None
    try:
        st = Stunnel(wd, "stunnel-a", [(f"127.0.0.1:{tls_port}", bs)], require_cert=False)
        plain = client_properties(wd, "a.properties", cert=False)
        r = subprocess.run(["kcat", "-b", f"127.0.0.1:{tls_port}", "-F", plain, "-L", "-m", "10"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        meta = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and f"broker 1 at {bs}" in meta, f"metadata through the proxy:\n{meta}"
        out, failed = run_until([IEVO, "produce", "-b", f"127.0.0.1:{tls_port}", "-F", plain, "-t", "user-actions",
                                 "--synthetic", "2:4"], env, f"ssl://{bs}/1", 30)
        assert failed and "SSL_HANDSHAKE" in out, f"expected the TLS client on the advertised plaintext port {bs}:\n{out[-3000:]}"
        log(f"[tls] A: through one proxy, metadata works and names broker 1 at its plaintext address {bs}; "
            "the produce then fails in the TLS handshake there (the mock's advertised listener)")
        wrong = client_properties(wd, "a-wrong-ca.properties", ca="other-ca.pem", cert=False)
        out, named = run_until([IEVO, "produce", "-b", f"127.0.0.1:{tls_port}", "-F", wrong, "-t", "user-actions",
                                "--synthetic", "2:4"], env, "certificate verify failed", 30)
        assert named, f"a client trusting another CA: no 'certificate verify failed' in its log:\n{out[-3000:]}"
        line = next(l for l in out.splitlines() if "certificate verify failed" in l)
        log(f"[tls] A: wrong CA: {line[:220]}")
    finally:
        if st:
            st.stop()
        stop_proc(proc, 10)


def part_b(wd, env, netns):
    """The broker in its own namespace, stunnel on its advertised addresses: mTLS end to end."""
    proc, bs = broker_in(wd, "broker-b", netns)
    forwarders, st = [], None
    try:
        services = []
        for i, addr in enumerate(bs.split(",")):
            sock = wd(f"b{i}.sock")
            # into the broker's network namespace (and its user namespace when it has its own)
            enter = ["nsenter", "-t", str(proc.pid), "-n"] + (["-U", "--preserve-credentials"] if "-rn" in netns else [])
            forwarders.append(subprocess.Popen([*enter, "socat", f"UNIX-LISTEN:{sock},fork", f"TCP:{addr}"],
                                               stdout=subprocess.DEVNULL, stderr=open(wd(f"socat{i}.log"), "w")))
            services.append((addr, sock))
        deadline = time.time() + 10
        while not all(os.path.exists(s) for _, s in services) and time.time() < deadline:
            time.sleep(0.05)
        st = Stunnel(wd, "stunnel-b", services, require_cert=True)
        tls = client_properties(wd, "b.properties")
        t0 = time.time()
        r = subprocess.run([IEVO, "produce", "-b", bs, "-F", tls, "-t", "user-actions", "--synthetic", EVENTS],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
        assert r.returncode == 0, "produce over mTLS: " + r.stderr.decode(errors="replace")[-3000:]
        stats = wd("stats.json")
        r = subprocess.run([IEVO, "worker", "-b", bs, "-F", tls, "-X", "group.id=tls", "-X", f"state.dir={wd('state')}",
                            "-X", f"model.path={wd('model.safetensors')}", "-X", "changelog.topic=tls-changelog",
                            "-X", f"stats.file={stats}", *FAST_GROUP, "--until-eof"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=300)
        assert r.returncode == 0, "worker over mTLS: " + r.stderr.decode(errors="replace")[-3000:]
        import json
        applied = json.load(open(stats))["applied"]
        assert applied == N_EVENTS, f"the worker applied {applied} of {N_EVENTS} events over TLS"
        r = subprocess.run([IEVO, "consume", "-b", bs, "-F", tls, "-t", "interest-vectors", "--from-beginning",
                            "--until-eof"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
        assert r.returncode == 0, "consume over mTLS: " + r.stderr.decode(errors="replace")[-3000:]
        outputs = [l for l in r.stdout.decode().splitlines() if l.strip()]
        assert len(outputs) >= N_EVENTS, f"{len(outputs)} outputs read back over TLS for {N_EVENTS} events"
        accepted = st.text().count("accepted connection")
        assert accepted >= 3, f"stunnel saw {accepted} connections"
        log(f"[tls] B: mTLS through stunnel on the advertised addresses {bs}: {N_EVENTS} events produced, applied "
            f"and read back in {time.time() - t0:.1f} s ({accepted} TLS connections)")
        plain_check = subprocess.run(["kcat", "-b", bs, "-L", "-m", "5"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, timeout=60)
        assert plain_check.returncode != 0, "a plaintext client got metadata: the brokers are not behind TLS"

        nocert = client_properties(wd, "b-nocert.properties", cert=False)
        out, _ = run_until([IEVO, "produce", "-b", bs, "-F", nocert, "-t", "user-actions", "--synthetic", "2:4"], env,
                           "brokers are down", 30)
        refused = [l for l in out.splitlines() if "FAIL" in l and "certificate required" in l]
        assert refused, f"no client certificate: no 'certificate required' in the log:\n{out[-3000:]}"
        assert "peer did not return a certificate" in st.text(), "stunnel: " + st.text()[-2000:]
        log(f"[tls] B: no client certificate: {refused[0][:200]}")
        wrong = client_properties(wd, "b-wrong-ca.properties", ca="other-ca.pem")
        out, named = run_until([IEVO, "consume", "-b", bs, "-F", wrong, "-t", "interest-vectors", "-e"], env,
                               "certificate verify failed", 30)
        assert named, f"mTLS with the wrong CA: no 'certificate verify failed':\n{out[-3000:]}"
        log("[tls] B: trusting another CA fails with 'certificate verify failed'")
    finally:
        if st:
            st.stop()
        for f in forwarders:
            stop_proc(f, 5)
        stop_proc(proc, 10)


def main():
    for tool in ("openssl", "kcat", "socat"):
        assert shutil.which(tool), f"{tool} is missing (scripts/install-deps.sh test)"
    assert shutil.which("stunnel4") or shutil.which("stunnel"), "stunnel is missing (scripts/install-deps.sh test)"
    wd = Workdir("tls")
    make_certs(wd)
    subprocess.run([IEVO, "model", "init", "--out", wd("model.safetensors"), "--vocab-synthetic", "--init-seed", "3"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the key's password the documented way: an IEVO_CFG_ variable (docs/security.md)
    env = dict(os.environ, IEVO_CFG_SSL_KEY_PASSWORD=KEY_PASSWORD)
    part_a(wd, env)
    netns, why = netns_command()
    if not netns:
        log(f"[tls] B SKIPPED: no network namespace can be made here ({why}); it needs root or unprivileged "
            "user namespaces")
    else:
        part_b(wd, env, netns)
    wd.cleanup()


if __name__ == "__main__":
    main()
