#include "rldt/envs/tasks/humanoid.hpp"

#include <algorithm>
#include <cmath>

namespace rldt {

void HumanoidConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("forward_reward_weight", forward_reward_weight)
      .add("ctrl_cost_weight", ctrl_cost_weight)
      .add("contact_cost_weight", contact_cost_weight)
      .add("contact_cost_max", contact_cost_max)
      .add("healthy_reward", healthy_reward)
      .add("terminate_when_unhealthy", terminate_when_unhealthy)
      .add("healthy_z_min", healthy_z_min)
      .add("healthy_z_max", healthy_z_max)
      .add("reset_noise_scale", reset_noise_scale)
      .add("exclude_current_positions_from_observation", exclude_current_positions_from_observation)
      .add("include_cinert_in_observation", include_cinert_in_observation)
      .add("include_cvel_in_observation", include_cvel_in_observation)
      .add("include_qfrc_actuator_in_observation", include_qfrc_actuator_in_observation)
      .add("include_cfrc_ext_in_observation", include_cfrc_ext_in_observation);
}

HumanoidEnv::HumanoidEnv(std::shared_ptr<const MujocoModel> model, const HumanoidConfig& config)
    : MujocoEnv(kName, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
  expect_model_sizes(24, 23, 17, 14);
  const int bodies = m_->nbody - 1;  // the world body is left out of every per-body block
  int obs_dim = m_->nq + m_->nv - (cfg_.exclude_current_positions_from_observation ? 2 : 0);
  if (cfg_.include_cinert_in_observation) obs_dim += bodies * 10;
  if (cfg_.include_cvel_in_observation) obs_dim += bodies * 6;
  if (cfg_.include_qfrc_actuator_in_observation) obs_dim += m_->nv - 6;
  if (cfg_.include_cfrc_ext_in_observation) obs_dim += bodies * 6;
  finish_spec(obs_dim, {"x_position", "y_position", "distance_from_origin", "x_velocity",
                        "y_velocity", "reward_survive", "reward_forward", "reward_ctrl",
                        "reward_contact"});
  for (int b = 0; b < m_->nbody; ++b) total_mass_ += m_->body_mass[b];
}

bool HumanoidEnv::is_healthy() const {
  const double z = d_->qpos[2];
  return cfg_.healthy_z_min < z && z < cfg_.healthy_z_max;
}

void HumanoidEnv::mass_center(double* xy) const {
  double sx = 0.0, sy = 0.0;
  for (int b = 0; b < m_->nbody; ++b) {
    sx += m_->body_mass[b] * d_->xipos[3 * b];
    sy += m_->body_mass[b] * d_->xipos[3 * b + 1];
  }
  xy[0] = sx / total_mass_;
  xy[1] = sy / total_mass_;
}

void HumanoidEnv::sample_initial_state(EnvRng& rng, double* qpos, double* qvel) {
  const double s = cfg_.reset_noise_scale;
  for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
  for (int i = 0; i < m_->nv; ++i) qvel[i] += rng.uniform(-s, s);
}

void HumanoidEnv::fill_reset_info(StepInfo& info) const {
  info.x_position = d_->qpos[0];
  info.y_position = d_->qpos[1];
  info.distance_from_origin = std::sqrt(d_->qpos[0] * d_->qpos[0] + d_->qpos[1] * d_->qpos[1]);
}

void HumanoidEnv::before_step() { mass_center(xy_before_); }

void HumanoidEnv::after_step(const double* action, StepResult& out) {
  (void)action;  // the control cost uses ctrl, which holds the action as given
  double xy_after[2];
  mass_center(xy_after);
  const double dt = spec().dt;
  const double x_velocity = (xy_after[0] - xy_before_[0]) / dt;
  const double y_velocity = (xy_after[1] - xy_before_[1]) / dt;
  const bool healthy = is_healthy();
  const double forward = cfg_.forward_reward_weight * x_velocity;
  const double survive = healthy ? cfg_.healthy_reward : 0.0;
  const double ctrl_cost = weighted_square_sum(d_->ctrl, m_->nu, cfg_.ctrl_cost_weight);
  const double contact_cost =
      std::min(weighted_square_sum(d_->cfrc_ext, 6 * m_->nbody, cfg_.contact_cost_weight),
               cfg_.contact_cost_max);
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

void HumanoidEnv::write_observation(double* obs) const {
  const int skip = cfg_.exclude_current_positions_from_observation ? 2 : 0;
  for (int i = skip; i < m_->nq; ++i) *obs++ = d_->qpos[i];
  for (int i = 0; i < m_->nv; ++i) *obs++ = d_->qvel[i];
  if (cfg_.include_cinert_in_observation) obs = std::copy(d_->cinert + 10, d_->cinert + 10 * m_->nbody, obs);
  if (cfg_.include_cvel_in_observation) obs = std::copy(d_->cvel + 6, d_->cvel + 6 * m_->nbody, obs);
  if (cfg_.include_qfrc_actuator_in_observation)
    obs = std::copy(d_->qfrc_actuator + 6, d_->qfrc_actuator + m_->nv, obs);
  if (cfg_.include_cfrc_ext_in_observation)
    std::copy(d_->cfrc_ext + 6, d_->cfrc_ext + 6 * m_->nbody, obs);
}

}  // namespace rldt
