// The option structs: FlowPolicyConfig, CriticConfig, SvgdConfig,
// ActorUpdateConfig. Each is constructible with keyword arguments named like
// the C++ fields (an unknown keyword raises TypeError naming it), is validated
// at construction (ValueError naming the field), and has a readable repr,
// equality, to_dict() and pickling.
#include <torch/torch.h>

#include <functional>
#include <type_traits>

#include "common.hpp"
#include "rldt/train/pretrain.hpp"
#include "rldt/train/rldt_trainer.hpp"

namespace rldt_py {

namespace {

template <typename V>
const char* type_label() {
  if constexpr (std::is_same_v<V, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<V>)
    return "int";
  else if constexpr (std::is_floating_point_v<V>)
    return "float";
  else if constexpr (std::is_same_v<V, std::string>)
    return "str";
  else if constexpr (std::is_same_v<V, std::vector<int64_t>>)
    return "list of int";
  else if constexpr (std::is_same_v<V, rldt::EnvOptions>)
    return "dict of str to float";
  else
    return "a config object or dict";
}

template <typename T>
class ConfigBinder {
 public:
  struct Field {
    std::string name;
    std::function<py::object(const T&)> get;
    std::function<void(T&, py::handle)> set;
  };

  ConfigBinder(py::module_& m, const char* name, const char* doc)
      : cls_(m, name, doc), name_(name), fields_(std::make_shared<std::vector<Field>>()) {}

  template <typename V>
  ConfigBinder& field(const char* key, V T::*member, const char* doc) {
    const std::string cname = name_, k = key;
    Field f;
    f.name = key;
    f.get = [member](const T& c) { return py::cast(c.*member); };
    f.set = [member, cname, k](T& c, py::handle v) {
      if constexpr (std::is_class_v<V> && !std::is_same_v<V, std::string> && !std::is_same_v<V, std::vector<int64_t>> &&
                    !std::is_same_v<V, rldt::EnvOptions>) {
        if (py::isinstance<py::dict>(v)) {  // nested config given as a dict of its fields
          c.*member = py::type::of<V>()(**py::reinterpret_borrow<py::dict>(v)).template cast<V>();
          return;
        }
      }
      if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, std::vector<int64_t>>) {
        // A str must not pass as a list, nor a list as a str.
        const bool is_str = py::isinstance<py::str>(v);
        if (is_str != std::is_same_v<V, std::string>) type_error(cname, k, v, type_label<V>());
      }
      if constexpr (std::is_floating_point_v<V> || std::is_integral_v<V>) {
        if (v.is_none()) type_error(cname, k, v, type_label<V>());
      }
      try {
        c.*member = v.cast<V>();
      } catch (const py::cast_error&) {
        if constexpr (std::is_class_v<V> && !std::is_same_v<V, std::string> &&
                      !std::is_same_v<V, std::vector<int64_t>> && !std::is_same_v<V, rldt::EnvOptions>) {
          const auto nested = py::str(py::type::of<V>().attr("__name__")).cast<std::string>() + " or dict";
          type_error(cname, k, v, nested.c_str());
        }
        type_error(cname, k, v, type_label<V>());
      }
    };
    fields_->push_back(f);
    auto setter = fields_->back().set;
    cls_.def_property(
        key, [member](T& c) -> V& { return c.*member; }, [setter](T& c, py::handle v) { setter(c, v); },
        py::return_value_policy::reference_internal, doc);
    return *this;
  }

  void finish() {
    auto fields = fields_;
    const std::string cname = name_;
    cls_.def(py::init([fields, cname](const py::kwargs& kw) {
               auto c = std::make_unique<T>();
               set_all(*c, kw, *fields, cname);
               c->validate();
               return c;
             }),
             "Keyword arguments set the fields of the same names; the rest keep their defaults. Unknown "
             "keywords raise TypeError, invalid values ValueError.");
    cls_.def("__repr__", [fields, cname](const T& c) {
      std::string s = cname + "(";
      for (size_t i = 0; i < fields->size(); ++i) {
        if (i) s += ", ";
        s += (*fields)[i].name + "=" + py::repr((*fields)[i].get(c)).template cast<std::string>();
      }
      return s + ")";
    });
    cls_.def(
        "to_dict",
        [fields](const T& c) {
          py::dict d;
          for (const auto& f : *fields) {
            py::object v = f.get(c);
            if (py::hasattr(v, "to_dict")) v = v.attr("to_dict")();
            d[py::str(f.name)] = v;
          }
          return d;
        },
        "The fields as a dict (nested configs as dicts); T(**cfg.to_dict()) rebuilds it.");
    cls_.def("validate", &T::validate, "Raises ValueError naming the first invalid field.");
    cls_.def("__eq__", [fields](const T& a, py::object b) -> py::object {
      if (!py::isinstance<T>(b)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
      const T& bb = b.cast<const T&>();
      for (const auto& f : *fields)
        if (!f.get(a).equal(f.get(bb))) return py::bool_(false);
      return py::bool_(true);
    });
    cls_.attr("__hash__") = py::none();
    cls_.def("__copy__", [](const T& c) { return T(c); });
    cls_.def(
        "__deepcopy__", [](const T& c, py::dict) { return T(c); }, py::arg("memo"));
    cls_.def(py::pickle([](const T& c) { return py::dict(py::cast(c).attr("to_dict")()); },
                        [fields, cname](py::dict d) {
                          T c;
                          set_all(c, d, *fields, cname);
                          return c;
                        }));
    std::string names;
    for (const auto& f : *fields) names += (names.empty() ? "" : ", ") + f.name;
    cls_.attr("_fields") = py::cast(names);
  }

 private:
  [[noreturn]] static void type_error(const std::string& cname, const std::string& key, py::handle v,
                                      const char* expected) {
    throw py::type_error(cname + "." + key + " expects " + expected + ", got " +
                         py::str(py::type::of(v).attr("__name__")).cast<std::string>() + " (" +
                         py::repr(v).cast<std::string>() + ")");
  }

  static void set_all(T& c, const py::dict& kw, const std::vector<Field>& fields, const std::string& cname) {
    for (auto item : kw) {
      const auto key = py::str(item.first).cast<std::string>();
      const Field* f = nullptr;
      for (const auto& x : fields)
        if (x.name == key) f = &x;
      if (!f) {
        std::string names;
        for (const auto& x : fields) names += (names.empty() ? "" : ", ") + x.name;
        throw py::type_error(cname + "() got an unknown keyword argument '" + key + "'; valid keys: " + names);
      }
      f->set(c, item.second);
    }
  }

  py::class_<T> cls_;
  std::string name_;
  std::shared_ptr<std::vector<Field>> fields_;
};

}  // namespace

void bind_configs(py::module_& m) {
  using rldt::ActorUpdateConfig;
  using rldt::CriticConfig;
  using rldt::FlowPolicyConfig;
  using rldt::SvgdConfig;

  {
    ConfigBinder<SvgdConfig> b(m, "SvgdConfig", "Options of the SVGD transport field (ALGORITHM.md section 3).");
    b.field("svgd_temp", &SvgdConfig::svgd_temp, "alpha, weight of the repulsive (entropy) term")
        .field("bandwidth", &SvgdConfig::bandwidth, "kernel bandwidth h; <= 0 selects the median heuristic per query")
        .field("q_norm", &SvgdConfig::q_norm, "'none' | 'q_grad' (g / (gbar + eps)) | 'svgd' (alpha * gbar)")
        .field("q_norm_min", &SvgdConfig::q_norm_min, "lower clamp of the per-state mean gradient norm gbar")
        .field("q_norm_max", &SvgdConfig::q_norm_max, "upper clamp of gbar")
        .field("q_norm_eps", &SvgdConfig::q_norm_eps, "eps of q_norm 'q_grad'")
        .field("field", &SvgdConfig::field, "'normal' | 'interp' | 'delta' | 'hybrid'");
    b.finish();
  }
  {
    ConfigBinder<FlowPolicyConfig> b(
        m, "FlowPolicyConfig", "Architecture and pretraining options of the flow policy (ALGORITHM.md section 1).");
    b.field("obs_dim", &FlowPolicyConfig::obs_dim, "O, size of the (flattened) observation")
        .field("action_dim", &FlowPolicyConfig::action_dim, "d")
        .field("horizon_steps", &FlowPolicyConfig::horizon_steps, "H, chunk length")
        .field("denoising_steps", &FlowPolicyConfig::denoising_steps, "K, Euler steps")
        .field("mlp_dims", &FlowPolicyConfig::mlp_dims,
               "hidden sizes; residual bodies need an odd count of equal sizes, e.g. [512, 512, 512]")
        .field("time_dim", &FlowPolicyConfig::time_dim, "size of the time embedding (even, >= 4)")
        .field("activation", &FlowPolicyConfig::activation, "'relu' | 'silu' | 'mish' | 'tanh' | 'identity'")
        .field("residual", &FlowPolicyConfig::residual, "residual body (else a plain MLP)")
        .field("prediction", &FlowPolicyConfig::prediction, "'v_pred' | 'x_pred'")
        .field("final_action_clip", &FlowPolicyConfig::final_action_clip, "> 0: clamp final actions to +-value")
        .field("bc_lr", &FlowPolicyConfig::bc_lr, "AdamW lr of behaviour cloning")
        .field("bc_weight_decay", &FlowPolicyConfig::bc_weight_decay, "AdamW weight decay of behaviour cloning")
        .field("ema_decay", &FlowPolicyConfig::ema_decay, "EMA decay of the pretraining copy")
        .field("xpred_t_max", &FlowPolicyConfig::xpred_t_max, "x_pred BC loss: t clamped to this");
    b.finish();
  }
  {
    ConfigBinder<CriticConfig> b(m, "CriticConfig", "Options of the critic ensemble (ALGORITHM.md section 2).");
    b.field("obs_dim", &CriticConfig::obs_dim, "O")
        .field("action_dim", &CriticConfig::action_dim, "d")
        .field("act_steps", &CriticConfig::act_steps, "E, chunk steps the critic sees")
        .field("ensemble_size", &CriticConfig::ensemble_size, "M")
        .field("hidden", &CriticConfig::hidden, "hidden sizes")
        .field("activation", &CriticConfig::activation, "'relu' | 'silu' | 'mish' | 'tanh' | 'identity'")
        .field("init_std", &CriticConfig::init_std, "Linear weights ~ N(0, init_std^2), biases 0")
        .field("lr", &CriticConfig::lr, "AdamW lr")
        .field("weight_decay", &CriticConfig::weight_decay, "AdamW weight decay")
        .field("target_momentum", &CriticConfig::target_momentum, "Polyak m: Qbar <- m Qbar + (1 - m) Q")
        .field("q_target_min", &CriticConfig::q_target_min, "lower clip of bootstrap values")
        .field("q_target_max", &CriticConfig::q_target_max, "upper clip of bootstrap values")
        .field("update_groups", &CriticConfig::update_groups,
               "G >= 2: update() and bootstrap_value() run the members in G groups on their own threads (one BLAS "
               "thread each). Results depend on G in the last bits");
    b.finish();
  }
  {
    ConfigBinder<ActorUpdateConfig> b(m, "ActorUpdateConfig",
                                      "Options of the RLDT actor update (ALGORITHM.md section 4).");
    b.field("n_particles", &ActorUpdateConfig::n_particles, "P, particles per state")
        .field("lr", &ActorUpdateConfig::lr, "Adam lr")
        .field("lr_warmup_steps", &ActorUpdateConfig::lr_warmup_steps, "linear warm-up from lr/W to lr (0: none)")
        .field("c_cons", &ActorUpdateConfig::c_cons, "weight of L_cons")
        .field("kl_coef", &ActorUpdateConfig::kl_coef, "weight of L_ref")
        .field("final_step_only", &ActorUpdateConfig::final_step_only,
               "ablation: queries at k = K-1 only (no expected-target estimation)")
        .field("project_field", &ActorUpdateConfig::project_field,
               "with final_action_clip: drop the field's components pointing further out of the box at queries on "
               "or beyond it")
        .field("objective", &ActorUpdateConfig::objective,
               "'transport' (RLDT) or 'bptt' (baseline: back-propagate Q through the K-step sampler)")
        .field("update_groups", &ActorUpdateConfig::update_groups,
               "G >= 2: the states split into G groups, each sampled and differentiated on its own thread (one BLAS "
               "thread each); gradients summed in group order. Results depend on G in the last bits")
        .field("backward", &ActorUpdateConfig::backward,
               "'manual': the chain's own pass at step k and the L_ref pass are kept by prepare and "
               "back-propagated by hand as one batch, no autograd graph; 'autograd': passes with gradient and "
               "backward(), the reference way; 'auto' (default): manual in one group, autograd with "
               "update_groups >= 2. Gradients agree to rounding")
        .field("svgd", &ActorUpdateConfig::svgd, "SvgdConfig (a dict of its fields is accepted)");
    b.finish();
  }
  using rldt::ExplorationConfig;
  using rldt::RldtTrainerConfig;
  {
    ConfigBinder<ExplorationConfig> b(m, "ExplorationConfig",
                                      "Exploration while collecting data (ALGORITHM.md section 5).");
    b.field("sample_mode", &ExplorationConfig::sample_mode,
            "'full' (whole chain, then noise_mode) | 'extrapolate' (yhat_k + sqrt(1 - k/K) sigma eps at a late k) | "
            "'qsample' (langevin_steps of a + sigma dQ/da + sigma/2 eps)")
        .field("noise_mode", &ExplorationConfig::noise_mode,
               "sample_mode 'full': 'none' | 'add' (a + sigma eps) | 'min_extrp' (a + ||a - yhat_k|| eps)")
        .field("action_sample_noise", &ExplorationConfig::action_sample_noise, "sigma")
        .field("min_extrp_step", &ExplorationConfig::min_extrp_step,
               "'min_extrp' / 'extrapolate': k ~ U{min_extrp_step .. K-1}")
        .field("langevin_steps", &ExplorationConfig::langevin_steps, "'qsample': Langevin steps on the critic");
    b.finish();
  }
  {
    ConfigBinder<RldtTrainerConfig> b(m, "RldtTrainerConfig",
                                      "Options of the RLDT trainer (ALGORITHM.md sections 5-7); nested policy, critic, "
                                      "actor and exploration configs accept dicts of their fields.");
    using C = RldtTrainerConfig;
    b.field("env", &C::env, "task id, e.g. 'Hopper-v5'")
        .field("env_options", &C::env_options, "task options by name (see the env's Config)")
        .field("n_envs", &C::n_envs, "parallel environments")
        .field("env_threads", &C::env_threads, "threads stepping them (0 = all cores)")
        .field("rollout_groups", &C::rollout_groups,
               "1: one batched policy forward over all envs per chunk step; G >= 2: G env groups that each "
               "sample and step on their own thread (faster rollouts; with rollout_inference 'torch' the "
               "trajectory then depends on G, with 'packed' it does not); 0 (default): automatic, 1 with 'torch' "
               "and one group per env thread with 'packed' (Trainer.rollout_groups tells the choice)")
        .field("rollout_inference", &C::rollout_inference,
               "'torch' (default): rollouts and evaluate() sample through FlowPolicy's LibTorch ops; 'packed': "
               "through InferencePolicy's packed weights (faster; runs differ in the last bits, and rollout_groups "
               "no longer changes the trajectory)")
        .field("seed", &C::seed, "seed of envs, networks and every draw of the trainer")
        .field("act_steps", &C::act_steps, "executed steps of each chunk (<= policy.horizon_steps)")
        .field("n_steps", &C::n_steps, "chunk steps per env per iteration")
        .field("n_train_itr", &C::n_train_itr, "iterations of a full run")
        .field("n_critic_warmup_itr", &C::n_critic_warmup_itr, "actor steps start after this iteration")
        .field("val_freq", &C::val_freq, "iterations with itr % val_freq == 0 evaluate (no updates)")
        .field("eval_episodes", &C::eval_episodes,
               "> 0: evaluation iterations also run this many whole deterministic episodes on separate envs "
               "(eval_return)")
        .field("gamma", &C::gamma, "discount per chunk step")
        .field("td_lambda", &C::td_lambda, "lambda of the TD(lambda) targets")
        .field("bootstrap_truncated", &C::bootstrap_truncated,
               "bootstrap through time limits (False: reference behaviour)")
        .field("q_update_steps", &C::q_update_steps, "critic steps per iteration")
        .field("q_repeat", &C::q_repeat, "rounds per iteration (each samples a fresh/old mix)")
        .field("q_bootstrap", &C::q_bootstrap, "policy samples per bootstrap value")
        .field("q_bootstrap_mode", &C::q_bootstrap_mode,
               "'sample': q_bootstrap policy samples; 'deterministic': one x_0 = 0 sample (the evaluated policy)")
        .field("critic_train_itr", &C::critic_train_itr,
               "> 0: the critic trains only in iterations below this, then stays fixed (0: always)")
        .field("critic_lr_decay", &C::critic_lr_decay,
               "the critic's lr in iteration i is critic.lr * critic_lr_decay**i (1: constant)")
        .field("q_minibatch", &C::q_minibatch, "0: full trajectories per critic step; else about this many samples")
        .field("new_fraction", &C::new_fraction, "minimum share of fresh trajectories in a round")
        .field("buffer_num_episode", &C::buffer_num_episode, "buffer keeps this many x n_envs trajectories")
        .field("reward_scale", &C::reward_scale, "< 0: EMA reward scaler; else a fixed multiplier")
        .field("reward_scale_alpha", &C::reward_scale_alpha, "EMA weight of the reward scaler")
        .field("policy_update_steps", &C::policy_update_steps, "actor steps per iteration")
        .field("actor_traj_stride", &C::actor_traj_stride,
               "actor steps take every this-many-th trajectory of a round's batch (0: actor.n_particles)")
        .field("actor_max_states", &C::actor_max_states, "0: all those states; else a random subset of this many")
        .field("actor_q_reduce", &C::actor_q_reduce,
               "critic value the actor climbs: 'mean' over members, 'member' (one drawn per iteration) or 'min'")
        .field("reference_refresh_freq", &C::reference_refresh_freq,
               "refresh the L_ref reference actor every this many iterations (1: every one; 0: never, anchor "
               "to the base policy)")
        .field("exploration", &C::exploration, "ExplorationConfig")
        .field("policy", &C::policy, "FlowPolicyConfig (obs_dim/action_dim are taken from the env)")
        .field("critic", &C::critic, "CriticConfig (obs_dim/action_dim/act_steps are taken from the env)")
        .field("actor", &C::actor, "ActorUpdateConfig");
    b.finish();
  }
  {
    using P = rldt::PretrainConfig;
    ConfigBinder<P> b(m, "PretrainConfig",
                      "Options of behaviour-cloning pretraining (rldt.pretrain; the `pretrain:` section of a run "
                      "config; docs/datasets.md).");
    b.field("dataset", &P::dataset, "dataset file (.npz | .hdf5 | .h5) in the D4RL layout")
        .field("batch_size", &P::batch_size, "chunks per BC step")
        .field("n_updates", &P::n_updates, "BC (AdamW) steps, each followed by an EMA update")
        .field("val_fraction", &P::val_fraction, "share of episodes held out for the validation loss (0: none)")
        .field("val_max_chunks", &P::val_max_chunks, "validation chunks used (a fixed random subset)")
        .field("log_freq", &P::log_freq, "updates between log rows (with validation)")
        .field("checkpoint_freq", &P::checkpoint_freq, "updates between checkpoints (0: at the end only)")
        .field("normalize", &P::normalize, "min/max normalisation of obs and actions from the dataset")
        .field("pad_chunks", &P::pad_chunks,
               "False: chunks start only where H actions fit in the episode; True: every row, padded with the "
               "episode's last action")
        .field("seed", &P::seed, "network init, validation split, minibatches and noise");
    b.finish();
  }
}

}  // namespace rldt_py
