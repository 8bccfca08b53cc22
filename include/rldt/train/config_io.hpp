// Run configuration files (YAML) for the `rldt` command.
//
// A file maps 1:1 onto RldtTrainerConfig: keys equal the C++ field names, with nested sections
//   policy:       FlowPolicyConfig        critic:  CriticConfig
//   actor:        ActorUpdateConfig (with svgd: SvgdConfig inside)
//   exploration:  ExplorationConfig       env_options: {option name: number}
// plus what the trainer struct does not hold:
//   base_policy:      FlowPolicy file to fine-tune (used by `rldt finetune` and `rldt eval`).
//   checkpoint_freq:  the rldt command writes RUN_DIR/checkpoint.pt after every checkpoint_freq-th
//                     iteration (and always after the last one, or when stopped by a signal).
//   pretrain:         PretrainConfig (used by `rldt pretrain`; the network is the policy: section).
//   sac:              SacRunConfig (used by `rldt sac`, the SAC baseline; with the top-level env,
//                     env_options, n_envs, env_threads, seed, n_train_itr and val_freq).
// Keys the trainer derives from the environment (policy.obs_dim, policy.action_dim,
// critic.obs_dim, critic.action_dim, critic.act_steps) are not accepted.
//
// Every error is a ConfigError whose message starts with where the value came from (the file,
// or the command-line override) and names the full key path, e.g.
//   configs/x.yaml: key 'actor.svgd.q_norm': q_norm must be one of none, q_grad, svgd; got 'l2'
// Unknown keys, wrong types (a string or a float for an integer, …) and values the configs'
// validate() rejects are all reported before anything is built.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "rldt/train/pretrain.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/train/sac_trainer.hpp"
#include "rldt/util/check.hpp"

namespace rldt {

class ConfigError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

// The `sac:` section: SacTrainerConfig's own fields and the SAC learner's (SacConfig, flattened
// into the same section; obs_dim/action_dim come from the env).
struct SacRunConfig {
  int64_t steps_per_iteration = 1000;  // vec-env steps per iteration
  int64_t eval_episodes = 10;          // deterministic episodes per evaluation
  SacConfig learner;
};

struct RunConfig {
  RldtTrainerConfig trainer;
  std::string base_policy;      // "" = none
  int64_t checkpoint_freq = 1;  // the rldt command writes RUN_DIR/checkpoint.pt every this many iterations
  PretrainConfig pretrain;      // `rldt pretrain` (dataset, batch size, updates, ...)
  SacRunConfig sac;             // `rldt sac`
  // Bookkeeping (not written by to_yaml):
  std::string source;                          // the file the config came from ("" if none)
  std::map<std::string, std::string> origins;  // key path → "file F" / "override 'k=v'", for keys set explicitly
};

// Reads `path` onto the defaults, then applies each override "key.path=value" (value parsed as
// a YAML scalar or flow list, e.g. "policy.mlp_dims=[64,64]") in order, then validates
// (validate_run_config). Throws ConfigError.
// Which command's rules validation applies: the RLDT trainer's (scratch, finetune, eval,
// pretrain, record) or only the SAC baseline's (`rldt sac`: the sac: section and the env keys;
// RLDT-only rules such as n_envs >= critic.ensemble_size do not concern it).
enum class ConfigUse { rldt, sac };

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {},
                          ConfigUse use = ConfigUse::rldt);

// The same from YAML text; `source` names it in error messages. No validation.
RunConfig parse_run_config(const std::string& yaml_text, const std::string& source);

// Applies one "key.path=value" override to `cfg` (same checks as the file). No validation.
void apply_override(RunConfig& cfg, const std::string& assignment);

// Calls the validate() of every config struct and maps the first failure to its key path and
// origin. With `check_env`, also checks that `env` names a task and that `env_options` are valid
// for it (builds one environment: milliseconds).
void validate_run_config(const RunConfig& cfg, bool check_env = true, ConfigUse use = ConfigUse::rldt);

// YAML text that loads back (parse_run_config) to an identical config: every field, doubles
// written with round-trip precision. `header` lines are written first as comments.
std::string to_yaml(const RunConfig& cfg, const std::string& header = "");
std::string to_yaml(const RldtTrainerConfig& cfg, const std::string& header = "");

// The value of one key as YAML text ("[64, 64]", "0.001", "relu"). Throws ConfigError for an
// unknown key path.
std::string config_value_text(const RunConfig& cfg, const std::string& key_path);

// The SAC trainer's config: top-level env, env_options, n_envs, env_threads, seed, val_freq, and
// n_train_itr (→ n_iterations), plus the sac: section.
SacTrainerConfig sac_trainer_config(const RunConfig& cfg);

// Every key path a file may hold, in file order (for documentation and tests).
std::vector<std::string> config_key_paths();

}  // namespace rldt
