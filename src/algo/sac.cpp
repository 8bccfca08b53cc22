#include "rldt/algo/sac.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "rldt/algo/flow_policy.hpp"  // copy_module_state, polyak_average
#include "rldt/util/check.hpp"
#include "rldt/util/malloc_tuning.hpp"
#include "rldt/util/rng.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

namespace {
const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::acos(-1.0));
const double kLog2 = std::log(2.0);

// log(1 − tanh²(u)) = 2·(log 2 − u − softplus(−2u)), exact and stable for large |u|.
torch::Tensor log_one_minus_tanh_sq(const torch::Tensor& u) {
  return 2.0 * (kLog2 - u - torch::nn::functional::softplus(-2.0 * u));
}

void check_bounds(const std::vector<double>& low, const std::vector<double>& high, int64_t d) {
  check_arg(low.size() == high.size(), "SAC action bounds: action_low has ", low.size(), " entries, action_high ",
            high.size());
  check_arg(static_cast<int64_t>(low.size()) == d, "SAC action bounds: ", low.size(),
            " entries given; the action has d = ", d);
  for (int64_t j = 0; j < d; ++j)
    check_arg(std::isfinite(low[j]) && std::isfinite(high[j]) && low[j] < high[j], "SAC action bounds [", j,
              "] must be finite with low < high, got [", low[j], ", ", high[j], "]");
}
}  // namespace

void SacConfig::validate() const {
  check_arg(obs_dim > 0, "sac.obs_dim must be > 0, got ", obs_dim);
  check_arg(action_dim > 0, "sac.action_dim must be > 0, got ", action_dim);
  check_arg(!hidden.empty(), "sac.hidden must not be empty");
  for (auto h : hidden) check_arg(h > 0, "sac.hidden sizes must be > 0, got ", h);
  check_activation(activation, "sac.activation");
  check_arg(actor_lr > 0.0, "sac.actor_lr must be > 0, got ", actor_lr);
  check_arg(critic_lr > 0.0, "sac.critic_lr must be > 0, got ", critic_lr);
  check_arg(alpha_lr > 0.0, "sac.alpha_lr must be > 0, got ", alpha_lr);
  check_arg(gamma >= 0.0 && gamma <= 1.0, "sac.gamma must be in [0, 1], got ", gamma);
  check_arg(tau > 0.0 && tau <= 1.0, "sac.tau must be in (0, 1], got ", tau);
  check_arg(batch_size >= 1, "sac.batch_size must be >= 1, got ", batch_size);
  check_arg(std::isfinite(target_entropy_per_dim), "sac.target_entropy_per_dim must be finite, got ",
            target_entropy_per_dim);
  check_arg(init_alpha > 0.0 && std::isfinite(init_alpha), "sac.init_alpha must be > 0, got ", init_alpha);
  check_arg(std::isfinite(log_std_min) && std::isfinite(log_std_max) && log_std_min < log_std_max, "sac.log_std_min (",
            log_std_min, ") must be < sac.log_std_max (", log_std_max, ")");
  check_arg(policy_frequency >= 1, "sac.policy_frequency must be >= 1, got ", policy_frequency);
  check_arg(target_frequency >= 1, "sac.target_frequency must be >= 1, got ", target_frequency);
  check_arg(learning_starts >= 0, "sac.learning_starts must be >= 0, got ", learning_starts);
  check_arg(buffer_size >= 1, "sac.buffer_size must be >= 1, got ", buffer_size);
  check_arg(utd > 0.0 && std::isfinite(utd), "sac.utd must be > 0, got ", utd);
}

torch::Tensor tanh_gaussian_log_prob(const torch::Tensor& pre_tanh, const torch::Tensor& mean,
                                     const torch::Tensor& log_std) {
  check_tensor(pre_tanh, "pre_tanh", {-1, -1});
  check_tensor(mean, "mean", {pre_tanh.size(0), pre_tanh.size(1)});
  check_tensor(log_std, "log_std", {pre_tanh.size(0), pre_tanh.size(1)});
  auto z = (pre_tanh - mean) * torch::exp(-log_std);
  return (-0.5 * z * z - log_std - kHalfLog2Pi - log_one_minus_tanh_sq(pre_tanh)).sum(-1);
}

// ---------------------------------------------------------------------------
// Actor
// ---------------------------------------------------------------------------

TanhGaussianActorImpl::TanhGaussianActorImpl(int64_t obs_dim, int64_t action_dim, std::vector<int64_t> hidden,
                                             std::string activation, double log_std_min, double log_std_max,
                                             at::Generator& gen)
    : action_dim_(action_dim), log_std_min_(log_std_min), log_std_max_(log_std_max) {
  std::vector<int64_t> dims{obs_dim};
  dims.insert(dims.end(), hidden.begin(), hidden.end());
  dims.push_back(2 * action_dim);
  net_ = register_module("net", MLP(dims, std::move(activation)));
  init_linear_layers(*net_, gen);
}

std::pair<torch::Tensor, torch::Tensor> TanhGaussianActorImpl::forward(const torch::Tensor& obs) {
  auto out = net_->forward(obs);
  auto mean = out.narrow(-1, 0, action_dim_);
  auto log_std = out.narrow(-1, action_dim_, action_dim_).clamp(log_std_min_, log_std_max_);
  return {mean, log_std};
}

TanhGaussianSample TanhGaussianActorImpl::sample(const torch::Tensor& obs, at::Generator& gen) {
  auto [mean, log_std] = forward(obs);
  auto eps = torch::randn(mean.sizes(), gen);
  auto u = mean + torch::exp(log_std) * eps;
  // Same density as tanh_gaussian_log_prob(u, mean, log_std), with z = ε exactly.
  auto log_prob = (-0.5 * eps * eps - log_std - kHalfLog2Pi - log_one_minus_tanh_sq(u)).sum(-1);
  return {torch::tanh(u), log_prob, torch::tanh(mean)};
}

// ---------------------------------------------------------------------------
// Policy (inference)
// ---------------------------------------------------------------------------

SacPolicy::SacPolicy(const SacConfig& cfg, uint64_t seed, std::vector<double> action_low,
                     std::vector<double> action_high)
    : obs_dim_(cfg.obs_dim),
      action_dim_(cfg.action_dim),
      hidden_(cfg.hidden),
      activation_(cfg.activation),
      log_std_min_(cfg.log_std_min),
      log_std_max_(cfg.log_std_max),
      low_(std::move(action_low)),
      high_(std::move(action_high)) {
  cfg.validate();
  if (low_.empty() && high_.empty()) {
    low_.assign(static_cast<size_t>(action_dim_), -1.0);
    high_.assign(static_cast<size_t>(action_dim_), 1.0);
  }
  check_bounds(low_, high_, action_dim_);
  auto gen = make_generator(seed);
  actor_ = TanhGaussianActor(obs_dim_, action_dim_, hidden_, activation_, log_std_min_, log_std_max_, gen);
}

torch::Tensor SacPolicy::act(const torch::Tensor& obs, at::Generator& gen, bool deterministic) {
  check_tensor(obs, "obs", {-1, obs_dim_});
  torch::NoGradGuard ng;
  if (deterministic) return torch::tanh(actor_->forward(obs).first);
  return actor_->sample(obs, gen).action;
}

void SacPolicy::to_env_units(const torch::Tensor& actions, double* out) const {
  const auto a = actions.to(torch::kFloat).contiguous();
  const float* p = a.data_ptr<float>();
  const int64_t d = action_dim_, rows = a.numel() / d;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < d; ++j)
      out[i * d + j] = low_[j] + (static_cast<double>(p[i * d + j]) + 1.0) * 0.5 * (high_[j] - low_[j]);
}

torch::Tensor SacPolicy::env_action(const torch::Tensor& obs, at::Generator& gen, bool deterministic) {
  auto a = act(obs, gen, deterministic);
  auto out = torch::empty(a.sizes(), torch::kDouble);
  to_env_units(a, out.data_ptr<double>());
  return out;
}

namespace {
constexpr const char* kSacPolicyKind = "sac_policy/1";
}

void SacPolicy::save(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  write_header(ar, kSacPolicyKind);
  ar.write("config.obs_dim", c10::IValue(obs_dim_));
  ar.write("config.action_dim", c10::IValue(action_dim_));
  ar.write("config.hidden", c10::IValue(hidden_));
  ar.write("config.activation", c10::IValue(activation_));
  ar.write("config.log_std_min", c10::IValue(log_std_min_));
  ar.write("config.log_std_max", c10::IValue(log_std_max_));
  ar.write("action_low", c10::IValue(low_));
  ar.write("action_high", c10::IValue(high_));
  ar.write("env_name", c10::IValue(env_name));
  torch::serialize::OutputArchive a;
  actor_->save(a);
  ar.write("actor", a);
  save_archive_atomic(ar, path);
}

std::shared_ptr<SacPolicy> SacPolicy::load(const std::string& path) {
  torch::serialize::InputArchive ar;
  load_archive(ar, path, kSacPolicyKind);
  SacConfig c;
  c.obs_dim = read_value(ar, "config.obs_dim", path).toInt();
  c.action_dim = read_value(ar, "config.action_dim", path).toInt();
  c.hidden = read_value(ar, "config.hidden", path).toIntVector();
  c.activation = read_value(ar, "config.activation", path).toStringRef();
  c.log_std_min = read_value(ar, "config.log_std_min", path).toDouble();
  c.log_std_max = read_value(ar, "config.log_std_max", path).toDouble();
  auto low = read_value(ar, "action_low", path).toDoubleVector();
  auto high = read_value(ar, "action_high", path).toDoubleVector();
  auto p = std::make_shared<SacPolicy>(c, 0, low, high);
  p->env_name = read_value(ar, "env_name", path).toStringRef();
  load_module(*p->actor_, ar, "actor", path);
  return p;
}

// ---------------------------------------------------------------------------
// Learner
// ---------------------------------------------------------------------------

Sac::Sac(SacConfig cfg, uint64_t seed, std::vector<double> action_low, std::vector<double> action_high)
    : cfg_(std::move(cfg)) {
  cfg_.validate();
  tune_malloc_for_training();
  policy_ = std::make_shared<SacPolicy>(cfg_, seed, std::move(action_low), std::move(action_high));
  // Critics: a separate stream (seed + 1), so the actor's init does not depend on the critics'.
  auto gen = make_generator(seed + 1);
  std::vector<int64_t> dims{cfg_.obs_dim + cfg_.action_dim};
  dims.insert(dims.end(), cfg_.hidden.begin(), cfg_.hidden.end());
  dims.push_back(1);
  q_ = EnsembleMLP(2, dims, cfg_.activation, /*init_std=*/1.0, gen);
  {
    // PyTorch's default Linear init per member: U(−1/√fan_in, 1/√fan_in) for weights and biases.
    torch::NoGradGuard ng;
    for (auto& p : q_->named_parameters()) {
      const int64_t layer = std::stoll(p.key().substr(1));
      const double bound = 1.0 / std::sqrt(static_cast<double>(dims[layer]));
      p.value().uniform_(-bound, bound, gen);
    }
  }
  q_target_ = EnsembleMLP(2, dims, cfg_.activation, 1.0, gen);
  copy_module_state(*q_target_, *q_);
  for (auto& p : q_target_->parameters()) p.set_requires_grad(false);
  log_alpha_ = torch::full({}, std::log(cfg_.init_alpha), torch::kFloat);
  if (cfg_.autotune_alpha) log_alpha_.set_requires_grad(true);
  actor_params_ = policy_->actor()->parameters();
  actor_opt_ = std::make_shared<torch::optim::Adam>(actor_params_, torch::optim::AdamOptions(cfg_.actor_lr));
  critic_opt_ = std::make_shared<torch::optim::Adam>(q_->parameters(), torch::optim::AdamOptions(cfg_.critic_lr));
  alpha_opt_ = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{log_alpha_},
                                                    torch::optim::AdamOptions(cfg_.alpha_lr));
  last_.actor_loss = last_.alpha_loss = last_.entropy = std::numeric_limits<double>::quiet_NaN();
}

double Sac::alpha() const { return std::exp(log_alpha_.item<double>()); }

torch::Tensor Sac::critic_input(const torch::Tensor& obs, const torch::Tensor& actions) const {
  check_tensor(obs, "obs", {-1, cfg_.obs_dim});
  check_tensor(actions, "actions", {obs.size(0), cfg_.action_dim});
  return torch::cat({obs, actions}, -1);
}

torch::Tensor Sac::q(const torch::Tensor& obs, const torch::Tensor& actions) {
  return q_->forward(critic_input(obs, actions));
}

torch::Tensor Sac::q_target(const torch::Tensor& obs, const torch::Tensor& actions) {
  torch::NoGradGuard ng;
  return q_target_->forward(critic_input(obs, actions));
}

void Sac::polyak_update() { polyak_average(*q_target_, *q_, 1.0 - cfg_.tau); }

SacUpdateStats Sac::update(const ReplayBatch& b, at::Generator& gen) {
  const int64_t B = b.size();
  check_arg(B >= 1, "SAC update: the batch is empty");
  check_tensor(b.obs, "batch.obs", {B, cfg_.obs_dim});
  check_tensor(b.actions, "batch.actions", {B, cfg_.action_dim});
  check_tensor(b.rewards, "batch.rewards", {B});
  check_tensor(b.next_obs, "batch.next_obs", {B, cfg_.obs_dim});
  check_tensor(b.terminated, "batch.terminated", {B});
  auto& actor = policy_->actor();
  const double alpha = this->alpha();
  SacUpdateStats st = last_;
  st.actor_updated = false;

  // Critic: soft TD targets from the target critics and a fresh policy sample at s'.
  torch::Tensor y;
  {
    torch::NoGradGuard ng;
    auto next = actor->sample(b.next_obs, gen);
    auto q_next = std::get<0>(q_target_->forward(critic_input(b.next_obs, next.action)).min(0));  // (B,)
    y = b.rewards + cfg_.gamma * (1.0 - b.terminated) * (q_next - alpha * next.log_prob);
  }
  auto qs = q_->forward(critic_input(b.obs, b.actions));  // (2, B)
  auto critic_loss = (qs - y.unsqueeze(0)).pow(2).mean(1).sum();
  critic_opt_->zero_grad();
  critic_loss.backward();
  critic_opt_->step();
  ++updates_;
  st.critic_loss = critic_loss.item<double>();
  st.q_mean = qs[0].mean().item<double>();

  if (updates_ % cfg_.policy_frequency == 0) {
    // Actor: gradients w.r.t. the actor's parameters only (the critics' stay untouched).
    auto s = actor->sample(b.obs, gen);
    auto q_pi = std::get<0>(q_->forward(critic_input(b.obs, s.action)).min(0));
    auto actor_loss = (alpha * s.log_prob - q_pi).mean();
    auto grads = torch::autograd::grad({actor_loss}, actor_params_);
    for (size_t i = 0; i < grads.size(); ++i) actor_params_[i].mutable_grad() = grads[i];
    actor_opt_->step();
    auto log_prob = s.log_prob.detach();
    st.actor_loss = actor_loss.item<double>();
    st.entropy = -log_prob.mean().item<double>();
    if (cfg_.autotune_alpha) {
      // α grows while the policy's entropy −log π is below H̄, shrinks above it.
      auto alpha_loss = -(log_alpha_ * (log_prob + cfg_.target_entropy())).mean();
      alpha_opt_->zero_grad();
      alpha_loss.backward();
      alpha_opt_->step();
      st.alpha_loss = alpha_loss.item<double>();
    }
    st.actor_updated = true;
  }
  if (updates_ % cfg_.target_frequency == 0) polyak_update();
  st.alpha = this->alpha();
  last_ = st;
  return st;
}

}  // namespace rldt
