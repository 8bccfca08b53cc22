// rldt._envs: thin bindings of the native environments (rldt_envs) for python/rldt/envs.py.
//
// Conversion only: actions are copied from numpy into a buffer owned here, the pool steps with the
// GIL released, and the results are copied into new numpy arrays (observations float32 or float64,
// rewards float64, flags bool). The Gymnasium-style vector API is assembled in rldt/envs.py.
//
// Registered as the submodule rldt._core._envs (bind_envs, called from bindings.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"
#include "rldt/envs/renderer.hpp"
#include "rldt/envs/vec_env.hpp"

namespace py = pybind11;

namespace {

using rldt::EnvError;

std::string shape_str(const py::array& a) {
  std::ostringstream os;
  os << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) os << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) os << ",";
  os << ")";
  return os.str();
}

std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ",";
  os << ")";
  return os.str();
}

// Copies a real-valued array of exactly `shape` into dst (row-major float64).
void copy_real(py::handle obj, const std::vector<py::ssize_t>& shape, const std::string& what,
               std::vector<double>& dst) {
  py::array a = py::isinstance<py::array>(obj) ? py::reinterpret_borrow<py::array>(obj)
                                                : py::module_::import("numpy").attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw EnvError(what + " has dtype " + py::str(a.dtype()).cast<std::string>() + "; expected a real-valued array");
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) throw EnvError(what + " has shape " + shape_str(a) + "; expected " + shape_str(shape));
  auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!c) throw py::error_already_set();
  dst.resize(static_cast<size_t>(c.size()));
  if (c.size()) std::memcpy(dst.data(), c.data(), dst.size() * sizeof(double));
}

template <typename T, typename S>
py::array_t<T> to_array(const S* src, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  T* p = out.mutable_data();
  for (py::ssize_t k = 0; k < out.size(); ++k) p[k] = static_cast<T>(src[k]);
  return out;
}

// The StepInfo fields by Gymnasium's key.
double info_value(const rldt::StepInfo& s, const std::string& key) {
  if (key == "x_position") return s.x_position;
  if (key == "y_position") return s.y_position;
  if (key == "z_distance_from_origin") return s.z_distance_from_origin;
  if (key == "distance_from_origin") return s.distance_from_origin;
  if (key == "x_velocity") return s.x_velocity;
  if (key == "y_velocity") return s.y_velocity;
  if (key == "reward_forward") return s.reward_forward;
  if (key == "reward_ctrl") return s.reward_ctrl;
  if (key == "reward_contact") return s.reward_contact;
  if (key == "reward_survive") return s.reward_survive;
  throw EnvError("unknown info key '" + key + "'");
}

class PyVecEnv {
 public:
  PyVecEnv(const std::string& task, int num_envs, int num_threads, const rldt::EnvOptions& options,
           bool float64_obs)
      : vec_(task, num_envs, num_threads, options), f64_(float64_obs) {}

  int num_envs() const { return vec_.num_envs(); }
  int num_threads() const { return vec_.num_threads(); }

  py::dict spec() const {
    const rldt::EnvSpec& s = vec_.spec();
    py::dict d;
    d["name"] = s.name;
    d["obs_low"] = to_array<double>(s.observation.low.data(), {(py::ssize_t)s.observation.size()});
    d["obs_high"] = to_array<double>(s.observation.high.data(), {(py::ssize_t)s.observation.size()});
    d["act_low"] = to_array<double>(s.action.low.data(), {(py::ssize_t)s.action.size()});
    d["act_high"] = to_array<double>(s.action.high.data(), {(py::ssize_t)s.action.size()});
    d["max_episode_steps"] = s.max_episode_steps;
    d["frame_skip"] = s.frame_skip;
    d["timestep"] = s.timestep;
    d["dt"] = s.dt;
    d["nq"] = s.nq;
    d["nv"] = s.nv;
    d["info_keys"] = s.info_keys;
    return d;
  }

  py::dict reset(std::optional<uint64_t> seed) {
    auto guard = lock("reset");
    {
      py::gil_scoped_release nogil;
      last_ = seed ? &vec_.reset(*seed) : &vec_.reset();
    }
    py::dict d;
    d["obs"] = obs_array();
    add_info(d);
    return d;
  }

  py::dict step(py::handle actions) {
    auto guard = lock("step");
    copy_real(actions, {num_envs(), vec_.act_dim()}, vec_.spec().name + ": actions", actions_);
    {
      py::gil_scoped_release nogil;
      last_ = &vec_.step(actions_);
    }
    return results();
  }

  py::dict step_chunk(py::handle chunks, int act_steps) {
    auto guard = lock("step_chunk");
    py::array a = py::module_::import("numpy").attr("asarray")(chunks);
    if (a.ndim() != 3)
      throw EnvError(vec_.spec().name + ": chunks has shape " + shape_str(a) + "; expected (num_envs, H, act_dim) = (" +
                     std::to_string(num_envs()) + ", H, " + std::to_string(vec_.act_dim()) + ")");
    const int h = static_cast<int>(a.shape(1));
    copy_real(a, {num_envs(), h, vec_.act_dim()}, vec_.spec().name + ": chunks", actions_);
    {
      py::gil_scoped_release nogil;
      last_ = &vec_.step_chunk(actions_, h, act_steps);
    }
    return results();
  }

  py::tuple get_state(int i) {
    auto guard = lock("get_state");
    rldt::MujocoEnv& e = vec_.env(i);
    std::vector<double> qpos(e.spec().nq), qvel(e.spec().nv);
    e.get_state(qpos, qvel);
    return py::make_tuple(to_array<double>(qpos.data(), {(py::ssize_t)qpos.size()}),
                          to_array<double>(qvel.data(), {(py::ssize_t)qvel.size()}));
  }

  void set_state(int i, py::handle qpos, py::handle qvel) {
    auto guard = lock("set_state");
    rldt::MujocoEnv& e = vec_.env(i);
    std::vector<double> q, v;
    copy_real(qpos, {e.spec().nq}, e.label() + ": qpos", q);
    copy_real(qvel, {e.spec().nv}, e.label() + ": qvel", v);
    e.set_state(q, v);
  }

  py::array observe(int i) {
    auto guard = lock("observe");
    rldt::MujocoEnv& e = vec_.env(i);
    std::vector<double> obs(e.spec().observation.size());
    e.observe(obs);
    if (f64_) return to_array<double>(obs.data(), {(py::ssize_t)obs.size()});
    return to_array<float>(obs.data(), {(py::ssize_t)obs.size()});
  }

  py::array render(int i, int width, int height, int camera) {
    auto guard = lock("render");
    rldt::MujocoEnv& e = vec_.env(i);
    if (!renderer_ || width != rw_ || height != rh_ || camera != rcam_) {
      renderer_.reset();
      renderer_ = std::make_unique<rldt::Renderer>(e, width, height, camera);
      rw_ = width;
      rh_ = height;
      rcam_ = camera;
    }
    py::array_t<uint8_t> out({(py::ssize_t)height, (py::ssize_t)width, (py::ssize_t)3});
    rldt::Span<uint8_t> view(out.mutable_data(), static_cast<size_t>(out.size()));
    {
      py::gil_scoped_release nogil;
      renderer_->render_into(e, view);
    }
    return out;
  }

  void close() {
    auto guard = lock("close");
    renderer_.reset();
  }

 private:
  // Non-blocking guard: the GIL is released while stepping, so a second Python thread could call
  // in; that is an error rather than a data race.
  std::unique_lock<std::mutex> lock(const char* what) {
    std::unique_lock<std::mutex> l(mutex_, std::try_to_lock);
    if (!l.owns_lock())
      throw std::runtime_error(vec_.spec().name + " VecEnv." + what +
                               ": the env is in use by another thread; use one env object per thread");
    return l;
  }

  const rldt::VecStep& last() const { return *last_; }

  py::array obs_array() const {
    const std::vector<double>& o = last().obs;
    std::vector<py::ssize_t> shape = {num_envs(), vec_.obs_dim()};
    if (f64_) return to_array<double>(o.data(), shape);
    return to_array<float>(o.data(), shape);
  }

  void add_info(py::dict& d) const {
    const rldt::VecStep& r = last();
    const py::ssize_t n = num_envs();
    py::dict info;
    for (const auto& key : vec_.spec().info_keys) {
      py::array_t<double> a(n);
      for (py::ssize_t i = 0; i < n; ++i) a.mutable_data()[i] = info_value(r.info[i], key);
      info[py::str(key)] = a;
    }
    py::array_t<bool> unstable(n);
    py::array_t<int32_t> elapsed(n);
    for (py::ssize_t i = 0; i < n; ++i) {
      unstable.mutable_data()[i] = r.info[i].unstable;
      elapsed.mutable_data()[i] = r.info[i].elapsed_steps;
    }
    info["unstable"] = unstable;
    info["elapsed_steps"] = elapsed;
    d["info"] = info;
  }

  py::dict results() const {
    const rldt::VecStep& r = last();
    const py::ssize_t n = num_envs();
    py::dict d;
    d["obs"] = obs_array();
    d["reward"] = to_array<double>(r.reward.data(), {n});
    d["terminated"] = to_array<bool>(r.terminated.data(), {n});
    d["truncated"] = to_array<bool>(r.truncated.data(), {n});
    std::vector<py::ssize_t> shape = {n, vec_.obs_dim()};
    d["final_obs"] = f64_ ? py::array(to_array<double>(r.final_obs.data(), shape))
                          : py::array(to_array<float>(r.final_obs.data(), shape));
    d["episode_return"] = to_array<double>(r.episode_return.data(), {n});
    d["episode_length"] = to_array<int32_t>(r.episode_length.data(), {n});
    d["steps_executed"] = to_array<int32_t>(r.steps_executed.data(), {n});
    add_info(d);
    return d;
  }

  rldt::VecEnv vec_;
  bool f64_;
  const rldt::VecStep* last_ = nullptr;  // VecEnv's result buffer, set by the last call
  std::vector<double> actions_;  // [N, (H,) act_dim] staging buffer
  std::unique_ptr<rldt::Renderer> renderer_;
  int rw_ = 0, rh_ = 0, rcam_ = -2;
  std::mutex mutex_;
};

}  // namespace

namespace rldt_py {
void bind_envs(py::module_& m) {
  m.doc() = "Native MuJoCo environments (rldt_envs); use rldt.envs, which wraps this module.";

  m.def("names", &rldt::env_names, "Task ids.");
  m.def("option_names", &rldt::env_option_names, py::arg("task"), "Option names accepted by `task`.");
  m.def("renderer_available", &rldt::renderer_available, "True when built with OSMesa rendering.");
  m.def(
      "write_png",
      [](const std::string& path, py::array_t<uint8_t, py::array::c_style | py::array::forcecast> rgb) {
        if (rgb.ndim() != 3 || rgb.shape(2) != 3)
          throw EnvError("write_png(" + path + "): frame has shape " + shape_str(rgb) + "; expected (H, W, 3) uint8");
        std::vector<uint8_t> bytes(rgb.data(), rgb.data() + rgb.size());
        rldt::write_png(path, bytes, static_cast<int>(rgb.shape(1)), static_cast<int>(rgb.shape(0)));
      },
      py::arg("path"), py::arg("rgb"), "Writes an (H, W, 3) uint8 frame as a PNG file.");

  py::class_<PyVecEnv>(m, "VecEnv")
      .def(py::init<const std::string&, int, int, const rldt::EnvOptions&, bool>(),
           py::arg("task"), py::arg("num_envs"), py::arg("num_threads"), py::arg("options"), py::arg("float64_obs"))
      .def_property_readonly("num_envs", &PyVecEnv::num_envs)
      .def_property_readonly("num_threads", &PyVecEnv::num_threads)
      .def("spec", &PyVecEnv::spec)
      .def("reset", &PyVecEnv::reset, py::arg("seed"))
      .def("step", &PyVecEnv::step, py::arg("actions"))
      .def("step_chunk", &PyVecEnv::step_chunk, py::arg("chunks"), py::arg("act_steps"))
      .def("get_state", &PyVecEnv::get_state, py::arg("index"))
      .def("set_state", &PyVecEnv::set_state, py::arg("index"), py::arg("qpos"), py::arg("qvel"))
      .def("observe", &PyVecEnv::observe, py::arg("index"))
      .def("render", &PyVecEnv::render, py::arg("index"), py::arg("width"), py::arg("height"), py::arg("camera"))
      .def("close", &PyVecEnv::close);
}
}  // namespace rldt_py
