// The RLDT trainer (ALGORITHM.md §5–6): vectorised rollouts with exploration,
// a trajectory buffer, critic rounds with TD(λ) targets, SVGD actor steps and
// the reference-actor refresh. `train_iteration` reads like §6.
#pragma once

#include <ATen/core/Generator.h>

#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/inference_policy.hpp"
#include "rldt/algo/reward_scaler.hpp"
#include "rldt/data/trajectory_buffer.hpp"
#include "rldt/envs/options.hpp"
#include "rldt/train/evaluation.hpp"

namespace rldt {

class VecEnv;

// Thrown by RldtTrainer::train_iteration when a loss, a Q value or an action is
// not finite; the message names the quantity and the iteration. The trainer's
// state is then not usable for further iterations.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exploration while collecting data (§5). Evaluation iterations ignore it (deterministic x_0 = 0).
struct ExplorationConfig {
  // How the executed chunk is produced on training iterations:
  //   "full":        the whole Euler chain, then noise_mode on the final action a = x_K;
  //   "extrapolate": stop at k ~ U{min_extrp_step .. K−1}, act ŷ_k + sqrt(1 − k/K)·σ·ε;
  //   "qsample":     a = x_K, then langevin_steps of a ← a + σ·∇_a Q(s, a) + (σ/2)·ε.
  std::string sample_mode = "full";
  std::string noise_mode = "min_extrp";  // "full" only: "none" | "add" (a + σ·ε) | "min_extrp"
  double action_sample_noise = 0.02;     // σ
  int64_t min_extrp_step = 6;            // "min_extrp" / "extrapolate": k ~ U{min_extrp_step .. K−1}
  int64_t langevin_steps = 4;            // "qsample"
  // Checks the fields alone (min_extrp_step < K is checked with the policy config).
  void validate() const;
};

// The "min_extrp" noise radius r_n = ||a_n − ŷ_n|| over the whole chunk: actions a (N, H, d), the
// expected targets ŷ_k (N, H, d) at each row's step k -> (N,). With clip > 0 (the policy's
// final_action_clip) the actions are clamped to ±clip, so ŷ is clamped the same way before the
// distance is taken: only the sampler's uncertainty counts, not how far x_K overshot the box.
torch::Tensor min_extrp_radius(const torch::Tensor& actions, const torch::Tensor& expected, double clip);

struct RldtTrainerConfig {
  // Environment.
  std::string env = "Hopper-v5";
  EnvOptions env_options;
  int64_t n_envs = 100;
  int64_t env_threads = 2;
  // Rollouts of train_iteration: 1 = one batched policy forward over all n_envs per chunk step,
  // then all envs stepped on env_threads threads. G >= 2 splits the envs into G contiguous groups
  // that each sample the policy (one BLAS thread each) and step their own envs, groups running
  // in parallel on the env threads without waiting for each other between chunk steps (faster
  // where physics and small matmuls do not fill the cores; docs/benchmarks.md, issue 6).
  // With rollout_inference "torch" the random draws are the same as with 1, but the matmuls of a
  // smaller batch round differently in the last bits, so a run's trajectory depends on G (never
  // on env_threads); with "packed" it does not depend on G at all. Not with
  // exploration.sample_mode "qsample".
  // 0 (the default) chooses: 1 with "torch" (the layout of every documented run), and with
  // "packed" one group per env thread (at most n_envs; 1 for "qsample"), the faster layout, which
  // there gives the same run. RldtTrainer::rollout_groups() reports the choice.
  int64_t rollout_groups = 0;
  // How rollouts (train_iteration's and the ask/tell act()) and evaluate() sample the policy:
  // "torch": FlowPolicy's LibTorch ops (the default; every documented run used it). "packed":
  // InferencePolicy with its weights packed once per rollout (no LibTorch dispatch per op, no
  // BLAS repacking of the weights per call; faster rollouts, docs/benchmarks.md, issue 6). The
  // draws are the same; the sums round differently in the last bits, which grows over a run. With
  // "packed" a state's action does not depend on the batch it is in, so rollout_groups no longer
  // changes the trajectory.
  std::string rollout_inference = "torch";
  uint64_t seed = 0;
  int64_t act_steps = 4;  // executed steps of each chunk (≤ policy.horizon_steps)
  // Iterations (§6).
  int64_t n_steps = 500;  // chunk steps per env per iteration
  int64_t n_train_itr = 71;
  int64_t n_critic_warmup_itr = 2;
  int64_t val_freq = 5;  // iterations with itr % val_freq == 0 evaluate (deterministic, no updates)
  // > 0: evaluation iterations also run this many whole deterministic episodes on separate env
  // copies reset with seed + 1000003 + i (the same start states every time), reported as
  // eval_return. The evaluation iteration's own episode_return counts only the episodes that end
  // within its n_steps chunk steps (short ones, when n_steps·act_steps < the time limit), and
  // those episodes started under the previous iteration's exploring policy.
  int64_t eval_episodes = 0;
  // Critic.
  double gamma = 0.99;
  double td_lambda = 0.0;
  bool bootstrap_truncated = true;  // false: treat time limits as termination (reference behaviour)
  int64_t q_update_steps = 512;
  int64_t q_repeat = 16;
  int64_t q_bootstrap = 2;
  // Next actions of the bootstrap value: "sample" (q_bootstrap policy samples, ALGORITHM.md §2) or
  // "deterministic" (one deterministic sample from x_0 = 0, the policy that evaluation runs; not
  // in the spec). The latter makes Q the value of acting, then following the evaluated policy.
  std::string q_bootstrap_mode = "sample";
  // > 0: the critic trains in iterations < critic_train_itr only, then stays fixed while the actor
  // goes on (a diagnostic: does the actor over-exploit a fixed critic?). 0: it always trains.
  int64_t critic_train_itr = 0;
  // Whether iteration itr trains the critic (critic_train_itr; evaluation iterations train nothing).
  bool critic_trains(int64_t itr) const { return critic_train_itr == 0 || itr < critic_train_itr; }
  // The critic's learning rate in iteration i is critic.lr · critic_lr_decay^i (1: constant, as in
  // the spec; < 1: a critic that learns fast at first and then settles; not in the spec).
  double critic_lr_decay = 1.0;
  int64_t q_minibatch = 0;  // 0: full trajectories per critic step; else ~this many (traj, t) samples
  double new_fraction = 0.33;
  int64_t buffer_num_episode = 20;  // buffer keeps buffer_num_episode · n_envs trajectories
  double reward_scale = -1.0;       // < 0: EMA scaler
  double reward_scale_alpha = 0.01;
  // Actor.
  int64_t policy_update_steps = 32;
  // Each actor step takes the states of every S-th trajectory of the round's batch, offset by the
  // step index, S = actor_traj_stride (0: S = actor.n_particles, ALGORITHM.md §6); then at most
  // actor_max_states of them at random (0: all).
  int64_t actor_traj_stride = 0;
  int64_t actor_max_states = 0;
  // Which critic value the actor's field climbs (ALGORITHM.md §3): "mean" over ensemble members
  // (the spec's default), "member" (one member drawn per iteration, the spec's alternative) or
  // "min" (the pessimistic min over members, as the bootstrap uses).
  std::string actor_q_reduce = "mean";
  // The reference actor of L_ref (kl_coef) is refreshed from the trained actor after every
  // reference_refresh_freq-th iteration (1: every iteration, as in ALGORITHM.md §6). 0: never, so
  // L_ref anchors the actor to the base policy for the whole run.
  int64_t reference_refresh_freq = 1;
  ExplorationConfig exploration;
  FlowPolicyConfig policy;  // obs_dim / action_dim are taken from the env
  CriticConfig critic;      // obs_dim / action_dim / act_steps are taken from the env and act_steps
  ActorUpdateConfig actor;

  // Throws ArgumentError naming the first invalid field (cross-field rules included).
  void validate() const;
};

struct IterationMetrics {
  int64_t iteration = 0;
  bool eval = false;
  int64_t env_steps = 0;                                             // total env steps so far
  double episode_return = std::numeric_limits<double>::quiet_NaN();  // mean over episodes ended
  double episode_length = std::numeric_limits<double>::quiet_NaN();  //   in this iteration
  int64_t episodes = 0;
  double reward_per_step = 0;
  double critic_loss = std::numeric_limits<double>::quiet_NaN();
  double actor_loss = std::numeric_limits<double>::quiet_NaN();
  double align = std::numeric_limits<double>::quiet_NaN(), cons = align, ref = align;
  double grad_norm = align, particle_distance = align;
  double reward_scale = 1.0;
  // Evaluation iterations with eval_episodes > 0: whole deterministic episodes on separate envs.
  double eval_return = std::numeric_limits<double>::quiet_NaN(), eval_return_std = eval_return,
         eval_length = eval_return;
  // The same episodes: the critic's Q of the first chunk and the discounted return that followed
  // (EpisodeEvalResult::mean_q0 / mean_discounted_return), to watch the critic's bias over a run.
  double eval_q = eval_return, eval_discounted_return = eval_return;
  double seconds_rollout = 0, seconds_critic = 0, seconds_actor = 0, seconds_eval = 0;
};

// Whole-episode evaluation (RldtTrainer::evaluate).
using PolicyEvalResult = EpisodeEvalResult;

// An environment the trainer does not own: the caller steps it and reports back through
// RldtTrainer::act / observe / update (ask/tell). Only its sizes and action bounds are needed.
struct ExternalEnvSpec {
  std::string name = "external";    // used in messages
  int64_t obs_dim = 0;              // O
  std::vector<double> action_low;   // [d] finite env bounds; policy actions in [−1, 1] map onto them
  std::vector<double> action_high;  // [d]
  int64_t action_dim() const { return static_cast<int64_t>(action_low.size()); }
  // Throws ArgumentError naming the first bad field.
  void validate() const;
};

// Shapes: N = n_envs, O = obs_dim, H = horizon_steps, d = action_dim, E = act_steps,
// T = n_steps.
class RldtTrainer {
 public:
  // Native environments (cfg.env, cfg.n_envs copies stepped by a thread pool).
  // `policy`: a pretrained actor to fine-tune (its config must match the env), or nullptr to
  // train from scratch with cfg.policy.
  explicit RldtTrainer(RldtTrainerConfig cfg, std::shared_ptr<FlowPolicy> policy = nullptr);
  // An external environment driven by the caller through act / observe / update; cfg.env,
  // cfg.env_options and cfg.env_threads are not used.
  RldtTrainer(RldtTrainerConfig cfg, ExternalEnvSpec env, std::shared_ptr<FlowPolicy> policy = nullptr);
  ~RldtTrainer();

  // One iteration of §6 on the native environments: n_steps × (act, step, observe), then
  // update(). Evaluation iterations (itr % val_freq == 0) roll out deterministically and update
  // nothing. Throws NonFiniteError on a non-finite action, Q target or loss; std::logic_error
  // for an external-env trainer.
  IterationMetrics train_iteration();

  // `episodes` whole deterministic (x_0 = 0) episodes on separate copies of the env, reset with
  // seed + 1000003 + i (the same start states at every call); every copy runs until its first
  // episode ends. No effect on the training envs, buffer or random streams. Throws
  // std::logic_error for an external-env trainer.
  PolicyEvalResult evaluate(int64_t episodes);

  // ---- Ask/tell: one iteration = n_steps × (act, the caller executes, observe), then update().
  // Action chunks for the current observations, in env units (the first E steps of each are to
  // be executed; the env may clip). Exploration noise on training iterations, deterministic
  // (x_0 = 0) on evaluation iterations. obs: (N, O) env observations → (N, H, d) float64.
  // Throws ArgumentError on a wrong shape or non-finite entry, std::logic_error when the
  // previous act was not observed or n_steps chunks were already collected.
  torch::Tensor act(const torch::Tensor& obs);
  // Outcome of the last act's chunks. rewards (N): summed over the executed steps;
  // terminated, truncated (N) (0/1, bool or float); next_obs (N, O): the true next states (an
  // ended episode's final observation, not the reset one); steps (N) int: env steps executed
  // (undefined: E each). Episode returns and lengths are tracked across calls (and iterations).
  void observe(const torch::Tensor& rewards, const torch::Tensor& terminated, const torch::Tensor& truncated,
               const torch::Tensor& next_obs, const torch::Tensor& steps = {});
  // Critic and actor rounds on the collected n_steps (training iterations), reward scaler,
  // buffer, reference refresh; returns the iteration's metrics and advances the iteration.
  // Throws std::logic_error unless exactly n_steps chunks were acted and observed.
  IterationMetrics update();
  // Chunks acted and observed in the current iteration (0 … n_steps).
  int64_t steps_collected() const { return t_; }
  // Whether the current iteration is an evaluation (deterministic actions, no updates).
  bool eval_iteration() const { return itr_ % cfg_.val_freq == 0; }

  // The policy's action chunks outside training (no effect on the trainer's state or random
  // stream). obs: (B, O) env observations → (B, H, d) float64 env units.
  torch::Tensor policy_action(const torch::Tensor& obs, at::Generator& gen, bool deterministic = true);

  const RldtTrainerConfig& config() const { return cfg_; }
  int64_t n_envs() const { return cfg_.n_envs; }
  // The rollout layout in effect: config().rollout_groups, or what its 0 (automatic) chose. 1 for
  // a trainer driven through act/observe (its caller steps the envs).
  int64_t rollout_groups() const { return rollout_groups_; }
  int64_t obs_dim() const { return obs_dim_; }
  int64_t action_dim() const { return cfg_.policy.action_dim; }
  bool external_env() const { return !env_; }
  FlowPolicy& policy() { return *policy_; }
  std::shared_ptr<FlowPolicy> policy_ptr() { return policy_; }
  CriticEnsemble& critic() { return *critic_; }
  const TrajectoryBuffer& buffer() const { return buffer_; }
  int64_t iteration() const { return itr_; }
  int64_t env_steps() const { return env_steps_; }
  // The generator of every draw the trainer makes (read-only; rldt::generator_state gives its state).
  const at::Generator& generator() const { return gen_; }

  // The last complete rollout (for inspection and tests; empty after load_checkpoint).
  const TrajectoryBatch& last_rollout() const { return fresh_; }

  // Checkpoints, taken between iterations (docs/checkpoints.md). save_checkpoint writes
  // everything that determines the following iterations (networks with their optimizers and
  // counters, reward scaler, buffer, generator, running episode returns, iteration and counters;
  // with native envs also every env's full state and the current observations) to `path`
  // atomically: temp file + rename, so an existing file at `path` stays intact if the write fails.
  // A trainer built with the same config that loads it continues bit for bit as the one that
  // saved it (an external env must be restored by its owner). The config must match except
  // n_train_itr and env_threads (results do not depend on the thread count). Errors (missing,
  // truncated or foreign file, another config) are std::runtime_error naming the file; they are
  // found before anything changes, except a corrupt section, after which the trainer must not be
  // used. Both throw std::logic_error in the middle of an ask/tell iteration.
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);

 private:
  void init(std::shared_ptr<FlowPolicy> policy, int64_t obs_dim, int64_t action_dim);
  // Policy-space views of env quantities: obs (B, O) float, normalised with the policy's
  // observation bounds when it has them; chunk (B, H, d) in [−1, 1] → env units through the
  // policy's action bounds, else the env's box (act_low_, act_scale_).
  torch::Tensor policy_obs(const torch::Tensor& obs) const;
  void to_env_actions(const torch::Tensor& chunk, double* out) const;  // out [B·H·d]
  torch::Tensor explore(const FlowSample& s, const torch::Tensor& obs);
  // The draws of one chunk step's sampling and exploration, in the order act() makes them
  // (x_0, then the exploration's step k and noise), for rows (N, …); undefined where unused.
  struct ChunkNoise {
    torch::Tensor x0;   // (N, H, d) sampling start; undefined on evaluation iterations
    torch::Tensor k;    // (N,) int64 exploration step (extrapolate, min_extrp)
    torch::Tensor eps;  // (N, H, d) exploration noise
    ChunkNoise rows(int64_t begin, int64_t n) const;
  };
  ChunkNoise draw_chunk_noise(int64_t N);
  // Exploration of sample `s` (rows of obs) with pre-drawn noise (full / extrapolate modes); the
  // expected targets come from `fast` when given (rollout_inference "packed"), else from policy_.
  torch::Tensor explore_with(const FlowSample& s, const torch::Tensor& obs, const ChunkNoise& noise,
                             InferencePolicy* fast = nullptr);
  // Sampling of rows obs (n, O) with `fast` from x0 (n, H, d), or deterministically when x0 is
  // undefined; the chain only when the exploration needs it.
  FlowSample fast_sample(InferencePolicy& fast, const torch::Tensor& obs, const torch::Tensor& x0);
  // `fast` = a snapshot of the current actor for rollout_inference "packed": a new one (packed
  // weights, one thread until told otherwise) if null, else the kept one refreshed in place.
  void snapshot_actor(std::unique_ptr<InferencePolicy>& fast);
  // train_iteration's rollout with cfg_.rollout_groups >= 2 groups (see the config).
  void grouped_rollout();
  // Starts collecting an iteration's rollout (buffers, statistics, clock).
  void begin_rollout();
  // Adds one env's chunk step to the running episode and the iteration's statistics.
  void tally(int64_t env, double reward, int64_t steps, bool ended);
  // act() without the env-unit conversion: (N, H, d) clamped policy chunk.
  torch::Tensor act_policy_space(const torch::Tensor& obs);
  void critic_round(const TrajectoryBatch& batch, double scale, IterationMetrics& m);
  // member: the critic member the actor follows (-1: the mean over members; unused for "min").
  void actor_round(const TrajectoryBatch& batch, int64_t member, IterationMetrics& m);

  RldtTrainerConfig cfg_;
  std::unique_ptr<VecEnv> env_;       // null for an external env
  std::unique_ptr<VecEnv> eval_env_;  // evaluate(): created on first use, rebuilt when the size changes
  std::string env_name_;
  int64_t obs_dim_ = 0;
  int64_t rollout_groups_ = 1;  // rollout_groups()
  std::shared_ptr<FlowPolicy> policy_;
  std::unique_ptr<CriticEnsemble> critic_;
  std::unique_ptr<ActorUpdater> updater_;
  // rollout_inference "packed": one actor snapshot per rollout group, refreshed by begin_rollout().
  std::vector<std::unique_ptr<InferencePolicy>> fast_;
  std::unique_ptr<InferencePolicy> eval_fast_;  // evaluate()'s, refreshed per call
  RewardScaler scaler_;
  TrajectoryBuffer buffer_;
  at::Generator gen_;
  TrajectoryBatch fresh_;                    // the last complete rollout
  TrajectoryBatch collect_;                  // the rollout being collected (n_envs, n_steps, …)
  std::vector<double> act_low_, act_scale_;  // [d] policy [−1, 1] → env units (normaliser or env box)
  // Rollout progress (reset by the first act of an iteration).
  int64_t t_ = 0;
  bool acted_ = false;
  std::chrono::steady_clock::time_point rollout_start_;
  double ret_sum_ = 0, len_sum_ = 0, reward_sum_ = 0;
  int64_t episodes_ = 0, steps_sum_ = 0;
  std::vector<double> running_return_;   // [N] return of each env's current episode
  std::vector<int64_t> running_length_;  // [N] its length in env steps
  // Native env only.
  torch::Tensor obs_;                // (N, O) current env observation
  std::vector<double> env_actions_;  // (N, H, d) env units, reused every step
  int64_t itr_ = 0, env_steps_ = 0, actor_steps_ = 0;
};

// The trained actor of a checkpoint as a FlowPolicy (its EMA and reference copies included),
// without building envs or critics: what deployment needs. Errors name the file.
FlowPolicy policy_from_checkpoint(const std::string& path);

// Empty if a checkpoint whose trainer config was `saved_yaml` (to_yaml's text) may be loaded by a
// trainer with config `mine`; else which key differs. n_train_itr and env_threads may differ, and
// keys absent from `saved_yaml` (added to the library later) must hold their default value.
std::string checkpoint_config_mismatch(const std::string& saved_yaml, const RldtTrainerConfig& mine);

}  // namespace rldt
