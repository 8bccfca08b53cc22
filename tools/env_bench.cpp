// rldt_env_bench: env steps per second of rldt's tasks against bare mj_step loops, and VecEnv
// scaling with threads. Usage: rldt_env_bench [task=Hopper-v5] [steps=20000]
// Prints ratios measured in the same run (the machine is shared; absolute numbers are noisy).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/assets.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/envs/vec_env.hpp"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  const std::string task = argc > 1 ? argv[1] : "Hopper-v5";
  const int steps = argc > 2 ? std::atoi(argv[2]) : 20000;
  // Both loops must simulate the same kind of states (a fallen humanoid has more contacts than a
  // standing one): no early termination, episodes of 1000 steps in both.
  rldt::EnvOptions options;
  for (const auto& name : rldt::env_option_names(task))
    if (name == "terminate_when_unhealthy") options[name] = 0;
  auto env = rldt::make_env(task, options);
  const auto& spec = env->spec();
  const int nu = static_cast<int>(spec.action.size());
  std::mt19937_64 gen(0);
  std::vector<double> actions(static_cast<size_t>(steps) * nu);
  for (size_t k = 0; k < actions.size(); ++k)
    actions[k] = std::uniform_real_distribution<double>(spec.action.low[k % nu], spec.action.high[k % nu])(gen);

  auto model = rldt::load_env_model(task);
  mjData* d = mj_makeData(model->get());
  std::vector<double> obs(spec.observation.size());
  double bare = 0, single = 0;
  for (int rep = 0; rep < 3; ++rep) {  // alternate and keep the best of each (shared machine)
    // 1. bare MuJoCo: frame_skip mj_step calls per env step, nothing else
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < steps; ++k) {
      if (k % 1000 == 0) mj_resetData(model->get(), d);
      for (int j = 0; j < nu; ++j) d->ctrl[j] = actions[static_cast<size_t>(k) * nu + j];
      for (int f = 0; f < spec.frame_skip; ++f) mj_step(model->get(), d);
    }
    bare = std::max(bare, steps / seconds_since(t0));
    // 2. rldt env: validation, reward, observation, instability check, truncation resets
    env->reset_into(0, obs);
    t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < steps; ++k) {
      auto r = env->step_into(rldt::Span<const double>(&actions[static_cast<size_t>(k) * nu], nu), obs);
      if (r.terminated || r.truncated) env->reset_into(std::nullopt, obs);
    }
    single = std::max(single, steps / seconds_since(t0));
  }
  mj_deleteData(d);
  std::printf("%s: bare mj_step loop %.0f env-steps/s, rldt env %.0f env-steps/s (rldt/bare %.3f)\n",
              task.c_str(), bare, single, single / bare);

  // 3. VecEnv with 8 envs, 1 and 2 threads (same options)
  const int n = 8;
  double vec1 = 0;
  for (int threads : {1, 2}) {
    rldt::VecEnv vec(task, n, threads, options);
    vec.reset(0);
    std::vector<double> a(static_cast<size_t>(n) * nu);
    const int calls = steps / n;
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < calls; ++k) {
      std::copy(actions.begin() + static_cast<size_t>(k) * n * nu,
                actions.begin() + static_cast<size_t>(k + 1) * n * nu, a.begin());
      vec.step(a);
    }
    const double rate = static_cast<double>(calls) * n / seconds_since(t0);
    if (threads == 1) vec1 = rate;
    std::printf("  VecEnv(%d envs, %d threads): %.0f env-steps/s (%.2fx the 1-thread pool)\n", n, threads,
                rate, rate / vec1);
  }
  return 0;
}
