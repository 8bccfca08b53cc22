// InvertedPendulum-v5: cart-pole. Facts follow Gymnasium's v5 definition.
//   observation [4]: qpos (cart x, pole angle), qvel
//   action [1]: cart force in [-3, 3] (gear 100)
//   reward = 1 while the pole stands (|angle| <= 0.2 rad and finite obs), else 0 and terminated
//   reset: qpos0 + U(+-reset_noise_scale), qvel U(+-reset_noise_scale); dt = 2 * 0.02 s.
#pragma once

#include <memory>

#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct InvertedPendulumConfig {
  int frame_skip = 2;
  int max_episode_steps = 1000;
  double max_pole_angle = 0.2;  // rad; Gymnasium's fixed threshold
  double reset_noise_scale = 0.01;

  void bind(OptionBinder& b);
};

class InvertedPendulumEnv : public MujocoEnv {
 public:
  static constexpr const char* kName = "InvertedPendulum-v5";
  static constexpr const char* kModelFile = "inverted_pendulum.xml";

  InvertedPendulumEnv(std::shared_ptr<const MujocoModel> model,
                      const InvertedPendulumConfig& config = {});
  const InvertedPendulumConfig& config() const { return cfg_; }

 protected:
  void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) override;
  void after_step(const double* action, StepResult& out) override;
  void write_observation(double* obs) const override;

 private:
  InvertedPendulumConfig cfg_;
};

}  // namespace rldt
