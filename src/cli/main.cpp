// The `rldt` command:
//   rldt scratch  --config F [--out RUN_DIR] [--force] [key.path=value ...]
//   rldt finetune --config F [--out RUN_DIR] [--force] [key.path=value ...]
//   rldt eval     --config F [--policy FILE] [--iterations N] [--out RUN_DIR] [--force] [key.path=value ...]
//   rldt pretrain --config F [--out RUN_DIR] [--force] [key.path=value ...]
//   rldt record   --config F --policy FILE --out DATA.npz [--episodes N | --steps N] [--noise SIGMA]
//                 [--seed S] [--deterministic] [--force] [key.path=value ...]   (FlowPolicy or SAC policy)
//   rldt sac      --config F [--out RUN_DIR] [--force] [key.path=value ...]   the SAC baseline (sac: section)
//   rldt plot     RUN_DIR... --out FILE.png [--metric M] [--x env_steps|seconds_wall]   (python/rldt/plot.py)
//   rldt scratch|finetune --resume RUN_DIR [n_train_itr=N ...]   continue a run from RUN_DIR/checkpoint.pt
//   rldt export   --checkpoint RUN_DIR/checkpoint.pt --out policy.pt [--force]
// Training runs write RUN_DIR/checkpoint.pt (atomically) every checkpoint_freq iterations, after
// the last one and when stopped by a signal; see docs/checkpoints.md.
//
// Exit codes: 0 done, 2 bad usage or config (nothing was run), 1 failure while running,
// 128+signal when SIGINT/SIGTERM stopped the run after a completed iteration.
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "plot_command.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/data/dataset.hpp"
#include "rldt/envs/make_env.hpp"
#include "rldt/train/config_io.hpp"
#include "rldt/train/pretrain.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/train/sac_trainer.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/serialize.hpp"
#include "run_log.hpp"

namespace fs = std::filesystem;
using namespace rldt;

namespace {

constexpr int kOk = 0, kFailure = 1, kUsage = 2;

// Thrown for problems the user must fix before anything runs (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------
// SIGINT / SIGTERM: the first one asks the loop to stop after the current iteration; a second
// one stops the process at once.
// ---------------------------------------------------------------------------
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) std::_Exit(128 + sig);
  g_stop_signal = sig;
  const char msg[] = "\nrldt: stop requested; finishing the current iteration (send the signal again to stop now)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------
struct Args {
  std::string command;  // scratch | finetune | eval | pretrain | record | sac
  std::string config;
  std::string out;
  bool force = false;
  std::vector<std::string> overrides;
  std::string policy;          // eval: policy file (else base_policy)
  int64_t iterations = 1;      // eval: deterministic rollout iterations
  std::string resume;          // scratch/finetune: run folder to continue
  std::string checkpoint;      // export: checkpoint file
  int64_t episodes = 0;        // record
  int64_t steps = 0;           // record
  double noise = 0.0;          // record
  int64_t seed = -1;           // record (< 0: the config's seed)
  bool deterministic = false;  // record
};

// Keys a resumed run may change (results do not depend on them, or only extend the run).
const char* const kResumeFreeKeys[] = {"n_train_itr", "env_threads", "checkpoint_freq"};

// "configs/gym/hopper/finetune-cpu.yaml" → "hopper-finetune-cpu"
std::string config_name(const std::string& path) {
  const fs::path p(path);
  const std::string parent = p.parent_path().filename().string();
  const std::string stem = p.stem().string();
  return (parent.empty() || parent == "." || parent == "..") ? stem : parent + "-" + stem;
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
  return buf;
}

// ---------------------------------------------------------------------------
// Set-up steps (all errors here are UsageError/ConfigError: exit code 2)
// ---------------------------------------------------------------------------

// Loads the policy file named by `path` (the config's base_policy or --policy) and makes the
// config's policy section describe it. Keys the config sets explicitly must agree with the file.
std::shared_ptr<FlowPolicy> load_policy(RunConfig& cfg, const std::string& path, const std::string& named_by) {
  if (path.empty())
    throw UsageError(cfg.source + ": key 'base_policy': " + named_by +
                     " needs a pretrained FlowPolicy file; set base_policy in the config or pass base_policy=FILE "
                     "(`rldt pretrain --config configs/gym/<task>/pretrain-cpu.yaml` writes one; any file written by "
                     "FlowPolicy::save works, e.g. the policy.pt of an `rldt scratch` run)");
  if (!fs::is_regular_file(path))
    throw UsageError(cfg.source + ": key 'base_policy': the policy file '" + path + "' does not exist" +
                     (fs::path(path).is_relative() ? " (relative to " + fs::current_path().string() + ")" : ""));
  std::shared_ptr<FlowPolicy> policy;
  try {
    policy = std::make_shared<FlowPolicy>(FlowPolicy::load(path));
  } catch (const std::exception& e) {
    throw UsageError(cfg.source + ": key 'base_policy': cannot load '" + path + "': " + error_message(e));
  }
  // final_action_clip is a sampling-time setting, not architecture: the config's value, where it
  // sets one, replaces the file's.
  if (cfg.origins.count("policy.final_action_clip"))
    policy->set_final_action_clip(cfg.trainer.policy.final_action_clip);
  RunConfig adopted = cfg;
  adopted.trainer.policy = policy->config();
  for (const auto& [key, origin] : cfg.origins) {
    if (key.rfind("policy.", 0) != 0) continue;
    const std::string mine = config_value_text(cfg, key), file = config_value_text(adopted, key);
    if (mine != file)
      throw UsageError(origin + ": key '" + key + "': the config says " + mine + " but the policy file '" + path +
                       "' has " + file + "; make them agree or remove the key");
  }
  adopted.base_policy = fs::absolute(path).string();
  validate_run_config(adopted, /*check_env=*/false);  // cross-field rules with the file's architecture
  cfg = std::move(adopted);
  return policy;
}

// The run folder: refuses to reuse a non-empty one unless --force (which removes only the files
// a run writes).
void prepare_run_dir(const fs::path& dir, bool force) {
  static const char* const kRunFiles[] = {"config.yaml", "run.json",      "metrics.csv",   "metrics.jsonl",
                                          "policy.pt",   "checkpoint.pt", "best_policy.pt"};
  if (fs::exists(dir) && !fs::is_directory(dir))
    throw UsageError("--out: '" + dir.string() + "' is a file, not a folder");
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    if (!force)
      throw UsageError("the run folder '" + dir.string() +
                       "' already exists and is not empty; pass --force to overwrite it or choose another --out");
    for (const char* f : kRunFiles) fs::remove(dir / f);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UsageError("--out: cannot create the run folder '" + dir.string() + "': " + ec.message());
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// --resume RUN_DIR: the run's own config.yaml, with overrides allowed only for kResumeFreeKeys.
RunConfig load_resume_config(const Args& a) {
  if (!a.config.empty())
    throw UsageError("--resume continues a run with its own config (" + (fs::path(a.resume) / "config.yaml").string() +
                     "); do not pass --config");
  if (!a.out.empty() || a.force)
    throw UsageError("--resume writes into the run folder itself; do not pass --out or --force");
  const fs::path dir(a.resume);
  for (const char* f : {"config.yaml", "run.json", "checkpoint.pt"})
    if (!fs::is_regular_file(dir / f))
      throw UsageError("--resume: '" + (dir / f).string() + "' does not exist" +
                       (std::string(f) == "checkpoint.pt" ? " (the run wrote no checkpoint)" : " (not a run folder?)"));
  nlohmann::ordered_json run;
  try {
    run = nlohmann::ordered_json::parse(read_text(dir / "run.json"));
  } catch (const std::exception& e) {
    throw UsageError("--resume: cannot read '" + (dir / "run.json").string() + "': " + e.what());
  }
  const std::string command = run.value("command", "");
  if (command != a.command)
    throw UsageError("--resume: '" + dir.string() + "' is a run of `rldt " + command + "`; resume it with `rldt " +
                     command + " --resume " + dir.string() + "`");
  const std::string path = (dir / "config.yaml").string();
  const RunConfig saved = load_run_config(path);
  RunConfig cfg = load_run_config(path, a.overrides);
  for (const auto& key : config_key_paths()) {
    bool free = false;
    for (const char* k : kResumeFreeKeys) free = free || key == k;
    const std::string before = config_value_text(saved, key), after = config_value_text(cfg, key);
    if (!free && before != after)
      throw UsageError((cfg.origins.count(key) ? cfg.origins.at(key) : std::string("override")) + ": key '" + key +
                       "': a resumed run keeps its config (" + path + " says " + before +
                       "); only n_train_itr, env_threads and checkpoint_freq may change");
  }
  return cfg;
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

struct RunRecord {
  nlohmann::ordered_json json;
  fs::path path;
  void status(const std::string& s) {
    json["status"] = s;
    json["finished"] = now_iso8601();
    write_text(path, json.dump(2) + "\n");
  }
};

int train_or_eval(const Args& a) {
  // 1. Config and policy: everything that can be wrong in the input is found here (exit 2).
  const bool resume = !a.resume.empty();
  if (!resume && a.config.empty())
    throw UsageError(std::string("--config is required") + (a.command == "eval" ? "" : " (or --resume RUN_DIR)"));
  RunConfig cfg = resume ? load_resume_config(a) : load_run_config(a.config, a.overrides);
  const bool eval = a.command == "eval";
  std::shared_ptr<FlowPolicy> policy;
  if (resume) {
    // The checkpoint holds the policy (the base policy file is not needed any more).
  } else if (a.command == "scratch") {
    if (!cfg.base_policy.empty())
      throw UsageError(cfg.origins.count("base_policy")
                           ? cfg.origins.at("base_policy") +
                                 ": key 'base_policy': is set, "
                                 "but `rldt scratch` trains a new policy; use `rldt finetune`"
                           : "base_policy is set; use `rldt finetune`");
  } else {
    const std::string path = eval && !a.policy.empty() ? a.policy : cfg.base_policy;
    policy = load_policy(cfg, path, eval ? "`rldt eval` (--policy FILE or base_policy)" : "`rldt finetune`");
  }
  int64_t iterations = cfg.trainer.n_train_itr;
  int64_t whole_episodes = 0;
  if (eval) {
    if (a.iterations < 1) throw UsageError("--iterations must be >= 1, got " + std::to_string(a.iterations));
    iterations = a.iterations;
    cfg.trainer.val_freq = 1;  // every iteration is a deterministic evaluation
    // The whole-episode evaluation runs once at the end (eval_episodes, else n_envs episodes).
    whole_episodes = cfg.trainer.eval_episodes > 0 ? cfg.trainer.eval_episodes : cfg.trainer.n_envs;
    cfg.trainer.eval_episodes = 0;
    // Long enough for every env to finish at least one whole episode.
    const int64_t max_steps = make_env(cfg.trainer.env, cfg.trainer.env_options)->spec().max_episode_steps;
    const int64_t needed = (max_steps + cfg.trainer.act_steps - 1) / cfg.trainer.act_steps;
    if (cfg.trainer.n_steps < needed) {
      std::cout << "eval: n_steps " << cfg.trainer.n_steps << " -> " << needed
                << " so that every env finishes an episode (" << max_steps << " steps)\n";
      cfg.trainer.n_steps = needed;
    }
  }

  // 2. The run folder (eval writes one only with --out).
  fs::path dir;
  if (resume) {
    dir = a.resume;
  } else if (!eval || !a.out.empty()) {
    dir = a.out.empty() ? fs::path("runs") / (config_name(a.config) + "-seed" + std::to_string(cfg.trainer.seed))
                        : fs::path(a.out);
    prepare_run_dir(dir, a.force);
  }
  const std::string checkpoint = dir.empty() ? "" : (dir / "checkpoint.pt").string();

  // 3. The trainer (builds envs and networks; a mismatch found here is still a config error).
  std::unique_ptr<RldtTrainer> trainer;
  try {
    trainer = std::make_unique<RldtTrainer>(cfg.trainer, policy);
  } catch (const ArgumentError& e) {
    throw UsageError((resume ? (dir / "config.yaml").string() : a.config) + ": " + error_message(e));
  }
  int64_t last_checkpoint = -1;  // iteration after which checkpoint.pt was written (-1: none yet)
  if (resume) {
    try {
      trainer->load_checkpoint(checkpoint);
    } catch (const std::exception& e) {
      throw UsageError("cannot resume: " + error_message(e));
    }
    last_checkpoint = trainer->iteration() - 1;
    std::cout << "resuming " << dir.string() << " after iteration " << last_checkpoint << "\n";
  }
  const std::string resume_hint = "resume with: rldt " + a.command + " --resume " + dir.string();
  // "; the last good checkpoint is …" for error messages ("" where a run writes none).
  const auto checkpoint_note = [&] {
    if (dir.empty() || eval) return std::string();
    if (last_checkpoint < 0) return std::string("; no checkpoint was written yet");
    return "; the last good checkpoint is " + checkpoint + " (after iteration " + std::to_string(last_checkpoint) +
           "; " + resume_hint + ")";
  };

  std::unique_ptr<cli::MetricsLog> log;
  RunRecord record;
  if (!dir.empty()) {
    cfg.trainer = trainer->config();  // with what the trainer derived (policy dims from the env)
    write_text(
        dir / "config.yaml",
        to_yaml(cfg, "Resolved config of this run (rldt " + a.command + ", " + now_iso8601() +
                         ").\nLoads back with: rldt " + a.command + " --config " + (dir / "config.yaml").string() +
                         "\nContinues with: rldt " + a.command + " --resume " + dir.string()));
    record.path = dir / "run.json";
    if (resume) {
      record.json = nlohmann::ordered_json::parse(read_text(record.path));
      record.json["status"] = "running";
      record.json["resumed"].push_back({{"after_iteration", last_checkpoint},
                                        {"at", now_iso8601()},
                                        {"overrides", a.overrides},
                                        {"blas_threads", blas_num_threads()}});
      // OpenBLAS rounds a product differently with another thread count (docs/checkpoints.md), so
      // the continuation repeats the uninterrupted run bit for bit only with the same count.
      const auto started = record.json.find("blas_threads");
      if (started != record.json.end() && started->is_number_integer() && started->get<int>() > 0 &&
          blas_num_threads() > 0 && started->get<int>() != blas_num_threads())
        std::cerr << "note: this run started with " << started->get<int>() << " BLAS thread(s) and continues with "
                  << blas_num_threads() << "; OpenBLAS rounds differently with another thread count, so the "
                  << "continuation will not repeat the uninterrupted run bit for bit (OPENBLAS_NUM_THREADS="
                  << started->get<int>() << " would)\n";
    } else {
      record.json = {{"command", a.command},
                     {"config", a.config},
                     {"config_name", config_name(a.config)},
                     {"overrides", a.overrides},
                     {"seed", cfg.trainer.seed},
                     {"base_policy", cfg.base_policy},
                     {"blas_threads", blas_num_threads()},
                     {"started", now_iso8601()},
                     {"status", "running"}};
    }
    write_text(record.path, record.json.dump(2) + "\n");
    log = std::make_unique<cli::MetricsLog>(dir.string(), resume ? trainer->iteration() : -1);
    std::cout << "run folder: " << dir.string() << "\n";
  }

  // The policy with the highest whole-episode evaluation so far (eval_episodes > 0) goes to
  // best_policy.pt; run.json's best_eval says which iteration it is (kept across --resume).
  double best_eval = -std::numeric_limits<double>::infinity();
  if (resume && record.json.contains("best_eval")) best_eval = record.json["best_eval"]["eval_return"].get<double>();

  // 4. The loop.
  install_stop_handlers();
  cli::Progress progress(iterations);
  const auto t_start = std::chrono::steady_clock::now();
  double eval_return_sum = 0;
  int64_t eval_episodes = 0;
  int64_t itr = trainer->iteration();
  for (; itr < iterations; ++itr) {
    const auto t0 = std::chrono::steady_clock::now();
    IterationMetrics m;
    try {
      m = trainer->train_iteration();
    } catch (const NonFiniteError& e) {
      std::cerr << "rldt: stopping: " << error_message(e) << " (lower critic.lr / actor.lr, or check the rewards)"
                << checkpoint_note() << "\n";
      if (!dir.empty()) record.status("stopped in iteration " + std::to_string(itr) + ": " + error_message(e));
      return kFailure;
    } catch (const std::exception& e) {
      std::cerr << "rldt: error in iteration " << itr << ": " << error_message(e) << checkpoint_note() << "\n";
      if (!dir.empty()) record.status("failed in iteration " + std::to_string(itr) + ": " + error_message(e));
      return kFailure;
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    const double wall = std::chrono::duration<double>(t1 - t_start).count();
    if (log) log->write(m, seconds, wall);
    std::cout << progress.line(m, seconds, wall) << std::endl;
    if (m.eval && m.episodes > 0) {
      eval_return_sum += m.episode_return * static_cast<double>(m.episodes);
      eval_episodes += m.episodes;
    }
    if (!eval && !dir.empty() && m.eval && std::isfinite(m.eval_return) && m.eval_return > best_eval) {
      try {
        trainer->policy().save((dir / "best_policy.pt").string());
      } catch (const std::exception& e) {
        std::cerr << "rldt: cannot write " << (dir / "best_policy.pt").string() << ": " << error_message(e)
                  << checkpoint_note() << "\n";
        record.status("failed writing best_policy.pt in iteration " + std::to_string(m.iteration));
        return kFailure;
      }
      best_eval = m.eval_return;
      record.json["best_eval"] = {
          {"iteration", m.iteration}, {"eval_return", m.eval_return}, {"file", "best_policy.pt"}};
      write_text(record.path, record.json.dump(2) + "\n");
    }
    const std::string bad = cli::first_non_finite(m, trainer->config());
    if (!bad.empty()) {
      std::cerr << "rldt: stopping: " << bad << " is not finite in iteration " << m.iteration
                << " (lower critic.lr / actor.lr, or check the rewards); the policy is not saved" << checkpoint_note()
                << "\n";
      if (!dir.empty()) record.status("stopped: " + bad + " not finite in iteration " + std::to_string(m.iteration));
      return kFailure;
    }
    // A checkpoint of the finished iteration: every checkpoint_freq, after the last one, and
    // before stopping for a signal.
    if (!eval && !dir.empty() &&
        ((itr + 1) % cfg.checkpoint_freq == 0 || itr + 1 == iterations || g_stop_signal != 0)) {
      try {
        trainer->save_checkpoint(checkpoint);
      } catch (const std::exception& e) {
        std::cerr << "rldt: cannot write the checkpoint after iteration " << itr << ": " << error_message(e)
                  << checkpoint_note() << "\n";
        record.status("failed writing the checkpoint after iteration " + std::to_string(itr));
        return kFailure;
      }
      last_checkpoint = itr;
    }
    if (g_stop_signal != 0) {
      ++itr;
      break;
    }
  }

  // 5. Results.
  if (eval) {
    if (eval_episodes == 0) {
      std::cerr << "rldt: no episode finished during evaluation\n";
      return kFailure;
    }
    std::cout << "eval: the iterations' own episodes: mean return "
              << eval_return_sum / static_cast<double>(eval_episodes) << " over " << eval_episodes
              << " (episodes that end early are over-represented)\n";
    const auto r = trainer->evaluate(whole_episodes);
    std::cout << "eval: mean return " << r.mean_return << " over " << whole_episodes
              << " episodes (whole deterministic episodes on separate envs reset with seed + 1000003 + i; std "
              << r.std_return << ", mean length " << r.mean_length << ")\n";
  }
  if (!dir.empty() && !eval) {
    trainer->policy().save((dir / "policy.pt").string());
    std::cout << "policy saved to " << (dir / "policy.pt").string() << "\n";
  }
  if (g_stop_signal != 0) {
    const int sig = g_stop_signal;
    std::cerr << "rldt: stopped by " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << " after iteration " << itr - 1
              << " of " << iterations
              << (dir.empty() || eval
                      ? ""
                      : "; metrics, policy and checkpoint are in " + dir.string() + " (" + resume_hint + ")")
              << "\n";
    if (!dir.empty()) record.status("interrupted after iteration " + std::to_string(itr - 1));
    return 128 + sig;
  }
  if (!dir.empty()) record.status("completed");
  return kOk;
}

// ---------------------------------------------------------------------------
// rldt pretrain
// ---------------------------------------------------------------------------
int pretrain_command(const Args& a) {
  // 1. Config and dataset (exit 2 for anything wrong in them).
  if (a.config.empty()) throw UsageError("pretrain: --config FILE is required");
  RunConfig cfg = load_run_config(a.config, a.overrides);
  auto& pc = cfg.pretrain;
  const std::string where = cfg.origins.count("pretrain.dataset") ? cfg.origins.at("pretrain.dataset") : a.config;
  if (pc.dataset.empty())
    throw UsageError(where +
                     ": key 'pretrain.dataset': not set; name a D4RL-layout dataset (.npz, .hdf5), e.g. "
                     "pretrain.dataset=outputs/datasets/hopper-medium.npz (docs/datasets.md)");
  if (!fs::is_regular_file(pc.dataset))
    throw UsageError(where + ": key 'pretrain.dataset': the dataset file '" + pc.dataset + "' does not exist" +
                     (fs::path(pc.dataset).is_relative() ? " (relative to " + fs::current_path().string() + ")" : ""));
  Dataset data;
  try {
    data = load_dataset(pc.dataset);
  } catch (const DatasetError& e) {
    throw UsageError(where + ": key 'pretrain.dataset': " + e.what());
  }
  const auto env = make_env(cfg.trainer.env, cfg.trainer.env_options);
  const auto O = static_cast<int64_t>(env->spec().observation.size()),
             d = static_cast<int64_t>(env->spec().action.size());
  if (data.obs_dim != O || data.action_dim != d)
    throw UsageError(where + ": key 'pretrain.dataset': '" + pc.dataset + "' has obs_dim " +
                     std::to_string(data.obs_dim) + " and action_dim " + std::to_string(data.action_dim) + "; env '" +
                     cfg.trainer.env + "' (key 'env') has " + std::to_string(O) + " and " + std::to_string(d));
  const auto episodes = data.episodes();
  std::cout << "dataset: " << pc.dataset << ": " << data.size() << " steps, " << episodes.size()
            << " episodes, obs_dim " << O << ", action_dim " << d << "\n";

  // 2. The run folder.
  const fs::path dir =
      a.out.empty() ? fs::path("runs") / (config_name(a.config) + "-seed" + std::to_string(pc.seed)) : fs::path(a.out);
  prepare_run_dir(dir, a.force);
  write_text(dir / "config.yaml",
             to_yaml(cfg, "Resolved config of this run (rldt pretrain, " + now_iso8601() +
                              ").\nLoads back with: rldt pretrain --config " + (dir / "config.yaml").string()));
  RunRecord record;
  record.path = dir / "run.json";
  record.json = {{"command", "pretrain"},
                 {"config", a.config},
                 {"config_name", config_name(a.config)},
                 {"overrides", a.overrides},
                 {"seed", pc.seed},
                 {"dataset", fs::absolute(pc.dataset).string()},
                 {"dataset_steps", data.size()},
                 {"dataset_episodes", episodes.size()},
                 {"blas_threads", blas_num_threads()},
                 {"started", now_iso8601()},
                 {"status", "running"}};
  write_text(record.path, record.json.dump(2) + "\n");
  cli::PretrainMetricsLog log(dir.string());
  const std::string policy_path = (dir / "policy.pt").string();
  std::cout << "run folder: " << dir.string() << "\n";

  // 3. Pretraining.
  install_stop_handlers();
  PretrainCallbacks cb;
  cb.on_log = [&](const PretrainLog& l) {
    log.write(l);
    std::cout << cli::pretrain_progress_line(l, pc.n_updates) << std::endl;
    return g_stop_signal == 0;
  };
  cb.on_checkpoint = [&](const FlowPolicy& p, int64_t update) {
    p.save(policy_path);
    std::cout << "checkpoint (update " << update << "): " << policy_path << "\n";
  };
  PretrainResult r;
  try {
    r = pretrain(data, pc, cfg.trainer.policy, cb);
  } catch (const std::exception& e) {
    std::cerr << "rldt: error while pretraining: " << error_message(e) << "\n";
    record.status("failed: " + error_message(e));
    return kFailure;
  }
  r.policy->save(policy_path);
  record.json["train_episodes"] = r.train_episodes;
  record.json["val_episodes"] = r.val_episodes;
  record.json["train_chunks"] = r.train_chunks;
  record.json["val_chunks"] = r.val_chunks;
  std::cout << "policy (EMA weights, with the dataset's normaliser) saved to " << policy_path << "\n"
            << "fine-tune it: rldt finetune --config configs/gym/<task>/finetune-cpu.yaml base_policy=" << policy_path
            << "\n";
  if (g_stop_signal != 0) {
    const int sig = g_stop_signal;
    std::cerr << "rldt: stopped by " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << " after update " << r.last.update
              << "; the policy so far is in " << policy_path << "\n";
    record.status("interrupted after update " + std::to_string(r.last.update));
    return 128 + sig;
  }
  record.status("completed");
  return kOk;
}

// ---------------------------------------------------------------------------
// rldt record
// ---------------------------------------------------------------------------
int record_command(const Args& a) {
  RunConfig cfg = load_run_config(a.config, a.overrides);
  if ((a.episodes > 0) == (a.steps > 0)) throw UsageError("give exactly one of --episodes N and --steps N (N >= 1)");
  if (!(a.noise >= 0.0) || !std::isfinite(a.noise)) throw UsageError("--noise must be a finite number >= 0");
  if (a.out.empty() || fs::path(a.out).extension() != ".npz")
    throw UsageError("--out: '" + a.out + "' must name a .npz file (the dataset to write)");
  if (fs::exists(a.out) && !a.force)
    throw UsageError("--out: '" + a.out + "' already exists; pass --force to overwrite it");
  if (fs::path(a.out).has_parent_path() && !fs::is_directory(fs::path(a.out).parent_path()))
    throw UsageError("--out: the folder '" + fs::path(a.out).parent_path().string() + "' does not exist");
  if (!fs::is_regular_file(a.policy)) throw UsageError("--policy: the policy file '" + a.policy + "' does not exist");
  // A FlowPolicy file (rldt pretrain / scratch / finetune) or a SAC policy (rldt sac).
  std::shared_ptr<FlowPolicy> policy;
  std::shared_ptr<SacPolicy> sac_policy;
  try {
    policy = std::make_shared<FlowPolicy>(FlowPolicy::load(a.policy));
  } catch (const std::exception& flow_error) {
    try {
      sac_policy = SacPolicy::load(a.policy);
    } catch (const std::exception& sac_error) {
      throw UsageError("--policy: cannot load '" + a.policy + "' as a FlowPolicy (" + error_message(flow_error) +
                       ") nor as a SAC policy (" + error_message(sac_error) + ")");
    }
  }
  RecordConfig rc;
  rc.env = cfg.trainer.env;
  rc.env_options = cfg.trainer.env_options;
  rc.n_envs = cfg.trainer.n_envs;
  rc.env_threads = cfg.trainer.env_threads;
  rc.act_steps = cfg.trainer.act_steps;
  rc.episodes = a.episodes;
  rc.steps = a.steps;
  rc.noise = a.noise;
  rc.deterministic = a.deterministic;
  rc.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : cfg.trainer.seed;
  if (sac_policy) {
    if (rc.act_steps != 1) std::cout << "SAC policy: one action per step (act_steps " << rc.act_steps << " ignored)\n";
    rc.act_steps = 1;
  } else if (rc.act_steps > policy->config().horizon_steps) {
    throw UsageError(a.config + ": key 'act_steps': " + std::to_string(rc.act_steps) +
                     " is more than the policy's horizon_steps (" + std::to_string(policy->config().horizon_steps) +
                     ")");
  }
  const auto t0 = std::chrono::steady_clock::now();
  Dataset data;
  try {
    data = sac_policy ? record_dataset(*sac_policy, rc) : record_dataset(*policy, rc);
  } catch (const ArgumentError& e) {
    throw UsageError(a.config + ": " + error_message(e));
  }
  save_dataset_npz(data, a.out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Returns of the finished episodes (those that end with a terminal or a true timeout).
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (const auto& [b, e] : data.episodes()) {
    double ret = 0;
    for (int64_t i = b; i < e; ++i) ret += data.rewards[static_cast<size_t>(i)];
    sum += ret;
    sq += ret * ret;
    ++n;
  }
  const double mean = n ? sum / static_cast<double>(n) : 0.0;
  const double sd = n ? std::sqrt(std::max(0.0, sq / static_cast<double>(n) - mean * mean)) : 0.0;
  std::cout << "recorded " << data.size() << " steps, " << n << " episodes (return " << mean << " +- " << sd << ") of "
            << rc.env << " in " << cli::format_duration(secs) << " to " << a.out << "\n";
  return kOk;
}

// ---------------------------------------------------------------------------
// rldt sac: the SAC baseline (issue 5) from the same config files (section sac:).
// ---------------------------------------------------------------------------
int sac_command(const Args& a) {
  if (a.config.empty()) throw UsageError("sac: --config FILE is required");
  RunConfig cfg = load_run_config(a.config, a.overrides, ConfigUse::sac);
  const SacTrainerConfig sc = sac_trainer_config(cfg);
  const fs::path dir =
      a.out.empty() ? fs::path("runs") / (config_name(a.config) + "-seed" + std::to_string(sc.seed)) : fs::path(a.out);
  prepare_run_dir(dir, a.force);
  std::unique_ptr<SacTrainer> trainer;
  try {
    trainer = std::make_unique<SacTrainer>(sc);
  } catch (const ArgumentError& e) {
    throw UsageError(a.config + ": " + error_message(e));
  }
  write_text(dir / "config.yaml",
             to_yaml(cfg, "Resolved config of this run (rldt sac, " + now_iso8601() +
                              ").\nLoads back with: rldt sac --config " + (dir / "config.yaml").string()));
  RunRecord record;
  record.path = dir / "run.json";
  record.json = {{"command", "sac"},         {"config", a.config}, {"config_name", config_name(a.config)},
                 {"overrides", a.overrides}, {"seed", sc.seed},    {"blas_threads", blas_num_threads()},
                 {"started", now_iso8601()}, {"status", "running"}};
  write_text(record.path, record.json.dump(2) + "\n");
  cli::SacMetricsLog log(dir.string());
  std::cout << "run folder: " << dir.string() << " (SAC on " << sc.env << ", " << sc.n_iterations << " iterations of "
            << sc.steps_per_iteration * sc.n_envs << " env steps)\n";
  const std::string policy_path = (dir / "policy.pt").string();

  install_stop_handlers();
  const auto t_start = std::chrono::steady_clock::now();
  int64_t itr = 0;
  for (; itr < sc.n_iterations && g_stop_signal == 0; ++itr) {
    const auto t0 = std::chrono::steady_clock::now();
    SacIterationMetrics m;
    try {
      m = trainer->train_iteration();
    } catch (const std::exception& e) {
      std::cerr << "rldt: error in iteration " << itr << ": " << error_message(e) << "\n";
      record.status("failed in iteration " + std::to_string(itr) + ": " + error_message(e));
      return kFailure;
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    const double wall = std::chrono::duration<double>(t1 - t_start).count();
    log.write(m, seconds, wall);
    std::cout << cli::sac_progress_line(m, sc.n_iterations, seconds, wall) << std::endl;
  }
  trainer->save_policy(policy_path);
  std::cout << "policy saved to " << policy_path << " (SacPolicy; rldt record --policy reads it)\n";
  if (g_stop_signal != 0) {
    const int sig = g_stop_signal;
    std::cerr << "rldt: stopped by " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << " after iteration " << itr - 1
              << "; metrics and policy are in " << dir.string() << " (SAC runs have no checkpoint to resume from)\n";
    record.status("interrupted after iteration " + std::to_string(itr - 1));
    return 128 + sig;
  }
  record.status("completed");
  return kOk;
}

// rldt export: the actor of a checkpoint as a policy file (FlowPolicy::load reads it).
int export_policy(const Args& a) {
  if (fs::exists(a.out) && !a.force)
    throw UsageError("--out: '" + a.out + "' already exists; pass --force to overwrite it");
  FlowPolicy policy = [&] {
    try {
      return policy_from_checkpoint(a.checkpoint);
    } catch (const std::exception& e) {
      throw UsageError("--checkpoint: " + error_message(e));
    }
  }();
  policy.save(a.out);
  std::cout << "policy saved to " << a.out << " (actor, EMA and reference of " << a.checkpoint << ")\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rldt: Reinforcement Learning with Density Transport (runs from YAML configs)."};
  app.require_subcommand(1);
  Args a;
  auto add_run_options = [&a](CLI::App* sub) {
    sub->add_option("--config,-c", a.config, "YAML config file (configs/...)");
    sub->add_option("--out,-o", a.out, "run folder (default runs/<config name>-seed<seed>)");
    sub->add_flag("--force", a.force, "overwrite the files of an existing run folder");
    sub->add_option("overrides", a.overrides, "config overrides key.path=value, e.g. actor.svgd.svgd_temp=0.01");
  };
  auto* scratch = app.add_subcommand("scratch", "train a new policy from scratch");
  auto* finetune = app.add_subcommand("finetune", "fine-tune the pretrained policy named by base_policy");
  auto* eval = app.add_subcommand("eval", "deterministic rollouts of a policy; prints the mean return");
  for (auto* sub : {scratch, finetune, eval}) add_run_options(sub);
  for (auto* sub : {scratch, finetune})
    sub->add_option("--resume", a.resume,
                    "continue the run in this folder from its checkpoint.pt, with its config.yaml (overrides: only "
                    "n_train_itr, env_threads, checkpoint_freq)");
  auto* exp =
      app.add_subcommand("export", "write the actor of a checkpoint as a policy file (for rldt eval, deployment)");
  exp->add_option("--checkpoint", a.checkpoint, "checkpoint file (RUN_DIR/checkpoint.pt)")->required();
  exp->add_option("--out,-o", a.out, "policy file to write")->required();
  exp->add_flag("--force", a.force, "overwrite --out if it exists");
  auto* plot = app.add_subcommand("plot",
                                  "learning curves of run folders: rldt plot RUN_DIR... --out FILE.png "
                                  "[--metric M] [--x env_steps|seconds_wall] (python3 + matplotlib)");
  plot->prefix_command();  // everything after `plot` goes to the plotting script
  plot->set_help_flag();
  eval->add_option("--policy,-p", a.policy, "policy file (default: the config's base_policy)");
  eval->add_option("--iterations,-n", a.iterations, "evaluation iterations of n_envs x n_steps chunk steps")
      ->capture_default_str();
  auto* pretrain_cmd =
      app.add_subcommand("pretrain", "behaviour-cloning (flow matching) pretraining on the dataset pretrain.dataset");
  add_run_options(pretrain_cmd);
  auto* record = app.add_subcommand("record", "roll out a policy and record a D4RL-layout dataset (.npz)");
  record->add_option("--config,-c", a.config, "YAML config file (env, env_options, n_envs, act_steps, seed)")
      ->required();
  record->add_option("--policy,-p", a.policy, "policy file to roll out: a FlowPolicy or a SAC policy (rldt sac)")
      ->required();
  record->add_option("--out,-o", a.out, "dataset file to write (.npz)")->required();
  auto* rec_eps = record->add_option("--episodes", a.episodes, "record this many finished episodes");
  auto* rec_steps = record->add_option("--steps", a.steps, "record this many env steps");
  rec_eps->excludes(rec_steps);
  record->add_option("--noise", a.noise, "sigma of Gaussian noise on policy actions (in [-1, 1] units)")
      ->capture_default_str();
  record->add_option("--seed", a.seed, "seed of env resets, sampling and noise (default: the config's seed)");
  record->add_flag("--deterministic", a.deterministic,
                   "FlowPolicy: sample from x_0 = 0; SAC: tanh(mean) (noise is still added)");
  record->add_flag("--force", a.force, "overwrite an existing --out file");
  record->add_option("overrides", a.overrides, "config overrides key.path=value, e.g. n_envs=4");
  auto* sac_cmd = app.add_subcommand("sac", "train the SAC baseline (tanh-Gaussian actor; config section sac:)");
  add_run_options(sac_cmd);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  a.command = app.get_subcommands().front()->get_name();
  if (a.command == "plot") return cli::run_plot(plot->remaining());
  try {
    if (a.command == "export") return export_policy(a);
    if (a.command == "pretrain") return pretrain_command(a);
    if (a.command == "record") return record_command(a);
    if (a.command == "sac") return sac_command(a);
    return train_or_eval(a);
  } catch (const ConfigError& e) {
    std::cerr << "rldt: config error: " << e.what() << "\n";
  } catch (const UsageError& e) {
    std::cerr << "rldt: " << e.what() << "\n";
  } catch (const DatasetError& e) {
    std::cerr << "rldt: error: " << e.what() << "\n";
    return kFailure;
  } catch (const std::exception& e) {
    std::cerr << "rldt: error: " << error_message(e) << "\n";
    return kFailure;
  }
  return kUsage;
}
