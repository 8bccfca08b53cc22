#include "rldt/envs/tasks/half_cheetah.hpp"

namespace rldt {

void HalfCheetahConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("forward_reward_weight", forward_reward_weight)
      .add("ctrl_cost_weight", ctrl_cost_weight)
      .add("reset_noise_scale", reset_noise_scale)
      .add("exclude_current_positions_from_observation", exclude_current_positions_from_observation);
}

HalfCheetahEnv::HalfCheetahEnv(std::shared_ptr<const MujocoModel> model,
                               const HalfCheetahConfig& config)
    : MujocoEnv(kName, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
  expect_model_sizes(9, 9, 6, 8);
  const int skipped = cfg_.exclude_current_positions_from_observation ? 1 : 0;
  finish_spec(m_->nq + m_->nv - skipped, {"x_position", "x_velocity", "reward_forward", "reward_ctrl"});
}

void HalfCheetahEnv::sample_initial_state(EnvRng& rng, double* qpos, double* qvel) {
  const double s = cfg_.reset_noise_scale;
  for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
  for (int i = 0; i < m_->nv; ++i) qvel[i] += s * rng.normal();
}

void HalfCheetahEnv::fill_reset_info(StepInfo& info) const { info.x_position = d_->qpos[0]; }

void HalfCheetahEnv::before_step() { x_before_ = d_->qpos[0]; }

void HalfCheetahEnv::after_step(const double* action, StepResult& out) {
  const double x_after = d_->qpos[0];
  const double x_velocity = (x_after - x_before_) / spec().dt;
  const double forward = cfg_.forward_reward_weight * x_velocity;
  const double ctrl_cost = weighted_square_sum(action, m_->nu, cfg_.ctrl_cost_weight);
  out.reward = forward - ctrl_cost;
  out.terminated = false;
  out.info.x_position = x_after;
  out.info.x_velocity = x_velocity;
  out.info.reward_forward = forward;
  out.info.reward_ctrl = -ctrl_cost;
}

void HalfCheetahEnv::write_observation(double* obs) const {
  const int skip = cfg_.exclude_current_positions_from_observation ? 1 : 0;
  for (int i = skip; i < m_->nq; ++i) *obs++ = d_->qpos[i];
  for (int i = 0; i < m_->nv; ++i) *obs++ = d_->qvel[i];
}

}  // namespace rldt
