"""rldt.plot on synthetic run folders (the metrics.csv / run.json layout the `rldt` command writes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rldt import plot

HEADER = ("iteration,eval,env_steps,episode_return,episode_length,episodes,reward_per_step,critic_loss,"
          "actor_loss,align,cons,ref,grad_norm,particle_distance,reward_scale,seconds_rollout,seconds_critic,"
          "seconds_actor,seconds_iteration,seconds_wall")


def make_run(root: Path, name: str, config_name: str, returns, steps_per_itr=100, val_freq=2):
    """A run folder whose evaluation iterations (itr % val_freq == 0) have the given returns."""
    d = root / name
    d.mkdir(parents=True)
    rows, k = [HEADER], 0
    for itr in range(val_freq * (len(returns) - 1) + 1):
        ev = itr % val_freq == 0
        ret = returns[k] if ev else 1.0  # training rows must not show up in the eval plot
        k += ev
        loss = "" if ev else "0.5"  # empty cells = not computed (NaN)
        rows.append(f"{itr},{int(ev)},{(itr + 1) * steps_per_itr},{ret},10,3,0.1,{loss},{loss},,,,,,1,0.1,0,0,0.1,1")
    (d / "metrics.csv").write_text("\n".join(rows) + "\n")
    (d / "run.json").write_text(json.dumps({"config_name": config_name, "command": "scratch"}))
    return d


def test_reads_eval_rows_only(tmp_path):
    d = make_run(tmp_path, "a-seed0", "ip-scratch", [5.0, 20.0, 80.0])
    run = plot.read_run(d)
    assert run.name == "ip-scratch"
    assert run.values == [5.0, 20.0, 80.0]
    assert run.env_steps == [100.0, 300.0, 500.0]
    assert len(plot.read_run(d, eval_only=False).values) == 5


def test_groups_by_config_name_with_mean_and_spread(tmp_path):
    a = make_run(tmp_path, "a-seed0", "ip-scratch", [0.0, 10.0, 30.0])
    b = make_run(tmp_path, "a-seed1", "ip-scratch", [2.0, 20.0])  # shorter: only common points
    c = make_run(tmp_path, "other", "ip-other", [1.0, 1.0, 1.0])
    groups = plot.group_runs([plot.read_run(p) for p in (a, b, c)])
    assert list(groups) == ["ip-scratch", "ip-other"]
    x, mean, lo, hi = plot.group_curve(groups["ip-scratch"])
    assert x == [100.0, 300.0]
    assert mean == [1.0, 15.0]
    assert lo == [0.0, 10.0] and hi == [2.0, 20.0]


def test_name_falls_back_to_folder_without_seed(tmp_path):
    d = make_run(tmp_path, "hopper-finetune-cpu-seed3", "x", [1.0])
    (d / "run.json").unlink()
    assert plot.config_name(d) == "hopper-finetune-cpu"


def test_command_line_writes_a_png(tmp_path):
    a = make_run(tmp_path, "r-seed0", "ip-scratch", [5.0, 20.0, 80.0])
    b = make_run(tmp_path, "r-seed1", "ip-scratch", [6.0, 30.0, 90.0])
    out = tmp_path / "plots" / "returns.png"
    repo_python = Path(__file__).resolve().parents[2] / "python"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_python), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "rldt.plot", str(a), str(b), "--out", str(out)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "ip-scratch: 2 run(s), last mean episode_return 85.00" in res.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_metrics_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert plot.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 2
    with pytest.raises(FileNotFoundError):
        plot.read_run(tmp_path / "empty")


def test_wall_clock_axis_and_bad_axis(tmp_path):
    d = make_run(tmp_path, "w-seed0", "ip-scratch", [5.0, 20.0])
    run = plot.read_run(d, x="seconds_wall")
    assert run.env_steps == [1.0, 1.0]  # the synthetic rows all say 1 s
    out = tmp_path / "wall.png"
    assert plot.main([str(d), "--out", str(out), "--x", "seconds_wall"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KeyError, match="x axis"):
        plot.plot([d], tmp_path / "bad.png", x="iteration_count")


def test_runs_as_a_plain_script_without_the_extension(tmp_path):
    # `rldt plot` runs plot.py as a script with any python3 that has matplotlib: it must not need
    # the compiled rldt._core.
    d = make_run(tmp_path, "s-seed0", "ip-scratch", [5.0, 20.0])
    script = Path(__file__).resolve().parents[2] / "python" / "rldt" / "plot.py"
    out = tmp_path / "s.png"
    res = subprocess.run([sys.executable, "-I", str(script), str(d), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.exists()


def test_label_groups_runs_of_one_config_by_method(tmp_path):
    # bench/grid.py passes METHOD=RUN_DIR: methods that share a config file get their own curves,
    # and an eval_return column (whole-episode evaluation) is preferred where it has a value.
    a = make_run(tmp_path, "rldt-seed0", "hopper-finetune-cpu", [1.0, 2.0])
    b = make_run(tmp_path, "delta-seed0", "hopper-finetune-cpu", [3.0, 4.0])
    assert plot.split_label(f"rldt={a}") == ("rldt", a)
    assert plot.split_label(str(a)) == ("", a)
    lines = (b / "metrics.csv").read_text().splitlines()
    lines[0] += ",eval_return"
    lines[1] += ",30.5"  # iteration 0: evaluation with a whole-episode return
    lines[2:] = [line + "," for line in lines[2:]]
    (b / "metrics.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.png"
    summary = plot.plot([f"rldt={a}", f"delta={b}"], out)
    assert set(summary) == {"rldt", "delta"} and out.exists()
    assert plot.read_run(b).values == [30.5, 4.0]
