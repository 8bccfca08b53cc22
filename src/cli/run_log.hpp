// What a run writes while it trains: one row per iteration in metrics.csv and metrics.jsonl,
// and a one-line progress report on the terminal.
#pragma once

#include <fstream>
#include <limits>
#include <string>

#include "rldt/train/pretrain.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/train/sac_trainer.hpp"

namespace rldt::cli {

// Columns of metrics.csv (and keys of metrics.jsonl), in order. Non-finite values are written
// as empty CSV cells and JSON nulls (e.g. the return of an iteration where no episode ended).
class MetricsLog {
 public:
  // Creates (truncates) dir/metrics.csv and dir/metrics.jsonl. With keep_below >= 0 (a resumed
  // run), the existing files are kept instead, minus the rows of iterations >= keep_below, and
  // new rows are appended; a metrics.csv of other columns (an older rldt) is rewritten with these,
  // by name. Throws std::runtime_error naming the file if one cannot be opened.
  explicit MetricsLog(const std::string& dir, int64_t keep_below = -1);
  // Appends one row and flushes both files. `wall_seconds`: time since the run started.
  void write(const IterationMetrics& m, double iteration_seconds, double wall_seconds);

 private:
  std::ofstream csv_, jsonl_;
  std::string csv_path_, jsonl_path_;
};

// `rldt pretrain`: one row per log point (update, epoch, train_loss, val_loss, val_action_mse,
// seconds_wall) in dir/metrics.csv and dir/metrics.jsonl, non-finite values as empty cells / nulls.
class PretrainMetricsLog {
 public:
  explicit PretrainMetricsLog(const std::string& dir);
  void write(const PretrainLog& log);

 private:
  std::ofstream csv_, jsonl_;
  std::string csv_path_, jsonl_path_;
};

// `rldt sac`: one row per iteration (every SacIterationMetrics field, plus seconds_iteration and
// seconds_wall) in dir/metrics.csv and dir/metrics.jsonl. eval_return is the deterministic
// evaluation (bench/grid.py reads it on rows with eval = 1).
class SacMetricsLog {
 public:
  explicit SacMetricsLog(const std::string& dir);
  void write(const SacIterationMetrics& m, double iteration_seconds, double wall_seconds);

 private:
  std::ofstream csv_, jsonl_;
  std::string csv_path_, jsonl_path_;
};

// "[12/200] itr 11 eval | env steps 12,000 | 74 steps/s | return 812.3 | eval 1,034.2 (itr 9) | alpha 0.08 | ..."
std::string sac_progress_line(const SacIterationMetrics& m, int64_t total, double iteration_seconds,
                              double wall_seconds);

// "[2,000/20,000] epoch 1.3 | loss 0.412 | val 0.398 | val action mse 0.051 | 812 updates/s | ETA 22s"
std::string pretrain_progress_line(const PretrainLog& log, int64_t n_updates);

// "[4/41] itr 3 | env steps 2,400 | 1,850 steps/s | eval return 95.3 (itr 0) | critic 0.0123 | ..."
class Progress {
 public:
  explicit Progress(int64_t total_iterations) : total_(total_iterations) {}
  std::string line(const IterationMetrics& m, double iteration_seconds, double wall_seconds);

 private:
  int64_t total_;
  int64_t last_env_steps_ = 0;
  double last_eval_return_ = std::numeric_limits<double>::quiet_NaN();
  int64_t last_eval_itr_ = -1;
};

// The first non-finite loss of a training iteration ("critic_loss", …), or "" if all are finite.
// Losses that the iteration does not compute (the actor's during critic warm-up) are skipped.
std::string first_non_finite(const IterationMetrics& m, const RldtTrainerConfig& cfg);

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace rldt::cli
