// The network sizes every issue-6 benchmark uses (ALGORITHM.md §1-2, §7; Hopper): obs 11, d 3,
// chunk H = 4, K = 8, actor [512]x3 residual MLP, critics [256]x3 SiLU, M = 2. Shared by
// bench/perf_core.cpp and bench/profile_actor_update.cpp so they time the same networks.
#pragma once

#include <cstdint>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/flow_policy.hpp"

namespace rldt::bench {

constexpr int64_t kObs = 11, kAct = 3, kH = 4, kK = 8;

inline FlowPolicyConfig actor_config() {
  FlowPolicyConfig c;
  c.obs_dim = kObs;
  c.action_dim = kAct;
  c.horizon_steps = kH;
  c.denoising_steps = kK;
  c.mlp_dims = {512, 512, 512};
  return c;
}

inline CriticConfig critic_config() {
  CriticConfig c;
  c.obs_dim = kObs;
  c.action_dim = kAct;
  c.act_steps = kH;
  c.hidden = {256, 256, 256};
  return c;
}

}  // namespace rldt::bench
