"""Method x task x seed experiment grids (issue 5): runs every cell with the `rldt` command,
resumes a partly finished grid, and writes a results table and learning-curve plots.

    PYTHONPATH=python .venv/bin/python bench/grid.py configs/bench/hopper.yaml [--only METHOD]
        [--seeds 0,1] [--dry-run] [--report-only] [--rldt build/rldt]

A grid file (YAML):

    name: hopper                          # used in titles and the default out folder
    out: runs/bench/hopper                # cells go to OUT/<method>/<task>/seed<k>
    tasks: [hopper]                       # substituted for {task} in config paths
    seeds: [0, 1, 2]
    env_step_budget: 200000               # "return at a fixed env-step budget"
    wall_budget_s: 1800                   # "return at a fixed wall-clock budget"
    overrides: []                         # applied to every cell (e.g. n_train_itr=20)
    methods:
      rldt:       {command: finetune, config: "configs/gym/{task}/finetune-cpu.yaml"}
      rldt-delta: {command: finetune, config: "configs/gym/{task}/finetune-cpu.yaml",
                   overrides: [actor.svgd.field=delta]}

A cell whose run.json says "completed" is skipped; one with a checkpoint is resumed
(`rldt <command> --resume`, when the command supports it); any other is started afresh (--force).
The report (OUT/results.md and OUT/results.csv) is rebuilt from the run folders every time, so it
can be regenerated with --report-only. Numbers are deterministic evaluation returns (the
iterations with iteration % val_freq == 0), mean and 95% interval over seeds (Student t).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]

# Two-sided 95% Student t quantiles t_{0.975, df}, df = 1..30 (then the normal 1.96).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(values: List[float]):
    """(mean, half width of the 95% interval) over finite values; (nan, nan) if none."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return math.nan, math.nan
    m = sum(v) / len(v)
    if len(v) == 1:
        return m, math.nan
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    t = _T975[len(v) - 2] if len(v) - 1 <= len(_T975) else 1.96
    return m, t * sd / math.sqrt(len(v))


class GridError(ValueError):
    pass


@dataclass
class Method:
    name: str
    command: str
    config: str
    overrides: List[str] = field(default_factory=list)


@dataclass
class Grid:
    path: Path
    name: str
    out: Path
    tasks: List[str]
    seeds: List[int]
    methods: List[Method]
    env_step_budget: Optional[float] = None
    wall_budget_s: Optional[float] = None
    overrides: List[str] = field(default_factory=list)


def load_grid(path) -> Grid:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GridError(f"{path}: no such grid file") from None
    except yaml.YAMLError as e:
        raise GridError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise GridError(f"{path}: expected a mapping at the top level")
    known = {"name", "out", "tasks", "seeds", "methods", "env_step_budget", "wall_budget_s", "overrides"}
    for k in doc:
        if k not in known:
            raise GridError(f"{path}: unknown key '{k}'; known keys: {', '.join(sorted(known))}")
    for k in ("methods", "seeds"):
        if k not in doc:
            raise GridError(f"{path}: key '{k}' is missing")
    methods = []
    if not isinstance(doc["methods"], dict) or not doc["methods"]:
        raise GridError(f"{path}: key 'methods' must map method names to {{command, config, overrides}}")
    for name, spec in doc["methods"].items():
        if not isinstance(spec, dict) or "command" not in spec or "config" not in spec:
            raise GridError(f"{path}: key 'methods.{name}' needs 'command' and 'config'")
        extra = set(spec) - {"command", "config", "overrides"}
        if extra:
            raise GridError(f"{path}: key 'methods.{name}.{sorted(extra)[0]}' is unknown (command, config, overrides)")
        methods.append(Method(str(name), str(spec["command"]), str(spec["config"]), [str(o) for o in spec.get("overrides", [])]))
    seeds = doc["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise GridError(f"{path}: key 'seeds' must be a non-empty list of integers")
    tasks = doc.get("tasks", [""])
    if not isinstance(tasks, list) or not tasks:
        raise GridError(f"{path}: key 'tasks' must be a non-empty list")
    name = str(doc.get("name", path.stem))
    out = Path(doc.get("out", f"runs/bench/{name}"))
    if not out.is_absolute():
        out = ROOT / out
    for key in ("env_step_budget", "wall_budget_s"):
        v = doc.get(key)
        if v is not None and (not isinstance(v, (int, float)) or v <= 0):
            raise GridError(f"{path}: key '{key}' must be a positive number, got {v!r}")
    return Grid(path, name, out, [str(t) for t in tasks], list(seeds), methods, doc.get("env_step_budget"),
                doc.get("wall_budget_s"), [str(o) for o in doc.get("overrides", [])])


def cell_dir(grid: Grid, method: Method, task: str, seed: int) -> Path:
    return grid.out / method.name / (task or "task") / f"seed{seed}"


def cell_status(d: Path) -> str:
    meta = d / "run.json"
    if not meta.is_file():
        return "missing"
    try:
        return str(json.loads(meta.read_text()).get("status", "unknown"))
    except json.JSONDecodeError:
        return "unknown"


def run_cell(grid: Grid, method: Method, task: str, seed: int, rldt: str, dry_run: bool) -> str:
    d = cell_dir(grid, method, task, seed)
    status = cell_status(d)
    if status == "completed":
        return "skipped (completed)"
    config = method.config.replace("{task}", task)
    if not Path(config).is_absolute():
        config = str(ROOT / config)
    overrides = grid.overrides + method.overrides + [f"seed={seed}"]
    if (d / "checkpoint.pt").is_file() and status != "missing":
        cmd = [rldt, method.command, "--resume", str(d)]
        what = "resumed"
    else:
        cmd = [rldt, method.command, "--config", config, "--out", str(d), "--force"] + overrides
        what = "ran"
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    if dry_run:
        return "dry run"
    d.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    if rc != 0:
        return f"failed (exit {rc}) after {time.time() - t0:.0f} s"
    return f"{what} in {time.time() - t0:.0f} s"


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def read_eval_rows(d: Path):
    """[(env_steps, seconds_wall, episode_return)] of the evaluation iterations."""
    p = d / "metrics.csv"
    if not p.is_file():
        return []
    rows = []
    with p.open(newline="") as f:
        for r in csv.DictReader(f):
            # eval_return: whole deterministic episodes on separate envs (rldt sac; rldt finetune/
            # scratch with eval_episodes > 0); else the evaluation iteration's own episodes.
            ret = r.get("eval_return") or r.get("episode_return")
            if r.get("eval") not in ("1", "true", "True") or ret in ("", None):
                continue
            rows.append((float(r["env_steps"]), float(r.get("seconds_wall") or "nan"), float(ret)))
    return rows


def last_within(rows, index, budget):
    vals = [r[2] for r in rows if r[index] <= budget]
    return vals[-1] if vals else math.nan


def cell_numbers(grid: Grid, d: Path) -> Dict[str, float]:
    rows = read_eval_rows(d)
    if not rows:
        return {}
    out = {"base": rows[0][2], "final": rows[-1][2], "best": max(r[2] for r in rows),
           "env_steps": rows[-1][0], "seconds": rows[-1][1]}
    p = d / "metrics.csv"
    with p.open(newline="") as f:
        all_rows = list(csv.DictReader(f))
    if all_rows:
        last = all_rows[-1]
        steps, wall = float(last["env_steps"]), float(last.get("seconds_wall") or "nan")
        out["steps_per_s"] = steps / wall if wall > 0 else math.nan
    if grid.env_step_budget:
        out["at_steps"] = last_within(rows, 0, grid.env_step_budget)
    if grid.wall_budget_s:
        out["at_wall"] = last_within(rows, 1, grid.wall_budget_s)
    return out


def fmt(m, ci):
    if math.isnan(m):
        return "-"
    return f"{m:.1f}" if math.isnan(ci) else f"{m:.1f} ± {ci:.1f}"


def report(grid: Grid, rldt: str) -> str:
    columns = [("base", "base return"), ("final", "final return"), ("best", "best return")]
    if grid.env_step_budget:
        columns.append(("at_steps", f"return at {grid.env_step_budget:g} env steps"))
    if grid.wall_budget_s:
        columns.append(("at_wall", f"return at {grid.wall_budget_s:g} s"))
    columns.append(("steps_per_s", "env steps/s"))
    lines = [f"# {grid.name}: results", "",
             f"Grid `{os.path.relpath(grid.path, ROOT)}`; deterministic evaluation returns, mean ± 95% interval "
             "over seeds (Student t; no interval with one seed).", "",
             "| task | method | seeds | " + " | ".join(c[1] for c in columns) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in columns) + " |"]
    csv_rows = []
    for task in grid.tasks:
        for method in grid.methods:
            nums = []
            for seed in grid.seeds:
                n = cell_numbers(grid, cell_dir(grid, method, task, seed))
                if n:
                    nums.append(n)
                    csv_rows.append({"task": task, "method": method.name, "seed": seed, **n})
            cells = [fmt(*mean_ci([n.get(k, math.nan) for n in nums])) for k, _ in columns]
            lines.append(f"| {task or '-'} | {method.name} | {len(nums)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    grid.out.mkdir(parents=True, exist_ok=True)
    (grid.out / "results.md").write_text(text)
    keys = ["task", "method", "seed"] + sorted({k for r in csv_rows for k in r} - {"task", "method", "seed"})
    with (grid.out / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in csv_rows:
            w.writerow(r)
    # Learning curves: every method of a task overlaid, against env steps and wall time.
    for task in grid.tasks:
        # METHOD=DIR: curves are grouped by method (methods may share one config file).
        dirs = [f"{m.name}={cell_dir(grid, m, task, s)}" for m in grid.methods for s in grid.seeds
                if (cell_dir(grid, m, task, s) / "metrics.csv").is_file()]
        if not dirs:
            continue
        for x in ("env_steps", "seconds_wall"):
            png = grid.out / f"{task or 'task'}_{x}.png"
            cmd = [rldt, "plot", *dirs, "--out", str(png), "--x", x, "--title", f"{grid.name} {task}".strip()]
            subprocess.run(cmd, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid", help="grid YAML file")
    ap.add_argument("--only", action="append", help="run only this method (repeatable)")
    ap.add_argument("--seeds", help="comma-separated subset of the grid's seeds")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--report-only", action="store_true", help="rebuild the table and plots from the run folders")
    ap.add_argument("--rldt", default=str(ROOT / "build" / "rldt"), help="the rldt executable")
    a = ap.parse_args(argv)
    try:
        grid = load_grid(a.grid)
    except GridError as e:
        print(f"grid: {e}", file=sys.stderr)
        return 2
    names = [m.name for m in grid.methods]
    for o in a.only or []:
        if o not in names:
            print(f"grid: --only {o}: no such method in {a.grid}; methods: {', '.join(names)}", file=sys.stderr)
            return 2
    seeds = grid.seeds
    if a.seeds:
        seeds = [int(s) for s in a.seeds.split(",")]
        bad = [s for s in seeds if s not in grid.seeds]
        if bad:
            print(f"grid: --seeds {bad[0]} is not in the grid's seeds {grid.seeds}", file=sys.stderr)
            return 2
    failed = 0
    if not a.report_only:
        if not Path(a.rldt).exists():
            print(f"grid: the rldt executable '{a.rldt}' does not exist (build first: scripts/dev build)", file=sys.stderr)
            return 2
        for task in grid.tasks:
            for m in grid.methods:
                if a.only and m.name not in a.only:
                    continue
                for s in seeds:
                    res = run_cell(grid, m, task, s, a.rldt, a.dry_run)
                    failed += res.startswith("failed")
                    print(f"[{m.name} {task} seed {s}] {res}", flush=True)
    if not a.dry_run:
        print(report(grid, a.rldt))
        print(f"wrote {grid.out / 'results.md'}, {grid.out / 'results.csv'} and the plots")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
