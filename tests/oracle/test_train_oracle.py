#!/usr/bin/python3
"""test_train_oracle: the trainer's gradients against torch autograd (float64).

1. Kernels: oracle_train writes random inputs, a cotangent, and nn_ref's forward outputs and
   backward gradients for linear, lstm_cell, gru_cell and window_attention; torch recomputes
   the forward with autograd (nn.LSTMCell, nn.GRUCell, plain ops) and every gradient must agree.
2. The whole training loss: oracle_train builds a model with both heads, runs
   train_batch_loss_grad (scalar and oneDNN backends) over event histories with OOV items and
   actions, zero and long gaps, values on some events; torch rebuilds model.h's function from the
   model file with its own safetensors reader (tests/oracle/test_model_oracle.py), the loss as
   the trainer defines it (per BPTT chunk: the mean over the chunk's targets of the softmax
   cross-entropy over every item but OOV plus value_weight * the squared g-space value error;
   chunks summed; the RNN state detached between chunks, the window crossing them; with
   mask_seen, the items of the inputs so far but the target left out of the softmax), and
   autograd's gradient of every tensor must agree with C's.
3. Sensitivity: the reference is rerun with one deliberate mistake at a time (no detach between
   chunks, the window without the current event, no 1/sqrt(K), OOV targets kept, the value term
   dropped, the gap feature dropped, LSTM/GRU gate order) and each must move the gradient far
   past the tolerance, so the comparison could fail.
"""
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_model_oracle import read_safetensors  # noqa: E402  (its own safetensors + CRC-32C reader)

BUILD = os.environ.get("IEVO_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
HELPER = os.path.join(BUILD, "oracle_train")
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def read_records(path):
    out, buf, pos = {}, open(path, "rb").read(), 0
    while pos < len(buf):
        nl = buf.index(b"\n", pos)
        name = buf[pos:nl].decode()
        (n,) = struct.unpack_from("<I", buf, nl + 1)
        out[name] = np.frombuffer(buf, "<f4", n, nl + 5).astype(np.float64)
        pos = nl + 5 + 4 * n
    return out


def rel(a, b):
    if a is None or b is None:
        return float("inf")
    if isinstance(b, torch.Tensor):
        b = b.detach().numpy()
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or not np.isfinite(a).all() or not np.isfinite(b).all():
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-3))


# ---- 1. kernels -------------------------------------------------------------------------------

def kernels(tmp):
    path = os.path.join(tmp, "kernels.bin")
    subprocess.run([HELPER, "kernels", path, "5"], check=True)
    r = read_records(path)
    B, I, H, K, n, OC = 3, 7, 5, 6, 4, 4

    def T(k, *shape):  # a leaf tensor of the given shape (so autograd fills its .grad)
        return torch.tensor(r[k].reshape(shape or (-1,)), requires_grad=True)

    worst = {}

    # linear
    x, w, b = T("linear.x", B, I), T("linear.w", OC, I), T("linear.b")
    y = x @ w.T + b
    (y * torch.tensor(r["linear.g"]).view(B, OC)).sum().backward()
    worst["linear"] = max(rel(r["linear.y"], y.detach()), rel(r["linear.dx"], x.grad), rel(r["linear.dw"], w.grad),
                          rel(r["linear.db"], b.grad))

    def lstm(bug=None):
        x, h, c = T("lstm.x", B, I), T("lstm.h", B, H), T("lstm.c", B, H)
        ws = [T("lstm.w_ih", 4 * H, I), T("lstm.w_hh", 4 * H, H), T("lstm.b_ih"), T("lstm.b_hh")]
        cell = torch.nn.LSTMCell(I, H)
        wi, wh, bi, bh = ws
        if bug == "if_swapped":
            p = torch.cat([torch.arange(H, 2 * H), torch.arange(0, H), torch.arange(2 * H, 4 * H)])
            wi, wh, bi, bh = wi[p], wh[p], bi[p], bh[p]
        g = x @ wi.T + bi + h @ wh.T + bh
        i, f, gg, o = g[:, :H].sigmoid(), g[:, H:2 * H].sigmoid(), g[:, 2 * H:3 * H].tanh(), g[:, 3 * H:].sigmoid()
        c2 = f * c + i * gg
        h2 = o * c2.tanh()
        if bug is None:  # the hand-written cell is nn.LSTMCell
            with torch.no_grad():
                cell.weight_ih.copy_(ws[0]), cell.weight_hh.copy_(ws[1]), cell.bias_ih.copy_(ws[2]), cell.bias_hh.copy_(ws[3])
                hh, cc = cell(x, (h, c))
            assert float((hh - h2).abs().max()) < 1e-12 and float((cc - c2).abs().max()) < 1e-12
        ((h2 * torch.tensor(r["lstm.gh"]).view(B, H)).sum() + (c2 * torch.tensor(r["lstm.gc"]).view(B, H)).sum()).backward()
        return max(rel(r["lstm.h_out"], h2.detach()), rel(r["lstm.c_out"], c2.detach()), rel(r["lstm.dx"], x.grad),
                   rel(r["lstm.dh"], h.grad), rel(r["lstm.dc"], c.grad), rel(r["lstm.dw_ih"], ws[0].grad),
                   rel(r["lstm.dw_hh"], ws[1].grad), rel(r["lstm.db_ih"], ws[2].grad), rel(r["lstm.db_hh"], ws[3].grad))

    def gru(bug=None):
        x, h = T("gru.x", B, I), T("gru.h", B, H)
        ws = [T("gru.w_ih", 3 * H, I), T("gru.w_hh", 3 * H, H), T("gru.b_ih"), T("gru.b_hh")]
        cell = torch.nn.GRUCell(I, H)
        if bug == "reset_before":  # the classic GRU: reset applied to h before W_hn
            wi, wh, bi, bh = ws
            gx, gh = x @ wi.T + bi, h @ wh.T + bh
            rr, z = (gx[:, :H] + gh[:, :H]).sigmoid(), (gx[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
            nn_ = (gx[:, 2 * H:] + (rr * h) @ wh[2 * H:].T + bh[2 * H:]).tanh()
            h2 = (1 - z) * nn_ + z * h
        else:
            cell.weight_ih, cell.weight_hh = torch.nn.Parameter(ws[0]), torch.nn.Parameter(ws[1])
            cell.bias_ih, cell.bias_hh = torch.nn.Parameter(ws[2]), torch.nn.Parameter(ws[3])
            h2 = cell(x, h)
            ws = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        (h2 * torch.tensor(r["gru.g"]).view(B, H)).sum().backward()
        return max(rel(r["gru.h_out"], h2.detach()), rel(r["gru.dx"], x.grad), rel(r["gru.dh"], h.grad),
                   rel(r["gru.dw_ih"], ws[0].grad), rel(r["gru.dw_hh"], ws[1].grad), rel(r["gru.db_ih"], ws[2].grad),
                   rel(r["gru.db_hh"], ws[3].grad))

    def att(bug=None):
        h, xs = T("att.h"), T("att.xs", n, I)
        wq, bq, wk, bk = T("att.w_q", K, H), T("att.b_q"), T("att.w_k", K, I), T("att.b_k")
        wv, bv = T("att.w_v", K, I), T("att.b_v")
        q, k, v = wq @ h + bq, xs @ wk.T + bk, xs @ wv.T + bv
        scale = 1.0 if bug == "no_scale" else 1 / math.sqrt(K)
        a = torch.softmax(k @ q * scale, 0)
        ctx = a @ v
        (ctx * torch.tensor(r["att.g"])).sum().backward()
        return max(rel(r["att.ctx"], ctx.detach()), rel(r["att.dh"], h.grad), rel(r["att.dxs"], xs.grad),
                   rel(r["att.dw_q"], wq.grad), rel(r["att.db_q"], bq.grad), rel(r["att.dw_k"], wk.grad),
                   rel(r["att.db_k"], bk.grad), rel(r["att.dw_v"], wv.grad), rel(r["att.db_v"], bv.grad))

    def layernorm(bug=None):
        C = 6
        x, w, b = T("ln.x", B, C), T("ln.w"), T("ln.b")
        if bug == "unbiased_var":  # the sample variance instead of the population one torch uses
            y = (x - x.mean(1, keepdim=True)) / (x.var(1, unbiased=True, keepdim=True) + 1e-5).sqrt() * w + b
        else:
            y = torch.nn.functional.layer_norm(x, (C,), w, b, 1e-5)
        (y * torch.tensor(r["ln.g"]).view(B, C)).sum().backward()
        return max(rel(r["ln.y"], y.detach()), rel(r["ln.dx"], x.grad), rel(r["ln.dw"], w.grad), rel(r["ln.db"], b.grad))

    def gelu(bug=None):
        x = T("gelu.x")
        y = x * torch.sigmoid(1.702 * x) if bug == "sigmoid" else torch.nn.functional.gelu(x)
        (y * torch.tensor(r["gelu.g"])).sum().backward()
        return max(rel(r["gelu.y"], y.detach()), rel(r["gelu.dx"], x.grad))

    def lru(bug=None):
        N, TT = 4, 5
        nu, th, gl = T("lru.nu"), T("lru.theta"), T("lru.gamma_log")
        u, h0 = T("lru.u", TT, B, 2, N), T("lru.h0", B, 2, N)
        lam = torch.exp(torch.complex(-torch.exp(nu), torch.exp(th)))  # exp(-exp(nu) + i exp(theta))
        if bug == "conj":
            lam = lam.conj()
        gam = torch.exp(gl)
        uc = torch.complex(u[:, :, 0], u[:, :, 1]) * gam
        h, hs = torch.complex(h0[:, 0], h0[:, 1]), []
        for t in range(TT):
            h = lam * h + uc[t]
            hs.append(torch.stack([h.real, h.imag], 1))
        hs = torch.stack(hs)
        (hs * torch.tensor(r["lru.g"]).view(TT, B, 2, N)).sum().backward()
        return max(rel(r["lru.hs"], hs.detach()), rel(r["lru.du"], u.grad), rel(r["lru.dh0"], h0.grad),
                   rel(r["lru.dnu"], nu.grad), rel(r["lru.dtheta"], th.grad), rel(r["lru.dgamma_log"], gl.grad))

    def mha(bug=None):
        Hm, nh, nw = 6, 3, 5
        q, kv = T("mha.q"), T("mha.kv", nw, 2, Hm)
        k, v = kv[:, 0], kv[:, 1]
        dh = Hm // nh
        scale = 1.0 if bug == "no_scale" else 1 / math.sqrt(dh)
        # torch's own multi-head attention core on (heads, 1, dh) x (heads, n, dh)
        qh, kh, vh = q.view(nh, 1, dh), k.reshape(nw, nh, dh).transpose(0, 1), v.reshape(nw, nh, dh).transpose(0, 1)
        if bug == "heads_mixed":  # one head over the whole width, scaled as if it were a head
            a = torch.softmax((k @ q) * scale, 0)
            out = a @ v
        else:
            a = torch.softmax((qh @ kh.transpose(1, 2)) * scale, -1)
            out = (a @ vh).reshape(Hm)
        (out * torch.tensor(r["mha.g"])).sum().backward()
        return max(rel(r["mha.out"], out.detach()), rel(r["mha.dq"], q.grad), rel(r["mha.dkv"], kv.grad))

    worst["lstm_cell"], worst["gru_cell"], worst["window_attention"] = lstm(), gru(), att()
    worst["mha_window"] = mha()
    worst["layernorm"], worst["gelu"], worst["lru_scan"] = layernorm(), gelu(), lru()
    for k_, v_ in worst.items():
        print("kernel %-17s forward and backward vs torch autograd: max rel diff %.2e" % (k_, v_))
        check(v_ <= 1e-5, "kernel %s differs from torch autograd (%.3g)" % (k_, v_))
    for name, d in (("lstm gates i/f swapped", lstm("if_swapped")), ("gru reset before W_hn", gru("reset_before")),
                    ("attention without 1/sqrt(K)", att("no_scale")), ("layernorm, sample variance", layernorm("unbiased_var")),
                    ("gelu, sigmoid form", gelu("sigmoid")), ("lru, conjugate eigenvalues", lru("conj")),
                    ("mha, heads mixed", mha("heads_mixed")), ("mha without 1/sqrt(dh)", mha("no_scale"))):
        print("kernel mutation %-28s moves the comparison to %.2e" % (name, d))
        check(d > 1e-2, "kernel mutation '%s' goes unnoticed (%.3g)" % (name, d))


# ---- 2. the whole loss --------------------------------------------------------------------------

def make_events(rng, lens, n_items, n_actions):
    users = []
    for u, n in enumerate(lens):
        ts, evs = 1_700_000_000_000 + 1000 * u, []
        for _ in range(n):
            p = rng.random()
            ts += 0 if p < 0.15 else rng.randint(1, 600_000) if p < 0.8 else rng.randint(1, 900_000_000)
            q = rng.random()
            item = "zz%d" % rng.randint(1, 9) if q < 0.06 else "m%d" % rng.randint(1, n_items)
            action = "bogus" if rng.random() < 0.05 else "act%d" % rng.randint(1, n_actions)
            hv = int(rng.random() < 0.6)
            value = float(np.float32(rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 0.0, -2.5, 120.0]))) if hv else 0.0
            evs.append((item, action, ts, hv, value))
        users.append(evs)
    return users


def write_events(path, users):
    with open(path, "w") as f:
        f.write("users %d\n" % len(users))
        for evs in users:
            f.write("user %d\n" % len(evs))
            for e in evs:
                f.write("%s %s %d %d %.9g\n" % e)


class Ref:
    def __init__(self, meta, t, bug=None):
        self.bug = bug
        g = lambda k: int(meta[k])
        self.lstm = meta["cell"] == "lstm"
        self.lru = meta["cell"] in ("lru", "none")  # none: the LRU stack's input projection alone
        if self.lru:
            self.L, self.N = int(meta.get("layers", "0")), int(meta.get("state_dim", "0"))
            self.F = int(meta.get("ffn_dim", "0"))
        self.tf = meta.get("attention") == "tf"
        if self.tf:
            self.Lt, self.nh, self.Ft = int(meta["blocks"]), int(meta["heads"]), int(meta["ffn_dim"])
        self.E, self.A, self.H, self.K, self.D, self.W = (g(k) for k in ("item_dim", "action_dim", "hidden",
                                                                         "attn_dim", "out_dim", "window"))
        self.p = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in t.items()
                  if not k.startswith("vocab.")}
        self.items = {s: i for i, s in enumerate(t["vocab.items"].decode().split("\n"))}
        self.actions = {s: i for i, s in enumerate(t["vocab.actions"].decode().split("\n"))}

    def features(self, ev, events, last_ts):
        _, _, ts, hv, v = ev
        gap = 0.0 if events == 0 else max(0.0, (ts - last_ts) / 1000.0)
        f0 = 0.0 if self.bug == "no_gap" else math.log1p(gap) / 10.0
        f1 = math.copysign(math.log1p(abs(v)), v) if hv else 0.0
        return [float(np.float32(f)) for f in (f0, f1, 1.0 if hv else 0.0)]

    def lru_stack(self, x, hl):
        """model.h's LRU stack on one input x (I) from the layers' complex states hl -> (h_t, states)."""
        p, H, N, F, L = self.p, self.H, self.N, self.F, self.L
        lin, ln = torch.nn.functional.linear, torch.nn.functional.layer_norm
        z, out = lin(x, p["lru.in.w"], p["lru.in.b"]), []
        if L == 0:  # cell none: the input projection alone
            return z, out
        lg, lnp = p["lru.log"].view(L, 3, N), p["lru.ln"].view(L, 4, H)
        for l in range(L):
            lam = torch.exp(torch.complex(-torch.exp(lg[l, 0]), torch.exp(lg[l, 1])))
            gam = torch.exp(lg[l, 2]) if self.bug != "lru_no_gamma" else torch.ones(N)
            bu = lin(z, p["lru.b.w"].view(L, 2 * N, H)[l], p["lru.b.b"][l])
            h = lam * hl[l] + gam * torch.complex(bu[:N], bu[N:])
            out.append(h)
            y = lin(torch.cat([h.real, h.imag]), p["lru.c.w"].view(L, H, 2 * N)[l], p["lru.c.b"][l])
            z1 = ln(z + y, (H,), lnp[l, 0], lnp[l, 1], 1e-5)
            g = torch.nn.functional.gelu(lin(z1, p["lru.ffn.w1"].view(L, F, H)[l], p["lru.ffn.b1"][l]))
            f = lin(g, p["lru.ffn.w2"].view(L, H, F)[l], p["lru.ffn.b2"][l])
            z = ln(z1 + f, (H,), lnp[l, 2], lnp[l, 3], 1e-5)
        return z, out

    def tf_blocks(self, h, kvs):
        """The transformer blocks at one position: h (H), kvs[l] the block's (k, v) of the window
        so far (this position's appended here) -> u."""
        p, H, Lt, nh, F, W = self.p, self.H, self.Lt, self.nh, self.Ft, self.W
        lin, ln = torch.nn.functional.linear, torch.nn.functional.layer_norm
        dh = H // nh
        lnp = p["tf.ln"].view(Lt, 4, H)
        x = h
        for l in range(Lt):
            q, k, v = lin(ln(x, (H,), lnp[l, 0], lnp[l, 1], 1e-5), p["tf.qkv.w"].view(Lt, 3 * H, H)[l],
                          p["tf.qkv.b"][l]).split(H)
            kvs[l].append((k, v))
            del kvs[l][:-W]
            K, V = torch.stack([e[0] for e in kvs[l]]), torch.stack([e[1] for e in kvs[l]])
            a = torch.softmax(torch.einsum("hd,jhd->hj", q.view(nh, dh), K.view(-1, nh, dh)) / math.sqrt(dh), -1)
            ctx = torch.einsum("hj,jhd->hd", a, V.view(-1, nh, dh)).reshape(H)
            y = x + lin(ctx, p["tf.o.w"].view(Lt, H, H)[l], p["tf.o.b"][l])
            g = torch.nn.functional.gelu(lin(ln(y, (H,), lnp[l, 2], lnp[l, 3], 1e-5), p["tf.ffn.w1"].view(Lt, F, H)[l],
                                             p["tf.ffn.b1"][l]))
            x = y + lin(g, p["tf.ffn.w2"].view(Lt, H, F)[l], p["tf.ffn.b2"][l])
        x = ln(x, (H,), p["tf.lnf"][0], p["tf.lnf"][1], 1e-5)
        return lin(x, p["out.w"], p["out.b"])

    def cell(self, x, h, c):
        p, H = self.p, self.H
        wi, wh, bi, bh = p["rnn.w_ih"], p["rnn.w_hh"], p["rnn.b_ih"], p["rnn.b_hh"]
        if self.bug == "gates_swapped":
            perm = torch.cat([torch.arange(H, 2 * H), torch.arange(0, H), torch.arange(2 * H, wi.shape[0])])
            wi, wh, bi, bh = wi[perm], wh[perm], bi[perm], bh[perm]
        gx, gh = wi @ x + bi, wh @ h + bh
        if self.lstm:
            g = gx + gh
            i, f, gg, o = g[:H].sigmoid(), g[H:2 * H].sigmoid(), g[2 * H:3 * H].tanh(), g[3 * H:].sigmoid()
            c = f * c + i * gg
            return o * c.tanh(), c
        r, z = (gx[:H] + gh[:H]).sigmoid(), (gx[H:2 * H] + gh[H:2 * H]).sigmoid()
        n = (gx[2 * H:] + r * gh[2 * H:]).tanh()
        return (1 - z) * n + z * h, c

    def loss(self, users, bptt, value_weight=1.0, mask_seen=0):
        p, W, K = self.p, self.W, self.K
        if self.bug == "no_value":
            value_weight = 0.0
        per_chunk = {}  # chunk -> list of position losses
        for evs in users:
            h, c = torch.zeros(self.H), torch.zeros(self.H)
            hl = [torch.zeros(self.N, dtype=torch.complex128) for _ in range(self.L)] if self.lru else None
            kvs = [[] for _ in range(self.Lt)] if self.tf else None
            xs, events, last_ts = [], 0, 0
            n_in = len(evs) - 1
            for t in range(n_in):
                if t > 0 and t % bptt == 0 and self.bug != "no_detach":
                    h, c = h.detach(), c.detach()
                    hl = [s.detach() for s in hl] if self.lru else None
                    if self.tf and self.bug != "tf_kv_attached":  # the blocks' cache crosses detached
                        kvs = [[(k.detach(), v.detach()) for k, v in b] for b in kvs]
                ev = evs[t]
                f = self.features(ev, events, last_ts)
                events, last_ts = events + 1, ev[2]
                item, action = self.items.get(ev[0], 0), self.actions.get(ev[1], 0)
                x = torch.cat([p["item_emb"][item], p["action_emb"][action], torch.tensor(f)])
                if self.lru:
                    h, hl = self.lru_stack(x, hl)
                else:
                    h, c = self.cell(x, h, c)
                xs.append(x)
                if self.tf:
                    u = self.tf_blocks(h, kvs)
                else:
                    win = xs[-W:] if self.bug != "window_no_current" else (xs[-W - 1:-1] or xs[-1:])
                    X = torch.stack(win)
                    q = p["attn.w_q"] @ h + p["attn.b_q"]
                    k, v = X @ p["attn.w_k"].T + p["attn.b_k"], X @ p["attn.w_v"].T + p["attn.b_v"]
                    scale = 1.0 if self.bug == "no_scale" else 1 / math.sqrt(K)
                    a = torch.softmax(k @ q * scale, 0)
                    u = p["out.w"] @ torch.cat([h, a @ v]) + p["out.b"]
                nxt = evs[t + 1]
                ti = self.items.get(nxt[0], 0)
                if ti == 0 and self.bug != "oov_target":
                    continue
                logits = p["score.item_emb"][1:] @ u + p["score.item_bias"][1:]
                if mask_seen and self.bug != "mask_ignored":  # the inputs' items (but the target) leave the softmax
                    seen = {self.items.get(e[0], 0) for e in evs[:t + 1]} - {0, ti}
                    if seen:
                        keep = torch.ones(logits.shape[0], dtype=torch.bool)
                        keep[[s - 1 for s in seen]] = False
                        logits = logits.masked_fill(~keep, float("-inf"))
                if self.bug == "oov_target":
                    logits = p["score.item_emb"] @ u + p["score.item_bias"]
                    ti += 1
                l = torch.logsumexp(logits, 0) - logits[ti - 1]
                if nxt[3]:
                    y = float(np.float32(math.copysign(math.log1p(abs(nxt[4])), nxt[4])))
                    vi = ti if self.bug != "oov_target" else ti - 1
                    pred = u @ (p["value.w"] + p["value.item_emb"][vi]) + p["value.item_bias"][vi] + p["value.bias"][0]
                    l = l + value_weight * (pred - y) ** 2
                per_chunk.setdefault(t // bptt, []).append(l)
        total = sum(torch.stack(ls).mean() for ls in per_chunk.values())
        total.backward()
        return float(total), {k: v.grad.numpy() if v.grad is not None else np.zeros(v.shape) for k, v in p.items()}


def whole_loss(tmp, cell, bptt, mutations, mask=0):
    lens = [17, 3, 30, 9, 24, 12, 2]
    n_items, n_actions = 15, 3
    rng = random.Random(hash((cell, bptt)) & 0xFFFF)
    users = make_events(rng, lens, n_items, n_actions)
    ev_path, model_path = os.path.join(tmp, "events.txt"), os.path.join(tmp, "m-%s-%d.safetensors" % (cell, bptt))
    write_events(ev_path, users)
    outs = {}
    for backend in ("scalar", "dnnl"):
        out = os.path.join(tmp, "grad-%s.bin" % backend)
        subprocess.run([HELPER, "grad", model_path, ev_path, cell, "6", "3", "7", "5", "6", "4", str(n_items),
                        str(n_actions), "9", str(bptt), backend, str(mask), out], check=True)
        outs[backend] = read_records(out)
    meta, t = read_safetensors(model_path)
    loss, grads = Ref(meta, t).loss(users, bptt, mask_seen=mask)
    for backend, r in outs.items():
        c_loss = struct.unpack("<d", struct.pack("<2f", *np.float32(r["loss"])))[0]
        worst, worst_k = 0.0, ""
        for k, g in grads.items():
            d = rel(r[k], g)
            if d > worst:
                worst, worst_k = d, k
        print("%s bptt %2d mask_seen %d %-6s: loss %.8f vs torch %.8f; worst gradient %s rel %.2e"
              % (cell, bptt, mask, backend, c_loss, loss, worst_k, worst))
        check(abs(c_loss - loss) <= 1e-5 * abs(loss), "%s/%s bptt %d: loss %.9g vs torch %.9g" % (cell, backend, bptt, c_loss, loss))
        check(worst <= 1e-4, "%s/%s bptt %d: gradient of %s differs from torch (%.3g)" % (cell, backend, bptt, worst_k, worst))
    for bug in mutations:
        _, bg = Ref(meta, t, bug).loss(users, bptt, mask_seen=mask)
        d = max(rel(outs["dnnl"][k], bg[k]) for k in bg)
        print("%s bptt %2d mutation %-18s moves the gradient by %.2e" % (cell, bptt, bug, d))
        check(d > 100 * 1e-4, "%s: mutation %s goes unnoticed (%.3g)" % (cell, bug, d))


def main():
    if not os.path.exists(HELPER):
        print("missing helper %s (build the oracle_train target)" % HELPER, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        kernels(tmp)
        common = ["no_detach", "window_no_current", "no_scale", "oov_target", "no_value", "no_gap", "gates_swapped"]
        whole_loss(tmp, "lstm", 8, common)
        whole_loss(tmp, "gru", 8, common)
        whole_loss(tmp, "lstm", 64, [])
        whole_loss(tmp, "gru", 64, [])
        whole_loss(tmp, "gru", 8, ["mask_ignored"], mask=1)
        # the LRU stack: through chunks (the complex states detached between them) and in one
        whole_loss(tmp, "lru:2:5:11", 8, ["no_detach", "window_no_current", "no_value", "no_gap", "lru_no_gamma"])
        whole_loss(tmp, "lru:3:4:9", 64, [])
        # transformer blocks: their key/value cache crossing chunks detached, on a GRU and alone
        whole_loss(tmp, "gru+tf:2:1:11", 8, ["tf_kv_attached", "no_detach", "no_value", "no_gap"])
        whole_loss(tmp, "none+tf:2:7:7", 8, ["tf_kv_attached"])
        whole_loss(tmp, "lru:2:3:7+tf:1:7:7", 64, [])
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
