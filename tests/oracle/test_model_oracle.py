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

Text models (text_dim > 0): items carry catalogue texts (random unit vectors, some items none,
some ids outside the vocabulary with text), events their own texts, and catalogue texts change
between waves. The reference adds a(t) = text.w (t - text.b) to the item content (RNN input and
window), the event's text to the RNN input only, and looks every window entry's text up again at
each step. The state blob is version 2 (model.h): the previous u as IEEE fp16, against which the
drift is computed (so the drift is compared to 1e-4: where C's and torch's u straddle an fp16
rounding boundary, the rounded vectors differ by one fp16 ulp); u itself and h, c to 1e-5.
Mistakes for the text path: the item text ignored, the event text also in the window, the
adaptor's bias sign, the window keeping the text it was applied with, new items' texts ignored.
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
DRIFT_TOL = 1e-4
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

    def __init__(self, meta, t, bug=None, texts=None):
        self.bug = bug
        self.texts = texts  # np.ndarray (rows, T) or None
        self.item_text = {}  # item id -> row (the catalogue as of now)
        g = lambda k: int(meta[k])
        self.lstm = meta["cell"] == "lstm"
        self.lru = meta["cell"] in ("lru", "none")  # none: the LRU stack's input projection alone
        self.tf = meta.get("attention") == "tf"
        self.E, self.A, self.H, self.K, self.D, self.W = (g(k) for k in ("item_dim", "action_dim", "hidden",
                                                                         "attn_dim", "out_dim", "window"))
        self.I = self.E + self.A + 3
        T = lambda k: torch.tensor(t[k], dtype=torch.float64)
        H = self.H
        if self.lru:
            self.init_lru(meta, T)
        else:
            self.init_cell(T)
        if self.tf:
            self.init_tf(meta, T)
            self.w = {k: T(k) for k in ("out.w", "out.b")}
        else:
            self.w = {k: T(k) for k in ("attn.w_q", "attn.b_q", "attn.w_k", "attn.b_k", "attn.w_v", "attn.b_v",
                                        "out.w", "out.b")}
        self.item_emb, self.action_emb = T("item_emb"), T("action_emb")
        self.T = int(meta.get("text_dim", "0"))
        if self.T:
            self.text_w, self.text_b = T("text.w"), T("text.b")
            if bug == "text_bias_sign":
                self.text_b = -self.text_b
        self.items = {s: i for i, s in enumerate(t["vocab.items"].decode().split("\n"))}
        self.actions = {s: i for i, s in enumerate(t["vocab.actions"].decode().split("\n"))}
        assert self.items.get("<oov>") == 0 and self.actions.get("<oov>") == 0

    def init_tf(self, meta, T):
        """The transformer blocks' tensors, split into blocks (model.h's stacked layouts)."""
        Lt, nh, F, H = int(meta["blocks"]), int(meta["heads"]), int(meta["ffn_dim"]), self.H
        self.nh = 1 if self.bug == "tf_heads_merged" else nh
        ln = T("tf.ln").view(Lt, 4, H)
        self.blocks = [dict(ln1=(ln[l, 0], ln[l, 1]), ln2=(ln[l, 2], ln[l, 3]),
                            qkvw=T("tf.qkv.w").view(Lt, 3 * H, H)[l], qkvb=T("tf.qkv.b")[l],
                            ow=T("tf.o.w").view(Lt, H, H)[l], ob=T("tf.o.b")[l], w1=T("tf.ffn.w1").view(Lt, F, H)[l],
                            b1=T("tf.ffn.b1")[l], w2=T("tf.ffn.w2").view(Lt, H, F)[l], b2=T("tf.ffn.b2")[l])
                       for l in range(Lt)]
        self.lnf = T("tf.lnf")

    def window_attention(self, h, st):
        """The window attention over the entries' inputs, and the output."""
        if self.T and self.bug not in ("window_text_frozen", "event_text_in_window"):
            # every entry's item content with the item's text as of this step
            X = torch.stack([torch.cat([self.content(it, iid), self.action_emb[a], f_]) for it, iid, a, f_, _, _ in st["win"]])
        else:  # no text, or a mistake: the entries as they were when applied
            X = torch.stack([e[5] for e in st["win"]])
        w = self.w
        q = torch.nn.functional.linear(h, w["attn.w_q"], w["attn.b_q"])
        k = torch.nn.functional.linear(X, w["attn.w_k"], w["attn.b_k"])
        v = torch.nn.functional.linear(X, w["attn.w_v"], w["attn.b_v"])
        scale = 1.0 if self.bug == "no_scale" else 1.0 / math.sqrt(self.K)
        a = torch.softmax((k @ q) * scale, dim=0)
        ctx = a @ v
        return torch.nn.functional.linear(torch.cat([h, ctx]), w["out.w"], w["out.b"])

    def tf_step(self, h, st):
        """The transformer blocks over the window of this position (its k, v cached per block)."""
        H, nh, lin, ln = self.H, self.nh, torch.nn.functional.linear, torch.nn.functional.layer_norm
        dh = H // nh
        x = h
        for l, p in enumerate(self.blocks):
            q, k, v = lin(ln(x, (H,), *p["ln1"], 1e-5), p["qkvw"], p["qkvb"]).split(H)
            st["kv"][l].append((k, v))
            st["kvslots"][l][st["events"] % self.W] = (k, v)
            K, V = torch.stack([e[0] for e in st["kv"][l]]), torch.stack([e[1] for e in st["kv"][l]])
            a = torch.softmax(torch.einsum("hd,jhd->hj", q.view(nh, dh), K.view(-1, nh, dh)) / math.sqrt(dh), -1)
            ctx = torch.einsum("hj,jhd->hd", a, V.view(-1, nh, dh)).reshape(H)
            y = x + lin(ctx, p["ow"], p["ob"])
            x = y + lin(torch.nn.functional.gelu(lin(ln(y, (H,), *p["ln2"], 1e-5), p["w1"], p["b1"])), p["w2"], p["b2"])
        if self.bug != "tf_no_final_ln":
            x = ln(x, (H,), self.lnf[0], self.lnf[1], 1e-5)
        return lin(x, self.w["out.w"], self.w["out.b"])

    def init_lru(self, meta, T):
        """The LRU stack's tensors, split into layers (model.h's stacked layouts)."""
        L, N, H = int(meta.get("layers", "0")), int(meta.get("state_dim", "0")), self.H
        F = int(meta["ffn_dim"]) if L else 0
        self.L, self.N = L, N
        self.in_w, self.in_b = T("lru.in.w"), T("lru.in.b")
        self.layers = []
        if L == 0:  # cell none: the input projection alone
            return
        lg, ln = T("lru.log").view(L, 3, N), T("lru.ln").view(L, 4, H)
        for l in range(L):
            lam = torch.exp(torch.complex(-torch.exp(lg[l, 0]), torch.exp(lg[l, 1])))
            self.layers.append(dict(
                lam=lam.conj() if self.bug == "lru_conj" else lam,
                gam=torch.ones(N, dtype=torch.float64) if self.bug == "lru_no_gamma" else torch.exp(lg[l, 2]),
                bw=T("lru.b.w").view(L, 2 * N, H)[l], bb=T("lru.b.b")[l], cw=T("lru.c.w").view(L, H, 2 * N)[l],
                cb=T("lru.c.b")[l], ln1=(ln[l, 0], ln[l, 1]), ln2=(ln[l, 2], ln[l, 3]),
                w1=T("lru.ffn.w1").view(L, F, H)[l], b1=T("lru.ffn.b1")[l], w2=T("lru.ffn.w2").view(L, H, F)[l],
                b2=T("lru.ffn.b2")[l]))

    def lru_step(self, x, hl):
        """One event through the stack: x (I), hl the layers' complex states -> (h_t, new states)."""
        N, lin, ln = self.N, torch.nn.functional.linear, torch.nn.functional.layer_norm
        z, out = lin(x, self.in_w, self.in_b), []
        for l, p in enumerate(self.layers):
            bu = lin(z, p["bw"], p["bb"])
            h = p["lam"] * hl[l] + p["gam"] * torch.complex(bu[:N], bu[N:])
            out.append(h)
            y = lin(torch.cat([h.real, h.imag]), p["cw"], p["cb"])
            z1 = ln(z + y, (self.H,), *p["ln1"], 1e-5)
            f = lin(torch.nn.functional.gelu(lin(z1, p["w1"], p["b1"])), p["w2"], p["b2"])
            z = ln(f if self.bug == "lru_ffn_no_residual" else z1 + f, (self.H,), *p["ln2"], 1e-5)
        return z, out

    def init_cell(self, T):
        H, bug = self.H, self.bug
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
        hl = [torch.zeros(self.N, dtype=torch.complex128) for _ in range(self.L)] if self.lru else None
        nb = len(self.blocks) if self.tf else 0
        return {"h": z, "c": z.clone(), "hl": hl, "u": torch.zeros(self.D, dtype=torch.float64), "events": 0,
                "last_ts": 0, "win": collections.deque(maxlen=W), "slots": [None] * self.W,
                "kv": [collections.deque(maxlen=W) for _ in range(nb)], "kvslots": [[None] * self.W for _ in range(nb)]}

    def adapt(self, row):
        t = torch.tensor(self.texts[row], dtype=torch.float64)
        return self.text_w @ (t - self.text_b)

    def content(self, item, item_id):
        """c = item_emb[item] + a(t_item) with the item's text as of now (model.h)."""
        c = self.item_emb[item]
        if not self.T or self.bug == "no_item_text" or (self.bug == "new_item_text_ignored" and item == 0):
            return c
        row = self.item_text.get(item_id)
        return c if row is None else c + self.adapt(row)

    def step(self, st, ev):
        f = self.features(ev, st)
        item, action = self.item_index(ev["item"]), self.actions.get(ev["action"], 0)
        ft = torch.tensor(f, dtype=torch.float64)
        xw = torch.cat([self.content(item, ev["item"]), self.action_emb[action], ft])  # the window's entry
        x = xw.clone()
        if self.T and ev.get("trow", -1) >= 0:
            x[:self.E] += self.adapt(ev["trow"])
            if self.bug == "event_text_in_window":
                xw = x
        entry = (item, ev["item"], action, ft, None, xw)
        with torch.no_grad():
            if self.lru:
                h, st["hl"] = self.lru_step(x, st["hl"])
                c = st["c"]
            elif self.lstm:
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
            st["win"].append(entry)
            u = self.tf_step(h, st) if self.tf else self.window_attention(h, st)
        if st["events"] == 0 or self.bug == "drift_zero":
            drift = 0.0
        else:  # the state keeps u_{t-1} as fp16 of the float32 u: the drift is against that
            prev = st["u"] if self.bug == "drift_unrounded" else torch.tensor(f16(st["u"]), dtype=torch.float64)
            den = max(float(u.norm() * prev.norm()), 1e-12)
            drift = 1.0 - float(u @ prev) / den
        key = item_key(ev["item"]) if self.T else 0
        st["slots"][st["events"] % self.W] = (item, action, f, key)
        st.update(h=h, c=c, u=u, events=st["events"] + 1, last_ts=ev["ts"])
        return u.numpy(), drift


def f16(v):
    """float64 vector -> float32 -> IEEE fp16 (round to nearest even) -> float64, as the state keeps it."""
    return np.asarray(v, dtype=np.float64).astype(np.float32).astype(np.float16).astype(np.float64)


def item_key(s):
    """FNV-1a 64 of the id's UTF-8 bytes (0 -> 1), model.h's item key."""
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h or 1


# ---- events ---------------------------------------------------------------------------------

def make_events(rng, users, n_items, n_actions, sizes, rounds, n_texts=0):
    """Waves of distinct users; skewed so some users go deep past the window and others stay new.
    With n_texts: event texts (rows n_items+20 ..), and "text" directives that change catalogue
    texts between waves (returned as ("text", item_id, row) entries among the waves)."""
    last = [1_700_000_000_000 + 7919 * u for u in range(users)]
    weights = [1.0 / (1 + u / 8.0) for u in range(users)]
    waves = []
    for _ in range(rounds):
        for s in sizes:
            if n_texts and rng.random() < 0.3:
                iid = "m%d" % rng.randint(1, n_items) if rng.random() < 0.7 else "zz%d" % rng.randint(1, 20)
                waves.append(("text", iid, rng.choice([-1] + list(range(n_items + 20)))))
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
                e = {"user": u, "item": item, "action": action, "ts": last[u], "hv": int(hv), "value": value}
                if n_texts:
                    e["trow"] = rng.randint(n_items + 20, n_texts - 1) if rng.random() < 0.3 else -1
                wave.append(e)
            waves.append(wave)
    return waves


def initial_texts(rng, n_items):
    """The starting catalogue: 70 % of the items and new ids zz1..zz20 (outside the vocabulary)."""
    cat = [("m%d" % i, i - 1) for i in range(1, n_items + 1) if rng.random() < 0.7]
    return [("text", iid, row) for iid, row in cat] + [("text", "zz%d" % k, n_items + k - 1) for k in range(1, 21)]


def write_events(path, users, waves, texts=False):
    with open(path, "w") as f:
        f.write("users %d\n" % users)
        for wave in waves:
            if isinstance(wave, tuple):
                f.write("text %s %d\n" % (wave[1], wave[2]))
                continue
            f.write("wave\n")
            for e in wave:
                f.write("e %d %s %s %d %d %.9g" % (e["user"], e["item"], e["action"], e["ts"], e["hv"], e["value"]))
                f.write(" %d\n" % e["trow"] if texts else "\n")


def reference(meta, t, users, waves, bug=None, texts=None):
    ref = Ref(meta, t, bug, texts)
    states = [ref.new_state() for _ in range(users)]
    vecs, drifts = [], []
    for wave in waves:
        if isinstance(wave, tuple):
            if wave[2] < 0:
                ref.item_text.pop(wave[1], None)
            else:
                ref.item_text[wave[1]] = wave[2]
            continue
        for e in wave:
            u, d = ref.step(states[e["user"]], e)
            vecs.append(u)
            drifts.append(d)
    return ref, states, np.array(vecs), np.array(drifts)


def parse_blob(blob, meta):
    """State layout version 2 (model.h)."""
    H, D, W = int(meta["hidden"]), int(meta["out_dim"]), int(meta["window"])
    text = int(meta.get("text_dim", "0")) > 0
    lstm = meta["cell"] == "lstm"
    magic, ver, cell, events, last_ts, wlen, head, fp = struct.unpack_from("<IHHqqHHQ", blob, 0)
    off = 36
    h = np.frombuffer(blob, "<f4", H, off); off += 4 * H
    c, hl = None, None
    if lstm:
        c = np.frombuffer(blob, "<f4", H, off); off += 4 * H
    if meta["cell"] == "lru":  # the layers' complex states: N real parts, then N imaginary parts, per layer
        L, N = int(meta["layers"]), int(meta["state_dim"])
        hl = np.frombuffer(blob, "<f4", 2 * N * L, off).reshape(L, 2, N); off += 8 * N * L
    u = np.frombuffer(blob, "<f2", D, off).astype(np.float64); off += 2 * D
    size = 24 if text else 16
    slots = []
    for j in range(W):
        item, action, flags, pad, f0, f1 = struct.unpack_from("<iHBBff", blob, off + size * j)
        key = struct.unpack_from("<Q", blob, off + size * j + 16)[0] if text else 0
        slots.append((item, action, (f0, f1, float(flags & 1)), key, flags >> 1, pad))
    off += size * W
    kv = None
    if meta.get("attention") == "tf":  # per block, per window slot: k (H) then v (H)
        Lt = int(meta["blocks"])
        kv = np.frombuffer(blob, "<f4", Lt * W * 2 * H, off).reshape(Lt, W, 2, H); off += 4 * Lt * W * 2 * H
    assert off == len(blob), "state size %d != %d" % (len(blob), off)
    return dict(kv=kv, magic=magic, ver=ver, cell=cell, events=events, last_ts=last_ts, wlen=wlen, head=head, fp=fp,
                h=h, c=c, hl=hl, u=u, slots=slots)


def run_config(tmp, name, cell, E, A, H, K, D, W, n_items, n_actions, users, max_batch, sizes, rounds, seed,
               mutations, T=0):
    path = os.path.join(tmp, name + ".safetensors")
    subprocess.run([HELPER, "init", path, cell, str(E), str(A), str(H), str(K), str(D), str(W), str(n_items),
                    str(n_actions), str(seed)] + ([str(T)] if T else []), check=True)
    meta, t = read_safetensors(path)
    check(json.loads(meta["meta"]) == {"purpose": "oracle test", "seed": 1}, name + ": metadata did not survive")
    check(meta["model_id"] == "oracle-" + meta["fingerprint"][:12], name + ": model_id is not name-fingerprint")
    check(int(meta.get("text_dim", "0")) == T, name + ": text_dim in the metadata")
    rng = random.Random(seed)
    texts, tx_path, extra = None, [], []
    if T:
        n_texts = n_items + 20 + 64
        texts = np.array([rng.gauss(0, 1) + 0.3 for _ in range(n_texts * T)], dtype=np.float32).reshape(n_texts, T)
        texts /= np.linalg.norm(texts, axis=1, keepdims=True)
        tx_path = [os.path.join(tmp, name + ".texts")]
        texts.astype("<f4").tofile(tx_path[0])
        extra = initial_texts(rng, n_items)
    waves = extra + make_events(rng, users, n_items, n_actions, sizes, rounds, n_texts=len(texts) if T else 0)
    ev_path = os.path.join(tmp, name + ".events")
    write_events(ev_path, users, waves, texts=bool(T))
    ref, ref_states, ref_vec, ref_drift = reference(meta, t, users, waves, texts=texts)
    n_events = len(ref_drift)
    deep = sum(1 for s in ref_states if s["events"] > W)
    if T:
        evs = [e for w in waves if not isinstance(w, tuple) for e in w]
        n_new = sum(1 for e in evs if e["item"].startswith("zz"))
        n_etext = sum(1 for e in evs if e["trow"] >= 0)
        n_changes = sum(1 for w in waves if isinstance(w, tuple)) - len(extra)
        print("%-10s text T=%d: %d events with their own text, %d of items outside the vocabulary, %d catalogue changes"
              % (name, T, n_etext, n_new, n_changes))
        check(n_new > 0 and n_etext > 0 and n_changes > 0, name + ": the text cases were missed")
    outs = {}
    for backend in ("scalar", "dnnl"):
        vec_path, st_path = os.path.join(tmp, name + "." + backend + ".vec"), os.path.join(tmp, name + "." + backend + ".st")
        subprocess.run([HELPER, "run", path, ev_path, backend, str(max_batch), vec_path, st_path] + tx_path, check=True)
        out = np.fromfile(vec_path, dtype="<f4").reshape(n_events, D + 1).astype(np.float64)
        blobs = open(st_path, "rb").read()
        ss = len(blobs) // users
        d_vec = float(np.abs(out[:, :D] - ref_vec).max())
        d_drift = float(np.abs(out[:, D] - ref_drift).max())
        d_state, d_u16 = 0.0, 0.0
        for uidx, rs in enumerate(ref_states):
            b = parse_blob(blobs[uidx * ss:(uidx + 1) * ss], meta)
            ok = (b["magic"] == 0x53564549 and b["ver"] == 2 and b["cell"] == ["lstm", "gru", "lru", "none"].index(cell.split(":")[0].split("+")[0])
                  and b["fp"] == int(meta["fingerprint"], 16) and b["events"] == rs["events"]
                  and b["last_ts"] == rs["last_ts"] and b["wlen"] == min(rs["events"], W) and b["head"] == rs["events"] % W)
            check(ok, "%s/%s user %d: state header %s" % (name, backend, uidx, {k: b[k] for k in ("magic", "ver", "cell", "events", "last_ts", "wlen", "head")}))
            d_state = max(d_state, float(np.abs(b["h"] - rs["h"].numpy()).max()))
            # u as fp16: within one fp16 ulp of the reference's rounding once C's own difference in
            # u is allowed for (|fp16(a) - fp16(b)| <= |a - b| + one ulp: C's float u may sit on the
            # other side of a rounding boundary)
            want_u = f16(rs["u"].numpy())
            ulp = np.maximum(np.abs(want_u) * 2.0 ** -10, 2.0 ** -24)
            d_u16 = max(d_u16, float(((np.abs(b["u"] - want_u) - d_vec) / ulp).max()))
            if b["c"] is not None:
                d_state = max(d_state, float(np.abs(b["c"] - rs["c"].numpy()).max()))
            if b["kv"] is not None:
                for l, slots in enumerate(rs["kvslots"]):
                    for j, e in enumerate(slots):
                        want = np.zeros((2, H)) if e is None else np.stack([e[0].numpy(), e[1].numpy()])
                        d_state = max(d_state, float(np.abs(b["kv"][l, j] - want).max()))
            if b["hl"] is not None:
                want_hl = np.stack([np.stack([h.real.numpy(), h.imag.numpy()]) for h in rs["hl"]])
                d_state = max(d_state, float(np.abs(b["hl"] - want_hl).max()))
            for j in range(W):
                want = rs["slots"][j]
                got = b["slots"][j]
                if want is None:
                    check(got == (0, 0, (0.0, 0.0, 0.0), 0, 0, 0), "%s/%s user %d: unused slot %d is %s" % (name, backend, uidx, j, got))
                else:
                    check(got == (want[0], want[1], tuple(want[2]), want[3], 0, 0),
                          "%s/%s user %d slot %d: %s, want %s" % (name, backend, uidx, j, got, want))
        print("%-10s %-6s %5d events, %3d users past W=%d: max|diff| u %.2e drift %.2e state %.2e, u fp16 %.2f ulp"
              % (name, backend, n_events, deep, W, d_vec, d_drift, d_state, d_u16))
        check(d_vec <= TOL and d_drift <= DRIFT_TOL and d_state <= TOL and d_u16 <= 1.0,
              "%s/%s: differs from torch (u %.3g drift %.3g state %.3g u fp16 %.3g ulp)"
              % (name, backend, d_vec, d_drift, d_state, d_u16))
        outs[backend] = out
    check(deep > 0, name + ": no user went past the window")
    # Sensitivity: each deliberate mistake must be visible far above the tolerance.
    for bug in mutations:
        _, _, bvec, bdrift = reference(meta, t, users, waves, bug, texts=texts)
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
        # text models: the adaptor, event texts, new items, catalogue changes; mistakes must show
        text_bugs = ["no_item_text", "event_text_in_window", "text_bias_sign", "window_text_frozen",
                     "new_item_text_ignored"]
        run_config(tmp, "lstm-text", "lstm", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 15, text_bugs + ["no_scale"], T=12)
        run_config(tmp, "gru-text", "gru", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 16, text_bugs + ["drift_zero"], T=12)
        run_config(tmp, "gru-512", "gru", 64, 8, 64, 64, 64, 16, 300, 8, 300, 300, big, 4, 17, [], T=512)
        # the LRU stack: small and odd, then the product's shape; text through it too
        lru_bugs = ["lru_conj", "lru_no_gamma", "lru_ffn_no_residual"]
        run_config(tmp, "lru-small", "lru:2:5:13", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 18,
                   common + lru_bugs)
        run_config(tmp, "lru-64", "lru:2:64:128", 64, 8, 64, 64, 64, 16, 300, 8, 300, 300, big, 4, 19, [])
        run_config(tmp, "lru-text", "lru:3:4:9", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 20, text_bugs, T=12)
        # transformer blocks with their key/value cache, on a GRU, on the LRU stack, alone
        tf_bugs = ["tf_heads_merged", "tf_no_final_ln", "window_short"]
        run_config(tmp, "gru+tf", "gru+tf:2:2:13", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 21, tf_bugs)
        run_config(tmp, "lru+tf", "lru:2:5:13+tf:2:2:13", 6, 3, 10, 7, 5, 4, 25, 4, 30, 24, small, 6, 22, tf_bugs)
        run_config(tmp, "none+tf", "none+tf:3:5:9", 6, 3, 10, 7, 5, 3, 25, 4, 30, 24, small, 6, 25, ["no_gap"], T=12)
        run_config(tmp, "gru+tf-64", "gru+tf:2:2:128", 64, 8, 64, 64, 64, 16, 300, 8, 300, 300, big, 4, 24, [])
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
