// Observation and action normalisation that travels with a FlowPolicy (ALGORITHM.md §7:
// "Observations and actions are normalised to [−1, 1] with the pretraining dataset's min/max").
//
// The policy sees normalised observations and acts in [−1, 1]. Without stored bounds the
// observation map is the identity and policy actions map onto the env's action box (the
// behaviour of policy files written before normalisers existed).
//
// Shapes: B rows, O = obs_dim, d = action_dim; "..." any leading dims.
#pragma once

#include <torch/types.h>

#include <optional>

#include "rldt/envs/wrappers.hpp"

namespace rldt {

struct PolicyNormalizer {
  std::optional<MinMaxNormalizer> obs;     // observation bounds (dim O); none = identity
  std::optional<MinMaxNormalizer> action;  // env-unit bounds of policy actions (dim d); none = env box

  bool has_obs() const { return obs.has_value(); }
  bool has_action() const { return action.has_value(); }

  // Raw observations (..., O) float32 → normalised (..., O) float32: 2 (x − low)/(high − low) − 1,
  // coordinates with high == low → 0. Not clipped (states outside the data map outside [−1, 1]).
  torch::Tensor normalize_obs(const torch::Tensor& obs) const;

  // The affine map of policy actions [−1, 1] onto env units: the stored action bounds, else the
  // env's action box `env_action` (which must then be finite).
  MinMaxNormalizer action_map(const BoxSpec& env_action) const;
  // Policy actions (..., d) → env units (..., d) float32 through action_map, clipped to [−1, 1] first.
  torch::Tensor action_to_env(const torch::Tensor& actions, const BoxSpec& env_action) const;
  // Env-unit actions (..., d) → policy space (..., d) float32 through action_map (not clipped).
  torch::Tensor action_from_env(const torch::Tensor& actions, const BoxSpec& env_action) const;

  // Throws ArgumentError unless the stored bounds have obs_dim / action_dim coordinates.
  void check_dims(int64_t obs_dim, int64_t action_dim) const;
};

}  // namespace rldt
