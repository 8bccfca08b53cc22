"""Issue 6's table: the C++ hot paths (build/rldt_bench_perf) against the same operations in
PyTorch eager code (bench/perf_torch.py), measured in one run, with achieved GFLOP/s next to the
matmul peak measured in the same run.

    PYTHONPATH=python .venv/bin/python bench/perf.py [--build build] [--quick] [--out FILE.md]

--quick runs every benchmark for a short time (a smoke run; numbers are not for reporting).
Ratios are C++ time / eager time (lower is better for C++). Run on a quiet machine: the two sides
run one after the other, so load changes between them distort the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import perf_torch as pt  # noqa: E402

# ---------------------------------------------------------------------------------------------
# FLOP model (multiply-adds count 2; backward ~ 2x forward for weights + inputs)
# ---------------------------------------------------------------------------------------------


def mlp_flops(dims):
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def velocity_flops(hidden=512):
    body = [pt.A + 16 + pt.OBS, hidden] + [hidden] * 2 + [pt.A]  # input, one block (2 layers), output
    return mlp_flops(body) + mlp_flops([16, 32, 16])


def critic_member_flops(hidden=256):
    return mlp_flops([pt.OBS + pt.A, hidden, hidden, hidden, 1])


def op_flops(name):
    fv = velocity_flops()
    fq = critic_member_flops()
    kind, _, arg = name.partition("/")
    if kind == "Matmul":
        return 2.0 * int(arg) ** 3
    if kind.startswith("ActorInference"):
        return pt.K * int(arg) * fv
    if kind.startswith("ActorUpdate"):
        n = int(arg) * pt.P
        # chain (K forwards, no grad) + critic grad (M forwards + input backward) + one forward
        # with grad and its backward + reference term (forward/backward of the actor, the frozen
        # reference forward)
        return n * (pt.K * fv + pt.M * fq * 2 + 3 * fv + 3 * fv + fv)
    if kind in ("CriticUpdate", "CriticUpdateGrouped"):
        return 3.0 * int(arg) * fq  # each sample trains one member: forward + backward
    if kind.startswith("Rollout"):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Running both sides
# ---------------------------------------------------------------------------------------------
def run_cpp(build: Path, quick: bool):
    exe = build / "rldt_bench_perf"
    if not exe.exists():
        sys.exit(f"perf.py: {exe} not found; build it with `cmake --build {build} --target rldt_bench_perf`")
    cmd = [str(exe), "--benchmark_format=json"]
    if quick:
        cmd += ["--benchmark_min_time=0.01", "--benchmark_filter=^BM_(Matmul|Actor|Critic)"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        name = b["name"].removeprefix("BM_").split("/iterations")[0].split("/real_time")[0]
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        r = {"median_s": b["real_time"] * unit}
        for k in ("env_steps", "env_steps_per_iter", "s_rollout", "s_critic", "s_actor", "s_eval_iteration",
                  "share_of_bound", "share_min", "share_max", "env_steps_per_s", "bare_steps_per_s"):
            if k in b:
                r[k] = b[k]
        res[name] = r
    return res


def run_bare_mj_step(build: Path, quick: bool):
    exe = build / "rldt_bench_envs"
    if not exe.exists():
        return None
    steps = "2000" if quick else "20000"
    out = subprocess.run([str(exe), steps, "16", "1" if quick else "3", "Hopper-v5"], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout
    m = re.search(r"\| Hopper-v5 \| (\d+) \| (\d+) \| [\d.]+ \| (\d+) \| (\d+) \|", out)
    return None if not m else {"bare": float(m.group(1)), "env": float(m.group(2)), "pool1": float(m.group(3)),
                               "pool2": float(m.group(4))}


def run_eager(names, quick: bool):
    res = {}
    for name in names:
        if quick and (name.startswith("Rollout") or name.startswith("Hopper")):
            continue
        if quick:
            pt_time = pt.timeit
            pt.timeit = lambda fn, min_time=1.0, min_reps=3, warmup=1: pt_time(fn, 0.01, 1, 1)
            try:
                res[name] = pt.BENCHES[name]()
            finally:
                pt.timeit = pt_time
        else:
            res[name] = pt.BENCHES[name]()
    return res


def table(cpp, eager, bare, peak):
    rows = ["| operation | C++ (ms) | eager (ms) | C++ / eager | C++ GFLOP/s | % of peak |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    names = []
    for name in pt.BENCHES:
        names.append((name, name))
        if name.startswith("ActorInference/"):  # InferencePolicy's paths against the same eager code
            for path in ("Packed", "Packed2", "Blas", "Eigen"):
                names.append((name.replace("ActorInference", "ActorInference" + path), name))
        if name.startswith(("ActorUpdate/", "CriticUpdate/")):  # update_groups 2 against the same eager code
            names.append((name.replace("Update", "UpdateGrouped"), name))
        if name.startswith("ActorUpdate/"):  # each layout with the other backward; the products alone
            for what in ("Autograd", "GroupedManual", "Products", "ProductsPacked"):
                names.append((name.replace("Update", "Update" + what), name))
        if name == "HopperCpuIteration":  # actor and critic update_groups 2; and all speed options
            names.append(("HopperCpuIterationGrouped", name))
            names.append(("HopperCpuIterationAllOptions", name))
    for name, eager_name in names:
        c, e = cpp.get(name), eager.get(eager_name)
        if c is None and (e is None or name != eager_name):  # (a C++ variant not run at this size)
            continue
        ct = c["median_s"] * 1e3 if c else float("nan")
        et = e["median_s"] * 1e3 if e else float("nan")
        fl = op_flops(name)
        gf = fl / c["median_s"] / 1e9 if (fl and c) else None
        rows.append(f"| {name} | {ct:.3f} | {et:.3f} | {ct / et:.2f} | "
                    f"{'-' if gf is None else f'{gf:.1f}'} | {'-' if gf is None else f'{100 * gf / peak:.0f}%'} |")
    lines = rows
    for name in ("Rollout/16", "Rollout/64", "RolloutGrouped/16", "RolloutGrouped/64", "RolloutGroupedPacked/16",
                 "RolloutGroupedPacked/64"):
        c = cpp.get(name)
        e = eager.get("Rollout/" + name.split("/")[1])  # eager has one way
        if c and e:
            cs = c["env_steps_per_iter"] / c["median_s"]
            es = e["env_steps_per_iter"] / e["median_s"]
            extra = ""
            if bare:
                # bound: bare physics on both cores + inference FLOPs at the measured peak
                per_step = 1.0 / (bare["bare"] * 2) + pt.K * velocity_flops() / pt.H / (peak * 1e9)
                extra = f"; bound {1 / per_step:.0f} steps/s (bare mj_step x 2 cores + inference at peak): {100 * cs * per_step:.0f}%"
            lines.append(f"\n{name}: C++ {cs:.0f} env steps/s, eager (Gymnasium SyncVectorEnv) {es:.0f} env steps/s, "
                         f"ratio {cs / es:.2f}x{extra}")
    for name in ("RolloutShare/16", "RolloutShare/64", "RolloutSharePacked/16", "RolloutSharePacked/64",
                 "RolloutShareGrouped/16", "RolloutShareGrouped/64",
                 "RolloutShareGroupedPacked/16", "RolloutShareGroupedPacked/64"):
        c = cpp.get(name)
        if c and "share_of_bound" in c:
            lines.append(f"\n{name}: {c['env_steps_per_s']:.0f} env steps/s, {100 * c['share_of_bound']:.0f}% of the bound "
                         f"measured next to each iteration (iterations {100 * c['share_min']:.0f}-"
                         f"{100 * c['share_max']:.0f}%; bare physics on both cores {c['bare_steps_per_s']:.0f} steps/s)")
    c, e = cpp.get("HopperCpuIteration"), eager.get("HopperCpuIteration")
    for label, it in (("C++", c), ("C++, update_groups 2", cpp.get("HopperCpuIterationGrouped")),
                      ("C++, all speed options", cpp.get("HopperCpuIterationAllOptions"))):
        if it:
            lines.append(f"\nHopper CPU iteration ({label}): {it['median_s']:.2f} s = rollout {it['s_rollout']:.2f} + "
                         f"critic {it['s_critic']:.2f} + actor {it['s_actor']:.2f} (+ rest); evaluation iteration "
                         f"{it['s_eval_iteration']:.2f} s")
    if e:
        lines.append(f"Hopper CPU iteration (eager): {e['median_s']:.2f} s = rollout {e['s_rollout']:.2f} + critic "
                     f"{e['s_critic']:.2f} + actor {e['s_actor']:.2f}" + (f"; C++ / eager {c['median_s'] / e['median_s']:.2f}" if c else ""))
    if bare:
        lines.append(f"\nHopper bare mj_step {bare['bare']:.0f} steps/s (1 thread); rldt env {bare['env']:.0f} "
                     f"({bare['env'] / bare['bare']:.2f}); pool 16 envs 1 -> 2 threads {bare['pool2'] / bare['pool1']:.2f}x")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--quick", action="store_true", help="short smoke run (numbers not for reporting)")
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    args = ap.parse_args(argv)
    build = Path(args.build)
    cpp = run_cpp(build, args.quick)
    eager = run_eager(list(pt.BENCHES), args.quick)
    bare = run_bare_mj_step(build, args.quick)
    peak = max(cpp["Matmul/1024"]["median_s"] and op_flops("Matmul/1024") / cpp["Matmul/1024"]["median_s"],
               op_flops("Matmul/1024") / eager["Matmul/1024"]["median_s"]) / 1e9
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {load:.2f} at the end; "
            f"torch {pt.torch.__version__}; fp32 matmul peak measured {peak:.0f} GFLOP/s (max of C++ and eager 1024^3)")
    text = head + "\n\n" + table(cpp, eager, bare, peak)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
