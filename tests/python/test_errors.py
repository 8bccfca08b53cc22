"""(c) Bad input raises a Python exception whose message names the argument (or option)."""

import numpy as np
import pytest

import rldt
from conftest import small_critic_config, small_policy_config


def f32(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def with_nan(a, index=1):
    a = a.copy()
    a.flat[index] = np.nan
    return a


def test_argument_error_is_a_value_error():
    assert issubclass(rldt.ArgumentError, ValueError)


# ---------------------------------------------------------------------------
# Arrays: dtype, shape, non-finite values
# ---------------------------------------------------------------------------

Q, P, G = f32(2, 4, 3), f32(2, 4, 3, seed=1), f32(2, 4, 3, seed=2)


@pytest.mark.parametrize("name,index", [("queries", 0), ("particles", 1), ("grads", 2)])
@pytest.mark.parametrize(
    "bad,pattern",
    [
        (lambda a: a.astype(np.int64), "dtype int64"),
        (lambda a: a.astype(np.int32), "dtype int32"),
        (lambda a: a > 0, "dtype bool"),
        (lambda a: a.astype(np.float16), "dtype float16"),
        (lambda a: a.astype(np.complex64), "dtype complex64"),
        (lambda a: a.astype(object), "dtype object"),
        (lambda a: a[:, :, :2], "has shape"),
        (lambda a: a[0], "has shape"),
        (lambda a: with_nan(a), "non-finite"),
        (lambda a: np.where(a > 0, np.inf, a), "non-finite"),
        (lambda a: a.astype(np.float64) * 1e300, "non-finite"),  # overflows float32
        (lambda a: None, "is None"),
        (lambda a: "abc", "dtype"),
    ],
    ids=["int64", "int32", "bool", "float16", "complex64", "object", "last-dim", "rank", "nan", "inf",
         "float64-overflow", "none", "str"],
)
def test_svgd_bad_arrays(name, index, bad, pattern):
    args = [Q, P, G]
    args[index] = bad(args[index])
    with pytest.raises(ValueError, match=pattern) as err:
        rldt.svgd_direction(*args)
    if name == "queries" and np.shape(args[0]) == (2, 4, 2):
        # queries fix B and A, so the mismatch is reported at the first array that disagrees.
        assert "'particles' has shape (2, 4, 3); expected (B, P2, A) = (2, *, 2)" in str(err.value)
    else:
        assert f"'{name}'" in str(err.value)


def test_float64_is_accepted(policy):
    obs = np.random.default_rng(0).normal(size=(3, 3))
    assert policy.act(obs, deterministic=True).dtype == np.float32
    assert policy.act(obs.tolist(), deterministic=True).shape == (3, 2, 2)  # lists go through np.asarray


def test_int_lists_are_rejected(policy):
    with pytest.raises(ValueError, match="'obs' has dtype int64"):
        policy.act([[0, 1, 2]])


def test_ragged_input():
    with pytest.raises(ValueError, match="'queries'"):
        rldt.svgd_direction([[1.0], [1.0, 2.0]], P, G)


def test_shape_messages_show_expected_dims(policy):
    with pytest.raises(ValueError) as err:
        policy.act(f32(4, 5))
    msg = str(err.value)
    assert "'obs'" in msg and "(4, 5)" in msg and "(B, O) = (*, 3)" in msg


def test_svgd_hybrid_needs_last_step():
    cfg = rldt.SvgdConfig(field="hybrid")
    with pytest.raises(ValueError, match="last_step"):
        rldt.svgd_direction(Q, P, G, cfg)
    with pytest.raises(ValueError, match="'last_step' has shape"):
        rldt.svgd_direction(Q, P, G, cfg, last_step=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="'last_step' must hold only 0/1"):
        rldt.svgd_direction(Q, P, G, cfg, last_step=np.full((2, 4), 2))
    with pytest.raises(ValueError, match="'last_step' has dtype"):
        rldt.svgd_direction(Q, P, G, cfg, last_step=np.full((2, 4), "x"))


def test_svgd_delta_needs_equal_counts():
    with pytest.raises(ValueError, match="delta"):
        rldt.svgd_direction(f32(2, 3, 3), P, G, rldt.SvgdConfig(field="delta"))


@pytest.mark.parametrize("name", ["rewards", "next_values", "terminated", "truncated"])
def test_td_bad_arrays(name):
    args = dict(rewards=f32(2, 5), next_values=f32(2, 5), terminated=np.zeros((2, 5)), truncated=np.zeros((2, 5)))
    # rewards fix (N, T): a wrong rank is its own error; the others must match rewards.
    args[name] = np.zeros(5 if name == "rewards" else (2, 4), np.float32)
    with pytest.raises(ValueError, match=f"'{name}' has shape"):
        rldt.td_lambda_targets(**args)
    if name in ("rewards", "next_values"):
        args[name] = with_nan(f32(2, 5))
        with pytest.raises(ValueError, match=f"'{name}' contains a non-finite"):
            rldt.nstep_targets(n=2, **args)
        args[name] = np.zeros((2, 5), np.int64)
        with pytest.raises(ValueError, match=f"'{name}' has dtype int64"):
            rldt.td_lambda_targets(**args)
    else:
        args[name] = np.full((2, 5), 0.5)
        with pytest.raises(ValueError, match=f"'{name}' must hold only 0/1"):
            rldt.td_lambda_targets(**args)
        args[name] = with_nan(np.zeros((2, 5)))
        with pytest.raises(ValueError, match=f"'{name}' must hold only 0/1"):
            rldt.td_lambda_targets(**args)


def test_td_bad_scalars():
    args = (f32(2, 5), f32(2, 5), np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="gamma"):
        rldt.td_lambda_targets(*args, gamma=1.5)
    with pytest.raises(ValueError, match="gamma"):
        rldt.td_lambda_targets(*args, gamma=float("nan"))
    with pytest.raises(ValueError, match="td_lambda"):
        rldt.td_lambda_targets(*args, td_lambda=-0.1)
    with pytest.raises(ValueError, match="n-step"):
        rldt.nstep_targets(*args, n=0)


def test_policy_bad_inputs(policy):
    with pytest.raises(ValueError, match="'x_k' has shape"):
        policy.expected_target(f32(4, 3, 2), np.zeros(4, np.int64), f32(4, 3))
    with pytest.raises(ValueError, match="'k' has dtype float"):
        policy.expected_target(f32(4, 2, 2), np.zeros(4), f32(4, 3))
    with pytest.raises(ValueError, match="'k' must hold steps in"):
        policy.expected_target(f32(4, 2, 2), np.full(4, 4), f32(4, 3))
    with pytest.raises(ValueError, match="'k' has shape"):
        policy.expected_target(f32(4, 2, 2), np.zeros(3, np.int64), f32(4, 3))
    with pytest.raises(ValueError, match="'obs' has shape"):
        policy.expected_target(f32(4, 2, 2), np.zeros(4, np.int64), f32(3, 3))
    with pytest.raises(ValueError, match="'actions' contains a non-finite"):
        policy.bc_update(f32(4, 3), with_nan(f32(4, 2, 2)))
    with pytest.raises(ValueError, match="'actions' has dtype int"):
        policy.bc_loss(f32(4, 3), np.zeros((4, 2, 2), int))
    with pytest.raises(ValueError, match="option 'net'"):
        policy.forward(f32(4, 2, 2), np.zeros(4, np.float32), f32(4, 3), net="critic")
    with pytest.raises(ValueError, match="'t' has shape"):
        policy.forward(f32(4, 2, 2), np.zeros(3, np.float32), f32(4, 3))


def test_critic_bad_inputs(critic):
    with pytest.raises(ValueError, match="'chunk' has 1 chunk steps"):
        critic.q(f32(4, 3), f32(4, 1, 2))
    with pytest.raises(ValueError, match="'chunk' has shape"):
        critic.q(f32(4, 3), f32(4, 2, 3))
    with pytest.raises(ValueError, match="'obs' has shape"):
        critic.q_min(f32(5, 3), f32(4, 2, 2))
    with pytest.raises(ValueError, match="'member'"):
        critic.action_grad(f32(4, 3), f32(4, 2, 2), member=2)
    with pytest.raises(ValueError, match="'member'"):
        critic.action_grad(f32(4, 3), f32(4, 2, 2), member=-2)
    with pytest.raises(ValueError, match="'actions' has shape"):
        critic.bootstrap_value(f32(4, 3), f32(4, 2, 2))
    with pytest.raises(ValueError, match="ensemble_size"):
        critic.update(f32(1, 3, 3), f32(1, 3, 2, 2), f32(1, 3))  # one trajectory, two members
    with pytest.raises(ValueError, match="'targets' contains a non-finite"):
        critic.loss(f32(2, 3, 3), f32(2, 3, 2, 2), with_nan(f32(2, 3)))
    with pytest.raises(ValueError, match="'chunks' has shape"):
        critic.loss(f32(2, 3, 3), f32(2, 4, 2, 2), f32(2, 3))
    lr = critic.lr
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        critic.lr = 0.0
    assert critic.lr == lr


def test_reward_scaler_bad_inputs():
    with pytest.raises(ValueError, match="reward_scale_alpha"):
        rldt.RewardScaler(alpha=0.0)
    with pytest.raises(ValueError, match="reward_scale"):
        rldt.RewardScaler(reward_scale=float("inf"))
    s = rldt.RewardScaler()
    with pytest.raises(ValueError, match="'raw_rewards' contains a non-finite"):
        s.update(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="'raw_rewards' has dtype"):
        s.apply(np.array([1, 2]))
    with pytest.raises(ValueError, match="ema"):
        s.ema = -3.0


def test_actor_updater_bad_inputs(policy, critic):
    upd = rldt.ActorUpdater(policy, rldt.ActorUpdateConfig(n_particles=2))
    obs = f32(2, 3)
    with pytest.raises(ValueError, match="'critic' .*'grad_fn'"):
        upd.update(obs)
    with pytest.raises(ValueError, match="not both"):
        upd.update(obs, critic=critic, grad_fn=lambda o, a: a)
    with pytest.raises(TypeError, match="'critic' must be a CriticEnsemble"):
        upd.update(obs, critic=policy)
    with pytest.raises(TypeError, match="'grad_fn' must be callable"):
        upd.update(obs, grad_fn=3)
    with pytest.raises(ValueError, match="'grad_fn result' has shape"):
        upd.update(obs, grad_fn=lambda o, a: a[:, :1])
    with pytest.raises(ValueError, match="'grad_fn result' has dtype int64"):
        upd.update(obs, grad_fn=lambda o, a: np.zeros(a.shape, np.int64))
    with pytest.raises(ValueError, match="'grad_fn result' contains a non-finite"):
        upd.update(obs, grad_fn=lambda o, a: a * np.nan)
    with pytest.raises(ZeroDivisionError):  # the callback's own exception comes through unchanged
        upd.update(obs, grad_fn=lambda o, a: 1 / 0)
    with pytest.raises(ValueError, match="'member'"):
        upd.update(obs, critic=critic, member=5)
    with pytest.raises(ValueError, match="'obs' contains a non-finite"):
        upd.update(with_nan(obs), critic=critic)
    other = rldt.CriticEnsemble(small_critic_config(obs_dim=4))
    with pytest.raises(ValueError, match="'critic' does not fit the policy"):
        upd.update(obs, critic=other)
    assert upd.steps_taken == 0
    with pytest.raises(ValueError, match="'policy'"):
        rldt.ActorUpdater(None)
    with pytest.raises(ValueError, match="n_particles"):
        rldt.ActorUpdater(policy, rldt.ActorUpdateConfig(n_particles=1))
    with pytest.raises(ValueError, match="'phi' has shape"):
        upd.losses(upd.prepare(obs, critic=critic), np.zeros((2, 2, 3), np.float32))
    # A batch from an updater of another policy does not fit.
    other_policy = rldt.FlowPolicy(small_policy_config(obs_dim=5))
    other_upd = rldt.ActorUpdater(other_policy, rldt.ActorUpdateConfig(n_particles=2))
    batch = other_upd.prepare(f32(2, 5), grad_fn=lambda o, a: a)
    with pytest.raises(ValueError, match="'batch' does not fit"):
        upd.step(batch)
    # Fields 'interp'/'delta' need the gradient source again in step().
    interp = rldt.ActorUpdater(policy, rldt.ActorUpdateConfig(n_particles=2, svgd={"field": "interp"}))
    with pytest.raises(ValueError, match="'grad_fn'"):
        interp.step(interp.prepare(obs, critic=critic))


# ---------------------------------------------------------------------------
# Options: unknown keys, wrong types, invalid values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [rldt.FlowPolicyConfig, rldt.CriticConfig, rldt.SvgdConfig, rldt.ActorUpdateConfig])
def test_unknown_keyword_names_the_key(cls):
    with pytest.raises(TypeError, match="unknown keyword argument 'bogus_key'"):
        cls(bogus_key=1)


@pytest.mark.parametrize(
    "cls,kw,pattern",
    [
        (rldt.SvgdConfig, dict(q_norm="bogus"), "option 'q_norm' = 'bogus'"),
        (rldt.SvgdConfig, dict(field="wide"), "option 'field' = 'wide'"),
        (rldt.SvgdConfig, dict(svgd_temp=-1.0), "svgd_temp"),
        (rldt.SvgdConfig, dict(svgd_temp=float("nan")), "svgd_temp"),
        (rldt.FlowPolicyConfig, dict(prediction="eps"), "option 'prediction' = 'eps'"),
        (rldt.FlowPolicyConfig, dict(activation="gelu"), "activation"),
        (rldt.FlowPolicyConfig, dict(time_dim=5), "time_dim"),
        (rldt.FlowPolicyConfig, dict(ema_decay=1.0), "ema_decay"),
        (rldt.CriticConfig, dict(activation="swish"), "critic activation"),
        (rldt.CriticConfig, dict(ensemble_size=0), "ensemble_size"),
        (rldt.CriticConfig, dict(q_target_min=1.0, q_target_max=0.0), "q_target_min"),
        (rldt.ActorUpdateConfig, dict(svgd=dict(q_norm="bogus")), "option 'q_norm' = 'bogus'"),
        (rldt.ActorUpdateConfig, dict(c_cons=-1.0), "c_cons"),
    ],
)
def test_invalid_option_values(cls, kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        cls(**kw)


@pytest.mark.parametrize(
    "cls,kw,pattern",
    [
        (rldt.FlowPolicyConfig, dict(obs_dim=2.5), r"FlowPolicyConfig.obs_dim expects int, got float"),
        (rldt.FlowPolicyConfig, dict(obs_dim=None), r"obs_dim expects int"),
        (rldt.FlowPolicyConfig, dict(mlp_dims="512"), r"mlp_dims expects list of int, got str"),
        (rldt.FlowPolicyConfig, dict(mlp_dims=[1.5]), r"mlp_dims expects list of int"),
        (rldt.FlowPolicyConfig, dict(activation=3), r"activation expects str, got int"),
        (rldt.SvgdConfig, dict(svgd_temp="hot"), r"svgd_temp expects float, got str"),
        (rldt.ActorUpdateConfig, dict(svgd=3), r"svgd expects SvgdConfig or dict"),
        (rldt.ActorUpdateConfig, dict(svgd=dict(nope=1)), r"unknown keyword argument 'nope'"),
    ],
)
def test_wrong_option_types(cls, kw, pattern):
    with pytest.raises(TypeError, match=pattern):
        cls(**kw)


def test_invalid_option_set_later_is_caught_when_used():
    cfg = rldt.SvgdConfig()
    cfg.q_norm = "bogus"  # assignment does not validate (fields may be set in any order) ...
    with pytest.raises(ValueError, match="option 'q_norm' = 'bogus'"):  # ... use does
        rldt.svgd_direction(Q, P, G, cfg)
    with pytest.raises(ValueError, match="q_norm"):
        cfg.validate()
    ucfg = rldt.ActorUpdateConfig(n_particles=2)
    ucfg.svgd.field = "bogus"  # nested config edited in place
    with pytest.raises(ValueError, match="option 'field' = 'bogus'"):
        rldt.ActorUpdater(rldt.FlowPolicy(small_policy_config()), ucfg)
    pcfg = small_policy_config()
    pcfg.mlp_dims = [16, 8, 16]
    with pytest.raises(ValueError, match="residual mlp_dims"):
        rldt.FlowPolicy(pcfg)
    with pytest.raises(TypeError, match="SvgdConfig"):
        rldt.svgd_direction(Q, P, G, config="normal")


def test_concurrent_use_raises_instead_of_racing(policy, critic):
    """A second thread using the policy while an update holds it gets RuntimeError."""
    import threading

    upd = rldt.ActorUpdater(policy, rldt.ActorUpdateConfig(n_particles=2))
    errors, reentrant = [], []

    def grad_fn(obs, actions):
        # Same thread (re-entrant read during the update's write): allowed.
        reentrant.append(policy.act(obs[:1], deterministic=True).shape)

        def other():
            try:
                policy.bc_update(f32(2, 3), f32(2, 2, 2))
            except RuntimeError as e:
                errors.append(str(e))

        th = threading.Thread(target=other)
        th.start()
        th.join()
        return critic.action_grad(obs, actions)

    upd.update(f32(2, 3), grad_fn=grad_fn)
    assert reentrant == [(1, 2, 2)]
    assert len(errors) == 1 and "FlowPolicy is in use by another thread" in errors[0]
    policy.bc_update(f32(2, 3), f32(2, 2, 2))  # free again afterwards
