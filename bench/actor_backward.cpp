// The actor update's two backward paths against each other (issue 6): ActorUpdateConfig::backward
// "manual" (the chain's kept pass at k and the L_ref pass back-propagated by hand) and "autograd",
// each with update_groups 1 and 2, alternated inside one process. Each round runs every variant
// (the order rotating from round to round) for `iters` timed updates after 3 untimed ones, and
// keeps the round's minimum and median; the table gives each variant's per-round values and their
// medians. On a shared host the per-round minimum is the steadier statistic for an A/B of the same
// work (docs/benchmarks.md, seventeenth session).
//
//   build/rldt_bench_actor_backward [states=16] [iters=30] [rounds=12]
//
// Sizes: bench/hopper_sizes.hpp (as bench/perf_core.cpp), P = 8; all variants update one policy.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hopper_sizes.hpp"
#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

int main(int argc, char** argv) {
  try {
    const int64_t B = argc > 1 ? std::stoll(argv[1]) : 16;
    const int iters = argc > 2 ? std::stoi(argv[2]) : 30;
    const int rounds = argc > 3 ? std::stoi(argv[3]) : 12;
    if (B < 1 || iters < 1 || rounds < 1) throw std::invalid_argument("states, iters and rounds must be >= 1");
    auto policy = std::make_shared<FlowPolicy>(bench::actor_config(), 0);
    CriticEnsemble critic(bench::critic_config(), 1);
    ActionGradFn grad_fn = [&critic](const torch::Tensor& o, const torch::Tensor& a) {
      return critic.action_grad(o, a);
    };
    struct Variant {
      std::string name;
      std::unique_ptr<ActorUpdater> updater;
      std::vector<double> mins, medians;
    };
    std::vector<Variant> variants;
    for (const char* backward : {"manual", "autograd"})
      for (int64_t groups : {1, 2}) {
        ActorUpdateConfig ac;
        ac.n_particles = 8;
        ac.update_groups = groups;
        ac.backward = backward;
        variants.push_back({std::string(backward) + ", update_groups " + std::to_string(groups),
                            std::make_unique<ActorUpdater>(policy, ac),
                            {},
                            {}});
      }
    auto gen = make_generator(2);
    auto obs = torch::randn({B, bench::kObs}, gen);
    std::vector<size_t> order(variants.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (int r = 0; r < rounds; ++r) {
      std::rotate(order.begin(), order.begin() + 1, order.end());
      for (size_t i : order) {
        auto& v = variants[i];
        for (int w = 0; w < 3; ++w) v.updater->update(obs, grad_fn, gen);
        std::vector<double> ms;
        for (int it = 0; it < iters; ++it) {
          const auto t0 = std::chrono::steady_clock::now();
          v.updater->update(obs, grad_fn, gen);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        v.mins.push_back(ms.front());
        v.medians.push_back(ms[ms.size() / 2]);
      }
    }
    auto median = [](std::vector<double> x) {
      std::sort(x.begin(), x.end());
      return x[x.size() / 2];
    };
    std::printf("actor update, %ld states x 8 particles, %d rounds of %d updates (ms)\n", static_cast<long>(B), rounds,
                iters);
    for (const char* stat : {"min", "median"}) {
      for (const auto& v : variants) {
        const auto& x = std::string(stat) == "min" ? v.mins : v.medians;
        std::printf("%-6s %-28s", stat, v.name.c_str());
        for (double m : x) std::printf(" %7.2f", m);
        std::printf("   median %7.2f\n", median(x));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rldt_bench_actor_backward: " << e.what() << "\n";
    return 1;
  }
}
