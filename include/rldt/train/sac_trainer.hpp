// SAC baseline trainer (issue 5): SAC (rldt/algo/sac.hpp) on the native vectorised MuJoCo envs,
// with the RLDT trainer's data path (VecEnv with same-step autoreset, policy actions in [−1, 1]
// mapped onto the env's bounds, time-limit truncations bootstrapped) and metrics in the spirit
// of IterationMetrics. See docs/baselines.md for commands and measured numbers.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "rldt/algo/sac.hpp"
#include "rldt/data/replay_buffer.hpp"
#include "rldt/envs/options.hpp"
#include "rldt/train/evaluation.hpp"

namespace rldt {

class VecEnv;

struct SacTrainerConfig {
  // Environment.
  std::string env = "Hopper-v5";
  EnvOptions env_options;
  int64_t n_envs = 1;       // N parallel envs; one vec step stores N transitions
  int64_t env_threads = 1;  // threads stepping them (0 = all cores)
  uint64_t seed = 0;        // envs (env i: seed + i), networks and every draw of the trainer
  // Iterations.
  int64_t steps_per_iteration = 1000;  // vec-env steps per iteration (env steps: × n_envs)
  int64_t n_iterations = 1000;         // iterations of a full run (train() / the caller's loop)
  int64_t val_freq = 10;               // evaluate after iterations with (iteration + 1) % val_freq == 0; 0: never
  int64_t eval_episodes = 10;          // deterministic episodes per evaluation (separate env copies)
  SacConfig sac;                       // obs_dim / action_dim are taken from the env

  // Throws ArgumentError naming the first invalid field.
  void validate() const;
};

// Metrics of one SAC iteration. NaN: not measured in this iteration.
struct SacIterationMetrics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  int64_t iteration = 0;
  bool eval = false;             // eval_* were measured after this iteration's updates
  int64_t env_steps = 0;         // total env steps so far (training envs only)
  int64_t updates = 0;           // total gradient steps so far
  double episode_return = kNaN;  // mean over training episodes ended in this iteration
  double episode_length = kNaN;  //   (stochastic or random actions)
  int64_t episodes = 0;
  double reward_per_step = 0;
  double eval_return = kNaN;  // deterministic (tanh(mean)) evaluation, eval_episodes episodes
  double eval_return_std = kNaN;
  double eval_length = kNaN;
  double critic_loss = kNaN;  // means over this iteration's gradient steps
  double actor_loss = kNaN;
  double alpha_loss = kNaN;
  double entropy = kNaN;  // −mean log π of the actor's samples
  double q_mean = kNaN;
  double alpha = kNaN;  // α at the end of the iteration
  double seconds_rollout = 0, seconds_update = 0, seconds_eval = 0;
};

using SacEvalResult = EpisodeEvalResult;  // rldt/train/evaluation.hpp

// Shapes: N = n_envs, O = obs_dim, d = action_dim.
class SacTrainer {
 public:
  explicit SacTrainer(SacTrainerConfig cfg);
  ~SacTrainer();

  // steps_per_iteration vec steps: uniform random actions until sac.learning_starts env steps,
  // then samples of the policy; every step stores N transitions and, once learning has started,
  // runs utd·N gradient steps (fractions carried over). Evaluates after the updates when
  // (iteration + 1) % val_freq == 0. Throws NonFiniteError (rldt_trainer.hpp) on a non-finite
  // loss or action.
  SacIterationMetrics train_iteration();

  // `episodes` deterministic episodes on separate env copies reset with seed + 1000003 + i (the
  // same start states at every evaluation). No effect on the training envs, buffer or random
  // stream.
  SacEvalResult evaluate(int64_t episodes);

  // obs (B, O) env observations → (B, d) float64 env actions. deterministic: tanh(mean); else a
  // sample drawn from a generator of its own (seed + 3), not the trainer's.
  torch::Tensor policy_action(const torch::Tensor& obs, bool deterministic = true);

  // The actor with the env's action bounds, for inference (SacPolicy::load reads it back).
  void save_policy(const std::string& path) const;

  const SacTrainerConfig& config() const { return cfg_; }
  Sac& sac() { return *sac_; }
  SacPolicy& policy() { return sac_->policy(); }
  std::shared_ptr<SacPolicy> policy_ptr() { return sac_->policy_ptr(); }
  const ReplayBuffer& buffer() const { return *buffer_; }
  int64_t n_envs() const { return cfg_.n_envs; }
  int64_t obs_dim() const { return obs_dim_; }
  int64_t action_dim() const { return action_dim_; }
  int64_t iteration() const { return itr_; }
  int64_t env_steps() const { return env_steps_; }

 private:
  SacTrainerConfig cfg_;
  std::unique_ptr<VecEnv> env_, eval_env_;
  int64_t obs_dim_ = 0, action_dim_ = 0;
  std::unique_ptr<Sac> sac_;
  std::unique_ptr<ReplayBuffer> buffer_;
  at::Generator gen_, act_gen_;
  torch::Tensor obs_;                          // (N, O) current observations (float32)
  torch::Tensor next_, rewards_, terminated_;  // (N, O), (N,), (N,) per-step staging
  std::vector<double> env_actions_;            // (N, d) env units
  std::vector<double> eval_actions_;
  double update_credit_ = 0;  // fractional gradient steps carried over
  int64_t itr_ = 0, env_steps_ = 0;
};

}  // namespace rldt
