#include "rldt/train/sac_trainer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "rldt/envs/vec_env.hpp"
#include "rldt/train/rldt_trainer.hpp"  // NonFiniteError
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

namespace rldt {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void guard_finite(double v, const char* what, int64_t itr) {
  if (!std::isfinite(v))
    throw NonFiniteError(std::string("SAC: non-finite ") + what + " (" + std::to_string(v) + ") at iteration " +
                         std::to_string(itr) + "; stopping");
}
}  // namespace

void SacTrainerConfig::validate() const {
  check_arg(!env.empty(), "env must name a task");
  check_arg(n_envs >= 1, "n_envs must be >= 1, got ", n_envs);
  check_arg(env_threads >= 0, "env_threads must be >= 0 (0 = all cores), got ", env_threads);
  check_arg(steps_per_iteration >= 1, "steps_per_iteration must be >= 1, got ", steps_per_iteration);
  check_arg(n_iterations >= 0, "n_iterations must be >= 0, got ", n_iterations);
  check_arg(val_freq >= 0, "val_freq must be >= 0 (0 = never evaluate), got ", val_freq);
  check_arg(eval_episodes >= 1, "eval_episodes must be >= 1, got ", eval_episodes);
  // obs_dim / action_dim come from the env: check the rest with valid placeholders.
  SacConfig s = sac;
  s.obs_dim = s.action_dim = 1;
  s.validate();
}

SacTrainer::SacTrainer(SacTrainerConfig cfg)
    : cfg_(std::move(cfg)), gen_(make_generator(cfg_.seed + 2)), act_gen_(make_generator(cfg_.seed + 3)) {
  cfg_.validate();
  env_ = std::make_unique<VecEnv>(cfg_.env, static_cast<int>(cfg_.n_envs), static_cast<int>(cfg_.env_threads),
                                  cfg_.env_options);
  obs_dim_ = env_->obs_dim();
  action_dim_ = env_->act_dim();
  cfg_.sac.obs_dim = obs_dim_;
  cfg_.sac.action_dim = action_dim_;
  const auto& box = env_->spec().action;
  sac_ = std::make_unique<Sac>(cfg_.sac, cfg_.seed, box.low, box.high);
  sac_->policy().env_name = cfg_.env;
  buffer_ = std::make_unique<ReplayBuffer>(cfg_.sac.buffer_size, obs_dim_, action_dim_);
  const int64_t N = cfg_.n_envs, O = obs_dim_;
  env_actions_.assign(static_cast<size_t>(N * action_dim_), 0.0);
  next_ = torch::empty({N, O});
  rewards_ = torch::empty({N});
  terminated_ = torch::empty({N});
  obs_ = torch::empty({N, O});
  const auto& first = env_->reset(cfg_.seed);
  float* op = obs_.data_ptr<float>();
  for (int64_t k = 0; k < N * O; ++k) op[k] = static_cast<float>(first.obs[k]);
}

SacTrainer::~SacTrainer() = default;

SacIterationMetrics SacTrainer::train_iteration() {
  const int64_t N = cfg_.n_envs, O = obs_dim_, d = action_dim_;
  const auto& sc = cfg_.sac;
  SacIterationMetrics m;
  m.iteration = itr_;
  double ret_sum = 0, len_sum = 0, reward_sum = 0;
  double critic_sum = 0, actor_sum = 0, alpha_loss_sum = 0, entropy_sum = 0, q_sum = 0;
  int64_t n_updates = 0, n_actor = 0;
  auto& policy = sac_->policy();
  for (int64_t t = 0; t < cfg_.steps_per_iteration; ++t) {
    // 1. Act: uniform random actions before learning_starts, then policy samples.
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor a;
    if (env_steps_ < sc.learning_starts) {
      a = torch::rand({N, d}, gen_) * 2.0 - 1.0;
    } else {
      a = policy.act(obs_, gen_, /*deterministic=*/false);
      if (!torch::isfinite(a).all().item<bool>()) guard_finite(std::nan(""), "policy action", itr_);
    }
    policy.to_env_units(a, env_actions_.data());
    const VecStep& out = env_->step(env_actions_);
    // 2. Store N transitions; copies with raw pointers. Truncations are stored as not terminated
    //    (bootstrapped); next_obs is the true next state (final_obs where an episode ended).
    float* np = next_.data_ptr<float>();
    float* rp = rewards_.data_ptr<float>();
    float* tp = terminated_.data_ptr<float>();
    for (int64_t i = 0; i < N; ++i) {
      rp[i] = static_cast<float>(out.reward[i]);
      tp[i] = out.terminated[i] ? 1.0f : 0.0f;
      const bool done = out.terminated[i] || out.truncated[i];
      const double* src = (done ? out.final_obs.data() : out.obs.data()) + i * O;
      for (int64_t j = 0; j < O; ++j) np[i * O + j] = static_cast<float>(src[j]);
      reward_sum += out.reward[i];
      if (done) {
        ret_sum += out.episode_return[i];
        len_sum += out.episode_length[i];
        ++m.episodes;
      }
    }
    buffer_->add(ReplayBatch{obs_, a, rewards_, next_, terminated_});
    float* op = obs_.data_ptr<float>();  // the next states (new episodes' first where one ended)
    for (int64_t k = 0; k < N * O; ++k) op[k] = static_cast<float>(out.obs[k]);
    env_steps_ += N;
    m.seconds_rollout += seconds_since(t0);
    // 3. utd·N gradient steps per vec step once learning has started.
    if (env_steps_ < sc.learning_starts) continue;
    update_credit_ += sc.utd * static_cast<double>(N);
    const auto n_steps = static_cast<int64_t>(std::floor(update_credit_));
    update_credit_ -= static_cast<double>(n_steps);
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t u = 0; u < n_steps; ++u) {
      auto st = sac_->update(buffer_->sample(sc.batch_size, gen_), gen_);
      guard_finite(st.critic_loss, "critic loss", itr_);
      critic_sum += st.critic_loss;
      q_sum += st.q_mean;
      ++n_updates;
      if (st.actor_updated) {
        guard_finite(st.actor_loss, "actor loss", itr_);
        actor_sum += st.actor_loss;
        alpha_loss_sum += st.alpha_loss;
        entropy_sum += st.entropy;
        ++n_actor;
      }
    }
    m.seconds_update += seconds_since(t1);
  }
  m.env_steps = env_steps_;
  m.updates = sac_->updates();
  m.reward_per_step = reward_sum / static_cast<double>(N * cfg_.steps_per_iteration);
  if (m.episodes > 0) {
    m.episode_return = ret_sum / static_cast<double>(m.episodes);
    m.episode_length = len_sum / static_cast<double>(m.episodes);
  }
  if (n_updates > 0) {
    m.critic_loss = critic_sum / static_cast<double>(n_updates);
    m.q_mean = q_sum / static_cast<double>(n_updates);
  }
  if (n_actor > 0) {
    m.actor_loss = actor_sum / static_cast<double>(n_actor);
    m.alpha_loss = sc.autotune_alpha ? alpha_loss_sum / static_cast<double>(n_actor) : 0.0;
    m.entropy = entropy_sum / static_cast<double>(n_actor);
  }
  m.alpha = sac_->alpha();
  if (cfg_.val_freq > 0 && (itr_ + 1) % cfg_.val_freq == 0) {
    auto t2 = std::chrono::steady_clock::now();
    auto ev = evaluate(cfg_.eval_episodes);
    m.eval = true;
    m.eval_return = ev.mean_return;
    m.eval_return_std = ev.std_return;
    m.eval_length = ev.mean_length;
    m.seconds_eval = seconds_since(t2);
  }
  ++itr_;
  return m;
}

SacEvalResult SacTrainer::evaluate(int64_t episodes) {
  check_arg(episodes >= 1, "evaluate: episodes must be >= 1, got ", episodes);
  if (!eval_env_ || eval_env_->num_envs() != episodes)
    eval_env_ = std::make_unique<VecEnv>(cfg_.env, static_cast<int>(episodes), static_cast<int>(cfg_.env_threads),
                                         cfg_.env_options);
  const int64_t E = episodes, O = obs_dim_;
  auto obs = torch::empty({E, O});
  float* op = obs.data_ptr<float>();
  const auto& first = eval_env_->reset(cfg_.seed + kEvalSeedOffset);
  for (int64_t k = 0; k < E * O; ++k) op[k] = static_cast<float>(first.obs[k]);
  eval_actions_.assign(static_cast<size_t>(E * action_dim_), 0.0);
  std::vector<double> returns(static_cast<size_t>(E), 0.0);
  std::vector<double> lengths(static_cast<size_t>(E), 0.0);
  std::vector<uint8_t> done(static_cast<size_t>(E), 0);
  int64_t remaining = E;
  auto& policy = sac_->policy();
  while (remaining > 0) {
    auto a = policy.act(obs, act_gen_, /*deterministic=*/true);
    policy.to_env_units(a, eval_actions_.data());
    const VecStep& out = eval_env_->step(eval_actions_);
    for (int64_t i = 0; i < E; ++i) {
      if (!done[i] && (out.terminated[i] || out.truncated[i])) {
        done[i] = 1;
        returns[i] = out.episode_return[i];
        lengths[i] = out.episode_length[i];
        --remaining;
      }
    }
    for (int64_t k = 0; k < E * O; ++k) op[k] = static_cast<float>(out.obs[k]);
  }
  return summarize_episodes(std::move(returns), lengths);
}

torch::Tensor SacTrainer::policy_action(const torch::Tensor& obs, bool deterministic) {
  check_arg(obs.defined() && obs.dim() == 2 && obs.size(1) == obs_dim_, "policy_action: obs has shape ",
            obs.defined() ? obs.sizes() : c10::IntArrayRef{}, "; expected [B, ", obs_dim_, "]");
  return sac_->policy().env_action(obs.to(torch::kFloat).contiguous(), act_gen_, deterministic);
}

void SacTrainer::save_policy(const std::string& path) const { sac_->policy().save(path); }

}  // namespace rldt
