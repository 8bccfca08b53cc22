// HalfCheetah-v5: planar runner; never terminates. Facts follow Gymnasium's v5 definition.
//   observation [17]: qpos[1:9], qvel[0:9] (unclipped) ([18] with qpos[0])
//   action [6]: bthigh, bshin, bfoot, fthigh, fshin, ffoot torques in [-1, 1]
//   reward = forward_reward_weight * dx/dt - ctrl_cost_weight * |a|^2
//   reset: qpos0 + U(+-reset_noise_scale), qvel reset_noise_scale * N(0, 1); dt = 5 * 0.01 s.
#pragma once

#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct HalfCheetahConfig {
  int frame_skip = 5;
  int max_episode_steps = 1000;
  double forward_reward_weight = 1.0;
  double ctrl_cost_weight = 0.1;
  double reset_noise_scale = 0.1;
  bool exclude_current_positions_from_observation = true;

  void bind(OptionBinder& b);
};

class HalfCheetahEnv : public MujocoEnv {
 public:
  static constexpr const char* kName = "HalfCheetah-v5";
  static constexpr const char* kModelFile = "half_cheetah.xml";

  HalfCheetahEnv(std::shared_ptr<const MujocoModel> model, const HalfCheetahConfig& config = {});
  const HalfCheetahConfig& config() const { return cfg_; }

 protected:
  void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) override;
  void fill_reset_info(StepInfo& info) const override;
  void before_step() override;
  void after_step(const double* action, StepResult& out) override;
  void write_observation(double* obs) const override;

 private:
  HalfCheetahConfig cfg_;
  double x_before_ = 0.0;
};

}  // namespace rldt
