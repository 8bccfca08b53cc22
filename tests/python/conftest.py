"""Test set-up: import rldt from the repository's python/ folder (where the build puts _core)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rldt  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def small_policy_config(**kw):
    base = dict(obs_dim=3, action_dim=2, horizon_steps=2, denoising_steps=4, mlp_dims=[16, 16, 16],
                time_dim=4, activation="relu")
    base.update(kw)
    return rldt.FlowPolicyConfig(**base)


def small_critic_config(**kw):
    base = dict(obs_dim=3, action_dim=2, act_steps=2, ensemble_size=2, hidden=[16, 16], activation="silu")
    base.update(kw)
    return rldt.CriticConfig(**base)


@pytest.fixture
def policy_config():
    return small_policy_config()


@pytest.fixture
def critic_config():
    return small_critic_config()


@pytest.fixture
def policy(policy_config):
    return rldt.FlowPolicy(policy_config, seed=7)


@pytest.fixture
def critic(critic_config):
    return rldt.CriticEnsemble(critic_config, seed=11)


def golden_path():
    """Where the rldt_golden executable is looked for: RLDT_GOLDEN, else build/tests/cpp/rldt_golden."""
    env = os.environ.get("RLDT_GOLDEN")
    return Path(env) if env else REPO / "build" / "tests" / "cpp" / "rldt_golden"


def golden_executable():
    """The rldt_golden executable, or None if it is absent."""
    path = golden_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None
