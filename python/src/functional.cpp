// Stateless algorithm pieces: svgd_direction, TD(lambda) / n-step targets,
// and the RewardScaler.
#include <torch/torch.h>

#include <sstream>

#include "common.hpp"
#include "rldt/algo/reward_scaler.hpp"
#include "rldt/algo/svgd.hpp"
#include "rldt/algo/td_targets.hpp"

namespace rldt_py {

namespace {

rldt::SvgdConfig svgd_config_arg(const py::object& cfg) {
  if (cfg.is_none()) return rldt::SvgdConfig{};
  if (py::isinstance<py::dict>(cfg)) return py::type::of<rldt::SvgdConfig>()(**cfg).cast<rldt::SvgdConfig>();
  try {
    return cfg.cast<rldt::SvgdConfig>();
  } catch (const py::cast_error&) {
    throw py::type_error("argument 'config' must be an SvgdConfig (or a dict of its fields), got " +
                         py::str(py::type::of(cfg).attr("__name__")).cast<std::string>());
  }
}

// (N, T) targets shared by td_lambda_targets and nstep_targets.
struct Segments {
  torch::Tensor r, v, term, trunc;
};

Segments segments(const py::object& rewards, const py::object& next_values, const py::object& terminated,
                  const py::object& truncated) {
  Segments s;
  s.r = float_arg(rewards, "rewards", {{-1, "N"}, {-1, "T"}});
  const ShapeSpec nt{{s.r.size(0), "N"}, {s.r.size(1), "T"}};
  s.v = float_arg(next_values, "next_values", nt);
  s.term = mask_arg(terminated, "terminated", nt);
  s.trunc = mask_arg(truncated, "truncated", nt);
  return s;
}

}  // namespace

py::dict svgd_diagnostics(const rldt::SvgdResult& r) {
  py::dict d;
  d["grad_norm"] = r.grad_norm;
  d["repulsion_norm"] = r.repulsion_norm;
  d["particle_distance"] = r.particle_distance;
  d["bandwidth"] = r.bandwidth;
  return d;
}

void bind_functional(py::module_& m) {
  m.def(
      "svgd_direction",
      [](const py::object& queries, const py::object& particles, const py::object& grads, const py::object& config,
         const py::object& last_step) {
        const auto cfg = svgd_config_arg(config);
        auto q = float_arg(queries, "queries", {{-1, "B"}, {-1, "P1"}, {-1, "A"}});
        const int64_t B = q.size(0), P1 = q.size(1), A = q.size(2);
        auto p = float_arg(particles, "particles", {{B, "B"}, {-1, "P2"}, {A, "A"}});
        auto g = float_arg(grads, "grads", {{B, "B"}, {p.size(1), "P2"}, {A, "A"}});
        torch::Tensor last;
        if (!last_step.is_none()) {
          last = mask_arg(last_step, "last_step", {{B, "B"}, {P1, "P1"}});
          rldt::check_arg(((last == 0) | (last == 1)).all().item<bool>(),
                          "argument 'last_step' must hold only 0/1 (False/True) values");
          last = last.to(torch::kBool);
        }
        rldt::SvgdResult r;
        {
          py::gil_scoped_release nogil;
          r = rldt::svgd_direction(q, p, g, cfg, last);
        }
        return py::make_tuple(to_numpy(r.phi), svgd_diagnostics(r));
      },
      py::arg("queries"), py::arg("particles"), py::arg("grads"), py::arg("config") = py::none(),
      py::arg("last_step") = py::none(),
      R"doc(SVGD transport field (ALGORITHM.md section 3), per state b:
  D_ij = ||y_i - a_j||^2,  h_i = median_j D_ij / (2 ln(P2 + 1)) (or config.bandwidth),  K_ij = exp(-D_ij / (2 h_i))
  phi(y_i) = (1/P2) [ sum_j K_ij g_j + alpha sum_j K_ij (y_i - a_j) / h_i ]
The median of an even count is the lower of the two middle values (torch.median).

queries (B, P1, A): the points y_i where the field is evaluated (expected targets).
particles (B, P2, A): the particles a_j; grads (B, P2, A): g_j = grad_a Q(s_b, a_j).
config: SvgdConfig (None: defaults; a dict of its fields is accepted).
last_step (B, P1) bool, only for field 'hybrid': True where the query comes from the last
denoising step (repulsion kept), False elsewhere (repulsion sign flipped).
Returns (phi (B, P1, A) float32, diagnostics dict with grad_norm, repulsion_norm,
particle_distance, bandwidth).)doc");

  m.def(
      "td_lambda_targets",
      [](const py::object& rewards, const py::object& next_values, const py::object& terminated,
         const py::object& truncated, double gamma, double td_lambda, bool bootstrap_truncated) {
        auto s = segments(rewards, next_values, terminated, truncated);
        check_finite_scalar(gamma, "gamma");
        check_finite_scalar(td_lambda, "td_lambda");
        torch::Tensor G;
        {
          py::gil_scoped_release nogil;
          G = rldt::td_lambda_targets(s.r, s.v, s.term, s.trunc, gamma, td_lambda, bootstrap_truncated);
        }
        return to_numpy(G);
      },
      py::arg("rewards"), py::arg("next_values"), py::arg("terminated"), py::arg("truncated"),
      py::arg("gamma") = 0.99, py::arg("td_lambda") = 0.0, py::arg("bootstrap_truncated") = true,
      R"doc(TD(lambda) return targets over trajectory segments (ALGORITHM.md section 2).

All inputs (N, T): rewards (scaled), next_values[n, t] = V(s') of the state that followed step t
(the next stored state, or the episode's final observation when the episode ended at t),
terminated / truncated 0/1 masks (bool, int or float).
  G_{T-1} = r + gamma (1 - term) V';  G_t = r_t + gamma (1 - term_t) [(1 - lam) V'_t + lam G_{t+1}]
Truncation bootstraps from V' and stops the lambda-recursion there; bootstrap_truncated=False
treats it as termination (the reference behaviour). Returns (N, T) float32.)doc");

  m.def(
      "nstep_targets",
      [](const py::object& rewards, const py::object& next_values, const py::object& terminated,
         const py::object& truncated, int64_t n, double gamma, bool bootstrap_truncated) {
        auto s = segments(rewards, next_values, terminated, truncated);
        check_finite_scalar(gamma, "gamma");
        torch::Tensor G;
        {
          py::gil_scoped_release nogil;
          G = rldt::nstep_targets(s.r, s.v, s.term, s.trunc, gamma, n, bootstrap_truncated);
        }
        return to_numpy(G);
      },
      py::arg("rewards"), py::arg("next_values"), py::arg("terminated"), py::arg("truncated"), py::arg("n"),
      py::arg("gamma") = 0.99, py::arg("bootstrap_truncated") = true,
      R"doc(n-step return targets; inputs as td_lambda_targets, all (N, T).
  G_t = sum_{i<m} gamma^i r_{t+i} + gamma^m V'_{t+m-1}
where the window stops early (m < n) at the episode's end or the segment's end; no bootstrap
after termination. Returns (N, T) float32.)doc");

  py::class_<rldt::RewardScaler>(m, "RewardScaler",
                                 R"doc(Reward scaling before the critic targets (ALGORITHM.md section 2).
reward_scale >= 0: a fixed multiplier. reward_scale < 0: scale = 1 / (EMA of mean |r| + 1e-8), EMA
weight `alpha`, cold-started from the first batch with mean |r| >= 1e-8.)doc")
      .def(py::init([](double reward_scale, double alpha) {
             check_finite_scalar(alpha, "alpha");
             return rldt::RewardScaler(reward_scale, alpha);
           }),
           py::arg("reward_scale") = -1.0, py::arg("alpha") = 0.01)
      .def(
          "update",
          [](rldt::RewardScaler& s, const py::object& raw) { s.update(float_arg_any_shape(raw, "raw_rewards")); },
          py::arg("raw_rewards"), "Updates the EMA from a batch of raw rewards (any shape). No-op for a fixed scale.")
      .def(
          "apply",
          [](const rldt::RewardScaler& s, const py::object& raw) {
            return to_numpy(s.apply(float_arg_any_shape(raw, "raw_rewards")));
          },
          py::arg("raw_rewards"), "raw rewards (any shape) -> scaled, same shape, float32.")
      .def_property_readonly("scale", &rldt::RewardScaler::scale, "the current multiplier")
      .def_property_readonly("adaptive", &rldt::RewardScaler::adaptive, "True for the EMA scaler")
      .def_property(
          "ema", &rldt::RewardScaler::ema,
          [](rldt::RewardScaler& s, double v) {
            rldt::check_arg(v == -1.0 || (std::isfinite(v) && v > 0.0),
                            "RewardScaler.ema must be > 0 (or -1: not initialised), got ", v);
            s.set_ema(v);
          },
          "EMA of mean |r|; -1 until initialised (settable, e.g. to restore a checkpoint)")
      .def("__repr__", [](const rldt::RewardScaler& s) {
        std::ostringstream os;
        os << "RewardScaler(adaptive=" << (s.adaptive() ? "True" : "False") << ", scale=" << s.scale()
           << ", ema=" << s.ema() << ")";
        return os.str();
      });
}

}  // namespace rldt_py
