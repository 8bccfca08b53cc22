#!/usr/bin/env python3
"""Rollout throughput with and without rollout_groups, against the machine's bound (issue 6).

Runs `rldt_bench_perf` (BM_Rollout: one batched policy forward over all envs per chunk step,
then the env pool; BM_RolloutGrouped: rollout_groups = 2, each env thread samples with one BLAS
thread and steps its own half) in alternating rounds, plus the bound measured in each round: bare
`mj_step` on one core (`rldt_bench_envs`), times 2 cores, and the inference FLOPs at the fp32
matmul peak (BM_Matmul/1024). The host is shared and its speed drifts, so every ratio is taken
within one round and the medians over rounds are reported.

    PYTHONPATH=python .venv/bin/python bench/rollout_groups.py [--rounds 5] [--envs 16 64]
    PYTHONPATH=python .venv/bin/python bench/rollout_groups.py --blas-threads 1 2   # BM_Rollout only,
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

import perf  # noqa: E402  (FLOP model, bare mj_step runner)
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
        res[name] = {"median_s": b["real_time"] * unit, **{k: b[k] for k in ("env_steps", "env_steps_per_iter") if k in b}}
    return res


def bound_steps_per_s(bare_steps_per_s: float, peak_gflops: float) -> float:
    """Bare physics on both cores plus K velocity-net passes per chunk of H env steps at peak."""
    per_step = 1.0 / (2.0 * bare_steps_per_s) + pt.K * perf.velocity_flops() / pt.H / (peak_gflops * 1e9)
    return 1.0 / per_step


def rollout_rate(n_envs: int, width: int, groups: int, iterations: int = 10):
    """Env steps/s and episodes of deterministic Hopper rollouts through rldt.Trainer."""
    import time

    import rldt

    c = rldt.RldtTrainerConfig(env="Hopper-v5", n_envs=n_envs, env_threads=2, n_steps=25, act_steps=pt.H,
                               val_freq=1, rollout_groups=groups,
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
    ap.add_argument("--repetitions", type=int, default=3, help="benchmark repetitions per round (median taken)")
    ap.add_argument("--blas-threads", type=int, nargs="*", default=None,
                    help="compare BM_Rollout under these OPENBLAS_NUM_THREADS values instead of grouped vs not")
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
    reps = 1 if a.quick else a.repetitions
    env_sizes = "|".join(str(n) for n in a.envs)
    if a.blas_threads:
        variants = [(f"OPENBLAS_NUM_THREADS={t}", f"^BM_Rollout/({env_sizes})/", {"OPENBLAS_NUM_THREADS": str(t)})
                    for t in a.blas_threads]
    else:
        variants = [("ungrouped", f"^BM_Rollout/({env_sizes})/", {}),
                    ("rollout_groups=2", f"^BM_RolloutGrouped/({env_sizes})/", {})]
    rows = {(v[0], n): [] for v in variants for n in a.envs}  # (steps/s, share of bound) per round
    ratios = {n: [] for n in a.envs}
    for r in range(rounds):
        peak_run = run_benchmarks(build, "^BM_Matmul/1024/", repetitions=reps)
        peak = perf.op_flops("Matmul/1024") / peak_run["Matmul/1024"]["median_s"] / 1e9
        bare = perf.run_bare_mj_step(build, a.quick)
        bound = bound_steps_per_s(bare["bare"], peak) if bare else float("nan")
        got = {}
        for label, regex, extra in variants:
            res = run_benchmarks(build, regex, env={**os.environ, **extra}, repetitions=reps)
            for n in a.envs:
                b = next(v for k, v in res.items() if k.endswith(f"/{n}"))
                sps = b["env_steps_per_iter"] / b["median_s"]
                got[(label, n)] = sps
                rows[(label, n)].append((sps, sps / bound))
        for n in a.envs:
            ratios[n].append(got[(variants[1][0], n)] / got[(variants[0][0], n)] if len(variants) > 1 else float("nan"))
        print(f"round {r + 1}: peak {peak:.0f} GFLOP/s, bare mj_step {bare['bare'] if bare else float('nan'):.0f}/s, "
              f"bound {bound:.0f} env steps/s; " +
              ", ".join(f"{lab} {n} envs {got[(lab, n)]:.0f}" for lab, _, _ in variants for n in a.envs), flush=True)
    print(f"\nmedians over {rounds} rounds:\n")
    print("| rollout | envs | env steps/s | % of bound | " + f"{variants[1][0]} / {variants[0][0]} |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, _, _ in variants:
        for n in a.envs:
            sps = statistics.median(x for x, _ in rows[(label, n)])
            share = statistics.median(s for _, s in rows[(label, n)])
            ratio = f"{statistics.median(ratios[n]):.2f} (rounds: {', '.join(f'{x:.2f}' for x in ratios[n])})" \
                if label == variants[-1][0] and len(variants) > 1 else ""
            print(f"| {label} | {n} | {sps:.0f} | {100 * share:.0f}% | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
