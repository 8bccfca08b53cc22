// Twin (ensemble) Q-critics (ALGORITHM.md §2): M MLPs Q_i(s, c) on the state
// and the executed part of the action chunk, each with a Polyak target.
//
// The M members are evaluated together as batched matmuls (weights (M, in, out)),
// which is one kernel per layer instead of M. Shapes: O obs_dim, d action_dim,
// E = act_steps (executed steps of a chunk), H horizon_steps >= E.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rldt/util/thread_pool.hpp"

namespace rldt {

struct CriticConfig {
  int64_t obs_dim = 11;
  int64_t action_dim = 3;
  int64_t act_steps = 4;      // E: chunk steps the critic sees
  int64_t ensemble_size = 2;  // M
  std::vector<int64_t> hidden = {256, 256, 256};
  std::string activation = "silu";
  double init_std = 0.1;  // Linear weights ~ N(0, init_std²), biases 0
  double lr = 1e-3;
  double weight_decay = 0.0;
  double target_momentum = 0.995;  // Q̄ ← m·Q̄ + (1−m)·Q
  double q_target_min = -1e6;      // clip of bootstrap values
  double q_target_max = 1e6;
  // Threads for update() and bootstrap_value() (issue 6). G >= 2 splits the M members into
  // min(G, M) contiguous groups that run their forward and backward passes on their own threads,
  // one BLAS thread each; members have their own parameters, so the gradients are the members'
  // own. Per-member matmuls on one BLAS thread round differently in the last bits from the batched
  // pass, so results depend on G (deterministic for a given G). A runtime setting: not stored in
  // critic files (load() gives 1), but in a trainer's config.
  int64_t update_groups = 1;

  int64_t input_dim() const { return obs_dim + act_steps * action_dim; }
  void validate() const;
};

// M independent MLPs evaluated in one batched pass.
class EnsembleMLPImpl : public torch::nn::Module {
 public:
  // Weights ~ N(0, init_std²) drawn from `gen`, biases 0.
  EnsembleMLPImpl(int64_t members, std::vector<int64_t> dims, std::string activation, double init_std,
                  at::Generator& gen);
  // x: (N, in) shared by all members, or (M, N, in) one batch per member → (M, N)
  torch::Tensor forward(const torch::Tensor& x);
  // Member m alone: x (N, in) → (N,). Gradients reach member m's slices of the weights.
  torch::Tensor forward_member(const torch::Tensor& x, int64_t m);
  int64_t members() const { return members_; }

 private:
  int64_t members_;
  std::string activation_;
  std::vector<torch::Tensor> weights_, biases_;  // (M, in, out), (M, 1, out)
};
TORCH_MODULE(EnsembleMLP);

class CriticEnsemble {
 public:
  explicit CriticEnsemble(CriticConfig cfg, uint64_t seed = 0);
  const CriticConfig& config() const { return cfg_; }
  EnsembleMLP& online() { return q_; }
  EnsembleMLP& target() { return q_target_; }

  // Q of every member. obs: (N, O), chunk: (N, E', d) with E' >= E (only the
  // first E steps are used) → (M, N). Online nets, autograd on.
  torch::Tensor q(const torch::Tensor& obs, const torch::Tensor& chunk);
  // Target nets, no autograd → (M, N).
  torch::Tensor q_target(const torch::Tensor& obs, const torch::Tensor& chunk);
  // Reductions over members of the online nets: (N, O), (N, E', d) → (N,).
  torch::Tensor q_min(const torch::Tensor& obs, const torch::Tensor& chunk);
  torch::Tensor q_mean(const torch::Tensor& obs, const torch::Tensor& chunk);

  // ∇_a Q(s, a) for a whole chunk: obs (N, O), actions (N, H, d) → (N, H, d).
  // member < 0: mean over members; else that member alone. Steps of the chunk
  // beyond act_steps get zero gradient. No gradient is left on the critic.
  torch::Tensor action_grad(const torch::Tensor& obs, const torch::Tensor& actions, int64_t member = -1);
  // ∇_a min_i Q_i(s, a): per row, the gradient of the member whose Q is lowest there (the
  // pessimistic ensemble value, as in the bootstrap). obs (N, O), actions (N, H, d) → (N, H, d).
  torch::Tensor action_grad_min(const torch::Tensor& obs, const torch::Tensor& actions);

  // Bootstrap value: mean over S policy samples of min over target members,
  // clipped to [q_target_min, q_target_max]. obs (N, O), actions (N, S, E', d) → (N,)
  torch::Tensor bootstrap_value(const torch::Tensor& obs, const torch::Tensor& actions);

  // Per-member regression loss with the trajectory split: member i trains on
  // trajectories i, i+M, i+2M, ...; MSE per member, summed over members.
  // obs (n, T, O), chunks (n, T, E', d), targets (n, T) → scalar with graph.
  // Needs n >= M.
  torch::Tensor loss(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets);
  // One AdamW step on loss(), then a Polyak update of the targets. Returns the loss.
  double update(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets);
  void polyak_update();
  // The AdamW learning rate of update() (starts at config().lr; config() keeps that value).
  // set_lr throws ArgumentError unless lr is finite and > 0.
  double lr() const;
  void set_lr(double lr);

  void save(const std::string& path) const;
  static CriticEnsemble load(const std::string& path);

  // Checkpoint state: online and target nets and the AdamW state, as entries of `archive` (a section of a
  // checkpoint file). load_state restores it into an object built with the same config; errors
  // name `path` (the file) and the missing or mismatching entry.
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  torch::Tensor input(const torch::Tensor& obs, const torch::Tensor& chunk, const char* chunk_name) const;
  // The trajectory split of loss(): inputs (M, R, in), targets and weights (M, R).
  void split(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets, torch::Tensor& x,
             torch::Tensor& y, torch::Tensor& w);
  // update_groups >= 2: fn(first member, end member) for each group, on the pool's threads with one
  // BLAS thread each (in the caller, group after group, if another call holds the pool).
  int64_t num_groups() const;
  void run_member_groups(const std::function<void(int64_t g, int64_t m_lo, int64_t m_hi)>& fn);
  double update_grouped(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets);
  CriticConfig cfg_;
  std::shared_ptr<ThreadPool> pool_;  // update_groups >= 2 (copies share it; pool_mutex_ guards it)
  std::shared_ptr<std::mutex> pool_mutex_;
  EnsembleMLP q_{nullptr}, q_target_{nullptr};
  std::shared_ptr<torch::optim::AdamW> opt_;
};

}  // namespace rldt
