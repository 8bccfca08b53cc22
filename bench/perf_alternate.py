"""C++ against eager for the actor (or critic) update or actor inference, alternated round by round
(issue 6). On a shared host the load can change between bench/perf.py's C++ half and its eager
half; alternating the two sides several times and reading the per-round ratios shows how much of a
ratio is noise.

    PYTHONPATH=python .venv/bin/python bench/perf_alternate.py [--op actor|critic|inference] [--rounds 4] [--min-time 2]

Each round runs build/rldt_bench_perf for the op's benchmarks (actor: ActorUpdate 256x8 and 16x8,
with update_groups 1 and 2 (ActorUpdateGrouped), backward "auto"; actor-backward: the same and
each with the other backward (ActorUpdateAutograd, ActorUpdateGroupedManual); critic:
CriticUpdate 4096 and 256 samples, also with update_groups 2 (CriticUpdateGrouped);
inference: ActorInference, LibTorch and InferencePolicy, 1 and 100 states; inference-split:
InferencePolicy packed on 1 thread and on 2 threads split by rows and by columns, 1, 8, 16 and 100
states) and then
bench/perf_torch.py's eager version for the same sizes; it prints the per-round times, the
per-round ratios and the median ratio. With --peak each round also runs the 1024³ matmul and
reports each C++ benchmark's GFLOP/s (bench/perf.py's FLOP model) as a share of it. With
--malloc-untuned each round also runs the C++ benchmarks with RLDT_MALLOC_TUNING=0 (glibc's malloc
defaults; see include/rldt/util/malloc_tuning.hpp) and reports those against eager and the tuned
ones against them.
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
sys.path.insert(0, str(HERE))

import perf_torch as pt  # noqa: E402
from perf import op_flops  # noqa: E402


# --op: (Google Benchmark names, sizes, the eager benchmark of bench/perf_torch.py)
OPS = {
    "actor": (("ActorUpdate", "ActorUpdateGrouped"), (256, 16), lambda b: pt.bench_actor_update(b)),
    "actor-backward": (("ActorUpdate", "ActorUpdateGrouped", "ActorUpdateAutograd", "ActorUpdateGroupedManual"),
                       (256, 16), lambda b: pt.bench_actor_update(b)),
    "critic": (("CriticUpdate", "CriticUpdateGrouped"), (4096, 256), lambda n: pt.bench_critic_update(n)),
    "inference": (("ActorInference", "ActorInferencePacked", "ActorInferencePacked2"), (1, 100),
                  lambda b: pt.bench_actor_inference(b)),
    "inference-split": (("ActorInferencePacked", "ActorInferencePacked2Rows", "ActorInferencePacked2Columns"),
                        (1, 8, 16, 100), lambda b: pt.bench_actor_inference(b)),
}


_TO_MS = {"ns": 1e6, "us": 1e3, "ms": 1.0, "s": 1e-3}  # Google Benchmark time_unit -> divisor to ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--min-time", type=float, default=2.0, help="Google Benchmark --benchmark_min_time (s)")
    ap.add_argument("--binary", default=str(HERE.parent / "build" / "rldt_bench_perf"))
    ap.add_argument("--op", choices=sorted(OPS), default="actor",
                    help="actor: ActorUpdate 256x8 and 16x8 (update_groups 1 and 2); "
                         "actor-backward: the same, and each with the other backward; "
                         "critic: CriticUpdate 4096 and 256 (update_groups 1 and 2); "
                         "inference: ActorInference (LibTorch and InferencePolicy) at 1 and 100 states; "
                         "inference-split: InferencePolicy on 1 thread and on 2 split by rows / columns, "
                         "at 1, 8, 16 and 100 states")
    ap.add_argument("--malloc-untuned", action="store_true",
                    help="also run the C++ side with RLDT_MALLOC_TUNING=0 each round")
    ap.add_argument("--peak", action="store_true",
                    help="also run the 1024^3 matmul each round and print each C++ benchmark's share of it "
                         "(FLOPs from bench/perf.py's model)")
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {a.rounds}")
    if not Path(a.binary).exists():
        ap.error(f"--binary: {a.binary} does not exist; build it first (cmake --build build --target rldt_bench_perf)")
    names, sizes, eager_fn = OPS[a.op]
    cpp = {(n, b): [] for n in names for b in sizes}
    untuned = {(n, b): [] for n in names for b in sizes}
    eager = {b: [] for b in sizes}

    peak = []  # GFLOP/s of the 1024^3 matmul, per round

    def run_cpp(into, env=None, with_peak=False):
        pattern = "|".join(names) + ("|Matmul/1024" if with_peak else "")
        out = subprocess.run([a.binary, f"--benchmark_filter=^BM_({pattern})/", "--benchmark_format=json",
                              f"--benchmark_min_time={a.min_time}"], capture_output=True, text=True, check=True,
                             env=env).stdout
        for bm in json.loads(out)["benchmarks"]:
            parts = bm["name"].split("/")  # BM_<name>/<size>/real_time
            if parts[0] == "BM_Matmul":
                peak.append(op_flops("Matmul/1024") / (bm["real_time"] / _TO_MS[bm["time_unit"]] * 1e-3) / 1e9)
                continue
            key = (parts[0][len("BM_"):], int(parts[1]))
            if key in into:  # (sizes the op does not compare are skipped)
                into[key].append(bm["real_time"] / _TO_MS[bm["time_unit"]])

    for r in range(a.rounds):
        run_cpp(cpp, with_peak=a.peak)
        if a.malloc_untuned:
            run_cpp(untuned, dict(os.environ, RLDT_MALLOC_TUNING="0"))
        for b in sizes:
            eager[b].append(eager_fn(b)["median_s"] * 1e3)
        print(f"round {r}: " + ", ".join(f"{n} {b} C++ {cpp[(n, b)][-1]:.2f} ms" for n in names for b in sizes)
              + ("; untuned " + ", ".join(f"{n} {b} {untuned[(n, b)][-1]:.2f} ms" for n in names for b in sizes)
                 if a.malloc_untuned else "")
              + "; eager " + ", ".join(f"{b} {eager[b][-1]:.2f} ms" for b in sizes), flush=True)

    def line(label, num, den):
        ratios = [x / y for x, y in zip(num, den)]
        print(f"{label} per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")

    def share_of_peak(n, b):
        fl = op_flops(f"{n}/{b}")
        shares = [fl / (ms * 1e-3) / 1e9 / p for ms, p in zip(cpp[(n, b)], peak)]
        print(f"{n} {b}: share of the matmul peak per round {', '.join(f'{100 * x:.0f}%' for x in shares)}; "
              f"median {100 * statistics.median(shares):.0f}% (peak {', '.join(f'{p:.0f}' for p in peak)} GFLOP/s)")

    for n in names:
        for b in sizes:
            line(f"{n} {b}: C++/eager", cpp[(n, b)], eager[b])
            if a.peak and op_flops(f"{n}/{b}"):
                share_of_peak(n, b)
            if a.malloc_untuned:
                line(f"{n} {b}: C++ malloc untuned/eager", untuned[(n, b)], eager[b])
                line(f"{n} {b}: C++ tuned/untuned", cpp[(n, b)], untuned[(n, b)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
