#!/usr/bin/env python3
"""What is left of the RLDT actor update once everything but its matrix products is free? The
GEMMs of one update of bench/perf_torch.py (the eager update bench/perf.py compares against), run
alone back to back through the same LibTorch and OpenBLAS, alternated round by round with the
whole eager update and the C++ update (issue 6: the 16 x 8 goal of <= 0.5x eager).

    PYTHONPATH=python .venv/bin/python bench/gemm_floor.py [--states 16] [--rounds 4] [--min-time 2]

The GEMMs, from the networks' layers (N = states x P rows):
  - the K-step sampling chain: K forwards of the velocity net (time MLP, input, two 512 x 512
    blocks, output);
  - the critic's action gradient: M member forwards and their input backwards (dX only: the
    critic is frozen here);
  - the velocity net's forward with gradient at x_k and at the L_ref points, and the frozen
    reference net's forward at the latter;
  - the two backwards: dW for every layer, dX for every layer but the time MLP's first (whose
    input, the sinusoid, needs no gradient).
Each product is called with the operand layout autograd uses (addmm with W^T for forwards,
G @ W for dX, G^T @ X for dW), into preallocated outputs ("gemms"; the Python loop adds its own
cost per call). The C++ columns, when build/rldt_bench_perf is built: BM_ActorUpdate and
BM_ActorUpdateGrouped (update_groups 2) at the same size, and the same products from C++,
BM_ActorUpdateProducts (LibTorch's matmuls on OpenBLAS's two threads, nothing between them: the
floor of C++ / eager for an update that keeps its products there) and BM_ActorUpdateProductsPacked
(on weights packed once, PackedWeights, the rows in two groups on two threads: what a
hand-written grouped update would multiply with).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Tuple

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import perf_torch as pt  # noqa: E402

Call = Callable[[], object]
CPP_SIZES = (256, 16)  # the states of rldt_bench_perf's BM_ActorUpdate benchmarks (bench/perf_core.cpp)


def linear_shapes(module: torch.nn.Module) -> List[Tuple[int, int]]:
    """(in, out) of every nn.Linear of `module`, in forward order."""
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def velocity_layers() -> List[Tuple[int, int]]:
    net = pt.VelocityNet()
    return linear_shapes(net.time) + linear_shapes(net.body)


def critic_layers() -> List[Tuple[int, int]]:
    return linear_shapes(pt.Critic().members[0])


def update_gemms(n: int) -> Tuple[List[Call], float]:
    """The products of one eager actor update on n = states x P rows, as calls on preallocated
    tensors, and their FLOPs."""
    calls: List[Call] = []
    flops = 0.0

    def forward(layers):
        nonlocal flops
        for i, o in layers:
            x, w, b, y = torch.randn(n, i), torch.randn(o, i), torch.randn(o), torch.empty(n, o)
            calls.append(lambda x=x, w=w, b=b, y=y: torch.addmm(b, x, w.t(), out=y))
            flops += 2.0 * n * i * o

    def backward(layers, weights: bool, skip_first_dx: bool):
        nonlocal flops
        for j, (i, o) in enumerate(reversed(layers)):
            g, w, x = torch.randn(n, o), torch.randn(o, i), torch.randn(n, i)
            if not (skip_first_dx and j == len(layers) - 1):
                dx = torch.empty(n, i)
                calls.append(lambda g=g, w=w, dx=dx: torch.mm(g, w, out=dx))
                flops += 2.0 * n * i * o
            if weights:
                dw = torch.empty(o, i)
                calls.append(lambda g=g, x=x, dw=dw: torch.mm(g.t(), x, out=dw))
                flops += 2.0 * n * i * o

    actor, critic = velocity_layers(), critic_layers()
    for _ in range(pt.K):  # the chain
        forward(actor)
    for _ in range(pt.M):  # the critic's action gradient
        forward(critic)
        backward(critic, weights=False, skip_first_dx=False)
    forward(actor)  # with gradient at x_k
    forward(actor)  # the reference net at the L_ref points
    forward(actor)  # with gradient at the L_ref points
    for _ in range(2):
        backward(actor, weights=True, skip_first_dx=True)
    return calls, flops


def cpp_update_ms(binary: Path, states: int, min_time: float) -> dict:
    out = subprocess.run([str(binary), f"--benchmark_filter=^BM_ActorUpdate(Grouped|Products|ProductsPacked)?/{states}/",
                          "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                         capture_output=True, text=True, check=True).stdout
    to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    return {bm["name"].split("/")[0][len("BM_"):]: bm["real_time"] * to_ms[bm["time_unit"]]
            for bm in json.loads(out)["benchmarks"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--states", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    ap.add_argument("--binary", default=str(HERE.parent / "build" / "rldt_bench_perf"),
                    help="the C++ benchmarks (skipped when it does not exist)")
    a = ap.parse_args(argv)
    if a.states < 1 or a.rounds < 1 or a.min_time <= 0:
        ap.error("--states and --rounds must be >= 1 and --min-time > 0")
    binary = Path(a.binary)
    with_cpp = binary.exists() and a.states in CPP_SIZES
    if binary.exists() and not with_cpp:
        print(f"(the C++ updates are benchmarked at {' and '.join(map(str, CPP_SIZES))} states only: skipped)")
    n = a.states * pt.P
    calls, flops = update_gemms(n)

    def gemms():
        for c in calls:
            c()

    print(f"{len(calls)} products, {flops / 1e9:.2f} GFLOP per update of {a.states} x {pt.P}", flush=True)
    rows = {"gemms": [], "eager": [], "ActorUpdate": [], "ActorUpdateGrouped": [], "ActorUpdateProducts": [],
            "ActorUpdateProductsPacked": []}
    for r in range(a.rounds):
        rows["eager"].append(pt.timeit(pt.actor_update_step(a.states), min_time=a.min_time)["median_s"] * 1e3)
        rows["gemms"].append(pt.timeit(gemms, min_time=a.min_time)["median_s"] * 1e3)
        if with_cpp:
            for name, ms in cpp_update_ms(binary, a.states, a.min_time).items():
                rows[name].append(ms)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in rows.items() if v)
              + f" (gemms {flops / rows['gemms'][-1] / 1e6:.0f} GFLOP/s)", flush=True)
    for name, v in rows.items():
        if not v or name == "eager":
            continue
        ratios = [x / e for x, e in zip(v, rows["eager"])]
        print(f"{name} / eager per round {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
