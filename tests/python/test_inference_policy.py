"""rldt.InferencePolicy: the fast acting path samples what FlowPolicy samples, on both of its matrix
paths (Eigen for one state, the BLAS GEMM for batches), holds a weight snapshot, and names bad input."""

import numpy as np
import pytest

import rldt
from conftest import small_policy_config


@pytest.mark.parametrize("kw", [dict(activation="mish", prediction="x_pred", mlp_dims=[32, 32, 32]),
                                dict(activation="silu", residual=False, mlp_dims=[32, 16], final_action_clip=0.5)])
def test_samples_what_the_flow_policy_samples(kw, rng):
    policy = rldt.FlowPolicy(small_policy_config(**kw), seed=3)
    fast = rldt.InferencePolicy(policy)
    assert fast.use_blas, "no BLAS sgemm_ found in the process (the setup installs OpenBLAS)"
    obs = rng.standard_normal((20, 3)).astype(np.float32)
    actions, chain = policy.sample(obs)  # chain[:, 0] is the x_0 it drew
    for blas in (True, False):
        fast.use_blas = blas
        np.testing.assert_allclose(fast.act(obs), policy.act(obs, deterministic=True), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fast.act(obs, x0=chain[:, 0]), actions, rtol=1e-4, atol=1e-5)
        one = fast.act(obs[:1])  # one state: the Eigen path whatever use_blas says
        assert one.shape == (1, 2, 2) and one.dtype == np.float32
        np.testing.assert_allclose(one, policy.act(obs[:1], deterministic=True), rtol=1e-4, atol=1e-5)


def test_is_a_snapshot_of_the_net_it_was_built_from(rng):
    policy = rldt.FlowPolicy(small_policy_config(), seed=1)
    obs = rng.standard_normal((4, 3)).astype(np.float32)
    fast = rldt.InferencePolicy(policy)
    before = fast.act(obs)
    for _ in range(20):
        policy.bc_update(obs, rng.uniform(-1, 1, (4, 2, 2)).astype(np.float32))
    np.testing.assert_array_equal(fast.act(obs), before)  # the copy did not follow the training
    trained = policy.act(obs, deterministic=True)
    assert np.abs(trained - before).max() > 1e-3
    np.testing.assert_allclose(rldt.InferencePolicy(policy).act(obs), trained, rtol=1e-4, atol=1e-5)
    ema = rldt.InferencePolicy(policy, net="ema")
    assert np.abs(ema.act(obs) - trained).max() > 1e-4  # the EMA lags the actor
    policy.load_ema_into_actor()
    np.testing.assert_allclose(ema.act(obs), policy.act(obs, deterministic=True), rtol=1e-4, atol=1e-5)
    assert "InferencePolicy(obs_dim=3" in repr(fast)


def test_rejects_bad_input_naming_it(policy):
    fast = rldt.InferencePolicy(policy)
    with pytest.raises(rldt.ArgumentError, match="'obs'"):
        fast.act(np.zeros((2, 4), np.float32))
    with pytest.raises(rldt.ArgumentError, match="'obs' holds no rows"):
        fast.act(np.zeros((0, 3), np.float32))
    with pytest.raises(rldt.ArgumentError, match="'x0'"):
        fast.act(np.zeros((2, 3), np.float32), x0=np.zeros((3, 2, 2), np.float32))
    with pytest.raises(rldt.ArgumentError, match="net"):
        rldt.InferencePolicy(policy, net="reference")
