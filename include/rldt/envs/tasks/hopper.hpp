// Hopper-v5: planar one-legged hopper. Facts follow Gymnasium's v5 definition.
//   observation [11]: qpos[1:6] (rootz, rooty, thigh, leg, foot), clip(qvel[0:6], -10, 10)
//                     ([12] with qpos[0] when exclude_current_positions_from_observation = false)
//   action [3]: thigh, leg, foot torques in [-1, 1] (gear 200)
//   reward = forward_reward_weight * dx/dt + healthy_reward * healthy - ctrl_cost_weight * |a|^2
//   healthy: healthy_state_min < qpos[2:], qvel < healthy_state_max, z in (healthy_z_min,
//            healthy_z_max), torso angle in (healthy_angle_min, healthy_angle_max) (open sets)
//   reset: qpos0 + U(+-reset_noise_scale), qvel U(+-reset_noise_scale); dt = 4 * 0.002 s.
#pragma once

#include <limits>
#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/tasks/planar_walker.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct HopperConfig {
  int frame_skip = 4;
  int max_episode_steps = 1000;
  double forward_reward_weight = 1.0;
  double ctrl_cost_weight = 1e-3;
  double healthy_reward = 1.0;
  bool terminate_when_unhealthy = true;
  double healthy_state_min = -100.0;
  double healthy_state_max = 100.0;
  double healthy_z_min = 0.7;
  double healthy_z_max = std::numeric_limits<double>::infinity();
  double healthy_angle_min = -0.2;
  double healthy_angle_max = 0.2;
  double reset_noise_scale = 5e-3;
  bool exclude_current_positions_from_observation = true;

  // Binds every field under its own name.
  void bind(OptionBinder& b);
};

class HopperEnv : public PlanarWalkerEnv<HopperConfig> {
 public:
  static constexpr const char* kName = "Hopper-v5";
  static constexpr const char* kModelFile = "hopper.xml";

  HopperEnv(std::shared_ptr<const MujocoModel> model, const HopperConfig& config = {});
  bool is_healthy() const override;
};

}  // namespace rldt
