// Single-environment tests of the native MuJoCo tasks: sizes, seeding, reward terms, health rules,
// action clipping, instability handling and error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "rldt/envs/assets.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/envs/tasks/ant.hpp"
#include "rldt/envs/tasks/hopper.hpp"
#include "rldt/envs/tasks/humanoid.hpp"
#include "rldt/envs/tasks/walker2d.hpp"

using namespace rldt;

namespace {

std::vector<double> random_action(const EnvSpec& spec, std::mt19937_64& gen) {
  std::vector<double> a(spec.action.size());
  for (size_t j = 0; j < a.size(); ++j)
    a[j] = std::uniform_real_distribution<double>(spec.action.low[j], spec.action.high[j])(gen);
  return a;
}

struct Trajectory {
  std::vector<double> obs;  // all observations concatenated
  std::vector<double> rewards;
};

Trajectory rollout(Env& env, uint64_t seed, int steps, uint64_t action_seed) {
  Trajectory t;
  std::mt19937_64 gen(action_seed);
  auto r = env.reset(seed);
  t.obs = r.obs;
  for (int k = 0; k < steps; ++k) {
    auto s = env.step(random_action(env.spec(), gen));
    t.obs.insert(t.obs.end(), s.obs.begin(), s.obs.end());
    t.rewards.push_back(s.reward);
    if (s.terminated || s.truncated) break;
  }
  return t;
}

}  // namespace

TEST(EnvsTasks, ObservationAndActionSizesMatchGymnasiumV5) {
  struct Case {
    const char* name;
    size_t obs, act;
    double dt;
  };
  for (const Case& c : {Case{"Hopper-v5", 11, 3, 0.008}, Case{"Walker2d-v5", 17, 6, 0.008},
                        Case{"HalfCheetah-v5", 17, 6, 0.05}, Case{"Ant-v5", 105, 8, 0.05},
                        Case{"Humanoid-v5", 348, 17, 0.015}, Case{"InvertedPendulum-v5", 4, 1, 0.04}}) {
    auto env = make_env(c.name);
    EXPECT_EQ(env->spec().observation.size(), c.obs) << c.name;
    EXPECT_EQ(env->spec().action.size(), c.act) << c.name;
    EXPECT_DOUBLE_EQ(env->spec().dt, c.dt) << c.name;
    EXPECT_EQ(env->spec().max_episode_steps, 1000) << c.name;
    EXPECT_EQ(env->reset(0).obs.size(), c.obs) << c.name;
  }
  EXPECT_EQ(make_env("Hopper-v5", {{"exclude_current_positions_from_observation", 0}})->spec().observation.size(), 12u);
  EXPECT_EQ(make_env("Ant-v5", {{"include_cfrc_ext_in_observation", 0}})->spec().observation.size(), 27u);
  auto hum = make_env("Humanoid-v5");
  EXPECT_DOUBLE_EQ(hum->spec().action.low[0], -0.4);
  EXPECT_DOUBLE_EQ(hum->spec().action.high[0], 0.4);
  auto ip = make_env("InvertedPendulum-v5");
  EXPECT_DOUBLE_EQ(ip->spec().action.high[0], 3.0);
}

TEST(EnvsTasks, SameSeedSameTrajectoryDifferentSeedDifferent) {
  for (const auto& name : env_names()) {
    auto a = make_env(name), b = make_env(name);
    auto ta = rollout(*a, 7, 50, 1), tb = rollout(*b, 7, 50, 1);
    EXPECT_EQ(ta.obs, tb.obs) << name;  // bitwise
    EXPECT_EQ(ta.rewards, tb.rewards) << name;
    auto tc = rollout(*b, 8, 1, 1);
    EXPECT_NE(ta.obs[0], tc.obs[0]) << name;
  }
}

TEST(EnvsTasks, ResetWithoutSeedContinuesTheStream) {
  auto env = make_env("Hopper-v5");
  auto first = env->reset(3).obs;
  auto second = env->reset().obs;
  EXPECT_NE(first, second);
  auto again = make_env("Hopper-v5");
  again->reset(3);
  EXPECT_EQ(again->reset().obs, second);
}

TEST(EnvsTasks, ResetNoiseStaysWithinScale) {
  auto env = make_env("Hopper-v5");
  std::vector<double> qpos(6), qvel(6);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    env->reset(seed);
    env->get_state(qpos, qvel);
    for (int i = 0; i < 6; ++i) {
      EXPECT_LE(std::fabs(qpos[i] - env->init_qpos()[i]), 5e-3);
      EXPECT_LE(std::fabs(qvel[i]), 5e-3);
    }
  }
  EXPECT_DOUBLE_EQ(env->init_qpos()[1], 1.25);
}

TEST(EnvsTasks, RewardTermsAddUpAndForwardTermIsDisplacementOverDt) {
  for (const char* name : {"Hopper-v5", "Walker2d-v5", "HalfCheetah-v5"}) {
    auto env = make_env(name);
    const EnvSpec& spec = env->spec();
    std::mt19937_64 gen(11);
    env->reset(5);
    std::vector<double> qpos(spec.nq), qvel(spec.nv);
    for (int k = 0; k < 20; ++k) {
      env->get_state(qpos, qvel);
      const double x_before = qpos[0];
      auto a = random_action(spec, gen);
      auto s = env->step(a);
      env->get_state(qpos, qvel);
      const double expected_fwd = (qpos[0] - x_before) / (spec.frame_skip * spec.timestep);
      EXPECT_NEAR(s.info.reward_forward, expected_fwd, 1e-12) << name;
      EXPECT_DOUBLE_EQ(s.info.x_velocity, s.info.reward_forward) << name;  // weight 1
      EXPECT_DOUBLE_EQ(s.info.x_position, qpos[0]) << name;
      double sq = 0;
      for (double v : a) sq += v * v;
      const double w = std::string(name) == "HalfCheetah-v5" ? 0.1 : 1e-3;
      EXPECT_NEAR(s.info.reward_ctrl, -w * sq, 1e-15) << name;
      EXPECT_NEAR(s.reward, s.info.reward_forward + s.info.reward_ctrl + s.info.reward_survive, 1e-12)
          << name;
      if (s.terminated) break;
    }
  }
  for (const char* name : {"Ant-v5", "Humanoid-v5"}) {
    auto env = make_env(name);
    std::mt19937_64 gen(3);
    env->reset(1);
    for (int k = 0; k < 20; ++k) {
      auto s = env->step(random_action(env->spec(), gen));
      EXPECT_NEAR(s.reward,
                  s.info.reward_forward + s.info.reward_ctrl + s.info.reward_contact + s.info.reward_survive,
                  1e-12)
          << name;
      EXPECT_LE(s.info.reward_contact, 0.0);
      if (s.terminated) break;
    }
  }
}

TEST(EnvsTasks, ForwardWeightScalesForwardTerm) {
  auto a = make_env("HalfCheetah-v5"), b = make_env("HalfCheetah-v5", {{"forward_reward_weight", 2.0}});
  a->reset(0);
  b->reset(0);
  std::vector<double> act(6, 0.3);
  auto sa = a->step(act), sb = b->step(act);
  EXPECT_DOUBLE_EQ(sb.info.reward_forward, 2.0 * sa.info.reward_forward);
}

TEST(EnvsTasks, OutOfRangeActionsAreClampedByPhysicsButCostedAsGiven) {
  auto a = make_env("Hopper-v5"), b = make_env("Hopper-v5");
  a->reset(0);
  b->reset(0);
  auto sa = a->step({1.0, -1.0, 1.0});
  auto sb = b->step({5.0, -7.0, 1.0});
  EXPECT_EQ(sa.obs, sb.obs);  // physics saw the clamped control
  EXPECT_NEAR(sa.info.reward_ctrl, -1e-3 * 3.0, 1e-15);
  EXPECT_NEAR(sb.info.reward_ctrl, -1e-3 * 75.0, 1e-15);
}

TEST(EnvsTasks, HopperHealthThresholdsAreOpenIntervals) {
  auto env = make_env("Hopper-v5");
  auto& hopper = dynamic_cast<HopperEnv&>(*env);
  env->reset(0);
  std::vector<double> qpos(env->init_qpos()), qvel(6, 0.0);
  auto with = [&](int i, double v) {
    auto q = qpos;
    q[i] = v;
    env->set_state(q, qvel);
    return hopper.is_healthy();
  };
  EXPECT_TRUE(with(1, 0.7 + 1e-9));
  EXPECT_FALSE(with(1, 0.7));
  EXPECT_TRUE(with(2, 0.2 - 1e-9));
  EXPECT_FALSE(with(2, 0.2));
  EXPECT_FALSE(with(2, -0.2));
  EXPECT_TRUE(with(3, -99.0));
  EXPECT_FALSE(with(3, -100.0));
  auto v = qvel;
  v[5] = 100.0;
  env->set_state(qpos, v);
  EXPECT_FALSE(hopper.is_healthy());  // the state range covers the velocities too
  // Through step(): a torso angle just inside / just outside the range.
  for (double angle : {0.19, 0.21}) {
    env->reset(0);
    auto q = qpos;
    q[1] = 1.5;  // in the air: no contact forces disturb the angle during the step
    q[2] = angle;
    env->set_state(q, qvel);
    auto s = env->step({0.0, 0.0, 0.0});
    EXPECT_EQ(s.terminated, angle > 0.2) << angle;
    EXPECT_DOUBLE_EQ(s.info.reward_survive, angle > 0.2 ? 0.0 : 1.0);
  }
}

TEST(EnvsTasks, Walker2dTerminatesOutsideHeightAndAngleRanges) {
  auto env = make_env("Walker2d-v5");
  std::vector<double> qvel(9, 0.0);
  struct Case {
    int index;
    double value;
    bool terminated;
  };
  for (const Case& c : {Case{1, 1.95, false}, Case{1, 2.05, true}, Case{2, 0.98, false},
                        Case{2, 1.02, true}, Case{2, -1.02, true}}) {
    env->reset(0);
    auto q = env->init_qpos();
    q[1] = 1.6;  // in the air unless the case sets the height
    q[c.index] = c.value;
    env->set_state(q, qvel);
    auto s = env->step(std::vector<double>(6, 0.0));
    EXPECT_EQ(s.terminated, c.terminated) << c.index << " = " << c.value;
  }
  auto& w = dynamic_cast<Walker2dEnv&>(*env);
  auto q = env->init_qpos();
  q[1] = 0.8;
  env->set_state(q, qvel);
  EXPECT_FALSE(w.is_healthy());
  q[1] = 0.8 + 1e-9;
  env->set_state(q, qvel);
  EXPECT_TRUE(w.is_healthy());
}

TEST(EnvsTasks, AntHealthIsAClosedHeightInterval) {
  auto env = make_env("Ant-v5");
  auto& ant = dynamic_cast<AntEnv&>(*env);
  std::vector<double> qvel(14, 0.0);
  auto q = env->init_qpos();
  for (auto [z, healthy] : std::vector<std::pair<double, bool>>{{0.2, true}, {0.2 - 1e-9, false}, {1.0, true}, {1.0 + 1e-9, false}}) {
    q[2] = z;
    env->set_state(q, qvel);
    EXPECT_EQ(ant.is_healthy(), healthy) << z;
  }
  for (auto [z, terminated] : std::vector<std::pair<double, bool>>{{0.95, false}, {1.05, true}}) {
    env->reset(0);
    q[2] = z;
    env->set_state(q, qvel);
    EXPECT_EQ(env->step(std::vector<double>(8, 0.0)).terminated, terminated) << z;
  }
}

TEST(EnvsTasks, HumanoidAndPendulumTerminationThresholds) {
  auto hum = make_env("Humanoid-v5");
  std::vector<double> qvel(23, 0.0);
  for (auto [z, terminated] : std::vector<std::pair<double, bool>>{{1.95, false}, {2.05, true}}) {
    hum->reset(0);
    auto q = hum->init_qpos();
    q[2] = z;
    hum->set_state(q, qvel);
    EXPECT_EQ(hum->step(std::vector<double>(17, 0.0)).terminated, terminated) << z;
  }
  auto ip = make_env("InvertedPendulum-v5");
  for (auto [angle, terminated] : std::vector<std::pair<double, bool>>{{0.18, false}, {0.22, true}, {-0.22, true}}) {
    ip->reset(0);
    ip->set_state(std::vector<double>{0.0, angle}, std::vector<double>{0.0, 0.0});
    auto s = ip->step({0.0});
    EXPECT_EQ(s.terminated, terminated) << angle;
    EXPECT_EQ(s.reward, terminated ? 0.0 : 1.0);
  }
}

TEST(EnvsTasks, TruncatesAtMaxEpisodeSteps) {
  auto env = make_env("HalfCheetah-v5", {{"max_episode_steps", 5}});
  env->reset(0);
  std::vector<double> a(6, 0.0);
  for (int k = 1; k <= 5; ++k) {
    auto s = env->step(a);
    EXPECT_EQ(s.truncated, k == 5);
    EXPECT_FALSE(s.terminated);
    EXPECT_EQ(s.info.elapsed_steps, k);
  }
  EXPECT_THROW(env->step(a), EnvError);  // the episode is over
  env->reset();
  EXPECT_NO_THROW(env->step(a));
}

TEST(EnvsTasks, RandomPolicyReturnsAreInPublishedRanges) {
  // Uniform random actions, 10 episodes each. Ranges bracket the random-policy means of
  // Gymnasium's own v5 tasks (measured with gymnasium 1.4 + mujoco 2.3.3, 300 episodes, 40 for
  // HalfCheetah/Ant: return/length Hopper 20/24, Walker2d 2/22, HalfCheetah -269/1000,
  // Ant -63/186, Humanoid 113/24, InvertedPendulum 5/6) with room for 10-episode noise.
  struct Case {
    const char* name;
    double ret_lo, ret_hi, len_lo, len_hi;
  };
  for (const Case& c : {Case{"Hopper-v5", 5, 80, 8, 80}, Case{"Walker2d-v5", -10, 40, 5, 80},
                        Case{"HalfCheetah-v5", -450, -150, 1000, 1000}, Case{"Ant-v5", -250, 60, 20, 1000},
                        Case{"Humanoid-v5", 60, 250, 12, 60}, Case{"InvertedPendulum-v5", 2, 40, 2, 40}}) {
    auto env = make_env(c.name);
    std::mt19937_64 gen(2024);
    double ret_sum = 0, len_sum = 0;
    const int episodes = 10;
    for (int e = 0; e < episodes; ++e) {
      env->reset(100 + e);
      double ret = 0;
      int len = 0;
      for (;;) {
        auto s = env->step(random_action(env->spec(), gen));
        ret += s.reward;
        ++len;
        if (s.terminated || s.truncated) break;
      }
      ret_sum += ret;
      len_sum += len;
    }
    const double mean_ret = ret_sum / episodes, mean_len = len_sum / episodes;
    EXPECT_GE(mean_ret, c.ret_lo) << c.name;
    EXPECT_LE(mean_ret, c.ret_hi) << c.name;
    EXPECT_GE(mean_len, c.len_lo) << c.name;
    EXPECT_LE(mean_len, c.len_hi) << c.name;
    std::printf("[random policy] %-20s mean return %9.2f  mean length %7.1f\n", c.name, mean_ret, mean_len);
  }
}

TEST(EnvsTasks, UnstableSimulationEndsTheEpisodeWithAFlag) {
  auto env = make_env("Hopper-v5");
  env->reset(0);
  std::vector<double> qvel(6, 0.0);
  qvel[3] = 1e12;  // beyond MuJoCo's sanity bound on velocities
  env->set_state(env->init_qpos(), qvel);
  std::vector<double> obs(11);
  auto r = env->step_into(std::vector<double>{0.0, 0.0, 0.0}, obs);
  EXPECT_TRUE(r.terminated);
  EXPECT_TRUE(r.info.unstable);
  EXPECT_TRUE(std::isfinite(r.reward));
  for (double v : obs) EXPECT_TRUE(std::isfinite(v));
  env->reset(0);
  EXPECT_FALSE(env->step({0.0, 0.0, 0.0}).info.unstable);
}

TEST(EnvsTasks, BadInputsAreErrorsThatNameTheProblem) {
  auto env = make_env("Hopper-v5");
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const EnvError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(message([&] { env->step({0.0, 0.0, 0.0}); }).find("reset"), std::string::npos);
  env->reset(0);
  std::vector<double> qpos(6), qvel(6);
  env->get_state(qpos, qvel);
  auto msg = message([&] { env->step({0.0, NAN, 0.0}); });
  EXPECT_NE(msg.find("action[1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Hopper-v5"), std::string::npos) << msg;
  msg = message([&] { env->step({0.0, 0.0}); });
  EXPECT_NE(msg.find("expected 3"), std::string::npos) << msg;
  std::vector<double> qpos2(6), qvel2(6);
  env->get_state(qpos2, qvel2);
  EXPECT_EQ(qpos, qpos2);  // nothing was stepped
  msg = message([&] { env->step({INFINITY, 0.0, 0.0}); });
  EXPECT_NE(msg.find("action[0]"), std::string::npos) << msg;
  msg = message([&] { make_env("Hopper-v4"); });
  EXPECT_NE(msg.find("Walker2d-v5"), std::string::npos) << msg;  // lists the valid ones
  msg = message([&] { make_env("Hopper-v5", {{"ctrl_cost", 1.0}}); });
  EXPECT_NE(msg.find("ctrl_cost_weight"), std::string::npos) << msg;
  msg = message([&] { make_env("Hopper-v5", {{"frame_skip", 2.5}}); });
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;
  msg = message([&] { make_env("Hopper-v5", {{"frame_skip", 0}}); });
  EXPECT_NE(msg.find("frame_skip"), std::string::npos) << msg;
  msg = message([&] { env->set_state(std::vector<double>(5), qvel); });
  EXPECT_NE(msg.find("qpos"), std::string::npos) << msg;
  msg = message([&] { find_asset("no_such_model.xml"); });
  EXPECT_NE(msg.find("searched"), std::string::npos) << msg;
}

TEST(EnvsTasks, ModelFilesAreFoundWithoutEnvironmentVariables) {
  const std::string path = find_asset("hopper.xml");
  EXPECT_NE(path.find("mjcf"), std::string::npos);
  EXPECT_FALSE(asset_search_dirs().empty());
}

// The task XMLs size MuJoCo's constraint buffers (njmax, nconmax) to the task instead of MuJoCo's
// default 500, which made every reset clear a 2 MB efc_AR (~50 us, more than a Hopper env step's
// physics). Random actions with falls (termination off) must stay well inside them.
TEST(EnvsTasks, ConstraintBuffersHaveHeadroomAndStayCheapToReset) {
  for (const auto& name : env_names()) {
    EnvOptions options;
    for (const auto& opt : env_option_names(name))
      if (opt == "terminate_when_unhealthy") options[opt] = 0;
    auto env = make_env(name, options);
    const mjModel* m = env->model();
    EXPECT_LE(m->njmax, 300) << name;
    std::mt19937_64 gen(1);
    std::vector<double> obs(env->spec().observation.size());
    int max_rows = 0, max_contacts = 0;
    for (int episode = 0; episode < 3; ++episode) {
      env->reset_into(static_cast<uint64_t>(episode), obs);
      for (int k = 0; k < 1000; ++k) {
        const auto r = env->step_into(random_action(env->spec(), gen), obs);
        max_rows = std::max(max_rows, env->data()->nefc);
        max_contacts = std::max(max_contacts, env->data()->ncon);
        if (r.terminated || r.truncated) break;
      }
    }
    std::printf("[constraint buffers] %-20s max %3d of njmax %3d rows, %2d of nconmax %3d contacts\n", name.c_str(),
                max_rows, m->njmax, max_contacts, m->nconmax);
    EXPECT_LE(3 * max_rows, m->njmax) << name << ": " << max_rows << " constraint rows";
    EXPECT_LE(3 * max_contacts, m->nconmax) << name << ": " << max_contacts << " contacts";
  }
}

// If a model's buffers are too small, MuJoCo drops constraints and only counts a warning; the env
// refuses to go on instead, names the sizes, and needs a reset.
TEST(EnvsTasks, AFullConstraintBufferIsAnErrorNotSilentlyWrongPhysics) {
  std::ifstream in(find_asset("hopper.xml"));
  std::stringstream xml;
  xml << in.rdbuf();
  std::string text = xml.str();
  const auto at = text.find("njmax=\"150\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 11, "njmax=\"1\"");
  const std::string path = ::testing::TempDir() + "rldt_hopper_njmax1.xml";
  std::ofstream(path) << text;
  auto env = make_env("Hopper-v5", {}, MujocoModel::load(path));
  std::vector<double> obs(env->spec().observation.size());
  env->reset_into(0, obs);
  std::string message;
  try {
    for (int k = 0; k < 200; ++k) {
      const auto r = env->step_into(std::vector<double>{1.0, -1.0, 1.0}, obs);
      if (r.terminated || r.truncated) env->reset_into(std::nullopt, obs);
    }
  } catch (const EnvError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("constraint buffer is full"), std::string::npos) << message;
  EXPECT_NE(message.find("njmax 1"), std::string::npos) << message;
  EXPECT_NE(message.find("Hopper"), std::string::npos) << message;
  EXPECT_THROW(env->step_into(std::vector<double>{0.0, 0.0, 0.0}, obs), EnvError);
  std::remove(path.c_str());
}
