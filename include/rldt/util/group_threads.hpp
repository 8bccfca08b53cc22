// Work split into groups that each run on their own thread with one BLAS thread (issue 6: grouped
// rollouts, actor.update_groups, critic.update_groups), and the parameter gradients such groups
// compute summed into the parameters' .grad.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "rldt/util/thread_pool.hpp"

namespace rldt {

// fn(g) for g in [0, groups) on `pool`'s threads, with the BLAS at one thread for the call (the
// previous count is restored afterwards). Which thread runs which group is up to the pool; a
// group's result must not depend on it. The first exception is rethrown after all groups ran.
void run_groups_one_blas_thread(ThreadPool& pool, int64_t groups, const std::function<void(int64_t g)>& fn);

// params[i].grad = Σ_g grads[g][i], summed in group order (undefined entries, from
// autograd::grad's allow_unused, are skipped; a parameter no group reached keeps its .grad).
void set_summed_grads(const std::vector<torch::Tensor>& params, const std::vector<std::vector<torch::Tensor>>& grads);

}  // namespace rldt
