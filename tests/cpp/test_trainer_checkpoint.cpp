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

#include "rldt/train/rldt_trainer.hpp"

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
  c.policy.mlp_dims = {32, 32};
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
  const double v[] = {static_cast<double>(m.iteration),
                      static_cast<double>(m.eval),
                      static_cast<double>(m.env_steps),
                      m.episode_return,
                      m.episode_length,
                      static_cast<double>(m.episodes),
                      m.reward_per_step,
                      m.critic_loss,
                      m.actor_loss,
                      m.align,
                      m.cons,
                      m.ref,
                      m.grad_norm,
                      m.particle_distance,
                      m.reward_scale};
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
