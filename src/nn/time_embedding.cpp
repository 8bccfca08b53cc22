#include "rldt/nn/time_embedding.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/util/check.hpp"

namespace rldt {

torch::Tensor sinusoidal_embedding(const torch::Tensor& t, int64_t dim) {
  check_arg(dim >= 4 && dim % 2 == 0, "time embedding dim must be even and >= 4, got ", dim);
  const int64_t half = dim / 2;
  const double scale = std::log(10000.0) / static_cast<double>(half - 1);
  auto freqs = torch::exp(torch::arange(half, t.options()) * (-scale));
  auto args = t.reshape({-1, 1}) * freqs.reshape({1, -1});
  return torch::cat({torch::sin(args), torch::cos(args)}, -1);
}

TimeEmbeddingImpl::TimeEmbeddingImpl(int64_t dim) : dim_(dim) {
  check_arg(dim >= 4 && dim % 2 == 0, "time_dim must be even and >= 4, got ", dim);
  fc1_ = register_module("fc1", torch::nn::Linear(dim, 2 * dim));
  fc2_ = register_module("fc2", torch::nn::Linear(2 * dim, dim));
}

torch::Tensor TimeEmbeddingImpl::forward(const torch::Tensor& t) {
  return fc2_->forward(torch::mish(fc1_->forward(sinusoidal_embedding(t, dim_))));
}

}  // namespace rldt
