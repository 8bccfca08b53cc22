// Whole-episode evaluation, shared by the trainers (RldtTrainer::evaluate, SacTrainer::evaluate):
// separate env copies reset with seed + kEvalSeedOffset (+ i for copy i), each run until its first
// episode ends, deterministic actions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace rldt {

// Env copy i of an evaluation is reset with seed + kEvalSeedOffset + i: the same start states at
// every evaluation, apart from the training envs' seeds.
constexpr uint64_t kEvalSeedOffset = 1000003;

struct EpisodeEvalResult {
  double mean_return = 0, std_return = 0, mean_length = 0;  // std: population (over episodes)
  std::vector<double> returns;                              // [episodes]
  // Filled by evaluations that have a critic (RldtTrainer::evaluate), else NaN. Means over episodes,
  // in raw reward units: the critic's Q of the first state and chunk (mean over members, divided by
  // the reward scale), and the discounted return from that chunk on, sum_t gamma^t R_t with R_t the
  // chunk's summed reward. An episode cut by the time limit lacks the tail that Q includes
  // (about gamma^T of it after T chunks), so there Q - return is ~gamma^T·V(s_T) even for an exact Q.
  double mean_q0 = std::numeric_limits<double>::quiet_NaN();
  double mean_discounted_return = std::numeric_limits<double>::quiet_NaN();
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
