"""schema_registry: a Schema Registry for the tests, written for them. No Schema Registry server can
be installed here (Confluent's, Karapace and Apicurio need a JVM or packages Debian does not ship),
so this serves the subset of the Confluent REST API that ievo's client uses:

    GET  /schemas/ids/{id}                    {"schema": ...}
    POST /subjects/{subject}/versions         {"id": N}  (the same schema keeps its id, across subjects too)
    POST /subjects/{subject}                  {"subject", "id", "version", "schema"}  (lookup)
    GET  /subjects/{subject}/versions/latest  {"subject", "id", "version", "schema"}
    GET  /subjects                            [subject, ...]

with HTTP basic auth (--user/--password), TLS (--cert/--key), and the registry's error JSON
({"error_code": 40403, "message": ...}). It checks no compatibility between versions and keeps
no modes, contexts or deletes; what only a real registry shows is listed in docs/schemas.md.

State persists in --state FILE, so a test can stop it and start it again on the same port (the
registry down mid-run). Every request is appended to --log FILE as "METHOD PATH STATUS".

As a program: python3 schema_registry.py --port-file F [--port N] [--state FILE] [--log FILE]
[--user U --password P] [--cert PEM --key PEM]. As a module: SchemaRegistry(...) runs it as a
child process (.url, .stop(), .start(), .requests(), .register(...)).
"""
import argparse
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.schemas = []          # id - 1 -> schema text
        self.subjects = {}         # subject -> [id of version 1, 2, ...]
        if path and os.path.exists(path):
            d = json.load(open(path))
            self.schemas, self.subjects = d["schemas"], d["subjects"]

    def save(self):
        if self.path:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"schemas": self.schemas, "subjects": self.subjects}, f)
            os.replace(tmp, self.path)

    @staticmethod
    def canonical(text):
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))

    def id_of(self, text):
        c = self.canonical(text)
        for i, s in enumerate(self.schemas):
            if self.canonical(s) == c:
                return i + 1
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the client expects of a real registry
    state = None
    auth = None
    log_path = None

    def log_message(self, *a):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(f"{self.command} {self.path} {status}\n")

    def error(self, status, code, message):
        self.reply(status, {"error_code": code, "message": message})

    def authorized(self):
        if not self.auth:
            return True
        h = self.headers.get("Authorization", "")
        if h.startswith("Basic ") and base64.b64decode(h[6:]).decode(errors="replace") == self.auth:
            return True
        self.error(401, 401, "Unauthorized")
        return False

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        try:
            return json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return None

    def do_GET(self):
        if not self.authorized():
            return
        st = self.state
        with st.lock:
            m = re.fullmatch(r"/schemas/ids/(\d+)", self.path)
            if m:
                i = int(m.group(1))
                if 1 <= i <= len(st.schemas):
                    return self.reply(200, {"schema": st.schemas[i - 1]})
                return self.error(404, 40403, f"Schema {i} not found")
            m = re.fullmatch(r"/subjects/([^/]+)/versions/latest", self.path)
            if m:
                subj = urllib.request.unquote(m.group(1))
                if subj not in st.subjects:
                    return self.error(404, 40401, f"Subject '{subj}' not found.")
                ids = st.subjects[subj]
                return self.reply(200, {"subject": subj, "version": len(ids), "id": ids[-1],
                                        "schema": st.schemas[ids[-1] - 1]})
            if self.path == "/subjects":
                return self.reply(200, sorted(st.subjects))
        self.error(404, 404, "HTTP 404 Not Found")

    def do_POST(self):
        if not self.authorized():
            return
        st = self.state
        req = self.body()
        text = req.get("schema") if isinstance(req, dict) else None
        if req is None or not isinstance(text, str):
            return self.error(422, 42201, "Either the input schema or one of its references is invalid")
        try:
            json.loads(text)
        except ValueError:
            return self.error(422, 42201, "Invalid schema")
        with st.lock:
            m = re.fullmatch(r"/subjects/([^/]+)/versions", self.path)
            if m:
                subj = urllib.request.unquote(m.group(1))
                sid = st.id_of(text)
                if sid is None:
                    st.schemas.append(text)
                    sid = len(st.schemas)
                versions = st.subjects.setdefault(subj, [])
                if sid not in versions:
                    versions.append(sid)
                st.save()
                return self.reply(200, {"id": sid})
            m = re.fullmatch(r"/subjects/([^/]+)", self.path)
            if m:
                subj = urllib.request.unquote(m.group(1))
                if subj not in st.subjects:
                    return self.error(404, 40401, f"Subject '{subj}' not found.")
                sid = st.id_of(text)
                if sid is None or sid not in st.subjects[subj]:
                    return self.error(404, 40403, "Schema not found")
                return self.reply(200, {"subject": subj, "id": sid, "version": st.subjects[subj].index(sid) + 1,
                                        "schema": st.schemas[sid - 1]})
        self.error(404, 404, "HTTP 404 Not Found")


def serve(args):
    Handler.state = State(args.state)
    Handler.auth = f"{args.user}:{args.password}" if args.user else None
    Handler.log_path = args.log
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=httpd.shutdown).start())
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(httpd.server_address[1]))
        os.replace(tmp, args.port_file)
    httpd.serve_forever()


class SchemaRegistry:
    """The test registry as a child process. stop() and start() keep the port and the state."""

    def __init__(self, workdir=None, user=None, password=None, cert=None, key=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="ievo-sr-")
        self.state = os.path.join(self.dir, "registry-state.json")
        self.log_path = os.path.join(self.dir, "registry-requests.log")
        self.user, self.password, self.cert, self.key = user, password, cert, key
        self.port = 0
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        port_file = os.path.join(self.dir, "registry-port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [sys.executable, os.path.abspath(__file__), "--port", str(self.port), "--port-file", port_file,
                "--state", self.state, "--log", self.log_path]
        if self.user:
            args += ["--user", self.user, "--password", self.password]
        if self.cert:
            args += ["--cert", self.cert, "--key", self.key]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "registry.err"), "a"))
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(port_file):
                self.port = int(open(port_file).read())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("test schema registry did not start: " + open(os.path.join(self.dir, "registry.err")).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def requests(self):
        """Every request so far as (method, path, status)."""
        if not os.path.exists(self.log_path):
            return []
        return [tuple(l.split(" ")[:2]) + (int(l.split(" ")[2]),) for l in open(self.log_path).read().splitlines()]

    def _call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        ctx = ssl.create_default_context(cafile=self.cert) if self.cert else None
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read())

    def register(self, subject, schema):
        """Registers schema (a dict or JSON text) under subject, as a producer would; returns its id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self._call("POST", f"/subjects/{urllib.request.quote(subject, safe='')}/versions", {"schema": text})["id"]

    def schema(self, sid):
        return self._call("GET", f"/schemas/ids/{sid}")["schema"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--state")
    p.add_argument("--log")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--cert")
    p.add_argument("--key")
    serve(p.parse_args())
