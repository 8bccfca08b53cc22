"""rldt.envs: the Gymnasium-style vector API over the native tasks, and the from_gym wrapper."""

import numpy as np
import pytest

import rldt
from rldt import envs

TASKS = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"]


def random_actions(env, rng, steps):
    low, high = env.single_action_space.low, env.single_action_space.high
    return rng.uniform(low, high, size=(steps, env.num_envs) + env.single_action_space.shape)


def test_list_and_specs():
    assert envs.list() == TASKS
    sizes = {"Hopper-v5": (11, 3), "Walker2d-v5": (17, 6), "HalfCheetah-v5": (17, 6), "Ant-v5": (105, 8),
             "Humanoid-v5": (348, 17), "InvertedPendulum-v5": (4, 1)}
    for task, (o, a) in sizes.items():
        env = envs.make(task, num_envs=2, num_threads=1)
        assert env.single_observation_space.shape == (o,)
        assert env.single_action_space.shape == (a,)
        assert env.observation_space.shape == (2, o)
        assert env.action_space.shape == (2, a)
        assert env.single_observation_space.dtype == np.float32
        assert np.all(env.single_action_space.low < env.single_action_space.high)
        env.close()


def test_round_trip_shapes_and_dtypes(rng):
    env = envs.make("Hopper-v5", num_envs=4, seed=3, num_threads=2)
    obs, info = env.reset()
    assert obs.shape == (4, 11) and obs.dtype == np.float32
    assert info["x_position"].shape == (4,)
    acts = random_actions(env, rng, 50)
    for a in acts:
        obs, rew, term, trunc, info = env.step(a)
        assert obs.shape == (4, 11) and obs.dtype == np.float32
        assert rew.shape == (4,) and rew.dtype == np.float64
        assert term.dtype == np.bool_ and trunc.dtype == np.bool_
        np.testing.assert_allclose(rew, info["reward_forward"] + info["reward_ctrl"] + info["reward_survive"],
                                   rtol=1e-12, atol=1e-12)
        done = term | trunc
        np.testing.assert_array_equal(info["_final_obs"], done)
        assert np.all(info["final_obs"][~done] == 0)
        assert np.all(info["episode"]["l"][done] > 0)
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(acts[0])


def test_determinism_by_seed(rng):
    acts = random_actions(envs.make("Ant-v5", num_envs=3), rng, 30)

    def rollout(seed, threads):
        env = envs.make("Ant-v5", num_envs=3, num_threads=threads)
        out = [env.reset(seed=seed)[0]]
        for a in acts:
            o, r, t, tr, info = env.step(a)
            out += [o, r, t, tr, info["final_obs"]]
        return out

    a, b, c = rollout(5, 1), rollout(5, 2), rollout(6, 1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    # make(seed=...) is the first unseeded reset's seed
    e1, e2 = envs.make("Ant-v5", num_envs=3, seed=5), envs.make("Ant-v5", num_envs=3, seed=9)
    np.testing.assert_array_equal(e1.reset()[0], a[0])
    assert not np.array_equal(e2.reset()[0], a[0])
    # env i is seeded with seed + i; unseeded resets continue each env's stream
    o1 = e1.reset()[0]
    assert not np.array_equal(o1, a[0])


def test_vectorised_equals_sequential(rng):
    n = 5
    vec = envs.make("Walker2d-v5", num_envs=n, num_threads=2, dtype=np.float64)
    singles = [envs.make("Walker2d-v5", num_envs=1, num_threads=1, dtype=np.float64) for _ in range(n)]
    obs, _ = vec.reset(seed=10)
    for i, s in enumerate(singles):
        o, _ = s.reset(seed=10 + i)
        np.testing.assert_array_equal(o[0], obs[i])
    dones = 0
    for a in random_actions(vec, rng, 120):
        obs, rew, term, trunc, info = vec.step(a)
        for i, s in enumerate(singles):
            o, r, t, tr, inf = s.step(a[i:i + 1])
            np.testing.assert_array_equal(o[0], obs[i])
            assert r[0] == rew[i] and t[0] == term[i] and tr[0] == trunc[i]
            np.testing.assert_array_equal(inf["final_obs"][0], info["final_obs"][i])
            assert inf["reward_ctrl"][0] == info["reward_ctrl"][i]
        dones += int((term | trunc).sum())
    assert dones > 0  # autoreset was exercised


def test_final_obs_is_last_observation_of_episode():
    env = envs.make("InvertedPendulum-v5", num_envs=2, num_threads=1, dtype=np.float64)
    env.reset(seed=0)
    push = np.array([[3.0], [3.0]])
    for _ in range(200):
        before = [env.get_state(i) for i in range(2)]
        obs, rew, term, trunc, info = env.step(push)
        if term.any():
            i = int(np.argmax(term))
            # replay the finishing step from the saved state: its observation is final_obs
            probe = envs.make("InvertedPendulum-v5", num_envs=1, num_threads=1, dtype=np.float64)
            probe.reset(seed=0)
            probe.set_state(0, *before[i])
            _, r, t, _, pinfo = probe.step(push[i:i + 1])
            np.testing.assert_array_equal(pinfo["final_obs"][0], info["final_obs"][i])
            assert np.abs(info["final_obs"][i][1]) > 0.2  # the pole angle that ended the episode
            assert not np.array_equal(obs[i], info["final_obs"][i])  # obs holds the new episode
            assert t[0] and r[0] == rew[i]
            assert info["episode"]["l"][i] >= 1
            return
    pytest.fail("the pendulum never fell")


def test_get_set_state_round_trip(rng):
    hum = envs.make("Humanoid-v5", num_envs=1, num_threads=1)
    hum.reset(seed=1)
    assert [x.shape for x in hum.get_state(0)] == [(24,), (23,)]
    # Hopper's observation is a function of (qpos, qvel) alone (Humanoid's also holds actuator and
    # contact forces, which depend on the last action)
    env = envs.make("Hopper-v5", num_envs=2, num_threads=1, dtype=np.float64)
    env.reset(seed=1)
    env.step(random_actions(env, rng, 1)[0])
    qpos, qvel = env.get_state(0)
    env.set_state(1, qpos, qvel)
    np.testing.assert_array_equal(env.observe(1), env.observe(0))
    q1, v1 = env.get_state(1)
    np.testing.assert_array_equal(q1, qpos)
    np.testing.assert_array_equal(v1, qvel)
    with pytest.raises(ValueError, match=r"qpos has shape \(3,\); expected \(6,\)"):
        env.set_state(0, np.zeros(3), qvel)
    with pytest.raises(ValueError, match="out of range"):
        env.get_state(2)


def test_step_chunk(rng):
    n, h, e = 3, 4, 2
    env = envs.make("HalfCheetah-v5", num_envs=n, num_threads=1, dtype=np.float64)
    ref = envs.make("HalfCheetah-v5", num_envs=n, num_threads=1, dtype=np.float64)
    env.reset(seed=2)
    ref.reset(seed=2)
    chunks = rng.uniform(-1, 1, size=(n, h, 6))
    obs, rew, term, trunc, info = env.step_chunk(chunks, act_steps=e)
    total = np.zeros(n)
    for k in range(e):
        o, r, *_ = ref.step(chunks[:, k])
        total += r
    np.testing.assert_array_equal(obs, o)
    np.testing.assert_allclose(rew, total, rtol=1e-14)
    np.testing.assert_array_equal(info["steps_executed"], [e] * n)
    with pytest.raises(ValueError, match="act_steps"):
        env.step_chunk(chunks, act_steps=h + 1)
    with pytest.raises(ValueError, match=r"expected \(num_envs, H, act_dim\)"):
        env.step_chunk(chunks[0], act_steps=1)


def test_bad_actions():
    env = envs.make("Hopper-v5", num_envs=4, num_threads=2)
    with pytest.raises(ValueError, match="not reset"):
        env.step(np.zeros((4, 3)))
    obs0, _ = env.reset(seed=0)
    a = np.zeros((4, 3))
    a[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"Hopper-v5\[2\]: action \[1\] = nan is not finite"):
        env.step(a)
    # nothing was stepped
    np.testing.assert_array_equal(env.observe(0), obs0[0])
    with pytest.raises(ValueError, match=r"shape \(4, 2\); expected \(4, 3\)"):
        env.step(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(12,\); expected \(4, 3\)"):
        env.step(np.zeros(12))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.full((4, 3), "a"))
    # integer and float32 actions are accepted
    env.step(np.zeros((4, 3), dtype=np.int64))
    env.step(np.zeros((4, 3), dtype=np.float32))


def test_unknown_task_and_options():
    with pytest.raises(ValueError, match="unknown environment 'Hoper-v5'; valid ones: Hopper-v5, Walker2d-v5"):
        envs.make("Hoper-v5")
    with pytest.raises(ValueError) as err:
        envs.make("Hopper-v5", num_envs=1, ctrl_cost=1.0)
    assert "ctrl_cost" in str(err.value) and "ctrl_cost_weight" in str(err.value)
    assert "ctrl_cost_weight" in envs.option_names("Hopper-v5")
    with pytest.raises(ValueError, match="must be a number"):
        envs.make("Hopper-v5", num_envs=1, ctrl_cost_weight="high")
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("Hopper-v5", num_envs=0)
    env = envs.make("Hopper-v5", num_envs=1, ctrl_cost_weight=0.0, terminate_when_unhealthy=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones((1, 3)))
    assert info["reward_ctrl"][0] == 0.0


def test_options_change_behaviour():
    env = envs.make("InvertedPendulum-v5", num_envs=1, max_episode_steps=3)
    env.reset(seed=0)
    truncs = [env.step(np.zeros((1, 1)))[3][0] for _ in range(3)]
    assert truncs == [False, False, True]


# --------------------------------------------------------------------------------------------
# from_gym: a tiny pure-Python env following Gymnasium's single-env protocol
# --------------------------------------------------------------------------------------------
class _Space:
    def __init__(self, low, high):
        self.low = np.asarray(low, np.float64)
        self.high = np.asarray(high, np.float64)
        self.shape = self.low.shape
        self.dtype = np.float64


class PointEnv:
    """1-D point: x += a; reward -|x|; terminates when |x| > 2.5, truncates after 5 steps."""

    def __init__(self):
        self.observation_space = _Space([-np.inf], [np.inf])
        self.action_space = _Space([-1.0], [1.0])
        self.rng = np.random.default_rng()
        self.closed = False

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.x, self.t = self.rng.uniform(-0.2, 0.2), 0
        return np.array([self.x]), {"start": self.x}

    def step(self, a):
        self.x += float(np.clip(a[0], -1, 1))
        self.t += 1
        info = {"dist": abs(self.x)}
        if self.t == 2:
            info["two"] = True
        return np.array([self.x]), -abs(self.x), abs(self.x) > 2.5, self.t >= 5, info

    def close(self):
        self.closed = True


def test_from_gym_wrapper():
    env = envs.from_gym([PointEnv for _ in range(3)])
    assert env.num_envs == 3
    assert env.single_observation_space.shape == (1,)
    assert env.single_action_space.shape == (1,)
    obs, info = env.reset(seed=4)
    assert obs.shape == (3, 1) and obs.dtype == np.float32
    ref = PointEnv()
    np.testing.assert_allclose(obs[1], ref.reset(seed=5)[0])
    np.testing.assert_array_equal(info["_start"], [True] * 3)

    a = np.array([[1.0], [0.0], [-1.0]])
    for t in range(5):
        obs, rew, term, trunc, info = env.step(a)
        assert rew.shape == (3,) and rew.dtype == np.float64
        if t == 1:
            np.testing.assert_array_equal(info["two"], [True] * 3)
            np.testing.assert_array_equal(info["_two"], [True] * 3)
        if t == 2:
            assert term[0] and not term[1] and term[2]  # |x| > 2.5 after 3 steps of +-1
            np.testing.assert_array_equal(info["_final_obs"], [True, False, True])
            assert info["final_obs"][0, 0] > 2 and info["final_obs"][2, 0] < -2
            assert abs(obs[0, 0]) <= 0.2  # reset in the same step
            np.testing.assert_array_equal(info["episode"]["l"], [3, 0, 3])
            assert "two" not in info and "_two" not in info
        if t == 4:  # envs 0 and 2 are at their second step again, env 1 at its fifth
            np.testing.assert_array_equal(info["_two"], [True, False, True])
            np.testing.assert_array_equal(info["two"], [True, False, True])
    assert trunc[1] and not term[1]
    assert info["episode"]["l"][1] == 5

    with pytest.raises(ValueError, match=r"actions have shape \(3,\); expected \(3, 1\)"):
        env.step(np.zeros(3))
    bad = np.zeros((3, 1))
    bad[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"env 1: action \[0\] = inf is not finite"):
        env.step(bad)
    env.close()
    assert all(e.closed for e in env.envs)
    with pytest.raises(ValueError, match="empty"):
        envs.from_gym([])


def test_from_gym_step_chunk_matches_the_native_conventions():
    # Chunks stop at an episode end (then the env resets in the same call), rewards sum over the
    # executed steps, steps_executed counts them: compare with stepping one action at a time.
    chunked = envs.from_gym([PointEnv for _ in range(3)])
    stepped = envs.from_gym([PointEnv for _ in range(3)])
    chunked.reset(seed=1)
    stepped.reset(seed=1)
    chunk = np.array([[[1.0], [1.0], [1.0], [1.0]], [[0.1], [0.0], [0.0], [0.0]], [[-1.0], [-1.0], [0.0], [0.0]]])
    obs, rew, term, trunc, info = chunked.step_chunk(chunk, 3)
    # env 0: |x| > 2.5 after the third +1 -> terminated at step 3; env 1: 3 steps; env 2: 3 steps.
    np.testing.assert_array_equal(info["steps_executed"], [3, 3, 3])
    exp_r = np.zeros(3)
    for k in range(3):
        o, r, te, tr, inf = stepped.step(chunk[:, k])
        exp_r += r
    np.testing.assert_allclose(rew, exp_r)
    np.testing.assert_array_equal(term, te)
    np.testing.assert_allclose(obs, o)
    np.testing.assert_allclose(info["final_obs"], inf["final_obs"])
    # An episode that ends in the middle of a chunk stops there.
    chunked.reset(seed=2)
    long = np.ones((3, 5, 1))
    obs, rew, term, trunc, info = chunked.step_chunk(long, 5)
    np.testing.assert_array_equal(info["steps_executed"], [3, 3, 3])
    assert term.all() and np.all(np.abs(obs) <= 0.2) and np.all(info["final_obs"] > 2)
    np.testing.assert_array_equal(info["episode"]["l"], [3, 3, 3])
    with pytest.raises(ValueError, match="act_steps = 6"):
        chunked.step_chunk(long, 6)
    bad = long.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"env 2: chunk \[1\] = nan is not finite"):
        chunked.step_chunk(bad, 2)


def test_from_gym_with_gymnasium_env():
    gym = pytest.importorskip("gymnasium")
    env = envs.from_gym([lambda: gym.make("Pendulum-v1") for _ in range(2)])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 3)
    obs, rew, term, trunc, info = env.step(np.zeros((2, 1)))
    assert obs.shape == (2, 3) and rew.shape == (2,)
    assert isinstance(env.single_action_space, gym.spaces.Box)


def test_concurrent_use_raises_instead_of_racing():
    import threading

    env = envs.make("Humanoid-v5", num_envs=32, num_threads=1)
    env.reset(seed=0)
    zeros = np.zeros((32, 17))
    stop, errors = threading.Event(), []

    def worker():
        while not stop.is_set():
            try:
                env.step(zeros)  # releases the GIL for the whole pool step
            except RuntimeError as e:  # either thread may be the one that finds the env busy
                errors.append(str(e))

    t = threading.Thread(target=worker)
    t.start()
    try:
        for _ in range(200):
            try:
                env.step(zeros)
            except RuntimeError as e:
                errors.append(str(e))
                break
    finally:
        stop.set()
        t.join()
    assert errors and "in use by another thread" in errors[0]
