// rldt_env_bench: env steps per second of rldt's tasks against bare mj_step loops, and VecEnv
// scaling with threads. Usage: rldt_env_bench [task=Hopper-v5] [steps=20000]
// Prints ratios measured in the same run (the machine is shared; absolute numbers are noisy).
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
  auto env = rldt::make_env(task);
  const auto& spec = env->spec();
  std::mt19937_64 gen(0);
  std::vector<double> actions(static_cast<size_t>(steps) * spec.action.size());
  for (auto& a : actions) a = std::uniform_real_distribution<double>(-1.0, 1.0)(gen) * spec.action.high[0];

  // 1. bare MuJoCo: frame_skip mj_step calls per env step (no observation, reward or checks)
  auto model = rldt::load_env_model(task);
  mjData* d = mj_makeData(model->get());
  const int nu = model->get()->nu;
  auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < steps; ++k) {
    if (k % 1000 == 0) mj_resetData(model->get(), d);
    for (int j = 0; j < nu; ++j) d->ctrl[j] = actions[static_cast<size_t>(k) * nu + j];
    for (int f = 0; f < spec.frame_skip; ++f) mj_step(model->get(), d);
  }
  const double bare = steps / seconds_since(t0);
  mj_deleteData(d);

  // 2. rldt env (reset whenever an episode ends)
  std::vector<double> obs(spec.observation.size());
  env->reset_into(0, obs);
  t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < steps; ++k) {
    auto r = env->step_into(rldt::Span<const double>(&actions[static_cast<size_t>(k) * nu], nu), obs);
    if (r.terminated || r.truncated) env->reset_into(std::nullopt, obs);
  }
  const double single = steps / seconds_since(t0);
  std::printf("%s: bare mj_step loop %.0f env-steps/s, rldt env %.0f steps/s (ratio %.3f)\n", task.c_str(),
              bare, single, single / bare);

  // 3. VecEnv with 8 envs, 1 and 2 threads
  const int n = 8;
  double vec1 = 0;
  for (int threads : {1, 2}) {
    rldt::VecEnv vec(task, n, threads);
    vec.reset(0);
    std::vector<double> a(static_cast<size_t>(n) * nu);
    const int calls = steps / n;
    t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < calls; ++k) {
      std::copy(actions.begin() + static_cast<size_t>(k) * n * nu,
                actions.begin() + static_cast<size_t>(k + 1) * n * nu, a.begin());
      vec.step(a);
    }
    const double rate = static_cast<double>(calls) * n / seconds_since(t0);
    if (threads == 1) vec1 = rate;
    std::printf("VecEnv(%d envs, %d threads): %.0f env-steps/s (%.2fx the 1-thread pool)\n", n, threads, rate,
                rate / vec1);
  }
  return 0;
}
