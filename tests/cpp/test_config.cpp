// YAML run configs (include/rldt/train/config_io.hpp): round trip, every class of error (each
// naming the key path and the file or override), overrides, and the shipped configs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/train/config_io.hpp"

using namespace rldt;

namespace {

// The ConfigError message of `f` (fails the test if nothing or something else is thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ConfigError: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string parse_error(const std::string& yaml) {
  return error_of([&] { parse_run_config(yaml, "x.yaml"); });
}
std::string validate_error(const std::string& yaml) {
  return error_of([&] { validate_run_config(parse_run_config(yaml, "x.yaml")); });
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

RunConfig everything_changed() {
  RunConfig c;
  auto& t = c.trainer;
  c.base_policy = "outputs/some dir/policy.pt";
  t.env = "Walker2d-v5";
  t.env_options = {{"max_episode_steps", 300}, {"ctrl_cost_weight", 1.0 / 3.0}};
  t.n_envs = 7;
  t.env_threads = 1;
  t.rollout_groups = 3;
  t.rollout_inference = "packed";
  t.seed = 123456789012345ULL;
  t.act_steps = 2;
  t.n_steps = 33;
  t.n_train_itr = 5;
  t.n_critic_warmup_itr = 1;
  t.val_freq = 2;
  t.gamma = 0.987654321;
  t.td_lambda = 0.1;
  t.bootstrap_truncated = false;
  t.q_update_steps = 12;
  t.q_repeat = 3;
  t.q_bootstrap = 4;
  t.q_minibatch = 100;
  t.new_fraction = 0.5;
  t.buffer_num_episode = 3;
  t.reward_scale = 2.5;
  t.reward_scale_alpha = 1e-7;
  t.policy_update_steps = 6;
  t.actor_max_states = 50;
  t.exploration.sample_mode = "qsample";
  t.exploration.noise_mode = "add";
  t.exploration.action_sample_noise = 0.125;
  t.exploration.min_extrp_step = 1;
  t.exploration.langevin_steps = 3;
  t.policy.horizon_steps = 3;
  t.policy.denoising_steps = 5;
  t.policy.mlp_dims = {16, 8};
  t.policy.time_dim = 8;
  t.policy.activation = "mish";
  t.policy.residual = false;
  t.policy.prediction = "x_pred";
  t.policy.final_action_clip = 1.5;
  t.policy.bc_lr = 3e-4;
  t.policy.bc_weight_decay = 0.0;
  t.policy.ema_decay = 0.9;
  t.policy.xpred_t_max = 0.99;
  t.critic.ensemble_size = 3;
  t.critic.hidden = {32};
  t.critic.activation = "tanh";
  t.critic.init_std = 0.05;
  t.critic.lr = 2e-4;
  t.critic.weight_decay = 1e-5;
  t.critic.target_momentum = 0.9;
  t.critic.q_target_min = -100;
  t.critic.q_target_max = 1e300;
  t.critic.update_groups = 2;
  t.actor.n_particles = 4;
  t.actor.lr = 1e-4;
  t.actor.lr_warmup_steps = 3;
  t.actor.c_cons = 0.25;
  t.actor.kl_coef = 0.0;
  t.actor.project_field = true;
  t.actor.update_groups = 3;
  t.actor.backward = "autograd";
  t.actor.svgd = {0.01, 0.5, "q_grad", 0.1, 10.0, 1e-6, "hybrid"};
  return c;
}

}  // namespace

TEST(Config, RoundTripKeepsEveryField) {
  for (const RunConfig& c : {RunConfig{}, everything_changed()}) {
    const std::string text = to_yaml(c, "a header\nof two lines");
    const RunConfig back = parse_run_config(text, "resolved.yaml");
    EXPECT_EQ(to_yaml(back, "a header\nof two lines"), text);
    // Spot checks on the struct itself (doubles must come back bit-identical).
    EXPECT_EQ(back.base_policy, c.base_policy);
    EXPECT_EQ(back.trainer.env_options, c.trainer.env_options);
    EXPECT_EQ(back.trainer.seed, c.trainer.seed);
    EXPECT_EQ(back.trainer.gamma, c.trainer.gamma);
    EXPECT_EQ(back.trainer.reward_scale_alpha, c.trainer.reward_scale_alpha);
    EXPECT_EQ(back.trainer.bootstrap_truncated, c.trainer.bootstrap_truncated);
    EXPECT_EQ(back.trainer.policy.mlp_dims, c.trainer.policy.mlp_dims);
    EXPECT_EQ(back.trainer.policy.residual, c.trainer.policy.residual);
    EXPECT_EQ(back.trainer.critic.q_target_max, c.trainer.critic.q_target_max);
    EXPECT_EQ(back.trainer.actor.svgd.field, c.trainer.actor.svgd.field);
    EXPECT_EQ(back.trainer.actor.project_field, c.trainer.actor.project_field);
    EXPECT_EQ(back.trainer.actor.update_groups, c.trainer.actor.update_groups);
    EXPECT_EQ(back.trainer.actor.backward, c.trainer.actor.backward);
    EXPECT_EQ(back.trainer.critic.update_groups, c.trainer.critic.update_groups);
    EXPECT_EQ(back.trainer.actor.svgd.q_norm_eps, c.trainer.actor.svgd.q_norm_eps);
    EXPECT_EQ(back.trainer.exploration.action_sample_noise, c.trainer.exploration.action_sample_noise);
    EXPECT_EQ(back.trainer.exploration.sample_mode, c.trainer.exploration.sample_mode);
    EXPECT_EQ(back.trainer.exploration.langevin_steps, c.trainer.exploration.langevin_steps);
    // Every key is written.
    for (const auto& key : config_key_paths()) {
      const std::string leaf = key.substr(key.rfind('.') + 1);
      EXPECT_HAS(text, leaf + ":");
    }
  }
}

TEST(Config, ReadsNestedSectionsAndRecordsOrigins) {
  const auto c = parse_run_config(
      "env: Hopper-v5\nn_envs: 8\nenv_options: {max_episode_steps: 200, terminate_when_unhealthy: false}\n"
      "policy:\n  mlp_dims: [64, 64]\nactor:\n  svgd:\n    svgd_temp: 0.5\n",
      "x.yaml");
  EXPECT_EQ(c.trainer.n_envs, 8);
  EXPECT_EQ(c.trainer.env_options.at("max_episode_steps"), 200.0);
  EXPECT_EQ(c.trainer.env_options.at("terminate_when_unhealthy"), 0.0);
  EXPECT_EQ(c.trainer.policy.mlp_dims, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(c.trainer.actor.svgd.svgd_temp, 0.5);
  EXPECT_EQ(c.trainer.q_repeat, RldtTrainerConfig{}.q_repeat);  // untouched keys keep defaults
  EXPECT_EQ(c.origins.at("actor.svgd.svgd_temp"), "x.yaml");
  EXPECT_EQ(c.origins.count("q_repeat"), 0u);
  EXPECT_NO_THROW(parse_run_config("", "empty.yaml"));
}

TEST(Config, UnknownKeysNameThePathFileAndLine) {
  auto msg = parse_error("n_envs: 4\nactor:\n  svgd:\n    q_nrom: svgd\n");
  EXPECT_HAS(msg, "x.yaml:4");
  EXPECT_HAS(msg, "'actor.svgd.q_nrom'");
  EXPECT_HAS(msg, "unknown key");
  EXPECT_HAS(msg, "q_norm");  // lists the valid keys
  EXPECT_HAS(parse_error("n_env: 4\n"), "'n_env'");
  EXPECT_HAS(parse_error("mode: scratch\n"), "'mode'");
  // Keys derived from the env are rejected with the reason.
  msg = parse_error("policy:\n  obs_dim: 3\n");
  EXPECT_HAS(msg, "'policy.obs_dim'");
  EXPECT_HAS(msg, "environment");
  EXPECT_HAS(parse_error("critic:\n  act_steps: 3\n"), "'critic.act_steps'");
}

TEST(Config, WrongTypesNameTheKey) {
  auto msg = parse_error("n_envs: hundred\n");
  EXPECT_HAS(msg, "x.yaml:1: key 'n_envs'");
  EXPECT_HAS(msg, "expected an integer");
  EXPECT_HAS(parse_error("n_envs: 4.5\n"), "non-integer");
  EXPECT_HAS(parse_error("n_envs: 1e3\n"), "'n_envs'");
  EXPECT_HAS(parse_error("n_envs: \"4\"\n"), "quoted string");
  EXPECT_HAS(parse_error("n_envs:\n"), "has no value");
  EXPECT_HAS(parse_error("seed: -1\n"), "non-negative");
  EXPECT_HAS(parse_error("gamma: high\n"), "key 'gamma': expected a number");
  EXPECT_HAS(parse_error("bootstrap_truncated: 1\n"), "expected true or false");
  EXPECT_HAS(parse_error("policy:\n  mlp_dims: 64\n"), "key 'policy.mlp_dims': expected a list");
  EXPECT_HAS(parse_error("policy:\n  mlp_dims: [64, 6.5]\n"), "'policy.mlp_dims[1]'");
  EXPECT_HAS(parse_error("actor: 5\n"), "key 'actor': must be a section");
  EXPECT_HAS(parse_error("env: [Hopper-v5]\n"), "key 'env': expected a string");
  EXPECT_HAS(parse_error("env_options: {max_episode_steps: many}\n"), "'env_options.max_episode_steps'");
  EXPECT_HAS(parse_error("- a\n- b\n"), "top level must be a map");
  EXPECT_HAS(parse_error("n_envs: [1\n"), "not valid YAML");
}

TEST(Config, ImpossibleValuesNameTheKeyAndFile) {
  auto msg = validate_error("actor:\n  svgd:\n    q_norm: l2\n");
  EXPECT_HAS(msg, "x.yaml: key 'actor.svgd.q_norm'");
  EXPECT_HAS(msg, "l2");
  EXPECT_HAS(validate_error("gamma: 1.5\n"), "key 'gamma'");
  EXPECT_HAS(validate_error("critic:\n  lr: -1.0\n"), "key 'critic.lr'");
  EXPECT_HAS(validate_error("actor:\n  lr: 0.0\n"), "key 'actor.lr'");
  EXPECT_HAS(validate_error("exploration:\n  noise_mode: loud\n"), "key 'exploration.noise_mode'");
  EXPECT_HAS(validate_error("policy:\n  activation: gelu\n"), "key 'policy.activation'");
  EXPECT_HAS(validate_error("q_update_steps: 10\nq_repeat: 4\n"), "key 'q_update_steps'");
  EXPECT_HAS(validate_error("env: Hoppr-v5\n"), "key 'env'");
  EXPECT_HAS(validate_error("env: Hoppr-v5\n"), "Hopper-v5");  // lists the valid tasks
  msg = validate_error("env_options:\n  max_episode_step: 10\n");
  EXPECT_HAS(msg, "x.yaml: key 'env_options'");
  EXPECT_HAS(msg, "max_episode_step");
}

TEST(Config, CrossFieldRules) {
  auto msg = validate_error("act_steps: 4\npolicy:\n  horizon_steps: 2\n");
  EXPECT_HAS(msg, "x.yaml: key 'act_steps'");
  EXPECT_HAS(msg, "horizon_steps");
  EXPECT_HAS(validate_error("policy:\n  denoising_steps: 0\n"), "key 'policy.denoising_steps'");
  msg = validate_error("actor:\n  n_particles: 1\n");
  EXPECT_HAS(msg, "key 'actor.n_particles'");
  EXPECT_HAS(msg, "normal");  // the kernel field that needs two particles
  // Without a kernel (field delta) one particle is allowed.
  EXPECT_NO_THROW(
      validate_run_config(parse_run_config("actor:\n  n_particles: 1\n  svgd: {field: delta}\n", "x.yaml")));
  EXPECT_HAS(validate_error("exploration:\n  min_extrp_step: 8\n"), "key 'exploration.min_extrp_step'");
  EXPECT_HAS(validate_error("n_envs: 1\n"), "key 'n_envs'");  // < critic.ensemble_size
}

TEST(Config, OverridesSetValuesAndNameThemselvesInErrors) {
  RunConfig c = parse_run_config("n_envs: 8\n", "x.yaml");
  apply_override(c, "actor.svgd.svgd_temp=0.01");
  apply_override(c, "policy.mlp_dims=[32, 16]");
  apply_override(c, "env_options.max_episode_steps=100");
  apply_override(c, "exploration.noise_mode=add");
  apply_override(c, "n_envs=12");
  apply_override(c, "base_policy=p.pt");
  EXPECT_EQ(c.trainer.actor.svgd.svgd_temp, 0.01);
  EXPECT_EQ(c.trainer.policy.mlp_dims, (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(c.trainer.env_options.at("max_episode_steps"), 100.0);
  EXPECT_EQ(c.trainer.exploration.noise_mode, "add");
  EXPECT_EQ(c.trainer.n_envs, 12);
  EXPECT_EQ(c.base_policy, "p.pt");
  EXPECT_EQ(c.origins.at("n_envs"), "override 'n_envs=12'");
  EXPECT_EQ(config_value_text(c, "policy.mlp_dims"), "[32, 16]");

  auto msg = error_of([&] { apply_override(c, "actor.svgd.nope=1"); });
  EXPECT_HAS(msg, "override 'actor.svgd.nope=1': key 'actor.svgd.nope': unknown key");
  EXPECT_HAS(error_of([&] { apply_override(c, "n_envs=abc"); }),
             "override 'n_envs=abc': key 'n_envs': expected an integer");
  EXPECT_HAS(error_of([&] { apply_override(c, "n_envs"); }), "expected key.path=value");
  EXPECT_HAS(error_of([&] { apply_override(c, "actor..lr=1"); }), "empty part");
  EXPECT_HAS(error_of([&] { apply_override(c, "n_envs="); }), "has no value");
  // A value made impossible by an override is reported at the override, not the file.
  apply_override(c, "actor.n_particles=1");
  msg = error_of([&] { validate_run_config(c); });
  EXPECT_HAS(msg, "override 'actor.n_particles=1': key 'actor.n_particles'");
}

TEST(Config, LoadRunConfigReadsFileThenOverridesThenValidates) {
  const auto dir = std::filesystem::temp_directory_path() / "rldt_test_config";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "c.yaml").string();
  {
    std::ofstream f(path);
    f << "env: InvertedPendulum-v5\nn_envs: 4\nact_steps: 1\npolicy: {horizon_steps: 1}\n";
  }
  const auto c = load_run_config(path, {"n_envs=6"});
  EXPECT_EQ(c.trainer.n_envs, 6);
  EXPECT_EQ(c.trainer.env, "InvertedPendulum-v5");
  EXPECT_HAS(error_of([&] { load_run_config(path, {"act_steps=2"}); }), "override 'act_steps=2': key 'act_steps'");
  EXPECT_HAS(error_of([&] { load_run_config((dir / "missing.yaml").string()); }), "missing.yaml: cannot read");
  std::filesystem::remove_all(dir);
}

TEST(Config, ShippedConfigsLoadAndValidate) {
  namespace fs = std::filesystem;
  // CMake compiles this file by its absolute path: tests/cpp/ → the repository root.
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path() / "configs" / "gym";
  int n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    RunConfig c;
    const bool sac = entry.path().filename().string().rfind("sac", 0) == 0;  // rldt sac's configs
    EXPECT_NO_THROW(c = load_run_config(entry.path().string(), {}, sac ? ConfigUse::sac : ConfigUse::rldt));
    const bool finetune = entry.path().filename().string().rfind("finetune", 0) == 0;
    EXPECT_EQ(c.base_policy.empty(), !finetune);
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(Config, PretrainSection) {
  const auto c = parse_run_config("pretrain:\n  dataset: d.npz\n  batch_size: 64\n  pad_chunks: true\n", "x.yaml");
  EXPECT_EQ(c.pretrain.dataset, "d.npz");
  EXPECT_EQ(c.pretrain.batch_size, 64);
  EXPECT_TRUE(c.pretrain.pad_chunks);
  EXPECT_EQ(c.pretrain.n_updates, PretrainConfig{}.n_updates);
  EXPECT_HAS(parse_error("pretrain:\n  datset: d.npz\n"), "x.yaml:2: key 'pretrain.datset': unknown key");
  EXPECT_HAS(validate_error("pretrain:\n  batch_size: 0\n"),
             "x.yaml: key 'pretrain.batch_size': batch_size must be >= 1");
  EXPECT_HAS(validate_error("pretrain:\n  val_fraction: 1.0\n"), "key 'pretrain.val_fraction'");
  EXPECT_HAS(validate_error("pretrain:\n  seed: 3\n  log_freq: 0\n"), "key 'pretrain.log_freq'");
}

TEST(Config, SacSectionMakesTheSacTrainerConfig) {
  const auto c = parse_run_config(
      "env: Walker2d-v5\nseed: 4\nn_train_itr: 12\nval_freq: 3\nn_envs: 2\n"
      "sac:\n  steps_per_iteration: 500\n  eval_episodes: 4\n  hidden: [64, 64]\n  learning_starts: 100\n  utd: 0.5\n",
      "x.yaml");
  const auto s = sac_trainer_config(c);
  EXPECT_EQ(s.env, "Walker2d-v5");
  EXPECT_EQ(s.seed, 4u);
  EXPECT_EQ(s.n_iterations, 12);
  EXPECT_EQ(s.val_freq, 3);
  EXPECT_EQ(s.n_envs, 2);
  EXPECT_EQ(s.steps_per_iteration, 500);
  EXPECT_EQ(s.eval_episodes, 4);
  EXPECT_EQ(s.sac.hidden, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(s.sac.learning_starts, 100);
  EXPECT_EQ(s.sac.utd, 0.5);
  EXPECT_EQ(s.sac.batch_size, SacConfig{}.batch_size);
  EXPECT_HAS(parse_error("sac:\n  hiden: [64]\n"), "x.yaml:2: key 'sac.hiden': unknown key");
  EXPECT_HAS(validate_error("sac:\n  batch_size: 0\n"), "x.yaml: key 'sac.batch_size'");
  EXPECT_HAS(validate_error("sac:\n  steps_per_iteration: 0\n"), "key 'sac.steps_per_iteration'");
  // `rldt sac` checks only what SAC uses: one env is fine there (RLDT needs n_envs >= ensemble_size).
  const auto one_env = parse_run_config("n_envs: 1\n", "x.yaml");
  EXPECT_NO_THROW(validate_run_config(one_env, false, ConfigUse::sac));
  EXPECT_HAS(error_of([&] { validate_run_config(one_env); }), "key 'n_envs'");
  // Written and read back.
  const auto back = parse_run_config(to_yaml(c), "back.yaml");
  EXPECT_EQ(sac_trainer_config(back).sac.hidden, s.sac.hidden);
  EXPECT_EQ(back.sac.learner.utd, 0.5);
}

TEST(Config, ShippedBasePoliciesLoadAndMatchTheirConfigs) {
  // finetune-cpu.yaml names a base actor shipped in configs/gym/<task>/ (docs/benchmarks.md says
  // how each was made): it must load, fit the env and the config's policy: section, and carry
  // the dataset's normaliser (the trainer applies it).
  namespace fs = std::filesystem;
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path();
  int n = 0;
  for (const char* task : {"hopper", "walker2d", "halfcheetah"}) {
    SCOPED_TRACE(task);
    const auto cfg = load_run_config((root / "configs" / "gym" / task / "finetune-cpu.yaml").string());
    const fs::path file = root / cfg.base_policy;
    if (cfg.base_policy.rfind("configs/", 0) != 0) continue;  // not (yet) shipped with the repository
    ASSERT_TRUE(fs::is_regular_file(file)) << file;
    const auto policy = FlowPolicy::load(file.string());
    const auto env = make_env(cfg.trainer.env);
    EXPECT_EQ(policy.config().obs_dim, static_cast<int64_t>(env->spec().observation.size()));
    EXPECT_EQ(policy.config().action_dim, static_cast<int64_t>(env->spec().action.size()));
    EXPECT_EQ(policy.config().mlp_dims, cfg.trainer.policy.mlp_dims);
    EXPECT_EQ(policy.config().horizon_steps, cfg.trainer.policy.horizon_steps);
    EXPECT_EQ(policy.config().denoising_steps, cfg.trainer.policy.denoising_steps);
    EXPECT_TRUE(policy.normalizer().has_obs() && policy.normalizer().has_action());
    ++n;
  }
  EXPECT_EQ(n, 3);  // all three tasks ship one (Walker2d since the eighth session)
}
