// Hot paths of RLDT in C++ (issue 6), Google Benchmark. bench/perf.py runs this program and the
// PyTorch-eager counterparts (bench/perf_torch.py) in one go and prints the comparison table.
//
//   build/rldt_bench_perf [--benchmark_filter=REGEX] [--benchmark_format=json]
//
// Sizes follow ALGORITHM.md §1–4 and §7 (Hopper: obs 11, d 3, chunk H = 4, K = 8, actor
// [512]x3 residual MLP, critics [256]x3 SiLU, M = 2, P = 8). Counters: "rows" network rows per
// call, "env_steps" where envs are stepped; bench/perf.py turns times into GFLOP/s.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "bare_physics.hpp"
#include "hopper_sizes.hpp"
#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/inference_policy.hpp"
#include "rldt/train/config_io.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/util/blas_gemm.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/packed_gemm.hpp"
#include "rldt/util/rng.hpp"
#include "rldt/util/thread_pool.hpp"

using namespace rldt;

namespace {

using namespace rldt::bench;  // kObs, kAct, kH, kK, actor_config(), critic_config()

// fp32 matmul peak: (n x n) @ (n x n), 2n³ flops per call.
void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto gen = make_generator(0);
  auto a = torch::randn({n, n}, gen), b = torch::randn({n, n}, gen), c = torch::empty({n, n});
  for (auto _ : state) {
    torch::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["flops"] = 2.0 * n * n * n;
}
BENCHMARK(BM_Matmul)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

// One 512 x 512 layer's product for M rows on one core, the shape of rollout inference (M = the
// envs of a group): PackedWeights (weights packed once) against the loaded BLAS's sgemm_ on one
// thread (which packs the weights on every call), both y = x·Wᵀ + b. Counter flops per call.
void gemm512_bench(benchmark::State& state, bool packed) {
  const int64_t M = state.range(0), n = 512;
  auto gen = make_generator(0);
  auto w = torch::randn({n, n}, gen).contiguous(), x = torch::randn({M, n}, gen).contiguous(),
       b = torch::randn({n}, gen).contiguous(), y = torch::empty({M, n});
  const PackedWeights pw(w.data_ptr<float>(), n, n);
  const SgemmFn gemm = blas_sgemm();
  if (!packed && !gemm) {
    state.SkipWithError("no BLAS sgemm_ in the process");
    return;
  }
  ScopedBlasThreads one(1);
  for (auto _ : state) {
    if (packed) {
      pw.multiply(x.data_ptr<float>(), M, n, y.data_ptr<float>(), n, b.data_ptr<float>());
    } else {
      y.copy_(b.expand({M, n}));
      const int nn = static_cast<int>(n), m = static_cast<int>(M);
      const float one_f = 1.f;
      gemm("T", "N", &nn, &m, &nn, &one_f, w.data_ptr<float>(), &nn, x.data_ptr<float>(), &nn, &one_f,
           y.data_ptr<float>(), &nn, 1, 1);
    }
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.counters["flops"] = 2.0 * M * n * n;
}
void BM_Gemm512Packed(benchmark::State& state) { gemm512_bench(state, true); }
void BM_Gemm512Blas1(benchmark::State& state) { gemm512_bench(state, false); }
BENCHMARK(BM_Gemm512Packed)->ArgsProduct({{1, 2, 3, 8, 32, 64, 128}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Gemm512Blas1)->Arg(8)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Actor inference: K Euler steps of the velocity net for B states (no autograd).
void BM_ActorInference(benchmark::State& state) {
  const int64_t B = state.range(0);
  FlowPolicy policy(actor_config(), 0);
  auto gen = make_generator(1);
  auto obs = torch::randn({B, kObs}, gen);
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto a = policy.act(obs, gen);
    benchmark::DoNotOptimize(a.data_ptr<float>());
  }
  state.counters["rows"] = static_cast<double>(B);
}
BENCHMARK(BM_ActorInference)->Arg(1)->Arg(100)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same sampling through InferencePolicy (no LibTorch ops: the deployment path), with each of
// its matrix products: packed weights (the default; Packed2: set_threads(2), with split "auto",
// "rows" or "columns"), the loaded BLAS's GEMM (batches of 8+, OpenBLAS's threads), Eigen.
void inference_policy_bench(benchmark::State& state, const std::string& gemm, int threads = 1,
                            const std::string& split = "auto") {
  const int64_t B = state.range(0);
  FlowPolicy policy(actor_config(), 0);
  InferencePolicy fast(policy);
  fast.set_gemm(gemm);
  fast.set_threads(threads);
  fast.set_split(split);
  auto gen = make_generator(1);
  auto obs = torch::randn({B, kObs}, gen).contiguous();
  auto x0 = torch::randn({B, kH * kAct}, gen).contiguous();
  std::vector<float> out(static_cast<size_t>(B * kH * kAct));
  for (auto _ : state) {
    fast.act(obs.data_ptr<float>(), B, x0.data_ptr<float>(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["rows"] = static_cast<double>(B);
}
void BM_ActorInferencePacked(benchmark::State& state) { inference_policy_bench(state, "packed"); }
void BM_ActorInferencePacked2(benchmark::State& state) { inference_policy_bench(state, "packed", 2); }
void BM_ActorInferencePacked2Rows(benchmark::State& state) { inference_policy_bench(state, "packed", 2, "rows"); }
void BM_ActorInferencePacked2Columns(benchmark::State& state) { inference_policy_bench(state, "packed", 2, "columns"); }
void BM_ActorInferenceBlas(benchmark::State& state) { inference_policy_bench(state, "blas"); }
void BM_ActorInferenceEigen(benchmark::State& state) { inference_policy_bench(state, "eigen"); }
BENCHMARK(BM_ActorInferencePacked)->ArgsProduct({{1, 8, 16, 32, 100}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ActorInferencePacked2)->Arg(1)->Arg(16)->Arg(100)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ActorInferencePacked2Rows)->ArgsProduct({{1, 8, 16, 100}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ActorInferencePacked2Columns)
    ->ArgsProduct({{1, 8, 16, 100}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_ActorInferenceBlas)->Arg(32)->Arg(100)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ActorInferenceEigen)->Arg(1)->Arg(100)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One RLDT actor update (§4): particles with their chain, critic gradients, one forward with
// gradient at (x_k, t), SVGD field at ŷ, L_align + L_cons + L_ref, backward, Adam. `groups`:
// ActorUpdateConfig::update_groups (the states split over that many threads, one BLAS thread each).
void actor_update_bench(benchmark::State& state, int64_t groups) {
  const int64_t B = state.range(0);
  auto policy = std::make_shared<FlowPolicy>(actor_config(), 0);
  CriticEnsemble critic(critic_config(), 1);
  ActorUpdateConfig ac;
  ac.n_particles = 8;
  ac.update_groups = groups;
  ActorUpdater updater(policy, ac);
  ActionGradFn grad_fn = [&critic](const torch::Tensor& o, const torch::Tensor& a) { return critic.action_grad(o, a); };
  auto gen = make_generator(2);
  auto obs = torch::randn({B, kObs}, gen);
  for (auto _ : state) {
    auto st = updater.update(obs, grad_fn, gen);
    benchmark::DoNotOptimize(st.loss);
  }
  state.counters["rows"] = static_cast<double>(B * ac.n_particles);
}
void BM_ActorUpdate(benchmark::State& state) { actor_update_bench(state, 1); }
void BM_ActorUpdateGrouped(benchmark::State& state) { actor_update_bench(state, 2); }
BENCHMARK(BM_ActorUpdate)->Arg(256)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ActorUpdateGrouped)->Arg(256)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

// One critic update on n (state, chunk) samples: both members forward + backward, AdamW, Polyak.
// `groups`: CriticConfig::update_groups (the members on their own threads, one BLAS thread each).
void critic_update_bench(benchmark::State& state, int64_t groups) {
  const int64_t n = state.range(0), traj = 16, T = n / traj;
  auto cc = critic_config();
  cc.update_groups = groups;
  CriticEnsemble critic(cc, 1);
  auto gen = make_generator(3);
  auto obs = torch::randn({traj, T, kObs}, gen);
  auto chunks = torch::rand({traj, T, kH, kAct}, gen) * 2 - 1;
  auto targets = torch::randn({traj, T}, gen);
  for (auto _ : state) {
    double l = critic.update(obs, chunks, targets);
    benchmark::DoNotOptimize(l);
  }
  state.counters["rows"] = static_cast<double>(n);
}
void BM_CriticUpdate(benchmark::State& state) { critic_update_bench(state, 1); }
void BM_CriticUpdateGrouped(benchmark::State& state) { critic_update_bench(state, 2); }
BENCHMARK(BM_CriticUpdate)->Arg(4096)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CriticUpdateGrouped)->Arg(4096)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

RldtTrainerConfig hopper_rollout_config(int64_t n_envs, int64_t groups = 1, const std::string& inference = "torch") {
  RldtTrainerConfig c;
  c.rollout_inference = inference;
  c.env = "Hopper-v5";
  c.n_envs = n_envs;
  c.env_threads = 2;
  c.rollout_groups = groups;
  c.n_steps = 25;
  c.act_steps = kH;
  c.val_freq = 1;  // every iteration is a deterministic rollout without updates
  c.policy = actor_config();
  c.exploration.min_extrp_step = 6;
  return c;
}

// Rollout throughput: Hopper, N envs, chunk steps with policy sampling (K = 8 steps of the
// [512]x3 actor per chunk), executed 4 actions per chunk. Counter env_steps/s. BM_Rollout: one
// batched forward over all envs per chunk step; Grouped: rollout_groups = 2 (each env thread
// samples with one BLAS thread and steps its half); Packed: rollout_inference "packed" (each group
// samples through its own InferencePolicy: packed weights, no LibTorch ops).
void rollout_bench(benchmark::State& state, int64_t groups, const std::string& inference) {
  const int64_t N = state.range(0);
  RldtTrainer trainer(hopper_rollout_config(N, groups, inference));
  int64_t steps = 0;
  for (auto _ : state) {
    const auto before = trainer.env_steps();
    trainer.train_iteration();
    steps += trainer.env_steps() - before;
  }
  state.counters["env_steps"] = benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.counters["rows"] = static_cast<double>(N * trainer.config().n_steps);  // policy rows per iteration
  state.counters["env_steps_per_iter"] = static_cast<double>(steps) / static_cast<double>(state.iterations());
}
void BM_Rollout(benchmark::State& state) { rollout_bench(state, 1, "torch"); }
BENCHMARK(BM_Rollout)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
void BM_RolloutGrouped(benchmark::State& state) { rollout_bench(state, 2, "torch"); }
void BM_RolloutGroupedPacked(benchmark::State& state) { rollout_bench(state, 2, "packed"); }
BENCHMARK(BM_RolloutGrouped)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_RolloutGroupedPacked)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// Rollout throughput as a share of issue 6's bound, with the bound measured next to every
// rollout iteration: the host's speed drifts by a fifth within minutes, so a bound measured a
// minute away (as bench/rollout_groups.py did before the fourteenth session) scatters the share
// by ±15 points. Each iteration times bare
// Hopper physics on both cores at once (bench/bare_physics.hpp on two threads, 3000 env steps
// each, ~0.3 s; the sum of their rates), the 1024³ matmul on both cores (4 calls), then one
// deterministic rollout iteration of hopper_rollout_config; bound = 1 / (1 / bare_both +
// K · velocity-net FLOPs / H / peak). Counters: the medians over iterations of the share
// (rollout / bound), env steps/s, bare steps/s (both cores) and peak GFLOP/s, and the lowest and
// highest share.
void rollout_share_bench(benchmark::State& state, int64_t groups, const std::string& inference) {
  const int64_t N = state.range(0);
  RldtTrainer trainer(hopper_rollout_config(N, groups, inference));
  BarePhysics bare0(trainer.config().env, 3000, 0), bare1(trainer.config().env, 3000, 1);
  auto gen = make_generator(0);
  auto a = torch::randn({1024, 1024}, gen), b = torch::randn({1024, 1024}, gen), c = torch::empty({1024, 1024});
  // Velocity-net FLOPs per row and pass (2 per multiply-add): input layer [x, time embedding, obs]
  // → 512, two 512 × 512 layers, → A; the time MLP 16 → 32 → 16. bench/perf.py's model.
  const double A = kH * kAct, fv = 2.0 * ((A + 16 + kObs) * 512 + 2 * 512 * 512 + 512 * A) + 2.0 * (16 * 32 + 32 * 16);
  trainer.train_iteration();  // warm-up (the first iteration also builds the buffers)
  std::vector<double> share, rate, bare_rate, peak;
  for (auto _ : state) {
    double r1 = 0;
    std::thread other([&] { r1 = bare1.steps_per_s(); });
    const double r0 = bare0.steps_per_s();
    other.join();
    bare_rate.push_back(r0 + r1);
    torch::mm_out(c, a, b);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) torch::mm_out(c, a, b);
    peak.push_back(4 * 2.0 * 1024 * 1024 * 1024 /
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const auto before = trainer.env_steps();
    const auto t1 = std::chrono::steady_clock::now();
    trainer.train_iteration();
    rate.push_back(static_cast<double>(trainer.env_steps() - before) /
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
    const double bound = 1.0 / (1.0 / bare_rate.back() + kK * fv / kH / peak.back());
    share.push_back(rate.back() / bound);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  state.counters["share_of_bound"] = median(share);
  state.counters["env_steps_per_s"] = median(rate);
  state.counters["bare_steps_per_s"] = median(bare_rate);
  state.counters["peak_gflops"] = median(peak) / 1e9;
  state.counters["share_min"] = *std::min_element(share.begin(), share.end());
  state.counters["share_max"] = *std::max_element(share.begin(), share.end());
}
void BM_RolloutShare(benchmark::State& state) { rollout_share_bench(state, 1, "torch"); }
void BM_RolloutSharePacked(benchmark::State& state) { rollout_share_bench(state, 1, "packed"); }
void BM_RolloutShareGrouped(benchmark::State& state) { rollout_share_bench(state, 2, "torch"); }
void BM_RolloutShareGroupedPacked(benchmark::State& state) { rollout_share_bench(state, 2, "packed"); }
BENCHMARK(BM_RolloutShare)->Arg(16)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(7);
BENCHMARK(BM_RolloutSharePacked)->Arg(16)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(7);
BENCHMARK(BM_RolloutShareGrouped)->Arg(16)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(7);
BENCHMARK(BM_RolloutShareGroupedPacked)->Arg(16)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(7);

// One whole training iteration of configs/gym/hopper/finetune-cpu.yaml (random actor of the
// file's architecture; no critic warm-up so the actor steps run), split into its phases, and the
// deterministic evaluation iteration before it. `overrides` add to the config's (the grouped
// variant: both updates with update_groups 2).
void hopper_iteration_bench(benchmark::State& state, std::vector<std::string> overrides) {
  overrides.insert(overrides.begin(), {"n_critic_warmup_itr=0", "val_freq=1000"});
  RunConfig run = load_run_config(RLDT_SOURCE_DIR "/configs/gym/hopper/finetune-cpu.yaml", overrides);
  RldtTrainer trainer(run.trainer);
  const auto t0 = std::chrono::steady_clock::now();
  trainer.train_iteration();  // iteration 0: evaluation
  const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double rollout = 0, critic = 0, actor = 0;
  for (auto _ : state) {
    auto m = trainer.train_iteration();
    rollout += m.seconds_rollout;
    critic += m.seconds_critic;
    actor += m.seconds_actor;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["s_rollout"] = rollout / n;
  state.counters["s_critic"] = critic / n;
  state.counters["s_actor"] = actor / n;
  state.counters["s_eval_iteration"] = eval_s;
}
void BM_HopperCpuIteration(benchmark::State& state) { hopper_iteration_bench(state, {}); }
void BM_HopperCpuIterationGrouped(benchmark::State& state) {
  hopper_iteration_bench(state, {"actor.update_groups=2", "critic.update_groups=2"});
}
// Every speed option on: both update_groups, rollout_groups and rollout_inference "packed".
void BM_HopperCpuIterationAllOptions(benchmark::State& state) {
  hopper_iteration_bench(
      state, {"actor.update_groups=2", "critic.update_groups=2", "rollout_groups=2", "rollout_inference=packed"});
}
BENCHMARK(BM_HopperCpuIteration)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_HopperCpuIterationGrouped)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_HopperCpuIterationAllOptions)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);

}  // namespace

// The env pool's fork-join cost: 2 threads, 16 indices of `work` us of busy work each (a Hopper
// env step is ~85 us here), `gap` us of caller-only work between loops (inference in a rollout).
// spin_us 0 sleeps on the condition variable between loops (the pool's only policy before the
// ninth session); the default spins first. Counter overhead_us: time per loop minus the ideal
// 16 * work / 2.
void BM_ThreadPoolLoop(benchmark::State& state) {
  const double work = static_cast<double>(state.range(0)), gap = static_cast<double>(state.range(1));
  ThreadPool pool(2, static_cast<int>(state.range(2)));
  using clock = std::chrono::steady_clock;
  auto busy = [](double us) {
    const auto end = clock::now() + std::chrono::duration<double, std::micro>(us);
    while (clock::now() < end) {
    }
  };
  double loop_seconds = 0;
  for (auto _ : state) {
    busy(gap);
    const auto t0 = clock::now();
    pool.parallel_for(16, [&](int) { busy(work); });
    loop_seconds += std::chrono::duration<double>(clock::now() - t0).count();
  }
  const double per_loop_us = 1e6 * loop_seconds / static_cast<double>(state.iterations());
  state.counters["overhead_us"] = per_loop_us - 16 * work / 2;
}
BENCHMARK(BM_ThreadPoolLoop)
    ->ArgNames({"work_us", "gap_us", "spin_us"})
    ->ArgsProduct({{2, 85}, {0, 50, 1000}, {0, ThreadPool::kDefaultSpinUs}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->MinTime(0.2);

BENCHMARK_MAIN();
