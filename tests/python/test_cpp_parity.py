"""(b) C++ vs Python: tests/cpp/golden_main.cpp (target rldt_golden) runs the library from a plain C++
caller on inputs written here; the bindings must give the same results on the same inputs.

The executable is RLDT_GOLDEN or build/tests/cpp/rldt_golden under the repository root."""

import subprocess

import numpy as np
import pytest

import goldenio
import rldt
from conftest import golden_executable, golden_path, small_critic_config, small_policy_config

GOLDEN = golden_executable()
pytestmark = pytest.mark.skipif(
    GOLDEN is None,
    reason=f"rldt_golden not found at {golden_path()}: build the C++ tests (cmake --build build) or set RLDT_GOLDEN",
)


def run_golden(tmp_path, params, tensors, name="case"):
    inp, out = tmp_path / f"{name}.in", tmp_path / f"{name}.out"
    goldenio.write(inp, params, tensors)
    proc = subprocess.run([str(GOLDEN), str(inp), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"rldt_golden failed ({proc.returncode}): {proc.stderr}"
    assert out.is_file(), f"rldt_golden wrote no output (stale build?): {proc.stderr}"
    return goldenio.read(out)


def same(a, b, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


SVGD_CASES = [
    dict(),
    dict(svgd_temp=0.3, q_norm="q_grad", bandwidth=0.8),
    dict(svgd_temp=0.2, q_norm="none", field="hybrid"),
    dict(field="delta"),
]


@pytest.mark.parametrize("opts", SVGD_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_svgd_parity(tmp_path, rng, opts):
    B, P, A = 4, 6, 5
    q = rng.normal(size=(B, P, A)).astype(np.float32)
    p = rng.normal(size=(B, P, A)).astype(np.float32)
    g = (2 * rng.normal(size=(B, P, A))).astype(np.float32)
    tensors = dict(queries=q, particles=p, grads=g)
    last = None
    if opts.get("field") == "hybrid":
        last = rng.random((B, P)) < 0.5
        tensors["last_step"] = last.astype(np.float32)
    params, out = run_golden(tmp_path, dict(task="svgd", **opts), tensors)
    phi, diag = rldt.svgd_direction(q, p, g, rldt.SvgdConfig(**opts), last_step=last)
    same(phi, out["phi"])
    for key, value in diag.items():
        assert value == pytest.approx(float(params[key]), rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("lam,boot", [(0.0, True), (0.7, True), (0.7, False)])
def test_td_parity(tmp_path, rng, lam, boot):
    N, T = 5, 11
    r = rng.normal(size=(N, T)).astype(np.float32)
    v = rng.normal(size=(N, T)).astype(np.float32)
    term = rng.random((N, T)) < 0.2
    trunc = (rng.random((N, T)) < 0.2) & ~term
    params = dict(task="td", gamma=0.95, n=3, bootstrap_truncated=boot, **{"lambda": lam})
    tensors = dict(rewards=r, next_values=v, terminated=term.astype(np.float32), truncated=trunc.astype(np.float32))
    _, out = run_golden(tmp_path, params, tensors)
    same(rldt.td_lambda_targets(r, v, term, trunc, gamma=0.95, td_lambda=lam, bootstrap_truncated=boot),
         out["td_lambda"])
    same(rldt.nstep_targets(r, v, term, trunc, 3, gamma=0.95, bootstrap_truncated=boot), out["nstep"])


@pytest.mark.parametrize("field,member", [("normal", -1), ("hybrid", 1), ("interp", -1)])
def test_actor_update_parity(tmp_path, rng, field, member):
    pol = rldt.FlowPolicy(small_policy_config(), seed=13)
    data_obs = rng.normal(size=(16, 3)).astype(np.float32)
    data_act = rng.normal(size=(16, 2, 2)).astype(np.float32)
    pol.bc_update(data_obs, data_act)
    critic = rldt.CriticEnsemble(small_critic_config(), seed=17)
    pol_path, critic_path, out_path = tmp_path / "pol.pt", tmp_path / "critic.pt", tmp_path / "after.pt"
    pol.save(pol_path)
    critic.save(critic_path)
    obs = rng.normal(size=(3, 3)).astype(np.float32)
    seed, steps = 31, 2
    opts = dict(n_particles=4, lr=1e-3, lr_warmup_steps=3, c_cons=0.6, kl_coef=0.25)
    svgd = dict(svgd_temp=0.05, field=field)
    params = dict(task="actor", policy=pol_path, critic=critic_path, out_policy=out_path, seed=seed, steps=steps,
                  member=member, **opts, **svgd)
    gparams, out = run_golden(tmp_path, params, dict(obs=obs))

    # The same through the bindings, from the same files and seeds.
    py_pol = rldt.FlowPolicy.load(pol_path)
    py_critic = rldt.CriticEnsemble.load(critic_path)
    upd = rldt.ActorUpdater(py_pol, rldt.ActorUpdateConfig(svgd=svgd, **opts), seed=seed)
    stats = []
    for s in range(steps):
        batch = upd.prepare(obs, critic=py_critic, member=member)
        if s == 0:
            np.testing.assert_array_equal(batch.k, out["batch_k"])
        stats.append(upd.step(batch, critic=py_critic, member=member))
    for key in ("loss", "align", "cons", "ref", "lr"):
        same([st[key] for st in stats], out[key], rtol=1e-5, atol=1e-8)
    for s in range(steps):
        assert stats[s]["loss"] == pytest.approx(float(gparams[f"loss_{s}"]), rel=1e-5, abs=1e-9)
        assert stats[s]["lr"] == pytest.approx(float(gparams[f"lr_{s}"]), rel=1e-12)
    same(stats[-1]["phi"], out["phi"], rtol=1e-5, atol=1e-7)
    cpp_after = rldt.FlowPolicy.load(out_path)
    for net in ("actor", "ema", "reference"):
        a, b = py_pol.state_dict(net), cpp_after.state_dict(net)
        for key in a:
            # One Adam step moves a weight by about lr; allow a tiny fraction of that.
            same(a[key], b[key], rtol=0, atol=1e-3 * opts["lr"])
