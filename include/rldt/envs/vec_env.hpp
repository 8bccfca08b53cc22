// N environments of one task stepped in parallel by a thread pool.
//
// One mjData per env, one mjModel shared read-only. Each env's result depends only on its own
// state and action, so results are bit-identical to stepping the envs one after another,
// whatever the thread count. Finished episodes are reset in the same call (same-step autoreset):
// the row of `obs` then holds the new episode's first observation and `final_obs` the last
// observation of the finished one. Steps allocate nothing: results live in buffers owned here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rldt/envs/env.hpp"
#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"
#include "rldt/util/thread_pool.hpp"

namespace rldt {

// Results of VecEnv::reset/step/step_chunk; N = num_envs. Rows are row-major.
struct VecStep {
  std::vector<double> obs;             // [N, obs_dim] next observation (new episode's first if done)
  std::vector<double> reward;          // [N] reward (summed over the executed steps of a chunk)
  std::vector<uint8_t> terminated;     // [N] the episode ended by the task in this call
  std::vector<uint8_t> truncated;      // [N] the episode hit max_episode_steps in this call
  std::vector<double> final_obs;       // [N, obs_dim] last observation of a finished episode
                                       //   (rows valid where terminated or truncated, else zeros)
  std::vector<StepInfo> info;          // [N] info of the last executed step (of the old episode)
  std::vector<int> steps_executed;     // [N] env steps executed in this call (1 for step())
  std::vector<double> episode_return;  // [N] undiscounted return of the finished episode (if done)
  std::vector<int> episode_length;     // [N] length of the finished episode (if done)
};

class VecEnv {
 public:
  // `num_envs` >= 1 copies of `task` with `options` (see make_env); `num_threads` threads step
  // them (1 = the calling thread only, 0 = all hardware threads).
  VecEnv(const std::string& task, int num_envs, int num_threads = 1, const EnvOptions& options = {});

  int num_envs() const { return static_cast<int>(envs_.size()); }
  int num_threads() const { return pool_.num_threads(); }
  const EnvSpec& spec() const { return envs_.front()->spec(); }
  int obs_dim() const { return static_cast<int>(spec().observation.size()); }
  int act_dim() const { return static_cast<int>(spec().action.size()); }
  MujocoEnv& env(int i);  // env i (bounds-checked), e.g. for get_state/set_state

  // Resets all envs, env i with seed + i. Fills obs [N, obs_dim] and info; other fields zero.
  const VecStep& reset(uint64_t seed);
  // Resets all envs without reseeding: each env continues its own generator stream (Gymnasium's
  // reset(seed=None)). Fills obs and info like reset(seed).
  const VecStep& reset();

  // Steps env i with actions[i * act_dim .. (i + 1) * act_dim); actions: [N, act_dim].
  // Throws EnvError naming the env index and entry on a wrong size or non-finite entry; nothing
  // is stepped then.
  const VecStep& step(Span<const double> actions);

  // Action chunks: actions [N, chunk_len, act_dim]. Env i executes actions[i, 0..act_steps) in
  // order (1 <= act_steps <= chunk_len), stopping early when its episode ends; reward is the sum
  // over the executed steps and steps_executed their count. Validation as in step(), over the
  // rows that may be executed.
  const VecStep& step_chunk(Span<const double> actions, int chunk_len, int act_steps);

  // step_chunk for the envs [begin, end) only, on the calling thread; their rows of result() are
  // updated, the other rows are left as they are. Calls on disjoint ranges may run concurrently
  // (from parallel_groups), and give the same results as one step_chunk. actions: all N rows,
  // [N, chunk_len, act_dim], of which rows [begin, end) are read.
  void step_chunk_rows(Span<const double> actions, int chunk_len, int act_steps, int begin, int end);
  // The results of the last reset/step/step_chunk(_rows) calls.
  const VecStep& result() const { return out_; }
  // Calls fn(g) for g in [0, groups) on the env threads (the caller's included), returning when all
  // are done; the first exception thrown is rethrown. For callers that act and step disjoint env
  // ranges from their own threads (RldtTrainer's grouped rollout). Not reentrant.
  template <typename Fn>
  void parallel_groups(int groups, Fn&& fn) {
    pool_.parallel_for(groups, std::forward<Fn>(fn));
  }

  // The env threads' pool, for callers that run other parallel work on the same threads between
  // env calls (RldtTrainer's rollout inference, InferencePolicy::set_thread_pool), so that two
  // pools' threads do not compete for the cores. Not while an env call or parallel_groups runs.
  ThreadPool& thread_pool() { return pool_; }

  // Full state as an opaque byte blob: every env's MujocoEnv::snapshot(), the running returns of
  // the unfinished episodes and the results of the last call (obs, final_obs, rewards, …).
  std::vector<uint8_t> snapshot() const;
  // Restores a snapshot of the same task and num_envs (the thread count may differ); throws
  // EnvError naming the mismatch otherwise, and then nothing is changed.
  void restore(const std::vector<uint8_t>& blob);

 private:
  const VecStep& reset_all(std::optional<uint64_t> seed);
  void validate(Span<const double> actions, int chunk_len, int rows, int begin, int end) const;
  void run_env(int i, const double* actions, int chunk_len, int act_steps);

  std::vector<std::unique_ptr<MujocoEnv>> envs_;
  ThreadPool pool_;
  VecStep out_;
  std::vector<double> running_return_;  // [N]
};

}  // namespace rldt
