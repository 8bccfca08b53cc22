#include "rldt/envs/mujoco_env.hpp"

#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>

namespace rldt {
namespace {
constexpr int kInstabilityWarnings[] = {mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC};
}  // namespace

// ---------------------------------------------------------------------------------------------
// EnvRng
// ---------------------------------------------------------------------------------------------
double EnvRng::unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double EnvRng::uniform(double low, double high) { return low + (high - low) * unit(); }

double EnvRng::normal() {
  const double u1 = 1.0 - unit();  // (0, 1]: log is finite
  const double u2 = unit();
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

// ---------------------------------------------------------------------------------------------
// MujocoModel
// ---------------------------------------------------------------------------------------------
std::shared_ptr<const MujocoModel> MujocoModel::load(const std::string& path) {
  // The XML parser/compiler is not documented as reentrant: serialise loads.
  static std::mutex load_mutex;
  std::lock_guard<std::mutex> lock(load_mutex);
  char error[1024] = "";
  mjModel* m = mj_loadXML(path.c_str(), nullptr, error, sizeof(error));
  if (!m) throw EnvError("failed to load MuJoCo model '" + path + "': " + error);
  return std::shared_ptr<const MujocoModel>(new MujocoModel(m, path));
}

MujocoModel::~MujocoModel() { mj_deleteModel(model_); }

// ---------------------------------------------------------------------------------------------
// MujocoEnv
// ---------------------------------------------------------------------------------------------
MujocoEnv::MujocoEnv(std::string name, std::shared_ptr<const MujocoModel> model, int frame_skip,
                     int max_episode_steps)
    : m_(model ? model->get() : nullptr), d_(nullptr), model_(std::move(model)) {
  if (!m_) throw EnvError(name + ": no model given");
  if (frame_skip < 1)
    throw EnvError(name + ": option 'frame_skip' = " + std::to_string(frame_skip) + " must be >= 1");
  if (max_episode_steps < 1)
    throw EnvError(name + ": option 'max_episode_steps' = " + std::to_string(max_episode_steps) +
                   " must be >= 1");
  d_ = mj_makeData(m_);
  if (!d_) throw EnvError(name + ": mj_makeData failed (out of memory?)");
  label_ = name;
  spec_.name = std::move(name);
  spec_.frame_skip = frame_skip;
  spec_.max_episode_steps = max_episode_steps;
  spec_.timestep = m_->opt.timestep;
  spec_.dt = m_->opt.timestep * frame_skip;
  spec_.nq = m_->nq;
  spec_.nv = m_->nv;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (int i = 0; i < m_->nu; ++i) {
    const bool limited = m_->actuator_ctrllimited[i];
    spec_.action.low.push_back(limited ? m_->actuator_ctrlrange[2 * i] : -kInf);
    spec_.action.high.push_back(limited ? m_->actuator_ctrlrange[2 * i + 1] : kInf);
  }
  init_qpos_.assign(m_->qpos0, m_->qpos0 + m_->nq);
  init_qvel_.assign(m_->nv, 0.0);
}

MujocoEnv::~MujocoEnv() {
  if (d_) mj_deleteData(d_);
}

void MujocoEnv::finish_spec(int obs_dim, std::vector<std::string> info_keys) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  spec_.observation.low.assign(obs_dim, -kInf);
  spec_.observation.high.assign(obs_dim, kInf);
  spec_.info_keys = std::move(info_keys);
}

void MujocoEnv::check_span(size_t got, size_t expected, const char* what) const {
  if (got != expected) {
    std::ostringstream err;
    err << label_ << ": " << what << " has " << got << " entries; expected " << expected;
    throw EnvError(err.str());
  }
}

StepInfo MujocoEnv::reset_into(std::optional<uint64_t> seed, Span<double> obs) {
  check_span(obs.size(), spec_.observation.size(), "observation buffer");
  if (seed) rng_.seed(*seed);
  mj_resetData(m_, d_);
  mju_copy(d_->qpos, init_qpos_.data(), m_->nq);
  mju_copy(d_->qvel, init_qvel_.data(), m_->nv);
  sample_initial_state(rng_, d_->qpos, d_->qvel);
  mj_forward(m_, d_);
  elapsed_steps_ = 0;
  needs_reset_ = false;
  StepInfo info;
  fill_reset_info(info);
  write_observation(obs.data());
  return info;
}

bool MujocoEnv::diverged() const {
  for (int w : kInstabilityWarnings)
    if (d_->warning[w].number > 0) return true;
  for (int i = 0; i < m_->nq; ++i)
    if (!std::isfinite(d_->qpos[i])) return true;
  for (int i = 0; i < m_->nv; ++i)
    if (!std::isfinite(d_->qvel[i])) return true;
  return false;
}

StepResult MujocoEnv::step_into(Span<const double> action, Span<double> obs) {
  check_span(action.size(), static_cast<size_t>(m_->nu), "action");
  check_span(obs.size(), spec_.observation.size(), "observation buffer");
  for (size_t i = 0; i < action.size(); ++i) {
    if (!std::isfinite(action[i])) {
      std::ostringstream err;
      err << label_ << ": action[" << i << "] = " << action[i]
          << " is not finite; nothing was stepped";
      throw EnvError(err.str());
    }
  }
  if (needs_reset_)
    throw EnvError(label_ + ": step() with no running episode (before the first reset() or after "
                            "terminated/truncated); call reset() first");

  before_step();
  // As in Gymnasium, ctrl receives the action as given: MuJoCo clamps it to the control range
  // inside the actuation (ctrllimited), while the control cost sees the unclipped action.
  mju_copy(d_->ctrl, action.data(), m_->nu);
  // MuJoCo counts these warnings (and resets the state) when the simulation blows up.
  for (int w : kInstabilityWarnings) d_->warning[w].number = 0;
  for (int k = 0; k < spec_.frame_skip; ++k) mj_step(m_, d_);
  // cfrc_ext (contact forces) is only computed on request since MuJoCo 2.0.
  mj_rnePostConstraint(m_, d_);

  StepResult out;
  after_step(action.data(), out);
  ++elapsed_steps_;
  out.info.elapsed_steps = elapsed_steps_;
  write_observation(obs.data());
  if (diverged()) {
    out.terminated = true;
    out.info.unstable = true;
    if (!std::isfinite(out.reward)) out.reward = 0.0;
    for (double& v : obs)
      if (!std::isfinite(v)) v = 0.0;
  }
  out.truncated = elapsed_steps_ >= spec_.max_episode_steps;
  needs_reset_ = out.terminated || out.truncated;
  return out;
}

void MujocoEnv::get_state(Span<double> qpos, Span<double> qvel) const {
  check_span(qpos.size(), static_cast<size_t>(m_->nq), "qpos");
  check_span(qvel.size(), static_cast<size_t>(m_->nv), "qvel");
  mju_copy(qpos.data(), d_->qpos, m_->nq);
  mju_copy(qvel.data(), d_->qvel, m_->nv);
}

void MujocoEnv::set_state(Span<const double> qpos, Span<const double> qvel) {
  check_span(qpos.size(), static_cast<size_t>(m_->nq), "qpos");
  check_span(qvel.size(), static_cast<size_t>(m_->nv), "qvel");
  for (size_t i = 0; i < qpos.size() + qvel.size(); ++i) {
    const double v = i < qpos.size() ? qpos[i] : qvel[i - qpos.size()];
    if (!std::isfinite(v)) {
      std::ostringstream err;
      err << label_ << ": set_state: "
          << (i < qpos.size() ? "qpos[" + std::to_string(i) : "qvel[" + std::to_string(i - qpos.size()))
          << "] = " << v << " is not finite";
      throw EnvError(err.str());
    }
  }
  mju_copy(d_->qpos, qpos.data(), m_->nq);
  mju_copy(d_->qvel, qvel.data(), m_->nv);
  mj_forward(m_, d_);
}

void MujocoEnv::observe(Span<double> obs) const {
  check_span(obs.size(), spec_.observation.size(), "observation buffer");
  write_observation(obs.data());
}

void MujocoEnv::expect_model_sizes(int nq, int nv, int nu, int nbody) const {
  if (m_->nq != nq || m_->nv != nv || m_->nu != nu || m_->nbody != nbody) {
    std::ostringstream err;
    err << spec_.name << ": model '" << model_->path() << "' has nq=" << m_->nq << ", nv=" << m_->nv
        << ", nu=" << m_->nu << ", nbody=" << m_->nbody << "; the task expects nq=" << nq
        << ", nv=" << nv << ", nu=" << nu << ", nbody=" << nbody;
    throw EnvError(err.str());
  }
}

double MujocoEnv::weighted_square_sum(const double* a, int n, double weight) {
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += a[i] * a[i];
  return weight * s;
}

}  // namespace rldt
