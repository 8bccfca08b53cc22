"""The GIL is released inside long C++ calls; concurrent read-only use of one object works."""

import threading
import time

import numpy as np
import pytest

import rldt


def _ticks_while(target):
    """Runs target() in a thread; returns (main-thread loop iterations during target, its duration)."""
    window = {}

    def worker():
        window["start"] = time.perf_counter()
        target()
        window["end"] = time.perf_counter()

    th = threading.Thread(target=worker)
    th.start()
    ticks = []
    while th.is_alive():
        ticks.append(time.perf_counter())
    th.join()
    inside = sum(1 for t in ticks if window["start"] < t < window["end"])
    return inside, window["end"] - window["start"]


def test_gil_is_released_during_cpp_calls():
    # td_lambda_targets on a large batch: a loop of element-wise ops (no BLAS threads competing).
    rng = np.random.default_rng(0)
    N, T = 20_000, 48
    r = rng.normal(size=(N, T)).astype(np.float32)
    z = np.zeros((N, T), np.float32)
    # The main loop's rate while the other thread holds no GIL at all (it sleeps).
    free, free_dur = _ticks_while(lambda: time.sleep(0.1))
    inside, dur = _ticks_while(lambda: rldt.td_lambda_targets(r, r, z, z, td_lambda=0.9))
    # With the GIL held in C++ the main thread would only run in the 5 ms switch intervals around
    # the call (a few % of it); released, it keeps its rate (minus CPU contention on a busy machine).
    assert dur > 0.05, "the call was too quick to tell"
    assert inside / dur > 0.15 * free / free_dur, (inside, dur, free, free_dur)


def _in_threads(work, n=3):
    """Runs work() in n threads at once; returns the exceptions they raised."""
    errors = []

    def guarded():
        try:
            work()
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=guarded) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_concurrent_reads(policy, critic):
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(64, 3)).astype(np.float32)
    expected = policy.act(obs, deterministic=True)
    results = []

    def work():
        for _ in range(20):
            a = policy.act(obs, deterministic=True)
            critic.q(obs, a)
            results.append(a)

    errors = _in_threads(work)
    assert not errors, errors[0]
    assert len(results) == 60
    for a in results:
        np.testing.assert_array_equal(a, expected)


def test_concurrent_reads_of_a_sac_learner():
    # Sac.q and deterministic actions only read the learner (the GIL is released inside, so the
    # calls overlap); a sample draws from its generator and stays one thread's.
    sac = rldt.Sac(rldt.SacConfig(obs_dim=1, action_dim=2, hidden=[256, 256]), seed=0)
    rng = np.random.default_rng(3)
    s = rng.uniform(-1, 1, size=(4096, 1)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(4096, 2)).astype(np.float32)
    expected_q, expected_a = sac.q(s, a), sac.act(s)
    done = []

    def work():
        for _ in range(10):
            np.testing.assert_array_equal(sac.q(s, a), expected_q)
            np.testing.assert_array_equal(sac.act(s), expected_a)
            done.append(1)

    errors = _in_threads(work)
    assert not errors, errors[0]
    assert len(done) == 30


def test_blas_thread_setting_reaches_the_loaded_openblas():
    # Python loads extension modules with RTLD_LOCAL; the setting must still find OpenBLAS.
    before = rldt.blas_num_threads()
    assert before >= 1, "the loaded BLAS has no thread setting; the setup installs OpenBLAS"
    try:
        assert rldt.set_blas_num_threads(1) is True
        assert rldt.blas_num_threads() == 1
        assert rldt.set_blas_num_threads(2) is True
        assert rldt.blas_num_threads() == 2
    finally:
        rldt.set_blas_num_threads(before)
    import pytest

    with pytest.raises(rldt.ArgumentError, match="'n'"):
        rldt.set_blas_num_threads(0)


def test_grouped_actor_update_calls_a_python_grad_fn_from_its_threads():
    # update_groups=2: each group's thread calls grad_fn (the binding takes the GIL there); the
    # update matches the one-group update up to the matmuls' rounding. (Which threads ran the groups
    # is up to the pool: a caller that finishes its block early takes the other one too.)
    cfg = rldt.FlowPolicyConfig(obs_dim=3, action_dim=2, horizon_steps=2, denoising_steps=4, mlp_dims=[32, 32, 32])
    obs = np.random.default_rng(5).normal(size=(6, 3)).astype(np.float32)
    callers = set()

    def grad_fn(o, a):
        callers.add(threading.get_ident())
        return (-2.0 * (a - 0.3)).astype(np.float32)

    results = {}
    for groups in (1, 2):
        pol = rldt.FlowPolicy(cfg, seed=4)
        upd = rldt.ActorUpdater(pol, rldt.ActorUpdateConfig(n_particles=4, lr=1e-3, update_groups=groups), seed=9)
        assert upd.config.update_groups == groups
        callers.clear()
        stats = [upd.update(obs, grad_fn=grad_fn) for _ in range(2)]
        results[groups] = (stats, pol.state_dict("actor"), set(callers))
    (s1, w1, c1), (s2, w2, c2) = results[1], results[2]
    assert c1 == {threading.get_ident()}
    assert len(c2) >= 1, c2
    for a, b in zip(s1, s2):
        for key in ("loss", "align", "cons", "ref"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    for key in w1:
        np.testing.assert_allclose(w2[key], w1[key], rtol=0, atol=1e-6, err_msg=key)
    with pytest.raises(ValueError, match="update_groups"):
        rldt.ActorUpdateConfig(update_groups=0)
    with pytest.raises(ValueError, match="backward"):
        rldt.ActorUpdateConfig(backward="numeric")


def test_grouped_critic_update_matches_the_batched_one():
    # critic update_groups=2: the two members' passes on two threads (one BLAS thread each); the
    # same loss and weights as the batched update up to the matmuls' rounding.
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(6, 5, 3)).astype(np.float32)
    chunks = rng.normal(size=(6, 5, 2, 2)).astype(np.float32)
    targets = rng.normal(size=(6, 5)).astype(np.float32)
    out = {}
    for groups in (1, 2):
        c = rldt.CriticEnsemble(rldt.CriticConfig(obs_dim=3, action_dim=2, act_steps=2, hidden=[32, 32],
                                                  update_groups=groups), seed=2)
        assert c.config.update_groups == groups
        losses = [c.update(obs, chunks, targets) for _ in range(3)]
        out[groups] = (losses, c.q(obs[:, 0], chunks[:, 0]))
    np.testing.assert_allclose(out[2][0], out[1][0], rtol=1e-5)
    np.testing.assert_allclose(out[2][1], out[1][1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="update_groups"):
        rldt.CriticConfig(update_groups=0)
