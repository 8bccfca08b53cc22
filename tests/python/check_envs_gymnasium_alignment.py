"""One-step alignment of rldt's native tasks with Gymnasium's v5 tasks.

For each task: states are collected from Gymnasium episodes under random actions; each
(qpos, qvel, action) is replayed from a fresh reset + set_state in Gymnasium and in rldt
(the `rldt_env_replay` helper), and next observations, rewards, reward terms and termination flags
are compared.

Tolerance: per element |rldt - gymnasium| <= atol + rtol * |gymnasium| (defaults 1e-9 and 1e-9),
and termination flags equal. With PyPI's mujoco==2.3.3 (the oldest release Gymnasium v5 supports,
the closest to Debian's 2.2.2 that rldt links) all six tasks agree to about 1e-13 (measured: worst
observation difference 1.5e-13 on Walker2d, rewards within 6e-15, over 200 cases per task).
With mujoco 3.x/4.x, Hopper, Ant and Humanoid differ by up to O(1) in contact forces and
O(0.1) in velocities after one step: those three models use geom margins, whose treatment changed
in later MuJoCo releases; Walker2d, HalfCheetah and InvertedPendulum still agree to 1e-13.

Set-up and run (after building):
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install gymnasium imageio 'mujoco==2.3.3' 'numpy<2'
  .venv/bin/python tests/python/check_envs_gymnasium_alignment.py --replay build/rldt_env_replay
"""
import argparse
import subprocess
import sys

import gymnasium as gym
import numpy as np

TASKS = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"]
TERMS = ["x_velocity", "reward_forward", "reward_ctrl", "reward_contact", "reward_survive"]


def collect(task, n_cases, seed):
    env = gym.make(task)
    rng = np.random.default_rng(seed)
    cases = []
    episode = 0
    while len(cases) < n_cases:
        env.reset(seed=seed + episode)
        episode += 1
        for _ in range(40):
            u = env.unwrapped
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float64)
            if rng.random() < 0.3:
                cases.append((u.data.qpos.copy(), u.data.qvel.copy(), action))
            _, _, term, trunc, _ = env.step(action)
            if term or trunc or len(cases) >= n_cases:
                break
    out = []
    for qpos, qvel, action in cases:
        env.reset(seed=0)
        u = env.unwrapped
        u.set_state(qpos, qvel)
        obs, reward, term, _, info = u.step(action)
        terms = [info.get(k, 0.0) for k in TERMS]
        out.append((qpos, qvel, action, np.asarray(obs), reward, bool(term), np.asarray(terms, float)))
    env.close()
    return out


def fmt(v):
    return " ".join(repr(float(x)) for x in v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", default="build/rldt_env_replay")
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--tasks", nargs="*", default=TASKS)
    args = ap.parse_args()
    failed = False
    for task in args.tasks:
        ref = collect(task, args.cases, seed=123)
        lines = [f"{task} {len(q)} {fmt(q)} {len(v)} {fmt(v)} {len(a)} {fmt(a)}" for q, v, a, *_ in ref]
        res = subprocess.run([args.replay], input="\n".join(lines) + "\n", capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr)
            sys.exit(2)
        worst_obs = worst_rew = worst_terms = 0.0
        bad = flag_mismatch = 0
        for (q, v, a, obs, reward, term, terms), line in zip(ref, res.stdout.splitlines()):
            nums = line.split()
            n = int(nums[0])
            mine_obs = np.array(nums[1:1 + n], float)
            mine_reward = float(nums[1 + n])
            mine_term = bool(int(nums[2 + n]))
            mine_terms = np.array(nums[3 + n:8 + n], float)
            if mine_obs.shape != obs.shape:
                print(f"{task}: obs shape {mine_obs.shape} vs {obs.shape}")
                failed = True
                break
            flag_mismatch += mine_term != term
            d_obs = np.abs(mine_obs - obs)
            worst_obs = max(worst_obs, d_obs.max())
            worst_rew = max(worst_rew, abs(mine_reward - reward))
            worst_terms = max(worst_terms, np.abs(mine_terms - terms).max())
            ok = (np.all(d_obs <= args.atol + args.rtol * np.abs(obs))
                  and abs(mine_reward - reward) <= args.atol + args.rtol * abs(reward)
                  and np.all(np.abs(mine_terms - terms) <= args.atol + args.rtol * np.abs(terms)))
            bad += not ok
        status = "OK" if bad == 0 and flag_mismatch == 0 else "MISMATCH"
        failed |= status != "OK"
        print(f"{task:20s} {status}: {len(ref)} cases, max |d obs| {worst_obs:.3g}, max |d reward| "
              f"{worst_rew:.3g}, max |d term| {worst_terms:.3g}, out of tolerance {bad}, "
              f"terminal cases {sum(r[5] for r in ref)}, termination mismatches {flag_mismatch}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
