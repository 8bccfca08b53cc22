#include "rldt/train/config_io.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <type_traits>

#include "rldt/envs/make_env.hpp"

namespace rldt {

// ---------------------------------------------------------------------------
// The key lists: the one place that names every key of a config file, in file order.
// A visitor V provides field(name, value), section(name, struct) and derived(name, why).
// ---------------------------------------------------------------------------
namespace {

template <class V>
void visit(V& v, ExplorationConfig& c) {
  v.field("sample_mode", c.sample_mode);
  v.field("noise_mode", c.noise_mode);
  v.field("action_sample_noise", c.action_sample_noise);
  v.field("min_extrp_step", c.min_extrp_step);
  v.field("langevin_steps", c.langevin_steps);
}

template <class V>
void visit(V& v, FlowPolicyConfig& c) {
  v.derived("obs_dim", "taken from the environment");
  v.derived("action_dim", "taken from the environment");
  v.field("horizon_steps", c.horizon_steps);
  v.field("denoising_steps", c.denoising_steps);
  v.field("mlp_dims", c.mlp_dims);
  v.field("time_dim", c.time_dim);
  v.field("activation", c.activation);
  v.field("residual", c.residual);
  v.field("prediction", c.prediction);
  v.field("final_action_clip", c.final_action_clip);
  v.field("bc_lr", c.bc_lr);
  v.field("bc_weight_decay", c.bc_weight_decay);
  v.field("ema_decay", c.ema_decay);
  v.field("xpred_t_max", c.xpred_t_max);
}

template <class V>
void visit(V& v, CriticConfig& c) {
  v.derived("obs_dim", "taken from the environment");
  v.derived("action_dim", "taken from the environment");
  v.derived("act_steps", "taken from the top-level act_steps");
  v.field("ensemble_size", c.ensemble_size);
  v.field("hidden", c.hidden);
  v.field("activation", c.activation);
  v.field("init_std", c.init_std);
  v.field("lr", c.lr);
  v.field("weight_decay", c.weight_decay);
  v.field("target_momentum", c.target_momentum);
  v.field("q_target_min", c.q_target_min);
  v.field("q_target_max", c.q_target_max);
  v.field("update_groups", c.update_groups);
}

template <class V>
void visit(V& v, SvgdConfig& c) {
  v.field("svgd_temp", c.svgd_temp);
  v.field("bandwidth", c.bandwidth);
  v.field("q_norm", c.q_norm);
  v.field("q_norm_min", c.q_norm_min);
  v.field("q_norm_max", c.q_norm_max);
  v.field("q_norm_eps", c.q_norm_eps);
  v.field("field", c.field);
}

template <class V>
void visit(V& v, ActorUpdateConfig& c) {
  v.field("n_particles", c.n_particles);
  v.field("lr", c.lr);
  v.field("lr_warmup_steps", c.lr_warmup_steps);
  v.field("c_cons", c.c_cons);
  v.field("kl_coef", c.kl_coef);
  v.field("final_step_only", c.final_step_only);
  v.field("project_field", c.project_field);
  v.field("objective", c.objective);
  v.field("update_groups", c.update_groups);
  v.field("backward", c.backward);
  v.section("svgd", c.svgd);
}

template <class V>
void visit(V& v, RldtTrainerConfig& c) {
  v.field("env", c.env);
  v.field("env_options", c.env_options);
  v.field("n_envs", c.n_envs);
  v.field("env_threads", c.env_threads);
  v.field("rollout_groups", c.rollout_groups);
  v.field("rollout_inference", c.rollout_inference);
  v.field("seed", c.seed);
  v.field("act_steps", c.act_steps);
  v.field("n_steps", c.n_steps);
  v.field("n_train_itr", c.n_train_itr);
  v.field("n_critic_warmup_itr", c.n_critic_warmup_itr);
  v.field("val_freq", c.val_freq);
  v.field("eval_episodes", c.eval_episodes);
  v.field("gamma", c.gamma);
  v.field("td_lambda", c.td_lambda);
  v.field("bootstrap_truncated", c.bootstrap_truncated);
  v.field("q_update_steps", c.q_update_steps);
  v.field("q_repeat", c.q_repeat);
  v.field("q_bootstrap", c.q_bootstrap);
  v.field("q_bootstrap_mode", c.q_bootstrap_mode);
  v.field("critic_train_itr", c.critic_train_itr);
  v.field("critic_lr_decay", c.critic_lr_decay);
  v.field("q_minibatch", c.q_minibatch);
  v.field("new_fraction", c.new_fraction);
  v.field("buffer_num_episode", c.buffer_num_episode);
  v.field("reward_scale", c.reward_scale);
  v.field("reward_scale_alpha", c.reward_scale_alpha);
  v.field("policy_update_steps", c.policy_update_steps);
  v.field("actor_traj_stride", c.actor_traj_stride);
  v.field("actor_q_reduce", c.actor_q_reduce);
  v.field("actor_max_states", c.actor_max_states);
  v.field("reference_refresh_freq", c.reference_refresh_freq);
  v.section("exploration", c.exploration);
  v.section("policy", c.policy);
  v.section("critic", c.critic);
  v.section("actor", c.actor);
}

template <class V>
void visit(V& v, PretrainConfig& c) {
  v.field("dataset", c.dataset);
  v.field("batch_size", c.batch_size);
  v.field("n_updates", c.n_updates);
  v.field("val_fraction", c.val_fraction);
  v.field("val_max_chunks", c.val_max_chunks);
  v.field("log_freq", c.log_freq);
  v.field("checkpoint_freq", c.checkpoint_freq);
  v.field("normalize", c.normalize);
  v.field("pad_chunks", c.pad_chunks);
  v.field("seed", c.seed);
}

template <class V>
void visit(V& v, SacRunConfig& c) {
  v.field("steps_per_iteration", c.steps_per_iteration);
  v.field("eval_episodes", c.eval_episodes);
  auto& l = c.learner;
  v.field("hidden", l.hidden);
  v.field("activation", l.activation);
  v.field("actor_lr", l.actor_lr);
  v.field("critic_lr", l.critic_lr);
  v.field("alpha_lr", l.alpha_lr);
  v.field("gamma", l.gamma);
  v.field("tau", l.tau);
  v.field("batch_size", l.batch_size);
  v.field("autotune_alpha", l.autotune_alpha);
  v.field("target_entropy_per_dim", l.target_entropy_per_dim);
  v.field("init_alpha", l.init_alpha);
  v.field("log_std_min", l.log_std_min);
  v.field("log_std_max", l.log_std_max);
  v.field("policy_frequency", l.policy_frequency);
  v.field("target_frequency", l.target_frequency);
  v.field("learning_starts", l.learning_starts);
  v.field("buffer_size", l.buffer_size);
  v.field("utd", l.utd);
}

template <class V>
void visit(V& v, RunConfig& c) {
  v.field("base_policy", c.base_policy);
  v.field("checkpoint_freq", c.checkpoint_freq);
  visit(v, c.trainer);
  v.section("pretrain", c.pretrain);
  v.section("sac", c.sac);
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

// Where values come from: a file (errors carry line numbers) or one override.
struct Source {
  std::string label;  // "configs/x.yaml" or "override 'k=v'"
  bool lines = false;
  std::map<std::string, std::string>* origins = nullptr;
};

std::string describe(const YAML::Node& n) {
  if (n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a section (map)";
  if (n.Tag() == "!") return "the quoted string \"" + n.Scalar() + "\"";
  return "'" + n.Scalar() + "'";
}

bool is_plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() != "!"; }

bool parse_int_text(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  errno = 0;
  out = std::strtoll(s.c_str(), nullptr, 10);
  return errno == 0;
}

bool parse_double_text(const std::string& s, double& out) {
  static const std::map<std::string, double> special = {
      {".inf", HUGE_VAL},   {".Inf", HUGE_VAL},  {".INF", HUGE_VAL},   {"+.inf", HUGE_VAL},
      {"+.Inf", HUGE_VAL},  {"+.INF", HUGE_VAL}, {"-.inf", -HUGE_VAL}, {"-.Inf", -HUGE_VAL},
      {"-.INF", -HUGE_VAL}, {".nan", NAN},       {".NaN", NAN},        {".NAN", NAN}};
  if (auto it = special.find(s); it != special.end()) {
    out = it->second;
    return true;
  }
  // Digits, sign, point and exponent only (no hex, no "inf"/"nan" words).
  if (s.empty() || s.find_first_not_of("0123456789+-.eE") != std::string::npos) return false;
  if (s.find_first_of("0123456789") == std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

class Reader {
 public:
  Reader(YAML::Node map, std::string prefix, const Source& src)
      : map_(std::move(map)), prefix_(std::move(prefix)), src_(src) {}

  template <class T>
  void field(const char* name, T& value) {
    names_.push_back(name);
    const YAML::Node n = get(name);
    if (!n) return;
    const std::string path = prefix_ + name;
    if (n.IsNull()) fail(n, path, "has no value");
    parse(n, path, value);
    if (src_.origins) (*src_.origins)[path] = src_.label;
  }

  template <class S>
  void section(const char* name, S& s) {
    names_.push_back(name);
    const YAML::Node n = get(name);
    if (!n) return;
    const std::string path = prefix_ + name;
    if (!n.IsMap()) fail(n, path, "must be a section of keys, got " + describe(n));
    Reader sub(n, path + ".", src_);
    visit(sub, s);
    sub.check_unknown();
  }

  void derived(const char* name, const char* why) {
    const YAML::Node n = get(name);
    if (n) fail(n, prefix_ + name, std::string("cannot be set: it is ") + why);
  }

  void check_unknown() const {
    for (const auto& kv : map_) {
      if (!kv.first.IsScalar()) fail(kv.first, prefix_ + "?", "keys must be plain names");
      const std::string key = kv.first.Scalar();
      bool known = false;
      for (const auto& k : names_) known = known || k == key;
      if (known) continue;
      std::string valid;
      for (size_t i = 0; i < names_.size(); ++i) valid += (i ? ", " : "") + names_[i];
      fail(kv.first, prefix_ + key, "unknown key; valid keys here: " + valid);
    }
  }

 private:
  // Const access: a missing key gives an undefined node and never inserts one.
  YAML::Node get(const char* name) const {
    const YAML::Node& m = map_;
    return m[name];
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    std::string where = src_.label;
    if (src_.lines && n.Mark().line >= 0) where += ":" + std::to_string(n.Mark().line + 1);
    throw ConfigError(where + ": key '" + path + "': " + msg);
  }

  void parse(const YAML::Node& n, const std::string& path, int64_t& out) const {
    double d = 0;
    if (is_plain_scalar(n) && parse_int_text(n.Scalar(), out)) return;
    if (is_plain_scalar(n) && parse_double_text(n.Scalar(), d))
      fail(n, path, "expected an integer, got the non-integer number " + n.Scalar());
    fail(n, path, "expected an integer, got " + describe(n));
  }
  void parse(const YAML::Node& n, const std::string& path, uint64_t& out) const {
    int64_t v = 0;
    parse(n, path, v);
    if (v < 0) fail(n, path, "expected a non-negative integer, got " + n.Scalar());
    out = static_cast<uint64_t>(v);
  }
  void parse(const YAML::Node& n, const std::string& path, double& out) const {
    if (is_plain_scalar(n) && parse_double_text(n.Scalar(), out)) return;
    fail(n, path, "expected a number, got " + describe(n));
  }
  void parse(const YAML::Node& n, const std::string& path, bool& out) const {
    static const std::set<std::string> yes = {"true", "True", "TRUE"}, no = {"false", "False", "FALSE"};
    if (is_plain_scalar(n) && yes.count(n.Scalar())) {
      out = true;
      return;
    }
    if (is_plain_scalar(n) && no.count(n.Scalar())) {
      out = false;
      return;
    }
    fail(n, path, "expected true or false, got " + describe(n));
  }
  void parse(const YAML::Node& n, const std::string& path, std::string& out) const {
    if (!n.IsScalar()) fail(n, path, "expected a string, got " + describe(n));
    out = n.Scalar();
  }
  void parse(const YAML::Node& n, const std::string& path, std::vector<int64_t>& out) const {
    if (!n.IsSequence()) fail(n, path, "expected a list of integers like [256, 256], got " + describe(n));
    std::vector<int64_t> v(n.size());
    for (size_t i = 0; i < n.size(); ++i) parse(n[i], path + "[" + std::to_string(i) + "]", v[i]);
    out = std::move(v);
  }
  void parse(const YAML::Node& n, const std::string& path, EnvOptions& out) const {
    if (!n.IsMap()) fail(n, path, "expected a map of option names to numbers, got " + describe(n));
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, path + ".?", "option names must be plain names");
      const std::string key = path + "." + kv.first.Scalar();
      double v = 0;
      bool b = false;
      if (is_plain_scalar(kv.second) && parse_double_text(kv.second.Scalar(), v)) {
        out[kv.first.Scalar()] = v;
      } else if (is_plain_scalar(kv.second) && (kv.second.Scalar() == "true" || kv.second.Scalar() == "false")) {
        parse(kv.second, key, b);
        out[kv.first.Scalar()] = b ? 1.0 : 0.0;
      } else {
        fail(kv.second, key, "expected a number (or true/false), got " + describe(kv.second));
      }
      if (src_.origins) (*src_.origins)[key] = src_.label;
    }
  }

  YAML::Node map_;
  std::string prefix_;
  const Source& src_;
  std::vector<std::string> names_;
};

void read_into(RunConfig& cfg, const YAML::Node& root, const Source& src) {
  if (!root || root.IsNull()) return;  // an empty file: all defaults
  if (!root.IsMap()) throw ConfigError(src.label + ": the top level must be a map of keys, got " + describe(root));
  Reader r(root, "", src);
  visit(r, cfg);
  r.check_unknown();
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(double x) {
  if (std::isnan(x)) return ".nan";
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  char buf[40];
  for (int p = 1; p <= 17; ++p) {  // the shortest text that reads back to the same double
    std::snprintf(buf, sizeof buf, "%.*g", p, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}
std::string format_value(const std::string& s) {
  static const std::set<std::string> keywords = {"null",  "Null",  "NULL", "~",   "true", "True", "TRUE", "false",
                                                 "False", "FALSE", "yes",  "Yes", "no",   "No",   "on",   "off"};
  bool plain = !s.empty() && !keywords.count(s) &&
               (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '/' || s[0] == '.');
  for (char ch : s)
    plain =
        plain && (std::isalnum(static_cast<unsigned char>(ch)) || std::string("_./-+").find(ch) != std::string::npos);
  if (plain) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out + "\"";
}
std::string format_value(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}
std::string format_option(double x) {  // integral option values read better as integers
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<int64_t>(x));
  return format_value(x);
}

class Writer {
 public:
  Writer(std::ostringstream& os, int indent) : os_(os), pad_(static_cast<size_t>(indent), ' ') {}
  template <class T>
  void field(const char* name, T& value) {
    os_ << pad_ << name << ": " << format_value(value) << "\n";
  }
  void field(const char* name, EnvOptions& options) {
    if (options.empty()) {
      os_ << pad_ << name << ": {}\n";
      return;
    }
    os_ << pad_ << name << ":\n";
    for (const auto& [k, v] : options) os_ << pad_ << "  " << format_value(k) << ": " << format_option(v) << "\n";
  }
  template <class S>
  void section(const char* name, S& s) {
    os_ << pad_ << name << ":\n";
    Writer sub(os_, static_cast<int>(pad_.size()) + 2);
    visit(sub, s);
  }
  void derived(const char*, const char*) {}

 private:
  std::ostringstream& os_;
  std::string pad_;
};

class KeyLister {
 public:
  explicit KeyLister(std::string prefix, std::vector<std::string>& out) : prefix_(std::move(prefix)), out_(out) {}
  template <class T>
  void field(const char* name, T&) {
    out_.push_back(prefix_ + name);
  }
  template <class S>
  void section(const char* name, S& s) {
    KeyLister sub(prefix_ + name + ".", out_);
    visit(sub, s);
  }
  void derived(const char*, const char*) {}

 private:
  std::string prefix_;
  std::vector<std::string>& out_;
};

class ValueFinder {
 public:
  ValueFinder(std::string prefix, const std::string& key, std::string& out, bool& found)
      : prefix_(std::move(prefix)), key_(key), out_(out), found_(found) {}
  template <class T>
  void field(const char* name, T& value) {
    if (prefix_ + name != key_) return;
    found_ = true;
    if constexpr (std::is_same_v<T, EnvOptions>) {
      std::string s;
      for (const auto& [k, v] : value) s += (s.empty() ? "" : ", ") + format_value(k) + ": " + format_option(v);
      out_ = "{" + s + "}";
    } else {
      out_ = format_value(value);
    }
  }
  template <class S>
  void section(const char* name, S& s) {
    ValueFinder sub(prefix_ + name + ".", key_, out_, found_);
    visit(sub, s);
  }
  void derived(const char*, const char*) {}

 private:
  std::string prefix_;
  const std::string& key_;
  std::string& out_;
  bool& found_;
};

// ---------------------------------------------------------------------------
// Validation: which key does a validate() message talk about?
// ---------------------------------------------------------------------------

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

// Position of `word` in `text` as a whole word (npos if absent).
size_t find_word(const std::string& text, const std::string& word) {
  for (size_t pos = text.find(word); pos != std::string::npos; pos = text.find(word, pos + 1)) {
    const bool left = pos == 0 || !is_word_char(text[pos - 1]);
    const size_t end = pos + word.size();
    const bool right = end == text.size() || !is_word_char(text[end]) ||
                       (text[end] == '.' && (end + 1 == text.size() || !is_word_char(text[end + 1])));
    if (left && right) return pos;
  }
  return std::string::npos;
}

// The key path under `prefix` that `message` names first ("" if none does).
std::string key_in_message(const std::string& message, const std::string& prefix) {
  std::string best;
  size_t best_pos = std::string::npos;
  for (const auto& path : config_key_paths()) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    for (const std::string& word : {path.substr(prefix.size()), path}) {
      const size_t pos = find_word(message, word);
      if (pos != std::string::npos && (pos < best_pos || (pos == best_pos && path.size() > best.size()))) {
        best = path;
        best_pos = pos;
      }
    }
  }
  return best;
}

// {parts[i]: {parts[i+1]: … leaf}} (new nodes only: yaml-cpp assignment to an existing node
// rebinds shared data).
YAML::Node nest(const std::vector<std::string>& parts, size_t i, const YAML::Node& leaf) {
  if (i == parts.size()) return leaf;
  YAML::Node map(YAML::NodeType::Map);
  map[parts[i]] = nest(parts, i + 1, leaf);
  return map;
}

[[noreturn]] void fail_validation(const RunConfig& cfg, const std::string& prefix, const std::string& message) {
  std::string key = key_in_message(message, prefix);
  if (key.empty()) key = prefix.empty() ? "(top level)" : prefix.substr(0, prefix.size() - 1);
  std::string where = cfg.source.empty() ? std::string("config") : cfg.source;
  // A key set by an override (or an env option under env_options) is reported there.
  for (const auto& [path, origin] : cfg.origins)
    if (path == key || path.compare(0, key.size() + 1, key + ".") == 0) where = origin;
  throw ConfigError(where + ": key '" + key + "': " + message);
}

void validate_part(const RunConfig& cfg, const std::string& prefix, const std::function<void()>& validate) {
  try {
    validate();
  } catch (const std::exception& e) {
    fail_validation(cfg, prefix, e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------

SacTrainerConfig sac_trainer_config(const RunConfig& cfg) {
  SacTrainerConfig s;
  const auto& t = cfg.trainer;
  s.env = t.env;
  s.env_options = t.env_options;
  s.n_envs = t.n_envs;
  s.env_threads = t.env_threads;
  s.seed = t.seed;
  s.n_iterations = t.n_train_itr;
  s.val_freq = t.val_freq;
  s.steps_per_iteration = cfg.sac.steps_per_iteration;
  s.eval_episodes = cfg.sac.eval_episodes;
  s.sac = cfg.sac.learner;
  return s;
}

std::vector<std::string> config_key_paths() {
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    RunConfig cfg;
    KeyLister lister("", out);
    visit(lister, cfg);
    return out;
  }();
  return paths;
}

std::string config_value_text(const RunConfig& cfg, const std::string& key_path) {
  RunConfig copy = cfg;
  std::string out;
  bool found = false;
  ValueFinder finder("", key_path, out, found);
  visit(finder, copy);
  if (!found) throw ConfigError("no config key '" + key_path + "'");
  return out;
}

RunConfig parse_run_config(const std::string& yaml_text, const std::string& source) {
  RunConfig cfg;
  cfg.source = source;
  Source src{source, true, &cfg.origins};
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  read_into(cfg, root, src);
  return cfg;
}

void apply_override(RunConfig& cfg, const std::string& assignment) {
  const std::string label = "override '" + assignment + "'";
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(label + ": expected key.path=value, e.g. actor.svgd.svgd_temp=0.01");
  const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw ConfigError(label + ": key '" + key + "' has an empty part");
    parts.push_back(part);
  }
  if (key.back() == '.') throw ConfigError(label + ": key '" + key + "' has an empty part");
  YAML::Node leaf;
  try {
    leaf = value.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(value);  // "" → "has no value"
  } catch (const YAML::Exception& e) {
    throw ConfigError(label + ": key '" + key + "': the value is not valid YAML: " + e.msg);
  }
  const YAML::Node node = nest(parts, 0, leaf);
  Source src{label, false, &cfg.origins};
  read_into(cfg, node, src);
}

void validate_run_config(const RunConfig& cfg, bool check_env, ConfigUse use) {
  const auto& t = cfg.trainer;
  if (use == ConfigUse::sac) {
    validate_part(cfg, "sac.", [&] { sac_trainer_config(cfg).validate(); });
  } else {
    validate_part(cfg, "policy.", [&] { t.policy.validate(); });
    validate_part(cfg, "critic.", [&] { t.critic.validate(); });
    validate_part(cfg, "actor.svgd.", [&] { t.actor.svgd.validate(); });
    validate_part(cfg, "actor.", [&] { t.actor.validate(); });
    validate_part(cfg, "", [&] { t.validate(); });
    if (cfg.checkpoint_freq < 1)
      fail_validation(cfg, "", "checkpoint_freq must be >= 1, got " + std::to_string(cfg.checkpoint_freq));
    validate_part(cfg, "pretrain.", [&] { cfg.pretrain.validate(); });
    validate_part(cfg, "sac.", [&] { sac_trainer_config(cfg).validate(); });
  }
  if (!check_env) return;
  const auto names = env_names();
  bool known = false;
  std::string list;
  for (const auto& n : names) {
    known = known || n == t.env;
    list += (list.empty() ? "" : ", ") + n;
  }
  if (!known) fail_validation(cfg, "", "env '" + t.env + "' is not a known task; valid: " + list);
  validate_part(cfg, "env_options.", [&] { make_env(t.env, t.env_options); });
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides, ConfigUse use) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the config file (" + std::strerror(errno) + ")");
  std::stringstream text;
  text << in.rdbuf();
  RunConfig cfg = parse_run_config(text.str(), path);
  for (const auto& o : overrides) apply_override(cfg, o);
  validate_run_config(cfg, true, use);
  return cfg;
}

std::string to_yaml(const RunConfig& cfg, const std::string& header) {
  std::ostringstream os;
  std::stringstream lines(header);
  for (std::string line; std::getline(lines, line);) os << "# " << line << "\n";
  RunConfig copy = cfg;
  Writer w(os, 0);
  visit(w, copy);
  return os.str();
}

std::string to_yaml(const RldtTrainerConfig& cfg, const std::string& header) {
  RunConfig run;
  run.trainer = cfg;
  return to_yaml(run, header);
}

}  // namespace rldt
