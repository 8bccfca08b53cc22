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

bool activation_reads_input(const std::string& name) { return name == "silu" || name == "mish"; }

torch::Tensor activation_backward(const std::string& name, const torch::Tensor& g, const torch::Tensor& z,
                                  const torch::Tensor& y) {
  // The functions autograd's own formulas call, so the gradients are autograd's.
  if (name == "relu") return at::threshold_backward(g, y, 0);
  if (name == "tanh") return at::tanh_backward(g, y);
  if (name == "silu") return at::silu_backward(g, z);
  if (name == "mish") return at::mish_backward(g, z);
  if (name == "identity") return g;
  check_activation(name, "activation");
  return g;
}

void set_linear_grads(torch::nn::LinearImpl& layer, const torch::Tensor& g, const torch::Tensor& x) {
  auto& gw = layer.weight.mutable_grad();
  if (gw.defined() && gw.sizes() == layer.weight.sizes())
    at::mm_out(gw, g.t(), x);
  else
    gw = torch::mm(g.t(), x);
  if (!layer.bias.defined()) return;
  auto& gb = layer.bias.mutable_grad();
  if (gb.defined() && gb.sizes() == layer.bias.sizes())
    at::sum_out(gb, g, {0});
  else
    gb = g.sum(0);
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

torch::Tensor MLPImpl::forward_saving(torch::Tensor x, std::vector<torch::Tensor>& saved) {
  const size_t n = layers_->size();
  const bool keep_z = activation_reads_input(activation_);
  for (size_t i = 0; i < n; ++i) {
    saved.push_back(x);
    x = layers_[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) {
      saved.push_back(keep_z ? x : torch::Tensor());
      x = apply_activation(activation_, x);
    }
  }
  return x;
}

torch::Tensor MLPImpl::backward_saved(const std::vector<torch::Tensor>& saved, size_t offset,
                                      const torch::Tensor& grad_out) {
  // saved[offset + 2i]: layer i's input h_i; saved[offset + 2i − 1]: z_{i−1}, the output of layer
  // i − 1 before the activation that gave h_i (i ≥ 1; undefined unless activation_reads_input).
  const size_t n = layers_->size();
  check_arg(saved.size() >= offset + 2 * n - 1, "MLP backward: ", saved.size() - offset, " saved entries, expected ",
            2 * n - 1);
  torch::Tensor g = grad_out;
  for (size_t i = n; i-- > 0;) {
    auto* layer = layers_[i]->as<torch::nn::Linear>();
    const auto& h = saved[offset + 2 * i];
    set_linear_grads(*layer, g, h);
    g = g.mm(layer->weight);
    if (i > 0) g = activation_backward(activation_, g, saved[offset + 2 * i - 1], h);
  }
  return g;
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

torch::Tensor ResidualMLPImpl::forward_saving(torch::Tensor x, std::vector<torch::Tensor>& saved) {
  const bool keep_z = activation_reads_input(activation_);
  saved.push_back(x);
  x = input_->forward(x);
  for (size_t i = 0; i + 1 < blocks_->size(); i += 2) {
    saved.push_back(keep_z ? x : torch::Tensor());
    auto a1 = apply_activation(activation_, x);
    saved.push_back(a1);
    auto u = blocks_[i]->as<torch::nn::Linear>()->forward(a1);
    saved.push_back(keep_z ? u : torch::Tensor());
    auto a2 = apply_activation(activation_, u);
    saved.push_back(a2);
    x = x + blocks_[i + 1]->as<torch::nn::Linear>()->forward(a2);
  }
  saved.push_back(x);
  return output_->forward(x);
}

torch::Tensor ResidualMLPImpl::backward_saved(const std::vector<torch::Tensor>& saved, size_t offset,
                                              const torch::Tensor& grad_out) {
  // saved[offset]: the input; per block b at o = offset + 1 + 4b: the stream x, act(x), u = L1(act(x)),
  // act(u); saved[offset + 1 + 4·blocks]: the stream after the last block.
  const size_t blocks = blocks_->size() / 2;
  check_arg(saved.size() >= offset + 2 + 4 * blocks, "ResidualMLP backward: ", saved.size() - offset,
            " saved entries, expected ", 2 + 4 * blocks);
  set_linear_grads(*output_, grad_out, saved[offset + 1 + 4 * blocks]);
  auto g = grad_out.mm(output_->weight);  // dL/dx, x the residual stream
  for (size_t b = blocks; b-- > 0;) {
    const size_t o = offset + 1 + 4 * b;
    auto* l1 = blocks_[2 * b]->as<torch::nn::Linear>();
    auto* l2 = blocks_[2 * b + 1]->as<torch::nn::Linear>();
    set_linear_grads(*l2, g, saved[o + 3]);
    auto gu = activation_backward(activation_, g.mm(l2->weight), saved[o + 2], saved[o + 3]);
    set_linear_grads(*l1, gu, saved[o + 1]);
    g.add_(activation_backward(activation_, gu.mm(l1->weight), saved[o], saved[o + 1]));
  }
  set_linear_grads(*input_, g, saved[offset]);
  return g.mm(input_->weight);
}

}  // namespace rldt
