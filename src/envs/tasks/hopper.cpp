#include "rldt/envs/tasks/hopper.hpp"

namespace rldt {

void HopperConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("forward_reward_weight", forward_reward_weight)
      .add("ctrl_cost_weight", ctrl_cost_weight)
      .add("healthy_reward", healthy_reward)
      .add("terminate_when_unhealthy", terminate_when_unhealthy)
      .add("healthy_state_min", healthy_state_min)
      .add("healthy_state_max", healthy_state_max)
      .add("healthy_z_min", healthy_z_min)
      .add("healthy_z_max", healthy_z_max)
      .add("healthy_angle_min", healthy_angle_min)
      .add("healthy_angle_max", healthy_angle_max)
      .add("reset_noise_scale", reset_noise_scale)
      .add("exclude_current_positions_from_observation", exclude_current_positions_from_observation);
}

HopperEnv::HopperEnv(std::shared_ptr<const MujocoModel> model, const HopperConfig& config)
    : PlanarWalkerEnv(kName, std::move(model), config, /*nq=*/6, /*nv=*/6, /*nu=*/3, /*nbody=*/5) {}

bool HopperEnv::is_healthy() const {
  const double z = d_->qpos[1], angle = d_->qpos[2];
  // The state check covers qpos[2:] and all of qvel (Gymnasium's state_vector()[2:]).
  for (int i = 2; i < m_->nq + m_->nv; ++i) {
    const double s = i < m_->nq ? d_->qpos[i] : d_->qvel[i - m_->nq];
    if (!(cfg_.healthy_state_min < s && s < cfg_.healthy_state_max)) return false;
  }
  return cfg_.healthy_z_min < z && z < cfg_.healthy_z_max && cfg_.healthy_angle_min < angle &&
         angle < cfg_.healthy_angle_max;
}

}  // namespace rldt
