"""bench/grid.py: a tiny method x task x seed grid runs through the rldt command, writes its table
and plots, skips finished cells on a second run; bad grid files are named; the 95% interval."""

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import grid as gridmod  # noqa: E402

RLDT = REPO / "build" / "rldt"

TINY = """
name: tiny
out: {out}
tasks: [invertedpendulum]
seeds: [0, 1]
env_step_budget: 100
wall_budget_s: 1000
overrides: [n_train_itr=2, n_envs=4, n_steps=10, q_update_steps=8, q_repeat=2, policy_update_steps=2,
            "policy.mlp_dims=[16,16,16]", val_freq=1]
methods:
  rldt: {{command: scratch, config: "configs/gym/{{task}}/scratch-cpu.yaml"}}
  rldt-delta: {{command: scratch, config: "configs/gym/{{task}}/scratch-cpu.yaml", overrides: [actor.svgd.field=delta]}}
  sac: {{command: sac, config: "configs/gym/{{task}}/sac.yaml",
        overrides: [sac.steps_per_iteration=40, sac.learning_starts=50, "sac.hidden=[16,16]", sac.batch_size=16,
                    sac.eval_episodes=2]}}
"""


def test_mean_ci_matches_student_t():
    m, ci = gridmod.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and ci == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert math.isnan(gridmod.mean_ci([5.0])[1])
    assert math.isnan(gridmod.mean_ci([])[0])


@pytest.mark.skipif(not RLDT.exists(), reason="build/rldt not built")
def test_tiny_grid_runs_reports_and_resumes(tmp_path, capsys):
    g = tmp_path / "tiny.yaml"
    g.write_text(TINY.format(out=tmp_path / "out"))
    assert gridmod.main([str(g)]) == 0
    out = capsys.readouterr().out
    assert out.count("] ran in") == 6
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| invertedpendulum | rldt | 2 |" in table and "| invertedpendulum | rldt-delta | 2 |" in table
    # SAC cells (rldt sac) report their whole-episode evaluations (eval_return) like the others.
    sac_row = next(line for line in table.splitlines() if line.startswith("| invertedpendulum | sac | 2 |"))
    assert " - |" not in sac_row.split("| 2 |")[1].split("|")[1], sac_row  # a base (first evaluation) return
    assert "return at 100 env steps" in table
    assert (tmp_path / "out" / "results.csv").read_text().count("\n") == 7
    assert (tmp_path / "out" / "invertedpendulum_env_steps.png").exists()
    assert (tmp_path / "out" / "invertedpendulum_seconds_wall.png").exists()
    # The delta ablation really ran with its override.
    cfg = (tmp_path / "out" / "rldt-delta" / "invertedpendulum" / "seed1" / "config.yaml").read_text()
    assert "field: delta" in cfg and "seed: 1" in cfg
    # A second run skips the finished cells and rebuilds the same table.
    assert gridmod.main([str(g)]) == 0
    assert capsys.readouterr().out.count("skipped (completed)") == 6
    assert (tmp_path / "out" / "results.md").read_text() == table


def test_bad_grid_files_are_named(tmp_path, capsys):
    g = tmp_path / "bad.yaml"
    g.write_text("seeds: [0]\nmethods:\n  rldt: {command: scratch}\n")
    assert gridmod.main([str(g), "--dry-run"]) == 2
    assert "methods.rldt' needs 'command' and 'config'" in capsys.readouterr().err
    g.write_text("seeds: [0]\nmethod: {}\n")
    assert gridmod.main([str(g), "--dry-run"]) == 2
    assert "unknown key 'method'" in capsys.readouterr().err
    g.write_text(TINY.format(out=tmp_path / "o"))
    assert gridmod.main([str(g), "--dry-run", "--only", "no-such-method"]) == 2
    assert "no such method" in capsys.readouterr().err


def test_shipped_grids_resolve_to_valid_configs():
    # Every method of every grid in configs/bench names an existing config, and its overrides are
    # valid keys and values (checked by rldt.load_config).
    import rldt

    grids = sorted((REPO / "configs" / "bench").glob("*.yaml"))
    assert grids
    for path in grids:
        g = gridmod.load_grid(path)
        for task in g.tasks:
            for m in g.methods:
                cfg = REPO / m.config.replace("{task}", task)
                assert cfg.is_file(), f"{path}: {m.name}: {cfg}"
                if m.command in ("scratch", "finetune", "eval"):
                    rldt.load_config(cfg, g.overrides + m.overrides + ["seed=0"])
