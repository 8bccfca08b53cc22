// Walker2d-v5: planar biped. Facts follow Gymnasium's v5 definition.
//   observation [17]: qpos[1:9], clip(qvel[0:9], -10, 10) ([18] with qpos[0])
//   action [6]: right thigh, leg, foot, left thigh, leg, foot torques in [-1, 1] (gear 100)
//   reward = forward_reward_weight * dx/dt + healthy_reward * healthy - ctrl_cost_weight * |a|^2
//   healthy: z = qpos[1] in (healthy_z_min, healthy_z_max), angle = qpos[2] in
//            (healthy_angle_min, healthy_angle_max) (open intervals)
//   reset: qpos0 + U(+-reset_noise_scale), qvel U(+-reset_noise_scale); dt = 4 * 0.002 s.
#pragma once

#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/tasks/planar_walker.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct Walker2dConfig {
  int frame_skip = 4;
  int max_episode_steps = 1000;
  double forward_reward_weight = 1.0;
  double ctrl_cost_weight = 1e-3;
  double healthy_reward = 1.0;
  bool terminate_when_unhealthy = true;
  double healthy_z_min = 0.8;
  double healthy_z_max = 2.0;
  double healthy_angle_min = -1.0;
  double healthy_angle_max = 1.0;
  double reset_noise_scale = 5e-3;
  bool exclude_current_positions_from_observation = true;

  void bind(OptionBinder& b);
};

class Walker2dEnv : public PlanarWalkerEnv<Walker2dConfig> {
 public:
  static constexpr const char* kName = "Walker2d-v5";
  static constexpr const char* kModelFile = "walker2d.xml";

  Walker2dEnv(std::shared_ptr<const MujocoModel> model, const Walker2dConfig& config = {});
  bool is_healthy() const override;
};

}  // namespace rldt
