// Whole-episode evaluation, shared by the trainers (RldtTrainer::evaluate, SacTrainer::evaluate):
// separate env copies reset with seed + kEvalSeedOffset (+ i for copy i), each run until its first
// episode ends, deterministic actions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace rldt {

// Env copy i of an evaluation is reset with seed + kEvalSeedOffset + i: the same start states at
// every evaluation, apart from the training envs' seeds.
constexpr uint64_t kEvalSeedOffset = 1000003;

struct EpisodeEvalResult {
  double mean_return = 0, std_return = 0, mean_length = 0;  // std: population (over episodes)
  std::vector<double> returns;                              // [episodes]
};

// The result of finished episodes: returns and lengths [episodes] (same size, >= 1).
inline EpisodeEvalResult summarize_episodes(std::vector<double> returns, const std::vector<double>& lengths) {
  EpisodeEvalResult r;
  const auto n = static_cast<double>(returns.size());
  double sum = 0, sq = 0, len = 0;
  for (size_t i = 0; i < returns.size(); ++i) {
    sum += returns[i];
    sq += returns[i] * returns[i];
    len += lengths[i];
  }
  r.mean_return = sum / n;
  r.std_return = std::sqrt(std::max(0.0, sq / n - r.mean_return * r.mean_return));
  r.mean_length = len / n;
  r.returns = std::move(returns);
  return r;
}

}  // namespace rldt
