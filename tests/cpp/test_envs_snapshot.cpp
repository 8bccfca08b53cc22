// Env snapshots (MujocoEnv/VecEnv::snapshot, restore): a restored env continues bit for bit as
// the one that wrote the snapshot, across autoresets and on contact-heavy tasks.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"
#include "rldt/envs/vec_env.hpp"

using namespace rldt;

namespace {

std::vector<double> random_actions(int n, const EnvSpec& spec, std::mt19937_64& gen, double widen = 1.0) {
  const size_t ad = spec.action.size();
  std::vector<double> a(n * ad);
  for (int i = 0; i < n; ++i)
    for (size_t j = 0; j < ad; ++j)
      a[i * ad + j] = widen * std::uniform_real_distribution<double>(spec.action.low[j], spec.action.high[j])(gen);
  return a;
}

// The bytes of everything a VecEnv call returned (compared with memcmp: bit for bit).
void append(std::vector<uint8_t>& out, const VecStep& s) {
  auto put = [&out](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    out.insert(out.end(), p, p + v.size() * sizeof(v[0]));
  };
  put(s.obs);
  put(s.reward);
  put(s.terminated);
  put(s.truncated);
  put(s.final_obs);
  put(s.steps_executed);
  put(s.episode_return);
  put(s.episode_length);
  for (const auto& i : s.info) {
    const double f[] = {i.x_position,  i.y_position,     i.x_velocity,     i.reward_forward,
                        i.reward_ctrl, i.reward_contact, i.reward_survive, static_cast<double>(i.elapsed_steps)};
    out.insert(out.end(), reinterpret_cast<const uint8_t*>(f), reinterpret_cast<const uint8_t*>(f) + sizeof f);
  }
}

struct Continuation {
  std::vector<uint8_t> bytes;
  int episodes_ended = 0;
};

// m steps (chunks of 3, 2 executed) with actions from `seed`.
Continuation continue_run(VecEnv& vec, int m, uint64_t seed) {
  std::mt19937_64 gen(seed);
  Continuation c;
  for (int k = 0; k < m; ++k) {
    const int chunk = 3;
    auto actions = random_actions(vec.num_envs() * chunk, vec.spec(), gen, 1.5);  // beyond the box: clamped
    const VecStep& s = vec.step_chunk(actions, chunk, 2);
    append(c.bytes, s);
    for (int i = 0; i < vec.num_envs(); ++i) c.episodes_ended += s.terminated[i] || s.truncated[i];
  }
  return c;
}

void expect_snapshot_continues_bitwise(const std::string& task, int max_steps, int k, int m) {
  SCOPED_TRACE(task);
  const EnvOptions opts = {{"max_episode_steps", max_steps}};
  const int n = 3;
  VecEnv vec(task, n, 2, opts);
  vec.reset(7);
  continue_run(vec, k, 1);
  const auto snap = vec.snapshot();
  const Continuation straight = continue_run(vec, m, 2);
  ASSERT_GT(straight.episodes_ended, 0) << "the window must include an autoreset";

  // Restored into the same VecEnv (after it moved on) and into a fresh one with another thread count.
  vec.restore(snap);
  const Continuation again = continue_run(vec, m, 2);
  ASSERT_EQ(straight.bytes.size(), again.bytes.size());
  EXPECT_EQ(0, std::memcmp(straight.bytes.data(), again.bytes.data(), straight.bytes.size()));

  VecEnv fresh(task, n, 1, opts);
  fresh.reset(12345);  // a different state, overwritten by restore
  fresh.restore(snap);
  EXPECT_EQ(snap, fresh.snapshot());
  const Continuation other = continue_run(fresh, m, 2);
  ASSERT_EQ(straight.bytes.size(), other.bytes.size());
  EXPECT_EQ(0, std::memcmp(straight.bytes.data(), other.bytes.data(), straight.bytes.size()));
}

}  // namespace

TEST(EnvsSnapshot, HopperContinuesBitwiseAcrossAutoreset) { expect_snapshot_continues_bitwise("Hopper-v5", 25, 9, 30); }

TEST(EnvsSnapshot, AntContinuesBitwiseAcrossAutoreset) { expect_snapshot_continues_bitwise("Ant-v5", 20, 7, 25); }

TEST(EnvsSnapshot, HumanoidContinuesBitwiseAcrossAutoreset) {
  expect_snapshot_continues_bitwise("Humanoid-v5", 15, 5, 20);
}

TEST(EnvsSnapshot, SingleEnvKeepsGeneratorAndEndedEpisode) {
  auto a = make_env("Hopper-v5", {{"max_episode_steps", 3}});
  a->reset(3);
  std::vector<double> act(a->spec().action.size(), 0.1);
  for (int k = 0; k < 3; ++k) a->step(act);
  ASSERT_TRUE(a->needs_reset());
  const auto snap = a->snapshot();
  auto b = make_env("Hopper-v5", {{"max_episode_steps", 3}});
  b->restore(snap);
  EXPECT_TRUE(b->needs_reset());
  EXPECT_EQ(b->elapsed_steps(), 3);
  EXPECT_THROW(b->step(act), EnvError);
  // Seedless resets continue the same generator stream.
  EXPECT_EQ(a->reset().obs, b->reset().obs);
  EXPECT_EQ(a->step(act).obs, b->step(act).obs);
}

TEST(EnvsSnapshot, RejectsForeignOrTruncatedSnapshots) {
  auto hopper = make_env("Hopper-v5");
  auto ant = make_env("Ant-v5");
  hopper->reset(1);
  ant->reset(1);
  const auto before = ant->snapshot();
  try {
    ant->restore(hopper->snapshot());
    FAIL() << "restored a Hopper snapshot into Ant";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("Hopper-v5"), std::string::npos) << e.what();
  }
  auto cut = before;
  cut.resize(cut.size() / 2);
  try {
    ant->restore(cut);
    FAIL() << "restored a truncated snapshot";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_EQ(before, ant->snapshot()) << "a failed restore changed the env";
  EXPECT_THROW(ant->restore({}), EnvError);

  VecEnv two("Hopper-v5", 2), three("Hopper-v5", 3);
  two.reset(0);
  three.reset(0);
  try {
    three.restore(two.snapshot());
    FAIL() << "restored 2 envs into 3";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("2 envs"), std::string::npos) << e.what();
  }
}
