// rldt_golden: the C++ side of the C++-vs-Python parity tests
// (tests/python/test_cpp_parity.py). It reads one input file, runs the library
// on it and writes the outputs, so the Python bindings can be compared with a
// plain C++ caller on identical inputs.
//
// Usage: rldt_golden INPUT OUTPUT
//
// File format (input and output alike), a text header line followed by records:
//   RLDT-GOLDEN 1\n
//   param <key> <value>\n                          value without spaces
//   tensor <name> <f32|i64> <ndim> <d0> ... \n    then prod(d)·itemsize raw
//                                                  little-endian bytes, C order
//   end\n
//
// Input `param task` selects the computation:
//   svgd   tensors queries, particles, grads [, last_step f32 0/1]; params of
//          SvgdConfig (svgd_temp, bandwidth, q_norm, q_norm_min, q_norm_max,
//          q_norm_eps, field) → tensor phi; params grad_norm, repulsion_norm,
//          particle_distance, bandwidth
//   td     tensors rewards, next_values, terminated, truncated; params gamma,
//          lambda, n, bootstrap_truncated → tensors td_lambda, nstep
//   actor  params policy, critic (files), out_policy (file to write), seed,
//          steps, member, ActorUpdateConfig fields (n_particles, lr,
//          lr_warmup_steps, c_cons, kl_coef, svgd.* as svgd_temp, ...);
//          tensor obs → tensors loss, align, cons, ref, lr (steps,), phi (last
//          step, (B, P, A)), batch_k (first step, (N,)); the updated policy
//          saved to out_policy
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "rldt/algo/critic_ensemble.hpp"
#include "rldt/algo/expected_target.hpp"
#include "rldt/algo/flow_policy.hpp"
#include "rldt/algo/svgd.hpp"
#include "rldt/algo/td_targets.hpp"
#include "rldt/util/rng.hpp"

namespace {

constexpr const char* kMagic = "RLDT-GOLDEN 1";

struct Bundle {
  std::map<std::string, std::string> params;
  std::map<std::string, torch::Tensor> tensors;

  const std::string& param(const std::string& key) const {
    auto it = params.find(key);
    if (it == params.end()) throw std::runtime_error("missing param '" + key + "'");
    return it->second;
  }
  std::string param_or(const std::string& key, const std::string& fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
  double num(const std::string& key) const { return std::stod(param(key)); }
  double num_or(const std::string& key, double fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : std::stod(it->second);
  }
  const torch::Tensor& tensor(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error("missing tensor '" + name + "'");
    return it->second;
  }
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
};

Bundle read_bundle(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::string line;
  if (!std::getline(in, line) || line != kMagic) throw std::runtime_error("'" + path + "' is not a golden file");
  Bundle b;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "end") return b;
    if (kind == "param") {
      std::string key, value;
      ls >> key >> value;
      b.params[key] = value;
    } else if (kind == "tensor") {
      std::string name, dtype;
      int64_t ndim = 0;
      ls >> name >> dtype >> ndim;
      std::vector<int64_t> dims(static_cast<size_t>(ndim));
      for (auto& d : dims) ls >> d;
      if (!ls) throw std::runtime_error("bad tensor header: " + line);
      const auto st = dtype == "f32" ? torch::kFloat32 : dtype == "i64" ? torch::kLong : torch::kByte;
      if (st == torch::kByte) throw std::runtime_error("unknown dtype '" + dtype + "'");
      auto t = torch::empty(dims, torch::TensorOptions().dtype(st));
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
      if (!in) throw std::runtime_error("'" + path + "': truncated data of tensor '" + name + "'");
      b.tensors[name] = t;
    } else {
      throw std::runtime_error("'" + path + "': unknown record '" + line + "'");
    }
  }
  throw std::runtime_error("'" + path + "' has no 'end' record");
}

void write_bundle(const Bundle& b, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out << kMagic << "\n";
  for (const auto& [k, v] : b.params) out << "param " << k << " " << v << "\n";
  for (const auto& [name, t0] : b.tensors) {
    auto t = t0.contiguous();
    const char* dtype = t.scalar_type() == torch::kLong ? "i64" : "f32";
    if (t.scalar_type() != torch::kLong) t = t.to(torch::kFloat32).contiguous();
    out << "tensor " << name << " " << dtype << " " << t.dim();
    for (auto d : t.sizes()) out << " " << d;
    out << "\n";
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  }
  out << "end\n";
  if (!out) throw std::runtime_error("error writing '" + path + "'");
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

rldt::SvgdConfig svgd_config(const Bundle& in) {
  rldt::SvgdConfig c;
  c.svgd_temp = in.num_or("svgd_temp", c.svgd_temp);
  c.bandwidth = in.num_or("bandwidth", c.bandwidth);
  c.q_norm = in.param_or("q_norm", c.q_norm);
  c.q_norm_min = in.num_or("q_norm_min", c.q_norm_min);
  c.q_norm_max = in.num_or("q_norm_max", c.q_norm_max);
  c.q_norm_eps = in.num_or("q_norm_eps", c.q_norm_eps);
  c.field = in.param_or("field", c.field);
  return c;
}

Bundle run_svgd(const Bundle& in) {
  torch::Tensor last;
  if (in.has("last_step")) last = in.tensor("last_step") > 0.5;
  auto r = rldt::svgd_direction(in.tensor("queries"), in.tensor("particles"), in.tensor("grads"), svgd_config(in), last);
  Bundle out;
  out.tensors["phi"] = r.phi;
  out.params["grad_norm"] = fmt(r.grad_norm);
  out.params["repulsion_norm"] = fmt(r.repulsion_norm);
  out.params["particle_distance"] = fmt(r.particle_distance);
  out.params["bandwidth"] = fmt(r.bandwidth);
  return out;
}

Bundle run_td(const Bundle& in) {
  const auto& r = in.tensor("rewards");
  const auto& v = in.tensor("next_values");
  const auto& term = in.tensor("terminated");
  const auto& trunc = in.tensor("truncated");
  const bool boot = in.param_or("bootstrap_truncated", "1") == "1";
  Bundle out;
  out.tensors["td_lambda"] = rldt::td_lambda_targets(r, v, term, trunc, in.num("gamma"), in.num("lambda"), boot);
  out.tensors["nstep"] =
      rldt::nstep_targets(r, v, term, trunc, in.num("gamma"), static_cast<int64_t>(in.num("n")), boot);
  return out;
}

Bundle run_actor(const Bundle& in) {
  auto policy = std::make_shared<rldt::FlowPolicy>(rldt::FlowPolicy::load(in.param("policy")));
  auto critic = rldt::CriticEnsemble::load(in.param("critic"));
  rldt::ActorUpdateConfig cfg;
  cfg.n_particles = static_cast<int64_t>(in.num_or("n_particles", static_cast<double>(cfg.n_particles)));
  cfg.lr = in.num_or("lr", cfg.lr);
  cfg.lr_warmup_steps = static_cast<int64_t>(in.num_or("lr_warmup_steps", static_cast<double>(cfg.lr_warmup_steps)));
  cfg.c_cons = in.num_or("c_cons", cfg.c_cons);
  cfg.kl_coef = in.num_or("kl_coef", cfg.kl_coef);
  cfg.svgd = svgd_config(in);
  rldt::ActorUpdater upd(policy, cfg);
  auto gen = rldt::make_generator(static_cast<uint64_t>(in.num("seed")));
  const int64_t member = static_cast<int64_t>(in.num_or("member", -1));
  rldt::ActionGradFn grad_fn = [&](const torch::Tensor& o, const torch::Tensor& a) {
    return critic.action_grad(o, a, member);
  };
  const auto& obs = in.tensor("obs");
  const int64_t steps = static_cast<int64_t>(in.num_or("steps", 1));
  std::vector<double> loss, align, cons, ref, lr;
  Bundle out;
  for (int64_t s = 0; s < steps; ++s) {
    auto batch = upd.prepare(obs, grad_fn, gen);
    if (s == 0) out.tensors["batch_k"] = batch.k;
    auto st = upd.step(batch, grad_fn);
    loss.push_back(st.loss);
    align.push_back(st.align);
    cons.push_back(st.cons);
    ref.push_back(st.ref);
    lr.push_back(st.lr);
    out.tensors["phi"] = st.svgd.phi;
  }
  auto vec = [](const std::vector<double>& v) {
    return torch::tensor(v, torch::TensorOptions().dtype(torch::kDouble)).to(torch::kFloat32);
  };
  out.tensors["loss"] = vec(loss);
  out.tensors["align"] = vec(align);
  out.tensors["cons"] = vec(cons);
  out.tensors["ref"] = vec(ref);
  out.tensors["lr"] = vec(lr);
  // Exact scalars too (float32 tensors round them).
  for (size_t s = 0; s < loss.size(); ++s) {
    out.params["loss_" + std::to_string(s)] = fmt(loss[s]);
    out.params["lr_" + std::to_string(s)] = fmt(lr[s]);
  }
  policy->save(in.param("out_policy"));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: rldt_golden INPUT OUTPUT\n";
    return 2;
  }
  try {
    const Bundle in = read_bundle(argv[1]);
    const std::string task = in.param("task");
    Bundle out;
    if (task == "svgd")
      out = run_svgd(in);
    else if (task == "td")
      out = run_td(in);
    else if (task == "actor")
      out = run_actor(in);
    else
      throw std::runtime_error("unknown task '" + task + "'");
    out.params["task"] = task;
    write_bundle(out, argv[2]);
  } catch (const c10::Error& e) {
    std::cerr << "rldt_golden: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "rldt_golden: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
