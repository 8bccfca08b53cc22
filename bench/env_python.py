"""Steps per second through the Python API: rldt.envs.make (native pool) against Gymnasium's
SyncVectorEnv over gymnasium.make of the same task (PyPI mujoco), same number of envs, same
random actions. Not a test; docs/benchmarks.md records a run.

    PYTHONPATH=python .venv/bin/python bench/env_python.py [--envs 16] [--steps 200] [--reps 3]
"""
import argparse
import time

import numpy as np

import rldt


def rate(env, actions, reps):
    best = 0.0
    env.reset(seed=0)
    for _ in range(reps):
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        best = max(best, len(actions) * env.num_envs / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200, help="vector steps per repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tasks", nargs="*", default=rldt.envs.list())
    args = ap.parse_args()
    try:
        import gymnasium as gym
    except ImportError:
        gym = None
    print(f"{args.envs} envs, {args.steps} vector steps, best of {args.reps}\n")
    print("| task | rldt.envs 1 thread (steps/s) | rldt.envs 2 threads (steps/s) | Gymnasium SyncVectorEnv "
          "(steps/s) | rldt 1 thread / Gymnasium |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for task in args.tasks:
        rng = np.random.default_rng(0)
        e1 = rldt.envs.make(task, num_envs=args.envs, num_threads=1)
        e2 = rldt.envs.make(task, num_envs=args.envs, num_threads=2)
        low, high = e1.single_action_space.low, e1.single_action_space.high
        actions = rng.uniform(low, high, size=(args.steps, args.envs) + low.shape).astype(np.float32)
        r1, r2 = rate(e1, actions, args.reps), rate(e2, actions, args.reps)
        rg = float("nan")
        if gym is not None:
            g = gym.vector.SyncVectorEnv([lambda: gym.make(task) for _ in range(args.envs)])
            rg = rate(g, actions, args.reps)
            g.close()
        print(f"| {task} | {r1:.0f} | {r2:.0f} | {rg:.0f} | {r1 / rg:.1f} |", flush=True)


if __name__ == "__main__":
    main()
