#include "rldt/algo/expected_target.hpp"

#include <torch/torch.h>

#include "rldt/util/check.hpp"
#include "rldt/util/group_threads.hpp"
#include "rldt/util/malloc_tuning.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

void ActorUpdateConfig::validate() const {
  svgd.validate();
  check_arg(n_particles >= 1, "n_particles must be >= 1, got ", n_particles);
  check_choice(objective, "objective", {"transport", "bptt"});
  check_arg(svgd.field == "delta" || objective == "bptt" || n_particles >= 2,
            "n_particles must be >= 2 for the kernel field '", svgd.field, "', got ", n_particles);
  check_arg(lr > 0.0, "actor lr must be > 0, got ", lr);
  check_arg(lr_warmup_steps >= 0, "lr_warmup_steps must be >= 0, got ", lr_warmup_steps);
  check_arg(c_cons >= 0.0, "c_cons must be >= 0, got ", c_cons);
  check_arg(kl_coef >= 0.0, "kl_coef must be >= 0, got ", kl_coef);
  check_arg(update_groups >= 1 && update_groups <= 256, "update_groups must be in [1, 256], got ", update_groups);
  check_choice(backward, "backward", {"auto", "manual", "autograd"});
}

namespace {

// Rows of states [s_lo, s_hi) of a batch (views; P rows per state).
ActorBatch state_rows(const ActorBatch& b, int64_t s_lo, int64_t s_hi) {
  const int64_t P = b.particles, lo = s_lo * P, n = (s_hi - s_lo) * P;
  auto rows = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, lo, n) : t; };
  ActorBatch r;
  r.states = s_hi - s_lo;
  r.particles = P;
  r.obs = rows(b.obs);
  r.chain = rows(b.chain);
  r.actions = rows(b.actions);
  r.k = rows(b.k);
  r.x_k = rows(b.x_k);
  r.grads = rows(b.grads);
  r.ref_k = rows(b.ref_k);
  r.ref_x = rows(b.ref_x);
  return r;
}

// Sum of the actor's and the reference's parameter version counters: it grows with every in-place
// change of a weight of either (an optimizer step, a copy of weights into them, a checkpoint load).
int64_t weights_version(FlowPolicy& policy) {
  int64_t v = 0;
  for (auto* net : {&policy.actor(), &policy.reference()})
    for (const auto& p : (*net)->parameters()) v += p._version();
  return v;
}

}  // namespace

ActorUpdater::ActorUpdater(std::shared_ptr<FlowPolicy> policy, ActorUpdateConfig cfg)
    : policy_(std::move(policy)), cfg_(std::move(cfg)) {
  check_arg(policy_ != nullptr, "ActorUpdater needs a policy");
  cfg_.validate();
  tune_malloc_for_training();
  if (cfg_.update_groups > 1) pool_ = std::make_unique<ThreadPool>(static_cast<int>(cfg_.update_groups));
  opt_ = std::make_unique<torch::optim::Adam>(policy_->actor()->parameters(), torch::optim::AdamOptions(current_lr()));
}

double ActorUpdater::current_lr() const {
  if (cfg_.lr_warmup_steps <= 0) return cfg_.lr;
  const double W = static_cast<double>(cfg_.lr_warmup_steps);
  const double start = 1.0 / W;
  const double frac = std::min(static_cast<double>(steps_), W) / W;
  return cfg_.lr * (start + (1.0 - start) * frac);
}

ActorBatch ActorUpdater::prepare(const torch::Tensor& obs, const ActionGradFn& grad_fn, at::Generator& gen) {
  const auto& pc = policy_->config();
  check_tensor(obs, "obs", {-1, pc.obs_dim});
  check_finite(obs, "obs");
  check_arg(static_cast<bool>(grad_fn), "argument 'grad_fn' (critic action gradient) is empty");
  torch::NoGradGuard ng;
  const int64_t B = obs.size(0), P = cfg_.n_particles, N = B * P, K = pc.denoising_steps, G = num_groups(B);
  const int64_t H = pc.horizon_steps, d = pc.action_dim;
  const bool manual =
                 (cfg_.backward == "manual" || (cfg_.backward == "auto" && G == 1)) && cfg_.objective == "transport",
             with_ref = cfg_.kl_coef > 0;
  ActorBatch b;
  b.states = B;
  b.particles = P;
  b.obs = obs.repeat_interleave(P, 0);
  // Every draw up front, whatever G: x_0 (as FlowPolicy::sample draws it), k, then t̃ and z of the
  // reference term.
  auto x0 = torch::randn({N, H, d}, gen);
  b.k = cfg_.final_step_only ? torch::full({N}, K - 1, torch::kLong) : torch::randint(0, K, {N}, gen, torch::kLong);
  b.ref_k = torch::randint(0, K, {N}, gen, torch::kLong);
  auto z = torch::randn({N, H, d}, gen);
  auto tr = b.ref_k.to(torch::kFloat32) / static_cast<double>(K);  // (N,)
  b.chain = torch::empty({N, K + 1, H, d});
  b.actions = torch::empty({N, H, d});
  b.ref_x = torch::empty({N, H, d});
  const bool need_grads = cfg_.objective == "bptt" || cfg_.svgd.field == "normal" || cfg_.svgd.field == "hybrid";
  if (need_grads) b.grads = torch::empty({N, H, d});
  if (manual) {
    // The kept passes' buffers, filled in place: N chain rows (by the groups), then N L_ref rows.
    std::vector<torch::Tensor> shapes;  // forward_saving's entries for 0 rows: their widths
    policy_->actor()->forward_saving(torch::zeros({0, H, d}), torch::zeros({0}), torch::zeros({0, pc.obs_dim}), shapes);
    for (const auto& e : shapes) b.saved.push_back(e.defined() ? torch::empty({(with_ref ? 2 : 1) * N, e.size(1)}) : e);
    b.kept_rows = torch::empty({N}, torch::kLong);
    b.out_k = torch::empty({N, H, d});
  }
  // Group g: the rows of states [g·B/G, (g+1)·B/G).
  auto run_group = [&](int64_t g) {
    torch::NoGradGuard ng_group;  // grad mode is per thread
    const int64_t lo = g * B / G * P, n = ((g + 1) * B / G) * P - lo;
    auto rows = [&](const torch::Tensor& t) { return t.narrow(0, lo, n); };
    ChainCapture cap;
    if (manual) {
      cap.k = rows(b.k);
      for (const auto& e : b.saved) cap.saved.push_back(e.defined() ? rows(e) : e);
    }
    auto s = policy_->sample_from(rows(x0), rows(b.obs), manual ? &cap : nullptr);
    if (manual) {
      rows(b.kept_rows).copy_(cap.rows + lo);
      rows(b.out_k).copy_(cap.out);
    }
    rows(b.chain).copy_(s.chain);
    rows(b.actions).copy_(s.actions);
    if (need_grads) {
      auto gr = grad_fn(rows(b.obs), rows(b.actions));
      check_tensor(gr, "grad_fn result", {n, H, d});
      rows(b.grads).copy_(gr);
    }
    auto trv = rows(tr).view({-1, 1, 1});
    rows(b.ref_x).copy_((1.0 - trv) * rows(z) + trv * rows(b.actions));
  };
  if (G == 1)
    run_group(0);
  else
    run_groups_one_blas_thread(*pool_, G, run_group);
  b.x_k = b.chain.index({torch::arange(N, torch::kLong), b.k});
  if (manual && with_ref) {
    // The L_ref passes (all rows at once, on the BLAS's threads): the actor's with its activations
    // kept (rows N..2N−1 of the backward's batch), the frozen reference's.
    std::vector<torch::Tensor> saved;
    b.ref_out = policy_->actor()->forward_saving(b.ref_x, tr, b.obs, saved);
    for (size_t i = 0; i < saved.size(); ++i)
      if (saved[i].defined()) b.saved[i].narrow(0, N, N).copy_(saved[i]);
    b.ref_target = policy_->reference()->forward(b.ref_x, tr, b.obs);
  }
  if (manual) b.weights_version = weights_version(*policy_);
  return b;
}

SvgdResult ActorUpdater::field(const ActorBatch& batch, const torch::Tensor& y_hat, const ActionGradFn& grad_fn) const {
  const auto& f = cfg_.svgd.field;
  torch::Tensor grads_at_y;
  if (f == "interp" || f == "delta") {
    torch::NoGradGuard ng;
    grads_at_y = grad_fn(batch.obs, y_hat.detach());
  }
  return field_from(batch, y_hat, grads_at_y);
}

SvgdResult ActorUpdater::field_from(const ActorBatch& batch, const torch::Tensor& y_hat,
                                    const torch::Tensor& grads_at_y) const {
  const auto& pc = policy_->config();
  const int64_t B = batch.states, P = batch.particles, A = pc.action_size();
  torch::NoGradGuard ng;
  auto y = y_hat.detach();
  const auto& f = cfg_.svgd.field;
  torch::Tensor particles = batch.actions, grads = batch.grads;
  if (f == "interp" || f == "delta") {
    particles = y;
    grads = grads_at_y;
    check_tensor(grads, "grad_fn result", {B * P, pc.horizon_steps, pc.action_dim});
  }
  torch::Tensor last;
  if (f == "hybrid") last = (batch.k == pc.denoising_steps - 1).view({B, P});
  auto r =
      svgd_direction(y.reshape({B, P, A}), particles.reshape({B, P, A}), grads.reshape({B, P, A}), cfg_.svgd, last);
  if (cfg_.project_field && pc.final_action_clip > 0)
    r.phi = project_to_box(r.phi, y.reshape({B, P, A}), pc.final_action_clip);
  return r;
}

torch::Tensor project_to_box(const torch::Tensor& phi, const torch::Tensor& queries, double clip) {
  check_arg(phi.sizes() == queries.sizes(), "project_to_box: phi ", phi.sizes(), " and queries ", queries.sizes(),
            " must have the same shape");
  check_arg(clip > 0.0, "project_to_box: clip must be > 0, got ", clip);
  auto outward = (queries.ge(clip) & phi.gt(0)) | (queries.le(-clip) & phi.lt(0));
  return phi.masked_fill(outward, 0.0);
}

namespace {
// A row mean scaled by a group's share of the rows (weight 1: the plain mean, with no extra op).
torch::Tensor weighted_mean(const torch::Tensor& rows, double weight) {
  return weight == 1.0 ? rows.mean() : rows.mean() * weight;
}
}  // namespace

ActorLosses ActorUpdater::losses_from_output(const ActorBatch& batch, const torch::Tensor& out,
                                             const torch::Tensor& phi, double weight) {
  const auto& pc = policy_->config();
  const double K = static_cast<double>(pc.denoising_steps);
  const int64_t N = batch.obs.size(0);
  auto t = batch.k.to(torch::kFloat32) / K;  // (N,)
  auto phi_c = phi.detach().reshape({N, pc.horizon_steps, pc.action_dim});
  ActorLosses L;
  if (pc.prediction == "v_pred") {
    auto w = K * (1.0 - t);  // number of remaining Euler steps, ≥ 1
    L.align = -weighted_mean((out * phi_c).sum({1, 2}) / w, weight);
    auto y = batch.x_k + (1.0 - t).view({-1, 1, 1}) * out;
    L.cons = cfg_.c_cons * weighted_mean((y - batch.actions).pow(2).sum({1, 2}) / w.pow(2), weight);
  } else {
    L.align = -weighted_mean((out * phi_c).sum({1, 2}), weight) / K;
    L.cons = cfg_.c_cons * weighted_mean((out - batch.actions).pow(2).sum({1, 2}), weight);
  }
  L.ref = ref_loss(batch, weight);
  L.total = L.align + L.cons + L.ref;
  return L;
}

torch::Tensor ActorUpdater::ref_loss(const ActorBatch& batch, double weight) {
  if (cfg_.kl_coef <= 0) return torch::zeros({});
  auto tr = batch.ref_k.to(torch::kFloat32) / static_cast<double>(policy_->config().denoising_steps);
  auto cur = policy_->actor()->forward(batch.ref_x, tr, batch.obs);
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = policy_->reference()->forward(batch.ref_x, tr, batch.obs);
  }
  return cfg_.kl_coef * weighted_mean((cur - ref).pow(2).sum({1, 2}), weight);
}

ActorLosses ActorUpdater::bptt_losses(const ActorBatch& batch) { return bptt_losses(batch, 1.0); }

ActorLosses ActorUpdater::bptt_losses(const ActorBatch& batch, double weight) {
  const auto& pc = policy_->config();
  const int64_t B = batch.states, P = batch.particles, N = B * P, K = pc.denoising_steps;
  check_arg(batch.grads.defined(), "bptt_losses needs batch.grads (prepare with objective 'bptt')");
  // Re-run the sampler with the graph from the particles' own x_0: same weights, same x_0, so
  // x_K(θ) is the particle a_n at which the critic gradient was taken.
  auto x = batch.chain.select(1, 0);
  for (int64_t k = 0; k < K; ++k) {
    auto t = torch::full({N}, static_cast<double>(k) / static_cast<double>(K));
    auto out = policy_->actor()->forward(x, t, batch.obs);
    x = x + policy_->velocity_from_output(out, x, t) / static_cast<double>(K);
  }
  if (pc.final_action_clip > 0) x = x.clamp(-pc.final_action_clip, pc.final_action_clip);
  torch::Tensor g = batch.grads;
  if (cfg_.svgd.q_norm != "none") {
    torch::NoGradGuard ng;
    auto gbar = g.reshape({B, P, -1}).norm(2, -1).mean(1).clamp(cfg_.svgd.q_norm_min, cfg_.svgd.q_norm_max);
    g = g / (gbar + cfg_.svgd.q_norm_eps).repeat_interleave(P).view({N, 1, 1});
  }
  ActorLosses L;
  L.align = -weighted_mean((x * g.detach()).sum({1, 2}), weight);
  L.cons = torch::zeros({});
  L.ref = ref_loss(batch, weight);
  L.total = L.align + L.cons + L.ref;
  return L;
}

ActorLosses ActorUpdater::losses(const ActorBatch& batch, const torch::Tensor& phi) {
  auto t = batch.k.to(torch::kFloat32) / static_cast<double>(policy_->config().denoising_steps);
  auto out = policy_->actor()->forward(batch.x_k, t, batch.obs);
  return losses_from_output(batch, out, phi);
}

void ActorUpdater::set_lr() {
  for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(current_lr());
}

ActorStats ActorUpdater::apply(const ActorLosses& L) {
  set_lr();
  ActorStats st;
  st.lr = current_lr();
  opt_->zero_grad();
  L.total.backward();
  opt_->step();
  ++steps_;
  st.loss = L.total.item<double>();
  st.align = L.align.item<double>();
  st.cons = L.cons.item<double>();
  st.ref = L.ref.item<double>();
  return st;
}

ActorStats ActorUpdater::step(const ActorBatch& batch, const ActionGradFn& grad_fn) {
  const auto& pc = policy_->config();
  if (cfg_.backward != "autograd" && cfg_.objective == "transport" && !batch.saved.empty() &&
      batch.weights_version == weights_version(*policy_))
    return step_manual(batch, grad_fn);
  if (num_groups(batch.states) > 1) return step_grouped(batch, grad_fn);
  if (cfg_.objective == "bptt") {
    auto st = apply(bptt_losses(batch));
    // Diagnostics only (gradient norm, particle spread): the delta field computes them and nothing else.
    SvgdConfig diag = cfg_.svgd;
    diag.field = "delta";
    const int64_t A = pc.action_size();
    st.svgd = svgd_direction(batch.actions.reshape({batch.states, batch.particles, A}),
                             batch.actions.reshape({batch.states, batch.particles, A}),
                             batch.grads.reshape({batch.states, batch.particles, A}), diag);
    return st;
  }
  auto t = batch.k.to(torch::kFloat32) / static_cast<double>(pc.denoising_steps);
  // One forward pass with gradient: its detached value gives ŷ for the field,
  // the graph serves L_align and L_cons.
  auto out = policy_->actor()->forward(batch.x_k, t, batch.obs);
  auto y_hat = policy_->expected_target_from_output(out.detach(), batch.x_k, t);
  auto phi = field(batch, y_hat, grad_fn);
  auto st = apply(losses_from_output(batch, out, phi.phi));
  st.svgd = std::move(phi);
  return st;
}

ActorStats ActorUpdater::update(const torch::Tensor& obs, const ActionGradFn& grad_fn, at::Generator& gen) {
  auto batch = prepare(obs, grad_fn, gen);
  return step(batch, grad_fn);
}

int64_t ActorUpdater::num_groups(int64_t states) const {
  return std::max<int64_t>(1, std::min(cfg_.update_groups, states));
}

torch::Tensor ActorUpdater::act(const torch::Tensor& obs, at::Generator& gen, bool deterministic) {
  const auto& pc = policy_->config();
  check_tensor(obs, "obs", {-1, pc.obs_dim});
  const int64_t B = obs.size(0), G = num_groups(B);
  if (G == 1) return policy_->act(obs, gen, deterministic);
  torch::NoGradGuard ng;
  auto x0 = deterministic ? torch::zeros({B, pc.horizon_steps, pc.action_dim})
                          : torch::randn({B, pc.horizon_steps, pc.action_dim}, gen);
  auto out = torch::empty_like(x0);
  run_groups_one_blas_thread(*pool_, G, [&](int64_t g) {
    torch::NoGradGuard ng_group;
    const int64_t lo = g * B / G, n = (g + 1) * B / G - lo;
    out.narrow(0, lo, n).copy_(policy_->act_from(x0.narrow(0, lo, n), obs.narrow(0, lo, n)));
  });
  return out;
}

ActorStats ActorUpdater::step_grouped(const ActorBatch& batch, const ActionGradFn& grad_fn) {
  const auto& pc = policy_->config();
  const int64_t B = batch.states, P = batch.particles, N = B * P, G = num_groups(B);
  const auto& f = cfg_.svgd.field;
  const bool bptt = cfg_.objective == "bptt", grads_at_y = !bptt && (f == "interp" || f == "delta");
  const auto params = policy_->actor()->parameters();
  std::vector<ActorBatch> part(static_cast<size_t>(G));
  std::vector<torch::Tensor> out(static_cast<size_t>(G));
  std::vector<double> weight(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g) {
    part[g] = state_rows(batch, g * B / G, (g + 1) * B / G);
    weight[g] = static_cast<double>(part[g].states * P) / static_cast<double>(N);
  }
  // Phase 2 (phase 1 is prepare's grouped sampling; transport only): each group's forward pass
  // with gradient, its expected targets and, for the fields that need them, the critic gradients there.
  torch::Tensor y_hat, g_at_y;
  if (!bptt) {
    y_hat = torch::empty_like(batch.x_k);
    if (grads_at_y) g_at_y = torch::empty_like(batch.x_k);
    const double K = static_cast<double>(pc.denoising_steps);
    run_groups_one_blas_thread(*pool_, G, [&](int64_t g) {
      const auto& pb = part[g];
      const int64_t lo = g * B / G * P, n = pb.states * P;
      auto t = pb.k.to(torch::kFloat32) / K;
      out[g] = policy_->actor()->forward(pb.x_k, t, pb.obs);
      torch::NoGradGuard ng;
      auto y = policy_->expected_target_from_output(out[g].detach(), pb.x_k, t);
      y_hat.narrow(0, lo, n).copy_(y);
      if (grads_at_y) {
        auto gr = grad_fn(pb.obs, y);
        check_tensor(gr, "grad_fn result", {n, pc.horizon_steps, pc.action_dim});
        g_at_y.narrow(0, lo, n).copy_(gr);
      }
    });
  }
  // The field over all states at once (its diagnostics are means over the whole batch).
  SvgdResult phi;
  if (!bptt) phi = field_from(batch, y_hat, g_at_y);
  // Phase 3: each group's share of the losses and its parameter gradients.
  std::vector<ActorLosses> L(static_cast<size_t>(G));
  std::vector<std::vector<torch::Tensor>> grads(static_cast<size_t>(G));
  const int64_t A = pc.action_size();
  run_groups_one_blas_thread(*pool_, G, [&](int64_t g) {
    const auto& pb = part[g];
    if (bptt) {
      L[g] = bptt_losses(pb, weight[g]);
    } else {
      const int64_t s_lo = g * B / G;
      auto phi_g = phi.phi.narrow(0, s_lo, pb.states).reshape({pb.states * P, pc.horizon_steps, pc.action_dim});
      L[g] = losses_from_output(pb, out[g], phi_g, weight[g]);
    }
    grads[g] = torch::autograd::grad({L[g].total}, params, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
  });
  out.clear();
  // The groups' gradients summed in group order (the same sum whatever thread ran which group).
  set_lr();
  opt_->zero_grad();
  set_summed_grads(params, grads);
  opt_->step();
  ActorStats st;
  st.lr = current_lr();
  ++steps_;
  for (int64_t g = 0; g < G; ++g) {
    st.loss += L[g].total.item<double>();
    st.align += L[g].align.item<double>();
    st.cons += L[g].cons.item<double>();
    st.ref += L[g].ref.item<double>();
  }
  if (bptt) {
    SvgdConfig diag = cfg_.svgd;
    diag.field = "delta";
    st.svgd = svgd_direction(batch.actions.reshape({B, P, A}), batch.actions.reshape({B, P, A}),
                             batch.grads.reshape({B, P, A}), diag);
  } else {
    st.svgd = std::move(phi);
  }
  return st;
}

ActorStats ActorUpdater::step_manual(const ActorBatch& batch, const ActionGradFn& grad_fn) {
  torch::NoGradGuard ng;
  const auto& pc = policy_->config();
  const int64_t N = batch.states * batch.particles;
  const double K = static_cast<double>(pc.denoising_steps), n = static_cast<double>(N), c = cfg_.c_cons;
  check_arg(
      batch.out_k.defined() && batch.out_k.size(0) == N && batch.kept_rows.defined() && batch.kept_rows.size(0) == N,
      "ActorBatch: out_k and kept_rows must hold the batch's ", N, " rows");
  auto t = batch.k.to(torch::kFloat32) / K;  // (N,)
  const auto& out = batch.out_k;
  auto y_hat = policy_->expected_target_from_output(out, batch.x_k, t);
  auto phi = field(batch, y_hat, grad_fn);
  auto phi_c = phi.phi.reshape({N, pc.horizon_steps, pc.action_dim});
  // The loss terms' values and dL/d(output) of the chain passes (ALGORITHM.md §4).
  ActorStats st;
  st.manual_backward = true;
  torch::Tensor g_out;
  if (pc.prediction == "v_pred") {
    auto one_minus_t = (1.0 - t).view({-1, 1, 1});
    auto w = K * one_minus_t;  // remaining Euler steps, ≥ 1
    auto diff = y_hat - batch.actions;
    st.align = -((out * phi_c).sum({1, 2}) / w.view({-1})).mean().item<double>();
    st.cons = c * (diff.pow(2).sum({1, 2}) / w.view({-1}).pow(2)).mean().item<double>();
    // −φ/(w·N) from L_align; 2c·(ŷ − a)·(1 − t)/(w²·N) from L_cons.
    g_out = phi_c / (w * -n) + diff * (one_minus_t * (2.0 * c / n) / w.pow(2));
  } else {
    auto diff = out - batch.actions;
    st.align = -(out * phi_c).sum({1, 2}).mean().item<double>() / K;
    st.cons = c * diff.pow(2).sum({1, 2}).mean().item<double>();
    g_out = phi_c * (-1.0 / (K * n)) + diff * (2.0 * c / n);
  }
  torch::Tensor g = g_out.index_select(0, batch.kept_rows);  // in the order of the kept passes' rows
  if (cfg_.kl_coef > 0) {
    auto diff = batch.ref_out - batch.ref_target;
    st.ref = cfg_.kl_coef * diff.pow(2).sum({1, 2}).mean().item<double>();
    g = torch::cat({g, diff * (2.0 * cfg_.kl_coef / n)});
  }
  st.loss = st.align + st.cons + st.ref;
  set_lr();
  st.lr = current_lr();
  policy_->actor()->backward_saved(batch.saved, g);
  opt_->step();
  ++steps_;
  st.svgd = std::move(phi);
  return st;
}

void ActorUpdater::save_state(torch::serialize::OutputArchive& archive) const {
  archive.write("steps", c10::IValue(steps_));
  save_optimizer(*opt_, archive, "optimizer");
}

void ActorUpdater::load_state(torch::serialize::InputArchive& archive, const std::string& path) {
  const int64_t steps = read_value(archive, "steps", path).toInt();
  load_optimizer(*opt_, archive, "optimizer", path);
  steps_ = steps;
  for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(current_lr());
}

}  // namespace rldt
