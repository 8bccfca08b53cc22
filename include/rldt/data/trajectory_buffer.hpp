// Trajectory segments collected by the vectorised rollout and the FIFO buffer
// the critics train from (ALGORITHM.md §6). One trajectory = one env's T chunk
// steps within one iteration.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace rldt {

// n trajectories of T chunk steps. O = obs_dim, E = act_steps, d = action_dim.
struct TrajectoryBatch {
  torch::Tensor obs;         // (n, T, O) state at each chunk step
  torch::Tensor chunks;      // (n, T, E, d) executed part of each chunk (policy action space)
  torch::Tensor rewards;     // (n, T) raw reward summed over the executed steps
  torch::Tensor terminated;  // (n, T) float 0/1
  torch::Tensor truncated;   // (n, T) float 0/1
  torch::Tensor next_obs;    // (n, T, O) true next state: the episode's final observation where it
                             //   ended (with autoreset the next stored state starts a new episode)
  int64_t size() const { return obs.defined() ? obs.size(0) : 0; }
  int64_t steps() const { return obs.defined() ? obs.size(1) : 0; }
  // Rows `idx` (int64) of every field.
  TrajectoryBatch index(const torch::Tensor& idx) const;
  // Concatenation along trajectories (same T).
  static TrajectoryBatch cat(const std::vector<TrajectoryBatch>& parts);
  // Throws ArgumentError naming the field if the shapes disagree.
  void validate() const;
};

class TrajectoryBuffer {
 public:
  // Keeps at most `capacity` trajectories, oldest dropped first.
  explicit TrajectoryBuffer(int64_t capacity);
  void push(const TrajectoryBatch& batch);
  int64_t size() const { return storage_.size(); }
  int64_t capacity() const { return capacity_; }
  // All stored trajectories (n, T, …), oldest first.
  TrajectoryBatch all() const;

  // n trajectories: a fraction max(n_fresh / (n_fresh + n_old), new_fraction) drawn without
  // replacement from `fresh`, the rest uniformly from the buffer (without replacement while it
  // has enough; `fresh` fills in while the buffer is empty).
  TrajectoryBatch sample_mixed(const TrajectoryBatch& fresh, int64_t n, double new_fraction,
                               at::Generator& gen) const;

  // Checkpoint state: the stored trajectories (all six fields) and the capacity, as entries of `archive` (a section of
  // a checkpoint file). load_state restores it into an object built with the same config; errors name `path` (the file)
  // and the missing or mismatching entry.
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  int64_t capacity_;
  TrajectoryBatch storage_;  // contiguous, oldest first; rebuilt once per push
};

}  // namespace rldt
