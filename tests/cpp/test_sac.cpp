// SAC baseline (issue 5): tanh-Gaussian density, entropy tuning, Polyak targets, the replay
// buffer, the trainer's data path, seeded determinism, save/load, and learning on
// InvertedPendulum-v5.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "rldt/algo/sac.hpp"
#include "rldt/data/replay_buffer.hpp"
#include "rldt/train/sac_trainer.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {
SacConfig small_sac(int64_t O, int64_t d) {
  SacConfig c;
  c.obs_dim = O;
  c.action_dim = d;
  c.hidden = {32, 32};
  c.batch_size = 32;
  return c;
}

ReplayBatch random_batch(int64_t B, int64_t O, int64_t d, at::Generator& gen) {
  return ReplayBatch{torch::randn({B, O}, gen), torch::rand({B, d}, gen) * 2 - 1, torch::randn({B}, gen),
                     torch::randn({B, O}, gen), torch::zeros({B})};
}

std::vector<torch::Tensor> clone_params(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

SacTrainerConfig tiny_pendulum(uint64_t seed) {
  SacTrainerConfig c;
  c.env = "InvertedPendulum-v5";
  c.n_envs = 2;
  c.env_threads = 1;
  c.seed = seed;
  c.steps_per_iteration = 100;
  c.val_freq = 2;
  c.eval_episodes = 2;
  c.sac.hidden = {32, 32};
  c.sac.batch_size = 32;
  c.sac.learning_starts = 100;
  c.sac.buffer_size = 1000;
  return c;
}
}  // namespace

// ---------------------------------------------------------------------------
// tanh-Gaussian density
// ---------------------------------------------------------------------------

TEST(SacTanhGaussian, DensityIntegratesToOneOverActions) {
  // p(a) = N(atanh a; μ, σ²) / (1 − a²) on (−1, 1); trapezoid rule on a fine grid, for a wide,
  // a narrow and an off-centre Gaussian.
  for (auto [mu, sigma] : std::vector<std::pair<double, double>>{{0.0, 1.0}, {0.3, 0.4}, {-1.5, 0.7}}) {
    const int64_t n = 400001;
    auto a = torch::linspace(-1.0 + 1e-9, 1.0 - 1e-9, n, torch::kDouble);
    auto u = torch::atanh(a).to(torch::kFloat).view({n, 1});
    auto lp = tanh_gaussian_log_prob(u, torch::full({n, 1}, mu), torch::full({n, 1}, std::log(sigma)));
    auto p = lp.to(torch::kDouble).exp();
    const double h = (a[1] - a[0]).item<double>();
    const double integral = h * (p.sum().item<double>() - 0.5 * (p[0] + p[n - 1]).item<double>());
    EXPECT_NEAR(integral, 1.0, 2e-3) << "mu " << mu << " sigma " << sigma;
  }
}

TEST(SacTanhGaussian, LogProbMatchesClosedFormAndIsStableForLargeInputs) {
  // Two action dims summed; closed form in double: Σ log N(u; μ, σ) − log(1 − tanh²u).
  auto u = torch::tensor({0.2f, -1.3f, 3.0f, 0.0f}).view({2, 2});
  auto mean = torch::tensor({0.1f, -1.0f, 2.5f, 0.5f}).view({2, 2});
  auto log_std = torch::tensor({-0.5f, 0.3f, 0.0f, -2.0f}).view({2, 2});
  auto lp = tanh_gaussian_log_prob(u, mean, log_std);
  auto ud = u.to(torch::kDouble), md = mean.to(torch::kDouble), sd = log_std.to(torch::kDouble).exp();
  auto ref = (-0.5 * ((ud - md) / sd).pow(2) - sd.log() - 0.5 * std::log(2 * std::acos(-1.0)) -
              torch::log(1 - torch::tanh(ud).pow(2)))
                 .sum(-1);
  EXPECT_TRUE(torch::allclose(lp.to(torch::kDouble), ref, 1e-5, 1e-4)) << lp << ref;
  // |u| = 30: tanh(u) rounds to ±1 in float32, yet the correction stays finite (≈ 2|u| − 2 log 2 … ).
  auto big =
      tanh_gaussian_log_prob(torch::tensor({30.0f, -30.0f}).view({1, 2}), torch::zeros({1, 2}), torch::zeros({1, 2}));
  ASSERT_TRUE(std::isfinite(big.item<double>()));
  const double expect = 2 * (-0.5 * 900 - 0.5 * std::log(2 * std::acos(-1.0)) - 2 * (std::log(2.0) - 30.0));
  EXPECT_NEAR(big.item<double>(), expect, 1e-2);
  // Shape errors name the argument.
  try {
    tanh_gaussian_log_prob(u, mean.view({4, 1}), log_std);
    FAIL() << "expected ArgumentError";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("mean"), std::string::npos) << e.what();
  }
}

TEST(SacTanhGaussian, ActorSampleLogProbAgreesWithDensityFunction) {
  auto gen = make_generator(3);
  TanhGaussianActor actor(5, 3, std::vector<int64_t>{32, 32}, "relu", -20.0, 2.0, gen);
  auto obs = torch::randn({256, 5}, gen);
  auto s = actor->sample(obs, gen);
  ASSERT_EQ(s.action.sizes(), (c10::IntArrayRef{256, 3}));
  ASSERT_EQ(s.log_prob.sizes(), (c10::IntArrayRef{256}));
  EXPECT_LT(s.action.abs().max().item<double>(), 1.0);
  auto [mean, log_std] = actor->forward(obs);
  EXPECT_TRUE(torch::allclose(s.mean, torch::tanh(mean)));
  // Recompute from the action (rows away from ±1, where atanh of a float32 is accurate).
  auto ok = (s.action.abs() < 0.99).all(-1, false).nonzero().squeeze(1);
  ASSERT_GT(ok.size(0), 100);
  auto u = torch::atanh(s.action.index_select(0, ok).to(torch::kDouble)).to(torch::kFloat);
  auto lp = tanh_gaussian_log_prob(u, mean.index_select(0, ok), log_std.index_select(0, ok));
  EXPECT_TRUE(torch::allclose(lp, s.log_prob.index_select(0, ok), 1e-3, 1e-3));
  // Gradients reach the actor through the reparameterised sample.
  actor->zero_grad();
  actor->sample(obs, gen).log_prob.mean().backward();
  double g = 0;
  for (auto& p : actor->parameters()) g += p.grad().abs().sum().item<double>();
  EXPECT_GT(g, 0.0);
}

TEST(SacTanhGaussian, LogStdIsClamped) {
  auto gen = make_generator(0);
  TanhGaussianActor actor(2, 1, std::vector<int64_t>{8}, "relu", -1.0, 0.5, gen);
  auto [mean, log_std] = actor->forward(torch::randn({64, 2}, gen) * 1000);
  EXPECT_GE(log_std.min().item<double>(), -1.0);
  EXPECT_LE(log_std.max().item<double>(), 0.5);
}

// ---------------------------------------------------------------------------
// Learner
// ---------------------------------------------------------------------------

TEST(SacLearner, AlphaMovesTowardTheTargetEntropy) {
  // H̄ above any entropy the policy has → α grows; far below → α shrinks; without tuning, fixed.
  auto run = [](double per_dim, bool autotune) {
    auto c = small_sac(4, 2);
    c.target_entropy_per_dim = per_dim;
    c.autotune_alpha = autotune;
    c.init_alpha = 0.5;
    c.alpha_lr = 1e-2;
    Sac sac(c, 1);
    auto gen = make_generator(7);
    SacUpdateStats st;
    for (int k = 0; k < 20; ++k) st = sac.update(random_batch(32, 4, 2, gen), gen);
    EXPECT_TRUE(st.actor_updated);
    EXPECT_TRUE(std::isfinite(st.entropy));
    return sac.alpha();
  };
  EXPECT_GT(run(+5.0, true), 0.5 * 1.1);
  EXPECT_LT(run(-50.0, true), 0.5 / 1.1);
  EXPECT_NEAR(run(-1.0, false), 0.5, 1e-6);  // float32 log α
}

TEST(SacLearner, PolyakUpdateAndTargetFrequency) {
  auto c = small_sac(3, 1);
  c.tau = 0.1;
  c.target_frequency = 2;
  Sac sac(c, 0);
  // The targets start equal to the online critics.
  auto online0 = clone_params(*sac.critic());
  auto target0 = clone_params(*sac.critic_target());
  for (size_t i = 0; i < online0.size(); ++i) ASSERT_TRUE(torch::equal(online0[i], target0[i]));
  auto gen = make_generator(1);
  sac.update(random_batch(32, 3, 1, gen), gen);  // update 1: no Polyak step
  auto target1 = clone_params(*sac.critic_target());
  for (size_t i = 0; i < target0.size(); ++i) EXPECT_TRUE(torch::equal(target0[i], target1[i]));
  sac.update(random_batch(32, 3, 1, gen), gen);  // update 2: target ← 0.9 target + 0.1 online
  auto online2 = clone_params(*sac.critic());
  auto target2 = clone_params(*sac.critic_target());
  bool moved = false;
  for (size_t i = 0; i < target2.size(); ++i) {
    EXPECT_TRUE(torch::allclose(target2[i], 0.9 * target1[i] + 0.1 * online2[i], 1e-6, 1e-6));
    moved = moved || !torch::equal(target2[i], target1[i]);
  }
  EXPECT_TRUE(moved);
  // q_target reads the target nets: (2, B).
  auto obs = torch::randn({5, 3}, gen), act = torch::rand({5, 1}, gen);
  EXPECT_EQ(sac.q_target(obs, act).sizes(), (c10::IntArrayRef{2, 5}));
  EXPECT_FALSE(torch::equal(sac.q_target(obs, act), sac.q(obs, act).detach()));
}

TEST(SacLearner, CriticRegressesRewardsOfTerminalTransitions) {
  // terminated = 1 everywhere: the target is the reward alone; repeated steps on one batch fit it.
  auto c = small_sac(3, 1);
  c.critic_lr = 1e-3;
  Sac sac(c, 2);
  auto gen = make_generator(2);
  auto b = random_batch(64, 3, 1, gen);
  b.rewards = b.obs.sum(1);
  b.terminated = torch::ones({64});
  const double first = sac.update(b, gen).critic_loss;
  double last = first;
  for (int k = 0; k < 300; ++k) last = sac.update(b, gen).critic_loss;
  EXPECT_LT(last, 0.05 * first) << first << " -> " << last;
  auto q = sac.q(b.obs, b.actions).detach();
  EXPECT_LT((q - b.rewards.unsqueeze(0)).abs().mean().item<double>(), 0.2);
}

TEST(SacLearner, ConfigErrorsNameTheField) {
  auto expect_error = [](SacConfig c, const std::string& field) {
    try {
      c.validate();
      FAIL() << "expected ArgumentError for " << field;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SacConfig c;
  c.validate();
  auto bad = c;
  bad.tau = 0;
  expect_error(bad, "sac.tau");
  bad = c;
  bad.log_std_min = 3;
  expect_error(bad, "sac.log_std_min");
  bad = c;
  bad.batch_size = 0;
  expect_error(bad, "sac.batch_size");
  bad = c;
  bad.utd = 0;
  expect_error(bad, "sac.utd");
  bad = c;
  bad.activation = "gelu";
  expect_error(bad, "sac.activation");
  SacTrainerConfig t;
  t.steps_per_iteration = 0;
  try {
    t.validate();
    FAIL();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("steps_per_iteration"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------
// Replay buffer
// ---------------------------------------------------------------------------

namespace {
// n transitions whose every field encodes its running index k (obs = k, action = k / 100, ...).
ReplayBatch numbered(int64_t from, int64_t n) {
  auto k = torch::arange(from, from + n, torch::kFloat);
  return ReplayBatch{k.view({n, 1}).repeat({1, 2}), (k / 100).view({n, 1}), k * 10,
                     (k + 0.5).view({n, 1}).repeat({1, 2}), (k.remainder(2) == 0).to(torch::kFloat)};
}
}  // namespace

TEST(SacReplayBuffer, WrapsAroundOverwritingTheOldest) {
  ReplayBuffer buf(5, 2, 1);
  buf.add(numbered(0, 3));
  EXPECT_EQ(buf.size(), 3);
  EXPECT_EQ(buf.position(), 3);
  buf.add(numbered(3, 4));  // 3, 4 fill slots 3, 4; 5, 6 wrap into slots 0, 1
  EXPECT_EQ(buf.size(), 5);
  EXPECT_EQ(buf.position(), 2);
  EXPECT_EQ(buf.total_added(), 7);
  auto all = buf.rows(torch::arange(5, torch::kLong));
  EXPECT_TRUE(torch::equal(all.obs.select(1, 0), torch::tensor({5.f, 6.f, 2.f, 3.f, 4.f})));
  EXPECT_TRUE(torch::equal(all.rewards, torch::tensor({50.f, 60.f, 20.f, 30.f, 40.f})));
  EXPECT_TRUE(torch::equal(all.next_obs.select(1, 1), torch::tensor({5.5f, 6.5f, 2.5f, 3.5f, 4.5f})));
  EXPECT_TRUE(torch::equal(all.terminated, torch::tensor({0.f, 1.f, 1.f, 0.f, 1.f})));
  EXPECT_TRUE(torch::allclose(all.actions.view({5}), torch::tensor({.05f, .06f, .02f, .03f, .04f})));
  // More rows than the capacity in one call: the last 5 survive, in ring order.
  buf.add(numbered(100, 12));  // 100..111; 107..111 survive
  EXPECT_EQ(buf.total_added(), 19);
  EXPECT_EQ(buf.position(), (2 + 12) % 5);
  auto s = buf.rows(torch::arange(5, torch::kLong)).obs.select(1, 0);
  EXPECT_TRUE(torch::equal(std::get<0>(s.sort()), torch::tensor({107.f, 108.f, 109.f, 110.f, 111.f}))) << s;
  buf.clear();
  EXPECT_EQ(buf.size(), 0);
}

TEST(SacReplayBuffer, SeededSamplingOfStoredRowsOnly) {
  ReplayBuffer buf(100, 2, 1);
  buf.add(numbered(0, 10));  // only slots 0..9 are filled
  auto g1 = make_generator(5), g2 = make_generator(5), g3 = make_generator(6);
  auto a = buf.sample(1000, g1), b = buf.sample(1000, g2), c = buf.sample(1000, g3);
  EXPECT_TRUE(torch::equal(a.obs, b.obs));
  EXPECT_FALSE(torch::equal(a.obs, c.obs));
  EXPECT_EQ(a.obs.sizes(), (c10::IntArrayRef{1000, 2}));
  EXPECT_EQ(a.rewards.sizes(), (c10::IntArrayRef{1000}));
  EXPECT_LE(a.obs.max().item<double>(), 9.0);
  EXPECT_GE(a.obs.min().item<double>(), 0.0);
  // Rows stay consistent across fields, and all 10 show up.
  EXPECT_TRUE(torch::equal(a.rewards, a.obs.select(1, 0) * 10));
  EXPECT_EQ(std::get<0>(at::_unique(a.obs.select(1, 0))).size(0), 10);
  // Errors.
  ReplayBuffer empty(4, 2, 1);
  EXPECT_THROW(empty.sample(2, g1), ArgumentError);
  auto bad = numbered(0, 3);
  bad.actions = torch::zeros({3, 2});
  try {
    buf.add(bad);
    FAIL();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("actions"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ReplayBuffer(0, 2, 1), ArgumentError);
}

// ---------------------------------------------------------------------------
// Trainer
// ---------------------------------------------------------------------------

TEST(SacTrainer, TruncationsAreStoredAsNotTerminatedWithTheirFinalObservation) {
  // Hopper with 3-step episodes: every episode is cut by the time limit, none terminates.
  SacTrainerConfig c;
  c.env = "Hopper-v5";
  c.env_options = {{"max_episode_steps", 3}};
  c.n_envs = 2;
  c.steps_per_iteration = 9;
  c.val_freq = 0;
  c.sac.learning_starts = 1000;  // random actions only, no updates
  c.sac.buffer_size = 100;
  c.sac.hidden = {16};
  SacTrainer tr(c);
  auto m = tr.train_iteration();
  EXPECT_EQ(m.env_steps, 18);
  EXPECT_EQ(m.episodes, 6);
  EXPECT_EQ(m.updates, 0);
  EXPECT_TRUE(std::isnan(m.critic_loss));
  EXPECT_FALSE(m.eval);
  const auto& buf = tr.buffer();
  ASSERT_EQ(buf.size(), 18);
  auto all = buf.rows(torch::arange(18, torch::kLong));
  EXPECT_EQ(all.terminated.sum().item<double>(), 0.0);
  EXPECT_LE(all.actions.abs().max().item<double>(), 1.0);
  // Row r = step t·N + env i. Within an episode next_obs is the next row's obs of the same env;
  // at a truncation (t % 3 == 2) it is the final observation, not the reset one.
  for (int64_t t = 0; t + 1 < 9; ++t)
    for (int64_t i = 0; i < 2; ++i) {
      const bool same = torch::equal(all.next_obs[t * 2 + i], all.obs[(t + 1) * 2 + i]);
      EXPECT_EQ(same, t % 3 != 2) << "t " << t << " env " << i;
    }
}

TEST(SacTrainer, SeededRunsAreIdentical) {
  auto run = [](uint64_t seed) {
    SacTrainer tr(tiny_pendulum(seed));
    std::vector<SacIterationMetrics> ms;
    for (int k = 0; k < 2; ++k) ms.push_back(tr.train_iteration());
    return std::make_pair(ms, clone_params(*tr.policy().actor()));
  };
  auto [m1, p1] = run(4);
  auto [m2, p2] = run(4);
  auto [m3, p3] = run(5);
  ASSERT_EQ(m1.size(), 2u);
  // Random actions for the first 50 vec steps (100 env steps); from the step that reaches
  // learning_starts on, utd · N = 2 updates per vec step: 151 steps × 2.
  EXPECT_EQ(m1[0].updates, 51 * 2);
  EXPECT_EQ(m1[1].updates, 151 * 2);
  for (size_t k = 0; k < m1.size(); ++k) {
    EXPECT_EQ(m1[k].env_steps, m2[k].env_steps);
    EXPECT_EQ(m1[k].updates, m2[k].updates);
    EXPECT_EQ(m1[k].reward_per_step, m2[k].reward_per_step);
    if (!std::isnan(m1[k].critic_loss)) EXPECT_EQ(m1[k].critic_loss, m2[k].critic_loss);
    if (!std::isnan(m1[k].episode_return)) EXPECT_EQ(m1[k].episode_return, m2[k].episode_return);
    EXPECT_EQ(m1[k].alpha, m2[k].alpha);
  }
  EXPECT_TRUE(m1[1].eval);
  EXPECT_EQ(m1[1].eval_return, m2[1].eval_return);
  bool differs = false;
  for (size_t i = 0; i < p1.size(); ++i) {
    EXPECT_TRUE(torch::equal(p1[i], p2[i]));
    differs = differs || !torch::equal(p1[i], p3[i]);
  }
  EXPECT_TRUE(differs);
}

TEST(SacTrainer, PolicyActionsInEnvUnitsAndSaveLoad) {
  auto c = tiny_pendulum(0);
  SacTrainer tr(c);
  tr.train_iteration();
  auto gen = make_generator(0);
  auto obs = torch::randn({6, tr.obs_dim()}, gen);
  auto a = tr.policy_action(obs, true);
  ASSERT_EQ(a.sizes(), (c10::IntArrayRef{6, 1}));
  ASSERT_EQ(a.scalar_type(), torch::kDouble);
  // InvertedPendulum's control range is [−3, 3]: env units are 3 · tanh(mean).
  auto [mean, log_std] = tr.policy().actor()->forward(obs);
  EXPECT_TRUE(torch::allclose(a, 3.0 * torch::tanh(mean).to(torch::kDouble), 1e-6, 1e-6));
  auto s = tr.policy_action(obs, false);
  EXPECT_LE(s.abs().max().item<double>(), 3.0);
  EXPECT_FALSE(torch::equal(s, a));
  const auto path = (std::filesystem::temp_directory_path() / "rldt_sac_policy_test.pt").string();
  tr.save_policy(path);
  auto p = SacPolicy::load(path);
  std::remove(path.c_str());
  EXPECT_EQ(p->env_name, "InvertedPendulum-v5");
  EXPECT_EQ(p->action_low(), std::vector<double>({-3.0}));
  EXPECT_TRUE(torch::equal(p->env_action(obs, gen, true), a));
  EXPECT_THROW(tr.policy_action(torch::zeros({2, 3})), ArgumentError);
  EXPECT_THROW(SacPolicy::load("/no/such/sac_policy.pt"), std::exception);
}

TEST(SacTrainer, LearnsInvertedPendulum) {
  // SAC defaults (lr 3e-4, τ 0.005, UTD 1, automatic α with H̄ = −d) on smaller nets (64-64,
  // batch 64) with α starting at 0.2 instead of 1 and 1000 random steps instead of 5000, to fit
  // the 2-minute budget on a loaded 2-core machine. Measured (docs/baselines.md): random play
  // returns ~5; seeds 0 and 1 first evaluate >= 100 after 3000 env steps (115, 128), then hover
  // at 60-110 while α decays. The test needs one evaluation >= 100 within 8000 env steps.
  SacTrainerConfig c;
  c.env = "InvertedPendulum-v5";
  c.n_envs = 1;
  c.seed = 0;
  c.steps_per_iteration = 1000;
  c.val_freq = 1;
  c.eval_episodes = 5;
  c.sac.hidden = {64, 64};
  c.sac.batch_size = 64;
  c.sac.init_alpha = 0.2;
  c.sac.learning_starts = 1000;
  SacTrainer tr(c);
  const auto t0 = std::chrono::steady_clock::now();
  const double before = tr.evaluate(5).mean_return;
  double best = 0;
  int64_t k = 0;
  for (; k < 8 && best < 100.0; ++k) {
    auto m = tr.train_iteration();
    best = std::max(best, m.eval_return);
    std::printf("iteration %lld: env steps %lld, eval return %.1f, train return %.1f, alpha %.3f, %.1f s\n",
                static_cast<long long>(k), static_cast<long long>(m.env_steps), m.eval_return, m.episode_return,
                m.alpha, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  EXPECT_LT(before, 30.0);
  EXPECT_GE(best, 100.0) << "after " << k << " iterations";
}
