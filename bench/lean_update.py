"""Does less work make the RLDT actor update faster? An eager variant of bench/perf_torch.py's
update that (1) samples the chain with the observation's share of the first layer computed once
per chain and the time embedding once per Euler step (one row, broadcast), in-place ReLU and
residual adds, and (2) runs the x_k and L_ref forwards as one 2N-row pass. Alternated with the
plain eager update, round by round (issue 6; docs/benchmarks.md, "Sampling profiles with perf").

    PYTHONPATH=python .venv/bin/python bench/lean_update.py [--states 256] [--rounds 4] [--min-time 2]

Both sides use the same networks and sizes; the printed ratios are lean / plain per round, for
the whole update and for the sampling chain alone (2048 rows at 256 states).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_torch as pt  # noqa: E402
from perf_torch import ACT, A, H, K, OBS, P  # noqa: E402


def lean_sample(net, o):
    """K Euler steps like pt.sample(keep_chain=True), with shared work computed once."""
    b, body = o.shape[0], net.body
    w1 = body.input.weight  # (512, A + 16 + OBS): [x | time | obs] columns
    wx, wt, ws = w1[:, :A], w1[:, A:A + 16], w1[:, A + 16:]
    s = torch.addmm(body.input.bias, o, ws.t())  # (b, 512), once per chain
    x = torch.randn(b, A)
    chain = torch.empty(b, K + 1, A)
    chain[:, 0] = x
    for k in range(K):
        base = s + net.time(torch.full((1,), k / K)) @ wt.t()  # (1, 16) embedding, broadcast
        h = torch.addmm(base, x, wx.t())
        y = torch.addmm(body.blocks[0].bias, F.relu(h), body.blocks[0].weight.t()).relu_()
        h.addmm_(y, body.blocks[1].weight.t()).add_(body.blocks[1].bias)
        x = x + torch.addmm(body.output.bias, h, body.output.weight.t()) / K
        chain[:, k + 1] = x
    return x.view(b, H, ACT), chain.view(b, K + 1, H, ACT)


def lean_update(actor, reference, critic, opt, obs, c_cons=0.5, kl=0.2):
    b = obs.shape[0]
    n = b * P
    o = obs.repeat_interleave(P, 0)
    with torch.no_grad():
        a, chain = lean_sample(actor, o)
    a_req = a.clone().requires_grad_(True)
    g = torch.autograd.grad(critic(o, a_req).mean(0).sum(), a_req)[0]
    k = torch.randint(0, K, (n,))
    x_k, t = chain[torch.arange(n), k], k.float() / K
    k2 = torch.randint(0, K, (n,))
    t2 = k2.float() / K
    x2 = (1 - t2).view(-1, 1, 1) * torch.randn(n, H, ACT) + t2.view(-1, 1, 1) * a
    both = actor(torch.cat([x_k, x2]), torch.cat([t, t2]), torch.cat([o, o]))  # one 2N-row pass
    out, cur = both[:n], both[n:]
    y_hat = x_k + (1 - t).view(-1, 1, 1) * out
    phi = pt.svgd_field(y_hat.detach().reshape(b, P, A), a.reshape(b, P, A), g.reshape(b, P, A)).reshape(n, H, ACT)
    scale = (K * (1 - t)).view(-1, 1, 1)
    align = -((out * phi) / scale).sum((1, 2)).mean()
    cons = c_cons * (((y_hat - a) / scale) ** 2).sum((1, 2)).mean()
    with torch.no_grad():
        ref_out = reference(x2, t2, o)
    loss = align + cons + kl * ((cur - ref_out) ** 2).sum((1, 2)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def sample_step(rows, lean):
    torch.manual_seed(0)
    net, o = pt.VelocityNet(), torch.randn(rows, OBS)

    def f():
        with torch.no_grad():
            return lean_sample(net, o) if lean else pt.sample(net, o, keep_chain=True)
    return f


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--states", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    a = ap.parse_args(argv)
    if a.states < 1 or a.rounds < 1 or a.min_time <= 0:
        ap.error("--states and --rounds must be >= 1 and --min-time > 0")
    for r in range(a.rounds):
        ms = {}
        for name, f in (("plain", pt.actor_update_step(a.states)),
                        ("lean", pt.actor_update_step(a.states, lean_update)),
                        ("plain sampling", sample_step(a.states * P, False)),
                        ("lean sampling", sample_step(a.states * P, True))):
            ms[name] = pt.timeit(f, min_time=a.min_time)["median_s"] * 1e3
        print(f"round {r}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
              + f"; lean/plain update {ms['lean'] / ms['plain']:.2f}, sampling "
              f"{ms['lean sampling'] / ms['plain sampling']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
