// CriticEnsemble: M Q-networks on (state, executed chunk) with Polyak targets.
#include <pybind11/stl/filesystem.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "common.hpp"

namespace rldt_py {

namespace {

using rldt::CriticConfig;
using rldt::CriticEnsemble;

ShapeSpec obs_spec(const CriticConfig& c, int64_t n = -1) { return {{n, "N"}, {c.obs_dim, "O"}}; }
ShapeSpec chunk_spec(const CriticConfig& c, int64_t n = -1) {
  return {{n, "N"}, {-1, "E' >= act_steps"}, {c.action_dim, "d"}};
}

rldt::EnsembleMLP& pick_net(CriticEnsemble& c, const std::string& net) {
  rldt::check_choice(net, "net", {"online", "target"});
  return net == "target" ? c.target() : c.online();
}

// Arrays in, one critic call, array out: the forward passes (q, q_target, q_min, q_mean) and the
// action gradients (action_grad*, which turn autograd back on themselves). `chunk_name` names the
// chunk argument in errors.
template <typename F>
py::array eval(CriticHandle& h, const py::object& obs, const py::object& chunk, F f, const char* chunk_name = "chunk") {
  const auto& c = h.critic->config();
  auto ch = float_arg(chunk, chunk_name, chunk_spec(c));
  auto o = float_arg(obs, "obs", obs_spec(c, ch.size(0)));
  torch::Tensor out;
  {
    py::gil_scoped_release nogil;
    auto lock = h.usage.read();
    torch::NoGradGuard ng;
    out = f(*h.critic, o, ch);
  }
  return to_numpy(out);
}

}  // namespace

void bind_critic(py::module_& m) {
  py::class_<CriticHandle, std::shared_ptr<CriticHandle>>(
      m, "CriticEnsemble", R"doc(Ensemble of M Q-critics Q_i(s, c) (ALGORITHM.md section 2).

c is the executed part of an action chunk: chunks (N, E', d) with E' >= act_steps; only the first
act_steps steps are used. Each member has a Polyak target network.

CriticEnsemble(config, seed=0): `seed` initialises the weights (from a generator of its own, as the
C++ constructor does). The critic draws no random numbers afterwards.)doc")
      .def(py::init([](const CriticConfig& cfg, uint64_t seed) {
             return std::make_shared<CriticHandle>(std::make_unique<CriticEnsemble>(cfg, seed));
           }),
           py::arg("config"), py::arg("seed") = 0)
      .def_property_readonly(
          "config", [](CriticHandle& h) { return h.critic->config(); }, "a copy of the CriticConfig")
      .def(
          "q",
          [](CriticHandle& h, const py::object& obs, const py::object& chunk) {
            return eval(h, obs, chunk, [](CriticEnsemble& c, auto& o, auto& ch) { return c.q(o, ch); });
          },
          py::arg("obs"), py::arg("chunk"), "Q of every online member: obs (N, O), chunk (N, E', d) -> (M, N).")
      .def(
          "q_target",
          [](CriticHandle& h, const py::object& obs, const py::object& chunk) {
            return eval(h, obs, chunk, [](CriticEnsemble& c, auto& o, auto& ch) { return c.q_target(o, ch); });
          },
          py::arg("obs"), py::arg("chunk"), "Q of every target member: obs (N, O), chunk (N, E', d) -> (M, N).")
      .def(
          "q_min",
          [](CriticHandle& h, const py::object& obs, const py::object& chunk) {
            return eval(h, obs, chunk, [](CriticEnsemble& c, auto& o, auto& ch) { return c.q_min(o, ch); });
          },
          py::arg("obs"), py::arg("chunk"), "min over online members: obs (N, O), chunk (N, E', d) -> (N,).")
      .def(
          "q_mean",
          [](CriticHandle& h, const py::object& obs, const py::object& chunk) {
            return eval(h, obs, chunk, [](CriticEnsemble& c, auto& o, auto& ch) { return c.q_mean(o, ch); });
          },
          py::arg("obs"), py::arg("chunk"), "mean over online members: obs (N, O), chunk (N, E', d) -> (N,).")
      .def(
          "action_grad",
          [](CriticHandle& h, const py::object& obs, const py::object& actions, int64_t member) {
            const auto& c = h.critic->config();
            rldt::check_arg(member >= -1 && member < c.ensemble_size,
                            "argument 'member' must be -1 (mean over members) or in [0, ", c.ensemble_size, "), got ",
                            member);
            return eval(
                h, obs, actions,
                [member](CriticEnsemble& cr, auto& o, auto& a) { return cr.action_grad(o, a, member); }, "actions");
          },
          py::arg("obs"), py::arg("actions"), py::arg("member") = -1,
          R"doc(grad_a Q(s, a) of the online nets for whole chunks: obs (N, O), actions (N, H, d) -> (N, H, d).
member -1: mean over members, else that member. Steps beyond act_steps get zero gradient.)doc")
      .def(
          "action_grad_min",
          [](CriticHandle& h, const py::object& obs, const py::object& actions) {
            return eval(
                h, obs, actions, [](CriticEnsemble& cr, auto& o, auto& a) { return cr.action_grad_min(o, a); },
                "actions");
          },
          py::arg("obs"), py::arg("actions"),
          R"doc(grad_a of min over members of Q(s, a): obs (N, O), actions (N, H, d) -> (N, H, d).
Each row takes the gradient of the member whose Q is lowest there.)doc")
      .def(
          "bootstrap_value",
          [](CriticHandle& h, const py::object& obs, const py::object& actions) {
            const auto& c = h.critic->config();
            auto a =
                float_arg(actions, "actions", {{-1, "N"}, {-1, "S"}, {-1, "E' >= act_steps"}, {c.action_dim, "d"}});
            auto o = float_arg(obs, "obs", obs_spec(c, a.size(0)));
            torch::Tensor v;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              v = h.critic->bootstrap_value(o, a);
            }
            return to_numpy(v);
          },
          py::arg("obs"), py::arg("actions"),
          R"doc(V(s) = mean over S policy samples of min over target members, clipped to
[q_target_min, q_target_max]. obs (N, O), actions (N, S, E', d) -> (N,).)doc")
      .def(
          "loss",
          [](CriticHandle& h, const py::object& obs, const py::object& chunks, const py::object& targets) {
            const auto& c = h.critic->config();
            auto y = float_arg(targets, "targets", {{-1, "n"}, {-1, "T"}});
            const int64_t n = y.size(0), T = y.size(1);
            auto o = float_arg(obs, "obs", {{n, "n"}, {T, "T"}, {c.obs_dim, "O"}});
            auto ch = float_arg(chunks, "chunks", {{n, "n"}, {T, "T"}, {-1, "E' >= act_steps"}, {c.action_dim, "d"}});
            double l;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.read();
              torch::NoGradGuard ng;
              l = h.critic->loss(o, ch, y).item<double>();
            }
            return l;
          },
          py::arg("obs"), py::arg("chunks"), py::arg("targets"),
          R"doc(Regression loss with the trajectory split (member i trains on trajectories i, i+M, ...): MSE per
member, summed. obs (n, T, O), chunks (n, T, E', d), targets (n, T); needs n >= M.)doc")
      .def(
          "update",
          [](CriticHandle& h, const py::object& obs, const py::object& chunks, const py::object& targets) {
            const auto& c = h.critic->config();
            auto y = float_arg(targets, "targets", {{-1, "n"}, {-1, "T"}});
            const int64_t n = y.size(0), T = y.size(1);
            auto o = float_arg(obs, "obs", {{n, "n"}, {T, "T"}, {c.obs_dim, "O"}});
            auto ch = float_arg(chunks, "chunks", {{n, "n"}, {T, "T"}, {-1, "E' >= act_steps"}, {c.action_dim, "d"}});
            double l;
            {
              py::gil_scoped_release nogil;
              auto lock = h.usage.write();
              l = h.critic->update(o, ch, y);
            }
            return l;
          },
          py::arg("obs"), py::arg("chunks"), py::arg("targets"),
          "One AdamW step on loss(), then a Polyak update of the targets; returns the loss (before the step).")
      .def_property(
          "lr",
          [](CriticHandle& h) {
            auto lock = h.usage.read();
            return h.critic->lr();
          },
          [](CriticHandle& h, double lr) {
            auto lock = h.usage.write();
            h.critic->set_lr(lr);
          },
          "AdamW learning rate of update() (starts at config lr); must be finite and > 0.")
      .def(
          "polyak_update",
          [](CriticHandle& h) {
            auto lock = h.usage.write();
            h.critic->polyak_update();
          },
          "target <- m * target + (1 - m) * online, m = target_momentum")
      .def(
          "state_dict",
          [](CriticHandle& h, const std::string& net) {
            auto lock = h.usage.read();
            return module_state(*pick_net(*h.critic, net));
          },
          py::arg("net") = "online",
          "Parameters as {name: float32 array}: w<l> (M, in, out), b<l> (M, 1, out); net: 'online' | 'target'.")
      .def(
          "load_state_dict",
          [](CriticHandle& h, const py::dict& state, const std::string& net) {
            auto lock = h.usage.write();
            load_module_state(*pick_net(*h.critic, net), state, "CriticEnsemble.load_state_dict(net='" + net + "')");
          },
          py::arg("state"), py::arg("net") = "online", "Copies parameters into one network (keys/shapes must match).")
      .def(
          "save",
          [](CriticHandle& h, const std::filesystem::path& path) {
            py::gil_scoped_release nogil;
            auto lock = h.usage.read();
            h.critic->save(path.string());
          },
          py::arg("path"), "Atomic save of the config and the online and target networks (not the optimizer).")
      .def_static(
          "load",
          [](const std::filesystem::path& path) {
            return std::make_shared<CriticHandle>(
                std::make_unique<CriticEnsemble>(CriticEnsemble::load(path.string())));
          },
          py::arg("path"), "Loads a file written by save(); RuntimeError naming the file on failure.")
      .def("__repr__", [](CriticHandle& h) {
        const auto& c = h.critic->config();
        std::ostringstream os;
        os << "CriticEnsemble(obs_dim=" << c.obs_dim << ", action_dim=" << c.action_dim << ", act_steps=" << c.act_steps
           << ", ensemble_size=" << c.ensemble_size << ")";
        return os.str();
      });
  m.attr("CriticEnsemble").attr("grad") = m.attr("CriticEnsemble").attr("action_grad");
}

}  // namespace rldt_py
