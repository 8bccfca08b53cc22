#include "rldt/envs/mujoco_env.hpp"

#include <mujoco/mjxmacro.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>

#include "byte_blob.hpp"

namespace rldt {
namespace {
constexpr int kInstabilityWarnings[] = {mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC};
}  // namespace

// ---------------------------------------------------------------------------------------------
// EnvRng
// ---------------------------------------------------------------------------------------------
double EnvRng::unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

std::string EnvRng::state() const {
  std::ostringstream s;
  s << engine_;
  return s.str();
}

void EnvRng::set_state(const std::string& state) {
  std::istringstream s(state);
  std::mt19937_64 engine;
  s >> engine;
  if (s.fail()) throw EnvError("EnvRng::set_state: not a mt19937_64 state");
  engine_ = engine;
}

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

void MujocoEnv::check_buffers() {
  // The task XMLs size njmax/nconmax to the task (resets clear buffers of njmax^2 entries). MuJoCo
  // drops the constraints that do not fit and only counts a warning: refuse to go on instead.
  const int full_contacts = d_->warning[mjWARN_CONTACTFULL].number;
  const int full_rows = d_->warning[mjWARN_CNSTRFULL].number;
  if (full_contacts == 0 && full_rows == 0) return;
  needs_reset_ = true;
  std::ostringstream err;
  err << label_ << ": MuJoCo's " << (full_rows ? "constraint" : "contact") << " buffer is full (njmax " << m_->njmax
      << ", nconmax " << m_->nconmax << ", " << d_->ncon << " contacts and " << d_->nefc
      << " constraint rows now), so this step dropped constraints and its physics is wrong; raise <size njmax/nconmax> "
      << "in the task's model XML. The episode is over: call reset()";
  throw EnvError(err.str());
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
  check_buffers();
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

namespace {
constexpr const char* kSnapshotMagic = "rldt.MujocoEnv.v1";

// True for the mjData arrays sized by njmax or nconmax (constraints, contacts): recomputed by
// every mj_forward before use, and much larger than the rest (efc_AR is njmax x njmax).
bool constraint_array(const char* rows, const char* cols) {
  return std::strstr(rows, "njmax") || std::strstr(rows, "nconmax") || std::strstr(cols, "njmax");
}
}  // namespace

std::vector<uint8_t> MujocoEnv::snapshot() const {
  detail::BlobWriter w;
  w.string(kSnapshotMagic);
  w.string(spec_.name);
  const mjModel* m = m_;
  MJDATA_POINTERS_PREAMBLE(m)
  (void)nv;
  (void)njmax;
#define X(type, name, nr, nc) \
  if (!constraint_array(#nr, #nc)) w.array(d_->name, static_cast<size_t>(m->nr) * static_cast<size_t>(nc));
  MJDATA_POINTERS
#undef X
  w.pod(d_->ncon);
  w.array(d_->contact, static_cast<size_t>(d_->ncon));
  w.array(d_->warning, mjNWARNING);
  w.pod(d_->time);
  w.array(d_->energy, 2);
  w.string(rng_.state());
  w.pod<int64_t>(elapsed_steps_);
  w.pod<uint8_t>(needs_reset_);
  return w.take();
}

void MujocoEnv::restore(const std::vector<uint8_t>& blob) {
  detail::BlobReader r(blob, label_ + ": restore");
  const std::string magic = r.string("magic");
  if (magic != kSnapshotMagic) throw EnvError(label_ + ": restore: not a MujocoEnv snapshot");
  const std::string task = r.string("task");
  if (task != spec_.name)
    throw EnvError(label_ + ": restore: the snapshot is of task '" + task + "', this env is '" + spec_.name + "'");
  // Read into a scratch mjData first so that a bad blob leaves this env untouched.
  mjData* tmp = mj_makeData(m_);
  if (!tmp) throw EnvError(label_ + ": restore: mj_makeData failed (out of memory?)");
  try {
    const mjModel* m = m_;
    MJDATA_POINTERS_PREAMBLE(m)
    (void)nv;
    (void)njmax;
#define X(type, name, nr, nc) \
  if (!constraint_array(#nr, #nc)) r.array(tmp->name, static_cast<size_t>(m->nr) * static_cast<size_t>(nc), #name);
    MJDATA_POINTERS
#undef X
    tmp->ncon = r.pod<int>("ncon");
    if (tmp->ncon < 0 || tmp->ncon > m_->nconmax)
      throw EnvError(label_ + ": restore: snapshot has " + std::to_string(tmp->ncon) + " contacts; the model allows " +
                     std::to_string(m_->nconmax));
    r.array(tmp->contact, static_cast<size_t>(tmp->ncon), "contact");
    r.array(tmp->warning, mjNWARNING, "warning");
    tmp->time = r.pod<mjtNum>("time");
    r.array(tmp->energy, 2, "energy");
    const std::string rng = r.string("rng");
    const auto elapsed = r.pod<int64_t>("elapsed_steps");
    const auto needs_reset = r.pod<uint8_t>("needs_reset");
    r.finish();
    EnvRng rng_copy;
    try {
      rng_copy.set_state(rng);
    } catch (const EnvError&) {
      throw EnvError(label_ + ": restore: the snapshot's generator state is unreadable");
    }
    // Everything read: commit.
    mj_copyData(d_, m_, tmp);
    d_->ne = d_->nf = d_->nefc = 0;  // constraint arrays were not kept (see snapshot())
    rng_ = rng_copy;
    elapsed_steps_ = static_cast<int>(elapsed);
    needs_reset_ = needs_reset != 0;
  } catch (...) {
    mj_deleteData(tmp);
    throw;
  }
  mj_deleteData(tmp);
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
