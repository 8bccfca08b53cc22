// Shared mechanics of Hopper-v5 and Walker2d-v5 (planar walkers on rootx, rootz, rooty):
// reset noise U(+-scale) on qpos and qvel, observation qpos[1:] (or qpos) + clip(qvel, -10, 10),
// reward forward_reward_weight * dx/dt + healthy_reward * healthy - ctrl_cost_weight * |a|^2,
// termination on !healthy. The task defines is_healthy() and the config defaults.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "rldt/envs/mujoco_env.hpp"

namespace rldt {

// ConfigT needs: frame_skip, max_episode_steps, forward_reward_weight, ctrl_cost_weight,
// healthy_reward, terminate_when_unhealthy, reset_noise_scale,
// exclude_current_positions_from_observation.
template <typename ConfigT>
class PlanarWalkerEnv : public MujocoEnv {
 public:
  const ConfigT& config() const { return cfg_; }
  // Whether the current state is healthy (task-specific ranges).
  virtual bool is_healthy() const = 0;

 protected:
  PlanarWalkerEnv(const char* name, std::shared_ptr<const MujocoModel> model, const ConfigT& config,
                  int nq, int nv, int nu, int nbody)
      : MujocoEnv(name, std::move(model), config.frame_skip, config.max_episode_steps), cfg_(config) {
    expect_model_sizes(nq, nv, nu, nbody);
    const int skipped = cfg_.exclude_current_positions_from_observation ? 1 : 0;
    finish_spec(nq + nv - skipped, {"x_position", "z_distance_from_origin", "x_velocity",
                                    "reward_forward", "reward_ctrl", "reward_survive"});
  }

  void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) override {
    const double s = cfg_.reset_noise_scale;
    for (int i = 0; i < m_->nq; ++i) qpos[i] += rng.uniform(-s, s);
    for (int i = 0; i < m_->nv; ++i) qvel[i] += rng.uniform(-s, s);
  }

  void fill_reset_info(StepInfo& info) const override {
    info.x_position = d_->qpos[0];
    info.z_distance_from_origin = d_->qpos[1] - init_qpos()[1];
  }

  void before_step() override { x_before_ = d_->qpos[0]; }

  void after_step(const double* action, StepResult& out) override {
    const double x_velocity = (d_->qpos[0] - x_before_) / spec().dt;
    const bool healthy = is_healthy();
    const double forward = cfg_.forward_reward_weight * x_velocity;
    const double survive = healthy ? cfg_.healthy_reward : 0.0;
    const double ctrl_cost = weighted_square_sum(action, m_->nu, cfg_.ctrl_cost_weight);
    out.reward = (forward + survive) - ctrl_cost;
    out.terminated = !healthy && cfg_.terminate_when_unhealthy;
    fill_reset_info(out.info);
    out.info.x_velocity = x_velocity;
    out.info.reward_forward = forward;
    out.info.reward_ctrl = -ctrl_cost;
    out.info.reward_survive = survive;
  }

  void write_observation(double* obs) const override {
    const int skip = cfg_.exclude_current_positions_from_observation ? 1 : 0;
    for (int i = skip; i < m_->nq; ++i) *obs++ = d_->qpos[i];
    for (int i = 0; i < m_->nv; ++i) *obs++ = std::clamp(d_->qvel[i], -10.0, 10.0);
  }

  ConfigT cfg_;

 private:
  double x_before_ = 0.0;
};

}  // namespace rldt
