// Behaviour-cloning pretraining of a FlowPolicy by flow matching (ALGORITHM.md §1, §7) on a
// D4RL-layout dataset, and recording such datasets by rolling out a policy.
//
// Chunking rule (docs/datasets.md): a training sample is (s_i, a_i … a_{i+H−1}) with all H rows
// inside one episode. By default a chunk starts only where it fits (the last H−1 rows of each
// episode start no chunk, episodes shorter than H give none; the reference implementation's
// rule); with pad_chunks, every row starts a chunk and rows past the episode's end repeat its
// last action.
//
// Shapes: N rows, O = obs_dim, d = action_dim, H = horizon_steps, M chunks.
#pragma once

#include <torch/types.h>

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/sac.hpp"
#include "rldt/data/dataset.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

struct PretrainConfig {
  std::string dataset;            // .npz | .hdf5 | .h5 file in the D4RL layout
  int64_t batch_size = 256;       // chunks per BC step
  int64_t n_updates = 100000;     // BC (AdamW) steps; an EMA update follows each
  double val_fraction = 0.05;     // share of episodes held out for the validation loss (0: none)
  int64_t val_max_chunks = 2048;  // validation chunks used (a fixed random subset)
  int64_t log_freq = 1000;        // updates between log rows (with validation)
  int64_t checkpoint_freq = 0;    // updates between checkpoints of the exported policy (0: end only)
  bool normalize = true;          // min/max normalisation of obs and actions from the dataset
  bool pad_chunks = false;        // see the chunking rule above
  uint64_t seed = 0;              // network init, split, minibatches and flow-matching noise

  // Throws ArgumentError naming the first invalid field (the dataset path is not checked).
  void validate() const;
};

// One log row.
struct PretrainLog {
  int64_t update = 0;                                                // BC steps done
  double epoch = 0;                                                  // update · batch_size / training chunks
  double train_loss = std::numeric_limits<double>::quiet_NaN();      // mean BC loss since the last row
  double val_loss = std::numeric_limits<double>::quiet_NaN();        // BC loss of the EMA net, fixed noise
  double val_action_mse = std::numeric_limits<double>::quiet_NaN();  // deterministic EMA chunk vs data,
                                                                     //   normalised units, per coordinate
  double seconds = 0;                                                // since pretraining started
};

struct PretrainCallbacks {
  // Every log_freq updates and after the last one; returning false stops after this row.
  std::function<bool(const PretrainLog&)> on_log;
  // Every checkpoint_freq updates (when > 0): the exported policy (EMA weights in every net,
  // normaliser set) and the update count.
  std::function<void(const FlowPolicy&, int64_t)> on_checkpoint;
};

struct PretrainResult {
  std::shared_ptr<FlowPolicy> policy;  // EMA weights loaded into actor and reference; normaliser set
  PretrainLog last;
  int64_t train_episodes = 0, val_episodes = 0, train_chunks = 0, val_chunks = 0;
  bool stopped_early = false;
};

// Chunk starts of `episodes` (row ranges [begin, end)) for horizon H: start (M,) and the last row
// of the start's episode (M,), both int64. See the chunking rule above.
std::pair<torch::Tensor, torch::Tensor> chunk_starts(const std::vector<std::pair<int64_t, int64_t>>& episodes,
                                                     int64_t horizon, bool pad);

// Min/max of the dataset's observations and actions (zero ranges are kept: those coordinates
// normalise to 0).
PolicyNormalizer fit_normalizer(const Dataset& data);

// A copy of `policy` with its EMA weights in actor, EMA and reference, and its normaliser.
std::shared_ptr<FlowPolicy> export_ema(const FlowPolicy& policy);

// Pretrains a new FlowPolicy (`policy_cfg`, obs_dim/action_dim taken from the data) on `data`.
// Throws ArgumentError for invalid configs or a dataset too small for one chunk.
PretrainResult pretrain(const Dataset& data, const PretrainConfig& cfg, FlowPolicyConfig policy_cfg,
                        const PretrainCallbacks& callbacks = {});

// ---------------------------------------------------------------------------------------------
// Recording
struct RecordConfig {
  std::string env = "Hopper-v5";
  EnvOptions env_options;
  int64_t n_envs = 1;
  int64_t env_threads = 1;
  int64_t act_steps = 4;       // executed actions of each chunk before the policy is queried again
  int64_t episodes = 0;        // stop after this many finished episodes (exactly one of
  int64_t steps = 0;           //   episodes / steps must be > 0), or after this many env steps
  double noise = 0.0;          // σ of Gaussian noise added to policy actions in [−1, 1] units
  bool deterministic = false;  // x_0 = 0 sampling (else x_0 ~ N(0, I))
  uint64_t seed = 0;           // env resets (env i: seed + i), sampling and noise
  void validate() const;
};

// Rolls out `policy` (through its normaliser) in a VecEnv and records every executed env step in
// the D4RL layout: observations, actions as executed (env units, inside the action box),
// rewards, terminals = terminated, timeouts = truncated, next_observations (the true next state).
// Episodes are stored one after another in the order they finish. With `episodes`, exactly that
// many finished episodes are kept (unfinished ones are dropped); with `steps`, exactly that many
// rows are kept, and an episode cut by the budget ends with timeouts = 1.
Dataset record_dataset(FlowPolicy& policy, const RecordConfig& cfg);
// The same for a SAC actor (one action per query: cfg.act_steps must be 1). deterministic:
// tanh(mean); else a sample of the tanh-Gaussian (how D4RL's datasets were collected).
Dataset record_dataset(SacPolicy& policy, const RecordConfig& cfg);

// What both overloads run: `plan` maps env observations (B, O) float32 to chunks (B, H, d) of
// actions in env units (clamped to `box`, the env's action box, afterwards); it is called for the
// envs whose chunk is used up, in env order. H = horizon (>= cfg.act_steps). Checks O and d
// against the env.
using ChunkPlanner = std::function<torch::Tensor(const torch::Tensor& obs, const BoxSpec& box, at::Generator& gen)>;
Dataset record_dataset(const ChunkPlanner& plan, int64_t obs_dim, int64_t action_dim, int64_t horizon,
                       const RecordConfig& cfg);

}  // namespace rldt
