// FlowPolicy: the flow-matching actor with its EMA and reference copies.
#include <pybind11/stl/filesystem.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "common.hpp"
#include "rldt/algo/inference_policy.hpp"

namespace rldt_py {

namespace {

using rldt::FlowPolicy;
using rldt::FlowPolicyConfig;

rldt::VelocityNet& pick_net(FlowPolicy& p, const std::string& net) {
  rldt::check_choice(net, "net", {"actor", "ema", "reference"});
  if (net == "ema") return p.ema();
  if (net == "reference") return p.reference();
  return p.actor();
}

ShapeSpec obs_spec(const FlowPolicyConfig& c, int64_t n = -1, const char* sym = "B") {
  return {{n, sym}, {c.obs_dim, "O"}};
}
ShapeSpec chunk_spec(const FlowPolicyConfig& c, int64_t n = -1, const char* sym = "N") {
  return {{n, sym}, {c.horizon_steps, "H"}, {c.action_dim, "d"}};
}

// What the Python class InferencePolicy holds (a weight snapshot with scratch buffers).
struct InferenceHandle {
  explicit InferenceHandle(std::unique_ptr<rldt::InferencePolicy> f) : fast(std::move(f)) {}
  std::unique_ptr<rldt::InferencePolicy> fast;
  Usage usage{"InferencePolicy"};
};

// InferencePolicy.act / .sample: (actions,) or (actions, chain) as numpy arrays.
py::tuple inference_sample(InferenceHandle& h, const py::object& obs, const py::object& x0, bool with_chain) {
  const auto& c = h.fast->config();
  auto o = float_arg(obs, "obs", obs_spec(c)).contiguous();
  const int64_t B = o.size(0);
  rldt::check_arg(B >= 1, "argument 'obs' holds no rows");
  torch::Tensor x, chain;
  if (!x0.is_none()) x = float_arg(x0, "x0", chunk_spec(c, B, "B")).contiguous();
  auto out = torch::empty({B, c.horizon_steps, c.action_dim});
  if (with_chain) chain = torch::empty({B, c.denoising_steps + 1, c.horizon_steps, c.action_dim});
  {
    auto lock = h.usage.write();
    py::gil_scoped_release nogil;
    h.fast->sample(o.data_ptr<float>(), B, x.defined() ? x.data_ptr<float>() : nullptr, out.data_ptr<float>(),
                   with_chain ? chain.data_ptr<float>() : nullptr);
  }
  return with_chain ? py::make_tuple(to_numpy(out), to_numpy(chain)) : py::make_tuple(to_numpy(out));
}

}  // namespace

void bind_policy(py::module_& m) {
  py::class_<PolicyHandle, std::shared_ptr<PolicyHandle>>(m, "FlowPolicy",
                                                          R"doc(Flow-matching actor (ALGORITHM.md section 1).

Velocity network v_theta(x, t | s) over action chunks x (H, d), Euler sampling with the whole
chain, a behaviour-cloning (flow matching) loss, an EMA copy and a frozen reference copy.

FlowPolicy(config, seed=0): `seed` initialises the weights (from a generator of its own, as the C++
constructor does) and seeds the policy's own generator, which every random draw of this object
(sample, act, bc_loss, bc_update) uses; re-seed it with .seed(s).)doc")
      .def(py::init([](const FlowPolicyConfig& cfg, uint64_t seed) {
             return std::make_shared<PolicyHandle>(std::make_shared<FlowPolicy>(cfg, seed), seed);
           }),
           py::arg("config"), py::arg("seed") = 0)
      .def_property_readonly(
          "config", [](PolicyHandle& h) { return h.policy->config(); }, "a copy of the FlowPolicyConfig")
      .def(
          "seed",
          [](PolicyHandle& h, uint64_t s) {
            auto lock = h.usage.write();
            std::lock_guard<std::mutex> g(h.gen.mutex());
            h.gen.set_current_seed(s);
          },
          py::arg("seed"), "Re-seeds this policy's generator.")
      .def(
          "sample",
          [](PolicyHandle& h, const py::object& obs, bool deterministic) {
            auto o = float_arg(obs, "obs", obs_spec(h.policy->config()));
            rldt::FlowSample s;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              s = h.policy->sample(o, h.gen, deterministic);
            }
            return py::make_tuple(to_numpy(s.actions), to_numpy(s.chain));
          },
          py::arg("obs"), py::arg("deterministic") = false,
          R"doc(Euler sampling with the trained actor. obs (B, O) -> (actions (B, H, d), chain (B, K+1, H, d)).
x_0 ~ N(0, I) (x_0 = 0 if deterministic), x_{k+1} = x_k + v(x_k, k/K | s) / K; actions = x_K,
clamped when final_action_clip > 0 (the chain is not clamped).)doc")
      .def(
          "act",
          [](PolicyHandle& h, const py::object& obs, bool deterministic) {
            auto o = float_arg(obs, "obs", obs_spec(h.policy->config()));
            torch::Tensor a;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              a = h.policy->act(o, h.gen, deterministic);
            }
            return to_numpy(a);
          },
          py::arg("obs"), py::arg("deterministic") = false,
          "Final actions only: obs (B, O) -> (B, H, d). Same draws as sample().")
      .def(
          "expected_target",
          [](PolicyHandle& h, const py::object& x_k, const py::object& k, const py::object& obs) {
            const auto& c = h.policy->config();
            auto x = float_arg(x_k, "x_k", chunk_spec(c));
            const int64_t n = x.size(0);
            auto kk = index_arg(k, "k", {{n, "N"}});
            auto o = float_arg(obs, "obs", obs_spec(c, n, "N"));
            torch::Tensor y;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              torch::NoGradGuard ng;
              y = h.policy->expected_target(x, kk, o);
            }
            return to_numpy(y);
          },
          py::arg("x_k"), py::arg("k"), py::arg("obs"),
          R"doc(Expected target y = x_k + (1 - t) v(x_k, t | s), t = k/K (x_pred: the predicted x), with the
trained actor. x_k (N, H, d), k (N,) integers in [0, K), obs (N, O) -> (N, H, d).)doc")
      .def(
          "forward",
          [](PolicyHandle& h, const py::object& x, const py::object& t, const py::object& obs, const std::string& net) {
            const auto& c = h.policy->config();
            auto xx = float_arg(x, "x", chunk_spec(c));
            const int64_t n = xx.size(0);
            auto tt = float_arg(t, "t", {{n, "N"}});
            auto o = float_arg(obs, "obs", obs_spec(c, n, "N"));
            auto& v = pick_net(*h.policy, net);
            torch::Tensor out;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              torch::NoGradGuard ng;
              out = v->forward(xx, tt, o);
            }
            return to_numpy(out);
          },
          py::arg("x"), py::arg("t"), py::arg("obs"), py::arg("net") = "actor",
          R"doc(Raw network output (a velocity for v_pred, the clean action for x_pred).
x (N, H, d), t (N,) in [0, 1], obs (N, O) -> (N, H, d). net: 'actor' | 'ema' | 'reference'.)doc")
      .def(
          "bc_loss",
          [](PolicyHandle& h, const py::object& obs, const py::object& actions) {
            const auto& c = h.policy->config();
            auto a = float_arg(actions, "actions", chunk_spec(c));
            auto o = float_arg(obs, "obs", obs_spec(c, a.size(0), "N"));
            double l;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              torch::NoGradGuard ng;
              l = h.policy->bc_loss(o, a, h.gen).item<double>();
            }
            return l;
          },
          py::arg("obs"), py::arg("actions"),
          "Flow-matching behaviour-cloning loss on obs (N, O), actions (N, H, d) (draws z and t).")
      .def(
          "bc_update",
          [](PolicyHandle& h, const py::object& obs, const py::object& actions) {
            const auto& c = h.policy->config();
            auto a = float_arg(actions, "actions", chunk_spec(c));
            auto o = float_arg(obs, "obs", obs_spec(c, a.size(0), "N"));
            double l;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.write();
              l = h.policy->bc_update(o, a, h.gen);
            }
            return l;
          },
          py::arg("obs"), py::arg("actions"),
          "One AdamW step on bc_loss, then an EMA update; returns the loss. obs (N, O), actions (N, H, d).")
      .def(
          "update_ema",
          [](PolicyHandle& h) {
            auto lock = h.usage.write();
            h.policy->update_ema();
          },
          "ema <- decay * ema + (1 - decay) * actor")
      .def(
          "load_ema_into_actor",
          [](PolicyHandle& h) {
            auto lock = h.usage.write();
            h.policy->load_ema_into_actor();
          },
          "actor <- ema (fine-tuning starts from the EMA weights)")
      .def(
          "refresh_reference",
          [](PolicyHandle& h) {
            auto lock = h.usage.write();
            h.policy->refresh_reference();
          },
          "reference <- actor")
      .def(
          "state_dict",
          [](PolicyHandle& h, const std::string& net) {
            auto lock = h.usage.read();
            return module_state(*pick_net(*h.policy, net));
          },
          py::arg("net") = "actor",
          "Parameters of one network as {name: float32 array}; net: 'actor' | 'ema' | 'reference'.")
      .def(
          "load_state_dict",
          [](PolicyHandle& h, const py::dict& state, const std::string& net) {
            auto lock = h.usage.write();
            load_module_state(*pick_net(*h.policy, net), state, "FlowPolicy.load_state_dict(net='" + net + "')");
          },
          py::arg("state"), py::arg("net") = "actor",
          "Copies parameters into one network; keys and shapes must match state_dict(net) exactly.")
      .def(
          "save",
          [](PolicyHandle& h, const std::filesystem::path& path) {
            py::gil_scoped_release nogil;
            auto lock = h.usage.read();
            h.policy->save(path.string());
          },
          py::arg("path"),
          "Atomic save of the config, the three networks and the normaliser (not the optimizer or the generator "
          "state).")
      .def_static(
          "load",
          [](const std::filesystem::path& path, uint64_t seed) {
            auto p = std::make_shared<FlowPolicy>(FlowPolicy::load(path.string()));
            return std::make_shared<PolicyHandle>(std::move(p), seed);
          },
          py::arg("path"), py::arg("seed") = 0,
          "Loads a file written by save(); `seed` seeds the new object's generator. RuntimeError naming the "
          "file if it is missing or not a FlowPolicy file.")
      .def_property_readonly(
          "normalizer",
          [](PolicyHandle& h) {
            const auto& n = h.policy->normalizer();
            py::dict d;
            auto bounds = [&d](const char* key, const std::optional<rldt::MinMaxNormalizer>& b) {
              if (!b) {
                d[py::str(std::string(key) + "_low")] = py::none();
                d[py::str(std::string(key) + "_high")] = py::none();
                return;
              }
              d[py::str(std::string(key) + "_low")] = to_numpy(torch::tensor(b->low(), torch::kFloat64));
              d[py::str(std::string(key) + "_high")] = to_numpy(torch::tensor(b->high(), torch::kFloat64));
            };
            bounds("obs", n.obs);
            bounds("action", n.action);
            return d;
          },
          "The stored normaliser as {obs_low, obs_high, action_low, action_high} (float32 arrays, None where "
          "not set: identity observations, actions mapped onto the env's action box).")
      .def(
          "set_normalizer",
          [](PolicyHandle& h, const py::object& obs_low, const py::object& obs_high, const py::object& action_low,
             const py::object& action_high) {
            const auto& c = h.policy->config();
            auto bounds = [](const py::object& lo, const py::object& hi, int64_t dim, const char* sym,
                             const std::string& name) -> std::optional<rldt::MinMaxNormalizer> {
              if (lo.is_none() && hi.is_none()) return std::nullopt;
              if (lo.is_none() || hi.is_none())
                throw rldt::ArgumentError("arguments '" + name + "_low' and '" + name + "_high' go together");
              auto l = float_arg(lo, name + "_low", {{dim, sym}}).to(torch::kFloat64);
              auto u = float_arg(hi, name + "_high", {{dim, sym}}).to(torch::kFloat64);
              std::vector<double> lv(l.data_ptr<double>(), l.data_ptr<double>() + dim);
              std::vector<double> uv(u.data_ptr<double>(), u.data_ptr<double>() + dim);
              try {
                return rldt::MinMaxNormalizer(lv, uv);
              } catch (const std::exception& e) {
                throw rldt::ArgumentError("arguments '" + name + "_low/_high': " + e.what());
              }
            };
            rldt::PolicyNormalizer n;
            n.obs = bounds(obs_low, obs_high, c.obs_dim, "O", "obs");
            n.action = bounds(action_low, action_high, c.action_dim, "d", "action");
            auto lock = h.usage.write();
            h.policy->set_normalizer(std::move(n));
          },
          py::arg("obs_low") = py::none(), py::arg("obs_high") = py::none(), py::arg("action_low") = py::none(),
          py::arg("action_high") = py::none(),
          "Sets (or, with None, clears) the observation bounds (O,) and the env-unit action bounds (d,).")
      .def(
          "set_final_action_clip",
          [](PolicyHandle& h, double clip) {
            auto lock = h.usage.write();
            h.policy->set_final_action_clip(clip);
          },
          py::arg("clip"), "Sampling-time clamp of final actions to +-clip (0: off); the architecture is unchanged.")
      .def(
          "normalize_obs",
          [](PolicyHandle& h, const py::object& obs) {
            auto o = float_arg(obs, "obs", obs_spec(h.policy->config()));
            auto lock = h.usage.read();
            return to_numpy(h.policy->normalizer().normalize_obs(o));
          },
          py::arg("obs"), "Raw observations (B, O) -> what the networks see (B, O) (identity without bounds).")
      .def(
          "action_to_env",
          [](PolicyHandle& h, const py::object& actions, const py::object& env_low, const py::object& env_high) {
            const auto& c = h.policy->config();
            auto a = float_arg_any_shape(actions, "actions");
            rldt::BoxSpec box;
            if (!env_low.is_none() || !env_high.is_none()) {
              auto l = float_arg(env_low, "env_low", {{c.action_dim, "d"}}).to(torch::kFloat64);
              auto u = float_arg(env_high, "env_high", {{c.action_dim, "d"}}).to(torch::kFloat64);
              box.low.assign(l.data_ptr<double>(), l.data_ptr<double>() + c.action_dim);
              box.high.assign(u.data_ptr<double>(), u.data_ptr<double>() + c.action_dim);
            }
            auto lock = h.usage.read();
            if (!h.policy->normalizer().action && box.low.empty())
              throw rldt::ArgumentError(
                  "this policy has no action bounds: pass env_low and env_high (the env's "
                  "action box)");
            return to_numpy(h.policy->normalizer().action_to_env(a, box));
          },
          py::arg("actions"), py::arg("env_low") = py::none(), py::arg("env_high") = py::none(),
          "Policy actions (..., d) in [-1, 1] -> env units (clipped to [-1, 1] first): the stored action bounds, "
          "else the box [env_low, env_high].")
      .def("__repr__", [](PolicyHandle& h) {
        const auto& c = h.policy->config();
        std::ostringstream os;
        os << "FlowPolicy(obs_dim=" << c.obs_dim << ", action_dim=" << c.action_dim
           << ", horizon_steps=" << c.horizon_steps << ", denoising_steps=" << c.denoising_steps << ", prediction='"
           << c.prediction << "')";
        return os.str();
      });

  py::class_<InferenceHandle, std::shared_ptr<InferenceHandle>>(m, "InferencePolicy", R"doc(
A snapshot of a FlowPolicy's velocity network for fast acting (deployment, evaluation loops,
rollouts): the same Euler sampler as FlowPolicy.act, without LibTorch ops or autograd. It copies
the weights when it is built: after training, build a new one.

gemm: how it multiplies. "packed" (default): weights stored once in a panel layout, products on
the calling thread, and a state's result independent of the batch it is in. "blas": batches of 8+
states through the process's BLAS GEMM with its threads. "eigen": Eigen on the calling thread.

threads / split: with threads = n > 1 a call runs on n threads, by blocks of 8+ states ("rows")
or, for batches of under 8 states per thread ("auto"), with every thread on all states and its
share of each layer's outputs ("columns"; packed only). With "packed" the results equal one
thread's either way.

InferencePolicy(policy, net="actor"): net "actor" (the trained actor) or "ema" (its EMA copy).
It works in the policy's own units, like FlowPolicy.act: apply policy.normalize_obs before and
policy.action_to_env after when the policy has a normaliser. One object must not be used from
several threads at once (its scratch buffers are reused); build one per thread.)doc")
      .def(py::init([](PolicyHandle& p, const std::string& net) {
             auto lock = p.usage.read();
             return std::make_shared<InferenceHandle>(std::make_unique<rldt::InferencePolicy>(*p.policy, net));
           }),
           py::arg("policy"), py::arg("net") = "actor")
      .def(
          "act",
          [](InferenceHandle& h, const py::object& obs, const py::object& x0) {
            return py::object(inference_sample(h, obs, x0, /*chain=*/false)[0]);
          },
          py::arg("obs"), py::arg("x0") = py::none(),
          R"doc(Chunks (B, H, d) for obs (B, O): Euler sampling from x0 (B, H, d), or from x_0 = 0 (the
deterministic mode) when x0 is None; clamped when final_action_clip > 0. For samples pass
x0 = rng.standard_normal((B, H, d)).)doc")
      .def(
          "sample",
          [](InferenceHandle& h, const py::object& obs, const py::object& x0) {
            return inference_sample(h, obs, x0, /*chain=*/true);
          },
          py::arg("obs"), py::arg("x0") = py::none(),
          R"doc(act() with its chain, as FlowPolicy.sample: obs (B, O) -> (actions (B, H, d), chain
(B, K+1, H, d)); x_0 = x0, or 0 when x0 is None. The chain is not clamped.)doc")
      .def(
          "expected_target",
          [](InferenceHandle& h, const py::object& x_k, const py::object& k, const py::object& obs) {
            const auto& c = h.fast->config();
            auto x = float_arg(x_k, "x_k", chunk_spec(c)).contiguous();
            const int64_t n = x.size(0);
            rldt::check_arg(n >= 1, "argument 'x_k' holds no rows");
            auto kk = index_arg(k, "k", {{n, "N"}}).to(torch::kLong).contiguous();
            auto o = float_arg(obs, "obs", obs_spec(c, n, "N")).contiguous();
            auto y = torch::empty({n, c.horizon_steps, c.action_dim});
            {
              auto lock = h.usage.write();
              py::gil_scoped_release nogil;
              h.fast->expected_target(o.data_ptr<float>(), n, x.data_ptr<float>(), kk.data_ptr<int64_t>(),
                                      y.data_ptr<float>());
            }
            return to_numpy(y);
          },
          py::arg("x_k"), py::arg("k"), py::arg("obs"),
          R"doc(As FlowPolicy.expected_target: x_k (N, H, d), k (N,) integers in [0, K), obs (N, O) -> (N, H, d).)doc")
      .def_property(
          "threads", [](InferenceHandle& h) { return h.fast->threads(); },
          [](InferenceHandle& h, int n) {
            auto lock = h.usage.write();
            h.fast->set_threads(n);
          },
          "threads (default 1), split over as `split` says; with 'packed' the results equal one thread's")
      .def_property(
          "split", [](InferenceHandle& h) { return h.fast->split(); },
          [](InferenceHandle& h, const std::string& s) {
            auto lock = h.usage.write();
            h.fast->set_split(s);
          },
          "how threads > 1 share a call: 'rows' (blocks of 8+ states), 'columns' (packed: every thread all "
          "states, its share of each layer's outputs) or 'auto' (default: columns below 8 states per thread)")
      .def_property(
          "gemm", [](InferenceHandle& h) { return h.fast->gemm(); },
          [](InferenceHandle& h, const std::string& g) {
            auto lock = h.usage.write();
            h.fast->set_gemm(g);
          },
          "'packed' (default), 'blas' or 'eigen' (see the class doc); reads 'eigen' after 'blas' where the process "
          "has no BLAS")
      .def("__repr__", [](InferenceHandle& h) {
        const auto& c = h.fast->config();
        std::ostringstream os;
        os << "InferencePolicy(obs_dim=" << c.obs_dim << ", action_dim=" << c.action_dim
           << ", horizon_steps=" << c.horizon_steps << ", denoising_steps=" << c.denoising_steps << ", gemm='"
           << h.fast->gemm() << "')";
        return os.str();
      });
}

}  // namespace rldt_py
