"""rldt.InferencePolicy: the fast acting path samples what FlowPolicy samples (actions, chain and
expected targets) on all three of its matrix paths (packed weights, the BLAS GEMM, Eigen), gives a
state the same bits in any batch on the packed path, holds a weight snapshot, and names bad input."""

import numpy as np
import pytest

import rldt
from conftest import small_policy_config


@pytest.mark.parametrize("kw", [dict(activation="mish", prediction="x_pred", mlp_dims=[32, 32, 32]),
                                dict(activation="silu", residual=False, mlp_dims=[32, 16], final_action_clip=0.5)])
def test_samples_what_the_flow_policy_samples(kw, rng):
    policy = rldt.FlowPolicy(small_policy_config(**kw), seed=3)
    fast = rldt.InferencePolicy(policy)
    assert fast.gemm == "packed"
    obs = rng.standard_normal((20, 3)).astype(np.float32)
    actions, chain = policy.sample(obs)  # chain[:, 0] is the x_0 it drew
    k = rng.integers(0, 4, 20)
    for gemm in ("packed", "blas", "eigen"):
        fast.gemm = gemm
        assert fast.gemm == gemm, "no BLAS sgemm_ found in the process (the setup installs OpenBLAS)"
        np.testing.assert_allclose(fast.act(obs), policy.act(obs, deterministic=True), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fast.act(obs, x0=chain[:, 0]), actions, rtol=1e-4, atol=1e-5)
        got_actions, got_chain = fast.sample(obs, x0=chain[:, 0])
        assert got_chain.shape == chain.shape and got_chain.dtype == np.float32
        np.testing.assert_allclose(got_actions, actions, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got_chain, chain, rtol=1e-4, atol=1e-5)
        x_k = chain[np.arange(20), k]
        np.testing.assert_allclose(fast.expected_target(x_k, k, obs), policy.expected_target(x_k, k, obs),
                                   rtol=1e-4, atol=1e-5)
        one = fast.act(obs[:1])
        assert one.shape == (1, 2, 2) and one.dtype == np.float32
        np.testing.assert_allclose(one, policy.act(obs[:1], deterministic=True), rtol=1e-4, atol=1e-5)


def test_packed_path_gives_a_state_the_same_bits_in_any_batch(rng):
    policy = rldt.FlowPolicy(small_policy_config(mlp_dims=[40, 40, 40]), seed=5)
    fast = rldt.InferencePolicy(policy)
    obs = rng.standard_normal((17, 3)).astype(np.float32)
    x0 = rng.standard_normal((17, 2, 2)).astype(np.float32)
    whole = fast.act(obs, x0=x0)
    parts = np.concatenate([fast.act(obs[i:i + 5], x0=x0[i:i + 5]) for i in range(0, 17, 5)])
    np.testing.assert_array_equal(parts, whole)
    fast.threads = 2  # two blocks of rows on two threads: the same bits
    assert fast.threads == 2 and fast.split == "auto"
    np.testing.assert_array_equal(fast.act(obs, x0=x0), whole)
    for split in ("rows", "columns"):  # columns: both threads on all 17 states, half the outputs each
        fast.split = split
        assert fast.split == split
        np.testing.assert_array_equal(fast.act(obs, x0=x0), whole)
    fast.split = "auto"  # 5 states on 2 threads: columns
    np.testing.assert_array_equal(fast.act(obs[:5], x0=x0[:5]), whole[:5])
    with pytest.raises(rldt.ArgumentError, match="n must be >= 1"):
        fast.threads = 0
    with pytest.raises(rldt.ArgumentError, match="split"):
        fast.split = "diagonal"


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
    with pytest.raises(rldt.ArgumentError, match="gemm"):
        fast.gemm = "cuda"
    x_k = np.zeros((2, 2, 2), np.float32)
    with pytest.raises(rldt.ArgumentError, match="'k' must hold steps in \\[0, 4\\); row 1 has 4"):
        fast.expected_target(x_k, np.array([0, 4]), np.zeros((2, 3), np.float32))
    with pytest.raises(rldt.ArgumentError, match="'obs'"):
        fast.expected_target(x_k, np.array([0, 1]), np.zeros((3, 3), np.float32))
