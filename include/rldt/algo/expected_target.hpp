// Expected-target estimation and the RLDT actor update (ALGORITHM.md §4).
//
// Per state, P particles are sampled with the trained actor (keeping the chain).
// Each particle n draws k ~ U{0..K−1}; its expected target
//   ŷ_n = x_k + (1 − t)·v_θ(x_k, t | s),  t = k/K   (x_pred: ŷ = x̂_θ)
// is the query at which the SVGD field φ is evaluated against the particles of
// the same state. With φ held constant (no gradient through it, the chain or
// the critic):
//   L_align = −mean_n <v_θ(x_k,t|s), φ_n> / (K(1−t))        x_pred: −mean <x̂, φ>/K
//   L_cons  = c_cons·mean_n ||ŷ_n − a_n||² / (K(1−t))²        x_pred: c_cons·mean ||x̂ − a_n||²
//   L_ref   = kl_coef·mean_n ||f_θ(x̃, t̃|s) − f_ref(x̃, t̃|s)||²,  x̃ = (1−t̃)z + t̃·a_n
// (||·||² sums over the chunk; f is the raw network output; the reference net is
// frozen). One network pass per particle gives both ŷ (for φ) and the
// L_align/L_cons terms: in one group, by default, the chain's own pass at step k (see `backward`).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/optim/adam.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/svgd.hpp"
#include "rldt/util/thread_pool.hpp"

namespace rldt {

struct ActorUpdateConfig {
  int64_t n_particles = 8;       // P
  double lr = 2e-5;              // Adam
  int64_t lr_warmup_steps = 32;  // linear from lr/W to lr over W steps (0: none)
  double c_cons = 0.5;
  double kl_coef = 0.2;
  // Ablation (issue 5): every particle's query is taken at the last step k = K−1, i.e. no
  // expected-target estimation from intermediate states (ŷ is then the final action itself).
  bool final_step_only = false;
  // With the policy's final_action_clip c > 0: where a query ŷ_n is on or beyond ±c in an entry and
  // the field there points further out, that component of φ is set to 0 (a projected field). The
  // executed action is clamped in that entry, so the critic cannot reward moving it further; without
  // the projection its outward gradient keeps pushing the sampler's x_K out of the box.
  bool project_field = false;
  // "transport" (RLDT, the losses above) or "bptt": the baseline the paper argues against (issue
  // 5) — back-propagate the critic through the whole K-step Euler sampler from the particles' own
  // x_0: L_q = −mean_n <a_n(θ), ĝ_n> with ĝ_n = ∇_a Q(s, a_n) held constant (its θ-gradient is
  // exactly −∇_θ mean_n Q(s, a_n(θ))), ĝ divided per state by ḡ = mean_j ||g_j|| unless
  // svgd.q_norm is "none"; plus the same L_ref. No field, no L_cons; svgd.field is ignored.
  std::string objective = "transport";
  // Threads for one update (issue 6). G >= 2 splits the B states into G contiguous groups of whole
  // states (min(G, B) groups); each group samples its particles' chains, takes its critic
  // gradients, runs its forward passes and back-propagates its share of the loss on its own thread,
  // with one BLAS thread per group, and the groups' parameter gradients are summed in group order
  // (the SVGD field is computed once over all states, between the two phases). The random draws are
  // those of G = 1, but smaller matmuls round differently in the last bits, so an update's result
  // depends on G (deterministic for a given G, whatever the timing). G = 1: one thread of control,
  // matmuls on the BLAS's own threads. grad_fn must be callable from several threads at once when
  // G >= 2 (CriticEnsemble::action_grad is; the Python binding takes the GIL around a Python one).
  int64_t update_groups = 1;
  // How step() takes the parameter gradients of the objective "transport" ("bptt" always uses
  // autograd). "manual": the pass at (x_k, t_k) is the one the sampling chain already ran, so
  // prepare keeps its activations (ChainCapture) and runs the L_ref passes too (the actor's with its
  // activations kept); step back-propagates dL/d(output) through both passes by hand, their rows as
  // one batch (one product per layer and kind), with no autograd graph: one network pass fewer and
  // larger products. Gradients equal autograd's to rounding (tests compare them). With
  // update_groups G >= 2 the chains run in the G groups; the L_ref passes and the backward run once,
  // on the BLAS's threads. "autograd": the passes with gradient at (x_k, t_k) and x̃, then
  // backward() (in the groups when G >= 2): the plain way, kept as the reference. "auto" (default):
  // "manual" when the update runs in one group, "autograd" in G >= 2 groups, the faster of the two
  // for each layout as measured here (docs/benchmarks.md, seventeenth session). A batch whose actor or
  // reference weights changed after prepare (a step in between) is stepped the autograd way.
  std::string backward = "auto";
  SvgdConfig svgd;
  void validate() const;
};

// ∇_a Q: obs (N, O), actions (N, H, d) → (N, H, d). E.g. CriticEnsemble::action_grad.
using ActionGradFn = std::function<torch::Tensor(const torch::Tensor& obs, const torch::Tensor& actions)>;

// The projected field of ActorUpdateConfig::project_field: phi and queries of the same shape, e.g.
// (B, P, A); the entries where the query is ≥ clip and phi > 0, or ≤ −clip and phi < 0, become 0.
torch::Tensor project_to_box(const torch::Tensor& phi, const torch::Tensor& queries, double clip);

// Everything drawn for one actor step; N = B·P rows, states repeated P times
// consecutively (rows b·P … b·P+P−1 belong to state b).
struct ActorBatch {
  int64_t states = 0, particles = 0;
  torch::Tensor obs;      // (N, O)
  torch::Tensor chain;    // (N, K+1, H, d)
  torch::Tensor actions;  // (N, H, d) final particles a_n
  torch::Tensor k;        // (N,) int64 step of each query
  torch::Tensor x_k;      // (N, H, d)
  torch::Tensor grads;    // (N, H, d) ∇Q at a_n (fields normal/hybrid), undefined otherwise
  torch::Tensor ref_k;    // (N,) int64 step t̃·K for the reference term
  torch::Tensor ref_x;    // (N, H, d) x̃ = (1−t̃)z + t̃·a_n
  // Only when prepare kept the passes (backward "manual", or "auto" in one group; empty otherwise):
  // what step's hand-written backward reads.
  torch::Tensor out_k;               // (N, H, d) the actor's raw output at (x_k, t_k), from the chain
  torch::Tensor ref_out;             // (N, H, d) the actor's raw output at (x̃, t̃) (kl_coef > 0)
  torch::Tensor ref_target;          // (N, H, d) the frozen reference's there (kl_coef > 0)
  std::vector<torch::Tensor> saved;  // VelocityNet::forward_saving entries, rows: the N chain passes in the
                                     // order of kept_rows, then the N L_ref passes (kl_coef > 0) in row order
  torch::Tensor kept_rows;           // (N,) int64: saved's row j < N is row kept_rows[j]'s chain pass
  int64_t weights_version = -1;      // the actor's and reference's parameter version sum when taken
};

struct ActorLosses {
  torch::Tensor total, align, cons, ref;  // scalars with graph
};

struct ActorStats {
  double loss = 0, align = 0, cons = 0, ref = 0, lr = 0;
  bool manual_backward = false;  // the gradients were taken by hand, from the batch's kept passes
  SvgdResult svgd;  // phi (B, P, A) and diagnostics
};

class ActorUpdater {
 public:
  ActorUpdater(std::shared_ptr<FlowPolicy> policy, ActorUpdateConfig cfg);
  const ActorUpdateConfig& config() const { return cfg_; }
  int64_t steps_taken() const { return steps_; }
  double current_lr() const;

  // Samples particles and draws the steps. obs: (B, O).
  ActorBatch prepare(const torch::Tensor& obs, const ActionGradFn& grad_fn, at::Generator& gen);
  // The SVGD field at the expected targets ŷ (N, H, d) → SvgdResult with phi (B, P, A).
  SvgdResult field(const ActorBatch& batch, const torch::Tensor& y_hat, const ActionGradFn& grad_fn) const;
  // Loss terms for a given field phi (N, H, d) (held constant).
  ActorLosses losses(const ActorBatch& batch, const torch::Tensor& phi);
  // objective "bptt": L_q (in `align`; `cons` is zero) and L_ref for `batch`, with the graph through
  // all K Euler steps. Needs batch.grads (prepare fills them for this objective).
  ActorLosses bptt_losses(const ActorBatch& batch);
  // One optimizer step: forward, ŷ → φ, losses, backward, Adam step (objective "bptt": bptt_losses,
  // backward, Adam step; ActorStats.svgd then holds only the gradient and particle diagnostics).
  ActorStats step(const ActorBatch& batch, const ActionGradFn& grad_fn);
  // prepare + step.
  ActorStats update(const torch::Tensor& obs, const ActionGradFn& grad_fn, at::Generator& gen);
  // The policy's actions for obs (B, O) → (B, H, d), with FlowPolicy::act's draws (x_0 ~ N(0, I) from
  // `gen`, or 0 when deterministic) and clamp; with update_groups G >= 2 the rows are sampled in G
  // contiguous ranges on this updater's threads, one BLAS thread each (results then differ from
  // FlowPolicy::act in the last bits). The trainer samples the critic's bootstrap actions with it.
  torch::Tensor act(const torch::Tensor& obs, at::Generator& gen, bool deterministic = false);

  // Checkpoint state: the Adam state and the step count (which sets the warm-up lr), as entries of `archive` (a section
  // of a checkpoint file). load_state restores it into an updater of the same policy architecture and config; errors
  // name `path` (the file) and the missing or mismatching entry.
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  // `weight` scales the row means (a group's share n_g / N of the batch's rows; 1 for the whole batch).
  ActorLosses losses_from_output(const ActorBatch& batch, const torch::Tensor& out, const torch::Tensor& phi,
                                 double weight = 1.0);
  torch::Tensor ref_loss(const ActorBatch& batch, double weight = 1.0);
  ActorLosses bptt_losses(const ActorBatch& batch, double weight);
  // The field from expected targets y (N, H, d) and, for "interp"/"delta", the gradients taken there.
  SvgdResult field_from(const ActorBatch& batch, const torch::Tensor& y, const torch::Tensor& grads_at_y) const;
  void set_lr();
  ActorStats apply(const ActorLosses& L);
  // update_groups >= 2: the grouped step.
  int64_t num_groups(int64_t states) const;
  ActorStats step_grouped(const ActorBatch& batch, const ActionGradFn& grad_fn);
  // backward "manual": step from the batch's kept passes.
  ActorStats step_manual(const ActorBatch& batch, const ActionGradFn& grad_fn);
  std::shared_ptr<FlowPolicy> policy_;
  ActorUpdateConfig cfg_;
  std::unique_ptr<torch::optim::Adam> opt_;
  std::unique_ptr<ThreadPool> pool_;  // update_groups >= 2
  int64_t steps_ = 0;
};

}  // namespace rldt
