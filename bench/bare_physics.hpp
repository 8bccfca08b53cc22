// The bare physics rate of a task, the physics part of issue 6's rollout bound: one mjData
// stepped with frame_skip mj_step calls per env step, random actions in the action box set as
// controls, mj_resetData every max_episode_steps steps, and nothing else (no observations, no
// rewards, no early termination: a fallen robot keeps being simulated, as a long episode is).
// Shared by rldt_bench_envs (bench/env_steps.cpp) and rldt_bench_perf (bench/perf_core.cpp).
#pragma once

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"

namespace rldt::bench {

class BarePhysics {
 public:
  // `steps` env steps per timed pass; their actions are drawn once from `seed`.
  BarePhysics(const std::string& task, int steps, uint64_t seed = 0) : model_(load_env_model(task)), steps_(steps) {
    EnvOptions options;
    for (const auto& name : env_option_names(task))
      if (name == "terminate_when_unhealthy") options[name] = 0;
    const auto env = make_env(task, options);
    const auto& spec = env->spec();
    nu_ = static_cast<int>(spec.action.size());
    frame_skip_ = spec.frame_skip;
    episode_steps_ = spec.max_episode_steps;
    std::mt19937_64 gen(seed);
    actions_.resize(static_cast<size_t>(steps) * nu_);
    for (size_t k = 0; k < actions_.size(); ++k)
      actions_[k] = std::uniform_real_distribution<double>(spec.action.low[k % nu_], spec.action.high[k % nu_])(gen);
    data_ = mj_makeData(model_->get());
  }
  BarePhysics(const BarePhysics&) = delete;
  BarePhysics& operator=(const BarePhysics&) = delete;
  ~BarePhysics() { mj_deleteData(data_); }

  // One timed pass: env steps per second on the calling thread.
  double steps_per_s() {
    const mjModel* m = model_->get();
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < steps_; ++k) {
      if (k % episode_steps_ == 0) mj_resetData(m, data_);
      for (int j = 0; j < nu_; ++j) data_->ctrl[j] = actions_[static_cast<size_t>(k) * nu_ + j];
      for (int f = 0; f < frame_skip_; ++f) mj_step(m, data_);
    }
    return steps_ / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  std::shared_ptr<const MujocoModel> model_;
  int steps_, nu_ = 0, frame_skip_ = 1, episode_steps_ = 1000;
  std::vector<double> actions_;
  mjData* data_ = nullptr;
};

}  // namespace rldt::bench
