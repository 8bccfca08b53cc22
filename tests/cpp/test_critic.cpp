// Critic ensemble, TD targets and reward scaling (ALGORITHM.md §2).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <thread>
#include <vector>

#include "expect_error.hpp"
#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/reward_scaler.hpp"
#include "rldt/algo/td_targets.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {
torch::Tensor row(std::vector<float> v) { return torch::tensor(v).view({1, -1}); }
}  // namespace

TEST(TdTargets, LambdaByHand) {
  // One trajectory of T = 5: terminated at t = 1, truncated at t = 3, segment ends at t = 4.
  const double g = 0.9, l = 0.5;
  auto r = row({1, 2, 3, 4, 5});
  auto v = row({10, 20, 30, 40, 50});  // V(s') for each step (final obs where the episode ended)
  auto term = row({0, 1, 0, 0, 0});
  auto trunc = row({0, 0, 0, 1, 0});
  auto G = td_lambda_targets(r, v, term, trunc, g, l);
  // Backwards: t=4 segment end: 5 + .9·50 = 50
  //            t=3 truncated: 4 + .9·40 = 40 (bootstrap, no λ-mixing across episodes)
  //            t=2: 3 + .9·(.5·30 + .5·40) = 34.5
  //            t=1 terminated: 2
  //            t=0: 1 + .9·(.5·10 + .5·2) = 6.4
  auto expect = row({6.4f, 2.0f, 34.5f, 40.0f, 50.0f});
  EXPECT_TRUE(torch::allclose(G, expect, 1e-5, 1e-5)) << G;
  // Reference behaviour: truncation treated as termination.
  auto Gr = td_lambda_targets(r, v, term, trunc, g, l, /*bootstrap_truncated=*/false);
  // t=3 → 4; t=2 → 3 + .9·(.5·30 + .5·4) = 18.3
  auto expect_r = row({6.4f, 2.0f, 18.3f, 4.0f, 50.0f});
  EXPECT_TRUE(torch::allclose(Gr, expect_r, 1e-5, 1e-5)) << Gr;
  // λ = 0 is one-step TD everywhere.
  auto G0 = td_lambda_targets(r, v, term, trunc, g, 0.0);
  EXPECT_TRUE(torch::allclose(G0, row({10.0f, 2.0f, 30.0f, 40.0f, 50.0f}), 1e-5, 1e-5)) << G0;
  // Bool masks work the same; rows are independent.
  auto Gb = td_lambda_targets(torch::cat({r, r}), torch::cat({v, v}), torch::cat({term, term}).to(torch::kBool),
                              torch::cat({trunc, trunc}).to(torch::kBool), g, l);
  EXPECT_TRUE(torch::allclose(Gb, torch::cat({expect, expect}), 1e-5, 1e-5));
}

TEST(TdTargets, NStepByHand) {
  const double g = 0.5;
  auto r = row({1, 2, 3, 4, 5});
  auto v = row({10, 20, 30, 40, 50});
  auto term = row({0, 1, 0, 0, 0});
  auto trunc = row({0, 0, 0, 1, 0});
  auto G = nstep_targets(r, v, term, trunc, g, 3);
  // t=0: 1 + .5·2 (terminated at 1, no bootstrap) = 2
  // t=1: 2
  // t=2: 3 + .5·4 + .25·40 (truncated at 3: bootstrap V'=40 at γ²) = 15
  // t=3: 4 + .5·40 = 24
  // t=4: 5 + .5·50 = 30 (segment end)
  EXPECT_TRUE(torch::allclose(G, row({2, 2, 15, 24, 30}), 1e-5, 1e-5)) << G;
  // No done: t=0 with n=3 → 1 + .5·2 + .25·3 + .125·30 = 6.5
  auto z = torch::zeros({1, 5});
  auto G2 = nstep_targets(r, v, z, z, g, 3);
  EXPECT_NEAR(G2[0][0].item<double>(), 6.5, 1e-5);
  // n = 1 equals TD(0).
  EXPECT_TRUE(torch::allclose(nstep_targets(r, v, term, trunc, g, 1), td_lambda_targets(r, v, term, trunc, g, 0.0)));
  // λ = 1 with no dones equals the n-step return with n = T (Monte Carlo + bootstrap at the end).
  EXPECT_TRUE(torch::allclose(td_lambda_targets(r, v, z, z, g, 1.0), nstep_targets(r, v, z, z, g, 5), 1e-5, 1e-5));
}

TEST(TdTargets, BadInputNamesTheArgument) {
  auto r = torch::zeros({2, 3});
  try {
    td_lambda_targets(r, torch::zeros({2, 4}), r, r, 0.9, 0.5);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("next_values"), std::string::npos) << e.what();
  }
  try {
    td_lambda_targets(r, r, r + 0.5, r, 0.9, 0.5);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("terminated"), std::string::npos) << e.what();
  }
  auto nanr = r.clone();
  nanr[1][2] = std::numeric_limits<float>::quiet_NaN();
  try {
    td_lambda_targets(nanr, r, r, r, 0.9, 0.5);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("rewards"), std::string::npos) << e.what();
  }
  EXPECT_THROW(td_lambda_targets(r, r, r, r, 0.9, 1.5), ArgumentError);
}

namespace {
CriticConfig small_critic() {
  CriticConfig c;
  c.obs_dim = 3;
  c.action_dim = 2;
  c.act_steps = 2;
  c.hidden = {32, 32};
  return c;
}
}  // namespace

TEST(CriticEnsemble, InitPolyakAndReductions) {
  CriticEnsemble q(small_critic(), 1);
  auto params = q.online()->named_parameters();
  EXPECT_NEAR(params["w0"].std().item<double>(), 0.1, 0.01);
  EXPECT_EQ(params["b0"].abs().max().item<double>(), 0.0);
  auto gen = make_generator(1);
  auto obs = torch::randn({10, 3}, gen), chunk = torch::randn({10, 4, 2}, gen);  // H = 4 > act_steps = 2
  auto all = q.q(obs, chunk);
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_TRUE(torch::allclose(q.q_min(obs, chunk), std::get<0>(all.min(0))));
  EXPECT_TRUE(torch::allclose(q.q_mean(obs, chunk), all.mean(0)));
  // Only the executed steps matter.
  auto other = chunk.clone();
  other.narrow(1, 2, 2).normal_(0, 5, gen);
  EXPECT_TRUE(torch::equal(q.q(obs, other), all));
  // Members differ (independent init).
  EXPECT_FALSE(torch::allclose(all[0], all[1]));

  // Polyak: after one update, target = m·old_target + (1 − m)·online.
  auto old_target = q.target()->named_parameters()["w1"].clone();
  auto obs_t = torch::randn({4, 5, 3}, gen), ch_t = torch::randn({4, 5, 2, 2}, gen), y = torch::randn({4, 5}, gen);
  q.update(obs_t, ch_t, y);
  auto online = q.online()->named_parameters()["w1"];
  auto target = q.target()->named_parameters()["w1"];
  EXPECT_TRUE(torch::allclose(target, 0.995 * old_target + 0.005 * online, 1e-6, 1e-7));
  EXPECT_FALSE(torch::equal(target, online));
}

TEST(CriticEnsemble, TrajectorySplitLoss) {
  auto cfg = small_critic();
  cfg.ensemble_size = 3;
  CriticEnsemble q(cfg, 2);
  auto gen = make_generator(2);
  const int64_t n = 7, T = 4;  // members get trajectories {0,3,6}, {1,4}, {2,5}
  auto obs = torch::randn({n, T, 3}, gen), ch = torch::randn({n, T, 2, 2}, gen), y = torch::randn({n, T}, gen);
  auto loss = q.loss(obs, ch, y).item<double>();
  torch::NoGradGuard ng;
  auto pred = q.q(obs.view({n * T, 3}), ch.view({n * T, 2, 2})).view({3, n, T});  // every member on everything
  double expect = 0;
  for (int m = 0; m < 3; ++m) {
    double s = 0;
    int cnt = 0;
    for (int i = m; i < n; i += 3) {
      s += (pred[m][i] - y[i]).pow(2).sum().item<double>();
      cnt += T;
    }
    expect += s / cnt;
  }
  EXPECT_NEAR(loss, expect, 1e-4 * std::abs(expect));
  // Changing trajectory 1's targets changes only member 1's share of the loss.
  auto y2 = y.clone();
  y2[1] += 10.0;
  torch::AutoGradMode on(true);
  q.online()->zero_grad();
  q.loss(obs, ch, y).backward();
  auto g_a = q.online()->named_parameters()["w0"].grad().clone();
  q.online()->zero_grad();
  q.loss(obs, ch, y2).backward();
  auto g_b = q.online()->named_parameters()["w0"].grad().clone();
  EXPECT_TRUE(torch::allclose(g_a[0], g_b[0]));
  EXPECT_TRUE(torch::allclose(g_a[2], g_b[2]));
  EXPECT_FALSE(torch::allclose(g_a[1], g_b[1]));
  EXPECT_THROW(q.loss(obs.narrow(0, 0, 2), ch.narrow(0, 0, 2), y.narrow(0, 0, 2)), ArgumentError);  // n < M
}

TEST(CriticEnsemble, ActionGradientAndBootstrap) {
  CriticEnsemble q(small_critic(), 3);
  auto gen = make_generator(3);
  auto obs = torch::randn({5, 3}, gen), a = torch::randn({5, 3, 2}, gen);  // H = 3, act_steps = 2
  auto g = q.action_grad(obs, a);
  ASSERT_EQ(g.sizes(), a.sizes());
  EXPECT_EQ(g.select(1, 2).abs().max().item<double>(), 0.0);  // not executed → no gradient
  for (auto& p : q.online()->parameters()) EXPECT_FALSE(p.grad().defined() && p.grad().abs().max().item<double>() > 0);
  // Central differences of the member mean, in double precision on a copy of the nets.
  const double eps = 1e-3;
  for (auto [i, s, j] : {std::tuple<int, int, int>{0, 0, 0}, {3, 1, 1}, {4, 0, 1}}) {
    auto ap = a.clone(), am = a.clone();
    ap[i][s][j] += eps;
    am[i][s][j] -= eps;
    torch::NoGradGuard ng;
    double fd = (q.q_mean(obs, ap)[i].item<double>() - q.q_mean(obs, am)[i].item<double>()) / (2 * eps);
    EXPECT_NEAR(g[i][s][j].item<double>(), fd, 2e-3 * std::max(1.0, std::abs(fd)));
  }
  auto g1 = q.action_grad(obs, a, 1);
  auto g0 = q.action_grad(obs, a, 0);
  EXPECT_TRUE(torch::allclose(0.5 * (g0 + g1), g, 1e-5, 1e-6));
  // Min over members: each row takes the gradient of the member whose Q is lower there.
  auto gmin = q.action_grad_min(obs, a);
  ASSERT_EQ(gmin.sizes(), a.sizes());
  torch::Tensor qs;
  {
    torch::NoGradGuard ng;
    qs = q.q(obs, a);  // (2, 5)
  }
  auto lower0 = qs[0].lt(qs[1]).view({5, 1, 1});
  ASSERT_GT(lower0.sum().item<int64_t>(), 0);  // both branches are exercised with this seed
  ASSERT_LT(lower0.sum().item<int64_t>(), 5);
  EXPECT_TRUE(torch::allclose(gmin, torch::where(lower0, g0, g1), 1e-5, 1e-6));

  // Bootstrap: mean over samples of min over target members, clipped.
  auto samples = torch::randn({5, 2, 2, 2}, gen);
  auto v = q.bootstrap_value(obs, samples);
  auto m0 = std::get<0>(q.q_target(obs, samples.select(1, 0)).min(0));
  auto m1 = std::get<0>(q.q_target(obs, samples.select(1, 1)).min(0));
  EXPECT_TRUE(torch::allclose(v, 0.5 * (m0 + m1), 1e-5, 1e-6));
  auto cfg = small_critic();
  cfg.q_target_min = 0.0;
  cfg.q_target_max = 0.0;
  CriticEnsemble clipped(cfg, 3);
  EXPECT_EQ(clipped.bootstrap_value(obs, samples).abs().max().item<double>(), 0.0);
}

TEST(CriticEnsemble, FitsTargetsAndSavesLoads) {
  CriticEnsemble q(small_critic(), 4);
  auto gen = make_generator(4);
  auto obs = torch::randn({8, 16, 3}, gen), ch = torch::randn({8, 16, 2, 2}, gen);
  auto y = obs.select(2, 0) - ch.select(2, 0).select(2, 1);  // a simple function to fit
  double first = q.update(obs, ch, y), last = first;
  for (int i = 0; i < 300; ++i) last = q.update(obs, ch, y);
  EXPECT_LT(last, 0.05 * first) << first << " → " << last;
  const std::string path = ::testing::TempDir() + "rldt_critic.pt";
  q.save(path);
  auto r = CriticEnsemble::load(path);
  auto o = obs.view({-1, 3}), c = ch.view({-1, 2, 2});
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(r.q(o, c), q.q(o, c)));
  EXPECT_TRUE(torch::equal(r.q_target(o, c), q.q_target(o, c)));
  std::remove(path.c_str());
}

TEST(CriticEnsemble, SetLrScalesTheStep) {
  // Adam's first step moves every parameter by ~lr·sign(grad) (|m̂/√v̂| = 1), so two critics that
  // start equal and take one step on the same data move by amounts in the ratio of their lrs.
  auto gen = make_generator(5);
  auto obs = torch::randn({4, 6, 3}, gen), ch = torch::randn({4, 6, 2, 2}, gen), y = torch::randn({4, 6}, gen);
  CriticEnsemble a(small_critic(), 9), b(small_critic(), 9);
  EXPECT_EQ(a.lr(), small_critic().lr);
  b.set_lr(0.25 * a.lr());
  EXPECT_DOUBLE_EQ(b.lr(), 0.25 * small_critic().lr);
  EXPECT_EQ(b.config().lr, small_critic().lr) << "the config keeps the starting lr";
  const auto w0 = a.online()->parameters()[0].clone();
  a.update(obs, ch, y);
  b.update(obs, ch, y);
  const auto da = (a.online()->parameters()[0] - w0).abs().sum().item<double>();
  const auto db = (b.online()->parameters()[0] - w0).abs().sum().item<double>();
  EXPECT_GT(da, 0.0);
  EXPECT_NEAR(db / da, 0.25, 0.01);
  EXPECT_THROW(b.set_lr(0.0), ArgumentError);
  EXPECT_THROW(b.set_lr(std::nan("")), ArgumentError);
  EXPECT_DOUBLE_EQ(b.lr(), 0.25 * small_critic().lr) << "a refused lr changes nothing";
}

TEST(CriticEnsemble, GroupedUpdateMatchesTheBatchedOne) {
  // critic.update_groups: members in groups on their own threads (M = 2 in 2 groups; M = 3 in 2
  // groups of 1 and 2 members). Same losses, gradients, bootstrap values and weights as the batched
  // update up to the matmuls' rounding; the gradients stay each member's own.
  for (int64_t M : {2, 3}) {
    auto cfg = small_critic();
    cfg.ensemble_size = M;
    cfg.weight_decay = 1e-3;
    CriticEnsemble batched(cfg, 5);
    cfg.update_groups = 2;
    CriticEnsemble grouped(cfg, 5);
    auto gen = make_generator(8);
    const int64_t n = 7, T = 5;  // 7 trajectories: unequal member splits, padded with weight 0
    for (int step = 0; step < 3; ++step) {
      auto obs = torch::randn({n, T, cfg.obs_dim}, gen);
      auto chunks = torch::randn({n, T, cfg.act_steps, cfg.action_dim}, gen);
      auto targets = torch::randn({n, T}, gen);
      const double l1 = batched.update(obs, chunks, targets), l2 = grouped.update(obs, chunks, targets);
      EXPECT_NEAR(l1, l2, 1e-5 * (1.0 + std::abs(l1))) << "M=" << M << " step " << step;
      auto p1 = batched.online()->parameters(), p2 = grouped.online()->parameters();
      for (size_t i = 0; i < p1.size(); ++i) {
        const double scale = p1[i].grad().abs().max().item<double>();
        EXPECT_LE((p1[i].grad() - p2[i].grad()).abs().max().item<double>(), 1e-4 * scale + 1e-9)
            << "M=" << M << " parameter " << i;
        EXPECT_TRUE(torch::allclose(p1[i], p2[i], 0, 1e-5)) << "M=" << M << " parameter " << i;
      }
      auto t1 = batched.target()->parameters(), t2 = grouped.target()->parameters();
      for (size_t i = 0; i < t1.size(); ++i) EXPECT_TRUE(torch::allclose(t1[i], t2[i], 0, 1e-5));
      auto bobs = torch::randn({6, cfg.obs_dim}, gen);
      auto bact = torch::randn({6, 3, cfg.act_steps, cfg.action_dim}, gen);
      EXPECT_TRUE(
          torch::allclose(batched.bootstrap_value(bobs, bact), grouped.bootstrap_value(bobs, bact), 1e-5, 1e-5));
    }
  }
}

TEST(CriticEnsemble, GroupedUpdateIsDeterministicAndSharesItsPoolSafely) {
  auto cfg = small_critic();
  cfg.update_groups = 2;
  auto run = [&] {
    CriticEnsemble c(cfg, 3);
    auto gen = make_generator(4);
    for (int i = 0; i < 3; ++i)
      c.update(torch::randn({4, 6, cfg.obs_dim}, gen), torch::randn({4, 6, cfg.act_steps, cfg.action_dim}, gen),
               torch::randn({4, 6}, gen));
    return c.online()->parameters();
  };
  auto a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  // Concurrent bootstrap values (Python allows them under a read lock): a call that finds the pool
  // busy runs its groups itself, with the same result.
  CriticEnsemble c(cfg, 3);
  auto gen = make_generator(5);
  auto obs = torch::randn({64, cfg.obs_dim}, gen);
  auto act = torch::randn({64, 2, cfg.act_steps, cfg.action_dim}, gen);
  const auto expect = c.bootstrap_value(obs, act);
  std::vector<torch::Tensor> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 20; ++r) got[t] = c.bootstrap_value(obs, act);
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_TRUE(torch::equal(g, expect));
  CriticConfig bad = small_critic();
  bad.update_groups = 0;
  expect_argument_error([&] { bad.validate(); }, "update_groups");
}

TEST(RewardScaler, FixedAndEma) {
  RewardScaler fixed(2.0);
  fixed.update(torch::ones({3}));
  EXPECT_EQ(fixed.scale(), 2.0);
  RewardScaler ema(-1.0, 0.1);
  EXPECT_EQ(ema.scale(), 1.0);    // uninitialised
  ema.update(torch::zeros({4}));  // mean |r| < 1e-8: skipped
  EXPECT_EQ(ema.ema(), -1.0);
  ema.update(torch::tensor({-2.0f, 2.0f}));  // cold start: ema = 2
  EXPECT_NEAR(ema.ema(), 2.0, 1e-9);
  ema.update(torch::tensor({4.0f, -4.0f}));  // 0.9·2 + 0.1·4 = 2.2
  EXPECT_NEAR(ema.ema(), 2.2, 1e-6);
  EXPECT_NEAR(ema.scale(), 1.0 / 2.2, 1e-6);
  EXPECT_TRUE(torch::allclose(ema.apply(torch::tensor({2.2f})), torch::tensor({1.0f})));
  EXPECT_THROW(RewardScaler(-1.0, 0.0), ArgumentError);
}
