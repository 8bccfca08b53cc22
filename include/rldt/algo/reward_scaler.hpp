// Reward scaling before the critic targets (ALGORITHM.md §2). The buffer keeps
// raw rewards; the scale is applied when targets are built.
//   reward_scale >= 0: a fixed multiplier.
//   reward_scale <  0: scale = 1 / (EMA of mean |r| + 1e-8), EMA weight `alpha`,
//                      cold-started from the first batch with mean |r| >= 1e-8.
#pragma once

#include <torch/types.h>

namespace rldt {

class RewardScaler {
 public:
  explicit RewardScaler(double reward_scale = -1.0, double alpha = 0.01);

  // Updates the EMA from a batch of raw rewards (any shape). No-op for a fixed scale.
  void update(const torch::Tensor& raw_rewards);
  double scale() const;
  // raw (any shape) → scaled, same shape.
  torch::Tensor apply(const torch::Tensor& raw_rewards) const { return raw_rewards * scale(); }

  bool adaptive() const { return fixed_ < 0; }
  double ema() const { return ema_; }  // −1 until initialised
  void set_ema(double ema) { ema_ = ema; }

 private:
  double fixed_, alpha_, ema_ = -1.0;
};

}  // namespace rldt
