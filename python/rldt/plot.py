"""Plot evaluation return against environment steps for `rldt` run folders.

    rldt plot RUN_DIR [RUN_DIR ...] --out FILE.png [--metric episode_return] [--x env_steps|seconds_wall]
    python3 -m rldt.plot ...      (the same; also runs as a plain script: python3 plot.py ...)

Each run folder is one written by the `rldt` command (metrics.csv, and run.json naming the config).
Runs with the same config name (e.g. several seeds of configs/gym/hopper/finetune-cpu.yaml) are
one group: the plot shows the group's mean over runs as a line and the spread (min to max over
runs) as a band, with each run as a thin line. Only evaluation iterations are plotted (the
deterministic returns); --all-iterations plots every iteration instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    path: Path
    name: str  # the group: config name
    env_steps: list = field(default_factory=list)
    values: list = field(default_factory=list)


def _float(cell: str) -> float:
    return float(cell) if cell not in ("", None) else math.nan


def config_name(run_dir: Path) -> str:
    """The config name from run.json, else the folder name without a trailing -seedN."""
    meta = run_dir / "run.json"
    if meta.is_file():
        try:
            name = json.loads(meta.read_text()).get("config_name")
            if name:
                return str(name)
        except json.JSONDecodeError:
            pass
    return re.sub(r"-seed\d+$", "", run_dir.resolve().name)


def split_label(arg) -> tuple:
    """"LABEL=RUN_DIR" → (LABEL, RUN_DIR); a plain run folder → ("", RUN_DIR) (grouped by its config name)."""
    text = str(arg)
    if "=" in text and not Path(text).exists():
        label, path = text.split("=", 1)
        return label, Path(path)
    return "", Path(text)


X_AXES = {"env_steps": "environment steps", "seconds_wall": "wall-clock seconds"}


def read_run(run_dir: Path, metric: str = "episode_return", eval_only: bool = True, x: str = "env_steps") -> Run:
    """Reads (x, metric) of a run's evaluation iterations (all iterations if not eval_only);
    x is a metrics.csv column: env_steps or seconds_wall."""
    csv_path = run_dir / "metrics.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.csv (is this an rldt run folder?)")
    run = Run(path=run_dir, name=config_name(run_dir))
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        # Whole deterministic episodes on separate envs (eval_return: rldt sac, and rldt runs with
        # eval_episodes > 0) are preferred to an evaluation iteration's own episodes.
        prefer = metric == "episode_return" and eval_only and "eval_return" in (reader.fieldnames or [])
        if metric not in (reader.fieldnames or []):
            raise KeyError(f"{csv_path}: no column '{metric}'; columns: {', '.join(reader.fieldnames or [])}")
        if x not in (reader.fieldnames or []):
            raise KeyError(f"{csv_path}: no column '{x}' for the x axis; columns: {', '.join(reader.fieldnames or [])}")
        for row in reader:
            if eval_only and row.get("eval") not in ("1", "true", "True"):
                continue
            value = _float(row[metric])
            if prefer and not math.isnan(_float(row["eval_return"])):
                value = _float(row["eval_return"])
            if math.isnan(value):
                continue
            run.env_steps.append(_float(row[x]))
            run.values.append(value)
    return run


def group_runs(runs: list[Run]) -> "OrderedDict[str, list[Run]]":
    groups: OrderedDict[str, list[Run]] = OrderedDict()
    for r in runs:
        groups.setdefault(r.name, []).append(r)
    return groups


def group_curve(runs: list[Run]):
    """Mean, min and max over runs, point by point, over the points every run has.

    Runs of one config evaluate at the same iterations; their env step counts differ only by
    episodes that end mid-chunk, so the x value is the mean over runs.
    Returns (x, mean, lo, hi) as lists.
    """
    n = min(len(r.values) for r in runs)
    x, mean, lo, hi = [], [], [], []
    for i in range(n):
        vals = [r.values[i] for r in runs]
        x.append(sum(r.env_steps[i] for r in runs) / len(runs))
        mean.append(sum(vals) / len(vals))
        lo.append(min(vals))
        hi.append(max(vals))
    return x, mean, lo, hi


def plot(run_dirs: list[Path], out: Path, metric: str = "episode_return", eval_only: bool = True,
         title: str | None = None, x: str = "env_steps") -> dict:
    """Writes the figure to `out`; returns {config name: (runs, last mean)} for a summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in X_AXES:
        raise KeyError(f"x axis '{x}' is not one of {', '.join(X_AXES)}")
    runs = []
    for d in run_dirs:
        label, path = split_label(d)
        run = read_run(path, metric, eval_only, x)
        if label:
            run.name = label
        runs.append(run)
    xlabel = X_AXES[x]
    groups = group_runs(runs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    summary = {}
    for i, (name, members) in enumerate(groups.items()):
        color = f"C{i % 10}"
        members = [r for r in members if r.values]
        if not members:
            summary[name] = (0, math.nan)
            continue
        for r in members:
            ax.plot(r.env_steps, r.values, color=color, alpha=0.3, linewidth=0.8)
        x, mean, lo, hi = group_curve(members)
        label = f"{name} ({len(members)} run{'s' if len(members) > 1 else ''})"
        ax.plot(x, mean, color=color, linewidth=2, label=label)
        if len(members) > 1:
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
        summary[name] = (len(members), mean[-1] if mean else math.nan)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(("evaluation " if eval_only else "") + metric.replace("_", " "))
    ax.set_title(title or "rldt runs: mean over runs, band = min..max")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rldt plot", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders written by `rldt`; LABEL=RUN_DIR groups a run under LABEL "
                                           "(default: the config name in its run.json)")
    p.add_argument("--out", type=Path, required=True, help="image file to write (.png, .pdf, .svg)")
    p.add_argument("--metric", default="episode_return", help="metrics.csv column (default episode_return)")
    p.add_argument("--all-iterations", action="store_true", help="plot training iterations too, not only evaluations")
    p.add_argument("--x", default="env_steps", choices=list(X_AXES),
                   help="x axis: env_steps (default) or seconds_wall (wall-clock time of the run)")
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    try:
        summary = plot(a.runs, a.out, a.metric, not a.all_iterations, a.title, a.x)
    except (FileNotFoundError, KeyError) as e:
        print(f"rldt.plot: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    for name, (n, last) in summary.items():
        print(f"{name}: {n} run(s), last mean {a.metric} {last:.2f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
