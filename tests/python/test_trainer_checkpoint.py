"""Trainer.save / Trainer.load: a resumed run gives the same metrics, bit for bit, as an uninterrupted one."""

import math

import numpy as np
import pytest

import rldt

TIMINGS = ("seconds_rollout", "seconds_critic", "seconds_actor")


def config(**kw):
    cfg = rldt.RldtTrainerConfig(
        env="Hopper-v5", n_envs=4, env_threads=2, n_steps=20, act_steps=2, val_freq=3, n_critic_warmup_itr=1,
        q_update_steps=4, q_repeat=2, q_minibatch=30, policy_update_steps=2, buffer_num_episode=2,
        policy=dict(horizon_steps=3, denoising_steps=4, mlp_dims=[32, 32, 32]),
        critic=dict(hidden=[32, 32]),
        actor=dict(n_particles=4, lr=1e-3, lr_warmup_steps=3),
        exploration=dict(min_extrp_step=2),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def same(a, b):
    """Metric dicts equal bit for bit (NaN == NaN), timings aside."""
    assert a.keys() == b.keys()
    for k in a:
        if k in TIMINGS:
            continue
        x, y = a[k], b[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        else:
            assert x == y, (k, x, y)


def policy_config():
    return rldt.FlowPolicyConfig(obs_dim=11, action_dim=3, horizon_steps=3, denoising_steps=4, mlp_dims=[32, 32, 32])


@pytest.mark.parametrize("fine_tune", [False, True])
def test_resumed_run_matches_uninterrupted(tmp_path, fine_tune):
    def trainer(seed_of_policy=3, **kw):
        if not fine_tune:
            return rldt.Trainer(config(**kw))
        return rldt.Trainer(config(**kw), policy=rldt.FlowPolicy(policy_config(), seed=seed_of_policy))

    straight = trainer()
    expected = [straight.train_iteration() for _ in range(5)]

    first = trainer()
    for _ in range(2):
        first.train_iteration()
    path = tmp_path / "checkpoint.pt"
    first.save(str(path))
    del first

    # Other policy weights and another thread count: the checkpoint restores everything.
    resumed = trainer(seed_of_policy=11, env_threads=1)
    resumed.load(str(path))
    assert resumed.iteration == 2 and resumed.env_steps == expected[1]["env_steps"]
    for m in expected[2:]:
        same(resumed.train_iteration(), m)
    for a, b in zip(straight.flow_policy.state_dict().values(), resumed.flow_policy.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_load_errors_name_the_file(tmp_path):
    tr = rldt.Trainer(config())
    tr.train_iteration()
    good = tmp_path / "checkpoint.pt"
    tr.save(str(good))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match="cut.pt.*truncated"):
        rldt.Trainer(config()).load(str(cut))
    with pytest.raises(RuntimeError, match="another config.*n_envs"):
        rldt.Trainer(config(n_envs=5)).load(str(good))
