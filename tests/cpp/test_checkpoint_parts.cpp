// Checkpoint state of the trainer's parts (save_state/load_state): a restored copy continues
// bit for bit as the original (generators, critic AdamW, actor Adam with its warm-up steps, the
// flow policy's BC AdamW, the trajectory buffer).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/data/trajectory_buffer.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

namespace {

// save_state of `from` → bytes → load_state into `into`.
template <typename A, typename B>
void transfer(const A& from, B& into) {
  torch::serialize::OutputArchive out;
  from.save_state(out);
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  into.load_state(in, "memory");
}

bool same_params(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

FlowPolicyConfig policy_config() {
  FlowPolicyConfig c;
  c.obs_dim = 3;
  c.horizon_steps = 2;
  c.action_dim = 2;
  c.denoising_steps = 4;
  c.mlp_dims = {32, 32, 32};
  return c;
}

CriticConfig critic_config() {
  CriticConfig c;
  c.obs_dim = 3;
  c.action_dim = 2;
  c.act_steps = 2;
  c.hidden = {32, 32};
  return c;
}

}  // namespace

TEST(CheckpointParts, GeneratorStateRoundTripsIncludingNormalCache) {
  auto g = make_generator(5);
  (void)torch::randn({3}, g);  // an odd number of normals leaves a cached sample
  auto state = generator_state(g);
  auto a =
      torch::cat({torch::randn({5}, g), torch::rand({4}, g).to(torch::kDouble), torch::randn({1}, g, torch::kDouble)});
  auto h = make_generator(99);
  set_generator_state(h, state, "test");
  auto b =
      torch::cat({torch::randn({5}, h), torch::rand({4}, h).to(torch::kDouble), torch::randn({1}, h, torch::kDouble)});
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_THROW(set_generator_state(h, torch::zeros({3}, torch::kUInt8), "test"), std::runtime_error);
}

TEST(CheckpointParts, CriticContinuesBitwise) {
  CriticEnsemble a(critic_config(), 1), b(critic_config(), 2);
  auto gen = make_generator(3);
  auto obs = torch::randn({4, 5, 3}, gen), chunks = torch::randn({4, 5, 2, 2}, gen), tgt = torch::randn({4, 5}, gen);
  for (int i = 0; i < 3; ++i) a.update(obs, chunks, tgt);
  transfer(a, b);
  EXPECT_TRUE(same_params(*a.online(), *b.online()));
  EXPECT_TRUE(same_params(*a.target(), *b.target()));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.update(obs, chunks, tgt), b.update(obs, chunks, tgt));
  EXPECT_TRUE(same_params(*a.online(), *b.online()));
  EXPECT_TRUE(same_params(*a.target(), *b.target()));
}

TEST(CheckpointParts, ActorUpdaterContinuesBitwiseWithWarmup) {
  ActorUpdateConfig cfg;
  cfg.n_particles = 2;
  cfg.lr_warmup_steps = 10;
  auto pa = std::make_shared<FlowPolicy>(policy_config(), 1);
  auto pb = std::make_shared<FlowPolicy>(policy_config(), 2);
  ActorUpdater ua(pa, cfg), ub(pb, cfg);
  CriticEnsemble critic(critic_config(), 4);
  ActionGradFn grad = [&](const torch::Tensor& o, const torch::Tensor& a) { return critic.action_grad(o, a); };
  auto gen = make_generator(7);
  auto obs = torch::randn({6, 3}, gen);
  for (int i = 0; i < 3; ++i) ua.update(obs, grad, gen);
  transfer(*pa, *pb);
  transfer(ua, ub);
  EXPECT_EQ(ub.steps_taken(), 3);
  EXPECT_EQ(ub.current_lr(), ua.current_lr());
  EXPECT_TRUE(same_params(*pa->actor(), *pb->actor()));
  auto gb = make_generator(0);
  set_generator_state(gb, generator_state(gen), "test");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ua.update(obs, grad, gen).loss, ub.update(obs, grad, gb).loss);
  EXPECT_TRUE(same_params(*pa->actor(), *pb->actor()));
}

TEST(CheckpointParts, FlowPolicyContinuesBitwise) {
  FlowPolicy a(policy_config(), 1), b(policy_config(), 2);
  auto gen = make_generator(8);
  auto obs = torch::randn({16, 3}, gen), act = torch::randn({16, 2, 2}, gen);
  for (int i = 0; i < 3; ++i) a.bc_update(obs, act, gen);
  a.refresh_reference();
  transfer(a, b);
  EXPECT_TRUE(same_params(*a.ema(), *b.ema()));
  EXPECT_TRUE(same_params(*a.reference(), *b.reference()));
  auto gb = make_generator(0);
  set_generator_state(gb, generator_state(gen), "test");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.bc_update(obs, act, gen), b.bc_update(obs, act, gb));
  EXPECT_TRUE(same_params(*a.actor(), *b.actor()));
  EXPECT_TRUE(same_params(*a.ema(), *b.ema()));
  // A policy of another architecture is refused with the file and the network named.
  auto other_cfg = policy_config();
  other_cfg.mlp_dims = {16, 16, 16};
  FlowPolicy other(other_cfg, 1);
  try {
    transfer(a, other);
    FAIL() << "loaded into another architecture";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'memory'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("architecture"), std::string::npos) << e.what();
  }
}

TEST(CheckpointParts, TrajectoryBufferRoundTrips) {
  auto gen = make_generator(9);
  auto batch = [&](int64_t n) {
    return TrajectoryBatch{torch::randn({n, 3, 2}, gen), torch::randn({n, 3, 1, 1}, gen),
                           torch::randn({n, 3}, gen),    torch::zeros({n, 3}),
                           torch::zeros({n, 3}),         torch::randn({n, 3, 2}, gen)};
  };
  TrajectoryBuffer a(5), b(5), empty(5), small(4);
  transfer(a, b);  // empty
  EXPECT_EQ(b.size(), 0);
  a.push(batch(3));
  a.push(batch(3));
  transfer(a, b);
  ASSERT_EQ(b.size(), 5);
  EXPECT_TRUE(torch::equal(a.all().obs, b.all().obs));
  EXPECT_TRUE(torch::equal(a.all().next_obs, b.all().next_obs));
  EXPECT_TRUE(torch::equal(a.all().chunks, b.all().chunks));
  auto fresh = batch(4);
  auto g1 = make_generator(1), g2 = make_generator(1);
  EXPECT_TRUE(torch::equal(a.sample_mixed(fresh, 4, 0.5, g1).obs, b.sample_mixed(fresh, 4, 0.5, g2).obs));
  EXPECT_THROW(transfer(a, small), std::runtime_error);
}
