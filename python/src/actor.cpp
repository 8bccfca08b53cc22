// ActorUpdater: the RLDT actor update (expected targets, SVGD field, losses,
// Adam step), with a critic or a Python callable as the source of grad_a Q.
#include <torch/torch.h>

#include <optional>
#include <sstream>

#include "common.hpp"

namespace rldt_py {

namespace {

using rldt::ActorBatch;
using rldt::ActorUpdateConfig;
using rldt::ArgumentError;

ActorUpdateConfig actor_config_arg(const py::object& cfg) {
  if (cfg.is_none()) return ActorUpdateConfig{};
  if (py::isinstance<py::dict>(cfg)) return py::type::of<ActorUpdateConfig>()(**cfg).cast<ActorUpdateConfig>();
  try {
    return cfg.cast<ActorUpdateConfig>();
  } catch (const py::cast_error&) {
    throw py::type_error("argument 'config' must be an ActorUpdateConfig (or a dict of its fields), got " +
                         py::str(py::type::of(cfg).attr("__name__")).cast<std::string>());
  }
}

// Where grad_a Q comes from: a CriticEnsemble (its action_grad) or a Python
// callable grad_fn(obs (N, O), actions (N, H, d)) -> (N, H, d), called with the GIL.
struct GradSource {
  rldt::ActionGradFn fn;  // empty when neither was given
  std::shared_ptr<CriticHandle> critic;
  std::optional<Usage::Lock> critic_lock;
};

GradSource grad_source(const py::object& critic, const py::object& grad_fn, int64_t member, bool required,
                       const rldt::FlowPolicyConfig& pc, const char* what) {
  GradSource s;
  const bool has_c = !critic.is_none(), has_f = !grad_fn.is_none();
  if (has_c && has_f) throw ArgumentError(std::string(what) + ": pass either 'critic' or 'grad_fn', not both");
  if (!has_c && !has_f) {
    if (required)
      throw ArgumentError(std::string(what) +
                          " needs 'critic' (a CriticEnsemble) or 'grad_fn' (a callable (obs, actions) -> grads)");
    return s;
  }
  if (has_c) {
    try {
      s.critic = critic.cast<std::shared_ptr<CriticHandle>>();
    } catch (const py::cast_error&) {
      throw py::type_error("argument 'critic' must be a CriticEnsemble, got " +
                           py::str(py::type::of(critic).attr("__name__")).cast<std::string>());
    }
    const auto& cc = s.critic->critic->config();
    rldt::check_arg(cc.obs_dim == pc.obs_dim && cc.action_dim == pc.action_dim && cc.act_steps <= pc.horizon_steps,
                    "argument 'critic' does not fit the policy: critic (obs_dim ", cc.obs_dim, ", action_dim ",
                    cc.action_dim, ", act_steps ", cc.act_steps, ") vs policy (obs_dim ", pc.obs_dim,
                    ", action_dim ", pc.action_dim, ", horizon_steps ", pc.horizon_steps, ")");
    rldt::check_arg(member >= -1 && member < cc.ensemble_size,
                    "argument 'member' must be -1 (mean over members) or in [0, ", cc.ensemble_size, "), got ",
                    member);
    s.critic_lock.emplace(s.critic->usage.read());
    rldt::CriticEnsemble* c = s.critic->critic.get();
    s.fn = [c, member](const torch::Tensor& obs, const torch::Tensor& a) { return c->action_grad(obs, a, member); };
    return s;
  }
  if (!PyCallable_Check(grad_fn.ptr()))
    throw py::type_error("argument 'grad_fn' must be callable (obs, actions) -> grads, got " +
                         py::str(py::type::of(grad_fn).attr("__name__")).cast<std::string>());
  rldt::check_arg(member == -1, "argument 'member' only applies with 'critic'");
  // A borrowed pointer: the caller's argument keeps it alive, and copies of the
  // std::function (made without the GIL) must not touch reference counts.
  PyObject* f = grad_fn.ptr();
  const int64_t H = pc.horizon_steps, d = pc.action_dim;
  s.fn = [f, H, d](const torch::Tensor& obs, const torch::Tensor& a) -> torch::Tensor {
    py::gil_scoped_acquire gil;
    py::object res = py::reinterpret_borrow<py::object>(f)(to_numpy(obs), to_numpy(a));
    return float_arg(res, "grad_fn result", {{a.size(0), "N"}, {H, "H"}, {d, "d"}});
  };
  return s;
}

py::dict stats_dict(const rldt::ActorStats& st) {
  py::dict d;
  d["loss"] = st.loss;
  d["align"] = st.align;
  d["cons"] = st.cons;
  d["ref"] = st.ref;
  d["lr"] = st.lr;
  d["manual_backward"] = st.manual_backward;
  d["phi"] = to_numpy(st.svgd.phi);
  d["svgd"] = svgd_diagnostics(st.svgd);
  return d;
}

void check_batch(const ActorBatch& b, const UpdaterHandle& h) {
  const auto& pc = h.policy->policy->config();
  const int64_t N = b.states * b.particles;
  rldt::check_arg(b.obs.defined() && b.obs.dim() == 2 && b.obs.size(0) == N && b.obs.size(1) == pc.obs_dim &&
                      b.x_k.defined() && b.x_k.dim() == 3 && b.x_k.size(1) == pc.horizon_steps &&
                      b.x_k.size(2) == pc.action_dim,
                  "argument 'batch' does not fit this updater's policy (prepare it with the same updater)");
  const auto& f = h.updater->config().svgd.field;
  rldt::check_arg(f == "interp" || f == "delta" || b.grads.defined(),
                  "argument 'batch' holds no critic gradients, which field '", f,
                  "' needs (prepare it with the same updater)");
}

const char* kStatsDoc = R"doc(Returns a dict: loss, align, cons, ref (the loss terms before the step), lr (the learning rate
used), phi (B, P, A) the SVGD field at the expected targets, svgd (dict: grad_norm,
repulsion_norm, particle_distance, bandwidth).)doc";

}  // namespace

void bind_actor(py::module_& m) {
  py::class_<ActorBatch, std::shared_ptr<ActorBatch>>(m, "ActorBatch",
                                                      R"doc(What ActorUpdater.prepare draws for one actor step (read-only).
N = B*P rows: state b's rows are b*P ... b*P+P-1.)doc")
      .def_readonly("states", &ActorBatch::states, "B")
      .def_readonly("particles", &ActorBatch::particles, "P")
      .def_property_readonly("obs", [](const ActorBatch& b) { return to_numpy(b.obs); }, "(N, O)")
      .def_property_readonly("chain", [](const ActorBatch& b) { return to_numpy(b.chain); }, "(N, K+1, H, d)")
      .def_property_readonly("actions", [](const ActorBatch& b) { return to_numpy(b.actions); },
                             "(N, H, d) the final particles a_n")
      .def_property_readonly("k", [](const ActorBatch& b) { return to_numpy(b.k); }, "(N,) int64 step of each query")
      .def_property_readonly("x_k", [](const ActorBatch& b) { return to_numpy(b.x_k); }, "(N, H, d)")
      .def_property_readonly(
          "grads",
          [](const ActorBatch& b) -> py::object {
            if (!b.grads.defined()) return py::none();
            return to_numpy(b.grads);
          },
          "(N, H, d) grad_a Q at a_n (fields normal/hybrid), else None")
      .def_property_readonly("ref_k", [](const ActorBatch& b) { return to_numpy(b.ref_k); },
                             "(N,) int64 step of the reference term")
      .def_property_readonly("ref_x", [](const ActorBatch& b) { return to_numpy(b.ref_x); },
                             "(N, H, d) x~ = (1 - t~) z + t~ a_n")
      .def("__repr__", [](const ActorBatch& b) {
        return "ActorBatch(states=" + std::to_string(b.states) + ", particles=" + std::to_string(b.particles) + ")";
      });

  py::class_<UpdaterHandle, std::shared_ptr<UpdaterHandle>> cls(m, "ActorUpdater", R"doc(The RLDT actor update (ALGORITHM.md section 4) on a FlowPolicy.

ActorUpdater(policy, config=None, seed=0): config an ActorUpdateConfig (None: defaults; a dict
of its fields is accepted). The updater owns an Adam optimizer over the policy's actor and a
generator seeded by `seed` (re-seed with .seed(s)) for every draw of the update: particles,
steps k, the reference term's noise.

The critic gradient grad_a Q comes from `critic` (a CriticEnsemble; `member` -1 averages the
members, else that member) or from `grad_fn`, a Python callable
grad_fn(obs (N, O) float32, actions (N, H, d) float32) -> grads (N, H, d); pass exactly one.)doc");
  cls.def(py::init([](std::shared_ptr<PolicyHandle> policy, const py::object& config, uint64_t seed) {
            return std::make_shared<UpdaterHandle>(std::move(policy), actor_config_arg(config), seed);
          }),
          py::arg("policy"), py::arg("config") = py::none(), py::arg("seed") = 0)
      .def_property_readonly(
          "config", [](UpdaterHandle& h) { return h.updater->config(); }, "a copy of the ActorUpdateConfig")
      .def_property_readonly(
          "policy", [](UpdaterHandle& h) { return h.policy; }, "the FlowPolicy this updater trains")
      .def_property_readonly(
          "steps_taken", [](UpdaterHandle& h) { return h.updater->steps_taken(); }, "optimizer steps so far")
      .def_property_readonly(
          "current_lr", [](UpdaterHandle& h) { return h.updater->current_lr(); }, "lr of the next step (warm-up)")
      .def(
          "seed",
          [](UpdaterHandle& h, uint64_t s) {
            auto lock = h.usage.write();
            std::lock_guard<std::mutex> g(h.gen.mutex());
            h.gen.set_current_seed(s);
          },
          py::arg("seed"), "Re-seeds this updater's generator.");

  auto update = [](UpdaterHandle& h, const py::object& obs, const py::object& critic, const py::object& grad_fn,
                   int64_t member) {
    const auto& pc = h.policy->policy->config();
    auto o = float_arg(obs, "obs", {{-1, "B"}, {pc.obs_dim, "O"}});
    auto lock = h.usage.write();
    auto plock = h.policy->usage.write();
    auto src = grad_source(critic, grad_fn, member, true, pc, "ActorUpdater.update");
    rldt::ActorStats st;
    {
      py::gil_scoped_release nogil;
      st = h.updater->update(o, src.fn, h.gen);
    }
    return stats_dict(st);
  };
  const std::string update_doc =
      std::string(R"doc(One actor step on the states obs (B, O): samples P particles per state (keeping the chains),
draws k, evaluates the SVGD field at the expected targets, and takes an Adam step on
L = L_align + L_cons + L_ref. Pass `critic` or `grad_fn`.
)doc") + kStatsDoc;
  cls.def("update", update, py::arg("obs"), py::arg("critic") = py::none(), py::arg("grad_fn") = py::none(),
          py::arg("member") = -1, update_doc.c_str());
  m.def(
      "actor_update",
      [update](UpdaterHandle& h, const py::object& obs, const py::object& critic, const py::object& grad_fn,
               int64_t member) { return update(h, obs, critic, grad_fn, member); },
      py::arg("updater"), py::arg("obs"), py::arg("critic") = py::none(), py::arg("grad_fn") = py::none(),
      py::arg("member") = -1, "actor_update(updater, obs, ...) is updater.update(obs, ...).");

  cls.def(
         "prepare",
         [](UpdaterHandle& h, const py::object& obs, const py::object& critic, const py::object& grad_fn,
            int64_t member) {
           const auto& pc = h.policy->policy->config();
           auto o = float_arg(obs, "obs", {{-1, "B"}, {pc.obs_dim, "O"}});
           auto lock = h.usage.write();  // draws from the updater's generator
           auto plock = h.policy->usage.read();
           auto src = grad_source(critic, grad_fn, member, true, pc, "ActorUpdater.prepare");
           auto b = std::make_shared<ActorBatch>();
           {
             py::gil_scoped_release nogil;
             *b = h.updater->prepare(o, src.fn, h.gen);
           }
           return b;
         },
         py::arg("obs"), py::arg("critic") = py::none(), py::arg("grad_fn") = py::none(), py::arg("member") = -1,
         "The first half of update(): draws an ActorBatch for obs (B, O) (particles, steps, critic gradients).")
      .def(
          "step",
          [](UpdaterHandle& h, const ActorBatch& batch, const py::object& critic, const py::object& grad_fn,
             int64_t member) {
            check_batch(batch, h);
            const auto& pc = h.policy->policy->config();
            const auto& f = h.updater->config().svgd.field;
            auto lock = h.usage.write();
            auto plock = h.policy->usage.write();
            auto src = grad_source(critic, grad_fn, member, f == "interp" || f == "delta", pc, "ActorUpdater.step");
            rldt::ActorStats st;
            {
              py::gil_scoped_release nogil;
              st = h.updater->step(batch, src.fn);
            }
            return stats_dict(st);
          },
          py::arg("batch"), py::arg("critic") = py::none(), py::arg("grad_fn") = py::none(), py::arg("member") = -1,
          (std::string("The second half of update(): one Adam step on a prepared batch. critic/grad_fn are needed "
                       "for the fields 'interp' and 'delta' (gradients at the expected targets).\n") +
           kStatsDoc)
              .c_str())
      .def(
          "losses",
          [](UpdaterHandle& h, const ActorBatch& batch, const py::object& phi) {
            check_batch(batch, h);
            const auto& pc = h.policy->policy->config();
            auto p = float_arg(phi, "phi", {{batch.states, "B"}, {batch.particles, "P"}, {pc.action_size(), "A"}});
            auto lock = h.usage.read();
            auto plock = h.policy->usage.read();
            py::dict d;
            double v[4];
            {
              py::gil_scoped_release nogil;
              torch::NoGradGuard ng;
              auto L = h.updater->losses(batch, p);
              v[0] = L.total.item<double>();
              v[1] = L.align.item<double>();
              v[2] = L.cons.item<double>();
              v[3] = L.ref.item<double>();
            }
            d["loss"] = v[0];
            d["align"] = v[1];
            d["cons"] = v[2];
            d["ref"] = v[3];
            return d;
          },
          py::arg("batch"), py::arg("phi"),
          "The loss terms (dict: loss, align, cons, ref) of a prepared batch for a given field phi (B, P, A); no step.")
      .def("__repr__", [](UpdaterHandle& h) {
        const auto& c = h.updater->config();
        std::ostringstream os;
        os << "ActorUpdater(n_particles=" << c.n_particles << ", lr=" << c.lr << ", field='" << c.svgd.field
           << "', steps_taken=" << h.updater->steps_taken() << ")";
        return os.str();
      });
}

}  // namespace rldt_py
