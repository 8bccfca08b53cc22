#include "rldt/envs/tasks/ant.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace rldt {

void AntConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("forward_reward_weight", forward_reward_weight)
      .add("ctrl_cost_weight", ctrl_cost_weight)
      .add("contact_cost_weight", contact_cost_weight)
      .add("healthy_reward", healthy_reward)
      .add("main_body", main_body)
      .add("terminate_when_unhealthy", terminate_when_unhealthy)
      .add("healthy_z_min", healthy_z_min)
      .add("healthy_z_max", healthy_z_max)
      .add("contact_force_min", contact_force_min)
      .add("contact_force_max", contact_force_max)
      .add("reset_noise_scale", reset_noise_scale)
      .add("exclude_current_positions_from_observation", exclude_current_positions_from_observation)
      .add("include_cfrc_ext_in_observation", include_cfrc_ext_in_observation);
}

AntEnv::AntEnv(std::shared_ptr<const MujocoModel> model, const AntConfig& config)
    : MujocoEnv(kName, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
  expect_model_sizes(15, 14, 8, 14);
  if (cfg_.main_body < 1 || cfg_.main_body >= m_->nbody)
    throw EnvError(std::string(kName) + ": option 'main_body' = " + std::to_string(cfg_.main_body) +
                   " must be a body index in [1, " + std::to_string(m_->nbody - 1) + "]");
  int obs_dim = m_->nq + m_->nv - (cfg_.exclude_current_positions_from_observation ? 2 : 0);
  if (cfg_.include_cfrc_ext_in_observation) obs_dim += (m_->nbody - 1) * 6;
  finish_spec(obs_dim, {"x_position", "y_position", "distance_from_origin", "x_velocity",
                        "y_velocity", "reward_forward", "reward_ctrl", "reward_contact",
                        "reward_survive"});
}

bool AntEnv::is_healthy() const {
  for (int i = 0; i < m_->nq; ++i)
    if (!std::isfinite(d_->qpos[i])) return false;
  for (int i = 0; i < m_->nv; ++i)
    if (!std::isfinite(d_->qvel[i])) return false;
  const double z = d_->qpos[2];
  return cfg_.healthy_z_min <= z && z <= cfg_.healthy_z_max;  // closed interval, as in v5
}

double AntEnv::clipped_contact_force(int i) const {
  return std::clamp(d_->cfrc_ext[i], cfg_.contact_force_min, cfg_.contact_force_max);
}

void AntEnv::sample_initial_state(EnvRng& rng, double* qpos, double* qvel) {
  const double s = cfg_.reset_noise_scale;
  for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
  for (int i = 0; i < m_->nv; ++i) qvel[i] += s * rng.normal();
}

void AntEnv::fill_reset_info(StepInfo& info) const {
  info.x_position = d_->qpos[0];
  info.y_position = d_->qpos[1];
  info.distance_from_origin = std::sqrt(d_->qpos[0] * d_->qpos[0] + d_->qpos[1] * d_->qpos[1]);
}

void AntEnv::before_step() {
  xy_before_[0] = d_->xpos[3 * cfg_.main_body];
  xy_before_[1] = d_->xpos[3 * cfg_.main_body + 1];
}

void AntEnv::after_step(const double* action, StepResult& out) {
  const double dt = spec().dt;
  const double x_velocity = (d_->xpos[3 * cfg_.main_body] - xy_before_[0]) / dt;
  const double y_velocity = (d_->xpos[3 * cfg_.main_body + 1] - xy_before_[1]) / dt;
  const bool healthy = is_healthy();
  const double forward = x_velocity * cfg_.forward_reward_weight;
  const double survive = healthy ? cfg_.healthy_reward : 0.0;
  const double ctrl_cost = weighted_square_sum(action, m_->nu, cfg_.ctrl_cost_weight);
  double contact_sq = 0.0;
  for (int i = 0; i < 6 * m_->nbody; ++i) {
    const double f = clipped_contact_force(i);
    contact_sq += f * f;
  }
  const double contact_cost = cfg_.contact_cost_weight * contact_sq;
  out.reward = (forward + survive) - (ctrl_cost + contact_cost);
  out.terminated = !healthy && cfg_.terminate_when_unhealthy;
  StepInfo& info = out.info;
  fill_reset_info(info);
  info.x_velocity = x_velocity;
  info.y_velocity = y_velocity;
  info.reward_forward = forward;
  info.reward_ctrl = -ctrl_cost;
  info.reward_contact = -contact_cost;
  info.reward_survive = survive;
}

void AntEnv::write_observation(double* obs) const {
  const int skip = cfg_.exclude_current_positions_from_observation ? 2 : 0;
  for (int i = skip; i < m_->nq; ++i) *obs++ = d_->qpos[i];
  for (int i = 0; i < m_->nv; ++i) *obs++ = d_->qvel[i];
  if (cfg_.include_cfrc_ext_in_observation)
    for (int i = 6; i < 6 * m_->nbody; ++i) *obs++ = clipped_contact_force(i);  // skip the world
}

}  // namespace rldt
