"""Where one RLDT actor update spends its time, op by op, in C++ and in PyTorch eager code
(issue 6). Both sides use the PyTorch profiler (LibTorch's in C++), whose Chrome traces this
script sums by op name as *self* time (an op's duration minus that of the ops it called). For
where the CPU time goes below the ops (GEMM kernel, packing, page faults, waiting threads), see
bench/perf_profile.py, which samples with `perf`.

    PYTHONPATH=python .venv/bin/python bench/profile_ops.py [--states 256] [--reps 5] [--top 25]

It runs build/rldt_bench_profile (bench/profile_actor_update.cpp) and the eager update of
bench/perf_torch.py with the same sizes, one after the other, and prints one table. Profiling
slows both sides (every op is recorded): compare shares and ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def self_times(trace_path: str) -> Tuple[Dict[str, float], Dict[str, int]]:
    """Sums the self time (µs) and call count of every op name in a Chrome trace of complete
    ('X') events. Events nest by time on one thread; an op's self time excludes its children."""
    with open(trace_path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    by_thread: Dict[object, List[dict]] = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e and str(e.get("name", "")).startswith(("aten::", "autograd::")):
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    total: Dict[str, float] = collections.defaultdict(float)
    calls: Dict[str, int] = collections.defaultdict(int)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack: List[list] = []  # [end, name, duration, children's time]
        def close(item):
            end, name, dur, child = item
            total[name] += dur - child
            if stack:
                stack[-1][3] += dur
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            stack.append([ts + dur, e["name"], dur, 0.0])
            calls[e["name"]] += 1
        while stack:
            close(stack.pop())
    return dict(total), dict(calls)


def eager_trace(states: int, reps: int, path: str) -> None:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import torch
    import perf_torch as pt

    step = pt.actor_update_step(states)
    for _ in range(2):  # warm-up (allocator, Adam state), as on the C++ side
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            step()
    prof.export_chrome_trace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--states", type=int, default=256, help="states per update (x 8 particles)")
    ap.add_argument("--reps", type=int, default=5, help="profiled updates per side")
    ap.add_argument("--top", type=int, default=25, help="rows of the table")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "rldt_bench_profile"))
    a = ap.parse_args(argv)
    if not os.path.exists(a.binary):
        ap.error(f"--binary: {a.binary} does not exist; build it first (cmake --build build --target rldt_bench_profile)")
    with tempfile.TemporaryDirectory() as tmp:
        cpp_path, py_path = os.path.join(tmp, "cpp.json"), os.path.join(tmp, "eager.json")
        out = subprocess.run([a.binary, str(a.states), str(a.reps), cpp_path], check=True, capture_output=True,
                             text=True)
        print(out.stdout.strip())
        eager_trace(a.states, a.reps, py_path)
        cpp, cpp_n = self_times(cpp_path)
        py, py_n = self_times(py_path)
    ct, pt_ = sum(cpp.values()), sum(py.values())
    print(f"self time of all ops per update: C++ {ct / a.reps / 1e3:.1f} ms, eager {pt_ / a.reps / 1e3:.1f} ms "
          f"(ratio {ct / pt_:.2f})\n")
    names = sorted(set(cpp) | set(py), key=lambda n: -max(cpp.get(n, 0.0), py.get(n, 0.0)))
    print("| op | C++ ms/update | calls | eager ms/update | calls | C++ - eager (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in names[: a.top]:
        c, p = cpp.get(n, 0.0) / a.reps / 1e3, py.get(n, 0.0) / a.reps / 1e3
        print(f"| {n} | {c:.2f} | {cpp_n.get(n, 0) // a.reps} | {p:.2f} | {py_n.get(n, 0) // a.reps} | {c - p:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
