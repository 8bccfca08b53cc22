#include "rldt/algo/reward_scaler.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/util/check.hpp"

namespace rldt {

RewardScaler::RewardScaler(double reward_scale, double alpha) : fixed_(reward_scale), alpha_(alpha) {
  check_arg(std::isfinite(reward_scale), "reward_scale must be finite, got ", reward_scale);
  check_arg(alpha > 0.0 && alpha <= 1.0, "reward_scale_alpha must be in (0, 1], got ", alpha);
}

void RewardScaler::update(const torch::Tensor& raw_rewards) {
  if (!adaptive() || raw_rewards.numel() == 0) return;
  check_finite(raw_rewards, "raw_rewards");
  const double m = raw_rewards.abs().mean().item<double>();
  if (m < 1e-8) return;
  ema_ = ema_ < 0 ? m : (1.0 - alpha_) * ema_ + alpha_ * m;
}

double RewardScaler::scale() const {
  if (!adaptive()) return fixed_;
  return ema_ < 0 ? 1.0 : 1.0 / (ema_ + 1e-8);
}

}  // namespace rldt
