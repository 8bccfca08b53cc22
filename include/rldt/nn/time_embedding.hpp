// Time embedding for the velocity network: sinusoidal features of t ∈ [0, 1]
// (t used as is, no scaling), then Linear(dim → 2·dim) → Mish → Linear(2·dim → dim).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <vector>

namespace rldt {

// t: (N,) → (N, dim) with [sin(t·f_j), cos(t·f_j)], f_j = exp(−j·ln(1e4)/(dim/2 − 1)).
torch::Tensor sinusoidal_embedding(const torch::Tensor& t, int64_t dim);

class TimeEmbeddingImpl : public torch::nn::Module {
 public:
  explicit TimeEmbeddingImpl(int64_t dim = 16);
  // t: (N,) → (N, dim)
  torch::Tensor forward(const torch::Tensor& t);
  // The hand-written backward of nn/mlp.hpp: entries the sinusoidal features, fc1's output and
  // Mish of it; backward_saved sets the parameters' .grad from dL/d(output) (R, dim).
  torch::Tensor forward_saving(const torch::Tensor& t, std::vector<torch::Tensor>& saved);
  void backward_saved(const std::vector<torch::Tensor>& saved, size_t offset, const torch::Tensor& grad_out);
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(TimeEmbedding);

}  // namespace rldt
