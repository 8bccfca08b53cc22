"""bench/multimodality_locomotion.py: the mean-shift mode count on synthetic samples with a known
number of modes, and the script end to end on the shipped Hopper base policy (a tiny run)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import multimodality_locomotion as ml  # noqa: E402

BASE = REPO / "configs" / "gym" / "hopper" / "base-medium.pt"


def test_mode_count_on_known_mixtures():
    rng = np.random.default_rng(0)
    one = rng.normal(0.0, 0.03, (300, 3))
    assert ml.mean_shift_modes(one, 0.1, 0.05) == [1.0]
    two = np.concatenate([rng.normal(-0.5, 0.03, (225, 3)), rng.normal(0.5, 0.03, (75, 3))])
    shares = ml.mean_shift_modes(two, 0.1, 0.05)
    assert shares == pytest.approx([0.75, 0.25])
    # A mode below min_share is not counted.
    three = np.concatenate([two, rng.normal(0.0, 0.01, (6, 3))])
    assert len(ml.mean_shift_modes(three, 0.1, 0.05)) == 2
    assert len(ml.mean_shift_modes(three, 0.1, 0.0)) == 3
    with pytest.raises(ValueError, match="bandwidth"):
        ml.mean_shift_modes(one, 0.0, 0.05)


def test_script_on_the_base_policy(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "multimodality_locomotion.py"),
                          "--policy", f"base={BASE}", "--policy", f"again={BASE}", "--samples", "64",
                          "--state-steps", "20", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "modes.json").read_text())
    assert set(res["policies"]) == {"base", "again"}
    for r in res["policies"].values():
        assert r["modes"] >= 1 and sum(r["shares"]) <= 1.0 + 1e-9 and r["std"] > 0
    assert (tmp_path / "actions.png").stat().st_size > 1000


def test_bad_policy_argument_is_named():
    out = subprocess.run([sys.executable, str(REPO / "bench" / "multimodality_locomotion.py"),
                          "--policy", "nofile=/nonexistent.pt"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--policy nofile" in out.stderr
