"""bench/multimodality.py: the --quick version (a few iterations, one seed, two sweep points) writes
its tables, plots and one JSON per run with shares in [0, 1]; --skip-existing reuses finished runs;
bad arguments are refused by argparse."""

import json
import math
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import multimodality as mm  # noqa: E402

PNGS = ("multimodality_samples.png", "multimodality_shares.png", "multimodality_sweep.png")


def _check_shares(left, right):
    assert 0.0 <= left <= 1.0 and 0.0 <= right <= 1.0
    assert left + right <= 1.0 + 1e-9  # the 2σ discs around the two modes do not overlap


def test_quick_run_writes_tables_plots_and_resumes(tmp_path, capsys):
    out = tmp_path / "mm"
    assert mm.main(["--quick", "--out", str(out)]) == 0
    first = capsys.readouterr().out

    for name in PNGS:
        png = out / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    table = (out / "results.md").read_text()
    assert "| rldt | 1 |" in table and "| delta | 1 |" in table and "| sac | 1 |" in table
    assert "| 0.001, 16 | 1 |" in table and "| 0.1, 16 | 1 |" in table

    summary = json.loads((out / "results.json").read_text())
    assert set(summary["methods"]) == {"rldt", "delta", "sac"}
    assert len(summary["sweep"]) == 2
    for s in [*summary["methods"].values(), *summary["sweep"]]:
        assert s["n"] == 1
        _check_shares(s["share_left"][0], s["share_right"][0])
        assert s["smaller_share"][0] == pytest.approx(min(s["share_left"][0], s["share_right"][0]))
        assert 0.0 <= s["smaller_share_s0"][0] <= 0.5
        assert 0.0 <= s["reward"][0] <= 1.0
        assert math.isnan(s["reward"][1])  # no interval from one seed

    runs = sorted((out / "runs").glob("*.json"))
    # The published setting is shared by the methods table and the sweep: four runs, not five.
    assert [p.name for p in runs] == ["delta_P16_seed0.json", "normal_T0.001_P16_seed0.json",
                                      "normal_T0.1_P16_seed0.json", "sac_seed0.json"]
    for p in runs:
        rec = json.loads(p.read_text())
        assert rec["final"]["iteration"] == 6
        for e in [rec["before"], *rec["history"]]:
            _check_shares(e["share_left"], e["share_right"])
        assert len(rec["samples_before"]) == len(rec["samples_after"]) > 0
        _check_shares(*rec["s0_shares"])
    assert json.loads(runs[0].read_text())["overrides"][-4:] == [
        "actor.svgd.field=delta", "actor.svgd.svgd_temp=0.001", "actor.n_particles=16", "seed=0"]

    # A second run with --skip-existing reuses every run and rebuilds the same table.
    assert mm.main(["--quick", "--out", str(out), "--skip-existing"]) == 0
    second = capsys.readouterr().out
    assert first.count("pretrained: mean reward") == 3  # run()'s first log line: three runs trained
    assert first.count("untrained: mean reward") == 1  # run_sac's first log line
    assert second.count("skipped (finished earlier)") == 4 and "trained: mean reward" not in second
    assert (out / "results.md").read_text() == table


def test_mean_ci_is_student_t():
    m, h = mm.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(mm.mean_ci([0.5])[1])
    assert math.isnan(mm.mean_ci([])[0])


@pytest.mark.parametrize("args, message", [
    (["--temps", "0.1,abc"], "comma-separated numbers"),
    (["--temps", "-1"], "non-negative"),
    (["--particles", "1,8"], "at least 2"),
    (["--seeds", "0"], "positive integer"),
    (["--iterations", "2"], "below demo.eval_every"),
])
def test_bad_arguments_are_refused(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        mm.main(["--out", str(tmp_path), *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
