// MuJoCo plumbing shared by the tasks: a shared read-only model, a per-env mjData, seeding,
// frame skipping, time-limit truncation, input validation and instability detection.
// A task (tasks/*.hpp) supplies only its reset noise, observation, reward and termination rule.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/env.hpp"

namespace rldt {

// Random numbers for resets: mt19937_64 (fully specified by the standard) with explicit
// conversions, so a seed gives the same episode on every platform and standard library.
class EnvRng {
 public:
  explicit EnvRng(uint64_t seed = 0) : engine_(seed) {}
  void seed(uint64_t seed) { engine_.seed(seed); }
  // The engine's state as the standard's text form (restores exactly with set_state).
  std::string state() const;
  // Throws EnvError if `state` is not a state written by state().
  void set_state(const std::string& state);
  // Uniform on [low, high).
  double uniform(double low, double high);
  // Standard normal (Box-Muller; one draw consumes two uniforms).
  double normal();

 private:
  double unit();  // uniform on [0, 1) with 53 random bits
  std::mt19937_64 engine_;
};

// A compiled MuJoCo model, shared read-only by any number of environments (each has its own
// mjData). Loading is serialised internally; everything else is safe to share across threads.
class MujocoModel {
 public:
  // Compiles the MJCF file at `path`; throws EnvError with MuJoCo's message on failure.
  static std::shared_ptr<const MujocoModel> load(const std::string& path);
  ~MujocoModel();
  MujocoModel(const MujocoModel&) = delete;
  MujocoModel& operator=(const MujocoModel&) = delete;

  const mjModel* get() const { return model_; }
  const std::string& path() const { return path_; }

 private:
  MujocoModel(mjModel* model, std::string path) : model_(model), path_(std::move(path)) {}
  mjModel* model_;
  std::string path_;
};

// Base of the MuJoCo tasks. Implements the Env contract; the task overrides the hooks below.
class MujocoEnv : public Env {
 public:
  ~MujocoEnv() override;
  MujocoEnv(const MujocoEnv&) = delete;
  MujocoEnv& operator=(const MujocoEnv&) = delete;

  const EnvSpec& spec() const override { return spec_; }
  StepInfo reset_into(std::optional<uint64_t> seed, Span<double> obs) override;
  StepResult step_into(Span<const double> action, Span<double> obs) override;
  void get_state(Span<double> qpos, Span<double> qvel) const override;
  void set_state(Span<const double> qpos, Span<const double> qvel) override;
  void observe(Span<double> obs) const override;

  // Everything that determines this env's future, as an opaque byte blob: the simulation state
  // (qpos, qvel, act, qacc_warmstart (the solver's warm start), ctrl, time, …) and every quantity
  // MuJoCo derived from it (xpos, cfrc_ext, …: observations and rewards read them after a step,
  // before the next mj_forward), the contacts, the env's generator, elapsed steps and whether the
  // episode has ended. restore() continues bit for bit as the env that wrote the blob would.
  // Constraint arrays (efc_*) are not kept: every mj_step recomputes them before use.
  std::vector<uint8_t> snapshot() const;
  // Restores a snapshot of the same task and model; throws EnvError naming the task and the
  // first mismatching field otherwise (nothing is changed then).
  void restore(const std::vector<uint8_t>& blob);

  // True before the first reset and after an episode ends (step then throws until reset).
  bool needs_reset() const { return needs_reset_; }
  int elapsed_steps() const { return elapsed_steps_; }
  const mjModel* model() const { return m_; }
  const mjData* data() const { return d_; }
  // Initial qpos [nq] (the model's qpos0) and qvel [nv] (zeros) around which resets are drawn.
  const std::vector<double>& init_qpos() const { return init_qpos_; }
  const std::vector<double>& init_qvel() const { return init_qvel_; }

 protected:
  // `name` is the task id; frame_skip >= 1 and max_episode_steps >= 1 are checked here.
  MujocoEnv(std::string name, std::shared_ptr<const MujocoModel> model, int frame_skip,
            int max_episode_steps);
  // Completes the spec once the task knows its observation size and info keys.
  void finish_spec(int obs_dim, std::vector<std::string> info_keys);

  // --- task hooks -------------------------------------------------------------------------
  // Perturbs the initial state: qpos [nq] and qvel [nv] hold init_qpos/init_qvel on entry.
  virtual void sample_initial_state(EnvRng& rng, double* qpos, double* qvel) = 0;
  // Fills the info returned by reset (after mj_forward of the initial state).
  virtual void fill_reset_info(StepInfo& info) const { (void)info; }
  // Records what the reward needs from the state before the physics steps (e.g. x position).
  virtual void before_step() {}
  // Computes reward, terminated and the task's info fields after the physics steps.
  // action: [act_dim] as given by the caller.
  virtual void after_step(const double* action, StepResult& out) = 0;
  // Writes the observation [obs_dim] of the current mjData.
  virtual void write_observation(double* obs) const = 0;

  // --- helpers for tasks ------------------------------------------------------------------
  // Throws EnvError naming the task and model file unless the model has these sizes.
  void expect_model_sizes(int nq, int nv, int nu, int nbody) const;
  // weight * sum(a[i]^2) over n entries.
  static double weighted_square_sum(const double* a, int n, double weight);

  const mjModel* m_;
  mjData* d_;
  EnvRng rng_;

 private:
  void check_buffers();   // throws EnvError if MuJoCo dropped constraints (njmax/nconmax full)
  void check_span(size_t got, size_t expected, const char* what) const;
  bool diverged() const;  // MuJoCo instability warning during the step or non-finite qpos/qvel

  std::shared_ptr<const MujocoModel> model_;
  EnvSpec spec_;
  std::vector<double> init_qpos_, init_qvel_;
  int elapsed_steps_ = 0;
  bool needs_reset_ = true;
};

}  // namespace rldt
