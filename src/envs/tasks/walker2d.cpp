#include "rldt/envs/tasks/walker2d.hpp"

namespace rldt {

void Walker2dConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("forward_reward_weight", forward_reward_weight)
      .add("ctrl_cost_weight", ctrl_cost_weight)
      .add("healthy_reward", healthy_reward)
      .add("terminate_when_unhealthy", terminate_when_unhealthy)
      .add("healthy_z_min", healthy_z_min)
      .add("healthy_z_max", healthy_z_max)
      .add("healthy_angle_min", healthy_angle_min)
      .add("healthy_angle_max", healthy_angle_max)
      .add("reset_noise_scale", reset_noise_scale)
      .add("exclude_current_positions_from_observation", exclude_current_positions_from_observation);
}

Walker2dEnv::Walker2dEnv(std::shared_ptr<const MujocoModel> model, const Walker2dConfig& config)
    : PlanarWalkerEnv(kName, std::move(model), config, /*nq=*/9, /*nv=*/9, /*nu=*/6, /*nbody=*/8) {}

bool Walker2dEnv::is_healthy() const {
  const double z = d_->qpos[1], angle = d_->qpos[2];
  return cfg_.healthy_z_min < z && z < cfg_.healthy_z_max && cfg_.healthy_angle_min < angle &&
         angle < cfg_.healthy_angle_max;
}

}  // namespace rldt
