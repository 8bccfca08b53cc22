#!/usr/bin/env python3
"""Does RLDT fine-tuning keep both modes of the two-mode contextual bandit? (issue 5, item 5)

Every run is examples/bandit_demo.py's run(cfg) (configs/bandit_demo.yaml: flow matching on broad
N(0, I) actions, then RLDT against a critic ensemble fitted to the rewards) with a fixed number of
fine-tuning iterations: demo.max_iterations_to_reach = --iterations and demo.target_fraction = 2
(unreachable; the optimum is 1), so no run stops early and all are compared at the same iteration.

1. Methods, seeds 0..N-1 (--seeds): RLDT as published (field normal, svgd_temp 1e-3, 16
   particles), the `delta` ablation (phi = grad Q: no kernel, no repulsion), and SAC from scratch
   (rldt.Sac, a tanh-Gaussian actor; the config's `sac` section; the same contexts per iteration
   and iterations; its samples are the stochastic policy's). Written: a PNG of the action samples
   for context s = 0 before and after fine-tuning (one panel per method, the first seed), a PNG of
   reward and smaller-mode share over the iterations, and the table.
2. Sweep, seeds 0..M-1 (--sweep-seeds): svgd_temp (--temps) x n_particles (--particles), field
   normal. Written: final reward against the smaller mode's share, one point per run (colour:
   temperature, marker: particle count; the delta runs in grey), and the table.

Numbers are the last evaluation of each run (2000 contexts s ~ U[-1, 1]): mean reward (optimum
1), the share of samples within 2 sigma of each mode, and the smaller of the two shares; over
seeds, mean and 95% Student-t interval. Those shares pool all contexts, so a policy that picks one
mode for s < 0 and the other for s > 0 would look balanced; the column "smaller share at s = 0"
is the same measure on 1000 samples of the one context s = 0, where every sample sees the same two
modes.

    # the full run of docs/multimodality.md (~30 runs of ~45 s on one core; the 3 SAC runs 5-10 min each)
    OMP_NUM_THREADS=1 PYTHONPATH=python .venv/bin/python bench/multimodality.py \\
        --out runs/multimodality --seeds 3 --sweep-seeds 2 --skip-existing
    # rebuild the tables and plots from the per-run JSONs only
    PYTHONPATH=python .venv/bin/python bench/multimodality.py --out runs/multimodality --report-only
    # a tiny version (tests/python/test_multimodality.py)
    PYTHONPATH=python .venv/bin/python bench/multimodality.py --quick --out /tmp/multimodality

Outputs in OUT: runs/<name>.json (one per run, written when it finishes; --skip-existing reuses
the ones whose overrides match, so an interrupted sweep resumes), results.json, results.md,
multimodality_samples.png, multimodality_shares.png, multimodality_sweep.png.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "bandit_demo.yaml")
KEEP_SHARE = 0.25       # "both modes kept": the smaller mode holds at least this share ...
REWARD_FRACTION = 0.9   # ... at a mean reward of at least this fraction of the best setting's
PUBLISHED_TEMP = 1e-3
PUBLISHED_PARTICLES = 16

# Only the schedule shrinks in --quick; the algorithm's settings stay those of the config.
QUICK_OVERRIDES = ["demo.pretrain_steps=100", "demo.contexts_per_iteration=64", "demo.critic_steps=4",
                   "demo.actor_steps=2", "demo.critic_warmup_iterations=1", "demo.eval_every=3",
                   "demo.eval_samples=400", "sac.learning_starts=64", "sac.batch_size=64"]

# Two-sided 95% Student-t quantiles for 1..30 degrees of freedom.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def load_demo():
    """examples/bandit_demo.py as a module (registered in sys.modules: its dataclasses need it)."""
    if "bandit_demo" in sys.modules:
        return sys.modules["bandit_demo"]
    spec = importlib.util.spec_from_file_location("bandit_demo", os.path.join(ROOT, "examples", "bandit_demo.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bandit_demo"] = mod
    spec.loader.exec_module(mod)
    return mod


def mean_ci(values) -> tuple[float, float]:
    """(mean, half width of the 95% t-interval); the half width is nan for fewer than two values."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan
    t = _T975[len(v) - 2] if len(v) - 1 <= len(_T975) else 1.96
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(len(v)))


def fmt_ci(values, digits: int = 3) -> str:
    m, h = mean_ci(values)
    if math.isnan(m):
        return "–"
    return f"{m:.{digits}f}" if math.isnan(h) else f"{m:.{digits}f} ± {h:.{digits}f}"


@dataclass(frozen=True)
class Spec:
    """One run: the SVGD field, temperature, particle count and seed."""
    field: str
    temp: float
    particles: int
    seed: int

    @property
    def method(self) -> str:
        return {"delta": "delta", "sac": "sac"}.get(self.field, "rldt")

    @property
    def name(self) -> str:
        if self.field == "sac":  # no flow policy: temperature and particles do not enter
            return f"sac_seed{self.seed}"
        if self.field == "delta":  # the temperature does not enter the delta field
            return f"delta_P{self.particles}_seed{self.seed}"
        return f"{self.field}_T{self.temp:g}_P{self.particles}_seed{self.seed}"

    def overrides(self, base: list[str]) -> list[str]:
        if self.field == "sac":
            return base + [f"seed={self.seed}"]
        return base + [f"actor.svgd.field={self.field}", f"actor.svgd.svgd_temp={self.temp!r}",
                       f"actor.n_particles={self.particles}", f"seed={self.seed}"]


class SacSampler:
    """A Sac learner seen through the demo's policy interface: act(s) gives stochastic env actions."""

    def __init__(self, sac):
        self.sac = sac

    def act(self, s: np.ndarray) -> np.ndarray:
        return self.sac.env_action(s, deterministic=False)


def run_sac(cfg: dict, log=print):
    """SAC from scratch on the demo's bandit, on the schedule of demo.run: each iteration draws
    demo.contexts_per_iteration contexts, acts (uniform random actions until sac.learning_starts
    samples, then policy samples), stores (s, a, r) and takes sac.utd updates per stored sample on
    batches from the whole buffer (one-step episodes: terminated = 1, so the critic's target is r).
    Evaluations as in demo.run. Returns the demo's Result."""
    import rldt

    demo = load_demo()
    seed = int(cfg.get("seed", 0))
    d, sc = cfg["demo"], cfg.get("_sac")
    if sc is None:
        raise ValueError("the bandit config has no 'sac' section (configs/bandit_demo.yaml has one)")
    if sc.obs_dim != 1 or sc.action_dim != 2:
        raise ValueError(f"sac.obs_dim / sac.action_dim must be 1 / 2 for the bandit, got {sc.obs_dim} / "
                         f"{sc.action_dim}")
    bandit = demo.Bandit(**cfg["bandit"])
    bound = bandit.action_bound
    rng = np.random.default_rng(seed)
    t0 = time.time()
    sac = rldt.Sac(sc, seed=seed, action_low=[-bound, -bound], action_high=[bound, bound])
    policy = SacSampler(sac)
    s0 = np.zeros((1000, 1), np.float32)
    result = demo.Result(before=demo.evaluate(policy, bandit, rng, d["eval_samples"], 0),
                         samples_before=policy.act(s0))
    log(f"untrained: mean reward {result.before.reward:.3f}, mode shares "
        f"{result.before.share_left:.2f} / {result.before.share_right:.2f}")
    S, U, R = (np.zeros((0, 1), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32))
    owed = 0.0  # fractional updates carried to the next iteration
    for it in range(d["max_iterations_to_reach"] + 1):
        n = d["contexts_per_iteration"]
        s = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
        if len(S) < sc.learning_starts:
            u = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        else:
            u = sac.act(s, deterministic=False)
        S, U = np.concatenate([S, s])[-sc.buffer_size:], np.concatenate([U, u])[-sc.buffer_size:]
        R = np.concatenate([R, bandit.reward(s, bound * u)])[-sc.buffer_size:]
        if len(S) >= sc.learning_starts:
            owed += sc.utd * n
            ones = np.ones(sc.batch_size, np.float32)
            for _ in range(int(owed)):
                idx = rng.integers(0, len(S), size=sc.batch_size)
                sac.update(S[idx], U[idx], R[idx], S[idx], ones)
            owed -= int(owed)
        if it % d["eval_every"] == 0 and it > 0:
            e = demo.evaluate(policy, bandit, rng, d["eval_samples"], it)
            result.history.append(e)
            log(f"iter {it:4d}  reward {e.reward:.3f}  shares {e.share_left:.2f} / {e.share_right:.2f}  "
                f"alpha {sac.alpha:.3g}  ({time.time() - t0:.0f} s)")
    result.samples_after = policy.act(s0)
    result.seconds = time.time() - t0
    return result


def _eval_dict(e) -> dict:
    return {"iteration": e.iteration, "reward": e.reward, "share_left": e.share_left, "share_right": e.share_right}


def run_one(spec: Spec, config: str, base: list[str], path: str, skip_existing: bool) -> dict:
    """Runs one setting (or reuses its JSON) and returns the record written to `path`."""
    overrides = spec.overrides(base)
    if skip_existing and os.path.exists(path):
        with open(path) as f:
            rec = json.load(f)
        if rec.get("overrides") == overrides:
            print(f"[{spec.name}] skipped (finished earlier)", flush=True)
            return rec
        print(f"[{spec.name}] {path} was run with other overrides; running again", flush=True)
    demo = load_demo()
    cfg = demo.load_config(config, overrides)
    cpu0 = time.process_time()

    def log(line):
        print(f"[{spec.name}] {line}", flush=True)

    result = run_sac(cfg, log) if spec.field == "sac" else demo.run(cfg, log=log)
    bandit = demo.Bandit(**cfg["bandit"])
    rec = {
        "name": spec.name, "method": spec.method, "field": spec.field, "svgd_temp": spec.temp,
        "n_particles": spec.particles, "seed": spec.seed, "config": os.path.relpath(config, ROOT),
        "overrides": overrides, "seconds_wall": result.seconds, "seconds_cpu": time.process_time() - cpu0,
        "before": _eval_dict(result.before), "final": _eval_dict(result.final),
        "history": [_eval_dict(e) for e in result.history],
        "samples_context": 0.0,
        "s0_shares": list(bandit.mode_shares(np.zeros((len(result.samples_after), 1), np.float32),
                                             result.samples_after)),
        "samples_before": np.round(result.samples_before, 4).tolist(),
        "samples_after": np.round(result.samples_after, 4).tolist(),
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, path)  # a run interrupted while writing leaves no half JSON behind
    f = rec["final"]
    print(f"[{spec.name}] final reward {f['reward']:.3f}, shares {f['share_left']:.2f} / {f['share_right']:.2f} "
          f"({rec['seconds_wall']:.0f} s wall, {rec['seconds_cpu']:.0f} s cpu)", flush=True)
    return rec


def smaller(rec: dict) -> float:
    return min(rec["final"]["share_left"], rec["final"]["share_right"])


def smaller_s0(rec: dict) -> float:
    """The smaller mode's share among the final samples at context s = 0 (nan in older JSONs)."""
    return min(rec["s0_shares"]) if "s0_shares" in rec else float("nan")


def summarize(recs: list[dict]) -> dict:
    rewards = [r["final"]["reward"] for r in recs]
    small = [smaller(r) for r in recs]
    return {
        "n": len(recs), "seeds": [r["seed"] for r in recs],
        "reward": mean_ci(rewards), "share_left": mean_ci([r["final"]["share_left"] for r in recs]),
        "share_right": mean_ci([r["final"]["share_right"] for r in recs]), "smaller_share": mean_ci(small),
        "smaller_share_s0": mean_ci([smaller_s0(r) for r in recs]),
        "per_seed_reward": rewards, "per_seed_smaller_share": small,
        "seeds_keeping_both": sum(s >= KEEP_SHARE for s in small),
        "seconds_wall": float(np.mean([r["seconds_wall"] for r in recs])),
    }


def _row(label: str, recs: list[dict]) -> str:
    s = summarize(recs)
    per_seed = ", ".join(f"{r['final']['reward']:.2f}/{smaller(r):.2f}" for r in recs)
    return (f"| {label} | {s['n']} | {fmt_ci([r['final']['reward'] for r in recs])} | "
            f"{fmt_ci([r['final']['share_left'] for r in recs], 2)} | "
            f"{fmt_ci([r['final']['share_right'] for r in recs], 2)} | {fmt_ci([smaller(r) for r in recs], 2)} | "
            f"{fmt_ci([smaller_s0(r) for r in recs], 2)} | "
            f"{s['seeds_keeping_both']}/{s['n']} | {per_seed} |")


HEADER = ("| {first} | seeds | final reward | left-mode share | right-mode share | smaller-mode share | "
          "smaller share at s = 0 | "
          f"seeds with smaller ≥ {KEEP_SHARE} | per seed: reward/smaller |\n|" + "---|" * 9)


def report(methods: dict[str, list[dict]], sweep: dict[tuple[float, int], list[dict]], iterations: int,
           out: str, base: list[str]) -> dict:
    """Writes results.md and results.json; returns the summary."""
    lines = [f"# Multimodality on the two-mode bandit ({iterations} fine-tuning iterations)", "",
             "Final evaluation of each run; mean ± 95% t-interval over seeds. Overrides on every run: "
             f"`{' '.join(base)}`.", "", "## Methods (published: field normal, svgd_temp "
             f"{PUBLISHED_TEMP:g}, {PUBLISHED_PARTICLES} particles)", "",
             HEADER.format(first="method"), *[_row(m, recs) for m, recs in methods.items() if recs], ""]
    summary = {"iterations": iterations, "overrides": base, "keep_share": KEEP_SHARE,
               "reward_fraction": REWARD_FRACTION,
               "methods": {m: summarize(recs) for m, recs in methods.items() if recs}, "sweep": []}
    if sweep:
        lines += ["## Sweep: svgd_temp × n_particles (field normal)", "",
                  HEADER.format(first="svgd_temp, particles")]
        for (temp, parts), recs in sorted(sweep.items()):
            lines.append(_row(f"{temp:g}, {parts}", recs))
            summary["sweep"].append({"svgd_temp": temp, "n_particles": parts, **summarize(recs)})
        best = max(s["reward"][0] for s in summary["sweep"])
        keep = [s for s in summary["sweep"] if s["reward"][0] >= REWARD_FRACTION * best
                and s["seeds_keeping_both"] == s["n"]]
        summary["best_mean_reward"] = best
        summary["keep_both_at_little_cost"] = [(s["svgd_temp"], s["n_particles"]) for s in keep]
        lines += ["", f"Best mean final reward in the sweep: {best:.3f}. Settings where every seed keeps "
                  f"a smaller-mode share ≥ {KEEP_SHARE} at a mean reward ≥ {REWARD_FRACTION} × best: "
                  + (", ".join(f"svgd_temp {t:g} with {p} particles" for t, p in summary["keep_both_at_little_cost"])
                     or "none") + "."]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_samples(methods: dict[str, list[dict]], bandit, path: str) -> None:
    plt = _plt()
    firsts = {m: recs[0] for m, recs in methods.items() if recs}
    b = bandit.action_bound
    g = np.linspace(-b, b, 160, dtype=np.float32)
    X, Y = np.meshgrid(g, g)
    A = np.stack([X.ravel(), Y.ravel()], -1)
    Z = bandit.reward(np.zeros((len(A), 1), np.float32), A).reshape(X.shape)
    fig, axes = plt.subplots(1, len(firsts), figsize=(4.6 * len(firsts), 4.6), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (m, rec) in zip(axes[0], firsts.items()):
        ax.contourf(X, Y, Z, levels=10, cmap="Greens")
        before, after = np.asarray(rec["samples_before"]), np.asarray(rec["samples_after"])
        ax.scatter(before[:, 0], before[:, 1], s=2, c="tab:blue", alpha=0.35,
                   label="untrained" if m == "sac" else "pretrained")
        ax.scatter(after[:, 0], after[:, 1], s=2, c="tab:red", alpha=0.5,
                   label=f"after {rec['final']['iteration']} iterations")
        left, right = bandit.mode_shares(np.zeros((len(after), 1), np.float32), after)
        ax.set_title(f"{m} (seed {rec['seed']}): shares at s=0 {left:.2f} / {right:.2f}", fontsize=9)
        ax.set_xlabel("a[0]")
        ax.set_aspect("equal")
        ax.legend(loc="lower center", fontsize=7, markerscale=4)
    axes[0][0].set_ylabel("a[1]")
    fig.suptitle("Action samples at context s = 0 over the reward landscape", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_shares(methods: dict[str, list[dict]], path: str) -> None:
    plt = _plt()
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    colors = {"rldt": "tab:red", "delta": "tab:gray", "sac": "tab:blue"}
    for m, recs in methods.items():
        for i, rec in enumerate(recs):
            it = [e["iteration"] for e in rec["history"]]
            lbl = m if i == 0 else None
            ax_r.plot(it, [e["reward"] for e in rec["history"]], color=colors.get(m), alpha=0.8, lw=1, label=lbl)
            ax_s.plot(it, [min(e["share_left"], e["share_right"]) for e in rec["history"]], color=colors.get(m),
                      alpha=0.8, lw=1, label=lbl)
    ax_r.set_ylabel("mean reward (optimum 1)")
    ax_s.set_ylabel("smaller-mode share")
    ax_s.axhline(KEEP_SHARE, color="k", ls=":", lw=0.8)
    for ax in (ax_r, ax_s):
        ax.set_xlabel("fine-tuning iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("One line per seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_sweep(sweep: dict[tuple[float, int], list[dict]], delta: list[dict], path: str) -> None:
    plt = _plt()
    temps = sorted({t for t, _ in sweep})
    parts = sorted({p for _, p in sweep})
    cmap = plt.get_cmap("viridis")
    color = {t: cmap(i / max(1, len(temps) - 1)) for i, t in enumerate(temps)}
    marker = {p: m for p, m in zip(parts, "osD^vP*X")}
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for (t, p), recs in sorted(sweep.items()):
        ax.scatter([smaller(r) for r in recs], [r["final"]["reward"] for r in recs], color=color[t],
                   marker=marker[p], s=40, edgecolors="k", linewidths=0.4)
    if delta:
        ax.scatter([smaller(r) for r in delta], [r["final"]["reward"] for r in delta], color="0.6", marker="x",
                   s=40, label="delta (no repulsion)")
    for t in temps:
        ax.scatter([], [], color=color[t], marker="s", label=f"svgd_temp {t:g}")
    for p in parts:
        ax.scatter([], [], color="w", edgecolors="k", marker=marker[p], label=f"{p} particles")
    best = max(np.mean([r["final"]["reward"] for r in recs]) for recs in sweep.values())
    ax.axvline(KEEP_SHARE, color="k", ls=":", lw=0.8)
    ax.axhline(REWARD_FRACTION * best, color="k", ls="--", lw=0.8)
    ax.set_xlabel("smaller-mode share (final)")
    ax.set_ylabel("mean reward (final; optimum 1)")
    ax.set_xlim(-0.02, 0.52)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"One point per run; dotted: share {KEEP_SHARE}, dashed: {REWARD_FRACTION} × best mean reward",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _floats(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'")
    if not vals or any(not (v >= 0 and math.isfinite(v)) for v in vals):
        raise argparse.ArgumentTypeError(f"expected non-negative temperatures, got '{text}'")
    return vals


def _ints(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'")
    if not vals or any(v < 2 for v in vals):
        raise argparse.ArgumentTypeError(f"expected particle counts of at least 2, got '{text}'")
    return vals


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return v


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "multimodality"), help="output folder")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="bandit demo config (default configs/bandit_demo.yaml)")
    p.add_argument("--seeds", type=_positive, default=None, help="seeds 0..N-1 for the methods (default 3; quick 1)")
    p.add_argument("--sweep-seeds", type=_positive, default=None,
                   help="seeds 0..M-1 for each sweep point (default 2; quick 1)")
    p.add_argument("--iterations", type=_positive, default=None,
                   help="fine-tuning iterations of every run (default 150; quick 6)")
    p.add_argument("--temps", type=_floats, default=None, help="svgd_temp values (default 0.001,0.01,0.1,0.3)")
    p.add_argument("--particles", type=_ints, default=None, help="n_particles values (default 8,16,32)")
    p.add_argument("--no-sweep", action="store_true", help="run only the methods comparison")
    p.add_argument("--quick", action="store_true",
                   help="tiny schedule for a test: 6 iterations, 1 seed, sweep svgd_temp 0.001,0.1 x 16 particles")
    p.add_argument("--skip-existing", action="store_true", help="reuse OUT/runs/<name>.json of finished runs")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild tables and plots from the existing JSONs in OUT/runs; run nothing")
    args = p.parse_args(argv)

    seeds = args.seeds or (1 if args.quick else 3)
    sweep_seeds = args.sweep_seeds or (1 if args.quick else 2)
    iterations = args.iterations or (6 if args.quick else 150)
    temps = args.temps or ([1e-3, 0.1] if args.quick else [1e-3, 1e-2, 0.1, 0.3])
    particles = args.particles or ([16] if args.quick else [8, 16, 32])
    base = (QUICK_OVERRIDES if args.quick else []) + [f"demo.max_iterations_to_reach={iterations}",
                                                      "demo.target_fraction=2.0"]
    demo = load_demo()
    try:
        cfg = demo.load_config(args.config, base)
    except (OSError, demo.ConfigError) as e:
        p.error(str(e))
    if iterations < cfg["demo"]["eval_every"]:
        p.error(f"--iterations {iterations} is below demo.eval_every = {cfg['demo']['eval_every']}: "
                "no evaluation would happen")
    bandit = demo.Bandit(**cfg["bandit"])

    method_specs = {"rldt": [Spec("normal", PUBLISHED_TEMP, PUBLISHED_PARTICLES, s) for s in range(seeds)],
                    "delta": [Spec("delta", PUBLISHED_TEMP, PUBLISHED_PARTICLES, s) for s in range(seeds)],
                    "sac": [Spec("sac", 0.0, 0, s) for s in range(seeds)]}
    sweep_specs = {} if args.no_sweep else {
        (t, n): [Spec("normal", t, n, s) for s in range(sweep_seeds)] for t in temps for n in particles}

    run_dir = os.path.join(args.out, "runs")
    if not args.report_only:
        os.makedirs(run_dir, exist_ok=True)
    records: dict[Spec, dict] = {}
    t0 = time.time()
    todo = list(dict.fromkeys([s for specs in (*method_specs.values(), *sweep_specs.values()) for s in specs]))
    for i, spec in enumerate(todo):
        path = os.path.join(run_dir, spec.name + ".json")
        if args.report_only:
            if os.path.exists(path):
                with open(path) as f:
                    records[spec] = json.load(f)
            continue
        print(f"== run {i + 1}/{len(todo)}: {spec.name} ({time.time() - t0:.0f} s so far)", flush=True)
        records[spec] = run_one(spec, args.config, base, path, args.skip_existing)

    methods = {m: [records[s] for s in specs if s in records] for m, specs in method_specs.items()}
    sweep = {k: [records[s] for s in specs if s in records] for k, specs in sweep_specs.items()}
    sweep = {k: v for k, v in sweep.items() if v}
    if not any(methods.values()) and not sweep:
        print(f"error: no finished runs in {run_dir}", file=sys.stderr)
        return 1
    report(methods, sweep, iterations, args.out, base)
    if any(methods.values()):
        plot_samples(methods, bandit, os.path.join(args.out, "multimodality_samples.png"))
        plot_shares(methods, os.path.join(args.out, "multimodality_shares.png"))
    if sweep:
        plot_sweep(sweep, methods.get("delta", []), os.path.join(args.out, "multimodality_sweep.png"))
    with open(os.path.join(args.out, "results.md")) as f:
        print("\n" + f.read())
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
