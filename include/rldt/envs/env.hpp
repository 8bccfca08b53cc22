// Single-environment API of rldt's native environments.
//
// The env layer knows nothing about torch: observations, actions and states are plain doubles,
// passed through Span views (pointer + length) so hot loops can write into caller-owned buffers
// without allocating. Conventions (same as Gymnasium's v5 tasks):
//   observation: [obs_dim] float64, action: [act_dim] float64 (MuJoCo clamps it to the control
//   range inside the physics; costs use the action as given), reward: scalar per step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rldt {

// Thrown for bad arguments to environments: wrong shapes, non-finite actions or states, unknown
// task names or options. Derives from std::invalid_argument (pybind11 maps it to ValueError).
class EnvError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Non-owning view of `size` contiguous elements (a C++17 stand-in for std::span).
template <typename T>
class Span {
 public:
  Span() = default;
  Span(T* data, size_t size) : data_(data), size_(size) {}
  template <typename U, typename A>
  Span(std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit by design
  template <typename U, typename A>
  Span(const std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) const { return data_[i]; }
  T* begin() const { return data_; }
  T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

// A box in R^n: low[i] <= x[i] <= high[i] (entries may be +-infinity).
struct BoxSpec {
  std::vector<double> low;   // [n]
  std::vector<double> high;  // [n]
  size_t size() const { return low.size(); }
};

// Static description of a task.
struct EnvSpec {
  std::string name;              // e.g. "Hopper-v5"
  BoxSpec observation;           // [obs_dim], unbounded for the locomotion tasks
  BoxSpec action;                // [act_dim], the actuators' control range
  int max_episode_steps = 1000;  // truncation limit (steps of the env, not physics steps)
  int frame_skip = 1;            // physics steps per env step
  double timestep = 0.0;         // physics timestep, seconds
  double dt = 0.0;               // seconds per env step = frame_skip * timestep
  int nq = 0;                    // generalised position size (qpos)
  int nv = 0;                    // generalised velocity size (qvel)
  std::vector<std::string> info_keys;  // the StepInfo fields this task fills (Gymnasium's keys)
};

// Per-step diagnostics; a task fills the fields named in EnvSpec::info_keys, others stay 0.
// Reward terms are signed as Gymnasium reports them (costs are negative):
// reward == reward_forward + reward_ctrl + reward_contact + reward_survive.
struct StepInfo {
  double x_position = 0.0;              // m, qpos[0]
  double y_position = 0.0;              // m, qpos[1] (3-D tasks)
  double z_distance_from_origin = 0.0;  // m, qpos[1] - initial qpos[1] (planar walkers)
  double distance_from_origin = 0.0;    // m, |qpos[0:2]| (3-D tasks)
  double x_velocity = 0.0;              // m/s, forward velocity used by reward_forward
  double y_velocity = 0.0;              // m/s (3-D tasks)
  double reward_forward = 0.0;
  double reward_ctrl = 0.0;     // <= 0
  double reward_contact = 0.0;  // <= 0
  double reward_survive = 0.0;  // >= 0
  bool unstable = false;        // the simulation diverged (MuJoCo warning or non-finite state)
  int elapsed_steps = 0;        // env steps since the last reset
};

// Outcome of one env step (the observation goes to the caller's buffer).
struct StepResult {
  double reward = 0.0;
  bool terminated = false;  // episode ended by the task (unhealthy, unstable)
  bool truncated = false;   // episode cut by max_episode_steps
  StepInfo info;
};

// A single environment. Not thread-safe; one thread at a time per instance.
class Env {
 public:
  virtual ~Env() = default;

  virtual const EnvSpec& spec() const = 0;

  // Starts an episode. With a seed the env's generator is reseeded first; without one it
  // continues its stream (like Gymnasium's reset(seed=None)). obs: [obs_dim] output.
  virtual StepInfo reset_into(std::optional<uint64_t> seed, Span<double> obs) = 0;

  // Advances one env step with action [act_dim]; writes the next observation to obs [obs_dim].
  // Throws EnvError (nothing stepped) on a wrong size, a non-finite entry, or when the episode
  // has ended and reset was not called.
  virtual StepResult step_into(Span<const double> action, Span<double> obs) = 0;

  // Physics state: qpos [nq], qvel [nv].
  virtual void get_state(Span<double> qpos, Span<double> qvel) const = 0;
  // Sets qpos [nq], qvel [nv] and recomputes derived quantities (mj_forward). Episode counters
  // are unchanged; an ended episode may be continued after set_state.
  virtual void set_state(Span<const double> qpos, Span<const double> qvel) = 0;

  // Writes the observation of the current state to obs [obs_dim].
  virtual void observe(Span<double> obs) const = 0;

  // Label used in error messages, e.g. "Hopper-v5[3]" inside a pool.
  const std::string& label() const { return label_; }
  void set_label(std::string label) { label_ = std::move(label); }

  // Allocating conveniences for tests and scripts.
  struct Reset {
    std::vector<double> obs;  // [obs_dim]
    StepInfo info;
  };
  struct Step {
    std::vector<double> obs;  // [obs_dim]
    double reward;
    bool terminated;
    bool truncated;
    StepInfo info;
  };
  Reset reset(std::optional<uint64_t> seed = std::nullopt);
  Step step(const std::vector<double>& action);  // action [act_dim]

 protected:
  std::string label_;
};

}  // namespace rldt
