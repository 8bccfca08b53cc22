// VecEnv tests: bitwise equality with sequential stepping for any thread count, same-step
// autoreset, action chunks, input validation and allocation-free steps.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"
#include "rldt/envs/vec_env.hpp"

using namespace rldt;

// --- allocation counter: global operator new replaced for this test executable ---------------
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

std::vector<double> random_actions(int n, const EnvSpec& spec, std::mt19937_64& gen) {
  const size_t ad = spec.action.size();
  std::vector<double> a(n * ad);
  for (int i = 0; i < n; ++i)
    for (size_t j = 0; j < ad; ++j)
      a[i * ad + j] = std::uniform_real_distribution<double>(spec.action.low[j], spec.action.high[j])(gen);
  return a;
}

// Everything a VecEnv run produced, for bitwise comparison.
struct Record {
  std::vector<double> values;
  std::vector<int> flags;
  void add(const VecStep& s) {
    values.insert(values.end(), s.obs.begin(), s.obs.end());
    values.insert(values.end(), s.reward.begin(), s.reward.end());
    values.insert(values.end(), s.final_obs.begin(), s.final_obs.end());
    values.insert(values.end(), s.episode_return.begin(), s.episode_return.end());
    for (const auto& i : s.info) {
      values.push_back(i.x_position);
      values.push_back(i.reward_forward);
    }
    flags.insert(flags.end(), s.terminated.begin(), s.terminated.end());
    flags.insert(flags.end(), s.truncated.begin(), s.truncated.end());
    flags.insert(flags.end(), s.steps_executed.begin(), s.steps_executed.end());
  }
};

Record run_vec(const std::string& task, int n, int threads, int steps, const EnvOptions& opts = {}) {
  VecEnv vec(task, n, threads, opts);
  std::mt19937_64 gen(99);
  Record rec;
  rec.add(vec.reset(1000));
  for (int k = 0; k < steps; ++k) rec.add(vec.step(random_actions(n, vec.spec(), gen)));
  return rec;
}

}  // namespace

TEST(EnvsVec, BitIdenticalWhateverTheThreadCount) {
  for (const char* task : {"Hopper-v5", "Ant-v5"}) {
    const EnvOptions opts = {{"max_episode_steps", 30}};
    Record one = run_vec(task, 6, 1, 80, opts);
    for (int threads : {2, 3, 6}) {
      Record many = run_vec(task, 6, threads, 80, opts);
      EXPECT_EQ(one.values, many.values) << task << " threads=" << threads;
      EXPECT_EQ(one.flags, many.flags) << task << " threads=" << threads;
    }
  }
}

TEST(EnvsVec, EqualsSequentialSingleEnvsWithSameStepAutoreset) {
  const int n = 4, steps = 120;
  VecEnv vec("Hopper-v5", n, 2);
  std::vector<std::unique_ptr<MujocoEnv>> singles;
  for (int i = 0; i < n; ++i) singles.push_back(make_env("Hopper-v5"));
  const size_t od = vec.obs_dim(), ad = vec.act_dim();
  const VecStep& r = vec.reset(50);
  for (int i = 0; i < n; ++i) {
    auto o = singles[i]->reset(50 + i).obs;
    EXPECT_TRUE(std::equal(o.begin(), o.end(), r.obs.begin() + i * od));
  }
  std::mt19937_64 gen(5);
  int finished = 0;
  for (int k = 0; k < steps; ++k) {
    auto actions = random_actions(n, vec.spec(), gen);
    const VecStep& s = vec.step(actions);
    for (int i = 0; i < n; ++i) {
      std::vector<double> a(actions.begin() + i * ad, actions.begin() + (i + 1) * ad);
      auto e = singles[i]->step(a);
      ASSERT_EQ(s.reward[i], e.reward);
      ASSERT_EQ(s.terminated[i], e.terminated);
      ASSERT_EQ(s.truncated[i], e.truncated);
      if (e.terminated || e.truncated) {
        ++finished;
        ASSERT_TRUE(std::equal(e.obs.begin(), e.obs.end(), s.final_obs.begin() + i * od));
        EXPECT_EQ(s.episode_length[i], e.info.elapsed_steps);
        auto o = singles[i]->reset().obs;  // autoreset continues the env's stream
        ASSERT_TRUE(std::equal(o.begin(), o.end(), s.obs.begin() + i * od));
      } else {
        ASSERT_TRUE(std::equal(e.obs.begin(), e.obs.end(), s.obs.begin() + i * od));
      }
    }
  }
  EXPECT_GT(finished, 0);  // random Hopper episodes last tens of steps: autoreset was exercised
}

TEST(EnvsVec, ChunksStopAtEpisodeEndAndSumRewards) {
  const int n = 3, chunk = 4, act_steps = 3;
  VecEnv vec("Hopper-v5", n, 2, {{"max_episode_steps", 7}});
  std::vector<std::unique_ptr<MujocoEnv>> singles;
  for (int i = 0; i < n; ++i) singles.push_back(make_env("Hopper-v5", {{"max_episode_steps", 7}}));
  vec.reset(0);
  for (int i = 0; i < n; ++i) singles[i]->reset(i);
  const size_t ad = vec.act_dim();
  std::mt19937_64 gen(1);
  for (int call = 0; call < 5; ++call) {
    auto actions = random_actions(n * chunk, vec.spec(), gen);
    const VecStep& s = vec.step_chunk(actions, chunk, act_steps);
    for (int i = 0; i < n; ++i) {
      double sum = 0;
      int executed = 0;
      bool done = false;
      for (int k = 0; k < act_steps && !done; ++k) {
        const double* row = &actions[(i * chunk + k) * ad];
        auto e = singles[i]->step(std::vector<double>(row, row + ad));
        sum += e.reward;
        ++executed;
        done = e.terminated || e.truncated;
      }
      if (done) singles[i]->reset();
      EXPECT_EQ(s.steps_executed[i], executed) << "call " << call << " env " << i;
      EXPECT_EQ(s.reward[i], sum);
    }
  }
}

// Row ranges stepped from several threads (the trainer's grouped rollout) give exactly the
// results of one step_chunk over all envs; bad ranges and bad actions in the range are refused.
TEST(EnvsVec, RowRangesFromThreadsEqualOneStepChunk) {
  const int n = 5, chunk = 3, act_steps = 2;
  VecEnv whole("Hopper-v5", n, 1), parts("Hopper-v5", n, 2);
  whole.reset(4);
  parts.reset(4);
  std::mt19937_64 gen(2);
  const int bounds[] = {0, 2, 5};
  for (int call = 0; call < 40; ++call) {
    auto actions = random_actions(n * chunk, whole.spec(), gen);
    const VecStep& a = whole.step_chunk(actions, chunk, act_steps);
    parts.parallel_groups(2,
                          [&](int g) { parts.step_chunk_rows(actions, chunk, act_steps, bounds[g], bounds[g + 1]); });
    const VecStep& b = parts.result();
    ASSERT_EQ(a.obs, b.obs) << "call " << call;
    ASSERT_EQ(a.final_obs, b.final_obs);
    ASSERT_EQ(a.reward, b.reward);
    ASSERT_EQ(a.terminated, b.terminated);
    ASSERT_EQ(a.truncated, b.truncated);
    ASSERT_EQ(a.steps_executed, b.steps_executed);
    ASSERT_EQ(a.episode_return, b.episode_return);
  }
  std::vector<double> actions(n * chunk * 3, 0.0);
  EXPECT_THROW(parts.step_chunk_rows(actions, chunk, act_steps, 3, 3), EnvError);   // empty range
  EXPECT_THROW(parts.step_chunk_rows(actions, chunk, act_steps, 2, 6), EnvError);   // past num_envs
  EXPECT_THROW(parts.step_chunk_rows(actions, chunk, act_steps, -1, 2), EnvError);  // negative
  actions[(4 * chunk + 1) * 3] = NAN;                                               // env 4, chunk row 1
  EXPECT_NO_THROW(parts.step_chunk_rows(actions, chunk, act_steps, 0, 2));          // not in the range
  try {
    parts.step_chunk_rows(actions, chunk, act_steps, 2, 5);
    FAIL() << "no error";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("Hopper-v5[4]"), std::string::npos) << e.what();
  }
}

TEST(EnvsVec, BadActionsNameTheEnvAndStepNothing) {
  VecEnv vec("Walker2d-v5", 3, 2);
  vec.reset(0);
  std::vector<double> before = vec.step(std::vector<double>(18, 0.0)).obs;
  std::vector<double> actions(18, 0.0);
  actions[2 * 6 + 4] = NAN;
  try {
    vec.step(actions);
    FAIL() << "no error";
  } catch (const EnvError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Walker2d-v5[2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  }
  try {
    vec.step(std::vector<double>(17, 0.0));
    FAIL() << "no error";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 18"), std::string::npos) << e.what();
  }
  std::vector<double> qpos(9), qvel(9);
  vec.env(0).get_state(qpos, qvel);
  auto single = make_env("Walker2d-v5");
  single->reset(0);
  single->step(std::vector<double>(6, 0.0));
  std::vector<double> q2(9), v2(9);
  single->get_state(q2, v2);
  EXPECT_EQ(qpos, q2);  // only the one good step happened
  EXPECT_THROW(VecEnv("Nope-v1", 2), EnvError);
  EXPECT_THROW(vec.env(3), EnvError);
}

TEST(EnvsVec, StepsDoNotAllocate) {
  for (int threads : {1, 2}) {
    VecEnv vec("Hopper-v5", 4, threads, {{"max_episode_steps", 10}});
    vec.reset(0);
    std::vector<double> actions(4 * 3, 0.1);
    std::vector<double> chunk_actions(4 * 2 * 3, 0.1);
    vec.step(actions);  // warm-up
    g_allocations = 0;
    g_count_allocations = true;
    for (int k = 0; k < 50; ++k) vec.step(actions);  // includes autoresets (10-step episodes)
    vec.step_chunk(chunk_actions, 2, 2);
    g_count_allocations = false;
    EXPECT_EQ(g_allocations.load(), 0) << "threads=" << threads;
  }
}
