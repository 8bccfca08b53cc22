// Minimal use of the installed library: sample action chunks from a flow
// policy, score them with a critic ensemble, and build the SVGD transport field.
#include <rldt/algo/critic_ensemble.hpp>
#include <rldt/algo/flow_policy.hpp>
#include <rldt/algo/svgd.hpp>
#include <rldt/util/rng.hpp>

#include <torch/torch.h>

#include <iostream>

int main() {
  rldt::FlowPolicyConfig pc;
  pc.obs_dim = 4;
  pc.action_dim = 2;
  pc.horizon_steps = 3;
  pc.mlp_dims = {64, 64, 64};
  rldt::FlowPolicy policy(pc, /*seed=*/0);

  rldt::CriticConfig cc;
  cc.obs_dim = 4;
  cc.action_dim = 2;
  cc.act_steps = 3;
  rldt::CriticEnsemble critic(cc, /*seed=*/0);

  auto gen = rldt::make_generator(0);
  const int64_t B = 5, P = 8;
  auto obs = torch::randn({B, pc.obs_dim}, gen).repeat_interleave(P, 0);  // (B·P, O)
  auto sample = policy.sample(obs, gen);                                    // chain (B·P, K+1, H, d)
  auto grads = critic.action_grad(obs, sample.actions);                     // (B·P, H, d)
  const int64_t A = pc.horizon_steps * pc.action_dim;
  auto field = rldt::svgd_direction(sample.actions.view({B, P, A}), sample.actions.view({B, P, A}),
                                    grads.view({B, P, A}), rldt::SvgdConfig{});
  std::cout << "chain " << sample.chain.sizes() << ", phi " << field.phi.sizes() << ", mean |grad Q| "
            << field.grad_norm << "\n";
  return field.phi.isfinite().all().item<bool>() ? 0 : 1;
}
