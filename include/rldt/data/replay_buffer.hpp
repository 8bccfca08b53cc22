// Transition replay buffer for off-policy baselines (SAC): a ring of preallocated float32
// tensors, overwritten oldest first, sampled uniformly with an explicit generator.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace rldt {

// B transitions. O = obs_dim, d = action_dim.
struct ReplayBatch {
  torch::Tensor obs;         // (B, O) float32
  torch::Tensor actions;     // (B, d) float32, policy action space [−1, 1]
  torch::Tensor rewards;     // (B,) float32
  torch::Tensor next_obs;    // (B, O) float32: the true next state (an ended episode's final observation)
  torch::Tensor terminated;  // (B,) float32 0/1: the task ended the episode (no bootstrap). Time-limit
                             //   truncations are stored as 0: their value is bootstrapped.
  int64_t size() const { return obs.defined() ? obs.size(0) : 0; }
};

class ReplayBuffer {
 public:
  // Allocates capacity × (2·O + d + 2) floats up front. Throws ArgumentError naming the argument
  // for a non-positive size.
  ReplayBuffer(int64_t capacity, int64_t obs_dim, int64_t action_dim);

  // Appends n transitions (the fields of `batch`, shapes as in ReplayBatch with B = n; float or
  // double, 0/1 masks as float or bool). Once full, the oldest are overwritten. n may exceed the
  // capacity (only the last `capacity` are kept).
  void add(const ReplayBatch& batch);

  // B transitions drawn uniformly with replacement from the stored ones, using `gen` only.
  // Throws ArgumentError when the buffer is empty or batch_size < 1.
  ReplayBatch sample(int64_t batch_size, at::Generator& gen) const;

  // Rows `idx` (int64 in [0, size())) of the storage; row 0 is the oldest stored transition
  // only until the first wrap-around (rows are storage slots, not ages).
  ReplayBatch rows(const torch::Tensor& idx) const;

  int64_t size() const { return size_; }  // stored transitions (≤ capacity)
  int64_t capacity() const { return capacity_; }
  int64_t position() const { return pos_; }       // slot the next transition goes to
  int64_t total_added() const { return added_; }  // transitions added since construction / clear
  int64_t obs_dim() const { return obs_dim_; }
  int64_t action_dim() const { return action_dim_; }
  void clear();

 private:
  int64_t capacity_, obs_dim_, action_dim_;
  int64_t size_ = 0, pos_ = 0, added_ = 0;
  torch::Tensor obs_, actions_, rewards_, next_obs_, terminated_;  // (capacity, …) float32
};

}  // namespace rldt
