"""bench/exploration_radius.py (the min_extrp noise diagnostic in docs/benchmarks.md) runs on the
shipped Hopper base policy. Clamping ŷ to the box that holds a is a projection onto a convex set
that contains a, so the clamped radius can never exceed the raw one: checked on the printed row."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "exploration_radius.py"
BASE = REPO / "configs" / "gym" / "hopper" / "base-medium.pt"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_radius_table_on_the_base_policy():
    out = run(str(BASE), "--envs", "2", "--steps", "3", "--clip", "0.5")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "base-medium" in line]
    assert len(rows) == 1, out.stdout
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    clip, r_raw, r_clamped, beyond = float(cells[1]), float(cells[2]), float(cells[3]), float(cells[4].rstrip("%"))
    assert clip == 0.5
    assert 0.0 < r_clamped <= r_raw
    assert 0.0 < beyond <= 100.0  # at ±0.5 some entries of x_K lie outside


def test_bad_min_step_is_refused_naming_the_flag():
    out = run(str(BASE), "--envs", "1", "--steps", "1", "--min-step", "8")
    assert out.returncode != 0
    assert "--min-step" in out.stderr
