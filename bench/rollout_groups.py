#!/usr/bin/env python3
"""Rollout throughput with and without rollout_groups, against the machine's bound (issue 6).

Runs `rldt_bench_perf`'s BM_RolloutShare benchmarks in alternating rounds: ungrouped (one batched
policy forward over all envs per chunk step, then the env pool), the same with rollout_inference
"packed" (one InferencePolicy snapshot spreading the batch over the two env threads),
rollout_groups = 2 (each env thread samples with one BLAS thread and steps its own half), and
rollout_groups = 2 with rollout_inference "packed" (each group samples through its own
InferencePolicy). Each benchmark
measures the bound right before every rollout iteration it times (bare Hopper physics on both
cores at once, and the inference FLOPs at the 1024³ matmul rate), because the host's speed
drifts by a fifth within minutes; a round's share is the median over its iterations, and the
table gives the medians over rounds.

    PYTHONPATH=python .venv/bin/python bench/rollout_groups.py [--rounds 5] [--envs 16 64]
    PYTHONPATH=python .venv/bin/python bench/rollout_groups.py --blas-threads 1 2   # ungrouped only,
        # with OPENBLAS_NUM_THREADS alternated instead (the threading-policy question)
    PYTHONPATH=python .venv/bin/python bench/rollout_groups.py --diagnose   # what limits it: reset vs
        # step cost, 512-wide GEMM rates by rows and BLAS threads, the rollout with a width-8 actor
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import perf_torch as pt  # noqa: E402


def run_benchmarks(build: Path, regex: str, env=None, repetitions: int = 3) -> dict:
    cmd = [str(build / "rldt_bench_perf"), f"--benchmark_filter={regex}", "--benchmark_format=json",
           f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if repetitions > 1 and b.get("aggregate_name") != "median":
            continue  # (one repetition reports no aggregates)
        name = b["run_name"].removeprefix("BM_").split("/iterations")[0].split("/real_time")[0]
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        counters = ("env_steps", "env_steps_per_iter", "share_of_bound", "share_min", "share_max", "env_steps_per_s",
                    "bare_steps_per_s", "peak_gflops")
        res[name] = {"median_s": b["real_time"] * unit, **{k: b[k] for k in counters if k in b}}
    return res


def rollout_rate(n_envs: int, width: int, groups: int, iterations: int = 10, inference: str = "torch"):
    """Env steps/s and episodes of deterministic Hopper rollouts through rldt.Trainer
    (`inference`: its rollout_inference)."""
    import time

    import rldt

    c = rldt.RldtTrainerConfig(env="Hopper-v5", n_envs=n_envs, env_threads=2, n_steps=25, act_steps=pt.H,
                               val_freq=1, rollout_groups=groups, rollout_inference=inference,
                               policy=dict(obs_dim=pt.OBS, action_dim=pt.ACT, horizon_steps=pt.H, denoising_steps=pt.K,
                                           mlp_dims=[width] * 3))
    tr = rldt.Trainer(c)
    tr.train_iteration()
    s0, episodes, t = tr.env_steps, 0, time.perf_counter()
    for _ in range(iterations):
        episodes += tr.train_iteration()["episodes"]
    return (tr.env_steps - s0) / (time.perf_counter() - t), episodes, tr.env_steps - s0


def diagnose(quick: bool) -> None:
    import time

    import numpy as np

    import rldt

    torch = pt.torch
    n = 32
    env = rldt.envs.make("Hopper-v5", num_envs=n, seed=0, num_threads=1)
    env.reset()
    reps = 5 if quick else 200
    for name, fn in (("reset", env.reset), ("step", lambda: env.step(np.zeros((n, pt.ACT))))):
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        print(f"rldt.envs Hopper-v5, {n} envs, 1 thread: {name} {(time.perf_counter() - t) / (reps * n) * 1e6:.0f} us per env")
    blas_threads = rldt.blas_num_threads()
    if blas_threads == 0:
        sys.exit("rollout_groups.py --diagnose: the loaded BLAS has no thread setting (not OpenBLAS)")
    with torch.no_grad():
        for rows in (32, 64, 1024):
            a, w, b = torch.randn(rows, 512), torch.randn(512, 512), torch.randn(512)
            calls = 3 if quick else max(20, int(2e9 / (2 * rows * 512 * 512)))
            rates = []
            for blas in (1, 2):
                rldt.set_blas_num_threads(blas)  # the process's OpenBLAS, which torch's addmm uses too
                for _ in range(3):
                    torch.addmm(b, a, w)
                t = time.perf_counter()
                for _ in range(calls):
                    torch.addmm(b, a, w)
                rates.append(2 * rows * 512 * 512 * calls / (time.perf_counter() - t) / 1e9)
            print(f"512x512 GEMM, {rows} rows: {rates[0]:.0f} GFLOP/s on 1 BLAS thread, {rates[1]:.0f} on 2")
    rldt.set_blas_num_threads(blas_threads)
    for width in (8, 512):
        sps, episodes, steps = rollout_rate(16 if quick else 64, width, 1, 1 if quick else 10)
        print(f"rollout, {16 if quick else 64} envs, width-{width} actor: {sps:.0f} env steps/s, {episodes} episodes "
              f"in {steps} env steps")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--envs", type=int, nargs="+", default=[16, 64], choices=[16, 64])
    ap.add_argument("--blas-threads", type=int, nargs="*", default=None,
                    help="compare the ungrouped rollout under these OPENBLAS_NUM_THREADS values instead")
    ap.add_argument("--diagnose", action="store_true", help="the measurements of what limits the rollout, then exit")
    ap.add_argument("--quick", action="store_true", help="one short round (smoke test; numbers not for reporting)")
    a = ap.parse_args(argv)
    if a.blas_threads is not None and len(a.blas_threads) != 2:
        ap.error("--blas-threads takes two thread counts to compare, e.g. --blas-threads 1 2")
    if a.diagnose:
        diagnose(a.quick)
        return 0
    build = Path(a.build)
    if not (build / "rldt_bench_perf").exists():
        sys.exit(f"rollout_groups.py: {build / 'rldt_bench_perf'} not found; build it with "
                 f"`cmake --build {build} --target rldt_bench_perf rldt_bench_envs`")
    rounds = 1 if a.quick else a.rounds
    env_sizes = "|".join(str(n) for n in a.envs)
    if a.blas_threads:
        variants = [(f"OPENBLAS_NUM_THREADS={t}", f"^BM_RolloutShare/({env_sizes})/", {"OPENBLAS_NUM_THREADS": str(t)})
                    for t in a.blas_threads]
    else:
        variants = [("ungrouped", f"^BM_RolloutShare/({env_sizes})/", {}),
                    ("ungrouped, packed", f"^BM_RolloutSharePacked/({env_sizes})/", {}),
                    ("rollout_groups=2", f"^BM_RolloutShareGrouped/({env_sizes})/", {}),
                    ("rollout_groups=2, packed", f"^BM_RolloutShareGroupedPacked/({env_sizes})/", {})]
    rows = {(v[0], n): [] for v in variants for n in a.envs}  # per round: the benchmark's counters
    for r in range(rounds):
        line = []
        for label, regex, extra in variants:
            res = run_benchmarks(build, regex, env={**os.environ, **extra}, repetitions=1)
            for n in a.envs:
                b = next(v for k, v in res.items() if k.endswith(f"/{n}"))
                rows[(label, n)].append(b)
                line.append(f"{label} {n} envs {b['env_steps_per_s']:.0f}/s = {100 * b['share_of_bound']:.0f}% "
                            f"({100 * b['share_min']:.0f}-{100 * b['share_max']:.0f}%; bare {b['bare_steps_per_s']:.0f}/s, "
                            f"peak {b['peak_gflops']:.0f})")
        print(f"round {r + 1}: " + "; ".join(line), flush=True)
    print(f"\nmedians over {rounds} rounds (each round's share: the median of its iterations, each against the bound "
          f"measured right before it):\n")
    first = variants[0][0]
    print(f"| rollout | envs | env steps/s | % of bound (by round) | / {first}, per round |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, _, _ in variants:
        for n in a.envs:
            got = rows[(label, n)]
            shares = [b["share_of_bound"] for b in got]
            ratio = ""
            if label != first:
                rs = [b["env_steps_per_s"] / f["env_steps_per_s"] for b, f in zip(got, rows[(first, n)])]
                ratio = f"{statistics.median(rs):.2f} median ({', '.join(f'{x:.2f}' for x in rs)})"
            print(f"| {label} | {n} | {statistics.median(b['env_steps_per_s'] for b in got):.0f} | "
                  f"{100 * statistics.median(shares):.0f}% ({', '.join(f'{100 * x:.0f}' for x in shares)}) | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
