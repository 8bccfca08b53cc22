// SVGD transport field (ALGORITHM.md §3).
//
// For each state b, queries y_i (i < P1), particles a_j (j < P2) and critic
// gradients g_j = ∇_a Q(s_b, a_j):
//   D_ij = ||y_i − a_j||²,  h_i = median_j D_ij / (2 ln(P2 + 1))  (or fixed), h ≥ 1e-8
//   K_ij = exp(−D_ij / (2 h_i))
//   φ(y_i) = (1/P2) [ Σ_j K_ij g_j + α Σ_j K_ij (y_i − a_j) / h_i ]
// computed with (B, P1, P2) kernels only: no (B, P1, P2, A) tensor is formed.
#pragma once

#include <torch/types.h>

#include <string>

namespace rldt {

struct SvgdConfig {
  double svgd_temp = 1e-3;         // α
  double bandwidth = -1.0;         // <= 0: median heuristic per query
  std::string q_norm = "svgd";     // "none" | "q_grad" | "svgd"
  double q_norm_min = 0.0;         // clamp of the per-state mean gradient norm ḡ
  double q_norm_max = 1e5;
  double q_norm_eps = 1e-8;        // q_grad: g / (ḡ + eps)
  std::string field = "normal";    // "normal" | "interp" | "delta" | "hybrid"
  // Throws ArgumentError naming the first invalid field.
  void validate() const;
};

struct SvgdResult {
  torch::Tensor phi;              // (B, P1, A)
  double grad_norm = 0;           // mean ||g_j|| before any normalisation
  double repulsion_norm = 0;      // mean ||(1/P2) Σ_j K_ij (y_i − a_j)/h_i|| (kernel-gradient term)
  double particle_distance = 0;   // mean pairwise ||a_i − a_j||, i ≠ j, within a state
  double bandwidth = 0;           // mean h_i
};

// queries: (B, P1, A); particles, grads: (B, P2, A).
// last_step: (B, P1) bool, only for field "hybrid": true where the query comes
// from the last denoising step (repulsion kept), false elsewhere (sign flipped).
// Field "interp" computes the same formula as "normal"; the caller passes the
// expected targets as particles (and the gradients taken there).
// Field "delta" returns φ = g (requires P1 == P2; no kernel, no q_norm).
SvgdResult svgd_direction(const torch::Tensor& queries, const torch::Tensor& particles, const torch::Tensor& grads,
                          const SvgdConfig& cfg, const torch::Tensor& last_step = torch::Tensor());

}  // namespace rldt
