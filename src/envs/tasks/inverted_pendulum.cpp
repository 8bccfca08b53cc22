#include "rldt/envs/tasks/inverted_pendulum.hpp"

#include <cmath>

namespace rldt {

void InvertedPendulumConfig::bind(OptionBinder& b) {
  b.add("frame_skip", frame_skip)
      .add("max_episode_steps", max_episode_steps)
      .add("max_pole_angle", max_pole_angle)
      .add("reset_noise_scale", reset_noise_scale);
}

InvertedPendulumEnv::InvertedPendulumEnv(std::shared_ptr<const MujocoModel> model,
                                         const InvertedPendulumConfig& config)
    : MujocoEnv(kName, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
  expect_model_sizes(2, 2, 1, 3);
  finish_spec(m_->nq + m_->nv, {"reward_survive"});
}

void InvertedPendulumEnv::sample_initial_state(EnvRng& rng, double* qpos, double* qvel) {
  const double s = cfg_.reset_noise_scale;
  for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
  for (int i = 0; i < m_->nv; ++i) qvel[i] += rng.uniform(-s, s);
}

void InvertedPendulumEnv::after_step(const double* action, StepResult& out) {
  (void)action;
  bool finite = true;
  for (int i = 0; i < m_->nq; ++i) finite = finite && std::isfinite(d_->qpos[i]);
  for (int i = 0; i < m_->nv; ++i) finite = finite && std::isfinite(d_->qvel[i]);
  out.terminated = !finite || std::fabs(d_->qpos[1]) > cfg_.max_pole_angle;
  out.reward = out.terminated ? 0.0 : 1.0;
  out.info.reward_survive = out.reward;
}

void InvertedPendulumEnv::write_observation(double* obs) const {
  for (int i = 0; i < m_->nq; ++i) *obs++ = d_->qpos[i];
  for (int i = 0; i < m_->nv; ++i) *obs++ = d_->qvel[i];
}

}  // namespace rldt
