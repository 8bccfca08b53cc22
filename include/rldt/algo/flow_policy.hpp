// Flow-matching actor (ALGORITHM.md §1): velocity network v_θ(x, t | s) over
// action chunks, Euler sampler with the whole chain, behaviour-cloning loss,
// an EMA copy and a frozen reference copy.
//
// Shapes: B batch, H = horizon_steps, d = action_dim, K = denoising_steps,
// O = obs_dim (the flattened conditioning).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <memory>
#include <string>
#include <vector>

#include "rldt/algo/policy_normalizer.hpp"
#include "rldt/nn/mlp.hpp"
#include "rldt/nn/time_embedding.hpp"

namespace rldt {

struct FlowPolicyConfig {
  int64_t obs_dim = 11;
  int64_t action_dim = 3;
  int64_t horizon_steps = 4;
  int64_t denoising_steps = 8;  // K
  std::vector<int64_t> mlp_dims = {512, 512, 512};
  int64_t time_dim = 16;
  std::string activation = "relu";
  bool residual = true;               // residual body (else a plain MLP)
  std::string prediction = "v_pred";  // "v_pred" | "x_pred"
  double final_action_clip = 0.0;     // > 0: clamp final actions to ±value
  // Behaviour cloning (flow matching) pretraining.
  double bc_lr = 1e-3;
  double bc_weight_decay = 1e-6;
  double ema_decay = 0.995;
  double xpred_t_max = 0.999;  // x_pred BC loss: t clamped to this

  int64_t action_size() const { return horizon_steps * action_dim; }
  // Whether `o` describes the same networks (dims, layers, time embedding, activation, body,
  // prediction); sampling and training settings may differ.
  bool same_architecture(const FlowPolicyConfig& o) const {
    return obs_dim == o.obs_dim && action_dim == o.action_dim && horizon_steps == o.horizon_steps &&
           denoising_steps == o.denoising_steps && mlp_dims == o.mlp_dims && time_dim == o.time_dim &&
           activation == o.activation && residual == o.residual && prediction == o.prediction;
  }
  // Throws ArgumentError naming the first invalid field.
  void validate() const;
};

// The velocity network. forward returns the raw network output: a velocity for
// v_pred, the clean action x̂ for x_pred.
class VelocityNetImpl : public torch::nn::Module {
 public:
  explicit VelocityNetImpl(const FlowPolicyConfig& cfg);
  // x: (N, H, d), t: (N,), obs: (N, O) → (N, H, d)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& obs);
  // The hand-written backward (nn/mlp.hpp; ActorUpdater's, issue 6). forward_saving is forward()
  // (the same values) that appends to `saved` the activations, rows as in x; backward_saved takes
  // such entries (rows of any passes, concatenated entry by entry) and dL/d(output) (R, H, d), and
  // SETS every parameter's .grad to dL/dθ summed over the rows. No autograd graph is built or read.
  torch::Tensor forward_saving(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& obs,
                               std::vector<torch::Tensor>& saved);
  void backward_saved(const std::vector<torch::Tensor>& saved, const torch::Tensor& grad_out);

 private:
  int64_t horizon_, action_dim_;
  TimeEmbedding time_{nullptr};
  ResidualMLP res_body_{nullptr};
  MLP mlp_body_{nullptr};
};
TORCH_MODULE(VelocityNet);

// One network pass per row kept from a sampling chain, for the hand-written backward: row n's pass
// at step k[n] (ActorUpdater's expected-target pass, which the chain has already run).
struct ChainCapture {
  torch::Tensor k;  // (R,) int64 in [0, K): the step kept for each row (set by the caller)
  // VelocityNet::forward_saving's entries at those steps, (R, ·) each, their rows in the order of
  // `rows` (each step's rows are then one contiguous block). Empty on entry: allocated here. Else
  // the caller's buffers, as forward_saving would make them for R rows (e.g. views into a larger
  // batch's), written in place.
  std::vector<torch::Tensor> saved;
  torch::Tensor rows;  // (R,) int64: saved's row j is the pass of row rows[j] (the rows sorted by k, stably)
  torch::Tensor out;   // (R, H, d) the raw network output at those steps, in row order
};

struct FlowSample {
  torch::Tensor actions;  // (B, H, d), clamped when final_action_clip > 0
  torch::Tensor chain;    // (B, K+1, H, d): x_0 … x_K (unclamped)
};

class FlowPolicy {
 public:
  explicit FlowPolicy(FlowPolicyConfig cfg, uint64_t seed = 0);

  const FlowPolicyConfig& config() const { return cfg_; }
  // Sampling-time setting, not part of the architecture: > 0 clamps final actions (sample, act)
  // to ±clip; 0 turns the clamp off. Throws ArgumentError for a negative value.
  void set_final_action_clip(double clip);
  VelocityNet& actor() { return actor_; }
  VelocityNet& reference() { return reference_; }
  VelocityNet& ema() { return ema_; }

  // Velocity from a raw network output (x_pred: (x̂ − x)/(1 − t)).
  // out, x: (N, H, d); t: (N,) → (N, H, d)
  torch::Tensor velocity_from_output(const torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& t) const;
  // Expected target E[x_1 | x_t] from a raw output: x + (1 − t)·v (x_pred: x̂).
  torch::Tensor expected_target_from_output(const torch::Tensor& out, const torch::Tensor& x,
                                            const torch::Tensor& t) const;

  // Euler sampling with the trained actor (or `net` if given), no autograd.
  // obs: (B, O). deterministic: x_0 = 0 instead of N(0, I).
  FlowSample sample(const torch::Tensor& obs, at::Generator& gen, bool deterministic = false,
                    VelocityNet* net = nullptr);
  // Final actions only (no chain kept): (B, O) → (B, H, d).
  torch::Tensor act(const torch::Tensor& obs, at::Generator& gen, bool deterministic = false);
  // sample() from a given x_0 (B, H, d) instead of drawing it: callers that drew the noise of
  // many samplings up front (RldtTrainer's grouped rollout, which samples row ranges from several
  // threads). Row i depends only on x0[i] and obs[i]. obs: (B, O).
  // With `capture` (its k set), also keeps each row's pass at step k[row] (same values as without).
  FlowSample sample_from(const torch::Tensor& x0, const torch::Tensor& obs, ChainCapture* capture = nullptr);
  // act() from a given x_0 (B, H, d): final actions only, clamped as act() clamps them. Thread-safe
  // like sample_from (callers sampling row ranges from several threads). obs: (B, O) → (B, H, d).
  torch::Tensor act_from(const torch::Tensor& x0, const torch::Tensor& obs);

  // Expected target ŷ = x_k + (1 − t_k)·v_θ(x_k, t_k | s) with t_k = k/K, using the
  // trained actor; runs with autograd unless called under a NoGradGuard.
  // x_k: (N, H, d), k: (N,) int64 in [0, K), obs: (N, O) → (N, H, d)
  torch::Tensor expected_target(const torch::Tensor& x_k, const torch::Tensor& k, const torch::Tensor& obs);

  // Flow-matching BC loss on (obs (N, O), actions (N, H, d)); scalar with graph. Uses the
  // trained actor, or `net` if given (e.g. &ema() for a validation loss of the EMA weights).
  torch::Tensor bc_loss(const torch::Tensor& obs, const torch::Tensor& actions, at::Generator& gen,
                        VelocityNet* net = nullptr);
  // One AdamW step on bc_loss, then an EMA update. Returns the loss.
  double bc_update(const torch::Tensor& obs, const torch::Tensor& actions, at::Generator& gen);

  void update_ema();           // ema ← decay·ema + (1 − decay)·actor
  void load_ema_into_actor();  // actor ← ema (fine-tuning starts from the EMA weights)
  void refresh_reference();    // reference ← actor

  // Observation/action normalisation the policy was trained with (pretraining stores the
  // dataset's min/max). Empty by default: identity observations, actions mapped onto the env's
  // action box. The networks see normalised observations and act in [−1, 1]; callers that talk
  // to an env use normalizer().normalize_obs and normalizer().action_to_env.
  const PolicyNormalizer& normalizer() const { return normalizer_; }
  // Throws ArgumentError if the bounds' dims differ from obs_dim / action_dim.
  void set_normalizer(PolicyNormalizer n);

  // Atomic save (temp file + rename) of config, all three networks and the
  // normaliser; load restores them (files without a normaliser load with an
  // empty one). Throws std::runtime_error naming the file on failure.
  void save(const std::string& path) const;
  static FlowPolicy load(const std::string& path);

  // Checkpoint state: the config, the three networks and the BC AdamW state, as entries of `archive` (a section of a
  // checkpoint file). load_state restores it into an object built with the same config; errors
  // name `path` (the file) and the missing or mismatching entry.
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive, const std::string& path);
  // A policy built from what save_state wrote (its config is stored with it).
  static FlowPolicy from_state(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  // Euler integration from x_0; fills *chain (B, K+1, H, d) when given. Returns x_K unclamped.
  torch::Tensor integrate(const torch::Tensor& obs, at::Generator& gen, bool deterministic, VelocityNet& net,
                          torch::Tensor* chain);
  // The same from a given x_0 (B, H, d), which is integrated in place.
  torch::Tensor integrate_from(torch::Tensor x, const torch::Tensor& obs, VelocityNet& net, torch::Tensor* chain,
                               ChainCapture* capture = nullptr);

  FlowPolicyConfig cfg_;
  VelocityNet actor_{nullptr}, ema_{nullptr}, reference_{nullptr};
  std::shared_ptr<torch::optim::AdamW> bc_opt_;
  PolicyNormalizer normalizer_;
};

// Copies parameters and buffers of `src` into `dst` (same architecture).
void copy_module_state(torch::nn::Module& dst, const torch::nn::Module& src);
// dst ← m·dst + (1 − m)·src, parameter-wise.
void polyak_average(torch::nn::Module& dst, const torch::nn::Module& src, double m);

}  // namespace rldt
