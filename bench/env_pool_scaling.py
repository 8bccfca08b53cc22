"""The native env pool on 1 and 2 threads, alternated round by round (issue 6: "≥ 1.8x from 1 to
2 threads"), stepping one env step per call (`step`, as build/rldt_bench_envs does) and a chunk of
steps per env per call (`step_chunk`, as the trainer's rollouts do). Random actions, the same for
both thread counts; prints each round's rates and the 2 / 1 thread ratios with their medians.

    PYTHONPATH=python .venv/bin/python bench/env_pool_scaling.py [--task Hopper-v5] [--envs 16]
        [--calls 200] [--chunk 4] [--rounds 3] [--loops 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import rldt.envs as E


def rate(task: str, envs: int, threads: int, actions: np.ndarray, chunk: int, loops: int) -> float:
    """Env steps/s over `loops` passes through `actions` (calls, envs, chunk, d)."""
    env = E.VecEnv(task, num_envs=envs, seed=0, num_threads=threads)
    env.reset()
    steps, t0 = 0, time.perf_counter()
    for _ in range(loops):
        for a in actions:
            if chunk == 1:
                env.step(a[:, 0])
            else:
                env.step_chunk(a, chunk)
            steps += envs * chunk
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="Hopper-v5")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--calls", type=int, default=200, help="pool calls per loop")
    ap.add_argument("--chunk", type=int, default=4, help="env steps per env per step_chunk call")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loops", type=int, default=5, help="passes through the actions per measurement")
    a = ap.parse_args(argv)
    for name in ("envs", "calls", "chunk", "rounds", "loops"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    d = E.make(a.task, num_envs=1).action_space.shape[-1]
    actions = np.random.default_rng(0).uniform(-1, 1, size=(a.calls, a.envs, a.chunk, d)).astype(np.float32)
    ratios = {1: [], a.chunk: []}
    for r in range(a.rounds):
        line = []
        for chunk in ratios:
            one = rate(a.task, a.envs, 1, actions[:, :, :chunk], chunk, a.loops)
            two = rate(a.task, a.envs, 2, actions[:, :, :chunk], chunk, a.loops)
            ratios[chunk].append(two / one)
            line.append(f"{'step' if chunk == 1 else f'step_chunk({chunk})'} 1 thread {one:.0f}, 2 threads {two:.0f} "
                        f"env steps/s ({two / one:.2f}x)")
        print(f"round {r}: " + "; ".join(line), flush=True)
    for chunk, rs in ratios.items():
        label = "step" if chunk == 1 else f"step_chunk({chunk})"
        print(f"{label}: 2 / 1 threads per round {', '.join(f'{x:.2f}' for x in rs)}; median {statistics.median(rs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
