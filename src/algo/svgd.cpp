#include "rldt/algo/svgd.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/util/check.hpp"

namespace rldt {

void SvgdConfig::validate() const {
  check_arg(std::isfinite(svgd_temp) && svgd_temp >= 0.0, "svgd_temp must be finite and >= 0, got ", svgd_temp);
  check_arg(std::isfinite(bandwidth), "bandwidth must be finite (<= 0 selects the median heuristic), got ", bandwidth);
  check_choice(q_norm, "q_norm", {"none", "q_grad", "svgd"});
  check_arg(q_norm_min >= 0.0 && q_norm_max >= q_norm_min, "q_norm_min/q_norm_max must satisfy 0 <= min <= max, got ",
            q_norm_min, " and ", q_norm_max);
  check_arg(q_norm_eps > 0.0, "q_norm_eps must be > 0, got ", q_norm_eps);
  check_choice(field, "field", {"normal", "interp", "delta", "hybrid"});
}

SvgdResult svgd_direction(const torch::Tensor& queries, const torch::Tensor& particles, const torch::Tensor& grads,
                          const SvgdConfig& cfg, const torch::Tensor& last_step) {
  cfg.validate();
  check_tensor(queries, "queries", {-1, -1, -1});
  const int64_t B = queries.size(0), P1 = queries.size(1), A = queries.size(2);
  check_tensor(particles, "particles", {B, -1, A});
  const int64_t P2 = particles.size(1);
  check_tensor(grads, "grads", {B, P2, A});
  check_arg(P2 >= 1, "argument 'particles' must hold at least one particle per state");

  torch::NoGradGuard ng;
  SvgdResult r;
  const bool empty = B == 0 || P1 == 0;
  auto gnorm = grads.norm(2, -1);  // (B, P2)
  r.grad_norm = B > 0 ? gnorm.mean().item<double>() : 0.0;
  // Query-particle distances come from ||y||² + ||a||² − 2y·a (one batched matmul). In float32
  // that expansion cancels badly when particles cluster away from the origin, so both sets are
  // first centred on the state's particle mean (distances are translation invariant). It is
  // bmm-then-add, not baddbmm: this LibTorch build runs baddbmm as one dispatched GEMM per state
  // (bench/profile_ops.py), bmm as one op.
  auto centre = particles.mean(1, true);  // (B, 1, A)
  auto pc = particles - centre;
  if (P2 > 1 && B > 0)  // mean pairwise distance among the particles (diagnostic only; cdist: exact 0 diagonal)
    r.particle_distance = torch::cdist(pc, pc).sum().item<double>() / static_cast<double>(B * P2 * (P2 - 1));

  if (cfg.field == "delta") {
    check_arg(P1 == P2, "field 'delta' needs one gradient per query: queries has ", P1, " per state, grads has ", P2);
    r.phi = grads.clone();
    return r;
  }

  // Gradient scale per state.
  auto gbar = gnorm.mean(1).clamp(cfg.q_norm_min, cfg.q_norm_max);  // (B,)
  torch::Tensor g = grads;
  torch::Tensor alpha = torch::full({B}, cfg.svgd_temp);
  if (cfg.q_norm == "q_grad") g = grads / (gbar + cfg.q_norm_eps).view({B, 1, 1});
  if (cfg.q_norm == "svgd") alpha = alpha * gbar;

  // Squared distances queries × particles: (B, P1, P2).
  auto qc = queries - centre;
  auto D = (qc.pow(2).sum(-1, true) + pc.pow(2).sum(-1).unsqueeze(1) - 2.0 * torch::bmm(qc, pc.transpose(1, 2)))
               .clamp_min_(0.0);

  torch::Tensor h;  // (B, P1, 1)
  if (cfg.bandwidth > 0) {
    h = torch::full({B, P1, 1}, cfg.bandwidth);
  } else {
    h = std::get<0>(D.median(-1, true)) / (2.0 * std::log(static_cast<double>(P2) + 1.0));
  }
  h = h.clamp_min(1e-8);
  r.bandwidth = empty ? 0.0 : h.mean().item<double>();

  auto Kmat = torch::exp(-D / (2.0 * h));                               // (B, P1, P2)
  auto attract = torch::bmm(Kmat, g);                                   // (B, P1, A)
  auto repulse = (qc * Kmat.sum(-1, true) - torch::bmm(Kmat, pc)) / h;  // (B, P1, A); shift-free
  r.repulsion_norm = empty ? 0.0 : (repulse / static_cast<double>(P2)).norm(2, -1).mean().item<double>();

  auto scale = alpha.view({B, 1, 1}).expand({B, P1, 1});
  if (cfg.field == "hybrid") {
    check_arg(last_step.defined(), "field 'hybrid' needs argument 'last_step' of shape (", B, ", ", P1, ")");
    check_arg(last_step.dim() == 2 && last_step.size(0) == B && last_step.size(1) == P1,
              "argument 'last_step' has shape ", shape_to_string(last_step.sizes()), "; expected (", B, ", ", P1, ")");
    auto sign = last_step.to(torch::kFloat32) * 2.0 - 1.0;
    scale = scale * sign.unsqueeze(-1);
  }
  r.phi = (attract + scale * repulse) / static_cast<double>(P2);
  return r;
}

}  // namespace rldt
