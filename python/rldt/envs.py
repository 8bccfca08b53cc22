"""Vectorised environments with Gymnasium's vector-env calling conventions, on numpy arrays.

    import rldt
    env = rldt.envs.make("Hopper-v5", num_envs=16, seed=0)    # native MuJoCo tasks (C++)
    obs, info = env.reset()                                     # obs (N, O) float32
    obs, rew, term, trunc, info = env.step(actions)             # actions (N, A)
    frame = env.render(index=0)                                 # (H, W, 3) uint8

    env = rldt.envs.from_gym([lambda: MyEnv() for _ in range(4)])  # any Gymnasium-style env

Conventions (the same for ``make`` and ``from_gym``; N = num_envs, O = obs size, A = action size):

* ``reset(seed=None) -> (obs (N, O), info)``. With a seed, env i is seeded with ``seed + i``;
  without one each env continues its own random stream (the very first reset of a native env
  uses the ``seed`` given to ``make``).
* ``step(actions (N, A)) -> (obs (N, O), reward (N,) float64, terminated (N,) bool,
  truncated (N,) bool, info)``. Actions are passed to the physics as given (MuJoCo clamps them to
  the control range); NaN/inf entries or a wrong shape raise ``ValueError`` naming the env and
  entry, and nothing is stepped.
* **Same-step autoreset**: an env whose episode ended in this call is reset at once; its row of
  ``obs`` is the new episode's first observation, ``info["final_obs"][i]`` the last observation of
  the finished episode (valid where ``info["_final_obs"][i]``, zeros elsewhere), and
  ``info["episode"] = {"r": return, "l": length}`` with mask ``info["_episode"]``. This is
  Gymnasium's ``AutoresetMode.SAME_STEP`` except that ``final_obs`` is a dense (N, O) array
  rather than an object array. There is no ``final_info``: every per-step entry of ``info``
  (reward terms, positions, ...) already describes the step that was executed, which for a
  finished env is the last step of the finished episode.
* ``info`` holds one (N,) array per key. Native tasks report Gymnasium's keys for the task
  (``reward_forward``, ``reward_ctrl``, ``reward_contact``, ``reward_survive``, ``x_position``,
  ``x_velocity``, ...; ``env.info_keys``), plus ``unstable`` (bool, the simulation diverged) and
  ``elapsed_steps``. ``from_gym`` collects whatever keys the envs return, with ``_key`` masks
  (Gymnasium's convention) since keys may be missing for some envs.
* Observations are float32 by default (``make(..., dtype=np.float64)`` keeps the simulator's
  float64, e.g. for comparisons with Gymnasium); rewards and reward terms are float64.
* ``single_observation_space`` / ``single_action_space`` (and the batched ``observation_space`` /
  ``action_space``) are ``gymnasium.spaces.Box`` when gymnasium is importable, else ``Box`` below
  (shape, low, high, dtype, sample(), contains()).
* Native envs only: ``get_state(i) -> (qpos, qvel)``, ``set_state(i, qpos, qvel)`` (episode
  counters unchanged), ``observe(i)``, ``step_chunk(chunks (N, H, A), act_steps)`` (env i executes
  ``chunks[i, :act_steps]``, stopping early when its episode ends; reward is the sum over the
  executed steps, ``info["steps_executed"]`` their count), ``render(index, width, height, camera)``.

One env object must not be used from several Python threads at once (the GIL is released while
native envs step; a conflicting call raises RuntimeError).
"""

from __future__ import annotations

import builtins
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _core

__all__ = ["Box", "VecEnv", "FromGym", "make", "from_gym", "list", "option_names", "renderer_available",
           "save_png", "save_frames"]


_native = _core._envs  # python/src/envs.cpp


# ---------------------------------------------------------------------------------------------
# Spaces
# ---------------------------------------------------------------------------------------------
class Box:
    """A box of real vectors (used when gymnasium is not installed): ``low <= x <= high``."""

    def __init__(self, low, high, shape=None, dtype=np.float32, seed: Optional[int] = None):
        self.dtype = np.dtype(dtype)
        shape = tuple(shape) if shape is not None else np.shape(low)
        self.shape = shape
        self.low = np.broadcast_to(np.asarray(low, dtype=self.dtype), shape).copy()
        self.high = np.broadcast_to(np.asarray(high, dtype=self.dtype), shape).copy()
        self._rng = np.random.default_rng(seed)

    def seed(self, seed: Optional[int] = None):
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        low = np.where(np.isfinite(self.low), self.low, -1.0)
        high = np.where(np.isfinite(self.high), self.high, 1.0)
        return self._rng.uniform(low, high).astype(self.dtype)

    def contains(self, x) -> bool:
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all(x >= self.low) and np.all(x <= self.high))

    def __repr__(self):
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"


def _box(low, high, dtype):
    low = np.asarray(low)
    high = np.asarray(high)
    try:
        import gymnasium

        return gymnasium.spaces.Box(low=low.astype(dtype), high=high.astype(dtype), shape=low.shape, dtype=dtype)
    except ImportError:
        return Box(low, high, low.shape, dtype)


def _batched(space, n):
    return _box(np.broadcast_to(space.low, (n,) + space.shape), np.broadcast_to(space.high, (n,) + space.shape),
                space.dtype)


# ---------------------------------------------------------------------------------------------
# Native tasks
# ---------------------------------------------------------------------------------------------
def list() -> List[str]:  # noqa: A001 (the issue's name: rldt.envs.list())
    """Ids of the native tasks, e.g. ``["Hopper-v5", ...]``."""
    return builtins.list(_native.names())


def option_names(task: str) -> List[str]:
    """Option names ``make(task, **options)`` accepts (the task config's fields)."""
    return builtins.list(_native.option_names(task))


def renderer_available() -> bool:
    """True when the library was built with OSMesa offscreen rendering."""
    return bool(_native.renderer_available())


class VecEnv:
    """N copies of a native task stepped by a C++ thread pool (see the module docstring)."""

    def __init__(self, task: str, num_envs: int = 16, seed: int = 0, num_threads: Optional[int] = None,
                 dtype=np.float32, **options: float):
        if task not in _native.names():
            raise ValueError(f"unknown environment '{task}'; valid ones: {', '.join(_native.names())}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{task}: dtype {dtype} not supported; use float32 or float64")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"{task}: num_envs = {num_envs!r} must be an integer >= 1")
        if num_threads is None:
            num_threads = min(int(num_envs), os.cpu_count() or 1)
        if not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
            raise ValueError(f"{task}: num_threads = {num_threads!r} must be an integer >= 1 (or None)")
        opts: Dict[str, float] = {}
        for key, value in options.items():
            if isinstance(value, (bool, np.bool_)):
                value = float(value)
            if not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{task}: option '{key}' = {value!r} must be a number (booleans as 0/1)")
            opts[key] = float(value)
        self._env = _native.VecEnv(task, int(num_envs), int(num_threads), opts, dtype == np.float64)
        spec = self._env.spec()
        self.spec = spec
        self.task = task
        self.num_envs = int(num_envs)
        self.num_threads = self._env.num_threads
        self.dtype = dtype
        self.info_keys = builtins.list(spec["info_keys"])
        self.max_episode_steps = spec["max_episode_steps"]
        self.dt = spec["dt"]
        self.single_observation_space = _box(spec["obs_low"], spec["obs_high"], dtype)
        self.single_action_space = _box(spec["act_low"], spec["act_high"], np.float32)
        self.observation_space = _batched(self.single_observation_space, self.num_envs)
        self.action_space = _batched(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": "same_step", "render_modes": ["rgb_array"]}
        self._seed = int(seed)
        self._seeded = False
        self._closed = False

    # -- Gymnasium vector API -----------------------------------------------------------------
    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        self._check_open()
        if options:
            raise ValueError(f"{self.task}: reset options are not supported (got {sorted(options)})")
        if seed is None and not self._seeded:
            seed = self._seed
        r = self._env.reset(None if seed is None else int(seed))
        self._seeded = True
        return r["obs"], r["info"]

    def step(self, actions):
        self._check_open()
        return self._unpack(self._env.step(actions))

    def step_chunk(self, chunks, act_steps: int):
        """chunks (N, H, A); env i executes chunks[i, :act_steps] (stops early at an episode end)."""
        self._check_open()
        return self._unpack(self._env.step_chunk(chunks, int(act_steps)))

    def close(self):
        if not self._closed:
            self._env.close()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- native extras --------------------------------------------------------------------------
    def get_state(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """(qpos (nq,), qvel (nv,)) of env `index`, float64 copies."""
        return self._env.get_state(int(index))

    def set_state(self, index: int, qpos, qvel) -> None:
        """Sets env `index`'s qpos (nq,) and qvel (nv,) (mj_forward; episode counters unchanged)."""
        self._env.set_state(int(index), qpos, qvel)

    def observe(self, index: int) -> np.ndarray:
        """Observation (O,) of env `index`'s current state."""
        return self._env.observe(int(index))

    def render(self, index: int = 0, width: int = 480, height: int = 480, camera: int = -1) -> np.ndarray:
        """RGB frame (height, width, 3) uint8 of env `index` (OSMesa, offscreen). camera -1 tracks
        the torso from the side; camera >= 0 uses the model's camera with that index."""
        self._check_open()
        return self._env.render(int(index), int(width), int(height), int(camera))

    # -- helpers ----------------------------------------------------------------------------------
    def _check_open(self):
        if self._closed:
            raise RuntimeError(f"{self.task}: the env was closed")

    @staticmethod
    def _unpack(r):
        info = r["info"]
        done = r["terminated"] | r["truncated"]
        info["final_obs"] = r["final_obs"]
        info["_final_obs"] = done
        info["episode"] = {"r": r["episode_return"], "l": r["episode_length"]}
        info["_episode"] = done.copy()
        info["steps_executed"] = r["steps_executed"]
        return r["obs"], r["reward"], r["terminated"], r["truncated"], info

    def __repr__(self):
        return f"rldt.envs.VecEnv({self.task!r}, num_envs={self.num_envs}, num_threads={self.num_threads})"


def make(task: str, num_envs: int = 16, seed: int = 0, num_threads: Optional[int] = None, dtype=np.float32,
         **options: float) -> VecEnv:
    """``num_envs`` copies of native task ``task`` (see ``list()``), options by config field name
    (``option_names(task)``; unknown names raise ValueError listing the valid ones). num_threads
    None = min(num_envs, CPU count). The first reset without a seed uses ``seed`` (env i: seed + i).
    """
    return VecEnv(task, num_envs=num_envs, seed=seed, num_threads=num_threads, dtype=dtype, **options)


# ---------------------------------------------------------------------------------------------
# Wrapping Python envs that follow Gymnasium's single-env protocol
# ---------------------------------------------------------------------------------------------
class FromGym:
    """Sequential vector env over Python envs with Gymnasium's single-env protocol:
    ``reset(seed=...) -> (obs, info)``, ``step(a) -> (obs, reward, terminated, truncated, info)``,
    ``observation_space`` / ``action_space`` (objects with shape, low, high, dtype).
    Same calling conventions and same-step autoreset as the native ``VecEnv``."""

    def __init__(self, env_fns: Iterable[Callable[[], Any]], dtype=np.float32):
        fns = builtins.list(env_fns)
        if not fns:
            raise ValueError("from_gym: env_fns is empty; need at least one env constructor")
        self.envs = [fn() for fn in fns]
        for i, e in enumerate(self.envs):
            for attr in ("reset", "step", "observation_space", "action_space"):
                if not hasattr(e, attr):
                    raise ValueError(f"from_gym: env {i} ({type(e).__name__}) lacks '{attr}'")
        self.num_envs = len(self.envs)
        self.dtype = np.dtype(dtype)
        first = self.envs[0]
        obs_space, act_space = first.observation_space, first.action_space
        self.single_observation_space = _box(obs_space.low, obs_space.high, self.dtype)
        self.single_action_space = _box(act_space.low, act_space.high, np.dtype(act_space.dtype))
        for i, e in enumerate(self.envs[1:], 1):
            if tuple(e.observation_space.shape) != self.single_observation_space.shape or tuple(
                    e.action_space.shape) != self.single_action_space.shape:
                raise ValueError(f"from_gym: env {i} has observation/action shapes {e.observation_space.shape}/"
                                 f"{e.action_space.shape}; env 0 has {obs_space.shape}/{act_space.shape}")
        self.observation_space = _batched(self.single_observation_space, self.num_envs)
        self.action_space = _batched(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": "same_step"}
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int32)
        self._needs_reset = True

    def _obs(self, i, obs):
        obs = np.asarray(obs, dtype=self.dtype)
        if obs.shape != self.single_observation_space.shape:
            raise ValueError(f"from_gym: env {i} returned an observation of shape {obs.shape}; expected "
                             f"{self.single_observation_space.shape}")
        return obs

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        obs = np.empty((self.num_envs,) + self.single_observation_space.shape, self.dtype)
        infos = []
        for i, e in enumerate(self.envs):
            kw = {} if options is None else {"options": options}
            o, info = e.reset(seed=None if seed is None else int(seed) + i, **kw)
            obs[i] = self._obs(i, o)
            infos.append(info)
        self._returns[:] = 0
        self._lengths[:] = 0
        self._needs_reset = False
        return obs, _merge_infos(infos, self.num_envs)

    def _check_actions(self, actions, shape, what):
        actions = np.asarray(actions)
        if actions.shape != shape:
            raise ValueError(f"from_gym: {what} have shape {actions.shape}; expected {shape}")
        if actions.dtype.kind in "fc":
            flat = actions.reshape(self.num_envs, -1)
            bad = np.argwhere(~np.isfinite(flat))
            if bad.size:
                i, j = bad[0]
                raise ValueError(f"from_gym: env {i}: {what[:-1]} [{j}] = {flat[i, j]} is not finite; "
                                 "nothing was stepped")
        return actions

    def step(self, actions):
        """One step of every env; actions (N, d)."""
        if self._needs_reset:
            raise RuntimeError("from_gym: call reset() before step()")
        shape = (self.num_envs,) + tuple(self.single_action_space.shape)
        actions = self._check_actions(actions, shape, "actions")
        return self._run(lambda i, e: self._step_env(i, e, actions[i:i + 1], 1))

    def step_chunk(self, chunks, act_steps: int):
        """Action chunks (N, H, d): env i executes chunks[i, :act_steps] in order, stopping early
        when its episode ends (then reset: same-step autoreset). reward = the sum over the executed
        steps; info["steps_executed"] (N,) counts them. Same conventions as the native VecEnv."""
        if self._needs_reset:
            raise RuntimeError("from_gym: call reset() before step_chunk()")
        chunks = np.asarray(chunks)
        if chunks.ndim != 2 + len(self.single_action_space.shape):
            raise ValueError(f"from_gym: chunks have shape {chunks.shape}; expected (N, H) + "
                             f"{tuple(self.single_action_space.shape)}")
        shape = (self.num_envs, chunks.shape[1]) + tuple(self.single_action_space.shape)
        if not 1 <= int(act_steps) <= chunks.shape[1]:
            raise ValueError(f"from_gym: act_steps = {act_steps} must be in [1, chunk length {chunks.shape[1]}]")
        chunks = self._check_actions(chunks[:, :int(act_steps)], (shape[0], int(act_steps)) + shape[2:], "chunks")
        return self._run(lambda i, e: self._step_env(i, e, chunks[i], int(act_steps)))

    def _step_env(self, i, e, actions, n):
        """Up to n steps of env i; returns (obs, reward, term, trunc, info, final_obs or None, steps)."""
        total = 0.0
        for k in range(n):
            o, r, term, trunc, info = e.step(actions[k])
            total += float(r)
            self._returns[i] += float(r)
            self._lengths[i] += 1
            o = self._obs(i, o)
            if term or trunc:
                return o, total, bool(term), bool(trunc), info, k + 1
        return o, total, False, False, info, n

    def _run(self, step_env):
        n = self.num_envs
        obs = np.empty((n,) + self.single_observation_space.shape, self.dtype)
        final_obs = np.zeros_like(obs)
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        steps = np.zeros(n, dtype=np.int32)
        ep_r = np.zeros(n)
        ep_l = np.zeros(n, dtype=np.int32)
        infos = []
        for i, e in enumerate(self.envs):
            o, rewards[i], terminated[i], truncated[i], info, steps[i] = step_env(i, e)
            if terminated[i] or truncated[i]:
                final_obs[i] = o
                ep_r[i], ep_l[i] = self._returns[i], self._lengths[i]
                self._returns[i], self._lengths[i] = 0.0, 0
                o, _ = e.reset()
                o = self._obs(i, o)
            obs[i] = o
            infos.append(info)
        info = _merge_infos(infos, n)
        done = terminated | truncated
        info["final_obs"] = final_obs
        info["_final_obs"] = done
        info["episode"] = {"r": ep_r, "l": ep_l}
        info["_episode"] = done.copy()
        info["steps_executed"] = steps
        return obs, rewards, terminated, truncated, info

    def close(self):
        for e in self.envs:
            if hasattr(e, "close"):
                e.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _merge_infos(infos: Sequence[dict], n: int) -> dict:
    """Per-env info dicts -> {key: (N,) array, "_key": (N,) bool mask} (Gymnasium's vector layout)."""
    keys = []
    for info in infos:
        for k in info:
            if k not in keys:
                keys.append(k)
    out: Dict[str, Any] = {}
    for k in keys:
        present = np.array([k in info for info in infos])
        values = [info.get(k) for info in infos]
        sample = next(v for v, p in zip(values, present) if p)
        if isinstance(sample, (bool, np.bool_)):
            arr = np.array([bool(v) if p else False for v, p in zip(values, present)])
        elif isinstance(sample, (int, np.integer)) and not isinstance(sample, bool):
            arr = np.array([int(v) if p else 0 for v, p in zip(values, present)])
        elif isinstance(sample, (float, np.floating)):
            arr = np.array([float(v) if p else 0.0 for v, p in zip(values, present)])
        else:
            arr = np.empty(n, dtype=object)
            for i, (v, p) in enumerate(zip(values, present)):
                arr[i] = v if p else None
        out[k] = arr
        out["_" + k] = present
    return out


def from_gym(env_fns: Iterable[Callable[[], Any]], dtype=np.float32) -> FromGym:
    """Wraps envs following Gymnasium's single-env protocol (one constructor per env, e.g.
    ``[lambda: gymnasium.make("Pendulum-v1")] * 4``) into the vector API of ``make``."""
    return FromGym(env_fns, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Saving frames
# ---------------------------------------------------------------------------------------------
def save_png(path, frame: np.ndarray) -> None:
    """Writes an (H, W, 3) uint8 frame as a PNG (the library's own writer; no extra packages)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"save_png({path}): frame has dtype {frame.dtype}; expected uint8")
    _native.write_png(os.fspath(path), np.ascontiguousarray(frame))


def save_frames(directory, frames: Iterable[np.ndarray], prefix: str = "frame") -> List[str]:
    """Writes frames as an image sequence ``directory/prefix_0000.png``, ... (directory created);
    returns the paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        path = os.path.join(os.fspath(directory), f"{prefix}_{k:04d}.png")
        save_png(path, frame)
        paths.append(path)
    return paths
