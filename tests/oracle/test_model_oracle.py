#!/usr/bin/python3
"""test_model_oracle: the model step (both backends) against an independent torch reference.

The C helper (tests/oracle/oracle_model.c) writes a model file and replays event waves through
model_step. This script reads the file with its own safetensors reader (json + numpy, CRC-32C in
Python), loads the weights into torch.nn.LSTMCell / torch.nn.GRUCell (float64), writes the window
attention and the output layer with torch ops, replays each user's events one by one, and
compares every u_t, every drift and every final state blob (parsed with struct from the layout
in model.h) within 1e-5.

A test that cannot fail is a defect, so the same script then replays the events through the
reference with one deliberate mistake at a time (gate order, GRU reset placement, each feature,
the window length, the softmax scale, OOV mapping, drift) and requires each mistake to move the
outputs by far more than the tolerance.
"""
import collections
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

TOL = 1e-5
BUILD = os.environ.get("IEVO_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
HELPER = os.path.join(BUILD, "oracle_model")
torch.set_num_threads(1)

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


# ---- safetensors + CRC-32C, independent of the C loader -------------------------------------

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_safetensors(path):
    """Returns (metadata, {name: np.ndarray or bytes}); asserts the safetensors layout rules."""
    buf = open(path, "rb").read()
    (hlen,) = struct.unpack_from("<Q", buf, 0)
    assert 8 + hlen <= len(buf), "header runs past the file"
    assert buf[8:9] == b"{", "header must start with '{'"
    assert (8 + hlen) % 8 == 0, "data section not 8-byte aligned"
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    data = buf[8 + hlen:]
    meta = header.pop("__metadata__")
    assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
    spans, out = [], {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        spans.append((b, end, name))
        if e["dtype"] == "F32":
            n = int(np.prod(e["shape"]))
            assert end - b == 4 * n, name
            out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).copy()
        elif e["dtype"] == "U8":
            assert end - b == e["shape"][0], name
            out[name] = data[b:end]
        else:
            raise AssertionError("unexpected dtype %s" % e["dtype"])
    spans.sort()
    pos = 0
    for b, end, name in spans:
        assert b == pos, "hole or overlap at %s" % name
        pos = end
    assert pos == len(data), "trailing bytes"
    assert meta["format"] == "ievo-model" and meta["format_version"] == "1"
    assert int(meta["crc32c"], 16) == crc32c(data), "CRC-32C mismatch"
    return meta, out


# ---- the reference --------------------------------------------------------------------------

class Ref:
    """model.h's function in torch (float64), with optional deliberate bugs."""

    def __init__(self, meta, t, bug=None):
        self.bug = bug
        g = lambda k: int(meta[k])
        self.lstm = meta["cell"] == "lstm"
        self.E, self.A, self.H, self.K, self.D, self.W = (g(k) for k in ("item_dim", "action_dim", "hidden",
                                                                         "attn_dim", "out_dim", "window"))
        self.I = self.E + self.A + 3
        T = lambda k: torch.tensor(t[k], dtype=torch.float64)
        H = self.H
        w_ih, w_hh, b_ih, b_hh = T("rnn.w_ih"), T("rnn.w_hh"), T("rnn.b_ih"), T("rnn.b_hh")
        if bug in ("lstm_gates_if", "gru_gates_rz"):
            perm = torch.cat([torch.arange(H, 2 * H), torch.arange(0, H), torch.arange(2 * H, w_ih.shape[0])])
            w_ih, w_hh, b_ih, b_hh = w_ih[perm], w_hh[perm], b_ih[perm], b_hh[perm]
        if self.lstm:
            self.cell = torch.nn.LSTMCell(self.I, H).double()
        else:
            self.cell = torch.nn.GRUCell(self.I, H).double()
        with torch.no_grad():
            self.cell.weight_ih.copy_(w_ih)
            self.cell.weight_hh.copy_(w_hh)
            self.cell.bias_ih.copy_(b_ih)
            self.cell.bias_hh.copy_(b_hh)
        self.w = {k: T(k) for k in ("attn.w_q", "attn.b_q", "attn.w_k", "attn.b_k", "attn.w_v", "attn.b_v",
                                    "out.w", "out.b")}
        self.item_emb, self.action_emb = T("item_emb"), T("action_emb")
        self.items = {s: i for i, s in enumerate(t["vocab.items"].decode().split("\n"))}
        self.actions = {s: i for i, s in enumerate(t["vocab.actions"].decode().split("\n"))}
        assert self.items.get("<oov>") == 0 and self.actions.get("<oov>") == 0

    def item_index(self, s):
        return self.items.get(s, 1 if self.bug == "oov_to_1" else 0)

    def features(self, ev, st):
        ts, hv, v = ev["ts"], ev["hv"], float(np.float32(ev["value"]))
        gap = 0.0 if st["events"] == 0 else max(0.0, (ts - st["last_ts"]) / 1000.0)
        f0 = math.log1p(gap) / 10.0
        f1 = math.copysign(math.log1p(abs(v)), v) if hv else 0.0
        f2 = 1.0 if hv else 0.0
        if self.bug == "no_gap":
            f0 = 0.0
        if self.bug == "value_no_log" and hv:
            f1 = v
        if self.bug == "no_has_value":
            f2 = 0.0
        return [float(np.float32(f)) for f in (f0, f1, f2)]  # the state stores them as f32

    def new_state(self):
        z = torch.zeros(self.H, dtype=torch.float64)
        W = self.W - 1 if self.bug == "window_short" and self.W > 1 else self.W
        return {"h": z, "c": z.clone(), "u": torch.zeros(self.D, dtype=torch.float64), "events": 0, "last_ts": 0,
                "win": collections.deque(maxlen=W), "slots": [None] * self.W}

    def step(self, st, ev):
        f = self.features(ev, st)
        item, action = self.item_index(ev["item"]), self.actions.get(ev["action"], 0)
        x = torch.cat([self.item_emb[item], self.action_emb[action], torch.tensor(f, dtype=torch.float64)])
        with torch.no_grad():
            if self.lstm:
                h, c = self.cell(x[None], (st["h"][None], st["c"][None]))
                h, c = h[0], c[0]
            elif self.bug == "gru_reset_before":
                H, wi, wh, bi, bh = self.H, self.cell.weight_ih, self.cell.weight_hh, self.cell.bias_ih, self.cell.bias_hh
                gx, gh = wi @ x + bi, wh @ st["h"] + bh
                r, z = torch.sigmoid(gx[:H] + gh[:H]), torch.sigmoid(gx[H:2 * H] + gh[H:2 * H])
                n = torch.tanh(gx[2 * H:] + wh[2 * H:] @ (r * st["h"]) + bh[2 * H:])
                h, c = (1 - z) * n + z * st["h"], st["c"]
            else:
                h, c = self.cell(x[None], st["h"][None])[0], st["c"]
            st["win"].append(x)
            X = torch.stack(list(st["win"]))
            w = self.w
            q = torch.nn.functional.linear(h, w["attn.w_q"], w["attn.b_q"])
            k = torch.nn.functional.linear(X, w["attn.w_k"], w["attn.b_k"])
            v = torch.nn.functional.linear(X, w["attn.w_v"], w["attn.b_v"])
            scale = 1.0 if self.bug == "no_scale" else 1.0 / math.sqrt(self.K)
            a = torch.softmax((k @ q) * scale, dim=0)
            ctx = a @ v
            u = torch.nn.functional.linear(torch.cat([h, ctx]), w["out.w"], w["out.b"])
        if st["events"] == 0 or self.bug == "drift_zero":
            drift = 0.0
        else:
            den = max(float(u.norm() * st["u"].norm()), 1e-12)
            drift = 1.0 - float(u @ st["u"]) / den
        st["slots"][st["events"] % self.W] = (item, action, f)
        st.update(h=h, c=c, u=u, events=st["events"] + 1, last_ts=ev["ts"])
        return u.numpy(), drift


# ---- events ---------------------------------------------------------------------------------

def make_events(rng, users, n_items, n_actions, sizes, rounds):
    """Waves of distinct users; skewed so some users go deep past the window and others stay new."""
    last = [1_700_000_000_000 + 7919 * u for u in range(users)]
    weights = [1.0 / (1 + u / 8.0) for u in range(users)]
    waves = []
    for _ in range(rounds):
        for s in sizes:
            s = min(s, users)
            chosen = set()
            while len(chosen) < s:
                chosen.add(rng.choices(range(users), weights)[0])
            wave = []
            for u in sorted(chosen, key=lambda _: rng.random()):
                p = rng.random()
                last[u] += 0 if p < 0.1 else -3000 if p < 0.17 else rng.randint(1, 5000) if p < 0.5 else rng.randint(1, 3 * 86400_000)
                r = rng.random()
                item = "zz%d" % rng.randint(1, 99) if r < 0.1 else "<oov>" if r < 0.13 else "m%d" % rng.randint(1, n_items)
                action = "bogus" if rng.random() < 0.08 else "act%d" % rng.randint(1, n_actions)
                hv = rng.random() < 0.55
                value = float(np.float32(rng.choice([-3.5, 0.0, 0.25, 7.0, 1000.0, rng.gauss(0, 5)]))) if hv else 0.0
                wave.append({"user": u, "item": item, "action": action, "ts": last[u], "hv": int(hv), "value": value})
            waves.append(wave)
    return waves


def write_events(path, users, waves):
    with open(path, "w") as f:
        f.write("users %d\n" % users)
        for wave in waves:
            f.write("wave\n")
            for e in wave:
                f.write("e %d %s %s %d %d %.9g\n" % (e["user"], e["item"], e["action"], e["ts"], e["hv"], e["value"]))


def reference(meta, t, users, waves, bug=None):
    ref = Ref(meta, t, bug)
    states = [ref.new_state() for _ in range(users)]
    vecs, drifts = [], []
    for wave in waves:
        for e in wave:
            u, d = ref.step(states[e["user"]], e)
            vecs.append(u)
            drifts.append(d)
    return ref, states, np.array(vecs), np.array(drifts)


def parse_blob(blob, meta):
    H, D, W = int(meta["hidden"]), int(meta["out_dim"]), int(meta["window"])
    lstm = meta["cell"] == "lstm"
    magic, ver, cell, events, last_ts, wlen, head, fp = struct.unpack_from("<IHHqqiiQ", blob, 0)
    off = 40
    h = np.frombuffer(blob, "<f4", H, off); off += 4 * H
    c = None
    if lstm:
        c = np.frombuffer(blob, "<f4", H, off); off += 4 * H
    u = np.frombuffer(blob, "<f4", D, off); off += 4 * D
    slots = [struct.unpack_from("<ii3f", blob, off + 20 * j) for j in range(W)]
    assert off + 20 * W == len(blob), "state size %d != %d" % (len(blob), off + 20 * W)
    return dict(magic=magic, ver=ver, cell=cell, events=events, last_ts=last_ts, wlen=wlen, head=head, fp=fp,
                h=h, c=c, u=u, slots=slots)


def run_config(tmp, name, cell, E, A, H, K, D, W, n_items, n_actions, users, max_batch, sizes, rounds, seed,
               mutations):
    path = os.path.join(tmp, name + ".safetensors")
    subprocess.run([HELPER, "init", path, cell, str(E), str(A), str(H), str(K), str(D), str(W), str(n_items),
                    str(n_actions), str(seed)], check=True)
    meta, t = read_safetensors(path)
    check(json.loads(meta["meta"]) == {"purpose": "oracle test", "seed": 1}, name + ": metadata did not survive")
    check(meta["model_id"] == "oracle-" + meta["fingerprint"][:12], name + ": model_id is not name-fingerprint")
    rng = random.Random(seed)
    waves = make_events(rng, users, n_items, n_actions, sizes, rounds)
    ev_path = os.path.join(tmp, name + ".events")
    write_events(ev_path, users, waves)
    ref, ref_states, ref_vec, ref_drift = reference(meta, t, users, waves)
    n_events = len(ref_drift)
    deep = sum(1 for s in ref_states if s["events"] > W)
    outs = {}
    for backend in ("scalar", "dnnl"):
        vec_path, st_path = os.path.join(tmp, name + "." + backend + ".vec"), os.path.join(tmp, name + "." + backend + ".st")
        subprocess.run([HELPER, "run", path, ev_path, backend, str(max_batch), vec_path, st_path], check=True)
        out = np.fromfile(vec_path, dtype="<f4").reshape(n_events, D + 1).astype(np.float64)
        blobs = open(st_path, "rb").read()
        ss = len(blobs) // users
        d_vec = float(np.abs(out[:, :D] - ref_vec).max())
        d_drift = float(np.abs(out[:, D] - ref_drift).max())
        d_state = 0.0
        for uidx, rs in enumerate(ref_states):
            b = parse_blob(blobs[uidx * ss:(uidx + 1) * ss], meta)
            ok = (b["magic"] == 0x53564549 and b["ver"] == 1 and b["cell"] == (0 if cell == "lstm" else 1)
                  and b["fp"] == int(meta["fingerprint"], 16) and b["events"] == rs["events"]
                  and b["last_ts"] == rs["last_ts"] and b["wlen"] == min(rs["events"], W) and b["head"] == rs["events"] % W)
            check(ok, "%s/%s user %d: state header %s" % (name, backend, uidx, {k: b[k] for k in ("magic", "ver", "cell", "events", "last_ts", "wlen", "head")}))
            d_state = max(d_state, float(np.abs(b["h"] - rs["h"].numpy()).max()), float(np.abs(b["u"] - rs["u"].numpy()).max()))
            if b["c"] is not None:
                d_state = max(d_state, float(np.abs(b["c"] - rs["c"].numpy()).max()))
            for j in range(W):
                want = rs["slots"][j]
                got = b["slots"][j]
                if want is None:
                    check(got == (0, 0, 0.0, 0.0, 0.0), "%s/%s user %d: unused slot %d is %s" % (name, backend, uidx, j, got))
                else:
                    check(got == (want[0], want[1], *want[2]), "%s/%s user %d slot %d: %s, want %s" % (name, backend, uidx, j, got, want))
        print("%-10s %-6s %5d events, %3d users past W=%d: max|diff| u %.2e drift %.2e state %.2e"
              % (name, backend, n_events, deep, W, d_vec, d_drift, d_state))
        check(d_vec <= TOL and d_drift <= TOL and d_state <= TOL, "%s/%s: differs from torch (u %.3g drift %.3g state %.3g)"
              % (name, backend, d_vec, d_drift, d_state))
        outs[backend] = out
    check(deep > 0, name + ": no user went past the window")
    # Sensitivity: each deliberate mistake must be visible far above the tolerance.
    for bug in mutations:
        _, _, bvec, bdrift = reference(meta, t, users, waves, bug)
        out = outs["dnnl"]
        d = max(float(np.abs(out[:, :D] - bvec).max()), float(np.abs(out[:, D] - bdrift).max()))
        print("%-10s mutation %-18s moves the outputs by %.2e" % (name, bug, d))
        check(d > 100 * TOL, "%s: the reference with bug %s still matches (%.3g): the test cannot see it" % (name, bug, d))


def main():
    if not os.path.exists(HELPER):
        print("missing helper %s (build the oracle_model target)" % HELPER, file=sys.stderr)
        return 1
    common = ["no_gap", "value_no_log", "no_has_value", "window_short", "no_scale", "oov_to_1", "drift_zero"]
    with tempfile.TemporaryDirectory() as tmp:
        small = [1, 3, 17, 24, 5, 16, 2, 20]
        run_config(tmp, "lstm-small", "lstm", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 11, common + ["lstm_gates_if"])
        run_config(tmp, "gru-small", "gru", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 12,
                   common + ["gru_gates_rz", "gru_reset_before"])
        big = [1, 3, 17, 100, 300, 257, 64, 16, 200, 5]
        run_config(tmp, "lstm-64", "lstm", 64, 8, 64, 64, 64, 16, 300, 8, 300, 300, big, 4, 13, [])
        run_config(tmp, "gru-64", "gru", 64, 8, 64, 64, 64, 16, 300, 8, 300, 300, big, 4, 14, [])
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
