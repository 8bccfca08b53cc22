"""The main job's demo learns (issue: mean reward rises from the pretrained level to ≥ 80% of the
optimum and stays there for three times as many iterations as it took to get there)."""

import importlib.util
import sys
import textwrap

import pytest

from conftest import REPO


def _demo():
    spec = importlib.util.spec_from_file_location("bandit_demo", REPO / "examples" / "bandit_demo.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bandit_demo"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_demo_reaches_and_holds_80_percent_of_the_optimum(capsys):
    demo = _demo()
    cfg = demo.load_config(str(REPO / "configs" / "bandit_demo.yaml"))
    result = demo.run(cfg, log=lambda *_: None)
    target = cfg["demo"]["target_fraction"]
    report = demo.table(result, target)
    with capsys.disabled():
        print("\n" + report)
    assert result.before.reward < 0.3, "the pretrained policy should be far from the optimum"
    assert result.reached_at is not None, report
    # Trained on to (1 + hold_factor)·R with hold_factor = 3 and never fell below the target.
    assert result.final.iteration >= 4 * result.reached_at, report
    held, lowest = result.held(target)
    assert held, f"fell to {lowest:.3f} after reaching the target\n{report}"
    # Multimodality is measured, not promised; with the published temperature both modes kept a
    # share of 0.38 or more in this run (seed 0). Guard against a full collapse onto one mode.
    assert min(result.final.share_left, result.final.share_right) > 0.1, report
    assert result.final.share_left + result.final.share_right > 0.9, report


def test_demo_config_errors_name_file_and_key(tmp_path):
    demo = _demo()
    base = (REPO / "configs" / "bandit_demo.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.replace("  sigma: 0.35", "  sigmaa: 0.35"))
    with pytest.raises(demo.ConfigError, match=r"bad\.yaml.*sigmaa"):
        demo.load_config(str(bad))
    bad.write_text(base.replace("  n_particles: 16", "  n_particles: 1"))
    with pytest.raises(demo.ConfigError, match=r"bad\.yaml.*n_particles"):
        demo.load_config(str(bad))
    bad.write_text(base.replace("  q_norm: svgd", "  q_norm: bogus"))
    with pytest.raises(demo.ConfigError, match=r"bad\.yaml.*q_norm"):
        demo.load_config(str(bad))
    with pytest.raises(demo.ConfigError, match="sigmaa"):
        demo.load_config(str(REPO / "configs" / "bandit_demo.yaml"), ["bandit.sigmaa=1"])
    cfg = demo.load_config(str(REPO / "configs" / "bandit_demo.yaml"), ["actor.svgd.q_norm=q_grad"])
    assert cfg["_actor"].svgd.q_norm == "q_grad"
    bad.write_text(textwrap.dedent(base) + "\nextra: 1\n")
    with pytest.raises(demo.ConfigError, match="extra"):
        demo.load_config(str(bad))
    # The config-struct sections take overrides of keys the file leaves out (the struct's default
    # otherwise); a key the struct does not have is refused by it, named.
    cfg = demo.load_config(str(REPO / "configs" / "bandit_demo.yaml"), ["sac.gamma=0.5", "critic.weight_decay=0.1"])
    assert cfg["_sac"].gamma == 0.5 and cfg["_critic"].weight_decay == pytest.approx(0.1)
    with pytest.raises(demo.ConfigError, match=r"bandit_demo\.yaml.*unknown keyword argument 'gama'"):
        demo.load_config(str(REPO / "configs" / "bandit_demo.yaml"), ["sac.gama=0.5"])
    bad.write_text(base.replace("  learning_starts: 512", "  learning_starts: -1"))
    with pytest.raises(demo.ConfigError, match=r"bad\.yaml.*sac\.learning_starts"):
        demo.load_config(str(bad))


def test_demo_cli_rejects_bad_config_with_exit_code_2(tmp_path):
    demo = _demo()
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\n")
    assert demo.main(["--config", str(bad), "--out", str(tmp_path)]) == 2
