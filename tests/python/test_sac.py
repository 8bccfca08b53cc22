"""The SAC baseline's bindings: configs, the tanh-Gaussian density against torch.distributions,
SacTrainer (metrics, determinism, evaluation, env-unit actions) and SacPolicy save/load."""

import math

import numpy as np
import pytest
import torch

import rldt


def tiny_config(**kw):
    base = dict(
        env="InvertedPendulum-v5", n_envs=2, env_threads=1, seed=3, steps_per_iteration=60, val_freq=2,
        eval_episodes=2, sac=dict(hidden=[32, 32], batch_size=32, learning_starts=40, buffer_size=500),
    )
    base.update(kw)
    return rldt.SacTrainerConfig(**base)


def test_config_keywords_defaults_and_errors():
    c = rldt.SacConfig()
    # Published SAC defaults.
    assert c.hidden == [256, 256]
    assert c.actor_lr == c.critic_lr == c.alpha_lr == pytest.approx(3e-4)
    assert (c.gamma, c.tau, c.batch_size) == (pytest.approx(0.99), pytest.approx(0.005), 256)
    assert c.autotune_alpha and c.target_entropy_per_dim == -1.0
    assert (c.learning_starts, c.buffer_size, c.utd) == (5000, 1_000_000, 1.0)
    t = tiny_config()
    assert isinstance(t.sac, rldt.SacConfig) and t.sac.hidden == [32, 32]
    assert rldt.SacTrainerConfig(**t.to_dict()).to_dict() == t.to_dict()
    assert "SacTrainerConfig(env='InvertedPendulum-v5'" in repr(t)
    with pytest.raises(TypeError, match="unknown keyword argument 'taus'.*valid keys"):
        rldt.SacConfig(taus=0.1)
    with pytest.raises(ValueError, match="sac.tau"):
        rldt.SacConfig(tau=0.0)
    with pytest.raises(ValueError, match="sac.utd"):
        rldt.SacTrainerConfig(sac=dict(utd=-1.0))
    with pytest.raises(TypeError, match="SacConfig.hidden"):
        rldt.SacConfig(hidden="256")
    with pytest.raises(ValueError, match="steps_per_iteration"):
        rldt.SacTrainerConfig(steps_per_iteration=0)


def test_log_prob_matches_torch_distributions(rng):
    B, d = 64, 3
    mean = rng.normal(size=(B, d)).astype(np.float32)
    log_std = rng.uniform(-2.0, 1.0, size=(B, d)).astype(np.float32)
    u = (mean + np.exp(log_std) * rng.normal(size=(B, d))).astype(np.float32)
    u = np.clip(u, -4.0, 4.0)  # torch's TanhTransform inverts tanh(u): keep |a| < 1 in float32
    ours = rldt.tanh_gaussian_log_prob(u, mean, log_std)
    assert ours.shape == (B,) and ours.dtype == np.float32
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(torch.from_numpy(mean).double(), torch.from_numpy(log_std).double().exp()),
        [torch.distributions.transforms.TanhTransform()],
    )
    ref = dist.log_prob(torch.tanh(torch.from_numpy(u).double())).sum(-1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="log_std"):
        rldt.tanh_gaussian_log_prob(u, mean, log_std[:, :2])


def test_trainer_iterations_metrics_and_determinism():
    def run():
        tr = rldt.SacTrainer(tiny_config())
        return tr, [tr.train_iteration() for _ in range(2)]

    tr, ms = run()
    _, ms2 = run()
    assert tr.obs_dim == 4 and tr.action_dim == 1 and tr.n_envs == 2
    assert tr.config.sac.obs_dim == 4
    assert [m["env_steps"] for m in ms] == [120, 240]
    assert tr.buffer_size == 240
    # Random actions for 20 vec steps (40 env steps), then 2 updates per vec step.
    assert [m["updates"] for m in ms] == [41 * 2, 101 * 2]
    assert not ms[0]["eval"] and ms[1]["eval"]
    assert math.isnan(ms[0]["eval_return"]) and ms[1]["eval_return"] > 0
    assert ms[1]["alpha"] > 0 and math.isfinite(ms[1]["critic_loss"]) and math.isfinite(ms[1]["entropy"])
    for a, b in zip(ms, ms2):
        for k in a:
            if k.startswith("seconds_"):
                continue
            x, y = a[k], b[k]
            assert (math.isnan(x) and math.isnan(y)) if isinstance(x, float) and math.isnan(x) else x == y, k
    ev = tr.evaluate(3)
    assert ev["returns"].shape == (3,) and ev["mean_return"] == pytest.approx(ev["returns"].mean(), rel=1e-6)
    assert tr.evaluate(3)["mean_return"] == ev["mean_return"]  # same start states, deterministic


def test_policy_actions_and_save_load(tmp_path, rng):
    tr = rldt.SacTrainer(tiny_config())
    tr.train_iteration()
    obs = rng.normal(size=(5, 4)).astype(np.float32)
    a = tr.policy_action(obs)
    assert a.shape == (5, 1) and a.dtype == np.float32
    assert np.all(np.abs(a) <= 3.0)  # InvertedPendulum's control range
    np.testing.assert_array_equal(a, tr.policy_action(obs.astype(np.float64)))
    s1 = tr.policy_action(obs, deterministic=False, seed=1)
    np.testing.assert_array_equal(s1, tr.policy_action(obs, deterministic=False, seed=1))
    assert not np.array_equal(s1, a)
    path = str(tmp_path / "sac.pt")
    tr.save_policy(path)
    p = rldt.SacPolicy.load(path)
    assert (p.obs_dim, p.action_dim, p.env_name) == (4, 1, "InvertedPendulum-v5")
    assert p.action_low == [-3.0] and p.action_high == [3.0]
    np.testing.assert_array_equal(p.act(obs), a)
    with pytest.raises(ValueError, match="obs"):
        tr.policy_action(np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError):
        rldt.SacPolicy.load(str(tmp_path / "missing.pt"))


def test_train_runs_config_iterations_with_callback():
    tr = rldt.SacTrainer(tiny_config(n_iterations=3, val_freq=0))
    seen = []
    out = tr.train(lambda m: seen.append(m["iteration"]) or len(seen) < 2)
    assert [m["iteration"] for m in out] == [0, 1] and seen == [0, 1]
    assert tr.iteration == 2
    assert len(tr.train()) == 1 and tr.iteration == 3


# rldt.Sac: the learner alone, on batches the caller makes.

def _learner(seed=0, **kw):
    cfg = dict(obs_dim=1, action_dim=2, hidden=[64, 64], batch_size=128)
    cfg.update(kw)
    return rldt.Sac(rldt.SacConfig(**cfg), seed=seed, action_low=[-2.0, -2.0], action_high=[2.0, 2.0])


def _bandit_batch(rng, n=128, center=(0.5, -0.3)):
    s = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    r = -((a - np.asarray(center, np.float32)) ** 2).sum(1)
    return s, a, r.astype(np.float32)


def test_learner_solves_a_one_step_bandit():
    # One-step episodes (terminated = 1): the critic's target is the reward itself, and with a small
    # fixed alpha the best tanh-Gaussian puts its mean at the reward's peak c = (0.5, -0.3).
    sac = _learner(autotune_alpha=False, init_alpha=1e-3, actor_lr=1e-3, critic_lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(600):
        s, a, r = _bandit_batch(rng)
        st = sac.update(s, a, r, s, np.ones(len(s), np.float32))
    assert sac.updates == 600 and st["actor_updated"] and sac.alpha == pytest.approx(1e-3)
    s, a, r = _bandit_batch(rng, n=512)
    q = sac.q(s, a)
    assert q.shape == (2, 512)
    assert np.abs(q - r).mean() < 0.1 * np.abs(r - r.mean()).mean()  # both critics fit r
    act = sac.act(np.zeros((4, 1), np.float32))
    assert act.shape == (4, 2)
    np.testing.assert_allclose(act, np.tile([[0.5, -0.3]], (4, 1)), atol=0.1)
    np.testing.assert_allclose(sac.env_action(np.zeros((4, 1), np.float32)), 2.0 * act, rtol=1e-5)
    samples = sac.act(np.zeros((256, 1), np.float32), deterministic=False)
    assert samples.min() >= -1.0 and samples.max() <= 1.0 and samples.std(0).min() > 0


def test_learner_is_deterministic_and_its_policy_saves(tmp_path):
    runs = []
    for _ in range(2):
        sac, rng = _learner(seed=5), np.random.default_rng(1)
        stats = []
        for _ in range(20):
            s, a, r = _bandit_batch(rng)
            stats.append(sac.update(s, a, r, s, np.zeros(len(s), np.float32)))
        runs.append((stats, sac.act(np.zeros((8, 1), np.float32), deterministic=False)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    path = tmp_path / "sac_policy.pt"
    sac.save_policy(str(path))
    loaded = rldt.SacPolicy.load(str(path))
    obs = np.linspace(-1, 1, 6, dtype=np.float32)[:, None]
    np.testing.assert_allclose(loaded.act(obs), sac.env_action(obs), rtol=1e-6)
    assert loaded.action_low == [-2.0, -2.0]


def test_learner_rejects_bad_batches_naming_the_argument():
    sac, rng = _learner(), np.random.default_rng(2)
    s, a, r = _bandit_batch(rng, n=8)
    ones = np.ones(8, np.float32)
    with pytest.raises(rldt.ArgumentError, match="'actions' must hold policy-space actions in \\[-1, 1\\]"):
        sac.update(s, 1.5 * a + 0.6, r, s, ones)
    with pytest.raises(rldt.ArgumentError, match="'terminated' must hold only 0/1"):
        sac.update(s, a, r, s, np.full(8, 0.5, np.float32))
    with pytest.raises(rldt.ArgumentError, match="rewards"):
        sac.update(s, a, r[:7], s, ones)
    with pytest.raises(rldt.ArgumentError, match="next_obs"):
        sac.update(s, a, r, np.zeros((8, 3), np.float32), ones)
    with pytest.raises(rldt.ArgumentError, match="'obs' holds no rows"):
        sac.update(s[:0], a[:0], r[:0], s[:0], ones[:0])
    with pytest.raises(rldt.ArgumentError, match="'action_low' and 'action_high' must be given together"):
        rldt.Sac(rldt.SacConfig(obs_dim=1, action_dim=2), action_low=[-1.0, -1.0])
    with pytest.raises(ValueError, match="SAC action bounds: 1 entries given; the action has d = 2"):
        rldt.Sac(rldt.SacConfig(obs_dim=1, action_dim=2), action_low=[-1.0], action_high=[1.0])
    assert sac.updates == 0  # nothing above reached the learner
