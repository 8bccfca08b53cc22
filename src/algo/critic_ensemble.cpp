#include "rldt/algo/critic_ensemble.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/algo/flow_policy.hpp"  // copy_module_state, polyak_average
#include "rldt/nn/mlp.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/group_threads.hpp"
#include "rldt/util/malloc_tuning.hpp"
#include "rldt/util/rng.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

void CriticConfig::validate() const {
  check_arg(obs_dim > 0, "critic obs_dim must be > 0, got ", obs_dim);
  check_arg(action_dim > 0, "critic action_dim must be > 0, got ", action_dim);
  check_arg(act_steps > 0, "act_steps must be > 0, got ", act_steps);
  check_arg(ensemble_size >= 1, "ensemble_size must be >= 1, got ", ensemble_size);
  check_arg(!hidden.empty(), "critic hidden sizes must not be empty");
  for (auto h : hidden) check_arg(h > 0, "critic hidden sizes must be > 0, got ", h);
  check_activation(activation, "critic activation");
  check_arg(init_std > 0.0, "init_std must be > 0, got ", init_std);
  check_arg(lr > 0.0, "critic lr must be > 0, got ", lr);
  check_arg(weight_decay >= 0.0, "critic weight_decay must be >= 0, got ", weight_decay);
  check_arg(target_momentum >= 0.0 && target_momentum <= 1.0, "target_momentum must be in [0, 1], got ",
            target_momentum);
  check_arg(q_target_min <= q_target_max, "q_target_min must be <= q_target_max");
  check_arg(update_groups >= 1 && update_groups <= 256, "critic update_groups must be in [1, 256], got ",
            update_groups);
}

EnsembleMLPImpl::EnsembleMLPImpl(int64_t members, std::vector<int64_t> dims, std::string activation, double init_std,
                                 at::Generator& gen)
    : members_(members), activation_(std::move(activation)) {
  check_arg(dims.size() >= 2, "EnsembleMLP needs input and output sizes");
  torch::NoGradGuard ng;
  for (size_t l = 0; l + 1 < dims.size(); ++l) {
    weights_.push_back(
        register_parameter("w" + std::to_string(l), torch::randn({members, dims[l], dims[l + 1]}, gen) * init_std));
    biases_.push_back(register_parameter("b" + std::to_string(l), torch::zeros({members, 1, dims[l + 1]})));
  }
}

torch::Tensor EnsembleMLPImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  const size_t L = weights_.size();
  for (size_t l = 0; l < L; ++l) {
    if (h.dim() == 2) {
      // Shared input (N, in): one GEMM against the members' weights side by side (in, M·out), viewed
      // as (M, N, out). A broadcast matmul would run a batched GEMM whose input gradient this LibTorch
      // build computes as one small GEMM per member plus a reduction (bench/profile_ops.py).
      const int64_t n = h.size(0), in = weights_[l].size(1), out = weights_[l].size(2);
      auto w = weights_[l].permute({1, 0, 2}).reshape({in, members_ * out});
      h = torch::mm(h, w).view({n, members_, out}).transpose(0, 1) + biases_[l];
    } else {
      h = torch::baddbmm(biases_[l], h, weights_[l]);  // (M, N, in): each member its own rows
    }
    if (l + 1 < L) h = apply_activation(activation_, h);
  }
  return h.squeeze(-1);
}

torch::Tensor EnsembleMLPImpl::forward_member(const torch::Tensor& x, int64_t m) {
  check_arg(m >= 0 && m < members_, "member must be in [0, ", members_, "), got ", m);
  torch::Tensor h = x;
  const size_t L = weights_.size();
  for (size_t l = 0; l < L; ++l) {
    h = torch::addmm(biases_[l].select(0, m), h, weights_[l].select(0, m));
    if (l + 1 < L) h = apply_activation(activation_, h);
  }
  return h.squeeze(-1);
}

CriticEnsemble::CriticEnsemble(CriticConfig cfg, uint64_t seed) : cfg_(std::move(cfg)) {
  cfg_.validate();
  tune_malloc_for_training();
  auto gen = make_generator(seed);
  std::vector<int64_t> dims{cfg_.input_dim()};
  dims.insert(dims.end(), cfg_.hidden.begin(), cfg_.hidden.end());
  dims.push_back(1);
  q_ = EnsembleMLP(cfg_.ensemble_size, dims, cfg_.activation, cfg_.init_std, gen);
  q_target_ = EnsembleMLP(cfg_.ensemble_size, dims, cfg_.activation, cfg_.init_std, gen);
  copy_module_state(*q_target_, *q_);
  for (auto& p : q_target_->parameters()) p.set_requires_grad(false);
  if (num_groups() > 1) {
    pool_ = std::make_shared<ThreadPool>(static_cast<int>(num_groups()));
    pool_mutex_ = std::make_shared<std::mutex>();
  }
  opt_ = std::make_shared<torch::optim::AdamW>(q_->parameters(),
                                               torch::optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay));
}

torch::Tensor CriticEnsemble::input(const torch::Tensor& obs, const torch::Tensor& chunk,
                                    const char* chunk_name) const {
  check_tensor(chunk, chunk_name, {-1, -1, cfg_.action_dim});
  const int64_t n = chunk.size(0);
  check_arg(chunk.size(1) >= cfg_.act_steps, "argument '", chunk_name, "' has ", chunk.size(1),
            " chunk steps; the critic needs at least act_steps = ", cfg_.act_steps);
  check_tensor(obs, "obs", {n, cfg_.obs_dim});
  auto c = chunk.size(1) == cfg_.act_steps ? chunk : chunk.narrow(1, 0, cfg_.act_steps);
  return torch::cat({obs, c.reshape({n, cfg_.act_steps * cfg_.action_dim})}, -1);
}

torch::Tensor CriticEnsemble::q(const torch::Tensor& obs, const torch::Tensor& chunk) {
  return q_->forward(input(obs, chunk, "chunk"));
}

torch::Tensor CriticEnsemble::q_target(const torch::Tensor& obs, const torch::Tensor& chunk) {
  torch::NoGradGuard ng;
  return q_target_->forward(input(obs, chunk, "chunk"));
}

torch::Tensor CriticEnsemble::q_min(const torch::Tensor& obs, const torch::Tensor& chunk) {
  return std::get<0>(q(obs, chunk).min(0));
}

torch::Tensor CriticEnsemble::q_mean(const torch::Tensor& obs, const torch::Tensor& chunk) {
  return q(obs, chunk).mean(0);
}

torch::Tensor CriticEnsemble::action_grad(const torch::Tensor& obs, const torch::Tensor& actions, int64_t member) {
  check_arg(member >= -1 && member < cfg_.ensemble_size, "member must be -1 (mean of members) or in [0, ",
            cfg_.ensemble_size, "), got ", member);
  torch::AutoGradMode enable(true);
  auto a = actions.detach().requires_grad_(true);
  auto qs = q_->forward(input(obs.detach(), a, "actions"));  // (M, N)
  auto sel = member < 0 ? qs.mean(0) : qs.select(0, member);
  // Gradients w.r.t. the input only: the critic's parameters keep no .grad.
  return torch::autograd::grad({sel.sum()}, {a}, {}, false, false, true)[0].detach();
}

torch::Tensor CriticEnsemble::action_grad_min(const torch::Tensor& obs, const torch::Tensor& actions) {
  torch::AutoGradMode enable(true);
  auto a = actions.detach().requires_grad_(true);
  auto qs = q_->forward(input(obs.detach(), a, "actions"));  // (M, N)
  auto qmin = std::get<0>(qs.min(0));                        // (N,): min routes the gradient to one member
  return torch::autograd::grad({qmin.sum()}, {a}, {}, false, false, true)[0].detach();
}

torch::Tensor CriticEnsemble::bootstrap_value(const torch::Tensor& obs, const torch::Tensor& actions) {
  check_arg(actions.defined() && actions.dim() == 4, "argument 'actions' must have shape (N, S, E, d)");
  const int64_t n = actions.size(0), S = actions.size(1);
  check_tensor(obs, "obs", {n, cfg_.obs_dim});
  torch::NoGradGuard ng;
  auto obs_rep = obs.repeat_interleave(S, 0);
  auto flat = actions.reshape({n * S, actions.size(2), actions.size(3)});
  torch::Tensor qs;  // (M, n·S)
  if (num_groups() > 1) {
    auto x = input(obs_rep, flat, "actions");
    qs = torch::empty({cfg_.ensemble_size, n * S});
    run_member_groups([&](int64_t, int64_t m_lo, int64_t m_hi) {
      torch::NoGradGuard ng_group;  // grad mode is per thread
      for (int64_t m = m_lo; m < m_hi; ++m) qs[m].copy_(q_target_->forward_member(x, m));
    });
  } else {
    qs = q_target(obs_rep, flat);
  }
  auto qmin = std::get<0>(qs.min(0));  // (n·S,)
  return qmin.view({n, S}).mean(1).clamp(cfg_.q_target_min, cfg_.q_target_max);
}

torch::Tensor CriticEnsemble::loss(const torch::Tensor& obs, const torch::Tensor& chunks,
                                   const torch::Tensor& targets) {
  torch::Tensor x, y, w;
  split(obs, chunks, targets, x, y, w);
  auto pred = q_->forward(x);  // (M, per·T)
  auto per_member = ((pred - y).pow(2) * w).sum(1) / w.sum(1);
  return per_member.sum();
}

void CriticEnsemble::split(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets,
                           torch::Tensor& x, torch::Tensor& y, torch::Tensor& w) {
  check_tensor(targets, "targets", {-1, -1});
  const int64_t n = targets.size(0), T = targets.size(1), M = cfg_.ensemble_size;
  check_tensor(obs, "obs", {n, T, cfg_.obs_dim});
  check_arg(chunks.defined() && chunks.dim() == 4 && chunks.size(0) == n && chunks.size(1) == T,
            "argument 'chunks' must have shape (", n, ", ", T, ", E, ", cfg_.action_dim, ")");
  check_arg(n >= M, "the trajectory split needs at least ensemble_size (", M, ") trajectories, got ", n);
  check_finite(targets, "targets");
  // Member i gets trajectories i, i+M, ...; pad to equal counts with weight 0.
  const int64_t per = (n + M - 1) / M;
  auto idx =
      torch::arange(per, torch::kLong).unsqueeze(0) * M + torch::arange(M, torch::kLong).unsqueeze(1);  // (M, per)
  auto valid = (idx < n).to(torch::kFloat32);
  idx = idx.clamp_max(n - 1);
  auto flat_idx = idx.reshape({-1});
  x = input(obs.index_select(0, flat_idx).reshape({M * per * T, cfg_.obs_dim}),
            chunks.index_select(0, flat_idx).reshape({M * per * T, chunks.size(2), chunks.size(3)}), "chunks")
          .view({M, per * T, -1});
  y = targets.index_select(0, flat_idx).reshape({M, per * T});
  w = valid.repeat_interleave(T, 1);  // (M, per·T)
}

int64_t CriticEnsemble::num_groups() const {
  return std::max<int64_t>(1, std::min(cfg_.update_groups, cfg_.ensemble_size));
}

void CriticEnsemble::run_member_groups(const std::function<void(int64_t g, int64_t m_lo, int64_t m_hi)>& fn) {
  const int64_t G = num_groups(), M = cfg_.ensemble_size;
  auto group = [&](int64_t g) { fn(g, g * M / G, (g + 1) * M / G); };
  std::unique_lock<std::mutex> lock(*pool_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) {  // another call is using the pool: the same work, group after group
    ScopedBlasThreads one_blas_thread(1);
    for (int64_t g = 0; g < G; ++g) group(g);
    return;
  }
  run_groups_one_blas_thread(*pool_, G, group);
}

double CriticEnsemble::update_grouped(const torch::Tensor& obs, const torch::Tensor& chunks,
                                      const torch::Tensor& targets) {
  torch::Tensor x, y, w;
  split(obs, chunks, targets, x, y, w);
  const int64_t G = num_groups(), M = cfg_.ensemble_size;
  const auto params = q_->parameters();
  std::vector<torch::Tensor> member_loss(static_cast<size_t>(M));
  std::vector<std::vector<torch::Tensor>> grads(static_cast<size_t>(G));
  run_member_groups([&](int64_t g, int64_t m_lo, int64_t m_hi) {
    torch::Tensor total;
    for (int64_t m = m_lo; m < m_hi; ++m) {
      auto pred = q_->forward_member(x[m], m);
      member_loss[m] = ((pred - y[m]).pow(2) * w[m]).sum() / w[m].sum();
      total = total.defined() ? total + member_loss[m] : member_loss[m];
    }
    grads[g] = torch::autograd::grad({total}, params, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
  });
  // Each group's gradient is zero outside its members' slices, so the sum is exact.
  opt_->zero_grad();
  set_summed_grads(params, grads);
  opt_->step();
  polyak_update();
  double l = 0.0;
  for (int64_t m = 0; m < M; ++m) l += member_loss[m].item<double>();
  return l;
}

double CriticEnsemble::update(const torch::Tensor& obs, const torch::Tensor& chunks, const torch::Tensor& targets) {
  if (num_groups() > 1) return update_grouped(obs, chunks, targets);
  auto l = loss(obs, chunks, targets);
  opt_->zero_grad();
  l.backward();
  opt_->step();
  polyak_update();
  return l.item<double>();
}

double CriticEnsemble::lr() const {
  return static_cast<const torch::optim::AdamWOptions&>(opt_->param_groups().front().options()).lr();
}

void CriticEnsemble::set_lr(double lr) {
  check_arg(std::isfinite(lr) && lr > 0.0, "CriticEnsemble::set_lr: lr must be finite and > 0, got ", lr);
  for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

void CriticEnsemble::polyak_update() { polyak_average(*q_target_, *q_, cfg_.target_momentum); }

namespace {
constexpr const char* kCriticKind = "critic_ensemble/1";
}

void CriticEnsemble::save(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  write_header(ar, kCriticKind);
  ar.write("config.obs_dim", c10::IValue(cfg_.obs_dim));
  ar.write("config.action_dim", c10::IValue(cfg_.action_dim));
  ar.write("config.act_steps", c10::IValue(cfg_.act_steps));
  ar.write("config.ensemble_size", c10::IValue(cfg_.ensemble_size));
  ar.write("config.hidden", c10::IValue(cfg_.hidden));
  ar.write("config.activation", c10::IValue(cfg_.activation));
  ar.write("config.init_std", c10::IValue(cfg_.init_std));
  ar.write("config.lr", c10::IValue(cfg_.lr));
  ar.write("config.weight_decay", c10::IValue(cfg_.weight_decay));
  ar.write("config.target_momentum", c10::IValue(cfg_.target_momentum));
  ar.write("config.q_target_min", c10::IValue(cfg_.q_target_min));
  ar.write("config.q_target_max", c10::IValue(cfg_.q_target_max));
  torch::serialize::OutputArchive a, b;
  q_->save(a);
  q_target_->save(b);
  ar.write("online", a);
  ar.write("target", b);
  save_archive_atomic(ar, path);
}

CriticEnsemble CriticEnsemble::load(const std::string& path) {
  torch::serialize::InputArchive ar;
  load_archive(ar, path, kCriticKind);
  CriticConfig c;
  c.obs_dim = read_value(ar, "config.obs_dim", path).toInt();
  c.action_dim = read_value(ar, "config.action_dim", path).toInt();
  c.act_steps = read_value(ar, "config.act_steps", path).toInt();
  c.ensemble_size = read_value(ar, "config.ensemble_size", path).toInt();
  c.hidden = read_value(ar, "config.hidden", path).toIntVector();
  c.activation = read_value(ar, "config.activation", path).toStringRef();
  c.init_std = read_value(ar, "config.init_std", path).toDouble();
  c.lr = read_value(ar, "config.lr", path).toDouble();
  c.weight_decay = read_value(ar, "config.weight_decay", path).toDouble();
  c.target_momentum = read_value(ar, "config.target_momentum", path).toDouble();
  c.q_target_min = read_value(ar, "config.q_target_min", path).toDouble();
  c.q_target_max = read_value(ar, "config.q_target_max", path).toDouble();
  CriticEnsemble e(c);
  load_module(*e.q_, ar, "online", path);
  load_module(*e.q_target_, ar, "target", path);
  for (auto& p : e.q_target_->parameters()) p.set_requires_grad(false);
  return e;
}

void CriticEnsemble::save_state(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive a, b;
  q_->save(a);
  q_target_->save(b);
  archive.write("online", a);
  archive.write("target", b);
  save_optimizer(*opt_, archive, "optimizer");
}

void CriticEnsemble::load_state(torch::serialize::InputArchive& archive, const std::string& path) {
  load_module(*q_, archive, "online", path);
  load_module(*q_target_, archive, "target", path);
  for (auto& p : q_target_->parameters()) p.set_requires_grad(false);
  load_optimizer(*opt_, archive, "optimizer", path);
}

}  // namespace rldt
