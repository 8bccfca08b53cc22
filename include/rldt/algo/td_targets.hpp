// Return targets for the critics (ALGORITHM.md §2) over stored trajectory
// segments. All inputs are (N, T): N trajectories of T steps.
//
// next_values[n, t] = V(s'), the bootstrap value of the state that followed
// step t: the next stored state, or the episode's final observation when the
// episode ended at t (with autoreset the next stored state belongs to a new
// episode). terminated/truncated are 0/1 (float or bool).
//
// Termination cuts the return. Truncation (time limit) bootstraps from
// next_values and stops the λ-recursion there; with bootstrap_truncated=false it
// is treated as termination, like the reference implementation.
#pragma once

#include <torch/types.h>

namespace rldt {

// TD(λ): G_{T−1} = r + γ(1−term)·V'; G_t = r_t + γ(1−term_t)[(1−λ)V'_t + λ G_{t+1}].
// (N, T) → (N, T)
torch::Tensor td_lambda_targets(const torch::Tensor& rewards, const torch::Tensor& next_values,
                                const torch::Tensor& terminated, const torch::Tensor& truncated, double gamma,
                                double lambda, bool bootstrap_truncated = true);

// n-step: G_t = Σ_{i<m} γ^i r_{t+i} + γ^m V'_{t+m−1}, where the window stops early
// (m < n) at the episode's end or the segment's end; no bootstrap after termination.
// (N, T) → (N, T)
torch::Tensor nstep_targets(const torch::Tensor& rewards, const torch::Tensor& next_values,
                            const torch::Tensor& terminated, const torch::Tensor& truncated, double gamma, int64_t n,
                            bool bootstrap_truncated = true);

}  // namespace rldt
