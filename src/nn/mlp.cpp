#include "rldt/nn/mlp.hpp"

#include <torch/torch.h>

#include <cmath>

#include "rldt/util/check.hpp"

namespace rldt {

void check_activation(const std::string& name, const std::string& what) {
  check_choice(name, what, {"relu", "silu", "mish", "tanh", "identity"});
}

torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "silu") return torch::silu(x);
  if (name == "mish") return torch::mish(x);
  if (name == "tanh") return torch::tanh(x);
  if (name == "identity") return x;
  check_activation(name, "activation");
  return x;
}

void init_linear_layers(torch::nn::Module& module, at::Generator& gen) {
  torch::NoGradGuard ng;
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(lin->weight.size(1)));
      lin->weight.uniform_(-bound, bound, gen);
      if (lin->bias.defined()) lin->bias.uniform_(-bound, bound, gen);
    }
  }
}

MLPImpl::MLPImpl(std::vector<int64_t> dims, std::string activation)
    : dims_(std::move(dims)), activation_(std::move(activation)) {
  check_arg(dims_.size() >= 2, "MLP dims must hold at least an input and an output size");
  for (auto d : dims_) check_arg(d > 0, "MLP layer sizes must be positive, got ", d);
  check_activation(activation_, "activation");
  for (size_t i = 0; i + 1 < dims_.size(); ++i)
    layers_->push_back(torch::nn::Linear(dims_[i], dims_[i + 1]));
  register_module("layers", layers_);
}

torch::Tensor MLPImpl::forward(torch::Tensor x) {
  const size_t n = layers_->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers_[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) x = apply_activation(activation_, x);
  }
  return x;
}

ResidualMLPImpl::ResidualMLPImpl(int64_t in_dim, std::vector<int64_t> hidden, int64_t out_dim,
                                 std::string activation)
    : activation_(std::move(activation)) {
  check_arg(!hidden.empty(), "mlp_dims must not be empty");
  check_arg(hidden.size() % 2 == 1, "residual mlp_dims needs an odd number of equal sizes (e.g. [512,512,512]), got ",
            hidden.size());
  for (auto h : hidden) check_arg(h == hidden[0], "residual mlp_dims must all be equal, got ", h, " and ", hidden[0]);
  check_arg(in_dim > 0 && out_dim > 0 && hidden[0] > 0, "ResidualMLP sizes must be positive");
  check_activation(activation_, "activation");
  const int64_t h = hidden[0];
  input_ = register_module("input", torch::nn::Linear(in_dim, h));
  for (size_t b = 0; b < (hidden.size() - 1) / 2; ++b) {
    blocks_->push_back(torch::nn::Linear(h, h));
    blocks_->push_back(torch::nn::Linear(h, h));
  }
  register_module("blocks", blocks_);
  output_ = register_module("output", torch::nn::Linear(h, out_dim));
}

torch::Tensor ResidualMLPImpl::forward(torch::Tensor x) {
  x = input_->forward(x);
  for (size_t i = 0; i + 1 < blocks_->size(); i += 2) {
    auto y = blocks_[i]->as<torch::nn::Linear>()->forward(apply_activation(activation_, x));
    y = blocks_[i + 1]->as<torch::nn::Linear>()->forward(apply_activation(activation_, y));
    x = x + y;
  }
  return output_->forward(x);
}

}  // namespace rldt
