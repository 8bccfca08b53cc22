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
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

// One RLDT actor update (§4): particles with their chain, critic gradients, SVGD field at ŷ,
// L_align + L_cons + L_ref, their gradients, Adam. `groups`: ActorUpdateConfig::update_groups (the
// states split over that many threads, one BLAS thread each). `backward`: ActorUpdateConfig's
// "auto" (the default: "manual" in one group, "autograd" in groups), "manual" (the chain's own pass
// at k and the L_ref pass back-propagated by hand) or "autograd" (passes with gradient at (x_k, t)
// and x̃, then backward()).
void actor_update_bench(benchmark::State& state, int64_t groups, const char* backward = "auto") {
  const int64_t B = state.range(0);
  auto policy = std::make_shared<FlowPolicy>(actor_config(), 0);
  CriticEnsemble critic(critic_config(), 1);
  ActorUpdateConfig ac;
  ac.n_particles = 8;
  ac.update_groups = groups;
  ac.backward = backward;
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
void BM_ActorUpdateAutograd(benchmark::State& state) { actor_update_bench(state, 1, "autograd"); }
void BM_ActorUpdateGroupedManual(benchmark::State& state) { actor_update_bench(state, 2, "manual"); }
BENCHMARK(BM_ActorUpdateAutograd)->Arg(256)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ActorUpdateGroupedManual)->Arg(256)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

// The actor update's matrix products alone (the list of bench/gemm_floor.py: the K chain forwards
// of the velocity net, the critic members' forwards and input backwards, the three forwards with
// the L_ref points, and two backwards with dW for every layer and dX for all but the time MLP's
// first), for the 16 x 8 goal (docs/benchmarks.md). Kind 0: y = x·Wᵀ + b, 1: dX = G·W,
// 2: dW = Gᵀ·X; rows n each; `layer` names the weights (the actor's layers, then each critic
// member's), which the products of the same layer share.
struct Product {
  int kind;
  int64_t in, out;
  int layer;
};
std::vector<Product> update_products() {
  const auto ac = actor_config();
  const auto cc = critic_config();
  const int64_t A = ac.action_size(), T = ac.time_dim, h = ac.mlp_dims[0];
  std::vector<std::pair<int64_t, int64_t>> actor = {{T, 2 * T}, {2 * T, T}, {A + T + kObs, h}};
  for (size_t i = 1; i < ac.mlp_dims.size(); ++i) actor.emplace_back(h, h);
  actor.emplace_back(h, A);
  std::vector<std::pair<int64_t, int64_t>> critic;
  int64_t in = kObs + A;
  for (int64_t w : cc.hidden) {
    critic.emplace_back(in, w);
    in = w;
  }
  critic.emplace_back(in, 1);
  std::vector<Product> p;
  auto forward = [&](const auto& layers, int first) {
    for (size_t j = 0; j < layers.size(); ++j)
      p.push_back({0, layers[j].first, layers[j].second, first + static_cast<int>(j)});
  };
  auto backward = [&](const auto& layers, int first, bool weights, bool skip_first_dx) {
    for (size_t j = layers.size(); j-- > 0;) {
      const auto [i, o] = layers[j];
      if (!(skip_first_dx && j == 0)) p.push_back({1, i, o, first + static_cast<int>(j)});
      if (weights) p.push_back({2, i, o, first + static_cast<int>(j)});
    }
  };
  const int A0 = 0, R0 = static_cast<int>(actor.size());  // the actor's layers, then the reference net's
  for (int64_t k = 0; k < kK; ++k) forward(actor, A0);
  for (int64_t m = 0; m < cc.ensemble_size; ++m) {
    const int C0 = 2 * R0 + static_cast<int>(m * critic.size());
    forward(critic, C0);
    backward(critic, C0, false, false);
  }
  forward(actor, A0);  // at x_k, with gradient
  forward(actor, R0);  // the reference net at the L_ref points
  forward(actor, A0);  // the actor there, with gradient
  for (int r = 0; r < 2; ++r) backward(actor, A0, true, true);
  return p;
}
// p = update_products(), or only its products of one kind when RLDT_BENCH_PRODUCTS is "forward",
// "dx" or "dw" (to see which kind is slow). Any other value skips the benchmark with an error
// naming the variable; returns whether to go on.
bool selected_products(benchmark::State& state, std::vector<Product>& p) {
  p = update_products();
  const char* only = std::getenv("RLDT_BENCH_PRODUCTS");
  if (!only || !*only) return true;
  const std::string s(only);
  const int kind = s == "forward" ? 0 : s == "dx" ? 1 : s == "dw" ? 2 : -1;
  if (kind < 0) {
    state.SkipWithError(("RLDT_BENCH_PRODUCTS must be forward, dx or dw; got '" + s + "'").c_str());
    return false;
  }
  p.erase(std::remove_if(p.begin(), p.end(), [&](const Product& q) { return q.kind != kind; }), p.end());
  return true;
}
double products_flops(const std::vector<Product>& p, int64_t n) {
  double f = 0;
  for (const auto& q : p) f += 2.0 * static_cast<double>(n * q.in * q.out);
  return f;
}

// Through LibTorch's matmuls (OpenBLAS on its threads), one product after the other.
void BM_ActorUpdateProducts(benchmark::State& state) {
  const int64_t n = state.range(0) * 8;
  std::vector<Product> products;
  if (!selected_products(state, products)) return;
  auto gen = make_generator(0);
  std::vector<std::function<void()>> calls;
  std::map<int, std::pair<torch::Tensor, torch::Tensor>> layer;  // weight, bias
  for (const auto& q : products)
    if (!layer.count(q.layer)) layer[q.layer] = {torch::randn({q.out, q.in}, gen), torch::randn({q.out}, gen)};
  for (const auto& q : products) {
    auto [w, b] = layer.at(q.layer);
    auto x = torch::randn({n, q.in}, gen), g = torch::randn({n, q.out}, gen);
    if (q.kind == 0) {
      auto y = torch::empty({n, q.out});
      calls.push_back([=]() mutable { torch::addmm_out(y, b, x, w.t()); });
    } else if (q.kind == 1) {
      auto dx = torch::empty({n, q.in});
      calls.push_back([=]() mutable { torch::mm_out(dx, g, w); });
    } else {
      auto dw = torch::empty({q.out, q.in});
      calls.push_back([=]() mutable { torch::mm_out(dw, g.t(), x); });
    }
  }
  for (auto _ : state)
    for (auto& c : calls) c();
  state.counters["flops"] = products_flops(products, n);
}
BENCHMARK(BM_ActorUpdateProducts)->Arg(16)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same products on weights packed once (PackedWeights), the rows in two groups on two threads
// as a grouped update would run them: forwards on W's panels, dX on Wᵀ's, dW as Gᵀ·X with G and X
// transposed and X packed per call, then each dW summed over the groups (half its rows per
// thread). Biases are left out of dX and dW; nothing else of an update is timed.
void BM_ActorUpdateProductsPacked(benchmark::State& state) {
  const int64_t n = state.range(0) * 8, G = 2;
  std::vector<Product> products;
  if (!selected_products(state, products)) return;
  auto gen = make_generator(0);
  struct Group {
    int64_t rows;
    std::vector<std::vector<float>> x, g, y, xt, gt, dw;
    std::vector<PackedWeights> xpack;
  };
  auto rnd = [&](int64_t count) {
    auto t = torch::randn({count}, gen);
    return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + count);
  };
  std::map<int, PackedWeights> w, wt;  // by layer: W and Wᵀ, packed once
  std::map<int, std::vector<float>> bias;
  for (const auto& q : products) {
    if (w.count(q.layer)) continue;
    auto wv = rnd(q.out * q.in);
    std::vector<float> wtv(wv.size());
    for (int64_t o = 0; o < q.out; ++o)
      for (int64_t i = 0; i < q.in; ++i) wtv[i * q.out + o] = wv[o * q.in + i];
    w.emplace(q.layer, PackedWeights(wv.data(), q.out, q.in));
    wt.emplace(q.layer, PackedWeights(wtv.data(), q.in, q.out));
    bias[q.layer] = rnd(q.out);
  }
  std::vector<Group> groups(G);
  for (int64_t gi = 0; gi < G; ++gi) {
    Group& gr = groups[gi];
    gr.rows = (gi + 1) * n / G - gi * n / G;
    const int64_t r = gr.rows;
    for (const auto& q : products) {
      gr.x.push_back(rnd(r * q.in));
      gr.g.push_back(rnd(r * q.out));
      gr.y.emplace_back(static_cast<size_t>(r * std::max(q.in, q.out)));
      gr.xt.emplace_back(static_cast<size_t>(r * q.in));
      gr.gt.emplace_back(static_cast<size_t>(r * q.out));
      gr.dw.emplace_back(q.kind == 2 ? static_cast<size_t>(q.out * q.in) : 0);
      gr.xpack.push_back(q.kind == 2 ? PackedWeights(gr.xt.back().data(), q.in, r) : PackedWeights());
    }
  }
  ThreadPool pool(static_cast<int>(G));
  for (auto _ : state) {
    pool.parallel_for(static_cast<int>(G), [&](int gi) {
      Group& gr = groups[gi];
      const int64_t r = gr.rows;
      for (size_t j = 0; j < products.size(); ++j) {
        const auto& q = products[j];
        if (q.kind == 0) {
          w.at(q.layer).multiply(gr.x[j].data(), r, q.in, gr.y[j].data(), q.out, bias.at(q.layer).data());
        } else if (q.kind == 1) {
          wt.at(q.layer).multiply(gr.g[j].data(), r, q.out, gr.y[j].data(), q.in);
        } else {
          float *xt = gr.xt[j].data(), *gt = gr.gt[j].data();
          const float *x = gr.x[j].data(), *g = gr.g[j].data();
          for (int64_t a = 0; a < r; ++a)
            for (int64_t i = 0; i < q.in; ++i) xt[i * r + a] = x[a * q.in + i];
          for (int64_t a = 0; a < r; ++a)
            for (int64_t o = 0; o < q.out; ++o) gt[o * r + a] = g[a * q.out + o];
          gr.xpack[j].repack(xt);
          gr.xpack[j].multiply(gt, q.out, r, gr.dw[j].data(), q.in);
        }
      }
    });
    pool.parallel_for(static_cast<int>(G), [&](int t) {  // dW summed over the groups, half the rows each
      for (size_t j = 0; j < products.size(); ++j) {
        const auto& q = products[j];
        if (q.kind != 2) continue;
        const int64_t lo = t * q.out / G * q.in, hi = (t + 1) * q.out / G * q.in;
        float* sum = groups[0].dw[j].data();
        for (int64_t gi = 1; gi < G; ++gi) {
          const float* part = groups[gi].dw[j].data();
          for (int64_t e = lo; e < hi; ++e) sum[e] += part[e];
        }
      }
    });
    benchmark::DoNotOptimize(groups[0].dw.back().data());
  }
  state.counters["flops"] = products_flops(products, n);
}
BENCHMARK(BM_ActorUpdateProductsPacked)->Arg(16)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

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
