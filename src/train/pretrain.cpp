#include "rldt/train/pretrain.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "rldt/envs/vec_env.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/malloc_tuning.hpp"
#include "rldt/util/rng.hpp"

namespace rldt {

void PretrainConfig::validate() const {
  check_arg(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  check_arg(n_updates >= 1, "n_updates must be >= 1, got ", n_updates);
  check_arg(val_fraction >= 0.0 && val_fraction < 1.0, "val_fraction must be in [0, 1), got ", val_fraction);
  check_arg(val_max_chunks >= 1, "val_max_chunks must be >= 1, got ", val_max_chunks);
  check_arg(log_freq >= 1, "log_freq must be >= 1, got ", log_freq);
  check_arg(checkpoint_freq >= 0, "checkpoint_freq must be >= 0 (0 = at the end only), got ", checkpoint_freq);
}

void RecordConfig::validate() const {
  check_arg(!env.empty(), "env must name a task");
  check_arg(n_envs >= 1, "n_envs must be >= 1, got ", n_envs);
  check_arg(env_threads >= 0, "env_threads must be >= 0 (0 = all cores), got ", env_threads);
  check_arg(act_steps >= 1, "act_steps must be >= 1, got ", act_steps);
  check_arg((episodes > 0) != (steps > 0), "exactly one of episodes (", episodes, ") and steps (", steps,
            ") must be > 0");
  check_arg(episodes >= 0 && steps >= 0, "episodes and steps must be >= 0");
  check_arg(std::isfinite(noise) && noise >= 0.0, "noise must be finite and >= 0, got ", noise);
}

std::pair<torch::Tensor, torch::Tensor> chunk_starts(const std::vector<std::pair<int64_t, int64_t>>& episodes,
                                                     int64_t horizon, bool pad) {
  check_arg(horizon >= 1, "horizon must be >= 1, got ", horizon);
  std::vector<int64_t> start, last;
  for (const auto& [b, e] : episodes) {
    const int64_t end_start = pad ? e : e - horizon + 1;  // exclusive
    for (int64_t i = b; i < end_start; ++i) {
      start.push_back(i);
      last.push_back(e - 1);
    }
  }
  return {torch::tensor(start, torch::kLong), torch::tensor(last, torch::kLong)};
}

PolicyNormalizer fit_normalizer(const Dataset& data) {
  data.validate();
  PolicyNormalizer n;
  n.obs = MinMaxNormalizer::fit(data.observations, static_cast<size_t>(data.obs_dim));
  n.action = MinMaxNormalizer::fit(data.actions, static_cast<size_t>(data.action_dim));
  return n;
}

std::shared_ptr<FlowPolicy> export_ema(const FlowPolicy& policy) {
  auto& p = const_cast<FlowPolicy&>(policy);  // reads only (the accessors are non-const)
  auto out = std::make_shared<FlowPolicy>(policy.config());
  copy_module_state(*out->actor(), *p.ema());
  copy_module_state(*out->ema(), *p.ema());
  copy_module_state(*out->reference(), *p.ema());
  out->set_normalizer(policy.normalizer());
  return out;
}

namespace {

// (rows (M,) chunk starts) → (obs (M, O), chunks (M, H, d)) from the normalised data.
struct ChunkSource {
  torch::Tensor obs;      // (N, O) normalised
  torch::Tensor actions;  // (N, d) policy units
  int64_t horizon = 1;
  std::pair<torch::Tensor, torch::Tensor> gather(const torch::Tensor& start, const torch::Tensor& last) const {
    const int64_t m = start.size(0), d = actions.size(1);
    auto rows = start.view({m, 1}) + torch::arange(horizon, torch::kLong).view({1, horizon});
    rows = torch::minimum(rows, last.view({m, 1}));  // pad_chunks: repeat the episode's last action
    return {obs.index_select(0, start), actions.index_select(0, rows.flatten()).view({m, horizon, d})};
  }
};

torch::Tensor rows_tensor(const std::vector<float>& v, int64_t n, int64_t w) {
  return torch::from_blob(const_cast<float*>(v.data()), {n, w}, torch::kFloat32).clone();
}

}  // namespace

PretrainResult pretrain(const Dataset& data, const PretrainConfig& cfg, FlowPolicyConfig policy_cfg,
                        const PretrainCallbacks& cb) {
  cfg.validate();
  data.validate(cfg.dataset.empty() ? "dataset" : cfg.dataset);
  policy_cfg.obs_dim = data.obs_dim;
  policy_cfg.action_dim = data.action_dim;
  policy_cfg.validate();
  tune_malloc_for_training();
  const int64_t H = policy_cfg.horizon_steps;
  auto gen = make_generator(cfg.seed);

  // Episodes, split into training and validation episodes (a seeded shuffle).
  auto episodes = data.episodes();
  const auto n_ep = static_cast<int64_t>(episodes.size());
  int64_t n_val = cfg.val_fraction > 0 && n_ep >= 2
                      ? std::clamp<int64_t>(static_cast<int64_t>(std::llround(cfg.val_fraction * n_ep)), 1, n_ep - 1)
                      : 0;
  auto perm = torch::randperm(n_ep, gen, torch::kLong);
  std::vector<std::pair<int64_t, int64_t>> train_ep, val_ep;
  for (int64_t i = 0; i < n_ep; ++i) (i < n_val ? val_ep : train_ep).push_back(episodes[perm[i].item<int64_t>()]);
  std::sort(train_ep.begin(), train_ep.end());
  std::sort(val_ep.begin(), val_ep.end());
  auto [train_start, train_last] = chunk_starts(train_ep, H, cfg.pad_chunks);
  auto [val_start, val_last] = chunk_starts(val_ep, H, cfg.pad_chunks);
  const int64_t M = train_start.size(0);
  check_arg(M > 0, "the dataset '", cfg.dataset, "' has no chunk of horizon_steps = ", H,
            " inside a training episode (", train_ep.size(),
            " training episodes); use pad_chunks or a smaller horizon");
  if (val_start.size(0) > cfg.val_max_chunks) {
    auto pick = torch::randperm(val_start.size(0), gen, torch::kLong).narrow(0, 0, cfg.val_max_chunks);
    pick = std::get<0>(pick.sort());
    val_start = val_start.index_select(0, pick);
    val_last = val_last.index_select(0, pick);
  }

  // Normalised data.
  const int64_t N = data.size();
  ChunkSource src;
  src.horizon = H;
  src.obs = rows_tensor(data.observations, N, data.obs_dim);
  src.actions = rows_tensor(data.actions, N, data.action_dim);
  PolicyNormalizer norm;
  if (cfg.normalize) {
    norm = fit_normalizer(data);
    src.obs = norm.normalize_obs(src.obs);
    src.actions = norm.action_from_env(src.actions, BoxSpec{});
  }
  torch::Tensor val_obs, val_chunks;
  if (val_start.size(0) > 0) std::tie(val_obs, val_chunks) = src.gather(val_start, val_last);

  auto policy = std::make_shared<FlowPolicy>(policy_cfg, cfg.seed);
  policy->set_normalizer(norm);

  PretrainResult result;
  result.train_episodes = static_cast<int64_t>(train_ep.size());
  result.val_episodes = static_cast<int64_t>(val_ep.size());
  result.train_chunks = M;
  result.val_chunks = val_start.size(0);

  const int64_t B = std::min(cfg.batch_size, M);
  torch::Tensor order = torch::randperm(M, gen, torch::kLong);
  int64_t cursor = 0;
  double loss_sum = 0;
  int64_t loss_n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t u = 1; u <= cfg.n_updates; ++u) {
    if (cursor + B > M) {  // a new epoch: reshuffle (the remainder of the last one is skipped)
      order = torch::randperm(M, gen, torch::kLong);
      cursor = 0;
    }
    auto idx = order.narrow(0, cursor, B);
    cursor += B;
    auto [obs, chunks] = src.gather(train_start.index_select(0, idx), train_last.index_select(0, idx));
    const double loss = policy->bc_update(obs, chunks, gen);
    check_arg(std::isfinite(loss), "the BC loss is not finite (", loss, ") at update ", u,
              "; lower policy.bc_lr or check the dataset");
    loss_sum += loss;
    ++loss_n;
    if (cb.on_checkpoint && cfg.checkpoint_freq > 0 && u % cfg.checkpoint_freq == 0 && u < cfg.n_updates)
      cb.on_checkpoint(*export_ema(*policy), u);
    if (u % cfg.log_freq != 0 && u != cfg.n_updates) continue;
    PretrainLog log;
    log.update = u;
    log.epoch = static_cast<double>(u) * static_cast<double>(B) / static_cast<double>(M);
    log.train_loss = loss_sum / static_cast<double>(loss_n);
    loss_sum = 0;
    loss_n = 0;
    if (val_obs.defined()) {
      torch::NoGradGuard ng;
      auto vgen = make_generator(cfg.seed + 1);  // the same noise at every evaluation
      log.val_loss = policy->bc_loss(val_obs, val_chunks, vgen, &policy->ema()).item<double>();
      auto a = policy->sample(val_obs, vgen, /*deterministic=*/true, &policy->ema()).actions;
      log.val_action_mse = (a - val_chunks).pow(2).mean().item<double>();
    }
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.last = log;
    if (cb.on_log && !cb.on_log(log)) {
      result.stopped_early = u < cfg.n_updates;
      break;
    }
  }
  policy->load_ema_into_actor();
  policy->refresh_reference();
  result.policy = policy;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------
namespace {
void push_row(Dataset& ep, const double* obs, const double* action, double reward, bool term, bool trunc,
              const double* next) {
  for (int64_t j = 0; j < ep.obs_dim; ++j) ep.observations.push_back(static_cast<float>(obs[j]));
  for (int64_t j = 0; j < ep.action_dim; ++j) ep.actions.push_back(static_cast<float>(action[j]));
  ep.rewards.push_back(static_cast<float>(reward));
  ep.terminals.push_back(term);
  ep.timeouts.push_back(trunc);
  for (int64_t j = 0; j < ep.obs_dim; ++j) ep.next_observations.push_back(static_cast<float>(next[j]));
}
}  // namespace

Dataset record_dataset(FlowPolicy& policy, const RecordConfig& cfg) {
  const auto& pc = policy.config();
  check_arg(cfg.act_steps <= pc.horizon_steps, "act_steps (", cfg.act_steps,
            ") must be <= the policy's horizon_steps (", pc.horizon_steps, ")");
  const ChunkPlanner plan = [&](const torch::Tensor& obs, const BoxSpec& box, at::Generator& gen) {
    auto a = policy.act(policy.normalizer().normalize_obs(obs), gen, cfg.deterministic);  // (B, H, d) in [-1, 1]
    if (cfg.noise > 0) a = a + cfg.noise * torch::randn(a.sizes(), gen);
    check_arg(torch::isfinite(a).all().item<bool>(), "the policy produced a non-finite action");
    return policy.normalizer().action_to_env(a, box);
  };
  return record_dataset(plan, pc.obs_dim, pc.action_dim, pc.horizon_steps, cfg);
}

Dataset record_dataset(SacPolicy& policy, const RecordConfig& cfg) {
  check_arg(cfg.act_steps == 1, "act_steps must be 1 to record a SAC policy (it plans one action per step), got ",
            cfg.act_steps);
  const ChunkPlanner plan = [&](const torch::Tensor& obs, const BoxSpec& box, at::Generator& gen) {
    auto a = policy.act(obs, gen, cfg.deterministic);  // (B, d) in [-1, 1]
    if (cfg.noise > 0) a = (a + cfg.noise * torch::randn(a.sizes(), gen)).clamp(-1.0, 1.0);
    check_arg(torch::isfinite(a).all().item<bool>(), "the policy produced a non-finite action");
    // [-1, 1] → the env's action box (the map SacPolicy::to_env_units applies with its stored bounds).
    auto low = torch::tensor(box.low, torch::kFloat64), high = torch::tensor(box.high, torch::kFloat64);
    return (low + (a.to(torch::kFloat64) + 1.0) * 0.5 * (high - low)).unsqueeze(1);  // (B, 1, d)
  };
  return record_dataset(plan, policy.obs_dim(), policy.action_dim(), 1, cfg);
}

Dataset record_dataset(const ChunkPlanner& plan, int64_t obs_dim, int64_t action_dim, int64_t horizon,
                       const RecordConfig& cfg) {
  cfg.validate();
  check_arg(cfg.act_steps <= horizon, "act_steps (", cfg.act_steps, ") must be <= the policy's horizon (", horizon,
            ")");
  VecEnv env(cfg.env, static_cast<int>(cfg.n_envs), static_cast<int>(cfg.env_threads), cfg.env_options);
  const int64_t N = cfg.n_envs, O = env.obs_dim(), d = env.act_dim(), H = horizon;
  check_arg(obs_dim == O && action_dim == d, "the policy has obs_dim ", obs_dim, " and action_dim ", action_dim,
            "; env '", cfg.env, "' has ", O, " and ", d);
  const auto& box = env.spec().action;
  auto gen = make_generator(cfg.seed);

  std::vector<double> obs = env.reset(cfg.seed).obs;  // (N, O)
  std::vector<double> plan_buf(static_cast<size_t>(N * H * d)), actions(static_cast<size_t>(N * d));
  std::vector<int64_t> pos(static_cast<size_t>(N), cfg.act_steps);  // act_steps = plan used up
  Dataset empty;
  empty.obs_dim = O;
  empty.action_dim = d;
  std::vector<Dataset> current(static_cast<size_t>(N), empty);
  Dataset out = empty;
  int64_t finished = 0, total_steps = 0;
  torch::NoGradGuard ng;
  while (true) {
    // Plan for every env whose chunk is used up (or whose episode just restarted).
    std::vector<int64_t> need;
    for (int64_t i = 0; i < N; ++i)
      if (pos[i] >= cfg.act_steps) need.push_back(i);
    if (!need.empty()) {
      const auto B = static_cast<int64_t>(need.size());
      auto o = torch::empty({B, O}, torch::kFloat32);
      float* op = o.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < O; ++j) op[b * O + j] = static_cast<float>(obs[need[b] * O + j]);
      auto e = plan(o, box, gen);
      check_arg(e.dim() == 3 && e.size(0) == B && e.size(1) == H && e.size(2) == d, "the policy's chunk has shape ",
                shape_to_string(e.sizes()), "; expected (", B, ", ", H, ", ", d, ")");
      e = e.to(torch::kFloat64).contiguous();
      const double* ep = e.data_ptr<double>();
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t k = 0; k < H * d; ++k) {
          const int64_t j = k % d;
          plan_buf[need[b] * H * d + k] = std::clamp(ep[b * H * d + k], box.low[j], box.high[j]);
        }
        pos[need[b]] = 0;
      }
    }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < d; ++j) actions[i * d + j] = plan_buf[(i * H + pos[i]) * d + j];
    const VecStep& s = env.step(actions);
    for (int64_t i = 0; i < N; ++i) {
      const bool done = s.terminated[i] || s.truncated[i];
      const double* next = (done ? s.final_obs : s.obs).data() + i * O;
      push_row(current[i], obs.data() + i * O, actions.data() + i * d, s.reward[i], s.terminated[i], s.truncated[i],
               next);
      ++pos[i];
      if (done) {
        pos[i] = cfg.act_steps;  // the new episode gets a fresh plan
        if (cfg.episodes == 0 || finished < cfg.episodes) {
          out.append(current[i], 0, current[i].size());
          ++finished;
        }
        current[i] = empty;
      }
    }
    obs = s.obs;
    total_steps += N;
    if (cfg.episodes > 0 && finished >= cfg.episodes) break;
    if (cfg.steps > 0 && total_steps >= cfg.steps) break;
  }
  if (cfg.steps > 0) {
    // Unfinished episodes follow the finished ones, each ending with timeouts = 1; then cut to
    // exactly `steps` rows.
    for (auto& c : current) {
      if (c.size() == 0) continue;
      c.timeouts.back() = 1;
      out.append(c, 0, c.size());
    }
    if (out.size() > cfg.steps) {
      Dataset cut = empty;
      cut.append(out, 0, cfg.steps);
      if (!cut.terminals.back()) cut.timeouts.back() = 1;
      out = std::move(cut);
    }
  }
  out.validate("recorded dataset");
  return out;
}

}  // namespace rldt
