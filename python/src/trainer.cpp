// rldt.Trainer: the C++ RldtTrainer on the native environments.
#include <torch/torch.h>

#include "common.hpp"
#include "rldt/train/rldt_trainer.hpp"

namespace rldt_py {

namespace {
struct TrainerHandle {
  explicit TrainerHandle(std::unique_ptr<rldt::RldtTrainer> t) : trainer(std::move(t)) {}
  std::unique_ptr<rldt::RldtTrainer> trainer;
  std::shared_ptr<PolicyHandle> policy;  // shares the trainer's FlowPolicy
  Usage usage{"Trainer"};
};

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
  d["seconds_rollout"] = m.seconds_rollout;
  d["seconds_critic"] = m.seconds_critic;
  d["seconds_actor"] = m.seconds_actor;
  return d;
}
}  // namespace

void bind_trainer(py::module_& m) {
  py::class_<TrainerHandle, std::shared_ptr<TrainerHandle>>(m, "Trainer", R"doc(The RLDT trainer (ALGORITHM.md sections 5-6).

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
             auto h = std::make_shared<TrainerHandle>(std::move(t));
             h->policy = policy ? policy : std::make_shared<PolicyHandle>(h->trainer->policy_ptr(), cfg.seed);
             return h;
           }),
           py::arg("config"), py::arg("policy") = py::none())
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
