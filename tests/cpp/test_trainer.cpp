// RLDT trainer (ALGORITHM.md §5–6): rollout storage, iteration mechanics,
// determinism, config errors, and learning on InvertedPendulum.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "rldt/envs/vec_env.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"
#include "trainer_metrics.hpp"

using namespace rldt;

namespace {
RldtTrainerConfig tiny_hopper() {
  RldtTrainerConfig c;
  c.env = "Hopper-v5";
  c.n_envs = 4;
  c.env_threads = 2;
  c.n_steps = 30;
  c.act_steps = 2;
  c.val_freq = 3;
  c.n_critic_warmup_itr = 0;
  c.q_update_steps = 4;
  c.q_repeat = 2;
  c.policy_update_steps = 2;
  c.buffer_num_episode = 2;
  c.policy.horizon_steps = 3;
  c.policy.denoising_steps = 4;
  c.policy.mlp_dims = {32, 32, 32};
  c.critic.hidden = {32, 32};
  c.actor.n_particles = 4;
  c.actor.lr_warmup_steps = 0;
  c.actor.lr = 1e-3;
  c.exploration.min_extrp_step = 2;
  return c;
}
bool is_finite(double x) { return std::isfinite(x); }
// Copies of a module's parameters, and whether two such copies are equal element for element.
std::vector<torch::Tensor> params_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> ps;
  for (auto& p : m.parameters()) ps.push_back(p.detach().clone());
  return ps;
}
bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}
}  // namespace

TEST(Trainer, RolloutStoresTrueNextStatesAndChunks) {
  RldtTrainer tr(tiny_hopper());
  auto m0 = tr.train_iteration();  // itr 0: evaluation
  EXPECT_TRUE(m0.eval);
  EXPECT_EQ(tr.buffer().size(), 0);  // evaluation iterations store and update nothing
  auto m1 = tr.train_iteration();
  EXPECT_FALSE(m1.eval);
  const auto& b = tr.last_rollout();
  ASSERT_EQ(b.obs.sizes(), (std::vector<int64_t>{4, 30, 11}));
  ASSERT_EQ(b.chunks.sizes(), (std::vector<int64_t>{4, 30, 2, 3}));
  EXPECT_LE(b.chunks.abs().max().item<double>(), 1.0);
  int64_t dones = 0;
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t t = 0; t + 1 < 30; ++t) {
      const bool done = b.terminated[i][t].item<float>() > 0 || b.truncated[i][t].item<float>() > 0;
      if (done) {
        ++dones;
        // Autoreset: the next stored state starts a new episode; next_obs keeps the final one.
        EXPECT_FALSE(torch::equal(b.next_obs[i][t], b.obs[i][t + 1])) << i << "," << t;
      } else {
        EXPECT_TRUE(torch::equal(b.next_obs[i][t], b.obs[i][t + 1])) << i << "," << t;
      }
    }
  }
  EXPECT_GT(dones, 0) << "a random Hopper falls within 60 steps; the test needs episode ends";
  EXPECT_GT(m1.episodes, 0);
  EXPECT_TRUE(is_finite(m1.episode_return) && is_finite(m1.critic_loss) && is_finite(m1.actor_loss)) << m1.critic_loss;
  EXPECT_EQ(tr.buffer().size(), 4);
  EXPECT_GT(m1.env_steps, m0.env_steps);
}

TEST(Trainer, SameSeedSameRun) {
  auto run = [] {
    RldtTrainer tr(tiny_hopper());
    std::vector<double> out;
    for (int i = 0; i < 3; ++i) {
      auto m = tr.train_iteration();
      out.insert(out.end(), {m.episode_return, m.critic_loss, m.actor_loss, m.reward_per_step});
    }
    return out;
  };
  auto a = run(), b = run();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::isnan(a[i]) && std::isnan(b[i]))) EXPECT_EQ(a[i], b[i]) << i;
}

TEST(Trainer, ReferenceActorFollowsItsRefreshSchedule) {
  // reference_refresh_freq 1 (ALGORITHM.md §6): after a training iteration the reference equals the
  // trained actor. 0: the reference stays the policy the trainer was given, while the actor moves.
  // 2: refreshed after iterations 2, 4, ... only (iteration 3 is an evaluation iteration here).
  auto same = [](VelocityNet& a, VelocityNet& b) { return all_equal(params_of(*a), params_of(*b)); };
  // A given policy whose reference differs from its actor: the trainer starts L_ref at the actor.
  auto make_given = [] {
    auto pc = tiny_hopper().policy;
    pc.obs_dim = 11;  // Hopper
    pc.action_dim = 3;
    auto p = std::make_shared<FlowPolicy>(pc, 5);
    torch::NoGradGuard ng;
    for (auto& w : p->reference()->parameters()) w.add_(1.0);
    return p;
  };
  std::vector<torch::Tensor> base;
  for (auto& p : make_given()->actor()->parameters()) base.push_back(p.detach().clone());
  auto equals_base = [&](VelocityNet& net) {
    auto ps = net->parameters();
    for (size_t i = 0; i < ps.size(); ++i)
      if (!torch::equal(ps[i], base[i])) return false;
    return true;
  };
  for (int64_t freq : {1, 0, 2}) {
    auto cfg = tiny_hopper();
    cfg.reference_refresh_freq = freq;
    RldtTrainer tr(cfg, make_given());
    EXPECT_TRUE(equals_base(tr.policy().reference())) << freq;
    for (int i = 0; i < 5; ++i) {
      const auto m = tr.train_iteration();
      if (m.eval) continue;
      const bool refreshed = freq == 1 || (freq == 2 && i % 2 == 0);
      EXPECT_EQ(same(tr.policy().reference(), tr.policy().actor()), refreshed) << "freq " << freq << " itr " << i;
      EXPECT_FALSE(equals_base(tr.policy().actor())) << "the actor must move; freq " << freq << " itr " << i;
      if (freq == 0) EXPECT_TRUE(equals_base(tr.policy().reference())) << i;
    }
  }
}

TEST(Trainer, ActorQReduceChoosesTheCriticValueTheActorClimbs) {
  // Same seed, same rollouts and critic until the first actor step: each mode's actor must end
  // the iteration somewhere else, and each mode is deterministic.
  auto run = [](const std::string& mode) {
    auto cfg = tiny_hopper();
    cfg.actor_q_reduce = mode;
    cfg.n_critic_warmup_itr = 0;
    cfg.val_freq = 100;
    RldtTrainer tr(cfg);
    tr.train_iteration();
    tr.train_iteration();
    return params_of(*tr.policy().actor());
  };
  const auto mean = run("mean"), mn = run("min"), member = run("member");
  EXPECT_TRUE(all_equal(mn, run("min")));
  EXPECT_TRUE(all_equal(member, run("member")));
  EXPECT_FALSE(all_equal(mean, mn));
  EXPECT_FALSE(all_equal(mean, member));
  EXPECT_FALSE(all_equal(mn, member));
}

TEST(Trainer, DeterministicBootstrapUsesOneNoiseFreeNextAction) {
  // "deterministic": the bootstrap's next action is the x_0 = 0 sample, so the number of samples
  // (q_bootstrap) changes nothing and no random numbers are drawn for it; "sample" depends on both.
  auto critic_after = [](const std::string& mode, int64_t samples) {
    auto cfg = tiny_hopper();
    cfg.q_bootstrap_mode = mode;
    cfg.q_bootstrap = samples;
    cfg.policy_update_steps = 0;  // critic only: the actor stays put
    cfg.val_freq = 100;
    RldtTrainer tr(cfg);
    tr.train_iteration();
    tr.train_iteration();
    return params_of(*tr.critic().online());
  };
  const auto det2 = critic_after("deterministic", 2);
  EXPECT_TRUE(all_equal(det2, critic_after("deterministic", 5)));
  EXPECT_FALSE(all_equal(critic_after("sample", 2), critic_after("sample", 5)));
  EXPECT_FALSE(all_equal(det2, critic_after("sample", 2)));
}

TEST(Trainer, CriticStopsTrainingAtCriticTrainItr) {
  // critic_train_itr 2: iteration 1 trains the critic (0 evaluates); from iteration 2 on the
  // critic's online and target nets stay as they were while the actor keeps moving.
  auto cfg = tiny_hopper();
  cfg.critic_train_itr = 2;
  cfg.val_freq = 100;
  RldtTrainer tr(cfg);
  const auto critic0 = params_of(*tr.critic().online());
  tr.train_iteration();
  tr.train_iteration();
  const auto critic1 = params_of(*tr.critic().online()), target1 = params_of(*tr.critic().target());
  EXPECT_FALSE(all_equal(critic0, critic1));
  const auto actor1 = params_of(*tr.policy().actor());
  for (int i = 0; i < 2; ++i) {
    const auto m = tr.train_iteration();
    EXPECT_TRUE(std::isnan(m.critic_loss)) << "no critic step, no critic loss";
  }
  EXPECT_TRUE(all_equal(critic1, params_of(*tr.critic().online())));
  EXPECT_TRUE(all_equal(target1, params_of(*tr.critic().target())));
  EXPECT_FALSE(all_equal(actor1, params_of(*tr.policy().actor())));
}

TEST(Trainer, CriticLrDecaysPerIteration) {
  // critic_lr_decay 0.5: iteration i trains the critic at critic.lr · 0.5^i (evaluation
  // iterations train nothing; the next training iteration still uses its own i).
  auto cfg = tiny_hopper();
  cfg.critic_lr_decay = 0.5;
  cfg.val_freq = 2;  // iterations 0 and 2 evaluate
  RldtTrainer tr(cfg);
  for (int i = 0; i < 4; ++i) {
    tr.train_iteration();
    if (i % 2 == 1) EXPECT_DOUBLE_EQ(tr.critic().lr(), cfg.critic.lr * std::pow(0.5, i)) << "iteration " << i;
  }
  auto same = tiny_hopper();  // the default (1) keeps the configured lr
  RldtTrainer tr1(same);
  tr1.train_iteration();
  tr1.train_iteration();
  EXPECT_DOUBLE_EQ(tr1.critic().lr(), same.critic.lr);
}

// rollout_groups: each group samples and steps its own envs on its own thread. The trajectory
// depends on the group count, never on the thread count; the draws are those of the ungrouped
// rollout, so its first chunk step matches it up to matmul rounding (a wrong noise row or an
// extra draw would differ by O(0.1)).
TEST(Trainer, GroupedRolloutDoesNotDependOnThreadCount) {
  auto c = tiny_hopper();
  c.n_envs = 5;
  c.rollout_groups = 2;
  c.env_threads = 1;
  RldtTrainer one(c);
  c.env_threads = 2;
  RldtTrainer two(c);
  const auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  int64_t episodes = 0;
  for (int i = 0; i < 4; ++i) {  // evaluation, two exploring iterations with updates, evaluation
    auto m1 = one.train_iteration(), m2 = two.train_iteration();
    const auto &a = one.last_rollout(), &b = two.last_rollout();
    ASSERT_TRUE(torch::equal(a.obs, b.obs)) << "iteration " << i;
    ASSERT_TRUE(torch::equal(a.chunks, b.chunks)) << "iteration " << i;
    ASSERT_TRUE(torch::equal(a.rewards, b.rewards)) << "iteration " << i;
    ASSERT_TRUE(torch::equal(a.next_obs, b.next_obs)) << "iteration " << i;
    ASSERT_TRUE(torch::equal(a.terminated, b.terminated)) << "iteration " << i;
    EXPECT_EQ(m1.env_steps, m2.env_steps);
    EXPECT_EQ(m1.episodes, m2.episodes);
    EXPECT_TRUE(same(m1.episode_return, m2.episode_return)) << m1.episode_return << " vs " << m2.episode_return;
    EXPECT_TRUE(same(m1.critic_loss, m2.critic_loss)) << m1.critic_loss << " vs " << m2.critic_loss;
    episodes += m1.episodes;
  }
  EXPECT_GT(episodes, 0);  // the statistics of ended episodes were exercised
  EXPECT_TRUE(all_equal(params_of(*one.policy().actor()), params_of(*two.policy().actor())));
  EXPECT_TRUE(torch::equal(generator_state(one.generator()), generator_state(two.generator())));
}

// The BLAS thread setting the grouped rollout uses: found in the loaded OpenBLAS (setup installs
// libopenblas0-pthread), set for a scope and restored, including when the scope is left by an error.
TEST(BlasThreads, ScopedSettingIsRestored) {
  const int before = blas_num_threads();
  ASSERT_GT(before, 0) << "the loaded BLAS has no thread setting; the setup installs OpenBLAS";
  ASSERT_TRUE(set_blas_num_threads(2));
  EXPECT_EQ(blas_num_threads(), 2);
  {
    ScopedBlasThreads one(1);
    EXPECT_EQ(blas_num_threads(), 1);
  }
  EXPECT_EQ(blas_num_threads(), 2);
  try {
    ScopedBlasThreads one(1);
    throw std::runtime_error("leave the scope");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(blas_num_threads(), 2);
  EXPECT_THROW(set_blas_num_threads(0), std::invalid_argument);
  // A grouped rollout leaves the setting as it found it.
  auto c = tiny_hopper();
  c.rollout_groups = 2;
  RldtTrainer tr(c);
  tr.train_iteration();
  EXPECT_EQ(blas_num_threads(), 2);
  set_blas_num_threads(before);
}

TEST(Trainer, GroupedRolloutDrawsWhatTheUngroupedOneDraws) {
  for (const char* mode : {"min_extrp", "add", "none", "extrapolate"}) {
    auto c = tiny_hopper();
    c.n_envs = 5;
    c.n_steps = 1;  // iteration 1's first chunk step starts from nearly the same states
    c.val_freq = 100;
    c.exploration.action_sample_noise = 0.3;
    if (std::string(mode) == "extrapolate")
      c.exploration.sample_mode = "extrapolate";
    else
      c.exploration.noise_mode = mode;
    RldtTrainer ref(c);
    c.rollout_groups = 3;  // groups of 1, 2 and 2 envs
    RldtTrainer grouped(c);
    for (int i = 0; i < 2; ++i) {  // evaluation (x_0 = 0), then exploring
      auto m1 = ref.train_iteration(), m2 = grouped.train_iteration();
      const auto &a = ref.last_rollout(), &b = grouped.last_rollout();
      EXPECT_TRUE(torch::allclose(a.obs, b.obs, 0, 1e-5)) << mode << " iteration " << i;
      EXPECT_TRUE(torch::allclose(a.chunks, b.chunks, 0, 1e-4))
          << mode << " iteration " << i << ": max diff " << (a.chunks - b.chunks).abs().max().item<float>();
      EXPECT_TRUE(torch::allclose(a.rewards, b.rewards, 0, 1e-3)) << mode << " iteration " << i;
      EXPECT_EQ(m1.env_steps, m2.env_steps);
    }
    // The same draws: the generators end in the same state.
    EXPECT_TRUE(torch::equal(generator_state(ref.generator()), generator_state(grouped.generator()))) << mode;
  }
}

// rollout_inference "packed": the rollout samples through InferencePolicy's packed weights. The
// draws are those of the LibTorch path in every exploration mode (the first chunk step matches up
// to rounding, the generators end in the same state), and the evaluation's first-chunk Q agrees.
TEST(Trainer, PackedRolloutInferenceDrawsWhatTheTorchPathDraws) {
  for (const char* mode : {"min_extrp", "add", "none", "extrapolate", "qsample"}) {
    auto c = tiny_hopper();
    c.n_envs = 5;
    c.n_steps = 1;
    c.val_freq = 100;
    c.eval_episodes = 2;
    c.exploration.action_sample_noise = 0.3;
    if (std::string(mode) == "extrapolate" || std::string(mode) == "qsample")
      c.exploration.sample_mode = mode;
    else
      c.exploration.noise_mode = mode;
    RldtTrainer ref(c);
    c.rollout_inference = "packed";
    RldtTrainer packed(c);
    for (int i = 0; i < 2; ++i) {  // evaluation (x_0 = 0, and the eval episodes), then exploring
      auto m1 = ref.train_iteration(), m2 = packed.train_iteration();
      const auto &a = ref.last_rollout(), &b = packed.last_rollout();
      EXPECT_TRUE(torch::allclose(a.obs, b.obs, 0, 1e-5)) << mode << " iteration " << i;
      EXPECT_TRUE(torch::allclose(a.chunks, b.chunks, 0, 1e-4))
          << mode << " iteration " << i << ": max diff " << (a.chunks - b.chunks).abs().max().item<float>();
      EXPECT_EQ(m1.env_steps, m2.env_steps);
      if (i == 0) EXPECT_NEAR(m1.eval_q, m2.eval_q, 1e-4 * (1.0 + std::abs(m1.eval_q))) << mode;
    }
    // A second evaluation, after an update: the kept snapshot was refreshed to the new weights.
    const double q_ref = ref.evaluate(2).mean_q0, q_packed = packed.evaluate(2).mean_q0;
    EXPECT_NEAR(q_packed, q_ref, 1e-4 * (1.0 + std::abs(q_ref))) << mode;
    EXPECT_TRUE(torch::equal(generator_state(ref.generator()), generator_state(packed.generator()))) << mode;
  }
}

// With "packed" a state's action does not depend on its batch, so rollout_groups leaves the whole
// run unchanged: rollouts, losses and weights bit for bit. Ungrouped, the snapshot spreads each
// batch over the 2 env threads: 17 envs split by rows, 6 by columns. Grouped (3 groups, and the
// automatic choice: 2, one per env thread), each group's snapshot runs on its group's thread.
TEST(Trainer, PackedRolloutIsTheSameForAnyGroupCount) {
  for (int64_t envs : {17, 6}) {
    auto c = tiny_hopper();
    c.n_envs = envs;
    c.rollout_inference = "packed";
    c.rollout_groups = 1;
    RldtTrainer one(c);
    c.rollout_groups = 3;
    RldtTrainer three(c);
    c.rollout_groups = 0;
    RldtTrainer automatic(c);
    EXPECT_EQ(one.rollout_groups(), 1);
    EXPECT_EQ(three.rollout_groups(), 3);
    EXPECT_EQ(automatic.rollout_groups(), 2);
    for (int i = 0; i < 4; ++i) {  // evaluation, two exploring iterations with updates, evaluation
      auto m1 = one.train_iteration(), m2 = three.train_iteration(), m0 = automatic.train_iteration();
      for (const RldtTrainer* other : {&three, &automatic}) {
        const auto &a = one.last_rollout(), &b = other->last_rollout();
        const std::string what = std::to_string(envs) + " envs, " + std::to_string(other->rollout_groups()) +
                                 " groups, iteration " + std::to_string(i);
        ASSERT_TRUE(torch::equal(a.chunks, b.chunks)) << what;
        ASSERT_TRUE(torch::equal(a.next_obs, b.next_obs)) << what;
        ASSERT_TRUE(torch::equal(a.rewards, b.rewards)) << what;
      }
      for (const auto& m : {m2, m0}) {
        EXPECT_EQ(m1.episodes, m.episodes);
        EXPECT_TRUE(m1.critic_loss == m.critic_loss || (std::isnan(m1.critic_loss) && std::isnan(m.critic_loss)))
            << m1.critic_loss << " vs " << m.critic_loss;
      }
    }
    EXPECT_TRUE(all_equal(params_of(*one.policy().actor()), params_of(*three.policy().actor()))) << envs << " envs";
    EXPECT_TRUE(all_equal(params_of(*one.policy().actor()), params_of(*automatic.policy().actor()))) << envs << " envs";
  }
}

// rollout_groups 0 chooses the layout: 1 with "torch" (whose trajectory depends on it), one group
// per env thread with "packed" (at most n_envs; 1 for qsample, which the groups do not support).
TEST(Trainer, AutomaticRolloutGroupsFollowTheInference) {
  auto c = tiny_hopper();
  ASSERT_EQ(c.rollout_groups, 0);  // the default
  EXPECT_EQ(RldtTrainer(c).rollout_groups(), 1);
  c.rollout_inference = "packed";
  EXPECT_EQ(RldtTrainer(c).rollout_groups(), 2);
  c.env_threads = 1;
  EXPECT_EQ(RldtTrainer(c).rollout_groups(), 1);
  c.env_threads = 3;
  c.n_envs = 2;
  EXPECT_EQ(RldtTrainer(c).rollout_groups(), 2);  // (not more groups than envs)
  c.env_threads = 2;
  c.n_envs = 4;
  c.exploration.sample_mode = "qsample";
  EXPECT_EQ(RldtTrainer(c).rollout_groups(), 1);
  // Driven through act/observe, the caller steps the envs: one group.
  c.exploration.sample_mode = "full";
  ExternalEnvSpec spec;
  spec.name = "pendulum-like";
  spec.obs_dim = 3;
  spec.action_low = {-1.0};
  spec.action_high = {1.0};
  c.policy.horizon_steps = 3;
  EXPECT_EQ(RldtTrainer(c, spec).rollout_groups(), 1);
}

TEST(Trainer, ConfigErrorsNameTheField) {
  auto expect_msg = [](RldtTrainerConfig c, const std::string& what) {
    try {
      RldtTrainer tr(c);
      ADD_FAILURE() << "no error; expected one naming " << what;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  auto c = tiny_hopper();
  c.act_steps = 4;  // > horizon_steps 3
  expect_msg(c, "act_steps");
  c = tiny_hopper();
  c.rollout_groups = -1;
  expect_msg(c, "rollout_groups");
  c.rollout_groups = 5;  // > n_envs 4
  expect_msg(c, "rollout_groups");
  c.rollout_groups = 2;
  c.exploration.sample_mode = "qsample";
  expect_msg(c, "rollout_groups");
  c = tiny_hopper();
  c.rollout_inference = "fast";
  expect_msg(c, "rollout_inference");
  c = tiny_hopper();
  c.exploration.min_extrp_step = 4;  // K = 4
  expect_msg(c, "min_extrp_step");
  c = tiny_hopper();
  c.q_update_steps = 3;
  expect_msg(c, "q_update_steps");
  c = tiny_hopper();
  c.exploration.noise_mode = "loud";
  expect_msg(c, "noise_mode");
  c = tiny_hopper();
  c.actor.n_particles = 1;
  expect_msg(c, "n_particles");
  c = tiny_hopper();
  c.reference_refresh_freq = -1;
  expect_msg(c, "reference_refresh_freq");
  c = tiny_hopper();
  c.actor_traj_stride = -2;
  expect_msg(c, "actor_traj_stride");
  c = tiny_hopper();
  c.actor_q_reduce = "max";
  expect_msg(c, "actor_q_reduce");
  c = tiny_hopper();
  c.q_bootstrap_mode = "mean";
  expect_msg(c, "q_bootstrap_mode");
  c = tiny_hopper();
  c.critic_train_itr = -1;
  expect_msg(c, "critic_train_itr");
  for (double bad : {0.0, 1.5, std::nan("")}) {
    c = tiny_hopper();
    c.critic_lr_decay = bad;
    expect_msg(c, "critic_lr_decay");
  }
  c = tiny_hopper();
  c.env = "Hoppr-v5";
  try {
    RldtTrainer tr(c);
    ADD_FAILURE();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("Hopper-v5"), std::string::npos) << e.what();  // lists valid names
  }
}

TEST(Trainer, NonFiniteValuesStopTheRunNamingQuantityAndIteration) {
  auto c = tiny_hopper();
  c.critic.init_std = 1e20;  // Q values overflow float32 on the first forward pass
  RldtTrainer tr(c);
  tr.train_iteration();  // evaluation: no critic involved
  try {
    tr.train_iteration();
    ADD_FAILURE() << "no NonFiniteError";
  } catch (const NonFiniteError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bootstrap Q value"), std::string::npos) << msg;
    EXPECT_NE(msg.find("iteration 1"), std::string::npos) << msg;
  }
}

TEST(Trainer, LearnsInvertedPendulumFromScratch) {
  // Training from scratch (ALGORITHM.md §7's scratch settings, scaled down for 2 cores).
  RldtTrainerConfig c;
  c.env = "InvertedPendulum-v5";
  c.n_envs = 16;
  c.env_threads = 2;
  c.n_steps = 50;
  c.act_steps = 1;
  c.val_freq = 4;
  c.n_critic_warmup_itr = 0;
  c.gamma = 0.99;
  c.td_lambda = 0.5;
  c.q_update_steps = 64;
  c.q_repeat = 4;
  c.q_minibatch = 256;
  c.policy_update_steps = 16;
  c.actor_max_states = 128;
  c.reward_scale = 1.0;
  c.policy.horizon_steps = 1;
  c.policy.denoising_steps = 8;
  c.policy.mlp_dims = {64, 64, 64};
  c.critic.hidden = {64, 64};
  c.critic.activation = "relu";
  c.critic.lr = 1e-3;
  c.critic.target_momentum = 0.99;
  c.actor.lr = 1e-3;
  c.actor.lr_warmup_steps = 0;
  c.actor.n_particles = 8;
  c.actor.c_cons = 1.0;
  c.exploration.noise_mode = "add";
  c.exploration.action_sample_noise = 0.1;
  c.exploration.min_extrp_step = 6;
  RldtTrainer tr(c);
  std::vector<double> train_returns, eval_returns;
  for (int i = 0; i < 41; ++i) {
    auto m = tr.train_iteration();
    ASSERT_TRUE(m.eval || (std::isfinite(m.critic_loss) && std::isfinite(m.actor_loss))) << "iteration " << i;
    (m.eval ? eval_returns : train_returns).push_back(m.episode_return);
    if (m.eval)
      std::cout << "InvertedPendulum itr " << m.iteration << ": deterministic return " << m.episode_return << "\n";
  }
  // A random policy balances ≈ 5–6 steps (Gymnasium's random-policy return, also measured in
  // test_envs_*); the first training iterations with exploration noise are at that level. 41
  // iterations reached ≈ 100 here; 40 leaves room for run-to-run variation.
  const double early = (train_returns[0] + train_returns[1] + train_returns[2]) / 3.0;
  const double late = 0.5 * (eval_returns[eval_returns.size() - 1] + eval_returns[eval_returns.size() - 2]);
  std::cout << "early training return " << early << ", last two evaluations " << late << "\n";
  EXPECT_LT(early, 12.0);
  EXPECT_GT(late, 40.0);
  EXPECT_GT(late, 4.0 * early);
}

namespace {
std::vector<double> comparable(const IterationMetrics& m) { return test::comparable_metrics(m); }
void expect_same(const std::vector<double>& a, const std::vector<double>& b, int64_t itr) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::isnan(a[i]) && std::isnan(b[i]))) EXPECT_EQ(a[i], b[i]) << "iteration " << itr << ", field " << i;
}
}  // namespace

TEST(Trainer, AskTellOnAnExternalVecEnvEqualsTheNativeLoop) {
  // The same env stepped by the caller through act/observe/update gives the native loop's
  // metrics and weights bit for bit (same seeds, same random stream).
  const auto cfg = tiny_hopper();
  RldtTrainer native(cfg);
  VecEnv env(cfg.env, static_cast<int>(cfg.n_envs), 1, cfg.env_options);
  ExternalEnvSpec spec;
  spec.name = "caller's Hopper";
  spec.obs_dim = env.obs_dim();
  spec.action_low = env.spec().action.low;
  spec.action_high = env.spec().action.high;
  RldtTrainer told(cfg, spec);
  EXPECT_TRUE(told.external_env());
  EXPECT_THROW(told.train_iteration(), std::logic_error);
  const int64_t N = cfg.n_envs, O = env.obs_dim(), H = cfg.policy.horizon_steps;
  auto to_tensor = [](const std::vector<double>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kDouble).view(shape);
  };
  auto obs = to_tensor(env.reset(cfg.seed).obs, {N, O});
  for (int itr = 0; itr < 4; ++itr) {
    EXPECT_EQ(told.eval_iteration(), itr % cfg.val_freq == 0);
    for (int64_t t = 0; t < cfg.n_steps; ++t) {
      auto chunk = told.act(obs);
      ASSERT_EQ(chunk.sizes(), (std::vector<int64_t>{N, H, env.act_dim()}));
      ASSERT_EQ(chunk.scalar_type(), torch::kDouble);
      std::vector<double> a(chunk.data_ptr<double>(), chunk.data_ptr<double>() + chunk.numel());
      const auto& out = env.step_chunk(a, static_cast<int>(H), static_cast<int>(cfg.act_steps));
      auto next = to_tensor(out.obs, {N, O});
      auto final_obs = to_tensor(out.final_obs, {N, O});
      auto term = torch::tensor(std::vector<int64_t>(out.terminated.begin(), out.terminated.end()));
      auto trunc = torch::tensor(std::vector<int64_t>(out.truncated.begin(), out.truncated.end()));
      auto done = (term + trunc).gt(0).view({N, 1});
      told.observe(torch::tensor(out.reward, torch::kDouble), term, trunc, torch::where(done, final_obs, next),
                   torch::tensor(std::vector<int64_t>(out.steps_executed.begin(), out.steps_executed.end())));
      obs = next;
    }
    EXPECT_EQ(told.steps_collected(), cfg.n_steps);
    const auto a = native.train_iteration(), b = told.update();
    expect_same(comparable(a), comparable(b), itr);
  }
  auto pa = native.policy().actor()->parameters(), pb = told.policy().actor()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

TEST(Trainer, AskTellMisuseIsReported) {
  const auto cfg = tiny_hopper();
  ExternalEnvSpec spec;
  spec.obs_dim = 11;
  spec.action_low = {-1, -1, -1};
  spec.action_high = {1, 1, 1};
  RldtTrainer tr(cfg, spec);
  const int64_t N = cfg.n_envs;
  auto obs = torch::zeros({N, 11});
  auto zeros = torch::zeros({N});
  EXPECT_THROW(tr.observe(zeros, zeros, zeros, obs), std::logic_error);  // nothing acted
  EXPECT_THROW(tr.update(), std::logic_error);                           // nothing collected
  auto expect_msg = [](auto&& fn, const std::string& what) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one naming " << what;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { tr.act(torch::zeros({N, 10})); }, "obs has shape");
  auto nan_obs = obs.clone();
  nan_obs[2][3] = std::nan("");
  expect_msg([&] { tr.act(nan_obs); }, "non-finite");
  auto chunk = tr.act(obs);
  EXPECT_THROW(tr.act(obs), std::logic_error);  // not observed yet
  expect_msg([&] { tr.observe(torch::zeros({N + 1}), zeros, zeros, obs); }, "rewards has shape");
  expect_msg([&] { tr.observe(zeros, zeros, zeros, obs, torch::full({N}, 7, torch::kLong)); }, "steps must be");
  tr.observe(zeros, zeros, zeros, obs);
  EXPECT_EQ(tr.steps_collected(), 1);
  // Bad env specs name the field.
  auto bad = spec;
  bad.action_high = {1, 1};
  expect_msg([&] { RldtTrainer t(cfg, bad); }, "action_high");
  bad = spec;
  bad.action_low[1] = -std::numeric_limits<double>::infinity();
  expect_msg([&] { RldtTrainer t(cfg, bad); }, "finite");
}

TEST(Trainer, SampleModesAgreeWithPlainSamplingInTheirLimits) {
  // extrapolate with σ = 0 from k = K−1 is one Euler step from x_{K−1}: the plain sample x_K;
  // qsample with σ = 0 leaves the sample unchanged. Checked on the first training act.
  auto cfg = tiny_hopper();
  cfg.n_steps = 2;
  cfg.exploration.action_sample_noise = 0.0;
  ExternalEnvSpec spec;
  spec.obs_dim = 11;
  spec.action_low = {-1, -1, -1};
  spec.action_high = {1, 1, 1};
  const int64_t N = cfg.n_envs;
  auto obs = torch::randn({N, 11}, make_generator(5));
  auto first_training_act = [&](const std::string& sample, const std::string& noise, int64_t min_step) {
    auto c = cfg;
    c.exploration.sample_mode = sample;
    c.exploration.noise_mode = noise;
    c.exploration.min_extrp_step = min_step;
    RldtTrainer tr(c, spec);
    auto zeros = torch::zeros({N});
    for (int64_t t = 0; t < c.n_steps; ++t) {  // iteration 0 is an evaluation
      tr.act(obs);
      tr.observe(zeros, zeros, zeros, obs);
    }
    tr.update();
    EXPECT_FALSE(tr.eval_iteration());
    return tr.act(obs);
  };
  const int64_t K = cfg.policy.denoising_steps;
  const auto plain = first_training_act("full", "none", 0);
  const auto extrapolated = first_training_act("extrapolate", "none", K - 1);
  const auto langevin = first_training_act("qsample", "none", 0);
  EXPECT_TRUE(torch::allclose(plain, extrapolated, 0.0, 1e-5)) << (plain - extrapolated).abs().max();
  EXPECT_TRUE(torch::equal(plain, langevin));
  {  // min_extrp from k = K−1 with a final clamp: ŷ_{K−1} = x_K, so clamp(ŷ) = a and r = 0 although
    // x_K overshoots ±0.3 in most entries: the exploring action is the plain (clamped) sample.
    auto clipped = cfg;
    clipped.policy.final_action_clip = 0.3;
    std::swap(cfg, clipped);
    const auto plain_clipped = first_training_act("full", "none", 0);
    const auto min_extrp = first_training_act("full", "min_extrp", K - 1);
    std::swap(cfg, clipped);
    EXPECT_LE(plain_clipped.abs().max().item<double>(), 0.3 + 1e-6);
    EXPECT_GT(plain_clipped.abs().eq(0.3f).to(torch::kFloat).mean().item<double>(), 0.3);  // many clamped
    EXPECT_TRUE(torch::allclose(plain_clipped, min_extrp, 0.0, 1e-5)) << (plain_clipped - min_extrp).abs().max();
  }
  // With noise, each mode explores (differs from the plain sample) and stays finite and in bounds.
  cfg.exploration.action_sample_noise = 0.2;
  for (const std::string mode : {"full", "extrapolate", "qsample"}) {
    const auto noisy = first_training_act(mode, "add", 1);
    EXPECT_TRUE(torch::isfinite(noisy).all().item<bool>()) << mode;
    EXPECT_LE(noisy.abs().max().item<double>(), 1.0) << mode;
    EXPECT_GT((noisy - plain).abs().max().item<double>(), 1e-3) << mode;
  }
}

TEST(Trainer, MinExtrpRadiusComparesInTheClampedBox) {
  // a = clamp(x_K, ±clip); ŷ beyond the box must not count its overshoot as uncertainty.
  auto a = torch::tensor({1.0f, 0.5f, -1.0f, 0.0f}).view({2, 1, 2});
  auto y = torch::tensor({1.8f, 0.5f, -1.0f, 0.3f}).view({2, 1, 2});
  auto r_off = min_extrp_radius(a, y, 0.0);
  auto r_on = min_extrp_radius(a, y, 1.0);
  ASSERT_EQ(r_on.sizes(), c10::IntArrayRef({2}));
  EXPECT_NEAR(r_off[0].item<double>(), 0.8, 1e-6);  // the overshoot, counted without a clip
  EXPECT_NEAR(r_on[0].item<double>(), 0.0, 1e-6);   // 1.8 clamps to 1 = a
  EXPECT_NEAR(r_on[1].item<double>(), 0.3, 1e-6);   // inside the box nothing changes
  EXPECT_NEAR(r_off[1].item<double>(), 0.3, 1e-6);
  // Whole-chunk norm: sqrt(0.3² + 0.4²).
  EXPECT_NEAR(
      min_extrp_radius(torch::zeros({1, 2, 1}), torch::tensor({0.3f, -0.4f}).view({1, 2, 1}), 1.0).item<double>(), 0.5,
      1e-6);
  auto message = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const ArgumentError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message([&] { min_extrp_radius(a, y.view({2, 2}), 1.0); }).find("must have the same"), std::string::npos);
  EXPECT_NE(message([&] { min_extrp_radius(a, y, -1.0); }).find("clip must be >= 0"), std::string::npos);
}

TEST(Trainer, EverySampleModeTrains) {
  for (const std::string mode : {"extrapolate", "qsample"}) {
    auto c = tiny_hopper();
    c.exploration.sample_mode = mode;
    RldtTrainer tr(c);
    tr.train_iteration();
    auto m = tr.train_iteration();
    EXPECT_TRUE(is_finite(m.critic_loss) && is_finite(m.actor_loss)) << mode;
  }
  auto c = tiny_hopper();
  c.exploration.sample_mode = "langevin";
  try {
    RldtTrainer tr(c);
    ADD_FAILURE() << "no error for sample_mode 'langevin'";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("exploration.sample_mode"), std::string::npos) << e.what();
  }
}

TEST(Trainer, EvaluationComparesCriticQWithDiscountedReturn) {
  // eval_q: the critic's Q of the evaluation episodes' first chunk (mean over members and episodes,
  // divided by the reward scale); eval_discounted_return: sum_t gamma^t R_t of the same episodes.
  auto cfg = tiny_hopper();
  cfg.eval_episodes = 3;
  cfg.gamma = 1.0;  // the discounted return is then the plain episode return
  RldtTrainer tr(cfg);
  const auto m0 = tr.train_iteration();
  ASSERT_TRUE(m0.eval);
  EXPECT_NEAR(m0.eval_discounted_return, m0.eval_return, 1e-9 * std::abs(m0.eval_return));
  {  // Q recomputed from the evaluation's start states (iteration 0: no reward scale fitted yet).
    VecEnv env(cfg.env, 3, 1, cfg.env_options);
    const auto& s = env.reset(cfg.seed + kEvalSeedOffset);
    auto obs = torch::tensor(s.obs, torch::kDouble).view({3, -1});
    auto pobs = tr.policy().normalizer().normalize_obs(obs.to(torch::kFloat));
    auto gen = make_generator(1);
    torch::NoGradGuard ng;
    auto chunk = tr.policy().act(pobs, gen, /*deterministic=*/true).clamp(-1.0, 1.0);
    const double q = tr.critic().q_mean(pobs, chunk).mean().item<double>();
    EXPECT_NEAR(m0.eval_q, q, 1e-6 * std::max(1.0, std::abs(q)));
  }
  for (int i = 1; i < 3; ++i) EXPECT_TRUE(std::isnan(tr.train_iteration().eval_q)) << "training iteration " << i;
  const auto m3 = tr.train_iteration();
  ASSERT_TRUE(m3.eval);
  EXPECT_TRUE(std::isfinite(m3.eval_q));
  EXPECT_NE(m3.eval_q, m0.eval_q) << "the critic trained in between";
  EXPECT_NEAR(m3.eval_discounted_return, m3.eval_return, 1e-9 * std::abs(m3.eval_return));

  cfg.gamma = 0.9;  // Hopper's rewards are positive while it stands: discounting shrinks the sum
  RldtTrainer discounted(cfg);
  const auto d0 = discounted.train_iteration();
  EXPECT_GT(d0.eval_discounted_return, 0.0);
  EXPECT_LT(d0.eval_discounted_return, d0.eval_return);
}

TEST(Trainer, SeparateEvaluationRunsWholeEpisodesWithoutTouchingTraining) {
  // eval_episodes > 0: evaluation iterations add whole deterministic episodes on separate envs.
  // They must not change what training does (same metrics and weights as without), must repeat
  // exactly (same start states, x_0 = 0), and must see whole episodes: with
  // n_steps·act_steps = 60 < 1000 env steps, the iteration's own episodes are the short ones.
  auto cfg = tiny_hopper();
  cfg.eval_episodes = 3;
  RldtTrainer with(cfg), without(tiny_hopper());
  for (int i = 0; i < 4; ++i) {
    auto a = with.train_iteration(), b = without.train_iteration();
    auto ca = test::comparable_metrics(a), cb = test::comparable_metrics(b);
    for (size_t k = 0; k + 5 < ca.size(); ++k)  // all but the eval_* entries
      if (!(std::isnan(ca[k]) && std::isnan(cb[k]))) EXPECT_EQ(ca[k], cb[k]) << "iteration " << i << " entry " << k;
    EXPECT_EQ(a.eval, i % 3 == 0);
    EXPECT_EQ(std::isfinite(a.eval_return), a.eval) << i;
    EXPECT_TRUE(std::isnan(b.eval_return));
    if (a.eval) {
      EXPECT_GT(a.eval_length, 0.0);
      EXPECT_GT(a.seconds_eval, 0.0);
    }
  }
  auto pa = with.policy().actor()->parameters(), pb = without.policy().actor()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
  const auto r1 = with.evaluate(3), r2 = with.evaluate(3);
  ASSERT_EQ(r1.returns.size(), 3u);
  EXPECT_EQ(r1.returns, r2.returns);
  EXPECT_GT(r1.mean_length, 0.0);
  // A different episode count rebuilds the env copies.
  const auto r4 = with.evaluate(4);
  ASSERT_EQ(r4.returns.size(), 4u);
  EXPECT_THROW(with.evaluate(0), ArgumentError);
}
