#include "rldt/train/rldt_trainer.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>

#include "rldt/algo/td_targets.hpp"
#include "rldt/envs/vec_env.hpp"
#include "rldt/train/config_io.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void guard_finite(double v, const char* what, int64_t itr) {
  if (!std::isfinite(v))
    throw NonFiniteError(std::string("non-finite ") + what + " (" + std::to_string(v) + ") at iteration " +
                         std::to_string(itr) + "; stopping");
}
}  // namespace

void ExplorationConfig::validate() const {
  check_choice(sample_mode, "exploration.sample_mode", {"full", "extrapolate", "qsample"});
  check_choice(noise_mode, "exploration.noise_mode", {"none", "add", "min_extrp"});
  check_arg(langevin_steps >= 1, "exploration.langevin_steps must be >= 1, got ", langevin_steps);
  check_arg(action_sample_noise >= 0.0, "exploration.action_sample_noise must be >= 0, got ", action_sample_noise);
  check_arg(min_extrp_step >= 0, "exploration.min_extrp_step must be >= 0, got ", min_extrp_step);
}

void RldtTrainerConfig::validate() const {
  check_arg(!env.empty(), "env must name a task");
  check_arg(n_envs >= 1, "n_envs must be >= 1, got ", n_envs);
  check_arg(env_threads >= 0, "env_threads must be >= 0 (0 = all cores), got ", env_threads);
  check_arg(rollout_groups >= 0 && rollout_groups <= n_envs, "rollout_groups must be in [0, n_envs = ", n_envs,
            "] (0: automatic), got ", rollout_groups);
  check_arg(rollout_groups <= 1 || exploration.sample_mode != "qsample",
            "rollout_groups > 1 does not support exploration.sample_mode 'qsample' (its Langevin steps query the "
            "critic); use rollout_groups: 1 or 0");
  check_choice(rollout_inference, "rollout_inference", {"torch", "packed"});
  check_arg(act_steps >= 1, "act_steps must be >= 1, got ", act_steps);
  check_arg(act_steps <= policy.horizon_steps, "act_steps (", act_steps, ") must be <= policy.horizon_steps (",
            policy.horizon_steps, ")");
  check_arg(n_steps >= 1, "n_steps must be >= 1, got ", n_steps);
  check_arg(n_train_itr >= 0, "n_train_itr must be >= 0, got ", n_train_itr);
  check_arg(n_critic_warmup_itr >= 0, "n_critic_warmup_itr must be >= 0, got ", n_critic_warmup_itr);
  check_arg(val_freq >= 1, "val_freq must be >= 1, got ", val_freq);
  check_arg(actor_traj_stride >= 0, "actor_traj_stride must be >= 0 (0: actor.n_particles), got ", actor_traj_stride);
  check_arg(reference_refresh_freq >= 0,
            "reference_refresh_freq must be >= 0 (1: every iteration, 0: never, anchor to the base policy), got ",
            reference_refresh_freq);
  check_arg(eval_episodes >= 0, "eval_episodes must be >= 0 (0: no separate evaluation), got ", eval_episodes);
  check_arg(gamma >= 0.0 && gamma <= 1.0, "gamma must be in [0, 1], got ", gamma);
  check_arg(td_lambda >= 0.0 && td_lambda <= 1.0, "td_lambda must be in [0, 1], got ", td_lambda);
  check_arg(q_repeat >= 1, "q_repeat must be >= 1, got ", q_repeat);
  check_arg(q_update_steps >= q_repeat && q_update_steps % q_repeat == 0, "q_update_steps (", q_update_steps,
            ") must be a positive multiple of q_repeat (", q_repeat, ")");
  check_arg(policy_update_steps >= 0 && policy_update_steps % q_repeat == 0, "policy_update_steps (",
            policy_update_steps, ") must be a multiple of q_repeat (", q_repeat, ")");
  check_arg(q_bootstrap >= 1, "q_bootstrap must be >= 1, got ", q_bootstrap);
  check_arg(q_minibatch >= 0, "q_minibatch must be >= 0 (0 = full trajectories), got ", q_minibatch);
  check_arg(new_fraction >= 0.0 && new_fraction <= 1.0, "new_fraction must be in [0, 1], got ", new_fraction);
  check_arg(buffer_num_episode >= 1, "buffer_num_episode must be >= 1, got ", buffer_num_episode);
  check_arg(n_envs >= critic.ensemble_size, "n_envs (", n_envs, ") must be >= critic.ensemble_size (",
            critic.ensemble_size, ") for the per-member trajectory split");
  check_arg(critic_train_itr >= 0, "critic_train_itr must be >= 0 (0: the critic always trains), got ",
            critic_train_itr);
  check_arg(std::isfinite(critic_lr_decay) && critic_lr_decay > 0.0 && critic_lr_decay <= 1.0,
            "critic_lr_decay must be in (0, 1] (1: a constant critic lr), got ", critic_lr_decay);
  check_choice(q_bootstrap_mode, "q_bootstrap_mode", {"sample", "deterministic"});
  check_choice(actor_q_reduce, "actor_q_reduce", {"mean", "member", "min"});
  check_arg(actor_max_states >= 0, "actor_max_states must be >= 0, got ", actor_max_states);
  exploration.validate();
  check_arg(exploration.min_extrp_step < policy.denoising_steps,
            "exploration.min_extrp_step must be in [0, policy.denoising_steps = ", policy.denoising_steps, "), got ",
            exploration.min_extrp_step);
  actor.validate();
}

void ExternalEnvSpec::validate() const {
  check_arg(obs_dim >= 1, name, ": obs_dim must be >= 1, got ", obs_dim);
  check_arg(!action_low.empty(), name, ": action_low must not be empty (one bound per action entry)");
  check_arg(action_high.size() == action_low.size(), name, ": action_high has ", action_high.size(),
            " entries but action_low has ", action_low.size());
  for (size_t j = 0; j < action_low.size(); ++j) {
    check_arg(std::isfinite(action_low[j]) && std::isfinite(action_high[j]), name, ": action bounds [", j,
              "] must be finite (policy actions in [-1, 1] are mapped onto them), got [", action_low[j], ", ",
              action_high[j], "]");
    check_arg(action_low[j] < action_high[j], name, ": action_low[", j, "] (", action_low[j],
              ") must be < action_high[", j, "] (", action_high[j], ")");
  }
}

RldtTrainer::RldtTrainer(RldtTrainerConfig cfg, std::shared_ptr<FlowPolicy> policy)
    : cfg_(std::move(cfg)),
      scaler_(cfg_.reward_scale, cfg_.reward_scale_alpha),
      buffer_(cfg_.buffer_num_episode * cfg_.n_envs),
      gen_(make_generator(cfg_.seed)) {
  cfg_.validate();
  env_ = std::make_unique<VecEnv>(cfg_.env, static_cast<int>(cfg_.n_envs), static_cast<int>(cfg_.env_threads),
                                  cfg_.env_options);
  env_name_ = cfg_.env;
  const auto& spec = env_->spec().action;
  for (int64_t j = 0; j < env_->act_dim(); ++j) {
    act_low_.push_back(spec.low[j]);
    act_scale_.push_back(0.5 * (spec.high[j] - spec.low[j]));
  }
  init(std::move(policy), env_->obs_dim(), env_->act_dim());
  rollout_groups_ = cfg_.rollout_groups;
  if (rollout_groups_ == 0) {  // automatic (see the config)
    const bool grouped = cfg_.rollout_inference == "packed" && cfg_.exploration.sample_mode != "qsample";
    rollout_groups_ = grouped ? std::min<int64_t>(cfg_.n_envs, env_->thread_pool().num_threads()) : 1;
  }
  const int64_t N = cfg_.n_envs, O = obs_dim_;
  env_actions_.assign(static_cast<size_t>(N * cfg_.policy.horizon_steps * action_dim()), 0.0);
  const auto& first = env_->reset(cfg_.seed);
  obs_ = torch::tensor(std::vector<float>(first.obs.begin(), first.obs.end())).view({N, O});
}

RldtTrainer::RldtTrainer(RldtTrainerConfig cfg, ExternalEnvSpec env, std::shared_ptr<FlowPolicy> policy)
    : cfg_(std::move(cfg)),
      scaler_(cfg_.reward_scale, cfg_.reward_scale_alpha),
      buffer_(cfg_.buffer_num_episode * cfg_.n_envs),
      gen_(make_generator(cfg_.seed)) {
  cfg_.validate();
  env.validate();
  env_name_ = env.name;
  cfg_.env = env.name;
  for (size_t j = 0; j < env.action_low.size(); ++j) {
    act_low_.push_back(env.action_low[j]);
    act_scale_.push_back(0.5 * (env.action_high[j] - env.action_low[j]));
  }
  init(std::move(policy), env.obs_dim, env.action_dim());
}

void RldtTrainer::init(std::shared_ptr<FlowPolicy> policy, int64_t O, int64_t d) {
  obs_dim_ = O;
  if (policy) {
    const auto& pc = policy->config();
    check_arg(pc.obs_dim == O && pc.action_dim == d, "the pretrained policy has obs_dim ", pc.obs_dim,
              " and action_dim ", pc.action_dim, "; env '", env_name_, "' has ", O, " and ", d);
    check_arg(cfg_.act_steps <= pc.horizon_steps, "act_steps (", cfg_.act_steps,
              ") must be <= the policy's horizon_steps (", pc.horizon_steps, ")");
    check_arg(cfg_.exploration.min_extrp_step < pc.denoising_steps, "exploration.min_extrp_step (",
              cfg_.exploration.min_extrp_step, ") must be < the policy's denoising_steps (", pc.denoising_steps, ")");
    policy_ = std::move(policy);
    cfg_.policy = pc;
    policy_->refresh_reference();  // L_ref starts at the policy as given (its base, when never refreshed)
  } else {
    cfg_.policy.obs_dim = O;
    cfg_.policy.action_dim = d;
    policy_ = std::make_shared<FlowPolicy>(cfg_.policy, cfg_.seed);
  }
  cfg_.critic.obs_dim = O;
  cfg_.critic.action_dim = d;
  cfg_.critic.act_steps = cfg_.act_steps;
  // A pretrained policy carries its dataset's min/max (ALGORITHM.md §7): actor and critic see
  // normalised observations (policy_obs), and policy actions in [−1, 1] map onto the dataset's
  // action range instead of the env's box (the env still clips to its box).
  if (const auto& bounds = policy_->normalizer().action) {
    for (int64_t j = 0; j < d; ++j) {
      act_low_[j] = bounds->low()[j];
      act_scale_[j] = 0.5 * (bounds->high()[j] - bounds->low()[j]);
    }
  }
  critic_ = std::make_unique<CriticEnsemble>(cfg_.critic, cfg_.seed + 1);
  updater_ = std::make_unique<ActorUpdater>(policy_, cfg_.actor);
  running_return_.assign(static_cast<size_t>(cfg_.n_envs), 0.0);
  running_length_.assign(static_cast<size_t>(cfg_.n_envs), 0);
}

RldtTrainer::~RldtTrainer() = default;

torch::Tensor RldtTrainer::policy_obs(const torch::Tensor& obs) const {
  // Identity unless the policy carries observation bounds (a pretrained policy: the dataset's min/max).
  return policy_->normalizer().normalize_obs(obs.to(torch::kFloat)).contiguous();
}

void RldtTrainer::to_env_actions(const torch::Tensor& chunk, double* out) const {
  // Policy actions live in [−1, 1]; env actions in [low, high].
  const auto c = chunk.to(torch::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  const int64_t d = action_dim(), rows = c.numel() / d;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < d; ++j)
      out[i * d + j] = act_low_[j] + (static_cast<double>(p[i * d + j]) + 1.0) * act_scale_[j];
}

torch::Tensor min_extrp_radius(const torch::Tensor& actions, const torch::Tensor& expected, double clip) {
  check_arg(actions.dim() >= 2 && actions.sizes() == expected.sizes(), "min_extrp_radius: actions ", actions.sizes(),
            " and expected ", expected.sizes(), " must have the same (N, ...) shape");
  check_arg(clip >= 0.0, "min_extrp_radius: clip must be >= 0 (0 = off), got ", clip);
  // With a final clamp, a = clamp(x_K) while ŷ_k is unclamped: the overshoot of x_K beyond the
  // box would be counted as uncertainty (fine-tuned Hopper policies: r 0.4-0.7 unclamped against
  // 0.06-0.07 clamped; docs/benchmarks.md). Compare in the space the actions live in.
  const auto y = clip > 0.0 ? expected.clamp(-clip, clip) : expected;
  return (actions - y).flatten(1).norm(2, 1);
}

RldtTrainer::ChunkNoise RldtTrainer::ChunkNoise::rows(int64_t begin, int64_t n) const {
  const auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, begin, n) : t; };
  return ChunkNoise{cut(x0), cut(k), cut(eps)};
}

namespace {
// The exploration's draws after x_0 (step k, then noise ε (N, H, d)), in the order act() makes
// them; undefined where the mode uses none. Shared by act() and the grouped rollout.
std::pair<torch::Tensor, torch::Tensor> draw_exploration(const ExplorationConfig& ex, int64_t N, int64_t H, int64_t d,
                                                         int64_t K, at::Generator& gen) {
  torch::Tensor k, eps;
  const bool extrapolate = ex.sample_mode == "extrapolate";
  if (extrapolate || ex.noise_mode == "min_extrp") k = torch::randint(ex.min_extrp_step, K, {N}, gen, torch::kLong);
  if (extrapolate || ex.noise_mode != "none") eps = torch::randn({N, H, d}, gen);
  return {k, eps};
}
}  // namespace

RldtTrainer::ChunkNoise RldtTrainer::draw_chunk_noise(int64_t N) {
  const int64_t H = cfg_.policy.horizon_steps, d = cfg_.policy.action_dim, K = cfg_.policy.denoising_steps;
  ChunkNoise z;
  if (eval_iteration()) return z;  // deterministic sampling draws nothing
  z.x0 = torch::randn({N, H, d}, gen_);
  std::tie(z.k, z.eps) = draw_exploration(cfg_.exploration, N, H, d, K, gen_);
  return z;
}

torch::Tensor RldtTrainer::explore(const FlowSample& s, const torch::Tensor& obs) {
  const auto& ex = cfg_.exploration;
  if (ex.sample_mode == "qsample") {
    // Langevin steps on the critic from the sampled action: a ← a + σ·∇Q + (σ/2)·ε (only the
    // executed steps of the chunk have a gradient; actions stay in the policy's [−1, 1] box).
    const double sigma = ex.action_sample_noise;
    auto a = s.actions;
    for (int64_t i = 0; i < ex.langevin_steps; ++i) {
      auto g = critic_->action_grad(obs, a);
      a = (a + sigma * g + 0.5 * sigma * torch::randn(a.sizes(), gen_)).clamp(-1.0, 1.0);
    }
    return a;
  }
  ChunkNoise z;
  std::tie(z.k, z.eps) = draw_exploration(ex, obs.size(0), cfg_.policy.horizon_steps, cfg_.policy.action_dim,
                                          cfg_.policy.denoising_steps, gen_);
  return explore_with(s, obs, z);
}

torch::Tensor RldtTrainer::explore_with(const FlowSample& s, const torch::Tensor& obs, const ChunkNoise& z,
                                        InferencePolicy* fast) {
  const auto& ex = cfg_.exploration;
  const int64_t N = obs.size(0), K = cfg_.policy.denoising_steps;
  const double sigma = ex.action_sample_noise;
  torch::NoGradGuard ng;
  auto target = [&](const torch::Tensor& x_k) {
    if (!fast) return policy_->expected_target(x_k, z.k, obs);
    auto y = torch::empty_like(x_k);
    const auto o = obs.contiguous(), x = x_k.contiguous(), k = z.k.contiguous();
    fast->expected_target(o.data_ptr<float>(), N, x.data_ptr<float>(), k.data_ptr<int64_t>(), y.data_ptr<float>());
    return y;
  };
  if (ex.sample_mode == "extrapolate") {
    // Stop the chain at a random late step k and jump to its expected target; noise shrinks as
    // k approaches K: ŷ_k + sqrt(1 − k/K)·σ·ε.
    auto x_k = s.chain.index({torch::arange(N, torch::kLong), z.k});
    auto y = target(x_k);
    auto scale = (1.0 - z.k.to(torch::kFloat) / static_cast<double>(K)).sqrt().view({N, 1, 1});
    return y + sigma * scale * z.eps;
  }
  if (ex.noise_mode == "none") return s.actions;
  if (ex.noise_mode == "add") return s.actions + sigma * z.eps;
  // min_extrp: r = ||a − ŷ_k|| over the whole chunk at a random late step k; a + r·ε.
  auto x_k = s.chain.index({torch::arange(N, torch::kLong), z.k});
  auto y = target(x_k);
  auto r = min_extrp_radius(s.actions, y, policy_->config().final_action_clip).view({N, 1, 1});
  return s.actions + r * z.eps;
}

namespace {
// (N, …) float view of a caller's tensor, checked: shape and finiteness.
torch::Tensor checked_input(const torch::Tensor& x, std::vector<int64_t> shape, const char* what,
                            const std::string& where, torch::ScalarType dtype = torch::kFloat) {
  check_arg(x.defined(), where, ": ", what, " is missing");
  check_arg(x.sizes() == c10::IntArrayRef(shape), where, ": ", what, " has shape ", x.sizes(), "; expected ",
            c10::IntArrayRef(shape));
  auto f = x.to(dtype).contiguous();
  if (!torch::isfinite(f).all().item<bool>()) {
    const int64_t bad = torch::nonzero(~torch::isfinite(f.flatten()))[0].item<int64_t>();
    check_arg(false, where, ": ", what, " has a non-finite entry (flat index ", bad, ")");
  }
  return f;
}
}  // namespace

void RldtTrainer::snapshot_actor(std::unique_ptr<InferencePolicy>& fast) {
  if (fast) {
    fast->refresh(*policy_);  // into its storage
    return;
  }
  fast = std::make_unique<InferencePolicy>(*policy_);
  fast->set_gemm("packed");
}

FlowSample RldtTrainer::fast_sample(InferencePolicy& fast, const torch::Tensor& obs, const torch::Tensor& x0) {
  const int64_t n = obs.size(0), H = cfg_.policy.horizon_steps, d = cfg_.policy.action_dim,
                K = cfg_.policy.denoising_steps;
  const auto& ex = cfg_.exploration;
  const bool chain = x0.defined() && (ex.sample_mode == "extrapolate" || ex.noise_mode == "min_extrp");
  FlowSample s;
  s.actions = torch::empty({n, H, d});
  if (chain) s.chain = torch::empty({n, K + 1, H, d});
  const auto o = obs.to(torch::kFloat).contiguous();
  const auto x = x0.defined() ? x0.contiguous() : x0;
  fast.sample(o.data_ptr<float>(), n, x.defined() ? x.data_ptr<float>() : nullptr, s.actions.data_ptr<float>(),
              chain ? s.chain.data_ptr<float>() : nullptr);
  return s;
}

void RldtTrainer::begin_rollout() {
  const int64_t N = cfg_.n_envs, T = cfg_.n_steps, O = obs_dim_, d = action_dim(), E = cfg_.act_steps;
  collect_ = TrajectoryBatch{torch::empty({N, T, O}), torch::empty({N, T, E, d}), torch::empty({N, T}),
                             torch::empty({N, T}),    torch::empty({N, T}),       torch::empty({N, T, O})};
  rollout_start_ = std::chrono::steady_clock::now();
  ret_sum_ = len_sum_ = reward_sum_ = 0;
  episodes_ = steps_sum_ = 0;
  if (cfg_.rollout_inference == "packed") {  // the actor as it is now, once per group
    fast_.resize(static_cast<size_t>(rollout_groups_));
    for (auto& f : fast_) snapshot_actor(f);
    // Ungrouped, the one snapshot spreads each batch over the env threads themselves, between
    // their env steps (bit-identical to one thread); driven through act/observe, over env_threads
    // threads of its own. Grouped, each group's runs on its group's thread.
    if (rollout_groups_ == 1) {
      if (env_) {
        fast_[0]->set_thread_pool(&env_->thread_pool());
      } else {
        fast_[0]->set_threads(cfg_.env_threads > 0
                                  ? static_cast<int>(cfg_.env_threads)
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
      }
    }
  }
}

torch::Tensor RldtTrainer::act_policy_space(const torch::Tensor& obs_env) {
  const int64_t N = cfg_.n_envs, T = cfg_.n_steps, O = obs_dim_, E = cfg_.act_steps;
  if (acted_) throw std::logic_error("RldtTrainer::act: the previous chunks were not observed (call observe first)");
  if (t_ >= T)
    throw std::logic_error("RldtTrainer::act: n_steps (" + std::to_string(T) +
                           ") chunks were collected in this iteration; call update() first");
  const auto obs = policy_obs(checked_input(obs_env, {N, O}, "obs", "act"));
  if (t_ == 0) begin_rollout();
  torch::NoGradGuard ng;
  collect_.obs.select(1, t_).copy_(obs);
  torch::Tensor chunk;
  if (fast_.empty()) {
    chunk =
        eval_iteration() ? policy_->act(obs, gen_, /*deterministic=*/true) : explore(policy_->sample(obs, gen_), obs);
  } else if (eval_iteration()) {
    chunk = fast_sample(*fast_[0], obs, torch::Tensor()).actions;
  } else if (cfg_.exploration.sample_mode == "qsample") {
    // x_0 as FlowPolicy::sample draws it, then the Langevin steps (which draw their own noise).
    auto x0 = torch::randn({N, cfg_.policy.horizon_steps, cfg_.policy.action_dim}, gen_);
    chunk = explore(fast_sample(*fast_[0], obs, x0), obs);
  } else {
    const ChunkNoise z = draw_chunk_noise(N);  // x_0, then the exploration's draws, as above
    chunk = explore_with(fast_sample(*fast_[0], obs, z.x0), obs, z, fast_[0].get());
  }
  if (!torch::isfinite(chunk).all().item<bool>())
    guard_finite(std::numeric_limits<double>::quiet_NaN(), "policy action", itr_);
  chunk = chunk.clamp(-1.0, 1.0).contiguous();  // the env clips to its bounds; so does the record
  collect_.chunks.select(1, t_).copy_(chunk.narrow(1, 0, E));
  acted_ = true;
  return chunk;
}

torch::Tensor RldtTrainer::act(const torch::Tensor& obs) {
  auto chunk = act_policy_space(obs);
  auto out = torch::empty(chunk.sizes(), torch::kDouble);
  to_env_actions(chunk, out.data_ptr<double>());
  return out;
}

void RldtTrainer::observe(const torch::Tensor& rewards, const torch::Tensor& terminated, const torch::Tensor& truncated,
                          const torch::Tensor& next_obs, const torch::Tensor& steps) {
  const int64_t N = cfg_.n_envs, O = obs_dim_, E = cfg_.act_steps;
  if (!acted_) throw std::logic_error("RldtTrainer::observe: no chunks to observe (call act first)");
  const auto r = checked_input(rewards, {N}, "rewards", "observe", torch::kDouble);
  const auto term = checked_input(terminated, {N}, "terminated", "observe");
  const auto trunc = checked_input(truncated, {N}, "truncated", "observe");
  const auto next = policy_obs(checked_input(next_obs, {N, O}, "next_obs", "observe"));
  torch::Tensor st;
  if (steps.defined()) {
    check_arg(steps.sizes() == c10::IntArrayRef({N}), "observe: steps has shape ", steps.sizes(), "; expected [", N,
              "]");
    st = steps.to(torch::kLong).contiguous();
    check_arg(st.min().item<int64_t>() >= 1 && st.max().item<int64_t>() <= E,
              "observe: steps must be in [1, act_steps = ", E, "]");
  }
  collect_.rewards.select(1, t_).copy_(r);
  collect_.terminated.select(1, t_).copy_(term.gt(0.5).to(torch::kFloat));
  collect_.truncated.select(1, t_).copy_(trunc.gt(0.5).to(torch::kFloat));
  collect_.next_obs.select(1, t_).copy_(next);
  const double* rp = r.data_ptr<double>();
  const float* tp = term.data_ptr<float>();
  const float* up = trunc.data_ptr<float>();
  const int64_t* sp = st.defined() ? st.data_ptr<int64_t>() : nullptr;
  for (int64_t i = 0; i < N; ++i) {
    tally(i, rp[i], sp ? sp[i] : E, tp[i] > 0.5f || up[i] > 0.5f);
  }
  acted_ = false;
  ++t_;
}

void RldtTrainer::tally(int64_t i, double reward, int64_t steps, bool ended) {
  running_return_[i] += reward;
  running_length_[i] += steps;
  reward_sum_ += reward;
  steps_sum_ += steps;
  if (ended) {
    ret_sum_ += running_return_[i];
    len_sum_ += static_cast<double>(running_length_[i]);
    ++episodes_;
    running_return_[i] = 0;
    running_length_[i] = 0;
  }
}

torch::Tensor RldtTrainer::policy_action(const torch::Tensor& obs, at::Generator& gen, bool deterministic) {
  check_arg(obs.dim() == 2 && obs.size(1) == obs_dim_, "policy_action: obs has shape ", obs.sizes(), "; expected [B, ",
            obs_dim_, "]");
  torch::NoGradGuard ng;
  auto chunk = policy_->act(policy_obs(obs), gen, deterministic).clamp(-1.0, 1.0).contiguous();
  auto out = torch::empty(chunk.sizes(), torch::kDouble);
  to_env_actions(chunk, out.data_ptr<double>());
  return out;
}

void RldtTrainer::critic_round(const TrajectoryBatch& batch, double scale, IterationMetrics& m) {
  const bool det = cfg_.q_bootstrap_mode == "deterministic";
  const int64_t n = batch.size(), T = batch.steps(), O = batch.obs.size(2), S = det ? 1 : cfg_.q_bootstrap;
  const int64_t H = cfg_.policy.horizon_steps, d = cfg_.policy.action_dim;
  // Policy samples for the bootstrap, drawn once per round (§2).
  torch::Tensor boot;  // (n·T, S, H, d)
  {
    auto next = batch.next_obs.reshape({n * T, O}).repeat_interleave(S, 0);
    boot = updater_->act(next, gen_, det).view({n * T, S, H, d});  // actor.update_groups threads
  }
  auto rewards = batch.rewards * scale;
  const int64_t steps = cfg_.q_update_steps / cfg_.q_repeat;
  const bool minibatch = cfg_.q_minibatch > 0 && cfg_.q_minibatch < n * T;
  for (int64_t s = 0; s < steps; ++s) {
    // Time steps this critic step trains on: all, or the same random ones in every trajectory
    // (which keeps the per-member trajectory split).
    torch::Tensor tidx;
    if (minibatch) {
      const int64_t per = std::max<int64_t>(1, cfg_.q_minibatch / n);
      tidx = torch::randperm(T, gen_, torch::kLong).narrow(0, 0, std::min(per, T));
    }
    // With λ = 0 each target needs only its own bootstrap value: evaluate the target nets on the
    // selected steps alone. λ > 0 chains through the whole segment.
    const bool subset = minibatch && cfg_.td_lambda == 0.0;
    const auto cols = [&](const torch::Tensor& x) { return subset ? x.index_select(1, tidx) : x; };
    const int64_t Tv = subset ? tidx.size(0) : T;
    auto V = critic_
                 ->bootstrap_value(cols(batch.next_obs).reshape({n * Tv, O}),
                                   cols(boot.view({n, T, S, H, d})).reshape({n * Tv, S, H, d}))
                 .view({n, Tv});
    guard_finite(V.sum().item<double>(), "bootstrap Q value", itr_);
    auto targets = td_lambda_targets(cols(rewards), V, cols(batch.terminated), cols(batch.truncated), cfg_.gamma,
                                     cfg_.td_lambda, cfg_.bootstrap_truncated);
    if (minibatch) {
      m.critic_loss = critic_->update(batch.obs.index_select(1, tidx), batch.chunks.index_select(1, tidx),
                                      subset ? targets : targets.index_select(1, tidx));
    } else {
      m.critic_loss = critic_->update(batch.obs, batch.chunks, targets);
    }
    guard_finite(m.critic_loss, "critic loss", itr_);
  }
}

void RldtTrainer::actor_round(const TrajectoryBatch& batch, int64_t member, IterationMetrics& m) {
  const int64_t P = cfg_.actor.n_particles, O = batch.obs.size(2);
  ActionGradFn grad_fn;
  if (cfg_.actor_q_reduce == "min")
    grad_fn = [this](const torch::Tensor& o, const torch::Tensor& a) { return critic_->action_grad_min(o, a); };
  else
    grad_fn = [this, member](const torch::Tensor& o, const torch::Tensor& a) {
      return critic_->action_grad(o, a, member);
    };
  const int64_t steps = cfg_.policy_update_steps / cfg_.q_repeat;
  for (int64_t s = 0; s < steps; ++s, ++actor_steps_) {
    // States of every S-th trajectory, offset by the step index (§6: S = P).
    const int64_t S = cfg_.actor_traj_stride > 0 ? cfg_.actor_traj_stride : P;
    const int64_t start = actor_steps_ % S;
    auto traj = torch::arange(start % batch.size(), batch.size(), S, torch::kLong);
    auto states = batch.obs.index_select(0, traj).reshape({-1, O});
    if (cfg_.actor_max_states > 0 && states.size(0) > cfg_.actor_max_states)
      states = states.index_select(
          0, torch::randperm(states.size(0), gen_, torch::kLong).narrow(0, 0, cfg_.actor_max_states));
    auto st = updater_->update(states, grad_fn, gen_);
    guard_finite(st.loss, "actor loss", itr_);
    m.actor_loss = st.loss;
    m.align = st.align;
    m.cons = st.cons;
    m.ref = st.ref;
    m.grad_norm = st.svgd.grad_norm;
    m.particle_distance = st.svgd.particle_distance;
  }
}

IterationMetrics RldtTrainer::train_iteration() {
  if (!env_)
    throw std::logic_error("RldtTrainer::train_iteration needs native environments; this trainer drives '" + env_name_ +
                           "' through act/observe/update");
  if (t_ != 0)
    throw std::logic_error("RldtTrainer::train_iteration: an ask/tell rollout is half collected (" +
                           std::to_string(t_) + " of " + std::to_string(cfg_.n_steps) + " steps)");
  // 1. Roll out n_steps chunk steps in every env (deterministic on evaluation iterations).
  const int64_t N = cfg_.n_envs, O = obs_dim_, H = cfg_.policy.horizon_steps, E = cfg_.act_steps;
  auto rewards = torch::empty({N}, torch::kDouble), term = torch::empty({N}, torch::kFloat),
       trunc = torch::empty({N}, torch::kFloat), next = torch::empty({N, O}, torch::kDouble),
       steps = torch::empty({N}, torch::kLong);
  for (int64_t t = 0; rollout_groups_ == 1 && t < cfg_.n_steps; ++t) {
    auto chunk = act_policy_space(obs_);
    to_env_actions(chunk, env_actions_.data());
    const VecStep& out = env_->step_chunk(env_actions_, static_cast<int>(H), static_cast<int>(E));
    // Copy the results with raw pointers (no per-element tensor ops).
    double* rp = rewards.data_ptr<double>();
    float* tp = term.data_ptr<float>();
    float* up = trunc.data_ptr<float>();
    double* np = next.data_ptr<double>();
    int64_t* sp = steps.data_ptr<int64_t>();
    float* obs_p = obs_.data_ptr<float>();
    for (int64_t i = 0; i < N; ++i) {
      rp[i] = out.reward[i];
      tp[i] = out.terminated[i];
      up[i] = out.truncated[i];
      sp[i] = out.steps_executed[i];
      const bool done = out.terminated[i] || out.truncated[i];
      const auto& src = done ? out.final_obs : out.obs;  // the true next state
      for (int64_t j = 0; j < O; ++j) {
        obs_p[i * O + j] = static_cast<float>(out.obs[i * O + j]);
        np[i * O + j] = src[i * O + j];
      }
    }
    observe(rewards, term, trunc, next, steps);
  }
  if (rollout_groups_ > 1) grouped_rollout();
  auto m = update();
  if (m.eval && cfg_.eval_episodes > 0) {
    const auto te = std::chrono::steady_clock::now();
    const auto r = evaluate(cfg_.eval_episodes);
    m.eval_return = r.mean_return;
    m.eval_return_std = r.std_return;
    m.eval_length = r.mean_length;
    m.eval_q = r.mean_q0;
    m.eval_discounted_return = r.mean_discounted_return;
    m.seconds_eval = seconds_since(te);
  }
  return m;
}

void RldtTrainer::grouped_rollout() {
  const int64_t N = cfg_.n_envs, T = cfg_.n_steps, O = obs_dim_, H = cfg_.policy.horizon_steps, d = action_dim(),
                E = cfg_.act_steps, G = rollout_groups_;
  begin_rollout();
  const bool det = eval_iteration();
  // Every draw of the rollout up front, chunk step by chunk step in act()'s order, so the groups
  // need no shared generator and the draws equal those of the ungrouped rollout.
  std::vector<ChunkNoise> noise;
  noise.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) noise.push_back(draw_chunk_noise(N));
  // Per (chunk step, env) results; the episode statistics are summed afterwards in observe()'s order.
  std::vector<double> reward(static_cast<size_t>(T * N));
  std::vector<int64_t> executed(static_cast<size_t>(T * N));
  std::vector<uint8_t> done(static_cast<size_t>(T * N));
  std::atomic<bool> failed{false};
  float* rew_p = collect_.rewards.data_ptr<float>();  // (N, T)
  float* term_p = collect_.terminated.data_ptr<float>();
  float* trunc_p = collect_.truncated.data_ptr<float>();
  float* obs_p = obs_.data_ptr<float>();  // (N, O)
  ScopedBlasThreads one_blas_thread_each(1);
  env_->parallel_groups(static_cast<int>(G), [&](int g) {
    const int64_t lo = g * N / G, hi = (g + 1) * N / G, n = hi - lo;
    try {
      torch::NoGradGuard ng;
      const auto obs_rows = obs_.narrow(0, lo, n);
      auto next = torch::empty({n, O}, torch::kDouble);
      double* next_p = next.data_ptr<double>();
      for (int64_t t = 0; t < T && !failed.load(std::memory_order_relaxed); ++t) {
        const auto pobs = policy_obs(obs_rows);
        const ChunkNoise z = noise[t].rows(lo, n);
        collect_.obs.select(1, t).narrow(0, lo, n).copy_(pobs);
        torch::Tensor chunk;
        if (!fast_.empty()) {
          InferencePolicy* fast = fast_[static_cast<size_t>(g)].get();
          chunk = det ? fast_sample(*fast, pobs, torch::Tensor()).actions
                      : explore_with(fast_sample(*fast, pobs, z.x0), pobs, z, fast);
        } else {
          chunk = det ? policy_->act(pobs, gen_, /*deterministic=*/true)  // draws nothing
                      : explore_with(policy_->sample_from(z.x0, pobs), pobs, z);
        }
        if (!torch::isfinite(chunk).all().item<bool>())
          guard_finite(std::numeric_limits<double>::quiet_NaN(), "policy action", itr_);
        chunk = chunk.clamp(-1.0, 1.0).contiguous();
        collect_.chunks.select(1, t).narrow(0, lo, n).copy_(chunk.narrow(1, 0, E));
        to_env_actions(chunk, env_actions_.data() + lo * H * d);
        env_->step_chunk_rows(env_actions_, static_cast<int>(H), static_cast<int>(E), static_cast<int>(lo),
                              static_cast<int>(hi));
        const VecStep& out = env_->result();
        for (int64_t i = lo; i < hi; ++i) {
          const size_t ti = static_cast<size_t>(t * N + i);
          const bool ended = out.terminated[i] || out.truncated[i];
          const auto& src = ended ? out.final_obs : out.obs;  // the true next state
          check_arg(std::isfinite(out.reward[i]), "train_iteration: env ", i, " returned a non-finite reward (",
                    out.reward[i], ") at chunk step ", t);
          for (int64_t j = 0; j < O; ++j) {
            check_arg(std::isfinite(src[i * O + j]) && std::isfinite(out.obs[i * O + j]), "train_iteration: env ", i,
                      " returned a non-finite observation entry ", j, " at chunk step ", t);
            obs_p[i * O + j] = static_cast<float>(out.obs[i * O + j]);
            next_p[(i - lo) * O + j] = src[i * O + j];
          }
          reward[ti] = out.reward[i];
          executed[ti] = out.steps_executed[i];
          done[ti] = ended;
          rew_p[i * T + t] = static_cast<float>(out.reward[i]);
          term_p[i * T + t] = out.terminated[i] ? 1.0f : 0.0f;
          trunc_p[i * T + t] = out.truncated[i] ? 1.0f : 0.0f;
        }
        collect_.next_obs.select(1, t).narrow(0, lo, n).copy_(policy_obs(next));
      }
    } catch (...) {
      failed.store(true);
      throw;
    }
  });
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < N; ++i) {
      const size_t ti = static_cast<size_t>(t * N + i);
      tally(i, reward[ti], executed[ti], done[ti]);
    }
  t_ = T;
  acted_ = false;
}

PolicyEvalResult RldtTrainer::evaluate(int64_t episodes) {
  if (!env_)
    throw std::logic_error("RldtTrainer::evaluate needs native environments; this trainer drives '" + env_name_ +
                           "' through act/observe/update");
  check_arg(episodes >= 1, "argument 'episodes' must be >= 1, got ", episodes);
  if (!eval_env_ || eval_env_->num_envs() != episodes)
    eval_env_ = std::make_unique<VecEnv>(cfg_.env, static_cast<int>(episodes), static_cast<int>(cfg_.env_threads),
                                         cfg_.env_options);
  const int64_t N = episodes, O = obs_dim_, H = cfg_.policy.horizon_steps, E = cfg_.act_steps;
  auto gen = make_generator(cfg_.seed + kEvalSeedOffset);  // deterministic sampling draws nothing; kept apart anyway
  const VecStep* s = &eval_env_->reset(cfg_.seed + kEvalSeedOffset);
  std::vector<double> actions(static_cast<size_t>(N * H * action_dim()));
  std::vector<uint8_t> done(static_cast<size_t>(N), 0);
  std::vector<double> returns(static_cast<size_t>(N), 0.0);
  std::vector<double> lengths(static_cast<size_t>(N), 0.0);
  // Critic check: Q of the first chunk against the discounted return that followed (raw units).
  std::vector<double> discounted(static_cast<size_t>(N), 0.0), discount(static_cast<size_t>(N), 1.0);
  double q0_sum = 0.0;
  bool first_chunk = true;
  int64_t finished = 0;
  torch::NoGradGuard ng;
  InferencePolicy* fast = nullptr;
  if (cfg_.rollout_inference == "packed") {  // the actor as it is now, in a snapshot kept for the next call
    snapshot_actor(eval_fast_);
    eval_fast_->set_thread_pool(&eval_env_->thread_pool());  // (a few episodes: a column split)
    fast = eval_fast_.get();
  }
  while (finished < N) {
    auto obs = torch::from_blob(const_cast<double*>(s->obs.data()), {N, O}, torch::kDouble);
    const auto pobs = policy_obs(obs);
    auto chunk =
        (fast ? fast_sample(*fast, pobs, torch::Tensor()).actions : policy_->act(pobs, gen, /*deterministic=*/true))
            .clamp(-1.0, 1.0)
            .contiguous();
    if (first_chunk) q0_sum = critic_->q_mean(pobs, chunk).sum().item<double>() / scaler_.scale();
    first_chunk = false;
    to_env_actions(chunk, actions.data());
    s = &eval_env_->step_chunk(actions, static_cast<int>(H), static_cast<int>(E));
    for (int64_t i = 0; i < N; ++i) {
      if (done[i]) continue;
      discounted[i] += discount[i] * s->reward[i];
      discount[i] *= cfg_.gamma;
      if (!(s->terminated[i] || s->truncated[i])) continue;
      done[i] = 1;
      returns[i] = s->episode_return[i];
      lengths[i] = s->episode_length[i];
      ++finished;
    }
  }
  auto r = summarize_episodes(std::move(returns), lengths);
  r.mean_q0 = q0_sum / static_cast<double>(N);
  double disc_sum = 0.0;
  for (double g : discounted) disc_sum += g;
  r.mean_discounted_return = disc_sum / static_cast<double>(N);
  return r;
}

IterationMetrics RldtTrainer::update() {
  if (acted_ || t_ != cfg_.n_steps)
    throw std::logic_error("RldtTrainer::update: " + std::to_string(t_) +
                           " of n_steps = " + std::to_string(cfg_.n_steps) + " chunk steps were acted and observed" +
                           (acted_ ? " (and the last act was not observed)" : ""));
  IterationMetrics m;
  m.iteration = itr_;
  m.eval = eval_iteration();
  m.seconds_rollout = seconds_since(rollout_start_);
  fresh_ = std::move(collect_);
  collect_ = TrajectoryBatch{};
  t_ = 0;
  env_steps_ += steps_sum_;
  m.env_steps = env_steps_;
  m.reward_per_step = steps_sum_ > 0 ? reward_sum_ / static_cast<double>(steps_sum_) : 0.0;
  m.episodes = episodes_;
  if (episodes_ > 0) {
    m.episode_return = ret_sum_ / static_cast<double>(episodes_);
    m.episode_length = len_sum_ / static_cast<double>(episodes_);
  }
  if (!m.eval) {
    // 2. Reward scale from fresh raw rewards; q_repeat rounds of critic (and actor) steps on a
    //    fresh/old mix of trajectories.
    scaler_.update(fresh_.rewards);
    m.reward_scale = scaler_.scale();
    // "member": the critic member whose gradient the actor follows this iteration (-1: the mean).
    const int64_t member = cfg_.actor_q_reduce == "member"
                               ? torch::randint(cfg_.critic.ensemble_size, {1}, gen_, torch::kLong).item<int64_t>()
                               : -1;
    const double critic_lr = cfg_.critic.lr * std::pow(cfg_.critic_lr_decay, static_cast<double>(itr_));
    // An lr that underflows to 0 (critic_lr_decay^i tiny) keeps the smallest positive value instead.
    critic_->set_lr(std::max(critic_lr, std::numeric_limits<double>::min()));
    // With both updates grouped every large matmul of the rounds runs on the updaters' threads with
    // one BLAS thread each; holding OpenBLAS at one thread between them keeps its own workers from
    // spinning after a two-thread call while the groups want both cores.
    std::optional<ScopedBlasThreads> one_blas_thread;
    if (cfg_.actor.update_groups > 1 && cfg_.critic.update_groups > 1) one_blas_thread.emplace(1);
    for (int64_t r = 0; r < cfg_.q_repeat; ++r) {
      auto batch = buffer_.sample_mixed(fresh_, cfg_.n_envs, cfg_.new_fraction, gen_);
      if (cfg_.critic_trains(itr_)) {
        auto tc = std::chrono::steady_clock::now();
        critic_round(batch, m.reward_scale, m);
        m.seconds_critic += seconds_since(tc);
      }
      if (itr_ > cfg_.n_critic_warmup_itr) {
        auto ta = std::chrono::steady_clock::now();
        actor_round(batch, member, m);
        m.seconds_actor += seconds_since(ta);
      }
    }
    // 3. Keep the fresh trajectories; the reference actor follows the trained one (every
    //    reference_refresh_freq-th iteration; 0: it stays the base policy).
    buffer_.push(fresh_);
    if (cfg_.reference_refresh_freq > 0 && itr_ % cfg_.reference_refresh_freq == 0) policy_->refresh_reference();
  }
  ++itr_;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------
namespace {
constexpr const char* kCheckpointKind = "rldt_checkpoint/1";
// Keys that may differ between the run that saved a checkpoint and the one that loads it.
const char* const kFreeKeys[] = {"n_train_itr", "env_threads"};

// "key.path: value" for every scalar line of to_yaml's output (sections joined with '.').
std::vector<std::string> flat_yaml(const std::string& yaml) {
  std::vector<std::string> out, stack;
  std::istringstream in(yaml);
  for (std::string line; std::getline(in, line);) {
    const size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos || line[indent] == '#') continue;
    const size_t depth = indent / 2;
    stack.resize(std::min(stack.size(), depth));
    const std::string body = line.substr(indent);
    if (body.back() == ':') {
      stack.push_back(body.substr(0, body.size() - 1));
      continue;
    }
    std::string key;
    for (const auto& s : stack) key += s + ".";
    const std::string full = key + body;
    bool free = false;
    for (const char* k : kFreeKeys) free = free || full.rfind(std::string(k) + ":", 0) == 0;
    if (!free) out.push_back(full);
  }
  return out;
}

}  // namespace

std::string checkpoint_config_mismatch(const std::string& saved_yaml, const RldtTrainerConfig& mine) {
  const auto as_map = [](const std::vector<std::string>& lines) {
    std::map<std::string, std::string> m;
    for (const auto& l : lines) {
      const size_t c = l.find(": ");
      m[l.substr(0, c)] = c == std::string::npos ? "" : l.substr(c + 2);
    }
    return m;
  };
  const auto saved = as_map(flat_yaml(saved_yaml)), now = as_map(flat_yaml(to_yaml(mine))),
             defaults = as_map(flat_yaml(to_yaml(RldtTrainerConfig{})));
  const auto differ = [](const std::string& a, const std::string& b) {
    return "the checkpoint has '" + a + "', this trainer '" + b + "' (only n_train_itr and env_threads may differ)";
  };
  for (const auto& [key, value] : saved) {
    const auto it = now.find(key);
    if (it == now.end()) return differ(key + ": " + value, "(no such key)");
    if (it->second != value) return differ(key + ": " + value, key + ": " + it->second);
  }
  // Keys added after the checkpoint was written are absent from it: they must hold their default
  // value (the behaviour the checkpoint's run had).
  for (const auto& [key, value] : now) {
    if (saved.count(key)) continue;
    const auto d = defaults.find(key);
    if (d == defaults.end() || d->second != value)
      return differ("(no " + key + ": written before the key existed, so its default " +
                        (d == defaults.end() ? std::string("?") : d->second) + ")",
                    key + ": " + value);
  }
  return "";
}

namespace {
torch::Tensor bytes_tensor(const std::vector<uint8_t>& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::copy(bytes.begin(), bytes.end(), t.data_ptr<uint8_t>());
  return t;
}

torch::Tensor read_tensor(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  torch::Tensor t;
  if (!ar.try_read(key, t)) throw std::runtime_error("'" + path + "' lacks the entry '" + key + "'");
  return t;
}

template <typename F>
void section(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path, F&& load) {
  auto sub = read_archive(ar, key, path);
  load(sub);
}
}  // namespace

void RldtTrainer::save_checkpoint(const std::string& path) const {
  if (t_ != 0 || acted_)
    throw std::logic_error("RldtTrainer::save_checkpoint: only between iterations (" + std::to_string(t_) + " of " +
                           std::to_string(cfg_.n_steps) + " steps of iteration " + std::to_string(itr_) +
                           " are collected)");
  torch::serialize::OutputArchive ar;
  write_header(ar, kCheckpointKind);
  ar.write("config", c10::IValue(to_yaml(cfg_)));
  ar.write("iteration", c10::IValue(itr_));
  ar.write("env_steps", c10::IValue(env_steps_));
  ar.write("actor_steps", c10::IValue(actor_steps_));
  ar.write("reward_scaler.ema", c10::IValue(scaler_.ema()));
  ar.write("generator", generator_state(gen_));
  ar.write("running_return", torch::tensor(running_return_, torch::kDouble));
  ar.write("running_length", torch::tensor(running_length_, torch::kLong));
  ar.write("native_envs", c10::IValue(env_ != nullptr));
  if (env_) {
    ar.write("obs", obs_);
    ar.write("envs", bytes_tensor(env_->snapshot()));
  }
  torch::serialize::OutputArchive policy, critic, updater, buffer;
  policy_->save_state(policy);
  critic_->save_state(critic);
  updater_->save_state(updater);
  buffer_.save_state(buffer);
  ar.write("policy", policy);
  ar.write("critic", critic);
  ar.write("actor_updater", updater);
  ar.write("buffer", buffer);
  save_archive_atomic(ar, path);
}

void RldtTrainer::load_checkpoint(const std::string& path) {
  if (t_ != 0 || acted_)
    throw std::logic_error("RldtTrainer::load_checkpoint: only between iterations (" + std::to_string(t_) +
                           " steps of iteration " + std::to_string(itr_) + " are collected)");
  torch::serialize::InputArchive ar;
  load_archive(ar, path, kCheckpointKind);  // reads the whole file: truncation is found here
  // 1. Checks that change nothing.
  const bool native = read_value(ar, "native_envs", path).toBool();
  if (native != (env_ != nullptr))
    throw std::runtime_error("'" + path + "' was written by a trainer " +
                             (native ? "with native envs" : "driven through act/observe/update") + "; this one " +
                             (env_ ? "has native envs" : "is driven through act/observe/update"));
  const std::string diff = checkpoint_config_mismatch(read_value(ar, "config", path).toStringRef(), cfg_);
  if (!diff.empty()) throw std::runtime_error("'" + path + "' was written by a trainer with another config: " + diff);
  const int64_t itr = read_value(ar, "iteration", path).toInt();
  const int64_t env_steps = read_value(ar, "env_steps", path).toInt();
  const int64_t actor_steps = read_value(ar, "actor_steps", path).toInt();
  const double ema = read_value(ar, "reward_scaler.ema", path).toDouble();
  const auto gen_state = read_tensor(ar, "generator", path);
  const auto running_return = read_tensor(ar, "running_return", path).contiguous();
  const auto running_length = read_tensor(ar, "running_length", path).contiguous();
  if (running_return.numel() != cfg_.n_envs || running_return.scalar_type() != torch::kDouble ||
      running_length.numel() != cfg_.n_envs || running_length.scalar_type() != torch::kLong)
    throw std::runtime_error("'" + path + "': entries 'running_return' / 'running_length' do not hold " +
                             std::to_string(cfg_.n_envs) + " envs");
  auto gen_probe = make_generator(0);
  set_generator_state(gen_probe, gen_state, "'" + path + "': entry 'generator'");
  torch::Tensor obs;
  if (env_) {
    obs = read_tensor(ar, "obs", path);
    if (obs.sizes() != obs_.sizes() || obs.scalar_type() != obs_.scalar_type())
      throw std::runtime_error("'" + path + "': entry 'obs' has shape " + c10::str(obs.sizes()) + "; expected " +
                               c10::str(obs_.sizes()));
    const auto envs = read_tensor(ar, "envs", path).contiguous();
    if (envs.scalar_type() != torch::kUInt8 || envs.dim() != 1)
      throw std::runtime_error("'" + path + "': entry 'envs' is not a byte blob");
    const std::vector<uint8_t> env_blob(envs.data_ptr<uint8_t>(), envs.data_ptr<uint8_t>() + envs.numel());
    // 2. The envs restore atomically (all or nothing).
    try {
      env_->restore(env_blob);
    } catch (const EnvError& e) {
      throw std::runtime_error("'" + path + "': entry 'envs': " + std::string(e.what()));
    }
  }
  // 3. The rest (a failure here leaves the trainer unusable: see the header).
  section(ar, "policy", path, [&](auto& a) { policy_->load_state(a, path); });
  section(ar, "critic", path, [&](auto& a) { critic_->load_state(a, path); });
  section(ar, "actor_updater", path, [&](auto& a) { updater_->load_state(a, path); });
  section(ar, "buffer", path, [&](auto& a) { buffer_.load_state(a, path); });
  scaler_.set_ema(ema);
  set_generator_state(gen_, gen_state, "'" + path + "': entry 'generator'");
  if (env_) obs_ = obs.clone();
  running_return_.assign(running_return.data_ptr<double>(), running_return.data_ptr<double>() + cfg_.n_envs);
  running_length_.assign(running_length.data_ptr<int64_t>(), running_length.data_ptr<int64_t>() + cfg_.n_envs);
  fresh_ = TrajectoryBatch{};
  itr_ = itr;
  env_steps_ = env_steps;
  actor_steps_ = actor_steps;
}

FlowPolicy policy_from_checkpoint(const std::string& path) {
  torch::serialize::InputArchive ar;
  load_archive(ar, path, kCheckpointKind);
  auto sub = read_archive(ar, "policy", path);
  return FlowPolicy::from_state(sub, path);
}

}  // namespace rldt
