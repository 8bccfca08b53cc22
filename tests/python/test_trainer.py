"""rldt.Trainer through the bindings: config objects, iterations, metrics, bad input."""

import math

import numpy as np
import pytest

import rldt


def tiny_config(**kw):
    cfg = rldt.RldtTrainerConfig(
        env="Hopper-v5", n_envs=4, env_threads=2, n_steps=20, act_steps=2, val_freq=3, n_critic_warmup_itr=0,
        q_update_steps=4, q_repeat=2, policy_update_steps=2, buffer_num_episode=2,
        policy=dict(horizon_steps=3, denoising_steps=4, mlp_dims=[32, 32, 32]),
        critic=dict(hidden=[32, 32]),
        actor=dict(n_particles=4, lr=1e-3, lr_warmup_steps=0),
        exploration=dict(min_extrp_step=2),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_trainer_iterations_and_metrics():
    tr = rldt.Trainer(tiny_config())
    m0 = tr.train_iteration()
    assert m0["eval"] and m0["iteration"] == 0 and math.isnan(m0["critic_loss"])
    m1 = tr.train_iteration()
    assert not m1["eval"]
    for key in ("critic_loss", "actor_loss", "align", "grad_norm", "reward_per_step"):
        assert math.isfinite(m1[key]), key
    assert m1["env_steps"] > m0["env_steps"] > 0
    assert tr.iteration == 2 and tr.buffer_size == 4
    roll = tr.last_rollout()
    assert roll["obs"].shape == (4, 20, 11) and roll["chunks"].shape == (4, 20, 2, 3)
    assert roll["obs"].dtype == np.float32
    # The resolved config took its dims from the env.
    assert tr.config.policy.obs_dim == 11 and tr.config.critic.act_steps == 2
    # The policy is shared with the trainer: it acts on the env's observations.
    a = tr.flow_policy.act(roll["obs"][:, 0])
    assert a.shape == (4, 3, 3)


def test_grouped_rollout_is_the_same_on_one_or_two_threads():
    # rollout_groups: groups of envs sample and step on their own threads; the trajectory depends
    # on the group count only, and the config key reaches the trainer from Python.
    runs = []
    for threads in (1, 2):
        tr = rldt.Trainer(tiny_config(n_envs=5, rollout_groups=2, env_threads=threads))
        assert tr.config.rollout_groups == 2
        metrics = [tr.train_iteration() for _ in range(3)]
        runs.append((tr.last_rollout(), metrics))
    (r1, m1), (r2, m2) = runs
    for key in ("obs", "chunks", "rewards", "next_obs"):
        np.testing.assert_array_equal(r1[key], r2[key], err_msg=key)
    assert [m["env_steps"] for m in m1] == [m["env_steps"] for m in m2]
    assert m1[-1]["critic_loss"] == m2[-1]["critic_loss"]
    with pytest.raises(rldt.ArgumentError, match="rollout_groups"):
        rldt.Trainer(tiny_config(rollout_groups=5))  # > n_envs = 4


def test_packed_rollout_inference_is_the_same_for_any_group_count():
    # rollout_inference "packed": rollouts sample through InferencePolicy's packed weights, where a
    # state's action does not depend on its batch, so grouping changes nothing; close to "torch".
    # rollout_groups 0 (the default) then chooses one group per env thread.
    runs = []
    for groups in (1, 2, 0):
        tr = rldt.Trainer(tiny_config(n_envs=5, rollout_groups=groups, rollout_inference="packed", env_threads=2))
        assert tr.config.rollout_inference == "packed"
        assert tr.rollout_groups == (groups or 2)
        metrics = [tr.train_iteration() for _ in range(3)]
        runs.append((tr.last_rollout(), metrics))
    (r1, m1) = runs[0]
    for r2, m2 in runs[1:]:
        for key in ("obs", "chunks", "rewards", "next_obs"):
            np.testing.assert_array_equal(r1[key], r2[key], err_msg=key)
        assert m1[-1]["critic_loss"] == m2[-1]["critic_loss"]
    assert rldt.Trainer(tiny_config(n_envs=5)).rollout_groups == 1  # automatic with "torch": ungrouped
    torch_run = rldt.Trainer(tiny_config(n_envs=5))
    torch_run.train_iteration()  # evaluation iteration: x_0 = 0, the first chunk step from the same states
    packed = rldt.Trainer(tiny_config(n_envs=5, rollout_inference="packed"))
    packed.train_iteration()
    np.testing.assert_allclose(packed.last_rollout()["chunks"][:, 0], torch_run.last_rollout()["chunks"][:, 0],
                               atol=1e-4)
    with pytest.raises(rldt.ArgumentError, match="rollout_inference"):
        rldt.Trainer(tiny_config(rollout_inference="eigen"))


@pytest.mark.parametrize("td_lambda", [0.0, 0.5])
def test_trainer_critic_minibatches(td_lambda):
    # q_minibatch picks the same time steps in every trajectory; with lambda = 0 the bootstrap
    # values are computed on those steps only, with lambda > 0 over the whole segment.
    tr = rldt.Trainer(tiny_config(q_minibatch=16, td_lambda=td_lambda))
    tr.train_iteration()
    m = tr.train_iteration()
    assert math.isfinite(m["critic_loss"]) and math.isfinite(m["actor_loss"])


def test_trainer_fine_tunes_a_given_policy():
    cfg = tiny_config()
    pc = rldt.FlowPolicyConfig(obs_dim=11, action_dim=3, horizon_steps=3, denoising_steps=4, mlp_dims=[32, 32, 32])
    policy = rldt.FlowPolicy(pc, seed=3)
    before = policy.state_dict()
    tr = rldt.Trainer(cfg, policy=policy)
    for _ in range(2):
        tr.train_iteration()
    after = policy.state_dict()
    assert any(not np.array_equal(before[k], after[k]) for k in before)  # trained in place
    bad = rldt.FlowPolicy(rldt.FlowPolicyConfig(obs_dim=5, action_dim=3, horizon_steps=3, mlp_dims=[8, 8, 8]))
    with pytest.raises(ValueError, match="obs_dim"):
        rldt.Trainer(cfg, policy=bad)


def test_trainer_config_errors_name_the_field():
    with pytest.raises(TypeError, match="n_env"):
        rldt.RldtTrainerConfig(n_env=3)
    with pytest.raises(ValueError, match="noise_mode"):
        rldt.RldtTrainerConfig(exploration=dict(noise_mode="loud"))
    with pytest.raises(ValueError, match="act_steps"):
        rldt.Trainer(tiny_config(act_steps=5))
    with pytest.raises(Exception, match="Hopper-v5"):  # unknown task: the message lists the valid ones
        rldt.Trainer(tiny_config(env="Hoppr-v5"))
