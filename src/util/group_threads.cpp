#include "rldt/util/group_threads.hpp"

#include <torch/torch.h>

#include "rldt/util/blas_threads.hpp"

namespace rldt {

void run_groups_one_blas_thread(ThreadPool& pool, int64_t groups, const std::function<void(int64_t g)>& fn) {
  ScopedBlasThreads one_blas_thread_each(1);
  pool.parallel_for(static_cast<int>(groups), [&](int g) { fn(g); });
}

void set_summed_grads(const std::vector<torch::Tensor>& params, const std::vector<std::vector<torch::Tensor>>& grads) {
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor sum;
    for (const auto& group : grads) {
      const auto& gi = group.at(i);
      if (gi.defined()) sum = sum.defined() ? sum + gi : gi;
    }
    if (sum.defined()) params[i].mutable_grad() = sum;
  }
}

}  // namespace rldt
