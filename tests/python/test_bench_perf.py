"""bench/perf_torch.py is the same computation as the library (so the comparison in bench/perf.py
is fair): its velocity net with an rldt.FlowPolicy's weights gives the policy's outputs, and its
SVGD field matches rldt.svgd_direction. bench/perf.py --quick runs end to end (no timings checked)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rldt

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import perf_torch as pt  # noqa: E402


def test_eager_velocity_net_matches_the_library():
    cfg = rldt.FlowPolicyConfig(obs_dim=pt.OBS, action_dim=pt.ACT, horizon_steps=pt.H, denoising_steps=pt.K,
                                mlp_dims=[64, 64, 64])
    policy = rldt.FlowPolicy(cfg, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, pt.H, pt.ACT)).astype(np.float32)
    t = np.array([0.0, 0.125, 0.5, 0.75, 0.875], np.float32)
    obs = rng.standard_normal((5, pt.OBS)).astype(np.float32)
    eager = pt.check_parity(policy.state_dict(), (64, 64, 64), x, t, obs)
    k = (t * pt.K).astype(np.int64)
    # The library's expected target is x + (1 - t) v: recover v from it.
    y = policy.expected_target(x, k, obs)
    v = (y - x) / (1 - t)[:, None, None]
    np.testing.assert_allclose(eager, v, rtol=1e-4, atol=1e-5)


def test_eager_svgd_field_matches_the_library():
    rng = np.random.default_rng(1)
    b, p, a = 3, pt.P, pt.A
    y = rng.standard_normal((b, p, a)).astype(np.float32)
    x = rng.standard_normal((b, p, a)).astype(np.float32)
    g = rng.standard_normal((b, p, a)).astype(np.float32)
    eager = pt.svgd_field(torch.as_tensor(y), torch.as_tensor(x), torch.as_tensor(g), temp=0.1).numpy()
    lib, _ = rldt.svgd_direction(y, x, g, rldt.SvgdConfig(svgd_temp=0.1))
    # The library takes the lower median of the P distances; torch.median returns the lower one too.
    np.testing.assert_allclose(eager, np.asarray(lib).reshape(b, p, a), rtol=1e-3, atol=1e-5)


def test_perf_driver_quick_run():
    exe = REPO / "build" / "rldt_bench_perf"
    if not exe.exists():
        pytest.skip("build/rldt_bench_perf not built")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "perf.py"), "--quick"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    for name in ("Matmul/1024", "ActorInference/1", "ActorUpdate/256", "CriticUpdate/4096", "ActorUpdateProducts/16",
                 "ActorUpdateProductsPacked/16", "ActorUpdateAutograd/16", "ActorUpdateGroupedManual/256"):
        assert f"| {name} |" in out.stdout, out.stdout


def test_profile_self_times_subtract_nested_ops(tmp_path):
    """bench/profile_ops.py sums *self* time: a parent's duration minus its children's, per thread."""
    import profile_ops

    ev = lambda name, ts, dur, tid=1: {"name": name, "ph": "X", "ts": ts, "dur": dur, "tid": tid, "pid": 0}
    trace = [ev("aten::linear", 0, 100), ev("aten::addmm", 10, 60), ev("aten::copy_", 20, 5),
             ev("aten::relu", 100, 10), ev("aten::addmm", 0, 30, tid=2), ev("python_function", 0, 500),
             {"name": "aten::mm", "ph": "i", "ts": 1}]
    path = tmp_path / "t.json"
    path.write_text(__import__("json").dumps({"traceEvents": trace}))
    total, calls = profile_ops.self_times(str(path))
    assert total == {"aten::linear": 40.0, "aten::addmm": 85.0, "aten::copy_": 5.0, "aten::relu": 10.0}
    assert calls == {"aten::linear": 1, "aten::addmm": 2, "aten::copy_": 1, "aten::relu": 1}


def test_profile_driver_runs():
    exe = REPO / "build" / "rldt_bench_profile"
    if not exe.exists():
        pytest.skip("build/rldt_bench_profile not built")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "profile_ops.py"), "--states", "4", "--reps", "1"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "| aten::addmm |" in out.stdout and "self time of all ops per update" in out.stdout, out.stdout


def test_rollout_groups_driver_runs():
    """bench/rollout_groups.py --quick: both rollouts run and the table names them (no timings checked)."""
    exe = REPO / "build" / "rldt_bench_perf"
    if not exe.exists():
        pytest.skip("build/rldt_bench_perf not built")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "rollout_groups.py"), "--quick", "--envs", "16"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    for label in ("ungrouped", "ungrouped, packed", "rollout_groups=2", "rollout_groups=2, packed"):
        assert f"| {label} | 16 |" in out.stdout, out.stdout
    diag = subprocess.run([sys.executable, str(REPO / "bench" / "rollout_groups.py"), "--diagnose", "--quick"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert diag.returncode == 0, diag.stderr
    for what in ("reset", "step", "512x512 GEMM, 64 rows", "width-8 actor", "width-512 actor"):
        assert what in diag.stdout, diag.stdout
    bad = subprocess.run([sys.executable, str(REPO / "bench" / "rollout_groups.py"), "--blas-threads", "1"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert bad.returncode != 0 and "--blas-threads" in bad.stderr


def test_alternating_driver_reads_every_benchmark_of_the_op():
    """bench/perf_alternate.py --op inference: a ratio line for both C++ paths at both sizes, and
    with --malloc-untuned the RLDT_MALLOC_TUNING=0 side's two ratio lines too, and with --peak each
    benchmark's share of the matmul peak."""
    exe = REPO / "build" / "rldt_bench_perf"
    if not exe.exists():
        pytest.skip("build/rldt_bench_perf not built")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "perf_alternate.py"), "--op", "inference", "--rounds",
                          "1", "--min-time", "0.01", "--malloc-untuned", "--peak"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    for name in ("ActorInference 1", "ActorInference 100", "ActorInferencePacked 1", "ActorInferencePacked 100"):
        for what in ("C++/eager", "C++ malloc untuned/eager", "C++ tuned/untuned"):
            assert f"{name}: {what} per round" in out.stdout, out.stdout
        assert re.search(rf"{name}: share of the matmul peak per round \d+%; median \d+% \(peak \d+ GFLOP/s\)",
                         out.stdout), out.stdout


# A `perf report --sort dso,sym -g none --stdio` excerpt (the 16x8 actor update, trimmed).
PERF_REPORT = """# Total Lost Samples: 0
#
# Samples: 153K of event 'cpu-clock:ppp'
# Event count (approx.): 38392750000
#
# Overhead  Shared Object              Symbol
# ........  .........................  ..........................
#
    36.66%  libopenblasp-r0.3.21.so     [.] sgemm_kernel_ZEN
    15.66%  [kernel.kallsyms]           [k] __schedule
     3.88%  libopenblasp-r0.3.21.so     [.] sgemm_incopy_ZEN
     2.62%  libopenblasp-r0.3.21.so     [.] sgemm_beta_ZEN
     1.70%  libc.so.6                   [.] __sched_yield
     1.02%  [kernel.kallsyms]           [k] exc_page_fault
     0.78%  libtorch_cpu.so.1.13.0      [.] 0x0000000004cdc33c
     0.50%  libc10.so.1.13.0            [.] c10::runtimeDispatchKeySetHas
     0.29%  libc.so.6                   [.] _int_malloc
     0.20%  libc.so.6                   [.] __memmove_avx_unaligned_erms
     0.20%  libmujoco.so.2.2.2          [.] mj_step
     0.10%  librldt.so.0.1.0            [.] rldt::ResidualMLPImpl::forward
     0.05%  ld-linux-x86-64.so.2        [.] do_lookup_x
     0.05%  somelib.so                  [.] f
"""


def test_perf_profile_sums_samples_by_category():
    import perf_profile as pp

    assert pp.sample_count(PERF_REPORT) == 153000
    rows = pp.parse_report(PERF_REPORT)
    assert len(rows) == 14 and rows[0] == (36.66, "libopenblasp-r0.3.21.so", "sgemm_kernel_ZEN")
    share = {c: p for c, p, _ in pp.summarize(rows)}
    expected = {"BLAS GEMM kernel": 36.66, "threads waiting (scheduler)": 15.66 + 1.70,
                "BLAS packing and C scaling": 3.88 + 2.62, "page faults and memory mapping": 1.02,
                "LibTorch (dispatch, autograd, elementwise)": 0.78 + 0.50, "malloc/free": 0.29,
                "memcpy/memset": 0.20, "MuJoCo": 0.20, "rldt": 0.10, "dynamic loader (start-up)": 0.05, "other": 0.05}
    assert share.keys() == expected.keys()
    for c, p in expected.items():
        assert share[c] == pytest.approx(p), c
    # cpu-clock: the event count is CPU nanoseconds, 38.39275 s; 36.66% of it is 14.07 CPU s.
    assert pp.cpu_seconds(PERF_REPORT, None) == pytest.approx(38.39275)
    # Another event: samples / freq (153,000 at 4000 Hz = 38.25 s).
    assert pp.cpu_seconds(PERF_REPORT.replace("cpu-clock", "task-clock"), 4000) == pytest.approx(38.25)
    table = pp.table(PERF_REPORT, 4000, 2)
    # Unresolved symbols show their library.
    assert "| BLAS GEMM kernel | 36.7% | 14.07 | sgemm_kernel_ZEN 36.7% |" in table, table
    assert "libtorch_cpu.so.1.13.0 0.8%" in table, table
    # Per unit: 14.075 CPU s over 22 updates = 640 ms each.
    per = pp.table(PERF_REPORT, 4000, 1, units=22)
    assert "| BLAS GEMM kernel | 36.7% | 14.07 | 640 | sgemm_kernel_ZEN 36.7% |" in per, per


def test_perf_profile_arguments_are_checked(tmp_path):
    script = str(REPO / "bench" / "perf_profile.py")
    for args, words in ((["--data", str(tmp_path / "missing.data")], ["--data", "missing.data"]),
                        ([], ["--data", "COMMAND"]),
                        (["--data", script, "--", "true"], ["not both"]),
                        (["--freq", "0", "--", "true"], ["--freq"]),
                        (["--units", "0", "--", "true"], ["--units"])):
        r = subprocess.run([sys.executable, script] + args, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0, args
        for w in words:
            assert w in r.stderr, (args, r.stderr)


def test_fixed_count_update_drivers():
    """build/rldt_bench_profile STATES N - and perf_torch.py --updates STATES N: N updates, no profiler."""
    exe = REPO / "build" / "rldt_bench_profile"
    if not exe.exists():
        pytest.skip("build/rldt_bench_profile not built")
    out = subprocess.run([str(exe), "4", "2", "-"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2 actor updates of 4 states x 8 particles:") and "profiled" not in out.stdout
    eager = subprocess.run([sys.executable, str(REPO / "bench" / "perf_torch.py"), "--updates", "4", "2"],
                           capture_output=True, text=True, timeout=300)
    assert eager.returncode == 0, eager.stderr
    assert eager.stdout.startswith("2 eager actor updates of 4 states x 8 particles:"), eager.stdout
    bad = subprocess.run([sys.executable, str(REPO / "bench" / "perf_torch.py"), "--updates", "0", "2"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--updates" in bad.stderr


def test_lean_update_computes_the_same_chain_and_runs():
    """bench/lean_update.py's sampler is the plain one with shared work hoisted: same chain."""
    import lean_update as lu

    torch.manual_seed(3)
    net, o = pt.VelocityNet(), torch.randn(6, pt.OBS)
    with torch.no_grad():
        torch.manual_seed(4)
        a1, c1 = pt.sample(net, o, keep_chain=True)
        torch.manual_seed(4)
        a2, c2 = lu.lean_sample(net, o)
    torch.testing.assert_close(c2, c1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a2, a1, rtol=1e-4, atol=1e-5)
    loss = pt.actor_update_step(2, lu.lean_update)()
    assert np.isfinite(loss)
    assert lu.main(["--states", "2", "--rounds", "1", "--min-time", "0.01"]) == 0


def test_env_pool_scaling_driver_prints_both_ways_of_stepping():
    """bench/env_pool_scaling.py: a line per round and a ratio line for step and step_chunk; bad
    counts are refused by name."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    script = str(REPO / "bench" / "env_pool_scaling.py")
    out = subprocess.run([sys.executable, script, "--calls", "2", "--rounds", "1", "--loops", "1", "--envs", "4"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("round 0: step 1 thread "), out.stdout
    for label in ("step", "step_chunk(4)"):
        assert re.search(rf"^{re.escape(label)}: 2 / 1 threads per round [\d.]+; median [\d.]+$", out.stdout, re.M), \
            out.stdout
    bad = subprocess.run([sys.executable, script, "--rounds", "0"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    assert bad.returncode != 0 and "--rounds" in bad.stderr


def test_gemm_floor_counts_the_update_model_and_runs():
    """bench/gemm_floor.py: its products are the eager update's (their FLOPs are bench/perf.py's
    model of the update, to 0.1%), each call computes its product, and a short run prints the
    ratios (no timings checked)."""
    import gemm_floor
    from perf import op_flops

    for states in (2, 16):
        calls, flops = gemm_floor.update_gemms(states * pt.P)
        assert flops == pytest.approx(op_flops(f"ActorUpdate/{states}"), rel=1e-3)
        # K chain forwards and 3 more of 6 layers, M critic members' 4 forwards and 4 dX, 2 x (6 dW + 5 dX)
        assert len(calls) == (pt.K + 3) * 6 + pt.M * 8 + 2 * 11
    out = calls[0]()
    assert out.shape[0] == 16 * pt.P and torch.isfinite(out).all()
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    run = subprocess.run([sys.executable, str(REPO / "bench" / "gemm_floor.py"), "--states", "2", "--rounds", "1",
                          "--min-time", "0.05"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr
    assert re.search(r"gemms / eager per round [0-9.]+; median [0-9.]+", run.stdout), run.stdout
    bad = subprocess.run([sys.executable, str(REPO / "bench" / "gemm_floor.py"), "--states", "0"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert bad.returncode != 0 and "--states" in bad.stderr
