"""One-step alignment of the native tasks (rldt.envs) with Gymnasium's v5 MuJoCo tasks.

For each task, states are collected from Gymnasium episodes under uniformly random actions and
under zero actions. Each (qpos, qvel, action) is then replayed from a fresh reset + set_state in
both implementations (Gymnasium's ``MujocoEnv.set_state`` and ``rldt.envs.VecEnv.set_state``,
many cases at once in one native VecEnv) and the next observation, the reward, each reward term
and ``terminated`` are compared.

Tolerance: |rldt - gymnasium| <= 1e-9 + 1e-9 * |gymnasium| per element, terminated identical.
Why: both sides run the same model files through the same MuJoCo algorithms in float64
(Debian's MuJoCo 2.2.2 for rldt, PyPI's mujoco==2.3.3 for Gymnasium; docs/envs.md), so the only
expected differences are floating-point rounding from different summation orders, measured at
about 1e-13. 1e-9 leaves four orders of magnitude of margin for that while still catching any
modelling difference (a wrong weight, a missed frame-skip, a reward read at the wrong time are all
>= 1e-6).
Exception, Humanoid: its model uses the PGS constraint solver (solver="PGS", tolerance 1e-8, at
most 50 iterations), which stops when an iteration improves the cost by less than 1e-8 relative;
in contact-rich states (the falling humanoid under zero actions: 2-3 contacts, ~28 iterations)
the two builds' rounding changes where it stops, and contact forces differ by ~1e-7 of their size
(measured: cfrc_ext 1e-5 at 113 N, qvel 2e-8, reward 4e-9; random-action states, with fewer
contacts, agree to 1e-14). For Humanoid an element passes if it is within the tight tolerance or
within 1e-6 * (1 + max |gymnasium| over that vector), i.e. solver accuracy; the number of cases
outside the tight tolerance is reported too.
With a newer PyPI mujoco (3.x) Hopper, Ant and Humanoid legitimately differ (geom-margin
contacts changed), so the test is skipped unless mujoco 2.3.x is installed
(python/requirements-test.txt pins it; scripts/dev installs it into .venv).

The worst differences per task are printed: `pytest -rP` (or -s) shows them for passing tests,
and they are in the message of a failure. RLDT_ALIGN_CASES sets the number of cases per task
(default 1000: half from random actions, half from zero actions; about 30 s for all six tasks).
"""

import os

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
mujoco = pytest.importorskip("mujoco")

import rldt  # noqa: E402
from rldt import envs  # noqa: E402

if not mujoco.__version__.startswith("2.3."):
    pytest.skip(f"mujoco {mujoco.__version__} installed; the alignment check needs mujoco==2.3.3 "
                "(python/requirements-test.txt)", allow_module_level=True)

TASKS = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"]
TERMS = ["reward_forward", "reward_ctrl", "reward_contact", "reward_survive"]
ATOL = RTOL = 1e-9
SOLVER_RTOL = {"Humanoid-v5": 1e-6}  # PGS solver accuracy, relative to the vector's scale (above)
CASES = int(os.environ.get("RLDT_ALIGN_CASES", "1000"))


def collect_cases(env, n_cases, zero_actions, seed):
    """(qpos, qvel, action) triples visited by Gymnasium episodes under random or zero actions."""
    rng = np.random.default_rng(seed)
    u = env.unwrapped
    low, high = env.action_space.low, env.action_space.high
    cases, episode = [], 0
    while len(cases) < n_cases:
        env.reset(seed=seed + episode)
        episode += 1
        for t in range(200):
            action = np.zeros_like(low, dtype=np.float64) if zero_actions else rng.uniform(low, high)
            if rng.random() < 0.25:
                cases.append((u.data.qpos.copy(), u.data.qvel.copy(), action))
            _, _, term, trunc, _ = env.step(action)
            if term or trunc or len(cases) >= n_cases:
                break
    return cases


def gym_replay(env, cases):
    u = env.unwrapped
    out = []
    for qpos, qvel, action in cases:
        env.reset(seed=0)
        u.set_state(qpos, qvel)
        obs, reward, term, _, info = u.step(action)
        out.append((np.asarray(obs, np.float64), float(reward), bool(term),
                    np.array([info.get(k, 0.0) for k in TERMS], np.float64)))
    return out


def rldt_replay(task, cases, batch=100):
    """The same replays in one native VecEnv, `batch` cases per step call."""
    vec = envs.make(task, num_envs=batch, num_threads=1, dtype=np.float64)
    act_dim = vec.single_action_space.shape[0]
    out = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        vec.reset(seed=0)
        actions = np.zeros((batch, act_dim))
        for i, (qpos, qvel, action) in enumerate(chunk):
            vec.set_state(i, qpos, qvel)
            actions[i] = action
        obs, reward, term, trunc, info = vec.step(actions)
        # rows that ended are auto-reset: their next observation is in final_obs
        next_obs = np.where((term | trunc)[:, None], info["final_obs"], obs)
        terms = np.stack([info[k] if k in info else np.zeros(batch) for k in TERMS], axis=1)
        for i in range(len(chunk)):
            out.append((next_obs[i], float(reward[i]), bool(term[i]), terms[i]))
    vec.close()
    return out


def worst(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b))
    return float(d.max()) if d.size else 0.0


def within(a, b, solver_rtol=0.0):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = np.abs(a - b)
    tight = d <= ATOL + RTOL * np.abs(b)
    loose = d <= solver_rtol * (1.0 + (np.abs(b).max() if b.size else 0.0))
    return bool(np.all(tight | loose))


@pytest.mark.parametrize("task", TASKS)
def test_one_step_alignment_with_gymnasium(task):
    env = gym.make(task)
    cases = (collect_cases(env, CASES // 2, zero_actions=False, seed=100)
             + collect_cases(env, CASES - CASES // 2, zero_actions=True, seed=200))
    ref = gym_replay(env, cases)
    env.close()
    mine = rldt_replay(task, cases)

    w_obs = w_rew = 0.0
    w_terms = np.zeros(len(TERMS))
    solver_rtol = SOLVER_RTOL.get(task, 0.0)
    bad, flag_mismatch, terminal, beyond_tight = [], 0, 0, 0
    for k, ((o, r, t, terms), (go, gr, gt, gterms)) in enumerate(zip(mine, ref)):
        assert o.shape == go.shape, f"{task}: observation shape {o.shape} vs Gymnasium's {go.shape}"
        w_obs = max(w_obs, worst(o, go))
        w_rew = max(w_rew, abs(r - gr))
        w_terms = np.maximum(w_terms, np.abs(terms - gterms))
        terminal += gt
        flag_mismatch += t != gt
        beyond_tight += not (within(o, go) and within(r, gr) and within(terms, gterms))
        if not (within(o, go, solver_rtol) and within(r, gr, solver_rtol) and within(terms, gterms, solver_rtol)) \
                or t != gt:
            bad.append(k)
    report = (f"{task}: {len(cases)} cases ({terminal} terminal), worst |diff|: obs {w_obs:.3g}, reward "
              f"{w_rew:.3g}, " + ", ".join(f"{name} {v:.3g}" for name, v in zip(TERMS, w_terms))
              + f"; beyond 1e-9: {beyond_tight}"
              + (f" (allowed up to {solver_rtol:g} x scale: PGS solver)" if solver_rtol else "")
              + f"; out of tolerance {len(bad)}, terminated mismatches {flag_mismatch}")
    print("\n" + report)
    assert not bad, report + f"; first bad case {bad[0]}: qpos {cases[bad[0]][0]}, action {cases[bad[0]][2]}"
