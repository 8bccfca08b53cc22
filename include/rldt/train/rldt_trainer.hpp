// The RLDT trainer (ALGORITHM.md §5–6): vectorised rollouts with exploration,
// a trajectory buffer, critic rounds with TD(λ) targets, SVGD actor steps and
// the reference-actor refresh. `train_iteration` reads like §6.
#pragma once

#include <ATen/core/Generator.h>

#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/reward_scaler.hpp"
#include "rldt/data/trajectory_buffer.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

class VecEnv;

// Thrown by RldtTrainer::train_iteration when a loss, a Q value or an action is
// not finite; the message names the quantity and the iteration. The trainer's
// state is then not usable for further iterations.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exploration while collecting data (§5).
struct ExplorationConfig {
  std::string noise_mode = "min_extrp";  // "none" | "add" | "min_extrp"
  double action_sample_noise = 0.02;     // σ for "add"
  int64_t min_extrp_step = 6;            // "min_extrp": k ~ U{min_extrp_step .. K−1}
  // Checks the fields alone (min_extrp_step < K is checked with the policy config).
  void validate() const;
};

struct RldtTrainerConfig {
  // Environment.
  std::string env = "Hopper-v5";
  EnvOptions env_options;
  int64_t n_envs = 100;
  int64_t env_threads = 2;
  uint64_t seed = 0;
  int64_t act_steps = 4;  // executed steps of each chunk (≤ policy.horizon_steps)
  // Iterations (§6).
  int64_t n_steps = 500;  // chunk steps per env per iteration
  int64_t n_train_itr = 71;
  int64_t n_critic_warmup_itr = 2;
  int64_t val_freq = 5;  // iterations with itr % val_freq == 0 evaluate (deterministic, no updates)
  // Critic.
  double gamma = 0.99;
  double td_lambda = 0.0;
  bool bootstrap_truncated = true;  // false: treat time limits as termination (reference behaviour)
  int64_t q_update_steps = 512;
  int64_t q_repeat = 16;
  int64_t q_bootstrap = 2;
  int64_t q_minibatch = 0;  // 0: full trajectories per critic step; else ~this many (traj, t) samples
  double new_fraction = 0.33;
  int64_t buffer_num_episode = 20;  // buffer keeps buffer_num_episode · n_envs trajectories
  double reward_scale = -1.0;       // < 0: EMA scaler
  double reward_scale_alpha = 0.01;
  // Actor.
  int64_t policy_update_steps = 32;
  int64_t actor_max_states = 0;  // 0: every state of every P-th trajectory; else a random subset
  ExplorationConfig exploration;
  FlowPolicyConfig policy;  // obs_dim / action_dim are taken from the env
  CriticConfig critic;      // obs_dim / action_dim / act_steps are taken from the env and act_steps
  ActorUpdateConfig actor;

  // Throws ArgumentError naming the first invalid field (cross-field rules included).
  void validate() const;
};

struct IterationMetrics {
  int64_t iteration = 0;
  bool eval = false;
  int64_t env_steps = 0;  // total env steps so far
  double episode_return = std::numeric_limits<double>::quiet_NaN();  // mean over episodes ended
  double episode_length = std::numeric_limits<double>::quiet_NaN();  //   in this iteration
  int64_t episodes = 0;
  double reward_per_step = 0;
  double critic_loss = std::numeric_limits<double>::quiet_NaN();
  double actor_loss = std::numeric_limits<double>::quiet_NaN();
  double align = std::numeric_limits<double>::quiet_NaN(), cons = align, ref = align;
  double grad_norm = align, particle_distance = align;
  double reward_scale = 1.0;
  double seconds_rollout = 0, seconds_critic = 0, seconds_actor = 0;
};

class RldtTrainer {
 public:
  // `policy`: a pretrained actor to fine-tune (its config must match the env), or nullptr to
  // train from scratch with cfg.policy.
  explicit RldtTrainer(RldtTrainerConfig cfg, std::shared_ptr<FlowPolicy> policy = nullptr);
  ~RldtTrainer();

  // One iteration of §6. Evaluation iterations (itr % val_freq == 0) roll out deterministically
  // and update nothing. Throws NonFiniteError on a non-finite action, Q target or loss.
  IterationMetrics train_iteration();

  const RldtTrainerConfig& config() const { return cfg_; }
  FlowPolicy& policy() { return *policy_; }
  std::shared_ptr<FlowPolicy> policy_ptr() { return policy_; }
  CriticEnsemble& critic() { return *critic_; }
  const TrajectoryBuffer& buffer() const { return buffer_; }
  int64_t iteration() const { return itr_; }
  int64_t env_steps() const { return env_steps_; }

  // The last rollout (for inspection and tests).
  const TrajectoryBatch& last_rollout() const { return fresh_; }

 private:
  TrajectoryBatch rollout(bool deterministic, IterationMetrics& m);
  torch::Tensor explore(const FlowSample& s, const torch::Tensor& obs);
  void critic_round(const TrajectoryBatch& batch, double scale, IterationMetrics& m);
  void actor_round(const TrajectoryBatch& batch, IterationMetrics& m);

  RldtTrainerConfig cfg_;
  std::unique_ptr<VecEnv> env_;
  std::shared_ptr<FlowPolicy> policy_;
  std::unique_ptr<CriticEnsemble> critic_;
  std::unique_ptr<ActorUpdater> updater_;
  RewardScaler scaler_;
  TrajectoryBuffer buffer_;
  at::Generator gen_;
  TrajectoryBatch fresh_;
  torch::Tensor obs_;                 // (N, O) current observation of every env
  std::vector<double> env_actions_;   // (N, H, d) in env units, reused every step
  std::vector<double> act_low_, act_scale_;
  int64_t itr_ = 0, env_steps_ = 0, actor_steps_ = 0;
};

}  // namespace rldt
