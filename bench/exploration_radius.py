"""How large is the "min_extrp" exploration noise of a policy, and how much of it is box overshoot?

    PYTHONPATH=python .venv/bin/python bench/exploration_radius.py POLICY.pt [POLICY.pt ...]
        [--env Hopper-v5] [--envs 16] [--steps 100] [--seed 123] [--min-step 6] [--clip 1.0] [--act-steps 4]

For each policy file: rolls out its stochastic samples (no extra noise) in `--envs` native envs for
`--steps` chunk steps and, at every visited state, draws k ~ U{min_step..K-1} and the expected
target ŷ_k from the sample's own chain (ALGORITHM.md section 5). It prints the mean radius

  r_raw     = ||a - ŷ_k||              (ŷ unclamped: what the trainer used before the fix)
  r_clamped = ||a - clamp(ŷ_k, ±clip)||  (C++ rldt::min_extrp_radius; what the trainer uses now)

with a = clamp(x_K, ±clip) the executed action, and the share of the entries of x_K beyond ±clip.
--clip sets the policy's final_action_clip for the
measurement (0 keeps the file's own value).
"""

from __future__ import annotations

import argparse

import numpy as np

import rldt
from rldt import _core


def measure(path: str, args: argparse.Namespace) -> dict:
    pol = _core.FlowPolicy.load(path)
    if args.clip > 0:
        pol.set_final_action_clip(args.clip)
    clip = pol.config.final_action_clip
    pol.seed(args.seed)
    K, E = pol.config.denoising_steps, pol.config.horizon_steps
    if not 0 <= args.min_step < K:
        raise SystemExit(f"--min-step must be in [0, K = {K}) for {path}, got {args.min_step}")
    rng = np.random.default_rng(args.seed)
    env = rldt.envs.make(args.env, num_envs=args.envs, seed=args.seed)
    obs, _ = env.reset(seed=args.seed)
    r_raw, r_clamped, beyond = [], [], []
    for _ in range(args.steps):
        o = pol.normalize_obs(obs.astype(np.float32))
        a, chain = pol.sample(o)
        n = o.shape[0]
        k = rng.integers(args.min_step, K, size=n)
        y = pol.expected_target(chain[np.arange(n), k], k, o)
        r_raw.append(np.linalg.norm((a - y).reshape(n, -1), axis=1).mean())
        yc = np.clip(y, -clip, clip) if clip > 0 else y
        r_clamped.append(np.linalg.norm((a - yc).reshape(n, -1), axis=1).mean())
        beyond.append(np.mean(np.abs(chain[:, K]) > (clip if clip > 0 else 1.0)))
        obs, _, _, _, _ = env.step_chunk(pol.action_to_env(np.clip(a, -1, 1)), min(E, args.act_steps))
    return dict(policy=path, clip=clip, r_raw=float(np.mean(r_raw)), r_clamped=float(np.mean(r_clamped)),
                beyond=float(np.mean(beyond)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("policies", nargs="+", help="FlowPolicy files (rldt pretrain / finetune output)")
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=100, help="chunk steps")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--min-step", type=int, default=6, help="exploration.min_extrp_step")
    ap.add_argument("--clip", type=float, default=1.0, help="final_action_clip for the measurement (0: the file's)")
    ap.add_argument("--act-steps", type=int, default=4, help="actions executed per chunk (the config's act_steps)")
    args = ap.parse_args()
    if args.envs < 1 or args.steps < 1 or args.act_steps < 1:
        ap.error("--envs, --steps and --act-steps must be >= 1")
    print("| policy | clip | r_raw | r_clamped | x_K beyond ±clip |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for p in args.policies:
        m = measure(p, args)
        print(f"| {m['policy']} | {m['clip']:g} | {m['r_raw']:.3f} | {m['r_clamped']:.3f} | {m['beyond']:.1%} |")


if __name__ == "__main__":
    main()
