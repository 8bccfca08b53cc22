#include "rldt/data/trajectory_buffer.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "rldt/util/check.hpp"
#include "rldt/util/serialize.hpp"

namespace rldt {

TrajectoryBatch TrajectoryBatch::index(const torch::Tensor& idx) const {
  return {obs.index_select(0, idx),        chunks.index_select(0, idx),   rewards.index_select(0, idx),
          terminated.index_select(0, idx), truncated.index_select(0, idx), next_obs.index_select(0, idx)};
}

TrajectoryBatch TrajectoryBatch::cat(const std::vector<TrajectoryBatch>& parts) {
  check_arg(!parts.empty(), "TrajectoryBatch::cat needs at least one batch");
  if (parts.size() == 1) return parts.front();
  std::vector<torch::Tensor> o, c, r, te, tr, no;
  for (const auto& p : parts) {
    o.push_back(p.obs), c.push_back(p.chunks), r.push_back(p.rewards);
    te.push_back(p.terminated), tr.push_back(p.truncated), no.push_back(p.next_obs);
  }
  return {torch::cat(o), torch::cat(c), torch::cat(r), torch::cat(te), torch::cat(tr), torch::cat(no)};
}

void TrajectoryBatch::validate() const {
  check_tensor(obs, "obs", {-1, -1, -1});
  const int64_t n = obs.size(0), T = obs.size(1), O = obs.size(2);
  check_tensor(chunks, "chunks", {n, T, -1, -1});
  check_tensor(rewards, "rewards", {n, T});
  check_tensor(terminated, "terminated", {n, T});
  check_tensor(truncated, "truncated", {n, T});
  check_tensor(next_obs, "next_obs", {n, T, O});
}

TrajectoryBuffer::TrajectoryBuffer(int64_t capacity) : capacity_(capacity) {
  check_arg(capacity >= 1, "buffer capacity must be >= 1 trajectory, got ", capacity);
}

void TrajectoryBuffer::push(const TrajectoryBatch& batch) {
  batch.validate();
  if (storage_.size() > 0)
    check_arg(batch.steps() == storage_.steps() && batch.chunks.size(2) == storage_.chunks.size(2),
              "all trajectories in the buffer need the same shape; got T = ", batch.steps(), " after ",
              storage_.steps());
  auto joined = storage_.size() > 0 ? TrajectoryBatch::cat({storage_, batch}) : batch;
  const int64_t n = joined.size();
  storage_ = n > capacity_ ? joined.index(torch::arange(n - capacity_, n, torch::kLong)) : joined;
}

TrajectoryBatch TrajectoryBuffer::all() const {
  check_arg(storage_.size() > 0, "the trajectory buffer is empty");
  return storage_;
}

TrajectoryBatch TrajectoryBuffer::sample_mixed(const TrajectoryBatch& fresh, int64_t n, double new_fraction,
                                               at::Generator& gen) const {
  check_arg(n >= 1, "sample size must be >= 1, got ", n);
  check_arg(new_fraction >= 0.0 && new_fraction <= 1.0, "new_fraction must be in [0, 1], got ", new_fraction);
  const int64_t nf = fresh.size(), no = storage_.size();
  check_arg(nf > 0 || no > 0, "nothing to sample: no fresh trajectories and an empty buffer");
  const double frac = no == 0 ? 1.0 : std::max(static_cast<double>(nf) / static_cast<double>(nf + no), new_fraction);
  int64_t n_fresh = std::min<int64_t>(nf, static_cast<int64_t>(std::ceil(frac * n)));
  int64_t n_old = n - n_fresh;
  if (no == 0) n_old = 0, n_fresh = std::min(n, nf);
  std::vector<TrajectoryBatch> parts;
  if (n_fresh > 0) parts.push_back(fresh.index(torch::randperm(nf, gen, torch::kLong).narrow(0, 0, n_fresh)));
  if (n_old > 0) {
    auto idx = n_old <= no ? torch::randperm(no, gen, torch::kLong).narrow(0, 0, n_old)
                           : torch::randint(0, no, {n_old}, gen, torch::kLong);
    parts.push_back(storage_.index(idx));
  }
  return TrajectoryBatch::cat(parts);
}

void TrajectoryBuffer::save_state(torch::serialize::OutputArchive& archive) const {
  archive.write("capacity", c10::IValue(capacity_));
  archive.write("size", c10::IValue(size()));
  if (size() == 0) return;
  archive.write("obs", storage_.obs);
  archive.write("chunks", storage_.chunks);
  archive.write("rewards", storage_.rewards);
  archive.write("terminated", storage_.terminated);
  archive.write("truncated", storage_.truncated);
  archive.write("next_obs", storage_.next_obs);
}

void TrajectoryBuffer::load_state(torch::serialize::InputArchive& archive, const std::string& path) {
  const int64_t capacity = read_value(archive, "capacity", path).toInt();
  if (capacity != capacity_)
    throw std::runtime_error("'" + path + "': the buffer holds up to " + std::to_string(capacity) +
                             " trajectories; this trainer's buffer " + std::to_string(capacity_) +
                             " (buffer_num_episode x n_envs differ)");
  const int64_t n = read_value(archive, "size", path).toInt();
  TrajectoryBatch b;
  if (n > 0) {
    const auto read = [&](const char* key) {
      torch::Tensor t;
      if (!archive.try_read(key, t)) throw std::runtime_error("'" + path + "' lacks the buffer entry '" + key + "'");
      return t;
    };
    b = TrajectoryBatch{read("obs"),        read("chunks"),    read("rewards"),
                        read("terminated"), read("truncated"), read("next_obs")};
    try {
      b.validate();
    } catch (const std::exception& e) {
      throw std::runtime_error("'" + path + "': the stored buffer is inconsistent: " + error_message(e));
    }
    if (b.size() != n)
      throw std::runtime_error("'" + path + "': the buffer says " + std::to_string(n) + " trajectories but holds " +
                               std::to_string(b.size()));
  }
  storage_ = b;
}

}  // namespace rldt
