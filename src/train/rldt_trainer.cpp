#include "rldt/train/rldt_trainer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "rldt/algo/td_targets.hpp"
#include "rldt/envs/vec_env.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

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
  check_choice(noise_mode, "exploration.noise_mode", {"none", "add", "min_extrp"});
  check_arg(action_sample_noise >= 0.0, "exploration.action_sample_noise must be >= 0, got ", action_sample_noise);
  check_arg(min_extrp_step >= 0, "exploration.min_extrp_step must be >= 0, got ", min_extrp_step);
}

void RldtTrainerConfig::validate() const {
  check_arg(!env.empty(), "env must name a task");
  check_arg(n_envs >= 1, "n_envs must be >= 1, got ", n_envs);
  check_arg(env_threads >= 0, "env_threads must be >= 0 (0 = all cores), got ", env_threads);
  check_arg(act_steps >= 1, "act_steps must be >= 1, got ", act_steps);
  check_arg(act_steps <= policy.horizon_steps, "act_steps (", act_steps, ") must be <= policy.horizon_steps (",
            policy.horizon_steps, ")");
  check_arg(n_steps >= 1, "n_steps must be >= 1, got ", n_steps);
  check_arg(n_train_itr >= 0, "n_train_itr must be >= 0, got ", n_train_itr);
  check_arg(n_critic_warmup_itr >= 0, "n_critic_warmup_itr must be >= 0, got ", n_critic_warmup_itr);
  check_arg(val_freq >= 1, "val_freq must be >= 1, got ", val_freq);
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
  check_arg(actor_max_states >= 0, "actor_max_states must be >= 0, got ", actor_max_states);
  exploration.validate();
  check_arg(exploration.min_extrp_step < policy.denoising_steps,
            "exploration.min_extrp_step must be in [0, policy.denoising_steps = ", policy.denoising_steps,
            "), got ", exploration.min_extrp_step);
  actor.validate();
}

RldtTrainer::RldtTrainer(RldtTrainerConfig cfg, std::shared_ptr<FlowPolicy> policy)
    : cfg_(std::move(cfg)),
      scaler_(cfg_.reward_scale, cfg_.reward_scale_alpha),
      buffer_(cfg_.buffer_num_episode * cfg_.n_envs),
      gen_(make_generator(cfg_.seed)) {
  cfg_.validate();
  env_ = std::make_unique<VecEnv>(cfg_.env, static_cast<int>(cfg_.n_envs), static_cast<int>(cfg_.env_threads),
                                  cfg_.env_options);
  const int64_t O = env_->obs_dim(), d = env_->act_dim();
  if (policy) {
    const auto& pc = policy->config();
    check_arg(pc.obs_dim == O && pc.action_dim == d, "the pretrained policy has obs_dim ", pc.obs_dim,
              " and action_dim ", pc.action_dim, "; env '", cfg_.env, "' has ", O, " and ", d);
    check_arg(cfg_.act_steps <= pc.horizon_steps, "act_steps (", cfg_.act_steps,
              ") must be <= the policy's horizon_steps (", pc.horizon_steps, ")");
    check_arg(cfg_.exploration.min_extrp_step < pc.denoising_steps, "exploration.min_extrp_step (",
              cfg_.exploration.min_extrp_step, ") must be < the policy's denoising_steps (", pc.denoising_steps, ")");
    policy_ = std::move(policy);
    cfg_.policy = pc;
  } else {
    cfg_.policy.obs_dim = O;
    cfg_.policy.action_dim = d;
    policy_ = std::make_shared<FlowPolicy>(cfg_.policy, cfg_.seed);
  }
  cfg_.critic.obs_dim = O;
  cfg_.critic.action_dim = d;
  cfg_.critic.act_steps = cfg_.act_steps;
  critic_ = std::make_unique<CriticEnsemble>(cfg_.critic, cfg_.seed + 1);
  updater_ = std::make_unique<ActorUpdater>(policy_, cfg_.actor);
  // Policy actions live in [−1, 1]; env actions in [low, high].
  const auto& spec = env_->spec().action;
  for (int64_t j = 0; j < d; ++j) {
    act_low_.push_back(spec.low[j]);
    act_scale_.push_back(0.5 * (spec.high[j] - spec.low[j]));
  }
  env_actions_.assign(static_cast<size_t>(cfg_.n_envs * cfg_.policy.horizon_steps * d), 0.0);
  const auto& first = env_->reset(cfg_.seed);
  obs_ = torch::tensor(std::vector<float>(first.obs.begin(), first.obs.end())).view({cfg_.n_envs, O});
}

RldtTrainer::~RldtTrainer() = default;

torch::Tensor RldtTrainer::explore(const FlowSample& s, const torch::Tensor& obs) {
  const auto& ex = cfg_.exploration;
  if (ex.noise_mode == "none") return s.actions;
  if (ex.noise_mode == "add") return s.actions + ex.action_sample_noise * torch::randn(s.actions.sizes(), gen_);
  // min_extrp: r = ||a − ŷ_k|| over the whole chunk at a random late step k; a + r·ε.
  const int64_t N = obs.size(0), K = cfg_.policy.denoising_steps;
  auto k = torch::randint(ex.min_extrp_step, K, {N}, gen_, torch::kLong);
  auto x_k = s.chain.index({torch::arange(N, torch::kLong), k});
  torch::NoGradGuard ng;
  auto y = policy_->expected_target(x_k, k, obs);
  auto r = (s.actions - y).flatten(1).norm(2, 1).view({N, 1, 1});
  return s.actions + r * torch::randn(s.actions.sizes(), gen_);
}

TrajectoryBatch RldtTrainer::rollout(bool deterministic, IterationMetrics& m) {
  const int64_t N = cfg_.n_envs, T = cfg_.n_steps, O = env_->obs_dim(), d = env_->act_dim();
  const int64_t H = cfg_.policy.horizon_steps, E = cfg_.act_steps;
  TrajectoryBatch b{torch::empty({N, T, O}),   torch::empty({N, T, E, d}), torch::empty({N, T}),
                    torch::empty({N, T}),      torch::empty({N, T}),       torch::empty({N, T, O})};
  double ret_sum = 0, len_sum = 0, reward_sum = 0;
  int64_t steps = 0;
  torch::NoGradGuard ng;
  for (int64_t t = 0; t < T; ++t) {
    b.obs.select(1, t).copy_(obs_);
    torch::Tensor chunk;
    if (deterministic) {
      chunk = policy_->act(obs_, gen_, /*deterministic=*/true);
    } else {
      chunk = explore(policy_->sample(obs_, gen_), obs_);
    }
    if (!torch::isfinite(chunk).all().item<bool>())
      guard_finite(std::numeric_limits<double>::quiet_NaN(), "policy action", itr_);
    chunk = chunk.clamp(-1.0, 1.0).contiguous();  // the env clips to its bounds; so does the record
    b.chunks.select(1, t).copy_(chunk.narrow(1, 0, E));
    const float* c = chunk.data_ptr<float>();
    for (int64_t i = 0; i < N * H; ++i)
      for (int64_t j = 0; j < d; ++j)
        env_actions_[i * d + j] = act_low_[j] + (static_cast<double>(c[i * d + j]) + 1.0) * act_scale_[j];
    const VecStep& out = env_->step_chunk(env_actions_, static_cast<int>(H), static_cast<int>(E));
    // Write the results straight into the (N, T, …) storage; no per-element tensor ops.
    float* rew = b.rewards.data_ptr<float>();
    float* term = b.terminated.data_ptr<float>();
    float* trunc = b.truncated.data_ptr<float>();
    float* next = b.next_obs.data_ptr<float>();
    float* obs_p = obs_.data_ptr<float>();
    for (int64_t i = 0; i < N; ++i) {
      const int64_t it = i * T + t;
      rew[it] = static_cast<float>(out.reward[i]);
      term[it] = static_cast<float>(out.terminated[i]);
      trunc[it] = static_cast<float>(out.truncated[i]);
      const bool done = out.terminated[i] || out.truncated[i];
      const auto& src = done ? out.final_obs : out.obs;  // the true next state
      for (int64_t j = 0; j < O; ++j) {
        obs_p[i * O + j] = static_cast<float>(out.obs[i * O + j]);
        next[it * O + j] = static_cast<float>(src[i * O + j]);
      }
      if (done) {
        ret_sum += out.episode_return[i];
        len_sum += out.episode_length[i];
        ++m.episodes;
      }
      reward_sum += out.reward[i];
      steps += out.steps_executed[i];
    }
  }
  env_steps_ += steps;
  m.env_steps = env_steps_;
  m.reward_per_step = steps > 0 ? reward_sum / static_cast<double>(steps) : 0.0;
  if (m.episodes > 0) {
    m.episode_return = ret_sum / static_cast<double>(m.episodes);
    m.episode_length = len_sum / static_cast<double>(m.episodes);
  }
  return b;
}

void RldtTrainer::critic_round(const TrajectoryBatch& batch, double scale, IterationMetrics& m) {
  const int64_t n = batch.size(), T = batch.steps(), O = batch.obs.size(2), S = cfg_.q_bootstrap;
  const int64_t H = cfg_.policy.horizon_steps, d = cfg_.policy.action_dim;
  // Policy samples for the bootstrap, drawn once per round (§2).
  torch::Tensor boot;  // (n·T, S, H, d)
  {
    auto next = batch.next_obs.reshape({n * T, O}).repeat_interleave(S, 0);
    boot = policy_->act(next, gen_).view({n * T, S, H, d});
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
    auto V = critic_->bootstrap_value(cols(batch.next_obs).reshape({n * Tv, O}),
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

void RldtTrainer::actor_round(const TrajectoryBatch& batch, IterationMetrics& m) {
  const int64_t P = cfg_.actor.n_particles, O = batch.obs.size(2);
  ActionGradFn grad_fn = [this](const torch::Tensor& o, const torch::Tensor& a) { return critic_->action_grad(o, a); };
  const int64_t steps = cfg_.policy_update_steps / cfg_.q_repeat;
  for (int64_t s = 0; s < steps; ++s, ++actor_steps_) {
    // States of every P-th trajectory, offset by the step index (§6).
    const int64_t start = actor_steps_ % P;
    auto traj = torch::arange(start % batch.size(), batch.size(), P, torch::kLong);
    auto states = batch.obs.index_select(0, traj).reshape({-1, O});
    if (cfg_.actor_max_states > 0 && states.size(0) > cfg_.actor_max_states)
      states = states.index_select(0, torch::randperm(states.size(0), gen_, torch::kLong)
                                          .narrow(0, 0, cfg_.actor_max_states));
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
  IterationMetrics m;
  m.iteration = itr_;
  m.eval = itr_ % cfg_.val_freq == 0;
  // 1. Roll out n_steps chunk steps in every env (deterministic on evaluation iterations).
  auto t0 = std::chrono::steady_clock::now();
  fresh_ = rollout(/*deterministic=*/m.eval, m);
  m.seconds_rollout = seconds_since(t0);
  if (!m.eval) {
    // 2. Reward scale from fresh raw rewards; q_repeat rounds of critic (and actor) steps on a
    //    fresh/old mix of trajectories.
    scaler_.update(fresh_.rewards);
    m.reward_scale = scaler_.scale();
    for (int64_t r = 0; r < cfg_.q_repeat; ++r) {
      auto batch = buffer_.sample_mixed(fresh_, cfg_.n_envs, cfg_.new_fraction, gen_);
      auto tc = std::chrono::steady_clock::now();
      critic_round(batch, m.reward_scale, m);
      m.seconds_critic += seconds_since(tc);
      if (itr_ > cfg_.n_critic_warmup_itr) {
        auto ta = std::chrono::steady_clock::now();
        actor_round(batch, m);
        m.seconds_actor += seconds_since(ta);
      }
    }
    // 3. Keep the fresh trajectories; the reference actor follows the trained one.
    buffer_.push(fresh_);
    policy_->refresh_reference();
  }
  ++itr_;
  return m;
}

}  // namespace rldt
