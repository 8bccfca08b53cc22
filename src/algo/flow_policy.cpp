#include "rldt/algo/flow_policy.hpp"

#include <torch/torch.h>

#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

void FlowPolicyConfig::validate() const {
  check_arg(obs_dim > 0, "obs_dim must be > 0, got ", obs_dim);
  check_arg(action_dim > 0, "action_dim must be > 0, got ", action_dim);
  check_arg(horizon_steps > 0, "horizon_steps must be > 0, got ", horizon_steps);
  check_arg(denoising_steps >= 1, "denoising_steps (K) must be >= 1, got ", denoising_steps);
  check_arg(!mlp_dims.empty(), "mlp_dims must not be empty");
  check_arg(time_dim >= 4 && time_dim % 2 == 0, "time_dim must be even and >= 4, got ", time_dim);
  check_activation(activation, "activation");
  check_choice(prediction, "prediction", {"v_pred", "x_pred"});
  check_arg(final_action_clip >= 0.0, "final_action_clip must be >= 0 (0 = off), got ", final_action_clip);
  check_arg(bc_lr > 0.0, "bc_lr must be > 0, got ", bc_lr);
  check_arg(bc_weight_decay >= 0.0, "bc_weight_decay must be >= 0, got ", bc_weight_decay);
  check_arg(ema_decay >= 0.0 && ema_decay < 1.0, "ema_decay must be in [0, 1), got ", ema_decay);
  check_arg(xpred_t_max > 0.0 && xpred_t_max < 1.0, "xpred_t_max must be in (0, 1), got ", xpred_t_max);
}

VelocityNetImpl::VelocityNetImpl(const FlowPolicyConfig& cfg)
    : horizon_(cfg.horizon_steps), action_dim_(cfg.action_dim) {
  cfg.validate();
  time_ = register_module("time", TimeEmbedding(cfg.time_dim));
  const int64_t in = cfg.action_size() + cfg.time_dim + cfg.obs_dim;
  if (cfg.residual) {
    res_body_ = register_module("body", ResidualMLP(in, cfg.mlp_dims, cfg.action_size(), cfg.activation));
  } else {
    std::vector<int64_t> dims{in};
    dims.insert(dims.end(), cfg.mlp_dims.begin(), cfg.mlp_dims.end());
    dims.push_back(cfg.action_size());
    mlp_body_ = register_module("body", MLP(dims, cfg.activation));
  }
}

torch::Tensor VelocityNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& obs) {
  const int64_t n = x.size(0);
  auto in = torch::cat({x.reshape({n, horizon_ * action_dim_}), time_->forward(t), obs}, -1);
  auto out = res_body_ ? res_body_->forward(in) : mlp_body_->forward(in);
  return out.view({n, horizon_, action_dim_});
}

torch::Tensor VelocityNetImpl::forward_saving(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& obs,
                                              std::vector<torch::Tensor>& saved) {
  const int64_t n = x.size(0);
  auto in = torch::cat({x.reshape({n, horizon_ * action_dim_}), time_->forward_saving(t, saved), obs}, -1);
  auto out = res_body_ ? res_body_->forward_saving(in, saved) : mlp_body_->forward_saving(in, saved);
  return out.view({n, horizon_, action_dim_});
}

void VelocityNetImpl::backward_saved(const std::vector<torch::Tensor>& saved, const torch::Tensor& grad_out) {
  const int64_t A = horizon_ * action_dim_;
  check_arg(grad_out.dim() == 3 && grad_out.size(1) == horizon_ && grad_out.size(2) == action_dim_,
            "VelocityNet backward: grad_out must have shape (R, ", horizon_, ", ", action_dim_, "), got ",
            grad_out.sizes());
  check_arg(!saved.empty() && saved[0].defined() && saved[0].size(0) == grad_out.size(0),
            "VelocityNet backward: the saved activations' rows do not match grad_out's ", grad_out.size(0));
  const size_t body = 3;  // the time embedding's entries come first
  auto g = grad_out.reshape({grad_out.size(0), A});
  auto g_in = res_body_ ? res_body_->backward_saved(saved, body, g) : mlp_body_->backward_saved(saved, body, g);
  time_->backward_saved(saved, 0, g_in.narrow(1, A, time_->dim()));
}

void copy_module_state(torch::nn::Module& dst, const torch::nn::Module& src) {
  torch::NoGradGuard ng;
  auto dp = dst.named_parameters(true);
  for (const auto& p : src.named_parameters(true)) dp[p.key()].copy_(p.value());
  auto db = dst.named_buffers(true);
  for (const auto& b : src.named_buffers(true)) db[b.key()].copy_(b.value());
}

void polyak_average(torch::nn::Module& dst, const torch::nn::Module& src, double m) {
  torch::NoGradGuard ng;
  auto dp = dst.named_parameters(true);
  for (const auto& p : src.named_parameters(true)) dp[p.key()].mul_(m).add_(p.value(), 1.0 - m);
}

namespace {
void freeze(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}
}  // namespace

FlowPolicy::FlowPolicy(FlowPolicyConfig cfg, uint64_t seed) : cfg_(std::move(cfg)) {
  cfg_.validate();
  auto gen = make_generator(seed);
  actor_ = VelocityNet(cfg_);
  init_linear_layers(*actor_, gen);
  ema_ = VelocityNet(cfg_);
  reference_ = VelocityNet(cfg_);
  copy_module_state(*ema_, *actor_);
  copy_module_state(*reference_, *actor_);
  freeze(*ema_);
  freeze(*reference_);
  bc_opt_ = std::make_shared<torch::optim::AdamW>(
      actor_->parameters(), torch::optim::AdamWOptions(cfg_.bc_lr).weight_decay(cfg_.bc_weight_decay));
}

torch::Tensor FlowPolicy::velocity_from_output(const torch::Tensor& out, const torch::Tensor& x,
                                               const torch::Tensor& t) const {
  if (cfg_.prediction == "v_pred") return out;
  return (out - x) / (1.0 - t).view({-1, 1, 1});
}

torch::Tensor FlowPolicy::expected_target_from_output(const torch::Tensor& out, const torch::Tensor& x,
                                                      const torch::Tensor& t) const {
  if (cfg_.prediction == "x_pred") return out;
  return x + (1.0 - t).view({-1, 1, 1}) * out;
}

torch::Tensor FlowPolicy::integrate(const torch::Tensor& obs, at::Generator& gen, bool deterministic, VelocityNet& net,
                                    torch::Tensor* chain) {
  check_tensor(obs, "obs", {-1, cfg_.obs_dim});
  const int64_t b = obs.size(0);
  auto x = deterministic ? torch::zeros({b, cfg_.horizon_steps, cfg_.action_dim})
                         : torch::randn({b, cfg_.horizon_steps, cfg_.action_dim}, gen);
  return integrate_from(std::move(x), obs, net, chain);
}

torch::Tensor FlowPolicy::integrate_from(torch::Tensor x, const torch::Tensor& obs, VelocityNet& net,
                                         torch::Tensor* chain, ChainCapture* capture) {
  torch::NoGradGuard ng;
  const int64_t b = obs.size(0), K = cfg_.denoising_steps;
  if (chain) {
    *chain = torch::empty({b, K + 1, cfg_.horizon_steps, cfg_.action_dim});
    chain->select(1, 0).copy_(x);
  }
  // capture: per step, the rows whose pass is kept there and where they go in capture->saved.
  std::vector<torch::Tensor> rows_at;
  std::vector<int64_t> first(static_cast<size_t>(K) + 1, 0);
  if (capture) {
    const auto& kk = capture->k;
    check_arg(kk.defined() && kk.dim() == 1 && kk.size(0) == b && kk.scalar_type() == torch::kLong,
              "ChainCapture.k must be an int64 tensor of shape (", b, ",)");
    check_arg(b == 0 || (kk.min().item<int64_t>() >= 0 && kk.max().item<int64_t>() < K),
              "ChainCapture.k must hold steps in [0, ", K, ")");
    capture->rows = std::get<1>(kk.sort(/*stable=*/true, 0, /*descending=*/false));
    auto counts = torch::bincount(kk, {}, K);
    for (int64_t k = 0; k < K; ++k) first[k + 1] = first[k] + counts[k].item<int64_t>();
    for (int64_t k = 0; k < K; ++k) rows_at.push_back(capture->rows.narrow(0, first[k], first[k + 1] - first[k]));
    capture->out = torch::empty({b, cfg_.horizon_steps, cfg_.action_dim});
  }
  auto t = torch::empty({b});
  std::vector<torch::Tensor> step_saved;
  for (int64_t k = 0; k < K; ++k) {
    t.fill_(static_cast<double>(k) / K);
    torch::Tensor out;
    if (capture) {
      step_saved.clear();
      out = net->forward_saving(x, t, obs, step_saved);
      auto& saved = capture->saved;
      if (k == 0 && saved.empty()) {
        for (const auto& e : step_saved) saved.push_back(e.defined() ? torch::empty(e.sizes()) : e);
      } else if (k == 0) {
        bool fits = saved.size() == step_saved.size();
        for (size_t i = 0; fits && i < saved.size(); ++i)
          fits = saved[i].defined() == step_saved[i].defined() &&
                 (!saved[i].defined() || (saved[i].sizes() == step_saved[i].sizes() && saved[i].is_contiguous()));
        check_arg(fits,
                  "ChainCapture.saved must be empty or hold contiguous buffers shaped as "
                  "VelocityNet::forward_saving's entries for ",
                  b, " rows");
      }
      const auto& rows = rows_at[static_cast<size_t>(k)];
      if (rows.numel() > 0) {
        const int64_t at = first[k], n = rows.numel();
        for (size_t i = 0; i < step_saved.size(); ++i)
          if (step_saved[i].defined()) {
            auto dst = saved[i].narrow(0, at, n);  // this step's block
            torch::index_select_out(dst, step_saved[i], 0, rows);
          }
        capture->out.index_copy_(0, rows, out.index_select(0, rows));
      }
    } else {
      out = net->forward(x, t, obs);
    }
    x.add_(velocity_from_output(out, x, t), 1.0 / static_cast<double>(K));
    if (chain) chain->select(1, k + 1).copy_(x);
  }
  return x;
}

FlowSample FlowPolicy::sample(const torch::Tensor& obs, at::Generator& gen, bool deterministic, VelocityNet* net) {
  FlowSample s;
  auto x = integrate(obs, gen, deterministic, net ? *net : actor_, &s.chain);
  s.actions = cfg_.final_action_clip > 0 ? x.clamp(-cfg_.final_action_clip, cfg_.final_action_clip) : x;
  return s;
}

FlowSample FlowPolicy::sample_from(const torch::Tensor& x0, const torch::Tensor& obs, ChainCapture* capture) {
  check_tensor(obs, "obs", {-1, cfg_.obs_dim});
  check_tensor(x0, "x0", {obs.size(0), cfg_.horizon_steps, cfg_.action_dim});
  FlowSample s;
  auto x = integrate_from(x0.to(torch::kFloat).clone(), obs, actor_, &s.chain, capture);
  s.actions = cfg_.final_action_clip > 0 ? x.clamp(-cfg_.final_action_clip, cfg_.final_action_clip) : x;
  return s;
}

torch::Tensor FlowPolicy::act_from(const torch::Tensor& x0, const torch::Tensor& obs) {
  check_tensor(obs, "obs", {-1, cfg_.obs_dim});
  check_tensor(x0, "x0", {obs.size(0), cfg_.horizon_steps, cfg_.action_dim});
  auto x = integrate_from(x0.to(torch::kFloat).clone(), obs, actor_, nullptr);
  if (cfg_.final_action_clip > 0) x.clamp_(-cfg_.final_action_clip, cfg_.final_action_clip);
  return x;
}

void FlowPolicy::set_final_action_clip(double clip) {
  check_arg(clip >= 0.0, "final_action_clip must be >= 0 (0 = off), got ", clip);
  cfg_.final_action_clip = clip;
}

torch::Tensor FlowPolicy::act(const torch::Tensor& obs, at::Generator& gen, bool deterministic) {
  auto x = integrate(obs, gen, deterministic, actor_, nullptr);
  if (cfg_.final_action_clip > 0) x.clamp_(-cfg_.final_action_clip, cfg_.final_action_clip);
  return x;
}

torch::Tensor FlowPolicy::expected_target(const torch::Tensor& x_k, const torch::Tensor& k, const torch::Tensor& obs) {
  check_tensor(x_k, "x_k", {-1, cfg_.horizon_steps, cfg_.action_dim});
  check_tensor(obs, "obs", {x_k.size(0), cfg_.obs_dim});
  check_arg(k.defined() && k.dim() == 1 && k.size(0) == x_k.size(0), "argument 'k' must have shape (", x_k.size(0),
            ",)");
  check_arg(k.numel() == 0 || (k.min().item<int64_t>() >= 0 && k.max().item<int64_t>() < cfg_.denoising_steps),
            "argument 'k' must hold steps in [0, ", cfg_.denoising_steps, ")");
  auto t = k.to(torch::kFloat32) / static_cast<double>(cfg_.denoising_steps);
  auto out = actor_->forward(x_k, t, obs);
  return expected_target_from_output(out, x_k, t);
}

torch::Tensor FlowPolicy::bc_loss(const torch::Tensor& obs, const torch::Tensor& actions, at::Generator& gen,
                                  VelocityNet* net) {
  check_tensor(actions, "actions", {-1, cfg_.horizon_steps, cfg_.action_dim});
  check_tensor(obs, "obs", {actions.size(0), cfg_.obs_dim});
  const int64_t n = actions.size(0);
  auto z = torch::randn(actions.sizes(), gen);
  auto t = torch::rand({n}, gen);
  if (cfg_.prediction == "x_pred") t = t.clamp_max(cfg_.xpred_t_max);
  auto tb = t.view({-1, 1, 1});
  auto xt = (1.0 - tb) * z + tb * actions;
  auto out = (net ? *net : actor_)->forward(xt, t, obs);
  if (cfg_.prediction == "v_pred") return (out - (actions - z)).pow(2).mean();
  // x_pred: per-sample mean error weighted by 1/(1−t)², the v_pred loss in x̂ form.
  auto per = (out - actions).pow(2).mean({1, 2}) / (1.0 - t).pow(2);
  return per.mean();
}

double FlowPolicy::bc_update(const torch::Tensor& obs, const torch::Tensor& actions, at::Generator& gen) {
  auto loss = bc_loss(obs, actions, gen);
  bc_opt_->zero_grad();
  loss.backward();
  bc_opt_->step();
  update_ema();
  return loss.item<double>();
}

void FlowPolicy::update_ema() { polyak_average(*ema_, *actor_, cfg_.ema_decay); }
void FlowPolicy::load_ema_into_actor() { copy_module_state(*actor_, *ema_); }
void FlowPolicy::refresh_reference() { copy_module_state(*reference_, *actor_); }

void FlowPolicy::set_normalizer(PolicyNormalizer n) {
  n.check_dims(cfg_.obs_dim, cfg_.action_dim);
  normalizer_ = std::move(n);
}

namespace {
constexpr const char* kFlowKind = "flow_policy/1";

void write_config(torch::serialize::OutputArchive& ar, const FlowPolicyConfig& c) {
  ar.write("config.obs_dim", c10::IValue(c.obs_dim));
  ar.write("config.action_dim", c10::IValue(c.action_dim));
  ar.write("config.horizon_steps", c10::IValue(c.horizon_steps));
  ar.write("config.denoising_steps", c10::IValue(c.denoising_steps));
  ar.write("config.mlp_dims", c10::IValue(c.mlp_dims));
  ar.write("config.time_dim", c10::IValue(c.time_dim));
  ar.write("config.activation", c10::IValue(c.activation));
  ar.write("config.residual", c10::IValue(c.residual));
  ar.write("config.prediction", c10::IValue(c.prediction));
  ar.write("config.final_action_clip", c10::IValue(c.final_action_clip));
  ar.write("config.bc_lr", c10::IValue(c.bc_lr));
  ar.write("config.bc_weight_decay", c10::IValue(c.bc_weight_decay));
  ar.write("config.ema_decay", c10::IValue(c.ema_decay));
  ar.write("config.xpred_t_max", c10::IValue(c.xpred_t_max));
}

FlowPolicyConfig read_config(torch::serialize::InputArchive& ar, const std::string& path) {
  FlowPolicyConfig c;
  c.obs_dim = read_value(ar, "config.obs_dim", path).toInt();
  c.action_dim = read_value(ar, "config.action_dim", path).toInt();
  c.horizon_steps = read_value(ar, "config.horizon_steps", path).toInt();
  c.denoising_steps = read_value(ar, "config.denoising_steps", path).toInt();
  c.mlp_dims = read_value(ar, "config.mlp_dims", path).toIntVector();
  c.time_dim = read_value(ar, "config.time_dim", path).toInt();
  c.activation = read_value(ar, "config.activation", path).toStringRef();
  c.residual = read_value(ar, "config.residual", path).toBool();
  c.prediction = read_value(ar, "config.prediction", path).toStringRef();
  c.final_action_clip = read_value(ar, "config.final_action_clip", path).toDouble();
  c.bc_lr = read_value(ar, "config.bc_lr", path).toDouble();
  c.bc_weight_decay = read_value(ar, "config.bc_weight_decay", path).toDouble();
  c.ema_decay = read_value(ar, "config.ema_decay", path).toDouble();
  c.xpred_t_max = read_value(ar, "config.xpred_t_max", path).toDouble();
  return c;
}

// Normaliser bounds (float64), only those that are set.
void write_normalizer(torch::serialize::OutputArchive& ar, const PolicyNormalizer& n) {
  auto write_bounds = [&ar](const char* key, const std::optional<MinMaxNormalizer>& b) {
    if (!b) return;
    ar.write(std::string("normalizer.") + key + "_low", torch::tensor(b->low(), torch::kFloat64), /*is_buffer=*/true);
    ar.write(std::string("normalizer.") + key + "_high", torch::tensor(b->high(), torch::kFloat64),
             /*is_buffer=*/true);
  };
  write_bounds("obs", n.obs);
  write_bounds("action", n.action);
}

// Absent in files written before the normaliser existed (identity obs, env action bounds).
PolicyNormalizer read_normalizer(torch::serialize::InputArchive& ar, const std::string& path,
                                 const FlowPolicyConfig& c) {
  auto read_bounds = [&](const char* key, int64_t dim) -> std::optional<MinMaxNormalizer> {
    torch::Tensor lo, hi;
    const std::string k = std::string("normalizer.") + key;
    const bool has_lo = ar.try_read(k + "_low", lo, true), has_hi = ar.try_read(k + "_high", hi, true);
    if (!has_lo && !has_hi) return std::nullopt;
    if (!has_lo || !has_hi || lo.dim() != 1 || hi.dim() != 1 || lo.size(0) != dim || hi.size(0) != dim)
      throw std::runtime_error("'" + path + "': entries '" + k + "_low' / '" + k + "_high' must both be present with " +
                               std::to_string(dim) + " values");
    lo = lo.to(torch::kFloat64).contiguous();
    hi = hi.to(torch::kFloat64).contiguous();
    std::vector<double> l(lo.data_ptr<double>(), lo.data_ptr<double>() + dim);
    std::vector<double> h(hi.data_ptr<double>(), hi.data_ptr<double>() + dim);
    try {
      return MinMaxNormalizer(l, h);
    } catch (const std::exception& e) {
      throw std::runtime_error("'" + path + "': entry '" + k + "': " + e.what());
    }
  };
  PolicyNormalizer n;
  n.obs = read_bounds("obs", c.obs_dim);
  n.action = read_bounds("action", c.action_dim);
  return n;
}
}  // namespace

void FlowPolicy::save(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  write_header(ar, kFlowKind);
  write_config(ar, cfg_);
  for (auto [name, net] :
       {std::pair<const char*, const VelocityNet*>{"actor", &actor_}, {"ema", &ema_}, {"reference", &reference_}}) {
    torch::serialize::OutputArchive sub;
    (*net)->save(sub);
    ar.write(name, sub);
  }
  write_normalizer(ar, normalizer_);
  save_archive_atomic(ar, path);
}

FlowPolicy FlowPolicy::load(const std::string& path) {
  torch::serialize::InputArchive ar;
  load_archive(ar, path, kFlowKind);
  FlowPolicy p(read_config(ar, path));
  load_module(*p.actor_, ar, "actor", path);
  load_module(*p.ema_, ar, "ema", path);
  load_module(*p.reference_, ar, "reference", path);
  freeze(*p.ema_);
  freeze(*p.reference_);
  p.set_normalizer(read_normalizer(ar, path, p.cfg_));
  return p;
}

void FlowPolicy::save_state(torch::serialize::OutputArchive& archive) const {
  write_config(archive, cfg_);
  for (auto [name, net] :
       {std::pair<const char*, const VelocityNet*>{"actor", &actor_}, {"ema", &ema_}, {"reference", &reference_}}) {
    torch::serialize::OutputArchive sub;
    (*net)->save(sub);
    archive.write(name, sub);
  }
  save_optimizer(*bc_opt_, archive, "bc_optimizer");
  write_normalizer(archive, normalizer_);
}

void FlowPolicy::load_state(torch::serialize::InputArchive& archive, const std::string& path) {
  const FlowPolicyConfig c = read_config(archive, path);
  if (!c.same_architecture(cfg_))
    throw std::runtime_error("'" + path + "': the stored policy has another architecture (obs_dim " +
                             std::to_string(c.obs_dim) + ", action_dim " + std::to_string(c.action_dim) +
                             ", horizon_steps " + std::to_string(c.horizon_steps) + ", mlp_dims of " +
                             std::to_string(c.mlp_dims.size()) + " layers, ...) than this policy");
  load_module(*actor_, archive, "actor", path);
  load_module(*ema_, archive, "ema", path);
  load_module(*reference_, archive, "reference", path);
  freeze(*ema_);
  freeze(*reference_);
  load_optimizer(*bc_opt_, archive, "bc_optimizer", path);
  set_normalizer(read_normalizer(archive, path, cfg_));
}

FlowPolicy FlowPolicy::from_state(torch::serialize::InputArchive& archive, const std::string& path) {
  FlowPolicy p(read_config(archive, path));
  p.load_state(archive, path);
  return p;
}

}  // namespace rldt
