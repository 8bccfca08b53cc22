"""Where a benchmark's CPU time goes, by library and kind of work, from a `perf` sampling profile
(issue 6: "where a goal is missed, say what limits it (profile: perf or callgrind)").

    PYTHONPATH=python .venv/bin/python bench/perf_profile.py [--freq 2000] [--top 3] [--units N] -- COMMAND...
    PYTHONPATH=python .venv/bin/python bench/perf_profile.py --data perf.data   # an existing profile

It runs `perf record -e cpu-clock` (a software clock: the VM offers no hardware counters) on
COMMAND, every thread included, then `perf report --sort dso,sym` and sums the samples into the
categories of `CATEGORIES`: the GEMM kernel, BLAS packing, BLAS threads waiting (sched_yield in
the kernel), LibTorch's ops, MuJoCo, malloc, page faults, .... One sample is 1/freq seconds of one
CPU, so "CPU s" adds up both cores; compare shares between runs, not seconds between machines.
Needs the `perf` binary (Debian package linux-perf) and permission to profile (root, or
kernel.perf_event_paranoid <= 2 for one's own processes).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

# (category, test on (dso, symbol)); the first match wins.
CATEGORIES: List[Tuple[str, object]] = [
    ("BLAS GEMM kernel", lambda d, s: _blas(d) and "kernel" in s),
    ("BLAS packing and C scaling", lambda d, s: _blas(d) and re.search(r"copy|beta", s) is not None),
    ("BLAS threads waiting", lambda d, s: _blas(d) and re.search(r"yield|server|wait", s) is not None),
    ("BLAS other", lambda d, s: _blas(d)),
    ("MuJoCo", lambda d, s: "mujoco" in d),
    ("threads waiting (scheduler)",
     lambda d, s: re.search(r"sched|yield|futex|switch_to|syscall|schedule", s) is not None
     and (d.startswith("[kernel") or _libc(d))),
    ("page faults and memory mapping",
     lambda d, s: d.startswith("[kernel") and re.search(r"fault|page|folio|mm_|mas_|memcg|vma|map", s) is not None),
    ("kernel other", lambda d, s: d.startswith("[kernel")),
    ("LibTorch (dispatch, autograd, elementwise)", lambda d, s: re.search(r"libtorch|libc10|libsleef", d) is not None),
    ("malloc/free", lambda d, s: _libc(d) and re.search(r"malloc|free|_int_|unlink_chunk|consolidate", s)
     is not None),
    ("memcpy/memset", lambda d, s: _libc(d) and re.search(r"mem(move|cpy|set)", s) is not None),
    ("libc other", lambda d, s: _libc(d) or d.startswith("libm.so")),
    ("rldt", lambda d, s: d.startswith("librldt") or d.startswith("rldt_")),
    ("Python interpreter", lambda d, s: "python" in d),
    ("dynamic loader (start-up)", lambda d, s: d.startswith("ld-linux")),
]

_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")


def _blas(dso: str) -> bool:
    return "openblas" in dso or dso.startswith("libblas")


def _libc(dso: str) -> bool:
    return dso.startswith("libc.so") or dso.startswith("libc-")


def categorize(dso: str, symbol: str) -> str:
    for name, test in CATEGORIES:
        if test(dso, symbol):  # type: ignore[operator]
            return name
    return "other"


def parse_report(text: str) -> List[Tuple[float, str, str]]:
    """(percent, dso, symbol) for each line of `perf report --sort dso,sym -g none --stdio`."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(4)))
    return rows


def sample_count(text: str) -> Optional[int]:
    """The sample count from the report header ("# Samples: 54K of event ..."), or None."""
    m = re.search(r"^# Samples: (\d+(?:\.\d+)?)([KM]?) of event", text, re.M)
    if not m:
        return None
    return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6}[m.group(2)])


def summarize(rows: Sequence[Tuple[float, str, str]], top: int = 3) -> List[Tuple[str, float, List[str]]]:
    """Categories by share (percent of all samples), each with its `top` symbols."""
    share: Dict[str, float] = collections.defaultdict(float)
    syms: Dict[str, List[Tuple[float, str]]] = collections.defaultdict(list)
    for pct, dso, sym in rows:
        c = categorize(dso, sym)
        share[c] += pct
        syms[c].append((pct, sym if not sym.startswith("0x") else dso))
    out = []
    for c, p in sorted(share.items(), key=lambda kv: -kv[1]):
        best: Dict[str, float] = collections.defaultdict(float)
        for q, s in syms[c]:
            best[s] += q
        names = [f"{s} {q:.1f}%" for s, q in sorted(best.items(), key=lambda kv: -kv[1])[:top]]
        out.append((c, p, names))
    return out


def report(data: str) -> str:
    perf = _perf()
    return subprocess.run([perf, "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio",
                           "--percent-limit", "0"], check=True, capture_output=True, text=True).stdout


def _perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf_profile.py: the 'perf' program is not on PATH (Debian: apt-get install linux-perf)")
    return perf


def cpu_seconds(text: str, freq: Optional[int]) -> Optional[float]:
    """All the profile's CPU seconds: a cpu-clock profile's event count is in nanoseconds (exact);
    otherwise samples / freq (the header's sample count is rounded to thousands); None if neither."""
    if re.search(r"^# Samples: .* of event 'cpu-clock", text, re.M):
        m = re.search(r"^# Event count \(approx\.\): (\d+)", text, re.M)
        if m:
            return int(m.group(1)) / 1e9
    n = sample_count(text)
    return n / freq if (n and freq) else None


def table(text: str, freq: Optional[int], top: int, units: Optional[int] = None) -> str:
    """The categories as a markdown table; with `units` (e.g. the updates a run made) also the CPU
    milliseconds per unit."""
    n, total = sample_count(text), cpu_seconds(text, freq)
    per = bool(units and total)
    lines = ["| category | share of samples | CPU s |" + (" CPU ms per unit |" if per else "") + " top symbols |",
             "| --- | ---: | ---: |" + (" ---: |" if per else "") + " --- |"]
    for c, p, names in summarize(parse_report(text), top):
        cpu = total * p / 100.0 if total else None
        cells = [c, f"{p:.1f}%", "" if cpu is None else f"{cpu:.2f}"]
        if per:
            cells.append(f"{1e3 * cpu / units:.0f}")
        lines.append("| " + " | ".join(cells + [", ".join(names)]) + " |")
    if n:
        lines.append(f"\n{n} samples" + (f" at {freq} Hz" if freq else "") + (f", {total:.1f} CPU s" if total else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freq", type=int, help="samples per second and CPU (perf record -F; default 2000); with "
                    "--data, the rate it was recorded at (needed for CPU seconds only if the event is not cpu-clock)")
    ap.add_argument("--top", type=int, default=3, help="symbols listed per category")
    ap.add_argument("--data", help="summarize this perf.data instead of recording")
    ap.add_argument("--keep", help="keep the recorded perf.data at this path")
    ap.add_argument("--units", type=int, help="also print CPU ms per unit: the CPU seconds / UNITS (e.g. the "
                    "updates the command makes, warm-up included)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...: the program to profile")
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.freq is not None and args.freq <= 0:
        ap.error("--freq must be > 0")
    if args.units is not None and args.units <= 0:
        ap.error("--units must be > 0")
    if bool(args.data) == bool(cmd):
        ap.error("give either --data PERF_DATA or -- COMMAND ..., not both or neither")
    if args.data:
        if not os.path.isfile(args.data):
            ap.error(f"--data: no such file: {args.data}")
        print(table(report(args.data), args.freq, args.top, args.units))
        return 0
    perf, freq = _perf(), args.freq or 2000
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or os.path.join(tmp, "perf.data")
        rec = subprocess.run([perf, "record", "-e", "cpu-clock", "-F", str(freq), "-o", data, "--"] + cmd)
        if rec.returncode != 0:
            print(f"perf_profile.py: `perf record ... {' '.join(cmd)}` exited with {rec.returncode} (a perf error "
                  "about permissions: run as root or lower kernel.perf_event_paranoid)", file=sys.stderr)
            return rec.returncode
        print(table(report(data), freq, args.top, args.units))
    return 0


if __name__ == "__main__":
    sys.exit(main())
