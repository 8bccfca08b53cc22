#include "rldt/data/replay_buffer.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "rldt/util/check.hpp"

namespace rldt {

ReplayBuffer::ReplayBuffer(int64_t capacity, int64_t obs_dim, int64_t action_dim)
    : capacity_(capacity), obs_dim_(obs_dim), action_dim_(action_dim) {
  check_arg(capacity >= 1, "replay buffer capacity must be >= 1, got ", capacity);
  check_arg(obs_dim >= 1, "replay buffer obs_dim must be >= 1, got ", obs_dim);
  check_arg(action_dim >= 1, "replay buffer action_dim must be >= 1, got ", action_dim);
  obs_ = torch::zeros({capacity, obs_dim});
  actions_ = torch::zeros({capacity, action_dim});
  rewards_ = torch::zeros({capacity});
  next_obs_ = torch::zeros({capacity, obs_dim});
  terminated_ = torch::zeros({capacity});
}

namespace {
torch::Tensor checked_field(const torch::Tensor& t, const char* name, int64_t n, int64_t width) {
  check_arg(t.defined(), "replay buffer add: field '", name, "' is missing");
  const bool ok = width < 0 ? (t.dim() == 1 && t.size(0) == n) : (t.dim() == 2 && t.size(0) == n && t.size(1) == width);
  check_arg(ok, "replay buffer add: field '", name, "' has shape ", t.sizes(), "; expected ",
            width < 0 ? shape_to_string({n}) : shape_to_string({n, width}));
  return t.to(torch::kFloat);
}
}  // namespace

void ReplayBuffer::add(const ReplayBatch& batch) {
  check_arg(batch.obs.defined() && batch.obs.dim() == 2, "replay buffer add: field 'obs' must have shape (n, ",
            obs_dim_, ")");
  const int64_t n = batch.obs.size(0);
  auto obs = checked_field(batch.obs, "obs", n, obs_dim_);
  auto act = checked_field(batch.actions, "actions", n, action_dim_);
  auto rew = checked_field(batch.rewards, "rewards", n, -1);
  auto next = checked_field(batch.next_obs, "next_obs", n, obs_dim_);
  auto term = checked_field(batch.terminated, "terminated", n, -1);
  // Only the last `capacity` rows can survive.
  int64_t start = std::max<int64_t>(0, n - capacity_);
  added_ += start;
  pos_ = (pos_ + start) % capacity_;
  torch::NoGradGuard ng;
  while (start < n) {
    const int64_t len = std::min(n - start, capacity_ - pos_);  // up to the end of the ring
    obs_.narrow(0, pos_, len).copy_(obs.narrow(0, start, len));
    actions_.narrow(0, pos_, len).copy_(act.narrow(0, start, len));
    rewards_.narrow(0, pos_, len).copy_(rew.narrow(0, start, len));
    next_obs_.narrow(0, pos_, len).copy_(next.narrow(0, start, len));
    terminated_.narrow(0, pos_, len).copy_(term.narrow(0, start, len));
    pos_ = (pos_ + len) % capacity_;
    size_ = std::min(capacity_, size_ + len);
    added_ += len;
    start += len;
  }
}

ReplayBatch ReplayBuffer::rows(const torch::Tensor& idx) const {
  return ReplayBatch{obs_.index_select(0, idx), actions_.index_select(0, idx), rewards_.index_select(0, idx),
                     next_obs_.index_select(0, idx), terminated_.index_select(0, idx)};
}

ReplayBatch ReplayBuffer::sample(int64_t batch_size, at::Generator& gen) const {
  check_arg(batch_size >= 1, "replay buffer sample: batch_size must be >= 1, got ", batch_size);
  check_arg(size_ >= 1, "replay buffer sample: the buffer is empty");
  return rows(torch::randint(0, size_, {batch_size}, gen, torch::kLong));
}

void ReplayBuffer::clear() { size_ = pos_ = added_ = 0; }

}  // namespace rldt
