// Ant-v5: quadruped on a free joint. Facts follow Gymnasium's v5 definition.
//   observation [105]: qpos[2:15] (13), qvel (14), clip(cfrc_ext[1:14], contact_force_min,
//                      contact_force_max) (13 bodies x 6 = 78); qpos[0:2] added when
//                      exclude_current_positions_from_observation = false, cfrc_ext dropped when
//                      include_cfrc_ext_in_observation = false ([27])
//   action [8]: hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3 in [-1, 1]
//   reward = forward_reward_weight * dx/dt + healthy_reward * healthy - ctrl_cost_weight * |a|^2
//            - contact_cost_weight * |clip(cfrc_ext)|^2, where x is the torso's xpos (which
//            MuJoCo computes at the start of the last physics step, as Gymnasium reads it)
//   healthy: qpos, qvel finite and healthy_z_min <= qpos[2] <= healthy_z_max (closed interval)
//   reset: qpos0 + U(+-reset_noise_scale) (also on the quaternion), qvel scale * N(0, 1);
//   dt = 5 * 0.01 s.
#pragma once

#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct AntConfig {
  int frame_skip = 5;
  int max_episode_steps = 1000;
  double forward_reward_weight = 1.0;
  double ctrl_cost_weight = 0.5;
  double contact_cost_weight = 5e-4;
  double healthy_reward = 1.0;
  int main_body = 1;  // body whose xpos gives the forward velocity (1 = torso)
  bool terminate_when_unhealthy = true;
  double healthy_z_min = 0.2;
  double healthy_z_max = 1.0;
  double contact_force_min = -1.0;
  double contact_force_max = 1.0;
  double reset_noise_scale = 0.1;
  bool exclude_current_positions_from_observation = true;
  bool include_cfrc_ext_in_observation = true;

  void bind(OptionBinder& b);
};

class AntEnv : public MujocoEnv {
 public:
  static constexpr const char* kName = "Ant-v5";
  static constexpr const char* kModelFile = "ant.xml";

  AntEnv(std::shared_ptr<const MujocoModel> model, const AntConfig& config = {});
  const AntConfig& config() const { return cfg_; }
  bool is_healthy() const;

 protected:
  void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) override;
  void fill_reset_info(StepInfo& info) const override;
  void before_step() override;
  void after_step(const double* action, StepResult& out) override;
  void write_observation(double* obs) const override;

 private:
  double clipped_contact_force(int i) const;  // i indexes cfrc_ext flattened [nbody * 6]
  AntConfig cfg_;
  double xy_before_[2] = {0.0, 0.0};
};

}  // namespace rldt
