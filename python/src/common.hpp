// Shared helpers of the rldt._core bindings: conversion between numpy arrays
// and torch tensors (always copies), argument validation with messages that
// name the argument, and a non-blocking in-use guard per bound object.
//
// Conventions at the boundary:
//   * float inputs: numpy float32 or float64 (anything np.asarray accepts);
//     float64 is rounded to float32. Other dtypes (int, bool, object, complex,
//     float16) raise rldt.ArgumentError (a ValueError) naming the argument.
//     Non-finite values raise too (float64 values beyond the float32 range
//     become inf and are caught here).
//   * outputs: new numpy float32 arrays (int64 for step indices).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/util/check.hpp"

namespace rldt_py {

namespace py = pybind11;

// Expected shape: one (size, symbol) per dimension; size -1 matches any size.
using Dim = std::pair<int64_t, std::string>;
using ShapeSpec = std::vector<Dim>;

// "(B, O) = (*, 11)"
std::string spec_to_string(const ShapeSpec& spec);

// numpy float32/float64 array-like → float32 tensor (copy). Checks the dtype,
// the shape against `spec` (when given) and that every value is finite.
torch::Tensor float_arg(py::handle obj, const std::string& name, const ShapeSpec& spec);
torch::Tensor float_arg_any_shape(py::handle obj, const std::string& name);
// 0/1 masks: bool, integer or float arrays → float32 tensor (the core checks the values).
torch::Tensor mask_arg(py::handle obj, const std::string& name, const ShapeSpec& spec);
// Integer arrays → int64 tensor.
torch::Tensor index_arg(py::handle obj, const std::string& name, const ShapeSpec& spec);

// Tensor → new numpy array (float32, int64 or bool; other dtypes as float32).
py::array to_numpy(const torch::Tensor& t);

// Raises rldt.ArgumentError unless `v` is finite.
void check_finite_scalar(double v, const std::string& name);

// Non-blocking guard against concurrent use of one object from several
// threads (the GIL is released inside the C++ calls). Reads may overlap;
// a write excludes everything else. The thread that holds the write may
// re-enter (a Python grad_fn called back during ActorUpdater.update may use
// the policy). A conflicting call raises RuntimeError instead of waiting.
class Usage {
 public:
  explicit Usage(std::string what) : what_(std::move(what)) {}
  class Lock {
   public:
    Lock() = default;
    Lock(Usage* u, bool write) : u_(u), write_(write) {}
    Lock(Lock&& o) noexcept : u_(std::exchange(o.u_, nullptr)), write_(o.write_) {}
    Lock& operator=(Lock&&) = delete;
    Lock(const Lock&) = delete;
    ~Lock();

   private:
    Usage* u_ = nullptr;
    bool write_ = false;
  };
  Lock read();
  Lock write();

 private:
  friend class Lock;
  [[noreturn]] void busy() const;
  std::mutex m_;
  std::string what_;
  int readers_ = 0;
  std::thread::id writer_{};
  int depth_ = 0;
};

// What the Python classes FlowPolicy / CriticEnsemble / ActorUpdater hold.
struct PolicyHandle {
  PolicyHandle(std::shared_ptr<rldt::FlowPolicy> p, uint64_t seed);
  std::shared_ptr<rldt::FlowPolicy> policy;
  at::Generator gen;
  Usage usage{"FlowPolicy"};
};

struct CriticHandle {
  explicit CriticHandle(std::unique_ptr<rldt::CriticEnsemble> c) : critic(std::move(c)) {}
  std::unique_ptr<rldt::CriticEnsemble> critic;
  Usage usage{"CriticEnsemble"};
};

struct UpdaterHandle {
  UpdaterHandle(std::shared_ptr<PolicyHandle> p, const rldt::ActorUpdateConfig& cfg, uint64_t seed);
  std::shared_ptr<PolicyHandle> policy;
  std::unique_ptr<rldt::ActorUpdater> updater;
  at::Generator gen;
  Usage usage{"ActorUpdater"};
};

// The SvgdResult diagnostics as a dict (grad_norm, repulsion_norm, particle_distance, bandwidth).
py::dict svgd_diagnostics(const rldt::SvgdResult& r);

// state_dict / load_state_dict over a module's named parameters.
py::dict module_state(const torch::nn::Module& m);
void load_module_state(torch::nn::Module& m, const py::dict& state, const std::string& what);

// The per-file binders, called from PYBIND11_MODULE in bindings.cpp (in this order).
void bind_configs(py::module_& m);
void bind_functional(py::module_& m);
void bind_policy(py::module_& m);
void bind_critic(py::module_& m);
void bind_actor(py::module_& m);
void bind_trainer(py::module_& m);
void bind_sac(py::module_& m);  // the SAC baseline (python/src/sac.cpp)
void bind_run_config(py::module_& m);
void bind_data(py::module_& m);  // datasets, pretrain, record (data.cpp)
void bind_envs(py::module_& m);  // the submodule _core._envs (rldt.envs wraps it)

}  // namespace rldt_py
