"""The GIL is released inside long C++ calls; concurrent read-only use of one object works."""

import threading
import time

import numpy as np

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
