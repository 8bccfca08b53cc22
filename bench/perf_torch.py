"""The hot paths of RLDT written as plain PyTorch eager code, the way a Python research codebase
does them (issue 6): the baseline bench/perf_core.cpp is compared against. Same networks, sizes and
operations as the C++ library (ALGORITHM.md sections 1-4, 6); bench/perf.py runs both and prints
the table.

    PYTHONPATH=python .venv/bin/python bench/perf_torch.py [--only NAME] [--json]

The velocity network has the C++ module's parameter names, so `check_parity()` loads an
rldt.FlowPolicy's weights and compares outputs (run by tests/python/test_bench_perf.py).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OBS, ACT, H, K, P, M = 11, 3, 4, 8, 8, 2
A = H * ACT


# ---------------------------------------------------------------------------------------------
# Networks (same layout and parameter names as include/rldt/nn and algo/flow_policy)
# ---------------------------------------------------------------------------------------------
class TimeEmbedding(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.dim = dim
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, dtype=t.dtype) * (-math.log(10000.0) / (half - 1)))
        args = t.reshape(-1, 1) * freqs.reshape(1, -1)
        return self.fc2(F.mish(self.fc1(torch.cat([torch.sin(args), torch.cos(args)], -1))))


class ResidualMLP(nn.Module):
    def __init__(self, in_dim, hidden, out_dim):
        super().__init__()
        h = hidden[0]
        self.input = nn.Linear(in_dim, h)
        self.blocks = nn.ModuleList([nn.Linear(h, h) for _ in range(len(hidden) - 1)])
        self.output = nn.Linear(h, out_dim)

    def forward(self, x):
        x = self.input(x)
        for i in range(0, len(self.blocks), 2):
            y = self.blocks[i](F.relu(x))
            y = self.blocks[i + 1](F.relu(y))
            x = x + y
        return self.output(x)


class VelocityNet(nn.Module):
    def __init__(self, hidden=(512, 512, 512)):
        super().__init__()
        self.time = TimeEmbedding(16)
        self.body = ResidualMLP(A + 16 + OBS, list(hidden), A)

    def forward(self, x, t, obs):
        n = x.shape[0]
        return self.body(torch.cat([x.reshape(n, A), self.time(t), obs], -1)).view(n, H, ACT)


def sample(net, obs, deterministic=False, keep_chain=False):
    """Euler sampling, K steps; returns x_K (and the chain (B, K+1, H, d))."""
    b = obs.shape[0]
    x = torch.zeros(b, H, ACT) if deterministic else torch.randn(b, H, ACT)
    chain = [x] if keep_chain else None
    for k in range(K):
        t = torch.full((b,), k / K)
        x = x + net(x, t, obs) / K
        if keep_chain:
            chain.append(x)
    return (x, torch.stack(chain, 1)) if keep_chain else x


class Critic(nn.Module):
    """Two SiLU MLPs [256]x3 on [s, chunk]."""

    def __init__(self, hidden=(256, 256, 256)):
        super().__init__()
        dims = [OBS + A] + list(hidden) + [1]

        def mlp():
            layers = []
            for i in range(len(dims) - 1):
                layers.append(nn.Linear(dims[i], dims[i + 1]))
                if i + 2 < len(dims):
                    layers.append(nn.SiLU())
            return nn.Sequential(*layers)

        self.members = nn.ModuleList([mlp() for _ in range(M)])

    def forward(self, obs, chunk):  # -> (M, N)
        x = torch.cat([obs, chunk.reshape(chunk.shape[0], -1)], -1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])


def polyak(dst, src, m):
    with torch.no_grad():
        for a, b in zip(dst.parameters(), src.parameters()):
            a.mul_(m).add_(b, alpha=1 - m)


# ---------------------------------------------------------------------------------------------
# The operations
# ---------------------------------------------------------------------------------------------
def critic_update(critic, target, opt, obs, chunks, targets):
    """obs (n, T, O), chunks (n, T, H, d), targets (n, T): member i trains on trajectories i::M."""
    loss = 0.0
    for i, m in enumerate(critic.members):
        o = obs[i::M].reshape(-1, OBS)
        c = chunks[i::M].reshape(o.shape[0], -1)
        q = m(torch.cat([o, c], -1)).squeeze(-1)
        loss = loss + F.mse_loss(q, targets[i::M].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    polyak(target, critic, 0.995)
    return loss.item()


def svgd_field(y, a, g, temp=1e-3):
    """y queries, a particles, g critic gradients: (B, P, A) each -> phi (B, P, A)."""
    d2 = torch.cdist(y, a) ** 2
    h = (d2.median(-1, keepdim=True).values / (2 * math.log(P + 1))).clamp_min(1e-8)
    kern = torch.exp(-d2 / (2 * h))
    gbar = g.norm(dim=-1).mean(-1).clamp(0, 1e5).view(-1, 1, 1)
    alpha = temp * gbar
    rep = (y * kern.sum(-1, keepdim=True) - kern @ a) / h
    return (kern @ g + alpha * rep) / P


def actor_update(actor, reference, critic, opt, obs, c_cons=0.5, kl=0.2):
    """One RLDT actor step on B states x P particles (ALGORITHM.md section 4)."""
    b = obs.shape[0]
    n = b * P
    o = obs.repeat_interleave(P, 0)
    with torch.no_grad():
        a, chain = sample(actor, o, keep_chain=True)
    a_req = a.clone().requires_grad_(True)
    q = critic(o, a_req).mean(0)
    g = torch.autograd.grad(q.sum(), a_req)[0]
    k = torch.randint(0, K, (n,))
    x_k = chain[torch.arange(n), k]
    t = k.float() / K
    out = actor(x_k, t, o)
    y_hat = x_k + (1 - t).view(-1, 1, 1) * out
    phi = svgd_field(y_hat.detach().reshape(b, P, A), a.reshape(b, P, A), g.reshape(b, P, A)).reshape(n, H, ACT)
    scale = (K * (1 - t)).view(-1, 1, 1)
    align = -((out * phi) / scale).sum((1, 2)).mean()
    cons = c_cons * (((y_hat - a) / scale) ** 2).sum((1, 2)).mean()
    k2 = torch.randint(0, K, (n,))
    t2 = k2.float() / K
    x2 = (1 - t2).view(-1, 1, 1) * torch.randn(n, H, ACT) + t2.view(-1, 1, 1) * a
    with torch.no_grad():
        ref_out = reference(x2, t2, o)
    ref = kl * ((actor(x2, t2, o) - ref_out) ** 2).sum((1, 2)).mean()
    loss = align + cons + ref
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def timeit(fn: Callable[[], object], min_time=1.0, min_reps=3, warmup=1) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return {"median_s": statistics.median(times), "reps": len(times)}


def bench_matmul(n=1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    r = timeit(lambda: torch.mm(a, b, out=out))
    r["flops"] = 2.0 * n ** 3
    return r


def bench_actor_inference(batch):
    torch.manual_seed(0)
    net = VelocityNet()
    obs = torch.randn(batch, OBS)
    with torch.no_grad():
        return timeit(lambda: sample(net, obs))


def actor_update_step(batch, update=None):
    """Networks, optimiser and `batch` states for the actor update; returns a no-argument step
    (also profiled op by op by bench/profile_ops.py). `update` replaces `actor_update` (same
    arguments; bench/lean_update.py)."""
    torch.manual_seed(0)
    actor, critic = VelocityNet(), Critic()
    reference = VelocityNet()
    reference.load_state_dict(actor.state_dict())
    for p in list(reference.parameters()) + list(critic.parameters()):
        p.requires_grad_(False)
    opt = torch.optim.Adam(actor.parameters(), lr=2e-5)
    obs = torch.randn(batch, OBS)
    fn = update or actor_update
    return lambda: fn(actor, reference, critic, opt, obs)


def bench_actor_update(batch):
    return timeit(actor_update_step(batch))


def bench_critic_update(n):
    torch.manual_seed(0)
    critic, target = Critic(), Critic()
    target.load_state_dict(critic.state_dict())
    opt = torch.optim.AdamW(critic.parameters(), lr=1e-3, weight_decay=0.0)
    traj = 16
    obs = torch.randn(traj, n // traj, OBS)
    chunks = torch.rand(traj, n // traj, H, ACT) * 2 - 1
    targets = torch.randn(traj, n // traj)
    return timeit(lambda: critic_update(critic, target, opt, obs, chunks, targets))


def bench_rollout(n_envs, n_chunks=25):
    """Gymnasium's SyncVectorEnv of Hopper-v5 stepped with deterministic K-step policy chunks."""
    import gymnasium as gym

    torch.manual_seed(0)
    net = VelocityNet()
    env = gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v5") for _ in range(n_envs)])
    obs, _ = env.reset(seed=0)
    low, high = env.single_action_space.low, env.single_action_space.high

    def run():
        nonlocal obs
        steps = 0
        for _ in range(n_chunks):
            with torch.no_grad():
                chunk = sample(net, torch.as_tensor(obs, dtype=torch.float32), deterministic=True)
            chunk = chunk.clamp(-1, 1).numpy()
            for j in range(H):
                act = low + (chunk[:, j] + 1) * 0.5 * (high - low)
                obs, _, _, _, _ = env.step(act)
                steps += n_envs
        return steps

    steps = run()
    r = timeit(run, min_time=2.0, min_reps=2, warmup=0)
    r["env_steps_per_iter"] = steps
    env.close()
    return r


def bench_hopper_cpu_iteration(reps=2):
    """One training iteration of configs/gym/hopper/finetune-cpu.yaml in eager code: 16 envs x 100
    chunk steps (Gymnasium SyncVectorEnv, min_extrp-free noisy sampling), then 16 rounds of
    (bootstrap samples for every next state x 2, 10 critic steps on 1024 samples with target-net
    bootstrap values, 2 actor steps on 256 states x 8 particles); [256]x3 actor and critics."""
    import gymnasium as gym

    torch.manual_seed(0)
    n_envs, n_steps, rounds, q_steps, a_steps, S = 16, 100, 16, 10, 2, 2
    actor, reference = VelocityNet((256, 256, 256)), VelocityNet((256, 256, 256))
    reference.load_state_dict(actor.state_dict())
    for p in reference.parameters():
        p.requires_grad_(False)
    critic, target = Critic(), Critic()
    target.load_state_dict(critic.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    q_opt = torch.optim.AdamW(critic.parameters(), lr=1e-3, weight_decay=0.0)
    a_opt = torch.optim.Adam(actor.parameters(), lr=2e-5)
    env = gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v5") for _ in range(n_envs)])
    obs0, _ = env.reset(seed=0)
    low, high = env.single_action_space.low, env.single_action_space.high
    state = {"obs": obs0}
    split = {"rollout": [], "critic": [], "actor": [], "total": []}

    def iteration():
        t0 = time.perf_counter()
        obs_buf = torch.empty(n_envs, n_steps, OBS)
        next_buf = torch.empty(n_envs, n_steps, OBS)
        chunk_buf = torch.empty(n_envs, n_steps, H, ACT)
        rew_buf = torch.empty(n_envs, n_steps)
        done_buf = torch.empty(n_envs, n_steps)
        obs = state["obs"]
        for t in range(n_steps):
            o = torch.as_tensor(obs, dtype=torch.float32)
            with torch.no_grad():
                chunk = (sample(actor, o) + 0.02 * torch.randn(n_envs, H, ACT)).clamp(-1, 1)
            c = chunk.numpy()
            total = np.zeros(n_envs)
            for j in range(H):
                obs, r, term, trunc, _ = env.step(low + (c[:, j] + 1) * 0.5 * (high - low))
                total += r
            obs_buf[:, t] = o
            next_buf[:, t] = torch.as_tensor(obs, dtype=torch.float32)
            chunk_buf[:, t] = chunk
            rew_buf[:, t] = torch.as_tensor(total, dtype=torch.float32)
            done_buf[:, t] = torch.as_tensor(term, dtype=torch.float32)
        state["obs"] = obs
        t1 = time.perf_counter()
        tc = ta = 0.0
        for _ in range(rounds):
            tq = time.perf_counter()
            with torch.no_grad():
                nxt = next_buf.reshape(-1, OBS).repeat_interleave(S, 0)
                boot = sample(actor, nxt).view(n_envs, n_steps, S, H, ACT)
            for _ in range(q_steps):
                tidx = torch.randperm(n_steps)[:1024 // n_envs]
                with torch.no_grad():
                    no = next_buf[:, tidx].reshape(-1, OBS).repeat_interleave(S, 0)
                    v = target(no, boot[:, tidx].reshape(-1, H, ACT)).min(0).values.view(-1, S).mean(1)
                    y = rew_buf[:, tidx].reshape(-1) + 0.99 * (1 - done_buf[:, tidx].reshape(-1)) * v
                critic_update(critic, target, q_opt, obs_buf[:, tidx], chunk_buf[:, tidx], y.view(n_envs, -1))
            tc += time.perf_counter() - tq
            tz = time.perf_counter()
            for _ in range(a_steps):
                states = obs_buf.reshape(-1, OBS)[torch.randperm(n_envs * n_steps)[:256]]
                actor_update(actor, reference, critic, a_opt, states)
            ta += time.perf_counter() - tz
        reference.load_state_dict(actor.state_dict())
        split["rollout"].append(t1 - t0)
        split["critic"].append(tc)
        split["actor"].append(ta)
        split["total"].append(time.perf_counter() - t0)

    for _ in range(reps):
        iteration()
    env.close()
    return {"median_s": statistics.median(split["total"]), "reps": reps,
            "s_rollout": statistics.median(split["rollout"]), "s_critic": statistics.median(split["critic"]),
            "s_actor": statistics.median(split["actor"])}


BENCHES = {
    "Matmul/1024": lambda: bench_matmul(1024),
    "ActorInference/1": lambda: bench_actor_inference(1),
    "ActorInference/100": lambda: bench_actor_inference(100),
    "ActorUpdate/256": lambda: bench_actor_update(256),
    "ActorUpdate/16": lambda: bench_actor_update(16),
    "CriticUpdate/4096": lambda: bench_critic_update(4096),
    "CriticUpdate/256": lambda: bench_critic_update(256),
    "Rollout/16": lambda: bench_rollout(16),
    "Rollout/64": lambda: bench_rollout(64),
    "HopperCpuIteration": bench_hopper_cpu_iteration,
}


def check_parity(policy_state: Dict[str, np.ndarray], hidden, x, t, obs) -> np.ndarray:
    """Velocity-net output of this module with an rldt.FlowPolicy's weights (for the parity test)."""
    net = VelocityNet(hidden)
    net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in policy_state.items()})
    with torch.no_grad():
        return net(torch.as_tensor(x), torch.as_tensor(t), torch.as_tensor(obs)).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="benchmark name (repeatable); default all")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--updates", nargs=2, type=int, metavar=("STATES", "N"),
                    help="only run 2 warm-up + N actor updates of STATES states (the eager side of "
                    "`build/rldt_bench_profile STATES N -`, for an outside profiler: bench/perf_profile.py)")
    args = ap.parse_args(argv)
    if args.updates:
        states, n = args.updates
        if states < 1 or n < 1:
            ap.error(f"--updates: STATES and N must be >= 1, got {states} {n}")
        step = actor_update_step(states)
        for _ in range(2):
            step()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        print(f"{n} eager actor updates of {states} states x {P} particles: "
              f"{(time.perf_counter() - t0) / n * 1e3:.1f} ms each")
        return 0
    names = args.only or list(BENCHES)
    out = {}
    for name in names:
        if name not in BENCHES:
            ap.error(f"unknown benchmark '{name}'; known: {', '.join(BENCHES)}")
        out[name] = BENCHES[name]()
        if not args.json:
            print(f"{name:24s} {out[name]['median_s'] * 1e3:10.3f} ms  ({out[name]['reps']} reps)", flush=True)
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": out}))


if __name__ == "__main__":
    sys.exit(main())
