// Test helper: the IterationMetrics fields that must agree between two runs (all but timings).
#pragma once

#include <vector>

#include "rldt/train/rldt_trainer.hpp"

namespace rldt::test {

inline std::vector<double> comparable_metrics(const IterationMetrics& m) {
  return {static_cast<double>(m.iteration),
          static_cast<double>(m.eval),
          static_cast<double>(m.env_steps),
          m.episode_return,
          m.episode_length,
          static_cast<double>(m.episodes),
          m.reward_per_step,
          m.critic_loss,
          m.actor_loss,
          m.align,
          m.cons,
          m.ref,
          m.grad_norm,
          m.particle_distance,
          m.reward_scale,
          m.eval_return,
          m.eval_return_std,
          m.eval_length,
          m.eval_q,
          m.eval_discounted_return};
}

}  // namespace rldt::test
