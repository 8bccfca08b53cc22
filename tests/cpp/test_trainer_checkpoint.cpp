// Trainer checkpoints: a run stopped after iteration n and resumed from its checkpoint gives the
// same metrics and parameters, bit for bit, as an uninterrupted run; bad files are refused with
// the file named; a failed write leaves the previous checkpoint intact.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include "rldt/envs/vec_env.hpp"
#include "rldt/train/config_io.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "trainer_metrics.hpp"

using namespace rldt;
namespace fs = std::filesystem;

namespace {

// Hopper with a critic minibatch, a lr warm-up, an evaluation at iteration 3 and the critic
// warm-up ending there too (the actor first trains in iteration 4).
RldtTrainerConfig config() {
  RldtTrainerConfig c;
  c.env = "Hopper-v5";
  c.n_envs = 4;
  c.env_threads = 2;
  c.n_steps = 25;
  c.act_steps = 2;
  c.val_freq = 3;
  c.n_critic_warmup_itr = 3;
  c.q_update_steps = 4;
  c.q_repeat = 2;
  c.q_minibatch = 40;
  c.policy_update_steps = 2;
  c.actor_max_states = 30;
  c.buffer_num_episode = 2;
  c.policy.horizon_steps = 3;
  c.policy.denoising_steps = 4;
  c.policy.mlp_dims = {32, 32, 32};
  c.critic.hidden = {32, 32};
  c.actor.n_particles = 4;
  c.actor.lr_warmup_steps = 5;
  c.actor.lr = 1e-3;
  c.exploration.min_extrp_step = 2;
  c.env_options = {{"max_episode_steps", 40}};  // truncations inside the window, too
  return c;
}

// Every metric except the timings, as bits (NaN == NaN).
std::vector<uint64_t> bits(const IterationMetrics& m) {
  const std::vector<double> v = test::comparable_metrics(m);
  std::vector<uint64_t> out;
  for (double x : v) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    out.push_back(b);
  }
  return out;
}

std::vector<std::vector<uint64_t>> run(RldtTrainer& tr, int n) {
  std::vector<std::vector<uint64_t>> out;
  for (int i = 0; i < n; ++i) out.push_back(bits(tr.train_iteration()));
  return out;
}

bool same_params(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.parameters(), pb = b.parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  return true;
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rldt_ckpt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(TrainerCheckpoint, ResumedRunEqualsUninterruptedRunBitwise) {
  const int n = 3;
  const auto dir = temp_dir("resume");
  const std::string path = (dir / "checkpoint.pt").string();

  RldtTrainer straight(config());
  const auto all = run(straight, 2 * n);
  int actor_iterations = 0;
  for (int i = n; i < 2 * n; ++i) actor_iterations += !std::isnan(*reinterpret_cast<const double*>(&all[i][8]));
  ASSERT_GT(actor_iterations, 0) << "the window must include actor updates";

  RldtTrainer first(config());
  run(first, n);
  first.save_checkpoint(path);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const auto after_save = run(first, n);  // saving changes nothing

  auto cfg = config();
  cfg.env_threads = 1;  // results do not depend on the thread count
  cfg.seed = 0;
  RldtTrainer resumed(cfg);
  resumed.load_checkpoint(path);
  EXPECT_EQ(resumed.iteration(), n);
  const auto rest = run(resumed, n);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(after_save[i], all[n + i]) << "iteration " << n + i << " (after save)";
    EXPECT_EQ(rest[i], all[n + i]) << "iteration " << n + i << " (resumed)";
  }
  EXPECT_TRUE(same_params(*straight.policy().actor(), *resumed.policy().actor()));
  EXPECT_TRUE(same_params(*straight.policy().reference(), *resumed.policy().reference()));
  EXPECT_TRUE(same_params(*straight.critic().online(), *resumed.critic().online()));
  EXPECT_TRUE(same_params(*straight.critic().target(), *resumed.critic().target()));
  EXPECT_EQ(straight.env_steps(), resumed.env_steps());
  fs::remove_all(dir);
}

TEST(TrainerCheckpoint, RefusesBadFilesNamingThem) {
  const auto dir = temp_dir("bad");
  const std::string good = (dir / "checkpoint.pt").string();
  RldtTrainer tr(config());
  tr.train_iteration();
  tr.save_checkpoint(good);

  // Truncated.
  const std::string cut = (dir / "cut.pt").string();
  {
    std::ifstream in(good, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(cut, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  RldtTrainer other(config());
  std::string msg = error_of([&] { other.load_checkpoint(cut); });
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_EQ(other.iteration(), 0);

  // Foreign: a policy file, and a missing file.
  const std::string policy = (dir / "policy.pt").string();
  tr.policy().save(policy);
  msg = error_of([&] { other.load_checkpoint(policy); });
  EXPECT_NE(msg.find(policy), std::string::npos) << msg;
  EXPECT_NE(msg.find("flow_policy"), std::string::npos) << msg;
  msg = error_of([&] { other.load_checkpoint((dir / "none.pt").string()); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  // Another config: the first differing key is named.
  auto c = config();
  c.critic.lr = 5e-4;
  RldtTrainer different(c);
  msg = error_of([&] { different.load_checkpoint(good); });
  EXPECT_NE(msg.find(good), std::string::npos) << msg;
  EXPECT_NE(msg.find("critic.lr"), std::string::npos) << msg;

  // A failed write leaves the previous checkpoint as it was.
  const auto before = fs::file_size(good);
  const auto stamp = fs::last_write_time(good);
  fs::create_directories(good + ".tmp");  // the temp file cannot be created
  tr.train_iteration();
  msg = error_of([&] { tr.save_checkpoint(good); });
  EXPECT_NE(msg.find(good), std::string::npos) << msg;
  EXPECT_EQ(fs::file_size(good), before);
  EXPECT_EQ(fs::last_write_time(good), stamp);
  fs::remove_all(good + ".tmp");
  RldtTrainer reread(config());
  reread.load_checkpoint(good);
  EXPECT_EQ(reread.iteration(), 1);

  // The actor of a checkpoint loads without a trainer.
  auto p = policy_from_checkpoint(good);
  EXPECT_TRUE(same_params(*p.actor(), *reread.policy().actor()));
  fs::remove_all(dir);
}

TEST(TrainerCheckpoint, OlderCheckpointsLoadWhenNewKeysHoldTheirDefaults) {
  // A checkpoint written before a key existed lacks its line: loading accepts the key's default
  // and names the key otherwise. Free keys may differ; any other difference is named.
  auto c = config();
  const auto drop = [](std::string yaml, const std::string& line) {
    const auto at = yaml.find(line);
    EXPECT_NE(at, std::string::npos) << line;
    return yaml.erase(at, yaml.find('\n', at) + 1 - at);
  };
  const std::string saved = drop(to_yaml(c), "actor_q_reduce: ");
  EXPECT_EQ(checkpoint_config_mismatch(to_yaml(c), c), "");
  EXPECT_EQ(checkpoint_config_mismatch(saved, c), "");
  auto changed = c;
  changed.actor_q_reduce = "min";
  auto msg = checkpoint_config_mismatch(saved, changed);
  EXPECT_NE(msg.find("actor_q_reduce: min"), std::string::npos) << msg;
  EXPECT_NE(msg.find("its default mean"), std::string::npos) << msg;
  changed = c;
  changed.n_train_itr += 5;
  changed.env_threads = 1;
  EXPECT_EQ(checkpoint_config_mismatch(saved, changed), "");
  changed.critic.hidden = {8};
  msg = checkpoint_config_mismatch(saved, changed);
  EXPECT_NE(msg.find("critic.hidden"), std::string::npos) << msg;
  // The rollout's group count changes the trajectory (unlike env_threads), so it must match; a
  // checkpoint from before the key existed holds its default (1).
  changed = c;
  changed.rollout_groups = 2;
  msg = checkpoint_config_mismatch(drop(to_yaml(c), "rollout_groups: "), changed);
  EXPECT_NE(msg.find("rollout_groups"), std::string::npos) << msg;
  EXPECT_EQ(checkpoint_config_mismatch(drop(to_yaml(c), "rollout_groups: "), c), "");
  // A key the checkpoint has and this library does not.
  msg = checkpoint_config_mismatch(to_yaml(c) + "from_the_future: 1\n", c);
  EXPECT_NE(msg.find("from_the_future"), std::string::npos) << msg;
}

TEST(TrainerCheckpoint, AskTellTrainerResumesWithItsOwnersEnv) {
  // An external env is the caller's to save (VecEnv::snapshot); the trainer saves the rest. Both
  // restored, the run continues bit for bit; a checkpoint mid-iteration is refused.
  const auto cfg = config();
  const auto dir = temp_dir("asktell");
  const std::string path = (dir / "checkpoint.pt").string();
  const int64_t N = cfg.n_envs, H = cfg.policy.horizon_steps;
  auto make = [&](VecEnv& env) {
    ExternalEnvSpec spec;
    spec.obs_dim = env.obs_dim();
    spec.action_low = env.spec().action.low;
    spec.action_high = env.spec().action.high;
    return std::make_unique<RldtTrainer>(cfg, spec);
  };
  auto to_tensor = [](const std::vector<double>& v, int64_t n) {
    return torch::tensor(v, torch::kDouble).view({n, -1});
  };
  // One iteration of the caller's loop; `obs` is the caller's current observation.
  auto iteration = [&](RldtTrainer& tr, VecEnv& env, torch::Tensor& obs) {
    for (int64_t t = 0; t < cfg.n_steps; ++t) {
      auto chunk = tr.act(obs);
      std::vector<double> a(chunk.data_ptr<double>(), chunk.data_ptr<double>() + chunk.numel());
      const auto& out = env.step_chunk(a, static_cast<int>(H), static_cast<int>(cfg.act_steps));
      auto next = to_tensor(out.obs, N), final_obs = to_tensor(out.final_obs, N);
      auto term = torch::tensor(std::vector<int64_t>(out.terminated.begin(), out.terminated.end()));
      auto trunc = torch::tensor(std::vector<int64_t>(out.truncated.begin(), out.truncated.end()));
      auto done = (term + trunc).gt(0).view({N, 1});
      tr.observe(torch::tensor(out.reward, torch::kDouble), term, trunc, torch::where(done, final_obs, next),
                 torch::tensor(std::vector<int64_t>(out.steps_executed.begin(), out.steps_executed.end())));
      obs = next;
    }
    return bits(tr.update());
  };
  VecEnv env_a(cfg.env, static_cast<int>(N), 1, cfg.env_options);
  auto a = make(env_a);
  auto obs_a = to_tensor(env_a.reset(cfg.seed).obs, N);
  for (int i = 0; i < 3; ++i) iteration(*a, env_a, obs_a);
  a->save_checkpoint(path);
  const auto env_state = env_a.snapshot();
  const auto obs_saved = obs_a.clone();
  std::vector<std::vector<uint64_t>> expected;
  for (int i = 0; i < 3; ++i) expected.push_back(iteration(*a, env_a, obs_a));

  VecEnv env_b(cfg.env, static_cast<int>(N), 2, cfg.env_options);
  auto b = make(env_b);
  b->load_checkpoint(path);
  env_b.restore(env_state);
  auto obs_b = obs_saved;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(iteration(*b, env_b, obs_b), expected[i]) << "iteration " << 3 + i;

  // Between act and update: refused.
  b->act(obs_b);
  EXPECT_THROW(b->save_checkpoint(path), std::logic_error);
  // A native trainer does not load an ask/tell checkpoint.
  RldtTrainer native(cfg);
  EXPECT_NE(error_of([&] { native.load_checkpoint(path); }).find("act/observe/update"), std::string::npos);
  fs::remove_all(dir);
}
