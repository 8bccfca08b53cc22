#!/usr/bin/env python3
"""SAC baseline run (issue 5): rldt.SacTrainer on a native task, one metrics row per iteration.

Writes OUT/metrics.csv (every iteration's metrics plus wall-clock seconds), OUT/config.json, and
OUT/policy.pt (the actor after the last iteration). With --target-return R it also writes
OUT/policy_at_target.pt the first time the deterministic evaluation reaches R, and stops there
unless --keep-going. With --evaluate POLICY it only evaluates a saved policy (deterministic
episodes on rldt.envs copies reset with seeds 1000003 + i). Examples (docs/baselines.md):

    .venv/bin/python bench/sac_baseline.py --env InvertedPendulum-v5 --iterations 20 --out runs/sac-ip
    .venv/bin/python bench/sac_baseline.py --env Hopper-v5 --minutes 20 --target-return 1000 --out runs/sac-hopper
    .venv/bin/python bench/sac_baseline.py --evaluate runs/sac-hopper/policy.pt --eval-episodes 10
"""

import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import rldt  # noqa: E402


def evaluate(path, episodes):
    policy = rldt.SacPolicy.load(path)
    env = rldt.envs.make(policy.env_name, num_envs=episodes, seed=1000003, num_threads=1)
    obs, _ = env.reset()
    returns = np.zeros(episodes)
    done = np.zeros(episodes, dtype=bool)
    while not done.all():
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        returns += np.where(done, 0.0, reward)
        done |= terminated | truncated
    print(f"{path} ({policy.env_name}): deterministic return {returns.mean():.1f} +- {returns.std():.1f} over "
          f"{episodes} episodes: {np.round(returns, 1).tolist()}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-envs", type=int, default=1)
    p.add_argument("--env-threads", type=int, default=1)
    p.add_argument("--steps-per-iteration", type=int, default=1000, help="vec-env steps per iteration")
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this wall-clock budget (0: none)")
    p.add_argument("--val-freq", type=int, default=5)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--target-return", type=float, default=math.nan)
    p.add_argument("--keep-going", action="store_true", help="continue after reaching --target-return")
    p.add_argument("--sac", default="{}", help='SacConfig overrides as JSON, e.g. \'{"learning_starts": 1000}\'')
    p.add_argument("--evaluate", metavar="POLICY", help="only evaluate a policy file written by save_policy")
    p.add_argument("--out")
    a = p.parse_args()
    if a.evaluate:
        evaluate(a.evaluate, a.eval_episodes)
        return
    if not a.out:
        p.error("--out is required for training")

    cfg = rldt.SacTrainerConfig(
        env=a.env, seed=a.seed, n_envs=a.n_envs, env_threads=a.env_threads,
        steps_per_iteration=a.steps_per_iteration, n_iterations=a.iterations, val_freq=a.val_freq,
        eval_episodes=a.eval_episodes, sac=json.loads(a.sac),
    )
    os.makedirs(a.out, exist_ok=True)
    tr = rldt.SacTrainer(cfg)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(tr.config.to_dict(), f, indent=2)
    t0 = time.monotonic()
    reached = False
    with open(os.path.join(a.out, "metrics.csv"), "w", newline="") as f:
        writer = None
        for _ in range(a.iterations):
            m = tr.train_iteration()
            m["wall_seconds"] = time.monotonic() - t0
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(m))
                writer.writeheader()
            writer.writerow(m)
            f.flush()
            steps = m["seconds_rollout"] + m["seconds_update"]
            print(f"itr {m['iteration']:4d}  env steps {m['env_steps']:7d}  train return {m['episode_return']:8.1f}  "
                  f"eval {m['eval_return']:8.1f}  alpha {m['alpha']:.3f}  "
                  f"{a.steps_per_iteration * a.n_envs / max(steps, 1e-9):6.0f} env steps/s  "
                  f"{m['wall_seconds']:7.0f} s", flush=True)
            if m["eval"] and not reached and m["eval_return"] >= a.target_return:
                reached = True
                tr.save_policy(os.path.join(a.out, "policy_at_target.pt"))
                print(f"reached eval return {m['eval_return']:.1f} >= {a.target_return} after {m['env_steps']} env "
                      f"steps, {m['wall_seconds']:.0f} s", flush=True)
                if not a.keep_going:
                    break
            if a.minutes > 0 and m["wall_seconds"] > 60 * a.minutes:
                break
    tr.save_policy(os.path.join(a.out, "policy.pt"))


if __name__ == "__main__":
    main()
