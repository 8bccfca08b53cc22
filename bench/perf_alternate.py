"""C++ against eager for the actor (or critic) update, alternated round by round (issue 6). On a
shared host the load can change between bench/perf.py's C++ half and its eager half; alternating
the two sides several times and reading the per-round ratios shows how much of a ratio is noise.

    PYTHONPATH=python .venv/bin/python bench/perf_alternate.py [--op actor|critic] [--rounds 4] [--min-time 2]

Each round runs build/rldt_bench_perf --benchmark_filter=ActorUpdate/ (256x8 and 16x8; with
--op critic CriticUpdate/, 4096 and 256 samples) and then bench/perf_torch.py's eager version for
the same sizes; it prints the per-round times, the per-round ratios and the median ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import perf_torch as pt  # noqa: E402


# --op: (Google Benchmark name, sizes, the eager benchmark of bench/perf_torch.py)
OPS = {
    "actor": ("ActorUpdate", (256, 16), lambda b: pt.bench_actor_update(b)),
    "critic": ("CriticUpdate", (4096, 256), lambda n: pt.bench_critic_update(n)),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--min-time", type=float, default=2.0, help="Google Benchmark --benchmark_min_time (s)")
    ap.add_argument("--binary", default=str(HERE.parent / "build" / "rldt_bench_perf"))
    ap.add_argument("--op", choices=sorted(OPS), default="actor",
                    help="actor: ActorUpdate 256x8 and 16x8; critic: CriticUpdate 4096 and 256")
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {a.rounds}")
    if not Path(a.binary).exists():
        ap.error(f"--binary: {a.binary} does not exist; build it first (cmake --build build --target rldt_bench_perf)")
    name, sizes, eager_fn = OPS[a.op]
    cpp = {b: [] for b in sizes}
    eager = {b: [] for b in sizes}
    for r in range(a.rounds):
        out = subprocess.run([a.binary, f"--benchmark_filter={name}/", "--benchmark_format=json",
                              f"--benchmark_min_time={a.min_time}"], capture_output=True, text=True, check=True).stdout
        for bm in json.loads(out)["benchmarks"]:
            cpp[int(bm["name"].split("/")[1])].append(bm["real_time"])
        for b in sizes:
            eager[b].append(eager_fn(b)["median_s"] * 1e3)
        print(f"round {r}: " + ", ".join(f"{name} {b} C++ {cpp[b][-1]:.1f} ms eager {eager[b][-1]:.1f} ms" for b in sizes),
              flush=True)
    for b in sizes:
        ratios = [c / e for c, e in zip(cpp[b], eager[b])]
        print(f"{name} {b}: C++/eager per round {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
