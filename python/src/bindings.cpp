// rldt._core: the module definition, exception mapping and the shared
// conversion helpers declared in common.hpp.
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <cstring>
#include <sstream>

#include "common.hpp"
#include "rldt/util/blas_threads.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/malloc_tuning.hpp"
#include "rldt/util/rng.hpp"

namespace rldt_py {

using rldt::ArgumentError;

// ---------------------------------------------------------------------------
// Array conversion
// ---------------------------------------------------------------------------

std::string spec_to_string(const ShapeSpec& spec) {
  std::ostringstream sym, num;
  sym << "(";
  num << "(";
  for (size_t i = 0; i < spec.size(); ++i) {
    if (i) {
      sym << ", ";
      num << ", ";
    }
    sym << spec[i].second;
    if (spec[i].first < 0)
      num << "*";
    else
      num << spec[i].first;
  }
  if (spec.size() == 1) {
    sym << ",";
    num << ",";
  }
  sym << ")";
  num << ")";
  return sym.str() + " = " + num.str();
}

namespace {

std::string shape_of(const py::array& a) {
  std::ostringstream os;
  os << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) os << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) os << ",";
  os << ")";
  return os.str();
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// np.asarray(obj), with a message naming the argument when that fails.
py::array as_array(py::handle obj, const std::string& name, const char* expected) {
  if (obj.is_none()) throw ArgumentError("argument '" + name + "' is None; expected " + expected);
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return py::module_::import("numpy").attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    throw ArgumentError("argument '" + name + "' cannot be converted to an array (" + e.what() + "); expected " +
                        expected);
  }
}

void check_shape(const py::array& a, const std::string& name, const ShapeSpec& spec) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(spec.size());
  for (size_t i = 0; ok && i < spec.size(); ++i) ok = spec[i].first < 0 || spec[i].first == a.shape(i);
  if (!ok)
    throw ArgumentError("argument '" + name + "' has shape " + shape_of(a) + "; expected " + spec_to_string(spec));
}

template <typename T>
torch::Tensor copy_to_tensor(const py::array& a, torch::ScalarType st) {
  auto c = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!c) throw py::error_already_set();
  std::vector<int64_t> shape(c.shape(), c.shape() + c.ndim());
  auto t = torch::empty(shape, torch::TensorOptions().dtype(st));
  if (t.numel() > 0) std::memcpy(t.data_ptr(), c.data(), static_cast<size_t>(t.numel()) * sizeof(T));
  return t;
}

torch::Tensor float_impl(py::handle obj, const std::string& name, const ShapeSpec* spec) {
  const std::string expected =
      "a float32 array" + (spec ? " of shape " + spec_to_string(*spec) : std::string()) + " (float64 is accepted)";
  py::array a = as_array(obj, name, expected.c_str());
  const char kind = a.dtype().kind();
  const auto size = a.dtype().itemsize();
  if (kind != 'f' || (size != 4 && size != 8))
    throw ArgumentError("argument '" + name + "' has dtype " + dtype_name(a) + "; expected float32 (float64 is " +
                        "accepted and rounded to float32; convert other dtypes explicitly)");
  if (spec) check_shape(a, name, *spec);
  // Rounded to float32 by torch, not numpy: float64 values beyond the float32 range
  // become inf (caught below) without a numpy overflow warning.
  auto t = size == 4 ? copy_to_tensor<float>(a, torch::kFloat32)
                     : copy_to_tensor<double>(a, torch::kFloat64).to(torch::kFloat32);
  rldt::check_finite(t, name);
  return t;
}

}  // namespace

torch::Tensor float_arg(py::handle obj, const std::string& name, const ShapeSpec& spec) {
  return float_impl(obj, name, &spec);
}

torch::Tensor float_arg_any_shape(py::handle obj, const std::string& name) { return float_impl(obj, name, nullptr); }

torch::Tensor mask_arg(py::handle obj, const std::string& name, const ShapeSpec& spec) {
  py::array a = as_array(obj, name, ("a 0/1 mask of shape " + spec_to_string(spec)).c_str());
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    throw ArgumentError("argument '" + name + "' has dtype " + dtype_name(a) +
                        "; expected a bool, integer or float 0/1 mask");
  check_shape(a, name, spec);
  return copy_to_tensor<float>(a, torch::kFloat32);
}

torch::Tensor index_arg(py::handle obj, const std::string& name, const ShapeSpec& spec) {
  py::array a = as_array(obj, name, ("an integer array of shape " + spec_to_string(spec)).c_str());
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw ArgumentError("argument '" + name + "' has dtype " + dtype_name(a) + "; expected an integer array");
  check_shape(a, name, spec);
  return copy_to_tensor<int64_t>(a, torch::kLong);
}

py::array to_numpy(const torch::Tensor& t_in) {
  auto t = t_in.detach().cpu();
  if (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kLong && t.scalar_type() != torch::kBool)
    t = t.to(torch::kFloat32);
  t = t.contiguous();
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  py::array out;
  if (t.scalar_type() == torch::kFloat32)
    out = py::array_t<float>(shape);
  else if (t.scalar_type() == torch::kLong)
    out = py::array_t<int64_t>(shape);
  else
    out = py::array_t<bool>(shape);
  if (t.numel() > 0) std::memcpy(out.mutable_data(), t.data_ptr(), static_cast<size_t>(t.nbytes()));
  return out;
}

void check_finite_scalar(double v, const std::string& name) {
  if (!std::isfinite(v)) throw ArgumentError("argument '" + name + "' must be finite, got " + std::to_string(v));
}

// ---------------------------------------------------------------------------
// Usage guard
// ---------------------------------------------------------------------------

void Usage::busy() const {
  throw std::runtime_error(what_ +
                           " is in use by another thread; one object must not be used from several threads at "
                           "once (give each thread its own object)");
}

Usage::Lock Usage::read() {
  std::lock_guard<std::mutex> g(m_);
  const auto me = std::this_thread::get_id();
  if (writer_ != std::thread::id{} && writer_ != me) busy();
  ++readers_;
  return Lock(this, false);
}

Usage::Lock Usage::write() {
  std::lock_guard<std::mutex> g(m_);
  const auto me = std::this_thread::get_id();
  if (writer_ == me) {
    ++depth_;
    return Lock(this, true);
  }
  if (writer_ != std::thread::id{} || readers_ > 0) busy();
  writer_ = me;
  depth_ = 1;
  return Lock(this, true);
}

Usage::Lock::~Lock() {
  if (!u_) return;
  std::lock_guard<std::mutex> g(u_->m_);
  if (write_) {
    if (--u_->depth_ == 0) u_->writer_ = std::thread::id{};
  } else {
    --u_->readers_;
  }
}

// ---------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------

PolicyHandle::PolicyHandle(std::shared_ptr<rldt::FlowPolicy> p, uint64_t seed)
    : policy(std::move(p)), gen(rldt::make_generator(seed)) {}

UpdaterHandle::UpdaterHandle(std::shared_ptr<PolicyHandle> p, const rldt::ActorUpdateConfig& cfg, uint64_t seed)
    : policy(std::move(p)), gen(rldt::make_generator(seed)) {
  if (!policy) throw ArgumentError("argument 'policy' is None; expected a FlowPolicy");
  updater = std::make_unique<rldt::ActorUpdater>(policy->policy, cfg);
}

py::dict module_state(const torch::nn::Module& m) {
  py::dict d;
  for (const auto& p : m.named_parameters(true)) d[py::str(p.key())] = to_numpy(p.value());
  for (const auto& b : m.named_buffers(true)) d[py::str(b.key())] = to_numpy(b.value());
  return d;
}

void load_module_state(torch::nn::Module& m, const py::dict& state, const std::string& what) {
  auto params = m.named_parameters(true);
  auto buffers = m.named_buffers(true);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> todo;  // validate everything before copying
  size_t expected = 0;
  auto take = [&](const std::string& key, torch::Tensor& dst) {
    ++expected;
    if (!state.contains(key)) throw ArgumentError(what + ": state dict lacks the entry '" + key + "'");
    ShapeSpec spec;
    for (auto s : dst.sizes()) spec.emplace_back(s, std::to_string(s));
    todo.emplace_back(dst, float_arg(state[py::str(key)], "state['" + key + "']", spec));
  };
  for (auto& p : params) take(p.key(), p.value());
  for (auto& b : buffers) take(b.key(), b.value());
  for (auto item : state) {
    auto key = py::str(item.first).cast<std::string>();
    if (!params.contains(key) && !buffers.contains(key))
      throw ArgumentError(what + ": state dict has an unknown entry '" + key + "'");
  }
  (void)expected;
  torch::NoGradGuard ng;
  for (auto& [dst, src] : todo) dst.copy_(src);
}

}  // namespace rldt_py

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace rldt_py;
  m.doc() = R"doc(rldt._core: Python bindings of the rldt C++ library (RLDT: flow policies fine-tuned by SVGD
density transport, ALGORITHM.md).

Arrays: inputs are numpy float32 arrays (float64 is accepted and rounded to float32; other dtypes
raise). They are copied into the library, outputs are new float32 numpy arrays. Wrong dtypes,
shapes or non-finite values raise rldt.ArgumentError (a ValueError) naming the argument; other
library failures (e.g. a file that cannot be read) raise RuntimeError.

Shape symbols: B states, N rows (N = B*P in the actor update), P particles per state, H
horizon_steps (chunk length), d action_dim, A = H*d, K denoising_steps, O obs_dim, E act_steps
(the chunk steps the critic sees; chunks may be longer, only the first E steps are used), M
ensemble_size, S policy samples per state, T steps of a trajectory segment.

Randomness: FlowPolicy and ActorUpdater each own a torch CPU generator, seeded by the `seed`
argument of the constructor (or load) and re-seedable with `.seed(s)`; every random draw of that
object uses it, so results are reproducible. Network initialisation (FlowPolicy, CriticEnsemble)
draws from a generator seeded with the constructor's `seed`, so results do not depend on torch's
global generator.

Threads: the GIL is released inside the C++ calls (a Python grad_fn is called back with the GIL
held). One object must not be used from several threads at once: a conflicting call raises
RuntimeError instead of racing.)doc";

  // ArgumentError (C++ rldt::ArgumentError, bad arguments/shapes/dtypes/options) → rldt.ArgumentError(ValueError).
  py::register_exception<rldt::ArgumentError>(m, "ArgumentError", PyExc_ValueError);
  // Errors raised inside LibTorch: drop the C++ backtrace from the message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const c10::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });

  bind_configs(m);
  bind_functional(m);
  bind_policy(m);
  bind_critic(m);
  bind_actor(m);
  bind_trainer(m);
  bind_sac(m);
  bind_run_config(m);
  bind_data(m);
  m.def("blas_num_threads", &rldt::blas_num_threads,
        "Threads the loaded BLAS (OpenBLAS, which LibTorch's matmuls use here) runs per call; 0 if it has no "
        "such setting. Independent of torch.get_num_threads().");
  m.def(
      "set_blas_num_threads",
      [](int n) {
        rldt::check_arg(n >= 1, "argument 'n' must be >= 1, got ", n);
        return rldt::set_blas_num_threads(n);
      },
      py::arg("n"),
      "Sets the BLAS thread count for the whole process; returns False (changing nothing) if the loaded BLAS "
      "has no such setting. OPENBLAS_NUM_THREADS sets the starting value.");
  m.def(
      "tune_malloc_for_training", [] { return std::string(rldt::to_string(rldt::tune_malloc_for_training())); },
      "Raises glibc's malloc thresholds once per process so the memory of freed tensors stays mapped between "
      "training steps (the trainers, ActorUpdater, CriticEnsemble, Sac and pretrain call it). Returns 'applied', "
      "'disabled' (RLDT_MALLOC_TUNING=0), 'user_tuned' (GLIBC_TUNABLES or MALLOC_* set) or 'unsupported'. "
      "Raises ArgumentError if RLDT_MALLOC_TUNING is neither 0 nor 1.");
  auto envs = m.def_submodule("_envs");
  bind_envs(envs);
}
