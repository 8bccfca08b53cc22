"""examples/notebooks/quickstart.ipynb runs headless (Debian's nbclient + ipykernel) and prints
what it promises: a rising return on InvertedPendulum and an ask/tell loop that learns."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    # The kernel runs this interpreter (the venv) and finds rldt in python/ and the configs from
    # the repository root; it runs in a scratch folder so its output files stay out of the tree.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            assert o.get("output_type") != "error", o
    text = "".join(out)
    (tmp_path / "quickstart.out.txt").write_text(text)
    returns = [float(x) for x in re.findall(r"deterministic return ([-\d.]+)", text)]
    assert len(returns) >= 3, text
    assert max(returns[-2:]) > returns[0], text  # the pendulum return rises
    rewards = [float(x) for x in re.findall(r"deterministic reward per step ([-\d.]+)", text)]
    assert len(rewards) >= 3 and rewards[-1] > rewards[0], text
    assert "chunk shape: (1, 1)" in text, text
    assert (tmp_path / "quickstart_policy.pt").exists()
