// Flow-matching actor (ALGORITHM.md §1).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "expect_error.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/inference_policy.hpp"
#include "rldt/nn/mlp.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {
FlowPolicyConfig small_config(int64_t obs_dim, int64_t H, int64_t d, int64_t K) {
  FlowPolicyConfig c;
  c.obs_dim = obs_dim;
  c.horizon_steps = H;
  c.action_dim = d;
  c.denoising_steps = K;
  c.mlp_dims = {128, 128, 128};
  return c;
}
}  // namespace

TEST(FlowPolicy, ChainIsAnEulerIntegration) {
  auto cfg = small_config(5, 4, 3, 8);
  FlowPolicy p(cfg, 1);
  auto gen = make_generator(0);
  auto obs = torch::randn({6, 5}, gen);
  auto s = p.sample(obs, gen);
  ASSERT_EQ(s.chain.sizes(), (std::vector<int64_t>{6, 9, 4, 3}));
  ASSERT_EQ(s.actions.sizes(), (std::vector<int64_t>{6, 4, 3}));
  EXPECT_TRUE(torch::equal(s.actions, s.chain.select(1, 8)));
  torch::NoGradGuard ng;
  for (int64_t k = 0; k < 8; ++k) {
    auto t = torch::full({6}, k / 8.0);
    auto v = p.actor()->forward(s.chain.select(1, k), t, obs);
    EXPECT_TRUE(torch::allclose(s.chain.select(1, k + 1), s.chain.select(1, k) + v / 8.0, 1e-5, 1e-6)) << k;
  }
  // Deterministic sampling starts at x_0 = 0 and repeats exactly; act() equals the chain's end.
  auto d1 = p.sample(obs, gen, true), d2 = p.sample(obs, gen, true);
  EXPECT_TRUE(torch::equal(d1.chain.select(1, 0), torch::zeros({6, 4, 3})));
  EXPECT_TRUE(torch::equal(d1.actions, d2.actions));
  EXPECT_TRUE(torch::allclose(p.act(obs, gen, true), d1.actions, 1e-6, 1e-6));
  // Same seed, same samples.
  auto g1 = make_generator(7), g2 = make_generator(7);
  EXPECT_TRUE(torch::equal(p.sample(obs, g1).chain, p.sample(obs, g2).chain));
}

// sample_from(x_0) is sample() with the x_0 given instead of drawn: the same draw gives the same
// chain bit for bit, the given x_0 is not modified, and bad shapes are refused.
TEST(FlowPolicy, SampleFromAGivenStart) {
  auto cfg = small_config(5, 4, 3, 8);
  cfg.final_action_clip = 0.5;
  FlowPolicy p(cfg, 1);
  auto gen = make_generator(0);
  auto obs = torch::randn({6, 5}, gen);
  auto g1 = make_generator(3), g2 = make_generator(3);
  const auto drawn = p.sample(obs, g1);
  const auto x0 = torch::randn({6, 4, 3}, g2);
  const auto x0_copy = x0.clone();
  const auto given = p.sample_from(x0, obs);
  EXPECT_TRUE(torch::equal(given.chain, drawn.chain));
  EXPECT_TRUE(torch::equal(given.actions, drawn.actions));  // clamped like sample()
  EXPECT_LE(given.actions.abs().max().item<float>(), 0.5f);
  EXPECT_TRUE(torch::equal(x0, x0_copy));
  EXPECT_THROW(p.sample_from(torch::zeros({5, 4, 3}), obs), ArgumentError);  // rows differ from obs
  EXPECT_THROW(p.sample_from(torch::zeros({6, 3, 3}), obs), ArgumentError);  // not (B, H, d)
}

TEST(FlowPolicy, FinalClipAndXPred) {
  auto cfg = small_config(2, 2, 2, 4);
  cfg.final_action_clip = 0.01;
  cfg.prediction = "x_pred";
  FlowPolicy p(cfg, 2);
  auto gen = make_generator(1);
  auto obs = torch::randn({5, 2}, gen);
  auto s = p.sample(obs, gen);
  EXPECT_LE(s.actions.abs().max().item<double>(), 0.01 + 1e-7);
  // x_pred: velocity = (x̂ − x)/(1 − t); expected target = x̂.
  auto x = torch::randn({5, 2, 2}, gen);
  auto k = torch::tensor({0, 1, 2, 3, 1}, torch::kLong);
  auto t = k.to(torch::kFloat32) / 4.0;
  torch::NoGradGuard ng;
  auto out = p.actor()->forward(x, t, obs);
  EXPECT_TRUE(torch::allclose(p.expected_target(x, k, obs), out));
  EXPECT_TRUE(torch::allclose(p.velocity_from_output(out, x, t), (out - x) / (1 - t).view({-1, 1, 1})));
}

TEST(FlowPolicy, LearnsATwoModeMixture) {
  // Data: equal mixture of N((−1.5, 0.5), 0.25²) and N((1.5, −0.5), 0.25²), no context.
  auto cfg = small_config(1, 1, 2, 16);
  cfg.bc_lr = 2e-3;
  FlowPolicy p(cfg, 3);
  auto gen = make_generator(3);
  auto centers = torch::tensor({{-1.5f, 0.5f}, {1.5f, -0.5f}});
  auto draw = [&](int64_t n) {
    auto which = torch::randint(0, 2, {n}, gen, torch::kLong);
    return (centers.index_select(0, which) + 0.25 * torch::randn({n, 2}, gen)).view({n, 1, 2});
  };
  const int64_t bs = 256;
  auto obs = torch::zeros({bs, 1});
  for (int it = 0; it < 2500; ++it) p.bc_update(obs, draw(bs), gen);
  p.load_ema_into_actor();
  const int64_t n = 4000;
  auto a = p.sample(torch::zeros({n, 1}), gen).actions.view({n, 2});
  auto left = ((a - centers[0]).norm(2, -1) < 0.75).to(torch::kFloat32).mean().item<double>();
  auto right = ((a - centers[1]).norm(2, -1) < 0.75).to(torch::kFloat32).mean().item<double>();
  auto data = draw(n).view({n, 2});
  auto mean_err = (a.mean(0) - data.mean(0)).abs().max().item<double>();
  auto cov = [](const torch::Tensor& x) {
    auto c = x - x.mean(0);
    return torch::matmul(c.t(), c) / static_cast<double>(x.size(0) - 1);
  };
  auto cov_err = (cov(a) - cov(data)).abs().max().item<double>();
  std::cout << "two-mode BC: shares " << left << " / " << right << ", mean err " << mean_err << ", cov err " << cov_err
            << "\n";
  EXPECT_GE(left, 0.35);
  EXPECT_GE(right, 0.35);
  // Mixture covariance is ≈ [[2.31, −0.75], [−0.75, 0.31]]; sample-size noise at
  // n = 4000 is ≈ 0.03 on the mean and ≈ 0.05 on the largest entry; model error
  // adds to it (0.04 / 0.15 measured here), so we allow 0.1 and 0.2 (≈ 9% of 2.31).
  EXPECT_LT(mean_err, 0.1);
  EXPECT_LT(cov_err, 0.2);
}

TEST(FlowPolicy, ExpectedTargetMatchesGaussianPosteriorMean) {
  // Data a ~ N(m, diag(s²)); x_t = (1−t)z + t·a gives, per coordinate,
  // E[a | x_t] = m + t s² (x_t − t m) / (t² s² + (1−t)²).
  auto cfg = small_config(1, 1, 2, 8);
  cfg.bc_lr = 2e-3;
  FlowPolicy p(cfg, 4);
  auto gen = make_generator(4);
  auto m = torch::tensor({1.0f, -1.0f}), s = torch::tensor({0.5f, 1.0f});
  const int64_t bs = 256;
  auto obs = torch::zeros({bs, 1});
  for (int it = 0; it < 2500; ++it) p.bc_update(obs, (m + s * torch::randn({bs, 2}, gen)).view({bs, 1, 2}), gen);
  p.load_ema_into_actor();
  const int64_t n = 2000;
  for (int64_t k : {2, 4, 6}) {
    const double t = k / 8.0;
    auto var = t * t * s * s + (1 - t) * (1 - t);
    auto xt = t * m + var.sqrt() * torch::randn({n, 2}, gen);
    auto analytic = m + t * s * s * (xt - t * m) / var;
    torch::NoGradGuard ng;
    auto est =
        p.expected_target(xt.view({n, 1, 2}), torch::full({n}, k, torch::kLong), torch::zeros({n, 1})).view({n, 2});
    auto err = (est - analytic).abs().mean().item<double>();
    std::cout << "E[x1|x_t] at t=" << t << ": mean abs error " << err << "\n";
    // The posterior mean's spread over x_t is ≈ 0.5–1.0; 0.08 is < 10% of it.
    EXPECT_LT(err, 0.08) << "t=" << t;
  }
}

TEST(FlowPolicy, EmaReferenceAndSaveLoad) {
  auto cfg = small_config(3, 2, 2, 4);
  cfg.ema_decay = 0.5;
  FlowPolicy p(cfg, 5);
  auto gen = make_generator(5);
  auto obs = torch::randn({16, 3}, gen);
  auto acts = torch::randn({16, 2, 2}, gen);
  auto w = [](VelocityNet& n) { return n->named_parameters()["body.input.weight"].clone(); };
  auto before = w(p.actor());
  p.bc_update(obs, acts, gen);
  auto after = w(p.actor());
  EXPECT_FALSE(torch::equal(before, after));
  EXPECT_TRUE(torch::allclose(w(p.ema()), 0.5 * before + 0.5 * after, 1e-6, 1e-7));
  EXPECT_TRUE(torch::equal(w(p.reference()), before));  // frozen until refreshed
  p.refresh_reference();
  EXPECT_TRUE(torch::equal(w(p.reference()), after));
  for (auto& q : p.reference()->parameters()) EXPECT_FALSE(q.requires_grad());

  const std::string path = ::testing::TempDir() + "rldt_flow_policy.pt";
  p.save(path);
  auto q = FlowPolicy::load(path);
  EXPECT_EQ(q.config().mlp_dims, cfg.mlp_dims);
  auto g1 = make_generator(9), g2 = make_generator(9);
  EXPECT_TRUE(torch::equal(p.sample(obs, g1).chain, q.sample(obs, g2).chain));
  EXPECT_TRUE(torch::equal(w(q.ema()), w(p.ema())));

  // A truncated file and a foreign file give errors naming the file.
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(path + ".cut", std::ios::binary);
    out << bytes.substr(0, bytes.size() / 2);
  }
  try {
    FlowPolicy::load(path + ".cut");
    ADD_FAILURE() << "truncated file loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(".cut"), std::string::npos) << e.what();
  }
  try {
    FlowPolicy::load(path + ".missing");
    ADD_FAILURE() << "missing file loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
  std::remove((path + ".cut").c_str());
}

TEST(FlowPolicy, ConfigAndInputErrorsNameTheField) {
  auto expect_msg = [](auto fn, const std::string& what) {
    try {
      fn();
      ADD_FAILURE() << "no exception, expected one mentioning " << what;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  auto cfg = small_config(3, 2, 2, 4);
  expect_msg(
      [&] {
        auto c = cfg;
        c.denoising_steps = 0;
        FlowPolicy p(c);
      },
      "denoising_steps");
  expect_msg(
      [&] {
        auto c = cfg;
        c.prediction = "eps";
        FlowPolicy p(c);
      },
      "prediction");
  expect_msg(
      [&] {
        auto c = cfg;
        c.mlp_dims = {64, 64};
        FlowPolicy p(c);
      },
      "mlp_dims");
  expect_msg(
      [&] {
        auto c = cfg;
        c.activation = "gelu2";
        FlowPolicy p(c);
      },
      "activation");
  FlowPolicy p(cfg);
  auto gen = make_generator(0);
  expect_msg([&] { p.sample(torch::zeros({4, 2}), gen); }, "obs");
  expect_msg([&] { p.bc_loss(torch::zeros({4, 3}), torch::zeros({4, 3, 2}), gen); }, "actions");
  expect_msg(
      [&] {
        p.expected_target(torch::zeros({4, 2, 2}), torch::full({4}, 4, torch::kLong), torch::zeros({4, 3}));
      },
      "'k'");
}

// ---------------------------------------------------------------------------
// InferencePolicy (Eigen deployment path) vs FlowPolicy sampling
// ---------------------------------------------------------------------------

TEST(VelocityNet, HandWrittenBackwardEqualsAutograd) {
  // forward_saving gives forward()'s values bit for bit; backward_saved over two passes' rows,
  // concatenated entry by entry, gives the parameter gradients autograd gives for the two passes,
  // for every activation and both bodies.
  for (const std::string act : {"relu", "silu", "mish", "tanh", "identity"}) {
    for (const bool residual : {true, false}) {
      const std::string what = act + (residual ? "/residual" : "/plain");
      auto cfg = small_config(3, 2, 2, 8);
      cfg.activation = act;
      cfg.residual = residual;
      cfg.mlp_dims = residual ? std::vector<int64_t>{32, 32, 32} : std::vector<int64_t>{32, 24};
      VelocityNet net(cfg);
      auto gen = make_generator(4);
      init_linear_layers(*net, gen);
      auto x1 = torch::randn({5, 2, 2}, gen), o1 = torch::randn({5, 3}, gen), g1 = torch::randn({5, 2, 2}, gen);
      auto x2 = torch::randn({3, 2, 2}, gen), o2 = torch::randn({3, 3}, gen), g2 = torch::randn({3, 2, 2}, gen);
      auto t1 = torch::randint(0, 8, {5}, gen, torch::kLong).to(torch::kFloat32) / 8.0;
      auto t2 = torch::randint(0, 8, {3}, gen, torch::kLong).to(torch::kFloat32) / 8.0;
      net->zero_grad();
      auto out1 = net->forward(x1, t1, o1), out2 = net->forward(x2, t2, o2);
      ((out1 * g1).sum() + (out2 * g2).sum()).backward();
      std::vector<torch::Tensor> want;
      for (const auto& p : net->parameters()) want.push_back(p.grad().clone());
      net->zero_grad();
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> s1, s2, both;
      EXPECT_TRUE(torch::equal(net->forward_saving(x1, t1, o1, s1), out1)) << what;
      EXPECT_TRUE(torch::equal(net->forward_saving(x2, t2, o2, s2), out2)) << what;
      ASSERT_EQ(s1.size(), s2.size()) << what;
      for (size_t i = 0; i < s1.size(); ++i) {
        ASSERT_EQ(s1[i].defined(), s2[i].defined()) << what << " entry " << i;
        both.push_back(s1[i].defined() ? torch::cat({s1[i], s2[i]}) : s1[i]);
      }
      net->backward_saved(both, torch::cat({g1, g2}));
      const auto params = net->parameters();
      ASSERT_EQ(params.size(), want.size());
      for (size_t i = 0; i < params.size(); ++i) {
        ASSERT_TRUE(params[i].grad().defined()) << what << " parameter " << i;
        const double scale = want[i].abs().max().item<double>();
        EXPECT_GT(scale, 0.0) << what << " parameter " << i;
        EXPECT_LE((params[i].grad() - want[i]).abs().max().item<double>(), 1e-5 * scale) << what << " parameter " << i;
      }
      expect_argument_error([&] { net->backward_saved(both, g1); }, "rows");
      expect_argument_error([&] { net->backward_saved(both, torch::cat({g1, g2}).view({8, 4})); }, "grad_out");
    }
  }
}

TEST(FlowPolicy, ChainCaptureKeepsEachRowsPassAtItsStep) {
  auto cfg = small_config(3, 2, 2, 8);
  FlowPolicy p(cfg, 3);
  auto gen = make_generator(5);
  auto obs = torch::randn({6, 3}, gen), x0 = torch::randn({6, 2, 2}, gen);
  const auto plain = p.sample_from(x0, obs);
  ChainCapture cap;
  cap.k = torch::tensor({0, 7, 3, 3, 5, 1}, torch::kLong);
  const auto kept = p.sample_from(x0, obs, &cap);
  EXPECT_TRUE(torch::equal(plain.chain, kept.chain));  // keeping the passes changes no value
  EXPECT_TRUE(torch::equal(plain.actions, kept.actions));
  // The kept rows are the rows sorted by step, stably: 0 (k 0), 5 (k 1), 2, 3 (k 3), 4 (k 5), 1 (k 7).
  EXPECT_TRUE(torch::equal(cap.rows, torch::tensor({0, 5, 2, 3, 4, 1}, torch::kLong)));
  torch::NoGradGuard ng;
  for (int64_t j = 0; j < 6; ++j) {
    const int64_t n = cap.rows[j].item<int64_t>(), k = cap.k[n].item<int64_t>();
    auto t = torch::full({1}, static_cast<double>(k) / 8.0);
    std::vector<torch::Tensor> s;
    auto out = p.actor()->forward_saving(kept.chain[n][k].unsqueeze(0), t, obs[n].unsqueeze(0), s);
    EXPECT_TRUE(torch::allclose(cap.out[n], out[0], 1e-5, 1e-6)) << "row " << n;
    ASSERT_EQ(cap.saved.size(), s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      ASSERT_EQ(cap.saved[i].defined(), s[i].defined()) << "entry " << i;
      if (s[i].defined())
        EXPECT_TRUE(torch::allclose(cap.saved[i][j], s[i][0], 1e-5, 1e-6)) << "row " << n << " entry " << i;
    }
  }
  // Given buffers (here views into larger ones, as ActorUpdater passes them) are written in place.
  ChainCapture into;
  into.k = cap.k;
  std::vector<torch::Tensor> big;
  for (const auto& e : cap.saved) {
    big.push_back(e.defined() ? torch::full({9, e.size(1)}, -7.0) : e);
    into.saved.push_back(e.defined() ? big.back().narrow(0, 2, 6) : e);
  }
  p.sample_from(x0, obs, &into);
  for (size_t i = 0; i < big.size(); ++i) {
    if (!big[i].defined()) continue;
    EXPECT_TRUE(torch::equal(big[i].narrow(0, 2, 6), cap.saved[i])) << "entry " << i;
    EXPECT_TRUE((big[i].narrow(0, 0, 2) == -7.0).all().item<bool>() &&
                (big[i].narrow(0, 8, 1) == -7.0).all().item<bool>());
  }
  ChainCapture wrong;
  wrong.k = cap.k;
  wrong.saved = {torch::empty({6, 3})};
  expect_argument_error([&] { p.sample_from(x0, obs, &wrong); }, "ChainCapture.saved");
  ChainCapture bad;
  bad.k = torch::zeros({5}, torch::kLong);
  expect_argument_error([&] { p.sample_from(x0, obs, &bad); }, "ChainCapture.k");
  bad.k = torch::full({6}, 8, torch::kLong);
  expect_argument_error([&] { p.sample_from(x0, obs, &bad); }, "steps in [0, 8)");
}

TEST(InferencePolicy, MatchesTheTorchSamplerForEveryArchitecture) {
  struct Case {
    bool residual;
    std::string activation, prediction;
    double clip;
  };
  for (const Case& c : {Case{true, "relu", "v_pred", 0.0}, Case{true, "mish", "x_pred", 0.0},
                        Case{false, "silu", "v_pred", 0.5}, Case{false, "tanh", "x_pred", 0.0}}) {
    FlowPolicyConfig cfg;
    cfg.obs_dim = 5;
    cfg.action_dim = 2;
    cfg.horizon_steps = 3;
    cfg.denoising_steps = 6;
    cfg.mlp_dims = c.residual ? std::vector<int64_t>{32, 32, 32, 32, 32} : std::vector<int64_t>{24, 16, 8};
    cfg.residual = c.residual;
    cfg.activation = c.activation;
    cfg.prediction = c.prediction;
    cfg.final_action_clip = c.clip;
    FlowPolicy policy(cfg, 7);
    InferencePolicy fast(policy);
    EXPECT_EQ(fast.gemm(), "packed");
    // B = 9: packed weights, OpenBLAS's sgemm_ (the setup installs it), then Eigen.
    EXPECT_TRUE(fast.blas_available()) << "no sgemm_ found in the process";
    for (const std::string gemm : {"packed", "blas", "eigen"}) {
      fast.set_gemm(gemm);
      EXPECT_EQ(fast.gemm(), gemm);
      SCOPED_TRACE(gemm);
      auto gen = make_generator(1);
      const int64_t B = 9, A = cfg.action_size();
      auto obs = torch::randn({B, cfg.obs_dim}, gen);
      // Deterministic: x_0 = 0.
      auto ref = policy.act(obs, gen, /*deterministic=*/true).contiguous();
      std::vector<float> out(static_cast<size_t>(B * A));
      fast.act(obs.data_ptr<float>(), B, nullptr, out.data());
      auto got = torch::from_blob(out.data(), {B, cfg.horizon_steps, cfg.action_dim}).clone();
      EXPECT_TRUE(torch::allclose(got, ref, 1e-4, 1e-5))
          << c.activation << " " << c.prediction << ": " << (got - ref).abs().max().item<double>();
      // Seeded: the same x_0 for both.
      auto g1 = make_generator(3), g2 = make_generator(3);
      auto sampled = policy.act(obs, g1).contiguous();
      auto x0 = torch::randn({B, cfg.horizon_steps, cfg.action_dim}, g2).contiguous();
      fast.act(obs.data_ptr<float>(), B, x0.data_ptr<float>(), out.data());
      got = torch::from_blob(out.data(), {B, cfg.horizon_steps, cfg.action_dim}).clone();
      EXPECT_TRUE(torch::allclose(got, sampled, 1e-4, 1e-5)) << (got - sampled).abs().max().item<double>();
      // One state.
      std::vector<float> o(obs.data_ptr<float>(), obs.data_ptr<float>() + cfg.obs_dim);
      auto one = fast.act(o);
      for (int64_t j = 0; j < A; ++j) EXPECT_NEAR(one[j], ref.view({B, A})[0][j].item<float>(), 1e-5);
    }
  }
}

TEST(InferencePolicy, SampleChainAndExpectedTargetsMatchFlowPolicy) {
  for (const std::string prediction : {"v_pred", "x_pred"}) {
    SCOPED_TRACE(prediction);
    FlowPolicyConfig cfg;
    cfg.obs_dim = 5;
    cfg.action_dim = 2;
    cfg.horizon_steps = 3;
    cfg.denoising_steps = 6;
    cfg.mlp_dims = {32, 32, 32};
    cfg.activation = "mish";
    cfg.prediction = prediction;
    cfg.final_action_clip = 0.3;  // clamps the actions, not the chain
    FlowPolicy policy(cfg, 11);
    InferencePolicy fast(policy);
    const int64_t B = 10, A = cfg.action_size(), K = cfg.denoising_steps;
    auto gen = make_generator(2);
    auto obs = torch::randn({B, cfg.obs_dim}, gen);
    auto x0 = torch::randn({B, cfg.horizon_steps, cfg.action_dim}, gen);
    const FlowSample ref = policy.sample_from(x0, obs);
    std::vector<float> out(static_cast<size_t>(B * A)), chain(static_cast<size_t>(B * (K + 1) * A));
    fast.sample(obs.data_ptr<float>(), B, x0.data_ptr<float>(), out.data(), chain.data());
    auto got_chain = torch::from_blob(chain.data(), {B, K + 1, cfg.horizon_steps, cfg.action_dim});
    auto got = torch::from_blob(out.data(), {B, cfg.horizon_steps, cfg.action_dim});
    EXPECT_TRUE(torch::allclose(got_chain, ref.chain, 1e-4, 1e-5)) << (got_chain - ref.chain).abs().max();
    EXPECT_TRUE(torch::allclose(got, ref.actions, 1e-4, 1e-5)) << (got - ref.actions).abs().max();
    EXPECT_GT(ref.chain.abs().max().item<double>(), 0.3);  // so the clamp mattered
    // Expected targets at one step per row, from the chain's states.
    auto k = torch::randint(0, K, {B}, gen, torch::kLong);
    auto x_k = ref.chain.index({torch::arange(B), k}).contiguous();
    torch::Tensor want;
    {
      torch::NoGradGuard ng;
      want = policy.expected_target(x_k, k, obs);
    }
    fast.expected_target(obs.data_ptr<float>(), B, x_k.data_ptr<float>(), k.data_ptr<int64_t>(), out.data());
    got = torch::from_blob(out.data(), {B, cfg.horizon_steps, cfg.action_dim});
    EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << (got - want).abs().max();
  }
}

TEST(InferencePolicy, PackedPathGivesAStateTheSameBitsInAnyBatch) {
  FlowPolicyConfig cfg;
  cfg.obs_dim = 5;
  cfg.action_dim = 2;
  cfg.horizon_steps = 3;
  cfg.mlp_dims = {48, 48, 48};
  FlowPolicy policy(cfg, 4);
  InferencePolicy fast(policy);
  const int64_t B = 19, A = cfg.action_size();
  auto gen = make_generator(5);
  auto obs = torch::randn({B, cfg.obs_dim}, gen), x0 = torch::randn({B, A}, gen);
  std::vector<float> whole(static_cast<size_t>(B * A)), parts(whole.size());
  fast.act(obs.data_ptr<float>(), B, x0.data_ptr<float>(), whole.data());
  for (int64_t rows : {1, 4, 7}) {
    for (int64_t i = 0; i < B; i += rows) {
      const int64_t n = std::min(rows, B - i);
      fast.act(obs.data_ptr<float>() + i * cfg.obs_dim, n, x0.data_ptr<float>() + i * A, parts.data() + i * A);
    }
    EXPECT_EQ(parts, whole) << rows << " rows at a time";
  }
  // Threads split the batch into blocks of rows: the same bits, chain and expected targets too.
  const int64_t K = cfg.denoising_steps;
  std::vector<float> chain1(static_cast<size_t>(B * (K + 1) * A)), chain2(chain1.size()), y1(whole.size()),
      y2(whole.size());
  fast.sample(obs.data_ptr<float>(), B, x0.data_ptr<float>(), whole.data(), chain1.data());
  auto k = torch::randint(0, K, {B}, gen, torch::kLong);
  fast.expected_target(obs.data_ptr<float>(), B, chain1.data() + A, k.data_ptr<int64_t>(), y1.data());
  fast.set_threads(3);
  EXPECT_EQ(fast.threads(), 3);
  fast.sample(obs.data_ptr<float>(), B, x0.data_ptr<float>(), parts.data(), chain2.data());
  fast.expected_target(obs.data_ptr<float>(), B, chain1.data() + A, k.data_ptr<int64_t>(), y2.data());
  EXPECT_EQ(parts, whole);
  EXPECT_EQ(chain2, chain1);
  EXPECT_EQ(y2, y1);
  expect_argument_error([&] { fast.set_threads(0); }, "n must be >= 1");
}

TEST(InferencePolicy, ThreadsSplittingRowsOrColumnsGiveOneThreadsBits) {
  // Column splits cut each layer at 16-column panels: widths of 48 (3 panels, one per thread with
  // 3 threads), and 40 / 24 / 20 (partial last panels, a layer of one panel). Batches from one
  // state (one thread's rows empty) to 30 (rows under "auto" with 2 threads).
  struct Case {
    bool residual;
    std::vector<int64_t> dims;
    std::string activation, prediction;
  };
  for (const Case& c : {Case{true, {48, 48, 48}, "mish", "v_pred"}, Case{false, {40, 24, 20}, "silu", "x_pred"},
                        Case{true, {20, 20, 20, 20, 20}, "tanh", "v_pred"}}) {
    FlowPolicyConfig cfg;
    cfg.obs_dim = 5;
    cfg.action_dim = 2;
    cfg.horizon_steps = 3;
    cfg.denoising_steps = 4;
    cfg.mlp_dims = c.dims;
    cfg.residual = c.residual;
    cfg.activation = c.activation;
    cfg.prediction = c.prediction;
    FlowPolicy policy(cfg, 8);
    InferencePolicy one(policy), fast(policy);
    ThreadPool pool2(2), pool3(3);
    ThreadPool* pools[] = {&pool2, &pool3};
    const int64_t A = cfg.action_size(), K = cfg.denoising_steps;
    auto gen = make_generator(6);
    for (int64_t B : {1, 5, 19, 30}) {
      auto obs = torch::randn({B, cfg.obs_dim}, gen), x0 = torch::randn({B, A}, gen);
      auto k = torch::randint(0, K, {B}, gen, torch::kLong);
      std::vector<float> out(static_cast<size_t>(B * A)), chain(static_cast<size_t>(B * (K + 1) * A)), y(out.size());
      one.sample(obs.data_ptr<float>(), B, x0.data_ptr<float>(), out.data(), chain.data());
      one.expected_target(obs.data_ptr<float>(), B, chain.data() + A, k.data_ptr<int64_t>(), y.data());
      for (int threads : {2, 3})
        for (const std::string split : {"rows", "columns", "auto"}) {
          SCOPED_TRACE(::testing::Message() << c.activation << " B=" << B << " threads=" << threads << " " << split);
          fast.set_threads(threads);
          fast.set_split(split);
          EXPECT_EQ(fast.split(), split);
          if (split == "auto") {  // on a pool of the caller's, e.g. the env threads'
            fast.set_thread_pool(pools[threads - 2]);
            EXPECT_EQ(fast.threads(), threads);
          }
          std::vector<float> out2(out.size(), 9.f), chain2(chain.size(), 9.f), y2(y.size(), 9.f);
          for (int rep = 0; rep < 3; ++rep) {  // the scratch and the barrier reused
            fast.sample(obs.data_ptr<float>(), B, x0.data_ptr<float>(), out2.data(), chain2.data());
            fast.expected_target(obs.data_ptr<float>(), B, chain.data() + A, k.data_ptr<int64_t>(), y2.data());
            ASSERT_EQ(out2, out);
            ASSERT_EQ(chain2, chain);
            ASSERT_EQ(y2, y);
          }
        }
    }
  }
  FlowPolicyConfig cfg;
  cfg.obs_dim = 2;
  cfg.action_dim = 1;
  cfg.mlp_dims = {16, 16, 16};
  FlowPolicy policy(cfg, 0);
  InferencePolicy fast(policy);
  expect_argument_error([&] { fast.set_split("diagonal"); }, "split");
  ThreadPool pool(2);
  fast.set_thread_pool(&pool);
  EXPECT_EQ(fast.threads(), 2);
  fast.set_threads(2);  // its own pool again
  EXPECT_EQ(fast.threads(), 2);
  fast.set_thread_pool(nullptr);
  EXPECT_EQ(fast.threads(), 1);
}

TEST(InferencePolicy, FollowsTheWeightsItWasBuiltFromAndChecksInput) {
  FlowPolicyConfig cfg;
  cfg.obs_dim = 4;
  cfg.action_dim = 1;
  cfg.horizon_steps = 2;
  cfg.mlp_dims = {16, 16, 16};
  FlowPolicy policy(cfg, 0);
  {
    torch::NoGradGuard ng;
    for (auto& p : policy.ema()->parameters()) p.mul_(0.5);
  }
  InferencePolicy actor(policy), ema(policy, "ema");
  std::vector<float> obs = {0.1f, -0.2f, 0.3f, 0.4f};
  EXPECT_NE(actor.act(obs), ema.act(obs));
  // refresh: the snapshot follows the policy's new weights, as a new snapshot would, bit for bit.
  const auto before = actor.act(obs);
  {
    torch::NoGradGuard ng;
    for (auto& p : policy.actor()->parameters()) p.mul_(0.9);
  }
  EXPECT_EQ(actor.act(obs), before);  // a snapshot until refreshed
  actor.refresh(policy);
  EXPECT_NE(actor.act(obs), before);
  EXPECT_EQ(actor.act(obs), InferencePolicy(policy).act(obs));
  ema.refresh(policy);  // stays the EMA net's snapshot
  EXPECT_EQ(ema.act(obs), InferencePolicy(policy, "ema").act(obs));
  auto wider = cfg;
  wider.mlp_dims = {32, 32, 32};
  FlowPolicy other(wider, 0);
  expect_argument_error([&] { actor.refresh(other); }, "architecture differs");
  EXPECT_THROW(actor.act(std::vector<float>{1.f, 2.f}), ArgumentError);
  EXPECT_THROW(InferencePolicy(policy, "reference"), ArgumentError);
  expect_argument_error([&] { actor.set_gemm("cuda"); }, "gemm");
  std::vector<float> x_k(2 * 2), out(2 * 2), two_obs(2 * 4);
  const int64_t bad_k[2] = {0, cfg.denoising_steps};
  expect_argument_error([&] { actor.expected_target(two_obs.data(), 2, x_k.data(), bad_k, out.data()); },
                        "row 1 has " + std::to_string(cfg.denoising_steps));
}
