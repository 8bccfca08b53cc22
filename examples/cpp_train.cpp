// Training with the installed library from a C++ program: a YAML run config (the `rldt`
// command's format), the RLDT trainer on a native MuJoCo task, deterministic evaluation, and the
// trained policy saved for inference.
//
//   cpp_train CONFIG.yaml [OUT_POLICY.pt] [key.path=value ...]
//   e.g. cpp_train configs/gym/invertedpendulum/scratch-cpu.yaml ip.pt n_train_itr=10
//
// Built against an install through find_package(rldt) (examples/cpp_consumer/CMakeLists.txt).
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <rldt/algo/flow_policy.hpp>
#include <rldt/train/config_io.hpp>
#include <rldt/train/rldt_trainer.hpp>
#include <rldt/util/rng.hpp>
#include <rldt/util/serialize.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " CONFIG.yaml [OUT_POLICY.pt] [key.path=value ...]\n";
    return 2;
  }
  std::string out_policy;
  std::vector<std::string> overrides;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.find('=') != std::string::npos) {
      overrides.push_back(arg);
    } else {
      out_policy = arg;
    }
  }
  try {
    // 1. The config: every error names the file (or override) and the key, before any work.
    rldt::RunConfig run = rldt::load_run_config(argv[1], overrides);
    std::shared_ptr<rldt::FlowPolicy> base;
    if (!run.base_policy.empty()) base = std::make_shared<rldt::FlowPolicy>(rldt::FlowPolicy::load(run.base_policy));

    // 2. The trainer: native envs, a fresh or pretrained actor.
    rldt::RldtTrainer trainer(run.trainer, base);
    const auto& cfg = trainer.config();
    std::cout << "training " << cfg.env << ": " << cfg.n_train_itr << " iterations of " << cfg.n_envs << " envs x "
              << cfg.n_steps << " chunk steps\n";

    // 3. The loop; iterations with iteration % val_freq == 0 are deterministic evaluations.
    double last_eval = std::nan("");
    for (int64_t i = 0; i < cfg.n_train_itr; ++i) {
      const rldt::IterationMetrics m = trainer.train_iteration();
      if (m.eval) last_eval = m.episode_return;
      std::printf("itr %3lld %s env steps %7lld  return %8.2f  critic loss %9.4g  actor loss %9.4g\n",
                  static_cast<long long>(m.iteration), m.eval ? "eval " : "train", static_cast<long long>(m.env_steps),
                  m.episode_return, m.critic_loss, m.actor_loss);
    }
    std::cout << "last deterministic evaluation return: " << last_eval << "\n";

    // 4. Inference: chunks in env units for a batch of observations, outside training.
    auto gen = rldt::make_generator(0);
    const auto obs =
        trainer.last_rollout().size() ? trainer.last_rollout().obs.select(1, 0) : torch::zeros({1, trainer.obs_dim()});
    const auto chunk = trainer.policy_action(obs, gen, /*deterministic=*/true);  // (B, H, d)
    std::cout << "policy chunk for " << obs.size(0) << " states: " << chunk.sizes() << "\n";

    if (!out_policy.empty()) {
      trainer.policy().save(out_policy);  // atomic; loads with FlowPolicy::load or as base_policy
      std::cout << "policy saved to " << out_policy << "\n";
    }
    return std::isfinite(last_eval) || cfg.n_train_itr == 0 ? 0 : 1;
  } catch (const rldt::ConfigError& e) {
    std::cerr << "config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << rldt::error_message(e) << "\n";
    return 1;
  }
}
