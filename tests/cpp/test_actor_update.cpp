// Expected-target estimation and the RLDT actor update (ALGORITHM.md §4).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

#include "expect_error.hpp"
#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {
FlowPolicyConfig policy_config() {
  FlowPolicyConfig c;
  c.obs_dim = 3;
  c.horizon_steps = 2;
  c.action_dim = 2;
  c.denoising_steps = 8;
  c.mlp_dims = {64, 64, 64};
  return c;
}
// Q(s, a) = −||a − c||² for a fixed centre c: ∇_a Q = −2 (a − c).
ActionGradFn quadratic_grad(float c) {
  return [c](const torch::Tensor&, const torch::Tensor& a) { return -2.0 * (a - c); };
}
std::map<std::string, torch::Tensor> snapshot(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : m.named_parameters()) s[p.key()] = p.value().detach().clone();
  return s;
}
bool same(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& s) {
  for (const auto& p : m.named_parameters())
    if (!torch::equal(p.value(), s.at(p.key()))) return false;
  return true;
}
}  // namespace

TEST(ActorUpdate, LossTermsMatchTheirFormulas) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 1);
  ActorUpdateConfig cfg;
  cfg.n_particles = 4;
  ActorUpdater upd(policy, cfg);
  auto gen = make_generator(1);
  auto obs = torch::randn({3, 3}, gen);
  auto grad_fn = quadratic_grad(0.5f);
  auto batch = upd.prepare(obs, grad_fn, gen);
  ASSERT_EQ(batch.obs.size(0), 12);
  // States are repeated P times consecutively; x_k is step k of the same chain.
  EXPECT_TRUE(torch::equal(batch.obs[5], obs[1]));
  for (int64_t n = 0; n < 12; ++n) EXPECT_TRUE(torch::equal(batch.x_k[n], batch.chain[n][batch.k[n].item<int64_t>()]));
  EXPECT_TRUE(torch::equal(batch.actions, batch.chain.select(1, 8)));
  EXPECT_TRUE(torch::allclose(batch.grads, -2.0 * (batch.actions - 0.5)));

  auto phi = torch::randn({12, 2, 2}, gen);
  auto L = upd.losses(batch, phi);
  torch::NoGradGuard ng;
  auto t = batch.k.to(torch::kFloat32) / 8.0;
  auto v = policy->actor()->forward(batch.x_k, t, batch.obs);
  auto w = 8.0 * (1.0 - t);
  auto align = -((v * phi).sum({1, 2}) / w).mean();
  auto y = batch.x_k + (1 - t).view({-1, 1, 1}) * v;
  auto cons = 0.5 * ((y - batch.actions).pow(2).sum({1, 2}) / w.pow(2)).mean();
  auto tr = batch.ref_k.to(torch::kFloat32) / 8.0;
  auto ref = 0.2 * (policy->actor()->forward(batch.ref_x, tr, batch.obs) -
                    policy->reference()->forward(batch.ref_x, tr, batch.obs))
                       .pow(2)
                       .sum({1, 2})
                       .mean();
  EXPECT_NEAR(L.align.item<double>(), align.item<double>(), 1e-6);
  EXPECT_NEAR(L.cons.item<double>(), cons.item<double>(), 1e-6);
  EXPECT_NEAR(L.ref.item<double>(), ref.item<double>(), 1e-7);  // zero at first: reference == actor
  EXPECT_NEAR(L.total.item<double>(), (align + cons + ref).item<double>(), 1e-6);
  // The reference term's inputs lie on the straight path from noise to the particle.
  EXPECT_TRUE((batch.ref_k >= 0).all().item<bool>() && (batch.ref_k < 8).all().item<bool>());
}

TEST(ActorUpdate, OneStepDecreasesAlignAlongPhi) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 2);
  ActorUpdateConfig cfg;
  cfg.c_cons = 0.0;
  cfg.kl_coef = 0.0;
  cfg.lr = 1e-4;
  cfg.lr_warmup_steps = 0;
  ActorUpdater upd(policy, cfg);
  auto gen = make_generator(2);
  auto obs = torch::randn({16, 3}, gen);
  auto grad_fn = quadratic_grad(0.8f);
  auto batch = upd.prepare(obs, grad_fn, gen);
  torch::Tensor y_hat;
  {
    torch::NoGradGuard ng;
    y_hat = policy->expected_target(batch.x_k, batch.k, batch.obs);
  }
  auto phi = upd.field(batch, y_hat, grad_fn).phi.view({-1, 2, 2});
  const double before = upd.losses(batch, phi).align.item<double>();
  auto st = upd.step(batch, grad_fn);
  EXPECT_NEAR(st.align, before, 1e-6);  // step used the same φ
  const double after = upd.losses(batch, phi).align.item<double>();
  EXPECT_LT(after, before);
  // The expected targets moved along φ: <Δŷ, φ> > 0.
  torch::NoGradGuard ng;
  auto y_new = policy->expected_target(batch.x_k, batch.k, batch.obs);
  EXPECT_GT(((y_new - y_hat) * phi).sum().item<double>(), 0.0);
}

TEST(ActorUpdate, NoGradientReachesCriticChainOrReference) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 3);
  CriticConfig cc;
  cc.obs_dim = 3;
  cc.action_dim = 2;
  cc.act_steps = 2;
  cc.hidden = {32, 32};
  CriticEnsemble critic(cc, 3);
  ActorUpdater upd(policy, ActorUpdateConfig{});
  auto gen = make_generator(3);
  auto obs = torch::randn({8, 3}, gen);
  ActionGradFn grad_fn = [&](const torch::Tensor& o, const torch::Tensor& a) { return critic.action_grad(o, a); };
  // Make the reference differ from the actor so L_ref has a gradient.
  {
    torch::NoGradGuard ng;
    for (auto& p : policy->actor()->parameters()) p.add_(torch::randn(p.sizes(), gen) * 0.01);
  }
  auto critic_before = snapshot(*critic.online()), target_before = snapshot(*critic.target());
  auto ref_before = snapshot(*policy->reference()), actor_before = snapshot(*policy->actor());
  auto batch = upd.prepare(obs, grad_fn, gen);
  auto chain_before = batch.chain.clone(), actions_before = batch.actions.clone();
  auto st = upd.step(batch, grad_fn);
  EXPECT_GT(st.ref, 0.0);
  EXPECT_TRUE(same(*critic.online(), critic_before));
  EXPECT_TRUE(same(*critic.target(), target_before));
  EXPECT_TRUE(same(*policy->reference(), ref_before));
  EXPECT_FALSE(same(*policy->actor(), actor_before));
  for (auto& p : critic.online()->parameters())
    EXPECT_FALSE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  for (auto& p : policy->reference()->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_TRUE(torch::equal(batch.chain, chain_before));
  EXPECT_TRUE(torch::equal(batch.actions, actions_before));
  EXPECT_FALSE(batch.chain.requires_grad());
  EXPECT_EQ(upd.steps_taken(), 1);
}

TEST(ActorUpdate, WarmupScheduleIsLinear) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 4);
  ActorUpdateConfig cfg;
  cfg.lr = 3.2e-5;
  cfg.lr_warmup_steps = 32;
  ActorUpdater upd(policy, cfg);
  EXPECT_NEAR(upd.current_lr(), 1e-6, 1e-12);  // lr / 32
  auto gen = make_generator(4);
  auto obs = torch::randn({2, 3}, gen);
  for (int i = 0; i < 16; ++i) upd.update(obs, quadratic_grad(0.f), gen);
  EXPECT_NEAR(upd.current_lr(), 3.2e-5 * (1.0 / 32 + (31.0 / 32) * 0.5), 1e-12);
  for (int i = 0; i < 20; ++i) upd.update(obs, quadratic_grad(0.f), gen);
  EXPECT_NEAR(upd.current_lr(), 3.2e-5, 1e-12);
}

TEST(ActorUpdate, TransportMovesSamplesTowardHighQ) {
  // Q = −||a − 0.6||²: the policy's mean action must move toward 0.6 while the
  // repulsion keeps the samples spread. Also runs every field type once.
  for (std::string field : {"normal", "interp", "delta", "hybrid"}) {
    for (std::string pred : {"v_pred", "x_pred"}) {
      auto pc = policy_config();
      pc.prediction = pred;
      auto policy = std::make_shared<FlowPolicy>(pc, 5);
      ActorUpdateConfig cfg;
      cfg.lr = 1e-3;
      cfg.lr_warmup_steps = 0;
      cfg.svgd.field = field;
      ActorUpdater upd(policy, cfg);
      auto gen = make_generator(5);
      auto obs = torch::randn({32, 3}, gen);
      auto dist = [&] { return (policy->act(obs, gen) - 0.6).pow(2).sum({1, 2}).mean().item<double>(); };
      const double before = dist();
      for (int i = 0; i < 60; ++i) {
        auto st = upd.update(obs, quadratic_grad(0.6f), gen);
        ASSERT_TRUE(std::isfinite(st.loss)) << field << " " << pred;
        if (i % 10 == 9) policy->refresh_reference();  // as at the end of each iteration
      }
      const double after = dist();
      std::cout << field << "/" << pred << ": E||a − c||² " << before << " → " << after << "\n";
      // L_cons and L_ref hold the policy back on purpose; 60 steps still remove half the gap.
      EXPECT_LT(after, 0.5 * before) << field << " " << pred << ": " << before << " → " << after;
    }
  }
}

TEST(ActorUpdate, BadInputNamesTheArgument) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 6);
  ActorUpdateConfig cfg;
  cfg.n_particles = 1;
  EXPECT_THROW(ActorUpdater(policy, cfg), ArgumentError);
  cfg.n_particles = 4;
  cfg.c_cons = -1;
  EXPECT_THROW(ActorUpdater(policy, cfg), ArgumentError);
  ActorUpdater upd(policy, ActorUpdateConfig{});
  auto gen = make_generator(6);
  auto obs = torch::randn({2, 3});
  obs[1][2] = std::numeric_limits<float>::infinity();
  try {
    upd.update(obs, quadratic_grad(0.f), gen);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("'obs'"), std::string::npos) << e.what();
  }
  ActionGradFn wrong = [](const torch::Tensor& o, const torch::Tensor&) { return torch::zeros({o.size(0), 5}); };
  try {
    upd.update(torch::randn({2, 3}), wrong, gen);
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("grad_fn"), std::string::npos) << e.what();
  }
}

TEST(ActorUpdate, FinalStepOnlyAblationQueriesTheLastStep) {
  // final_step_only: k = K−1 for every particle, so ŷ = x_{K−1} + v/K is the Euler step that
  // produced the particle: ŷ = a_n and L_cons vanishes (v_pred).
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 2);
  ActorUpdateConfig cfg;
  cfg.final_step_only = true;
  ActorUpdater upd(policy, cfg);
  auto gen = make_generator(2);
  auto obs = torch::randn({4, 3}, gen);
  auto batch = upd.prepare(obs, quadratic_grad(0.5f), gen);
  EXPECT_TRUE(torch::equal(batch.k, torch::full({32}, 7, torch::kLong)));
  auto L = upd.losses(batch, torch::zeros({32, 2, 2}));
  EXPECT_LT(L.cons.item<double>(), 1e-8) << L.cons.item<double>();
  auto st = upd.update(obs, quadratic_grad(0.5f), gen);
  EXPECT_TRUE(std::isfinite(st.loss));
  // The default draws k over all steps.
  ActorUpdater full(policy, ActorUpdateConfig{});
  auto b2 = full.prepare(torch::randn({64, 3}, gen), quadratic_grad(0.5f), gen);
  EXPECT_GT(std::get<0>(torch::_unique(b2.k)).numel(), 4);
}

TEST(ActorUpdate, ProjectedFieldStopsPushingOutOfTheBox) {
  auto phi = torch::tensor({0.5f, -0.5f, 0.5f, -0.5f, 0.2f, 0.2f}).view({1, 1, 6});
  auto q = torch::tensor({1.2f, 1.2f, -1.0f, -1.3f, 0.9f, 1.0f}).view({1, 1, 6});
  auto p = project_to_box(phi, q, 1.0);
  // Outward at or beyond the box -> 0; inward, or inside the box, unchanged.
  EXPECT_TRUE(torch::equal(p, torch::tensor({0.0f, -0.5f, 0.5f, 0.0f, 0.2f, 0.0f}).view({1, 1, 6}))) << p;
  EXPECT_THROW(project_to_box(phi, q.view({6}), 1.0), ArgumentError);
  EXPECT_THROW(project_to_box(phi, q, 0.0), ArgumentError);

  // In the updater: Q = −||a − 2||² pulls every particle out of the ±0.3 box (φ > 0 nearly
  // everywhere); projected, φ is 0 wherever the query is at or above 0.3, and unchanged inside the box.
  auto pc = policy_config();
  pc.final_action_clip = 0.3;
  auto policy = std::make_shared<FlowPolicy>(pc, 3);
  auto obs = torch::randn({8, 3}, make_generator(4));
  auto run = [&](bool project) {
    ActorUpdateConfig cfg;
    cfg.project_field = project;
    ActorUpdater upd(policy, cfg);
    auto gen = make_generator(5);
    auto batch = upd.prepare(obs, quadratic_grad(2.0f), gen);
    torch::NoGradGuard ng;
    auto y = policy->expected_target(batch.x_k, batch.k, batch.obs).reshape({8, 8, -1});
    return std::make_pair(y, upd.field(batch, y, quadratic_grad(2.0f)).phi);
  };
  auto [y, free] = run(false);
  auto [y2, projected] = run(true);
  ASSERT_TRUE(torch::equal(y, y2));
  auto above = y.ge(0.3);
  ASSERT_GT(above.sum().item<int64_t>(), 10);
  EXPECT_GT(free.masked_select(above).gt(0).sum().item<int64_t>(), 10);  // the unprojected field pushes out
  EXPECT_EQ(projected.masked_select(above).gt(0).sum().item<int64_t>(), 0);
  auto inside = y.gt(-0.3) & y.lt(0.3);
  EXPECT_TRUE(torch::equal(projected.masked_select(inside), free.masked_select(inside)));
}

TEST(ActorUpdate, BpttGradientIsTheGradientOfQThroughTheSampler) {
  // objective "bptt": the surrogate −mean <a(θ), g> with g = ∇Q held constant must have exactly
  // the θ-gradient of −mean Q(a(θ)), a(θ) the K-step Euler sample from the particles' own x_0.
  // Q(a) = −||a − c||² (quadratic_grad), computed here with autograd through a sampler written out.
  for (std::string pred : {"v_pred", "x_pred"}) {
    auto pc = policy_config();
    pc.prediction = pred;
    auto policy = std::make_shared<FlowPolicy>(pc, 7);
    ActorUpdateConfig cfg;
    cfg.objective = "bptt";
    cfg.kl_coef = 0.0;
    cfg.svgd.q_norm = "none";
    cfg.n_particles = 3;
    ActorUpdater upd(policy, cfg);
    auto gen = make_generator(7);
    auto obs = torch::randn({4, 3}, gen);
    const float c = 0.3f;
    auto batch = upd.prepare(obs, quadratic_grad(c), gen);
    auto params = policy->actor()->parameters();
    auto L = upd.bptt_losses(batch);
    EXPECT_EQ(L.cons.item<double>(), 0.0);
    auto g_sur = torch::autograd::grad({L.total}, params);

    const int64_t N = batch.obs.size(0), K = pc.denoising_steps;
    auto x = batch.chain.select(1, 0);
    for (int64_t k = 0; k < K; ++k) {
      auto t = torch::full({N}, static_cast<double>(k) / K);
      x = x + policy->velocity_from_output(policy->actor()->forward(x, t, batch.obs), x, t) / static_cast<double>(K);
    }
    EXPECT_TRUE(torch::allclose(x.detach(), batch.actions, 1e-5, 1e-5)) << pred;  // same chain as the particles
    auto q = -(x - c).pow(2).sum({1, 2}).mean();
    auto g_true = torch::autograd::grad({-q}, params);
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::allclose(g_sur[i], g_true[i], 1e-4, 1e-6))
          << pred << " parameter " << i << ": max diff " << (g_sur[i] - g_true[i]).abs().max().item<double>();
    }
  }
}

TEST(ActorUpdate, BpttMovesSamplesTowardHighQAndKeepsTheReferenceTerm) {
  auto policy = std::make_shared<FlowPolicy>(policy_config(), 8);
  ActorUpdateConfig cfg;
  cfg.objective = "bptt";
  cfg.lr = 1e-3;
  cfg.lr_warmup_steps = 0;
  ActorUpdater upd(policy, cfg);
  auto gen = make_generator(8);
  auto obs = torch::randn({32, 3}, gen);
  auto dist = [&] { return (policy->act(obs, gen) - 0.6).pow(2).sum({1, 2}).mean().item<double>(); };
  const double before = dist();
  double ref_seen = 0.0;
  for (int i = 0; i < 60; ++i) {
    auto st = upd.update(obs, quadratic_grad(0.6f), gen);
    ASSERT_TRUE(std::isfinite(st.loss));
    EXPECT_EQ(st.cons, 0.0);
    EXPECT_GT(st.svgd.grad_norm, 0.0);
    ref_seen = std::max(ref_seen, st.ref);
    if (i % 10 == 9) policy->refresh_reference();
  }
  const double after = dist();
  std::cout << "bptt: E||a − c||² " << before << " → " << after << "\n";
  EXPECT_LT(after, 0.5 * before) << before << " → " << after;
  EXPECT_GT(ref_seen, 0.0);  // the actor moved away from its reference, and L_ref saw it
  // An unknown objective is refused by name.
  ActorUpdateConfig bad;
  bad.objective = "reinforce";
  try {
    bad.validate();
    ADD_FAILURE();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("objective"), std::string::npos) << e.what();
  }
}

namespace {
// Gradients of the actor's parameters after a step (the summed gradient the optimizer used).
std::vector<torch::Tensor> actor_grads(FlowPolicy& p) {
  std::vector<torch::Tensor> g;
  for (const auto& q : p.actor()->parameters()) g.push_back(q.grad().clone());
  return g;
}
}  // namespace

TEST(ActorUpdate, GroupedUpdateMatchesOneGroup) {
  // update_groups G: the same draws and, up to the matmuls' rounding, the same batch, field,
  // losses and summed parameter gradients as G = 1, for every field and the bptt objective, with
  // groups of unequal size (5 states in 2 or 3 groups).
  struct Case {
    std::string field, objective;
    int64_t groups;
  };
  for (const Case& c : {Case{"normal", "transport", 2}, Case{"interp", "transport", 3}, Case{"hybrid", "transport", 2},
                        Case{"delta", "transport", 2}, Case{"normal", "bptt", 2}}) {
    const std::string what = c.field + "/" + c.objective + "/G=" + std::to_string(c.groups);
    ActorUpdateConfig cfg;
    cfg.n_particles = 4;
    cfg.svgd.field = c.field;
    cfg.objective = c.objective;
    auto one = std::make_shared<FlowPolicy>(policy_config(), 11);
    auto many = std::make_shared<FlowPolicy>(policy_config(), 11);
    ActorUpdater u1(one, cfg);
    cfg.update_groups = c.groups;
    ActorUpdater uG(many, cfg);
    auto obs = torch::randn({5, 3}, make_generator(3));
    auto g1 = make_generator(12), gG = make_generator(12);
    auto grad_fn = quadratic_grad(0.4f);
    for (int step = 0; step < 3; ++step) {
      auto b1 = u1.prepare(obs, grad_fn, g1);
      auto bG = uG.prepare(obs, grad_fn, gG);
      EXPECT_TRUE(torch::equal(b1.k, bG.k)) << what;
      EXPECT_TRUE(torch::equal(b1.ref_k, bG.ref_k)) << what;
      EXPECT_TRUE(torch::equal(b1.obs, bG.obs)) << what;
      EXPECT_TRUE(torch::equal(b1.chain.select(1, 0), bG.chain.select(1, 0))) << what;  // the same x_0
      EXPECT_TRUE(torch::allclose(b1.chain, bG.chain, 1e-5, 1e-5)) << what;
      EXPECT_TRUE(torch::allclose(b1.ref_x, bG.ref_x, 1e-5, 1e-5)) << what;
      EXPECT_EQ(b1.grads.defined(), bG.grads.defined()) << what;
      if (b1.grads.defined()) EXPECT_TRUE(torch::allclose(b1.grads, bG.grads, 1e-5, 1e-5)) << what;
      auto s1 = u1.step(b1, grad_fn);
      auto sG = uG.step(bG, grad_fn);
      EXPECT_NEAR(s1.loss, sG.loss, 1e-5 * (1.0 + std::abs(s1.loss))) << what;
      EXPECT_NEAR(s1.align, sG.align, 1e-5 * (1.0 + std::abs(s1.align))) << what;
      EXPECT_NEAR(s1.cons, sG.cons, 1e-5 * (1.0 + std::abs(s1.cons))) << what;
      EXPECT_NEAR(s1.ref, sG.ref, 1e-5 * (1.0 + std::abs(s1.ref))) << what;
      EXPECT_NEAR(s1.svgd.grad_norm, sG.svgd.grad_norm, 1e-5 * (1.0 + s1.svgd.grad_norm)) << what;
      EXPECT_NEAR(s1.svgd.particle_distance, sG.svgd.particle_distance, 1e-5) << what;
      if (c.objective == "transport") EXPECT_TRUE(torch::allclose(s1.svgd.phi, sG.svgd.phi, 1e-4, 1e-5)) << what;
      auto gr1 = actor_grads(*one), grG = actor_grads(*many);
      double scale = 0.0;
      for (const auto& g : gr1) scale = std::max(scale, g.abs().max().item<double>());
      ASSERT_GT(scale, 0.0) << what;
      for (size_t i = 0; i < gr1.size(); ++i)
        EXPECT_LE((gr1[i] - grG[i]).abs().max().item<double>(), 1e-4 * scale) << what << " parameter " << i;
      for (size_t i = 0; i < gr1.size(); ++i)
        EXPECT_TRUE(torch::allclose(one->actor()->parameters()[i], many->actor()->parameters()[i], 0, 1e-6))
            << what << " parameter " << i;
    }
    EXPECT_EQ(uG.steps_taken(), 3);
  }
}

TEST(ActorUpdate, HandWrittenBackwardEqualsAutograd) {
  // backward "manual" (the chain's kept pass at k and the L_ref pass, back-propagated by hand as
  // one batch) against "autograd": the same draws and chain bit for bit and, to rounding, the same
  // losses, field, parameter gradients and weights, for every activation, both bodies, both
  // predictions, four fields, with and without L_ref, in 1, 2 and 3 groups.
  struct Case {
    std::string activation;
    bool residual;
    std::string prediction, field;
    double kl_coef;
    int64_t groups;
  };
  for (const Case& c :
       {Case{"relu", true, "v_pred", "normal", 0.2, 1}, Case{"silu", true, "x_pred", "interp", 0.2, 2},
        Case{"mish", false, "v_pred", "hybrid", 0.2, 1}, Case{"tanh", false, "x_pred", "delta", 0.0, 1},
        Case{"identity", true, "v_pred", "normal", 0.0, 2}, Case{"relu", false, "v_pred", "normal", 0.2, 3}}) {
    const std::string what = c.activation + (c.residual ? "/residual/" : "/plain/") + c.prediction + "/" + c.field +
                             "/kl=" + std::to_string(c.kl_coef) + "/G=" + std::to_string(c.groups);
    auto pc = policy_config();
    pc.activation = c.activation;
    pc.residual = c.residual;
    pc.prediction = c.prediction;
    if (!c.residual) pc.mlp_dims = {48, 40};
    auto manual = std::make_shared<FlowPolicy>(pc, 7), plain = std::make_shared<FlowPolicy>(pc, 7);
    {
      // The actor away from the reference, so that L_ref has a gradient.
      torch::NoGradGuard ng;
      auto g1 = make_generator(8), g2 = make_generator(8);
      for (auto& p : manual->actor()->parameters()) p.add_(torch::randn(p.sizes(), g1) * 0.05);
      for (auto& p : plain->actor()->parameters()) p.add_(torch::randn(p.sizes(), g2) * 0.05);
    }
    ActorUpdateConfig cfg;
    cfg.n_particles = 4;
    cfg.svgd.field = c.field;
    cfg.kl_coef = c.kl_coef;
    cfg.update_groups = c.groups;
    cfg.backward = "manual";
    ActorUpdater um(manual, cfg);
    cfg.backward = "autograd";
    ActorUpdater ua(plain, cfg);
    auto obs = torch::randn({5, 3}, make_generator(3));
    auto gm = make_generator(12), ga = make_generator(12);
    auto grad_fn = quadratic_grad(0.4f);
    for (int step = 0; step < 3; ++step) {
      auto bm = um.prepare(obs, grad_fn, gm);
      auto ba = ua.prepare(obs, grad_fn, ga);
      EXPECT_FALSE(bm.saved.empty()) << what;
      EXPECT_TRUE(ba.saved.empty() && !ba.out_k.defined()) << what;
      EXPECT_TRUE(torch::equal(bm.k, ba.k) && torch::equal(bm.ref_k, ba.ref_k)) << what;
      EXPECT_TRUE(torch::equal(bm.chain, ba.chain)) << what;
      EXPECT_TRUE(torch::equal(bm.ref_x, ba.ref_x)) << what;
      {
        // The kept pass is the actor's output at (x_k, t_k); the L_ref passes are the two nets' at x̃.
        torch::NoGradGuard ng;
        auto t = bm.k.to(torch::kFloat32) / 8.0, tr = bm.ref_k.to(torch::kFloat32) / 8.0;
        EXPECT_TRUE(torch::allclose(bm.out_k, manual->actor()->forward(bm.x_k, t, bm.obs), 1e-5, 1e-6)) << what;
        EXPECT_EQ(bm.ref_out.defined(), c.kl_coef > 0) << what;
        if (c.kl_coef > 0) {
          EXPECT_TRUE(torch::allclose(bm.ref_out, manual->actor()->forward(bm.ref_x, tr, bm.obs), 1e-5, 1e-6)) << what;
          EXPECT_TRUE(torch::allclose(bm.ref_target, manual->reference()->forward(bm.ref_x, tr, bm.obs), 1e-5, 1e-6))
              << what;
        }
        EXPECT_EQ(bm.saved[0].size(0), (c.kl_coef > 0 ? 2 : 1) * 20) << what;
      }
      auto sm = um.step(bm, grad_fn);
      auto sa = ua.step(ba, grad_fn);
      EXPECT_TRUE(sm.manual_backward) << what;
      EXPECT_FALSE(sa.manual_backward) << what;
      for (auto [x, y, name] : {std::tuple{sm.loss, sa.loss, "loss"}, std::tuple{sm.align, sa.align, "align"},
                                std::tuple{sm.cons, sa.cons, "cons"}, std::tuple{sm.ref, sa.ref, "ref"}})
        EXPECT_NEAR(x, y, 1e-5 * (1.0 + std::abs(y))) << what << " " << name;
      if (c.kl_coef > 0) EXPECT_GT(sm.ref, 0.0) << what;
      EXPECT_EQ(sm.lr, sa.lr) << what;
      EXPECT_TRUE(torch::allclose(sm.svgd.phi, sa.svgd.phi, 1e-4, 1e-6)) << what;
      auto gr_m = actor_grads(*manual), gr_a = actor_grads(*plain);
      for (size_t i = 0; i < gr_m.size(); ++i) {
        const double scale = gr_a[i].abs().max().item<double>();
        EXPECT_GT(scale, 0.0) << what << " parameter " << i;
        EXPECT_LE((gr_m[i] - gr_a[i]).abs().max().item<double>(), 1e-4 * scale) << what << " parameter " << i;
        EXPECT_TRUE(torch::allclose(manual->actor()->parameters()[i], plain->actor()->parameters()[i], 0, 1e-5))
            << what << " parameter " << i;
      }
    }
    EXPECT_EQ(um.steps_taken(), 3);
  }
}

TEST(ActorUpdate, AutomaticBackwardIsManualInOneGroupOnly) {
  // backward "auto" (the default): by hand when the update runs in one group, autograd in groups.
  ActorUpdateConfig cfg;
  ASSERT_EQ(cfg.backward, "auto");
  cfg.n_particles = 4;
  auto obs = torch::randn({3, 3}, make_generator(1));
  for (int64_t groups : {1, 2}) {
    cfg.update_groups = groups;
    auto p = std::make_shared<FlowPolicy>(policy_config(), 4);
    ActorUpdater u(p, cfg);
    auto gen = make_generator(2);
    auto b = u.prepare(obs, quadratic_grad(0.3f), gen);
    EXPECT_EQ(b.saved.empty(), groups > 1) << "G=" << groups;
    EXPECT_EQ(u.step(b, quadratic_grad(0.3f)).manual_backward, groups == 1) << "G=" << groups;
    // One state cannot be split, so G = 2 then runs in one group, by hand.
    EXPECT_TRUE(u.update(obs.narrow(0, 0, 1), quadratic_grad(0.3f), gen).manual_backward) << "G=" << groups;
  }
}

TEST(ActorUpdate, KeptPassesOfChangedWeightsAreNotUsed) {
  // A batch prepared before the actor's weights changed is stepped the autograd way, from the
  // weights it is stepped with: the kept passes belong to the weights prepare saw.
  ActorUpdateConfig cfg;
  cfg.n_particles = 4;
  auto manual = std::make_shared<FlowPolicy>(policy_config(), 4),
       plain = std::make_shared<FlowPolicy>(policy_config(), 4);
  ActorUpdater um(manual, cfg);
  cfg.backward = "autograd";
  ActorUpdater ua(plain, cfg);
  auto obs = torch::randn({4, 3}, make_generator(1));
  auto gm = make_generator(2), ga = make_generator(2);
  auto grad_fn = quadratic_grad(0.3f);
  auto bm = um.prepare(obs, grad_fn, gm);
  auto ba = ua.prepare(obs, grad_fn, ga);
  ASSERT_FALSE(bm.saved.empty());
  {
    torch::NoGradGuard ng;
    auto g1 = make_generator(3), g2 = make_generator(3);
    for (auto& p : manual->actor()->parameters()) p.add_(torch::randn(p.sizes(), g1) * 0.1);
    for (auto& p : plain->actor()->parameters()) p.add_(torch::randn(p.sizes(), g2) * 0.1);
  }
  auto sm = um.step(bm, grad_fn);
  auto sa = ua.step(ba, grad_fn);
  EXPECT_FALSE(sm.manual_backward);
  EXPECT_NEAR(sm.loss, sa.loss, 1e-5 * (1.0 + std::abs(sa.loss)));
  EXPECT_GT(sm.ref, 0.0);  // L_ref of the changed actor, not the kept (zero) one
  auto gr_m = actor_grads(*manual), gr_a = actor_grads(*plain);
  for (size_t i = 0; i < gr_m.size(); ++i)
    EXPECT_LE((gr_m[i] - gr_a[i]).abs().max().item<double>(), 1e-4 * gr_a[i].abs().max().item<double>())
        << "parameter " << i;
  // The same when the reference changed: refreshed from the actor, L_ref is 0 (the kept reference
  // pass, of the old reference, would give it > 0).
  ASSERT_TRUE(um.step(um.prepare(obs, grad_fn, gm), grad_fn).manual_backward);  // (a fresh batch is)
  auto again = um.prepare(obs, grad_fn, gm);
  manual->refresh_reference();
  auto st = um.step(again, grad_fn);
  EXPECT_FALSE(st.manual_backward);
  EXPECT_NEAR(st.ref, 0.0, 1e-12);
}

TEST(ActorUpdate, BackwardErrorNamesTheKey) {
  ActorUpdateConfig cfg;
  cfg.backward = "numeric";
  expect_argument_error([&] { cfg.validate(); }, "backward");
}

TEST(ActorUpdate, GroupedUpdateIsDeterministicAndFallsBackToOneGroup) {
  ActorUpdateConfig cfg;
  cfg.n_particles = 4;
  cfg.update_groups = 2;
  auto run = [&](int64_t states) {
    auto p = std::make_shared<FlowPolicy>(policy_config(), 5);
    ActorUpdater u(p, cfg);
    auto gen = make_generator(6);
    auto obs = torch::randn({states, 3}, gen);
    for (int i = 0; i < 3; ++i) u.update(obs, quadratic_grad(-0.2f), gen);
    return snapshot(*p->actor());
  };
  // Two runs agree bit for bit, whichever thread ran which group.
  const auto a = run(7);
  auto p = std::make_shared<FlowPolicy>(policy_config(), 5);
  {
    ActorUpdater u(p, cfg);
    auto gen = make_generator(6);
    auto obs = torch::randn({7, 3}, gen);
    for (int i = 0; i < 3; ++i) u.update(obs, quadratic_grad(-0.2f), gen);
  }
  EXPECT_TRUE(same(*p->actor(), a));
  // One state cannot be split: G = 2 then is the one-group update, bit for bit.
  const auto single = run(1);
  cfg.update_groups = 1;
  const auto plain = run(1);
  for (const auto& [name, value] : plain) EXPECT_TRUE(torch::equal(value, single.at(name))) << name;
}

TEST(ActorUpdate, GroupedUpdateErrorsNameTheProblem) {
  ActorUpdateConfig bad;
  bad.update_groups = 0;
  expect_argument_error([&] { bad.validate(); }, "update_groups");
  // An error inside a group's thread (here a critic gradient of the wrong shape) reaches the caller.
  ActorUpdateConfig cfg;
  cfg.n_particles = 4;
  cfg.update_groups = 2;
  auto p = std::make_shared<FlowPolicy>(policy_config(), 5);
  ActorUpdater u(p, cfg);
  auto gen = make_generator(6);
  auto obs = torch::randn({4, 3}, gen);
  ActionGradFn wrong = [](const torch::Tensor&, const torch::Tensor& a) { return a.narrow(0, 0, 1); };
  expect_argument_error([&] { u.update(obs, wrong, gen); }, "grad_fn result");
  EXPECT_EQ(u.steps_taken(), 0);
}

TEST(ActorUpdate, GroupedActDrawsAsFlowPolicyActDoes) {
  // ActorUpdater::act (the critic round's bootstrap sampling): FlowPolicy::act's draws and clamp;
  // with update_groups = 3 the rows are sampled in three ranges (7 rows: 2 / 2 / 3) and agree to
  // rounding, and the generator ends where FlowPolicy::act leaves it.
  auto pc = policy_config();
  pc.final_action_clip = 0.5;
  auto policy = std::make_shared<FlowPolicy>(pc, 21);
  ActorUpdateConfig cfg;
  cfg.update_groups = 3;
  ActorUpdater grouped(policy, cfg);
  ActorUpdater plain(policy, ActorUpdateConfig{});
  auto obs = torch::randn({7, 3}, make_generator(1));
  for (bool det : {false, true}) {
    auto g1 = make_generator(4), g2 = make_generator(4), g3 = make_generator(4);
    auto a_policy = policy->act(obs, g1, det);
    auto a_plain = plain.act(obs, g2, det);
    auto a_grouped = grouped.act(obs, g3, det);
    EXPECT_TRUE(torch::equal(a_plain, a_policy)) << det;  // one group is FlowPolicy::act itself
    EXPECT_TRUE(torch::allclose(a_grouped, a_policy, 1e-5, 1e-6)) << det;
    EXPECT_LE(a_grouped.abs().max().item<double>(), 0.5) << det;  // clamped
    // The generators continue alike: the grouped act drew exactly what FlowPolicy::act drew.
    EXPECT_TRUE(torch::equal(torch::randn({4}, g1), torch::randn({4}, g3))) << det;
  }
  // act_from with act's own x_0 is act, bit for bit.
  auto g1 = make_generator(9), g2 = make_generator(9);
  auto a = policy->act(obs, g1);
  auto x0 = torch::randn({7, pc.horizon_steps, pc.action_dim}, g2);
  EXPECT_TRUE(torch::equal(policy->act_from(x0, obs), a));
  EXPECT_THROW(policy->act_from(x0.narrow(0, 0, 6), obs), ArgumentError);
}
