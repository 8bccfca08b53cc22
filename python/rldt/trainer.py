"""The RLDT trainer for notebooks and scripts.

``rldt.Trainer`` wraps the C++ trainer (``rldt._core.Trainer``) and adds what a notebook needs:
configs from YAML files, an environment of the user's own (any Gymnasium-protocol env), a training
loop with per-iteration callbacks, evaluation, and an inference-only policy object.

Three ways to drive it:

* native MuJoCo tasks (``cfg.env`` such as ``"Hopper-v5"``): ``train_iteration()`` runs one whole
  iteration in C++;
* a Python env (``Trainer(cfg, env=...)``): a factory, a list of Gymnasium-protocol envs, or a
  vector env with ``step_chunk`` (``rldt.envs.make`` / ``rldt.envs.from_gym``);
  ``train_iteration()`` steps it from Python;
* ask/tell, for scripts that own their simulator loop (``Trainer(cfg, observation_space=...,
  action_space=...)``): ``act(obs)`` -> action chunks, ``observe(rewards, terminated, truncated,
  next_obs)``, and ``update()`` after ``n_steps`` of them.

Shapes: N = n_envs, O = observation size, H = horizon_steps, d = action size, E = act_steps.
Arrays are numpy float32 at the boundary.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _core
from . import envs as _envs

# An iteration callback: callback(trainer, metrics) -> optional bool; True stops `train`.
Callback = Callable[["Trainer", Dict[str, Any]], Optional[bool]]


def load_config(path: Union[str, os.PathLike], overrides: Optional[Sequence[str]] = None) -> _core.RunConfig:
    """Reads a YAML run config (the `rldt` command's format; keys equal the config field names),
    applies ``overrides`` ("key.path=value", e.g. "actor.svgd.svgd_temp=0.01") in order and
    validates it. Errors (rldt.ArgumentError) name the file or override and the key."""
    path = os.fspath(path)
    if overrides is not None and isinstance(overrides, str):
        raise TypeError("load_config: overrides must be a list of 'key.path=value' strings, not one string")
    return _core.load_run_config(path, list(overrides or []))


class Policy:
    """A trained policy for inference: ``act(obs)`` -> action chunks in env units.

    Shares the trainer's networks (it sees later training). ``act`` takes obs (O,) or (B, O) and
    returns (H, d) or (B, H, d) float32; execute the first ``act_steps`` actions of a chunk, then
    ask again. deterministic=True starts the sampler from x_0 = 0 (the evaluation mode)."""

    def __init__(self, core: _core.Trainer, act_steps: int):
        self._core = core
        self.act_steps = int(act_steps)
        self._calls = 0

    def act(self, obs, deterministic: bool = True, seed: Optional[int] = None) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        if seed is None:  # a fresh noise stream per call unless asked for one
            seed = self._calls
            self._calls += 1
        out = self._core.policy_action(obs[None] if single else obs, deterministic=deterministic, seed=int(seed))
        return out[0] if single else out


def _is_vector_env(env) -> bool:
    return hasattr(env, "num_envs") and hasattr(env, "step_chunk")


def _is_factory(env) -> bool:
    """A class or a callable that is not itself an env (envs have step)."""
    return isinstance(env, type) or (callable(env) and not hasattr(env, "step"))


def _space_bounds(space, what: str):
    low = np.asarray(getattr(space, "low", None), dtype=np.float64).reshape(-1)
    high = np.asarray(getattr(space, "high", None), dtype=np.float64).reshape(-1)
    if low.size == 0 or low.shape != high.shape:
        raise ValueError(f"Trainer: {what} must be a Box-like space with low/high arrays")
    bad = np.flatnonzero(~(np.isfinite(low) & np.isfinite(high)))
    if bad.size:
        j = int(bad[0])
        raise ValueError(f"Trainer: {what} bounds must be finite (policy actions in [-1, 1] are mapped onto them); "
                         f"entry {j} is [{low[j]}, {high[j]}]")
    return low, high


class Trainer:
    """RLDT trainer (ALGORITHM.md sections 5-6).

    Trainer(config, env=None, policy=None, callbacks=None, observation_space=None, action_space=None)

    config: a RunConfig (rldt.load_config; its base_policy is loaded when `policy` is None), an
        RldtTrainerConfig, or a path to a YAML file.
    env: None for the native task config.env; else a Python environment (see the module docstring).
        A factory (callable) is called n_envs times; a list must hold n_envs envs; a vector env must
        have num_envs == n_envs.
    policy: a FlowPolicy to fine-tune; None trains from scratch (or loads config.base_policy).
    callbacks: functions callback(trainer, metrics) called after every iteration; one returning True
        stops `train`.
    observation_space / action_space: for ask/tell without an env (Box-like: shape, low, high).
    """

    def __init__(self, config, env=None, policy: Optional[_core.FlowPolicy] = None,
                 callbacks: Optional[Iterable[Callback]] = None, observation_space=None, action_space=None):
        if isinstance(config, (str, os.PathLike)):
            config = load_config(config)
        if isinstance(config, _core.RunConfig):
            run = config
            if policy is None and run.base_policy:
                if not os.path.isfile(run.base_policy):
                    raise FileNotFoundError(f"{run.source or 'config'}: key 'base_policy': the policy file "
                                            f"'{run.base_policy}' does not exist (relative to {os.getcwd()})")
                policy = _core.FlowPolicy.load(run.base_policy)
                # A sampling-time setting: the config's value, where it sets one, replaces the
                # file's (as `rldt finetune` does); the architecture comes from the file.
                if "policy.final_action_clip" in run.explicit_keys:
                    policy.set_final_action_clip(run.trainer.policy.final_action_clip)
            cfg = run.trainer
        elif isinstance(config, _core.RldtTrainerConfig):
            cfg = config
        else:
            raise TypeError(f"Trainer: config must be a RunConfig, an RldtTrainerConfig or a YAML path; got "
                            f"{type(config).__name__}")
        self.callbacks: List[Callback] = list(callbacks or [])
        self._last_stop = False
        self._env = None
        self._env_factory = None
        self._obs = None
        if env is not None and (observation_space is not None or action_space is not None):
            raise ValueError("Trainer: pass either env or observation_space/action_space (ask/tell), not both")
        if env is None and observation_space is None and action_space is None:
            self._core = _core.Trainer(cfg, policy)
        else:
            if env is not None:
                vec = self._wrap_env(env, cfg)
                observation_space, action_space = vec.single_observation_space, vec.single_action_space
                name = getattr(vec, "task", None) or type(env).__name__
            else:
                if observation_space is None or action_space is None:
                    raise ValueError("Trainer: ask/tell needs both observation_space and action_space")
                name = "external"
            obs_shape = tuple(getattr(observation_space, "shape", ()))
            if len(obs_shape) != 1:
                raise ValueError(f"Trainer: observations must be flat vectors; observation_space.shape = {obs_shape}")
            if len(tuple(getattr(action_space, "shape", ()))) != 1:
                raise ValueError(f"Trainer: actions must be flat vectors; action_space.shape = "
                                 f"{tuple(getattr(action_space, 'shape', ()))}")
            low, high = _space_bounds(action_space, "action_space")
            self._core = _core.Trainer(cfg, int(obs_shape[0]), low.tolist(), high.tolist(), policy, str(name))
            if env is not None:
                self._env = vec
                obs, _ = vec.reset(seed=int(cfg.seed))
                self._obs = np.asarray(obs, dtype=np.float32)
        self.config = self._core.config

    # -- environments ------------------------------------------------------------------------------
    def _wrap_env(self, env, cfg):
        n = int(cfg.n_envs)
        if _is_vector_env(env):
            if int(env.num_envs) != n:
                raise ValueError(f"Trainer: the env has num_envs = {env.num_envs} but n_envs = {n} in the config; "
                                 f"set n_envs = {env.num_envs}")
            return env
        if hasattr(env, "num_envs"):
            raise ValueError("Trainer: vector envs need step_chunk (rldt.envs.make / rldt.envs.from_gym); pass a "
                             "factory of single envs instead, e.g. env=lambda: gymnasium.make('Hopper-v5')")
        if _is_factory(env):
            self._env_factory = env
            return _envs.from_gym([env] * n)
        envs = list(env) if isinstance(env, (list, tuple)) else [env]
        if len(envs) != n:
            raise ValueError(f"Trainer: env= gives {len(envs)} environment(s) but n_envs = {n} in the config; set "
                             f"n_envs = {len(envs)} or pass a factory (callable) to make n_envs copies")
        return _envs.from_gym([(lambda e=e: e) for e in envs])

    @property
    def env(self):
        """The Python vector env this trainer steps (None for native tasks and ask/tell)."""
        return self._env

    # -- training ----------------------------------------------------------------------------------
    def train_iteration(self) -> Dict[str, Any]:
        """One iteration of ALGORITHM.md section 6; returns its metrics (dict). Iterations with
        iteration % val_freq == 0 evaluate (deterministic actions, no updates). Calls the callbacks."""
        if self._env is None:
            if self._core.external_env:
                raise RuntimeError("Trainer: this trainer has no env to step (ask/tell); call act / observe / "
                                   "update, or construct it with env=")
            metrics = self._core.train_iteration()
        else:
            metrics = self._python_env_iteration()
        self._last_stop = any(bool(cb(self, metrics)) for cb in list(self.callbacks))
        return metrics

    def _python_env_iteration(self) -> Dict[str, Any]:
        if self._core.steps_collected:
            raise RuntimeError(f"Trainer: an ask/tell rollout is half collected ({self._core.steps_collected} of "
                               f"{self.config.n_steps} steps); finish it with observe/update first")
        E = int(self.config.act_steps)
        obs = self._obs
        for _ in range(int(self.config.n_steps)):
            chunks = self._core.act(obs)
            nxt, rewards, term, trunc, info = self._env.step_chunk(chunks, E)
            done = np.asarray(term, bool) | np.asarray(trunc, bool)
            true_next = np.where(done[:, None], info["final_obs"], nxt)
            self._core.observe(np.asarray(rewards, np.float32), term, trunc, true_next.astype(np.float32),
                               info.get("steps_executed"))
            obs = np.asarray(nxt, dtype=np.float32)
        self._obs = obs
        return self._core.update()

    def train(self, n_iterations: Optional[int] = None, callbacks: Optional[Iterable[Callback]] = None,
              verbose: bool = False) -> List[Dict[str, Any]]:
        """Runs `n_iterations` iterations (default: up to config.n_train_itr in all), calling
        `callbacks` (in addition to the trainer's own) after each; stops early when one returns True.
        Returns the metrics of every iteration run."""
        if n_iterations is None:
            n_iterations = max(0, int(self.config.n_train_itr) - self.iteration)
        extra = list(callbacks or [])
        history = []
        for _ in range(int(n_iterations)):
            m = self.train_iteration()
            history.append(m)
            stop = self._last_stop or any(bool(cb(self, m)) for cb in extra)
            if verbose:
                print(_progress_line(m), flush=True)
            if stop:
                break
        return history

    # -- ask/tell ----------------------------------------------------------------------------------
    def act(self, obs) -> np.ndarray:
        """Action chunks (N, H, d) float32 in env units for obs (N, O); execute the first act_steps
        of each, then call observe. Deterministic on evaluation iterations (see eval_iteration)."""
        return self._core.act(obs)

    def observe(self, rewards, terminated, truncated, next_obs, steps=None) -> None:
        """Outcome of the last act: rewards (N,) summed over the executed steps, terminated and
        truncated (N,), next_obs (N, O): the true next states (an ended episode's last observation,
        not the reset one), steps (N,) env steps executed (default act_steps)."""
        self._core.observe(rewards, terminated, truncated, next_obs, steps)

    def update(self) -> Dict[str, Any]:
        """After n_steps act/observe pairs: the iteration's critic and actor updates; returns its
        metrics (dict) and calls the callbacks."""
        metrics = self._core.update()
        self._last_stop = any(bool(cb(self, metrics)) for cb in list(self.callbacks))
        return metrics

    @property
    def eval_iteration(self) -> bool:
        """Whether the current iteration is an evaluation (deterministic actions, no updates)."""
        return self._core.eval_iteration

    @property
    def steps_collected(self) -> int:
        return self._core.steps_collected

    # -- evaluation and inference ------------------------------------------------------------------
    def policy(self) -> Policy:
        """The current policy for inference (shares the trainer's networks)."""
        return Policy(self._core, int(self.config.act_steps))

    @property
    def flow_policy(self) -> _core.FlowPolicy:
        """The FlowPolicy being trained (policy-space actions in [-1, 1]; shared, not a copy)."""
        return self._core.policy

    def evaluate(self, n_episodes: int = 10, env=None, seed: int = 12345, deterministic: bool = True,
                 max_chunks: Optional[int] = None) -> Dict[str, Any]:
        """Runs `n_episodes` whole episodes (one per env copy, so short episodes are not
        over-counted) with the current policy and returns {"mean_return", "std_return", "returns",
        "lengths", "mean_length"}. The training envs and random streams are untouched.

        env: a factory (callable) or vector env to evaluate on; default: new copies of the native
        task, or of the factory this trainer was built with."""
        n = int(n_episodes)
        if n < 1:
            raise ValueError(f"evaluate: n_episodes = {n_episodes} must be >= 1")
        if env is None:
            if self._env is None and not self._core.external_env:
                cfg = self.config
                env = _envs.make(cfg.env, num_envs=n, seed=seed, num_threads=max(1, int(cfg.env_threads) or 1),
                                 **dict(cfg.env_options))
            elif self._env_factory is not None:
                env = _envs.from_gym([self._env_factory] * n)
            else:
                raise ValueError("evaluate: this trainer's envs cannot be copied; pass env= (a factory or a "
                                 "vector env)")
        elif not _is_vector_env(env):
            if _is_factory(env):
                env = _envs.from_gym([env] * n)
            else:
                raise ValueError("evaluate: env must be a factory (callable) or a vector env with step_chunk")
        m = int(env.num_envs)
        E = int(self.config.act_steps)
        obs, _ = env.reset(seed=seed)
        returns = np.full(m, np.nan)
        lengths = np.zeros(m, dtype=np.int64)
        running = np.zeros(m)
        running_len = np.zeros(m, dtype=np.int64)
        done_once = np.zeros(m, dtype=bool)
        limit = int(max_chunks) if max_chunks is not None else 100_000
        pol = self.policy()
        k = 0
        while not done_once.all() and k < limit:
            chunks = pol.act(obs, deterministic=deterministic, seed=seed + k)
            obs, rewards, term, trunc, info = env.step_chunk(chunks, E)
            running += np.where(done_once, 0.0, rewards)
            running_len += np.where(done_once, 0, info.get("steps_executed", np.full(m, E)))
            ended = (np.asarray(term, bool) | np.asarray(trunc, bool)) & ~done_once
            returns[ended] = running[ended]
            lengths[ended] = running_len[ended]
            done_once |= ended
            k += 1
        if not done_once.all():
            raise RuntimeError(f"evaluate: {int((~done_once).sum())} episode(s) did not end within {limit} chunks")
        rs = returns[:n]
        return {"mean_return": float(rs.mean()), "std_return": float(rs.std()), "returns": rs,
                "lengths": lengths[:n], "mean_length": float(lengths[:n].mean())}

    # -- state -------------------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes a checkpoint (atomically) that `load` restores exactly (docs/checkpoints.md).

        Native tasks: everything, envs included. With a Python env (env=...) or ask/tell, the env
        is the caller's: its state and current observation are not in the checkpoint."""
        if not hasattr(self._core, "save"):
            raise NotImplementedError("Trainer.save: checkpoints are not available in this build")
        self._core.save(os.fspath(path))

    def load(self, path: Union[str, os.PathLike]) -> None:
        """Restores a checkpoint written by `save` (same config)."""
        if not hasattr(self._core, "load"):
            raise NotImplementedError("Trainer.load: checkpoints are not available in this build")
        self._core.load(os.fspath(path))

    def save_policy(self, path: Union[str, os.PathLike]) -> None:
        """Writes the policy alone (FlowPolicy file: loadable for inference, or as a base_policy)."""
        self._core.policy.save(os.fspath(path))

    # -- inspection --------------------------------------------------------------------------------
    @property
    def iteration(self) -> int:
        return self._core.iteration

    @property
    def env_steps(self) -> int:
        return self._core.env_steps

    @property
    def buffer_size(self) -> int:
        return self._core.buffer_size

    @property
    def rollout_groups(self) -> int:
        """The rollout layout in effect: config.rollout_groups, or what its 0 (automatic) chose (1 with
        rollout_inference 'torch'; one group per env thread with 'packed'); 1 when the trainer does
        not step the envs itself."""
        return self._core.rollout_groups

    def last_rollout(self) -> Dict[str, np.ndarray]:
        """The last iteration's trajectories: obs (N, T, O), chunks (N, T, E, d), rewards,
        terminated, truncated (N, T), next_obs (N, T, O)."""
        return self._core.last_rollout()

    def __repr__(self):
        if not hasattr(self, "_core"):
            return "rldt.Trainer(<not constructed>)"
        kind = "python env" if self._env is not None else ("ask/tell" if self._core.external_env else "native")
        return (f"rldt.Trainer(env={self.config.env!r} ({kind}), n_envs={self.config.n_envs}, "
                f"iteration={self.iteration})")


def _progress_line(m: Dict[str, Any]) -> str:
    def f(x, fmt="{:.3g}"):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

    kind = "eval " if m["eval"] else "train"
    return (f"itr {m['iteration']:4d} {kind} steps {m['env_steps']:8d} return {f(m['episode_return'], '{:.1f}')} "
            f"critic {f(m['critic_loss'])} actor {f(m['actor_loss'])}")
