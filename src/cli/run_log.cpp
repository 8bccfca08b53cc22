#include "run_log.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

namespace rldt::cli {

namespace {

// One column: its name and its value in a row (numbers as double; integers stay exact).
struct Column {
  const char* name;
  double value;
  bool integer;
};

std::vector<Column> columns(const IterationMetrics& m, double iteration_seconds, double wall_seconds) {
  return {
      {"iteration", static_cast<double>(m.iteration), true},
      {"eval", m.eval ? 1.0 : 0.0, true},
      {"env_steps", static_cast<double>(m.env_steps), true},
      {"episode_return", m.episode_return, false},
      {"episode_length", m.episode_length, false},
      {"episodes", static_cast<double>(m.episodes), true},
      {"reward_per_step", m.reward_per_step, false},
      {"critic_loss", m.critic_loss, false},
      {"actor_loss", m.actor_loss, false},
      {"align", m.align, false},
      {"cons", m.cons, false},
      {"ref", m.ref, false},
      {"grad_norm", m.grad_norm, false},
      {"particle_distance", m.particle_distance, false},
      {"reward_scale", m.reward_scale, false},
      {"eval_return", m.eval_return, false},
      {"eval_return_std", m.eval_return_std, false},
      {"eval_length", m.eval_length, false},
      {"eval_q", m.eval_q, false},
      {"eval_discounted_return", m.eval_discounted_return, false},
      {"seconds_rollout", m.seconds_rollout, false},
      {"seconds_critic", m.seconds_critic, false},
      {"seconds_actor", m.seconds_actor, false},
      {"seconds_eval", m.seconds_eval, false},
      {"seconds_iteration", iteration_seconds, false},
      {"seconds_wall", wall_seconds, false},
  };
}

std::string csv_cell(const Column& c) {
  if (!std::isfinite(c.value)) return "";
  char buf[40];
  if (c.integer)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(c.value));
  else
    std::snprintf(buf, sizeof buf, "%.9g", c.value);
  return buf;
}

// 1234567 → "1,234,567"
std::string thousands(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string num(double x, const char* fmt = "%.4g") {
  if (!std::isfinite(x)) return std::isnan(x) ? "-" : (x > 0 ? "inf" : "-inf");
  char buf[40];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

// Creates (truncates) both files and writes the CSV header.
void open_fresh(std::ofstream& csv, std::ofstream& jsonl, const std::string& csv_path, const std::string& jsonl_path,
                const std::vector<Column>& header) {
  csv.open(csv_path, std::ios::trunc);
  if (!csv) throw std::runtime_error("cannot write " + csv_path);
  jsonl.open(jsonl_path, std::ios::trunc);
  if (!jsonl) throw std::runtime_error("cannot write " + jsonl_path);
  for (size_t i = 0; i < header.size(); ++i) csv << (i ? "," : "") << header[i].name;
  csv << "\n" << std::flush;
}

// Appends `row` to both files (non-finite values: empty cells, JSON nulls); `flags` are written
// to the JSON line as booleans instead of 0/1.
void write_row(std::ofstream& csv, std::ofstream& jsonl, const std::string& csv_path, const std::string& jsonl_path,
               const std::vector<Column>& row, const std::vector<std::pair<const char*, bool>>& flags = {}) {
  nlohmann::ordered_json j;
  for (size_t i = 0; i < row.size(); ++i) {
    const auto& c = row[i];
    csv << (i ? "," : "") << csv_cell(c);
    if (!std::isfinite(c.value))
      j[c.name] = nullptr;
    else if (c.integer)
      j[c.name] = static_cast<int64_t>(c.value);
    else
      j[c.name] = c.value;
  }
  for (const auto& [name, value] : flags) j[name] = value;
  csv << "\n" << std::flush;
  jsonl << j.dump() << "\n" << std::flush;
  if (!csv || !jsonl) throw std::runtime_error("writing " + csv_path + " or " + jsonl_path + " failed");
}

}  // namespace

namespace {
std::vector<std::string> split_csv(const std::string& line) {  // cells are numbers or names: no quoting
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
    out.push_back(line.substr(start, comma - start));
  out.push_back(line.substr(start));
  return out;
}

// A CSV row of `from` columns re-ordered into the `to` columns by name (missing cells empty).
std::string remap_row(const std::string& line, const std::vector<std::string>& from,
                      const std::vector<std::string>& to) {
  const auto cells = split_csv(line);
  std::string out;
  for (size_t i = 0; i < to.size(); ++i) {
    if (i) out += ',';
    const auto it = std::find(from.begin(), from.end(), to[i]);
    const auto k = static_cast<size_t>(it - from.begin());
    if (it != from.end() && k < cells.size()) out += cells[k];
  }
  return out;
}

// Rewrites `path` (atomically) without the rows whose iteration is >= keep_below; `iteration_of`
// reads a row's iteration (-1: keep the line, e.g. the CSV header). With `header` (a CSV), a file
// written with other columns (an older rldt) is rewritten with `header`'s columns, by name.
void drop_rows_from(const std::string& path, int64_t keep_below, int64_t (*iteration_of)(const std::string&),
                    const std::vector<std::string>* header = nullptr) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path + " (resuming a run needs its metrics files)");
  std::string kept;
  std::vector<std::string> from;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const int64_t itr = iteration_of(line);
    if (header && itr < 0) {  // the header line
      from = split_csv(line);
      for (size_t i = 0; i < header->size(); ++i) kept += (i ? "," : "") + (*header)[i];
      kept += "\n";
    } else if (itr < keep_below) {
      kept += (header && !from.empty() ? remap_row(line, from, *header) : line) + "\n";
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kept;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot replace " + path);
}

int64_t csv_iteration(const std::string& line) {
  if (line.rfind("iteration,", 0) == 0) return -1;  // the header
  return std::stoll(line.substr(0, line.find(',')));
}

int64_t jsonl_iteration(const std::string& line) { return nlohmann::json::parse(line).at("iteration").get<int64_t>(); }
}  // namespace

MetricsLog::MetricsLog(const std::string& dir, int64_t keep_below)
    : csv_path_(dir + "/metrics.csv"), jsonl_path_(dir + "/metrics.jsonl") {
  if (keep_below >= 0) {
    try {
      std::vector<std::string> header;
      for (const auto& c : columns(IterationMetrics{}, 0, 0)) header.push_back(c.name);
      drop_rows_from(csv_path_, keep_below, csv_iteration, &header);
      drop_rows_from(jsonl_path_, keep_below, jsonl_iteration);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("cannot read " + jsonl_path_ + " (a malformed row): " + e.what());
    } catch (const std::logic_error& e) {  // std::stoll
      throw std::runtime_error("cannot read " + csv_path_ + " (a malformed row): " + e.what());
    }
    csv_.open(csv_path_, std::ios::app);
    if (!csv_) throw std::runtime_error("cannot write " + csv_path_);
    jsonl_.open(jsonl_path_, std::ios::app);
    if (!jsonl_) throw std::runtime_error("cannot write " + jsonl_path_);
    return;
  }
  open_fresh(csv_, jsonl_, csv_path_, jsonl_path_, columns(IterationMetrics{}, 0, 0));
}

void MetricsLog::write(const IterationMetrics& m, double iteration_seconds, double wall_seconds) {
  write_row(csv_, jsonl_, csv_path_, jsonl_path_, columns(m, iteration_seconds, wall_seconds), {{"eval", m.eval}});
}

std::string Progress::line(const IterationMetrics& m, double iteration_seconds, double wall_seconds) {
  const int64_t steps = m.env_steps - last_env_steps_;
  last_env_steps_ = m.env_steps;
  if (m.eval) {
    last_eval_return_ = std::isfinite(m.eval_return) ? m.eval_return : m.episode_return;
    last_eval_itr_ = m.iteration;
  }
  const int64_t done = m.iteration + 1;
  std::string s = "[" + std::to_string(done) + "/" + std::to_string(total_) + "] itr " + std::to_string(m.iteration) +
                  (m.eval ? " eval " : "      ");
  s += "| env steps " + thousands(m.env_steps);
  s += " | " + thousands(static_cast<int64_t>(iteration_seconds > 0 ? steps / iteration_seconds : 0)) + " steps/s";
  s += " | return " + num(m.episode_return, "%.1f");
  s += " | eval " + (last_eval_itr_ >= 0
                         ? num(last_eval_return_, "%.1f") + " (itr " + std::to_string(last_eval_itr_) + ")"
                         : std::string("-"));
  if (!m.eval) s += " | critic " + num(m.critic_loss) + " | actor " + num(m.actor_loss);
  const double per_itr = wall_seconds / static_cast<double>(done);
  s += " | " + num(iteration_seconds, "%.1f") + " s/itr | ETA " +
       format_duration(per_itr * static_cast<double>(total_ - done));
  return s;
}

namespace {
std::vector<Column> pretrain_columns(const PretrainLog& l) {
  return {{"update", static_cast<double>(l.update), true},
          {"epoch", l.epoch, false},
          {"train_loss", l.train_loss, false},
          {"val_loss", l.val_loss, false},
          {"val_action_mse", l.val_action_mse, false},
          {"seconds_wall", l.seconds, false}};
}
}  // namespace

PretrainMetricsLog::PretrainMetricsLog(const std::string& dir)
    : csv_path_(dir + "/metrics.csv"), jsonl_path_(dir + "/metrics.jsonl") {
  open_fresh(csv_, jsonl_, csv_path_, jsonl_path_, pretrain_columns(PretrainLog{}));
}

void PretrainMetricsLog::write(const PretrainLog& l) {
  write_row(csv_, jsonl_, csv_path_, jsonl_path_, pretrain_columns(l));
}

namespace {
std::vector<Column> sac_columns(const SacIterationMetrics& m, double iteration_seconds, double wall_seconds) {
  return {
      {"iteration", static_cast<double>(m.iteration), true},
      {"eval", m.eval ? 1.0 : 0.0, true},
      {"env_steps", static_cast<double>(m.env_steps), true},
      {"updates", static_cast<double>(m.updates), true},
      {"episode_return", m.episode_return, false},
      {"episode_length", m.episode_length, false},
      {"episodes", static_cast<double>(m.episodes), true},
      {"reward_per_step", m.reward_per_step, false},
      {"eval_return", m.eval_return, false},
      {"eval_return_std", m.eval_return_std, false},
      {"eval_length", m.eval_length, false},
      {"critic_loss", m.critic_loss, false},
      {"actor_loss", m.actor_loss, false},
      {"alpha_loss", m.alpha_loss, false},
      {"entropy", m.entropy, false},
      {"q_mean", m.q_mean, false},
      {"alpha", m.alpha, false},
      {"seconds_rollout", m.seconds_rollout, false},
      {"seconds_update", m.seconds_update, false},
      {"seconds_eval", m.seconds_eval, false},
      {"seconds_iteration", iteration_seconds, false},
      {"seconds_wall", wall_seconds, false},
  };
}
}  // namespace

SacMetricsLog::SacMetricsLog(const std::string& dir)
    : csv_path_(dir + "/metrics.csv"), jsonl_path_(dir + "/metrics.jsonl") {
  open_fresh(csv_, jsonl_, csv_path_, jsonl_path_, sac_columns(SacIterationMetrics{}, 0, 0));
}

void SacMetricsLog::write(const SacIterationMetrics& m, double iteration_seconds, double wall_seconds) {
  write_row(csv_, jsonl_, csv_path_, jsonl_path_, sac_columns(m, iteration_seconds, wall_seconds), {{"eval", m.eval}});
}

std::string sac_progress_line(const SacIterationMetrics& m, int64_t total, double iteration_seconds,
                              double wall_seconds) {
  const int64_t done = m.iteration + 1;
  std::string s = "[" + std::to_string(done) + "/" + std::to_string(total) + "] itr " + std::to_string(m.iteration) +
                  (m.eval ? " eval " : "      ");
  s += "| env steps " + thousands(m.env_steps) + " | updates " + thousands(m.updates);
  s += " | return " + num(m.episode_return, "%.1f");
  if (m.eval) s += " | eval " + num(m.eval_return, "%.1f") + " +- " + num(m.eval_return_std, "%.1f");
  s += " | critic " + num(m.critic_loss) + " | alpha " + num(m.alpha, "%.3g");
  const double per_itr = wall_seconds / static_cast<double>(done);
  s += " | " + num(iteration_seconds, "%.1f") + " s/itr | ETA " +
       format_duration(per_itr * static_cast<double>(total - done));
  return s;
}

std::string pretrain_progress_line(const PretrainLog& l, int64_t n_updates) {
  std::string s = "[" + thousands(l.update) + "/" + thousands(n_updates) + "] epoch " + num(l.epoch, "%.2f");
  s += " | loss " + num(l.train_loss) + " | val " + num(l.val_loss) + " | val action mse " + num(l.val_action_mse);
  const double rate = l.seconds > 0 ? static_cast<double>(l.update) / l.seconds : 0.0;
  s += " | " + thousands(static_cast<int64_t>(rate)) + " updates/s | ETA " +
       format_duration(rate > 0 ? static_cast<double>(n_updates - l.update) / rate : 0.0);
  return s;
}

std::string first_non_finite(const IterationMetrics& m, const RldtTrainerConfig& cfg) {
  if (m.eval) return "";
  std::vector<std::pair<const char*, double>> checks = {{"reward_scale", m.reward_scale}};
  if (cfg.critic_trains(m.iteration)) checks.insert(checks.begin(), {"critic_loss", m.critic_loss});
  const bool actor_ran = m.iteration > cfg.n_critic_warmup_itr && cfg.policy_update_steps / cfg.q_repeat > 0;
  if (actor_ran) {
    checks.insert(checks.end(), {{"actor_loss", m.actor_loss},
                                 {"align", m.align},
                                 {"cons", m.cons},
                                 {"ref", m.ref},
                                 {"grad_norm (critic action gradient)", m.grad_norm}});
  }
  for (const auto& [name, value] : checks)
    if (!std::isfinite(value)) return name;
  return "";
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[40];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  return buf;
}

}  // namespace rldt::cli
