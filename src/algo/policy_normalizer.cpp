#include "rldt/algo/policy_normalizer.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/util/check.hpp"

namespace rldt {

namespace {

// (center, 2 / range) as float64 tensors; zero-range coordinates get scale 0 (→ 0).
std::pair<torch::Tensor, torch::Tensor> center_scale(const MinMaxNormalizer& n) {
  const auto d = static_cast<int64_t>(n.dim());
  auto center = torch::empty({d}, torch::kFloat64), scale = torch::empty({d}, torch::kFloat64);
  for (int64_t i = 0; i < d; ++i) {
    const double lo = n.low()[i], hi = n.high()[i];
    center[i] = 0.5 * (lo + hi);
    scale[i] = hi > lo ? 2.0 / (hi - lo) : 0.0;
  }
  return {center, scale};
}

void check_last_dim(const torch::Tensor& t, int64_t d, const char* name) {
  check_arg(t.defined() && t.dim() >= 1 && t.size(-1) == d, "argument '", name, "' must have last dimension ", d,
            ", got shape ", t.defined() ? shape_to_string(t.sizes()) : std::string("undefined"));
}

}  // namespace

torch::Tensor PolicyNormalizer::normalize_obs(const torch::Tensor& o) const {
  if (!obs) return o;
  check_last_dim(o, static_cast<int64_t>(obs->dim()), "obs");
  auto [center, scale] = center_scale(*obs);
  return ((o.to(torch::kFloat64) - center) * scale).to(torch::kFloat32);
}

MinMaxNormalizer PolicyNormalizer::action_map(const BoxSpec& env_action) const {
  if (action) return *action;
  for (size_t i = 0; i < env_action.size(); ++i)
    check_arg(std::isfinite(env_action.low[i]) && std::isfinite(env_action.high[i]),
              "the env's action box is unbounded in coordinate ", i,
              "; policy actions need finite bounds (store action bounds in the policy's normaliser)");
  return MinMaxNormalizer::from_box(env_action);
}

torch::Tensor PolicyNormalizer::action_to_env(const torch::Tensor& a, const BoxSpec& env_action) const {
  const auto map = action_map(env_action);
  check_last_dim(a, static_cast<int64_t>(map.dim()), "actions");
  auto low = torch::tensor(map.low(), torch::kFloat64), high = torch::tensor(map.high(), torch::kFloat64);
  auto y = a.to(torch::kFloat64).clamp(-1.0, 1.0);
  return (low + (y + 1.0) * 0.5 * (high - low)).to(torch::kFloat32);
}

torch::Tensor PolicyNormalizer::action_from_env(const torch::Tensor& a, const BoxSpec& env_action) const {
  const auto map = action_map(env_action);
  check_last_dim(a, static_cast<int64_t>(map.dim()), "actions");
  auto [center, scale] = center_scale(map);
  return ((a.to(torch::kFloat64) - center) * scale).to(torch::kFloat32);
}

void PolicyNormalizer::check_dims(int64_t obs_dim, int64_t action_dim) const {
  check_arg(!obs || static_cast<int64_t>(obs->dim()) == obs_dim, "the observation normaliser has ",
            obs ? obs->dim() : 0, " coordinates; the policy's obs_dim is ", obs_dim);
  check_arg(!action || static_cast<int64_t>(action->dim()) == action_dim, "the action normaliser has ",
            action ? action->dim() : 0, " coordinates; the policy's action_dim is ", action_dim);
}

}  // namespace rldt
