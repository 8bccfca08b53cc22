// The SAC baseline (issue 5): SacConfig, SacTrainerConfig, SacTrainer, SacPolicy and
// tanh_gaussian_log_prob. Configs are constructed with keyword arguments named like the C++
// fields and validated at construction.
#include "rldt/algo/sac.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "common.hpp"
#include "rldt/train/sac_trainer.hpp"
#include "rldt/util/rng.hpp"

namespace rldt_py {

namespace {

// py::class_ with def_readwrite fields, keyword construction (unknown keywords raise TypeError
// naming them, nested configs accept dicts), validate(), to_dict() and a readable repr.
template <typename T>
class KwConfig {
 public:
  KwConfig(py::module_& m, const char* name, const char* doc) : cls_(m, name, doc), name_(name) {}

  template <typename V>
  KwConfig& field(const char* key, V T::*member, const char* doc) {
    cls_.def_readwrite(key, member, doc);
    names_->push_back(key);
    return *this;
  }

  void finish() {
    auto names = names_;
    const std::string cname = name_;
    cls_.def(
        py::init([names, cname](const py::kwargs& kw) {
          py::object obj = py::cast(T());
          for (auto item : kw) {
            const auto key = py::str(item.first).cast<std::string>();
            if (std::find(names->begin(), names->end(), key) == names->end()) {
              std::string valid;
              for (const auto& n : *names) valid += (valid.empty() ? "" : ", ") + n;
              throw py::type_error(cname + "() got an unknown keyword argument '" + key + "'; valid keys: " + valid);
            }
            py::object value = py::reinterpret_borrow<py::object>(item.second);
            py::object current = obj.attr(key.c_str());
            if (py::isinstance<py::dict>(value) && py::hasattr(current, "to_dict"))
              value = py::type::of(current)(**value);  // nested config given as a dict
            try {
              obj.attr(key.c_str()) = value;
            } catch (py::error_already_set& e) {
              if (!e.matches(PyExc_TypeError)) throw;
              throw py::type_error(cname + "." + key + " expects " +
                                   py::str(py::type::of(current).attr("__name__")).cast<std::string>() + ", got " +
                                   py::repr(value).cast<std::string>());
            }
          }
          T c = obj.cast<T>();
          c.validate();
          return c;
        }),
        "Keyword arguments set the fields of the same names; the rest keep their defaults. Unknown "
        "keywords raise TypeError, invalid values ValueError.");
    cls_.def("validate", &T::validate, "Raises ValueError naming the first invalid field.");
    cls_.def(
        "to_dict",
        [names](const T& c) {
          py::dict d;
          py::object obj = py::cast(c);
          for (const auto& n : *names) {
            py::object v = obj.attr(n.c_str());
            if (py::hasattr(v, "to_dict")) v = v.attr("to_dict")();
            d[py::str(n)] = v;
          }
          return d;
        },
        "The fields as a dict (nested configs as dicts); T(**cfg.to_dict()) rebuilds it.");
    cls_.def("__repr__", [names, cname](const T& c) {
      py::object obj = py::cast(c);
      std::string s = cname + "(";
      for (size_t i = 0; i < names->size(); ++i)
        s += (i ? ", " : "") + (*names)[i] + "=" + py::repr(obj.attr((*names)[i].c_str())).cast<std::string>();
      return s + ")";
    });
    cls_.def("__copy__", [](const T& c) { return T(c); });
    cls_.def(
        "__deepcopy__", [](const T& c, py::dict) { return T(c); }, py::arg("memo"));
  }

 private:
  py::class_<T> cls_;
  std::string name_;
  std::shared_ptr<std::vector<std::string>> names_ = std::make_shared<std::vector<std::string>>();
};

struct SacTrainerHandle {
  explicit SacTrainerHandle(std::unique_ptr<rldt::SacTrainer> t) : trainer(std::move(t)) {}
  std::unique_ptr<rldt::SacTrainer> trainer;
  Usage usage{"SacTrainer"};
};

struct SacPolicyHandle {
  SacPolicyHandle(std::shared_ptr<rldt::SacPolicy> p, uint64_t seed)
      : policy(std::move(p)), gen(rldt::make_generator(seed)) {}
  std::shared_ptr<rldt::SacPolicy> policy;
  at::Generator gen;
  Usage usage{"SacPolicy"};
};

// The learner alone (rldt::Sac) with the generator its updates and samples draw from: for users who
// bring their own data (a bandit, an offline buffer) instead of SacTrainer's env loop.
struct SacHandle {
  SacHandle(const rldt::SacConfig& cfg, uint64_t seed, std::vector<double> low, std::vector<double> high)
      : sac(std::make_unique<rldt::Sac>(cfg, seed, std::move(low), std::move(high))),
        gen(rldt::make_generator(seed + 1)) {}
  std::unique_ptr<rldt::Sac> sac;
  at::Generator gen;
  Usage usage{"Sac"};
};

py::dict sac_update_dict(const rldt::SacUpdateStats& s) {
  py::dict d;
  d["critic_loss"] = s.critic_loss;
  d["actor_loss"] = s.actor_loss;
  d["alpha_loss"] = s.alpha_loss;
  d["alpha"] = s.alpha;
  d["entropy"] = s.entropy;
  d["q_mean"] = s.q_mean;
  d["actor_updated"] = s.actor_updated;
  return d;
}

// The learner's actions for obs (B, O): policy space [−1, 1] or env units, (B, d).
// Deterministic actions only read the learner; samples draw from its generator.
py::array sac_actions(SacHandle& h, py::handle obs, bool deterministic, bool env_units) {
  auto lock = deterministic ? h.usage.read() : h.usage.write();
  auto o = float_arg(obs, "obs", {{-1, "B"}, {h.sac->config().obs_dim, "O"}});
  torch::Tensor a;
  {
    py::gil_scoped_release nogil;
    auto& policy = h.sac->policy();
    a = env_units ? policy.env_action(o, h.gen, deterministic) : policy.act(o, h.gen, deterministic);
  }
  return to_numpy(a);
}

// Policy-space actions (B, d): float32, finite and inside [−1, 1] (the tanh's range), else an
// ArgumentError naming `name`.
torch::Tensor unit_box_arg(py::handle obj, const std::string& name, const ShapeSpec& spec) {
  auto a = float_arg(obj, name, spec);
  if (a.numel() > 0) {
    const double lo = a.min().item<double>(), hi = a.max().item<double>();
    rldt::check_arg(lo >= -1.0 && hi <= 1.0, "argument '", name,
                    "' must hold policy-space actions in [-1, 1] (env units map linearly onto the bounds); "
                    "its values span [",
                    lo, ", ", hi, "]");
  }
  return a;
}

py::dict sac_metrics_dict(const rldt::SacIterationMetrics& m) {
  py::dict d;
  d["iteration"] = m.iteration;
  d["eval"] = m.eval;
  d["env_steps"] = m.env_steps;
  d["updates"] = m.updates;
  d["episode_return"] = m.episode_return;
  d["episode_length"] = m.episode_length;
  d["episodes"] = m.episodes;
  d["reward_per_step"] = m.reward_per_step;
  d["eval_return"] = m.eval_return;
  d["eval_return_std"] = m.eval_return_std;
  d["eval_length"] = m.eval_length;
  d["critic_loss"] = m.critic_loss;
  d["actor_loss"] = m.actor_loss;
  d["alpha_loss"] = m.alpha_loss;
  d["entropy"] = m.entropy;
  d["q_mean"] = m.q_mean;
  d["alpha"] = m.alpha;
  d["seconds_rollout"] = m.seconds_rollout;
  d["seconds_update"] = m.seconds_update;
  d["seconds_eval"] = m.seconds_eval;
  return d;
}

py::dict eval_dict(const rldt::SacEvalResult& r) {
  py::dict d;
  d["mean_return"] = r.mean_return;
  d["std_return"] = r.std_return;
  d["mean_length"] = r.mean_length;
  d["returns"] = to_numpy(torch::tensor(r.returns, torch::kDouble));
  return d;
}

}  // namespace

void bind_sac(py::module_& m) {
  using rldt::SacConfig;
  using rldt::SacTrainerConfig;
  {
    KwConfig<SacConfig> b(m, "SacConfig",
                          "Options of the SAC baseline (published defaults: Haarnoja et al. 2018, arXiv:1812.05905).");
    using C = SacConfig;
    b.field("obs_dim", &C::obs_dim, "O (the trainer takes it from the env)")
        .field("action_dim", &C::action_dim, "d (the trainer takes it from the env)")
        .field("hidden", &C::hidden, "hidden sizes of the actor and of each critic")
        .field("activation", &C::activation, "'relu' | 'silu' | 'mish' | 'tanh' | 'identity'")
        .field("actor_lr", &C::actor_lr, "Adam lr of the actor")
        .field("critic_lr", &C::critic_lr, "Adam lr of the twin critics")
        .field("alpha_lr", &C::alpha_lr, "Adam lr of log alpha")
        .field("gamma", &C::gamma, "discount per env step")
        .field("tau", &C::tau, "Polyak rate: target <- (1 - tau) target + tau online")
        .field("batch_size", &C::batch_size, "transitions per gradient step")
        .field("autotune_alpha", &C::autotune_alpha, "automatic entropy tuning")
        .field("target_entropy_per_dim", &C::target_entropy_per_dim, "target entropy = this * d (default -d)")
        .field("init_alpha", &C::init_alpha, "alpha at the start (the fixed alpha without tuning)")
        .field("log_std_min", &C::log_std_min, "lower clamp of the Gaussian's log std")
        .field("log_std_max", &C::log_std_max, "upper clamp of the Gaussian's log std")
        .field("policy_frequency", &C::policy_frequency, "actor and alpha step every this many critic steps")
        .field("target_frequency", &C::target_frequency, "Polyak step every this many critic steps")
        .field("learning_starts", &C::learning_starts, "env steps of uniform random actions before the first update")
        .field("buffer_size", &C::buffer_size, "replay capacity (transitions)")
        .field("utd", &C::utd, "gradient steps per env step");
    b.finish();
  }
  {
    KwConfig<SacTrainerConfig> b(m, "SacTrainerConfig",
                                 "Options of the SAC trainer on the native envs; 'sac' accepts a SacConfig or a dict.");
    using C = SacTrainerConfig;
    b.field("env", &C::env, "task id, e.g. 'Hopper-v5'")
        .field("env_options", &C::env_options, "task options by name")
        .field("n_envs", &C::n_envs, "parallel environments (one vec step stores n_envs transitions)")
        .field("env_threads", &C::env_threads, "threads stepping them (0 = all cores)")
        .field("seed", &C::seed, "seed of envs, networks and every draw of the trainer")
        .field("steps_per_iteration", &C::steps_per_iteration, "vec-env steps per iteration")
        .field("n_iterations", &C::n_iterations, "iterations of a full run (train())")
        .field("val_freq", &C::val_freq, "evaluate after iterations with (iteration + 1) % val_freq == 0; 0: never")
        .field("eval_episodes", &C::eval_episodes, "deterministic episodes per evaluation")
        .field("sac", &C::sac, "SacConfig (obs_dim / action_dim are taken from the env)");
    b.finish();
  }

  m.def(
      "tanh_gaussian_log_prob",
      [](py::handle pre_tanh, py::handle mean, py::handle log_std) {
        auto u = float_arg(pre_tanh, "pre_tanh", {{-1, "B"}, {-1, "d"}});
        const ShapeSpec spec{{u.size(0), "B"}, {u.size(1), "d"}};
        auto mu = float_arg(mean, "mean", spec);
        auto ls = float_arg(log_std, "log_std", spec);
        torch::NoGradGuard ng;
        return to_numpy(rldt::tanh_gaussian_log_prob(u, mu, ls));
      },
      py::arg("pre_tanh"), py::arg("mean"), py::arg("log_std"),
      "Log density (B,) of a = tanh(u), u ~ N(mean, exp(log_std)^2) per entry, at u = pre_tanh (B, d); summed "
      "over d, tanh correction included.");

  py::class_<SacPolicyHandle, std::shared_ptr<SacPolicyHandle>>(
      m, "SacPolicy", "A trained SAC actor with the env's action bounds, for inference (SacTrainer.save_policy).")
      .def_static(
          "load",
          [](const std::string& path, uint64_t seed) {
            return std::make_shared<SacPolicyHandle>(rldt::SacPolicy::load(path), seed);
          },
          py::arg("path"), py::arg("seed") = 0, "Loads a file written by SacTrainer.save_policy.")
      .def(
          "act",
          [](SacPolicyHandle& h, py::handle obs, bool deterministic) {
            auto lock = h.usage.write();
            auto o = float_arg(obs, "obs", {{-1, "B"}, {h.policy->obs_dim(), "O"}});
            torch::Tensor a;
            {
              py::gil_scoped_release nogil;
              a = h.policy->env_action(o, h.gen, deterministic);
            }
            return to_numpy(a);
          },
          py::arg("obs"), py::arg("deterministic") = true,
          "Env actions (B, d) float32 for observations (B, O): tanh(mean) mapped onto the bounds, or a sample.")
      .def_property_readonly("obs_dim", [](SacPolicyHandle& h) { return h.policy->obs_dim(); })
      .def_property_readonly("action_dim", [](SacPolicyHandle& h) { return h.policy->action_dim(); })
      .def_property_readonly("action_low", [](SacPolicyHandle& h) { return h.policy->action_low(); })
      .def_property_readonly("action_high", [](SacPolicyHandle& h) { return h.policy->action_high(); })
      .def_property_readonly("env_name", [](SacPolicyHandle& h) { return h.policy->env_name; });

  py::class_<SacHandle, std::shared_ptr<SacHandle>>(m, "Sac", R"doc(The SAC learner alone, for your own data.

Sac(config: SacConfig, seed=0, action_low=None, action_high=None). `seed` initialises the networks;
the updates and samples draw from a generator seeded with seed + 1. Actions are in the policy space
[-1, 1]; action_low / action_high (length d) map them linearly onto env units for env_action (default
[-1, 1]). config.learning_starts, buffer_size and utd belong to SacTrainer's data collection and are
ignored here: you decide what goes into each batch.)doc")
      .def(py::init([](const rldt::SacConfig& cfg, uint64_t seed, std::optional<std::vector<double>> low,
                       std::optional<std::vector<double>> high) {
             cfg.validate();
             rldt::check_arg(low.has_value() == high.has_value(),
                             "arguments 'action_low' and 'action_high' must be given together");
             return std::make_shared<SacHandle>(cfg, seed, low.value_or(std::vector<double>{}),
                                                high.value_or(std::vector<double>{}));
           }),
           py::arg("config"), py::arg("seed") = 0, py::arg("action_low") = py::none(),
           py::arg("action_high") = py::none())
      .def(
          "update",
          [](SacHandle& h, py::handle obs, py::handle actions, py::handle rewards, py::handle next_obs,
             py::handle terminated) {
            auto lock = h.usage.write();
            const auto& c = h.sac->config();
            rldt::ReplayBatch b;
            b.obs = float_arg(obs, "obs", {{-1, "B"}, {c.obs_dim, "O"}});
            const int64_t B = b.obs.size(0);
            rldt::check_arg(B >= 1, "argument 'obs' holds no rows: a SAC update needs a batch of at least one");
            b.actions = unit_box_arg(actions, "actions", {{B, "B"}, {c.action_dim, "d"}});
            b.rewards = float_arg(rewards, "rewards", {{B, "B"}});
            b.next_obs = float_arg(next_obs, "next_obs", {{B, "B"}, {c.obs_dim, "O"}});
            b.terminated = mask_arg(terminated, "terminated", {{B, "B"}});
            rldt::check_arg(((b.terminated == 0) | (b.terminated == 1)).all().item<bool>(),
                            "argument 'terminated' must hold only 0/1 (False/True) values");
            rldt::SacUpdateStats st;
            {
              py::gil_scoped_release nogil;
              st = h.sac->update(b, h.gen);
            }
            return sac_update_dict(st);
          },
          py::arg("obs"), py::arg("actions"), py::arg("rewards"), py::arg("next_obs"), py::arg("terminated"),
          R"doc(One gradient step on a batch: obs (B, O), actions (B, d) in [-1, 1], rewards (B,), next_obs (B, O),
terminated (B,) 0/1 (1: no bootstrap, so y = r). Critic step every call; actor and alpha every
config.policy_frequency calls; Polyak step every config.target_frequency calls. Returns a dict:
critic_loss, actor_loss, alpha_loss, alpha, entropy, q_mean, actor_updated (the actor entries are
those of the last actor step).)doc")
      .def(
          "act",
          [](SacHandle& h, py::handle obs, bool deterministic) {
            return sac_actions(h, obs, deterministic, /*env_units=*/false);
          },
          py::arg("obs"), py::arg("deterministic") = true,
          "Policy-space actions (B, d) in [-1, 1] for obs (B, O): tanh(mean), or a sample.")
      .def(
          "env_action",
          [](SacHandle& h, py::handle obs, bool deterministic) {
            return sac_actions(h, obs, deterministic, /*env_units=*/true);
          },
          py::arg("obs"), py::arg("deterministic") = true,
          "The same actions in env units (B, d): mapped linearly onto [action_low, action_high].")
      .def(
          "q",
          [](SacHandle& h, py::handle obs, py::handle actions) {
            auto lock = h.usage.read();
            const auto& c = h.sac->config();
            auto o = float_arg(obs, "obs", {{-1, "B"}, {c.obs_dim, "O"}});
            auto a = float_arg(actions, "actions", {{o.size(0), "B"}, {c.action_dim, "d"}});
            torch::Tensor q;
            {
              py::gil_scoped_release nogil;
              torch::NoGradGuard ng;
              q = h.sac->q(o, a);
            }
            return to_numpy(q);
          },
          py::arg("obs"), py::arg("actions"), "Both online critics: obs (B, O), actions (B, d) -> (2, B).")
      .def(
          "save_policy",
          [](SacHandle& h, const std::string& path) {
            auto lock = h.usage.read();
            py::gil_scoped_release nogil;
            h.sac->policy().save(path);
          },
          py::arg("path"), "Writes the actor for SacPolicy.load (atomically).")
      .def_property_readonly(
          "alpha", [](SacHandle& h) { return h.sac->alpha(); }, "the entropy weight now")
      .def_property_readonly(
          "updates", [](SacHandle& h) { return h.sac->updates(); }, "gradient steps taken")
      .def_property_readonly(
          "config", [](SacHandle& h) { return h.sac->config(); }, "a copy of the SacConfig");

  py::class_<SacTrainerHandle, std::shared_ptr<SacTrainerHandle>>(m, "SacTrainer", R"doc(SAC on the native envs.

SacTrainer(config: SacTrainerConfig). train_iteration() runs steps_per_iteration vec-env steps
(uniform random actions until sac.learning_starts env steps, then policy samples; utd gradient
steps per env step) and returns its metrics as a dict; iterations with (iteration + 1) % val_freq
== 0 also run eval_episodes deterministic episodes (eval_return). NaN entries mean "not measured
in this iteration". train() runs the config's n_iterations and returns the list of dicts.)doc")
      .def(py::init([](const SacTrainerConfig& cfg) {
             py::gil_scoped_release nogil;
             return std::make_shared<SacTrainerHandle>(std::make_unique<rldt::SacTrainer>(cfg));
           }),
           py::arg("config"))
      .def(
          "train_iteration",
          [](SacTrainerHandle& h) {
            auto lock = h.usage.write();
            rldt::SacIterationMetrics mt;
            {
              py::gil_scoped_release nogil;
              mt = h.trainer->train_iteration();
            }
            return sac_metrics_dict(mt);
          },
          "One iteration; returns its metrics (dict).")
      .def(
          "train",
          [](SacTrainerHandle& h, py::object callback) {
            py::list out;
            const int64_t n = h.trainer->config().n_iterations;
            while (h.trainer->iteration() < n) {
              rldt::SacIterationMetrics mt;
              {
                auto lock = h.usage.write();
                py::gil_scoped_release nogil;
                mt = h.trainer->train_iteration();
              }
              auto d = sac_metrics_dict(mt);
              out.append(d);
              if (callback.is_none()) continue;
              py::object r = callback(d);
              if (!r.is_none() && !py::bool_(r)) break;
            }
            return out;
          },
          py::arg("callback") = py::none(),
          "Runs the remaining iterations up to config.n_iterations; callback(metrics) after each (returning "
          "False stops). Returns the metrics dicts.")
      .def(
          "evaluate",
          [](SacTrainerHandle& h, int64_t episodes) {
            auto lock = h.usage.write();
            rldt::SacEvalResult r;
            {
              py::gil_scoped_release nogil;
              r = h.trainer->evaluate(episodes);
            }
            return eval_dict(r);
          },
          py::arg("episodes") = 10,
          "Deterministic episodes on separate env copies (same start states every call): dict with "
          "mean_return, std_return, mean_length, returns (episodes,).")
      .def(
          "policy_action",
          [](SacTrainerHandle& h, py::handle obs, bool deterministic, uint64_t seed) {
            auto lock = h.usage.read();
            auto o = float_arg(obs, "obs", {{-1, "B"}, {h.trainer->obs_dim(), "O"}});
            auto gen = rldt::make_generator(seed);
            torch::Tensor a;
            {
              py::gil_scoped_release nogil;
              a = h.trainer->policy().env_action(o, gen, deterministic);
            }
            return to_numpy(a);
          },
          py::arg("obs"), py::arg("deterministic") = true, py::arg("seed") = 0,
          "Env actions (B, d) float32 for observations (B, O), outside training (the trainer's random "
          "stream is untouched).")
      .def(
          "save_policy",
          [](SacTrainerHandle& h, const std::string& path) {
            auto lock = h.usage.read();
            h.trainer->save_policy(path);
          },
          py::arg("path"), "Writes the actor with the env's action bounds (SacPolicy.load reads it).")
      .def_property_readonly(
          "config", [](SacTrainerHandle& h) { return h.trainer->config(); },
          "The resolved config (dims filled in from the env).")
      .def_property_readonly("iteration", [](SacTrainerHandle& h) { return h.trainer->iteration(); })
      .def_property_readonly("env_steps", [](SacTrainerHandle& h) { return h.trainer->env_steps(); })
      .def_property_readonly("updates", [](SacTrainerHandle& h) { return h.trainer->sac().updates(); })
      .def_property_readonly("alpha", [](SacTrainerHandle& h) { return h.trainer->sac().alpha(); })
      .def_property_readonly("buffer_size", [](SacTrainerHandle& h) { return h.trainer->buffer().size(); })
      .def_property_readonly("n_envs", [](SacTrainerHandle& h) { return h.trainer->n_envs(); })
      .def_property_readonly("obs_dim", [](SacTrainerHandle& h) { return h.trainer->obs_dim(); })
      .def_property_readonly("action_dim", [](SacTrainerHandle& h) { return h.trainer->action_dim(); });
}

}  // namespace rldt_py
