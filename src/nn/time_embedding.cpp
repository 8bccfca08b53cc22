#include "rldt/nn/time_embedding.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/nn/mlp.hpp"
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

torch::Tensor TimeEmbeddingImpl::forward_saving(const torch::Tensor& t, std::vector<torch::Tensor>& saved) {
  auto e = sinusoidal_embedding(t, dim_);
  auto z = fc1_->forward(e);
  auto m = torch::mish(z);
  saved.insert(saved.end(), {e, z, m});
  return fc2_->forward(m);
}

void TimeEmbeddingImpl::backward_saved(const std::vector<torch::Tensor>& saved, size_t offset,
                                       const torch::Tensor& grad_out) {
  check_arg(saved.size() >= offset + 3, "TimeEmbedding backward: ", saved.size() - offset,
            " saved entries, expected 3");
  set_linear_grads(*fc2_, grad_out, saved[offset + 2]);
  auto gz = at::mish_backward(grad_out.mm(fc2_->weight), saved[offset + 1]);
  set_linear_grads(*fc1_, gz, saved[offset]);
}

}  // namespace rldt
