// rldt.Trainer: the C++ RldtTrainer on the native environments.
#include <torch/torch.h>

#include "common.hpp"
#include "rldt/train/rldt_trainer.hpp"
#include "rldt/util/rng.hpp"

namespace rldt_py {

namespace {
struct TrainerHandle {
  explicit TrainerHandle(std::unique_ptr<rldt::RldtTrainer> t) : trainer(std::move(t)) {}
  std::unique_ptr<rldt::RldtTrainer> trainer;
  std::shared_ptr<PolicyHandle> policy;  // shares the trainer's FlowPolicy
  Usage usage{"Trainer"};
};

std::shared_ptr<TrainerHandle> make_handle(std::unique_ptr<rldt::RldtTrainer> t, std::shared_ptr<PolicyHandle> policy,
                                           uint64_t seed) {
  auto h = std::make_shared<TrainerHandle>(std::move(t));
  h->policy = policy ? policy : std::make_shared<PolicyHandle>(h->trainer->policy_ptr(), seed);
  return h;
}

py::dict metrics_dict(const rldt::IterationMetrics& m) {
  py::dict d;
  d["iteration"] = m.iteration;
  d["eval"] = m.eval;
  d["env_steps"] = m.env_steps;
  d["episode_return"] = m.episode_return;
  d["episode_length"] = m.episode_length;
  d["episodes"] = m.episodes;
  d["reward_per_step"] = m.reward_per_step;
  d["critic_loss"] = m.critic_loss;
  d["actor_loss"] = m.actor_loss;
  d["align"] = m.align;
  d["cons"] = m.cons;
  d["ref"] = m.ref;
  d["grad_norm"] = m.grad_norm;
  d["particle_distance"] = m.particle_distance;
  d["reward_scale"] = m.reward_scale;
  d["eval_return"] = m.eval_return;
  d["eval_return_std"] = m.eval_return_std;
  d["eval_length"] = m.eval_length;
  d["eval_q"] = m.eval_q;
  d["eval_discounted_return"] = m.eval_discounted_return;
  d["seconds_rollout"] = m.seconds_rollout;
  d["seconds_critic"] = m.seconds_critic;
  d["seconds_actor"] = m.seconds_actor;
  d["seconds_eval"] = m.seconds_eval;
  return d;
}
}  // namespace

void bind_trainer(py::module_& m) {
  py::class_<TrainerHandle, std::shared_ptr<TrainerHandle>>(m, "Trainer",
                                                            R"doc(The RLDT trainer (ALGORITHM.md sections 5-6).

Trainer(config: RldtTrainerConfig, policy: FlowPolicy | None = None). With a policy, fine-tunes it
(its obs_dim/action_dim must match the env); without one, trains from scratch with config.policy.
train_iteration() runs one iteration and returns its metrics as a dict; iterations with
iteration % val_freq == 0 are evaluations (deterministic actions, no updates). NaN entries mean
"not measured in this iteration" (e.g. losses on evaluation iterations, returns when no episode ended).)doc")
      .def(py::init([](const rldt::RldtTrainerConfig& cfg, std::shared_ptr<PolicyHandle> policy) {
             std::shared_ptr<rldt::FlowPolicy> p = policy ? policy->policy : nullptr;
             std::unique_ptr<rldt::RldtTrainer> t;
             {
               py::gil_scoped_release nogil;
               t = std::make_unique<rldt::RldtTrainer>(cfg, p);
             }
             return make_handle(std::move(t), policy, cfg.seed);
           }),
           py::arg("config"), py::arg("policy") = py::none())
      .def(py::init([](const rldt::RldtTrainerConfig& cfg, int64_t obs_dim, std::vector<double> action_low,
                       std::vector<double> action_high, std::shared_ptr<PolicyHandle> policy, std::string name) {
             rldt::ExternalEnvSpec spec;
             spec.name = std::move(name);
             spec.obs_dim = obs_dim;
             spec.action_low = std::move(action_low);
             spec.action_high = std::move(action_high);
             std::shared_ptr<rldt::FlowPolicy> p = policy ? policy->policy : nullptr;
             auto t = std::make_unique<rldt::RldtTrainer>(cfg, spec, p);
             return make_handle(std::move(t), policy, cfg.seed);
           }),
           py::arg("config"), py::arg("obs_dim"), py::arg("action_low"), py::arg("action_high"),
           py::arg("policy") = py::none(), py::arg("name") = "external",
           "An external environment driven by the caller through act / observe / update: obs_dim O and "
           "the env's finite action bounds (d,) are all the trainer needs.")
      .def(
          "act",
          [](TrainerHandle& h, py::handle obs) {
            auto lock = h.usage.write();
            const auto& t = *h.trainer;
            auto o = float_arg(obs, "obs", {{t.n_envs(), "N"}, {t.obs_dim(), "O"}});
            torch::Tensor chunk;
            {
              py::gil_scoped_release nogil;
              chunk = h.trainer->act(o);
            }
            return to_numpy(chunk);
          },
          py::arg("obs"),
          "Action chunks (N, H, d) float32 in env units for observations obs (N, O); execute the first "
          "act_steps of each, then call observe. Deterministic on evaluation iterations.")
      .def(
          "observe",
          [](TrainerHandle& h, py::handle rewards, py::handle terminated, py::handle truncated, py::handle next_obs,
             py::object steps) {
            auto lock = h.usage.write();
            const auto& t = *h.trainer;
            const ShapeSpec n{{t.n_envs(), "N"}};
            auto r = float_arg(rewards, "rewards", n);
            auto te = mask_arg(terminated, "terminated", n);
            auto tr = mask_arg(truncated, "truncated", n);
            auto no = float_arg(next_obs, "next_obs", {{t.n_envs(), "N"}, {t.obs_dim(), "O"}});
            torch::Tensor st;
            if (!steps.is_none()) st = index_arg(steps, "steps", n);
            py::gil_scoped_release nogil;
            h.trainer->observe(r, te, tr, no, st);
          },
          py::arg("rewards"), py::arg("terminated"), py::arg("truncated"), py::arg("next_obs"),
          py::arg("steps") = py::none(),
          "Outcome of the last act: rewards (N,) summed over the executed steps, terminated / truncated "
          "(N,), next_obs (N, O) the true next states (an ended episode's final observation), steps (N,) "
          "env steps executed (default act_steps).")
      .def(
          "update",
          [](TrainerHandle& h) {
            auto lock = h.usage.write();
            rldt::IterationMetrics mt;
            {
              py::gil_scoped_release nogil;
              mt = h.trainer->update();
            }
            return metrics_dict(mt);
          },
          "After n_steps act/observe pairs: critic and actor rounds (training iterations); returns the "
          "iteration's metrics (dict) like train_iteration.")
      .def(
          "policy_action",
          [](TrainerHandle& h, py::handle obs, bool deterministic, uint64_t seed) {
            auto lock = h.usage.read();
            auto o = float_arg(obs, "obs", {{-1, "B"}, {h.trainer->obs_dim(), "O"}});
            auto gen = rldt::make_generator(seed);
            torch::Tensor chunk;
            {
              py::gil_scoped_release nogil;
              chunk = h.trainer->policy_action(o, gen, deterministic);
            }
            return to_numpy(chunk);
          },
          py::arg("obs"), py::arg("deterministic") = true, py::arg("seed") = 0,
          "Action chunks (B, H, d) float32 in env units for observations (B, O), outside training (the "
          "trainer's random stream is untouched).")
      .def_property_readonly("steps_collected", [](TrainerHandle& h) { return h.trainer->steps_collected(); })
      .def_property_readonly("eval_iteration", [](TrainerHandle& h) { return h.trainer->eval_iteration(); })
      .def_property_readonly("external_env", [](TrainerHandle& h) { return h.trainer->external_env(); })
      .def_property_readonly("n_envs", [](TrainerHandle& h) { return h.trainer->n_envs(); })
      .def_property_readonly("rollout_groups", [](TrainerHandle& h) { return h.trainer->rollout_groups(); })
      .def_property_readonly("obs_dim", [](TrainerHandle& h) { return h.trainer->obs_dim(); })
      .def_property_readonly("action_dim", [](TrainerHandle& h) { return h.trainer->action_dim(); })
      .def(
          "train_iteration",
          [](TrainerHandle& h) {
            auto lock = h.usage.write();
            rldt::IterationMetrics mt;
            {
              py::gil_scoped_release nogil;
              mt = h.trainer->train_iteration();
            }
            return metrics_dict(mt);
          },
          "One iteration of ALGORITHM.md section 6; returns its metrics (dict).")
      .def(
          "save",
          [](TrainerHandle& h, const std::string& path) {
            auto lock = h.usage.read();
            py::gil_scoped_release nogil;
            h.trainer->save_checkpoint(path);
          },
          py::arg("path"),
          "Writes a checkpoint (between iterations) to path, atomically: networks, optimizers, buffer, generator, "
          "every env's state, iteration and counters (docs/checkpoints.md).")
      .def(
          "load",
          [](TrainerHandle& h, const std::string& path) {
            auto lock = h.usage.write();
            py::gil_scoped_release nogil;
            h.trainer->load_checkpoint(path);
          },
          py::arg("path"),
          "Restores a checkpoint written by a Trainer with the same config (n_train_itr and env_threads may differ); "
          "training then continues bit for bit as the saved run would have. Raises RuntimeError naming the file if it "
          "is missing, truncated, foreign or of another config.")
      .def_property_readonly(
          "policy", [](TrainerHandle& h) { return h.policy; }, "The FlowPolicy being trained (shared, not a copy).")
      .def_property_readonly(
          "config", [](TrainerHandle& h) { return h.trainer->config(); },
          "The resolved config (dims filled in from the env).")
      .def_property_readonly("iteration", [](TrainerHandle& h) { return h.trainer->iteration(); })
      .def_property_readonly("env_steps", [](TrainerHandle& h) { return h.trainer->env_steps(); })
      .def_property_readonly("buffer_size", [](TrainerHandle& h) { return h.trainer->buffer().size(); })
      .def(
          "last_rollout",
          [](TrainerHandle& h) {
            auto lock = h.usage.read();
            const auto& b = h.trainer->last_rollout();
            py::dict d;
            if (b.size() == 0) return d;
            d["obs"] = to_numpy(b.obs);
            d["chunks"] = to_numpy(b.chunks);
            d["rewards"] = to_numpy(b.rewards);
            d["terminated"] = to_numpy(b.terminated);
            d["truncated"] = to_numpy(b.truncated);
            d["next_obs"] = to_numpy(b.next_obs);
            return d;
          },
          "The last iteration's trajectories: obs (n, T, O), chunks (n, T, E, d), rewards, terminated, "
          "truncated (n, T), next_obs (n, T, O).");
}

}  // namespace rldt_py
