// rldt_bench_envs: env steps per second of the native tasks.
//   1. one env on one thread against a bare loop of mj_step (frame_skip calls per env step, same
//      actions, resets every 1000 steps; nothing else), and
//   2. the VecEnv pool with N envs (default 16) on 1 thread against 2 threads, and
//   3. the time of one env reset (mj_resetData, the task's initial-state noise, mj_forward).
// Usage: rldt_bench_envs [steps=20000] [num_envs=16] [reps=5] [task ...]
// Each measurement is repeated `reps` times, alternating between the loops being compared, and
// the best rate of each is kept (a shared machine only ever makes a loop slower). The printed
// ratios come from one run; absolute rates depend on the machine's load.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bare_physics.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/envs/vec_env.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Row {
  std::string task;
  double bare = 0, single = 0, vec1 = 0, vec2 = 0, reset_us = 1e300;
};

Row bench_task(const std::string& task, int steps, int num_envs, int reps) {
  // Both single-env loops must simulate the same kind of states (a fallen humanoid has more
  // contacts than a standing one): no early termination where the task allows turning it off.
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

  Row row;
  row.task = task;
  rldt::bench::BarePhysics bare(task, steps);  // the same actions (seed 0)
  std::vector<double> obs(spec.observation.size());
  for (int rep = 0; rep < reps; ++rep) {
    row.bare = std::max(row.bare, bare.steps_per_s());

    env->reset_into(0, obs);
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < steps; ++k) {
      auto r = env->step_into(rldt::Span<const double>(&actions[static_cast<size_t>(k) * nu], nu), obs);
      if (r.terminated || r.truncated) env->reset_into(std::nullopt, obs);
    }
    row.single = std::max(row.single, steps / seconds_since(t0));

    const int resets = std::max(1, steps / 10);
    t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < resets; ++k) env->reset_into(std::nullopt, obs);
    row.reset_us = std::min(row.reset_us, 1e6 * seconds_since(t0) / resets);
  }

  // The pool: same options, same actions (each call takes the next num_envs rows).
  rldt::VecEnv vec1(task, num_envs, 1, options), vec2(task, num_envs, 2, options);
  vec1.reset(0);
  vec2.reset(0);
  const int calls = std::max(1, steps / num_envs);
  std::vector<double> a(static_cast<size_t>(num_envs) * nu);
  for (int rep = 0; rep < reps; ++rep) {
    for (rldt::VecEnv* vec : {&vec1, &vec2}) {
      auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < calls; ++k) {
        for (size_t j = 0; j < a.size(); ++j) a[j] = actions[(static_cast<size_t>(k) * a.size() + j) % actions.size()];
        vec->step(a);
      }
      const double rate = static_cast<double>(calls) * num_envs / seconds_since(t0);
      double& best = vec == &vec1 ? row.vec1 : row.vec2;
      best = std::max(best, rate);
    }
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int num_envs = argc > 2 ? std::atoi(argv[2]) : 16;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<std::string> tasks;
  for (int i = 4; i < argc; ++i) tasks.emplace_back(argv[i]);
  if (tasks.empty()) tasks = rldt::env_names();
  if (steps < 1 || num_envs < 1 || reps < 1) {
    std::fprintf(stderr, "usage: %s [steps=20000] [num_envs=16] [reps=5] [task ...]\n", argv[0]);
    return 2;
  }
  std::printf("steps %d per loop, best of %d; pool: %d envs\n\n", steps, reps, num_envs);
  std::printf(
      "| task | bare mj_step (steps/s) | rldt env (steps/s) | env / bare | pool 1 thread (steps/s) "
      "| pool 2 threads (steps/s) | 2 / 1 threads | reset (us) |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& task : tasks) {
    try {
      Row r = bench_task(task, steps, num_envs, reps);
      std::printf("| %s | %.0f | %.0f | %.3f | %.0f | %.0f | %.2f | %.1f |\n", r.task.c_str(), r.bare, r.single,
                  r.single / r.bare, r.vec1, r.vec2, r.vec2 / r.vec1, r.reset_us);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", task.c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
