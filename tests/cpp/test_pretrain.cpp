// Pretraining: the chunking rule, learning on a synthetic dataset whose action chunks are a
// deterministic function of the state, seeded determinism; recording datasets from a policy and
// the record → save → load → pretrain round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "rldt/data/dataset.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/envs/vec_env.hpp"
#include "rldt/train/pretrain.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "rldt_" + std::to_string(::getpid()) + "_" + name;
}

// Episodes of `len` steps: s_{t+1} = 0.8 s_t + 0.2 a_t with a_t = sin(2 s_t + 0.5) (O = d = 2), so
// a whole chunk is a deterministic function of its first state. Obs are scaled to [-3, 7] and
// actions to [0, 2] so that the normaliser matters.
Dataset synthetic(int episodes, int len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Dataset d;
  d.obs_dim = 2;
  d.action_dim = 2;
  for (int e = 0; e < episodes; ++e) {
    float s[2] = {u(rng), u(rng)};
    for (int t = 0; t < len; ++t) {
      float a[2];
      for (int j = 0; j < 2; ++j) a[j] = std::sin(2.0f * s[1 - j] + 0.5f * (j + 1));
      for (int j = 0; j < 2; ++j) {
        d.observations.push_back(2.0f + 5.0f * s[j]);
        d.actions.push_back(1.0f + a[j]);
      }
      d.rewards.push_back(0.0f);
      d.terminals.push_back(0);
      d.timeouts.push_back(t == len - 1);
      for (int j = 0; j < 2; ++j) s[j] = 0.8f * s[j] + 0.2f * a[j];
    }
  }
  return d;
}

FlowPolicyConfig small_policy() {
  FlowPolicyConfig c;
  c.horizon_steps = 4;
  c.denoising_steps = 4;
  c.mlp_dims = {64, 64, 64};
  return c;
}

}  // namespace

TEST(Pretrain, ChunksStayInsideEpisodes) {
  const std::vector<std::pair<int64_t, int64_t>> eps = {{0, 5}, {5, 7}, {7, 8}};
  auto [start, last] = chunk_starts(eps, 3, /*pad=*/false);
  EXPECT_TRUE(torch::equal(start, torch::tensor({0, 1, 2}, torch::kLong)));  // short episodes give none
  EXPECT_TRUE(torch::equal(last, torch::tensor({4, 4, 4}, torch::kLong)));
  std::tie(start, last) = chunk_starts(eps, 3, /*pad=*/true);
  EXPECT_TRUE(torch::equal(start, torch::arange(8, torch::kLong)));
  EXPECT_TRUE(torch::equal(last, torch::tensor({4, 4, 4, 4, 4, 6, 6, 7}, torch::kLong)));
}

TEST(Pretrain, LearnsDeterministicChunks) {
  const auto data = synthetic(60, 25, 1);
  PretrainConfig cfg;
  cfg.batch_size = 128;
  cfg.n_updates = 1500;
  cfg.log_freq = 500;
  cfg.val_fraction = 0.2;
  cfg.seed = 3;
  std::vector<PretrainLog> logs;
  PretrainCallbacks cb;
  cb.on_log = [&](const PretrainLog& l) {
    logs.push_back(l);
    return true;
  };
  const auto r = pretrain(data, cfg, small_policy(), cb);
  ASSERT_EQ(logs.size(), 3u);
  EXPECT_EQ(r.val_episodes, 12);
  EXPECT_EQ(r.train_episodes, 48);
  EXPECT_EQ(r.train_chunks, 48 * (25 - 3));
  // The normaliser holds the data's min/max.
  const auto& n = r.policy->normalizer();
  ASSERT_TRUE(n.has_obs() && n.has_action());
  EXPECT_GT(n.obs->low()[0], -3.01);
  EXPECT_LT(n.obs->high()[0], 7.01);
  EXPECT_GE(n.action->low()[0], 0.0);
  EXPECT_LE(n.action->high()[0], 2.0);
  // Deterministic chunks of the pretrained actor on held-out episodes vs the data, in normalised
  // units, compared with the spread of those actions.
  const double spread = 1.0 / 3.0;  // variance of a uniform on [-1, 1]; the data's is of that order
  EXPECT_LT(r.last.val_action_mse, 0.05 * spread) << "first " << logs.front().val_action_mse;
  EXPECT_LT(r.last.val_loss, logs.front().val_loss);
  // The same check by hand, through the public API: raw obs → normaliser → actor → env units.
  auto gen = make_generator(0);
  const auto obs = torch::from_blob(const_cast<float*>(data.observations.data()), {data.size(), 2}).clone();
  const auto act = torch::from_blob(const_cast<float*>(data.actions.data()), {data.size(), 2}).clone();
  auto first = torch::arange(0, data.size(), 25, torch::kLong);  // first state of every episode
  auto a = r.policy->act(n.normalize_obs(obs.index_select(0, first)), gen, /*deterministic=*/true);
  auto env_a = n.action_to_env(a, BoxSpec{});
  auto target = act.index_select(0, first);  // first action of each chunk, env units ([0, 2])
  const double err = (env_a.select(1, 0) - target).pow(2).mean().item<double>();
  const double var = target.var().item<double>();
  EXPECT_LT(err, 0.1 * var) << "error " << err << " vs variance " << var;
  std::cout << "val_action_mse " << logs.front().val_action_mse << " -> " << r.last.val_action_mse
            << "; first-action error " << err << " (env units) vs data variance " << var << "\n";
}

TEST(Pretrain, SeededAndDeterministic) {
  const auto data = synthetic(10, 12, 2);
  PretrainConfig cfg;
  cfg.batch_size = 32;
  cfg.n_updates = 30;
  cfg.log_freq = 10;
  auto policy_cfg = small_policy();
  policy_cfg.mlp_dims = {32, 32, 32};
  auto a = pretrain(data, cfg, policy_cfg), b = pretrain(data, cfg, policy_cfg);
  cfg.seed = 1;
  auto c = pretrain(data, cfg, policy_cfg);
  EXPECT_EQ(a.last.train_loss, b.last.train_loss);
  EXPECT_EQ(a.last.val_loss, b.last.val_loss);
  EXPECT_NE(a.last.train_loss, c.last.train_loss);
  auto pa = a.policy->actor()->parameters(), pb = b.policy->actor()->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  // The exported policy holds the EMA weights everywhere.
  auto pe = a.policy->ema()->parameters(), pr = a.policy->reference()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pe[i]) && torch::equal(pa[i], pr[i]));
}

TEST(Pretrain, StopsEarlyAndRejectsBadInput) {
  const auto data = synthetic(4, 10, 3);
  PretrainConfig cfg;
  cfg.batch_size = 16;
  cfg.n_updates = 100;
  cfg.log_freq = 5;
  PretrainCallbacks cb;
  cb.on_log = [](const PretrainLog& l) { return l.update < 10; };
  auto r = pretrain(data, cfg, small_policy(), cb);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.last.update, 10);
  cfg.batch_size = 0;
  EXPECT_THROW(pretrain(data, cfg, small_policy()), ArgumentError);
  cfg.batch_size = 16;
  auto policy_cfg = small_policy();
  policy_cfg.horizon_steps = 11;  // longer than every episode
  try {
    pretrain(data, cfg, policy_cfg);
    FAIL() << "expected an error";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("no chunk of horizon_steps = 11"), std::string::npos) << e.what();
  }
  cfg.pad_chunks = true;  // then every row starts a (padded) chunk
  cfg.n_updates = 2;
  EXPECT_NO_THROW(pretrain(data, cfg, policy_cfg));
}

TEST(Record, EveryEnvStepIsARow) {
  FlowPolicyConfig pc;
  pc.obs_dim = 4;  // InvertedPendulum-v5
  pc.action_dim = 1;
  pc.horizon_steps = 4;
  pc.denoising_steps = 2;
  pc.mlp_dims = {16, 16, 16};
  FlowPolicy policy(pc, 0);
  RecordConfig rc;
  rc.env = "InvertedPendulum-v5";
  rc.env_options = {{"max_episode_steps", 30}};
  rc.n_envs = 3;
  rc.act_steps = 3;
  rc.noise = 0.3;
  rc.steps = 200;
  auto d = record_dataset(policy, rc);
  ASSERT_EQ(d.size(), 200);
  EXPECT_TRUE(d.has_next_observations());
  const auto box = make_env("InvertedPendulum-v5")->spec().action;
  for (float a : d.actions) EXPECT_TRUE(a >= box.low[0] && a <= box.high[0]);
  // Within an episode the next observation is the following row's observation; every episode
  // ends with a flag (the budget cut marks timeouts) and lasts at most 30 steps.
  const auto eps = d.episodes();
  for (const auto& [b, e] : eps) {
    EXPECT_LE(e - b, 30);
    EXPECT_TRUE(d.terminals[e - 1] || d.timeouts[e - 1]);
    for (int64_t i = b; i + 1 < e; ++i)
      for (int j = 0; j < 4; ++j) ASSERT_EQ(d.next_observations[i * 4 + j], d.observations[(i + 1) * 4 + j]);
  }
  // Same seed, same data.
  auto again = record_dataset(policy, rc);
  EXPECT_EQ(again.actions, d.actions);
  EXPECT_EQ(again.observations, d.observations);
  // Episodes mode: exactly that many finished episodes.
  rc.steps = 0;
  rc.episodes = 4;
  auto e4 = record_dataset(policy, rc);
  EXPECT_EQ(e4.episodes().size(), 4u);
  rc.steps = 10;  // both set
  EXPECT_THROW(record_dataset(policy, rc), ArgumentError);
}

TEST(Record, RecordSaveLoadPretrainRoundTrip) {
  FlowPolicyConfig pc;
  pc.obs_dim = 4;
  pc.action_dim = 1;
  pc.horizon_steps = 2;
  pc.denoising_steps = 2;
  pc.mlp_dims = {16, 16, 16};
  FlowPolicy policy(pc, 5);
  RecordConfig rc;
  rc.env = "InvertedPendulum-v5";
  rc.n_envs = 2;
  rc.act_steps = 2;
  rc.episodes = 6;
  rc.noise = 0.5;
  const auto d = record_dataset(policy, rc);
  const std::string path = temp_path("recorded.npz");
  save_dataset_npz(d, path);
  const auto back = load_dataset(path);
  EXPECT_EQ(back.observations, d.observations);
  EXPECT_EQ(back.terminals, d.terminals);
  PretrainConfig cfg;
  cfg.dataset = path;
  cfg.batch_size = 16;
  cfg.n_updates = 20;
  cfg.log_freq = 10;
  pc.mlp_dims = {32, 32, 32};
  auto r = pretrain(back, cfg, pc);
  EXPECT_TRUE(std::isfinite(r.last.train_loss));
  EXPECT_TRUE(r.policy->normalizer().has_obs());
  const std::string out = temp_path("pretrained.pt");
  r.policy->save(out);
  auto loaded = FlowPolicy::load(out);
  EXPECT_EQ(loaded.normalizer().obs->low(), r.policy->normalizer().obs->low());
  // The recorded policy's own normaliser is applied when recording: a policy with observation
  // bounds far from the data sees obs mapped through them (no crash, different actions).
  PolicyNormalizer n;
  n.obs = MinMaxNormalizer({-100, -100, -100, -100}, {100, 100, 100, 100});
  loaded.set_normalizer(n);
  rc.episodes = 1;
  EXPECT_NO_THROW(record_dataset(loaded, rc));
  std::remove(path.c_str());
  std::remove(out.c_str());
}

TEST(TrainerWithNormalizer, SeesNormalisedObsAndActsInTheDatasetRange) {
  RldtTrainerConfig c;
  c.env = "InvertedPendulum-v5";  // obs 4, action box [-3, 3]
  c.n_envs = 2;
  c.env_threads = 1;
  c.n_steps = 5;
  c.act_steps = 1;
  c.val_freq = 1;  // evaluation iterations only: a rollout, no updates
  c.policy.horizon_steps = 2;
  c.policy.denoising_steps = 2;
  c.policy.mlp_dims = {16, 16, 16};
  c.critic.hidden = {16, 16};
  c.exploration.min_extrp_step = 1;
  FlowPolicyConfig pc = c.policy;
  pc.obs_dim = 4;
  pc.action_dim = 1;
  auto policy = std::make_shared<FlowPolicy>(pc, 0);
  PolicyNormalizer n;
  n.obs = MinMaxNormalizer({-0.05, -0.05, -0.5, -0.5}, {0.05, 0.05, 0.5, 0.5});
  n.action = MinMaxNormalizer({-0.5}, {0.5});
  policy->set_normalizer(n);
  RldtTrainer tr(c, policy);
  tr.train_iteration();
  // The stored states (what actor and critic see) are the env's observations normalised.
  VecEnv ref(c.env, 2, 1, c.env_options);
  const auto raw = torch::tensor(ref.reset(c.seed).obs, torch::kDouble).view({2, 4}).to(torch::kFloat);
  const auto seen = tr.last_rollout().obs.select(1, 0);
  EXPECT_TRUE(torch::allclose(seen, n.normalize_obs(raw))) << seen << raw;
  EXPECT_FALSE(torch::allclose(seen, raw));
  // Env actions span the dataset's action range [-0.5, 0.5], not the env box [-3, 3].
  auto gen = make_generator(1);
  const auto many = torch::randn({256, 4}) * 0.05;
  auto a = tr.policy_action(many, gen, /*deterministic=*/false);
  EXPECT_LE(a.abs().max().item<double>(), 0.5 + 1e-9);
  // The same weights without the normaliser map onto the env box.
  auto plain = std::make_shared<FlowPolicy>(pc, 0);
  RldtTrainer tr_plain(c, plain);
  auto b = tr_plain.policy_action(many, gen, /*deterministic=*/false);
  EXPECT_GT(b.abs().max().item<double>(), 0.5);
  tr_plain.train_iteration();
  EXPECT_TRUE(torch::allclose(tr_plain.last_rollout().obs.select(1, 0), raw));
}

TEST(Record, SacPolicyActsOneStepAtATimeInsideTheBox) {
  // A SAC actor (rldt sac's policy file) records the same D4RL layout; it plans one action per
  // query, so act_steps must be 1. Deterministic recording is tanh(mean) mapped onto the box.
  SacConfig sc;
  sc.obs_dim = 4;  // InvertedPendulum-v5: action box [-3, 3]
  sc.action_dim = 1;
  sc.hidden = {16, 16};
  const auto box = make_env("InvertedPendulum-v5")->spec().action;
  SacPolicy policy(sc, 0, box.low, box.high);
  RecordConfig rc;
  rc.env = "InvertedPendulum-v5";
  rc.env_options = {{"max_episode_steps", 30}};
  rc.n_envs = 2;
  rc.act_steps = 1;
  rc.steps = 100;
  rc.deterministic = true;
  auto d = record_dataset(policy, rc);
  ASSERT_EQ(d.size(), 100);
  auto gen = make_generator(0);
  for (int64_t i = 0; i < d.size(); ++i) {
    auto obs = torch::from_blob(d.observations.data() + i * 4, {1, 4}, torch::kFloat32).clone();
    auto expect = policy.env_action(obs, gen, true).item<double>();
    ASSERT_NEAR(d.actions[static_cast<size_t>(i)], expect, 1e-5) << "row " << i;
  }
  rc.deterministic = false;
  rc.noise = 0.5;
  auto noisy = record_dataset(policy, rc);
  for (float a : noisy.actions) EXPECT_TRUE(a >= box.low[0] && a <= box.high[0]);
  rc.act_steps = 2;
  try {
    record_dataset(policy, rc);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("act_steps"), std::string::npos) << e.what();
  }
}
