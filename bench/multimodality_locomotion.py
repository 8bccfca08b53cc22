"""Action samples at one locomotion state, before and after fine-tuning (issue 5, item 5).

    PYTHONPATH=python .venv/bin/python bench/multimodality_locomotion.py \\
        --policy base=configs/gym/hopper/base-medium.pt --policy rldt=RUN/policy.pt \\
        --policy sac=sac:SAC_RUN/policy.pt [--env Hopper-v5] [--state-steps 200] [--samples 512]
        [--bandwidth 0.1] [--min-share 0.05] [--seed 0] [--out runs/multimodality_locomotion]

The state: the first --policy's deterministic rollout from env.reset(seed) after --state-steps env
steps (mid-gait for Hopper; the episode must last that long). At that one state each policy draws
--samples actions (FlowPolicy: stochastic x_0; `sac:FILE`: a SacPolicy sample). Only the first
action of a chunk is compared (SAC acts one step at a time), in env units scaled to [-1, 1] by the
env's action bounds. Flow samples are taken without the final clamp (final_action_clip 0), so the
count sees the sampler's distribution rather than a pile of samples clamped onto a bound (the env
clamps them when it acts; "beyond the box" reports how many that would be).

Mode count: mean-shift with a Gaussian kernel of width --bandwidth on those actions; the points
that converge within bandwidth/2 of each other form one mode, and modes holding at least
--min-share of the samples are counted. Reported per policy: the number of modes, their shares
(largest first), the mean per-entry standard deviation, and the share of action entries beyond
the box (|a| > 1). Writes OUT/modes.json, OUT/modes.md and OUT/actions.png (the samples
projected on the two main principal axes of all policies' samples together, one panel per policy).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mean_shift_modes(x: np.ndarray, bandwidth: float, min_share: float, iters: int = 200) -> List[float]:
    """Shares (largest first) of the mean-shift modes of the rows of x holding >= min_share."""
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"mean_shift_modes: x must be a non-empty (N, D) array, got shape {x.shape}")
    if bandwidth <= 0 or not 0 <= min_share < 1:
        raise ValueError(f"mean_shift_modes: need bandwidth > 0 and 0 <= min_share < 1, got {bandwidth}, {min_share}")
    y = x.astype(np.float64).copy()
    for _ in range(iters):
        d2 = ((y[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        w = np.exp(-0.5 * d2 / bandwidth**2)
        y_new = (w @ x) / w.sum(1, keepdims=True)
        done = np.abs(y_new - y).max() < 1e-6 * bandwidth
        y = y_new
        if done:
            break
    labels = -np.ones(len(y), dtype=int)
    centres: List[np.ndarray] = []
    for i, p in enumerate(y):
        for c, q in enumerate(centres):
            if np.linalg.norm(p - q) < 0.5 * bandwidth:
                labels[i] = c
                break
        else:
            centres.append(p)
            labels[i] = len(centres) - 1
    shares = np.bincount(labels) / len(y)
    return sorted((float(s) for s in shares if s >= min_share), reverse=True)


def pick_state(env_name: str, policy, steps: int, seed: int) -> np.ndarray:
    import rldt

    env = rldt.envs.make(env_name, num_envs=1, seed=seed)
    obs, _ = env.reset(seed=seed)
    done = 0
    H = policy.config.horizon_steps
    while done < steps:
        a = policy.act(policy.normalize_obs(obs.astype(np.float32)), deterministic=True)
        n = min(H, steps - done)
        obs, _, term, trunc, info = env.step_chunk(policy.action_to_env(a), n)
        if term[0] or trunc[0]:
            raise SystemExit(f"--state-steps {steps}: the state policy's episode ended after {done + n} steps")
        done += n
    return obs.astype(np.float32)


def sample_actions(spec: str, obs: np.ndarray, n: int, seed: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    from rldt import _core

    many = np.repeat(obs, n, axis=0)
    if spec.startswith("sac:"):
        pol = _core.SacPolicy.load(spec[4:], seed=seed)
        a = np.asarray(pol.act(many, deterministic=False), dtype=np.float64)
    else:
        pol = _core.FlowPolicy.load(spec)
        pol.set_final_action_clip(0.0)  # the sampler's own distribution, beyond the box too
        pol.seed(seed)
        first = np.asarray(pol.act(pol.normalize_obs(many), deterministic=False)[:, 0], dtype=np.float64)
        nrm = pol.normalizer  # action_to_env clamps to the box, so map linearly here
        lo = low if nrm["action_low"] is None else np.asarray(nrm["action_low"], np.float64)
        hi = high if nrm["action_high"] is None else np.asarray(nrm["action_high"], np.float64)
        a = lo + (first + 1.0) * 0.5 * (hi - lo)
    return 2.0 * (a - low) / (high - low) - 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", action="append", required=True, metavar="NAME=FILE",
                    help="a FlowPolicy file, or sac:FILE for a SacPolicy (repeatable; the first picks the state)")
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--state-steps", type=int, default=200)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--bandwidth", type=float, default=0.1)
    ap.add_argument("--min-share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "multimodality_locomotion"))
    a = ap.parse_args()
    specs: List[Tuple[str, str]] = []
    for p in a.policy:
        name, sep, path = p.partition("=")
        if not sep or not name or not path:
            ap.error(f"--policy must be NAME=FILE, got {p!r}")
        file = path[4:] if path.startswith("sac:") else path
        if not os.path.isfile(file):
            ap.error(f"--policy {name}: no such file {file!r}")
        specs.append((name, path))
    if specs[0][1].startswith("sac:"):
        ap.error("the first --policy picks the state and must be a FlowPolicy file")
    if a.samples < 2 or a.state_steps < 0 or a.bandwidth <= 0 or not 0 <= a.min_share < 1:
        ap.error("need --samples >= 2, --state-steps >= 0, --bandwidth > 0, 0 <= --min-share < 1")

    import rldt
    from rldt import _core

    first = _core.FlowPolicy.load(specs[0][1])
    obs = pick_state(a.env, first, a.state_steps, a.seed)
    space = rldt.envs.make(a.env, num_envs=1, seed=a.seed).single_action_space
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    results: Dict[str, dict] = {}
    samples: Dict[str, np.ndarray] = {}
    for i, (name, spec) in enumerate(specs):
        x = sample_actions(spec, obs, a.samples, a.seed + i, low, high)
        samples[name] = x
        shares = mean_shift_modes(x, a.bandwidth, a.min_share)
        results[name] = dict(file=spec, modes=len(shares), shares=[round(s, 3) for s in shares],
                             std=float(x.std(0).mean()), beyond=float((np.abs(x) > 1.0).mean()))
    os.makedirs(a.out, exist_ok=True)
    meta = dict(env=a.env, state_steps=a.state_steps, seed=a.seed, samples=a.samples, bandwidth=a.bandwidth,
                min_share=a.min_share, state=obs[0].tolist())
    with open(os.path.join(a.out, "modes.json"), "w") as f:
        json.dump(dict(meta=meta, policies=results), f, indent=1)
    lines = ["| policy | modes (share >= %g) | shares | mean std | entries beyond the box |" % a.min_share,
             "| --- | ---: | --- | ---: | ---: |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['modes']} | {', '.join(f'{s:.2f}' for s in r['shares'])} | {r['std']:.3f} | "
                     f"{r['beyond']:.1%} |")
    table = "\n".join(lines)
    with open(os.path.join(a.out, "modes.md"), "w") as f:
        f.write(table + "\n")
    print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allx = np.concatenate(list(samples.values()))
    mu = allx.mean(0)
    _, _, vt = np.linalg.svd(allx - mu, full_matrices=False)
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.2), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, x) in zip(axes[0], samples.items()):
        z = (x - mu) @ vt[:2].T
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.5)
        ax.set_title(f"{name}: {results[name]['modes']} mode(s)")
        ax.set_xlabel("PC 1")
    axes[0][0].set_ylabel("PC 2")
    fig.suptitle(f"{a.env}: first action at one state ({a.state_steps} steps in), {a.samples} samples each")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "actions.png"), dpi=110)
    print("wrote", os.path.join(a.out, "modes.json"), "modes.md and actions.png")


if __name__ == "__main__":
    main()
