// Per-op profile of one RLDT actor update (issue 6: "where a goal is missed, say what limits it").
// LibTorch's own profiler records every ATen op of `reps` updates and writes a Chrome trace;
// bench/profile_ops.py sums it by op name next to the same profile of the PyTorch-eager update
// (bench/perf_torch.py).
//
//   build/rldt_bench_profile [B=256] [reps=5] [trace=actor_update_trace.json] [update_groups=1]
//
// trace "-" runs the updates without LibTorch's profiler (for an outside sampling profiler:
// bench/perf_profile.py -- build/rldt_bench_profile 256 20 -).
//
// Sizes: bench/hopper_sizes.hpp (as bench/perf_core.cpp), P = 8.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "hopper_sizes.hpp"
#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

int main(int argc, char** argv) {
  try {
    const int64_t B = argc > 1 ? std::stoll(argv[1]) : 256;
    const int reps = argc > 2 ? std::stoi(argv[2]) : 5;
    const std::string trace = argc > 3 ? argv[3] : "actor_update_trace.json";
    const int64_t groups = argc > 4 ? std::stoll(argv[4]) : 1;
    if (B < 1 || reps < 1) throw std::invalid_argument("B and reps must be >= 1");
    auto policy = std::make_shared<FlowPolicy>(bench::actor_config(), 0);
    CriticEnsemble critic(bench::critic_config(), 1);
    ActorUpdateConfig ac;
    ac.n_particles = 8;
    ac.update_groups = groups;
    ActorUpdater updater(policy, ac);
    ActionGradFn grad_fn = [&critic](const torch::Tensor& o, const torch::Tensor& a) {
      return critic.action_grad(o, a);
    };
    auto gen = make_generator(2);
    auto obs = torch::randn({B, bench::kObs}, gen);
    for (int i = 0; i < 2; ++i) updater.update(obs, grad_fn, gen);  // warm-up (allocator, Adam state)
    const auto t0 = std::chrono::steady_clock::now();
    if (trace == "-") {
      for (int i = 0; i < reps; ++i) updater.update(obs, grad_fn, gen);
    } else {
      torch::autograd::profiler::RecordProfile guard(trace);
      for (int i = 0; i < reps; ++i) updater.update(obs, grad_fn, gen);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (trace == "-")
      std::printf("%d actor updates of %lld states x 8 particles: %.1f ms each\n", reps, static_cast<long long>(B),
                  1e3 * s / reps);
    else
      std::printf("%d actor updates of %lld states x 8 particles: %.1f ms each (profiled); trace: %s\n", reps,
                  static_cast<long long>(B), 1e3 * s / reps, trace.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rldt_bench_profile: " << e.what() << "\n";
    return 1;
  }
}
