// Humanoid-v5: 3-D biped on a free joint. Facts follow Gymnasium's v5 definition.
//   observation [348]: qpos[2:24] (22), qvel (23), cinert[1:14] (13 x 10 = 130),
//                      cvel[1:14] (13 x 6 = 78), qfrc_actuator[6:23] (17), cfrc_ext[1:14] (78)
//                      (each block optional, qpos[0:2] added when positions are not excluded)
//   action [17]: joint torques in [-0.4, 0.4]
//   reward = forward_reward_weight * dx/dt + healthy_reward * healthy - ctrl_cost_weight * |ctrl|^2
//            - min(contact_cost_weight * |cfrc_ext|^2, contact_cost_max), x = the mass-weighted
//            mean of the bodies' xipos (centre of mass, as MuJoCo left it after the last step)
//   healthy: healthy_z_min < qpos[2] < healthy_z_max (open interval)
//   reset: qpos0 + U(+-reset_noise_scale), qvel U(+-reset_noise_scale); dt = 5 * 0.003 s.
#pragma once

#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct HumanoidConfig {
  int frame_skip = 5;
  int max_episode_steps = 1000;
  double forward_reward_weight = 1.25;
  double ctrl_cost_weight = 0.1;
  double contact_cost_weight = 5e-7;
  double contact_cost_max = 10.0;
  double healthy_reward = 5.0;
  bool terminate_when_unhealthy = true;
  double healthy_z_min = 1.0;
  double healthy_z_max = 2.0;
  double reset_noise_scale = 1e-2;
  bool exclude_current_positions_from_observation = true;
  bool include_cinert_in_observation = true;
  bool include_cvel_in_observation = true;
  bool include_qfrc_actuator_in_observation = true;
  bool include_cfrc_ext_in_observation = true;

  void bind(OptionBinder& b);
};

class HumanoidEnv : public MujocoEnv {
 public:
  static constexpr const char* kName = "Humanoid-v5";
  static constexpr const char* kModelFile = "humanoid.xml";

  HumanoidEnv(std::shared_ptr<const MujocoModel> model, const HumanoidConfig& config = {});
  const HumanoidConfig& config() const { return cfg_; }
  bool is_healthy() const;

 protected:
  void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) override;
  void fill_reset_info(StepInfo& info) const override;
  void before_step() override;
  void after_step(const double* action, StepResult& out) override;
  void write_observation(double* obs) const override;

 private:
  void mass_center(double* xy) const;  // xy [2]
  HumanoidConfig cfg_;
  double total_mass_ = 0.0;
  double xy_before_[2] = {0.0, 0.0};
};

}  // namespace rldt
