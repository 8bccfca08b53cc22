// Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
// arXiv:1812.05905), the off-policy baseline of issue 5: a tanh-Gaussian actor, twin Q-critics
// with Polyak targets, and automatic entropy tuning. Written for rldt's data path (replay batches
// in the policy action space [−1, 1], explicit generators); see docs/baselines.md.
//
// Shapes: B batch, O obs_dim, d action_dim.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>

#include <memory>
#include <string>
#include <vector>

#include "rldt/algo/critic_ensemble.hpp"  // EnsembleMLP
#include "rldt/data/replay_buffer.hpp"
#include "rldt/nn/mlp.hpp"

namespace rldt {

// Defaults are the published SAC hyper-parameters (paper, Table 1 of arXiv:1812.05905; the same
// in CleanRL's sac_continuous_action.py except its critic lr 1e-3 and policy delay 2).
struct SacConfig {
  int64_t obs_dim = 11;                      // O (the trainer takes it from the env)
  int64_t action_dim = 3;                    // d (the trainer takes it from the env)
  std::vector<int64_t> hidden = {256, 256};  // hidden sizes of the actor and of each critic
  std::string activation = "relu";
  double actor_lr = 3e-4;   // Adam
  double critic_lr = 3e-4;  // Adam
  double alpha_lr = 3e-4;   // Adam on log α
  double gamma = 0.99;
  double tau = 0.005;  // target ← (1 − τ)·target + τ·online
  int64_t batch_size = 256;
  bool autotune_alpha = true;            // automatic entropy tuning
  double target_entropy_per_dim = -1.0;  // target entropy H̄ = target_entropy_per_dim · d (= −d)
  double init_alpha = 1.0;               // α at the start (log α = 0), or the fixed α without tuning
  double log_std_min = -20.0;            // clamp of the Gaussian's log σ (the authors' code)
  double log_std_max = 2.0;
  int64_t policy_frequency = 1;  // actor and α step every this many critic steps
  int64_t target_frequency = 1;  // Polyak step every this many critic steps
  // Data collection (used by SacTrainer; the learner ignores them).
  int64_t learning_starts = 5000;  // env steps of uniform random actions before the first update
  int64_t buffer_size = 1000000;   // replay capacity in transitions
  double utd = 1.0;                // gradient updates per env step (per stored transition)

  double target_entropy() const { return target_entropy_per_dim * static_cast<double>(action_dim); }
  // Throws ArgumentError naming the first invalid field.
  void validate() const;
};

// Log density of a = tanh(u), u ~ N(mean, exp(log_std)²) per entry, summed over the last
// dimension: Σ_j [log N(u_j; mean_j, σ_j) − log(1 − tanh²(u_j))], the correction written as
// 2·(log 2 − u − softplus(−2u)) (exact, no ε). pre_tanh, mean, log_std: (B, d) → (B,).
torch::Tensor tanh_gaussian_log_prob(const torch::Tensor& pre_tanh, const torch::Tensor& mean,
                                     const torch::Tensor& log_std);

struct TanhGaussianSample {
  torch::Tensor action;    // (B, d) tanh(u) in (−1, 1)
  torch::Tensor log_prob;  // (B,) log density of `action`
  torch::Tensor mean;      // (B, d) tanh(mean): the deterministic action
};

// The actor network: an MLP O → hidden → 2d whose output is split into the mean and the
// (clamped) log σ of a diagonal Gaussian, squashed by tanh.
class TanhGaussianActorImpl : public torch::nn::Module {
 public:
  // Linear layers initialised as PyTorch's default, drawn from `gen`.
  TanhGaussianActorImpl(int64_t obs_dim, int64_t action_dim, std::vector<int64_t> hidden, std::string activation,
                        double log_std_min, double log_std_max, at::Generator& gen);
  // obs (B, O) → {mean (B, d), log_std (B, d) clamped to [log_std_min, log_std_max]}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& obs);
  // Reparameterised sample (autograd flows through it) with its log density.
  TanhGaussianSample sample(const torch::Tensor& obs, at::Generator& gen);

 private:
  int64_t action_dim_;
  double log_std_min_, log_std_max_;
  MLP net_{nullptr};
};
TORCH_MODULE(TanhGaussianActor);

// A trained SAC actor for inference: the network, its architecture and the env's action bounds
// (actions in [−1, 1] map linearly onto [low, high]). Saved and loaded alone (no critics).
class SacPolicy {
 public:
  // Action bounds default to [−1, 1] (the identity map).
  SacPolicy(const SacConfig& cfg, uint64_t seed, std::vector<double> action_low = {},
            std::vector<double> action_high = {});
  // Policy-space actions: obs (B, O) → (B, d) in [−1, 1]; deterministic: tanh(mean). No autograd.
  torch::Tensor act(const torch::Tensor& obs, at::Generator& gen, bool deterministic = true);
  // The same in env units: (B, d) float64 in [low, high].
  torch::Tensor env_action(const torch::Tensor& obs, at::Generator& gen, bool deterministic = true);
  // a ∈ [−1, 1] (B, d) → env units written row-major to out[B·d].
  void to_env_units(const torch::Tensor& actions, double* out) const;

  TanhGaussianActor& actor() { return actor_; }
  int64_t obs_dim() const { return obs_dim_; }
  int64_t action_dim() const { return action_dim_; }
  const std::vector<double>& action_low() const { return low_; }
  const std::vector<double>& action_high() const { return high_; }
  std::string env_name;  // informational, stored in the file

  // File kind "sac_policy/1": architecture, bounds, env name and actor weights.
  void save(const std::string& path) const;
  static std::shared_ptr<SacPolicy> load(const std::string& path);

 private:
  int64_t obs_dim_, action_dim_;
  std::vector<int64_t> hidden_;
  std::string activation_;
  double log_std_min_, log_std_max_;
  std::vector<double> low_, high_;
  TanhGaussianActor actor_{nullptr};
};

struct SacUpdateStats {
  double critic_loss = 0;  // Σ over the two critics of the mean squared TD error
  double actor_loss = 0;   // mean(α·log π(a|s) − min_i Q_i(s, a)), last actor step (NaN if none yet)
  double alpha_loss = 0;   // −mean(log α · (log π + H̄)), last actor step
  double alpha = 0;        // α after the step
  double entropy = 0;      // −mean log π of the actor's samples in the last actor step
  double q_mean = 0;       // mean of Q_1(s, a) over the batch (replay actions)
  bool actor_updated = false;
};

// The SAC learner: policy, twin critics (one batched EnsembleMLP with 2 members, input
// [obs, action]) with Polyak targets, and log α. Every random draw uses the caller's generator.
class Sac {
 public:
  // Networks are initialised from a generator seeded with `seed` (PyTorch's default Linear init).
  Sac(SacConfig cfg, uint64_t seed, std::vector<double> action_low = {}, std::vector<double> action_high = {});

  // One gradient step (the SAC paper's per-step update, CleanRL's order):
  //   critic: y = r + γ(1 − terminated)(min_i Q̄_i(s', a') − α log π(a'|s')), a' ~ π(·|s');
  //           loss Σ_i mean (Q_i(s, a) − y)²
  //   every policy_frequency steps: actor loss mean(α log π(ã|s) − min_i Q_i(s, ã)), then α
  //           (autotune) on −mean(log α (log π(ã|s) + H̄))
  //   every target_frequency steps: Polyak update of the target critics.
  // batch: a ReplayBatch (obs (B, O), actions (B, d) in [−1, 1], rewards (B,), next_obs (B, O),
  // terminated (B,)).
  SacUpdateStats update(const ReplayBatch& batch, at::Generator& gen);

  // Critic values: obs (B, O), actions (B, d) → (2, B). q: online (autograd on); q_target: no grad.
  torch::Tensor q(const torch::Tensor& obs, const torch::Tensor& actions);
  torch::Tensor q_target(const torch::Tensor& obs, const torch::Tensor& actions);
  void polyak_update();  // target ← (1 − τ)·target + τ·online

  double alpha() const;
  torch::Tensor log_alpha() const { return log_alpha_; }
  const SacConfig& config() const { return cfg_; }
  SacPolicy& policy() { return *policy_; }
  std::shared_ptr<SacPolicy> policy_ptr() { return policy_; }
  EnsembleMLP& critic() { return q_; }
  EnsembleMLP& critic_target() { return q_target_; }
  int64_t updates() const { return updates_; }

 private:
  torch::Tensor critic_input(const torch::Tensor& obs, const torch::Tensor& actions) const;
  SacConfig cfg_;
  std::shared_ptr<SacPolicy> policy_;
  EnsembleMLP q_{nullptr}, q_target_{nullptr};
  torch::Tensor log_alpha_;  // scalar, requires grad when autotuned
  std::shared_ptr<torch::optim::Adam> actor_opt_, critic_opt_, alpha_opt_;
  std::vector<torch::Tensor> actor_params_;
  int64_t updates_ = 0;
  SacUpdateStats last_;
};

}  // namespace rldt
