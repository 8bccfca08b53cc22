#include "rldt/envs/vec_env.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "byte_blob.hpp"
#include "rldt/envs/make_env.hpp"

namespace rldt {

VecEnv::VecEnv(const std::string& task, int num_envs, int num_threads, const EnvOptions& options) : pool_(num_threads) {
  if (num_envs < 1) throw EnvError("VecEnv(" + task + "): num_envs = " + std::to_string(num_envs) + " must be >= 1");
  auto model = load_env_model(task);
  envs_.reserve(num_envs);
  for (int i = 0; i < num_envs; ++i) {
    envs_.push_back(make_env(task, options, model));
    envs_.back()->set_label(task + "[" + std::to_string(i) + "]");
  }
  const size_t n = num_envs, od = obs_dim();
  out_.obs.assign(n * od, 0.0);
  out_.reward.assign(n, 0.0);
  out_.terminated.assign(n, 0);
  out_.truncated.assign(n, 0);
  out_.final_obs.assign(n * od, 0.0);
  out_.info.assign(n, StepInfo{});
  out_.steps_executed.assign(n, 0);
  out_.episode_return.assign(n, 0.0);
  out_.episode_length.assign(n, 0);
  running_return_.assign(n, 0.0);
}

MujocoEnv& VecEnv::env(int i) {
  if (i < 0 || i >= num_envs())
    throw EnvError("VecEnv(" + spec().name + "): env index " + std::to_string(i) + " out of range [0, " +
                   std::to_string(num_envs()) + ")");
  return *envs_[i];
}

const VecStep& VecEnv::reset(uint64_t seed) { return reset_all(seed); }

const VecStep& VecEnv::reset() { return reset_all(std::nullopt); }

const VecStep& VecEnv::reset_all(std::optional<uint64_t> seed) {
  const int od = obs_dim();
  pool_.parallel_for(num_envs(), [&](int i) {
    std::optional<uint64_t> s;
    if (seed) s = *seed + static_cast<uint64_t>(i);
    out_.info[i] = envs_[i]->reset_into(s, Span<double>(&out_.obs[i * od], od));
  });
  std::fill(out_.reward.begin(), out_.reward.end(), 0.0);
  std::fill(out_.terminated.begin(), out_.terminated.end(), 0);
  std::fill(out_.truncated.begin(), out_.truncated.end(), 0);
  std::fill(out_.final_obs.begin(), out_.final_obs.end(), 0.0);
  std::fill(out_.steps_executed.begin(), out_.steps_executed.end(), 0);
  std::fill(out_.episode_return.begin(), out_.episode_return.end(), 0.0);
  std::fill(out_.episode_length.begin(), out_.episode_length.end(), 0);
  std::fill(running_return_.begin(), running_return_.end(), 0.0);
  return out_;
}

void VecEnv::validate(Span<const double> actions, int chunk_len, int rows, int begin, int end) const {
  const size_t ad = act_dim();
  const size_t expected = envs_.size() * chunk_len * ad;
  if (actions.size() != expected) {
    std::ostringstream err;
    err << "VecEnv(" << spec().name << "): actions have " << actions.size() << " entries; expected " << expected
        << " = num_envs " << envs_.size();
    if (chunk_len > 1) err << " x chunk_len " << chunk_len;
    err << " x act_dim " << ad << "; nothing was stepped";
    throw EnvError(err.str());
  }
  for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
    if (envs_[i]->needs_reset())
      throw EnvError(envs_[i]->label() + ": not reset; call VecEnv::reset first; nothing was stepped");
    for (int k = 0; k < rows; ++k)
      for (size_t j = 0; j < ad; ++j) {
        const double v = actions[(i * chunk_len + k) * ad + j];
        if (!std::isfinite(v)) {
          std::ostringstream err;
          err << envs_[i]->label() << ": action";
          if (chunk_len > 1) err << " chunk row " << k;
          err << " [" << j << "] = " << v << " is not finite; nothing was stepped";
          throw EnvError(err.str());
        }
      }
  }
}

void VecEnv::run_env(int i, const double* actions, int chunk_len, int act_steps) {
  const int od = obs_dim(), ad = act_dim();
  MujocoEnv& e = *envs_[i];
  Span<double> obs(&out_.obs[static_cast<size_t>(i) * od], od);
  double reward = 0.0;
  int k = 0;
  StepResult r;
  while (k < act_steps) {
    r = e.step_into(Span<const double>(actions + (static_cast<size_t>(i) * chunk_len + k) * ad, ad), obs);
    reward += r.reward;
    ++k;
    if (r.terminated || r.truncated) break;
  }
  out_.reward[i] = reward;
  out_.terminated[i] = r.terminated;
  out_.truncated[i] = r.truncated;
  out_.info[i] = r.info;
  out_.steps_executed[i] = k;
  running_return_[i] += reward;
  if (r.terminated || r.truncated) {
    std::copy(obs.begin(), obs.end(), &out_.final_obs[static_cast<size_t>(i) * od]);
    out_.episode_return[i] = running_return_[i];
    out_.episode_length[i] = r.info.elapsed_steps;
    running_return_[i] = 0.0;
    e.reset_into(std::nullopt, obs);  // continues env i's generator stream
  } else {
    std::fill_n(&out_.final_obs[static_cast<size_t>(i) * od], od, 0.0);
    out_.episode_return[i] = 0.0;
    out_.episode_length[i] = 0;
  }
}

const VecStep& VecEnv::step(Span<const double> actions) {
  validate(actions, 1, 1, 0, num_envs());
  pool_.parallel_for(num_envs(), [&](int i) { run_env(i, actions.data(), 1, 1); });
  return out_;
}

const VecStep& VecEnv::step_chunk(Span<const double> actions, int chunk_len, int act_steps) {
  if (chunk_len < 1 || act_steps < 1 || act_steps > chunk_len)
    throw EnvError("VecEnv(" + spec().name + "): need 1 <= act_steps (" + std::to_string(act_steps) +
                   ") <= chunk_len (" + std::to_string(chunk_len) + ")");
  validate(actions, chunk_len, act_steps, 0, num_envs());
  pool_.parallel_for(num_envs(), [&](int i) { run_env(i, actions.data(), chunk_len, act_steps); });
  return out_;
}

void VecEnv::step_chunk_rows(Span<const double> actions, int chunk_len, int act_steps, int begin, int end) {
  if (chunk_len < 1 || act_steps < 1 || act_steps > chunk_len)
    throw EnvError("VecEnv(" + spec().name + "): need 1 <= act_steps (" + std::to_string(act_steps) +
                   ") <= chunk_len (" + std::to_string(chunk_len) + ")");
  if (begin < 0 || end > num_envs() || begin >= end)
    throw EnvError("VecEnv(" + spec().name + "): step_chunk_rows needs 0 <= begin < end <= num_envs (" +
                   std::to_string(num_envs()) + "), got [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
  validate(actions, chunk_len, act_steps, begin, end);
  for (int i = begin; i < end; ++i) run_env(i, actions.data(), chunk_len, act_steps);
}

namespace {
constexpr const char* kVecSnapshotMagic = "rldt.VecEnv.v1";
}

std::vector<uint8_t> VecEnv::snapshot() const {
  detail::BlobWriter w;
  w.string(kVecSnapshotMagic);
  w.string(spec().name);
  w.pod<int64_t>(num_envs());
  for (const auto& e : envs_) {
    const auto blob = e->snapshot();
    w.vector(blob);
  }
  w.vector(running_return_);
  w.vector(out_.obs);
  w.vector(out_.reward);
  w.vector(out_.terminated);
  w.vector(out_.truncated);
  w.vector(out_.final_obs);
  w.vector(out_.info);
  w.vector(out_.steps_executed);
  w.vector(out_.episode_return);
  w.vector(out_.episode_length);
  return w.take();
}

void VecEnv::restore(const std::vector<uint8_t>& blob) {
  const std::string who = "VecEnv(" + spec().name + "): restore";
  detail::BlobReader r(blob, who);
  if (r.string("magic") != kVecSnapshotMagic) throw EnvError(who + ": not a VecEnv snapshot");
  const std::string task = r.string("task");
  if (task != spec().name) throw EnvError(who + ": the snapshot is of task '" + task + "'");
  const auto n = r.pod<int64_t>("num_envs");
  if (n != num_envs())
    throw EnvError(who + ": the snapshot has " + std::to_string(n) + " envs, this VecEnv " +
                   std::to_string(num_envs()));
  // Read and check everything before changing anything.
  std::vector<std::vector<uint8_t>> env_blobs(n);
  for (auto& b : env_blobs) {
    const auto size = r.pod<uint64_t>("env snapshot size");
    if (size > blob.size()) throw EnvError(who + ": state blob is truncated (env snapshot)");
    b.resize(size);
    r.bytes(b.data(), size, "env snapshot");
  }
  std::vector<double> running = running_return_;
  VecStep out = out_;
  r.vector(running, "running_return");
  r.vector(out.obs, "obs");
  r.vector(out.reward, "reward");
  r.vector(out.terminated, "terminated");
  r.vector(out.truncated, "truncated");
  r.vector(out.final_obs, "final_obs");
  r.vector(out.info, "info");
  r.vector(out.steps_executed, "steps_executed");
  r.vector(out.episode_return, "episode_return");
  r.vector(out.episode_length, "episode_length");
  r.finish();
  // Each env checks its snapshot as it restores it; the old states roll back a failure.
  std::vector<std::vector<uint8_t>> old;
  old.reserve(n);
  for (const auto& e : envs_) old.push_back(e->snapshot());
  for (int64_t i = 0; i < n; ++i) {
    try {
      envs_[i]->restore(env_blobs[i]);
    } catch (...) {
      for (int64_t j = 0; j < i; ++j) envs_[j]->restore(old[j]);
      throw;
    }
  }
  running_return_ = std::move(running);
  out_ = std::move(out);
}

}  // namespace rldt
