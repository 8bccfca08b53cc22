// Normalisation of observations and actions, with statistics that can be saved and loaded.
// (Action chunking lives in VecEnv::step_chunk, where the pool's threads can run each env's chunk.)
// All batches are row-major [n, dim]; normalisation happens in place.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "rldt/envs/env.hpp"

namespace rldt {

// Affine min-max map of each coordinate from [low, high] to [-1, 1]:
// y = 2 (x - low) / (high - low) - 1. Coordinates with high == low map to 0 and back to low.
// Use it for actions (bounds = the env's action box) or for observations (bounds fitted to data).
class MinMaxNormalizer {
 public:
  MinMaxNormalizer() = default;
  // low, high: [dim], finite, low <= high; throws EnvError naming the coordinate otherwise.
  MinMaxNormalizer(std::vector<double> low, std::vector<double> high);
  // From a box (e.g. EnvSpec::action); the bounds must be finite.
  static MinMaxNormalizer from_box(const BoxSpec& box);
  // Bounds = per-coordinate min and max of data [n, dim], n >= 1.
  static MinMaxNormalizer fit(Span<const double> data, size_t dim);
  static MinMaxNormalizer fit(const std::vector<float>& data, size_t dim);  // e.g. a float32 dataset

  size_t dim() const { return low_.size(); }
  const std::vector<double>& low() const { return low_; }
  const std::vector<double>& high() const { return high_; }

  // x [n, dim] -> [-1, 1] coordinates (values outside the bounds map outside [-1, 1]).
  void normalize(Span<double> x) const;
  // y [n, dim] in [-1, 1] coordinates -> original units; with clip, y is clipped to [-1, 1] first
  // (so a policy's output always lands inside the action box).
  void denormalize(Span<double> y, bool clip = true) const;

  // Text file, 17 significant digits (exact round trip). Errors name the file.
  void save(const std::string& path) const;
  static MinMaxNormalizer load(const std::string& path);

 private:
  void check(size_t size, const char* what) const;
  std::vector<double> low_, high_;
};

// Running mean and variance (parallel/batched update of Chan et al., as in Gymnasium's
// NormalizeObservation), normalising to (x - mean) / sqrt(var + epsilon), clipped to +-clip.
class RunningMeanStd {
 public:
  RunningMeanStd() = default;
  // dim >= 1; initial mean 0, var 1, count initial_count (Gymnasium uses 1e-4).
  explicit RunningMeanStd(size_t dim, double epsilon = 1e-8, double clip = 10.0,
                          double initial_count = 1e-4);

  size_t dim() const { return mean_.size(); }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& var() const { return var_; }
  double count() const { return count_; }

  // Folds batch [n, dim] (n >= 1, finite) into the statistics.
  void update(Span<const double> batch);
  // x [n, dim] -> normalised, clipped to [-clip, clip] (clip <= 0 disables clipping).
  void normalize(Span<double> x) const;
  // Inverse of normalize (without the clipping).
  void denormalize(Span<double> x) const;

  void save(const std::string& path) const;
  static RunningMeanStd load(const std::string& path);

 private:
  void check(size_t size, const char* what) const;
  std::vector<double> mean_, var_;
  double count_ = 0.0, epsilon_ = 1e-8, clip_ = 10.0;
};

}  // namespace rldt
