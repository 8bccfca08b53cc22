#!/usr/bin/env python3
"""RLDT on a 2-D contextual bandit with two equally good modes.

A flow policy is pretrained by flow matching on broad N(0, I) actions, then fine-tuned with the SVGD
transport field against a critic ensemble fitted to the bandit's rewards. Prints a before/after
table (mean reward, share of samples in each optimal mode) and saves a PNG of the action samples
over the reward contours.

    scripts/dev main                         # runs this with configs/bandit_demo.yaml
    python examples/bandit_demo.py --config configs/bandit_demo.yaml --out outputs/bandit

Everything numeric happens in the C++ library (rldt._core); this script only orchestrates: it is
also a worked example of the Python API.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import yaml

import rldt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "bandit_demo.yaml")


class ConfigError(ValueError):
    pass


def _section(cfg: dict, name: str, path: str, allowed: set[str] | None = None) -> dict:
    sec = cfg.get(name)
    if not isinstance(sec, dict):
        raise ConfigError(f"{path}: section '{name}' is missing or not a mapping")
    if allowed is not None:
        unknown = set(sec) - allowed
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} in '{name}'; valid: {sorted(allowed)}")
    return sec


BANDIT_KEYS = {"sigma", "mode_x", "mode_y", "mode_y_slope", "action_bound"}
DEMO_KEYS = {"pretrain_steps", "pretrain_batch", "contexts_per_iteration", "exploration_noise",
             "buffer_iterations", "critic_steps", "critic_batch", "critic_warmup_iterations",
             "actor_steps", "actor_states", "eval_every", "eval_samples", "target_fraction",
             "max_iterations_to_reach", "hold_factor"}


STRUCT_SECTIONS = {"policy", "critic", "actor", "sac"}


def apply_override(cfg: dict, item: str, path: str) -> None:
    """`section.key=value` (value parsed as YAML) into the raw config mapping."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form key.sub=value")
    key, value = item.split("=", 1)
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            raise ConfigError(f"override '{item}': '{p}' is not a section of {path}")
        node = node[p]
    # Keys of the config-struct sections may be absent from the file (they keep the struct's default);
    # the struct rejects a key it does not have, naming it.
    if parts[-1] not in node and parts[0] not in STRUCT_SECTIONS:
        raise ConfigError(f"override '{item}': unknown key '{key}' in {path}")
    node[parts[-1]] = yaml.safe_load(value)


def load_config(path: str, overrides: list[str] | None = None) -> dict:
    """Reads and validates the demo config; errors name the file and the key."""
    with open(path) as f:
        cfg = yaml.safe_load(f)
    for item in overrides or []:
        if isinstance(cfg, dict):
            apply_override(cfg, item, path)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(cfg) - {"seed", "bandit", "policy", "critic", "actor", "demo", "sac"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    bandit = _section(cfg, "bandit", path, BANDIT_KEYS)
    demo = _section(cfg, "demo", path, DEMO_KEYS)
    missing = (BANDIT_KEYS - set(bandit)) | (DEMO_KEYS - set(demo))
    if missing:
        raise ConfigError(f"{path}: missing key(s) {sorted(missing)}")
    for key in ("policy", "critic", "actor"):
        _section(cfg, key, path)
    try:  # the config structs reject unknown keys, wrong types and bad values, naming the field
        cfg["_policy"] = rldt.FlowPolicyConfig(**cfg["policy"])
        cfg["_critic"] = rldt.CriticConfig(**cfg["critic"])
        cfg["_actor"] = rldt.ActorUpdateConfig(**cfg["actor"])
        for c in (cfg["_policy"], cfg["_critic"], cfg["_actor"]):
            c.validate()
        if "sac" in cfg:  # optional: the SAC baseline of bench/multimodality.py
            cfg["_sac"] = rldt.SacConfig(**_section(cfg, "sac", path))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from e
    return cfg


@dataclass
class Bandit:
    """r(s, a) = max_m exp(−||a − c_m(s)||² / (2σ²)), c_{1,2}(s) = (∓mode_x, mode_y + slope·s)."""
    sigma: float
    mode_x: float
    mode_y: float
    mode_y_slope: float
    action_bound: float
    optimum: float = 1.0

    def centers(self, s: np.ndarray) -> np.ndarray:  # s (N, 1) -> (2, N, 2)
        y = self.mode_y + self.mode_y_slope * s[:, 0]
        return np.stack([np.stack([-self.mode_x + 0 * y, y], -1), np.stack([self.mode_x + 0 * y, y], -1)])

    def reward(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:  # (N, 1), (N, 2) -> (N,)
        d2 = ((a[None] - self.centers(s)) ** 2).sum(-1)
        return np.exp(-d2 / (2 * self.sigma ** 2)).max(0).astype(np.float32)

    def mode_shares(self, s: np.ndarray, a: np.ndarray) -> tuple[float, float]:
        """Fraction of samples within 2σ of each mode."""
        d = np.sqrt(((a[None] - self.centers(s)) ** 2).sum(-1))
        return float((d[0] < 2 * self.sigma).mean()), float((d[1] < 2 * self.sigma).mean())


@dataclass
class Eval:
    iteration: int
    reward: float
    share_left: float
    share_right: float


@dataclass
class Result:
    before: Eval
    history: list[Eval] = field(default_factory=list)
    reached_at: int | None = None
    seconds: float = 0.0
    samples_before: np.ndarray | None = None
    samples_after: np.ndarray | None = None

    @property
    def final(self) -> Eval:
        return self.history[-1]

    def held(self, target: float) -> tuple[bool, float]:
        """Whether every evaluation after reaching stayed at or above target; the minimum seen."""
        if self.reached_at is None:
            return False, float("nan")
        after = [e.reward for e in self.history if e.iteration >= self.reached_at]
        return min(after) >= target, min(after)


def evaluate(policy, bandit, rng, n, iteration) -> Eval:
    s = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    a = policy.act(s).reshape(n, 2)
    left, right = bandit.mode_shares(s, a)
    return Eval(iteration, float(bandit.reward(s, a).mean()), left, right)


def run(cfg: dict, log=print) -> Result:
    seed = int(cfg.get("seed", 0))
    d = cfg["demo"]
    bandit = Bandit(**cfg["bandit"])
    rng = np.random.default_rng(seed)
    t0 = time.time()

    # 1. Pretrain on a broad dataset: N(0, I) actions clipped to the bound, any context.
    policy = rldt.FlowPolicy(cfg["_policy"], seed=seed)
    for _ in range(d["pretrain_steps"]):
        s = rng.uniform(-1, 1, size=(d["pretrain_batch"], 1)).astype(np.float32)
        a = np.clip(rng.standard_normal((d["pretrain_batch"], 1, 2)), -bandit.action_bound, bandit.action_bound)
        policy.bc_update(s, a.astype(np.float32))
    policy.load_ema_into_actor()
    policy.refresh_reference()

    critic = rldt.CriticEnsemble(cfg["_critic"], seed=seed)
    updater = rldt.ActorUpdater(policy, cfg["_actor"], seed=seed)
    s0 = np.zeros((1000, 1), np.float32)
    result = Result(before=evaluate(policy, bandit, rng, d["eval_samples"], 0),
                    samples_before=policy.act(s0).reshape(-1, 2))
    log(f"pretrained: mean reward {result.before.reward:.3f}, mode shares "
        f"{result.before.share_left:.2f} / {result.before.share_right:.2f} ({time.time() - t0:.0f} s)")

    target = d["target_fraction"] * bandit.optimum
    buf_s, buf_a, buf_r = [], [], []
    stop_at = d["max_iterations_to_reach"]
    it = 0
    while it <= stop_at:
        # 2. Collect: the policy's actions plus exploration noise, clipped to the bound.
        n = d["contexts_per_iteration"]
        s = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
        a = policy.act(s).reshape(n, 2) + d["exploration_noise"] * rng.standard_normal((n, 2))
        a = np.clip(a, -bandit.action_bound, bandit.action_bound).astype(np.float32)
        buf_s.append(s), buf_a.append(a), buf_r.append(bandit.reward(s, a))
        del buf_s[:-d["buffer_iterations"]], buf_a[:-d["buffer_iterations"]], buf_r[:-d["buffer_iterations"]]
        S, A, R = np.concatenate(buf_s), np.concatenate(buf_a), np.concatenate(buf_r)
        # 3. Critic: one-step episodes, so the target is the reward itself.
        for _ in range(d["critic_steps"]):
            idx = rng.integers(0, len(S), size=d["critic_batch"])
            critic.update(S[idx].reshape(-1, 1, 1), A[idx].reshape(-1, 1, 1, 2), R[idx].reshape(-1, 1))
        # 4. Actor: transport toward high Q; then the reference follows the actor.
        if it >= d["critic_warmup_iterations"]:
            for _ in range(d["actor_steps"]):
                states = rng.uniform(-1, 1, size=(d["actor_states"], 1)).astype(np.float32)
                updater.update(states, critic=critic)
        policy.refresh_reference()

        if it % d["eval_every"] == 0 and it > 0:
            e = evaluate(policy, bandit, rng, d["eval_samples"], it)
            result.history.append(e)
            log(f"iter {it:4d}  reward {e.reward:.3f}  shares {e.share_left:.2f} / {e.share_right:.2f}  "
                f"({time.time() - t0:.0f} s)")
            if result.reached_at is None and e.reward >= target:
                result.reached_at = it
                stop_at = it * (1 + d["hold_factor"])
                log(f"reached {d['target_fraction']:.0%} of the optimum at iteration {it}; "
                    f"training on to iteration {stop_at} to check that it holds")
        it += 1
    result.samples_after = policy.act(s0).reshape(-1, 2)
    result.seconds = time.time() - t0
    return result


def table(result: Result, target: float) -> str:
    rows = [("pretrained", result.before)]
    if result.reached_at is not None:
        rows.append((f"reached (iter {result.reached_at})",
                     next(e for e in result.history if e.iteration == result.reached_at)))
    rows.append((f"final (iter {result.final.iteration})", result.final))
    out = [f"{'':24s} {'mean reward':>12s} {'% of optimum':>13s} {'left mode':>10s} {'right mode':>11s}"]
    for name, e in rows:
        out.append(f"{name:24s} {e.reward:12.3f} {100 * e.reward:12.1f}% {e.share_left:10.2f} {e.share_right:11.2f}")
    held, low = result.held(target)
    if result.reached_at is None:
        out.append(f"did not reach {target:.2f} within the iteration budget")
    else:
        out.append(f"held ≥ {target:.2f} from iteration {result.reached_at} to {result.final.iteration}: "
                   f"{'yes' if held else 'no'} (lowest {low:.3f})")
    return "\n".join(out)


def plot(result: Result, bandit: Bandit, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = bandit.action_bound
    g = np.linspace(-b, b, 200, dtype=np.float32)
    X, Y = np.meshgrid(g, g)
    A = np.stack([X.ravel(), Y.ravel()], -1)
    Z = bandit.reward(np.zeros((len(A), 1), np.float32), A).reshape(X.shape)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharex=True, sharey=True)
    for ax, pts, title in ((axes[0], result.samples_before, "pretrained"),
                           (axes[1], result.samples_after, f"after RLDT (iteration {result.final.iteration})")):
        ax.contourf(X, Y, Z, levels=12, cmap="Greens")
        ax.scatter(pts[:, 0], pts[:, 1], s=3, c="tab:red", alpha=0.5)
        ax.set_title(f"{title}: context s = 0")
        ax.set_xlabel("a[0]")
        ax.set_aspect("equal")
    axes[0].set_ylabel("a[1]")
    fig.suptitle("Action samples over the reward landscape")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--out", default=os.path.join(ROOT, "outputs", "bandit"))
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set actor.svgd.q_norm=q_grad (repeatable)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except (OSError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.seed is not None:
        cfg["seed"] = args.seed
    os.makedirs(args.out, exist_ok=True)
    result = run(cfg)
    target = cfg["demo"]["target_fraction"]
    print()
    print(table(result, target))
    png = os.path.join(args.out, "bandit_samples.png")
    plot(result, Bandit(**cfg["bandit"]), png)
    print(f"\nsamples plot: {png}   ({result.seconds:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
