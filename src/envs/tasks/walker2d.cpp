#include "rldt/envs/tasks/walker2d.hpp"

#include <algorithm>

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
    : MujocoEnv(kName, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
  expect_model_sizes(9, 9, 6, 8);
  const int skipped = cfg_.exclude_current_positions_from_observation ? 1 : 0;
  finish_spec(m_->nq + m_->nv - skipped,
              {"x_position", "z_distance_from_origin", "x_velocity", "reward_forward", "reward_ctrl",
               "reward_survive"});
}

bool Walker2dEnv::is_healthy() const {
  const double z = d_->qpos[1], angle = d_->qpos[2];
  return cfg_.healthy_z_min < z && z < cfg_.healthy_z_max && cfg_.healthy_angle_min < angle &&
         angle < cfg_.healthy_angle_max;
}

void Walker2dEnv::sample_initial_state(EnvRng& rng, double* qpos, double* qvel) {
  const double s = cfg_.reset_noise_scale;
  for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
  for (int i = 0; i < m_->nv; ++i) qvel[i] += rng.uniform(-s, s);
}

void Walker2dEnv::fill_reset_info(StepInfo& info) const {
  info.x_position = d_->qpos[0];
  info.z_distance_from_origin = d_->qpos[1] - init_qpos()[1];
}

void Walker2dEnv::before_step() { x_before_ = d_->qpos[0]; }

void Walker2dEnv::after_step(const double* action, StepResult& out) {
  const double x_after = d_->qpos[0];
  const double x_velocity = (x_after - x_before_) / spec().dt;
  const bool healthy = is_healthy();
  const double forward = cfg_.forward_reward_weight * x_velocity;
  const double survive = healthy ? cfg_.healthy_reward : 0.0;
  const double ctrl_cost = weighted_square_sum(action, m_->nu, cfg_.ctrl_cost_weight);
  out.reward = (forward + survive) - ctrl_cost;
  out.terminated = !healthy && cfg_.terminate_when_unhealthy;
  StepInfo& info = out.info;
  info.x_position = x_after;
  info.z_distance_from_origin = d_->qpos[1] - init_qpos()[1];
  info.x_velocity = x_velocity;
  info.reward_forward = forward;
  info.reward_ctrl = -ctrl_cost;
  info.reward_survive = survive;
}

void Walker2dEnv::write_observation(double* obs) const {
  const int skip = cfg_.exclude_current_positions_from_observation ? 1 : 0;
  for (int i = skip; i < m_->nq; ++i) *obs++ = d_->qpos[i];
  for (int i = 0; i < m_->nv; ++i) *obs++ = std::clamp(d_->qvel[i], -10.0, 10.0);
}

}  // namespace rldt
